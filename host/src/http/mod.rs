//! HTTP: the JSON API under `/api/v1`, the browser pages in their shell, health checks, and
//! the server.
//!
//! Request logs carry the method, the route *template* (`/api/v1/patients/{id}`), the status
//! and the latency — never the concrete path or query, which can hold patient data.

pub mod admin;
pub mod api;
pub mod assets;
pub mod banner;
pub mod caller;
pub mod error;
pub mod frame;
pub mod inbound;
pub mod pages;
pub mod plugins;
pub mod portal;
pub mod research;
pub mod shell;
pub mod uniform;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tower_http::trace::TraceLayer;

use crate::app::App;
pub use caller::Caller;
pub use error::ApiError;

/// The whole HTTP surface.
pub fn router(app: App) -> Router {
    let limit = app.config.http.body_limit;
    let (api, openapi) = api::router().split_for_parts();
    let mut openapi = serde_json::to_value(&openapi).expect("openapi serialises");
    uniform::complete_document(&mut openapi);
    let openapi_json = openapi.to_string();
    Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move |_c: Caller| async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    openapi_json.clone(),
                )
            }),
        )
        .merge(pages::router())
        .merge(admin::router())
        .merge(plugins::router())
        .merge(inbound::router())
        .merge(assets::router())
        .route("/healthz", axum::routing::get(healthz))
        .route("/readyz", axum::routing::get(readyz))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            shell::browser_errors,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            uniform::uniform,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_else(|| "(unmatched)".into());
                    tracing::info_span!("http", method = %req.method(), route = %route)
                })
                .on_request(())
                .on_response(
                    |res: &axum::response::Response, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(
                            status = res.status().as_u16(),
                            latency_ms = latency.as_secs_f64() * 1000.0,
                            "request"
                        );
                    },
                )
                .on_failure(()),
        )
        .with_state(app)
}

/// Security headers on every answer that does not set its own (plugin answers do).
async fn security_headers(mut res: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = res.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(shell::HOST_CSP));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    res
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(axum::extract::State(app): axum::extract::State<App>) -> impl IntoResponse {
    match app
        .storage
        .get(crate::storage::Tree::Meta, b"schema_version")
    {
        Ok(Some(_)) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "storage unavailable"})),
        ),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such endpoint")
}

/// Serve until SIGTERM or Ctrl-C, then finish in-flight requests and flush.
pub async fn serve(app: App, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let storage = app.storage.clone();
    let audit = app.audit.clone();
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    storage.durable().await?;
    // Sign the trail's head as it stands at the stop.
    tokio::task::spawn_blocking(move || audit.seal()).await??;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
