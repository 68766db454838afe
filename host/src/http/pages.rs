//! The host's browser pages: sign-in, sign-out, the home page, the site switch, and (in the
//! submodules) patients, the chart, and administration — users, sites and the audit trail.
//! The plugins page is [`super::admin`].
//!
//! Plain server-rendered HTML inside the shell ([`super::shell`]). Every action calls the same
//! service functions as the JSON API, so the same checks and audit entries apply. The session
//! travels in an HttpOnly, SameSite=Strict cookie (Secure when Osler is reached over https).
//! Every form carries a CSRF token: before sign-in a double-submit token (cookie + field),
//! after sign-in the session's own token (the shell's own forms also accept the shell token).

pub mod audit;
pub mod patients;
pub mod portal;
pub mod research;
pub mod sites;
pub mod users;

use axum::Form;
use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::access::Permission;
use crate::app::App;
use crate::auth::{random_token, secrets_equal};
use crate::http::ApiError;
use crate::http::api::{
    Source, change_site, device_cookie, device_cookie_name, end_session, sign_in,
};
use crate::http::caller::{Caller, SESSION_COOKIE, cookie, resolve};
use crate::http::shell::{
    Page, is_kiosk, kiosk_home, local_path, may_administer, shell_form_token_ok, signed_out_page,
};

const LOGIN_CSRF_COOKIE: &str = "osler_login_csrf";

pub fn router() -> Router<App> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout_submit))
        .route("/site", post(site_submit))
        .route("/kiosk", get(kiosk))
        .route("/admin", get(admin_index))
        .merge(patients::router())
        .merge(portal::router())
        .merge(research::router())
        .merge(users::router())
        .merge(sites::router())
        .merge(audit::router())
}

/// Escape text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn secure(app: &App, headers: &HeaderMap) -> bool {
    app.config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes() == b"https")
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie is ascii")
}

/// Request parts, for handlers that resolve the session themselves.
pub(crate) struct PartsOf(pub(crate) Parts);
impl<S: Send + Sync> FromRequestParts<S> for PartsOf {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PartsOf(parts.clone()))
    }
}

fn login_form(csrf: &str, error: Option<&str>, username: &str, next: &str) -> String {
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    format!(
        "<div class=\"card login\"><h1>Sign in</h1>{err}\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"username\">User name</label>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus value=\"{}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form></div>",
        esc(next),
        esc(username)
    )
}

#[derive(Deserialize, Default)]
struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

async fn login_page(
    State(app): State<App>,
    PartsOf(parts): PartsOf,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = q.next.as_deref().and_then(local_path).unwrap_or("/");
    if let Ok(Some(_)) = resolve(&parts, &app) {
        return Redirect::to(next).into_response();
    }
    let csrf = random_token();
    let mut res = signed_out_page(
        StatusCode::OK,
        "Sign in",
        &login_form(&csrf, None, "", next),
    );
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_CSRF_COOKIE,
            &csrf,
            Some(3600),
            secure(&app, &parts.headers),
        ),
    );
    res
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login_submit(
    State(app): State<App>,
    Source(source): Source,
    PartsOf(parts): PartsOf,
    Form(form): Form<LoginForm>,
) -> Response {
    let secure = secure(&app, &parts.headers);
    let expected = cookie(&parts, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let fresh = random_token();
    let next = form
        .next
        .as_deref()
        .and_then(local_path)
        .unwrap_or("/")
        .to_string();
    let retry = |status: StatusCode, msg: &str| {
        let mut res = signed_out_page(
            status,
            "Sign in",
            &login_form(&fresh, Some(msg), &form.username, &next),
        );
        res.headers_mut().insert(
            header::SET_COOKIE,
            set_cookie(LOGIN_CSRF_COOKIE, &fresh, Some(3600), secure),
        );
        res
    };
    if expected.is_empty() || !secrets_equal(&expected, &form.csrf) {
        return retry(
            StatusCode::FORBIDDEN,
            "This form has expired. Please sign in again.",
        );
    }
    let device = cookie(&parts, &device_cookie_name(&form.username));
    match sign_in(
        &app,
        &form.username,
        &form.password,
        None,
        source,
        device.as_deref(),
    )
    .await
    {
        Ok(signed) => {
            let mut res = Redirect::to(&next).into_response();
            let h = res.headers_mut();
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    SESSION_COOKIE,
                    &signed.token,
                    Some(app.accounts.session_ttl.as_secs()),
                    secure,
                ),
            );
            if let Some(c) = device_cookie(&signed, secure) {
                h.append(header::SET_COOKIE, c);
            }
            h.append(
                header::SET_COOKIE,
                set_cookie(LOGIN_CSRF_COOKIE, "", Some(0), secure),
            );
            res
        }
        Err(e) => retry(e.status, &e.body.message),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
    #[serde(default)]
    site: Option<String>,
}

/// The signed-in caller of a form post, with its CSRF field checked.
pub(super) fn form_caller(
    app: &App,
    parts: &Parts,
    csrf: &str,
) -> Result<Option<Caller>, ApiError> {
    let Some(c) = resolve(parts, app)? else {
        return Ok(None);
    };
    if !secrets_equal(csrf, &c.session.csrf) {
        return Err(ApiError::forbidden(
            "this form has expired; reload the page and try again",
        ));
    }
    Ok(Some(c))
}

/// The caller of one of the shell's own forms (sign-out, site switch), which accept the
/// session's CSRF token or the shell token.
fn shell_form_caller(app: &App, parts: &Parts, csrf: &str) -> Result<Option<Caller>, ApiError> {
    let Some(c) = resolve(parts, app)? else {
        return Ok(None);
    };
    if !shell_form_token_ok(&c.session.csrf, csrf) {
        return Err(ApiError::forbidden(
            "this form has expired; reload the page and try again",
        ));
    }
    Ok(Some(c))
}

async fn logout_submit(
    State(app): State<App>,
    PartsOf(parts): PartsOf,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if let Some(c) = shell_form_caller(&app, &parts, &form.csrf)? {
        end_session(&app, &c).await?;
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", Some(0), secure(&app, &parts.headers)),
    );
    Ok(res)
}

async fn site_submit(
    State(app): State<App>,
    PartsOf(parts): PartsOf,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    let Some(c) = shell_form_caller(&app, &parts, &form.csrf)? else {
        return Ok(Redirect::to("/login").into_response());
    };
    if is_kiosk(&c.user) {
        // A kiosk stays where it was set up.
        return Ok(Redirect::to(&kiosk_home(&app, &c)).into_response());
    }
    let site = form.site.unwrap_or_default();
    change_site(&app, &c, &site).await?;
    Ok(Redirect::to("/").into_response())
}

/// A tile linking to a page.
fn tile(href: &str, title: &str, what: &str) -> String {
    format!(
        "<a class=\"tile\" href=\"{}\">{}<span>{}</span></a>",
        esc(href),
        esc(title),
        esc(what)
    )
}

async fn home(page: Page) -> Response {
    let c = page.caller();
    let ctx = c.ctx();
    let who = c
        .user
        .display_name
        .clone()
        .unwrap_or_else(|| c.user.username.clone());
    let mut body = format!(
        "<div class=\"page-head\"><h1>Hello, {}</h1><span class=\"muted\">{} · {}</span></div>",
        esc(&who),
        esc(&page.shell.site_name),
        esc(&c
            .user
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", "))
    );
    if ctx.can(Permission::PatientsRead) {
        body.push_str(&format!(
            "<section class=\"card\" aria-labelledby=\"find\"><h2 id=\"find\">Find a patient</h2>{}{}</section>",
            patients::search_form(&patients::SearchForm::default()),
            if ctx.can(Permission::PatientsWrite) {
                "<p><a class=\"button secondary\" href=\"/patients/new\">Register a new patient</a></p>"
            } else {
                ""
            }
        ));
    } else if let Some(own) = c
        .user
        .patient
        .as_deref()
        .filter(|_| ctx.can(Permission::PatientsReadOwn))
    {
        body.push_str(&format!(
            "<section class=\"card\"><h2>Your record</h2><p><a href=\"/patients/{}\">See your record</a></p></section>",
            esc(own)
        ));
    }
    let plugin_tiles: String = page
        .shell
        .nav
        .iter()
        .filter_map(|n| {
            let plugin = page.app.plugins.view(n.plugin.as_deref()?)?;
            Some(tile(&n.href, &n.title, &plugin.description))
        })
        .collect();
    let staff = ctx.can(Permission::PatientsRead) || may_administer(c);
    if !plugin_tiles.is_empty() {
        body.push_str(&format!(
            "<section aria-labelledby=\"tools\"><h2 id=\"tools\">Clinic tools</h2>\
             <div class=\"tiles\">{plugin_tiles}</div></section>"
        ));
    } else if staff {
        body.push_str(
            "<section class=\"card\"><h2>Clinic tools</h2><p class=\"muted\">No plugin pages \
             are enabled at this site for your role.</p></section>",
        );
    }
    if may_administer(c) {
        body.push_str(&format!(
            "<section aria-labelledby=\"admin\"><h2 id=\"admin\">Administration</h2>\
             <div class=\"tiles\">{}</div></section>\
             <p class=\"muted small\">The JSON API is described at \
             <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>",
            admin_tiles(c)
        ));
    }
    page.render(StatusCode::OK, "Home", None, &body)
}

/// The administration pages `caller` may use, as tiles.
pub fn admin_tiles(c: &Caller) -> String {
    let ctx = c.ctx();
    let mut out = String::new();
    if ctx.can(Permission::UsersManage) {
        out.push_str(&tile(
            "/admin/users",
            "Users",
            "Add people, set roles and sites, disable, reset passwords",
        ));
    }
    if ctx.can(Permission::SitesManage) {
        out.push_str(&tile("/admin/sites", "Sites", "The clinic's locations"));
    }
    if ctx.can(Permission::AuditRead) {
        out.push_str(&tile(
            "/admin/audit",
            "Audit trail",
            "Who accessed what, and whether the trail is intact",
        ));
    }
    if ctx.can(Permission::PluginsManage) {
        out.push_str(&tile(
            "/admin/plugins",
            "Plugins",
            "Install, update, enable per site, grant capabilities",
        ));
    }
    out
}

/// `/admin`: the administration pages this person may use.
async fn admin_index(page: Page) -> Response {
    if !may_administer(page.caller()) {
        return page.refuse("Administration is for administrators.");
    }
    page.render(
        StatusCode::OK,
        "Administration",
        None,
        &format!(
            "<h1>Administration</h1><div class=\"tiles\">{}</div>",
            admin_tiles(page.caller())
        ),
    )
}

/// `/kiosk`: where a kiosk account lands when no check-in screen is enabled at its site.
async fn kiosk(page: Page) -> Response {
    let c = page.caller();
    if !is_kiosk(&c.user) {
        return Redirect::to("/").into_response();
    }
    let home = kiosk_home(&page.app, c);
    if home != "/kiosk" {
        return Redirect::to(&home).into_response();
    }
    page.render(
        StatusCode::SERVICE_UNAVAILABLE,
        "Check-in",
        None,
        "<div class=\"card error-page\"><h1>Check-in is not available here</h1>\
         <p>Please check in at the front desk.</p></div>",
    )
}
