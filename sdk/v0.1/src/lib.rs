//! # osler-sdk for `osler:plugin@0.1.0` (frozen)
//!
//! The SDK as it was for API 0.1, kept so that plugins not yet moved to 0.2 keep building
//! unchanged: depend on it under the name `osler-sdk`
//! (`osler-sdk = { package = "osler-sdk-v0-1", path = "…/sdk/v0.1" }`) and nothing else in the
//! plugin changes. New plugins use `sdk/` (0.2); the host runs plugins of both versions.
//!
//! An Osler plugin is a WebAssembly component targeting the `osler:plugin/plugin@0.1.0` world
//! (the WIT files are in Osler's `wit/v0.1.0/`). The host routes `/plugins/<id>/...` to the
//! plugin's [`Plugin::handle`], and delivers the events its manifest subscribes to to
//! [`Plugin::on_event`]. Everything else — storage, patients, configuration, the clock — is a
//! host call, wrapped here in one module per host interface.
//!
//! ```no_run
//! use osler_sdk::{Error, Params, Plugin, Request, Response, Router, kv};
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn handle(req: Request) -> Response {
//!         Router::new().get("/visits", visits).handle(&req)
//!     }
//! }
//!
//! fn visits(req: &Request, _: &Params) -> Result<Response, Error> {
//!     let key = format!("site/{}/visits", req.caller().site);
//!     let n = kv::get::<u64>(&key)?.unwrap_or(0) + 1;
//!     kv::put(&key, &n)?;
//!     Ok(Response::json(200, &serde_json::json!({ "visits": n })))
//! }
//!
//! osler_sdk::export_plugin!(Hello);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` is the component.
//! A component imports only the host interfaces it actually calls (the linker drops the rest),
//! and the host refuses a component that imports an interface its manifest does not declare.
//!
//! The crate also compiles for the build machine so that pure logic (routing, decoding,
//! rendering) can be unit-tested with `cargo test`; host calls there panic with
//! `unreachable`.
//!
//! ## Plugins with their own WIT
//!
//! A plugin that exports a typed interface to other plugins, or imports one, generates its
//! own bindings for a world that `include`s `osler:plugin/plugin@0.1.0`, and maps every
//! `osler:plugin` interface onto this crate's so that the types are shared: see
//! [`generate!`] and [`dispatch_request`].

mod error;
mod request;
mod response;
// The router is the current SDK's (the same API, matched without building every route).
#[path = "../../src/router.rs"]
mod router;

pub mod audit;
pub mod clock;
pub mod config;
pub mod directory;
pub mod events;
pub mod html;
pub mod http;
pub mod kv;
pub mod log;
pub mod patients;

pub use error::Error;
pub use router::{Handler, Params, Router};
pub use types::{Caller, Event, Headers, Request, Response};

/// The bindings `wit-bindgen` generates for the `osler:plugin/plugin@0.1.0` world.
///
/// Plugins rarely need this directly: the modules of this crate wrap every host interface.
/// It is public for [`export_plugin!`] and for plugins that generate their own bindings and
/// map the `osler:plugin` interfaces onto these modules (see [`generate!`]).
///
/// The WIT `error` variant is mapped onto [`Error`], so this module's functions return it.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1.0",
        world: "osler:plugin/plugin@0.1.0",
        pub_export_macro: true,
        default_bindings_module: "osler_sdk::bindings",
        additional_derives: [PartialEq],
        with: { "osler:plugin/types@0.1.0/error": crate::Error },
    });
}

/// The types of `osler:plugin/types@0.1.0`: [`Request`], [`Response`], [`Caller`], [`Event`],
/// [`Headers`] and [`Error`].
///
/// This is the module to name for `osler:plugin/types@0.1.0` in the `with` map of a plugin that
/// generates its own bindings (the generated `types` module lacks `Error`, which the SDK
/// defines itself).
pub mod types {
    pub use crate::bindings::osler::plugin::types::{Caller, Event, Headers, Request, Response};
    pub use crate::error::Error;
}

/// The `wit-bindgen` this crate was built with, for plugins that generate their own bindings
/// (use it through [`generate!`], or pass `runtime_path: "osler_sdk::wit_bindgen::rt"`), so
/// that a plugin never links two versions of it.
pub use wit_bindgen;

/// A plugin: an HTTP handler and, optionally, an event handler.
///
/// Implement it for a unit struct and export that with [`export_plugin!`]. The functions take
/// no `self`: every request runs in a fresh instance, so there is no state to hold — keep
/// anything that must last in [`kv`].
pub trait Plugin {
    /// Answers a request to `/plugins/<id>/...`. [`Request::path`](Request) is the part after
    /// the plugin's id, starting with `/`. Usually this is `Router::new()...handle(&req)`.
    fn handle(req: Request) -> Response;

    /// Handles an event the manifest subscribes to (`[events] subscribe`). There is no
    /// signed-in person: host calls are checked against the plugin's own grants at
    /// `event.site`. The default does nothing.
    fn on_event(event: Event) -> Result<(), Error> {
        let _ = event;
        Ok(())
    }
}

/// Runs [`Plugin::handle`] for `P`: what an `osler:plugin/handler` export calls.
///
/// [`export_plugin!`] uses this, also for a plugin with its own bindings (see [`generate!`]);
/// written out, such a plugin's `handler` export is (the request and response types are this
/// crate's, through the `with` map):
///
/// ```ignore
/// impl bindings::exports::osler::plugin::handler::Guest for Echo {
///     fn handle(request: osler_sdk::Request) -> osler_sdk::Response {
///         osler_sdk::dispatch_request::<Echo>(request)
///     }
/// }
/// ```
pub fn dispatch_request<P: Plugin>(request: Request) -> Response {
    P::handle(request)
}

/// Runs [`Plugin::on_event`] for `P`: what an `osler:plugin/event-handler` export calls.
pub fn dispatch_event<P: Plugin>(event: Event) -> Result<(), Error> {
    P::on_event(event)
}

/// Exports a [`Plugin`] as the component's `handler` and `event-handler`.
///
/// Use it once, at the top level of the plugin crate, with the name of a type (an identifier,
/// not a path) that implements [`Plugin`]:
///
/// ```ignore
/// struct Notices;
/// impl osler_sdk::Plugin for Notices { /* ... */ }
/// osler_sdk::export_plugin!(Notices);
/// ```
///
/// A plugin with its own bindings (see [`generate!`]) names its bindings module too:
/// `osler_sdk::export_plugin!(Echo with_bindings bindings);`. That implements the `handler`
/// and `event-handler` traits generated there with [`dispatch_request`] and
/// [`dispatch_event`], and exports everything with that module's `export!` macro, so the
/// plugin's own interfaces are exported too (implement their `Guest` traits for the same
/// type).
///
/// The component exports are only emitted for `wasm32`: natively (for `cargo test`) the
/// macro just keeps the handlers reachable.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ident) => {
        impl $crate::bindings::exports::osler::plugin::handler::Guest for $plugin {
            fn handle(request: $crate::Request) -> $crate::Response {
                $crate::dispatch_request::<$plugin>(request)
            }
        }

        impl $crate::bindings::exports::osler::plugin::event_handler::Guest for $plugin {
            fn on_event(event: $crate::Event) -> ::core::result::Result<(), $crate::Error> {
                $crate::dispatch_event::<$plugin>(event)
            }
        }

        // Export names like `osler:plugin/handler@0.1.0#handle` are not symbols a native
        // linker accepts, and natively there is no host to call them.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export!($plugin with_types_in $crate::bindings);

        $crate::__keep_reachable!($plugin);
    };
    ($plugin:ident with_bindings $($bindings:ident)::+) => {
        impl $($bindings)::+::exports::osler::plugin::handler::Guest for $plugin {
            fn handle(request: $crate::Request) -> $crate::Response {
                $crate::dispatch_request::<$plugin>(request)
            }
        }

        impl $($bindings)::+::exports::osler::plugin::event_handler::Guest for $plugin {
            fn on_event(event: $crate::Event) -> ::core::result::Result<(), $crate::Error> {
                $crate::dispatch_event::<$plugin>(event)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $($bindings)::+::export!($plugin with_types_in $($bindings)::+);

        $crate::__keep_reachable!($plugin);
    };
}

/// Natively, where nothing is exported, keeps a plugin's handlers reachable so that the
/// plugin crate gets no dead-code warnings.
#[doc(hidden)]
#[macro_export]
macro_rules! __keep_reachable {
    ($plugin:ident) => {
        #[cfg(not(target_arch = "wasm32"))]
        const _: (
            fn($crate::Request) -> $crate::Response,
            fn($crate::Event) -> ::core::result::Result<(), $crate::Error>,
        ) = (
            $crate::dispatch_request::<$plugin>,
            $crate::dispatch_event::<$plugin>,
        );
    };
}

/// `wit_bindgen::generate!` for a plugin with its own WIT world, with every `osler:plugin`
/// interface mapped onto this crate.
///
/// The plugin's world includes `osler:plugin/plugin@0.1.0` and adds its own `export`s and
/// `import`s of other plugins' interfaces; `path` must list the `osler:plugin` WIT first, then
/// the plugin's own (or the plugin's `wit/` folder may carry `osler:plugin` in
/// `wit/deps/osler-plugin/`):
///
/// ```ignore
/// mod bindings {
///     osler_sdk::generate!({
///         path: ["../osler/wit/v0.1.0", "wit"],
///         world: "acme:scheduling/plugin",
///     });
/// }
/// ```
///
/// It expands to `osler_sdk::wit_bindgen::generate!` with the given options plus
/// `runtime_path`, `with` and `generate_all` (so do not pass those): the types and the host
/// interfaces come from this crate (`osler:plugin/types@0.1.0` → [`types`], each host
/// interface → `osler_sdk::bindings::osler::plugin::<interface>`); `handler`,
/// `event-handler`, the plugin's own interfaces and other plugins' imported ones are generated
/// in the plugin's module. Every key of the `with` map must be used, so the world must
/// include the whole `osler:plugin/plugin@0.1.0` world.
///
/// Then implement [`Plugin`] and the `Guest` trait of each interface the world exports, and
/// export it all with `osler_sdk::export_plugin!(MyPlugin with_bindings bindings)`.
///
/// The long form, with `wit_bindgen::generate!` and the `with` map written out, is in the
/// `echo-provider` test fixture of the Osler repository (`tests/plugins/echo-provider`).
#[macro_export]
macro_rules! generate {
    ({ $($options:tt)* }) => {
        $crate::wit_bindgen::generate!({
            runtime_path: "osler_sdk::wit_bindgen::rt",
            with: {
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
                "osler:plugin/handler@0.1.0": generate,
                "osler:plugin/event-handler@0.1.0": generate,
            },
            // Other plugins' interfaces that the world imports.
            generate_all,
            $($options)*
        });
    };
}
