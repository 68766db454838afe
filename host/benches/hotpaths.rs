//! Hot-path benchmark: Osler's durable patient creates over HTTP beside PostgreSQL doing the
//! same storage work, in the same run, on the same disk. Run with
//! `cargo bench -p osler-host --bench hotpaths`.
//!
//! The disk this runs on is shared and its fsync rate moves by an order of magnitude from one
//! minute to the next, so an absolute figure means little; the ratio to PostgreSQL measured in
//! the same window does. Each round runs, one after the other:
//!
//! 1. PostgreSQL 15 (a throw-away cluster: `initdb` into a temporary directory, `fsync=on`,
//!    `synchronous_commit=on`, Unix socket only) running with pgbench the *same work* as one
//!    Osler create: in one transaction, a patient row (jsonb), two name-token rows, a
//!    birth-date row, an identifier row (unique per system and value) and an audit row;
//! 2. the real `osler serve` (release) taking `POST /api/v1/patients` from the same number of
//!    HTTP clients, each create durable and audited before its answer;
//! 3. PostgreSQL single-row inserts (one jsonb row per transaction), the disk's easy case.
//!
//! at 64 clients and at 1 client, for three interleaved rounds, then prints every figure and
//! the ratios, and the server's resident memory after the creates. Without PostgreSQL's
//! binaries (Debian: `apt-get install postgresql-15`) it says so and prints Osler's alone.
//!
//! | variable                 | default | meaning                                           |
//! |--------------------------|---------|---------------------------------------------------|
//! | `OSLER_BENCH_SECONDS`    | 10      | duration of each run                              |
//! | `OSLER_BENCH_ROUNDS`     | 3       | interleaved rounds                                |
//! | `OSLER_BENCH_CLIENTS`    | 64,1    | concurrencies                                     |
//! | `OSLER_BENCH_PATIENTS`   | 100000  | patients registered before the first round        |
//! | `OSLER_BENCH_PG_BIN`     | newest `/usr/lib/postgresql/*/bin` | PostgreSQL's binaries  |
//! | `OSLER_BENCH_DIR`        | the system temp dir | where both data directories go        |

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use common::{env_num, rss_mib};
use osler_host::access::Role;
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

const SINGLE_ROW: &str = r#"INSERT INTO singles (doc) VALUES ('{"resourceType":"Patient","name":[{"family":"Bench","given":["Ann"]}],"birthDate":"1970-01-01"}');
"#;

const SCHEMA: &str = "
CREATE TABLE patients (id bigserial PRIMARY KEY, doc jsonb NOT NULL);
CREATE TABLE name_tokens (token text NOT NULL, patient bigint NOT NULL, PRIMARY KEY (token, patient));
CREATE TABLE birth_dates (birth_date date NOT NULL, patient bigint NOT NULL, PRIMARY KEY (birth_date, patient));
CREATE TABLE identifiers (system text NOT NULL, value text NOT NULL, patient bigint NOT NULL, UNIQUE (system, value));
CREATE TABLE audit (seq bigserial PRIMARY KEY, at timestamptz NOT NULL, actor text NOT NULL, action text NOT NULL, outcome text NOT NULL, patient bigint, detail jsonb);
CREATE TABLE singles (id bigserial PRIMARY KEY, doc jsonb NOT NULL);
";

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
        for (name, text) in [("same-work.sql", SAME_WORK), ("single-row.sql", SINGLE_ROW)] {
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

/// One run of one round at one concurrency.
struct Row {
    clients: usize,
    round: usize,
    /// Osler's durable creates per second over HTTP.
    osler: f64,
    /// PostgreSQL doing the same work, and single-row inserts, per second (when installed).
    same: Option<f64>,
    single: Option<f64>,
    /// Osler's resident memory after its run, MiB.
    rss: f64,
}

fn main() -> anyhow::Result<()> {
    let secs = env_num("OSLER_BENCH_SECONDS", 10.0);
    let rounds = env_num("OSLER_BENCH_ROUNDS", 3.0) as usize;
    let patients = env_num("OSLER_BENCH_PATIENTS", 100_000.0) as usize;
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

    // The clinic, set up in-process with `patients` patients, then closed for the server.
    {
        let (app, ctx) = common::clinic_for_server(&data, &cache)?;
        common::user(&app, "bench.doc", vec![Role::Physician], Some("Dr. Bench"))?;
        let rt = tokio::runtime::Runtime::new()?;
        let started = Instant::now();
        rt.block_on(async {
            let mut g = osler_host::demo::Generator::new(11);
            let mut left = patients;
            while left > 0 {
                let n = left.min(10_000);
                app.patients
                    .import(&ctx, (0..n).map(|_| g.patient()).collect())
                    .await?;
                left -= n;
            }
            anyhow::Ok(())
        })?;
        println!(
            "clinic: {patients} patients loaded in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    let server = common::Server::start(&data, &cache)?;
    let pid = server.pid();
    let rt = tokio::runtime::Runtime::new()?;
    let rows = rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let v: Value = client
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({"username": "bench.doc", "password": common::PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let token = v["token"].as_str().context("no session token")?.to_string();
        let next_card = Arc::new(AtomicU64::new(0));
        println!(
            "osler serve (pid {pid}), {secs:.0} s per run, {rounds} rounds; RSS at start {:.0} MiB\n",
            rss_mib(pid)
        );
        let mut rows: Vec<Row> = Vec::new();
        for round in 1..=rounds {
            for &c in &concurrencies {
                let same = match &pg {
                    Some(pg) => Some(pg.pgbench("same-work.sql", c, secs)?),
                    None => None,
                };
                let osler =
                    osler_creates(&client, &server.base, &token, &next_card, c, secs).await?;
                let rss = rss_mib(pid);
                let single = match &pg {
                    Some(pg) => Some(pg.pgbench("single-row.sql", c, secs)?),
                    None => None,
                };
                let fmt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.0}/s"));
                println!(
                    "round {round}, {c:>2} clients: Osler {osler:.0}/s, PostgreSQL same work {}, \
                     single rows {}; Osler RSS {rss:.0} MiB",
                    fmt(same),
                    fmt(single)
                );
                rows.push(Row {
                    clients: c,
                    round,
                    osler,
                    same,
                    single,
                    rss,
                });
            }
        }
        anyhow::Ok(rows)
    })?;
    drop(server);

    println!(
        "\nclients  round   Osler creates/s   PG same work/s   ratio   PG single rows/s   ratio   Osler RSS"
    );
    for Row {
        clients: c,
        round,
        osler,
        same,
        single,
        rss,
    } in &rows
    {
        let ratio = |x: &Option<f64>| x.map_or("-".into(), |x| format!("{:.2}×", osler / x));
        let val = |x: &Option<f64>| x.map_or("-".into(), |x| format!("{x:.0}"));
        println!(
            "{c:>7}  {round:>5}   {osler:>15.0}   {:>14}   {:>5}   {:>16}   {:>5}   {rss:>6.0} MiB",
            val(same),
            ratio(same),
            val(single),
            ratio(single)
        );
    }
    for &c in &concurrencies {
        let mine: Vec<_> = rows.iter().filter(|r| r.clients == c).collect();
        if let Some(pg) = mine.iter().map(|r| r.same).collect::<Option<Vec<f64>>>() {
            let ratios: Vec<f64> = mine.iter().zip(&pg).map(|(r, p)| r.osler / p).collect();
            let lo = ratios.iter().cloned().fold(f64::MAX, f64::min);
            let hi = ratios.iter().cloned().fold(0.0, f64::max);
            println!(
                "{c} clients: Osler ÷ PostgreSQL same work = {lo:.2}–{hi:.2}× over {} rounds (goal ≥ 1.0×)",
                ratios.len()
            );
        }
    }
    Ok(())
}
