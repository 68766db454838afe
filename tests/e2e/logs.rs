//! The server's logs never carry patient data: an operator can ship them anywhere.

use serde_json::json;

use crate::support::{Sandbox, demo, enc, hcn, id_of, patient};

#[tokio::test]
async fn no_patient_data_reaches_the_server_log() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::RECEPTION).await;

    // A patient whose every detail is unmistakable in a log.
    let card = hcn(4242);
    let mut p = patient("Quintessaviolet", "Marguerithe", "1961-07-19", &card);
    p["telecom"] = json!([{"system": "phone", "value": "416-555-0777", "use": "home"}]);
    let created = api.create(&t, &p).await;
    let id = id_of(&created);

    api.get(&format!("/api/v1/patients/{id}"), &t)
        .await
        .expect(200);
    api.get(
        &format!("/api/v1/patients?name={}", enc("quintessa marguer")),
        &t,
    )
    .await
    .expect(200);
    api.get(&format!("/api/v1/patients?identifier={card}"), &t)
        .await
        .expect(200);
    let mut changed = created.clone();
    changed["address"] = json!([{"line": ["88 Rue Quintessaviolet"], "city": "Gatineau"}]);
    api.put(
        &format!("/api/v1/patients/{id}"),
        &t,
        &changed,
        Some("W/\"1\""),
    )
    .await
    .expect(200);
    // Refusals too: a duplicate card, an invalid record, a stale update.
    api.post("/api/v1/patients", &t, &p).await.expect(409);
    let mut bad = p.clone();
    bad["birthDate"] = json!("2999-01-01");
    api.post("/api/v1/patients", &t, &bad).await.expect(400);
    api.put(
        &format!("/api/v1/patients/{id}"),
        &t,
        &changed,
        Some("W/\"1\""),
    )
    .await
    .expect(409);

    let log = server.full_log();
    assert!(
        log.contains("request"),
        "the server should log its requests:\n{log}"
    );
    for secret in [
        "Quintessaviolet",
        "quintessa",
        "Marguerithe",
        "marguer",
        "1961-07-19",
        "416-555-0777",
        "Gatineau",
        card.as_str(),
        id.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "the server log contains patient data ({secret}):\n{log}"
        );
    }
}
