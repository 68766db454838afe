//! Soak benchmark: the real `osler serve` under a clinic's mixed load from 64 clients for ten
//! minutes, to show that its memory stays bounded. Run with
//! `cargo bench -p osler-host --bench soak`. It prints:
//!
//! 1. the server's resident memory (RSS) every 10 seconds;
//! 2. requests per second and p50/p99 latency for each minute;
//! 3. the resident memory once the load stops and the server has been idle a while.
//!
//! The load, per client, in a loop: read a chart (30%), search by name prefix (25%), register a
//! patient (15%), update a chart read just before (10%), list a plugin's notices (7%) or post
//! one and take it down (3%) when the notices plugin can be built, query the audit trail by patient (8%), sign
//! in (2%; argon2).
//!
//! | variable                      | default | meaning                                   |
//! |-------------------------------|---------|-------------------------------------------|
//! | `OSLER_BENCH_SECONDS`         | 600     | duration of the load                      |
//! | `OSLER_BENCH_CLIENTS`         | 64      | concurrent clients                        |
//! | `OSLER_BENCH_PATIENTS`        | 5000    | patients registered before the load       |
//! | `OSLER_BENCH_IDLE_SECONDS`    | 60      | idle time before the last RSS reading     |
//!
//! The clients run in this process, on the same cores as the server.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{env_num, percentile, rss_mib};
use osler_host::access::Role;
use osler_host::plugins::manifest::Capability;
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Op {
    Read,
    Search,
    Create,
    Update,
    PluginList,
    PluginPost,
    Audit,
    Login,
}

struct Shared {
    client: reqwest::Client,
    base: String,
    doc: String,
    boss: String,
    ids: Mutex<Vec<String>>,
    next_card: AtomicU64,
    plugin: bool,
}

/// A health card number no registered patient has (the set-up used the first ones).
fn card(i: u64) -> String {
    osler_host::demo::health_card(10_000_000 + i)
}

const PREFIXES: &[&str] = &[
    "ma", "jo", "le", "no", "tr", "ga", "sm", "li", "an", "be", "ch", "ro",
];

/// One request of the mix; its status.
async fn one(s: &Shared, op: Op, r: u64) -> reqwest::StatusCode {
    let pick = |ids: &Mutex<Vec<String>>| {
        let ids = ids.lock().unwrap();
        ids[(r as usize / 7) % ids.len()].clone()
    };
    let c = &s.client;
    let send = |rb: reqwest::RequestBuilder| async move {
        let res = rb.send().await.expect("request");
        let status = res.status();
        let body = res.bytes().await.expect("body");
        (status, body)
    };
    match op {
        Op::Read => {
            let id = pick(&s.ids);
            send(
                c.get(format!("{}/api/v1/patients/{id}", s.base))
                    .bearer_auth(&s.doc),
            )
            .await
            .0
        }
        Op::Search => {
            let p = PREFIXES[r as usize % PREFIXES.len()];
            send(
                c.get(format!("{}/api/v1/patients?name={p}&_count=20", s.base))
                    .bearer_auth(&s.doc),
            )
            .await
            .0
        }
        Op::Create => {
            let n = s.next_card.fetch_add(1, Ordering::Relaxed);
            let body = json!({
                "resourceType": "Patient",
                "identifier": [{"system": osler_host::patients::fhir::ON_HCN_SYSTEM, "value": card(n)}],
                "name": [{"family": format!("Soak{}", PREFIXES[n as usize % PREFIXES.len()]), "given": ["Ann"]}],
                "birthDate": "1970-01-01",
            });
            let (status, bytes) = send(
                c.post(format!("{}/api/v1/patients", s.base))
                    .bearer_auth(&s.doc)
                    .json(&body),
            )
            .await;
            if status.is_success()
                && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
                && let Some(id) = v["id"].as_str()
            {
                s.ids.lock().unwrap().push(id.to_string());
            }
            status
        }
        Op::Update => {
            let id = pick(&s.ids);
            let (status, bytes) = send(
                c.get(format!("{}/api/v1/patients/{id}", s.base))
                    .bearer_auth(&s.doc),
            )
            .await;
            if !status.is_success() {
                return status;
            }
            let mut p: Value = serde_json::from_slice(&bytes).expect("a patient");
            let version = p["meta"]["versionId"].as_str().unwrap_or("1").to_string();
            p["gender"] = json!(if r.is_multiple_of(2) {
                "female"
            } else {
                "male"
            });
            let status = send(
                c.put(format!("{}/api/v1/patients/{id}", s.base))
                    .bearer_auth(&s.doc)
                    .header("if-match", format!("W/\"{version}\""))
                    .json(&p),
            )
            .await
            .0;
            // Two clients updating one chart at once: one of them is told it is stale.
            if status == reqwest::StatusCode::CONFLICT {
                reqwest::StatusCode::OK
            } else {
                status
            }
        }
        Op::PluginList => {
            send(
                c.get(format!("{}/plugins/notices/api/notices", s.base))
                    .bearer_auth(&s.doc),
            )
            .await
            .0
        }
        Op::PluginPost => {
            // Post a notice and take it down again, so the board never fills up.
            let (status, bytes) = send(
                c.post(format!("{}/plugins/notices/api/notices", s.base))
                    .bearer_auth(&s.doc)
                    .json(&json!({"title": format!("Soak {r}"), "body": "A notice of the soak."})),
            )
            .await;
            if status == reqwest::StatusCode::CONFLICT {
                // Two posts at the same moment: one of them is asked to try again.
                return reqwest::StatusCode::OK;
            }
            let Some(id) = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
            else {
                return status;
            };
            send(
                c.delete(format!("{}/plugins/notices/api/notices/{id}", s.base))
                    .bearer_auth(&s.doc),
            )
            .await
            .0
        }
        Op::Audit => {
            let id = pick(&s.ids);
            send(
                c.get(format!("{}/api/v1/audit?patient={id}&_count=20", s.base))
                    .bearer_auth(&s.boss),
            )
            .await
            .0
        }
        Op::Login => {
            send(
                c.post(format!("{}/api/v1/auth/login", s.base))
                    .json(&json!({"username": "soak.doc", "password": common::PASSWORD})),
            )
            .await
            .0
        }
    }
}

fn choose(r: u64, plugin: bool) -> Op {
    let x = r % 100;
    let op = match x {
        0..30 => Op::Read,
        30..55 => Op::Search,
        55..70 => Op::Create,
        70..80 => Op::Update,
        80..87 => Op::PluginList,
        87..90 => Op::PluginPost,
        90..98 => Op::Audit,
        _ => Op::Login,
    };
    match op {
        Op::PluginList | Op::PluginPost if !plugin => Op::Read,
        op => op,
    }
}

fn main() -> anyhow::Result<()> {
    let secs = env_num("OSLER_BENCH_SECONDS", 600.0);
    let clients = env_num("OSLER_BENCH_CLIENTS", 64.0) as usize;
    let patients = env_num("OSLER_BENCH_PATIENTS", 5000.0) as usize;
    let idle = env_num("OSLER_BENCH_IDLE_SECONDS", 60.0);
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let cache = tmp.path().join("cache");

    // The clinic, set up in-process, then closed for the server to open.
    let notices = match common::build("plugins/notices") {
        Ok(p) => Some(p),
        Err(e) => {
            println!("(no plugin load: the notices plugin could not be built: {e:#})");
            None
        }
    };
    let ids = {
        let (app, ctx) = common::clinic_for_server(&data, &cache)?;
        common::user(&app, "soak.doc", vec![Role::Physician], Some("Dr. Soak"))?;
        common::user(&app, "soak.boss", vec![Role::Admin], None)?;
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async {
            let mut g = osler_host::demo::Generator::new(7);
            app.patients
                .import(&ctx, (0..patients).map(|_| g.patient()).collect())
                .await?;
            if let Some(pkg) = &notices {
                common::install(&app, &ctx, pkg, &[Capability::Kv]).await?;
            }
            anyhow::Ok(())
        })?;
        let mut ids = Vec::new();
        let mut cursor = None;
        loop {
            let page = app.patients.find(&osler_host::patients::SearchQuery {
                count: 100,
                cursor: cursor.clone(),
                ..Default::default()
            })?;
            ids.extend(page.patients.iter().filter_map(|p| p.id.clone()));
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        ids
    };

    let server = common::Server::start(&data, &cache)?;
    let pid = server.pid();
    let base = server.base.clone();

    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async move {
        let client = reqwest::Client::new();
        let login = |user: &'static str| {
            let client = client.clone();
            let base = base.clone();
            async move {
                let v: Value = client
                    .post(format!("{base}/api/v1/auth/login"))
                    .json(&json!({"username": user, "password": common::PASSWORD}))
                    .send()
                    .await?
                    .json()
                    .await?;
                anyhow::Ok(v["token"].as_str().unwrap_or_default().to_string())
            }
        };
        let shared = Arc::new(Shared {
            doc: login("soak.doc").await?,
            boss: login("soak.boss").await?,
            client: client.clone(),
            base: base.clone(),
            ids: Mutex::new(ids),
            next_card: AtomicU64::new(0),
            plugin: notices.is_some(),
        });
        println!(
            "osler serve (pid {pid}): {patients} patients, {clients} clients, {secs:.0} s{}",
            if shared.plugin {
                ", with the notices plugin"
            } else {
                ""
            }
        );
        println!("  start: RSS {:.0} MiB", rss_mib(pid));
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        // (minute, op) → latencies; and server errors.
        let samples: Arc<Mutex<BTreeMap<u64, Vec<Duration>>>> = Arc::default();
        let failures = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for k in 0..clients {
            let (s, stop, samples, failures) = (
                shared.clone(),
                stop.clone(),
                samples.clone(),
                failures.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut r: u64 = 0x9E37_79B9_7F4A_7C15 ^ (k as u64 * 0x1000_0001);
                let mut mine: Vec<(u64, Duration)> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    r ^= r << 13;
                    r ^= r >> 7;
                    r ^= r << 17;
                    let op = choose(r % 1000, s.plugin);
                    let t = Instant::now();
                    let status = one(&s, op, r >> 10).await;
                    mine.push((started.elapsed().as_secs() / 60, t.elapsed()));
                    if !status.is_success() {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("{op:?}: {status}");
                    }
                    if mine.len() >= 256 {
                        let mut all = samples.lock().unwrap();
                        for (m, d) in mine.drain(..) {
                            all.entry(m).or_default().push(d);
                        }
                    }
                }
                let mut all = samples.lock().unwrap();
                for (m, d) in mine {
                    all.entry(m).or_default().push(d);
                }
            }));
        }
        let mut series = Vec::new();
        let mut next = Duration::from_secs(10);
        while started.elapsed().as_secs_f64() < secs {
            tokio::time::sleep(next.saturating_sub(started.elapsed())).await;
            let rss = rss_mib(pid);
            series.push((next.as_secs(), rss));
            println!("  t={:>4} s  RSS {rss:>6.0} MiB", next.as_secs());
            next += Duration::from_secs(10);
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await?;
        }
        let load_secs = started.elapsed().as_secs_f64();
        println!("\n  minute  requests/s   p50 ms   p99 ms");
        let all = std::mem::take(&mut *samples.lock().unwrap());
        let mut total = 0usize;
        for (m, lat) in all.iter() {
            let mut lat = lat.clone();
            lat.sort();
            total += lat.len();
            let span = (secs - *m as f64 * 60.0).clamp(1.0, 60.0);
            println!(
                "  {:>6}  {:>10.0}  {:>7.2}  {:>7.2}",
                m + 1,
                lat.len() as f64 / span,
                percentile(&lat, 0.5).as_secs_f64() * 1000.0,
                percentile(&lat, 0.99).as_secs_f64() * 1000.0
            );
        }
        println!(
            "  {total} requests in {load_secs:.0} s, {} not successful",
            failures.load(Ordering::Relaxed)
        );
        println!("\n  idle for {idle:.0} s…");
        let mut t = 0.0;
        while t < idle {
            tokio::time::sleep(Duration::from_secs_f64(10f64.min(idle - t))).await;
            t += 10f64.min(idle - t);
            println!("  idle t={t:>4.0} s  RSS {:>6.0} MiB", rss_mib(pid));
        }
        let peak = series.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        let last_half: Vec<f64> = series[series.len() / 2..].iter().map(|(_, r)| *r).collect();
        println!(
            "\n  RSS: peak {peak:.0} MiB; second half of the load {:.0}–{:.0} MiB; idle {:.0} MiB",
            last_half.iter().cloned().fold(f64::MAX, f64::min),
            last_half.iter().cloned().fold(0.0, f64::max),
            rss_mib(pid)
        );
        anyhow::Ok(failures.load(Ordering::Relaxed))
    });
    drop(server);
    let failures = result?;
    anyhow::ensure!(failures == 0, "{failures} requests failed");
    Ok(())
}
