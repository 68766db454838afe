//! Every Patient the API hands out is valid FHIR R4, checked with the official R4 JSON schema
//! (tests/fhir/validate.js, run with Node.js).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Sandbox, demo, hcn, id_of, patient, rich_patient};

fn validator_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fhir")
}

/// Run the R4 schema validator over `resources`; returns (passed, output).
fn validate(sb: &Sandbox, name: &str, resources: &[Value]) -> (bool, String) {
    let dir = validator_dir();
    assert!(
        dir.join("node_modules").is_dir(),
        "the FHIR validator is not installed: run `npm ci --prefix tests/fhir` in the \
         workspace root (needs Node.js), then run the tests again"
    );
    let file = sb.root().join(name);
    std::fs::write(&file, serde_json::to_vec_pretty(resources).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(dir.join("validate.js"))
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `node` ({e}): install Node.js to validate FHIR resources")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => (true, text),
        Some(1) => (false, text),
        other => panic!("the FHIR validator failed to run ({other:?}): {text}"),
    }
}

#[tokio::test]
async fn every_patient_the_api_returns_is_valid_fhir_r4() {
    let sb = Sandbox::new();
    let server = sb.demo(40);
    let api = server.api();
    let t = server.login(demo::PHYSICIAN).await;
    let mut seen: Vec<Value> = Vec::new();

    // Creates: a minimal record, a full one, and the edge cases of the shape.
    let mut bodies = vec![
        patient("Lee", "Min", "2000-02-29", &hcn(1)),
        rich_patient(&hcn(2)),
        json!({"resourceType": "Patient", "name": [{"given": ["Cher"]}]}),
        json!({
            "name": [{"family": "O'Brien", "given": ["Siobhán"]}],
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.1", "value": "X-1"}],
            "deceasedDateTime": "2024-06-01T10:30:00-04:00",
            "gender": "unknown"
        }),
        json!({"name": [{"family": "Mensah"}], "deceasedBoolean": true, "gender": "other",
               "birthDate": "1850-01-01"}),
    ];
    let mut last = patient("Kowalski", "Jan", "1955-05-05", &hcn(3));
    last["communication"] = json!([{"language": {"text": "Polish"}}]);
    bodies.push(last);
    let mut created = Vec::new();
    for b in &bodies {
        let p = api.create(&t, b).await;
        seen.push(p.clone());
        created.push(p);
    }

    // Reads and updates.
    for p in &created {
        let path = format!("/api/v1/patients/{}", id_of(p));
        seen.push(api.get(&path, &t).await.expect(200).json);
        let mut changed = p.clone();
        changed["active"] = json!(false);
        changed["telecom"] = json!([{"system": "sms", "value": "+1 416 555 0100", "rank": 2}]);
        seen.push(
            api.put(&path, &t, &changed, Some("W/\"1\""))
                .await
                .expect(200)
                .json,
        );
        seen.push(api.get(&path, &t).await.expect(200).json);
    }

    // Searches, over the demo patients as well.
    for q in [
        "_count=100",
        "name=lee",
        "name=levesque",
        "birthdate=2000-02-29",
        "name=o",
    ] {
        seen.extend(api.search_all(&t, q).await);
    }
    assert!(seen.len() > 60, "only {} resources collected", seen.len());

    let (ok, report) = validate(&sb, "patients.json", &seen);
    assert!(
        ok,
        "the API returned FHIR R4 Patients the official schema rejects:\n{report}"
    );

    // The validator itself is not a rubber stamp.
    let bad = vec![json!({"resourceType": "Patient", "birthDate": "29/02/2000", "gender": "f"})];
    let (ok, report) = validate(&sb, "bad.json", &bad);
    assert!(!ok, "the validator accepted an invalid Patient: {report}");
}
