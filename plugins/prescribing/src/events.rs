//! The events prescribing publishes, each in the same atomic batch as the write it announces
//! (the outbox): a subscriber hears of every prescription written, and of none that was not.
//! Topics and payloads are documented in README.md ("Events").
//!
//! Payloads carry ids, the drug and the prescription's terms — what a subscriber (a pharmacy
//! link, a medication reconciliation, a reminder) needs to act — but not free text a clinician
//! typed about the patient (override reasons, reasons for stopping, instructions).

use serde_json::{Value, json};

use crate::model::{Announce, Drug, Prescription};

/// Prescriptions were written: new ones, and renewals.
pub const PRESCRIBED: &str = "prescribing.prescription.prescribed";
/// A prescription came off the active list: stopped, cancelled, or entered in error.
pub const DISCONTINUED: &str = "prescribing.prescription.discontinued";

fn drug(d: &Drug) -> Value {
    json!({
        "name": d.name,
        "din": d.din,
        "atc": d.atc,
        "ingredients": d.ingredients,
        "controlled": d.controlled,
    })
}

/// One event for the prescriptions written together (one prescribe, or a renewal of several),
/// so that renewing a long list is still one event: one call may publish at most 16.
pub fn prescribed(patient: &str, written: &[Prescription]) -> Announce {
    let site = written.first().map(|p| p.site.clone()).unwrap_or_default();
    let list: Vec<Value> = written
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "drug": drug(&p.drug),
                "strength": p.strength,
                "sig": p.sig_text,
                "quantity": p.quantity.text(),
                "repeats": p.repeats,
                "longTerm": p.long_term,
                "status": p.status,
                "prescriber": p.prescriber,
                "checks": p.checks.status,
                "overridden": p.override_reason.is_some(),
                "renewedFrom": p.renewed_from,
            })
        })
        .collect();
    (
        PRESCRIBED,
        json!({ "patient": patient, "site": site, "prescriptions": list }),
    )
}

/// The event for a status change, when it takes the prescription off the list for good
/// (`stopped`, `cancelled`, `entered-in-error`); `None` for others (`on-hold`, `active`
/// again, `completed` by a renewal, which announces the new prescription instead).
pub fn discontinued(patient: &str, rx: &Prescription) -> Option<Announce> {
    if !matches!(
        rx.status.as_str(),
        "stopped" | "cancelled" | "entered-in-error"
    ) {
        return None;
    }
    Some((
        DISCONTINUED,
        json!({
            "patient": patient,
            "site": rx.site,
            "prescription": rx.id,
            "drug": drug(&rx.drug),
            "status": rx.status,
        }),
    ))
}
