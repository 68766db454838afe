//! The first-party plugins on plugin API 0.2, end to end: what scheduling and prescribing
//! announce (a subscriber fixture, `tests/plugins/listener`, receives every event, for the
//! person who caused it), scheduling refusing a booking for a patient id that names nobody, and
//! prescribing moving the records an API 0.1 version kept in `kv` into patient-scoped storage
//! when a clinic upgrades. One server for all of it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::prescribing::PRESCRIBING_CAPS;
use crate::support::{
    Api, Sandbox, demo, hcn, package, packages, patient, plugin_env, repackage, set_key,
};

const SCHED: &str = "/plugins/scheduling/api";
const DAY: &str = "2030-01-07";

/// The events the listener has kept, once there are at least `n` of them.
async fn events(api: &Api, token: &str, n: usize) -> Vec<Value> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r = api.get("/plugins/listener/events", token).await.expect(200);
        let all = r.json["events"].as_array().cloned().unwrap_or_default();
        if all.len() >= n {
            return all;
        }
        assert!(
            Instant::now() < until,
            "only {} of {n} events arrived: {all:?}",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A prescription as prescribing 0.2.0 (plugin API 0.1) kept it in `kv`, with a quantity
/// written before quantities had units.
fn legacy_prescription(pid: &str) -> Value {
    json!({
        "id": "1767607200000-000", "patient": pid, "site": "main",
        "drug": {"din": null, "name": "Metformin", "atc": "A10BA02",
                 "ingredients": ["metformin"], "custom": true, "sample": false},
        "strength": "500 mg",
        "sig": {"dose": "1", "unit": "tab", "route": "PO", "frequency": "BID", "prn": false,
                "prnReason": null, "duration": null},
        "sigText": "1 tab PO BID", "directions": "Take 1 tablet by mouth twice a day.",
        "quantity": "60", "repeats": 2, "longTerm": true, "instructions": "",
        "status": "active", "external": false, "prescriber": "drlee",
        "prescriberName": "Dr. Amelia Lee", "written": "2026-01-05T10:00:00",
        "checks": {"status": "checked", "message": "Checked: no interactions or allergies found.",
                   "warnings": [], "hidden": 0, "notChecked": [], "posts": []},
        "overrideReason": null, "renewedFrom": null, "reasonStopped": null,
        "history": [{"at": "2026-01-05T10:00:00", "by": "Dr. Amelia Lee", "what": "prescribed"}]
    })
}

fn legacy_allergy() -> Value {
    json!({
        "id": "1767607100000-000", "kind": "ingredient", "allergen": "penicillin",
        "reaction": "hives", "severity": "moderate", "onset": "2019", "status": "active",
        "recordedBy": "Nurse Kim", "recordedAt": "2026-01-05T09:58:00"
    })
}

#[tokio::test]
async fn first_party_plugins_on_api_0_2_announce_refuse_unknown_patients_and_keep_old_records() {
    let sb = Sandbox::new();
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(1, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let lee = api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;
    let reception = api.login(demo::RECEPTION.0, demo::RECEPTION.1).await;
    let pid = api
        .create(&lee, &patient("Okafor", "Ada", "1961-03-14", &hcn(901)))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A clinic that ran prescribing on plugin API 0.1 kept its records in `kv`: an older
    // "prescribing" (here the hostile fixture's component under prescribing's id, which can
    // write any key) leaves an allergy and a prescription there.
    let old = repackage(sb.root(), &packages().hostile, "prescribing-0.1.0", |m| {
        set_key(m, "id", "\"prescribing\"")
    });
    api.install_enabled(&admin, &old, "main", &["kv"]).await;
    for (key, value) in [
        (
            format!("patient/{pid}/allergy/1767607100000-000"),
            legacy_allergy(),
        ),
        (
            format!("patient/{pid}/rx/1767607200000-000"),
            legacy_prescription(&pid),
        ),
    ] {
        api.put(
            &format!("/plugins/prescribing/kv/{key}"),
            &lee,
            &value,
            None,
        )
        .await
        .expect(204);
    }

    // The upgrade: scheduling, drugref, prescribing on API 0.2, and the subscriber.
    let caps = ["kv", "directory", "patients.read", "events.publish"];
    api.install_enabled(&admin, &package("plugins/scheduling"), "main", &caps)
        .await;
    api.install_enabled(&admin, &package("plugins/drugref"), "main", &["kv"])
        .await;
    let r = api.install(&admin, &package("plugins/prescribing")).await;
    assert!(r.status.is_success(), "{}", r.text);
    if r.text.contains("staged") {
        // It asks for more than the old version (patient-data, events.publish).
        api.post(
            "/api/v1/admin/plugins/prescribing/approve",
            &admin,
            &json!({}),
        )
        .await
        .expect(200);
    }
    api.put(
        "/api/v1/admin/plugins/prescribing/sites/main/grants",
        &admin,
        &json!({ "capabilities": PRESCRIBING_CAPS }),
        None,
    )
    .await
    .expect(200);
    let v = api
        .get("/api/v1/admin/plugins/prescribing", &admin)
        .await
        .expect(200);
    assert_eq!(v.json["version"], "0.5.4", "{}", v.text);
    api.install_enabled(&admin, &package("tests/plugins/listener"), "main", &["kv"])
        .await;

    // The first open of the chart moves the records, for the physician, on the patient's trail.
    let chart = api
        .get(&format!("/plugins/prescribing/api/patients/{pid}"), &lee)
        .await
        .expect(200);
    assert_eq!(
        chart.json["allergies"][0]["allergen"], "penicillin",
        "{}",
        chart.text
    );
    assert_eq!(
        chart.json["active"][0]["drug"]["name"], "Metformin",
        "{}",
        chart.text
    );
    assert_eq!(chart.json["active"][0]["quantity"]["amount"], "60");
    assert_eq!(chart.json["active"].as_array().unwrap().len(), 1);
    assert_eq!(chart.json["allergies"].as_array().unwrap().len(), 1);
    let trail = api.audit_all(&admin, &format!("patient={pid}")).await;
    assert!(
        trail.iter().any(|e| e["action"] == "patient-data.write"
            && e["actor"] == "drlee"
            && e["outcome"] == "success"),
        "{trail:?}"
    );
    // Checked against the moved allergy like any other.
    let amoxicillin = api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/check"),
            &lee,
            &json!({"drugName": "Amoxicillin", "atc": "J01CA04", "ingredients": ["amoxicillin"],
                    "strength": "500 mg", "sig": "1 cap PO TID x 7 days"}),
        )
        .await
        .expect(200);
    assert!(
        amoxicillin.text.contains("penicillin"),
        "{}",
        amoxicillin.text
    );

    // Prescribing announces a prescription, for the physician who wrote it.
    let rx = api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/prescriptions"),
            &lee,
            &json!({"drugName": "Atorvastatin", "atc": "C10AA05", "ingredients": ["atorvastatin"],
                    "strength": "20 mg", "sig": "1 tab PO daily", "quantity": "30 tablets",
                    "repeats": 5, "longTerm": true}),
        )
        .await
        .expect(201);
    let rx_id = rx.json["prescription"]["id"].as_str().unwrap().to_string();
    // And discontinuing one moved from kv.
    api.post(
        &format!(
            "/plugins/prescribing/api/patients/{pid}/prescriptions/1767607200000-000/discontinue"
        ),
        &lee,
        &json!({"reason": "eGFR below 30"}),
    )
    .await
    .expect(200);
    let after = api
        .get(&format!("/plugins/prescribing/api/patients/{pid}"), &lee)
        .await
        .expect(200);
    let active: Vec<&str> = after.json["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["drug"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(active, ["Atorvastatin"], "{}", after.text);
    assert_eq!(after.json["past"][0]["status"], "stopped");

    // Scheduling: a patient id that names nobody is refused, plainly, and nothing is booked
    // (issue 14: chart number 1301 was booked as "Patient 1301").
    let all_day: Value = (1..=7)
        .map(|d| (d.to_string(), json!([{"start": "00:00", "end": "24:00"}])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    api.put(
        &format!("{SCHED}/availability/drlee"),
        &reception,
        &json!({ "days": all_day }),
        None,
    )
    .await
    .expect(200);
    let nobody = api
        .post(
            &format!("{SCHED}/appointments"),
            &reception,
            &json!({"provider": "drlee", "patient": "1301", "date": DAY, "start": "09:00",
                    "minutes": 15}),
        )
        .await
        .expect(400);
    assert_eq!(nobody.error_code(), "invalid");
    assert!(
        nobody
            .text
            .contains("there is no patient with id \\\"1301\\\""),
        "{}",
        nobody.text
    );
    let day = api
        .get(&format!("{SCHED}/day/drlee/{DAY}"), &reception)
        .await
        .expect(200);
    assert_eq!(day.json["appointments"], json!([]), "{}", day.text);

    // Booked, arrived, cancelled: three events, for the receptionist.
    let booked = api
        .post(
            &format!("{SCHED}/appointments"),
            &reception,
            &json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "09:00",
                    "minutes": 15, "reason": "knee pain"}),
        )
        .await
        .expect(201);
    let appt = booked.json["appointment"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for status in ["H", "C"] {
        api.post(
            &format!("{SCHED}/appointments/{appt}/status"),
            &reception,
            &json!({ "status": status }),
        )
        .await
        .expect(200);
    }

    // Events are in order per topic; these are five topics, one event each.
    let got = events(&api, &lee, 5).await;
    let mut topics: Vec<&str> = got.iter().map(|e| e["topic"].as_str().unwrap()).collect();
    topics.sort();
    assert_eq!(
        topics,
        [
            "prescribing.prescription.discontinued",
            "prescribing.prescription.prescribed",
            "scheduling.appointment.booked",
            "scheduling.appointment.cancelled",
            "scheduling.appointment.status-changed",
        ],
        "{got:?}"
    );
    let on = |topic: &str| got.iter().find(|e| e["topic"] == topic).unwrap();
    let prescribed = on("prescribing.prescription.prescribed");
    let discontinued = on("prescribing.prescription.discontinued");
    assert_eq!(prescribed["source"], "prescribing");
    assert_eq!(prescribed["servedBy"], "drlee");
    assert_eq!(prescribed["via"], json!(["prescribing"]));
    assert_eq!(prescribed["payload"]["patient"], pid.as_str());
    let written = &prescribed["payload"]["prescriptions"][0];
    assert_eq!(written["id"], rx_id.as_str());
    assert_eq!(written["drug"]["name"], "Atorvastatin");
    assert_eq!(written["drug"]["atc"], "C10AA05");
    assert_eq!(written["quantity"], "30 tablets");
    assert_eq!(written["checks"], "checked");
    assert_eq!(discontinued["payload"]["prescription"], "1767607200000-000");
    assert_eq!(discontinued["payload"]["status"], "stopped");
    assert_eq!(discontinued["payload"]["drug"]["name"], "Metformin");
    // Free text a clinician typed about the patient stays out of events.
    assert!(!discontinued.to_string().contains("eGFR"), "{discontinued}");

    let b = on("scheduling.appointment.booked");
    let arrived = on("scheduling.appointment.status-changed");
    let cancelled = on("scheduling.appointment.cancelled");
    for e in [b, arrived, cancelled] {
        assert_eq!(e["source"], "scheduling");
        assert_eq!(e["site"], "main");
        assert_eq!(e["servedBy"], "reception");
        assert_eq!(e["payload"]["appointment"], appt.as_str());
        assert_eq!(e["payload"]["patient"], pid.as_str());
        assert_eq!(e["payload"]["provider"], "drlee");
        assert_eq!(e["payload"]["date"], DAY);
        assert_eq!(e["payload"]["start"], "09:00");
        assert!(!e.to_string().contains("knee"), "{e}");
    }
    assert_eq!(b["payload"]["status"], "t");
    assert_eq!(b["payload"]["fhirStatus"], "booked");
    assert_eq!(arrived["payload"]["fhirStatus"], "arrived");
    assert_eq!(arrived["payload"]["previousStatus"], "t");
    assert_eq!(cancelled["payload"]["fhirStatus"], "cancelled");
    assert_eq!(cancelled["payload"]["previousStatus"], "H");
    // Each event once, with an id of its own.
    let mut ids: Vec<&str> = got.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5);
}
