//! The browser pages: sign-in form with CSRF protection, the session cookie, the home page,
//! and CSRF protection of cookie-authenticated API writes.

use reqwest::Method;
use serde_json::json;

use crate::support::{Api, Auth, Resp, Sandbox, demo, hcn, id_of, patient};

/// The value of a hidden form field `name` in a page.
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_string())
}

/// The `Set-Cookie` header that sets cookie `name`, and its value.
fn cookie(r: &Resp, name: &str) -> Option<(String, String)> {
    r.set_cookies().into_iter().find_map(|c| {
        let value = c
            .strip_prefix(&format!("{name}="))?
            .split(';')
            .next()?
            .to_string();
        Some((c.clone(), value))
    })
}

async fn post_form(api: &Api, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Resp {
    let mut rb = api.client.post(format!("{}{path}", api.base)).form(form);
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    Resp::read(rb.send().await.expect("form post")).await
}

async fn get_page(api: &Api, path: &str, cookie: Option<&str>) -> Resp {
    let mut rb = api.client.get(format!("{}{path}", api.base));
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    Resp::read(rb.send().await.expect("page")).await
}

#[tokio::test]
async fn signing_in_through_the_page_gives_a_protected_session_cookie() {
    let sb = Sandbox::new();
    let server = sb.demo(0);
    let api = server.api();
    let (user, password) = demo::PHYSICIAN;

    // Signed out, the home page sends you to sign in.
    let r = get_page(&api, "/", None).await;
    assert!(r.status.is_redirection(), "{}", r.status);
    assert_eq!(r.header("location"), Some("/login"));

    // The form carries a CSRF token, doubled in a cookie.
    let page = get_page(&api, "/login", None).await.expect(200);
    assert!(
        page.header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert!(page.text.contains("<form") && page.text.contains("name=\"password\""));
    let csrf = hidden_field(&page.text, "csrf").expect("csrf field in the form");
    assert!(csrf.len() >= 20);
    let (set, login_cookie) = cookie(&page, "osler_login_csrf").expect("CSRF cookie");
    assert_eq!(login_cookie, csrf);
    assert!(set.contains("HttpOnly"), "{set}");
    let login_cookie = format!("osler_login_csrf={login_cookie}");

    // Posting without the CSRF cookie, without the field, or with a wrong one is refused.
    for (what, c, field) in [
        ("no cookie", None, csrf.as_str()),
        ("no field", Some(login_cookie.as_str()), ""),
        ("wrong field", Some(login_cookie.as_str()), "forged-token"),
    ] {
        let r = post_form(
            &api,
            "/login",
            c,
            &[("username", user), ("password", password), ("csrf", field)],
        )
        .await;
        assert_eq!(r.status.as_u16(), 403, "{what}: {}", r.status);
        assert!(
            cookie(&r, "osler_session").is_none(),
            "{what}: a session was issued"
        );
    }
    let r = post_form(
        &api,
        "/login",
        None,
        &[("username", user), ("password", password)],
    )
    .await;
    assert!(r.status.is_client_error(), "no csrf at all: {}", r.status);
    assert!(cookie(&r, "osler_session").is_none());

    // A wrong password is refused with the form shown again.
    let r = post_form(
        &api,
        "/login",
        Some(&login_cookie),
        &[
            ("username", user),
            ("password", "not my password"),
            ("csrf", &csrf),
        ],
    )
    .await;
    assert_eq!(r.status.as_u16(), 401);
    assert!(cookie(&r, "osler_session").is_none());
    assert!(
        r.text.contains("role=\"alert\""),
        "the page says what went wrong"
    );

    // The right form signs in: a redirect home with an HttpOnly, SameSite=Strict cookie.
    let page = get_page(&api, "/login", None).await.expect(200);
    let csrf = hidden_field(&page.text, "csrf").unwrap();
    let login_cookie = format!(
        "osler_login_csrf={}",
        cookie(&page, "osler_login_csrf").unwrap().1
    );
    let r = post_form(
        &api,
        "/login",
        Some(&login_cookie),
        &[("username", user), ("password", password), ("csrf", &csrf)],
    )
    .await;
    assert!(r.status.is_redirection(), "{}: {}", r.status, r.text);
    assert_eq!(r.header("location"), Some("/"));
    let (set, session) = cookie(&r, "osler_session").expect("session cookie");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    assert!(!session.is_empty());
    let session_cookie = format!("osler_session={session}");

    // The home page greets the user at their site.
    let home = get_page(&api, "/", Some(&session_cookie)).await.expect(200);
    assert!(
        home.text.contains(demo::PHYSICIAN_DISPLAY_NAME),
        "{}",
        home.text
    );
    assert!(home.text.contains(demo::MAIN_SITE_NAME), "{}", home.text);
    let page_csrf = hidden_field(&home.text, "csrf").expect("csrf of the session");
    // Signed in, the sign-in page sends you home.
    let r = get_page(&api, "/login", Some(&session_cookie)).await;
    assert_eq!(r.header("location"), Some("/"));

    // The cookie authenticates API reads, but a write needs the session's CSRF token.
    let me = api
        .send(
            Method::GET,
            "/api/v1/auth/me",
            Auth::Cookie(&session, None),
            None,
            &[],
        )
        .await
        .expect(200);
    assert_eq!(me.json["user"]["username"], user);
    let body = patient("Cookie", "Monster", "1969-11-10", &hcn(1));
    for token in [None, Some("forged-token")] {
        let r = api
            .send(
                Method::POST,
                "/api/v1/patients",
                Auth::Cookie(&session, token),
                Some(&body),
                &[],
            )
            .await
            .expect(403);
        assert_eq!(r.error_code(), "forbidden");
    }
    let bearer = api.login(user, password).await;
    assert!(
        api.search_all(&bearer, "name=cookie").await.is_empty(),
        "nothing was stored"
    );
    let created = api
        .send(
            Method::POST,
            "/api/v1/patients",
            Auth::Cookie(&session, Some(&page_csrf)),
            Some(&body),
            &[],
        )
        .await
        .expect(201)
        .json;
    let path = format!("/api/v1/patients/{}", id_of(&created));
    let mut changed = created.clone();
    changed["gender"] = json!("male");
    let r = api
        .send(
            Method::PUT,
            &path,
            Auth::Cookie(&session, None),
            Some(&changed),
            &[("if-match", "W/\"1\"")],
        )
        .await
        .expect(403);
    assert_eq!(r.error_code(), "forbidden");
    assert_eq!(api.get(&path, &bearer).await.json, created, "unchanged");
    api.send(
        Method::PUT,
        &path,
        Auth::Cookie(&session, Some(&page_csrf)),
        Some(&changed),
        &[("if-match", "W/\"1\"")],
    )
    .await
    .expect(200);

    // The site switcher changes where the session acts; it needs the token as well.
    let r = post_form(
        &api,
        "/site",
        Some(&session_cookie),
        &[("csrf", "forged-token"), ("site", "north")],
    )
    .await;
    assert_eq!(r.status.as_u16(), 403);
    let r = post_form(
        &api,
        "/site",
        Some(&session_cookie),
        &[("csrf", &page_csrf), ("site", "north")],
    )
    .await;
    assert!(r.status.is_redirection(), "{}: {}", r.status, r.text);
    let home = get_page(&api, "/", Some(&session_cookie)).await.expect(200);
    assert!(home.text.contains("North York Clinic"), "{}", home.text);
    let me = api
        .send(
            Method::GET,
            "/api/v1/auth/me",
            Auth::Cookie(&session, None),
            None,
            &[],
        )
        .await
        .expect(200);
    assert_eq!(me.json["site"], "north");

    // Signing out needs the token too, then ends the session.
    let r = post_form(
        &api,
        "/logout",
        Some(&session_cookie),
        &[("csrf", "forged-token")],
    )
    .await;
    assert_eq!(r.status.as_u16(), 403);
    api.send(
        Method::GET,
        "/api/v1/auth/me",
        Auth::Cookie(&session, None),
        None,
        &[],
    )
    .await
    .expect(200);
    let r = post_form(
        &api,
        "/logout",
        Some(&session_cookie),
        &[("csrf", &page_csrf)],
    )
    .await;
    assert!(r.status.is_redirection());
    assert_eq!(r.header("location"), Some("/login"));
    let (cleared, _) = cookie(&r, "osler_session").expect("cookie cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    api.send(
        Method::GET,
        "/api/v1/auth/me",
        Auth::Cookie(&session, None),
        None,
        &[],
    )
    .await
    .expect(401);
    let r = get_page(&api, "/", Some(&session_cookie)).await;
    assert_eq!(r.header("location"), Some("/login"));
}
