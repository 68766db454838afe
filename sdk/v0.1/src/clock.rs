//! The time, and the site's time zone. No capability needed. (WASI's clocks work too, but
//! only this one knows the site's time zone.)

pub use crate::bindings::osler::plugin::clock::Instant;

/// Now: milliseconds since the epoch, the site's time zone and offset, and the site's local
/// date and time (`YYYY-MM-DDTHH:MM:SS`).
pub fn now() -> Instant {
    crate::bindings::osler::plugin::clock::now()
}
