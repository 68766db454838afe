//! The integrator role: the facilities it accepts, the messages it receives, the clients it
//! keeps, and the links its staff confirm.
//!
//! Storage (kv, under `integrator/<site>/`): `fac/<fingerprint>` the registered facilities;
//! `client/<fingerprint>/<client>` each facility's client as last shared ([`ClientRecord`]);
//! `idx/<blocking key>/<fingerprint>/<client>` candidates for matching; `link/<id>` proposed,
//! confirmed and rejected links, `links-of/<fingerprint>/<client>/<id>` by client;
//! `seen/<message id>` and `seen-at/<ms>/<message id>` for replay protection.

use std::collections::BTreeSet;

use osler_sdk::{Error, Params, Request, Response, audit, clock, config, html, kv};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::matching::{self, Breakdown};
use crate::model::{self, ClientRecord, Demographics, Remote, Snapshot};
use crate::protocol::{self, Refusal, Sender};
use crate::{crypto, keys};

const BASE: &str = "/plugins/caisi";

fn prefix() -> String {
    format!("integrator/{}/", osler_sdk::context::site())
}

/// Whether this site acts as an integrator (the `integrator` setting).
pub fn enabled() -> bool {
    config::get_bool("integrator").unwrap_or(false)
}

fn require() -> Result<(), Error> {
    if enabled() {
        Ok(())
    } else {
        Err(Error::not_found(
            "this site is not a CAISI integrator (setting `integrator`)",
        ))
    }
}

/// A facility this integrator accepts messages from.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Facility {
    pub key: String,
    pub name: String,
    pub fingerprint: String,
    pub added_by: String,
    pub added_at: i64,
    #[serde(default)]
    pub removed_by: Option<String>,
    #[serde(default)]
    pub removed_at: Option<i64>,
}

fn facility(fp: &str) -> Result<Option<Facility>, Error> {
    kv::get(&format!("{}fac/{fp}", prefix()))
}

pub fn facilities() -> Result<Vec<Facility>, Error> {
    Ok(kv::scan_all::<Facility>(&format!("{}fac/", prefix()))?
        .into_iter()
        .map(|(_, f)| f)
        .collect())
}

fn sender_state(key: &str) -> Sender {
    match facility(&crypto::fingerprint(key)) {
        Ok(Some(f)) if f.key == key => {
            if f.removed_at.is_some() {
                Sender::Removed
            } else {
                Sender::Active
            }
        }
        _ => Sender::Unknown,
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

/// An inbound request (no session; the host audited its arrival). Only `POST /v1/message`.
pub fn inbound(req: &Request) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/message") => match message(req) {
            Ok(r) => r,
            Err(e) => e.into(),
        },
        (_, "/v1/message") => {
            Response::error(405, "method-not-allowed", "POST only").with_header("allow", "POST")
        }
        _ => Response::error(404, "not-found", "no such CAISI endpoint"),
    }
}

fn refuse(refusal: Refusal, sender: Option<String>) -> Result<Response, Error> {
    let detail = json!({
        "reason": refusal.code(),
        "sender": sender.unwrap_or_default(),
    });
    audit::record("message.refused", None, Some(&detail.to_string()))?;
    Ok(Response::error(
        refusal.status(),
        refusal.code(),
        &refusal.message(),
    ))
}

fn message(req: &Request) -> Result<Response, Error> {
    require()?;
    let seed = keys::own_seed()?;
    let me = crypto::public_hex(&seed);
    let now = clock::now().epoch_millis;
    let env = match protocol::check(
        &req.body,
        req.header(protocol::SIGNATURE_HEADER),
        &me,
        now,
        sender_state,
    ) {
        Ok(env) => env,
        Err((refusal, sender)) => return refuse(refusal, sender),
    };
    // Replay: the id must be new; recorded atomically, so two copies racing cannot both pass.
    let p = prefix();
    let seen = format!("{p}seen/{}", env.id);
    match kv::Batch::new()
        .expect_absent(&seen)
        .put(&seen, &env.ts)
        .put(&format!("{p}seen-at/{:013}/{}", now, env.id), &())
        .commit()
    {
        Ok(()) => {}
        Err(Error::Conflict(_)) => return refuse(Refusal::Replayed, Some(env.from.clone())),
        Err(e) => return Err(e),
    }
    forget_old_ids(now)?;
    let fp = crypto::fingerprint(&env.from);
    let body = match env.kind.as_str() {
        "snapshot" => {
            let snap: Snapshot = serde_json::from_value(env.body.clone())?;
            receive_snapshot(&fp, &snap, now)?
        }
        "query" => {
            let client = env.body["client"]
                .as_str()
                .ok_or_else(|| Error::invalid("client: missing"))?;
            answer_query(&fp, &env.from, client, now)?
        }
        "facilities" => {
            let list: Vec<_> = facilities()?
                .into_iter()
                .filter(|f| f.removed_at.is_none() && f.key != env.from)
                .map(|f| json!({"key": f.key, "name": f.name}))
                .collect();
            json!({ "facilities": list })
        }
        other => {
            return refuse(
                Refusal::Malformed(format!("unknown kind `{other}`")),
                Some(env.from.clone()),
            );
        }
    };
    let ans =
        protocol::seal_answer(&seed, &env.from, &env.id, now, body).map_err(Error::internal)?;
    Ok(Response::json(200, &ans))
}

/// Ids older than twice the allowed skew can never pass the time check again: forget them.
fn forget_old_ids(now: i64) -> Result<(), Error> {
    let p = prefix();
    let page = kv::scan::<()>(&format!("{p}seen-at/"), None, 50)?;
    let cutoff = format!("{:013}", now - 2 * protocol::MAX_SKEW_MS);
    let mut b = kv::Batch::new();
    for (key, _) in page.entries {
        let rest = &key[format!("{p}seen-at/").len()..];
        let Some((at, id)) = rest.split_once('/') else {
            continue;
        };
        if at >= cutoff.as_str() {
            break;
        }
        b = b.delete(&key).delete(&format!("{p}seen/{id}"));
    }
    if !b.is_empty() {
        b.commit()?;
    }
    Ok(())
}

fn client_key(fp: &str, client: &str) -> String {
    format!("{}client/{fp}/{client}", prefix())
}

fn check_client_id(client: &str) -> Result<(), Error> {
    if client.is_empty()
        || client.len() > 100
        || !client
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(Error::invalid(
            "client: 1-100 letters, digits, '-', '_', '.'",
        ));
    }
    Ok(())
}

/// Apply a facility's snapshot; propose links for a new or changed client.
fn receive_snapshot(fp: &str, snap: &Snapshot, now: i64) -> Result<serde_json::Value, Error> {
    check_client_id(&snap.client)?;
    let key = client_key(fp, &snap.client);
    let old: Option<ClientRecord> = kv::get(&key)?;
    let mut rec = old.clone().unwrap_or_else(|| ClientRecord {
        facility: fp.into(),
        client: snap.client.clone(),
        ..Default::default()
    });
    model::apply(&mut rec, snap, now);
    if old.as_ref() == Some(&rec) {
        return Ok(json!({"applied": false, "version": rec.version}));
    }
    let p = prefix();
    let old_keys: BTreeSet<String> = old
        .as_ref()
        .and_then(|o| o.matching.as_ref())
        .map(|m| matching::blocking_keys(&m.data).into_iter().collect())
        .unwrap_or_default();
    let mut b = kv::Batch::new().expect_unchanged(&key, old.as_ref());
    if rec.views.is_empty() {
        // No consent in force for anyone: nothing of the client stays here.
        b = b.delete(&key);
        for k in &old_keys {
            b = b.delete(&format!("{p}idx/{k}/{fp}/{}", snap.client));
        }
        for link in links_of(fp, &snap.client)? {
            if link.status == "proposed" {
                b = b
                    .delete(&format!("{p}link/{}", link.id))
                    .delete(&format!(
                        "{p}links-of/{}/{}/{}",
                        link.a.facility, link.a.client, link.id
                    ))
                    .delete(&format!(
                        "{p}links-of/{}/{}/{}",
                        link.b.facility, link.b.client, link.id
                    ));
            }
        }
        b.commit()?;
        return Ok(json!({"applied": true, "version": rec.version, "deleted": true}));
    }
    b = b.put(&key, &rec);
    if let Some(m) = rec.matching.as_ref() {
        let new_keys: BTreeSet<String> = matching::blocking_keys(&m.data).into_iter().collect();
        for k in old_keys.difference(&new_keys) {
            b = b.delete(&format!("{p}idx/{k}/{fp}/{}", snap.client));
        }
        for k in new_keys.difference(&old_keys) {
            b = b.put(&format!("{p}idx/{k}/{fp}/{}", snap.client), &());
        }
        let demographics_changed = old
            .as_ref()
            .and_then(|o| o.matching.as_ref())
            .is_none_or(|o| o.data != m.data);
        if demographics_changed {
            b = propose(b, fp, &snap.client, &m.data, &new_keys, now)?;
        }
    }
    b.commit()?;
    Ok(json!({"applied": true, "version": rec.version}))
}

/// One side of a link.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Party {
    pub facility: String,
    pub client: String,
}

/// A proposed, confirmed or rejected link between two facilities' clients.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub id: String,
    pub a: Party,
    pub b: Party,
    pub score: u32,
    pub breakdown: Breakdown,
    /// `proposed`, `confirmed` or `rejected`.
    pub status: String,
    pub proposed_at: i64,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_at: Option<i64>,
}

/// The two sides in a fixed order (by facility, then client), so a pair has one link.
fn ordered(x: &Party, y: &Party) -> (Party, Party) {
    if (&x.facility, &x.client) <= (&y.facility, &y.client) {
        (x.clone(), y.clone())
    } else {
        (y.clone(), x.clone())
    }
}

fn link_id(x: &Party, y: &Party) -> String {
    let (a, b) = ordered(x, y);
    format!("{}.{}~{}.{}", a.facility, a.client, b.facility, b.client)
}

fn links_of(fp: &str, client: &str) -> Result<Vec<Link>, Error> {
    let p = prefix();
    let mut out = Vec::new();
    for (key, ()) in kv::scan_all::<()>(&format!("{p}links-of/{fp}/{client}/"))? {
        let id = key.rsplit('/').next().unwrap_or_default();
        if let Some(l) = kv::get::<Link>(&format!("{p}link/{id}"))? {
            out.push(l);
        }
    }
    Ok(out)
}

/// Score the client against the other facilities' clients sharing a blocking key; propose a
/// link for each at or above the threshold (a decided link is left as staff decided it).
fn propose(
    mut b: kv::Batch,
    fp: &str,
    client: &str,
    d: &Demographics,
    blocking: &BTreeSet<String>,
    now: i64,
) -> Result<kv::Batch, Error> {
    let p = prefix();
    let mut candidates = BTreeSet::new();
    for k in blocking {
        // At most 100 candidates a key: a proposal is three writes, and a batch at most 1000.
        let page = kv::scan::<()>(&format!("{p}idx/{k}/"), None, 100)?;
        for (key, ()) in page.entries {
            let rest = &key[format!("{p}idx/{k}/").len()..];
            if let Some((f, c)) = rest.split_once('/')
                && f != fp
            {
                candidates.insert((f.to_string(), c.to_string()));
            }
        }
    }
    let me = Party {
        facility: fp.into(),
        client: client.into(),
    };
    for (f, c) in candidates {
        let Some(other) = kv::get::<ClientRecord>(&client_key(&f, &c))? else {
            continue;
        };
        let Some(om) = other.matching.as_ref() else {
            continue;
        };
        let breakdown = matching::score(d, &om.data);
        let score = breakdown.total();
        let them = Party {
            facility: f.clone(),
            client: c.clone(),
        };
        let id = link_id(&me, &them);
        let existing: Option<Link> = kv::get(&format!("{p}link/{id}"))?;
        match existing {
            // Staff decided: left as they decided.
            Some(l) if l.status != "proposed" => {}
            // Below the threshold (now): no proposal, and an earlier one is withdrawn.
            Some(_) if score < matching::PROPOSE_AT => {
                b = b
                    .delete(&format!("{p}link/{id}"))
                    .delete(&format!("{p}links-of/{fp}/{client}/{id}"))
                    .delete(&format!("{p}links-of/{f}/{c}/{id}"));
            }
            None if score < matching::PROPOSE_AT => {}
            _ => {
                let (first, second) = ordered(&me, &them);
                let link = Link {
                    id: id.clone(),
                    a: first,
                    b: second,
                    score,
                    breakdown,
                    status: "proposed".into(),
                    proposed_at: now,
                    decided_by: None,
                    decided_at: None,
                };
                b = b
                    .put(&format!("{p}link/{id}"), &link)
                    .put(&format!("{p}links-of/{fp}/{client}/{id}"), &())
                    .put(&format!("{p}links-of/{f}/{c}/{id}"), &());
            }
        }
    }
    Ok(b)
}

/// What facilities share with the asking facility `asker` about its client `client`, through
/// confirmed links only, and only views whose consent is in force today.
fn answer_query(fp: &str, asker: &str, client: &str, now: i64) -> Result<serde_json::Value, Error> {
    check_client_id(client)?;
    let today = clock::now().local.chars().take(10).collect::<String>();
    let names: std::collections::BTreeMap<String, String> = facilities()?
        .into_iter()
        .filter(|f| f.removed_at.is_none())
        .map(|f| (f.fingerprint.clone(), f.name))
        .collect();
    let mut records = Vec::new();
    for link in links_of(fp, client)? {
        if link.status != "confirmed" {
            continue;
        }
        let other = if link.a.facility == fp && link.a.client == client {
            &link.b
        } else {
            &link.a
        };
        let Some(name) = names.get(&other.facility) else {
            continue;
        };
        let Some(rec) = kv::get::<ClientRecord>(&client_key(&other.facility, &other.client))?
        else {
            continue;
        };
        let Some(view) = rec.views.get(asker) else {
            continue;
        };
        if view.expires.as_deref().is_some_and(|e| today.as_str() > e) {
            continue;
        }
        records.push(Remote {
            facility: name.clone(),
            sections: view.sections.clone(),
        });
    }
    Ok(json!({ "records": records, "now": now }))
}

// ---------------------------------------------------------------------------------------------
// Facilities (integrator staff)

fn staff_admin(req: &Request) -> Result<(), Error> {
    require()?;
    if req.caller().has_role("admin") {
        Ok(())
    } else {
        Err(Error::denied(
            "registering facilities is for administrators",
        ))
    }
}

#[derive(Deserialize)]
struct NewFacility {
    name: String,
    key: String,
}

fn register(req: &Request, f: &NewFacility) -> Result<Facility, Error> {
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(Error::invalid("name: 1 to 120 characters"));
    }
    let key = crypto::parse_public(&f.key).map_err(|m| Error::invalid(format!("key: {m}")))?;
    if key == crypto::public_hex(&keys::own_seed()?) {
        return Err(Error::invalid("key: that is this integrator's own key"));
    }
    let fp = crypto::fingerprint(&key);
    let k = format!("{}fac/{fp}", prefix());
    let old: Option<Facility> = kv::get(&k)?;
    if let Some(o) = &old
        && o.removed_at.is_none()
    {
        return Err(Error::conflict(format!(
            "key: already registered, as `{}`",
            o.name
        )));
    }
    let fac = Facility {
        key,
        name: name.into(),
        fingerprint: fp.clone(),
        added_by: req.caller().user.clone(),
        added_at: clock::now().epoch_millis,
        removed_by: None,
        removed_at: None,
    };
    kv::Batch::new()
        .expect_unchanged(&k, old.as_ref())
        .put(&k, &fac)
        .commit()?;
    audit::record(
        "facility.registered",
        None,
        Some(&json!({"facility": fac.name, "key": fac.key}).to_string()),
    )?;
    Ok(fac)
}

fn remove(req: &Request, fp: &str) -> Result<Facility, Error> {
    let k = format!("{}fac/{fp}", prefix());
    let Some(old) = kv::get::<Facility>(&k)? else {
        return Err(Error::not_found("no such facility"));
    };
    if old.removed_at.is_some() {
        return Ok(old);
    }
    let mut f = old.clone();
    f.removed_by = Some(req.caller().user.clone());
    f.removed_at = Some(clock::now().epoch_millis);
    kv::Batch::new().expect(&k, &old).put(&k, &f).commit()?;
    audit::record(
        "facility.removed",
        None,
        Some(&json!({"facility": f.name, "key": f.key}).to_string()),
    )?;
    Ok(f)
}

pub fn api_facilities(req: &Request, _: &Params) -> Result<Response, Error> {
    staff_admin(req)?;
    Ok(Response::json(200, &json!({ "facilities": facilities()? })))
}

pub fn api_register(req: &Request, _: &Params) -> Result<Response, Error> {
    staff_admin(req)?;
    let f: NewFacility = req.json()?;
    Ok(Response::json(201, &register(req, &f)?))
}

pub fn api_remove(req: &Request, p: &Params) -> Result<Response, Error> {
    staff_admin(req)?;
    Ok(Response::json(200, &remove(req, &p["fp"])?))
}

fn facilities_page(req: &Request, error: Option<&str>) -> Result<Response, Error> {
    let me = crypto::public_hex(&keys::own_seed()?);
    let mut rows = String::new();
    for f in facilities()? {
        let state = if f.removed_at.is_some() {
            "<span class=\"badge\">removed</span>".to_string()
        } else {
            format!(
                "<form method=\"post\" action=\"{BASE}/facilities/{fp}/remove\">{csrf}\
                 <button class=\"danger\" type=\"submit\">Remove</button></form>",
                fp = html::escape(&f.fingerprint),
                csrf = html::csrf_field(req.caller()),
            )
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            html::escape(&f.name),
            html::escape(&f.key),
            state
        ));
    }
    let body = format!(
        "{err}<section class=\"card\"><p>This integrator's public key (give it to each \
         facility's administrator as their <code>integrator-key</code>):</p>\
         <p><code id=\"integrator-key\">{me}</code></p>\
         <p class=\"muted\">Facilities set <code>integrator-url</code> to this server's address \
         followed by <code>/inbound/{site}/caisi</code>.</p></section>\
         <table><thead><tr><th>Facility</th><th>Public key</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table>\
         <form method=\"post\" action=\"{BASE}/facilities\" class=\"card\">{csrf}\
         <h2>Register a facility</h2>\
         <label for=\"name\">Name</label><input id=\"name\" name=\"name\" required maxlength=\"120\">\
         <label for=\"key\">Public key (from the facility's CAISI page)</label>\
         <input id=\"key\" name=\"key\" required maxlength=\"80\">\
         <button type=\"submit\">Register</button></form>",
        err = error
            .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", html::escape(m)))
            .unwrap_or_default(),
        site = html::escape(&req.caller().site),
        csrf = html::csrf_field(req.caller()),
    );
    Ok(Response::html(
        if error.is_some() { 400 } else { 200 },
        html::page("CAISI facilities", &body),
    ))
}

pub fn page_facilities(req: &Request, _: &Params) -> Result<Response, Error> {
    staff_admin(req)?;
    facilities_page(req, None)
}

pub fn post_facility(req: &Request, _: &Params) -> Result<Response, Error> {
    staff_admin(req)?;
    let f: NewFacility = req.form()?;
    match register(req, &f) {
        Ok(_) => Ok(Response::redirect_see_other(&format!("{BASE}/facilities"))),
        Err(Error::Invalid(m) | Error::Conflict(m)) => facilities_page(req, Some(&m)),
        Err(e) => Err(e),
    }
}

pub fn post_remove(req: &Request, p: &Params) -> Result<Response, Error> {
    staff_admin(req)?;
    remove(req, &p["fp"])?;
    Ok(Response::redirect_see_other(&format!("{BASE}/facilities")))
}

// ---------------------------------------------------------------------------------------------
// Links (integrator staff)

fn staff_linker(req: &Request) -> Result<(), Error> {
    require()?;
    let c = req.caller();
    if c.has_role("admin") || c.has_role("physician") || c.has_role("nurse") {
        Ok(())
    } else {
        Err(Error::denied("linking clients is for integrator staff"))
    }
}

/// A link with both sides' names and demographics, for staff to decide.
fn described(
    l: &Link,
    names: &std::collections::BTreeMap<String, String>,
) -> Result<serde_json::Value, Error> {
    let side = |p: &Party| -> Result<serde_json::Value, Error> {
        let rec: Option<ClientRecord> = kv::get(&client_key(&p.facility, &p.client))?;
        Ok(json!({
            "facility": names.get(&p.facility).cloned().unwrap_or_else(|| p.facility.clone()),
            "client": p.client,
            "demographics": rec.and_then(|r| r.matching.map(|m| m.data)),
        }))
    };
    Ok(json!({
        "id": l.id, "score": l.score, "breakdown": l.breakdown, "status": l.status,
        "a": side(&l.a)?, "b": side(&l.b)?,
        "decidedBy": l.decided_by,
    }))
}

fn all_links(status: Option<&str>) -> Result<Vec<serde_json::Value>, Error> {
    let names: std::collections::BTreeMap<String, String> = facilities()?
        .into_iter()
        .map(|f| (f.fingerprint.clone(), f.name))
        .collect();
    let mut out = Vec::new();
    for (_, l) in kv::scan_all::<Link>(&format!("{}link/", prefix()))? {
        if status.is_none_or(|s| s == l.status) {
            out.push(described(&l, &names)?);
        }
    }
    out.sort_by(|x, y| y["score"].as_u64().cmp(&x["score"].as_u64()));
    Ok(out)
}

fn decide(req: &Request, id: &str, confirm: bool) -> Result<Link, Error> {
    let k = format!("{}link/{id}", prefix());
    let Some(old) = kv::get::<Link>(&k)? else {
        return Err(Error::not_found("no such link"));
    };
    if old.status != "proposed" {
        return Err(Error::conflict(format!(
            "the link is already {}",
            old.status
        )));
    }
    let mut l = old.clone();
    l.status = if confirm { "confirmed" } else { "rejected" }.into();
    l.decided_by = Some(req.caller().user.clone());
    l.decided_at = Some(clock::now().epoch_millis);
    kv::Batch::new().expect(&k, &old).put(&k, &l).commit()?;
    audit::record(
        if confirm {
            "link.confirmed"
        } else {
            "link.rejected"
        },
        None,
        Some(&json!({"link": l.id, "score": l.score}).to_string()),
    )?;
    Ok(l)
}

#[derive(Deserialize)]
struct LinkQuery {
    #[serde(default)]
    status: Option<String>,
}

pub fn api_links(req: &Request, _: &Params) -> Result<Response, Error> {
    staff_linker(req)?;
    let q: LinkQuery = req.query()?;
    let links = all_links(q.status.as_deref())?;
    audit::record(
        "link.proposals.viewed",
        None,
        Some(&json!({"links": links.len(), "status": q.status}).to_string()),
    )?;
    Ok(Response::json(200, &json!({ "links": links })))
}

pub fn api_decide(req: &Request, p: &Params) -> Result<Response, Error> {
    staff_linker(req)?;
    let confirm = match &p["decision"][..] {
        "confirm" => true,
        "reject" => false,
        _ => return Err(Error::not_found("confirm or reject")),
    };
    Ok(Response::json(200, &decide(req, &p["id"], confirm)?))
}

pub fn post_decide(req: &Request, p: &Params) -> Result<Response, Error> {
    staff_linker(req)?;
    let confirm = match &p["decision"][..] {
        "confirm" => true,
        "reject" => false,
        _ => return Err(Error::not_found("confirm or reject")),
    };
    decide(req, &p["id"], confirm)?;
    Ok(Response::redirect_see_other(&format!("{BASE}/links")))
}

pub fn page_links(req: &Request, _: &Params) -> Result<Response, Error> {
    staff_linker(req)?;
    let links = all_links(None)?;
    audit::record(
        "link.proposals.viewed",
        None,
        Some(&json!({"links": links.len()}).to_string()),
    )?;
    let side = |s: &serde_json::Value| {
        let d: Option<Demographics> = serde_json::from_value(s["demographics"].clone()).ok();
        let who = d
            .map(|d| {
                format!(
                    "{}<br><span class=\"muted\">born {} · {} · {}</span>",
                    html::escape(&d.display_name()),
                    html::escape(d.birth_date.as_deref().unwrap_or("?")),
                    html::escape(d.gender.as_deref().unwrap_or("?")),
                    html::escape(d.city.as_deref().unwrap_or("?")),
                )
            })
            .unwrap_or_else(|| "<span class=\"muted\">no longer shared</span>".into());
        format!(
            "<strong>{}</strong><br>{who}",
            html::escape(s["facility"].as_str().unwrap_or_default())
        )
    };
    let mut rows = String::new();
    for l in &links {
        let breakdown: Breakdown =
            serde_json::from_value(l["breakdown"].clone()).unwrap_or_default();
        let parts: Vec<String> = breakdown
            .items()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(label, n)| format!("{label} {n}"))
            .collect();
        let id = html::escape(l["id"].as_str().unwrap_or_default());
        let actions = if l["status"] == "proposed" {
            format!(
                "<form method=\"post\" action=\"{BASE}/links/{id}/confirm\">{c}<button type=\"submit\">Confirm</button></form>\
                 <form method=\"post\" action=\"{BASE}/links/{id}/reject\">{c}<button class=\"secondary\" type=\"submit\">Reject</button></form>",
                c = html::csrf_field(req.caller())
            )
        } else {
            format!(
                "<span class=\"badge\">{}</span>",
                html::escape(l["status"].as_str().unwrap_or_default())
            )
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><strong>{}</strong><br><span class=\"muted\">{}</span></td><td>{actions}</td></tr>",
            side(&l["a"]),
            side(&l["b"]),
            l["score"],
            html::escape(&parts.join(", ")),
        ));
    }
    let body = format!(
        "<p class=\"muted\">Proposed when the score is {} or more (of 85). Only confirmed links \
         are used to share.</p>\
         <table><thead><tr><th>Client</th><th>Client</th><th>Score</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table>",
        matching::PROPOSE_AT
    );
    Ok(Response::html(200, html::page("CAISI client links", &body)))
}
