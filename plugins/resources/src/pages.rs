//! The pages (no scripts: forms post back and are answered with a redirect, or with the page
//! again and the problem named when the input is refused — and then nothing has changed) and
//! the chart panel.

use osler_sdk::{Caller, Error, Params, Request, Response, html};
use serde::Deserialize;

use crate::find::{self, Query};
use crate::model::{self, Resource, ResourceInput};
use crate::{HOME, may_manage, may_read, problems, record, store};

fn e(s: &str) -> String {
    html::escape(s)
}

/// An outbound link: plain, opened apart from the record, telling the other site nothing.
pub fn link(r: &Resource) -> String {
    format!(
        r#"<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>"#,
        e(&r.url),
        e(&r.title)
    )
}

fn badges(r: &Resource) -> String {
    let mut out = String::new();
    if r.pinned {
        out += r#" <span class="badge">pinned</span>"#;
    }
    if r.audience == "patient" {
        out += r#" <span class="badge">for patients</span>"#;
    }
    if r.language != "en" {
        out += &format!(r#" <span class="badge">{}</span>"#, e(&r.language));
    }
    if r.retired {
        out += r#" <span class="badge">retired</span>"#;
    }
    out
}

fn tags_line(r: &Resource) -> String {
    let mut parts = Vec::new();
    if !r.conditions.is_empty() {
        parts.push(format!("conditions: {}", e(&r.conditions.join(", "))));
    }
    if !r.atc.is_empty() {
        parts.push(format!("drug classes: {}", e(&r.atc.join(", "))));
    }
    if !r.specialties.is_empty() {
        parts.push(format!("specialties: {}", e(&r.specialties.join(", "))));
    }
    parts.push(format!("reviewed {}", e(&r.reviewed)));
    format!(r#"<p class="muted">{}</p>"#, parts.join(" · "))
}

fn card(r: &Resource) -> String {
    format!(
        r#"<article class="card resource" id="r-{id}"><h3>{}{}</h3><p>{}</p>{}</article>"#,
        link(r),
        badges(r),
        e(&r.summary),
        tags_line(r),
        id = e(&r.id),
    )
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SearchForm {
    q: String,
    tag: String,
    audience: String,
}

/// Search and browse.
pub fn search(req: &Request, _: &Params) -> Result<Response, Error> {
    let c = req.caller();
    may_read(c)?;
    let f: SearchForm = req.query()?;
    let audience = crate::audience(&f.audience)?;
    let lib = store::load(&c.site)?;
    let q = Query {
        text: f.q.clone(),
        tag: f.tag.clone(),
        audience: audience.clone(),
        retired: false,
    };
    let found = find::search(&lib.items, &q);
    let option = |v: &str, label: &str| {
        let sel = if audience.as_deref().unwrap_or("") == v {
            " selected"
        } else {
            ""
        };
        format!(r#"<option value="{v}"{sel}>{label}</option>"#)
    };
    let mut body = format!(
        r#"<form method="get" action="{HOME}/" class="card" role="search">
<label for="q">Words (title, tags, summary)</label><input id="q" name="q" value="{}">
<label for="tag">Tag: a condition (E11, asthma), a drug class (atc:C09A) or a specialty</label><input id="tag" name="tag" value="{}">
<label for="audience">For</label><select id="audience" name="audience">{}{}{}</select>
<button type="submit">Search</button></form>"#,
        e(&f.q),
        e(&f.tag),
        option("", "clinicians and patients"),
        option("clinician", "clinicians"),
        option("patient", "patients"),
    );
    let searching = !f.q.trim().is_empty() || !f.tag.trim().is_empty();
    body += &format!(
        r#"<p class="muted" role="status">{} {}.</p>"#,
        found.len(),
        match (searching, found.len()) {
            (true, 1) => "resource found",
            (true, _) => "resources found",
            (false, 1) => "resource in the library",
            (false, _) => "resources in the library",
        }
    );
    for (r, _) in &found {
        body += &card(r);
    }
    if c.has_role("admin") {
        body += &format!(r#"<p><a href="{HOME}/manage">Manage the library</a></p>"#);
    }
    Ok(Response::html(200, html::page("Clinical resources", &body)))
}

fn field(id: &str, label: &str, value: &str, hint: &str) -> String {
    format!(
        r#"<label for="{id}">{label}{}</label><input id="{id}" name="{id}" value="{}">"#,
        if hint.is_empty() {
            String::new()
        } else {
            format!(r#" <span class="muted">({hint})</span>"#)
        },
        e(value)
    )
}

/// The form's fields, filled with `r`.
fn form_fields(r: &ResourceInput) -> String {
    let audience = |v: &str| {
        let sel = if r.audience == v { " selected" } else { "" };
        format!(r#"<option value="{v}"{sel}>{v}</option>"#)
    };
    format!(
        r#"{}{}<label for="summary">Summary</label><textarea id="summary" name="summary" rows="3">{}</textarea>{}{}{}<label for="audience">Audience</label><select id="audience" name="audience">{}{}</select>{}{}"#,
        field("title", "Title", &r.title, ""),
        field("url", "Link", &r.url, "http or https"),
        e(&r.summary),
        field(
            "conditions",
            "Conditions",
            &r.conditions.join(", "),
            "ICD-10-CA codes or words, separated by commas: E11, diabetes"
        ),
        field(
            "atc",
            "Drug classes",
            &r.atc.join(", "),
            "ATC codes or classes, separated by commas: C09A, C10AA"
        ),
        field(
            "specialties",
            "Specialties",
            &r.specialties.join(", "),
            "separated by commas"
        ),
        audience("clinician"),
        audience("patient"),
        field("language", "Language", &r.language, "en, fr…"),
        field("reviewed", "Reviewed on", &r.reviewed, "YYYY-MM-DD"),
    )
}

fn input_of(r: &Resource) -> ResourceInput {
    ResourceInput {
        title: r.title.clone(),
        url: r.url.clone(),
        summary: r.summary.clone(),
        conditions: r.conditions.clone(),
        atc: r.atc.clone(),
        specialties: r.specialties.clone(),
        audience: r.audience.clone(),
        language: r.language.clone(),
        reviewed: r.reviewed.clone(),
    }
}

fn error_html(msg: &str) -> String {
    format!(r#"<p class="error" role="alert">{}</p>"#, e(msg))
}

/// The manage page: the add form (with `error` and the values refused), and every resource of
/// the library in the site's order, with its actions.
fn manage_page(
    c: &Caller,
    status: u16,
    error: Option<&str>,
    add: &ResourceInput,
) -> Result<Response, Error> {
    let lib = store::load(&c.site)?;
    let csrf = html::csrf_field(c);
    let mut body = String::new();
    body += &format!(
        r#"<p class="muted">{} resources ({} retired). Links are shown as given; nothing is fetched. Pinned resources come first in every search.</p>"#,
        lib.items.len(),
        lib.items.iter().filter(|r| r.retired).count()
    );
    let fresh = ResourceInput {
        audience: "clinician".into(),
        language: "en".into(),
        ..Default::default()
    };
    let shown = if error.is_some() { add } else { &fresh };
    body += &format!(
        r#"<details class="card"{open}><summary>Add a resource</summary>{}<form method="post" action="{HOME}/manage">{csrf}{}<button type="submit">Add</button></form></details>"#,
        error.map(error_html).unwrap_or_default(),
        form_fields(shown),
        open = if error.is_some() { " open" } else { "" },
    );
    body += "<table><tr><th>#</th><th>Resource</th><th>For</th><th>State</th><th>Change</th></tr>";
    for (i, r) in lib.items.iter().enumerate() {
        let action = |a: &str, label: &str| {
            format!(
                r#"<form method="post" action="{HOME}/manage/{id}/action" style="display:inline">{csrf}<input type="hidden" name="action" value="{a}"><button type="submit" class="link">{label}</button></form>"#,
                id = e(&r.id)
            )
        };
        let mut actions = format!(r#"<a href="{HOME}/manage/{}">Edit</a> "#, e(&r.id));
        actions += &action(
            if r.pinned { "unpin" } else { "pin" },
            if r.pinned { "Unpin" } else { "Pin" },
        );
        if i > 0 {
            actions += &action("up", "Move up");
        }
        if i + 1 < lib.items.len() {
            actions += &action("down", "Move down");
        }
        actions += &if r.retired {
            action("restore", "Restore")
        } else {
            action("retire", "Retire")
        };
        body += &format!(
            r#"<tr id="r-{id}"><td>{n}</td><td>{}<br><span class="muted">{}</span></td><td>{}</td><td>{}{}</td><td>{actions}</td></tr>"#,
            link(r),
            e(&r.url),
            e(&r.audience),
            if r.seed { "seed" } else { "this site's" },
            badges(r),
            id = e(&r.id),
            n = i + 1,
        );
    }
    body += "</table>";
    Ok(Response::html(
        status,
        html::page("Manage clinical resources", &body),
    ))
}

pub fn manage(req: &Request, _: &Params) -> Result<Response, Error> {
    may_manage(req.caller())?;
    manage_page(req.caller(), 200, None, &ResourceInput::default())
}

pub fn add_form(req: &Request, _: &Params) -> Result<Response, Error> {
    let c = req.caller();
    may_manage(c)?;
    let input: ResourceInput = req.form()?;
    match crate::add(c, &input) {
        Ok(r) => Ok(Response::redirect_see_other(&format!(
            "{HOME}/manage#r-{}",
            r.id
        ))),
        Err(Error::Invalid(m)) => manage_page(c, 400, Some(&m), &input),
        Err(err) => Err(err),
    }
}

fn edit_page(
    c: &Caller,
    id: &str,
    status: u16,
    error: Option<&str>,
    shown: Option<&ResourceInput>,
) -> Result<Response, Error> {
    let lib = store::load(&c.site)?;
    let r = lib.get(id).ok_or_else(|| crate::not_found(id))?;
    let csrf = html::csrf_field(c);
    let values = shown.cloned().unwrap_or_else(|| input_of(r));
    let body = format!(
        r#"{}<p class="muted">{}{}</p><form method="post" action="{HOME}/manage/{id}" class="card">{csrf}{}<button type="submit">Save</button></form><p><a href="{HOME}/manage">Back to the library</a></p>"#,
        error.map(error_html).unwrap_or_default(),
        if r.seed {
            "From the seed set that ships with the plugin; your changes apply at this site only."
        } else {
            "Added at this site."
        },
        r.changed
            .as_ref()
            .map(|s| format!(
                " Last changed by {} on {}.",
                e(&s.by),
                e(&s.at.replace('T', " "))
            ))
            .unwrap_or_default(),
        form_fields(&values),
        id = e(id),
    );
    Ok(Response::html(
        status,
        html::page(&format!("Edit · {}", r.title), &body),
    ))
}

pub fn edit(req: &Request, p: &Params) -> Result<Response, Error> {
    may_manage(req.caller())?;
    edit_page(req.caller(), &p["id"], 200, None, None)
}

pub fn edit_form(req: &Request, p: &Params) -> Result<Response, Error> {
    let c = req.caller();
    may_manage(c)?;
    let input: ResourceInput = req.form()?;
    match crate::edit(c, &p["id"], &input) {
        Ok(r) => Ok(Response::redirect_see_other(&format!(
            "{HOME}/manage#r-{}",
            r.id
        ))),
        Err(Error::Invalid(m)) => edit_page(c, &p["id"], 400, Some(&m), Some(&input)),
        Err(err) => Err(err),
    }
}

#[derive(Deserialize)]
struct ActionForm {
    action: String,
}

pub fn action_form(req: &Request, p: &Params) -> Result<Response, Error> {
    let c = req.caller();
    may_manage(c)?;
    let f: ActionForm = req.form()?;
    match crate::act(c, &p["id"], &f.action) {
        Ok(r) => Ok(Response::redirect_see_other(&format!(
            "{HOME}/manage#r-{}",
            r.id
        ))),
        Err(Error::Invalid(m)) => manage_page(c, 400, Some(&m), &ResourceInput::default()),
        Err(err) => Err(err),
    }
}

// The chart panel.

/// How many links the panel shows for one problem or medication.
const PER_ITEM: usize = 3;

/// Why a provider's list could not be read, for the panel.
fn unavailable(what: &str, err: &Error) -> String {
    let why = match err {
        Error::Unavailable(_) => "its plugin is not available at this site".to_string(),
        Error::Denied(m) => m.clone(),
        other => other.message().to_string(),
    };
    format!(
        r#"<p class="muted" role="status">{}: unavailable ({}).</p>"#,
        e(what),
        e(&why)
    )
}

fn links(found: &[&Resource]) -> String {
    if found.is_empty() {
        return r#"<span class="muted">nothing in the library</span>"#.into();
    }
    found
        .iter()
        .take(PER_ITEM)
        .map(|r| format!("{}{}", link(r), badges(r)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The resources for a patient's active problems (from encounter) and active medications'
/// drug classes (from prescribing), each read for the person viewing the chart; when one of
/// them cannot be read, the panel says so and shows the other.
pub fn panel(site: &str, patient: &str) -> Result<String, Error> {
    let lib = store::load(site)?;
    let mut out = String::new();
    out += "<h3>For active problems</h3>";
    match problems::active_problems(patient) {
        Err(err) => out += &unavailable("Active problems", &err),
        Ok(list) if list.is_empty() => {
            out += r#"<p class="muted">No active problems recorded.</p>"#
        }
        Ok(list) => {
            out += "<ul>";
            for p in list {
                let mut found: Vec<&Resource> = Vec::new();
                for key in p.icd10ca.iter().chain(std::iter::once(&p.description)) {
                    for r in find::for_condition(&lib.items, key, None) {
                        if !found.iter().any(|f| f.id == r.id) {
                            found.push(r);
                        }
                    }
                }
                out += &format!(
                    "<li><strong>{}</strong>{}: {}</li>",
                    e(&p.description),
                    p.icd10ca
                        .as_deref()
                        .map(|c| format!(" ({})", e(c)))
                        .unwrap_or_default(),
                    links(&found)
                );
            }
            out += "</ul>";
        }
    }
    out += "<h3>For active medications</h3>";
    match record::active_medications(patient) {
        Err(err) => out += &unavailable("Active medications", &err),
        Ok(list) if list.is_empty() => out += r#"<p class="muted">No active medications.</p>"#,
        Ok(list) => {
            out += "<ul>";
            let mut seen: Vec<String> = Vec::new();
            for m in list {
                let Some(atc) = m.atc.as_deref().and_then(model::atc_code) else {
                    out += &format!(
                        r#"<li><strong>{}</strong>: <span class="muted">no drug class recorded</span></li>"#,
                        e(&m.drug)
                    );
                    continue;
                };
                if seen.contains(&atc) {
                    continue;
                }
                seen.push(atc.clone());
                let found = find::for_atc(&lib.items, &atc, None);
                out += &format!(
                    "<li><strong>{}</strong> ({}): {}</li>",
                    e(&m.drug),
                    e(&atc),
                    links(&found)
                );
            }
            out += "</ul>";
        }
    }
    out += &format!(r#"<p class="noprint"><a href="{HOME}/">Search clinical resources</a></p>"#);
    Ok(out)
}
