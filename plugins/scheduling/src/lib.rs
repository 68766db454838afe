//! Scheduling: provider availability, slot templates, appointments, day sheets and waiting
//! lists, per site; and the `osler:scheduling/appointments@0.1.0` interface other plugins (the
//! kiosk) import to check a patient in.
//!
//! Written against `osler-sdk` only, as a third party would. See README.md for the routes,
//! settings and data layout; [`store`] owns the keys, [`txn`] the compare-and-swap
//! transactions that make concurrent bookings safe, [`model`] the rules.

pub mod api;
pub mod events;
pub mod grid;
pub mod model;
pub mod pages;
pub mod requests;
pub mod setup;
pub mod setup_pages;
pub mod store;
pub mod txn;

use osler_sdk::{Caller, Error, Plugin, Request, Response, Router, clock, context};

use crate::bindings::exports::osler::scheduling::appointments as wit;
use crate::model::*;

mod bindings {
    osler_sdk::generate!({
        path: ["../../wit/v0.2.0", "wit"],
        world: "osler:scheduling/scheduling@0.2.0",
    });
}

/// The plugin's pages live under this path.
pub const HOME: &str = "/plugins/scheduling/";

struct Scheduling;

impl Plugin for Scheduling {
    fn handle(req: Request) -> Response {
        if let Err(e) = staff_only(req.caller()) {
            return e.into();
        }
        Router::new()
            // Pages.
            .get("/", grid::day_grid)
            .get("/week", grid::week)
            .get("/day", pages::day_sheet)
            .get("/book", pages::book_form)
            .post("/book", pages::book_post)
            .get("/appointments/{id}", grid::appointment_page)
            .post("/appointments/{id}/status", pages::status_post)
            .post("/appointments/{id}/move", grid::move_post)
            .get("/setup", setup_pages::index)
            .get("/setup/hours", setup_pages::hours)
            .post("/setup/hours", setup_pages::hours_post)
            .get("/setup/templates", setup_pages::templates)
            .post("/setup/templates", setup_pages::templates_post)
            .post("/setup/templates/delete", setup_pages::templates_delete)
            .get("/setup/codes", setup_pages::codes)
            .post("/setup/codes", setup_pages::codes_post)
            .post("/setup/codes/delete", setup_pages::codes_delete)
            .get("/setup/types", setup_pages::types)
            .post("/setup/types", setup_pages::types_post)
            .get("/setup/holidays", setup_pages::holidays)
            .post("/setup/holidays", setup_pages::holidays_post)
            .post("/setup/holidays/delete", setup_pages::holidays_delete)
            .get("/waitlist", pages::waitlist_page)
            .post("/waitlist", pages::waitlist_add)
            .post("/waitlist/remove", pages::waitlist_remove)
            // JSON.
            .get("/api/settings", api::settings)
            .get("/api/providers", api::providers)
            .get("/api/availability/{provider}", api::get_weekly)
            .put("/api/availability/{provider}", api::put_weekly)
            .get("/api/availability/{provider}/{date}", api::get_override)
            .put("/api/availability/{provider}/{date}", api::put_override)
            .delete("/api/availability/{provider}/{date}", api::delete_override)
            .get("/api/holidays", api::holidays)
            .put("/api/holidays/{date}", api::put_holiday)
            .delete("/api/holidays/{date}", api::delete_holiday)
            .get("/api/codes", api::codes)
            .put("/api/codes/{code}", api::put_code)
            .delete("/api/codes/{code}", api::delete_code)
            .get("/api/templates/{provider}/{day}", api::get_template)
            .put("/api/templates/{provider}/{day}", api::put_template)
            .delete("/api/templates/{provider}/{day}", api::delete_template)
            .get("/api/types", api::types)
            .put("/api/types/{name}", api::put_type)
            .get("/api/statuses", api::statuses)
            .put("/api/statuses", api::put_statuses)
            .get("/api/blocks/{provider}/{date}", api::blocks)
            .post("/api/blocks", api::add_block)
            .delete("/api/blocks/{provider}/{date}/{id}", api::remove_block)
            .post("/api/appointments", api::book)
            .post("/api/appointments/import", api::import)
            .get("/api/appointments/{id}", api::appointment)
            .post("/api/appointments/{id}/status", api::set_status)
            .post("/api/appointments/{id}/move", api::reschedule)
            .get("/api/day/{date}", api::group_day)
            .get("/api/day/{provider}/{date}", api::day)
            .get(
                "/api/patients/{patient}/appointments",
                api::patient_appointments,
            )
            .get("/api/waitlists", api::waitlists)
            .put("/api/waitlists/{list}", api::put_waitlist)
            .get("/api/waitlists/{list}", api::waitlist)
            .post("/api/waitlists/{list}/entries", api::add_entry)
            .delete("/api/waitlists/{list}/entries/{id}", api::remove_entry)
            .handle(&req)
    }

    /// `upcoming`: the patient's next appointments at the chart's site (the host has checked
    /// that the person viewing may read the chart).
    fn render_panel(panel: &str, patient: &str) -> Result<String, Error> {
        if panel != "upcoming" {
            return Err(Error::not_found(format!(
                "scheduling has no panel '{panel}'"
            )));
        }
        check_ref("patient", patient)?;
        let (list, found) = upcoming_at(&context::site(), patient, 5)?;
        Ok(pages::upcoming_panel(&list, &found))
    }
}

/// The schedule is for clinic staff: a kiosk, a patient or a researcher signed in gets
/// nothing from these routes (a kiosk checks in through the interface, which tells only "when
/// and with whom").
fn staff_only(c: &Caller) -> Result<(), Error> {
    if ["physician", "nurse", "reception", "admin"]
        .iter()
        .any(|r| c.has_role(r))
    {
        Ok(())
    } else {
        Err(Error::denied("the schedule is for clinic staff"))
    }
}

/// The interface the kiosk (and any other plugin) imports. These calls come from another
/// plugin on behalf of its signed-in user; the host says who that is and at which site
/// (`context`), every host call here is checked against that user's role and this plugin's
/// grants, and nothing here needs `patients.read`.
impl wit::Guest for Scheduling {
    fn check_in(patient: String, window: wit::CheckInWindow) -> Result<wit::Appointment, Error> {
        let site = context::site();
        let by = context::person()
            .map(|c| c.user)
            .unwrap_or_else(|| "kiosk".into());
        let now = clock::now();
        let (today, minute) = parse_local(&now.local)?;
        let at = abs_minutes(today, minute);
        let early = i64::from(window.minutes_early.min(24 * 60));
        let late = i64::from(window.minutes_late.min(24 * 60));
        let list = store::statuses(&site)?;
        let appt = txn::run(|txn| {
            // Appointments that start between now - late and now + early.
            let found = store::patient_between(txn, &site, &patient, at - late, at + early, 50)?;
            let candidates = found.into_iter().filter(|(_, a)| {
                store::status_of(&list, &a.status)
                    .is_some_and(|s| s.code == HERE || s.fhir == "booked")
            });
            // One not yet checked in before one that is, then the start nearest to now.
            let best = candidates.min_by_key(|(_, a)| {
                let (d, m) = (parse_date("date", &a.date), parse_hm("start", &a.start));
                let distance = match (d, m) {
                    (Ok(d), Ok(m)) => (abs_minutes(d, m) - at).abs(),
                    _ => i64::MAX,
                };
                (a.status == HERE, distance)
            });
            let Some((dk, mut a)) = best else {
                return Err(Error::not_found(
                    "no appointment to check in for at this time",
                ));
            };
            if a.status != HERE {
                store::change_status(txn, &list, &dk, &mut a, HERE, &by, &now.local)?;
            }
            Ok(a)
        })?;
        Ok(summary(&list, appt))
    }

    fn upcoming(patient: String, limit: u32) -> Result<Vec<wit::Appointment>, Error> {
        let (list, found) = upcoming_at(&context::site(), &patient, limit)?;
        Ok(found.into_iter().map(|a| summary(&list, a)).collect())
    }
}

impl bindings::exports::osler::scheduling::requests::Guest for Scheduling {
    fn request(
        patient: String,
        note: String,
    ) -> Result<bindings::exports::osler::scheduling::requests::AppointmentRequest, Error> {
        requests::request(patient, note)
    }

    fn pending(
        patient: String,
    ) -> Result<Vec<bindings::exports::osler::scheduling::requests::AppointmentRequest>, Error>
    {
        requests::pending(patient)
    }
}

/// The patient's appointments at `site` from now on, soonest first, without cancelled ones
/// (at most `limit`, 1 to 100), and the site's statuses.
fn upcoming_at(
    site: &str,
    patient: &str,
    limit: u32,
) -> Result<(Vec<Status>, Vec<Appointment>), Error> {
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid("limit: 1 to 100"));
    }
    let (today, minute) = parse_local(&clock::now().local)?;
    let from = abs_minutes(today, minute);
    let list = store::statuses(site)?;
    let mut txn = txn::Txn::new();
    let found = store::patient_between(&mut txn, site, patient, from, i64::MAX, 1000)?;
    let upcoming = found
        .into_iter()
        .map(|(_, a)| a)
        .filter(|a| !store::is_cancelled(&list, &a.status))
        .take(limit as usize)
        .collect();
    Ok((list, upcoming))
}

fn summary(list: &[Status], a: Appointment) -> wit::Appointment {
    let fhir = store::status_of(list, &a.status)
        .map(|s| s.fhir.clone())
        .unwrap_or_default();
    wit::Appointment {
        id: a.id,
        site: a.site,
        date: a.date,
        start: a.start,
        end: a.end,
        provider: a.provider,
        provider_name: a.provider_name,
        status: a.status,
        fhir_status: fhir,
    }
}

osler_sdk::export_plugin!(Scheduling with_bindings bindings);
