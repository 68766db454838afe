//! Clinical resources end to end, and the interfaces the chart's plugins export for others:
//! the real binary, `plugins/resources`, `drugref`, `prescribing` and `encounter` built with
//! `osler plugin build` and installed over the admin API.
//!
//! - `osler:prescribing/record` and `osler:encounter/problems`, read by a fixture plugin
//!   (`tests/plugins/record-reader`) for a physician, a nurse, reception and a patient;
//! - the resources library: search by drug class and by text, the prescribing page's
//!   "resources for this drug class", a site's own additions, edits, retirements and pins
//!   (another site unaffected), refused input changing nothing, the chart panel, and
//!   prescribing working on without it.

use serde_json::{Value, json};

use crate::support::{
    Api, Auth, Resp, Sandbox, Server, demo, enc, hcn, id_of, package, patient, plugin_env,
};

const PRESCRIBING_CAPS: &[&str] = &["kv", "patients.read", "patient-data", "events.publish"];
const ENCOUNTER_CAPS: &[&str] = &["patient-data", "kv", "directory", "patients.read"];

/// Seed products of the drug reference (sample data, not real DINs).
const RAMIPRIL: &str = "99000061";
const METFORMIN: &str = "99000101";
const ATORVASTATIN: &str = "99000091";

struct Clinic {
    _sb: Sandbox,
    _server: Server,
    api: Api,
    admin: String,
    lee: String,
}

/// A demo clinic with `plugins` (package dir, capabilities) enabled at `sites`.
async fn clinic(plugins: &[(&str, &[&str])], sites: &[&str]) -> Clinic {
    let packages: Vec<_> = plugins.iter().map(|(dir, _)| package(dir)).collect();
    let sb = Sandbox::new();
    // Patient-data calls wait for their durable audit entries; on a shared disk under the
    // parallel suite that can take seconds. These tests are not about deadlines.
    let mut env = plugin_env();
    env.push(("OSLER_PLUGINS__TIMEOUT_MS", "20000".to_string()));
    env.push(("OSLER_PLUGINS__PANEL_TIMEOUT_MS", "20000".to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(2, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let lee = api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;
    for (pkg, (_, caps)) in packages.iter().zip(plugins) {
        let id = api.install(&admin, pkg).await.expect(201).json["id"]
            .as_str()
            .expect("id")
            .to_string();
        for site in sites {
            api.enable(&admin, &id, site, caps).await;
        }
    }
    Clinic {
        _sb: sb,
        _server: server,
        api,
        admin,
        lee,
    }
}

async fn prescribe(c: &Clinic, pid: &str, din: &str, sig: &str) -> Value {
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/prescriptions"),
            &c.lee,
            &json!({"din": din, "sig": sig, "quantity": "30", "longTerm": true}),
        )
        .await
        .expect(201)
        .json
}

async fn add_problem(c: &Clinic, pid: &str, text: &str, code: &str) {
    c.api
        .post(
            &format!("/plugins/encounter/api/patients/{pid}/cpp/concerns"),
            &c.lee,
            &json!({"text": text, "code": code, "since": "2019"}),
        )
        .await
        .expect(201);
}

/// A page as a browser asks for it, with `token`'s session.
async fn page(api: &Api, path: &str, token: &str) -> Resp {
    api.send(
        reqwest::Method::GET,
        path,
        Auth::Cookie(token, None),
        None,
        &[("accept", "text/html")],
    )
    .await
}

fn ids(r: &Resp) -> Vec<String> {
    r.json
        .as_array()
        .unwrap_or_else(|| panic!("a list: {}", r.text))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn medications_allergies_and_problems_are_read_for_the_person_served() {
    let c = clinic(
        &[
            ("plugins/drugref", &["kv"]),
            ("plugins/prescribing", PRESCRIBING_CAPS),
            ("plugins/encounter", ENCOUNTER_CAPS),
            ("tests/plugins/record-reader", &[]),
        ],
        &["main"],
    )
    .await;
    let api = &c.api;
    let nurse = api.login(demo::NURSE.0, demo::NURSE.1).await;
    let desk = api.login(demo::RECEPTION.0, demo::RECEPTION.1).await;
    let me = api.login(demo::PATIENT.0, demo::PATIENT.1).await;
    let find = |i: u64| {
        let (api, lee) = (api.clone(), c.lee.clone());
        async move {
            let found = api
                .search_all(&lee, &format!("identifier={}", demo::health_card(i)))
                .await;
            id_of(&found[0])
        }
    };
    let (own, other) = (find(0).await, find(1).await);

    // The patient's record: two medications (one then stopped), an allergy, two problems
    // (one resolved).
    let ramipril = prescribe(&c, &own, RAMIPRIL, "1 cap PO OD").await;
    let rx = ramipril["prescription"]["id"].as_str().unwrap().to_string();
    let statin = prescribe(&c, &own, ATORVASTATIN, "1 tab PO QHS").await;
    let stopped = statin["prescription"]["id"].as_str().unwrap().to_string();
    api.post(
        &format!("/plugins/prescribing/api/patients/{own}/prescriptions/{stopped}/discontinue"),
        &c.lee,
        &json!({"reason": "myalgia"}),
    )
    .await
    .expect(200);
    api.post(
        &format!("/plugins/prescribing/api/patients/{own}/allergies"),
        &nurse,
        &json!({"kind": "atc", "allergen": "J01C", "reaction": "hives", "severity": "moderate"}),
    )
    .await
    .expect(201);
    add_problem(&c, &own, "Essential hypertension", "I10").await;
    let resolved = api
        .post(
            &format!("/plugins/encounter/api/patients/{own}/cpp/concerns"),
            &c.lee,
            &json!({"text": "Sprained ankle"}),
        )
        .await
        .expect(201)
        .json["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.post(
        &format!("/plugins/encounter/api/patients/{own}/cpp/concerns/{resolved}/resolve"),
        &c.lee,
        &json!({}),
    )
    .await
    .expect(200);
    prescribe(&c, &other, METFORMIN, "1 tab PO BID").await;

    let reader = |what: &str, pid: &str| format!("/plugins/record-reader/{what}/{pid}");
    // A physician and a nurse get the active lists.
    for t in [&c.lee, &nurse] {
        let meds = api.get(&reader("medications", &own), t).await.expect(200);
        let list = meds.json.as_array().unwrap();
        assert_eq!(
            list.len(),
            1,
            "the stopped statin is not active: {}",
            meds.text
        );
        let m = &list[0];
        assert_eq!(m["id"], rx.as_str());
        assert_eq!(m["drug"], "Ramipril");
        assert_eq!(m["din"], RAMIPRIL);
        assert_eq!(m["atc"], "C09AA05");
        assert_eq!(m["status"], "active");
        assert_eq!(m["prescriberName"], demo::PHYSICIAN_DISPLAY_NAME);
        assert_eq!(m["longTerm"], true);
        assert!(
            m["sig"].as_str().unwrap().to_lowercase().contains("once"),
            "{m}"
        );
        assert_eq!(m["start"].as_str().unwrap().len(), 10, "{m}");

        let allergies = api.get(&reader("allergies", &own), t).await.expect(200);
        let a = &allergies.json[0];
        assert_eq!(a["substance"], "J01C");
        assert_eq!(a["kind"], "atc");
        assert_eq!(a["reaction"], "hives");
        assert_eq!(a["severity"], "moderate");

        let problems = api.get(&reader("problems", &own), t).await.expect(200);
        let list = problems.json.as_array().unwrap();
        assert_eq!(
            list.len(),
            1,
            "the resolved one is not active: {}",
            problems.text
        );
        assert_eq!(list[0]["description"], "Essential hypertension");
        assert_eq!(list[0]["icd10ca"], "I10");
        assert_eq!(list[0]["since"], "2019");
    }
    // Nothing recorded is an empty list, never an invented "no known allergies".
    let none = api
        .get(&reader("allergies", &other), &c.lee)
        .await
        .expect(200);
    assert_eq!(none.json, json!([]));

    // Reception may read demographics, but not medications, allergies or problems.
    for what in ["medications", "allergies", "problems"] {
        let r = api.get(&reader(what, &own), &desk).await.expect(403);
        assert_eq!(r.error_code(), "denied", "{what}: {}", r.text);
    }

    // A patient reads their own medications and allergies, and nobody else's.
    let mine = api.get(&reader("medications", &own), &me).await.expect(200);
    assert_eq!(ids(&mine), std::slice::from_ref(&rx));
    api.get(&reader("allergies", &own), &me).await.expect(200);
    for what in ["medications", "allergies"] {
        let r = api.get(&reader(what, &other), &me).await;
        assert_eq!(
            r.status.as_u16(),
            403,
            "{what} of another patient: {}",
            r.text
        );
        assert!(!r.text.contains("Metformin"));
    }
    // The problem list is for physicians and nurses only, as everything encounter keeps.
    api.get(&reader("problems", &own), &me).await.expect(403);
    // An id that names no patient.
    api.get(&reader("medications", "no-such-patient"), &c.lee)
        .await
        .expect(404);

    // Every read is on the patient's trail, naming both plugins; the refused one too.
    let trail = api.audit_all(&c.admin, &format!("patient={own}")).await;
    for actor in ["drlee", "nurse.kim", "patient"] {
        assert!(
            trail.iter().any(|e| e["action"] == "patient-data.read"
                && e["actor"] == actor
                && e["via"] == "record-reader>prescribing"),
            "{actor}'s read through the interface is audited"
        );
    }
    assert!(trail.iter().any(|e| e["action"] == "patient-data.read"
        && e["actor"] == "drlee"
        && e["via"] == "record-reader>encounter"));
    let theirs = api.audit_all(&c.admin, &format!("patient={other}")).await;
    assert!(
        theirs
            .iter()
            .any(|e| e["actor"] == "patient" && e["outcome"] == "denied"),
        "the patient's attempt on another chart is audited as refused: {theirs:?}"
    );

    // Without prescribing at the site, the importer learns it is unavailable.
    api.disable(&c.admin, "prescribing", "main").await;
    let r = api
        .get(&reader("medications", &own), &c.lee)
        .await
        .expect(503);
    assert_eq!(r.error_code(), "unavailable");
}

#[tokio::test]
async fn a_sites_library_is_searched_shown_beside_prescriptions_and_on_the_chart() {
    let c = clinic(
        &[
            ("plugins/drugref", &["kv"]),
            ("plugins/prescribing", PRESCRIBING_CAPS),
            ("plugins/encounter", ENCOUNTER_CAPS),
            ("plugins/resources", &["kv"]),
        ],
        &["main", "north"],
    )
    .await;
    let api = &c.api;
    let desk = api.login(demo::RECEPTION.0, demo::RECEPTION.1).await;
    let search = "/plugins/resources/api/resources";

    // By drug class: ACE inhibitors (C09A) find the seed set's resources on blood pressure,
    // the heart and the kidney, and nothing about asthma.
    let acei = api
        .get(&format!("{search}?atc=C09A"), &c.lee)
        .await
        .expect(200);
    let found = ids(&acei);
    for id in [
        "seed-hypertension-canada",
        "seed-ccs-guidelines",
        "seed-kdigo",
        "seed-medlineplus-bp",
        "seed-medlineplus-hf",
    ] {
        assert!(found.contains(&id.to_string()), "{id} in {found:?}");
    }
    assert!(!found.contains(&"seed-gina".to_string()));
    assert!(
        acei.json
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["seed"] == true)
    );
    let patients_only = api
        .get(&format!("{search}?atc=C09AA05&audience=patient"), &c.lee)
        .await
        .expect(200);
    assert!(
        patients_only
            .json
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["audience"] == "patient")
    );
    assert!(ids(&patients_only).contains(&"seed-medlineplus-bp".to_string()));
    // By condition, code or words.
    let dm = ids(&api
        .get(&format!("{search}?condition=E11.9"), &c.lee)
        .await
        .expect(200));
    assert_eq!(dm[0], "seed-diabetes-canada-cpg", "{dm:?}");
    // By text: title matches rank above tag and summary matches.
    let asthma = api
        .get(&format!("{search}?q=asthma"), &c.lee)
        .await
        .expect(200);
    let list = asthma.json.as_array().unwrap();
    assert!(
        list[0]["title"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("asthma")
    );
    let scores: Vec<u64> = list.iter().map(|r| r["score"].as_u64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(
        list.iter().any(|r| !r["title"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("asthma")),
        "tag matches are found too"
    );
    // The search page: plain outbound links.
    let html = page(api, "/plugins/resources/?q=hypertension", &c.lee)
        .await
        .expect(200);
    assert!(html.text.contains("Hypertension Canada guidelines"));
    assert!(html.text.contains(r#"rel="noopener noreferrer""#));
    // The library is for clinicians (and administrators who manage it).
    api.get(search, &desk).await.expect(403);

    // The prescribing page shows them beside a drug of that class.
    let pid = api
        .create(&c.lee, &patient("Tremblay", "Luc", "1957-05-06", &hcn(150)))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    prescribe(&c, &pid, RAMIPRIL, "1 cap PO OD").await;
    let rx_page = format!("/plugins/prescribing/patients/{pid}");
    let p = page(api, &rx_page, &c.lee).await.expect(200);
    assert!(
        p.text.contains("Resources for this drug class (C09AA05)"),
        "{}",
        p.text
    );
    assert!(p.text.contains("Hypertension Canada guidelines"));

    // The site's own: an administrator adds one for ACE inhibitors at main.
    let mine = json!({
        "title": "Our ACE inhibitor titration protocol",
        "url": "https://intranet.example.org/protocols/acei",
        "summary": "How this clinic starts and titrates ACE inhibitors.",
        "atc": ["C09A"], "conditions": "I10, hypertension", "specialties": ["family medicine"],
        "audience": "clinician", "language": "en", "reviewed": "2026-11-30",
    });
    api.post(search, &c.lee, &mine).await.expect(403);
    let added = api.post(search, &c.admin, &mine).await.expect(201).json;
    let own_id = added["id"].as_str().unwrap().to_string();
    assert_eq!(added["conditions"], json!(["I10", "hypertension"]));
    let at = |site: &'static str, q: &'static str| {
        let (api, lee) = (api.clone(), c.lee.clone());
        async move {
            let r = api
                .get_at(&format!("/plugins/resources/api/resources?{q}"), &lee, site)
                .await;
            ids(&r.expect(200))
        }
    };
    assert!(at("main", "atc=C09AA05").await.contains(&own_id));
    assert!(
        !at("north", "atc=C09AA05").await.contains(&own_id),
        "another site's"
    );
    // Edited, it is found by its new words.
    let mut edited = mine.clone();
    edited["title"] = json!("Our ACE inhibitor and ARB titration protocol");
    edited["atc"] = json!("C09A, C09C");
    api.put(&format!("{search}/{own_id}"), &c.admin, &edited, None)
        .await
        .expect(200);
    assert_eq!(
        at("main", "q=titration+ARB").await,
        std::slice::from_ref(&own_id)
    );
    assert!(at("main", "atc=C09CA01").await.contains(&own_id));

    // Pinned at main, a seed entry comes first there, and only there.
    api.post(&format!("{search}/seed-kdigo/pin"), &c.admin, &json!({}))
        .await
        .expect(200);
    assert_eq!(at("main", "atc=C09AA05").await[0], "seed-kdigo");
    assert_ne!(at("north", "atc=C09AA05").await[0], "seed-kdigo");
    let p = page(api, &rx_page, &c.lee).await.expect(200);
    let line = &p.text[p.text.find("Resources for this drug class").unwrap()..];
    assert!(
        line[..line.find("</p>").unwrap()].contains("KDIGO"),
        "{line}"
    );

    // Retired at main, a seed entry is gone from main's searches, lookups and the prescribing
    // page, and still at north; restored, it is back.
    api.post(
        &format!("{search}/seed-hypertension-canada/retire"),
        &c.admin,
        &json!({}),
    )
    .await
    .expect(200);
    assert!(
        !at("main", "atc=C09A")
            .await
            .contains(&"seed-hypertension-canada".into())
    );
    assert!(
        !at("main", "q=hypertension")
            .await
            .contains(&"seed-hypertension-canada".into())
    );
    assert!(
        at("north", "atc=C09A")
            .await
            .contains(&"seed-hypertension-canada".into())
    );
    let p = page(api, &rx_page, &c.lee).await.expect(200);
    assert!(!p.text.contains("Hypertension Canada guidelines"));
    let all = api
        .get(&format!("{search}?retired=true&limit=500"), &c.admin)
        .await
        .expect(200);
    assert!(
        ids(&all).contains(&"seed-hypertension-canada".into()),
        "kept, retired"
    );
    api.post(
        &format!("{search}/seed-hypertension-canada/restore"),
        &c.admin,
        &json!({}),
    )
    .await
    .expect(200);
    assert!(
        at("main", "atc=C09A")
            .await
            .contains(&"seed-hypertension-canada".into())
    );

    // Re-ordered: the site's own first in its order.
    let mut order = ids(&api
        .get(&format!("{search}?retired=true&limit=500"), &c.admin)
        .await
        .expect(200));
    // (that list is ranked with pins first; the order API takes the library's ids in any order)
    order.retain(|i| *i != own_id);
    order.insert(0, own_id.clone());
    api.put(
        "/plugins/resources/api/order",
        &c.admin,
        &json!({"ids": order}),
        None,
    )
    .await
    .expect(200);
    let browse = at("main", "limit=500").await;
    assert_eq!(browse[0], "seed-kdigo", "pinned first");
    assert_eq!(browse[1], own_id, "then the site's order");

    // Refused input changes nothing, through the API and through the page's form.
    let before = api
        .get(&format!("{search}?retired=true&limit=500"), &c.admin)
        .await
        .expect(200)
        .json;
    for (field, value) in [
        ("url", json!("javascript:alert(1)")),
        ("url", json!("ftp://files.example.org/x")),
        ("atc", json!(["C9"])),
        ("audience", json!("everyone")),
        ("reviewed", json!("2026-02-30")),
        ("title", json!("")),
    ] {
        let mut bad = mine.clone();
        bad[field] = value;
        let r = api.post(search, &c.admin, &bad).await.expect(400);
        assert!(
            r.json["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{}",
            r.text
        );
        let r = api
            .put(&format!("{search}/{own_id}"), &c.admin, &bad, None)
            .await
            .expect(400);
        assert_eq!(r.error_code(), "invalid");
    }
    api.post(&format!("{search}/{own_id}/delete"), &c.admin, &json!({}))
        .await
        .expect(400);
    api.put(
        "/plugins/resources/api/order",
        &c.admin,
        &json!({"ids": [own_id.clone()]}),
        None,
    )
    .await
    .expect(400);
    let manage = page(api, "/plugins/resources/manage", &c.admin)
        .await
        .expect(200);
    let at_csrf = manage.text.find("name=\"_csrf\" value=\"").unwrap() + 20;
    let csrf = &manage.text[at_csrf..at_csrf + manage.text[at_csrf..].find('"').unwrap()];
    let form = format!(
        "_csrf={}&title=Sneaky&url={}&summary=&conditions=&atc=&specialties=&audience=clinician&language=en&reviewed=2026-11-30",
        enc(csrf),
        enc("javascript:alert(document.cookie)")
    );
    let r = api
        .client
        .post(format!("{}/plugins/resources/manage", api.base))
        .header("cookie", format!("osler_session={}", c.admin))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("url: a web address starting with https:// or http://"),
        "{text}"
    );
    assert!(text.contains(r#"role="alert""#));
    assert!(
        text.contains(r#"value="Sneaky""#),
        "the form keeps what was typed"
    );
    let after = api
        .get(&format!("{search}?retired=true&limit=500"), &c.admin)
        .await
        .expect(200)
        .json;
    assert_eq!(before, after, "nothing changed");

    // The chart panel: resources for the patient's active problems and medications.
    add_problem(&c, &pid, "Type 2 diabetes mellitus", "E11.9").await;
    let chart = format!("/patients/{pid}");
    let html = page(api, &chart, &c.lee).await.expect(200).text;
    assert!(html.contains(r#"data-panel="resources""#), "{html}");
    assert!(html.contains("Type 2 diabetes mellitus"));
    assert!(
        html.contains("Diabetes Canada Clinical Practice Guidelines"),
        "{html}"
    );
    assert!(html.contains("Ramipril</strong> (C09AA05)"), "{html}");
    // Without encounter, the panel says the problems are unavailable and shows the rest.
    api.disable(&c.admin, "encounter", "main").await;
    let html = page(api, &chart, &c.lee).await.expect(200).text;
    assert!(html.contains("Active problems: unavailable"), "{html}");
    assert!(html.contains("Ramipril</strong> (C09AA05)"), "{html}");

    // Without the resources plugin, prescribing works as before and shows none.
    api.disable(&c.admin, "resources", "main").await;
    let p = page(api, &rx_page, &c.lee).await.expect(200);
    assert!(!p.text.contains("Resources for this drug class"));
    assert!(p.text.contains("Ramipril"));
    prescribe(&c, &pid, METFORMIN, "1 tab PO BID").await;
}
