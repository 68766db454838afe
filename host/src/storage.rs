//! Storage: the narrow interface every domain module writes through, and its sled backend.
//!
//! The interface is deliberately small — named trees of ordered byte keys, point reads, ordered
//! prefix scans with a resume key, and one atomic [`Batch`] of puts, deletes and
//! compare-and-swap preconditions — so that a PostgreSQL backend (one table keyed by
//! `(tree, key)`) can implement [`Backend`] without the domain modules changing.
//!
//! Durability is owned here too. A write is applied atomically in memory by the backend and is
//! *acknowledged* only after [`Storage::durable`] returns, which waits for a group commit: one
//! flusher thread fsyncs the audit log and then the database for every write that arrived
//! before it started, so many concurrent writers share one fsync (as databases do).

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use tokio::sync::watch;

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
    /// Index of the patients' linked user accounts etc. is not needed yet; users:
    Users,
    /// sha256(session token) → session.
    Sessions,
    Sites,
    /// Index of the audit log file: by patient, by actor, by sequence.
    AuditIndex,
}

impl Tree {
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

/// What a storage engine must provide. Everything is synchronous and fast (memory-speed);
/// durability is requested separately through [`Backend::flush`].
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
    /// Make everything applied so far durable.
    fn flush(&self) -> StorageResult<()>;
    /// A fresh, monotonically increasing number (gaps allowed after a crash).
    fn next_id(&self) -> StorageResult<u64>;
    fn len(&self, tree: Tree) -> usize;
}

/// The sled backend: one database in the data directory, one sled tree per [`Tree`].
pub struct SledBackend {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

impl SledBackend {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let db = sled::Config::new()
            .path(path)
            // Durability is ours: the group-commit flusher calls flush. sled's own periodic
            // flush would only add fsyncs.
            .flush_every_ms(None)
            .cache_capacity(256 * 1024 * 1024)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("could not acquire lock") =>
                {
                    StorageError::Io(format!(
                        "the database at {} is in use by another osler process; stop it first \
                         (or use the HTTP API of the running server)",
                        path.display()
                    ))
                }
                other => StorageError::Io(format!("cannot open {}: {other}", path.display())),
            })?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?;
        Ok(Self { db, trees })
    }

    fn tree(&self, t: Tree) -> &sled::Tree {
        &self.trees[t.index()]
    }
}

fn io(e: impl std::fmt::Display) -> StorageError {
    StorageError::Io(e.to_string())
}

impl Backend for SledBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.tree(tree).get(key).map_err(io)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let t = self.tree(tree);
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match after {
            Some(after) if after >= prefix => {
                use std::ops::Bound;
                Box::new(t.range::<&[u8], _>((Bound::Excluded(after), Bound::Unbounded)))
            }
            _ => Box::new(t.scan_prefix(prefix)),
        };
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(io)?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn last(&self, tree: Tree, prefix: &[u8]) -> StorageResult<Option<(Vec<u8>, Vec<u8>)>> {
        let item = self.tree(tree).scan_prefix(prefix).next_back();
        match item {
            Some(r) => {
                let (k, v) = r.map_err(io)?;
                Ok(Some((k.to_vec(), v.to_vec())))
            }
            None => Ok(None),
        }
    }

    fn apply(&self, batch: &Batch) -> StorageResult<()> {
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        // Only the trees the batch touches take part in the transaction.
        let mut involved: Vec<Tree> = Vec::new();
        for op in &batch.ops {
            let t = match op {
                Op::Put(t, ..) | Op::Delete(t, ..) | Op::Expect(t, ..) => *t,
            };
            if !involved.contains(&t) {
                involved.push(t);
            }
        }
        if involved.is_empty() {
            return Ok(());
        }
        let trees: Vec<sled::Tree> = involved.iter().map(|t| self.tree(*t).clone()).collect();
        let pos = |t: Tree| involved.iter().position(|x| *x == t).expect("involved");
        let result = sled::Transactional::transaction(trees.as_slice(), |txs| {
            for op in &batch.ops {
                if let Op::Expect(t, k, want) = op {
                    let have = txs[pos(*t)].get(k)?;
                    if have.as_deref() != want.as_deref() {
                        return Err(ConflictableTransactionError::Abort((
                            t.name(),
                            String::from_utf8_lossy(k).into_owned(),
                        )));
                    }
                }
            }
            for op in &batch.ops {
                match op {
                    Op::Put(t, k, v) => {
                        txs[pos(*t)].insert(k.as_slice(), v.as_slice())?;
                    }
                    Op::Delete(t, k) => {
                        txs[pos(*t)].remove(k.as_slice())?;
                    }
                    Op::Expect(..) => {}
                }
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort((tree, key))) => Err(StorageError::Conflict { tree, key }),
            Err(TransactionError::Storage(e)) => Err(io(e)),
        }
    }

    fn flush(&self) -> StorageResult<()> {
        self.db.flush().map(|_| ()).map_err(io)
    }

    fn next_id(&self) -> StorageResult<u64> {
        self.db.generate_id().map_err(io)
    }

    fn len(&self, tree: Tree) -> usize {
        self.tree(tree).len()
    }
}

/// Something else that must reach the disk in the same group commit, before the database
/// (the audit log: an access is never durable without its audit entry).
pub trait SyncFirst: Send + Sync + 'static {
    fn sync(&self) -> std::io::Result<()>;
}

struct FlushState {
    /// Generation handed to the most recent writer.
    requested: u64,
    failed: Option<String>,
    /// Set when the last handle is dropped: flush once more and stop.
    stop: bool,
}

struct Flusher {
    state: Mutex<FlushState>,
    wake: Condvar,
    done: watch::Sender<Result<u64, String>>,
}

/// Stops the flusher thread (after a last flush) when the last storage handle goes, so the
/// database is closed and can be opened again by this process.
struct FlusherGuard {
    flusher: Arc<Flusher>,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Drop for FlusherGuard {
    fn drop(&mut self) {
        self.flusher.state.lock().expect("flusher lock").stop = true;
        self.flusher.wake.notify_one();
        if let Some(t) = self.thread.lock().expect("flusher lock").take() {
            let _ = t.join();
        }
    }
}

/// The storage handle the rest of the host uses: a backend plus group-commit durability.
#[derive(Clone)]
pub struct Storage {
    backend: Arc<dyn Backend>,
    first: Arc<dyn SyncFirst>,
    flusher: Arc<Flusher>,
    _guard: Arc<FlusherGuard>,
}

impl Storage {
    /// Open the sled database under `dir`. `first` is synced before the database at every
    /// group commit.
    pub fn open_sled(dir: &Path, first: Arc<dyn SyncFirst>) -> Result<Self, StorageError> {
        let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(dir)?);
        Ok(Self::with_backend(backend, first))
    }

    pub fn with_backend(backend: Arc<dyn Backend>, first: Arc<dyn SyncFirst>) -> Self {
        let (done, _) = watch::channel(Ok(0));
        let flusher = Arc::new(Flusher {
            state: Mutex::new(FlushState {
                requested: 0,
                failed: None,
                stop: false,
            }),
            wake: Condvar::new(),
            done,
        });
        let f = flusher.clone();
        let (b, s) = (backend.clone(), first.clone());
        let thread = thread::Builder::new()
            .name("osler-group-commit".into())
            .spawn(move || flush_loop(f, b, s))
            .expect("spawn flusher");
        let guard = Arc::new(FlusherGuard {
            flusher: flusher.clone(),
            thread: Mutex::new(Some(thread)),
        });
        Self {
            backend,
            first,
            flusher,
            _guard: guard,
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    pub fn get(&self, tree: Tree, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.backend.get(tree, key)
    }

    pub fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> StorageResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.backend.scan(tree, prefix, after, limit)
    }

    /// Apply a batch atomically. Not yet durable: call [`Storage::durable`] before
    /// acknowledging it.
    pub fn apply(&self, batch: &Batch) -> StorageResult<()> {
        self.backend.apply(batch)
    }

    /// Apply a batch and wait until it is on disk.
    pub async fn commit(&self, batch: &Batch) -> StorageResult<()> {
        self.apply(batch)?;
        self.durable().await
    }

    /// Wait until everything applied before this call (database writes and audit entries)
    /// is durable. Concurrent callers share one fsync.
    pub async fn durable(&self) -> StorageResult<()> {
        let generation = {
            let mut st = self.flusher.state.lock().expect("flusher lock");
            if let Some(e) = &st.failed {
                return Err(StorageError::Io(e.clone()));
            }
            st.requested += 1;
            st.requested
        };
        self.flusher.wake.notify_one();
        let mut rx = self.flusher.done.subscribe();
        let seen = rx
            .wait_for(|r| match r {
                Ok(g) => *g >= generation,
                Err(_) => true,
            })
            .await
            .map_err(|_| StorageError::Io("storage flusher stopped".into()))?;
        match &*seen {
            Ok(_) => Ok(()),
            Err(e) => Err(StorageError::Io(e.clone())),
        }
    }

    /// Blocking variant for the command line (no async runtime, one writer).
    pub fn durable_blocking(&self) -> StorageResult<()> {
        self.first
            .sync()
            .map_err(|e| StorageError::Io(format!("audit log fsync failed: {e}")))?;
        self.backend.flush()
    }
}

fn flush_loop(f: Arc<Flusher>, backend: Arc<dyn Backend>, first: Arc<dyn SyncFirst>) {
    let mut flushed = 0u64;
    loop {
        let (target, stop) = {
            let mut st = f.state.lock().expect("flusher lock");
            while st.requested == flushed && !st.stop {
                st = f.wake.wait(st).expect("flusher lock");
            }
            (st.requested, st.stop)
        };
        let result = first
            .sync()
            .map_err(|e| format!("audit log fsync failed: {e}"))
            .and_then(|_| backend.flush().map_err(|e| e.to_string()));
        match result {
            Ok(()) => {
                flushed = target;
                let _ = f.done.send_replace(Ok(target));
                if stop {
                    return;
                }
            }
            Err(e) => {
                // A failed fsync leaves the on-disk state unknown: refuse all further writes
                // rather than acknowledge something that may not be durable.
                tracing::error!(error = %e, "durable write failed; refusing further writes");
                f.state.lock().expect("flusher lock").failed = Some(e.clone());
                let _ = f.done.send_replace(Err(e));
                return;
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

    #[tokio::test]
    async fn batch_with_failed_precondition_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open_sled(dir.path(), Arc::new(NoFirst)).unwrap();
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
        let s = Storage::open_sled(dir.path(), Arc::new(NoFirst)).unwrap();
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
}
