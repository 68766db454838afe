//! The audit trail: an append-only, hash-chained log of every access to patient data, every
//! sign-in and every administrative change.
//!
//! The log is a file of JSON lines (`audit/audit.log` in the data directory), not a database
//! tree: it is the evidence, so it is kept in the simplest format a person or another tool can
//! verify, and a changed byte is found by re-hashing rather than hidden by a storage engine's
//! own recovery. Each entry carries the hash of the previous one and its own hash (sha256 over
//! the entry with `hash` empty), so editing, reordering, inserting or dropping an entry breaks
//! the chain at that entry; signed checkpoints of the chain's head ([`checkpoint`]) catch what
//! a chain alone cannot: entries cut off the end, and a log rewritten with fresh hashes.
//!
//! An entry travels in the write-ahead log record of the change it describes (see
//! [`crate::storage`]), and reaches the file only once that record is durable. So an entry in
//! the log means its change happened (a change cut off by a crash leaves neither the change nor
//! an entry): the trail holds no "success" for work that was never done, and a write is
//! acknowledged only after its entry is in the file. After a crash the file gets back any
//! entries it had not received; the server records that recovery in the trail.
//!
//! Queries (by patient, actor, time range) read an index kept in the database that points at
//! file offsets; the index is rebuilt from the file for any entries it lacks at start-up.
//! An entry naming one patient is indexed under that patient in its own atomic batch. An entry
//! naming many (a search's page of results, a batch of reads) is indexed in that batch by one
//! row keyed by the entry, listing its patients; a background indexer turns such rows into
//! per-patient rows a little later, off the request path, and a query by patient first indexes
//! whatever is still pending, so it sees every entry. The entry itself is in the trail before
//! the answer either way: only the per-patient lookup is deferred. The indexer resumes where
//! it stopped ([`Cursor`]) rather than scanning the pending rows from the first: in an LSM
//! tree a removed row stays as a tombstone until compaction, and a scan from the start walked
//! every row ever indexed (a third of the server's CPU under a stream of searches).
//! [`verify`] checks the file, read-only.

pub mod checkpoint;
pub mod verify;

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::storage::{Batch, Journal, Storage, Tree, WeakStorage, be};
pub use checkpoint::{AuditConfig, Checkpoint};
pub use verify::{Options as VerifyOptions, Verification, verify};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of the audit trail.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// RFC 3339 time in UTC.
    pub time: String,
    /// User name, or `system`, or `anonymous` for a failed sign-in with an unknown name.
    pub actor: String,
    /// The actor's roles, comma-separated.
    pub role: String,
    /// The site the request acted at.
    pub site: Option<String>,
    /// What was done, e.g. `patient.read`, `patient.search`, `auth.login`.
    pub action: String,
    /// The patient concerned, if one.
    pub patient: Option<String>,
    /// The patients a search returned, or whose records a plugin read in one call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patients: Vec<String>,
    /// The resource touched, e.g. `Patient/123` or `User/alice`.
    pub resource: Option<String>,
    /// `success`, `denied`, `invalid`, `conflict`, `not-found`, `failure`.
    pub outcome: String,
    /// Source address of the request.
    pub source: Option<String>,
    /// The plugin the access went through, if any (`a>b` when plugin `a` called plugin `b`).
    pub via: Option<String>,
    /// More about the event, e.g. a plugin's reason for an override or `development package`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Hash of the previous entry.
    pub prev: String,
    /// sha256 of this entry serialised with `hash` empty.
    pub hash: String,
}

/// What a caller supplies; the log adds sequence, time and hashes.
#[derive(Clone, Debug, Default)]
pub struct Event {
    pub actor: String,
    pub role: String,
    pub site: Option<String>,
    pub action: String,
    pub patient: Option<String>,
    pub patients: Vec<String>,
    pub resource: Option<String>,
    pub outcome: String,
    pub source: Option<String>,
    pub via: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Corrupt(String),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("the cursor does not belong to this query; start again without it")]
    BadCursor,
}

/// sha256 of the entry serialised with `hash` empty.
fn hash_of(e: &mut AuditEntry) -> String {
    let saved = std::mem::take(&mut e.hash);
    let bytes = serde_json::to_vec(&e).expect("audit entries serialise");
    e.hash = saved;
    hex::encode(Sha256::digest(&bytes))
}

/// The chain's head as recorded: entries may still be on their way to the file.
struct Head {
    seq: u64,
    hash: String,
    /// Where the next entry will start in the file.
    offset: u64,
}

/// What the file holds: entries whose changes are durable.
struct Written {
    file: File,
    seq: u64,
    hash: String,
}

/// The open audit log file. Created before storage, which hands it each entry once the entry's
/// write-ahead log record is durable, and syncs it at checkpoints.
pub struct AuditFile {
    path: PathBuf,
    head: Mutex<Head>,
    written: Mutex<Written>,
    /// The file's length as far as readers may look (entries written whole).
    visible: AtomicU64,
    reader: File,
    /// Signs checkpoints once the trail is open ([`Audit::anchor`]).
    anchor: OnceLock<checkpoint::Anchor>,
    /// What start-up repaired, for the trail (the trail records it once it is open).
    repairs: Mutex<Vec<String>>,
}

impl Journal for AuditFile {
    fn sync(&self) -> std::io::Result<()> {
        self.reader.sync_data()
    }

    /// Append the entries (from the write-ahead log) that come after the file's last one,
    /// checking that each continues the chain.
    fn restore(&self, entries: &[Vec<u8>]) -> Result<(), String> {
        let mut head = self.head.lock().expect("audit lock");
        let mut w = self.written.lock().expect("audit file lock");
        let mut restored = Vec::new();
        for line in entries {
            let e = parse_line(line).map_err(|e| e.to_string())?;
            if e.seq <= head.seq {
                continue;
            }
            if e.seq != head.seq + 1 || e.prev != head.hash {
                return Err(format!(
                    "the audit log ends at entry {} but the write-ahead log continues with entry \
                     {} that does not follow it; restore the data directory from a backup",
                    head.seq, e.seq
                ));
            }
            w.file
                .write_all(line)
                .map_err(|e| format!("cannot append to the audit log: {e}"))?;
            head.offset += line.len() as u64;
            head.seq = e.seq;
            head.hash = e.hash.clone();
            w.seq = e.seq;
            w.hash = e.hash;
            restored.push(e.seq);
        }
        self.visible.store(head.offset, Ordering::Release);
        if let (Some(first), Some(last)) = (restored.first(), restored.last()) {
            tracing::info!(
                entries = restored.len(),
                "restored audit entries from the write-ahead log"
            );
            self.repairs.lock().expect("repairs").push(format!(
                "entries {first}–{last} were restored from the write-ahead log after an unclean \
                 stop (their changes were durable; the log file had not received them)"
            ));
        }
        Ok(())
    }

    fn durable(&self, entries: &[Vec<u8>]) -> std::io::Result<()> {
        let mut w = self.written.lock().expect("audit file lock");
        let bytes: Vec<u8> = entries.concat();
        w.file.write_all(&bytes)?;
        if let Some(last) = entries.last() {
            let e = parse_line(last)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            w.seq = e.seq;
            w.hash = e.hash;
        }
        self.visible.fetch_add(bytes.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    fn checkpointed(&self, closing: bool) {
        let Some(anchor) = self.anchor.get() else {
            return;
        };
        if let Err(e) = self.sign_if_due(anchor, closing) {
            tracing::error!(error = %e, "cannot sign an audit checkpoint");
        }
        if closing {
            anchor.close();
        }
    }
}

pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("audit.log")
}

impl AuditFile {
    /// Open (or create) the log and find its head. A torn last line — cut off by a crash while
    /// the file was being written, so its entry is still in the write-ahead log — is removed
    /// (storage then restores the entry), and the removal is recorded in the trail.
    pub fn open(data_dir: &Path) -> Result<Self, AuditError> {
        let path = log_path(data_dir);
        std::fs::create_dir_all(path.parent().expect("has parent"))?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        let (mut seq, mut hash, mut offset) = (0, GENESIS.to_string(), len);
        let mut repairs = Vec::new();
        if len > 0 {
            let (start, line) = last_line(&mut file, len)?;
            if !line.ends_with(b"\n") {
                tracing::warn!(bytes = line.len(), "removing a torn final audit line");
                file.set_len(start)?;
                file.sync_data()?;
                offset = start;
                if start > 0 {
                    let (_, prev) = last_line(&mut file, start)?;
                    let e = parse_line(&prev)?;
                    (seq, hash) = (e.seq, e.hash);
                }
                repairs.push(format!(
                    "an incomplete last line of {} bytes after entry {seq} was removed from the \
                     log file (a write cut off by a crash)",
                    line.len()
                ));
            } else {
                let e = parse_line(&line)?;
                (seq, hash) = (e.seq, e.hash);
            }
        }
        let reader = File::open(&path)?;
        Ok(Self {
            path,
            head: Mutex::new(Head {
                seq,
                hash: hash.clone(),
                offset,
            }),
            written: Mutex::new(Written { file, seq, hash }),
            visible: AtomicU64::new(offset),
            reader,
            anchor: OnceLock::new(),
            repairs: Mutex::new(repairs),
        })
    }

    pub fn last_seq(&self) -> u64 {
        self.head.lock().expect("audit lock").seq
    }

    /// The last entry in the file (durable changes only) and the file's length.
    fn written_head(&self) -> (u64, String, u64) {
        let w = self.written.lock().expect("audit file lock");
        (w.seq, w.hash.clone(), self.visible.load(Ordering::Acquire))
    }

    /// Sign a checkpoint of what the file holds, if one is due.
    fn sign_if_due(&self, anchor: &checkpoint::Anchor, closing: bool) -> Result<(), AuditError> {
        let (seq, hash, _) = self.written_head();
        if anchor.due(seq, closing) {
            // Only what is on disk is signed.
            self.reader.sync_data()?;
            anchor.sign(seq, &hash)?;
        }
        Ok(())
    }

    fn read_line_at(&self, offset: u64) -> Result<Vec<u8>, AuditError> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        let mut at = offset;
        loop {
            let n = self.reader.read_at(&mut buf, at)?;
            if n == 0 {
                return Err(AuditError::Corrupt(format!(
                    "audit entry at byte {offset} is cut off"
                )));
            }
            if let Some(i) = buf[..n].iter().position(|b| *b == b'\n') {
                out.extend_from_slice(&buf[..i]);
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
            at += n as u64;
        }
    }
}

fn parse_line(line: &[u8]) -> Result<AuditEntry, AuditError> {
    let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice(trimmed)
        .map_err(|e| AuditError::Corrupt(format!("unreadable audit entry: {e}")))
}

/// The start offset and bytes of the last line of the first `len` bytes of the file.
fn last_line(file: &mut File, len: u64) -> std::io::Result<(u64, Vec<u8>)> {
    let start;
    let mut chunk = vec![0u8; 4096];
    // Skip the final newline itself when looking for the one before.
    let mut search_end = len.saturating_sub(1);
    loop {
        let from = search_end.saturating_sub(chunk.len() as u64);
        let n = (search_end - from) as usize;
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|b| *b == b'\n') {
            start = from + i as u64 + 1;
            break;
        }
        if from == 0 {
            start = 0;
            break;
        }
        search_end = from;
    }
    let mut line = vec![0u8; (len - start) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut line)?;
    Ok((start, line))
}

/// The audit trail: the file plus its index in storage.
#[derive(Clone)]
pub struct Audit {
    /// Declared before `storage`: the last clone stops the indexer before its storage handle
    /// goes, so storage closes when its owner drops it, not later on the indexer's thread.
    indexer: Arc<Indexer>,
    file: Arc<AuditFile>,
    storage: Storage,
    cursor: Arc<Mutex<Cursor>>,
}

/// Where the next scan for pending rows starts. Every pending row below `from` has been
/// indexed. An entry's rows reach the database a moment after it gets its sequence number, and
/// entries' rows are applied in parallel, so a row may appear below one already indexed: the
/// scan never moves past an entry still on its way (`in_flight`), nor past the last sequence
/// number given out when it looked.
#[derive(Default)]
struct Cursor {
    from: u64,
    /// Entries naming many patients whose rows may not be in the database yet.
    in_flight: BTreeSet<u64>,
    /// The highest sequence number given to such an entry.
    allocated: u64,
}

impl Cursor {
    /// Every pending row below this is in the database.
    fn limit(&self) -> u64 {
        self.in_flight
            .first()
            .copied()
            .unwrap_or(self.allocated + 1)
    }
}

/// The background indexer of entries naming many patients (see the module docs).
struct Indexer {
    state: Arc<(Mutex<IndexerState>, Condvar)>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct IndexerState {
    /// Entries waiting to be indexed per patient, as far as this process knows.
    pending: bool,
    stop: bool,
}

/// Held while indexing pending entries: one indexer at a time.
static INDEXING: Mutex<()> = Mutex::new(());

/// Rows of pending entries indexed per patient in one batch.
const INDEX_CHUNK: usize = 256;

impl Indexer {
    fn start(storage: WeakStorage, cursor: Arc<Mutex<Cursor>>) -> Arc<Self> {
        let state: Arc<(Mutex<IndexerState>, Condvar)> = Arc::default();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("osler-audit-index".into())
            .spawn(move || {
                let (lock, wake) = &*shared;
                loop {
                    {
                        let mut st = lock.lock().expect("indexer lock");
                        while !st.pending && !st.stop {
                            st = wake.wait(st).expect("indexer lock");
                        }
                        if st.stop {
                            return;
                        }
                        st.pending = false;
                    }
                    let Some(storage) = storage.upgrade() else {
                        return;
                    };
                    if let Err(e) = index_pending(&storage, &cursor) {
                        // The rows stay pending: the next query by patient, or the next start,
                        // indexes them.
                        tracing::error!(error = %e, "cannot index audit entries by patient");
                    }
                }
            })
            .expect("spawn the audit indexer");
        Arc::new(Self {
            state,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn wake(&self) {
        let (lock, wake) = &*self.state;
        lock.lock().expect("indexer lock").pending = true;
        wake.notify_one();
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.state;
        lock.lock().expect("indexer lock").stop = true;
        wake.notify_one();
        if let Some(t) = self.thread.lock().expect("indexer thread").take() {
            let _ = t.join();
        }
    }
}

/// Index every pending entry (one row naming many patients) under each of its patients, a
/// chunk of entries per atomic batch that also removes their pending rows. Idempotent: two
/// callers indexing the same entry write the same rows.
fn index_pending(storage: &Storage, cursor: &Mutex<Cursor>) -> Result<usize, AuditError> {
    let _one = INDEXING.lock().expect("index lock");
    let mut done = 0;
    loop {
        let (from, limit) = {
            let c = cursor.lock().expect("cursor lock");
            (c.from, c.limit())
        };
        let after = from.checked_sub(1).map(pending_key);
        let rows = storage.scan(Tree::AuditIndex, b"m", after.as_deref(), INDEX_CHUNK)?;
        let Some((last, _)) = rows.last() else {
            // Nothing pending below `limit` is left.
            let mut c = cursor.lock().expect("cursor lock");
            c.from = c.from.max(limit);
            return Ok(done);
        };
        let last = u64::from_be_bytes(last[1..9].try_into().expect("8"));
        let mut b = Batch::new();
        for (k, v) in &rows {
            let seq = u64::from_be_bytes(k[1..9].try_into().expect("8"));
            let (off, patients) = v.split_at(8);
            for p in patients.split(|c| *c == 0).filter(|p| !p.is_empty()) {
                let p = String::from_utf8_lossy(p);
                b.put(Tree::AuditIndex, idx_key(b'p', &p, seq), off.to_vec());
            }
            b.delete(Tree::AuditIndex, k.clone());
        }
        storage.apply(&b)?;
        done += rows.len();
        let mut c = cursor.lock().expect("cursor lock");
        c.from = c.from.max((last + 1).min(limit));
    }
}

/// A page of audit entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Cursor for the next page, if there may be more.
    pub next: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    pub patient: Option<String>,
    pub actor: Option<String>,
    /// Inclusive lower bound, unix milliseconds.
    pub since_ms: Option<i64>,
    /// Exclusive upper bound, unix milliseconds.
    pub until_ms: Option<i64>,
    pub count: usize,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

fn idx_key(kind: u8, who: &str, seq: u64) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(who.as_bytes());
    k.push(0);
    k.extend_from_slice(&be(seq));
    k
}

fn idx_prefix(kind: u8, who: &str) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(who.as_bytes());
    k.push(0);
    k
}

fn seq_key(seq: u64) -> Vec<u8> {
    let mut k = vec![b's'];
    k.extend_from_slice(&be(seq));
    k
}

/// An entry naming many patients, waiting to be indexed under each (`index_pending`).
fn pending_key(seq: u64) -> Vec<u8> {
    let mut k = vec![b'm'];
    k.extend_from_slice(&be(seq));
    k
}

fn index_batch(e: &AuditEntry, offset: u64) -> Batch {
    let off = be(offset).to_vec();
    let mut b = Batch::new();
    b.put(Tree::AuditIndex, seq_key(e.seq), off.clone());
    b.put(
        Tree::AuditIndex,
        idx_key(b'a', &e.actor, e.seq),
        off.clone(),
    );
    if let Some(p) = &e.patient {
        b.put(Tree::AuditIndex, idx_key(b'p', p, e.seq), off.clone());
    }
    let mut patients: Vec<&String> = e
        .patients
        .iter()
        .filter(|p| Some(*p) != e.patient.as_ref())
        .collect();
    patients.sort();
    patients.dedup();
    match patients.as_slice() {
        [] => {}
        [p] => b.put(Tree::AuditIndex, idx_key(b'p', p, e.seq), off),
        many => {
            // One row for the entry; the indexer writes the per-patient rows.
            let mut v = off;
            for p in many {
                v.push(0);
                v.extend_from_slice(p.as_bytes());
            }
            b.put(Tree::AuditIndex, pending_key(e.seq), v);
        }
    }
    b
}

fn parse_time_ms(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

impl Audit {
    /// Bind the file to its index, indexing any entries the index lacks (written just before
    /// a crash). Refuses to start if the index knows entries the file no longer has.
    pub fn open(file: Arc<AuditFile>, storage: Storage) -> Result<Self, AuditError> {
        let cursor: Arc<Mutex<Cursor>> = Arc::default();
        let audit = Self {
            indexer: Indexer::start(storage.downgrade(), cursor.clone()),
            file,
            storage,
            cursor,
        };
        let indexed = audit
            .storage
            .backend()
            .last(Tree::AuditIndex, b"s")?
            .map(|(k, v)| (u64::from_be_bytes(k[1..9].try_into().expect("8")), v));
        let file_seq = audit.file.last_seq();
        let (indexed_seq, resume_offset) = match indexed {
            Some((seq, off)) => (
                seq,
                Some(u64::from_be_bytes(off[..8].try_into().expect("8"))),
            ),
            None => (0, None),
        };
        if indexed_seq > file_seq {
            return Err(AuditError::Corrupt(format!(
                "the audit log ends at entry {file_seq} but entry {indexed_seq} was recorded: \
                 entries have been removed from {}; run `osler audit verify` and restore the \
                 log from a backup",
                audit.file.path.display()
            )));
        }
        if indexed_seq < file_seq {
            let mut f = BufReader::new(File::open(&audit.file.path)?);
            let mut offset = 0u64;
            if let Some(off) = resume_offset {
                f.seek(SeekFrom::Start(off))?;
                offset = off;
            }
            let mut line = Vec::new();
            let mut n = 0;
            loop {
                line.clear();
                let read = f.read_until(b'\n', &mut line)?;
                if read == 0 {
                    break;
                }
                let e = parse_line(&line)?;
                if e.seq > indexed_seq {
                    audit.storage.apply(&index_batch(&e, offset))?;
                    n += 1;
                }
                offset += read as u64;
            }
            tracing::info!(
                entries = n,
                "indexed audit entries written before the last stop"
            );
        }
        // Entries left pending by the last run (or just re-indexed) are indexed per patient.
        audit.indexer.wake();
        Ok(audit)
    }

    /// Append an entry. It is durable once the caller's next `Storage::durable` returns.
    pub fn record(&self, ev: Event) -> Result<u64, AuditError> {
        self.record_with(&Batch::new(), ev)
    }

    /// Apply `batch` atomically together with an audit entry describing it. The entry is made
    /// under the storage write lock, once the batch's preconditions hold, and travels in the
    /// batch's write-ahead log record: the change and its entry become durable together, and
    /// the entry reaches the log file then. The entry's index goes into the same atomic batch. A failed precondition writes nothing and is
    /// returned as [`StorageError::Conflict`](crate::storage::StorageError::Conflict) (the
    /// caller audits the refusal).
    pub fn record_with(&self, batch: &Batch, ev: Event) -> Result<u64, AuditError> {
        let mut seq = 0;
        let many = ev.patients.len() > 1;
        let applied = self.storage.apply_with(batch, |extra| {
            let mut head = self.file.head.lock().expect("audit lock");
            let now = time::OffsetDateTime::now_utc();
            let mut entry = AuditEntry {
                seq: head.seq + 1,
                time: now
                    .format(&time::format_description::well_known::Rfc3339)
                    .expect("format time"),
                actor: ev.actor,
                role: ev.role,
                site: ev.site,
                action: ev.action,
                patient: ev.patient,
                patients: ev.patients,
                resource: ev.resource,
                outcome: ev.outcome,
                source: ev.source,
                via: ev.via,
                detail: ev.detail,
                prev: head.hash.clone(),
                hash: String::new(),
            };
            entry.hash = hash_of(&mut entry);
            let mut line = serde_json::to_vec(&entry).expect("audit entries serialise");
            line.push(b'\n');
            // The line goes to the file once its log record is durable (`Journal::durable`),
            // at the offset reserved for it here.
            let offset = head.offset;
            head.offset += line.len() as u64;
            head.seq = entry.seq;
            head.hash = entry.hash.clone();
            seq = entry.seq;
            if many {
                let mut c = self.cursor.lock().expect("cursor lock");
                c.allocated = seq;
                c.in_flight.insert(seq);
            }
            extra.ops.extend(index_batch(&entry, offset).ops);
            Ok(Some(line))
        });
        if many && seq != 0 {
            self.cursor
                .lock()
                .expect("cursor lock")
                .in_flight
                .remove(&seq);
        }
        applied?;
        if many {
            self.indexer.wake();
        }
        Ok(seq)
    }

    /// The entry at sequence number `seq`.
    fn entry(&self, seq: u64) -> Result<Option<AuditEntry>, AuditError> {
        match self.storage.get(Tree::AuditIndex, &seq_key(seq))? {
            None => Ok(None),
            Some(off) => {
                let off = u64::from_be_bytes(off[..8].try_into().expect("8"));
                if off >= self.file.visible.load(Ordering::Acquire) {
                    // Recorded, not yet durable: not part of the trail yet.
                    return Ok(None);
                }
                Ok(Some(parse_line(&self.file.read_line_at(off)?)?))
            }
        }
    }

    /// The first sequence number whose entry is at or after `ms` (binary search: entries are
    /// appended in time order).
    fn first_seq_at(&self, ms: i64) -> Result<u64, AuditError> {
        let (mut lo, mut hi) = (1, Self::indexed_seq(&self.storage)?.unwrap_or(0) + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let t = self
                .entry(mid)?
                .and_then(|e| parse_time_ms(&e.time))
                .unwrap_or(i64::MAX);
            if t < ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Append an entry and wait until it (and everything before it) is on disk.
    pub async fn record_durable(&self, ev: Event) -> Result<u64, AuditError> {
        let seq = self.record(ev)?;
        self.storage.durable().await?;
        Ok(seq)
    }

    /// Commit a batch together with its audit entry ([`Audit::record_with`]) and wait until
    /// both are on disk.
    pub async fn commit_with(&self, batch: &Batch, ev: Event) -> Result<u64, AuditError> {
        let seq = self.record_with(batch, ev)?;
        self.storage.durable().await?;
        Ok(seq)
    }

    pub fn query(&self, q: &AuditQuery) -> Result<AuditPage, AuditError> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let count = q.count.clamp(1, 1000);
        let ms_of = |e: &AuditEntry| parse_time_ms(&e.time).unwrap_or(0);
        if q.patient.is_some() {
            // Entries naming many patients that the indexer has not reached yet.
            index_pending(&self.storage, &self.cursor)?;
        }
        // Drive from the most selective index (patient, actor, time, sequence); filter the rest.
        let (prefix, start): (Vec<u8>, Option<Vec<u8>>) = if let Some(p) = &q.patient {
            (idx_prefix(b'p', p), None)
        } else if let Some(a) = &q.actor {
            (idx_prefix(b'a', a), None)
        } else if let Some(since) = q.since_ms {
            // Entries are in time order: start just before the first one at `since`.
            let first = self.first_seq_at(since)?;
            (vec![b's'], (first > 1).then(|| seq_key(first - 1)))
        } else {
            (vec![b's'], None)
        };
        let mut resume = match &q.cursor {
            Some(c) => Some(
                b64.decode(c)
                    .ok()
                    .filter(|k| k.starts_with(&prefix))
                    .ok_or(AuditError::BadCursor)?,
            ),
            None => start,
        };
        let mut entries = Vec::new();
        let mut last_key = None;
        'outer: loop {
            let rows = self
                .storage
                .scan(Tree::AuditIndex, &prefix, resume.as_deref(), 256)?;
            if rows.is_empty() {
                break;
            }
            let visible = self.file.visible.load(Ordering::Acquire);
            for (k, off) in rows {
                let off = u64::from_be_bytes(off[..8].try_into().expect("8"));
                if off >= visible {
                    // Recorded, not yet durable: not part of the trail yet.
                    continue;
                }
                let e = parse_line(&self.file.read_line_at(off)?)?;
                resume = Some(k.clone());
                if q.patient.is_some() && q.actor.as_ref().is_some_and(|a| *a != e.actor) {
                    continue;
                }
                let ms = ms_of(&e);
                if q.until_ms.is_some_and(|u| ms >= u) {
                    // Every index lists entries in time order (up to clock adjustments).
                    break 'outer;
                }
                if q.since_ms.is_some_and(|s| ms < s) {
                    continue;
                }
                entries.push(e);
                last_key = Some(k);
                if entries.len() == count {
                    break 'outer;
                }
            }
        }
        let next = if entries.len() == count {
            last_key.map(|k| b64.encode(k))
        } else {
            None
        };
        Ok(AuditPage { entries, next })
    }
}

/// A checkpoint key created when the trail was opened.
#[derive(Clone, Debug)]
pub struct KeyCreated {
    pub key: osler_registry::PublicKey,
    /// Entries the log held before the key existed (an upgraded data directory's).
    pub earlier_entries: u64,
}

impl Audit {
    /// Anchor the trail: load the checkpoint key (creating it for a new data directory, or for
    /// one from before checkpoints), check the log against the last signed checkpoint, record
    /// what start-up repaired, and sign checkpoints from now on. Refuses a log that no longer
    /// reaches or matches its last checkpoint, a checkpoint the key did not sign, and a key
    /// other than `config.public_key`.
    pub fn anchor(
        &self,
        data_dir: &Path,
        config: &AuditConfig,
    ) -> Result<Option<KeyCreated>, AuditError> {
        let expected = match config.public_key.as_deref() {
            Some(k) => Some(osler_registry::PublicKey::parse(k).map_err(|e| {
                AuditError::Corrupt(format!("[audit] public_key in the configuration: {e}"))
            })?),
            None => None,
        };
        let pair = checkpoint::load_or_create_key(data_dir, expected.as_ref())?;
        let (checkpoints, bad) = checkpoint::read(&checkpoint::checkpoints_path(data_dir))?;
        if let Some(b) = bad.first() {
            return Err(AuditError::Corrupt(format!(
                "{} line {}: {}; run `osler audit verify`",
                checkpoint::checkpoints_path(data_dir).display(),
                b.line,
                b.problem
            )));
        }
        let last = self.check_against(&checkpoints, &pair.public)?;
        let anchor = checkpoint::Anchor::new(data_dir, pair.secret, config, last)?;
        if self.file.anchor.set(anchor).is_err() {
            return Err(AuditError::Corrupt(
                "the audit trail is already anchored".into(),
            ));
        }
        let repairs = std::mem::take(&mut *self.file.repairs.lock().expect("repairs"));
        for r in repairs {
            let mut ev = crate::access::Ctx::system("start-up").event("audit.recover", "success");
            ev.detail = Some(r);
            self.record(ev)?;
        }
        let created = pair.created.then(|| KeyCreated {
            key: pair.public,
            earlier_entries: self.file.written_head().0,
        });
        if let Some(k) = &created {
            let mut ev = crate::access::Ctx::system("start-up").event("audit.key", "success");
            ev.detail = Some(if k.earlier_entries == 0 {
                format!("checkpoints of this trail are signed with {}", k.key)
            } else {
                format!(
                    "checkpoints of this trail are signed with {} from here on; the {} entries \
                     before this one were written before any checkpoint (by an older Osler)",
                    k.key, k.earlier_entries
                )
            });
            self.record(ev)?;
        }
        if created.is_some() || last == 0 {
            // Anchor what is there now, rather than wait for the first checkpoint interval.
            self.seal()?;
        }
        Ok(created)
    }

    /// Make everything recorded durable and sign a checkpoint of it (at a stop, and when a key
    /// is created).
    pub fn seal(&self) -> Result<(), AuditError> {
        self.storage.durable_blocking()?;
        if let Some(a) = self.file.anchor.get() {
            self.file.sign_if_due(a, true)?;
        }
        Ok(())
    }

    /// The public half of the checkpoint key, once anchored.
    pub fn checkpoint_key(&self) -> Option<osler_registry::PublicKey> {
        self.file.anchor.get().map(|a| a.public())
    }

    /// Check the log against the checkpoints: each signed by `key`, and the newest one's head
    /// still the entry at its position, followed by an unbroken chain to the end of the file.
    /// Returns the entries the newest checkpoint covers.
    fn check_against(
        &self,
        checkpoints: &[Checkpoint],
        key: &osler_registry::PublicKey,
    ) -> Result<u64, AuditError> {
        let verify_hint = "run `osler audit verify` to see what changed, and restore the audit \
                           log from a backup";
        if let Some(c) = checkpoints.iter().find(|c| !c.signed_by(key)) {
            return Err(AuditError::Corrupt(format!(
                "the audit checkpoint of {} entries dated {} is not signed by this trail's key \
                 {key}; {verify_hint}",
                c.entries, c.time
            )));
        }
        let Some(last) = checkpoints.last() else {
            return Ok(0);
        };
        let (written, _, _) = self.file.written_head();
        if last.entries > written {
            return Err(AuditError::Corrupt(format!(
                "the audit log ends at entry {written}, but the checkpoint signed at {} covers \
                 {} entries: entries were removed from its end; {verify_hint}",
                last.time, last.entries
            )));
        }
        // The newest checkpoint's entry, then the chain from there to the end.
        let (mut prev, mut offset) = (GENESIS.to_string(), 0u64);
        if last.entries > 0 {
            let off = self
                .storage
                .get(Tree::AuditIndex, &seq_key(last.entries))?
                .map(|o| u64::from_be_bytes(o[..8].try_into().expect("8")))
                .ok_or_else(|| {
                    AuditError::Corrupt(format!(
                        "the audit index has no entry {}; {verify_hint}",
                        last.entries
                    ))
                })?;
            let line = self.file.read_line_at(off)?;
            let e = parse_line(&line)?;
            if e.seq != last.entries || e.hash != last.head {
                return Err(AuditError::Corrupt(format!(
                    "audit entry {} is not the one the checkpoint signed at {} names: the log has \
                     been rewritten; {verify_hint}",
                    last.entries, last.time
                )));
            }
            prev = e.hash;
            offset = off + line.len() as u64 + 1;
        } else if last.head != GENESIS {
            return Err(AuditError::Corrupt(format!(
                "the audit checkpoint of 0 entries names a head; {verify_hint}"
            )));
        }
        let mut r = BufReader::new(File::open(&self.file.path)?);
        r.seek(SeekFrom::Start(offset))?;
        let mut seq = last.entries;
        let mut line = Vec::new();
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let mut e = parse_line(&line)?;
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            let canonical = serde_json::to_vec(&e).expect("serialise");
            if e.seq != seq + 1 || e.prev != prev || hash_of(&mut e) != e.hash || canonical != body
            {
                return Err(AuditError::Corrupt(format!(
                    "audit entry {} does not follow entry {seq}; {verify_hint}",
                    seq + 1
                )));
            }
            seq = e.seq;
            prev = e.hash;
        }
        Ok(last.entries)
    }

    /// Verify the trail as this server has written it so far (for the API): the file up to the
    /// last entry written, ending with that entry.
    pub fn verify_now(&self, data_dir: &Path) -> Result<Verification, AuditError> {
        let (seq, hash, visible) = self.file.written_head();
        verify(
            data_dir,
            &VerifyOptions {
                key: self.checkpoint_key(),
                limit: Some(visible),
                head: Some((seq, hash)),
                ..Default::default()
            },
        )
    }

    /// The last entry the index has seen (for verification against truncation).
    pub fn indexed_seq(storage: &Storage) -> Result<Option<u64>, AuditError> {
        Ok(storage
            .backend()
            .last(Tree::AuditIndex, b"s")?
            .map(|(k, _)| u64::from_be_bytes(k[1..9].try_into().expect("8"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str, patient: Option<&str>) -> Event {
        Event {
            actor: "alice".into(),
            role: "physician".into(),
            action: action.into(),
            patient: patient.map(Into::into),
            outcome: "success".into(),
            ..Default::default()
        }
    }

    fn open(dir: &Path) -> Audit {
        let f = Arc::new(AuditFile::open(dir).unwrap());
        let s = Storage::open_dir(
            dir,
            crate::storage::Engine::default(),
            f.clone(),
            crate::storage::StorageMemory::default(),
        )
        .unwrap();
        Audit::open(f, s).unwrap()
    }

    #[tokio::test]
    async fn chain_verifies_and_detects_a_changed_byte() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path());
        for i in 0..5 {
            a.record_durable(ev("patient.read", Some(&format!("p{i}"))))
                .await
                .unwrap();
        }
        assert!(verify(dir.path(), &VerifyOptions::default()).unwrap().ok);
        let path = log_path(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let pos = bytes.windows(2).rposition(|w| w == b"p2").unwrap();
        bytes[pos + 1] = b'7';
        std::fs::write(&path, bytes).unwrap();
        let v = verify(dir.path(), &VerifyOptions::default()).unwrap();
        assert!(!v.ok);
        assert_eq!(v.broken_at, Some(3));
    }

    #[tokio::test]
    async fn query_by_patient_uses_the_index_and_pages() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path());
        for i in 0..10 {
            a.record(ev("patient.read", Some(if i % 2 == 0 { "x" } else { "y" })))
                .unwrap();
        }
        let q = AuditQuery {
            patient: Some("x".into()),
            count: 3,
            ..Default::default()
        };
        let p1 = a.query(&q).unwrap();
        assert_eq!(
            p1.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 3, 5]
        );
        let p2 = a
            .query(&AuditQuery {
                cursor: p1.next,
                ..q
            })
            .unwrap();
        assert_eq!(p2.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 9]);
        assert!(p2.next.is_none());
    }

    /// A crash after the group commit but before the audit file reached the disk: the file
    /// lost its last entries, the write-ahead log has them.
    #[tokio::test]
    async fn entries_lost_from_the_file_come_back_from_the_write_ahead_log() {
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("wal-saved");
        {
            let a = open(dir.path());
            for i in 0..4 {
                a.record_durable(ev("patient.read", Some(&format!("p{i}"))))
                    .await
                    .unwrap();
            }
            std::fs::create_dir_all(&saved).unwrap();
            for e in std::fs::read_dir(dir.path().join("wal")).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), saved.join(e.file_name())).unwrap();
            }
        }
        // Put back the log as it was at the crash, and cut the file after entry 2.
        std::fs::remove_dir_all(dir.path().join("wal")).unwrap();
        std::fs::rename(&saved, dir.path().join("wal")).unwrap();
        let path = log_path(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        let keep: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, keep).unwrap();

        let a = open(dir.path());
        let v = verify(dir.path(), &VerifyOptions::default()).unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!(v.entries, 4);
        let q = AuditQuery {
            patient: Some("p3".into()),
            count: 10,
            ..Default::default()
        };
        assert_eq!(a.query(&q).unwrap().entries.len(), 1);
    }

    fn search(patients: &[&str]) -> Event {
        Event {
            patients: patients.iter().map(|p| p.to_string()).collect(),
            ..ev("patient.search", None)
        }
    }

    /// An entry naming many patients is written as one pending row, found by a query for
    /// any of its patients, and indexed per patient in the background.
    #[test]
    fn an_entry_naming_many_patients_is_one_row_and_found_under_each() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path());
        let rows = |a: &Audit, prefix: &[u8]| {
            a.storage
                .scan(Tree::AuditIndex, prefix, None, 100)
                .unwrap()
                .len()
        };
        {
            // Keep the indexer out meanwhile, to see the rows as written.
            let _indexing = INDEXING.lock().unwrap();
            a.record(ev("patient.read", Some("x"))).unwrap();
            a.record(search(&["x", "y", "z"])).unwrap();
            a.record(search(&["y"])).unwrap();
            a.storage.durable_blocking().unwrap();
            assert_eq!(rows(&a, b"m"), 1, "one row for the three patients");
            assert_eq!(rows(&a, b"py\0"), 1, "a single patient is indexed at once");
            assert_eq!(rows(&a, b"pz\0"), 0);
        }
        let seqs = |p: &str| {
            a.query(&AuditQuery {
                patient: Some(p.into()),
                count: 10,
                ..Default::default()
            })
            .unwrap()
            .entries
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>()
        };
        assert_eq!(seqs("x"), [1, 2]);
        assert_eq!(seqs("y"), [2, 3]);
        assert_eq!(seqs("z"), [2]);
        assert_eq!(rows(&a, b"m"), 0);

        // In the background, without a query.
        a.record(search(&["u", "v"])).unwrap();
        a.storage.durable_blocking().unwrap();
        for _ in 0..500 {
            if rows(&a, b"m") == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(rows(&a, b"m"), 0, "the indexer ran");
        assert_eq!(rows(&a, b"pv\0"), 1);
    }

    /// Entries naming many patients recorded from several threads at once (their rows reach
    /// the database in any order) are all indexed by the background indexer, which resumes
    /// where it stopped rather than from the first pending row.
    #[test]
    fn entries_recorded_in_parallel_are_all_indexed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let a = open(dir.path());
        std::thread::scope(|scope| {
            for t in 0..6 {
                let a = &a;
                scope.spawn(move || {
                    for i in 0..60 {
                        let own = format!("t{t}");
                        let each = format!("e{t}.{i}");
                        a.record(search(&["all", &own, &each])).unwrap();
                    }
                });
            }
        });
        a.storage.durable_blocking().unwrap();
        let pending = |a: &Audit| a.storage.scan(Tree::AuditIndex, b"m", None, 1).unwrap();
        for _ in 0..1000 {
            if pending(&a).is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(pending(&a).is_empty(), "the indexer ran");
        let count = |p: &str| {
            a.storage
                .scan(Tree::AuditIndex, &idx_prefix(b'p', p), None, 1000)
                .unwrap()
                .len()
        };
        assert_eq!(count("all"), 360);
        assert_eq!(count("t3"), 60);
        assert_eq!(count("e5.59"), 1);
        assert!(a.cursor.lock().unwrap().in_flight.is_empty());
        assert_eq!(a.cursor.lock().unwrap().from, 361);
    }

    /// A row still pending at a stop is indexed after the next start.
    #[test]
    fn pending_rows_are_indexed_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let a = open(dir.path());
            let seq = a.record(search(&["p1", "p2"])).unwrap();
            a.storage.durable_blocking().unwrap();
            // As a stop before the indexer ran leaves it: the pending row, no patient rows.
            let _indexing = INDEXING.lock().unwrap();
            let off = a
                .storage
                .get(Tree::AuditIndex, &seq_key(seq))
                .unwrap()
                .unwrap();
            let e = a.entry(seq).unwrap().unwrap();
            let mut b = index_batch(&e, u64::from_be_bytes(off[..8].try_into().unwrap()));
            for p in ["p1", "p2"] {
                b.delete(Tree::AuditIndex, idx_key(b'p', p, seq));
            }
            a.storage.apply(&b).unwrap();
            a.storage.durable_blocking().unwrap();
            assert_eq!(
                a.storage
                    .scan(Tree::AuditIndex, b"m", None, 5)
                    .unwrap()
                    .len(),
                1
            );
        }
        let a = open(dir.path());
        for _ in 0..500 {
            if a.storage
                .scan(Tree::AuditIndex, b"m", None, 1)
                .unwrap()
                .is_empty()
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let q = AuditQuery {
            patient: Some("p2".into()),
            count: 10,
            ..Default::default()
        };
        assert_eq!(a.query(&q).unwrap().entries.len(), 1);
    }

    #[tokio::test]
    async fn reopening_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        {
            let a = open(dir.path());
            a.record_durable(ev("auth.login", None)).await.unwrap();
        }
        let a = open(dir.path());
        a.record_durable(ev("auth.logout", None)).await.unwrap();
        let v = verify(dir.path(), &VerifyOptions::default()).unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!(v.entries, 2);
    }
}
