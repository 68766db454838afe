//! `osler plugin …`: manage the plugins of a data directory (while no server holds it; a
//! running server is managed over `/api/v1/admin/plugins`), and create and build plugins.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::app::{App, Mode};
use crate::config::Config;
use crate::plugins::manifest::{Capability, ConfigValue, Manifest};
use crate::plugins::package::Package;
use crate::plugins::{Outcome, PluginView, Plugins, registry};

#[derive(Subcommand, Debug)]
pub enum PluginCmd {
    /// Install a plugin from the configured registries (`<id>`, `<id>@<semver requirement>`,
    /// `<id>@=<exact version>`), or a local package file with --dev.
    Install {
        /// A registry plugin spec, or with --dev the path of a package file (.osp).
        spec: String,
        /// Install a local unsigned development package; it is marked as such and audited.
        #[arg(long)]
        dev: bool,
        /// Allow installing a version lower than the installed one, or a development package
        /// in place of a signed plugin of the same id.
        #[arg(long)]
        force: bool,
        /// Install a research plugin (package file, unsigned or self-signed) into the research
        /// sandbox, for the researchers (--researcher) at the sites (--site) named.
        #[arg(long, conflicts_with_all = ["dev", "force"])]
        sandbox: bool,
        /// With --sandbox: a researcher who may run it (repeat for several).
        #[arg(long = "researcher", requires = "sandbox")]
        researchers: Vec<String>,
        /// With --sandbox: a site it runs at (repeat for several).
        #[arg(long = "site", requires = "sandbox")]
        sites: Vec<String>,
        /// With --sandbox: the fuel of one run (default plugins.research.fuel).
        #[arg(long, requires = "sandbox")]
        fuel: Option<u64>,
        /// With --sandbox: the memory of one run in MiB (default plugins.research.memory_mib).
        #[arg(long, requires = "sandbox")]
        memory_mib: Option<u64>,
        /// With --sandbox: suppress counts below this in its results (small-cell protection).
        #[arg(long, requires = "sandbox")]
        threshold: Option<u64>,
    },
    /// Search the configured registries.
    Search { text: String },
    /// Update one plugin (or all installed from registries) to the newest usable version.
    Update { id: Option<String> },
    /// Return a plugin to the version installed before the current one.
    Rollback { id: String },
    /// Install the staged version of a plugin that asks for more access than the installed one.
    Approve { id: String },
    /// Sign a package as a publisher (writes the signed package next to it, or to --out).
    Sign {
        package: PathBuf,
        /// The publisher's private key (PKCS#8 PEM from `osler keys generate`).
        #[arg(long)]
        key: PathBuf,
        /// The publisher's name, as the registry delegates it.
        #[arg(long)]
        publisher: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List installed plugins and their state at each site.
    List,
    /// Enable a plugin at a site.
    Enable {
        id: String,
        #[arg(long)]
        site: String,
    },
    /// Disable a plugin at a site.
    Disable {
        id: String,
        #[arg(long)]
        site: String,
    },
    /// Grant capabilities to a plugin at a site (added to what it has).
    Grant {
        id: String,
        #[arg(long)]
        site: String,
        /// For unattended work (events the host publishes, scheduled jobs), a separate grant
        /// from the one for people's requests.
        #[arg(long)]
        unattended: bool,
        #[arg(required = true)]
        capabilities: Vec<String>,
    },
    /// Take capabilities back from a plugin at a site.
    Revoke {
        id: String,
        #[arg(long)]
        site: String,
        /// From its unattended grant.
        #[arg(long)]
        unattended: bool,
        #[arg(required = true)]
        capabilities: Vec<String>,
    },
    /// Choose the plugin that provides an interface at a site (e.g. `osler:drugref/lookup`).
    Bind {
        interface: String,
        plugin: String,
        #[arg(long)]
        site: String,
    },
    /// Leave an interface without a provider at a site (its calls answer `unavailable`).
    Unbind {
        interface: String,
        #[arg(long)]
        site: String,
    },
    /// The interfaces plugins import or provide at each site, and who provides them.
    Bindings {
        #[arg(long)]
        site: Option<String>,
    },
    /// A plugin's parked events (deliveries that failed every attempt); --retry delivers
    /// them again.
    Events {
        id: String,
        #[arg(long)]
        retry: bool,
    },
    /// Change a plugin's settings at a site: key=value … (key= restores the default).
    Config {
        id: String,
        #[arg(long)]
        site: String,
        #[arg(required = true)]
        settings: Vec<String>,
    },
    /// Remove a plugin (its stored data stays, for a reinstall); with --sandbox, a research
    /// plugin, whose storage is wiped with it.
    Remove {
        id: String,
        #[arg(long)]
        sandbox: bool,
    },
    /// Create a new plugin crate from the SDK's template.
    New {
        /// Plugin id: lowercase letters, digits and '-'.
        name: String,
        /// Where to create it (default ./<name>).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The osler-sdk dependency (default: a path to this checkout's sdk/).
        #[arg(long)]
        sdk: Option<String>,
    },
    /// Build a plugin crate for wasm32-wasip2 and write its package (.osp), unsigned; sign it
    /// with `osler plugin sign` to publish it.
    Build {
        /// The plugin's crate (default .).
        dir: Option<PathBuf>,
        /// Where to write the package (default <target>/osler-packages/<id>-<version>.osp).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a plugin's package (.osp), unsigned: a component built with any toolchain
    /// (JavaScript, Python, …) with --component and --manifest, or else the Rust crate in
    /// [dir], built first as `osler plugin build` does. The component is checked against the
    /// manifest first, exactly as a host checks it at install.
    Pack {
        /// The plugin's Rust crate (default .), when no --component is given.
        #[arg(conflicts_with = "component")]
        dir: Option<PathBuf>,
        /// A WebAssembly component (.wasm) to pack as it is.
        #[arg(long, value_name = "FILE")]
        component: Option<PathBuf>,
        /// The plugin's manifest (default ./plugin.toml), with --component.
        #[arg(long, value_name = "FILE", requires = "component")]
        manifest: Option<PathBuf>,
        /// Where to write the package (default <id>-<version>.osp next to the component, or
        /// as `build` does).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn caps(list: &[String]) -> anyhow::Result<BTreeSet<Capability>> {
    list.iter()
        .map(|c| {
            Capability::parse(c).with_context(|| {
                format!(
                    "unknown capability '{c}'; capabilities are: {}",
                    Capability::ALL.map(|c| c.as_str()).join(", ")
                )
            })
        })
        .collect()
}

pub fn run(config: impl FnOnce() -> anyhow::Result<Config>, cmd: PluginCmd) -> anyhow::Result<i32> {
    match cmd {
        PluginCmd::New { name, dir, sdk } => return scaffold(&name, dir, sdk),
        PluginCmd::Build { dir, out } => return build(dir, out, None).map(|_| 0),
        PluginCmd::Pack {
            component: Some(component),
            manifest,
            out,
            ..
        } => return pack_component(&component, manifest.as_deref(), out).map(|_| 0),
        PluginCmd::Pack { dir, out, .. } => return build(dir, out, None).map(|_| 0),
        PluginCmd::Sign {
            package,
            key,
            publisher,
            out,
        } => return sign(&package, &key, &publisher, out).map(|_| 0),
        _ => {}
    }
    let mut config = config()?;
    if let PluginCmd::Install { dev: true, .. } = &cmd {
        config.plugins.allow_unsigned = true;
    }
    let app = App::open(config, Mode::Existing)?;
    app.plugins.load_all()?;
    let ctx = App::cli_ctx();
    let rt = crate::cli::runtime()?;
    let p = &app.plugins;
    rt.block_on(async {
        match cmd {
            PluginCmd::Install {
                spec,
                sandbox: true,
                researchers,
                sites,
                fuel,
                memory_mib,
                threshold,
                ..
            } => {
                let bytes = std::fs::read(&spec)
                    .with_context(|| format!("cannot read the package {spec}"))?;
                let settings = crate::plugins::research::Settings {
                    researchers,
                    sites,
                    fuel,
                    memory_mib,
                    threshold,
                };
                let v = p.install_research(&ctx, &bytes, settings).await?;
                println!(
                    "Installed research plugin {} {} in the sandbox ({}), for {} at {}; fuel {} \
                     and {} MiB per run; small-cell threshold {}.",
                    v.id,
                    v.version,
                    v.signed_by.as_deref().unwrap_or("unsigned"),
                    if v.researchers.is_empty() {
                        "nobody yet".into()
                    } else {
                        v.researchers.join(", ")
                    },
                    if v.sites.is_empty() {
                        "no site yet".into()
                    } else {
                        v.sites.join(", ")
                    },
                    v.fuel,
                    v.memory_mib,
                    v.threshold
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "off".into()),
                );
            }
            PluginCmd::Install {
                spec, dev, force, ..
            } => {
                if dev {
                    let bytes = std::fs::read(&spec)
                        .with_context(|| format!("cannot read the package {spec}"))?;
                    let v = p.install(&ctx, &bytes, true, force).await?;
                    println!("Installed {} {} (development package).", v.id, v.version);
                    print_next_steps(&v);
                } else {
                    if Path::new(&spec).is_file() {
                        bail!(
                            "{spec} is a package file: local packages install only as development \
                             packages (--dev); signed plugins install from a registry by id"
                        );
                    }
                    let bar = Bar::new();
                    let done = registry::install(p, &ctx, &spec, force, &bar.report()).await;
                    bar.finish();
                    print_installed(&done?);
                }
            }
            PluginCmd::Search { text } => {
                let found = registry::search(p, &ctx, &text).await?;
                if found.is_empty() {
                    println!("Nothing in the configured registries matches '{text}'.");
                }
                for f in found {
                    println!(
                        "{} {} — {} (publisher {}, registry {}){}",
                        f.id,
                        f.version,
                        f.name,
                        f.publisher,
                        f.registry,
                        f.installed
                            .map(|v| format!(" [installed: {v}]"))
                            .unwrap_or_default()
                    );
                    if !f.description.is_empty() {
                        println!("  {}", f.description);
                    }
                    println!(
                        "  asks for: {}",
                        if f.capabilities.is_empty() {
                            "nothing".into()
                        } else {
                            f.capabilities.join(", ")
                        }
                    );
                }
            }
            PluginCmd::Update { id } => {
                let bar = Bar::new();
                let done = registry::update(p, &ctx, id.as_deref(), &bar.report()).await;
                bar.finish();
                let done = done?;
                if done.is_empty() {
                    println!("Everything is up to date.");
                }
                print_installed(&done);
            }
            PluginCmd::Rollback { id } => {
                let v = p.rollback(&ctx, &id).await?;
                println!(
                    "{id} is back at {}{}.",
                    v.version,
                    v.previous_version
                        .as_ref()
                        .map(|p| format!(" (rollback again to return to {p})"))
                        .unwrap_or_default()
                );
            }
            PluginCmd::Approve { id } => {
                let (v, added) = p.approve(&ctx, &id).await?;
                println!(
                    "Approved: {id} {} is installed. It adds: {}. Grant new capabilities per site \
                     with: osler plugin grant {id} --site <site> <capability…>",
                    v.version,
                    added.join(", ")
                );
            }
            PluginCmd::List => print_list(&p.list()),
            PluginCmd::Enable { id, site } => {
                p.set_enabled(&ctx, &id, &site, true).await?;
                println!("Enabled {id} at {site}.");
                let v = p.view(&id).expect("exists");
                let granted = &p.site_state(&id, &site).grants;
                let missing: Vec<&String> = v
                    .capabilities
                    .iter()
                    .filter(|c| !granted.iter().any(|g| g.as_str() == c.as_str()))
                    .collect();
                if !missing.is_empty() {
                    println!(
                        "Not granted at {site} (calls needing them will be denied): {}",
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            PluginCmd::Disable { id, site } => {
                p.set_enabled(&ctx, &id, &site, false).await?;
                println!("Disabled {id} at {site}.");
            }
            PluginCmd::Grant {
                id,
                site,
                unattended,
                capabilities,
            } => {
                let state = p.site_state(&id, &site);
                let mut g = if unattended {
                    state.unattended
                } else {
                    state.grants
                };
                g.extend(caps(&capabilities)?);
                print_grants(&id, &site, unattended, p, g, &ctx).await?;
            }
            PluginCmd::Revoke {
                id,
                site,
                unattended,
                capabilities,
            } => {
                let state = p.site_state(&id, &site);
                let mut g = if unattended {
                    state.unattended
                } else {
                    state.grants
                };
                for c in caps(&capabilities)? {
                    g.remove(&c);
                }
                print_grants(&id, &site, unattended, p, g, &ctx).await?;
            }
            PluginCmd::Bind {
                interface,
                plugin,
                site,
            } => {
                p.bind(&ctx, &site, &interface, Some(&plugin)).await?;
                println!("{interface} at {site} is now provided by {plugin}.");
            }
            PluginCmd::Unbind { interface, site } => {
                p.bind(&ctx, &site, &interface, None).await?;
                println!("{interface} at {site} has no provider: its calls answer `unavailable`.");
            }
            PluginCmd::Bindings { site } => {
                let bound = p.bindings(site.as_deref());
                if bound.is_empty() {
                    println!("No interface is bound.");
                }
                for b in bound {
                    println!("{}\t{}\t→ {} ({})", b.site, b.interface, b.provider, b.by);
                }
            }
            PluginCmd::Events { id, retry } => {
                if retry {
                    let n = p.retry_parked(&ctx, &id, None).await?;
                    println!("{n} parked event(s) of {id} queued again.");
                }
                let (waiting, parked) = p.event_queue(&id)?;
                let s = p.event_stats(&id);
                println!(
                    "{id}: {waiting} waiting, {} parked; since start: {} published, {} delivered, \
                     {} retried, {} parked, dropped {} (depth), {} (fan-out), {} (rate)",
                    parked.len(),
                    s.published,
                    s.delivered,
                    s.retried,
                    s.parked,
                    s.dropped_depth,
                    s.dropped_fan_out,
                    s.dropped_rate
                );
                for e in parked {
                    println!(
                        "  {} {} at {} from {} ({} attempts): {}",
                        e.id,
                        e.topic,
                        e.site,
                        e.source,
                        e.attempts,
                        e.last_error.unwrap_or_default()
                    );
                }
            }
            PluginCmd::Config { id, site, settings } => {
                set_config(p, &ctx, &id, &site, &settings).await?;
                println!("Settings of {id} at {site} changed.");
            }
            PluginCmd::Remove { id, sandbox: true } => {
                p.remove_research(&ctx, &id).await?;
                println!("Removed research plugin {id} and wiped its storage.");
            }
            PluginCmd::Remove { id, .. } => {
                p.remove(&ctx, &id).await?;
                println!("Removed {id}. Its stored data is kept for a reinstall.");
            }
            PluginCmd::New { .. }
            | PluginCmd::Build { .. }
            | PluginCmd::Pack { .. }
            | PluginCmd::Sign { .. } => {
                unreachable!("handled above")
            }
        }
        anyhow::Ok(0)
    })
}

fn print_next_steps(v: &PluginView) {
    println!("Enable it with: osler plugin enable {} --site <site>", v.id);
    if !v.capabilities.is_empty() {
        println!(
            "It asks for: {}. Grant them per site with: osler plugin grant {} --site <site> <capability…>",
            v.capabilities.join(", "),
            v.id
        );
    }
}

fn print_installed(done: &[registry::Installed]) {
    for d in done {
        let v = &d.plugin;
        match &d.outcome {
            Outcome::Installed { replaced } => {
                let from = v
                    .origin
                    .as_ref()
                    .map(|o| {
                        format!(
                            " from registry '{}' (publisher {})",
                            o.registry, o.publisher
                        )
                    })
                    .unwrap_or_default();
                match replaced {
                    Some(old) => println!("Updated {} {old} → {}{from}.", v.id, v.version),
                    None => {
                        println!("Installed {} {}{from}.", v.id, v.version);
                        print_next_steps(v);
                    }
                }
            }
            Outcome::Unchanged => println!("{} {} is already installed.", v.id, v.version),
            Outcome::Staged { version, added } => {
                println!(
                    "{} {version} is staged, NOT installed: it asks for more than the installed {}:",
                    v.id, v.version
                );
                for a in added {
                    println!("  + {a}");
                }
                println!(
                    "Review it, then install it with: osler plugin approve {}",
                    v.id
                );
            }
        }
    }
}

/// A download progress bar on a terminal; silent otherwise.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new() -> Bar {
        use std::io::IsTerminal;
        Bar(std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:>14} [{bar:30}] {bytes}/{total_bytes}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b
        }))
    }

    fn report(&self) -> impl Fn(&str, u64, u64) + Sync + '_ {
        move |id: &str, done: u64, total: u64| {
            if let Some(b) = &self.0 {
                b.set_message(id.to_string());
                b.set_length(total);
                b.set_position(done);
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

/// Add a publisher's signature to a package.
fn sign(package: &Path, key: &Path, publisher: &str, out: Option<PathBuf>) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(package).with_context(|| format!("cannot read {}", package.display()))?;
    let mut pkg = Package::read(&bytes).map_err(|e| anyhow::anyhow!(e))?;
    Manifest::parse(&pkg.manifest)?;
    let key = osler_registry::SecretKey::load(key)?;
    pkg.sign(publisher, &key);
    let out = out.unwrap_or_else(|| package.with_extension("signed.osp"));
    std::fs::write(&out, pkg.write()?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "Signed as '{publisher}' with {}: {}",
        key.public(),
        out.display()
    );
    Ok(())
}

async fn print_grants(
    id: &str,
    site: &str,
    unattended: bool,
    p: &Plugins,
    g: BTreeSet<Capability>,
    ctx: &crate::access::Ctx,
) -> anyhow::Result<()> {
    if unattended {
        let s = p.set_unattended_grants(ctx, id, site, g).await?;
        println!(
            "{id} at {site} now has, for unattended work: {}",
            join(&s.unattended)
        );
    } else {
        let s = p.set_grants(ctx, id, site, g).await?;
        println!("{id} at {site} now has: {}", join(&s.grants));
        for c in &s.grants {
            if let Some(w) = c.warning() {
                println!("  {c}: {w}");
            }
        }
    }
    Ok(())
}

fn join(g: &BTreeSet<Capability>) -> String {
    if g.is_empty() {
        return "nothing".into();
    }
    g.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
}

async fn set_config(
    p: &Plugins,
    ctx: &crate::access::Ctx,
    id: &str,
    site: &str,
    settings: &[String],
) -> anyhow::Result<()> {
    for s in settings {
        let Some((k, v)) = s.split_once('=') else {
            bail!("'{s}': write settings as key=value");
        };
        let value = if v.is_empty() {
            None
        } else {
            let ty = p.setting_type(id, k)?;
            Some(ConfigValue::parse(ty, v).map_err(|m| anyhow::anyhow!("setting '{k}': {m}"))?)
        };
        p.set_config(ctx, id, site, k, value).await?;
    }
    Ok(())
}

fn print_list(list: &[PluginView]) {
    if list.is_empty() {
        println!("No plugins are installed.");
        return;
    }
    for v in list {
        println!(
            "{} {} — {}{}",
            v.id,
            v.version,
            v.state,
            match &v.origin {
                None => " (live: unsigned development package)".to_string(),
                Some(o) => format!(" (live: signed by '{}')", o.publisher),
            }
        );
        if let Some(f) = &v.failure {
            println!("  failed: {f}");
        }
        if let Some(o) = &v.origin {
            println!(
                "  from registry '{}', publisher '{}'",
                o.registry, o.publisher
            );
        } else {
            println!("  development package");
        }
        if let Some(p) = &v.previous_version {
            println!("  previous version (for rollback): {p}");
        }
        if let Some(st) = &v.staged {
            println!(
                "  staged {} waits for approval (osler plugin approve {}); it adds: {}",
                st.version,
                v.id,
                st.adds.join(", ")
            );
        }
        println!(
            "  asks for: {}",
            if v.capabilities.is_empty() {
                "nothing".into()
            } else {
                v.capabilities.join(", ")
            }
        );
        if !v.outbound.is_empty() || !v.outbound_config.is_empty() {
            let reach = v.reach();
            println!("  may reach (with outbound): {}", reach.join(", "));
        }
        if !v.exports.is_empty() {
            println!("  provides: {}", v.exports.join(", "));
        }
        if !v.imports.is_empty() {
            println!("  uses: {}", v.imports.join(", "));
        }
        for (site, s) in &v.sites {
            println!(
                "  {site}: {}, granted: {}{}",
                if s.enabled { "enabled" } else { "disabled" },
                join(&s.grants),
                if s.unattended.is_empty() {
                    String::new()
                } else {
                    format!("; for unattended work: {}", join(&s.unattended))
                }
            );
            for c in &v.outbound_config {
                println!("    {}: {}", c.describe(), c.at(site));
            }
            for (interface, provider) in v.bindings.get(site).into_iter().flatten() {
                println!(
                    "    {interface} → {}",
                    provider.as_deref().unwrap_or("unbound (unavailable)")
                );
            }
        }
        if let Some(st) = &v.storage {
            println!(
                "  storage: {:.1} of {} MiB, {} of {} keys",
                st.bytes as f64 / (1 << 20) as f64,
                st.max_bytes >> 20,
                st.keys,
                st.max_keys
            );
        }
    }
}

/// The SDK's template, compiled into the binary.
const TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../sdk/template/Cargo.toml"),
    ),
    (
        "plugin.toml",
        include_str!("../../../sdk/template/plugin.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../sdk/template/src/lib.rs"),
    ),
    (
        ".gitignore",
        include_str!("../../../sdk/template/.gitignore"),
    ),
];

fn scaffold(name: &str, dir: Option<PathBuf>, sdk: Option<String>) -> anyhow::Result<i32> {
    if !crate::plugins::manifest::valid_id(name) {
        bail!(
            "'{name}' is not a plugin id: use 2 to 40 lowercase letters, digits or '-', starting with a letter"
        );
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "{} exists and is not empty; choose another --dir",
            dir.display()
        );
    }
    let sdk = match sdk {
        Some(s) => s,
        None => {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
            let path = path.canonicalize().unwrap_or(path);
            format!("osler-sdk = {{ path = {:?} }}", path.display().to_string())
        }
    };
    let title: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    for (file, text) in TEMPLATE {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        let text = text
            .replace("{{id}}", name)
            .replace("{{name}}", &title)
            .replace("{{sdk_dependency}}", &sdk);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("Created the plugin '{name}' in {}.", dir.display());
    println!("Build it with: osler plugin build {}", dir.display());
    Ok(0)
}

/// Build the crate in `dir` for wasm32-wasip2 and write its package. Returns the package path.
/// `target_dir` overrides cargo's target directory (else `CARGO_TARGET_DIR` or the crate's).
pub fn build(
    dir: Option<PathBuf>,
    out: Option<PathBuf>,
    target_dir: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let manifest_path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(dir.join("plugin.toml"))
        .with_context(|| format!("{} has no plugin.toml", dir.display()))?;
    let m = Manifest::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    if let Some(t) = target_dir {
        command.env("CARGO_TARGET_DIR", t);
    }
    let output = command
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest_path)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {cargo}; is Rust installed?"))?;
    if !output.status.success() {
        bail!(
            "the build failed (see above). If the target is missing: rustup target add wasm32-wasip2"
        );
    }
    let want = manifest_path.canonicalize()?;
    let mut wasm = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" {
            continue;
        }
        let same = v["manifest_path"]
            .as_str()
            .and_then(|p| Path::new(p).canonicalize().ok())
            .is_some_and(|p| p == want);
        if !same {
            continue;
        }
        if let Some(files) = v["filenames"].as_array() {
            for f in files.iter().filter_map(|f| f.as_str()) {
                if f.ends_with(".wasm") {
                    wasm = Some(PathBuf::from(f));
                }
            }
        }
    }
    let wasm = wasm.context("the build produced no .wasm; is the crate a cdylib?")?;
    let component = std::fs::read(&wasm)?;
    let out = match out {
        Some(o) => o,
        None => {
            let target = wasm
                .ancestors()
                .nth(3)
                .map(Path::to_path_buf)
                .unwrap_or_else(|| dir.join("target"));
            target
                .join("osler-packages")
                .join(format!("{}-{}.osp", m.id, m.version))
        }
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let pkg = Package {
        manifest: text,
        component,
        signature: None,
    };
    std::fs::write(&out, pkg.write()?)?;
    println!(
        "Built {} {} ({} KiB component): {}",
        m.id,
        m.version,
        pkg.component.len() / 1024,
        out.display()
    );
    Ok(out)
}

/// Pack a component built by any toolchain with its manifest into an unsigned package, after
/// checking them against each other as a host does at install: the manifest parses, the
/// component is a component, every interface it imports is declared (capabilities, `[imports]`),
/// every declared capability, import and export is really there — read from the component's
/// type, before anything is compiled. Nothing is written when a check fails. Returns the
/// package path.
pub fn pack_component(
    component: &Path,
    manifest: Option<&Path>,
    out: Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    let manifest_path = manifest.unwrap_or(Path::new("plugin.toml"));
    let text = std::fs::read_to_string(manifest_path)
        .with_context(|| format!("cannot read the manifest {}", manifest_path.display()))?;
    let m =
        Manifest::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?;
    let bytes = std::fs::read(component)
        .with_context(|| format!("cannot read the component {}", component.display()))?;
    if bytes.len() as u64 > crate::plugins::package::MAX_COMPONENT {
        bail!(
            "{} is {} MiB; a package holds a component of at most {} MiB",
            component.display(),
            bytes.len() >> 20,
            crate::plugins::package::MAX_COMPONENT >> 20
        );
    }
    check_component(&bytes, &m).map_err(|e| {
        anyhow::anyhow!(
            "{} does not match {}: {e}",
            component.display(),
            manifest_path.display()
        )
    })?;
    let out = out.unwrap_or_else(|| {
        component
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("{}-{}.osp", m.id, m.version))
    });
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let pkg = Package {
        manifest: text,
        component: bytes,
        signature: None,
    };
    std::fs::write(&out, pkg.write()?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "Packed {} {} ({} KiB component): {}",
        m.id,
        m.version,
        pkg.component.len() / 1024,
        out.display()
    );
    Ok(out)
}

/// The checks a host makes at install before compiling, with its messages: the component's
/// imports and exports against the manifest, read from its type (milliseconds, even for a
/// JavaScript or Python component). Linking against the host's interfaces happens at install,
/// where the component is compiled anyway.
fn check_component(bytes: &[u8], m: &Manifest) -> Result<(), String> {
    use crate::plugins::inspect;
    if inspect::is_research(bytes) {
        // A research plugin: the checks `osler plugin install --sandbox` makes.
        inspect::check_research(bytes, m).map(|_| ())
    } else {
        inspect::check(bytes, m).map(|_| ())
    }
}

/// Whether `rustup` reports the wasm32-wasip2 target as installed (plugins build for it).
pub fn wasm_target_installed() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-wasip2")
        })
        .unwrap_or(false)
}

/// For `osler demo`: build the first-party plugins of this checkout (`plugins/*`), install them
/// as development packages, and enable them at `site` with what they ask for. Returns the ids.
/// This checkout's root (the workspace `osler` was built from), for first-party plugins.
pub fn checkout_root() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("osler was built outside its workspace")?;
    if !root.join("plugins").is_dir() {
        bail!("no plugins/ folder next to this osler (it was built from elsewhere)");
    }
    if !wasm_target_installed() {
        bail!("the wasm32-wasip2 target is missing; add it with: rustup target add wasm32-wasip2");
    }
    Ok(root.to_path_buf())
}

/// The first-party plugin crates: every folder under `plugins/` with a `plugin.toml`.
pub fn first_party_crates(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("plugins"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("plugin.toml").exists())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Install `ids` from the configured registries the way a clinic does, enable each at `site`
/// and grant it what it asks for there — except a plugin that asks for `inbound`, which is
/// installed only. Returns those left disabled.
pub fn install_from_registry(app: &App, ids: &[String], site: &str) -> anyhow::Result<Vec<String>> {
    let ctx = crate::access::Ctx::system("demo");
    let rt = crate::cli::runtime()?;
    rt.block_on(async {
        let mut not_enabled = Vec::new();
        for id in ids {
            registry::install(&app.plugins, &ctx, id, false, &registry::no_progress).await?;
            let v = app.plugins.view(id).expect("installed");
            let asked: std::collections::BTreeSet<Capability> = v
                .capabilities
                .iter()
                .filter_map(|c| Capability::parse(c))
                .collect();
            // A plugin that takes requests from other servers (`inbound`) waits for an
            // administrator to set up its network: the demo never opens such a door itself.
            if asked.contains(&Capability::Inbound) {
                not_enabled.push(id.clone());
                continue;
            }
            app.plugins.set_enabled(&ctx, id, site, true).await?;
            app.plugins.set_grants(&ctx, id, site, asked).await?;
        }
        anyhow::Ok(not_enabled)
    })
}
