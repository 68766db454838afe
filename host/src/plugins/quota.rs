//! What each plugin stores (`kv` and `patient-data` together), against its quota.
//!
//! Every write a plugin makes to its storage goes through [`Plugins::write_storage`], which,
//! under a lock of that plugin's own: reads the current values of the keys the write changes,
//! pins them with compare-and-swap expectations (so the sizes it counted are the sizes it
//! replaces), refuses the whole write with `too-large` when it would take the plugin past its
//! quota in bytes or keys, and stores the new usage in the same atomic batch. The lock covers
//! the in-memory apply only; the wait for the disk is outside it, shared with other writers.
//!
//! A plugin's usage is kept in `Tree::PluginUsage`; for data written before usage was kept it
//! is counted once, on the plugin's first write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Plugins;
use crate::audit::{AuditError, Event};
use crate::storage::{Batch, Op, StorageError, Tree, key};

/// A plugin's storage use.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Bytes of keys and values.
    pub bytes: u64,
    pub keys: u64,
}

/// A plugin's usage and quota, for administrators.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageView {
    pub bytes: u64,
    pub keys: u64,
    pub max_bytes: u64,
    pub max_keys: u64,
}

/// Why a storage write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Audit(AuditError),
}

/// Per-plugin locks and the usage they guard.
#[derive(Default)]
pub struct Quotas {
    plugins: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Usage>>>>>,
}

/// The trees a plugin's storage lives in; every key starts with `<plugin id>\0`.
const TREES: [Tree; 2] = [Tree::PluginKv, Tree::PatientData];

impl Plugins {
    fn usage_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<Option<Usage>>> {
        self.inner
            .quotas
            .plugins
            .lock()
            .expect("lock")
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// The stored usage of `id`, counting it once when it was never stored.
    fn load_usage(&self, id: &str) -> Result<Usage, StorageError> {
        let storage = &self.services().storage;
        if let Some(v) = storage.get(Tree::PluginUsage, id.as_bytes())?
            && let Ok(u) = serde_json::from_slice(&v)
        {
            return Ok(u);
        }
        let prefix = key(&[id.as_bytes(), b""]);
        let mut u = Usage::default();
        for tree in TREES {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let (rows, _) =
                    storage.scan_bytes(tree, &prefix, after.as_deref(), 1000, 4 << 20)?;
                for (k, v) in &rows {
                    u.bytes += (k.len() - prefix.len() + v.len()) as u64;
                    u.keys += 1;
                }
                match rows.last() {
                    Some((k, _)) => after = Some(k.clone()),
                    None => break,
                }
            }
        }
        Ok(u)
    }

    /// Forget the cached usage of `id` (its storage was wiped).
    pub(crate) fn forget_usage(&self, id: &str) {
        self.inner.quotas.plugins.lock().expect("lock").remove(id);
    }

    /// A plugin's storage use and quota.
    pub fn storage_use(&self, id: &str) -> Result<StorageView, StorageError> {
        let (max_bytes, max_keys) = self.runtime_limits().quota_of(id);
        let cached = self
            .inner
            .quotas
            .plugins
            .lock()
            .expect("lock")
            .get(id)
            .and_then(|l| l.try_lock().ok().and_then(|u| *u));
        let u = match cached {
            Some(u) => u,
            None => self.load_usage(id)?,
        };
        Ok(StorageView {
            bytes: u.bytes,
            keys: u.keys,
            max_bytes,
            max_keys,
        })
    }

    /// Apply `batch` — puts, deletes and expectations on plugin `id`'s keys, plus any other
    /// operations (queued events) — within `id`'s quota, with `audit` as its audit entry if
    /// given, and wait until it is durable. Nothing is written when it would pass the quota
    /// or an expectation does not hold.
    pub(crate) async fn write_storage(
        &self,
        id: &str,
        mut batch: Batch,
        audit: Option<Event>,
    ) -> Result<(), WriteError> {
        let storage = &self.services().storage;
        let own = key(&[id.as_bytes(), b""]);
        let lock = self.usage_lock(id);
        {
            let mut guard = lock.lock().await;
            let before = match *guard {
                Some(u) => u,
                None => self.load_usage(id)?,
            };
            // The value each key holds as the batch goes (a batch may write a key twice).
            let mut seen: HashMap<(Tree, Vec<u8>), Option<Vec<u8>>> = HashMap::new();
            let mut pins = Vec::new();
            let (mut bytes, mut keys) = (before.bytes as i128, before.keys as i128);
            for op in &batch.ops {
                let (tree, k, new) = match op {
                    Op::Put(t, k, v) => (*t, k, Some(v.len())),
                    Op::Delete(t, k) => (*t, k, None),
                    Op::Expect(..) => continue,
                };
                if !TREES.contains(&tree) || !k.starts_with(&own) {
                    continue;
                }
                let slot = (tree, k.clone());
                let old = match seen.get(&slot) {
                    Some(v) => v.clone(),
                    None => {
                        let v = storage.get(tree, k)?;
                        pins.push(Op::Expect(tree, k.clone(), v.clone()));
                        v
                    }
                };
                let klen = (k.len() - own.len()) as i128;
                if let Some(old) = &old {
                    bytes -= klen + old.len() as i128;
                    keys -= 1;
                }
                if let Some(n) = new {
                    bytes += klen + n as i128;
                    keys += 1;
                }
                seen.insert(
                    slot,
                    new.map(|_| match op {
                        Op::Put(_, _, v) => v.clone(),
                        _ => unreachable!("a put"),
                    }),
                );
            }
            let after = Usage {
                bytes: bytes.max(0) as u64,
                keys: keys.max(0) as u64,
            };
            let (max_bytes, max_keys) = self.runtime_limits().quota_of(id);
            let grows = after.bytes > before.bytes || after.keys > before.keys;
            if grows && (after.bytes > max_bytes || after.keys > max_keys) {
                return Err(WriteError::TooLarge(format!(
                    "plugin '{id}' may store {} MiB in {max_keys} keys; this write would make \
                     it {:.1} MiB in {} keys, so nothing was written",
                    max_bytes >> 20,
                    after.bytes as f64 / (1 << 20) as f64,
                    after.keys
                )));
            }
            // Expectations the plugin gave come first, so that a conflict names its key.
            batch.ops.extend(pins);
            batch.put(
                Tree::PluginUsage,
                id.as_bytes().to_vec(),
                serde_json::to_vec(&after).expect("serialises"),
            );
            match audit {
                Some(ev) => {
                    self.services()
                        .audit
                        .record_with(&batch, ev)
                        .map_err(|e| match e {
                            AuditError::Storage(s) => WriteError::Storage(s),
                            e => WriteError::Audit(e),
                        })?;
                }
                None => storage.apply(&batch)?,
            }
            *guard = Some(after);
        }
        storage.durable().await?;
        Ok(())
    }
}
