//! The open data directory: storage, audit trail and the domain services over them.
//!
//! Layout of a data directory: `store/` (the fjall database; `db/` for the sled database of a
//! directory created with sled, see [`crate::storage::Engine`]), `wal/` (its write-ahead log),
//! `audit/audit.log` (the audit trail) with `audit/checkpoints.log` (its signed checkpoints),
//! and `keys/` (the checkpoint key). A schema version is stored in the database; a directory written by a newer Osler
//! is refused rather than misread.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::access::{Ctx, Gate};
use crate::audit::{Audit, AuditFile};
use crate::auth::{Accounts, Throttle};
use crate::config::Config;
use crate::patients::Patients;
use crate::plugins::{Plugins, Services};
use crate::sites::Sites;
use crate::storage::{Batch, Storage, Tree};

/// The database layout this binary reads and writes. Version 2 keys the identifier index by
/// the compared form of each value (tidied and lowercased); a version 1 database is upgraded
/// when it is opened.
pub const SCHEMA_VERSION: u32 = 2;
const SCHEMA_KEY: &[u8] = b"schema_version";

/// Everything a request handler or command needs ([`Parts`], shared). A clone is one
/// reference count: axum clones the state into every handler and middleware of every request,
/// and cloning each service's handles one by one (dozens of reference counts, contended between
/// cores) was 8–15% of a small request's CPU.
#[derive(Clone)]
pub struct App(Arc<Parts>);

impl std::ops::Deref for App {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// What an [`App`] holds.
pub struct Parts {
    pub config: Arc<Config>,
    pub storage: Storage,
    pub audit: Audit,
    /// The one gate every entry point asks "may this caller do this?".
    pub gate: Gate,
    pub accounts: Accounts,
    pub sites: Sites,
    pub patients: Patients,
    pub throttle: Arc<Throttle>,
    pub plugins: Plugins,
    /// The audit checkpoint key, if opening the data directory created it (its public half is
    /// for the operator to keep).
    pub audit_key_created: Option<crate::audit::KeyCreated>,
}

/// Whether the data directory must already be initialised.
#[derive(PartialEq)]
pub enum Mode {
    /// `osler init` and `osler demo`: create it if new.
    Create,
    Existing,
}

impl App {
    pub fn open(config: Config, mode: Mode) -> anyhow::Result<App> {
        let dir = config.data_dir.clone();
        if mode == Mode::Existing && crate::storage::Engine::existing(&dir)?.is_none() {
            bail!(
                "{} is not an Osler data directory; create one with `osler init --data-dir {}`",
                dir.display(),
                dir.display()
            );
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        // The database first: its lock keeps a command run beside a running server from
        // reading (or repairing) the audit file the server is writing.
        let database =
            crate::storage::open_database(&dir, config.storage.engine, config.storage_memory())?;
        let audit_file = Arc::new(AuditFile::open(&dir).context("cannot open the audit log")?);
        let storage = Storage::open(database, &dir.join("wal"), audit_file.clone())?;
        let mut upgrade_from = None;
        match storage.get(Tree::Meta, SCHEMA_KEY)? {
            Some(v) => {
                let found = u32::from_be_bytes(v.as_slice().try_into().unwrap_or([0xff; 4]));
                if found < SCHEMA_VERSION {
                    upgrade_from = Some(found);
                }
                if found > SCHEMA_VERSION {
                    bail!(
                        "the data directory {} was written by a newer Osler (schema version \
                         {found}; this osler understands up to {SCHEMA_VERSION}). Upgrade osler \
                         to open it; nothing has been changed.",
                        dir.display()
                    );
                }
            }
            None => {
                if mode == Mode::Existing {
                    bail!(
                        "{} has no Osler schema version; create it with `osler init`",
                        dir.display()
                    );
                }
                let mut b = Batch::new();
                b.put(
                    Tree::Meta,
                    SCHEMA_KEY,
                    SCHEMA_VERSION.to_be_bytes().to_vec(),
                );
                storage.apply(&b)?;
                storage.durable_blocking()?;
            }
        }
        let audit = Audit::open(audit_file, storage.clone())?;
        if let Some(from) = upgrade_from {
            upgrade(&storage, &audit, from)?;
        }
        let audit_key_created = audit
            .anchor(&dir, &config.audit)
            .context("the audit trail does not check out")?;
        if let Some(k) = &audit_key_created
            && k.earlier_entries > 0
        {
            tracing::warn!(
                key = %k.key,
                "created the audit checkpoint key for an existing trail: keep this public key \
                 away from this server (e.g. [audit] public_key in osler.toml)"
            );
        }
        let accounts = Accounts::new(
            storage.clone(),
            Duration::from_secs(config.auth.session_seconds),
        );
        accounts.load_device_key()?;
        let throttle = Arc::new(Throttle::new(config.auth.throttle.clone()));
        if jiff::tz::TimeZone::get(&config.timezone).is_err() {
            bail!(
                "timezone = \"{}\" is not an IANA time zone name (e.g. America/Toronto)",
                config.timezone
            );
        }
        let sites = Sites::new(storage.clone());
        let gate = Gate::new(audit.clone());
        let patients = Patients::new(storage.clone(), audit.clone(), gate.clone())
            .with_search_budget(Duration::from_millis(config.patients.search_budget_ms))
            .with_json_cache(config.budget().patient_json_bytes());
        let plugins = Plugins::new(
            &dir,
            config.plugin_limits(),
            Services {
                storage: storage.clone(),
                audit: audit.clone(),
                gate: gate.clone(),
                sites: sites.clone(),
                patients: patients.clone(),
                accounts: accounts.clone(),
                timezone: config.timezone.clone(),
                registries: config.registries.clone(),
            },
        )?;
        Ok(App(Arc::new(Parts {
            plugins,
            sites,
            patients,
            config: Arc::new(config),
            storage,
            audit,
            gate,
            accounts,
            throttle,
            audit_key_created,
        })))
    }

    /// Commit a batch together with its audit entry and wait until both are durable.
    pub async fn commit_audited(
        &self,
        batch: &Batch,
        event: crate::audit::Event,
    ) -> Result<(), crate::audit::AuditError> {
        self.audit.commit_with(batch, event).await.map(|_| ())
    }

    /// The same, for the command line (no async runtime needed).
    pub fn commit_audited_blocking(
        &self,
        batch: &Batch,
        event: crate::audit::Event,
    ) -> anyhow::Result<()> {
        self.audit.record_with(batch, event)?;
        self.storage.durable_blocking()?;
        Ok(())
    }

    pub fn cli_ctx() -> Ctx {
        Ctx::system("cli")
    }
}

/// Bring a database written by an older Osler up to [`SCHEMA_VERSION`], durably, recording
/// the upgrade (and anything it found) in the audit trail. Safe to interrupt: the version is
/// written last, so an interrupted upgrade runs again at the next start.
fn upgrade(storage: &Storage, audit: &Audit, from: u32) -> anyhow::Result<()> {
    tracing::info!(from, to = SCHEMA_VERSION, "upgrading the database");
    let ctx = Ctx::system("upgrade");
    if from < 2 {
        let collisions = crate::patients::rebuild_identifier_index(storage)?;
        for (kept, other, system) in &collisions {
            // The charts concerned go to the audit trail, never to the log.
            let mut ev = ctx.event("patient.identifier-collision", "conflict");
            ev.patient = Some(other.clone());
            ev.patients = vec![kept.clone(), other.clone()];
            ev.resource = Some(format!("Patient/{other}"));
            ev.detail = Some(format!(
                "identifiers in {system} now compare equal (case and spacing are ignored); \
                 Patient/{kept} keeps it in the index: merge or correct the charts"
            ));
            audit.record(ev)?;
        }
        if !collisions.is_empty() {
            tracing::warn!(
                charts = collisions.len(),
                "some charts share an identifier once case and spacing are ignored; the audit \
                 trail lists them (action patient.identifier-collision)"
            );
        }
    }
    let mut b = Batch::new();
    b.put(
        Tree::Meta,
        SCHEMA_KEY,
        SCHEMA_VERSION.to_be_bytes().to_vec(),
    );
    let mut ev = ctx.event("database.upgrade", "success");
    ev.detail = Some(format!("schema version {from} to {SCHEMA_VERSION}"));
    audit.record_with(&b, ev)?;
    storage.durable_blocking()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_a_newer_osler_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        {
            let app = App::open(config.clone(), Mode::Create).unwrap();
            let mut b = Batch::new();
            b.put(
                Tree::Meta,
                SCHEMA_KEY,
                (SCHEMA_VERSION + 1).to_be_bytes().to_vec(),
            );
            app.storage.apply(&b).unwrap();
            app.storage.durable_blocking().unwrap();
        }
        let err = App::open(config.clone(), Mode::Existing)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("newer Osler"), "{err}");
        assert!(err.contains("Upgrade osler"), "{err}");
        // Still the newer version: nothing was rewritten.
        let app = App::open(config, Mode::Create);
        assert!(app.is_err());
    }

    #[test]
    fn serving_an_uninitialised_directory_says_how_to_create_one() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("nothing-here"),
            ..Config::default()
        };
        let err = App::open(config, Mode::Existing)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("osler init"), "{err}");
    }
}
