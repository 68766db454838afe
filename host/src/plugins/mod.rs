//! The plugin runtime: installed plugins, their state at each site, and calls into them.
//!
//! - [`manifest`]: `plugin.toml`; [`package`]: the `.osp` file;
//! - [`engine`]: the wasmtime engine, limits and compiled-code cache;
//! - [`inspect`]: a component's real imports and exports against its manifest;
//! - [`lifecycle`]: install, update, approve, roll back, remove, load at start-up;
//! - [`site`]: each plugin's state at each site (enabled, grants, settings);
//! - [`dispatch`]: calls into plugins — requests, plugin-to-plugin calls, events;
//! - [`views`]: what administrators and the pages see (listings, navigation, plugin logs);
//! - [`sandbox`]: what one `Store` carries; [`caps`]: the host interfaces, one per file, each
//!   with a narrow view of the sandbox;
//! - [`instance`]: running a call in a fresh sandbox, linking plugin-to-plugin imports;
//! - [`v0_1`]: the bindings of `osler:plugin@0.1.0`; [`latest`]: the types the rest of the
//!   host uses, whatever version a plugin was built against;
//! - [`registry`]: installing from signed registries;
//! - [`research`]: the research sandbox — a second trust tier of untrusted plugins run by
//!   named researchers on de-identified data, on an engine of its own (fuel, determinism).
//!
//! A plugin's lifecycle (OpenMRS's, made loud): *installed* (its record and component are
//! stored), then *ready* or *failed* with a reason (checked and compiled at start-up or install;
//! one failed plugin never stops the others), and *enabled* or not at each site, with the
//! capabilities the administrator granted there. Changes take effect at once, without restart.
//!
//! Dependencies point one way: the runtime is given the services it needs ([`Services`]:
//! storage, audit, the gate, sites, patients, accounts) and never the application around it.

pub mod bindings;
pub mod caps;
pub mod dispatch;
pub mod engine;
pub mod events;
pub mod inspect;
pub mod instance;
pub mod latest;
pub mod lifecycle;
pub mod manifest;
pub mod package;
pub mod quota;
pub mod registry;
pub mod research;
pub mod sandbox;
pub mod site;
pub mod v0_1;
pub mod v0_2;
pub mod views;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::access::{Check, Ctx, Gate, Need, Permission, Refusal};
use crate::audit::Audit;
use crate::auth::Accounts;
use crate::config::RegistryConfig;
use crate::patients::Patients;
use crate::sites::Sites;
use crate::storage::{Batch, Storage, StorageError, Tree};
use engine::{Limits, Runtime};
use inspect::Shape;
use instance::{MemoryBudget, Pre};
use manifest::Manifest;

pub use lifecycle::{Origin, Outcome, Policy, Prepared, Record};
pub use site::{SiteState, Unavailable};
pub use views::{ConfiguredOrigin, LogLine, Nav, OriginAt, PanelRef, PluginView, StagedView};

/// The services of the host the plugin runtime uses: all it knows of the rest of Osler.
#[derive(Clone)]
pub struct Services {
    pub storage: Storage,
    pub audit: Audit,
    pub gate: Gate,
    pub sites: Sites,
    pub patients: Patients,
    pub accounts: Accounts,
    /// The clinic's IANA time zone (`timezone` in `osler.toml`).
    pub timezone: String,
    /// The registries plugins are installed from (`[[registries]]`).
    pub registries: Vec<RegistryConfig>,
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

impl From<Refusal> for PluginError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Denied(m) => PluginError::Denied(m),
            Refusal::Audit(e) => PluginError::Audit(e),
        }
    }
}

/// How much of something each plugin did in the current minute (audit entries, events).
#[derive(Default)]
pub struct PerMinute(Mutex<HashMap<String, (i64, u32)>>);

impl PerMinute {
    /// Count one for `id`, unless it already had `max` this minute.
    pub fn take(&self, id: &str, max: u32) -> bool {
        let minute = time::OffsetDateTime::now_utc().unix_timestamp() / 60;
        let mut map = self.0.lock().expect("lock");
        // Keyed by anything (a source address, for inbound requests): forget past minutes
        // before the map grows large.
        if map.len() >= 10_000 {
            map.retain(|_, (m, _)| *m == minute);
            // Still that many this minute: refuse newcomers rather than grow without bound.
            if map.len() >= 100_000 && !map.contains_key(id) {
                return false;
            }
        }
        let e = map.entry(id.to_string()).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        if e.1 >= max {
            return false;
        }
        e.1 += 1;
        true
    }
}

/// The plugin runtime. Cheap to clone.
#[derive(Clone)]
pub struct Plugins {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    limits: Limits,
    services: Services,
    runtime: OnceLock<Result<Runtime, String>>,
    installed: RwLock<BTreeMap<String, Arc<Loaded>>>,
    state: RwLock<BTreeMap<(String, String), SiteState>>,
    bindings: RwLock<bindings::Map>,
    logs: views::Logs,
    bus: events::Bus,
    quotas: quota::Quotas,
    audit_rate: PerMinute,
    /// Inbound requests per source address.
    inbound_rate: PerMinute,
    permits: tokio::sync::Semaphore,
    /// Each plugin's share of `permits`.
    plugin_permits: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    memory: Arc<MemoryBudget>,
    http: OnceLock<reqwest::Client>,
    secret: Vec<u8>,
    research: research::State,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Plugins {
    /// The runtime over an open database. Nothing is compiled until [`Plugins::load_all`].
    pub fn new(data_dir: &Path, limits: Limits, services: Services) -> anyhow::Result<Plugins> {
        const SECRET: &[u8] = b"plugins.pseudonym_secret";
        let storage = &services.storage;
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
        let state = site::load_states(storage)?;
        let bound = bindings::load(storage)?;
        Ok(Plugins {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                permits: tokio::sync::Semaphore::new(limits.concurrent.max(1) as usize),
                plugin_permits: Mutex::new(HashMap::new()),
                memory: Arc::new(MemoryBudget::new(limits.memory_budget_bytes())),
                limits,
                services,
                runtime: OnceLock::new(),
                installed: RwLock::new(BTreeMap::new()),
                state: RwLock::new(state),
                bindings: RwLock::new(bound),
                logs: views::Logs::default(),
                bus: events::Bus::default(),
                quotas: quota::Quotas::default(),
                audit_rate: PerMinute::default(),
                inbound_rate: PerMinute::default(),
                http: OnceLock::new(),
                secret,
                research: research::State::default(),
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

    /// The host services the runtime was given.
    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    pub(crate) async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.inner
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// A slot of plugin `id`'s own share of the pool.
    pub(crate) async fn plugin_permit(&self, id: &str) -> tokio::sync::OwnedSemaphorePermit {
        let sem = self
            .inner
            .plugin_permits
            .lock()
            .expect("lock")
            .entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Semaphore::new(
                    self.inner.limits.plugin_slots() as usize,
                ))
            })
            .clone();
        sem.acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Audit entries each plugin recorded this minute.
    /// Count an inbound request from `source`: `false` when it had its allowance this minute.
    pub fn take_inbound(&self, source: &str) -> bool {
        self.inner
            .inbound_rate
            .take(source, self.inner.limits.inbound_per_minute)
    }

    pub(crate) fn audit_rate(&self) -> &PerMinute {
        &self.inner.audit_rate
    }

    /// The memory budget every running instance draws on.
    pub(crate) fn memory_budget(&self) -> Arc<MemoryBudget> {
        self.inner.memory.clone()
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

    fn get(&self, id: &str) -> Option<Arc<Loaded>> {
        self.inner.installed.read().expect("lock").get(id).cloned()
    }

    /// Whether a research plugin holds the id `id`.
    fn research_installed(&self, id: &str) -> bool {
        self.inner.research.installed_ids().iter().any(|i| i == id)
    }

    fn require(&self, id: &str) -> Result<Arc<Loaded>, PluginError> {
        self.get(id).ok_or_else(|| PluginError::NotFound(id.into()))
    }

    /// Through the gate: may `ctx` manage plugins? A refusal is audited with the plugin.
    pub(crate) async fn authorize(
        &self,
        ctx: &Ctx,
        action: &str,
        id: &str,
    ) -> Result<(), PluginError> {
        let check = Check::new(action, Need::Permission(Permission::PluginsManage))
            .resource(format!("Plugin/{id}"));
        Ok(self.inner.services.gate.check(ctx, check).await?)
    }
}
