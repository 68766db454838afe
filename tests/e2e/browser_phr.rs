//! The patient-held record in Chromium: `tests/browser/phr.mjs` against a real `osler demo`
//! with scheduling, the drug reference, prescribing and `phr` enabled at `main`, and a patient
//! with an appointment, a medication and an allergy. Screenshots of every step are kept in
//! `target/browser-phr/`.
//!
//! Needs what the clinic-day browser suite needs (see `browser.rs`): Node.js,
//! `npm ci --prefix tests/browser` and Chromium.

use serde_json::{Value, json};

use crate::support::{Sandbox, demo, hcn, id_of, package, patient, plugin_env};

#[tokio::test]
async fn a_patient_uses_their_own_record_in_chromium() {
    crate::browser::ready();

    let sb = Sandbox::new();
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(5, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    for (dir, caps) in [
        (
            "plugins/scheduling",
            &["kv", "directory", "patients.read", "events.publish"][..],
        ),
        ("plugins/drugref", &["kv"][..]),
        (
            "plugins/prescribing",
            &["kv", "patients.read", "patient-data", "events.publish"][..],
        ),
        ("plugins/phr", &["patients.read"][..]),
    ] {
        api.install_enabled(&admin, &package(dir), "main", caps)
            .await;
    }
    let reception = api.login(demo::RECEPTION.0, demo::RECEPTION.1).await;
    let lee = api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;
    let born = "1979-11-23";
    let pid = id_of(
        &api.create(&reception, &patient("Gagnon", "Marie", born, &hcn(731)))
            .await,
    );
    let all: Value = (1..=7)
        .map(|d| (d.to_string(), json!([{"start": "08:00", "end": "17:00"}])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let sched = "/plugins/scheduling/api";
    api.put(
        &format!("{sched}/availability/drlee"),
        &reception,
        &json!({ "days": all }),
        None,
    )
    .await
    .expect(200);
    api.post(
        &format!("{sched}/appointments"),
        &reception,
        &json!({"provider": "drlee", "patient": pid, "date": "2030-01-07", "start": "09:00", "minutes": 15}),
    )
    .await
    .expect(201);
    api.post(
        &format!("/plugins/prescribing/api/patients/{pid}/prescriptions"),
        &lee,
        &json!({"din": "99000111", "sig": "1 tab PO QAM", "quantity": "90"}),
    )
    .await
    .expect(201);
    api.post(
        &format!("/plugins/prescribing/api/patients/{pid}/allergies"),
        &lee,
        &json!({"kind": "ingredient", "allergen": "penicillin", "reaction": "hives", "severity": "moderate"}),
    )
    .await
    .expect(201);

    crate::browser::run_script(
        "phr.mjs",
        &server.base,
        "browser-phr",
        &[pid.as_str(), born],
    )
    .await;
}
