//! The patient-held record end to end: staff create a patient's account, the patient
//! activates it with the one-time code and their birth date, signs in and sees their own
//! record through the `phr` plugin (appointments from scheduling, medications and allergies
//! from prescribing), requests an appointment, changes their contact details, shares part of
//! their record and sees who looked — and never anything of another patient.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Api, Resp, Sandbox, Server, demo, hcn, id_of, package, patient, plugin_env};

const SCHED: &str = "/plugins/scheduling/api";
const DAY: &str = "2030-01-07";
/// Shares on the test server last at most this long, so that one can be seen to expire.
const SHARE_SECONDS: u64 = 20;

/// The value of a hidden form field `name` in a page.
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_string())
}

/// The text of the element with id `id` (up to the next `<`).
fn text_of(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let start = html.find(&marker)?;
    let gt = html[start..].find('>')? + start + 1;
    let end = html[gt..].find('<')? + gt;
    Some(html[gt..end].to_string())
}

/// A cookie session, like a browser's.
struct Browser {
    api: Api,
    token: String,
}

impl Browser {
    fn cookie(&self) -> String {
        format!("osler_session={}", self.token)
    }

    async fn get(&self, path: &str) -> Resp {
        let r = self
            .api
            .client
            .get(format!("{}{path}", self.api.base))
            .header("cookie", self.cookie())
            .header("accept", "text/html")
            .send()
            .await
            .expect("page");
        Resp::read(r).await
    }

    /// Post a host form with the session's CSRF token (read from a host page).
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        let home = self.get("/me/contact").await;
        let home = if home.status == 200 {
            home
        } else {
            self.get("/").await
        };
        let csrf = hidden_field(&home.text, "csrf").expect("the session's csrf");
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.push(("csrf", &csrf));
        self.post_raw(path, &fields).await
    }

    async fn post_raw(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        let r = self
            .api
            .client
            .post(format!("{}{path}", self.api.base))
            .header("cookie", self.cookie())
            .header("accept", "text/html")
            .form(form)
            .send()
            .await
            .expect("form post");
        Resp::read(r).await
    }
}

struct Clinic {
    sb: Sandbox,
    server: Server,
    api: Api,
    admin: String,
    reception: String,
    lee: String,
}

async fn clinic() -> Clinic {
    let sb = Sandbox::new();
    let mut env = plugin_env();
    env.push(("OSLER_PORTAL__SHARE_MAX_SECONDS", SHARE_SECONDS.to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(2, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let caps = ["kv", "directory", "patients.read", "events.publish"];
    api.install_enabled(&admin, &package("plugins/scheduling"), "main", &caps)
        .await;
    api.install_enabled(&admin, &package("plugins/drugref"), "main", &["kv"])
        .await;
    api.install_enabled(
        &admin,
        &package("plugins/prescribing"),
        "main",
        &["kv", "patients.read", "patient-data", "events.publish"],
    )
    .await;
    api.install_enabled(&admin, &package("plugins/resources"), "main", &["kv"])
        .await;
    api.install_enabled(&admin, &package("plugins/phr"), "main", &["patients.read"])
        .await;
    Clinic {
        reception: api.login(demo::RECEPTION.0, demo::RECEPTION.1).await,
        lee: api.login(demo::PHYSICIAN.0, demo::PHYSICIAN.1).await,
        sb,
        server,
        api,
        admin,
    }
}

/// Dr. Lee works every day at main; `pid` has an appointment on [`DAY`] at 09:00, a
/// medication and an allergy.
async fn chart_with_care(c: &Clinic, pid: &str) {
    let all: Value = (1..=7)
        .map(|d| (d.to_string(), json!([{"start": "08:00", "end": "17:00"}])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    c.api
        .put(
            &format!("{SCHED}/availability/drlee"),
            &c.reception,
            &json!({ "days": all }),
            None,
        )
        .await
        .expect(200);
    c.api
        .post(
            &format!("{SCHED}/appointments"),
            &c.reception,
            &json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "09:00", "minutes": 15}),
        )
        .await
        .expect(201);
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/prescriptions"),
            &c.lee,
            &json!({"din": "99000111", "sig": "1 tab PO QAM", "quantity": "90"}),
        )
        .await
        .expect(201);
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/allergies"),
            &c.lee,
            &json!({"kind": "ingredient", "allergen": "penicillin", "reaction": "hives", "severity": "moderate"}),
        )
        .await
        .expect(201);
}

/// Reception creates `pid`'s account (user name `username`); the code page's code.
async fn create_account(c: &Clinic, pid: &str, username: &str) -> String {
    let desk = Browser {
        api: c.api.clone(),
        token: c.reception.clone(),
    };
    let chart = desk.get(&format!("/patients/{pid}")).await.expect(200);
    assert!(
        chart.text.contains("Create patient account"),
        "{}",
        chart.text
    );
    let r = desk
        .post(
            &format!("/patients/{pid}/account"),
            &[("username", username)],
        )
        .await
        .expect(200);
    let code = text_of(&r.text, "activation-code").expect("the code is shown");
    assert_eq!(code.len(), 19, "four groups of four: {code}");
    assert_eq!(
        text_of(&r.text, "activation-username").as_deref(),
        Some(username)
    );
    code
}

/// The `/activate` form, posted with its own CSRF cookie.
async fn activate(api: &Api, code: &str, birth: &str, password: &str) -> Resp {
    let page = api
        .client
        .get(format!("{}/activate", api.base))
        .send()
        .await
        .expect("activate page");
    let page = Resp::read(page).await.expect(200);
    let csrf = hidden_field(&page.text, "csrf").expect("csrf field");
    let r = api
        .client
        .post(format!("{}/activate", api.base))
        .header("cookie", format!("osler_activate_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("code", code),
            ("birth_date", birth),
            ("password", password),
            ("confirm", password),
        ])
        .send()
        .await
        .expect("activate");
    Resp::read(r).await
}

async fn audit_of(c: &Clinic, pid: &str) -> Vec<Value> {
    c.api.audit_all(&c.admin, &format!("patient={pid}")).await
}

#[tokio::test]
async fn a_patient_activates_their_account_and_sees_only_their_own_record() {
    let c = clinic().await;
    let me = id_of(
        &c.api
            .create(
                &c.reception,
                &patient("Tremblay", "Marie", "1980-06-15", &hcn(701)),
            )
            .await,
    );
    let other = id_of(
        &c.api
            .create(
                &c.reception,
                &patient("Okafor", "Chidi", "1975-01-02", &hcn(702)),
            )
            .await,
    );
    chart_with_care(&c, &me).await;

    // A physician may not create patient accounts; reception may.
    let lee = Browser {
        api: c.api.clone(),
        token: c.lee.clone(),
    };
    let chart = lee.get(&format!("/patients/{me}")).await.expect(200);
    assert!(!chart.text.contains("Create patient account"));
    lee.post(&format!("/patients/{me}/account"), &[("username", "marie")])
        .await
        .expect(403);
    let code = create_account(&c, &me, "marie.t").await;

    // Wrong birth date, then a bad code: refused, nothing activated.
    let r = activate(&c.api, &code, "1980-06-16", "a long new password").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("birth date does not match"), "{}", r.text);
    let r = activate(
        &c.api,
        "AAAA-BBBB-CCCC-DDDD",
        "1980-06-15",
        "a long new password",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        c.api
            .try_login("marie.t", "a long new password")
            .await
            .status
            == 401
    );

    // The right birth date (and the code typed in lower case) sets the password.
    let r = activate(
        &c.api,
        &code.to_lowercase(),
        "1980-06-15",
        "a long new password",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("marie.t"));
    // Single use.
    let r = activate(&c.api, &code, "1980-06-15", "another password!").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("not valid"), "{}", r.text);

    // Each step is on the patient's audit trail.
    let trail = audit_of(&c, &me).await;
    let has = |action: &str, outcome: &str| {
        trail
            .iter()
            .any(|e| e["action"] == action && e["outcome"] == outcome)
    };
    assert!(has("patient.account.create", "success"));
    assert!(has("patient.account.code", "success"));
    assert!(has("patient.activate", "failure"));
    assert!(has("patient.activate", "success"));

    // Signed in, the patient's navigation is their own, and staff pages are refused.
    let token = c.api.login("marie.t", "a long new password").await;
    let marie = Browser {
        api: c.api.clone(),
        token: token.clone(),
    };
    let home = marie.get("/").await.expect(200);
    for nav in ["My health", "Sharing", "Who looked", "My contact details"] {
        assert!(home.text.contains(nav), "{nav} in {}", home.text);
    }
    assert!(!home.text.contains(">Schedule<"), "{}", home.text);
    for path in [
        "/patients",
        "/admin",
        "/admin/users",
        "/plugins/scheduling/",
        "/plugins/prescribing/",
    ] {
        let r = marie.get(path).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
    }

    // Their record: appointment, medication, allergy.
    let mine = marie.get("/plugins/phr/").await.expect(200);
    assert!(mine.text.contains("Marie Tremblay"), "{}", mine.text);
    assert!(
        mine.text.contains(DAY) && mine.text.contains("09:00"),
        "{}",
        mine.text
    );
    assert!(mine.text.contains("Dr. Amelia Lee"));
    assert!(
        mine.text.to_lowercase().contains("levothyroxine"),
        "{}",
        mine.text
    );
    assert!(mine.text.contains("penicillin") && mine.text.contains("hives"));
    // The clinic's patient-audience reading for the medication's class (H03A), not the
    // clinicians' guideline.
    assert!(
        mine.text.contains("MedlinePlus: Hypothyroidism"),
        "{}",
        mine.text
    );
    assert!(!mine.text.contains("American Thyroid Association"));
    assert!(!mine.text.contains("Okafor"));

    // Another patient's id, anywhere: refused, and the attempt is on that patient's trail.
    let before = audit_of(&c, &other)
        .await
        .iter()
        .filter(|e| e["actor"] == "marie.t" && e["outcome"] == "denied")
        .count();
    for path in [
        format!("/plugins/phr/?patient={other}"),
        format!("/plugins/phr/patients/{other}"),
        format!("/plugins/phr/request?patient={other}"),
        format!("/patients/{other}"),
        format!("/api/v1/patients/{other}"),
    ] {
        let r = marie.get(&path).await;
        assert!(
            r.status == 403 || r.status == 404,
            "{path}: {} {}",
            r.status,
            r.text
        );
        assert!(!r.text.contains("Okafor"), "{path}");
    }
    let r = c
        .api
        .get(
            &format!("/plugins/prescribing/api/patients/{other}"),
            &token,
        )
        .await;
    assert!(r.status == 403 || r.status == 404, "{}", r.text);
    let after = audit_of(&c, &other)
        .await
        .iter()
        .filter(|e| e["actor"] == "marie.t" && e["outcome"] == "denied")
        .count();
    assert!(after >= before + 5, "{before} → {after}");

    // An appointment request lands on the waiting list, marked as the patient's.
    let form = marie.get("/plugins/phr/request").await.expect(200);
    let csrf = hidden_field(&form.text, "_csrf").expect("the plugin's csrf");
    let r = marie
        .post_raw(
            "/plugins/phr/request",
            &[
                ("_csrf", &csrf),
                ("dates", "any weekday next week"),
                ("times", "morning"),
                ("reason", "thyroid follow-up"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let r = marie
        .post_raw(
            "/plugins/phr/request",
            &[
                ("_csrf", &csrf),
                ("patient", &other),
                ("times", "morning"),
                ("reason", "for someone else"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let list = c
        .api
        .get(&format!("{SCHED}/waitlists/patient-requests"), &c.reception)
        .await
        .expect(200);
    let entries = list.json["entries"].as_array().expect("entries").clone();
    assert_eq!(entries.len(), 1, "{}", list.text);
    assert_eq!(entries[0]["patient"], me.as_str());
    assert_eq!(entries[0]["patientRequest"], true);
    assert!(
        entries[0]["note"]
            .as_str()
            .unwrap()
            .contains("thyroid follow-up")
    );
    let desk = Browser {
        api: c.api.clone(),
        token: c.reception.clone(),
    };
    let page = desk
        .get("/plugins/scheduling/waitlist?list=patient-requests")
        .await
        .expect(200);
    assert!(page.text.contains("Patient request"), "{}", page.text);
    let mine = marie.get("/plugins/phr/").await.expect(200);
    assert!(mine.text.contains("thyroid follow-up"), "{}", mine.text);

    // Contact details: the patient changes their phone; staff see it and who made it.
    let r = marie
        .post(
            "/me/contact",
            &[
                ("version", "1"),
                ("phone", "613-555-0142"),
                ("mobile", ""),
                ("email", "marie@example.org"),
                ("line", "12 Rideau St"),
                ("city", "Ottawa"),
                ("province", "on"),
                ("postal_code", "K1N 5X8"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let chart = desk.get(&format!("/patients/{me}")).await.expect(200);
    assert!(chart.text.contains("613-555-0142"), "{}", chart.text);
    assert!(chart.text.contains("12 Rideau St"));
    assert!(
        chart.text.contains("marie.t (patient)"),
        "changed by the patient: {}",
        chart.text
    );
    let updates: Vec<Value> = audit_of(&c, &me)
        .await
        .into_iter()
        .filter(|e| e["action"] == "patient.update" && e["outcome"] == "success")
        .collect();
    assert_eq!(updates.last().unwrap()["actor"], "marie.t");
    // Only contact details: a name in the form changes nothing else.
    let p = c
        .api
        .get(&format!("/api/v1/patients/{me}"), &c.reception)
        .await
        .expect(200);
    assert_eq!(p.json["name"][0]["family"], "Tremblay");
    assert_eq!(p.json["birthDate"], "1980-06-15");
    // A bad email: a clear error, nothing changed.
    let r = marie
        .post(
            "/me/contact",
            &[
                ("version", "2"),
                ("phone", "613-555-0142"),
                ("email", "not an email"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let p2 = c
        .api
        .get(&format!("/api/v1/patients/{me}"), &c.reception)
        .await
        .expect(200);
    assert_eq!(p2.json["meta"]["versionId"], p.json["meta"]["versionId"]);
    // The patient cannot use the staff edit form or the API to change anything else.
    let r = c
        .api
        .put(
            &format!("/api/v1/patients/{me}"),
            &token,
            &p.json,
            Some("W/\"2\""),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);

    // "Who looked": the clinic's accesses, with names and roles.
    let looked = marie.get("/me/access").await.expect(200);
    assert!(looked.text.contains("Dr. Amelia Lee"), "{}", looked.text);
    assert!(looked.text.contains("physician"));
    assert!(!looked.text.contains("127.0.0.1"), "no internal detail");
    let _ = (&c.sb, &c.server);
}

#[tokio::test]
async fn a_share_shows_only_its_sections_until_revoked_or_expired_and_every_view_is_seen() {
    let c = clinic().await;
    let me = id_of(
        &c.api
            .create(
                &c.reception,
                &patient("Lindqvist", "Ebba", "1990-03-04", &hcn(711)),
            )
            .await,
    );
    chart_with_care(&c, &me).await;
    let code = create_account(&c, &me, "ebba").await;
    activate(&c.api, &code, "1990-03-04", "ebba's long password")
        .await
        .expect(200);
    let ebba = Browser {
        api: c.api.clone(),
        token: c.api.login("ebba", "ebba's long password").await,
    };

    // Share medications and allergies only.
    let page = ebba.get("/me/shares").await.expect(200);
    assert!(
        page.text.contains("Medications and allergies"),
        "{}",
        page.text
    );
    let r = ebba
        .post(
            "/me/shares",
            &[
                ("section", "phr/share-medications"),
                ("days", "7"),
                ("recipient", "Dr. Chen"),
            ],
        )
        .await
        .expect(201);
    let link = hidden_value(&r.text).expect("the link");
    let path = link[link.find("/share/").unwrap()..].to_string();
    let token = path.trim_start_matches("/share/").to_string();
    assert!(token.len() >= 22, "at least 128 bits: {token}");

    // Anyone with the link, without a session, sees just that, as of today.
    let anon = c.api.client.clone();
    let open = |ua: &'static str| {
        let (anon, url) = (anon.clone(), format!("{}{path}", c.api.base));
        async move {
            Resp::read(
                anon.get(url)
                    .header("user-agent", ua)
                    .send()
                    .await
                    .expect("share"),
            )
            .await
        }
    };
    let seen = open("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")
        .await
        .expect(200);
    assert!(
        seen.text.to_lowercase().contains("levothyroxine"),
        "{}",
        seen.text
    );
    assert!(seen.text.contains("penicillin"));
    assert!(seen.text.contains("as of"));
    assert!(
        !seen.text.contains("Lindqvist"),
        "demographics were not chosen"
    );
    assert!(!seen.text.contains(DAY), "appointments were not chosen");
    assert_eq!(seen.header("referrer-policy"), Some("no-referrer"));
    assert!(seen.header("cache-control").unwrap().contains("no-store"));
    assert!(seen.header("x-robots-tag").unwrap().contains("noindex"));
    // A guessed token finds nothing.
    let r = Resp::read(
        anon.get(format!(
            "{}/share/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            c.api.base
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, 404);

    // The view is shown to the patient, beside the clinic's accesses.
    let looked = ebba.get("/me/access").await.expect(200);
    assert!(looked.text.contains("Firefox on Linux"), "{}", looked.text);
    assert!(looked.text.contains("Dr. Chen"));
    assert!(looked.text.contains("Dr. Amelia Lee"));

    // Revoked: the link stops working at once.
    let shares = ebba.get("/me/shares").await.expect(200);
    let id = shares
        .text
        .split("data-share=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a share row")
        .to_string();
    ebba.post(&format!("/me/shares/{id}/revoke"), &[])
        .await
        .expect(303);
    let gone = open("curl/8.0").await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    assert!(!gone.text.to_lowercase().contains("levothyroxine"));
    let listed = ebba.get("/me/shares").await.expect(200);
    assert!(listed.text.contains("revoked"));

    // Another patient cannot revoke it (or see it): not theirs.
    let trail = audit_of(&c, &me).await;
    assert!(
        trail
            .iter()
            .any(|e| e["action"] == "share.view" && e["outcome"] == "success")
    );
    assert!(
        trail
            .iter()
            .any(|e| e["action"] == "share.view" && e["outcome"] == "denied")
    );

    // A share lasts at most the clinic's maximum (here 20 s): then it is gone.
    let r = ebba
        .post(
            "/me/shares",
            &[
                ("section", "phr/share-demographics"),
                ("section", "phr/share-appointments"),
                ("days", "1"),
            ],
        )
        .await
        .expect(201);
    let link = hidden_value(&r.text).expect("the link");
    let url = format!("{}{}", c.api.base, &link[link.find("/share/").unwrap()..]);
    let seen = Resp::read(anon.get(&url).send().await.unwrap())
        .await
        .expect(200);
    assert!(seen.text.contains("Lindqvist"), "{}", seen.text);
    assert!(seen.text.contains(DAY));
    assert!(!seen.text.to_lowercase().contains("levothyroxine"));
    tokio::time::sleep(Duration::from_secs(SHARE_SECONDS + 1)).await;
    let r = Resp::read(anon.get(&url).send().await.unwrap()).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let _ = (&c.sb, &c.server);
}

/// The share link in the page's read-only field.
fn hidden_value(html: &str) -> Option<String> {
    let marker = "id=\"share-link\" readonly value=\"";
    let start = html.find(marker)? + marker.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_string())
}

#[tokio::test]
async fn an_expired_code_is_refused_and_sections_say_unavailable_without_their_plugins() {
    let sb = Sandbox::new();
    let mut env = plugin_env();
    env.push(("OSLER_PORTAL__ACTIVATION_SECONDS", "5".to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(1, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let reception = api.login(demo::RECEPTION.0, demo::RECEPTION.1).await;
    api.install_enabled(&admin, &package("plugins/phr"), "main", &["patients.read"])
        .await;
    let me = id_of(
        &api.create(
            &reception,
            &patient("Nakamura", "Kenji", "1966-09-30", &hcn(721)),
        )
        .await,
    );
    let c = Clinic {
        sb,
        server,
        api: api.clone(),
        admin,
        reception: reception.clone(),
        lee: String::new(),
    };
    let code = create_account(&c, &me, "kenji").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let r = activate(&api, &code, "1966-09-30", "kenji's long password").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("expired"), "{}", r.text);

    // A new code works.
    let desk = Browser {
        api: api.clone(),
        token: reception,
    };
    let page = desk
        .post(&format!("/patients/{me}/account/code"), &[])
        .await
        .expect(200);
    let code = text_of(&page.text, "activation-code").unwrap();
    activate(&api, &code, "1966-09-30", "kenji's long password")
        .await
        .expect(200);

    // Neither scheduling nor prescribing is installed: those sections say so, the rest works.
    let kenji = Browser {
        api: api.clone(),
        token: api.login("kenji", "kenji's long password").await,
    };
    let mine = kenji.get("/plugins/phr/").await.expect(200);
    assert!(mine.text.contains("Kenji Nakamura"), "{}", mine.text);
    assert!(
        mine.text.contains("Appointments are unavailable"),
        "{}",
        mine.text
    );
    assert!(mine.text.contains("Medications are unavailable"));
    assert!(mine.text.contains("Allergies are unavailable"));
    assert!(mine.text.contains("Reading suggestions are unavailable"));
    let r = kenji.get("/plugins/phr/request").await.expect(200);
    let csrf = hidden_field(&r.text, "_csrf").unwrap();
    let r = kenji
        .post_raw(
            "/plugins/phr/request",
            &[("_csrf", &csrf), ("times", "any"), ("reason", "check-up")],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.text.contains("unavailable"));
    let _ = (&c.sb, &c.server, &c.lee);
}
