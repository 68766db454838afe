//! The JSON API under `/api/v1`. The OpenAPI document is generated from these handlers'
//! annotations (utoipa), so it cannot drift from the routes that exist.

use std::net::IpAddr;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Check, Need, Permission, Role, permissions_of};
use crate::app::App;
use crate::audit::{AuditEntry, AuditPage, AuditQuery, Verification};
use crate::auth::{AuthError, User, UserView};
use crate::http::ApiError;
use crate::http::caller::{Caller, cookie, source_of};
use crate::http::error::{ErrorBody, JsonBody};
use crate::http::pages::PartsOf;
use crate::http::uniform::Params;
use crate::patients::{Patient, SearchQuery, version_of};
use crate::sites::Site;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Osler API",
        description = "The Osler EMR host API. Authenticate with POST /api/v1/auth/login and send \
                       the token as `Authorization: Bearer <token>`. Errors are \
                       `{\"error\":{\"code\",\"message\",\"field\"?}}`.",
        version = "1"
    ),
    components(schemas(ErrorBody, AuditEntry)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;
impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(switch_site))
        .routes(routes!(create_patient, search_patients))
        // No DELETE: charts are never deleted, and DELETE is refused (405) like any other
        // method a route does not take (see `uniform` for its message).
        .routes(routes!(read_patient, update_patient))
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(set_password))
        .routes(routes!(list_sites, create_site))
        .routes(routes!(rename_site))
        .routes(routes!(query_audit))
        .routes(routes!(verify_audit))
        .merge(super::plugins::admin_router())
        .merge(super::research::router())
}

/// The client address of a request (see [`source_of`] for proxies).
pub struct Source(pub Option<IpAddr>);

impl FromRequestParts<App> for Source {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(Source(source_of(parts, &app.config.http.trusted_proxies)))
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-in

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The site to act at (default: the user's first site).
    #[serde(default)]
    pub site: Option<String>,
    /// The device token of an earlier sign-in to this name from this device (browsers send
    /// the device cookie instead).
    #[serde(default)]
    pub device: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub user: UserView,
    pub site: Option<String>,
    /// Keep it and send it as `device` at the next sign-in from this device.
    pub device: Option<String>,
}

/// A successful sign-in.
pub struct SignedIn {
    /// The session token (shown once).
    pub token: String,
    pub session: crate::auth::Session,
    pub user: User,
    /// A fresh device token for the browser to keep ([`device_cookie`]).
    pub device: Option<String>,
}

/// The name of the cookie that remembers a device for one user name.
pub fn device_cookie_name(username: &str) -> String {
    format!("osler_device_{username}")
}

/// The `Set-Cookie` value that remembers this device for the signed-in user.
pub fn device_cookie(s: &SignedIn, secure: bool) -> Option<HeaderValue> {
    let token = s.device.as_deref()?;
    let mut c = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        device_cookie_name(&s.user.username),
        crate::auth::DEVICE_SECONDS
    );
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

/// Outcome of a sign-in attempt, shared by the API and the sign-in page. `device`: the device
/// token the request carried for this user name, if any (see [`crate::auth::Throttle`]).
pub async fn sign_in(
    app: &App,
    username: &str,
    password: &str,
    site: Option<String>,
    source: Option<IpAddr>,
    device: Option<&str>,
) -> Result<SignedIn, ApiError> {
    let src = source.map(|s| s.to_string());
    let known = app.accounts.get(username)?.is_some();
    let actor = if known {
        username.to_string()
    } else {
        "anonymous".to_string()
    };
    let event = |outcome: &str, role: String| crate::audit::Event {
        actor: actor.clone(),
        role,
        site: site.clone(),
        action: "auth.login".into(),
        outcome: outcome.into(),
        source: src.clone(),
        resource: known.then(|| format!("User/{username}")),
        ..Default::default()
    };
    let device_id = device.and_then(|d| app.accounts.device_id(username, d));
    // Counted (as a failure until proven otherwise) before the password is checked.
    let attempt = match app.throttle.begin(username, source, device_id.as_deref()) {
        Ok(a) => a,
        Err(e) => {
            app.audit
                .record_durable(event("locked", String::new()))
                .await?;
            return Err(e.into());
        }
    };
    if !attempt.delay.is_zero() {
        tokio::time::sleep(attempt.delay).await;
    }
    let (u, p) = (username.to_string(), password.to_string());
    let accounts = app.accounts.clone();
    // argon2 is deliberately slow: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || accounts.authenticate(&u, &p))
        .await
        .map_err(ApiError::internal)?;
    let user = match result {
        Ok(user) => user,
        Err(AuthError::BadCredentials) => {
            app.throttle.failed(attempt);
            app.audit
                .record_durable(event("failure", String::new()))
                .await?;
            return Err(AuthError::BadCredentials.into());
        }
        Err(e) => return Err(e.into()),
    };
    app.throttle.succeeded(attempt);
    if let Some(s) = &site
        && !user.sites.contains(s)
    {
        app.audit
            .record_durable(event("denied", String::new()))
            .await?;
        return Err(ApiError::forbidden(format!(
            "you do not belong to site '{s}'; your sites are: {}",
            user.sites.join(", ")
        ))
        .field("site"));
    }
    let (token, session, batch) = app.accounts.new_session(&user, site.clone());
    let roles = user
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let mut ev = event("success", roles);
    ev.site = session.site.clone();
    if device_id.is_some() {
        ev.detail = Some("from a device that signed in to this name before".into());
    }
    app.commit_audited(&batch, ev).await?;
    Ok(SignedIn {
        device: app.accounts.device_token(&user.username),
        token,
        session,
        user,
    })
}

/// Sign in and receive a session token. A browser also receives a device cookie: its later
/// sign-ins to this name are slowed down, never locked out, while others fail to guess the
/// password (API clients may send the `device` token back instead).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "wrong user name or password", body = ErrorBody),
        (status = 429, description = "locked after repeated failures", body = ErrorBody)))]
async fn login(
    State(app): State<App>,
    Source(source): Source,
    PartsOf(parts): PartsOf,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let presented = req
        .device
        .clone()
        .or_else(|| cookie(&parts, &device_cookie_name(&req.username)));
    let signed = sign_in(
        &app,
        &req.username,
        &req.password,
        req.site,
        source,
        presented.as_deref(),
    )
    .await?;
    let secure = app
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let set_cookie = device_cookie(&signed, secure);
    let mut res = Json(LoginResponse {
        token: signed.token,
        expires_at: signed.session.expires,
        user: (&signed.user).into(),
        site: signed.session.site,
        device: signed.device,
    })
    .into_response();
    if let Some(c) = set_cookie {
        res.headers_mut().insert(header::SET_COOKIE, c);
    }
    Ok(res)
}

/// End the session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "signed out")))]
async fn logout(State(app): State<App>, caller: Caller) -> Result<StatusCode, ApiError> {
    end_session(&app, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn end_session(app: &App, caller: &Caller) -> Result<(), ApiError> {
    let ev = caller.ctx().event("auth.logout", "success");
    app.commit_audited(&app.accounts.end_session(&caller.token), ev)
        .await?;
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: UserView,
    /// The site this request acts at.
    pub site: Option<String>,
    /// The sites the user may switch to.
    pub sites: Vec<Site>,
    pub permissions: Vec<Permission>,
}

/// Who am I, where, and what may I do.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, body = Me)))]
async fn me(State(app): State<App>, caller: Caller) -> Result<Json<Me>, ApiError> {
    let sites = app
        .sites
        .list()?
        .into_iter()
        .filter(|s| caller.user.sites.contains(&s.id))
        .collect();
    Ok(Json(Me {
        user: (&caller.user).into(),
        site: caller.site.clone(),
        sites,
        permissions: permissions_of(&caller.user.roles),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteChoice {
    pub site: String,
}

/// Switch the session to another of the user's sites.
#[utoipa::path(put, path = "/api/v1/auth/site", tag = "auth", request_body = SiteChoice,
    responses((status = 204), (status = 403, body = ErrorBody)))]
async fn switch_site(
    State(app): State<App>,
    caller: Caller,
    JsonBody(req): JsonBody<SiteChoice>,
) -> Result<StatusCode, ApiError> {
    change_site(&app, &caller, &req.site).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn change_site(app: &App, caller: &Caller, site: &str) -> Result<(), ApiError> {
    if !caller.user.sites.iter().any(|s| s == site) {
        return Err(ApiError::forbidden(format!(
            "you do not belong to site '{site}'; your sites are: {}",
            caller.user.sites.join(", ")
        ))
        .field("site"));
    }
    let mut ev = caller.ctx().event("session.site", "success");
    ev.site = Some(site.into());
    let batch = app
        .accounts
        .set_session_site(&caller.token, &caller.session, site);
    app.commit_audited(&batch, ev).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Patients

fn etag(p: &Patient) -> HeaderValue {
    HeaderValue::from_str(&format!("W/\"{}\"", version_of(p))).expect("ascii")
}

fn patient_response(status: StatusCode, p: Patient) -> Response {
    let mut res = (status, Json(&p)).into_response();
    res.headers_mut().insert(header::ETAG, etag(&p));
    if status == StatusCode::CREATED
        && let Some(id) = &p.id
        && let Ok(v) = HeaderValue::from_str(&format!("/api/v1/patients/{id}"))
    {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Register a patient (FHIR R4 Patient).
#[utoipa::path(post, path = "/api/v1/patients", tag = "patients", request_body = Patient,
    responses(
        (status = 201, body = Patient, description = "created; ETag holds the version"),
        (status = 400, body = ErrorBody, description = "invalid; `field` names the field"),
        (status = 409, body = ErrorBody, description = "health card number already registered")))]
async fn create_patient(
    State(app): State<App>,
    caller: Caller,
    JsonBody(p): JsonBody<Patient>,
) -> Result<Response, ApiError> {
    let p = app.patients.create(&caller.ctx(), p).await?;
    Ok(patient_response(StatusCode::CREATED, p))
}

/// FHIR-style search parameters.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Name prefix, case- and accent-insensitive; several words must all match.
    pub name: Option<String>,
    /// Exact birth date, `YYYY-MM-DD`.
    pub birthdate: Option<String>,
    /// `system|value`, or a bare value (e.g. a health card number).
    pub identifier: Option<String>,
    /// Page size (default 20; more than 100 gives 100).
    #[serde(rename = "_count")]
    #[param(rename = "_count", minimum = 1)]
    pub count: Option<usize>,
    /// Cursor from the previous page's `next` link.
    pub cursor: Option<String>,
}

/// A FHIR searchset Bundle.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// Always `Bundle`.
    pub resource_type: &'static str,
    /// Always `searchset`.
    pub r#type: &'static str,
    pub link: Vec<BundleLink>,
    pub entry: Vec<BundleEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct BundleLink {
    /// `self` or `next`.
    pub relation: String,
    pub url: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    pub full_url: String,
    pub resource: Patient,
}

fn search_url(p: &SearchParams, cursor: Option<&str>) -> String {
    let mut q = url_form(&[
        ("name", p.name.as_deref()),
        ("birthdate", p.birthdate.as_deref()),
        ("identifier", p.identifier.as_deref()),
        ("_count", p.count.map(|c| c.to_string()).as_deref()),
        ("cursor", cursor),
    ]);
    if !q.is_empty() {
        q.insert(0, '?');
    }
    format!("/api/v1/patients{q}")
}

fn url_form(pairs: &[(&str, Option<&str>)]) -> String {
    let mut s = String::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            if !s.is_empty() {
                s.push('&');
            }
            s.push_str(k);
            s.push('=');
            for b in v.bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    s.push(b as char);
                } else {
                    s.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    s
}

/// Search patients by name prefix, birth date and identifier; paged by cursor.
#[utoipa::path(get, path = "/api/v1/patients", tag = "patients", params(SearchParams),
    responses((status = 200, body = Bundle), (status = 400, body = ErrorBody)))]
async fn search_patients(
    State(app): State<App>,
    caller: Caller,
    Params(params): Params<SearchParams>,
) -> Result<Json<Bundle>, ApiError> {
    if params.count == Some(0) {
        return Err(ApiError::invalid("_count must be at least 1").field("_count"));
    }
    let q = SearchQuery {
        name: params.name.clone(),
        birthdate: params.birthdate.clone(),
        identifier: params.identifier.clone(),
        count: params.count.unwrap_or(0),
        cursor: params.cursor.clone(),
    };
    let page = app.patients.search(&caller.ctx(), &q).await?;
    let mut link = vec![BundleLink {
        relation: "self".into(),
        url: search_url(&params, params.cursor.as_deref()),
    }];
    if let Some(next) = &page.next {
        link.push(BundleLink {
            relation: "next".into(),
            url: search_url(&params, Some(next)),
        });
    }
    Ok(Json(Bundle {
        resource_type: "Bundle",
        r#type: "searchset",
        link,
        entry: page
            .patients
            .into_iter()
            .map(|p| BundleEntry {
                full_url: format!("/api/v1/patients/{}", p.id.clone().unwrap_or_default()),
                resource: p,
            })
            .collect(),
    }))
}

/// Read one patient.
#[utoipa::path(get, path = "/api/v1/patients/{id}", tag = "patients",
    params(("id" = String, Path)),
    responses((status = 200, body = Patient), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn read_patient(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = app.patients.get(&caller.ctx(), &id).await?;
    Ok(patient_response(StatusCode::OK, p))
}

/// Replace a patient record. Send the version you read in `If-Match: W/"<version>"` (or in
/// `meta.versionId`); a stale version is refused with 409. Mark a chart inactive with
/// `"active": false`.
#[utoipa::path(put, path = "/api/v1/patients/{id}", tag = "patients",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body = Patient,
    responses((status = 200, body = Patient), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 428, body = ErrorBody)))]
async fn update_patient(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(p): JsonBody<Patient>,
) -> Result<Response, ApiError> {
    let from_header = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => {
            let s = v.to_str().unwrap_or("");
            let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
            Some(s.parse::<u64>().map_err(|_| {
                ApiError::invalid("If-Match must be the ETag you read, e.g. W/\"3\"")
                    .field("If-Match")
            })?)
        }
    };
    let expected = from_header.or_else(|| {
        p.meta
            .as_ref()
            .and_then(|m| m.version_id.as_deref())
            .and_then(|v| v.parse().ok())
    });
    let Some(expected) = expected else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
            "send the version you are changing: If-Match: W/\"<version>\" (the ETag of your read)",
        )
        .field("If-Match"));
    };
    let p = app.patients.update(&caller.ctx(), &id, p, expected).await?;
    Ok(patient_response(StatusCode::OK, p))
}

// ---------------------------------------------------------------------------------------------
// Users and sites

/// Through the gate: refuse unless the caller holds `p`, recording the refusal in the audit
/// trail (as every entry point's refusals are).
pub(super) async fn require_audited(
    app: &App,
    caller: &Caller,
    p: Permission,
    action: &str,
    resource: Option<String>,
) -> Result<(), ApiError> {
    let mut check = Check::new(action, Need::Permission(p));
    check.resource = resource;
    Ok(app.gate.check(&caller.ctx(), check).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewUser {
    /// 2 to 64 lowercase letters, digits, `.`, `_` or `-`.
    #[schema(pattern = "^[a-z0-9._-]{2,64}$")]
    pub username: String,
    /// At least 10 characters.
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
    #[schema(min_items = 1)]
    pub roles: Vec<Role>,
    /// Sites that exist.
    #[schema(min_items = 1)]
    pub sites: Vec<String>,
    /// For a `patient` user: their patient record id.
    #[serde(default)]
    pub patient: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// List users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = Vec<UserView>), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(app): State<App>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    require_audited(&app, &caller, Permission::UsersManage, "user.list", None).await?;
    Ok(Json(
        app.accounts.list()?.iter().map(UserView::from).collect(),
    ))
}

/// Add a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn create_user(
    State(app): State<App>,
    caller: Caller,
    JsonBody(req): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(add_user(&app, &caller, req).await?),
    ))
}

/// Add a user (the API and the users page).
pub async fn add_user(app: &App, caller: &Caller, req: NewUser) -> Result<UserView, ApiError> {
    let resource = Some(format!("User/{}", req.username));
    require_audited(
        app,
        caller,
        Permission::UsersManage,
        "user.create",
        resource,
    )
    .await?;
    if let Some(p) = &req.patient
        && app
            .storage
            .get(crate::storage::Tree::Patients, p.as_bytes())?
            .is_none()
    {
        return Err(ApiError::invalid(format!("no patient with id {p}")).field("patient"));
    }
    let accounts = app.accounts.clone();
    let (user, batch) = tokio::task::spawn_blocking(move || {
        accounts.new_user(
            &req.username,
            &req.password,
            req.roles,
            req.sites,
            req.patient,
            req.display_name,
        )
    })
    .await
    .map_err(ApiError::internal)??;
    let mut ev = caller.ctx().event("user.create", "success");
    ev.resource = Some(format!("User/{}", user.username));
    app.commit_audited(&batch, ev).await?;
    Ok((&user).into())
}

/// A change to a user's roles, sites or name. Absent fields stay as they are.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserChange {
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    #[serde(default)]
    pub sites: Option<Vec<String>>,
    /// An empty name removes it.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Change a user's roles, sites or display name. Their sessions see the change at once.
#[utoipa::path(put, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path)), request_body = UserChange,
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn update_user(
    State(app): State<App>,
    caller: Caller,
    Path(username): Path<String>,
    JsonBody(req): JsonBody<UserChange>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(change_user(&app, &caller, &username, req).await?))
}

/// Change a user's roles, sites or display name (the API and the users page). An
/// administrator cannot take away their own administration, so a clinic always keeps one.
pub async fn change_user(
    app: &App,
    caller: &Caller,
    username: &str,
    req: UserChange,
) -> Result<UserView, ApiError> {
    let resource = Some(format!("User/{username}"));
    require_audited(
        app,
        caller,
        Permission::UsersManage,
        "user.update",
        resource,
    )
    .await?;
    if let Some(sites) = &req.sites {
        if sites.is_empty() {
            return Err(ApiError::invalid("give the user at least one site").field("sites"));
        }
        for s in sites {
            if app.sites.get(s)?.is_none() {
                return Err(ApiError::invalid(format!("no site '{s}'")).field("sites"));
            }
        }
    }
    if let Some(roles) = &req.roles {
        if roles.is_empty() {
            return Err(ApiError::invalid("give the user at least one role").field("roles"));
        }
        if username == caller.user.username && !roles.contains(&Role::Admin) {
            return Err(ApiError::invalid(
                "you cannot take away your own administrator role; another administrator can",
            )
            .field("roles"));
        }
    }
    if let Some(name) = &req.display_name
        && (name.chars().count() > 200 || name.chars().any(char::is_control))
    {
        return Err(
            ApiError::invalid("a display name is at most 200 plain characters")
                .field("displayName"),
        );
    }
    let mut changes = Vec::new();
    let (user, batch) = app.accounts.change_user(username, |u| {
        if let Some(mut roles) = req.roles.clone() {
            roles.sort();
            roles.dedup();
            if roles.contains(&Role::Patient) != u.patient.is_some() {
                return Err(AuthError::Invalid(
                    "only a user linked to a patient record may hold the patient role; add a                      new patient user instead"
                        .into(),
                ));
            }
            if roles != u.roles {
                changes.push(format!("roles {} → {}", join(&u.roles), join(&roles)));
                u.roles = roles;
            }
        }
        if let Some(mut sites) = req.sites.clone() {
            sites.dedup();
            if sites != u.sites {
                changes.push(format!("sites {} → {}", u.sites.join(","), sites.join(",")));
                u.sites = sites;
            }
        }
        if let Some(name) = &req.display_name {
            let name = Some(name.trim().to_string()).filter(|n| !n.is_empty());
            if name != u.display_name {
                changes.push("display name".into());
                u.display_name = name;
            }
        }
        Ok(())
    })?;
    let mut ev = caller.ctx().event("user.update", "success");
    ev.resource = Some(format!("User/{username}"));
    ev.detail = Some(if changes.is_empty() {
        "no change".into()
    } else {
        changes.join("; ")
    });
    app.commit_audited(&batch, ev).await?;
    Ok((&user).into())
}

fn join(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Disable a user: their sessions stop working at once.
#[utoipa::path(post, path = "/api/v1/users/{username}/disable", tag = "users",
    params(("username" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
async fn disable_user(
    State(app): State<App>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(set_disabled(&app, &caller, &username, true).await?))
}

/// Enable a disabled user again.
#[utoipa::path(post, path = "/api/v1/users/{username}/enable", tag = "users",
    params(("username" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
async fn enable_user(
    State(app): State<App>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(set_disabled(&app, &caller, &username, false).await?))
}

/// Disable or enable a user (the API and the users page).
pub async fn set_disabled(
    app: &App,
    caller: &Caller,
    username: &str,
    disabled: bool,
) -> Result<UserView, ApiError> {
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    let resource = Some(format!("User/{username}"));
    require_audited(app, caller, Permission::UsersManage, action, resource).await?;
    if disabled && username == caller.user.username {
        return Err(ApiError::invalid("you cannot disable your own account"));
    }
    let (user, batch) = app.accounts.change_user(username, |u| {
        u.disabled = disabled;
        Ok(())
    })?;
    let mut ev = caller.ctx().event(action, "success");
    ev.resource = Some(format!("User/{username}"));
    app.commit_audited(&batch, ev).await?;
    Ok((&user).into())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// At least 10 characters.
    #[schema(min_length = 10, max_length = 1024)]
    pub password: String,
    /// Required when changing your own password.
    #[serde(default)]
    pub current: Option<String>,
}

/// Set a password: an administrator for anyone, or a user for themselves with the current one.
#[utoipa::path(put, path = "/api/v1/users/{username}/password", tag = "users",
    params(("username" = String, Path)), request_body = PasswordChange,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn set_password(
    State(app): State<App>,
    caller: Caller,
    Path(username): Path<String>,
    JsonBody(req): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    change_password(&app, &caller, &username, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set a password (the API and the users page).
pub async fn change_password(
    app: &App,
    caller: &Caller,
    username: &str,
    req: PasswordChange,
) -> Result<(), ApiError> {
    let own = username == caller.user.username;
    if !own {
        let resource = Some(format!("User/{username}"));
        require_audited(
            app,
            caller,
            Permission::UsersManage,
            "user.password",
            resource,
        )
        .await?;
    }
    let accounts = app.accounts.clone();
    let (u, cur) = (username.to_string(), req.current.clone());
    let batch = tokio::task::spawn_blocking(move || {
        crate::auth::validate_password(&req.password)?;
        if own {
            let cur = cur.ok_or_else(|| {
                AuthError::Invalid("give your current password in `current`".into())
            })?;
            accounts.authenticate(&u, &cur)?;
        }
        let hash = crate::auth::hash_password(&req.password);
        accounts.change_user(&u, |user| {
            user.password_hash = hash;
            Ok(())
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        AuthError::BadCredentials => {
            ApiError::forbidden("the current password is wrong").field("current")
        }
        e => e.into(),
    })?
    .1;
    let mut ev = caller.ctx().event("user.password", "success");
    ev.resource = Some(format!("User/{username}"));
    app.commit_audited(&batch, ev).await?;
    Ok(())
}

/// List sites: all of them for an administrator, otherwise the caller's own.
#[utoipa::path(get, path = "/api/v1/sites", tag = "sites", responses((status = 200, body = Vec<Site>)))]
async fn list_sites(State(app): State<App>, caller: Caller) -> Result<Json<Vec<Site>>, ApiError> {
    let all = caller.ctx().can(Permission::SitesManage);
    Ok(Json(
        app.sites
            .list()?
            .into_iter()
            .filter(|s| all || caller.user.sites.contains(&s.id))
            .collect(),
    ))
}

/// Add a site.
#[utoipa::path(post, path = "/api/v1/sites", tag = "sites", request_body = Site,
    responses((status = 201, body = Site), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn create_site(
    State(app): State<App>,
    caller: Caller,
    JsonBody(req): JsonBody<Site>,
) -> Result<(StatusCode, Json<Site>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(add_site(&app, &caller, &req.id, &req.name).await?),
    ))
}

/// Add a site (the API and the sites page).
pub async fn add_site(app: &App, caller: &Caller, id: &str, name: &str) -> Result<Site, ApiError> {
    let resource = Some(format!("Site/{id}"));
    require_audited(
        app,
        caller,
        Permission::SitesManage,
        "site.create",
        resource,
    )
    .await?;
    let (site, batch) = app.sites.add(id, name)?;
    let mut ev = caller.ctx().event("site.create", "success");
    ev.resource = Some(format!("Site/{}", site.id));
    app.commit_audited(&batch, ev).await?;
    Ok(site)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteName {
    pub name: String,
}

/// Rename a site (its id stays: users, plugins and data refer to it).
#[utoipa::path(put, path = "/api/v1/sites/{id}", tag = "sites",
    params(("id" = String, Path)), request_body = SiteName,
    responses((status = 200, body = Site), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
async fn rename_site(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<SiteName>,
) -> Result<Json<Site>, ApiError> {
    Ok(Json(change_site_name(&app, &caller, &id, &req.name).await?))
}

/// Rename a site (the API and the sites page).
pub async fn change_site_name(
    app: &App,
    caller: &Caller,
    id: &str,
    name: &str,
) -> Result<Site, ApiError> {
    let resource = Some(format!("Site/{id}"));
    require_audited(
        app,
        caller,
        Permission::SitesManage,
        "site.rename",
        resource,
    )
    .await?;
    let Some((old, site, batch)) = app.sites.rename(id, name)? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no site '{id}'"),
        ));
    };
    let mut ev = caller.ctx().event("site.rename", "success");
    ev.resource = Some(format!("Site/{id}"));
    ev.detail = Some(format!("{} → {}", old.name, site.name));
    app.commit_audited(&batch, ev).await?;
    Ok(site)
}

// ---------------------------------------------------------------------------------------------
// Audit

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries about this patient id.
    pub patient: Option<String>,
    /// Entries by this user name.
    pub actor: Option<String>,
    /// From this time (RFC 3339), inclusive.
    pub since: Option<String>,
    /// Until this time (RFC 3339), exclusive.
    pub until: Option<String>,
    /// Page size (default 100; more than 1000 gives 1000).
    #[serde(rename = "_count")]
    #[param(rename = "_count", minimum = 1)]
    pub count: Option<usize>,
    /// `next` from the previous page.
    pub cursor: Option<String>,
}

pub fn time_param(name: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| Some((t.unix_timestamp_nanos() / 1_000_000) as i64))
            .map_err(|_| {
                ApiError::invalid(format!(
                    "{name} must be an RFC 3339 time, e.g. 2026-11-29T09:00:00Z"
                ))
                .field(name)
            }),
    }
}

/// Query the audit trail by patient, actor and time range (oldest first).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 403, body = ErrorBody)))]
async fn query_audit(
    State(app): State<App>,
    caller: Caller,
    Params(p): Params<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    if p.count == Some(0) {
        return Err(ApiError::invalid("_count must be at least 1").field("_count"));
    }
    let q = AuditQuery {
        patient: p.patient.clone(),
        actor: p.actor.clone(),
        since_ms: time_param("since", &p.since)?,
        until_ms: time_param("until", &p.until)?,
        count: p.count.unwrap_or(100),
        cursor: p.cursor.clone(),
    };
    Ok(Json(read_audit(&app, &caller, q).await?))
}

/// Read the audit trail (the API and the audit page); the reading is itself audited.
pub async fn read_audit(app: &App, caller: &Caller, q: AuditQuery) -> Result<AuditPage, ApiError> {
    require_audited(app, caller, Permission::AuditRead, "audit.read", None).await?;
    let page = app.audit.query(&q).map_err(|e| match e {
        crate::audit::AuditError::BadCursor => ApiError::invalid(e.to_string()).field("cursor"),
        e => e.into(),
    })?;
    let mut ev = caller.ctx().event("audit.read", "success");
    ev.patient = q.patient;
    app.audit.record_durable(ev).await?;
    Ok(page)
}

/// Walk the audit chain, check it against the signed checkpoints, and report the first broken
/// link.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = Verification), (status = 403, body = ErrorBody)))]
async fn verify_audit(
    State(app): State<App>,
    caller: Caller,
) -> Result<Json<Verification>, ApiError> {
    Ok(Json(check_audit(&app, &caller).await?))
}

/// Verify the audit chain (the API and the audit page); the check is itself audited.
pub async fn check_audit(app: &App, caller: &Caller) -> Result<Verification, ApiError> {
    require_audited(app, caller, Permission::AuditRead, "audit.verify", None).await?;
    let dir = app.config.data_dir.clone();
    let audit = app.audit.clone();
    let v = tokio::task::spawn_blocking(move || audit.verify_now(&dir))
        .await
        .map_err(ApiError::internal)??;
    app.audit
        .record_durable(
            caller
                .ctx()
                .event("audit.verify", if v.ok { "success" } else { "failure" }),
        )
        .await?;
    Ok(v)
}
