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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Stamp;

    fn item(id: &str, section: &str, code: Option<&str>, resolved: bool) -> Item {
        let stamp = Stamp {
            user: "drlee".into(),
            name: "Dr. Lee".into(),
            at: "2026-03-04T10:00:00".into(),
        };
        Item {
            id: id.into(),
            section: section.into(),
            text: format!("item {id}"),
            code: code.map(str::to_string),
            since: Some("2019".into()),
            added: stamp.clone(),
            resolved: resolved.then_some(stamp),
        }
    }

    #[test]
    fn active_problems_are_the_unresolved_ongoing_concerns_oldest_first() {
        let items = [
            item("000003", "concerns", None, false),
            item("000001", "concerns", Some("I10"), false),
            item("000002", "concerns", Some("J45"), true),
            item("000004", "medical", Some("E11"), false),
        ];
        let list = active(&items);
        let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["000001", "000003"]);
        assert_eq!(list[0].icd10ca.as_deref(), Some("I10"));
        assert_eq!(list[0].description, "item 000001");
        assert_eq!(list[0].since.as_deref(), Some("2019"));
        assert_eq!(list[0].added, "2026-03-04");
        assert_eq!(list[1].icd10ca, None);
    }
}
