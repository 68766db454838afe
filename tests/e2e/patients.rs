//! Registering and changing patient records: validation, duplicates, versions, no deletion.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, Sandbox, card_of, demo, hcn, id_of, patient};

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
        ("invalid health card number", &bad_card, "identifier[0].value"),
        ("future birth date", &future, "birthDate"),
        ("missing name", &nameless, "name"),
        ("blank name", &blank_name, "name"),
    ] {
        let r = api.post("/api/v1/patients", &t, body).await;
        assert_eq!(r.status.as_u16(), 400, "{what}: {}", r.text);
        assert_eq!(r.error_code(), "invalid", "{what}: {}", r.text);
        assert_eq!(r.json["error"]["field"], field, "{what}: {}", r.text);
        assert!(
            r.json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
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
    assert!(api.search_all(&t, "_count=100").await.is_empty(), "no patient was stored");

    // The same record with the mistake corrected is accepted.
    let ok = api.create(&t, &patient("Futurebaby", "Nova", &days_from_today(-2), &hcn(1))).await;
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

    let first = api.create(&t, &patient("Okafor", "Chidi", "1975-02-03", &card)).await;
    let first_id = id_of(&first);

    let r = api
        .post("/api/v1/patients", &t, &patient("Okafor", "Chidinma", "1999-09-09", &card))
        .await
        .expect(409);
    assert_eq!(r.error_code(), "conflict");
    assert_eq!(r.json["error"]["existing"], first_id.as_str(), "{}", r.text);
    assert!(r.text.contains(&first_id), "the message names the chart: {}", r.text);

    let found = api.search_all(&t, &format!("identifier={card}")).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0], first, "the first chart is unchanged");
    assert!(api.search_all(&t, "name=chidinma").await.is_empty());

    // A second chart with the number in an update is refused the same way.
    let second = api.create(&t, &patient("Mensah", "Kofi", "1980-01-01", &hcn(11))).await;
    let mut change = second.clone();
    change["identifier"] = json!([{"system": crate::support::ON_HCN_SYSTEM, "value": card}]);
    let r = api
        .put(&format!("/api/v1/patients/{}", id_of(&second)), &t, &change, Some("W/\"1\""))
        .await
        .expect(409);
    assert_eq!(r.json["error"]["existing"], first_id.as_str(), "{}", r.text);
    let again = api.get(&format!("/api/v1/patients/{}", id_of(&second)), &t).await.expect(200);
    assert_eq!(again.json, second);
}

#[tokio::test]
async fn an_update_must_name_the_version_it_changes() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::PHYSICIAN).await;

    let r = api
        .post("/api/v1/patients", &t, &patient("Haddad", "Omar", "1968-07-21", &hcn(20)))
        .await
        .expect(201);
    let created = r.json.clone();
    let id = id_of(&created);
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(r.header("location"), Some(format!("/api/v1/patients/{id}").as_str()));
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
    let p = api.create(&t, &patient("Rossi", "Ana", "1990-12-24", &hcn(30))).await;
    let path = format!("/api/v1/patients/{}", id_of(&p));

    let r = api.send(Method::DELETE, &path, Auth::Bearer(&t), None, &[]).await.expect(405);
    assert_eq!(r.error_code(), "method-not-allowed");
    assert_eq!(api.get(&path, &t).await.expect(200).json, p);

    let mut inactive: Value = p.clone();
    inactive["active"] = json!(false);
    let r = api.put(&path, &t, &inactive, Some("W/\"1\"")).await.expect(200);
    assert_eq!(r.json["active"], false);

    let read = api.get(&path, &t).await.expect(200);
    assert_eq!(read.json["active"], false);
    assert_eq!(read.json["name"], p["name"]);
    let found = api.search_all(&t, "name=rossi ana").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["active"], false);

    // Still not deletable once inactive.
    api.send(Method::DELETE, &path, Auth::Bearer(&t), None, &[]).await.expect(405);
    api.get(&path, &t).await.expect(200);
}
