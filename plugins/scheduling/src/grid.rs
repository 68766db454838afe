//! The appointment book: a day grid (providers side by side, time slots as rows), a week per
//! provider (seven days side by side), an appointment's page with its history, and moving an
//! appointment to another slot. Plain HTML: a free slot is a link to the booking form, or,
//! while an appointment is being moved, a button that moves it there.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use osler_sdk::{Caller, Error, Params, Request, Response, clock, html};
use serde::Deserialize;
use time::Date;

use crate::HOME;
use crate::api::{booker, may_configure};
use crate::model::*;
use crate::store::{self, Calendar};

fn e(s: &str) -> String {
    html::escape(s)
}

/// The site's today.
pub fn today() -> Result<Date, Error> {
    Ok(parse_local(&clock::now().local)?.0)
}

/// `?date=` or today.
fn date_of(req: &Request) -> Result<Date, Error> {
    match req.query_param("date").filter(|d| !d.is_empty()) {
        Some(d) => parse_date("date", d.trim()),
        None => today(),
    }
}

/// "Wednesday 2 December 2026".
pub fn long_date(d: Date) -> String {
    format!("{} {} {} {}", d.weekday(), d.day(), d.month(), d.year())
}

/// A stored local time (`2026-12-02T08:04:52`) as people read it: `2026-12-02 08:04`.
fn when(local: &str) -> String {
    local.get(..16).unwrap_or(local).replacen('T', " ", 1)
}

/// "Wed 2 Dec".
fn short_date(d: Date) -> String {
    let w = d.weekday().to_string();
    let m = d.month().to_string();
    format!("{} {} {}", &w[..3], d.day(), &m[..3])
}

/// One column of a grid: a provider's day.
pub struct Column {
    /// The header cell's content (markup).
    pub header: String,
    pub provider: String,
    pub provider_name: String,
    pub date: String,
    pub slots: Vec<Slot>,
    pub appointments: Vec<Appointment>,
    pub blocks: Vec<Block>,
    /// Why there are no slots, when there are none (a holiday, a day off).
    pub closed: Option<String>,
    /// Slot codes' colours and names, for templated slots.
    pub codes: BTreeMap<char, SlotCode>,
}

/// Reads one provider's day: hours, template, appointments (not cancelled), blocks.
pub fn column(
    site: &str,
    cal: &mut Calendar,
    provider: &str,
    provider_name: &str,
    date: Date,
    header: String,
) -> Result<Column, Error> {
    let d = date_str(date);
    let hours = cal.hours(site, provider, date)?;
    let codes = cal.codes(site)?;
    let template = match cal.template(site, provider, date)? {
        // A template that no longer lays out (a code was deleted) is shown as plain hours.
        Some(t) => t.layout(&codes).ok(),
        None => None,
    };
    let slots = day_slots(&hours, template.as_deref());
    let closed = match cal.holiday(site, &d)? {
        Some(h) => Some(format!("Clinic holiday: {}", h.name)),
        None if slots.is_empty() => Some("Not working".into()),
        None => None,
    };
    Ok(Column {
        header,
        provider: provider.to_string(),
        provider_name: provider_name.to_string(),
        date: d.clone(),
        slots,
        appointments: store::day(site, provider, &d, false)?,
        blocks: store::blocks(site, provider, &d)?,
        closed,
        codes,
    })
}

/// What a grid cell at one row time holds for one column.
#[derive(Debug, PartialEq, Eq)]
pub enum Cell {
    /// A slot starts here: `[start, end)`, with its code (`' '`: from hours alone).
    Slot(u16, u16, char),
    /// Inside a slot that started on an earlier row.
    Continues,
    /// Appointments outside every slot (booked before the hours or template changed).
    Outside,
    /// Nothing: the provider does not work then.
    Off,
}

/// The rows of a grid (every slot start of every column, and the start of any appointment
/// that lies outside its column's slots) and, per column, what each row holds.
pub fn layout(columns: &[(Vec<Slot>, Vec<u16>)]) -> (Vec<u16>, Vec<Vec<Cell>>) {
    let mut rows = BTreeSet::new();
    for (slots, starts) in columns {
        rows.extend(slots.iter().map(|s| s.start));
        for &t in starts {
            if slot_at(slots, t).is_none() {
                rows.insert(t);
            }
        }
    }
    let rows: Vec<u16> = rows.into_iter().collect();
    let cells = columns
        .iter()
        .map(|(slots, starts)| {
            rows.iter()
                .map(|&t| match slot_at(slots, t) {
                    Some(s) if s.start == t => Cell::Slot(s.start, s.end, s.code),
                    Some(_) => Cell::Continues,
                    None if starts.contains(&t) => Cell::Outside,
                    None => Cell::Off,
                })
                .collect()
        })
        .collect();
    (rows, cells)
}

/// The grid's styles (scoped to the plugin's content; the shell's print sheet hides the rest).
pub const STYLE: &str = r#"<style>
.book-nav{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;margin-bottom:1rem}
.book-nav form{display:flex;gap:.4rem;align-items:center;margin:0}
.book-nav input,.book-nav select{width:auto}
.book-nav button{margin:0}
.grid-wrap{overflow-x:auto}
table.grid{table-layout:fixed;border:1px solid var(--line)}
table.grid th,table.grid td{border:1px solid var(--line);padding:.25rem .4rem;font-size:.9rem}
table.grid th.time{width:4.2rem;font-variant-numeric:tabular-nums;color:var(--muted);font-weight:600}
table.grid thead th{text-align:center;background:var(--wash)}
table.grid td.off{background:repeating-linear-gradient(45deg,#f6f7f9,#f6f7f9 6px,#eef0f3 6px,#eef0f3 12px)}
table.grid td.cont{border-top-color:transparent}
table.grid td.closed{background:var(--wash);color:var(--muted);text-align:center;vertical-align:middle}
.slot-free{display:block;color:var(--muted);text-decoration:none;font-size:.85rem}
.slot-free:hover{color:var(--blue);text-decoration:underline}
.slot-code{float:right;font-size:.7rem;color:var(--muted)}
.appt{border-left:3px solid var(--blue);padding-left:.35rem;margin:.1rem 0}
.appt.here{border-left-color:var(--green)}
.appt.double{border-left-color:#b7791f}
.appt small{display:block;color:var(--muted)}
.blocked{color:var(--red);font-size:.85rem}
form.move-here{margin:0}form.move-here button{margin:0;padding:.1rem .5rem;font-size:.85rem}
@media print{.book-nav,.slot-free,form.move-here{display:none!important}
 table.grid th,table.grid td{font-size:9pt;padding:1pt 3pt}
 table.grid td.off{background:#eee}
 .appt{border-left:2px solid #000}
 table.grid tr{break-inside:avoid}}
</style>"#;

/// Patient names for the appointments of several columns (one audited read per patient, only
/// when the signed-in user may read patients).
pub fn names_of(c: &Caller, columns: &[Column]) -> HashMap<String, String> {
    let all: Vec<Appointment> = columns
        .iter()
        .flat_map(|col| col.appointments.iter().cloned())
        .collect();
    store::patient_names(&all, c.can("patients.read"))
}

/// The patient of an appointment, linked to their chart when registered.
pub fn patient_link(a: &Appointment, names: &HashMap<String, String>) -> String {
    match (&a.patient, &a.name) {
        (Some(p), _) => {
            let name = names
                .get(p)
                .cloned()
                .unwrap_or_else(|| "Registered patient".into());
            format!(
                r#"<a href="/patients/{}" class="patient">{}</a>"#,
                e(p),
                e(&name)
            )
        }
        (None, Some(n)) => format!("{} (not registered)", e(n)),
        _ => String::new(),
    }
}

/// Renders the grid. `moving`: the appointment being moved (free slots become "Move here").
pub fn grid_html(
    c: &Caller,
    columns: &[Column],
    list: &[Status],
    names: &HashMap<String, String>,
    moving: Option<&Appointment>,
) -> String {
    let shapes: Vec<(Vec<Slot>, Vec<u16>)> = columns
        .iter()
        .map(|col| {
            let starts = col.appointments.iter().map(|a| a.span().0).collect();
            (col.slots.clone(), starts)
        })
        .collect();
    let (rows, cells) = layout(&shapes);
    let mut out = String::from(
        r#"<div class="grid-wrap"><table class="grid"><thead><tr><th class="time">Time</th>"#,
    );
    for col in columns {
        out += &format!("<th>{}</th>", col.header);
    }
    out += "</tr></thead><tbody>";
    if rows.is_empty() {
        out += &format!(
            r#"<tr><th class="time"></th>{}</tr>"#,
            columns
                .iter()
                .map(|col| format!(
                    r#"<td class="closed">{}</td>"#,
                    e(col.closed.as_deref().unwrap_or("Not working"))
                ))
                .collect::<String>()
        );
    }
    for (i, &t) in rows.iter().enumerate() {
        out += &format!(r#"<tr><th class="time" scope="row">{}</th>"#, hm(t));
        for (j, col) in columns.iter().enumerate() {
            out += &match cells[j][i] {
                Cell::Off => r#"<td class="off"></td>"#.to_string(),
                Cell::Continues => r#"<td class="cont"></td>"#.to_string(),
                Cell::Outside => {
                    let inside: Vec<&Appointment> = col
                        .appointments
                        .iter()
                        .filter(|a| a.span().0 == t)
                        .collect();
                    format!(
                        "<td>{}</td>",
                        inside
                            .iter()
                            .map(|a| appt_html(a, list, names))
                            .collect::<String>()
                    )
                }
                Cell::Slot(start, end, code) => {
                    slot_html(c, col, start, end, code, list, names, moving)
                }
            };
        }
        out += "</tr>";
    }
    out + "</tbody></table></div>"
}

fn appt_html(a: &Appointment, list: &[Status], names: &HashMap<String, String>) -> String {
    let label = store::status_of(list, &a.status)
        .map(|s| s.label.clone())
        .unwrap_or_else(|| a.status.clone());
    let class = match (a.status == HERE, a.double_booked) {
        (_, true) => "appt double",
        (true, _) => "appt here",
        _ => "appt",
    };
    let mut detail = format!("{}–{}", e(&a.start), e(&a.end));
    if !a.reason.is_empty() {
        detail += &format!(" · {}", e(&a.reason));
    }
    format!(
        r#"<div class="{class}" data-appointment="{}">{} <span class="badge">{}</span><small>{detail} · <a href="{HOME}appointments/{}">details</a></small></div>"#,
        e(&a.id),
        patient_link(a, names),
        e(&label),
        e(&a.id),
    )
}

#[allow(clippy::too_many_arguments)]
fn slot_html(
    c: &Caller,
    col: &Column,
    start: u16,
    end: u16,
    code: char,
    list: &[Status],
    names: &HashMap<String, String>,
    moving: Option<&Appointment>,
) -> String {
    let here: Vec<&Appointment> = col
        .appointments
        .iter()
        .filter(|a| {
            let s = a.span().0;
            start <= s && s < end
        })
        .collect();
    let block = col.blocks.iter().find(|b| {
        let (bs, be) = (
            parse_hm("start", &b.start).unwrap_or(0),
            parse_hm("end", &b.end).unwrap_or(0),
        );
        bs < end && start < be
    });
    let (style, code_label) = match col.codes.get(&code) {
        Some(sc) if code != ' ' => (
            format!(r#" style="background:{}""#, e(&sc.colour)),
            format!(
                r#"<span class="slot-code" title="{}">{}</span>"#,
                e(&sc.name),
                e(&sc.code)
            ),
        ),
        _ => (String::new(), String::new()),
    };
    let mut inner = code_label;
    for a in &here {
        inner += &appt_html(a, list, names);
    }
    if let Some(b) = block {
        inner += &format!(
            r#"<div class="blocked">Do not book {}–{}{}</div>"#,
            e(&b.start),
            e(&b.end),
            if b.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", e(&b.reason))
            }
        );
    } else if here.is_empty() {
        let when = format!("{} {}", col.date, hm(start));
        inner += &match moving {
            Some(m) => {
                format!(
                    r#"<form method="post" action="{HOME}appointments/{}/move" class="move-here">{}<input type="hidden" name="provider" value="{}"><input type="hidden" name="date" value="{}"><input type="hidden" name="start" value="{}"><button type="submit" aria-label="Move here: {} with {}">Move here</button></form>"#,
                    e(&m.id),
                    html::csrf_field(c),
                    e(&col.provider),
                    e(&col.date),
                    hm(start),
                    e(&when),
                    e(&col.provider_name),
                )
            }
            None => format!(
                r#"<a class="slot-free" data-date="{}" data-start="{}" data-provider="{}" href="{HOME}book?provider={}&amp;date={}&amp;start={}&amp;minutes={}" aria-label="Book {} with {}">Free</a>"#,
                e(&col.date),
                hm(start),
                e(&col.provider),
                e(&col.provider),
                e(&col.date),
                hm(start),
                end - start,
                e(&when),
                e(&col.provider_name),
            ),
        };
    }
    format!("<td{style}>{inner}</td>")
}

/// The banner shown while an appointment is being moved, and its `move=` query part.
fn moving_banner(a: &Appointment, names: &HashMap<String, String>) -> String {
    format!(
        r#"<p class="banner noprint" role="status">Moving {}'s appointment of {} {}–{} with {}: choose a free slot (another day or provider too). <a href="{HOME}appointments/{}">Cancel the move</a></p>"#,
        a.patient
            .as_ref()
            .and_then(|p| names.get(p))
            .or(a.name.as_ref())
            .map(|n| e(n))
            .unwrap_or_else(|| "the patient".into()),
        e(&a.date),
        e(&a.start),
        e(&a.end),
        e(&a.provider_name),
        e(&a.id),
    )
}

/// The appointment named by `?move=`, if any (refused when cancelled: it cannot move).
fn moving_of(req: &Request, list: &[Status]) -> Result<Option<Appointment>, Error> {
    match req.query_param("move").filter(|m| !m.is_empty()) {
        Some(id) => {
            let (_, a) = store::appointment(&mut crate::txn::Txn::new(), &req.caller().site, &id)?;
            if store::is_cancelled(list, &a.status) {
                return Err(Error::conflict(format!(
                    "appointment {id} is cancelled; book a new one instead of moving it"
                )));
            }
            Ok(Some(a))
        }
        None => Ok(None),
    }
}

/// The links above the grid: set-up, booking, waiting lists.
fn tools(req: &Request, date: &str) -> String {
    let mut out = format!(
        r#"<p class="noprint"><a href="{HOME}book?date={}">Book an appointment</a> · <a href="{HOME}waitlist">Waiting lists</a>"#,
        e(date)
    );
    if may_configure(req).is_ok() {
        out +=
            &format!(r#" · <a href="{HOME}setup">Set-up: hours, templates, codes, holidays</a>"#);
    }
    out + "</p>"
}

/// `GET /?date=&move=`: every provider's day side by side, time slots as rows.
pub fn day_grid(req: &Request, _: &Params) -> Result<Response, Error> {
    let c = req.caller();
    let date = date_of(req)?;
    let d = date_str(date);
    let list = store::statuses(&c.site)?;
    let moving = moving_of(req, &list)?;
    let mv = moving
        .as_ref()
        .map(|a| format!("&amp;move={}", e(&a.id)))
        .unwrap_or_default();
    let providers = store::providers()?;
    let mut cal = Calendar::default();
    let mut columns = Vec::new();
    for p in &providers {
        let header = format!(
            r#"<a href="{HOME}day?provider={}&amp;date={d}">{}</a><br><small class="noprint"><a href="{HOME}week?provider={}&amp;date={d}{mv}">Week</a></small>"#,
            e(&p.user),
            e(&p.display_name),
            e(&p.user),
        );
        columns.push(column(
            &c.site,
            &mut cal,
            &p.user,
            &p.display_name,
            date,
            header,
        )?);
    }
    let names = names_of(c, &columns);
    let mv_hidden = moving
        .as_ref()
        .map(|a| format!(r#"<input type="hidden" name="move" value="{}">"#, e(&a.id)))
        .unwrap_or_default();
    let mut out = String::from(STYLE);
    if let Some(a) = &moving {
        out += &moving_banner(a, &names);
    }
    out += &format!(
        r#"<nav class="book-nav noprint" aria-label="Days"><a href="{HOME}?date={}{mv}">← Previous day</a><a href="{HOME}?date={}{mv}">Today</a><a href="{HOME}?date={}{mv}">Next day →</a><form method="get" action="{HOME}"><input type="date" id="date" name="date" aria-label="Date" value="{d}">{mv_hidden}<button type="submit">Show</button></form></nav>"#,
        date_str(add_days(date, -1)),
        date_str(today()?),
        date_str(add_days(date, 1)),
    );
    out += &tools(req, &d);
    out += &format!("<h2>{}</h2>", e(&long_date(date)));
    if let Some(h) = cal.holiday(&c.site, &d)? {
        out += &format!(
            r#"<p class="warning">Clinic holiday: {}. Nothing can be booked.</p>"#,
            e(&h.name)
        );
    }
    if providers.is_empty() {
        out += r#"<p class="muted">No providers (physicians or nurses) work at this site.</p>"#;
    } else {
        out += &grid_html(c, &columns, &list, &names, moving.as_ref());
    }
    let title = format!("Schedule · {} · {d}", c.site_name);
    Ok(Response::html(200, html::page(&title, &out)))
}

/// `GET /week?provider=&date=&move=`: one provider's week, Monday to Sunday, days as columns.
pub fn week(req: &Request, _: &Params) -> Result<Response, Error> {
    let c = req.caller();
    let date = date_of(req)?;
    let providers = store::providers()?;
    let provider = match req.query_param("provider").filter(|p| !p.is_empty()) {
        Some(p) => p,
        None => providers.first().map(|p| p.user.clone()).ok_or_else(|| {
            Error::not_found("no providers (physicians or nurses) work at this site")
        })?,
    };
    let person = store::provider(&provider)?;
    let list = store::statuses(&c.site)?;
    let moving = moving_of(req, &list)?;
    let mv = moving
        .as_ref()
        .map(|a| format!("&amp;move={}", e(&a.id)))
        .unwrap_or_default();
    let monday = monday_of(date);
    let mut cal = Calendar::default();
    let mut columns = Vec::new();
    for i in 0..7 {
        let day = add_days(monday, i);
        let header = format!(
            r#"<a href="{HOME}?date={}{mv}">{}</a>"#,
            date_str(day),
            e(&short_date(day))
        );
        columns.push(column(
            &c.site,
            &mut cal,
            &provider,
            &person.display_name,
            day,
            header,
        )?);
    }
    let names = names_of(c, &columns);
    let p = e(&provider);
    let mut out = String::from(STYLE);
    if let Some(a) = &moving {
        out += &moving_banner(a, &names);
    }
    let mut opts = String::new();
    for x in &providers {
        opts += &format!(
            r#"<option value="{}"{}>{}</option>"#,
            e(&x.user),
            if x.user == provider { " selected" } else { "" },
            e(&x.display_name)
        );
    }
    let mv_hidden = moving
        .as_ref()
        .map(|a| format!(r#"<input type="hidden" name="move" value="{}">"#, e(&a.id)))
        .unwrap_or_default();
    out += &format!(
        r#"<nav class="book-nav noprint" aria-label="Weeks"><a href="{HOME}week?provider={p}&amp;date={}{mv}">← Previous week</a><a href="{HOME}week?provider={p}&amp;date={}{mv}">This week</a><a href="{HOME}week?provider={p}&amp;date={}{mv}">Next week →</a><form method="get" action="{HOME}week"><select name="provider" aria-label="Provider">{opts}</select><input type="date" name="date" aria-label="Date" value="{}">{mv_hidden}<button type="submit">Show</button></form><a href="{HOME}?date={}{mv}">Day view</a></nav>"#,
        date_str(add_days(monday, -7)),
        date_str(today()?),
        date_str(add_days(monday, 7)),
        date_str(date),
        date_str(date),
    );
    out += &tools(req, &date_str(date));
    out += &format!(
        "<h2>{} · week of {}</h2>",
        e(&person.display_name),
        e(&long_date(monday))
    );
    out += &grid_html(c, &columns, &list, &names, moving.as_ref());
    let title = format!("Week · {}", person.display_name);
    Ok(Response::html(200, html::page(&title, &out)))
}

/// `GET /appointments/{id}`: the appointment, its status and move history, a status form and
/// a move form.
pub fn appointment_page(req: &Request, p: &Params) -> Result<Response, Error> {
    render_appointment(req, &p["id"], 200, None)
}

fn render_appointment(
    req: &Request,
    id: &str,
    status: u16,
    message: Option<String>,
) -> Result<Response, Error> {
    let c = req.caller();
    let (_, a) = store::appointment(&mut crate::txn::Txn::new(), &c.site, id)?;
    let list = store::statuses(&c.site)?;
    let names = store::patient_names(std::slice::from_ref(&a), c.can("patients.read"));
    let label = |code: &str| {
        store::status_of(&list, code)
            .map(|s| format!("{code} · {}", s.label))
            .unwrap_or_else(|| code.to_string())
    };
    let mut out = message.unwrap_or_default();
    if req.query_param("moved").is_some() {
        out += &format!(
            r#"<p class="notice" role="status">Moved to {} {}–{} with {}.</p>"#,
            e(&a.date),
            e(&a.start),
            e(&a.end),
            e(&a.provider_name)
        );
    }
    out += &format!(
        r#"<section class="card"><table><tbody>
<tr><th scope="row">Patient</th><td>{}</td></tr>
<tr><th scope="row">When</th><td>{} {}–{}</td></tr>
<tr><th scope="row">With</th><td>{}</td></tr>
<tr><th scope="row">Type</th><td>{}</td></tr>
<tr><th scope="row">Reason</th><td>{}</td></tr>
<tr><th scope="row">Notes</th><td>{}</td></tr>
<tr><th scope="row">Status</th><td>{}{}</td></tr>
<tr><th scope="row">Booked</th><td>by {} at {}</td></tr>
</tbody></table>
<p class="noprint"><a href="{HOME}day?provider={}&amp;date={}">Day sheet</a> · <a href="{HOME}?date={}">Schedule</a></p></section>"#,
        patient_link(&a, &names),
        e(&a.date),
        e(&a.start),
        e(&a.end),
        e(&a.provider_name),
        e(a.appt_type.as_deref().unwrap_or("—")),
        e(&a.reason),
        e(&a.notes),
        e(&label(&a.status)),
        if a.double_booked {
            " <span class=\"badge amber\">double booking</span>"
        } else {
            ""
        },
        e(&a.booked_by),
        e(&when(&a.booked_at)),
        e(&a.provider),
        e(&a.date),
        e(&a.date),
    );
    if !store::is_cancelled(&list, &a.status) {
        let providers = store::providers()?;
        let mut opts = String::new();
        for x in &providers {
            opts += &format!(
                r#"<option value="{}"{}>{}</option>"#,
                e(&x.user),
                if x.user == a.provider {
                    " selected"
                } else {
                    ""
                },
                e(&x.display_name)
            );
        }
        let mut statuses = String::new();
        for s in &list {
            statuses += &format!(
                r#"<option value="{}"{}>{} · {}</option>"#,
                e(&s.code),
                if s.code == a.status { " selected" } else { "" },
                e(&s.code),
                e(&s.label)
            );
        }
        out += &format!(
            r#"<section class="card noprint" aria-labelledby="move-h"><h2 id="move-h">Move (reschedule)</h2>
<p><a class="button secondary" href="{HOME}?date={}&amp;move={}">Choose a free slot on the schedule</a> <a class="button secondary" href="{HOME}week?provider={}&amp;date={}&amp;move={}">…on {}'s week</a></p>
<form method="post" action="{HOME}appointments/{}/move">{}
<label for="mv-provider">Provider</label><select id="mv-provider" name="provider">{opts}</select>
<label for="mv-date">Date</label><input type="date" id="mv-date" name="date" required value="{}">
<label for="mv-start">Start</label><input type="time" id="mv-start" name="start" step="300" required value="{}">
<button type="submit">Move</button></form></section>
<section class="card noprint" aria-labelledby="status-h"><h2 id="status-h">Status</h2>
<form method="post" action="{HOME}appointments/{}/status">{}<input type="hidden" name="back" value="appointment"><select name="status" aria-label="Status">{statuses}</select><button type="submit">Set status</button></form></section>"#,
            e(&a.date),
            e(&a.id),
            e(&a.provider),
            e(&a.date),
            e(&a.id),
            e(&a.provider_name),
            e(&a.id),
            html::csrf_field(c),
            e(&a.date),
            e(&a.start),
            e(&a.id),
            html::csrf_field(c),
        );
    }
    out += r#"<section class="card" aria-labelledby="moves-h"><h2 id="moves-h">Moves</h2>"#;
    if a.moves.is_empty() {
        out += r#"<p class="muted">Never moved.</p>"#;
    } else {
        out += "<table><thead><tr><th>From</th><th>To</th><th>By</th><th>When</th></tr></thead><tbody>";
        let place = |p: &Place| {
            let name = if p.provider == a.provider {
                a.provider_name.clone()
            } else {
                p.provider.clone()
            };
            format!(
                "{} {}–{} · {}",
                e(&p.date),
                e(&p.start),
                e(&p.end),
                e(&name)
            )
        };
        for m in &a.moves {
            out += &format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                place(&m.from),
                place(&m.to),
                e(&m.by),
                e(&when(&m.at))
            );
        }
        out += "</tbody></table>";
    }
    out += r#"</section><section class="card" aria-labelledby="hist-h"><h2 id="hist-h">Status history</h2><table><thead><tr><th>Status</th><th>By</th><th>When</th></tr></thead><tbody>"#;
    for h in &a.history {
        out += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            e(&label(&h.status)),
            e(&h.by),
            e(&when(&h.at))
        );
    }
    out += "</tbody></table></section>";
    let title = format!("Appointment {}", a.id);
    let mut res = Response::html(status, html::page(&title, &out));
    if let Some(p) = &a.patient
        && names.contains_key(p)
    {
        res = res.about_patient(p);
    }
    Ok(res)
}

#[derive(Deserialize)]
struct MoveForm {
    #[serde(default)]
    provider: String,
    date: String,
    start: String,
}

/// `POST /appointments/{id}/move`: the move form and the grid's "Move here" buttons. Moved:
/// back to the appointment's page, which shows the move; refused: the page again with why.
pub fn move_post(req: &Request, p: &Params) -> Result<Response, Error> {
    let f: MoveForm = req.form()?;
    let now = clock::now();
    let input = store::MoveInput {
        provider: Some(f.provider),
        date: f.date,
        start: f.start,
    };
    match store::reschedule(&booker(req, &now.local), &p["id"], &input) {
        Ok(moved) => {
            let mut to = format!("{HOME}appointments/{}?moved=1", moved.appointment.id);
            if moved.double_booked {
                to += "&double=1";
            }
            Ok(Response::redirect_see_other(&to))
        }
        Err(err @ (Error::Invalid(_) | Error::Conflict(_))) => {
            let msg = format!(
                r#"<p class="error" role="alert">Not moved: {}</p>"#,
                e(err.message())
            );
            render_appointment(req, &p["id"], err.status(), Some(msg))
        }
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(code: char, start: u16, end: u16) -> Slot {
        Slot { code, start, end }
    }

    #[test]
    fn rows_are_every_slot_start_and_each_column_says_what_it_holds() {
        // Dr. A: 15-minute slots 09:00–09:30; Dr. B: one 30-minute slot at 09:00 and an
        // appointment at 10:00 outside her slots.
        let a = (vec![slot(' ', 540, 555), slot(' ', 555, 570)], vec![555]);
        let b = (vec![slot('P', 540, 570)], vec![600]);
        let (rows, cells) = layout(&[a, b]);
        assert_eq!(rows, vec![540, 555, 600]);
        assert_eq!(
            cells[0],
            vec![
                Cell::Slot(540, 555, ' '),
                Cell::Slot(555, 570, ' '),
                Cell::Off
            ]
        );
        assert_eq!(
            cells[1],
            vec![Cell::Slot(540, 570, 'P'), Cell::Continues, Cell::Outside]
        );
    }

    #[test]
    fn an_empty_day_has_no_rows() {
        let (rows, cells) = layout(&[(vec![], vec![])]);
        assert!(rows.is_empty());
        assert_eq!(cells, vec![Vec::<Cell>::new()]);
    }

    #[test]
    fn dates_read_like_a_calendar() {
        let d = parse_date("d", "2026-12-02").unwrap();
        assert_eq!(long_date(d), "Wednesday 2 December 2026");
        assert_eq!(short_date(d), "Wed 2 Dec");
        assert_eq!(date_str(monday_of(d)), "2026-11-30");
        assert_eq!(date_str(add_days(d, 30)), "2027-01-01");
    }
}
