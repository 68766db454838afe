//! The details a printed prescription needs beyond the chart: the prescriber's licence
//! number, address and phone (per user), and the clinic's name, address and phone (per site).
//!
//! A prescriber edits their own; the clinic's administrator edits anyone's, and the site's.
//! Stored in this plugin's `kv`:
//!
//! - `settings/prescriber/<user name>`: a [`Prescriber`].
//! - `settings/site/<site id>`: a [`Clinic`].
//!
//! Every change is audited (`prescribing.settings.prescriber`, `prescribing.settings.site`).

use osler_sdk::{Caller, Error, audit, clock, kv};
use serde::{Deserialize, Serialize};

/// A prescriber's details.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Prescriber {
    /// The licensing body, e.g. `CPSO` (College of Physicians and Surgeons of Ontario).
    pub licence_body: String,
    /// The licence (registration) number, e.g. the CPSO number.
    pub licence: String,
    /// The practice address, lines separated by newlines.
    pub address: String,
    pub phone: String,
    pub fax: String,
    pub updated_by: String,
    pub updated_at: String,
}

/// A site's (clinic's) details.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Clinic {
    pub name: String,
    pub address: String,
    pub phone: String,
    pub fax: String,
    pub updated_by: String,
    pub updated_at: String,
}

/// A user or site id as the host spells them; anything else names nobody.
fn check_name(what: &str, s: &str) -> Result<(), Error> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(Error::not_found(format!("no {what} {s:?}")))
    }
}

fn prescriber_key(user: &str) -> String {
    format!("settings/prescriber/{user}")
}

fn site_key(site: &str) -> String {
    format!("settings/site/{site}")
}

pub fn prescriber(user: &str) -> Result<Option<Prescriber>, Error> {
    check_name("user", user)?;
    kv::get(&prescriber_key(user))
}

pub fn clinic(site: &str) -> Result<Option<Clinic>, Error> {
    check_name("site", site)?;
    kv::get(&site_key(site))
}

/// Whether `caller` may change `user`'s details: their own, as a prescriber, or anyone's as
/// the administrator.
pub fn may_edit_prescriber(caller: &Caller, user: &str) -> bool {
    caller.has_role("admin") || (caller.user == user && caller.has_role("physician"))
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<String, Error> {
    let v = value.trim().replace("\r\n", "\n");
    if required && v.is_empty() {
        return Err(Error::invalid(format!(
            "{field}: required on a prescription"
        )));
    }
    if v.chars().count() > max {
        return Err(Error::invalid(format!("{field}: at most {max} characters")));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(format!("{field}: no control characters")));
    }
    Ok(v)
}

/// A phone or fax number: digits with the usual punctuation, and an extension.
fn phone(field: &str, value: &str, required: bool) -> Result<String, Error> {
    let v = text(field, value, 40, required)?;
    if v.is_empty() {
        return Ok(v);
    }
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    let lower = v.to_ascii_lowercase();
    let rest = lower.replace("ext", "");
    let ok = digits >= 7
        && rest
            .bytes()
            .all(|b| b.is_ascii_digit() || b" +-().x/".contains(&b));
    if !ok {
        return Err(Error::invalid(format!(
            "{field}: a telephone number like 416-555-0100 (ext. 12)"
        )));
    }
    Ok(v)
}

/// Saves `user`'s details as `caller`, after checking who may and what was given.
pub fn save_prescriber(
    caller: &Caller,
    user: &str,
    input: &Prescriber,
) -> Result<Prescriber, Error> {
    check_name("user", user)?;
    if !may_edit_prescriber(caller, user) {
        return Err(Error::denied(
            "a prescriber edits their own details; the administrator edits anyone's",
        ));
    }
    let licence = text("licence", &input.licence, 20, true)?;
    if !licence
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b' ')
    {
        return Err(Error::invalid(
            "licence: the registration number, letters and digits (e.g. a CPSO number, 012345)",
        ));
    }
    let body = text("licenceBody", &input.licence_body, 60, false)?;
    let p = Prescriber {
        licence_body: if body.is_empty() { "CPSO".into() } else { body },
        licence,
        address: text("address", &input.address, 300, true)?,
        phone: phone("phone", &input.phone, true)?,
        fax: phone("fax", &input.fax, false)?,
        updated_by: caller.user.clone(),
        updated_at: clock::now().local,
    };
    kv::put(&prescriber_key(user), &p)?;
    audit::record("settings.prescriber", None, Some(user))?;
    Ok(p)
}

/// Saves the details of `caller`'s current site. Administrators only.
pub fn save_clinic(caller: &Caller, input: &Clinic) -> Result<Clinic, Error> {
    if !caller.has_role("admin") {
        return Err(Error::denied("the administrator sets the clinic's details"));
    }
    check_name("site", &caller.site)?;
    let c = Clinic {
        name: text("name", &input.name, 120, true)?,
        address: text("address", &input.address, 300, true)?,
        phone: phone("phone", &input.phone, true)?,
        fax: phone("fax", &input.fax, false)?,
        updated_by: caller.user.clone(),
        updated_at: clock::now().local,
    };
    kv::put(&site_key(&caller.site), &c)?;
    audit::record("settings.site", None, Some(&caller.site))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: &str, roles: &[&str]) -> Caller {
        Caller {
            user: user.into(),
            display_name: user.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            permissions: vec![],
            site: "main".into(),
            site_name: "Main".into(),
            csrf_token: String::new(),
        }
    }

    #[test]
    fn who_may_edit_whose_details() {
        assert!(may_edit_prescriber(
            &caller("drlee", &["physician"]),
            "drlee"
        ));
        assert!(!may_edit_prescriber(
            &caller("drlee", &["physician"]),
            "drroy"
        ));
        assert!(!may_edit_prescriber(
            &caller("nurse.kim", &["nurse"]),
            "nurse.kim"
        ));
        assert!(may_edit_prescriber(&caller("admin", &["admin"]), "drlee"));
    }

    #[test]
    fn phones_and_texts_are_checked() {
        assert_eq!(
            phone("phone", " 416-555-0100 ext. 12 ", true).unwrap(),
            "416-555-0100 ext. 12"
        );
        assert!(phone("phone", "call me", true).is_err());
        assert!(phone("phone", "", true).is_err());
        assert_eq!(phone("fax", "", false).unwrap(), "");
        assert_eq!(
            text("address", "1 Main St\r\nToronto", 300, true).unwrap(),
            "1 Main St\nToronto"
        );
        assert!(text("address", "x\u{7}", 300, true).is_err());
        assert!(check_name("user", "drlee").is_ok());
        assert!(check_name("user", "../x").is_err());
    }
}
