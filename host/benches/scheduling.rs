//! Scheduling benchmark. Run with `cargo bench -p osler-host --bench scheduling`. One run:
//!
//! 1. builds the scheduling plugin (release, wasm32-wasip2), creates a site with 50 providers
//!    and 5,000 patients, and loads `OSLER_BENCH_APPOINTMENTS` appointments (default
//!    1,000,000: 20,000 per provider, 40 a day from 08:00 to 18:00) through the plugin's own
//!    import route, 80 appointments per atomic batch, several batches at once — and prints
//!    how long that took;
//! 2. prints the day sheet's latency (p50/p99) over loopback HTTP for random providers and
//!    days: as reception, with the patients' names (one audited read per patient through the
//!    host), and as an administrator, who may not read names (the index alone);
//! 3. prints booking throughput: single bookings over HTTP from 16 clients, each booking its
//!    own provider's free slots, for `OSLER_BENCH_SECONDS` (default 5).
//!
//! The client runs in the same process on the same cores as the server.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{env_num, percentile, session, user};
use osler_host::access::{Ctx, Role};
use osler_host::app::App;
use osler_host::config::Config;
use osler_host::plugins::latest;
use osler_host::plugins::manifest::Capability;
use serde_json::{Value, json};

const PROVIDERS: usize = 50;
const PATIENTS: usize = 5_000;
/// Appointments per provider-day: every 15 minutes from 08:00 to 18:00.
const PER_DAY: usize = 40;
/// Two provider-days per import: about 800 storage operations in one atomic batch.
const PER_IMPORT: usize = 2 * PER_DAY;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn provider(i: usize) -> String {
    format!("dr{:02}", i + 1)
}

/// The `n`-th day from 2027-01-04 (a Monday), as `YYYY-MM-DD`.
fn date(n: usize) -> String {
    let d = time::macros::date!(2027 - 01 - 04) + time::Duration::days(n as i64);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A small deterministic generator, so that runs are comparable.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % below as u64) as usize
    }
}

/// One request to the plugin in-process, as the reception user `bench`.
async fn call(app: &App, method: &str, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    let plugin = app
        .plugins
        .enabled("scheduling", "main")
        .map_err(|_| anyhow::anyhow!("scheduling is not enabled"))?;
    let ctx = Ctx {
        user: "bench".into(),
        roles: vec![Role::Reception, Role::Admin],
        site: Some("main".into()),
        patient: None,
        source: Some("bench".into()),
        via: None,
        plugin: None,
    };
    let req = latest::Request {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(body)?,
        caller: latest::Caller {
            user: "bench".into(),
            display_name: "Bench".into(),
            roles: vec!["reception".into(), "admin".into()],
            permissions: vec!["patients.read".into(), "patients.write".into()],
            site: "main".into(),
            site_name: "Main".into(),
            csrf_token: String::new(),
        },
    };
    let r = app
        .plugins
        .handle(plugin, "main", ctx, req)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    ))
}

fn main() -> anyhow::Result<()> {
    let total = env_num("OSLER_BENCH_APPOINTMENTS", 1_000_000.0) as usize;
    let secs = env_num("OSLER_BENCH_SECONDS", 5.0);
    let per_provider = total / PROVIDERS;
    let days = per_provider.div_ceil(PER_DAY);
    let tmp = tempfile::tempdir()?;

    println!("building the scheduling plugin (release, wasm32-wasip2)…");
    let package = common::build("plugins/scheduling")?;

    let mut config = Config {
        data_dir: tmp.path().join("data"),
        ..Default::default()
    };
    config.plugins.cache_dir = Some(tmp.path().join("cache"));
    let (app, ctx) = common::clinic(config)?;
    user(
        &app,
        "bench",
        vec![Role::Reception, Role::Admin],
        Some("Bench"),
    )?;
    user(&app, "benchadmin", vec![Role::Admin], Some("Bench Admin"))?;
    for i in 0..PROVIDERS {
        user(
            &app,
            &provider(i),
            vec![Role::Physician],
            Some(&format!("Dr. Bench {}", i + 1)),
        )?;
    }
    let reception = session(&app, "bench")?;
    let admin = session(&app, "benchadmin")?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut g = osler_host::demo::Generator::new(2027);
        app.patients
            .import(&ctx, (0..PATIENTS).map(|_| g.patient()).collect())
            .await?;
        let mut ids = Vec::new();
        let mut cursor = None;
        loop {
            let page = app.patients.find(&osler_host::patients::SearchQuery {
                count: 100,
                cursor: cursor.clone(),
                ..Default::default()
            })?;
            ids.extend(page.patients.into_iter().filter_map(|p| p.id));
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let ids = Arc::new(ids);

        common::install(
            &app,
            &ctx,
            &package,
            &[Capability::Kv, Capability::Directory, Capability::PatientsRead],
        )
        .await?;
        let week: serde_json::Map<String, Value> = (1..=7)
            .map(|d| (d.to_string(), json!([{"start": "08:00", "end": "18:00"}])))
            .collect();
        for i in 0..PROVIDERS {
            let (s, b) = call(&app, "PUT", &format!("/api/availability/{}", provider(i)), &json!({"days": week})).await?;
            anyhow::ensure!(s == 200, "availability: {b}");
        }

        // 1. Load, through the plugin's import route: each worker takes whole provider-days
        //    in turn, so batches never contend.
        println!(
            "\nloading {} appointments ({PROVIDERS} providers x {per_provider}, {days} days each, {PER_IMPORT} per import)…",
            PROVIDERS * per_provider
        );
        let started = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let loaded = Arc::new(AtomicU64::new(0));
        let jobs = PROVIDERS * per_provider.div_ceil(PER_IMPORT);
        let workers = 4;
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (app, next, loaded, ids) = (app.clone(), next.clone(), loaded.clone(), ids.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let job = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if job >= jobs {
                        return anyhow::Ok(());
                    }
                    let (p, chunk) = (job % PROVIDERS, job / PROVIDERS);
                    let first = chunk * PER_IMPORT;
                    let last = (first + PER_IMPORT).min(per_provider);
                    let mut rng = Lcg(job as u64);
                    let appointments: Vec<Value> = (first..last)
                        .map(|n| {
                            let minute = 8 * 60 + (n % PER_DAY) * 15;
                            json!({
                                "provider": provider(p),
                                "patient": ids[rng.next(ids.len())],
                                "date": date(n / PER_DAY),
                                "start": format!("{:02}:{:02}", minute / 60, minute % 60),
                                "minutes": 15,
                                "reason": "Follow-up",
                            })
                        })
                        .collect();
                    let (s, b) = call(&app, "POST", "/api/appointments/import", &json!({"appointments": appointments})).await?;
                    anyhow::ensure!(s == 201, "import: {s} {b}");
                    let done = loaded.fetch_add((last - first) as u64, Ordering::Relaxed) + (last - first) as u64;
                    if done % 100_000 < (last - first) as u64 {
                        println!("  {done:>9} loaded, {:.0} s", started.elapsed().as_secs_f64());
                    }
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        let load = started.elapsed();
        let n = loaded.load(Ordering::Relaxed);
        println!(
            "loaded {n} appointments in {:.1} s ({:.0} appointments/s)",
            load.as_secs_f64(),
            n as f64 / load.as_secs_f64()
        );

        let base = common::serve(osler_host::http::router(app.clone())).await?;
        let client = reqwest::Client::new();

        // 2. Day sheets of random providers and days.
        println!("\n== day sheet (GET /plugins/scheduling/api/day/<provider>/<date>), sequential ==");
        for (who, token) in [("reception, with names", &reception), ("administrator, ids only", &admin)] {
            let mut rng = Lcg(42);
            let mut lat = Vec::new();
            let mut sizes = 0;
            for i in 0..1100 {
                let url = format!(
                    "{base}/plugins/scheduling/api/day/{}/{}",
                    provider(rng.next(PROVIDERS)),
                    date(rng.next(days))
                );
                let t = Instant::now();
                let r = client.get(&url).bearer_auth(token).send().await?;
                anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
                let body: Value = r.json().await?;
                if i >= 100 {
                    lat.push(t.elapsed());
                    sizes += body["appointments"].as_array().map_or(0, Vec::len);
                }
            }
            lat.sort();
            println!(
                "{who:<24}: p50 {:>7.2} ms   p99 {:>7.2} ms   ({:.1} appointments per sheet, {} sheets)",
                ms(percentile(&lat, 0.5)),
                ms(percentile(&lat, 0.99)),
                sizes as f64 / lat.len() as f64,
                lat.len()
            );
        }

        // 3. Booking throughput: 16 clients, each booking its own provider's next free slot.
        let clients = 16;
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (client, token, stop, ids, base) = (client.clone(), reception.clone(), stop.clone(), ids.clone(), base.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let minute = 8 * 60 + (n % PER_DAY) * 15;
                    let body = json!({
                        "provider": provider(c),
                        "patient": ids[n % ids.len()],
                        "date": date(days + 7 + n / PER_DAY),
                        "start": format!("{:02}:{:02}", minute / 60, minute % 60),
                        "minutes": 15,
                    });
                    let t = Instant::now();
                    let r = client
                        .post(format!("{base}/plugins/scheduling/api/appointments"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await?;
                    anyhow::ensure!(r.status().as_u16() == 201, "booking: {}", r.text().await?);
                    r.bytes().await?;
                    lat.push(t.elapsed());
                    n += 1;
                }
                anyhow::Ok(lat)
            }));
        }
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await??);
        }
        let elapsed = started.elapsed().as_secs_f64();
        lat.sort();
        println!("\n== booking (POST /plugins/scheduling/api/appointments), {clients} clients, {secs} s ==");
        println!(
            "{:.0} bookings/s   p50 {:.2} ms   p99 {:.2} ms   ({} booked, each durable before the answer)",
            lat.len() as f64 / elapsed,
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            lat.len()
        );
        anyhow::Ok(())
    })?;
    Ok(())
}
