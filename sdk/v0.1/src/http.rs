//! Outbound HTTP(S) requests (capability `outbound`), only to the origins the manifest lists
//! under `outbound`. Redirects are not followed.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
pub use crate::bindings::osler::plugin::outbound_http::{Incoming, Outgoing};

/// Sends `request`.
pub fn send(request: &Outgoing) -> Result<Incoming, Error> {
    crate::bindings::osler::plugin::outbound_http::send(request)
}

/// `GET url`.
pub fn get(url: &str) -> Result<Incoming, Error> {
    send(&Outgoing {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: Vec::new(),
        timeout_ms: None,
    })
}

/// `POST url` with `body` as JSON.
pub fn post_json<T: Serialize + ?Sized>(url: &str, body: &T) -> Result<Incoming, Error> {
    let body = serde_json::to_vec(body).map_err(|e| Error::invalid(format!("body: {e}")))?;
    send(&Outgoing {
        method: "POST".into(),
        url: url.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body,
        timeout_ms: None,
    })
}

impl Incoming {
    /// The value of the header `name` (compared case-insensitively), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body decoded from JSON; [`Error::Invalid`] when it does not decode.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::invalid(format!("response: {e}")))
    }
}
