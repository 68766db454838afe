//! `events`: publish to the plugins enabled at this site that subscribe. Capability
//! `events.publish`; a plugin publishes only under its own id (`<id>.<name>`).

use super::Sandbox;
use crate::plugins::manifest::Capability;
use crate::plugins::v0_1::Error;
use crate::plugins::v0_1::osler::plugin::events;

const MAX_PAYLOAD: usize = 64 << 10;

impl events::Host for Sandbox {
    async fn publish(
        &mut self,
        topic: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        Ok(async {
            let id = self.call.id().to_string();
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
            self.allow(Capability::EventsPublish, None, "plugin.event")
                .await?;
            self.app
                .plugins
                .publish(&self.app, &self.call.site, &id, topic, payload);
            Ok(())
        }
        .await)
    }
}
