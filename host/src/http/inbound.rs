//! `/inbound/{site}/{plugin}/…`: requests from servers elsewhere, with nobody signed in, to a
//! plugin the site's administrator granted `inbound` (e.g. a CAISI integrator receiving a
//! facility's signed messages).
//!
//! - Served only when the plugin is enabled at the site and `inbound` is granted there;
//!   otherwise 404, the same answer whichever it is (an unknown site, an unknown plugin, not
//!   enabled, not granted), so that nothing about the site's plugins is revealed.
//! - No session: cookies, `Authorization` and the CSRF header are not passed on. The plugin's
//!   handler runs as unattended work (`context.current()` is `unattended` with `what` =
//!   `inbound request`), so only its grants for unattended use apply. It must authenticate the
//!   sender itself (a signature, a shared secret).
//! - Same body limit, deadline and response limits as plugin pages; the answer is returned as
//!   the plugin gave it (not framed in the shell), with the header allow-list of plugin
//!   answers and never a cookie.
//! - At most `[plugins] inbound_per_minute` requests per source address a minute (429 beyond,
//!   not audited: refused before anything is looked at, and a flood must not grow the trail).
//! - Every other request is on the audit trail (`plugin.inbound`: the plugin, the site, the
//!   source address, the method, path and resulting status) — never its body.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::caller::source_of;
use super::error::ApiError;
use crate::access::{Capability, Ctx};
use crate::app::App;
use crate::plugins::dispatch::{INBOUND, Incoming};
use crate::plugins::latest;

/// What inbound answers carry: JSON or text for another server, never a page.
const CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<App> {
    Router::new()
        .route("/inbound/{site}/{plugin}", get(inbound).post(inbound))
        .route("/inbound/{site}/{plugin}/", get(inbound).post(inbound))
        .route(
            "/inbound/{site}/{plugin}/{*rest}",
            get(inbound).post(inbound),
        )
}

async fn inbound(
    State(app): State<App>,
    Path(params): Path<HashMap<String, String>>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let source = source_of(&parts, &app.config.http.trusted_proxies).map(|s| s.to_string());
    if !app
        .plugins
        .take_inbound(source.as_deref().unwrap_or("unknown"))
    {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            format!(
                "more than {} inbound requests a minute from this address",
                app.config.plugins.inbound_per_minute
            ),
        )
        .into_response();
    }
    let site = params.get("site").cloned().unwrap_or_default();
    let id = params.get("plugin").cloned().unwrap_or_default();
    let path = match params.get("rest") {
        Some(rest) => format!("/{rest}"),
        None => "/".to_string(),
    };
    let method = parts.method.as_str().to_string();
    // Whatever a sender puts in the address is kept short in the trail.
    let short = |s: &str| -> String {
        let mut out: String = s.chars().filter(|c| !c.is_control()).take(200).collect();
        if s.chars().count() > 200 {
            out.push('…');
        }
        out
    };
    let audit = |status: u16, outcome: &str| {
        let mut ev = Ctx::unattended(&short(&site), INBOUND).event("plugin.inbound", outcome);
        ev.source = source.clone();
        ev.resource = Some(format!("plugin/{}", short(&id)));
        ev.via = Some(short(&id));
        ev.detail = Some(format!("{method} {} → {status}", short(&path)));
        ev
    };
    let granted = app.sites.get(&site).ok().flatten().is_some()
        && app
            .plugins
            .site_state(&id, &site)
            .grants
            .contains(&Capability::Inbound);
    let plugin = match app.plugins.enabled(&id, &site) {
        Ok(p) if granted => p,
        _ => {
            let refused = ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "no such inbound endpoint",
            );
            return answer(&app, audit(404, "denied"), refused.into_response()).await;
        }
    };
    let limit = app.config.http.body_limit;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let refused = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the request body is larger than {limit} bytes"),
            );
            return answer(&app, audit(413, "failure"), refused.into_response()).await;
        }
    };
    let headers = parts
        .headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "cookie" | "authorization" | "proxy-authorization" | "x-csrf-token"
            )
        })
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let request = Incoming {
        method: method.clone(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body: body.to_vec(),
    };
    let res = match app.plugins.handle_inbound(plugin, &site, request).await {
        Ok(r) => response(&app, &id, &site, r),
        Err(e) => {
            tracing::warn!(plugin = %id, error = %e, "inbound request failed");
            ApiError::from(e).into_response()
        }
    };
    let status = res.status().as_u16();
    let outcome = if status < 400 { "success" } else { "failure" };
    answer(&app, audit(status, outcome), res).await
}

/// `res`, once its audit entry is durable; a 500 when the trail cannot be written.
async fn answer(app: &App, ev: crate::audit::Event, res: Response) -> Response {
    match app.audit.record_durable(ev).await {
        Ok(_) => res,
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// The plugin's answer as the other server gets it: its status and body, the headers of the
/// plugin-answer allow-list (never `set-cookie`, never a redirect), `no-store`.
fn response(app: &App, id: &str, site: &str, r: latest::Response) -> Response {
    let status = match StatusCode::from_u16(r.status) {
        Ok(s) if (200..600).contains(&r.status) => s,
        _ => {
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                "plugin-failed",
                format!("the plugin answered with status {}", r.status),
            )
            .into_response();
        }
    };
    let mut out = Response::new(Body::from(r.body));
    *out.status_mut() = status;
    let h = out.headers_mut();
    let mut dropped: Vec<String> = Vec::new();
    for (k, v) in r.headers {
        let name = k.to_ascii_lowercase();
        let allowed = matches!(
            name.as_str(),
            "content-type"
                | "content-disposition"
                | "content-language"
                | "etag"
                | "last-modified"
                | "vary"
                | "allow"
        );
        match HeaderName::from_bytes(name.as_bytes())
            .ok()
            .zip(HeaderValue::from_str(&v).ok())
        {
            Some((n, value)) if allowed => {
                h.append(n, value);
            }
            _ => dropped.push(name),
        }
    }
    if !dropped.is_empty() {
        dropped.sort();
        dropped.dedup();
        app.plugins.log_line(
            id,
            site,
            "warn",
            &format!(
                "inbound response headers dropped (not on the host's allow-list): {}",
                dropped.join(", ")
            ),
        );
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    out
}
