//! Test fixture (API 0.2): durable events.
//!
//! `POST /entries?amount=N` writes an entry and publishes `ledger.entry` in one `kv` batch
//! (the outbox): the event exists if and only if the entry does. The handler is idempotent:
//! it applies an event (adds its amount to the balance) only if its id is not yet recorded,
//! in one atomic batch with recording it, so a redelivery changes nothing.
//!
//! `POST /fail-next?n=K` makes the handler refuse the next K deliveries (so that a test can
//! kill the server while an event waits for its retry). `GET /state`: the balance, the
//! event ids applied, the deliveries seen (including repeats).

use osler_sdk::{Error, Event, Plugin, Request, Response, Router, kv};
use serde_json::json;

struct Ledger;

impl Plugin for Ledger {
    fn handle(req: Request) -> Response {
        Router::new()
            .post("/entries", |req, _| {
                let amount: i64 = req
                    .query_param("amount")
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| Error::invalid("amount: a whole number"))?;
                let n: u64 = kv::get("entries")?.unwrap_or(0);
                let ids = kv::Batch::new()
                    .expect_unchanged("entries", (n > 0).then_some(&n))
                    .put("entries", &(n + 1))
                    .put(&format!("entry/{n:06}"), &amount)
                    .publish("ledger.entry", &json!({ "entry": n, "amount": amount }))
                    .commit_publishing()?;
                Ok(Response::json(201, &json!({ "entry": n, "event": ids[0] })))
            })
            .post("/fail-next", |req, _| {
                let n: u64 = req
                    .query_param("n")
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(1);
                kv::put("fail-next", &n)?;
                Ok(Response::empty(204))
            })
            .get("/state", |_, _| {
                let balance: i64 = kv::get("balance")?.unwrap_or(0);
                let deliveries: u64 = kv::get("deliveries")?.unwrap_or(0);
                let applied: Vec<String> = kv::scan_all::<i64>("applied/")?
                    .into_iter()
                    .map(|(k, _)| k["applied/".len()..].to_string())
                    .collect();
                Ok(Response::json(
                    200,
                    &json!({ "balance": balance, "applied": applied, "deliveries": deliveries }),
                ))
            })
            .handle(&req)
    }

    fn on_event(event: Event) -> Result<(), Error> {
        let deliveries: u64 = kv::get("deliveries")?.unwrap_or(0);
        kv::put("deliveries", &(deliveries + 1))?;
        let fail: u64 = kv::get("fail-next")?.unwrap_or(0);
        if fail > 0 {
            kv::put("fail-next", &(fail - 1))?;
            return Err(Error::unavailable("told to fail this delivery"));
        }
        let seen = format!("applied/{}", event.id);
        if kv::get::<i64>(&seen)?.is_some() {
            return Ok(()); // Delivered again: already applied.
        }
        let payload: serde_json::Value = serde_json::from_str(&event.payload)
            .map_err(|e| Error::invalid(format!("payload: {e}")))?;
        let amount = payload["amount"].as_i64().unwrap_or(0);
        let balance: Option<i64> = kv::get("balance")?;
        kv::Batch::new()
            .expect_absent(&seen)
            .expect_unchanged("balance", balance.as_ref())
            .put(&seen, &amount)
            .put("balance", &(balance.unwrap_or(0) + amount))
            .commit()
    }
}

osler_sdk::export_plugin!(Ledger);
