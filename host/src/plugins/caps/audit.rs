//! `audit`: a plugin records a clinical event in the host's audit trail. Free: recording is
//! never a risk. The action is prefixed with the plugin id, so a plugin cannot write an entry
//! that looks like the host's own (`patient.read`).

use super::{Cx, Sandbox};
use crate::audit::Audit;
use crate::plugins::latest::Error;
use crate::plugins::v0_1::osler::plugin::audit;

/// What `audit` sees: the call and the trail.
pub struct AuditView<'a> {
    cx: Cx<'a>,
    audit: &'a Audit,
}

impl Sandbox {
    pub(super) fn audit_view(&mut self) -> AuditView<'_> {
        AuditView {
            cx: self.cx(),
            audit: &self.services().audit,
        }
    }
}

impl audit::Host for AuditView<'_> {
    async fn record(
        &mut self,
        action: String,
        patient: Option<String>,
        detail: Option<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let ok = (1..=64).contains(&action.len())
            && action
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !ok {
            return Ok(Err(Error::Invalid(
                "an action is 1 to 64 letters, digits, '.', '-' or '_'".into(),
            )));
        }
        if detail.as_ref().is_some_and(|d| d.len() > 4096) {
            return Ok(Err(Error::TooLarge("detail is at most 4096 bytes".into())));
        }
        if patient.as_ref().is_some_and(|p| p.len() > 64) {
            return Ok(Err(Error::Invalid("not a patient id".into())));
        }
        let id = self.cx.id();
        let action = if action.starts_with(&format!("{id}.")) {
            action
        } else {
            format!("{id}.{action}")
        };
        let mut ev = self.cx.ctx().event(&action, "success");
        ev.resource = patient.as_ref().map(|p| format!("Patient/{p}"));
        ev.patient = patient;
        ev.detail = detail;
        Ok(self
            .audit
            .record_durable(ev)
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::error!(error = %e, "cannot record a plugin's audit event");
                Error::Internal("the audit trail is unavailable".into())
            }))
    }
}
