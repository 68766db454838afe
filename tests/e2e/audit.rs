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
    let out = sb.osler(&["user", "disable", "drwho"], &[]);
    assert!(
        !out.status.success(),
        "a second process changed a served database"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use"), "the refusal says why: {err}");
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
    let sites: Vec<&str> = reads.iter().map(|e| e["site"].as_str().unwrap()).collect();
    assert_eq!(sites, ["north", "north"], "{reads:?}");
}
