//! Chart benchmark: the patient chart page `/patients/{id}` of the real `osler serve` (a
//! release build under `cargo bench`), composed with six plugin panels — encounter notes, CPP
//! and measurements (encounter), allergies and active medications (prescribing), upcoming
//! appointments (scheduling) — and prescribing's banner flag, for a patient with 200 signed
//! notes and 30 medications. Run with `cargo bench -p osler-host --bench chart`. It prints the
//! page's latency (p50, p90, p99, max) over loopback HTTP, one request at a time, as the
//! physician; it never fails on time.
//!
//! | variable                   | default | meaning                              |
//! |----------------------------|---------|--------------------------------------|
//! | `OSLER_BENCH_REQUESTS`     | 500     | chart requests measured              |
//! | `OSLER_BENCH_NOTES`        | 200     | signed encounter notes on the chart  |
//! | `OSLER_BENCH_MEDICATIONS`  | 30      | active medications on the chart      |
//!
//! The client runs in this process, on the same cores as the server.

mod common;

use std::time::{Duration, Instant};

use common::{env_num, percentile};
use osler_host::access::Role;
use serde_json::{Value, json};

/// Thirty seed products of the drug reference (distinct ingredients, no two the same DIN).
const DINS: [&str; 30] = [
    "99000021", "99000031", "99000041", "99000051", "99000052", "99000053", "99000061", "99000062",
    "99000063", "99000064", "99000071", "99000072", "99000073", "99000074", "99000075", "99000081",
    "99000082", "99000083", "99000091", "99000092", "99000093", "99000101", "99000102", "99000103",
    "99000111", "99000121", "99000122", "99000131", "99000132", "99000133",
];

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> anyhow::Result<()> {
    let requests = env_num("OSLER_BENCH_REQUESTS", 500.0) as usize;
    let notes = env_num("OSLER_BENCH_NOTES", 200.0) as usize;
    let meds = (env_num("OSLER_BENCH_MEDICATIONS", 30.0) as usize).min(DINS.len());
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let cache = tmp.path().join("cache");

    println!("building the plugins (release, wasm32-wasip2)…");
    let packages = common::clinic_plugins()
        .into_iter()
        .map(|(dir, caps)| Ok((common::build(dir)?, caps)))
        .collect::<anyhow::Result<Vec<_>>>()?;

    // The clinic, set up in-process, then closed for the server to open.
    let patient = {
        let (app, ctx) = common::clinic_for_server(&data, &cache)?;
        common::user(&app, "bench.doc", vec![Role::Physician], Some("Dr. Bench"))?;
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async {
            let mut g = osler_host::demo::Generator::new(11);
            app.patients.import(&ctx, vec![g.patient()]).await?;
            for (pkg, caps) in &packages {
                common::install(&app, &ctx, pkg, caps).await?;
            }
            anyhow::Ok(())
        })?;
        let page = app.patients.find(&osler_host::patients::SearchQuery {
            count: 1,
            ..Default::default()
        })?;
        page.patients
            .into_iter()
            .find_map(|p| p.id)
            .ok_or_else(|| anyhow::anyhow!("no patient"))?
    };

    let server = common::Server::start(&data, &cache)?;
    let base = server.base.clone();

    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async move {
        let client = reqwest::Client::new();
        let login: Value = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "bench.doc", "password": common::PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let token = login["token"].as_str().unwrap_or_default().to_string();
        let post = |path: String, body: Value| {
            let (client, token) = (client.clone(), token.clone());
            async move {
                let r = client.post(path).bearer_auth(&token).json(&body).send().await?;
                let status = r.status();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                anyhow::ensure!(status.is_success(), "{status}: {v}");
                anyhow::Ok(v)
            }
        };

        println!("loading the chart: {notes} signed notes, {meds} medications…");
        let started = Instant::now();
        let enc = format!("{base}/plugins/encounter/api/patients/{patient}");
        for i in 0..notes {
            let day = time::macros::date!(2018 - 01 - 01) + time::Duration::days(i as i64 * 9);
            let date = format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day());
            let note = post(
                format!("{enc}/notes"),
                json!({"type": "office", "date": date, "format": "soap",
                       "subjective": format!("Visit {i}: follow-up of hypertension and diabetes; feels well, no chest pain."),
                       "objective": "BP 134/82, HR 72. Chest clear. Feet: sensation intact.",
                       "assessment": "Hypertension controlled; type 2 diabetes, HbA1c 7.1%.",
                       "plan": "Continue medications. Labs in three months. Review in three months."}),
            )
            .await?;
            let id = note["id"].as_str().unwrap_or_default().to_string();
            post(format!("{enc}/notes/{id}/sign"), json!({})).await?;
        }
        for (section, text) in [
            ("concerns", "Essential hypertension"),
            ("concerns", "Type 2 diabetes mellitus"),
            ("family", "Father: myocardial infarction at 58"),
            ("risks", "Former smoker, 20 pack-years"),
        ] {
            post(format!("{enc}/cpp/{section}"), json!({"text": text})).await?;
        }
        for (s, d) in [(142, 91), (136, 84), (131, 80)] {
            post(
                format!("{enc}/measurements"),
                json!({"systolic": s, "diastolic": d, "weight": 88, "height": 176}),
            )
            .await?;
        }
        let rx = format!("{base}/plugins/prescribing/api/patients/{patient}");
        for din in DINS.iter().take(meds) {
            post(
                format!("{rx}/medications"),
                json!({"din": din, "sig": "1 tab PO OD", "quantity": "90", "longTerm": true,
                       "prescriber": "Dr. Elsewhere"}),
            )
            .await?;
        }
        post(
            format!("{rx}/allergies"),
            json!({"kind": "ingredient", "allergen": "penicillin", "reaction": "hives",
                   "severity": "moderate"}),
        )
        .await?;
        println!("  loaded in {:.1} s", started.elapsed().as_secs_f64());

        let chart = format!("{base}/patients/{patient}");
        let get = || async {
            let t = Instant::now();
            let r = client.get(&chart).bearer_auth(&token).send().await?;
            let status = r.status();
            let text = r.text().await?;
            anyhow::Ok((t.elapsed(), status, text))
        };
        // What the page shows: every panel rendered, none unavailable.
        let (_, status, html) = get().await?;
        anyhow::ensure!(status.is_success(), "the chart: {status}");
        let panels = html.matches(" data-panel=\"").count();
        anyhow::ensure!(
            !html.contains("Unavailable:"),
            "a panel was unavailable: {html}"
        );
        anyhow::ensure!(
            html.contains("All notes (") && html.contains("Essential hypertension"),
            "the encounter panels are missing: {html}"
        );
        println!(
            "the chart of a patient with {notes} notes and {meds} medications: {panels} panels, {} KiB",
            html.len() / 1024
        );
        for _ in 0..20 {
            get().await?;
        }
        let mut lat = Vec::with_capacity(requests);
        let started = Instant::now();
        for _ in 0..requests {
            let (d, status, _) = get().await?;
            anyhow::ensure!(status.is_success(), "the chart: {status}");
            lat.push(d);
        }
        let secs = started.elapsed().as_secs_f64();
        lat.sort();
        println!(
            "\nGET /patients/{{id}}, {requests} requests one at a time ({:.0}/s):\n  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms (aim: p99 <= 50 ms)",
            requests as f64 / secs,
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.9)),
            ms(percentile(&lat, 0.99)),
            ms(*lat.last().unwrap_or(&Duration::ZERO)),
        );
        anyhow::Ok(())
    });
    drop(server);
    result
}
