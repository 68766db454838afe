//! The `osler` command line.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::access::Role;
use crate::app::{App, Mode};
use crate::auth::random_token;
use crate::config::Config;
use crate::demo;

/// Osler: an electronic medical record for clinics.
#[derive(Parser, Debug)]
#[command(name = "osler", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Data directory (default ./osler-data).
    #[arg(long, global = true, env = "OSLER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (default ./osler.toml if present).
    #[arg(long, global = true, env = "OSLER_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API and pages.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, env = "OSLER_LISTEN")]
        listen: Option<SocketAddr>,
        /// Accept unsigned development plugin packages over the admin API (each install is
        /// marked as such and audited).
        #[arg(long)]
        dev_plugins: bool,
    },
    /// Create a data directory and its first administrator.
    Init {
        /// User name of the first administrator.
        #[arg(long, default_value = "admin")]
        admin_user: String,
        /// Read the administrator's password from this file (else OSLER_ADMIN_PASSWORD, else
        /// one is generated and printed once).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Id of the first site.
        #[arg(long, default_value = "main")]
        site: String,
        /// Name of the first site.
        #[arg(long, default_value = "Main site")]
        site_name: String,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage sites.
    #[command(subcommand)]
    Site(SiteCmd),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Install, enable and manage plugins; create, build and sign your own.
    #[command(subcommand)]
    Plugin(crate::plugins::cli::PluginCmd),
    /// Signing keys for publishers and registries.
    #[command(subcommand)]
    Keys(crate::plugins::publish::KeysCmd),
    /// Create and maintain a plugin registry (static, signed files).
    #[command(subcommand)]
    Registry(crate::plugins::publish::RegistryCmd),
    /// Start a throw-away Osler with demo users, two sites and synthetic patients.
    Demo {
        /// Address to listen on.
        #[arg(long, env = "OSLER_LISTEN")]
        listen: Option<SocketAddr>,
        /// How many synthetic patients to generate.
        #[arg(long, default_value_t = 300)]
        patients: usize,
        /// Do not build and enable this checkout's first-party plugins.
        #[arg(long)]
        no_plugins: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user.
    Add {
        username: String,
        /// Role(s): admin, physician, nurse, reception, kiosk, researcher, patient.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        /// Site(s) the user belongs to.
        #[arg(long = "site", required = true)]
        sites: Vec<String>,
        /// Read the password from this file (else one is generated and printed once).
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// For a patient user: the id of their patient record.
        #[arg(long)]
        patient: Option<String>,
        /// Name shown in pages, e.g. "Dr. Lee".
        #[arg(long)]
        name: Option<String>,
    },
    /// List users.
    List,
    /// Disable a user; their sessions end at once.
    Disable { username: String },
    /// Set a user's password.
    Passwd {
        username: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SiteCmd {
    /// Add a site.
    Add {
        id: String,
        #[arg(long)]
        name: String,
    },
    /// List sites.
    List,
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the log's hash chain against its signed checkpoints, reading only (it never
    /// changes a byte); exit code 1 at the first problem.
    Verify {
        /// The clinic's checkpoint key, `ed25519:…`, as `osler init` printed it (default:
        /// `[audit] public_key`, else the key stored in the data directory, which is only as
        /// trustworthy as the directory).
        #[arg(long)]
        key: Option<String>,
        /// Also check against this file of checkpoints (a copy from the second location);
        /// may be repeated. A file copy named by `[audit] checkpoint_copy` is read anyway.
        #[arg(long = "checkpoints")]
        checkpoints: Vec<PathBuf>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| {
        format!(
            "unknown role '{s}'; roles are: {}",
            Role::ALL.map(|r| r.as_str()).join(", ")
        )
    })
}

fn read_password(file: &Option<PathBuf>, env: Option<&str>) -> anyhow::Result<(String, bool)> {
    if let Some(f) = file {
        let s = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read password file {}", f.display()))?;
        let s = s.trim_end_matches(['\n', '\r']).to_string();
        return Ok((s, false));
    }
    if let Some(var) = env
        && let Ok(s) = std::env::var(var)
        && !s.is_empty()
    {
        return Ok((s, false));
    }
    Ok((random_token()[..20].to_string(), true))
}

fn load_config(g: &Global) -> anyhow::Result<Config> {
    let mut c = Config::load(g.config.as_deref())?;
    if let Some(d) = &g.data_dir {
        c.data_dir = d.clone();
    }
    Ok(c)
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve {
            listen,
            dev_plugins,
        } => {
            let mut config = load_config(&cli.global)?;
            if let Some(l) = listen {
                config.listen = l;
            }
            if dev_plugins {
                config.plugins.allow_unsigned = true;
            }
            let app = App::open(config, Mode::Existing)?;
            if let Some(k) = &app.audit_key_created {
                println!(
                    "This data directory had no audit checkpoint key; created {} (the trail \
                     records it). Keep this public key away from this server (e.g. `public_key` \
                     under [audit] in osler.toml); `osler audit verify --key {}` proves the \
                     trail against it.",
                    k.key, k.key
                );
            }
            serve(app, |_| {})
        }
        Command::Init {
            admin_user,
            password_file,
            site,
            site_name,
        } => {
            let config = load_config(&cli.global)?;
            let dir = config.data_dir.clone();
            let app = App::open(config, Mode::Create)?;
            if !app.accounts.list()?.is_empty() {
                bail!(
                    "{} is already initialised; add users with `osler user add`",
                    dir.display()
                );
            }
            let (password, generated) =
                read_password(&password_file, Some("OSLER_ADMIN_PASSWORD"))?;
            let ctx = App::cli_ctx();
            if app.sites.get(&site)?.is_none() {
                let (_, b) = app.sites.add(&site, &site_name)?;
                let mut ev = ctx.event("site.create", "success");
                ev.resource = Some(format!("Site/{site}"));
                app.commit_audited_blocking(&b, ev)?;
            }
            let (_, b) = app.accounts.new_user(
                &admin_user,
                &password,
                vec![Role::Admin],
                vec![site.clone()],
                None,
                None,
            )?;
            let mut ev = ctx.event("user.create", "success");
            ev.resource = Some(format!("User/{admin_user}"));
            app.commit_audited_blocking(&b, ev)?;
            println!("Initialised {} with site '{site}'.", dir.display());
            if let Some(k) = &app.audit_key_created {
                println!(
                    "Audit checkpoints are signed with {}\n  Keep this public key away from \
                     this server (e.g. `public_key` under [audit] in an osler.toml kept \
                     elsewhere, or on paper):\n  `osler audit verify --key {}` proves the trail \
                     against it.",
                    k.key, k.key
                );
            }
            if generated {
                println!("Administrator: {admin_user}\nPassword (shown once): {password}");
            } else {
                println!("Administrator: {admin_user}");
            }
            Ok(0)
        }
        Command::User(cmd) => user_cmd(load_config(&cli.global)?, cmd),
        Command::Site(cmd) => {
            let app = App::open(load_config(&cli.global)?, Mode::Existing)?;
            match cmd {
                SiteCmd::Add { id, name } => {
                    let (s, b) = app.sites.add(&id, &name)?;
                    let mut ev = App::cli_ctx().event("site.create", "success");
                    ev.resource = Some(format!("Site/{id}"));
                    app.commit_audited_blocking(&b, ev)?;
                    println!("Added site {} ({})", s.id, s.name);
                }
                SiteCmd::List => {
                    for s in app.sites.list()? {
                        println!("{}\t{}", s.id, s.name);
                    }
                }
            }
            Ok(0)
        }
        Command::Audit(AuditCmd::Verify { key, checkpoints }) => {
            // Read-only: the data directory is not opened as a database (which would replay
            // its write-ahead log into the files being checked).
            let config = load_config(&cli.global)?;
            let key = match key.as_deref().or(config.audit.public_key.as_deref()) {
                Some(k) => Some(osler_registry::PublicKey::parse(k)?),
                None => None,
            };
            let mut more = checkpoints;
            if let Some(copy) = config.audit.checkpoint_copy.as_deref()
                && !copy.starts_with("http://")
                && !copy.starts_with("https://")
            {
                more.push(PathBuf::from(copy));
            }
            let v = crate::audit::verify(
                &config.data_dir,
                &crate::audit::VerifyOptions {
                    key,
                    more_checkpoints: more,
                    write_ahead_log: true,
                    ..Default::default()
                },
            )?;
            if v.ok {
                println!("audit chain intact: {} entries verified", v.entries);
            } else {
                println!(
                    "audit chain BROKEN{}: {}",
                    v.broken_at
                        .map(|n| format!(" at entry {n}"))
                        .unwrap_or_default(),
                    v.problem.clone().unwrap_or_default()
                );
                println!("{} entries before it verified", v.entries);
            }
            if let Some(at) = &v.signed_at {
                println!(
                    "signed checkpoints: {}, the newest covering {} entries (signed {at} by {})",
                    v.checkpoints,
                    v.signed_entries,
                    v.key.as_deref().unwrap_or("?")
                );
            }
            for n in &v.notes {
                println!("note: {n}");
            }
            Ok(if v.ok { 0 } else { 1 })
        }
        Command::Demo {
            listen,
            patients,
            no_plugins,
        } => demo_cmd(cli.global, listen, patients, !no_plugins),
        Command::Plugin(cmd) => crate::plugins::cli::run(|| load_config(&cli.global), cmd),
        Command::Keys(cmd) => crate::plugins::publish::keys(cmd),
        Command::Registry(cmd) => crate::plugins::publish::registry(cmd),
    }
}

fn user_cmd(config: Config, cmd: UserCmd) -> anyhow::Result<i32> {
    let app = App::open(config, Mode::Existing)?;
    let ctx = App::cli_ctx();
    match cmd {
        UserCmd::Add {
            username,
            roles,
            sites,
            password_file,
            patient,
            name,
        } => {
            if let Some(p) = &patient
                && app
                    .storage
                    .get(crate::storage::Tree::Patients, p.as_bytes())?
                    .is_none()
            {
                bail!("no patient with id {p}");
            }
            let (password, generated) = read_password(&password_file, None)?;
            let (u, b) = app
                .accounts
                .new_user(&username, &password, roles, sites, patient, name)?;
            let mut ev = ctx.event("user.create", "success");
            ev.resource = Some(format!("User/{username}"));
            app.commit_audited_blocking(&b, ev)?;
            println!(
                "Added {} ({}) at {}",
                u.username,
                u.roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                u.sites.join(", ")
            );
            if generated {
                println!("Password (shown once): {password}");
            }
        }
        UserCmd::List => {
            for u in app.accounts.list()? {
                println!(
                    "{}\t{}\t{}\t{}",
                    u.username,
                    u.roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    u.sites.join(","),
                    if u.disabled { "disabled" } else { "active" }
                );
            }
        }
        UserCmd::Disable { username } => {
            let (_, b) = app.accounts.change_user(&username, |u| {
                u.disabled = true;
                Ok(())
            })?;
            let mut ev = ctx.event("user.disable", "success");
            ev.resource = Some(format!("User/{username}"));
            app.commit_audited_blocking(&b, ev)?;
            println!("Disabled {username}; their sessions no longer work.");
        }
        UserCmd::Passwd {
            username,
            password_file,
        } => {
            let (password, generated) = read_password(&password_file, None)?;
            crate::auth::validate_password(&password)?;
            let hash = crate::auth::hash_password(&password);
            let (_, b) = app.accounts.change_user(&username, |u| {
                u.password_hash = hash;
                Ok(())
            })?;
            let mut ev = ctx.event("user.password", "success");
            ev.resource = Some(format!("User/{username}"));
            app.commit_audited_blocking(&b, ev)?;
            println!("Password of {username} changed.");
            if generated {
                println!("New password (shown once): {password}");
            }
        }
    }
    Ok(0)
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Bind, announce, and serve until a signal.
fn serve(app: App, announce: impl FnOnce(SocketAddr)) -> anyhow::Result<i32> {
    crate::memory::start_trimming();
    let started = std::time::Instant::now();
    let (ready, compiled, failed) = app.plugins.load_all()?;
    if ready + failed > 0 {
        tracing::info!(
            ready,
            failed,
            compiled,
            ms = started.elapsed().as_millis() as u64,
            "plugins loaded"
        );
        if failed > 0 {
            println!("{failed} plugin(s) failed to load; `osler plugin list` says why");
        }
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let purged = app.accounts.purge_expired()?;
        if purged > 0 {
            tracing::info!(sessions = purged, "removed expired sessions");
        }
        let listener = tokio::net::TcpListener::bind(app.config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", app.config.listen))?;
        let addr = listener.local_addr()?;
        announce(addr);
        println!("Osler is listening on http://{addr}");
        tracing::info!(%addr, "listening");
        crate::http::serve(app, listener).await?;
        Ok(0)
    })
}

fn demo_cmd(
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
            if d.join("db").exists() {
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
        match crate::plugins::publish::first_party(&registry, &dir.join("registry-keys")) {
            Ok((repo, ids)) => {
                config.registries.push(crate::config::RegistryConfig {
                    name: "first-party".into(),
                    url: registry.display().to_string(),
                    root_key: crate::plugins::publish::root_key(&repo)?,
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
        Ok(ids) => match crate::plugins::cli::install_from_registry(&app, &ids, "main") {
            Ok(()) if ids.iter().any(|i| i == "scheduling") => {
                seed = kiosk_patient;
                format!(
                    "plugins installed from the local registry {}/registry, enabled at main (not at north): {}",
                    dir.display(),
                    ids.join(", ")
                )
            }
            Ok(()) => format!(
                "plugins installed from the local registry {}/registry, enabled at main (not at north): {}",
                dir.display(),
                ids.join(", ")
            ),
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
