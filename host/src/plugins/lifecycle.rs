//! A plugin's lifecycle: load at start-up, install (a development package, or one a registry
//! verified), stage a version that asks for more, approve, roll back, remove. Every change is
//! one atomic, audited write and takes effect for the next request.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::inspect::{self, Shape};
use super::instance::{self, Pre};
use super::manifest::Manifest;
use super::package::Package;
use super::site::site_key;
use super::{Loaded, PluginError, PluginView, Plugins, Status, now};
use crate::access::Ctx;
use crate::storage::{Batch, StorageError, Tree};

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
    /// Allow a version lower than the installed one, and a development package in place of
    /// a signed one.
    pub force: bool,
    /// Stage (instead of installing) a version that asks for more capabilities.
    pub stage_new_capabilities: bool,
}

impl Plugins {
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
            .services
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
        // Research plugins load after the clinical ones, on their own engine; one that fails
        // is kept with its reason, like a clinical plugin.
        let (_, research_failed) = self.load_research()?;
        Ok((ok, compiled, failed + research_failed))
    }

    pub(super) fn load(&self, record: Record) -> (Loaded, bool) {
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
                    outbound_config: vec![],
                    exports: BTreeMap::new(),
                    imports: BTreeMap::new(),
                    optional_imports: BTreeSet::new(),
                    subscribe: vec![],
                    config: BTreeMap::new(),
                    nav: vec![],
                    panels: vec![],
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
        // The component's type is read from its bytes first: a package the host refuses is
        // refused before anything is compiled.
        let shape = inspect::check(bytes, manifest)?;
        let runtime = self.runtime()?;
        let (component, compiled) = runtime
            .component(bytes, sha)
            .map_err(|e| format!("{e:#}"))?;
        let pre = instance::prepare(runtime, &component, &shape)?;
        Ok((pre, shape, compiled))
    }

    /// Install (or upgrade to) the development package in `bytes` (a `.osp` file). Signed
    /// packages come through a registry ([`registry::install`]), which verifies them first.
    pub async fn install(
        &self,
        ctx: &Ctx,
        bytes: &[u8],
        dev: bool,
        force: bool,
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
        let policy = Policy {
            force,
            ..Policy::default()
        };
        let (view, _) = self.commit(ctx, prepared, policy).await?;
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
        if self.research_installed(&id) {
            return Err(PluginError::Conflict(format!(
                "a research plugin '{id}' is installed; a clinical plugin needs an id of its own"
            )));
        }
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
    /// (Install checks refuse a manifest that declares a capability its component does not
    /// import, so what is compared here is what the code can use.)
    pub(super) fn added_access(old: &Manifest, new: &Manifest) -> Vec<String> {
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
        added.extend(
            new.outbound_config
                .iter()
                .filter(|k| !old.outbound_config.contains(k))
                .map(|k| format!("outbound to the origin set in `{k}`")),
        );
        added.extend(
            new.imports
                .keys()
                .filter(|i| !old.imports.contains_key(*i))
                .map(|i| format!("calls {i}")),
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
            // A development package never takes the place of a signed plugin (its grants and
            // its data) unless an administrator forces it.
            if let (Some(origin), None, false) = (&old.record.origin, &record.origin, policy.force)
            {
                return Err(PluginError::Conflict(format!(
                    "'{id}' is installed from registry '{}', signed by '{}'; an unsigned \
                     development package does not replace it (an administrator can force it: \
                     --force, or ?force=true)",
                    origin.registry, origin.publisher
                )));
            }
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
        self.inner.services.audit.commit_with(&b, ev).await?;
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
        self.inner.services.audit.commit_with(&b, ev).await?;
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
}

pub(super) fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("component paths have a parent");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
