//! `log`: a plugin's messages, kept per plugin for administrators
//! (`GET /api/v1/admin/plugins/{id}/logs`), never written to the server's log: the host cannot
//! vouch that a plugin's words hold no patient data.

use super::Sandbox;
use crate::plugins::v0_1::osler::plugin::log;

impl log::Host for Sandbox {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => "trace",
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        self.app
            .plugins
            .log_line(self.call.id(), &self.call.site, level, &message);
        Ok(())
    }
}
