//! Check-in kiosk: a patient enters their health card number, version code and birth date;
//! the kiosk finds their id through the host's narrow `patients.match` (an id, nothing else —
//! the kiosk never reads the chart) and checks them in through the scheduling plugin's
//! `osler:scheduling/appointments` interface. The screen shows only "You are checked in for
//! 10:30 with Dr. Lee", or one neutral message for every kind of failure.
//!
//! See README.md for the routes, settings and data layout.

pub mod guard;

use osler_sdk::{
    Caller, Error, Params, Plugin, Request, Response, Router, audit, clock, config, html, kv,
    patients,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bindings::osler::scheduling::appointments;
use crate::guard::{Guard, Policy};

mod bindings {
    osler_sdk::generate!({
        path: ["../../wit/v0.2.0", "wit"],
        world: "osler:kiosk/kiosk@0.2.0",
    });
}

const HOME: &str = "/plugins/kiosk/";

/// The one answer to a wrong birth date, an unknown card, or no appointment now: it must not
/// tell which.
pub const NEUTRAL: &str = "We could not check you in. Please see reception.";
/// Too many failures here, or for this card.
pub const PAUSED: &str = "Check-in is paused at this kiosk. Please see reception.";
/// The scheduling plugin is not enabled here, or failed.
pub const UNAVAILABLE: &str = "Self check-in is unavailable right now. Please see reception.";

struct Kiosk;

impl Plugin for Kiosk {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/", page)
            .post("/", check_in_form)
            .post("/api/check-in", check_in_api)
            .handle(&req)
    }
}

osler_sdk::export_plugin!(Kiosk with_bindings bindings);

/// What the patient types.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Entry {
    pub health_card: String,
    pub version_code: String,
    pub birth_date: String,
}

/// The entry, normalised: 10 digits, 0–2 capital letters, a real date.
pub fn normalise(e: &Entry) -> Result<(String, String, String), String> {
    let number: String = e
        .health_card
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    if number.len() != 10 || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err("Please enter the 10 digits of your health card number.".into());
    }
    let version = e.version_code.trim().to_ascii_uppercase();
    if version.len() > 2 || !version.chars().all(|c| c.is_ascii_uppercase()) {
        return Err("The version code is the one or two letters after the number.".into());
    }
    let date = e.birth_date.trim();
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if time::Date::parse(date, fmt).is_err() {
        return Err("Please enter your birth date (year, month, day).".into());
    }
    Ok((number, version, date.to_string()))
}

/// The outcome of one attempt, for the page and the JSON answer alike.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    #[serde(skip)]
    pub status: u16,
    pub checked_in: bool,
    pub message: String,
}

impl Outcome {
    fn fail(status: u16, message: &str) -> Outcome {
        Outcome {
            status,
            checked_in: false,
            message: message.to_string(),
        }
    }
}

/// Check-in is a kiosk's job: only a device signed in with the `kiosk` role has the
/// `patients.match` permission the match needs.
fn kiosk_only(c: &Caller) -> Result<(), Error> {
    if c.has_role("kiosk") {
        Ok(())
    } else {
        Err(Error::denied("this page is for check-in kiosks"))
    }
}

fn policy() -> Policy {
    let int = |k: &str, d: i64| config::get_integer(k).unwrap_or(d).max(0);
    Policy {
        free_attempts: int("free-attempts", 3) as u32,
        delay_ms: int("delay-seconds", 30) * 1000,
        lockout_after: int("lockout-after", 6).max(1) as u32,
        lockout_ms: int("lockout-minutes", 15) * 60_000,
    }
}

fn window() -> appointments::CheckInWindow {
    let int = |k: &str, d: i64| config::get_integer(k).unwrap_or(d).clamp(0, 24 * 60) as u32;
    appointments::CheckInWindow {
        minutes_early: int("minutes-early", 120),
        minutes_late: int("minutes-late", 180),
    }
}

/// The guard keys: this kiosk, and this card (by hash: no card numbers in storage).
fn guard_keys(c: &Caller, number: &str) -> [String; 2] {
    let card = hex::encode(Sha256::digest(format!("{}:{number}", c.site)));
    [
        format!("site/{}/guard/kiosk/{}", c.site, c.user),
        format!("site/{}/guard/card/{card}", c.site),
    ]
}

/// Whether the scheduling plugin answers at this site (the kiosk's: the host carries it). A
/// question about nobody: when no provider is enabled the host answers `unavailable` without
/// running anything.
fn scheduling_available() -> bool {
    !matches!(
        appointments::upcoming("kiosk-availability-check", 1),
        Err(Error::Unavailable(_))
    )
}

/// One check-in attempt.
pub fn attempt(c: &Caller, entry: &Entry) -> Result<Outcome, Error> {
    let (number, version, birth) = match normalise(entry) {
        Ok(v) => v,
        Err(m) => return Ok(Outcome::fail(400, &m)),
    };
    let now = clock::now();
    let p = policy();
    let keys = guard_keys(c, &number);
    for k in &keys {
        let g: Guard = kv::get(k)?.unwrap_or_default();
        if g.refused_until(now.epoch_millis, &p).is_some() {
            return Ok(Outcome::fail(429, PAUSED));
        }
    }
    let failed = |status: u16, message: &str| -> Result<Outcome, Error> {
        let locked = record_failure(&keys, now.epoch_millis, &p)?;
        audit::record(
            "check-in-refused",
            None,
            Some("no match, or no appointment now"),
        )?;
        if locked {
            audit::record(
                "lockout",
                None,
                Some(&format!("too many failed check-ins at kiosk {}", c.user)),
            )?;
        }
        Ok(Outcome::fail(status, message))
    };
    let found = match patients::find_by_health_card(&number, &version, &birth) {
        Ok(found) => found,
        Err(e) => {
            // A missing grant or a storage failure: nothing the patient can fix here.
            osler_sdk::warn!("the health card match failed: {}", e.code());
            return Ok(Outcome::fail(503, UNAVAILABLE));
        }
    };
    let Some(patient) = found else {
        return failed(200, NEUTRAL);
    };
    match appointments::check_in(&patient, window()) {
        Ok(a) => {
            for k in &keys {
                kv::delete(k)?;
            }
            audit::record(
                "check-in",
                Some(&patient),
                Some(&format!(
                    "appointment {} at {} {} with {}",
                    a.id, a.date, a.start, a.provider
                )),
            )?;
            Ok(Outcome {
                status: 200,
                checked_in: true,
                message: format!(
                    "You are checked in for {} with {}.",
                    a.start, a.provider_name
                ),
            })
        }
        Err(Error::NotFound(_)) => failed(200, NEUTRAL),
        Err(Error::Unavailable(_)) => Ok(Outcome::fail(503, UNAVAILABLE)),
        Err(e) => {
            osler_sdk::warn!("check-in through scheduling failed: {}", e.code());
            Ok(Outcome::fail(503, UNAVAILABLE))
        }
    }
}

/// Counts a failure against the kiosk and the card; true when one of them just locked.
fn record_failure(keys: &[String], now: i64, p: &Policy) -> Result<bool, Error> {
    let mut locked = false;
    for k in keys {
        // Compare-and-swap, so that two attempts at once both count.
        for _ in 0..5 {
            let g: Option<Guard> = kv::get(k)?;
            let (next, just) = g.clone().unwrap_or_default().fail(now, p);
            match kv::Batch::new()
                .expect_unchanged(k, g.as_ref())
                .put(k, &next)
                .commit()
            {
                Ok(()) => {
                    locked |= just;
                    break;
                }
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(locked)
}

// Pages and the JSON route.

fn page(req: &Request, _: &Params) -> Result<Response, Error> {
    let c = req.caller();
    kiosk_only(c)?;
    if !scheduling_available() {
        return Ok(render(c, 503, Some((false, UNAVAILABLE)), false));
    }
    Ok(render(c, 200, None, true))
}

fn check_in_form(req: &Request, _: &Params) -> Result<Response, Error> {
    let c = req.caller();
    kiosk_only(c)?;
    let entry: Entry = req.form()?;
    let o = attempt(c, &entry)?;
    Ok(render(
        c,
        o.status,
        Some((o.checked_in, &o.message)),
        o.status != 503,
    ))
}

fn check_in_api(req: &Request, _: &Params) -> Result<Response, Error> {
    let c = req.caller();
    kiosk_only(c)?;
    let entry: Entry = req.json()?;
    let o = attempt(c, &entry)?;
    Ok(Response::json(o.status, &o))
}

/// The kiosk screen: a message (if any) and, unless check-in is unavailable, the form. Never
/// echoes what was typed: the next person at the kiosk must not see it.
pub fn render(c: &Caller, status: u16, message: Option<(bool, &str)>, form: bool) -> Response {
    let mut out = format!(
        r#"<style>main{{max-width:32rem}}.done{{font-size:1.4rem;background:#e6f4ea;padding:1rem;border-radius:6px}}</style><p class="muted">{}</p>"#,
        html::escape(&c.site_name)
    );
    match message {
        Some((true, m)) => {
            out += &format!(
                r#"<p class="done" role="status">{}</p><p><a href="{HOME}">Done</a></p>"#,
                html::escape(m)
            );
            return Response::html(status, html::page("Check in", &out));
        }
        Some((false, m)) => {
            out += &format!(r#"<p class="error" role="alert">{}</p>"#, html::escape(m));
        }
        None => {}
    }
    if form {
        out += &format!(
            r#"<form method="post" action="{HOME}" class="card" autocomplete="off">{}
<label for="health-card">Health card number</label><input id="health-card" name="healthCard" inputmode="numeric" required autocomplete="off">
<label for="version-code">Version code (letters after the number)</label><input id="version-code" name="versionCode" maxlength="2" autocomplete="off">
<label for="birth-date">Birth date</label><input type="date" id="birth-date" name="birthDate" required autocomplete="off">
<button type="submit">Check in</button></form>"#,
            html::csrf_field(c)
        );
    }
    Response::html(status, html::page("Check in", &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: &str, v: &str, d: &str) -> Entry {
        Entry {
            health_card: n.into(),
            version_code: v.into(),
            birth_date: d.into(),
        }
    }

    #[test]
    fn entries_are_normalised_or_explained() {
        assert_eq!(
            normalise(&entry("1234 567 890", "ab", "1980-02-29")).unwrap(),
            ("1234567890".into(), "AB".into(), "1980-02-29".into())
        );
        assert!(normalise(&entry("123456789", "", "1980-01-01")).is_err());
        assert!(normalise(&entry("1234567890", "A1", "1980-01-01")).is_err());
        assert!(normalise(&entry("1234567890", "", "1981-02-29")).is_err());
    }

    #[test]
    fn the_screen_escapes_and_never_echoes_the_entry() {
        let c = Caller {
            user: "kiosk.main".into(),
            display_name: "Kiosk".into(),
            roles: vec!["kiosk".into()],
            permissions: vec![],
            site: "main".into(),
            site_name: "<Main>".into(),
            csrf_token: "t".into(),
        };
        let r = render(&c, 200, Some((false, NEUTRAL)), true);
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("&lt;Main&gt;"));
        assert!(body.contains(NEUTRAL));
        assert!(body.contains(r#"name="_csrf""#));
        assert!(!body.contains("value=\"1234"));
        let r = render(
            &c,
            200,
            Some((true, "You are checked in for 10:30 with Dr. Lee.")),
            true,
        );
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("You are checked in for 10:30 with Dr. Lee."));
        assert!(!body.contains("<form"));
    }
}
