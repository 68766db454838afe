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
        as_of(m.as_of, clock::now().epoch_millis)
    )
}

/// The date (UTC) of `at_ms` and how long before `now_ms` it was.
pub fn as_of(at_ms: i64, now_ms: i64) -> String {
    let (y, mo, d) = civil(at_ms.div_euclid(86_400_000));
    let mins = (now_ms - at_ms).max(0) / 60_000;
    let age = match mins {
        0 => "just now".to_string(),
        1 => "1 minute ago".to_string(),
        m if m < 120 => format!("{m} minutes ago"),
        m if m < 48 * 60 => format!("{} hours ago", m / 60),
        m => format!("{} days ago", m / (24 * 60)),
    };
    format!("{y:04}-{mo:02}-{d:02}, {age}")
}

/// The proleptic Gregorian date of `days` since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    // Shift to a calendar whose years start on 1 March (leap day last), in 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ages() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(59), (1970, 3, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(-1), (1969, 12, 31));
        // 2026-12-02T12:00:00Z
        let t = 1_796_212_800_000;
        assert_eq!(as_of(t, t + 30_000), "2026-12-02, just now");
        assert_eq!(as_of(t, t + 3 * 3_600_000), "2026-12-02, 3 hours ago");
        assert_eq!(as_of(t, t + 50 * 3_600_000), "2026-12-02, 2 days ago");
    }
}
