//! Clinical events in Osler's audit trail, e.g. "prescription overridden". No capability
//! needed. The entry names the signed-in user, the site and this plugin.

use crate::Error;

/// Records `action` — a short code like `prescription.override` (letters, digits, `.`, `-`,
/// `_`) — with the `patient` id when it concerns one, and an optional `detail`.
pub fn record(action: &str, patient: Option<&str>, detail: Option<&str>) -> Result<(), Error> {
    crate::bindings::osler::plugin::audit::record(action, patient, detail)
}
