//! Storage: the narrow interface every domain module writes through, its backends (fjall for
//! new data directories, sled for those created before it; see [`Engine`]), and durability.
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
//!   commit: one thread writes and `fdatasync`s the log records of every write that arrived
//!   before it started, so concurrent writers share one fsync;
//! - a checkpoint thread periodically starts a new log segment, flushes and fsyncs the backend,
//!   and deletes the segments the backend now holds; at start-up the remaining segments are
//!   applied again (see [`wal`] for why that is safe).
//!
//! A [`Journal`] (the audit trail) keeps its own file, but each of its entries travels in the
//! log record of the change it describes ([`Storage::apply_with`]): an entry and its change
//! become durable together, in one record, or not at all. The journal writes an entry to its
//! file only once that record is durable ([`Journal::durable`], from the group commit), so its
//! file never holds an entry whose change a crash could still undo. After a crash the journal
//! gets back any entries its file lost; the journal's file is fsynced at checkpoints, after
//! which it may anchor its head ([`Journal::checkpointed`]).

mod fjall_backend;
pub mod migrate;
mod sled_backend;
pub mod wal;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use tokio::sync::watch;

pub use fjall_backend::FjallBackend;
pub use sled_backend::SledBackend;

/// The embedded engine that holds a data directory's database. A new directory gets the
/// configured one (`[storage] engine`, fjall unless set); an existing directory keeps the one
/// it was created with, whatever the configuration says (the log and the audit trail are
/// engine-neutral, the database files are not).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// [`FjallBackend`], in `store/`.
    #[default]
    Fjall,
    /// [`SledBackend`], in `db/`.
    Sled,
}

impl Engine {
    /// The database's directory inside a data directory.
    pub fn dir(self, data_dir: &Path) -> PathBuf {
        data_dir.join(match self {
            Engine::Fjall => "store",
            Engine::Sled => "db",
        })
    }

    /// The engine of the database already in `data_dir`, if there is one. Refuses a
    /// directory in the middle of a move to another engine ([`migrate`]), and one that holds
    /// both engines' databases (which one is the clinic's is for a person to say).
    pub fn existing(data_dir: &Path) -> StorageResult<Option<Engine>> {
        migrate::check_not_switching(data_dir)?;
        let found: Vec<Engine> = Engine::ALL
            .into_iter()
            .filter(|e| e.dir(data_dir).exists())
            .collect();
        match found[..] {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(StorageError::Io(format!(
                "{} holds both a fjall database (store/) and a sled one (db/); move the one \
                 that is not the clinic's out of the data directory",
                data_dir.display()
            ))),
        }
    }

    /// Every engine, the default first.
    pub const ALL: [Engine; 2] = [Engine::Fjall, Engine::Sled];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Fjall => "fjall",
            Engine::Sled => "sled",
        }
    }

    /// The engine called `name` (as [`Engine::name`] writes it).
    pub fn named(name: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The engine that is not this one.
    pub fn other(self) -> Engine {
        match self {
            Engine::Fjall => Engine::Sled,
            Engine::Sled => Engine::Fjall,
        }
    }

    /// Open (or create) this engine's database at `path`, taking the engine's lock on it: a
    /// second process fails here, before it has read or changed anything.
    pub fn open_at(self, path: &Path, memory: StorageMemory) -> StorageResult<Arc<dyn Backend>> {
        Ok(match self {
            Engine::Fjall => Arc::new(FjallBackend::open(path, memory)?),
            Engine::Sled => Arc::new(SledBackend::open(path, memory.cache_bytes)?),
        })
    }
}

/// The database of the data directory `dir` (see [`Engine`]: the one it has, else a new one of
/// `engine`), locked against other processes. Open it before anything else in the directory
/// (the audit trail's file, the write-ahead log), so that a command run beside a running
/// server stops here instead of touching files the server is writing.
pub fn open_database(
    dir: &Path,
    engine: Engine,
    memory: StorageMemory,
) -> StorageResult<Arc<dyn Backend>> {
    let engine = Engine::existing(dir)?.unwrap_or(engine);
    engine.open_at(&engine.dir(dir), memory)
}

/// What the database may hold in memory.
#[derive(Clone, Copy, Debug)]
pub struct StorageMemory {
    /// The engine's cache of disk pages or blocks, bytes.
    pub cache_bytes: u64,
    /// fjall: each written tree's in-memory table before it goes to disk, bytes (only the
    /// trees being written hold one of any size). fjall keeps the size a tree was created
    /// with.
    pub memtable_bytes: u64,
    /// fjall: the in-memory tables together, bytes: past it, the largest is written out.
    pub tables_bytes: u64,
}

impl Default for StorageMemory {
    fn default() -> Self {
        crate::memory::Budget::default().storage()
    }
}

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
    /// Plugin id → installed plugin (manifest, component hash, how it was installed).
    Plugins,
    /// Plugin id, 0, site id → enabled, grants and configuration at that site.
    PluginSites,
    /// Plugin id, 0, key → value: each plugin's private key-value storage.
    PluginKv,
    /// Plugin id, 0, pseudonym → patient id, for de-identified reads.
    Pseudonyms,
    /// Plugin id, 0, patient id, 0, key → value: what a plugin keeps about a patient.
    PatientData,
    /// Plugin id → its storage use (bytes and keys of `PluginKv` and `PatientData`).
    PluginUsage,
    /// Site, 0, interface → the plugin bound to provide it there.
    Bindings,
    /// Subscriber, 0, site, 0, topic, 0, sequence → an event waiting for delivery.
    EventQueue,
    /// The same key → an event whose delivery failed every attempt, for an administrator.
    EventParked,
    /// Research (sandbox) plugin id → its record: package, researchers, sites, budgets.
    ResearchPlugins,
    /// Run id (time-ordered) → the record of one research run.
    ResearchRuns,
    /// Patients' own access: `a` + sha256(activation code) → activation; `u` + user name →
    /// its current activation key; `s` + sha256(share token) → share; `p` + patient id, 0,
    /// share id → the share's key; `c` + patient id → who made the record's latest change.
    Portal,
}

impl Tree {
    /// Every tree. The position is the tree's code in the write-ahead log: append only.
    pub const ALL: [Tree; 21] = [
        Tree::Meta,
        Tree::Patients,
        Tree::PatientNames,
        Tree::PatientBirthDates,
        Tree::PatientIdentifiers,
        Tree::Users,
        Tree::Sessions,
        Tree::Sites,
        Tree::AuditIndex,
        Tree::Plugins,
        Tree::PluginSites,
        Tree::PluginKv,
        Tree::Pseudonyms,
        Tree::PatientData,
        Tree::PluginUsage,
        Tree::Bindings,
        Tree::EventQueue,
        Tree::EventParked,
        Tree::ResearchPlugins,
        Tree::ResearchRuns,
        Tree::Portal,
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
            Tree::Plugins => "plugins",
            Tree::PluginSites => "plugins.sites",
            Tree::PluginKv => "plugins.kv",
            Tree::Pseudonyms => "plugins.pseudonyms",
            Tree::PatientData => "plugins.patient-data",
            Tree::PluginUsage => "plugins.usage",
            Tree::Bindings => "plugins.bindings",
            Tree::EventQueue => "plugins.events",
            Tree::EventParked => "plugins.events-parked",
            Tree::ResearchPlugins => "research.plugins",
            Tree::ResearchRuns => "research.runs",
            Tree::Portal => "portal",
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

/// Key-value rows in key order, as a scan returns them.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// A page of [`Backend::scan_bytes`] from an engine's ordered entries (which start at the
/// prefix, or just after the resume key): up to the first key outside `prefix`, `limit`
/// entries or `max_bytes` (at least one entry), and whether more follow. Keys and values are
/// copied only here.
pub(crate) fn page<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    entries: impl Iterator<Item = StorageResult<(K, V)>>,
    prefix: &[u8],
    limit: usize,
    max_bytes: usize,
) -> StorageResult<(Rows, bool)> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for item in entries {
        let (k, v) = item?;
        let (k, v) = (k.as_ref(), v.as_ref());
        if !k.starts_with(prefix) {
            break;
        }
        bytes = bytes.saturating_add(k.len() + v.len());
        if out.len() >= limit || (bytes > max_bytes && !out.is_empty()) {
            return Ok((out, true));
        }
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok((out, false))
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
    ) -> StorageResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.scan_bytes(tree, prefix, after, limit, usize::MAX)
            .map(|(rows, _)| rows)
    }
    /// [`Backend::scan`] that also stops before the keys and values it returns would pass
    /// `max_bytes` (it returns at least one entry when there is one), so that a page of large
    /// values never materialises more than that. The flag says whether more entries follow.
    fn scan_bytes(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        max_bytes: usize,
    ) -> StorageResult<(Rows, bool)>;
    /// The entry with the greatest key starting with `prefix`.
    fn last(&self, tree: Tree, prefix: &[u8]) -> StorageResult<Option<(Vec<u8>, Vec<u8>)>>;
    /// Apply a batch's puts and deletes in order. [`Storage`] calls it under its write lock,
    /// after checking the batch's preconditions and logging it; the log, not the backend,
    /// makes the batch atomic across a crash.
    fn apply(&self, batch: &Batch) -> StorageResult<()>;
    /// Make everything applied so far durable in the engine's files.
    fn flush(&self) -> StorageResult<()>;
    /// Fill `tree`, which is empty and written by nothing else meanwhile, from pages of entries
    /// in ascending key order (`next` gives `None` after the last page): a database filled
    /// whole by `osler storage migrate`. Durable when it returns only after [`Backend::flush`].
    /// By default one write batch per page; an engine may write its files directly.
    fn load(
        &self,
        tree: Tree,
        next: &mut dyn FnMut() -> StorageResult<Option<Rows>>,
    ) -> StorageResult<()> {
        while let Some(rows) = next()? {
            let mut batch = Batch::new();
            for (k, v) in rows {
                batch.put(tree, k, v);
            }
            self.apply(&batch)?;
        }
        Ok(())
    }
    fn len(&self, tree: Tree) -> usize;
    /// What the engine holds in memory now, when it can say: for the memory budget's warning.
    fn memory(&self) -> Option<EngineMemory> {
        None
    }
}

/// Memory an engine holds, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EngineMemory {
    /// Written data not yet in the engine's files: in-memory tables, active and sealed.
    pub tables: u64,
    /// The block cache's contents.
    pub cache: u64,
}

/// A journal kept beside the database whose entries travel in the write-ahead log records of
/// the changes they describe (the audit trail).
pub trait Journal: Send + Sync + 'static {
    /// Make the journal's file durable (at checkpoints, before log segments are deleted).
    fn sync(&self) -> std::io::Result<()>;
    /// After a crash: the entries of the replayed log records, oldest first. Append those the
    /// journal's file lacks.
    fn restore(&self, entries: &[Vec<u8>]) -> Result<(), String>;
    /// The entries of log records that have just become durable, in log order: append them to
    /// the journal's file. Called by one thread at a time, in order.
    fn durable(&self, entries: &[Vec<u8>]) -> std::io::Result<()>;
    /// A checkpoint made the database durable and trimmed the log (`closing`: the last one
    /// before this process lets go of the data directory).
    fn checkpointed(&self, closing: bool);
}

/// How often the backend is checkpointed (and the write-ahead log trimmed).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
/// A log segment this large triggers a checkpoint before the interval is up.
const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
/// Ids are reserved durably this many at a time.
const ID_BLOCK: u64 = 1000;
const ID_KEY: &[u8] = b"ids.reserved";
const STRIPES: usize = 256;

fn stripe_of(tree: Tree, key: &[u8]) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tree.code().hash(&mut h);
    key.hash(&mut h);
    (h.finish() % STRIPES as u64) as usize
}

struct LogState {
    /// Where a record is encoded before it is written.
    buf: Vec<u8>,
    /// The journal entries of the records written to the segment and not yet synced, in
    /// order, for the journal's own file.
    entries: Vec<Vec<u8>>,
    /// The current segment: each record is written to it (not synced) as it is logged, before
    /// the backend gets the batch.
    file: Arc<File>,
    number: u64,
    /// Where the next record goes in the segment's file.
    offset: u64,
    /// The bytes of records logged in the segment.
    bytes: u64,
}

struct FlushState {
    /// Generation handed to the most recent writer.
    requested: u64,
    /// The highest generation made durable.
    flushed: u64,
    failed: Option<String>,
    stop: bool,
}

struct Ids {
    next: u64,
    reserved: u64,
}

struct Inner {
    backend: Arc<dyn Backend>,
    journal: Arc<dyn Journal>,
    wal_dir: PathBuf,
    /// Held while checking a batch's preconditions and appending its record.
    log: Mutex<LogState>,
    /// Key stripes, held from a batch's precondition check until it is applied.
    stripes: Vec<Mutex<()>>,
    /// Read-held by a batch from its logging to its applying; a checkpoint write-holds it to
    /// wait until everything logged in the old segment has been applied.
    gate: std::sync::RwLock<()>,
    /// Held while syncing the current segment or switching segments: one at a time, so the
    /// journal gets its entries in order.
    syncing: Mutex<()>,
    flush: Mutex<FlushState>,
    /// Wakes the group-commit thread.
    wake: Condvar,
    /// Wakes the checkpoint thread when storage closes.
    closing: Condvar,
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
        self.inner.closing.notify_all();
        for t in self.threads.lock().expect("threads").drain(..) {
            let _ = t.join();
        }
        match self.inner.checkpoint() {
            Ok(()) => self.inner.journal.checkpointed(true),
            Err(e) => tracing::warn!(
                error = %e,
                "final checkpoint failed; the log will be replayed at start-up"
            ),
        }
    }
}

/// The storage handle the rest of the host uses.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
    _guard: Arc<Guard>,
}

/// A [`Storage`] that is not kept open by this handle ([`Storage::downgrade`]).
#[derive(Clone)]
pub struct WeakStorage {
    inner: std::sync::Weak<Inner>,
    guard: std::sync::Weak<Guard>,
}

impl WeakStorage {
    /// The storage, if it is still open.
    pub fn upgrade(&self) -> Option<Storage> {
        Some(Storage {
            _guard: self.guard.upgrade()?,
            inner: self.inner.upgrade()?,
        })
    }

    /// What the engine holds in memory, while the storage is open. Unlike [`Self::upgrade`]
    /// this never holds the handle whose release runs the closing checkpoint, so a caller on
    /// another thread (the memory trimmer) cannot move that checkpoint onto itself.
    pub fn engine_memory(&self) -> Option<EngineMemory> {
        if self.guard.strong_count() == 0 {
            return None;
        }
        self.inner.upgrade()?.backend.memory()
    }
}

impl Storage {
    /// Open the database in the data directory `dir` (see [`Engine`]: the one it has, else a
    /// new one of `engine`) with its write-ahead log in `dir/wal`, replaying the log into it
    /// and giving `journal` back the entries it lacks.
    pub fn open_dir(
        dir: &Path,
        engine: Engine,
        journal: Arc<dyn Journal>,
        memory: StorageMemory,
    ) -> Result<Self, StorageError> {
        Self::open(
            open_database(dir, engine, memory)?,
            &dir.join("wal"),
            journal,
        )
    }

    /// Open over any backend, replaying the write-ahead log in `wal_dir` into it.
    pub fn open(
        backend: Arc<dyn Backend>,
        wal_dir: &Path,
        journal: Arc<dyn Journal>,
    ) -> Result<Self, StorageError> {
        std::fs::create_dir_all(wal_dir).map_err(io)?;
        let segs = wal::segments(wal_dir).map_err(io)?;
        if segs.is_empty() {
            wal::discard_spare(wal_dir).map_err(io)?;
        }
        let replay = wal::read_all(wal_dir, &segs).map_err(StorageError::Io)?;
        if !replay.is_empty() {
            tracing::info!(records = replay.len(), "replaying the write-ahead log");
            let mut entries = Vec::new();
            for r in replay {
                backend.apply(&r.batch)?;
                entries.extend(r.journal);
            }
            journal.restore(&entries).map_err(StorageError::Io)?;
        }
        if !segs.is_empty() {
            journal.sync().map_err(io)?;
            backend.flush()?;
            for n in &segs {
                wal::retire(wal_dir, *n).map_err(io)?;
            }
        }
        let number = segs.last().map_or(1, |n| n + 1);
        let file = wal::prepare_spare(wal_dir, number, 0).map_err(io)?;
        wal::install_spare(wal_dir, number).map_err(io)?;
        let reserved = match backend.get(Tree::Meta, ID_KEY)? {
            Some(v) => u64::from_be_bytes(v.as_slice().try_into().unwrap_or([0; 8])),
            None => 0,
        };
        let (done, _) = watch::channel(Ok(0));
        let inner = Arc::new(Inner {
            backend,
            journal,
            wal_dir: wal_dir.to_path_buf(),
            log: Mutex::new(LogState {
                buf: Vec::new(),
                entries: Vec::new(),
                file: Arc::new(file),
                number,
                offset: wal::HEADER,
                bytes: 0,
            }),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            gate: std::sync::RwLock::new(()),
            syncing: Mutex::new(()),
            flush: Mutex::new(FlushState {
                requested: 0,
                flushed: 0,
                failed: None,
                stop: false,
            }),
            wake: Condvar::new(),
            closing: Condvar::new(),
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

    /// A handle that does not keep storage open (for background work that must not delay
    /// its closing).
    pub fn downgrade(&self) -> WeakStorage {
        WeakStorage {
            inner: Arc::downgrade(&self.inner),
            guard: Arc::downgrade(&self._guard),
        }
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

    /// [`Storage::scan`] bounded by bytes as well as entries; see [`Backend::scan_bytes`].
    pub fn scan_bytes(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        max_bytes: usize,
    ) -> StorageResult<(Rows, bool)> {
        self.inner
            .backend
            .scan_bytes(tree, prefix, after, limit, max_bytes)
    }

    /// Apply a batch atomically. Not yet durable: call [`Storage::durable`] before
    /// acknowledging it.
    pub fn apply(&self, batch: &Batch) -> StorageResult<()> {
        self.apply_with(batch, |_| Ok(None))
    }

    /// Apply a batch atomically together with a journal entry. `before` runs under the write
    /// lock once the batch's preconditions are known to hold: it writes the journal entry to
    /// the journal's file, may add operations to the batch (the entry's index, whose keys must
    /// be unique to the entry), and returns the entry, which is logged in the same record as
    /// the batch. If a precondition fails, `before` does not run and nothing is written.
    pub fn apply_with(
        &self,
        batch: &Batch,
        before: impl FnOnce(&mut Batch) -> StorageResult<Option<Vec<u8>>>,
    ) -> StorageResult<()> {
        let inner = &self.inner;
        // Every key this batch reads or writes is locked (stripes, in order) until the batch
        // is applied: two batches on one key are logged and applied in the same order, and a
        // precondition reads a value no one else is changing. Batches on different keys log
        // under one short lock and apply to the backend in parallel.
        let mut stripes: Vec<usize> = batch
            .ops
            .iter()
            .map(|op| match op {
                Op::Put(t, k, _) | Op::Delete(t, k) | Op::Expect(t, k, _) => stripe_of(*t, k),
            })
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let _held: Vec<_> = stripes
            .iter()
            .map(|i| inner.stripes[*i].lock().expect("stripe lock"))
            .collect();
        // A checkpoint waits for batches between logging and applying.
        let _gate = inner.gate.read().expect("gate lock");
        let mut extra = Batch::new();
        {
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
            let entry = before(&mut extra)?;
            // Logged (as one record) and written to the segment before it is applied: the
            // backend never holds a change the log lacks. An engine may write what it holds to
            // its own files at any moment (fjall's journal when its buffer fills, a memtable
            // flushed to a table), so the record must be in the log's file, in the operating
            // system's hands, first: a killed process then leaves both or neither.
            let log = &mut *log;
            log.buf.clear();
            wal::encode(&[batch, &extra], entry.as_deref(), log.number, &mut log.buf);
            if let Err(e) = log.file.write_all_at(&log.buf, log.offset) {
                // The segment may now end in a torn record: take no more writes.
                let msg = format!("write-ahead log write failed ({e}); restart osler");
                tracing::error!(error = %e, "write-ahead log write failed; refusing further writes");
                inner.flush.lock().expect("flush lock").failed = Some(msg.clone());
                return Err(StorageError::Io(msg));
            }
            log.offset += log.buf.len() as u64;
            log.bytes += log.buf.len() as u64;
            if log.buf.capacity() > 1 << 20 {
                log.buf = Vec::new();
            }
            if let Some(e) = entry {
                log.entries.push(e);
            }
        }
        if let Err(e) = inner
            .backend
            .apply(batch)
            .and_then(|()| inner.backend.apply(&extra))
        {
            // The backend may now hold part of the batch. Stop taking writes; at the next
            // start the logged batch is applied again, whole.
            let msg = format!("the database failed mid-write ({e}); restart osler");
            tracing::error!(error = %e, "backend write failed; refusing further writes");
            inner.flush.lock().expect("flush lock").failed = Some(msg.clone());
            return Err(StorageError::Io(msg));
        }
        Ok(())
    }

    /// Apply a batch and wait until it is on disk.
    pub async fn commit(&self, batch: &Batch) -> StorageResult<()> {
        self.apply(batch)?;
        self.durable().await
    }

    /// Wait until everything applied before this call (with its journal entries) is durable.
    /// Concurrent callers share one fsync.
    pub async fn durable(&self) -> StorageResult<()> {
        let generation = self.next_generation()?;
        self.sync_or_wait(generation).await
    }

    /// Ask for everything applied before this call to be made durable, without waiting: the
    /// group-commit thread syncs it while the caller goes on. The ticket to pass to
    /// [`Storage::wait_durable`] before anything that depends on it leaves the process.
    pub fn request_durable(&self) -> StorageResult<u64> {
        let generation = self.next_generation()?;
        self.inner.wake.notify_one();
        Ok(generation)
    }

    /// Wait until the sync of [`Storage::request_durable`]'s `ticket` (or a later one) is on
    /// disk: at once when it already is; when the group-commit thread has not started it yet,
    /// this task makes it, as [`Storage::durable`] does.
    pub async fn wait_durable(&self, ticket: u64) -> StorageResult<()> {
        if self.inner.durable_at(ticket)? {
            return Ok(());
        }
        self.sync_or_wait(ticket).await
    }

    /// A new generation: everything applied so far is in it.
    fn next_generation(&self) -> StorageResult<u64> {
        let mut st = self.inner.flush.lock().expect("flush lock");
        if let Some(e) = &st.failed {
            return Err(StorageError::Io(e.clone()));
        }
        st.requested += 1;
        Ok(st.requested)
    }

    /// Returns once `generation` is durable.
    async fn sync_or_wait(&self, generation: u64) -> StorageResult<()> {
        let inner = &self.inner;
        // No sync under way: this task syncs the log itself, on its worker thread (the runtime
        // hands the worker's other tasks to another thread meanwhile). A lone writer saves the
        // two thread hand-offs of asking the group-commit thread and being woken by it;
        // writers that arrive meanwhile still share the next fsync.
        if tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
            && let Ok(one) = inner.syncing.try_lock()
        {
            // A sync that finished just before needs no other.
            if inner.durable_at(generation)? {
                return Ok(());
            }
            // Every writer up to `target` logged its records before asking: this sync
            // covers them.
            let target = inner.flush.lock().expect("flush lock").requested;
            let synced = tokio::task::block_in_place(|| inner.sync_locked());
            drop(one);
            return match synced {
                Ok(()) => {
                    inner.flushed(target);
                    Ok(())
                }
                Err(e) => {
                    inner.failed(&e);
                    Err(StorageError::Io(e))
                }
            };
        }
        inner.wake.notify_one();
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
    /// One group commit: every pending log record, one write and one fdatasync.
    /// fdatasync the current segment (every record logged so far is written to it), then hand
    /// the journal the entries of those records, now durable.
    fn sync(&self) -> Result<(), String> {
        let _one = self.syncing.lock().expect("syncing lock");
        self.sync_locked()
    }

    /// [`Inner::sync`], `syncing` held by the caller.
    fn sync_locked(&self) -> Result<(), String> {
        let (file, entries) = {
            let mut log = self.log.lock().expect("log lock");
            (log.file.clone(), std::mem::take(&mut log.entries))
        };
        file.sync_data()
            .map_err(|e| format!("write-ahead log sync failed: {e}"))?;
        self.journal_durable(&entries)
    }

    /// Whether `generation` is durable already; the failure that makes it never so.
    fn durable_at(&self, generation: u64) -> StorageResult<bool> {
        let st = self.flush.lock().expect("flush lock");
        match &st.failed {
            Some(e) => Err(StorageError::Io(e.clone())),
            None => Ok(st.flushed >= generation),
        }
    }

    /// Generation `target` is durable: wake those waiting for it.
    fn flushed(&self, target: u64) {
        let mut st = self.flush.lock().expect("flush lock");
        if target > st.flushed {
            st.flushed = target;
            let _ = self.done.send_replace(Ok(target));
        }
    }

    /// A failed fsync leaves the on-disk state unknown: refuse all further writes rather than
    /// acknowledge something that may not be durable.
    fn failed(&self, e: &str) {
        tracing::error!(error = %e, "durable write failed; refusing further writes");
        self.flush.lock().expect("flush lock").failed = Some(e.to_string());
        let _ = self.done.send_replace(Err(e.to_string()));
    }

    fn journal_durable(&self, entries: &[Vec<u8>]) -> Result<(), String> {
        if !entries.is_empty() {
            self.journal
                .durable(entries)
                .map_err(|e| format!("journal write failed: {e}"))?;
        }
        Ok(())
    }

    fn segment_bytes(&self) -> u64 {
        self.log.lock().expect("log lock").bytes
    }

    /// Start a new segment (the old one closed and synced), make the backend durable, and
    /// retire the segments it now holds.
    fn checkpoint(&self) -> Result<(), String> {
        let (next, reached) = {
            let log = self.log.lock().expect("log lock");
            if log.bytes == 0 {
                return Ok(());
            }
            (log.number + 1, log.offset)
        };
        // The next segment is made ready before any lock is taken (zero-filling a new one
        // takes a while), as large as this one grew. Only this thread changes segments.
        let spare = wal::prepare_spare(&self.wal_dir, next, reached)
            .map_err(|e| format!("cannot make the next write-ahead log segment ready: {e}"))?;
        let old = {
            let _one = self.syncing.lock().expect("syncing lock");
            let (old, entries) = {
                // Writers wait for this switch, every few seconds: records must not go on
                // landing in a segment after it has been synced for the last time.
                let mut log = self.log.lock().expect("log lock");
                let closed = wal::close_segment(&log.file, log.number, log.offset)
                    .and_then(|()| wal::install_spare(&self.wal_dir, next));
                if let Err(e) = closed {
                    // The old segment may now be closed on disk: writing on in it could lose
                    // acknowledged records at replay, and its sync state is unknown.
                    let msg = format!("write-ahead log segment switch failed ({e}); restart osler");
                    drop(log);
                    self.failed(&msg);
                    return Err(msg);
                }
                let old = log.number;
                log.file = Arc::new(spare);
                log.number = next;
                log.offset = wal::HEADER;
                log.bytes = 0;
                (old, std::mem::take(&mut log.entries))
            };
            self.journal_durable(&entries)?;
            old
        };
        // Batches logged in the old segment may still be applying: wait for them.
        drop(self.gate.write().expect("gate lock"));
        // Everything logged in segments up to `old` was applied (and its journal entries
        // written) before these syncs began.
        self.journal
            .sync()
            .map_err(|e| format!("journal fsync failed: {e}"))?;
        self.backend.flush().map_err(|e| e.to_string())?;
        for n in wal::segments(&self.wal_dir).map_err(|e| e.to_string())? {
            if n <= old {
                wal::retire(&self.wal_dir, n).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

fn group_commit_loop(inner: Arc<Inner>) {
    loop {
        let (target, stop) = {
            let mut st = inner.flush.lock().expect("flush lock");
            while st.requested == st.flushed && !st.stop {
                st = inner.wake.wait(st).expect("flush lock");
            }
            (st.requested, st.stop)
        };
        match inner.sync() {
            Ok(()) => {
                inner.flushed(target);
                if stop {
                    return;
                }
            }
            Err(e) => {
                inner.failed(&e);
                return;
            }
        }
    }
}

fn checkpoint_loop(inner: Arc<Inner>) {
    let mut last = std::time::Instant::now();
    loop {
        {
            let st = inner.flush.lock().expect("flush lock");
            let (st, _) = inner
                .closing
                .wait_timeout(st, Duration::from_millis(200))
                .expect("flush lock");
            if st.stop || st.failed.is_some() {
                return;
            }
        }
        if last.elapsed() >= CHECKPOINT_EVERY || inner.segment_bytes() >= CHECKPOINT_BYTES {
            last = std::time::Instant::now();
            match inner.checkpoint() {
                Ok(()) => inner.journal.checkpointed(false),
                Err(e) => tracing::error!(error = %e, "checkpoint failed; will retry"),
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

    pub(crate) struct NoJournal;
    impl Journal for NoJournal {
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn restore(&self, _: &[Vec<u8>]) -> Result<(), String> {
            Ok(())
        }
        fn durable(&self, _: &[Vec<u8>]) -> std::io::Result<()> {
            Ok(())
        }
        fn checkpointed(&self, _: bool) {}
    }

    fn open(dir: &Path, engine: Engine) -> Storage {
        Storage::open_dir(dir, engine, Arc::new(NoJournal), StorageMemory::default()).unwrap()
    }

    /// The entries handed to the journal as durable.
    #[derive(Default)]
    struct Recording(Mutex<Vec<Vec<u8>>>);
    impl Journal for Recording {
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn restore(&self, _: &[Vec<u8>]) -> Result<(), String> {
            Ok(())
        }
        fn durable(&self, entries: &[Vec<u8>]) -> std::io::Result<()> {
            self.0.lock().unwrap().extend_from_slice(entries);
            Ok(())
        }
        fn checkpointed(&self, _: bool) {}
    }

    /// What a plugin does when it calls another: it asks for its audit entries to be synced
    /// and goes on; the group-commit thread makes them durable meanwhile, and waiting for the
    /// ticket returns once they are (at once if they already are).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sync_asked_for_is_made_while_the_caller_goes_on() {
        for engine in Engine::ALL {
            let dir = tempfile::tempdir().unwrap();
            let journal = Arc::new(Recording::default());
            let s = Storage::open_dir(
                dir.path(),
                engine,
                journal.clone(),
                StorageMemory::default(),
            )
            .unwrap();
            let mut b = Batch::new();
            b.put(Tree::Sites, "a", "1");
            s.apply_with(&b, |_| Ok(Some(b"entry 1".to_vec()))).unwrap();
            let ticket = s.request_durable().unwrap();
            // Not waited for: the group-commit thread syncs it on its own.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while journal.0.lock().unwrap().is_empty() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{engine:?}: never synced"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            s.wait_durable(ticket).await.unwrap();
            assert_eq!(*journal.0.lock().unwrap(), [b"entry 1".to_vec()]);
            // A later write asks again, and its ticket is not met by the first sync.
            s.apply_with(&b, |_| Ok(Some(b"entry 2".to_vec()))).unwrap();
            let second = s.request_durable().unwrap();
            assert!(second > ticket);
            s.wait_durable(second).await.unwrap();
            assert_eq!(journal.0.lock().unwrap().len(), 2, "{engine:?}");
        }
    }

    #[tokio::test]
    async fn batch_with_failed_precondition_writes_nothing() {
        for engine in Engine::ALL {
            batch_with_failed_precondition_writes_nothing_in(engine).await;
        }
    }

    async fn batch_with_failed_precondition_writes_nothing_in(engine: Engine) {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), engine);
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

    /// The memory budget's warning names what fjall holds: written data waiting in its
    /// in-memory tables counts until it is flushed to its files. sled cannot say.
    #[test]
    fn the_engine_reports_its_in_memory_tables() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path(), Engine::Fjall);
        let before = s.backend().memory().unwrap().tables;
        let mut b = Batch::new();
        for i in 0..1000u32 {
            b.put(Tree::Patients, i.to_be_bytes(), vec![7u8; 1000]);
        }
        s.apply(&b).unwrap();
        let after = s.backend().memory().unwrap().tables;
        assert!(after >= before + 1_000_000, "{before} -> {after}");
        // A weak handle reads it too, and stops at the storage's closing: it never keeps the
        // database open (the server's memory trimmer holds one for the process's life).
        let weak = s.downgrade();
        assert!(weak.engine_memory().is_some_and(|m| m.tables > 0));
        drop(s);
        assert_eq!(weak.engine_memory(), None);
        let again = open(dir.path(), Engine::Fjall);
        assert_eq!(
            again.get(Tree::Patients, &7u32.to_be_bytes()).unwrap(),
            Some(vec![7u8; 1000])
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(open(dir.path(), Engine::Sled).backend().memory(), None);
    }

    #[test]
    fn scan_resumes_after_key_and_stays_in_prefix() {
        for engine in Engine::ALL {
            let dir = tempfile::tempdir().unwrap();
            scan_resumes_after_key_and_stays_in_prefix_in(open(dir.path(), engine));
        }
    }

    fn scan_resumes_after_key_and_stays_in_prefix_in(s: Storage) {
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
        for engine in Engine::ALL {
            a_durable_write_is_recovered_from_the_log_alone_in(engine).await;
        }
    }

    async fn a_durable_write_is_recovered_from_the_log_alone_in(engine: Engine) {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path(), engine);
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
        let backend: Arc<dyn Backend> = match engine {
            Engine::Fjall => Arc::new(
                FjallBackend::open(
                    &fresh.path().join("store"),
                    StorageMemory {
                        cache_bytes: 1 << 20,
                        memtable_bytes: 1 << 20,
                        tables_bytes: 8 << 20,
                    },
                )
                .unwrap(),
            ),
            Engine::Sled => Arc::new(SledBackend::open(&fresh.path().join("db"), 1 << 20).unwrap()),
        };
        let s = Storage::open(backend, &dir.path().join("wal-copy"), Arc::new(NoJournal)).unwrap();
        assert_eq!(s.get(Tree::Sites, b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(s.get(Tree::Sites, b"b").unwrap(), None);
    }

    /// Checkpoints keep a retired segment as the next one's file: after two, the current
    /// segment is the first one's file, its old records still in it. A crash now must replay
    /// only what was logged since the last checkpoint.
    #[tokio::test]
    async fn a_reused_segment_file_replays_only_its_own_records() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        let s = open(dir.path(), Engine::Fjall);
        let put = |key: String, value: Vec<u8>| {
            let mut b = Batch::new();
            b.put(Tree::Sites, key, value);
            b
        };
        for i in 0..20 {
            s.commit(&put(format!("old{i}"), vec![b'x'; 500]))
                .await
                .unwrap();
        }
        s.inner.checkpoint().unwrap();
        assert!(
            wal_dir.join("spare").exists(),
            "the retired segment is kept"
        );
        s.commit(&put("between".into(), b"1".to_vec()))
            .await
            .unwrap();
        s.inner.checkpoint().unwrap();
        s.commit(&put("new".into(), b"2".to_vec())).await.unwrap();

        assert_eq!(wal::segments(&wal_dir).unwrap(), [3]);
        let file = std::fs::read(wal::segment_path(&wal_dir, 3)).unwrap();
        assert!(
            file.windows(4).any(|w| w == b"old5"),
            "segment 3 is segment 1's file, with its old records"
        );
        let records = wal::read_all(&wal_dir, &[3]).unwrap();
        assert_eq!(
            records.len(),
            1,
            "only the record logged since the checkpoint"
        );
        assert!(matches!(&records[0].batch.ops[..], [Op::Put(_, k, _)] if k == b"new"));
        drop(s);
        let s = open(dir.path(), Engine::Fjall);
        assert_eq!(s.get(Tree::Sites, b"new").unwrap(), Some(b"2".to_vec()));
        assert_eq!(s.get(Tree::Sites, b"old19").unwrap().unwrap().len(), 500);
    }

    #[test]
    fn ids_are_never_reused_across_restarts() {
        for engine in Engine::ALL {
            let dir = tempfile::tempdir().unwrap();
            let first = {
                let s = open(dir.path(), engine);
                (0..5).map(|_| s.next_id().unwrap()).collect::<Vec<_>>()
            };
            let s = open(dir.path(), engine);
            let next = s.next_id().unwrap();
            assert!(next > *first.iter().max().unwrap());
        }
    }

    /// A batch that writes a key twice leaves its last write (fjall gives a batch's entries
    /// one sequence number, so the backend keeps only the last), and a directory keeps the
    /// engine it was created with whatever the configuration says later.
    #[tokio::test]
    async fn the_last_write_of_a_key_in_a_batch_wins_and_a_directory_keeps_its_engine() {
        for engine in Engine::ALL {
            let dir = tempfile::tempdir().unwrap();
            {
                let s = open(dir.path(), engine);
                let mut b = Batch::new();
                b.put(Tree::Sites, "a", "1");
                b.delete(Tree::Sites, "a");
                b.put(Tree::Sites, "b", "1");
                b.put(Tree::Sites, "b", "2");
                s.commit(&b).await.unwrap();
                assert_eq!(s.get(Tree::Sites, b"a").unwrap(), None);
                assert_eq!(s.get(Tree::Sites, b"b").unwrap(), Some(b"2".to_vec()));
            }
            let other = engine.other();
            let s = open(dir.path(), other);
            assert_eq!(Engine::existing(dir.path()).unwrap(), Some(engine));
            assert!(!other.dir(dir.path()).exists());
            assert_eq!(s.get(Tree::Sites, b"b").unwrap(), Some(b"2".to_vec()));
        }
    }
}
