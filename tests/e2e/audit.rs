//! The audit trail: every read and search leaves an entry an auditor can find by user and by
//! patient, and a changed byte in the log is caught by `osler audit verify`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, Sandbox, demo, enc, hcn, id_of, patient};

const ADMIN_PW: &str = "administrator password";
const DOC_PW: &str = "physician password";

#[tokio::test]
async fn reads_and_searches_are_audited_and_tampering_is_detected() {
    let sb = Sandbox::new();
    sb.init(ADMIN_PW);
    sb.osler_ok(&["site", "add", "north", "--name", "North"], &[]);
    sb.add_user(
        "drwho",
        "physician",
        &["main", "north"],
        DOC_PW,
        &["--name", "Dr. Who"],
    );
    let server = sb.serve();
    let api = server.api();
    let doc = server.login(("drwho", DOC_PW)).await;
    let admin = server.login(("admin", ADMIN_PW)).await;

    let people = [("Tremblay", "Léa"), ("Tremblay", "Noël"), ("Gagnon", "Zoë")];
    let mut ids = Vec::new();
    for (i, (family, given)) in people.iter().enumerate() {
        ids.push(id_of(
            &api.create(&doc, &patient(family, given, "1970-01-01", &hcn(i as u64)))
                .await,
        ));
    }

    // N reads...
    let reads = [&ids[0], &ids[0], &ids[1], &ids[2], &ids[0]];
    for id in reads {
        api.get(&format!("/api/v1/patients/{id}"), &doc)
            .await
            .expect(200);
    }
    // ... and M searches, remembering what each returned.
    let mut searches: Vec<Vec<String>> = Vec::new();
    for q in [
        "name=tremblay",
        "name=zoe",
        "birthdate=1970-01-01",
        "name=nobodyatall",
    ] {
        let found = api.search_all(&doc, q).await;
        searches.push(found.iter().map(id_of).collect());
    }
    assert_eq!(searches[0].len(), 2);
    assert_eq!(searches[2].len(), 3);
    assert!(searches[3].is_empty());

    // By user.
    let by_doc = api
        .audit_all(&admin, &format!("actor={}", enc("drwho")))
        .await;
    assert!(by_doc.iter().all(|e| e["actor"] == "drwho"), "{by_doc:?}");
    let read_entries: Vec<&Value> = by_doc
        .iter()
        .filter(|e| e["action"] == "patient.read")
        .collect();
    assert_eq!(read_entries.len(), reads.len(), "{read_entries:?}");
    for (e, id) in read_entries.iter().zip(reads) {
        assert_eq!(e["patient"], id.as_str());
        assert_eq!(e["resource"], format!("Patient/{id}"));
        assert_eq!(e["outcome"], "success");
        assert_eq!(e["role"], "physician");
        assert_eq!(e["site"], "main");
        assert!(e["via"].is_null(), "a direct API read names no plugin: {e}");
        assert!(
            e["source"]
                .as_str()
                .is_some_and(|s| s.contains("127.0.0.1")),
            "{e}"
        );
    }
    let search_entries: Vec<&Value> = by_doc
        .iter()
        .filter(|e| e["action"] == "patient.search")
        .collect();
    assert_eq!(search_entries.len(), searches.len(), "{search_entries:?}");
    for (e, returned) in search_entries.iter().zip(&searches) {
        let listed: Vec<String> = e["patients"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        assert_eq!(
            &listed, returned,
            "a search entry lists the patients it returned: {e}"
        );
        assert!(e["via"].is_null());
        assert_eq!(e["outcome"], "success");
    }
    assert_eq!(
        by_doc
            .iter()
            .filter(|e| e["action"] == "patient.create")
            .count(),
        people.len()
    );
    let seqs: Vec<u64> = by_doc.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let sorted = {
        let mut s = seqs.clone();
        s.sort();
        s.dedup();
        s
    };
    assert_eq!(seqs, sorted, "oldest first, each entry once");

    // By patient: every access to Léa's chart and nothing about anyone else.
    let by_lea = api.audit_all(&admin, &format!("patient={}", ids[0])).await;
    let touches = |e: &Value, id: &str| {
        e["patient"] == id
            || e["patients"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p == id))
    };
    assert!(by_lea.iter().all(|e| touches(e, &ids[0])), "{by_lea:?}");
    let count = |action: &str| by_lea.iter().filter(|e| e["action"] == action).count();
    assert_eq!(count("patient.create"), 1);
    assert_eq!(
        count("patient.read"),
        reads.iter().filter(|r| **r == &ids[0]).count()
    );
    assert_eq!(
        count("patient.search"),
        searches.iter().filter(|s| s.contains(&ids[0])).count()
    );
    // Both filters together: the admin never opened the chart, only its audit trail.
    let both = api
        .audit_all(&admin, &format!("patient={}&actor=admin", ids[0]))
        .await;
    assert!(!both.is_empty());
    assert!(
        both.iter()
            .all(|e| e["actor"] == "admin" && e["action"] == "audit.read"),
        "{both:?}"
    );

    // Small pages visit the same entries.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = api
            .get(
                &format!("/api/v1/audit?actor=drwho&_count=3{cursor}"),
                &admin,
            )
            .await
            .expect(200);
        let entries = r.json["entries"].as_array().unwrap().clone();
        assert!(entries.len() <= 3);
        paged.extend(entries);
        match r.json["next"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, by_doc);

    // By time range, with and without a user, in small pages.
    let everything = api.audit_all(&admin, "").await;
    let ms = |e: &Value| {
        let t = time::OffsetDateTime::parse(
            e["time"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    };
    let (from, to) = (&by_doc[2], &by_doc[by_doc.len() - 3]);
    let (since, until) = (
        enc(from["time"].as_str().unwrap()),
        enc(to["time"].as_str().unwrap()),
    );
    let in_range = |e: &&Value| ms(e) >= ms(from) && ms(e) < ms(to);
    for (query, expected) in [
        (
            format!("since={since}&until={until}"),
            everything
                .iter()
                .filter(in_range)
                .cloned()
                .collect::<Vec<_>>(),
        ),
        (
            format!("actor=drwho&since={since}&until={until}"),
            by_doc.iter().filter(in_range).cloned().collect(),
        ),
        (
            format!("actor=drwho&since={since}"),
            by_doc
                .iter()
                .filter(|e| ms(e) >= ms(from))
                .cloned()
                .collect(),
        ),
    ] {
        assert!(!expected.is_empty(), "{query}");
        let mut got = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = api
                .get(&format!("/api/v1/audit?{query}&_count=2{cursor}"), &admin)
                .await
                .expect(200);
            got.extend(r.json["entries"].as_array().unwrap().iter().cloned());
            match r.json["next"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(got, expected, "{query}");
    }
    let r = api
        .get("/api/v1/audit?since=yesterday", &admin)
        .await
        .expect(400);
    assert_eq!(r.json["error"]["field"], "since");

    // The chain is intact, over the API and from the command line once stopped.
    let v = api.get("/api/v1/audit/verify", &admin).await.expect(200);
    assert_eq!(v.json["ok"], true, "{}", v.text);
    // The log can be verified while the server runs; the database cannot be changed under it.
    let out = sb.osler(&["audit", "verify"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify while serving: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // It stops at the database's lock before it reads the trail: a line the server is still
    // writing (here half of one) must not be taken for a crash's torn line and cut off.
    let log = sb.audit_log();
    let whole = std::fs::read(&log).expect("audit log");
    let mut writing = whole.clone();
    writing.extend_from_slice(b"{\"seq\":");
    std::fs::write(&log, &writing).expect("append");
    let out = sb.osler(&["user", "disable", "drwho"], &[]);
    assert!(
        !out.status.success(),
        "a second process changed a served database"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use"), "the refusal says why: {err}");
    let after = std::fs::read(&log).expect("audit log");
    assert!(
        after == writing,
        "the refused command changed the served trail ({} bytes, then {})",
        writing.len(),
        after.len()
    );
    std::fs::write(&log, &whole).expect("restore");
    api.get("/api/v1/auth/me", &doc).await.expect(200);
    let status = server.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    let out = sb.osler(&["audit", "verify"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Change one byte inside the action of an entry in the middle of the log.
    let log = sb.audit_log();
    let text = std::fs::read_to_string(&log).expect("audit log");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 10, "the log has {} entries", lines.len());
    let victim = lines.len() / 2;
    let entry: Value = serde_json::from_str(lines[victim]).expect("entry JSON");
    let seq = entry["seq"].as_u64().expect("seq");
    let line_start: usize = lines[..victim].iter().map(|l| l.len() + 1).sum();
    let at = line_start
        + lines[victim].find("\"action\":\"").expect("action field")
        + "\"action\":\"".len()
        + 1;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
    std::fs::write(&log, &bytes).expect("write audit log");

    let out = sb.osler(&["audit", "verify"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "verify must fail: {stdout}");
    assert!(
        stdout.contains(&format!("BROKEN at entry {seq}:")),
        "verify names the altered entry {seq}: {stdout}"
    );

    // A server started on the tampered log reports the same break to an auditor.
    let server = sb.serve();
    let admin = server.login(("admin", ADMIN_PW)).await;
    let v = server
        .api()
        .get("/api/v1/audit/verify", &admin)
        .await
        .expect(200);
    assert_eq!(v.json["ok"], false, "{}", v.text);
    assert_eq!(v.json["broken_at"], seq, "{}", v.text);
}

#[tokio::test]
async fn an_access_is_audited_at_the_site_it_was_made_from() {
    let sb = Sandbox::new();
    let server = sb.demo(2);
    let api = server.api();
    let lee = server.login(demo::PHYSICIAN).await;
    let admin = server.login(demo::ADMIN).await;
    let p = api.search_all(&lee, "_count=1").await;
    let path = format!("/api/v1/patients/{}", id_of(&p[0]));

    // Per request, with the site header.
    api.send(
        Method::GET,
        &path,
        Auth::Bearer(&lee),
        None,
        &[("x-osler-site", "north")],
    )
    .await
    .expect(200);
    let r = api
        .send(
            Method::GET,
            &path,
            Auth::Bearer(&lee),
            None,
            &[("x-osler-site", "elsewhere")],
        )
        .await
        .expect(403);
    assert_eq!(r.error_code(), "forbidden");
    // For the session, by switching site.
    api.send(
        Method::PUT,
        "/api/v1/auth/site",
        Auth::Bearer(&lee),
        Some(&json!({"site": "north"})),
        &[],
    )
    .await
    .expect(204);
    assert_eq!(api.get("/api/v1/auth/me", &lee).await.json["site"], "north");
    api.get(&path, &lee).await.expect(200);
    // A site the user does not belong to is refused.
    let nurse = server.login(demo::NURSE).await;
    api.send(
        Method::PUT,
        "/api/v1/auth/site",
        Auth::Bearer(&nurse),
        Some(&json!({"site": "north"})),
        &[],
    )
    .await
    .expect(403);

    let reads: Vec<Value> = api
        .audit_all(&admin, "actor=drlee")
        .await
        .into_iter()
        .filter(|e| e["action"] == "patient.read")
        .collect();
    let sites = |outcome: &str| -> Vec<&str> {
        reads
            .iter()
            .filter(|e| e["outcome"] == outcome)
            .map(|e| e["site"].as_str().unwrap())
            .collect()
    };
    assert_eq!(sites("success"), ["north", "north"], "{reads:?}");
    // The refusal is on the trail too, with the site the request claimed.
    assert_eq!(sites("denied"), ["elsewhere"], "{reads:?}");
}

// ---------------------------------------------------------------------------------------------
// The trail as evidence: signed checkpoints, a read-only verify, recovery recorded.

/// sha256 of a file, to show that verification changed no byte.
fn digest(path: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).unwrap_or_default()))
}

/// `osler audit verify` with extra arguments: exit code and what it printed.
fn verify(sb: &Sandbox, args: &[&str]) -> (i32, String) {
    let mut all = vec!["audit", "verify"];
    all.extend(args);
    let out = sb.osler(&all, &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Rewrite a chain of entries as a forger would: renumbered from 1 and re-hashed, so that
/// every link holds.
fn rehash(entries: &[osler_host::audit::AuditEntry]) -> String {
    use sha2::{Digest, Sha256};
    let mut prev = "0".repeat(64);
    let mut out = String::new();
    for (i, e) in entries.iter().enumerate() {
        let mut e = e.clone();
        e.seq = i as u64 + 1;
        e.prev = prev.clone();
        e.hash = String::new();
        e.hash = hex::encode(Sha256::digest(serde_json::to_vec(&e).unwrap()));
        prev = e.hash.clone();
        out.push_str(&serde_json::to_string(&e).unwrap());
        out.push('\n');
    }
    out
}

fn entries_of(log: &str) -> Vec<osler_host::audit::AuditEntry> {
    log.lines()
        .map(|l| serde_json::from_str(l).expect("an audit entry"))
        .collect()
}

/// `osler serve` on a data directory it must refuse: the process exits with an error, and
/// what it says.
fn serve_refused(sb: &Sandbox) -> String {
    let mut child = std::process::Command::new(crate::support::OSLER)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(sb.data_dir())
        .current_dir(sb.root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start osler");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            assert!(
                !status.success(),
                "osler served a trail that does not check out"
            );
            return String::from_utf8_lossy(&out.stderr).into_owned();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("osler served a trail that does not check out");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[tokio::test]
async fn verify_reads_only_and_catches_cuts_rewrites_and_forged_checkpoints() {
    let sb = Sandbox::new();
    // A second location for checkpoints, outside the data directory, for every command.
    let elsewhere = sb.root().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let copy = elsewhere.join("checkpoints.log");
    std::fs::write(
        sb.root().join("osler.toml"),
        format!("[audit]\ncheckpoint_copy = \"{}\"\n", copy.display()),
    )
    .unwrap();
    let init = sb.osler_ok(&["init"], &[("OSLER_ADMIN_PASSWORD", ADMIN_PW)]);
    let key = init
        .split_whitespace()
        .find(|w| w.starts_with("ed25519:"))
        .unwrap_or_else(|| panic!("init prints the checkpoint key: {init}"))
        .to_string();
    sb.add_user("drwho", "physician", &["main"], DOC_PW, &[]);
    let server = sb.serve();
    let api = server.api();
    let doc = server.login(("drwho", DOC_PW)).await;
    for i in 0..3 {
        let p = api
            .create(
                &doc,
                &patient("Evidence", "Ann", "1970-01-01", &hcn(50 + i)),
            )
            .await;
        for _ in 0..2 {
            api.get(&format!("/api/v1/patients/{}", id_of(&p)), &doc)
                .await
                .expect(200);
        }
    }
    api.search_all(&doc, "name=evidence").await;
    let admin = server.login(("admin", ADMIN_PW)).await;
    let v = api.get("/api/v1/audit/verify", &admin).await.expect(200);
    assert_eq!(v.json["ok"], true, "{}", v.text);
    assert_eq!(v.json["key"], key.as_str(), "{}", v.text);
    assert!(v.json["checkpoints"].as_u64().unwrap() >= 1, "{}", v.text);
    assert!(server.terminate().success());

    let log = sb.audit_log();
    let checkpoints = sb.data_dir().join("audit").join("checkpoints.log");
    let original = std::fs::read_to_string(&log).unwrap();
    let original_checkpoints = std::fs::read_to_string(&checkpoints).unwrap();
    let n = original.lines().count();

    // Intact, and the stop signed the very last entry, here and at the second location.
    let (code, out) = verify(&sb, &["--key", &key]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{n} entries verified")), "{out}");
    assert!(out.contains(&format!("covering {n} entries")), "{out}");
    let copied = std::fs::read_to_string(&copy).unwrap();
    assert!(
        copied.lines().last() == original_checkpoints.lines().last(),
        "the second location has the last checkpoint:\n{copied}"
    );

    // Each cut, each checked twice: verify fails, and leaves the file exactly as it found it.
    let without_last: String = original
        .lines()
        .take(n - 1)
        .map(|l| format!("{l}\n"))
        .collect();
    let torn = &original[..original.len() - 10];
    for (what, damaged, says) in [
        (
            "the last line deleted",
            without_last.as_str(),
            "removed from the end",
        ),
        ("the file emptied", "", "removed from the end"),
        ("the last line cut off", torn, "cut off"),
    ] {
        std::fs::write(&log, damaged).unwrap();
        let before = digest(&log);
        for _ in 0..2 {
            let (code, out) = verify(&sb, &["--key", &key]);
            assert_eq!(code, 1, "{what} must be caught: {out}");
            assert!(out.contains(says), "{what}: {out}");
        }
        assert_eq!(digest(&log), before, "verify changed the log ({what})");
    }

    // A forger drops every chart read and re-hashes the chain: every link holds, but it no
    // longer matches what was signed. The server refuses it too.
    let kept: Vec<_> = entries_of(&original)
        .into_iter()
        .filter(|e| e.action != "patient.read")
        .collect();
    let rewritten = rehash(&kept);
    std::fs::write(&log, &rewritten).unwrap();
    let (code, out) = verify(&sb, &["--key", &key]);
    assert_eq!(code, 1, "a re-hashed rewrite must be caught: {out}");
    let refused = serve_refused(&sb);
    assert!(refused.contains("audit verify"), "{refused}");

    // ... and signs a checkpoint of the rewrite with a key of their own.
    let head = entries_of(&rewritten).last().unwrap().hash.clone();
    let theirs = osler_registry::SecretKey::generate().unwrap();
    let forged = osler_host::audit::Checkpoint::sign(&theirs, kept.len() as u64, &head);
    std::fs::write(
        &checkpoints,
        format!(
            "{original_checkpoints}{}",
            String::from_utf8(forged.line()).unwrap()
        ),
    )
    .unwrap();
    let (code, out) = verify(&sb, &["--key", &key]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is not signed by the audit key"), "{out}");

    // Whoever holds the data directory holds the key too, and can re-sign every checkpoint:
    // only the copies at the second location still tell the truth.
    let ours =
        osler_registry::SecretKey::load(&sb.data_dir().join("keys").join("audit-checkpoint.pem"))
            .unwrap();
    let resigned = osler_host::audit::Checkpoint::sign(&ours, kept.len() as u64, &head);
    std::fs::write(&checkpoints, resigned.line()).unwrap();
    let no_copy = sb.root().join("no-copy.toml");
    std::fs::write(&no_copy, "").unwrap();
    let (code, out) = verify(&sb, &["--key", &key, "--config", no_copy.to_str().unwrap()]);
    assert_eq!(
        code, 0,
        "without the copies the re-signed rewrite passes: {out}"
    );
    let (code, out) = verify(&sb, &["--key", &key]);
    assert_eq!(code, 1, "the second location's checkpoints catch it: {out}");

    // Put everything back: intact again, and verify never wrote a byte.
    std::fs::write(&log, &original).unwrap();
    std::fs::write(&checkpoints, &original_checkpoints).unwrap();
    let before = (digest(&log), digest(&checkpoints), digest(&copy));
    let (code, out) = verify(&sb, &["--key", &key]);
    assert_eq!(code, 0, "{out}");
    assert_eq!((digest(&log), digest(&checkpoints), digest(&copy)), before);
}

#[tokio::test]
async fn recovery_and_a_new_key_are_recorded_in_the_trail() {
    let sb = Sandbox::new();
    sb.init(ADMIN_PW);
    sb.add_user("drwho", "physician", &["main"], DOC_PW, &[]);

    // A crash: the server is killed right after acknowledged writes, and (as after a power
    // cut) the log file lost its last entries; the write-ahead log still holds them.
    let wal = sb.data_dir().join("wal");
    let held = |lines: usize| {
        let segs = osler_host::storage::wal::segments(&wal).unwrap();
        let records = osler_host::storage::wal::read_all(&wal, &segs).unwrap();
        records.iter().filter(|r| r.journal.is_some()).count() >= lines
    };
    let mut cut = false;
    for attempt in 0..5 {
        let server = sb.serve();
        let api = server.api();
        let doc = server.login(("drwho", DOC_PW)).await;
        api.create(
            &doc,
            &patient("Crash", "Ann", "1970-01-01", &hcn(70 + attempt)),
        )
        .await;
        server.kill();
        // A storage checkpoint between the write and the kill trims the log; try again.
        if held(2) {
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "the write-ahead log never held the last entries at a kill"
    );
    let log = sb.audit_log();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let keep: String = lines[..lines.len() - 2]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&log, keep).unwrap();
    let before = digest(&log);
    let (code, out) = verify(&sb, &[]);
    assert_eq!(
        code, 0,
        "entries the write-ahead log holds are not lost: {out}"
    );
    assert!(
        out.contains("2 entries are in the write-ahead log"),
        "{out}"
    );
    assert_eq!(digest(&log), before, "verify restored nothing itself");

    // An older data directory: no checkpoint key and no checkpoints.
    std::fs::remove_dir_all(sb.data_dir().join("keys")).unwrap();
    std::fs::remove_file(sb.data_dir().join("audit").join("checkpoints.log")).unwrap();
    let (code, out) = verify(&sb, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no checkpoint key yet"), "{out}");

    let server = sb.serve();
    let admin = server.login(("admin", ADMIN_PW)).await;
    let system = server.api().audit_all(&admin, "actor=system").await;
    let recovered: Vec<&Value> = system
        .iter()
        .filter(|e| e["action"] == "audit.recover")
        .collect();
    assert_eq!(recovered.len(), 1, "{system:?}");
    assert!(
        recovered[0]["detail"]
            .as_str()
            .unwrap()
            .contains("restored from the write-ahead log"),
        "{}",
        recovered[0]
    );
    let key_entries: Vec<&Value> = system
        .iter()
        .filter(|e| e["action"] == "audit.key")
        .collect();
    let newest = key_entries.last().expect("the new key is recorded");
    assert!(
        newest["detail"]
            .as_str()
            .unwrap()
            .contains("written before any checkpoint"),
        "{newest}"
    );
    assert!(server.terminate().success());
    let (code, out) = verify(&sb, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("signed checkpoints:"), "{out}");
}

#[tokio::test]
async fn refusals_before_the_handler_are_audited_too() {
    let sb = Sandbox::new();
    let server = sb.demo(2);
    let api = server.api();
    // Nurse Kim belongs to main only.
    let kim = server.login(demo::NURSE).await;
    let p = api.search_all(&kim, "_count=1").await;
    let id = id_of(&p[0]);
    let chart = format!("/api/v1/patients/{id}");

    // A site she does not belong to: a read and a search.
    for path in [chart.as_str(), "/api/v1/patients?name=a"] {
        api.send(
            Method::GET,
            path,
            Auth::Bearer(&kim),
            None,
            &[("x-osler-site", "north")],
        )
        .await
        .expect(403);
    }
    // Signed in by cookie, a change without the CSRF token: an update and a registration.
    let mut changed = p[0].clone();
    changed["gender"] = json!("other");
    api.send(
        Method::PUT,
        &chart,
        Auth::Cookie(&kim, None),
        Some(&changed),
        &[("if-match", "W/\"1\"")],
    )
    .await
    .expect(403);
    api.send(
        Method::POST,
        "/api/v1/patients",
        Auth::Cookie(&kim, Some("not-the-token")),
        Some(&patient("Csrf", "Ann", "1970-01-01", &hcn(3))),
        &[],
    )
    .await
    .expect(403);
    // Deleting a chart, and a method the route does not take.
    let r = api
        .send(Method::DELETE, &chart, Auth::Bearer(&kim), None, &[])
        .await
        .expect(405);
    assert!(r.text.contains("never deleted"), "{}", r.text);
    api.send(Method::PATCH, &chart, Auth::Bearer(&kim), None, &[])
        .await
        .expect(405);

    let admin = server.login(demo::ADMIN).await;
    let denied: Vec<Value> = api
        .audit_all(&admin, "actor=nurse.kim")
        .await
        .into_iter()
        .filter(|e| e["outcome"] == "denied")
        .collect();
    let find =
        |action: &str| -> Vec<&Value> { denied.iter().filter(|e| e["action"] == action).collect() };
    let read = find("patient.read");
    assert_eq!(read.len(), 1, "{denied:?}");
    assert_eq!(read[0]["patient"], id.as_str());
    assert_eq!(read[0]["site"], "north", "the site the request claimed");
    assert!(
        read[0]["detail"].as_str().unwrap().contains("north"),
        "{}",
        read[0]
    );
    assert_eq!(find("patient.search").len(), 1, "{denied:?}");
    let update = find("patient.update");
    assert_eq!(update.len(), 1, "{denied:?}");
    assert_eq!(update[0]["patient"], id.as_str());
    assert!(
        update[0]["detail"].as_str().unwrap().contains("CSRF"),
        "{}",
        update[0]
    );
    assert_eq!(find("patient.create").len(), 1, "{denied:?}");
    let delete = find("patient.delete");
    assert_eq!(delete.len(), 1, "{denied:?}");
    assert_eq!(delete[0]["patient"], id.as_str());
    assert_eq!(find("patient.patch").len(), 1, "{denied:?}");
    // Nothing was changed by any of them.
    let now = api.get(&chart, &kim).await.expect(200);
    assert_eq!(now.json, p[0]);
}
