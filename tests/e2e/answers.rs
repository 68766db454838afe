//! What every answer of the API has in common: one JSON error format (axum's own refusals
//! included), nothing cached, and every status it can give listed in the OpenAPI document.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, Resp, Sandbox, demo, id_of};

/// A user who may do everything the API offers: an administrator who is also a physician.
async fn everything(api: &Api, admin: &str) -> String {
    api.post(
        "/api/v1/users",
        admin,
        &json!({"username": "allrounder", "password": "allrounder password",
                "roles": ["admin", "physician"], "sites": ["main", "north"]}),
    )
    .await
    .expect(201);
    api.login("allrounder", "allrounder password").await
}

async fn raw(
    api: &Api,
    method: Method,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Resp {
    let mut rb = api
        .client
        .request(method, format!("{}{path}", api.base))
        .bearer_auth(token);
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    if let Some(b) = body {
        rb = rb.body(b);
    }
    Resp::read(rb.send().await.expect("request")).await
}

#[track_caller]
fn assert_json_error(r: &Resp, status: u16, what: &str) {
    assert_eq!(r.status.as_u16(), status, "{what}: {}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: answered {:?}: {}",
        r.header("content-type"),
        r.text
    );
    let e = &r.json["error"];
    assert!(
        e["code"].as_str().is_some_and(|c| !c.is_empty())
            && e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: not the error document: {}",
        r.text
    );
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
}

#[tokio::test]
async fn every_refusal_is_the_json_error_document_and_nothing_is_cached() {
    let sb = Sandbox::new();
    let server = sb.demo_with_env(3, &[("OSLER_HTTP__BODY_LIMIT", "4096")]);
    let api = server.api();
    let admin = server.login(demo::ADMIN).await;
    let t = everything(&api, &admin).await;
    let get = Method::GET;

    // Named cases, with the field they name.
    for (what, path, status, field) in [
        (
            "a negative page size",
            "/api/v1/patients?_count=-1",
            400,
            Some("_count"),
        ),
        (
            "a zero page size",
            "/api/v1/patients?_count=0",
            400,
            Some("_count"),
        ),
        (
            "a parameter given twice",
            "/api/v1/patients?name=a&name=b",
            400,
            Some("name"),
        ),
        (
            "a path that is not UTF-8",
            "/api/v1/patients/%ff",
            400,
            None,
        ),
        (
            "an audit page size that is no number",
            "/api/v1/audit?_count=ten",
            400,
            Some("_count"),
        ),
        (
            "a plugin id that is not UTF-8",
            "/api/v1/admin/plugins/%ff",
            400,
            None,
        ),
        ("no such endpoint", "/api/v1/nothing-here", 404, None),
    ] {
        let r = raw(&api, get.clone(), path, &t, None, None).await;
        assert_json_error(&r, status, what);
        if let Some(f) = field {
            assert_eq!(r.json["error"]["field"], f, "{what}: {}", r.text);
        }
    }
    let r = raw(&api, Method::PATCH, "/api/v1/patients", &t, None, None).await;
    assert_json_error(&r, 405, "a method the route does not take");
    assert!(
        r.header("allow").is_some_and(|a| a.contains("GET")),
        "{:?}",
        r.headers
    );

    // Every documented operation: a body that is not JSON, a body of the wrong type, a body
    // too large, a path that does not decode, a method it does not take.
    let doc = api.get("/api/v1/openapi.json", &t).await.expect(200).json;
    let mut sweeps = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let m: Method = method.to_uppercase().parse().unwrap();
            let path = template
                .split('/')
                .map(|s| if s.starts_with('{') { "%ff" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            if path != *template {
                let r = raw(&api, m.clone(), &path, &t, None, None).await;
                assert_json_error(&r, 400, &format!("{method} {template} with %ff"));
                sweeps += 1;
            }
            let concrete = template
                .replace("{id}", "x")
                .replace("{site}", "main")
                .replace("{username}", "allrounder");
            let takes_json = op["requestBody"]["content"]
                .get("application/json")
                .is_some();
            if takes_json {
                for (ct, body, status) in [
                    ("application/json", b"{\"unfinished".to_vec(), 400),
                    ("application/json", b"{} trailing".to_vec(), 400),
                    ("text/plain", b"{}".to_vec(), 415),
                    ("application/json", vec![b' '; 8192], 413),
                ] {
                    let r = raw(&api, m.clone(), &concrete, &t, Some(ct), Some(body)).await;
                    let what = format!("{method} {template} ({ct}, {status})");
                    assert!(
                        r.status.is_client_error(),
                        "{what}: {} {}",
                        r.status,
                        r.text
                    );
                    assert_json_error(&r, r.status.as_u16(), &what);
                    sweeps += 1;
                }
            }
            let r = raw(&api, Method::PATCH, &concrete, &t, None, None).await;
            assert_json_error(&r, 405, &format!("PATCH {template}"));
        }
    }
    assert!(sweeps > 20, "too few operations swept: {sweeps}");

    // Answers carrying patient data (and everything else) are not to be stored anywhere.
    let p = api.search_all(&t, "_count=1").await;
    let id = id_of(&p[0]);
    for path in [
        format!("/api/v1/patients/{id}"),
        "/api/v1/patients?_count=2".to_string(),
        format!("/api/v1/audit?patient={id}"),
        "/api/v1/auth/me".to_string(),
    ] {
        let r = api.get(&path, &t).await.expect(200);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_status_an_operation_can_give() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let t = server.login(demo::ADMIN).await;
    let doc: Value = api.get("/api/v1/openapi.json", &t).await.expect(200).json;
    let mut checked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let what = format!("{method} {template}");
            let statuses: Vec<&str> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let anonymous = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            let mut must = vec![];
            if !anonymous {
                must.extend(["401", "403", "400"]);
            }
            if template.contains('{') {
                must.extend(["400", "404"]);
            }
            if op.get("requestBody").is_some() {
                must.extend(["400", "413", "415"]);
            }
            for s in must {
                assert!(
                    statuses.contains(&s),
                    "{what} does not list {s}: {statuses:?}"
                );
            }
            for (status, r) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{what} {status}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
    // Deleting a chart is not an operation: it is refused like any method a route lacks.
    assert!(
        doc["paths"]["/api/v1/patients/{id}"]
            .get("delete")
            .is_none()
    );
}
