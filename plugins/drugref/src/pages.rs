//! The drug reference's pages: search, a product, posts, and the administrator's import.

use osler_sdk::{Caller, Error, Params, Request, Response, html};
use serde::Deserialize;

use crate::data::{Product, Vet};
use crate::posts::{self, Shown};
use crate::{Imported, store};

const HOME: &str = "/plugins/drugref";

fn e(s: &str) -> String {
    html::escape(s)
}

fn page(status: u16, title: &str, body: &str) -> Result<Response, Error> {
    let nav = format!(
        r#"<p><a href="{HOME}/">Search</a> · <a href="{HOME}/posts">Clinicians' posts</a> · <a href="{HOME}/import">Data and import</a></p>"#
    );
    Ok(Response::html(
        status,
        html::page(title, &format!("{nav}{body}")),
    ))
}

/// The mark every sample product carries, wherever it is shown.
pub fn sample_mark(p: &Product) -> &'static str {
    if p.sample {
        r#" <strong class="muted" title="Example data shipped with Osler: this DIN is not a real Health Canada DIN">[sample data — DIN not verified]</strong>"#
    } else {
        ""
    }
}

fn ingredients(p: &Product) -> String {
    p.ingredients
        .iter()
        .map(|i| e(format!("{} {} {}", i.name, i.strength, i.unit).trim()))
        .collect::<Vec<_>>()
        .join(" + ")
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SearchForm {
    q: String,
    atc: String,
    cancelled: Option<String>,
}

pub fn home(req: &Request, _: &Params) -> Result<Response, Error> {
    let f: SearchForm = req.query()?;
    let mut body = format!(
        r#"<form method="get" action="{HOME}/" class="card" role="search">
<label for="q">Brand or generic name (beginning)</label><input id="q" name="q" value="{}">
<label for="atc">ATC code or class (e.g. C07A)</label><input id="atc" name="atc" value="{}">
<label><input type="checkbox" name="cancelled" value="yes" style="width:auto"{}> include cancelled products</label>
<button type="submit">Search</button></form>"#,
        e(&f.q),
        e(&f.atc),
        if f.cancelled.is_some() {
            " checked"
        } else {
            ""
        },
    );
    if !f.q.trim().is_empty() || !f.atc.trim().is_empty() {
        match store::search(Some(&f.q), Some(&f.atc), f.cancelled.is_some(), 50) {
            Ok(found) if found.is_empty() => body += r#"<p class="muted">No products found.</p>"#,
            Ok(found) => {
                body += "<table><thead><tr><th>DIN</th><th>Product</th><th>Ingredients</th><th>Form</th><th>ATC</th><th>Status</th></tr></thead><tbody>";
                for p in &found {
                    body += &format!(
                        r#"<tr><td><a href="{HOME}/drugs/{din}">{din}</a></td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                        e(&p.brand_name),
                        sample_mark(p),
                        ingredients(p),
                        e(&p.dosage_form),
                        e(&p.atc),
                        e(&p.status),
                        din = e(&p.din),
                    );
                }
                body += "</tbody></table>";
            }
            Err(err @ Error::Invalid(_)) => {
                body += &format!(r#"<p class="error" role="alert">{}</p>"#, e(err.message()))
            }
            Err(err) => return Err(err),
        }
    }
    page(200, "Drug reference", &body)
}

pub fn product(req: &Request, params: &Params) -> Result<Response, Error> {
    let din = &params["din"];
    let p = store::product(din)?
        .ok_or_else(|| Error::not_found(format!("no product with DIN {din}")))?;
    let mut body = format!(
        r#"<section class="card"><p><strong>DIN {}</strong>{}</p><table>
<tr><th>Ingredients</th><td>{}</td></tr><tr><th>Dosage form</th><td>{}</td></tr>
<tr><th>Route</th><td>{}</td></tr><tr><th>ATC</th><td>{}</td></tr>
<tr><th>Schedule</th><td>{}{}</td></tr><tr><th>Package</th><td>{}</td></tr><tr><th>Status</th><td>{}</td></tr></table></section>"#,
        e(&p.din),
        sample_mark(&p),
        ingredients(&p),
        e(&p.dosage_form),
        e(&p.route),
        e(&p.atc),
        e(&p.schedule),
        match p.controlled() {
            crate::data::Controlled::No => "",
            crate::data::Controlled::Narcotic =>
                " <strong>(narcotic: quantity in words and figures, no repeats)</strong>",
            crate::data::Controlled::ControlledDrug => " <strong>(controlled drug)</strong>",
            crate::data::Controlled::TargetedSubstance => " <strong>(targeted substance)</strong>",
        },
        e(if p.package.is_empty() {
            "not given"
        } else {
            &p.package
        }),
        e(&p.status),
    );
    if !p.atc.is_empty() {
        let shown = posts::for_codes(std::slice::from_ref(&p.atc), &req.caller().user)?;
        body += &posts_html(req.caller(), &shown, &p.atc);
        body += &post_form_html(req.caller(), &p.atc, None);
    }
    page(200, &p.brand_name, &body)
}

fn posts_html(caller: &Caller, shown: &[Shown], back: &str) -> String {
    let mut out = String::from(r#"<h2>Clinicians' posts</h2>"#);
    if shown.is_empty() {
        out += r#"<p class="muted">No posts on this code or its classes.</p>"#;
    }
    for s in shown {
        let p = &s.post;
        out += &format!(
            r#"<article class="card"><p><strong>{}</strong> · {} on {}</p><h3>{}</h3><p>{}</p><p class="muted">{}{} · {}{}</p>"#,
            e(&p.kind.to_uppercase()),
            e(&p.title),
            e(&p.atc),
            e(&p.title),
            e(&p.body).replace('\n', "<br>"),
            e(&p.author_name),
            if s.trusted { " (trusted)" } else { "" },
            e(&p.updated.replace('T', " ")),
            if p.version > 1 { " · edited" } else { "" },
        );
        let csrf = html::csrf_field(caller);
        if p.author == caller.user {
            out += &format!(
                r#"<details><summary>Edit</summary>{}</details>"#,
                post_form_html(caller, &p.atc, Some(p))
            );
        } else {
            out += &format!(
                r#"<form method="post" action="{HOME}/posts/{id}/hide">{csrf}<input type="hidden" name="back" value="{back}"><button type="submit" class="link">Hide this post</button></form>
<form method="post" action="{HOME}/trust">{csrf}<input type="hidden" name="author" value="{author}"><input type="hidden" name="trusted" value="{t}"><input type="hidden" name="back" value="{back}"><button type="submit" class="link">{label}</button></form>"#,
                id = e(&p.id),
                back = e(back),
                author = e(&p.author),
                t = if s.trusted { "no" } else { "yes" },
                label = if s.trusted {
                    format!("Stop trusting {}", e(&p.author_name))
                } else {
                    format!("Trust {}", e(&p.author_name))
                },
            );
        }
        out += "</article>";
    }
    out
}

fn post_form_html(caller: &Caller, atc: &str, post: Option<&posts::Post>) -> String {
    let (action, title, body, kind, label) = match post {
        Some(p) => (
            format!("{HOME}/posts/{}/edit", e(&p.id)),
            e(&p.title),
            e(&p.body),
            p.kind.as_str(),
            "Save",
        ),
        None => (
            format!("{HOME}/posts"),
            String::new(),
            String::new(),
            "comment",
            "Post",
        ),
    };
    let id = post.map_or("new".to_string(), |p| p.id.clone());
    let options: String = posts::KINDS
        .iter()
        .map(|k| {
            format!(
                r#"<option value="{k}"{}>{k}</option>"#,
                if *k == kind { " selected" } else { "" }
            )
        })
        .collect();
    format!(
        r#"<form method="post" action="{action}" class="card">{}<h3>{}</h3>
<label for="atc-{id}">ATC code or class</label><input id="atc-{id}" name="atc" required value="{}">
<label for="kind-{id}">Kind</label><select id="kind-{id}" name="kind">{options}</select>
<label for="title-{id}">Title</label><input id="title-{id}" name="title" required maxlength="120" value="{title}">
<label for="body-{id}">Text</label><textarea id="body-{id}" name="body" rows="4" required maxlength="4000">{body}</textarea>
<button type="submit">{label}</button></form>"#,
        html::csrf_field(caller),
        if post.is_some() {
            "Edit the post"
        } else {
            "Add a post"
        },
        e(atc),
    )
}

fn posts_url(atc: &str) -> String {
    let enc: String = form_encode(atc);
    format!("{HOME}/posts?atc={enc}")
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn posts_page(req: &Request, _: &Params) -> Result<Response, Error> {
    let atc = req.query_param("atc").unwrap_or_default();
    let mut body = format!(
        r#"<form method="get" action="{HOME}/posts" class="card"><label for="patc">Posts on an ATC code or class</label><input id="patc" name="atc" value="{}"><button type="submit">Show</button></form>"#,
        e(&atc)
    );
    if !atc.trim().is_empty() {
        let shown = posts::for_codes(std::slice::from_ref(&atc), &req.caller().user)?;
        body += &posts_html(req.caller(), &shown, &atc);
    }
    body += &post_form_html(req.caller(), &atc, None);
    page(200, "Clinicians' posts", &body)
}

pub fn post_form(req: &Request, _: &Params) -> Result<Response, Error> {
    let d: posts::Draft = req.form()?;
    let p = posts::create(req.caller(), &d)?;
    Ok(Response::redirect_see_other(&posts_url(&p.atc)))
}

pub fn edit_form(req: &Request, params: &Params) -> Result<Response, Error> {
    let d: posts::Draft = req.form()?;
    let p = posts::edit(req.caller(), &params["id"], &d)?;
    Ok(Response::redirect_see_other(&posts_url(&p.atc)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Back {
    back: String,
    author: String,
    trusted: String,
}

pub fn hide_form(req: &Request, params: &Params) -> Result<Response, Error> {
    let f: Back = req.form()?;
    posts::hide(&req.caller().user, &params["id"])?;
    Ok(Response::redirect_see_other(&posts_url(&f.back)))
}

pub fn trust_form(req: &Request, _: &Params) -> Result<Response, Error> {
    let f: Back = req.form()?;
    posts::trust(&req.caller().user, &f.author, f.trusted == "yes")?;
    Ok(Response::redirect_see_other(&posts_url(&f.back)))
}

pub fn import_page(req: &Request, _: &Params) -> Result<Response, Error> {
    render_import(req, 200, "")
}

fn render_import(req: &Request, status: u16, message: &str) -> Result<Response, Error> {
    let mut body = String::from(message);
    body += "<table><thead><tr><th>Table</th><th>Rows</th><th>Source</th><th>Imported</th><th>By</th></tr></thead><tbody>";
    for kind in store::Kind::ALL {
        let m = store::live(kind)?;
        body += &format!(
            r#"<tr><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            kind.name(),
            m.rows,
            if m.skipped > 0 {
                format!(" ({} skipped)", m.skipped)
            } else {
                String::new()
            },
            e(&m.source),
            e(&m.imported_at.replace('T', " ")),
            e(&m.imported_by),
        );
    }
    body += "</tbody></table>";
    body += r#"<p class="muted">Interactions are checked against the imported interaction table <em>and</em> the clinic's supplement (pairs the imported table lacks, or rates lower): one warning per pair of drugs, the most significant, naming its source. Importing one never replaces the other.</p>"#;
    if !req.caller().has_role("admin") {
        body += r#"<p class="muted">An administrator imports drug data.</p>"#;
        return page(status, "Drug data", &body);
    }
    body += r#"<p>An import replaces that whole table at once: every row is checked first, and a file with a bad line imports nothing. Large files (the request body is limited by the server's <code>http.body_limit</code>, 1 MiB unless raised) go to <code>POST /plugins/drugref/api/import/&lt;table&gt;</code> with the file as the body; a Latin-1 file is sent with <code>content-type: text/csv; charset=iso-8859-1</code>.</p>"#;
    let holbrook = r#"Quoted CSV as in OSCAR's drugref ("Holbrook"): "id","atc_a" (affecting),"atc_b" (affected),"effect","significance","evidence","comment","name_a","name_b". ATCvet codes (QA14AA02) match the human code they stand for."#;
    for (table, help, vet) in [
        ("interactions", holbrook, true),
        (
            "supplement",
            "The clinic's own interactions, in the same format; checked beside the imported table.",
            true,
        ),
        (
            "products",
            "CSV with the header din,brand_name,ingredients,dosage_form,route,atc,schedule,status,sample[,package]; ingredients as name|strength|unit;…",
            false,
        ),
        (
            "allergens",
            r#"CSV, one fact a line: "group","field","value","risk","note"; field is title, name, atc, except, ingredient, within, cross or non-drug (see the drug reference's README)."#,
            false,
        ),
    ] {
        body += &format!(
            r#"<form method="post" action="{HOME}/import/{table}" class="card">{}<h2>Import {table}</h2><p class="muted">{}</p>
<label for="src-{table}">Source (a description)</label><input id="src-{table}" name="source">
<label for="csv-{table}">File contents</label><textarea id="csv-{table}" name="csv" rows="8" required></textarea>{}
<button type="submit">Import {table}</button></form>"#,
            html::csrf_field(req.caller()),
            e(help),
            if vet {
                r#"<label style="font-weight:normal"><input type="checkbox" name="atcvet" value="skip" style="width:auto"> skip rows with ATCvet (veterinary) codes, listing their lines</label>"#
            } else {
                ""
            },
        );
    }
    page(status, "Drug data", &body)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ImportForm {
    csv: String,
    source: String,
    atcvet: String,
}

pub fn import_form(req: &Request, params: &Params) -> Result<Response, Error> {
    let f: ImportForm = req.form()?;
    let vet = if f.atcvet == "skip" {
        Vet::Skip
    } else {
        Vet::Accept
    };
    match crate::import(req.caller(), &params["table"], &f.csv, &f.source, vet)? {
        Imported::Done { meta, skipped } => {
            let items: String = skipped
                .iter()
                .map(|l| format!("<li>{}</li>", e(&l.to_string())))
                .collect();
            render_import(
                req,
                200,
                &format!(
                    r#"<div class="banner" role="status"><p>Imported {} rows into {}.{}</p>{}</div>"#,
                    meta.rows,
                    e(&params["table"]),
                    if skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" {} line(s) skipped:", skipped.len())
                    },
                    if items.is_empty() {
                        String::new()
                    } else {
                        format!("<ul>{items}</ul>")
                    }
                ),
            )
        }
        Imported::Refused(lines) => {
            let items: String = lines
                .iter()
                .map(|l| format!("<li>{}</li>", e(&l.to_string())))
                .collect();
            render_import(
                req,
                400,
                &format!(
                    r#"<div class="error" role="alert"><p>Nothing was imported: the file has {} bad line(s).</p><ul>{items}</ul></div>"#,
                    lines.len()
                ),
            )
        }
    }
}
