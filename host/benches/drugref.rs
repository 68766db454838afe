//! Drug reference and prescribing benchmark. Run with `cargo bench -p osler-host --bench
//! drugref`. One run prints:
//!
//! 1. the time to import an interaction table of 20,000 rows (a generated file in OSCAR's
//!    quoted "Holbrook" CSV, ~2.5 MB) over HTTP into the drug reference plugin: parse and
//!    validate every row, write a new generation in batches, switch to it, delete the old one.
//!    Twice: replacing the small seed table, then replacing a 20,000-row table;
//! 2. the latency (p50, p99) of the interaction check for a patient on 15 medications,
//!    through prescribing → drug reference (`POST /plugins/prescribing/api/patients/{id}/check`:
//!    a 16th drug against the 15, plus the allergy check and posts, over the typed interface),
//!    and of the drug reference's own check of all 15 against each other (105 pairs,
//!    `POST /plugins/drugref/api/interactions`).
//!
//! With `OSLER_HOLBROOK` set to the path of OSCAR's real `interactions-holbrook.txt`
//! (open-osp/Open-Drugref; not part of this repository) it then imports that table too and
//! measures the checks again against it (beside the seed supplement, as a clinic runs).
//!
//! The request body limit is raised to 16 MiB and the plugin deadline to 60 s for the import,
//! as an administrator does for large files (`http.body_limit`, `plugins.timeout_ms`).

mod common;

use std::time::{Duration, Instant};

use common::drugs::{MEDS, holbrook};
use common::percentile;
use osler_host::access::Role;
use osler_host::config::Config;
use osler_host::plugins::manifest::Capability;
use serde_json::json;

const ROWS: usize = 20_000;
const CHECKS: usize = 300;

fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    println!("building the plugins (release, wasm32-wasip2)…");
    let drugref = common::build("plugins/drugref")?;
    let prescribing = common::build("plugins/prescribing")?;

    let mut config = Config {
        data_dir: tmp.path().join("data"),
        ..Default::default()
    };
    config.http.body_limit = 16 << 20;
    config.plugins.timeout_ms = 60_000;
    config.plugins.cache_dir = Some(tmp.path().join("cache"));
    let (app, ctx) = common::clinic(config)?;
    common::user(&app, "bench", vec![Role::Physician, Role::Admin], None)?;
    let token = common::session(&app, "bench")?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        common::install(&app, &ctx, &drugref, &[Capability::Kv]).await?;
        common::install(
            &app,
            &ctx,
            &prescribing,
            &[Capability::Kv, Capability::PatientsRead],
        )
        .await?;
        let base = common::serve(osler_host::http::router(app.clone())).await?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()?;
        let post = |path: String, body: serde_json::Value| {
            let (client, token) = (client.clone(), token.clone());
            let url = format!("{base}{path}");
            async move {
                let r = client.post(&url).bearer_auth(&token).json(&body).send().await?;
                let status = r.status();
                let text = r.text().await?;
                anyhow::ensure!(status.is_success(), "{url}: {status} {text}");
                anyhow::Ok(serde_json::from_str::<serde_json::Value>(&text)?)
            }
        };

        // The seed table loads on first use.
        let r = client
            .get(format!("{base}/plugins/drugref/api/tables"))
            .bearer_auth(&token)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "tables: {}", r.status());

        let file = holbrook(ROWS);
        println!("\n== import of {ROWS} interaction rows ({:.1} MB) ==", file.len() as f64 / 1e6);
        for what in ["replacing the seed table", "replacing a 20,000-row table"] {
            let started = Instant::now();
            let r = client
                .post(format!("{base}/plugins/drugref/api/import/interactions?source=bench"))
                .bearer_auth(&token)
                .header("content-type", "text/csv")
                .body(file.clone())
                .send()
                .await?;
            let status = r.status();
            let text = r.text().await?;
            let took = started.elapsed();
            anyhow::ensure!(status.is_success(), "import: {status} {text}");
            println!("{what:<30}: {:>8.0} ms", took.as_secs_f64() * 1e3);
        }

        // A patient on 15 medications.
        let stem = "612345678";
        let card = format!("{stem}{}", osler_host::patients::validate::hcn_check_digit(stem));
        let p = post(
            "/api/v1/patients".into(),
            json!({"resourceType": "Patient",
                   "identifier": [{"system": osler_host::patients::fhir::ON_HCN_SYSTEM, "value": card}],
                   "name": [{"family": "Bench", "given": ["Fifteen"]}],
                   "gender": "female", "birthDate": "1948-06-01"}),
        )
        .await?;
        let pid = p["id"].as_str().unwrap_or_default().to_string();
        for (din, _) in MEDS {
            post(
                format!("/plugins/prescribing/api/patients/{pid}/medications"),
                json!({"din": din, "sig": "1 tab PO OD", "longTerm": true}),
            )
            .await?;
        }
        let check_path = format!("/plugins/prescribing/api/patients/{pid}/check");
        let new_drug = json!({"din": "99000031"});
        let all15 = json!({"drugs": MEDS.iter().map(|(din, _)| json!({"key": din, "din": din})).collect::<Vec<_>>()});
        let checks = |table: &'static str| {
            let (post, check_path, new_drug, all15) =
                (post, check_path.clone(), new_drug.clone(), all15.clone());
            async move {
                let first = post(check_path.clone(), new_drug.clone()).await?;
                let pairs = post("/plugins/drugref/api/interactions".into(), all15.clone()).await?;
                println!(
                    "\n== interaction check against {table}, patient on 15 medications ({CHECKS} sequential requests each) ==\n\
                     (a 16th drug found {} warning(s) against the 15; the 15 among themselves {} interaction(s))",
                    first["checks"]["warnings"].as_array().map_or(0, Vec::len),
                    pairs["interactions"].as_array().map_or(0, Vec::len)
                );
                for (label, path, body) in [
                    ("prescribing → drugref, new drug vs 15", check_path.clone(), new_drug.clone()),
                    ("drugref alone, all 105 pairs of 15", "/plugins/drugref/api/interactions".to_string(), all15.clone()),
                ] {
                    let mut lat = Vec::with_capacity(CHECKS);
                    for _ in 0..CHECKS {
                        let t = Instant::now();
                        post(path.clone(), body.clone()).await?;
                        lat.push(t.elapsed());
                    }
                    lat.sort();
                    println!(
                        "{label:<40}: p50 {:>7.2} ms   p99 {:>7.2} ms",
                        percentile(&lat, 0.5).as_secs_f64() * 1e3,
                        percentile(&lat, 0.99).as_secs_f64() * 1e3
                    );
                }
                anyhow::Ok(())
            }
        };
        checks("the generated table and the supplement").await?;

        if let Ok(path) = std::env::var("OSLER_HOLBROOK") {
            let file = std::fs::read(&path)?;
            let started = Instant::now();
            let r = client
                .post(format!("{base}/plugins/drugref/api/import/interactions?source=oscar"))
                .bearer_auth(&token)
                .header("content-type", "text/csv; charset=iso-8859-1")
                .body(file)
                .send()
                .await?;
            let status = r.status();
            let text = r.text().await?;
            anyhow::ensure!(status.is_success(), "import: {status} {text}");
            let meta: serde_json::Value = serde_json::from_str(&text)?;
            println!(
                "\n== OSCAR's interaction table ({path}) ==\nimport of {} rows ({} skipped): {:.0} ms",
                meta["rows"],
                meta["skipped"],
                started.elapsed().as_secs_f64() * 1e3
            );
            checks("OSCAR's table and the supplement").await?;
        }
        anyhow::Ok(())
    })?;
    Ok(())
}
