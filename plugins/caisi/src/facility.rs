//! The facility role: consent, snapshots sent to the integrator, and what other facilities
//! share, read from the integrator at view time.
//!
//! Storage (patient-scoped, so the host checks and audits every access):
//! `consent/<site>/<fingerprint>` one [`Consent`] per remote facility; `version/<site>` the
//! client's snapshot counter; `event/<site>/<event id>` the version an event was given (so a
//! redelivered event sends the same version); `appt-type/<appointment id>` the type of an
//! appointment, from scheduling's events (the `appointments` interface does not carry it).

use osler_sdk::{
    Error, Event, Params, Request, Response, audit, clock, config, html, http, patient_data,
    patients,
};
use serde::Deserialize;
use serde_json::json;

use crate::bindings::osler::prescribing::record;
use crate::bindings::osler::scheduling::appointments;
use crate::model::{
    self, Allergy, Appointment, Consent, Demographics, Medication, Remote, Section, Shared,
    Snapshot,
};
use crate::{crypto, keys, protocol};

const BASE: &str = "/plugins/caisi";
/// The topic published with every consent change and "share now".
pub const CHANGED: &str = "caisi.client.changed";

/// Mental-health appointment types when the site has not set `mental-health-types`.
pub const DEFAULT_MH_TYPES: &str = "mental health,psychiatry,counselling,addictions";

fn site() -> String {
    osler_sdk::context::site()
}

fn today() -> String {
    clock::now().local.chars().take(10).collect()
}

/// The integrator's address and key, as this site's administrator set them.
fn integrator() -> Result<(String, String), Error> {
    let url = config::get_text("integrator-url").unwrap_or_default();
    let key = config::get_text("integrator-key").unwrap_or_default();
    if url.trim().is_empty() || key.trim().is_empty() {
        return Err(Error::conflict(
            "CAISI is not set up at this site (settings integrator-url and integrator-key)",
        ));
    }
    let key = crypto::parse_public(&key)
        .map_err(|m| Error::conflict(format!("the integrator-key setting: {m}")))?;
    Ok((url.trim().trim_end_matches('/').to_string(), key))
}

/// Whether this site is a facility (its integrator is set).
pub fn configured() -> bool {
    !config::get_text("integrator-url")
        .unwrap_or_default()
        .trim()
        .is_empty()
}

/// Send a signed request to the integrator and return its verified answer's body.
/// `conflict` when CAISI is not set up here, `denied` when the integrator refuses the request
/// (it records why), `internal` when it cannot be reached or answers wrongly (never
/// `unavailable`, which the plugin API keeps for "no provider of an import").
pub fn call(
    kind: &str,
    body: serde_json::Value,
    timeout_ms: u32,
) -> Result<serde_json::Value, Error> {
    let (url, integrator_key) = integrator()?;
    let seed = keys::own_seed()?;
    let me = crypto::public_hex(&seed);
    let now = clock::now().epoch_millis;
    let (id, bytes, sig) =
        protocol::seal_request(&seed, kind, &integrator_key, now, body).map_err(Error::internal)?;
    let res = http::send(&http::Outgoing {
        method: "POST".into(),
        url: format!("{url}/v1/message"),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (protocol::SIGNATURE_HEADER.into(), sig),
        ],
        body: bytes,
        timeout_ms: Some(timeout_ms),
    })
    .map_err(|e| Error::internal(format!("the CAISI integrator cannot be reached ({e})")))?;
    if res.status != 200 {
        let v: serde_json::Value = serde_json::from_slice(&res.body).unwrap_or_default();
        let why = v["error"]["message"].as_str().unwrap_or("no reason given");
        return Err(if (400..500).contains(&res.status) {
            Error::denied(format!(
                "the CAISI integrator refused the request ({}: {why})",
                res.status
            ))
        } else {
            Error::internal(format!(
                "the CAISI integrator failed ({}: {why})",
                res.status
            ))
        });
    }
    protocol::open_answer(
        &res.body,
        &integrator_key,
        &me,
        &id,
        clock::now().epoch_millis,
    )
    .map_err(Error::internal)
}

// ---------------------------------------------------------------------------------------------
// Consent

fn consent_key(fp: &str) -> String {
    format!("consent/{}/{fp}", site())
}

pub fn consents(patient: &str) -> Result<Vec<Consent>, Error> {
    Ok(
        patient_data::scan_all::<Consent>(patient, &format!("consent/{}/", site()))?
            .into_iter()
            .map(|(_, c)| c)
            .collect(),
    )
}

fn clinician(req: &Request) -> Result<(), Error> {
    let c = req.caller();
    if c.has_role("physician") || c.has_role("nurse") {
        Ok(())
    } else {
        Err(Error::denied(
            "consent to share is recorded by a physician or nurse",
        ))
    }
}

/// `YYYY-MM-DD`, a real calendar date.
pub fn valid_date(s: &str) -> bool {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
}

/// The integrator's other facilities: `(key, name)`.
fn remote_facilities() -> Result<Vec<(String, String)>, Error> {
    let ans = call("facilities", json!({}), 3000)?;
    Ok(ans["facilities"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| {
            Some((
                f["key"].as_str()?.to_string(),
                f["name"].as_str()?.to_string(),
            ))
        })
        .collect())
}

struct Decision {
    facility: String,
    given: bool,
    exclude_mental_health: bool,
    expires: Option<String>,
}

fn set_consent(req: &Request, patient: &str, d: &Decision) -> Result<Consent, Error> {
    clinician(req)?;
    patients::get(patient)?;
    let key =
        crypto::parse_public(&d.facility).map_err(|m| Error::invalid(format!("facility: {m}")))?;
    let expires = d
        .expires
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(e) = expires {
        if !valid_date(e) {
            return Err(Error::invalid("expires: a date, YYYY-MM-DD"));
        }
        if d.given && e < today().as_str() {
            return Err(Error::invalid("expires: already past"));
        }
    }
    let k = consent_key(&crypto::fingerprint(&key));
    let old: Option<Consent> = patient_data::get(patient, &k)?;
    let name = if d.given {
        remote_facilities()?
            .into_iter()
            .find(|(fk, _)| *fk == key)
            .map(|(_, n)| n)
            .ok_or_else(|| Error::invalid("facility: not a facility of this site's integrator"))?
    } else {
        old.as_ref()
            .map(|c| c.facility_name.clone())
            .ok_or_else(|| Error::not_found("no consent for that facility to revoke"))?
    };
    let consent = Consent {
        facility: key,
        facility_name: name,
        given: d.given,
        exclude_mental_health: d.exclude_mental_health,
        expires: expires.map(str::to_string),
        set_by: req.caller().user.clone(),
        set_at: clock::now().epoch_millis,
    };
    // The consent and its announcement in one batch (the outbox): the snapshot that carries
    // it to the integrator cannot be lost, and is never sent for a consent not written.
    patient_data::Batch::new(patient)
        .expect_unchanged(&k, old.as_ref())
        .put(&k, &consent)
        .publish(
            CHANGED,
            &json!({"patient": patient, "site": site(), "reason": "consent"}),
        )
        .commit()?;
    audit::record(
        if d.given {
            "consent.given"
        } else {
            "consent.revoked"
        },
        Some(patient),
        Some(
            &json!({
                "facility": consent.facility_name,
                "excludeMentalHealth": consent.exclude_mental_health,
                "expires": consent.expires,
            })
            .to_string(),
        ),
    )?;
    Ok(consent)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsentJson {
    facility: String,
    given: bool,
    #[serde(default)]
    exclude_mental_health: bool,
    #[serde(default)]
    expires: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "snake_case")]
struct ConsentForm {
    #[serde(default)]
    facility: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    exclude_mental_health: Option<String>,
    #[serde(default)]
    expires: String,
}

pub fn api_get_consent(req: &Request, p: &Params) -> Result<Response, Error> {
    clinician(req)?;
    patients::get(&p["patient"])?;
    let today = today();
    let list: Vec<_> = consents(&p["patient"])?
        .into_iter()
        .map(|c| {
            let in_force = c.in_force(&today);
            let mut v = serde_json::to_value(&c).unwrap_or_default();
            v["inForce"] = json!(in_force);
            v
        })
        .collect();
    Ok(Response::json(200, &json!({ "consents": list })))
}

pub fn api_put_consent(req: &Request, p: &Params) -> Result<Response, Error> {
    let j: ConsentJson = req.json()?;
    let c = set_consent(
        req,
        &p["patient"],
        &Decision {
            facility: j.facility,
            given: j.given,
            exclude_mental_health: j.exclude_mental_health,
            expires: j.expires,
        },
    )?;
    Ok(Response::json(200, &c))
}

fn share_now(req: &Request, patient: &str) -> Result<(), Error> {
    clinician(req)?;
    patients::get(patient)?;
    osler_sdk::events::publish(
        CHANGED,
        &json!({"patient": patient, "site": site(), "reason": "share-now"}),
    )?;
    Ok(())
}

pub fn api_share(req: &Request, p: &Params) -> Result<Response, Error> {
    share_now(req, &p["patient"])?;
    Ok(Response::json(202, &json!({"queued": true})))
}

pub fn post_share(req: &Request, p: &Params) -> Result<Response, Error> {
    share_now(req, &p["patient"])?;
    Ok(Response::redirect_see_other(&format!(
        "{BASE}/clients/{}/consent?done=shared",
        p["patient"]
    )))
}

pub fn post_consent(req: &Request, p: &Params) -> Result<Response, Error> {
    let f: ConsentForm = req.form()?;
    let given = match f.decision.as_str() {
        "give" => true,
        "revoke" => false,
        _ => return consent_page(req, &p["patient"], Some("Choose give or revoke.")),
    };
    match set_consent(
        req,
        &p["patient"],
        &Decision {
            facility: f.facility.clone(),
            given,
            exclude_mental_health: f.exclude_mental_health.is_some(),
            expires: Some(f.expires.clone()),
        },
    ) {
        Ok(_) => Ok(Response::redirect_see_other(&format!(
            "{BASE}/clients/{}/consent?done=saved",
            p["patient"]
        ))),
        Err(
            Error::Invalid(m)
            | Error::Conflict(m)
            | Error::Denied(m)
            | Error::Internal(m)
            | Error::Unavailable(m),
        ) => consent_page(req, &p["patient"], Some(&m)),
        Err(e) => Err(e),
    }
}

pub fn page_consent(req: &Request, p: &Params) -> Result<Response, Error> {
    consent_page(req, &p["patient"], None)
}

fn consent_page(req: &Request, patient: &str, error: Option<&str>) -> Result<Response, Error> {
    clinician(req)?;
    patients::get(patient)?;
    let today = today();
    let list = consents(patient)?;
    let csrf = html::csrf_field(req.caller());
    let pid = html::escape(patient);
    let mut rows = String::new();
    for c in &list {
        let state = if c.in_force(&today) {
            "in force"
        } else if c.given {
            "expired"
        } else {
            "revoked"
        };
        let revoke = if c.given {
            format!(
                "<form method=\"post\" action=\"{BASE}/clients/{pid}/consent\">{csrf}\
                 <input type=\"hidden\" name=\"facility\" value=\"{}\">\
                 <input type=\"hidden\" name=\"decision\" value=\"revoke\">\
                 <button class=\"danger\" type=\"submit\">Revoke</button></form>",
                html::escape(&c.facility)
            )
        } else {
            String::new()
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{revoke}</td></tr>",
            html::escape(&c.facility_name),
            if c.exclude_mental_health { "excluded" } else { "shared" },
            html::escape(c.expires.as_deref().unwrap_or("none")),
            html::escape(&c.set_by),
        ));
    }
    let form = match remote_facilities() {
        Ok(facs) if !facs.is_empty() => {
            let options: String = facs
                .iter()
                .map(|(k, n)| {
                    format!(
                        "<option value=\"{}\">{}</option>",
                        html::escape(k),
                        html::escape(n)
                    )
                })
                .collect();
            format!(
                "<form method=\"post\" action=\"{BASE}/clients/{pid}/consent\" class=\"card\">{csrf}\
                 <h2>Record consent</h2>\
                 <label for=\"facility\">Share with</label><select id=\"facility\" name=\"facility\">{options}</select>\
                 <fieldset><legend>The client</legend>\
                 <label><input type=\"radio\" name=\"decision\" value=\"give\" checked> gives consent</label>\
                 <label><input type=\"radio\" name=\"decision\" value=\"revoke\"> revokes consent</label></fieldset>\
                 <label><input type=\"checkbox\" name=\"exclude_mental_health\" value=\"on\"> Leave out mental-health information</label>\
                 <label for=\"expires\">In force until (optional, last day)</label>\
                 <input id=\"expires\" name=\"expires\" type=\"date\">\
                 <button type=\"submit\">Save</button></form>"
            )
        }
        Ok(_) => "<p class=\"muted\">The integrator lists no other facility yet.</p>".into(),
        Err(e) => format!(
            "<p class=\"warning\" role=\"alert\">{}</p>",
            html::escape(e.message())
        ),
    };
    let notice = match req.query_param("done").as_deref() {
        Some("saved") => {
            "<p class=\"notice\" role=\"status\">Consent saved; the integrator is being updated.</p>"
        }
        Some("shared") => {
            "<p class=\"notice\" role=\"status\">This client's information is being sent to the integrator.</p>"
        }
        _ => "",
    };
    let body = format!(
        "{notice}{err}<p>Nothing about this client leaves this site without consent in force for \
         the receiving facility. Mental-health information is medications in ATC groups N05 and \
         N06 and appointments whose type is a mental-health one.</p>\
         <table><thead><tr><th>Facility</th><th>Consent</th><th>Mental health</th><th>Until</th><th>Recorded by</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table>{form}\
         <form method=\"post\" action=\"{BASE}/clients/{pid}/share\">{csrf}\
         <button class=\"secondary\" type=\"submit\">Share now</button> \
         <span class=\"muted\">sends the current demographics, medications, allergies and appointments</span></form>",
        err = error
            .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", html::escape(m)))
            .unwrap_or_default(),
    );
    Ok(Response::html(
        if error.is_some() { 400 } else { 200 },
        html::page("Consent to share (CAISI)", &body),
    )
    .about_patient(patient))
}

// ---------------------------------------------------------------------------------------------
// Snapshots

/// Handle an event about a client: prescribing's and scheduling's, and our own
/// `caisi.client.changed`. Sends the client's current consented information; an error (the
/// integrator down) makes the host deliver the event again later.
pub fn on_event(ev: &Event) -> Result<(), Error> {
    let payload: serde_json::Value = serde_json::from_str(&ev.payload)?;
    let Some(patient) = payload["patient"].as_str() else {
        return Ok(());
    };
    if !configured() {
        return Ok(());
    }
    if ev.topic.starts_with("scheduling.appointment.")
        && let (Some(appt), Some(kind)) =
            (payload["appointment"].as_str(), payload["type"].as_str())
    {
        let k = format!("appt-type/{appt}");
        if patient_data::get::<String>(patient, &k)?.as_deref() != Some(kind) {
            patient_data::put(patient, &k, kind)?;
        }
    }
    let consents = consents(patient)?;
    if consents.is_empty() {
        // Never consented to anything: nothing leaves, and there is nothing to withdraw.
        return Ok(());
    }
    let version = version_for(patient, &ev.id)?;
    let snapshot = snapshot(patient, version, &consents)?;
    call("snapshot", serde_json::to_value(&snapshot)?, 4000)?;
    Ok(())
}

/// The version an event's snapshot carries: a new one the first time, the same on redelivery.
fn version_for(patient: &str, event: &str) -> Result<u64, Error> {
    let ek = format!("event/{}/{event}", site());
    let vk = format!("version/{}", site());
    for _ in 0..5 {
        if let Some(v) = patient_data::get::<u64>(patient, &ek)? {
            return Ok(v);
        }
        let cur: Option<u64> = patient_data::get(patient, &vk)?;
        let next = cur.unwrap_or(0) + 1;
        match patient_data::Batch::new(patient)
            .expect_unchanged(&vk, cur.as_ref())
            .expect_absent(&ek)
            .put(&vk, &next)
            .put(&ek, &next)
            .commit()
        {
            Ok(()) => return Ok(next),
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(
        "the client's version kept changing; try again",
    ))
}

/// A section the person behind the change may not read (or whose plugin is not here) is left
/// out: the integrator keeps what it had.
fn readable<T>(r: Result<T, Error>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Denied(_) | Error::Unavailable(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Everything shareable about the client now, before consent filters it.
pub fn current(patient: &str) -> Result<Shared, Error> {
    let demographics = Demographics::from_fhir(&patients::get(patient)?);
    let medications = readable(record::active_medications(patient))?.map(|list| {
        list.into_iter()
            .map(|m| Medication {
                drug: m.drug,
                din: m.din,
                atc: m.atc,
                strength: m.strength,
                sig: m.sig,
                start: m.start,
            })
            .collect()
    });
    let allergies = readable(record::allergies(patient))?.map(|list| {
        list.into_iter()
            .map(|a| Allergy {
                substance: a.substance,
                reaction: a.reaction,
                severity: a.severity,
            })
            .collect()
    });
    let mh_types = config::get_text("mental-health-types")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_MH_TYPES.to_string());
    let appointments = match readable(appointments::upcoming(patient, 20))? {
        Some(list) => {
            let mut out = Vec::new();
            for a in list {
                let kind: Option<String> =
                    patient_data::get(patient, &format!("appt-type/{}", a.id))?;
                out.push(Appointment {
                    date: a.date,
                    start: a.start,
                    provider_name: a.provider_name,
                    status: a.fhir_status,
                    // Unknown type: treated as mental health (left out when asked).
                    mental_health: kind.is_none_or(|k| model::is_mental_health_type(&k, &mh_types)),
                });
            }
            Some(out)
        }
        None => None,
    };
    Ok(Shared {
        demographics: Some(demographics),
        medications,
        allergies,
        appointments,
    })
}

fn snapshot(patient: &str, version: u64, consents: &[Consent]) -> Result<Snapshot, Error> {
    let all = current(patient)?;
    let views = model::views_for(&all, consents, &today());
    Ok(Snapshot {
        client: patient.to_string(),
        version,
        matching: if views.is_empty() {
            None
        } else {
            all.demographics.clone()
        },
        views,
    })
}

// ---------------------------------------------------------------------------------------------
// What other facilities share

/// Ask the integrator, now, what other facilities share about this site's client.
pub fn remote(patient: &str, timeout_ms: u32) -> Result<Vec<Remote>, Error> {
    let ans = call("query", json!({ "client": patient }), timeout_ms)?;
    Ok(serde_json::from_value(ans["records"].clone())?)
}

fn as_of<T>(s: &Option<Section<T>>, now: i64) -> String {
    s.as_ref()
        .map(|s| {
            format!(
                " <span class=\"muted\">as of {}</span>",
                clock::ago(s.received, now)
            )
        })
        .unwrap_or_default()
}

pub fn render_shared(
    patient: &str,
    consents: &[Consent],
    remote: Result<Vec<Remote>, Error>,
    now: i64,
    today: &str,
) -> String {
    let in_force: Vec<&str> = consents
        .iter()
        .filter(|c| c.in_force(today))
        .map(|c| c.facility_name.as_str())
        .collect();
    let mut out = format!(
        "<p>Shares with: {}. <a href=\"{BASE}/clients/{}/consent\">Consent and sharing</a></p>",
        if in_force.is_empty() {
            "no facility (no consent in force)".to_string()
        } else {
            html::escape(&in_force.join(", "))
        },
        html::escape(patient)
    );
    let records = match remote {
        Ok(r) => r,
        Err(e) => {
            out.push_str(&format!(
                "<p class=\"warning\" role=\"alert\">Other facilities' information is unavailable: {}</p>",
                html::escape(e.message())
            ));
            return out;
        }
    };
    if records.is_empty() {
        out.push_str("<p class=\"muted\">No other facility shares information about this client (no confirmed link with consent in force).</p>");
        return out;
    }
    for r in records {
        out.push_str(&format!(
            "<section class=\"card\" data-facility=\"{0}\"><h3>From {0}</h3>",
            html::escape(&r.facility)
        ));
        if let Some(d) = &r.sections.demographics {
            out.push_str(&format!(
                "<p>{} · born {} · {}{}</p>",
                html::escape(&d.data.display_name()),
                html::escape(d.data.birth_date.as_deref().unwrap_or("?")),
                html::escape(d.data.city.as_deref().unwrap_or("")),
                as_of(&r.sections.demographics, now)
            ));
        }
        out.push_str(&format!(
            "<h4>Active medications{}</h4>",
            as_of(&r.sections.medications, now)
        ));
        match &r.sections.medications {
            Some(m) if !m.data.is_empty() => {
                out.push_str("<ul>");
                for m in &m.data {
                    out.push_str(&format!(
                        "<li>{} {} — {} <span class=\"muted\">since {}</span></li>",
                        html::escape(&m.drug),
                        html::escape(&m.strength),
                        html::escape(&m.sig),
                        html::escape(&m.start)
                    ));
                }
                out.push_str("</ul>");
            }
            Some(_) => out.push_str("<p class=\"muted\">none</p>"),
            None => out.push_str("<p class=\"muted\">not shared</p>"),
        }
        out.push_str(&format!(
            "<h4>Allergies{}</h4>",
            as_of(&r.sections.allergies, now)
        ));
        match &r.sections.allergies {
            Some(a) if !a.data.is_empty() => {
                out.push_str("<ul>");
                for a in &a.data {
                    out.push_str(&format!(
                        "<li>{}{}</li>",
                        html::escape(&a.substance),
                        a.reaction
                            .as_deref()
                            .map(|r| format!(" ({})", html::escape(r)))
                            .unwrap_or_default()
                    ));
                }
                out.push_str("</ul>");
            }
            Some(_) => out.push_str("<p class=\"muted\">none recorded</p>"),
            None => out.push_str("<p class=\"muted\">not shared</p>"),
        }
        out.push_str(&format!(
            "<h4>Upcoming appointments{}</h4>",
            as_of(&r.sections.appointments, now)
        ));
        match &r.sections.appointments {
            Some(a) if !a.data.is_empty() => {
                out.push_str("<ul>");
                for a in &a.data {
                    out.push_str(&format!(
                        "<li>{} {} with {}</li>",
                        html::escape(&a.date),
                        html::escape(&a.start),
                        html::escape(&a.provider_name)
                    ));
                }
                out.push_str("</ul>");
            }
            Some(_) => out.push_str("<p class=\"muted\">none</p>"),
            None => out.push_str("<p class=\"muted\">not shared</p>"),
        }
        out.push_str("</section>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sections;

    #[test]
    fn dates_are_real_calendar_dates() {
        assert!(valid_date("2026-12-31"));
        assert!(valid_date("2028-02-29"));
        assert!(!valid_date("2026-02-30"));
        assert!(!valid_date("2026-13-01"));
        assert!(!valid_date("31/12/2026"));
    }

    #[test]
    fn the_panel_says_when_the_integrator_is_unreachable_and_marks_each_source() {
        let html = render_shared(
            "p1",
            &[],
            Err(Error::internal("the CAISI integrator cannot be reached")),
            0,
            "2026-12-01",
        );
        assert!(html.contains("unavailable"), "{html}");
        assert!(html.contains("cannot be reached"));
        let r = Remote {
            facility: "Harbour <Clinic>".into(),
            sections: Sections {
                medications: Some(Section {
                    version: 1,
                    received: 0,
                    data: vec![Medication {
                        drug: "Warfarin".into(),
                        din: None,
                        atc: Some("B01AA03".into()),
                        strength: "5 mg".into(),
                        sig: "daily".into(),
                        start: "2026-11-30".into(),
                    }],
                }),
                ..Sections::default()
            },
        };
        let html = render_shared("p1", &[], Ok(vec![r]), 180_000, "2026-12-01");
        assert!(html.contains("From Harbour &lt;Clinic&gt;"));
        assert!(html.contains("Warfarin"));
        assert!(html.contains("as of 3 minutes ago"));
    }
}
