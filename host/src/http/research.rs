//! The research sandbox over HTTP: researchers' runs under `/api/v1/research`, and the
//! administrators' `/api/v1/admin/research` (install for named researchers and sites, budgets,
//! small-cell threshold, removal). See `plugins::research`.
//!
//! A research plugin is invisible to everyone it is not placed for: another user, a researcher
//! not named, or a named researcher at another site gets 404 on its routes (and the attempt is
//! on the audit trail). It has no route under `/plugins/` and no entry under
//! `/api/v1/admin/plugins`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Caller;
use super::error::{ApiError, ErrorBody, JsonBody};
use crate::app::App;
use crate::plugins::research::{ResearchError, ResearchView, RunRecord, Settings};

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(mine))
        .routes(routes!(start_run, list_runs))
        .routes(routes!(show_run))
        .routes(routes!(admin_list, admin_install))
        .routes(routes!(admin_show, admin_configure, admin_remove))
}

impl From<ResearchError> for ApiError {
    fn from(e: ResearchError) -> Self {
        match e {
            ResearchError::NotFound(_) | ResearchError::NoRun(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", e.to_string())
            }
            ResearchError::Invalid(m) => ApiError::invalid(m),
            ResearchError::Busy(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", m),
            ResearchError::Failed { run, message } => {
                let (status, code) = match run.outcome.as_str() {
                    "fuel-exhausted" => (StatusCode::UNPROCESSABLE_ENTITY, "fuel-exhausted"),
                    "memory-limit" => (StatusCode::UNPROCESSABLE_ENTITY, "memory-limit"),
                    "timeout" => (StatusCode::GATEWAY_TIMEOUT, "run-timeout"),
                    "plugin-error" => (StatusCode::UNPROCESSABLE_ENTITY, "plugin-error"),
                    _ => (StatusCode::BAD_GATEWAY, "run-failed"),
                };
                ApiError::new(status, code, message)
            }
            ResearchError::Plugin(e) => e.into(),
        }
    }
}

/// The research plugins placed for the signed-in researcher at the current site (an empty
/// list for anyone else).
#[utoipa::path(get, path = "/api/v1/research", tag = "research",
    responses((status = 200, body = Vec<ResearchView>)))]
async fn mine(State(app): State<App>, caller: Caller) -> Result<Response, ApiError> {
    Ok(axum::Json(app.plugins.research_for(&caller.ctx())).into_response())
}

/// A run's request.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunRequest {
    /// The plugin's parameters, a JSON object (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    parameters: Option<serde_json::Value>,
    /// The time the plugin sees (RFC 3339), to repeat an earlier run exactly; default now.
    #[serde(default)]
    as_of: Option<String>,
}

/// Runs the plugin for the signed-in researcher (one it is placed for, at a site it is placed
/// at). The run is recorded and audited whatever happens; one that does not succeed answers
/// with an error naming its outcome (`fuel-exhausted` states the budget) and its run id.
#[utoipa::path(post, path = "/api/v1/research/{plugin}/runs", tag = "research",
    params(("plugin" = String, Path)), request_body = RunRequest,
    responses((status = 201, body = RunRecord),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "the run used its whole fuel budget or memory, or the plugin returned an error", body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn start_run(
    State(app): State<App>,
    caller: Caller,
    Path(plugin): Path<String>,
    JsonBody(req): JsonBody<RunRequest>,
) -> Result<Response, ApiError> {
    let ctx = caller.ctx();
    let Some(site) = caller.site.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no research plugin '{plugin}' here"),
        ));
    };
    let as_of = req
        .as_of
        .as_deref()
        .map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(
                |_| {
                    ApiError::invalid("asOf must be an RFC 3339 time, e.g. 2026-12-01T09:00:00Z")
                        .field("asOf")
                },
            )
        })
        .transpose()?;
    let person = super::plugins::person(&app, &caller, &site);
    let parameters = req
        .parameters
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    let run = app
        .plugins
        .run_research(&ctx, person, &plugin, parameters, as_of)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(run)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    /// At most this many (1 to 500, default 50).
    limit: Option<usize>,
}

/// The plugin's runs, newest first: the researcher's own, or everyone's for an administrator.
#[utoipa::path(get, path = "/api/v1/research/{plugin}/runs", tag = "research",
    params(("plugin" = String, Path), ("limit" = Option<usize>, Query, description = "at most this many (1 to 500, default 50)")),
    responses((status = 200, body = Vec<RunRecord>), (status = 404, body = ErrorBody)))]
async fn list_runs(
    State(app): State<App>,
    caller: Caller,
    Path(plugin): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let runs = app
        .plugins
        .research_runs(&caller.ctx(), &plugin, limit)
        .await?;
    Ok(axum::Json(runs).into_response())
}

/// One run: for the researcher who ran it, or an administrator.
#[utoipa::path(get, path = "/api/v1/research/{plugin}/runs/{run}", tag = "research",
    params(("plugin" = String, Path), ("run" = String, Path)),
    responses((status = 200, body = RunRecord), (status = 404, body = ErrorBody)))]
async fn show_run(
    State(app): State<App>,
    caller: Caller,
    Path((plugin, run)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let run = app
        .plugins
        .research_run(&caller.ctx(), &plugin, &run)
        .await?;
    Ok(axum::Json(run).into_response())
}

/// Every research plugin, with its placement and budgets.
#[utoipa::path(get, path = "/api/v1/admin/research", tag = "research",
    responses((status = 200, body = Vec<ResearchView>), (status = 403, body = ErrorBody)))]
async fn admin_list(State(app): State<App>, caller: Caller) -> Result<Response, ApiError> {
    Ok(axum::Json(app.plugins.list_research(&caller.ctx()).await?).into_response())
}

/// Where and for whom an uploaded research plugin runs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InstallQuery {
    /// User names of the researchers, comma-separated.
    #[serde(default)]
    researchers: Option<String>,
    /// Site ids, comma-separated.
    #[serde(default)]
    sites: Option<String>,
    #[serde(default)]
    fuel: Option<u64>,
    #[serde(default)]
    memory_mib: Option<u64>,
    #[serde(default)]
    threshold: Option<u64>,
}

fn list_of(s: Option<String>) -> Vec<String> {
    s.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

const MAX_PACKAGE: usize = crate::plugins::package::MAX_COMPONENT as usize + (1 << 20);

/// Installs (or upgrades) a research plugin from a package (`.osp`, unsigned or self-signed),
/// for the researchers and at the sites named. Its component is checked before compiling: it
/// may import only log, config, kv and patients-deidentified.
#[utoipa::path(post, path = "/api/v1/admin/research", tag = "research",
    params(("researchers" = Option<String>, Query, description = "researchers' user names, comma-separated"),
        ("sites" = Option<String>, Query, description = "site ids, comma-separated"),
        ("fuel" = Option<u64>, Query), ("memoryMib" = Option<u64>, Query),
        ("threshold" = Option<u64>, Query, description = "small-cell threshold: counts below it are suppressed")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = ResearchView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
async fn admin_install(
    State(app): State<App>,
    caller: Caller,
    Query(q): Query<InstallQuery>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(body, MAX_PACKAGE).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("a plugin package is at most {} MiB", MAX_PACKAGE >> 20),
        )
    })?;
    let settings = Settings {
        researchers: list_of(q.researchers),
        sites: list_of(q.sites),
        fuel: q.fuel,
        memory_mib: q.memory_mib,
        threshold: q.threshold,
    };
    let view = app
        .plugins
        .install_research(&caller.ctx(), &body, settings)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

#[utoipa::path(get, path = "/api/v1/admin/research/{id}", tag = "research",
    params(("id" = String, Path)),
    responses((status = 200, body = ResearchView), (status = 404, body = ErrorBody)))]
async fn admin_show(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(app.plugins.show_research(&caller.ctx(), &id).await?).into_response())
}

/// Sets the researchers, sites, budgets and small-cell threshold (absent budgets: the host's
/// defaults; absent threshold: off).
#[utoipa::path(put, path = "/api/v1/admin/research/{id}", tag = "research",
    params(("id" = String, Path)), request_body = Settings,
    responses((status = 200, body = ResearchView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn admin_configure(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(s): JsonBody<Settings>,
) -> Result<Response, ApiError> {
    let view = app
        .plugins
        .configure_research(&caller.ctx(), &id, s)
        .await?;
    Ok(axum::Json(view).into_response())
}

/// Removes the research plugin and wipes its storage; the records of its runs stay.
#[utoipa::path(delete, path = "/api/v1/admin/research/{id}", tag = "research",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn admin_remove(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    app.plugins.remove_research(&caller.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
