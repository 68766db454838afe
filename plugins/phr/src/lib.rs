//! My health record (MyOSCAR's place in Osler): a patient's own view of their chart — their
//! demographics, upcoming appointments (`osler:scheduling/appointments`), active medications
//! and allergies (`osler:prescribing/record`) — appointment requests to the clinic's waiting
//! list (`osler:scheduling/requests`), and the sections a patient can put in a share of their
//! record (panels in the `share` slot; the host makes and serves shares, see the README).
//!
//! **Whose record.** The patient is never taken from the URL or a form: the host says whose
//! record the signed-in patient may read (`patients::search` finds exactly their own record
//! for a patient, whatever the query), and every call names that record. A request that names
//! another patient anywhere (a `patient` parameter or field, a `/patients/{id}` path) is put
//! to the host as a read of that record, which the host refuses and records in the audit
//! trail; the answer is that refusal (403), or 404 for a record that does not exist.
//!
//! **Sections fail alone.** Each provider is called separately; a section whose provider is
//! disabled, not bound or failing says it is unavailable and the rest of the page works.

pub mod render;

use osler_sdk::{Error, Params, Plugin, Request, Response, Router, html, patients};
use serde::Deserialize;

use crate::bindings::osler::prescribing::record;
use crate::bindings::osler::resources::lookup;
use crate::bindings::osler::scheduling::{appointments, requests};
use crate::render::{Allergy, Link, Med, Visit};

mod bindings {
    osler_sdk::generate!({
        path: ["../../wit/v0.2.0", "wit"],
        world: "osler:phr/phr@0.1.0",
    });
}

const HOME: &str = "/plugins/phr/";

struct Phr;

impl Plugin for Phr {
    fn handle(req: Request) -> Response {
        let named = named_patients(&req);
        if !named.is_empty()
            && let Err(e) = own_patient().and_then(|own| refuse_other_ids(&named, &own))
        {
            return e.into();
        }
        Router::new()
            .get("/", home)
            .get("/request", request_form)
            .post("/request", request_post)
            .get("/patients/{id}", own_path)
            .get("/patients/{id}/{*rest}", own_path)
            .handle(&req)
    }

    fn render_panel(panel: &str, patient: &str) -> Result<String, Error> {
        let own = own_patient()?;
        if own.id != patient {
            // The host renders share sections only for the patient's own record; anything
            // else is put to the host, which refuses it on the record.
            patients::get(patient)?;
            return Err(Error::denied("a share is of the patient's own record"));
        }
        match panel {
            "share-demographics" => Ok(render::demographics(&own.record)),
            "share-medications" => Ok(format!(
                "<h3>Medications</h3>{}<h3>Allergies</h3>{}",
                medications_section(&own.id)?,
                allergies_section(&own.id)?
            )),
            "share-appointments" => appointments_section(&own.id),
            _ => Err(Error::not_found(format!("phr has no panel '{panel}'"))),
        }
    }
}

osler_sdk::export_plugin!(Phr with_bindings bindings);

/// The signed-in patient's own record.
struct Own {
    id: String,
    record: serde_json::Value,
}

/// The record of the person the call serves, who must be a patient: the host's answer to a
/// search by someone who may read only their own record is that record alone.
fn own_patient() -> Result<Own, Error> {
    let Some(person) = osler_sdk::context::person() else {
        return Err(Error::denied("my health record is for a signed-in patient"));
    };
    if !person.has_role("patient") || person.can("patients.read") {
        return Err(Error::denied(
            "my health record is for patients, about their own record",
        ));
    }
    let page = patients::search(&patients::Search::default())?;
    match page.patients.as_slice() {
        [p] => Ok(Own {
            id: p["id"].as_str().unwrap_or_default().to_string(),
            record: p.clone(),
        }),
        _ => Err(Error::denied("your account is not linked to a record")),
    }
}

/// Every place a request could name a patient: the `patient` query parameter or form field,
/// and `/patients/{id}` paths.
fn named_patients(req: &Request) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = req.query_param("patient") {
        out.push(p);
    }
    if req.method == "POST"
        && let Ok(f) = req.form::<PatientField>()
        && let Some(p) = f.patient
    {
        out.push(p);
    }
    if let Some(rest) = req.path.strip_prefix("/patients/") {
        out.push(rest.split('/').next().unwrap_or_default().to_string());
    }
    out
}

#[derive(Deserialize)]
struct PatientField {
    #[serde(default)]
    patient: Option<String>,
}

/// Another patient's id anywhere in the request: asked of the host as a read of that record,
/// which the host refuses (and audits) for a patient; never served here.
fn refuse_other_ids(named: &[String], own: &Own) -> Result<(), Error> {
    for id in named {
        if *id != own.id {
            patients::get(id)?;
            return Err(Error::denied("you may see only your own record"));
        }
    }
    Ok(())
}

fn own_path(_: &Request, _: &Params) -> Result<Response, Error> {
    // Only the patient's own id gets here (see `refuse_other_ids`).
    Ok(Response::redirect_see_other(HOME))
}

fn appointments_section(id: &str) -> Result<String, Error> {
    match appointments::upcoming(id, 10) {
        Ok(list) => Ok(render::appointments(
            &list
                .into_iter()
                .map(|a| Visit {
                    date: a.date,
                    start: a.start,
                    provider_name: a.provider_name,
                    status: a.fhir_status,
                })
                .collect::<Vec<_>>(),
        )),
        Err(Error::Unavailable(_)) => Ok(render::unavailable("Appointments are")),
        Err(e) => Err(e),
    }
}

fn medications_section(id: &str) -> Result<String, Error> {
    match record::active_medications(id) {
        Ok(list) => Ok(render::medications(
            &list
                .into_iter()
                .map(|m| Med {
                    drug: m.drug,
                    strength: m.strength,
                    sig: m.sig,
                    start: m.start,
                    prescriber: m.prescriber_name,
                    on_hold: m.status == "on-hold",
                })
                .collect::<Vec<_>>(),
        )),
        Err(Error::Unavailable(_)) => Ok(render::unavailable("Medications are")),
        Err(e) => Err(e),
    }
}

fn allergies_section(id: &str) -> Result<String, Error> {
    match record::allergies(id) {
        Ok(list) => Ok(render::allergies(
            &list
                .into_iter()
                .map(|a| Allergy {
                    substance: a.substance,
                    reaction: a.reaction,
                    severity: a.severity,
                })
                .collect::<Vec<_>>(),
        )),
        Err(Error::Unavailable(_)) => Ok(render::unavailable("Allergies are")),
        Err(e) => Err(e),
    }
}

/// The clinic's patient-audience resources about the drug classes of the patient's active
/// medications (at most ten, each once).
fn resources_section(id: &str) -> Result<String, Error> {
    let meds = match record::active_medications(id) {
        Ok(m) => m,
        Err(Error::Unavailable(_)) => return Ok(render::unavailable("Reading suggestions are")),
        Err(e) => return Err(e),
    };
    let mut links: Vec<Link> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut classes: Vec<String> = meds.into_iter().filter_map(|m| m.atc).collect();
    classes.sort();
    classes.dedup();
    for atc in classes {
        let found = match lookup::for_atc(&atc, Some(lookup::Audience::Patient)) {
            Ok(f) => f,
            Err(Error::Unavailable(_)) => {
                return Ok(render::unavailable("Reading suggestions are"));
            }
            Err(Error::Invalid(_)) => continue,
            Err(e) => return Err(e),
        };
        for r in found {
            if links.len() < 10 && seen.insert(r.id.clone()) {
                links.push(Link {
                    title: r.title,
                    url: r.url,
                    summary: r.summary,
                });
            }
        }
    }
    Ok(render::resources(&links))
}

/// A section, or what went wrong with it, in its place.
fn or_failed(section: Result<String, Error>, what: &str) -> String {
    section.unwrap_or_else(|err| {
        osler_sdk::warn!("a section failed: {what}");
        match err {
            Error::Denied(m) => format!("<p class=\"error\">{}</p>", html::escape(&m)),
            _ => render::unavailable(what),
        }
    })
}

fn home(req: &Request, _: &Params) -> Result<Response, Error> {
    let own = own_patient()?;
    let notice = match req.query_param("done").as_deref() {
        Some("requested") => {
            "<p class=\"notice\" role=\"status\">Your request is on its way to the clinic. \
             Reception will call you to book.</p>"
        }
        _ => "",
    };
    let pending = match requests::pending(&own.id) {
        Ok(list) => render::requests(
            &list
                .into_iter()
                .map(|r| (r.added, r.note))
                .collect::<Vec<_>>(),
        ),
        Err(_) => String::new(),
    };
    let body = format!(
        "{notice}<div class=\"grid two\">\
         <section class=\"card\" id=\"section-demographics\"><h2>About me</h2>{}\
         <p><a href=\"/me/contact\">Update my contact details</a></p></section>\
         <section class=\"card\" id=\"section-appointments\"><h2>Upcoming appointments</h2>{}{}\
         <p><a class=\"button secondary\" href=\"{HOME}request\">Request an appointment</a></p></section>\
         <section class=\"card\" id=\"section-medications\"><h2>Medications</h2>{}</section>\
         <section class=\"card\" id=\"section-allergies\"><h2>Allergies</h2>{}</section>\
         </div>\
         <section class=\"card\" id=\"section-resources\"><h2>Reading from your clinic</h2>{}</section>\
         <section class=\"card\"><h2>My record, my choice</h2>\
         <p><a href=\"/me/shares\">Share part of my record</a> with another clinician, for a \
         time you choose. <a href=\"/me/access\">See who looked at my record</a>.</p></section>",
        render::demographics(&own.record),
        or_failed(appointments_section(&own.id), "Appointments are"),
        pending,
        or_failed(medications_section(&own.id), "Medications are"),
        or_failed(allergies_section(&own.id), "Allergies are"),
        or_failed(resources_section(&own.id), "Reading suggestions are"),
    );
    Ok(Response::html(200, html::page("My health", &body)))
}

fn request_page(req: &Request, error: Option<&str>, f: &RequestForm) -> String {
    let option = |v: &str, label: &str| {
        format!(
            "<option value=\"{v}\"{}>{label}</option>",
            if f.times == v { " selected" } else { "" }
        )
    };
    format!(
        "{}<form method=\"post\" action=\"{HOME}request\" class=\"card\">{}\
         <label for=\"dates\">Preferred dates (optional)</label>\
         <input id=\"dates\" name=\"dates\" maxlength=\"200\" value=\"{}\" placeholder=\"e.g. any weekday next week\">\
         <label for=\"times\">Preferred time of day</label>\
         <select id=\"times\" name=\"times\">{}{}{}{}</select>\
         <label for=\"reason\">What is it for?</label>\
         <textarea id=\"reason\" name=\"reason\" maxlength=\"300\" required>{}</textarea>\
         <p class=\"muted small\">Reception will call you to book a time. For an emergency, call \
         911.</p>\
         <button type=\"submit\">Send request</button></form>",
        error
            .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", html::escape(m)))
            .unwrap_or_default(),
        html::csrf_field(req.caller()),
        html::escape(&f.dates),
        option("any", "Any time"),
        option("morning", "Morning"),
        option("afternoon", "Afternoon"),
        option("evening", "Evening"),
        html::escape(&f.reason),
    )
}

#[derive(Deserialize, Default)]
struct RequestForm {
    #[serde(default)]
    dates: String,
    #[serde(default)]
    times: String,
    #[serde(default)]
    reason: String,
}

fn request_form(req: &Request, _: &Params) -> Result<Response, Error> {
    let body = request_page(req, None, &RequestForm::default());
    Ok(Response::html(
        200,
        html::page("Request an appointment", &body),
    ))
}

fn request_post(req: &Request, _: &Params) -> Result<Response, Error> {
    let own = own_patient()?;
    let f: RequestForm = req.form()?;
    let again = |status: u16, msg: &str| {
        Response::html(
            status,
            html::page("Request an appointment", &request_page(req, Some(msg), &f)),
        )
    };
    let note = match render::request_note(&f.dates, &f.times, &f.reason) {
        Ok(n) => n,
        Err(m) => return Ok(again(400, &m)),
    };
    match requests::request(&own.id, &note) {
        Ok(_) => Ok(Response::redirect_see_other(&format!(
            "{HOME}?done=requested"
        ))),
        Err(Error::Unavailable(_)) => Ok(again(
            503,
            "Appointment requests are unavailable right now. Please call the clinic.",
        )),
        Err(Error::Invalid(m)) => Ok(again(400, &m)),
        Err(e) => Err(e),
    }
}
