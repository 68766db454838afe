//! Plugin runtime benchmark. Run with `cargo bench -p osler-host --bench plugins`. One run
//! prints:
//!
//! 1. requests/s and p50/p99 latency of a trivial route through a plugin (`GET
//!    /plugins/hostile/ok` → `{"ok":true}`: authentication, site check, a fresh sandbox, the
//!    call, security headers) and of the same route written natively in the host (`GET
//!    /native/ok`: authentication, the same JSON), over loopback HTTP with the same client, and
//!    their ratio;
//! 2. the time to create a sandbox and instantiate a plugin in it (no HTTP);
//! 3. the cost of a plugin-to-plugin interface call, which carries the person behind the
//!    request (the context) into a fresh sandbox of the provider: the same consumer route with
//!    and without one call to `osler:fixtures/echo`, in-process, and the provider's own
//!    instantiation, so that what remains is the host's part (binding lookup, the callee's
//!    context and `via` chain, the dynamic lowering of arguments and results);
//! 4. the real `osler serve`'s start-up time with the plugins installed, with a warm compiled-
//!    code cache and with a cold one.
//!
//! | variable                    | default | meaning                                |
//! |-----------------------------|---------|----------------------------------------|
//! | `OSLER_BENCH_SECONDS`       | 5       | duration of each HTTP run              |
//! | `OSLER_BENCH_CONNECTIONS`   | 16      | concurrent clients                     |
//!
//! The client runs in the same process on the same cores as the server, so absolute figures are
//! lower than a separate load generator would show; the ratio is the point.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use axum::routing::get;
use common::env_num;
use osler_host::access::{Ctx, Role};
use osler_host::config::Config;
use osler_host::http::Caller;
use osler_host::plugins::dispatch::Incoming;
use osler_host::plugins::manifest::Capability;

/// The `osler` binary without this benchmark's own `OSLER_BENCH_*` settings, which its
/// configuration would refuse as unknown keys.
fn osler_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_osler"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OSLER_BENCH_") {
            c.env_remove(&k);
        }
    }
    c
}

fn osler(args: &[&str], data_dir: &Path) {
    let out = osler_command()
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("OSLER_ADMIN_PASSWORD", common::PASSWORD)
        .output()
        .expect("run osler");
    assert!(
        out.status.success(),
        "osler {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Time from spawning `osler serve` to its "listening" line.
fn startup_ms(data_dir: &Path, cache: &Path) -> f64 {
    let started = Instant::now();
    let mut child = osler_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("OSLER_PLUGINS__CACHE_DIR", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start osler");
    let stdout = child.stdout.take().unwrap();
    let listening = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("Osler is listening"));
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "osler serve did not start");
    ms
}

fn main() -> anyhow::Result<()> {
    let secs = env_num("OSLER_BENCH_SECONDS", 5.0);
    let conns = env_num("OSLER_BENCH_CONNECTIONS", 16.0) as usize;
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let cache = tmp.path().join("cache");

    println!("building the plugins (release, wasm32-wasip2)…");
    let hostile = common::build("tests/plugins/hostile")?;
    let notices = common::build("plugins/notices")?;
    let provider = common::build("tests/plugins/echo-provider")?;
    let consumer = common::build("tests/plugins/echo-consumer")?;

    let mut config = Config {
        data_dir: data.clone(),
        ..Default::default()
    };
    config.plugins.cache_dir = Some(cache.clone());
    let (app, ctx) = common::clinic(config)?;
    common::user(&app, "bench", vec![Role::Physician, Role::Admin], None)?;
    let token = common::session(&app, "bench")?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        for pkg in [&hostile, &notices] {
            common::install(&app, &ctx, pkg, &[Capability::Kv]).await?;
        }
        for pkg in [&provider, &consumer] {
            common::install(&app, &ctx, pkg, &[]).await?;
        }
        let router = osler_host::http::router(app.clone()).merge(
            axum::Router::new()
                .route(
                    "/native/ok",
                    get(|_c: Caller| async { axum::Json(serde_json::json!({"ok": true})) }),
                )
                .with_state(app.clone()),
        );
        let base = common::serve(router).await?;
        // Warm up both paths.
        common::get_load(
            format!("{base}/plugins/hostile/ok"),
            token.clone(),
            0.5,
            conns,
        )
        .await;
        common::get_load(format!("{base}/native/ok"), token.clone(), 0.5, conns).await;

        let (prs, pp50, pp99) = common::get_load(
            format!("{base}/plugins/hostile/ok"),
            token.clone(),
            secs,
            conns,
        )
        .await;
        let (nrs, np50, np99) =
            common::get_load(format!("{base}/native/ok"), token.clone(), secs, conns).await;
        println!("\n== trivial route, {conns} connections, {secs} s each ==");
        println!(
            "plugin  : {prs:>9.0} req/s   p50 {:>7.3} ms   p99 {:>7.3} ms",
            pp50.as_secs_f64() * 1e3,
            pp99.as_secs_f64() * 1e3
        );
        println!(
            "native  : {nrs:>9.0} req/s   p50 {:>7.3} ms   p99 {:>7.3} ms",
            np50.as_secs_f64() * 1e3,
            np99.as_secs_f64() * 1e3
        );
        println!(
            "ratio   : plugin throughput is {:.2} of native; p50 latency x{:.2}",
            prs / nrs,
            pp50.as_secs_f64() / np50.as_secs_f64()
        );

        let per = app
            .plugins
            .time_instantiation("hostile", "main", 2000)
            .await
            .map_err(anyhow::Error::msg)?;
        // One whole call in-process (no HTTP): sandbox, instantiate, lower the request, run
        // the guest's router, lift the response.
        let plugin = app
            .plugins
            .enabled("hostile", "main")
            .map_err(|_| anyhow::anyhow!("hostile is not enabled"))?;
        let n = 2000;
        let started = Instant::now();
        for _ in 0..n {
            let req = Incoming {
                method: "GET".into(),
                path: "/ok".into(),
                query: String::new(),
                headers: vec![("accept".into(), "application/json".into())],
                body: vec![],
            };
            let person = common::person("bench", &["physician"], &["patients.read"]);
            let r = app
                .plugins
                .handle(plugin.clone(), "main", Ctx::system("bench"), person, req)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            assert_eq!(r.status, 200);
        }
        let whole = started.elapsed() / n;
        println!("\n== sandbox ==");
        println!(
            "one call in-process, sequential (sandbox + instantiate + the guest's route): {:.1} µs",
            whole.as_secs_f64() * 1e6
        );
        println!(
            "new Store + instantiate (pooling allocator, cached InstancePre): {:.1} µs",
            per.as_secs_f64() * 1e6
        );

        // An interface call: echo-consumer's `/echo` calls echo-provider's `echo` once, for the
        // same person; `/ok` answers without calling.
        let consumer = app
            .plugins
            .enabled("echo-consumer", "main")
            .map_err(|_| anyhow::anyhow!("echo-consumer is not enabled"))?;
        let timed = |path: &'static str, query: &'static str| {
            let (app, consumer) = (app.clone(), consumer.clone());
            async move {
                let started = Instant::now();
                for _ in 0..n {
                    let req = Incoming {
                        method: "GET".into(),
                        path: path.into(),
                        query: query.into(),
                        headers: vec![],
                        body: vec![],
                    };
                    let person = common::person("bench", &["physician"], &["patients.read"]);
                    let r = app
                        .plugins
                        .handle(consumer.clone(), "main", Ctx::system("bench"), person, req)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                }
                anyhow::Ok(started.elapsed() / n)
            }
        };
        let without = timed("/ok", "").await?;
        let with = timed("/echo", "text=hello").await?;
        let callee = app
            .plugins
            .time_instantiation("echo-provider", "main", 2000)
            .await
            .map_err(anyhow::Error::msg)?;
        let call = with.saturating_sub(without);
        println!("\n== an interface call, with the person carried into the provider ==");
        println!(
            "consumer route without / with one call: {:.1} µs / {:.1} µs",
            without.as_secs_f64() * 1e6,
            with.as_secs_f64() * 1e6
        );
        println!(
            "the call: {:.1} µs, of which the provider's new Store + instantiate {:.1} µs; \
             the host's part (binding, context and via, dynamic values): {:.1} µs",
            call.as_secs_f64() * 1e6,
            callee.as_secs_f64() * 1e6,
            call.saturating_sub(callee).as_secs_f64() * 1e6
        );
        anyhow::Ok(())
    })?;
    drop(rt);

    // Start-up, the way a clinic runs it: a data directory with the plugins installed by
    // the command line, then `osler serve` with an empty and then a filled compile cache.
    let clinic = tmp.path().join("clinic");
    osler(&["init"], &clinic);
    for pkg in [&hostile, &notices] {
        osler(
            &["plugin", "install", "--dev", &pkg.display().to_string()],
            &clinic,
        );
    }
    println!("\n== start-up of `osler serve` with 2 plugins installed ==");
    let cold = tmp.path().join("cold-cache");
    let cold_ms = startup_ms(&clinic, &cold);
    let warm_ms = (0..3)
        .map(|_| startup_ms(&clinic, &cold))
        .fold(f64::MAX, f64::min);
    println!("cold compile cache: {cold_ms:>7.1} ms");
    println!("warm compile cache: {warm_ms:>7.1} ms (best of 3)");
    Ok(())
}
