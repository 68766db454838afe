//! What every answer has in common, whichever handler (or extractor, or router) made it:
//!
//! - under `/api/`, an error is always the JSON error document `{"error":{"code","message"}}`:
//!   a refusal made by axum itself (a path that does not decode, a query that does not parse,
//!   a method the route lacks, a body too large) is rewritten into it, keeping its status and
//!   headers;
//! - nothing is cached: an answer that does not say otherwise gets `Cache-Control: no-store`,
//!   so no browser, proxy or shared computer keeps a copy of a chart, a search or the trail.
//!
//! And [`Params`], the query-string extractor whose refusals name the parameter at fault.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::app::App;

/// The middleware (see the module documentation). A method refused on a patient route
/// (`DELETE` of a chart among them) is also recorded in the audit trail when the request
/// comes from a signed-in person.
pub async fn uniform(State(app): State<App>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let on_patients = req.uri().path().starts_with("/api/v1/patients");
    let deleting_a_chart = req.method() == axum::http::Method::DELETE && on_patients;
    // What a refusal's record needs once the request is gone (patient routes only).
    let request = on_patients.then(|| {
        let mut parts = Request::new(()).into_parts().0;
        parts.method = req.method().clone();
        parts.uri = req.uri().clone();
        parts.headers = req.headers().clone();
        if let Some(c) = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        {
            parts.extensions.insert(*c);
        }
        parts
    });
    let mut res = next.run(req).await;
    if res.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(parts) = &request
        && let Ok(Some(caller)) = super::caller::resolve(parts, &app)
    {
        let why = if deleting_a_chart {
            "patient records are never deleted".to_string()
        } else {
            format!("{} is not a method of this route", parts.method)
        };
        let refusal = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", why);
        let recorded = super::caller::record_refusal(
            &app,
            &caller.ctx(),
            &parts.method,
            parts.uri.path(),
            refusal,
        )
        .await;
        if recorded.status != StatusCode::METHOD_NOT_ALLOWED {
            // The refusal could not be recorded: nothing else is answered.
            res = recorded.into_response();
        }
    }
    res.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    let status = res.status();
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // A page is the shell's answer to a browser that asked for one (`shell::browser_errors`):
        // the same error, as a page.
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"));
    if !api || json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (parts, body) = res.into_parts();
    // Axum's own refusals are a short line of text; anything longer is cut.
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let mut message = message_of(status, &text);
    if status == StatusCode::METHOD_NOT_ALLOWED && deleting_a_chart {
        message = "patient records are never deleted; mark the chart inactive with PUT and \
                   \"active\": false"
            .into();
    }
    let err = ApiError::new(status, code_of(status), message);
    let mut out = err.into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::TOO_MANY_REQUESTS => "too-many-requests",
        s if s.is_server_error() => "internal",
        _ => "invalid",
    }
}

fn message_of(status: StatusCode, text: &str) -> String {
    match status {
        // (Axum adds the `Allow` header after this layer has run.)
        StatusCode::METHOD_NOT_ALLOWED => {
            "this endpoint does not take that method; the Allow header lists those it takes"
                .to_string()
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than this server accepts".to_string()
        }
        _ if text.is_empty() => status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_string(),
        _ => text.to_string(),
    }
}

/// A query string parsed into `T`. Refused with 400 naming the parameter when a value does
/// not parse, and when a parameter is given more than once (which one would count?).
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let mut seen = std::collections::BTreeSet::new();
        for (k, _) in form_urlencoded::parse(query.as_bytes()) {
            if !seen.insert(k.clone()) {
                return Err(ApiError::invalid(format!(
                    "the query gives `{k}` more than once; give it once"
                ))
                .field(k.into_owned()));
            }
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Params)
            .map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                let err = ApiError::invalid(format!("the query is not valid: {field}: {inner}"));
                if field == "." { err } else { err.field(field) }
            })
    }
}

/// Complete the generated OpenAPI document with the answers every operation of a kind can
/// give, so that the document lists every status a client may see: 401 and 403 wherever a
/// session is needed (403 also for a site the user does not belong to, `X-Osler-Site`, and a
/// cookie request without its CSRF token), 400 where there is anything to parse, 404 where a
/// path names something, 413 and 415 where there is a body. Each operation that needs a session
/// also documents the `X-Osler-Site` header.
pub fn complete_document(doc: &mut serde_json::Value) {
    use serde_json::json;
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        })
    };
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (template, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for method in ["get", "put", "post", "delete", "patch"] {
            let Some(op) = item.get_mut(method).and_then(|o| o.as_object_mut()) else {
                continue;
            };
            let anonymous = op
                .get("security")
                .and_then(|s| s.as_array())
                .is_some_and(|s| {
                    s.iter()
                        .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
                });
            let has_params = op
                .get("parameters")
                .and_then(|p| p.as_array())
                .is_some_and(|p| !p.is_empty());
            let has_body = op.contains_key("requestBody");
            let names_something = template.contains('{');
            if !anonymous {
                let params = op
                    .entry("parameters")
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("parameters are a list");
                params.push(json!({
                    "name": "X-Osler-Site",
                    "in": "header",
                    "required": false,
                    "description": "act at this site for this request (one of your sites)",
                    "schema": {"type": "string"}
                }));
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("responses are a map");
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| error(description));
            };
            if !anonymous {
                add(
                    "401",
                    "no session, or it ended: sign in with POST /api/v1/auth/login",
                );
                add(
                    "403",
                    "refused: your role does not allow it, you do not belong to the site in \
                     X-Osler-Site, or a cookie-authenticated request lacks its CSRF token",
                );
            }
            if has_params || has_body || names_something || !anonymous {
                add(
                    "400",
                    "the request is not valid; `field` names what is wrong",
                );
            }
            if names_something {
                add("404", "no such record");
            }
            if has_body {
                add("413", "the body is larger than this server accepts");
                add(
                    "415",
                    "the body is not in the media type this operation takes",
                );
            }
        }
    }
}
