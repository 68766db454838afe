//! Patients: demographics in the HL7 FHIR R4 Patient shape, their indexes and search.
//!
//! Every operation takes the caller's [`Ctx`], checks its permission, and appends an audit
//! entry (including refusals) before it answers. Records are never deleted; a chart is marked
//! inactive. Updates use optimistic concurrency on `meta.versionId`.
//!
//! Indexes (each a storage tree, written in the same atomic batch as the record):
//! - name: every normalised name token (family and given names, accents and case folded), so a
//!   name search is a prefix scan of the index;
//! - birth date: exact;
//! - identifier: `value \0 system` → id, which also makes identifiers unique.

pub mod fhir;
pub mod narrow;
pub mod validate;

use std::sync::Arc;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;

use crate::access::{Check, Ctx, Gate, Need, Permission, Refusal};
use crate::audit::{Audit, AuditError};
use crate::storage::{Batch, Storage, StorageError, Tree, key};
pub use fhir::Patient;
pub use validate::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    #[error("the patient record is not valid")]
    Invalid(Vec<FieldError>),
    #[error("no patient with id {0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict {
        message: String,
        /// The existing chart, for a duplicate identifier.
        existing: Option<String>,
    },
    #[error(
        "this record has changed since you read it (now version {current}); reload it and apply your change again"
    )]
    Stale { current: u64 },
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    BadQuery(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// Fold a name for indexing and search: decompose, drop accents, lowercase, keep letters and
/// digits. "José" → "jose", "O'Brien" → "obrien", "Søndergaard" → "sondergaard".
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
    {
        // Latin letters that are not a base letter plus an accent, so that decomposition
        // leaves them alone; people type them as these.
        match c {
            'ø' => out.push('o'),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'ß' => out.push_str("ss"),
            'ł' => out.push('l'),
            'đ' | 'ð' => out.push('d'),
            'þ' => out.push_str("th"),
            'ı' => out.push('i'),
            c if c.is_alphanumeric() => out.push(c),
            _ => {}
        }
    }
    out
}

/// Folded words of a free-text name (split on spaces and hyphens).
pub fn words(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == '-' || c == ',')
        .map(fold)
        .filter(|w| !w.is_empty())
        .collect()
}

/// The index tokens of a patient's names: each distinct folded word, sorted.
pub fn name_tokens(p: &Patient) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for n in &p.name {
        for part in n.family.iter().chain(&n.given) {
            out.extend(words(part));
        }
    }
    out.into_iter().collect()
}

/// The unique-index key of each identifier, with its system and value as stored: the value
/// in its compared form ([`validate::identifier_key_value`]), 0, the system.
fn identifier_keys(p: &Patient) -> Vec<(Vec<u8>, String, String)> {
    p.identifier
        .iter()
        .filter_map(|i| {
            let (s, v) = (i.system.as_deref()?, i.value.as_deref()?);
            Some((
                key(&[validate::identifier_key_value(v).as_bytes(), s.as_bytes()]),
                s.to_string(),
                v.to_string(),
            ))
        })
        .collect()
}

/// Every index row of a record: (tree, key, value).
fn index_rows(p: &Patient, id: &str) -> Vec<(Tree, Vec<u8>, Vec<u8>)> {
    let mut rows = Vec::new();
    for t in name_tokens(p) {
        rows.push((
            Tree::PatientNames,
            key(&[t.as_bytes(), id.as_bytes()]),
            vec![],
        ));
    }
    if let Some(d) = &p.birth_date {
        rows.push((
            Tree::PatientBirthDates,
            key(&[d.as_bytes(), id.as_bytes()]),
            vec![],
        ));
    }
    for (k, ..) in identifier_keys(p) {
        rows.push((Tree::PatientIdentifiers, k, id.as_bytes().to_vec()));
    }
    rows
}

/// Add a new record's index rows to `b`.
fn index_ops(p: &Patient, id: &str, b: &mut Batch) {
    for (tree, k, v) in index_rows(p, id) {
        b.put(tree, k, v);
    }
}

/// Change a record's index rows from `old` to `new`: only the rows that differ are deleted
/// or written.
fn reindex_ops(old: &Patient, new: &Patient, id: &str, b: &mut Batch) {
    let before = index_rows(old, id);
    let after = index_rows(new, id);
    for row in &before {
        if !after.contains(row) {
            b.delete(row.0, row.1.clone());
        }
    }
    for row in after {
        if !before.contains(&row) {
            b.put(row.0, row.1, row.2);
        }
    }
}

/// Search parameters (FHIR style).
#[derive(Clone, Debug, Default)]
pub struct SearchQuery {
    /// Name prefix(es); every word must start one of the patient's names.
    pub name: Option<String>,
    /// Exact birth date `YYYY-MM-DD` (an `eq` prefix is accepted).
    pub birthdate: Option<String>,
    /// `system|value`, or a bare value in any system.
    pub identifier: Option<String>,
    pub count: usize,
    pub cursor: Option<String>,
}

pub const DEFAULT_COUNT: usize = 20;
pub const MAX_COUNT: usize = 100;

/// One page of search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchPage {
    pub patients: Vec<Patient>,
    /// Opaque cursor for the next page.
    pub next: Option<String>,
}

/// Who made a record's latest change.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ChangedBy {
    pub user: String,
    /// Their roles, comma-separated, as in the audit trail.
    pub role: String,
    /// The version they made.
    pub version: u64,
}

fn changed_by_key(id: &str) -> Vec<u8> {
    let mut k = b"c".to_vec();
    k.extend(id.as_bytes());
    k
}

/// The patient service.
#[derive(Clone)]
pub struct Patients {
    storage: Storage,
    audit: Audit,
    /// How long one search may scan before it answers what it has found.
    search_budget: std::time::Duration,
    gate: Gate,
    /// Records as plugins receive them ([`Patients::get_json_unrecorded`]).
    json: Option<Arc<JsonCache>>,
}

/// Patient records serialised as plugins receive them, by id, each with the stored bytes it
/// was made from. A read uses an entry only when the record's stored bytes are still exactly
/// those, so a changed record is never answered from here, and nothing needs invalidating.
/// Bounded by bytes; the least useful entries are dropped first.
struct JsonCache(quick_cache::sync::Cache<String, Arc<Serialised>, JsonWeight>);

struct Serialised {
    stored: Vec<u8>,
    json: String,
}

#[derive(Clone)]
struct JsonWeight;

impl quick_cache::Weighter<String, Arc<Serialised>> for JsonWeight {
    fn weight(&self, id: &String, v: &Arc<Serialised>) -> u64 {
        (id.len() + v.stored.len() + v.json.len() + 64) as u64
    }
}

impl From<Refusal> for PatientError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Denied(m) => PatientError::Denied(m),
            Refusal::Audit(e) => PatientError::Audit(e),
        }
    }
}

/// The default time budget of one search.
pub const SEARCH_BUDGET: std::time::Duration = std::time::Duration::from_secs(1);

/// Now, as a FHIR instant with millisecond precision.
fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_millisecond(now.millisecond())
        .expect("a valid millisecond");
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// A stored patient record.
fn decode(stored: &[u8]) -> Result<Patient, StorageError> {
    serde_json::from_slice(stored)
        .map_err(|e| StorageError::Io(format!("unreadable patient record: {e}")))
}

impl Patients {
    pub fn new(storage: Storage, audit: Audit, gate: Gate) -> Self {
        Self {
            storage,
            audit,
            gate,
            search_budget: SEARCH_BUDGET,
            json: None,
        }
    }

    /// The same service keeping up to `bytes` of records as plugins receive them (none when 0).
    pub fn with_json_cache(mut self, bytes: u64) -> Self {
        self.json = (bytes > 0).then(|| {
            let items = (bytes / 2048).max(16) as usize;
            Arc::new(JsonCache(quick_cache::sync::Cache::with_weighter(
                items, bytes, JsonWeight,
            )))
        });
        self
    }

    /// The same service with another time budget per search.
    pub fn with_search_budget(mut self, budget: std::time::Duration) -> Self {
        self.search_budget = budget;
        self
    }

    fn event(
        &self,
        ctx: &Ctx,
        action: &str,
        outcome: &str,
        patient: Option<&str>,
    ) -> crate::audit::Event {
        let mut ev = ctx.event(action, outcome);
        ev.patient = patient.map(Into::into);
        ev.resource = patient.map(|p| format!("Patient/{p}"));
        ev
    }

    /// Audit then wait for durability: nothing is answered before its audit entry is on disk.
    async fn audited(
        &self,
        ctx: &Ctx,
        action: &str,
        outcome: &str,
        patient: Option<&str>,
    ) -> Result<(), PatientError> {
        self.audit
            .record(self.event(ctx, action, outcome, patient))?;
        self.storage.durable().await?;
        Ok(())
    }

    /// Ask the gate; a refusal is on the trail before it is answered.
    async fn allow(&self, ctx: &Ctx, check: Check<'_>) -> Result<(), PatientError> {
        Ok(self.gate.check(ctx, check).await?)
    }

    fn load(&self, id: &str) -> Result<Option<(Patient, Vec<u8>)>, PatientError> {
        Ok(match self.storage.get(Tree::Patients, id.as_bytes())? {
            Some(bytes) => Some((decode(&bytes)?, bytes)),
            None => None,
        })
    }

    /// The id of the existing chart holding any of these identifiers.
    fn holder_of(
        &self,
        p: &Patient,
        except: Option<&str>,
    ) -> Result<Option<(String, String)>, PatientError> {
        for (k, system, value) in identifier_keys(p) {
            if let Some(id) = self.storage.get(Tree::PatientIdentifiers, &k)? {
                let id = String::from_utf8_lossy(&id).into_owned();
                if Some(id.as_str()) != except {
                    let label = if system == fhir::ON_HCN_SYSTEM {
                        format!("health card number {value}")
                    } else {
                        format!("identifier {system}|{value}")
                    };
                    return Ok(Some((id, label)));
                }
            }
        }
        Ok(None)
    }

    /// The refusal of a record whose identifier belongs to another chart, with that chart.
    fn duplicate(
        &self,
        p: &Patient,
        except: Option<&str>,
    ) -> Result<(String, PatientError), PatientError> {
        let (existing, label) = self
            .holder_of(p, except)?
            .unwrap_or_else(|| (String::new(), "an identifier".into()));
        let err = PatientError::Conflict {
            message: format!("{label} already belongs to {}", self.chart_label(&existing)),
            existing: Some(existing.clone()),
        };
        Ok((existing, err))
    }

    fn chart_label(&self, id: &str) -> String {
        match self.load(id) {
            Ok(Some((p, _))) => match p.chart_number() {
                Some(c) => format!("chart {c} (Patient/{id})"),
                None => format!("Patient/{id}"),
            },
            _ => format!("Patient/{id}"),
        }
    }

    fn prepare_new(&self, mut p: Patient) -> Result<(String, Patient), PatientError> {
        validate::normalise(&mut p);
        let mut errs = validate::validate(&p, today());
        // Chart numbers are Osler's to hand out, in order: a client-chosen one could take the
        // number the next registration is due to get.
        if let Some(i) = p
            .identifier
            .iter()
            .position(|i| i.system.as_deref() == Some(fhir::CHART_SYSTEM))
        {
            errs.insert(
                0,
                FieldError {
                    field: format!("identifier[{i}].system"),
                    message: format!(
                        "chart numbers ({}) are assigned by Osler; leave this identifier out",
                        fhir::CHART_SYSTEM
                    ),
                },
            );
        }
        if !errs.is_empty() {
            return Err(PatientError::Invalid(errs));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let n = self.storage.next_id()? + 1000;
        p.identifier.push(fhir::Identifier {
            r#use: Some("usual".into()),
            system: Some(fhir::CHART_SYSTEM.into()),
            value: Some(n.to_string()),
            ..Default::default()
        });
        p.resource_type = "Patient".into();
        p.id = Some(id.clone());
        p.meta = Some(fhir::Meta {
            version_id: Some("1".into()),
            last_updated: Some(now_rfc3339()),
        });
        if p.active.is_none() {
            p.active = Some(true);
        }
        Ok((id, p))
    }

    fn create_batch(id: &str, p: &Patient) -> Batch {
        // The id is a fresh random UUID; the identifiers are what must be unique.
        let mut b = Batch::new();
        for (k, ..) in identifier_keys(p) {
            b.expect(Tree::PatientIdentifiers, k, None);
        }
        b.put(
            Tree::Patients,
            id.as_bytes(),
            serde_json::to_vec(p).expect("serialise"),
        );
        index_ops(p, id, &mut b);
        b
    }

    pub async fn create(&self, ctx: &Ctx, p: Patient) -> Result<Patient, PatientError> {
        const ACTION: &str = "patient.create";
        self.allow(
            ctx,
            Check::new(ACTION, Need::Permission(Permission::PatientsWrite)),
        )
        .await?;
        let (id, p) = match self.prepare_new(p) {
            Ok(x) => x,
            Err(e) => {
                self.audited(ctx, ACTION, "invalid", None).await?;
                return Err(e);
            }
        };
        match self.audit.record_with(
            &Self::create_batch(&id, &p),
            self.event(ctx, ACTION, "success", Some(&id)),
        ) {
            Ok(_) => {}
            Err(AuditError::Storage(StorageError::Conflict { .. })) => {
                let (existing, err) = self.duplicate(&p, None)?;
                self.audited(ctx, ACTION, "conflict", Some(&existing))
                    .await?;
                return Err(err);
            }
            Err(e) => return Err(e.into()),
        }
        self.storage.durable().await?;
        Ok(p)
    }

    /// Create many patients in large atomic batches with one fsync per batch and one audit
    /// entry per batch (demo data, imports, benchmarks).
    pub async fn import(&self, ctx: &Ctx, patients: Vec<Patient>) -> Result<usize, PatientError> {
        let need = Need::Permission(Permission::PatientsWrite);
        self.allow(ctx, Check::new("patient.import", need)).await?;
        let mut n = 0;
        for chunk in patients.chunks(2000) {
            let mut b = Batch::new();
            let mut ids = Vec::new();
            for p in chunk {
                let (id, p) = self.prepare_new(p.clone())?;
                b.ops.extend(Self::create_batch(&id, &p).ops);
                ids.push(id);
            }
            let mut ev = ctx.event("patient.import", "success");
            ev.resource = Some(format!("Patient?count={}", ids.len()));
            match self.audit.record_with(&b, ev) {
                Ok(_) => {}
                Err(AuditError::Storage(StorageError::Conflict { key, .. })) => {
                    return Err(PatientError::Conflict {
                        message: format!("duplicate identifier in import: {key}"),
                        existing: None,
                    });
                }
                Err(e) => return Err(e.into()),
            }
            self.storage.durable().await?;
            n += ids.len();
        }
        Ok(n)
    }

    pub async fn get(&self, ctx: &Ctx, id: &str) -> Result<Patient, PatientError> {
        let p = self.get_recorded(ctx, id).await;
        self.storage.durable().await?;
        p
    }

    /// [`Patients::get`] with its audit entry recorded but not yet on disk: for a plugin
    /// sandbox, which makes the trail durable before anything leaves it (its response, an
    /// outbound request), so the read is answered no sooner than with `get`. A refusal is
    /// durable at once.
    pub async fn get_recorded(&self, ctx: &Ctx, id: &str) -> Result<Patient, PatientError> {
        let p = self.get_unrecorded(ctx, id).await?;
        self.audit
            .record(self.event(ctx, "patient.read", "success", Some(id)))?;
        Ok(p)
    }

    /// [`Patients::get_recorded`] without the entry for a successful read, which the caller
    /// records: a plugin call names every patient it read in one entry (`plugins::sandbox`'s
    /// `Reads`), written before anything leaves the sandbox. A refusal (durable at once) and a
    /// missing record are recorded here.
    pub async fn get_unrecorded(&self, ctx: &Ctx, id: &str) -> Result<Patient, PatientError> {
        Ok(decode(&self.stored_for_read(ctx, id).await?)?)
    }

    /// The stored bytes of record `id`, once `ctx` may read it: a refusal and a missing record
    /// are recorded here, a successful read is left to the caller.
    async fn stored_for_read(&self, ctx: &Ctx, id: &str) -> Result<Vec<u8>, PatientError> {
        const ACTION: &str = "patient.read";
        self.allow(ctx, Check::new(ACTION, Need::Chart(id)).patient(id))
            .await?;
        match self.storage.get(Tree::Patients, id.as_bytes())? {
            Some(stored) => Ok(stored),
            None => {
                self.audit
                    .record(self.event(ctx, ACTION, "not-found", Some(id)))?;
                Err(PatientError::NotFound(id.into()))
            }
        }
    }

    /// [`Patients::get_unrecorded`], serialised as plugins receive the record. A record read
    /// again unchanged is not decoded and serialised again: a day sheet reads the same forty
    /// records every time it is shown.
    pub async fn get_json_unrecorded(&self, ctx: &Ctx, id: &str) -> Result<String, PatientError> {
        let stored = self.stored_for_read(ctx, id).await?;
        if let Some(cache) = &self.json
            && let Some(hit) = cache.0.get(id)
            && hit.stored == stored
        {
            return Ok(hit.json.clone());
        }
        let json = serde_json::to_string(&decode(&stored)?).expect("patients serialise");
        if let Some(cache) = &self.json {
            let entry = Serialised {
                stored,
                json: json.clone(),
            };
            cache.0.insert(id.to_string(), Arc::new(entry));
        }
        Ok(json)
    }

    /// Replace a patient record. `expected_version` must be the version the caller read.
    pub async fn update(
        &self,
        ctx: &Ctx,
        id: &str,
        p: Patient,
        expected_version: u64,
    ) -> Result<Patient, PatientError> {
        let need = Need::Permission(Permission::PatientsWrite);
        self.update_as(ctx, id, p, expected_version, need).await
    }

    /// Change only the contact details of a record — its phones and emails (`telecom`) and
    /// its addresses — keeping everything else as stored. Allowed to those who may change
    /// records (`patients.write`) and to a patient for their own record
    /// (`patients.contact-own`). The same validation, concurrency check and audit entry
    /// (`patient.update`, naming the person) as [`Patients::update`], so the record's history
    /// shows who made the change.
    pub async fn update_contact(
        &self,
        ctx: &Ctx,
        id: &str,
        expected_version: u64,
        telecom: Vec<fhir::ContactPoint>,
        address: Vec<fhir::Address>,
    ) -> Result<Patient, PatientError> {
        // Ask the gate first, so that a refusal never reveals whether the record exists.
        self.allow(
            ctx,
            Check::new("patient.update", Need::Contact(id)).patient(id),
        )
        .await?;
        let mut p = match self.load(id)? {
            Some((p, _)) => p,
            None => Patient {
                resource_type: "Patient".into(),
                ..Default::default()
            },
        };
        p.telecom = telecom;
        p.address = address;
        self.update_as(ctx, id, p, expected_version, Need::Contact(id))
            .await
    }

    async fn update_as(
        &self,
        ctx: &Ctx,
        id: &str,
        mut p: Patient,
        expected_version: u64,
        need: Need<'_>,
    ) -> Result<Patient, PatientError> {
        const ACTION: &str = "patient.update";
        self.allow(ctx, Check::new(ACTION, need).patient(id))
            .await?;
        let Some((old, old_bytes)) = self.load(id)? else {
            self.audited(ctx, ACTION, "not-found", Some(id)).await?;
            return Err(PatientError::NotFound(id.into()));
        };
        if p.id.as_deref().is_some_and(|pid| pid != id) {
            self.audited(ctx, ACTION, "invalid", Some(id)).await?;
            return Err(PatientError::Invalid(vec![FieldError {
                field: "id".into(),
                message: format!("the body's id does not match the URL ({id})"),
            }]));
        }
        validate::normalise(&mut p);
        let mut errs = validate::validate(&p, today());
        // The chart number is Osler's: it cannot be changed, and is kept if the client left
        // it out.
        let old_chart = old
            .identifier
            .iter()
            .find(|i| i.system.as_deref() == Some(fhir::CHART_SYSTEM));
        match p
            .identifier
            .iter()
            .position(|i| i.system.as_deref() == Some(fhir::CHART_SYSTEM))
        {
            Some(i) if old_chart.and_then(|c| c.value.as_deref()) != p.chart_number() => {
                errs.insert(
                    0,
                    FieldError {
                        field: format!("identifier[{i}].value"),
                        message: match old_chart.and_then(|c| c.value.as_deref()) {
                            Some(c) => format!(
                                "the chart number is {c} and cannot be changed (it is assigned \
                                 by Osler)"
                            ),
                            None => "chart numbers are assigned by Osler; leave this identifier \
                                     out"
                            .into(),
                        },
                    },
                );
            }
            Some(_) => {}
            None => {
                if let Some(c) = old_chart {
                    p.identifier.push(c.clone());
                }
            }
        }
        if !errs.is_empty() {
            self.audited(ctx, ACTION, "invalid", Some(id)).await?;
            return Err(PatientError::Invalid(errs));
        }
        let current = version_of(&old);
        if expected_version != current {
            self.audited(ctx, ACTION, "conflict", Some(id)).await?;
            return Err(PatientError::Stale { current });
        }
        p.resource_type = "Patient".into();
        p.id = Some(id.into());
        p.meta = Some(fhir::Meta {
            version_id: Some((current + 1).to_string()),
            last_updated: Some(now_rfc3339()),
        });
        if p.active.is_none() {
            p.active = Some(true);
        }
        let mut b = Batch::new();
        b.expect(Tree::Patients, id.as_bytes(), Some(old_bytes));
        let old_ids: Vec<Vec<u8>> = identifier_keys(&old).into_iter().map(|x| x.0).collect();
        for (k, ..) in identifier_keys(&p) {
            if !old_ids.contains(&k) {
                b.expect(Tree::PatientIdentifiers, k, None);
            }
        }
        reindex_ops(&old, &p, id, &mut b);
        b.put(
            Tree::Patients,
            id.as_bytes(),
            serde_json::to_vec(&p).expect("serialise"),
        );
        let author = ChangedBy {
            user: ctx.user.clone(),
            role: ctx.role_string(),
            version: current + 1,
        };
        b.put(
            Tree::Portal,
            changed_by_key(id),
            serde_json::to_vec(&author).expect("serialise"),
        );
        match self
            .audit
            .record_with(&b, self.event(ctx, ACTION, "success", Some(id)))
        {
            Ok(_) => {}
            Err(AuditError::Storage(StorageError::Conflict { tree, .. })) => {
                self.audited(ctx, ACTION, "conflict", Some(id)).await?;
                if tree == Tree::Patients.name() {
                    let now = self.load(id)?.map(|(p, _)| version_of(&p)).unwrap_or(0);
                    return Err(PatientError::Stale { current: now });
                }
                return Err(self.duplicate(&p, Some(id))?.1);
            }
            Err(e) => return Err(e.into()),
        }
        self.storage.durable().await?;
        Ok(p)
    }

    /// Who made the record's latest change through [`Patients::update`] (or
    /// [`Patients::update_contact`]), if any since this was recorded: for the chart's "changed
    /// by". Not an access to the record, so not audited.
    pub fn changed_by(&self, id: &str) -> Result<Option<ChangedBy>, PatientError> {
        Ok(self
            .storage
            .get(Tree::Portal, &changed_by_key(id))?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// The id of the chart holding identifier `system|value`, from the identifier index alone
    /// (no record is read): for finding a chart's entries in the audit trail by its number.
    pub fn id_by_identifier(
        &self,
        system: &str,
        value: &str,
    ) -> Result<Option<String>, PatientError> {
        Ok(self
            .storage
            .get(
                Tree::PatientIdentifiers,
                &key(&[value.as_bytes(), system.as_bytes()]),
            )?
            .map(|id| String::from_utf8_lossy(&id).into_owned()))
    }

    /// [`Patients::update`] for a form that shows only some of the record: `f` changes the
    /// stored record and the result replaces it, so the parts the form does not show are kept.
    /// The same permission, validation, concurrency check (`expected_version` is the version
    /// the person read) and audit entry as `update`; `f`'s own result comes back either way.
    pub async fn modify<T>(
        &self,
        ctx: &Ctx,
        id: &str,
        expected_version: u64,
        f: impl FnOnce(&mut Patient) -> T,
    ) -> (Result<Patient, PatientError>, T) {
        let mut p = match self.load(id) {
            Ok(Some((p, _))) => p,
            // `update` refuses (and audits) a missing record; `f` still runs so its result is
            // there to return.
            Ok(None) => Patient {
                resource_type: "Patient".into(),
                ..Default::default()
            },
            Err(e) => {
                let t = f(&mut Patient::default());
                return (Err(e), t);
            }
        };
        let t = f(&mut p);
        (self.update(ctx, id, p, expected_version).await, t)
    }

    pub async fn search(&self, ctx: &Ctx, q: &SearchQuery) -> Result<SearchPage, PatientError> {
        const ACTION: &str = "patient.search";
        self.allow(
            ctx,
            Check::new(ACTION, Need::Permission(Permission::PatientsRead)),
        )
        .await?;
        // Index scans and record decoding are CPU and disk work: off the async workers, so
        // that a slow search never holds up other requests (or `/healthz`).
        let (this, query) = (self.clone(), q.clone());
        let page = tokio::task::spawn_blocking(move || this.find(&query))
            .await
            .map_err(|e| StorageError::Io(format!("the search stopped: {e}")))??;
        let mut ev = ctx.event(ACTION, "success");
        ev.patients = page.patients.iter().filter_map(|p| p.id.clone()).collect();
        ev.resource = Some("Patient".into());
        self.audit.record(ev)?;
        self.storage.durable().await?;
        Ok(page)
    }

    /// The search itself, from indexes only (no audit: callers audit). Blocking: async callers
    /// run it on a blocking thread, as [`Patients::search`] does.
    ///
    /// Its cost is bounded: each patient met in the index is decoded and matched once per
    /// search, however many of its index rows the scan passes (a record holds at most
    /// [`validate::MAX_NAME_WORDS`] name words), and the scan stops at the search's time
    /// budget, answering the matches found so far with a cursor to continue from.
    pub fn find(&self, q: &SearchQuery) -> Result<SearchPage, PatientError> {
        let started = std::time::Instant::now();
        let count = if q.count == 0 {
            DEFAULT_COUNT
        } else {
            q.count.min(MAX_COUNT)
        };
        let name_words = q.name.as_deref().map(words).unwrap_or_default();
        if q.name.is_some() && name_words.is_empty() {
            return Err(PatientError::BadQuery(
                "name must contain at least one letter or digit".into(),
            ));
        }
        let birthdate = match q.birthdate.as_deref() {
            None => None,
            Some(d) => {
                let d = d.strip_prefix("eq").unwrap_or(d);
                if validate::parse_date(d).is_none() {
                    return Err(PatientError::BadQuery(
                        "birthdate must be a date written YYYY-MM-DD".into(),
                    ));
                }
                Some(d.to_string())
            }
        };
        let identifier = match q.identifier.as_deref() {
            None => None,
            Some(s) => {
                let (system, value) = match s.split_once('|') {
                    Some((sys, v)) => (Some(sys).filter(|s| !s.is_empty()), v),
                    None => (None, s),
                };
                let value = validate::identifier_key_value(value);
                if value.is_empty()
                    || value.contains('\0')
                    || system.is_some_and(|s| s.contains('\0'))
                {
                    return Err(PatientError::BadQuery(
                        "identifier must be system|value or a value".into(),
                    ));
                }
                Some((system.map(str::to_string), value))
            }
        };

        // Drive from the most selective index. The cursor is the last index key returned.
        let driver_word = name_words.iter().max_by_key(|w| w.len()).cloned();
        let (tree, prefix): (Tree, Vec<u8>) = if let Some((system, value)) = &identifier {
            let mut k = value.as_bytes().to_vec();
            k.push(0);
            if let Some(s) = system {
                k.extend_from_slice(s.as_bytes());
            }
            (Tree::PatientIdentifiers, k)
        } else if let Some(d) = &birthdate {
            (Tree::PatientBirthDates, key(&[d.as_bytes(), b""]))
        } else if let Some(w) = &driver_word {
            (Tree::PatientNames, w.as_bytes().to_vec())
        } else {
            (Tree::Patients, vec![])
        };
        let mut resume: Option<Vec<u8>> = match &q.cursor {
            None => None,
            Some(c) => {
                use base64::Engine;
                let k = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .filter(|k| k.starts_with(&prefix))
                    .ok_or_else(|| {
                        PatientError::BadQuery(
                            "cursor does not belong to this search; start the search again".into(),
                        )
                    })?;
                Some(k)
            }
        };
        // Each patient met in this search is decided once, at its first index row: listed
        // there, or not at all (its later rows are skipped without reading the record).
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut out = Vec::new();
        let mut next = None;
        let batch = count.max(32);
        'scan: loop {
            let rows = self.storage.scan(tree, &prefix, resume.as_deref(), batch)?;
            let exhausted = rows.len() < batch;
            for (k, v) in rows {
                resume = Some(k.clone());
                // `system|value` names one system exactly, not every system it is a prefix of.
                if tree == Tree::PatientIdentifiers
                    && identifier.as_ref().is_some_and(|(s, _)| s.is_some())
                    && k != prefix
                {
                    continue;
                }
                let id = match tree {
                    Tree::Patients => String::from_utf8_lossy(&k).into_owned(),
                    Tree::PatientIdentifiers => String::from_utf8_lossy(&v).into_owned(),
                    _ => {
                        let pos = k.iter().rposition(|b| *b == 0).unwrap_or(0);
                        String::from_utf8_lossy(&k[pos + 1..]).into_owned()
                    }
                };
                // A patient's later rows in this scan: already listed, or not a match.
                if !seen.insert(id.clone()) {
                    continue;
                }
                let Some((p, _)) = self.load(&id)? else {
                    continue;
                };
                let tokens = name_tokens(&p);
                let matches = name_words
                    .iter()
                    .all(|w| tokens.iter().any(|t| t.starts_with(w.as_str())))
                    && (birthdate.is_none() || p.birth_date == birthdate);
                // Name index: a patient with several matching names is listed once, under the
                // first of them (the first met when a search starts from the beginning).
                let listed_under = match (&driver_word, tree) {
                    (Some(w), Tree::PatientNames) => tokens
                        .iter()
                        .find(|t| t.starts_with(w.as_str()))
                        .map(|t| t.as_bytes().to_vec()),
                    _ => None,
                };
                let here = &k[..k.iter().position(|b| *b == 0).unwrap_or(k.len())];
                let listed = matches
                    && (tree != Tree::PatientNames || listed_under.as_deref() == Some(here));
                if !listed {
                    continue;
                }
                out.push(p);
                if out.len() == count {
                    next = Some(k);
                    break 'scan;
                }
                if started.elapsed() >= self.search_budget {
                    next = Some(k);
                    break 'scan;
                }
            }
            if exhausted {
                break;
            }
            if started.elapsed() >= self.search_budget {
                // Out of time: answer what was found, with a cursor after the rows read.
                next = resume;
                break;
            }
        }
        let next = next.map(|k| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k)
        });
        Ok(SearchPage {
            patients: out,
            next,
        })
    }

    pub fn count(&self) -> usize {
        self.storage.backend().len(Tree::Patients)
    }
}

/// Rebuild the identifier index from the records, keyed by the compared form of each value
/// ([`validate::identifier_key_value`]): the upgrade from schema version 1, whose keys held the
/// value as typed. Returns the charts whose identifiers now coincide with an earlier chart's,
/// as (chart kept in the index, chart not indexed for that identifier, system); Osler keeps
/// serving both. Not durable until the caller makes it so; running it again starts over.
pub fn rebuild_identifier_index(
    storage: &Storage,
) -> Result<Vec<(String, String, String)>, StorageError> {
    const CHUNK: usize = 2000;
    loop {
        let rows = storage.scan(Tree::PatientIdentifiers, b"", None, CHUNK)?;
        if rows.is_empty() {
            break;
        }
        let mut b = Batch::new();
        for (k, _) in rows {
            b.delete(Tree::PatientIdentifiers, k);
        }
        storage.apply(&b)?;
    }
    let mut collisions = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let rows = storage.scan(Tree::Patients, b"", after.as_deref(), CHUNK)?;
        let Some((last, _)) = rows.last() else { break };
        after = Some(last.clone());
        let mut b = Batch::new();
        let mut in_batch = std::collections::HashMap::new();
        for (k, v) in &rows {
            let id = String::from_utf8_lossy(k).into_owned();
            let p: Patient = serde_json::from_slice(v)
                .map_err(|e| StorageError::Io(format!("unreadable patient record: {e}")))?;
            for (ik, system, _) in identifier_keys(&p) {
                let holder = match in_batch.get(&ik) {
                    Some(h) => Some(String::clone(h)),
                    None => storage
                        .get(Tree::PatientIdentifiers, &ik)?
                        .map(|h| String::from_utf8_lossy(&h).into_owned()),
                };
                match holder {
                    Some(h) if h != id => collisions.push((h, id.clone(), system)),
                    Some(_) => {}
                    None => {
                        in_batch.insert(ik.clone(), id.clone());
                        b.put(Tree::PatientIdentifiers, ik, id.as_bytes().to_vec());
                    }
                }
            }
        }
        storage.apply(&b)?;
    }
    Ok(collisions)
}

/// The record's version (`meta.versionId`).
pub fn version_of(p: &Patient) -> u64 {
    p.meta
        .as_ref()
        .and_then(|m| m.version_id.as_deref())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_accents_case_and_punctuation() {
        assert_eq!(fold("José"), "jose");
        assert_eq!(fold("O'Brien"), "obrien");
        assert_eq!(words("Nguyễn-Smith"), ["nguyen", "smith"]);
        assert_eq!(fold("Søndergaard"), "sondergaard");
        assert_eq!(fold("Łukasz Straße"), "lukaszstrasse");
    }
}
