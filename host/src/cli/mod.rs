//! The `osler` command line: one module per group of commands.
//!
//! - this module: `serve`, `init`, `user`, `site`, `audit`, and starting the server;
//! - [`plugin`]: `osler plugin …` (manage a data directory's plugins; create, build, sign);
//! - [`registry`]: `osler keys …` and `osler registry …` (publishers' and registry
//!   operators' tools);
//! - [`storage`]: `osler storage migrate`;
//! - [`demo`]: `osler demo`.
//!
//! Commands open the data directory as an [`App`] and call the same services as the HTTP
//! API, so the same checks and audit entries apply.

pub mod demo;
pub mod plugin;
pub mod registry;
pub mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::access::Role;
use crate::app::{App, Mode};
use crate::auth::random_token;
use crate::config::Config;

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
    Plugin(plugin::PluginCmd),
    /// Signing keys for publishers and registries.
    #[command(subcommand)]
    Keys(registry::KeysCmd),
    /// Create and maintain a plugin registry (static, signed files).
    #[command(subcommand)]
    Registry(registry::RegistryCmd),
    /// The data directory's database: move it to another engine.
    #[command(subcommand)]
    Storage(storage::StorageCmd),
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
            if crate::storage::Engine::existing(&app.config.data_dir)?
                == Some(crate::storage::Engine::Sled)
            {
                tracing::warn!(
                    "this data directory's database is sled: stop the server and run `osler \
                     storage migrate` to move it to fjall (about twice the creates a second, \
                     within the memory budget; see the README)"
                );
            }
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
        Command::Storage(cmd) => storage::run(&cli.global, cmd),
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
        } => demo::run(cli.global, listen, patients, !no_plugins),
        Command::Plugin(cmd) => plugin::run(|| load_config(&cli.global), cmd),
        Command::Keys(cmd) => registry::keys(cmd),
        Command::Registry(cmd) => registry::registry(cmd),
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
pub(crate) fn serve(app: App, announce: impl FnOnce(SocketAddr)) -> anyhow::Result<i32> {
    // A weak handle: the trimmer runs until the process ends, and a strong one would keep the
    // database from its closing checkpoint when the server stops.
    let storage = app.storage.downgrade();
    crate::memory::start_trimming(app.config.budget(), move || storage.engine_memory());
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
        // Events waiting from before a restart are delivered first.
        app.plugins.start_events();
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
