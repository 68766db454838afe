//! Who is calling: the session behind a request, resolved by the host from a bearer token or
//! the session cookie — never from anything else the client says about itself.
//!
//! Cookie-authenticated requests that change something must carry the session's CSRF token
//! (`X-CSRF-Token` header, or the `csrf` form field checked by the page handlers).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};

use crate::access::Ctx;
use crate::app::App;
use crate::auth::{Session, User, secrets_equal};
use crate::http::ApiError;

pub const SESSION_COOKIE: &str = "osler_session";
pub const SITE_HEADER: &str = "x-osler-site";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token: String,
    pub session: Session,
    pub user: User,
    /// The site this request acts at.
    pub site: Option<String>,
    pub source: Option<IpAddr>,
    pub via_cookie: bool,
}

impl Caller {
    pub fn ctx(&self) -> Ctx {
        Ctx {
            user: self.user.username.clone(),
            roles: self.user.roles.clone(),
            site: self.site.clone(),
            patient: self.user.patient.clone(),
            source: self.source.map(|s| s.to_string()),
            via: None,
            plugin: None,
        }
    }
}

pub fn source_of(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The value of one cookie.
pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// The session token of a request: `Authorization: Bearer`, else the session cookie.
pub fn token_of(parts: &Parts) -> Option<(String, bool)> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let t = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))?;
        return Some((t.trim().to_string(), false));
    }
    cookie(parts, SESSION_COOKIE).map(|t| (t, true))
}

/// Resolve the caller without the CSRF check (the page handlers check their form field).
pub fn resolve(parts: &Parts, app: &App) -> Result<Option<Caller>, ApiError> {
    let Some((token, via_cookie)) = token_of(parts) else {
        return Ok(None);
    };
    let Some((session, user)) = app.accounts.resolve(&token)? else {
        return Ok(None);
    };
    let site = match parts.headers.get(SITE_HEADER) {
        Some(v) => {
            let s = v.to_str().unwrap_or("").to_string();
            if !user.sites.contains(&s) {
                return Err(ApiError::forbidden(format!(
                    "you do not belong to site '{s}'; your sites are: {}",
                    user.sites.join(", ")
                ))
                .field(SITE_HEADER));
            }
            Some(s)
        }
        None => session
            .site
            .clone()
            .filter(|s| user.sites.contains(s))
            .or_else(|| user.sites.first().cloned()),
    };
    Ok(Some(Caller {
        token,
        session,
        user,
        site,
        source: source_of(parts),
        via_cookie,
    }))
}

impl Caller {
    /// A cookie-authenticated request that changes something must carry the session's CSRF
    /// token: in the `X-CSRF-Token` header, or (for a plain form post) `form_field`.
    pub fn check_csrf(&self, parts: &Parts, form_field: Option<String>) -> Result<(), ApiError> {
        let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !(self.via_cookie && unsafe_method) {
            return Ok(());
        }
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or(form_field)
            .unwrap_or_default();
        if secrets_equal(&sent, &self.session.csrf) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "a request authenticated by cookie must carry the session's CSRF token in the \
                 X-CSRF-Token header (or, for a form, its _csrf field)",
            )
            .field(CSRF_HEADER))
        }
    }
}

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let caller = resolve(parts, app)?.ok_or_else(ApiError::unauthenticated)?;
        caller.check_csrf(parts, None)?;
        Ok(caller)
    }
}
