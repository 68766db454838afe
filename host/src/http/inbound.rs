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
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::caller::source_of;
use super::error::ApiError;
use super::plugins::{Reader, forwarded_headers, response};
use crate::access::{Capability, Ctx};
use crate::app::App;
use crate::plugins::dispatch::{INBOUND, Incoming};

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
    let headers = forwarded_headers(&parts);
    let request = Incoming {
        method: method.clone(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body: body.to_vec(),
    };
    let res = match app.plugins.handle_inbound(plugin, &site, request).await {
        Ok(r) => response(&app, &id, &site, r, Reader::Server),
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
