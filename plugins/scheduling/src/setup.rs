//! Changing a site's schedule set-up: weekly hours, holidays, slot codes, day templates and
//! appointment types. The JSON API (`api.rs`) and the set-up pages (`pages.rs`) both go
//! through these, so a form and a request refuse the same bad input with the same message,
//! and bad input writes nothing.

use osler_sdk::{Error, kv};

use crate::model::*;
use crate::store::{self, key};

/// Replaces `provider`'s weekly hours.
pub fn set_weekly(site: &str, provider: &str, w: &Weekly) -> Result<(), Error> {
    store::provider(provider)?;
    w.validate()?;
    kv::put(&key(site, &format!("avail/{provider}/week")), w)
}

/// `provider`'s weekly hours (none set: no hours).
pub fn weekly(site: &str, provider: &str) -> Result<Weekly, Error> {
    check_ref("provider", provider)?;
    Ok(kv::get(&key(site, &format!("avail/{provider}/week")))?.unwrap_or_default())
}

/// Marks `date` a clinic holiday called `name`.
pub fn set_holiday(site: &str, date: &str, name: &str) -> Result<Holiday, Error> {
    let d = date_str(parse_date("date", date.trim())?);
    let name = text("name", name, 80)?;
    if name.is_empty() {
        return Err(Error::invalid("name: must not be empty"));
    }
    let h = Holiday {
        date: d.clone(),
        name,
    };
    kv::put(&key(site, &format!("holiday/{d}")), &h)?;
    Ok(h)
}

pub fn delete_holiday(site: &str, date: &str) -> Result<(), Error> {
    let d = date_str(parse_date("date", date.trim())?);
    kv::delete(&key(site, &format!("holiday/{d}")))
}

pub fn holidays(site: &str) -> Result<Vec<Holiday>, Error> {
    Ok(kv::scan_all(&key(site, "holiday/"))?
        .into_iter()
        .map(|(_, h)| h)
        .collect())
}

/// Adds or replaces a slot code.
pub fn set_code(site: &str, code: &SlotCode) -> Result<(), Error> {
    code.validate()?;
    kv::put(&key(site, &format!("code/{}", code.code)), code)
}

pub fn delete_code(site: &str, code: &str) -> Result<(), Error> {
    check_code(code)?;
    kv::delete(&key(site, &format!("code/{code}")))
}

/// The key of `provider`'s template for `day` (a date or `mon` … `sun`).
pub fn template_key(site: &str, provider: &str, day: &str) -> Result<String, Error> {
    check_ref("provider", provider)?;
    let day = template_day(day.trim())?;
    Ok(key(site, &format!("template/{provider}/{day}")))
}

/// Sets `provider`'s template for `day`; every code in it must exist at the site.
pub fn set_template(site: &str, provider: &str, day: &str, t: &DayTemplate) -> Result<(), Error> {
    store::provider(provider)?;
    let k = template_key(site, provider, day)?;
    t.layout(&store::codes(site)?)?;
    kv::put(&k, t)
}

pub fn template(site: &str, provider: &str, day: &str) -> Result<Option<DayTemplate>, Error> {
    kv::get(&template_key(site, provider, day)?)
}

pub fn delete_template(site: &str, provider: &str, day: &str) -> Result<(), Error> {
    kv::delete(&template_key(site, provider, day)?)
}

/// Adds or replaces an appointment type with its default duration.
pub fn set_type(site: &str, name: &str, minutes: u16) -> Result<ApptType, Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 40 || name.contains('/') {
        return Err(Error::invalid("name: 1 to 40 characters, no '/'"));
    }
    if minutes == 0 || !minutes.is_multiple_of(GRANULE) || minutes > MAX_MINUTES {
        return Err(Error::invalid(format!(
            "minutes: a multiple of {GRANULE} up to {MAX_MINUTES}"
        )));
    }
    let t = ApptType {
        name: name.to_string(),
        minutes,
    };
    kv::put(&key(site, &format!("type/{name}")), &t)?;
    Ok(t)
}

/// Parses one weekday's hours as typed in the hours form: intervals like `09:00-12:00`,
/// separated by commas (spaces allowed, an en dash too); empty: not working that day.
pub fn parse_day_hours(field: &str, s: &str) -> Result<Vec<Hours>, Error> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part
            .split_once('-')
            .or_else(|| part.split_once('–'))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{field}: {part:?} is not an interval like 09:00-12:00"
                ))
            })?;
        out.push(Hours {
            start: a.trim().to_string(),
            end: b.trim().to_string(),
        });
    }
    check_hours(field, &out)?;
    Ok(out)
}

/// A day's hours as the hours form shows them: `09:00-12:00, 13:00-17:00`.
pub fn format_day_hours(hours: &[Hours]) -> String {
    hours
        .iter()
        .map(|h| format!("{}-{}", h.start, h.end))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_hours_parse_from_the_form_and_print_back() {
        let h = parse_day_hours("mon", " 09:00-12:00, 13:00 – 17:00 ").unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(format_day_hours(&h), "09:00-12:00, 13:00-17:00");
        assert!(parse_day_hours("mon", "").unwrap().is_empty());
        let e = parse_day_hours("mon", "9 to 5").unwrap_err();
        assert!(e.message().contains("mon: \"9 to 5\""), "{}", e.message());
        let e = parse_day_hours("tue", "12:00-09:00").unwrap_err();
        assert!(e.message().contains("before the end"), "{}", e.message());
        let e = parse_day_hours("wed", "09:00-12:00, 11:00-13:00").unwrap_err();
        assert!(e.message().contains("overlaps"), "{}", e.message());
        assert!(
            parse_day_hours("thu", "09:03-12:00").is_err(),
            "off the grid"
        );
    }
}
