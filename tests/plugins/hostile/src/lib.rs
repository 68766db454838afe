//! Test fixture: a plugin that misbehaves on request, for the host's end-to-end tests of
//! sandbox limits, capability checks and error mapping.
//!
//! | route | does |
//! |---|---|
//! | `GET /ok` | `{"ok":true}` |
//! | `GET /spin` | loops forever |
//! | `GET /bomb` | allocates and touches memory until allocation fails |
//! | `GET /recurse` | recurses until the stack runs out |
//! | `GET /panic` | panics |
//! | `GET /huge?mib=N` | answers with a body of N MiB |
//! | `PUT /kv/{*key}` | stores the body at `key` |
//! | `GET /kv/{*key}` | the bytes at `key`, or 404 |
//! | `GET /kv?prefix=P` | every key under `P` it can see, paging through `scan` |
//! | `GET /patient/{id}` | `patients-read.get`: the FHIR JSON, or the mapped error |
//! | `GET /outbound?url=U` | an outbound `GET U`: `{"status":..}`, or the mapped error |
//! | `GET /audit` | records the audit event `hostile.test` with no patient |
//! | `GET /counter` | increments a static counter: always 1 in a fresh sandbox |
//! | `GET /deidentified` | the first page of de-identified patients |
//! | `GET /match?number=N&version=V&birth=B` | `patients-match`: `{"id": …}` or `{"id": null}` |
//! | `GET /staff` | the site's staff from `directory` |
//! | `GET /clock` | `clock.now()` |
//! | `GET /page` | an HTML page that tries to leave the host's frame (scripts, `<base>`, a refresh, an early `</template>`, a style aimed at the patient banner) |
//! | `GET /page?as=bare` | a bare HTML document (`osler-frame: bare`) |
//! | `GET /page?as=patient&id=P` | a page about patient `P` (`osler-patient`) |

use std::hint::black_box;

use std::sync::atomic::{AtomicU32, Ordering};

use osler_sdk::{
    Error, Params, Plugin, Request, Response, Router, audit, clock, directory, html, http, kv,
    patients,
};
use serde::Deserialize;
use serde_json::json;

struct Hostile;

impl Plugin for Hostile {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/page", page)
            .get("/ok", |_, _| {
                Ok(Response::json(200, &json!({ "ok": true })))
            })
            .get("/spin", |_, _| spin())
            .get("/bomb", |_, _| bomb())
            .get("/recurse", |_, _| {
                let depth = recurse(0);
                Ok(Response::json(200, &json!({ "depth": depth })))
            })
            .get("/panic", |_, _| {
                panic!("the hostile fixture panics on request")
            })
            .get("/huge", huge)
            .put("/kv/{*key}", kv_put)
            .get("/kv/{*key}", kv_get)
            .get("/kv", kv_list)
            .get("/counter", |_, _| {
                static COUNT: AtomicU32 = AtomicU32::new(0);
                let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(Response::json(200, &json!({ "count": n })))
            })
            .get("/deidentified", |_, _| {
                let page = patients::deidentified::list(None, 5)?;
                Ok(Response::json(200, &json!({ "patients": page.patients })))
            })
            .get("/match", |req, _| {
                let q = |k: &str| req.query_param(k).unwrap_or_default();
                let id = patients::find_by_health_card(&q("number"), &q("version"), &q("birth"))?;
                Ok(Response::json(200, &json!({ "id": id })))
            })
            .get("/staff", |_, _| {
                let staff: Vec<_> = directory::staff()?
                    .into_iter()
                    .map(|p| json!({ "user": p.user, "name": p.display_name, "roles": p.roles }))
                    .collect();
                Ok(Response::json(200, &json!({ "staff": staff })))
            })
            .get("/clock", |_, _| {
                let now = clock::now();
                Ok(Response::json(
                    200,
                    &json!({
                        "epochMillis": now.epoch_millis,
                        "timezone": now.timezone,
                        "local": now.local,
                        "offsetMinutes": now.utc_offset_minutes,
                    }),
                ))
            })
            .get("/patient/{id}", patient)
            .get("/outbound", outbound)
            .get("/audit", |_, _| {
                audit::record("hostile.test", None, None)?;
                Ok(Response::json(200, &json!({ "ok": true })))
            })
            .handle(&req)
    }
}

osler_sdk::export_plugin!(Hostile);

/// Never returns: `black_box` makes every iteration observable, so the loop stays.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Allocates 1 MiB at a time, writing to every page so that the memory is really used, and
/// keeps it all, until allocation fails (which aborts).
fn bomb() -> ! {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        for i in (0..chunk.len()).step_by(4096) {
            chunk[i] = (i as u8) | 1;
        }
        kept.push(black_box(chunk));
    }
}

/// Recurses without end: each frame keeps a buffer alive across the call and uses it after
/// the call returns, so this is not a tail call the optimiser could turn into a loop.
#[inline(never)]
#[allow(unconditional_recursion, reason = "the point of the route")]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[(depth % 512) as usize] = depth as u8;
    let frame = black_box(frame);
    let below = recurse(black_box(depth + 1));
    below.wrapping_add(frame[(depth % 512) as usize] as u64)
}

/// `GET /huge?mib=N`: a body of N MiB of `x`.
fn huge(req: &Request, _: &Params) -> Result<Response, Error> {
    #[derive(Deserialize)]
    struct Q {
        mib: usize,
    }
    let q: Q = req.query()?;
    let body = vec![
        b'x';
        q.mib
            .checked_mul(1 << 20)
            .ok_or_else(|| Error::invalid("mib: too big"))?
    ];
    Ok(Response::new(200, "application/octet-stream", body))
}

fn kv_put(req: &Request, p: &Params) -> Result<Response, Error> {
    kv::put_bytes(&p["key"], &req.body)?;
    Ok(Response::empty(204))
}

fn kv_get(_: &Request, p: &Params) -> Result<Response, Error> {
    match kv::get_bytes(&p["key"])? {
        Some(value) => Ok(Response::new(200, "application/octet-stream", value)),
        None => Err(Error::not_found(format!("no key {:?}", &p["key"]))),
    }
}

/// `GET /kv?prefix=P`: every key under `P`, a small page at a time so that paging is used.
fn kv_list(req: &Request, _: &Params) -> Result<Response, Error> {
    let prefix = req.query_param("prefix").unwrap_or_default();
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = kv::scan_bytes(&prefix, after.as_deref(), 100)?;
        keys.extend(page.entries.into_iter().map(|(key, _)| key));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(Response::json(200, &keys))
}

/// The chart, or (`?then=spin|panic`) the chart read and then no answer at all: a plugin
/// hoping that a read whose call never answers never reaches the audit trail.
fn patient(req: &Request, p: &Params) -> Result<Response, Error> {
    let record = patients::get(&p["id"])?;
    match req.query_param("then").as_deref() {
        Some("spin") => spin(),
        Some("panic") => panic!("after reading a chart"),
        _ => Ok(Response::json(200, &record)),
    }
}

fn outbound(req: &Request, _: &Params) -> Result<Response, Error> {
    let url = req
        .query_param("url")
        .ok_or_else(|| Error::invalid("url: required"))?;
    let answer = http::get(&url)?;
    Ok(Response::json(200, &json!({ "status": answer.status })))
}

/// Markup that would, in a naive frame, run scripts, move the page, restyle the shell or
/// leave the plugin's shadow root.
const ESCAPE: &str = r#"<!doctype html><html><head><title>Escape attempt</title>
<base href="https://evil.example/"><meta http-equiv="refresh" content="0;url=https://evil.example/">
<style>.patient-banner,header{display:none}</style><script>alert(1)</script></head>
<body><header>fake header</header><main><p id="inside">inside</p></template><div id="escaped">after an end tag</div>
<p title="</template><div id=escaped2>">in an attribute</p><script>alert(2)</script>
<noscript><p title="</noscript></template><div id=escaped3>">x</p></noscript>
<iframe src="https://evil.example/"></iframe></main></body></html>"#;

fn page(req: &Request, _: &Params) -> Result<Response, Error> {
    Ok(match req.query_param("as").as_deref() {
        Some("bare") => Response::html(
            200,
            "<!doctype html><title>Bare</title><p id=\"standalone\">standalone</p>".into(),
        )
        .with_header("osler-frame", "bare"),
        Some("patient") => Response::html(200, html::page("About a patient", "<p>notes</p>"))
            .with_header("osler-patient", &req.query_param("id").unwrap_or_default()),
        _ => Response::html(200, ESCAPE.into()),
    })
}
