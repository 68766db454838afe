//! Plugins in JavaScript and Python against the same plugin in Rust. Run with
//! `cargo bench -p osler-host --bench polyglot` after installing the examples' toolchains
//! (`npm ci --prefix sdk/examples/js-hello`; a virtual environment at
//! `sdk/examples/py-hello/.venv` with `requirements.txt`, as `.ci/run` does). One run prints,
//! for `sdk/examples/js-hello`, `sdk/examples/py-hello` and the Rust plugin of
//! `osler plugin new` (the SDK's template):
//!
//! 1. the build time and the component's size;
//! 2. the host's compile time with a cold cache, and the time to load the compiled component
//!    from the cache (what every start-up after the first does);
//! 3. a new `Store` + instantiation from the cached `InstancePre`;
//! 4. the latency of one JSON route read from kv through the host over loopback HTTP, one
//!    request at a time (p50/p99), and requests/s with `OSLER_BENCH_CONNECTIONS` clients
//!    (default 16) for `OSLER_BENCH_SECONDS` (default 3) each. The routes are
//!    `GET /api/visits` (one kv read, one setting, JSON) and the template's
//!    `GET /api/greeting` (one kv read, JSON).
//!
//! Without a toolchain the benchmark says which and what to run, and measures the rest.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{env_num, percentile, workspace};
use osler_host::access::Role;
use osler_host::config::Config;
use osler_host::plugins::engine::{Limits, Runtime};
use osler_host::plugins::manifest::Capability;
use osler_host::plugins::package::Package;

struct Built {
    id: String,
    package: PathBuf,
    route: &'static str,
    build: Duration,
}

fn run(mut c: Command, what: &str) -> anyhow::Result<()> {
    let out = c.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Build an example with its toolchain and pack it with `osler plugin pack --component`.
fn example(dir: &Path, build: Command, component: &str, out: &Path) -> anyhow::Result<Built> {
    let t = Instant::now();
    run(build, &format!("building {}", dir.display()))?;
    let build_time = t.elapsed();
    let manifest = std::fs::read_to_string(dir.join("plugin.toml"))?;
    let id = osler_host::plugins::manifest::Manifest::parse(&manifest)?.id;
    let package = out.join(format!("{id}.osp"));
    let pkg = Package {
        manifest,
        component: std::fs::read(dir.join(component))?,
        signature: None,
    };
    std::fs::write(&package, pkg.write()?)?;
    Ok(Built {
        id,
        package,
        route: "/api/visits",
        build: build_time,
    })
}

fn javascript(out: &Path) -> anyhow::Result<Built> {
    let dir = workspace().join("sdk/examples/js-hello");
    anyhow::ensure!(
        dir.join("node_modules/.bin/componentize-js").exists(),
        "no componentize-js: run npm ci --prefix sdk/examples/js-hello"
    );
    let mut c = Command::new("npm");
    c.args(["run", "build"]).current_dir(&dir);
    example(&dir, c, "dist/js-hello.wasm", out)
}

fn python(out: &Path) -> anyhow::Result<Built> {
    let dir = workspace().join("sdk/examples/py-hello");
    let tool = dir.join(".venv/bin/componentize-py");
    anyhow::ensure!(
        tool.exists(),
        "no componentize-py: python3 -m venv sdk/examples/py-hello/.venv, then \
         sdk/examples/py-hello/.venv/bin/pip install -r sdk/examples/py-hello/requirements.txt"
    );
    std::fs::create_dir_all(dir.join("dist"))?;
    let mut c = Command::new(tool);
    c.args(["-d", "wit", "-w", "plugin", "componentize", "app"])
        .args(["-o", "dist/py-hello.wasm"])
        .current_dir(&dir);
    example(&dir, c, "dist/py-hello.wasm", out)
}

/// The SDK's template, as `osler plugin new` writes it, built with `osler plugin build`.
fn rust(tmp: &Path) -> anyhow::Result<Built> {
    let dir = tmp.join("rust-hello");
    let osler = env!("CARGO_BIN_EXE_osler");
    let mut c = Command::new(osler);
    c.args(["plugin", "new", "rust-hello", "--dir"]).arg(&dir);
    run(c, "osler plugin new")?;
    // Warm the SDK's build for wasm32-wasip2 first, so the figure is the plugin's own build.
    common::build("plugins/notices")?;
    let t = Instant::now();
    let package = osler_host::cli::plugin::build(
        Some(dir),
        None,
        Some(&workspace().join("target/e2e-plugins")),
    )?;
    Ok(Built {
        id: "rust-hello".into(),
        package,
        route: "/api/greeting",
        build: t.elapsed(),
    })
}

async fn latency(client: &reqwest::Client, url: &str, token: &str, n: usize) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert!(r.status().is_success(), "{url}: {}", r.status());
        r.bytes().await.expect("body");
        lat.push(t.elapsed());
    }
    lat.sort();
    lat
}

async fn throughput(url: &str, token: &str, secs: f64, conns: usize) -> f64 {
    let client = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, url, token, stop) = (
            client.clone(),
            url.to_string(),
            token.to_string(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("request");
                assert!(r.status().is_success(), "{url}: {}", r.status());
                r.bytes().await.expect("body");
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let secs = env_num("OSLER_BENCH_SECONDS", 3.0);
    let conns = env_num("OSLER_BENCH_CONNECTIONS", 16.0) as usize;
    let tmp = tempfile::tempdir()?;

    println!("building the plugins…");
    let mut plugins = Vec::new();
    for (lang, built) in [
        ("Rust", rust(tmp.path())),
        ("JavaScript", javascript(tmp.path())),
        ("Python", python(tmp.path())),
    ] {
        match built {
            Ok(b) => plugins.push((lang, b)),
            Err(e) => println!("{lang}: skipped: {e:#}"),
        }
    }

    println!("\n== build, size, compile ==");
    println!(
        "{:<11} {:>9} {:>11} {:>13} {:>12}",
        "", "build", "component", "cold compile", "cache load"
    );
    for (lang, b) in &plugins {
        let pkg = Package::read(&std::fs::read(&b.package)?).map_err(anyhow::Error::msg)?;
        let sha = osler_registry::meta::sha256_hex(&pkg.component);
        let cache = tmp.path().join(format!("cache-{}", b.id));
        let limits = Limits {
            cache_dir: Some(cache.clone()),
            ..Default::default()
        };
        let t = Instant::now();
        let (_, compiled) = Runtime::new(&limits, tmp.path())?.component(&pkg.component, &sha)?;
        let cold = t.elapsed();
        assert!(compiled);
        // A new engine, as after a restart: the compiled code comes from the cache.
        let runtime = Runtime::new(&limits, tmp.path())?;
        let t = Instant::now();
        let (_, compiled) = runtime.component(&pkg.component, &sha)?;
        let warm = t.elapsed();
        assert!(!compiled);
        println!(
            "{lang:<11} {:>7.1} s {:>7} KiB {:>11.2} s {:>9.1} ms",
            b.build.as_secs_f64(),
            pkg.component.len() / 1024,
            cold.as_secs_f64(),
            warm.as_secs_f64() * 1e3
        );
    }

    let mut config = Config {
        data_dir: tmp.path().join("data"),
        ..Default::default()
    };
    config.plugins.cache_dir = Some(tmp.path().join("cache"));
    let (app, ctx) = common::clinic(config)?;
    common::user(&app, "bench", vec![Role::Physician], Some("Dr. Bench"))?;
    let token = common::session(&app, "bench")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        for (_, b) in &plugins {
            common::install(&app, &ctx, &b.package, &[Capability::Kv]).await?;
        }
        let base = common::serve(osler_host::http::router(app.clone())).await?;
        let client = reqwest::Client::new();
        println!("\n== one JSON route from kv through the host ==");
        println!(
            "{:<11} {:>13} {:>9} {:>9} {:>13}",
            "", "instantiate", "p50", "p99", "req/s"
        );
        for (lang, b) in &plugins {
            let url = format!("{base}/plugins/{}{}", b.id, b.route);
            latency(&client, &url, &token, 50).await;
            let lat = latency(&client, &url, &token, 500).await;
            let rps = throughput(&url, &token, secs, conns).await;
            let inst = app
                .plugins
                .time_instantiation(&b.id, "main", 200)
                .await
                .map_err(anyhow::Error::msg)?;
            println!(
                "{lang:<11} {:>10.1} µs {:>6.2} ms {:>6.2} ms {:>13.0}",
                inst.as_secs_f64() * 1e6,
                percentile(&lat, 0.5).as_secs_f64() * 1e3,
                percentile(&lat, 0.99).as_secs_f64() * 1e3,
                rps
            );
        }
        println!("(req/s with {conns} connections for {secs} s; the client shares the 2 cores)");
        anyhow::Ok(())
    })
}
