//! Test fixture: a plugin that imports another plugin's interface, `osler:fixtures/echo@0.1.0`.
//!
//! Its world (`wit/world.wit`) includes `osler:plugin/plugin@0.1.0` and imports `echo`, whose
//! WIT it carries in `wit/deps/osler-fixtures/`. `osler_sdk::generate!` maps every
//! `osler:plugin` interface onto the SDK (compare the long form in `echo-provider`). When no
//! provider is enabled at the site, every call to `echo` returns `unavailable`, answered here
//! as 503; routes that do not call it work regardless.

use osler_sdk::{Error, Params, Plugin, Request, Response, Router};
use serde_json::json;

mod bindings {
    osler_sdk::generate!({
        path: ["../../../wit/v0.1.0", "wit"],
        world: "osler:echo-consumer/echo-consumer",
    });
}

use bindings::osler::fixtures::echo;

struct EchoConsumer;

impl Plugin for EchoConsumer {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/ok", |_, _| {
                Ok(Response::json(200, &json!({ "ok": true })))
            })
            .get("/echo", echo_text)
            .get("/patient/{id}", read_patient)
            .get("/patient/{id}/read-then-ask", read_then_ask)
            .post("/ping", |req, _| {
                let text = req.query_param("text").unwrap_or_default();
                osler_sdk::events::publish("echo-consumer.pinged", &json!({ "text": text }))?;
                Ok(Response::json(202, &json!({ "published": true })))
            })
            .handle(&req)
    }
}

osler_sdk::export_plugin!(EchoConsumer with_bindings bindings);

/// `GET /echo?text=T` → `{"echo": T}`, through the provider.
fn echo_text(req: &Request, _: &Params) -> Result<Response, Error> {
    let text = req.query_param("text").unwrap_or_default();
    Ok(Response::json(200, &json!({ "echo": echo::echo(&text)? })))
}

/// `GET /patient/{id}` → the provider's `read-patient`, FHIR JSON as it returned it.
fn read_patient(_: &Request, params: &Params) -> Result<Response, Error> {
    let patient = echo::read_patient(&params["id"])?;
    Ok(Response::new(200, "application/json", patient))
}

/// `GET /patient/{id}/read-then-ask`: reads the patient itself (with `patients.read`), then
/// asks the provider for the same record → `{"same": true}` when both agree.
fn read_then_ask(_: &Request, params: &Params) -> Result<Response, Error> {
    let own = osler_sdk::patients::get(&params["id"])?;
    let theirs: serde_json::Value = serde_json::from_str(&echo::read_patient(&params["id"])?)
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(Response::json(
        200,
        &json!({ "same": own["id"] == theirs["id"] }),
    ))
}
