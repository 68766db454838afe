//! The shell: one layout around every page, the host's and the plugins'.
//!
//! - **Header**: the clinic (the site's name), the signed-in person and their roles, the site
//!   switch, sign-out, and the navigation — the host's sections the person may use (Patients,
//!   Administration) and the pages of the plugins enabled at this site for their roles.
//! - **Patient banner** ([`super::banner`]) on every page about one patient.
//! - **Plugin pages**: a plugin returns content, the host frames it (see [`present_plugin`] and
//!   [`super::frame`]). A plugin answers `osler-frame: bare` to be served as it is (a document
//!   meant to stand alone), and `osler-patient: <id>` to have the patient banner above it.
//! - **Errors** are pages for a browser (a request that accepts `text/html`) and JSON for API
//!   clients ([`browser_errors`]).
//! - **Kiosk accounts** (the `kiosk` role alone) see only their check-in screen: the shell has
//!   no navigation, site switch or sign-out for them, and every other page sends them back to
//!   it ([`kiosk_home`]).
//!
//! Host pages are served with a strict CSP that lets them run the host's own scripts from
//! `/static/` and nothing else; plugin pages keep the plugin CSP, which runs no script at all,
//! so the shell works without scripts. The shell's own forms on a plugin page (site switch,
//! sign-out) carry a *shell token* derived from the session's CSRF token that only those two
//! forms accept: the session's token never appears in a page that holds plugin markup.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::assets::{OSLER_CSS, PLUGIN_CSS};
use super::banner::Banner;
use super::caller::{Caller, resolve};
use super::frame;
use super::pages::esc;
use crate::access::{Permission, Role};
use crate::app::App;
use crate::auth::{User, secrets_equal};
use crate::http::ApiError;
use crate::sites::Site;

/// The Content Security Policy of the host's own pages: the host's scripts and stylesheets
/// from `/static/`, same-origin requests and form posts, nothing inline, never framed.
pub const HOST_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                            img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                            frame-ancestors 'none'; base-uri 'none'";

/// Response header by which a plugin asks to be served without the shell.
pub const FRAME_HEADER: &str = "osler-frame";
/// Response header by which a plugin names the patient its page is about.
pub const PATIENT_HEADER: &str = "osler-patient";

// ---------------------------------------------------------------------------------------------
// Who sees what

/// A kiosk account: the `kiosk` role and no other.
pub fn is_kiosk(user: &User) -> bool {
    !user.roles.is_empty() && user.roles.iter().all(|r| *r == Role::Kiosk)
}

/// A patient's own account: the `patient` role and no other.
pub fn is_patient(user: &User) -> bool {
    !user.roles.is_empty() && user.roles.iter().all(|r| *r == Role::Patient)
}

/// Where a kiosk account lives: the first plugin page offered to its roles at its site, or
/// the host's notice that none is enabled there.
pub fn kiosk_home(app: &App, caller: &Caller) -> String {
    caller
        .site
        .as_deref()
        .and_then(|site| {
            app.plugins
                .nav(site, &caller.user.roles)
                .into_iter()
                .next()
                .map(|n| n.href)
        })
        .unwrap_or_else(|| "/kiosk".into())
}

/// For a kiosk account's browser on plugin `plugin`: `None` if that plugin offers it a page at
/// this site; otherwise back to the kiosk screen. Only pages are confined: a program using a
/// kiosk account's token (no `text/html` in `Accept`) is held to the kiosk role's permissions
/// like any other caller.
pub fn confine_kiosk(app: &App, caller: &Caller, plugin: &str, parts: &Parts) -> Option<Response> {
    if !is_kiosk(&caller.user) || !wants_html(parts) {
        return None;
    }
    let site = caller.site.as_deref()?;
    if app
        .plugins
        .nav(site, &caller.user.roles)
        .iter()
        .any(|n| n.plugin == plugin)
    {
        return None;
    }
    Some(Redirect::to(&kiosk_home(app, caller)).into_response())
}

/// The token the shell's own forms (site switch, sign-out) carry: an HMAC of the session's
/// CSRF token, accepted by those two forms only.
pub fn shell_token(session_csrf: &str) -> String {
    use base64::Engine;
    let mut mac = Hmac::<Sha256>::new_from_slice(session_csrf.as_bytes()).expect("any key length");
    mac.update(b"osler:shell-forms");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether `sent` is the session's CSRF token or its shell token.
pub fn shell_form_token_ok(session_csrf: &str, sent: &str) -> bool {
    secrets_equal(sent, session_csrf) || secrets_equal(sent, &shell_token(session_csrf))
}

/// Whether a request comes from a browser page (it accepts `text/html`).
pub fn wants_html(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// A same-site path to come back to after signing in (`/login?next=`), or `None`.
pub fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.starts_with("/login")
        && !next.chars().any(|c| c.is_control());
    ok.then_some(next)
}

/// To the sign-in page, coming back here afterwards.
pub fn login_redirect(parts: &Parts) -> Response {
    let here = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    match local_path(here) {
        Some(p) if p != "/" => {
            let next: String = form_urlencoded::byte_serialize(p.as_bytes()).collect();
            Redirect::to(&format!("/login?next={next}")).into_response()
        }
        _ => Redirect::to("/login").into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// The shell

/// One entry of the navigation.
#[derive(Clone, Debug)]
pub struct NavItem {
    pub title: String,
    pub href: String,
    /// Shown at the right (Administration).
    pub admin: bool,
    /// The plugin whose page it is.
    pub plugin: Option<String>,
}

/// Which token the shell's forms carry.
#[derive(Clone, Copy, PartialEq)]
enum Forms {
    /// The session's CSRF token (host pages, which hold only the host's markup).
    Session,
    /// The shell token (plugin pages).
    Shell,
}

/// Everything the header needs about the signed-in person.
pub struct Shell {
    pub caller: Caller,
    pub site_name: String,
    /// The sites the person may switch to.
    pub sites: Vec<Site>,
    pub nav: Vec<NavItem>,
    pub kiosk: bool,
}

/// Whether `caller` may see any administration page.
pub fn may_administer(caller: &Caller) -> bool {
    let ctx = caller.ctx();
    [
        Permission::UsersManage,
        Permission::SitesManage,
        Permission::AuditRead,
        Permission::PluginsManage,
    ]
    .into_iter()
    .any(|p| ctx.can(p))
}

impl Shell {
    pub fn new(app: &App, caller: Caller) -> Result<Shell, ApiError> {
        let all = app.sites.list()?;
        let site_name = all
            .iter()
            .find(|s| Some(&s.id) == caller.site.as_ref())
            .map(|s| s.name.clone())
            .or_else(|| caller.site.clone())
            .unwrap_or_default();
        let sites = all
            .into_iter()
            .filter(|s| caller.user.sites.contains(&s.id))
            .collect();
        let kiosk = is_kiosk(&caller.user);
        let mut nav = Vec::new();
        if !kiosk {
            let ctx = caller.ctx();
            if ctx.can(Permission::PatientsRead) {
                nav.push(NavItem {
                    title: "Patients".into(),
                    href: "/patients".into(),
                    admin: false,
                    plugin: None,
                });
            } else if ctx.can(Permission::PatientsReadOwn)
                && let Some(own) = &caller.user.patient
            {
                nav.push(NavItem {
                    title: "My record".into(),
                    href: format!("/patients/{own}"),
                    admin: false,
                    plugin: None,
                });
            }
            let patient_pages = if ctx.can(Permission::PatientsReadOwn)
                && !ctx.can(Permission::PatientsRead)
                && caller.user.patient.is_some()
            {
                vec![
                    ("My contact details", "/me/contact"),
                    ("Sharing", "/me/shares"),
                    ("Who looked", "/me/access"),
                ]
            } else {
                Vec::new()
            };
            if let Some(site) = caller.site.as_deref() {
                nav.extend(
                    app.plugins
                        .nav(site, &caller.user.roles)
                        .into_iter()
                        .map(|n| NavItem {
                            title: n.title,
                            href: n.href,
                            admin: false,
                            plugin: Some(n.plugin),
                        }),
                );
            }
            nav.extend(patient_pages.into_iter().map(|(title, href)| NavItem {
                title: title.into(),
                href: href.into(),
                admin: false,
                plugin: None,
            }));
            if !app.plugins.research_for(&ctx).is_empty() {
                nav.push(NavItem {
                    title: "Research".into(),
                    href: "/research".into(),
                    admin: false,
                    plugin: None,
                });
            }
            if may_administer(&caller) {
                nav.push(NavItem {
                    title: "Administration".into(),
                    href: "/admin".into(),
                    admin: true,
                    plugin: None,
                });
            }
        }
        Ok(Shell {
            caller,
            site_name,
            sites,
            nav,
            kiosk,
        })
    }

    fn who(&self) -> String {
        self.caller
            .user
            .display_name
            .clone()
            .unwrap_or_else(|| self.caller.user.username.clone())
    }

    fn header(&self, current: &str, forms: Forms) -> String {
        if self.kiosk {
            return format!(
                "<header class=\"shell\"><div class=\"shell-top\"><span class=\"clinic\">{}</span>\
                 </div></header>",
                esc(&self.site_name)
            );
        }
        let token = match forms {
            Forms::Session => self.caller.session.csrf.clone(),
            Forms::Shell => shell_token(&self.caller.session.csrf),
        };
        let token = esc(&token);
        let site = self.caller.site.as_deref().unwrap_or("");
        let switch = if self.sites.len() > 1 {
            let options: String = self
                .sites
                .iter()
                .map(|s| {
                    format!(
                        "<option value=\"{}\"{}>{}</option>",
                        esc(&s.id),
                        if s.id == site { " selected" } else { "" },
                        esc(&s.name)
                    )
                })
                .collect();
            format!(
                "<form method=\"post\" action=\"/site\" class=\"site-switch\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
                 <label for=\"site-switch\" class=\"visually-hidden\">Site</label>\
                 <select id=\"site-switch\" name=\"site\">{options}</select>\
                 <button type=\"submit\">Switch site</button></form>"
            )
        } else {
            String::new()
        };
        let roles = self
            .caller
            .user
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let nav: String = self
            .nav
            .iter()
            .map(|n| {
                let here = current == n.href
                    || (n.href != "/"
                        && current.starts_with(n.href.trim_end_matches('/'))
                        && current[n.href.trim_end_matches('/').len()..]
                            .chars()
                            .next()
                            .is_none_or(|c| c == '/' || c == '?'));
                format!(
                    "<a href=\"{}\"{}{}>{}</a>",
                    esc(&n.href),
                    if n.admin { " class=\"admin\"" } else { "" },
                    if here { " aria-current=\"page\"" } else { "" },
                    esc(&n.title)
                )
            })
            .collect();
        let nav = if nav.is_empty() {
            String::new()
        } else {
            format!("<nav aria-label=\"Main\">{nav}</nav>")
        };
        format!(
            "<header class=\"shell\"><div class=\"shell-top\">\
             <a class=\"brand\" href=\"/\">Osler</a>\
             <span class=\"clinic\">{site_name}</span>\
             <div class=\"who\"><span class=\"user\">{who} <span class=\"role\">{roles}</span></span>\
             {switch}\
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
             <button type=\"submit\" class=\"out\">Sign out</button></form></div></div>{nav}</header>",
            site_name = esc(&self.site_name),
            who = esc(&self.who()),
            roles = esc(&roles),
        )
    }

    fn document(
        &self,
        title: &str,
        current: &str,
        banner: Option<&Banner>,
        content: &str,
        scripts: &[&super::assets::Asset],
        forms: Forms,
    ) -> String {
        let scripts: String = scripts
            .iter()
            .map(|a| format!("<script src=\"{}\" defer></script>", esc(&a.url())))
            .collect();
        let title = if self.site_name.is_empty() {
            format!("{} · Osler", esc(title))
        } else {
            format!("{} · {} · Osler", esc(title), esc(&self.site_name))
        };
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{title}</title><link rel=\"stylesheet\" href=\"{css}\">{scripts}</head>\
             <body{kiosk}><a class=\"skip\" href=\"#content\">Skip to content</a>{header}{banner}\
             <div id=\"content\">{content}</div></body></html>",
            css = esc(&OSLER_CSS.url()),
            kiosk = if self.kiosk { " class=\"kiosk\"" } else { "" },
            header = self.header(current, forms),
            banner = banner.map(Banner::render).unwrap_or_default(),
        )
    }

    /// A host page: `main` is the page's content (the host's markup), `current` the path for
    /// the navigation, `scripts` the host scripts it runs.
    pub fn page(
        &self,
        status: StatusCode,
        title: &str,
        current: &str,
        banner: Option<&Banner>,
        main: &str,
        scripts: &[&super::assets::Asset],
    ) -> Response {
        let html = self.document(
            title,
            current,
            banner,
            &format!("<main>{main}</main>"),
            scripts,
            Forms::Session,
        );
        host_html(status, html)
    }
}

/// A host page's response: HTML with the host CSP, never cached.
pub fn host_html(status: StatusCode, html: String) -> Response {
    let mut res = (status, axum::response::Html(html)).into_response();
    let h = res.headers_mut();
    // The host CSP, nosniff, frame and referrer headers come from the router's
    // `security_headers` layer, which every answer passes.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A page for someone not signed in (sign-in, errors): the brand and the content.
pub fn signed_out_page(status: StatusCode, title: &str, main: &str) -> Response {
    host_html(
        status,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{} · Osler</title><link rel=\"stylesheet\" href=\"{}\"></head><body>\
             <header class=\"shell\"><div class=\"shell-top\"><a class=\"brand\" href=\"/\">Osler</a>\
             </div></header><div id=\"content\"><main>{main}</main></div></body></html>",
            esc(title),
            esc(&OSLER_CSS.url())
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Host pages

/// A signed-in person on a host page, with their shell. Signed out, they are sent to sign in
/// (and back here afterwards); a kiosk account is sent to its check-in screen.
pub struct Page {
    pub app: App,
    pub shell: Shell,
    pub parts: Parts,
}

impl Page {
    pub fn caller(&self) -> &Caller {
        &self.shell.caller
    }

    /// Check a form's CSRF field against the session's token.
    pub fn check_csrf(&self, sent: &str) -> Result<(), ApiError> {
        if secrets_equal(sent, &self.caller().session.csrf) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "this form has expired; reload the page and try again",
            ))
        }
    }

    /// The session's CSRF token, for the page's forms.
    pub fn csrf(&self) -> String {
        esc(&self.caller().session.csrf)
    }

    pub fn render(
        &self,
        status: StatusCode,
        title: &str,
        banner: Option<&Banner>,
        main: &str,
    ) -> Response {
        self.shell
            .page(status, title, self.parts.uri.path(), banner, main, &[])
    }

    pub fn render_with(
        &self,
        status: StatusCode,
        title: &str,
        banner: Option<&Banner>,
        main: &str,
        scripts: &[&super::assets::Asset],
    ) -> Response {
        self.shell
            .page(status, title, self.parts.uri.path(), banner, main, scripts)
    }

    /// Through the one gate: `Ok` if the person holds `permission`, otherwise the refusal
    /// (recorded in the audit trail as `action`, like the API's) as a page.
    pub async fn require(&self, action: &str, permission: Permission) -> Result<(), Response> {
        let check = crate::access::Check::new(action, crate::access::Need::Permission(permission));
        match self.app.gate.check(&self.caller().ctx(), check).await {
            Ok(()) => Ok(()),
            Err(crate::access::Refusal::Denied(m)) => Err(self.refuse(&m)),
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }

    /// Why the person may not use this page (to show an empty form, say), without an audit
    /// entry: the action itself goes through the gate when it is asked for.
    pub fn refusal(&self, action: &str, permission: Permission) -> Option<Response> {
        let check = crate::access::Check::new(action, crate::access::Need::Permission(permission));
        crate::access::Gate::refusal(&self.caller().ctx(), &check).map(|m| self.refuse(&m))
    }

    /// A refusal as a page, for a person who may not use this page.
    pub fn refuse(&self, message: &str) -> Response {
        let message = sentence(message);
        self.render(
            StatusCode::FORBIDDEN,
            "Not allowed",
            None,
            &format!(
                "<div class=\"error-page\"><h1>Not allowed</h1><p class=\"error\" role=\"alert\">{}</p>\
                 <p><a href=\"/\">Home</a></p></div>",
                esc(&message)
            ),
        )
    }
}

impl FromRequestParts<App> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let caller = match resolve(parts, app) {
            Ok(Some(c)) => c,
            Ok(None) => return Err(login_redirect(parts)),
            Err(e) => return Err(e.into_response()),
        };
        if is_kiosk(&caller.user) && parts.uri.path() != "/kiosk" {
            return Err(Redirect::to(&kiosk_home(app, &caller)).into_response());
        }
        let shell = Shell::new(app, caller).map_err(IntoResponse::into_response)?;
        Ok(Page {
            app: app.clone(),
            shell,
            parts: parts.clone(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The clinic's time

/// The clinic's time zone (`timezone` in `osler.toml`, checked at start-up).
pub fn clinic_zone(app: &App) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(&app.config.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// Today in the clinic's time zone.
pub fn clinic_today(app: &App) -> jiff::civil::Date {
    jiff::Timestamp::now().to_zoned(clinic_zone(app)).date()
}

// ---------------------------------------------------------------------------------------------
// Plugin pages

/// Frame a plugin's answer in the shell (see the module docs). The `osler-frame` and
/// `osler-patient` headers are the host's and never reach the browser. Anything that is not
/// HTML, or asks to be `bare`, passes as it is.
pub async fn present_plugin(
    app: &App,
    caller: &Caller,
    plugin: &str,
    path: &str,
    res: Response,
) -> Response {
    let (mut parts, body) = res.into_parts();
    let bare = parts
        .headers
        .remove(FRAME_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"bare"));
    let patient = parts
        .headers
        .remove(PATIENT_HEADER)
        .and_then(|v| v.to_str().ok().map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty());
    let html = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/html")
        });
    if bare || !html {
        return Response::from_parts(parts, body);
    }
    // The body is already in memory and bounded by the plugin's response limit.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let page = frame::parse(&String::from_utf8_lossy(&bytes));
    let shell = match Shell::new(app, caller.clone()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let ctx = caller.ctx();
    let may_see_patients =
        ctx.can(Permission::PatientsRead) || ctx.can(Permission::PatientsReadOwn);
    let banner = match &patient {
        Some(id) if may_see_patients => Some(Banner::load(app, caller, id).await),
        _ => None,
    };
    let title = page.title.clone().unwrap_or_else(|| plugin.to_string());
    let content = format!(
        "<div class=\"plugin-frame\" data-plugin=\"{}\">{}</div>",
        esc(plugin),
        frame::shadow_root(&page, &PLUGIN_CSS.url(), &PLUGIN_CSS.path())
    );
    let html = shell.document(&title, path, banner.as_ref(), &content, &[], Forms::Shell);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Response::from_parts(parts, Body::from(html))
}

// ---------------------------------------------------------------------------------------------
// Errors for browsers

fn error_title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "Please check what was entered",
        401 => "Please sign in",
        403 => "Not allowed",
        404 => "Not found",
        405 => "Not possible here",
        409 => "Changed or already there",
        413 => "Too large",
        428 => "Version needed",
        429 => "Too many attempts",
        502 | 504 => "A plugin did not answer",
        503 => "Unavailable",
        _ if status.is_server_error() => "Something went wrong",
        _ => "Could not do that",
    }
}

/// An API message as a sentence: a capital first letter and a full stop.
pub fn sentence(message: &str) -> String {
    let m = message.trim();
    let mut chars = m.chars();
    let mut out: String = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// An error as a page: in the shell for a signed-in person, plain otherwise.
pub fn error_page(
    app: &App,
    caller: Option<Caller>,
    path: &str,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    let title = error_title(status);
    let main = format!(
        "<div class=\"error-page card\"><h1>{title}</h1><p class=\"error\" role=\"alert\">{}</p>\
         <p><a href=\"/\">Home</a></p><p class=\"muted small\">{} · {}</p></div>",
        esc(&sentence(message)),
        status.as_u16(),
        esc(code)
    );
    match caller.map(|c| Shell::new(app, c)) {
        Some(Ok(shell)) => shell.page(status, title, path, None, &main, &[]),
        _ => signed_out_page(status, title, &main),
    }
}

/// Middleware: an error answered to a browser becomes a page (in the shell when signed in),
/// with the same status and message; signed out, a page asks to sign in and comes back. API
/// clients (no `text/html` in `Accept`) get the JSON error unchanged.
pub async fn browser_errors(State(app): State<App>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if !wants_html(&parts) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let saved = parts.clone();
    let res = next.run(Request::from_parts(parts, body)).await;
    let status = res.status();
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_html {
        return res;
    }
    if status == StatusCode::UNAUTHORIZED && saved.method == Method::GET {
        return login_redirect(&saved);
    }
    let retry_after = res.headers().get(header::RETRY_AFTER).cloned();
    let bytes = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let (code, message) = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) => (
            v["error"]["code"].as_str().unwrap_or("error").to_string(),
            v["error"]["message"]
                .as_str()
                .unwrap_or("the server could not do this")
                .to_string(),
        ),
        Err(_) => {
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            (
                "error".to_string(),
                if text.is_empty() || text.len() > 500 {
                    status
                        .canonical_reason()
                        .unwrap_or("the server could not do this")
                        .to_string()
                } else {
                    text
                },
            )
        }
    };
    let caller = resolve(&saved, &app).ok().flatten();
    // A kiosk account sees no error pages of other screens: back to its own (whose own
    // errors it does see, or it would be sent round in circles).
    if let Some(c) = &caller
        && is_kiosk(&c.user)
    {
        let home = kiosk_home(&app, c);
        let own = saved.uri.path().starts_with(home.trim_end_matches('/'));
        if !own {
            return Redirect::to(&home).into_response();
        }
    }
    let mut page = error_page(&app, caller, saved.uri.path(), status, &code, &message);
    if let Some(r) = retry_after {
        page.headers_mut().insert(header::RETRY_AFTER, r);
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(sentence("no such endpoint"), "No such endpoint.");
        assert_eq!(sentence("Already one."), "Already one.");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path("/patients/1"), Some("/patients/1"));
        assert_eq!(local_path("//evil.example/"), None);
        assert_eq!(local_path("/\\evil.example"), None);
        assert_eq!(local_path("https://evil.example/"), None);
        assert_eq!(local_path("/login?next=/"), None);
    }

    #[test]
    fn the_shell_token_differs_from_the_session_token_and_is_accepted() {
        let t = shell_token("session-csrf");
        assert_ne!(t, "session-csrf");
        assert!(shell_form_token_ok("session-csrf", &t));
        assert!(shell_form_token_ok("session-csrf", "session-csrf"));
        assert!(!shell_form_token_ok("session-csrf", "forged"));
        assert_ne!(shell_token("another-session"), t);
    }
}
