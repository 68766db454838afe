//! Patient records as FHIR R4 `Patient` JSON.
//!
//! | function | capability |
//! |---|---|
//! | [`get`], [`get_as`], [`search`] | `patients.read` |
//! | [`create`], [`update`] | `patients.write` |
//! | [`find_by_health_card`] | `patients.match` |
//! | [`deidentified::list`], [`deidentified::get`] | `patients.deidentified` |
//!
//! Besides the plugin's grant, the signed-in user's role must allow the access: a plugin never
//! does more than the person using it. Every call is audited with the plugin's id. Records are
//! [`serde_json::Value`]s; deserialise into your own types with `serde_json::from_value` if
//! you prefer.

use serde::Serialize;
use serde_json::Value;

use crate::Error;
use crate::bindings::osler::plugin::{patients_match, patients_read, patients_write};

/// The patient with `id`, with `meta.versionId`.
pub fn get(id: &str) -> Result<Value, Error> {
    parse(&patients_read::get(id)?)
}

/// What to [`search`] for; every field is optional. `Search::default()` lists everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Search {
    /// Accent- and case-insensitive prefix of any name word; several words must all match.
    pub name: Option<String>,
    /// `YYYY-MM-DD`.
    pub birthdate: Option<String>,
    /// `system|value` or a bare value.
    pub identifier: Option<String>,
    /// Page size, at most 100 (default 20).
    pub count: Option<u32>,
    /// The `next` of a previous page.
    pub cursor: Option<String>,
}

/// A page of patients, and where to continue.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// FHIR Patient JSON, one per match.
    pub patients: Vec<Value>,
    /// Pass as the next query's `cursor`; `None` after the last page.
    pub next: Option<String>,
}

/// The patient with `id` read into a type of your own, e.g. one with only the fields a page
/// shows: the fields it does not name are skipped without being built, which is several times
/// cheaper than [`get`]'s whole [`Value`] when a page reads many records (a day sheet of forty
/// names). The access is the same, and audited the same.
pub fn get_as<T: serde::de::DeserializeOwned>(id: &str) -> Result<T, Error> {
    let json = patients_read::get(id)?;
    serde_json::from_str(&json).map_err(|e| {
        Error::internal(format!(
            "the host returned a patient this plugin cannot read: {e}"
        ))
    })
}

/// Patients matching `query`, a page at a time.
pub fn search(query: &Search) -> Result<Page, Error> {
    let q = patients_read::SearchQuery {
        name: query.name.clone(),
        birthdate: query.birthdate.clone(),
        identifier: query.identifier.clone(),
        count: query.count,
        cursor: query.cursor.clone(),
    };
    let page = patients_read::search(&q)?;
    page_of(page.patients, page.next)
}

/// Creates a patient from FHIR Patient JSON without an `id`; returns it as stored, with its
/// new `id`.
pub fn create<T: Serialize + ?Sized>(patient: &T) -> Result<Value, Error> {
    parse(&patients_write::create(&to_json(patient)?)?)
}

/// Replaces patient `id` if it is still at `expected_version` (see [`version`]); otherwise
/// [`Error::Conflict`]. Returns the record as stored.
pub fn update<T: Serialize + ?Sized>(
    id: &str,
    patient: &T,
    expected_version: u64,
) -> Result<Value, Error> {
    parse(&patients_write::update(
        id,
        &to_json(patient)?,
        expected_version,
    )?)
}

/// A record's `meta.versionId` as a number, for [`update`].
pub fn version(patient: &Value) -> Option<u64> {
    patient.pointer("/meta/versionId")?.as_str()?.parse().ok()
}

/// The id of the patient whose Ontario health card `number`, `version_code` and
/// `birth_date` (`YYYY-MM-DD`) all match one active record; `None` otherwise, without saying
/// which part failed.
pub fn find_by_health_card(
    number: &str,
    version_code: &str,
    birth_date: &str,
) -> Result<Option<String>, Error> {
    patients_match::find_by_health_card(number, version_code, birth_date)
}

/// De-identified records for research (capability `patients.deidentified`).
///
/// No names, identifiers, contact details, address lines or city; the birth date is cut to
/// the year (and dropped for anyone 90 or older, who get the age group `90+` in the extension
/// `urn:osler:fhir:age-group`); of the address, the postal code's first three characters;
/// languages as codes only. Each record's `id` is a pseudonym, stable for this plugin and
/// meaningless to any other.
pub mod deidentified {
    use serde_json::Value;

    use super::{Page, page_of, parse};
    use crate::Error;
    use crate::bindings::osler::plugin::patients_deidentified as wit;

    /// All patients, `count` (at most 100) at a time, from `cursor` (a previous page's
    /// `next`).
    pub fn list(cursor: Option<&str>, count: u32) -> Result<Page, Error> {
        let page = wit::list(cursor, count)?;
        page_of(page.patients, page.next)
    }

    /// The record with `pseudonym`.
    pub fn get(pseudonym: &str) -> Result<Value, Error> {
        parse(&wit::get(pseudonym)?)
    }
}

fn page_of(patients: Vec<String>, next: Option<String>) -> Result<Page, Error> {
    let patients = patients
        .iter()
        .map(|p| parse(p))
        .collect::<Result<_, _>>()?;
    Ok(Page { patients, next })
}

fn parse(json: &str) -> Result<Value, Error> {
    serde_json::from_str(json)
        .map_err(|e| Error::internal(format!("the host returned a patient that is not JSON: {e}")))
}

fn to_json<T: Serialize + ?Sized>(patient: &T) -> Result<String, Error> {
    serde_json::to_string(patient).map_err(|e| Error::invalid(format!("patient: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_reads_meta() {
        let p = serde_json::json!({"resourceType": "Patient", "meta": {"versionId": "3"}});
        assert_eq!(version(&p), Some(3));
        assert_eq!(version(&serde_json::json!({})), None);
    }
}
