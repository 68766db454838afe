//! The host pieces multi-site care (CAISI) needs, end to end: an outbound origin each site's
//! administrator sets (`"config:<key>"`), requests from servers elsewhere (capability
//! `inbound`, `/inbound/{site}/{plugin}/…`), and prescribing checking the medications other
//! facilities share (`osler:caisi/remote`, an optional import) — with the `courier` and
//! `remote-meds` fixtures of `tests/plugins/`.

use std::time::Duration;

use serde_json::{Value, json};

use reqwest::Method;

use crate::prescribing::{Clinic, clinic, new_patient};
use crate::prescription_safety::check;
use crate::support::{Api, Auth, Sandbox, Server, package, peer, plugin_env};

const ADMIN: (&str, &str) = ("admin", "osler-demo-admin");
const DRLEE: (&str, &str) = ("drlee", "osler-demo-physician");

/// A demo clinic whose server accepts development packages (and `extra` settings), with the
/// courier fixture installed.
async fn courier_clinic(extra: &[(&str, &str)]) -> (Sandbox, Server, Api, String, String) {
    let sb = Sandbox::new();
    let mut env = plugin_env();
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(3, &env);
    let api = server.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    let lee = api.login(DRLEE.0, DRLEE.1).await;
    api.install(&admin, &package("tests/plugins/courier"))
        .await
        .expect(201);
    (sb, server, api, admin, lee)
}

fn fetch_path(url: &str) -> String {
    format!(
        "/plugins/courier/fetch?url={}",
        url.replace(':', "%3A").replace('/', "%2F")
    )
}

#[tokio::test]
async fn a_plugin_reaches_the_origin_the_administrator_sets_and_no_other() {
    let (_sb, _server, api, admin, lee) = courier_clinic(&[]).await;
    let port = peer(Duration::ZERO, "peer says hello").await;
    let other = peer(Duration::ZERO, "someone else").await;
    api.enable(&admin, "courier", "main", &["outbound"]).await;
    let url = format!("http://127.0.0.1:{port}/caisi/messages");

    // Not set yet: refused, saying what the administrator has to do.
    let r = api.get(&fetch_path(&url), &lee).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error_code(), "denied");
    assert!(
        r.text
            .contains("the administrator has not set `peer-url` at this site"),
        "{}",
        r.text
    );

    // Not a web address: refused, saying so.
    api.put(
        "/api/v1/admin/plugins/courier/sites/main/config",
        &admin,
        &json!({"peer-url": "ftp://127.0.0.1/files"}),
        None,
    )
    .await
    .expect(200);
    let r = api.get(&fetch_path(&url), &lee).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("not an http(s) origin"), "{}", r.text);

    // Set: the peer answers through the plugin.
    api.put(
        "/api/v1/admin/plugins/courier/sites/main/config",
        &admin,
        &json!({"peer-url": format!("http://127.0.0.1:{port}/caisi/")}),
        None,
    )
    .await
    .expect(200);
    let r = api.get(&fetch_path(&url), &lee).await.expect(200);
    assert_eq!(r.json["status"], 200, "{}", r.text);
    assert_eq!(r.json["body"], "peer says hello");

    // Another origin (another port on the same host): refused, and audited.
    let elsewhere = format!("http://127.0.0.1:{other}/");
    let r = api.get(&fetch_path(&elsewhere), &lee).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error_code(), "denied");
    let trail = api.audit_all(&admin, "actor=drlee").await;
    assert!(
        trail.iter().any(|e| e["action"] == "plugin.outbound"
            && e["outcome"] == "denied"
            && e["resource"] == format!("http://127.0.0.1:{other}")),
        "{trail:?}"
    );

    // The administrator sees where it may reach, and what that is at each site.
    let v = api
        .get("/api/v1/admin/plugins/courier", &admin)
        .await
        .expect(200);
    let configured = &v.json["outboundConfig"][0];
    assert_eq!(configured["key"], "peer-url", "{}", v.text);
    assert_eq!(
        configured["sites"]["main"]["origin"],
        format!("http://127.0.0.1:{port}"),
        "{}",
        v.text
    );
    let page = api
        .send(
            Method::GET,
            "/admin/plugins",
            Auth::Cookie(&admin, None),
            None,
            &[],
        )
        .await
        .expect(200);
    assert!(
        page.text.contains("the origin set in `peer-url`")
            && page.text.contains(&format!("http://127.0.0.1:{port}")),
        "{}",
        page.text
    );
    // Where it is granted, the page says plainly what `inbound` means.
    assert!(
        page.text.contains(
            "servers elsewhere may send requests to this plugin at this site without signing \
             in; the plugin must authenticate them itself"
        ),
        "{}",
        page.text
    );
}

async fn inbound(
    api: &Api,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, Value, String) {
    let mut rb = api
        .client
        .post(format!("{}{path}", api.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let res = rb.send().await.expect("inbound request");
    let status = res.status().as_u16();
    let cookie = res.headers().get("set-cookie").is_some();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = res.text().await.unwrap();
    assert!(!cookie, "an inbound answer sets no cookie");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, format!("{ct} {text}"))
}

#[tokio::test]
async fn servers_elsewhere_reach_a_plugin_granted_inbound_as_unattended_work() {
    let (_sb, _server, api, admin, lee) =
        courier_clinic(&[("OSLER_PLUGINS__INBOUND_PER_MINUTE", "12")]).await;
    let pid = api.search_all(&lee, "_count=1").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let message = r#"{"facility":"harbour","signature":"abc"}"#;

    // Enabled without `inbound`: the same 404 as a plugin that does not exist.
    api.enable(&admin, "courier", "main", &["outbound"]).await;
    let (status, refused, _) = inbound(&api, "/inbound/main/courier/messages", message, &[]).await;
    assert_eq!(status, 404);
    let (status, unknown, _) = inbound(&api, "/inbound/main/nothing/messages", message, &[]).await;
    assert_eq!(status, 404);
    assert_eq!(refused, unknown, "nothing tells a granted plugin from none");

    // Granted: the handler gets the request as unattended work, without the credentials.
    api.put(
        "/api/v1/admin/plugins/courier/sites/main/grants",
        &admin,
        &json!({"capabilities": ["outbound", "inbound"]}),
        None,
    )
    .await
    .expect(200);
    let (status, got, text) = inbound(
        &api,
        "/inbound/main/courier/messages",
        message,
        &[
            ("authorization", "Bearer stolen"),
            ("cookie", "osler_session=x"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.starts_with("application/json"), "not framed: {text}");
    assert_eq!(got["path"], "/messages");
    assert_eq!(got["method"], "POST");
    assert_eq!(got["body"], message);
    assert_eq!(got["principal"]["kind"], "unattended", "{got}");
    assert_eq!(got["principal"]["what"], "inbound request");
    assert_eq!(got["principal"]["site"], "main");
    let headers: Vec<&str> = got["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    assert!(
        !headers.contains(&"authorization") && !headers.contains(&"cookie"),
        "{headers:?}"
    );

    // Its grants for people do not apply: reading a chart needs an unattended grant.
    api.put(
        "/api/v1/admin/plugins/courier/sites/main/grants",
        &admin,
        &json!({"capabilities": ["outbound", "inbound", "patients.read"]}),
        None,
    )
    .await
    .expect(200);
    let path = format!("/inbound/main/courier/lookup?patient={pid}");
    let (status, got, text) = inbound(&api, &path, "{}", &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(got["read"]["error"], "denied", "{got}");
    api.put(
        "/api/v1/admin/plugins/courier/sites/main/grants",
        &admin,
        &json!({"capabilities": ["outbound", "inbound", "patients.read"],
                "unattended": ["patients.read"]}),
        None,
    )
    .await
    .expect(200);
    let (_, got, _) = inbound(&api, &path, "{}", &[]).await;
    assert_eq!(got["read"]["ok"], true, "{got}");

    // Not enabled at the other site: 404 there.
    let (status, _, _) = inbound(&api, "/inbound/north/courier/messages", message, &[]).await;
    assert_eq!(status, 404);

    // Every inbound request is on the trail, with where it came from and what came of it,
    // never its body.
    let trail = api.audit_all(&admin, "actor=unattended").await;
    let entries: Vec<&Value> = trail
        .iter()
        .filter(|e| e["action"] == "plugin.inbound")
        .collect();
    assert!(
        entries.iter().any(|e| e["outcome"] == "success"
            && e["site"] == "main"
            && e["resource"] == "plugin/courier"
            && e["source"] == "127.0.0.1"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("POST /messages") && d.contains("200"))),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["outcome"] == "denied" && e["site"] == "north"),
        "{entries:?}"
    );
    assert!(
        !serde_json::to_string(&trail).unwrap().contains("signature"),
        "the body is never audited"
    );
    // The refused chart read is audited as the plugin's, unattended (refused for want of
    // the unattended grant), and the read after the grant is on the patient's trail.
    assert!(
        trail.iter().any(|e| e["action"] == "patient.read"
            && e["outcome"] == "denied"
            && e["via"] == "courier"
            && e["resource"] == "capability/patients.read"),
        "{trail:?}"
    );
    assert!(
        trail.iter().any(|e| e["action"] == "patient.read"
            && e["outcome"] == "success"
            && e["via"] == "courier"
            && e["patient"] == pid.as_str()),
        "{trail:?}"
    );

    // One address may send so many a minute (12 here): then 429.
    let mut limited = false;
    for _ in 0..12 {
        let (status, _, _) = inbound(&api, "/inbound/main/courier/messages", message, &[]).await;
        if status == 429 {
            limited = true;
            break;
        }
        assert_eq!(status, 200);
    }
    assert!(limited, "the per-address limit applies");
}

/// The fixture exporting `osler:caisi/remote`, installed and enabled at main.
async fn share(c: &Clinic, pid: &str, meds: Value) {
    c.api
        .put(
            &format!("/plugins/remote-meds/patients/{pid}"),
            &c.lee,
            &meds,
            None,
        )
        .await
        .expect(204);
}

#[tokio::test]
async fn prescribing_checks_the_medications_other_facilities_share() {
    const IBUPROFEN: &str = "99000031";
    let c = clinic().await;
    let pid = new_patient(&c, "Harbour", 41).await;

    // No provider of osler:caisi/remote installed at all: prescribing works and says nothing.
    let checks = check(&c, &pid, IBUPROFEN).await;
    assert_eq!(checks["status"], "checked", "{checks}");
    assert!(checks.get("notices").is_none(), "{checks}");

    c.api
        .install_enabled(
            &c.admin,
            &package("tests/plugins/remote-meds"),
            "main",
            &["kv"],
        )
        .await;
    let as_of = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3 * 3_600_000;
    share(
        &c,
        &pid,
        json!([
            {"facility": "Harbour Street Shelter Health", "drug": "Warfarin", "atc": "B01AA03",
             "strength": "5 mg", "sig": "1 tab PO OD", "start": "2026-11-20", "asOf": as_of},
            {"facility": "Harbour Street Shelter Health", "drug": "Herbal tea blend",
             "start": "2026-11-21", "asOf": as_of}
        ]),
    )
    .await;

    // Ibuprofen with the warfarin another facility shares: the major interaction, naming it.
    let checks = check(&c, &pid, IBUPROFEN).await;
    let major = checks["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "interaction" && w["severity"] == "major")
        .unwrap_or_else(|| panic!("{checks}"))
        .clone();
    let with = major["with"].as_str().unwrap();
    assert!(
        with.starts_with("Warfarin (shared by Harbour Street Shelter Health, as of ")
            && with.contains("3 hours ago"),
        "{major}"
    );
    assert_eq!(major["blocking"], true);
    assert!(
        checks["notChecked"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .is_some_and(|n| n.starts_with("Herbal tea blend (shared by")
                && n.ends_with("not checked (no ATC code)"))),
        "{checks}"
    );
    // The patient's page lists them, read-only, with where they come from.
    let page = c
        .api
        .page(&format!("/plugins/prescribing/patients/{pid}"), &c.lee)
        .await
        .expect(200);
    assert!(
        page.text.contains("Shared by other facilities")
            && page
                .text
                .contains("Warfarin (shared by Harbour Street Shelter Health, as of "),
        "{}",
        page.text
    );
    // Prescribing it needs an override, like a local warfarin would.
    let r = crate::prescribing::prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": IBUPROFEN, "sig": "1 tab PO TID x 7 days"}),
    )
    .await
    .expect(409);
    assert_eq!(r.error_code(), "override-required");

    // The sharing plugin fails (its integrator cannot be reached): said, not silent.
    c.api
        .put(
            "/plugins/remote-meds/failure",
            &c.lee,
            &json!({"internal": "the integrator cannot be reached"}),
            None,
        )
        .await
        .expect(204);
    let checks = check(&c, &pid, IBUPROFEN).await;
    assert_eq!(checks["status"], "checked", "{checks}");
    assert_eq!(
        checks["notices"][0],
        "medications shared by other facilities could not be checked: internal: the \
         integrator cannot be reached",
        "{checks}"
    );
    assert!(
        checks["message"]
            .as_str()
            .unwrap()
            .contains("could NOT be checked"),
        "{checks}"
    );

    // Disabled at the site: no provider, nothing said.
    c.api.disable(&c.admin, "remote-meds", "main").await;
    let checks = check(&c, &pid, IBUPROFEN).await;
    assert!(checks.get("notices").is_none(), "{checks}");
    let page = c
        .api
        .page(&format!("/plugins/prescribing/patients/{pid}"), &c.lee)
        .await
        .expect(200);
    assert!(
        !page.text.contains("Shared by other facilities"),
        "{}",
        page.text
    );
    assert!(
        checks["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| !w["with"].as_str().unwrap_or("").contains("shared by")),
        "{checks}"
    );
}
