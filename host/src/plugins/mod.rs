//! The plugin runtime: installed plugins, their state at each site, and calls into them.
//!
//! - [`manifest`]: `plugin.toml`; [`package`]: the `.osp` file;
//! - [`engine`]: the wasmtime engine, limits and compiled-code cache;
//! - [`inspect`]: a component's real imports and exports against its manifest;
//! - [`sandbox`]: what one `Store` carries; [`caps`]: the host interfaces, one per file;
//! - [`instance`]: running a call, linking plugin-to-plugin imports;
//! - [`v0_1`]: the bindings of `osler:plugin@0.1.0`.
//!
//! A plugin's lifecycle (OpenMRS's, made loud): *installed* (its record and component are
//! stored), then *ready* or *failed* with a reason (checked and compiled at start-up or install;
//! one failed plugin never stops the others), and *enabled* or not at each site, with the
//! capabilities the administrator granted there. Changes take effect at once, without restart.

pub mod caps;
pub mod cli;
pub mod engine;
pub mod inspect;
pub mod instance;
pub mod manifest;
pub mod package;
pub mod publish;
pub mod registry;
pub mod sandbox;
pub mod v0_1;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use wasmtime::component::Val;

use crate::access::{Ctx, Permission, Role};
use crate::app::App;
use crate::audit::Audit;
use crate::sites::Sites;
use crate::storage::{Batch, Storage, StorageError, Tree, key};
use engine::{Limits, Runtime};
use inspect::Shape;
use instance::{Done, Pre, RunError, Work};
use manifest::{Capability, ConfigValue, Manifest};
use package::Package;
use sandbox::Call;

/// How deep plugin-to-plugin calls may nest.
const MAX_DEPTH: u8 = 4;
/// Log lines kept per plugin.
const LOG_LINES: usize = 500;

/// An installed plugin as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub version: String,
    pub sha256: String,
    /// Installed from an unsigned development package.
    pub dev: bool,
    pub installed_at: String,
    pub installed_by: String,
    /// The manifest as published (TOML).
    pub manifest: String,
    /// The registry and publisher a signed package came from.
    #[serde(default)]
    pub origin: Option<Origin>,
    /// The version installed before this one, kept for `rollback` (its component stays on
    /// disk).
    #[serde(default)]
    pub previous: Option<Box<Record>>,
    /// A newer version that asks for more than this one and waits for an administrator.
    #[serde(default)]
    pub staged: Option<Box<Record>>,
}

impl Record {
    /// This record as a `previous`/`staged` entry: one level deep, never a chain.
    fn alone(&self) -> Box<Record> {
        Box::new(Record {
            previous: None,
            staged: None,
            ..self.clone()
        })
    }
}

/// Where a signed package came from.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Origin {
    pub registry: String,
    pub publisher: String,
    /// The publisher key that signed it.
    pub key: String,
}

/// A package checked, compiled and stored on disk, not yet installed.
pub struct Prepared {
    record: Record,
    manifest: Manifest,
    component: Vec<u8>,
    pre: Pre,
    shape: Shape,
}

impl Prepared {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}

/// What an install did.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Outcome {
    /// Installed; `replaced` is the version it replaced.
    Installed { replaced: Option<String> },
    /// This exact version was already installed.
    Unchanged,
    /// Waiting for `osler plugin approve`: the new version asks for more than the installed one.
    Staged { version: String, added: Vec<String> },
}

/// How an install treats the installed version.
#[derive(Clone, Copy, Debug, Default)]
pub struct Policy {
    /// Allow a version lower than the installed one.
    pub force: bool,
    /// Stage (instead of installing) a version that asks for more capabilities.
    pub stage_new_capabilities: bool,
}

/// A plugin's state at one site.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct SiteState {
    pub enabled: bool,
    #[schema(value_type = Vec<String>)]
    pub grants: BTreeSet<Capability>,
    /// Values the administrator set; the manifest's defaults fill the rest.
    #[schema(value_type = Object)]
    pub config: BTreeMap<String, ConfigValue>,
}

#[derive(Clone)]
pub enum Status {
    Ready { pre: Pre, shape: Shape },
    Failed(String),
}

/// An installed plugin in memory.
pub struct Loaded {
    pub record: Record,
    pub manifest: Manifest,
    pub status: Status,
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("no plugin '{0}' is installed")]
    NotFound(String),
    #[error("no configured registry lists a plugin '{0}'")]
    NotListed(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Denied(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// A registry's metadata or package was refused, or nothing in it fits.
    #[error("registry '{registry}': {error}")]
    Registry {
        registry: String,
        error: osler_registry::Error,
    },
}

/// One line a plugin logged.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LogLine {
    pub time: String,
    pub site: String,
    pub level: String,
    pub message: String,
}

/// What the admin API and `osler plugin list` show of a plugin.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginView {
    pub id: String,
    pub name: String,
    pub version: String,
    pub publisher: String,
    pub description: String,
    /// `ready` or `failed`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Installed from an unsigned development package.
    pub development: bool,
    pub sha256: String,
    pub installed_at: String,
    pub installed_by: String,
    /// The registry and publisher of a signed package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The version `rollback` returns to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// A newer version waiting for approval, and what it adds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staged: Option<StagedView>,
    pub capabilities: Vec<String>,
    pub outbound: Vec<String>,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    pub sites: BTreeMap<String, SiteState>,
}

/// A version waiting for an administrator's approval.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StagedView {
    pub version: String,
    /// Capabilities and outbound origins it asks for that the installed version does not.
    pub adds: Vec<String>,
}

/// A navigation entry for the home page.
#[derive(Clone, Debug, Serialize)]
pub struct Nav {
    pub plugin: String,
    pub title: String,
    pub href: String,
}

/// The plugin runtime. Cheap to clone.
#[derive(Clone)]
pub struct Plugins {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    limits: Limits,
    storage: Storage,
    audit: Audit,
    sites: Sites,
    runtime: OnceLock<Result<Runtime, String>>,
    installed: RwLock<BTreeMap<String, Arc<Loaded>>>,
    state: RwLock<BTreeMap<(String, String), SiteState>>,
    logs: Mutex<HashMap<String, VecDeque<LogLine>>>,
    permits: tokio::sync::Semaphore,
    http: OnceLock<reqwest::Client>,
    secret: Vec<u8>,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn site_key(id: &str, site: &str) -> Vec<u8> {
    key(&[id.as_bytes(), site.as_bytes()])
}

impl Plugins {
    /// The runtime over an open database. Nothing is compiled until [`Plugins::load_all`].
    pub fn new(
        data_dir: &Path,
        limits: Limits,
        storage: Storage,
        audit: Audit,
        sites: Sites,
    ) -> anyhow::Result<Plugins> {
        const SECRET: &[u8] = b"plugins.pseudonym_secret";
        let secret = match storage.get(Tree::Meta, SECRET)? {
            Some(s) => s,
            None => {
                let s: [u8; 32] = rand::random();
                let mut b = Batch::new();
                b.put(Tree::Meta, SECRET, s.to_vec());
                storage.apply(&b)?;
                storage.durable_blocking()?;
                s.to_vec()
            }
        };
        let mut state = BTreeMap::new();
        for (k, v) in storage.scan(Tree::PluginSites, b"", None, usize::MAX)? {
            let mut parts = k.splitn(2, |b| *b == 0);
            let (Some(id), Some(site)) = (parts.next(), parts.next()) else {
                continue;
            };
            if let Ok(s) = serde_json::from_slice::<SiteState>(&v) {
                state.insert(
                    (
                        String::from_utf8_lossy(id).into_owned(),
                        String::from_utf8_lossy(site).into_owned(),
                    ),
                    s,
                );
            }
        }
        Ok(Plugins {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                permits: tokio::sync::Semaphore::new(limits.concurrent.max(1) as usize),
                limits,
                storage,
                audit,
                sites,
                runtime: OnceLock::new(),
                installed: RwLock::new(BTreeMap::new()),
                state: RwLock::new(state),
                logs: Mutex::new(HashMap::new()),
                http: OnceLock::new(),
                secret,
            }),
        })
    }

    /// The engine, built on first use.
    pub fn runtime(&self) -> Result<&Runtime, String> {
        self.inner
            .runtime
            .get_or_init(|| {
                Runtime::new(&self.inner.limits, &self.inner.data_dir)
                    .map_err(|e| format!("cannot start the plugin engine: {e:#}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn runtime_limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub(crate) async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.inner
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    pub(crate) fn pseudonym_secret(&self) -> &[u8] {
        &self.inner.secret
    }

    pub(crate) fn http_client(&self) -> &reqwest::Client {
        self.inner.http.get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("osler/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("an HTTP client with default TLS settings")
        })
    }

    fn component_path(&self, id: &str, version: &str, sha256: &str) -> PathBuf {
        self.inner
            .data_dir
            .join("plugins")
            .join(id)
            .join(format!("{version}-{}.wasm", &sha256[..16]))
    }

    /// Load every installed plugin: check its component's hash, compile it (or take it from
    /// the cache), check it against its manifest and link it. A plugin that fails is marked
    /// failed with the reason; the others load. Returns (loaded, compiled, failed).
    pub fn load_all(&self) -> anyhow::Result<(usize, usize, usize)> {
        let records = self
            .inner
            .storage
            .scan(Tree::Plugins, b"", None, usize::MAX)?;
        let (mut ok, mut compiled, mut failed) = (0, 0, 0);
        let mut map = BTreeMap::new();
        for (_, v) in records {
            let record: Record = match serde_json::from_slice(&v) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "unreadable plugin record skipped");
                    continue;
                }
            };
            let (loaded, was_compiled) = self.load(record);
            match &loaded.status {
                Status::Ready { .. } => ok += 1,
                Status::Failed(reason) => {
                    failed += 1;
                    tracing::error!(plugin = %loaded.record.id, %reason, "plugin failed to load");
                }
            }
            compiled += was_compiled as usize;
            map.insert(loaded.record.id.clone(), Arc::new(loaded));
        }
        *self.inner.installed.write().expect("lock") = map;
        Ok((ok, compiled, failed))
    }

    fn load(&self, record: Record) -> (Loaded, bool) {
        let manifest = match Manifest::parse(&record.manifest) {
            Ok(m) => m,
            Err(e) => {
                // Keep what can be shown; the plugin cannot run.
                let placeholder = Manifest {
                    id: record.id.clone(),
                    name: record.id.clone(),
                    version: semver::Version::parse(&record.version)
                        .unwrap_or(semver::Version::new(0, 0, 0)),
                    description: String::new(),
                    publisher: String::new(),
                    api: semver::VersionReq::STAR,
                    capabilities: BTreeSet::new(),
                    outbound: vec![],
                    exports: BTreeMap::new(),
                    imports: BTreeMap::new(),
                    subscribe: vec![],
                    config: BTreeMap::new(),
                    nav: vec![],
                };
                return (
                    Loaded {
                        record,
                        manifest: placeholder,
                        status: Status::Failed(e.to_string()),
                    },
                    false,
                );
            }
        };
        let path = self.component_path(&record.id, &record.version, &record.sha256);
        let result = (|| {
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read its component {}: {e}", path.display()))?;
            let sha = hex::encode(Sha256::digest(&bytes));
            if sha != record.sha256 {
                return Err(format!(
                    "its component changed on disk (sha256 {sha}, installed {}); reinstall it",
                    record.sha256
                ));
            }
            self.compile(&bytes, &sha, &manifest)
        })();
        match result {
            Ok((pre, shape, compiled)) => (
                Loaded {
                    record,
                    manifest,
                    status: Status::Ready { pre, shape },
                },
                compiled,
            ),
            Err(reason) => (
                Loaded {
                    record,
                    manifest,
                    status: Status::Failed(reason),
                },
                false,
            ),
        }
    }

    fn compile(
        &self,
        bytes: &[u8],
        sha: &str,
        manifest: &Manifest,
    ) -> Result<(Pre, Shape, bool), String> {
        let runtime = self.runtime()?;
        let (component, compiled) = runtime
            .component(bytes, sha)
            .map_err(|e| format!("{e:#}"))?;
        let shape = inspect::check(&runtime.engine, &component, manifest)?;
        let pre = instance::prepare(runtime, &component, &shape)?;
        Ok((pre, shape, compiled))
    }

    fn get(&self, id: &str) -> Option<Arc<Loaded>> {
        self.inner.installed.read().expect("lock").get(id).cloned()
    }

    pub fn site_state(&self, id: &str, site: &str) -> SiteState {
        self.inner
            .state
            .read()
            .expect("lock")
            .get(&(id.to_string(), site.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Whether plugin `id` is enabled at `site` (without copying its state).
    fn is_enabled(&self, id: &str, site: &str) -> bool {
        self.inner
            .state
            .read()
            .expect("lock")
            .get(&(id.to_string(), site.to_string()))
            .is_some_and(|s| s.enabled)
    }

    pub(crate) async fn authorize(
        &self,
        ctx: &Ctx,
        action: &str,
        id: &str,
    ) -> Result<(), PluginError> {
        if ctx.can(Permission::PluginsManage) {
            return Ok(());
        }
        let mut ev = ctx.event(action, "denied");
        ev.resource = Some(format!("Plugin/{id}"));
        self.inner.audit.record_durable(ev).await?;
        Err(PluginError::Denied(format!(
            "your role ({}) may not manage plugins",
            ctx.role_string()
        )))
    }

    /// Install (or upgrade to) the development package in `bytes` (a `.osp` file). Signed
    /// packages come through a registry ([`registry::install`]), which verifies them first.
    pub async fn install(
        &self,
        ctx: &Ctx,
        bytes: &[u8],
        dev: bool,
    ) -> Result<PluginView, PluginError> {
        self.authorize(ctx, "plugin.install", "?").await?;
        if !dev {
            return Err(PluginError::Invalid(
                "a package file installs only as an unsigned development package (the \
                 development flag: `osler plugin install --dev`, or `?dev=true`). Signed \
                 packages are installed from a registry, which verifies them: `osler plugin \
                 install <id>`"
                    .into(),
            ));
        }
        if !self.inner.limits.allow_unsigned {
            return Err(PluginError::Denied(
                "this server does not accept development packages; start it with \
                 `--dev-plugins` (or set plugins.allow_unsigned) to install one"
                    .into(),
            ));
        }
        let pkg = Package::read(bytes).map_err(PluginError::Invalid)?;
        let prepared = self.prepare(&pkg, None, &ctx.user).await?;
        let (view, _) = self.commit(ctx, prepared, Policy::default()).await?;
        Ok(view)
    }

    /// Check a package's manifest and component and compile it; nothing is written until
    /// [`Plugins::commit`]. `origin` is `None` for an unsigned development package.
    pub async fn prepare(
        &self,
        pkg: &Package,
        origin: Option<Origin>,
        by: &str,
    ) -> Result<Prepared, PluginError> {
        let manifest =
            Manifest::parse(&pkg.manifest).map_err(|e| PluginError::Invalid(e.to_string()))?;
        let id = manifest.id.clone();
        let sha = hex::encode(Sha256::digest(&pkg.component));
        let this = self.clone();
        let (component, manifest2) = (pkg.component.clone(), manifest.clone());
        let sha2 = sha.clone();
        let (pre, shape, _) =
            tokio::task::spawn_blocking(move || this.compile(&component, &sha2, &manifest2))
                .await
                .map_err(|e| PluginError::Invalid(format!("compilation failed: {e}")))?
                .map_err(PluginError::Invalid)?;
        Ok(Prepared {
            record: Record {
                id,
                version: manifest.version.to_string(),
                sha256: sha,
                dev: origin.is_none(),
                installed_at: now(),
                installed_by: by.to_string(),
                manifest: pkg.manifest.clone(),
                origin,
                previous: None,
                staged: None,
            },
            manifest,
            component: pkg.component.clone(),
            pre,
            shape,
        })
    }

    /// Store a prepared component under its version and hash (kept for rollback).
    fn store_component(&self, p: &Prepared) -> Result<(), PluginError> {
        let path = self.component_path(&p.record.id, &p.record.version, &p.record.sha256);
        write_durable(&path, &p.component)
            .map_err(|e| StorageError::Io(format!("cannot store the component: {e}")).into())
    }

    /// What `new` asks for that the installed `old` did not: capabilities and outbound origins.
    fn added_access(old: &Manifest, new: &Manifest) -> Vec<String> {
        let mut added: Vec<String> = new
            .capabilities
            .difference(&old.capabilities)
            .map(|c| c.to_string())
            .collect();
        added.extend(
            new.outbound
                .iter()
                .filter(|o| !old.outbound.contains(o))
                .map(|o| format!("outbound {o}")),
        );
        added
    }

    /// Install a prepared package, applying `policy` against the installed version. One
    /// atomic, audited write; the change takes effect for the next request.
    pub async fn commit(
        &self,
        ctx: &Ctx,
        new: Prepared,
        policy: Policy,
    ) -> Result<(PluginView, Outcome), PluginError> {
        let id = new.record.id.clone();
        let old = self.get(&id);
        let mut record = new.record.clone();
        let mut outcome = Outcome::Installed { replaced: None };
        if let Some(old) = &old {
            let (ov, nv) = (&old.manifest.version, &new.manifest.version);
            if old.record.sha256 == record.sha256 && ov == nv {
                return Ok((self.view(&id).expect("installed"), Outcome::Unchanged));
            }
            if ov == nv {
                return Err(PluginError::Conflict(format!(
                    "'{id}' {nv} is installed with different contents; a changed plugin needs a \
                     new version number"
                )));
            }
            if ov > nv && !policy.force {
                return Err(PluginError::Conflict(format!(
                    "'{id}' {ov} is installed and {nv} is older; an administrator can force a \
                     downgrade (--force), or return to the previous version with `osler plugin \
                     rollback {id}`"
                )));
            }
            let added = Self::added_access(&old.manifest, &new.manifest);
            if policy.stage_new_capabilities && !added.is_empty() {
                self.store_component(&new)?;
                let mut staged_record = old.record.clone();
                staged_record.staged = Some(record.alone());
                let mut ev = ctx.event("plugin.stage", "success");
                ev.resource = Some(format!("Plugin/{id}@{nv}"));
                ev.detail = Some(format!(
                    "{nv} asks for more than {ov}: {}; waiting for approval",
                    added.join(", ")
                ));
                self.store_record(&staged_record, ev).await?;
                self.replace_loaded(Loaded {
                    record: staged_record,
                    manifest: old.manifest.clone(),
                    status: old.status.clone(),
                });
                return Ok((
                    self.view(&id).expect("installed"),
                    Outcome::Staged {
                        version: nv.to_string(),
                        added,
                    },
                ));
            }
            record.previous = Some(old.record.alone());
            outcome = Outcome::Installed {
                replaced: Some(ov.to_string()),
            };
        }
        self.store_component(&new)?;
        let mut ev = ctx.event("plugin.install", "success");
        ev.resource = Some(format!("Plugin/{id}@{}", record.version));
        ev.detail = Some(match (&record.origin, &outcome) {
            (None, _) => "development package (unsigned)".into(),
            (Some(o), Outcome::Installed { replaced: Some(v) }) => format!(
                "signed package from registry '{}', publisher '{}' (replaces {v})",
                o.registry, o.publisher
            ),
            (Some(o), _) => format!(
                "signed package from registry '{}', publisher '{}'",
                o.registry, o.publisher
            ),
        });
        self.store_record(&record, ev).await?;
        self.replace_loaded(Loaded {
            record,
            manifest: new.manifest,
            status: Status::Ready {
                pre: new.pre,
                shape: new.shape,
            },
        });
        Ok((self.view(&id).expect("just installed"), outcome))
    }

    async fn store_record(
        &self,
        record: &Record,
        ev: crate::audit::Event,
    ) -> Result<(), PluginError> {
        let mut b = Batch::new();
        b.put(
            Tree::Plugins,
            record.id.as_bytes(),
            serde_json::to_vec(record).expect("records serialise"),
        );
        self.inner.audit.commit_with(&b, ev).await?;
        Ok(())
    }

    fn replace_loaded(&self, loaded: Loaded) {
        self.inner
            .installed
            .write()
            .expect("lock")
            .insert(loaded.record.id.clone(), Arc::new(loaded));
    }

    /// Switch to `record` (the staged or previous version), loading its stored component and
    /// re-checking its hash; nothing changes if it cannot load.
    async fn switch_to(
        &self,
        ctx: &Ctx,
        record: Record,
        action: &str,
        detail: String,
    ) -> Result<PluginView, PluginError> {
        let this = self.clone();
        let (loaded, _) = tokio::task::spawn_blocking(move || this.load(record))
            .await
            .map_err(|e| PluginError::Invalid(format!("cannot load: {e}")))?;
        if let Status::Failed(reason) = &loaded.status {
            return Err(PluginError::Conflict(format!(
                "'{}' {} cannot be loaded: {reason}",
                loaded.record.id, loaded.record.version
            )));
        }
        let mut ev = ctx.event(action, "success");
        ev.resource = Some(format!(
            "Plugin/{}@{}",
            loaded.record.id, loaded.record.version
        ));
        ev.detail = Some(detail);
        self.store_record(&loaded.record, ev).await?;
        let id = loaded.record.id.clone();
        self.replace_loaded(loaded);
        Ok(self.view(&id).expect("installed"))
    }

    /// Install the staged version that asked for more; returns it and what it added.
    pub async fn approve(
        &self,
        ctx: &Ctx,
        id: &str,
    ) -> Result<(PluginView, Vec<String>), PluginError> {
        self.authorize(ctx, "plugin.approve", id).await?;
        let cur = self.require(id)?;
        let Some(staged) = cur.record.staged.clone() else {
            return Err(PluginError::Conflict(format!(
                "'{id}' has no version waiting for approval"
            )));
        };
        let new_manifest =
            Manifest::parse(&staged.manifest).map_err(|e| PluginError::Invalid(e.to_string()))?;
        let added = Self::added_access(&cur.manifest, &new_manifest);
        let mut record = *staged;
        record.previous = Some(cur.record.alone());
        let detail = format!(
            "approved {} (replaces {}), adding: {}",
            record.version,
            cur.record.version,
            added.join(", ")
        );
        let view = self
            .switch_to(ctx, record, "plugin.approve", detail)
            .await?;
        Ok((view, added))
    }

    /// Return to the version installed before this one (kept on disk); running it again
    /// returns to this one.
    pub async fn rollback(&self, ctx: &Ctx, id: &str) -> Result<PluginView, PluginError> {
        self.authorize(ctx, "plugin.rollback", id).await?;
        let cur = self.require(id)?;
        let Some(prev) = cur.record.previous.clone() else {
            return Err(PluginError::Conflict(format!(
                "'{id}' has no earlier version to roll back to"
            )));
        };
        let mut record = *prev;
        record.previous = Some(cur.record.alone());
        let detail = format!(
            "rolled back from {} to {}",
            cur.record.version, record.version
        );
        self.switch_to(ctx, record, "plugin.rollback", detail).await
    }

    /// The installed version of `id`, and where it came from.
    pub fn installed(&self, id: &str) -> Option<(semver::Version, Option<Origin>)> {
        self.get(id)
            .map(|p| (p.manifest.version.clone(), p.record.origin.clone()))
    }

    /// Whether an installed plugin exports `interface` at a version `req` accepts.
    pub fn provides(&self, interface: &str, req: &semver::VersionReq) -> bool {
        self.inner
            .installed
            .read()
            .expect("lock")
            .values()
            .any(|p| {
                p.manifest
                    .exports
                    .get(interface)
                    .is_some_and(|v| req.matches(v))
            })
    }

    fn require(&self, id: &str) -> Result<Arc<Loaded>, PluginError> {
        self.get(id).ok_or_else(|| PluginError::NotFound(id.into()))
    }

    /// What every change of a plugin's state at a site checks first: that the caller may
    /// manage plugins (a refusal is audited), that the plugin is installed and the site exists.
    async fn site_change(
        &self,
        ctx: &Ctx,
        action: &str,
        id: &str,
        site: &str,
    ) -> Result<Arc<Loaded>, PluginError> {
        self.authorize(ctx, action, id).await?;
        let p = self.require(id)?;
        if self.inner.sites.get(site)?.is_none() {
            return Err(PluginError::Invalid(format!("there is no site '{site}'")));
        }
        Ok(p)
    }

    async fn update_site(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
        action: &str,
        detail: String,
        change: impl FnOnce(&mut SiteState),
    ) -> Result<SiteState, PluginError> {
        let mut s = self.site_state(id, site);
        change(&mut s);
        let mut b = Batch::new();
        b.put(
            Tree::PluginSites,
            site_key(id, site),
            serde_json::to_vec(&s).expect("serialises"),
        );
        let mut ev = ctx.event(action, "success");
        ev.site = Some(site.into());
        ev.resource = Some(format!("Plugin/{id}"));
        ev.detail = Some(detail);
        self.inner.audit.commit_with(&b, ev).await?;
        self.inner
            .state
            .write()
            .expect("lock")
            .insert((id.into(), site.into()), s.clone());
        Ok(s)
    }

    /// Enable or disable a plugin at a site. Takes effect for the next request.
    pub async fn set_enabled(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
        enabled: bool,
    ) -> Result<SiteState, PluginError> {
        let action = if enabled {
            "plugin.enable"
        } else {
            "plugin.disable"
        };
        let p = self.site_change(ctx, action, id, site).await?;
        if enabled && let Status::Failed(reason) = &p.status {
            return Err(PluginError::Conflict(format!(
                "'{id}' failed to load and cannot be enabled: {reason}"
            )));
        }
        self.update_site(ctx, id, site, action, String::new(), |s| {
            s.enabled = enabled
        })
        .await
    }

    /// Set exactly the capabilities granted to a plugin at a site. Each must be one its
    /// manifest asks for.
    pub async fn set_grants(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
        grants: BTreeSet<Capability>,
    ) -> Result<SiteState, PluginError> {
        let p = self.site_change(ctx, "plugin.grant", id, site).await?;
        if let Some(extra) = grants.iter().find(|g| !p.manifest.capabilities.contains(g)) {
            let asked: Vec<&str> = p.manifest.capabilities.iter().map(|c| c.as_str()).collect();
            return Err(PluginError::Invalid(format!(
                "'{id}' does not ask for {extra}; it asks for: {}",
                if asked.is_empty() {
                    "nothing".into()
                } else {
                    asked.join(", ")
                }
            )));
        }
        let detail = grants
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        self.update_site(
            ctx,
            id,
            site,
            "plugin.grant",
            format!("granted: {detail}"),
            |s| s.grants = grants,
        )
        .await
    }

    /// Set one configuration value of a plugin at a site (`None` restores the default).
    pub async fn set_config(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
        key_name: &str,
        value: Option<ConfigValue>,
    ) -> Result<SiteState, PluginError> {
        let p = self.site_change(ctx, "plugin.config", id, site).await?;
        let spec = setting(&p, key_name)?;
        let value = match value {
            Some(v) => {
                let json = serde_json::to_value(&v).unwrap_or_default();
                Some(
                    ConfigValue::typed(spec.ty, &json)
                        .map_err(|m| PluginError::Invalid(format!("setting '{key_name}': {m}")))?,
                )
            }
            None => None,
        };
        let key_name = key_name.to_string();
        self.update_site(
            ctx,
            id,
            site,
            "plugin.config",
            format!("setting {key_name}"),
            move |s| match value {
                Some(v) => {
                    s.config.insert(key_name, v);
                }
                None => {
                    s.config.remove(&key_name);
                }
            },
        )
        .await
    }

    /// Remove a plugin: its code and its state at every site. Its key-value data stays, so
    /// that reinstalling it finds its data again.
    pub async fn remove(&self, ctx: &Ctx, id: &str) -> Result<(), PluginError> {
        self.authorize(ctx, "plugin.remove", id).await?;
        self.require(id)?;
        let mut b = Batch::new();
        b.delete(Tree::Plugins, id.as_bytes());
        let keys: Vec<(String, String)> = self
            .inner
            .state
            .read()
            .expect("lock")
            .keys()
            .filter(|(p, _)| p == id)
            .cloned()
            .collect();
        for (p, s) in &keys {
            b.delete(Tree::PluginSites, site_key(p, s));
        }
        let mut ev = ctx.event("plugin.remove", "success");
        ev.resource = Some(format!("Plugin/{id}"));
        self.inner.audit.commit_with(&b, ev).await?;
        {
            let mut st = self.inner.state.write().expect("lock");
            for k in keys {
                st.remove(&k);
            }
        }
        self.inner.installed.write().expect("lock").remove(id);
        let _ = std::fs::remove_dir_all(self.inner.data_dir.join("plugins").join(id));
        Ok(())
    }

    pub fn view(&self, id: &str) -> Option<PluginView> {
        let p = self.get(id)?;
        let sites = self
            .inner
            .state
            .read()
            .expect("lock")
            .iter()
            .filter(|((pid, _), _)| pid == id)
            .map(|((_, site), s)| (site.clone(), s.clone()))
            .collect();
        let (state, failure) = match &p.status {
            Status::Ready { .. } => ("ready", None),
            Status::Failed(r) => ("failed", Some(r.clone())),
        };
        let m = &p.manifest;
        Some(PluginView {
            id: m.id.clone(),
            name: m.name.clone(),
            version: p.record.version.clone(),
            publisher: m.publisher.clone(),
            description: m.description.clone(),
            state: state.into(),
            failure,
            development: p.record.dev,
            sha256: p.record.sha256.clone(),
            installed_at: p.record.installed_at.clone(),
            installed_by: p.record.installed_by.clone(),
            origin: p.record.origin.clone(),
            previous_version: p.record.previous.as_ref().map(|r| r.version.clone()),
            staged: p.record.staged.as_ref().map(|r| StagedView {
                version: r.version.clone(),
                adds: Manifest::parse(&r.manifest)
                    .map(|n| Self::added_access(m, &n))
                    .unwrap_or_default(),
            }),
            capabilities: m.capabilities.iter().map(|c| c.to_string()).collect(),
            outbound: m.outbound.clone(),
            exports: m.exports.iter().map(|(k, v)| format!("{k}@{v}")).collect(),
            imports: m.imports.iter().map(|(k, v)| format!("{k} {v}")).collect(),
            sites,
        })
    }

    pub fn list(&self) -> Vec<PluginView> {
        let ids: Vec<String> = self
            .inner
            .installed
            .read()
            .expect("lock")
            .keys()
            .cloned()
            .collect();
        ids.iter().filter_map(|id| self.view(id)).collect()
    }

    /// The navigation entries of the plugins enabled and ready at `site` that `roles` may see.
    pub fn nav(&self, site: &str, roles: &[Role]) -> Vec<Nav> {
        let installed = self.inner.installed.read().expect("lock");
        let mut out = Vec::new();
        for (id, p) in installed.iter() {
            if !matches!(p.status, Status::Ready { .. }) || !self.is_enabled(id, site) {
                continue;
            }
            for n in &p.manifest.nav {
                let visible = match &n.roles {
                    None => true,
                    Some(rs) => rs.iter().any(|r| roles.contains(r)),
                };
                if visible {
                    out.push(Nav {
                        plugin: id.clone(),
                        title: n.title.clone(),
                        href: format!("/plugins/{id}{}", n.path),
                    });
                }
            }
        }
        out
    }

    /// The call context for plugin `p` at `site` on behalf of `ctx`.
    fn call_for(&self, p: Arc<Loaded>, site: &str, mut ctx: Ctx, depth: u8) -> Arc<Call> {
        let state = self.site_state(&p.manifest.id, site);
        let mut config: BTreeMap<String, ConfigValue> = p
            .manifest
            .config
            .iter()
            .filter_map(|(k, spec)| spec.default.clone().map(|d| (k.clone(), d)))
            .collect();
        for (k, v) in state.config {
            if p.manifest.config.contains_key(&k) {
                config.insert(k, v);
            }
        }
        ctx.via = Some(match ctx.via.take() {
            Some(chain) => format!("{chain}>{}", p.manifest.id),
            None => p.manifest.id.clone(),
        });
        ctx.site = Some(site.to_string());
        Arc::new(Call {
            plugin: p,
            site: site.into(),
            ctx,
            grants: state.grants,
            config,
            depth,
        })
    }

    /// The plugin `id` if it is installed, ready and enabled at `site`.
    pub fn enabled(&self, id: &str, site: &str) -> Result<Arc<Loaded>, Unavailable> {
        let Some(p) = self.get(id) else {
            return Err(Unavailable::NotEnabled);
        };
        if !self.is_enabled(id, site) {
            return Err(Unavailable::NotEnabled);
        }
        if let Status::Failed(reason) = &p.status {
            return Err(Unavailable::Failed(reason.clone()));
        }
        Ok(p)
    }

    /// Route an HTTP request to plugin `p` for `ctx` at `site`.
    pub async fn handle(
        &self,
        app: &App,
        p: Arc<Loaded>,
        site: &str,
        ctx: Ctx,
        req: v0_1::Request,
    ) -> Result<v0_1::Response, RunError> {
        let Status::Ready { pre, .. } = &p.status else {
            return Err(RunError::Failed("the plugin failed to load".into()));
        };
        let call = self.call_for(p.clone(), site, ctx, 0);
        match instance::run(app, call, pre, Work::Handle(req)).await? {
            Done::Response(r) => Ok(r),
            _ => Err(RunError::Failed("unexpected answer".into())),
        }
    }

    /// A call from one plugin into the interface `base` (at a version compatible with
    /// `version`) that another plugin enabled at the same site exports. The callee runs with
    /// the same person, its own grants, and `via` naming both plugins.
    pub async fn call_provider(
        &self,
        app: &App,
        call: &Call,
        base: &str,
        version: &semver::Version,
        func: &str,
        params: Vec<Val>,
    ) -> Result<Val, v0_1::Error> {
        if call.depth >= MAX_DEPTH {
            return Err(v0_1::Error::Internal(format!(
                "plugin-to-plugin calls are nested more than {MAX_DEPTH} deep"
            )));
        }
        let provider = {
            let installed = self.inner.installed.read().expect("lock");
            installed.values().find_map(|p| {
                let Status::Ready { shape, .. } = &p.status else {
                    return None;
                };
                if !self.is_enabled(&p.manifest.id, &call.site) {
                    return None;
                }
                shape
                    .exports
                    .iter()
                    .find(|e| e.base == base && compatible(&e.version, version))
                    .map(|e| (p.clone(), e.name.clone()))
            })
        };
        let Some((p, export)) = provider else {
            return Err(v0_1::Error::Unavailable(format!(
                "no plugin providing {base}@{version} is enabled at site '{}'",
                call.site
            )));
        };
        let Status::Ready { pre, .. } = &p.status else {
            unreachable!("filtered above");
        };
        let sub = self.call_for(p.clone(), &call.site, call.ctx.clone(), call.depth + 1);
        let work = Work::Export {
            export,
            func: func.into(),
            params,
        };
        match Box::pin(instance::run(app, sub, pre, work)).await {
            Ok(Done::Export(v)) => Ok(v),
            Ok(_) => Err(v0_1::Error::Internal("unexpected answer".into())),
            Err(e) => {
                tracing::warn!(plugin = %p.manifest.id, error = %e, "plugin-to-plugin call failed");
                Err(v0_1::Error::Internal(format!(
                    "plugin '{}' failed: {e}",
                    p.manifest.id
                )))
            }
        }
    }

    /// Deliver an event to the plugins enabled at `site` that subscribe to `topic`, after the
    /// publishing call returns. Each runs as itself: its own grants, a `system` actor.
    pub fn publish(&self, app: &App, site: &str, source: &str, topic: String, payload: String) {
        let subscribers: Vec<Arc<Loaded>> = self
            .inner
            .installed
            .read()
            .expect("lock")
            .values()
            .filter(|p| {
                matches!(p.status, Status::Ready { .. })
                    && p.manifest.subscribe.contains(&topic)
                    && self.is_enabled(&p.manifest.id, site)
            })
            .cloned()
            .collect();
        for p in subscribers {
            let ctx = Ctx {
                user: "system".into(),
                roles: vec![],
                site: Some(site.into()),
                patient: None,
                source: Some(format!("event {topic}")),
                via: None,
            };
            let call = self.call_for(p.clone(), site, ctx, 0);
            let ev = v0_1::Event {
                topic: topic.clone(),
                payload: payload.clone(),
                site: site.into(),
                source: source.into(),
            };
            let app = app.clone();
            tokio::spawn(async move {
                let Status::Ready { pre, .. } = &p.status else {
                    return;
                };
                match instance::run(&app, call, pre, Work::Event(ev)).await {
                    Ok(Done::Event(Ok(()))) => {}
                    Ok(Done::Event(Err(e))) => {
                        tracing::warn!(plugin = %p.manifest.id, error = %e, "event handler refused an event")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(plugin = %p.manifest.id, error = %e, "event handler failed")
                    }
                }
            });
        }
    }

    pub(crate) fn log_line(&self, id: &str, site: &str, level: &str, message: &str) {
        let mut message: String = message.chars().take(2000).collect();
        message.retain(|c| !c.is_control() || c == '\t');
        let mut logs = self.inner.logs.lock().expect("lock");
        let q = logs.entry(id.to_string()).or_default();
        if q.len() == LOG_LINES {
            q.pop_front();
        }
        q.push_back(LogLine {
            time: now(),
            site: site.into(),
            level: level.into(),
            message,
        });
    }

    /// For benchmarks and diagnostics: the mean time to create a sandbox (a fresh `Store` with
    /// its limits) and instantiate plugin `id` in it, over `n` rounds. Nothing is called.
    pub async fn time_instantiation(
        &self,
        app: &App,
        id: &str,
        site: &str,
        n: u32,
    ) -> Result<std::time::Duration, String> {
        let p = self.get(id).ok_or("no such plugin")?;
        let Status::Ready { pre, .. } = &p.status else {
            return Err("the plugin failed to load".into());
        };
        let Pre::V0_1(pre) = pre;
        let runtime = self.runtime()?;
        let call = self.call_for(p.clone(), site, Ctx::system("bench"), 0);
        let started = std::time::Instant::now();
        for _ in 0..n {
            let mut store = wasmtime::Store::new(
                &runtime.engine,
                sandbox::Sandbox::new(app.clone(), call.clone()),
            );
            store.limiter(|s| &mut s.limits);
            store.set_epoch_deadline(1);
            store.epoch_deadline_async_yield_and_update(1);
            pre.instance_pre()
                .instantiate_async(&mut store)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(started.elapsed() / n.max(1))
    }

    /// The type of setting `key` of plugin `id`, or an error naming the settings it has.
    pub fn setting_type(&self, id: &str, key: &str) -> Result<manifest::ConfigType, PluginError> {
        let p = self.require(id)?;
        Ok(setting(&p, key)?.ty)
    }

    /// The last lines a plugin logged (kept in memory).
    pub fn logs(&self, id: &str) -> Vec<LogLine> {
        self.inner
            .logs
            .lock()
            .expect("lock")
            .get(id)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The declaration of setting `key` in `p`'s manifest, or an error naming the settings there are.
fn setting<'a>(p: &'a Loaded, key: &str) -> Result<&'a manifest::ConfigSpec, PluginError> {
    p.manifest.config.get(key).ok_or_else(|| {
        let keys: Vec<&str> = p.manifest.config.keys().map(String::as_str).collect();
        PluginError::Invalid(format!(
            "'{}' has no setting '{key}'; its settings are: {}",
            p.manifest.id,
            if keys.is_empty() {
                "none".into()
            } else {
                keys.join(", ")
            }
        ))
    })
}

/// Why a plugin cannot serve at a site.
pub enum Unavailable {
    NotEnabled,
    Failed(String),
}

/// Whether an export at `have` satisfies an import of `want` (semver: same major, and for
/// 0.x the same minor, and not older).
fn compatible(have: &semver::Version, want: &semver::Version) -> bool {
    if have < want {
        return false;
    }
    if want.major == 0 {
        have.major == 0 && have.minor == want.minor
    } else {
        have.major == want.major
    }
}

fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("component paths have a parent");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_versions_match_by_semver() {
        let v = |s| semver::Version::parse(s).unwrap();
        assert!(compatible(&v("0.1.3"), &v("0.1.0")));
        assert!(!compatible(&v("0.2.0"), &v("0.1.0")));
        assert!(!compatible(&v("0.1.0"), &v("0.1.2")));
        assert!(compatible(&v("1.4.0"), &v("1.2.0")));
        assert!(!compatible(&v("2.0.0"), &v("1.2.0")));
    }
}
