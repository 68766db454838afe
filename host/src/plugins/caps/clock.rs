//! `clock`: the time, in the clinic's time zone (`timezone` in `osler.toml`).

use super::Sandbox;
use crate::plugins::v0_1::osler::plugin::clock;

/// What `clock` sees: the clinic's time zone.
pub struct ClockView<'a> {
    timezone: &'a str,
}

impl Sandbox {
    pub(super) fn clock_view(&mut self) -> ClockView<'_> {
        ClockView {
            timezone: &self.services().timezone,
        }
    }
}

impl clock::Host for ClockView<'_> {
    async fn now(&mut self) -> wasmtime::Result<clock::Instant> {
        let name = self.timezone.to_string();
        let now = jiff::Timestamp::now();
        let tz = jiff::tz::TimeZone::get(&name).unwrap_or(jiff::tz::TimeZone::UTC);
        let zoned = now.to_zoned(tz);
        Ok(clock::Instant {
            epoch_millis: now.as_millisecond(),
            timezone: name,
            utc_offset_minutes: zoned.offset().seconds() / 60,
            local: zoned.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        })
    }
}
