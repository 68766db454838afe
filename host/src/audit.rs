//! The audit trail: an append-only, hash-chained log of every access to patient data, every
//! sign-in and every administrative change.
//!
//! The log is a file of JSON lines (`audit/audit.log` in the data directory), not a database
//! tree: it is the evidence, so it is kept in the simplest format a person or another tool can
//! verify, and a changed byte is found by re-hashing rather than hidden by a storage engine's
//! own recovery. Each entry carries the hash of the previous one and its own hash (sha256 over
//! the entry with `hash` empty), so editing, reordering, inserting or dropping an entry breaks
//! the chain at that entry. An entry is written to the file before the change it describes is
//! applied, and it is also carried in the change's own write-ahead log record (see
//! [`crate::storage`]): the change and its entry become durable together or not at all, and
//! after a crash the file gets back any entries it lost.
//!
//! Queries (by patient, actor, time range) read an index kept in the database that points at
//! file offsets; the index is rebuilt from the file for any entries it lacks at start-up.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::storage::{Batch, Journal, Storage, Tree, be};

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
    /// The patients a search returned.
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

struct Head {
    file: File,
    seq: u64,
    hash: String,
    offset: u64,
}

/// The open audit log file. Created before storage, which syncs it first in each group commit.
pub struct AuditFile {
    path: PathBuf,
    head: Mutex<Head>,
    reader: File,
}

impl Journal for AuditFile {
    fn sync(&self) -> std::io::Result<()> {
        self.reader.sync_data()
    }

    /// Append the entries (from the write-ahead log) that come after the file's last one,
    /// checking that each continues the chain.
    fn restore(&self, entries: &[Vec<u8>]) -> Result<(), String> {
        let mut head = self.head.lock().expect("audit lock");
        let mut restored = 0;
        for line in entries {
            let e = parse_line(line).map_err(|e| e.to_string())?;
            if e.seq <= head.seq {
                continue;
            }
            if e.seq != head.seq + 1 || e.prev != head.hash {
                return Err(format!(
                    "the audit log ends at entry {} but the write-ahead log continues with entry                      {} that does not follow it; restore the data directory from a backup",
                    head.seq, e.seq
                ));
            }
            head.file
                .write_all(line)
                .map_err(|e| format!("cannot append to the audit log: {e}"))?;
            head.offset += line.len() as u64;
            head.seq = e.seq;
            head.hash = e.hash;
            restored += 1;
        }
        if restored > 0 {
            tracing::info!(
                entries = restored,
                "restored audit entries from the write-ahead log"
            );
        }
        Ok(())
    }
}

pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("audit.log")
}

impl AuditFile {
    /// Open (or create) the log and find its head. A torn last line — a write that was cut
    /// off by a crash and so never acknowledged — is removed.
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
            } else {
                let e = parse_line(&line)?;
                (seq, hash) = (e.seq, e.hash);
            }
        }
        let reader = File::open(&path)?;
        Ok(Self {
            path,
            head: Mutex::new(Head {
                file,
                seq,
                hash,
                offset,
            }),
            reader,
        })
    }

    pub fn last_seq(&self) -> u64 {
        self.head.lock().expect("audit lock").seq
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
    file: Arc<AuditFile>,
    storage: Storage,
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

fn index_batch(e: &AuditEntry, offset: u64) -> Batch {
    let off = be(offset).to_vec();
    let mut b = Batch::new();
    b.put(Tree::AuditIndex, seq_key(e.seq), off.clone());
    b.put(
        Tree::AuditIndex,
        idx_key(b'a', &e.actor, e.seq),
        off.clone(),
    );
    let mut patients: Vec<&String> = e.patient.iter().chain(e.patients.iter()).collect();
    patients.sort();
    patients.dedup();
    for p in patients {
        b.put(Tree::AuditIndex, idx_key(b'p', p, e.seq), off.clone());
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
        let audit = Self { file, storage };
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
        Ok(audit)
    }

    /// Append an entry. It is durable once the caller's next `Storage::durable` returns.
    pub fn record(&self, ev: Event) -> Result<u64, AuditError> {
        self.record_with(&Batch::new(), ev)
    }

    /// Apply `batch` atomically together with an audit entry describing it. The entry is
    /// written to the audit log first, under the storage write lock and only once the batch's
    /// preconditions hold, so no change can reach a disk before its audit entry; the entry's
    /// index goes into the same atomic batch. A failed precondition writes nothing and is
    /// returned as [`StorageError::Conflict`](crate::storage::StorageError::Conflict) (the
    /// caller audits the refusal).
    pub fn record_with(&self, batch: &Batch, ev: Event) -> Result<u64, AuditError> {
        let mut seq = 0;
        self.storage.apply_with(batch, |extra| {
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
            head.file.write_all(&line).map_err(|e| {
                crate::storage::StorageError::Io(format!("cannot append to the audit log: {e}"))
            })?;
            let offset = head.offset;
            head.offset += line.len() as u64;
            head.seq = entry.seq;
            head.hash = entry.hash.clone();
            seq = entry.seq;
            extra.ops.extend(index_batch(&entry, offset).ops);
            Ok(Some(line))
        })?;
        Ok(seq)
    }

    /// The entry at sequence number `seq`.
    fn entry(&self, seq: u64) -> Result<Option<AuditEntry>, AuditError> {
        match self.storage.get(Tree::AuditIndex, &seq_key(seq))? {
            None => Ok(None),
            Some(off) => {
                let off = u64::from_be_bytes(off[..8].try_into().expect("8"));
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
            for (k, off) in rows {
                let off = u64::from_be_bytes(off[..8].try_into().expect("8"));
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

/// The result of walking the chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    /// The first broken link, if any.
    pub broken_at: Option<u64>,
    pub problem: Option<String>,
}

/// Walk the whole chain of the log under `data_dir`. `indexed_seq`, when known, is the last
/// entry the database recorded; a log that ends before it has lost entries.
pub fn verify(data_dir: &Path, indexed_seq: Option<u64>) -> Result<Verification, AuditError> {
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
    let mut r = BufReader::new(f);
    let mut prev = GENESIS.to_string();
    let mut n = 0u64;
    let mut line = Vec::new();
    let broken = |at: u64, problem: String| Verification {
        ok: false,
        entries: at.saturating_sub(1),
        broken_at: Some(at),
        problem: Some(problem),
    };
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let expected = n + 1;
        if !line.ends_with(b"\n") {
            // A final line still being written (or torn by a crash before it was
            // acknowledged): not part of the chain yet.
            break;
        }
        let body = &line[..line.len() - 1];
        let mut e: AuditEntry = match serde_json::from_slice(body) {
            Ok(e) => e,
            Err(err) => {
                return Ok(broken(
                    expected,
                    format!("entry {expected} is not a readable audit entry ({err})"),
                ));
            }
        };
        if e.seq != expected {
            return Ok(broken(
                expected,
                format!("expected entry {expected}, found entry {}", e.seq),
            ));
        }
        if e.prev != prev {
            return Ok(broken(
                expected,
                format!("entry {expected} does not follow entry {n} (previous hash differs)"),
            ));
        }
        let canonical = serde_json::to_vec(&e).expect("serialise");
        let recomputed = hash_of(&mut e);
        if e.hash != recomputed || canonical != body {
            return Ok(broken(
                expected,
                format!("entry {expected} has been altered (its hash does not match)"),
            ));
        }
        prev = e.hash;
        n = expected;
    }
    if let Some(i) = indexed_seq
        && i > n
    {
        return Ok(broken(
            n + 1,
            format!(
                "the log ends at entry {n} but the database recorded entry {i}: entries were removed"
            ),
        ));
    }
    Ok(Verification {
        ok: true,
        entries: n,
        broken_at: None,
        problem: None,
    })
}

impl Audit {
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
        let s = Storage::open_sled(dir, f.clone()).unwrap();
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
        assert!(verify(dir.path(), None).unwrap().ok);
        let path = log_path(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let pos = bytes.windows(2).rposition(|w| w == b"p2").unwrap();
        bytes[pos + 1] = b'7';
        std::fs::write(&path, bytes).unwrap();
        let v = verify(dir.path(), None).unwrap();
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
        let v = verify(dir.path(), None).unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!(v.entries, 4);
        let q = AuditQuery {
            patient: Some("p3".into()),
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
        let v = verify(dir.path(), None).unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!(v.entries, 2);
    }
}
