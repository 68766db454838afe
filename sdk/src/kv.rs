//! Key-value storage private to this plugin (capability `kv`).
//!
//! Keys are 1 to 512 bytes of UTF-8, values at most 1 MiB; no other plugin can name this
//! plugin's keys. A write returns once it is durable. Keys sort by bytes, so put what you
//! scan by at the front and make ids sortable: `site/<site>/notice/<zero-padded time>-<n>`.
//!
//! The typed functions store values as JSON; the `_bytes` ones store bytes as given.
//!
//! Several writes that must happen together, or only if nothing changed since a read, go in a
//! [`Batch`]: all of its operations apply, or none. A batch may also publish events, which
//! then go out if and only if its writes commit ([`Batch::publish`], the outbox).
//!
//! A plugin's storage (`kv` and [`patient_data`](crate::patient_data) together) has a quota;
//! a write past it is refused whole with [`Error::TooLarge`]. [`usage`] tells how much is
//! used.
//!
//! ```no_run
//! use osler_sdk::kv;
//!
//! # fn main() -> Result<(), osler_sdk::Error> {
//! // Create only if absent: `conflict` when someone else got there first.
//! kv::Batch::new()
//!     .expect_absent("site/main/slot/0900")
//!     .put("site/main/slot/0900", &"drlee")
//!     .commit()?;
//! # Ok(()) }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::osler::plugin::kv as wit;

/// The most entries one [`scan`] returns, and the most operations in one [`Batch`].
pub const MAX_PAGE: u32 = 1000;

/// The value at `key` decoded from JSON, or `None` when there is none. A stored value that is
/// not the JSON of a `T` is [`Error::Internal`].
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    get_bytes(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

/// Stores `value` as JSON at `key`.
pub fn put<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Error> {
    put_bytes(key, &encode(value)?)
}

/// Removes `key` (no error when it is absent).
pub fn delete(key: &str) -> Result<(), Error> {
    wit::delete(key)
}

/// The bytes at `key`, or `None`.
pub fn get_bytes(key: &str) -> Result<Option<Vec<u8>>, Error> {
    wit::get(key)
}

/// Stores `value` at `key` as given.
pub fn put_bytes(key: &str, value: &[u8]) -> Result<(), Error> {
    wit::put(key, value)
}

/// One page of a [`scan`]: entries in key order, and where to continue.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// `(key, value)` pairs.
    pub entries: Vec<(String, T)>,
    /// Pass as `start_after` for the next page; `None` after the last.
    pub next: Option<String>,
}

/// Up to `limit` (1 to [`MAX_PAGE`]) entries whose keys start with `prefix`, in byte order,
/// after `start_after` when given, each decoded from JSON. A page also ends once its keys and
/// values reach the host's page size (1 MiB); `next` says where to continue either way.
///
/// ```no_run
/// # fn main() -> Result<(), osler_sdk::Error> {
/// let mut after = None;
/// loop {
///     let page = osler_sdk::kv::scan::<serde_json::Value>("site/main/", after.as_deref(), 100)?;
///     for (key, value) in &page.entries { /* ... */ }
///     match page.next {
///         Some(next) => after = Some(next),
///         None => break,
///     }
/// }
/// # Ok(()) }
/// ```
pub fn scan<T: DeserializeOwned>(
    prefix: &str,
    start_after: Option<&str>,
    limit: u32,
) -> Result<Page<T>, Error> {
    let page = scan_bytes(prefix, start_after, limit)?;
    let entries = page
        .entries
        .into_iter()
        .map(|(key, bytes)| {
            let value = decode(&key, &bytes)?;
            Ok((key, value))
        })
        .collect::<Result<_, Error>>()?;
    Ok(Page {
        entries,
        next: page.next,
    })
}

/// [`scan`] without decoding: values as stored.
pub fn scan_bytes(
    prefix: &str,
    start_after: Option<&str>,
    limit: u32,
) -> Result<Page<Vec<u8>>, Error> {
    let page = wit::scan(prefix, start_after, limit)?;
    Ok(Page {
        entries: page.entries.into_iter().map(|e| (e.key, e.value)).collect(),
        next: page.next,
    })
}

/// Every entry under `prefix`, a page of [`MAX_PAGE`] at a time. Mind the time and memory
/// limits: for a store that grows without bound, page with [`scan`] instead.
pub fn scan_all<T: DeserializeOwned>(prefix: &str) -> Result<Vec<(String, T)>, Error> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = scan(prefix, after.as_deref(), MAX_PAGE)?;
        all.extend(page.entries);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

/// How much of its storage quota this plugin uses.
pub use wit::StorageUsage as Usage;

/// The plugin's storage use (`kv` and `patient-data` together) and its quota.
pub fn usage() -> Result<Usage, Error> {
    wit::usage()
}

/// Writes and compare-and-swap expectations applied atomically: all or nothing.
///
/// When an expectation does not hold, nothing is written and [`Batch::commit`] returns
/// [`Error::Conflict`] naming the key. Expectations compare bytes: [`Batch::expect`] holds
/// only when the stored value is byte-for-byte the JSON of the value given, which is the case
/// when that value was read with [`get`] as the same type, unchanged. For exactness, read
/// with [`get_bytes`] and expect with [`Batch::expect_bytes`].
///
/// A value that fails to serialise is reported by `commit`, and nothing is written.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    ops: Vec<wit::Op>,
    error: Option<Error>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Stores `value` as JSON at `key`.
    pub fn put<T: Serialize + ?Sized>(self, key: &str, value: &T) -> Batch {
        match encode(value) {
            Ok(bytes) => self.put_bytes(key, bytes),
            Err(e) => self.fail(e),
        }
    }

    /// Stores `value` at `key` as given.
    pub fn put_bytes(self, key: &str, value: Vec<u8>) -> Batch {
        self.push(wit::Op::Put(wit::Entry {
            key: key.into(),
            value,
        }))
    }

    /// Removes `key`.
    pub fn delete(self, key: &str) -> Batch {
        self.push(wit::Op::Delete(key.into()))
    }

    /// Requires that `key` does not exist.
    pub fn expect_absent(self, key: &str) -> Batch {
        self.push(wit::Op::Expect(wit::Expectation {
            key: key.into(),
            value: None,
        }))
    }

    /// Requires that `key` holds exactly the JSON of `value`.
    pub fn expect<T: Serialize + ?Sized>(self, key: &str, value: &T) -> Batch {
        match encode(value) {
            Ok(bytes) => self.expect_bytes(key, bytes),
            Err(e) => self.fail(e),
        }
    }

    /// Requires that `key` still holds what a [`get`] returned: the JSON of `current`, or
    /// nothing when `current` is `None`. The building block of read-modify-write:
    ///
    /// ```no_run
    /// # use osler_sdk::kv;
    /// # fn main() -> Result<(), osler_sdk::Error> {
    /// let count: Option<u32> = kv::get("count")?;
    /// kv::Batch::new()
    ///     .expect_unchanged("count", count.as_ref())
    ///     .put("count", &(count.unwrap_or(0) + 1))
    ///     .commit()?; // `conflict` if another request changed it in between
    /// # Ok(()) }
    /// ```
    pub fn expect_unchanged<T: Serialize>(self, key: &str, current: Option<&T>) -> Batch {
        match current {
            Some(value) => self.expect(key, value),
            None => self.expect_absent(key),
        }
    }

    /// Publishes `payload` (as JSON) under `topic` if, and only if, the batch commits: the
    /// event and the writes are one atomic, durable change. Needs `events.publish`; see
    /// [`events::publish`](crate::events::publish).
    pub fn publish<T: Serialize + ?Sized>(self, topic: &str, payload: &T) -> Batch {
        match serde_json::to_string(payload) {
            Ok(payload) => self.push(wit::Op::Publish(wit::OutgoingEvent {
                topic: topic.into(),
                payload,
            })),
            Err(e) => self.fail(Error::invalid(format!("payload: {e}"))),
        }
    }

    /// Requires that `key` holds exactly `value`.
    pub fn expect_bytes(self, key: &str, value: Vec<u8>) -> Batch {
        self.push(wit::Op::Expect(wit::Expectation {
            key: key.into(),
            value: Some(value),
        }))
    }

    /// The number of operations so far.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Applies the batch (at most [`MAX_PAGE`] operations): everything or nothing.
    pub fn commit(self) -> Result<(), Error> {
        self.commit_publishing().map(|_| ())
    }

    /// [`Batch::commit`], returning the ids of the events it published, in order.
    pub fn commit_publishing(self) -> Result<Vec<String>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        wit::batch(&self.ops)
    }

    fn push(mut self, op: wit::Op) -> Batch {
        self.ops.push(op);
        self
    }

    fn fail(mut self, e: Error) -> Batch {
        self.error.get_or_insert(e);
        self
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::invalid(format!("value: {e}")))
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::internal(format!("the value stored at {key:?} does not decode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_collects_ops_in_order() {
        let b = Batch::new()
            .expect_absent("a")
            .put("a", &1)
            .expect("b", &"x")
            .delete("c")
            .expect_unchanged("d", Some(&2))
            .expect_unchanged::<u32>("e", None);
        assert_eq!(b.len(), 6);
        assert_eq!(
            b.ops,
            vec![
                wit::Op::Expect(wit::Expectation {
                    key: "a".into(),
                    value: None
                }),
                wit::Op::Put(wit::Entry {
                    key: "a".into(),
                    value: b"1".to_vec()
                }),
                wit::Op::Expect(wit::Expectation {
                    key: "b".into(),
                    value: Some(b"\"x\"".to_vec())
                }),
                wit::Op::Delete("c".into()),
                wit::Op::Expect(wit::Expectation {
                    key: "d".into(),
                    value: Some(b"2".to_vec())
                }),
                wit::Op::Expect(wit::Expectation {
                    key: "e".into(),
                    value: None
                }),
            ]
        );
    }

    #[test]
    fn batch_reports_the_first_serialisation_error() {
        let mut bad = std::collections::BTreeMap::new();
        bad.insert((1, 2), 3);
        let b = Batch::new().put("a", &bad).put("b", &1);
        assert_eq!(b.len(), 1);
        assert!(matches!(b.commit(), Err(Error::Invalid(_))));
    }

    #[test]
    fn stored_garbage_is_internal() {
        assert!(
            matches!(decode::<u32>("k", b"nope"), Err(Error::Internal(m)) if m.contains("\"k\""))
        );
    }
}
