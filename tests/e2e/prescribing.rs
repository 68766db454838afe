//! The drug reference and prescribing plugins end to end: the real binary, both plugins built
//! with `osler plugin build`, installed and enabled over the admin API, prescribing calling
//! the drug reference through `osler:drugref/lookup`.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::support::{Api, Auth, Sandbox, Server, hcn, package, patient, plugin_env};

const ADMIN: (&str, &str) = ("admin", "osler-demo-admin");
const DRLEE: (&str, &str) = ("drlee", "osler-demo-physician");
const NURSE: (&str, &str) = ("nurse.kim", "osler-demo-nurse");

/// What prescribing asks for on API 0.2: its records about patients in patient-scoped
/// storage, and the events it publishes with them.
pub(crate) const PRESCRIBING_CAPS: &[&str] =
    &["kv", "patients.read", "patient-data", "events.publish"];

/// Seed products (sample data, not real DINs).
const WARFARIN: &str = "99000011";
const IBUPROFEN: &str = "99000031";
const AMOXICILLIN: &str = "99000151";
const LEVOTHYROXINE: &str = "99000111";
const OMEPRAZOLE: &str = "99000121";

pub(crate) struct Clinic {
    pub(crate) _sb: Sandbox,
    pub(crate) _server: Server,
    pub(crate) api: Api,
    pub(crate) admin: String,
    pub(crate) lee: String,
    pub(crate) nurse: String,
}

fn packages() -> (PathBuf, PathBuf) {
    (package("plugins/drugref"), package("plugins/prescribing"))
}

/// A demo clinic with both plugins enabled at `main`.
pub(crate) async fn clinic() -> Clinic {
    let (drugref, prescribing) = packages();
    let sb = Sandbox::new();
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(2, &env);
    let api = server.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    let lee = api.login(DRLEE.0, DRLEE.1).await;
    let nurse = api.login(NURSE.0, NURSE.1).await;
    api.install_enabled(&admin, &drugref, "main", &["kv"]).await;
    api.install_enabled(&admin, &prescribing, "main", PRESCRIBING_CAPS)
        .await;
    Clinic {
        _sb: sb,
        _server: server,
        api,
        admin,
        lee,
        nurse,
    }
}

pub(crate) async fn new_patient(c: &Clinic, family: &str, n: u64) -> String {
    let card = hcn(600 + n);
    let p = c
        .api
        .create(&c.lee, &patient(family, "Alex", "1950-04-02", &card))
        .await;
    p["id"].as_str().expect("id").to_string()
}

pub(crate) async fn prescribe(
    c: &Clinic,
    token: &str,
    pid: &str,
    body: Value,
) -> crate::support::Resp {
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/prescriptions"),
            token,
            &body,
        )
        .await
}

pub(crate) async fn import(c: &Clinic, table: &str, csv: &str) -> crate::support::Resp {
    let res = c
        .api
        .client
        .post(format!(
            "{}/plugins/drugref/api/import/{table}?source=e2e",
            c.api.base
        ))
        .bearer_auth(&c.admin)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .expect("import request");
    crate::support::Resp::read(res).await
}

pub(crate) fn warnings(r: &Value) -> Vec<Value> {
    r["checks"][0]["checks"]["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn warfarin_with_an_nsaid_needs_an_override_and_a_class_allergy_warns() {
    let c = clinic().await;

    // Search by generic name prefix: the seed product, marked as sample data.
    let found = c
        .api
        .get("/plugins/drugref/api/drugs?q=warf", &c.lee)
        .await
        .expect(200);
    let warfarin = found
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["din"] == WARFARIN)
        .unwrap_or_else(|| panic!("{}", found.text));
    assert_eq!(warfarin["atc"], "B01AA03");
    assert_eq!(warfarin["sample"], true);
    let page = c
        .api
        .get("/plugins/drugref/?q=warf", &c.lee)
        .await
        .expect(200);
    assert!(page.text.contains("sample data"), "{}", page.text);
    // By ATC class: beta blocking agents.
    let c07 = c
        .api
        .get("/plugins/drugref/api/drugs?atc=C07A", &c.lee)
        .await
        .expect(200);
    assert!(c07.text.contains("Metoprolol"), "{}", c07.text);

    let pid = new_patient(&c, "Marsh", 1).await;
    prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": IBUPROFEN, "sig": "1 tab PO TID x 7 days"}),
    )
    .await
    .expect(201);

    // Warfarin on top of ibuprofen: a major interaction, so a reason is required.
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": WARFARIN, "sig": "1 tab PO OD", "quantity": "30", "longTerm": true}),
    )
    .await
    .expect(409);
    assert_eq!(r.error_code(), "override-required");
    let w = warnings(&r.json);
    let major = w
        .iter()
        .find(|w| w["kind"] == "interaction" && w["severity"] == "major")
        .unwrap_or_else(|| panic!("{}", r.text));
    assert_eq!(major["blocking"], true);
    assert_eq!(major["sourceId"], "sup-1", "{major}");
    let summary = c
        .api
        .get(&format!("/plugins/prescribing/api/patients/{pid}"), &c.lee)
        .await
        .expect(200);
    assert_eq!(
        summary.json["active"].as_array().unwrap().len(),
        1,
        "nothing was written"
    );

    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": WARFARIN, "sig": "1 tab PO OD", "quantity": "30", "longTerm": true,
               "overrideReason": "ibuprofen stops tomorrow; INR check booked"}),
    )
    .await
    .expect(201);
    let rx = &r.json["prescription"];
    assert_eq!(rx["status"], "active");
    assert_eq!(rx["checks"]["status"], "checked");
    assert_eq!(
        rx["overrideReason"],
        "ibuprofen stops tomorrow; INR check booked"
    );
    let trail = c.api.audit_all(&c.admin, &format!("patient={pid}")).await;
    let overridden = trail
        .iter()
        .find(|e| e["action"] == "prescribing.prescription.override")
        .unwrap_or_else(|| panic!("{trail:?}"));
    assert_eq!(overridden["actor"], "drlee");
    let detail = overridden["detail"].as_str().unwrap();
    assert!(detail.contains("INR check booked"), "{detail}");
    assert!(
        detail.contains("[supplement: Osler seed supplement, row sup-1]"),
        "the warning's source is on the trail: {detail}"
    );

    // The chart: the active list, and the prescribe form searching the drug reference.
    let chart = c
        .api
        .get(
            &format!("/plugins/prescribing/patients/{pid}?q=warf"),
            &c.lee,
        )
        .await
        .expect(200);
    assert!(chart.text.contains("Alex Marsh"), "{}", chart.text);
    assert!(
        chart
            .text
            .contains(&format!(r#"name="din" value="{WARFARIN}""#))
    );
    assert!(chart.text.contains("sample data — DIN not verified"));
    assert!(chart.text.contains(r#"name="_csrf""#));

    // A nurse records a penicillin allergy by class; she may not prescribe.
    let other = new_patient(&c, "Okafor", 2).await;
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{other}/allergies"),
            &c.nurse,
            &json!({"kind": "atc", "allergen": "J01C", "reaction": "hives", "severity": "moderate"}),
        )
        .await
        .expect(201);
    let denied = prescribe(
        &c,
        &c.nurse,
        &other,
        json!({"din": AMOXICILLIN, "sig": "1 cap PO TID x 7 days"}),
    )
    .await
    .expect(403);
    assert!(denied.text.contains("only a physician"), "{}", denied.text);

    let r = prescribe(
        &c,
        &c.lee,
        &other,
        json!({"din": AMOXICILLIN, "sig": "1 cap PO TID x 7 days"}),
    )
    .await
    .expect(409);
    let allergy = warnings(&r.json)
        .into_iter()
        .find(|w| w["kind"] == "allergy")
        .unwrap_or_else(|| panic!("{}", r.text));
    assert!(
        allergy["message"].as_str().unwrap().contains("J01C"),
        "{allergy}"
    );
    let summary = c
        .api
        .get(
            &format!("/plugins/prescribing/api/patients/{other}"),
            &c.nurse,
        )
        .await
        .expect(200);
    assert!(summary.json["active"].as_array().unwrap().is_empty());
}

/// A check or a prescription looks the drug up before it opens the chart: a drug that cannot
/// be prescribed is refused with nothing of the patient read (and so nothing on their trail),
/// and a drug that can is checked with the chart's reads on the trail as before.
#[tokio::test]
async fn a_drug_that_cannot_be_prescribed_is_refused_before_the_chart_is_read() {
    let c = clinic().await;
    let pid = new_patient(&c, "Quill", 1).await;
    let chart_reads = |trail: &[Value]| {
        trail
            .iter()
            .filter(|e| {
                e["via"] == "prescribing"
                    && (e["action"] == "patient.read" || e["action"] == "patient-data.read")
            })
            .count()
    };
    let before = c.api.audit_all(&c.admin, &format!("patient={pid}")).await;
    assert_eq!(chart_reads(&before), 0, "{before:?}");

    let check = format!("/plugins/prescribing/api/patients/{pid}/check");
    let r = c
        .api
        .post(&check, &c.lee, &json!({"din": "00000000"}))
        .await
        .expect(400);
    assert!(
        r.text.contains("no product with DIN 00000000"),
        "{}",
        r.text
    );
    prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": "1234", "sig": "1 tab PO OD"}),
    )
    .await
    .expect(400);
    let after = c.api.audit_all(&c.admin, &format!("patient={pid}")).await;
    assert_eq!(chart_reads(&after), 0, "the chart was not read: {after:?}");

    let r = c
        .api
        .post(&check, &c.lee, &json!({"din": IBUPROFEN}))
        .await
        .expect(200);
    assert_eq!(r.json["checks"]["status"], "checked", "{}", r.text);
    let checked = c.api.audit_all(&c.admin, &format!("patient={pid}")).await;
    assert!(chart_reads(&checked) >= 1, "{checked:?}");
}

#[tokio::test]
async fn without_the_drug_reference_a_prescription_is_made_and_marked_unchecked() {
    let c = clinic().await;
    let pid = new_patient(&c, "Lindqvist", 3).await;
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/allergies"),
            &c.lee,
            &json!({"kind": "ingredient", "allergen": "warfarin", "severity": "severe"}),
        )
        .await
        .expect(201);

    c.api.disable(&c.admin, "drugref", "main").await;
    // By DIN alone it cannot even be named: a clear answer, nothing written.
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": WARFARIN, "sig": "1 tab PO OD"}),
    )
    .await
    .expect(503);
    assert!(r.text.contains("drug reference"), "{}", r.text);
    // By name (with the DIN typed by hand) it is made, and says plainly that nothing was
    // checked and that the DIN was not verified.
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": WARFARIN, "drugName": "Warfarin 5 mg", "atc": "B01AA03", "sig": "1 tab PO OD", "quantity": "30"}),
    )
    .await
    .expect(201);
    let rx = &r.json["prescription"];
    assert_eq!(rx["status"], "active");
    assert_eq!(rx["checks"]["status"], "unchecked");
    assert!(
        rx["checks"]["message"]
            .as_str()
            .unwrap()
            .contains("Interactions and allergies were NOT checked"),
        "{rx}"
    );
    let id = rx["id"].as_str().unwrap();

    let summary = c
        .api
        .get(&format!("/plugins/prescribing/api/patients/{pid}"), &c.lee)
        .await
        .expect(200);
    assert_eq!(summary.json["active"][0]["checks"]["status"], "unchecked");
    let printed = c
        .api
        .get(
            &format!("/plugins/prescribing/patients/{pid}/print"),
            &c.lee,
        )
        .await
        .expect(200);
    assert!(printed.text.contains("Alex Lindqvist"), "{}", printed.text);
    assert!(
        printed
            .text
            .contains("Interactions and allergies were NOT checked")
    );
    assert!(printed.text.contains("1 tab PO daily"));
    assert!(
        printed.text.contains(">DIN not verified<"),
        "{}",
        printed.text
    );
    assert!(
        !printed.text.contains(WARFARIN),
        "a typed DIN never prints as verified"
    );
    assert!(printed.text.contains("30 tablets"));
    let chart = c
        .api
        .get(&format!("/plugins/prescribing/patients/{pid}"), &c.lee)
        .await
        .expect(200);
    assert!(chart.text.contains("NOT CHECKED"), "{}", chart.text);

    let trail = c.api.audit_all(&c.admin, &format!("patient={pid}")).await;
    assert!(
        trail
            .iter()
            .any(|e| e["action"] == "prescribing.prescription.unchecked" && e["actor"] == "drlee"),
        "{trail:?}"
    );

    // Back on: the DIN still prints as not verified (the reference did not confirm it for that
    // prescription); the same drug is checked again, and the allergy is found.
    c.api.enable(&c.admin, "drugref", "main", &["kv"]).await;
    let printed = c
        .api
        .get(
            &format!("/plugins/prescribing/patients/{pid}/print"),
            &c.lee,
        )
        .await
        .expect(200);
    assert!(
        printed.text.contains(">DIN not verified<"),
        "{}",
        printed.text
    );
    assert!(!printed.text.contains(WARFARIN));
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": WARFARIN, "sig": "1 tab PO OD", "quantity": "30"}),
    )
    .await
    .expect(409);
    assert!(
        warnings(&r.json).iter().any(|w| w["kind"] == "allergy"),
        "{}",
        r.text
    );

    // Discontinued with a reason; the history keeps it.
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/prescriptions/{id}/discontinue"),
            &c.lee,
            &json!({"reason": "allergy on file"}),
        )
        .await
        .expect(200);
    let summary = c
        .api
        .get(&format!("/plugins/prescribing/api/patients/{pid}"), &c.lee)
        .await
        .expect(200);
    assert!(summary.json["active"].as_array().unwrap().is_empty());
    assert_eq!(summary.json["past"][0]["status"], "stopped");
    assert_eq!(
        summary.json["past"][0]["history"][1]["what"],
        "stopped: allergy on file"
    );
}

#[tokio::test]
async fn an_imported_interaction_table_is_used_and_a_malformed_file_imports_nothing() {
    let c = clinic().await;
    let header = "\"id\",\"atc_a\",\"atc_b\",\"effect\",\"significance\",\"evidence\",\"comment\",\"name_a\",\"name_b\"\n";

    // A bad significance on line 3 (of 4): refused by line, nothing imported.
    let bad = format!(
        "{header}\"t1\",\"H03AA01\",\"A02BC\",\"I\",\"2\",\"F\",\"PPIs reduce levothyroxine absorption\",\"levothyroxine\",\"PPIs\"\n\
         \"t2\",\"B01AA03\",\"M01A\",\"A\",\"5\",\"G\",\"bad row\",\"warfarin\",\"NSAIDs\"\n\
         \"t3\",\"C07A\",\"R03AC\",\"I\",\"2\",\"F\",\"beta blockers oppose beta agonists\",\"beta blockers\",\"beta agonists\"\n"
    );
    let r = import(&c, "interactions", &bad).await.expect(400);
    assert_eq!(r.json["error"]["lines"][0]["line"], 3, "{}", r.text);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was imported")
    );
    let tables = c
        .api
        .get("/plugins/drugref/api/tables", &c.admin)
        .await
        .expect(200);
    assert_eq!(
        tables.json["interactions"]["source"], "none imported",
        "{}",
        tables.text
    );

    // Only an administrator imports.
    let res = c
        .api
        .client
        .post(format!(
            "{}/plugins/drugref/api/import/interactions",
            c.api.base
        ))
        .bearer_auth(&c.lee)
        .body(bad.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let good = bad.replace("\"A\",\"5\"", "\"A\",\"3\"");
    let r = import(&c, "interactions", &good).await.expect(200);
    assert_eq!(r.json["rows"], 3);
    assert_eq!(r.json["source"], "e2e");

    // The new pair is used when prescribing.
    let pid = new_patient(&c, "Haddad", 4).await;
    prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": OMEPRAZOLE, "sig": "1 cap PO OD x 30 days"}),
    )
    .await
    .expect(201);
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": LEVOTHYROXINE, "sig": "1 tab PO QAM", "quantity": "90"}),
    )
    .await
    .expect(201);
    let w = r.json["prescription"]["checks"]["warnings"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(w.len(), 1, "{}", r.text);
    assert_eq!(w[0]["severity"], "moderate");
    assert!(
        w[0]["message"]
            .as_str()
            .unwrap()
            .contains("levothyroxine absorption")
    );
    assert_eq!(w[0]["source"], "interaction table: e2e");

    // The imported table and the supplement are both checked: one alert per pair, the most
    // significant (then the substance row before the class row).
    let check =
        |a: &str, b: &str| json!({"drugs": [{"key": "a", "din": a}, {"key": "b", "din": b}]});
    let r = c
        .api
        .post(
            "/plugins/drugref/api/interactions",
            &c.lee,
            &check(WARFARIN, IBUPROFEN),
        )
        .await
        .expect(200);
    let found = r.json["interactions"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{}", r.text);
    assert_eq!(found[0]["id"], "t2", "{}", r.text);
    assert_eq!(found[0]["significance"], 3);
    assert_eq!(found[0]["source"], "interaction table: e2e");
    assert_eq!(found[0]["also"][0]["id"], "sup-1", "{}", r.text);

    let trail = c.api.audit_all(&c.admin, "actor=admin").await;
    assert!(
        trail.iter().any(|e| e["action"] == "drugref.import"),
        "{trail:?}"
    );
}

#[tokio::test]
async fn the_sig_parser_round_trips_real_sigs() {
    let c = clinic().await;
    for sig in [
        "1 tab PO BID x 10 days",
        "2 puffs INH QID PRN",
        "1 cap PO QHS",
        "10 mL PO TID x 7 days",
        "1 tab PO Q4H PRN pain",
        "1 tab PO weekly",
        "1-2 tabs PO Q4-6H PRN pain max 8 tabs/day",
        "0.5 tab PO QAM",
        "1 drop OD QID x 1 week",
        "10 units subcut QHS",
    ] {
        let r = c
            .api
            .get(
                &format!(
                    "/plugins/prescribing/api/sig?text={}",
                    crate::support::enc(sig)
                ),
                &c.lee,
            )
            .await
            .expect(200);
        assert_eq!(r.json["text"], sig, "{}", r.text);
    }
    let r = c
        .api
        .get(
            "/plugins/prescribing/api/sig?text=1%20tab%20PO%20BID%20x%2010%20days",
            &c.lee,
        )
        .await
        .expect(200);
    assert_eq!(
        r.json["readable"],
        "Take 1 tablet by mouth twice a day for 10 days."
    );
    assert_eq!(r.json["total"], json!({"amount": "20", "unit": "tab"}));
    assert_eq!(r.json["sig"]["frequency"], "BID");
    let r = c
        .api
        .get("/plugins/prescribing/api/sig?text=1%20tab%20PO", &c.lee)
        .await
        .expect(400);
    assert!(r.text.contains("how often"), "{}", r.text);
}

#[tokio::test]
async fn posts_the_site_threshold_and_renewals() {
    let c = clinic().await;
    // A second physician at main.
    c.api
        .post(
            "/api/v1/users",
            &c.admin,
            &json!({"username": "drmoreau", "password": "moreau-password-1234",
                    "roles": ["physician"], "sites": ["main"], "displayName": "Dr. Moreau"}),
        )
        .await
        .expect(201);
    let moreau = c.api.login("drmoreau", "moreau-password-1234").await;
    let pid = new_patient(&c, "Dubois", 5).await;
    // Low-dose ASA, prescribed elsewhere, recorded by the nurse.
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/medications"),
            &c.nurse,
            &json!({"din": "99000021", "sig": "1 tab PO OD", "quantity": "90", "longTerm": true, "prescriber": "Dr. Roy (cardiology)"}),
        )
        .await
        .expect(201);
    let check = |token: String| {
        let api = c.api.clone();
        let path = format!("/plugins/prescribing/api/patients/{pid}/check");
        async move {
            api.post(&path, &token, &json!({"din": IBUPROFEN}))
                .await
                .expect(200)
                .json["checks"]
                .clone()
        }
    };

    // Ibuprofen with ASA is a minor interaction: shown, until the site hides minor ones.
    let checks = check(c.lee.clone()).await;
    let minor = &checks["warnings"][0];
    assert_eq!(minor["severity"], "minor", "{checks}");
    assert_eq!(minor["blocking"], false);
    c.api
        .put(
            "/api/v1/admin/plugins/prescribing/sites/main/config",
            &c.admin,
            &json!({"interaction-threshold": 2}),
            None,
        )
        .await
        .expect(200);
    let checks = check(c.lee.clone()).await;
    assert!(
        checks["warnings"].as_array().unwrap().is_empty(),
        "{checks}"
    );
    assert_eq!(checks["hidden"], 1);

    // Dr. Lee posts a warning on NSAIDs; Dr. Moreau sees it beside the check, trusts Lee,
    // hides it, and sees it again once Lee edits it.
    let post = c
        .api
        .post(
            "/plugins/drugref/api/posts",
            &c.lee,
            &json!({"atc": "M01A", "kind": "warning", "title": "NSAIDs and the elderly", "body": "Check renal function first."}),
        )
        .await
        .expect(201);
    let post_id = post.json["id"].as_str().unwrap().to_string();
    let posts = check(moreau.clone()).await["posts"].clone();
    assert_eq!(posts[0]["title"], "NSAIDs and the elderly", "{posts}");
    assert_eq!(posts[0]["trusted"], false);
    c.api
        .send(
            reqwest::Method::PUT,
            "/plugins/drugref/api/trust/drlee",
            Auth::Bearer(&moreau),
            None,
            &[],
        )
        .await
        .expect(204);
    assert_eq!(check(moreau.clone()).await["posts"][0]["trusted"], true);
    c.api
        .post(
            &format!("/plugins/drugref/api/posts/{post_id}/hide"),
            &moreau,
            &json!({}),
        )
        .await
        .expect(204);
    assert!(
        check(moreau.clone()).await["posts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        check(c.lee.clone()).await["posts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Only the author edits.
    let edit = json!({"atc": "M01A", "kind": "warning", "title": "NSAIDs and the elderly", "body": "Check renal function and blood pressure first."});
    c.api
        .put(
            &format!("/plugins/drugref/api/posts/{post_id}"),
            &moreau,
            &edit,
            None,
        )
        .await
        .expect(403);
    c.api
        .put(
            &format!("/plugins/drugref/api/posts/{post_id}"),
            &c.lee,
            &edit,
            None,
        )
        .await
        .expect(200);
    let posts = check(moreau.clone()).await["posts"].clone();
    assert_eq!(
        posts[0]["body"], "Check renal function and blood pressure first.",
        "{posts}"
    );

    // Renew all long-term medications: new prescriptions, the old ones completed.
    for (din, sig, long_term) in [
        ("99000101", "1 tab PO OD", true),
        ("99000091", "1 tab PO OD", true),
        (AMOXICILLIN, "1 cap PO TID", false),
    ] {
        prescribe(
            &c,
            &c.lee,
            &pid,
            json!({"din": din, "sig": sig, "quantity": "30", "longTerm": long_term}),
        )
        .await
        .expect(201);
    }
    let r = c
        .api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/renew"),
            &c.lee,
            &json!({}),
        )
        .await
        .expect(201);
    assert_eq!(
        r.json["prescriptions"].as_array().unwrap().len(),
        3,
        "{}",
        r.text
    );
    let summary = c
        .api
        .get(&format!("/plugins/prescribing/api/patients/{pid}"), &c.lee)
        .await
        .expect(200);
    assert_eq!(summary.json["active"].as_array().unwrap().len(), 4);
    let past = summary.json["past"].as_array().unwrap();
    assert_eq!(past.len(), 3);
    assert!(past.iter().all(|p| {
        p["status"] == "completed"
            && p["history"][1]["what"]
                .as_str()
                .unwrap()
                .starts_with("renewed as ")
    }));
    // The nurse may not renew.
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/renew"),
            &c.nurse,
            &json!({}),
        )
        .await
        .expect(403);
}

/// `rows` interaction rows in the Holbrook format, about 130 bytes each; row 0 is between
/// levothyroxine and the proton pump inhibitors.
fn large_table(rows: usize) -> String {
    let mut out = String::new();
    for i in 0..rows {
        let (a, b) = if i == 0 {
            ("H03AA01".to_string(), "A02BC".to_string())
        } else {
            (
                format!("C{:02}AB{:02}", 1 + i % 97, 1 + i % 89),
                format!("N{:02}BA{:02}", 1 + (i / 97) % 97, 1 + i % 83),
            )
        };
        out += &format!(
            "\"{i}\",\"{a}\",\"{b}\",\"A\",\"2\",\"F\",\"Concurrent use may raise serum levels; monitor the response.\",\"{a}\",\"{b}\"\n"
        );
    }
    out
}

#[tokio::test]
async fn a_table_larger_than_the_body_limit_is_refused_plainly_and_imports_once_it_is_raised() {
    let (drugref, _) = packages();
    let sb = Sandbox::new();
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(1, &env);
    let api = server.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    api.install_enabled(&admin, &drugref, "main", &["kv"]).await;
    let file = large_table(20_000);
    assert!(file.len() > 2 << 20, "{} bytes", file.len());

    // A client of its own: the server answers 413 before reading the body and closes the
    // connection, which must not be reused for the next request.
    let post = |api: Api, token: String, file: String| async move {
        let res = reqwest::Client::new()
            .post(format!(
                "{}/plugins/drugref/api/import/interactions",
                api.base
            ))
            .bearer_auth(&token)
            .body(file)
            .send()
            .await
            .expect("import request");
        crate::support::Resp::read(res).await
    };
    // The default limit (1 MiB): a clear 413, nothing imported.
    let r = post(api.clone(), admin.clone(), file.clone())
        .await
        .expect(413);
    assert_eq!(r.error_code(), "too-large");
    assert!(r.text.contains("1048576"), "{}", r.text);
    let tables = api
        .get("/plugins/drugref/api/tables", &admin)
        .await
        .expect(200);
    assert_eq!(tables.json["interactions"]["source"], "none imported");
    drop(server);

    // The administrator raises the limit (as the README says) and imports the file.
    let mut env = env.clone();
    env.push(("OSLER_HTTP__BODY_LIMIT", "16777216"));
    let server = sb.serve_with_env(&env);
    let api = server.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    let r = post(api.clone(), admin.clone(), file).await.expect(200);
    assert_eq!(r.json["rows"], 20_000);
    let lee = api.login(DRLEE.0, DRLEE.1).await;
    let r = api
        .post(
            "/plugins/drugref/api/interactions",
            &lee,
            &json!({"drugs": [{"key": "l", "din": LEVOTHYROXINE}, {"key": "o", "din": OMEPRAZOLE}]}),
        )
        .await
        .expect(200);
    assert_eq!(r.json["interactions"][0]["id"], "0", "{}", r.text);
}

/// In a browser: the prescribe form comes back with the warning and the chosen drug still
/// chosen; with a reason it is written, and the chart shows the reason.
#[tokio::test]
async fn the_chart_asks_for_an_override_reason_and_keeps_the_chosen_drug() {
    let c = clinic().await;
    let pid = new_patient(&c, "Ferreira", 6).await;
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/allergies"),
            &c.lee,
            &json!({"kind": "ingredient", "allergen": "amoxicillin", "reaction": "anaphylaxis", "severity": "severe"}),
        )
        .await
        .expect(201);
    let chart = format!("/plugins/prescribing/patients/{pid}");
    let page = c
        .api
        .send(
            reqwest::Method::GET,
            &chart,
            Auth::Cookie(&c.lee, None),
            None,
            &[],
        )
        .await
        .expect(200);
    let at = page.text.find("name=\"_csrf\" value=\"").unwrap() + 20;
    let csrf = page.text[at..at + page.text[at..].find('"').unwrap()].to_string();
    let post = |body: String| {
        c.api
            .client
            .post(format!("{}{chart}/prescribe", c.api.base))
            .header("cookie", format!("osler_session={}", c.lee))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let form = format!("_csrf={csrf}&din={AMOXICILLIN}&sig=1+cap+PO+TID+x+7+days&repeats=0");
    let r = post(form.clone()).await.unwrap();
    assert_eq!(r.status(), 409);
    let text = r.text().await.unwrap();
    assert!(text.contains("SEVERE allergy"), "{text}");
    assert!(text.contains("override reason required"));
    assert!(
        text.contains(&format!(
            r#"name="din" value="{AMOXICILLIN}" style="width:auto" checked"#
        )),
        "{text}"
    );
    assert!(text.contains(r#"value="1 cap PO TID x 7 days""#));

    let r = post(format!("{form}&override_reason=skin+test+negative+2025"))
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("?done="), "{location}");
    let page = c
        .api
        .send(
            reqwest::Method::GET,
            location.trim_start_matches(&c.api.base),
            Auth::Cookie(&c.lee, None),
            None,
            &[],
        )
        .await
        .expect(200);
    assert!(
        page.text
            .contains("Override reason: skin test negative 2025"),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("500 mg"),
        "the product's strength: {}",
        page.text
    );
}
