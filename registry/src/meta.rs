//! The registry's signed metadata, in the spirit of The Update Framework (TUF).
//!
//! - `root`: the keys and thresholds of every role; pinned by clinics, rotated only with
//!   signatures of both the old and the new root keys (`<n>.root.json` files form the chain).
//! - `targets`: the publishers, their keys, the plugin ids each may publish and the interface
//!   packages each owns, i.e. whose interfaces its plugins may export (delegation).
//! - `index/<id>`: one file per plugin: its versions, hashes, lengths, capabilities, yanks.
//!   Signed by the targets role; the package files themselves carry the publisher's signature.
//! - `snapshot`: the version and hash of targets and every index, so an old index cannot be
//!   mixed with a new view.
//! - `timestamp`: the hash of the current snapshot, with a short expiry, so a frozen view is
//!   noticed.
//!
//! A signed file is `{"signed": {…}, "signatures": [{"keyid", "sig"}]}`; signatures cover the
//! exact bytes of `signed` as they appear in the file, so nothing depends on re-serialising.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::Error;
use crate::keys::{Domain, PublicKey, SecretKey};

#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    signed: &'a RawValue,
    signatures: Vec<Sig>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sig {
    pub keyid: String,
    pub sig: String,
}

/// The roles of a registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Root,
    Targets,
    Snapshot,
    Timestamp,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Root, Role::Targets, Role::Snapshot, Role::Timestamp];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoleKeys {
    pub keyids: Vec<String>,
    pub threshold: u32,
}

/// Every metadata document has a kind, a version that only grows, and an expiry.
pub trait Document: Serialize + DeserializeOwned {
    const KIND: &'static str;
    const DOMAIN: Domain;
    fn version(&self) -> u64;
    fn expires(&self) -> OffsetDateTime;
}

macro_rules! document {
    ($t:ty, $kind:literal, $domain:expr) => {
        impl Document for $t {
            const KIND: &'static str = $kind;
            const DOMAIN: Domain = $domain;
            fn version(&self) -> u64 {
                self.version
            }
            fn expires(&self) -> OffsetDateTime {
                self.expires
            }
        }
    };
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Root {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Key id → public key.
    pub keys: BTreeMap<String, String>,
    pub roles: BTreeMap<Role, RoleKeys>,
}
document!(Root, "root", Domain::Root);

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    /// Public keys that may sign this publisher's packages.
    pub keys: Vec<String>,
    /// Plugin ids this publisher may publish; `prefix-*` covers every id with that prefix.
    pub plugins: Vec<String>,
    /// Interface packages whose interfaces this publisher's plugins may export: `ns:pkg`
    /// (`osler:drugref` covers `osler:drugref/lookup`), or `ns:*` for every package of a
    /// namespace. Absent when none, so registries without interface delegations keep the
    /// layout older hosts read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
}

impl Publisher {
    pub fn may_publish(&self, id: &str) -> bool {
        self.plugins.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => p == id,
        })
    }

    /// Whether this publisher's plugins may export `interface` (`ns:pkg/name`): its package
    /// is delegated to the publisher, and is not one of the host's own. Whatever the
    /// metadata says, `osler:plugin` and `wasi:*` are never anyone's.
    pub fn may_export(&self, interface: &str) -> bool {
        let Some((ns, pkg)) = interface_package(interface) else {
            return false;
        };
        if reserved(ns, pkg) {
            return false;
        }
        self.interfaces.iter().any(|d| match d.split_once(':') {
            Some((dns, "*")) => dns == ns,
            Some((dns, dpkg)) => dns == ns && dpkg == pkg,
            None => false,
        })
    }

    /// The first of `exports` (interface names) this publisher may not export.
    pub fn first_unowned<'a>(
        &self,
        exports: impl IntoIterator<Item = &'a String>,
    ) -> Option<&'a String> {
        exports.into_iter().find(|i| !self.may_export(i))
    }
}

/// The host's own interface packages, which no publisher can own: its API (`osler:plugin`)
/// and WASI.
fn reserved(ns: &str, pkg: &str) -> bool {
    ns == "wasi" || (ns == "osler" && pkg == "plugin")
}

/// Lowercase words joined by '-' (the WIT identifiers plugin manifests use).
fn kebab(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// `ns:pkg/name` (no version) → (`ns`, `pkg`); `None` for anything else.
pub fn interface_package(interface: &str) -> Option<(&str, &str)> {
    let (package, name) = interface.split_once('/')?;
    let (ns, pkg) = package.split_once(':')?;
    (kebab(ns) && kebab(pkg) && kebab(name)).then_some((ns, pkg))
}

/// Check one interface delegation as an operator writes it: `ns:pkg` or `ns:*`, never
/// covering the host's own packages.
pub fn check_interface_delegation(d: &str) -> Result<(), String> {
    let Some((ns, pkg)) = d.split_once(':') else {
        return Err(format!(
            "'{d}' is not an interface package: write `namespace:package` (e.g. \
             `acme:forms`) or `namespace:*`"
        ));
    };
    if !kebab(ns) || !(pkg == "*" || kebab(pkg)) {
        return Err(format!(
            "'{d}' is not an interface package: write `namespace:package` (e.g. \
             `acme:forms`) or `namespace:*`, in lowercase words joined by '-', without an \
             interface name or version"
        ));
    }
    if ns == "wasi" {
        return Err(format!(
            "'{d}' would cover WASI's interfaces, which belong to the host; no publisher can \
             own them"
        ));
    }
    if ns == "osler" && (pkg == "plugin" || pkg == "*") {
        return Err(format!(
            "'{d}' would cover osler:plugin, the host's own interfaces, which no publisher can \
             own{}",
            if pkg == "*" {
                "; delegate `osler:` packages one by one (e.g. `osler:drugref`)"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Publisher name → its keys and plugin ids.
    pub publishers: BTreeMap<String, Publisher>,
}
document!(Targets, "targets", Domain::Targets);

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetaRef {
    pub version: u64,
    pub sha256: String,
    pub length: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// `targets.json` and `index/<id>.json` → version, hash and length.
    pub meta: BTreeMap<String, MetaRef>,
}
document!(Snapshot, "snapshot", Domain::Snapshot);

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Timestamp {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    pub snapshot: MetaRef,
}
document!(Timestamp, "timestamp", Domain::Timestamp);

/// One published version of a plugin.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub version: semver::Version,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub publisher: String,
    /// Id of the publisher key that signed the package.
    pub keyid: String,
    /// The package file, relative to the registry's root.
    pub path: String,
    pub sha256: String,
    pub length: u64,
    /// The host API versions it works with (a semver requirement).
    pub api: String,
    pub capabilities: BTreeSet<String>,
    #[serde(default)]
    pub exports: BTreeMap<String, String>,
    #[serde(default)]
    pub imports: BTreeMap<String, String>,
    #[serde(default)]
    pub yanked: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub published: OffsetDateTime,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Index {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    pub releases: Vec<Release>,
}
document!(Index, "index", Domain::Index);

/// Serialise and sign a document with `keys`.
pub fn sign<D: Document>(doc: &D, keys: &[&SecretKey]) -> Vec<u8> {
    let signed = serde_json::to_string_pretty(doc).expect("metadata serialises");
    let raw = RawValue::from_string(signed).expect("valid JSON");
    let signatures = keys
        .iter()
        .map(|k| Sig {
            keyid: k.public().id(),
            sig: k.sign(D::DOMAIN, raw.get().as_bytes()),
        })
        .collect();
    let mut out = serde_json::to_vec_pretty(&Envelope {
        signed: &raw,
        signatures,
    })
    .expect("envelope serialises");
    out.push(b'\n');
    out
}

/// Parse a signed file without checking anything (for tools that re-sign their own files).
pub fn parse_unverified<D: Document>(bytes: &[u8], what: &str) -> Result<D, Error> {
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| Error::Malformed(format!("{what}: {e}")))?;
    let doc: D = serde_json::from_str(env.signed.get())
        .map_err(|e| Error::Malformed(format!("{what}: {e}")))?;
    if doc_kind(env.signed.get()).as_deref() != Some(D::KIND) {
        return Err(Error::Malformed(format!(
            "{what} is not {} metadata",
            D::KIND
        )));
    }
    Ok(doc)
}

fn doc_kind(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct K {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<K>(json).ok().map(|k| k.kind)
}

/// Parse a signed file and check that at least the role's threshold of its keys signed it.
pub fn verify<D: Document>(bytes: &[u8], what: &str, root: &Root, role: Role) -> Result<D, Error> {
    let keys = root.roles.get(&role).ok_or_else(|| {
        Error::Malformed(format!(
            "the root metadata defines no {} role",
            role.as_str()
        ))
    })?;
    verify_with(bytes, what, &root.keys, keys, role.as_str())
}

/// As `verify`, with the keys given directly (used for root's own chain).
pub fn verify_with<D: Document>(
    bytes: &[u8],
    what: &str,
    keys: &BTreeMap<String, String>,
    role: &RoleKeys,
    role_name: &str,
) -> Result<D, Error> {
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| Error::Malformed(format!("{what}: {e}")))?;
    let signed = env.signed.get().as_bytes();
    let mut good = BTreeSet::new();
    for s in &env.signatures {
        if !role.keyids.contains(&s.keyid) || good.contains(&s.keyid) {
            continue;
        }
        let Some(pk) = keys.get(&s.keyid) else {
            continue;
        };
        let pk = PublicKey::parse(pk)?;
        // The id must be the key's own, or one key could be counted under two ids.
        if pk.id() == s.keyid && pk.verify(D::DOMAIN, signed, &s.sig) {
            good.insert(s.keyid.clone());
        }
    }
    if role.threshold == 0 || (good.len() as u32) < role.threshold {
        return Err(Error::Signature {
            what: what.to_string(),
            role: role_name.to_string(),
            valid: good.len() as u32,
            threshold: role.threshold,
        });
    }
    let doc: D =
        serde_json::from_slice(signed).map_err(|e| Error::Malformed(format!("{what}: {e}")))?;
    if doc_kind(env.signed.get()).as_deref() != Some(D::KIND) {
        return Err(Error::Malformed(format!(
            "{what} is not {} metadata",
            D::KIND
        )));
    }
    Ok(doc)
}

/// Refuse a document that has expired.
pub fn check_fresh<D: Document>(doc: &D, what: &str, now: OffsetDateTime) -> Result<(), Error> {
    if doc.expires() <= now {
        return Err(Error::Expired {
            what: what.to_string(),
            expired: doc
                .expires()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        });
    }
    Ok(())
}

/// Refuse a document older than one already trusted.
pub fn check_not_rolled_back(what: &str, seen: Option<u64>, got: u64) -> Result<(), Error> {
    match seen {
        Some(seen) if got < seen => Err(Error::Rollback {
            what: what.to_string(),
            seen,
            got,
        }),
        _ => Ok(()),
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_for(k: &SecretKey, threshold: u32) -> Root {
        let id = k.public().id();
        Root {
            kind: "root".into(),
            version: 1,
            expires: OffsetDateTime::now_utc() + time::Duration::days(1),
            keys: [(id.clone(), k.public().to_string())].into(),
            roles: Role::ALL
                .iter()
                .map(|r| {
                    (
                        *r,
                        RoleKeys {
                            keyids: vec![id.clone()],
                            threshold,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_signed_document_verifies_and_any_change_breaks_it() {
        let k = SecretKey::generate().unwrap();
        let root = root_for(&k, 1);
        let bytes = sign(&root, &[&k]);
        let back: Root = verify(&bytes, "root.json", &root, Role::Root).unwrap();
        assert_eq!(back, root);
        let text = String::from_utf8(bytes).unwrap();
        let tampered = text.replacen("\"version\": 1", "\"version\": 2", 1);
        let e = verify::<Root>(tampered.as_bytes(), "root.json", &root, Role::Root).unwrap_err();
        assert!(matches!(e, Error::Signature { valid: 0, .. }), "{e}");
    }

    #[test]
    fn a_duplicated_signature_does_not_reach_a_threshold_of_two() {
        let k = SecretKey::generate().unwrap();
        let root = root_for(&k, 2);
        let bytes = sign(&root, &[&k, &k]);
        let e = verify::<Root>(&bytes, "root.json", &root, Role::Root).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Signature {
                    valid: 1,
                    threshold: 2,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn an_export_is_matched_by_its_interface_package_only() {
        let p = Publisher {
            keys: vec![],
            plugins: vec![],
            interfaces: vec!["acme:forms".into(), "beta:*".into()],
        };
        for ok in ["acme:forms/render", "beta:x/y", "beta:forms-2/a-b"] {
            assert!(p.may_export(ok), "{ok}");
        }
        for refused in [
            "acme:forms-extra/render",
            "acme:other/render",
            "acme:forms",
            "acme:forms/render@0.1.0",
            "acme:forms/Render",
            "betamax:x/y",
            "acme:forms/render/more",
            "",
        ] {
            assert!(!p.may_export(refused), "{refused}");
        }
    }

    #[test]
    fn a_document_of_another_kind_is_refused_even_when_signed() {
        let k = SecretKey::generate().unwrap();
        let root = root_for(&k, 1);
        let ts = Timestamp {
            kind: "timestamp".into(),
            version: 1,
            expires: root.expires,
            snapshot: MetaRef {
                version: 1,
                sha256: "00".into(),
                length: 1,
            },
        };
        let bytes = sign(&ts, &[&k]);
        // Signed in the timestamp domain: as a snapshot it fails the signature check.
        assert!(verify::<Snapshot>(&bytes, "snapshot.json", &root, Role::Snapshot).is_err());
    }
}
