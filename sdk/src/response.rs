//! Builders on [`Response`], and the mapping of [`Error`] to an HTTP error response.

use serde::Serialize;

use crate::{Error, Response};

const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

impl Response {
    /// A response with `status`, one `content-type` header and `body`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// `value` as JSON. Should serialisation fail (a map with non-string keys, say), the
    /// response is a 500 `internal` error instead.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(status, JSON, body),
            Err(e) => Error::internal(format!("response: {e}")).into(),
        }
    }

    /// A response with `status` and no body, e.g. `Response::empty(204)` after a delete.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// An HTML page (see [`crate::html::page`]).
    pub fn html(status: u16, body: String) -> Response {
        Response::new(status, HTML, body)
    }

    /// Plain text.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status, TEXT, body.into())
    }

    /// `303 See Other` to `location`: the answer to a form post, so that reloading the page
    /// does not post again. `location` is a path on the Osler server, e.g.
    /// `/plugins/notices/`.
    pub fn redirect_see_other(location: &str) -> Response {
        Response::new(303, TEXT, Vec::new()).with_header("location", location)
    }

    /// Serve this HTML as it is, without Osler's shell around it: for a document that
    /// stands alone (a letter, a label). Sets `osler-frame: bare`. Pages to print need not
    /// be bare: the shell prints without its navigation.
    pub fn bare(self) -> Response {
        self.with_header("osler-frame", "bare")
    }

    /// This page is about patient `id`: Osler shows the patient banner (name, age, sex,
    /// health card, chart number) above it, read for the signed-in person like any chart
    /// read. Sets `osler-patient`.
    pub fn about_patient(self, id: &str) -> Response {
        self.with_header("osler-patient", id)
    }

    /// `{"error":{"code":<code>,"message":<message>}}` with `status`.
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
        }
        let body = Body {
            error: Inner { code, message },
        };
        // Two strings always serialise.
        Response::new(status, JSON, serde_json::to_vec(&body).unwrap_or_default())
    }

    /// A 404 `not-found` JSON error.
    pub fn not_found() -> Response {
        Response::error(404, "not-found", "no such page")
    }

    /// Adds a header (lower-case `name`); the host drops `set-cookie` and sets its own
    /// security headers.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// The value of the header `name` (compared case-insensitively), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The error as JSON, `{"error":{"code":..,"message":..}}`, with its status: denied → 403,
/// not-found → 404, invalid → 400, conflict → 409, unavailable → 503, too-large → 413,
/// internal → 500.
impl From<Error> for Response {
    fn from(e: Error) -> Response {
        Response::error(e.status(), e.code(), e.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &Response) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn error_body_is_exact() {
        let r = Response::error(400, "invalid", "title: \"x\" is too long");
        assert_eq!(r.status, 400);
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"error":{"code":"invalid","message":"title: \"x\" is too long"}}"#
        );
    }

    #[test]
    fn errors_map_to_statuses() {
        let cases = [
            (Error::denied("a"), 403, "denied"),
            (Error::not_found("b"), 404, "not-found"),
            (Error::invalid("c"), 400, "invalid"),
            (Error::conflict("d"), 409, "conflict"),
            (Error::unavailable("e"), 503, "unavailable"),
            (Error::too_large("f"), 413, "too-large"),
            (Error::internal("g"), 500, "internal"),
        ];
        for (e, status, code) in cases {
            let message = e.message().to_string();
            let r = Response::from(e);
            assert_eq!(r.status, status);
            assert_eq!(
                body(&r),
                serde_json::json!({"error": {"code": code, "message": message}})
            );
        }
    }

    #[test]
    fn builders() {
        let r = Response::json(201, &serde_json::json!({"ok": true}));
        assert_eq!((r.status, body(&r)), (201, serde_json::json!({"ok": true})));
        let r = Response::redirect_see_other("/plugins/notices/");
        assert_eq!(r.status, 303);
        assert_eq!(r.header("location"), Some("/plugins/notices/"));
        let r = Response::html(200, "<p>x</p>".into());
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(Response::text(200, "hi").body, b"hi");
        assert_eq!(Response::not_found().status, 404);
        assert_eq!(Response::empty(204).body, b"");
        let r = Response::html(200, "<p>x</p>".into())
            .about_patient("p-1")
            .bare();
        assert_eq!(r.header("osler-patient"), Some("p-1"));
        assert_eq!(r.header("osler-frame"), Some("bare"));
    }

    #[test]
    fn unserialisable_json_is_internal() {
        let mut m = std::collections::BTreeMap::new();
        m.insert((1, 2), 3);
        assert_eq!(Response::json(200, &m).status, 500);
    }
}
