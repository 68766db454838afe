//! Publishing events to the plugins at this site that subscribe (capability
//! `events.publish`). Subscribers receive them in [`Plugin::on_event`](crate::Plugin::on_event).

use serde::Serialize;

use crate::Error;

/// Publishes `payload` as JSON (at most 64 KiB) under `topic`, which must be
/// `<this plugin's id>.<name>`, e.g. `scheduling.appointment-booked`. Delivery happens after
/// this returns, at most once.
pub fn publish<T: Serialize + ?Sized>(topic: &str, payload: &T) -> Result<(), Error> {
    let json =
        serde_json::to_string(payload).map_err(|e| Error::invalid(format!("payload: {e}")))?;
    crate::bindings::osler::plugin::events::publish(topic, &json)
}
