//! [`Router`]: a small method-and-path router for [`Plugin::handle`](crate::Plugin::handle).

use std::borrow::Cow;
use std::ops::Index;

use crate::{Error, Request, Response};

/// A route handler: gets the request and the route's path parameters. An `Err` is answered
/// with the error's JSON response (see `From<Error> for Response`).
pub type Handler = fn(&Request, &Params) -> Result<Response, Error>;

/// Routes requests by method and path.
///
/// Patterns are paths inside the plugin, starting with `/`; a segment `{name}` matches any one
/// non-empty segment and is available as `params["name"]` (as the host passes the path:
/// already percent-decoded). A last segment `{*name}` matches the rest of the path, one or
/// more segments, joined with `/`. Empty segments are ignored, so `/notices/` matches `/notices`.
/// Routes are tried in the order they were added; `HEAD` runs the `GET` route.
///
/// ```
/// use osler_sdk::{Error, Params, Request, Response, Router};
///
/// fn show(_: &Request, p: &Params) -> Result<Response, Error> {
///     Ok(Response::text(200, format!("notice {}", &p["id"])))
/// }
///
/// let router = Router::new()
///     .get("/notices/{id}", show)
///     .delete("/notices/{id}", |_, _| Ok(Response::text(204, "")));
/// # let _ = router;
/// ```
///
/// [`Router::handle`] answers a path no route matches with a JSON 404 (`not-found`), and a
/// path that matches only under other methods with a JSON 405 (`method-not-allowed`) and an
/// `allow` header.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

/// A route as given: a plugin builds its router for each request (its instance serves one),
/// so a route costs one copy of its pattern, and a pattern is read segment by segment only
/// when a path is matched against it.
struct Route {
    method: Cow<'static, str>,
    pattern: String,
    handler: Handler,
}

enum Segment<'a> {
    Literal(&'a str),
    Param(&'a str),
    Rest(&'a str),
}

impl Segment<'_> {
    fn parse(s: &str) -> Segment<'_> {
        match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => match name.strip_prefix('*') {
                Some(rest) => Segment::Rest(rest),
                None => Segment::Param(name),
            },
            None => Segment::Literal(s),
        }
    }
}

/// The methods the builder names, kept without a copy.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

impl Router {
    /// A router with no routes.
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds a route for `method` (upper case, e.g. `GET`) and `pattern`.
    ///
    /// # Panics
    ///
    /// When `pattern` does not start with `/`, or has a `{*name}` segment that is not the
    /// last: programming errors, found by the first test.
    pub fn route(mut self, method: &str, pattern: &str, handler: Handler) -> Router {
        assert!(
            pattern.starts_with('/'),
            "route pattern {pattern:?} must start with '/'"
        );
        let mut segments = split(pattern).map(Segment::parse).peekable();
        while let Some(segment) = segments.next() {
            assert!(
                !matches!(segment, Segment::Rest(_)) || segments.peek().is_none(),
                "in route pattern {pattern:?}, a {{*name}} segment must be the last"
            );
        }
        let method = match METHODS.iter().find(|m| m.eq_ignore_ascii_case(method)) {
            Some(m) => Cow::Borrowed(*m),
            None => Cow::Owned(method.to_ascii_uppercase()),
        };
        self.routes.push(Route {
            method,
            pattern: pattern.to_string(),
            handler,
        });
        self
    }

    /// Adds a `GET` route.
    pub fn get(self, pattern: &str, handler: Handler) -> Router {
        self.route("GET", pattern, handler)
    }

    /// Adds a `POST` route.
    pub fn post(self, pattern: &str, handler: Handler) -> Router {
        self.route("POST", pattern, handler)
    }

    /// Adds a `PUT` route.
    pub fn put(self, pattern: &str, handler: Handler) -> Router {
        self.route("PUT", pattern, handler)
    }

    /// Adds a `PATCH` route.
    pub fn patch(self, pattern: &str, handler: Handler) -> Router {
        self.route("PATCH", pattern, handler)
    }

    /// Adds a `DELETE` route.
    pub fn delete(self, pattern: &str, handler: Handler) -> Router {
        self.route("DELETE", pattern, handler)
    }

    /// Runs the first route matching the request's method and path.
    pub fn handle(&self, req: &Request) -> Response {
        let mut allowed: Vec<&str> = Vec::new();
        for route in &self.routes {
            if !route.bind(&req.path, None) {
                continue;
            }
            let method = &route.method;
            if method.eq_ignore_ascii_case(&req.method)
                || (method == "GET" && req.method.eq_ignore_ascii_case("HEAD"))
            {
                let mut params = Params::default();
                route.bind(&req.path, Some(&mut params));
                return (route.handler)(req, &params).unwrap_or_else(Response::from);
            }
            if !allowed.contains(&method.as_ref()) {
                allowed.push(method);
            }
        }
        if allowed.is_empty() {
            Response::error(404, "not-found", &format!("no page at {}", req.path))
        } else {
            let message = format!(
                "{} is not allowed here; use {}",
                req.method,
                allowed.join(", ")
            );
            Response::error(405, "method-not-allowed", &message)
                .with_header("allow", &allowed.join(", "))
        }
    }
}

impl Route {
    /// Whether `path` matches the pattern; the parameters go into `params` when given (a
    /// path is first matched without them, so routes that do not match build nothing).
    fn bind(&self, path: &str, mut params: Option<&mut Params>) -> bool {
        let mut parts = split(path);
        for segment in split(&self.pattern).map(Segment::parse) {
            let Some(part) = parts.next() else {
                return false;
            };
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return false,
                Segment::Param(name) => {
                    if let Some(p) = params.as_deref_mut() {
                        p.0.push((name.to_string(), part.to_string()));
                    }
                }
                Segment::Rest(name) => {
                    if let Some(p) = params.as_deref_mut() {
                        let rest: Vec<&str> = std::iter::once(part).chain(parts.by_ref()).collect();
                        p.0.push((name.to_string(), rest.join("/")));
                    }
                    return true;
                }
            }
        }
        parts.next().is_none()
    }
}

/// The non-empty segments of a path: `/a/b/` → `a`, `b`; `/` → nothing.
fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// The `{name}` parameters of the matched route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The value of `{name}`, if the route has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `params["id"]`: the value of `{id}`.
///
/// # Panics
///
/// When the route has no such parameter — a typo in the handler, found by the first test.
impl Index<&str> for Params {
    type Output = String;

    fn index(&self, name: &str) -> &String {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("the route has no parameter {{{name}}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::tests::request;

    fn router() -> Router {
        Router::new()
            .get("/", |_, _| Ok(Response::text(200, "home")))
            .post("/notices", |_, _| Ok(Response::text(201, "created")))
            .get("/notices/{id}", |_, p| {
                Ok(Response::text(200, format!("show {}", &p["id"])))
            })
            .delete("/notices/{id}", |_, p| {
                Err(Error::denied(format!("not yours: {}", &p["id"])))
            })
            .get("/files/{*path}", |_, p| {
                Ok(Response::text(200, p["path"].to_string()))
            })
            .get("/a/{x}/b/{y}", |_, p| {
                Ok(Response::text(200, format!("{}+{}", &p["x"], &p["y"])))
            })
    }

    fn call(method: &str, path: &str) -> (u16, String) {
        let r = router().handle(&request(method, path, "", b""));
        (r.status, String::from_utf8(r.body).unwrap())
    }

    #[test]
    fn matches_literals_and_params() {
        assert_eq!(call("GET", "/"), (200, "home".into()));
        assert_eq!(call("POST", "/notices"), (201, "created".into()));
        assert_eq!(call("POST", "/notices/"), (201, "created".into()));
        assert_eq!(call("GET", "/notices/42"), (200, "show 42".into()));
        assert_eq!(call("GET", "/notices/a b"), (200, "show a b".into()));
        assert_eq!(call("HEAD", "/notices/1"), (200, "show 1".into()));
        assert_eq!(call("GET", "/a/1/b/2"), (200, "1+2".into()));
    }

    #[test]
    fn rest_segment_takes_the_rest() {
        assert_eq!(call("GET", "/files/a"), (200, "a".into()));
        assert_eq!(call("GET", "/files/a/b/c"), (200, "a/b/c".into()));
        assert_eq!(call("GET", "/files").0, 404);
    }

    #[test]
    #[should_panic(expected = "must be the last")]
    fn rest_segment_must_be_last() {
        let _ = Router::new().get("/{*a}/b", |_, _| Ok(Response::not_found()));
    }

    #[test]
    fn errors_become_responses() {
        let (status, body) = call("DELETE", "/notices/7");
        assert_eq!(status, 403);
        assert_eq!(
            body,
            r#"{"error":{"code":"denied","message":"not yours: 7"}}"#
        );
    }

    #[test]
    fn unknown_path_is_json_404() {
        for path in ["/nope", "/notices/1/2", "/a/1/b"] {
            let (status, body) = call("GET", path);
            assert_eq!(status, 404, "{path}");
            assert!(
                body.starts_with(r#"{"error":{"code":"not-found""#),
                "{body}"
            );
        }
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let r = router().handle(&request("PUT", "/notices/1", "", b""));
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, DELETE"));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"]["code"], "method-not-allowed");
        assert_eq!(call("GET", "/notices").0, 405);
    }

    #[test]
    fn params_get_and_index() {
        let p = Params(vec![("id".into(), "1".into())]);
        assert_eq!(p.get("id"), Some("1"));
        assert_eq!(p.get("x"), None);
        assert_eq!(&p["id"], "1");
    }

    #[test]
    #[should_panic(expected = "must start with '/'")]
    fn pattern_must_be_absolute() {
        let _ = Router::new().get("notices", |_, _| Ok(Response::not_found()));
    }
}
