//! Administration through the API the pages share: a user's roles, sites and name changed,
//! disabled and enabled again; a site renamed; each change refused when it should be, and on
//! the audit trail when done.

use serde_json::json;

use crate::support::{Sandbox, demo};

#[tokio::test]
async fn users_and_sites_are_changed_refused_and_audited() {
    let sb = Sandbox::new();
    let server = sb.demo(3);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let lee = api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;

    api.post(
        "/api/v1/users",
        &admin,
        &json!({"username": "ray", "password": "a-long-enough-password",
                "roles": ["nurse"], "sites": ["main"], "displayName": "Ray Singh, RN"}),
    )
    .await
    .expect(201);
    let ray = api.login("ray", "a-long-enough-password").await;

    // Roles, sites and name change at once, for the sessions the user already has.
    let u = api
        .put(
            "/api/v1/users/ray",
            &admin,
            &json!({"roles": ["nurse", "reception"], "sites": ["main", "north"],
                    "displayName": "Ray Singh"}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(u["roles"], json!(["nurse", "reception"]));
    assert_eq!(u["sites"], json!(["main", "north"]));
    assert_eq!(u["displayName"], "Ray Singh");
    let me = api.get("/api/v1/auth/me", &ray).await.expect(200).json;
    assert_eq!(me["user"]["sites"], json!(["main", "north"]));
    api.get_at("/api/v1/patients?name=a", &ray, "north")
        .await
        .expect(200);

    // Refusals, each changing nothing.
    for (who, body, status, field) in [
        (&lee, json!({"roles": ["admin"]}), 403, None),
        (&admin, json!({"roles": []}), 400, Some("roles")),
        (&admin, json!({"sites": ["nowhere"]}), 400, Some("sites")),
        (&admin, json!({"roles": ["patient"]}), 400, None),
        (&admin, json!({"colour": "blue"}), 400, None),
    ] {
        let r = api.put("/api/v1/users/ray", who, &body, None).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.text);
        if let Some(f) = field {
            assert_eq!(r.json["error"]["field"], f, "{}", r.text);
        }
    }
    let r = api
        .put(
            "/api/v1/users/admin",
            &admin,
            &json!({"roles": ["physician"]}),
            None,
        )
        .await
        .expect(400);
    assert!(r.text.contains("your own administrator role"), "{}", r.text);
    api.put(
        "/api/v1/users/nobody",
        &admin,
        &json!({"roles": ["nurse"]}),
        None,
    )
    .await
    .expect(404);
    let me = api.get("/api/v1/auth/me", &ray).await.expect(200).json;
    assert_eq!(
        me["user"]["roles"],
        json!(["nurse", "reception"]),
        "unchanged"
    );

    // Disabled, the sessions stop; enabled again, the user signs in.
    api.post("/api/v1/users/ray/disable", &admin, &json!({}))
        .await
        .expect(200);
    api.get("/api/v1/auth/me", &ray).await.expect(401);
    api.try_login("ray", "a-long-enough-password")
        .await
        .expect(401);
    api.post("/api/v1/users/ray/enable", &lee, &json!({}))
        .await
        .expect(403);
    let u = api
        .post("/api/v1/users/ray/enable", &admin, &json!({}))
        .await
        .expect(200)
        .json;
    assert_eq!(u["disabled"], false);
    api.login("ray", "a-long-enough-password").await;

    // A site is renamed; its id stays.
    let s = api
        .put(
            "/api/v1/sites/north",
            &admin,
            &json!({"name": "North York Family Health"}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(
        s,
        json!({"id": "north", "name": "North York Family Health"})
    );
    let r = api
        .put("/api/v1/sites/north", &admin, &json!({"name": "  "}), None)
        .await
        .expect(400);
    assert_eq!(r.json["error"]["field"], "name");
    api.put("/api/v1/sites/nowhere", &admin, &json!({"name": "X"}), None)
        .await
        .expect(404);
    api.put("/api/v1/sites/north", &lee, &json!({"name": "Mine"}), None)
        .await
        .expect(403);
    let sites = api.get("/api/v1/sites", &admin).await.expect(200).json;
    assert!(
        sites
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "North York Family Health")
    );

    // The trail: every change, and the refusals.
    let trail = api.audit_all(&admin, "actor=admin").await;
    let has = |action: &str, outcome: &str| {
        trail
            .iter()
            .any(|e| e["action"] == action && e["outcome"] == outcome)
    };
    assert!(has("user.update", "success"));
    assert!(has("user.disable", "success"));
    assert!(has("user.enable", "success"));
    assert!(has("site.rename", "success"));
    let update = trail
        .iter()
        .find(|e| e["action"] == "user.update" && e["outcome"] == "success")
        .unwrap();
    assert_eq!(update["resource"], "User/ray");
    assert!(
        update["detail"]
            .as_str()
            .unwrap_or("")
            .contains("roles nurse → nurse,reception"),
        "{update}"
    );
    let by_lee = api.audit_all(&admin, "actor=drlee").await;
    for action in ["user.update", "user.enable", "site.rename"] {
        assert!(
            by_lee
                .iter()
                .any(|e| e["action"] == action && e["outcome"] == "denied"),
            "{action} refused and recorded: {by_lee:?}"
        );
    }
}
