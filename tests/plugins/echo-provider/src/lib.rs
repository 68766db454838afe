//! Test fixture: a plugin that exports its own typed interface, `osler:fixtures/echo@0.1.0`
//! (in `wit/`), besides its HTTP handler.
//!
//! Because it exports an interface of its own, it generates its own bindings, for a world that
//! includes `osler:plugin/plugin@0.1.0` and adds `export echo`. Every `osler:plugin` interface
//! is mapped onto `osler-sdk`'s bindings with `with`, so the types (`Error`, `Request`, ...)
//! are the SDK's and the HTTP side goes through the SDK as in any plugin. This is the long
//! form that `osler_sdk::generate!` abbreviates (see `echo-consumer`).

use osler_sdk::{Error, Event, Plugin, Request, Response, Router, kv, patients};

mod bindings {
    osler_sdk::wit_bindgen::generate!({
        // The osler:plugin WIT first, then this plugin's own, which depends on it.
        path: ["../../../wit/v0.1.0", "wit"],
        world: "osler:fixtures/echo-provider@0.1.0",
        // The SDK's wit-bindgen, so that the plugin never links two versions of it.
        runtime_path: "osler_sdk::wit_bindgen::rt",
        with: {
            // The types, and every host interface, are the SDK's.
            "osler:plugin/types@0.1.0": osler_sdk::types,
            "osler:plugin/log@0.1.0": osler_sdk::bindings::osler::plugin::log,
            "osler:plugin/clock@0.1.0": osler_sdk::bindings::osler::plugin::clock,
            "osler:plugin/config@0.1.0": osler_sdk::bindings::osler::plugin::config,
            "osler:plugin/audit@0.1.0": osler_sdk::bindings::osler::plugin::audit,
            "osler:plugin/patients-read@0.1.0": osler_sdk::bindings::osler::plugin::patients_read,
            "osler:plugin/patients-write@0.1.0": osler_sdk::bindings::osler::plugin::patients_write,
            "osler:plugin/patients-deidentified@0.1.0": osler_sdk::bindings::osler::plugin::patients_deidentified,
            "osler:plugin/patients-match@0.1.0": osler_sdk::bindings::osler::plugin::patients_match,
            "osler:plugin/kv@0.1.0": osler_sdk::bindings::osler::plugin::kv,
            "osler:plugin/events@0.1.0": osler_sdk::bindings::osler::plugin::events,
            "osler:plugin/directory@0.1.0": osler_sdk::bindings::osler::plugin::directory,
            "osler:plugin/outbound-http@0.1.0": osler_sdk::bindings::osler::plugin::outbound_http,
            // The exports are generated here: this crate's `export!` must export them together
            // with `echo`.
            "osler:plugin/handler@0.1.0": generate,
            "osler:plugin/event-handler@0.1.0": generate,
        },
    });
}

struct EchoProvider;

/// The HTTP side, as in any plugin.
impl Plugin for EchoProvider {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/", |_, _| {
                Ok(Response::json(
                    200,
                    &serde_json::json!({ "plugin": "echo-provider" }),
                ))
            })
            .get("/last-event", |_, _| {
                match kv::get::<serde_json::Value>("last-event")? {
                    Some(v) => Ok(Response::json(200, &v)),
                    None => Err(Error::not_found("no event yet")),
                }
            })
            .handle(&req)
    }

    /// Keeps the last `echo-consumer.pinged` event it was sent.
    fn on_event(event: Event) -> Result<(), Error> {
        kv::put(
            "last-event",
            &serde_json::json!({
                "topic": event.topic,
                "source": event.source,
                "site": event.site,
                "payload": event.json::<serde_json::Value>()?,
            }),
        )
    }
}

/// The interface other plugins call.
impl bindings::exports::osler::fixtures::echo::Guest for EchoProvider {
    /// `text`, after the `tag` setting (empty by default): two packages of this component
    /// under different ids and tags tell who answered.
    fn echo(text: String) -> Result<String, Error> {
        Ok(format!(
            "{}{text}",
            osler_sdk::config::get_text("tag").unwrap_or_default()
        ))
    }

    fn read_patient(id: String) -> Result<String, Error> {
        Ok(patients::get(&id)?.to_string())
    }
}

// `handler` and `event-handler` through the SDK, and every export (with `echo`) through this
// crate's bindings.
osler_sdk::export_plugin!(EchoProvider with_bindings bindings);
