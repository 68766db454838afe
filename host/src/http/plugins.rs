//! `/plugins/<id>/…`, routed to the plugin's handler after the host has authenticated the
//! caller, checked CSRF and checked that the plugin is enabled at the caller's site; and the
//! administrators' `/api/v1/admin/plugins`.
//!
//! A plugin never sees the caller's credentials (cookies, `Authorization`, the CSRF header are
//! removed) and cannot set cookies. Its pages are served with a Content Security Policy that
//! forbids scripts: a plugin page cannot use the signed-in user's session to reach the API
//! behind the host's back.

use std::collections::{BTreeSet, HashMap};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Caller;
use super::api::require_audited;
use super::caller::resolve;
use super::error::{ApiError, ErrorBody};
use crate::access::{Permission, permissions_of};
use crate::app::App;
use crate::auth::plugin_csrf;
use crate::plugins::dispatch::Incoming;
use crate::plugins::instance::RunError;
use crate::plugins::manifest::{Capability, ConfigValue};
use crate::plugins::sandbox::Person;
use crate::plugins::views::EventsView;
use crate::plugins::{LogLine, PluginError, PluginView, SiteState, Unavailable, latest, registry};

/// Security headers on every plugin response; the plugin cannot remove them.
/// What an answer to another server carries: JSON or text, never a page.
const SERVER_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

const CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `/plugins/<id>/…`: every method, every path inside the plugin.
pub fn router() -> Router<App> {
    Router::new()
        .route("/plugins/{id}", any(dispatch))
        .route("/plugins/{id}/", any(dispatch))
        .route("/plugins/{id}/{*rest}", any(dispatch))
}

/// `/api/v1/admin/plugins`, documented in the OpenAPI document.
pub fn admin_router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list, install))
        .routes(routes!(show, remove))
        .routes(routes!(logs))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(grants))
        .routes(routes!(config))
        .routes(routes!(panel_positions))
        .routes(routes!(registry_install))
        .routes(routes!(registry_update))
        .routes(routes!(registry_search))
        .routes(routes!(rollback))
        .routes(routes!(approve))
        .routes(routes!(site_bindings, bind))
        .routes(routes!(events))
        .routes(routes!(retry_events))
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::NotFound(_) | PluginError::NotListed(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", e.to_string())
            }
            PluginError::Invalid(m) => ApiError::invalid(m),
            PluginError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            PluginError::Denied(m) => ApiError::forbidden(m),
            PluginError::Storage(e) => ApiError::internal(e),
            PluginError::Audit(e) => ApiError::internal(e),
            PluginError::Registry { ref error, .. } => {
                use osler_registry::Error as R;
                let status = match error {
                    R::Fetch(_) => StatusCode::BAD_GATEWAY,
                    R::Resolve(_) | R::Yanked(_) | R::Api(_) => StatusCode::CONFLICT,
                    R::Invalid(_) => StatusCode::BAD_REQUEST,
                    // Metadata or a package that fails verification.
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, error.code(), e.to_string())
            }
        }
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        let (status, code) = match &e {
            RunError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "plugin-timeout"),
            RunError::Trap(_) => (StatusCode::BAD_GATEWAY, "plugin-failed"),
            RunError::Memory(_) => (StatusCode::BAD_GATEWAY, "plugin-memory-limit"),
            RunError::TooLarge(..) => (StatusCode::BAD_GATEWAY, "plugin-response-too-large"),
            RunError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "plugin-busy"),
            RunError::Failed(_) => (StatusCode::SERVICE_UNAVAILABLE, "plugin-unavailable"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// The `_csrf` field of a form body.
fn form_csrf(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "_csrf")
        .map(|(_, v)| v.into_owned())
}

async fn dispatch(
    State(app): State<App>,
    Path(params): Path<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let id = params.get("id").cloned().unwrap_or_default();
    let Some(caller) = resolve(&parts, &app)? else {
        if parts.method == Method::GET && super::shell::wants_html(&parts) {
            return Ok(super::shell::login_redirect(&parts));
        }
        return Err(ApiError::unauthenticated());
    };
    let Some(site) = caller.site.clone() else {
        return Err(ApiError::forbidden("you belong to no site"));
    };
    if let Some(refused) = super::shell::confine_kiosk(&app, &caller, &id, &parts) {
        return Ok(refused);
    }
    if super::shell::is_patient(&caller.user)
        && super::shell::wants_html(&parts)
        && !app
            .plugins
            .nav(&site, &caller.user.roles)
            .iter()
            .any(|n| n.plugin == id)
    {
        // A patient's browser uses only the plugins that offer patients a page at this site;
        // every other plugin's pages are the clinic's. (A program using a patient's token is
        // held to the patient's permissions, as everywhere.)
        let check = crate::access::Check::new("plugin.request", crate::access::Need::Nothing)
            .resource(format!("plugin/{id}"));
        let reason = format!("the plugin '{id}' offers no pages to patients");
        return Err(app.gate.deny(&caller.ctx(), check, reason).await.into());
    }
    let plugin = match app.plugins.enabled(&id, &site) {
        Ok(p) => p,
        Err(Unavailable::NotEnabled) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no plugin '{id}' is enabled at site '{site}'"),
            ));
        }
        Err(Unavailable::Failed(reason)) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin-unavailable",
                format!("plugin '{id}' failed to load: {reason}"),
            ));
        }
    };
    let limit = app.config.http.body_limit;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the request body is larger than {limit} bytes"),
        )
    })?;
    // The plugin's own token: the session's (which the host's forms take) or another
    // plugin's is refused here, and this one is refused by the host and by other plugins.
    caller.check_csrf_token(
        &parts,
        form_csrf(&body),
        &plugin_csrf(&caller.session.csrf, &id),
    )?;
    let path = match params.get("rest") {
        Some(rest) => format!("/{rest}"),
        None => "/".to_string(),
    };
    let page_path = parts.uri.path().to_string();
    let headers = forwarded_headers(&parts);
    let request = Incoming {
        method: parts.method.as_str().to_string(),
        path,
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body: body.to_vec(),
    };
    let person = person(&app, &caller, &site);
    let resp = match app
        .plugins
        .handle(plugin, &site, caller.ctx(), person, request)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(plugin = %id, error = %e, "plugin request failed");
            return Err(e.into());
        }
    };
    // The host frames the plugin's page in the shell (see `shell::present_plugin`).
    let answer = response(&app, &id, &site, resp, Reader::Browser);
    Ok(super::shell::present_plugin(&app, &caller, &id, &page_path, answer).await)
}

/// The signed-in person as plugins see them, at `site`. Each plugin receives its own CSRF
/// token, derived from the session's.
pub fn person(app: &App, caller: &Caller, site: &str) -> Person {
    let site_name = app
        .sites
        .get(site)
        .ok()
        .flatten()
        .map(|s| s.name)
        .unwrap_or_else(|| site.to_string());
    Person {
        user: caller.user.username.clone(),
        display_name: caller
            .user
            .display_name
            .clone()
            .unwrap_or_else(|| caller.user.username.clone()),
        roles: caller
            .user
            .roles
            .iter()
            .map(|r| r.as_str().into())
            .collect(),
        permissions: permissions_of(&caller.user.roles)
            .iter()
            .map(|p| p.as_str().into())
            .collect(),
        site: site.to_string(),
        site_name,
        session_csrf: Some(caller.session.csrf.clone()),
    }
}

/// The request headers a plugin receives: all but the caller's credentials (cookies,
/// `Authorization`, the CSRF header), which are the host's to check and never a plugin's to
/// see or replay.
pub(super) fn forwarded_headers(parts: &axum::http::request::Parts) -> Vec<(String, String)> {
    parts
        .headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "cookie" | "authorization" | "proxy-authorization" | "x-csrf-token"
            )
        })
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// Who reads a plugin's answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reader {
    /// A signed-in person's browser: the shell may frame it, same-origin redirects pass.
    Browser,
    /// Another server (`/inbound/…`): no shell headers, no redirects.
    Server,
}

/// Whether a `Location` a plugin sends stays on this server: a path (`/…`, not `//…`).
fn same_origin(location: &str) -> bool {
    location.starts_with('/')
        && !location.starts_with("//")
        && !location.starts_with("/\\")
        && !location.chars().any(|c| c.is_control() || c == '\\')
}

/// A plugin's answer as the browser gets it. Its headers pass an allow-list: content type,
/// language and disposition (downloads), validators (`etag`, `last-modified`), `vary`, `allow`
/// (the methods a 405 lists), and same-origin redirects; `cache-control` is always `private,
/// no-store` (every answer is for a signed-in person). Anything else is dropped and noted in the
/// plugin's log. The host adds its own security headers. For another server (`Reader::Server`)
/// the shell's headers and redirects are dropped too, and its policy forbids everything.
pub(super) fn response(
    app: &App,
    id: &str,
    site: &str,
    r: latest::Response,
    reader: Reader,
) -> Response {
    let browser = reader == Reader::Browser;
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
        let allowed = match name.as_str() {
            "content-type"
            | "content-disposition"
            | "content-language"
            | "etag"
            | "last-modified"
            | "vary"
            // The methods a 405 answer lists (HTTP requires it; the SDK's router sends it).
            | "allow" => true,
            // The host's own: read and removed by the shell when it frames the answer.
            super::shell::FRAME_HEADER | super::shell::PATIENT_HEADER => browser,
            "location" => browser && same_origin(&v),
            // Replaced below, whatever the plugin says.
            "cache-control" => continue,
            _ => false,
        };
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .ok()
            .zip(HeaderValue::from_str(&v).ok());
        match parsed {
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
                "response headers dropped (not on the host's allow-list): {}",
                dropped.join(", ")
            ),
        );
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if browser {
            "private, no-store"
        } else {
            "no-store"
        }),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if browser { CSP } else { SERVER_CSP }),
    );
    // nosniff, frame and referrer headers: the router's `security_headers` layer.
    out
}

#[derive(serde::Serialize, ToSchema)]
struct PluginList {
    plugins: Vec<PluginView>,
}

#[derive(serde::Serialize, ToSchema)]
struct PluginLogs {
    lines: Vec<LogLine>,
}

/// Installed plugins, their state (ready, or failed with the reason) and their state per site.
#[utoipa::path(get, path = "/api/v1/admin/plugins", tag = "plugins",
    responses((status = 200, body = PluginList), (status = 403, body = ErrorBody)))]
async fn list(State(app): State<App>, caller: Caller) -> Result<Response, ApiError> {
    require_audited(
        &app,
        &caller,
        Permission::PluginsManage,
        "plugin.list",
        None,
    )
    .await?;
    Ok(axum::Json(PluginList {
        plugins: app.plugins.list(),
    })
    .into_response())
}

#[utoipa::path(get, path = "/api/v1/admin/plugins/{id}", tag = "plugins",
    params(("id" = String, Path)),
    responses((status = 200, body = PluginView), (status = 404, body = ErrorBody)))]
async fn show(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let resource = Some(format!("Plugin/{id}"));
    require_audited(
        &app,
        &caller,
        Permission::PluginsManage,
        "plugin.list",
        resource,
    )
    .await?;
    let v = app.plugins.view(&id).ok_or(PluginError::NotFound(id))?;
    Ok(axum::Json(v).into_response())
}

/// The last lines the plugin logged (kept in memory, never in the server's log).
#[utoipa::path(get, path = "/api/v1/admin/plugins/{id}/logs", tag = "plugins",
    params(("id" = String, Path)),
    responses((status = 200, body = PluginLogs), (status = 404, body = ErrorBody)))]
async fn logs(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let resource = Some(format!("Plugin/{id}"));
    require_audited(
        &app,
        &caller,
        Permission::PluginsManage,
        "plugin.logs",
        resource,
    )
    .await?;
    app.plugins
        .view(&id)
        .ok_or_else(|| PluginError::NotFound(id.clone()))?;
    Ok(axum::Json(PluginLogs {
        lines: app.plugins.logs(&id),
    })
    .into_response())
}

#[derive(Deserialize)]
struct InstallQuery {
    #[serde(default)]
    dev: bool,
    /// Let a development package replace a signed plugin of the same id, or a lower version.
    #[serde(default)]
    force: bool,
}

/// The largest package body the install route reads: a package's largest component and room
/// for its manifest, signature and archive headers. Packages are not bound by `http.body_limit`
/// (a JavaScript or Python component alone is 12 to 20 MiB); only a signed-in administrator
/// gets this far.
const MAX_PACKAGE: usize = crate::plugins::package::MAX_COMPONENT as usize + (1 << 20);

/// The body is a `.osp` package. `?dev=true` marks an unsigned development package, which
/// the server accepts only when started with `--dev-plugins`.
#[utoipa::path(post, path = "/api/v1/admin/plugins", tag = "plugins",
    params(("dev" = Option<bool>, Query, description = "install an unsigned development package"),
        ("force" = Option<bool>, Query, description = "let it replace a signed plugin of the same id, or a newer version")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = PluginView),
        (status = 400, description = "not a valid package, manifest or component", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, description = "larger than any package may be", body = ErrorBody)))]
async fn install(
    State(app): State<App>,
    caller: Caller,
    axum::extract::Query(q): axum::extract::Query<InstallQuery>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(body, MAX_PACKAGE).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("a plugin package is at most {} MiB", MAX_PACKAGE >> 20),
        )
    })?;
    let view = app
        .plugins
        .install(&caller.ctx(), &body, q.dev, q.force)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

/// Removes the plugin and its state at every site; its stored data is kept for a reinstall.
#[utoipa::path(delete, path = "/api/v1/admin/plugins/{id}", tag = "plugins",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    app.plugins.remove(&caller.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/api/v1/admin/plugins/{id}/sites/{site}/enable", tag = "plugins",
    params(("id" = String, Path), ("site" = String, Path)),
    responses((status = 200, body = SiteState), (status = 404, body = ErrorBody),
        (status = 409, description = "the plugin failed to load", body = ErrorBody)))]
async fn enable(
    State(app): State<App>,
    caller: Caller,
    Path((id, site)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    toggle(&app, &caller, &id, &site, true).await
}

#[utoipa::path(post, path = "/api/v1/admin/plugins/{id}/sites/{site}/disable", tag = "plugins",
    params(("id" = String, Path), ("site" = String, Path)),
    responses((status = 200, body = SiteState), (status = 404, body = ErrorBody)))]
async fn disable(
    State(app): State<App>,
    caller: Caller,
    Path((id, site)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    toggle(&app, &caller, &id, &site, false).await
}

async fn toggle(
    app: &App,
    caller: &Caller,
    id: &str,
    site: &str,
    enabled: bool,
) -> Result<Response, ApiError> {
    let s = app
        .plugins
        .set_enabled(&caller.ctx(), id, site, enabled)
        .await?;
    Ok(axum::Json(s).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Grants {
    /// What the plugin may do when serving a person (within that person's permissions).
    capabilities: Vec<String>,
    /// What it may do with nobody behind it (events the host publishes, scheduled jobs);
    /// unchanged when absent.
    #[serde(default)]
    unattended: Option<Vec<String>>,
}

fn capabilities(list: &[String], field: &str) -> Result<BTreeSet<Capability>, ApiError> {
    let mut set = BTreeSet::new();
    for c in list {
        set.insert(Capability::parse(c).ok_or_else(|| {
            ApiError::invalid(format!(
                "unknown capability '{c}'; capabilities are: {}",
                Capability::ALL.map(|c| c.as_str()).join(", ")
            ))
            .field(field)
        })?);
    }
    Ok(set)
}

/// Sets exactly the capabilities granted at the site (each must be one the manifest asks
/// for): for people's requests, and, when `unattended` is given, for unattended work.
#[utoipa::path(put, path = "/api/v1/admin/plugins/{id}/sites/{site}/grants", tag = "plugins",
    params(("id" = String, Path), ("site" = String, Path)), request_body = Grants,
    responses((status = 200, body = SiteState), (status = 400, body = ErrorBody)))]
async fn grants(
    State(app): State<App>,
    caller: Caller,
    Path((id, site)): Path<(String, String)>,
    super::error::JsonBody(g): super::error::JsonBody<Grants>,
) -> Result<Response, ApiError> {
    let set = capabilities(&g.capabilities, "capabilities")?;
    let unattended = g
        .unattended
        .as_deref()
        .map(|u| capabilities(u, "unattended"))
        .transpose()?;
    let ctx = caller.ctx();
    let mut s = app.plugins.set_grants(&ctx, &id, &site, set).await?;
    if let Some(u) = unattended {
        s = app
            .plugins
            .set_unattended_grants(&ctx, &id, &site, u)
            .await?;
    }
    Ok(axum::Json(s).into_response())
}

/// An interface plugins at a site import or provide, and who provides it there.
#[derive(Serialize, ToSchema)]
struct SiteBinding {
    interface: String,
    /// The plugin bound to provide it; `null` when unbound (calls answer `unavailable`).
    provider: Option<String>,
    /// `automatic`, or the administrator who chose.
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    /// The plugins enabled at the site that provide it.
    candidates: Vec<String>,
    /// The plugins enabled at the site that import it.
    importers: Vec<String>,
}

#[derive(Serialize, ToSchema)]
struct SiteBindings {
    site: String,
    bindings: Vec<SiteBinding>,
}

/// Every interface imported or provided by a plugin enabled at the site, with its binding.
#[utoipa::path(get, path = "/api/v1/admin/sites/{site}/bindings", tag = "plugins",
    params(("site" = String, Path)),
    responses((status = 200, body = SiteBindings), (status = 403, body = ErrorBody)))]
async fn site_bindings(
    State(app): State<App>,
    caller: Caller,
    Path(site): Path<String>,
) -> Result<Response, ApiError> {
    let resource = Some(format!("Site/{site}"));
    require_audited(
        &app,
        &caller,
        Permission::PluginsManage,
        "plugin.list",
        resource,
    )
    .await?;
    Ok(axum::Json(SiteBindings {
        bindings: bindings_at(&app, &site),
        site,
    })
    .into_response())
}

fn bindings_at(app: &App, site: &str) -> Vec<SiteBinding> {
    let list = app.plugins.list();
    let mut interfaces = BTreeSet::new();
    for v in &list {
        if !v.sites.get(site).is_some_and(|s| s.enabled) {
            continue;
        }
        if let Some(b) = v.bindings.get(site) {
            interfaces.extend(b.keys().cloned());
        }
        interfaces.extend(
            v.exports
                .iter()
                .map(|e| e.split('@').next().unwrap_or(e).to_string()),
        );
    }
    interfaces
        .into_iter()
        .map(|interface| {
            let bound = app.plugins.binding(site, &interface);
            let importers = list
                .iter()
                .filter(|v| {
                    v.bindings
                        .get(site)
                        .is_some_and(|b| b.contains_key(&interface))
                })
                .map(|v| v.id.clone())
                .collect();
            SiteBinding {
                candidates: app.plugins.providers(site, &interface),
                provider: bound.as_ref().map(|b| b.provider.clone()),
                by: bound.map(|b| b.by),
                importers,
                interface,
            }
        })
        .collect()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BindRequest {
    /// `namespace:package/interface`, without a version.
    interface: String,
    /// The plugin that is to provide it at the site; `null` to unbind.
    provider: Option<String>,
}

/// Choose which plugin provides an interface at the site (audited). Enabling another provider
/// never changes this; only this does.
#[utoipa::path(put, path = "/api/v1/admin/sites/{site}/bindings", tag = "plugins",
    params(("site" = String, Path)), request_body = BindRequest,
    responses((status = 200, body = SiteBindings), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn bind(
    State(app): State<App>,
    caller: Caller,
    Path(site): Path<String>,
    super::error::JsonBody(b): super::error::JsonBody<BindRequest>,
) -> Result<Response, ApiError> {
    app.plugins
        .bind(&caller.ctx(), &site, &b.interface, b.provider.as_deref())
        .await?;
    Ok(axum::Json(SiteBindings {
        bindings: bindings_at(&app, &site),
        site,
    })
    .into_response())
}

/// The plugin's events: figures since the server started, waiting and parked deliveries.
#[utoipa::path(get, path = "/api/v1/admin/plugins/{id}/events", tag = "plugins",
    params(("id" = String, Path)),
    responses((status = 200, body = EventsView), (status = 404, body = ErrorBody)))]
async fn events(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let resource = Some(format!("Plugin/{id}"));
    require_audited(
        &app,
        &caller,
        Permission::PluginsManage,
        "plugin.list",
        resource,
    )
    .await?;
    let v = app.plugins.view(&id).ok_or(PluginError::NotFound(id))?;
    Ok(axum::Json(v.events).into_response())
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct RetryRequest {
    /// One parked delivery (its `key`); every parked delivery of the plugin when absent.
    #[serde(default)]
    key: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct Requeued {
    requeued: usize,
}

/// Deliver parked events again (from a fresh count of attempts).
#[utoipa::path(post, path = "/api/v1/admin/plugins/{id}/events/retry", tag = "plugins",
    params(("id" = String, Path)), request_body = RetryRequest,
    responses((status = 200, body = Requeued), (status = 404, body = ErrorBody)))]
async fn retry_events(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    super::error::JsonBody(r): super::error::JsonBody<RetryRequest>,
) -> Result<Response, ApiError> {
    let requeued = app
        .plugins
        .retry_parked(&caller.ctx(), &id, r.key.as_deref())
        .await?;
    Ok(axum::Json(Requeued { requeued }).into_response())
}

/// Body: `{"key": value, …}`; `null` restores a key's default.
#[utoipa::path(put, path = "/api/v1/admin/plugins/{id}/sites/{site}/config", tag = "plugins",
    params(("id" = String, Path), ("site" = String, Path)), request_body = Object,
    responses((status = 200, body = SiteState), (status = 400, body = ErrorBody)))]
async fn config(
    State(app): State<App>,
    caller: Caller,
    Path((id, site)): Path<(String, String)>,
    super::error::JsonBody(values): super::error::JsonBody<
        serde_json::Map<String, serde_json::Value>,
    >,
) -> Result<Response, ApiError> {
    let ctx = caller.ctx();
    let mut state = app.plugins.site_state(&id, &site);
    for (k, v) in values {
        let value = match v {
            serde_json::Value::Null => None,
            v => Some(serde_json::from_value::<ConfigValue>(v).map_err(|_| {
                ApiError::invalid(format!("setting '{k}': not a text, number or boolean"))
                    .field(k.clone())
            })?),
        };
        state = app.plugins.set_config(&ctx, &id, &site, &k, value).await?;
    }
    Ok(axum::Json(state).into_response())
}

/// Where the plugin's chart panels go at the site. Body: `{"<panel id>": position, …}`
/// (lower first; `null` back to the default place, after the placed panels).
#[utoipa::path(put, path = "/api/v1/admin/plugins/{id}/sites/{site}/panels", tag = "plugins",
    params(("id" = String, Path), ("site" = String, Path)), request_body = Object,
    responses((status = 200, body = SiteState), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn panel_positions(
    State(app): State<App>,
    caller: Caller,
    Path((id, site)): Path<(String, String)>,
    super::error::JsonBody(values): super::error::JsonBody<
        serde_json::Map<String, serde_json::Value>,
    >,
) -> Result<Response, ApiError> {
    let mut positions = std::collections::BTreeMap::new();
    for (k, v) in values {
        let position = match v {
            serde_json::Value::Null => None,
            v => Some(v.as_u64().filter(|n| *n <= 10_000).ok_or_else(|| {
                ApiError::invalid(format!(
                    "panel '{k}': a position is a whole number from 0 to 10000, or null"
                ))
                .field(k.clone())
            })? as u32),
        };
        positions.insert(k, position);
    }
    let state = app
        .plugins
        .set_panel_positions(&caller.ctx(), &id, &site, positions)
        .await?;
    Ok(axum::Json(state).into_response())
}

#[derive(Deserialize, ToSchema)]
struct RegistryInstall {
    /// `<id>`, `<id>@<semver requirement>` or `<id>@=<exact version>`.
    plugin: String,
    /// Allow a version lower than the installed one.
    #[serde(default)]
    force: bool,
}

/// What an install or update did to each plugin (the requested one last, after any plugin it
/// needed for an imported interface).
#[derive(Serialize, ToSchema)]
struct Results {
    results: Vec<registry::Installed>,
}

/// Install from the configured registries: resolve, download, verify (metadata signatures,
/// versions, expiry, hash, length, publisher signature and delegation), compile, install.
/// A new version that asks for more access than the installed one is staged, not installed.
#[utoipa::path(post, path = "/api/v1/admin/registry/install", tag = "plugins",
    request_body = RegistryInstall,
    responses((status = 200, body = Results),
        (status = 404, description = "no configured registry lists the plugin", body = ErrorBody),
        (status = 409, description = "no version fits (yanked, API, downgrade, missing provider)", body = ErrorBody),
        (status = 422, description = "the registry's metadata or package was refused", body = ErrorBody),
        (status = 502, description = "the registry cannot be reached", body = ErrorBody)))]
async fn registry_install(
    State(app): State<App>,
    caller: Caller,
    axum::Json(req): axum::Json<RegistryInstall>,
) -> Result<Response, ApiError> {
    let results = registry::install(
        &app.plugins,
        &caller.ctx(),
        &req.plugin,
        req.force,
        &registry::no_progress,
    )
    .await?;
    Ok(axum::Json(Results { results }).into_response())
}

#[derive(Deserialize, ToSchema, Default)]
struct RegistryUpdate {
    /// One plugin; all plugins installed from registries when absent.
    #[serde(default)]
    plugin: Option<String>,
}

/// Update one plugin, or every plugin installed from a registry, to its newest usable version.
#[utoipa::path(post, path = "/api/v1/admin/registry/update", tag = "plugins",
    request_body = RegistryUpdate,
    responses((status = 200, body = Results), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn registry_update(
    State(app): State<App>,
    caller: Caller,
    axum::Json(req): axum::Json<RegistryUpdate>,
) -> Result<Response, ApiError> {
    let results = registry::update(
        &app.plugins,
        &caller.ctx(),
        req.plugin.as_deref(),
        &registry::no_progress,
    )
    .await?;
    Ok(axum::Json(Results { results }).into_response())
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

#[derive(Serialize, ToSchema)]
struct Found {
    plugins: Vec<registry::Found>,
}

/// Plugins in the configured registries whose id, name or description contains `q`.
#[utoipa::path(get, path = "/api/v1/admin/registry/search", tag = "plugins",
    params(("q" = Option<String>, Query)),
    responses((status = 200, body = Found), (status = 422, body = ErrorBody)))]
async fn registry_search(
    State(app): State<App>,
    caller: Caller,
    axum::extract::Query(q): axum::extract::Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let plugins = registry::search(&app.plugins, &caller.ctx(), &q.q).await?;
    Ok(axum::Json(Found { plugins }).into_response())
}

/// Return to the version installed before the current one (kept on disk).
#[utoipa::path(post, path = "/api/v1/admin/plugins/{id}/rollback", tag = "plugins",
    params(("id" = String, Path)),
    responses((status = 200, body = PluginView), (status = 404, body = ErrorBody),
        (status = 409, description = "no earlier version", body = ErrorBody)))]
async fn rollback(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(app.plugins.rollback(&caller.ctx(), &id).await?).into_response())
}

#[derive(Serialize, ToSchema)]
struct Approved {
    plugin: PluginView,
    /// What the approved version asks for that the previous one did not.
    added: Vec<String>,
}

/// Install the staged version that asks for more access than the installed one.
#[utoipa::path(post, path = "/api/v1/admin/plugins/{id}/approve", tag = "plugins",
    params(("id" = String, Path)),
    responses((status = 200, body = Approved), (status = 404, body = ErrorBody),
        (status = 409, description = "nothing is staged", body = ErrorBody)))]
async fn approve(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (plugin, added) = app.plugins.approve(&caller.ctx(), &id).await?;
    Ok(axum::Json(Approved { plugin, added }).into_response())
}
