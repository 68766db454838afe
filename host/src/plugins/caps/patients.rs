//! `patients-read`, `patients-write`, `patients-deidentified`, `patients-match`.
//!
//! The grant is checked here, through the gate; the role check and the audit entry (with
//! `via` naming the plugin) are the patient service's, the same code the HTTP API goes
//! through.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Cx, Sandbox};
use crate::access::{Capability, Check, Need, Permission};
use crate::patients::fhir::Patient;
use crate::patients::narrow::deidentify;
use crate::patients::{PatientError, Patients, SearchQuery};
use crate::plugins::latest::Error;
use crate::plugins::v0_2::osler::plugin::{
    patients_deidentified as deid, patients_match, patients_read as read, patients_write as write,
};
use crate::storage::{Batch, Storage, Tree, key};

type R<T> = wasmtime::Result<Result<T, Error>>;

/// A patient-service error as the plugin sees it.
fn error_of(e: PatientError) -> Error {
    match e {
        PatientError::Invalid(fields) => Error::Invalid(
            fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        PatientError::NotFound(id) => Error::NotFound(format!("no patient with id {id}")),
        e @ (PatientError::Conflict { .. } | PatientError::Stale { .. }) => {
            Error::Conflict(e.to_string())
        }
        PatientError::Denied(m) => Error::Denied(m),
        PatientError::BadQuery(m) => Error::Invalid(m),
        e @ (PatientError::Storage(_) | PatientError::Audit(_)) => {
            tracing::error!(error = %e, "patient service failure during a plugin call");
            Error::Internal("patient storage is unavailable".into())
        }
    }
}

fn to_json(p: &Patient) -> String {
    serde_json::to_string(p).expect("patients serialise")
}

fn parse(json: &str) -> Result<Patient, Error> {
    serde_json::from_str(json).map_err(|e| Error::Invalid(format!("not a FHIR Patient: {e}")))
}

/// What the `patients-*` interfaces see: the call, the patient service, and the store (for
/// the pseudonyms of de-identified reads) with the host's pseudonym secret.
pub struct PatientsView<'a> {
    cx: Cx<'a>,
    patients: &'a Patients,
    storage: &'a Storage,
    secret: &'a [u8],
}

impl Sandbox {
    pub(crate) fn patients_view(&mut self) -> PatientsView<'_> {
        let services = self.services();
        PatientsView {
            cx: self.cx(),
            patients: &services.patients,
            storage: &services.storage,
            secret: self.host().pseudonym_secret(),
        }
    }
}

impl PatientsView<'_> {
    async fn allow(&self, action: &str, cap: Capability, need: Need<'_>) -> Result<(), Error> {
        self.cx.allow(Check::capability(action, cap, need)).await
    }
}

// Each host method is `Ok(async { … }.await)`: the outer `Ok` says "no trap", the block's own
// `Result` is the WIT `result<_, error>` the plugin receives, and `?` works inside it.

impl read::Host for PatientsView<'_> {
    async fn get(&mut self, id: String) -> R<String> {
        Ok(async {
            self.allow("patient.read", Capability::PatientsRead, Need::Nothing)
                .await?;
            let p = self.patients.get_json_unrecorded(self.cx.ctx(), &id).await;
            let p = p.map_err(error_of)?;
            self.cx.record_read(&id);
            Ok(p)
        }
        .await)
    }

    async fn search(&mut self, q: read::SearchQuery) -> R<read::SearchPage> {
        Ok(async {
            self.allow("patient.search", Capability::PatientsRead, Need::Nothing)
                .await?;
            // A person who may read only their own record (a patient) finds exactly that
            // record, whatever the query says: this is how a plugin serving a patient learns
            // which record is theirs, from the host rather than from a URL or a form.
            let ctx = self.cx.ctx();
            if !ctx.can(Permission::PatientsRead)
                && ctx.can(Permission::PatientsReadOwn)
                && let Some(own) = ctx.patient.clone()
            {
                let p = self.patients.get_unrecorded(ctx, &own).await;
                let p = p.map_err(error_of)?;
                self.cx.record_read(&own);
                return Ok(read::SearchPage {
                    patients: vec![to_json(&p)],
                    next: None,
                });
            }
            let query = SearchQuery {
                name: q.name,
                birthdate: q.birthdate,
                identifier: q.identifier,
                count: q
                    .count
                    .map(|c| c as usize)
                    .unwrap_or(crate::patients::DEFAULT_COUNT),
                cursor: q.cursor,
            };
            let page = self.patients.search(self.cx.ctx(), &query).await;
            let page = page.map_err(error_of)?;
            Ok(read::SearchPage {
                patients: page.patients.iter().map(to_json).collect(),
                next: page.next,
            })
        }
        .await)
    }
}

impl PatientsView<'_> {
    /// The checks every patient write goes through: size, grant and role, then the JSON.
    async fn patient_to_write(&self, patient: &str, action: &str) -> Result<Patient, Error> {
        self.cx.check_size("the patient", patient.len())?;
        let need = Need::Permission(Permission::PatientsWrite);
        self.allow(action, Capability::PatientsWrite, need).await?;
        parse(patient)
    }

    /// A pseudonym for `id` that is stable for this plugin and meaningless to any other:
    /// HMAC-SHA256 under a key derived from the host's secret and the plugin id.
    fn pseudonym(&self, id: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret).expect("any key length");
        mac.update(self.cx.id().as_bytes());
        mac.update(&[0]);
        mac.update(id.as_bytes());
        let out = mac.finalize().into_bytes();
        format!("p-{}", hex::encode(&out[..12]))
    }
}

impl write::Host for PatientsView<'_> {
    async fn create(&mut self, patient: String) -> R<String> {
        Ok(async {
            let p = self.patient_to_write(&patient, "patient.create").await?;
            let p = self.patients.create(self.cx.ctx(), p).await;
            Ok(to_json(&p.map_err(error_of)?))
        }
        .await)
    }

    async fn update(&mut self, id: String, patient: String, expected_version: u64) -> R<String> {
        Ok(async {
            let p = self.patient_to_write(&patient, "patient.update").await?;
            let p = self
                .patients
                .update(self.cx.ctx(), &id, p, expected_version)
                .await;
            Ok(to_json(&p.map_err(error_of)?))
        }
        .await)
    }
}

impl deid::Host for PatientsView<'_> {
    async fn list(&mut self, cursor: Option<String>, count: u32) -> R<deid::Page> {
        Ok(async {
            let cap = Capability::PatientsDeidentified;
            self.allow("patient.deidentified", cap, Need::Nothing)
                .await?;
            let page = self
                .patients
                .deidentified_page(self.cx.ctx(), cursor.as_deref(), count as usize)
                .await
                .map_err(error_of)?;
            // Remember pseudonym → id so that `get` can find the record; recomputable, so it
            // need not wait for durability.
            let mut remember = Batch::new();
            let mut patients = Vec::new();
            let today = self
                .cx
                .call
                .as_of
                .unwrap_or_else(|| time::OffsetDateTime::now_utc().date());
            let mut read = self.cx.tally.deidentified.lock().expect("lock");
            for (id, p) in &page.patients {
                let name = self.pseudonym(id);
                patients.push(deidentify(p, &name, today).to_string());
                read.insert(id.clone());
                remember.put(
                    Tree::Pseudonyms,
                    key(&[self.cx.id().as_bytes(), name.as_bytes()]),
                    id.as_bytes().to_vec(),
                );
            }
            drop(read);
            if let Err(e) = self.storage.apply(&remember) {
                tracing::warn!(error = %e, "cannot remember pseudonyms");
            }
            Ok(deid::Page {
                patients,
                next: page.next,
            })
        }
        .await)
    }

    async fn get(&mut self, pseudonym: String) -> R<String> {
        Ok(async {
            let cap = Capability::PatientsDeidentified;
            self.allow("patient.deidentified", cap, Need::Nothing)
                .await?;
            let k = key(&[self.cx.id().as_bytes(), pseudonym.as_bytes()]);
            let id = self
                .storage
                .get(Tree::Pseudonyms, &k)
                .map_err(|_| Error::Internal("storage unavailable".into()))?
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                // A pseudonym another plugin was given does not resolve here.
                .filter(|id| self.pseudonym(id) == pseudonym);
            let v = self
                .patients
                .deidentified_get(self.cx.ctx(), &pseudonym, id.as_deref(), self.cx.call.as_of)
                .await;
            let v = v.map_err(error_of)?;
            if let Some(id) = id {
                self.cx.tally.deidentified.lock().expect("lock").insert(id);
            }
            Ok(v.to_string())
        }
        .await)
    }
}

impl patients_match::Host for PatientsView<'_> {
    async fn find_by_health_card(
        &mut self,
        number: String,
        version_code: String,
        birth_date: String,
    ) -> R<Option<String>> {
        Ok(async {
            if number.len() > 32 || version_code.len() > 8 || birth_date.len() > 32 {
                return Err(Error::Invalid(
                    "a health card number, version code or birth date that long is not one".into(),
                ));
            }
            self.allow("patient.match", Capability::PatientsMatch, Need::Nothing)
                .await?;
            let found = self
                .patients
                .match_health_card(self.cx.ctx(), &number, &version_code, &birth_date)
                .await
                .map_err(error_of)?;
            // The plugin may name this patient in its own audit entries.
            if let Some(id) = &found {
                self.cx.tally.found.lock().expect("lock").insert(id.clone());
            }
            Ok(found)
        }
        .await)
    }
}
