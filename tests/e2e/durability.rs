//! What the server acknowledged survives `kill -9`; what it did not is either whole or absent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Mutex, Notify};

use crate::support::{Api, ON_HCN_SYSTEM, Sandbox, card_of, demo, enc, hcn, id_of, patient};

/// `osler audit verify` on a stopped server's data directory must pass.
fn assert_audit_chain_intact(sb: &Sandbox) {
    let out = sb.osler(&["audit", "verify"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the audit chain must survive a crash:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chart_number(p: &Value) -> Option<String> {
    p["identifier"].as_array()?.iter().find_map(|i| {
        (i["system"] == "urn:osler:chart-number")
            .then(|| i["value"].as_str().map(str::to_string))
            .flatten()
    })
}

/// A record as a user expects to find it: named, identified, versioned.
#[track_caller]
fn assert_complete(p: &Value) {
    assert_eq!(p["resourceType"], "Patient", "{p}");
    assert!(
        p["id"].as_str().is_some_and(|s| !s.is_empty()),
        "no id: {p}"
    );
    assert!(
        p["meta"]["versionId"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "no version: {p}"
    );
    let named = p["name"].as_array().is_some_and(|n| {
        n.iter()
            .any(|n| n["family"].as_str().is_some_and(|f| !f.is_empty()))
    });
    assert!(named, "no name: {p}");
    assert!(card_of(p).is_some(), "no health card number: {p}");
    assert!(chart_number(p).is_some(), "no chart number: {p}");
    assert!(p["birthDate"].is_string(), "no birth date: {p}");
}

/// Every acknowledged create (by its number) reads back as it was answered, byte for byte.
async fn assert_acknowledged_creates_read_back(
    api: &Api,
    token: &str,
    acked: &BTreeMap<u64, Value>,
) {
    for (i, p) in acked {
        let r = api
            .get(&format!("/api/v1/patients/{}", id_of(p)), token)
            .await;
        assert_eq!(
            r.status.as_u16(),
            200,
            "acknowledged create {i} lost: {}",
            r.text
        );
        assert_eq!(&r.json, p, "acknowledged create {i} changed");
    }
}

#[tokio::test]
async fn an_acknowledged_create_survives_sigkill() {
    let sb = Sandbox::new();
    sb.init("administrator password");
    sb.add_user("drkill", "physician", &["main"], "physician password", &[]);
    let server = sb.serve();
    let token = server.login(("drkill", "physician password")).await;
    let created = server
        .api()
        .create(
            &token,
            &patient("Søndergaard", "Søren", "1959-10-10", &hcn(1)),
        )
        .await;
    // No graceful anything: the process dies the moment the 201 is in.
    server.kill();

    assert_audit_chain_intact(&sb);
    let server = sb.serve();
    let api = server.api();
    let token = server.login(("drkill", "physician password")).await;
    let read = api
        .get(&format!("/api/v1/patients/{}", id_of(&created)), &token)
        .await
        .expect(200);
    assert_eq!(read.json, created);
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    let found = api
        .search_all(&token, &format!("name={}", enc("Søndergaard")))
        .await;
    assert_eq!(found, vec![created]);
}

#[derive(Debug)]
enum Outcome {
    Created(Value),
    Refused(u16, String),
    Lost(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_survive_sigkill_whole_or_not_at_all() {
    const N: u64 = 200;
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let token = server.login(demo::RECEPTION).await;

    let outcomes: Arc<Mutex<BTreeMap<u64, Outcome>>> = Arc::default();
    let created = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let mut tasks = Vec::new();
    for i in 0..N {
        let (client, url, token) = (
            api.client.clone(),
            server.url("/api/v1/patients"),
            token.clone(),
        );
        let (outcomes, created, finished, progress) = (
            outcomes.clone(),
            created.clone(),
            finished.clone(),
            progress.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = patient(
                "Crashtest",
                &format!("Given{i}"),
                "1984-04-04",
                &hcn(100 + i),
            );
            let res = client.post(url).bearer_auth(token).json(&body).send().await;
            let outcome = match res {
                Err(e) => Outcome::Lost(e.to_string()),
                Ok(r) => {
                    let status = r.status().as_u16();
                    match r.text().await {
                        Err(e) => Outcome::Lost(e.to_string()),
                        Ok(text) if status == 201 => {
                            created.fetch_add(1, Ordering::SeqCst);
                            Outcome::Created(serde_json::from_str(&text).expect("201 body is JSON"))
                        }
                        Ok(text) => Outcome::Refused(status, text),
                    }
                }
            };
            outcomes.lock().await.insert(i, outcome);
            finished.fetch_add(1, Ordering::SeqCst);
            progress.notify_one();
        }));
    }

    // Pull the plug once a quarter of the creates have been acknowledged.
    let wait = async {
        while created.load(Ordering::SeqCst) < (N / 4) as usize
            && finished.load(Ordering::SeqCst) < N as usize
        {
            progress.notified().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(300), wait)
        .await
        .expect("creates made no progress");
    server.kill();
    for t in tasks {
        t.await.expect("create task");
    }
    let outcomes = Arc::try_unwrap(outcomes).expect("tasks done").into_inner();
    let acked: BTreeMap<u64, Value> = outcomes
        .iter()
        .filter_map(|(i, o)| match o {
            Outcome::Created(p) => Some((*i, p.clone())),
            _ => None,
        })
        .collect();
    for (i, o) in &outcomes {
        if let Outcome::Refused(status, text) = o {
            panic!("create {i} was refused before the crash ({status}): {text}");
        }
    }
    let lost: Vec<&str> = outcomes
        .values()
        .filter_map(|o| match o {
            Outcome::Lost(why) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    eprintln!(
        "{} creates acknowledged, {} cut off by SIGKILL (first: {:?})",
        acked.len(),
        lost.len(),
        lost.first()
    );
    assert_eq!(outcomes.len(), N as usize);

    assert_audit_chain_intact(&sb);
    let server = sb.serve();
    let api = server.api();
    let token = server.login(demo::RECEPTION).await;

    // Nothing was acknowledged without its audit entry, and the restarted server's audit
    // trail still finds them by user and by patient.
    let admin = server.login(demo::ADMIN).await;
    let audited: BTreeSet<String> = api
        .audit_all(&admin, "actor=reception")
        .await
        .iter()
        .filter(|e| e["action"] == "patient.create" && e["outcome"] == "success")
        .map(|e| e["patient"].as_str().unwrap().to_string())
        .collect();
    for (i, p) in &acked {
        assert!(
            audited.contains(&id_of(p)),
            "create {i} acknowledged without an audit entry"
        );
    }
    let some = acked
        .values()
        .next()
        .expect("at least one acknowledged create");
    let by_patient = api
        .audit_all(&admin, &format!("patient={}", id_of(some)))
        .await;
    assert!(by_patient.iter().any(|e| e["action"] == "patient.create"));

    // Every acknowledged create is there, byte for byte.
    assert_acknowledged_creates_read_back(&api, &token, &acked).await;

    // Every attempted card is registered at most once; acknowledged ones exactly once.
    for i in 0..N {
        let card = hcn(100 + i);
        let found = api
            .search_all(
                &token,
                &format!("identifier={}", enc(&format!("{ON_HCN_SYSTEM}|{card}"))),
            )
            .await;
        assert!(
            found.len() <= 1,
            "card {card} registered {} times",
            found.len()
        );
        for p in &found {
            assert_complete(p);
            assert_eq!(p["name"][0]["given"][0], format!("Given{i}"));
        }
        if let Some(p) = acked.get(&i) {
            assert_eq!(
                found.len(),
                1,
                "acknowledged card {card} not found by search"
            );
            assert_eq!(&found[0], p);
        }
    }

    // Nothing partial anywhere: every stored record is complete, no card or chart number
    // appears twice, and the name index agrees with the records.
    let all = api.search_all(&token, "_count=100").await;
    assert!(all.len() >= acked.len());
    assert!(all.len() <= N as usize);
    let mut cards = BTreeSet::new();
    let mut charts = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for p in &all {
        assert_complete(p);
        assert!(ids.insert(id_of(p)), "listed twice: {p}");
        assert!(cards.insert(card_of(p).unwrap()), "card twice: {p}");
        assert!(
            charts.insert(chart_number(p).unwrap()),
            "chart number twice: {p}"
        );
    }
    // The trail records no success for work that was not done: every create it calls a
    // success is a stored chart (a create cut off by the crash left neither chart nor entry).
    for id in &audited {
        assert!(
            ids.contains(id),
            "the audit trail records a create that never happened: Patient/{id}"
        );
    }
    let by_name: BTreeSet<String> = api
        .search_all(&token, "name=crashtest&_count=100")
        .await
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(by_name, ids, "the name index and the records disagree");

    // The restarted server takes new charts without reusing a chart number.
    let fresh = api
        .create(
            &token,
            &patient("After", "Crash", "2001-01-01", &hcn(10_000)),
        )
        .await;
    assert!(
        !charts.contains(&chart_number(&fresh).unwrap()),
        "chart number reused"
    );
    // And a card whose create was cut off can be registered now if it is not there.
    for i in 0..N {
        if !acked.contains_key(&i) && !cards.contains(&hcn(100 + i)) {
            api.create(
                &token,
                &patient(
                    "Crashtest",
                    &format!("Given{i}"),
                    "1984-04-04",
                    &hcn(100 + i),
                ),
            )
            .await;
            break;
        }
    }
}

/// The write-ahead log reuses its files: a checkpoint keeps the segment it retires as the next
/// one's file, old records still in it. Creates acknowledged once the log is writing into such
/// a file survive `kill -9`, and nothing from the file's earlier life comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_in_a_reused_log_file_survive_sigkill() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let token = server.login(demo::RECEPTION).await;
    let wal = sb.data_dir().join("wal");
    // Two checkpoints (one every 5 s while there are writes) put the log in segment 3, in
    // segment 1's old file.
    let reused = || {
        osler_host::storage::wal::segments(&wal)
            .unwrap()
            .last()
            .is_some_and(|n| *n >= 3)
    };
    let mut acked = BTreeMap::new();
    let mut after = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut i = 0u64;
    while after < 20 {
        assert!(std::time::Instant::now() < deadline, "no third log segment");
        let body = patient("Reuse", &format!("Given{i}"), "1990-09-09", &hcn(5000 + i));
        acked.insert(i, api.create(&token, &body).await);
        i += 1;
        if reused() {
            after += 1;
        }
    }
    assert!(wal.join("spare").exists(), "the retired segment is kept");
    server.kill();

    assert_audit_chain_intact(&sb);
    let server = sb.serve();
    let api = server.api();
    let token = server.login(demo::RECEPTION).await;
    assert_acknowledged_creates_read_back(&api, &token, &acked).await;
    let all = api.search_all(&token, "name=reuse&_count=100").await;
    assert_eq!(all.len(), acked.len(), "each create once, nothing more");
    let admin = server.login(demo::ADMIN).await;
    let audited = api
        .audit_all(&admin, "actor=reception")
        .await
        .iter()
        .filter(|e| e["action"] == "patient.create" && e["outcome"] == "success")
        .count();
    assert_eq!(
        audited,
        acked.len(),
        "one audit entry per acknowledged create"
    );
}
