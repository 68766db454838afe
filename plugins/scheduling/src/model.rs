//! The data model and the pure rules: times, availability, templates, statuses, occupancy.
//! Nothing here calls the host, so all of it is unit-tested natively.

use std::collections::BTreeMap;

use osler_sdk::Error;
use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

/// Occupancy is tracked in granules of this many minutes; appointments start and end on them.
pub const GRANULE: u16 = 5;
/// The longest appointment or block, in minutes.
pub const MAX_MINUTES: u16 = 12 * 60;
/// Minutes in a day: `24:00` is a valid end.
pub const DAY: u16 = 24 * 60;

/// A local date, `YYYY-MM-DD`.
pub fn parse_date(field: &str, s: &str) -> Result<Date, Error> {
    Date::parse(s, format_description!("[year]-[month]-[day]"))
        .map_err(|_| Error::invalid(format!("{field}: {s:?} is not a date (YYYY-MM-DD)")))
}

/// `YYYY-MM-DD`.
pub fn date_str(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `HH:MM` (00:00 to 24:00) as minutes after midnight.
pub fn parse_hm(field: &str, s: &str) -> Result<u16, Error> {
    let bad = || Error::invalid(format!("{field}: {s:?} is not a time (HH:MM)"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Minutes after midnight as `HH:MM`.
pub fn hm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Minutes after midnight as `HHMM`, for keys (sorts like the time).
pub fn hm_key(minutes: u16) -> String {
    format!("{:02}{:02}", minutes / 60, minutes % 60)
}

/// The site's local `YYYY-MM-DDTHH:MM:SS` (from the clock) as a date and minutes.
pub fn parse_local(local: &str) -> Result<(Date, u16), Error> {
    let date = parse_date("clock", local.get(..10).unwrap_or(""))?;
    let time = parse_hm("clock", local.get(11..16).unwrap_or(""))?;
    Ok((date, time))
}

/// Minutes since an arbitrary epoch, for comparing local times across midnight.
pub fn abs_minutes(date: Date, minutes: u16) -> i64 {
    i64::from(date.to_julian_day()) * i64::from(DAY) + i64::from(minutes)
}

/// The inverse of [`abs_minutes`].
pub fn from_abs(abs: i64) -> (Date, u16) {
    let day = abs.div_euclid(i64::from(DAY));
    let date = Date::from_julian_day(day as i32).unwrap_or(Date::MIN);
    (date, abs.rem_euclid(i64::from(DAY)) as u16)
}

/// An interval of a day, `start` inclusive, `end` exclusive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hours {
    pub start: String,
    pub end: String,
}

impl Hours {
    /// Start and end in minutes, checked: on the granule grid, start before end.
    pub fn span(&self, field: &str) -> Result<(u16, u16), Error> {
        let s = parse_hm(&format!("{field}.start"), &self.start)?;
        let e = parse_hm(&format!("{field}.end"), &self.end)?;
        if s >= e {
            return Err(Error::invalid(format!(
                "{field}: the start ({}) must be before the end ({})",
                self.start, self.end
            )));
        }
        if !s.is_multiple_of(GRANULE) || !e.is_multiple_of(GRANULE) {
            return Err(Error::invalid(format!(
                "{field}: times are on a {GRANULE}-minute grid"
            )));
        }
        Ok((s, e))
    }
}

/// Checks a day's intervals and returns them as sorted, non-overlapping minute spans.
pub fn check_hours(field: &str, hours: &[Hours]) -> Result<Vec<(u16, u16)>, Error> {
    let mut spans = hours
        .iter()
        .enumerate()
        .map(|(i, h)| h.span(&format!("{field}[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    spans.sort();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(Error::invalid(format!(
                "{field}: {}-{} overlaps {}-{}",
                hm(w[0].0),
                hm(w[0].1),
                hm(w[1].0),
                hm(w[1].1)
            )));
        }
    }
    Ok(spans)
}

/// A provider's weekly hours at a site: ISO weekday (`1` Monday … `7` Sunday) → intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weekly {
    pub days: BTreeMap<u8, Vec<Hours>>,
}

impl Weekly {
    pub fn validate(&self) -> Result<(), Error> {
        for (day, hours) in &self.days {
            if !(1..=7).contains(day) {
                return Err(Error::invalid(format!(
                    "days: {day} is not a weekday (1 Monday to 7 Sunday)"
                )));
            }
            check_hours(&format!("days.{day}"), hours)?;
        }
        Ok(())
    }
}

/// Hours that replace the weekly ones on one date (none: not working that day).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayOverride {
    pub hours: Vec<Hours>,
}

/// A day the clinic is closed at a site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holiday {
    pub date: String,
    pub name: String,
}

/// Whether `[start, end)` on a day falls inside one of that day's intervals.
pub fn within(hours: &[Hours], start: u16, end: u16) -> bool {
    hours
        .iter()
        .any(|h| h.span("hours").is_ok_and(|(s, e)| s <= start && end <= e))
}

/// What happens when a slot code's daily limit is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitType {
    /// Book anyway, and say so (OSCAR's behaviour).
    Warn,
    /// Refuse the booking.
    Block,
}

/// A named slot code of the templates, e.g. `1` = 15-minute regular.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotCode {
    pub code: String,
    pub name: String,
    pub minutes: u16,
    #[serde(default = "default_colour")]
    pub colour: String,
    /// Appointments in this code's slots per provider and day.
    #[serde(default)]
    pub limit_per_day: Option<u32>,
    #[serde(default = "default_limit_type")]
    pub limit_type: LimitType,
}

fn default_colour() -> String {
    "#dfe9f5".into()
}

fn default_limit_type() -> LimitType {
    LimitType::Warn
}

/// A code is one letter or digit, as in OSCAR's templates.
pub fn check_code(code: &str) -> Result<char, Error> {
    let mut chars = code.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphanumeric() => Ok(c),
        _ => Err(Error::invalid(format!(
            "code: {code:?} is not one letter or digit"
        ))),
    }
}

impl SlotCode {
    pub fn validate(&self) -> Result<(), Error> {
        check_code(&self.code)?;
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 60 {
            return Err(Error::invalid("name: 1 to 60 characters"));
        }
        if self.minutes == 0 || !self.minutes.is_multiple_of(GRANULE) || self.minutes > MAX_MINUTES
        {
            return Err(Error::invalid(format!(
                "minutes: a multiple of {GRANULE} from {GRANULE} to {MAX_MINUTES}"
            )));
        }
        let c = &self.colour;
        let hex =
            c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|h| h.is_ascii_hexdigit());
        if !hex {
            return Err(Error::invalid("colour: a colour like #dfe9f5"));
        }
        Ok(())
    }
}

/// A provider's day: slot codes back to back from `start`, e.g. `start` 09:00, `slots` `11P1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTemplate {
    pub start: String,
    pub slots: String,
}

/// One slot of a laid-out template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub code: char,
    pub start: u16,
    pub end: u16,
}

impl DayTemplate {
    /// The template's slots with their times; every code must be defined in `codes`.
    pub fn layout(&self, codes: &BTreeMap<char, SlotCode>) -> Result<Vec<Slot>, Error> {
        let mut at = parse_hm("start", &self.start)?;
        if !at.is_multiple_of(GRANULE) {
            return Err(Error::invalid(format!(
                "start: times are on a {GRANULE}-minute grid"
            )));
        }
        let mut out = Vec::new();
        for c in self.slots.chars() {
            let code = codes
                .get(&c)
                .ok_or_else(|| Error::invalid(format!("slots: no slot code {c:?} at this site")))?;
            let end = at + code.minutes;
            if end > DAY {
                return Err(Error::invalid("slots: the template runs past midnight"));
            }
            out.push(Slot {
                code: c,
                start: at,
                end,
            });
            at = end;
        }
        if out.is_empty() {
            return Err(Error::invalid("slots: at least one slot code"));
        }
        Ok(out)
    }
}

/// Slot length on the grid of a provider who works without a template.
pub const DEFAULT_SLOT: u16 = 15;

/// The bookable slots of a provider's day, as the appointment book shows them: the
/// template's slots that lie inside the day's hours, or, without a template, the hours cut
/// into [`DEFAULT_SLOT`]-minute slots (a shorter last slot where an interval ends off the
/// 15-minute mark). No hours (a day off, a holiday): no slots. `code` is `' '` for slots
/// that come from the hours alone.
pub fn day_slots(hours: &[Hours], template: Option<&[Slot]>) -> Vec<Slot> {
    let mut spans: Vec<(u16, u16)> = hours.iter().filter_map(|h| h.span("hours").ok()).collect();
    spans.sort();
    match template {
        Some(slots) => slots
            .iter()
            .filter(|s| spans.iter().any(|&(a, b)| a <= s.start && s.end <= b))
            .cloned()
            .collect(),
        None => {
            let mut out = Vec::new();
            for (a, b) in spans {
                let mut at = a;
                while at < b {
                    let end = (at + DEFAULT_SLOT).min(b);
                    out.push(Slot {
                        code: ' ',
                        start: at,
                        end,
                    });
                    at = end;
                }
            }
            out
        }
    }
}

/// The template slot an appointment starting at `start` falls in.
pub fn slot_at(slots: &[Slot], start: u16) -> Option<&Slot> {
    slots.iter().find(|s| s.start <= start && start < s.end)
}

/// A template day: a date (`2026-11-30`) or a weekday (`mon` … `sun`).
pub fn template_day(s: &str) -> Result<String, Error> {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    if DAYS.contains(&s) {
        return Ok(s.to_string());
    }
    parse_date("day", s).map(date_str).map_err(|_| {
        Error::invalid(format!(
            "day: {s:?} is neither a date (YYYY-MM-DD) nor a weekday (mon … sun)"
        ))
    })
}

/// The Monday of the week `d` is in.
pub fn monday_of(d: Date) -> Date {
    let back = i64::from(d.weekday().number_days_from_monday());
    d.checked_sub(time::Duration::days(back)).unwrap_or(d)
}

/// `d` moved by `days` (clamped to the calendar's range).
pub fn add_days(d: Date, days: i64) -> Date {
    d.checked_add(time::Duration::days(days)).unwrap_or(d)
}

/// `mon` … `sun` for a date.
pub fn weekday_key(d: Date) -> &'static str {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [usize::from(d.weekday().number_days_from_monday())]
}

/// An appointment type, carrying a default duration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApptType {
    pub name: String,
    pub minutes: u16,
}

/// An appointment status, per site: a code, what it means, and its FHIR equivalent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub code: String,
    pub label: String,
    pub fhir: String,
}

/// FHIR R4 `Appointment.status` values.
pub const FHIR_STATUSES: [&str; 10] = [
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
];

/// A new appointment's status.
pub const TO_DO: &str = "t";
/// The patient is here (what the kiosk sets).
pub const HERE: &str = "H";
/// Cancelled: frees the time and leaves the day sheet.
pub const CANCELLED: &str = "C";

/// OSCAR's statuses, the starting set of every site.
pub fn default_statuses() -> Vec<Status> {
    [
        ("t", "To do", "booked"),
        ("T", "Day sheet printed", "booked"),
        ("H", "Here", "arrived"),
        ("P", "Picked (with the provider)", "checked-in"),
        ("E", "Empty room", "fulfilled"),
        ("N", "No show", "noshow"),
        ("C", "Cancelled", "cancelled"),
        ("B", "Billed", "fulfilled"),
    ]
    .into_iter()
    .map(|(code, label, fhir)| Status {
        code: code.into(),
        label: label.into(),
        fhir: fhir.into(),
    })
    .collect()
}

/// Checks a site's status list: distinct one-character codes, known FHIR values, and the
/// three codes the plugin itself sets (`t`, `H`, `C`) with fitting meanings.
pub fn check_statuses(list: &[Status]) -> Result<(), Error> {
    for (i, s) in list.iter().enumerate() {
        check_code(&s.code)
            .map_err(|_| Error::invalid(format!("statuses[{i}].code: one letter or digit")))?;
        if s.label.trim().is_empty() || s.label.chars().count() > 60 {
            return Err(Error::invalid(format!(
                "statuses[{i}].label: 1 to 60 characters"
            )));
        }
        if !FHIR_STATUSES.contains(&s.fhir.as_str()) {
            return Err(Error::invalid(format!(
                "statuses[{i}].fhir: {:?} is not a FHIR Appointment.status",
                s.fhir
            )));
        }
        if list[..i].iter().any(|o| o.code == s.code) {
            return Err(Error::invalid(format!(
                "statuses[{i}].code: {:?} appears twice",
                s.code
            )));
        }
    }
    for (code, fhir) in [
        (TO_DO, "booked"),
        (HERE, "arrived"),
        (CANCELLED, "cancelled"),
    ] {
        if !list.iter().any(|s| s.code == code && s.fhir == fhir) {
            return Err(Error::invalid(format!(
                "statuses: the list must keep {code:?} mapped to {fhir:?}"
            )));
        }
    }
    Ok(())
}

/// One change of an appointment's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: String,
    /// The user name (for a self check-in, the kiosk device's user).
    pub by: String,
    /// The site's local time, `YYYY-MM-DDTHH:MM:SS`.
    pub at: String,
}

/// An appointment as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    pub id: String,
    pub site: String,
    pub provider: String,
    pub provider_name: String,
    /// The patient's id, or `None` for someone not yet registered (then `name` is set).
    pub patient: Option<String>,
    pub name: Option<String>,
    pub date: String,
    pub start: String,
    pub end: String,
    #[serde(rename = "type")]
    pub appt_type: Option<String>,
    /// The template slot code it was booked into, if any.
    pub code: Option<String>,
    pub reason: String,
    pub notes: String,
    pub status: String,
    pub double_booked: bool,
    pub booked_by: String,
    pub booked_at: String,
    pub history: Vec<StatusChange>,
    /// Every reschedule, oldest first (absent in appointments stored before moves existed).
    #[serde(default)]
    pub moves: Vec<Move>,
}

/// Where and when an appointment is (or was): provider, date, start and end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub provider: String,
    pub date: String,
    pub start: String,
    pub end: String,
}

/// One reschedule of an appointment: from where to where, who moved it and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub from: Place,
    pub to: Place,
    /// The user name.
    pub by: String,
    /// The site's local time, `YYYY-MM-DDTHH:MM:SS`.
    pub at: String,
}

impl Appointment {
    /// Where it is now.
    pub fn place(&self) -> Place {
        Place {
            provider: self.provider.clone(),
            date: self.date.clone(),
            start: self.start.clone(),
            end: self.end.clone(),
        }
    }

    pub fn span(&self) -> (u16, u16) {
        (
            parse_hm("start", &self.start).unwrap_or(0),
            parse_hm("end", &self.end).unwrap_or(0),
        )
    }
}

/// The place an appointment would move to: the same length at `start` on `date` with
/// `provider`. Refused: a cancelled appointment (`cancelled`: whether its status is one),
/// a start off the 5-minute grid, a move past midnight, a move to where it already is.
pub fn move_target(
    a: &Appointment,
    cancelled: bool,
    provider: &str,
    date: Date,
    start: u16,
) -> Result<Place, Error> {
    if cancelled {
        return Err(Error::conflict(format!(
            "appointment {} is cancelled; book a new one instead of moving it",
            a.id
        )));
    }
    let (s0, e0) = a.span();
    let end = start + (e0 - s0);
    if !start.is_multiple_of(GRANULE) {
        return Err(Error::invalid(format!(
            "start: appointments start on a {GRANULE}-minute grid"
        )));
    }
    if end > DAY {
        return Err(Error::invalid(format!(
            "start: the appointment ({} minutes) would run past midnight",
            e0 - s0
        )));
    }
    let to = Place {
        provider: provider.to_string(),
        date: date_str(date),
        start: hm(start),
        end: hm(end),
    };
    if to == a.place() {
        return Err(Error::invalid(
            "start: the appointment is already at that time; choose another slot",
        ));
    }
    Ok(to)
}

/// Whether a time already taken by appointment `other` may be booked (or moved onto): only
/// where the site allows double booking. `Ok(true)`: it is a double booking.
pub fn overlap_rule(
    other: Option<&str>,
    double_booking: bool,
    what: impl FnOnce() -> String,
) -> Result<bool, Error> {
    match other {
        None => Ok(false),
        Some(_) if double_booking => Ok(true),
        Some(o) => Err(Error::conflict(format!(
            "{} overlaps appointment {o}; this site does not allow double booking",
            what()
        ))),
    }
}

/// What occupies one granule of a provider's day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occupancy {
    /// Appointment ids (more than one only where double booking is allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub appointments: Vec<String>,
    /// A "do not book" block's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<String>,
}

impl Occupancy {
    pub fn is_empty(&self) -> bool {
        self.appointments.is_empty() && self.block.is_none()
    }
}

/// The granule starts covering `[start, end)`.
pub fn granules(start: u16, end: u16) -> impl Iterator<Item = u16> {
    (start..end).step_by(usize::from(GRANULE))
}

/// A "do not book" block on a provider's day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub id: String,
    pub provider: String,
    pub date: String,
    pub start: String,
    pub end: String,
    pub reason: String,
}

/// A named waiting list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitList {
    pub name: String,
    pub description: String,
}

/// A patient on a waiting list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitEntry {
    pub id: String,
    pub list: String,
    pub patient: String,
    pub note: String,
    /// Lower comes first; entries with the same position in the order they were added.
    pub position: u32,
    /// The site's local date it was added.
    pub added: String,
    pub added_by: String,
    /// Put there by the patient themself (through `osler:scheduling/requests`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub patient_request: bool,
}

/// A waiting list's name: a short slug, since it is part of keys and paths.
pub fn check_list_name(name: &str) -> Result<(), Error> {
    let ok = (1..=40).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "list: 1 to 40 lowercase letters, digits or '-'",
        ))
    }
}

/// A patient id or provider user name as used in keys: no `/`, printable, short.
pub fn check_ref(field: &str, s: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!("{field}: {s:?} is not a valid id")))
    }
}

/// A free-text field: trimmed, at most `max` characters.
pub fn text(field: &str, s: &str, max: usize) -> Result<String, Error> {
    let t = s.trim();
    if t.chars().count() > max {
        return Err(Error::invalid(format!("{field}: at most {max} characters")));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes() -> BTreeMap<char, SlotCode> {
        let mk = |c: char, m| SlotCode {
            code: c.to_string(),
            name: "x".into(),
            minutes: m,
            colour: default_colour(),
            limit_per_day: None,
            limit_type: LimitType::Warn,
        };
        [('1', mk('1', 15)), ('P', mk('P', 30))]
            .into_iter()
            .collect()
    }

    #[test]
    fn times_parse_and_print() {
        assert_eq!(parse_hm("t", "09:30").unwrap(), 570);
        assert_eq!(parse_hm("t", "24:00").unwrap(), 1440);
        for bad in ["9:30", "24:05", "12:60", "ab:cd", "", "12:3"] {
            assert!(parse_hm("t", bad).is_err(), "{bad}");
        }
        assert_eq!(hm(570), "09:30");
        assert_eq!(hm_key(570), "0930");
        let (d, m) = parse_local("2026-11-30T10:07:59").unwrap();
        assert_eq!((date_str(d).as_str(), m), ("2026-11-30", 607));
        assert!(parse_date("d", "2026-02-30").is_err());
    }

    #[test]
    fn absolute_minutes_cross_midnight() {
        let d = parse_date("d", "2026-11-30").unwrap();
        let a = abs_minutes(d, 1430);
        let b = abs_minutes(d.next_day().unwrap(), 10);
        assert_eq!(b - a, 20);
        assert_eq!(from_abs(b), (d.next_day().unwrap(), 10));
    }

    #[test]
    fn hours_must_be_ordered_on_the_grid_and_disjoint() {
        let h = |s: &str, e: &str| Hours {
            start: s.into(),
            end: e.into(),
        };
        assert!(check_hours("h", &[h("09:00", "12:00"), h("13:00", "17:00")]).is_ok());
        assert!(check_hours("h", &[h("09:00", "12:00"), h("11:00", "17:00")]).is_err());
        assert!(check_hours("h", &[h("12:00", "09:00")]).is_err());
        assert!(check_hours("h", &[h("09:02", "12:00")]).is_err());
        let hours = [h("09:00", "12:00")];
        assert!(within(&hours, 540, 555));
        assert!(within(&hours, 705, 720));
        assert!(!within(&hours, 710, 725));
        assert!(!within(&hours, 525, 545));
    }

    #[test]
    fn templates_lay_out_codes_back_to_back() {
        let t = DayTemplate {
            start: "09:00".into(),
            slots: "1P1".into(),
        };
        let slots = t.layout(&codes()).unwrap();
        assert_eq!(
            slots
                .iter()
                .map(|s| (s.code, s.start, s.end))
                .collect::<Vec<_>>(),
            vec![('1', 540, 555), ('P', 555, 585), ('1', 585, 600)]
        );
        assert_eq!(slot_at(&slots, 560).unwrap().code, 'P');
        assert!(slot_at(&slots, 600).is_none());
        let bad = DayTemplate {
            start: "09:00".into(),
            slots: "1X".into(),
        };
        assert!(bad.layout(&codes()).is_err());
    }

    #[test]
    fn the_book_shows_template_slots_inside_the_hours_or_the_hours_in_15_minutes() {
        let h = |a: &str, b: &str| Hours {
            start: a.into(),
            end: b.into(),
        };
        // Without a template: 15-minute slots, a shorter last one where the hours end.
        let hours = [h("13:00", "13:40"), h("09:00", "09:30")];
        let slots = day_slots(&hours, None);
        let spans: Vec<(u16, u16)> = slots.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(
            spans,
            [(540, 555), (555, 570), (780, 795), (795, 810), (810, 820)]
        );
        assert!(slots.iter().all(|s| s.code == ' '));
        // A template: its own slot lengths, only the slots inside the hours.
        let t = DayTemplate {
            start: "08:30".into(),
            slots: "1P11".into(),
        };
        let laid = t.layout(&codes()).unwrap();
        let shown = day_slots(&[h("09:00", "10:00")], Some(&laid));
        let spans: Vec<(char, u16, u16)> = shown.iter().map(|s| (s.code, s.start, s.end)).collect();
        assert_eq!(
            spans,
            [('1', 555, 570), ('1', 570, 585)],
            "the 08:30 slot and the P from 08:45 are not inside the hours"
        );
        let shown = day_slots(&[h("08:00", "12:00")], Some(&laid));
        assert_eq!(shown.len(), 4);
        assert_eq!(
            (shown[1].start, shown[1].end),
            (525, 555),
            "P is 30 minutes"
        );
        // No hours (a day off): nothing to book, template or not.
        assert!(day_slots(&[], Some(&laid)).is_empty());
        assert!(day_slots(&[], None).is_empty());
    }

    fn appt(start: &str, end: &str) -> Appointment {
        Appointment {
            id: "drlee-20300107-1".into(),
            site: "main".into(),
            provider: "drlee".into(),
            provider_name: "Dr. Lee".into(),
            patient: Some("p1".into()),
            name: None,
            date: "2030-01-07".into(),
            start: start.into(),
            end: end.into(),
            appt_type: None,
            code: None,
            reason: String::new(),
            notes: String::new(),
            status: TO_DO.into(),
            double_booked: false,
            booked_by: "reception".into(),
            booked_at: "2029-12-01T10:00:00".into(),
            history: vec![],
            moves: vec![],
        }
    }

    #[test]
    fn a_move_keeps_the_length_and_refuses_what_cannot_be() {
        let a = appt("09:00", "09:20");
        let day = parse_date("d", "2030-01-08").unwrap();
        let to = move_target(&a, false, "nurse.kim", day, 14 * 60).unwrap();
        assert_eq!(
            to,
            Place {
                provider: "nurse.kim".into(),
                date: "2030-01-08".into(),
                start: "14:00".into(),
                end: "14:20".into(),
            }
        );
        let e = move_target(&a, true, "drlee", day, 600).unwrap_err();
        assert!(matches!(e, Error::Conflict(_)) && e.message().contains("cancelled"));
        let e = move_target(&a, false, "drlee", day, 601).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)) && e.message().contains("grid"));
        let e = move_target(&a, false, "drlee", day, 23 * 60 + 50).unwrap_err();
        assert!(e.message().contains("past midnight"), "{}", e.message());
        let same = parse_date("d", "2030-01-07").unwrap();
        let e = move_target(&a, false, "drlee", same, 540).unwrap_err();
        assert!(e.message().contains("already at that time"));
        // The same time with another provider, or another time the same day, is a move.
        assert!(move_target(&a, false, "nurse.kim", same, 540).is_ok());
        assert!(move_target(&a, false, "drlee", same, 545).is_ok());
    }

    #[test]
    fn an_occupied_time_is_refused_unless_the_site_allows_double_booking() {
        let what = || "09:00 to 09:15 on 2030-01-07".to_string();
        assert!(!overlap_rule(None, false, what).unwrap());
        assert!(overlap_rule(Some("drlee-20300107-2"), true, what).unwrap());
        let e = overlap_rule(Some("drlee-20300107-2"), false, what).unwrap_err();
        assert!(matches!(e, Error::Conflict(_)));
        assert_eq!(
            e.message(),
            "09:00 to 09:15 on 2030-01-07 overlaps appointment drlee-20300107-2; this site does \
             not allow double booking"
        );
    }

    #[test]
    fn template_days_and_weekdays() {
        assert_eq!(template_day("mon").unwrap(), "mon");
        assert_eq!(template_day("2026-11-30").unwrap(), "2026-11-30");
        assert!(template_day("monday").is_err());
        assert_eq!(weekday_key(parse_date("d", "2026-11-30").unwrap()), "mon");
    }

    #[test]
    fn oscar_statuses_are_a_valid_starting_set() {
        let s = default_statuses();
        assert!(check_statuses(&s).is_ok());
        let fhir = |c: &str| s.iter().find(|x| x.code == c).unwrap().fhir.clone();
        assert_eq!(fhir("H"), "arrived");
        assert_eq!(fhir("N"), "noshow");
        let mut without_here = s.clone();
        without_here.retain(|x| x.code != "H");
        assert!(check_statuses(&without_here).is_err());
        let mut dup = s.clone();
        dup.push(s[0].clone());
        assert!(check_statuses(&dup).is_err());
        let mut bad = s;
        bad[1].fhir = "done".into();
        assert!(check_statuses(&bad).is_err());
    }

    #[test]
    fn granules_cover_the_span() {
        assert_eq!(granules(540, 555).collect::<Vec<_>>(), vec![540, 545, 550]);
    }

    #[test]
    fn ids_and_names() {
        assert!(check_ref("p", "nurse.kim").is_ok());
        assert!(check_ref("p", "a/b").is_err());
        assert!(check_list_name("physio").is_ok());
        assert!(check_list_name("Physio List").is_err());
        assert!(check_code("P").is_ok());
        assert!(check_code("PP").is_err());
    }
}
