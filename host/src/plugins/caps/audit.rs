//! `audit`: a plugin records a clinical event in the host's audit trail. Free: recording is
//! never a risk. The action is prefixed with the plugin id, so a plugin cannot write an entry
//! that looks like the host's own (`patient.read`).

use super::Sandbox;
use crate::plugins::v0_1::Error;
use crate::plugins::v0_1::osler::plugin::audit;

impl audit::Host for Sandbox {
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
        let id = self.call.id();
        let action = if action.starts_with(&format!("{id}.")) {
            action
        } else {
            format!("{id}.{action}")
        };
        let mut ev = self.call.ctx.event(&action, "success");
        ev.resource = patient.as_ref().map(|p| format!("Patient/{p}"));
        ev.patient = patient;
        ev.detail = detail;
        Ok(self
            .app
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
