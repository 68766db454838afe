//! `osler storage migrate`: a clinic whose data directory was made with sled moves to fjall
//! with every record, its users and its audit trail, and is refused while the server runs.

use serde_json::Value;

use crate::support::{Sandbox, demo, enc, hcn, id_of, patient};

fn ids(list: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = list.iter().map(id_of).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_sled_clinic_moves_to_fjall_with_its_records_and_audit_trail() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let demo = sb.demo_with_env(30, &[("OSLER_STORAGE__ENGINE", "sled")]);
    assert!(data.join("db").exists(), "the demo was made with sled");
    demo.terminate();
    // The directory keeps sled, whatever the configuration says; the server says how to move.
    let server = sb.serve();
    assert!(data.join("db").exists() && !data.join("store").exists());
    let hint = server.full_log();
    assert!(hint.contains("osler storage migrate"), "{hint}");
    let api = server.api();
    let lee = server.login(demo::PHYSICIAN).await;
    let created = api
        .create(&lee, &patient("Østergaard", "Åse", "1948-02-29", &hcn(31)))
        .await;
    let everyone = ids(&api.search_all(&lee, "_count=100").await);
    assert_eq!(everyone.len(), 31);

    // While the server runs, the move is refused and nothing changes.
    let refused = sb.osler(&["storage", "migrate"], &[]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("in use by another osler process"), "{said}");
    assert!(said.contains("was not moved"), "{said}");
    assert!(data.join("db").exists());
    assert!(!data.join("store").exists() && !data.join("store.migrating").exists());

    // No clean stop: the last create is in the write-ahead log, perhaps not yet in sled's files.
    server.kill();
    let out = sb.osler_ok(&["storage", "migrate"], &[]);
    assert!(out.contains("moved from sled to fjall"), "{out}");
    assert!(out.contains("copied and compared"), "{out}");
    assert!(data.join("store").exists() && !data.join("db").exists());
    let kept: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sled-before-fjall-"))
        .collect();
    assert_eq!(kept.len(), 1, "the old database is kept once");
    assert!(out.contains(&kept[0]), "the output says where: {out}");
    let verified = sb.osler_ok(&["audit", "verify"], &[]);
    assert!(verified.contains("audit chain intact"), "{verified}");

    // The server starts on the moved database as before: the same records, the same people.
    let server = sb.serve();
    assert!(!server.full_log().contains("osler storage migrate"));
    let api = server.api();
    let lee = server.login(demo::PHYSICIAN).await;
    let read = api
        .get(&format!("/api/v1/patients/{}", id_of(&created)), &lee)
        .await
        .expect(200);
    assert_eq!(read.json, created);
    let found = api
        .search_all(&lee, &format!("name={}", enc("Østergaard")))
        .await;
    assert_eq!(found, vec![created.clone()]);
    assert_eq!(ids(&api.search_all(&lee, "_count=100").await), everyone);
    // New records still get new ids and chart numbers.
    let next = api
        .create(&lee, &patient("Nakamura", "Emi", "1990-01-01", &hcn(32)))
        .await;
    assert!(!everyone.contains(&id_of(&next)));

    // The move is on the audit trail, after the accesses it moved.
    let admin = server.login(demo::ADMIN).await;
    let moves: Vec<Value> = api
        .audit_all(&admin, "actor=system")
        .await
        .into_iter()
        .filter(|e| e["action"] == "storage.migrate")
        .collect();
    assert_eq!(moves.len(), 1, "{moves:?}");
    let detail = moves[0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("moved from sled to fjall"), "{detail}");
    server.terminate();

    // Again: there is nothing left to do.
    let again = sb.osler_ok(&["storage", "migrate"], &[]);
    assert!(
        again.contains("already uses fjall; nothing to do"),
        "{again}"
    );
}
