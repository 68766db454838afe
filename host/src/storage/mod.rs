//! Storage: the narrow interface every domain module writes through, its sled backend, and
//! durability.
//!
//! The interface is deliberately small — named trees of ordered byte keys, point reads, ordered
//! prefix scans with a resume key, and one atomic [`Batch`] of puts, deletes and
//! compare-and-swap preconditions — so that a PostgreSQL backend (one table keyed by
//! `(tree, key)`) can implement [`Backend`] without the domain modules changing.
//!
//! Durability is owned here, not by the backend:
//! - every batch is applied to the backend in memory and appended, in the same order, to a
//!   write-ahead log ([`wal`]) under one lock;
//! - a write is acknowledged only after [`Storage::durable`] returns, which waits for a group
//!   commit: one thread fsyncs the audit log and then writes and `fdatasync`s the log records of
//!   every write that arrived before it started, so concurrent writers share one fsync;
//! - a checkpoint thread periodically starts a new log segment, flushes and fsyncs the backend,
//!   and deletes the segments the backend now holds; at start-up the remaining segments are
//!   applied again (see [`wal`] for why that is safe).
//!
//! [`Storage::apply_with`] lets a caller write something *before* the batch becomes visible,
//! under the same lock, once its preconditions are known to hold. The audit trail uses it so
//! that an entry is in the audit log before the change it describes can reach any disk.

mod sled_backend;
pub mod wal;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use tokio::sync::watch;

pub use sled_backend::SledBackend;

/// The trees (tables) Osler keeps. One per domain, so a backend can map each to a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tree {
    /// Schema version and other database-wide facts.
    Meta,
    /// Patient id → FHIR Patient JSON.
    Patients,
    /// Search index: normalised name token, 0, patient id → empty.
    PatientNames,
    /// Search index: birth date, 0, patient id → empty.
    PatientBirthDates,
    /// Unique index: identifier value, 0, system → patient id.
    PatientIdentifiers,
    /// User name → user.
    Users,
    /// sha256(session token) → session.
    Sessions,
    /// Site id → site.
    Sites,
    /// Index of the audit log file: by patient, by actor, by time, by sequence.
    AuditIndex,
}

impl Tree {
    /// Every tree. The position is the tree's code in the write-ahead log: append only.
    pub const ALL: [Tree; 9] = [
        Tree::Meta,
        Tree::Patients,
        Tree::PatientNames,
        Tree::PatientBirthDates,
        Tree::PatientIdentifiers,
        Tree::Users,
        Tree::Sessions,
        Tree::Sites,
        Tree::AuditIndex,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Patients => "patients",
            Tree::PatientNames => "patients.by-name",
            Tree::PatientBirthDates => "patients.by-birthdate",
            Tree::PatientIdentifiers => "patients.by-identifier",
            Tree::Users => "users",
            Tree::Sessions => "sessions",
            Tree::Sites => "sites",
            Tree::AuditIndex => "audit.index",
        }
    }

    fn index(self) -> usize {
        Tree::ALL.iter().position(|t| *t == self).expect("listed")
    }

    fn code(self) -> u8 {
        self.index() as u8
    }

    fn from_code(c: u8) -> Option<Tree> {
        Tree::ALL.get(c as usize).copied()
    }
}

/// One operation of an atomic batch.
#[derive(Clone, Debug)]
pub enum Op {
    Put(Tree, Vec<u8>, Vec<u8>),
    Delete(Tree, Vec<u8>),
    /// Precondition: the key currently holds exactly this value (`None`: the key is absent).
    /// If any precondition fails, nothing in the batch is applied.
    Expect(Tree, Vec<u8>, Option<Vec<u8>>),
}

/// An atomic group of writes: all apply, or none.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(tree, key.into(), value.into()));
    }
    pub fn delete(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete(tree, key.into()));
    }
    pub fn expect(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: Option<Vec<u8>>) {
        self.ops.push(Op::Expect(tree, key.into(), value));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A precondition of the batch did not hold; nothing was written.
    #[error("conflict on {tree}/{key}")]
    Conflict { tree: &'static str, key: String },
    #[error("storage failure: {0}")]
    Io(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

fn io(e: impl std::fmt::Display) -> StorageError {
    StorageError::Io(e.to_string())
}

/// What a storage engine must provide. Everything is synchronous and memory-speed except
/// [`Backend::flush`], which makes everything applied so far durable in the engine's own files
/// (called at checkpoints only).
pub trait Backend: Send + Sync + 'static {
    fn get(&self, tree: Tree, key: &[u8]) -> StorageResult<Option<Vec<u8>>>;
    /// Entries whose key starts with `prefix`, in key order, strictly after `after` if given.
    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<Vec<(Vec<u8>, Vec<u8>)>>;
    /// The entry with the greatest key starting with `prefix`.
    fn last(&self, tree: Tree, prefix: &[u8]) -> StorageResult<Option<(Vec<u8>, Vec<u8>)>>;
    /// Apply a batch atomically (all or nothing), checking its preconditions.
    fn apply(&self, batch: &Batch) -> StorageResult<()>;
    /// Make everything applied so far durable in the engine's files.
    fn flush(&self) -> StorageResult<()>;
    fn len(&self, tree: Tree) -> usize;
}

/// Something else that must reach the disk in each group commit before the write-ahead log
/// (the audit log: no change is durable without its audit entry).
pub trait SyncFirst: Send + Sync + 'static {
    fn sync(&self) -> std::io::Result<()>;
}

/// How often the backend is checkpointed (and the write-ahead log trimmed).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
/// A log segment this large triggers a checkpoint before the interval is up.
const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
/// Ids are reserved durably this many at a time.
const ID_BLOCK: u64 = 1000;
const ID_KEY: &[u8] = b"ids.reserved";

struct LogState {
    /// Encoded records not yet written to the segment file.
    buf: Vec<u8>,
}

struct Segment {
    file: File,
    number: u64,
    bytes: u64,
}

struct FlushState {
    /// Generation handed to the most recent writer.
    requested: u64,
    failed: Option<String>,
    stop: bool,
}

struct Ids {
    next: u64,
    reserved: u64,
}

struct Inner {
    backend: Arc<dyn Backend>,
    first: Arc<dyn SyncFirst>,
    wal_dir: PathBuf,
    /// Held while applying a batch and appending its record: log order = apply order.
    log: Mutex<LogState>,
    /// Held while writing to the current segment or switching segments.
    segment: Mutex<Segment>,
    flush: Mutex<FlushState>,
    wake: Condvar,
    done: watch::Sender<Result<u64, String>>,
    ids: Mutex<Ids>,
}

/// Stops the background threads when the last [`Storage`] handle goes: a final group commit
/// and checkpoint, then the backend is closed and can be opened again by this process.
struct Guard {
    inner: Arc<Inner>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.inner.flush.lock().expect("flush lock").stop = true;
        self.inner.wake.notify_all();
        for t in self.threads.lock().expect("threads").drain(..) {
            let _ = t.join();
        }
        if let Err(e) = self.inner.checkpoint() {
            tracing::warn!(error = %e, "final checkpoint failed; the log will be replayed at start-up");
        }
    }
}

/// The storage handle the rest of the host uses.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
    _guard: Arc<Guard>,
}

impl Storage {
    /// Open the sled database in `dir/db` with its write-ahead log in `dir/wal`, replaying the
    /// log. `first` is synced before the log at every group commit.
    pub fn open_sled(dir: &Path, first: Arc<dyn SyncFirst>) -> Result<Self, StorageError> {
        let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(&dir.join("db"))?);
        Self::open(backend, &dir.join("wal"), first)
    }

    /// Open over any backend, replaying the write-ahead log in `wal_dir` into it.
    pub fn open(
        backend: Arc<dyn Backend>,
        wal_dir: &Path,
        first: Arc<dyn SyncFirst>,
    ) -> Result<Self, StorageError> {
        std::fs::create_dir_all(wal_dir).map_err(io)?;
        let segs = wal::segments(wal_dir).map_err(io)?;
        let replay = wal::read_all(wal_dir, &segs).map_err(StorageError::Io)?;
        if !replay.is_empty() {
            tracing::info!(records = replay.len(), "replaying the write-ahead log");
            for b in &replay {
                backend.apply(b)?;
            }
        }
        if !segs.is_empty() {
            backend.flush()?;
            for n in &segs {
                std::fs::remove_file(wal::segment_path(wal_dir, *n)).map_err(io)?;
            }
        }
        let number = segs.last().map_or(1, |n| n + 1);
        let file = wal::create_segment(wal_dir, number).map_err(io)?;
        let reserved = match backend.get(Tree::Meta, ID_KEY)? {
            Some(v) => u64::from_be_bytes(v.as_slice().try_into().unwrap_or([0; 8])),
            None => 0,
        };
        let (done, _) = watch::channel(Ok(0));
        let inner = Arc::new(Inner {
            backend,
            first,
            wal_dir: wal_dir.to_path_buf(),
            log: Mutex::new(LogState { buf: Vec::new() }),
            segment: Mutex::new(Segment {
                file,
                number,
                bytes: 0,
            }),
            flush: Mutex::new(FlushState {
                requested: 0,
                failed: None,
                stop: false,
            }),
            wake: Condvar::new(),
            done,
            // Ids handed out before a crash were below `reserved`: never reuse them.
            ids: Mutex::new(Ids {
                next: reserved,
                reserved,
            }),
        });
        let spawn = |name: &str, f: fn(Arc<Inner>)| {
            let i = inner.clone();
            thread::Builder::new()
                .name(name.into())
                .spawn(move || f(i))
                .expect("spawn storage thread")
        };
        let threads = vec![
            spawn("osler-group-commit", group_commit_loop),
            spawn("osler-checkpoint", checkpoint_loop),
        ];
        Ok(Self {
            _guard: Arc::new(Guard {
                inner: inner.clone(),
                threads: Mutex::new(threads),
            }),
            inner,
        })
    }

    pub fn backend(&self) -> &dyn Backend {
        &*self.inner.backend
    }

    pub fn get(&self, tree: Tree, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.inner.backend.get(tree, key)
    }

    pub fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.backend.scan(tree, prefix, after, limit)
    }

    /// Apply a batch atomically. Not yet durable: call [`Storage::durable`] before
    /// acknowledging it.
    pub fn apply(&self, batch: &Batch) -> StorageResult<()> {
        self.apply_with(batch, |_| Ok(()))
    }

    /// Apply a batch atomically after `before` has run. `before` runs under the write lock
    /// once the batch's preconditions are known to hold, and may add operations to the batch
    /// (the audit trail writes its entry there and adds its index). If a precondition fails,
    /// `before` does not run and nothing is written.
    pub fn apply_with(
        &self,
        batch: &Batch,
        before: impl FnOnce(&mut Batch) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let inner = &self.inner;
        let mut log = inner.log.lock().expect("log lock");
        if let Some(e) = &inner.flush.lock().expect("flush lock").failed {
            return Err(StorageError::Io(e.clone()));
        }
        for op in &batch.ops {
            if let Op::Expect(t, k, want) = op
                && inner.backend.get(*t, k)?.as_deref() != want.as_deref()
            {
                return Err(StorageError::Conflict {
                    tree: t.name(),
                    key: String::from_utf8_lossy(k).into_owned(),
                });
            }
        }
        let mut extra = Batch::new();
        before(&mut extra)?;
        let whole;
        let batch = if extra.ops.is_empty() {
            batch
        } else {
            let mut b = batch.clone();
            b.ops.extend(extra.ops);
            whole = b;
            &whole
        };
        // Logged before it is applied: the backend never holds a change the log lacks.
        let mark = log.buf.len();
        wal::encode(batch, &mut log.buf);
        if let Err(e) = inner.backend.apply(batch) {
            log.buf.truncate(mark);
            return Err(e);
        }
        Ok(())
    }

    /// Apply a batch and wait until it is on disk.
    pub async fn commit(&self, batch: &Batch) -> StorageResult<()> {
        self.apply(batch)?;
        self.durable().await
    }

    /// Wait until everything applied before this call (and every audit entry written before
    /// it) is durable. Concurrent callers share one fsync.
    pub async fn durable(&self) -> StorageResult<()> {
        let inner = &self.inner;
        let generation = {
            let mut st = inner.flush.lock().expect("flush lock");
            if let Some(e) = &st.failed {
                return Err(StorageError::Io(e.clone()));
            }
            st.requested += 1;
            st.requested
        };
        inner.wake.notify_all();
        let mut rx = inner.done.subscribe();
        let seen = rx
            .wait_for(|r| match r {
                Ok(g) => *g >= generation,
                Err(_) => true,
            })
            .await
            .map_err(|_| StorageError::Io("the storage flusher stopped".into()))?;
        match &*seen {
            Ok(_) => Ok(()),
            Err(e) => Err(StorageError::Io(e.clone())),
        }
    }

    /// Make everything applied so far durable now, on this thread (the command line, and
    /// id reservations).
    pub fn durable_blocking(&self) -> StorageResult<()> {
        self.inner.sync().map_err(StorageError::Io)
    }

    /// A fresh number, never handed out before (gaps are allowed after a restart). Numbers
    /// are reserved durably a block at a time.
    pub fn next_id(&self) -> StorageResult<u64> {
        let mut ids = self.inner.ids.lock().expect("ids lock");
        if ids.next >= ids.reserved {
            let reserved = ids.reserved + ID_BLOCK;
            let mut b = Batch::new();
            b.put(Tree::Meta, ID_KEY, reserved.to_be_bytes().to_vec());
            self.apply(&b)?;
            self.durable_blocking()?;
            ids.reserved = reserved;
        }
        ids.next += 1;
        Ok(ids.next)
    }
}

impl Inner {
    /// One group commit: the audit log first, then every pending log record.
    fn sync(&self) -> Result<(), String> {
        let mut seg = self.segment.lock().expect("segment lock");
        let buf = std::mem::take(&mut self.log.lock().expect("log lock").buf);
        // Every audit entry for a record in `buf` was written before the record was logged.
        self.first
            .sync()
            .map_err(|e| format!("audit log fsync failed: {e}"))?;
        wal::write_durably(&mut seg.file, &buf)
            .map_err(|e| format!("write-ahead log write failed: {e}"))?;
        seg.bytes += buf.len() as u64;
        Ok(())
    }

    fn segment_bytes(&self) -> u64 {
        self.segment.lock().expect("segment lock").bytes
    }

    /// Start a new segment (the old one synced), make the backend durable, and delete the
    /// segments it now holds.
    fn checkpoint(&self) -> Result<(), String> {
        let old = {
            let mut seg = self.segment.lock().expect("segment lock");
            let buf = std::mem::take(&mut self.log.lock().expect("log lock").buf);
            self.first
                .sync()
                .map_err(|e| format!("audit log fsync failed: {e}"))?;
            wal::write_durably(&mut seg.file, &buf).map_err(|e| e.to_string())?;
            if seg.bytes + buf.len() as u64 == 0 {
                return Ok(());
            }
            let number = seg.number + 1;
            let file = wal::create_segment(&self.wal_dir, number).map_err(|e| e.to_string())?;
            let old = seg.number;
            *seg = Segment {
                file,
                number,
                bytes: 0,
            };
            old
        };
        // Everything logged in segments up to `old` was applied before this flush began.
        self.backend.flush().map_err(|e| e.to_string())?;
        for n in wal::segments(&self.wal_dir).map_err(|e| e.to_string())? {
            if n <= old {
                std::fs::remove_file(wal::segment_path(&self.wal_dir, n))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

fn group_commit_loop(inner: Arc<Inner>) {
    let mut flushed = 0u64;
    loop {
        let (target, stop) = {
            let mut st = inner.flush.lock().expect("flush lock");
            while st.requested == flushed && !st.stop {
                st = inner.wake.wait(st).expect("flush lock");
            }
            (st.requested, st.stop)
        };
        match inner.sync() {
            Ok(()) => {
                flushed = target;
                let _ = inner.done.send_replace(Ok(target));
                if stop {
                    return;
                }
            }
            Err(e) => {
                // A failed fsync leaves the on-disk state unknown: refuse all further writes
                // rather than acknowledge something that may not be durable.
                tracing::error!(error = %e, "durable write failed; refusing further writes");
                inner.flush.lock().expect("flush lock").failed = Some(e.clone());
                let _ = inner.done.send_replace(Err(e));
                return;
            }
        }
    }
}

fn checkpoint_loop(inner: Arc<Inner>) {
    let tick = Duration::from_millis(200);
    let mut waited = Duration::ZERO;
    loop {
        {
            let st = inner.flush.lock().expect("flush lock");
            let (st, _) = inner.wake.wait_timeout(st, tick).expect("flush lock");
            if st.stop || st.failed.is_some() {
                return;
            }
        }
        waited += tick;
        if waited >= CHECKPOINT_EVERY || inner.segment_bytes() >= CHECKPOINT_BYTES {
            waited = Duration::ZERO;
            if let Err(e) = inner.checkpoint() {
                tracing::error!(error = %e, "checkpoint failed; will retry");
            }
        }
    }
}

/// Big-endian encoding so that numeric keys sort in numeric order.
pub fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Join key parts with a 0 byte (parts never contain 0).
pub fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoFirst;
    impl SyncFirst for NoFirst {
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn open(dir: &Path) -> Storage {
        Storage::open_sled(dir, Arc::new(NoFirst)).unwrap()
    }

    #[tokio::test]
    async fn batch_with_failed_precondition_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let mut b = Batch::new();
        b.put(Tree::Sites, "a", "1");
        s.commit(&b).await.unwrap();

        let mut b = Batch::new();
        b.put(Tree::Users, "x", "y");
        b.expect(Tree::Sites, "a", None);
        assert!(matches!(
            s.commit(&b).await,
            Err(StorageError::Conflict { .. })
        ));
        assert_eq!(s.get(Tree::Users, b"x").unwrap(), None);

        let mut b = Batch::new();
        b.put(Tree::Users, "x", "y");
        b.expect(Tree::Sites, "a", Some(b"1".to_vec()));
        s.commit(&b).await.unwrap();
        assert_eq!(s.get(Tree::Users, b"x").unwrap(), Some(b"y".to_vec()));
    }

    #[test]
    fn scan_resumes_after_key_and_stays_in_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let mut b = Batch::new();
        for k in ["aa", "ab", "ac", "b"] {
            b.put(Tree::Sites, k, "");
        }
        s.apply(&b).unwrap();
        let keys = |v: Vec<(Vec<u8>, Vec<u8>)>| {
            v.into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(s.scan(Tree::Sites, b"a", None, 2).unwrap()),
            ["aa", "ab"]
        );
        assert_eq!(
            keys(s.scan(Tree::Sites, b"a", Some(b"ab"), 10).unwrap()),
            ["ac"]
        );
    }

    /// What a crash leaves: the log written, the backend never flushed. Simulated by keeping
    /// the log and replaying it into an empty backend.
    #[tokio::test]
    async fn a_durable_write_is_recovered_from_the_log_alone() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path());
            let mut b = Batch::new();
            b.put(Tree::Sites, "a", "1");
            s.commit(&b).await.unwrap();
            let mut b = Batch::new();
            b.put(Tree::Sites, "a", "2");
            b.put(Tree::Sites, "b", "x");
            s.commit(&b).await.unwrap();
            let mut b = Batch::new();
            b.delete(Tree::Sites, "b");
            s.commit(&b).await.unwrap();
            // Copy the log before the handle's final checkpoint empties it.
            let copy = dir.path().join("wal-copy");
            std::fs::create_dir_all(&copy).unwrap();
            for n in wal::segments(&dir.path().join("wal")).unwrap() {
                std::fs::copy(
                    wal::segment_path(&dir.path().join("wal"), n),
                    wal::segment_path(&copy, n),
                )
                .unwrap();
            }
        }
        let fresh = tempfile::tempdir().unwrap();
        let backend: Arc<dyn Backend> =
            Arc::new(SledBackend::open(&fresh.path().join("db")).unwrap());
        let s = Storage::open(backend, &dir.path().join("wal-copy"), Arc::new(NoFirst)).unwrap();
        assert_eq!(s.get(Tree::Sites, b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(s.get(Tree::Sites, b"b").unwrap(), None);
    }

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let s = open(dir.path());
            (0..5).map(|_| s.next_id().unwrap()).collect::<Vec<_>>()
        };
        let s = open(dir.path());
        let next = s.next_id().unwrap();
        assert!(next > *first.iter().max().unwrap());
    }
}
