//! Prescribing's pages: find a patient, their chart (allergies, medications, prescribe,
//! renew, discontinue), and the printable prescription.

use osler_sdk::{Caller, Error, Params, Request, Response, html, patients};
use serde::Deserialize;

use crate::bindings::osler::drugref::lookup;
use crate::model::{self, Checks, Prescription};
use crate::{AllergyInput, Outcome, RxInput, checks::UNCHECKED};

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
    long_term: Option<String>,
    instructions: String,
    override_reason: String,
    prescriber: String,
}

impl RxForm {
    fn input(&self) -> Result<RxInput, Error> {
        let repeats = match self.repeats.trim() {
            "" => 0,
            r => r
                .parse()
                .map_err(|_| Error::invalid("repeats: a whole number"))?,
        };
        Ok(RxInput {
            din: self.din.clone(),
            drug_name: self.drug_name.clone(),
            atc: self.atc.clone(),
            ingredients: vec![],
            strength: self.strength.clone(),
            sig: self.sig.clone(),
            quantity: self.quantity.clone(),
            repeats,
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
            out += &format!(
                r#"<li{}><strong>{} {}</strong>{}: {}</li>"#,
                if w.blocking { r#" class="error""# } else { "" },
                e(&w.severity.to_uppercase()),
                e(&w.kind),
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

fn drug_label(rx: &Prescription) -> String {
    let mut s = e(&rx.drug.name);
    if rx.drug.custom {
        s += r#" <span class="muted">(custom drug)</span>"#;
    }
    if rx.drug.sample {
        s += r#" <strong class="muted">[sample data — DIN not verified]</strong>"#;
    }
    if rx.checks.status == "unchecked" {
        s += r#" <strong class="error">NOT CHECKED</strong>"#;
    }
    s
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
        r#"<p class="muted">Born {} · <a href="{base}/print">Print active prescriptions</a></p>"#,
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
        body += "<table><tr><th>Substance</th><th>Recorded as</th><th>Reaction</th><th>Severity</th><th>Onset</th><th>Status</th></tr>";
        for a in &allergies {
            let choices: String = model::ALLERGY_STATUSES
                .iter()
                .map(|s| {
                    let selected = if *s == a.status { " selected" } else { "" };
                    format!(r#"<option value="{s}"{selected}>{s}</option>"#)
                })
                .collect();
            body += &format!(
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><form method="post" action="{base}/allergies/{}/status">{csrf}<label class="muted" for="st-{id}" style="margin:0">Status</label><select id="st-{id}" name="status">{choices}</select><button type="submit" class="link">Save</button></form></td></tr>"#,
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
<label for="a-allergen">Substance (ATC class such as J01C, ingredient, brand, or free text)</label><input id="a-allergen" name="allergen" required>
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
    for rx in &active {
        body += &format!(
            r#"<article class="card"><p><strong>{}</strong> {} — {} <span class="muted">({})</span></p><p class="muted">Qty {} · repeats {} · {}{} · {} {}</p>"#,
            drug_label(rx),
            e(&rx.strength),
            e(&rx.sig_text),
            e(&rx.directions),
            e(if rx.quantity.is_empty() {
                "—"
            } else {
                &rx.quantity
            }),
            rx.repeats,
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
<label for="p-qty">Quantity (computed from the sig when empty)</label><input id="p-qty" name="quantity" value="{}">
<label for="p-rep">Repeats</label><input id="p-rep" name="repeats" inputmode="numeric" value="{}">
<label><input type="checkbox" name="long_term" value="yes" style="width:auto"{}> long-term</label>
<label for="p-ins">Instructions</label><textarea id="p-ins" name="instructions" rows="2">{}</textarea>
<label for="p-ov">Override reason{}</label><input id="p-ov" name="override_reason" value="{}">
<button type="submit">Prescribe</button></form>"#,
        e(&f.drug_name),
        e(&f.strength),
        e(&f.sig),
        e(&f.quantity),
        e(&f.repeats),
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

/// The printable prescription: the active prescriptions written here (or those in `?rx=`).
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
            if wanted.is_empty() {
                r.status == "active" && !r.external
            } else {
                wanted.contains(&r.id)
            }
        })
        .collect();
    if list.is_empty() {
        return Err(Error::not_found("no prescription to print"));
    }
    Ok(Response::html(
        200,
        print_html(req.caller(), &p, &list, &crate::now_local()),
    )
    .about_patient(pid))
}

fn print_html(
    caller: &Caller,
    p: &serde_json::Value,
    list: &[Prescription],
    printed: &str,
) -> String {
    let card = p["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|i| i["value"].as_str())
        .unwrap_or("");
    let mut body = format!(
        r#"<section class="card"><p><strong>{}</strong> · born {}{}</p><p>{} · printed {}</p></section>"#,
        e(&crate::patient_name(p)),
        e(p["birthDate"].as_str().unwrap_or("?")),
        if card.is_empty() {
            String::new()
        } else {
            format!(" · health card {}", e(card))
        },
        e(&caller.site_name),
        e(&printed.replace('T', " ")),
    );
    for rx in list {
        body += &format!(
            r#"<section class="card"><p><strong>{}</strong> {}</p><p>Sig: {} — {}</p><p>Quantity: {} · Repeats: {}{}</p>{}<p class="muted">Prescribed by {} on {}{}</p>{}</section>"#,
            e(&rx.drug.name),
            e(&rx.strength),
            e(&rx.sig_text),
            e(&rx.directions),
            e(if rx.quantity.is_empty() {
                "as directed"
            } else {
                &rx.quantity
            }),
            rx.repeats,
            if rx.long_term { " · long-term" } else { "" },
            if rx.instructions.is_empty() {
                String::new()
            } else {
                format!("<p>{}</p>", e(&rx.instructions))
            },
            e(&rx.prescriber_name),
            e(rx.written.get(..10).unwrap_or(&rx.written)),
            match (&rx.drug.din, rx.drug.sample) {
                (Some(_), true) => " · sample data: no valid DIN".to_string(),
                (Some(din), false) => format!(" · DIN {}", e(din)),
                _ => String::new(),
            },
            if rx.checks.status == "unchecked" {
                format!(
                    r#"<p class="error"><strong>{UNCHECKED}</strong> when this was prescribed.</p>"#
                )
            } else {
                String::new()
            },
        );
    }
    body += r#"<p>Signature: ____________________________</p>"#;
    html::page("Prescription", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, Drug, Warning};

    fn caller() -> Caller {
        Caller {
            user: "drlee".into(),
            display_name: "Dr. Lee".into(),
            roles: vec!["physician".into()],
            permissions: vec!["patients.read".into()],
            site: "main".into(),
            site_name: "Main Street Clinic".into(),
            csrf_token: "tok".into(),
        }
    }

    fn rx(unchecked: bool, sample: bool) -> Prescription {
        let sig = crate::sig::parse("1 tab PO OD").unwrap();
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
            },
            strength: "5 mg".into(),
            sig_text: sig.format(),
            directions: sig.readable(),
            sig,
            quantity: "30".into(),
            repeats: 2,
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

    #[test]
    fn the_printed_prescription_says_what_was_not_checked_and_never_prints_a_sample_din() {
        let p = serde_json::json!({"name": [{"family": "Marsh", "given": ["Alex"]}], "birthDate": "1950-04-02"});
        let page = print_html(&caller(), &p, &[rx(true, true)], "2026-11-29T10:00:00");
        assert!(page.contains("Alex Marsh"));
        assert!(page.contains("Warfarin &lt;5&gt;"));
        assert!(page.contains("1 tab PO OD — Take 1 tablet by mouth once a day."));
        assert!(page.contains("Quantity: 30 · Repeats: 2"));
        assert!(page.contains(UNCHECKED));
        assert!(!page.contains("99000011"));
        let page = print_html(&caller(), &p, &[rx(false, false)], "2026-11-29T10:00:00");
        assert!(page.contains("DIN 99000011"));
        assert!(!page.contains(UNCHECKED));
    }

    #[test]
    fn blocking_warnings_say_an_override_is_needed() {
        let c = Checks {
            status: "checked".into(),
            message: "Checked: 1 warning(s).".into(),
            warnings: vec![Warning {
                kind: "interaction".into(),
                severity: "major".into(),
                with: "Ibuprofen".into(),
                message: "bleeding <risk>".into(),
                blocking: true,
            }],
            hidden: 2,
            ..Checks::default()
        };
        let html = checks_html("Warfarin", &c);
        assert!(html.contains("MAJOR interaction"));
        assert!(html.contains("override reason required"));
        assert!(html.contains("bleeding &lt;risk&gt;"));
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
