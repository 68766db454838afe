//! The pages of patients' own access (see [`crate::http::portal`] for the rules):
//!
//! - `POST /patients/{id}/account`, `POST /patients/{id}/account/code` (staff with
//!   `patients.accounts`): create a chart's patient account, or issue a new activation code;
//!   the answer is a printable page with the code, shown this once.
//! - `GET|POST /activate` (no session): redeem a code with the chart's birth date and choose
//!   a password.
//! - `GET|POST /me/contact` (a patient): change one's own phones, email and address.
//! - `GET|POST /me/shares`, `POST /me/shares/{id}/revoke` (a patient): share parts of one's
//!   record, see and revoke one's shares.
//! - `GET /me/access` (a patient): who looked at my record — the clinic's accesses from the
//!   audit trail and the views of one's shares.
//! - `GET /share/{token}` (no session): a share, read-only, as of when it was made.

use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{PartsOf, esc, secure, set_cookie};
use crate::access::{Ctx, Permission};
use crate::app::App;
use crate::audit::AuditQuery;
use crate::auth::{random_token, secrets_equal};
use crate::http::ApiError;
use crate::http::api::Source;
use crate::http::assets::{OSLER_CSS, PLUGIN_CSS};
use crate::http::caller::cookie;
use crate::http::portal::{self, Redeem, Share, SharedSection, printable};
use crate::http::shell::{Page, clinic_zone, signed_out_page};
use crate::patients::PatientError;
use crate::patients::fhir::{Address, ContactPoint, Patient};
use crate::patients::version_of;

const ACTIVATE_CSRF_COOKIE: &str = "osler_activate_csrf";

pub fn router() -> Router<App> {
    Router::new()
        .route("/patients/{id}/account", post(create_account))
        .route("/patients/{id}/account/code", post(new_code))
        .route("/activate", get(activate_page).post(activate_submit))
        .route("/me/contact", get(contact_page).post(contact_submit))
        .route("/me/shares", get(shares_page).post(share_submit))
        .route("/me/shares/{id}/revoke", post(revoke_submit))
        .route("/me/access", get(access_page))
        .route("/share/{token}", get(share_view))
}

/// Unix seconds as the clinic's local date and time.
fn local(app: &App, unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| {
            t.to_zoned(clinic_zone(app))
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

fn error_p(msg: &str) -> String {
    format!("<p class=\"error\" role=\"alert\">{}</p>", esc(msg))
}

// ---------------------------------------------------------------------------------------------
// Staff: the account card on the chart, and the code page

/// The chart's "Patient account" card, for staff who may manage patient accounts.
pub fn account_card(app: &App, page: &Page, patient: &Patient, id: &str) -> String {
    if !page.caller().ctx().can(Permission::PatientAccounts) {
        return String::new();
    }
    let csrf = page.csrf();
    let body = match portal::account_of(app, id) {
        Ok(Some(u)) => format!(
            "<p>This patient has an account: <strong>{}</strong>. A new activation code lets \
             them set a new password (the previous code stops working).</p>\
             <form method=\"post\" action=\"/patients/{}/account/code\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" class=\"secondary\">Issue a new activation code</button></form>",
            esc(&u.username),
            esc(id)
        ),
        Ok(None) => {
            let suggestion = patient
                .chart_number()
                .map(|c| format!("p{}", c.to_ascii_lowercase()))
                .unwrap_or_default();
            format!(
                "<p>No account yet. Create one to let this patient see their own record; they \
                 activate it with a one-time code and their birth date.</p>\
                 <form method=\"post\" action=\"/patients/{}/account\" class=\"inline-form\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <label for=\"acct-username\">User name</label>\
                 <input id=\"acct-username\" name=\"username\" required value=\"{}\" \
                 pattern=\"[a-z0-9._\\-]{{2,64}}\">\
                 <button type=\"submit\">Create patient account</button></form>",
                esc(id),
                esc(&suggestion)
            )
        }
        Err(_) => "<p class=\"muted\">Accounts are unavailable.</p>".into(),
    };
    format!(
        "<section class=\"card noprint\" aria-labelledby=\"acct-h\"><h2 id=\"acct-h\">Patient \
         account</h2>{body}</section>"
    )
}

#[derive(Deserialize)]
struct AccountForm {
    csrf: String,
    #[serde(default)]
    username: String,
}

fn code_page(page: &Page, id: &str, username: &str, code: &str) -> Response {
    let days = page.app.config.portal.activation_seconds / 86_400;
    let valid = if days >= 1 {
        format!("{days} days")
    } else {
        format!("{} minutes", page.app.config.portal.activation_seconds / 60)
    };
    let site = page
        .app
        .config
        .public_url
        .as_deref()
        .map(|u| format!("{}/activate", u.trim_end_matches('/')))
        .unwrap_or_else(|| "/activate".into());
    page.render(
        StatusCode::OK,
        "Activation code",
        None,
        &format!(
            "<div class=\"card activation\"><h1>Your patient account</h1>\
             <p>To see your record online, go to <strong>{}</strong> and enter:</p>\
             <dl class=\"facts\"><dt>Activation code</dt><dd><code id=\"activation-code\">{}</code></dd>\
             <dt>User name</dt><dd><code id=\"activation-username\">{}</code></dd></dl>\
             <p>You will also be asked for your birth date, and to choose a password. The code \
             works once, for {valid}.</p>\
             <p class=\"muted small noprint\">This code is shown only now: print this page or \
             copy the code for the patient. Osler keeps only a fingerprint of it.</p>\
             <p class=\"noprint\"><a href=\"/patients/{}\">Back to the chart</a></p></div>",
            esc(&site),
            esc(&printable(code)),
            esc(username),
            esc(id)
        ),
    )
}

async fn create_account(
    page: Page,
    Path(id): Path<String>,
    Form(f): Form<AccountForm>,
) -> Response {
    if let Err(e) = page.check_csrf(&f.csrf) {
        return e.into_response();
    }
    let ctx = page.caller().ctx();
    let username = f.username.trim().to_ascii_lowercase();
    match portal::create_account(&page.app, &ctx, &id, &username, None).await {
        Ok((u, code)) => code_page(&page, &id, &u.username, &code),
        Err(e) => e.into_response(),
    }
}

async fn new_code(page: Page, Path(id): Path<String>, Form(f): Form<AccountForm>) -> Response {
    if let Err(e) = page.check_csrf(&f.csrf) {
        return e.into_response();
    }
    let ctx = page.caller().ctx();
    match portal::issue_code(&page.app, &ctx, &id).await {
        Ok((u, code)) => code_page(&page, &id, &u.username, &code),
        Err(e) => e.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Activation (no session)

fn activate_form(csrf: &str, error: Option<&str>, code: &str, birth_date: &str) -> String {
    format!(
        "<div class=\"card login\"><h1>Activate your account</h1>{}\
         <p>Enter the activation code the clinic gave you and your birth date, then choose a \
         password (at least 10 characters).</p>\
         <form method=\"post\" action=\"/activate\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"code\">Activation code</label>\
         <input id=\"code\" name=\"code\" required autocomplete=\"off\" value=\"{}\">\
         <label for=\"birth_date\">Birth date</label>\
         <input id=\"birth_date\" name=\"birth_date\" type=\"date\" required value=\"{}\">\
         <label for=\"password\">New password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\">\
         <label for=\"confirm\">New password again</label>\
         <input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" required minlength=\"10\">\
         <button type=\"submit\">Activate</button></form></div>",
        error.map(error_p).unwrap_or_default(),
        esc(csrf),
        esc(code),
        esc(birth_date),
    )
}

fn with_activate_cookie(mut res: Response, csrf: &str, secure: bool) -> Response {
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(ACTIVATE_CSRF_COOKIE, csrf, Some(3600), secure),
    );
    res
}

async fn activate_page(State(app): State<App>, PartsOf(parts): PartsOf) -> Response {
    let csrf = random_token();
    let res = signed_out_page(
        StatusCode::OK,
        "Activate your account",
        &activate_form(&csrf, None, "", ""),
    );
    with_activate_cookie(res, &csrf, secure(&app, &parts.headers))
}

#[derive(Deserialize)]
struct ActivateForm {
    csrf: String,
    code: String,
    birth_date: String,
    password: String,
    confirm: String,
}

async fn activate_submit(
    State(app): State<App>,
    Source(source): Source,
    PartsOf(parts): PartsOf,
    Form(f): Form<ActivateForm>,
) -> Response {
    let secure = secure(&app, &parts.headers);
    let fresh = random_token();
    let retry = |status: StatusCode, msg: &str| {
        let res = signed_out_page(
            status,
            "Activate your account",
            &activate_form(&fresh, Some(msg), &f.code, &f.birth_date),
        );
        with_activate_cookie(res, &fresh, secure)
    };
    let expected = cookie(&parts, ACTIVATE_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !secrets_equal(&expected, &f.csrf) {
        return retry(
            StatusCode::FORBIDDEN,
            "This form has expired. Please try again.",
        );
    }
    if f.password != f.confirm {
        return retry(
            StatusCode::BAD_REQUEST,
            "The two passwords are not the same.",
        );
    }
    match portal::redeem(&app, source, &f.code, &f.birth_date, &f.password).await {
        Ok(Ok(username)) => {
            let res = signed_out_page(
                StatusCode::OK,
                "Account activated",
                &format!(
                    "<div class=\"card login\"><h1>Your account is ready</h1>\
                     <p role=\"status\" class=\"notice\">Your password is set. Your user name is \
                     <strong id=\"activated-username\">{}</strong>.</p>\
                     <p><a class=\"button\" href=\"/login\">Sign in</a></p></div>",
                    esc(&username)
                ),
            );
            with_activate_cookie(res, "", secure)
        }
        Ok(Err(why)) => {
            let status = match why {
                Redeem::Locked(_) => StatusCode::TOO_MANY_REQUESTS,
                Redeem::Password(_) | Redeem::WrongBirthDate => StatusCode::BAD_REQUEST,
                Redeem::NotValid | Redeem::Expired => StatusCode::FORBIDDEN,
            };
            retry(status, &why.message())
        }
        Err(e) => e.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// A patient's own pages

/// The signed-in patient's own record id (`None`: not a patient; see [`not_a_patient`]).
fn own(page: &Page) -> Option<String> {
    let c = page.caller();
    match (&c.user.patient, c.ctx().can(Permission::PatientsReadOwn)) {
        (Some(p), true) => Some(p.clone()),
        _ => None,
    }
}

fn not_a_patient(page: &Page) -> Response {
    page.refuse("This page is for patients, about their own record.")
}

fn first_telecom<'a>(p: &'a Patient, system: &str, mobile: bool) -> Option<&'a str> {
    p.telecom
        .iter()
        .find(|t| {
            t.system.as_deref() == Some(system)
                && (system != "phone" || (t.r#use.as_deref() == Some("mobile")) == mobile)
        })
        .and_then(|t| t.value.as_deref())
}

#[derive(Deserialize, Default, Clone)]
struct ContactForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    mobile: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    line: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    province: String,
    #[serde(default)]
    postal_code: String,
}

impl ContactForm {
    /// What is wrong with the form, in words for the patient (empty: nothing).
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (label, v) in [("Home phone", &self.phone), ("Mobile phone", &self.mobile)] {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            let digits = v.chars().filter(char::is_ascii_digit).count();
            let ok_chars = v
                .chars()
                .all(|c| c.is_ascii_digit() || " -().+x".contains(c));
            if !ok_chars || !(7..=15).contains(&digits) {
                out.push(format!(
                    "{label}: write a phone number, e.g. 613-555-0100 (7 to 15 digits)"
                ));
            }
        }
        let email = self.email.trim();
        if !email.is_empty() {
            let ok = email.len() <= 254
                && !email.chars().any(char::is_whitespace)
                && email.split_once('@').is_some_and(|(user, host)| {
                    !user.is_empty()
                        && host.contains('.')
                        && !host.starts_with('.')
                        && !host.ends_with('.')
                });
            if !ok {
                out.push("Email: write an address like name@example.org".into());
            }
        }
        for (label, v, max) in [
            ("Street address", &self.line, 200),
            ("City", &self.city, 100),
            ("Province", &self.province, 40),
            ("Postal code", &self.postal_code, 20),
        ] {
            if v.trim().chars().count() > max {
                out.push(format!("{label}: at most {max} characters"));
            }
        }
        out
    }

    fn of(p: &Patient) -> ContactForm {
        let a = p.address.first().cloned().unwrap_or_default();
        ContactForm {
            csrf: String::new(),
            version: version_of(p),
            phone: first_telecom(p, "phone", false).unwrap_or("").into(),
            mobile: first_telecom(p, "phone", true).unwrap_or("").into(),
            email: first_telecom(p, "email", false).unwrap_or("").into(),
            line: a.line.join(", "),
            city: a.city.unwrap_or_default(),
            province: a.state.unwrap_or_default(),
            postal_code: a.postal_code.unwrap_or_default(),
        }
    }

    /// The record's telecom and addresses with this form's values in place of the ones it
    /// shows; other phones (work) and addresses are kept.
    fn apply(&self, p: &Patient) -> (Vec<ContactPoint>, Vec<Address>) {
        let mut telecom = Vec::new();
        let (mut phone, mut mobile, mut email) = (false, false, false);
        let cp = |system: &str, value: &str, r#use: Option<&str>| ContactPoint {
            system: Some(system.into()),
            value: Some(value.trim().into()),
            r#use: r#use.map(str::to_string),
            rank: None,
        };
        for t in &p.telecom {
            let slot = match (t.system.as_deref(), t.r#use.as_deref()) {
                (Some("phone"), Some("mobile")) => Some((&mut mobile, "mobile")),
                (Some("phone"), Some("work")) => None,
                (Some("phone"), _) => Some((&mut phone, "phone")),
                (Some("email"), _) => Some((&mut email, "email")),
                _ => None,
            };
            match slot {
                Some((done, which)) if !*done => {
                    *done = true;
                    let value = match which {
                        "mobile" => &self.mobile,
                        "phone" => &self.phone,
                        _ => &self.email,
                    };
                    if !value.trim().is_empty() {
                        let mut t = t.clone();
                        t.value = Some(value.trim().into());
                        telecom.push(t);
                    }
                }
                _ => telecom.push(t.clone()),
            }
        }
        if !phone && !self.phone.trim().is_empty() {
            telecom.push(cp("phone", &self.phone, Some("home")));
        }
        if !mobile && !self.mobile.trim().is_empty() {
            telecom.push(cp("phone", &self.mobile, Some("mobile")));
        }
        if !email && !self.email.trim().is_empty() {
            telecom.push(cp("email", &self.email, None));
        }
        let mut address = p.address.clone();
        let empty = [&self.line, &self.city, &self.province, &self.postal_code]
            .iter()
            .all(|s| s.trim().is_empty());
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        if empty {
            if !address.is_empty() {
                address.remove(0);
            }
        } else {
            let mut a = address.first().cloned().unwrap_or_else(|| Address {
                r#use: Some("home".into()),
                country: Some("CA".into()),
                ..Default::default()
            });
            a.text = None;
            a.line = opt(&self.line).into_iter().collect();
            a.city = opt(&self.city);
            a.state = opt(&self.province).map(|s| s.to_ascii_uppercase());
            a.postal_code = opt(&self.postal_code).map(|s| s.to_ascii_uppercase());
            if address.is_empty() {
                address.push(a);
            } else {
                address[0] = a;
            }
        }
        (telecom, address)
    }
}

fn contact_form_html(csrf: &str, f: &ContactForm, errors: &[String], notice: &str) -> String {
    let field = |id: &str, label: &str, value: &str, kind: &str, auto: &str| {
        format!(
            "<label for=\"{id}\">{label}</label><input id=\"{id}\" name=\"{id}\" type=\"{kind}\" \
             autocomplete=\"{auto}\" value=\"{}\">",
            esc(value)
        )
    };
    let errs: String = errors.iter().map(|e| error_p(e)).collect();
    format!(
        "<div class=\"page-head\"><h1>My contact details</h1></div>{notice}{errs}\
         <form method=\"post\" action=\"/me/contact\" class=\"card\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"version\" value=\"{}\">\
         {}{}{}{}{}{}{}\
         <p class=\"muted small\">The clinic sees your changes, and that you made them.</p>\
         <button type=\"submit\">Save</button></form>",
        esc(csrf),
        f.version,
        field("phone", "Home phone", &f.phone, "tel", "tel"),
        field("mobile", "Mobile phone", &f.mobile, "tel", "tel"),
        field("email", "Email", &f.email, "email", "email"),
        field("line", "Street address", &f.line, "text", "street-address"),
        field("city", "City", &f.city, "text", "address-level2"),
        field(
            "province",
            "Province",
            &f.province,
            "text",
            "address-level1"
        ),
        field(
            "postal_code",
            "Postal code",
            &f.postal_code,
            "text",
            "postal-code"
        ),
    )
}

async fn contact_page(page: Page) -> Response {
    let Some(id) = own(&page) else {
        return not_a_patient(&page);
    };
    let p = match page.app.patients.get(&page.caller().ctx(), &id).await {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let saved = page.parts.uri.query().is_some_and(|q| q.contains("saved"));
    let notice = if saved {
        "<p class=\"notice\" role=\"status\">Your contact details are saved.</p>"
    } else {
        ""
    };
    page.render(
        StatusCode::OK,
        "My contact details",
        None,
        &contact_form_html(&page.csrf(), &ContactForm::of(&p), &[], notice),
    )
}

async fn contact_submit(page: Page, Form(f): Form<ContactForm>) -> Response {
    if let Err(e) = page.check_csrf(&f.csrf) {
        return e.into_response();
    }
    let Some(id) = own(&page) else {
        return not_a_patient(&page);
    };
    let ctx = page.caller().ctx();
    let stored = match page.app.patients.get(&ctx, &id).await {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (telecom, address) = f.apply(&stored);
    let again = |errors: Vec<String>, status: StatusCode, f: &ContactForm| {
        page.render(
            status,
            "My contact details",
            None,
            &contact_form_html(&page.csrf(), f, &errors, ""),
        )
    };
    let problems = f.problems();
    if !problems.is_empty() {
        return again(problems, StatusCode::BAD_REQUEST, &f);
    }
    match page
        .app
        .patients
        .update_contact(&ctx, &id, f.version, telecom, address)
        .await
    {
        Ok(_) => Redirect::to("/me/contact?saved=1").into_response(),
        Err(PatientError::Invalid(errs)) => again(
            errs.iter()
                .map(|e| {
                    let what = if e.field.starts_with("telecom") {
                        "Phone or email"
                    } else if e.field.starts_with("address") {
                        "Address"
                    } else {
                        "Record"
                    };
                    format!("{what}: {}", e.message)
                })
                .collect(),
            StatusCode::BAD_REQUEST,
            &f,
        ),
        Err(PatientError::Stale { .. }) => {
            let mut f2 = f.clone();
            f2.version = version_of(&stored);
            again(
                vec![
                    "Your record was changed by the clinic while you were editing. Check your \
                     details and save again."
                        .into(),
                ],
                StatusCode::CONFLICT,
                &f2,
            )
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Shares

/// The share form: `section` repeats (`plugin/panel`, one per chosen section), so it is read
/// as pairs rather than through serde.
#[derive(Default)]
struct ShareForm {
    csrf: String,
    section: Vec<String>,
    days: String,
    recipient: String,
}

impl ShareForm {
    fn parse(body: &[u8]) -> ShareForm {
        let mut f = ShareForm::default();
        for (k, v) in form_urlencoded::parse(body) {
            match k.as_ref() {
                "csrf" => f.csrf = v.into_owned(),
                "section" => f.section.push(v.into_owned()),
                "days" => f.days = v.into_owned(),
                "recipient" => f.recipient = v.into_owned(),
                _ => {}
            }
        }
        f
    }
}

fn base_url(app: &App, headers: &HeaderMap) -> String {
    if let Some(u) = &app.config.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The longest share anyone may ask for, in days; a clinic may allow less.
const MAX_SHARE_DAYS: u64 = 90;

/// The longest share this clinic allows, in whole days (at least 1).
fn max_share_days(app: &App) -> u64 {
    (app.config.portal.share_max_seconds / 86_400).clamp(1, MAX_SHARE_DAYS)
}

async fn shares_html(page: &Page, error: Option<&str>, created: Option<(&Share, &str)>) -> String {
    let app = &page.app;
    let c = page.caller();
    let sections = c
        .site
        .as_deref()
        .map(|s| app.plugins.share_sections(s, &c.user.roles))
        .unwrap_or_default();
    let mut out = String::from("<div class=\"page-head\"><h1>Sharing my record</h1></div>");
    if let Some((share, token)) = created {
        let link = format!("{}/share/{}", base_url(app, &page.parts.headers), token);
        out.push_str(&format!(
            "<section class=\"card notice\" role=\"status\"><h2>Your share is ready</h2>\
             <p>Give this link to {} — it works until {}. It is shown only now; copy it.</p>\
             <p><input id=\"share-link\" readonly value=\"{}\" aria-label=\"Share link\"></p>\
             <p><a id=\"share-link-a\" href=\"{}\">{}</a></p></section>",
            share
                .recipient
                .as_deref()
                .map(esc)
                .unwrap_or_else(|| "the person you choose".into()),
            esc(&local(app, share.expires)),
            esc(&link),
            esc(&link),
            esc(&link)
        ));
    }
    if let Some(e) = error {
        out.push_str(&error_p(e));
    }
    let max_days = max_share_days(app);
    let default_days = max_days.min(7);
    if sections.is_empty() {
        out.push_str(
            "<section class=\"card\"><p class=\"muted\">Nothing can be shared at this clinic \
             yet.</p></section>",
        );
    } else {
        let boxes: String = sections
            .iter()
            .map(|s| {
                let v = format!("{}/{}", s.plugin, s.panel);
                format!(
                    "<label class=\"check\"><input type=\"checkbox\" name=\"section\" value=\"{}\" \
                     id=\"section-{}\"> {}</label>",
                    esc(&v),
                    esc(&s.panel),
                    esc(&s.title)
                )
            })
            .collect();
        out.push_str(&format!(
            "<form method=\"post\" action=\"/me/shares\" class=\"card\">\
             <h2>Share part of my record</h2>\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <fieldset><legend>What to share</legend>{boxes}</fieldset>\
             <label for=\"days\">For how many days (1 to {max_days})</label>\
             <input id=\"days\" name=\"days\" type=\"number\" min=\"1\" max=\"{max_days}\" value=\"{default_days}\" required>\
             <label for=\"recipient\">For whom (optional)</label>\
             <input id=\"recipient\" name=\"recipient\" maxlength=\"100\" placeholder=\"e.g. Dr. Chen, walk-in clinic\">\
             <p class=\"muted small\">The person with the link sees what you chose, as it is \
             today, until the share expires or you revoke it. Each time it is opened is shown \
             to you.</p>\
             <button type=\"submit\">Create share link</button></form>",
            page.csrf()
        ));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let shares = portal::my_shares(app, &c.ctx()).unwrap_or_default();
    let rows: String = shares
        .iter()
        .map(|(_, s)| {
            let state = if s.revoked.is_some() {
                "revoked".to_string()
            } else if s.expires <= now {
                "expired".to_string()
            } else {
                format!("until {}", local(app, s.expires))
            };
            let revoke = if s.live(now) {
                format!(
                    "<form method=\"post\" action=\"/me/shares/{}/revoke\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                     <button type=\"submit\" class=\"danger\">Revoke</button></form>",
                    esc(&s.id),
                    page.csrf()
                )
            } else {
                String::new()
            };
            format!(
                "<tr data-share=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.id),
                esc(&local(app, s.created)),
                esc(s.recipient.as_deref().unwrap_or("—")),
                esc(&s.section_titles()),
                esc(&state),
                s.view_count,
                revoke
            )
        })
        .collect();
    out.push_str(&format!(
        "<section class=\"card\"><h2>My shares</h2>{}</section>",
        if rows.is_empty() {
            "<p class=\"muted\">You have not shared your record.</p>".to_string()
        } else {
            format!(
                "<table id=\"shares\"><thead><tr><th>Made</th><th>For</th><th>What</th>\
                 <th>Status</th><th>Views</th><th></th></tr></thead><tbody>{rows}</tbody></table>\
                 <p><a href=\"/me/access\">Who looked at my record</a></p>"
            )
        }
    ));
    out
}

async fn shares_page(page: Page) -> Response {
    if own(&page).is_none() {
        return not_a_patient(&page);
    }
    let html = shares_html(&page, None, None).await;
    page.render(StatusCode::OK, "Sharing my record", None, &html)
}

async fn again(page: &Page, msg: String) -> Response {
    let html = shares_html(page, Some(&msg), None).await;
    page.render(StatusCode::BAD_REQUEST, "Sharing my record", None, &html)
}

async fn share_submit(page: Page, body: axum::body::Bytes) -> Response {
    let f = ShareForm::parse(&body);
    if let Err(e) = page.check_csrf(&f.csrf) {
        return e.into_response();
    }
    let Some(patient) = own(&page) else {
        return not_a_patient(&page);
    };
    // A share asked for longer than the clinic allows is cut to its maximum (the page then
    // says until when it works).
    let max = max_share_days(&page.app);
    let days: u64 = match f.days.trim().parse() {
        Ok(d) if (1..=MAX_SHARE_DAYS).contains(&d) => d,
        _ => return again(&page, format!("Choose from 1 to {max} days.")).await,
    };
    let recipient = f.recipient.trim();
    if recipient.chars().count() > 100 {
        return again(
            &page,
            "The name of whom it is for is at most 100 characters.".into(),
        )
        .await;
    }
    let caller = page.caller();
    let Some(site) = caller.site.clone() else {
        return again(&page, "Choose a site first.".into()).await;
    };
    let offered = page.app.plugins.share_sections(&site, &caller.user.roles);
    let mut chosen = Vec::new();
    for s in &f.section {
        match offered
            .iter()
            .find(|o| format!("{}/{}", o.plugin, o.panel) == *s)
        {
            Some(o)
                if !chosen.iter().any(|c: &crate::plugins::views::PanelRef| {
                    c.plugin == o.plugin && c.panel == o.panel
                }) =>
            {
                chosen.push(o.clone())
            }
            Some(_) => {}
            None => {
                return again(
                    &page,
                    "That part of the record cannot be shared here.".into(),
                )
                .await;
            }
        }
    }
    if chosen.is_empty() {
        return again(
            &page,
            "Choose at least one part of your record to share.".into(),
        )
        .await;
    }
    // Rendered now, for the patient, each in its plugin's sandbox (checked and audited like
    // a chart panel): what the share shows is what the patient saw when making it.
    let person = crate::http::plugins::person(&page.app, caller, &site);
    let ctx: Ctx = caller.ctx();
    let rendered = page
        .app
        .plugins
        .render_panels(chosen, &patient, &site, &ctx, &person)
        .await;
    let mut sections = Vec::new();
    for r in rendered {
        match r.html {
            Ok(html) => sections.push(SharedSection {
                plugin: r.panel.plugin,
                panel: r.panel.panel,
                title: r.panel.title,
                html,
            }),
            Err(e) => {
                return again(
                    &page,
                    format!(
                        "“{}” could not be prepared ({}); nothing was shared.",
                        r.panel.title,
                        e.for_people()
                    ),
                )
                .await;
            }
        }
    }
    let recipient = (!recipient.is_empty()).then(|| recipient.to_string());
    match portal::create_share(&page.app, &ctx, sections, days * 86_400, recipient).await {
        Ok((share, token)) => {
            let html = shares_html(&page, None, Some((&share, &token))).await;
            page.render(StatusCode::CREATED, "Sharing my record", None, &html)
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

async fn revoke_submit(page: Page, Path(id): Path<String>, Form(f): Form<CsrfOnly>) -> Response {
    if let Err(e) = page.check_csrf(&f.csrf) {
        return e.into_response();
    }
    if own(&page).is_none() {
        return not_a_patient(&page);
    }
    match portal::revoke_share(&page.app, &page.caller().ctx(), &id).await {
        Ok(_) => Redirect::to("/me/shares").into_response(),
        Err(e) => e.into_response(),
    }
}

/// `/share/{token}`: a share, for whoever holds the link.
async fn share_view(
    State(app): State<App>,
    Source(source): Source,
    PartsOf(parts): PartsOf,
    Path(token): Path<String>,
) -> Response {
    let subject = match source {
        Some(ip) => format!("share\0{ip}"),
        None => "share".into(),
    };
    let attempt = match app.throttle.begin(&subject, source, None) {
        Ok(a) => a,
        Err(_) => {
            return share_document(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "<div class=\"card\"><h1>Too many attempts</h1><p>Please try again later.</p></div>",
            );
        }
    };
    if !attempt.delay.is_zero() {
        tokio::time::sleep(attempt.delay).await;
    }
    let agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let share = match portal::open_share(&app, &token, source, agent).await {
        Ok(s) => s,
        Err(e) => {
            app.throttle.failed(attempt);
            return e.into_response();
        }
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let Some(share) = share.filter(|s| s.live(now)) else {
        app.throttle.failed(attempt);
        return share_document(
            StatusCode::NOT_FOUND,
            "Share not available",
            "<div class=\"card\"><h1>This share is not available</h1>\
             <p>The link may be wrong, or the patient revoked the share, or it expired. Ask \
             the patient for a new link.</p></div>",
        );
    };
    app.throttle.succeeded(attempt);
    let sections: String = share
        .sections
        .iter()
        .map(|s| {
            let html = crate::http::frame::parse(&s.html);
            format!(
                "<section class=\"card panel\" data-section=\"{}\"><h2>{}</h2>\
                 <div class=\"plugin-frame\">{}</div></section>",
                esc(&s.panel),
                esc(&s.title),
                crate::http::frame::shadow_root(&html, &PLUGIN_CSS.url(), &PLUGIN_CSS.path())
            )
        })
        .collect();
    let body = format!(
        "<div class=\"page-head\"><h1>Shared health record</h1></div>\
         <p class=\"notice\" role=\"status\">Shared by the patient{} — as of {}. This link \
         works until {}. It is read-only; the clinic's current record may differ.</p>{sections}",
        share
            .recipient
            .as_deref()
            .map(|r| format!(" for {}", esc(r)))
            .unwrap_or_default(),
        esc(&local(&app, share.created)),
        esc(&local(&app, share.expires)),
    );
    share_document(StatusCode::OK, "Shared health record", &body)
}

/// A share's page: no shell, not indexed, not cached, no referrer sent from it.
fn share_document(status: StatusCode, title: &str, main: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex, nofollow\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{} · Osler</title><link rel=\"stylesheet\" href=\"{}\"></head><body>\
         <header class=\"shell\"><div class=\"shell-top\"><span class=\"brand\">Osler</span>\
         </div></header><div id=\"content\"><main>{main}</main></div></body></html>",
        esc(title),
        esc(&OSLER_CSS.url())
    );
    let mut res = crate::http::shell::host_html(status, html);
    let h = res.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

// ---------------------------------------------------------------------------------------------
// Who looked at my record

/// What an audit action means, for a patient.
fn access_kind(action: &str) -> &'static str {
    match action {
        "patient.read" => "Opened your record",
        "patient.update" => "Changed your record",
        "patient.search" => "Found your record in a search",
        "patient.create" => "Registered you",
        "patient-data.read" => "Read your clinical record",
        "patient-data.write" => "Added to your clinical record",
        "patient.account.create" => "Created your account",
        "patient.account.code" => "Issued you an activation code",
        "patient.match" => "Checked you in",
        a if a.starts_with("fhir.") => "Read your record (FHIR)",
        _ => "Other access to your record",
    }
}

async fn access_page(page: Page) -> Response {
    let Some(patient) = own(&page) else {
        return not_a_patient(&page);
    };
    let app = &page.app;
    let me = page.caller().user.username.clone();
    let mut entries = Vec::new();
    let mut cursor = None;
    for _ in 0..20 {
        let q = AuditQuery {
            patient: Some(patient.clone()),
            count: 1000,
            cursor: cursor.take(),
            ..Default::default()
        };
        let got = match app.audit.query(&q) {
            Ok(p) => p,
            Err(e) => return ApiError::from(e).into_response(),
        };
        entries.extend(got.entries.into_iter().filter(|e| {
            e.outcome == "success"
                && e.actor != me
                && e.actor != "anonymous"
                && e.actor != "system"
                && !e.action.starts_with("share.")
        }));
        match got.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let zone = clinic_zone(app);
    let when = |t: &str| {
        t.parse::<jiff::Timestamp>()
            .map(|ts| {
                ts.to_zoned(zone.clone())
                    .strftime("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_else(|_| t.to_string())
    };
    let mut names = std::collections::HashMap::new();
    let rows: String = entries
        .iter()
        .rev()
        .take(500)
        .map(|e| {
            let name = names
                .entry(e.actor.clone())
                .or_insert_with(|| {
                    app.accounts
                        .get(&e.actor)
                        .ok()
                        .flatten()
                        .map(|u| u.display_name.unwrap_or(u.username))
                        .unwrap_or_else(|| e.actor.clone())
                })
                .clone();
            let through = e
                .via
                .as_deref()
                .map(|v| format!(" (through {})", v.replace('>', ", ")))
                .unwrap_or_default();
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                esc(&when(&e.time)),
                esc(&name),
                esc(&e.role.replace(',', ", ")),
                esc(access_kind(&e.action)),
                esc(&through)
            )
        })
        .collect();
    let shares = portal::my_shares(app, &page.caller().ctx()).unwrap_or_default();
    let views: String = shares
        .iter()
        .flat_map(|(_, s)| s.views.iter().map(move |v| (s, v)))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|(s, v)| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&local(app, v.time)),
                esc(s.recipient.as_deref().unwrap_or("someone with your link")),
                esc(&s.section_titles()),
                esc(&v.agent)
            )
        })
        .collect();
    let body = format!(
        "<div class=\"page-head\"><h1>Who looked at my record</h1></div>\
         <section class=\"card\"><h2>Views of my shares</h2>{}</section>\
         <section class=\"card\"><h2>The clinic's accesses</h2>\
         <p class=\"muted small\">From the clinic's audit trail, newest first.</p>{}</section>",
        if views.is_empty() {
            "<p class=\"muted\">Nobody has opened a share of your record.</p>".to_string()
        } else {
            format!(
                "<table id=\"share-views\"><thead><tr><th>When</th><th>Share for</th><th>What</th>\
                 <th>Browser</th></tr></thead><tbody>{views}</tbody></table>"
            )
        },
        if rows.is_empty() {
            "<p class=\"muted\">No one at the clinic has accessed your record.</p>".to_string()
        } else {
            format!(
                "<table id=\"clinic-access\"><thead><tr><th>When</th><th>Who</th><th>Role</th>\
                 <th>What</th></tr></thead><tbody>{rows}</tbody></table>"
            )
        }
    );
    page.render(StatusCode::OK, "Who looked at my record", None, &body)
}
