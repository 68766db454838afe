//! The clinic's staff at this site (capability `directory`). Never passwords or patient
//! accounts.

use crate::Error;
pub use crate::bindings::osler::plugin::directory::Person;

/// Active staff who work at the current site.
pub fn staff() -> Result<Vec<Person>, Error> {
    crate::bindings::osler::plugin::directory::staff()
}

/// One staff member of this site by user name (WIT `directory.lookup`).
pub fn person(user: &str) -> Result<Person, Error> {
    crate::bindings::osler::plugin::directory::lookup(user)
}
