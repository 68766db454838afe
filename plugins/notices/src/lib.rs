//! Clinic notices: a per-site message board for staff.
//!
//! Osler's first plugin, and the example to read when writing one. It uses one capability,
//! `kv`, plus the free `config` and `clock`.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the board: banner, notices newest first, a form to post |
//! | `POST /` | the form's post (`title`, `body`); `303` back to the board |
//! | `POST /{id}/delete` | the delete button's post; `303` back to the board |
//! | `GET /api/notices` | the site's notices as a JSON array, newest first |
//! | `POST /api/notices` | `{"title", "body"}` → `201` with the notice |
//! | `DELETE /api/notices/{id}` | `204`; only the author or an administrator |
//!
//! Storage, all under the caller's site so that one site never sees another's notices:
//!
//! - `site/<site>/notice/<id>`: a [`Notice`] as JSON. The id is the posting time in
//!   milliseconds, zero-padded, so keys sort oldest first.
//! - `site/<site>/count`: how many notices the site has. Every post and delete rewrites it in
//!   the same atomic batch as the notice, on condition that it still holds the value read
//!   (compare-and-swap), so `max-notices` holds even when two people post at once.

use osler_sdk::{
    Caller, Error, Params, Plugin, Request, Response, Router, clock, config, html, kv,
};
use serde::{Deserialize, Serialize};

/// Where the board lives: `/plugins/<id>/`.
const HOME: &str = "/plugins/notices/";
const MAX_TITLE: usize = 120;
const MAX_BODY: usize = 4000;
/// When the site's administrator has not set `max-notices` (the manifest's default).
const DEFAULT_MAX_NOTICES: i64 = 50;

struct Notices;

impl Plugin for Notices {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/", board)
            .post("/", post_form)
            .post("/{id}/delete", delete_form)
            .get("/api/notices", list_api)
            .post("/api/notices", post_api)
            .delete("/api/notices/{id}", delete_api)
            .handle(&req)
    }
}

osler_sdk::export_plugin!(Notices);

/// A notice as stored, and as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub id: String,
    pub title: String,
    pub body: String,
    /// The author's user name.
    pub author: String,
    /// The author's display name when they posted.
    pub author_name: String,
    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub posted_at: i64,
    /// The site's local time when posted, `YYYY-MM-DDTHH:MM:SS`.
    pub posted_local: String,
}

/// What someone posts, from the form or the API. Missing fields are empty, so that
/// validation can name them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Draft {
    title: String,
    body: String,
}

impl Draft {
    /// The trimmed title and body, or `invalid` naming the field.
    fn validate(&self) -> Result<(String, String), Error> {
        let title = self.title.trim();
        let body = self.body.trim();
        if title.is_empty() {
            return Err(Error::invalid("title: must not be empty"));
        }
        if title.chars().count() > MAX_TITLE {
            return Err(Error::invalid(format!(
                "title: at most {MAX_TITLE} characters"
            )));
        }
        if body.is_empty() {
            return Err(Error::invalid("body: must not be empty"));
        }
        if body.chars().count() > MAX_BODY {
            return Err(Error::invalid(format!(
                "body: at most {MAX_BODY} characters"
            )));
        }
        Ok((title.to_string(), body.to_string()))
    }
}

// Pages.

fn board(req: &Request, _: &Params) -> Result<Response, Error> {
    render_board(req, 200, None, &Draft::default())
}

fn post_form(req: &Request, _: &Params) -> Result<Response, Error> {
    let draft: Draft = req.form()?;
    match post(req.caller(), &draft) {
        Ok(_) => Ok(Response::redirect_see_other(HOME)),
        // Show the board again with the message and what they typed.
        Err(e @ (Error::Invalid(_) | Error::Conflict(_))) => {
            render_board(req, e.status(), Some(e.message()), &draft)
        }
        Err(e) => Err(e),
    }
}

fn delete_form(req: &Request, params: &Params) -> Result<Response, Error> {
    remove(req.caller(), &params["id"])?;
    Ok(Response::redirect_see_other(HOME))
}

fn render_board(
    req: &Request,
    status: u16,
    error: Option<&str>,
    draft: &Draft,
) -> Result<Response, Error> {
    let caller = req.caller();
    let notices = list(&caller.site)?;
    let banner = config::get_text("banner");
    let body = board_html(caller, banner.as_deref(), &notices, error, draft);
    let title = format!("Notices · {}", caller.site_name);
    Ok(Response::html(status, html::page(&title, &body)))
}

/// The board's markup, inside the page.
fn board_html(
    caller: &Caller,
    banner: Option<&str>,
    notices: &[Notice],
    error: Option<&str>,
    draft: &Draft,
) -> String {
    let mut out = String::new();
    if let Some(banner) = banner.map(str::trim).filter(|b| !b.is_empty()) {
        out += &format!(r#"<p class="banner">{}</p>"#, html::escape(banner));
    }
    if notices.is_empty() {
        out += r#"<p class="muted">No notices yet.</p>"#;
    }
    for n in notices {
        let when = n
            .posted_local
            .get(..16)
            .unwrap_or(&n.posted_local)
            .replace('T', " ");
        out += &format!(
            r#"<article class="card"><h2>{}</h2><p class="muted">{} · <time datetime="{}">{}</time></p><p>{}</p>"#,
            html::escape(&n.title),
            html::escape(&n.author_name),
            html::escape(&n.posted_local),
            html::escape(&when),
            html::escape(&n.body).replace('\n', "<br>"),
        );
        if may_delete(caller, n) {
            out += &format!(
                r#"<form method="post" action="{HOME}{}/delete">{}<button type="submit" class="link">Delete “{}”</button></form>"#,
                html::escape(&n.id),
                html::csrf_field(caller),
                html::escape(&n.title),
            );
        }
        out += "</article>";
    }
    out += r#"<section class="card" aria-labelledby="new-notice"><h2 id="new-notice">Post a notice</h2>"#;
    if let Some(error) = error {
        out += &format!(
            r#"<p class="error" role="alert">{}</p>"#,
            html::escape(error)
        );
    }
    out += &format!(
        r#"<form method="post" action="{HOME}">{}
<label for="title">Title</label><input id="title" name="title" required maxlength="{MAX_TITLE}" value="{}">
<label for="body">Message</label><textarea id="body" name="body" rows="4" required maxlength="{MAX_BODY}">{}</textarea>
<button type="submit">Post</button></form></section>"#,
        html::csrf_field(caller),
        html::escape(&draft.title),
        html::escape(&draft.body),
    );
    out
}

// The JSON API.

fn list_api(req: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::json(200, &list(&req.caller().site)?))
}

fn post_api(req: &Request, _: &Params) -> Result<Response, Error> {
    let draft: Draft = req.json()?;
    Ok(Response::json(201, &post(req.caller(), &draft)?))
}

fn delete_api(req: &Request, params: &Params) -> Result<Response, Error> {
    remove(req.caller(), &params["id"])?;
    Ok(Response::empty(204))
}

// Storage.

fn notice_prefix(site: &str) -> String {
    format!("site/{site}/notice/")
}

fn count_key(site: &str) -> String {
    format!("site/{site}/count")
}

/// The site's notices, newest first.
fn list(site: &str) -> Result<Vec<Notice>, Error> {
    let entries = kv::scan_all::<Notice>(&notice_prefix(site))?;
    Ok(entries
        .into_iter()
        .rev()
        .map(|(_, notice)| notice)
        .collect())
}

/// Stores a new notice by `caller` at their site, unless the board is full.
fn post(caller: &Caller, draft: &Draft) -> Result<Notice, Error> {
    let (title, body) = draft.validate()?;
    let max = config::get_integer("max-notices").unwrap_or(DEFAULT_MAX_NOTICES);
    let count_key = count_key(&caller.site);
    let count: Option<i64> = kv::get(&count_key)?;
    let n = count.unwrap_or(0);
    if n >= max {
        return Err(Error::conflict(format!(
            "the board is full ({max} notices): delete one first"
        )));
    }
    let now = clock::now();
    let notice = Notice {
        id: format!("{:013}", now.epoch_millis),
        title,
        body,
        author: caller.user.clone(),
        author_name: caller.display_name.clone(),
        posted_at: now.epoch_millis,
        posted_local: now.local,
    };
    let key = format!("{}{}", notice_prefix(&caller.site), notice.id);
    kv::Batch::new()
        .expect_unchanged(&count_key, count.as_ref())
        .put(&count_key, &(n + 1))
        .expect_absent(&key)
        .put(&key, &notice)
        .commit()
        .map_err(busy)?;
    Ok(notice)
}

/// Deletes notice `id` of the caller's site, if they wrote it or are an administrator.
fn remove(caller: &Caller, id: &str) -> Result<(), Error> {
    let not_found = || Error::not_found(format!("no notice {id}"));
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_found());
    }
    let key = format!("{}{id}", notice_prefix(&caller.site));
    let notice: Notice = kv::get(&key)?.ok_or_else(not_found)?;
    if !may_delete(caller, &notice) {
        return Err(Error::denied(
            "only the author or an administrator may delete a notice",
        ));
    }
    let count_key = count_key(&caller.site);
    let count: Option<i64> = kv::get(&count_key)?;
    kv::Batch::new()
        .expect(&key, &notice)
        .delete(&key)
        .expect_unchanged(&count_key, count.as_ref())
        .put(&count_key, &(count.unwrap_or(1) - 1).max(0))
        .commit()
        .map_err(busy)
}

fn may_delete(caller: &Caller, notice: &Notice) -> bool {
    notice.author == caller.user || caller.has_role("admin")
}

/// A failed compare-and-swap means someone else changed the board in between.
fn busy(e: Error) -> Error {
    match e {
        Error::Conflict(_) => {
            Error::conflict("someone else changed the board at the same moment: try again")
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: &str, roles: &[&str]) -> Caller {
        Caller {
            user: user.into(),
            display_name: format!("Dr. {user}"),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            permissions: vec![],
            site: "main".into(),
            site_name: "Main Street".into(),
            csrf_token: "csrf-123".into(),
        }
    }

    fn notice(author: &str, title: &str) -> Notice {
        Notice {
            id: "1764430000000".into(),
            title: title.into(),
            body: "line one\nline <two>".into(),
            author: author.into(),
            author_name: format!("Dr. {author}"),
            posted_at: 1_764_430_000_000,
            posted_local: "2025-11-29T10:26:40".into(),
        }
    }

    fn draft(title: &str, body: &str) -> Draft {
        Draft {
            title: title.into(),
            body: body.into(),
        }
    }

    #[test]
    fn validation_names_the_field() {
        let msg = |d: Draft| d.validate().unwrap_err().message().to_string();
        assert!(msg(draft("", "x")).starts_with("title:"));
        assert!(msg(draft("   ", "x")).starts_with("title:"));
        assert!(msg(draft(&"t".repeat(MAX_TITLE + 1), "x")).starts_with("title:"));
        assert!(msg(draft("t", "")).starts_with("body:"));
        assert!(msg(draft("t", &"b".repeat(MAX_BODY + 1))).starts_with("body:"));
        assert_eq!(
            draft(" Flu clinic ", " Fridays\n").validate().unwrap(),
            ("Flu clinic".into(), "Fridays".into())
        );
    }

    #[test]
    fn only_the_author_or_an_admin_may_delete() {
        let n = notice("lee", "x");
        assert!(may_delete(&caller("lee", &["physician"]), &n));
        assert!(may_delete(&caller("root", &["admin"]), &n));
        assert!(!may_delete(&caller("kim", &["nurse"]), &n));
    }

    #[test]
    fn board_escapes_and_carries_csrf() {
        let me = caller("kim", &["nurse"]);
        let notices = [
            notice("kim", "<script>alert(1)</script>"),
            notice("lee", "Lee's"),
        ];
        let page = board_html(
            &me,
            Some("Closed <Friday>"),
            &notices,
            Some("title: must not be empty"),
            &draft("a\"b", ""),
        );
        assert!(!page.contains("<script"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains(r#"<p class="banner">Closed &lt;Friday&gt;</p>"#));
        assert!(page.contains("line one<br>line &lt;two&gt;"));
        assert!(page.contains("2025-11-29 10:26"));
        assert!(page.contains(r#"role="alert">title: must not be empty"#));
        assert!(page.contains(r#"value="a&quot;b""#));
        // A delete button for kim's own notice only; every form carries the token.
        assert_eq!(page.matches("/delete\"").count(), 1);
        let forms = page.matches("<form method=\"post\"").count();
        assert_eq!(forms, 2);
        assert_eq!(
            page.matches(r#"name="_csrf" value="csrf-123""#).count(),
            forms
        );
    }

    #[test]
    fn empty_board_and_blank_banner() {
        let page = board_html(
            &caller("kim", &[]),
            Some("  "),
            &[],
            None,
            &Draft::default(),
        );
        assert!(page.contains("No notices yet."));
        assert!(!page.contains("banner"));
    }

    #[test]
    fn notices_serialise_in_camel_case() {
        let v = serde_json::to_value(notice("lee", "x")).unwrap();
        assert_eq!(v["authorName"], "Dr. lee");
        assert_eq!(v["postedLocal"], "2025-11-29T10:26:40");
    }

    #[test]
    fn unknown_route_is_json_404() {
        let req = Request {
            method: "GET".into(),
            path: "/nope".into(),
            query: String::new(),
            headers: vec![],
            body: vec![],
            caller: caller("kim", &[]),
        };
        assert_eq!(Notices::handle(req).status, 404);
    }
}
