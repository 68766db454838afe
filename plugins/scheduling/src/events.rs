//! The events scheduling publishes, each in the same atomic batch as the change it announces
//! (the outbox, through [`Txn::publish`](crate::txn::Txn::publish)): a subscriber (reminders,
//! a patient portal, billing) hears of every booking and status change that happened, and of
//! none that did not. Topics and payloads are documented in README.md ("Events").
//!
//! Payloads say when, with whom, for which patient (by id) and the status; never the reason,
//! the notes, or the name of someone not yet registered.

use serde_json::{Value, json};

use crate::model::{Appointment, Place, Status};
use crate::store;

/// An appointment was booked (through the API or the booking form; not by an import).
pub const BOOKED: &str = "scheduling.appointment.booked";
/// An appointment was cancelled (its status became one the site counts as cancelled).
pub const CANCELLED: &str = "scheduling.appointment.cancelled";
/// An appointment was moved to another time, day or provider.
pub const RESCHEDULED: &str = "scheduling.appointment.rescheduled";
/// An appointment's status changed otherwise (arrived, in room, done, no-show, …).
pub const STATUS_CHANGED: &str = "scheduling.appointment.status-changed";

fn fhir(list: &[Status], code: &str) -> String {
    store::status_of(list, code)
        .map(|s| s.fhir.clone())
        .unwrap_or_default()
}

/// The fields every appointment event carries.
pub fn payload(list: &[Status], a: &Appointment) -> Value {
    json!({
        "appointment": a.id,
        "site": a.site,
        "patient": a.patient,
        "provider": a.provider,
        "date": a.date,
        "start": a.start,
        "end": a.end,
        "type": a.appt_type,
        "status": a.status,
        "fhirStatus": fhir(list, &a.status),
    })
}

/// The booked event of `a`.
pub fn booked(list: &[Status], a: &Appointment) -> (&'static str, Value) {
    let mut p = payload(list, a);
    p["doubleBooked"] = json!(a.double_booked);
    (BOOKED, p)
}

/// The event of `a`'s status change from `from` (its status now is the new one).
pub fn status_changed(list: &[Status], a: &Appointment, from: &str) -> (&'static str, Value) {
    let mut p = payload(list, a);
    p["previousStatus"] = json!(from);
    p["previousFhirStatus"] = json!(fhir(list, from));
    let topic = if store::is_cancelled(list, &a.status) {
        CANCELLED
    } else {
        STATUS_CHANGED
    };
    (topic, p)
}

/// The event of `a`'s move from `from` (its place now is the new one).
pub fn rescheduled(list: &[Status], a: &Appointment, from: &Place) -> (&'static str, Value) {
    let mut p = payload(list, a);
    p["previous"] = json!({
        "provider": from.provider,
        "date": from.date,
        "start": from.start,
        "end": from.end,
    });
    p["doubleBooked"] = json!(a.double_booked);
    (RESCHEDULED, p)
}
