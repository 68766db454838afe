//! Who is calling: the session behind a request, resolved by the host from a bearer token or
//! the session cookie — never from anything else the client says about itself.
//!
//! Cookie-authenticated requests that change something must carry the session's CSRF token
//! (`X-CSRF-Token` header, or the `csrf` form field checked by the page handlers).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};

use crate::access::{Check, Ctx, Need, Refusal};
use crate::app::App;
use crate::auth::{Session, User, secrets_equal};
use crate::config::Network;
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
        Ctx::person(
            &self.user.username,
            self.user.roles.clone(),
            self.site.clone(),
            self.user.patient.clone(),
            self.source.map(|s| s.to_string()),
        )
    }
}

/// The client's address: the peer's, or — when the peer is one of the `trusted` proxies —
/// the nearest address in `X-Forwarded-For` (read right to left) that is not itself a trusted
/// proxy. A hop that is not an address ends the walk at the last trusted one, so a client can
/// never choose its own address by sending the header.
pub fn source_of(parts: &Parts, trusted: &[Network]) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let hop = hop.trim();
        let Some(ip) = hop
            .parse::<IpAddr>()
            .ok()
            .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
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
/// A site the user does not belong to (`X-Osler-Site`) is refused, unrecorded: the
/// extractor ([`Caller`]) records it.
pub fn resolve(parts: &Parts, app: &App) -> Result<Option<Caller>, ApiError> {
    match resolve_person(parts, app)? {
        None => Ok(None),
        Some(Err((_, refusal))) => Err(refusal),
        Some(Ok(caller)) => Ok(Some(caller)),
    }
}

/// The session's person, and either the caller acting at the site asked for or, when the user
/// does not belong to that site, a context for the refusal's audit entry and the refusal.
type Resolved = Result<Caller, (Ctx, ApiError)>;

fn resolve_person(parts: &Parts, app: &App) -> Result<Option<Resolved>, ApiError> {
    let Some((token, via_cookie)) = token_of(parts) else {
        return Ok(None);
    };
    let Some((session, user)) = app.accounts.resolve(&token)? else {
        return Ok(None);
    };
    let source = source_of(parts, &app.config.http.trusted_proxies);
    let site = match parts.headers.get(SITE_HEADER) {
        Some(v) => {
            let s = v.to_str().unwrap_or("").to_string();
            if !user.sites.contains(&s) {
                let refusal = ApiError::forbidden(format!(
                    "you do not belong to site '{s}'; your sites are: {}",
                    user.sites.join(", ")
                ))
                .field(SITE_HEADER);
                let ctx = Ctx {
                    user: user.username.clone(),
                    principal: crate::access::Principal::Person,
                    roles: user.roles.clone(),
                    // Where the request claimed to act, for the record.
                    site: Some(s),
                    patient: user.patient.clone(),
                    source: source.map(|s| s.to_string()),
                    via: None,
                    plugin: None,
                };
                return Ok(Some(Err((ctx, refusal))));
            }
            Some(s)
        }
        None => session
            .site
            .clone()
            .filter(|s| user.sites.contains(s))
            .or_else(|| user.sites.first().cloned()),
    };
    Ok(Some(Ok(Caller {
        token,
        session,
        user,
        site,
        source,
        via_cookie,
    })))
}

/// The audit action and patient of a request, for recording a refusal made before its handler
/// ran: on a patient route, the patient operation the method names (`patient.read`,
/// `patient.update`, `patient.delete`, …); elsewhere `http.request` with the route.
pub(crate) fn action_of(method: &Method, path: &str) -> (String, Option<String>) {
    const PATIENTS: &str = "/api/v1/patients";
    let patient = path
        .strip_prefix(PATIENTS)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .map(|id| {
            percent_encoding::percent_decode_str(id)
                .decode_utf8()
                .map(|s| s.into_owned())
                .unwrap_or_else(|_| "(not UTF-8)".to_string())
        });
    let on_patients = path == PATIENTS || patient.is_some();
    if !on_patients {
        return ("http.request".into(), None);
    }
    let action = match (method, &patient) {
        (&Method::GET | &Method::HEAD, None) => "patient.search".to_string(),
        (&Method::POST, None) => "patient.create".to_string(),
        (&Method::GET | &Method::HEAD, Some(_)) => "patient.read".to_string(),
        (&Method::PUT, Some(_)) => "patient.update".to_string(),
        (&Method::DELETE, Some(_)) => "patient.delete".to_string(),
        (m, _) => format!("patient.{}", m.as_str().to_ascii_lowercase()),
    };
    (action, patient)
}

/// Record, through the gate, a refusal of `parts` made before its handler ran; the refusal
/// itself unless the record could not be made.
pub(crate) async fn record_refusal(
    app: &App,
    ctx: &Ctx,
    method: &Method,
    path: &str,
    refusal: ApiError,
) -> ApiError {
    let (action, patient) = action_of(method, path);
    let mut check = Check::new(&action, Need::Nothing);
    if let Some(p) = &patient {
        check = check.patient(p);
    } else if action == "http.request" {
        check = check.resource(format!("{method} {path}"));
    }
    match app
        .gate
        .deny(ctx, check, refusal.body.message.clone())
        .await
    {
        Refusal::Denied(_) => refusal,
        Refusal::Audit(e) => e.into(),
    }
}

impl Caller {
    /// A cookie-authenticated request that changes something must carry the session's CSRF
    /// token: in the `X-CSRF-Token` header, or (for a plain form post) `form_field`.
    pub fn check_csrf(&self, parts: &Parts, form_field: Option<String>) -> Result<(), ApiError> {
        self.check_csrf_token(parts, form_field, &self.session.csrf)
    }

    /// [`Caller::check_csrf`] against `expected`: the session's token for the host's own
    /// routes, a plugin's own token (derived from it) for that plugin's routes.
    pub fn check_csrf_token(
        &self,
        parts: &Parts,
        form_field: Option<String>,
        expected: &str,
    ) -> Result<(), ApiError> {
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
        if secrets_equal(&sent, expected) {
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

    /// Refusals of a signed-in person (a site they do not belong to, a missing CSRF token)
    /// are recorded in the audit trail, like every refusal the gate makes.
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let caller = match resolve_person(parts, app)? {
            None => return Err(ApiError::unauthenticated()),
            Some(Err((ctx, refusal))) => {
                let path = parts.uri.path().to_string();
                return Err(record_refusal(app, &ctx, &parts.method, &path, refusal).await);
            }
            Some(Ok(caller)) => caller,
        };
        if let Err(refusal) = caller.check_csrf(parts, None) {
            let path = parts.uri.path().to_string();
            return Err(record_refusal(app, &caller.ctx(), &parts.method, &path, refusal).await);
        }
        Ok(caller)
    }
}
