//! The shell around every page, over HTTP: errors as pages for a browser and JSON for an API
//! client, sign-in that returns to the page asked for, the host's static files, plugin pages
//! framed in a sealed shadow root (or bare, or with the patient banner), and the kiosk account
//! kept on its check-in screen. (The browser suite checks how it all looks and behaves in
//! Chromium.)

use reqwest::Method;

use crate::support::{
    Api, Auth, Resp, Sandbox, demo, hcn, id_of, package, packages, patient, plugin_env,
};

const HTML: (&str, &str) = ("accept", "text/html,application/xhtml+xml");

async fn page(api: &Api, path: &str, token: Option<&str>) -> Resp {
    let auth = match token {
        Some(t) => Auth::Cookie(t, None),
        None => Auth::None,
    };
    api.send(Method::GET, path, auth, None, &[HTML]).await
}

fn is_html(r: &Resp) -> bool {
    r.header("content-type")
        .unwrap_or("")
        .starts_with("text/html")
}

#[tokio::test]
async fn errors_are_pages_for_a_browser_and_json_for_an_api_client() {
    let sb = Sandbox::new();
    let server = sb.demo(5);
    let api = server.api();
    let desk = api.login(demo::RECEPTION.0, demo::RECEPTION.1).await;

    // An unknown page: a page in the shell for the browser, JSON for the API client.
    let r = page(&api, "/no/such/page", Some(&desk)).await;
    assert_eq!(r.status.as_u16(), 404);
    assert!(is_html(&r), "{:?}", r.headers);
    assert!(r.text.contains("class=\"shell\""), "{}", r.text);
    assert!(r.text.contains("Front Desk"), "the user is in the header");
    assert!(r.text.contains("No such endpoint."), "{}", r.text);
    assert_eq!(
        r.header("content-security-policy"),
        Some(osler_host::http::shell::HOST_CSP)
    );
    let r = api.get("/no/such/page", &desk).await.expect(404);
    assert_eq!(r.error_code(), "not-found");

    // A plugin that is not enabled here, and a refusal, the same way.
    let r = page(&api, "/plugins/notices/", Some(&desk)).await;
    assert_eq!(r.status.as_u16(), 404);
    assert!(is_html(&r));
    assert!(
        r.text
            .contains("No plugin &#39;notices&#39; is enabled at site &#39;main&#39;."),
        "{}",
        r.text
    );
    assert_eq!(
        api.get("/plugins/notices/", &desk)
            .await
            .expect(404)
            .error_code(),
        "not-found"
    );
    let r = page(&api, "/admin/users", Some(&desk)).await;
    assert_eq!(r.status.as_u16(), 403);
    assert!(r.text.contains("users.manage is needed"), "{}", r.text);
    let r = page(&api, "/api/v1/audit", Some(&desk)).await;
    assert_eq!(r.status.as_u16(), 403);
    assert!(is_html(&r), "an API URL opened in a browser is a page too");

    // Signed out, a page asks to sign in and comes back; an API call is a JSON 401.
    let r = page(&api, "/patients?name=lee", None).await;
    assert_eq!(r.status.as_u16(), 303);
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fpatients%3Fname%3Dlee")
    );
    let r = page(&api, "/login?next=%2Fpatients%3Fname%3Dlee", None).await;
    assert!(
        r.text
            .contains("name=\"next\" value=\"/patients?name=lee\""),
        "{}",
        r.text
    );
    for evil in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let r = page(
            &api,
            &format!("/login?next={}", crate::support::enc(evil)),
            None,
        )
        .await;
        assert!(
            r.text.contains("name=\"next\" value=\"/\""),
            "{evil} is not followed: {}",
            r.text
        );
    }
    let r = api
        .send(
            Method::GET,
            "/api/v1/patients?name=lee",
            Auth::None,
            None,
            &[],
        )
        .await
        .expect(401);
    assert_eq!(r.error_code(), "unauthenticated");

    // The host's static files: content-hashed URLs are cached for good, others revalidated.
    let home = page(&api, "/", Some(&desk)).await.expect(200);
    let css = home
        .text
        .split("href=\"")
        .find_map(|s| s.strip_prefix("/static/osler.css"))
        .and_then(|s| s.split('"').next())
        .expect("the stylesheet link");
    let r = api
        .send(
            Method::GET,
            &format!("/static/osler.css{css}"),
            Auth::None,
            None,
            &[],
        )
        .await
        .expect(200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/css")
    );
    assert!(
        r.header("cache-control")
            .unwrap_or("")
            .contains("immutable")
    );
    let etag = r.header("etag").expect("etag").to_string();
    let r = api
        .send(
            Method::GET,
            "/static/plugin.css",
            Auth::None,
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "plugin.css has its own tag");
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    api.send(Method::GET, "/static/nothing.js", Auth::None, None, &[])
        .await
        .expect(404);
}

#[tokio::test]
async fn plugin_pages_are_framed_and_a_kiosk_stays_on_its_screen() {
    let sb = Sandbox::new();
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(3, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    api.install_enabled(&admin, &packages().hostile, "main", &["patients.read"])
        .await;
    let caps = ["kv", "directory", "patients.read", "events.publish"];
    api.install_enabled(&admin, &package("plugins/scheduling"), "main", &caps)
        .await;
    api.install_enabled(
        &admin,
        &package("plugins/kiosk"),
        "main",
        &["kv", "patients.match"],
    )
    .await;
    let lee = api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await;
    let kiosk = api.login(demo::KIOSK.0, demo::KIOSK.1).await;

    // A page that tries to leave its frame stays inside its shadow root, without scripts.
    let r = page(&api, "/plugins/hostile/page", Some(&lee))
        .await
        .expect(200);
    let t = &r.text;
    assert!(t.contains("class=\"shell\""), "{t}");
    assert!(
        t.contains("<title>Escape attempt · Main Street Clinic · Osler</title>"),
        "{t}"
    );
    let open = t
        .find("<template shadowrootmode=\"open\">")
        .expect("a shadow root");
    let close = t.find("</template>").expect("its end");
    assert_eq!(t.matches("</template>").count(), 1, "{t}");
    assert_eq!(t.rfind("</template>"), Some(close));
    for inside in ["id=\"inside\"", "id=\"escaped\"", "display:none"] {
        let at = t
            .find(inside)
            .unwrap_or_else(|| panic!("{inside} kept: {t}"));
        assert!(
            open < at && at < close,
            "{inside} stays in the shadow root: {t}"
        );
    }
    for gone in [
        "<script",
        "<base",
        "http-equiv",
        "<iframe",
        "<noscript",
        "fake header",
    ] {
        assert!(!t.contains(gone), "{gone} is dropped: {t}");
    }
    assert!(
        !t.contains("id=escaped2>") || t.contains("&lt;/template"),
        "{t}"
    );
    let csp = r.header("content-security-policy").unwrap_or("");
    assert!(
        csp.starts_with("default-src 'none'"),
        "still the plugin CSP: {csp}"
    );
    // The shell's forms on a plugin page carry the shell token, never the session's.
    let me_csrf = {
        let home = page(&api, "/", Some(&lee)).await.expect(200);
        let marker = "name=\"csrf\" value=\"";
        let s = home.text.find(marker).expect("a form") + marker.len();
        home.text[s..s + home.text[s..].find('"').unwrap()].to_string()
    };
    assert!(
        !t.contains(&me_csrf),
        "the session's CSRF token is not in a plugin page"
    );
    assert!(t.contains(&osler_host::http::shell::shell_token(&me_csrf)));

    // A bare page is served as the plugin wrote it; a page about a patient gets the banner.
    let r = page(&api, "/plugins/hostile/page?as=bare", Some(&lee))
        .await
        .expect(200);
    assert_eq!(
        r.text,
        "<!doctype html><title>Bare</title><p id=\"standalone\">standalone</p>"
    );
    assert!(r.header("osler-frame").is_none());
    let pid = id_of(
        &api.create(
            &lee,
            &patient("Quenneville", "Odile", "1950-01-31", &hcn(301)),
        )
        .await,
    );
    let r = page(
        &api,
        &format!("/plugins/hostile/page?as=patient&id={pid}"),
        Some(&lee),
    )
    .await
    .expect(200);
    assert!(
        r.header("osler-patient").is_none(),
        "the host's header stays the host's"
    );
    assert!(r.text.contains("class=\"patient-banner"), "{}", r.text);
    assert!(r.text.contains("QUENNEVILLE, Odile"), "{}", r.text);
    let reads = api
        .audit_all(&admin, &format!("patient={pid}&actor=drlee"))
        .await;
    assert!(
        reads
            .iter()
            .any(|e| e["action"] == "patient.read" && e["outcome"] == "success"),
        "the banner's read is on the trail: {reads:?}"
    );

    // The shell token works the shell's own forms (site switch, sign-out) and nothing else.
    let shell_token = osler_host::http::shell::shell_token(&me_csrf);
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let rb = api
            .client
            .post(format!("{}{path}", api.base))
            .header("cookie", format!("osler_session={lee}"))
            .form(&form);
        async move { Resp::read(rb.send().await.expect("form post")).await }
    };
    let r = post(
        "/patients/new",
        vec![("csrf", shell_token.clone()), ("family", "Forged".into())],
    )
    .await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text);
    assert!(api.search_all(&lee, "name=forged").await.is_empty());
    let r = post(
        "/site",
        vec![("csrf", shell_token.clone()), ("site", "north".into())],
    )
    .await;
    assert_eq!(r.status.as_u16(), 303, "{}", r.text);
    let me = api.get("/api/v1/auth/me", &lee).await.expect(200);
    assert_eq!(me.json["site"], "north");

    // The kiosk account: its screen has no navigation, and every other page leads back to it.
    let r = page(&api, "/", Some(&kiosk)).await;
    assert_eq!(r.header("location"), Some("/plugins/kiosk/"));
    let screen = page(&api, "/plugins/kiosk/", Some(&kiosk))
        .await
        .expect(200);
    assert!(
        screen.text.contains("Health card number"),
        "{}",
        screen.text
    );
    for absent in ["<nav", "Sign out", "name=\"site\""] {
        assert!(!screen.text.contains(absent), "{absent}: {}", screen.text);
    }
    for path in [
        "/patients",
        "/admin",
        "/plugins/scheduling/",
        "/plugins/hostile/page",
        "/kiosk",
    ] {
        let r = page(&api, path, Some(&kiosk)).await;
        assert_eq!(r.status.as_u16(), 303, "{path}: {}", r.text);
        assert_eq!(r.header("location"), Some("/plugins/kiosk/"), "{path}");
    }
    // Only pages are confined: a program with the kiosk's token is held to the kiosk role.
    api.get("/plugins/hostile/ok", &kiosk).await.expect(200);
    let r = api
        .get(&format!("/plugins/hostile/patient/{pid}"), &kiosk)
        .await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text);
}
