//! The JSON routes, under `/plugins/scheduling/api/`. Every answer is for the caller's site.

use osler_sdk::{Error, Params, Request, Response, clock, config, kv};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::model::*;
use crate::setup;
use crate::store::{self, Booker, key};

fn site(req: &Request) -> &str {
    &req.caller().site
}

/// Changing how the site's schedule works (statuses, codes, templates, availability,
/// holidays, types) is for reception, physicians and administrators; nurses book and read.
pub fn may_configure(req: &Request) -> Result<(), Error> {
    let c = req.caller();
    if ["reception", "physician", "admin"]
        .iter()
        .any(|r| c.has_role(r))
    {
        Ok(())
    } else {
        Err(Error::denied(
            "changing the schedule's set-up is for reception, physicians and administrators",
        ))
    }
}

pub fn double_booking() -> bool {
    config::get_bool("double-booking").unwrap_or(false)
}

pub fn booker<'a>(req: &'a Request, now_local: &'a str) -> Booker<'a> {
    Booker {
        site: site(req),
        user: &req.caller().user,
        now_local,
        double_booking: double_booking(),
    }
}

fn ok<T: Serialize + ?Sized>(v: &T) -> Result<Response, Error> {
    Ok(Response::json(200, v))
}

pub fn settings(req: &Request, _: &Params) -> Result<Response, Error> {
    let now = clock::now();
    let s = site(req);
    ok(&json!({
        "site": s,
        "now": now.local,
        "today": now.local.get(..10),
        "timezone": now.timezone,
        "doubleBooking": double_booking(),
        "statuses": store::statuses(s)?,
        "codes": store::codes(s)?.into_values().collect::<Vec<_>>(),
        "types": store::types(s)?,
    }))
}

pub fn providers(_: &Request, _: &Params) -> Result<Response, Error> {
    let list: Vec<_> = store::providers()?
        .into_iter()
        .map(|p| json!({"user": p.user, "displayName": p.display_name, "roles": p.roles}))
        .collect();
    ok(&list)
}

// Availability

pub fn get_weekly(req: &Request, p: &Params) -> Result<Response, Error> {
    ok(&setup::weekly(site(req), &p["provider"])?)
}

pub fn put_weekly(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let w: Weekly = req.json()?;
    setup::set_weekly(site(req), &p["provider"], &w)?;
    ok(&w)
}

fn override_key(req: &Request, p: &Params) -> Result<String, Error> {
    check_ref("provider", &p["provider"])?;
    let d = date_str(parse_date("date", &p["date"])?);
    Ok(key(site(req), &format!("avail/{}/date/{d}", p["provider"])))
}

pub fn get_override(req: &Request, p: &Params) -> Result<Response, Error> {
    let o: DayOverride = kv::get(&override_key(req, p)?)?
        .ok_or_else(|| Error::not_found("no override on that date: the weekly hours apply"))?;
    ok(&o)
}

pub fn put_override(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    store::provider(&p["provider"])?;
    let o: DayOverride = req.json()?;
    check_hours("hours", &o.hours)?;
    kv::put(&override_key(req, p)?, &o)?;
    ok(&o)
}

pub fn delete_override(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    kv::delete(&override_key(req, p)?)?;
    Ok(Response::empty(204))
}

// Holidays

pub fn holidays(req: &Request, _: &Params) -> Result<Response, Error> {
    ok(&setup::holidays(site(req))?)
}

#[derive(Deserialize)]
struct HolidayIn {
    name: String,
}

pub fn put_holiday(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    parse_date("date", &p["date"])?;
    let h: HolidayIn = req.json()?;
    ok(&setup::set_holiday(site(req), &p["date"], &h.name)?)
}

pub fn delete_holiday(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    setup::delete_holiday(site(req), &p["date"])?;
    Ok(Response::empty(204))
}

// Slot codes and templates

pub fn codes(req: &Request, _: &Params) -> Result<Response, Error> {
    ok(&store::codes(site(req))?.into_values().collect::<Vec<_>>())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodeIn {
    name: String,
    minutes: u16,
    colour: Option<String>,
    limit_per_day: Option<u32>,
    limit_type: Option<LimitType>,
}

pub fn put_code(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    check_code(&p["code"])?;
    let c: CodeIn = req.json()?;
    let code = SlotCode {
        code: p["code"].clone(),
        name: c.name.trim().to_string(),
        minutes: c.minutes,
        colour: c.colour.unwrap_or_else(|| "#dfe9f5".into()),
        limit_per_day: c.limit_per_day,
        limit_type: c.limit_type.unwrap_or(LimitType::Warn),
    };
    setup::set_code(site(req), &code)?;
    ok(&code)
}

pub fn delete_code(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    setup::delete_code(site(req), &p["code"])?;
    Ok(Response::empty(204))
}

pub fn get_template(req: &Request, p: &Params) -> Result<Response, Error> {
    let t = setup::template(site(req), &p["provider"], &p["day"])?
        .ok_or_else(|| Error::not_found("no template for that day"))?;
    ok(&t)
}

pub fn put_template(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let t: DayTemplate = req.json()?;
    setup::set_template(site(req), &p["provider"], &p["day"], &t)?;
    ok(&t)
}

pub fn delete_template(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    setup::delete_template(site(req), &p["provider"], &p["day"])?;
    Ok(Response::empty(204))
}

// Types and statuses

pub fn types(req: &Request, _: &Params) -> Result<Response, Error> {
    ok(&store::types(site(req))?)
}

#[derive(Deserialize)]
struct TypeIn {
    minutes: u16,
}

pub fn put_type(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let t: TypeIn = req.json()?;
    ok(&setup::set_type(site(req), &p["name"], t.minutes)?)
}

pub fn statuses(req: &Request, _: &Params) -> Result<Response, Error> {
    ok(&store::statuses(site(req))?)
}

pub fn put_statuses(req: &Request, _: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let list: Vec<Status> = req.json()?;
    check_statuses(&list)?;
    kv::put(&key(site(req), "statuses"), &list)?;
    ok(&list)
}

// Blocks

pub fn blocks(req: &Request, p: &Params) -> Result<Response, Error> {
    check_ref("provider", &p["provider"])?;
    let d = date_str(parse_date("date", &p["date"])?);
    ok(&store::blocks(site(req), &p["provider"], &d)?)
}

#[derive(Deserialize)]
struct BlockIn {
    provider: String,
    date: String,
    start: String,
    end: String,
    #[serde(default)]
    reason: String,
}

pub fn add_block(req: &Request, _: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let b: BlockIn = req.json()?;
    let hours = Hours {
        start: b.start,
        end: b.end,
    };
    let block = store::add_block(site(req), &b.provider, &b.date, &hours, &b.reason)?;
    Ok(Response::json(201, &block))
}

pub fn remove_block(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    store::remove_block(site(req), &p["provider"], &p["date"], &p["id"])?;
    Ok(Response::empty(204))
}

// Appointments

pub fn book(req: &Request, _: &Params) -> Result<Response, Error> {
    let input: store::BookInput = req.json()?;
    let now = clock::now();
    let booked = store::book(&booker(req, &now.local), &input)?;
    Ok(Response::json(201, &booked))
}

/// The most appointments one import takes: each needs about ten storage operations, and one
/// atomic batch holds at most a thousand.
pub const IMPORT_MAX: usize = 90;

#[derive(Deserialize)]
struct ImportIn {
    appointments: Vec<store::BookInput>,
}

/// Books a clinic's existing schedule, all of a batch or none of it.
pub fn import(req: &Request, _: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let input: ImportIn = req.json()?;
    if input.appointments.is_empty() || input.appointments.len() > IMPORT_MAX {
        return Err(Error::invalid(format!(
            "appointments: 1 to {IMPORT_MAX} per import"
        )));
    }
    let now = clock::now();
    let done = store::import(&booker(req, &now.local), &input.appointments)?;
    Ok(Response::json(
        201,
        &json!({ "imported": done.len(), "ids": done.iter().map(|a| &a.id).collect::<Vec<_>>() }),
    ))
}

pub fn appointment(req: &Request, p: &Params) -> Result<Response, Error> {
    let (_, a) = store::appointment(&mut crate::txn::Txn::new(), site(req), &p["id"])?;
    ok(&with_fhir(&store::statuses(site(req))?, &a))
}

/// An appointment as the API shows it: the record (owned or borrowed), and beside it its
/// status in FHIR's terms. Serialised straight from the record, with no JSON tree in between.
#[derive(Serialize)]
struct Shown<A> {
    #[serde(flatten)]
    appointment: A,
    #[serde(rename = "fhirStatus")]
    fhir_status: Option<String>,
}

fn with_fhir<A: std::borrow::Borrow<Appointment>>(list: &[Status], a: A) -> Shown<A> {
    Shown {
        fhir_status: store::status_of(list, &a.borrow().status).map(|s| s.fhir.clone()),
        appointment: a,
    }
}

/// `POST /api/appointments/{id}/move`: reschedules, keeping the appointment's history.
pub fn reschedule(req: &Request, p: &Params) -> Result<Response, Error> {
    let input: store::MoveInput = req.json()?;
    let now = clock::now();
    let moved = store::reschedule(&booker(req, &now.local), &p["id"], &input)?;
    ok(&moved)
}

#[derive(Deserialize)]
struct StatusIn {
    status: String,
}

pub fn set_status(req: &Request, p: &Params) -> Result<Response, Error> {
    let s: StatusIn = req.json()?;
    let now = clock::now();
    let a = store::set_status(
        site(req),
        &p["id"],
        &s.status,
        &req.caller().user,
        &now.local,
    )?;
    ok(&with_fhir(&store::statuses(site(req))?, &a))
}

/// One provider's day, for a day sheet: time order, without cancelled appointments, with
/// patient names when the caller may read them.
pub fn day(req: &Request, p: &Params) -> Result<Response, Error> {
    let d = date_str(parse_date("date", &p["date"])?);
    ok(&day_json(req, &p["provider"], &d)?)
}

/// One provider's day as the API shows it.
#[derive(Serialize)]
struct Day {
    provider: String,
    date: String,
    appointments: Vec<DayItem>,
}

/// An appointment on a day sheet: as [`with_fhir`] shows it, with the patient's name (`null`
/// when the caller may not read it and the booking named no one). Building a JSON tree per
/// appointment instead took a quarter of a sheet's time.
#[derive(Serialize)]
struct DayItem {
    #[serde(flatten)]
    shown: Shown<Appointment>,
    #[serde(rename = "patientName")]
    patient_name: Option<String>,
}

fn day_json(req: &Request, provider: &str, date: &str) -> Result<Day, Error> {
    let s = site(req);
    let appts = store::day(s, provider, date, false)?;
    let names = store::patient_names(&appts, req.caller().can("patients.read"));
    let list = store::statuses(s)?;
    let appointments = appts
        .into_iter()
        .map(|a| DayItem {
            patient_name: a
                .patient
                .as_ref()
                .and_then(|p| names.get(p).cloned())
                .or_else(|| a.name.clone()),
            shown: with_fhir(&list, a),
        })
        .collect();
    Ok(Day {
        provider: provider.to_string(),
        date: date.to_string(),
        appointments,
    })
}

/// Several providers' days side by side: `?providers=a,b` (default: every provider here).
pub fn group_day(req: &Request, p: &Params) -> Result<Response, Error> {
    let d = date_str(parse_date("date", &p["date"])?);
    let wanted: Vec<String> = match req.query_param("providers") {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => store::providers()?.into_iter().map(|p| p.user).collect(),
    };
    if wanted.len() > 50 {
        return Err(Error::invalid("providers: at most 50 side by side"));
    }
    let columns = wanted
        .iter()
        .map(|prov| day_json(req, prov, &d))
        .collect::<Result<Vec<_>, _>>()?;
    #[derive(Serialize)]
    struct Group {
        date: String,
        providers: Vec<Day>,
    }
    ok(&Group {
        date: d,
        providers: columns,
    })
}

/// A patient's appointments at this site from today on (cancelled ones included, marked).
pub fn patient_appointments(req: &Request, p: &Params) -> Result<Response, Error> {
    let (today, _) = parse_local(&clock::now().local)?;
    let mut txn = crate::txn::Txn::new();
    let found = store::patient_between(
        &mut txn,
        site(req),
        &p["patient"],
        abs_minutes(today, 0),
        i64::MAX,
        200,
    )?;
    let list = store::statuses(site(req))?;
    ok(&found
        .iter()
        .map(|(_, a)| with_fhir(&list, a))
        .collect::<Vec<_>>())
}

// Waiting lists

pub fn waitlists(req: &Request, _: &Params) -> Result<Response, Error> {
    ok(&store::waitlists(site(req))?)
}

#[derive(Deserialize)]
struct WaitListIn {
    #[serde(default)]
    description: String,
}

pub fn put_waitlist(req: &Request, p: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    check_list_name(&p["list"])?;
    let l: WaitListIn = req.json()?;
    let list = WaitList {
        name: p["list"].clone(),
        description: text("description", &l.description, 200)?,
    };
    kv::put(&key(site(req), &format!("waitlist/{}", list.name)), &list)?;
    ok(&list)
}

pub fn waitlist(req: &Request, p: &Params) -> Result<Response, Error> {
    let (list, entries) = store::waitlist(site(req), &p["list"])?;
    ok(&json!({ "list": list, "entries": entries }))
}

#[derive(Deserialize)]
struct EntryIn {
    patient: String,
    #[serde(default)]
    note: String,
    position: Option<u32>,
}

pub fn add_entry(req: &Request, p: &Params) -> Result<Response, Error> {
    let e: EntryIn = req.json()?;
    let now = clock::now();
    let entry = store::add_to_waitlist(
        site(req),
        &p["list"],
        e.patient.trim(),
        &e.note,
        e.position,
        &req.caller().user,
        now.local.get(..10).unwrap_or(""),
    )?;
    Ok(Response::json(201, &entry))
}

pub fn remove_entry(req: &Request, p: &Params) -> Result<Response, Error> {
    store::remove_from_waitlist(site(req), &p["list"], &p["id"])?;
    Ok(Response::empty(204))
}
