//! The clinic's side: fetch a registry's metadata, verify it against what is already trusted,
//! and download packages.
//!
//! The order is TUF's: root chain (each new root signed by the old root's keys and its own),
//! then timestamp, snapshot (hash from the timestamp), targets and indexes (hashes from the
//! snapshot), then the package (every interface it exports owned by its publisher, hash and
//! length from its index, signature by a key delegated to its publisher for that id). Every
//! file is fetched with a size bound, every version is compared with the highest one seen
//! before, and every expiry is checked.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Error;
use crate::keys::PublicKey;
use crate::meta::{
    self, Document, Index, MetaRef, Release, Role, Root, Snapshot, Targets, Timestamp, sha256_hex,
};
use crate::package::Package;

/// Size bounds for metadata whose length nothing signed states yet.
const MAX_ROOT: u64 = 512 << 10;
const MAX_TIMESTAMP: u64 = 64 << 10;
/// Root rotations followed in one update (a bound against an endless chain).
const MAX_ROTATIONS: u64 = 1024;

/// What a clinic has trusted so far from one registry. Kept by the host between updates; it
/// is what makes rollback and replay visible.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Trust {
    /// The newest verified root metadata, as signed.
    pub root: Option<String>,
    /// The highest version seen of `timestamp`, `snapshot`, `targets` and `index/<id>`.
    pub versions: BTreeMap<String, u64>,
}

/// Where a registry's files come from.
pub enum Source {
    Dir(PathBuf),
    Http {
        base: String,
        client: reqwest::Client,
    },
}

impl Source {
    /// `http://…` or `https://…` is a web server; anything else a folder.
    pub fn parse(location: &str) -> Source {
        if location.starts_with("http://") || location.starts_with("https://") {
            Source::Http {
                base: location.trim_end_matches('/').to_string(),
                client: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(60))
                    .build()
                    .expect("an HTTP client with rustls builds"),
            }
        } else {
            Source::Dir(PathBuf::from(location))
        }
    }

    /// Fetch `path` (relative to the registry), refusing more than `max` bytes; `None` when
    /// the registry has no such file.
    pub async fn fetch(
        &self,
        path: &str,
        max: u64,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Option<Vec<u8>>, Error> {
        let rel = Path::new(path);
        if path.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(Error::Malformed(format!(
                "the registry names a file outside itself: '{path}'"
            )));
        }
        match self {
            Source::Dir(dir) => {
                let full = dir.join(rel);
                let meta = match std::fs::metadata(&full) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(Error::Fetch(format!("{}: {e}", full.display()))),
                };
                if meta.len() > max {
                    return Err(Error::TooLarge {
                        what: path.to_string(),
                        limit: max,
                    });
                }
                let bytes = std::fs::read(&full)
                    .map_err(|e| Error::Fetch(format!("{}: {e}", full.display())))?;
                if bytes.len() as u64 > max {
                    return Err(Error::TooLarge {
                        what: path.to_string(),
                        limit: max,
                    });
                }
                progress(bytes.len() as u64, bytes.len() as u64);
                Ok(Some(bytes))
            }
            Source::Http { base, client } => {
                let url = format!("{base}/{path}");
                let mut res = client
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| Error::Fetch(format!("{url}: {e}")))?;
                if res.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                if !res.status().is_success() {
                    return Err(Error::Fetch(format!("{url}: HTTP {}", res.status())));
                }
                let total = res.content_length().unwrap_or(max);
                if total > max {
                    return Err(Error::TooLarge {
                        what: path.to_string(),
                        limit: max,
                    });
                }
                let mut out = Vec::with_capacity(total.min(max) as usize);
                while let Some(chunk) = res
                    .chunk()
                    .await
                    .map_err(|e| Error::Fetch(format!("{url}: {e}")))?
                {
                    if (out.len() + chunk.len()) as u64 > max {
                        return Err(Error::TooLarge {
                            what: path.to_string(),
                            limit: max,
                        });
                    }
                    out.extend_from_slice(&chunk);
                    progress(out.len() as u64, total);
                }
                Ok(Some(out))
            }
        }
    }
}

/// A verified, current view of a registry.
#[derive(Clone, Debug)]
pub struct View {
    pub root: Root,
    pub snapshot: Snapshot,
    pub targets: Targets,
}

impl View {
    /// Whether the registry lets `publisher`'s plugins export `interface`.
    pub fn may_export(&self, publisher: &str, interface: &str) -> bool {
        self.targets
            .publishers
            .get(publisher)
            .is_some_and(|p| p.may_export(interface))
    }

    /// The plugin ids the registry lists.
    pub fn ids(&self) -> Vec<String> {
        self.snapshot
            .meta
            .keys()
            .filter_map(|k| k.strip_prefix("index/")?.strip_suffix(".json"))
            .map(str::to_string)
            .collect()
    }
}

/// One configured registry.
pub struct Client {
    pub name: String,
    pub source: Source,
    /// Root keys the clinic pinned; the first root must be signed by one of them.
    pub pins: Vec<PublicKey>,
}

fn no_progress(_: u64, _: u64) {}

impl Client {
    async fn need(&self, path: &str, max: u64) -> Result<Vec<u8>, Error> {
        self.source
            .fetch(path, max, &no_progress)
            .await?
            .ok_or_else(|| Error::Fetch(format!("registry '{}' has no {path}", self.name)))
    }

    /// Fetch `path`, whose hash, length and version its parent states: the timestamp for
    /// `snapshot.json` (signed by the snapshot role), the snapshot for `targets.json` and the
    /// indexes (signed by the targets role).
    async fn fetch_pinned<D: Document>(
        &self,
        path: &str,
        expected: &MetaRef,
        root: &Root,
        trust: &Trust,
        now: OffsetDateTime,
    ) -> Result<D, Error> {
        let (parent, role) = if path == "snapshot.json" {
            ("timestamp", Role::Snapshot)
        } else {
            ("snapshot", Role::Targets)
        };
        let bytes = self.need(path, expected.length).await?;
        check_hash(path, &bytes, expected)?;
        let doc: D = meta::verify(&bytes, path, root, role)?;
        if doc.version() != expected.version {
            return Err(Error::Malformed(format!(
                "{path} is version {}, the {parent} says {}",
                doc.version(),
                expected.version
            )));
        }
        accept(&doc, path, trust, now)?;
        Ok(doc)
    }

    /// Bring `trust` up to date with the registry and return the verified view. On error
    /// `trust` is left as it was.
    pub async fn update(&self, trust: &mut Trust, now: OffsetDateTime) -> Result<View, Error> {
        let mut next = trust.clone();
        let root = self.update_root(&mut next).await?;
        meta::check_fresh(&root, "root.json", now)?;

        let ts_bytes = self.need("timestamp.json", MAX_TIMESTAMP).await?;
        let ts: Timestamp = meta::verify(&ts_bytes, "timestamp.json", &root, Role::Timestamp)?;
        accept(&ts, "timestamp.json", &next, now)?;
        let snapshot: Snapshot = self
            .fetch_pinned("snapshot.json", &ts.snapshot, &root, &next, now)
            .await?;
        let targets_ref = snapshot.meta.get("targets.json").ok_or_else(|| {
            Error::Malformed("the snapshot does not list targets.json".to_string())
        })?;
        let targets: Targets = self
            .fetch_pinned("targets.json", targets_ref, &root, &next, now)
            .await?;

        next.versions.insert("timestamp".into(), ts.version);
        next.versions.insert("snapshot".into(), snapshot.version);
        next.versions.insert("targets".into(), targets.version);
        *trust = next;
        Ok(View {
            root,
            snapshot,
            targets,
        })
    }

    async fn update_root(&self, trust: &mut Trust) -> Result<Root, Error> {
        let mut root: Root = match &trust.root {
            Some(bytes) => meta::parse_unverified(bytes.as_bytes(), "the trusted root")?,
            None => {
                let bytes = self.need("1.root.json", MAX_ROOT).await?;
                let unverified: Root = meta::parse_unverified(&bytes, "1.root.json")?;
                let role = unverified.roles.get(&Role::Root).ok_or_else(|| {
                    Error::Malformed("1.root.json defines no root role".to_string())
                })?;
                let pinned = self.pins.iter().any(|pin| {
                    role.keyids.contains(&pin.id())
                        && unverified.keys.get(&pin.id()) == Some(&pin.to_string())
                });
                if !pinned {
                    return Err(Error::UntrustedRoot(format!(
                        "the root of registry '{}' is not signed by the key pinned in \
                         osler.toml",
                        self.name
                    )));
                }
                let root: Root =
                    meta::verify_with(&bytes, "1.root.json", &unverified.keys, role, "root")?;
                if root.version != 1 {
                    return Err(Error::Malformed("1.root.json is not version 1".into()));
                }
                trust.root = Some(String::from_utf8_lossy(&bytes).into_owned());
                root
            }
        };
        for _ in 0..MAX_ROTATIONS {
            let n = root.version + 1;
            let path = format!("{n}.root.json");
            let Some(bytes) = self.source.fetch(&path, MAX_ROOT, &no_progress).await? else {
                break;
            };
            // Signed by the keys the clinic already trusts …
            let _: Root = meta::verify(&bytes, &path, &root, Role::Root)?;
            // … and by the new root's own keys.
            let unverified: Root = meta::parse_unverified(&bytes, &path)?;
            let role = unverified
                .roles
                .get(&Role::Root)
                .ok_or_else(|| Error::Malformed(format!("{path} defines no root role")))?;
            let new: Root = meta::verify_with(&bytes, &path, &unverified.keys, role, "root")?;
            if new.version != n {
                return Err(Error::Malformed(format!(
                    "{path} says it is version {}",
                    new.version
                )));
            }
            trust.root = Some(String::from_utf8_lossy(&bytes).into_owned());
            root = new;
        }
        Ok(root)
    }

    /// The verified index of one plugin, or `None` if the registry does not list it.
    pub async fn index(
        &self,
        view: &View,
        trust: &mut Trust,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Index>, Error> {
        let path = format!("index/{id}.json");
        let Some(expected) = view.snapshot.meta.get(&path) else {
            return Ok(None);
        };
        let index: Index = self
            .fetch_pinned(&path, expected, &view.root, trust, now)
            .await?;
        if index.id != id {
            return Err(Error::Malformed(format!(
                "{path} describes '{}', not '{id}'",
                index.id
            )));
        }
        trust.versions.insert(format!("index/{id}"), index.version);
        Ok(Some(index))
    }

    /// Download a release and check it: that its publisher owns the package of every
    /// interface it exports (before downloading anything), length and hash from the index,
    /// then the publisher's signature by a key the registry delegates to that publisher for
    /// this id. The caller must check that the package's manifest declares the exports its
    /// index entry lists.
    pub async fn download(
        &self,
        view: &View,
        id: &str,
        release: &Release,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Package, Error> {
        let publisher = view
            .targets
            .publishers
            .get(&release.publisher)
            .filter(|p| p.may_publish(id));
        if let Some(p) = publisher
            && let Some(interface) = p.first_unowned(release.exports.keys())
        {
            return Err(Error::InterfaceNotDelegated {
                id: id.to_string(),
                interface: interface.clone(),
                publisher: release.publisher.clone(),
            });
        }
        let bytes = self
            .source
            .fetch(&release.path, release.length, progress)
            .await?
            .ok_or_else(|| {
                Error::Fetch(format!(
                    "registry '{}' lists {id} {} but has no {}",
                    self.name, release.version, release.path
                ))
            })?;
        if bytes.len() as u64 != release.length {
            return Err(Error::Length {
                what: release.path.clone(),
                expected: release.length,
                got: bytes.len() as u64,
            });
        }
        if sha256_hex(&bytes) != release.sha256 {
            return Err(Error::Hash {
                what: release.path.clone(),
            });
        }
        let pkg = Package::read(&bytes).map_err(Error::Package)?;
        let publisher = publisher.ok_or_else(|| Error::NotDelegated {
            id: id.to_string(),
            key: pkg
                .signature
                .as_ref()
                .map(|s| s.key.clone())
                .unwrap_or_default(),
            publisher: release.publisher.clone(),
        })?;
        if pkg.signature.as_ref().map(|s| s.publisher.as_str()) != Some(&release.publisher) {
            return Err(Error::Package(format!(
                "the package of {id} {} is not signed by its listed publisher '{}'",
                release.version, release.publisher
            )));
        }
        let allowed = publisher
            .keys
            .iter()
            .map(|k| PublicKey::parse(k))
            .collect::<Result<Vec<_>, _>>()?;
        pkg.verify(id, &allowed)?;
        Ok(pkg)
    }
}

/// A verified document is accepted only if it is no older than the version already trusted
/// for its file (`timestamp.json` → `timestamp`, `index/x.json` → `index/x`) and not expired.
fn accept<D: Document>(
    doc: &D,
    path: &str,
    trust: &Trust,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let key = path.trim_end_matches(".json");
    meta::check_not_rolled_back(path, trust.versions.get(key).copied(), doc.version())?;
    meta::check_fresh(doc, path, now)
}

fn check_hash(what: &str, bytes: &[u8], expected: &MetaRef) -> Result<(), Error> {
    if bytes.len() as u64 != expected.length {
        return Err(Error::Length {
            what: what.to_string(),
            expected: expected.length,
            got: bytes.len() as u64,
        });
    }
    if sha256_hex(bytes) != expected.sha256 {
        return Err(Error::Hash {
            what: what.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;
    use crate::repo::{KeyDir, Lifetimes, ReleaseInfo, Repo};

    struct Fixture {
        _tmp: tempfile::TempDir,
        repo: Repo,
        keys: KeyDir,
        client: Client,
        publisher: SecretKey,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let keys = KeyDir(tmp.path().join("keys"));
        let (repo, root) =
            Repo::init(&tmp.path().join("reg"), &keys, Lifetimes::default()).unwrap();
        let root_id = &root.roles[&Role::Root].keyids[0];
        let pin = PublicKey::parse(&root.keys[root_id]).unwrap();
        let publisher = SecretKey::generate().unwrap();
        repo.add_publisher(
            &keys,
            "Acme",
            &publisher.public(),
            &["acme-*".into()],
            &["acme:*".into()],
        )
        .unwrap();
        let client = Client {
            name: "test".into(),
            source: Source::Dir(repo.dir().to_path_buf()),
            pins: vec![pin],
        };
        Fixture {
            _tmp: tmp,
            repo,
            keys,
            client,
            publisher,
        }
    }

    fn publish(f: &Fixture, id: &str, version: &str) {
        f.repo
            .publish(&f.keys, &signed(f, id, version), &info(id, version, &[]))
            .unwrap();
    }

    fn signed(f: &Fixture, id: &str, version: &str) -> Vec<u8> {
        let mut pkg = Package {
            manifest: format!("id = \"{id}\"\nversion = \"{version}\"\n"),
            component: vec![0, 97, 115, 109, 1],
            signature: None,
        };
        pkg.sign("Acme", &f.publisher);
        pkg.write().unwrap()
    }

    fn info(id: &str, version: &str, exports: &[&str]) -> ReleaseInfo {
        ReleaseInfo {
            id: id.into(),
            version: version.parse().unwrap(),
            name: id.into(),
            description: String::new(),
            api: "^0.1".into(),
            capabilities: Default::default(),
            exports: exports
                .iter()
                .map(|e| (e.to_string(), "0.1.0".to_string()))
                .collect(),
            imports: Default::default(),
        }
    }

    fn block<T>(fut: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(fut)
    }

    #[test]
    fn a_clean_registry_verifies_and_its_package_downloads() {
        let f = fixture();
        publish(&f, "acme-forms", "1.0.0");
        let now = OffsetDateTime::now_utc();
        let mut trust = Trust::default();
        let view = block(f.client.update(&mut trust, now)).unwrap();
        assert_eq!(view.ids(), ["acme-forms"]);
        let index = block(f.client.index(&view, &mut trust, "acme-forms", now))
            .unwrap()
            .unwrap();
        let pkg = block(
            f.client
                .download(&view, "acme-forms", &index.releases[0], &no_progress),
        )
        .unwrap();
        assert!(pkg.manifest.contains("acme-forms"));
        assert!(trust.root.is_some());
        assert_eq!(trust.versions["index/acme-forms"], index.version);
    }

    #[test]
    fn replayed_and_expired_metadata_are_refused_and_trust_is_unchanged() {
        let f = fixture();
        let old_ts = std::fs::read(f.repo.dir().join("timestamp.json")).unwrap();
        f.repo.refresh(&f.keys).unwrap();
        let now = OffsetDateTime::now_utc();
        let mut trust = Trust::default();
        block(f.client.update(&mut trust, now)).unwrap();
        let before = trust.clone();

        std::fs::write(f.repo.dir().join("timestamp.json"), old_ts).unwrap();
        let e = block(f.client.update(&mut trust, now)).unwrap_err();
        assert_eq!(e.code(), "metadata-rollback", "{e}");
        assert_eq!(trust, before);

        f.repo.refresh(&f.keys).unwrap();
        let later = now + time::Duration::days(2);
        let e = block(f.client.update(&mut trust, later)).unwrap_err();
        assert_eq!(e.code(), "metadata-expired", "{e}");
        assert!(e.to_string().contains("timestamp.json"), "{e}");
        assert_eq!(trust, before);
    }

    #[test]
    fn a_rotated_root_is_followed_and_a_wrong_pin_is_refused() {
        let f = fixture();
        let now = OffsetDateTime::now_utc();
        let mut trust = Trust::default();
        block(f.client.update(&mut trust, now)).unwrap();

        let new_key = f.keys.0.join("new-root.pem");
        SecretKey::generate().unwrap().write_new(&new_key).unwrap();
        let root = f.repo.rotate_root(&f.keys, &new_key).unwrap();
        let view = block(f.client.update(&mut trust, now)).unwrap();
        assert_eq!(view.root.version, 2);
        assert_eq!(view.root, root);

        let stranger = Client {
            name: "test".into(),
            source: Source::Dir(f.repo.dir().to_path_buf()),
            pins: vec![SecretKey::generate().unwrap().public()],
        };
        let e = block(stranger.update(&mut Trust::default(), now)).unwrap_err();
        assert_eq!(e.code(), "untrusted-root", "{e}");
    }

    #[test]
    fn a_publisher_exports_only_the_interface_packages_delegated_to_it() {
        let f = fixture();
        // Acme owns `acme:*`: any acme package, nothing else.
        let pkg = signed(&f, "acme-forms", "1.0.0");
        let r = f.repo.publish(
            &f.keys,
            &pkg,
            &info("acme-forms", "1.0.0", &["acme:forms/render"]),
        );
        assert!(r.is_ok(), "{r:?}");
        let pkg = signed(&f, "acme-drugs", "1.0.0");
        let e = f
            .repo
            .publish(
                &f.keys,
                &pkg,
                &info("acme-drugs", "1.0.0", &["acme:x/y", "osler:drugref/lookup"]),
            )
            .unwrap_err();
        assert_eq!(e.code(), "interface-not-delegated", "{e}");
        assert!(
            e.to_string().contains("exports osler:drugref/lookup")
                && e.to_string().contains("publisher 'Acme'")
                && e.to_string().contains("--interfaces"),
            "{e}"
        );
        assert!(
            f.repo.index("acme-drugs").unwrap().is_none(),
            "nothing was published"
        );
        assert!(
            !f.repo
                .dir()
                .join("packages/acme-drugs/acme-drugs-1.0.0.osp")
                .exists()
        );

        // The operator delegates the package (as for a registry made before interfaces had
        // owners): the same package now publishes.
        f.repo
            .add_publisher(
                &f.keys,
                "Acme",
                &f.publisher.public(),
                &[],
                &["osler:drugref".into()],
            )
            .unwrap();
        let targets = f.repo.targets().unwrap();
        assert_eq!(
            targets.publishers["Acme"].interfaces,
            ["acme:*", "osler:drugref"]
        );
        assert_eq!(targets.publishers["Acme"].plugins, ["acme-*"]);
        f.repo
            .publish(
                &f.keys,
                &pkg,
                &info("acme-drugs", "1.0.0", &["acme:x/y", "osler:drugref/lookup"]),
            )
            .unwrap();
    }

    #[test]
    fn the_hosts_own_interfaces_cannot_be_delegated() {
        let f = fixture();
        let key = f.publisher.public();
        for bad in [
            "osler:plugin",
            "osler:*",
            "wasi:io",
            "wasi:*",
            "osler:drugref/lookup",
            "osler:drugref@0.1.0",
            "Osler:drugref",
            "acme",
            "*",
            "*:*",
            "acme:",
        ] {
            let e = f
                .repo
                .add_publisher(&f.keys, "Acme", &key, &[], &[bad.into()])
                .unwrap_err();
            assert_eq!(e.code(), "invalid", "{bad}: {e}");
        }
        let e = f
            .repo
            .add_publisher(&f.keys, "Acme", &key, &[], &["osler:*".into()])
            .unwrap_err();
        assert!(e.to_string().contains("one by one"), "{e}");
        let e = f
            .repo
            .add_publisher(&f.keys, "Acme", &key, &[], &[])
            .unwrap_err();
        assert!(e.to_string().contains("interface package"), "{e}");
        assert_eq!(
            f.repo.targets().unwrap().publishers["Acme"].interfaces,
            ["acme:*"]
        );
    }

    /// What a malicious operator (holding the targets key) can write, beyond what
    /// `Repo::publish` allows.
    fn force_release(f: &Fixture, id: &str, exports: &[&str]) -> Release {
        let bytes = signed(f, id, "1.0.0");
        let path = format!("packages/{id}/{id}-1.0.0.osp");
        std::fs::create_dir_all(f.repo.dir().join(format!("packages/{id}"))).unwrap();
        std::fs::write(f.repo.dir().join(&path), &bytes).unwrap();
        let i = info(id, "1.0.0", exports);
        let release = Release {
            version: i.version,
            name: i.name,
            description: i.description,
            publisher: "Acme".into(),
            keyid: f.publisher.public().id(),
            path,
            sha256: sha256_hex(&bytes),
            length: bytes.len() as u64,
            api: i.api,
            capabilities: i.capabilities,
            exports: i.exports,
            imports: i.imports,
            yanked: false,
            published: OffsetDateTime::now_utc(),
        };
        let index = Index {
            kind: "index".into(),
            id: id.into(),
            version: 1,
            expires: OffsetDateTime::now_utc() + time::Duration::days(1),
            releases: vec![release.clone()],
        };
        let targets_key = f.keys.load(Role::Targets).unwrap();
        std::fs::write(
            f.repo.dir().join(format!("index/{id}.json")),
            meta::sign(&index, &[&targets_key]),
        )
        .unwrap();
        f.repo.refresh(&f.keys).unwrap();
        release
    }

    #[test]
    fn a_client_refuses_an_export_the_registry_forced_past_its_own_check() {
        let f = fixture();
        let now = OffsetDateTime::now_utc();
        let mut trust = Trust::default();
        let hijack = force_release(&f, "acme-drugs", &["osler:drugref/lookup"]);
        let host_api = force_release(&f, "acme-evil", &["osler:plugin/kv"]);
        let view = block(f.client.update(&mut trust, now)).unwrap();
        assert!(!view.may_export("Acme", "osler:drugref/lookup"));
        assert!(view.may_export("Acme", "acme:forms/render"));
        for (id, release) in [("acme-drugs", &hijack), ("acme-evil", &host_api)] {
            let e = block(f.client.download(&view, id, release, &no_progress)).unwrap_err();
            assert_eq!(e.code(), "interface-not-delegated", "{id}: {e}");
        }

        // Even a targets document that hands out the host's API (written by the operator,
        // not through `add_publisher`) does not make `osler:plugin` or `wasi:` exportable.
        let mut targets: Targets = meta::parse_unverified(
            &std::fs::read(f.repo.dir().join("targets.json")).unwrap(),
            "targets.json",
        )
        .unwrap();
        let acme = targets.publishers.get_mut("Acme").unwrap();
        acme.interfaces = vec!["osler:*".into(), "osler:plugin".into(), "wasi:*".into()];
        targets.version += 1;
        let targets_key = f.keys.load(Role::Targets).unwrap();
        std::fs::write(
            f.repo.dir().join("targets.json"),
            meta::sign(&targets, &[&targets_key]),
        )
        .unwrap();
        f.repo.refresh(&f.keys).unwrap();
        let view = block(f.client.update(&mut trust, now)).unwrap();
        assert!(view.may_export("Acme", "osler:drugref/lookup"));
        assert!(!view.may_export("Acme", "osler:plugin/kv"));
        assert!(!view.may_export("Acme", "wasi:io/streams"));
        let e = block(
            f.client
                .download(&view, "acme-evil", &host_api, &no_progress),
        )
        .unwrap_err();
        assert_eq!(e.code(), "interface-not-delegated", "{e}");
        block(
            f.client
                .download(&view, "acme-drugs", &hijack, &no_progress),
        )
        .unwrap();
    }

    #[test]
    fn a_registry_made_before_interfaces_had_owners_refuses_every_export() {
        let f = fixture();
        // Its targets.json has publishers without an `interfaces` key.
        let mut targets = f.repo.targets().unwrap();
        targets
            .publishers
            .get_mut("Acme")
            .unwrap()
            .interfaces
            .clear();
        targets.version += 1;
        let bytes = meta::sign(&targets, &[&f.keys.load(Role::Targets).unwrap()]);
        assert!(
            !String::from_utf8_lossy(&bytes).contains("interfaces"),
            "the old layout, which older hosts read"
        );
        std::fs::write(f.repo.dir().join("targets.json"), &bytes).unwrap();
        f.repo.refresh(&f.keys).unwrap();
        let forms = force_release(&f, "acme-forms", &["acme:forms/render"]);
        publish(&f, "acme-plain", "1.0.0");
        let now = OffsetDateTime::now_utc();
        let mut trust = Trust::default();
        let view = block(f.client.update(&mut trust, now)).unwrap();
        let e = block(f.client.download(&view, "acme-forms", &forms, &no_progress)).unwrap_err();
        assert_eq!(e.code(), "interface-not-delegated", "{e}");
        // A plugin that exports nothing is unaffected.
        let index = block(f.client.index(&view, &mut trust, "acme-plain", now))
            .unwrap()
            .unwrap();
        block(
            f.client
                .download(&view, "acme-plain", &index.releases[0], &no_progress),
        )
        .unwrap();
    }

    #[test]
    fn a_file_path_outside_the_registry_is_refused() {
        let f = fixture();
        let e = block(
            f.client
                .source
                .fetch("../keys/root.pem", 1 << 20, &no_progress),
        )
        .unwrap_err();
        assert_eq!(e.code(), "malformed-metadata", "{e}");
    }
}
