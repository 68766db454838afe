//! Registering and changing patient records: validation, duplicates, versions, no deletion.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, Auth, Sandbox, card_of, demo, hcn, id_of, patient};

/// A date `days` from today, `YYYY-MM-DD`.
fn days_from_today(days: i64) -> String {
    let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[tokio::test]
async fn invalid_records_are_refused_naming_the_field_and_nothing_is_stored() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::RECEPTION).await;

    let bad_card = patient("Ignatieff", "Anna", "1980-05-01", "1286844022");
    let future = patient("Futurebaby", "Nova", &days_from_today(2), &hcn(1));
    let mut nameless = patient("x", "x", "1980-05-01", &hcn(2));
    nameless.as_object_mut().unwrap().remove("name");
    let mut blank_name = patient("x", "x", "1980-05-01", &hcn(3));
    blank_name["name"] = json!([{"family": "  ", "given": []}]);

    for (what, body, field) in [
        (
            "invalid health card number",
            &bad_card,
            "identifier[0].value",
        ),
        ("future birth date", &future, "birthDate"),
        ("missing name", &nameless, "name"),
        ("blank name", &blank_name, "name"),
    ] {
        let r = api.post("/api/v1/patients", &t, body).await;
        assert_eq!(r.status.as_u16(), 400, "{what}: {}", r.text);
        assert_eq!(r.error_code(), "invalid", "{what}: {}", r.text);
        assert_eq!(r.json["error"]["field"], field, "{what}: {}", r.text);
        assert!(
            r.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: the refusal explains itself"
        );
        assert!(r.header("location").is_none());
    }

    // An unknown field is refused by name rather than silently dropped.
    let mut unknown = patient("Strangefield", "Olga", "1980-05-01", &hcn(4));
    unknown["favouriteColour"] = json!("blue");
    let r = api.post("/api/v1/patients", &t, &unknown).await.expect(400);
    assert_eq!(r.error_code(), "invalid");
    assert!(r.text.contains("favouriteColour"), "{}", r.text);
    // ... also inside a nested object.
    let mut nested = patient("Strangefield", "Olga", "1980-05-01", &hcn(5));
    nested["name"][0]["nickname"] = json!("Ollie");
    let r = api.post("/api/v1/patients", &t, &nested).await.expect(400);
    assert!(r.text.contains("nickname"), "{}", r.text);

    // Nothing of the refused records was stored.
    for q in [
        "identifier=1286844022".to_string(),
        format!("identifier={}", hcn(1)),
        format!("identifier={}", hcn(2)),
        format!("identifier={}", hcn(3)),
        format!("identifier={}", hcn(4)),
        format!("identifier={}", hcn(5)),
        "name=Ignatieff".into(),
        "name=Futurebaby".into(),
        "name=Strangefield".into(),
    ] {
        let found = api.search_all(&t, &q).await;
        assert!(found.is_empty(), "{q} found a refused record: {found:?}");
    }
    assert!(
        api.search_all(&t, "_count=100").await.is_empty(),
        "no patient was stored"
    );

    // The same record with the mistake corrected is accepted.
    let ok = api
        .create(
            &t,
            &patient("Futurebaby", "Nova", &days_from_today(-2), &hcn(1)),
        )
        .await;
    assert_eq!(api.search_all(&t, "name=futurebaby").await.len(), 1);
    assert_eq!(card_of(&ok).as_deref(), Some(hcn(1).as_str()));
}

#[tokio::test]
async fn a_health_card_number_registers_one_chart_only() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::RECEPTION).await;
    let card = hcn(10);

    let first = api
        .create(&t, &patient("Okafor", "Chidi", "1975-02-03", &card))
        .await;
    let first_id = id_of(&first);

    let r = api
        .post(
            "/api/v1/patients",
            &t,
            &patient("Okafor", "Chidinma", "1999-09-09", &card),
        )
        .await
        .expect(409);
    assert_eq!(r.error_code(), "conflict");
    assert_eq!(r.json["error"]["existing"], first_id.as_str(), "{}", r.text);
    assert!(
        r.text.contains(&first_id),
        "the message names the chart: {}",
        r.text
    );

    let found = api.search_all(&t, &format!("identifier={card}")).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0], first, "the first chart is unchanged");
    assert!(api.search_all(&t, "name=chidinma").await.is_empty());

    // A second chart with the number in an update is refused the same way.
    let second = api
        .create(&t, &patient("Mensah", "Kofi", "1980-01-01", &hcn(11)))
        .await;
    let mut change = second.clone();
    change["identifier"] = json!([{"system": crate::support::ON_HCN_SYSTEM, "value": card}]);
    let r = api
        .put(
            &format!("/api/v1/patients/{}", id_of(&second)),
            &t,
            &change,
            Some("W/\"1\""),
        )
        .await
        .expect(409);
    assert_eq!(r.json["error"]["existing"], first_id.as_str(), "{}", r.text);
    let again = api
        .get(&format!("/api/v1/patients/{}", id_of(&second)), &t)
        .await
        .expect(200);
    assert_eq!(again.json, second);
}

#[tokio::test]
async fn an_update_must_name_the_version_it_changes() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::PHYSICIAN).await;

    let r = api
        .post(
            "/api/v1/patients",
            &t,
            &patient("Haddad", "Omar", "1968-07-21", &hcn(20)),
        )
        .await
        .expect(201);
    let created = r.json.clone();
    let id = id_of(&created);
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/patients/{id}").as_str())
    );
    assert_eq!(created["meta"]["versionId"], "1");
    assert_eq!(created["active"], true);
    let chart = created["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["system"] == "urn:osler:chart-number")
        .cloned()
        .expect("Osler assigns a chart number");
    let path = format!("/api/v1/patients/{id}");

    // The client's copy, without meta: the server cannot tell which version it changes.
    let mut edit = patient("Haddad", "Omar", "1968-07-21", &hcn(20));
    edit["telecom"] = json!([{"system": "phone", "value": "613-555-0101"}]);
    let r = api.put(&path, &t, &edit, None).await.expect(428);
    assert_eq!(r.error_code(), "precondition-required");

    // A stale version is refused and changes nothing.
    let r = api.put(&path, &t, &edit, Some("W/\"7\"")).await.expect(409);
    assert_eq!(r.error_code(), "conflict");
    assert_eq!(api.get(&path, &t).await.expect(200).json, created);

    // The right version is accepted; the ETag moves on.
    let r = api.put(&path, &t, &edit, Some("W/\"1\"")).await.expect(200);
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    assert_eq!(r.json["meta"]["versionId"], "2");
    assert_eq!(r.json["telecom"][0]["value"], "613-555-0101");
    assert!(
        r.json["identifier"].as_array().unwrap().contains(&chart),
        "the chart number survives an update that left it out: {}",
        r.json
    );
    let read = api.get(&path, &t).await.expect(200);
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    assert_eq!(read.json, r.json);

    // Someone still holding version 1 is now stale.
    let mut late = edit.clone();
    late["gender"] = json!("male");
    api.put(&path, &t, &late, Some("W/\"1\"")).await.expect(409);
    assert_eq!(api.get(&path, &t).await.json["gender"], "female");

    // meta.versionId in the body works instead of If-Match.
    let mut body = read.json.clone();
    body["gender"] = json!("male");
    let r = api.put(&path, &t, &body, None).await.expect(200);
    assert_eq!(r.header("etag"), Some("W/\"3\""));
    assert_eq!(api.get(&path, &t).await.json["gender"], "male");
    let mut stale_body = read.json.clone();
    stale_body["gender"] = json!("other");
    api.put(&path, &t, &stale_body, None).await.expect(409);

    // An update is validated like a create.
    let mut bad = r.json.clone();
    bad["birthDate"] = json!(days_from_today(30));
    let e = api.put(&path, &t, &bad, Some("W/\"3\"")).await.expect(400);
    assert_eq!(e.json["error"]["field"], "birthDate");
    assert_eq!(api.get(&path, &t).await.json, r.json);
}

#[tokio::test]
async fn charts_are_never_deleted_but_can_be_marked_inactive() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::PHYSICIAN).await;
    let p = api
        .create(&t, &patient("Rossi", "Ana", "1990-12-24", &hcn(30)))
        .await;
    let path = format!("/api/v1/patients/{}", id_of(&p));

    let r = api
        .send(Method::DELETE, &path, Auth::Bearer(&t), None, &[])
        .await
        .expect(405);
    assert_eq!(r.error_code(), "method-not-allowed");
    assert_eq!(api.get(&path, &t).await.expect(200).json, p);

    let mut inactive: Value = p.clone();
    inactive["active"] = json!(false);
    let r = api
        .put(&path, &t, &inactive, Some("W/\"1\""))
        .await
        .expect(200);
    assert_eq!(r.json["active"], false);

    let read = api.get(&path, &t).await.expect(200);
    assert_eq!(read.json["active"], false);
    assert_eq!(read.json["name"], p["name"]);
    let found = api.search_all(&t, "name=rossi ana").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["active"], false);

    // Still not deletable once inactive.
    api.send(Method::DELETE, &path, Auth::Bearer(&t), None, &[])
        .await
        .expect(405);
    api.get(&path, &t).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_registrations_of_one_card_make_one_chart() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::RECEPTION).await;
    let card = hcn(40);

    let attempts = (0..20).map(|i| {
        let (api, t, card) = (api.clone(), t.clone(), card.clone());
        tokio::spawn(async move {
            let body = patient("Twin", &format!("Attempt{i}"), "2010-10-10", &card);
            api.post("/api/v1/patients", &t, &body).await
        })
    });
    let mut created = Vec::new();
    let mut refused = Vec::new();
    for a in attempts.collect::<Vec<_>>() {
        let r = a.await.expect("task");
        match r.status.as_u16() {
            201 => created.push(r.json),
            409 => refused.push(r.json),
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    assert_eq!(created.len(), 1, "exactly one registration wins");
    assert_eq!(refused.len(), 19);
    let winner = id_of(&created[0]);
    for e in &refused {
        assert_eq!(e["error"]["existing"], winner.as_str(), "{e}");
    }
    let found = api.search_all(&t, &format!("identifier={card}")).await;
    assert_eq!(found, created);
    assert_eq!(api.search_all(&t, "name=twin").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_updates_of_one_version_let_exactly_one_win() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::NURSE).await;
    let p = api
        .create(&t, &patient("Race", "Condition", "1991-01-01", &hcn(50)))
        .await;
    let path = format!("/api/v1/patients/{}", id_of(&p));

    let attempts = (0..10).map(|i| {
        let (api, t, path, mut body) = (api.clone(), t.clone(), path.clone(), p.clone());
        tokio::spawn(async move {
            body["telecom"] = json!([{"system": "phone", "value": format!("416-555-01{i:02}")}]);
            api.put(&path, &t, &body, Some("W/\"1\"")).await
        })
    });
    let mut winners = Vec::new();
    for a in attempts.collect::<Vec<_>>() {
        let r = a.await.expect("task");
        match r.status.as_u16() {
            200 => winners.push(r.json),
            409 => assert_eq!(r.error_code(), "conflict"),
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "one change wins, the others are told to reload"
    );
    let now = api.get(&path, &t).await.expect(200);
    assert_eq!(now.header("etag"), Some("W/\"2\""));
    assert_eq!(now.json, winners[0]);
}

#[tokio::test]
async fn an_oversized_or_malformed_body_is_refused() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::RECEPTION).await;

    let mut huge = patient("Big", "Body", "1980-01-01", &hcn(60));
    huge["address"] = json!([{"text": "x".repeat(2 * 1024 * 1024)}]);
    // On its own connection: the server answers before reading the whole body and then
    // closes the connection, which a pooled client could otherwise try to reuse.
    let one_off = Api {
        base: api.base.clone(),
        client: reqwest::Client::new(),
    };
    let r = one_off
        .post("/api/v1/patients", &t, &huge)
        .await
        .expect(413);
    assert_eq!(r.error_code(), "too-large");

    let r = api
        .client
        .post(format!("{}/api/v1/patients", api.base))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{\"resourceType\": \"Patient\", \"name\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = api
        .client
        .post(format!("{}/api/v1/patients", api.base))
        .bearer_auth(&t)
        .header("content-type", "text/plain")
        .body(patient("Plain", "Text", "1980-01-01", &hcn(61)).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert!(api.search_all(&t, "_count=100").await.is_empty());
}

#[tokio::test]
async fn an_update_is_found_under_its_new_details_only() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::PHYSICIAN).await;
    let p = api
        .create(&t, &patient("Kowalski", "Jan", "1950-05-05", &hcn(70)))
        .await;
    let id = id_of(&p);
    let path = format!("/api/v1/patients/{id}");

    let mut renamed = patient("Nowak", "Janina", "1951-06-06", &hcn(71));
    renamed["meta"] = json!({"versionId": "1"});
    api.put(&path, &t, &renamed, None).await.expect(200);

    for q in [
        "name=kowalski".to_string(),
        "birthdate=1950-05-05".into(),
        format!("identifier={}", hcn(70)),
    ] {
        assert!(
            api.search_all(&t, &q).await.is_empty(),
            "{q} still finds the old details"
        );
    }
    for q in [
        "name=nowak janina".to_string(),
        "birthdate=1951-06-06".into(),
        format!("identifier={}", hcn(71)),
    ] {
        let found = api.search_all(&t, &q).await;
        assert_eq!(found.len(), 1, "{q}");
        assert_eq!(id_of(&found[0]), id);
    }
    // The old card number is free for another chart now.
    api.create(&t, &patient("Other", "Person", "1990-01-01", &hcn(70)))
        .await;

    // A chart that does not exist is not found, and its id is not invented.
    let r = api
        .get("/api/v1/patients/no-such-chart", &t)
        .await
        .expect(404);
    assert_eq!(r.error_code(), "not-found");
    let r = api
        .put(
            "/api/v1/patients/no-such-chart",
            &t,
            &renamed,
            Some("W/\"1\""),
        )
        .await
        .expect(404);
    assert_eq!(r.error_code(), "not-found");
    // The body's id must be the URL's.
    let mut other = api.get(&path, &t).await.json;
    other["id"] = json!("someone-else");
    let r = api
        .put(&path, &t, &other, Some("W/\"2\""))
        .await
        .expect(400);
    assert_eq!(r.json["error"]["field"], "id");
}

#[tokio::test]
async fn what_would_pass_for_a_different_record_is_refused_naming_the_field() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::RECEPTION).await;
    let base = || patient("Hygiene", "Ann", "1950-05-01", &hcn(900));
    const MRN: &str = "urn:example:clinic-mrn";

    // JSON followed by anything else.
    let r = api
        .client
        .post(format!("{}/api/v1/patients", api.base))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(format!("{} trailing garbage", base()))
        .send()
        .await
        .unwrap();
    let r = crate::support::Resp::read(r).await.expect(400);
    assert_eq!(r.error_code(), "invalid");
    assert!(r.text.contains("more after the JSON value"), "{}", r.text);

    let with = |f: &dyn Fn(&mut Value)| {
        let mut p = base();
        f(&mut p);
        p
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "a death in year 0000",
            with(&|p| p["deceasedDateTime"] = json!("0000-01-01")),
            "deceasedDateTime",
        ),
        (
            "a death in 9999",
            with(&|p| p["deceasedDateTime"] = json!("9999-12-31")),
            "deceasedDateTime",
        ),
        (
            "a death before birth",
            with(&|p| p["deceasedDateTime"] = json!("1950-04-30T10:00:00-05:00")),
            "deceasedDateTime",
        ),
        (
            "a name of combining marks only",
            with(&|p| p["name"][0]["given"] = json!(["\u{301}\u{308}\u{301}"])),
            "name[0].given[0]",
        ),
        (
            "a name of zero-width spaces",
            with(&|p| p["name"][0]["family"] = json!("\u{200B}\u{200B}")),
            "name[0].family",
        ),
        (
            "a right-to-left override in a name",
            with(&|p| p["name"][0]["family"] = json!("Hyg\u{202E}eneiH")),
            "name[0].family",
        ),
        (
            "4,000 given names",
            with(&|p| {
                p["name"][0]["given"] =
                    json!((0..4000).map(|i| format!("D{i}")).collect::<Vec<_>>())
            }),
            "name[0].given",
        ),
        (
            "an identifier with a zero-width space inside",
            with(&|p| {
                p["identifier"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"system": MRN, "value": "AB\u{200B}123"}))
            }),
            "identifier[1].value",
        ),
        (
            "a chart number chosen by the client",
            with(&|p| {
                p["identifier"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"system": "urn:osler:chart-number", "value": "1001"}))
            }),
            "identifier[1].system",
        ),
    ];
    for (what, body, field) in &cases {
        let r = api.post("/api/v1/patients", &t, body).await;
        assert_eq!(r.status.as_u16(), 400, "{what}: {}", r.text);
        assert_eq!(r.json["error"]["field"], *field, "{what}: {}", r.text);
    }
    assert!(
        api.search_all(&t, "name=hygiene").await.is_empty(),
        "nothing refused was stored"
    );

    // One identifier, however it is typed: spaces, no-break spaces, case.
    let first = api
        .create(
            &t,
            &with(&|p| {
                p["identifier"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"system": MRN, "value": "  AB-123\u{A0}"}))
            }),
        )
        .await;
    assert_eq!(first["identifier"][1]["value"], "AB-123", "stored tidied");
    for (i, variant) in ["AB-123", " ab-123", "AB-123\u{A0}", "Ab - 123", "\tab-123 "]
        .iter()
        .enumerate()
    {
        let body = json!({
            "resourceType": "Patient",
            "name": [{"family": "Hygiene", "given": ["Other"]}],
            "identifier": [
                {"system": crate::support::ON_HCN_SYSTEM, "value": hcn(901 + i as u64)},
                {"system": MRN, "value": variant}
            ]
        });
        let r = api.post("/api/v1/patients", &t, &body).await.expect(409);
        assert_eq!(r.json["error"]["existing"], id_of(&first), "{variant:?}");
    }
    // Searching finds it however it is typed, too.
    let found = api
        .search_all(
            &t,
            &format!(
                "identifier={}",
                crate::support::enc(&format!("{MRN}|ab 123"))
            ),
        )
        .await;
    assert_eq!(found.len(), 0, "a space inside is not a hyphen");
    let found = api
        .search_all(
            &t,
            &format!(
                "identifier={}",
                crate::support::enc(&format!("{MRN}| ab-123"))
            ),
        )
        .await;
    assert_eq!(found.len(), 1);

    // The chart number is Osler's: PUT cannot change it, and keeps it when left out.
    let id = id_of(&first);
    let chart = first["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .position(|i| i["system"] == "urn:osler:chart-number")
        .expect("a chart number");
    let mut changed = first.clone();
    changed["identifier"][chart]["value"] = json!("999999");
    let r = api
        .put(
            &format!("/api/v1/patients/{id}"),
            &t,
            &changed,
            Some("W/\"1\""),
        )
        .await
        .expect(400);
    assert_eq!(
        r.json["error"]["field"],
        format!("identifier[{chart}].value")
    );
    let mut left_out = first.clone();
    left_out["identifier"].as_array_mut().unwrap().remove(chart);
    let kept = api
        .put(
            &format!("/api/v1/patients/{id}"),
            &t,
            &left_out,
            Some("W/\"1\""),
        )
        .await
        .expect(200);
    assert!(
        kept.json["identifier"]
            .as_array()
            .unwrap()
            .contains(&first["identifier"][chart]),
        "{}",
        kept.text
    );
}

/// Sites share one register of charts (see README, "Decisions worth knowing"): a chart
/// registered at one site is read, found and updated at another by the clinic's staff there,
/// and every access records the site it was made from. What a user reaches depends on their
/// role, and on belonging to the site they act at.
#[tokio::test]
async fn a_chart_registered_at_one_site_is_the_same_chart_at_every_site() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    // Nurse Kim works at main only; Dr. Patel at north only.
    let kim = server.login(demo::NURSE).await;
    let patel = api.login("drpatel", "osler-demo-physician").await;
    let p = api
        .create(&kim, &patient("Sitewide", "Ann", "1961-02-03", &hcn(77)))
        .await;
    let id = id_of(&p);
    let r = api
        .get(&format!("/api/v1/patients/{id}"), &patel)
        .await
        .expect(200);
    assert_eq!(r.json, p);
    let found = api.search_all(&patel, "name=sitewide").await;
    assert_eq!(found.len(), 1);
    let mut changed = p.clone();
    changed["gender"] = json!("other");
    api.put(
        &format!("/api/v1/patients/{id}"),
        &patel,
        &changed,
        Some("W/\"1\""),
    )
    .await
    .expect(200);
    // Acting at a site one does not belong to is refused.
    let r = api
        .send(
            Method::GET,
            &format!("/api/v1/patients/{id}"),
            Auth::Bearer(&patel),
            None,
            &[("x-osler-site", "main")],
        )
        .await
        .expect(403);
    assert_eq!(r.json["error"]["field"], "x-osler-site");
    // The trail says where each access came from.
    let admin = server.login(demo::ADMIN).await;
    let trail = api.audit_all(&admin, &format!("patient={id}")).await;
    let site_of = |actor: &str, action: &str| -> Vec<String> {
        trail
            .iter()
            .filter(|e| e["actor"] == actor && e["action"] == action && e["outcome"] == "success")
            .map(|e| e["site"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(site_of("nurse.kim", "patient.create"), ["main"]);
    assert_eq!(site_of("drpatel", "patient.read"), ["north"]);
    // The refused read is recorded too, with the site it claimed.
    let refused: Vec<&str> = trail
        .iter()
        .filter(|e| e["actor"] == "drpatel" && e["outcome"] == "denied")
        .map(|e| e["site"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(refused, ["main"]);
    assert_eq!(site_of("drpatel", "patient.update"), ["north"]);
    assert_eq!(site_of("drpatel", "patient.search"), ["north"]);
}
