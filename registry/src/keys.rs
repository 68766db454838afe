//! Ed25519 keys, and signatures that cannot be replayed across kinds of document.
//!
//! Every signature covers `osler:<domain>:v1\n` followed by the document's exact bytes, so a
//! publisher's package signature can never be presented as, say, a timestamp. Verification
//! uses `verify_strict` (no malleable or small-order signatures) and weak public keys are
//! refused when parsed.

use std::fmt;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::TryRngCore;
use sha2::{Digest, Sha256};

use crate::Error;

/// What a signature is for. The tag is part of every signed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    Root,
    Targets,
    Snapshot,
    Timestamp,
    Index,
    Package,
    /// A clinic host's signed checkpoint of its audit trail (not registry metadata; the host
    /// signs with its own key).
    AuditCheckpoint,
}

impl Domain {
    pub fn tag(self) -> &'static str {
        match self {
            Domain::Root => "root",
            Domain::Targets => "targets",
            Domain::Snapshot => "snapshot",
            Domain::Timestamp => "timestamp",
            Domain::Index => "index",
            Domain::Package => "package",
            Domain::AuditCheckpoint => "audit-checkpoint",
        }
    }

    fn message(self, bytes: &[u8]) -> Vec<u8> {
        let mut m = format!("osler:{}:v1\n", self.tag()).into_bytes();
        m.extend_from_slice(bytes);
        m
    }
}

/// A public key, written `ed25519:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn parse(s: &str) -> Result<PublicKey, Error> {
        let bad = |why: &str| Error::Key(format!("'{s}' is not an Osler public key: {why}"));
        let hex_part = s
            .trim()
            .strip_prefix("ed25519:")
            .ok_or_else(|| bad("it must start with 'ed25519:'"))?;
        let bytes: [u8; 32] = hex::decode(hex_part)
            .map_err(|_| bad("expected 64 hex digits after 'ed25519:'"))?
            .try_into()
            .map_err(|_| bad("expected 64 hex digits after 'ed25519:'"))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a curve point"))?;
        if key.is_weak() {
            return Err(bad("a weak (small-order) key, refused"));
        }
        Ok(PublicKey(key))
    }

    /// The key's id in metadata: the first 16 bytes of the SHA-256 of the key, in hex.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..16])
    }

    /// Check `sig` (hex) over `bytes` in `domain`.
    pub fn verify(&self, domain: Domain, bytes: &[u8], sig: &str) -> bool {
        let Ok(raw) = hex::decode(sig) else {
            return false;
        };
        let Ok(raw) = <[u8; 64]>::try_from(raw.as_slice()) else {
            return false;
        };
        self.0
            .verify_strict(&domain.message(bytes), &Signature::from_bytes(&raw))
            .is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A private signing key, kept in a PKCS#8 PEM file readable only by its owner.
pub struct SecretKey(SigningKey);

impl SecretKey {
    pub fn generate() -> Result<SecretKey, Error> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| Error::Key(format!("the system's random source failed: {e}")))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Sign `bytes` as a document of kind `domain`; the signature in hex.
    pub fn sign(&self, domain: Domain, bytes: &[u8]) -> String {
        hex::encode(self.0.sign(&domain.message(bytes)).to_bytes())
    }

    /// Write a new key file (PKCS#8 PEM, mode 0600). An existing file is never overwritten.
    pub fn write_new(&self, path: &Path) -> Result<(), Error> {
        let pem = self
            .0
            .to_pkcs8_pem(Default::default())
            .map_err(|e| Error::Key(format!("cannot encode the key: {e}")))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Key(format!(
                    "{} already exists; a key file is never overwritten (choose another path)",
                    path.display()
                ))
            } else {
                Error::Key(format!("cannot create {}: {e}", path.display()))
            }
        })?;
        f.write_all(pem.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::Key(format!("cannot write {}: {e}", path.display())))
    }

    /// Read a key file, refusing one that others can read.
    pub fn load(path: &Path) -> Result<SecretKey, Error> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::Key(format!("cannot read the key {}: {e}", path.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(Error::Key(format!(
                    "the key {} is readable by other users; restrict it with: chmod 600 {}",
                    path.display(),
                    path.display()
                )));
            }
        }
        let _ = meta;
        let pem = std::fs::read_to_string(path)
            .map_err(|e| Error::Key(format!("cannot read the key {}: {e}", path.display())))?;
        SigningKey::from_pkcs8_pem(&pem)
            .map(SecretKey)
            .map_err(|e| {
                Error::Key(format!(
                    "{} is not an ed25519 private key in PKCS#8 PEM form: {e}",
                    path.display()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_bound_to_their_domain_and_bytes() {
        let k = SecretKey::generate().unwrap();
        let sig = k.sign(Domain::Timestamp, b"hello");
        let pk = k.public();
        assert!(pk.verify(Domain::Timestamp, b"hello", &sig));
        assert!(!pk.verify(Domain::Snapshot, b"hello", &sig));
        assert!(!pk.verify(Domain::Timestamp, b"hellO", &sig));
        assert!(!pk.verify(Domain::Timestamp, b"hello", "00"));
        assert_eq!(PublicKey::parse(&pk.to_string()).unwrap(), pk);
    }

    #[test]
    fn weak_and_malformed_public_keys_are_refused() {
        // The identity point (small order) encodes as 01 00 … 00.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let e = PublicKey::parse(&format!("ed25519:{}", hex::encode(weak))).unwrap_err();
        assert!(e.to_string().contains("weak"), "{e}");
        assert!(PublicKey::parse("ed25519:abcd").is_err());
        assert!(PublicKey::parse("rsa:00").is_err());
    }

    #[test]
    fn key_files_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let k = SecretKey::generate().unwrap();
        k.write_new(&path).unwrap();
        let back = SecretKey::load(&path).unwrap();
        assert_eq!(back.public(), k.public());
        assert!(k.write_new(&path).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = SecretKey::load(&path).err().unwrap();
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
    }
}
