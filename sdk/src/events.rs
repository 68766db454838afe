//! Publishing events to the plugins at this site that subscribe (capability
//! `events.publish`). Subscribers receive them in [`Plugin::on_event`](crate::Plugin::on_event).
//!
//! An event is durable once [`publish`] returns its id, and is delivered at least once to each
//! subscriber enabled at the site, in order per topic, acting for the person this call serves.
//! To publish an event together with a write — the event goes out if and only if the write
//! commits — use [`kv::Batch::publish`](crate::kv::Batch::publish).
//!
//! Limits: an event published while handling an event is one level deeper, and the host
//! refuses events nested more than 4 deep; one call publishes at most 16 events; a plugin at
//! most its per-minute allowance. A refusal is [`Error::TooLarge`](crate::Error::TooLarge).

use serde::Serialize;

use crate::Error;

/// Publishes `payload` as JSON (at most 64 KiB) under `topic`, which must be
/// `<this plugin's id>.<name>`, e.g. `scheduling.appointment-booked`. Returns the event's id
/// (the `id` its handlers receive).
pub fn publish<T: Serialize + ?Sized>(topic: &str, payload: &T) -> Result<String, Error> {
    let json =
        serde_json::to_string(payload).map_err(|e| Error::invalid(format!("payload: {e}")))?;
    crate::bindings::osler::plugin::events::publish(topic, &json)
}
