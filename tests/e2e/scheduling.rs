//! The scheduling and kiosk plugins end to end: the real binary with both plugins built from
//! `plugins/`, installed and enabled at site `main` over the admin API.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Api, Auth, Resp, Sandbox, Server, demo, hcn, id_of, package, patient, plugin_env,
};

const SCHED: &str = "/plugins/scheduling/api";
/// A Monday far from today, for the booking rules (the kiosk tests use today).
const DAY: &str = "2030-01-07";

struct Clinic {
    _sb: Sandbox,
    _server: Server,
    api: Api,
    admin: String,
    reception: String,
    kiosk: String,
}

/// A demo clinic with scheduling enabled at `main` and `north`, and the kiosk at `main` only.
async fn clinic() -> Clinic {
    let sb = Sandbox::new();
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(3, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    let scheduling = package("plugins/scheduling");
    let kiosk = package("plugins/kiosk");
    let caps = ["kv", "directory", "patients.read", "events.publish"];
    api.install_enabled(&admin, &scheduling, "main", &caps)
        .await;
    api.enable(&admin, "scheduling", "north", &caps).await;
    api.install_enabled(&admin, &kiosk, "main", &["kv", "patients.match"])
        .await;
    Clinic {
        reception: api.login(demo::RECEPTION.0, demo::RECEPTION.1).await,
        kiosk: api.login(demo::KIOSK.0, demo::KIOSK.1).await,
        _sb: sb,
        _server: server,
        api,
        admin,
    }
}

impl Clinic {
    async fn put(&self, path: &str, body: Value) -> Resp {
        self.api
            .put(&format!("{SCHED}{path}"), &self.reception, &body, None)
            .await
    }

    async fn book(&self, body: Value) -> Resp {
        self.api
            .post(&format!("{SCHED}/appointments"), &self.reception, &body)
            .await
    }

    async fn day(&self, provider: &str, date: &str) -> Vec<Value> {
        let r = self
            .api
            .get(&format!("{SCHED}/day/{provider}/{date}"), &self.reception)
            .await
            .expect(200);
        r.json["appointments"]
            .as_array()
            .expect("appointments")
            .clone()
    }

    /// Dr. Lee works every day, all day, at main.
    async fn always_available(&self) {
        let all: Value = (1..=7)
            .map(|d| (d.to_string(), json!([{"start": "00:00", "end": "24:00"}])))
            .collect::<serde_json::Map<_, _>>()
            .into();
        self.put("/availability/drlee", json!({ "days": all }))
            .await
            .expect(200);
    }

    async fn check_in(&self, card: &str, birth: &str) -> Resp {
        self.api
            .post(
                "/plugins/kiosk/api/check-in",
                &self.kiosk,
                &json!({"healthCard": card, "versionCode": "", "birthDate": birth}),
            )
            .await
    }
}

fn times(appts: &[Value]) -> Vec<&str> {
    appts.iter().map(|a| a["start"].as_str().unwrap()).collect()
}

/// The patients' names on a day sheet, in its order.
fn names(appts: &[Value]) -> Vec<&str> {
    appts
        .iter()
        .map(|a| a["patientName"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn bookings_follow_availability_overlaps_blocks_and_template_limits() {
    let c = clinic().await;
    let p = c
        .api
        .create(
            &c.reception,
            &patient("Okafor", "Ada", "1975-04-02", &hcn(1)),
        )
        .await;
    let pid = id_of(&p);

    // Monday 09:00-12:00; slot codes: '1' 15 minutes (warn after 2 a day), 'P' 30 minutes
    // (block after 1 a day); the day is 1111 then PP.
    c.put(
        "/availability/drlee",
        json!({"days": {"1": [{"start": "09:00", "end": "12:00"}]}}),
    )
    .await
    .expect(200);
    c.put(
        "/codes/1",
        json!({"name": "Regular", "minutes": 15, "limitPerDay": 2, "limitType": "warn"}),
    )
    .await
    .expect(200);
    c.put(
        "/codes/P",
        json!({"name": "Physical", "minutes": 30, "limitPerDay": 1, "limitType": "block"}),
    )
    .await
    .expect(200);
    c.put(
        "/templates/drlee/mon",
        json!({"start": "09:00", "slots": "1111PP"}),
    )
    .await
    .expect(200);

    // Booked out of time order on purpose.
    let first = c
        .book(
            json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "09:30",
                     "minutes": 15, "reason": "Follow-up"}),
        )
        .await
        .expect(201);
    let a = &first.json["appointment"];
    assert_eq!(a["status"], "t");
    assert_eq!(a["providerName"], demo::PHYSICIAN_DISPLAY_NAME);
    assert_eq!(first.json["doubleBooked"], false);
    assert_eq!(first.json["warnings"], json!([]));
    c.book(
        json!({"provider": "drlee", "name": "Walk-in Visitor", "date": DAY,
                  "start": "09:00", "minutes": 15}),
    )
    .await
    .expect(201);

    // An overlap is refused, and nothing is booked.
    let r = c
        .book(
            json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "09:35",
                     "minutes": 15}),
        )
        .await
        .expect(409);
    assert!(r.text.contains("overlaps"), "{}", r.text);
    // Outside availability: before the day starts, and on a Tuesday.
    let r = c
        .book(
            json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "08:45",
                     "minutes": 15}),
        )
        .await
        .expect(409);
    assert!(r.text.contains("availability"), "{}", r.text);
    c.book(
        json!({"provider": "drlee", "patient": pid, "date": "2030-01-08",
                  "start": "09:00", "minutes": 15}),
    )
    .await
    .expect(409);
    // Bad input is a clear 400.
    let r = c
        .book(
            json!({"provider": "drlee", "patient": pid, "date": "2030-02-30",
                     "start": "09:00", "minutes": 15}),
        )
        .await
        .expect(400);
    assert_eq!(r.error_code(), "invalid");
    assert!(r.text.contains("date"), "{}", r.text);

    // The blocking limit: one 'P' a day.
    c.book(
        json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "10:00",
                  "minutes": 30}),
    )
    .await
    .expect(201);
    let r = c
        .book(
            json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "10:30",
                     "minutes": 30}),
        )
        .await
        .expect(409);
    assert!(r.text.contains("limit"), "{}", r.text);
    // The warning limit: a third '1' is booked, with a warning.
    let r = c
        .book(
            json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "09:45",
                     "minutes": 15}),
        )
        .await
        .expect(201);
    assert!(
        r.json["warnings"][0].as_str().unwrap().contains("limit"),
        "{}",
        r.text
    );
    let cancelled = r.json["appointment"]["id"].as_str().unwrap().to_string();

    // A "do not book" block.
    c.api
        .post(
            &format!("{SCHED}/blocks"),
            &c.reception,
            &json!({"provider": "drlee", "date": DAY, "start": "11:00", "end": "11:30",
                    "reason": "Hospital rounds"}),
        )
        .await
        .expect(201);
    let r = c
        .book(
            json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "11:15",
                     "minutes": 15}),
        )
        .await
        .expect(409);
    assert!(r.text.contains("do not book"), "{}", r.text);

    // Double booking where the site allows it, and the answer says so.
    c.api
        .put(
            "/api/v1/admin/plugins/scheduling/sites/main/config",
            &c.admin,
            &json!({"double-booking": true}),
            None,
        )
        .await
        .expect(200);
    let r = c
        .book(
            json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "09:35",
                     "minutes": 15}),
        )
        .await
        .expect(201);
    assert_eq!(r.json["doubleBooked"], true);
    assert_eq!(r.json["appointment"]["doubleBooked"], true);

    // Cancel one: the status history keeps both, and the day sheet drops it.
    let r = c
        .api
        .post(
            &format!("{SCHED}/appointments/{cancelled}/status"),
            &c.reception,
            &json!({"status": "C"}),
        )
        .await
        .expect(200);
    assert_eq!(r.json["fhirStatus"], "cancelled");
    let history: Vec<&str> = r.json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["t", "C"]);

    let day = c.day("drlee", DAY).await;
    assert_eq!(times(&day), ["09:00", "09:30", "09:35", "10:00"]);
    assert!(day.iter().all(|a| a["id"] != cancelled.as_str()));
    assert_eq!(day[1]["patientName"], "Okafor, Ada");
    assert_eq!(day[0]["patientName"], "Walk-in Visitor");
    // Its time is free again: the cancelled 09:45 can be rebooked.
    c.book(
        json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "09:45",
                  "minutes": 15}),
    )
    .await
    .expect(201);

    // The printable day sheet page lists the same day, in order.
    let page = c
        .api
        .get(
            &format!("/plugins/scheduling/day?provider=drlee&date={DAY}"),
            &c.reception,
        )
        .await
        .expect(200);
    let at = |t: &str| page.text.find(&format!("<td>{t}")).unwrap_or(usize::MAX);
    assert!(
        at("09:00") < at("09:30") && at("09:30") < at("10:00"),
        "{}",
        page.text
    );
    assert!(page.text.contains("Okafor, Ada"));
    assert!(page.text.contains("Walk-in Visitor (not registered)"));

    // Providers side by side: Dr. Lee's column is the same day.
    let group = c
        .api
        .get(
            &format!("{SCHED}/day/{DAY}?providers=drlee,nurse.kim"),
            &c.reception,
        )
        .await
        .expect(200);
    let cols = group.json["providers"].as_array().unwrap();
    assert_eq!(cols.len(), 2);
    assert_eq!(cols[0]["appointments"].as_array().unwrap().len(), 5);
    assert_eq!(cols[1]["appointments"], json!([]));

    // Waiting lists: booking (with the form) a patient who is on one offers to remove them.
    c.put("/waitlists/physio", json!({"description": "Physiotherapy"}))
        .await
        .expect(200);
    let entry = c
        .api
        .post(
            &format!("{SCHED}/waitlists/physio/entries"),
            &c.reception,
            &json!({"patient": pid, "note": "Left knee"}),
        )
        .await
        .expect(201);
    let form = |path: &str, body: String| {
        c.api
            .client
            .post(format!("{}/plugins/scheduling/{path}", c.api.base))
            .bearer_auth(&c.reception)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let booked = form(
        "book",
        format!("provider=drlee&patient={pid}&name=&date={DAY}&start=11%3A30&minutes=15&type=&reason=Knee&notes="),
    )
    .await
    .unwrap();
    assert_eq!(booked.status().as_u16(), 201);
    let text = booked.text().await.unwrap();
    assert!(
        text.contains("physio") && text.contains("Remove them from it"),
        "{text}"
    );
    let removed = form(
        "waitlist/remove",
        format!("list=physio&id={}", entry.json["id"].as_str().unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(removed.status().as_u16(), 303);
    let list = c
        .api
        .get(&format!("{SCHED}/waitlists/physio"), &c.reception)
        .await
        .expect(200);
    assert_eq!(list.json["entries"], json!([]));
}

/// The day sheet shows each patient's name, read through the host: the reads are one audit
/// entry naming every patient on the sheet, on each one's trail, as the receptionist's,
/// through scheduling.
#[tokio::test]
async fn a_day_sheet_with_names_is_one_audit_entry_naming_each_patient() {
    let c = clinic().await;
    c.always_available().await;
    let people = [
        ("Okafor", "Ada"),
        ("Lindqvist", "Sven"),
        ("Nakamura", "Emi"),
    ];
    let mut pids = Vec::new();
    for (i, (family, given)) in people.iter().enumerate() {
        let p = patient(family, given, "1980-01-01", &hcn(40 + i as u64));
        let pid = id_of(&c.api.create(&c.reception, &p).await);
        c.book(json!({"provider": "drlee", "patient": pid, "date": DAY,
                      "start": format!("09:{:02}", i * 15), "minutes": 15}))
            .await
            .expect(201);
        pids.push(pid);
    }
    let reads = || async {
        c.api
            .audit_all(&c.admin, "actor=reception")
            .await
            .into_iter()
            .filter(|e| e["action"] == "patient.read" && e["via"] == "scheduling")
            .collect::<Vec<Value>>()
    };
    let before = reads().await;

    let day = c.day("drlee", DAY).await;
    assert_eq!(
        names(&day),
        ["Okafor, Ada", "Lindqvist, Sven", "Nakamura, Emi"]
    );

    let after = reads().await;
    let new: Vec<&Value> = after.iter().filter(|e| !before.contains(e)).collect();
    assert_eq!(new.len(), 1, "one entry for the sheet: {new:?}");
    let entry = new[0];
    assert_eq!(entry["outcome"], "success");
    assert_eq!(entry["site"], "main");
    let mut named: Vec<&str> = entry["patients"]
        .as_array()
        .unwrap_or_else(|| panic!("{entry}"))
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    named.sort();
    let mut expected: Vec<&str> = pids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(named, expected, "every patient on the sheet is named");
    for pid in &pids {
        let trail = c.api.audit_all(&c.admin, &format!("patient={pid}")).await;
        assert!(
            trail.iter().any(|e| e["seq"] == entry["seq"]),
            "the read is on {pid}'s trail: {trail:?}"
        );
    }

    // The sheet shown again is read and audited again, and the name corrected at the desk is
    // on it at once, beside the two records that did not change.
    let path = format!("/api/v1/patients/{}", pids[1]);
    let mut record = c.api.get(&path, &c.reception).await.expect(200).json;
    record["name"][0]["family"] = json!("Lindquist");
    c.api
        .put(&path, &c.reception, &record, None)
        .await
        .expect(200);
    let day = c.day("drlee", DAY).await;
    assert_eq!(
        names(&day),
        ["Okafor, Ada", "Lindquist, Sven", "Nakamura, Emi"]
    );
    let again = reads().await;
    assert_eq!(
        again.len(),
        after.len() + 1,
        "the second showing is on the trail too"
    );
}

#[tokio::test]
async fn twenty_concurrent_bookings_of_one_slot_make_exactly_one_appointment() {
    let c = clinic().await;
    c.put(
        "/availability/drlee",
        json!({"days": {"1": [{"start": "09:00", "end": "12:00"}]}}),
    )
    .await
    .expect(200);
    // Twenty receptionists press "book" at the same moment.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (api, token) = (c.api.clone(), c.reception.clone());
        set.spawn(async move {
            api.post(
                &format!("{SCHED}/appointments"),
                &token,
                &json!({"provider": "drlee", "name": format!("Person {i}"), "date": DAY,
                        "start": "09:00", "minutes": 15}),
            )
            .await
        });
    }
    let answers = set.join_all().await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|r| r.status == 409)
            .all(|r| r.text.contains("overlaps"))
    );
    let day = c.day("drlee", DAY).await;
    assert_eq!(day.len(), 1, "{day:?}");
}

/// Books `patient` with Dr. Lee today at the current five minutes (site time).
async fn book_now(c: &Clinic, pid: &str) -> Value {
    let settings = c
        .api
        .get(&format!("{SCHED}/settings"), &c.reception)
        .await
        .expect(200);
    let now = settings.json["now"].as_str().unwrap();
    let (date, hh, mm) = (&now[..10], &now[11..13], &now[14..16]);
    let mm: u32 = mm.parse::<u32>().unwrap() / 5 * 5;
    let start = format!("{hh}:{mm:02}");
    c.book(
        json!({"provider": "drlee", "patient": pid, "date": date, "start": start,
                  "minutes": 5}),
    )
    .await
    .expect(201)
    .json["appointment"]
        .clone()
}

async fn status_of(c: &Clinic, id: &str) -> String {
    c.api
        .get(&format!("{SCHED}/appointments/{id}"), &c.reception)
        .await
        .expect(200)
        .json["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_patient_checks_in_at_the_kiosk_and_learns_nothing_else() {
    let c = clinic().await;
    c.always_available().await;
    let card = hcn(7);
    let p = c
        .api
        .create(
            &c.reception,
            &patient("Tremblay", "Marie", "1980-06-15", &card),
        )
        .await;
    let pid = id_of(&p);
    let appt = book_now(&c, &pid).await;
    let id = appt["id"].as_str().unwrap();

    // The kiosk page is a form, for the kiosk.
    let page = c.api.get("/plugins/kiosk/", &c.kiosk).await.expect(200);
    assert!(page.text.contains("Health card number"), "{}", page.text);
    assert!(page.text.contains(r#"name="_csrf""#));

    // A wrong birth date, and an unknown card: the same neutral answer, nothing changes.
    let wrong = c.check_in(&card, "1980-06-16").await.expect(200);
    let unknown = c.check_in(&hcn(8), "1980-06-15").await.expect(200);
    assert_eq!(wrong.json["checkedIn"], false);
    assert_eq!(wrong.text, unknown.text);
    assert!(wrong.text.contains("see reception"), "{}", wrong.text);
    assert!(!wrong.text.contains("Tremblay") && !wrong.text.contains(&pid));
    assert_eq!(status_of(&c, id).await, "t");

    // The right card and birth date: checked in, status H (FHIR arrived).
    let ok = c.check_in(&card, "1980-06-15").await.expect(200);
    assert_eq!(ok.json["checkedIn"], true);
    let msg = ok.json["message"].as_str().unwrap();
    assert_eq!(
        msg,
        format!(
            "You are checked in for {} with {}.",
            appt["start"].as_str().unwrap(),
            demo::PHYSICIAN_DISPLAY_NAME
        )
    );
    assert!(!ok.text.contains("Tremblay") && !ok.text.contains(&pid));
    let a = c
        .api
        .get(&format!("{SCHED}/appointments/{id}"), &c.reception)
        .await
        .expect(200);
    assert_eq!(a.json["status"], "H");
    assert_eq!(a.json["fhirStatus"], "arrived");
    // The host says who checked in: the kiosk device signed in at the site.
    assert_eq!(a.json["history"][1]["by"], demo::KIOSK.0);

    // The check-in is in the audit trail, with the patient and the kiosk.
    let audit = c.api.audit_all(&c.admin, "actor=kiosk.main").await;
    let entry = audit
        .iter()
        .find(|e| e["action"] == "kiosk.check-in")
        .unwrap_or_else(|| panic!("no check-in entry in {audit:?}"));
    assert_eq!(entry["patient"], pid.as_str());

    // Someone with no appointment now gets the same neutral answer.
    let other = c
        .api
        .create(&c.reception, &patient("Roy", "Luc", "1990-01-01", &hcn(9)))
        .await;
    let none = c.check_in(&hcn(9), "1990-01-01").await.expect(200);
    assert_eq!(none.text, unknown.text);
    drop(other);

    // Staff do not check patients in at the kiosk page (they lack `patients.match`).
    c.api.get("/plugins/kiosk/", &c.reception).await.expect(403);

    // The kiosk is not enabled at north: 404 there.
    c.api
        .get_at("/plugins/kiosk/", &c.reception, "north")
        .await
        .expect(404);
    c.api
        .get_at("/plugins/scheduling/api/settings", &c.reception, "north")
        .await
        .expect(200);

    // The kiosk user cannot read the chart, through the host or through a plugin.
    for path in [
        format!("/api/v1/patients/{pid}"),
        "/api/v1/patients?name=Tremblay".to_string(),
        format!("{SCHED}/appointments/{id}"),
        format!("{SCHED}/day/drlee/{}", appt["date"].as_str().unwrap()),
        format!("{SCHED}/day/{}", appt["date"].as_str().unwrap()),
        format!("{SCHED}/patients/{pid}/appointments"),
        format!("{SCHED}/settings"),
        format!(
            "/plugins/scheduling/day?provider=drlee&date={}",
            appt["date"].as_str().unwrap()
        ),
        "/plugins/scheduling/".to_string(),
    ] {
        let r = c.api.get(&path, &c.kiosk).await;
        assert_eq!(r.status.as_u16(), 403, "{path}: {}", r.text);
        assert!(!r.text.contains("Tremblay"), "{path}: {}", r.text);
    }
    let r = c
        .api
        .put(
            &format!("/api/v1/patients/{pid}"),
            &c.kiosk,
            &json!({"resourceType": "Patient"}),
            Some("1"),
        )
        .await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text);
    let r = c
        .api
        .post(
            &format!("{SCHED}/appointments/{id}/status"),
            &c.kiosk,
            &json!({"status": "C"}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text);
    assert_eq!(status_of(&c, id).await, "H");
}

#[tokio::test]
async fn repeated_failures_at_a_kiosk_are_slowed_then_locked() {
    let c = clinic().await;
    c.always_available().await;
    let card = hcn(11);
    let p = c
        .api
        .create(
            &c.reception,
            &patient("Nguyen", "Linh", "1972-09-30", &card),
        )
        .await;
    let appt = book_now(&c, &id_of(&p)).await;

    // Three free wrong guesses, then the kiosk waits: even the right answer is refused now.
    for _ in 0..3 {
        let r = c.check_in(&card, "1972-09-29").await.expect(200);
        assert_eq!(r.json["checkedIn"], false);
    }
    let r = c.check_in(&card, "1972-09-30").await.expect(429);
    assert!(r.text.contains("see reception"), "{}", r.text);
    assert!(!r.text.contains("Nguyen"));
    assert_eq!(status_of(&c, appt["id"].as_str().unwrap()).await, "t");
    // The kiosk's page says the same.
    let form = c
        .api
        .client
        .post(format!("{}/plugins/kiosk/", c.api.base))
        .bearer_auth(&c.kiosk)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "healthCard={card}&versionCode=&birthDate=1972-09-30"
        ))
        .send()
        .await
        .expect("form post");
    assert_eq!(form.status().as_u16(), 429);
    let text = form.text().await.unwrap();
    assert!(
        text.contains("paused") && text.contains("see reception"),
        "{text}"
    );
    assert_eq!(status_of(&c, appt["id"].as_str().unwrap()).await, "t");

    // With no wait configured, failures go on counting, and the fifth locks the kiosk: even
    // the right answer is refused, and the lock is audited.
    c.api
        .put(
            "/api/v1/admin/plugins/kiosk/sites/main/config",
            &c.admin,
            &json!({"delay-seconds": 0, "lockout-after": 5}),
            None,
        )
        .await
        .expect(200);
    for _ in 0..2 {
        let r = c.check_in(&card, "1972-09-28").await.expect(200);
        assert_eq!(r.json["checkedIn"], false);
    }
    let r = c.check_in(&card, "1972-09-30").await.expect(429);
    assert!(r.text.contains("see reception"), "{}", r.text);
    assert_eq!(status_of(&c, appt["id"].as_str().unwrap()).await, "t");
    let audit = c.api.audit_all(&c.admin, "actor=kiosk.main").await;
    let refused: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "kiosk.check-in-refused")
        .collect();
    assert_eq!(refused.len(), 5, "{audit:?}");
    assert!(refused.iter().all(|e| e["patient"].is_null()));
    assert_eq!(
        audit
            .iter()
            .filter(|e| e["action"] == "kiosk.lockout")
            .count(),
        1,
        "{audit:?}"
    );
}

#[tokio::test]
async fn the_kiosk_says_check_in_is_unavailable_without_scheduling() {
    let c = clinic().await;
    c.always_available().await;
    let card = hcn(21);
    let p = c
        .api
        .create(&c.reception, &patient("Singh", "Aman", "1968-12-01", &card))
        .await;
    book_now(&c, &id_of(&p)).await;

    // Disabled at the site: the page renders and says so; a check-in gets the same answer.
    c.api.disable(&c.admin, "scheduling", "main").await;
    let page = c.api.get("/plugins/kiosk/", &c.kiosk).await.expect(503);
    assert!(page.text.contains("unavailable"), "{}", page.text);
    assert!(page.text.contains("see reception"), "{}", page.text);
    assert!(!page.text.contains("Health card number"));
    let r = c.check_in(&card, "1968-12-01").await.expect(503);
    assert!(r.text.contains("unavailable"), "{}", r.text);

    // Removed altogether: the same.
    c.api
        .send(
            Method::DELETE,
            "/api/v1/admin/plugins/scheduling",
            Auth::Bearer(&c.admin),
            None,
            &[],
        )
        .await
        .expect(204);
    let page = c.api.get("/plugins/kiosk/", &c.kiosk).await.expect(503);
    assert!(page.text.contains("unavailable"), "{}", page.text);
}

/// A form post as a browser sends it (the bearer token stands in for the session and its
/// CSRF token): the status, the body and where it redirects to.
async fn form(c: &Clinic, token: &str, path: &str, body: &str) -> (u16, String, String) {
    let r = c
        .api
        .client
        .post(format!("{}/plugins/scheduling/{path}", c.api.base))
        .bearer_auth(token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, r.text().await.unwrap(), location)
}

#[tokio::test]
async fn an_appointment_moves_keeping_its_history_and_announces_the_move() {
    let c = clinic().await;
    c.api
        .install_enabled(
            &c.admin,
            &package("tests/plugins/listener"),
            "main",
            &["kv"],
        )
        .await;
    c.always_available().await;
    let p = c
        .api
        .create(
            &c.reception,
            &patient("Moreau", "Lucie", "1968-03-09", &hcn(21)),
        )
        .await;
    let pid = id_of(&p);
    let booked = c
        .book(
            json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "09:00",
                     "minutes": 15, "reason": "follow-up"}),
        )
        .await
        .expect(201);
    let id = booked.json["appointment"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.book(
        json!({"provider": "drlee", "name": "Walk-in Visitor", "date": DAY,
                  "start": "09:30", "minutes": 15}),
    )
    .await
    .expect(201);
    let mv = |body: Value| {
        let path = format!("{SCHED}/appointments/{id}/move");
        let api = c.api.clone();
        let token = c.reception.clone();
        async move { api.post(&path, &token, &body).await }
    };

    // Onto an occupied slot: refused, and nothing moves.
    let r = mv(json!({"date": DAY, "start": "09:35"})).await.expect(409);
    assert!(r.text.contains("overlaps appointment"), "{}", r.text);
    assert_eq!(times(&c.day("drlee", DAY).await), ["09:00", "09:30"]);
    // Bad input: refused, naming the field.
    let r = mv(json!({"date": DAY, "start": "09:07"})).await.expect(400);
    assert!(r.text.contains("start"), "{}", r.text);
    let r = mv(json!({"date": "2030-02-30", "start": "09:00"}))
        .await
        .expect(400);
    assert!(r.text.contains("date"), "{}", r.text);

    // To a free time: the same appointment, with the move in its history.
    let moved = mv(json!({"date": DAY, "start": "10:00"})).await.expect(200);
    assert_eq!(moved.json["appointment"]["id"], id.as_str());
    assert_eq!(moved.json["appointment"]["start"], "10:00");
    assert_eq!(
        moved.json["appointment"]["end"], "10:15",
        "the length is kept"
    );
    assert_eq!(times(&c.day("drlee", DAY).await), ["09:30", "10:00"]);
    // Its old time is free again.
    c.book(
        json!({"provider": "drlee", "name": "Another Visitor", "date": DAY,
                  "start": "09:00", "minutes": 15}),
    )
    .await
    .expect(201);

    // To another day: gone from the first, on the second, in the patient's list.
    let next = "2030-01-08";
    mv(json!({"date": next, "start": "14:00"}))
        .await
        .expect(200);
    assert_eq!(times(&c.day("drlee", DAY).await), ["09:00", "09:30"]);
    assert_eq!(times(&c.day("drlee", next).await), ["14:00"]);
    let a = c
        .api
        .get(&format!("{SCHED}/appointments/{id}"), &c.reception)
        .await
        .expect(200);
    let moves = a.json["moves"].as_array().unwrap();
    assert_eq!(moves.len(), 2, "{}", a.text);
    assert_eq!(moves[0]["from"]["start"], "09:00");
    assert_eq!(moves[0]["to"]["start"], "10:00");
    assert_eq!(moves[1]["from"]["date"], DAY);
    assert_eq!(moves[1]["to"]["date"], next);
    assert_eq!(moves[1]["by"], "reception");
    assert!(moves[1]["at"].as_str().unwrap().len() >= 19);
    assert_eq!(
        a.json["history"].as_array().unwrap().len(),
        1,
        "status kept"
    );
    assert_eq!(a.json["reason"], "follow-up");
    let mine = c
        .api
        .get(
            &format!("{SCHED}/patients/{pid}/appointments"),
            &c.reception,
        )
        .await
        .expect(200);
    let dates: Vec<&str> = mine
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, [next]);

    // The appointment's page shows where it came from, who moved it and the move form.
    let page = c
        .api
        .get(
            &format!("/plugins/scheduling/appointments/{id}"),
            &c.reception,
        )
        .await
        .expect(200);
    assert!(page.text.contains("Moves"), "{}", page.text);
    assert!(
        page.text.contains("2030-01-07 09:00–09:15")
            && page.text.contains("2030-01-08 14:00–14:15"),
        "{}",
        page.text
    );
    assert!(page.text.contains(&format!("href=\"/patients/{pid}\"")));

    // The page's move form: refused onto an occupied slot (shown in the page), else moved.
    c.book(
        json!({"provider": "drlee", "name": "Third Visitor", "date": next,
                  "start": "15:00", "minutes": 30}),
    )
    .await
    .expect(201);
    let (status, text, _) = form(
        &c,
        &c.reception,
        &format!("appointments/{id}/move"),
        &format!("provider=drlee&date={next}&start=15%3A10"),
    )
    .await;
    assert_eq!(status, 409, "{text}");
    assert!(
        text.contains("Not moved") && text.contains("overlaps"),
        "{text}"
    );
    assert_eq!(times(&c.day("drlee", next).await), ["14:00", "15:00"]);
    let (status, text, location) = form(
        &c,
        &c.reception,
        &format!("appointments/{id}/move"),
        &format!("provider=drlee&date={next}&start=16%3A00"),
    )
    .await;
    assert_eq!(status, 303, "{text}");
    assert_eq!(
        location,
        format!("/plugins/scheduling/appointments/{id}?moved=1")
    );

    // A cancelled appointment is not moved.
    c.api
        .post(
            &format!("{SCHED}/appointments/{id}/status"),
            &c.reception,
            &json!({"status": "C"}),
        )
        .await
        .expect(200);
    let r = mv(json!({"date": next, "start": "17:00"}))
        .await
        .expect(409);
    assert!(r.text.contains("cancelled"), "{}", r.text);

    // Each move was announced, for the receptionist, with where it was before.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let moves = loop {
        let r = c
            .api
            .get("/plugins/listener/events", &c.reception)
            .await
            .expect(200);
        let got: Vec<Value> = r.json["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["topic"] == "scheduling.appointment.rescheduled")
            .collect();
        if got.len() >= 3 {
            break got;
        }
        assert!(std::time::Instant::now() < until, "{got:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(moves.len(), 3, "{moves:?}");
    let first = &moves[0];
    assert_eq!(first["servedBy"], "reception");
    assert_eq!(first["payload"]["appointment"], id.as_str());
    assert_eq!(first["payload"]["patient"], pid.as_str());
    assert_eq!(first["payload"]["start"], "10:00");
    assert_eq!(first["payload"]["previous"]["start"], "09:00");
    assert_eq!(first["payload"]["previous"]["date"], DAY);
    assert_eq!(moves[2]["payload"]["start"], "16:00");
    assert!(
        !first.to_string().contains("follow-up"),
        "no reason in events"
    );
}

#[tokio::test]
async fn the_appointment_book_grid_week_and_patient_search() {
    let c = clinic().await;
    let p = c
        .api
        .create(
            &c.reception,
            &patient("Lindqvist", "Tove", "1990-06-14", &hcn(22)),
        )
        .await;
    let pid = id_of(&p);
    // Monday 09:00-10:00 in 20-minute template slots; Tuesday 09:00-09:30 without one.
    c.put(
        "/availability/drlee",
        json!({"days": {"1": [{"start": "09:00", "end": "10:00"}],
                        "2": [{"start": "09:00", "end": "09:30"}]}}),
    )
    .await
    .expect(200);
    c.put("/codes/2", json!({"name": "Twenty", "minutes": 20}))
        .await
        .expect(200);
    c.put(
        "/templates/drlee/mon",
        json!({"start": "09:00", "slots": "222"}),
    )
    .await
    .expect(200);
    c.book(
        json!({"provider": "drlee", "patient": pid, "date": DAY, "start": "09:20",
                  "minutes": 20, "reason": "rash"}),
    )
    .await
    .expect(201);

    let grid = c
        .api
        .get(&format!("/plugins/scheduling/?date={DAY}"), &c.reception)
        .await
        .expect(200);
    let g = &grid.text;
    // Rows are the template's slots; the booked one links the patient to the chart.
    for t in ["09:00", "09:20", "09:40"] {
        assert!(
            g.contains(&format!("<th class=\"time\" scope=\"row\">{t}</th>")),
            "{t}: {g}"
        );
    }
    assert!(!g.contains("scope=\"row\">09:15<"), "20-minute slots: {g}");
    assert!(g.contains(&format!("href=\"/patients/{pid}\"")), "{g}");
    assert!(g.contains("Lindqvist, Tove") && g.contains("rash"), "{g}");
    // Free slots link to the booking form, prefilled.
    assert!(
        g.contains(&format!(
            "/plugins/scheduling/book?provider=drlee&amp;date={DAY}&amp;start=09:40&amp;minutes=20"
        )),
        "{g}"
    );
    // Previous and next day, today, the date picker and the week.
    assert!(
        g.contains("?date=2030-01-06") && g.contains("?date=2030-01-08"),
        "{g}"
    );
    assert!(
        g.contains("<input type=\"date\" id=\"date\" name=\"date\""),
        "{g}"
    );
    assert!(
        g.contains(&format!("week?provider=drlee&amp;date={DAY}")),
        "{g}"
    );

    // The week: Monday's template slots and Tuesday's hours in 15-minute slots.
    let week = c
        .api
        .get(
            "/plugins/scheduling/week?provider=drlee&date=2030-01-09",
            &c.reception,
        )
        .await
        .expect(200);
    let w = &week.text;
    for d in ["Mon 7 Jan", "Tue 8 Jan", "Sun 13 Jan"] {
        assert!(w.contains(d), "{d}: {w}");
    }
    assert!(
        w.contains("scope=\"row\">09:15<"),
        "Tuesday's 15-minute slots: {w}"
    );
    assert!(
        w.contains("date=2030-01-08&amp;start=09:15&amp;minutes=15"),
        "{w}"
    );
    assert!(w.contains("Lindqvist, Tove"), "{w}");

    // The booking form finds the patient by name and by chart number and offers to choose.
    let chart = p["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["system"] == "urn:osler:chart-number")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    for q in ["lindq", chart.as_str()] {
        let page = c
            .api
            .get(
                &format!("/plugins/scheduling/book?provider=drlee&date={DAY}&start=09:40&minutes=20&q={q}"),
                &c.reception,
            )
            .await
            .expect(200);
        assert!(page.text.contains("Lindqvist, Tove"), "{q}: {}", page.text);
        assert!(
            page.text.contains(&format!("patient={pid}")),
            "{q}: {}",
            page.text
        );
    }
    let chosen = c
        .api
        .get(
            &format!("/plugins/scheduling/book?provider=drlee&date={DAY}&start=09:40&minutes=20&patient={pid}"),
            &c.reception,
        )
        .await
        .expect(200);
    assert!(chosen.text.contains("Booking for"), "{}", chosen.text);
    assert!(
        chosen
            .text
            .contains(&format!("name=\"patient\" value=\"{pid}\"")),
        "{}",
        chosen.text
    );
    assert!(chosen.text.contains("value=\"09:40\""), "{}", chosen.text);

    // The day sheet links each patient to the chart.
    let sheet = c
        .api
        .get(
            &format!("/plugins/scheduling/day?provider=drlee&date={DAY}"),
            &c.reception,
        )
        .await
        .expect(200);
    assert!(
        sheet.text.contains(&format!("href=\"/patients/{pid}\"")),
        "{}",
        sheet.text
    );

    // A holiday closes the day on the grid.
    c.put("/holidays/2030-01-08", json!({"name": "Staff training"}))
        .await
        .expect(200);
    let grid = c
        .api
        .get("/plugins/scheduling/?date=2030-01-08", &c.reception)
        .await
        .expect(200);
    assert!(
        grid.text.contains("Clinic holiday: Staff training"),
        "{}",
        grid.text
    );
    assert!(!grid.text.contains("class=\"slot-free\""), "{}", grid.text);
}

#[tokio::test]
async fn hours_templates_codes_types_and_holidays_are_set_in_forms() {
    let c = clinic().await;
    let weekly = || async {
        c.api
            .get(&format!("{SCHED}/availability/drlee"), &c.reception)
            .await
            .expect(200)
            .json
    };

    // Hours: bad input is shown in the page, with what was typed, and nothing is saved.
    let (status, text, _) = form(
        &c,
        &c.reception,
        "setup/hours",
        "provider=drlee&d1=09%3A00-12%3A00&d2=9+to+5&d3=&d4=&d5=&d6=&d7=",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Nothing was saved"), "{text}");
    assert!(text.contains("Tuesday: \"9 to 5\""), "{text}");
    assert!(
        text.contains("value=\"9 to 5\""),
        "what was typed is kept: {text}"
    );
    assert_eq!(weekly().await, json!({"days": {}}));
    let (status, text, _) = form(
        &c,
        &c.reception,
        "setup/hours",
        "provider=drlee&d1=13%3A00-17%3A00%2C+09%3A00-12%3A00&d2=12%3A00-09%3A00",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("before the end"), "{text}");
    assert_eq!(weekly().await, json!({"days": {}}));
    // Good input: saved, and the page says so.
    let (status, _, location) = form(
        &c,
        &c.reception,
        "setup/hours",
        "provider=drlee&d1=09%3A00-12%3A00%2C+13%3A00-17%3A00&d3=08%3A00-12%3A00",
    )
    .await;
    assert_eq!(status, 303);
    let w = weekly().await;
    assert_eq!(w["days"]["1"][1], json!({"start": "13:00", "end": "17:00"}));
    assert_eq!(w["days"]["3"][0], json!({"start": "08:00", "end": "12:00"}));
    assert!(w["days"].get("2").is_none());
    let page = c.api.get(&location, &c.reception).await.expect(200);
    assert!(page.text.contains("Hours saved"), "{}", page.text);
    assert!(
        page.text.contains("value=\"09:00-12:00, 13:00-17:00\""),
        "{}",
        page.text
    );
    // A nurse may read the set-up but not change it.
    let nurse = c.api.login(demo::NURSE.0, demo::NURSE.1).await;
    let (status, _, _) = form(&c, &nurse, "setup/hours", "provider=drlee&d1=").await;
    assert_eq!(status, 403);
    assert_eq!(weekly().await, w);
    // Every form carries the session's CSRF token.
    let page = c
        .api
        .get("/plugins/scheduling/setup/hours", &c.reception)
        .await
        .expect(200);
    assert!(page.text.contains("name=\"_csrf\""), "{}", page.text);

    // Slot codes and types.
    let (status, text, _) = form(
        &c,
        &c.reception,
        "setup/codes",
        "code=1&name=Regular&minutes=7&colour=%23dfe9f5&limit=&limit_type=warn",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("minutes: a multiple of 5"), "{text}");
    let codes = c
        .api
        .get(&format!("{SCHED}/codes"), &c.reception)
        .await
        .expect(200);
    assert_eq!(codes.json, json!([]));
    let (status, _, _) = form(
        &c,
        &c.reception,
        "setup/codes",
        "code=1&name=Regular&minutes=15&colour=%23DFE9F5&limit=8&limit_type=block",
    )
    .await;
    assert_eq!(status, 303);
    let codes = c
        .api
        .get(&format!("{SCHED}/codes"), &c.reception)
        .await
        .expect(200);
    assert_eq!(codes.json[0]["minutes"], 15);
    assert_eq!(codes.json[0]["limitPerDay"], 8);
    assert_eq!(codes.json[0]["limitType"], "block");
    let (status, text, _) =
        form(&c, &c.reception, "setup/types", "name=Physical&minutes=abc").await;
    assert_eq!(status, 400);
    assert!(
        text.contains("minutes: \"abc\" is not a whole number"),
        "{text}"
    );
    let (status, _, _) = form(&c, &c.reception, "setup/types", "name=Physical&minutes=30").await;
    assert_eq!(status, 303);
    let types = c
        .api
        .get(&format!("{SCHED}/types"), &c.reception)
        .await
        .expect(200);
    assert_eq!(types.json, json!([{"name": "Physical", "minutes": 30}]));

    // Templates: an unknown code is refused; one code repeated until a time lays out a day.
    let template = || async {
        c.api
            .get(&format!("{SCHED}/templates/drlee/mon"), &c.reception)
            .await
    };
    let (status, text, _) = form(
        &c,
        &c.reception,
        "setup/templates",
        "provider=drlee&day=mon&date=&start=09%3A00&slots=1X&until=",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("no slot code 'X'"), "{text}");
    assert!(text.contains("value=\"1X\""), "{text}");
    template().await.expect(404);
    let (status, _, _) = form(
        &c,
        &c.reception,
        "setup/templates",
        "provider=drlee&day=mon&date=&start=09%3A00&slots=1&until=12%3A00",
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        template().await.expect(200).json,
        json!({"start": "09:00", "slots": "111111111111"})
    );
    let page = c
        .api
        .get(
            "/plugins/scheduling/setup/templates?provider=drlee",
            &c.reception,
        )
        .await
        .expect(200);
    assert!(
        page.text.contains("09:00–12:00: 12 × Regular"),
        "{}",
        page.text
    );
    let (status, _, _) = form(
        &c,
        &c.reception,
        "setup/templates/delete",
        "provider=drlee&day=mon",
    )
    .await;
    assert_eq!(status, 303);
    template().await.expect(404);

    // Holidays: a bad date is refused; a holiday is listed and stops bookings that day.
    let (status, text, _) = form(
        &c,
        &c.reception,
        "setup/holidays",
        "date=2030-13-01&name=Nope",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        text.contains("date: \"2030-13-01\" is not a date"),
        "{text}"
    );
    let (status, text, _) = form(
        &c,
        &c.reception,
        "setup/holidays",
        &format!("date={DAY}&name="),
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("name: must not be empty"), "{text}");
    let list = c
        .api
        .get(&format!("{SCHED}/holidays"), &c.reception)
        .await
        .expect(200);
    assert_eq!(list.json, json!([]));
    let (status, _, _) = form(
        &c,
        &c.reception,
        "setup/holidays",
        &format!("date={DAY}&name=Winter+closure"),
    )
    .await;
    assert_eq!(status, 303);
    let r = c
        .book(
            json!({"provider": "drlee", "name": "Someone", "date": DAY, "start": "09:00",
                     "minutes": 15}),
        )
        .await
        .expect(409);
    assert!(r.text.contains("Winter closure"), "{}", r.text);
    let (status, _, _) = form(
        &c,
        &c.reception,
        "setup/holidays/delete",
        &format!("date={DAY}"),
    )
    .await;
    assert_eq!(status, 303);
    c.book(
        json!({"provider": "drlee", "name": "Someone", "date": DAY, "start": "09:00",
                  "minutes": 15}),
    )
    .await
    .expect(201);
}
