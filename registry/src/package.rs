//! A plugin package (`.osp`): a tar archive holding `plugin.toml`, `plugin.wasm` and, once
//! signed, `signature.json`.
//!
//! The publisher signs `sha256(plugin.toml) "\n" sha256(plugin.wasm) "\n"` (hex) in the
//! package domain: the signature covers the manifest and the component's hash, both fixed-size,
//! so no two packages share a signed message.

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::keys::{Domain, PublicKey, SecretKey};
use crate::meta::sha256_hex;

/// The publisher's signature over a package.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackageSignature {
    pub publisher: String,
    pub key: String,
    pub sig: String,
}

/// The parts of a package.
#[derive(Clone, Debug)]
pub struct Package {
    pub manifest: String,
    pub component: Vec<u8>,
    pub signature: Option<PackageSignature>,
}

const MAX_MANIFEST: u64 = 64 << 10;
const MAX_SIGNATURE: u64 = 4 << 10;
/// The largest component a package may hold.
pub const MAX_COMPONENT: u64 = 64 << 20;

impl Package {
    pub fn read(bytes: &[u8]) -> Result<Package, String> {
        let mut manifest = None;
        let mut component = None;
        let mut signature = None;
        let mut archive = tar::Archive::new(bytes);
        let entries = archive
            .entries()
            .map_err(|e| format!("not a plugin package (.osp): {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("not a plugin package (.osp): {e}"))?;
            let path = entry
                .path()
                .map_err(|e| format!("bad entry name in the package: {e}"))?
                .to_string_lossy()
                .into_owned();
            let (slot, max) = match path.as_str() {
                "plugin.toml" => (&mut manifest, MAX_MANIFEST),
                "plugin.wasm" => (&mut component, MAX_COMPONENT),
                "signature.json" => (&mut signature, MAX_SIGNATURE),
                other => return Err(format!("unexpected file '{other}' in the package")),
            };
            if slot.is_some() {
                return Err(format!("the package holds {path} twice"));
            }
            if entry.size() > max {
                return Err(format!("{path} is larger than {max} bytes"));
            }
            let mut buf = Vec::with_capacity(entry.size() as usize);
            entry
                .by_ref()
                .take(max)
                .read_to_end(&mut buf)
                .map_err(|e| format!("cannot read {path} from the package: {e}"))?;
            *slot = Some(buf);
        }
        let manifest = manifest.ok_or("the package has no plugin.toml")?;
        let component = component.ok_or("the package has no plugin.wasm")?;
        let manifest =
            String::from_utf8(manifest).map_err(|_| "plugin.toml is not UTF-8".to_string())?;
        let signature = signature
            .map(|s| serde_json::from_slice(&s))
            .transpose()
            .map_err(|e| format!("signature.json in the package is malformed: {e}"))?;
        Ok(Package {
            manifest,
            component,
            signature,
        })
    }

    pub fn write(&self) -> std::io::Result<Vec<u8>> {
        let sig = self
            .signature
            .as_ref()
            .map(|s| serde_json::to_vec_pretty(s).expect("serialises"));
        let mut b = tar::Builder::new(Vec::new());
        let mut files = vec![
            ("plugin.toml", self.manifest.as_bytes()),
            ("plugin.wasm", self.component.as_slice()),
        ];
        if let Some(sig) = &sig {
            files.push(("signature.json", sig));
        }
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, name, data)?;
        }
        b.into_inner()
    }

    /// The message a publisher signs.
    fn signed_message(&self) -> Vec<u8> {
        format!(
            "{}\n{}\n",
            sha256_hex(self.manifest.as_bytes()),
            sha256_hex(&self.component)
        )
        .into_bytes()
    }

    /// Sign as `publisher` with `key` (replacing any earlier signature).
    pub fn sign(&mut self, publisher: &str, key: &SecretKey) {
        let sig = key.sign(Domain::Package, &self.signed_message());
        self.signature = Some(PackageSignature {
            publisher: publisher.to_string(),
            key: key.public().to_string(),
            sig,
        });
    }

    /// Check the signature against the keys the registry delegates to its publisher; the key
    /// that signed.
    pub fn verify(&self, id: &str, allowed: &[PublicKey]) -> Result<PublicKey, Error> {
        let sig = self
            .signature
            .as_ref()
            .ok_or_else(|| Error::Package(format!("the package of '{id}' is not signed")))?;
        let key = PublicKey::parse(&sig.key)?;
        if !allowed.contains(&key) {
            return Err(Error::NotDelegated {
                id: id.to_string(),
                key: key.to_string(),
                publisher: sig.publisher.clone(),
            });
        }
        if !key.verify(Domain::Package, &self.signed_message(), &sig.sig) {
            return Err(Error::Package(format!(
                "the publisher's signature on the package of '{id}' does not match its \
                 contents (the package was altered, or signed wrongly)"
            )));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg() -> Package {
        Package {
            manifest: "id = \"x\"".into(),
            component: vec![0, 97, 115, 109],
            signature: None,
        }
    }

    #[test]
    fn a_package_round_trips_and_strays_are_refused() {
        let p = pkg();
        let bytes = p.write().unwrap();
        let q = Package::read(&bytes).unwrap();
        assert_eq!(q.manifest, p.manifest);
        assert_eq!(q.component, p.component);
        assert!(q.signature.is_none());
        assert!(Package::read(b"hello").is_err());
    }

    #[test]
    fn a_signature_covers_manifest_and_component() {
        let k = SecretKey::generate().unwrap();
        let mut p = pkg();
        p.sign("Acme", &k);
        let p = Package::read(&p.write().unwrap()).unwrap();
        assert_eq!(p.verify("x", &[k.public()]).unwrap(), k.public());

        let other = SecretKey::generate().unwrap();
        assert!(matches!(
            p.verify("x", &[other.public()]),
            Err(Error::NotDelegated { .. })
        ));
        let mut changed = p.clone();
        changed.component.push(0);
        assert!(matches!(
            changed.verify("x", &[k.public()]),
            Err(Error::Package(_))
        ));
        let mut changed = p.clone();
        changed.manifest.push(' ');
        assert!(changed.verify("x", &[k.public()]).is_err());
    }
}
