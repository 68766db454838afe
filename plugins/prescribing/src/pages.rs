//! Prescribing's pages: find a patient, their chart (allergies, medications, prescribe,
//! renew, discontinue), and the printable prescription.

use osler_sdk::{Error, Params, Request, Response, html, patients};
use serde::Deserialize;

use crate::bindings::osler::drugref::lookup;
use crate::bindings::osler::resources::lookup as resources;
use crate::model::{self, Checks, Prescription};
use crate::settings::{self, Clinic, Prescriber};
use crate::{AllergyInput, Outcome, PartFillInput, RxInput, checks::UNCHECKED};

const HOME: &str = "/plugins/prescribing";

fn e(s: &str) -> String {
    html::escape(s)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn home(req: &Request, _: &Params) -> Result<Response, Error> {
    let q = req.query_param("name").unwrap_or_default();
    let mut body = format!(
        r#"<form method="get" action="{HOME}/" class="card" role="search"><label for="name">Patient name</label><input id="name" name="name" value="{}"><button type="submit">Find</button></form>"#,
        e(&q)
    );
    if !q.trim().is_empty() {
        let page = patients::search(&patients::Search {
            name: Some(q.clone()),
            count: Some(50),
            ..Default::default()
        })?;
        if page.patients.is_empty() {
            body += r#"<p class="muted">No patient found.</p>"#;
        }
        body += "<ul>";
        for p in &page.patients {
            let id = p["id"].as_str().unwrap_or_default();
            body += &format!(
                r#"<li><a href="{HOME}/patients/{}">{}</a> <span class="muted">born {}</span></li>"#,
                enc(id),
                e(&crate::patient_name(p)),
                e(p["birthDate"].as_str().unwrap_or("?"))
            );
        }
        body += "</ul>";
    }
    Ok(Response::html(200, html::page("Prescribing", &body)))
}

/// What the prescribe form posts.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RxForm {
    din: String,
    drug_name: String,
    atc: String,
    strength: String,
    sig: String,
    quantity: String,
    repeats: String,
    repeat_interval_days: String,
    part_fill_quantity: String,
    part_fill_interval_days: String,
    form: String,
    controlled: String,
    long_term: Option<String>,
    instructions: String,
    override_reason: String,
    prescriber: String,
}

/// A whole number typed in a form field, or none when empty.
fn whole_number(field: &str, text: &str) -> Result<Option<u32>, Error> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| Error::invalid(format!("{field}: a whole number"))),
    }
}

impl RxForm {
    fn input(&self) -> Result<RxInput, Error> {
        let part_interval = whole_number("part-fill interval", &self.part_fill_interval_days)?;
        let part_fill = (!self.part_fill_quantity.trim().is_empty() || part_interval.is_some())
            .then(|| PartFillInput {
                quantity: self.part_fill_quantity.clone(),
                interval_days: part_interval.unwrap_or(0),
            });
        Ok(RxInput {
            din: self.din.clone(),
            drug_name: self.drug_name.clone(),
            atc: self.atc.clone(),
            ingredients: vec![],
            form: self.form.clone(),
            controlled: self.controlled.clone(),
            strength: self.strength.clone(),
            sig: self.sig.clone(),
            quantity: self.quantity.clone(),
            repeats: whole_number("repeats", &self.repeats)?.unwrap_or(0),
            repeat_interval_days: whole_number("repeat interval", &self.repeat_interval_days)?,
            part_fill,
            long_term: self.long_term.is_some(),
            instructions: self.instructions.clone(),
            override_reason: self.override_reason.clone(),
            prescriber: self.prescriber.clone(),
        })
    }
}

/// What to show above the chart after an action.
#[derive(Default)]
struct Notice {
    error: Option<String>,
    checks: Vec<(String, Checks)>,
    form: RxForm,
    needs_override: bool,
}

pub fn chart(req: &Request, params: &Params) -> Result<Response, Error> {
    render(req, &params["pid"], 200, Notice::default())
}

fn checks_html(drug: &str, c: &Checks) -> String {
    let mut out = String::new();
    if c.status == "unchecked" {
        out += &format!(
            r#"<p class="error" role="alert"><strong>{UNCHECKED} for {}.</strong> {}</p>"#,
            e(drug),
            e(&c.message)
        );
        return out;
    }
    out += &format!(r#"<p><strong>{}</strong>: {}</p>"#, e(drug), e(&c.message));
    if !c.warnings.is_empty() {
        out += "<ul>";
        for w in &c.warnings {
            let source = if w.source.is_empty() {
                String::new()
            } else {
                format!(
                    r#"<br><span class="muted">Source: {}, row {}</span>"#,
                    e(&w.source),
                    e(&w.source_id)
                )
            };
            let also = if w.also.is_empty() {
                String::new()
            } else {
                let items: String = w
                    .also
                    .iter()
                    .map(|a| format!("<li>{}</li>", e(a)))
                    .collect();
                format!(
                    r#"<details class="muted"><summary>{} more row(s) for this pair</summary><ul>{items}</ul></details>"#,
                    w.also.len()
                )
            };
            out += &format!(
                r#"<li{}><strong>{} {}</strong>{}{}: {}{source}{also}</li>"#,
                if w.blocking { r#" class="error""# } else { "" },
                e(&w.severity.to_uppercase()),
                e(&w.kind),
                w.risk
                    .as_deref()
                    .map(|r| format!(" ({} risk)", e(r)))
                    .unwrap_or_default(),
                if w.blocking {
                    " (override reason required)"
                } else {
                    ""
                },
                e(&w.message)
            );
        }
        out += "</ul>";
    }
    if c.hidden > 0 {
        out += &format!(
            r#"<p class="muted">{} minor interaction(s) hidden by this site's setting.</p>"#,
            c.hidden
        );
    }
    for n in &c.notices {
        out += &format!(
            r#"<p class="error" role="alert">{}</p>"#,
            e(&capitalised(n))
        );
    }
    for n in &c.not_checked {
        out += &format!(r#"<p class="muted">Not checked: {}</p>"#, e(n));
    }
    for p in &c.posts {
        out += &format!(
            r#"<p class="banner">{}: <strong>{}</strong> — {} <span class="muted">({}{})</span></p>"#,
            e(&p.kind.to_uppercase()),
            e(&p.title),
            e(&p.body),
            e(&p.author_name),
            if p.trusted { ", trusted" } else { "" }
        );
    }
    out
}

/// `s` with its first letter upper case.
fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn drug_label(rx: &Prescription) -> String {
    let mut s = e(&rx.drug.name);
    if rx.drug.custom {
        s += r#" <span class="muted">(custom drug)</span>"#;
    }
    if rx.drug.sample {
        s += r#" <strong class="muted">[sample data — DIN not verified]</strong>"#;
    }
    if let Some(words) = rx.drug.controlled_words() {
        s += &format!(
            r#" <strong>[{}]</strong>"#,
            e(words.trim_start_matches("a "))
        );
    }
    if rx.checks.status == "unchecked" {
        s += r#" <strong class="error">NOT CHECKED</strong>"#;
    }
    s
}

/// Quantity, repeats and part-fill, in words a pharmacist reads.
fn supply(rx: &Prescription) -> String {
    let quantity = if rx.quantity.is_empty() {
        "—".to_string()
    } else if rx.drug.controlled_words().is_some() {
        rx.quantity.figures_and_words()
    } else {
        rx.quantity.text()
    };
    let mut s = format!("Qty {quantity} · repeats {}", rx.repeats);
    if let Some(d) = rx.repeat_interval_days {
        s += &format!(" (at least {d} days apart)");
    }
    if let Some(p) = &rx.part_fill {
        s += &format!(
            " · dispense {} every {} days",
            p.quantity.text(),
            p.interval_days
        );
    }
    e(&s)
}

fn render(req: &Request, pid: &str, status: u16, notice: Notice) -> Result<Response, Error> {
    let caller = req.caller();
    let p = crate::patient(pid)?;
    let name = crate::patient_name(&p);
    let list = model::prescriptions(pid)?;
    let allergies = model::allergies(pid)?;
    let csrf = html::csrf_field(caller);
    let base = format!("{HOME}/patients/{}", enc(pid));
    let mut body = format!(
        r#"<p class="muted">Born {} · <a href="{base}/print">Print active prescriptions</a> · <a href="{HOME}/settings">Prescription settings</a></p>"#,
        e(p["birthDate"].as_str().unwrap_or("?"))
    );
    if let Some(err) = &notice.error {
        body += &format!(r#"<p class="error" role="alert">{}</p>"#, e(err));
    }
    if !notice.checks.is_empty() {
        body += r#"<section class="card" aria-label="Checks">"#;
        for (drug, c) in &notice.checks {
            body += &checks_html(drug, c);
        }
        body += "</section>";
    }
    if let Some(done) = req.query_param("done")
        && let Some(rx) = list.iter().find(|r| r.id == done)
    {
        body += &format!(
            r#"<section class="card" role="status"><p>Prescribed {}.</p>{}{}</section>"#,
            e(&rx.drug.name),
            checks_html(&rx.drug.name, &rx.checks),
            rx.override_reason
                .as_deref()
                .map(|r| format!("<p>Override reason: {}</p>", e(r)))
                .unwrap_or_default()
        );
    }

    // Allergies.
    body += r#"<h2>Allergies</h2>"#;
    if allergies.is_empty() {
        body += r#"<p class="muted">No allergies recorded.</p>"#;
    } else {
        let understood = crate::checks::describe(&allergies);
        body += "<table><tr><th>Substance</th><th>Recorded as</th><th>Checked as</th><th>Reaction</th><th>Severity</th><th>Onset</th><th>Status</th></tr>";
        for (a, how) in allergies.iter().zip(&understood) {
            let choices: String = model::ALLERGY_STATUSES
                .iter()
                .map(|s| {
                    let selected = if *s == a.status { " selected" } else { "" };
                    format!(r#"<option value="{s}"{selected}>{s}</option>"#)
                })
                .collect();
            let checked_as = match how["checked"].as_bool() {
                Some(true) => e(how["description"].as_str().unwrap_or("")),
                _ => format!(
                    r#"<strong class="error">NOT checked</strong>: {}"#,
                    e(how["description"].as_str().unwrap_or(""))
                ),
            };
            body += &format!(
                r#"<tr><td>{}</td><td>{}</td><td>{checked_as}</td><td>{}</td><td>{}</td><td>{}</td><td><form method="post" action="{base}/allergies/{}/status">{csrf}<label class="muted" for="st-{id}" style="margin:0">Status</label><select id="st-{id}" name="status">{choices}</select><button type="submit" class="link">Save</button></form></td></tr>"#,
                e(&a.allergen),
                e(&a.kind),
                e(&a.reaction),
                e(&a.severity),
                e(&a.onset),
                e(&a.id),
                id = e(&a.id),
            );
        }
        body += "</table>";
    }
    let opts = |values: &[&str]| -> String {
        values
            .iter()
            .map(|v| format!(r#"<option value="{v}">{v}</option>"#))
            .collect()
    };
    body += &format!(
        r#"<details class="card"><summary>Record an allergy</summary><form method="post" action="{base}/allergies">{csrf}
<label for="a-kind">Recorded as</label><select id="a-kind" name="kind">{}</select>
<label for="a-allergen">Substance: a name as you would say it (penicillin, sulfa, amoxicillin, NSAIDs), a brand, or an ATC class such as J01C</label><input id="a-allergen" name="allergen" required>
<label for="a-reaction">Reaction</label><input id="a-reaction" name="reaction">
<label for="a-severity">Severity</label><select id="a-severity" name="severity">{}</select>
<label for="a-onset">Onset</label><input id="a-onset" name="onset">
<button type="submit">Record allergy</button></form></details>"#,
        opts(&model::ALLERGEN_KINDS),
        opts(&model::SEVERITIES),
    );

    // Medications.
    let physician = caller.has_role("physician");
    body += r#"<h2>Active medications</h2>"#;
    let active: Vec<&Prescription> = list.iter().filter(|r| r.is_active()).collect();
    if active.is_empty() {
        body += r#"<p class="muted">None.</p>"#;
    }
    let mut classes = ClassResources::default();
    for rx in &active {
        body += &format!(
            r#"<article class="card"><p><strong>{}</strong> {} — {} <span class="muted">({})</span></p><p class="muted">{} · {}{} · {} {}</p>"#,
            drug_label(rx),
            e(&rx.strength),
            e(&rx.sig_text),
            e(&rx.directions),
            supply(rx),
            if rx.long_term {
                "long-term"
            } else {
                "short-term"
            },
            if rx.status == "on-hold" {
                " · ON HOLD"
            } else {
                ""
            },
            if rx.external { "prescribed by" } else { "by" },
            e(&rx.prescriber_name),
        );
        body += &classes.html(rx);
        if physician {
            body += &format!(
                r#"<form method="post" action="{base}/rx/{id}/renew">{csrf}<label for="ov-{id}">Override reason (if the checks require one)</label><input id="ov-{id}" name="override_reason"><button type="submit">Renew</button></form>
<form method="post" action="{base}/rx/{id}/discontinue">{csrf}<label for="why-{id}">Reason to discontinue</label><input id="why-{id}" name="reason" required><button type="submit">Discontinue</button></form>"#,
                id = e(&rx.id),
            );
        }
        body += "</article>";
    }
    if physician && active.iter().any(|r| r.long_term) {
        body += &format!(
            r#"<form method="post" action="{base}/renew" class="card">{csrf}<label for="ov-all">Override reason (if the checks require one)</label><input id="ov-all" name="override_reason"><button type="submit">Renew all long-term medications</button></form>"#
        );
    }

    // Prescribe.
    if physician {
        body += &prescribe_html(req, &base, &notice);
    }
    body += &format!(
        r#"<details class="card"><summary>Record a medication prescribed elsewhere</summary><form method="post" action="{base}/medications">{csrf}
<label for="x-name">Drug</label><input id="x-name" name="drug_name" required>
<label for="x-strength">Strength</label><input id="x-strength" name="strength">
<label for="x-sig">Sig</label><input id="x-sig" name="sig" required placeholder="1 tab PO OD">
<label for="x-by">Prescribed by</label><input id="x-by" name="prescriber">
<label><input type="checkbox" name="long_term" value="yes" style="width:auto"> long-term</label>
<button type="submit">Record</button></form></details>"#
    );

    // History.
    let past: Vec<&Prescription> = list.iter().filter(|r| !r.is_active()).collect();
    body += r#"<h2>Past medications</h2>"#;
    if past.is_empty() {
        body += r#"<p class="muted">None.</p>"#;
    }
    for rx in past.iter().rev() {
        let history: String = rx
            .history
            .iter()
            .map(|c| {
                format!(
                    "<li>{} · {} · {}</li>",
                    e(&c.at.replace('T', " ")),
                    e(&c.by),
                    e(&c.what)
                )
            })
            .collect();
        body += &format!(
            r#"<details class="card"><summary>{} {} — {} · <strong>{}</strong></summary><ul>{history}</ul></details>"#,
            drug_label(rx),
            e(&rx.strength),
            e(&rx.sig_text),
            e(&rx.status),
        );
    }
    Ok(
        Response::html(status, html::page(&format!("Prescribing · {name}"), &body))
            .about_patient(pid),
    )
}

/// "Resources for this drug class" beside a medication: what the clinical resources plugin
/// (`osler:resources/lookup`) lists for its ATC code, asked once per code on a page. Nothing
/// when the drug has no ATC code, or when no resources plugin is bound at the site
/// (`unavailable`): prescribing works as without it. Any other failure is said in one line.
#[derive(Default)]
struct ClassResources {
    asked: Vec<(String, Result<Vec<resources::Entry>, Error>)>,
}

impl ClassResources {
    /// How many links beside one medication.
    const SHOWN: usize = 4;

    fn html(&mut self, rx: &Prescription) -> String {
        let Some(atc) = rx.drug.atc.as_deref().and_then(crate::valid_atc) else {
            return String::new();
        };
        if !self.asked.iter().any(|(a, _)| *a == atc) {
            let found = resources::for_atc(&atc, None);
            self.asked.push((atc.clone(), found));
        }
        let Some((_, found)) = self.asked.iter().find(|(a, _)| *a == atc) else {
            return String::new();
        };
        match found {
            Err(Error::Unavailable(_)) => String::new(),
            Err(err) => format!(
                r#"<p class="muted noprint">Resources for this drug class: unavailable ({}).</p>"#,
                e(err.message())
            ),
            Ok(list) if list.is_empty() => String::new(),
            Ok(list) => {
                let links: Vec<String> = list
                    .iter()
                    .take(Self::SHOWN)
                    .map(|r| {
                        format!(
                            r#"<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>{}"#,
                            e(&r.url),
                            e(&r.title),
                            if r.audience == resources::Audience::Patient {
                                " (for patients)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect();
                format!(
                    r#"<p class="noprint resources">Resources for this drug class ({}): {}</p>"#,
                    e(&atc),
                    links.join(" · ")
                )
            }
        }
    }
}

fn prescribe_html(req: &Request, base: &str, notice: &Notice) -> String {
    let csrf = html::csrf_field(req.caller());
    let q = req.query_param("q").unwrap_or_default();
    let f = &notice.form;
    let mut out = format!(
        r#"<h2 id="prescribe">Prescribe</h2><form method="get" action="{base}#prescribe" class="card" role="search"><label for="q">Find a drug (brand or generic name)</label><input id="q" name="q" value="{}"><button type="submit">Search the drug reference</button></form>"#,
        e(&q)
    );
    let mut choices = String::new();
    if !q.trim().is_empty() {
        let query = lookup::SearchQuery {
            text: Some(q.clone()),
            atc: None,
            include_cancelled: false,
            limit: 20,
        };
        match lookup::search(&query) {
            Ok(found) if found.is_empty() => {
                choices += r#"<p class="muted">Nothing found: write the drug's name below.</p>"#
            }
            Ok(found) => {
                for p in found {
                    let ingredients: Vec<String> = p
                        .ingredients
                        .iter()
                        .map(|i| format!("{} {} {}", i.name, i.strength, i.unit))
                        .collect();
                    choices += &format!(
                        r#"<label style="font-weight:normal"><input type="radio" name="din" value="{din}" style="width:auto"{}> {} — {} ({}, {}){}</label>"#,
                        if f.din == p.din { " checked" } else { "" },
                        e(&p.brand_name),
                        e(&ingredients.join(" + ")),
                        e(&p.dosage_form),
                        e(&p.atc),
                        if p.sample {
                            " <strong class=\"muted\">[sample data — DIN not verified]</strong>"
                        } else {
                            ""
                        },
                        din = e(&p.din),
                    );
                }
            }
            Err(err) => {
                choices += &format!(
                    r#"<p class="error" role="alert">The drug reference is not available ({}). Write the drug's name: the prescription will be made, but interactions and allergies will NOT be checked.</p>"#,
                    e(err.message())
                )
            }
        }
    }
    // The drug chosen before (the form shown again for an override reason) stays chosen.
    let din = f.din.trim();
    if !din.is_empty() && !choices.contains(&format!(r#"value="{}""#, e(din))) {
        let label = match lookup::get(din) {
            Ok(Some(p)) => format!(
                "{} ({}, {}){}",
                e(&p.brand_name),
                e(&p.dosage_form),
                e(&p.atc),
                if p.sample {
                    " <strong class=\"muted\">[sample data — DIN not verified]</strong>"
                } else {
                    ""
                }
            ),
            _ => format!("DIN {}", e(din)),
        };
        choices += &format!(
            r#"<label style="font-weight:normal"><input type="radio" name="din" value="{}" style="width:auto" checked> {label}</label>"#,
            e(din)
        );
    }
    out += &format!(
        r#"<form method="post" action="{base}/prescribe" class="card">{csrf}{choices}
<label for="p-name">Or a drug by name (custom, or when the drug reference is unavailable)</label><input id="p-name" name="drug_name" value="{}">
<label for="p-strength">Strength</label><input id="p-strength" name="strength" value="{}">
<label for="p-sig">Sig (e.g. 1 tab PO BID x 10 days)</label><input id="p-sig" name="sig" required value="{}">
<label for="p-form">Dosage form (a drug by name: tablet, capsule, oral solution…)</label><input id="p-form" name="form" value="{}">
<label for="p-ctl">Controlled substance (a drug by name)</label><select id="p-ctl" name="controlled">{}</select>
<label for="p-qty">Quantity with its unit, e.g. 30 tablets (computed from the sig and the product when empty; required for controlled drugs)</label><input id="p-qty" name="quantity" value="{}">
<label for="p-rep">Repeats (none for a narcotic)</label><input id="p-rep" name="repeats" inputmode="numeric" value="{}">
<label for="p-int">Days between repeats (required for a controlled drug with repeats)</label><input id="p-int" name="repeat_interval_days" inputmode="numeric" value="{}">
<label for="p-pq">Part-fill: dispense this much at a time (e.g. 14 tablets)</label><input id="p-pq" name="part_fill_quantity" value="{}">
<label for="p-pi">Part-fill: every so many days</label><input id="p-pi" name="part_fill_interval_days" inputmode="numeric" value="{}">
<label><input type="checkbox" name="long_term" value="yes" style="width:auto"{}> long-term</label>
<label for="p-ins">Instructions</label><textarea id="p-ins" name="instructions" rows="2">{}</textarea>
<label for="p-ov">Override reason{}</label><input id="p-ov" name="override_reason" value="{}">
<button type="submit">Prescribe</button></form>"#,
        e(&f.drug_name),
        e(&f.strength),
        e(&f.sig),
        e(&f.form),
        ["", "narcotic", "controlled-drug", "targeted-substance"]
            .iter()
            .map(|c| format!(
                r#"<option value="{c}"{}>{}</option>"#,
                if f.controlled == *c { " selected" } else { "" },
                if c.is_empty() { "no" } else { c }
            ))
            .collect::<String>(),
        e(&f.quantity),
        e(&f.repeats),
        e(&f.repeat_interval_days),
        e(&f.part_fill_quantity),
        e(&f.part_fill_interval_days),
        if f.long_term.is_some() {
            " checked"
        } else {
            ""
        },
        e(&f.instructions),
        if notice.needs_override {
            " (required: see the warnings above)"
        } else {
            " (required for a major interaction or an allergy)"
        },
        e(&f.override_reason),
    );
    out
}

/// Shows the chart again with the problem, or goes back to it.
fn after(
    req: &Request,
    pid: &str,
    result: Result<Outcome, Error>,
    form: RxForm,
) -> Result<Response, Error> {
    match result {
        Ok(Outcome::Written(list)) => {
            let chart = format!("{HOME}/patients/{}", enc(pid));
            Ok(Response::redirect_see_other(&match list.first() {
                Some(rx) => format!("{chart}?done={}", enc(&rx.id)),
                None => chart,
            }))
        }
        Ok(Outcome::NeedsOverride(checks)) => render(
            req,
            pid,
            409,
            Notice {
                error: Some("A major interaction or an allergy was found: give an override reason to prescribe anyway.".into()),
                checks,
                form,
                needs_override: true,
            },
        ),
        Err(err @ (Error::Invalid(_) | Error::Conflict(_) | Error::Unavailable(_))) => render(
            req,
            pid,
            err.status(),
            Notice {
                error: Some(err.message().to_string()),
                form,
                ..Notice::default()
            },
        ),
        Err(err) => Err(err),
    }
}

pub fn prescribe_form(req: &Request, params: &Params) -> Result<Response, Error> {
    let f: RxForm = req.form()?;
    let result = f
        .input()
        .and_then(|input| crate::prescribe(req.caller(), &params["pid"], &input));
    after(req, &params["pid"], result, f)
}

pub fn external_form(req: &Request, params: &Params) -> Result<Response, Error> {
    let f: RxForm = req.form()?;
    let result = f
        .input()
        .and_then(|input| crate::record_external(req.caller(), &params["pid"], &input))
        .map(|_| Outcome::Written(vec![]));
    after(req, &params["pid"], result, RxForm::default())
}

pub fn allergy_form(req: &Request, params: &Params) -> Result<Response, Error> {
    let f: AllergyInput = req.form()?;
    let result =
        crate::add_allergy(req.caller(), &params["pid"], &f).map(|_| Outcome::Written(vec![]));
    after(req, &params["pid"], result, RxForm::default())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReasonForm {
    override_reason: String,
    reason: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StatusForm {
    status: String,
}

pub fn allergy_status_form(req: &Request, params: &Params) -> Result<Response, Error> {
    let f: StatusForm = req.form()?;
    let result = crate::allergy_status(req.caller(), &params["pid"], &params["id"], &f.status)
        .map(|_| Outcome::Written(vec![]));
    after(req, &params["pid"], result, RxForm::default())
}

pub fn renew_one_form(req: &Request, params: &Params) -> Result<Response, Error> {
    let f: ReasonForm = req.form()?;
    let ids = vec![params["id"].to_string()];
    let result = crate::renew(req.caller(), &params["pid"], Some(&ids), &f.override_reason);
    after(req, &params["pid"], result, RxForm::default())
}

pub fn renew_all_form(req: &Request, params: &Params) -> Result<Response, Error> {
    let f: ReasonForm = req.form()?;
    let result = crate::renew(req.caller(), &params["pid"], None, &f.override_reason);
    after(req, &params["pid"], result, RxForm::default())
}

pub fn discontinue_form(req: &Request, params: &Params) -> Result<Response, Error> {
    let f: ReasonForm = req.form()?;
    let result = crate::change_status(
        req.caller(),
        &params["pid"],
        &params["id"],
        "stopped",
        &f.reason,
    )
    .map(|_| Outcome::Written(vec![]));
    after(req, &params["pid"], result, RxForm::default())
}

/// The printable prescription: the active prescriptions written here (or those in `?rx=`),
/// one sheet per prescriber, with every element a Canadian pharmacist needs.
pub fn print(req: &Request, params: &Params) -> Result<Response, Error> {
    let pid = &params["pid"];
    let p = crate::patient(pid)?;
    let wanted: Vec<String> = req
        .query_param("rx")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let list: Vec<Prescription> = model::prescriptions(pid)?
        .into_iter()
        .filter(|r| {
            !r.external
                && if wanted.is_empty() {
                    r.status == "active"
                } else {
                    wanted.contains(&r.id)
                }
        })
        .collect();
    if list.is_empty() {
        return Err(Error::not_found(
            "no prescription to print (medications prescribed elsewhere are not printed here)",
        ));
    }
    let mut sheets: Vec<Sheet> = Vec::new();
    for rx in list {
        match sheets
            .iter_mut()
            .find(|s| s.prescriber == rx.prescriber && s.site == rx.site)
        {
            Some(s) => s.list.push(rx),
            None => sheets.push(Sheet {
                prescriber: rx.prescriber.clone(),
                prescriber_name: rx.prescriber_name.clone(),
                details: settings::prescriber(&rx.prescriber).ok().flatten(),
                site: rx.site.clone(),
                clinic: settings::clinic(&rx.site).ok().flatten(),
                list: vec![rx],
            }),
        }
    }
    Ok(Response::html(
        200,
        print_html(&p, &sheets, &crate::now_local(), &req.caller().site_name),
    )
    .about_patient(pid))
}

/// The prescriptions of one prescriber at one site, printed on one sheet.
pub struct Sheet {
    pub prescriber: String,
    pub prescriber_name: String,
    pub details: Option<Prescriber>,
    pub site: String,
    pub clinic: Option<Clinic>,
    pub list: Vec<Prescription>,
}

/// The patient's address, one line: `12 Rue Principale, App. 3, Ottawa ON K1P 5J9`.
fn patient_address(p: &serde_json::Value) -> Option<String> {
    let addresses = p["address"].as_array()?;
    let a = addresses
        .iter()
        .find(|a| a["use"] == "home")
        .or_else(|| addresses.first())?;
    if let Some(t) = a["text"].as_str().filter(|t| !t.trim().is_empty()) {
        return Some(t.to_string());
    }
    let mut parts: Vec<String> = a["line"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().map(str::to_string))
        .collect();
    let place: Vec<&str> = ["city", "state", "postalCode"]
        .iter()
        .filter_map(|k| a[*k].as_str())
        .collect();
    if !place.is_empty() {
        parts.push(place.join(" "));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The Ontario health card number and its version code.
fn health_card(p: &serde_json::Value) -> Option<String> {
    let id = p["identifier"].as_array()?.iter().find(|i| {
        i["system"] == "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn"
    })?;
    let number = id["value"].as_str()?;
    let version = id["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| {
            x["url"] == "http://hl7.org/fhir/ca/baseline/StructureDefinition/ext-identifierversion"
        })
        .and_then(|x| x["valueString"].as_str())
        .unwrap_or("");
    Some(format!("{number} {version}").trim().to_string())
}

/// A value, or a loud gap that says where to fill it in.
fn or_missing(value: Option<&str>, what: &str) -> String {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => e(v).replace('\n', "<br>"),
        None => format!(r#"<strong class="error">{} NOT SET</strong>"#, e(what)),
    }
}

fn print_html(p: &serde_json::Value, sheets: &[Sheet], printed: &str, site_name: &str) -> String {
    let patient = format!(
        r#"<p><strong>Patient:</strong> <span data-field="patient-name">{}</span> · <strong>Date of birth:</strong> <span data-field="patient-birth-date">{}</span> · <strong>Health card:</strong> <span data-field="patient-health-card">{}</span></p><p><strong>Address:</strong> <span data-field="patient-address">{}</span></p>"#,
        e(&crate::patient_name(p)),
        or_missing(p["birthDate"].as_str(), "date of birth"),
        or_missing(health_card(p).as_deref(), "health card"),
        or_missing(patient_address(p).as_deref(), "address"),
    );
    let mut body = String::new();
    for sheet in sheets {
        let d = sheet.details.as_ref();
        let c = sheet.clinic.as_ref();
        let mut missing = Vec::new();
        if d.is_none() {
            missing.push(format!(
                "{}'s licence number, address and phone",
                sheet.prescriber_name
            ));
        }
        if c.is_none() {
            missing.push(format!("the details of site {}", sheet.site));
        }
        if !missing.is_empty() {
            body += &format!(
                r#"<p class="error" role="alert">This prescription is incomplete: {} not set. A prescriber sets their own, the administrator the site's, on the <a href="{HOME}/settings">Prescription settings</a> page.</p>"#,
                e(&missing.join(" and "))
            );
        }
        body += r#"<section class="card">"#;
        body += &format!(
            r#"<p><strong data-field="clinic-name">{}</strong><br><span data-field="clinic-address">{}</span><br>Tel <span data-field="clinic-phone">{}</span>{}</p>"#,
            or_missing(
                c.map(|c| c.name.as_str()).or(Some(site_name)),
                "clinic name"
            ),
            or_missing(c.map(|c| c.address.as_str()), "clinic address"),
            or_missing(c.map(|c| c.phone.as_str()), "clinic phone"),
            c.filter(|c| !c.fax.is_empty())
                .map(|c| format!(" · Fax {}", e(&c.fax)))
                .unwrap_or_default(),
        );
        body += &format!(
            r#"<p><strong>Prescriber:</strong> <span data-field="prescriber-name">{}</span> · {} licence no. <span data-field="prescriber-licence">{}</span><br><span data-field="prescriber-address">{}</span><br>Tel <span data-field="prescriber-phone">{}</span>{}</p>"#,
            e(&sheet.prescriber_name),
            e(d.map_or("CPSO", |d| d.licence_body.as_str())),
            or_missing(d.map(|d| d.licence.as_str()), "licence number"),
            or_missing(d.map(|d| d.address.as_str()), "prescriber address"),
            or_missing(d.map(|d| d.phone.as_str()), "prescriber phone"),
            d.filter(|d| !d.fax.is_empty())
                .map(|d| format!(" · Fax {}", e(&d.fax)))
                .unwrap_or_default(),
        );
        body += &patient;
        for rx in &sheet.list {
            body += &rx_html(rx);
        }
        let date = sheet
            .list
            .iter()
            .map(|r| r.written.get(..10).unwrap_or(&r.written))
            .max()
            .unwrap_or("");
        body += &format!(
            r#"<p><strong>Date:</strong> <span data-field="date">{}</span></p><p style="margin-top:2.5rem">Signature: ________________________________ <span data-field="signature">{}</span></p></section>"#,
            e(date),
            e(&sheet.prescriber_name)
        );
    }
    body += &format!(
        r#"<p class="muted">Printed {}.</p>"#,
        e(&printed.replace('T', " "))
    );
    html::page("Prescription", &body)
}

fn rx_html(rx: &Prescription) -> String {
    let din = match (&rx.drug.din, rx.drug.sample, rx.drug.verified) {
        (Some(_), true, _) => "sample data — DIN not verified".to_string(),
        (Some(din), false, true) => format!("DIN {}", e(din)),
        (Some(_), false, false) => "DIN not verified".to_string(),
        (None, _, _) => "DIN not verified (drug written by name)".to_string(),
    };
    let controlled = rx.drug.controlled_words();
    let quantity = if rx.quantity.is_empty() {
        r#"<strong class="error">NOT SET</strong>"#.to_string()
    } else if controlled.is_some() {
        e(&rx.quantity.figures_and_words())
    } else {
        e(&rx.quantity.text())
    };
    let repeats = match (rx.repeats, rx.repeat_interval_days) {
        (0, _) => "none".to_string(),
        (n, Some(d)) => format!("{n}, at least {d} days apart"),
        (n, None) => n.to_string(),
    };
    let total = if controlled.is_some() {
        rx.total().figures_and_words()
    } else {
        rx.total().text()
    };
    let part = rx
        .part_fill
        .as_ref()
        .map(|p| {
            format!(
                r#"<p><strong>Part-fill:</strong> <span data-field="part-fill">dispense {} every {} days, up to {}</span></p>"#,
                e(&p.quantity.text()),
                p.interval_days,
                e(&rx.quantity.text())
            )
        })
        .unwrap_or_default();
    format!(
        r#"<div class="rx"><hr><p><strong data-field="drug">{}</strong> <span data-field="strength">{}</span> <span data-field="form">{}</span> · <span data-field="din">{din}</span>{}</p><p><strong>Directions:</strong> <span data-field="directions">{} — {}</span></p><p><strong>Quantity:</strong> <span data-field="quantity">{quantity}</span> · <strong>Repeats:</strong> <span data-field="repeats">{}</span> · <strong>Total:</strong> <span data-field="total">{}</span></p>{part}{}{}<p class="muted">Written {}</p></div>"#,
        e(&rx.drug.name),
        e(&rx.strength),
        e(&rx.drug.form),
        controlled
            .map(|c| format!(
                r#" · <strong data-field="controlled">{}</strong>"#,
                e(&c[2..].to_uppercase())
            ))
            .unwrap_or_default(),
        e(&rx.sig_text),
        e(&rx.directions),
        e(&repeats),
        e(&total),
        if rx.instructions.is_empty() {
            String::new()
        } else {
            format!("<p>{}</p>", e(&rx.instructions))
        },
        if rx.checks.status == "unchecked" {
            format!(
                r#"<p class="error"><strong>{UNCHECKED}</strong> when this was prescribed.</p>"#
            )
        } else {
            String::new()
        },
        e(rx.written.get(..10).unwrap_or(&rx.written)),
    )
}

// Settings.

pub fn settings_page(req: &Request, _: &Params) -> Result<Response, Error> {
    render_settings(req, 200, "")
}

fn render_settings(req: &Request, status: u16, message: &str) -> Result<Response, Error> {
    let caller = req.caller();
    let csrf = html::csrf_field(caller);
    let mut body = String::from(message);
    body += r#"<p class="muted">What the printed prescription says about its prescriber and the clinic. A prescriber edits their own details; the administrator edits anyone's, and the clinic's for the site they are at.</p>"#;
    let admin = caller.has_role("admin");
    let user = match req.query_param("user").filter(|u| !u.trim().is_empty()) {
        Some(u) if admin => u.trim().to_string(),
        _ => caller.user.clone(),
    };
    // An administrator who is not a prescriber picks whose details to edit first.
    let chosen = !admin || caller.has_role("physician") || user != caller.user;
    if admin && !chosen {
        body += &format!(
            r#"<form method="get" action="{HOME}/settings" class="card"><label for="s-user">Prescriber's user name</label><input id="s-user" name="user" required><button type="submit">Edit their details</button></form>"#
        );
    }
    if chosen && settings::may_edit_prescriber(caller, &user) {
        let p = settings::prescriber(&user)?.unwrap_or_default();
        if admin {
            body += &format!(
                r#"<form method="get" action="{HOME}/settings" class="card"><label for="s-user">Prescriber's user name</label><input id="s-user" name="user" value="{}"><button type="submit">Show</button></form>"#,
                e(&user)
            );
        }
        body += &format!(
            r#"<form method="post" action="{HOME}/settings/prescriber" class="card">{csrf}<h2>Prescriber: {}</h2><input type="hidden" name="user" value="{}">
<label for="s-body">Licensing body</label><input id="s-body" name="licence_body" value="{}" placeholder="CPSO">
<label for="s-lic">Licence (registration) number</label><input id="s-lic" name="licence" required value="{}">
<label for="s-addr">Practice address</label><textarea id="s-addr" name="address" rows="3" required>{}</textarea>
<label for="s-phone">Telephone</label><input id="s-phone" name="phone" required value="{}">
<label for="s-fax">Fax</label><input id="s-fax" name="fax" value="{}">
<button type="submit">Save prescriber details</button></form>"#,
            e(&user),
            e(&user),
            e(if p.licence_body.is_empty() {
                "CPSO"
            } else {
                &p.licence_body
            }),
            e(&p.licence),
            e(&p.address),
            e(&p.phone),
            e(&p.fax),
        );
    }
    let c = settings::clinic(&caller.site)?.unwrap_or_default();
    if admin {
        body += &format!(
            r#"<form method="post" action="{HOME}/settings/site" class="card">{csrf}<h2>Clinic at site {}</h2>
<label for="c-name">Clinic name</label><input id="c-name" name="name" required value="{}">
<label for="c-addr">Address</label><textarea id="c-addr" name="address" rows="3" required>{}</textarea>
<label for="c-phone">Telephone</label><input id="c-phone" name="phone" required value="{}">
<label for="c-fax">Fax</label><input id="c-fax" name="fax" value="{}">
<button type="submit">Save clinic details</button></form>"#,
            e(&caller.site_name),
            e(if c.name.is_empty() {
                &caller.site_name
            } else {
                &c.name
            }),
            e(&c.address),
            e(&c.phone),
            e(&c.fax),
        );
    } else {
        body += &format!(
            r#"<section class="card"><h2>Clinic at site {}</h2><p>{}</p><p class="muted">The administrator sets these.</p></section>"#,
            e(&caller.site_name),
            if c.name.is_empty() {
                "Not set yet.".to_string()
            } else {
                format!(
                    "{}<br>{}<br>Tel {}",
                    e(&c.name),
                    e(&c.address).replace('\n', "<br>"),
                    e(&c.phone)
                )
            }
        );
    }
    Ok(Response::html(
        status,
        html::page("Prescription settings", &body),
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PrescriberFields {
    user: String,
    licence_body: String,
    licence: String,
    address: String,
    phone: String,
    fax: String,
}

pub fn prescriber_form(req: &Request, _: &Params) -> Result<Response, Error> {
    let f: PrescriberFields = req.form()?;
    let input = Prescriber {
        licence_body: f.licence_body,
        licence: f.licence,
        address: f.address,
        phone: f.phone,
        fax: f.fax,
        ..Prescriber::default()
    };
    let user = if f.user.trim().is_empty() {
        req.caller().user.clone()
    } else {
        f.user.trim().to_string()
    };
    settings_result(
        req,
        settings::save_prescriber(req.caller(), &user, &input).map(|_| ()),
    )
}

pub fn site_form(req: &Request, _: &Params) -> Result<Response, Error> {
    let f: Clinic = req.form()?;
    settings_result(req, settings::save_clinic(req.caller(), &f).map(|_| ()))
}

fn settings_result(req: &Request, r: Result<(), Error>) -> Result<Response, Error> {
    match r {
        Ok(()) => render_settings(req, 200, r#"<p class="banner" role="status">Saved.</p>"#),
        Err(err @ (Error::Invalid(_) | Error::Denied(_) | Error::NotFound(_))) => render_settings(
            req,
            err.status(),
            &format!(r#"<p class="error" role="alert">{}</p>"#, e(err.message())),
        ),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispense::Quantity;
    use crate::model::{Change, Component, Drug, Warning};

    fn rx(unchecked: bool, sample: bool, verified: bool) -> Prescription {
        let sig = crate::sig::parse("1 tab PO daily").unwrap();
        Prescription {
            id: "1764430000000-000".into(),
            patient: "p1".into(),
            site: "main".into(),
            drug: Drug {
                din: Some("99000011".into()),
                name: "Warfarin <5>".into(),
                atc: Some("B01AA03".into()),
                ingredients: vec!["warfarin sodium".into()],
                custom: false,
                sample,
                verified,
                form: "tablet".into(),
                route: "oral".into(),
                composition: vec![Component {
                    name: "warfarin sodium".into(),
                    strength: "5".into(),
                    unit: "mg".into(),
                }],
                package: String::new(),
                controlled: String::new(),
            },
            strength: "5 mg".into(),
            sig_text: sig.format(),
            directions: sig.readable(),
            sig,
            quantity: Quantity {
                amount: "30".into(),
                unit: "tablet".into(),
            },
            quantity_computed: false,
            repeats: 2,
            repeat_interval_days: Some(30),
            part_fill: None,
            long_term: true,
            instructions: String::new(),
            status: "active".into(),
            external: false,
            prescriber: "drlee".into(),
            prescriber_name: "Dr. Lee".into(),
            written: "2026-11-29T10:00:00".into(),
            checks: Checks {
                status: if unchecked { "unchecked" } else { "checked" }.into(),
                message: "m".into(),
                ..Checks::default()
            },
            override_reason: None,
            renewed_from: None,
            reason_stopped: None,
            history: vec![Change {
                at: "2026-11-29T10:00:00".into(),
                by: "Dr. Lee".into(),
                what: "prescribed".into(),
            }],
        }
    }

    fn sheet(list: Vec<Prescription>, details: bool) -> Sheet {
        Sheet {
            prescriber: "drlee".into(),
            prescriber_name: "Dr. Lee".into(),
            details: details.then(|| Prescriber {
                licence_body: "CPSO".into(),
                licence: "012345".into(),
                address: "1 Main St\nToronto ON".into(),
                phone: "416-555-0100".into(),
                ..Prescriber::default()
            }),
            site: "main".into(),
            clinic: None,
            list,
        }
    }

    #[test]
    fn the_printed_prescription_never_prints_an_unverified_or_sample_din() {
        let p = serde_json::json!({"name": [{"family": "Marsh", "given": ["Alex"]}], "birthDate": "1950-04-02"});
        let page = print_html(
            &p,
            &[sheet(vec![rx(true, true, true)], true)],
            "2026-11-29T10:00:00",
            "Main",
        );
        assert!(page.contains("Alex Marsh"));
        assert!(page.contains("Warfarin &lt;5&gt;"));
        assert!(page.contains("1 tab PO daily — Take 1 tablet by mouth once a day."));
        assert!(page.contains("30 tablets"));
        assert!(page.contains("2, at least 30 days apart"));
        assert!(page.contains("90 tablets"), "the total");
        assert!(page.contains(UNCHECKED));
        assert!(page.contains("sample data — DIN not verified"));
        assert!(!page.contains("99000011"));
        assert!(page.contains("012345"));
        assert!(page.contains("1 Main St<br>Toronto ON"));
        assert!(
            page.contains("address NOT SET"),
            "no address on the patient"
        );
        assert!(page.contains("clinic address NOT SET"));
        let page = print_html(
            &p,
            &[sheet(vec![rx(false, false, false)], false)],
            "2026-11-29T10:00:00",
            "Main",
        );
        assert!(page.contains(">DIN not verified<"));
        assert!(!page.contains("99000011"));
        assert!(page.contains("licence number NOT SET"));
        assert!(page.contains("This prescription is incomplete"));
        let page = print_html(
            &p,
            &[sheet(vec![rx(false, false, true)], true)],
            "2026-11-29T10:00:00",
            "Main",
        );
        assert!(page.contains("DIN 99000011"));
        assert!(!page.contains(UNCHECKED));
    }

    #[test]
    fn controlled_drugs_print_their_quantity_in_words_and_figures() {
        let mut r = rx(false, false, true);
        r.drug.controlled = "narcotic".into();
        r.repeats = 0;
        r.repeat_interval_days = None;
        r.quantity = Quantity {
            amount: "60".into(),
            unit: "tablet".into(),
        };
        r.part_fill = Some(crate::model::PartFill {
            quantity: Quantity {
                amount: "15".into(),
                unit: "tablet".into(),
            },
            interval_days: 7,
        });
        let html = rx_html(&r);
        assert!(html.contains("60 (sixty) tablets"), "{html}");
        assert!(html.contains("NARCOTIC"));
        assert!(html.contains("dispense 15 tablets every 7 days, up to 60 tablets"));
        assert!(html.contains(r#"data-field="repeats">none<"#));
    }

    #[test]
    fn blocking_warnings_say_an_override_is_needed_and_name_their_source() {
        let c = Checks {
            status: "checked".into(),
            message: "Checked: 1 warning(s).".into(),
            warnings: vec![Warning {
                kind: "interaction".into(),
                severity: "major".into(),
                with: "Ibuprofen".into(),
                message: "bleeding <risk>".into(),
                blocking: true,
                source: "supplement: Osler".into(),
                source_id: "sup-1".into(),
                also: vec!["interaction table: x, row 3 (moderate): …".into()],
                risk: None,
            }],
            hidden: 2,
            ..Checks::default()
        };
        let html = checks_html("Warfarin", &c);
        assert!(html.contains("MAJOR interaction"));
        assert!(html.contains("override reason required"));
        assert!(html.contains("bleeding &lt;risk&gt;"));
        assert!(html.contains("Source: supplement: Osler, row sup-1"));
        assert!(html.contains("1 more row(s) for this pair"));
        assert!(html.contains("2 minor interaction(s) hidden"));
        let html = checks_html(
            "Warfarin",
            &Checks {
                status: "unchecked".into(),
                ..Checks::default()
            },
        );
        assert!(html.contains("NOT checked for Warfarin"));
    }
}
