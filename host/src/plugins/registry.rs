//! Installing, updating and searching plugins from the registries in `osler.toml`.
//!
//! Each operation first brings the clinic's trusted view of every configured registry up to
//! date (root chain, timestamp, snapshot, targets — see `osler_registry::client`), keeping
//! the highest metadata versions seen in the database, so a replayed or frozen registry is
//! refused. Every package of a plan is downloaded, verified, checked against its index entry
//! and compiled before the first one is installed: a failure at any of those steps changes
//! nothing. A package may export only interfaces whose package (`osler:drugref`) the
//! registry delegates to its publisher (`interface-not-delegated` otherwise), checked on the
//! index entry before downloading and on the signed manifest after; `osler:plugin` and
//! `wasi:*` are nobody's.

use std::collections::{BTreeMap, BTreeSet};

use osler_registry::{
    Client, Error as RegError, Index, Package, PublicKey, Release, Source, Trust, View,
};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::manifest::{HOST_API_VERSIONS, Manifest};
use super::{Origin, Outcome, PluginError, PluginView, Plugins, Policy, Prepared};
use crate::access::Ctx;
use crate::config::RegistryConfig;
use crate::storage::{Batch, Tree};

/// Registry operations run one at a time: each reads and advances the stored trust state.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// How many plugins one install may bring in to provide imported interfaces.
const MAX_PLAN: usize = 16;

/// Reports download progress: (plugin id, bytes so far, total bytes).
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

pub fn no_progress(_: &str, _: u64, _: u64) {}

/// One configured registry with its verified view.
struct Live {
    client: Client,
    trust: Trust,
    view: View,
}

fn trust_key(name: &str) -> Vec<u8> {
    format!("registry-trust\0{name}").into_bytes()
}

fn client(cfg: &RegistryConfig) -> Result<Client, PluginError> {
    let pin = PublicKey::parse(&cfg.root_key).map_err(|e| {
        PluginError::Invalid(format!(
            "registry '{}' in osler.toml: root_key: {e}",
            cfg.name
        ))
    })?;
    Ok(Client {
        name: cfg.name.clone(),
        source: Source::parse(&cfg.url),
        pins: vec![pin],
    })
}

fn registry_error(registry: &str, e: RegError) -> PluginError {
    PluginError::Registry {
        registry: registry.to_string(),
        error: e,
    }
}

/// Update the trusted view of every configured registry (or only `only`).
async fn open(plugins: &Plugins, only: Option<&str>) -> Result<Vec<Live>, PluginError> {
    let configs: Vec<&RegistryConfig> = plugins
        .services()
        .registries
        .iter()
        .filter(|r| only.is_none_or(|o| o == r.name))
        .collect();
    if configs.is_empty() {
        return Err(PluginError::Invalid(match only {
            Some(o) => format!("no registry named '{o}' is configured"),
            None => "no plugin registry is configured; add one under [[registries]] in \
                     osler.toml (name, url, root_key)"
                .into(),
        }));
    }
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::new();
    for cfg in configs {
        let client = client(cfg)?;
        let mut trust: Trust = match plugins
            .services()
            .storage
            .get(Tree::Meta, &trust_key(&cfg.name))?
        {
            Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
            None => Trust::default(),
        };
        let view = client
            .update(&mut trust, now)
            .await
            .map_err(|e| registry_error(&cfg.name, e))?;
        save_trust(plugins, &cfg.name, &trust).await?;
        out.push(Live {
            client,
            trust,
            view,
        });
    }
    Ok(out)
}

async fn save_trust(plugins: &Plugins, name: &str, trust: &Trust) -> Result<(), PluginError> {
    let mut b = Batch::new();
    b.put(
        Tree::Meta,
        trust_key(name),
        serde_json::to_vec(trust).expect("serialises"),
    );
    plugins.services().storage.apply(&b)?;
    plugins.services().storage.durable().await?;
    Ok(())
}

/// The verified index of `id` from the first registry that lists it.
async fn find_index(
    plugins: &Plugins,
    lives: &mut [Live],
    id: &str,
) -> Result<Option<(usize, Index)>, PluginError> {
    let now = OffsetDateTime::now_utc();
    for (i, live) in lives.iter_mut().enumerate() {
        if !live.view.ids().iter().any(|x| x == id) {
            continue;
        }
        let index = live
            .client
            .index(&live.view, &mut live.trust, id, now)
            .await
            .map_err(|e| registry_error(&live.client.name, e))?;
        save_trust(plugins, &live.client.name, &live.trust).await?;
        if let Some(index) = index {
            return Ok(Some((i, index)));
        }
    }
    Ok(None)
}

/// A package to install: from which registry, which release.
struct Step {
    live: usize,
    id: String,
    release: Release,
}

/// Choose the release of `id` and, before it, providers for the interfaces it imports that
/// nothing installed provides.
async fn plan(
    plugins: &Plugins,
    lives: &mut [Live],
    id: &str,
    req: Option<&semver::VersionReq>,
    steps: &mut Vec<Step>,
    planning: &mut Vec<String>,
) -> Result<(), PluginError> {
    planning.push(id.to_string());
    let (live, index) = find_index(plugins, lives, id)
        .await?
        .ok_or_else(|| PluginError::NotListed(id.to_string()))?;
    let release = osler_registry::resolve::choose(&index, req, HOST_API_VERSIONS)
        .map_err(|e| registry_error(&lives[live].client.name, e))?
        .clone();
    for (interface, want) in &release.imports {
        let want: semver::VersionReq = want.parse().map_err(|_| {
            PluginError::Invalid(format!(
                "{id} imports {interface} with a bad version '{want}'"
            ))
        })?;
        let planned = steps.iter().any(|s| {
            s.release
                .exports
                .get(interface)
                .and_then(|v| v.parse::<semver::Version>().ok())
                .is_some_and(|v| want.matches(&v))
        });
        if planned || plugins.provides(interface, &want) {
            continue;
        }
        let provider = find_provider(plugins, lives, interface, &want).await?;
        match provider {
            // Already being planned (imports may form a cycle; calls resolve at run time).
            Some(pid) if planning.contains(&pid) => {}
            Some(pid) if planning.len() < MAX_PLAN => {
                Box::pin(plan(plugins, lives, &pid, None, steps, planning)).await?
            }
            _ => {
                return Err(PluginError::Conflict(format!(
                    "'{id}' {} imports {interface} {want}, which no installed plugin provides \
                     and no configured registry publishes; install a plugin that exports it \
                     first",
                    release.version
                )));
            }
        }
    }
    if !steps.iter().any(|s| s.id == id) {
        steps.push(Step {
            live,
            id: id.to_string(),
            release,
        });
    }
    Ok(())
}

/// Every plugin id the registries list, once each, sorted.
fn listed_ids(lives: &[Live]) -> Vec<String> {
    lives
        .iter()
        .flat_map(|l| l.view.ids())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A plugin in the registries whose newest usable release exports `interface` at a version
/// `want` accepts.
async fn find_provider(
    plugins: &Plugins,
    lives: &mut [Live],
    interface: &str,
    want: &semver::VersionReq,
) -> Result<Option<String>, PluginError> {
    let ids = listed_ids(lives);
    for pid in ids {
        let Some((live, index)) = find_index(plugins, lives, &pid).await? else {
            continue;
        };
        // A plugin whose publisher does not own the interface is never chosen to provide it.
        if let Ok(r) = osler_registry::resolve::choose(&index, None, HOST_API_VERSIONS)
            && lives[live].view.may_export(&r.publisher, interface)
            && r.exports
                .get(interface)
                .and_then(|v| v.parse::<semver::Version>().ok())
                .is_some_and(|v| want.matches(&v))
        {
            return Ok(Some(pid));
        }
    }
    Ok(None)
}

/// Download and check one release, then compile it.
async fn fetch(
    plugins: &Plugins,
    ctx: &Ctx,
    live: &Live,
    step: &Step,
    progress: Progress<'_>,
) -> Result<Prepared, PluginError> {
    let name = &live.client.name;
    let id = &step.id;
    let report = |done: u64, total: u64| progress(id, done, total);
    let pkg: Package = live
        .client
        .download(&live.view, id, &step.release, &report)
        .await
        .map_err(|e| registry_error(name, e))?;
    let manifest =
        Manifest::parse(&pkg.manifest).map_err(|e| PluginError::Invalid(e.to_string()))?;
    let caps: BTreeSet<String> = manifest
        .capabilities
        .iter()
        .map(|c| c.to_string())
        .collect();
    // The signed manifest, not only the index, decides what the package exports (the
    // component's real exports are checked against the manifest when it is prepared).
    if let Some(interface) = manifest
        .exports
        .keys()
        .find(|i| !live.view.may_export(&step.release.publisher, i))
    {
        return Err(registry_error(
            name,
            RegError::InterfaceNotDelegated {
                id: id.clone(),
                interface: interface.clone(),
                publisher: step.release.publisher.clone(),
            },
        ));
    }
    let exports: BTreeMap<String, String> = manifest
        .exports
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    // The index lists the imports a provider is required for (not the optional ones).
    let imports: BTreeMap<String, String> = manifest
        .required_imports()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    if manifest.id != *id
        || manifest.version != step.release.version
        || caps != step.release.capabilities
        || exports != step.release.exports
        || imports != step.release.imports
    {
        return Err(registry_error(
            name,
            RegError::Package(format!(
                "the package of {id} {} does not match its index entry (id, version, \
                 capabilities, exports or imports differ)",
                step.release.version
            )),
        ));
    }
    let sig = pkg.signature.clone().expect("verified packages are signed");
    let origin = Origin {
        registry: name.clone(),
        publisher: sig.publisher,
        key: sig.key,
    };
    plugins.prepare(&pkg, Some(origin), &ctx.user).await
}

/// What one plugin of an install or update became.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Installed {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub plugin: PluginView,
}

/// Install `spec` (`id`, `id@<requirement>` or `id@=<version>`) and whatever it needs.
pub async fn install(
    plugins: &Plugins,
    ctx: &Ctx,
    spec: &str,
    force: bool,
    progress: Progress<'_>,
) -> Result<Vec<Installed>, PluginError> {
    plugins.authorize(ctx, "plugin.install", spec).await?;
    let (id, req) = osler_registry::resolve::parse_spec(spec)
        .map_err(|e| PluginError::Invalid(e.to_string()))?;
    let _guard = LOCK.lock().await;
    let mut lives = open(plugins, None).await?;
    let mut steps = Vec::new();
    plan(
        plugins,
        &mut lives,
        &id,
        req.as_ref(),
        &mut steps,
        &mut Vec::new(),
    )
    .await?;
    run(plugins, ctx, &lives, steps, &id, force, progress).await
}

/// Prepare every step, then commit them (providers first).
async fn run(
    plugins: &Plugins,
    ctx: &Ctx,
    lives: &[Live],
    steps: Vec<Step>,
    target: &str,
    force: bool,
    progress: Progress<'_>,
) -> Result<Vec<Installed>, PluginError> {
    let mut prepared = Vec::new();
    for step in &steps {
        prepared.push(fetch(plugins, ctx, &lives[step.live], step, progress).await?);
    }
    let mut out = Vec::new();
    for p in prepared {
        let is_target = p.manifest().id == target;
        let policy = Policy {
            force: force && is_target,
            stage_new_capabilities: true,
        };
        let (plugin, outcome) = plugins.commit(ctx, p, policy).await?;
        out.push(Installed { outcome, plugin });
    }
    Ok(out)
}

/// Update `id` (or every plugin installed from a registry) to its newest usable release.
pub async fn update(
    plugins: &Plugins,
    ctx: &Ctx,
    id: Option<&str>,
    progress: Progress<'_>,
) -> Result<Vec<Installed>, PluginError> {
    plugins
        .authorize(ctx, "plugin.update", id.unwrap_or("*"))
        .await?;
    let _guard = LOCK.lock().await;
    let targets: Vec<String> = match id {
        Some(id) => {
            let (_, origin) = plugins
                .installed(id)
                .ok_or_else(|| PluginError::NotFound(id.to_string()))?;
            if origin.is_none() {
                return Err(PluginError::Conflict(format!(
                    "'{id}' was installed from a development package; updates come from \
                     registries (install it from one first)"
                )));
            }
            vec![id.to_string()]
        }
        None => plugins
            .list()
            .into_iter()
            .filter(|v| v.origin.is_some())
            .map(|v| v.id)
            .collect(),
    };
    let mut lives = open(plugins, None).await?;
    let mut out = Vec::new();
    for id in targets {
        let (installed, _) = plugins.installed(&id).expect("listed");
        let Some((_, index)) = find_index(plugins, &mut lives, &id).await? else {
            continue;
        };
        let Ok(release) = osler_registry::resolve::choose(&index, None, HOST_API_VERSIONS) else {
            continue;
        };
        if release.version <= installed {
            continue;
        }
        let mut steps = Vec::new();
        let req = semver::VersionReq::parse(&format!("={}", release.version)).expect("valid");
        plan(
            plugins,
            &mut lives,
            &id,
            Some(&req),
            &mut steps,
            &mut Vec::new(),
        )
        .await?;
        out.extend(run(plugins, ctx, &lives, steps, &id, false, progress).await?);
    }
    Ok(out)
}

/// A plugin a registry offers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Found {
    pub registry: String,
    pub id: String,
    pub name: String,
    pub description: String,
    pub publisher: String,
    /// The newest release this host can install.
    pub version: String,
    pub capabilities: Vec<String>,
    /// The installed version, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
}

/// Plugins whose id, name or description contains `text` (case-insensitive).
pub async fn search(plugins: &Plugins, ctx: &Ctx, text: &str) -> Result<Vec<Found>, PluginError> {
    plugins.authorize(ctx, "plugin.search", text).await?;
    let _guard = LOCK.lock().await;
    let mut lives = open(plugins, None).await?;
    let needle = text.to_lowercase();
    let ids = listed_ids(&lives);
    let mut out = Vec::new();
    for id in ids {
        let Some((live, index)) = find_index(plugins, &mut lives, &id).await? else {
            continue;
        };
        let Ok(r) = osler_registry::resolve::choose(&index, None, HOST_API_VERSIONS) else {
            continue;
        };
        let hay = format!("{id}\n{}\n{}", r.name, r.description).to_lowercase();
        if !hay.contains(&needle) {
            continue;
        }
        out.push(Found {
            registry: lives[live].client.name.clone(),
            id: id.clone(),
            name: r.name.clone(),
            description: r.description.clone(),
            publisher: r.publisher.clone(),
            version: r.version.to_string(),
            capabilities: r.capabilities.iter().cloned().collect(),
            installed: plugins.installed(&id).map(|(v, _)| v.to_string()),
        });
    }
    Ok(out)
}
