//! The narrow views of patient records that plugins and roles without chart access get:
//! a health-card match that answers with an id only, and de-identified records for research.

use subtle::ConstantTimeEq;

use super::fhir::{ON_HCN_SYSTEM, Patient};
use super::{PatientError, Patients};
use crate::access::{Check, Ctx, Need, Permission};
use crate::storage::{Tree, key};

/// A page for de-identification: (id, record) pairs and the cursor for the next page. The
/// caller turns each into [`deidentify`]'s output under its own pseudonym.
pub struct DeidentifiedPage {
    pub patients: Vec<(String, Patient)>,
    pub next: Option<String>,
}

impl Patients {
    /// The id of the one active patient whose Ontario health card number, version code and
    /// birth date all match; `None` otherwise, without saying which part failed. Needs
    /// `patients.match` (or `patients.read`). Audited either way.
    pub async fn match_health_card(
        &self,
        ctx: &Ctx,
        number: &str,
        version_code: &str,
        birth_date: &str,
    ) -> Result<Option<String>, PatientError> {
        const ACTION: &str = "patient.match";
        let need = Need::AnyOf(&[Permission::PatientsMatch, Permission::PatientsRead]);
        self.allow(ctx, Check::new(ACTION, need)).await?;
        let number: String = number.chars().filter(|c| c.is_ascii_digit()).collect();
        let version_code = version_code.trim().to_ascii_uppercase();
        let k = key(&[number.as_bytes(), ON_HCN_SYSTEM.as_bytes()]);
        let found = match self.storage.get(Tree::PatientIdentifiers, &k)? {
            Some(id) => {
                let id = String::from_utf8_lossy(&id).into_owned();
                match self.load(&id)? {
                    Some((p, _)) if matches(&p, &version_code, birth_date) => Some(id),
                    _ => None,
                }
            }
            None => None,
        };
        let outcome = if found.is_some() {
            "success"
        } else {
            "no-match"
        };
        self.audited(ctx, ACTION, outcome, found.as_deref()).await?;
        Ok(found)
    }

    /// A page of all patients, to be de-identified by the caller. Needs
    /// `patients.deidentified`. The audit entry lists the patients.
    pub async fn deidentified_page(
        &self,
        ctx: &Ctx,
        cursor: Option<&str>,
        count: usize,
    ) -> Result<DeidentifiedPage, PatientError> {
        const ACTION: &str = "patient.deidentified";
        let need = Need::Permission(Permission::PatientsDeidentified);
        self.allow(ctx, Check::new(ACTION, need)).await?;
        let count = count.clamp(1, super::MAX_COUNT);
        let after = cursor.map(|c| c.as_bytes().to_vec());
        let rows = self
            .storage
            .scan(Tree::Patients, b"", after.as_deref(), count + 1)?;
        let more = rows.len() > count;
        let mut ids = Vec::new();
        let mut out = Vec::new();
        for (k, v) in rows.into_iter().take(count) {
            let id = String::from_utf8_lossy(&k).into_owned();
            if let Ok(p) = serde_json::from_slice::<Patient>(&v) {
                out.push((id.clone(), p));
                ids.push(id);
            }
        }
        let next = if more { ids.last().cloned() } else { None };
        let mut ev = ctx.event(ACTION, "success");
        ev.patients = ids;
        self.audit.record(ev)?;
        self.storage.durable().await?;
        Ok(DeidentifiedPage {
            patients: out,
            next,
        })
    }

    /// One de-identified record by its pseudonym. `resolve` maps a pseudonym back to an id.
    pub async fn deidentified_get(
        &self,
        ctx: &Ctx,
        pseudonym: &str,
        id: Option<&str>,
    ) -> Result<serde_json::Value, PatientError> {
        const ACTION: &str = "patient.deidentified";
        let need = Need::Permission(Permission::PatientsDeidentified);
        self.allow(ctx, Check::new(ACTION, need)).await?;
        let found = match id {
            Some(id) => self.load(id)?.map(|(p, _)| (id, p)),
            None => None,
        };
        match found {
            Some((id, p)) => {
                self.audited(ctx, ACTION, "success", Some(id)).await?;
                Ok(deidentify(&p, pseudonym))
            }
            None => Err(PatientError::NotFound(pseudonym.into())),
        }
    }
}

fn matches(p: &Patient, version_code: &str, birth_date: &str) -> bool {
    if p.active == Some(false) {
        return false;
    }
    let Some((_, version)) = p.ontario_hcn() else {
        return false;
    };
    let version = version.unwrap_or("").to_ascii_uppercase();
    let birth = p.birth_date.as_deref().unwrap_or("");
    // Compare both in full, whatever the first says, so timing tells nothing.
    let v = version.as_bytes().ct_eq(version_code.as_bytes());
    let b = birth.as_bytes().ct_eq(birth_date.trim().as_bytes());
    bool::from(v & b)
}

/// A patient with nothing that identifies them: no names, identifiers, contact details,
/// address or practitioner; birth date cut to the year; the id replaced by a pseudonym.
pub fn deidentify(p: &Patient, pseudonym: &str) -> serde_json::Value {
    let mut out = serde_json::json!({
        "resourceType": "Patient",
        "id": pseudonym,
        "meta": {"security": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "PSEUDED",
            "display": "pseudonymized"
        }]},
    });
    let o = out.as_object_mut().expect("object");
    if let Some(g) = &p.gender {
        o.insert("gender".into(), g.clone().into());
    }
    if let Some(b) = &p.birth_date {
        o.insert(
            "birthDate".into(),
            b.chars().take(4).collect::<String>().into(),
        );
    }
    if p.deceased_boolean == Some(true) || p.deceased_date_time.is_some() {
        o.insert("deceasedBoolean".into(), true.into());
    }
    if let Some(a) = p.active {
        o.insert("active".into(), a.into());
    }
    if !p.communication.is_empty() {
        o.insert(
            "communication".into(),
            serde_json::to_value(&p.communication).unwrap_or_default(),
        );
    }
    out
}
