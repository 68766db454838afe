//! The registry operator's side: a folder of static files and the keys that sign them.
//!
//! ```text
//! <dir>/root.json, <dir>/<n>.root.json   the root chain (clients walk 1, 2, 3 …)
//! <dir>/targets.json                     publishers: their keys, plugin ids and interfaces
//! <dir>/index/<id>.json                  one plugin's releases
//! <dir>/packages/<id>/<id>-<ver>.osp     the signed packages
//! <dir>/snapshot.json, timestamp.json    the consistent, fresh view
//! ```
//!
//! The keys live elsewhere (`<keys>/root.pem`, `targets.pem`, `snapshot.pem`,
//! `timestamp.pem`), each loaded only by the commands that need it, so the root key can stay
//! offline. Every change writes the files it touches first and `timestamp.json` last.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use crate::Error;
use crate::keys::{PublicKey, SecretKey};
use crate::meta::{
    self, Document, Index, MetaRef, Publisher, Release, Role, RoleKeys, Root, Snapshot, Targets,
    Timestamp, sha256_hex,
};
use crate::package::Package;

/// How long each kind of metadata stays valid after it is signed.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub root: Duration,
    pub targets: Duration,
    pub snapshot: Duration,
    pub timestamp: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            root: Duration::days(365),
            targets: Duration::days(365),
            snapshot: Duration::days(7),
            timestamp: Duration::days(1),
        }
    }
}

/// A folder of role keys.
pub struct KeyDir(pub PathBuf);

impl KeyDir {
    pub fn path(&self, role: Role) -> PathBuf {
        self.0.join(format!("{}.pem", role.as_str()))
    }

    pub fn load(&self, role: Role) -> Result<SecretKey, Error> {
        let p = self.path(role);
        if !p.exists() {
            return Err(Error::Key(format!(
                "the {} key {} is missing (keys are created by `osler registry init`)",
                role.as_str(),
                p.display()
            )));
        }
        SecretKey::load(&p)
    }

    /// Create any missing role key.
    pub fn ensure(&self) -> Result<(), Error> {
        create_private_dir(&self.0)?;
        for role in Role::ALL {
            if !self.path(role).exists() {
                SecretKey::generate()?.write_new(&self.path(role))?;
            }
        }
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))
}

/// What the registry records about a package, taken from its (host-validated) manifest.
#[derive(Clone, Debug)]
pub struct ReleaseInfo {
    pub id: String,
    pub version: semver::Version,
    pub name: String,
    pub description: String,
    pub api: String,
    pub capabilities: BTreeSet<String>,
    pub exports: BTreeMap<String, String>,
    pub imports: BTreeMap<String, String>,
}

pub struct Repo {
    dir: PathBuf,
    pub lifetimes: Lifetimes,
}

impl Repo {
    /// Create a registry in `dir` (empty or missing), with keys from `keys` (created there if
    /// missing). The new root's public key is what clinics pin.
    pub fn init(dir: &Path, keys: &KeyDir, lifetimes: Lifetimes) -> Result<(Repo, Root), Error> {
        if dir.join("root.json").exists() {
            return Err(Error::Io(format!(
                "{} already holds a registry (root.json exists)",
                dir.display()
            )));
        }
        keys.ensure()?;
        std::fs::create_dir_all(dir.join("index"))
            .and_then(|_| std::fs::create_dir_all(dir.join("packages")))
            .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        let now = OffsetDateTime::now_utc();
        let mut root_keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        for role in Role::ALL {
            let pk = keys.load(role)?.public();
            root_keys.insert(pk.id(), pk.to_string());
            roles.insert(
                role,
                RoleKeys {
                    keyids: vec![pk.id()],
                    threshold: 1,
                },
            );
        }
        let root = Root {
            kind: "root".into(),
            version: 1,
            expires: now + lifetimes.root,
            keys: root_keys,
            roles,
        };
        let repo = Repo {
            dir: dir.to_path_buf(),
            lifetimes,
        };
        let bytes = meta::sign(&root, &[&keys.load(Role::Root)?]);
        repo.write("1.root.json", &bytes)?;
        repo.write("root.json", &bytes)?;
        let targets = Targets {
            kind: "targets".into(),
            version: 1,
            expires: now + lifetimes.targets,
            publishers: BTreeMap::new(),
        };
        repo.write(
            "targets.json",
            &meta::sign(&targets, &[&keys.load(Role::Targets)?]),
        )?;
        repo.refresh(keys)?;
        Ok((repo, root))
    }

    pub fn open(dir: &Path) -> Result<Repo, Error> {
        if !dir.join("root.json").exists() {
            return Err(Error::Io(format!(
                "{} is not a registry (no root.json); create one with `osler registry init`",
                dir.display()
            )));
        }
        Ok(Repo {
            dir: dir.to_path_buf(),
            lifetimes: Lifetimes::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read<D: Document>(&self, name: &str) -> Result<D, Error> {
        let bytes = std::fs::read(self.dir.join(name))
            .map_err(|e| Error::Io(format!("cannot read {name}: {e}")))?;
        meta::parse_unverified(&bytes, name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Io(format!("cannot create {}: {e}", parent.display())))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))
    }

    pub fn root(&self) -> Result<Root, Error> {
        self.read("root.json")
    }

    pub fn targets(&self) -> Result<Targets, Error> {
        self.read("targets.json")
    }

    pub fn index(&self, id: &str) -> Result<Option<Index>, Error> {
        let name = format!("index/{id}.json");
        if !self.dir.join(&name).exists() {
            return Ok(None);
        }
        self.read(&name).map(Some)
    }

    /// Delegate `plugins` (ids, or `prefix-*`) and `interfaces` (interface packages
    /// `ns:pkg`, or `ns:*`) to a publisher's key; adds to an existing publisher. The host's
    /// own packages (`osler:plugin`, `wasi:*`) are refused.
    pub fn add_publisher(
        &self,
        keys: &KeyDir,
        name: &str,
        key: &PublicKey,
        plugins: &[String],
        interfaces: &[String],
    ) -> Result<(), Error> {
        if name.trim().is_empty() || (plugins.is_empty() && interfaces.is_empty()) {
            return Err(Error::Invalid(
                "a publisher needs a name and at least one plugin id (or prefix-*) or interface \
                 package (namespace:package, or namespace:*)"
                    .into(),
            ));
        }
        for d in interfaces {
            meta::check_interface_delegation(d).map_err(Error::Invalid)?;
        }
        let mut targets = self.targets()?;
        let p = targets
            .publishers
            .entry(name.to_string())
            .or_insert_with(|| Publisher {
                keys: vec![],
                plugins: vec![],
                interfaces: vec![],
            });
        if !p.keys.contains(&key.to_string()) {
            p.keys.push(key.to_string());
        }
        for id in plugins {
            if !p.plugins.contains(id) {
                p.plugins.push(id.clone());
            }
        }
        for d in interfaces {
            if !p.interfaces.contains(d) {
                p.interfaces.push(d.clone());
            }
        }
        targets.version += 1;
        targets.expires = OffsetDateTime::now_utc() + self.lifetimes.targets;
        self.write(
            "targets.json",
            &meta::sign(&targets, &[&keys.load(Role::Targets)?]),
        )?;
        self.refresh(keys)
    }

    /// Add a signed package. The registry checks what clients will check: the signature, by a
    /// key delegated to its publisher for this id, and that the publisher owns the package of
    /// every interface it exports. Published versions never change.
    pub fn publish(
        &self,
        keys: &KeyDir,
        bytes: &[u8],
        info: &ReleaseInfo,
    ) -> Result<Release, Error> {
        let pkg = Package::read(bytes).map_err(Error::Package)?;
        let sig = pkg.signature.as_ref().ok_or_else(|| {
            Error::Package("the package is not signed; sign it with `osler plugin sign`".into())
        })?;
        let targets = self.targets()?;
        let publisher = targets.publishers.get(&sig.publisher).ok_or_else(|| {
            Error::Invalid(format!(
                "no publisher '{}' in this registry; add it with `osler registry add-publisher`",
                sig.publisher
            ))
        })?;
        if !publisher.may_publish(&info.id) {
            return Err(Error::NotDelegated {
                id: info.id.clone(),
                key: sig.key.clone(),
                publisher: sig.publisher.clone(),
            });
        }
        if let Some(interface) = publisher.first_unowned(info.exports.keys()) {
            return Err(Error::InterfaceNotDelegated {
                id: info.id.clone(),
                interface: interface.clone(),
                publisher: sig.publisher.clone(),
            });
        }
        let allowed = publisher
            .keys
            .iter()
            .map(|k| PublicKey::parse(k))
            .collect::<Result<Vec<_>, _>>()?;
        let key = pkg.verify(&info.id, &allowed)?;

        let mut index = self.index(&info.id)?.unwrap_or_else(|| Index {
            kind: "index".into(),
            id: info.id.clone(),
            version: 0,
            expires: OffsetDateTime::now_utc(),
            releases: vec![],
        });
        if index.releases.iter().any(|r| r.version == info.version) {
            return Err(Error::Invalid(format!(
                "{} {} is already published; published versions never change (publish a new \
                 version)",
                info.id, info.version
            )));
        }
        let path = format!("packages/{0}/{0}-{1}.osp", info.id, info.version);
        self.write(&path, bytes)?;
        let release = Release {
            version: info.version.clone(),
            name: info.name.clone(),
            description: info.description.clone(),
            publisher: sig.publisher.clone(),
            keyid: key.id(),
            path,
            sha256: sha256_hex(bytes),
            length: bytes.len() as u64,
            api: info.api.clone(),
            capabilities: info.capabilities.clone(),
            exports: info.exports.clone(),
            imports: info.imports.clone(),
            yanked: false,
            published: OffsetDateTime::now_utc(),
        };
        index.releases.push(release.clone());
        index.releases.sort_by(|a, b| a.version.cmp(&b.version));
        self.write_index(keys, index)?;
        Ok(release)
    }

    /// Mark a version yanked (or not): clients stop choosing it unless pinned exactly.
    pub fn yank(
        &self,
        keys: &KeyDir,
        id: &str,
        version: &semver::Version,
        yanked: bool,
    ) -> Result<(), Error> {
        let mut index = self
            .index(id)?
            .ok_or_else(|| Error::Invalid(format!("no plugin '{id}' in this registry")))?;
        let r = index
            .releases
            .iter_mut()
            .find(|r| &r.version == version)
            .ok_or_else(|| Error::Invalid(format!("'{id}' has no version {version}")))?;
        r.yanked = yanked;
        self.write_index(keys, index)
    }

    fn write_index(&self, keys: &KeyDir, mut index: Index) -> Result<(), Error> {
        index.version += 1;
        index.expires = OffsetDateTime::now_utc() + self.lifetimes.targets;
        let name = format!("index/{}.json", index.id);
        self.write(&name, &meta::sign(&index, &[&keys.load(Role::Targets)?]))?;
        self.refresh(keys)
    }

    /// Sign a new snapshot of the current files and a new timestamp (run it regularly: the
    /// timestamp expires after a day so that clients notice a frozen registry).
    pub fn refresh(&self, keys: &KeyDir) -> Result<(), Error> {
        let now = OffsetDateTime::now_utc();
        let mut metas = BTreeMap::new();
        let mut names = vec!["targets.json".to_string()];
        if let Ok(dir) = std::fs::read_dir(self.dir.join("index")) {
            for e in dir.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".json") {
                    names.push(format!("index/{n}"));
                }
            }
        }
        for name in names {
            let bytes = std::fs::read(self.dir.join(&name))
                .map_err(|e| Error::Io(format!("cannot read {name}: {e}")))?;
            let version = if name == "targets.json" {
                meta::parse_unverified::<Targets>(&bytes, &name)?.version
            } else {
                meta::parse_unverified::<Index>(&bytes, &name)?.version
            };
            metas.insert(
                name,
                MetaRef {
                    version,
                    sha256: sha256_hex(&bytes),
                    length: bytes.len() as u64,
                },
            );
        }
        let old_snapshot = self.read::<Snapshot>("snapshot.json").ok();
        let snapshot = Snapshot {
            kind: "snapshot".into(),
            version: old_snapshot.map_or(1, |s| s.version + 1),
            expires: now + self.lifetimes.snapshot,
            meta: metas,
        };
        let snap_bytes = meta::sign(&snapshot, &[&keys.load(Role::Snapshot)?]);
        self.write("snapshot.json", &snap_bytes)?;
        let old_ts = self.read::<Timestamp>("timestamp.json").ok();
        let ts = Timestamp {
            kind: "timestamp".into(),
            version: old_ts.map_or(1, |t| t.version + 1),
            expires: now + self.lifetimes.timestamp,
            snapshot: MetaRef {
                version: snapshot.version,
                sha256: sha256_hex(&snap_bytes),
                length: snap_bytes.len() as u64,
            },
        };
        self.write(
            "timestamp.json",
            &meta::sign(&ts, &[&keys.load(Role::Timestamp)?]),
        )
    }

    /// Replace the root key: the new root is signed by the old root key and the new one, so a
    /// client that trusts the old root can follow. The old key file is kept as
    /// `root-v<n>.pem`; the new one takes its place.
    pub fn rotate_root(&self, keys: &KeyDir, new_key: &Path) -> Result<Root, Error> {
        let old_key = keys.load(Role::Root)?;
        let new = SecretKey::load(new_key)?;
        let mut root = self.root()?;
        if root.keys.values().any(|k| *k == new.public().to_string()) {
            return Err(Error::Invalid(
                "the new root key is already a key of this registry".into(),
            ));
        }
        let old_version = root.version;
        let old_id = old_key.public().id();
        root.version += 1;
        root.expires = OffsetDateTime::now_utc() + self.lifetimes.root;
        let role = root
            .roles
            .get_mut(&Role::Root)
            .expect("root has a root role");
        role.keyids.retain(|k| *k != old_id);
        role.keyids.push(new.public().id());
        root.keys
            .insert(new.public().id(), new.public().to_string());
        let still_used = root.roles.values().any(|r| r.keyids.contains(&old_id));
        if !still_used {
            root.keys.remove(&old_id);
        }
        let bytes = meta::sign(&root, &[&old_key, &new]);
        self.write(&format!("{}.root.json", root.version), &bytes)?;
        self.write("root.json", &bytes)?;
        let retired = keys.0.join(format!("root-v{old_version}.pem"));
        std::fs::rename(keys.path(Role::Root), &retired)
            .map_err(|e| Error::Io(format!("cannot retire the old root key: {e}")))?;
        new.write_new(&keys.path(Role::Root))?;
        Ok(root)
    }
}
