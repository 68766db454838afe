//! The fjall backend: a log-structured merge tree per [`Tree`] (a fjall keyspace), in one
//! fjall database in the data directory.
//!
//! Why it replaced sled for new data directories: sled 0.34 copies a whole tree node on every
//! insert (copy-on-write pages), so a create's eight index and record writes were a dozen node
//! clones and frees — in the profile, sled's clones and glibc's malloc behind them were a
//! third of the server's CPU, and creates reached half of PostgreSQL's rate doing the same
//! work. An insert into fjall is one append to an in-memory skip list and a buffered append to
//! its journal; tables are written whole in the background. fjall is 100% safe Rust
//! (`#![deny(unsafe_code)]`), keeps its block cache to a byte budget it counts truly (sled's
//! cache counted pages by their size on disk), and is maintained. The hot-path benchmark
//! runs both engines side by side (README, "Benchmarks").
//!
//! Durability is Osler's: its write-ahead log is fsynced before a write is acknowledged, and
//! replayed into the backend after a crash. fjall's own journal is only buffered here
//! (`manual_journal_persist`), and synced at checkpoints ([`Backend::flush`]), after which
//! the write-ahead log is trimmed.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use fjall::{AbstractTree, Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::{Backend, Batch, EngineMemory, Op, StorageError, StorageMemory, StorageResult, Tree};

pub struct FjallBackend {
    db: Database,
    keyspaces: Vec<Keyspace>,
    /// [`StorageMemory::tables_bytes`].
    tables_bytes: u64,
    /// Held by the one writer sealing a table for [`FjallBackend::hold_tables`].
    sealing: Mutex<()>,
}

fn io(e: impl std::fmt::Display) -> StorageError {
    StorageError::Io(e.to_string())
}

impl FjallBackend {
    /// Open (or create) the database at `path`.
    pub fn open(path: &Path, memory: StorageMemory) -> Result<Self, StorageError> {
        let db = Database::builder(path)
            .cache_size(memory.cache_bytes)
            // Osler's write-ahead log makes writes durable; fjall's journal is synced at
            // checkpoints.
            .manual_journal_persist(true)
            .worker_threads(background_workers())
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => StorageError::Io(format!(
                    "the database at {} is in use by another osler process; stop it first (or \
                     use the HTTP API of the running server)",
                    path.display()
                )),
                other => StorageError::Io(format!("cannot open {}: {other}", path.display())),
            })?;
        let memtable = memory.memtable_bytes.max(1 << 20);
        let keyspaces = Tree::ALL
            .iter()
            .map(|t| {
                db.keyspace(t.name(), || {
                    KeyspaceCreateOptions::default()
                        .manual_journal_persist(true)
                        .max_memtable_size(memtable)
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?;
        Ok(Self {
            db,
            keyspaces,
            tables_bytes: memory.tables_bytes,
            sealing: Mutex::new(()),
        })
    }

    fn keyspace(&self, t: Tree) -> &Keyspace {
        &self.keyspaces[t.index()]
    }

    /// fjall bounds each tree's in-memory table, at the size the tree was created with (a
    /// budget lowered later does not change it), but not their sum: its
    /// `max_write_buffer_size` is unused in 3.1, and a create writes five trees. Over
    /// [`StorageMemory::tables_bytes`], the largest table being filled is sealed, and fjall's
    /// background worker writes it out. Nothing waits: a writer that finds another sealing
    /// goes on. A table under a sixteenth of the share is left to fill: then the memory is in
    /// full tables waiting for the worker, and sealing more would only make smaller files.
    fn hold_tables(&self) {
        if self.db.write_buffer_size() <= self.tables_bytes {
            return;
        }
        let Ok(_one) = self.sealing.try_lock() else {
            return;
        };
        let largest = self
            .keyspaces
            .iter()
            .map(|k| (k, k.tree.active_memtable().size()))
            .max_by_key(|(_, size)| *size);
        if let Some((k, size)) = largest
            && size >= self.tables_bytes / 16
            && let Err(e) = k.rotate_memtable()
        {
            tracing::warn!(error = %e, "cannot seal an in-memory table to write it out");
        }
    }
}

/// fjall's flush and compaction threads: one core fewer than the machine has (at most fjall's
/// own default of 4, at least 1), so that its background work never takes every core from the
/// requests. With fjall's default (one per core) on a 2-core machine, a flush and a compaction
/// together held both cores for 20–170 ms at a time, and audited reads answered in those
/// windows took 3–20 ms instead of ~1.3.
fn background_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).clamp(1, 4)
}

impl Backend for FjallBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        Ok(self
            .keyspace(tree)
            .get(key)
            .map_err(io)?
            .map(|v| v.to_vec()))
    }

    fn scan_bytes(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        max_bytes: usize,
    ) -> StorageResult<(super::Rows, bool)> {
        let ks = self.keyspace(tree);
        let iter = match after {
            Some(after) if after >= prefix => {
                ks.range::<&[u8], _>((Bound::Excluded(after), Bound::Unbounded))
            }
            _ => ks.prefix(prefix),
        };
        super::page(
            iter.map(|item| item.into_inner().map_err(io)),
            prefix,
            limit,
            max_bytes,
        )
    }

    fn last(&self, tree: Tree, prefix: &[u8]) -> StorageResult<Option<(Vec<u8>, Vec<u8>)>> {
        match self.keyspace(tree).prefix(prefix).next_back() {
            Some(item) => {
                let (k, v) = item.into_inner().map_err(io)?;
                Ok(Some((k.to_vec(), v.to_vec())))
            }
            None => Ok(None),
        }
    }

    /// One fjall write batch: [`super::Storage`] has already checked the preconditions under
    /// its write lock, and the write-ahead log makes the batch atomic across a crash. The
    /// entries of a fjall batch share one sequence number, so where a batch writes a key more
    /// than once only its last write goes in (which is what applying the ops in order means).
    fn apply(&self, batch: &Batch) -> StorageResult<()> {
        let mut seen: HashSet<(Tree, &[u8])> = HashSet::new();
        let mut last = Vec::with_capacity(batch.ops.len());
        for op in batch.ops.iter().rev() {
            match op {
                Op::Put(t, k, _) | Op::Delete(t, k) if seen.insert((*t, k.as_slice())) => {
                    last.push(op);
                }
                _ => {}
            }
        }
        if last.is_empty() {
            return Ok(());
        }
        let mut b = self.db.batch().durability(None);
        for op in last.into_iter().rev() {
            match op {
                Op::Put(t, k, v) => b.insert(self.keyspace(*t), k.as_slice(), v.as_slice()),
                Op::Delete(t, k) => b.remove(self.keyspace(*t), k.as_slice()),
                Op::Expect(..) => {}
            }
        }
        b.commit().map_err(io)?;
        self.hold_tables();
        Ok(())
    }

    /// Sync fjall's journal (everything applied so far is in it): after this, a crash
    /// recovers it from fjall's own files.
    fn flush(&self) -> StorageResult<()> {
        self.db.persist(PersistMode::SyncAll).map_err(io)
    }

    /// fjall's ingestion: sorted tables written (and synced) directly, without the in-memory
    /// table, the journal or compacting what was just flushed. Loading a clinic of 300,000
    /// patients from sled this way took less memory and disk than write batches
    /// (README, "Moving a clinic to fjall").
    fn load(
        &self,
        tree: Tree,
        next: &mut dyn FnMut() -> StorageResult<Option<super::Rows>>,
    ) -> StorageResult<()> {
        let mut ingestion = self.keyspace(tree).start_ingestion().map_err(io)?;
        let mut last: Option<Vec<u8>> = None;
        while let Some(rows) = next()? {
            for (k, v) in rows {
                // fjall panics on keys out of order: say so instead.
                if last.as_ref().is_some_and(|l| *l >= k) {
                    return Err(StorageError::Io(format!(
                        "{}: keys to load are not in ascending order",
                        tree.name()
                    )));
                }
                ingestion.write(k.as_slice(), v).map_err(io)?;
                last = Some(k);
            }
        }
        ingestion.finish().map_err(io)
    }

    fn len(&self, tree: Tree) -> usize {
        self.keyspace(tree).len().unwrap_or(0)
    }

    fn memory(&self) -> Option<EngineMemory> {
        Some(EngineMemory {
            tables: self.db.write_buffer_size(),
            cache: self.db.cache_size(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// Trees a create writes, as in the hot path: a record and its index rows.
    const WRITTEN: [Tree; 5] = [
        Tree::Patients,
        Tree::PatientNames,
        Tree::PatientBirthDates,
        Tree::PatientIdentifiers,
        Tree::AuditIndex,
    ];

    /// A burst of writes from several threads into full in-memory tables, faster than the
    /// one background worker writes them out. Every such write asks fjall for a rotation;
    /// unpatched, fjall 3.1.13 queued each request, filled its worker's channel, and the
    /// worker, sending itself the flush of the table it had just sealed, waited forever: no
    /// table was ever written out again and memory grew with every write (vendor/fjall,
    /// OSLER.md). After the burst, with writes going on at an ordinary pace, the tables must
    /// come back to one being filled per written tree.
    #[test]
    fn a_burst_of_writes_never_stops_the_tables_being_written_out() {
        let dir = tempfile::tempdir().unwrap();
        let memtable = 1 << 20;
        let db = FjallBackend::open(
            dir.path(),
            StorageMemory {
                cache_bytes: 1 << 20,
                memtable_bytes: memtable,
                tables_bytes: 64 << 20,
            },
        )
        .unwrap();
        let write = |i: u64| {
            let mut b = Batch::new();
            for tree in WRITTEN {
                b.put(tree, i.to_be_bytes(), vec![b'x'; 300]);
            }
            db.apply(&b).unwrap();
        };
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (write, stop) = (&write, &stop);
                s.spawn(move || {
                    let mut i = t << 40;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        write(i);
                    }
                });
            }
            std::thread::sleep(Duration::from_secs(3));
            stop.store(true, Ordering::Relaxed);
        });
        let filling = WRITTEN.len() as u64 * memtable;
        let started = Instant::now();
        for i in 1.. {
            let sealed: usize = db.keyspaces.iter().map(|k| k.sealed_memtable_count()).sum();
            let tables = db.memory().unwrap().tables;
            if sealed == 0 && tables <= filling + (1 << 20) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "a minute after the burst, {sealed} full tables still wait to be written out \
                 and the in-memory tables hold {} MiB",
                tables >> 20
            );
            write(5 << 40 | i);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A clinic lowers its memory budget: its trees keep the in-memory table size they were
    /// created with (here 64 MiB each), yet the tables together stay near the new share
    /// instead of filling to that size.
    #[test]
    fn the_in_memory_tables_together_stay_near_their_share() {
        let dir = tempfile::tempdir().unwrap();
        let memory = |memtable: u64, tables: u64| StorageMemory {
            cache_bytes: 1 << 20,
            memtable_bytes: memtable,
            tables_bytes: tables,
        };
        drop(FjallBackend::open(dir.path(), memory(64 << 20, 64 << 20)).unwrap());
        let db = FjallBackend::open(dir.path(), memory(1 << 20, 4 << 20)).unwrap();
        let mut most = 0;
        for i in 0..8_000u64 {
            let mut b = Batch::new();
            for tree in WRITTEN {
                b.put(tree, i.to_be_bytes(), vec![b'x'; 1000]);
            }
            db.apply(&b).unwrap();
            most = most.max(db.memory().unwrap().tables);
        }
        // 40 MB written; without the bound, all of it stays in memory.
        assert!(
            most < 12 << 20,
            "the in-memory tables reached {} MiB against a share of 4",
            most >> 20
        );
        assert_eq!(
            db.get(Tree::Patients, &0u64.to_be_bytes()).unwrap(),
            Some(vec![b'x'; 1000])
        );
    }
}
