//! Prescribing's records and their storage.
//!
//! Layout, per patient (a patient's allergies and medications follow them from site to site;
//! each record names the site where it was written):
//!
//! - `patient/<patient id>/allergy/<id>`: an [`Allergy`].
//! - `patient/<patient id>/rx/<id>`: a [`Prescription`] — written here, or a medication
//!   prescribed elsewhere (`external`). Never deleted: a change of status is appended to its
//!   `history`, so the full history stays.
//!
//! Ids are the creation time in milliseconds and a counter, so a scan lists them in order.

use osler_sdk::{Error, clock, kv};
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
        matches!(self.status.as_str(), "active" | "on-hold")
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

pub fn allergy_key(patient: &str, id: &str) -> String {
    format!("patient/{patient}/allergy/{id}")
}

pub fn rx_key(patient: &str, id: &str) -> String {
    format!("patient/{patient}/rx/{id}")
}

/// `n` fresh ids, in order.
pub fn new_ids(n: usize) -> Vec<String> {
    let ms = clock::now().epoch_millis;
    (0..n).map(|i| format!("{ms:013}-{i:03}")).collect()
}

pub fn allergies(patient: &str) -> Result<Vec<Allergy>, Error> {
    Ok(
        kv::scan_all::<Allergy>(&format!("patient/{patient}/allergy/"))?
            .into_iter()
            .map(|(_, a)| a)
            .collect(),
    )
}

pub fn prescriptions(patient: &str) -> Result<Vec<Prescription>, Error> {
    Ok(
        kv::scan_all::<Prescription>(&format!("patient/{patient}/rx/"))?
            .into_iter()
            .map(|(_, p)| p)
            .collect(),
    )
}

pub fn prescription(patient: &str, id: &str) -> Result<Prescription, Error> {
    check_id(id)?;
    kv::get(&rx_key(patient, id))?.ok_or_else(|| Error::not_found(format!("no prescription {id}")))
}

pub fn allergy(patient: &str, id: &str) -> Result<Allergy, Error> {
    check_id(id)?;
    kv::get(&allergy_key(patient, id))?.ok_or_else(|| Error::not_found(format!("no allergy {id}")))
}

/// Writes new records (keys that must not exist yet) and changed ones (that must still hold
/// what was read) in one atomic batch.
pub fn save(new: &[Prescription], changed: &[(Prescription, Prescription)]) -> Result<(), Error> {
    let mut b = kv::Batch::new();
    for p in new {
        let k = rx_key(&p.patient, &p.id);
        b = b.expect_absent(&k).put(&k, p);
    }
    for (old, p) in changed {
        let k = rx_key(&p.patient, &p.id);
        b = b.expect(&k, old).put(&k, p);
    }
    b.commit().map_err(|e| match e {
        Error::Conflict(_) => {
            Error::conflict("the medication list changed at the same moment: reload and try again")
        }
        e => e,
    })
}
