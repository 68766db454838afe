//! Storage benchmark: how fast Osler writes durably and searches, next to what the disk itself
//! can do.
//!
//! Run with `cargo bench -p osler-host --bench storage` (release profile). One run prints:
//!
//! 1. the disk's own fsync rate, measured on the filesystem that holds the data directory;
//! 2. durable patient creates per second through `Patients::create` with 1 and with 64
//!    concurrent writers, their ratio to the fsync rate, and the latency of one create;
//! 3. name-prefix search latency (`Patients::find`, index only, and `Patients::search`, which
//!    also appends an audit entry and waits for it to be durable) with 100,000 and with
//!    1,000,000 patients, and how fast the patients were bulk-loaded with `Patients::import`.
//!
//! Environment variables shrink or redirect the run:
//!
//! | variable                       | default                 | meaning                          |
//! |--------------------------------|-------------------------|----------------------------------|
//! | `OSLER_BENCH_DIR`              | the system temp dir     | where the temporary data dir goes |
//! | `OSLER_BENCH_MAX_PATIENTS`     | 1000000                 | largest database searched        |
//! | `OSLER_BENCH_SECONDS`          | 5                       | duration of each create run      |
//! | `OSLER_BENCH_FSYNC_SECONDS`    | 2                       | duration of the raw fsync loop   |
//! | `OSLER_BENCH_WRITERS`          | 1,64                    | concurrencies of the create runs |
//! | `OSLER_BENCH_FIND_QUERIES`     | 3000                    | `find` calls per database size   |
//! | `OSLER_BENCH_SEARCH_QUERIES`   | 300                     | `search` calls per database size |
//!
//! Tracing is deliberately left off (no subscriber is installed), as logging would be part of
//! what is measured.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use osler_host::access::{Ctx, Role};
use osler_host::app::{App, Mode};
use osler_host::config::Config;
use osler_host::demo::Generator;
use osler_host::patients::{Patient, Patients, SearchQuery};

/// The first database size searched; the second is `OSLER_BENCH_MAX_PATIENTS`.
const SMALL_DB: usize = 100_000;
/// Patients generated and handed to one `Patients::import` call (which itself commits them
/// in atomic batches of 2,000 with one fsync each).
const IMPORT_CHUNK: usize = 10_000;
/// Health-card numbering ranges (`Generator::with_offset`), kept apart so that no two loads
/// produce the same card (identifiers are unique). Cards are a bijection on 0..900,000,000.
const BULK_OFFSET: u64 = 10_000_000;
const CREATE_OFFSET: u64 = 100_000_000;
/// Card numbers reserved for one writer (and the most creates it makes).
const PER_WRITER: u64 = 100_000;

/// What the environment asked for.
struct Settings {
    base_dir: PathBuf,
    max_patients: usize,
    create_secs: f64,
    fsync_secs: f64,
    writers: Vec<usize>,
    find_queries: usize,
    search_queries: usize,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a valid value")),
        Err(_) => Ok(default),
    }
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let writers = std::env::var("OSLER_BENCH_WRITERS").unwrap_or_else(|_| "1,64".into());
        let writers = writers
            .split(',')
            .map(|w| w.trim().parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|ws| ws.iter().all(|w| *w > 0))
            .context("OSLER_BENCH_WRITERS must be a comma-separated list of positive numbers")?;
        Ok(Self {
            base_dir: std::env::var_os("OSLER_BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
            max_patients: env_or("OSLER_BENCH_MAX_PATIENTS", 1_000_000)?,
            create_secs: env_or("OSLER_BENCH_SECONDS", 5.0)?,
            fsync_secs: env_or("OSLER_BENCH_FSYNC_SECONDS", 2.0)?,
            writers,
            find_queries: env_or("OSLER_BENCH_FIND_QUERIES", 3000)?,
            search_queries: env_or("OSLER_BENCH_SEARCH_QUERIES", 300)?,
        })
    }

    /// The database sizes to search: 100,000 and the maximum (or just the maximum if smaller).
    fn sizes(&self) -> Vec<usize> {
        let mut s: Vec<usize> = vec![SMALL_DB, self.max_patients]
            .into_iter()
            .filter(|n| *n <= self.max_patients && *n > 0)
            .collect();
        s.dedup();
        s
    }
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    anyhow::ensure!(
        settings.max_patients as u64 <= CREATE_OFFSET - BULK_OFFSET - 1000,
        "OSLER_BENCH_MAX_PATIENTS may be at most {}",
        CREATE_OFFSET - BULK_OFFSET - 1000
    );
    let total_writers: usize = settings.writers.iter().sum();
    anyhow::ensure!(
        CREATE_OFFSET + total_writers as u64 * PER_WRITER <= 900_000_000,
        "too many writers in OSLER_BENCH_WRITERS"
    );
    let bench_start = Instant::now();

    // A fresh directory, removed when `tmp` is dropped at the end of the run.
    std::fs::create_dir_all(&settings.base_dir)
        .with_context(|| format!("cannot create {}", settings.base_dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix("osler-bench-")
        .tempdir_in(&settings.base_dir)?;
    let data_dir = tmp.path().join("data");
    std::fs::create_dir_all(&data_dir)?;

    println!("Osler storage benchmark");
    println!("=======================");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("cores (available_parallelism) : {cores}");
    println!("data dir                      : {}", data_dir.display());
    if let Some((mount, fs, dev)) = filesystem_of(&data_dir) {
        println!("filesystem                    : {fs} on {dev} (mounted at {mount})");
    }
    println!(
        "settings                      : create runs {}s, writers {:?}, fsync loop {}s, \
         sizes {:?}, {} finds / {} searches per size",
        settings.create_secs,
        settings.writers,
        settings.fsync_secs,
        settings.sizes(),
        settings.find_queries,
        settings.search_queries
    );
    println!();

    // ── 1. The disk's own fsync rate ─────────────────────────────────────────────────────
    println!("1. Raw disk: write 4 KiB + fdatasync, same filesystem as the data dir");
    let fsync = fsync_rate(&data_dir, settings.fsync_secs, FsyncMode::Append)?;
    let fsync_overwrite = fsync_rate(&data_dir, settings.fsync_secs, FsyncMode::Overwrite)?;
    println!(
        "   append (file grows, as the audit log does) : {:>8.0} fsyncs/s  (p50 {}, p99 {})",
        fsync.per_sec,
        fmt_dur(fsync.p50),
        fmt_dur(fsync.p99)
    );
    println!(
        "   overwrite the same 4 KiB block             : {:>8.0} fsyncs/s  (p50 {}, p99 {})",
        fsync_overwrite.per_sec,
        fmt_dur(fsync_overwrite.p50),
        fmt_dur(fsync_overwrite.p99)
    );
    println!("   (ratios below are to the append rate)");
    println!();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let config = Config {
        data_dir: data_dir.clone(),
        ..Config::default()
    };
    let app = App::open(config, Mode::Create)?;
    let ctx = physician();

    // ── 2. Durable creates ───────────────────────────────────────────────────────────────
    println!(
        "2. Durable creates through Patients::create (multi-thread tokio runtime, {} workers)",
        cores
    );
    // Warm up: open every tree and fault in the code paths once.
    runtime.block_on(async {
        let mut g = Generator::with_offset(99, CREATE_OFFSET - 1000);
        for _ in 0..20 {
            app.patients.create(&ctx, g.patient()).await?;
        }
        anyhow::Ok(())
    })?;
    println!(
        "   {:>7}  {:>8}  {:>10}  {:>10}  {:>10}  {:>10}  {:>9}",
        "writers", "creates", "creates/s", "÷ fsync/s", "p50", "p99", "max"
    );
    // Writers are numbered across runs so that each has its own range of health cards.
    let mut first_writer = 0;
    for &writers in &settings.writers {
        let r = runtime.block_on(create_run(
            &app.patients,
            &ctx,
            first_writer..first_writer + writers,
            Duration::from_secs_f64(settings.create_secs),
        ))?;
        first_writer += writers;
        println!(
            "   {:>7}  {:>8}  {:>10.0}  {:>10.2}  {:>10}  {:>10}  {:>9}",
            writers,
            r.count,
            r.per_sec,
            r.per_sec / fsync.per_sec,
            fmt_dur(r.lat.p50),
            fmt_dur(r.lat.p99),
            fmt_dur(r.lat.max)
        );
    }
    println!();

    // ── 3. Bulk load and search ──────────────────────────────────────────────────────────
    println!("3. Bulk load (Patients::import, 2,000 per atomic batch, one fsync each) and search");
    let prefixes = common::name_prefixes();
    println!(
        "   {} distinct 2–4-letter prefixes of folded demo names, e.g. {}",
        prefixes.len(),
        prefixes
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut results = Vec::new();
    for (i, &size) in settings.sizes().iter().enumerate() {
        // The first load numbers health cards from 0, the next from BULK_OFFSET; the creates
        // above used CREATE_OFFSET and up. Each load tops the database up to `size`.
        let mut g = Generator::with_offset(2024 + i as u64, BULK_OFFSET * i as u64);
        let have = app.patients.count();
        let load = runtime.block_on(bulk_load(
            &app.patients,
            &ctx,
            &mut g,
            size.saturating_sub(have),
        ))?;
        println!(
            "   loaded {:>9} patients in {:>7.1}s = {:>7.0} patients/s (import only {:.0}/s); \
             database now {} patients",
            load.count,
            load.wall.as_secs_f64(),
            load.count as f64 / load.wall.as_secs_f64().max(1e-9),
            load.count as f64 / load.in_import.as_secs_f64().max(1e-9),
            app.patients.count()
        );
        let mut rng = StdRng::seed_from_u64(size as u64);
        let find = find_latency(&app.patients, &prefixes, settings.find_queries, &mut rng)?;
        let search = runtime.block_on(search_latency(
            &app.patients,
            &ctx,
            &prefixes,
            settings.search_queries,
            &mut rng,
        ))?;
        results.push((app.patients.count(), find, search));
    }
    println!();
    println!(
        "   {:>9}  {:<34}  {:>6}  {:>10}  {:>10}  {:>10}  {:>8}",
        "patients", "operation", "n", "p50", "p99", "max", "hits/q"
    );
    for (n, find, search) in &results {
        for (label, r) in [
            ("find   (index only)", find),
            ("search (+ audit entry, durable)", search),
        ] {
            println!(
                "   {:>9}  {:<34}  {:>6}  {:>10}  {:>10}  {:>10}  {:>8.1}",
                n,
                label,
                r.lat.n,
                fmt_dur(r.lat.p50),
                fmt_dur(r.lat.p99),
                fmt_dur(r.lat.max),
                r.mean_hits
            );
        }
    }
    println!();

    drop(app);
    drop(runtime);
    let removing = Instant::now();
    tmp.close()?;
    println!(
        "total wall time {:.1}s (removing the data dir took {:.1}s)",
        bench_start.elapsed().as_secs_f64(),
        removing.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A physician at the main site: allowed to create and search patients.
fn physician() -> Ctx {
    Ctx::person(
        "bench.physician",
        vec![Role::Physician],
        Some("main".into()),
        None,
        Some("bench".into()),
    )
}

// ── Latency statistics ───────────────────────────────────────────────────────────────────

#[derive(Clone, Copy, Default)]
struct Latency {
    n: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// Nearest-rank percentiles of a sample.
fn latency(mut samples: Vec<Duration>) -> Latency {
    if samples.is_empty() {
        return Latency::default();
    }
    samples.sort_unstable();
    let pct =
        |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    Latency {
        n: samples.len(),
        p50: pct(0.50),
        p99: pct(0.99),
        max: *samples.last().expect("non-empty"),
    }
}

/// Microseconds below 10 ms, milliseconds above.
fn fmt_dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

// ── 1. fsync rate ────────────────────────────────────────────────────────────────────────

#[derive(Clone, Copy, PartialEq)]
enum FsyncMode {
    /// Append 4 KiB each time: the file grows, so fdatasync also commits its new size (what
    /// an append-only log such as the audit trail pays).
    Append,
    /// Rewrite the same 4 KiB at offset 0: data only.
    Overwrite,
}

struct FsyncResult {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

/// Write 4 KiB and `File::sync_data` (fdatasync) in a loop for `secs` seconds, in a scratch
/// file next to the data directory (so on the same filesystem).
fn fsync_rate(data_dir: &Path, secs: f64, mode: FsyncMode) -> anyhow::Result<FsyncResult> {
    let start = Instant::now();
    let samples = common::fsync_samples(data_dir, secs, mode == FsyncMode::Append)?;
    let elapsed = start.elapsed();
    let n = samples.len();
    let lat = latency(samples);
    Ok(FsyncResult {
        per_sec: n as f64 / elapsed.as_secs_f64(),
        p50: lat.p50,
        p99: lat.p99,
    })
}

// ── 2. Durable creates ───────────────────────────────────────────────────────────────────

struct CreateResult {
    count: usize,
    per_sec: f64,
    lat: Latency,
}

/// One task per writer number in `writers`, each creating patients back to back until
/// `duration` has passed; every `create` returns only once its record and audit entry are
/// durable.
async fn create_run(
    patients: &Patients,
    ctx: &Ctx,
    writers: std::ops::Range<usize>,
    duration: Duration,
) -> anyhow::Result<CreateResult> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for w in writers {
        let (patients, ctx) = (patients.clone(), ctx.clone());
        // Each writer numbers health cards in its own range: no duplicate-identifier conflicts.
        let offset = CREATE_OFFSET + w as u64 * PER_WRITER;
        let mut g = Generator::with_offset(1000 + w as u64, offset);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline && (lat.len() as u64) < PER_WRITER {
                let p = g.patient();
                let t = Instant::now();
                patients.create(&ctx, p).await?;
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    // The last create may finish a little after the deadline: divide by the real time.
    let elapsed = start.elapsed();
    Ok(CreateResult {
        count: all.len(),
        per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        lat: latency(all),
    })
}

// ── 3. Bulk load and search ──────────────────────────────────────────────────────────────

struct LoadResult {
    count: usize,
    wall: Duration,
    in_import: Duration,
}

/// Add `n` generated patients with `Patients::import`, `IMPORT_CHUNK` at a time.
async fn bulk_load(
    patients: &Patients,
    ctx: &Ctx,
    g: &mut Generator,
    n: usize,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let mut in_import = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let chunk: Vec<Patient> = (0..IMPORT_CHUNK.min(n - done))
            .map(|_| g.patient())
            .collect();
        let t = Instant::now();
        done += patients.import(ctx, chunk).await?;
        in_import += t.elapsed();
    }
    Ok(LoadResult {
        count: done,
        wall: start.elapsed(),
        in_import,
    })
}

struct SearchResult {
    lat: Latency,
    /// Patients returned per query, on average (at most the page size, 20).
    mean_hits: f64,
}

fn query(prefix: &str) -> SearchQuery {
    SearchQuery {
        name: Some(prefix.to_string()),
        count: 20,
        ..Default::default()
    }
}

/// `Patients::find` (indexes only, no audit) for `n` random prefixes, one after another.
fn find_latency(
    patients: &Patients,
    prefixes: &[String],
    n: usize,
    rng: &mut StdRng,
) -> anyhow::Result<SearchResult> {
    let (mut lat, mut hits) = (Vec::with_capacity(n), 0usize);
    for _ in 0..n {
        let q = query(&prefixes[rng.random_range(0..prefixes.len())]);
        let t = Instant::now();
        let page = patients.find(&q)?;
        lat.push(t.elapsed());
        hits += page.patients.len();
    }
    Ok(SearchResult {
        lat: latency(lat),
        mean_hits: hits as f64 / n.max(1) as f64,
    })
}

/// `Patients::search` (the same plus a durable audit entry naming the patients returned) for
/// `n` random prefixes, one after another.
async fn search_latency(
    patients: &Patients,
    ctx: &Ctx,
    prefixes: &[String],
    n: usize,
    rng: &mut StdRng,
) -> anyhow::Result<SearchResult> {
    let (mut lat, mut hits) = (Vec::with_capacity(n), 0usize);
    for _ in 0..n {
        let q = query(&prefixes[rng.random_range(0..prefixes.len())]);
        let t = Instant::now();
        let page = patients.search(ctx, &q).await?;
        lat.push(t.elapsed());
        hits += page.patients.len();
    }
    Ok(SearchResult {
        lat: latency(lat),
        mean_hits: hits as f64 / n.max(1) as f64,
    })
}

// ── Machine facts ────────────────────────────────────────────────────────────────────────

/// The mount (mount point, filesystem type, device) holding `path`, from /proc/self/mounts:
/// the longest mount point that is a prefix of the path. Best effort; `None` off Linux.
fn filesystem_of(path: &Path) -> Option<(String, String, String)> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3).then(|| (f[1].to_string(), f[2].to_string(), f[0].to_string()))
        })
        .filter(|(mount, ..)| path.starts_with(mount))
        .max_by_key(|(mount, ..)| mount.len())
}
