//! The `osler:encounter/problems@0.1.0` interface (see `wit/problems.wit`): a patient's
//! active problems, the CPP's ongoing concerns that are not resolved, for other plugins.
//!
//! Read through patient-scoped storage as the person the importer serves (the host checks
//! their right to the patient and audits the read), and only for physicians and nurses, as
//! everything this plugin keeps ([`store::clinical`]).

use osler_sdk::{Error, context};

use crate::bindings::exports::osler::encounter::problems as wit;
use crate::model::Item;
use crate::store;

/// The unresolved ongoing concerns of `items`, oldest first, as the interface gives them.
pub fn active(items: &[Item]) -> Vec<wit::Problem> {
    let mut list: Vec<&Item> = items
        .iter()
        .filter(|i| i.section == "concerns" && i.resolved.is_none())
        .collect();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    list.into_iter()
        .map(|i| wit::Problem {
            id: i.id.clone(),
            description: i.text.clone(),
            icd10ca: i.code.clone().filter(|c| !c.is_empty()),
            since: i.since.clone().filter(|s| !s.is_empty()),
            added: i.added.at.get(..10).unwrap_or(&i.added.at).to_string(),
        })
        .collect()
}

impl wit::Guest for crate::Encounter {
    fn active_problems(patient: String) -> Result<Vec<wit::Problem>, Error> {
        let Some(caller) = context::person() else {
            return Err(Error::denied("a patient's problems are read for a person"));
        };
        store::clinical(&caller)?;
        if patient.is_empty()
            || patient.len() > 64
            || !patient
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Error::not_found(format!("no patient {patient}")));
        }
        Ok(active(&store::cpp(&patient)?))
    }
}
