//! The set-up pages: a provider's weekly hours, day templates, slot codes, appointment types
//! and clinic holidays, as forms (the JSON API's routes, for people). Every form carries the
//! CSRF token; bad input shows the page again with the reason and what was typed, and
//! changes nothing (the checks are those of the API, in [`crate::setup`]).

use std::collections::BTreeMap;

use osler_sdk::{Error, Params, Request, Response, html};
use serde::Deserialize;

use crate::HOME;
use crate::api::may_configure;
use crate::model::*;
use crate::setup;
use crate::store;

fn e(s: &str) -> String {
    html::escape(s)
}

const PAGES: [(&str, &str); 5] = [
    ("hours", "Hours"),
    ("templates", "Templates"),
    ("codes", "Slot codes"),
    ("types", "Appointment types"),
    ("holidays", "Holidays"),
];

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A set-up page in its frame: the sub-navigation, a message, the body.
fn page(
    req: &Request,
    active: &str,
    status: u16,
    message: &str,
    body: &str,
) -> Result<Response, Error> {
    let mut out = String::from(
        r#"<style>.subnav{display:flex;gap:1rem;flex-wrap:wrap;margin:0 0 1rem;padding:0;list-style:none}.subnav [aria-current]{font-weight:700;color:var(--ink);text-decoration:none}
.inline{display:inline;margin:0}.inline button{margin:0}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:0 1rem}
td input{height:2.1rem}</style>"#,
    );
    out += &format!(
        r#"<p class="noprint"><a href="{HOME}">Back to the schedule</a></p><ul class="subnav">"#
    );
    let title = PAGES
        .iter()
        .find(|(k, _)| *k == active)
        .map(|(_, t)| *t)
        .unwrap_or("Set-up");
    for (k, t) in PAGES {
        out += &format!(
            r#"<li><a href="{HOME}setup/{k}"{}>{t}</a></li>"#,
            if k == active {
                r#" aria-current="page""#
            } else {
                ""
            }
        );
    }
    out += "</ul>";
    out += message;
    if may_configure(req).is_err() {
        out += r#"<p class="muted">Changing the set-up is for reception, physicians and administrators; you can read it.</p>"#;
    }
    out += body;
    Ok(Response::html(
        status,
        html::page(&format!("Schedule set-up · {title}"), &out),
    ))
}

fn refused(err: &Error) -> String {
    format!(
        r#"<p class="error" role="alert">Nothing was saved: {}</p>"#,
        e(err.message())
    )
}

fn saved(what: &str) -> String {
    format!(r#"<p class="notice" role="status">{}</p>"#, e(what))
}

/// After a change: the page again (a GET), saying what was saved.
fn done(page: &str, query: &[(&str, &str)]) -> Response {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        q.append_pair(k, v);
    }
    Response::redirect_see_other(&format!("{HOME}setup/{page}?{}", q.finish()))
}

/// Bad input is shown in the page; anything else (denied, storage) is the host's error page.
fn shown(err: Error) -> Result<Error, Error> {
    match err {
        Error::Invalid(_) | Error::Conflict(_) | Error::NotFound(_) => Ok(err),
        other => Err(other),
    }
}

fn provider_select(providers: &[osler_sdk::directory::Person], current: &str) -> String {
    let mut out = String::new();
    for p in providers {
        out += &format!(
            r#"<option value="{}"{}>{}</option>"#,
            e(&p.user),
            if p.user == current { " selected" } else { "" },
            e(&p.display_name)
        );
    }
    out
}

/// The provider of `?provider=` (or of the form), else the first one.
fn chosen_provider(
    providers: &[osler_sdk::directory::Person],
    asked: Option<String>,
) -> Option<String> {
    asked
        .filter(|p| !p.is_empty())
        .or_else(|| providers.first().map(|p| p.user.clone()))
}

/// `GET /setup`: the first set-up page.
pub fn index(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::redirect_see_other(&format!("{HOME}setup/hours")))
}

// ---------------------------------------------------------------------------------------------
// Hours

/// `GET /setup/hours?provider=`.
pub fn hours(req: &Request, _: &Params) -> Result<Response, Error> {
    let msg = if req.query_param("saved").is_some() {
        saved("Hours saved.")
    } else {
        String::new()
    };
    render_hours(req, 200, &msg, req.query_param("provider"), None)
}

fn render_hours(
    req: &Request,
    status: u16,
    message: &str,
    provider: Option<String>,
    typed: Option<&[String; 7]>,
) -> Result<Response, Error> {
    let c = req.caller();
    let providers = store::providers()?;
    let Some(provider) = chosen_provider(&providers, provider) else {
        return page(
            req,
            "hours",
            status,
            message,
            r#"<p class="muted">No providers (physicians or nurses) work at this site.</p>"#,
        );
    };
    let weekly = setup::weekly(&c.site, &provider)?;
    let mut body = format!(
        r#"<form method="get" action="{HOME}setup/hours" class="card"><label for="h-who">Provider</label><select id="h-who" name="provider">{}</select><button type="submit" class="secondary">Show</button></form>"#,
        provider_select(&providers, &provider)
    );
    body += &format!(
        r#"<form method="post" action="{HOME}setup/hours" class="card" aria-label="Weekly hours">{}<input type="hidden" name="provider" value="{}"><h2>Weekly hours</h2><p class="muted">Intervals like <code>09:00-12:00, 13:00-17:00</code> on a 5-minute grid; empty: not working that day. Hours of one date can differ (the JSON API's date overrides); a holiday closes the clinic.</p><div class="grid2">"#,
        html::csrf_field(c),
        e(&provider)
    );
    for (i, day) in WEEKDAYS.iter().enumerate() {
        let value = match typed {
            Some(t) => t[i].clone(),
            None => setup::format_day_hours(
                weekly
                    .days
                    .get(&(i as u8 + 1))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            ),
        };
        body += &format!(
            r#"<div><label for="d{n}">{day}</label><input id="d{n}" name="d{n}" value="{}" placeholder="not working"></div>"#,
            e(&value),
            n = i + 1
        );
    }
    body += r#"</div><button type="submit">Save hours</button></form>"#;
    page(req, "hours", status, message, &body)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HoursForm {
    provider: String,
    d1: String,
    d2: String,
    d3: String,
    d4: String,
    d5: String,
    d6: String,
    d7: String,
}

/// `POST /setup/hours`: replaces the provider's weekly hours.
pub fn hours_post(req: &Request, _: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let f: HoursForm = req.form()?;
    let typed = [
        f.d1.clone(),
        f.d2.clone(),
        f.d3.clone(),
        f.d4.clone(),
        f.d5.clone(),
        f.d6.clone(),
        f.d7.clone(),
    ];
    let result = (|| {
        let mut days = BTreeMap::new();
        for (i, t) in typed.iter().enumerate() {
            let h = setup::parse_day_hours(WEEKDAYS[i], t)?;
            if !h.is_empty() {
                days.insert(i as u8 + 1, h);
            }
        }
        setup::set_weekly(&req.caller().site, &f.provider, &Weekly { days })
    })();
    match result {
        Ok(()) => Ok(done(
            "hours",
            &[("provider", f.provider.as_str()), ("saved", "1")],
        )),
        Err(err) => {
            let err = shown(err)?;
            render_hours(
                req,
                err.status(),
                &refused(&err),
                Some(f.provider.clone()),
                Some(&typed),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Templates

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct TemplateForm {
    provider: String,
    day: String,
    start: String,
    slots: String,
    /// With a single code in `slots`: repeat it up to this time.
    until: String,
}

impl TemplateForm {
    /// The template the form describes: `slots` as typed, or one code repeated until `until`.
    fn template(&self, codes: &BTreeMap<char, SlotCode>) -> Result<DayTemplate, Error> {
        let slots = self.slots.trim().to_string();
        let until = self.until.trim();
        if until.is_empty() {
            return Ok(DayTemplate {
                start: self.start.trim().to_string(),
                slots,
            });
        }
        let mut chars = slots.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(Error::invalid(
                "slots: to fill a day up to a time, give exactly one slot code",
            ));
        };
        let code = codes
            .get(&c)
            .ok_or_else(|| Error::invalid(format!("slots: no slot code {c:?} at this site")))?;
        Ok(DayTemplate {
            start: self.start.trim().to_string(),
            slots: fill(
                c,
                code.minutes,
                parse_hm("start", self.start.trim())?,
                parse_hm("until", until)?,
            )?,
        })
    }
}

/// One code repeated from `start` while a whole slot of `minutes` fits before `until`.
pub fn fill(code: char, minutes: u16, start: u16, until: u16) -> Result<String, Error> {
    if until <= start || minutes == 0 {
        return Err(Error::invalid("until: after the start"));
    }
    let n = (until - start) / minutes;
    if n == 0 {
        return Err(Error::invalid(format!(
            "until: not even one {minutes}-minute slot fits"
        )));
    }
    Ok(std::iter::repeat_n(code, usize::from(n)).collect())
}

/// `GET /setup/templates?provider=`.
pub fn templates(req: &Request, _: &Params) -> Result<Response, Error> {
    let msg = match req.query_param("saved").as_deref() {
        Some("deleted") => saved("Template removed."),
        Some(_) => saved("Template saved."),
        None => String::new(),
    };
    let f = TemplateForm {
        provider: req.query_param("provider").unwrap_or_default(),
        day: "mon".into(),
        start: "09:00".into(),
        ..Default::default()
    };
    render_templates(req, 200, &msg, &f)
}

fn render_templates(
    req: &Request,
    status: u16,
    message: &str,
    f: &TemplateForm,
) -> Result<Response, Error> {
    let c = req.caller();
    let providers = store::providers()?;
    let Some(provider) = chosen_provider(&providers, Some(f.provider.clone())) else {
        return page(
            req,
            "templates",
            status,
            message,
            r#"<p class="muted">No providers (physicians or nurses) work at this site.</p>"#,
        );
    };
    let codes = store::codes(&c.site)?;
    let mut body = format!(
        r#"<form method="get" action="{HOME}setup/templates" class="card"><label for="t-who">Provider</label><select id="t-who" name="provider">{}</select><button type="submit" class="secondary">Show</button></form>"#,
        provider_select(&providers, &provider)
    );
    body += r#"<section class="card"><h2>Templates by weekday</h2><p class="muted">A template lays a day out in slots: slot codes back to back from its start, each code as long as the code says. The appointment book shows these slots; without a template it shows the hours in 15-minute slots.</p><table><thead><tr><th>Day</th><th>Start</th><th>Slots</th><th>Layout</th><th></th></tr></thead><tbody>"#;
    let mut dated = Vec::new();
    for (i, key) in DAY_KEYS.iter().enumerate() {
        let t = setup::template(&c.site, &provider, key)?;
        body += &template_row(req, &provider, WEEKDAYS[i], key, t.as_ref(), &codes);
    }
    // Templates of single dates.
    for (k, t) in osler_sdk::kv::scan_all::<DayTemplate>(&store::key(
        &c.site,
        &format!("template/{provider}/"),
    ))? {
        let day = k.rsplit('/').next().unwrap_or("").to_string();
        if !DAY_KEYS.contains(&day.as_str()) {
            dated.push((day, t));
        }
    }
    for (day, t) in &dated {
        body += &template_row(req, &provider, day, day, Some(t), &codes);
    }
    body += "</tbody></table></section>";
    if may_configure(req).is_ok() {
        let mut day_opts = String::new();
        for (i, key) in DAY_KEYS.iter().enumerate() {
            day_opts += &format!(
                r#"<option value="{key}"{}>{}</option>"#,
                if f.day == *key { " selected" } else { "" },
                WEEKDAYS[i]
            );
        }
        let dated_day = if DAY_KEYS.contains(&f.day.as_str()) {
            String::new()
        } else {
            f.day.clone()
        };
        let code_help = if codes.is_empty() {
            format!(
                r#"There are no slot codes yet: <a href="{HOME}setup/codes">add one</a> first."#
            )
        } else {
            codes
                .values()
                .map(|c| {
                    format!(
                        "<code>{}</code> {} ({} min)",
                        e(&c.code),
                        e(&c.name),
                        c.minutes
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ")
        };
        body += &format!(
            r#"<form method="post" action="{HOME}setup/templates" class="card" aria-label="Set a template">{}<input type="hidden" name="provider" value="{}"><h2>Set a template</h2>
<p class="muted">Codes: {code_help}</p>
<div class="grid2"><div><label for="t-day">Weekday</label><select id="t-day" name="day">{day_opts}</select></div>
<div><label for="t-date">…or one date</label><input type="date" id="t-date" name="date" value="{}"></div>
<div><label for="t-start">Start</label><input type="time" id="t-start" name="start" step="300" required value="{}"></div>
<div><label for="t-slots">Slots (codes back to back, e.g. 1111PP)</label><input id="t-slots" name="slots" required maxlength="288" value="{}"></div>
<div><label for="t-until">…or one code repeated until</label><input type="time" id="t-until" name="until" step="300" value="{}"></div></div>
<button type="submit">Save template</button></form>"#,
            html::csrf_field(c),
            e(&provider),
            e(&dated_day),
            e(&f.start),
            e(&f.slots),
            e(&f.until),
        );
    }
    page(req, "templates", status, message, &body)
}

fn template_row(
    req: &Request,
    provider: &str,
    label: &str,
    key: &str,
    t: Option<&DayTemplate>,
    codes: &BTreeMap<char, SlotCode>,
) -> String {
    let Some(t) = t else {
        return format!(
            r#"<tr><td>{}</td><td colspan="4" class="muted">No template (15-minute slots)</td></tr>"#,
            e(label)
        );
    };
    let layout = match t.layout(codes) {
        Ok(slots) => {
            let end = slots.last().map(|s| s.end).unwrap_or(0);
            let mut kinds: BTreeMap<char, usize> = BTreeMap::new();
            for s in &slots {
                *kinds.entry(s.code).or_default() += 1;
            }
            let parts: Vec<String> = kinds
                .iter()
                .map(|(c, n)| {
                    let name = codes.get(c).map(|x| x.name.as_str()).unwrap_or("?");
                    format!("{n} × {}", e(name))
                })
                .collect();
            format!("{}–{}: {}", e(&t.start), hm(end), parts.join(", "))
        }
        Err(err) => format!(
            r#"<span class="badge red">does not lay out</span> {}"#,
            e(err.message())
        ),
    };
    let remove = if may_configure(req).is_ok() {
        format!(
            r#"<form method="post" action="{HOME}setup/templates/delete" class="inline">{}<input type="hidden" name="provider" value="{}"><input type="hidden" name="day" value="{}"><button type="submit" class="link" aria-label="Remove the template of {}">Remove</button></form>"#,
            html::csrf_field(req.caller()),
            e(provider),
            e(key),
            e(label)
        )
    } else {
        String::new()
    };
    format!(
        r#"<tr><td>{}</td><td class="num">{}</td><td><code>{}</code></td><td>{layout}</td><td>{remove}</td></tr>"#,
        e(label),
        e(&t.start),
        e(&t.slots)
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TemplatePost {
    provider: String,
    day: String,
    date: String,
    start: String,
    slots: String,
    until: String,
}

/// `POST /setup/templates`: sets the template of a weekday (or of one date).
pub fn templates_post(req: &Request, _: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let p: TemplatePost = req.form()?;
    let f = TemplateForm {
        provider: p.provider,
        day: if p.date.trim().is_empty() {
            p.day
        } else {
            p.date.trim().to_string()
        },
        start: p.start,
        slots: p.slots,
        until: p.until,
    };
    let site = &req.caller().site;
    let result = (|| {
        let t = f.template(&store::codes(site)?)?;
        setup::set_template(site, &f.provider, &f.day, &t)
    })();
    match result {
        Ok(()) => Ok(done(
            "templates",
            &[("provider", f.provider.as_str()), ("saved", "1")],
        )),
        Err(err) => {
            let err = shown(err)?;
            render_templates(req, err.status(), &refused(&err), &f)
        }
    }
}

#[derive(Deserialize)]
struct DayRef {
    provider: String,
    day: String,
}

/// `POST /setup/templates/delete`.
pub fn templates_delete(req: &Request, _: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let f: DayRef = req.form()?;
    setup::delete_template(&req.caller().site, &f.provider, &f.day)?;
    Ok(done(
        "templates",
        &[("provider", f.provider.as_str()), ("saved", "deleted")],
    ))
}

// ---------------------------------------------------------------------------------------------
// Slot codes

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    code: String,
    name: String,
    minutes: String,
    colour: String,
    limit: String,
    limit_type: String,
}

/// `GET /setup/codes`.
pub fn codes(req: &Request, _: &Params) -> Result<Response, Error> {
    let msg = match req.query_param("saved").as_deref() {
        Some("deleted") => saved("Slot code removed."),
        Some(_) => saved("Slot code saved."),
        None => String::new(),
    };
    let f = CodeForm {
        minutes: "15".into(),
        colour: "#dfe9f5".into(),
        limit_type: "warn".into(),
        ..Default::default()
    };
    render_codes(req, 200, &msg, &f)
}

fn render_codes(
    req: &Request,
    status: u16,
    message: &str,
    f: &CodeForm,
) -> Result<Response, Error> {
    let c = req.caller();
    let codes = store::codes(&c.site)?;
    let configure = may_configure(req).is_ok();
    let mut body = String::from(
        r#"<section class="card"><h2>Slot codes</h2><table><thead><tr><th>Code</th><th>Name</th><th>Minutes</th><th>Colour</th><th>Daily limit</th><th></th></tr></thead><tbody>"#,
    );
    if codes.is_empty() {
        body += r#"<tr><td colspan="6" class="muted">No slot codes yet.</td></tr>"#;
    }
    for code in codes.values() {
        let limit = match code.limit_per_day {
            Some(n) => format!(
                "{n} ({})",
                match code.limit_type {
                    LimitType::Warn => "warn",
                    LimitType::Block => "block",
                }
            ),
            None => "none".into(),
        };
        let remove = if configure {
            format!(
                r#"<form method="post" action="{HOME}setup/codes/delete" class="inline">{}<input type="hidden" name="code" value="{}"><button type="submit" class="link" aria-label="Remove slot code {}">Remove</button></form>"#,
                html::csrf_field(c),
                e(&code.code),
                e(&code.code)
            )
        } else {
            String::new()
        };
        body += &format!(
            r#"<tr><td><code>{}</code></td><td>{}</td><td class="num">{}</td><td><span class="badge" style="background:{}">{}</span></td><td>{}</td><td>{remove}</td></tr>"#,
            e(&code.code),
            e(&code.name),
            code.minutes,
            e(&code.colour),
            e(&code.colour),
            e(&limit),
        );
    }
    body += "</tbody></table></section>";
    if configure {
        body += &format!(
            r#"<form method="post" action="{HOME}setup/codes" class="card" aria-label="Add or change a slot code">{}<h2>Add or change a slot code</h2>
<div class="grid2"><div><label for="c-code">Code (one letter or digit)</label><input id="c-code" name="code" required maxlength="1" value="{}"></div>
<div><label for="c-name">Name</label><input id="c-name" name="name" required maxlength="60" value="{}"></div>
<div><label for="c-minutes">Slot length (minutes)</label><input type="number" id="c-minutes" name="minutes" min="5" max="720" step="5" required value="{}"></div>
<div><label for="c-colour">Colour</label><input type="color" id="c-colour" name="colour" value="{}"></div>
<div><label for="c-limit">Daily limit per provider (empty: none)</label><input type="number" id="c-limit" name="limit" min="0" value="{}"></div>
<div><label for="c-limit-type">When the limit is reached</label><select id="c-limit-type" name="limit_type"><option value="warn"{}>book, with a warning</option><option value="block"{}>refuse</option></select></div></div>
<button type="submit">Save slot code</button></form>"#,
            html::csrf_field(c),
            e(&f.code),
            e(&f.name),
            e(&f.minutes),
            e(&f.colour),
            e(&f.limit),
            if f.limit_type != "block" {
                " selected"
            } else {
                ""
            },
            if f.limit_type == "block" {
                " selected"
            } else {
                ""
            },
        );
    }
    page(req, "codes", status, message, &body)
}

fn number<T: std::str::FromStr>(field: &str, s: &str) -> Result<T, Error> {
    s.trim()
        .parse()
        .map_err(|_| Error::invalid(format!("{field}: {:?} is not a whole number", s.trim())))
}

/// `POST /setup/codes`: adds or replaces a slot code.
pub fn codes_post(req: &Request, _: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let f: CodeForm = req.form()?;
    let result = (|| {
        let limit_type = match f.limit_type.as_str() {
            "block" => LimitType::Block,
            "warn" | "" => LimitType::Warn,
            other => {
                return Err(Error::invalid(format!(
                    "limit_type: {other:?} is not warn or block"
                )));
            }
        };
        let code = SlotCode {
            code: f.code.trim().to_string(),
            name: f.name.trim().to_string(),
            minutes: number("minutes", &f.minutes)?,
            colour: if f.colour.trim().is_empty() {
                "#dfe9f5".into()
            } else {
                f.colour.trim().to_lowercase()
            },
            limit_per_day: match f.limit.trim() {
                "" => None,
                n => Some(number("limit", n)?),
            },
            limit_type,
        };
        setup::set_code(&req.caller().site, &code)
    })();
    match result {
        Ok(()) => Ok(done("codes", &[("saved", "1")])),
        Err(err) => {
            let err = shown(err)?;
            render_codes(req, err.status(), &refused(&err), &f)
        }
    }
}

#[derive(Deserialize)]
struct CodeRef {
    code: String,
}

/// `POST /setup/codes/delete`.
pub fn codes_delete(req: &Request, _: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let f: CodeRef = req.form()?;
    setup::delete_code(&req.caller().site, &f.code)?;
    Ok(done("codes", &[("saved", "deleted")]))
}

// ---------------------------------------------------------------------------------------------
// Appointment types

#[derive(Deserialize, Default)]
#[serde(default)]
struct TypeForm {
    name: String,
    minutes: String,
}

/// `GET /setup/types`.
pub fn types(req: &Request, _: &Params) -> Result<Response, Error> {
    let msg = if req.query_param("saved").is_some() {
        saved("Appointment type saved.")
    } else {
        String::new()
    };
    render_types(req, 200, &msg, &TypeForm::default())
}

fn render_types(
    req: &Request,
    status: u16,
    message: &str,
    f: &TypeForm,
) -> Result<Response, Error> {
    let c = req.caller();
    let types = store::types(&c.site)?;
    let mut body = String::from(
        r#"<section class="card"><h2>Appointment types</h2><p class="muted">A type gives a booking its default length.</p><table><thead><tr><th>Type</th><th>Minutes</th></tr></thead><tbody>"#,
    );
    if types.is_empty() {
        body += r#"<tr><td colspan="2" class="muted">No appointment types yet.</td></tr>"#;
    }
    for t in &types {
        body += &format!(
            r#"<tr><td>{}</td><td class="num">{}</td></tr>"#,
            e(&t.name),
            t.minutes
        );
    }
    body += "</tbody></table></section>";
    if may_configure(req).is_ok() {
        body += &format!(
            r#"<form method="post" action="{HOME}setup/types" class="card" aria-label="Add or change a type">{}<h2>Add or change a type</h2>
<div class="grid2"><div><label for="ty-name">Name</label><input id="ty-name" name="name" required maxlength="40" value="{}"></div>
<div><label for="ty-minutes">Minutes</label><input type="number" id="ty-minutes" name="minutes" min="5" max="720" step="5" required value="{}"></div></div>
<button type="submit">Save type</button></form>"#,
            html::csrf_field(c),
            e(&f.name),
            e(&f.minutes)
        );
    }
    page(req, "types", status, message, &body)
}

/// `POST /setup/types`.
pub fn types_post(req: &Request, _: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let f: TypeForm = req.form()?;
    let result = (|| {
        let minutes = number("minutes", &f.minutes)?;
        setup::set_type(&req.caller().site, &f.name, minutes)
    })();
    match result {
        Ok(_) => Ok(done("types", &[("saved", "1")])),
        Err(err) => {
            let err = shown(err)?;
            render_types(req, err.status(), &refused(&err), &f)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Holidays

#[derive(Deserialize, Default)]
#[serde(default)]
struct HolidayForm {
    date: String,
    name: String,
}

/// `GET /setup/holidays`.
pub fn holidays(req: &Request, _: &Params) -> Result<Response, Error> {
    let msg = match req.query_param("saved").as_deref() {
        Some("deleted") => saved("Holiday removed."),
        Some(_) => saved("Holiday saved."),
        None => String::new(),
    };
    render_holidays(req, 200, &msg, &HolidayForm::default())
}

fn render_holidays(
    req: &Request,
    status: u16,
    message: &str,
    f: &HolidayForm,
) -> Result<Response, Error> {
    let c = req.caller();
    let list = setup::holidays(&c.site)?;
    let configure = may_configure(req).is_ok();
    let mut body = String::from(
        r#"<section class="card"><h2>Clinic holidays</h2><p class="muted">Nothing can be booked on a holiday; the appointment book shows the day closed.</p><table><thead><tr><th>Date</th><th>Holiday</th><th></th></tr></thead><tbody>"#,
    );
    if list.is_empty() {
        body += r#"<tr><td colspan="3" class="muted">No holidays.</td></tr>"#;
    }
    for h in &list {
        let remove = if configure {
            format!(
                r#"<form method="post" action="{HOME}setup/holidays/delete" class="inline">{}<input type="hidden" name="date" value="{}"><button type="submit" class="link" aria-label="Remove the holiday of {}">Remove</button></form>"#,
                html::csrf_field(c),
                e(&h.date),
                e(&h.date)
            )
        } else {
            String::new()
        };
        body += &format!(
            r#"<tr><td class="num">{}</td><td>{}</td><td>{remove}</td></tr>"#,
            e(&h.date),
            e(&h.name)
        );
    }
    body += "</tbody></table></section>";
    if configure {
        body += &format!(
            r#"<form method="post" action="{HOME}setup/holidays" class="card" aria-label="Add a holiday">{}<h2>Add a holiday</h2>
<div class="grid2"><div><label for="ho-date">Date</label><input type="date" id="ho-date" name="date" required value="{}"></div>
<div><label for="ho-name">Name</label><input id="ho-name" name="name" required maxlength="80" value="{}"></div></div>
<button type="submit">Save holiday</button></form>"#,
            html::csrf_field(c),
            e(&f.date),
            e(&f.name)
        );
    }
    page(req, "holidays", status, message, &body)
}

/// `POST /setup/holidays`.
pub fn holidays_post(req: &Request, _: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let f: HolidayForm = req.form()?;
    match setup::set_holiday(&req.caller().site, &f.date, &f.name) {
        Ok(_) => Ok(done("holidays", &[("saved", "1")])),
        Err(err) => {
            let err = shown(err)?;
            render_holidays(req, err.status(), &refused(&err), &f)
        }
    }
}

#[derive(Deserialize)]
struct DateRef {
    date: String,
}

/// `POST /setup/holidays/delete`.
pub fn holidays_delete(req: &Request, _: &Params) -> Result<Response, Error> {
    may_configure(req)?;
    let f: DateRef = req.form()?;
    setup::delete_holiday(&req.caller().site, &f.date)?;
    Ok(done("holidays", &[("saved", "deleted")]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_code_fills_a_day_with_whole_slots() {
        assert_eq!(fill('1', 15, 9 * 60, 10 * 60).unwrap(), "1111");
        // 50 minutes hold three whole 15-minute slots.
        assert_eq!(fill('1', 15, 9 * 60, 9 * 60 + 50).unwrap(), "111");
        assert!(fill('1', 15, 9 * 60, 9 * 60 + 10).is_err());
        assert!(fill('1', 15, 10 * 60, 9 * 60).is_err());
    }
}
