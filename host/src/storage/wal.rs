//! The write-ahead log: what makes a write durable.
//!
//! Every batch the backend applies is also appended here (its puts and deletes, in the order
//! they were applied), and a write is acknowledged once its record has been `fdatasync`ed. The
//! backend's own files are made durable only at checkpoints; after a crash, the log records
//! since the last checkpoint are applied again. Re-applying is safe because records hold whole
//! values in apply order: replaying a suffix of the history over a state that already contains
//! part of it ends in the same state.
//!
//! Layout: `wal/<segment>.log`, segments numbered upwards. A record is
//! `[payload length u32 LE][crc32 of payload u32 LE][payload]`; the payload is a sequence of
//! `[1=put | 2=delete][tree u8][key length u32 LE][key]([value length u32 LE][value])`, and at
//! most one `[3][entry length u32 LE][entry]`: the journal (audit) entry of the change.
//! A record cut off at the end of the newest segment (a crash mid-write, so never acknowledged)
//! is dropped; damage anywhere else is refused.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{Batch, Op, Tree};

const PUT: u8 = 1;
const DELETE: u8 = 2;
const JOURNAL: u8 = 3;

/// One record: a batch and the journal entry describing it.
pub struct Record {
    pub batch: Batch,
    pub journal: Option<Vec<u8>>,
}

/// Append the mutations of some batches, and a journal entry, to `buf` as one record (applied
/// whole, in order).
pub fn encode(batches: &[&Batch], journal: Option<&[u8]>, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 8]);
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
    let payload_len = (buf.len() - start - 8) as u32;
    let crc = crc32fast::hash(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn decode(payload: &[u8]) -> Option<Record> {
    let mut b = Batch::new();
    let mut journal = None;
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let s = payload.get(*at..*at + n)?;
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

/// Read every record of the given segments, in order. A torn record at the very end of the
/// last segment ends the log; anything else unreadable is an error naming the segment.
pub fn read_all(dir: &Path, segs: &[u64]) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    for (i, n) in segs.iter().enumerate() {
        let path = segment_path(dir, *n);
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let last = i + 1 == segs.len();
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
                None if last => {
                    tracing::warn!(
                        segment = n,
                        bytes = bytes.len() - at,
                        "dropping an incomplete final write-ahead record (never acknowledged)"
                    );
                    break;
                }
                None => {
                    return Err(format!(
                        "the write-ahead log segment {} is damaged at byte {at}; restore the \
                         data directory from a backup",
                        path.display()
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Create (and make durable the existence of) a new, empty segment.
pub fn create_segment(dir: &Path, n: u64) -> io::Result<File> {
    let f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(segment_path(dir, n))?;
    sync_dir(dir)?;
    Ok(f)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Batch::new();
        b.put(Tree::Patients, "p1", "{}");
        b.delete(Tree::PatientNames, "x");
        b.expect(Tree::Patients, "p1", None);
        let mut buf = Vec::new();
        encode(&[&b], Some(b"entry"), &mut buf);
        encode(&[&b], None, &mut buf);
        let mut f = create_segment(dir.path(), 1).unwrap();
        f.write_all(&buf).unwrap();
        f.write_all(&buf[..5]).unwrap();
        let got = read_all(dir.path(), &[1]).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].batch.ops.len(), 2, "preconditions are not logged");
        assert_eq!(got[0].journal.as_deref(), Some(&b"entry"[..]));
        assert_eq!(got[1].journal, None);

        // The same damage in an older segment is refused.
        let mut f2 = create_segment(dir.path(), 2).unwrap();
        f2.write_all(&buf).unwrap();
        assert!(read_all(dir.path(), &[1, 2]).is_err());
    }
}
