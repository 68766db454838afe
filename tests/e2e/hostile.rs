//! Issue 11's hostile plugins, one test per attack: each asserts that the attack fails and
//! that a neighbour plugin (`notices`) keeps answering within the plugin deadline meanwhile.
//! The attacker is `tests/plugins/evil` (API 0.2) unless said otherwise.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    Api, Auth, Resp, Sandbox, Server, demo, packages, peer, plugin_env, repackage, rss_kib, set_key,
};

/// The per-request deadline a plugin has by default: before these fixes, a starved neighbour
/// answered 503 or took longer than this.
const DEADLINE: Duration = Duration::from_secs(5);

struct Clinic {
    sb: Sandbox,
    server: Server,
    api: Api,
    admin: String,
    lee: String,
    /// How long the neighbour took before the attack.
    baseline: Duration,
}

/// A demo clinic whose server accepts development packages, with `notices` (the neighbour)
/// and `evil` (granted `evil_grants`) enabled at `main`.
async fn clinic(extra: &[(&str, &str)], evil_grants: &[&str]) -> Clinic {
    clinic_with(Sandbox::new(), &packages().evil, extra, evil_grants).await
}

/// [`clinic`] with `evil` from the package `evil`.
async fn clinic_with(
    sb: Sandbox,
    evil: &std::path::Path,
    extra: &[(&str, &str)],
    evil_grants: &[&str],
) -> Clinic {
    let pk = packages();
    let mut env = plugin_env();
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(8, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let lee = api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;
    api.install_enabled(&admin, &pk.notices, "main", &["kv"])
        .await;
    api.install_enabled(&admin, evil, "main", evil_grants).await;
    // Warm both (the first call of a plugin loads its compiled code).
    api.get("/plugins/evil/ok", &lee).await.expect(200);
    let mut baseline = Duration::ZERO;
    for _ in 0..3 {
        baseline = neighbour(&api, &lee).await;
    }
    Clinic {
        sb,
        server,
        api,
        admin,
        lee,
        baseline,
    }
}

/// One read of the neighbour's notices; it must answer, within the deadline.
async fn neighbour(api: &Api, token: &str) -> Duration {
    let started = Instant::now();
    let r = api.get("/plugins/notices/api/notices", token).await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "the neighbour plugin: {}", r.text);
    assert!(
        took < DEADLINE,
        "the neighbour plugin took {took:?} (deadline {DEADLINE:?})"
    );
    took
}

impl Clinic {
    /// The neighbour still answers; prints how it compares with before the attack.
    async fn neighbour_answers(&self, during: &str) {
        let took = neighbour(&self.api, &self.lee).await;
        eprintln!(
            "neighbour during {during}: {:.1} ms (before: {:.1} ms)",
            took.as_secs_f64() * 1e3,
            self.baseline.as_secs_f64() * 1e3
        );
    }

    async fn events_of(&self, id: &str) -> Value {
        self.api
            .get(&format!("/api/v1/admin/plugins/{id}/events"), &self.admin)
            .await
            .expect(200)
            .json
    }

    /// Wait until `id` has no events waiting.
    async fn drained(&self, id: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let e = self.events_of(id).await;
            if e["waiting"] == 0 || Instant::now() > until {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn first_patient(&self) -> String {
        self.api.search_all(&self.lee, "_count=1").await[0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Interface hijack

/// A second plugin exporting an interface another imports is left alone: the import stays
/// bound to the provider it had, whatever is enabled later; only an administrator's choice
/// (audited) changes it, and with no choice among several providers the call is
/// `unavailable`, not silently redirected.
#[tokio::test]
async fn a_hijacking_exporter_is_left_unbound_where_the_interface_is_bound() {
    let pk = packages();
    let c = clinic(&[], &["kv"]).await;
    let api = &c.api;
    api.install_enabled(&c.admin, &pk.consumer, "main", &[])
        .await;
    api.install_enabled(&c.admin, &pk.provider, "main", &[])
        .await;
    let echo = |text: &'static str| {
        let api = api.clone();
        let lee = c.lee.clone();
        async move {
            api.get(&format!("/plugins/echo-consumer/echo?text={text}"), &lee)
                .await
        }
    };
    assert_eq!(echo("hi").await.expect(200).json["echo"], "hi");

    // The hijacker: the same component under another id, whose answers are marked. It is
    // granted nothing.
    let hijacker = repackage(c.sb.root(), &pk.provider, "echo-hijacker", |m| {
        set_key(m, "id", "\"echo-hijacker\"")
            .replace("default = \"\"", "default = \"HIJACKED:\"")
            .replace("[events]\nsubscribe = [\"echo-consumer.pinged\"]\n", "")
    });
    let r = api.install(&c.admin, &hijacker).await;
    assert_eq!(r.status, 201, "{}", r.text);
    api.enable(&c.admin, "echo-hijacker", "main", &[]).await;
    c.neighbour_answers("the hijack").await;

    // The import still goes where it went.
    assert_eq!(echo("hi").await.expect(200).json["echo"], "hi");
    let b = api
        .get("/api/v1/admin/sites/main/bindings", &c.admin)
        .await
        .expect(200);
    let echo_binding = b.json["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["interface"] == "osler:fixtures/echo")
        .cloned()
        .unwrap_or_else(|| panic!("{}", b.text));
    assert_eq!(echo_binding["provider"], "echo-provider", "{}", b.text);
    assert_eq!(echo_binding["by"], "automatic");
    assert_eq!(
        echo_binding["candidates"],
        json!(["echo-hijacker", "echo-provider"])
    );
    assert_eq!(echo_binding["importers"], json!(["echo-consumer"]));
    // The plugins page shows the exports, the imports and the binding.
    let view = api
        .get("/api/v1/admin/plugins/echo-consumer", &c.admin)
        .await
        .expect(200);
    assert_eq!(
        view.json["bindings"]["main"]["osler:fixtures/echo"],
        "echo-provider"
    );

    // Unbound, with two providers: unavailable, and the message says who chooses.
    let unbind = json!({"interface": "osler:fixtures/echo", "provider": null});
    api.put("/api/v1/admin/sites/main/bindings", &c.admin, &unbind, None)
        .await
        .expect(200);
    let r = echo("hi").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.error_code(), "unavailable");
    assert!(r.text.contains("osler plugin bind"), "{}", r.text);

    // An administrator's explicit choice is the only thing that binds the other one.
    let bind = json!({"interface": "osler:fixtures/echo", "provider": "echo-hijacker"});
    api.put("/api/v1/admin/sites/main/bindings", &c.admin, &bind, None)
        .await
        .expect(200);
    assert_eq!(echo("hi").await.expect(200).json["echo"], "HIJACKED:hi");
    // A plugin that does not provide the interface cannot be bound to it.
    let wrong = json!({"interface": "osler:fixtures/echo", "provider": "notices"});
    let r = api
        .put("/api/v1/admin/sites/main/bindings", &c.admin, &wrong, None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    let trail = api.audit_all(&c.admin, "actor=admin").await;
    let binds: Vec<&Value> = trail
        .iter()
        .filter(|e| e["action"] == "plugin.bind")
        .collect();
    assert!(
        binds
            .iter()
            .any(|e| e["detail"].as_str().unwrap_or("").contains("echo-hijacker")),
        "{binds:?}"
    );
    assert!(binds.iter().any(
        |e| e["outcome"] == "success" && e["detail"].as_str().unwrap_or("").contains("unbound")
    ));
    c.neighbour_answers("the rebinding").await;
}

// ---------------------------------------------------------------------------------------------
// 2. Events run as the person who caused them

#[tokio::test]
async fn an_event_a_kiosk_triggers_reads_no_patient_and_names_the_kiosk_on_the_trail() {
    let c = clinic(&[], &["kv", "patients.read", "events.publish"]).await;
    let api = &c.api;
    let kiosk = api.login(demo::KIOSK.0, demo::KIOSK.1).await;

    api.post("/plugins/evil/harvest", &kiosk, &json!({}))
        .await
        .expect(202);
    let got = harvested(api, &kiosk).await;
    // The handler acted for the kiosk: evil's own grant of patients.read is not enough.
    assert_eq!(got["found"]["error"], "denied", "{got}");
    assert_eq!(got["as"], "kiosk.main");
    assert_eq!(got["via"], json!(["evil"]), "{got}");
    let trail = api.audit_all(&c.admin, "actor=kiosk.main").await;
    assert!(
        trail.iter().any(|e| e["action"] == "patient.search"
            && e["outcome"] == "denied"
            && e["via"] == "evil>evil"
            && e["role"] == "kiosk"),
        "{trail:?}"
    );
    assert!(
        !trail
            .iter()
            .any(|e| e["action"] == "patient.search" && e["outcome"] == "success"),
        "{trail:?}"
    );
    c.neighbour_answers("the kiosk's event").await;

    // The same event from a physician reads what the physician may (and says so).
    api.post("/plugins/evil/harvest", &c.lee, &json!({}))
        .await
        .expect(202);
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let got = harvested(api, &c.lee).await;
        if got["as"] == "drlee" {
            assert!(got["found"]["read"].as_u64().unwrap_or(0) > 0, "{got}");
            break;
        }
        assert!(
            Instant::now() < until,
            "the physician's event was not handled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let trail = api.audit_all(&c.admin, "actor=drlee").await;
    assert!(
        trail.iter().any(|e| e["action"] == "patient.search"
            && e["outcome"] == "success"
            && e["via"] == "evil>evil"),
        "{trail:?}"
    );
}

async fn harvested(api: &Api, token: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r = api.get("/plugins/evil/harvested", token).await.expect(200);
        if !r.json.is_null() {
            return r.json;
        }
        assert!(Instant::now() < until, "the event was not handled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Event storm

#[tokio::test]
async fn an_event_storm_stops_at_the_depth_limit_with_the_drops_counted() {
    let c = clinic(&[], &["kv", "events.publish"]).await;
    let started = Instant::now();
    c.api
        .post("/plugins/evil/storm", &c.lee, &json!({}))
        .await
        .expect(202);
    c.neighbour_answers("the storm").await;
    let e = c.drained("evil").await;
    eprintln!("storm over in {:?}: {e}", started.elapsed());
    // 1 + 2 + 4 + 8 events (depths 0 to 3); the 8 handlers at the last level are refused
    // twice each.
    assert_eq!(e["published"], 15, "{e}");
    assert_eq!(e["delivered"], 15, "{e}");
    assert_eq!(e["droppedDepth"], 16, "{e}");
    let handled = c.api.get("/plugins/evil/storms", &c.lee).await.expect(200);
    assert_eq!(handled.json["handled"], 15);
    // And it stays over.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.events_of("evil").await["published"], 15);
    c.neighbour_answers("after the storm").await;
}

// ---------------------------------------------------------------------------------------------
// 4. Per-plugin CSRF tokens; host page headers

/// A session, used as a browser does: its token in the session cookie.
async fn cookie_of(api: &Api, who: (&str, &str)) -> String {
    api.login(who.0, who.1).await
}

async fn page(api: &Api, path: &str, cookie: &str) -> Resp {
    api.send(
        reqwest::Method::GET,
        path,
        Auth::Cookie(cookie, None),
        None,
        &[],
    )
    .await
}

async fn form(api: &Api, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Resp {
    let r = api
        .client
        .post(format!("{}{path}", api.base))
        .header("cookie", format!("osler_session={cookie}"))
        .form(fields)
        .send()
        .await
        .unwrap();
    Resp::read(r).await
}

fn token_in(page: &str, marker: &str) -> String {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {page}"))
        + marker.len();
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn a_plugins_csrf_token_opens_neither_the_hosts_forms_nor_another_plugins() {
    let c = clinic(&[], &["kv"]).await;
    let api = &c.api;

    // An administrator looks at the plugin's page; the plugin knows its own token only.
    let admin = cookie_of(api, demo::ADMIN).await;
    let evil_page = page(api, "/plugins/evil/csrf", &admin).await.expect(200);
    let evil_token = token_in(&evil_page.text, "name=\"_csrf\" value=\"");
    let admin_page = page(api, "/admin/plugins", &admin).await.expect(200);
    let host_token = token_in(&admin_page.text, "name=\"csrf\" value=\"");
    assert_ne!(evil_token, host_token);

    // Its token does not drive the host's form that would grant it more.
    let grant = |token: String| {
        let (api, admin) = (api.clone(), admin.clone());
        async move {
            form(
                &api,
                "/admin/plugins/action",
                &admin,
                &[
                    ("csrf", token.as_str()),
                    ("action", "grants"),
                    ("id", "evil"),
                    ("site", "main"),
                    ("capability", "kv"),
                    ("capability", "patients.read"),
                ],
            )
            .await
        }
    };
    let r = grant(evil_token.clone()).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let v = api
        .get("/api/v1/admin/plugins/evil", &c.admin)
        .await
        .expect(200);
    assert_eq!(
        v.json["sites"]["main"]["grants"],
        json!(["kv"]),
        "unchanged"
    );
    // (The host's own token, from the host's page, does.)
    assert_eq!(grant(host_token).await.status, 303);

    // Nor another plugin's form, as the physician.
    let lee = cookie_of(api, demo::PHYSICIAN).await;
    let evil_token = token_in(
        &page(api, "/plugins/evil/csrf", &lee).await.expect(200).text,
        "name=\"_csrf\" value=\"",
    );
    let notices_token = token_in(
        &page(api, "/plugins/notices/", &lee).await.expect(200).text,
        "name=\"_csrf\" value=\"",
    );
    assert_ne!(evil_token, notices_token);
    let post = |token: String, title: &'static str| {
        let (api, lee) = (api.clone(), lee.clone());
        async move {
            form(
                &api,
                "/plugins/notices/",
                &lee,
                &[("title", title), ("body", "b"), ("_csrf", token.as_str())],
            )
            .await
        }
    };
    assert_eq!(post(evil_token, "Forged").await.status, 403);
    assert_eq!(post(notices_token, "Real").await.status, 303);
    let list = api
        .get("/plugins/notices/api/notices", &c.lee)
        .await
        .expect(200);
    assert!(list.text.contains("Real") && !list.text.contains("Forged"));

    // The host's pages: a strict CSP, no framing, no sniffing, a referrer policy.
    for (path, cookie) in [
        ("/login", None),
        ("/", Some(&lee)),
        ("/admin/plugins", Some(&admin)),
    ] {
        let r = match cookie {
            Some(c) => page(api, path, c).await,
            None => {
                api.send(reqwest::Method::GET, path, Auth::None, None, &[])
                    .await
            }
        };
        let csp = r.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert!(r.header("referrer-policy").is_some(), "{path}");
    }
    c.neighbour_answers("the forged forms").await;
}

// ---------------------------------------------------------------------------------------------
// 5. Host memory held for a plugin

#[tokio::test]
async fn a_scan_of_large_values_stays_within_its_page_size() {
    // This test is about memory, not time: the plugin's deadline counts the host's durable
    // writes (25 MB a request), which a busy shared disk can stretch past the default 5 s.
    let c = clinic(
        &[
            ("OSLER_PLUGINS__STORAGE_MIB", "512"),
            ("OSLER_PLUGINS__TIMEOUT_MS", "60000"),
        ],
        &["kv"],
    )
    .await;
    let api = &c.api;
    // 150 values of 1,000,000 bytes, one write each, 25 writes a request.
    for i in 0..6 {
        let r = api
            .post(
                &format!("/plugins/evil/fill-bytes?size=1000000&count=25&prefix=big/{i}/"),
                &c.lee,
                &json!({}),
            )
            .await
            .expect(200);
        assert_eq!(r.json["written"], 25, "{}", r.text);
    }
    // Settle, then measure the host around the scans.
    api.get("/plugins/evil/scan?prefix=nothing/", &c.lee)
        .await
        .expect(200);
    let before = rss_kib(c.server.pid());
    let mut last = Value::Null;
    for _ in 0..3 {
        last = api
            .get("/plugins/evil/scan?prefix=big/", &c.lee)
            .await
            .expect(200)
            .json;
    }
    let after = rss_kib(c.server.pid());
    eprintln!(
        "host RSS around three scans of 150 MB of values: before {before} KiB, after {after} \
         KiB ({:+} KiB); {last}",
        after as i64 - before as i64
    );
    assert_eq!(last["entries"], 150);
    // The host stops a page at 1 MiB: one of these values per page.
    assert_eq!(last["pages"], 150, "{last}");
    assert!(
        last["biggestPage"].as_u64().unwrap() <= (1 << 20) + 600,
        "{last}"
    );
    assert!(
        after < before + 64 * 1024,
        "the host grew by {} KiB during the scans",
        after - before
    );
    c.neighbour_answers("the scans").await;
}

// ---------------------------------------------------------------------------------------------
// 6. Quotas: storage, audit entries

#[tokio::test]
async fn a_plugin_over_its_quota_gets_too_large_and_nothing_partial() {
    let c = clinic(
        &[
            ("OSLER_PLUGINS__STORAGE_MIB", "4"),
            ("OSLER_PLUGINS__STORAGE_KEYS", "500"),
            ("OSLER_PLUGINS__AUDIT_PER_MINUTE", "100"),
        ],
        &["kv", "patients.match"],
    )
    .await;
    let api = &c.api;
    let usage = || async {
        api.get("/plugins/evil/usage", &c.lee)
            .await
            .expect(200)
            .json
    };
    // Four batches of 18 values of 50,000 bytes (3.6 MB): within 4 MiB.
    for i in 0..4 {
        api.post(
            &format!("/plugins/evil/fill?size=50000&count=18&prefix=b{i}/"),
            &c.lee,
            &json!({}),
        )
        .await
        .expect(200);
    }
    let before = usage().await;
    assert_eq!(before["keys"], 72, "{before}");
    assert_eq!(before["maxBytes"], 4 << 20);
    // A fifth would pass the quota: refused whole.
    let r = api
        .post(
            "/plugins/evil/fill?size=50000&count=18&prefix=b4/",
            &c.lee,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.error_code(), "too-large");
    assert_eq!(
        usage().await,
        before,
        "nothing of the refused batch was written"
    );
    // Keys: a batch that brings it to exactly 500 keys, then one more key.
    api.post(
        "/plugins/evil/fill?size=1&count=428&prefix=k/",
        &c.lee,
        &json!({}),
    )
    .await
    .expect(200);
    let r = api
        .post(
            "/plugins/evil/fill?size=1&count=1&prefix=one-more/",
            &c.lee,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.error_code(), "too-large");
    // The administrator sees it.
    let v = api
        .get("/api/v1/admin/plugins/evil", &c.admin)
        .await
        .expect(200);
    assert_eq!(v.json["storage"]["keys"], 500, "{}", v.text);
    assert_eq!(v.json["storage"]["maxKeys"], 500);
    c.neighbour_answers("the full store").await;

    // The audit trail: a kiosk cannot name a patient it has nothing to do with...
    let pid = c.first_patient().await;
    let kiosk = api.login(demo::KIOSK.0, demo::KIOSK.1).await;
    let r = api
        .post(
            &format!("/plugins/evil/audit-flood?patient={pid}&n=100"),
            &kiosk,
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(r.json["written"], 0, "{}", r.text);
    assert_eq!(r.json["refused"]["code"], "denied", "{}", r.text);
    // ...and nobody floods it: 64 entries a call, 100 a minute.
    let r = api
        .post(
            &format!("/plugins/evil/audit-flood?patient={pid}&n=100"),
            &c.lee,
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(r.json["written"], 64, "{}", r.text);
    assert_eq!(r.json["refused"]["code"], "too-large");
    let r = api
        .post("/plugins/evil/audit-flood?n=100", &c.lee, &json!({}))
        .await
        .expect(200);
    assert_eq!(r.json["written"], 36, "{}", r.text);
    assert!(
        r.json["refused"]["message"]
            .as_str()
            .unwrap()
            .contains("a minute"),
        "{}",
        r.text
    );
    let trail = api.audit_all(&c.admin, &format!("patient={pid}")).await;
    let flood = trail
        .iter()
        .filter(|e| e["action"] == "evil.flood" && e["outcome"] == "success")
        .count();
    assert_eq!(
        flood, 64,
        "the patient's trail holds what was allowed, no more"
    );
    c.neighbour_answers("the audit flood").await;
}

// ---------------------------------------------------------------------------------------------
// 7. Fair sharing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_hundred_slow_requests_to_one_plugin_leave_notices_answering() {
    // Each request waits 3 s for its answer: what makes the plugin's requests slow (each holds
    // an instance while it waits, as a plugin waiting on a slow service does).
    let port = peer(Duration::from_secs(3), "ok").await;
    let sb = Sandbox::new();
    let evil = repackage(sb.root(), &packages().evil, "evil-slow", |m| {
        m.replace("http://127.0.0.1:9", &format!("http://127.0.0.1:{port}"))
    });
    let c = clinic_with(sb, &evil, &[], &["kv", "outbound"]).await;
    let url = format!("/plugins/evil/wait?url=http%3A%2F%2F127.0.0.1%3A{port}%2Fslow");
    let mut slow = Vec::new();
    for _ in 0..800 {
        let (api, lee, url) = (c.api.clone(), c.lee.clone(), url.clone());
        slow.push(tokio::spawn(async move {
            api.get(&url, &lee).await.status.as_u16()
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 0..5 {
        c.neighbour_answers(&format!("800 slow requests ({i})"))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut statuses = std::collections::BTreeMap::new();
    for s in slow {
        *statuses.entry(s.await.unwrap()).or_insert(0) += 1;
    }
    eprintln!("the 800 slow requests: {statuses:?}");
    // The slow plugin had its share (32 at a time), and the rest waited their deadline for it
    // and were told so; the neighbour had its own.
    assert!(
        statuses.get(&200).copied().unwrap_or(0) >= 32,
        "{statuses:?}"
    );
    assert!(statuses.get(&503).copied().unwrap_or(0) > 0, "{statuses:?}");
    assert!(
        statuses.keys().all(|s| [200, 503, 504].contains(s)),
        "{statuses:?}"
    );
    c.neighbour_answers("after the slow requests").await;
}

// ---------------------------------------------------------------------------------------------
// 8. Response headers

#[tokio::test]
async fn forbidden_response_headers_never_reach_the_browser() {
    let c = clinic(&[], &["kv"]).await;
    let r = c.api.get("/plugins/evil/headers", &c.lee).await.expect(200);
    for h in [
        "location",
        "refresh",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "clear-site-data",
        "set-cookie",
    ] {
        assert!(
            r.header(h).is_none(),
            "{h} reached the browser: {:?}",
            r.headers
        );
    }
    assert_eq!(r.header("cache-control"), Some("private, no-store"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"ok.json\"")
    );
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'none'")
    );
    // Redirects: to this server only.
    let away = c
        .api
        .get(
            "/plugins/evil/redirect?to=https%3A%2F%2Fevil.example%2F",
            &c.lee,
        )
        .await;
    assert!(away.header("location").is_none(), "{:?}", away.headers);
    for to in ["%2F%2Fevil.example%2F", "%2F%5Cevil.example"] {
        let r = c
            .api
            .get(&format!("/plugins/evil/redirect?to={to}"), &c.lee)
            .await;
        assert!(r.header("location").is_none(), "{to}: {:?}", r.headers);
    }
    let here = c
        .api
        .get("/plugins/evil/redirect?to=%2Fplugins%2Fevil%2Fok", &c.lee)
        .await;
    assert_eq!(here.header("location"), Some("/plugins/evil/ok"));
    // The plugin's log says what was dropped.
    let logs = c
        .api
        .get("/api/v1/admin/plugins/evil/logs", &c.admin)
        .await
        .expect(200);
    assert!(
        logs.text.contains("access-control-allow-origin") && logs.text.contains("set-cookie"),
        "{}",
        logs.text
    );
    c.neighbour_answers("the headers").await;
}

// ---------------------------------------------------------------------------------------------
// 9. Replacement by id

fn osler_ok(sb: &Sandbox, args: &[&str]) -> String {
    sb.osler_ok(args, &[])
}

#[tokio::test]
async fn a_development_package_does_not_replace_a_signed_plugin() {
    let pk = packages();
    let c = clinic(&[], &["kv"]).await;
    let api = &c.api;
    // `notices` signed by a publisher, from a registry: remove the development copy the
    // clinic has, publish the signed one, and install it from the registry.
    let r = api
        .send(
            reqwest::Method::DELETE,
            "/api/v1/admin/plugins/notices",
            Auth::Bearer(&c.admin),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let sb = &c.sb;
    let root = sb.root();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (reg, keys, key) = (
        root.join("reg"),
        root.join("reg-keys"),
        root.join("acme.pem"),
    );
    let public = osler_ok(sb, &["keys", "generate", "--out", &s(&key)]);
    let out = osler_ok(sb, &["registry", "init", &s(&reg), "--keys", &s(&keys)]);
    let root_key = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("root_key = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_string();
    osler_ok(
        sb,
        &[
            "registry",
            "add-publisher",
            &s(&reg),
            "--keys",
            &s(&keys),
            "--name",
            "Acme",
            "--key",
            public.trim(),
            "--plugins",
            "notices",
        ],
    );
    let signed = root.join("notices.signed.osp");
    osler_ok(
        sb,
        &[
            "plugin",
            "sign",
            &s(&pk.notices),
            "--key",
            &s(&key),
            "--publisher",
            "Acme",
            "--out",
            &s(&signed),
        ],
    );
    osler_ok(
        sb,
        &[
            "registry",
            "publish",
            &s(&reg),
            &s(&signed),
            "--keys",
            &s(&keys),
        ],
    );
    // The running demo reads osler.toml at start: restart it with the registry configured.
    std::fs::write(
        root.join("osler.toml"),
        format!(
            "[[registries]]\nname = \"acme\"\nurl = \"{}\"\nroot_key = \"{root_key}\"\n",
            s(&reg)
        ),
    )
    .unwrap();
    let Clinic {
        server, admin, lee, ..
    } = c;
    server.terminate();
    let env = plugin_env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("OSLER_PLUGINS__ALLOW_UNSIGNED", "true"));
    let server = sb.serve_with_env(&env);
    let api = server.api();
    api.post(
        "/api/v1/admin/registry/install",
        &admin,
        &json!({"plugin": "notices"}),
    )
    .await
    .expect(200);
    api.enable(&admin, "notices", "main", &["kv"]).await;
    api.post(
        "/plugins/notices/api/notices",
        &lee,
        &json!({"title": "Signed data", "body": "b"}),
    )
    .await
    .expect(201);

    // The same id, unsigned, a newer version: refused, and the signed one stays live.
    let impostor = repackage(root, &pk.notices, "notices-9.0.0", |m| {
        set_key(m, "version", "\"9.0.0\"")
    });
    let r = api.install(&admin, &impostor).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("signed by 'Acme'"), "{}", r.text);
    let v = api
        .get("/api/v1/admin/plugins/notices", &admin)
        .await
        .expect(200);
    assert_eq!(v.json["version"], "0.2.0");
    assert_eq!(v.json["development"], false);
    assert_eq!(v.json["origin"]["publisher"], "Acme");
    api.get("/plugins/evil/ok", &lee).await.expect(200);
    let notices = api
        .get("/plugins/notices/api/notices", &lee)
        .await
        .expect(200);
    assert!(notices.text.contains("Signed data"));

    // Forced by an administrator, it replaces it, and the list says which is live.
    let res = api
        .client
        .post(format!(
            "{}/api/v1/admin/plugins?dev=true&force=true",
            api.base
        ))
        .bearer_auth(&admin)
        .header("content-type", "application/octet-stream")
        .body(std::fs::read(&impostor).unwrap())
        .send()
        .await
        .unwrap();
    let r = Resp::read(res).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["development"], true);
    assert_eq!(r.json["version"], "9.0.0");
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// 10. Over-declaration; install checks before compiling

#[tokio::test]
async fn over_declaring_capabilities_is_refused_before_anything_is_compiled() {
    let pk = packages();
    let c = clinic(&[], &["kv"]).await;
    // The evil component, under a manifest that asks for a capability it does not use (a
    // later version could then start using it without asking).
    let greedy = repackage(c.sb.root(), &pk.evil, "greedy", |m| {
        set_key(m, "id", "\"greedy\"").replace(
            "capabilities = [\"kv\",",
            "capabilities = [\"directory\", \"kv\",",
        )
    });
    let started = Instant::now();
    let r = c.api.install(&c.admin, &greedy).await;
    let took = started.elapsed();
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("declares the capability \\\"directory\\\"")
            || r.text.contains("declares the capability \"directory\""),
        "{}",
        r.text
    );
    // A component importing what it does not declare: refused too.
    let started2 = Instant::now();
    let r2 = c.api.install(&c.admin, &pk.undeclared).await;
    let took2 = started2.elapsed();
    assert_eq!(r2.status, 400, "{}", r2.text);
    eprintln!(
        "refused before compiling: over-declaring in {:.1} ms, under-declaring in {:.1} ms",
        took.as_secs_f64() * 1e3,
        took2.as_secs_f64() * 1e3
    );
    // Refused from the component's type alone: well under what compiling it takes (seconds
    // in a debug build).
    assert!(took < Duration::from_secs(2), "{took:?}");
    let list = c
        .api
        .get("/api/v1/admin/plugins", &c.admin)
        .await
        .expect(200);
    assert!(!list.text.contains("\"greedy\""));
    c.neighbour_answers("the refused installs").await;
}

// ---------------------------------------------------------------------------------------------
// Durable events

/// The ledger writes an entry and publishes its event in one batch; its handler refuses the
/// first delivery, and the server is killed while the event waits for its retry. After a
/// restart the event is delivered, and applied exactly once.
#[tokio::test]
async fn an_event_survives_kill_9_between_its_write_and_its_delivery() {
    let pk = packages();
    let sb = Sandbox::new();
    let mut env = plugin_env();
    env.push(("OSLER_PLUGINS__EVENT_RETRY_MS", "4000".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(2, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let lee = api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;
    api.install_enabled(&admin, &pk.ledger, "main", &["kv", "events.publish"])
        .await;
    api.post("/plugins/ledger/fail-next?n=1", &lee, &json!({}))
        .await
        .expect(204);
    let r = api
        .post("/plugins/ledger/entries?amount=5", &lee, &json!({}))
        .await
        .expect(201);
    let event = r.json["event"].as_str().unwrap().to_string();
    // The first delivery is refused; the event now waits for its retry.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let s = api.get("/plugins/ledger/state", &lee).await.expect(200);
        if s.json["deliveries"] == 1 {
            assert_eq!(s.json["applied"], json!([]));
            break;
        }
        assert!(Instant::now() < until, "no first delivery: {}", s.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill();

    let server = sb.serve_with_env(&env);
    let api = server.api();
    let lee = api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;
    let until = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let s = api.get("/plugins/ledger/state", &lee).await.expect(200);
        if s.json["applied"] != json!([]) {
            break s.json;
        }
        assert!(Instant::now() < until, "not delivered after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(state["applied"], json!([event]));
    assert_eq!(state["balance"], 5);
    // And not again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = api.get("/plugins/ledger/state", &lee).await.expect(200);
    assert_eq!(s.json["balance"], 5, "{}", s.text);
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let e = api
        .get("/api/v1/admin/plugins/ledger/events", &admin)
        .await
        .expect(200);
    assert_eq!(e.json["waiting"], 0, "{}", e.text);
    assert_eq!(e.json["parked"], json!([]));
}

// ---------------------------------------------------------------------------------------------
// Patient-scoped storage, and who a call serves

#[tokio::test]
async fn patient_data_is_checked_per_patient_and_on_the_patients_trail() {
    let c = clinic(&[], &["kv", "patient-data"]).await;
    let api = &c.api;
    let who = api.get("/plugins/evil/whoami", &c.lee).await.expect(200);
    assert_eq!(who.json["who"]["person"], "drlee");
    assert_eq!(who.json["via"], json!([]));

    let pid = c.first_patient().await;
    let put = |token: String, patient: String, text: &'static str| {
        let api = api.clone();
        async move {
            api.send(
                reqwest::Method::PUT,
                &format!("/plugins/evil/pd/{patient}/note"),
                Auth::Bearer(&token),
                Some(&json!(text)),
                &[],
            )
            .await
        }
    };
    assert_eq!(
        put(c.lee.clone(), pid.clone(), "allergic to cats")
            .await
            .status,
        204
    );
    let r = api
        .get(&format!("/plugins/evil/pd/{pid}/note"), &c.lee)
        .await
        .expect(200);
    assert!(r.text.contains("allergic to cats"));
    // A patient that does not exist.
    assert_eq!(
        put(c.lee.clone(), "no-such-patient".into(), "x")
            .await
            .status,
        404
    );
    // A researcher never; a kiosk never.
    for who in [demo::RESEARCHER, demo::KIOSK] {
        let t = api.login(who.0, who.1).await;
        let r = api.get(&format!("/plugins/evil/pd/{pid}/note"), &t).await;
        assert_eq!(r.status, 403, "{}: {}", who.0, r.text);
        assert_eq!(put(t, pid.clone(), "x").await.status, 403);
    }
    // The patient's own record only, for a patient (the demo patient is patient 0).
    let me = api.login(demo::PATIENT.0, demo::PATIENT.1).await;
    let own = api
        .search_all(&c.lee, &format!("identifier={}", demo::health_card(0)))
        .await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    put(c.lee.clone(), own.clone(), "own note").await;
    api.get(&format!("/plugins/evil/pd/{own}/note"), &me)
        .await
        .expect(200);
    if own != pid {
        let r = api.get(&format!("/plugins/evil/pd/{pid}/note"), &me).await;
        assert_eq!(r.status, 403, "{}", r.text);
    }
    // Every access is on the patient's trail, through the plugin.
    let trail = api.audit_all(&c.admin, &format!("patient={pid}")).await;
    for (action, actor, outcome) in [
        ("patient-data.write", "drlee", "success"),
        ("patient-data.read", "drlee", "success"),
        ("patient-data.read", "researcher", "denied"),
    ] {
        assert!(
            trail.iter().any(|e| e["action"] == action
                && e["actor"] == actor
                && e["outcome"] == outcome
                && e["via"] == "evil"),
            "{action} {actor} {outcome}: {trail:?}"
        );
    }
    c.neighbour_answers("patient data").await;
}
