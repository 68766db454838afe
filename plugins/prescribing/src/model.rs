//! Prescribing's records and their storage.
//!
//! The records are kept about a patient, in the host's patient-scoped storage
//! (`patient-data`): the host checks every read and write against the right of the person
//! served to that patient and puts it on the patient's audit trail. A patient's allergies and
//! medications follow them from site to site; each record names the site where it was
//! written. Keys, under the patient:
//!
//! - `allergy/<id>`: an [`Allergy`].
//! - `rx/<id>`: a [`Prescription`] — written here, or a medication prescribed elsewhere
//!   (`external`). Never deleted: a change of status is appended to its `history`, so the
//!   full history stays.
//!
//! Ids are the creation time in milliseconds and a counter, so a scan lists them in order.
//!
//! Before plugin API 0.2 the same records lived in the plugin's `kv` under
//! `patient/<patient id>/allergy/<id>` and `patient/<patient id>/rx/<id>`. [`migrate`] moves a
//! patient's records the first time anyone opens them after an upgrade (see its docs).

use osler_sdk::{Error, clock, kv, patient_data};
use serde::{Deserialize, Serialize};

use crate::dispense::Quantity;
use crate::sig::Sig;

pub const SEVERITIES: [&str; 4] = ["mild", "moderate", "severe", "no-reaction"];
pub const ALLERGY_STATUSES: [&str; 3] = ["active", "inactive", "resolved"];
pub const ALLERGEN_KINDS: [&str; 4] = ["atc", "ingredient", "brand", "free-text"];

/// HL7 FHIR `MedicationRequest.status`.
pub const STATUSES: [&str; 7] = [
    "draft",
    "active",
    "on-hold",
    "cancelled",
    "completed",
    "stopped",
    "entered-in-error",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allergy {
    pub id: String,
    /// `atc`, `ingredient`, `brand` or `free-text`.
    pub kind: String,
    /// The ATC code or class, ingredient, brand, or the free text.
    pub allergen: String,
    pub reaction: String,
    /// `mild`, `moderate`, `severe` or `no-reaction`.
    pub severity: String,
    /// When it started, as known (a date or a phrase).
    pub onset: String,
    /// `active`, `inactive` or `resolved`.
    pub status: String,
    pub recorded_by: String,
    pub recorded_at: String,
}

/// The drug of a prescription.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drug {
    /// Set when chosen from the drug reference, or typed while it was unavailable (then
    /// `verified` is false).
    pub din: Option<String>,
    pub name: String,
    pub atc: Option<String>,
    pub ingredients: Vec<String>,
    /// A free-text drug, not from the drug reference.
    pub custom: bool,
    /// From the drug reference's sample data: the DIN is not a real one.
    pub sample: bool,
    /// The drug reference confirmed this DIN when this prescription was written. A DIN is
    /// printed as a DIN only then.
    #[serde(default)]
    pub verified: bool,
    /// The dosage form, e.g. `tablet`, `oral suspension`, `metered-dose inhaler`.
    #[serde(default)]
    pub form: String,
    #[serde(default)]
    pub route: String,
    /// Each ingredient with its strength, from the product.
    #[serde(default)]
    pub composition: Vec<Component>,
    /// What one package holds (`200 doses`), when known.
    #[serde(default)]
    pub package: String,
    /// The controlled-substance class: empty, `narcotic`, `controlled-drug` or
    /// `targeted-substance`.
    #[serde(default)]
    pub controlled: String,
}

/// An ingredient and its strength.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub strength: String,
    pub unit: String,
}

/// The controlled-substance classes, as stored.
pub const CONTROLLED: [&str; 3] = ["narcotic", "controlled-drug", "targeted-substance"];

impl Drug {
    /// `narcotic` → `a narcotic`, for messages.
    pub fn controlled_words(&self) -> Option<&'static str> {
        match self.controlled.as_str() {
            "narcotic" => Some("a narcotic"),
            "controlled-drug" => Some("a controlled drug"),
            "targeted-substance" => Some("a targeted substance"),
            _ => None,
        }
    }
}

/// One warning the check raised.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    /// `interaction`, `allergy` (the drug is what the allergy names) or `cross-sensitivity`.
    pub kind: String,
    /// `major`, `moderate`, `minor`, `unknown` for interactions; the allergy's severity;
    /// `caution` for a cross-sensitivity.
    pub severity: String,
    /// What it is about: the other drug, or the allergy.
    pub with: String,
    pub message: String,
    /// Whether it needs an override reason.
    pub blocking: bool,
    /// For an interaction: the table it comes from and the row's id there, and the other
    /// rows that applied to the pair (`source row: summary`), for audit.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    /// For a cross-sensitivity caution: `low`, `moderate` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
}

/// What the checks found when the prescription was written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checks {
    /// `checked`, or `unchecked` when the drug reference was not available.
    pub status: String,
    /// Said to the prescriber: what was and was not checked.
    pub message: String,
    pub warnings: Vec<Warning>,
    /// Minor interactions not shown because of the site's threshold.
    pub hidden: usize,
    /// Allergies or drugs that could not be checked, and why.
    pub not_checked: Vec<String>,
    /// What could not be looked at all, e.g. "medications shared by other facilities could
    /// not be checked: …" (the prescription proceeds; the prescriber is told).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    /// Clinicians' posts on the drug's ATC code (title, author, trusted).
    pub posts: Vec<PostNote>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostNote {
    pub kind: String,
    pub title: String,
    pub body: String,
    pub author_name: String,
    pub trusted: bool,
}

impl Checks {
    pub fn requires_override(&self) -> bool {
        self.warnings.iter().any(|w| w.blocking)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub at: String,
    pub by: String,
    pub what: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prescription {
    pub id: String,
    pub patient: String,
    pub site: String,
    pub drug: Drug,
    pub strength: String,
    pub sig: Sig,
    /// The sig in canonical form, and as a sentence.
    pub sig_text: String,
    pub directions: String,
    /// What to dispense each fill, with its unit.
    pub quantity: Quantity,
    /// Computed from the sig and the product, rather than given.
    #[serde(default)]
    pub quantity_computed: bool,
    pub repeats: u32,
    /// The least number of days between fills, when the prescriber says (required for the
    /// repeats of a controlled drug or targeted substance).
    #[serde(default)]
    pub repeat_interval_days: Option<u32>,
    /// Dispense in parts: this much every so many days, up to the quantity.
    #[serde(default)]
    pub part_fill: Option<PartFill>,
    pub long_term: bool,
    pub instructions: String,
    /// FHIR `MedicationRequest.status`.
    pub status: String,
    /// Prescribed elsewhere and recorded here for the medication list.
    pub external: bool,
    /// The prescriber's user name (empty for an external one) and name.
    pub prescriber: String,
    pub prescriber_name: String,
    pub written: String,
    pub checks: Checks,
    pub override_reason: Option<String>,
    pub renewed_from: Option<String>,
    pub reason_stopped: Option<String>,
    pub history: Vec<Change>,
}

/// A part-fill: `quantity` each time, at least `interval_days` apart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartFill {
    pub quantity: Quantity,
    pub interval_days: u32,
}

impl Prescription {
    /// On the active medication list.
    pub fn is_active(&self) -> bool {
        active_status(&self.status)
    }

    /// Everything the prescription authorises: the quantity for the first fill and each
    /// repeat.
    pub fn total(&self) -> Quantity {
        self.quantity.times(1 + self.repeats)
    }
}

/// A patient id as the host gives it; anything else cannot name a patient.
pub fn check_patient_id(id: &str) -> Result<(), Error> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::not_found(format!("no patient {id}")));
    }
    Ok(())
}

fn check_id(id: &str) -> Result<(), Error> {
    if id.len() == 17 && id.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        Ok(())
    } else {
        Err(Error::not_found(format!("no record {id}")))
    }
}

pub fn allergy_key(id: &str) -> String {
    format!("allergy/{id}")
}

pub fn rx_key(id: &str) -> String {
    format!("rx/{id}")
}

/// Where the records of `patient` were kept in `kv` before plugin API 0.2.
pub fn legacy_prefix(patient: &str) -> String {
    format!("patient/{patient}/")
}

/// Moves the records prescribing kept about `patient` in `kv` (before plugin API 0.2) into
/// patient-scoped storage, so that a clinic upgrading keeps every allergy and medication.
///
/// Plugins have no start-up hook and a clinic may hold thousands of charts, so each patient's
/// records move the first time anyone opens them (every route about a patient calls this
/// first): one `kv` scan when there is nothing to move. A move is a patient-data batch that
/// writes each record only where the key is still absent, then a `kv` batch that deletes each
/// legacy key only if it still holds what was copied. Both are idempotent, so a move cut short
/// (a crash, a timeout, two requests at once) is finished by the next one, and a record
/// changed in patient-scoped storage after its move is never overwritten by an old copy.
/// The copy is a patient-data write (`patients.write`) made for the person who opened the
/// chart and audited with the patient like any other; when that person may not write (or the
/// plugin lacks the grant), nothing moves and [`allergies`] and [`prescriptions`] still show
/// the legacy records.
pub fn migrate(patient: &str) -> Result<(), Error> {
    let legacy = legacy_page(patient)?;
    if legacy.is_empty() {
        NO_LEGACY.with(|n| *n.borrow_mut() = Some(patient.to_string()));
        return Ok(());
    }
    let prefix = legacy_prefix(patient);
    // The copies, each only where nothing is yet: a record already moved (and perhaps changed
    // since) stays as it is.
    let mut present = std::collections::BTreeSet::new();
    for kind in ["allergy/", "rx/"] {
        for (k, _) in patient_data::scan_all::<serde_json::Value>(patient, kind)? {
            present.insert(k);
        }
    }
    let mut copy = patient_data::Batch::new(patient);
    for (k, v) in &legacy {
        let new_key = &k[prefix.len()..];
        if !present.contains(new_key) {
            copy = copy
                .expect_absent(new_key)
                .put_bytes(new_key, current_form(new_key, v));
        }
    }
    if !copy.is_empty() {
        match copy.commit() {
            // Another request moved them first: only the deletes are left.
            Ok(()) | Err(Error::Conflict(_)) => {}
            // This person may not write here: the records stay where they are, shown from
            // there, until someone who may opens the chart.
            Err(Error::Denied(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    let mut delete = kv::Batch::new();
    for (k, v) in legacy {
        delete = delete.expect_bytes(&k, v).delete(&k);
    }
    match delete.commit() {
        Ok(()) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A legacy record as this version writes it (the fields in today's order, a quantity with
/// its unit), so that a later compare-and-swap on it compares like with like; bytes it cannot
/// read are kept exactly as they were rather than lost.
fn current_form(key: &str, bytes: &[u8]) -> Vec<u8> {
    fn again<T: serde::Serialize + serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<Vec<u8>> {
        serde_json::to_vec(&serde_json::from_slice::<T>(bytes).ok()?).ok()
    }
    let fresh = if key.starts_with("allergy/") {
        again::<Allergy>(bytes)
    } else if key.starts_with("rx/") {
        again::<Prescription>(bytes)
    } else {
        None
    };
    fresh.unwrap_or_else(|| bytes.to_vec())
}

/// The legacy records of `patient` still in `kv` (a page: a move takes at most 500 at once,
/// and the next request takes the rest).
fn legacy_page(patient: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
    Ok(kv::scan_bytes(&legacy_prefix(patient), None, 500)?.entries)
}

thread_local! {
    /// The patient whose legacy records [`migrate`] found none of in this instance's request
    /// (an instance serves one request, and nothing writes legacy records any more): their
    /// records are read without looking for legacy ones again.
    static NO_LEGACY: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Records of `kind` (`allergy/` or `rx/`): patient-scoped storage, and any legacy record not
/// moved yet (see [`migrate`]).
fn records<T: serde::de::DeserializeOwned>(patient: &str, kind: &str) -> Result<Vec<T>, Error> {
    let mut found: std::collections::BTreeMap<String, T> =
        patient_data::scan_all::<T>(patient, kind)?
            .into_iter()
            .collect();
    if NO_LEGACY.with(|n| n.borrow().as_deref() == Some(patient)) {
        return Ok(found.into_values().collect());
    }
    let legacy = format!("{}{kind}", legacy_prefix(patient));
    for (k, v) in kv::scan_all::<T>(&legacy)? {
        found
            .entry(format!("{kind}{}", &k[legacy.len()..]))
            .or_insert(v);
    }
    Ok(found.into_values().collect())
}

/// `n` fresh ids for `patient`'s records under `kind` (`"rx/"` or `"allergy/"`), in order:
/// this millisecond's, numbered past those already taken (one scan of this millisecond's keys,
/// so one audited read however many ids). Two writes for one patient within a millisecond are
/// ordinary once a write takes less than one (a script adding a list, a benchmark's set-up);
/// numbered from 0 each time, the second was refused as a conflict. Two writes at the very
/// same moment may still pick the same number: the batch's `expect_absent` then refuses one.
pub fn new_ids(patient: &str, kind: &str, n: usize) -> Result<Vec<String>, Error> {
    let ms = clock::now().epoch_millis;
    let stem = format!("{kind}{ms:013}-");
    // Three-digit numbers: byte order is numeric order.
    let mut first = 0;
    for (key, _) in patient_data::scan_all::<serde_json::Value>(patient, &stem)? {
        match key[stem.len()..].parse::<usize>() {
            Ok(taken) if taken >= first + n => break,
            Ok(taken) if taken >= first => first = taken + 1,
            _ => {}
        }
    }
    if first + n > 1000 {
        return Err(Error::conflict(
            "too many records for this patient in one millisecond: try again",
        ));
    }
    Ok((first..first + n)
        .map(|i| format!("{ms:013}-{i:03}"))
        .collect())
}

pub fn allergies(patient: &str) -> Result<Vec<Allergy>, Error> {
    records(patient, "allergy/")
}

pub fn prescriptions(patient: &str) -> Result<Vec<Prescription>, Error> {
    records(patient, "rx/")
}

/// A prescription as a check sees it: the rest of the record is skipped, not built.
#[derive(Debug, Deserialize)]
pub struct Listed {
    pub id: String,
    pub status: String,
    pub drug: Drug,
}

impl Listed {
    /// On the active medication list (as [`Prescription::is_active`]).
    pub fn is_active(&self) -> bool {
        active_status(&self.status)
    }
}

/// A status that keeps a prescription on the active medication list.
fn active_status(status: &str) -> bool {
    matches!(status, "active" | "on-hold")
}

/// `patient`'s prescriptions, as [`Listed`].
pub fn listed(patient: &str) -> Result<Vec<Listed>, Error> {
    records(patient, "rx/")
}

pub fn prescription(patient: &str, id: &str) -> Result<Prescription, Error> {
    check_id(id)?;
    patient_data::get(patient, &rx_key(id))?
        .ok_or_else(|| Error::not_found(format!("no prescription {id}")))
}

pub fn allergy(patient: &str, id: &str) -> Result<Allergy, Error> {
    check_id(id)?;
    patient_data::get(patient, &allergy_key(id))?
        .ok_or_else(|| Error::not_found(format!("no allergy {id}")))
}

/// An event to publish with a write: its topic and JSON payload.
pub type Announce = (&'static str, serde_json::Value);

/// Writes new records (keys that must not exist yet) and changed ones (that must still hold
/// what was read) of `patient` in one atomic batch, with the events that announce them (the
/// outbox: published if, and only if, the write commits).
pub fn save(
    patient: &str,
    new: &[Prescription],
    changed: &[(Prescription, Prescription)],
    events: &[Announce],
) -> Result<(), Error> {
    let mut b = patient_data::Batch::new(patient);
    for p in new {
        let k = rx_key(&p.id);
        b = b.expect_absent(&k).put(&k, p);
    }
    for (old, p) in changed {
        let k = rx_key(&p.id);
        b = b.expect(&k, old).put(&k, p);
    }
    for (topic, payload) in events {
        b = b.publish(topic, payload);
    }
    b.commit().map_err(|e| match e {
        Error::Conflict(_) => {
            Error::conflict("the medication list changed at the same moment: reload and try again")
        }
        e => e,
    })
}
