//! Plugins end to end: the real binary, real components built from `plugins/` and
//! `tests/plugins/`, installed and toggled over the admin API while the server runs.

use serde_json::{Value, json};

use crate::support::{Api, Sandbox, Server, packages, plugin_env, rss_kib};

const ADMIN: (&str, &str) = ("admin", "osler-demo-admin");
const DRLEE: (&str, &str) = ("drlee", "osler-demo-physician");

fn demo_with_plugins(sb: &Sandbox, extra: &[(&str, &str)]) -> Server {
    let mut env = plugin_env();
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sb.demo_with_env(5, &env)
}

/// A demo clinic (sites main and north, demo users) whose server accepts development
/// packages, with tokens for the administrator and Dr. Lee.
async fn clinic(extra: &[(&str, &str)]) -> (Sandbox, Server, Api, String, String) {
    let sb = Sandbox::new();
    let server = demo_with_plugins(&sb, extra);
    let api = server.api();
    let (admin, lee) = tokens(&api).await;
    (sb, server, api, admin, lee)
}

async fn tokens(api: &Api) -> (String, String) {
    (
        api.login(ADMIN.0, ADMIN.1).await,
        api.login(DRLEE.0, DRLEE.1).await,
    )
}

#[tokio::test]
async fn a_plugin_enabled_at_one_site_answers_there_only_and_toggles_without_restart() {
    let pk = packages();
    let (_sb, _server, api, admin, lee) = clinic(&[]).await;

    let r = api.install(&admin, &pk.notices).await.expect(201);
    assert_eq!(r.json["id"], "notices");
    assert_eq!(r.json["development"], true);
    assert_eq!(r.json["state"], "ready");

    // Installed but enabled nowhere: 404 at every site.
    api.get_at("/plugins/notices/api/notices", &lee, "main")
        .await
        .expect(404);

    api.enable(&admin, "notices", "main", &["kv"]).await;
    let posted = api
        .post(
            "/plugins/notices/api/notices",
            &lee,
            &json!({"title": "Flu clinic", "body": "Saturday 9 to 12"}),
        )
        .await
        .expect(201);
    assert_eq!(posted.json["title"], "Flu clinic");
    let list = api
        .get_at("/plugins/notices/api/notices", &lee, "main")
        .await
        .expect(200);
    assert!(list.text.contains("Flu clinic"), "{}", list.text);
    api.get_at("/plugins/notices/api/notices", &lee, "north")
        .await
        .expect(404);

    // The home page lists the plugin's page at main, not at north.
    let home = api.get_at("/", &lee, "main").await;
    assert!(home.text.contains("/plugins/notices/"), "{}", home.text);
    let home = api.get_at("/", &lee, "north").await;
    assert!(!home.text.contains("/plugins/notices/"));

    api.disable(&admin, "notices", "main").await;
    api.get_at("/plugins/notices/api/notices", &lee, "main")
        .await
        .expect(404);
    let home = api.get_at("/", &lee, "main").await;
    assert!(!home.text.contains("/plugins/notices/"));

    api.enable(&admin, "notices", "main", &["kv"]).await;
    let list = api
        .get_at("/plugins/notices/api/notices", &lee, "main")
        .await
        .expect(200);
    assert!(
        list.text.contains("Flu clinic"),
        "data survives a disable: {}",
        list.text
    );

    // Plugin pages cannot run scripts and cannot set cookies.
    let page = api
        .get_at("/plugins/notices/", &lee, "main")
        .await
        .expect(200);
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(page.header("set-cookie").is_none());

    // A non-administrator cannot manage plugins.
    api.post(
        "/api/v1/admin/plugins/notices/sites/main/disable",
        &lee,
        &json!({}),
    )
    .await
    .expect(403);

    // The install was recorded as a development package.
    let audit = api.audit_all(&admin, "actor=admin").await;
    assert!(
        audit.iter().any(|e| e["action"] == "plugin.install"
            && e["detail"].as_str().unwrap_or("").contains("development")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn hostile_plugins_end_cleanly_while_a_good_one_keeps_answering() {
    let pk = packages();
    let sb = Sandbox::new();
    let server = demo_with_plugins(
        &sb,
        &[
            ("OSLER_PLUGINS__TIMEOUT_MS", "1500"),
            ("OSLER_PLUGINS__MEMORY_MIB", "64"),
            // A small response limit, so that going over it is quick even on a busy machine
            // (the deadline above is short, for the spinning plugin).
            ("OSLER_PLUGINS__RESPONSE_MIB", "2"),
        ],
    );
    let api = server.api();
    let (admin, lee) = tokens(&api).await;
    api.install_enabled(&admin, &pk.notices, "main", &["kv"])
        .await;
    api.install_enabled(
        &admin,
        &pk.hostile,
        "main",
        &["kv", "patients.read", "outbound"],
    )
    .await;
    // Warm up, then measure the host's memory.
    api.get("/plugins/hostile/ok", &lee).await.expect(200);
    api.get("/plugins/notices/api/notices", &lee)
        .await
        .expect(200);
    let before = rss_kib(server.pid());

    let cases: &[(&str, u16, &str)] = &[
        ("/plugins/hostile/spin", 504, "plugin-timeout"),
        ("/plugins/hostile/bomb", 502, "plugin-memory-limit"),
        ("/plugins/hostile/recurse", 502, "plugin-failed"),
        ("/plugins/hostile/panic", 502, "plugin-failed"),
        (
            "/plugins/hostile/huge?mib=4",
            502,
            "plugin-response-too-large",
        ),
    ];
    for (path, status, code) in cases {
        let started = std::time::Instant::now();
        let (bad, good) = tokio::join!(api.get(path, &lee), async {
            // The well-behaved plugin answers while the hostile one misbehaves.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            api.get("/plugins/notices/api/notices", &lee).await
        });
        assert_eq!(bad.status, *status, "{path}: {}", bad.text);
        assert_eq!(bad.error_code(), *code, "{path}: {}", bad.text);
        assert_eq!(good.status, 200, "notices while {path}: {}", good.text);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{path} took {:?}",
            started.elapsed()
        );
        // And the hostile plugin itself serves its next request.
        api.get("/plugins/hostile/ok", &lee).await.expect(200);
    }
    for _ in 0..3 {
        api.get("/plugins/hostile/bomb", &lee).await.expect(502);
    }
    let after = rss_kib(server.pid());
    eprintln!("host RSS before the hostile suite {before} KiB, after {after} KiB");
    assert!(
        after < before + 48 * 1024,
        "the host's memory grew from {before} KiB to {after} KiB"
    );

    // Key-value storage is private: what notices stored is not among hostile's keys.
    api.post(
        "/plugins/notices/api/notices",
        &lee,
        &json!({"title": "t", "body": "b"}),
    )
    .await
    .expect(201);
    let put = api
        .send(
            reqwest::Method::PUT,
            "/plugins/hostile/kv/mine",
            crate::support::Auth::Bearer(&lee),
            Some(&json!("x")),
            &[],
        )
        .await;
    assert!(put.status.is_success(), "{}", put.text);
    let keys = api
        .get("/plugins/hostile/kv?prefix=", &lee)
        .await
        .expect(200);
    let keys: Vec<String> = serde_json::from_value(keys.json.clone()).unwrap_or_default();
    assert_eq!(
        keys,
        vec!["mine".to_string()],
        "hostile sees only its own keys"
    );
    for probe in [
        "notices",
        "site/main/notice",
        "../notices",
        "notices\u{0}site",
    ] {
        let r = api
            .get(
                &format!("/plugins/hostile/kv/{}", crate::support::enc(probe)),
                &lee,
            )
            .await;
        assert_eq!(r.status, 404, "{probe}: {}", r.text);
    }

    // Outbound to an origin not in its manifest: denied.
    let r = api
        .get(
            "/plugins/hostile/outbound?url=https%3A%2F%2Fexample.com%2F",
            &lee,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error_code(), "denied");

    // A capability not granted at a site: denied, and audited.
    api.enable(&admin, "hostile", "north", &[]).await;
    let r = api.get_at("/plugins/hostile/kv/mine", &lee, "north").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error_code(), "denied");
    let audit = api.audit_all(&admin, "actor=drlee").await;
    assert!(
        audit.iter().any(|e| e["outcome"] == "denied"
            && e["via"] == "hostile"
            && e["site"] == "north"
            && e["resource"] == "capability/kv"),
        "{audit:?}"
    );

    // A component importing an interface its manifest does not declare is refused.
    let r = api.install(&admin, &pk.undeclared).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("osler:plugin/kv"), "{}", r.text);
    let list = api.get("/api/v1/admin/plugins", &admin).await.expect(200);
    assert!(!list.text.contains("\"undeclared\""));
}

/// The hostile fixture installed at main with `patients.read`; the id of a patient Dr. Lee
/// may read.
/// A plugin author profiling their plugin: with `[plugins] perf_map` on, the server names
/// each plugin's compiled functions in `/tmp/perf-<pid>.map`, where `perf` finds them.
#[tokio::test]
async fn with_perf_map_a_plugins_functions_are_named_for_perf() {
    let pk = packages();
    let (_sb, server, api, admin, lee) = clinic(&[("OSLER_PLUGINS__PERF_MAP", "true")]).await;
    api.install_enabled(&admin, &pk.notices, "main", &["kv"])
        .await;
    api.get("/plugins/notices/api/notices", &lee)
        .await
        .expect(200);
    let map = std::path::PathBuf::from(format!("/tmp/perf-{}.map", server.pid()));
    let text = std::fs::read_to_string(&map)
        .unwrap_or_else(|e| panic!("{} should exist: {e}", map.display()));
    let _ = std::fs::remove_file(&map);
    assert!(
        text.lines().any(|l| l.contains("notices::")),
        "the notices plugin's own functions are named: {} lines, e.g. {:?}",
        text.lines().count(),
        text.lines().take(3).collect::<Vec<_>>()
    );
}

async fn hostile_reader(api: &Api, admin: &str, lee: &str) -> String {
    api.install_enabled(admin, &packages().hostile, "main", &["patients.read"])
        .await;
    api.search_all(lee, "_count=1").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_plugin_never_reads_more_than_the_signed_in_user_may() {
    let (_sb, _server, api, admin, lee) = clinic(&[]).await;
    let id = hostile_reader(&api, &admin, &lee).await;

    let r = api
        .get(&format!("/plugins/hostile/patient/{id}"), &lee)
        .await
        .expect(200);
    assert_eq!(r.json["id"], id);

    // The researcher's role reads no identified charts; the plugin's grant changes nothing.
    let researcher = api.login("researcher", "osler-demo-research").await;
    let r = api
        .get(&format!("/plugins/hostile/patient/{id}"), &researcher)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error_code(), "denied");

    let trail = api.audit_all(&admin, &format!("patient={id}")).await;
    assert!(
        trail
            .iter()
            .any(|e| e["actor"] == "drlee" && e["via"] == "hostile" && e["outcome"] == "success"),
        "{trail:?}"
    );
    assert!(
        trail.iter().any(|e| e["actor"] == "researcher"
            && e["via"] == "hostile"
            && e["outcome"] == "denied"),
        "{trail:?}"
    );
}

#[tokio::test]
async fn plugins_call_each_other_through_typed_interfaces_at_the_same_site() {
    let pk = packages();
    let (_sb, _server, api, admin, lee) = clinic(&[]).await;
    api.install_enabled(&admin, &pk.consumer, "main", &[]).await;

    // No provider installed: the import answers `unavailable`; the rest still works.
    let r = api.get("/plugins/echo-consumer/echo?text=hi", &lee).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.error_code(), "unavailable");
    api.get("/plugins/echo-consumer/ok", &lee).await.expect(200);

    api.install_enabled(&admin, &pk.provider, "north", &["patients.read"])
        .await;
    // Enabled at another site only: still unavailable at main.
    let r = api
        .get_at("/plugins/echo-consumer/echo?text=hi", &lee, "main")
        .await;
    assert_eq!(r.status, 503, "{}", r.text);

    api.enable(&admin, "echo-provider", "main", &["patients.read"])
        .await;
    let r = api
        .get("/plugins/echo-consumer/echo?text=hi", &lee)
        .await
        .expect(200);
    assert_eq!(r.json["echo"], "hi");

    // The provider reads with the physician's permissions ∩ its own grant, audited with both.
    let id = api.search_all(&lee, "_count=1").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.get(&format!("/plugins/echo-consumer/patient/{id}"), &lee)
        .await
        .expect(200);
    let trail = api.audit_all(&admin, &format!("patient={id}")).await;
    assert!(
        trail
            .iter()
            .any(|e| e["via"] == "echo-consumer>echo-provider" && e["actor"] == "drlee"),
        "{trail:?}"
    );
    let researcher = api.login("researcher", "osler-demo-research").await;
    let r = api
        .get(&format!("/plugins/echo-consumer/patient/{id}"), &researcher)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);

    // Without its grant at main the provider is denied, whoever asks.
    api.enable(&admin, "echo-provider", "main", &[]).await;
    let r = api
        .get(&format!("/plugins/echo-consumer/patient/{id}"), &lee)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
}

/// What a plugin read is on the trail before a plugin it calls runs, so that nothing it passes
/// on can leave through the provider unaudited: the consumer's own read of a record comes
/// before the read it then asks the provider for.
#[tokio::test]
async fn a_callers_reads_are_on_the_trail_before_the_provider_it_calls_runs() {
    let pk = packages();
    let (_sb, _server, api, admin, lee) = clinic(&[]).await;
    api.install_enabled(&admin, &pk.consumer, "main", &["patients.read"])
        .await;
    api.install_enabled(&admin, &pk.provider, "main", &["patients.read"])
        .await;
    let id = api.search_all(&lee, "_count=1").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api
        .get(
            &format!("/plugins/echo-consumer/patient/{id}/read-then-ask"),
            &lee,
        )
        .await
        .expect(200);
    assert_eq!(r.json["same"], true, "{}", r.text);
    let trail = api.audit_all(&admin, &format!("patient={id}")).await;
    let seq = |via: &str| {
        trail
            .iter()
            .find(|e| e["action"] == "patient.read" && e["via"] == via)
            .and_then(|e| e["seq"].as_u64())
            .unwrap_or_else(|| panic!("no read via {via}: {trail:?}"))
    };
    assert!(
        seq("echo-consumer") < seq("echo-consumer>echo-provider"),
        "{trail:?}"
    );
}

#[tokio::test]
async fn a_plugin_that_fails_to_load_is_marked_failed_and_the_others_start() {
    let pk = packages();
    let (sb, server, api, admin, _lee) = clinic(&[]).await;
    api.install_enabled(&admin, &pk.notices, "main", &["kv"])
        .await;
    api.install_enabled(&admin, &pk.hostile, "main", &["kv"])
        .await;
    server.terminate();

    // Tamper with hostile's component on disk.
    let dir = sb.data_dir().join("plugins").join("hostile");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();

    let mut env = plugin_env();
    env.push(("OSLER_PLUGINS__ALLOW_UNSIGNED", "true".into()));
    let server = sb.serve_with_env(
        &env.iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let api = server.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    let lee = api.login(DRLEE.0, DRLEE.1).await;
    api.get("/plugins/notices/api/notices", &lee)
        .await
        .expect(200);
    let r = api.get("/plugins/hostile/ok", &lee).await;
    assert_eq!(r.status, 503, "{}", r.text);
    let list = api
        .get("/api/v1/admin/plugins/hostile", &admin)
        .await
        .expect(200);
    assert_eq!(list.json["state"], "failed");
    assert!(
        list.json["failure"]
            .as_str()
            .unwrap_or("")
            .contains("sha256"),
        "{}",
        list.text
    );
    // Start-up took every compiled component from the cache.
    assert!(
        server.log_text().contains("compiled=0"),
        "{}",
        server.log_text()
    );
}

#[tokio::test]
async fn bad_packages_are_refused_with_a_clear_message_and_change_nothing() {
    let pk = packages();
    let (sb, _server, api, admin, _lee) = clinic(&[]).await;

    let dir = sb.root().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let not_a_package = dir.join("x.osp");
    std::fs::write(&not_a_package, b"hello").unwrap();
    let r = api.install(&admin, &not_a_package).await;
    assert_eq!(r.status, 400, "{}", r.text);

    // A manifest error names the line and the key.
    let mut archive = tar::Archive::new(std::fs::File::open(&pk.notices).unwrap());
    let mut wasm = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == "plugin.wasm" {
            std::io::Read::read_to_end(&mut e, &mut wasm).unwrap();
        }
    }
    let manifest = "id = \"notices\"\nname = \"N\"\nversion = \"0.1.0\"\npublisher = \"p\"\napi = \"^0.1\"\ncapabilities = [\"kv\", \"everything\"]\n";
    let bad = dir.join("bad.osp");
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("plugin.toml", manifest.as_bytes()),
        ("plugin.wasm", &wasm[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    std::fs::write(&bad, b.into_inner().unwrap()).unwrap();
    let r = api.install(&admin, &bad).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("line 6") && r.text.contains("everything"),
        "{}",
        r.text
    );

    let list = api.get("/api/v1/admin/plugins", &admin).await.expect(200);
    assert_eq!(list.json["plugins"], Value::Array(vec![]));
}

/// The plugin author's path in `sdk/README.md`: scaffold, build, install, enable, use.
#[tokio::test]
async fn a_new_plugin_from_the_template_builds_installs_and_answers() {
    packages(); // builds the SDK once for wasm32-wasip2; the template reuses it
    let sb = Sandbox::new();
    let dir = sb.root().join("hello-clinic");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_osler"))
        .args(["plugin", "new", "hello-clinic", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("plugin.toml").exists() && dir.join("src/lib.rs").exists());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_osler"))
        .args(["plugin", "build"])
        .arg(&dir)
        .env(
            "CARGO_TARGET_DIR",
            crate::support::workspace()
                .join("target")
                .join("e2e-plugins"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let package = stdout
        .lines()
        .find_map(|l| l.rsplit_once(": ").filter(|_| l.starts_with("Built ")))
        .map(|(_, p)| std::path::PathBuf::from(p.trim()))
        .expect("package path");

    let server = demo_with_plugins(&sb, &[]);
    let api = server.api();
    let (admin, lee) = tokens(&api).await;
    let r = api.install(&admin, &package).await.expect(201);
    let caps: Vec<String> = serde_json::from_value(r.json["capabilities"].clone()).unwrap();
    let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
    api.enable(&admin, "hello-clinic", "main", &caps).await;
    let page = api.get("/plugins/hello-clinic/", &lee).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let home = api.get("/", &lee).await;
    assert!(
        home.text.contains("/plugins/hello-clinic/"),
        "{}",
        home.text
    );
}

#[tokio::test]
async fn narrow_capabilities_give_exactly_their_narrow_view() {
    let pk = packages();
    let (_sb, _server, api, admin, lee) = clinic(&[]).await;
    api.install_enabled(
        &admin,
        &pk.hostile,
        "main",
        &[
            "patients.read",
            "patients.deidentified",
            "patients.match",
            "directory",
            "outbound",
        ],
    )
    .await;
    let p = api.search_all(&lee, "_count=1").await[0].clone();
    let id = p["id"].as_str().unwrap().to_string();
    let card = crate::support::card_of(&p).unwrap();
    let version = p["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|i| i["extension"][0]["valueString"].as_str())
        .unwrap_or("")
        .to_string();
    let birth = p["birthDate"].as_str().unwrap().to_string();

    // De-identified: the researcher sees no names or identifiers, under pseudonyms.
    let researcher = api.login("researcher", "osler-demo-research").await;
    let r = api
        .get("/plugins/hostile/deidentified", &researcher)
        .await
        .expect(200);
    let first = &r.json["patients"][0];
    assert!(first["id"].as_str().unwrap().starts_with("p-"), "{first}");
    assert!(
        first.get("name").is_none() && first.get("identifier").is_none(),
        "{first}"
    );
    // Birth year only; from 90 up, no birth date but the age group `90+`.
    match first["birthDate"].as_str() {
        Some(year) => assert_eq!(year.len(), 4, "{first}"),
        None => assert_eq!(first["extension"][0]["valueString"], "90+", "{first}"),
    }
    assert!(!r.text.contains(&card) && !r.text.contains(&id));
    // A physician's role has no de-identified access (it reads charts through patients.read).
    api.get("/plugins/hostile/deidentified", &lee)
        .await
        .expect(403);

    // Match: the kiosk learns an id for the right card + birth date, nothing otherwise.
    let kiosk = api.login("kiosk.main", "osler-demo-kiosk").await;
    let q = |b: &str| format!("/plugins/hostile/match?number={card}&version={version}&birth={b}");
    let r = api.get(&q(&birth), &kiosk).await.expect(200);
    assert_eq!(r.json["id"], id);
    let r = api.get(&q("1901-01-01"), &kiosk).await.expect(200);
    assert_eq!(r.json["id"], Value::Null);
    api.get(&format!("/plugins/hostile/patient/{id}"), &kiosk)
        .await
        .expect(403);

    // Directory: staff of the site only, never kiosks or patients.
    let r = api.get("/plugins/hostile/staff", &lee).await.expect(200);
    let users: Vec<&str> = r.json["staff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"].as_str().unwrap())
        .collect();
    assert!(
        users.contains(&"drlee") && users.contains(&"nurse.kim"),
        "{users:?}"
    );
    assert!(
        !users.contains(&"kiosk.main") && !users.contains(&"drpatel"),
        "{users:?}"
    );

    // Nothing survives between two requests inside the sandbox.
    for _ in 0..3 {
        let r = api.get("/plugins/hostile/counter", &lee).await.expect(200);
        assert_eq!(r.json["count"], 1);
    }

    // The clock is in the clinic's time zone.
    let r = api.get("/plugins/hostile/clock", &lee).await.expect(200);
    assert_eq!(r.json["timezone"], "America/Toronto");

    // A listed origin is tried (and nothing listens there): unavailable, not denied.
    let r = api
        .get(
            "/plugins/hostile/outbound?url=http%3A%2F%2F127.0.0.1%3A9%2F",
            &lee,
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.error_code(), "unavailable");

    // A plugin's own audit entries carry its name and the user.
    api.get("/plugins/hostile/audit", &lee).await.expect(200);
    let trail = api.audit_all(&admin, "actor=drlee").await;
    assert!(
        trail
            .iter()
            .any(|e| e["action"] == "hostile.test" && e["via"] == "hostile"),
        "{trail:?}"
    );
}

#[tokio::test]
async fn events_reach_the_subscribers_enabled_at_the_site() {
    let pk = packages();
    let (_sb, _server, api, admin, lee) = clinic(&[]).await;
    api.install_enabled(&admin, &pk.consumer, "main", &["events.publish"])
        .await;
    api.install_enabled(&admin, &pk.provider, "main", &["kv"])
        .await;
    api.get("/plugins/echo-provider/last-event", &lee)
        .await
        .expect(404);

    api.post("/plugins/echo-consumer/ping?text=hello", &lee, &json!({}))
        .await
        .expect(202);
    let mut got = None;
    for _ in 0..100 {
        let r = api.get("/plugins/echo-provider/last-event", &lee).await;
        if r.status == 200 {
            got = Some(r.json);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = got.expect("the event was delivered");
    assert_eq!(got["topic"], "echo-consumer.pinged");
    assert_eq!(got["source"], "echo-consumer");
    assert_eq!(got["site"], "main");
    assert_eq!(got["payload"]["text"], "hello");

    // Without the grant, publishing is denied.
    api.enable(&admin, "echo-consumer", "main", &[]).await;
    let r = api
        .post("/plugins/echo-consumer/ping?text=x", &lee, &json!({}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
}

#[tokio::test]
async fn settings_are_typed_per_site_and_reach_the_plugin() {
    let pk = packages();
    let (_sb, _server, api, admin, lee) = clinic(&[]).await;
    api.install_enabled(&admin, &pk.notices, "main", &["kv"])
        .await;
    let path = "/api/v1/admin/plugins/notices/sites/main/config";
    api.put(
        path,
        &admin,
        &json!({"banner": "Flu clinic Saturday"}),
        None,
    )
    .await
    .expect(200);
    let page = api.get("/plugins/notices/", &lee).await.expect(200);
    assert!(page.text.contains("Flu clinic Saturday"), "{}", page.text);

    let r = api.put(path, &admin, &json!({"banner": 3}), None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = api.put(path, &admin, &json!({"colour": "red"}), None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("banner"),
        "names the settings there are: {}",
        r.text
    );
    // The value stayed.
    let page = api.get("/plugins/notices/", &lee).await.expect(200);
    assert!(page.text.contains("Flu clinic Saturday"));
}

#[tokio::test]
async fn the_command_line_manages_plugins_of_a_stopped_server() {
    let pk = packages();
    let sb = Sandbox::new();
    let server = demo_with_plugins(&sb, &[]);
    server.terminate();
    let pkg = pk.notices.display().to_string();

    let out = sb.osler(&["plugin", "install", &pkg], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--dev"), "says what to do: {err}");

    sb.osler_ok(&["plugin", "install", "--dev", &pkg], &[]);
    sb.osler_ok(&["plugin", "enable", "notices", "--site", "main"], &[]);
    sb.osler_ok(&["plugin", "grant", "notices", "--site", "main", "kv"], &[]);
    sb.osler_ok(
        &[
            "plugin",
            "config",
            "notices",
            "--site",
            "main",
            "banner=Closed Monday",
        ],
        &[],
    );
    let out = sb.osler(
        &[
            "plugin",
            "grant",
            "notices",
            "--site",
            "main",
            "patients.read",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not ask for patients.read"));
    let list = sb.osler_ok(&["plugin", "list"], &[]);
    assert!(
        list.contains("notices 0.2.0") && list.contains("development"),
        "{list}"
    );
    assert!(list.contains("main: enabled, granted: kv"), "{list}");

    let env = plugin_env();
    let server = sb.serve_with_env(
        &env.iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let api = server.api();
    let lee = api.login(DRLEE.0, DRLEE.1).await;
    let page = api.get("/plugins/notices/", &lee).await.expect(200);
    assert!(page.text.contains("Closed Monday"));
}

/// In a browser: the plugin's form posts back with the session cookie and its `_csrf` field;
/// the same post without the field (a forged cross-site form) is refused and stores nothing.
#[tokio::test]
async fn a_plugin_form_needs_the_sessions_csrf_token() {
    let pk = packages();
    let (_sb, server, api, admin, _lee) = clinic(&[]).await;
    api.install_enabled(&admin, &pk.notices, "main", &["kv"])
        .await;

    let login = api.try_login(DRLEE.0, DRLEE.1).await.expect(200);
    let token = login.json["token"].as_str().unwrap().to_string();
    let csrf = login.json["csrf"].as_str().unwrap_or_default().to_string();
    let page = api
        .send(
            reqwest::Method::GET,
            "/plugins/notices/",
            crate::support::Auth::Cookie(&token, None),
            None,
            &[],
        )
        .await
        .expect(200);
    assert!(page.text.contains("name=\"_csrf\""), "{}", page.text);
    let csrf = if csrf.is_empty() {
        let at = page.text.find("name=\"_csrf\" value=\"").unwrap() + 20;
        page.text[at..at + page.text[at..].find('"').unwrap()].to_string()
    } else {
        csrf
    };
    let post = |body: String| {
        api.client
            .post(server.url("/plugins/notices/"))
            .header("cookie", format!("osler_session={token}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let forged = post("title=Forged&body=from+elsewhere".into())
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let ok = post(format!("title=Real&body=from+the+page&_csrf={csrf}"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 303, "{:?}", ok.text().await);
    let lee = api.login(DRLEE.0, DRLEE.1).await;
    let list = api
        .get("/plugins/notices/api/notices", &lee)
        .await
        .expect(200);
    assert!(
        list.text.contains("Real") && !list.text.contains("Forged"),
        "{}",
        list.text
    );
}

/// A plugin's reads are made durable once, before its answer leaves: the answer is never
/// ahead of the trail, even when the server dies the moment it is sent.
/// A plugin's reads are put on the trail together when its call lets something out; a call
/// that reads a chart and then never answers — it runs past its deadline, or panics — still
/// leaves the read on the trail.
#[tokio::test]
async fn a_chart_read_is_on_the_trail_even_when_the_plugin_never_answers() {
    let (_sb, _server, api, admin, lee) = clinic(&[("OSLER_PLUGINS__TIMEOUT_MS", "1500")]).await;
    let id = hostile_reader(&api, &admin, &lee).await;
    let reads = || async {
        api.audit_all(&admin, &format!("patient={id}"))
            .await
            .into_iter()
            .filter(|e| {
                e["actor"] == "drlee"
                    && e["action"] == "patient.read"
                    && e["via"] == "hostile"
                    && e["outcome"] == "success"
            })
            .count()
    };
    for (then, status) in [("spin", 504), ("panic", 502)] {
        let before = reads().await;
        let r = api
            .get(&format!("/plugins/hostile/patient/{id}?then={then}"), &lee)
            .await;
        assert_eq!(r.status, status, "{then}: {}", r.text);
        assert!(!r.text.contains(&id), "{then}: nothing of the chart left");
        // The entry is recorded as the sandbox goes; it is on disk with the next flush.
        let mut after = reads().await;
        for _ in 0..50 {
            if after > before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            after = reads().await;
        }
        assert_eq!(after, before + 1, "{then}: the read is on the trail");
    }
}

#[tokio::test]
async fn a_plugins_chart_read_is_on_the_trail_even_if_the_server_dies_after_answering() {
    let (sb, server, api, admin, lee) = clinic(&[]).await;
    let id = hostile_reader(&api, &admin, &lee).await;
    api.get(&format!("/plugins/hostile/patient/{id}"), &lee)
        .await
        .expect(200);
    server.kill();

    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.serve_with_env(&env);
    let api = server.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    let trail = api.audit_all(&admin, &format!("patient={id}")).await;
    assert!(
        trail.iter().any(|e| e["actor"] == "drlee"
            && e["action"] == "patient.read"
            && e["via"] == "hostile"
            && e["outcome"] == "success"),
        "{trail:?}"
    );
}
