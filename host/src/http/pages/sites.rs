//! `/admin/sites`: the clinic's locations — add one, rename one. The same service functions
//! as `/api/v1/sites`. A site's id never changes (users, plugins and their data refer to it);
//! its name is what people see.

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::access::Permission;
use crate::app::App;
use crate::http::api::{add_site, change_site_name};
use crate::http::pages::esc;
use crate::http::shell::Page;

pub fn router() -> Router<App> {
    Router::new().route("/admin/sites", get(list).post(act))
}

#[derive(Deserialize, Default)]
struct Flash {
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

async fn list(page: Page, Query(f): Query<Flash>) -> Response {
    if let Err(r) = page.require("site.list", Permission::SitesManage).await {
        return r;
    }
    let sites = match page.app.sites.list() {
        Ok(s) => s,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    let csrf = page.csrf();
    let users = page.app.accounts.list().unwrap_or_default();
    let rows: String = sites
        .iter()
        .map(|s| {
            let people = users
                .iter()
                .filter(|u| !u.disabled && u.sites.contains(&s.id))
                .count();
            format!(
                "<tr><td class=\"mono\">{id}</td><td>\
                 <form method=\"post\" action=\"/admin/sites\" class=\"inline-form\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"action\" value=\"rename\">\
                 <input type=\"hidden\" name=\"id\" value=\"{id}\">\
                 <label for=\"name-{id}\" class=\"visually-hidden\">Name of {id}</label>\
                 <input id=\"name-{id}\" name=\"name\" value=\"{name}\" required maxlength=\"200\">\
                 <button type=\"submit\" class=\"secondary\">Rename</button></form></td>\
                 <td>{people}</td></tr>",
                id = esc(&s.id),
                name = esc(&s.name),
            )
        })
        .collect();
    let mut top = String::new();
    if let Some(m) = &f.msg {
        top.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>",
            esc(m)
        ));
    }
    if let Some(e) = &f.error {
        top.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            esc(&crate::http::shell::sentence(e))
        ));
    }
    let body = format!(
        "<p><a href=\"/admin\">Administration</a></p><h1>Sites</h1>{top}\
         <section class=\"card\"><table><thead><tr><th>Id</th><th>Name</th><th>Active users</th>\
         </tr></thead><tbody>{rows}</tbody></table></section>\
         <section class=\"card\" aria-labelledby=\"add-h\"><h2 id=\"add-h\">Add a site</h2>\
         <form method=\"post\" action=\"/admin/sites\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"action\" value=\"add\"><div class=\"grid\">\
         <div><label for=\"new-id\">Id</label><input id=\"new-id\" name=\"id\" required maxlength=\"32\" \
         pattern=\"[a-z0-9\\-]{{1,32}}\" autocomplete=\"off\" placeholder=\"e.g. west\">\
         <p class=\"hint\">Lowercase letters, digits and '-'; it cannot be changed later.</p></div>\
         <div><label for=\"new-name\">Name</label><input id=\"new-name\" name=\"name\" required \
         maxlength=\"200\" autocomplete=\"off\" placeholder=\"e.g. West End Clinic\"></div></div>\
         <button type=\"submit\">Add site</button></form></section>"
    );
    page.render(StatusCode::OK, "Sites", None, &body)
}

async fn act(page: Page, body: Bytes) -> Response {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let one = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    if let Err(e) = page.check_csrf(&one("csrf")) {
        return e.into_response();
    }
    let (app, caller) = (&page.app, page.caller());
    let (id, name) = (one("id"), one("name"));
    let result = match one("action").as_str() {
        "add" => add_site(app, caller, &id, &name)
            .await
            .map(|s| format!("Added {} ({}).", s.name, s.id)),
        "rename" => change_site_name(app, caller, &id, &name)
            .await
            .map(|s| format!("{} is now called {}.", s.id, s.name)),
        other => Err(crate::http::ApiError::invalid(format!(
            "unknown action '{other}'"
        ))),
    };
    let enc = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    match result {
        Ok(m) => Redirect::to(&format!("/admin/sites?msg={}", enc(&m))).into_response(),
        Err(e) if e.status == StatusCode::FORBIDDEN => page.refuse(&e.body.message),
        Err(e) => {
            Redirect::to(&format!("/admin/sites?error={}", enc(&e.body.message))).into_response()
        }
    }
}
