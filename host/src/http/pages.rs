//! Browser pages: sign-in, sign-out, the home page and the site switcher.
//!
//! Plain server-rendered HTML. The session travels in an HttpOnly, SameSite=Strict cookie
//! (Secure when Osler is reached over https). Every form carries a CSRF token: before sign-in
//! a double-submit token (cookie + field), after sign-in the session's own token.

use axum::Form;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::access::permissions_of;
use crate::app::App;
use crate::auth::{random_token, secrets_equal};
use crate::http::ApiError;
use crate::http::api::{
    Source, change_site, device_cookie, device_cookie_name, end_session, sign_in,
};
use crate::http::caller::{Caller, SESSION_COOKIE, cookie, resolve};

const LOGIN_CSRF_COOKIE: &str = "osler_login_csrf";

pub fn router() -> Router<App> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout_submit))
        .route("/site", post(site_submit))
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f4f6f8;color:#1d2630}\
header{background:#1f4e79;color:#fff;padding:.8rem 1.5rem;display:flex;align-items:center;gap:1.5rem}\
header h1{font-size:1.2rem;margin:0}header form{margin:0}main{max-width:56rem;margin:2rem auto;padding:0 1rem}\
.card{background:#fff;border-radius:8px;padding:1.5rem;box-shadow:0 1px 3px rgba(0,0,0,.12);margin-bottom:1.5rem}\
label{display:block;margin:.8rem 0 .3rem;font-weight:600}input,select{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box}\
button{font-size:1rem;padding:.5rem 1.2rem;margin-top:1rem;background:#1f4e79;color:#fff;border:0;border-radius:4px;cursor:pointer}\
header button{margin:0;background:#fff;color:#1f4e79}.error{background:#fde8e8;color:#8a1c1c;padding:.7rem;border-radius:4px}\
.muted{color:#5b6875}table{border-collapse:collapse}td,th{padding:.3rem .8rem .3rem 0;text-align:left}";

pub(super) fn page(title: &str, header_extra: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · Osler</title><style>{STYLE}</style></head><body>\
         <header><h1>Osler</h1>{header_extra}</header><main>{body}</main></body></html>",
        esc(title)
    ))
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

fn login_form(csrf: &str, error: Option<&str>, username: &str) -> Html<String> {
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    page(
        "Sign in",
        "",
        &format!(
            "<div class=\"card\" style=\"max-width:24rem;margin:auto\"><h2>Sign in</h2>{err}\
             <form method=\"post\" action=\"/login\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"username\">User name</label>\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" required value=\"{}\">\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\">Sign in</button></form></div>",
            esc(username)
        ),
    )
}

async fn login_page(State(app): State<App>, PartsOf(parts): PartsOf) -> Response {
    if let Ok(Some(_)) = resolve(&parts, &app) {
        return Redirect::to("/").into_response();
    }
    let csrf = random_token();
    let mut res = login_form(&csrf, None, "").into_response();
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
    let retry = |status: StatusCode, msg: &str| {
        let mut res = (status, login_form(&fresh, Some(msg), &form.username)).into_response();
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
            let mut res = Redirect::to("/").into_response();
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

async fn logout_submit(
    State(app): State<App>,
    PartsOf(parts): PartsOf,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if let Some(c) = form_caller(&app, &parts, &form.csrf)? {
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
    let Some(c) = form_caller(&app, &parts, &form.csrf)? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let site = form.site.unwrap_or_default();
    change_site(&app, &c, &site).await?;
    Ok(Redirect::to("/").into_response())
}

async fn home(State(app): State<App>, PartsOf(parts): PartsOf) -> Result<Response, ApiError> {
    let Some(c) = resolve(&parts, &app)? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let csrf = esc(&c.session.csrf);
    let sites = app.sites.list()?;
    let options: String = sites
        .iter()
        .filter(|s| c.user.sites.contains(&s.id))
        .map(|s| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                esc(&s.id),
                if Some(&s.id) == c.site.as_ref() {
                    " selected"
                } else {
                    ""
                },
                esc(&s.name)
            )
        })
        .collect();
    let site_name = sites
        .iter()
        .find(|s| Some(&s.id) == c.site.as_ref())
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let entries = c
        .site
        .as_deref()
        .map(|site| app.plugins.nav(site, &c.user.roles))
        .unwrap_or_default();
    let nav = if entries.is_empty() {
        "<p class=\"muted\">No plugin pages are enabled at this site.</p>".to_string()
    } else {
        let items: String = entries
            .iter()
            .map(|n| {
                format!(
                    "<li><a href=\"{}\">{}</a></li>",
                    esc(&n.href),
                    esc(&n.title)
                )
            })
            .collect();
        format!("<nav aria-label=\"Plugins\"><ul>{items}</ul></nav>")
    };
    let manage = if c.ctx().can(crate::access::Permission::PluginsManage) {
        "<p><a href=\"/admin/plugins\">Manage plugins</a> (install, update, enable per site)</p>"
    } else {
        ""
    };
    let who = c
        .user
        .display_name
        .clone()
        .unwrap_or_else(|| c.user.username.clone());
    let roles = c
        .user
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let perms: String = permissions_of(&c.user.roles)
        .iter()
        .map(|p| format!("<li><code>{}</code></li>", p.as_str()))
        .collect();
    let header = format!(
        "<span>{} · {}</span><form method=\"post\" action=\"/site\" style=\"display:flex;gap:.5rem\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <select name=\"site\" aria-label=\"Site\" style=\"width:auto;padding:.3rem\">{options}</select>\
         <button type=\"submit\">Switch site</button></form>\
         <form method=\"post\" action=\"/logout\" style=\"margin-left:auto\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">Sign out</button></form>",
        esc(&who),
        esc(&site_name)
    );
    let body = format!(
        "<div class=\"card\"><h2>Welcome, {}</h2>\
         <table><tr><th>User</th><td>{}</td></tr><tr><th>Roles</th><td>{}</td></tr>\
         <tr><th>Site</th><td>{} ({})</td></tr></table></div>\
         <div class=\"card\"><h3>What you may do</h3><ul>{perms}</ul></div>\
         <div class=\"card\"><h3>Plugins</h3>{nav}{manage}</div>\
         <div class=\"card\"><h3>API</h3><p>The JSON API is described at \
         <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p></div>",
        esc(&who),
        esc(&c.user.username),
        esc(&roles),
        esc(&site_name),
        esc(c.site.as_deref().unwrap_or("-")),
    );
    let mut res = page("Home", &header, &body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
