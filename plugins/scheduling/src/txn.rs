//! Optimistic transactions over the plugin's key-value store.
//!
//! A [`Txn`] remembers what it read and buffers what it writes; [`Txn::commit`] sends one
//! atomic batch that expects every key it read to hold what it held then (compare-and-swap),
//! and applies the writes only if all of them still do. Two staff booking the same slot both
//! read it free, but only the first batch commits: the second finds the occupancy key
//! changed, reads again, and now sees the slot taken. No check-then-write window exists.
//!
//! A transaction can also publish events ([`Txn::publish`]): they travel in the same batch,
//! so they go out if, and only if, the writes commit (the host's outbox).

use std::collections::BTreeMap;

use osler_sdk::{Error, kv};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The most operations the host accepts in one batch.
pub const MAX_OPS: usize = kv::MAX_PAGE as usize;

/// How often a transaction that lost a race is run again before giving up.
const ATTEMPTS: usize = 12;

#[derive(Default)]
pub struct Txn {
    reads: BTreeMap<String, Option<Vec<u8>>>,
    writes: BTreeMap<String, Option<Vec<u8>>>,
    events: Vec<(&'static str, serde_json::Value)>,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }

    /// The value at `key` as this transaction sees it (its own writes first); the read
    /// becomes a precondition of the commit.
    pub fn get<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, Error> {
        let bytes = match self.writes.get(key) {
            Some(w) => w.clone(),
            None => match self.reads.get(key) {
                Some(r) => r.clone(),
                None => {
                    let r = kv::get_bytes(key)?;
                    self.reads.insert(key.to_string(), r.clone());
                    r
                }
            },
        };
        bytes
            .map(|b| {
                serde_json::from_slice(&b).map_err(|e| {
                    Error::internal(format!("the value stored at {key:?} does not decode: {e}"))
                })
            })
            .transpose()
    }

    pub fn put<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::internal(e.to_string()))?;
        self.writes.insert(key.to_string(), Some(bytes));
        Ok(())
    }

    /// Writes `key` only if nothing is there now (the commit checks it).
    pub fn create<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.reads.entry(key.to_string()).or_insert(None);
        self.put(key, value)
    }

    pub fn delete(&mut self, key: &str) {
        self.writes.insert(key.to_string(), None);
    }

    /// Publishes an event with the commit (and only if it commits).
    pub fn publish(&mut self, (topic, payload): (&'static str, serde_json::Value)) {
        self.events.push((topic, payload));
    }

    /// Operations the commit will send.
    pub fn ops(&self) -> usize {
        self.reads.len() + self.writes.len() + self.events.len()
    }

    /// Commits atomically. `Ok(false)`: another request changed something this one read, and
    /// nothing was written; run the transaction again.
    pub fn commit(self) -> Result<bool, Error> {
        if self.ops() > MAX_OPS {
            return Err(Error::too_large(format!(
                "this change needs {} storage operations, more than {MAX_OPS}; send fewer at once",
                self.ops()
            )));
        }
        if self.writes.is_empty() {
            return Ok(true);
        }
        let mut batch = kv::Batch::new();
        for (key, value) in self.reads {
            batch = match value {
                Some(v) => batch.expect_bytes(&key, v),
                None => batch.expect_absent(&key),
            };
        }
        for (key, value) in self.writes {
            batch = match value {
                Some(v) => batch.put_bytes(&key, v),
                None => batch.delete(&key),
            };
        }
        for (topic, payload) in &self.events {
            batch = batch.publish(topic, payload);
        }
        match batch.commit() {
            Ok(()) => Ok(true),
            Err(Error::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Runs `f` with a fresh transaction until its commit goes through. `f` returns what to
/// answer and the transaction to commit.
pub fn run<T>(mut f: impl FnMut(&mut Txn) -> Result<T, Error>) -> Result<T, Error> {
    for _ in 0..ATTEMPTS {
        let mut txn = Txn::new();
        let out = f(&mut txn)?;
        if txn.commit()? {
            return Ok(out);
        }
    }
    Err(Error::conflict(
        "the schedule is changing too fast to apply this; try again",
    ))
}
