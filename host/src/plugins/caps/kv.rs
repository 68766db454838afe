//! `kv`: each plugin's private key-value storage.
//!
//! Every key is stored under `<plugin id>\0` — a prefix the host builds from the sandbox's
//! context, never from anything the plugin passes — so one plugin cannot name another's keys.
//! Writes return once durable.

use super::{Cx, Sandbox};
use crate::access::{Capability, Check, Need};
use crate::plugins::latest::Error;
use crate::plugins::v0_1::osler::plugin::kv;
use crate::storage::{Batch, Storage, StorageError, Tree};

type R<T> = wasmtime::Result<Result<T, Error>>;

const MAX_KEY: usize = 512;
const MAX_OPS: usize = 1000;
const MAX_PAGE: u32 = 1000;

/// What `kv` sees: the call and the store.
pub struct KvView<'a> {
    cx: Cx<'a>,
    storage: &'a Storage,
}

impl Sandbox {
    pub(super) fn kv_view(&mut self) -> KvView<'_> {
        KvView {
            cx: self.cx(),
            storage: &self.services().storage,
        }
    }
}

impl KvView<'_> {
    fn kv_key(&self, key: &str) -> Result<Vec<u8>, Error> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(Error::Invalid(format!(
                "a key is 1 to {MAX_KEY} bytes; this one is {}",
                key.len()
            )));
        }
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

    async fn kv_commit(&self, b: &Batch) -> Result<(), Error> {
        // A write may carry what this call read from a chart, and other requests see it once
        // applied: the reads' audit entries reach the disk first.
        self.cx.reads_durable().await.map_err(storage_failure)?;
        let own = self.cx.id().len() + 1;
        self.storage.commit(b).await.map_err(|e| match e {
            StorageError::Conflict { key, .. } => Error::Conflict(format!(
                "the expectation on key '{}' does not hold; nothing was written",
                key.get(own..).unwrap_or("")
            )),
            e => storage_failure(e),
        })
    }
}

fn storage_failure(e: StorageError) -> Error {
    tracing::error!(error = %e, "plugin key-value storage failure");
    Error::Internal("storage is unavailable".into())
}

impl kv::Host for KvView<'_> {
    async fn get(&mut self, key: String) -> R<Option<Vec<u8>>> {
        Ok(async {
            let k = self.kv_key(&key)?;
            self.kv_allowed().await?;
            self.storage
                .get(Tree::PluginKv, &k)
                .map_err(storage_failure)
        }
        .await)
    }

    async fn put(&mut self, key: String, value: Vec<u8>) -> R<()> {
        self.batch(vec![kv::Op::Put(kv::Entry { key, value })])
            .await
    }

    async fn delete(&mut self, key: String) -> R<()> {
        self.batch(vec![kv::Op::Delete(key)]).await
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
            let rows = self
                .storage
                .scan(Tree::PluginKv, &p, after.as_deref(), limit as usize + 1)
                .map_err(storage_failure)?;
            let own = self.cx.id().len() + 1;
            let more = rows.len() > limit as usize;
            let entries: Vec<kv::Entry> = rows
                .into_iter()
                .take(limit as usize)
                .map(|(k, v)| kv::Entry {
                    key: String::from_utf8_lossy(&k[own..]).into_owned(),
                    value: v,
                })
                .collect();
            let next = more
                .then(|| entries.last().map(|e| e.key.clone()))
                .flatten();
            Ok(kv::Page { entries, next })
        }
        .await)
    }

    async fn batch(&mut self, ops: Vec<kv::Op>) -> R<()> {
        Ok(async {
            if ops.is_empty() || ops.len() > MAX_OPS {
                return Err(Error::Invalid(format!(
                    "a batch has 1 to {MAX_OPS} operations"
                )));
            }
            let mut b = Batch::new();
            let mut total = 0;
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
                }
            }
            self.cx.check_size("the batch's values", total)?;
            self.kv_allowed().await?;
            self.kv_commit(&b).await
        }
        .await)
    }
}
