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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::Plugins;
use super::engine::Limits;
use super::latest::Error;
use super::manifest::ConfigValue;
use super::{Loaded, Services};
use crate::access::{Check, Ctx, Gate, Refusal};
use crate::storage::{Storage, StorageError};

/// The request context a sandbox runs for. Shared with nested plugin-to-plugin calls.
pub struct Call {
    pub plugin: Arc<Loaded>,
    pub site: String,
    /// The person (or `system`), with `via` naming the chain of plugins and `plugin` what this
    /// plugin declares and was granted at the site.
    pub ctx: Ctx,
    /// The plugin's configuration at this site, defaults filled in.
    pub config: BTreeMap<String, ConfigValue>,
    /// How many plugin-to-plugin calls deep this is.
    pub depth: u8,
}

impl Call {
    pub fn id(&self) -> &str {
        &self.plugin.manifest.id
    }
}

/// Chart reads whose audit entries are recorded but not yet on disk; see [`Cx::reads_durable`].
pub struct Reads {
    pending: AtomicBool,
    storage: Storage,
}

impl Reads {
    /// Make the audit entries of this call's reads durable. Called before anything a plugin
    /// read can leave the sandbox: its answer, an outbound request, a kv write others see.
    pub async fn durable(&self) -> Result<(), StorageError> {
        if self.pending.swap(false, Ordering::AcqRel) {
            self.storage.durable().await?;
        }
        Ok(())
    }
}

pub struct Sandbox {
    host: Plugins,
    pub call: Arc<Call>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    pub reads: Reads,
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
        let limits = host.runtime_limits();
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes())
            .table_elements(20_000)
            .instances(64)
            .tables(32)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        let reads = Reads {
            pending: AtomicBool::new(false),
            storage: host.services().storage.clone(),
        };
        Sandbox {
            host,
            call,
            // Nothing is inherited or granted: no preopened directories, no environment, no
            // arguments, no network, stdio connected to nothing.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: store_limits,
            reads,
        }
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

    /// A chart read was recorded: its audit entry must be durable before the answer leaves.
    pub fn read_recorded(&self) {
        self.reads.pending.store(true, Ordering::Release);
    }

    /// Make this call's read audit entries durable.
    pub async fn reads_durable(&self) -> Result<(), StorageError> {
        self.reads.durable().await
    }
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
