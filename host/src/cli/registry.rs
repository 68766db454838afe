//! `osler keys …` and `osler registry …`: the publisher's and the registry operator's tools.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use osler_registry::{KeyDir, Lifetimes, Package, PublicKey, ReleaseInfo, Repo, SecretKey};

use crate::plugins::manifest::Manifest;

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Generate an ed25519 key pair: the private key goes to --out (PKCS#8 PEM, mode 0600),
    /// the public key is printed.
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum RegistryCmd {
    /// Create a registry in <dir>, with role keys in --keys (created there if missing).
    Init {
        dir: PathBuf,
        #[arg(long)]
        keys: PathBuf,
    },
    /// Let a publisher's key publish the given plugin ids (or `prefix-*`) and export the
    /// given interface packages (`namespace:package`, or `namespace:*`). Adds to an existing
    /// publisher.
    AddPublisher {
        dir: PathBuf,
        #[arg(long)]
        keys: PathBuf,
        /// The publisher's name (as it signs packages).
        #[arg(long)]
        name: String,
        /// The publisher's public key, `ed25519:<hex>`.
        #[arg(long)]
        key: String,
        /// Plugin ids, comma-separated (`prefix-*` covers every id with that prefix).
        #[arg(long, value_delimiter = ',', required_unless_present = "interfaces")]
        plugins: Vec<String>,
        /// Interface packages its plugins may export, comma-separated: `acme:forms` covers
        /// `acme:forms/<any interface>`, `acme:*` every package of the `acme` namespace.
        /// `osler:plugin` and `wasi:*` belong to the host and are refused.
        #[arg(long, value_delimiter = ',')]
        interfaces: Vec<String>,
    },
    /// Publish a signed package.
    Publish {
        dir: PathBuf,
        package: PathBuf,
        #[arg(long)]
        keys: PathBuf,
    },
    /// Yank a version (`<id>@<version>`): clients stop choosing it unless pinned exactly.
    Yank {
        dir: PathBuf,
        spec: String,
        #[arg(long)]
        keys: PathBuf,
        /// Restore a yanked version instead.
        #[arg(long)]
        undo: bool,
    },
    /// Re-sign the snapshot and timestamp (they expire in 7 days and 1 day).
    Refresh {
        dir: PathBuf,
        #[arg(long)]
        keys: PathBuf,
    },
    /// Replace the root key; the new root is signed by the old key and the new one.
    RotateRoot {
        dir: PathBuf,
        #[arg(long)]
        keys: PathBuf,
        /// The new root key (from `osler keys generate`).
        #[arg(long)]
        new_key: PathBuf,
    },
    /// Serve a registry folder read-only over HTTP.
    Serve {
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
    },
    /// Build this checkout's first-party plugins, sign them as "Osler project" and publish them
    /// into <dir> (a registry created there if new, keys in --keys).
    FirstParty {
        dir: PathBuf,
        #[arg(long)]
        keys: PathBuf,
    },
}

pub fn keys(cmd: KeysCmd) -> anyhow::Result<i32> {
    match cmd {
        KeysCmd::Generate { out } => {
            let k = SecretKey::generate()?;
            k.write_new(&out)?;
            println!("{}", k.public());
            eprintln!("Private key written to {} (mode 0600).", out.display());
            Ok(0)
        }
    }
}

/// The facts a registry records about a package, from its manifest as the host reads it.
pub fn release_info(pkg: &Package) -> anyhow::Result<ReleaseInfo> {
    let m = Manifest::parse(&pkg.manifest)?;
    Ok(ReleaseInfo {
        id: m.id.clone(),
        version: m.version.clone(),
        name: m.name.clone(),
        description: m.description.clone(),
        api: m.api.to_string(),
        capabilities: m.capabilities.iter().map(|c| c.to_string()).collect(),
        exports: m
            .exports
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        // Only the imports installing it requires a provider for: the planner pulls those in;
        // an optional import never pulls anything in.
        imports: m
            .required_imports()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
    })
}

/// The key clinics pin for a registry.
pub fn root_key(repo: &Repo) -> anyhow::Result<String> {
    let root = repo.root()?;
    let role = root
        .roles
        .get(&osler_registry::meta::Role::Root)
        .context("the root metadata has no root role")?;
    let id = role.keyids.first().context("the root role has no key")?;
    root.keys
        .get(id)
        .cloned()
        .context("the root key is missing from the root metadata")
}

fn print_pin(name: &str, dir: &Path, key: &str) {
    println!("Clinics trust this registry with, in osler.toml:");
    println!();
    println!("  [[registries]]");
    println!("  name = \"{name}\"");
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    println!(
        "  url = \"{}\"   # or the URL it is served at",
        dir.display()
    );
    println!("  root_key = \"{key}\"");
}

pub fn registry(cmd: RegistryCmd) -> anyhow::Result<i32> {
    match cmd {
        RegistryCmd::Init { dir, keys } => {
            let (repo, _) = Repo::init(&dir, &KeyDir(keys.clone()), Lifetimes::default())?;
            println!(
                "Registry created in {} (keys in {}).",
                dir.display(),
                keys.display()
            );
            print_pin("my-registry", &dir, &root_key(&repo)?);
        }
        RegistryCmd::AddPublisher {
            dir,
            keys,
            name,
            key,
            plugins,
            interfaces,
        } => {
            let key = PublicKey::parse(&key)?;
            let repo = Repo::open(&dir)?;
            repo.add_publisher(&KeyDir(keys), &name, &key, &plugins, &interfaces)?;
            let p = repo
                .targets()?
                .publishers
                .remove(&name)
                .context("just added")?;
            let list = |v: &[String]| match v {
                [] => "nothing".to_string(),
                v => v.join(", "),
            };
            println!("{name} ({key}) may publish: {}", list(&p.plugins));
            println!("{name} may export interfaces of: {}", list(&p.interfaces));
        }
        RegistryCmd::Publish { dir, package, keys } => {
            let bytes = std::fs::read(&package)
                .with_context(|| format!("cannot read {}", package.display()))?;
            let pkg = Package::read(&bytes).map_err(|e| anyhow::anyhow!(e))?;
            let info = release_info(&pkg)?;
            let r = Repo::open(&dir)?.publish(&KeyDir(keys), &bytes, &info)?;
            println!(
                "Published {} {} (publisher {}, sha256 {}).",
                info.id, r.version, r.publisher, r.sha256
            );
        }
        RegistryCmd::Yank {
            dir,
            spec,
            keys,
            undo,
        } => {
            let (id, version) = spec
                .split_once('@')
                .context("write the version to yank as <id>@<version>")?;
            let version: semver::Version = version
                .trim_start_matches('=')
                .parse()
                .with_context(|| format!("'{version}' is not a version"))?;
            Repo::open(&dir)?.yank(&KeyDir(keys), id, &version, !undo)?;
            println!(
                "{id} {version} is {}.",
                if undo { "no longer yanked" } else { "yanked" }
            );
        }
        RegistryCmd::Refresh { dir, keys } => {
            Repo::open(&dir)?.refresh(&KeyDir(keys))?;
            println!("Snapshot and timestamp re-signed.");
        }
        RegistryCmd::RotateRoot { dir, keys, new_key } => {
            let root = Repo::open(&dir)?.rotate_root(&KeyDir(keys), &new_key)?;
            println!(
                "Root rotated to version {}. Clinics that trust the old root follow the chain; \
                 new clinics pin the new key:",
                root.version
            );
            println!("  {}", SecretKey::load(&new_key)?.public());
        }
        RegistryCmd::Serve { dir, listen } => {
            Repo::open(&dir)?;
            let rt = crate::cli::runtime()?;
            rt.block_on(serve(dir, listen))?;
        }
        RegistryCmd::FirstParty { dir, keys } => {
            let (repo, ids) = first_party(&dir, &keys)?;
            println!("Published into {}: {}", dir.display(), ids.join(", "));
            print_pin("first-party", &dir, &root_key(&repo)?);
        }
    }
    Ok(0)
}

/// The first-party publisher's name.
pub const FIRST_PARTY: &str = "Osler project";

/// Build every plugin under this checkout's `plugins/`, sign each as the first-party
/// publisher (key `<keys>/publisher.pem`, created if missing) and publish it into the registry
/// at `dir` (created if new), delegating to that publisher the plugins' ids and the
/// interface packages they export (also in a registry made before interfaces had owners). A
/// version already published with the same contents is skipped.
pub fn first_party(dir: &Path, keys: &Path) -> anyhow::Result<(Repo, Vec<String>)> {
    let root = super::plugin::checkout_root()?;
    let target = root.join("target").join("plugins");
    let keydir = KeyDir(keys.to_path_buf());
    let repo = if dir.join("root.json").exists() {
        Repo::open(dir)?
    } else {
        Repo::init(dir, &keydir, Lifetimes::default())?.0
    };
    let publisher_path = keys.join("publisher.pem");
    if !publisher_path.exists() {
        SecretKey::generate()?.write_new(&publisher_path)?;
    }
    let publisher = SecretKey::load(&publisher_path)?;
    let mut built = Vec::new();
    for crate_dir in super::plugin::first_party_crates(&root)? {
        let path = super::plugin::build(Some(crate_dir), None, Some(&target))?;
        let bytes = std::fs::read(&path)?;
        let mut pkg = Package::read(&bytes).map_err(|e| anyhow::anyhow!(e))?;
        let info = release_info(&pkg)?;
        pkg.sign(FIRST_PARTY, &publisher);
        built.push((info, pkg.write()?));
    }
    let ids: Vec<String> = built.iter().map(|(i, _)| i.id.clone()).collect();
    // The first-party publisher owns the interface packages its plugins export
    // (`osler:drugref`, `osler:scheduling`), one by one: never `osler:*`, which would cover
    // the host's own `osler:plugin`.
    let interfaces: Vec<String> = built
        .iter()
        .flat_map(|(i, _)| i.exports.keys())
        .filter_map(|name| osler_registry::meta::interface_package(name))
        .map(|(ns, pkg)| format!("{ns}:{pkg}"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let delegated = repo
        .targets()?
        .publishers
        .get(FIRST_PARTY)
        .is_some_and(|p| {
            p.keys.contains(&publisher.public().to_string())
                && ids.iter().all(|id| p.may_publish(id))
                && built
                    .iter()
                    .flat_map(|(i, _)| i.exports.keys())
                    .all(|e| p.may_export(e))
        });
    if !delegated {
        repo.add_publisher(&keydir, FIRST_PARTY, &publisher.public(), &ids, &interfaces)?;
    }
    for (info, bytes) in built {
        let existing = repo
            .index(&info.id)?
            .and_then(|i| i.releases.into_iter().find(|r| r.version == info.version));
        match existing {
            Some(r) if r.sha256 == osler_registry::meta::sha256_hex(&bytes) => {}
            Some(_) => bail!(
                "{} {} is already published with different contents; bump its version in \
                 plugins/{}/plugin.toml",
                info.id,
                info.version,
                info.id
            ),
            None => {
                repo.publish(&keydir, &bytes, &info)?;
            }
        }
    }
    // Fresh snapshot and timestamp even when nothing new was published.
    repo.refresh(&keydir)?;
    Ok((repo, ids))
}

/// A read-only static file server for a registry folder.
async fn serve(dir: PathBuf, listen: SocketAddr) -> anyhow::Result<()> {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    async fn file(
        State(dir): State<PathBuf>,
        UrlPath(path): UrlPath<String>,
    ) -> axum::response::Response {
        let rel = Path::new(&path);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return StatusCode::NOT_FOUND.into_response();
        }
        match tokio::fs::read(dir.join(rel)).await {
            Ok(bytes) => {
                let ty = if path.ends_with(".json") {
                    "application/json"
                } else {
                    "application/octet-stream"
                };
                ([(header::CONTENT_TYPE, ty)], bytes).into_response()
            }
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    }

    let app = axum::Router::new()
        .route("/{*path}", axum::routing::get(file))
        .with_state(dir.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!(
        "Serving the registry {} at http://{}/ (read-only)",
        dir.display(),
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
