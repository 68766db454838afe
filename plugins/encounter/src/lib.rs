//! Encounter notes: the clinical record of an Osler chart, as OSCAR's eChart keeps it.
//!
//! - **Notes** (free text or SOAP, with an encounter type and date) are written as drafts and
//!   **signed by their author**, then locked: a correction is an **amendment** with its reason,
//!   and the history keeps every version.
//! - The **cumulative patient profile** (CPP): ongoing concerns (the problem list, with
//!   optional ICD-10-CA codes), medical, family and social history, risk factors, reminders.
//! - **Measurements** (blood pressure, pulse, weight, height, BMI computed, waist,
//!   temperature, SpO₂, glucose, HbA1c) in a table over time; impossible values are refused.
//! - **Ticklers**: reminders about a patient, due on a date, assigned to a physician or nurse
//!   of the site, done or open; each person's open ticklers on "My ticklers".
//!
//! Physicians and nurses read and write all of it; only a note's author changes its draft,
//! signs it and amends it; everyone else (reception, kiosk, researchers, administrators) is
//! refused. Everything about a patient is kept in patient-data, so the host checks every read
//! and write against the person's right to that chart and puts it on the patient's audit
//! trail; opening one note adds `encounter.note.read` naming the note.
//!
//! | route | what |
//! |---|---|
//! | `GET /patients/{patient}` | the patient's encounter page: notes, measurements, CPP, ticklers, with forms |
//! | `GET /patients/{patient}/notes/{id}` | a note, its history, and (for its author) edit/sign or amend |
//! | `POST /patients/{patient}/notes` … | the forms' posts (see [`pages`]) |
//! | `GET /ticklers` | my ticklers |
//! | `GET, POST /api/patients/{patient}/notes` | list (newest first) / write a draft → `201` |
//! | `GET, PUT /api/patients/{patient}/notes/{id}` | one note with every version / change a draft |
//! | `POST /api/patients/{patient}/notes/{id}/sign` | sign (author only) |
//! | `POST /api/patients/{patient}/notes/{id}/amend` | amend a signed note (`reason` + content) |
//! | `GET /api/patients/{patient}/cpp` | the CPP by section |
//! | `POST /api/patients/{patient}/cpp/{section}` | add an entry (`text`, `code`, `since`) |
//! | `POST /api/patients/{patient}/cpp/{section}/{id}/resolve` | mark it resolved |
//! | `GET, POST /api/patients/{patient}/measurements` | the table over time / record a set |
//! | `GET, POST /api/patients/{patient}/ticklers` | the patient's ticklers / add one |
//! | `POST /api/patients/{patient}/ticklers/{id}/done` | `{"done": true\|false}` |
//! | `GET /api/ticklers` | my open ticklers (`?all=true`: done ones too) |
//!
//! Chart panels: `notes` (recent notes and open ticklers), `cpp`, `measurements` (the latest
//! of each).
//!
//! It exports `osler:encounter/problems@0.1.0` ([`problems`]): the patient's active problems
//! (unresolved ongoing concerns, with their ICD-10-CA codes), for physicians and nurses.

pub mod model;
pub mod pages;
pub mod problems;
pub mod store;

use osler_sdk::{Error, Params, Plugin, Request, Response, Router, context};
use serde::Deserialize;
use serde_json::json;

use model::*;
use store::clinical;

mod bindings {
    osler_sdk::generate!({
        path: ["../../wit/v0.2.0", "wit"],
        world: "osler:encounter/encounter@0.1.0",
    });
}

struct Encounter;

impl Plugin for Encounter {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/patients/{patient}", pages::encounter)
            .post("/patients/{patient}/notes", pages::new_note)
            .get("/patients/{patient}/notes/{id}", pages::note)
            .post("/patients/{patient}/notes/{id}/edit", pages::edit_note)
            .post("/patients/{patient}/notes/{id}/sign", pages::sign_note)
            .post("/patients/{patient}/notes/{id}/amend", pages::amend_note)
            .post("/patients/{patient}/measurements", pages::measure)
            .post("/patients/{patient}/cpp/{section}", pages::add_item)
            .post(
                "/patients/{patient}/cpp/{section}/{id}/resolve",
                pages::resolve_item,
            )
            .post("/patients/{patient}/ticklers", pages::add_tickler)
            .post(
                "/patients/{patient}/ticklers/{id}/done",
                pages::tickler_done,
            )
            .get("/ticklers", pages::my_ticklers)
            .get("/api/patients/{patient}/notes", list_notes)
            .post("/api/patients/{patient}/notes", create_note)
            .get("/api/patients/{patient}/notes/{id}", get_note)
            .put("/api/patients/{patient}/notes/{id}", edit_note)
            .post("/api/patients/{patient}/notes/{id}/sign", sign_note)
            .post("/api/patients/{patient}/notes/{id}/amend", amend_note)
            .get("/api/patients/{patient}/cpp", get_cpp)
            .post("/api/patients/{patient}/cpp/{section}", add_item)
            .post(
                "/api/patients/{patient}/cpp/{section}/{id}/resolve",
                resolve_item,
            )
            .get("/api/patients/{patient}/measurements", get_measurements)
            .post("/api/patients/{patient}/measurements", record_measurements)
            .get("/api/patients/{patient}/ticklers", get_ticklers)
            .post("/api/patients/{patient}/ticklers", add_tickler)
            .post("/api/patients/{patient}/ticklers/{id}/done", tickler_done)
            .get("/api/ticklers", my_ticklers)
            .handle(&req)
    }

    fn render_panel(panel: &str, patient: &str) -> Result<String, Error> {
        let Some(caller) = context::person() else {
            return Err(Error::denied("chart panels are for a person"));
        };
        clinical(&caller)?;
        match panel {
            "notes" => pages::notes_panel(patient),
            "cpp" => pages::cpp_panel(patient),
            "measurements" => pages::measurements_panel(patient),
            other => Err(Error::not_found(format!("no panel '{other}'"))),
        }
    }
}

osler_sdk::export_plugin!(Encounter with_bindings bindings);

// The JSON API.

fn list_notes(req: &Request, p: &Params) -> Result<Response, Error> {
    clinical(req.caller())?;
    let notes = store::notes(&p["patient"])?;
    Ok(Response::json(
        200,
        &json!({ "notes": notes.iter().map(summary).collect::<Vec<_>>() }),
    ))
}

/// A note in a list: as it stands, without its history.
fn summary(n: &Note) -> serde_json::Value {
    json!({
        "id": n.id,
        "type": n.kind,
        "date": n.date,
        "author": n.author,
        "authorName": n.author_name,
        "status": n.status(),
        "version": n.current().n,
        "content": n.current().content,
        "signed": n.versions[0].signed,
    })
}

/// A note with its history, as the API returns it.
fn full(n: &Note) -> serde_json::Value {
    let mut v = serde_json::to_value(n).unwrap_or_default();
    v["status"] = json!(n.status());
    v["locked"] = json!(n.locked());
    v
}

fn create_note(req: &Request, p: &Params) -> Result<Response, Error> {
    let n = store::create_note(req.caller(), &p["patient"], &req.json()?)?;
    Ok(Response::json(201, &full(&n)))
}

fn get_note(req: &Request, p: &Params) -> Result<Response, Error> {
    clinical(req.caller())?;
    Ok(Response::json(
        200,
        &full(&store::note(&p["patient"], &p["id"])?),
    ))
}

fn edit_note(req: &Request, p: &Params) -> Result<Response, Error> {
    let n = store::edit_note(req.caller(), &p["patient"], &p["id"], &req.json()?)?;
    Ok(Response::json(200, &full(&n)))
}

fn sign_note(req: &Request, p: &Params) -> Result<Response, Error> {
    let n = store::sign_note(req.caller(), &p["patient"], &p["id"])?;
    Ok(Response::json(200, &full(&n)))
}

fn amend_note(req: &Request, p: &Params) -> Result<Response, Error> {
    let n = store::amend_note(req.caller(), &p["patient"], &p["id"], &req.json()?)?;
    Ok(Response::json(200, &full(&n)))
}

fn get_cpp(req: &Request, p: &Params) -> Result<Response, Error> {
    clinical(req.caller())?;
    let items = store::cpp(&p["patient"])?;
    let mut out = serde_json::Map::new();
    for (key, _, _) in SECTIONS {
        out.insert(
            key.into(),
            json!(
                items
                    .iter()
                    .filter(|i| i.section == key)
                    .collect::<Vec<_>>()
            ),
        );
    }
    Ok(Response::json(200, &out))
}

fn add_item(req: &Request, p: &Params) -> Result<Response, Error> {
    let i = store::add_item(req.caller(), &p["patient"], &p["section"], &req.json()?)?;
    Ok(Response::json(201, &i))
}

fn resolve_item(req: &Request, p: &Params) -> Result<Response, Error> {
    let i = store::resolve_item(req.caller(), &p["patient"], &p["section"], &p["id"])?;
    Ok(Response::json(200, &i))
}

fn get_measurements(req: &Request, p: &Params) -> Result<Response, Error> {
    clinical(req.caller())?;
    let all = store::measurements(&p["patient"])?;
    Ok(Response::json(200, &json!({ "measurements": all })))
}

fn record_measurements(req: &Request, p: &Params) -> Result<Response, Error> {
    let m = store::record_measurements(req.caller(), &p["patient"], &req.json()?)?;
    Ok(Response::json(201, &m))
}

fn get_ticklers(req: &Request, p: &Params) -> Result<Response, Error> {
    clinical(req.caller())?;
    let all = store::ticklers(&p["patient"])?;
    Ok(Response::json(200, &json!({ "ticklers": all })))
}

fn add_tickler(req: &Request, p: &Params) -> Result<Response, Error> {
    let t = store::add_tickler(req.caller(), &p["patient"], &req.json()?)?;
    Ok(Response::json(201, &t))
}

#[derive(Deserialize)]
struct Done {
    done: bool,
}

fn tickler_done(req: &Request, p: &Params) -> Result<Response, Error> {
    let d: Done = req.json()?;
    let t = store::set_tickler_done(req.caller(), &p["patient"], &p["id"], d.done)?;
    Ok(Response::json(200, &t))
}

fn my_ticklers(req: &Request, _: &Params) -> Result<Response, Error> {
    let c = req.caller();
    clinical(c)?;
    let all = req.query_param("all").is_some_and(|v| v == "true");
    let list = store::assigned_to(&c.user, all)?;
    Ok(Response::json(200, &json!({ "ticklers": list })))
}
