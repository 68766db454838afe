//! Who the current call serves (no capability needed).
//!
//! The host carries the person behind every request, plugin-to-plugin call and event, and
//! checks every host call against them. An interface function another plugin calls learns
//! here who it is serving — instead of trusting an argument — and so does an event handler.
//!
//! ```no_run
//! use osler_sdk::context::{self, Principal};
//!
//! match context::current() {
//!     Principal::Person(caller) => { /* caller.user, caller.site, caller.roles … */ }
//!     Principal::Unattended(work) => { /* work.site, work.what */ }
//! }
//! ```

use crate::Caller;
use crate::bindings::osler::plugin::context as wit;

pub use wit::{Principal, Unattended};

/// Who this call serves: a person, or unattended work.
pub fn current() -> Principal {
    wit::current()
}

/// The person this call serves, or `None` for unattended work.
pub fn person() -> Option<Caller> {
    match wit::current() {
        Principal::Person(c) => Some(c),
        Principal::Unattended(_) => None,
    }
}

/// The site this call acts at.
pub fn site() -> String {
    match wit::current() {
        Principal::Person(c) => c.site,
        Principal::Unattended(u) => u.site,
    }
}

/// The plugins this call came through, outermost first, not counting this one: empty for a
/// request from a browser; `["prescribing"]` when prescribing called this plugin's
/// interface.
pub fn via() -> Vec<String> {
    wit::via()
}
