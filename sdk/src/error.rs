//! [`Error`]: why a host call, a call to another plugin, or a handler did not succeed.

use std::fmt;

/// Why something did not succeed: the WIT `osler:plugin/types.error` variant.
///
/// This *is* the type the generated bindings use (the SDK maps the WIT type onto it), so the
/// result of any host call — and of any call to another plugin's interface — can be returned
/// with `?`. A handler's `Err` becomes a JSON error response through
/// `From<Error> for Response` (see [`Error::status`] for the status codes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not allowed: the plugin's manifest, the administrator's grant at this site, or the
    /// permissions of the person the call serves do not permit it. HTTP 403, code `denied`.
    Denied(String),
    /// The thing asked for does not exist. HTTP 404, code `not-found`.
    NotFound(String),
    /// The arguments are wrong; the message says which and why. HTTP 400, code `invalid`.
    Invalid(String),
    /// A precondition failed: a stale version, a compare-and-swap expectation, a duplicate,
    /// a full store. HTTP 409, code `conflict`.
    Conflict(String),
    /// A plugin interface this plugin imports is not bound to a provider enabled at this
    /// site. HTTP 503, code `unavailable`.
    Unavailable(String),
    /// A limit was reached: a size (payload, key, value, page), the storage quota, the audit
    /// or event allowance, the depth of events. Nothing was done. HTTP 413, code `too-large`.
    TooLarge(String),
    /// Something failed inside the host or another plugin; retrying may help.
    /// HTTP 500, code `internal`.
    Internal(String),
}

impl Error {
    /// [`Error::Denied`] with `message`.
    pub fn denied(message: impl Into<String>) -> Self {
        Error::Denied(message.into())
    }

    /// [`Error::NotFound`] with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::NotFound(message.into())
    }

    /// [`Error::Invalid`] with `message`. Name the field: `"title: must not be empty"`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    /// [`Error::Conflict`] with `message`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict(message.into())
    }

    /// [`Error::Unavailable`] with `message`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable(message.into())
    }

    /// [`Error::TooLarge`] with `message`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Error::TooLarge(message.into())
    }

    /// [`Error::Internal`] with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// The machine-readable code: `denied`, `not-found`, `invalid`, `conflict`,
    /// `unavailable`, `too-large` or `internal`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Denied(_) => "denied",
            Error::NotFound(_) => "not-found",
            Error::Invalid(_) => "invalid",
            Error::Conflict(_) => "conflict",
            Error::Unavailable(_) => "unavailable",
            Error::TooLarge(_) => "too-large",
            Error::Internal(_) => "internal",
        }
    }

    /// The HTTP status this error is answered with: 403, 404, 400, 409, 503, 413 or 500.
    pub fn status(&self) -> u16 {
        match self {
            Error::Denied(_) => 403,
            Error::NotFound(_) => 404,
            Error::Invalid(_) => 400,
            Error::Conflict(_) => 409,
            Error::Unavailable(_) => 503,
            Error::TooLarge(_) => 413,
            Error::Internal(_) => 500,
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        match self {
            Error::Denied(m)
            | Error::NotFound(m)
            | Error::Invalid(m)
            | Error::Conflict(m)
            | Error::Unavailable(m)
            | Error::TooLarge(m)
            | Error::Internal(m) => m,
        }
    }
}

/// `code: message`, e.g. `invalid: title: must not be empty`.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for Error {}

/// A body or value that is not the expected JSON is the caller's mistake: [`Error::Invalid`].
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Invalid(e.to_string())
    }
}

/// A form or query string that does not decode: [`Error::Invalid`].
impl From<serde_urlencoded::de::Error> for Error {
    fn from(e: serde_urlencoded::de::Error) -> Self {
        Error::Invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_statuses_and_display() {
        let cases = [
            (Error::denied("d"), 403, "denied"),
            (Error::not_found("n"), 404, "not-found"),
            (Error::invalid("i"), 400, "invalid"),
            (Error::conflict("c"), 409, "conflict"),
            (Error::unavailable("u"), 503, "unavailable"),
            (Error::too_large("t"), 413, "too-large"),
            (Error::internal("x"), 500, "internal"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status(), status);
            assert_eq!(e.code(), code);
            assert_eq!(e.to_string(), format!("{code}: {}", e.message()));
        }
    }

    #[test]
    fn json_errors_are_invalid() {
        let e: Error = serde_json::from_str::<u32>("\"x\"").unwrap_err().into();
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    }
}
