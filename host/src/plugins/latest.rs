//! The version seam: the plugin API types the rest of the host (the router, the manager, the
//! HTTP layer) uses, whatever API version a plugin was built against.
//!
//! These are the newest version's types. A plugin built against an older version is reached
//! through [`Pre`](super::instance::Pre), which converts these to and from its own version's
//! types at the sandbox's edge; nothing outside `plugins::instance` and the version modules
//! names a version.

pub use super::v0_1::{Caller, Error, Event, Request, Response};

/// The newest `osler:plugin` version this host provides.
pub use super::v0_1::VERSION;
