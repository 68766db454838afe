//! `events`: publish to the plugins enabled at this site that subscribe. Capability
//! `events.publish`; a plugin publishes only under its own id (`<id>.<name>`).

use super::{Cx, Sandbox};
use crate::access::{Capability, Check, Need};
use crate::plugins::Plugins;
use crate::plugins::latest::Error;
use crate::plugins::v0_1::osler::plugin::events;

const MAX_PAYLOAD: usize = 64 << 10;

/// What `events` sees: the call, and the runtime that delivers events.
pub struct EventsView<'a> {
    cx: Cx<'a>,
    bus: &'a Plugins,
}

impl Sandbox {
    pub(super) fn events_view(&mut self) -> EventsView<'_> {
        EventsView {
            cx: self.cx(),
            bus: self.host(),
        }
    }
}

impl events::Host for EventsView<'_> {
    async fn publish(
        &mut self,
        topic: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        Ok(async {
            let id = self.cx.id().to_string();
            let name = topic.strip_prefix(&format!("{id}.")).unwrap_or("");
            let ok = !name.is_empty()
                && name.len() <= 100
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !ok {
                return Err(Error::Invalid(format!(
                    "a topic is '{id}.<name>' (lowercase letters, digits, '-', '_', '.')"
                )));
            }
            if payload.len() > MAX_PAYLOAD {
                return Err(Error::TooLarge(format!(
                    "an event payload is at most {MAX_PAYLOAD} bytes"
                )));
            }
            if serde_json::from_str::<serde_json::Value>(&payload).is_err() {
                return Err(Error::Invalid("the payload is not JSON".into()));
            }
            let check = Check::capability("plugin.event", Capability::EventsPublish, Need::Nothing);
            self.cx.allow(check).await?;
            self.bus.publish(&self.cx.call.site, &id, topic, payload);
            Ok(())
        }
        .await)
    }
}
