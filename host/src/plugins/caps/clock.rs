//! `clock`: the time, in the clinic's time zone (`timezone` in `osler.toml`).

use super::Sandbox;
use crate::plugins::v0_1::osler::plugin::clock;

impl clock::Host for Sandbox {
    async fn now(&mut self) -> wasmtime::Result<clock::Instant> {
        let name = self.app.config.timezone.clone();
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
