//! `patient-data`: what a plugin keeps about a patient (API 0.2).
//!
//! Keys live under `<plugin id>\0<patient id>\0`, both from the host (the plugin id from the
//! sandbox, the patient checked to exist), so a plugin cannot name another plugin's data or
//! file one patient's data under another. Every call goes through the gate — the plugin's
//! `patient-data` grant, and the right of the person the call serves to that patient
//! (reading: `patients.read`, or `patients.read-own` for a patient's own record; writing:
//! `patients.write`) — and is audited with the patient like a chart read: a read's entry is
//! made durable before anything leaves the sandbox, a write's travels in the write itself.
//! Writes count towards the plugin's storage quota. A batch may publish events that commit
//! with its writes (the outbox), as a `kv` batch may.

use super::kv::{
    MAX_OPS, MAX_PAGE, MAX_PAGE_BYTES, check_key, page, storage_failure, write_failure,
};
use super::{Cx, Sandbox, trail_failure};
use crate::access::{Capability, Check, Need, Permission};
use crate::plugins::Plugins;
use crate::plugins::latest::Error;
use crate::plugins::v0_2::osler::plugin::patient_data as pd;
use crate::storage::{Batch, Tree};

type R<T> = wasmtime::Result<Result<T, Error>>;

/// What `patient-data` sees: the call, and the runtime's storage writer and audit trail.
pub struct PatientDataView<'a> {
    cx: Cx<'a>,
    host: &'a Plugins,
}

impl Sandbox {
    pub(crate) fn patient_data_view(&mut self) -> PatientDataView<'_> {
        PatientDataView {
            cx: self.cx(),
            host: self.host(),
        }
    }
}

enum Access {
    Read,
    Write,
}

impl PatientDataView<'_> {
    /// `<plugin>\0<patient>\0`
    fn prefix(&self, patient: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.cx.id().len() + patient.len() + 2);
        k.extend_from_slice(self.cx.id().as_bytes());
        k.push(0);
        k.extend_from_slice(patient.as_bytes());
        k.push(0);
        k
    }

    fn key(&self, patient: &str, key: &str) -> Result<Vec<u8>, Error> {
        check_key(key)?;
        let mut k = self.prefix(patient);
        k.extend_from_slice(key.as_bytes());
        Ok(k)
    }

    /// The gate (grant, then the person's right to this patient), then the patient's
    /// existence.
    async fn allow(&self, patient: &str, access: Access) -> Result<(), Error> {
        if patient.is_empty() || patient.len() > 64 || patient.contains('\0') {
            return Err(Error::Invalid("not a patient id".into()));
        }
        let (action, need) = match access {
            Access::Read => ("patient-data.read", Need::Chart(patient)),
            Access::Write => (
                "patient-data.write",
                Need::Permission(Permission::PatientsWrite),
            ),
        };
        let check = Check::capability(action, Capability::PatientData, need).patient(patient);
        self.cx.allow(check).await?;
        let storage = &self.host.services().storage;
        if storage
            .get(Tree::Patients, patient.as_bytes())
            .map_err(storage_failure)?
            .is_none()
        {
            return Err(Error::NotFound(format!("no patient with id {patient}")));
        }
        Ok(())
    }

    async fn write(&self, patient: &str, b: Batch, detail: String) -> Result<(), Error> {
        self.cx.reads_durable().await.map_err(trail_failure)?;
        let mut ev = self.cx.ctx().event("patient-data.write", "success");
        ev.patient = Some(patient.into());
        ev.resource = Some(format!("Patient/{patient}"));
        ev.detail = Some(detail);
        let skip = self.prefix(patient).len();
        self.host
            .write_storage(self.cx.id(), b, Some(ev))
            .await
            .map_err(|e| write_failure(e, skip))
    }
}

impl pd::Host for PatientDataView<'_> {
    async fn get(&mut self, patient: String, key: String) -> R<Option<Vec<u8>>> {
        Ok(async {
            let k = self.key(&patient, &key)?;
            self.allow(&patient, Access::Read).await?;
            let v = self
                .host
                .services()
                .storage
                .get(Tree::PatientData, &k)
                .map_err(storage_failure)?;
            self.cx.data_read(&patient, 1);
            Ok(v)
        }
        .await)
    }

    async fn put(&mut self, patient: String, key: String, value: Vec<u8>) -> R<()> {
        let r = pd::Host::batch(self, patient, vec![pd::Op::Put(pd::Entry { key, value })]);
        Ok(r.await?.map(|_| ()))
    }

    async fn delete(&mut self, patient: String, key: String) -> R<()> {
        let r = pd::Host::batch(self, patient, vec![pd::Op::Delete(key)]);
        Ok(r.await?.map(|_| ()))
    }

    async fn scan(
        &mut self,
        patient: String,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> R<pd::Page> {
        Ok(async {
            if !(1..=MAX_PAGE).contains(&limit) {
                return Err(Error::Invalid(format!("limit is 1 to {MAX_PAGE}")));
            }
            if prefix.len() > super::kv::MAX_KEY {
                return Err(Error::Invalid("the prefix is longer than a key".into()));
            }
            self.allow(&patient, Access::Read).await?;
            let base = self.prefix(&patient);
            let mut p = base.clone();
            p.extend_from_slice(prefix.as_bytes());
            let after = start_after.as_deref().map(|a| {
                let mut k = base.clone();
                k.extend_from_slice(a.as_bytes());
                k
            });
            let found = self
                .host
                .services()
                .storage
                .scan_bytes(
                    Tree::PatientData,
                    &p,
                    after.as_deref(),
                    limit as usize,
                    MAX_PAGE_BYTES,
                )
                .map_err(storage_failure)?;
            let (entries, next) = page(found, base.len());
            self.cx.data_read(&patient, entries.len() as u64);
            Ok(pd::Page {
                entries: entries
                    .into_iter()
                    .map(|(key, value)| pd::Entry { key, value })
                    .collect(),
                next,
            })
        }
        .await)
    }

    async fn batch(&mut self, patient: String, ops: Vec<pd::Op>) -> R<Vec<String>> {
        Ok(async {
            if ops.is_empty() || ops.len() > MAX_OPS {
                return Err(Error::Invalid(format!(
                    "a batch has 1 to {MAX_OPS} operations"
                )));
            }
            let n = ops.len();
            let mut b = Batch::new();
            let mut total = 0;
            let mut events = Vec::new();
            for op in ops {
                match op {
                    pd::Op::Put(e) => {
                        total += e.value.len();
                        b.put(Tree::PatientData, self.key(&patient, &e.key)?, e.value);
                    }
                    pd::Op::Delete(k) => b.delete(Tree::PatientData, self.key(&patient, &k)?),
                    pd::Op::Expect(x) => {
                        total += x.value.as_ref().map_or(0, Vec::len);
                        b.expect(Tree::PatientData, self.key(&patient, &x.key)?, x.value);
                    }
                    pd::Op::Publish(e) => events.push(e),
                }
            }
            self.cx.check_size("the batch's values", total)?;
            self.allow(&patient, Access::Write).await?;
            // Events announcing the write commit with it (the outbox), as in a `kv` batch.
            let mut ids = Vec::new();
            if !events.is_empty() {
                let check =
                    Check::capability("plugin.event", Capability::EventsPublish, Need::Nothing);
                self.cx.allow(check).await?;
                for e in &events {
                    ids.push(self.host.stage_event(
                        self.cx.call,
                        self.cx.tally,
                        &e.topic,
                        &e.payload,
                        &mut b,
                    )?);
                }
            }
            self.write(&patient, b, format!("{n} operation(s)")).await?;
            if !events.is_empty() {
                self.host.events_committed();
            }
            Ok(ids)
        }
        .await)
    }
}
