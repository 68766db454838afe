//! `osler:scheduling/requests@0.2.0`: a patient (through a patient portal plugin) asks for an
//! appointment; the request lands on the site's `patient-requests` waiting list, marked as the
//! patient's own, for reception to book.
//!
//! The person behind the call comes from the host (`context`), and their right to the patient
//! is the host's to decide: the request reads the patient's record first (`patients::get`), so
//! a patient user naming any record but their own is refused — and the refusal audited — by
//! the host before anything is written.

use osler_sdk::{Error, clock, context, kv, patients};

use crate::bindings::exports::osler::scheduling::requests as wit;
use crate::model::{WaitEntry, WaitList, check_ref};
use crate::store;

/// The waiting list patients' requests go to.
pub const LIST: &str = "patient-requests";

fn request_of(e: WaitEntry) -> wit::AppointmentRequest {
    wit::AppointmentRequest {
        id: e.id,
        added: e.added,
        note: e.note,
    }
}

/// The person the call serves, who must be allowed to read `patient`'s record.
fn for_patient(patient: &str) -> Result<osler_sdk::Caller, Error> {
    let Some(person) = context::person() else {
        return Err(Error::denied(
            "an appointment request is made by a person, for a patient they may see",
        ));
    };
    check_ref("patient", patient)?;
    patients::get(patient)?;
    Ok(person)
}

pub fn request(patient: String, note: String) -> Result<wit::AppointmentRequest, Error> {
    let person = for_patient(&patient)?;
    if note.trim().is_empty() {
        return Err(Error::invalid(
            "note: say when you would like to come and why",
        ));
    }
    let site = context::site();
    let list_key = store::key(&site, &format!("waitlist/{LIST}"));
    if kv::get::<WaitList>(&list_key)?.is_none() {
        let list = WaitList {
            name: LIST.into(),
            description: "Appointments patients asked for themselves".into(),
        };
        // Another request may create it at the same moment: either write is the same list.
        match kv::Batch::new()
            .expect_absent(&list_key)
            .put(&list_key, &list)
            .commit()
        {
            Ok(()) | Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let now = clock::now();
    let entry = store::add_entry(
        &site,
        LIST,
        &patient,
        note.trim(),
        None,
        &person.user,
        now.local.get(..10).unwrap_or(""),
        true,
    )?;
    Ok(request_of(entry))
}

pub fn pending(patient: String) -> Result<Vec<wit::AppointmentRequest>, Error> {
    for_patient(&patient)?;
    let mut found: Vec<WaitEntry> = store::waiting_entries(&context::site(), &patient)?
        .into_iter()
        .filter(|e| e.list == LIST)
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found.into_iter().map(request_of).collect())
}
