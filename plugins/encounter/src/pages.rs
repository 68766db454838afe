//! The plugin's pages and chart panels: server-rendered HTML and forms, no scripts.
//!
//! Every form posts back here and is answered with `303` to the page it came from; a refused
//! post shows the page again with the message and, for notes and measurements, what the
//! person typed (a clinician's text is never thrown away). Pages name their patient
//! (`about_patient`), so Osler shows the patient banner above them.
//!
//! | form | posts to |
//! |---|---|
//! | new note | `POST /patients/{patient}/notes` (`type`, `date`, `format`, `text` or the SOAP fields) |
//! | change a draft / sign / amend | `POST /patients/{patient}/notes/{id}/edit`, `…/sign`, `…/amend` (with `reason`) |
//! | measurements | `POST /patients/{patient}/measurements` |
//! | CPP entry / resolve | `POST /patients/{patient}/cpp/{section}`, `…/{id}/resolve` |
//! | tickler / done | `POST /patients/{patient}/ticklers` (`message`, `due`, `assignee`), `…/{id}/done` (`done` = 1 or 0) |

use osler_sdk::{Caller, Error, Params, Request, Response, clock, directory, html};
use serde::Deserialize;

use crate::model::*;
use crate::store::{self, clinical};

fn esc(s: &str) -> String {
    html::escape(s)
}

fn base(patient: &str) -> String {
    format!("/plugins/encounter/patients/{}", esc(patient))
}

fn today() -> String {
    clock::now().local[..10].to_string()
}

/// "2026-11-30T09:05:00" → "2026-11-30 09:05".
fn when(t: &str) -> String {
    t.get(..16).unwrap_or(t).replace('T', " ")
}

const STYLE: &str = "<style>\
.cols{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:1rem;align-items:start}\
@media (max-width:900px){.cols{grid-template-columns:1fr}}\
.soap dt{font-weight:600;margin-top:.4rem}.soap dd{margin:0 0 .2rem 0;white-space:pre-wrap}\
.text{white-space:pre-wrap}\
.row{display:flex;gap:.5rem;flex-wrap:wrap;align-items:end}.row label{flex:1 1 8rem}\
.inline{display:inline}.resolved{text-decoration:line-through;color:#667}\
.version{border-left:3px solid #cbd5e1;padding-left:.75rem;margin:.75rem 0}\
.snippet{color:#334;margin:.1rem 0 .5rem}\
ul.plain{list-style:none;padding:0;margin:0}ul.plain li{padding:.25rem 0;border-bottom:1px solid #eef}\
textarea{width:100%;min-height:4.5rem}textarea,input,select{font-weight:400}\
td.when{white-space:nowrap}.cpp h3{margin:1rem 0 .25rem}\
</style>";

fn status_badge(n: &Note) -> String {
    let (class, label) = match n.status() {
        "draft" => ("amber", "draft — not signed"),
        "signed" => ("green", "signed"),
        _ => ("green", "signed, amended"),
    };
    format!("<span class=\"badge {class}\">{label}</span>")
}

fn content_html(c: &Content) -> String {
    match c {
        Content::Text { text } => format!("<div class=\"text\">{}</div>", esc(text)),
        Content::Soap {
            subjective,
            objective,
            assessment,
            plan,
        } => {
            let mut out = String::from("<dl class=\"soap\">");
            for (h, t) in [
                ("Subjective", subjective),
                ("Objective", objective),
                ("Assessment", assessment),
                ("Plan", plan),
            ] {
                if !t.is_empty() {
                    out.push_str(&format!("<dt>{h}</dt><dd>{}</dd>", esc(t)));
                }
            }
            out.push_str("</dl>");
            out
        }
    }
}

fn snippet(c: &Content, max: usize) -> String {
    let p = c.plain();
    if p.chars().count() > max {
        format!("{}…", p.chars().take(max).collect::<String>())
    } else {
        p
    }
}

fn page(patient: &str, status: u16, title: &str, body: &str) -> Response {
    Response::html(status, html::page(title, &format!("{STYLE}{body}"))).about_patient(patient)
}

fn message(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default()
}

fn done_notice(req: &Request) -> String {
    let text = match req.query_param("done").as_deref() {
        Some("note") => "Draft saved. Sign it when it is complete.",
        Some("signed") => "Note signed. It is now locked: correct it with an amendment.",
        Some("amended") => "Amendment signed and saved; the history keeps every version.",
        Some("measured") => "Measurements recorded.",
        Some("item") => "Added to the CPP.",
        Some("resolved") => "Marked resolved.",
        Some("tickler") => "Tickler saved.",
        _ => return String::new(),
    };
    format!("<p class=\"notice\" role=\"status\">{text}</p>")
}

/// Text inputs and areas of a note form, prefilled with `n`.
fn note_fields(n: &NoteInput, soap: bool, with_header: bool) -> String {
    let mut out = String::new();
    if with_header {
        let options: String = ENCOUNTER_TYPES
            .iter()
            .map(|(c, l)| {
                format!(
                    "<option value=\"{c}\"{}>{l}</option>",
                    if n.kind == *c { " selected" } else { "" }
                )
            })
            .collect();
        out.push_str(&format!(
            "<div class=\"row\"><label>Encounter type <select name=\"type\" id=\"note-type\">{options}</select></label>\
             <label>Date <input type=\"date\" name=\"date\" id=\"note-date\" value=\"{}\" required></label></div>",
            esc(&n.date)
        ));
    }
    if soap {
        out.push_str("<input type=\"hidden\" name=\"format\" value=\"soap\">");
        for (name, label, v) in [
            ("subjective", "Subjective", &n.subjective),
            ("objective", "Objective", &n.objective),
            ("assessment", "Assessment", &n.assessment),
            ("plan", "Plan", &n.plan),
        ] {
            out.push_str(&format!(
                "<label>{label}<textarea name=\"{name}\" id=\"note-{name}\">{}</textarea></label>",
                esc(v)
            ));
        }
    } else {
        out.push_str(&format!(
            "<input type=\"hidden\" name=\"format\" value=\"text\">\
             <label>Note<textarea name=\"text\" id=\"note-text\" rows=\"6\">{}</textarea></label>",
            esc(&n.text)
        ));
    }
    out
}

fn input_of(c: &Content) -> NoteInput {
    match c {
        Content::Text { text } => NoteInput {
            format: "text".into(),
            text: text.clone(),
            ..Default::default()
        },
        Content::Soap {
            subjective,
            objective,
            assessment,
            plan,
        } => NoteInput {
            format: "soap".into(),
            subjective: subjective.clone(),
            objective: objective.clone(),
            assessment: assessment.clone(),
            plan: plan.clone(),
            ..Default::default()
        },
    }
}

/// What a refused form brings back to the encounter page.
#[derive(Default)]
struct Back {
    error: Option<String>,
    note: Option<NoteInput>,
    measurement: Option<MeasurementInput>,
}

// The encounter page.

pub fn encounter(req: &Request, p: &Params) -> Result<Response, Error> {
    render_encounter(req, &p["patient"], 200, Back::default())
}

fn render_encounter(
    req: &Request,
    patient: &str,
    status: u16,
    back: Back,
) -> Result<Response, Error> {
    let c = req.caller();
    clinical(c)?;
    let notes = store::notes(patient)?;
    let measurements = store::measurements(patient)?;
    let items = store::cpp(patient)?;
    let ticklers = store::ticklers(patient)?;
    let csrf = html::csrf_field(c);
    let b = base(patient);

    let soap = back
        .note
        .as_ref()
        .map(|n| n.format == "soap")
        .unwrap_or_else(|| req.query_param("format").as_deref() == Some("soap"));
    let draft = back.note.clone().unwrap_or_else(|| NoteInput {
        kind: "office".into(),
        date: today(),
        ..Default::default()
    });
    let switch = if soap {
        format!("<a href=\"{b}\">Write free text instead</a>")
    } else {
        format!("<a href=\"{b}?format=soap\">Write a SOAP note instead</a>")
    };
    let new_note = format!(
        "<section class=\"card\" aria-labelledby=\"new-note\"><h2 id=\"new-note\">New {} note</h2>\
         <form method=\"post\" action=\"{b}/notes\">{csrf}{}\
         <p><button type=\"submit\">Save draft</button> <span class=\"muted\">{switch}</span></p></form></section>",
        if soap { "SOAP" } else { "encounter" },
        note_fields(&draft, soap, true)
    );

    let mut list = String::new();
    for n in &notes {
        list.push_str(&format!(
            "<li><a href=\"{b}/notes/{id}\"><strong>{date}</strong> · {kind}</a> {badge} \
             <span class=\"muted\">{author}</span><p class=\"snippet\">{snip}</p></li>",
            id = esc(&n.id),
            date = esc(&n.date),
            kind = esc(encounter_label(&n.kind)),
            badge = status_badge(n),
            author = esc(&n.author_name),
            snip = esc(&snippet(&n.current().content, 240)),
        ));
    }
    let notes_html = format!(
        "<section class=\"card\" aria-labelledby=\"notes-h\"><h2 id=\"notes-h\">Notes ({})</h2>{}</section>",
        notes.len(),
        if list.is_empty() {
            "<p class=\"muted\">No notes yet.</p>".to_string()
        } else {
            format!("<ul class=\"plain\" id=\"notes\">{list}</ul>")
        }
    );

    let left = format!(
        "{}{new_note}{notes_html}",
        if back.note.is_some() {
            message(back.error.as_deref())
        } else {
            String::new()
        }
    );
    let right = format!(
        "{}{}{}",
        measurements_card(patient, c, &measurements, &back),
        cpp_card(patient, &csrf, &items),
        ticklers_card(patient, &csrf, &ticklers, c)?
    );
    let body = format!(
        "{}{}<div class=\"cols\"><div>{left}</div><div>{right}</div></div>",
        done_notice(req),
        if back.note.is_none() && back.measurement.is_none() {
            message(back.error.as_deref())
        } else {
            String::new()
        }
    );
    Ok(page(patient, status, "Encounter notes", &body))
}

fn measurements_table(all: &[Measurement], newest_first: usize) -> String {
    if all.is_empty() {
        return "<p class=\"muted\">No measurements yet.</p>".into();
    }
    let used: Vec<_> = KINDS
        .iter()
        .filter(|k| all.iter().any(|m| m.values.contains_key(k.0)))
        .collect();
    let bp = used.iter().any(|k| k.0 == "systolic");
    let any_bmi = all.iter().any(|m| m.bmi.is_some());
    let mut head = String::from("<th>Taken</th>");
    if bp {
        head.push_str("<th>BP <span class=\"muted\">mmHg</span></th>");
    }
    for k in used
        .iter()
        .filter(|k| k.0 != "systolic" && k.0 != "diastolic")
    {
        head.push_str(&format!(
            "<th>{} <span class=\"muted\">{}</span></th>",
            k.1, k.2
        ));
    }
    if any_bmi {
        head.push_str("<th>BMI</th>");
    }
    let mut rows = String::new();
    for m in all.iter().rev().take(newest_first) {
        let mut row = format!("<td class=\"when\">{}</td>", esc(&when(&m.taken)));
        if bp {
            row.push_str(
                &match (m.values.get("systolic"), m.values.get("diastolic")) {
                    (Some(s), Some(d)) => format!(
                        "<td class=\"num\">{}/{}</td>",
                        show("systolic", *s),
                        show("diastolic", *d)
                    ),
                    _ => "<td></td>".into(),
                },
            );
        }
        for k in used
            .iter()
            .filter(|k| k.0 != "systolic" && k.0 != "diastolic")
        {
            row.push_str(&match m.values.get(k.0) {
                Some(v) => format!("<td class=\"num\">{}</td>", show(k.0, *v)),
                None => "<td></td>".into(),
            });
        }
        if any_bmi {
            row.push_str(&match m.bmi {
                Some(b) => format!("<td class=\"num\">{b:.1}</td>"),
                None => "<td></td>".into(),
            });
        }
        rows.push_str(&format!("<tr>{row}</tr>"));
    }
    format!(
        "<table id=\"measurements\"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )
}

fn measurements_card(patient: &str, c: &Caller, all: &[Measurement], back: &Back) -> String {
    let b = base(patient);
    let typed = back.measurement.clone().unwrap_or_default();
    let value = |k: &str| -> String {
        let v = match k {
            "systolic" => &typed.systolic,
            "diastolic" => &typed.diastolic,
            "pulse" => &typed.pulse,
            "weight" => &typed.weight,
            "height" => &typed.height,
            "waist" => &typed.waist,
            "temperature" => &typed.temperature,
            "spo2" => &typed.spo2,
            "glucose" => &typed.glucose,
            "hba1c" => &typed.hba1c,
            _ => &None,
        };
        esc(v.as_deref().unwrap_or(""))
    };
    let mut fields = String::new();
    for (key, label, unit, lo, hi, decimals) in KINDS {
        let step = if decimals == 0 { "1" } else { "0.1" };
        fields.push_str(&format!(
            "<label>{label} <span class=\"muted\">{unit}</span>\
             <input type=\"number\" name=\"{key}\" id=\"m-{key}\" min=\"{lo}\" max=\"{hi}\" step=\"{step}\" value=\"{}\"></label>",
            value(key)
        ));
    }
    format!(
        "<section class=\"card\" aria-labelledby=\"meas-h\"><h2 id=\"meas-h\">Measurements</h2>{}{}\
         <details{}><summary>Record measurements</summary>\
         <form method=\"post\" action=\"{b}/measurements\">{}<div class=\"row\">{fields}</div>\
         <div class=\"row\"><label>Taken <input type=\"datetime-local\" name=\"taken\" value=\"{}\"></label>\
         <label>Comment <input name=\"comment\" value=\"{}\"></label></div>\
         <p><button type=\"submit\">Record</button> <span class=\"muted\">BMI is computed from the weight and the height.</span></p></form></details></section>",
        if back.measurement.is_some() {
            message(back.error.as_deref())
        } else {
            String::new()
        },
        measurements_table(all, 20),
        if back.measurement.is_some() {
            " open"
        } else {
            ""
        },
        html::csrf_field(c),
        esc(&typed.taken),
        esc(&typed.comment),
    )
}

fn cpp_card(patient: &str, csrf: &str, items: &[Item]) -> String {
    let b = base(patient);
    let mut out = String::from(
        "<section class=\"card cpp\" aria-labelledby=\"cpp-h\"><h2 id=\"cpp-h\">Cumulative patient profile</h2>",
    );
    for (key, title, coded) in SECTIONS {
        let mut list = String::new();
        let mut mine: Vec<&Item> = items.iter().filter(|i| i.section == key).collect();
        mine.sort_by_key(|i| i.resolved.is_some());
        for i in mine {
            let resolve = if i.resolved.is_none() {
                format!(
                    " <form class=\"inline\" method=\"post\" action=\"{b}/cpp/{key}/{}/resolve\">{csrf}<button class=\"link\" type=\"submit\">resolve</button></form>",
                    esc(&i.id)
                )
            } else {
                String::new()
            };
            list.push_str(&format!(
                "<li{}>{}{}{}{resolve}</li>",
                if i.resolved.is_some() {
                    " class=\"resolved\""
                } else {
                    ""
                },
                esc(&i.text),
                i.code
                    .as_deref()
                    .map(|c| format!(" <span class=\"badge\">{}</span>", esc(c)))
                    .unwrap_or_default(),
                i.since
                    .as_deref()
                    .map(|s| format!(" <span class=\"muted\">since {}</span>", esc(s)))
                    .unwrap_or_default(),
            ));
        }
        out.push_str(&format!(
            "<h3>{title}</h3>{}<details><summary>Add</summary><form method=\"post\" action=\"{b}/cpp/{key}\">{csrf}<div class=\"row\">\
             <label>{title} <input name=\"text\" required maxlength=\"{MAX_LINE}\"></label>{}\
             <label>Since <input name=\"since\" maxlength=\"40\"></label><button type=\"submit\">Add</button></div></form></details>",
            if list.is_empty() {
                "<p class=\"muted\">None recorded.</p>".to_string()
            } else {
                format!("<ul id=\"cpp-{key}\">{list}</ul>")
            },
            if coded {
                "<label>ICD-10-CA <input name=\"code\" maxlength=\"8\" placeholder=\"E11.9\"></label>"
            } else {
                ""
            }
        ));
    }
    out.push_str("</section>");
    out
}

fn ticklers_card(patient: &str, csrf: &str, all: &[Tickler], c: &Caller) -> Result<String, Error> {
    let b = base(patient);
    let now = today();
    let mut list = String::new();
    for t in all {
        list.push_str(&tickler_item(t, &now, Some(csrf)));
    }
    // Those who may read a tickler: the site's physicians and nurses.
    let staff = directory::staff()?;
    let options: String = staff
        .iter()
        .filter(|s| {
            store::CLINICAL
                .iter()
                .any(|r| s.roles.iter().any(|x| x == r))
        })
        .map(|s| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                esc(&s.user),
                if s.user == c.user { " selected" } else { "" },
                esc(&s.display_name)
            )
        })
        .collect();
    Ok(format!(
        "<section class=\"card\" aria-labelledby=\"tick-h\"><h2 id=\"tick-h\">Ticklers</h2>{}\
         <details><summary>New tickler</summary><form method=\"post\" action=\"{b}/ticklers\">{csrf}\
         <label>Message <input name=\"message\" required maxlength=\"{MAX_LINE}\"></label><div class=\"row\">\
         <label>Due <input type=\"date\" name=\"due\" required value=\"{now}\"></label>\
         <label>For <select name=\"assignee\">{options}</select></label><button type=\"submit\">Add</button></div></form></details></section>",
        if list.is_empty() {
            "<p class=\"muted\">No ticklers.</p>".to_string()
        } else {
            format!("<ul class=\"plain\">{list}</ul>")
        }
    ))
}

/// A tickler in a list; with `csrf`, a done/undo button.
fn tickler_item(t: &Tickler, today: &str, csrf: Option<&str>) -> String {
    let due = if t.done.is_some() {
        "<span class=\"badge green\">done</span>".to_string()
    } else if t.due.as_str() < today {
        format!("<span class=\"badge red\">overdue {}</span>", esc(&t.due))
    } else {
        format!("<span class=\"badge amber\">due {}</span>", esc(&t.due))
    };
    let button = csrf
        .map(|csrf| {
            format!(
                " <form class=\"inline\" method=\"post\" action=\"{}/ticklers/{}/done\">{csrf}\
                 <input type=\"hidden\" name=\"done\" value=\"{}\"><button class=\"link\" type=\"submit\">{}</button></form>",
                base(&t.patient),
                esc(&t.id),
                if t.done.is_some() { "0" } else { "1" },
                if t.done.is_some() { "undo" } else { "done" }
            )
        })
        .unwrap_or_default();
    format!(
        "<li{}>{due} {} <span class=\"muted\">for {}</span>{button}</li>",
        if t.done.is_some() {
            " class=\"resolved\""
        } else {
            ""
        },
        esc(&t.message),
        esc(&t.assignee_name)
    )
}

// Form posts.

fn form_error(req: &Request, patient: &str, e: Error, back: Back) -> Result<Response, Error> {
    match e {
        Error::Invalid(_) | Error::Conflict(_) => {
            let status = e.status();
            render_encounter(
                req,
                patient,
                status,
                Back {
                    error: Some(e.message().to_string()),
                    ..back
                },
            )
        }
        e => Err(e),
    }
}

pub fn new_note(req: &Request, p: &Params) -> Result<Response, Error> {
    let input: NoteInput = req.form()?;
    let patient = &p["patient"];
    match store::create_note(req.caller(), patient, &input) {
        Ok(n) => Ok(Response::redirect_see_other(&format!(
            "{}/notes/{}?done=note",
            base(patient),
            n.id
        ))),
        Err(e) => form_error(
            req,
            patient,
            e,
            Back {
                note: Some(input),
                ..Back::default()
            },
        ),
    }
}

pub fn measure(req: &Request, p: &Params) -> Result<Response, Error> {
    let input: MeasurementInput = req.form()?;
    let patient = &p["patient"];
    match store::record_measurements(req.caller(), patient, &input) {
        Ok(_) => Ok(Response::redirect_see_other(&format!(
            "{}?done=measured#meas-h",
            base(patient)
        ))),
        Err(e) => form_error(
            req,
            patient,
            e,
            Back {
                measurement: Some(input),
                ..Back::default()
            },
        ),
    }
}

pub fn add_item(req: &Request, p: &Params) -> Result<Response, Error> {
    let input: ItemInput = req.form()?;
    let patient = &p["patient"];
    match store::add_item(req.caller(), patient, &p["section"], &input) {
        Ok(_) => Ok(Response::redirect_see_other(&format!(
            "{}?done=item#cpp-h",
            base(patient)
        ))),
        Err(e) => form_error(req, patient, e, Back::default()),
    }
}

pub fn resolve_item(req: &Request, p: &Params) -> Result<Response, Error> {
    let patient = &p["patient"];
    match store::resolve_item(req.caller(), patient, &p["section"], &p["id"]) {
        Ok(_) => Ok(Response::redirect_see_other(&format!(
            "{}?done=resolved#cpp-h",
            base(patient)
        ))),
        Err(e) => form_error(req, patient, e, Back::default()),
    }
}

pub fn add_tickler(req: &Request, p: &Params) -> Result<Response, Error> {
    let input: TicklerInput = req.form()?;
    let patient = &p["patient"];
    match store::add_tickler(req.caller(), patient, &input) {
        Ok(_) => Ok(Response::redirect_see_other(&format!(
            "{}?done=tickler#tick-h",
            base(patient)
        ))),
        Err(e) => form_error(req, patient, e, Back::default()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DoneForm {
    done: String,
    back: String,
}

pub fn tickler_done(req: &Request, p: &Params) -> Result<Response, Error> {
    let f: DoneForm = req.form()?;
    let patient = &p["patient"];
    store::set_tickler_done(req.caller(), patient, &p["id"], f.done == "1")?;
    Ok(Response::redirect_see_other(&if f.back == "mine" {
        "/plugins/encounter/ticklers".to_string()
    } else {
        format!("{}?done=tickler#tick-h", base(patient))
    }))
}

// A note.

pub fn note(req: &Request, p: &Params) -> Result<Response, Error> {
    render_note(req, &p["patient"], &p["id"], 200, None, None)
}

fn render_note(
    req: &Request,
    patient: &str,
    id: &str,
    status: u16,
    error: Option<&str>,
    typed: Option<&NoteInput>,
) -> Result<Response, Error> {
    let c = req.caller();
    clinical(c)?;
    let n = store::note(patient, id)?;
    let b = base(patient);
    let csrf = html::csrf_field(c);
    let cur = n.current();
    let soap = matches!(cur.content, Content::Soap { .. });
    let mine = n.author == c.user;
    let mut body = format!(
        "{}{}<p>{} <span class=\"muted\">{} · written by {} · version {}</span></p>\
         <section class=\"card\" aria-label=\"The note\">{}</section>",
        done_notice(req),
        message(error),
        status_badge(&n),
        esc(encounter_label(&n.kind)),
        esc(&n.author_name),
        cur.n,
        content_html(&cur.content),
    );
    if !n.locked() {
        if mine {
            let mut draft = typed.cloned().unwrap_or_else(|| input_of(&cur.content));
            draft.kind = n.kind.clone();
            draft.date = n.date.clone();
            if let Some(t) = typed {
                draft.kind = t.kind.clone();
                draft.date = t.date.clone();
            }
            body.push_str(&format!(
                "<section class=\"card\" aria-labelledby=\"sign-h\"><h2 id=\"sign-h\">Sign</h2>\
                 <p>Signing locks the note: after that it can only be corrected by an amendment, with its reason.</p>\
                 <form method=\"post\" action=\"{b}/notes/{id}/sign\">{csrf}<button type=\"submit\" id=\"sign\">Sign note</button></form></section>\
                 <section class=\"card\" aria-labelledby=\"edit-h\"><h2 id=\"edit-h\">Change the draft</h2>\
                 <form method=\"post\" action=\"{b}/notes/{id}/edit\">{csrf}{}<p><button type=\"submit\" class=\"secondary\">Save draft</button></p></form></section>",
                note_fields(&draft, soap, true),
                id = esc(&n.id),
            ));
        } else {
            body.push_str(&format!(
                "<p class=\"warning\">A draft: only its author, {}, may change or sign it.</p>",
                esc(&n.author_name)
            ));
        }
    } else if mine {
        let mut draft = typed.cloned().unwrap_or_else(|| input_of(&cur.content));
        if typed.is_none() {
            draft.reason.clear();
        }
        body.push_str(&format!(
            "<section class=\"card\" aria-labelledby=\"amend-h\"><h2 id=\"amend-h\">Amend</h2>\
             <p class=\"muted\">The note is signed and locked. An amendment is a new version, signed as you save it; every earlier version stays in the history.</p>\
             <form method=\"post\" action=\"{b}/notes/{id}/amend\">{csrf}\
             <label>Reason for the amendment <input name=\"reason\" id=\"amend-reason\" required maxlength=\"{MAX_LINE}\" value=\"{}\"></label>{}\
             <p><button type=\"submit\">Sign amendment</button></p></form></section>",
            esc(&draft.reason),
            note_fields(&draft, soap, false),
            id = esc(&n.id),
        ));
    }
    let mut history = String::new();
    for v in n.versions.iter().rev() {
        history.push_str(&format!(
            "<div class=\"version\" id=\"v{n}\"><h3>Version {n}{current}</h3><p class=\"muted\">written by {who} at {at}{signed}</p>{reason}{content}</div>",
            n = v.n,
            current = if v.n == cur.n { " (current)" } else { "" },
            who = esc(&v.written.name),
            at = esc(&when(&v.written.at)),
            signed = v
                .signed
                .as_ref()
                .map(|s| format!(" · signed by {} at {}", esc(&s.name), esc(&when(&s.at))))
                .unwrap_or_else(|| " · not signed".into()),
            reason = v
                .reason
                .as_deref()
                .map(|r| format!("<p><strong>Reason:</strong> {}</p>", esc(r)))
                .unwrap_or_default(),
            content = content_html(&v.content),
        ));
    }
    body.push_str(&format!(
        "<section class=\"card\" aria-labelledby=\"hist-h\"><h2 id=\"hist-h\">History ({} version{})</h2>{history}</section>\
         <p><a href=\"{b}\">← All notes of this patient</a></p>",
        n.versions.len(),
        if n.versions.len() == 1 { "" } else { "s" }
    ));
    Ok(page(
        patient,
        status,
        &format!("Note of {} · {}", n.date, encounter_label(&n.kind)),
        &body,
    ))
}

fn note_post(
    req: &Request,
    p: &Params,
    act: impl Fn(&Caller, &str, &str, &NoteInput) -> Result<Note, Error>,
    done: &str,
) -> Result<Response, Error> {
    let input: NoteInput = req.form().unwrap_or_default();
    let (patient, id) = (&p["patient"], &p["id"]);
    match act(req.caller(), patient, id, &input) {
        Ok(_) => Ok(Response::redirect_see_other(&format!(
            "{}/notes/{}?done={done}",
            base(patient),
            esc(id)
        ))),
        Err(e @ (Error::Invalid(_) | Error::Conflict(_))) => render_note(
            req,
            patient,
            id,
            e.status(),
            Some(e.message()),
            Some(&input),
        ),
        Err(e) => Err(e),
    }
}

pub fn edit_note(req: &Request, p: &Params) -> Result<Response, Error> {
    note_post(req, p, store::edit_note, "note")
}

pub fn sign_note(req: &Request, p: &Params) -> Result<Response, Error> {
    note_post(req, p, |c, pt, id, _| store::sign_note(c, pt, id), "signed")
}

pub fn amend_note(req: &Request, p: &Params) -> Result<Response, Error> {
    note_post(req, p, store::amend_note, "amended")
}

// My ticklers.

pub fn my_ticklers(req: &Request, _: &Params) -> Result<Response, Error> {
    let c = req.caller();
    clinical(c)?;
    let all = req.query_param("all").as_deref() == Some("true");
    let list = store::assigned_to(&c.user, all)?;
    let now = today();
    let csrf = html::csrf_field(c);
    let mut rows = String::new();
    let mut names = std::collections::BTreeMap::new();
    for t in &list {
        if !names.contains_key(&t.patient) {
            names.insert(t.patient.clone(), patient_name(&t.patient)?);
        }
        rows.push_str(&format!(
            "<tr><td>{}</td><td><a href=\"{}\">{}</a> · <a href=\"{}\">notes</a></td><td>{}</td><td>{}</td><td>\
             <form class=\"inline\" method=\"post\" action=\"{}/ticklers/{}/done\">{csrf}<input type=\"hidden\" name=\"back\" value=\"mine\">\
             <input type=\"hidden\" name=\"done\" value=\"{}\"><button class=\"link\" type=\"submit\">{}</button></form></td></tr>",
            if t.done.is_some() {
                "<span class=\"badge green\">done</span>".to_string()
            } else if t.due.as_str() < now.as_str() {
                format!("<span class=\"badge red\">{}</span>", esc(&t.due))
            } else {
                esc(&t.due)
            },
            format_args!("/patients/{}", esc(&t.patient)),
            esc(&names[&t.patient]),
            base(&t.patient),
            esc(&t.message),
            esc(&t.created.name),
            base(&t.patient),
            esc(&t.id),
            if t.done.is_some() { "0" } else { "1" },
            if t.done.is_some() { "undo" } else { "done" },
        ));
    }
    let body = format!(
        "<p class=\"muted\">Ticklers assigned to you, soonest due first. {}</p>{}",
        if all {
            "<a href=\"?\">Open ones only</a>"
        } else {
            "<a href=\"?all=true\">Show done ones too</a>"
        },
        if rows.is_empty() {
            "<p>Nothing to do.</p>".to_string()
        } else {
            format!(
                "<table id=\"ticklers\"><thead><tr><th>Due</th><th>Patient</th><th>Message</th><th>From</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
            )
        }
    );
    Ok(Response::html(
        200,
        html::page("My ticklers", &format!("{STYLE}{body}")),
    ))
}

/// "FAMILY, Given" of a patient's FHIR record (an audited read, through `patients.read`).
fn patient_name(id: &str) -> Result<String, Error> {
    let p = osler_sdk::patients::get(id)?;
    let name = p["name"]
        .as_array()
        .and_then(|names| {
            names
                .iter()
                .find(|n| n["use"] != "nickname" && n["use"] != "old")
                .or(names.first())
        })
        .cloned()
        .unwrap_or_default();
    let family = name["family"].as_str().unwrap_or("").to_uppercase();
    let given: Vec<&str> = name["given"]
        .as_array()
        .map(|g| g.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    Ok(match (family.is_empty(), given.is_empty()) {
        (true, true) => "(no name)".into(),
        (false, true) => family,
        (true, false) => given.join(" "),
        (false, false) => format!("{family}, {}", given.join(" ")),
    })
}

// Chart panels: what the chart shows at a glance, linking to the encounter page.

pub fn notes_panel(patient: &str) -> Result<String, Error> {
    let notes = store::notes(patient)?;
    let ticklers = store::ticklers(patient)?;
    let b = base(patient);
    let now = today();
    let mut out = String::from(STYLE);
    if notes.is_empty() {
        out.push_str("<p class=\"muted\">No notes yet.</p>");
    } else {
        out.push_str("<ul class=\"plain\">");
        for n in notes.iter().take(5) {
            out.push_str(&format!(
                "<li><a href=\"{b}/notes/{}\"><strong>{}</strong> · {}</a> {} <span class=\"muted\">{}</span><p class=\"snippet\">{}</p></li>",
                esc(&n.id),
                esc(&n.date),
                esc(encounter_label(&n.kind)),
                status_badge(n),
                esc(&n.author_name),
                esc(&snippet(&n.current().content, 160)),
            ));
        }
        out.push_str("</ul>");
    }
    let open: Vec<_> = ticklers.iter().filter(|t| t.done.is_none()).collect();
    if !open.is_empty() {
        out.push_str("<h3>Open ticklers</h3><ul class=\"plain\">");
        for t in open {
            out.push_str(&tickler_item(t, &now, None));
        }
        out.push_str("</ul>");
    }
    out.push_str(&format!(
        "<p><a class=\"button\" href=\"{b}\">Write a note</a> <a href=\"{b}#notes-h\">All notes ({})</a></p>",
        notes.len()
    ));
    Ok(out)
}

pub fn cpp_panel(patient: &str) -> Result<String, Error> {
    let items = store::cpp(patient)?;
    let mut out = String::from(STYLE);
    let mut any = false;
    for (key, title, _) in SECTIONS {
        let active: Vec<_> = items
            .iter()
            .filter(|i| i.section == key && i.resolved.is_none())
            .collect();
        if active.is_empty() {
            continue;
        }
        any = true;
        out.push_str(&format!("<h3>{title}</h3><ul class=\"cpp\">"));
        for i in active {
            out.push_str(&format!(
                "<li>{}{}</li>",
                esc(&i.text),
                i.code
                    .as_deref()
                    .map(|c| format!(" <span class=\"badge\">{}</span>", esc(c)))
                    .unwrap_or_default()
            ));
        }
        out.push_str("</ul>");
    }
    if !any {
        out.push_str("<p class=\"muted\">Nothing recorded in the CPP.</p>");
    }
    out.push_str(&format!(
        "<p><a href=\"{}#cpp-h\">Edit the CPP</a></p>",
        base(patient)
    ));
    Ok(out)
}

pub fn measurements_panel(patient: &str) -> Result<String, Error> {
    let all = store::measurements(patient)?;
    let mut out = String::from(STYLE);
    if all.is_empty() {
        out.push_str("<p class=\"muted\">No measurements yet.</p>");
    } else {
        // The latest of each kind, with when it was taken.
        out.push_str("<table><thead><tr><th>Measurement</th><th>Latest</th><th>Taken</th></tr></thead><tbody>");
        let latest = |key: &str| {
            all.iter()
                .rev()
                .find_map(|m| m.values.get(key).map(|v| (*v, m)))
        };
        if let Some((s, m)) = latest("systolic")
            && let Some(d) = m.values.get("diastolic")
        {
            out.push_str(&format!(
                "<tr><td>Blood pressure</td><td class=\"num\">{}/{} mmHg</td><td>{}</td></tr>",
                show("systolic", s),
                show("diastolic", *d),
                esc(&when(&m.taken))
            ));
        }
        for (key, label, unit, ..) in KINDS
            .iter()
            .filter(|k| k.0 != "systolic" && k.0 != "diastolic")
        {
            if let Some((v, m)) = latest(key) {
                out.push_str(&format!(
                    "<tr><td>{label}</td><td class=\"num\">{} {unit}</td><td>{}</td></tr>",
                    show(key, v),
                    esc(&when(&m.taken))
                ));
            }
        }
        if let Some(m) = all.iter().rev().find(|m| m.bmi.is_some()) {
            out.push_str(&format!(
                "<tr><td>BMI</td><td class=\"num\">{:.1}</td><td>{}</td></tr>",
                m.bmi.unwrap_or_default(),
                esc(&when(&m.taken))
            ));
        }
        out.push_str("</tbody></table>");
    }
    out.push_str(&format!(
        "<p><a href=\"{}#meas-h\">Record measurements · the table over time</a></p>",
        base(patient)
    ));
    Ok(out)
}
