//! `kv`: each plugin's private key-value storage.
//!
//! Every key is stored under `<plugin id>\0` — a prefix the host builds from the sandbox's
//! context, never from anything the plugin passes — so one plugin cannot name another's keys.
//! Writes go through the plugin's quota ([`Plugins::write_storage`]) and return once durable;
//! a batch may publish events that commit with it (the outbox). A scan page is bounded by
//! bytes as well as entries, so a page of large values never fills the host's memory.

use super::{Cx, Sandbox, trail_failure};
use crate::access::{Capability, Check, Need};
use crate::plugins::Plugins;
use crate::plugins::latest::Error;
use crate::plugins::quota::WriteError;
use crate::plugins::v0_2::osler::plugin::kv;
use crate::storage::{Batch, StorageError, Tree};

type R<T> = wasmtime::Result<Result<T, Error>>;

pub(super) const MAX_KEY: usize = 512;
pub(super) const MAX_OPS: usize = 1000;
pub(super) const MAX_PAGE: u32 = 1000;
/// The most a scan page holds, keys and values together.
pub(super) const MAX_PAGE_BYTES: usize = 1 << 20;

/// What `kv` sees: the call, and the plugin runtime's storage writer (quota and event queue).
pub struct KvView<'a> {
    cx: Cx<'a>,
    host: &'a Plugins,
}

impl Sandbox {
    pub(crate) fn kv_view(&mut self) -> KvView<'_> {
        KvView {
            cx: self.cx(),
            host: self.host(),
        }
    }
}

/// A key of 1 to [`MAX_KEY`] bytes.
pub(super) fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Error::Invalid(format!(
            "a key is 1 to {MAX_KEY} bytes; this one is {}",
            key.len()
        )));
    }
    Ok(())
}

/// A storage write's failure as the plugin sees it; a conflict names the plugin's own key
/// (the part after the first `skip` bytes of the stored key).
pub(super) fn write_failure(e: WriteError, skip: usize) -> Error {
    match e {
        WriteError::TooLarge(m) => Error::TooLarge(m),
        WriteError::Storage(StorageError::Conflict { key, .. }) => Error::Conflict(format!(
            "the expectation on key '{}' does not hold; nothing was written",
            key.get(skip..).unwrap_or("")
        )),
        WriteError::Storage(e) => storage_failure(e),
        WriteError::Audit(e) => {
            tracing::error!(error = %e, "cannot audit a plugin's write");
            Error::Internal("the audit trail is unavailable".into())
        }
    }
}

pub(super) fn storage_failure(e: StorageError) -> Error {
    tracing::error!(error = %e, "plugin storage failure");
    Error::Internal("storage is unavailable".into())
}

impl KvView<'_> {
    fn kv_key(&self, key: &str) -> Result<Vec<u8>, Error> {
        check_key(key)?;
        Ok(self.kv_prefix(key))
    }

    fn kv_prefix(&self, prefix: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.cx.id().len() + 1 + prefix.len());
        k.extend_from_slice(self.cx.id().as_bytes());
        k.push(0);
        k.extend_from_slice(prefix.as_bytes());
        k
    }

    async fn kv_allowed(&self) -> Result<(), Error> {
        let check = Check::capability("plugin.kv", Capability::Kv, Need::Nothing);
        self.cx.allow(check).await
    }

    async fn kv_commit(&self, b: Batch, events: bool) -> Result<(), Error> {
        // A write may carry what this call read from a chart, and other requests see it once
        // applied: the reads' audit entries reach the disk first.
        self.cx.reads_durable().await.map_err(trail_failure)?;
        let own = self.cx.id().len() + 1;
        self.host
            .write_storage(self.cx.id(), b, None)
            .await
            .map_err(|e| write_failure(e, own))?;
        if events {
            self.host.events_committed();
        }
        Ok(())
    }
}

impl kv::Host for KvView<'_> {
    async fn get(&mut self, key: String) -> R<Option<Vec<u8>>> {
        Ok(async {
            let k = self.kv_key(&key)?;
            self.kv_allowed().await?;
            self.host
                .services()
                .storage
                .get(Tree::PluginKv, &k)
                .map_err(storage_failure)
        }
        .await)
    }

    async fn put(&mut self, key: String, value: Vec<u8>) -> R<()> {
        let r = kv::Host::batch(self, vec![kv::Op::Put(kv::Entry { key, value })]).await?;
        Ok(r.map(|_| ()))
    }

    async fn delete(&mut self, key: String) -> R<()> {
        let r = kv::Host::batch(self, vec![kv::Op::Delete(key)]).await?;
        Ok(r.map(|_| ()))
    }

    async fn scan(
        &mut self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> R<kv::Page> {
        Ok(async {
            if !(1..=MAX_PAGE).contains(&limit) {
                return Err(Error::Invalid(format!("limit is 1 to {MAX_PAGE}")));
            }
            if prefix.len() > MAX_KEY {
                return Err(Error::Invalid("the prefix is longer than a key".into()));
            }
            self.kv_allowed().await?;
            let p = self.kv_prefix(&prefix);
            let after = start_after.as_deref().map(|a| self.kv_prefix(a));
            let found = self
                .host
                .services()
                .storage
                .scan_bytes(
                    Tree::PluginKv,
                    &p,
                    after.as_deref(),
                    limit as usize,
                    MAX_PAGE_BYTES,
                )
                .map_err(storage_failure)?;
            let own = self.cx.id().len() + 1;
            let (entries, next) = page(found, own);
            Ok(kv::Page {
                entries: entries
                    .into_iter()
                    .map(|(key, value)| kv::Entry { key, value })
                    .collect(),
                next,
            })
        }
        .await)
    }

    async fn batch(&mut self, ops: Vec<kv::Op>) -> R<Vec<String>> {
        Ok(async {
            if ops.is_empty() || ops.len() > MAX_OPS {
                return Err(Error::Invalid(format!(
                    "a batch has 1 to {MAX_OPS} operations"
                )));
            }
            let mut b = Batch::new();
            let mut total = 0;
            let mut events = Vec::new();
            for op in ops {
                match op {
                    kv::Op::Put(e) => {
                        total += e.value.len();
                        b.put(Tree::PluginKv, self.kv_key(&e.key)?, e.value);
                    }
                    kv::Op::Delete(key) => b.delete(Tree::PluginKv, self.kv_key(&key)?),
                    kv::Op::Expect(x) => {
                        total += x.value.as_ref().map_or(0, Vec::len);
                        b.expect(Tree::PluginKv, self.kv_key(&x.key)?, x.value);
                    }
                    kv::Op::Publish(e) => events.push(e),
                }
            }
            self.cx.check_size("the batch's values", total)?;
            self.kv_allowed().await?;
            let mut ids = Vec::new();
            if !events.is_empty() {
                let check =
                    Check::capability("plugin.event", Capability::EventsPublish, Need::Nothing);
                self.cx.allow(check).await?;
                for e in &events {
                    ids.push(self.host.stage_event(
                        self.cx.call,
                        self.cx.tally,
                        &e.topic,
                        &e.payload,
                        &mut b,
                    )?);
                }
            }
            self.kv_commit(b, !events.is_empty()).await?;
            Ok(ids)
        }
        .await)
    }

    async fn usage(&mut self) -> R<kv::StorageUsage> {
        Ok(async {
            self.kv_allowed().await?;
            let u = self
                .host
                .storage_use(self.cx.id())
                .map_err(storage_failure)?;
            Ok(kv::StorageUsage {
                bytes: u.bytes,
                keys: u.keys,
                max_bytes: u.max_bytes,
                max_keys: u.max_keys,
            })
        }
        .await)
    }
}

/// A scan's rows (and whether more follow) as a page: the keys made the plugin's (`skip`
/// bytes of prefix dropped), and where to continue.
pub(super) fn page(
    (rows, more): (crate::storage::Rows, bool),
    skip: usize,
) -> (Vec<(String, Vec<u8>)>, Option<String>) {
    let entries: Vec<(String, Vec<u8>)> = rows
        .into_iter()
        .map(|(k, v)| (String::from_utf8_lossy(&k[skip..]).into_owned(), v))
        .collect();
    let next = more.then(|| entries.last().map(|e| e.0.clone())).flatten();
    (entries, next)
}
