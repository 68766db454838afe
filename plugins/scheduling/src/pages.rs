//! Server-rendered pages: the schedule (providers side by side), a printable day sheet, the
//! booking form and the waiting lists. Plain HTML and forms, no scripts.

use osler_sdk::{Error, Params, Request, Response, clock, html, patients};
use serde::Deserialize;

use crate::HOME;
use crate::api::booker;
use crate::model::*;
use crate::store::{self, BookInput};

fn e(s: &str) -> String {
    html::escape(s)
}

/// `?date=` or today at the site.
fn date_param(req: &Request) -> Result<String, Error> {
    match req.query_param("date").filter(|d| !d.is_empty()) {
        Some(d) => Ok(date_str(parse_date("date", &d)?)),
        None => Ok(clock::now().local.get(..10).unwrap_or("").to_string()),
    }
}

fn status_select(list: &[Status], current: &str) -> String {
    let mut out = String::from(r#"<select name="status" aria-label="Status">"#);
    for s in list {
        out += &format!(
            r#"<option value="{}"{}>{} · {}</option>"#,
            e(&s.code),
            if s.code == current { " selected" } else { "" },
            e(&s.code),
            e(&s.label)
        );
    }
    out + "</select>"
}

/// `GET /day?provider=&date=`: the printable day sheet, in time order, without cancelled
/// appointments; a status form per appointment on screen.
pub fn day_sheet(req: &Request, _: &Params) -> Result<Response, Error> {
    let c = req.caller();
    let date = date_param(req)?;
    let provider = req.query_param("provider").unwrap_or_default();
    let person = store::provider(&provider)?;
    let appts = store::day(&c.site, &provider, &date, false)?;
    let names = store::patient_names(&appts, c.can("patients.read"));
    let list = store::statuses(&c.site)?;
    let d = parse_date("date", &date)?;
    let mut out = format!(
        r#"<style>.sheet td form{{display:flex;gap:.3rem;margin:.2rem 0 0}}.sheet td form select{{width:auto;height:2rem;padding:.1rem .3rem}}.sheet td form button{{margin:0;padding:.15rem .6rem}}
@media print{{form,.noprint{{display:none!important}}.sheet th,.sheet td{{font-size:10pt;padding:2pt 4pt}}.sheet tr{{break-inside:avoid}}}}</style>
<nav class="noprint" aria-label="Days"><a href="{HOME}?date={}">Back to the schedule</a> · <a href="{HOME}day?provider={}&amp;date={}">← Previous day</a> · <a href="{HOME}day?provider={}&amp;date={}">Next day →</a> · <a href="{HOME}week?provider={}&amp;date={}">Week</a></nav>
<p>{} · {} · {}</p>"#,
        e(&date),
        e(&provider),
        date_str(crate::model::add_days(d, -1)),
        e(&provider),
        date_str(crate::model::add_days(d, 1)),
        e(&provider),
        e(&date),
        e(&c.site_name),
        e(&person.display_name),
        e(&crate::grid::long_date(d))
    );
    if appts.is_empty() {
        out += r#"<p class="muted">No appointments.</p>"#;
    } else {
        out += r#"<table class="sheet"><thead><tr><th>Time</th><th>Patient</th><th>Type</th><th>Reason</th><th>Status</th></tr></thead><tbody>"#;
        for a in &appts {
            let label = store::status_of(&list, &a.status)
                .map(|s| s.label.clone())
                .unwrap_or_default();
            let double = if a.double_booked {
                " (double booking)"
            } else {
                ""
            };
            out += &format!(
                r#"<tr><td>{}–{}</td><td>{}{} <a class="noprint small" href="{HOME}appointments/{}">details</a></td><td>{}</td><td>{}</td><td>{}<form method="post" action="{HOME}appointments/{}/status" class="noprint">{}{}<button type="submit">Set</button></form></td></tr>"#,
                e(&a.start),
                e(&a.end),
                crate::grid::patient_link(a, &names),
                double,
                e(&a.id),
                e(a.appt_type.as_deref().unwrap_or("")),
                e(&a.reason),
                e(&label),
                e(&a.id),
                html::csrf_field(c),
                status_select(&list, &a.status),
            );
        }
        out += "</tbody></table>";
    }
    let title = format!("Day sheet · {}", person.display_name);
    Ok(Response::html(200, html::page(&title, &out)))
}

/// `POST /appointments/{id}/status` from the day sheet.
pub fn status_post(req: &Request, p: &Params) -> Result<Response, Error> {
    #[derive(Deserialize)]
    struct F {
        status: String,
        #[serde(default)]
        back: String,
    }
    let f: F = req.form()?;
    let now = clock::now();
    let a = store::set_status(
        &req.caller().site,
        &p["id"],
        &f.status,
        &req.caller().user,
        &now.local,
    )?;
    if f.back == "appointment" {
        return Ok(Response::redirect_see_other(&format!(
            "{HOME}appointments/{}",
            a.id
        )));
    }
    Ok(Response::redirect_see_other(&format!(
        "{HOME}day?provider={}&date={}",
        a.provider, a.date
    )))
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct BookForm {
    provider: String,
    patient: String,
    name: String,
    date: String,
    start: String,
    minutes: String,
    #[serde(rename = "type")]
    appt_type: String,
    reason: String,
    notes: String,
}

fn none_if_empty(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `GET /book?provider=&date=&start=&minutes=&q=&patient=`: the booking form, prefilled from
/// the grid's free slot; `q` searches registered patients by name or chart number (through
/// the host, audited), `patient` is the one chosen from the results.
pub fn book_form(req: &Request, _: &Params) -> Result<Response, Error> {
    let q = |k: &str| req.query_param(k).unwrap_or_default();
    let form = BookForm {
        date: date_param(req)?,
        provider: q("provider"),
        start: q("start"),
        minutes: none_if_empty(&q("minutes")).unwrap_or_else(|| "15".into()),
        patient: q("patient"),
        appt_type: q("type"),
        reason: q("reason"),
        ..Default::default()
    };
    render_book(req, 200, None, &form)
}

/// The chart number of a FHIR Patient, if it has one.
fn chart_number(p: &serde_json::Value) -> Option<String> {
    p["identifier"].as_array()?.iter().find_map(|i| {
        (i["system"] == CHART_SYSTEM)
            .then(|| i["value"].as_str().map(str::to_string))
            .flatten()
    })
}

/// The identifier system of chart numbers.
const CHART_SYSTEM: &str = "urn:osler:chart-number";

/// Registered patients matching `q`: by chart number when it is all digits, else by name
/// (every word a prefix of a name word). At most 20.
pub fn find_patients(q: &str) -> Result<Vec<serde_json::Value>, Error> {
    let q = q.trim();
    let digits: String = q.chars().filter(|c| !c.is_whitespace()).collect();
    let search = if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        patients::Search {
            identifier: Some(format!("{CHART_SYSTEM}|{digits}")),
            count: Some(20),
            ..Default::default()
        }
    } else {
        if q.chars().count() > 100 {
            return Err(Error::invalid("q: at most 100 characters"));
        }
        patients::Search {
            name: Some(q.to_string()),
            count: Some(20),
            ..Default::default()
        }
    };
    Ok(patients::search(&search)?.patients)
}

/// The booking page's query string for `f` with another `patient` (and no search).
fn book_link(f: &BookForm, patient: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("provider", &f.provider),
        ("date", &f.date),
        ("start", &f.start),
        ("minutes", &f.minutes),
        ("type", &f.appt_type),
        ("reason", &f.reason),
    ] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    if !patient.is_empty() {
        q.append_pair("patient", patient);
    }
    format!("{HOME}book?{}", q.finish())
}

/// The "Patient" part of the booking page: the chosen patient, or a search and its results.
fn patient_part(req: &Request, f: &BookForm) -> Result<(String, bool), Error> {
    let c = req.caller();
    let may_read = c.can("patients.read");
    let chosen = match none_if_empty(&f.patient) {
        Some(id) if may_read && check_ref("patient", &id).is_ok() => match patients::get(&id) {
            Ok(p) => Some((id, p)),
            Err(Error::NotFound(_)) => None,
            Err(err) => return Err(err),
        },
        _ => None,
    };
    if let Some((id, p)) = chosen {
        let born = p["birthDate"].as_str().unwrap_or("");
        let chart = chart_number(&p).unwrap_or_default();
        return Ok((
            format!(
                r#"<section class="card" aria-labelledby="who-h"><h2 id="who-h">Patient</h2><p id="chosen-patient">Booking for <a href="/patients/{}"><strong>{}</strong></a> · born {} · chart {} <a class="noprint" href="{}">Choose someone else</a></p></section>"#,
                e(&id),
                e(&store::display_name(&p)),
                e(born),
                e(&chart),
                e(&book_link(f, "")),
            ),
            true,
        ));
    }
    let q = req.query_param("q").unwrap_or_default();
    let mut hidden = String::new();
    for (k, v) in [
        ("provider", &f.provider),
        ("date", &f.date),
        ("start", &f.start),
        ("minutes", &f.minutes),
        ("type", &f.appt_type),
        ("reason", &f.reason),
    ] {
        hidden += &format!(r#"<input type="hidden" name="{k}" value="{}">"#, e(v));
    }
    let mut out = format!(
        r#"<section class="card" aria-labelledby="who-h"><h2 id="who-h">Patient</h2>
<form method="get" action="{HOME}book" role="search" class="find">{hidden}<label for="q">Find a registered patient: name or chart number</label><div class="row"><input id="q" name="q" value="{}" maxlength="100" autocomplete="off"><button type="submit">Find patient</button></div></form>"#,
        e(&q)
    );
    if !may_read {
        out += r#"<p class="muted">You may not read patient records: book by name below.</p>"#;
    } else if !q.trim().is_empty() {
        let found = find_patients(&q)?;
        if found.is_empty() {
            out += &format!(
                r#"<p class="muted" role="status">No registered patient matches “{}”. <a href="/patients/new">Register a new patient</a>, or book by name below.</p>"#,
                e(q.trim())
            );
        } else {
            out += r#"<table class="matches"><thead><tr><th>Name</th><th>Born</th><th>Chart</th><th></th></tr></thead><tbody>"#;
            for p in &found {
                let id = p["id"].as_str().unwrap_or("");
                out += &format!(
                    r#"<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td><td><a class="button secondary choose" href="{}">Choose</a></td></tr>"#,
                    e(&store::display_name(p)),
                    e(p["birthDate"].as_str().unwrap_or("")),
                    e(&chart_number(p).unwrap_or_default()),
                    e(&book_link(f, id)),
                );
            }
            out += "</tbody></table>";
        }
    }
    out += "</section>";
    Ok((out, false))
}

fn render_book(
    req: &Request,
    status: u16,
    message: Option<String>,
    f: &BookForm,
) -> Result<Response, Error> {
    let c = req.caller();
    let providers = store::providers()?;
    let types = store::types(&c.site)?;
    let mut out = String::from(
        r#"<style>.find .row{display:flex;gap:.5rem}.find .row button{margin:0}table.matches .button{margin:0;padding:.2rem .7rem}</style>"#,
    );
    if let Some(m) = message {
        out += &m;
    }
    let (who, chosen) = patient_part(req, f)?;
    out += &who;
    let mut opts = String::new();
    for p in &providers {
        opts += &format!(
            r#"<option value="{}"{}>{}</option>"#,
            e(&p.user),
            if p.user == f.provider {
                " selected"
            } else {
                ""
            },
            e(&p.display_name)
        );
    }
    let mut type_opts = String::from(r#"<option value="">(none)</option>"#);
    for t in &types {
        type_opts += &format!(
            r#"<option value="{}"{}>{} ({} min)</option>"#,
            e(&t.name),
            if t.name == f.appt_type {
                " selected"
            } else {
                ""
            },
            e(&t.name),
            t.minutes
        );
    }
    let who_field = if chosen {
        format!(
            r#"<input type="hidden" name="patient" value="{}"><input type="hidden" name="name" value="">"#,
            e(f.patient.trim())
        )
    } else {
        format!(
            r#"<input type="hidden" name="patient" value="">
<label for="name">Not registered yet? Their name</label><input id="name" name="name" maxlength="120" value="{}">"#,
            e(&f.name)
        )
    };
    out += &format!(
        r#"<form method="post" action="{HOME}book" class="card" aria-label="Booking">{}
{who_field}
<label for="provider">Provider</label><select id="provider" name="provider">{opts}</select>
<label for="date">Date</label><input type="date" id="date" name="date" required value="{}">
<label for="start">Start</label><input type="time" id="start" name="start" step="300" required value="{}">
<label for="minutes">Minutes (empty: the type's duration)</label><input type="number" id="minutes" name="minutes" min="5" step="5" value="{}">
<label for="type">Type</label><select id="type" name="type">{type_opts}</select>
<label for="reason">Reason</label><input id="reason" name="reason" maxlength="200" value="{}">
<label for="notes">Notes</label><textarea id="notes" name="notes" rows="3" maxlength="2000">{}</textarea>
<button type="submit">Book</button> <a href="{HOME}?date={}">Back to the schedule</a></form>"#,
        html::csrf_field(c),
        e(&f.date),
        e(&f.start),
        e(&f.minutes),
        e(&f.reason),
        e(&f.notes),
        e(&f.date),
    );
    Ok(Response::html(
        status,
        html::page("Book an appointment", &out),
    ))
}

/// `POST /book`: books, then shows what happened (double booking, warnings, and the
/// patient's waiting-list entries with a button to remove each).
pub fn book_post(req: &Request, _: &Params) -> Result<Response, Error> {
    let f: BookForm = req.form()?;
    let minutes = match none_if_empty(&f.minutes) {
        Some(m) => Some(
            m.parse::<u16>()
                .map_err(|_| Error::invalid("minutes: a number"))?,
        ),
        None => None,
    };
    let input = BookInput {
        provider: f.provider.clone(),
        patient: none_if_empty(&f.patient),
        name: none_if_empty(&f.name),
        date: f.date.clone(),
        start: f.start.clone(),
        end: None,
        minutes,
        appt_type: none_if_empty(&f.appt_type),
        reason: f.reason.clone(),
        notes: f.notes.clone(),
    };
    let now = clock::now();
    let c = req.caller();
    match store::book(&booker(req, &now.local), &input) {
        Ok(b) => {
            let a = &b.appointment;
            let mut out = format!(
                r#"<p class="banner" role="status">Booked {} {}–{} with {}{}.</p>"#,
                e(&a.date),
                e(&a.start),
                e(&a.end),
                e(&a.provider_name),
                if b.double_booked {
                    " — this is a double booking"
                } else {
                    ""
                }
            );
            for w in &b.warnings {
                out += &format!(r#"<p class="error" role="alert">Warning: {}</p>"#, e(w));
            }
            for w in &b.waiting_lists {
                out += &format!(
                    r#"<form method="post" action="{HOME}waitlist/remove" class="card">{}<input type="hidden" name="list" value="{}"><input type="hidden" name="id" value="{}"><p>This patient is on the waiting list “{}” ({}).</p><button type="submit">Remove them from it</button></form>"#,
                    html::csrf_field(c),
                    e(&w.list),
                    e(&w.id),
                    e(&w.list),
                    e(&w.note)
                );
            }
            out += &format!(
                r#"<p><a href="{HOME}appointments/{}">The appointment</a> · <a href="{HOME}?date={}">Schedule</a> · <a href="{HOME}day?provider={}&amp;date={}">Day sheet</a> · <a href="{HOME}book?date={}">Book another</a></p>"#,
                e(&a.id),
                e(&a.date),
                e(&a.provider),
                e(&a.date),
                e(&a.date)
            );
            Ok(Response::html(201, html::page("Booked", &out)))
        }
        Err(err @ (Error::Invalid(_) | Error::Conflict(_))) => {
            let msg = format!(r#"<p class="error" role="alert">{}</p>"#, e(err.message()));
            render_book(req, err.status(), Some(msg), &f)
        }
        Err(err) => Err(err),
    }
}

/// `GET /waitlist?list=`: the lists, or one list's patients in order with a form to add.
pub fn waitlist_page(req: &Request, _: &Params) -> Result<Response, Error> {
    let c = req.caller();
    let lists = store::waitlists(&c.site)?;
    let mut out = String::from("<nav class=\"card\"><h2>Lists</h2><ul>");
    for l in &lists {
        out += &format!(
            r#"<li><a href="{HOME}waitlist?list={}">{}</a> <span class="muted">{}</span></li>"#,
            e(&l.name),
            e(&l.name),
            e(&l.description)
        );
    }
    if lists.is_empty() {
        out += r#"<li class="muted">No waiting lists yet (create one with PUT /plugins/scheduling/api/waitlists/&lt;name&gt;).</li>"#;
    }
    out += "</ul></nav>";
    if let Some(name) = req.query_param("list") {
        let (list, entries) = store::waitlist(&c.site, &name)?;
        let names = waitlist_names(&entries, c.can("patients.read"));
        out += &format!("<section class=\"card\"><h2>{}</h2>", e(&list.name));
        if entries.is_empty() {
            out += r#"<p class="muted">Nobody is waiting.</p>"#;
        } else {
            out += "<table><thead><tr><th>#</th><th>Patient</th><th>Note</th><th>Added</th><th></th></tr></thead><tbody>";
            for (i, w) in entries.iter().enumerate() {
                out += &format!(
                    r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><form method="post" action="{HOME}waitlist/remove">{}<input type="hidden" name="list" value="{}"><input type="hidden" name="id" value="{}"><button type="submit" class="link">Remove</button></form></td></tr>"#,
                    i + 1,
                    e(names.get(&w.patient).unwrap_or(&w.patient)),
                    if w.patient_request {
                        format!(
                            r#"<span class="badge" title="asked for by {}">Patient request</span> {}"#,
                            e(&w.added_by),
                            e(&w.note)
                        )
                    } else {
                        e(&w.note)
                    },
                    e(&w.added),
                    html::csrf_field(c),
                    e(&w.list),
                    e(&w.id)
                );
            }
            out += "</tbody></table>";
        }
        out += &format!(
            r#"<form method="post" action="{HOME}waitlist">{}<input type="hidden" name="list" value="{}">
<label for="patient">Patient id</label><input id="patient" name="patient" required>
<label for="note">Note</label><input id="note" name="note" maxlength="500">
<button type="submit">Add to the list</button></form></section>"#,
            html::csrf_field(c),
            e(&list.name)
        );
    }
    Ok(Response::html(200, html::page("Waiting lists", &out)))
}

/// Names for a list's patients, when the signed-in user may read them (one audited read each).
fn waitlist_names(
    entries: &[WaitEntry],
    may_read: bool,
) -> std::collections::HashMap<String, String> {
    let mut names = std::collections::HashMap::new();
    if may_read {
        for w in entries {
            if !names.contains_key(&w.patient)
                && let Ok(p) = osler_sdk::patients::get(&w.patient)
            {
                names.insert(w.patient.clone(), store::display_name(&p));
            }
        }
    }
    names
}

#[derive(Deserialize)]
struct AddForm {
    list: String,
    patient: String,
    #[serde(default)]
    note: String,
}

/// `POST /waitlist`: adds a patient at the end of a list.
pub fn waitlist_add(req: &Request, _: &Params) -> Result<Response, Error> {
    let f: AddForm = req.form()?;
    let now = clock::now();
    store::add_to_waitlist(
        &req.caller().site,
        &f.list,
        f.patient.trim(),
        &f.note,
        None,
        &req.caller().user,
        now.local.get(..10).unwrap_or(""),
    )?;
    Ok(Response::redirect_see_other(&format!(
        "{HOME}waitlist?list={}",
        f.list
    )))
}

#[derive(Deserialize)]
struct RemoveForm {
    list: String,
    id: String,
}

/// `POST /waitlist/remove`.
pub fn waitlist_remove(req: &Request, _: &Params) -> Result<Response, Error> {
    let f: RemoveForm = req.form()?;
    store::remove_from_waitlist(&req.caller().site, &f.list, &f.id)?;
    Ok(Response::redirect_see_other(&format!(
        "{HOME}waitlist?list={}",
        f.list
    )))
}

/// The chart's "Upcoming appointments" panel: date, time, with whom and the status, soonest
/// first; a link to the day sheet of each. An HTML fragment without scripts.
pub fn upcoming_panel(list: &[Status], upcoming: &[Appointment]) -> String {
    if upcoming.is_empty() {
        return r#"<p class="muted">No upcoming appointments at this site.</p>"#.into();
    }
    let mut out = String::from("<ul>");
    for a in upcoming {
        let status = store::status_of(list, &a.status)
            .map(|s| s.label.clone())
            .unwrap_or_else(|| a.status.clone());
        out.push_str(&format!(
            r#"<li><a href="{HOME}day?provider={}&amp;date={}">{} {}</a> with {} — {}</li>"#,
            html::escape(&a.provider),
            html::escape(&a.date),
            html::escape(&a.date),
            html::escape(&a.start),
            html::escape(&a.provider_name),
            html::escape(&status),
        ));
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upcoming_panel_lists_appointments_escaped_and_says_when_there_are_none() {
        let list = vec![Status {
            code: "t".into(),
            label: "To do".into(),
            fhir: "booked".into(),
        }];
        let a = Appointment {
            id: "drlee-20300107-1".into(),
            site: "main".into(),
            provider: "drlee".into(),
            provider_name: "Dr. <Lee>".into(),
            patient: Some("p1".into()),
            name: None,
            date: "2030-01-07".into(),
            start: "09:00".into(),
            end: "09:15".into(),
            appt_type: None,
            code: None,
            reason: "knee pain".into(),
            notes: String::new(),
            status: "t".into(),
            double_booked: false,
            booked_by: "reception".into(),
            booked_at: "2029-12-01T10:00:00".into(),
            history: vec![],
            moves: vec![],
        };
        let html = upcoming_panel(&list, &[a]);
        assert!(
            html.contains("2030-01-07 09:00</a> with Dr. &lt;Lee&gt; — To do"),
            "{html}"
        );
        assert!(
            !html.contains("knee"),
            "the reason stays off the chart's summary"
        );
        assert!(upcoming_panel(&list, &[]).contains("No upcoming appointments"));
    }
}
