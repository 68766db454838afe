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
        sig: if rx.directions.trim().is_empty() {
            rx.sig_text.clone()
        } else {
            rx.directions.clone()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispense::Quantity;
    use crate::model::{Checks, Drug};

    fn rx(status: &str, atc: Option<&str>) -> Prescription {
        let sig = crate::sig::parse("1 cap PO OD").unwrap();
        Prescription {
            id: "1764430000000-000".into(),
            patient: "p1".into(),
            site: "main".into(),
            drug: Drug {
                din: Some("99000061".into()),
                name: "Ramipril".into(),
                atc: atc.map(str::to_string),
                ..Drug::default()
            },
            strength: "5 mg".into(),
            sig_text: sig.format(),
            directions: sig.readable(),
            sig,
            quantity: Quantity {
                amount: "30".into(),
                unit: "capsule".into(),
            },
            quantity_computed: false,
            repeats: 0,
            repeat_interval_days: None,
            part_fill: None,
            long_term: true,
            instructions: "with water".into(),
            status: status.into(),
            external: false,
            prescriber: "drlee".into(),
            prescriber_name: "Dr. Amelia Lee".into(),
            written: "2026-11-29T10:00:00".into(),
            checks: Checks::default(),
            override_reason: None,
            renewed_from: None,
            reason_stopped: None,
            history: vec![],
        }
    }

    #[test]
    fn only_active_medications_with_their_directions_as_a_sentence() {
        let all = [
            rx("active", Some("C09AA05")),
            rx("on-hold", Some(" ")),
            rx("stopped", Some("C09AA05")),
            rx("entered-in-error", None),
        ];
        let list = active_medications(&all);
        assert_eq!(list.len(), 2);
        let m = &list[0];
        assert_eq!(m.drug, "Ramipril");
        assert_eq!(m.atc.as_deref(), Some("C09AA05"));
        assert_eq!(m.din.as_deref(), Some("99000061"));
        assert_eq!(m.start, "2026-11-29");
        assert_eq!(m.prescriber_name, "Dr. Amelia Lee");
        assert!(m.sig.contains("once a day"), "{}", m.sig);
        assert_eq!(m.instructions, "with water");
        assert_eq!(list[1].status, "on-hold");
        assert_eq!(list[1].atc, None, "a blank code is no code");
    }

    #[test]
    fn only_active_allergies_with_blanks_as_none() {
        let a = |status: &str, reaction: &str| Allergy {
            id: "1".into(),
            kind: "atc".into(),
            allergen: "J01C".into(),
            reaction: reaction.into(),
            severity: "moderate".into(),
            onset: String::new(),
            status: status.into(),
            recorded_by: "nurse.kim".into(),
            recorded_at: "2026-01-05T09:58:00".into(),
        };
        let list = active_allergies(&[a("active", ""), a("resolved", "hives")]);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].substance, "J01C");
        assert_eq!(list[0].reaction, None);
        assert_eq!(list[0].severity.as_deref(), Some("moderate"));
        assert_eq!(list[0].recorded, "2026-01-05");
        assert!(active_allergies(&[]).is_empty());
    }

    #[test]
    fn reception_and_others_are_refused_before_anything_is_read() {
        let who = |role: &str| Caller {
            user: "u".into(),
            display_name: "U".into(),
            roles: vec![role.into()],
            permissions: vec![],
            site: "main".into(),
            site_name: "Main".into(),
            csrf_token: String::new(),
        };
        for ok in ["physician", "nurse", "patient"] {
            assert!(may_read(Some(&who(ok))).is_ok(), "{ok}");
        }
        for no in ["reception", "kiosk", "researcher", "admin"] {
            assert!(
                matches!(may_read(Some(&who(no))), Err(Error::Denied(_))),
                "{no}"
            );
        }
        assert!(may_read(None).is_err());
    }
}
