//! Test fixture (API 0.2): a subscriber to the first-party plugins' events.
//!
//! Each event it receives is kept once (by its id, in one atomic batch with the mark that it
//! was seen), with the person the host says the delivery serves and the chain of plugins it
//! came through. `GET /events` lists them in the order received.

use osler_sdk::context::{self, Principal};
use osler_sdk::{Error, Event, Plugin, Request, Response, Router, kv};
use serde_json::json;

struct Listener;

impl Plugin for Listener {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/events", |_, _| {
                let all: Vec<serde_json::Value> = kv::scan_all("event/")?
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect();
                Ok(Response::json(200, &json!({ "events": all })))
            })
            .handle(&req)
    }

    fn on_event(event: Event) -> Result<(), Error> {
        let seen = format!("seen/{}", event.id);
        if kv::get::<u64>(&seen)?.is_some() {
            return Ok(()); // Delivered again: already kept.
        }
        let n: u64 = kv::get("count")?.unwrap_or(0);
        let served = match context::current() {
            Principal::Person(c) => c.user,
            Principal::Unattended(_) => "unattended".into(),
        };
        let payload: serde_json::Value = serde_json::from_str(&event.payload)
            .map_err(|e| Error::invalid(format!("payload: {e}")))?;
        let kept = json!({
            "id": event.id,
            "topic": event.topic,
            "source": event.source,
            "site": event.site,
            "payload": payload,
            "servedBy": served,
            "via": context::via(),
        });
        kv::Batch::new()
            .expect_absent(&seen)
            .expect_unchanged("count", (n > 0).then_some(&n))
            .put(&seen, &n)
            .put("count", &(n + 1))
            .put(&format!("event/{n:06}"), &kept)
            .commit()
    }
}

osler_sdk::export_plugin!(Listener);
