//! `osler:plugin@0.1.0`: the bindings of the first (frozen) API version.
//!
//! The host interfaces are implemented once, on [`Sandbox`](super::sandbox::Sandbox), in the
//! files of [`caps`](super::caps). When `0.2` arrives it gets its own module like this one; its
//! host traits are the ones implemented in `caps`, and this version's traits delegate to them
//! through `From` conversions of the types, so old plugins keep linking. The exports of every
//! version are reached through [`Pre`](super::instance::Pre), so the rest of the host never
//! sees a version number.

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "osler:plugin/plugin@0.1.0",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use osler::plugin::types::{Caller, Error, Event, Request, Response};

/// The semver of this API version.
pub const VERSION: semver::Version = semver::Version::new(0, 1, 0);
