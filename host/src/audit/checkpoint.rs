//! Signed checkpoints: what anchors the audit chain's head, so that cutting entries off the end
//! of the log, emptying it, or rewriting it with fresh hashes is caught by anyone holding the
//! public key — offline, from the log and the checkpoints alone.
//!
//! A checkpoint is one JSON line in `audit/checkpoints.log`:
//! `{"entries":N,"head":"<hash of entry N>","time":…,"key":"ed25519:…","signature":…}`, the
//! signature (ed25519, over `osler:audit-checkpoint:v1\n` + `N\nhead\ntime`) made with the host's
//! checkpoint key. The host writes one every `checkpoint_every` entries, at least every
//! `checkpoint_seconds` while entries are being added, and whenever it lets go of the data
//! directory (a clean stop, the end of a command). Only entries already durable in the log file
//! are signed.
//!
//! The key is generated when a data directory is created (or, for a directory from before
//! checkpoints, the first time a new Osler opens it, which the trail records): the private half
//! in `keys/audit-checkpoint.pem` (mode 0600), the public half printed and kept in
//! `keys/audit-checkpoint.pub`, apart from the log. A clinic keeps a copy of the public key
//! somewhere the data directory's owner cannot change (`[audit] public_key` in an `osler.toml`
//! kept elsewhere, or on paper) and verifies against it.
//!
//! Whoever controls the data directory also holds the private key and could re-sign a
//! rewritten log. Against that, each checkpoint can also be sent to a second place the clinic
//! configures (`[audit] checkpoint_copy`: a file on another disk or machine, or an http(s)
//! endpoint that receives each checkpoint as a JSON POST): checkpoints already there cannot be
//! taken back, and `osler audit verify --checkpoints <copy>` checks the log against them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use osler_registry::{Domain, PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AuditError;

/// How the audit trail is anchored (`[audit]` in `osler.toml`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Entries between two signed checkpoints (one is also signed at every stop).
    pub checkpoint_every: u64,
    /// While entries are being added, at most this many seconds between two checkpoints.
    pub checkpoint_seconds: u64,
    /// The public checkpoint key, `ed25519:…`, as `osler init` printed it. When set, the server
    /// refuses to start with another key, and `osler audit verify` checks against it.
    pub public_key: Option<String>,
    /// A second place every checkpoint is written to: a file path, or an `http(s)://` URL that
    /// receives each checkpoint as a JSON POST (any 2xx answer counts as delivered).
    pub checkpoint_copy: Option<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            checkpoint_seconds: 60,
            public_key: None,
            checkpoint_copy: None,
        }
    }
}

/// One signed checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// How many entries the log held: the head is entry number `entries`.
    pub entries: u64,
    /// The hash of entry number `entries` (the chain's genesis value for 0).
    pub head: String,
    /// When it was signed (RFC 3339, UTC).
    pub time: String,
    /// The key that signed it, `ed25519:…`.
    pub key: String,
    /// ed25519 signature, hex.
    pub signature: String,
}

impl Checkpoint {
    fn message(entries: u64, head: &str, time: &str) -> Vec<u8> {
        format!("{entries}\n{head}\n{time}").into_bytes()
    }

    pub fn sign(key: &SecretKey, entries: u64, head: &str) -> Checkpoint {
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format time");
        Checkpoint {
            entries,
            head: head.to_string(),
            signature: key.sign(
                Domain::AuditCheckpoint,
                &Self::message(entries, head, &time),
            ),
            key: key.public().to_string(),
            time,
        }
    }

    /// Whether `key` signed this checkpoint (strict ed25519 verification).
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        key.verify(
            Domain::AuditCheckpoint,
            &Self::message(self.entries, &self.head, &self.time),
            &self.signature,
        )
    }

    pub fn line(&self) -> Vec<u8> {
        let mut l = serde_json::to_vec(self).expect("checkpoints serialise");
        l.push(b'\n');
        l
    }
}

pub fn checkpoints_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("checkpoints.log")
}

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("audit-checkpoint.pem")
}

pub fn public_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("audit-checkpoint.pub")
}

/// A line of a checkpoints file that is not a checkpoint.
#[derive(Debug)]
pub struct BadLine {
    pub line: usize,
    pub problem: String,
}

/// Read a checkpoints file (missing: none). Lines that are not checkpoints are returned apart,
/// so that a verifier can report them. A last line without its newline is a checkpoint still
/// being written (or cut off by a crash before it counted) and is left out.
pub fn read(path: &Path) -> std::io::Result<(Vec<Checkpoint>, Vec<BadLine>)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], vec![])),
        Err(e) => return Err(e),
    };
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &bytes[..0],
    };
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (i, line) in complete.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Checkpoint>(line) {
            Ok(c) => good.push(c),
            Err(e) => bad.push(BadLine {
                line: i + 1,
                problem: format!("not a checkpoint ({e})"),
            }),
        }
    }
    Ok((good, bad))
}

/// The host's checkpoint key, loaded or (for a new or older data directory) created.
pub struct KeyPair {
    pub secret: SecretKey,
    pub public: PublicKey,
    /// Whether it was created just now.
    pub created: bool,
}

/// Load the checkpoint key of `data_dir`, creating it if the directory has none and no
/// checkpoints either. Refuses a key that differs from `expected` or from the key that
/// signed the existing checkpoints, and checkpoints whose key file is gone.
pub fn load_or_create_key(
    data_dir: &Path,
    expected: Option<&PublicKey>,
) -> Result<KeyPair, AuditError> {
    let key = key_path(data_dir);
    let (existing, _) = read(&checkpoints_path(data_dir))?;
    let last_key = existing.last().map(|c| c.key.clone());
    let corrupt = |m: String| AuditError::Corrupt(m);
    let pair = if key.exists() {
        let secret = SecretKey::load(&key).map_err(|e| corrupt(e.to_string()))?;
        let public = secret.public();
        KeyPair {
            secret,
            public,
            created: false,
        }
    } else {
        if let Some(k) = &last_key {
            return Err(corrupt(format!(
                "the audit checkpoints in {} were signed by {k}, but the signing key {} is \
                 missing. Restore it from a backup. (To start a new key instead, move \
                 checkpoints.log aside and keep it: Osler then creates a key and records that it \
                 did in the audit trail; the old checkpoints stay verifiable with {k}.)",
                checkpoints_path(data_dir).display(),
                key.display()
            )));
        }
        std::fs::create_dir_all(key.parent().expect("has a parent"))?;
        let secret = SecretKey::generate().map_err(|e| corrupt(e.to_string()))?;
        secret.write_new(&key).map_err(|e| corrupt(e.to_string()))?;
        let public = secret.public();
        let pub_path = public_key_path(data_dir);
        std::fs::write(&pub_path, format!("{public}\n"))?;
        File::open(&pub_path)?.sync_all()?;
        crate::storage::wal::sync_dir(key.parent().expect("has a parent"))?;
        KeyPair {
            secret,
            public,
            created: true,
        }
    };
    if let Some(want) = expected
        && *want != pair.public
    {
        return Err(corrupt(format!(
            "the audit checkpoint key in {} is {}, not {want} as [audit] public_key says; \
             someone replaced it, or osler.toml belongs to another clinic",
            key.display(),
            pair.public
        )));
    }
    if let Some(k) = last_key
        && k != pair.public.to_string()
    {
        return Err(corrupt(format!(
            "the audit checkpoint key in {} is {}, but the last checkpoint was signed by {k}; \
             the key has been replaced. Restore the original key from a backup.",
            key.display(),
            pair.public
        )));
    }
    Ok(pair)
}

/// Signs checkpoints for a running host and sends them to the second location.
pub struct Anchor {
    key: SecretKey,
    file: Mutex<File>,
    signed: Mutex<Signed>,
    every: u64,
    interval: Duration,
    copy: Option<Copier>,
}

struct Signed {
    entries: u64,
    at: Instant,
}

impl Anchor {
    /// `last`: the entry count of the last checkpoint signed (0 if none).
    pub fn new(
        data_dir: &Path,
        key: SecretKey,
        config: &AuditConfig,
        last: u64,
    ) -> Result<Anchor, AuditError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(checkpoints_path(data_dir))?;
        let copy = match config.checkpoint_copy.as_deref() {
            None | Some("") => None,
            Some(dest) => Some(Copier::start(Destination::parse(dest, data_dir)?)),
        };
        Ok(Anchor {
            key,
            file: Mutex::new(file),
            signed: Mutex::new(Signed {
                entries: last,
                at: Instant::now(),
            }),
            every: config.checkpoint_every.max(1),
            interval: Duration::from_secs(config.checkpoint_seconds.max(1)),
            copy,
        })
    }

    pub fn public(&self) -> PublicKey {
        self.key.public()
    }

    /// Whether a checkpoint of a log holding `entries` entries is due.
    pub fn due(&self, entries: u64, closing: bool) -> bool {
        let s = self.signed.lock().expect("anchor lock");
        entries > s.entries
            && (closing || entries - s.entries >= self.every || s.at.elapsed() >= self.interval)
    }

    /// Sign and durably append a checkpoint of `entries` entries ending in `head` (which the
    /// caller has made durable), and hand it to the second location.
    pub fn sign(&self, entries: u64, head: &str) -> Result<Checkpoint, AuditError> {
        let c = Checkpoint::sign(&self.key, entries, head);
        {
            let mut f = self.file.lock().expect("anchor file lock");
            f.write_all(&c.line())?;
            f.sync_data()?;
        }
        *self.signed.lock().expect("anchor lock") = Signed {
            entries,
            at: Instant::now(),
        };
        if let Some(copy) = &self.copy {
            copy.send(c.clone());
        }
        Ok(c)
    }

    /// The process is letting go of the data directory: deliver the last checkpoint to the
    /// second location if it can be done in a few seconds.
    pub fn close(&self) {
        if let Some(copy) = &self.copy {
            copy.finish(Duration::from_secs(10));
        }
    }
}

/// Where checkpoints are copied to.
#[derive(Clone, Debug)]
enum Destination {
    File(PathBuf),
    Http(String),
}

impl Destination {
    fn parse(s: &str, data_dir: &Path) -> Result<Destination, AuditError> {
        if s.starts_with("http://") || s.starts_with("https://") {
            return Ok(Destination::Http(s.to_string()));
        }
        let p = PathBuf::from(s);
        if p.starts_with(data_dir) {
            return Err(AuditError::Corrupt(format!(
                "[audit] checkpoint_copy = {s} is inside the data directory; the copy is only \
                 worth having somewhere else (another disk, another machine)"
            )));
        }
        Ok(Destination::File(p))
    }

    fn deliver(&self, c: &Checkpoint, rt: &tokio::runtime::Runtime) -> Result<(), String> {
        match self {
            Destination::File(p) => OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .and_then(|mut f| {
                    f.write_all(&c.line())?;
                    f.sync_data()
                })
                .map_err(|e| format!("cannot append to {}: {e}", p.display())),
            Destination::Http(url) => rt.block_on(async {
                let res = reqwest::Client::new()
                    .post(url)
                    .timeout(Duration::from_secs(10))
                    .json(c)
                    .send()
                    .await
                    .map_err(|e| format!("cannot reach {url}: {e}"))?;
                if res.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("{url} answered {}", res.status()))
                }
            }),
        }
    }
}

/// A thread that sends the newest checkpoint to the second location, retrying until it is
/// delivered. Each checkpoint covers everything before it, so only the newest matters.
struct Copier {
    shared: Arc<(Mutex<CopyState>, Condvar)>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct CopyState {
    pending: Option<Checkpoint>,
    stop: bool,
}

impl Copier {
    fn start(dest: Destination) -> Copier {
        let shared = Arc::new((Mutex::new(CopyState::default()), Condvar::new()));
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("osler-audit-copy".into())
            .spawn(move || copy_loop(dest, s))
            .expect("spawn the checkpoint copier");
        Copier {
            shared,
            thread: Mutex::new(Some(thread)),
        }
    }

    fn send(&self, c: Checkpoint) {
        let (lock, cv) = &*self.shared;
        lock.lock().expect("copy lock").pending = Some(c);
        cv.notify_all();
    }

    fn finish(&self, within: Duration) {
        let (lock, cv) = &*self.shared;
        lock.lock().expect("copy lock").stop = true;
        cv.notify_all();
        if let Some(t) = self.thread.lock().expect("copy thread").take() {
            let deadline = Instant::now() + within;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                tracing::warn!("the last audit checkpoint could not be copied in time");
            }
        }
    }
}

fn copy_loop(dest: Destination, shared: Arc<(Mutex<CopyState>, Condvar)>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the audit checkpoint copier");
            return;
        }
    };
    let (lock, cv) = &*shared;
    let mut failing = false;
    loop {
        let (c, stop) = {
            let mut st = lock.lock().expect("copy lock");
            while st.pending.is_none() && !st.stop {
                st = cv.wait(st).expect("copy lock");
            }
            (st.pending.clone(), st.stop)
        };
        if let Some(c) = c {
            match dest.deliver(&c, &rt) {
                Ok(()) => {
                    if failing {
                        tracing::info!("audit checkpoints reach their second location again");
                        failing = false;
                    }
                    let mut st = lock.lock().expect("copy lock");
                    if st.pending.as_ref() == Some(&c) {
                        st.pending = None;
                    }
                }
                Err(e) => {
                    // Logged without the checkpoint itself (no patient data in it, but no need).
                    tracing::warn!(error = %e, "cannot copy an audit checkpoint; will retry");
                    failing = true;
                    if stop {
                        return;
                    }
                    let st = lock.lock().expect("copy lock");
                    let _ = cv
                        .wait_timeout_while(st, Duration::from_secs(30), |s| !s.stop)
                        .expect("copy lock");
                    continue;
                }
            }
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_bound_to_its_key_count_and_head() {
        let k = SecretKey::generate().unwrap();
        let c = Checkpoint::sign(&k, 7, "ab");
        assert!(c.signed_by(&k.public()));
        let other = SecretKey::generate().unwrap();
        assert!(!c.signed_by(&other.public()));
        let mut moved = c.clone();
        moved.entries = 6;
        assert!(!moved.signed_by(&k.public()));
        let mut rehead = c.clone();
        rehead.head = "ac".into();
        assert!(!rehead.signed_by(&k.public()));
    }

    #[test]
    fn a_missing_key_with_checkpoints_is_refused_and_a_replaced_one_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("audit")).unwrap();
        let first = load_or_create_key(dir.path(), None).unwrap();
        assert!(first.created);
        let c = Checkpoint::sign(&first.secret, 0, super::super::GENESIS);
        std::fs::write(checkpoints_path(dir.path()), c.line()).unwrap();
        let again = load_or_create_key(dir.path(), None).unwrap();
        assert!(!again.created);
        assert_eq!(again.public, first.public);
        let other = SecretKey::generate().unwrap().public();
        let e = load_or_create_key(dir.path(), Some(&other)).err().unwrap();
        assert!(e.to_string().contains("public_key"), "{e}");

        std::fs::remove_file(key_path(dir.path())).unwrap();
        let e = load_or_create_key(dir.path(), None).err().unwrap();
        assert!(e.to_string().contains("missing"), "{e}");
        SecretKey::generate()
            .unwrap()
            .write_new(&key_path(dir.path()))
            .unwrap();
        let e = load_or_create_key(dir.path(), None).err().unwrap();
        assert!(e.to_string().contains("replaced"), "{e}");
    }
}
