//! The time, and the site's time zone. No capability needed. (WASI's clocks work too, but
//! only this one knows the site's time zone.)

pub use crate::bindings::osler::plugin::clock::Instant;

/// Now: milliseconds since the epoch, the site's time zone and offset, and the site's local
/// date and time (`YYYY-MM-DDTHH:MM:SS`).
pub fn now() -> Instant {
    crate::bindings::osler::plugin::clock::now()
}

/// How long before `now_ms` the instant `then_ms` was (milliseconds since the epoch), as a
/// person says it: `just now`, `1 minute ago`, `25 minutes ago`, `3 hours ago`, `2 days ago`.
/// A time in the future reads `just now`.
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    let mins = (now_ms - then_ms).max(0) / 60_000;
    match mins {
        0 => "just now".to_string(),
        1 => "1 minute ago".to_string(),
        m if m < 120 => format!("{m} minutes ago"),
        m if m < 48 * 60 => format!("{} hours ago", m / 60),
        m => format!("{} days ago", m / (24 * 60)),
    }
}

#[cfg(test)]
mod tests {
    use super::ago;

    #[test]
    fn ages_read_as_people_say_them() {
        let t = 1_796_212_800_000;
        assert_eq!(ago(t, t + 30_000), "just now");
        assert_eq!(ago(t + 5_000, t), "just now");
        assert_eq!(ago(t, t + 60_000), "1 minute ago");
        assert_eq!(ago(t, t + 3 * 60_000), "3 minutes ago");
        assert_eq!(ago(t, t + 3 * 3_600_000), "3 hours ago");
        assert_eq!(ago(t, t + 50 * 3_600_000), "2 days ago");
    }
}
