//! Verifying the audit trail: re-hash the chain and check it against the signed checkpoints.
//!
//! Read-only: verification opens the log, the checkpoints and the write-ahead log for reading
//! and never writes, repairs or restores anything (that is the server's job at start-up, which
//! it records in the trail). What it detects:
//! - a changed, inserted, reordered or removed entry anywhere (the hash chain breaks there);
//! - entries cut off the end, an emptied log, or a log rewritten with fresh hashes (it no longer
//!   reaches, or no longer matches, the head a checkpoint signed);
//! - a checkpoint not signed by the clinic's key (forged, or signed by a replaced key);
//! - a last line cut off mid-entry (unless the write-ahead log holds that entry in full: a
//!   crash, which the next start repairs).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use osler_registry::PublicKey;
use serde::Serialize;
use utoipa::ToSchema;

use super::checkpoint::{self, Checkpoint};
use super::{AuditEntry, AuditError, GENESIS, hash_of, log_path};

/// What to check the log against.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The key checkpoints must be signed with. Without it, the public key kept in the data
    /// directory is used, and the result says so (it is only as trustworthy as the directory).
    pub key: Option<PublicKey>,
    /// More checkpoint files: copies from the second location.
    pub more_checkpoints: Vec<PathBuf>,
    /// Check only the first this many bytes of the log (a running server's written length).
    pub limit: Option<u64>,
    /// The entry the log must end with (a running server knows what it wrote last).
    pub head: Option<(u64, String)>,
    /// Read the write-ahead log (a stopped server's): entries it holds beyond the file are
    /// counted as pending, and a cut-off last line it holds in full is a crash, not damage.
    pub write_ahead_log: bool,
}

/// The result of verifying the trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// The first broken entry, if the break is at an entry.
    pub broken_at: Option<u64>,
    pub problem: Option<String>,
    /// Signed checkpoints found and checked.
    pub checkpoints: u64,
    /// Entries covered by the newest checkpoint.
    pub signed_entries: u64,
    /// When the newest checkpoint was signed.
    pub signed_at: Option<String>,
    /// The key the checkpoints were checked against.
    pub key: Option<String>,
    /// Entries in the write-ahead log that the file lacks (restored at the next start).
    pub pending: u64,
    /// What the reader should know that does not break the chain.
    pub notes: Vec<String>,
}

impl Verification {
    fn broken(mut self, at: Option<u64>, problem: String) -> Verification {
        self.ok = false;
        self.broken_at = at;
        self.problem = Some(problem);
        self
    }
}

/// Verify the trail of the data directory `data_dir`.
pub fn verify(data_dir: &Path, opts: &Options) -> Result<Verification, AuditError> {
    let path = log_path(data_dir);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AuditError::Corrupt(format!(
                "no audit log at {}: is this an Osler data directory?",
                path.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut v = Verification {
        ok: true,
        entries: 0,
        broken_at: None,
        problem: None,
        checkpoints: 0,
        signed_entries: 0,
        signed_at: None,
        key: None,
        pending: 0,
        notes: Vec::new(),
    };

    // The key, then the checkpoints it must have signed.
    let key = match &opts.key {
        Some(k) => Some(*k),
        None => match std::fs::read_to_string(checkpoint::public_key_path(data_dir)) {
            Ok(s) => {
                let k = PublicKey::parse(&s).map_err(|e| {
                    AuditError::Corrupt(format!(
                        "{}: {e}",
                        checkpoint::public_key_path(data_dir).display()
                    ))
                })?;
                v.notes.push(format!(
                    "checkpoints were checked against the key stored in the data directory \
                     ({}); for evidence, check against the key recorded when the directory was \
                     created: osler audit verify --key {k}",
                    checkpoint::public_key_path(data_dir).display()
                ));
                Some(k)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        },
    };
    v.key = key.map(|k| k.to_string());
    let mut files = vec![checkpoint::checkpoints_path(data_dir)];
    files.extend(opts.more_checkpoints.iter().cloned());
    let mut signed: BTreeMap<u64, Checkpoint> = BTreeMap::new();
    for file in &files {
        if !file.exists() && *file != files[0] {
            return Err(AuditError::Corrupt(format!(
                "no checkpoints file at {}",
                file.display()
            )));
        }
        let (good, bad) = checkpoint::read(file)?;
        if let Some(b) = bad.first() {
            return Ok(v.broken(
                None,
                format!("{} line {}: {}", file.display(), b.line, b.problem),
            ));
        }
        for c in good {
            let Some(k) = &key else {
                return Ok(v.broken(
                    None,
                    format!(
                        "{} holds signed checkpoints but there is no key to check them with: \
                         give the clinic's key with --key ed25519:…",
                        file.display()
                    ),
                ));
            };
            if !c.signed_by(k) {
                return Ok(v.broken(
                    Some(c.entries),
                    format!(
                        "the checkpoint of {} entries dated {} in {} is not signed by the audit \
                         key {k} (it names {}): it is forged, or the key was replaced",
                        c.entries,
                        c.time,
                        file.display(),
                        c.key
                    ),
                ));
            }
            if let Some(other) = signed.get(&c.entries)
                && other.head != c.head
            {
                return Ok(v.broken(
                    Some(c.entries),
                    format!(
                        "two checkpoints signed by the audit key disagree about entry {}",
                        c.entries
                    ),
                ));
            }
            v.checkpoints += 1;
            signed.insert(c.entries, c);
        }
    }
    if let Some((_, newest)) = signed.last_key_value() {
        v.signed_entries = newest.entries;
        v.signed_at = Some(newest.time.clone());
    } else if key.is_some() {
        v.notes.push(
            "no signed checkpoint yet: entries cut off the end of the log could not be noticed"
                .into(),
        );
    } else {
        v.notes.push(
            "this data directory has no checkpoint key yet (it was written by an Osler before \
             signed checkpoints; the next start creates one): the chain is checked, but entries \
             cut off the end could not be noticed"
                .into(),
        );
    }
    if let Some(c) = signed.get(&0)
        && c.head != GENESIS
    {
        return Ok(v.broken(None, "a checkpoint of 0 entries names a head".into()));
    }

    // Walk the chain.
    let mut r = BufReader::new(f.take(opts.limit.unwrap_or(u64::MAX)));
    let mut prev = GENESIS.to_string();
    let mut n = 0u64;
    let mut line = Vec::new();
    let mut torn: Option<Vec<u8>> = None;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let expected = n + 1;
        if !line.ends_with(b"\n") {
            torn = Some(line.clone());
            break;
        }
        let body = &line[..line.len() - 1];
        let mut e: AuditEntry = match serde_json::from_slice(body) {
            Ok(e) => e,
            Err(err) => {
                return Ok(v.broken(
                    Some(expected),
                    format!("entry {expected} is not a readable audit entry ({err})"),
                ));
            }
        };
        if e.seq != expected {
            return Ok(v.broken(
                Some(expected),
                format!("expected entry {expected}, found entry {}", e.seq),
            ));
        }
        if e.prev != prev {
            return Ok(v.broken(
                Some(expected),
                format!("entry {expected} does not follow entry {n} (previous hash differs)"),
            ));
        }
        let canonical = serde_json::to_vec(&e).expect("serialise");
        let recomputed = hash_of(&mut e);
        if e.hash != recomputed || canonical != body {
            return Ok(v.broken(
                Some(expected),
                format!("entry {expected} has been altered (its hash does not match)"),
            ));
        }
        if let Some(c) = signed.get(&expected)
            && c.head != e.hash
        {
            return Ok(v.broken(
                Some(expected),
                format!(
                    "entry {expected} is not the one the checkpoint signed at {} names: the log \
                     has been rewritten",
                    c.time
                ),
            ));
        }
        prev = e.hash;
        n = expected;
        v.entries = n;
    }

    // What the write-ahead log holds beyond the file.
    let mut pending: Vec<Vec<u8>> = Vec::new();
    if opts.write_ahead_log {
        let wal_dir = data_dir.join("wal");
        if wal_dir.is_dir() {
            let segs = crate::storage::wal::segments(&wal_dir)?;
            let records =
                crate::storage::wal::read_all(&wal_dir, &segs).map_err(AuditError::Corrupt)?;
            let (mut seq, mut hash) = (n, prev.clone());
            for bytes in records.into_iter().filter_map(|r| r.journal) {
                let Ok(e) = serde_json::from_slice::<AuditEntry>(
                    bytes.strip_suffix(b"\n").unwrap_or(&bytes),
                ) else {
                    continue;
                };
                if e.seq <= seq {
                    continue;
                }
                if e.seq != seq + 1 || e.prev != hash {
                    return Ok(v.broken(
                        Some(seq + 1),
                        format!(
                            "the log ends at entry {seq} but the write-ahead log continues with \
                             entry {} that does not follow it",
                            e.seq
                        ),
                    ));
                }
                seq = e.seq;
                hash = e.hash;
                pending.push(bytes);
            }
        }
        v.pending = pending.len() as u64;
    }
    if let Some(t) = torn {
        let whole = pending.first().is_some_and(|p| p.starts_with(&t));
        if !whole {
            return Ok(v.broken(
                Some(n + 1),
                format!(
                    "the last line of the log (entry {}) is cut off after {} bytes",
                    n + 1,
                    t.len()
                ),
            ));
        }
        v.notes.push(format!(
            "the last line of the log (entry {}) was cut off by a crash; the write-ahead log \
             holds it and the next start restores it",
            n + 1
        ));
    }
    if v.pending > 0 {
        v.notes.push(format!(
            "{} entries are in the write-ahead log but not yet in the file (the server stopped \
             without finishing); the next start restores them",
            v.pending
        ));
    }
    if let Some((&covered, c)) = signed.last_key_value()
        && covered > n
    {
        return Ok(v.broken(
            Some(n + 1),
            format!(
                "the log ends at entry {n}, but the checkpoint signed at {} covers {covered} \
                 entries: entries were removed from the end",
                c.time
            ),
        ));
    }
    if let Some((seq, hash)) = &opts.head
        && (*seq != n || *hash != prev)
    {
        return Ok(v.broken(
            Some(n.min(*seq) + 1),
            format!(
                "the log file ends at entry {n}, but this server wrote entry {seq} last: the \
                 file was changed under it"
            ),
        ));
    }
    if v.signed_entries < n && v.signed_entries > 0 {
        v.notes.push(format!(
            "entries {}–{n} come after the newest checkpoint: they are chained but not yet \
             signed",
            v.signed_entries + 1
        ));
    }
    Ok(v)
}
