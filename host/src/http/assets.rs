//! The host's static files — its stylesheets and its one script — compiled into the binary and
//! served under `/static/` without a session (they hold no data).
//!
//! - `osler.css`: the host's pages: the components and the shell (header, banner, layouts);
//! - `plugin.css`: the components alone, put first inside every plugin page's shadow root, so
//!   that plugin pages look like the host's without shipping a stylesheet of their own;
//! - `patients.js`: live help on the patient form (check digit, duplicates).
//!
//! The host's pages link them with `?v=<content hash>` and such a URL is cached for a year; a
//! URL without the current hash (a plugin's link to `/static/plugin.css`) is revalidated.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::http::ApiError;

/// One static file.
pub struct Asset {
    pub name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

pub const OSLER_CSS: Asset = Asset {
    name: "osler.css",
    content_type: "text/css; charset=utf-8",
    body: concat!(
        include_str!("../../assets/components.css"),
        include_str!("../../assets/shell.css")
    ),
};

pub const PLUGIN_CSS: Asset = Asset {
    name: "plugin.css",
    content_type: "text/css; charset=utf-8",
    body: include_str!("../../assets/components.css"),
};

pub const PATIENTS_JS: Asset = Asset {
    name: "patients.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("../../assets/patients.js"),
};

const ALL: [&Asset; 3] = [&OSLER_CSS, &PLUGIN_CSS, &PATIENTS_JS];

impl Asset {
    /// The first 16 hex digits of the content's sha256.
    fn hash(&self) -> &'static str {
        static HASHES: OnceLock<Vec<String>> = OnceLock::new();
        let hashes = HASHES.get_or_init(|| {
            ALL.iter()
                .map(|a| hex::encode(&Sha256::digest(a.body.as_bytes())[..8]))
                .collect()
        });
        let i = ALL
            .iter()
            .position(|a| a.name == self.name)
            .expect("every asset is listed in ALL");
        &hashes[i]
    }

    /// The path to link, with the content hash that makes it cacheable.
    pub fn url(&self) -> String {
        format!("/static/{}?v={}", self.name, self.hash())
    }

    /// The path without its version.
    pub fn path(&self) -> String {
        format!("/static/{}", self.name)
    }
}

pub fn router() -> Router<App> {
    Router::new().route("/static/{name}", get(serve))
}

#[derive(serde::Deserialize)]
struct Version {
    v: Option<String>,
}

async fn serve(
    Path(name): Path<String>,
    Query(q): Query<Version>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(asset) = ALL.iter().find(|a| a.name == name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no static file '{name}'"),
        ));
    };
    let etag = format!("\"{}\"", asset.hash());
    let cache = if q.v.as_deref() == Some(asset.hash()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex is a valid header"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}
