//! The research sandbox (issue 17), end to end with the real binary and the research fixture
//! `tests/plugins/cohort`, installed twice (as `cohort`, with small-cell protection at 5 and a
//! small fuel budget, and as `cohort-b`, without) over the demo's 300 patients plus three of
//! the test's own in the postal area `X0A`.
//!
//! One server serves every assertion: isolation (404 for everyone it is not placed for), what
//! a research plugin sees (de-identified records only; `not-found` for a real id; `denied` for
//! publishing), pseudonyms (stable per plugin, different between plugins), determinism (same
//! table, same fuel), fuel exhaustion (the budget in the error; the host keeps serving),
//! small-cell suppression, the run records and their audit entries, and removal (storage
//! wiped). Install-time refusals of components that import more than the research world
//! allows come first, through the command line.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Api, Sandbox, demo, hcn, package, packages, plugin_env, repackage, set_key};

const FUEL: u64 = 200_000_000;

async fn login_at(api: &Api, user: &str, password: &str, site: &str) -> String {
    let r = api
        .post(
            "/api/v1/auth/login",
            "",
            &json!({"username": user, "password": password, "site": site}),
        )
        .await
        .expect(200);
    r.json["token"].as_str().expect("token").to_string()
}

fn run_path(plugin: &str) -> String {
    format!("/api/v1/research/{plugin}/runs")
}

/// The rows of a run's result whose first cell is the text `what`.
fn rows<'a>(run: &'a Value, what: &str) -> Vec<&'a Vec<Value>> {
    run["result"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r.as_array().expect("a row"))
        .filter(|r| r[0]["value"] == what)
        .collect()
}

fn cell<'a>(run: &'a Value, what: &str, col: usize) -> &'a Value {
    &rows(run, what)
        .first()
        .unwrap_or_else(|| panic!("no row {what} in {run}"))[col]
}

fn osler_err(sb: &Sandbox, args: &[&str]) -> String {
    let out = sb.osler(args, &[]);
    assert!(!out.status.success(), "osler {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn research_sandbox_isolates_deidentifies_meters_and_records_every_run() {
    let cohort = package("tests/plugins/cohort");
    let sb = Sandbox::new();
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Seed the demo (300 patients), then set the sandbox up from the command line.
    drop(sb.demo_with_env(300, &env));
    sb.add_user(
        "res2",
        "researcher",
        &["main", "north"],
        "research-two-pass",
        &[],
    );

    // Refused at install, before compiling: a component importing more than the research
    // world (the clinical fixture `evil` reads identified records, writes, publishes, calls
    // out), whatever its manifest says.
    let evil = &packages().evil;
    let e = osler_err(
        &sb,
        &[
            "plugin",
            "install",
            "--sandbox",
            &evil.display().to_string(),
        ],
    );
    assert!(
        e.contains(
            "a research plugin may ask only for the capabilities kv and patients.deidentified"
        ),
        "{e}"
    );
    let disguised = repackage(sb.root(), evil, "evil-disguised", |m| {
        let m = set_key(m, "capabilities", r#"["kv", "patients.deidentified"]"#);
        let m: Vec<&str> = m
            .lines()
            .filter(|l| !l.starts_with("outbound = "))
            .collect();
        m.join("\n")
            .split("[events]")
            .next()
            .expect("manifest")
            .to_string()
    });
    let e = osler_err(
        &sb,
        &[
            "plugin",
            "install",
            "--sandbox",
            &disguised.display().to_string(),
        ],
    );
    assert!(e.contains("a research plugin may import only"), "{e}");

    let fuel = FUEL.to_string();
    let cohort_s = cohort.display().to_string();
    let out = sb.osler_ok(
        &[
            "plugin",
            "install",
            "--sandbox",
            &cohort_s,
            "--researcher",
            "researcher",
            "--site",
            "main",
            "--fuel",
            &fuel,
            "--threshold",
            "5",
        ],
        &env,
    );
    assert!(out.contains("Installed research plugin cohort"), "{out}");
    let cohort_b = repackage(sb.root(), &cohort, "cohort-b", |m| {
        set_key(m, "id", "\"cohort-b\"")
    });
    sb.osler_ok(
        &[
            "plugin",
            "install",
            "--sandbox",
            &cohort_b.display().to_string(),
            "--researcher",
            "researcher",
            "--researcher",
            "res2",
            "--site",
            "main",
        ],
        &env,
    );

    let server = sb.serve_with_env(&env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let lee = api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;
    let researcher = api.login(demo::RESEARCHER.0, demo::RESEARCHER.1).await;
    let res2_main = login_at(&api, "res2", "research-two-pass", "main").await;
    let res2_north = login_at(&api, "res2", "research-two-pass", "north").await;

    // Three patients of the test's own in X0A, identified in every way a chart can be.
    let mut ids = Vec::new();
    for (i, (family, born)) in [
        ("Qaqqaq", "1930-02-01"),
        ("Anawak", "1971-05-06"),
        ("Kusugak", "1988-09-10"),
    ]
    .into_iter()
    .enumerate()
    {
        let p = json!({
            "resourceType": "Patient",
            "identifier": [{"system": crate::support::ON_HCN_SYSTEM, "value": hcn(170 + i as u64)}],
            "name": [{"use": "official", "family": family, "given": ["Ningiukulu"]}],
            "telecom": [{"system": "phone", "value": format!("867-555-01{i:02}")}],
            "gender": "female",
            "birthDate": born,
            "address": [{"line": ["17 Tundra Lane"], "city": "Iqaluit", "state": "NU", "postalCode": "X0A 0H0"}],
        });
        ids.push(crate::support::id_of(&api.create(&lee, &p).await));
    }

    // Invisible to everyone it is not placed for: 404, like something that does not exist.
    let count = json!({"parameters": {"postalPrefix": "X0A"}});
    for (who, token, plugin, lists) in [
        ("a physician", &lee, "cohort", 404),
        // Administrators see every run's record, but cannot run it.
        ("an administrator", &admin, "cohort", 200),
        ("a researcher not named", &res2_main, "cohort", 404),
        (
            "a named researcher at another site",
            &res2_north,
            "cohort-b",
            404,
        ),
    ] {
        let r = api.post(&run_path(plugin), token, &count).await;
        assert_eq!(r.status, 404, "{who}: {}", r.text);
        let r = api.get(&run_path(plugin), token).await;
        assert_eq!(r.status, lists, "{who} lists runs: {}", r.text);
    }
    api.get("/api/v1/admin/plugins/cohort", &admin)
        .await
        .expect(404);
    assert_eq!(api.get("/plugins/cohort/", &admin).await.status, 404);
    let mine = api.get("/api/v1/research", &researcher).await.expect(200);
    let names: Vec<&str> = mine
        .json
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cohort", "cohort-b"]);
    assert_eq!(
        api.get("/api/v1/research", &lee).await.expect(200).json,
        json!([])
    );
    assert_eq!(
        api.get("/api/v1/research", &res2_north)
            .await
            .expect(200)
            .json,
        json!([])
    );

    // What it sees: de-identified records only; a real id finds nothing; publishing is denied.
    let probe = json!({"parameters": {"mode": "probe", "postalPrefix": "X0A", "realId": ids[1]}});
    let run = api
        .post(&run_path("cohort"), &researcher, &probe)
        .await
        .expect(201)
        .json;
    let records = rows(&run, "record");
    assert_eq!(records.len(), 3, "{run}");
    let mut pseudonyms_a = Vec::new();
    for r in &records {
        let seen = r[2]["value"].as_str().expect("record text");
        for secret in [
            "Qaqqaq",
            "Anawak",
            "Kusugak",
            "Ningiukulu",
            "867-555",
            "Tundra",
            "Iqaluit",
            "0H0",
            "\"NU\"",
        ] {
            assert!(!seen.contains(secret), "{secret} leaked: {seen}");
        }
        for id in &ids {
            assert!(!seen.contains(id.as_str()), "a real id leaked: {seen}");
        }
        for i in 0..3 {
            assert!(
                !seen.contains(&hcn(170 + i)),
                "a health card leaked: {seen}"
            );
        }
        let rec: Value = serde_json::from_str(seen).expect("JSON");
        assert_eq!(rec["address"], json!([{"postalCode": "X0A"}]));
        match rec["birthDate"].as_str() {
            Some(y) => assert!(y == "1971" || y == "1988", "{rec}"),
            // Born 1930: over 89, grouped.
            None => assert_eq!(rec["extension"][0]["valueString"], "90+", "{rec}"),
        }
        assert_eq!(
            r[3]["value"], r[2]["value"],
            "get by pseudonym gives the same record"
        );
        pseudonyms_a.push(r[1]["value"].as_str().expect("pseudonym").to_string());
    }
    assert_eq!(
        cell(&run, "real-id", 2)["value"],
        "error not-found",
        "{run}"
    );
    assert_eq!(cell(&run, "publish", 2)["value"], "error denied", "{run}");
    assert_eq!(cell(&run, "kv", 2)["value"], "stored (was empty)", "{run}");
    assert_eq!(run["patientsRead"], 303);

    // Pseudonyms: stable across runs, different for another research plugin.
    let again = api
        .post(&run_path("cohort"), &researcher, &probe)
        .await
        .expect(201)
        .json;
    let pseudonyms_again: Vec<String> = rows(&again, "record")
        .iter()
        .map(|r| r[1]["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pseudonyms_again, pseudonyms_a);
    let other = api
        .post(&run_path("cohort-b"), &researcher, &probe)
        .await
        .expect(201)
        .json;
    let pseudonyms_b: Vec<String> = rows(&other, "record")
        .iter()
        .map(|r| r[1]["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pseudonyms_b.len(), 3);
    assert!(
        pseudonyms_b.iter().all(|p| !pseudonyms_a.contains(p)),
        "{pseudonyms_a:?} {pseudonyms_b:?}"
    );

    // Deterministic: the same parameters and time on the same data, the same table and fuel.
    let fixed = json!({"parameters": {}, "asOf": "2026-06-01T12:00:00Z"});
    let one = api
        .post(&run_path("cohort"), &researcher, &fixed)
        .await
        .expect(201)
        .json;
    let two = api
        .post(&run_path("cohort"), &researcher, &fixed)
        .await
        .expect(201)
        .json;
    assert_eq!(one["result"], two["result"]);
    assert_eq!(one["fuelUsed"], two["fuelUsed"]);
    assert_eq!(one["peakMemoryBytes"], two["peakMemoryBytes"]);
    assert!(one["fuelUsed"].as_u64().unwrap() > 0);
    // Its clock read the run's time.
    assert_eq!(cell(&one, "clock", 2)["value"], 1_780_315_200_000.0);
    assert_eq!(
        cell(&one, "all", 1),
        &json!({"type": "count", "value": 303})
    );
    println!(
        "research figures: a cohort count over {} patients used {} fuel, {} bytes of memory, {} ms",
        one["patientsRead"], one["fuelUsed"], one["peakMemoryBytes"], one["durationMs"]
    );

    // Small cells: 3 in X0A is suppressed under the threshold of 5, and shown without one.
    let small = api
        .post(&run_path("cohort"), &researcher, &count)
        .await
        .expect(201)
        .json;
    assert_eq!(
        cell(&small, "all", 1),
        &json!({"type": "suppressed"}),
        "{small}"
    );
    assert_eq!(cell(&small, "female", 1), &json!({"type": "suppressed"}));
    assert_eq!(small["threshold"], 5);
    assert!(small["suppressed"].as_u64().unwrap() >= 1);
    // No count below the threshold left the sandbox.
    let counts: Vec<u64> = small["result"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .filter(|c| c["type"] == "count")
        .map(|c| c["value"].as_u64().unwrap())
        .collect();
    assert!(counts.iter().all(|n| *n >= 5), "{small}");
    let shown = api
        .post(&run_path("cohort-b"), &res2_main, &count)
        .await
        .expect(201)
        .json;
    assert_eq!(
        cell(&shown, "all", 1),
        &json!({"type": "count", "value": 3})
    );

    // An administrator turns small-cell protection on for cohort-b: the same count is now
    // suppressed (budgets and researchers as set; absent ones fall back to the defaults).
    let set = api
        .put(
            "/api/v1/admin/research/cohort-b",
            &admin,
            &json!({"researchers": ["researcher", "res2"], "sites": ["main"], "threshold": 5}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(
        (set["threshold"].as_u64(), set["fuel"].as_u64()),
        (Some(5), Some(1_000_000_000))
    );
    let now_small = api
        .post(&run_path("cohort-b"), &res2_main, &count)
        .await
        .expect(201)
        .json;
    assert_eq!(cell(&now_small, "all", 1), &json!({"type": "suppressed"}));
    api.put(
        "/api/v1/admin/research/cohort-b",
        &lee,
        &json!({"threshold": 1}),
        None,
    )
    .await
    .expect(403);

    // The researcher's pages: their plugins, a run's result with its figures; nobody else's.
    let page = api.get("/research", &researcher).await.expect(200);
    assert!(
        page.text.contains("Cohort counter (test fixture)"),
        "{}",
        page.text
    );
    let page = api
        .get(
            &format!("/research/cohort/runs/{}", small["id"].as_str().unwrap()),
            &researcher,
        )
        .await
        .expect(200);
    assert!(
        page.text.contains("suppressed") && page.text.contains("Patients read"),
        "{}",
        page.text
    );
    assert_eq!(api.get("/research/cohort", &lee).await.status, 404);

    // Fuel: a run that loops is stopped at its budget, which the error states; the host
    // keeps serving (the next run works).
    let burn = api
        .post(
            &run_path("cohort"),
            &researcher,
            &json!({"parameters": {"mode": "burn"}}),
        )
        .await;
    assert_eq!(burn.status, 422, "{}", burn.text);
    assert_eq!(burn.error_code(), "fuel-exhausted");
    assert!(burn.text.contains(&FUEL.to_string()), "{}", burn.text);
    api.get("/healthz", "").await.expect(200);
    api.post(&run_path("cohort"), &researcher, &count)
        .await
        .expect(201);

    // The records: the researcher sees their own runs, administrators everyone's.
    let theirs = api
        .get(&run_path("cohort-b"), &researcher)
        .await
        .expect(200)
        .json;
    assert!(
        theirs
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["user"] == "researcher")
    );
    let all_b = api
        .get(&run_path("cohort-b"), &admin)
        .await
        .expect(200)
        .json;
    assert!(
        all_b
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["user"] == "res2")
    );
    let runs = api
        .get(&run_path("cohort"), &researcher)
        .await
        .expect(200)
        .json;
    let failed = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "fuel-exhausted")
        .expect("the burnt run");
    assert_eq!(failed["fuelUsed"].as_u64(), Some(FUEL));
    assert_eq!(failed["budget"]["fuel"].as_u64(), Some(FUEL));
    println!(
        "research figures: a run stopped at its budget of {} fuel after {} ms",
        failed["fuelUsed"], failed["durationMs"]
    );
    let id = failed["id"].as_str().unwrap();
    api.get(&format!("{}/{id}", run_path("cohort")), &researcher)
        .await
        .expect(200);
    api.get(&format!("{}/{id}", run_path("cohort")), &res2_main)
        .await
        .expect(404);

    // And each run is on the audit trail with its figures.
    let trail = api.audit_all(&admin, "actor=researcher").await;
    let run_entries: Vec<&Value> = trail
        .iter()
        .filter(|e| e["action"] == "research.run")
        .collect();
    assert_eq!(
        run_entries.len(),
        runs.as_array().unwrap().len() + theirs.as_array().unwrap().len()
    );
    let burnt = run_entries
        .iter()
        .find(|e| e["resource"] == format!("ResearchRun/{id}"))
        .expect("the burnt run's entry");
    let detail = burnt["detail"].as_str().unwrap();
    for want in [
        "plugin cohort 0.1.0 sha256 ",
        &format!("budget {FUEL} fuel, 32 MiB"),
        &format!("fuel used {FUEL}"),
        "patients read ",
        "outcome fuel-exhausted",
    ] {
        assert!(detail.contains(want), "{want} not in {detail}");
    }
    assert_eq!(burnt["outcome"], "failure");

    // Removed with its storage: reinstalled, it starts empty.
    let r = api
        .send(
            reqwest::Method::DELETE,
            "/api/v1/admin/research/cohort",
            crate::support::Auth::Bearer(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    api.post(&run_path("cohort"), &researcher, &probe)
        .await
        .expect(404);
    reinstall(&api, &admin, &cohort).await;
    let fresh = api
        .post(&run_path("cohort"), &researcher, &probe)
        .await
        .expect(201)
        .json;
    assert_eq!(
        cell(&fresh, "kv", 2)["value"],
        "stored (was empty)",
        "{fresh}"
    );
}

async fn reinstall(api: &Api, admin: &str, package: &Path) {
    let bytes = std::fs::read(package).expect("package");
    let res = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/admin/research?researchers=researcher&sites=main",
            api.base
        ))
        .bearer_auth(admin)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .expect("install");
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
}
