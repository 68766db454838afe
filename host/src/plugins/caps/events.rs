//! `events`: publish to the plugins enabled at this site that subscribe. Capability
//! `events.publish`; a plugin publishes only under its own id (`<id>.<name>`). The event is
//! durable before its id is returned; delivery is [`crate::plugins::events`]'.

use super::{Cx, Sandbox, trail_failure};
use crate::access::{Capability, Check, Need};
use crate::plugins::Plugins;
use crate::plugins::latest::Error;
use crate::plugins::v0_2::osler::plugin::events;
use crate::storage::Batch;

/// What `events` sees: the call, and the runtime that delivers events.
pub struct EventsView<'a> {
    cx: Cx<'a>,
    bus: &'a Plugins,
}

impl Sandbox {
    pub(crate) fn events_view(&mut self) -> EventsView<'_> {
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
    ) -> wasmtime::Result<Result<String, Error>> {
        Ok(async {
            crate::plugins::events::check_event(self.cx.id(), &topic, &payload)?;
            let check = Check::capability("plugin.event", Capability::EventsPublish, Need::Nothing);
            self.cx.allow(check).await?;
            let mut b = Batch::new();
            let id = self
                .bus
                .stage_event(self.cx.call, self.cx.tally, &topic, &payload, &mut b)?;
            // The payload may carry what this call read from a chart.
            self.cx.reads_durable().await.map_err(trail_failure)?;
            if !b.ops.is_empty() {
                self.bus
                    .services()
                    .storage
                    .commit(&b)
                    .await
                    .map_err(super::kv::storage_failure)?;
                self.bus.events_committed();
            }
            Ok(id)
        }
        .await)
    }
}
