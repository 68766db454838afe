//! Sign-in, sessions, the role matrix and sign-in throttling.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Auth, Sandbox, demo, enc, id_of};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every operation of the served OpenAPI document, as (method, concrete path), and the ones it
/// declares as needing no authentication.
fn operations(openapi: &Value) -> (Vec<(Method, String)>, BTreeSet<String>) {
    let paths = openapi["paths"].as_object().expect("OpenAPI paths");
    let mut ops = Vec::new();
    let mut open = BTreeSet::new();
    for (template, item) in paths {
        // Fill path parameters with a plausible value.
        let path = template
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') && seg.ends_with('}') {
                    "someone"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            // `security: [{}]` is OpenAPI for "no authentication needed".
            let anonymous = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            if anonymous {
                open.insert(format!("{} {template}", m.to_uppercase()));
                continue;
            }
            ops.push((m.to_uppercase().parse().expect("method"), path.clone()));
        }
    }
    (ops, open)
}

#[tokio::test]
async fn every_endpoint_refuses_requests_without_a_valid_session() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let token = server.login(demo::ADMIN).await;

    // Health checks are open.
    for p in ["/healthz", "/readyz"] {
        let r = api
            .send(Method::GET, p, Auth::None, None, &[])
            .await
            .expect(200);
        assert!(r.json["status"].is_string(), "{p}: {}", r.text);
    }

    let openapi = api
        .get("/api/v1/openapi.json", &token)
        .await
        .expect(200)
        .json;
    let (mut ops, open) = operations(&openapi);
    assert_eq!(
        open,
        BTreeSet::from(["POST /api/v1/auth/login".to_string()]),
        "only sign-in may be declared as needing no session"
    );
    assert!(
        ops.len() >= 15,
        "the OpenAPI document lists too few operations: {ops:?}"
    );
    ops.push((Method::GET, "/api/v1/openapi.json".into()));

    // Sessions that existed once: signed out, and of a user since disabled.
    let signed_out = server.login(demo::PHYSICIAN).await;
    api.send(
        Method::POST,
        "/api/v1/auth/logout",
        Auth::Bearer(&signed_out),
        None,
        &[],
    )
    .await
    .expect(204);
    let of_disabled = server.login(demo::NURSE).await;
    api.send(
        Method::POST,
        "/api/v1/users/nurse.kim/disable",
        Auth::Bearer(&token),
        None,
        &[],
    )
    .await
    .expect(200);

    let body = json!({});
    for (method, path) in &ops {
        let body = (*method == Method::POST || *method == Method::PUT).then_some(&body);
        for (what, auth) in [
            ("no credentials", Auth::None),
            ("a garbage token", Auth::Bearer("not-a-real-token")),
            (
                "a garbage cookie",
                Auth::Cookie("not-a-real-session", Some("x")),
            ),
            ("a signed-out session", Auth::Bearer(&signed_out)),
            ("a disabled user's session", Auth::Bearer(&of_disabled)),
        ] {
            let r = api.send(method.clone(), path, auth, body, &[]).await;
            assert_eq!(
                r.status.as_u16(),
                401,
                "{method} {path} with {what}: {}",
                r.text
            );
            assert_eq!(
                r.error_code(),
                "unauthenticated",
                "{method} {path} with {what}: {}",
                r.text
            );
            assert!(r.json["error"]["message"].is_string());
        }
    }

    // The sign-in endpoint and page themselves are reachable without a session.
    let r = api.try_login("drlee", "wrong password!").await.expect(401);
    assert_eq!(r.error_code(), "invalid-credentials");
    api.send(Method::GET, "/login", Auth::None, None, &[])
        .await
        .expect(200);
}

#[tokio::test]
async fn logout_ends_the_session_and_only_that_one() {
    let sb = Sandbox::new();
    let server = sb.demo(1);
    let api = server.api();
    let t1 = server.login(demo::PHYSICIAN).await;
    let t2 = server.login(demo::PHYSICIAN).await;

    let me = api.get("/api/v1/auth/me", &t1).await.expect(200);
    assert_eq!(me.json["user"]["username"], "drlee");
    assert_eq!(me.json["site"], "main");

    api.send(
        Method::POST,
        "/api/v1/auth/logout",
        Auth::Bearer(&t1),
        None,
        &[],
    )
    .await
    .expect(204);
    for path in ["/api/v1/auth/me", "/api/v1/patients"] {
        let r = api.get(path, &t1).await.expect(401);
        assert_eq!(r.error_code(), "unauthenticated");
    }
    // Signing out again with the dead token is refused too.
    api.send(
        Method::POST,
        "/api/v1/auth/logout",
        Auth::Bearer(&t1),
        None,
        &[],
    )
    .await
    .expect(401);
    // The other session of the same user still works.
    api.get("/api/v1/auth/me", &t2).await.expect(200);
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_at_once() {
    let sb = Sandbox::new();
    let server = sb.demo(1);
    let api = server.api();
    let admin = server.login(demo::ADMIN).await;
    let lee = server.login(demo::PHYSICIAN).await;
    api.get("/api/v1/patients", &lee).await.expect(200);

    let r = api
        .send(
            Method::POST,
            "/api/v1/users/drlee/disable",
            Auth::Bearer(&admin),
            None,
            &[],
        )
        .await
        .expect(200);
    assert_eq!(r.json["disabled"], true);

    for path in ["/api/v1/auth/me", "/api/v1/patients"] {
        let r = api.get(path, &lee).await.expect(401);
        assert_eq!(r.error_code(), "unauthenticated");
    }
    // A disabled user cannot sign in again either.
    api.try_login(demo::PHYSICIAN.0, demo::PHYSICIAN.1)
        .await
        .expect(401);

    let users = api.get("/api/v1/users", &admin).await.expect(200).json;
    let lee_row = users
        .as_array()
        .expect("user list")
        .iter()
        .find(|u| u["username"] == "drlee")
        .expect("drlee listed");
    assert_eq!(lee_row["disabled"], true);
    assert!(lee_row.get("password_hash").is_none() && lee_row.get("passwordHash").is_none());
}

#[tokio::test]
async fn each_role_sees_only_what_it_may_and_refusals_are_audited() {
    let sb = Sandbox::new();
    let server = sb.demo(5);
    let api = server.api();
    let admin = server.login(demo::ADMIN).await;
    let lee = server.login(demo::PHYSICIAN).await;
    let reception = server.login(demo::RECEPTION).await;
    let kiosk = server.login(demo::KIOSK).await;
    let researcher = server.login(demo::RESEARCHER).await;
    let patient = server.login(demo::PATIENT).await;

    let find = |card: String| {
        let api = api.clone();
        let lee = lee.clone();
        async move {
            let found = api.search_all(&lee, &format!("identifier={card}")).await;
            assert_eq!(found.len(), 1, "demo patient with card {card}");
            id_of(&found[0])
        }
    };
    let own = find(demo::health_card(0)).await;
    let other = find(demo::health_card(1)).await;

    // Clinical staff read and search.
    for t in [&lee, &reception] {
        api.get(&format!("/api/v1/patients/{other}"), t)
            .await
            .expect(200);
        api.get("/api/v1/patients?name=a", t).await.expect(200);
    }

    // A patient reads their own chart and nothing else.
    let me = api
        .get(&format!("/api/v1/patients/{own}"), &patient)
        .await
        .expect(200);
    assert_eq!(me.json["id"], own.as_str());
    let r = api
        .get(&format!("/api/v1/patients/{other}"), &patient)
        .await
        .expect(403);
    assert_eq!(r.error_code(), "forbidden");
    assert!(
        r.json.get("resourceType").is_none(),
        "a refusal carries no record"
    );
    for q in [
        "",
        "?name=a",
        &format!("?identifier={}", demo::health_card(0)),
    ] {
        let r = api
            .get(&format!("/api/v1/patients{q}"), &patient)
            .await
            .expect(403);
        assert_eq!(r.error_code(), "forbidden");
    }

    // ... and cannot change it.
    let r = api
        .put(
            &format!("/api/v1/patients/{own}"),
            &patient,
            &me.json,
            Some("W/\"1\""),
        )
        .await
        .expect(403);
    assert_eq!(r.error_code(), "forbidden");

    // Researchers, kiosks and administrators do not read identified charts.
    for t in [&researcher, &kiosk, &admin] {
        let r = api
            .get(&format!("/api/v1/patients/{own}"), t)
            .await
            .expect(403);
        assert_eq!(r.error_code(), "forbidden");
        let r = api.get("/api/v1/patients?name=a", t).await.expect(403);
        assert_eq!(r.error_code(), "forbidden");
        let new_chart =
            crate::support::patient("Nobody", "New", "2000-01-01", &crate::support::hcn(9));
        let r = api
            .post("/api/v1/patients", t, &new_chart)
            .await
            .expect(403);
        assert_eq!(r.error_code(), "forbidden");
    }

    // The audit trail is the administrator's.
    api.get("/api/v1/audit", &admin).await.expect(200);
    api.get("/api/v1/users", &admin).await.expect(200);
    for t in [&reception, &lee, &patient] {
        let r = api.get("/api/v1/audit", t).await.expect(403);
        assert_eq!(r.error_code(), "forbidden");
        api.get("/api/v1/audit/verify", t).await.expect(403);
    }
    // So are the clinic's sites.
    let site = json!({"id": "east", "name": "East End Clinic"});
    api.post("/api/v1/sites", &reception, &site)
        .await
        .expect(403);
    api.post("/api/v1/sites", &admin, &site).await.expect(201);

    // Only an administrator adds users.
    let new_user = json!({
        "username": "drnew", "password": "a long enough password",
        "roles": ["physician"], "sites": ["main"]
    });
    for t in [&lee, &reception, &kiosk, &patient] {
        let r = api.post("/api/v1/users", t, &new_user).await.expect(403);
        assert_eq!(r.error_code(), "forbidden");
        api.get("/api/v1/users", t).await.expect(403);
    }
    let r = api
        .post("/api/v1/users", &admin, &new_user)
        .await
        .expect(201);
    assert_eq!(r.json["username"], "drnew");
    server.api().login("drnew", "a long enough password").await;

    // Every refusal left a trace in the audit trail.
    let denied = |actor: &'static str| {
        let api = api.clone();
        let admin = admin.clone();
        async move {
            api.audit_all(&admin, &format!("actor={}", enc(actor)))
                .await
                .into_iter()
                .filter(|e| e["outcome"] == "denied")
                .collect::<Vec<_>>()
        }
    };
    let has = |entries: &[Value], action: &str, patient: Option<&str>| {
        entries
            .iter()
            .any(|e| e["action"] == action && patient.is_none_or(|p| e["patient"] == p))
    };
    let p = denied("patient").await;
    assert!(
        has(&p, "patient.read", Some(&other)),
        "patient read refusal not audited: {p:?}"
    );
    assert!(
        has(&p, "patient.search", None),
        "patient search refusal not audited: {p:?}"
    );
    assert!(has(&p, "patient.update", Some(&own)), "{p:?}");
    assert!(has(&p, "audit.read", None), "{p:?}");
    assert!(has(&p, "user.create", None), "{p:?}");
    for actor in ["researcher", "kiosk.main", "admin"] {
        let d = denied(actor).await;
        assert!(has(&d, "patient.read", Some(&own)), "{actor}: {d:?}");
        assert!(has(&d, "patient.search", None), "{actor}: {d:?}");
    }
    let d = denied("reception").await;
    assert!(has(&d, "audit.read", None), "{d:?}");
    assert!(has(&d, "audit.verify", None), "{d:?}");
    assert!(has(&d, "site.create", None), "{d:?}");
    assert!(has(&d, "user.create", None), "{d:?}");
    let d = denied("drlee").await;
    assert!(has(&d, "user.create", None), "{d:?}");
    assert!(has(&d, "user.list", None), "{d:?}");
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_even_for_the_right_password() {
    let sb = Sandbox::new();
    let server = sb.demo_with_env(
        0,
        &[
            ("OSLER_AUTH__LOCK_AFTER", "3"),
            ("OSLER_AUTH__SLOW_AFTER", "100"),
        ],
    );
    let api = server.api();
    // Signing in works before anything goes wrong.
    api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;
    for _ in 0..3 {
        let r = api.try_login("drlee", "not the password").await.expect(401);
        assert_eq!(r.error_code(), "invalid-credentials");
    }
    for password in ["not the password", demo::PHYSICIAN.1] {
        let r = api.try_login("drlee", password).await.expect(429);
        assert_eq!(r.error_code(), "locked");
        let retry: u64 = r
            .header("retry-after")
            .expect("Retry-After header")
            .parse()
            .expect("Retry-After in seconds");
        assert!(retry > 0);
        assert!(r.json.get("token").is_none());
    }
    // One person's lock does not lock out colleagues at the same address.
    api.login(demo::RECEPTION.0, demo::RECEPTION.1).await;
    // The attempts are on the record.
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let outcomes: Vec<String> = api
        .audit_all(&admin, "actor=drlee")
        .await
        .iter()
        .filter(|e| e["action"] == "auth.login")
        .map(|e| e["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        outcomes,
        [
            "success", "failure", "failure", "failure", "locked", "locked"
        ]
    );
}

#[tokio::test]
async fn by_default_the_eighth_wrong_password_locks_the_account() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    for attempt in 1..=8 {
        let r = api.try_login("reception", "guessing again").await;
        assert_eq!(r.status.as_u16(), 401, "attempt {attempt}: {}", r.text);
    }
    let r = api
        .try_login(demo::RECEPTION.0, demo::RECEPTION.1)
        .await
        .expect(429);
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn a_session_ends_when_it_expires() {
    let sb = Sandbox::new();
    let server = sb.demo_with_env(0, &[("OSLER_AUTH__SESSION_SECONDS", "1")]);
    let api = server.api();
    let token = server.login(demo::PHYSICIAN).await;
    // Wait (not a timing assertion) until the one-second session is over.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = api.get("/api/v1/auth/me", &token).await.expect(401);
    assert_eq!(r.error_code(), "unauthenticated");
    // Signing in again works.
    let token = server.login(demo::PHYSICIAN).await;
    api.get("/api/v1/auth/me", &token).await.expect(200);
}

#[tokio::test]
async fn sixty_four_simultaneous_wrong_passwords_check_only_the_allowance() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let attempts = (0..64).map(|i| {
        let api = api.clone();
        async move { api.try_login("drlee", &format!("guess number {i}")).await }
    });
    let answers = futures_join_all(attempts).await;
    let checked = answers.iter().filter(|r| r.status.as_u16() == 401).count();
    let locked = answers.iter().filter(|r| r.status.as_u16() == 429).count();
    eprintln!("64 simultaneous wrong passwords: {checked} checked, {locked} refused unchecked");
    assert_eq!(checked + locked, 64, "only 401 or 429");
    assert_eq!(checked, 8, "the allowance is 8 (lock_after)");
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let failures = api
        .audit_all(&admin, "actor=drlee")
        .await
        .iter()
        .filter(|e| e["action"] == "auth.login" && e["outcome"] == "failure")
        .count();
    assert_eq!(failures, 8, "one failure entry per password checked");
}

/// Run futures at once and collect their outputs in order.
async fn futures_join_all<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn a_known_device_is_slowed_but_never_locked_out_by_someone_elses_guesses() {
    let sb = Sandbox::new();
    let server = sb.demo_with_env(0, &[("OSLER_AUTH__LOCK_AFTER", "3")]);
    let api = server.api();
    // Dr. Lee signs in from her laptop: the answer carries a device token, and a cookie.
    let r = api
        .try_login(demo::PHYSICIAN.0, demo::PHYSICIAN.1)
        .await
        .expect(200);
    let device = r.json["device"]
        .as_str()
        .expect("a device token")
        .to_string();
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("osler_device_drlee="))
        .expect("a device cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie_value = cookie.split(';').next().unwrap().to_string();

    // Someone else guesses her password until the name is locked.
    for _ in 0..3 {
        api.try_login("drlee", "a wrong guess").await.expect(401);
    }
    // From an unknown device, even the right password is refused now...
    api.try_login(demo::PHYSICIAN.0, demo::PHYSICIAN.1)
        .await
        .expect(429);
    // ... but from her laptop (device token in the body, or the cookie) she gets in.
    let login = |body: Value, cookie: Option<String>| {
        let api = api.clone();
        async move {
            let headers: Vec<(&str, String)> = cookie.into_iter().map(|c| ("cookie", c)).collect();
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            api.send(
                Method::POST,
                "/api/v1/auth/login",
                Auth::None,
                Some(&body),
                &h,
            )
            .await
        }
    };
    let with_token = json!({"username": "drlee", "password": demo::PHYSICIAN.1, "device": device});
    login(with_token.clone(), None).await.expect(200);
    let plain = json!({"username": "drlee", "password": demo::PHYSICIAN.1});
    login(plain.clone(), Some(cookie_value.clone()))
        .await
        .expect(200);
    // A token is for one name only, and a made-up one is worth nothing.
    let r = login(
        json!({"username": "nurse.kim", "password": "wrong wrong", "device": device}),
        None,
    )
    .await;
    assert_eq!(r.status.as_u16(), 401);
    login(
        json!({"username": "drlee", "password": demo::PHYSICIAN.1, "device": "made.up"}),
        None,
    )
    .await
    .expect(429);
    // The trail says which sign-ins came from a known device.
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let known = api
        .audit_all(&admin, "actor=drlee")
        .await
        .iter()
        .filter(|e| {
            e["action"] == "auth.login"
                && e["outcome"] == "success"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("signed in to this name before"))
        })
        .count();
    assert_eq!(known, 2);
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_clients_failures_do_not_lock_out_another() {
    let sb = Sandbox::new();
    sb.init("administrator password");
    std::fs::write(
        sb.root().join("osler.toml"),
        "[http]\ntrusted_proxies = [\"127.0.0.1\"]\n[auth]\nlock_after = 2\nslow_after = 100\n",
    )
    .unwrap();
    let server = sb.serve();
    let api = server.api();
    let via = |client: &'static str, user: &str, password: &str| {
        let api = api.clone();
        let body = json!({"username": user, "password": password});
        async move {
            api.send(
                Method::POST,
                "/api/v1/auth/login",
                Auth::None,
                Some(&body),
                &[("x-forwarded-for", client)],
            )
            .await
        }
    };
    // An attacker behind the proxy fails with many names until their address is locked
    // (four times lock_after).
    let attacker = "203.0.113.5";
    for i in 0..8 {
        via(attacker, &format!("guess{i}"), "wrong password")
            .await
            .expect(401);
    }
    via(attacker, "admin", "administrator password")
        .await
        .expect(429);
    // Everyone else behind the same proxy signs in as usual.
    let r = via("198.51.100.7", "admin", "administrator password")
        .await
        .expect(200);
    let admin = r.json["token"].as_str().unwrap().to_string();
    // A client cannot pick its own address: the proxy's own hop is the one believed, whatever
    // the client put before it.
    via(
        "198.51.100.7, 203.0.113.9",
        "admin",
        "administrator password",
    )
    .await
    .expect(200);
    let logins: Vec<Value> = api
        .audit_all(&admin, "actor=admin")
        .await
        .into_iter()
        .filter(|e| e["action"] == "auth.login" && e["outcome"] == "success")
        .collect();
    let sources: Vec<&str> = logins
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["198.51.100.7", "203.0.113.9"], "{logins:?}");
    drop(server);

    // Without trusted proxies the header is ignored: the address is the peer's.
    std::fs::write(sb.root().join("osler.toml"), "").unwrap();
    let server = sb.serve();
    let api = server.api();
    let r = api
        .send(
            Method::POST,
            "/api/v1/auth/login",
            Auth::None,
            Some(&json!({"username": "admin", "password": "administrator password"})),
            &[("x-forwarded-for", "198.51.100.99")],
        )
        .await
        .expect(200);
    let admin = r.json["token"].as_str().unwrap().to_string();
    let last = api
        .audit_all(&admin, "actor=admin")
        .await
        .into_iter()
        .rfind(|e| e["action"] == "auth.login")
        .unwrap();
    assert_eq!(last["source"], "127.0.0.1", "{last}");
}
