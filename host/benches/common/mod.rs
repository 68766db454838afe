//! What the plugin benchmarks share: building plugins, a clinic with one site and a bench
//! user, installing plugins into it, serving it on loopback, and percentiles. Each benchmark
//! uses part of it.
#![allow(dead_code)]

pub mod drugs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use osler_host::access::{Ctx, Role};
use osler_host::app::{App, Mode};
use osler_host::config::Config;
use osler_host::plugins::manifest::Capability;
use osler_host::plugins::sandbox::Person;

/// The password every bench user gets.
pub const PASSWORD: &str = "bench-password-1234";

pub fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// The disk's floor: 4 KiB written and `fdatasync`ed, again and again for `secs` seconds, in a
/// scratch file in `dir` (so on the data's filesystem); one sample per write and sync.
/// `append` grows the file each time (the file's size is committed too, as for an append-only
/// log); otherwise the same 4 KiB are rewritten (data only).
pub fn fsync_samples(dir: &Path, secs: f64, append: bool) -> anyhow::Result<Vec<Duration>> {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let path = dir.join("fsync-probe.tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let block = [0x5au8; 4096];
    let duration = Duration::from_secs_f64(secs);
    let mut samples = Vec::new();
    let start = std::time::Instant::now();
    while start.elapsed() < duration {
        let t = std::time::Instant::now();
        if append {
            file.write_all(&block)?;
        } else {
            file.write_all_at(&block, 0)?;
        }
        file.sync_data()?;
        samples.push(t.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(samples)
}

/// Build the plugin crate at `dir` (relative to the workspace) into the target directory the
/// end-to-end tests use; the package's path.
pub fn build(dir: &str) -> anyhow::Result<PathBuf> {
    osler_host::cli::plugin::build(
        Some(workspace().join(dir)),
        None,
        Some(&workspace().join("target/e2e-plugins")),
    )
}

/// The clinic's plugins a physician's chart uses, with the capabilities each is granted (the
/// chart and hotpaths benchmarks).
pub fn clinic_plugins() -> Vec<(&'static str, Vec<Capability>)> {
    vec![
        ("plugins/drugref", vec![Capability::Kv]),
        (
            "plugins/prescribing",
            vec![
                Capability::Kv,
                Capability::PatientsRead,
                Capability::PatientData,
                Capability::EventsPublish,
            ],
        ),
        (
            "plugins/encounter",
            vec![
                Capability::PatientData,
                Capability::Kv,
                Capability::Directory,
                Capability::PatientsRead,
            ],
        ),
        (
            "plugins/scheduling",
            vec![
                Capability::Kv,
                Capability::Directory,
                Capability::PatientsRead,
                Capability::EventsPublish,
            ],
        ),
    ]
}

/// Every distinct 2-, 3- and 4-letter prefix of the folded demo names ("tr", "tre", "trem",
/// "gag", "ngu", "li", …), in a stable order: the name searches of the storage and hotpaths
/// benchmarks.
pub fn name_prefixes() -> Vec<String> {
    use osler_host::{demo, patients::fold};
    let mut out: Vec<String> = Vec::new();
    let names = demo::FAMILY
        .iter()
        .chain(demo::GIVEN_F)
        .chain(demo::GIVEN_M);
    for name in names {
        let folded: Vec<char> = fold(name).chars().collect();
        for len in 2..=4.min(folded.len()) {
            let p: String = folded[..len].iter().collect();
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Open a new clinic in `config.data_dir` (development packages allowed) with the site `main`.
pub fn clinic(mut config: Config) -> anyhow::Result<(App, Ctx)> {
    config.plugins.allow_unsigned = true;
    let app = App::open(config, Mode::Create)?;
    let ctx = Ctx::system("bench");
    let (_, b) = app.sites.add("main", "Main")?;
    app.commit_audited_blocking(&b, ctx.event("site.create", "success"))?;
    Ok((app, ctx))
}

/// [`clinic`] in `data`, with compiled plugins cached in `cache`: set up in-process, then
/// dropped for [`Server::start`] to serve the same directories.
pub fn clinic_for_server(data: &Path, cache: &Path) -> anyhow::Result<(App, Ctx)> {
    clinic_for_server_on(data, cache, Default::default())
}

/// [`clinic_for_server`] with its database in `engine`.
pub fn clinic_for_server_on(
    data: &Path,
    cache: &Path,
    engine: osler_host::storage::Engine,
) -> anyhow::Result<(App, Ctx)> {
    clinic(Config {
        data_dir: data.to_path_buf(),
        plugins: osler_host::plugins::engine::Limits {
            cache_dir: Some(cache.to_path_buf()),
            ..Default::default()
        },
        storage: osler_host::config::StorageConfig {
            engine,
            ..Default::default()
        },
        ..Default::default()
    })
}

/// Add a user at `main`.
pub fn user(app: &App, name: &str, roles: Vec<Role>, display: Option<&str>) -> anyhow::Result<()> {
    let (_, b) = app.accounts.new_user(
        name,
        PASSWORD,
        roles,
        vec!["main".into()],
        None,
        display.map(str::to_string),
    )?;
    app.commit_audited_blocking(&b, Ctx::system("bench").event("user.create", "success"))?;
    Ok(())
}

/// A session token for `name` at `main`.
pub fn session(app: &App, name: &str) -> anyhow::Result<String> {
    let u = app
        .accounts
        .get(name)?
        .ok_or_else(|| anyhow::anyhow!("no user {name}"))?;
    let (token, _, b) = app.accounts.new_session(&u, Some("main".into()));
    app.storage.apply(&b)?;
    app.storage.durable_blocking()?;
    Ok(token)
}

/// Install a development package, enable it at `main` and grant `caps` there; its id.
pub async fn install(
    app: &App,
    ctx: &Ctx,
    package: &Path,
    caps: &[Capability],
) -> anyhow::Result<String> {
    let v = app
        .plugins
        .install(ctx, &std::fs::read(package)?, true, false)
        .await?;
    app.plugins.set_enabled(ctx, &v.id, "main", true).await?;
    app.plugins
        .set_grants(ctx, &v.id, "main", caps.iter().copied().collect())
        .await?;
    Ok(v.id)
}

/// Serve `router` on a free loopback port; its base URL.
pub async fn serve(router: axum::Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    Ok(format!("http://{addr}"))
}

/// `GET url` as `token` from `conns` clients for `secs`: requests per second, p50 and p99.
pub async fn get_load(
    url: String,
    token: String,
    secs: f64,
    conns: usize,
) -> (f64, Duration, Duration) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;
    let client = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, url, token, stop) = (client.clone(), url.clone(), token.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = client
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("request");
                assert!(r.status().is_success(), "{url}: {}", r.status());
                r.bytes().await.expect("body");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    (
        all.len() as f64 / elapsed,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    )
}

/// A person at the main site as a plugin sees them.
#[allow(dead_code, reason = "not every bench calls plugins in-process")]
pub fn person(user: &str, roles: &[&str], permissions: &[&str]) -> Person {
    Person {
        user: user.into(),
        display_name: user.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        site: "main".into(),
        site_name: "Main".into(),
        session_csrf: None,
    }
}

/// Resident memory of a process, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// The real `osler serve` (this build's binary) on a free loopback port, killed when dropped.
pub struct Server {
    child: std::process::Child,
    /// e.g. `http://127.0.0.1:41234`.
    pub base: String,
}

impl Server {
    /// Serve the clinic in `data` with compiled plugins cached in `cache`; the benchmark's own
    /// `OSLER_BENCH_*` settings are not passed on, and the server logs warnings only.
    pub fn start(data: &Path, cache: &Path) -> anyhow::Result<Self> {
        Self::start_with(data, cache, &[])
    }

    /// [`Server::start`] with more settings for the server, as `OSLER_*` variables.
    pub fn start_with(data: &Path, cache: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut c = Command::new(env!("CARGO_BIN_EXE_osler"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OSLER_BENCH_") {
                c.env_remove(&k);
            }
        }
        let mut child = c
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("OSLER_PLUGINS__CACHE_DIR", cache)
            .env("OSLER_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = loop {
            match lines.next() {
                Some(line) => {
                    if let Some(a) = line?.split("Osler is listening on ").nth(1) {
                        break a.trim().to_string();
                    }
                }
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    anyhow::bail!("osler serve did not start");
                }
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, base })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
