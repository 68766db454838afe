//! `osler demo`: a throw-away Osler with demo users, two sites, synthetic patients and this
//! checkout's first-party plugins, installed from a registry built in its data directory.

use std::io::IsTerminal;
use std::net::SocketAddr;

use anyhow::bail;

use super::{Global, runtime, serve};
use crate::access::Role;
use crate::app::{App, Mode};
use crate::config::Config;
use crate::demo;

pub fn run(
    global: Global,
    listen: Option<SocketAddr>,
    patients: usize,
    with_plugins: bool,
) -> anyhow::Result<i32> {
    let mut config = Config::load(global.config.as_deref())?;
    let _tmp; // removed when the demo stops
    let kept = global.data_dir.is_some();
    match &global.data_dir {
        Some(d) => {
            if crate::storage::Engine::existing(d)?.is_some() {
                bail!(
                    "{} already holds data; the demo needs a new or empty directory",
                    d.display()
                );
            }
            config.data_dir = d.clone();
        }
        None => {
            let t = tempfile::Builder::new().prefix("osler-demo-").tempdir()?;
            config.data_dir = t.path().to_path_buf();
            _tmp = t;
        }
    }
    if let Some(l) = listen {
        config.listen = l;
    }
    // A demo is a development setting: local plugin packages may be installed into it.
    config.plugins.allow_unsigned = true;
    let dir = config.data_dir.clone();
    // The first-party plugins are built, signed and published into a registry inside the
    // demo's data directory, then installed from it exactly as a clinic installs them.
    let published = if with_plugins {
        println!(
            "Building and publishing the first-party plugins (the first time takes a few minutes)…"
        );
        let registry = dir.join("registry");
        match super::registry::first_party(&registry, &dir.join("registry-keys")) {
            Ok((repo, ids)) => {
                config.registries.push(crate::config::RegistryConfig {
                    name: "first-party".into(),
                    url: registry.display().to_string(),
                    root_key: super::registry::root_key(&repo)?,
                });
                Ok(ids)
            }
            Err(e) => Err(e),
        }
    } else {
        Ok(vec![])
    };
    let app = App::open(config, Mode::Create)?;
    let ctx = crate::access::Ctx::system("demo");
    for (id, name) in demo::DEMO_SITES {
        let (_, b) = app.sites.add(id, name)?;
        let mut ev = ctx.event("site.create", "success");
        ev.resource = Some(format!("Site/{id}"));
        app.commit_audited_blocking(&b, ev)?;
    }
    for u in demo::DEMO_USERS {
        let (_, b) = app.accounts.new_user(
            u.username,
            u.password,
            u.roles.to_vec(),
            u.sites.iter().map(|s| s.to_string()).collect(),
            None,
            Some(u.display_name.into()),
        )?;
        let mut ev = ctx.event("user.create", "success");
        ev.resource = Some(format!("User/{}", u.username));
        app.commit_audited_blocking(&b, ev)?;
    }
    let rt = runtime()?;
    let mut generator = demo::Generator::new(2026);
    let list: Vec<_> = (0..patients).map(|_| generator.patient()).collect();
    let first = rt.block_on(async {
        app.patients.import(&ctx, list).await?;
        let first = app.patients.find(&crate::patients::SearchQuery {
            identifier: Some(demo::health_card(0)),
            ..Default::default()
        })?;
        anyhow::Ok(first.patients.into_iter().next())
    })?;
    drop(rt);
    let kiosk_patient = first.as_ref().and_then(demo::KioskPatient::of);
    let first_id = first.and_then(|p| p.id);
    if let Some(pid) = &first_id {
        let (user, pw) = demo::DEMO_PATIENT_USER;
        let (_, b) = app.accounts.new_user(
            user,
            pw,
            vec![Role::Patient],
            vec!["main".into()],
            Some(pid.clone()),
            Some("Demo patient".into()),
        )?;
        let mut ev = ctx.event("user.create", "success");
        ev.resource = Some(format!("User/{user}"));
        app.commit_audited_blocking(&b, ev)?;
    }
    // The first-party plugins, enabled at main only, so that north shows the difference.
    let mut seed = None;
    let plugins = match published {
        _ if !with_plugins => "plugins: none (--no-plugins)".to_string(),
        Ok(ids) => match super::plugin::install_from_registry(&app, &ids, "main") {
            Ok(waiting) => {
                if ids.iter().any(|i| i == "scheduling") {
                    seed = kiosk_patient;
                }
                let enabled: Vec<&str> = ids
                    .iter()
                    .filter(|i| !waiting.contains(i))
                    .map(String::as_str)
                    .collect();
                let mut line = format!(
                    "plugins installed from the local registry {}/registry, enabled at main (not at north): {}",
                    dir.display(),
                    enabled.join(", ")
                );
                if !waiting.is_empty() {
                    line.push_str(&format!(
                        "; installed, not enabled (they take requests from other servers: an \
                         administrator sets up their network first): {}",
                        waiting.join(", ")
                    ));
                }
                line
            }
            Err(e) => format!("plugins: not installed ({e:#})"),
        },
        Err(e) => format!("plugins: not published ({e:#})"),
    };
    let color = std::io::stdout().is_terminal();
    let bold = |s: &str| {
        if color {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    serve(app, move |addr| {
        println!("{}", bold("Osler demo"));
        println!(
            "  data directory: {}{}",
            dir.display(),
            if kept {
                ""
            } else {
                " (removed when the demo stops)"
            }
        );
        println!(
            "  {patients} synthetic patients, sites: main (Main Street Clinic), north (North York Clinic)"
        );
        println!("  {plugins}");
        println!("  open http://{addr}/ and sign in as one of:");
        for u in demo::DEMO_USERS {
            let roles = u
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(",");
            println!("    {:<12} {:<22} {roles}", u.username, u.password);
        }
        if first_id.is_some() {
            let (user, pw) = demo::DEMO_PATIENT_USER;
            println!("    {user:<12} {pw:<22} patient (reads only their own record)");
        }
        println!(
            "  API: curl -s -X POST http://{addr}/api/v1/auth/login -H 'content-type: application/json' \\"
        );
        println!("         -d '{{\"username\":\"drlee\",\"password\":\"osler-demo-physician\"}}'");
        println!("  Stop with Ctrl-C.");
        if let Some(patient) = seed {
            // Set up over the running server's API, as reception would.
            tokio::spawn(async move {
                match demo::seed_schedule(format!("http://{addr}"), patient).await {
                    Ok(line) => println!("  schedule: {line}"),
                    Err(e) => println!("  schedule: not set up ({e:#})"),
                }
            });
        }
    })
}
