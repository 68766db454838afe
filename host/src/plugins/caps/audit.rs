//! `audit`: a plugin records a clinical event in the host's audit trail. No capability: the
//! action is prefixed with the plugin id, so a plugin cannot write an entry that looks like
//! the host's own (`patient.read`).
//!
//! Bounded, so that the trail cannot be flooded: at most `plugins.audit_per_call` entries per
//! call and `plugins.audit_per_minute` per plugin (`too-large` beyond, nothing written). A
//! patient an entry names must be one the person the call serves may read, or one this call
//! found by a health-card match (a kiosk's check-in): a plugin cannot write into the trail of
//! a patient it has nothing to do with.

use std::sync::atomic::Ordering;

use super::{Cx, Sandbox};
use crate::access::{Check, Gate, Need};
use crate::audit::Audit;
use crate::plugins::PerMinute;
use crate::plugins::latest::Error;
use crate::plugins::v0_2::osler::plugin::audit;

/// What `audit` sees: the call, the trail and the per-minute allowance.
pub struct AuditView<'a> {
    cx: Cx<'a>,
    audit: &'a Audit,
    rate: &'a PerMinute,
}

impl Sandbox {
    pub(crate) fn audit_view(&mut self) -> AuditView<'_> {
        AuditView {
            cx: self.cx(),
            audit: &self.services().audit,
            rate: self.host().audit_rate(),
        }
    }
}

impl AuditView<'_> {
    async fn record(
        &self,
        action: String,
        patient: Option<String>,
        detail: Option<String>,
    ) -> Result<(), Error> {
        let ok = (1..=64).contains(&action.len())
            && action
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !ok {
            return Err(Error::Invalid(
                "an action is 1 to 64 letters, digits, '.', '-' or '_'".into(),
            ));
        }
        if detail.as_ref().is_some_and(|d| d.len() > 4096) {
            return Err(Error::TooLarge("detail is at most 4096 bytes".into()));
        }
        if patient.as_ref().is_some_and(|p| p.len() > 64) {
            return Err(Error::Invalid("not a patient id".into()));
        }
        let id = self.cx.id();
        let limits = self.cx.limits();
        if self.cx.tally.audit_entries.fetch_add(1, Ordering::Relaxed) >= limits.audit_per_call {
            return Err(Error::TooLarge(format!(
                "one call records at most {} audit entries",
                limits.audit_per_call
            )));
        }
        let action = if action.starts_with(&format!("{id}.")) {
            action
        } else {
            format!("{id}.{action}")
        };
        if let Some(p) = &patient {
            let found = self.cx.tally.found.lock().expect("lock").contains(p);
            let readable =
                Gate::refusal(self.cx.ctx(), &Check::new("patient.read", Need::Chart(p))).is_none();
            if !(found || readable) {
                let check = Check::new(&action, Need::Nothing).patient(p);
                let reason = format!(
                    "an audit entry of '{id}' may name only a patient the person it serves may \
                     read, or one this call found"
                );
                return Err(self.cx.deny(check, reason).await);
            }
        }
        if !self.rate.take(id, limits.audit_per_minute) {
            return Err(Error::TooLarge(format!(
                "plugin '{id}' records at most {} audit entries a minute",
                limits.audit_per_minute
            )));
        }
        let mut ev = self.cx.ctx().event(&action, "success");
        ev.resource = patient.as_ref().map(|p| format!("Patient/{p}"));
        ev.patient = patient;
        ev.detail = detail;
        self.audit
            .record_durable(ev)
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::error!(error = %e, "cannot record a plugin's audit event");
                Error::Internal("the audit trail is unavailable".into())
            })
    }
}

impl audit::Host for AuditView<'_> {
    async fn record(
        &mut self,
        action: String,
        patient: Option<String>,
        detail: Option<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        Ok(AuditView::record(self, action, patient, detail).await)
    }
}
