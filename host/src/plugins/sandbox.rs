//! What one sandbox (a `Store`) carries: the [`Call`] it serves (the context of the request
//! that created it, with the plugin's grants and settings at the site), its limits, the host
//! services its capabilities use, and an empty WASI context (no files, no network, no
//! environment, no stdio).
//!
//! Each capability sees only its part (wasmtime's `add_to_linker(linker, |state| state.x())`
//! model, as in Spin's factors): a [`Cx`] — the call, the gate, the reads not yet durable —
//! and the one service it implements (the key-value store for `kv`, the patient service for
//! `patients-*`, …). No capability holds the whole host.
//!
//! The host never trusts identity that comes back from a plugin: every host call is checked
//! against this [`Call`], whatever arguments the plugin passes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use wasmtime::StoreLimitsBuilder;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::Plugins;
use super::engine::Limits;
use super::instance::Limiter;
use super::latest::{self, Error};
use super::manifest::ConfigValue;
use super::{Loaded, Services};
use crate::access::{Check, Ctx, Gate, Refusal};
use crate::audit::{Audit, AuditError};
use crate::storage::Storage;

/// The request context a sandbox runs for.
pub struct Call {
    pub plugin: Arc<Loaded>,
    pub site: String,
    pub site_name: String,
    /// Who the call serves (a person, or unattended work), with `via` naming the chain of
    /// plugins and `plugin` what this plugin declares and was granted at the site.
    pub ctx: Ctx,
    /// The person as plugins see them; `None` for unattended work.
    pub person: Option<Arc<Person>>,
    /// The plugin's configuration at this site, defaults filled in.
    pub config: BTreeMap<String, ConfigValue>,
    /// How many plugin-to-plugin calls deep this is.
    pub depth: u8,
    /// How many events deep: 0 for a request; an event published by a handler of an event at
    /// depth `n` is at depth `n + 1`.
    pub event_depth: u8,
    /// The date de-identified records are computed at (ages over 89 grouped): a research
    /// run's own date, so that the run can be repeated exactly; today when `None`.
    pub as_of: Option<time::Date>,
    /// A plugin-to-plugin call whose callers' reads are on the trail but perhaps not yet on
    /// disk ([`Reads::before_call`]): before this call lets anything out itself, they are.
    pub callers_unsynced: bool,
}

impl Call {
    pub fn id(&self) -> &str {
        &self.plugin.manifest.id
    }

    /// The plugins this call came through, outermost first, without this one.
    pub fn via(&self) -> Vec<String> {
        let mut chain: Vec<String> = self
            .ctx
            .via
            .as_deref()
            .map(|v| v.split('>').map(str::to_string).collect())
            .unwrap_or_default();
        chain.pop();
        chain
    }
}

/// The signed-in person a call serves, as plugins see them. Kept with an event, so that its
/// handlers act for the same person.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Person {
    pub user: String,
    pub display_name: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub site: String,
    pub site_name: String,
    /// The session's CSRF token, from which each plugin's own is derived. Never stored (an
    /// event's handlers have no session), never given to a plugin.
    #[serde(skip)]
    pub session_csrf: Option<String>,
}

impl Person {
    /// The caller record plugin `id` receives: with its own CSRF token.
    pub fn caller_for(&self, id: &str) -> latest::Caller {
        latest::Caller {
            user: self.user.clone(),
            display_name: self.display_name.clone(),
            roles: self.roles.clone(),
            permissions: self.permissions.clone(),
            site: self.site.clone(),
            site_name: self.site_name.clone(),
            csrf_token: self
                .session_csrf
                .as_deref()
                .map(|s| crate::auth::plugin_csrf(s, id))
                .unwrap_or_default(),
        }
    }
}

/// What one sandbox has done that is limited per call: audit entries written, events
/// published, the patients it found (a plugin may name those in an audit entry), and the
/// patients whose de-identified records it read (a research run's record counts them).
#[derive(Default)]
pub struct Tally {
    pub audit_entries: AtomicU32,
    pub events: AtomicU32,
    pub found: Mutex<BTreeSet<String>>,
    pub deidentified: Mutex<BTreeSet<String>>,
}

/// The chart reads of one call, and their place on the audit trail.
///
/// A call's reads are recorded together when the call first lets something out, when it calls
/// another plugin ([`Reads::before_call`]) and when it ends, however it ends: one
/// `patient.read` entry naming every record the plugin read through `patients-read` (with one
/// patient, the entry an API read makes), and one `patient-data.read` entry per patient whose
/// kept data it read, saying how many keys in how many reads. A day sheet that shows forty
/// names is one entry naming forty patients — on each one's trail — instead of forty; nothing
/// is left off. [`Sandbox::reads_durable`] writes them and waits for the disk before anything
/// the plugin read can leave the sandbox: its answer, an outbound request, a kv or
/// patient-data write others see, an event.
#[derive(Default)]
pub struct Reads {
    pending: Mutex<Pending>,
    /// Entries are recorded and no sync covering them has been asked for.
    unsynced: AtomicBool,
    /// The sync asked for when the call last called another plugin ([`Reads::before_call`]),
    /// not yet waited for; 0 when none.
    requested: AtomicU64,
    /// The callers' reads were made durable by this call (see [`Call::callers_unsynced`]).
    callers_synced: AtomicBool,
}

/// Reads not yet on the trail.
#[derive(Default)]
struct Pending {
    /// Patient records read, in the order first read.
    records: Vec<String>,
    /// Per patient: reads of its kept data and the keys they returned.
    data: BTreeMap<String, (u32, u64)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.data.is_empty()
    }
}

impl Reads {
    /// The plugin read patient record `id`.
    pub fn record_read(&self, id: &str) {
        let mut p = self.pending.lock().expect("reads lock");
        if !p.records.iter().any(|r| r == id) {
            p.records.push(id.to_string());
        }
    }

    /// The plugin read `keys` entries of what it keeps about `patient`.
    pub fn data_read(&self, patient: &str, keys: u64) {
        let mut p = self.pending.lock().expect("reads lock");
        let e = p.data.entry(patient.to_string()).or_default();
        e.0 += 1;
        e.1 += keys;
    }

    /// Put the reads so far on the trail, as `ctx`'s (recorded, not yet durable).
    fn record(&self, ctx: &Ctx, audit: &Audit) -> Result<(), AuditError> {
        let pending = std::mem::take(&mut *self.pending.lock().expect("reads lock"));
        if pending.is_empty() {
            return Ok(());
        }
        if !pending.records.is_empty() {
            let mut ev = ctx.event("patient.read", "success");
            if let [one] = pending.records.as_slice() {
                ev.patient = Some(one.clone());
                ev.resource = Some(format!("Patient/{one}"));
            } else {
                ev.detail = Some(format!("{} records", pending.records.len()));
                ev.patients = pending.records;
            }
            audit.record(ev)?;
        }
        for (patient, (reads, keys)) in pending.data {
            let mut ev = ctx.event("patient-data.read", "success");
            ev.resource = Some(format!("Patient/{patient}"));
            ev.patient = Some(patient);
            let keys = if keys == 1 {
                "1 key".into()
            } else {
                format!("{keys} keys")
            };
            ev.detail = Some(if reads == 1 {
                keys
            } else {
                format!("{keys} in {reads} reads")
            });
            audit.record(ev)?;
        }
        self.unsynced.store(true, Ordering::Release);
        Ok(())
    }

    /// Put this call's reads on the trail and wait until they are on disk, with the callers'
    /// when `callers_unsynced`. Called before anything a plugin read can leave the sandbox:
    /// its answer, an outbound request, a kv write others see.
    async fn durable(
        &self,
        ctx: &Ctx,
        audit: &Audit,
        storage: &Storage,
        callers_unsynced: bool,
    ) -> Result<(), AuditError> {
        self.record(ctx, audit)?;
        let own = self.unsynced.swap(false, Ordering::AcqRel);
        let callers = callers_unsynced && !self.callers_synced.load(Ordering::Acquire);
        let requested = self.requested.swap(0, Ordering::AcqRel);
        if own || callers {
            // One sync covers everything recorded before it, the callers' entries too.
            storage.durable().await?;
            if callers_unsynced {
                self.callers_synced.store(true, Ordering::Release);
            }
        } else if requested != 0 {
            // Nothing recorded since the sync asked for at the last call to another plugin:
            // it covers them all, and has usually finished while the provider worked.
            storage.wait_durable(requested).await?;
        }
        Ok(())
    }

    /// Before a call into another plugin, which may let out what this call passes it: put
    /// this call's reads so far on the trail, so that they precede anything the provider
    /// does, and ask for them to be synced meanwhile (the group-commit thread writes them to
    /// disk while the provider works; [`Reads::durable`] waits for that sync). Returns whether
    /// they (or this call's callers') may not be on disk yet: the provider then syncs them
    /// before it lets anything out itself ([`Cx::reads_durable`]). A provider that only
    /// answers costs no sync of its own: its answer comes back here, and this call's answer
    /// waits for the disk as before.
    fn before_call(
        &self,
        ctx: &Ctx,
        audit: &Audit,
        storage: &Storage,
        callers_unsynced: bool,
    ) -> Result<bool, AuditError> {
        self.record(ctx, audit)?;
        if self.unsynced.swap(false, Ordering::AcqRel) {
            match storage.request_durable() {
                Ok(ticket) => self.requested.store(ticket, Ordering::Release),
                Err(e) => {
                    self.unsynced.store(true, Ordering::Release);
                    return Err(e.into());
                }
            }
        }
        Ok(self.requested.load(Ordering::Acquire) != 0
            || (callers_unsynced && !self.callers_synced.load(Ordering::Acquire)))
    }
}

/// A call that ended without [`Sandbox::reads_durable`] (it timed out, or its sandbox was
/// dropped on an error) still leaves its reads on the trail.
impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(e) = self.reads.record(&self.call.ctx, &self.services().audit) {
            tracing::error!(error = %e, "cannot record a plugin call's reads on the audit trail");
        }
    }
}

pub struct Sandbox {
    host: Plugins,
    pub call: Arc<Call>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: Limiter,
    reads: Reads,
    pub tally: Tally,
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Sandbox {
    pub fn new(host: Plugins, call: Arc<Call>) -> Sandbox {
        let memory = host.runtime_limits().memory_bytes();
        // Nothing is inherited or granted: no preopened directories, no environment, no
        // arguments, no network, stdio connected to nothing.
        Sandbox::with_wasi(host, call, WasiCtx::builder().build(), memory)
    }

    /// A sandbox with its own WASI context and linear-memory limit (a research run's: clocks
    /// fixed to the run's time, random numbers seeded from the run).
    pub fn with_wasi(host: Plugins, call: Arc<Call>, wasi: WasiCtx, memory: usize) -> Sandbox {
        let limits = host.runtime_limits();
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(memory)
            .table_elements(20_000)
            .instances(limits.core_instances as usize + 16)
            .tables(32)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        let store_limits = Limiter::new(store_limits, host.memory_budget());
        let reads = Reads::default();
        Sandbox {
            host,
            call,
            wasi,
            table: ResourceTable::new(),
            limits: store_limits,
            reads,
            tally: Tally::default(),
        }
    }

    /// Put this call's reads on the trail and make them durable: before its answer leaves.
    /// (The future holds the parts it needs, not the sandbox, which is not `Sync`.)
    pub fn reads_durable(&self) -> impl Future<Output = Result<(), AuditError>> + Send + '_ {
        let services = self.services();
        // A provider's answer goes back to its caller, whose own answer waits for the disk:
        // the callers' reads need no sync of their own here.
        self.reads
            .durable(&self.call.ctx, &services.audit, &services.storage, false)
    }

    /// Before a plugin-to-plugin call: this call's reads so far on the trail, and whether the
    /// provider must make them durable before it lets anything out.
    pub fn reads_before_call(&self) -> Result<bool, AuditError> {
        let s = self.services();
        self.reads.before_call(
            &self.call.ctx,
            &s.audit,
            &s.storage,
            self.call.callers_unsynced,
        )
    }

    /// The plugin runtime, for plugin-to-plugin calls (the linker's dynamic imports).
    pub fn host(&self) -> &Plugins {
        &self.host
    }

    /// What every capability sees.
    pub fn cx(&self) -> Cx<'_> {
        Cx {
            call: &self.call,
            gate: &self.host.services().gate,
            limits: self.host.runtime_limits(),
            reads: &self.reads,
            services: self.services(),
            tally: &self.tally,
        }
    }

    pub(super) fn services(&self) -> &Services {
        self.host.services()
    }
}

/// The part of a sandbox every capability sees: the call it serves, the gate its checks go
/// through, the limits, and the reads not yet durable.
pub struct Cx<'a> {
    pub call: &'a Call,
    gate: &'a Gate,
    limits: &'a Limits,
    reads: &'a Reads,
    services: &'a Services,
    pub tally: &'a Tally,
}

impl Cx<'_> {
    pub fn id(&self) -> &str {
        self.call.id()
    }

    pub fn ctx(&self) -> &Ctx {
        &self.call.ctx
    }

    /// Through the gate: the plugin's manifest, the administrator's grant at this site and the
    /// person's role. A refusal is audited and returned as `denied`.
    pub async fn allow(&self, check: Check<'_>) -> Result<(), Error> {
        self.gate
            .check(&self.call.ctx, check)
            .await
            .map_err(refusal)
    }

    /// Refuse by a rule of the capability's own (an origin the manifest does not list),
    /// audited like every refusal.
    pub async fn deny(&self, check: Check<'_>, reason: String) -> Error {
        refusal(self.gate.deny(&self.call.ctx, check, reason).await)
    }

    /// Refuse an argument larger than the payload limit.
    pub fn check_size(&self, what: &str, len: usize) -> Result<(), Error> {
        let max = self.limits.payload_bytes();
        if len > max {
            Err(Error::TooLarge(format!(
                "{what} is {len} bytes; the limit is {max}"
            )))
        } else {
            Ok(())
        }
    }

    pub fn limits(&self) -> &Limits {
        self.limits
    }

    /// The plugin read patient record `id`: on the trail before anything leaves the sandbox.
    pub fn record_read(&self, id: &str) {
        self.reads.record_read(id);
    }

    /// The plugin read `keys` entries it keeps about `patient`: on the trail likewise.
    pub fn data_read(&self, patient: &str, keys: u64) {
        self.reads.data_read(patient, keys);
    }

    /// Put this call's reads on the trail and make them durable, and its callers' (what a
    /// provider lets out may carry what they read and passed it).
    pub async fn reads_durable(&self) -> Result<(), AuditError> {
        let s = self.services;
        self.reads
            .durable(
                &self.call.ctx,
                &s.audit,
                &s.storage,
                self.call.callers_unsynced,
            )
            .await
    }
}

/// The audit trail could not take a call's reads: the plugin is told so, and nothing it read
/// leaves.
pub fn trail_failure(e: AuditError) -> Error {
    tracing::error!(error = %e, "cannot put a plugin call's reads on the audit trail");
    Error::Internal("the audit trail is unavailable".into())
}

/// A gate refusal as the plugin sees it.
fn refusal(r: Refusal) -> Error {
    match r {
        Refusal::Denied(m) => Error::Denied(m),
        Refusal::Audit(e) => {
            tracing::error!(error = %e, "cannot audit a plugin refusal");
            Error::Internal("the audit trail is unavailable".into())
        }
    }
}
