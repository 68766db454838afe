//! Multi-site care (OSCAR's CAISI) for Osler: facilities share a client's consented
//! information through an integrator, every message signed with the site's ed25519 key.
//!
//! One plugin, two roles at a site (both may be on): a **facility** (settings
//! `integrator-url`, `integrator-key`, `facility-name`) records consent per client and remote
//! facility, sends snapshots of consented information to its integrator when prescribing,
//! scheduling or consent change (events, so nothing is lost while the integrator is down), and
//! shows what linked clients' other facilities share in a chart panel, read from the integrator
//! at view time; the **integrator** (setting `integrator`) registers facilities by public key,
//! verifies every message, keeps the highest snapshot version per client, proposes links
//! between facilities' clients with a score, and answers queries through confirmed links only.
//! See the README for the message format, consent semantics and matching weights.

pub mod crypto;
pub mod facility;
pub mod integrator;
pub mod keys;
pub mod matching;
pub mod model;
pub mod protocol;

use osler_sdk::{
    Error, Event, Params, Plugin, Request, Response, Router, clock, context, html, patients,
};
use serde_json::json;

use crate::bindings::exports::osler::caisi::remote::{self, RemoteMedication};

mod bindings {
    osler_sdk::generate!({
        path: ["../../wit/v0.2.0", "wit"],
        world: "osler:caisi/caisi@0.1.0",
    });
}

const BASE: &str = "/plugins/caisi";

struct Caisi;

/// Whether the host routed an inbound request here (`/inbound/<site>/caisi/…`: no session,
/// unattended).
fn is_inbound() -> bool {
    matches!(context::current(), context::Principal::Unattended(u) if u.what == "inbound request")
}

impl Plugin for Caisi {
    fn handle(req: Request) -> Response {
        if is_inbound() {
            return integrator::inbound(&req);
        }
        Router::new()
            .get("/", home)
            .get("/api/key", api_key)
            .get("/facilities", integrator::page_facilities)
            .post("/facilities", integrator::post_facility)
            .post("/facilities/{fp}/remove", integrator::post_remove)
            .get("/api/facilities", integrator::api_facilities)
            .post("/api/facilities", integrator::api_register)
            .delete("/api/facilities/{fp}", integrator::api_remove)
            .get("/links", integrator::page_links)
            .post("/links/{id}/{decision}", integrator::post_decide)
            .get("/api/links", integrator::api_links)
            .post("/api/links/{id}/{decision}", integrator::api_decide)
            .get("/clients/{patient}/consent", facility::page_consent)
            .post("/clients/{patient}/consent", facility::post_consent)
            .post("/clients/{patient}/share", facility::post_share)
            .get("/api/clients/{patient}/consent", facility::api_get_consent)
            .put("/api/clients/{patient}/consent", facility::api_put_consent)
            .post("/api/clients/{patient}/share", facility::api_share)
            .handle(&req)
    }

    fn on_event(ev: Event) -> Result<(), Error> {
        facility::on_event(&ev)
    }

    fn render_panel(panel: &str, patient: &str) -> Result<String, Error> {
        if panel != "shared" {
            return Err(Error::not_found(format!("caisi has no panel '{panel}'")));
        }
        patients::get(patient)?;
        if !facility::configured() {
            return Ok(
                "<p class=\"muted\">Shared care (CAISI) is not set up at this site: an \
                       administrator sets its integrator-url and integrator-key.</p>"
                    .into(),
            );
        }
        let consents = facility::consents(patient)?;
        let remote = facility::remote(patient, 1000);
        let now = clock::now();
        Ok(facility::render_shared(
            patient,
            &consents,
            remote,
            now.epoch_millis,
            &now.local.chars().take(10).collect::<String>(),
        ))
    }
}

impl remote::Guest for Caisi {
    fn active_medications(patient: String) -> Result<Vec<RemoteMedication>, Error> {
        let Some(person) = context::person() else {
            return Err(Error::denied("remote medications are read for a person"));
        };
        if !(person.has_role("physician") || person.has_role("nurse")) {
            return Err(Error::denied(
                "remote medications are for physicians and nurses",
            ));
        }
        // The person's right to the patient, on the patient's audit trail.
        patients::get(&patient)?;
        if !facility::configured() {
            // Not part of a CAISI network: nothing is shared with this site.
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for r in facility::remote(&patient, 3000)? {
            let Some(meds) = r.sections.medications else {
                continue;
            };
            for m in meds.data {
                out.push(RemoteMedication {
                    facility: r.facility.clone(),
                    drug: m.drug,
                    din: m.din,
                    atc: m.atc,
                    strength: m.strength,
                    sig: m.sig,
                    start: m.start,
                    as_of: meds.received,
                });
            }
        }
        Ok(out)
    }
}

osler_sdk::export_plugin!(Caisi with_bindings bindings);

fn api_key(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(Response::json(
        200,
        &json!({
            "publicKey": keys::own_public()?,
            "facility": facility::configured(),
            "integrator": integrator::enabled(),
        }),
    ))
}

fn home(req: &Request, _: &Params) -> Result<Response, Error> {
    let key = keys::own_public()?;
    let c = req.caller();
    let mut body = format!(
        "<section class=\"card\"><h2>This site's key</h2><p>Public key of {} for CAISI (give it \
         to the integrator's administrator, who registers this facility with it):</p>\
         <p><code id=\"public-key\">{}</code></p></section>",
        html::escape(&c.site_name),
        html::escape(&key)
    );
    if facility::configured() {
        body.push_str(&format!(
            "<section class=\"card\"><h2>Facility</h2><p>This site shares consented \
             information as <strong>{}</strong> with the integrator at <code>{}</code>. Consent \
             is recorded from each client's chart (the \"Shared care (CAISI)\" panel).</p></section>",
            html::escape(&osler_sdk::config::get_text("facility-name").unwrap_or_default()),
            html::escape(&osler_sdk::config::get_text("integrator-url").unwrap_or_default()),
        ));
    } else {
        body.push_str(
            "<p class=\"muted\">Not a facility yet: an administrator sets \
             <code>integrator-url</code> and <code>integrator-key</code>.</p>",
        );
    }
    if integrator::enabled() {
        body.push_str(&format!(
            "<section class=\"card\"><h2>Integrator</h2><ul>\
             <li><a href=\"{BASE}/facilities\">Facilities</a></li>\
             <li><a href=\"{BASE}/links\">Client links</a></li></ul></section>"
        ));
    }
    Ok(Response::html(
        200,
        html::page("Shared care (CAISI)", &body),
    ))
}
