//! Schemathesis (property-based testing of an API from its OpenAPI document) against the
//! document the server serves, with every check: no server error, no status the document does
//! not list, every answer matching its documented schema and content type, invalid input
//! refused, undocumented methods answered 405. The pinned version is installed into
//! `tests/schemathesis/.venv` by `scripts/test.sh` (and `.ci/run`).

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::support::{Sandbox, demo, workspace};

fn schemathesis() -> PathBuf {
    let bin = workspace().join("tests/schemathesis/.venv/bin/schemathesis");
    assert!(
        bin.exists(),
        "schemathesis is not installed: run `python3 -m venv tests/schemathesis/.venv && \
         tests/schemathesis/.venv/bin/pip install -r tests/schemathesis/requirements.txt` in \
         the workspace root (scripts/test.sh does it), then run the tests again"
    );
    bin
}

#[tokio::test]
async fn schemathesis_finds_no_failure_in_the_served_document() {
    let bin = schemathesis();
    let sb = Sandbox::new();
    let server = sb.demo(20);
    let api = server.api();
    let admin = server.login(demo::ADMIN).await;
    // One user who may call every operation: an administrator who is also a physician.
    api.post(
        "/api/v1/users",
        &admin,
        &json!({"username": "fuzzer", "password": "fuzzer password",
                "roles": ["admin", "physician"], "sites": ["main", "north"]}),
    )
    .await
    .expect(201);
    let token = api.login("fuzzer", "fuzzer password").await;
    let url = server.url("/api/v1/openapi.json");
    let config = workspace().join("tests/schemathesis/schemathesis.toml");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .arg("--config-file")
            .arg(config)
            .args([
                "run",
                &url,
                "--checks",
                "all",
                "--max-examples",
                "15",
                "--seed",
                "20261202",
            ])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            // Signing out would end the session the run uses; it is tested in auth.rs.
            .args(["--exclude-path", "/api/v1/auth/logout"])
            .env("NO_COLOR", "1")
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect();
    eprintln!("{}", summary.join("\n"));
    assert!(out.status.success(), "schemathesis found failures:\n{text}");
}
