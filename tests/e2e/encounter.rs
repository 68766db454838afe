//! The encounter plugin end to end: the real binary, `plugins/encounter` built with `osler
//! plugin build` and installed over the admin API, driven as the demo's physician, nurse,
//! receptionist, kiosk and researcher would. One server for the whole story.

use serde_json::{Value, json};

use crate::support::{Api, Sandbox, demo, hcn, package, patient, plugin_env};

const CAPS: [&str; 4] = ["patient-data", "kv", "directory", "patients.read"];

fn api_path(pid: &str, rest: &str) -> String {
    format!("/plugins/encounter/api/patients/{pid}/{rest}")
}

async fn note_reads(api: &Api, admin: &str, pid: &str) -> Vec<Value> {
    api.audit_all(admin, &format!("patient={pid}"))
        .await
        .into_iter()
        .filter(|e| e["action"] == "encounter.note.read")
        .collect()
}

#[tokio::test]
async fn notes_are_signed_locked_amended_audited_and_kept_from_other_roles() {
    let pkg = package("plugins/encounter");
    let sb = Sandbox::new();
    // Every patient-data read and write waits for its durable audit entry, and the plugin
    // deadline is wall time: on a shared disk stalling for seconds under the parallel suite,
    // a 5 s deadline failed a plain edit once. These tests are about notes, not deadlines.
    let mut env = plugin_env();
    env.push(("OSLER_PLUGINS__TIMEOUT_MS", "20000".to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(2, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let lee = api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;
    let nurse = api.login(demo::NURSE.0, demo::NURSE.1).await;
    let desk = api.login(demo::RECEPTION.0, demo::RECEPTION.1).await;
    let kiosk = api.login(demo::KIOSK.0, demo::KIOSK.1).await;
    let researcher = api.login(demo::RESEARCHER.0, demo::RESEARCHER.1).await;
    api.install_enabled(&admin, &pkg, "main", &CAPS).await;
    let pid = api
        .create(&lee, &patient("Moreau", "Élise", "1961-03-14", &hcn(41)))
        .await["id"]
        .as_str()
        .expect("id")
        .to_string();

    // Dr. Lee writes a SOAP note: a draft until she signs it.
    let soap = json!({
        "type": "office", "date": "2026-11-30", "format": "soap",
        "subjective": "Cough for three days, no fever.",
        "objective": "Chest clear. BP 128/82.",
        "assessment": "Viral URTI.",
        "plan": "Fluids, rest; return if fever.",
    });
    let note = api
        .post(&api_path(&pid, "notes"), &lee, &soap)
        .await
        .expect(201)
        .json;
    let nid = note["id"].as_str().expect("note id").to_string();
    assert_eq!(note["status"], "draft");
    assert_eq!(note["locked"], false);
    assert_eq!(note["author"], "drlee");
    let one = |rest: &str| api_path(&pid, &format!("notes/{nid}{rest}"));

    // Only the author changes or signs it; the nurse may read it.
    let r = api
        .post(&one("/sign"), &nurse, &json!({}))
        .await
        .expect(403);
    assert!(r.text.contains("only the note's author"), "{}", r.text);
    api.put(&one(""), &nurse, &soap, None).await.expect(403);
    api.get(&one(""), &nurse).await.expect(200);
    let mut changed = soap.clone();
    changed["plan"] = json!("Fluids, rest, honey; return if fever.");
    let r = api.put(&one(""), &lee, &changed, None).await.expect(200);
    assert_eq!(
        r.json["versions"].as_array().unwrap().len(),
        1,
        "a draft has one version"
    );
    let signed = api
        .post(&one("/sign"), &lee, &json!({}))
        .await
        .expect(200)
        .json;
    assert_eq!(signed["status"], "signed");
    assert_eq!(signed["locked"], true);
    assert_eq!(signed["versions"][0]["signed"]["user"], "drlee");

    // Signed means locked: no edit, no second signature; a correction is an amendment.
    let r = api.put(&one(""), &lee, &soap, None).await.expect(409);
    assert!(r.text.contains("amendment"), "{}", r.text);
    api.post(&one("/sign"), &lee, &json!({})).await.expect(409);
    let mut amended = changed.clone();
    amended["assessment"] = json!("Viral URTI; mild asthma exacerbation.");
    let r = api.post(&one("/amend"), &lee, &amended).await.expect(400);
    assert!(
        r.error_code() == "invalid" && r.text.contains("reason"),
        "{}",
        r.text
    );
    let mut with_reason = amended.clone();
    with_reason["reason"] = json!("Wheeze noted on re-examination");
    api.post(&one("/amend"), &nurse, &with_reason)
        .await
        .expect(403);
    let r = api
        .post(&one("/amend"), &lee, &with_reason)
        .await
        .expect(200)
        .json;
    assert_eq!(r["status"], "amended");
    let history = api.get(&one(""), &lee).await.expect(200).json;
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{history}");
    assert_eq!(versions[0]["content"]["assessment"], "Viral URTI.");
    assert_eq!(
        versions[0]["content"]["plan"],
        "Fluids, rest, honey; return if fever."
    );
    assert_eq!(
        versions[1]["content"]["assessment"],
        "Viral URTI; mild asthma exacerbation."
    );
    assert_eq!(versions[1]["reason"], "Wheeze noted on re-examination");
    assert_eq!(versions[1]["signed"]["user"], "drlee");
    // The list shows the note as it stands.
    let list = api
        .get(&api_path(&pid, "notes"), &nurse)
        .await
        .expect(200)
        .json;
    assert_eq!(list["notes"][0]["version"], 2);
    assert_eq!(list["notes"][0]["status"], "amended");

    // The nurse writes and signs her own (free-text) note.
    let n2 = api
        .post(
            &api_path(&pid, "notes"),
            &nurse,
            &json!({"type": "phone", "date": "2026-12-01", "text": "Called: feeling better."}),
        )
        .await
        .expect(201)
        .json;
    let n2id = n2["id"].as_str().unwrap();
    api.post(
        &api_path(&pid, &format!("notes/{n2id}/sign")),
        &nurse,
        &json!({}),
    )
    .await
    .expect(200);
    // Bad input is refused, naming the field, and writes nothing.
    for (body, field) in [
        (
            json!({"type": "party", "date": "2026-12-01", "text": "x"}),
            "type",
        ),
        (
            json!({"type": "office", "date": "2026-02-30", "text": "x"}),
            "date",
        ),
        (
            json!({"type": "office", "date": "2026-12-01", "text": "  "}),
            "text",
        ),
        (
            json!({"type": "office", "date": "2026-12-01", "format": "soap"}),
            "subjective",
        ),
    ] {
        let r = api
            .post(&api_path(&pid, "notes"), &lee, &body)
            .await
            .expect(400);
        assert!(
            r.json["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{field}: {}",
            r.text
        );
    }
    let list = api
        .get(&api_path(&pid, "notes"), &lee)
        .await
        .expect(200)
        .json;
    assert_eq!(list["notes"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list["notes"][0]["id"], n2id, "newest encounter first");

    // Reception, the kiosk and researchers see none of it, and write none of it.
    for (who, token) in [
        ("reception", &desk),
        ("kiosk", &kiosk),
        ("researcher", &researcher),
    ] {
        for path in [
            api_path(&pid, "notes"),
            one(""),
            api_path(&pid, "measurements"),
            api_path(&pid, "cpp"),
            api_path(&pid, "ticklers"),
        ] {
            let r = api.get(&path, token).await;
            assert_eq!(r.status.as_u16(), 403, "{who} GET {path}: {}", r.text);
        }
        let r = api.post(&api_path(&pid, "notes"), token, &soap).await;
        assert_eq!(r.status.as_u16(), 403, "{who} writes a note: {}", r.text);
        let r = api
            .post(
                &api_path(&pid, "measurements"),
                token,
                &json!({"weight": 70}),
            )
            .await;
        assert_eq!(r.status.as_u16(), 403, "{who} records a weight: {}", r.text);
    }

    // Every note read is on the patient's trail: the host's read of the chart's data, and
    // the note's own entry, naming the patient, the reader and the note.
    let before = note_reads(&api, &admin, &pid).await.len();
    api.get(&one(""), &lee).await.expect(200);
    api.get(&one(""), &nurse).await.expect(200);
    let reads = note_reads(&api, &admin, &pid).await;
    assert_eq!(reads.len(), before + 2, "{reads:?}");
    let last = &reads[reads.len() - 2..];
    assert_eq!(last[0]["actor"], "drlee");
    assert_eq!(last[1]["actor"], "nurse.kim");
    for e in last {
        assert_eq!(e["patient"], pid.as_str());
        assert_eq!(e["via"], "encounter");
        assert!(
            e["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("note {nid}")),
            "{e}"
        );
    }
    let trail = api.audit_all(&admin, &format!("patient={pid}")).await;
    assert!(
        trail.iter().any(|e| e["action"] == "patient-data.read"
            && e["actor"] == "nurse.kim"
            && e["via"] == "encounter"
            && e["patient"] == pid.as_str()),
        "the host audits the plugin's reads of the chart"
    );
    assert!(
        !trail
            .iter()
            .any(|e| e["actor"] == "reception" && e["action"] == "patient-data.read"),
        "reception read nothing"
    );

    // Measurements: impossible values are refused, naming the field, and nothing is kept.
    let m = api_path(&pid, "measurements");
    for (body, field) in [
        (json!({"systolic": 400, "diastolic": 80}), "systolic"),
        (json!({"systolic": 120, "diastolic": 130}), "diastolic"),
        (json!({"systolic": 120}), "diastolic"),
        (json!({"weight": 700}), "weight"),
        (json!({"hba1c": 35}), "hba1c"),
        (json!({"weight": "heavy"}), "weight"),
        (json!({"weight": 80, "height": 25}), "weight"),
        (
            json!({"temperature": 37, "taken": "2999-01-01T10:00"}),
            "taken",
        ),
        (json!({}), "systolic"),
    ] {
        let r = api.post(&m, &nurse, &body).await.expect(400);
        assert!(
            r.json["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{body}: {}",
            r.text
        );
    }
    assert_eq!(
        api.get(&m, &lee).await.expect(200).json["measurements"],
        json!([])
    );
    let first = api
        .post(
            &m,
            &nurse,
            &json!({"taken": "2020-11-30T09:10", "systolic": 128, "diastolic": 82,
                    "pulse": 72, "weight": 80, "height": 180}),
        )
        .await
        .expect(201)
        .json;
    assert_eq!(first["bmi"], 24.7);
    assert_eq!(first["recorded"]["user"], "nurse.kim");
    // A weight alone takes the last height on file for the BMI.
    let second = api
        .post(&m, &lee, &json!({"weight": "82.5", "hba1c": 7.1}))
        .await
        .expect(201)
        .json;
    assert_eq!(second["bmi"], 25.5);
    let table = api.get(&m, &lee).await.expect(200).json;
    let rows = table["measurements"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["values"]["systolic"], 128.0, "oldest first");
    assert_eq!(rows[1]["values"]["hba1c"], 7.1);

    // The CPP: a problem with its ICD-10-CA code; a code that is not one is refused.
    let cpp = |rest: &str| api_path(&pid, &format!("cpp/{rest}"));
    let dm = api
        .post(
            &cpp("concerns"),
            &lee,
            &json!({"text": "Type 2 diabetes", "code": "e11.9", "since": "2019"}),
        )
        .await
        .expect(201)
        .json;
    assert_eq!(dm["code"], "E11.9");
    let r = api
        .post(
            &cpp("concerns"),
            &lee,
            &json!({"text": "Asthma", "code": "asthma"}),
        )
        .await
        .expect(400);
    assert!(r.text.contains("ICD-10-CA"), "{}", r.text);
    api.post(&cpp("nonsense"), &lee, &json!({"text": "x"}))
        .await
        .expect(404);
    api.post(
        &cpp("family"),
        &nurse,
        &json!({"text": "Father: MI at 52", "code": "I21"}),
    )
    .await
    .expect(201);
    api.post(
        &cpp("risks"),
        &lee,
        &json!({"text": "Smoker, 20 pack-years"}),
    )
    .await
    .expect(201);
    let dmid = dm["id"].as_str().unwrap();
    api.post(&cpp(&format!("concerns/{dmid}/resolve")), &lee, &json!({}))
        .await
        .expect(200);
    let profile = api
        .get(&api_path(&pid, "cpp"), &nurse)
        .await
        .expect(200)
        .json;
    assert_eq!(profile["concerns"][0]["resolved"]["user"], "drlee");
    assert_eq!(profile["family"][0]["text"], "Father: MI at 52");
    assert_eq!(profile["risks"].as_array().unwrap().len(), 1);
    assert_eq!(profile["reminders"], json!([]));

    // Ticklers: assigned to a physician or nurse of the site, on their list until done.
    let t = api_path(&pid, "ticklers");
    let r = api
        .post(
            &t,
            &lee,
            &json!({"message": "Repeat HbA1c", "due": "2027-02-28", "assignee": "reception"}),
        )
        .await
        .expect(400);
    assert!(r.text.contains("assignee"), "{}", r.text);
    api.post(
        &t,
        &lee,
        &json!({"message": "x", "due": "2027-02-28", "assignee": "nobody"}),
    )
    .await
    .expect(400);
    let tk = api
        .post(
            &t,
            &lee,
            &json!({"message": "Repeat HbA1c", "due": "2027-02-28", "assignee": "nurse.kim"}),
        )
        .await
        .expect(201)
        .json;
    let tid = tk["id"].as_str().unwrap();
    let mine = api
        .get("/plugins/encounter/api/ticklers", &nurse)
        .await
        .expect(200)
        .json;
    assert_eq!(mine["ticklers"][0]["message"], "Repeat HbA1c");
    assert_eq!(mine["ticklers"][0]["patient"], pid.as_str());
    let lees = api
        .get("/plugins/encounter/api/ticklers", &lee)
        .await
        .expect(200)
        .json;
    assert_eq!(lees["ticklers"], json!([]), "not assigned to Dr. Lee");
    let done = format!("{t}/{tid}/done");
    api.post(&done, &nurse, &json!({"done": true}))
        .await
        .expect(200);
    let mine = api
        .get("/plugins/encounter/api/ticklers", &nurse)
        .await
        .expect(200)
        .json;
    assert_eq!(mine["ticklers"], json!([]), "done: off the open list");
    let all = api
        .get("/plugins/encounter/api/ticklers?all=true", &nurse)
        .await
        .expect(200)
        .json;
    assert_eq!(all["ticklers"][0]["done"]["user"], "nurse.kim");
    api.post(&done, &nurse, &json!({"done": false}))
        .await
        .expect(200);
    let mine = api
        .get("/plugins/encounter/api/ticklers", &nurse)
        .await
        .expect(200)
        .json;
    assert_eq!(
        mine["ticklers"].as_array().unwrap().len(),
        1,
        "undone: back on it"
    );
    let list = api
        .get("/plugins/encounter/ticklers", &nurse)
        .await
        .expect(200);
    assert!(list.text.contains("MOREAU, Élise") && list.text.contains("Repeat HbA1c"));

    // The pages: the encounter page in the shell, with the patient's banner; a note's history.
    let page = api
        .get(&format!("/plugins/encounter/patients/{pid}"), &lee)
        .await
        .expect(200);
    assert!(
        page.text.contains("MOREAU, Élise"),
        "the banner names the patient"
    );
    assert!(page.text.contains("Type 2 diabetes"));
    assert!(page.text.contains("128/82"));
    let page = api
        .get(
            &format!("/plugins/encounter/patients/{pid}/notes/{nid}"),
            &lee,
        )
        .await
        .expect(200);
    assert!(page.text.contains("Wheeze noted on re-examination"));
    assert!(page.text.contains("Version 1") && page.text.contains("Version 2 (current)"));
    api.get(&format!("/plugins/encounter/patients/{pid}"), &desk)
        .await
        .expect(403);
    // A chart that does not exist.
    api.get(&api_path("no-such-patient", "notes"), &lee)
        .await
        .expect(404);
}

/// A host page as a browser asks for it, signed in with `token`'s session.
async fn page(api: &Api, path: &str, token: &str) -> crate::support::Resp {
    api.send(
        reqwest::Method::GET,
        path,
        crate::support::Auth::Cookie(token, None),
        None,
        &[("accept", "text/html")],
    )
    .await
}

/// Where each panel of a chart page starts, in the page's order.
fn panel_order(html: &str) -> Vec<String> {
    html.match_indices("data-panel=\"")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

#[tokio::test]
async fn the_chart_composes_the_sites_panels_in_its_order_and_survives_failing_ones() {
    let (encounter, faulty) = (
        package("plugins/encounter"),
        package("tests/plugins/faulty"),
    );
    let sb = Sandbox::new();
    // Every patient-data read and write waits for its durable audit entry, and the plugin
    // deadline is wall time: on a shared disk stalling for seconds under the parallel suite,
    // a 5 s deadline failed a plain edit once. These tests are about notes, not deadlines.
    let mut env = plugin_env();
    env.push(("OSLER_PLUGINS__TIMEOUT_MS", "20000".to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(2, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let lee = api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;
    let desk = api.login(demo::RECEPTION.0, demo::RECEPTION.1).await;
    api.install_enabled(&admin, &encounter, "main", &CAPS).await;
    api.install_enabled(&admin, &faulty, "main", &[]).await;
    let pid = api
        .create(&lee, &patient("Okafor", "Chidi", "1958-07-21", &hcn(42)))
        .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let note = api
        .post(
            &api_path(&pid, "notes"),
            &lee,
            &json!({"type": "office", "date": "2026-11-30", "format": "soap",
                    "subjective": "Follow-up of hypertension.", "plan": "Continue ramipril."}),
        )
        .await
        .expect(201)
        .json;
    let nid = note["id"].as_str().unwrap();
    api.post(
        &api_path(&pid, &format!("notes/{nid}/sign")),
        &lee,
        &json!({}),
    )
    .await
    .expect(200);
    api.post(
        &api_path(&pid, "measurements"),
        &lee,
        &json!({"systolic": 142, "diastolic": 91, "weight": 88, "height": 176}),
    )
    .await
    .expect(201);
    api.post(
        &api_path(&pid, "cpp/concerns"),
        &lee,
        &json!({"text": "Essential hypertension", "code": "I10"}),
    )
    .await
    .expect(201);

    // Every enabled plugin's panels, each in its place: the working ones rendered, the one
    // that traps and the one that never answers "unavailable", and the page still answers.
    let chart = format!("/patients/{pid}");
    let r = page(&api, &chart, &lee).await.expect(200);
    let html = &r.text;
    assert_eq!(
        panel_order(html),
        ["notes", "cpp", "measurements", "broken", "slow", "fine"],
        "the default order: plugin by plugin, as each declares them"
    );
    assert!(
        html.contains("Follow-up of hypertension."),
        "the notes panel"
    );
    assert!(
        html.contains("Essential hypertension") && html.contains("I10"),
        "the CPP panel"
    );
    assert!(html.contains("142/91 mmHg"), "the measurements panel");
    assert!(html.contains("28.4"), "the BMI, computed");
    assert!(html.contains(&format!("Fine for {pid}")));
    let unavailable: Vec<&str> = html
        .match_indices("Unavailable: ")
        .map(|(i, _)| &html[i..i + html[i..].find('<').unwrap()])
        .collect();
    assert_eq!(
        unavailable,
        [
            "Unavailable: the plugin stopped with an error.",
            "Unavailable: it did not answer within 1500 ms."
        ],
        "{html}"
    );
    assert!(
        !html.contains("always traps"),
        "no plugin internals on the page"
    );
    // The banner flag a plugin contributes, on the chart and on the plugin's own pages.
    assert!(html.contains("Test flag: Test allergy (severe)"), "{html}");
    let r = page(&api, &format!("/plugins/encounter/patients/{pid}"), &lee)
        .await
        .expect(200);
    assert!(r.text.contains("Test flag: Test allergy (severe)"));

    // The site's order, set by an administrator (and only by one).
    let order = |id: &str| format!("/api/v1/admin/plugins/{id}/sites/main/panels");
    api.put(&order("faulty"), &lee, &json!({"fine": 1}), None)
        .await
        .expect(403);
    let r = api
        .put(&order("faulty"), &admin, &json!({"nonsense": 1}), None)
        .await
        .expect(400);
    assert!(r.text.contains("broken, slow, fine"), "{}", r.text);
    api.put(
        &order("faulty"),
        &admin,
        &json!({"fine": 1, "slow": 9}),
        None,
    )
    .await
    .expect(200);
    api.put(
        &order("encounter"),
        &admin,
        &json!({"measurements": 2}),
        None,
    )
    .await
    .expect(200);
    let r = page(&api, &chart, &lee).await.expect(200);
    assert_eq!(
        panel_order(&r.text),
        ["fine", "measurements", "slow", "notes", "cpp", "broken"]
    );
    let trail = api.audit_all(&admin, "actor=admin").await;
    assert!(
        trail
            .iter()
            .any(|e| e["action"] == "plugin.panels" && e["detail"] == "fine=1, slow=9"),
        "the layout change is audited"
    );

    // Reception reads the chart but not the clinical notes: the encounter panels are not
    // theirs, and nothing was read through them.
    let r = page(&api, &chart, &desk).await.expect(200);
    assert_eq!(panel_order(&r.text), ["fine", "slow", "broken"]);
    assert!(!r.text.contains("Follow-up of hypertension."));

    // A disabled plugin's panels (and flag) are gone; the rest still render.
    api.disable(&admin, "faulty", "main").await;
    let r = page(&api, &chart, &lee).await.expect(200);
    assert_eq!(panel_order(&r.text), ["measurements", "notes", "cpp"]);
    assert!(!r.text.contains("Test flag"));
    assert!(!r.text.contains("Unavailable"));

    // Each panel's reads are on the patient's trail, as the physician's, through the plugin.
    let reads = api.audit_all(&admin, &format!("patient={pid}")).await;
    assert!(reads.iter().any(|e| e["action"] == "patient-data.read"
        && e["actor"] == "drlee"
        && e["via"] == "encounter"));
    assert!(
        !reads
            .iter()
            .any(|e| e["actor"] == "reception" && e["via"] == "encounter"),
        "reception's chart read nothing through the encounter plugin"
    );
}
