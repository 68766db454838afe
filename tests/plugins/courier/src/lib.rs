//! Test fixture (API 0.2): outbound requests to an administrator-configured origin, and
//! inbound requests from other servers.
//!
//! | route | does |
//! |---|---|
//! | `GET /fetch?url=…` | `GET url` through `outbound-http`; answers its status and body, or the host's error |
//! | any other path | describes the request and who it serves (`context.current()`); with `?patient=<id>`, also tries `patients-read.get` and says what came of it |
//!
//! The second is what an inbound request (`/inbound/{site}/courier/…`) reaches.

use osler_sdk::context::{self, Principal};
use osler_sdk::{Error, Request, Response, http, patients};
use serde_json::json;

struct Courier;

impl osler_sdk::Plugin for Courier {
    fn handle(req: Request) -> Response {
        if req.method == "GET" && req.path == "/fetch" {
            return match fetch(&req) {
                Ok(r) => r,
                Err(e) => e.into(),
            };
        }
        describe(&req)
    }
}

fn fetch(req: &Request) -> Result<Response, Error> {
    let url = req
        .query_param("url")
        .ok_or_else(|| Error::invalid("`url` is required"))?;
    let got = http::get(&url)?;
    Ok(Response::json(
        200,
        &json!({
            "status": got.status,
            "body": String::from_utf8_lossy(&got.body),
        }),
    ))
}

fn describe(req: &Request) -> Response {
    let principal = match context::current() {
        Principal::Person(c) => json!({ "kind": "person", "user": c.user, "site": c.site }),
        Principal::Unattended(u) => {
            json!({ "kind": "unattended", "site": u.site, "siteName": u.site_name, "what": u.what })
        }
    };
    let read = req
        .query_param("patient")
        .map(|id| match patients::get(&id) {
            Ok(_) => json!({ "ok": true }),
            Err(e) => json!({ "error": e.code(), "message": e.to_string() }),
        });
    let headers: Vec<&str> = req.headers.iter().map(|(k, _)| k.as_str()).collect();
    Response::json(
        200,
        &json!({
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": headers,
            "body": String::from_utf8_lossy(&req.body),
            "principal": principal,
            "read": read,
        }),
    )
}

osler_sdk::export_plugin!(Courier);
