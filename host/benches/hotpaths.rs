//! Hot-path benchmark (issue 18): each of the clinic's hot paths beside its anchor or goal, in
//! the same run, on the same disk. Run with `cargo bench -p osler-host --bench hotpaths`.
//!
//! The disk this runs on is shared and its fsync rate moves by an order of magnitude from one
//! minute to the next, so an absolute figure means little; the ratio to PostgreSQL measured in
//! the same window does. Set-up: a clinic of `OSLER_BENCH_PATIENTS` patients (loaded in-process
//! with `Patients::import`, 2,000 per atomic batch and fsync: the fastest honest load the host
//! offers), the drug reference (a generated 20,000-row interaction table), prescribing,
//! encounter, scheduling (a physician's `OSLER_BENCH_DAYS` days of 40 appointments, loaded
//! through the plugin's import route) and a trivial plugin (`hostile`'s `GET /ok`); then the
//! real `osler serve` (release). Each round runs, one after the other:
//!
//! 1. at each concurrency (64 and 1 clients): PostgreSQL 15 (a throw-away cluster: `initdb`
//!    into a temporary directory, `fsync=on`, `synchronous_commit=on`, Unix socket only)
//!    running with pgbench the *same work* as one Osler create — in one transaction a patient
//!    row (jsonb), two name-token rows, a birth-date row, an identifier row (unique per system
//!    and value) and an audit row — twice: as eight prepared statements (eight round trips),
//!    and as one call of a PL/pgSQL function doing the same inserts (one round trip, the
//!    stricter anchor); then `POST /api/v1/patients` to Osler from the same number of HTTP
//!    clients, each create durable and audited before its answer; then PostgreSQL single-row
//!    inserts (one jsonb row per transaction), the disk's easy case;
//! 2. the disk's own floor for the rows whose answer waits for a durable audit entry (4 KiB
//!    appended and fdatasync'ed, again and again for 3 s, beside the data): p50/p99; then a
//!    name search (`GET /api/v1/patients?name=<2–4 letters>&_count=20`, its durable audit
//!    entry naming every patient returned), one at a time: p50/p99;
//! 3. the day sheet of 40 appointments (`GET /plugins/scheduling/api/day/<provider>/<date>`)
//!    as reception (with the 40 names: the patients read through the host, audited) and as an
//!    administrator (ids only): p50/p99;
//! 4. a 16th drug checked against 15 medications, allergies and posts through prescribing →
//!    drugref, and drugref's own check of the 105 pairs: p50/p99;
//! 5. a trivial route through a plugin and a native one (`GET /api/v1/auth/me`: the same session
//!    lookup, a small JSON answer) from 16 connections: requests/s and the ratio;
//! 6. only in a build without the `jemalloc` feature (`cargo bench -p osler-host --bench
//!    hotpaths --no-default-features`), where the server's allocator is glibc's: the creates
//!    (64 and 1 clients), the name search and the trivial plugin route with each allocator, the
//!    server restarted with it: glibc's malloc (the binary's own), then jemalloc and mimalloc
//!    preloaded (`LD_PRELOAD`), each with its ratio to glibc's run of the same section (this is
//!    how jemalloc was chosen; a preloaded library cannot replace a built-in allocator);
//! 7. each memory budget (`[memory] budget_mib`, the server restarted with it; the first is the
//!    default the rows above ran with): 64-client creates, the name search, the trivial plugin
//!    route, each with its ratio to the first budget's (what a smaller database cache and fewer
//!    warm sandboxes cost), and the resident size after them;
//! 8. each storage engine (`[storage] engine`), on a clinic of its own set up like the main
//!    one's patients (the main clinic is on the default engine, fjall): creates at each
//!    concurrency and the name search, each with its ratio to the first engine's (sled's).
//!
//! then prints every figure, each row with its anchor or goal and the ratio, and the server's
//! resident memory at the end of each round and at its highest during it (sampled every 200
//! ms). Each latency row also says which of its requests (by position, in the order sent) took
//! over twice its median: at a few hundred requests, those decide the p99. Without
//! PostgreSQL's binaries (Debian: `apt-get install postgresql-15`) it says so and prints
//! Osler's figures alone. The client runs in this process, on the same two
//! cores as the server.
//!
//! | variable                 | default | meaning                                           |
//! |--------------------------|---------|---------------------------------------------------|
//! | `OSLER_BENCH_SECONDS`    | 10      | duration of each throughput run                   |
//! | `OSLER_BENCH_ROUNDS`     | 3       | interleaved rounds                                |
//! | `OSLER_BENCH_CLIENTS`    | 64,1    | concurrencies of the create runs                  |
//! | `OSLER_BENCH_PATIENTS`   | 100000  | patients registered before the first round        |
//! | `OSLER_BENCH_REQUESTS`   | 500     | sequential requests per latency row and round     |
//! | `OSLER_BENCH_DAYS`       | 20      | days of 40 appointments for the day sheet         |
//! | `OSLER_BENCH_CONNECTIONS`| 16      | connections of the plugin-route run               |
//! | `OSLER_BENCH_ALLOCATORS` | Debian's jemalloc, mimalloc | (without the `jemalloc` feature) `name=library.so[@options];…` to preload (with `MALLOC_CONF=options`), or `name=@tunables` for glibc's with `GLIBC_TUNABLES`, and compare |
//! | `OSLER_BENCH_BUDGETS`    | 128,512 | memory budgets (MiB) to compare, the default first; empty: none |
//! | `OSLER_BENCH_ENGINES`    | sled,fjall | storage engines to compare, against the first; empty: none |
//! | `OSLER_BENCH_PG_BIN`     | newest `/usr/lib/postgresql/*/bin` | PostgreSQL's binaries  |
//! | `OSLER_BENCH_DIR`        | the system temp dir | where both data directories go        |

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use common::drugs::{MEDS, holbrook};
use common::{env_num, percentile, rss_mib};
use osler_host::access::Role;
use osler_host::plugins::manifest::Capability;
use serde_json::{Value, json};

/// The same work as one Osler create, as one PostgreSQL transaction (pgbench script).
const SAME_WORK: &str = r#"\set n random(1, 2000000000)
BEGIN;
INSERT INTO patients (doc) VALUES (jsonb_build_object('resourceType', 'Patient', 'name', jsonb_build_array(jsonb_build_object('family', 'Bench', 'given', jsonb_build_array('Ann'))), 'birthDate', '1970-01-01', 'gender', 'female', 'identifier', jsonb_build_array(jsonb_build_object('system', 'https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn', 'value', :n::text)))) RETURNING id AS pid \gset
INSERT INTO name_tokens (token, patient) VALUES ('bench', :pid), ('ann', :pid);
INSERT INTO birth_dates (birth_date, patient) VALUES ('1970-01-01', :pid);
INSERT INTO identifiers (system, value, patient) VALUES ('on-hcn', :n::text || '-' || :pid, :pid);
INSERT INTO audit (at, actor, action, outcome, patient, detail) VALUES (now(), 'bench.doc', 'patient.create', 'success', :pid, '{"site":"main","via":"api"}');
COMMIT;
"#;

/// The same work as one server-side function call per transaction (one round trip).
const FUNCTION_CALL: &str = r#"\set n random(1, 2000000000)
SELECT create_patient(:n);
"#;

const SINGLE_ROW: &str = r#"INSERT INTO singles (doc) VALUES ('{"resourceType":"Patient","name":[{"family":"Bench","given":["Ann"]}],"birthDate":"1970-01-01"}');
"#;

const SCHEMA: &str = r#"
CREATE TABLE patients (id bigserial PRIMARY KEY, doc jsonb NOT NULL);
CREATE TABLE name_tokens (token text NOT NULL, patient bigint NOT NULL, PRIMARY KEY (token, patient));
CREATE TABLE birth_dates (birth_date date NOT NULL, patient bigint NOT NULL, PRIMARY KEY (birth_date, patient));
CREATE TABLE identifiers (system text NOT NULL, value text NOT NULL, patient bigint NOT NULL, UNIQUE (system, value));
CREATE TABLE audit (seq bigserial PRIMARY KEY, at timestamptz NOT NULL, actor text NOT NULL, action text NOT NULL, outcome text NOT NULL, patient bigint, detail jsonb);
CREATE TABLE singles (id bigserial PRIMARY KEY, doc jsonb NOT NULL);
CREATE FUNCTION create_patient(n bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE pid bigint;
BEGIN
  INSERT INTO patients (doc) VALUES (jsonb_build_object('resourceType', 'Patient', 'name', jsonb_build_array(jsonb_build_object('family', 'Bench', 'given', jsonb_build_array('Ann'))), 'birthDate', '1970-01-01', 'gender', 'female', 'identifier', jsonb_build_array(jsonb_build_object('system', 'https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn', 'value', n::text)))) RETURNING id INTO pid;
  INSERT INTO name_tokens (token, patient) VALUES ('bench', pid), ('ann', pid);
  INSERT INTO birth_dates (birth_date, patient) VALUES ('1970-01-01', pid);
  INSERT INTO identifiers (system, value, patient) VALUES ('on-hcn', n::text || '-' || pid, pid);
  INSERT INTO audit (at, actor, action, outcome, patient, detail) VALUES (now(), 'bench.doc', 'patient.create', 'success', pid, '{"site":"main","via":"api"}');
  RETURN pid;
END
$$;
"#;

/// A throw-away PostgreSQL cluster, stopped when dropped.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    /// Run the cluster's commands as `postgres` (initdb refuses root).
    as_postgres: bool,
    dir: PathBuf,
}

impl Postgres {
    fn find_bin() -> Option<PathBuf> {
        if let Ok(b) = std::env::var("OSLER_BENCH_PG_BIN") {
            return Some(PathBuf::from(b));
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists() && b.join("pgbench").exists())
            .collect();
        found.sort();
        found.pop()
    }

    fn cmd(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn start(bin: PathBuf, parent: &Path) -> anyhow::Result<Self> {
        let dir = parent.join("pg");
        let data = dir.join("data");
        let socket = dir.join("socket");
        std::fs::create_dir_all(&socket)?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let pg = Self {
            bin,
            data,
            socket,
            as_postgres,
            dir,
        };
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir)
                .status()?
                .success();
            anyhow::ensure!(
                ok,
                "could not hand {} to the postgres user",
                pg.dir.display()
            );
        }
        let out = pg
            .cmd("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-instructions", "-D"])
            .arg(&pg.data)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let opts = format!(
            "-c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=120 \
             -c shared_buffers=256MB -c listen_addresses='' -k {}",
            pg.socket.display()
        );
        let out = pg
            .cmd("pg_ctl")
            .args(["-w", "-D"])
            .arg(&pg.data)
            .args(["-o", &opts, "-l"])
            .arg(pg.dir.join("log"))
            .arg("start")
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = pg
            .cmd("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&pg.socket)
            .args(["-U", "postgres", "-d", "postgres", "-c", SCHEMA])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "creating the schema failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (name, text) in [
            ("same-work.sql", SAME_WORK),
            ("function-call.sql", FUNCTION_CALL),
            ("single-row.sql", SINGLE_ROW),
        ] {
            std::fs::write(pg.dir.join(name), text)?;
        }
        if as_postgres {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir)
                .status()?;
        }
        Ok(pg)
    }

    /// Transactions per second of `script` from `clients` connections for `secs`.
    fn pgbench(&self, script: &str, clients: usize, secs: f64) -> anyhow::Result<f64> {
        let out = self
            .cmd("pgbench")
            .args(["-n", "-M", "prepared", "-h"])
            .arg(&self.socket)
            .args(["-U", "postgres"])
            .args(["-c", &clients.to_string()])
            .args(["-j", &clients.min(2).to_string()])
            .args(["-T", &(secs.round() as u64).max(1).to_string()])
            .arg("-f")
            .arg(self.dir.join(script))
            .arg("postgres")
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        anyhow::ensure!(
            out.status.success(),
            "pgbench failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l["tps = ".len()..].split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("no tps in pgbench's output: {text}"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }
}

/// Durable creates per second over HTTP from `clients` clients for `secs`.
async fn osler_creates(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    next_card: &Arc<AtomicU64>,
    clients: usize,
    secs: f64,
) -> anyhow::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, base, token) = (client.clone(), base.to_string(), token.to_string());
        let (stop, done, failed, next_card) = (
            stop.clone(),
            done.clone(),
            failed.clone(),
            next_card.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = next_card.fetch_add(1, Ordering::Relaxed);
                let body = json!({
                    "resourceType": "Patient",
                    "identifier": [{
                        "system": osler_host::patients::fhir::ON_HCN_SYSTEM,
                        "value": osler_host::demo::health_card(20_000_000 + n),
                    }],
                    "name": [{"family": "Bench", "given": ["Ann"]}],
                    "gender": "female",
                    "birthDate": "1970-01-01",
                });
                let ok = match client
                    .post(format!("{base}/api/v1/patients"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) => {
                        let s = r.status();
                        let _ = r.bytes().await;
                        s.is_success()
                    }
                    Err(_) => false,
                };
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    anyhow::ensure!(failed == 0, "{failed} creates failed");
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed)
}

/// The bench's `n` generated patients (the same ones in every clinic), imported in batches.
async fn load_patients(
    app: &osler_host::app::App,
    ctx: &osler_host::access::Ctx,
    n: usize,
) -> anyhow::Result<()> {
    let mut g = osler_host::demo::Generator::new(11);
    let mut left = n;
    while left > 0 {
        let k = left.min(10_000);
        app.patients
            .import(ctx, (0..k).map(|_| g.patient()).collect())
            .await?;
        left -= k;
    }
    Ok(())
}

/// Latencies of `n` audited name searches (`_count=20`), one at a time, the prefixes taken
/// from `offset` on; sorted.
async fn name_searches(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    prefixes: &[String],
    offset: usize,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    sequential(n, |i| {
        client
            .get(format!(
                "{base}/api/v1/patients?name={}&_count=20",
                prefixes[(i * 7919 + offset) % prefixes.len()]
            ))
            .bearer_auth(token)
    })
    .await
}

/// The trivial plugin route (`hostile`'s `GET /ok`) from `conns` connections for `secs`:
/// requests/s, p50, p99.
async fn plugin_route(
    base: &str,
    token: &str,
    secs: f64,
    conns: usize,
) -> (f64, Duration, Duration) {
    common::get_load(
        format!("{base}/plugins/hostile/ok"),
        token.to_string(),
        secs,
        conns,
    )
    .await
}

/// Latencies of `n` sequential requests, each built by `req(i)`; sorted.
async fn sequential<F>(n: usize, mut req: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut(usize) -> reqwest::RequestBuilder,
{
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let r = req(i).send().await?;
        let status = r.status();
        let body = r.bytes().await?;
        anyhow::ensure!(
            status.is_success(),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        lat.push(t.elapsed());
    }
    let mut sorted = lat.clone();
    sorted.sort();
    print_stalls(&lat, &sorted);
    Ok(sorted)
}

/// The highest resident size of one process, sampled every 200 ms by a thread of its own:
/// what the server held at its busiest, not only when a round ended.
struct PeakRss {
    pid: Arc<AtomicU32>,
    kib: Arc<AtomicU64>,
}

impl PeakRss {
    fn start() -> Self {
        let pid = Arc::new(AtomicU32::new(0));
        let kib = Arc::new(AtomicU64::new(0));
        let (p, k) = (pid.clone(), kib.clone());
        std::thread::spawn(move || {
            loop {
                let now = (rss_mib(p.load(Ordering::Relaxed)) * 1024.0) as u64;
                k.fetch_max(now, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        PeakRss { pid, kib }
    }

    /// Sample `pid` from now on, from zero.
    fn follow(&self, pid: u32) {
        self.pid.store(pid, Ordering::Relaxed);
        self.kib.store(0, Ordering::Relaxed);
    }

    fn mib(&self) -> f64 {
        self.kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

/// Which of a run's sequential requests (`lat`, in the order sent; `sorted`, the same sorted)
/// took over twice the median: the p99 of a few hundred requests is set by them, not by the
/// typical request.
fn print_stalls(lat: &[Duration], sorted: &[Duration]) {
    let Some(&median) = sorted.get(sorted.len() / 2) else {
        return;
    };
    let slow: Vec<(usize, Duration)> = lat
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, d)| *d > median * 2)
        .collect();
    let at: Vec<String> = slow
        .iter()
        .take(12)
        .map(|(i, d)| format!("#{i} {:.1}", ms(*d)))
        .collect();
    println!(
        "  {} of {} requests over twice the median ({:.2} ms){}{}",
        slow.len(),
        lat.len(),
        ms(median),
        if at.is_empty() { "" } else { ": " },
        at.join(", ") + if slow.len() > at.len() { ", …" } else { "" }
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `n`-th day from 2027-01-04 (a Monday), as `YYYY-MM-DD`.
fn date(n: usize) -> String {
    let d = time::macros::date!(2027 - 01 - 04) + time::Duration::days(n as i64);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The allocators to compare. The server's own is jemalloc (the `jemalloc` feature), which a
/// preloaded library cannot replace, so built that way there is nothing to compare; built with
/// `--no-default-features`, the binary's own is glibc's, first, then each `name=library` of
/// `OSLER_BENCH_ALLOCATORS`, preloaded (default: Debian's jemalloc and mimalloc when
/// installed: `apt-get install libjemalloc2 libmimalloc2.0`).
fn allocators() -> Vec<(String, Option<String>)> {
    if cfg!(feature = "jemalloc") {
        return Vec::new();
    }
    let mut out = vec![("glibc".to_string(), None)];
    let listed = std::env::var("OSLER_BENCH_ALLOCATORS").unwrap_or_else(|_| {
        [
            ("jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
            ("mimalloc", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"),
        ]
        .iter()
        .filter(|(_, path)| Path::new(path).exists())
        .map(|(name, path)| format!("{name}={path}"))
        .collect::<Vec<_>>()
        .join(";")
    });
    for item in listed.split(';').filter(|s| !s.trim().is_empty()) {
        if let Some((name, path)) = item.split_once('=') {
            out.push((name.trim().to_string(), Some(path.trim().to_string())));
        }
    }
    // glibc's alone would be compared with nothing: the section is skipped.
    if out.len() == 1 {
        out.clear();
    }
    out
}

/// One figure of one round (in round order): Osler's, and its anchor's when there is one.
struct Figure {
    row: String,
    osler: f64,
    anchor: Option<f64>,
}

/// How each row reads: its unit, what it is compared with, and its goal.
struct RowKind {
    row: &'static str,
    unit: &'static str,
    anchor: &'static str,
    /// For a ratio row, the least ratio (Osler ÷ anchor); for a latency row, the most ms.
    goal: Goal,
}

enum Goal {
    AtLeastRatio(f64),
    AtMostMs(f64),
    None,
}

fn creates_row(clients: usize) -> String {
    match clients {
        1 => "durable creates over HTTP, 1 client".into(),
        c => format!("durable creates over HTTP, {c} clients"),
    }
}

async fn login(client: &reqwest::Client, base: &str, user: &str) -> anyhow::Result<String> {
    let v: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": common::PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    Ok(v["token"]
        .as_str()
        .with_context(|| format!("no session token for {user}: {v}"))?
        .to_string())
}

async fn send(r: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let r = r.send().await?;
    let status = r.status();
    let text = r.text().await?;
    anyhow::ensure!(status.is_success(), "{status}: {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn main() -> anyhow::Result<()> {
    let secs = env_num("OSLER_BENCH_SECONDS", 10.0);
    let rounds = env_num("OSLER_BENCH_ROUNDS", 3.0) as usize;
    let patients = env_num("OSLER_BENCH_PATIENTS", 100_000.0) as usize;
    let requests = env_num("OSLER_BENCH_REQUESTS", 500.0) as usize;
    let days = (env_num("OSLER_BENCH_DAYS", 20.0) as usize).max(1);
    let conns = env_num("OSLER_BENCH_CONNECTIONS", 16.0) as usize;
    let concurrencies: Vec<usize> = std::env::var("OSLER_BENCH_CLIENTS")
        .unwrap_or_else(|_| "64,1".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let tmp = match std::env::var_os("OSLER_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let data = tmp.path().join("osler");
    let cache = tmp.path().join("cache");

    let pg = match Postgres::find_bin() {
        Some(bin) => match Postgres::start(bin, tmp.path()) {
            Ok(pg) => Some(pg),
            Err(e) => {
                println!("PostgreSQL could not be started ({e:#}): Osler's figures alone.");
                None
            }
        },
        None => {
            println!(
                "No PostgreSQL binaries (Debian: apt-get install postgresql-15, or set \
                 OSLER_BENCH_PG_BIN): Osler's figures alone."
            );
            None
        }
    };

    println!("building the plugins (release, wasm32-wasip2)…");
    let mut packages = common::clinic_plugins()
        .into_iter()
        .map(|(dir, caps)| Ok((common::build(dir)?, caps)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    packages.push((
        common::build("tests/plugins/hostile")?,
        vec![Capability::Kv],
    ));

    // The clinic, set up in-process with `patients` patients, then closed for the server.
    let ids = {
        let (app, ctx) = common::clinic_for_server(&data, &cache)?;
        common::user(
            &app,
            "bench.doc",
            vec![Role::Physician, Role::Admin],
            Some("Dr. Bench"),
        )?;
        common::user(
            &app,
            "bench.desk",
            vec![Role::Reception, Role::Admin],
            Some("Bench Desk"),
        )?;
        common::user(&app, "bench.admin", vec![Role::Admin], Some("Bench Admin"))?;
        let rt = tokio::runtime::Runtime::new()?;
        let started = Instant::now();
        rt.block_on(async {
            load_patients(&app, &ctx, patients).await?;
            for (pkg, caps) in &packages {
                common::install(&app, &ctx, pkg, caps).await?;
            }
            anyhow::Ok(())
        })?;
        println!(
            "clinic: {patients} patients loaded in-process (Patients::import) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let page = app.patients.find(&osler_host::patients::SearchQuery {
            count: 1000,
            ..Default::default()
        })?;
        page.patients
            .into_iter()
            .filter_map(|p| p.id)
            .collect::<Vec<_>>()
    };
    anyhow::ensure!(!ids.is_empty(), "no patients to book");

    // A clinic per storage engine to compare: the same patients, the bench's physician.
    let engines: Vec<(osler_host::storage::Engine, PathBuf)> = std::env::var("OSLER_BENCH_ENGINES")
        .unwrap_or_else(|_| "sled,fjall".into())
        .split(',')
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let engine: osler_host::storage::Engine =
                serde_json::from_value(json!(e.trim())).context("OSLER_BENCH_ENGINES")?;
            let dir = tmp.path().join(format!("osler-{}", engine.name()));
            let (app, ctx) = common::clinic_for_server_on(&dir, &cache, engine)?;
            common::user(&app, "bench.doc", vec![Role::Physician], Some("Dr. Bench"))?;
            let started = Instant::now();
            tokio::runtime::Runtime::new()?.block_on(load_patients(&app, &ctx, patients))?;
            println!(
                "engine {}: {patients} patients loaded in-process in {:.1} s",
                engine.name(),
                started.elapsed().as_secs_f64()
            );
            Ok((engine, dir))
        })
        .collect::<anyhow::Result<_>>()?;

    // The interaction table's import, as an administrator allows for large files.
    const SERVER_ENV: [(&str, &str); 2] = [
        ("OSLER_HTTP__BODY_LIMIT", "16777216"),
        ("OSLER_PLUGINS__TIMEOUT_MS", "60000"),
    ];
    let allocators = allocators();
    let budgets: Vec<u64> = std::env::var("OSLER_BENCH_BUDGETS")
        .unwrap_or_else(|_| format!("{},512", osler_host::memory::DEFAULT_BUDGET_MIB))
        .split(',')
        .filter_map(|b| b.trim().parse().ok())
        .collect();
    let mut server = Some(common::Server::start_with(&data, &cache, &SERVER_ENV)?);
    let mut pid = server.as_ref().map_or(0, |s| s.pid());
    let mut base = server.as_ref().map_or(String::new(), |s| s.base.clone());
    let rt = tokio::runtime::Runtime::new()?;
    let figures = rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(300))
            .build()?;
        let doc = login(&client, &base, "bench.doc").await?;
        let desk = login(&client, &base, "bench.desk").await?;
        let admin = login(&client, &base, "bench.admin").await?;

        // The physician's days: 40 appointments a day, 15 minutes each from 08:00.
        let started = Instant::now();
        let week: serde_json::Map<String, Value> = (1..=7)
            .map(|d| (d.to_string(), json!([{"start": "08:00", "end": "18:00"}])))
            .collect();
        send(
            client
                .put(format!("{base}/plugins/scheduling/api/availability/bench.doc"))
                .bearer_auth(&desk)
                .json(&json!({"days": week})),
        )
        .await?;
        for day in 0..days {
            let appointments: Vec<Value> = (0..40)
                .map(|n| {
                    let minute = 8 * 60 + n * 15;
                    json!({
                        "provider": "bench.doc",
                        "patient": ids[(day * 40 + n) % ids.len()],
                        "date": date(day),
                        "start": format!("{:02}:{:02}", minute / 60, minute % 60),
                        "minutes": 15,
                        "reason": "Follow-up",
                    })
                })
                .collect();
            send(
                client
                    .post(format!("{base}/plugins/scheduling/api/appointments/import"))
                    .bearer_auth(&desk)
                    .json(&json!({"appointments": appointments})),
            )
            .await?;
        }
        // The drug reference: its seed table, then a generated 20,000-row table.
        send(
            client
                .get(format!("{base}/plugins/drugref/api/tables"))
                .bearer_auth(&doc),
        )
        .await?;
        send(
            client
                .post(format!(
                    "{base}/plugins/drugref/api/import/interactions?source=bench"
                ))
                .bearer_auth(&doc)
                .header("content-type", "text/csv")
                .body(holbrook(20_000)),
        )
        .await?;
        // A patient on 15 medications.
        let stem = "612345678";
        let card = format!(
            "{stem}{}",
            osler_host::patients::validate::hcn_check_digit(stem)
        );
        let p = send(
            client
                .post(format!("{base}/api/v1/patients"))
                .bearer_auth(&doc)
                .json(&json!({"resourceType": "Patient",
                   "identifier": [{"system": osler_host::patients::fhir::ON_HCN_SYSTEM, "value": card}],
                   "name": [{"family": "Bench", "given": ["Fifteen"]}],
                   "gender": "female", "birthDate": "1948-06-01"})),
        )
        .await?;
        let fifteen = p["id"].as_str().context("no patient id")?.to_string();
        for (din, _) in MEDS {
            send(
                client
                    .post(format!(
                        "{base}/plugins/prescribing/api/patients/{fifteen}/medications"
                    ))
                    .bearer_auth(&doc)
                    .json(&json!({"din": din, "sig": "1 tab PO OD", "longTerm": true})),
            )
            .await?;
        }
        println!(
            "set-up over HTTP ({days} days of 40 appointments, a 20,000-row interaction table, \
             a patient on 15 medications): {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let next_card = Arc::new(AtomicU64::new(0));
        let prefixes = common::name_prefixes();
        println!(
            "osler serve (pid {pid}), {secs:.0} s per throughput run, {requests} requests per \
             latency row, {rounds} rounds; RSS at start {:.0} MiB\n",
            rss_mib(pid)
        );
        let mut figures: Vec<Figure> = Vec::new();
        let mut push = |row: String, osler, anchor| {
            figures.push(Figure {
                row,
                osler,
                anchor,
            })
        };
        let p99 = |lat: &[Duration]| ms(percentile(lat, 0.99));
        let p50 = |lat: &[Duration]| ms(percentile(lat, 0.5));
        let peak = PeakRss::start();
        for round in 1..=rounds {
            println!("— round {round} —");
            if server.is_none() {
                let s = common::Server::start_with(&data, &cache, &SERVER_ENV)?;
                (pid, base) = (s.pid(), s.base.clone());
                server = Some(s);
            }
            peak.follow(pid);
            for &c in &concurrencies {
                let run = |script: &'static str| {
                    let pg = pg.as_ref();
                    async move {
                        match pg {
                            Some(pg) => pg.pgbench(script, c, secs).map(Some),
                            None => Ok(None),
                        }
                    }
                };
                let same = run("same-work.sql").await?;
                let function = run("function-call.sql").await?;
                let osler = osler_creates(&client, &base, &doc, &next_card, c, secs).await?;
                let single = run("single-row.sql").await?;
                let fmt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.0}/s"));
                println!(
                    "{c:>2} clients: Osler {osler:.0}/s; PostgreSQL same work {} (8 statements), \
                     {} (one function call), single rows {}",
                    fmt(same),
                    fmt(function),
                    fmt(single)
                );
                let row = creates_row(c);
                push(row.clone(), osler, same);
                push(format!("{row} (vs PL/pgSQL)"), osler, function);
                push(format!("{row} (vs single rows)"), osler, single);
            }

            // The floor of every row whose answer waits for a durable audit entry: one
            // 4 KiB append and fdatasync on the same disk, now.
            let mut disk = common::fsync_samples(&data, 3.0, true)?;
            disk.sort_unstable();
            println!(
                "disk, 4 KiB append + fdatasync: p50 {:.2} ms, p99 {:.2} ms",
                p50(&disk),
                p99(&disk)
            );
            push("disk: append + fdatasync p99 (ms)".into(), p99(&disk), None);

            let lat = name_searches(&client, &base, &doc, &prefixes, round, requests).await?;
            println!(
                "name search (audited): p50 {:.2} ms, p99 {:.2} ms",
                p50(&lat),
                p99(&lat)
            );
            push("name search p99, audited (ms)".into(), p99(&lat), None);

            for (label, token) in [
                ("day sheet with 40 names p99 (ms)", &desk),
                ("day sheet, ids only p99 (ms)", &admin),
            ] {
                let lat = sequential(requests, |i| {
                    client
                        .get(format!(
                            "{base}/plugins/scheduling/api/day/bench.doc/{}",
                            date(i % days)
                        ))
                        .bearer_auth(token)
                })
                .await?;
                println!("{label}: p50 {:.2} ms, p99 {:.2} ms", p50(&lat), p99(&lat));
                push(label.into(), p99(&lat), None);
            }

            let all15 = json!({"drugs": MEDS.iter().map(|(din, _)| json!({"key": din, "din": din})).collect::<Vec<_>>()});
            for (label, path, body) in [
                (
                    "16th drug vs 15 meds p99 (ms)",
                    format!("/plugins/prescribing/api/patients/{fifteen}/check"),
                    json!({"din": "99000031"}),
                ),
                (
                    "drugref alone, 105 pairs p99 (ms)",
                    "/plugins/drugref/api/interactions".to_string(),
                    all15,
                ),
            ] {
                let lat = sequential(requests, |_| {
                    client
                        .post(format!("{base}{path}"))
                        .bearer_auth(&doc)
                        .json(&body)
                })
                .await?;
                println!("{label}: p50 {:.2} ms, p99 {:.2} ms", p50(&lat), p99(&lat));
                push(label.into(), p99(&lat), None);
            }

            let (plugin, pp50, pp99) = plugin_route(&base, &doc, secs, conns).await;
            let (native, np50, np99) =
                common::get_load(format!("{base}/api/v1/auth/me"), doc.clone(), secs, conns)
                    .await;
            println!(
                "trivial route, {conns} connections: plugin {plugin:.0}/s (p50 {:.2}, p99 {:.2} ms), \
                 native {native:.0}/s (p50 {:.2}, p99 {:.2} ms)",
                ms(pp50),
                ms(pp99),
                ms(np50),
                ms(np99)
            );
            push("trivial plugin route, req/s".into(), plugin, Some(native));
            let rss = rss_mib(pid);
            let highest = peak.mib();
            println!("Osler RSS {rss:.0} MiB (at most {highest:.0} MiB during the round)");
            push("Osler RSS (MiB)".into(), rss, None);
            push("Osler peak RSS during the round (MiB)".into(), highest, None);

            // Creates, the name search and the plugin route with each allocator (the server
            // restarted with it preloaded), back to back, each against glibc's run.
            let mut glibc: Option<Vec<f64>> = None;
            for (name, preload) in &allocators {
                server = None;
                let mut env = SERVER_ENV.to_vec();
                if let Some(path) = preload {
                    // `library.so@options`: the allocator's tuning, as `MALLOC_CONF`;
                    // `@tunables`, no library: glibc's malloc tuned by `GLIBC_TUNABLES`.
                    match path.split_once('@').unwrap_or((path, "")) {
                        ("", tunables) => env.push(("GLIBC_TUNABLES", tunables)),
                        (path, conf) => {
                            env.push(("LD_PRELOAD", path));
                            env.push(("MALLOC_CONF", conf));
                        }
                    }
                }
                let s = common::Server::start_with(&data, &cache, &env)?;
                let mut figs = Vec::new();
                for &c in &concurrencies {
                    let osler = osler_creates(&client, &s.base, &doc, &next_card, c, secs).await?;
                    println!("allocator {name}, {c:>2} clients: {osler:.0} creates/s");
                    figs.push((format!("allocator {name}, {c} clients, creates/s"), osler));
                }
                let lat = name_searches(&client, &s.base, &doc, &prefixes, round + 3, requests).await?;
                figs.push((format!("allocator {name}, name search p99 (ms)"), p99(&lat)));
                let (plugin, _, _) = plugin_route(&s.base, &doc, secs, conns).await;
                figs.push((format!("allocator {name}, plugin route req/s"), plugin));
                let rss = rss_mib(s.pid());
                println!(
                    "allocator {name}: name search p50 {:.2} / p99 {:.2} ms, plugin route \
                     {plugin:.0}/s, RSS {rss:.0} MiB",
                    p50(&lat),
                    p99(&lat)
                );
                let base = glibc.get_or_insert_with(|| figs.iter().map(|f| f.1).collect());
                for (i, (row, v)) in figs.into_iter().enumerate() {
                    push(row, v, preload.as_ref().map(|_| base[i]));
                }
                push(format!("allocator {name}, RSS (MiB)"), rss, None);
                drop(s);
            }

            // What the memory budget costs: the cache-sensitive rows again with each budget.
            let mut first: Option<[f64; 3]> = None;
            for &mib in &budgets {
                server = None;
                let budget = mib.to_string();
                let mut env = SERVER_ENV.to_vec();
                env.push(("OSLER_MEMORY__BUDGET_MIB", budget.as_str()));
                let s = common::Server::start_with(&data, &cache, &env)?;
                let creates = osler_creates(&client, &s.base, &doc, &next_card, 64, secs).await?;
                let lat = name_searches(&client, &s.base, &doc, &prefixes, round + 1, requests).await?;
                let (plugin, _, _) = plugin_route(&s.base, &doc, secs, conns).await;
                let rss = rss_mib(s.pid());
                let search = p99(&lat);
                println!(
                    "budget {mib} MiB: {creates:.0} creates/s (64 clients), name search p50 \
                     {:.2} / p99 {search:.2} ms, plugin route {plugin:.0}/s, RSS {rss:.0} MiB",
                    p50(&lat)
                );
                let base = *first.get_or_insert([creates, search, plugin]);
                let anchor = |i: usize| if budgets[0] == mib { None } else { Some(base[i]) };
                push(format!("budget {mib} MiB, creates/s"), creates, anchor(0));
                push(format!("budget {mib} MiB, name search p99 (ms)"), search, anchor(1));
                push(format!("budget {mib} MiB, plugin route req/s"), plugin, anchor(2));
                push(format!("budget {mib} MiB, RSS (MiB)"), rss, None);
                drop(s);
            }

            // Each storage engine on its own clinic: creates and the name search.
            let mut first: Option<Vec<f64>> = None;
            for (n, (engine, dir)) in engines.iter().enumerate() {
                server = None;
                let s = common::Server::start_with(dir, &cache, &SERVER_ENV)?;
                let token = login(&client, &s.base, "bench.doc").await?;
                let mut figs = Vec::new();
                for &c in &concurrencies {
                    let creates =
                        osler_creates(&client, &s.base, &token, &next_card, c, secs).await?;
                    println!(
                        "engine {}, {c:>2} clients: {creates:.0} creates/s",
                        engine.name()
                    );
                    figs.push((format!("engine {}, {c} clients, creates/s", engine.name()), creates));
                }
                let lat = name_searches(&client, &s.base, &token, &prefixes, round + 2, requests).await?;
                figs.push((
                    format!("engine {}, name search p99 (ms)", engine.name()),
                    p99(&lat),
                ));
                let rss = rss_mib(s.pid());
                println!(
                    "engine {}: name search p50 {:.2} ms, p99 {:.2} ms; RSS {rss:.0} MiB",
                    engine.name(),
                    p50(&lat),
                    p99(&lat)
                );
                let base = first.get_or_insert_with(|| figs.iter().map(|f| f.1).collect());
                for (i, (row, v)) in figs.into_iter().enumerate() {
                    push(row, v, if n == 0 { None } else { Some(base[i]) });
                }
                push(format!("engine {}, RSS (MiB)", engine.name()), rss, None);
                drop(s);
            }
            println!();
        }
        anyhow::Ok(figures)
    })?;
    drop(server);

    let kinds = [
        RowKind {
            row: "durable creates over HTTP, 64 clients",
            unit: "/s",
            anchor: "PostgreSQL same work, 8 statements",
            goal: Goal::AtLeastRatio(1.0),
        },
        RowKind {
            row: "durable creates over HTTP, 64 clients (vs PL/pgSQL)",
            unit: "/s",
            anchor: "PostgreSQL same work, one function call",
            goal: Goal::AtLeastRatio(1.0),
        },
        RowKind {
            row: "durable creates over HTTP, 64 clients (vs single rows)",
            unit: "/s",
            anchor: "PostgreSQL single-row inserts",
            goal: Goal::None,
        },
        RowKind {
            row: "durable creates over HTTP, 1 client",
            unit: "/s",
            anchor: "PostgreSQL same work, 8 statements",
            goal: Goal::AtLeastRatio(1.0),
        },
        RowKind {
            row: "durable creates over HTTP, 1 client (vs PL/pgSQL)",
            unit: "/s",
            anchor: "PostgreSQL same work, one function call",
            goal: Goal::AtLeastRatio(1.0),
        },
        RowKind {
            row: "durable creates over HTTP, 1 client (vs single rows)",
            unit: "/s",
            anchor: "PostgreSQL single-row inserts",
            goal: Goal::None,
        },
        RowKind {
            row: "name search p99, audited (ms)",
            unit: " ms",
            anchor: "-",
            goal: Goal::AtMostMs(2.0),
        },
        RowKind {
            row: "day sheet with 40 names p99 (ms)",
            unit: " ms",
            anchor: "-",
            goal: Goal::AtMostMs(2.0),
        },
        RowKind {
            row: "day sheet, ids only p99 (ms)",
            unit: " ms",
            anchor: "-",
            goal: Goal::None,
        },
        RowKind {
            row: "16th drug vs 15 meds p99 (ms)",
            unit: " ms",
            anchor: "-",
            goal: Goal::AtMostMs(1.0),
        },
        RowKind {
            row: "drugref alone, 105 pairs p99 (ms)",
            unit: " ms",
            anchor: "-",
            goal: Goal::None,
        },
        RowKind {
            row: "trivial plugin route, req/s",
            unit: "/s",
            anchor: "native route (GET /api/v1/auth/me)",
            goal: Goal::AtLeastRatio(0.8),
        },
        RowKind {
            row: "Osler RSS (MiB)",
            unit: " MiB",
            anchor: "-",
            goal: Goal::None,
        },
    ];
    println!("\n== every row, {rounds} interleaved rounds ({patients} patients at the start) ==");
    let mut rows: Vec<&str> = Vec::new();
    for f in &figures {
        if !rows.contains(&f.row.as_str()) {
            rows.push(&f.row);
        }
    }
    for row in rows {
        let mine: Vec<&Figure> = figures.iter().filter(|f| f.row == row).collect();
        let kind = kinds.iter().find(|k| k.row == row);
        let unit = kind.map_or(
            if row.ends_with("/s") {
                "/s"
            } else if row.ends_with("(ms)") {
                " ms"
            } else if row.ends_with("(MiB)") {
                " MiB"
            } else {
                ""
            },
            |k| k.unit,
        );
        let values: Vec<String> = mine
            .iter()
            .map(|f| match f.anchor {
                Some(a) if unit == " ms" => {
                    format!("{:.2}{unit} vs {a:.2}{unit} = {:.2}×", f.osler, f.osler / a)
                }
                Some(a) => format!("{:.0}{unit} vs {a:.0}{unit} = {:.2}×", f.osler, f.osler / a),
                None if unit == "/s" => format!("{:.0}{unit}", f.osler),
                None => format!("{:.2}{unit}", f.osler),
            })
            .collect();
        let verdict = match kind.map(|k| &k.goal) {
            Some(Goal::AtLeastRatio(g)) => {
                let ratios: Vec<f64> = mine
                    .iter()
                    .filter_map(|f| f.anchor.map(|a| f.osler / a))
                    .collect();
                if ratios.is_empty() {
                    format!("goal ≥ {g}× (no anchor)")
                } else {
                    let lo = ratios.iter().cloned().fold(f64::MAX, f64::min);
                    let hi = ratios.iter().cloned().fold(0.0, f64::max);
                    format!(
                        "{lo:.2}–{hi:.2}×, goal ≥ {g}×: {}",
                        if lo >= *g { "met" } else { "not met" }
                    )
                }
            }
            Some(Goal::AtMostMs(g)) => {
                let hi = mine.iter().map(|f| f.osler).fold(0.0, f64::max);
                let lo = mine.iter().map(|f| f.osler).fold(f64::MAX, f64::min);
                format!(
                    "{lo:.2}–{hi:.2} ms, goal ≤ {g} ms: {}",
                    if hi <= *g { "met" } else { "not met" }
                )
            }
            _ => String::new(),
        };
        println!(
            "{row}\n    {}\n    anchor: {}  {verdict}",
            values.join(" | "),
            kind.map_or("-", |k| k.anchor)
        );
    }
    Ok(())
}
