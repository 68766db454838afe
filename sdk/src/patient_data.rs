//! What this plugin keeps about a patient (capability `patient-data`).
//!
//! Like [`kv`](crate::kv), but every key lives under a patient the host knows: each call is
//! checked against the right of the person the call serves to that patient (reading needs
//! `patients.read` — a `patient` user reads only their own record — writing needs
//! `patients.write`) and audited by the host with the patient, like a chart read. The plugin
//! cannot forget to audit, and cannot file one patient's data under another. Use it for
//! clinical data (medications, allergies, notes, appointments by patient); keep indexes that
//! span patients in `kv`.
//!
//! ```no_run
//! use osler_sdk::patient_data;
//!
//! # fn main() -> Result<(), osler_sdk::Error> {
//! # let patient = "…";
//! patient_data::put(patient, "allergy/penicillin", &serde_json::json!({"severity": "severe"}))?;
//! let allergies = patient_data::scan_all::<serde_json::Value>(patient, "allergy/")?;
//! # Ok(()) }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::osler::plugin::patient_data as wit;
use crate::kv::Page;

/// The most entries one [`scan`] returns, and the most operations in one [`Batch`].
pub const MAX_PAGE: u32 = 1000;

/// The value at `key` of `patient`, decoded from JSON, or `None`.
pub fn get<T: DeserializeOwned>(patient: &str, key: &str) -> Result<Option<T>, Error> {
    get_bytes(patient, key)?
        .map(|b| decode(key, &b))
        .transpose()
}

/// Stores `value` as JSON at `key` of `patient`.
pub fn put<T: Serialize + ?Sized>(patient: &str, key: &str, value: &T) -> Result<(), Error> {
    wit::put(patient, key, &encode(value)?)
}

/// Removes `key` of `patient` (no error when it is absent).
pub fn delete(patient: &str, key: &str) -> Result<(), Error> {
    wit::delete(patient, key)
}

/// The bytes at `key` of `patient`, or `None`.
pub fn get_bytes(patient: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
    wit::get(patient, key)
}

/// Up to `limit` (1 to [`MAX_PAGE`]) entries of `patient` whose keys start with `prefix`, in
/// byte order, after `start_after`, each decoded from JSON; a page also ends at the host's
/// page size (1 MiB), and `next` says where to continue.
pub fn scan<T: DeserializeOwned>(
    patient: &str,
    prefix: &str,
    start_after: Option<&str>,
    limit: u32,
) -> Result<Page<T>, Error> {
    let page = wit::scan(patient, prefix, start_after, limit)?;
    let entries = page
        .entries
        .into_iter()
        .map(|e| Ok((e.key.clone(), decode(&e.key, &e.value)?)))
        .collect::<Result<_, Error>>()?;
    Ok(Page {
        entries,
        next: page.next,
    })
}

/// Every entry of `patient` under `prefix`, a page at a time.
pub fn scan_all<T: DeserializeOwned>(
    patient: &str,
    prefix: &str,
) -> Result<Vec<(String, T)>, Error> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = scan(patient, prefix, after.as_deref(), MAX_PAGE)?;
        all.extend(page.entries);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

/// Writes and expectations on one patient's data, applied atomically (see
/// [`kv::Batch`](crate::kv::Batch) for how expectations compare).
#[derive(Clone, Debug)]
pub struct Batch {
    patient: String,
    ops: Vec<wit::Op>,
    error: Option<Error>,
}

impl Batch {
    /// An empty batch for `patient`.
    pub fn new(patient: &str) -> Batch {
        Batch {
            patient: patient.into(),
            ops: Vec::new(),
            error: None,
        }
    }

    /// Stores `value` as JSON at `key`.
    pub fn put<T: Serialize + ?Sized>(mut self, key: &str, value: &T) -> Batch {
        match encode(value) {
            Ok(value) => self.ops.push(wit::Op::Put(wit::Entry {
                key: key.into(),
                value,
            })),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Stores `value` at `key` as given.
    pub fn put_bytes(mut self, key: &str, value: Vec<u8>) -> Batch {
        self.ops.push(wit::Op::Put(wit::Entry {
            key: key.into(),
            value,
        }));
        self
    }

    /// Requires that `key` holds exactly the JSON of `value`.
    pub fn expect<T: Serialize + ?Sized>(mut self, key: &str, value: &T) -> Batch {
        match encode(value) {
            Ok(bytes) => self.expect_bytes(key, bytes),
            Err(e) => {
                self.error.get_or_insert(e);
                self
            }
        }
    }

    /// Requires that `key` holds exactly `value`.
    pub fn expect_bytes(mut self, key: &str, value: Vec<u8>) -> Batch {
        self.ops.push(wit::Op::Expect(wit::Expectation {
            key: key.into(),
            value: Some(value),
        }));
        self
    }

    /// Removes `key`.
    pub fn delete(mut self, key: &str) -> Batch {
        self.ops.push(wit::Op::Delete(key.into()));
        self
    }

    /// Requires that `key` does not exist.
    pub fn expect_absent(mut self, key: &str) -> Batch {
        self.ops.push(wit::Op::Expect(wit::Expectation {
            key: key.into(),
            value: None,
        }));
        self
    }

    /// Requires that `key` still holds what a [`get`] returned (the JSON of `current`), or
    /// nothing when `current` is `None`.
    pub fn expect_unchanged<T: Serialize>(mut self, key: &str, current: Option<&T>) -> Batch {
        let value = match current.map(encode).transpose() {
            Ok(v) => v,
            Err(e) => {
                self.error.get_or_insert(e);
                return self;
            }
        };
        self.ops.push(wit::Op::Expect(wit::Expectation {
            key: key.into(),
            value,
        }));
        self
    }

    /// Publishes `payload` (as JSON) on `topic` if, and only if, the batch commits (the
    /// outbox): a subscriber never hears of a write that did not happen, and no write goes
    /// unannounced. Needs the capability `events.publish`; see
    /// [`kv::Batch::publish`](crate::kv::Batch::publish).
    pub fn publish<T: Serialize + ?Sized>(mut self, topic: &str, payload: &T) -> Batch {
        match serde_json::to_string(payload) {
            Ok(payload) => self.ops.push(wit::Op::Publish(wit::OutgoingEvent {
                topic: topic.into(),
                payload,
            })),
            Err(e) => {
                self.error
                    .get_or_insert(Error::invalid(format!("payload: {e}")));
            }
        }
        self
    }

    /// The number of operations so far.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Applies the batch: everything or nothing.
    pub fn commit(self) -> Result<(), Error> {
        self.commit_publishing().map(|_| ())
    }

    /// [`Batch::commit`], returning the ids of the events it published, in order.
    pub fn commit_publishing(self) -> Result<Vec<String>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        wit::batch(&self.patient, &self.ops)
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::invalid(format!("value: {e}")))
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::internal(format!("the value stored at {key:?} does not decode: {e}")))
}
