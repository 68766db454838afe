//! The schedule in the key-value store: keys, booking, status changes, day sheets.
//!
//! Every key starts with `site/<site>/`: the store is shared by all sites, the schedule is not.
//!
//! | key | value |
//! |---|---|
//! | `avail/<provider>/week` | [`Weekly`] hours |
//! | `avail/<provider>/date/<date>` | [`DayOverride`] for one date |
//! | `holiday/<date>` | [`Holiday`] |
//! | `code/<c>` | [`SlotCode`] |
//! | `template/<provider>/<date or mon…sun>` | [`DayTemplate`] |
//! | `type/<name>` | [`ApptType`] |
//! | `statuses` | the site's [`Status`] list (absent: OSCAR's set) |
//! | `day/<provider>/<date>/<HHMM>/<id>` | the [`Appointment`] itself: the day-sheet index |
//! | `appt/<id>` | the appointment's `day/…` key |
//! | `patient/<patient>/<date>T<HHMM>/<id>` | the appointment's `day/…` key |
//! | `occ/<provider>/<date>/<HHMM>` | [`Occupancy`] of one 5-minute granule |
//! | `seq/<provider>/<date>` | the last appointment or block number of that day |
//! | `count/<provider>/<date>/<code>` | appointments booked into that slot code that day |
//! | `block/<provider>/<date>/<id>` | a "do not book" [`Block`] |
//! | `waitlist/<list>` | [`WaitList`] |
//! | `wait/<list>/<id>`, `wait-seq/<list>` | [`WaitEntry`], the list's last entry number |
//! | `wait-patient/<patient>/<list>/<id>` | marks a patient's entry, to find their lists |

use std::collections::{BTreeMap, HashMap};

use osler_sdk::{Error, directory, kv, patients};
use serde::{Deserialize, Serialize};

use crate::events;
use crate::model::*;
use crate::txn::{self, Txn};

pub fn key(site: &str, rest: &str) -> String {
    format!("site/{site}/{rest}")
}

fn day_key(site: &str, provider: &str, date: &str, start: u16, id: &str) -> String {
    key(
        site,
        &format!("day/{provider}/{date}/{}/{id}", hm_key(start)),
    )
}

fn occ_key(site: &str, provider: &str, date: &str, at: u16) -> String {
    key(site, &format!("occ/{provider}/{date}/{}", hm_key(at)))
}

// ---------------------------------------------------------------------------------------------
// Configuration of a site's schedule

pub fn statuses(site: &str) -> Result<Vec<Status>, Error> {
    Ok(kv::get(&key(site, "statuses"))?.unwrap_or_else(default_statuses))
}

pub fn status_of<'a>(list: &'a [Status], code: &str) -> Option<&'a Status> {
    list.iter().find(|s| s.code == code)
}

/// Whether an appointment with this status stays off the day sheet and frees its time.
pub fn is_cancelled(list: &[Status], code: &str) -> bool {
    status_of(list, code).is_some_and(|s| s.fhir == "cancelled")
}

pub fn codes(site: &str) -> Result<BTreeMap<char, SlotCode>, Error> {
    Ok(kv::scan_all::<SlotCode>(&key(site, "code/"))?
        .into_iter()
        .filter_map(|(_, c)| Some((c.code.chars().next()?, c)))
        .collect())
}

pub fn types(site: &str) -> Result<Vec<ApptType>, Error> {
    Ok(kv::scan_all::<ApptType>(&key(site, "type/"))?
        .into_iter()
        .map(|(_, t)| t)
        .collect())
}

/// The staff member `user`, if they see patients at this site (a physician or a nurse).
pub fn provider(user: &str) -> Result<directory::Person, Error> {
    check_ref("provider", user)?;
    let person = directory::person(user).map_err(|e| match e {
        Error::NotFound(_) => {
            Error::invalid(format!("provider: no staff member {user:?} at this site"))
        }
        e => e,
    })?;
    if !sees_patients(&person) {
        return Err(Error::invalid(format!(
            "provider: {user:?} does not see patients (not a physician or nurse)"
        )));
    }
    Ok(person)
}

pub fn sees_patients(p: &directory::Person) -> bool {
    p.roles.iter().any(|r| r == "physician" || r == "nurse")
}

/// Staff who see patients at this site, by display name.
pub fn providers() -> Result<Vec<directory::Person>, Error> {
    let mut all: Vec<_> = directory::staff()?
        .into_iter()
        .filter(sees_patients)
        .collect();
    all.sort_by(|a, b| a.display_name.cmp(&b.display_name));
    Ok(all)
}

/// The hours `provider` works on `date`: none on a holiday, else the date's override, else the
/// weekly hours for that weekday. Memoised per request, for imports.
#[derive(Default)]
pub struct Calendar {
    memo: HashMap<String, Option<serde_json::Value>>,
    patients: std::collections::HashSet<String>,
}

impl Calendar {
    /// Refuses a patient id that names no patient: read through the host (`patients.read`,
    /// for the person booking, audited like any read), once per patient per request.
    pub fn registered(&mut self, patient: &str) -> Result<(), Error> {
        if self.patients.contains(patient) {
            return Ok(());
        }
        match patients::get(patient) {
            Ok(_) => {
                self.patients.insert(patient.to_string());
                Ok(())
            }
            Err(Error::NotFound(_)) => Err(Error::invalid(format!(
                "patient: there is no patient with id {patient:?} (a chart number or a name is \
                 not an id); choose a registered patient, or book by name for someone not yet \
                 registered"
            ))),
            Err(Error::Denied(m)) => Err(Error::denied(format!(
                "patient: booking a registered patient needs the right to read their record ({m})"
            ))),
            Err(e) => Err(e),
        }
    }

    fn get<T: serde::de::DeserializeOwned>(&mut self, k: String) -> Result<Option<T>, Error> {
        let v = match self.memo.get(&k) {
            Some(v) => v.clone(),
            None => {
                let v: Option<serde_json::Value> = kv::get(&k)?;
                self.memo.insert(k, v.clone());
                v
            }
        };
        v.map(|v| serde_json::from_value(v).map_err(|e| Error::internal(e.to_string())))
            .transpose()
    }

    pub fn hours(
        &mut self,
        site: &str,
        provider: &str,
        date: time::Date,
    ) -> Result<Vec<Hours>, Error> {
        let d = date_str(date);
        if self
            .get::<Holiday>(key(site, &format!("holiday/{d}")))?
            .is_some()
        {
            return Ok(Vec::new());
        }
        if let Some(o) =
            self.get::<DayOverride>(key(site, &format!("avail/{provider}/date/{d}")))?
        {
            return Ok(o.hours);
        }
        let weekly: Weekly = self
            .get(key(site, &format!("avail/{provider}/week")))?
            .unwrap_or_default();
        let n = date.weekday().number_from_monday();
        Ok(weekly.days.get(&n).cloned().unwrap_or_default())
    }

    pub fn holiday(&mut self, site: &str, date: &str) -> Result<Option<Holiday>, Error> {
        self.get(key(site, &format!("holiday/{date}")))
    }

    /// The provider's template for `date`: the date's own, else the weekday's.
    pub fn template(
        &mut self,
        site: &str,
        provider: &str,
        date: time::Date,
    ) -> Result<Option<DayTemplate>, Error> {
        let d = date_str(date);
        if let Some(t) = self.get(key(site, &format!("template/{provider}/{d}")))? {
            return Ok(Some(t));
        }
        self.get(key(
            site,
            &format!("template/{provider}/{}", weekday_key(date)),
        ))
    }

    pub fn codes(&mut self, site: &str) -> Result<BTreeMap<char, SlotCode>, Error> {
        if let Some(Some(v)) = self.memo.get("codes") {
            return serde_json::from_value(v.clone()).map_err(|e| Error::internal(e.to_string()));
        }
        let c = codes(site)?;
        let v = serde_json::to_value(&c).map_err(|e| Error::internal(e.to_string()))?;
        self.memo.insert("codes".into(), Some(v));
        Ok(c)
    }

    pub fn appt_type(&mut self, site: &str, name: &str) -> Result<Option<ApptType>, Error> {
        self.get(key(site, &format!("type/{name}")))
    }
}

// ---------------------------------------------------------------------------------------------
// Booking

/// What a booking asks for (the API's JSON and the booking form).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BookInput {
    pub provider: String,
    /// A registered patient's id …
    pub patient: Option<String>,
    /// … or the name of someone not yet registered.
    pub name: Option<String>,
    pub date: String,
    pub start: String,
    /// The end, or `minutes`, or the type's default duration.
    pub end: Option<String>,
    pub minutes: Option<u16>,
    #[serde(rename = "type")]
    pub appt_type: Option<String>,
    pub reason: String,
    pub notes: String,
}

/// A booking that passed every rule but the one that needs a transaction (occupancy).
pub struct Plan {
    appt: Appointment,
    start: u16,
    end: u16,
    /// The template slot's code, its daily limit (`u32::MAX`: none) and the limit's type.
    slot: Option<(String, u32, LimitType)>,
}

/// The answer to a booking.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Booked {
    pub appointment: Appointment,
    pub double_booked: bool,
    /// Limits that were passed where the site only warns.
    pub warnings: Vec<String>,
    /// The waiting-list entries of this patient, which the booker may now remove.
    pub waiting_lists: Vec<WaitEntry>,
}

/// Who books, where, and when.
pub struct Booker<'a> {
    pub site: &'a str,
    pub user: &'a str,
    pub now_local: &'a str,
    pub double_booking: bool,
}

/// Checks everything about `input` that does not depend on other bookings.
pub fn plan(
    b: &Booker,
    cal: &mut Calendar,
    people: &mut HashMap<String, String>,
    input: &BookInput,
) -> Result<Plan, Error> {
    let provider_name = match people.get(&input.provider) {
        Some(n) => n.clone(),
        None => {
            let p = provider(&input.provider)?;
            people.insert(input.provider.clone(), p.display_name.clone());
            p.display_name
        }
    };
    let (patient, name) = match (&input.patient, &input.name) {
        (Some(p), None) if !p.trim().is_empty() => {
            check_ref("patient", p.trim())?;
            cal.registered(p.trim())?;
            (Some(p.trim().to_string()), None)
        }
        (None, Some(n)) if !n.trim().is_empty() => (None, Some(text("name", n, 120)?)),
        _ => {
            return Err(Error::invalid(
                "patient: give a patient id, or a name for someone not yet registered (not both)",
            ));
        }
    };
    let date = parse_date("date", &input.date)?;
    let start = parse_hm("start", &input.start)?;
    let appt_type = match input
        .appt_type
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        Some(t) => Some(cal.appt_type(b.site, t)?.ok_or_else(|| {
            Error::invalid(format!("type: no appointment type {t:?} at this site"))
        })?),
        None => None,
    };
    let end = match (&input.end, input.minutes, &appt_type) {
        (Some(e), _, _) if !e.is_empty() => parse_hm("end", e)?,
        (_, Some(m), _) => start.saturating_add(m),
        (_, None, Some(t)) => start.saturating_add(t.minutes),
        _ => {
            return Err(Error::invalid(
                "end: give an end, minutes, or a type with a duration",
            ));
        }
    };
    if !start.is_multiple_of(GRANULE) || !end.is_multiple_of(GRANULE) {
        return Err(Error::invalid(format!(
            "start, end: appointments start and end on a {GRANULE}-minute grid"
        )));
    }
    if end <= start || end - start > MAX_MINUTES || end > DAY {
        return Err(Error::invalid(format!(
            "end: after the start, at most {MAX_MINUTES} minutes later, and by 24:00"
        )));
    }
    let reason = text("reason", &input.reason, 200)?;
    let notes = text("notes", &input.notes, 2000)?;

    let d = date_str(date);
    let slot = placement(
        b.site,
        cal,
        &input.provider,
        &provider_name,
        date,
        start,
        end,
    )?;
    Ok(Plan {
        appt: Appointment {
            id: String::new(),
            site: b.site.to_string(),
            provider: input.provider.clone(),
            provider_name,
            patient,
            name,
            date: d,
            start: hm(start),
            end: hm(end),
            appt_type: appt_type.map(|t| t.name),
            code: None,
            reason,
            notes,
            status: TO_DO.into(),
            double_booked: false,
            booked_by: b.user.to_string(),
            booked_at: b.now_local.to_string(),
            history: vec![StatusChange {
                status: TO_DO.into(),
                by: b.user.to_string(),
                at: b.now_local.to_string(),
            }],
            moves: Vec::new(),
        },
        start,
        end,
        slot,
    })
}

/// The rules of where an appointment may be, which do not depend on other appointments: not
/// a clinic holiday, inside the provider's hours that day. Returns the template slot the start
/// falls in: its code, daily limit (`u32::MAX`: none) and the limit's type.
pub fn placement(
    site: &str,
    cal: &mut Calendar,
    provider: &str,
    provider_name: &str,
    date: time::Date,
    start: u16,
    end: u16,
) -> Result<Option<(String, u32, LimitType)>, Error> {
    let d = date_str(date);
    if let Some(h) = cal.holiday(site, &d)? {
        return Err(Error::conflict(format!(
            "{d} is a clinic holiday ({}): nothing can be booked",
            h.name
        )));
    }
    let hours = cal.hours(site, provider, date)?;
    if !within(&hours, start, end) {
        return Err(Error::conflict(format!(
            "{} to {} on {d} is outside {provider_name}'s availability",
            hm(start),
            hm(end)
        )));
    }
    // The template slot the start falls in: its code is counted per day, against its limit.
    Ok(match cal.template(site, provider, date)? {
        Some(t) => {
            let codes = cal.codes(site)?;
            let slots = t.layout(&codes)?;
            slot_at(&slots, start).map(|s| {
                let c = &codes[&s.code];
                (
                    c.code.clone(),
                    c.limit_per_day.unwrap_or(u32::MAX),
                    c.limit_type,
                )
            })
        }
        None => None,
    })
}

/// Adds a planned booking to `txn`: occupancy, limits, id, indexes. Returns the appointment
/// and any warnings; `conflict` when the time is taken or a blocking limit is reached.
pub fn apply(b: &Booker, txn: &mut Txn, plan: &Plan) -> Result<(Appointment, Vec<String>), Error> {
    let site = b.site;
    let mut appt = plan.appt.clone();
    let (p, d) = (appt.provider.clone(), appt.date.clone());
    let mut warnings = Vec::new();

    let mut occupied = Vec::new();
    for g in granules(plan.start, plan.end) {
        let occ: Occupancy = txn.get(&occ_key(site, &p, &d, g))?.unwrap_or_default();
        if let Some(block) = &occ.block {
            return Err(Error::conflict(format!(
                "{} on {d} is blocked for {} (do not book: {block})",
                hm(g),
                appt.provider_name
            )));
        }
        occupied.push((g, occ));
    }
    let taken: Vec<&String> = occupied.iter().flat_map(|(_, o)| &o.appointments).collect();
    if let Some(other) = taken.first() {
        if !b.double_booking {
            return Err(Error::conflict(format!(
                "{} to {} on {d} overlaps appointment {other} of {}; this site does not allow double booking",
                appt.start, appt.end, appt.provider_name
            )));
        }
        appt.double_booked = true;
    }

    if let Some((code, limit, kind)) = &plan.slot {
        appt.code = Some(code.clone());
        let ck = key(site, &format!("count/{p}/{d}/{code}"));
        let n: u32 = txn.get(&ck)?.unwrap_or(0);
        if n >= *limit {
            let msg = format!(
                "{} already has {n} appointment(s) in '{code}' slots on {d}; the limit is {limit}",
                appt.provider_name
            );
            match kind {
                LimitType::Block => return Err(Error::conflict(msg)),
                LimitType::Warn => warnings.push(msg),
            }
        }
        txn.put(&ck, &(n + 1))?;
    }

    let sk = key(site, &format!("seq/{p}/{d}"));
    let n: u32 = txn.get(&sk)?.unwrap_or(0) + 1;
    txn.put(&sk, &n)?;
    appt.id = format!("{p}-{}-{n}", d.replace('-', ""));

    for (g, mut occ) in occupied {
        occ.appointments.push(appt.id.clone());
        txn.put(&occ_key(site, &p, &d, g), &occ)?;
    }
    let dk = day_key(site, &p, &d, plan.start, &appt.id);
    txn.put(&dk, &appt)?;
    txn.create(&key(site, &format!("appt/{}", appt.id)), &dk)?;
    if let Some(patient) = &appt.patient {
        txn.put(
            &key(
                site,
                &format!("patient/{patient}/{d}T{}/{}", hm_key(plan.start), appt.id),
            ),
            &dk,
        )?;
    }
    Ok((appt, warnings))
}

/// Books one appointment, atomically against every concurrent booking.
pub fn book(b: &Booker, input: &BookInput) -> Result<Booked, Error> {
    let plan = plan(b, &mut Calendar::default(), &mut HashMap::new(), input)?;
    let list = statuses(b.site)?;
    let (appointment, warnings) = txn::run(|txn| {
        let (a, w) = apply(b, txn, &plan)?;
        txn.publish(events::booked(&list, &a));
        Ok((a, w))
    })?;
    let waiting_lists = match &appointment.patient {
        Some(p) => waiting_entries(b.site, p)?,
        None => Vec::new(),
    };
    Ok(Booked {
        double_booked: appointment.double_booked,
        appointment,
        warnings,
        waiting_lists,
    })
}

/// Books a clinic's existing appointments (a migration): all of them or none. Fails with
/// `conflict` naming the first that breaks a rule.
pub fn import(b: &Booker, inputs: &[BookInput]) -> Result<Vec<Appointment>, Error> {
    let mut cal = Calendar::default();
    let mut people = HashMap::new();
    let plans = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| plan(b, &mut cal, &mut people, input).map_err(|e| at(i, e)))
        .collect::<Result<Vec<_>, _>>()?;
    txn::run(|txn| {
        plans
            .iter()
            .enumerate()
            .map(|(i, p)| apply(b, txn, p).map(|(a, _)| a).map_err(|e| at(i, e)))
            .collect()
    })
}

fn at(i: usize, e: Error) -> Error {
    let m = format!("appointments[{i}]: {}", e.message());
    match e {
        Error::Invalid(_) => Error::invalid(m),
        Error::Conflict(_) => Error::conflict(m),
        Error::TooLarge(_) => Error::too_large(m),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading and changing appointments

/// The appointment `id` and the key it is stored at.
pub fn appointment(txn: &mut Txn, site: &str, id: &str) -> Result<(String, Appointment), Error> {
    check_ref("id", id)?;
    let dk: String = txn
        .get(&key(site, &format!("appt/{id}")))?
        .ok_or_else(|| Error::not_found(format!("no appointment {id:?} at this site")))?;
    let a: Appointment = txn
        .get(&dk)?
        .ok_or_else(|| Error::internal(format!("appointment {id:?} is missing from its day")))?;
    Ok((dk, a))
}

/// Changes an appointment's status, keeping the change in its history. Cancelling frees its
/// time and its place in the slot code's daily count; a cancelled appointment stays cancelled
/// (book again instead).
pub fn set_status(
    site: &str,
    id: &str,
    status: &str,
    by: &str,
    now_local: &str,
) -> Result<Appointment, Error> {
    let list = statuses(site)?;
    if status_of(&list, status).is_none() {
        return Err(Error::invalid(format!(
            "status: {status:?} is not a status at this site"
        )));
    }
    txn::run(|txn| {
        let (dk, mut a) = appointment(txn, site, id)?;
        change_status(txn, &list, &dk, &mut a, status, by, now_local)?;
        Ok(a)
    })
}

/// Frees an appointment's time: its place in each slot it covers and in its slot code's count
/// for the day (on cancelling it, or before moving it).
fn free_time(txn: &mut Txn, a: &Appointment) -> Result<(), Error> {
    let (start, end) = a.span();
    for g in granules(start, end) {
        let k = occ_key(&a.site, &a.provider, &a.date, g);
        let mut occ: Occupancy = txn.get(&k)?.unwrap_or_default();
        occ.appointments.retain(|x| x != &a.id);
        if occ.is_empty() {
            txn.delete(&k);
        } else {
            txn.put(&k, &occ)?;
        }
    }
    if let Some(code) = &a.code {
        let ck = key(&a.site, &format!("count/{}/{}/{code}", a.provider, a.date));
        let n: u32 = txn.get(&ck)?.unwrap_or(0);
        txn.put(&ck, &n.saturating_sub(1))?;
    }
    Ok(())
}

pub fn change_status(
    txn: &mut Txn,
    list: &[Status],
    dk: &str,
    a: &mut Appointment,
    status: &str,
    by: &str,
    now_local: &str,
) -> Result<(), Error> {
    if a.status == status {
        return Ok(());
    }
    let from = a.status.clone();
    if is_cancelled(list, &a.status) {
        return Err(Error::conflict(format!(
            "appointment {} is cancelled; book a new one instead",
            a.id
        )));
    }
    if is_cancelled(list, status) {
        free_time(txn, a)?;
    }
    a.status = status.to_string();
    a.history.push(StatusChange {
        status: status.to_string(),
        by: by.to_string(),
        at: now_local.to_string(),
    });
    txn.publish(events::status_changed(list, a, &from));
    txn.put(dk, a)
}

/// Where to move an appointment: a date and start, and another provider if not the same.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MoveInput {
    /// Another provider's user name; empty or absent: the same provider.
    pub provider: Option<String>,
    pub date: String,
    pub start: String,
}

/// The answer to a reschedule.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Moved {
    pub appointment: Appointment,
    pub double_booked: bool,
    /// Limits that were passed where the site only warns.
    pub warnings: Vec<String>,
}

/// Moves (reschedules) appointment `id` to another time, day or provider, keeping its id,
/// status, duration and history, and adding the move to its `moves`. The new place must pass
/// the booking rules (holiday, hours, blocks, overlap unless double booking, a blocking daily
/// limit); a cancelled appointment is not moved. The old time is freed and the new one taken
/// in one atomic batch, with the `rescheduled` event.
pub fn reschedule(b: &Booker, id: &str, input: &MoveInput) -> Result<Moved, Error> {
    check_ref("id", id)?;
    let list = statuses(b.site)?;
    let (_, current) = appointment(&mut Txn::new(), b.site, id)?;
    let provider_user = match input.provider.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => current.provider.clone(),
    };
    let provider_name = provider(&provider_user)?.display_name;
    let date = parse_date("date", input.date.trim())?;
    let start = parse_hm("start", input.start.trim())?;
    let to = move_target(
        &current,
        is_cancelled(&list, &current.status),
        &provider_user,
        date,
        start,
    )?;
    let (s0, e0) = current.span();
    let end = e0 - s0 + start;
    let d = to.date.clone();
    let slot = placement(
        b.site,
        &mut Calendar::default(),
        &provider_user,
        &provider_name,
        date,
        start,
        end,
    )?;
    let site = b.site;
    let (appointment, warnings) = txn::run(|txn| {
        let (old_dk, mut a) = appointment(txn, site, id)?;
        if is_cancelled(&list, &a.status) {
            return Err(Error::conflict(format!(
                "appointment {id} is cancelled; book a new one instead of moving it"
            )));
        }
        if a.span() != (s0, e0) {
            return Err(Error::conflict(format!(
                "appointment {id} changed while it was being moved; try again"
            )));
        }
        let from = a.place();
        free_time(txn, &a)?;
        // Take the new time, by the booking rules.
        let mut occupied = Vec::new();
        for g in granules(start, end) {
            let occ: Occupancy = txn
                .get(&occ_key(site, &provider_user, &d, g))?
                .unwrap_or_default();
            if let Some(block) = &occ.block {
                return Err(Error::conflict(format!(
                    "{} on {d} is blocked for {provider_name} (do not book: {block})",
                    hm(g)
                )));
            }
            occupied.push((g, occ));
        }
        let other = occupied
            .iter()
            .flat_map(|(_, o)| &o.appointments)
            .next()
            .cloned();
        let double = overlap_rule(other.as_deref(), b.double_booking, || {
            format!("{} to {} on {d} with {provider_name}", hm(start), hm(end))
        })?;
        let mut warnings = Vec::new();
        a.code = None;
        if let Some((code, limit, kind)) = &slot {
            let ck = key(site, &format!("count/{provider_user}/{d}/{code}"));
            let n: u32 = txn.get(&ck)?.unwrap_or(0);
            if n >= *limit {
                let msg = format!(
                    "{provider_name} already has {n} appointment(s) in '{code}' slots on {d}; \
                     the limit is {limit}"
                );
                match kind {
                    LimitType::Block => return Err(Error::conflict(msg)),
                    LimitType::Warn => warnings.push(msg),
                }
            }
            txn.put(&ck, &(n + 1))?;
            a.code = Some(code.clone());
        }
        for (g, mut occ) in occupied {
            occ.appointments.push(a.id.clone());
            txn.put(&occ_key(site, &provider_user, &d, g), &occ)?;
        }
        // Re-index: the day sheet, the id's pointer, the patient's list.
        txn.delete(&old_dk);
        if let Some(patient) = &a.patient {
            txn.delete(&key(
                site,
                &format!("patient/{patient}/{}T{}/{}", a.date, hm_key(s0), a.id),
            ));
        }
        a.provider = provider_user.clone();
        a.provider_name = provider_name.clone();
        a.date = d.clone();
        a.start = hm(start);
        a.end = hm(end);
        a.double_booked = double;
        a.moves.push(Move {
            from: from.clone(),
            to: a.place(),
            by: b.user.to_string(),
            at: b.now_local.to_string(),
        });
        let dk = day_key(site, &provider_user, &d, start, &a.id);
        txn.put(&dk, &a)?;
        txn.put(&key(site, &format!("appt/{}", a.id)), &dk)?;
        if let Some(patient) = &a.patient {
            txn.put(
                &key(
                    site,
                    &format!("patient/{patient}/{d}T{}/{}", hm_key(start), a.id),
                ),
                &dk,
            )?;
        }
        txn.publish(events::rescheduled(&list, &a, &from));
        Ok((a, warnings))
    })?;
    Ok(Moved {
        double_booked: appointment.double_booked,
        appointment,
        warnings,
    })
}

/// A provider's appointments on `date` in time order, from the day index.
pub fn day(
    site: &str,
    provider: &str,
    date: &str,
    with_cancelled: bool,
) -> Result<Vec<Appointment>, Error> {
    check_ref("provider", provider)?;
    let list = statuses(site)?;
    Ok(
        kv::scan_all::<Appointment>(&key(site, &format!("day/{provider}/{date}/")))?
            .into_iter()
            .map(|(_, a)| a)
            .filter(|a| with_cancelled || !is_cancelled(&list, &a.status))
            .collect(),
    )
}

/// Patient names for a day sheet, when the signed-in user may read them (else none): one read
/// per distinct patient, each audited by the host.
pub fn patient_names(appts: &[Appointment], may_read: bool) -> HashMap<String, String> {
    let mut names = HashMap::new();
    if !may_read {
        return names;
    }
    for a in appts {
        if let Some(p) = &a.patient
            && !names.contains_key(p)
            && let Ok(record) = patients::get_as::<Named>(p)
        {
            names.insert(p.clone(), record.display_name());
        }
    }
    names
}

/// Of a FHIR Patient, only its names: what a day sheet reads of forty records.
#[derive(serde::Deserialize, Default)]
struct Named {
    #[serde(default)]
    name: Vec<HumanName>,
}

#[derive(serde::Deserialize, Default)]
struct HumanName {
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    given: Vec<String>,
}

impl Named {
    /// `Family, Given`.
    pub fn display_name(&self) -> String {
        let Some(n) = self.name.first() else {
            return String::new();
        };
        let given: Vec<&str> = n.given.iter().map(String::as_str).collect();
        join_name(n.family.as_deref().unwrap_or(""), &given)
    }
}

/// `Family, Given` from a FHIR Patient.
pub fn display_name(p: &serde_json::Value) -> String {
    let name = &p["name"][0];
    let family = name["family"].as_str().unwrap_or("");
    let given: Vec<&str> = name["given"]
        .as_array()
        .map(|g| g.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    join_name(family, &given)
}

fn join_name(family: &str, given: &[&str]) -> String {
    match (family, given.is_empty()) {
        ("", _) => given.join(" "),
        (f, true) => f.to_string(),
        (f, false) => format!("{f}, {}", given.join(" ")),
    }
}

/// A patient's appointments whose start is in `[from, to]` (absolute local minutes), in order.
pub fn patient_between(
    txn: &mut Txn,
    site: &str,
    patient: &str,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<Vec<(String, Appointment)>, Error> {
    check_ref("patient", patient)?;
    let prefix = key(site, &format!("patient/{patient}/"));
    let (fd, fm) = from_abs(from);
    // Keys sort by date and time: start just before `from`'s minute.
    let mut after = Some(format!("{prefix}{}T{}", date_str(fd), hm_key(fm)));
    if fm == 0 {
        after = Some(format!("{prefix}{}", date_str(fd)));
    }
    let mut out = Vec::new();
    'pages: loop {
        let page = kv::scan::<String>(&prefix, after.as_deref(), 100)?;
        for (k, dk) in &page.entries {
            let rest = &k[prefix.len()..];
            let (Ok(d), Ok(m)) = (
                parse_date("key", rest.get(..10).unwrap_or("")),
                parse_hm(
                    "key",
                    &format!(
                        "{}:{}",
                        rest.get(11..13).unwrap_or(""),
                        rest.get(13..15).unwrap_or("")
                    ),
                ),
            ) else {
                continue;
            };
            let t = abs_minutes(d, m);
            if t > to {
                break 'pages;
            }
            if t < from {
                continue;
            }
            if let Some(a) = txn.get::<Appointment>(dk)? {
                out.push((dk.clone(), a));
                if out.len() >= limit {
                    break 'pages;
                }
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Blocks

pub fn add_block(
    site: &str,
    provider_user: &str,
    date: &str,
    hours: &Hours,
    reason: &str,
) -> Result<Block, Error> {
    provider(provider_user)?;
    let d = date_str(parse_date("date", date)?);
    let (start, end) = hours.span("block")?;
    let reason = text("reason", reason, 200)?;
    txn::run(|txn| {
        let sk = key(site, &format!("seq/{provider_user}/{d}"));
        let n: u32 = txn.get(&sk)?.unwrap_or(0) + 1;
        txn.put(&sk, &n)?;
        let id = format!("{provider_user}-{}-b{n}", d.replace('-', ""));
        for g in granules(start, end) {
            let k = occ_key(site, provider_user, &d, g);
            let mut occ: Occupancy = txn.get(&k)?.unwrap_or_default();
            if let Some(other) = &occ.block {
                return Err(Error::conflict(format!(
                    "{} is already blocked ({other})",
                    hm(g)
                )));
            }
            occ.block = Some(id.clone());
            txn.put(&k, &occ)?;
        }
        let block = Block {
            id: id.clone(),
            provider: provider_user.to_string(),
            date: d.clone(),
            start: hm(start),
            end: hm(end),
            reason: reason.clone(),
        };
        txn.create(
            &key(site, &format!("block/{provider_user}/{d}/{id}")),
            &block,
        )?;
        Ok(block)
    })
}

pub fn blocks(site: &str, provider: &str, date: &str) -> Result<Vec<Block>, Error> {
    Ok(
        kv::scan_all::<Block>(&key(site, &format!("block/{provider}/{date}/")))?
            .into_iter()
            .map(|(_, b)| b)
            .collect(),
    )
}

pub fn remove_block(site: &str, provider: &str, date: &str, id: &str) -> Result<(), Error> {
    check_ref("provider", provider)?;
    check_ref("id", id)?;
    let d = date_str(parse_date("date", date)?);
    txn::run(|txn| {
        let bk = key(site, &format!("block/{provider}/{d}/{id}"));
        let block: Block = txn
            .get(&bk)?
            .ok_or_else(|| Error::not_found(format!("no block {id:?}")))?;
        let hours = Hours {
            start: block.start.clone(),
            end: block.end.clone(),
        };
        let (start, end) = hours.span("block")?;
        for g in granules(start, end) {
            let k = occ_key(site, provider, &d, g);
            let mut occ: Occupancy = txn.get(&k)?.unwrap_or_default();
            occ.block = None;
            if occ.is_empty() {
                txn.delete(&k);
            } else {
                txn.put(&k, &occ)?;
            }
        }
        txn.delete(&bk);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Waiting lists

pub fn waitlists(site: &str) -> Result<Vec<WaitList>, Error> {
    Ok(kv::scan_all::<WaitList>(&key(site, "waitlist/"))?
        .into_iter()
        .map(|(_, l)| l)
        .collect())
}

pub fn waitlist(site: &str, name: &str) -> Result<(WaitList, Vec<WaitEntry>), Error> {
    check_list_name(name)?;
    let list: WaitList = kv::get(&key(site, &format!("waitlist/{name}")))?
        .ok_or_else(|| Error::not_found(format!("no waiting list {name:?} at this site")))?;
    let mut entries: Vec<WaitEntry> =
        kv::scan_all::<WaitEntry>(&key(site, &format!("wait/{name}/")))?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
    entries.sort_by(|a, b| (a.position, &a.id).cmp(&(b.position, &b.id)));
    Ok((list, entries))
}

pub fn add_to_waitlist(
    site: &str,
    list: &str,
    patient: &str,
    note: &str,
    position: Option<u32>,
    by: &str,
    today: &str,
) -> Result<WaitEntry, Error> {
    add_entry(site, list, patient, note, position, by, today, false)
}

/// [`add_to_waitlist`], marking the entry as the patient's own request when `patient_request`.
#[allow(clippy::too_many_arguments)]
pub fn add_entry(
    site: &str,
    list: &str,
    patient: &str,
    note: &str,
    position: Option<u32>,
    by: &str,
    today: &str,
    patient_request: bool,
) -> Result<WaitEntry, Error> {
    check_list_name(list)?;
    check_ref("patient", patient)?;
    let note = text("note", note, 500)?;
    txn::run(|txn| {
        if txn
            .get::<WaitList>(&key(site, &format!("waitlist/{list}")))?
            .is_none()
        {
            return Err(Error::not_found(format!(
                "no waiting list {list:?} at this site"
            )));
        }
        let sk = key(site, &format!("wait-seq/{list}"));
        let n: u32 = txn.get(&sk)?.unwrap_or(0) + 1;
        txn.put(&sk, &n)?;
        let id = format!("{n:08}");
        let entry = WaitEntry {
            id: id.clone(),
            list: list.to_string(),
            patient: patient.to_string(),
            note: note.clone(),
            position: position.unwrap_or(n),
            added: today.to_string(),
            added_by: by.to_string(),
            patient_request,
        };
        txn.create(&key(site, &format!("wait/{list}/{id}")), &entry)?;
        txn.put(
            &key(site, &format!("wait-patient/{patient}/{list}/{id}")),
            &entry,
        )?;
        Ok(entry)
    })
}

pub fn remove_from_waitlist(site: &str, list: &str, id: &str) -> Result<(), Error> {
    check_list_name(list)?;
    check_ref("id", id)?;
    txn::run(|txn| {
        let ek = key(site, &format!("wait/{list}/{id}"));
        let e: WaitEntry = txn
            .get(&ek)?
            .ok_or_else(|| Error::not_found(format!("no entry {id:?} on list {list:?}")))?;
        txn.delete(&ek);
        txn.delete(&key(
            site,
            &format!("wait-patient/{}/{list}/{id}", e.patient),
        ));
        Ok(())
    })
}

/// The waiting-list entries of a patient at a site.
pub fn waiting_entries(site: &str, patient: &str) -> Result<Vec<WaitEntry>, Error> {
    Ok(
        kv::scan_all::<WaitEntry>(&key(site, &format!("wait-patient/{patient}/")))?
            .into_iter()
            .map(|(_, e)| e)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The day sheet reads only names; they read as the whole record's would.
    #[test]
    fn a_name_read_alone_reads_as_from_the_whole_record() {
        for record in [
            serde_json::json!({"resourceType": "Patient", "id": "p1",
                "name": [{"use": "official", "family": "Okafor", "given": ["Ada", "N."]},
                         {"family": "Other"}],
                "birthDate": "1975-04-02", "telecom": [{"system": "phone", "value": "1"}]}),
            serde_json::json!({"resourceType": "Patient", "name": [{"given": ["Cher"]}]}),
            serde_json::json!({"resourceType": "Patient", "name": [{"family": "Roy"}]}),
            serde_json::json!({"resourceType": "Patient", "gender": "unknown"}),
        ] {
            let named: Named = serde_json::from_value(record.clone()).unwrap();
            assert_eq!(named.display_name(), display_name(&record), "{record}");
        }
        let ada: Named = serde_json::from_str(
            r#"{"name":[{"family":"Okafor","given":["Ada","N."]}],"extra":{"deep":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(ada.display_name(), "Okafor, Ada N.");
    }
}
