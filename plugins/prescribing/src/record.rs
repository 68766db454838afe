//! The `osler:prescribing/record@0.1.0` interface (see `wit/record.wit`): the active
//! medications and allergies of a patient, for other plugins.
//!
//! Every read goes through patient-scoped storage as the person the importer serves, so the
//! host checks that person's right to the patient (a `patient` user: their own record only)
//! and audits the read. Who may ask at all follows prescribing's own rules: physicians and
//! nurses, and a patient for their own record; reception, kiosks, researchers and
//! administrators are refused here before anything is read. Nothing here writes: records not
//! yet moved from before plugin API 0.2 are read where they are ([`model::migrate`] runs only
//! on prescribing's own pages).

use osler_sdk::{Caller, Error, context};

use crate::bindings::exports::osler::prescribing::record as wit;
use crate::model::{self, Allergy, Prescription};

/// The roles that may read a medication list through the interface.
pub const READERS: [&str; 3] = ["physician", "nurse", "patient"];

/// Whether `caller` may ask at all (the host then checks their right to the patient).
pub fn may_read(caller: Option<&Caller>) -> Result<(), Error> {
    match caller {
        Some(c) if READERS.iter().any(|r| c.has_role(r)) => Ok(()),
        Some(_) => Err(Error::denied(
            "a patient's medications and allergies are for physicians, nurses and the patient",
        )),
        None => Err(Error::denied(
            "a patient's medications and allergies are read for a person",
        )),
    }
}

fn date(local: &str) -> String {
    local.get(..10).unwrap_or(local).to_string()
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A medication as the interface gives it.
pub fn medication(rx: &Prescription) -> wit::Medication {
    wit::Medication {
        id: rx.id.clone(),
        drug: rx.drug.name.clone(),
        din: rx.drug.din.as_deref().and_then(some),
        atc: rx.drug.atc.as_deref().and_then(some),
        strength: rx.strength.clone(),
        sig: if rx.sig_text.is_empty() {
            rx.directions.clone()
        } else {
            rx.sig_text.clone()
        },
        instructions: rx.instructions.clone(),
        start: date(&rx.written),
        prescriber_name: rx.prescriber_name.clone(),
        status: rx.status.clone(),
        external: rx.external,
        long_term: rx.long_term,
    }
}

/// An allergy as the interface gives it.
pub fn allergy(a: &Allergy) -> wit::Allergy {
    wit::Allergy {
        id: a.id.clone(),
        substance: a.allergen.clone(),
        kind: a.kind.clone(),
        reaction: some(&a.reaction),
        severity: some(&a.severity),
        recorded: date(&a.recorded_at),
    }
}

/// The active ones of `all`, as the interface gives them.
pub fn active_medications(all: &[Prescription]) -> Vec<wit::Medication> {
    all.iter()
        .filter(|p| p.is_active())
        .map(medication)
        .collect()
}

pub fn active_allergies(all: &[Allergy]) -> Vec<wit::Allergy> {
    all.iter()
        .filter(|a| a.status == "active")
        .map(allergy)
        .collect()
}

impl wit::Guest for crate::Prescribing {
    fn active_medications(patient: String) -> Result<Vec<wit::Medication>, Error> {
        may_read(context::person().as_ref())?;
        model::check_patient_id(&patient)?;
        Ok(active_medications(&model::prescriptions(&patient)?))
    }

    fn allergies(patient: String) -> Result<wit::AllergyList, Error> {
        may_read(context::person().as_ref())?;
        model::check_patient_id(&patient)?;
        Ok(active_allergies(&model::allergies(&patient)?))
    }
}
