//! Clinical resources (OSCAR Resource): each site's library of links to clinical references
//! and patient information, searched by text and tag, and shown in context — beside a
//! medication on prescribing's pages (through the exported `osler:resources/lookup@0.1.0`)
//! and on the patient's chart (the `resources` panel, from the patient's active problems and
//! medications, read through encounter's and prescribing's interfaces).
//!
//! The library ships with a seed set ([`seed`]) that each site may edit, retire, restore,
//! pin and re-order, and add to ([`store`] keeps it; [`model`] checks it and defines matching
//! and ranking; [`find`] searches it). Links are plain links: the plugin fetches nothing.
//!
//! Who may do what: physicians and nurses search and browse; administrators manage the site's
//! library (and may browse it); nobody else uses the pages or the JSON API. Other plugins'
//! calls through `lookup` answer any clinic staff with either audience, and anyone else (a
//! `patient` user) with patient-audience resources only.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | search and browse (`q`, `tag`, `audience`) |
//! | `GET /manage` | the site's library with add, edit, retire/restore, pin, move (admin) |
//! | `GET, POST /manage/{id}` | edit form / save it (admin) |
//! | `POST /manage` | add (admin) |
//! | `POST /manage/{id}/action` | `action` = retire, restore, pin, unpin, up, down (admin) |
//! | `GET /api/resources` | search: `q`, `tag`, `audience`, `limit` (1-500, default 50), `retired=true`; or `atc=` / `condition=` for the lookups |
//! | `GET /api/resources/{id}` | one resource |
//! | `POST /api/resources` | add → `201` (admin) |
//! | `PUT /api/resources/{id}` | edit (admin) |
//! | `POST /api/resources/{id}/{action}` | retire, restore, pin, unpin, up, down (admin) |
//! | `PUT /api/order` | `{"ids": [...]}`: every id of the library, in the new order (admin) |

pub mod find;
pub mod model;
mod pages;
pub mod seed;
pub mod store;

use osler_sdk::{Caller, Error, Params, Plugin, Request, Response, Router, clock, context};
use serde::Deserialize;
use serde_json::json;

use crate::bindings::exports::osler::resources::lookup as wit;
use crate::find::Query;
use crate::model::{Resource, ResourceInput, Stamp};
use crate::store::Library;

mod bindings {
    osler_sdk::generate!({
        path: ["../../wit/v0.2.0", "wit"],
        world: "osler:resources/resources@0.1.0",
    });
}

pub(crate) use bindings::osler::encounter::problems;
pub(crate) use bindings::osler::prescribing::record;

pub const HOME: &str = "/plugins/resources";

struct Resources;

impl Plugin for Resources {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/", pages::search)
            .get("/manage", pages::manage)
            .post("/manage", pages::add_form)
            .get("/manage/{id}", pages::edit)
            .post("/manage/{id}", pages::edit_form)
            .post("/manage/{id}/action", pages::action_form)
            .get("/api/resources", api_search)
            .post("/api/resources", |req, _| {
                let r = add(req.caller(), &req.json()?)?;
                Ok(Response::json(201, &r))
            })
            .get("/api/resources/{id}", |req, p| {
                may_read(req.caller())?;
                let lib = store::load(&req.caller().site)?;
                let r = lib.get(&p["id"]).ok_or_else(|| not_found(&p["id"]))?;
                Ok(Response::json(200, r))
            })
            .put("/api/resources/{id}", |req, p| {
                let r = edit(req.caller(), &p["id"], &req.json()?)?;
                Ok(Response::json(200, &r))
            })
            .post("/api/resources/{id}/{action}", |req, p| {
                let r = act(req.caller(), &p["id"], &p["action"])?;
                Ok(Response::json(200, &r))
            })
            .put("/api/order", |req, _| {
                let body: OrderInput = req.json()?;
                let lib = reorder(req.caller(), &body.ids)?;
                Ok(Response::json(200, &json!({ "ids": ids(&lib.items) })))
            })
            .handle(&req)
    }

    fn render_panel(panel: &str, patient: &str) -> Result<String, Error> {
        let Some(caller) = context::person() else {
            return Err(Error::denied("chart panels are for a person"));
        };
        if panel != "resources" {
            return Err(Error::not_found(format!(
                "resources has no panel '{panel}'"
            )));
        }
        may_search(&caller)?;
        pages::panel(&caller.site, patient)
    }
}

osler_sdk::export_plugin!(Resources with_bindings bindings);

// Who may do what.

/// The clinicians who search and browse the library.
pub const CLINICIANS: [&str; 2] = ["physician", "nurse"];
/// Clinic staff: a lookup from another plugin answers them with either audience.
pub const STAFF: [&str; 4] = ["physician", "nurse", "reception", "admin"];

fn may_search(c: &Caller) -> Result<(), Error> {
    if CLINICIANS.iter().any(|r| c.has_role(r)) {
        Ok(())
    } else {
        Err(Error::denied(
            "clinical resources are for physicians and nurses",
        ))
    }
}

/// Reading the library: clinicians, and administrators who manage it.
fn may_read(c: &Caller) -> Result<(), Error> {
    if c.has_role("admin") {
        Ok(())
    } else {
        may_search(c)
    }
}

fn may_manage(c: &Caller) -> Result<(), Error> {
    if c.has_role("admin") {
        Ok(())
    } else {
        Err(Error::denied(
            "the site's library of clinical resources is managed by an administrator",
        ))
    }
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("no resource {id} at this site"))
}

fn stamp(c: &Caller) -> Stamp {
    Stamp {
        by: c.user.clone(),
        at: clock::now().local,
    }
}

fn ids(items: &[Resource]) -> Vec<String> {
    items.iter().map(|r| r.id.clone()).collect()
}

// Changes. Each is one compare-and-swap of the site's library: checked first, so bad input
// changes nothing.

pub fn add(c: &Caller, input: &ResourceInput) -> Result<Resource, Error> {
    may_manage(c)?;
    let checked = input.check().map_err(|e| Error::invalid(e.0))?;
    let by = stamp(c);
    store::update(&c.site, |lib| {
        lib.next += 1;
        let mut r = Resource {
            id: format!("s{:06}", lib.next),
            changed: Some(by.clone()),
            ..Default::default()
        };
        checked.clone().apply(&mut r);
        lib.items.push(r.clone());
        Ok(r)
    })
}

pub fn edit(c: &Caller, id: &str, input: &ResourceInput) -> Result<Resource, Error> {
    may_manage(c)?;
    let checked = input.check().map_err(|e| Error::invalid(e.0))?;
    let by = stamp(c);
    store::update(&c.site, |lib| {
        let r = lib
            .items
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| not_found(id))?;
        checked.clone().apply(r);
        r.changed = Some(by.clone());
        Ok(r.clone())
    })
}

pub const ACTIONS: [&str; 6] = ["retire", "restore", "pin", "unpin", "up", "down"];

pub fn act(c: &Caller, id: &str, action: &str) -> Result<Resource, Error> {
    may_manage(c)?;
    if !ACTIONS.contains(&action) {
        return Err(Error::invalid(format!(
            "action: one of {}",
            ACTIONS.join(", ")
        )));
    }
    let by = stamp(c);
    store::update(&c.site, |lib| {
        let i = lib
            .items
            .iter()
            .position(|r| r.id == id)
            .ok_or_else(|| not_found(id))?;
        match action {
            "retire" => lib.items[i].retired = true,
            "restore" => lib.items[i].retired = false,
            "pin" => lib.items[i].pinned = true,
            "unpin" => lib.items[i].pinned = false,
            "up" if i > 0 => lib.items.swap(i, i - 1),
            "down" if i + 1 < lib.items.len() => lib.items.swap(i, i + 1),
            _ => {}
        }
        let r = lib
            .items
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| not_found(id))?;
        r.changed = Some(by.clone());
        Ok(r.clone())
    })
}

#[derive(Deserialize)]
struct OrderInput {
    ids: Vec<String>,
}

/// The library in the order `ids` gives, which must name every resource once.
pub fn reorder(c: &Caller, ids: &[String]) -> Result<Library, Error> {
    may_manage(c)?;
    store::update(&c.site, |lib| {
        let mut sorted: Vec<&String> = ids.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut have: Vec<&String> = lib.items.iter().map(|r| &r.id).collect();
        have.sort();
        if sorted.len() != ids.len() || sorted != have {
            return Err(Error::invalid(
                "ids: every resource of the site's library, each once, in the new order",
            ));
        }
        let mut items = std::mem::take(&mut lib.items);
        lib.items = ids
            .iter()
            .filter_map(|id| {
                let i = items.iter().position(|r| &r.id == id)?;
                Some(items.swap_remove(i))
            })
            .collect();
        Ok(lib.clone())
    })
}

// The JSON search.

#[derive(Default, Deserialize)]
#[serde(default)]
struct SearchInput {
    q: String,
    tag: String,
    audience: String,
    atc: String,
    condition: String,
    limit: Option<usize>,
    retired: bool,
}

fn audience(s: &str) -> Result<Option<String>, Error> {
    match s.trim() {
        "" | "any" => Ok(None),
        a if model::AUDIENCES.contains(&a) => Ok(Some(a.to_string())),
        _ => Err(Error::invalid("audience: clinician, patient or any")),
    }
}

fn api_search(req: &Request, _: &Params) -> Result<Response, Error> {
    may_read(req.caller())?;
    let input: SearchInput = req.query()?;
    let audience = audience(&input.audience)?;
    let limit = input.limit.unwrap_or(50);
    if !(1..=model::MAX_RESOURCES).contains(&limit) {
        return Err(Error::invalid("limit: 1 to 500"));
    }
    let lib = store::load(&req.caller().site)?;
    let found: Vec<serde_json::Value> = if !input.atc.trim().is_empty() {
        let atc = model::atc_code(&input.atc)
            .ok_or_else(|| Error::invalid("atc: an ATC code or class, like C09A"))?;
        find::for_atc(&lib.items, &atc, audience.as_deref())
            .into_iter()
            .take(limit)
            .map(|r| json!(r))
            .collect()
    } else if !input.condition.trim().is_empty() {
        let condition = condition_arg(&input.condition)?;
        find::for_condition(&lib.items, &condition, audience.as_deref())
            .into_iter()
            .take(limit)
            .map(|r| json!(r))
            .collect()
    } else {
        if input.retired {
            may_manage(req.caller())?;
        }
        let q = Query {
            text: input.q,
            tag: input.tag,
            audience,
            retired: input.retired,
        };
        find::search(&lib.items, &q)
            .into_iter()
            .take(limit)
            .map(|(r, score)| {
                let mut v = json!(r);
                v["score"] = json!(score);
                v
            })
            .collect()
    };
    Ok(Response::json(200, &found))
}

fn condition_arg(s: &str) -> Result<String, Error> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 200 {
        return Err(Error::invalid("condition: 1 to 200 characters"));
    }
    Ok(s.to_string())
}

// The interface other plugins import.

/// The audience a lookup may answer with: staff ask for what they like; anyone else gets
/// patient-audience resources only.
fn lookup_audience(asked: Option<wit::Audience>) -> Result<(Library, Option<String>, bool), Error> {
    let person = context::person();
    let staff = person
        .as_ref()
        .is_some_and(|c| STAFF.iter().any(|r| c.has_role(r)));
    let asked = asked.map(|a| match a {
        wit::Audience::Clinician => "clinician".to_string(),
        wit::Audience::Patient => "patient".to_string(),
    });
    let (audience, nothing) = if staff {
        (asked, false)
    } else {
        // A clinician-only question from a patient has no answer.
        let nothing = asked.as_deref() == Some("clinician");
        (Some("patient".to_string()), nothing)
    };
    Ok((store::load(&context::site())?, audience, nothing))
}

fn entry(r: &Resource) -> wit::Entry {
    wit::Entry {
        id: r.id.clone(),
        title: r.title.clone(),
        url: r.url.clone(),
        summary: r.summary.clone(),
        audience: if r.audience == "patient" {
            wit::Audience::Patient
        } else {
            wit::Audience::Clinician
        },
        language: r.language.clone(),
        reviewed: r.reviewed.clone(),
        pinned: r.pinned,
    }
}

impl wit::Guest for Resources {
    fn for_atc(atc: String, audience: Option<wit::Audience>) -> Result<Vec<wit::Entry>, Error> {
        let code = model::atc_code(&atc)
            .ok_or_else(|| Error::invalid("atc: an ATC code or class, like C09A"))?;
        let (lib, audience, nothing) = lookup_audience(audience)?;
        if nothing {
            return Ok(vec![]);
        }
        Ok(find::for_atc(&lib.items, &code, audience.as_deref())
            .into_iter()
            .map(entry)
            .collect())
    }

    fn for_condition(
        condition: String,
        audience: Option<wit::Audience>,
    ) -> Result<Vec<wit::Entry>, Error> {
        let condition = condition_arg(&condition)?;
        let (lib, audience, nothing) = lookup_audience(audience)?;
        if nothing {
            return Ok(vec![]);
        }
        Ok(
            find::for_condition(&lib.items, &condition, audience.as_deref())
                .into_iter()
                .map(entry)
                .collect(),
        )
    }

    fn search(
        text: String,
        audience: Option<wit::Audience>,
        limit: u32,
    ) -> Result<Vec<wit::Entry>, Error> {
        if model::words(&text).is_empty() || text.chars().count() > 200 {
            return Err(Error::invalid("text: 1 to 200 characters, with a word"));
        }
        if !(1..=50).contains(&limit) {
            return Err(Error::invalid("limit: 1 to 50"));
        }
        let (lib, audience, nothing) = lookup_audience(audience)?;
        if nothing {
            return Ok(vec![]);
        }
        let q = Query {
            text,
            audience,
            ..Default::default()
        };
        Ok(find::search(&lib.items, &q)
            .into_iter()
            .take(limit as usize)
            .map(|(r, _)| entry(r))
            .collect())
    }
}
