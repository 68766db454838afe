//! The write-ahead log: what makes a write durable.
//!
//! Every batch the backend applies is also appended here (its puts and deletes, in the order
//! they were applied), and a write is acknowledged once its record has been `fdatasync`ed. The
//! backend's own files are made durable only at checkpoints; after a crash, the log records
//! since the last checkpoint are applied again. Re-applying is safe because records hold whole
//! values in apply order: replaying a suffix of the history over a state that already contains
//! part of it ends in the same state.
//!
//! Layout: `wal/<segment>.log`, segments numbered upwards, and at most one `wal/spare`: the
//! next segment, made ready ahead of time. A segment starts with a header, `OSLERWAL` and its
//! number (u64 LE). A record is
//! `[payload length u32 LE][crc32 u32 LE][segment number u64 LE][payload]`, the crc taken over
//! the segment number and the payload; the payload is a sequence of
//! `[1=put | 2=delete][tree u8][key length u32 LE][key]([value length u32 LE][value])`, and at
//! most one `[3][entry length u32 LE][entry]`: the journal (audit) entry of the change. A
//! segment that was closed ends with a record whose payload is `[4]`.
//!
//! Why records are written into space the file already has, not appended: `fdatasync` after an
//! append must also commit the file's new size, which on ext4 is a journal commit; it waits
//! behind whatever else the filesystem is committing (the database's table files, the audit
//! trail's fsync at checkpoints). Overwriting blocks the file already has is a data write and
//! a cache flush only. Measured here, 1.5 KB records: fdatasync p50 0.19–0.21 ms appending,
//! 0.15 ms overwriting; with another process writing and fsyncing 16 MiB files beside it,
//! 25–48 of ~20,000 syncs over 2 ms appending against 17–23 overwriting. So a new segment is
//! zero-filled before it is used (off the write path), and the segment a checkpoint retires is
//! kept as the next spare instead of deleted (as PostgreSQL recycles its WAL segments). Its
//! old records stay in it; each record names its segment, so the log ends at the first record
//! that names another (or none: zeros).
//!
//! A record cut off at the end of the newest segment (a crash mid-write, so never acknowledged)
//! is dropped; damage anywhere else is refused, and so is an older segment that was not closed.
//! Segments written before this layout (no header, `[length][crc][payload]` records) are still
//! read: they are only ever replayed, at start-up, and then removed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Batch, Op, Tree};

const PUT: u8 = 1;
const DELETE: u8 = 2;
const JOURNAL: u8 = 3;
const END: u8 = 4;

const MAGIC: &[u8; 8] = b"OSLERWAL";
/// A segment's header: [`MAGIC`] and the segment's number. Its first record follows.
pub const HEADER: u64 = 16;
/// A record's header: payload length, crc, segment number.
const RECORD_HEADER: usize = 16;
/// A new spare is zero-filled to at least this, and in steps of it.
const SPARE_STEP: u64 = 1 << 20;

/// One record: a batch and the journal entry describing it.
pub struct Record {
    pub batch: Batch,
    pub journal: Option<Vec<u8>>,
}

/// Append the mutations of some batches, and a journal entry, to `buf` as one record of
/// segment `segment` (applied whole, in order).
pub fn encode(batches: &[&Batch], journal: Option<&[u8]>, segment: u64, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 8]);
    buf.extend_from_slice(&segment.to_le_bytes());
    if let Some(j) = journal {
        buf.push(JOURNAL);
        buf.extend_from_slice(&(j.len() as u32).to_le_bytes());
        buf.extend_from_slice(j);
    }
    for op in batches.iter().flat_map(|b| &b.ops) {
        match op {
            Op::Put(t, k, v) => {
                buf.push(PUT);
                buf.push(t.code());
                buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
                buf.extend_from_slice(k);
                buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                buf.extend_from_slice(v);
            }
            Op::Delete(t, k) => {
                buf.push(DELETE);
                buf.push(t.code());
                buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
                buf.extend_from_slice(k);
            }
            Op::Expect(..) => {}
        }
    }
    seal(buf, start);
}

/// Fill in the length and crc of the record that starts at `start`, its segment number and
/// payload written.
fn seal(buf: &mut [u8], start: usize) {
    let payload_len = (buf.len() - start - RECORD_HEADER) as u32;
    let crc = crc32fast::hash(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The record that closes segment `segment`: nothing is written to it after this.
fn end_record(segment: u64) -> Vec<u8> {
    let mut buf = vec![0u8; 8];
    buf.extend_from_slice(&segment.to_le_bytes());
    buf.push(END);
    seal(&mut buf, 0);
    buf
}

fn decode(payload: &[u8]) -> Option<Record> {
    let mut b = Batch::new();
    let mut journal = None;
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let s = payload.get(*at..at.checked_add(n)?)?;
        *at += n;
        Some(s)
    };
    let len = |at: &mut usize| -> Option<usize> {
        let s = payload.get(*at..*at + 4)?;
        *at += 4;
        Some(u32::from_le_bytes(s.try_into().ok()?) as usize)
    };
    while at < payload.len() {
        let kind = take(&mut at, 1)?[0];
        if kind == JOURNAL {
            let n = len(&mut at)?;
            journal = Some(take(&mut at, n)?.to_vec());
            continue;
        }
        let tree = Tree::from_code(take(&mut at, 1)?[0])?;
        let klen = len(&mut at)?;
        let key = take(&mut at, klen)?.to_vec();
        match kind {
            PUT => {
                let vlen = len(&mut at)?;
                let value = take(&mut at, vlen)?.to_vec();
                b.ops.push(Op::Put(tree, key, value));
            }
            DELETE => b.ops.push(Op::Delete(tree, key)),
            _ => return None,
        }
    }
    Some(Record { batch: b, journal })
}

pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.log"))
}

fn spare_path(dir: &Path) -> PathBuf {
    dir.join("spare")
}

/// The segment numbers present, oldest first.
pub fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".log").and_then(|s| s.parse().ok()) {
            out.push(n);
        }
    }
    out.sort();
    Ok(out)
}

/// How a segment's records end.
enum Ending {
    /// With its closing record.
    Closed,
    /// At space this segment never wrote: zeros, or the records of the segment whose file
    /// this was before.
    Open,
    /// At a record of this segment that does not check out, at this byte.
    Torn(usize),
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The records of segment `n` (its header checked by the caller), appended to `out`.
fn read_segment(n: u64, bytes: &[u8], out: &mut Vec<Record>) -> Ending {
    let mut at = HEADER as usize;
    loop {
        if bytes.len() < at + RECORD_HEADER {
            // Past the space made ready for the segment, it grew by appending.
            return if bytes[at.min(bytes.len())..].iter().all(|b| *b == 0) {
                Ending::Open
            } else {
                Ending::Torn(at)
            };
        }
        if u64_at(bytes, at + 8) != n {
            return Ending::Open;
        }
        let len = u32_at(bytes, at) as usize;
        let body = at + RECORD_HEADER;
        let Some(payload) = bytes.get(body..body + len) else {
            return Ending::Torn(at);
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes[at + 8..body]);
        crc.update(payload);
        if crc.finalize() != u32_at(bytes, at + 4) {
            return Ending::Torn(at);
        }
        if payload == [END] {
            return Ending::Closed;
        }
        match decode(payload) {
            Some(r) => out.push(r),
            None => return Ending::Torn(at),
        }
        at = body + len;
    }
}

/// The records of a segment written before segments had headers, appended to `out`; the
/// byte where they stop, if they stop before the end.
fn read_headerless(bytes: &[u8], out: &mut Vec<Record>) -> Option<usize> {
    let mut at = 0usize;
    while at < bytes.len() {
        let header = bytes.get(at..at + 8);
        let parsed = header.and_then(|h| {
            let len = u32::from_le_bytes(h[..4].try_into().ok()?) as usize;
            let crc = u32::from_le_bytes(h[4..].try_into().ok()?);
            let payload = bytes.get(at + 8..at + 8 + len)?;
            (crc32fast::hash(payload) == crc).then_some((len, payload))
        });
        match parsed.and_then(|(len, p)| decode(p).map(|b| (len, b))) {
            Some((len, batch)) => {
                out.push(batch);
                at += 8 + len;
            }
            None => return Some(at),
        }
    }
    None
}

/// Read every record of the given segments, in order. A torn record at the very end of the
/// last segment ends the log; anything else unreadable, or an older segment that was not
/// closed, is an error naming the segment.
pub fn read_all(dir: &Path, segs: &[u64]) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    for (i, n) in segs.iter().enumerate() {
        let path = segment_path(dir, *n);
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let last = i + 1 == segs.len();
        let damaged = |at: usize| {
            format!(
                "the write-ahead log segment {} is damaged at byte {at}; restore the data \
                 directory from a backup",
                path.display()
            )
        };
        let torn = if bytes.starts_with(MAGIC) && bytes.len() >= HEADER as usize {
            if u64_at(&bytes, 8) != *n {
                return Err(damaged(8));
            }
            match read_segment(*n, &bytes, &mut out) {
                Ending::Closed => None,
                Ending::Open if last => None,
                Ending::Open => {
                    return Err(format!(
                        "the write-ahead log segment {} was not closed, yet a newer one \
                         follows it; restore the data directory from a backup",
                        path.display()
                    ));
                }
                Ending::Torn(at) => Some(at),
            }
        } else {
            read_headerless(&bytes, &mut out)
        };
        match torn {
            None => {}
            Some(at) if last => {
                tracing::warn!(
                    segment = n,
                    at,
                    "dropping an incomplete final write-ahead record (never acknowledged)"
                );
            }
            Some(at) => return Err(damaged(at)),
        }
    }
    Ok(out)
}

/// Make the spare ready to become segment `n`, at least `len` bytes long (rounded up to a
/// whole step): the segment the last checkpoint retired if there is one, else a new file,
/// zero-filled. Either way its header names `n`, and it is on disk when this returns. It
/// becomes a segment only with [`install_spare`].
pub fn prepare_spare(dir: &Path, n: u64, len: u64) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(spare_path(dir))?;
    let have = f.metadata()?.len();
    let want = len.max(HEADER).div_ceil(SPARE_STEP) * SPARE_STEP;
    if have < want {
        let zeros = vec![0u8; SPARE_STEP as usize];
        let mut at = have;
        while at < want {
            let step = (want - at).min(SPARE_STEP);
            f.write_all_at(&zeros[..step as usize], at)?;
            at += step;
        }
    }
    let mut header = [0u8; HEADER as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..].copy_from_slice(&n.to_le_bytes());
    f.write_all_at(&header, 0)?;
    f.sync_data()?;
    Ok(f)
}

/// The prepared spare (see [`prepare_spare`]) becomes segment `n`, durably.
pub fn install_spare(dir: &Path, n: u64) -> io::Result<()> {
    fs::rename(spare_path(dir), segment_path(dir, n))?;
    sync_dir(dir)
}

/// Remove a spare left by an earlier process (when the log starts over from segment 1, its
/// old records could carry the numbers of new segments).
pub fn discard_spare(dir: &Path) -> io::Result<()> {
    match fs::remove_file(spare_path(dir)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Close segment `n` of `file`: its closing record at `offset`, then fdatasync. Nothing may
/// be written to it afterwards.
pub fn close_segment(file: &File, n: u64, offset: u64) -> io::Result<()> {
    file.write_all_at(&end_record(n), offset)?;
    file.sync_data()
}

/// Segment `n` is no longer needed: it becomes the spare if there is none (and it has a
/// header, so its old records name their segment), else it is removed.
pub fn retire(dir: &Path, n: u64) -> io::Result<()> {
    let path = segment_path(dir, n);
    let mut magic = [0u8; 8];
    let headed = File::open(&path)
        .and_then(|f| f.read_exact_at(&mut magic, 0))
        .is_ok()
        && &magic == MAGIC;
    if headed && !spare_path(dir).exists() {
        fs::rename(path, spare_path(dir))
    } else {
        fs::remove_file(path)
    }
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(key: &str) -> Batch {
        let mut b = Batch::new();
        b.put(Tree::Patients, key, "{}");
        b.delete(Tree::PatientNames, "x");
        b.expect(Tree::Patients, key, None);
        b
    }

    /// Segment `n` made the way storage makes it, holding `records` from its first record on;
    /// closed if `close`. Returns the byte after its records.
    fn segment(dir: &Path, n: u64, records: &[u8], close: bool) -> u64 {
        let f = prepare_spare(dir, n, 0).unwrap();
        install_spare(dir, n).unwrap();
        f.write_all_at(records, HEADER).unwrap();
        let end = HEADER + records.len() as u64;
        if close {
            close_segment(&f, n, end).unwrap();
        }
        end
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let b = batch("p1");
        let mut buf = Vec::new();
        encode(&[&b], Some(b"entry"), 1, &mut buf);
        encode(&[&b], None, 1, &mut buf);
        let whole = buf.len();
        encode(&[&b], None, 1, &mut buf);
        // The third record is cut off: only its first bytes reached the disk.
        segment(dir.path(), 1, &buf[..whole + 20], false);
        let got = read_all(dir.path(), &[1]).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].batch.ops.len(), 2, "preconditions are not logged");
        assert_eq!(got[0].journal.as_deref(), Some(&b"entry"[..]));
        assert_eq!(got[1].journal, None);

        // The same damage in an older segment is refused, though segment 2 is fine.
        let mut two = Vec::new();
        encode(&[&b], None, 2, &mut two);
        segment(dir.path(), 2, &two, false);
        let err = read_all(dir.path(), &[1, 2]).err().unwrap();
        assert!(err.contains("damaged at byte"), "{err}");
    }

    #[test]
    fn an_older_segment_must_have_been_closed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut one, mut two) = (Vec::new(), Vec::new());
        encode(&[&batch("p1")], None, 1, &mut one);
        encode(&[&batch("p2")], None, 2, &mut two);
        segment(dir.path(), 1, &one, false);
        segment(dir.path(), 2, &two, false);
        let err = read_all(dir.path(), &[1, 2]).err().unwrap();
        assert!(err.contains("was not closed"), "{err}");

        // Closed, it is read whole, and the newest segment may stay open.
        let dir = tempfile::tempdir().unwrap();
        segment(dir.path(), 1, &one, true);
        segment(dir.path(), 2, &two, false);
        assert_eq!(read_all(dir.path(), &[1, 2]).unwrap().len(), 2);
    }

    #[test]
    fn a_retired_segment_becomes_the_spare_and_its_old_records_are_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = Vec::new();
        for i in 0..5 {
            encode(
                &[&batch(&format!("old{i}"))],
                Some(b"old entry"),
                1,
                &mut old,
            );
        }
        segment(dir.path(), 1, &old, true);
        retire(dir.path(), 1).unwrap();
        assert_eq!(segments(dir.path()).unwrap(), Vec::<u64>::new());

        // Segment 2 reuses the file; one new record overwrites the start of the old ones.
        let mut new = Vec::new();
        encode(&[&batch("new")], None, 2, &mut new);
        assert!(new.len() < old.len());
        segment(dir.path(), 2, &new, false);
        let got = read_all(dir.path(), &[2]).unwrap();
        assert_eq!(got.len(), 1, "only segment 2's own record");
        assert!(got[0].journal.is_none());
        assert!(
            matches!(&got[0].batch.ops[0], Op::Put(_, k, _) if k == b"new"),
            "the new record, not an old one"
        );
        // With a spare already there, a retired segment is removed.
        prepare_spare(dir.path(), 3, 0).unwrap();
        retire(dir.path(), 2).unwrap();
        assert!(!segment_path(dir.path(), 2).exists());
    }

    #[test]
    fn a_spare_is_zero_filled_to_the_size_asked_in_whole_steps() {
        let dir = tempfile::tempdir().unwrap();
        let f = prepare_spare(dir.path(), 7, SPARE_STEP + 1).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 2 * SPARE_STEP);
        install_spare(dir.path(), 7).unwrap();
        assert!(read_all(dir.path(), &[7]).unwrap().is_empty());
    }

    #[test]
    fn segments_written_before_headers_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        // The old layout: [length][crc of payload][payload], appended.
        let mut old = Vec::new();
        for key in ["a", "b"] {
            let mut with_segment = Vec::new();
            encode(&[&batch(key)], Some(b"e"), 0, &mut with_segment);
            let payload = &with_segment[RECORD_HEADER..];
            old.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            old.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
            old.extend_from_slice(payload);
        }
        fs::write(segment_path(dir.path(), 4), &old).unwrap();
        let mut new = Vec::new();
        encode(&[&batch("c")], None, 5, &mut new);
        segment(dir.path(), 5, &new, false);
        let got = read_all(dir.path(), &[4, 5]).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].journal.as_deref(), Some(&b"e"[..]));
        // A headerless segment is never kept as a spare.
        retire(dir.path(), 4).unwrap();
        assert!(!spare_path(dir.path()).exists());
    }
}
