//! The active medications other facilities share for the patient, through CAISI's
//! `osler:caisi/remote` (an optional import): checked with the patient's own on every
//! prescribe, named with the facility and how old the information is.
//!
//! `unavailable` means exactly that no enabled plugin provides the interface at the site
//! (CAISI is not enabled there; the plugin API's meaning of the error): nothing is said. Any
//! other error — `internal` when CAISI's integrator cannot be reached, a refusal — is said to
//! the prescriber, never taken for "none shared".

use osler_sdk::{Error, clock};

use crate::bindings::osler::caisi::remote;

/// What other facilities share for one patient, as far as could be learnt.
#[derive(Clone, Debug, Default)]
pub enum Shared {
    /// No plugin provides the interface at this site: nothing to say.
    #[default]
    NotEnabled,
    /// The provider failed; the message says why.
    Failed(String),
    Medications(Vec<remote::RemoteMedication>),
}

/// The medications shared for `patient`.
pub fn fetch(patient: &str) -> Shared {
    match remote::active_medications(patient) {
        Ok(list) => Shared::Medications(list),
        Err(Error::Unavailable(_)) => Shared::NotEnabled,
        Err(e) => Shared::Failed(e.to_string()),
    }
}

/// The notice when shared medications could not be checked.
pub fn failure_notice(message: &str) -> String {
    format!("medications shared by other facilities could not be checked: {message}")
}

/// "Warfarin (shared by Harbour Street Shelter Health, as of 2026-12-02, 3 hours ago)".
pub fn label(m: &remote::RemoteMedication) -> String {
    format!(
        "{} (shared by {}, as of {})",
        m.drug,
        m.facility,
        as_of(m.as_of, &clock::now())
    )
}

/// The site's local date of `at_ms` and how long before `now` it was.
pub fn as_of(at_ms: i64, now: &clock::Instant) -> String {
    let offset = time::UtcOffset::from_whole_seconds(now.utc_offset_minutes * 60)
        .unwrap_or(time::UtcOffset::UTC);
    let date = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .map(|t| t.to_offset(offset).date().to_string())
        .unwrap_or_default();
    format!("{date}, {}", clock::ago(at_ms, now.epoch_millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_is_the_sites_and_the_age_is_spoken() {
        let at = |epoch_millis: i64, utc_offset_minutes: i32| clock::Instant {
            epoch_millis,
            timezone: "America/Toronto".into(),
            utc_offset_minutes,
            local: String::new(),
        };
        // 2026-12-02T03:00:00Z is still 1 December in Toronto.
        let t = 1_796_180_400_000;
        assert_eq!(as_of(t, &at(t + 30_000, -300)), "2026-12-01, just now");
        assert_eq!(
            as_of(t, &at(t + 3 * 3_600_000, 0)),
            "2026-12-02, 3 hours ago"
        );
    }
}
