//! Moving a data directory's database to another engine (`osler storage migrate`): every
//! entry of every tree, copied as it is (the entries are engine-neutral bytes, whatever schema
//! version wrote them), compared entry for entry with the original, and only then put in its
//! place. The old database is kept, renamed, for the operator to delete once satisfied.
//!
//! The original is opened through [`Storage`], so a write-ahead log left by a crash is
//! replayed into it (and the audit trail given back the entries it lacks) before anything is
//! copied; opening it also takes the engine's lock, so a running server makes the migration
//! refuse instead of copying a database that is still changing.
//!
//! The switch is several renames, so it is made safe to interrupt by a marker file written
//! (and synced) before the first of them: while the marker is there, no osler opens the data
//! directory ([`Engine::existing`] refuses and says to run the migration again), and running
//! it again finishes the switch. Interrupted before the marker, the copy (`store.migrating`
//! or `db.migrating`) is simply thrown away and made again; the original was never touched.
//!
//! | step | if interrupted here, the data directory holds |
//! |---|---|
//! | copy and compare into `<new>.migrating` | the original, in use as before |
//! | write the marker | the original and the checked copy; osler refuses until the migration is run again |
//! | rename the original to the kept name | the kept original and the checked copy |
//! | rename the copy into place | the new database |
//! | remove the marker | the new database, in use |

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    Backend, Engine, Journal, Storage, StorageError, StorageMemory, StorageResult, Tree, io,
    open_database,
};

/// The file that marks a switch of engines in progress.
pub const MARKER: &str = "storage-migration";

/// Entries copied per batch, and the most bytes a batch holds.
const PAGE_ENTRIES: usize = 4096;
const PAGE_BYTES: usize = 8 << 20;

/// The engines' caches while copying: every entry is read in key order, once to copy and once
/// to compare, so a cache would only hold what is not read again. (sled's, at the default
/// budget's 16 MiB, took some 80 MB of the command's memory on a clinic of 300,000 patients.)
const CACHE_BYTES: u64 = 2 << 20;

/// What a finished migration did.
#[derive(Debug)]
pub struct Migration {
    pub from: Engine,
    pub to: Engine,
    pub entries: u64,
    /// Keys and values, bytes.
    pub bytes: u64,
    /// Where the old database now is.
    pub kept: PathBuf,
    /// Copying and comparing, and the switch.
    pub elapsed: Duration,
    /// Whether this run only finished a switch an earlier run had begun (no copy was made).
    pub resumed: bool,
}

/// What `osler storage migrate` found to do.
#[derive(Debug)]
pub enum Outcome {
    /// The database already uses the engine asked for.
    Already(Engine),
    Done(Migration),
}

/// The copy's directory while it is being made.
fn staging(dir: &Path, to: Engine) -> PathBuf {
    let mut name = to.dir(dir).into_os_string();
    name.push(".migrating");
    PathBuf::from(name)
}

fn sync_dir(dir: &Path) -> StorageResult<()> {
    super::wal::sync_dir(dir).map_err(io)
}

/// The marker's content: the engine moved to and the name the old database is kept under.
#[derive(Debug, PartialEq)]
struct Marker {
    to: Engine,
    kept: String,
}

impl Marker {
    fn read(dir: &Path) -> StorageResult<Option<Marker>> {
        let text = match std::fs::read_to_string(dir.join(MARKER)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .map(str::trim)
        };
        let Some(to) = field("to").and_then(Engine::named) else {
            return Err(unreadable_marker(dir));
        };
        match field("kept") {
            Some(kept) if !kept.is_empty() && !kept.contains(['/', '\\']) && kept != ".." => {
                Ok(Some(Marker {
                    to,
                    kept: kept.to_string(),
                }))
            }
            _ => Err(unreadable_marker(dir)),
        }
    }

    fn write(&self, dir: &Path) -> StorageResult<()> {
        let path = dir.join(MARKER);
        let mut f = File::create(&path).map_err(io)?;
        writeln!(f, "to={}\nkept={}", self.to.name(), self.kept).map_err(io)?;
        f.sync_all().map_err(io)?;
        sync_dir(dir)
    }
}

fn unreadable_marker(dir: &Path) -> StorageError {
    StorageError::Io(format!(
        "{} is not a marker osler wrote; restore the data directory from a backup",
        dir.join(MARKER).display()
    ))
}

/// Refuse to open a data directory in the middle of a switch of engines.
pub(super) fn check_not_switching(dir: &Path) -> StorageResult<()> {
    if dir.join(MARKER).exists() {
        return Err(StorageError::Io(format!(
            "a move of {}'s database to another engine was interrupted; finish it with `osler \
             storage migrate --data-dir {}` before starting osler",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Move the database in `dir` to `to`. `journal` opens the data directory's audit trail (given
/// the entries of a log replayed into the original; opened only once the original's lock is
/// held); `progress` hears each tree as it is copied and compared, with its entries.
pub fn migrate(
    dir: &Path,
    to: Engine,
    journal: &dyn Fn() -> StorageResult<Arc<dyn Journal>>,
    memory: StorageMemory,
    progress: &mut dyn FnMut(Tree, u64),
) -> StorageResult<Outcome> {
    let started = Instant::now();
    let memory = StorageMemory {
        cache_bytes: memory.cache_bytes.min(CACHE_BYTES),
        ..memory
    };
    if let Some(marker) = Marker::read(dir)? {
        if marker.to != to {
            return Err(StorageError::Io(format!(
                "an interrupted move to {} must be finished first: run `osler storage migrate \
                 --to {}`",
                marker.to.name(),
                marker.to.name()
            )));
        }
        let from = to.other();
        let kept = switch(dir, from, &marker)?;
        return Ok(Outcome::Done(Migration {
            from,
            to,
            entries: 0,
            bytes: 0,
            kept,
            elapsed: started.elapsed(),
            resumed: true,
        }));
    }
    let from = match Engine::existing(dir)? {
        None => {
            return Err(StorageError::Io(format!(
                "{} is not an Osler data directory (it has neither store/ nor db/)",
                dir.display()
            )));
        }
        Some(e) if e == to => return Ok(Outcome::Already(to)),
        Some(e) => e,
    };
    // The original, with any log a crash left replayed into it. Opening it takes the
    // engine's lock: a running server makes this fail before anything is written.
    let database = open_database(dir, from, memory)?;
    let source = Storage::open(database, &dir.join("wal"), journal()?)?;
    let copy_dir = staging(dir, to);
    if copy_dir.exists() {
        // An earlier run stopped before its copy was checked: start again.
        std::fs::remove_dir_all(&copy_dir).map_err(io)?;
    }
    let copied = copy_and_compare(source.backend(), &copy_dir, to, memory, progress);
    if copied.is_err() {
        let _ = std::fs::remove_dir_all(&copy_dir);
    }
    let Copied { entries, bytes } = copied?;
    // Closing the original writes its final checkpoint and lets go of its lock.
    drop(source);
    sync_dir(dir)?;
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    let marker = Marker {
        to,
        kept: format!("{}-before-{}-{stamp}", from.name(), to.name()),
    };
    marker.write(dir)?;
    let kept = switch(dir, from, &marker)?;
    Ok(Outcome::Done(Migration {
        from,
        to,
        entries,
        bytes,
        kept,
        elapsed: started.elapsed(),
        resumed: false,
    }))
}

/// What [`copy_and_compare`] copied: its entries, and their keys' and values' bytes.
struct Copied {
    entries: u64,
    bytes: u64,
}

/// Every tree of `source` into a new database of `to` at `path`, each read back and compared
/// with the original entry for entry as soon as it is copied; then the copy is synced.
fn copy_and_compare(
    source: &dyn Backend,
    path: &Path,
    to: Engine,
    memory: StorageMemory,
    progress: &mut dyn FnMut(Tree, u64),
) -> StorageResult<Copied> {
    let target = to.open_at(path, memory)?;
    let (mut entries, mut bytes) = (0u64, 0u64);
    for tree in Tree::ALL {
        let mut n = 0u64;
        let mut after: Option<Vec<u8>> = None;
        let mut done = false;
        target.load(tree, &mut || {
            if done {
                return Ok(None);
            }
            let (rows, more) =
                source.scan_bytes(tree, b"", after.as_deref(), PAGE_ENTRIES, PAGE_BYTES)?;
            n += rows.len() as u64;
            bytes += rows
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum::<u64>();
            after = rows.last().map(|(k, _)| k.clone());
            done = !more || after.is_none();
            Ok(Some(rows))
        })?;
        // Read back at once, so that progress is told tree by tree. (Comparing after the sync
        // below would read no more from the disk: the engine answers from its memory either
        // way.)
        let found = compare(source, &*target, tree)?;
        if found != n {
            return Err(StorageError::Io(format!(
                "the copy of {} has {found} entries where {n} were copied",
                tree.name()
            )));
        }
        if n > 0 {
            progress(tree, n);
        }
        entries += n;
    }
    target.flush()?;
    Ok(Copied { entries, bytes })
}

/// Whether `tree` holds the same entries in both, in the same order; how many.
fn compare(a: &dyn Backend, b: &dyn Backend, tree: Tree) -> StorageResult<u64> {
    let mut n = 0u64;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let (left, more) = a.scan_bytes(tree, b"", after.as_deref(), PAGE_ENTRIES, PAGE_BYTES)?;
        // The same keys from the copy (one more, to see that it has nothing extra).
        let (right, _) = b.scan_bytes(tree, b"", after.as_deref(), left.len() + 1, usize::MAX)?;
        let extra = right.len() > left.len() && !more;
        if right.len() < left.len() || right[..left.len()] != left[..] || extra {
            return Err(StorageError::Io(format!(
                "the copy of {} differs from the original after entry {n}; the original is \
                 unchanged",
                tree.name()
            )));
        }
        n += left.len() as u64;
        after = left.last().map(|(k, _)| k.clone());
        if !more || after.is_none() {
            return Ok(n);
        }
    }
}

/// Put the checked copy in place of the original, as the marker says; then remove the
/// marker. Each step is skipped when an earlier run already made it.
fn switch(dir: &Path, from: Engine, marker: &Marker) -> StorageResult<PathBuf> {
    let kept = dir.join(&marker.kept);
    let original = from.dir(dir);
    let copy = staging(dir, marker.to);
    let target = marker.to.dir(dir);
    if original.exists() {
        if kept.exists() {
            return Err(StorageError::Io(format!(
                "both {} and {} exist; move one away by hand",
                original.display(),
                kept.display()
            )));
        }
        std::fs::rename(&original, &kept).map_err(io)?;
        sync_dir(dir)?;
    }
    if copy.exists() {
        std::fs::rename(&copy, &target).map_err(io)?;
        sync_dir(dir)?;
    }
    if !target.exists() {
        return Err(StorageError::Io(format!(
            "neither {} nor its copy {} exists; the original database is kept at {}: rename it \
             back to {} to use it",
            target.display(),
            copy.display(),
            kept.display(),
            original.display()
        )));
    }
    std::fs::remove_file(dir.join(MARKER)).map_err(io)?;
    sync_dir(dir)?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Batch;
    use crate::storage::tests::NoJournal;

    fn open(dir: &Path, engine: Engine) -> Storage {
        Storage::open_dir(dir, engine, Arc::new(NoJournal), StorageMemory::default()).unwrap()
    }

    /// A database with entries in several trees, some large, some removed again.
    fn fill(dir: &Path, engine: Engine) -> Vec<(Tree, Vec<u8>, Vec<u8>)> {
        let s = open(dir, engine);
        let mut want = Vec::new();
        for i in 0..10_000u32 {
            let mut b = Batch::new();
            let key = format!("p{i:06}").into_bytes();
            let value = if i % 997 == 0 {
                vec![b'x'; 200_000]
            } else {
                format!("{{\"n\":{i}}}").into_bytes()
            };
            b.put(Tree::Patients, key.clone(), value.clone());
            b.put(
                Tree::PatientNames,
                format!("name{i}\0p{i}").as_bytes(),
                vec![],
            );
            s.apply(&b).unwrap();
            want.push((Tree::Patients, key, value));
            want.push((
                Tree::PatientNames,
                format!("name{i}\0p{i}").into_bytes(),
                vec![],
            ));
        }
        let mut b = Batch::new();
        b.delete(Tree::Patients, b"p000005");
        s.apply(&b).unwrap();
        want.retain(|(t, k, _)| !(*t == Tree::Patients && k == b"p000005"));
        s.durable_blocking().unwrap();
        want
    }

    fn everything(s: &Storage) -> Vec<(Tree, Vec<u8>, Vec<u8>)> {
        let mut all = Vec::new();
        for t in Tree::ALL {
            for (k, v) in s.backend().scan(t, b"", None, usize::MAX).unwrap() {
                all.push((t, k, v));
            }
        }
        all
    }

    fn run(dir: &Path, to: Engine) -> StorageResult<Outcome> {
        migrate(
            dir,
            to,
            &|| Ok(Arc::new(NoJournal)),
            StorageMemory::default(),
            &mut |_, _| {},
        )
    }

    #[test]
    fn every_entry_moves_both_ways_and_the_original_is_kept() {
        for from in [Engine::Sled, Engine::Fjall] {
            let dir = tempfile::tempdir().unwrap();
            let key = |e: &(Tree, Vec<u8>, Vec<u8>)| (e.0.index(), e.1.clone());
            let mut want = fill(dir.path(), from);
            want.sort_by_key(key);
            let to = from.other();
            let Outcome::Done(m) = run(dir.path(), to).unwrap() else {
                panic!("nothing was done")
            };
            assert_eq!((m.from, m.to, m.resumed), (from, to, false));
            // The trees written, plus the ids and anything else the storage keeps itself.
            assert!(m.entries >= want.len() as u64);
            assert_eq!(Engine::existing(dir.path()).unwrap(), Some(to));
            assert!(m.kept.exists() && !from.dir(dir.path()).exists());
            assert!(!dir.path().join(MARKER).exists());
            let s = open(dir.path(), to);
            let mut got: Vec<_> = everything(&s)
                .into_iter()
                .filter(|(t, _, _)| matches!(t, Tree::Patients | Tree::PatientNames))
                .collect();
            got.sort_by_key(key);
            assert_eq!(got, want, "{from:?} → {to:?}");
            drop(s);
            assert!(matches!(run(dir.path(), to).unwrap(), Outcome::Already(e) if e == to));
        }
    }

    #[test]
    fn an_interrupted_copy_is_made_again_and_the_original_used_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path(), Engine::Sled);
        // A copy cut short: a directory with something in it, no marker.
        let partial = staging(dir.path(), Engine::Fjall);
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::write(partial.join("junk"), b"half a table").unwrap();
        assert_eq!(Engine::existing(dir.path()).unwrap(), Some(Engine::Sled));
        drop(open(dir.path(), Engine::Fjall));
        let Outcome::Done(m) = run(dir.path(), Engine::Fjall).unwrap() else {
            panic!("nothing was done")
        };
        assert!(!m.resumed && m.entries > 0);
        assert!(!partial.exists());
        assert_eq!(
            open(dir.path(), Engine::Fjall)
                .get(Tree::Patients, b"p000001")
                .unwrap()
                .as_deref(),
            Some(&b"{\"n\":1}"[..])
        );
    }

    #[test]
    fn an_interrupted_switch_blocks_opening_until_it_is_finished() {
        for stop_after in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            fill(dir.path(), Engine::Sled);
            // Make and check the copy as a run would, then stop part way through the switch.
            let source = open(dir.path(), Engine::Sled);
            copy_and_compare(
                source.backend(),
                &staging(dir.path(), Engine::Fjall),
                Engine::Fjall,
                StorageMemory::default(),
                &mut |_, _| {},
            )
            .unwrap();
            drop(source);
            let marker = Marker {
                to: Engine::Fjall,
                kept: "sled-before-fjall-test".into(),
            };
            marker.write(dir.path()).unwrap();
            if stop_after >= 1 {
                std::fs::rename(dir.path().join("db"), dir.path().join(&marker.kept)).unwrap();
            }
            if stop_after >= 2 {
                std::fs::rename(staging(dir.path(), Engine::Fjall), dir.path().join("store"))
                    .unwrap();
            }
            let refused = Storage::open_dir(
                dir.path(),
                Engine::Sled,
                Arc::new(NoJournal),
                StorageMemory::default(),
            )
            .err()
            .expect("an interrupted switch must not be opened");
            assert!(
                refused.to_string().contains("osler storage migrate"),
                "{refused}"
            );
            let wrong = run(dir.path(), Engine::Sled).unwrap_err();
            assert!(wrong.to_string().contains("--to fjall"), "{wrong}");
            let Outcome::Done(m) = run(dir.path(), Engine::Fjall).unwrap() else {
                panic!("nothing was done")
            };
            assert!(m.resumed, "stop after {stop_after}");
            assert_eq!(m.kept, dir.path().join("sled-before-fjall-test"));
            assert_eq!(Engine::existing(dir.path()).unwrap(), Some(Engine::Fjall));
            assert!(
                open(dir.path(), Engine::Fjall)
                    .get(Tree::Patients, b"p000002")
                    .unwrap()
                    .is_some()
            );
        }
    }

    #[test]
    fn a_database_in_use_is_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path(), Engine::Sled);
        let running = open(dir.path(), Engine::Sled);
        let e = run(dir.path(), Engine::Fjall).unwrap_err();
        assert!(e.to_string().contains("in use"), "{e}");
        assert!(!staging(dir.path(), Engine::Fjall).exists());
        assert!(!dir.path().join(MARKER).exists());
        drop(running);
    }
}
