//! The sled backend: one database in the data directory, one sled tree per [`Tree`].

use std::path::{Path, PathBuf};

use super::{Backend, Batch, Op, StorageError, StorageResult, Tree};

pub struct SledBackend {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    path: PathBuf,
}

impl SledBackend {
    /// Open the database at `path` with a page cache of `cache_bytes` (sled measures it by
    /// the pages' size on disk; in memory they take a few times more).
    pub fn open(path: &Path, cache_bytes: u64) -> Result<Self, StorageError> {
        let db = sled::Config::new()
            .path(path)
            // Durability comes from Osler's write-ahead log; sled's files are flushed at
            // checkpoints only.
            .flush_every_ms(None)
            .cache_capacity(cache_bytes)
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
        Ok(Self {
            db,
            trees,
            path: path.to_path_buf(),
        })
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

    fn scan_bytes(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        max_bytes: usize,
    ) -> StorageResult<(super::Rows, bool)> {
        let t = self.tree(tree);
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match after {
            Some(after) if after >= prefix => {
                use std::ops::Bound;
                Box::new(t.range::<&[u8], _>((Bound::Excluded(after), Bound::Unbounded)))
            }
            _ => Box::new(t.scan_prefix(prefix)),
        };
        // sled's values are reference-counted pages: nothing is copied until `page`.
        super::page(iter.map(|item| item.map_err(io)), prefix, limit, max_bytes)
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

    /// Plain inserts and removes, in order. No sled transaction: [`super::Storage`] has already
    /// checked the preconditions under its write lock, and the write-ahead log makes the batch
    /// atomic across a crash. (A sled transaction writes its own log buffers to disk on every
    /// commit, which costs more than the whole rest of a create.)
    fn apply(&self, batch: &Batch) -> StorageResult<()> {
        for op in &batch.ops {
            match op {
                Op::Put(t, k, v) => {
                    self.tree(*t)
                        .insert(k.as_slice(), v.as_slice())
                        .map_err(io)?;
                }
                Op::Delete(t, k) => {
                    self.tree(*t).remove(k.as_slice()).map_err(io)?;
                }
                Op::Expect(..) => {}
            }
        }
        Ok(())
    }

    fn flush(&self) -> StorageResult<()> {
        self.db.flush().map_err(io)?;
        // sled's flush writes with sync_file_range, which neither flushes the drive's write
        // cache nor the files' metadata: fsync its files and directory ourselves.
        for entry in std::fs::read_dir(&self.path).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_type().map_err(io)?.is_file() {
                std::fs::File::open(entry.path())
                    .and_then(|f| f.sync_all())
                    .map_err(io)?;
            }
        }
        super::wal::sync_dir(&self.path).map_err(io)
    }

    fn len(&self, tree: Tree) -> usize {
        self.tree(tree).len()
    }
}
