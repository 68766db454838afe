//! Multi-site care (CAISI) end to end: three real `osler` processes on loopback — two
//! facilities (A and B, each with the drug reference, prescribing and caisi) and an integrator
//! (caisi with `integrator = true`) — talking only through signed messages over the host's
//! outbound HTTP and inbound routes.
//!
//! What a user would notice: keys exchanged through the admins' JSON; a facility the
//! integrator does not know is refused; the same person at A and B with different spellings
//! is proposed as a link with its score and breakdown; staff confirm it; warfarin prescribed at
//! A shows in B's chart panel (source and age) while A's sertraline (mental health, left out by
//! the consent) does not; appointments reception books at A arrive (not the counselling one)
//! without losing A's medications; B's ibuprofen gets an interaction warning from A's
//! warfarin; changes made at A while the integrator is down arrive after it restarts on the
//! same address; revoking A's consent removes A's data from B's view; a bad signature and a
//! removed facility are refused; every refusal is in the integrator's audit trail.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::prescribing::PRESCRIBING_CAPS;
use crate::support::{Api, Auth, Resp, Sandbox, Server, hcn, package, plugin_env};

const ADMIN: (&str, &str) = ("admin", "osler-demo-admin");
const DRLEE: (&str, &str) = ("drlee", "osler-demo-physician");
const RECEPTION: (&str, &str) = ("reception", "osler-demo-reception");

const WARFARIN: &str = "99000011";
const IBUPROFEN: &str = "99000031";
const LEVOTHYROXINE: &str = "99000111";
const SERTRALINE: &str = "99000131";

/// What caisi is granted at a facility, and at the integrator (whose inbound requests run
/// unattended with `kv` only).
const FACILITY_CAPS: &[&str] = &[
    "kv",
    "patients.read",
    "patient-data",
    "events.publish",
    "outbound",
];
const INTEGRATOR_CAPS: &[&str] = &["kv", "inbound"];
const SCHEDULING_CAPS: &[&str] = &["kv", "directory", "patients.read", "events.publish"];

/// How long the test waits for something to arrive before failing (never an assertion on
/// speed: it polls and stops as soon as the condition holds).
const DEADLINE: Duration = Duration::from_secs(90);

fn env() -> Vec<(&'static str, String)> {
    let mut env = plugin_env();
    // The integrator will be down for a few seconds: retries 2 s, 4 s, 8 s, 16 s cover it.
    env.push(("OSLER_PLUGINS__EVENT_RETRY_MS", "2000".into()));
    env.push(("OSLER_PLUGINS__TIMEOUT_MS", "20000".into()));
    env
}

struct Site {
    sb: Sandbox,
    server: Option<Server>,
    api: Api,
    admin: String,
    lee: String,
}

impl Site {
    async fn start() -> Site {
        let sb = Sandbox::new();
        let env = env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let server = sb.demo_with_env(1, &env);
        let api = server.api();
        let admin = api.login(ADMIN.0, ADMIN.1).await;
        let lee = api.login(DRLEE.0, DRLEE.1).await;
        Site {
            sb,
            server: Some(server),
            api,
            admin,
            lee,
        }
    }

    fn base(&self) -> String {
        self.server.as_ref().expect("running").base.clone()
    }

    async fn config(&self, values: Value) {
        self.api
            .put(
                "/api/v1/admin/plugins/caisi/sites/main/config",
                &self.admin,
                &values,
                None,
            )
            .await
            .expect(200);
    }

    async fn public_key(&self) -> String {
        let r = self
            .api
            .get("/plugins/caisi/api/key", &self.admin)
            .await
            .expect(200);
        r.json["publicKey"].as_str().expect("a key").to_string()
    }

    async fn chart(&self, patient: &str) -> String {
        self.api
            .send(
                reqwest::Method::GET,
                &format!("/patients/{patient}"),
                Auth::Cookie(&self.lee, None),
                None,
                &[("accept", "text/html")],
            )
            .await
            .expect(200)
            .text
    }

    async fn consent(&self, patient: &str, facility: &str, given: bool) -> Resp {
        self.consent_with(patient, json!({"facility": facility, "given": given}))
            .await
    }

    async fn consent_with(&self, patient: &str, body: Value) -> Resp {
        self.api
            .put(
                &format!("/plugins/caisi/api/clients/{patient}/consent"),
                &self.lee,
                &body,
                None,
            )
            .await
    }

    async fn prescribe(&self, patient: &str, body: Value) -> Resp {
        self.api
            .post(
                &format!("/plugins/prescribing/api/patients/{patient}/prescriptions"),
                &self.lee,
                &body,
            )
            .await
    }
}

/// The caisi section of a chart page (the panel's HTML), so that assertions do not match the
/// facility's own medication panel.
fn shared_panel(chart: &str) -> String {
    let start = chart
        .find(r#"data-panel="shared""#)
        .unwrap_or_else(|| panic!("no CAISI panel in the chart:\n{chart}"));
    let rest = &chart[start..];
    let end = rest[1..]
        .find("data-panel=")
        .map(|i| i + 1)
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

/// Poll `probe` until it returns `Some`, or fail after [`DEADLINE`] with `what`.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let until = Instant::now() + DEADLINE;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) if Instant::now() > until => {
                panic!("{what}: not within {DEADLINE:?}; last seen:\n{last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// A page as a browser gets it (signed in with the session cookie).
async fn html(api: &Api, path: &str, token: &str) -> String {
    api.send(
        reqwest::Method::GET,
        path,
        Auth::Cookie(token, None),
        None,
        &[("accept", "text/html")],
    )
    .await
    .expect(200)
    .text
}

fn client(family: &str, given: &str, card: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn", "value": card}],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": "male",
        "birthDate": "1968-07-21",
        "address": [{"city": "Toronto", "state": "ON"}],
    })
}

/// An installation acting as the integrator: caisi enabled with `inbound`, `kv` granted for
/// unattended use (inbound requests have nobody behind them), `integrator = true`.
async fn integrator(caisi: &std::path::Path) -> Site {
    let i = Site::start().await;
    i.api
        .install_enabled(&i.admin, caisi, "main", INTEGRATOR_CAPS)
        .await;
    i.api
        .put(
            "/api/v1/admin/plugins/caisi/sites/main/grants",
            &i.admin,
            &json!({"capabilities": INTEGRATOR_CAPS, "unattended": ["kv"]}),
            None,
        )
        .await
        .expect(200);
    i.config(json!({"integrator": true})).await;
    i
}

#[tokio::test]
async fn two_facilities_share_a_linked_clients_consented_medications_through_a_signed_integrator() {
    let (drugref, prescribing, scheduling, caisi) = (
        package("plugins/drugref"),
        package("plugins/prescribing"),
        package("plugins/scheduling"),
        package("plugins/caisi"),
    );

    // --- The integrator.
    let mut i = integrator(&caisi).await;
    let i_key = i.public_key().await;
    let i_listen = i.base().trim_start_matches("http://").to_string();
    let inbound = format!("{}/inbound/main/caisi", i.base());

    // --- Two facilities, configured by their administrators with the integrator's key.
    let mut facilities = Vec::new();
    for name in ["Harbour Street Clinic", "Eastside Shelter Health"] {
        let f = Site::start().await;
        f.api
            .install_enabled(&f.admin, &drugref, "main", &["kv"])
            .await;
        f.api
            .install_enabled(&f.admin, &prescribing, "main", PRESCRIBING_CAPS)
            .await;
        f.api
            .install_enabled(&f.admin, &scheduling, "main", SCHEDULING_CAPS)
            .await;
        f.api
            .install_enabled(&f.admin, &caisi, "main", FACILITY_CAPS)
            .await;
        f.config(json!({
            "facility-name": name,
            "integrator-url": inbound,
            "integrator-key": i_key,
        }))
        .await;
        facilities.push(f);
    }
    let (a, b) = (&facilities[0], &facilities[1]);
    let (a_key, b_key) = (a.public_key().await, b.public_key().await);
    assert_ne!(a_key, b_key);

    // The same person at both, spelled differently.
    let card = hcn(1601);
    let pa = a.api.create(&a.lee, &client("Smith", "John", &card)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pb = b.api.create(&b.lee, &client("Smyth", "Jon", &card)).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Before the integrator registers A, A's signed message is refused: unknown facility.
    let r = a.consent(&pa, &b_key, true).await.expect(403);
    assert!(
        r.text
            .contains("(403: the sender's key is not a registered facility)"),
        "{}",
        r.text
    );

    // --- The integrator's administrator registers both facilities by their public keys.
    for (name, key) in [
        ("Harbour Street Clinic", &a_key),
        ("Eastside Shelter Health", &b_key),
    ] {
        let r = i
            .api
            .post(
                "/plugins/caisi/api/facilities",
                &i.admin,
                &json!({"name": name, "key": key}),
            )
            .await
            .expect(201);
        assert_eq!(r.json["key"], key.as_str());
    }
    let bad = i
        .api
        .post(
            "/plugins/caisi/api/facilities",
            &i.admin,
            &json!({"name": "Typo", "key": "not-a-key"}),
        )
        .await
        .expect(400);
    assert!(bad.text.contains("key:"), "{}", bad.text);

    // --- Consent at both, each for the other; at A without mental-health information.
    let r = a
        .consent_with(
            &pa,
            json!({"facility": b_key, "given": true, "excludeMentalHealth": true}),
        )
        .await
        .expect(200);
    assert_eq!(r.json["facilityName"], "Eastside Shelter Health");
    b.consent(&pb, &a_key, true).await.expect(200);

    // --- The integrator proposes the link, with its score and breakdown.
    let link = eventually("a proposed link", || async {
        let r = i
            .api
            .get("/plugins/caisi/api/links?status=proposed", &i.admin)
            .await
            .expect(200);
        match r.json["links"].as_array().map(|l| l.len()) {
            Some(1) => Ok(r.json["links"][0].clone()),
            _ => Err(r.text),
        }
    })
    .await;
    // Health card 22, birth date 15, gender 5, city 3, province 2, and the names only
    // phonetically equal: Smith/Smyth 6, John/Jon 5.
    assert_eq!(link["score"], 58, "{link}");
    assert_eq!(link["breakdown"]["healthCard"], 22);
    assert_eq!(link["breakdown"]["familyName"], 6);
    assert_eq!(link["breakdown"]["givenName"], 5);
    let names: Vec<&str> = [&link["a"], &link["b"]]
        .iter()
        .map(|s| s["demographics"]["family"].as_str().unwrap_or_default())
        .collect();
    assert!(
        names.contains(&"Smith") && names.contains(&"Smyth"),
        "{link}"
    );

    // The integrator's staff see the same on their pages.
    let page = html(&i.api, "/plugins/caisi/links", &i.admin).await;
    assert!(
        page.contains("Smyth, Jon") && page.contains("Smith, John"),
        "{page}"
    );
    assert!(page.contains("<strong>58</strong>"), "{page}");
    let page = html(&i.api, "/plugins/caisi/facilities", &i.admin).await;
    assert!(
        page.contains(&i_key) && page.contains("Eastside Shelter Health"),
        "{page}"
    );

    // Before confirmation, nothing is shared with B; the panel links to the consent page,
    // whose form offers the other facility.
    let panel = shared_panel(&b.chart(&pb).await);
    assert!(panel.contains("No other facility shares"), "{panel}");
    assert!(
        panel.contains("Shares with: Harbour Street Clinic"),
        "{panel}"
    );
    let consent_page = format!("/plugins/caisi/clients/{pb}/consent");
    assert!(panel.contains(&consent_page), "{panel}");
    let page = html(&b.api, &consent_page, &b.lee).await;
    assert!(
        page.contains(&format!(
            "<option value=\"{a_key}\">Harbour Street Clinic</option>"
        )),
        "{page}"
    );
    assert!(page.contains("name=\"_csrf\""), "{page}");

    let id = link["id"].as_str().unwrap();
    let r = i
        .api
        .post(
            &format!("/plugins/caisi/api/links/{id}/confirm"),
            &i.admin,
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(r.json["status"], "confirmed");

    // --- Warfarin prescribed at A shows in B's chart, marked with A's name and its age;
    // sertraline (ATC N06, mental-health information) does not.
    a.prescribe(
        &pa,
        json!({"din": SERTRALINE, "sig": "1 cap PO OD", "quantity": "30"}),
    )
    .await
    .expect(201);
    let r = a
        .prescribe(
            &pa,
            json!({"din": WARFARIN, "sig": "1 tab PO OD", "quantity": "30"}),
        )
        .await;
    if r.status == 409 {
        a.prescribe(
            &pa,
            json!({"din": WARFARIN, "sig": "1 tab PO OD", "quantity": "30",
                   "overrideReason": "INR monitored"}),
        )
        .await
        .expect(201);
    } else {
        r.expect(201);
    }
    let panel = eventually("A's warfarin in B's chart", || async {
        let panel = shared_panel(&b.chart(&pb).await);
        if panel.contains("Warfarin") {
            Ok(panel)
        } else {
            Err(panel)
        }
    })
    .await;
    assert!(panel.contains("From Harbour Street Clinic"), "{panel}");
    assert!(panel.contains("as of"), "{panel}");
    assert!(!panel.contains("Sertraline"), "{panel}");

    // --- Reception at A books two appointments. Reception may not read medications, so
    // those snapshots leave A's medications as they were; the counselling appointment is
    // mental-health information, which A's consent leaves out.
    let reception = a.api.login(RECEPTION.0, RECEPTION.1).await;
    let sched = "/plugins/scheduling/api";
    let days: Value = (1..=7)
        .map(|d| (d.to_string(), json!([{"start": "00:00", "end": "24:00"}])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    a.api
        .put(
            &format!("{sched}/availability/drlee"),
            &reception,
            &json!({ "days": days }),
            None,
        )
        .await
        .expect(200);
    for (kind, start) in [("Counselling", "09:00"), ("Follow-up", "10:00")] {
        a.api
            .put(
                &format!("{sched}/types/{kind}"),
                &reception,
                &json!({"minutes": 15}),
                None,
            )
            .await
            .expect(200);
        a.api
            .post(
                &format!("{sched}/appointments"),
                &reception,
                &json!({"provider": "drlee", "patient": pa, "date": "2030-01-07",
                        "start": start, "type": kind}),
            )
            .await
            .expect(201);
    }
    let panel = eventually("A's follow-up appointment in B's chart", || async {
        let panel = shared_panel(&b.chart(&pb).await);
        if panel.contains("2030-01-07 10:00") {
            Ok(panel)
        } else {
            Err(panel)
        }
    })
    .await;
    assert!(!panel.contains("2030-01-07 09:00"), "{panel}");
    assert!(panel.contains("Warfarin"), "{panel}");

    // --- B prescribes ibuprofen: the interaction with A's warfarin is found.
    let r = b
        .prescribe(
            &pb,
            json!({"din": IBUPROFEN, "sig": "1 tab PO TID x 7 days"}),
        )
        .await;
    let w = crate::prescribing::warnings(&r.json);
    let interaction = w
        .iter()
        .find(|w| w["kind"] == "interaction")
        .unwrap_or_else(|| panic!("no interaction warning: {}", r.text));
    assert!(
        interaction.to_string().contains("Harbour Street Clinic")
            || interaction.to_string().to_lowercase().contains("warfarin"),
        "{interaction}"
    );

    // --- The integrator stops; A keeps working; the change arrives after the restart.
    let i_server = i.server.take().expect("running");
    let status = i_server.terminate();
    assert!(status.success(), "{status:?}");
    let panel = shared_panel(&b.chart(&pb).await);
    assert!(panel.contains("unavailable"), "{panel}");
    a.prescribe(
        &pa,
        json!({"din": LEVOTHYROXINE, "sig": "1 tab PO OD", "quantity": "30"}),
    )
    .await
    .expect(201);
    let env = env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    i.server = Some(i.sb.serve_at(&i_listen, &env));
    i.admin = i.api.login(ADMIN.0, ADMIN.1).await;
    eventually(
        "A's levothyroxine, prescribed while the integrator was down",
        || async {
            let panel = shared_panel(&b.chart(&pb).await);
            if panel.contains("Levothyroxine") && panel.contains("Warfarin") {
                Ok(())
            } else {
                Err(panel)
            }
        },
    )
    .await;

    // --- A's client revokes consent for B: A's data disappears from B's view.
    let r = a.consent(&pa, &b_key, false).await.expect(200);
    assert_eq!(r.json["given"], false);
    eventually("A's data gone from B's chart", || async {
        let panel = shared_panel(&b.chart(&pb).await);
        if !panel.contains("Warfarin") && panel.contains("No other facility shares") {
            Ok(())
        } else {
            Err(panel)
        }
    })
    .await;

    // --- A message with a bad signature, claiming to be from A, is refused.
    let forged = json!({
        "caisi": 1, "kind": "snapshot", "from": a_key, "to": i_key,
        "id": "00112233445566778899aabbccddeeff",
        "ts": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64,
        "body": {"client": pa, "version": 999, "views": []},
    });
    let res = i
        .api
        .client
        .post(format!("{}/inbound/main/caisi/v1/message", i.base()))
        .header("content-type", "application/json")
        .header("caisi-signature", "ab".repeat(64))
        .body(forged.to_string())
        .send()
        .await
        .expect("send a forged message");
    let r = Resp::read(res).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.error_code(), "bad-signature");

    // --- The integrator's administrator removes B: B's questions are refused from then on,
    // and B's chart panel says so instead of showing nothing.
    let fp = &b_key[..16];
    let r = i
        .api
        .send(
            reqwest::Method::DELETE,
            &format!("/plugins/caisi/api/facilities/{fp}"),
            Auth::Bearer(&i.admin),
            None,
            &[],
        )
        .await
        .expect(200);
    assert!(r.json["removedAt"].is_i64(), "{}", r.text);
    let panel = shared_panel(&b.chart(&pb).await);
    assert!(
        panel.contains("unavailable") && panel.contains("removed"),
        "{panel}"
    );

    // --- The refusals are in the integrator's audit trail, with reason and sender key.
    let trail = i
        .api
        .audit_all(&i.admin, "since=2000-01-01T00:00:00Z")
        .await;
    let refused: Vec<&Value> = trail
        .iter()
        .filter(|e| e["action"] == "caisi.message.refused")
        .collect();
    let has = |reason: &str, key: &str| {
        refused.iter().any(|e| {
            let d = e["detail"].as_str().unwrap_or_default();
            d.contains(reason) && d.contains(key)
        })
    };
    assert!(has("unknown-facility", &a_key), "{refused:?}");
    assert!(has("bad-signature", &a_key), "{refused:?}");
    assert!(has("removed-facility", &b_key), "{refused:?}");
    assert!(
        trail
            .iter()
            .any(|e| e["action"] == "caisi.facility.removed"),
        "the removal is audited"
    );
    assert!(
        trail.iter().any(|e| e["action"] == "caisi.link.confirmed"),
        "the confirmation is audited"
    );
}

/// A message to the integrator as a facility's server would send it: the envelope's exact bytes
/// and the hex ed25519 signature of them by `key`.
fn sealed(key: &ed25519_dalek::SigningKey, to: &str, id: &str, ts_ms: i64) -> (String, String) {
    use ed25519_dalek::Signer;
    let from = hex::encode(key.verifying_key().as_bytes());
    let body = json!({
        "caisi": 1, "kind": "facilities", "from": from, "to": to, "id": id, "ts": ts_ms, "body": {},
    })
    .to_string();
    let signature = hex::encode(key.sign(body.as_bytes()).to_bytes());
    (body, signature)
}

/// An attacker on the network who holds a registered facility's key still cannot replay a
/// message, send an old one, or send one meant for another integrator: each is refused with
/// its reason and on the integrator's audit trail. (The e2e test above covers a bad
/// signature, an unknown and a removed facility.)
#[tokio::test]
async fn the_integrator_refuses_replayed_stale_and_misaddressed_messages_and_audits_them() {
    let i = integrator(&package("plugins/caisi")).await;
    let i_key = i.public_key().await;
    // A facility whose key this test holds, registered by the integrator's administrator.
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let pub_hex = hex::encode(key.verifying_key().as_bytes());
    i.api
        .post(
            "/plugins/caisi/api/facilities",
            &i.admin,
            &json!({"name": "Outreach van", "key": pub_hex}),
        )
        .await
        .expect(201);
    let send = |body: String, signature: String| {
        let url = format!("{}/inbound/main/caisi/v1/message", i.base());
        let client = i.api.client.clone();
        async move {
            let res = client
                .post(url)
                .header("content-type", "application/json")
                .header("caisi-signature", signature)
                .body(body)
                .send()
                .await
                .expect("send a message");
            Resp::read(res).await
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;

    // A well-formed, correctly signed message is answered, signed by the integrator.
    let (body, sig) = sealed(&key, &i_key, &"1a".repeat(16), now);
    let ok = send(body.clone(), sig.clone()).await.expect(200);
    assert!(
        ok.json["payload"].is_string() && ok.json["signature"].is_string(),
        "{}",
        ok.text
    );
    // The same bytes again: a replay.
    let r = send(body, sig).await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (409, "replayed"),
        "{}",
        r.text
    );
    // Ten minutes old, properly signed: stale.
    let (body, sig) = sealed(&key, &i_key, &"2b".repeat(16), now - 10 * 60 * 1000);
    let r = send(body, sig).await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (401, "stale-timestamp"),
        "{}",
        r.text
    );
    // Meant for another integrator (another key), properly signed: wrong recipient.
    let (body, sig) = sealed(&key, &pub_hex, &"3c".repeat(16), now);
    let r = send(body, sig).await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (403, "wrong-recipient"),
        "{}",
        r.text
    );

    let trail = i
        .api
        .audit_all(&i.admin, "since=2000-01-01T00:00:00Z")
        .await;
    for reason in ["replayed", "stale-timestamp", "wrong-recipient"] {
        assert!(
            trail.iter().any(|e| e["action"] == "caisi.message.refused"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(reason) && d.contains(&pub_hex))),
            "{reason} not on the trail"
        );
    }
}
