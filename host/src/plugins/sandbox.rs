//! What one sandbox (a `Store`) carries: the context of the request that created it, the
//! plugin's grants at the site, its limits, and an empty WASI context (no files, no network,
//! no environment, no stdio).
//!
//! The host never trusts identity that comes back from a plugin: every host call is checked
//! against this [`Call`], whatever arguments the plugin passes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::Loaded;
use super::manifest::{Capability, ConfigValue};
use super::v0_1::Error;
use crate::access::{Ctx, Permission};
use crate::app::App;

/// The request context a sandbox runs for. Shared with nested plugin-to-plugin calls.
pub struct Call {
    pub plugin: Arc<Loaded>,
    pub site: String,
    /// The person (or `system`), with `via` naming the chain of plugins.
    pub ctx: Ctx,
    /// What the administrator granted this plugin at this site.
    pub grants: BTreeSet<Capability>,
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

pub struct Sandbox {
    pub app: App,
    pub call: Arc<Call>,
    // Behind mutexes only so that `Sandbox` is `Sync` and a host call may hold `&self` across
    // an await; the store has one user at a time, so they are never contended.
    wasi: Mutex<WasiCtx>,
    table: Mutex<ResourceTable>,
    pub limits: StoreLimits,
    /// Audit entries of reads this call made that are not yet on disk; see
    /// [`Sandbox::audit_durable`].
    pub audit_pending: std::sync::atomic::AtomicBool,
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_mut().expect("never poisoned"),
            table: self.table.get_mut().expect("never poisoned"),
        }
    }
}

impl Sandbox {
    pub fn new(app: App, call: Arc<Call>) -> Sandbox {
        let limits = app.plugins.runtime_limits();
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes())
            .table_elements(20_000)
            .instances(64)
            .tables(32)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        Sandbox {
            app,
            call,
            // Nothing is inherited or granted: no preopened directories, no environment, no
            // arguments, no network, stdio connected to nothing.
            wasi: Mutex::new(WasiCtx::builder().build()),
            table: Mutex::new(ResourceTable::new()),
            limits: store_limits,
            audit_pending: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Make the audit entries of this call's reads durable. Called before anything a plugin
    /// read can leave the sandbox: its answer, an outbound request. (Its kv writes are
    /// durable commits, which carry every earlier entry with them.)
    pub async fn audit_durable(&self) -> Result<(), crate::storage::StorageError> {
        if self
            .audit_pending
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            self.app.storage.durable().await?;
        }
        Ok(())
    }

    /// Allow a host call only within (a) the manifest, (b) the administrator's grant at this
    /// site and (c) the caller's role. A refusal is audited and returned as `denied`.
    pub async fn allow(
        &self,
        cap: Capability,
        permission: Option<Permission>,
        what: &str,
    ) -> Result<(), Error> {
        let call = &self.call;
        let reason = if !call.plugin.manifest.capabilities.contains(&cap) {
            Some(format!(
                "plugin '{}' does not declare the capability {cap} in its manifest",
                call.id()
            ))
        } else if !call.grants.contains(&cap) {
            Some(format!(
                "the capability {cap} has not been granted to plugin '{}' at site '{}'",
                call.id(),
                call.site
            ))
        } else {
            permission.filter(|p| !call.ctx.can(*p)).map(|p| {
                format!(
                    "the signed-in user's role ({}) does not allow {}",
                    call.ctx.role_string(),
                    p.as_str()
                )
            })
        };
        match reason {
            None => Ok(()),
            Some(reason) => {
                let mut ev = call.ctx.event(what, "denied");
                ev.resource = Some(format!("capability/{cap}"));
                ev.detail = Some(reason.clone());
                if let Err(e) = self.app.audit.record_durable(ev).await {
                    tracing::error!(error = %e, "cannot audit a plugin refusal");
                    return Err(Error::Internal("the audit trail is unavailable".into()));
                }
                Err(Error::Denied(reason))
            }
        }
    }

    /// Refuse an argument larger than the payload limit.
    pub fn check_size(&self, what: &str, len: usize) -> Result<(), Error> {
        let max = self.app.plugins.runtime_limits().payload_bytes();
        if len > max {
            Err(Error::TooLarge(format!(
                "{what} is {len} bytes; the limit is {max}"
            )))
        } else {
            Ok(())
        }
    }
}
