//! The research sandbox: untrusted, experimental plugins run by named researchers on
//! de-identified data, with hard limits and a record of every run.
//!
//! A research plugin is a second *trust tier* beside the clinical plugins of the rest of this
//! module, and shares none of their routes or state: it is installed by an administrator
//! (unsigned or self-signed) for named researcher users at named sites ([`Placement`]), is
//! never in the clinical plugin list, never receives requests, events or interface calls, and
//! is invisible (404) to everyone else — administrators manage it under
//! `/api/v1/admin/research` only.
//!
//! What it can do is fixed by its world, `osler:plugin/research@0.2.0`: import `log`,
//! `config`, `kv` (its own, under `sandbox:<id>`, wiped when it is removed) and the
//! de-identified patient view (pseudonyms keyed per research plugin), export one `run`. The
//! host refuses any other import at install, before compiling ([`inspect::check_research`]);
//! only those interfaces are linked; and every host call still goes through the gate with the
//! researcher's role (de-identified data only) and the plugin's capabilities — so even a
//! component that somehow linked more would be `denied`.
//!
//! Runs are deterministic and metered: its own wasmtime engine ([`Runtime::research`]) with
//! fuel and NaN canonicalisation, the WASI clocks fixed at the run's time (`asOf`), random
//! numbers seeded from the plugin's hash, the parameters and that time, no environment. The
//! same parameters and `asOf` on the same data give the same table and use the same fuel. A run
//! ends at its fuel budget or memory limit (set per plugin by the administrator, within
//! `[plugins.research]`) with an error that states the budget. Counts below the plugin's
//! small-cell threshold are suppressed before the result is stored or shown. Each run is kept
//! ([`RunRecord`]) and audited (`research.run`) with who, what (id, version, sha256), when,
//! the budget, fuel and memory used, how many patients it read and the outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

use rand_wasi::SeedableRng as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use wasmtime::Store;
use wasmtime::component::Linker;

use super::engine::{FUEL_YIELD, Runtime};
use super::inspect;
use super::lifecycle::Record;
use super::manifest::Manifest;
use super::package::Package;
use super::sandbox::{Call, Person, Sandbox};
use super::{Loaded, PluginError, Plugins, Status, caps, now, v0_2};
use crate::access::{Acting, Check, Ctx, Need, Permission, Role};
use crate::storage::{Batch, Tree};

/// The bindings of the `research` world; its imports are `osler:plugin@0.2.0`'s own, linked
/// with the same host implementations as a clinical plugin's.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2.0",
        world: "osler:plugin/research@0.2.0",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "osler:plugin/types@0.2.0": crate::plugins::v0_2::osler::plugin::types,
            "osler:plugin/log@0.2.0": crate::plugins::v0_2::osler::plugin::log,
            "osler:plugin/config@0.2.0": crate::plugins::v0_2::osler::plugin::config,
            "osler:plugin/kv@0.2.0": crate::plugins::v0_2::osler::plugin::kv,
            "osler:plugin/patients-deidentified@0.2.0": crate::plugins::v0_2::osler::plugin::patients_deidentified,
        },
    });
}

use bindings::exports::osler::plugin::research_run as wit;

/// The prefix of a research plugin's id wherever the host keys its data (kv, pseudonyms,
/// logs, the audit trail's `via`): no clinical plugin id contains `:`, so a research plugin
/// never shares a clinical plugin's storage or pseudonyms, even under the same name.
pub const NAMESPACE: &str = "sandbox:";

/// Most rows and columns of a result table, and the most text in one cell.
const MAX_ROWS: usize = 10_000;
const MAX_COLUMNS: usize = 100;
const MAX_TEXT: usize = 1024;
/// Largest parameters object.
const MAX_PARAMETERS: usize = 64 << 10;

/// Who may run a research plugin, and where.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// User names of the researchers who may run it (each must hold the `researcher` role).
    pub researchers: Vec<String>,
    /// The sites it runs at.
    pub sites: Vec<String>,
}

/// What an administrator sets for a research plugin.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// User names of the researchers who may run it.
    #[serde(default)]
    pub researchers: Vec<String>,
    /// The sites it runs at.
    #[serde(default)]
    pub sites: Vec<String>,
    /// Fuel of one run (about one WebAssembly instruction per unit); the host's default when
    /// absent, at most its maximum.
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Linear memory of one run, in MiB; the host's default when absent, at most its maximum.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Small-cell protection: counts below this are suppressed (e.g. 5). None or 0: off.
    #[serde(default)]
    pub threshold: Option<u64>,
}

/// An installed research plugin as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredPlugin {
    id: String,
    version: String,
    sha256: String,
    manifest: String,
    installed_at: String,
    installed_by: String,
    /// `publisher (ed25519:…)` of a self-signed package whose signature checks out against
    /// its own key; `None` when unsigned.
    signed_by: Option<String>,
    settings: Settings,
}

/// A research plugin as administrators (and, in part, its researchers) see it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResearchView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub version: String,
    pub sha256: String,
    /// Always `sandbox`.
    pub tier: String,
    /// `publisher (key)` when the package was self-signed; `null` when unsigned.
    pub signed_by: Option<String>,
    pub installed_at: String,
    pub installed_by: String,
    /// What its component imports: `kv`, `patients.deidentified`.
    pub capabilities: Vec<String>,
    pub researchers: Vec<String>,
    pub sites: Vec<String>,
    /// The fuel and memory of one run, as they apply (the administrator's or the defaults).
    pub fuel: u64,
    pub memory_mib: u64,
    /// Counts below this are suppressed; `null` when small-cell protection is off.
    pub threshold: Option<u64>,
    /// `ready`, or why it cannot run.
    pub status: String,
}

/// A cell of a run's result table, as stored and shown.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Cell {
    Count(u64),
    Number(f64),
    Text(String),
    Empty,
    /// A count below the small-cell threshold, withheld by the host.
    Suppressed,
}

/// A run's result.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// The budget a run was given.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    pub fuel: u64,
    pub memory_mib: u64,
}

/// The record of one run: kept, audited, and shown to the researcher who ran it and to
/// administrators.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Time-ordered.
    pub id: String,
    pub plugin: String,
    pub version: String,
    /// The sha256 of the component that ran.
    pub sha256: String,
    pub user: String,
    pub site: String,
    /// When the run happened.
    pub started_at: String,
    /// The time the plugin saw (its clocks; ages of de-identified records): the start, or
    /// what the researcher asked for to repeat an earlier run exactly.
    pub as_of: String,
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    pub budget: Budget,
    pub fuel_used: u64,
    /// The linear memory the run held at its peak.
    pub peak_memory_bytes: u64,
    /// Distinct patients whose de-identified records it read.
    pub patients_read: u64,
    pub duration_ms: u64,
    /// `success`, `plugin-error` (the plugin returned an error), `fuel-exhausted`,
    /// `memory-limit`, `timeout`, `trap`, `invalid-result`.
    pub outcome: String,
    /// What went wrong, when the outcome is not `success`.
    pub error: Option<String>,
    pub result: Option<Table>,
    /// The small-cell threshold applied (`null`: none) and how many counts it suppressed.
    pub threshold: Option<u64>,
    pub suppressed: u64,
}

/// Why a research request failed.
#[derive(Debug, thiserror::Error)]
pub enum ResearchError {
    /// No such research plugin for this caller here (also: not placed for them, not at this
    /// site, not a researcher) — invisible, like something that does not exist.
    #[error("no research plugin '{0}' here")]
    NotFound(String),
    #[error("no run '{0}'")]
    NoRun(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Busy(String),
    /// The run happened, was recorded, and did not succeed.
    #[error("{message}")]
    Failed {
        run: Box<RunRecord>,
        message: String,
    },
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// A research plugin ready to run.
struct Installed {
    stored: StoredPlugin,
    manifest: Manifest,
    capabilities: BTreeSet<super::manifest::Capability>,
    ready: Result<Arc<bindings::ResearchPre<Sandbox>>, String>,
}

/// The research sandbox's state inside the plugin runtime.
#[derive(Default)]
pub struct State {
    runtime: OnceLock<Result<Runtime, String>>,
    installed: RwLock<BTreeMap<String, Arc<Installed>>>,
    running: OnceLock<tokio::sync::Semaphore>,
}

impl State {
    /// The ids of the installed research plugins.
    pub(super) fn installed_ids(&self) -> Vec<String> {
        self.installed
            .read()
            .expect("lock")
            .keys()
            .cloned()
            .collect()
    }
}

/// The `sandbox:<id>` a research plugin's data is kept under.
fn namespaced(id: &str) -> String {
    format!("{NAMESPACE}{id}")
}

fn internal(e: impl std::fmt::Display) -> PluginError {
    PluginError::Invalid(format!("{e}"))
}

impl Plugins {
    fn research(&self) -> &State {
        &self.inner.research
    }

    /// The research engine, built on first use.
    fn research_runtime(&self) -> Result<&Runtime, String> {
        self.research()
            .runtime
            .get_or_init(|| {
                Runtime::research(&self.inner.limits, &self.inner.data_dir)
                    .map_err(|e| format!("cannot start the research engine: {e:#}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn research_path(&self, id: &str, version: &str, sha256: &str) -> PathBuf {
        self.inner
            .data_dir
            .join("research")
            .join(id)
            .join(format!("{version}-{}.wasm", &sha256[..16]))
    }

    /// Compile and link a research component (checked first, before compiling).
    fn research_prepare(
        &self,
        bytes: &[u8],
        sha: &str,
        manifest: &Manifest,
    ) -> Result<
        (
            BTreeSet<super::manifest::Capability>,
            bindings::ResearchPre<Sandbox>,
        ),
        String,
    > {
        let capabilities = inspect::check_research(bytes, manifest)?;
        let runtime = self.research_runtime()?;
        let (component, _) = runtime
            .component(bytes, sha)
            .map_err(|e| format!("{e:#}"))?;
        let mut linker: Linker<Sandbox> = Linker::new(&runtime.engine);
        research_link(&mut linker).map_err(|e| e.to_string())?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| format!("cannot link the component: {e:#}"))?;
        let pre =
            bindings::ResearchPre::new(pre).map_err(|e| format!("not a research plugin: {e:#}"))?;
        Ok((capabilities, pre))
    }

    fn research_load(&self, stored: StoredPlugin) -> Installed {
        let manifest = match Manifest::parse(&stored.manifest) {
            Ok(m) => m,
            Err(e) => {
                return Installed {
                    manifest: placeholder(&stored),
                    capabilities: BTreeSet::new(),
                    ready: Err(e.to_string()),
                    stored,
                };
            }
        };
        let path = self.research_path(&stored.id, &stored.version, &stored.sha256);
        let loaded = std::fs::read(&path)
            .map_err(|e| format!("cannot read its component {}: {e}", path.display()))
            .and_then(|bytes| {
                let sha = hex::encode(Sha256::digest(&bytes));
                if sha != stored.sha256 {
                    return Err(format!(
                        "its component changed on disk (sha256 {sha}, installed {}); reinstall it",
                        stored.sha256
                    ));
                }
                self.research_prepare(&bytes, &sha, &manifest)
            });
        match loaded {
            Ok((capabilities, pre)) => Installed {
                stored,
                manifest,
                capabilities,
                ready: Ok(Arc::new(pre)),
            },
            Err(reason) => Installed {
                stored,
                manifest,
                capabilities: BTreeSet::new(),
                ready: Err(reason),
            },
        }
    }

    /// Load the installed research plugins (at start-up, after the clinical ones). One that
    /// fails is kept with its reason; the others load. Returns (loaded, failed).
    pub fn load_research(&self) -> anyhow::Result<(usize, usize)> {
        let rows =
            self.inner
                .services
                .storage
                .scan(Tree::ResearchPlugins, b"", None, usize::MAX)?;
        let (mut ok, mut failed) = (0, 0);
        let mut map = BTreeMap::new();
        for (_, v) in rows {
            let stored: StoredPlugin = match serde_json::from_slice(&v) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "unreadable research plugin record skipped");
                    continue;
                }
            };
            let installed = self.research_load(stored);
            match &installed.ready {
                Ok(_) => ok += 1,
                Err(reason) => {
                    failed += 1;
                    tracing::error!(plugin = %installed.stored.id, %reason, "research plugin failed to load");
                }
            }
            map.insert(installed.stored.id.clone(), Arc::new(installed));
        }
        *self.research().installed.write().expect("lock") = map;
        Ok((ok, failed))
    }

    fn research_get(&self, id: &str) -> Option<Arc<Installed>> {
        self.research()
            .installed
            .read()
            .expect("lock")
            .get(id)
            .cloned()
    }

    /// The settings as they apply: the administrator's within the host's maxima, or the
    /// defaults. Errors name what is out of range.
    fn research_settings(&self, s: Settings) -> Result<Settings, PluginError> {
        let limits = &self.inner.limits.research;
        let fuel = s.fuel.unwrap_or(limits.fuel);
        if fuel == 0 || fuel > limits.max_fuel {
            return Err(PluginError::Invalid(format!(
                "fuel must be 1 to {} (plugins.research.max_fuel); got {fuel}",
                limits.max_fuel
            )));
        }
        let memory = s.memory_mib.unwrap_or(limits.memory_mib);
        if memory == 0 || memory > limits.max_memory_mib {
            return Err(PluginError::Invalid(format!(
                "memoryMib must be 1 to {} (plugins.research.max_memory_mib); got {memory}",
                limits.max_memory_mib
            )));
        }
        let mut researchers: Vec<String> = s.researchers.clone();
        researchers.sort();
        researchers.dedup();
        for r in &researchers {
            let user = self
                .services()
                .accounts
                .get(r)
                .map_err(internal)?
                .ok_or_else(|| PluginError::Invalid(format!("no user '{r}'")))?;
            if !user.roles.contains(&Role::Researcher) {
                return Err(PluginError::Invalid(format!(
                    "'{r}' does not hold the researcher role; only researchers run research \
                     plugins (give them the role first: osler user update {r} --role researcher)"
                )));
            }
        }
        let mut sites: Vec<String> = s.sites.clone();
        sites.sort();
        sites.dedup();
        for site in &sites {
            if self.services().sites.get(site).map_err(internal)?.is_none() {
                return Err(PluginError::Invalid(format!("no site '{site}'")));
            }
        }
        Ok(Settings {
            researchers,
            sites,
            fuel: Some(fuel),
            memory_mib: Some(memory),
            threshold: s.threshold.filter(|t| *t > 0),
        })
    }

    /// Install (or upgrade) a research plugin from a package (`.osp`, unsigned or self-signed)
    /// for the researchers and sites of `settings`. Administrators only; audited.
    pub async fn install_research(
        &self,
        ctx: &Ctx,
        bytes: &[u8],
        settings: Settings,
    ) -> Result<ResearchView, PluginError> {
        self.authorize(ctx, "research.install", "?").await?;
        let pkg = Package::read(bytes).map_err(PluginError::Invalid)?;
        let manifest =
            Manifest::parse(&pkg.manifest).map_err(|e| PluginError::Invalid(e.to_string()))?;
        let id = manifest.id.clone();
        if self.get(&id).is_some() {
            return Err(PluginError::Conflict(format!(
                "a clinical plugin '{id}' is installed; a research plugin needs an id of its own"
            )));
        }
        let signed_by = match &pkg.signature {
            None => None,
            Some(sig) => {
                // Self-signed: the signature must check out against the key it names; no
                // registry vouches for that key.
                let key = osler_registry::keys::PublicKey::parse(&sig.key)
                    .map_err(|e| PluginError::Invalid(format!("its signature's key: {e}")))?;
                pkg.verify(&id, std::slice::from_ref(&key))
                    .map_err(|e| PluginError::Invalid(e.to_string()))?;
                Some(format!("{} ({key})", sig.publisher))
            }
        };
        let old = self.research_get(&id);
        let settings = match (&old, settings == Settings::default()) {
            // An upgrade without new settings keeps the placement and budgets.
            (Some(old), true) => old.stored.settings.clone(),
            _ => self.research_settings(settings)?,
        };
        let sha = hex::encode(Sha256::digest(&pkg.component));
        if let Some(old) = &old
            && old.stored.sha256 == sha
            && old.stored.settings == settings
        {
            return Ok(self.research_view(old));
        }
        let this = self.clone();
        let (component, m2, sha2) = (pkg.component.clone(), manifest.clone(), sha.clone());
        let (capabilities, pre) =
            tokio::task::spawn_blocking(move || this.research_prepare(&component, &sha2, &m2))
                .await
                .map_err(|e| PluginError::Invalid(format!("compilation failed: {e}")))?
                .map_err(PluginError::Invalid)?;
        let stored = StoredPlugin {
            id: id.clone(),
            version: manifest.version.to_string(),
            sha256: sha.clone(),
            manifest: pkg.manifest.clone(),
            installed_at: now(),
            installed_by: ctx.user.clone(),
            signed_by,
            settings,
        };
        let path = self.research_path(&id, &stored.version, &sha);
        super::lifecycle::write_durable(&path, &pkg.component)
            .map_err(|e| internal(format!("cannot store the component: {e}")))?;
        let mut b = Batch::new();
        b.put(
            Tree::ResearchPlugins,
            id.as_bytes(),
            serde_json::to_vec(&stored).expect("records serialise"),
        );
        let mut ev = ctx.event("research.install", "success");
        ev.resource = Some(format!("ResearchPlugin/{id}@{}", stored.version));
        ev.detail = Some(format!(
            "sandbox plugin, {}; sha256 {sha}; researchers: {}; sites: {}; fuel {}, memory {} \
             MiB, small-cell threshold {}",
            stored.signed_by.as_deref().unwrap_or("unsigned"),
            join_or_none(&stored.settings.researchers),
            join_or_none(&stored.settings.sites),
            stored.settings.fuel.unwrap_or_default(),
            stored.settings.memory_mib.unwrap_or_default(),
            stored
                .settings
                .threshold
                .map(|t| t.to_string())
                .unwrap_or_else(|| "off".into()),
        ));
        self.inner.services.audit.commit_with(&b, ev).await?;
        let installed = Arc::new(Installed {
            stored,
            manifest,
            capabilities,
            ready: Ok(Arc::new(pre)),
        });
        self.research()
            .installed
            .write()
            .expect("lock")
            .insert(id, installed.clone());
        Ok(self.research_view(&installed))
    }

    /// Change a research plugin's researchers, sites, budgets or threshold. Audited.
    pub async fn configure_research(
        &self,
        ctx: &Ctx,
        id: &str,
        settings: Settings,
    ) -> Result<ResearchView, PluginError> {
        self.authorize(ctx, "research.configure", id).await?;
        let cur = self
            .research_get(id)
            .ok_or_else(|| PluginError::NotFound(id.into()))?;
        let settings = self.research_settings(settings)?;
        let mut stored = cur.stored.clone();
        stored.settings = settings;
        let mut b = Batch::new();
        b.put(
            Tree::ResearchPlugins,
            id.as_bytes(),
            serde_json::to_vec(&stored).expect("records serialise"),
        );
        let mut ev = ctx.event("research.configure", "success");
        ev.resource = Some(format!("ResearchPlugin/{id}"));
        ev.detail = Some(format!(
            "researchers: {}; sites: {}; fuel {}, memory {} MiB, small-cell threshold {}",
            join_or_none(&stored.settings.researchers),
            join_or_none(&stored.settings.sites),
            stored.settings.fuel.unwrap_or_default(),
            stored.settings.memory_mib.unwrap_or_default(),
            stored
                .settings
                .threshold
                .map(|t| t.to_string())
                .unwrap_or_else(|| "off".into()),
        ));
        self.inner.services.audit.commit_with(&b, ev).await?;
        let installed = Arc::new(Installed {
            stored,
            manifest: cur.manifest.clone(),
            capabilities: cur.capabilities.clone(),
            ready: cur.ready.clone(),
        });
        self.research()
            .installed
            .write()
            .expect("lock")
            .insert(id.to_string(), installed.clone());
        Ok(self.research_view(&installed))
    }

    /// Remove a research plugin with everything it kept: its key-value data, its pseudonym
    /// map and its component. Its runs' records stay (they are the study's record). Audited.
    pub async fn remove_research(&self, ctx: &Ctx, id: &str) -> Result<(), PluginError> {
        self.authorize(ctx, "research.remove", id).await?;
        if self.research_get(id).is_none() {
            return Err(PluginError::NotFound(id.into()));
        }
        let storage = &self.inner.services.storage;
        let ns = namespaced(id);
        let mut prefix = ns.clone().into_bytes();
        prefix.push(0);
        let mut b = Batch::new();
        b.delete(Tree::ResearchPlugins, id.as_bytes());
        let mut wiped = 0usize;
        for tree in [Tree::PluginKv, Tree::Pseudonyms] {
            for (k, _) in storage.scan(tree, &prefix, None, usize::MAX)? {
                b.delete(tree, k);
                wiped += 1;
            }
        }
        b.delete(Tree::PluginUsage, ns.as_bytes());
        let mut ev = ctx.event("research.remove", "success");
        ev.resource = Some(format!("ResearchPlugin/{id}"));
        ev.detail = Some(format!(
            "removed with its storage ({wiped} keys and pseudonyms wiped)"
        ));
        self.inner.services.audit.commit_with(&b, ev).await?;
        self.forget_usage(&ns);
        self.research().installed.write().expect("lock").remove(id);
        let _ = std::fs::remove_dir_all(self.inner.data_dir.join("research").join(id));
        Ok(())
    }

    fn research_view(&self, p: &Installed) -> ResearchView {
        let s = &p.stored.settings;
        ResearchView {
            id: p.stored.id.clone(),
            name: p.manifest.name.clone(),
            description: p.manifest.description.clone(),
            version: p.stored.version.clone(),
            sha256: p.stored.sha256.clone(),
            tier: "sandbox".into(),
            signed_by: p.stored.signed_by.clone(),
            installed_at: p.stored.installed_at.clone(),
            installed_by: p.stored.installed_by.clone(),
            capabilities: p.capabilities.iter().map(|c| c.to_string()).collect(),
            researchers: s.researchers.clone(),
            sites: s.sites.clone(),
            fuel: s.fuel.unwrap_or(self.inner.limits.research.fuel),
            memory_mib: s
                .memory_mib
                .unwrap_or(self.inner.limits.research.memory_mib),
            threshold: s.threshold,
            status: match &p.ready {
                Ok(_) => "ready".into(),
                Err(reason) => format!("failed: {reason}"),
            },
        }
    }

    /// Every research plugin (administrators).
    pub async fn list_research(&self, ctx: &Ctx) -> Result<Vec<ResearchView>, PluginError> {
        self.authorize(ctx, "research.list", "*").await?;
        let all: Vec<Arc<Installed>> = self
            .research()
            .installed
            .read()
            .expect("lock")
            .values()
            .cloned()
            .collect();
        Ok(all.iter().map(|p| self.research_view(p)).collect())
    }

    /// One research plugin (administrators).
    pub async fn show_research(&self, ctx: &Ctx, id: &str) -> Result<ResearchView, PluginError> {
        self.authorize(ctx, "research.show", id).await?;
        let p = self
            .research_get(id)
            .ok_or_else(|| PluginError::NotFound(id.into()))?;
        Ok(self.research_view(&p))
    }

    /// Whether `ctx` is a researcher this plugin is placed for, at the site it acts at.
    fn placed_for(p: &Installed, ctx: &Ctx) -> bool {
        let s = &p.stored.settings;
        ctx.roles.contains(&Role::Researcher)
            && s.researchers.contains(&ctx.user)
            && ctx.site.as_ref().is_some_and(|site| s.sites.contains(site))
    }

    /// The research plugins placed for the researcher `ctx` at their current site.
    pub fn research_for(&self, ctx: &Ctx) -> Vec<ResearchView> {
        let all: Vec<Arc<Installed>> = self
            .research()
            .installed
            .read()
            .expect("lock")
            .values()
            .cloned()
            .collect();
        all.iter()
            .filter(|p| Self::placed_for(p, ctx))
            .map(|p| self.research_view(p))
            .collect()
    }

    /// The plugin `id` if `ctx` may run it here; otherwise the refusal is audited and the
    /// plugin is reported as not found (a research plugin is invisible to everyone else).
    async fn research_visible(
        &self,
        ctx: &Ctx,
        id: &str,
        action: &str,
    ) -> Result<Arc<Installed>, ResearchError> {
        if let Some(p) = self.research_get(id)
            && Self::placed_for(&p, ctx)
        {
            return Ok(p);
        }
        let check = Check::new(action, Need::Permission(Permission::PatientsDeidentified))
            .resource(format!("ResearchPlugin/{id}"));
        let refusal = self
            .inner
            .services
            .gate
            .deny(
                ctx,
                check,
                format!(
                    "research plugin '{id}' is not placed for {} at {}",
                    ctx.user,
                    ctx.site.as_deref().unwrap_or("no site")
                ),
            )
            .await;
        match refusal {
            crate::access::Refusal::Denied(_) => Err(ResearchError::NotFound(id.into())),
            crate::access::Refusal::Audit(e) => Err(PluginError::Audit(e).into()),
        }
    }

    /// Run research plugin `id` for the researcher `person` (whose context is `ctx`) with
    /// `parameters` (a JSON object), its clocks at `as_of` (now when `None`). The run is
    /// recorded and audited whatever its outcome; a run that did not succeed is
    /// [`ResearchError::Failed`] with its record.
    pub async fn run_research(
        &self,
        ctx: &Ctx,
        person: Person,
        id: &str,
        parameters: serde_json::Value,
        as_of: Option<time::OffsetDateTime>,
    ) -> Result<RunRecord, ResearchError> {
        let p = self.research_visible(ctx, id, "research.run").await?;
        if !parameters.is_object() {
            return Err(ResearchError::Invalid(
                "parameters must be a JSON object (e.g. {} or {\"minAge\": 65})".into(),
            ));
        }
        let params_text = parameters.to_string();
        if params_text.len() > MAX_PARAMETERS {
            return Err(ResearchError::Invalid(format!(
                "parameters are {} bytes; at most {MAX_PARAMETERS}",
                params_text.len()
            )));
        }
        let pre = match &p.ready {
            Ok(pre) => pre.clone(),
            Err(reason) => {
                return Err(ResearchError::Busy(format!(
                    "research plugin '{id}' cannot run: {reason}"
                )));
            }
        };
        let limits = self.inner.limits.research.clone();
        let running = self
            .research()
            .running
            .get_or_init(|| tokio::sync::Semaphore::new(limits.concurrent.max(1) as usize));
        let timeout = std::time::Duration::from_millis(limits.timeout_ms.max(1));
        let _slot = tokio::time::timeout(timeout, running.acquire())
            .await
            .map_err(|_| {
                ResearchError::Busy("other research runs are using the sandbox; try again".into())
            })?
            .expect("never closed");

        let started = time::OffsetDateTime::now_utc();
        let as_of = as_of.unwrap_or(started);
        let as_of_millis = (as_of.unix_timestamp_nanos() / 1_000_000) as i64;
        let site = ctx.site.clone().unwrap_or_default();
        let budget = Budget {
            fuel: p.stored.settings.fuel.unwrap_or(limits.fuel),
            memory_mib: p.stored.settings.memory_mib.unwrap_or(limits.memory_mib),
        };

        // The call: the researcher's context, acting through `sandbox:<id>` with exactly the
        // capabilities its component imports (all of them within the research world's).
        let ns = namespaced(id);
        let mut run_ctx = ctx.clone();
        run_ctx.via = Some(ns.clone());
        run_ctx.plugin = Some(Arc::new(Acting {
            id: ns.clone(),
            site: site.clone(),
            declared: p.capabilities.clone(),
            granted: p.capabilities.clone(),
        }));
        let mut manifest = p.manifest.clone();
        manifest.id = ns.clone();
        let config = manifest
            .config
            .iter()
            .filter_map(|(k, spec)| spec.default.clone().map(|d| (k.clone(), d)))
            .collect();
        let loaded = Arc::new(Loaded {
            record: Record {
                id: ns.clone(),
                version: p.stored.version.clone(),
                sha256: p.stored.sha256.clone(),
                dev: p.stored.signed_by.is_none(),
                installed_at: p.stored.installed_at.clone(),
                installed_by: p.stored.installed_by.clone(),
                manifest: p.stored.manifest.clone(),
                origin: None,
                previous: None,
                staged: None,
            },
            manifest,
            status: Status::Failed(
                "a research plugin runs only through /api/v1/research/{id}/runs".into(),
            ),
        });
        let call = Arc::new(Call {
            config,
            plugin: loaded,
            site: site.clone(),
            site_name: person.site_name.clone(),
            ctx: run_ctx,
            person: Some(Arc::new(person)),
            depth: 0,
            event_depth: 0,
            as_of: Some(as_of.date()),
            callers_unsynced: false,
        });

        // Deterministic WASI: clocks at `as_of`, random numbers from a seed of the component,
        // the parameters and `as_of`; nothing else (no files, environment, arguments, stdio
        // or network).
        let mut seed = Sha256::new();
        seed.update(p.stored.sha256.as_bytes());
        seed.update([0]);
        seed.update(params_text.as_bytes());
        seed.update([0]);
        seed.update(as_of_millis.to_be_bytes());
        let seed: [u8; 32] = seed.finalize().into();
        let mut seed2 = seed;
        seed2[0] ^= 0xff;
        let wall = std::time::Duration::from_millis(as_of_millis.max(0) as u64);
        let wasi = wasmtime_wasi::WasiCtx::builder()
            .secure_random(rand_wasi::rngs::StdRng::from_seed(seed))
            .insecure_random(rand_wasi::rngs::StdRng::from_seed(seed2))
            .insecure_random_seed(u128::from_be_bytes(seed[..16].try_into().expect("16")))
            .wall_clock(FixedClock(wall))
            .monotonic_clock(FixedClock(std::time::Duration::ZERO))
            .build();
        let runtime = self.research_runtime().map_err(ResearchError::Busy)?;
        let memory = (budget.memory_mib as usize) << 20;
        let mut store = Store::new(
            &runtime.engine,
            Sandbox::with_wasi(self.clone(), call, wasi, memory),
        );
        store.limiter(|s| &mut s.limits);
        store.set_fuel(budget.fuel).map_err(internal)?;
        store
            .fuel_async_yield_interval(Some(FUEL_YIELD))
            .map_err(internal)?;

        let clock = std::time::Instant::now();
        let input = wit::RunInput {
            parameters: params_text,
            as_of_millis,
            site: site.clone(),
        };
        let fut = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance
                .osler_plugin_research_run()
                .call_run(&mut store, &input)
                .await
        };
        let out = tokio::time::timeout(timeout, fut).await;
        let duration_ms = clock.elapsed().as_millis() as u64;
        let fuel_left = store.get_fuel().unwrap_or(0);
        let fuel_used = budget.fuel.saturating_sub(fuel_left);
        let peak = store.data().limits.held() as u64;
        let patients_read = store.data().tally.deidentified.lock().expect("lock").len() as u64;
        // What the run read is on the audit trail, durably, before anything of it is shown.
        store
            .data()
            .reads_durable()
            .await
            .map_err(|e| internal(format!("the audit trail cannot be written: {e}")))?;
        drop(store);

        let threshold = p.stored.settings.threshold;
        let (outcome, error, result, suppressed) = match out {
            Err(_) => (
                "timeout",
                Some(format!(
                    "the run did not finish within {} ms of wall-clock time \
                     (plugins.research.timeout_ms)",
                    limits.timeout_ms
                )),
                None,
                0,
            ),
            Ok(Ok(Ok(table))) => match checked(table, threshold) {
                Ok((t, n)) => ("success", None, Some(t), n),
                Err(why) => ("invalid-result", Some(why), None, 0),
            },
            Ok(Ok(Err(e))) => ("plugin-error", Some(plugin_error(&e)), None, 0),
            Ok(Err(e)) => {
                let (o, m) = classify(&e, &budget);
                (o, Some(m), None, 0)
            }
        };
        let record = RunRecord {
            id: run_id(started),
            plugin: id.to_string(),
            version: p.stored.version.clone(),
            sha256: p.stored.sha256.clone(),
            user: ctx.user.clone(),
            site,
            started_at: rfc3339(started),
            as_of: rfc3339(as_of),
            parameters,
            budget,
            fuel_used,
            peak_memory_bytes: peak,
            patients_read,
            duration_ms,
            outcome: outcome.to_string(),
            error,
            result,
            threshold,
            suppressed,
        };
        self.store_run(ctx, &record).await?;
        if record.outcome != "success" {
            let message = format!(
                "{} (run {})",
                record.error.clone().unwrap_or_default(),
                record.id
            );
            return Err(ResearchError::Failed {
                run: Box::new(record),
                message,
            });
        }
        Ok(record)
    }

    /// Keep a run's record, with its audit entry, in one durable write.
    async fn store_run(&self, ctx: &Ctx, r: &RunRecord) -> Result<(), PluginError> {
        let mut b = Batch::new();
        b.put(
            Tree::ResearchRuns,
            r.id.as_bytes(),
            serde_json::to_vec(r).expect("runs serialise"),
        );
        let mut ev = ctx.event(
            "research.run",
            if r.outcome == "success" {
                "success"
            } else {
                "failure"
            },
        );
        ev.via = Some(namespaced(&r.plugin));
        ev.resource = Some(format!("ResearchRun/{}", r.id));
        ev.detail = Some(format!(
            "plugin {} {} sha256 {}; as of {}; budget {} fuel, {} MiB; fuel used {}; peak \
             memory {} bytes; patients read {}; {} ms; outcome {}{}{}",
            r.plugin,
            r.version,
            r.sha256,
            r.as_of,
            r.budget.fuel,
            r.budget.memory_mib,
            r.fuel_used,
            r.peak_memory_bytes,
            r.patients_read,
            r.duration_ms,
            r.outcome,
            match r.threshold {
                Some(t) => format!("; small-cell threshold {t}, {} suppressed", r.suppressed),
                None => String::new(),
            },
            r.error
                .as_deref()
                .map(|e| format!("; {e}"))
                .unwrap_or_default(),
        ));
        self.inner.services.audit.commit_with(&b, ev).await?;
        Ok(())
    }

    /// Whether `ctx` sees every run of `id`: administrators of plugins and readers of the audit
    /// trail do (through the gate; the look is audited only when refused).
    async fn may_see_all_runs(&self, ctx: &Ctx, id: &str) -> Result<bool, ResearchError> {
        const WHO: &[Permission] = &[Permission::PluginsManage, Permission::AuditRead];
        if !WHO.iter().any(|p| ctx.can(*p)) {
            return Ok(false);
        }
        let check =
            Check::new("research.runs", Need::AnyOf(WHO)).resource(format!("ResearchPlugin/{id}"));
        match self.inner.services.gate.check(ctx, check).await {
            Ok(()) => Ok(true),
            Err(crate::access::Refusal::Denied(_)) => Ok(false),
            Err(crate::access::Refusal::Audit(e)) => Err(PluginError::Audit(e).into()),
        }
    }

    /// Runs of research plugin `id`, newest first (at most `limit`): the researcher's own, or
    /// every run for an administrator (`plugins.manage` or `audit.read`).
    pub async fn research_runs(
        &self,
        ctx: &Ctx,
        id: &str,
        limit: usize,
    ) -> Result<Vec<RunRecord>, ResearchError> {
        let admin = self.may_see_all_runs(ctx, id).await?;
        if !admin {
            self.research_visible(ctx, id, "research.runs").await?;
        }
        let rows = self
            .inner
            .services
            .storage
            .scan(Tree::ResearchRuns, b"", None, usize::MAX)
            .map_err(PluginError::from)?;
        let mut out = Vec::new();
        for (_, v) in rows.into_iter().rev() {
            let Ok(r) = serde_json::from_slice::<RunRecord>(&v) else {
                continue;
            };
            if r.plugin == id && (admin || r.user == ctx.user) {
                out.push(r);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// One run of research plugin `id`, for the researcher who ran it or an administrator.
    pub async fn research_run(
        &self,
        ctx: &Ctx,
        id: &str,
        run: &str,
    ) -> Result<RunRecord, ResearchError> {
        let admin = self.may_see_all_runs(ctx, id).await?;
        if !admin {
            self.research_visible(ctx, id, "research.runs").await?;
        }
        let found = self
            .inner
            .services
            .storage
            .get(Tree::ResearchRuns, run.as_bytes())
            .map_err(PluginError::from)?
            .and_then(|v| serde_json::from_slice::<RunRecord>(&v).ok())
            .filter(|r| r.plugin == id && (admin || r.user == ctx.user));
        found.ok_or_else(|| ResearchError::NoRun(run.into()))
    }
}

/// Link the `research` world's imports — and nothing else — with the same host
/// implementations (and checks) as a clinical plugin's, and WASI with nothing granted.
fn research_link(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    use v0_2::osler::plugin as p;
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    p::types::add_to_linker::<_, caps::Types>(linker, Sandbox::types_view)?;
    p::log::add_to_linker::<_, caps::Log>(linker, Sandbox::log_view)?;
    p::config::add_to_linker::<_, caps::Config>(linker, Sandbox::config_view)?;
    p::kv::add_to_linker::<_, caps::Kv>(linker, Sandbox::kv_view)?;
    p::patients_deidentified::add_to_linker::<_, caps::Patients>(linker, Sandbox::patients_view)?;
    Ok(())
}

/// A clock that always reads the same time.
struct FixedClock(std::time::Duration);

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_millis(1)
    }
    fn now(&self) -> std::time::Duration {
        self.0
    }
}

impl wasmtime_wasi::HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        self.0.as_nanos() as u64
    }
}

/// A run id that sorts by time: `r<started, µs, 16 digits>-<8 random hex>`.
fn run_id(started: time::OffsetDateTime) -> String {
    let micros = (started.unix_timestamp_nanos() / 1_000).max(0);
    format!("r{micros:016}-{:08x}", rand::random::<u32>())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn join_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn plugin_error(e: &super::latest::Error) -> String {
    use super::latest::Error::*;
    let (what, m) = match e {
        Denied(m) => ("denied", m),
        NotFound(m) => ("not-found", m),
        Invalid(m) => ("invalid", m),
        Conflict(m) => ("conflict", m),
        Unavailable(m) => ("unavailable", m),
        TooLarge(m) => ("too-large", m),
        Internal(m) => ("internal", m),
    };
    format!("the plugin returned an error ({what}): {m}")
}

/// What ended a run that trapped.
fn classify(e: &wasmtime::Error, budget: &Budget) -> (&'static str, String) {
    let text = format!("{e:#}");
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => (
            "fuel-exhausted",
            format!(
                "the run used all of its fuel budget ({} units) and was stopped; an \
                 administrator can raise the plugin's fuel (PUT \
                 /api/v1/admin/research/{{id}}, \"fuel\")",
                budget.fuel
            ),
        ),
        _ if text.contains("forcing trap when growing memory") => (
            "memory-limit",
            format!(
                "the run reached its memory limit ({} MiB) and was stopped",
                budget.memory_mib
            ),
        ),
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            ("trap", "the plugin panicked or aborted".into())
        }
        Some(t) => ("trap", format!("the plugin stopped: {t}")),
        None => ("trap", format!("the plugin stopped: {text}")),
    }
}

/// The plugin's table, checked for shape and size, with counts below `threshold` suppressed;
/// and how many were.
fn checked(t: wit::Table, threshold: Option<u64>) -> Result<(Table, u64), String> {
    if t.columns.len() > MAX_COLUMNS || t.rows.len() > MAX_ROWS {
        return Err(format!(
            "the result has {} columns and {} rows; at most {MAX_COLUMNS} and {MAX_ROWS}",
            t.columns.len(),
            t.rows.len()
        ));
    }
    let long = |s: &str| s.len() > MAX_TEXT;
    if t.columns.iter().any(|c| long(c)) {
        return Err(format!("a column name is longer than {MAX_TEXT} bytes"));
    }
    let mut suppressed = 0;
    let mut rows = Vec::with_capacity(t.rows.len());
    for (i, row) in t.rows.into_iter().enumerate() {
        if row.len() != t.columns.len() {
            return Err(format!(
                "row {} has {} cells for {} columns",
                i + 1,
                row.len(),
                t.columns.len()
            ));
        }
        let mut cells = Vec::with_capacity(row.len());
        for c in row {
            cells.push(match c {
                wit::Cell::Count(n) if threshold.is_some_and(|t| n < t) => {
                    suppressed += 1;
                    Cell::Suppressed
                }
                wit::Cell::Count(n) => Cell::Count(n),
                wit::Cell::Number(x) if x.is_finite() => Cell::Number(x),
                wit::Cell::Number(_) => Cell::Empty,
                wit::Cell::Text(s) if long(&s) => {
                    return Err(format!("a text cell is longer than {MAX_TEXT} bytes"));
                }
                wit::Cell::Text(s) => Cell::Text(s),
                wit::Cell::Empty => Cell::Empty,
            });
        }
        rows.push(cells);
    }
    Ok((
        Table {
            columns: t.columns,
            rows,
        },
        suppressed,
    ))
}

fn placeholder(stored: &StoredPlugin) -> Manifest {
    Manifest {
        id: stored.id.clone(),
        name: stored.id.clone(),
        version: semver::Version::parse(&stored.version).unwrap_or(semver::Version::new(0, 0, 0)),
        description: String::new(),
        publisher: String::new(),
        api: semver::VersionReq::STAR,
        capabilities: BTreeSet::new(),
        outbound: vec![],
        outbound_config: vec![],
        exports: BTreeMap::new(),
        imports: BTreeMap::new(),
        optional_imports: BTreeSet::new(),
        subscribe: vec![],
        config: BTreeMap::new(),
        nav: vec![],
        panels: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_below_the_threshold_are_suppressed_and_others_kept() {
        let t = wit::Table {
            columns: vec!["group".into(), "n".into(), "mean".into()],
            rows: vec![
                vec![
                    wit::Cell::Text("a".into()),
                    wit::Cell::Count(3),
                    wit::Cell::Number(1.5),
                ],
                vec![
                    wit::Cell::Text("b".into()),
                    wit::Cell::Count(5),
                    wit::Cell::Number(f64::NAN),
                ],
            ],
        };
        let (out, n) = checked(t.clone(), Some(5)).expect("valid");
        assert_eq!(n, 1);
        assert_eq!(out.rows[0][1], Cell::Suppressed);
        assert_eq!(out.rows[1][1], Cell::Count(5));
        assert_eq!(out.rows[1][2], Cell::Empty);
        let (out, n) = checked(t, None).expect("valid");
        assert_eq!((n, &out.rows[0][1]), (0, &Cell::Count(3)));
        let bad = wit::Table {
            columns: vec!["a".into()],
            rows: vec![vec![]],
        };
        assert!(checked(bad, None).unwrap_err().contains("row 1"));
    }
}
