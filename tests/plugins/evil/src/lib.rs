//! Test fixture (API 0.2): a plugin that tries, on request, each of issue 11's attacks, so
//! that the host's end-to-end tests can show each one fails.
//!
//! | route | tries |
//! |---|---|
//! | `GET /ok` | nothing: `{"ok":true}` |
//! | `GET /whoami` | `context.current()` and `context.via()` |
//! | `POST /harvest` | publishes `evil.harvest`; its handler reads every patient it can into kv |
//! | `GET /harvested` | what the handler managed to read |
//! | `POST /storm` | publishes `evil.storm`; each handler publishes two more |
//! | `GET /csrf` | a page with the CSRF token this plugin was given |
//! | `GET /headers` | answers with forbidden headers (other origins, CORS, cookies, caching) |
//! | `POST /fill?size=N&count=K` | writes K values of N bytes in one batch |
//! | `POST /fill-bytes?size=N&count=K` | K separate writes of N bytes, until refused |
//! | `GET /scan?prefix=P` | scans everything under P a page at a time; counts pages |
//! | `GET /usage` | `kv.usage()` |
//! | `GET /spin?ms=N` | burns CPU for N ms |
//! | `GET /wait?url=U` | waits for a (slow) server at U, holding its instance meanwhile |
//! | `POST /audit-flood?patient=P&n=N` | N audit entries naming patient P |
//! | `PUT /pd/{patient}/{key}` / `GET /pd/{patient}/{key}` | patient-data |
//! | `GET /match?number=&version=&birth=` | patients-match |
//! | chart panel `notes` | the patient's notes from patient-data |

use std::hint::black_box;

use osler_sdk::context::{self, Principal};
use osler_sdk::{
    Error, Event, Params, Plugin, Request, Response, Router, audit, clock, events, html, http, kv,
    patient_data, patients,
};
use serde_json::json;

struct Evil;

impl Plugin for Evil {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/ok", |_, _| Ok(Response::json(200, &json!({ "ok": true }))))
            .get("/whoami", |_, _| {
                let who = match context::current() {
                    Principal::Person(c) => json!({ "person": c.user, "site": c.site }),
                    Principal::Unattended(u) => json!({ "unattended": u.what, "site": u.site }),
                };
                Ok(Response::json(200, &json!({ "who": who, "via": context::via() })))
            })
            .post("/harvest", |_, _| {
                let id = events::publish("evil.harvest", &json!({}))?;
                Ok(Response::json(202, &json!({ "event": id })))
            })
            .get("/harvested", |_, _| {
                let got: Option<serde_json::Value> = kv::get("harvest")?;
                Ok(Response::json(200, &got.unwrap_or(json!(null))))
            })
            .post("/storm", |_, _| {
                let id = events::publish("evil.storm", &json!({ "n": 0 }))?;
                Ok(Response::json(202, &json!({ "event": id })))
            })
            .get("/storms", |_, _| {
                let n: u64 = kv::get("storms")?.unwrap_or(0);
                Ok(Response::json(200, &json!({ "handled": n })))
            })
            .get("/csrf", |req, _| {
                Ok(Response::html(
                    200,
                    html::page(
                        "csrf",
                        &format!(
                            "<p id=\"token\">{}</p>{}",
                            html::escape(&req.caller().csrf_token),
                            html::csrf_field(req.caller())
                        ),
                    ),
                ))
            })
            .get("/headers", |_, _| {
                Ok(Response::json(200, &json!({ "ok": true }))
                    .with_header("location", "https://evil.example/phish")
                    .with_header("refresh", "0; url=https://evil.example/")
                    .with_header("access-control-allow-origin", "https://evil.example")
                    .with_header("access-control-allow-credentials", "true")
                    .with_header("clear-site-data", "\"cookies\"")
                    .with_header("cache-control", "public, max-age=31536000")
                    .with_header("set-cookie", "osler_session=stolen; Path=/")
                    .with_header("content-disposition", "attachment; filename=\"ok.json\""))
            })
            .get("/redirect", |req, _| {
                let to = req.query_param("to").unwrap_or_else(|| "/".into());
                Ok(Response::redirect_see_other(&to))
            })
            .post("/fill", fill)
            .post("/fill-bytes", fill_bytes)
            .get("/scan", scan)
            .get("/usage", |_, _| {
                let u = kv::usage()?;
                Ok(Response::json(
                    200,
                    &json!({ "bytes": u.bytes, "keys": u.keys, "maxBytes": u.max_bytes, "maxKeys": u.max_keys }),
                ))
            })
            .get("/spin", |req, _| {
                let ms: i64 = req
                    .query_param("ms")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(100);
                let until = clock::now().epoch_millis + ms;
                let mut n: u64 = 0;
                while clock::now().epoch_millis < until {
                    for _ in 0..10_000 {
                        n = black_box(n.wrapping_add(1));
                    }
                }
                Ok(Response::json(200, &json!({ "spun": n })))
            })
            .get("/wait", |req, _| {
                let url = req
                    .query_param("url")
                    .ok_or_else(|| Error::invalid("url: required"))?;
                let answer = http::get(&url)?;
                Ok(Response::json(200, &json!({ "status": answer.status })))
            })
            .post("/audit-flood", |req, _| {
                let patient = req.query_param("patient");
                let n: u32 = req
                    .query_param("n")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(1000);
                let detail = "x".repeat(4000);
                let mut written = 0;
                let mut refused = None;
                for _ in 0..n {
                    match audit::record("flood", patient.as_deref(), Some(&detail)) {
                        Ok(()) => written += 1,
                        Err(e) => {
                            refused = Some(json!({ "code": e.code(), "message": e.to_string() }));
                            break;
                        }
                    }
                }
                Ok(Response::json(200, &json!({ "written": written, "refused": refused })))
            })
            .put("/pd/{patient}/{key}", |req, p| {
                patient_data::put(&p["patient"], &p["key"], &req.text()?.to_string())?;
                Ok(Response::empty(204))
            })
            .get("/pd/{patient}/{key}", |_, p| {
                match patient_data::get::<String>(&p["patient"], &p["key"])? {
                    Some(v) => Ok(Response::json(200, &v)),
                    None => Err(Error::not_found("no such key")),
                }
            })
            .get("/match", |req, _| {
                let q = |k: &str| req.query_param(k).unwrap_or_default();
                let id = patients::find_by_health_card(&q("number"), &q("version"), &q("birth"))?;
                Ok(Response::json(200, &json!({ "id": id })))
            })
            .handle(&req)
    }

    fn on_event(event: Event) -> Result<(), Error> {
        match event.topic.as_str() {
            // Read every patient the host lets it, and keep them where the requester can
            // read them back.
            "evil.harvest" => {
                let found = match patients::search(&patients::Search {
                    count: Some(100),
                    ..Default::default()
                }) {
                    Ok(page) => json!({ "read": page.patients.len() }),
                    Err(e) => json!({ "error": e.code(), "message": e.to_string() }),
                };
                let who = match context::current() {
                    Principal::Person(c) => c.user,
                    Principal::Unattended(u) => format!("unattended: {}", u.what),
                };
                kv::put(
                    "harvest",
                    &json!({ "found": found, "as": who, "via": context::via() }),
                )
            }
            // Each storm event publishes two more; count how many were handled.
            "evil.storm" => {
                let n: u64 = kv::get("storms")?.unwrap_or(0);
                kv::put("storms", &(n + 1))?;
                let _ = events::publish("evil.storm", &json!({ "n": n + 1 }));
                let _ = events::publish("evil.storm", &json!({ "n": n + 1 }));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn render_panel(panel: &str, patient: &str) -> Result<String, Error> {
        if panel != "notes" {
            return Err(Error::not_found(format!("no panel '{panel}'")));
        }
        let note: Option<String> = patient_data::get(patient, "note")?;
        Ok(format!(
            "<p class=\"evil-notes\">{}</p>",
            html::escape(note.as_deref().unwrap_or("no notes"))
        ))
    }
}

osler_sdk::export_plugin!(Evil);

fn num(req: &Request, k: &str, default: usize) -> usize {
    req.query_param(k)
        .and_then(|m| m.parse().ok())
        .unwrap_or(default)
}

/// `POST /fill?size=N&count=K`: K values of N bytes in one batch.
fn fill(req: &Request, _: &Params) -> Result<Response, Error> {
    let (size, count) = (num(req, "size", 1024), num(req, "count", 1));
    let prefix = req.query_param("prefix").unwrap_or_else(|| "fill/".into());
    let mut b = kv::Batch::new();
    for i in 0..count {
        b = b.put_bytes(&format!("{prefix}{i:06}"), vec![b'x'; size]);
    }
    b.commit()?;
    Ok(Response::json(200, &json!({ "written": count })))
}

/// `POST /fill-bytes?size=N&count=K`: K separate writes of N bytes, until one is refused.
fn fill_bytes(req: &Request, _: &Params) -> Result<Response, Error> {
    let (size, count) = (num(req, "size", 1024), num(req, "count", 1));
    let prefix = req.query_param("prefix").unwrap_or_else(|| "many/".into());
    let mut written = 0;
    for i in 0..count {
        match kv::put_bytes(&format!("{prefix}{i:06}"), &vec![b'y'; size]) {
            Ok(()) => written += 1,
            Err(e) => {
                return Ok(Response::json(
                    200,
                    &json!({ "written": written, "refused": { "code": e.code(), "message": e.to_string() } }),
                ));
            }
        }
    }
    Ok(Response::json(200, &json!({ "written": written })))
}

/// `GET /scan?prefix=P`: everything under P, a page of up to 1000 at a time.
fn scan(req: &Request, _: &Params) -> Result<Response, Error> {
    let prefix = req.query_param("prefix").unwrap_or_default();
    let (mut pages, mut entries, mut biggest_page) = (0, 0, 0usize);
    let mut after: Option<String> = None;
    loop {
        let page = kv::scan_bytes(&prefix, after.as_deref(), kv::MAX_PAGE)?;
        pages += 1;
        entries += page.entries.len();
        biggest_page = biggest_page.max(page.entries.iter().map(|(k, v)| k.len() + v.len()).sum());
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(Response::json(
        200,
        &json!({ "pages": pages, "entries": entries, "biggestPage": biggest_page }),
    ))
}
