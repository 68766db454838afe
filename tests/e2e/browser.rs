//! The browser suite: `tests/browser/clinic.mjs` drives Debian's Chromium through
//! playwright-core against a real `osler demo` with the scheduling, kiosk, drug reference,
//! prescribing and encounter plugins enabled at `main` (and the `faulty` fixture installed,
//! for the chart's failing panels). Screenshots of every step are kept in
//! `target/browser/` (look at them: they are what a clinic sees).
//!
//! Needs Node.js, `npm ci --prefix tests/browser` and Chromium (`apt-get install chromium`;
//! another binary through `OSLER_CHROMIUM`); `.ci/run` installs them.

use std::path::Path;

use crate::support::{Sandbox, demo, package, plugin_env, workspace};

#[tokio::test]
async fn a_clinic_morning_in_chromium() {
    ready();

    let sb = Sandbox::new();
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(30, &env);
    let api = server.api();
    let admin = api.login(demo::ADMIN.0, demo::ADMIN.1).await;
    for (dir, caps) in [
        (
            "plugins/scheduling",
            &["kv", "directory", "patients.read", "events.publish"][..],
        ),
        ("plugins/kiosk", &["kv", "patients.match"][..]),
        ("plugins/drugref", &["kv"][..]),
        (
            "plugins/prescribing",
            &["kv", "patients.read", "patient-data", "events.publish"][..],
        ),
        (
            "plugins/encounter",
            &["patient-data", "kv", "directory", "patients.read"][..],
        ),
    ] {
        api.install_enabled(&admin, &package(dir), "main", caps)
            .await;
    }
    // Chart panels that fail, installed but not enabled: the script's administrator enables
    // it, the physician sees its panels "unavailable", and it is disabled again.
    api.install(&admin, &package("tests/plugins/faulty"))
        .await
        .expect(201);

    run_script("clinic.mjs", &server.base, "browser", &[]).await;
}

/// Checks that the browser suite can run here (playwright-core installed, a Chromium), with a
/// message saying what to install when not.
pub fn ready() {
    let dir = workspace().join("tests").join("browser");
    assert!(
        dir.join("node_modules").join("playwright-core").is_dir(),
        "the browser tests are not installed: run `npm ci --prefix tests/browser` in the \
         workspace root (needs Node.js), then run the tests again"
    );
    let chromium = chromium();
    assert!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: install Debian's (`apt-get install chromium`) or point \
         OSLER_CHROMIUM at one"
    );
}

fn chromium() -> String {
    std::env::var("OSLER_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Runs `tests/browser/<script> <base> <screenshot dir> <args…>` with Node.js and asserts that
/// every step passed; screenshots go to `target/<shots>/`.
pub async fn run_script(script: &str, base: &str, shots: &str, args: &[&str]) {
    let shots = workspace().join("target").join(shots);
    let out = tokio::process::Command::new("node")
        .arg(workspace().join("tests").join("browser").join(script))
        .arg(base)
        .arg(&shots)
        .args(args)
        .env("OSLER_CHROMIUM", chromium())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run `node` ({e}): install Node.js"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "the browser script {script} failed ({}); screenshots in {}:\n{text}",
        out.status,
        shots.display()
    );
    assert!(text.contains("all steps passed"), "{text}");
}
