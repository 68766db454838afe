//! `log`: a plugin's messages, kept per plugin for administrators
//! (`GET /api/v1/admin/plugins/{id}/logs`), never written to the server's log: the host cannot
//! vouch that a plugin's words hold no patient data.

use super::{Cx, Sandbox};
use crate::plugins::v0_1::osler::plugin::log;
use crate::plugins::views::Logs;

/// What `log` sees: the call (for the plugin and site) and the plugins' log lines.
pub struct LogView<'a> {
    cx: Cx<'a>,
    logs: &'a Logs,
}

impl Sandbox {
    pub(super) fn log_view(&mut self) -> LogView<'_> {
        LogView {
            cx: self.cx(),
            logs: self.host().logs_store(),
        }
    }
}

impl log::Host for LogView<'_> {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => "trace",
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        self.logs
            .push(self.cx.id(), &self.cx.call.site, level, &message);
        Ok(())
    }
}
