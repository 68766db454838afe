//! `/admin/users`: the administrators' page for people — add a user, change roles, sites and
//! name, disable or enable, reset a password. Each action calls the service function the JSON
//! API calls (`/api/v1/users…`), so it is checked and audited the same way.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::access::{Permission, Role, permissions_of};
use crate::app::App;
use crate::auth::UserView;
use crate::http::ApiError;
use crate::http::api::{
    NewUser, PasswordChange, UserChange, add_user, change_password, change_user, set_disabled,
};
use crate::http::pages::esc;
use crate::http::shell::Page;

pub fn router() -> Router<App> {
    Router::new()
        .route("/admin/users", get(list).post(add))
        .route("/admin/users/{name}", get(show).post(act))
}

#[derive(Deserialize, Default)]
struct Flash {
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn flash(f: &Flash) -> String {
    let mut out = String::new();
    if let Some(m) = &f.msg {
        out.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>",
            esc(m)
        ));
    }
    if let Some(e) = &f.error {
        out.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            esc(&crate::http::shell::sentence(e))
        ));
    }
    out
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What each role is for, in the words of the role table.
fn role_hint(r: Role) -> &'static str {
    match r {
        Role::Admin => "users, sites, plugins, audit trail; no charts",
        Role::Physician => "charts, prescribing",
        Role::Nurse => "charts",
        Role::Reception => "registration, booking",
        Role::Kiosk => "the check-in screen only",
        Role::Researcher => "de-identified data only",
        Role::Patient => "their own record only",
    }
}

/// A posted form's fields.
struct Posted(Vec<(String, String)>);

impl Posted {
    fn parse(body: &[u8]) -> Posted {
        Posted(form_urlencoded::parse(body).into_owned().collect())
    }
    fn one(&self, k: &str) -> String {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }
    fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn roles(&self) -> Result<Vec<Role>, ApiError> {
        self.all("role")
            .iter()
            .map(|r| Role::parse(r).ok_or_else(|| ApiError::invalid(format!("no role '{r}'"))))
            .collect()
    }
}

fn role_boxes(checked: &[Role], patient_allowed: bool) -> String {
    let boxes: String = Role::ALL
        .iter()
        .filter(|r| patient_allowed || **r != Role::Patient)
        .map(|r| {
            format!(
                "<label><input type=\"checkbox\" name=\"role\" value=\"{0}\"{1}> {0} \
                 <span class=\"muted small\">&nbsp;({2})</span></label>",
                r.as_str(),
                if checked.contains(r) { " checked" } else { "" },
                esc(role_hint(*r))
            )
        })
        .collect();
    format!("<fieldset><legend>Roles</legend><div class=\"checks\">{boxes}</div></fieldset>")
}

fn site_boxes(app: &App, checked: &[String]) -> Result<String, ApiError> {
    let boxes: String = app
        .sites
        .list()?
        .iter()
        .map(|s| {
            format!(
                "<label><input type=\"checkbox\" name=\"site\" value=\"{}\"{}> {} \
                 <span class=\"muted small\">&nbsp;({})</span></label>",
                esc(&s.id),
                if checked.contains(&s.id) {
                    " checked"
                } else {
                    ""
                },
                esc(&s.name),
                esc(&s.id)
            )
        })
        .collect();
    Ok(format!(
        "<fieldset><legend>Sites</legend><div class=\"checks\">{boxes}</div></fieldset>"
    ))
}

/// What the add form shows again after a refusal (never the password).
#[derive(Default)]
struct Draft {
    username: String,
    display_name: String,
    patient: String,
    roles: Vec<Role>,
    sites: Vec<String>,
}

fn add_form(page: &Page, d: &Draft) -> Result<String, ApiError> {
    Ok(format!(
        "<section class=\"card\" aria-labelledby=\"add-h\"><h2 id=\"add-h\">Add a user</h2>\
         <form method=\"post\" action=\"/admin/users\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <div class=\"grid\"><div><label for=\"username\">User name</label>\
         <input id=\"username\" name=\"username\" required autocomplete=\"off\" value=\"{}\" \
         pattern=\"[a-z0-9._\\-]{{2,64}}\" title=\"2 to 64 lowercase letters, digits, '.', '_' or '-'\"></div>\
         <div><label for=\"display_name\">Name shown in pages</label>\
         <input id=\"display_name\" name=\"display_name\" autocomplete=\"off\" value=\"{}\" placeholder=\"e.g. Dr. Amelia Lee\"></div>\
         <div><label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" required minlength=\"10\" autocomplete=\"new-password\">\
         <p class=\"hint\">At least 10 characters. Give it to the person; they can change it.</p></div>\
         <div><label for=\"patient\">Patient record id</label>\
         <input id=\"patient\" name=\"patient\" autocomplete=\"off\" value=\"{}\">\
         <p class=\"hint\">Only for a patient's own account.</p></div></div>\
         {}{}<button type=\"submit\">Add user</button></form></section>",
        page.csrf(),
        esc(&d.username),
        esc(&d.display_name),
        esc(&d.patient),
        role_boxes(&d.roles, true),
        site_boxes(&page.app, &d.sites)?
    ))
}

fn users_table(users: &[UserView], sites: &[crate::sites::Site]) -> String {
    let site_name = |id: &String| {
        sites
            .iter()
            .find(|s| &s.id == id)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| id.clone())
    };
    let rows: String = users
        .iter()
        .map(|u| {
            format!(
                "<tr{}><td><a href=\"/admin/users/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if u.disabled { " class=\"inactive\"" } else { "" },
                esc(&u.username),
                esc(&u.username),
                esc(u.display_name.as_deref().unwrap_or("")),
                esc(&u
                    .roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")),
                esc(&u.sites.iter().map(site_name).collect::<Vec<_>>().join(", ")),
                if u.disabled {
                    "<span class=\"badge red\">Disabled</span>"
                } else {
                    "<span class=\"badge green\">Active</span>"
                }
            )
        })
        .collect();
    format!(
        "<table><thead><tr><th>User name</th><th>Name</th><th>Roles</th><th>Sites</th>\
         <th>Status</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

async fn render_list(page: &Page, status: StatusCode, top: &str, d: &Draft) -> Response {
    let users = match page.app.accounts.list() {
        Ok(u) => u,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let sites = match page.app.sites.list() {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let views: Vec<UserView> = users.iter().map(UserView::from).collect();
    let form = match add_form(page, d) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let body = format!(
        "<p><a href=\"/admin\">Administration</a></p><h1>Users</h1>{top}\
         <section class=\"card\">{}</section>{form}",
        users_table(&views, &sites)
    );
    page.render(status, "Users", None, &body)
}

async fn list(page: Page, Query(f): Query<Flash>) -> Response {
    if let Err(r) = page.require("user.list", Permission::UsersManage).await {
        return r;
    }
    render_list(&page, StatusCode::OK, &flash(&f), &Draft::default()).await
}

async fn add(page: Page, body: Bytes) -> Response {
    let form = Posted::parse(&body);
    if let Err(e) = page.check_csrf(&form.one("csrf")) {
        return e.into_response();
    }
    let mut draft = Draft {
        username: form.one("username"),
        display_name: form.one("display_name"),
        patient: form.one("patient"),
        roles: Vec::new(),
        sites: form.all("site"),
    };
    let result = async {
        draft.roles = form.roles()?;
        let req = NewUser {
            username: draft.username.clone(),
            password: form
                .0
                .iter()
                .find(|(k, _)| k == "password")
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            roles: draft.roles.clone(),
            sites: draft.sites.clone(),
            patient: Some(draft.patient.clone()).filter(|p| !p.is_empty()),
            display_name: Some(draft.display_name.clone()).filter(|n| !n.is_empty()),
        };
        add_user(&page.app, page.caller(), req).await
    }
    .await;
    match result {
        Ok(u) => Redirect::to(&format!(
            "/admin/users?msg={}",
            encode(&format!("Added {}.", u.username))
        ))
        .into_response(),
        Err(e) if e.status == StatusCode::FORBIDDEN => page.refuse(&e.body.message),
        Err(e) => {
            let top = format!(
                "<p class=\"error\" role=\"alert\"><strong>Not added:</strong> {}</p>",
                esc(&crate::http::shell::sentence(&e.body.message))
            );
            render_list(&page, e.status, &top, &draft).await
        }
    }
}

async fn show(page: Page, Path(name): Path<String>, Query(f): Query<Flash>) -> Response {
    if let Err(r) = page.require("user.list", Permission::UsersManage).await {
        return r;
    }
    let user = match page.app.accounts.get(&name) {
        Ok(Some(u)) => u,
        Ok(None) => {
            return page.render(
                StatusCode::NOT_FOUND,
                "Users",
                None,
                &format!(
                    "<div class=\"card error-page\"><h1>No such user</h1><p>There is no user '{}'.</p>\
                     <p><a href=\"/admin/users\">All users</a></p></div>",
                    esc(&name)
                ),
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let u = UserView::from(&user);
    let csrf = page.csrf();
    let sites = match site_boxes(&page.app, &u.sites) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let perms = permissions_of(&u.roles)
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let status = if u.disabled {
        format!(
            "<p><span class=\"badge red\">Disabled</span> This person cannot sign in.</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" name=\"action\" value=\"enable\">Enable</button></form>"
        )
    } else if u.username == page.caller().user.username {
        "<p><span class=\"badge green\">Active</span> This is you: another administrator can \
         disable your account.</p>"
            .to_string()
    } else {
        format!(
            "<p><span class=\"badge green\">Active</span> Disabling ends this person's sessions at once.</p>\
             <form method=\"post\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" name=\"action\" value=\"disable\" class=\"danger\">Disable</button></form>"
        )
    };
    let patient = u
        .patient
        .as_deref()
        .map(|p| {
            format!(
                "<p class=\"muted\">Linked to patient record {}.</p>",
                esc(p)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<p><a href=\"/admin/users\">All users</a></p><h1>{} <span class=\"muted\">{}</span></h1>{}\
         <div class=\"split\">\
         <section class=\"card\"><h2>Roles, sites and name</h2>{patient}\
         <form method=\"post\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"display_name\">Name shown in pages</label>\
         <input id=\"display_name\" name=\"display_name\" value=\"{}\" autocomplete=\"off\">\
         {}{sites}<p class=\"muted small\">Allows: {}</p>\
         <button type=\"submit\" name=\"action\" value=\"update\">Save</button></form></section>\
         <div><section class=\"card\"><h2>Status</h2>{status}</section>\
         <section class=\"card\"><h2>Reset the password</h2>\
         <form method=\"post\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"password\">New password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" minlength=\"10\" autocomplete=\"new-password\">\
         <p class=\"hint\">At least 10 characters, or leave it empty and have one made up.</p>\
         <button type=\"submit\" name=\"action\" value=\"password\">Set password</button></form></section></div></div>",
        esc(u.display_name.as_deref().unwrap_or(&u.username)),
        esc(&u.username),
        flash(&f),
        esc(u.display_name.as_deref().unwrap_or("")),
        role_boxes(&u.roles, u.patient.is_some()),
        esc(&perms),
    );
    page.render(StatusCode::OK, &format!("User {}", u.username), None, &body)
}

/// A password made up for a reset: 16 characters from an alphabet without look-alikes.
fn made_up_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let s: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}-{}-{}", &s[..4], &s[4..8], &s[8..12], &s[12..])
}

async fn act(page: Page, Path(name): Path<String>, body: Bytes) -> Response {
    let form = Posted::parse(&body);
    if let Err(e) = page.check_csrf(&form.one("csrf")) {
        return e.into_response();
    }
    let (app, caller) = (&page.app, page.caller());
    let back = |q: &str, m: &str| {
        Redirect::to(&format!("/admin/users/{}?{q}={}", encode(&name), encode(m))).into_response()
    };
    let result: Result<String, ApiError> = match form.one("action").as_str() {
        "update" => match form.roles() {
            Ok(roles) => change_user(
                app,
                caller,
                &name,
                UserChange {
                    roles: Some(roles),
                    sites: Some(form.all("site")),
                    display_name: Some(form.one("display_name")),
                },
            )
            .await
            .map(|_| "Saved.".to_string()),
            Err(e) => Err(e),
        },
        "disable" => set_disabled(app, caller, &name, true)
            .await
            .map(|_| format!("{name} is disabled; their sessions have ended.")),
        "enable" => set_disabled(app, caller, &name, false)
            .await
            .map(|_| format!("{name} can sign in again.")),
        "password" => {
            let typed = form
                .0
                .iter()
                .find(|(k, _)| k == "password")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let made_up = typed.is_empty().then(made_up_password);
            let password = made_up.clone().unwrap_or(typed);
            match change_password(
                app,
                caller,
                &name,
                PasswordChange {
                    password,
                    current: None,
                },
            )
            .await
            {
                // A made-up password is shown once, on this page, never in a URL.
                Ok(()) => match made_up {
                    Some(pw) => {
                        return page.render(
                            StatusCode::OK,
                            &format!("User {name}"),
                            None,
                            &format!(
                                "<p><a href=\"/admin/users/{}\">Back to {}</a></p><h1>New password</h1>\
                                 <div class=\"card\"><p class=\"notice\" role=\"status\">The password of \
                                 <strong>{}</strong> is now:</p><p class=\"mono password\">{}</p>\
                                 <p class=\"muted\">It is shown this once. Give it to the person; they can \
                                 change it after signing in.</p></div>",
                                esc(&name),
                                esc(&name),
                                esc(&name),
                                esc(&pw)
                            ),
                        );
                    }
                    None => Ok("Password set.".to_string()),
                },
                Err(e) => Err(e),
            }
        }
        other => Err(ApiError::invalid(format!("unknown action '{other}'"))),
    };
    match result {
        Ok(m) => back("msg", &m),
        Err(e) if e.status == StatusCode::FORBIDDEN => page.refuse(&e.body.message),
        Err(e) => back("error", &e.body.message),
    }
}
