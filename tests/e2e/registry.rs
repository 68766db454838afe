//! Signed registries end to end: keys, a registry made with the real `osler registry`
//! commands, served over HTTP or read from a folder, and a running clinic that installs,
//! updates, rolls back and refuses what it must.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use osler_registry::meta::{self, Index, Release, Role, RoleKeys, Root, Timestamp};
use osler_registry::{KeyDir, Package, Repo, SecretKey};
use serde_json::{Value, json};

use crate::support::{Api, OSLER, Resp, Sandbox, Server, package, packages, plugin_env};

const ADMIN: (&str, &str) = ("admin", "osler-demo-admin");

/// A registry made with the CLI: role keys, a publisher "Acme" delegated `notices` and
/// `echo-*` and the interface package `osler:fixtures` (which echo-provider exports), and a
/// second publisher "Mallory" delegated only `mallory-*`.
struct Reg {
    dir: PathBuf,
    keys: PathBuf,
    acme: PathBuf,
    mallory: PathBuf,
    root_key: String,
}

impl Reg {
    fn new(sb: &Sandbox) -> Reg {
        let root = sb.root();
        let dir = root.join("registry");
        let keys = root.join("registry-keys");
        let acme = root.join("acme.pem");
        let mallory = root.join("mallory.pem");
        let acme_pub = sb.osler_ok(&["keys", "generate", "--out", s(&acme)], &[]);
        let mode = std::fs::metadata(&acme).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600,
            "private keys are written for their owner only"
        );
        let mallory_pub = sb.osler_ok(&["keys", "generate", "--out", s(&mallory)], &[]);
        let out = sb.osler_ok(&["registry", "init", s(&dir), "--keys", s(&keys)], &[]);
        let root_key = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("root_key = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no root key in: {out}"))
            .to_string();
        for (name, key, plugins, interfaces) in [
            (
                "Acme",
                acme_pub.trim(),
                "notices,echo-*",
                Some("osler:fixtures"),
            ),
            ("Mallory", mallory_pub.trim(), "mallory-*", None),
        ] {
            let mut args = vec![
                "registry",
                "add-publisher",
                s(&dir),
                "--keys",
                s(&keys),
                "--name",
                name,
                "--key",
                key,
                "--plugins",
                plugins,
            ];
            if let Some(i) = interfaces {
                args.extend(["--interfaces", i]);
            }
            sb.osler_ok(&args, &[]);
        }
        Reg {
            dir,
            keys,
            acme,
            mallory,
            root_key,
        }
    }

    /// Sign `package` as Acme with `osler plugin sign` and publish it.
    fn publish(&self, sb: &Sandbox, package: &Path) {
        let out = self.publish_as(sb, package, &self.acme, "Acme");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Sign `package` with `key` as `publisher` (`osler plugin sign`), then `osler registry
    /// publish` it: the publish command's output.
    fn publish_as(&self, sb: &Sandbox, package: &Path, key: &Path, publisher: &str) -> Output {
        let signed = package.with_extension("signed.osp");
        sb.osler_ok(
            &[
                "plugin",
                "sign",
                s(package),
                "--key",
                s(key),
                "--publisher",
                publisher,
                "--out",
                s(&signed),
            ],
            &[],
        );
        sb.osler(
            &[
                "registry",
                "publish",
                s(&self.dir),
                s(&signed),
                "--keys",
                s(&self.keys),
            ],
            &[],
        )
    }

    fn key_dir(&self) -> KeyDir {
        KeyDir(self.keys.clone())
    }

    fn key(&self, role: Role) -> SecretKey {
        self.key_dir().load(role).unwrap()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A copy of `package` with another version (and optionally more capabilities or another
/// API range), unsigned, written into the sandbox.
fn variant(sb: &Sandbox, package: &Path, version: &str, more_caps: &[&str]) -> PathBuf {
    let mut pkg = Package::read(&std::fs::read(package).unwrap()).unwrap();
    let old_version = pkg
        .manifest
        .lines()
        .find(|l| l.starts_with("version = "))
        .unwrap()
        .to_string();
    pkg.manifest = pkg
        .manifest
        .replacen(&old_version, &format!("version = \"{version}\""), 1);
    if !more_caps.is_empty() {
        let line = pkg
            .manifest
            .lines()
            .find(|l| l.starts_with("capabilities = ["))
            .unwrap()
            .to_string();
        let extra: String = more_caps.iter().map(|c| format!(", \"{c}\"")).collect();
        pkg.manifest =
            pkg.manifest
                .replacen(&line, &line.replacen(']', &format!("{extra}]"), 1), 1);
    }
    pkg.signature = None;
    let id = Path::new(package)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .split('-')
        .next()
        .unwrap()
        .to_string();
    let out = sb.root().join(format!("{id}-{version}.osp"));
    std::fs::write(&out, pkg.write().unwrap()).unwrap();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// `osler.toml` in the sandbox naming one registry.
fn configure(sb: &Sandbox, url: &str, root_key: &str) {
    std::fs::write(
        sb.root().join("osler.toml"),
        format!("[[registries]]\nname = \"acme\"\nurl = \"{url}\"\nroot_key = \"{root_key}\"\n"),
    )
    .unwrap();
}

fn clinic(sb: &Sandbox) -> Server {
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sb.demo_with_env(3, &env)
}

async fn install(api: &Api, token: &str, spec: &str, force: bool) -> Resp {
    api.post(
        "/api/v1/admin/registry/install",
        token,
        &json!({ "plugin": spec, "force": force }),
    )
    .await
}

async fn version_of(api: &Api, token: &str, id: &str) -> Value {
    api.get(&format!("/api/v1/admin/plugins/{id}"), token)
        .await
        .expect(200)
        .json
}

/// `osler registry serve` on a free port; killed when dropped.
struct RegistryServer {
    child: Child,
    url: String,
}

impl RegistryServer {
    fn start(dir: &Path) -> RegistryServer {
        let mut child = Command::new(OSLER)
            .args(["registry", "serve", s(dir), "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start osler registry serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("an announcement").unwrap();
        let url = first
            .split(" at ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no URL in: {first}"))
            .trim_end_matches('/')
            .to_string();
        std::thread::spawn(move || for _ in lines {});
        RegistryServer { child, url }
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_clinic_installs_updates_rolls_back_and_resolves_from_a_served_registry() {
    let pk = packages();
    let sb = Sandbox::new();
    let reg = Reg::new(&sb);
    let v1 = variant(&sb, &pk.notices, "1.0.0", &[]);
    let v2 = variant(&sb, &pk.notices, "1.1.0", &[]);
    reg.publish(&sb, &v1);
    reg.publish(&sb, &v2);
    reg.publish(&sb, &pk.provider);
    reg.publish(&sb, &pk.consumer);
    // A published version never changes.
    let again = sb.osler(
        &[
            "registry",
            "publish",
            s(&reg.dir),
            s(&v1.with_extension("signed.osp")),
            "--keys",
            s(&reg.keys),
        ],
        &[],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already published"));

    let served = RegistryServer::start(&reg.dir);
    configure(&sb, &served.url, &reg.root_key);
    let server = clinic(&sb);
    let api = server.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await;

    let found = api
        .get("/api/v1/admin/registry/search?q=notice", &admin)
        .await
        .expect(200);
    assert_eq!(found.json["plugins"][0]["id"], "notices");
    assert_eq!(found.json["plugins"][0]["version"], "1.1.0");
    assert_eq!(found.json["plugins"][0]["publisher"], "Acme");

    // The newest version matching the request.
    let r = install(&api, &admin, "notices@~1.0", false)
        .await
        .expect(200);
    assert_eq!(r.json["results"][0]["outcome"], "installed");
    assert_eq!(r.json["results"][0]["plugin"]["version"], "1.0.0");
    assert_eq!(r.json["results"][0]["plugin"]["origin"]["registry"], "acme");
    assert_eq!(r.json["results"][0]["plugin"]["development"], false);
    api.enable(&admin, "notices", "main", &["kv"]).await;
    api.get_at("/plugins/notices/", &admin, "main")
        .await
        .expect(200);

    // Update to the newest.
    let r = api
        .post(
            "/api/v1/admin/registry/update",
            &admin,
            &json!({ "plugin": "notices" }),
        )
        .await
        .expect(200);
    assert_eq!(r.json["results"][0]["plugin"]["version"], "1.1.0");
    assert_eq!(r.json["results"][0]["replaced"], "1.0.0");
    api.get_at("/plugins/notices/", &admin, "main")
        .await
        .expect(200);

    // Roll back to the version installed before, kept locally.
    let r = api
        .post("/api/v1/admin/plugins/notices/rollback", &admin, &json!({}))
        .await
        .expect(200);
    assert_eq!(r.json["version"], "1.0.0");
    assert_eq!(r.json["previousVersion"], "1.1.0");
    api.get_at("/plugins/notices/", &admin, "main")
        .await
        .expect(200);

    // Yanked: update no longer chooses it; a range refuses it; an exact pin installs it.
    sb.osler_ok(
        &[
            "registry",
            "yank",
            s(&reg.dir),
            "notices@1.1.0",
            "--keys",
            s(&reg.keys),
        ],
        &[],
    );
    let r = api
        .post("/api/v1/admin/registry/update", &admin, &json!({}))
        .await
        .expect(200);
    assert_eq!(
        r.json["results"],
        json!([]),
        "nothing newer that is not yanked"
    );
    let r = install(&api, &admin, "notices@^1.1", false)
        .await
        .expect(409);
    assert_eq!(r.error_code(), "yanked");
    assert!(r.text.contains("notices@=1.1.0"), "{}", r.text);
    let r = install(&api, &admin, "notices@=1.1.0", false)
        .await
        .expect(200);
    assert_eq!(r.json["results"][0]["plugin"]["version"], "1.1.0");

    // An imported interface: the provider comes first, from the same registry.
    let r = install(&api, &admin, "echo-consumer", false)
        .await
        .expect(200);
    let ids: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["plugin"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["echo-provider", "echo-consumer"]);

    // The audit trail says where each install came from.
    let audit = api.audit_all(&admin, "actor=admin").await;
    assert!(
        audit.iter().any(|e| e["action"] == "plugin.install"
            && e["resource"] == "Plugin/notices@1.0.0"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("registry 'acme', publisher 'Acme'"))),
        "{audit:?}"
    );
    assert!(
        audit.iter().any(|e| e["action"] == "plugin.rollback"
            && e["detail"] == "rolled back from 1.1.0 to 1.0.0"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn the_command_line_installs_searches_and_stages_from_a_folder_registry() {
    let pk = packages();
    let sb = Sandbox::new();
    let reg = Reg::new(&sb);
    reg.publish(&sb, &variant(&sb, &pk.notices, "1.0.0", &[]));
    configure(&sb, s(&reg.dir), &reg.root_key);
    sb.init("an admin password 1");
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let out = sb.osler_ok(&["plugin", "search", "board"], &env);
    assert!(out.contains("notices 1.0.0"), "{out}");
    let out = sb.osler_ok(&["plugin", "install", "notices"], &env);
    assert!(
        out.contains("Installed notices 1.0.0 from registry 'acme'"),
        "{out}"
    );

    // A new version that asks for more: staged, not installed, with exactly what it adds.
    // (notices is on API 0.2, where a kv batch may publish events: asking for
    // `events.publish` is asking for something the component can use.)
    reg.publish(
        &sb,
        &variant(&sb, &pk.notices, "1.1.0", &["events.publish"]),
    );
    let out = sb.osler_ok(&["plugin", "update"], &env);
    assert!(out.contains("1.1.0 is staged, NOT installed"), "{out}");
    assert!(out.contains("+ events.publish"), "{out}");
    let list = sb.osler_ok(&["plugin", "list"], &env);
    assert!(list.contains("notices 1.0.0"), "{list}");
    assert!(list.contains("staged 1.1.0 waits for approval"), "{list}");
    let out = sb.osler_ok(&["plugin", "approve", "notices"], &env);
    assert!(
        out.contains("notices 1.1.0 is installed. It adds: events.publish"),
        "{out}"
    );

    // An imported interface nothing provides: refused, naming it.
    reg.publish(&sb, &pk.consumer);
    let out = sb.osler(&["plugin", "install", "echo-consumer"], &env);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("imports osler:fixtures/echo ^0.1, which no installed plugin provides"),
        "{err}"
    );

    // The registry rotates its root key: the clinic follows (old and new keys signed it).
    let new_root = sb.root().join("new-root.pem");
    sb.osler_ok(&["keys", "generate", "--out", s(&new_root)], &[]);
    let out = sb.osler_ok(
        &[
            "registry",
            "rotate-root",
            s(&reg.dir),
            "--keys",
            s(&reg.keys),
            "--new-key",
            s(&new_root),
        ],
        &[],
    );
    assert!(out.contains("Root rotated to version 2"), "{out}");
    let out = sb.osler_ok(&["plugin", "search", "board"], &env);
    assert!(out.contains("notices 1.1.0"), "{out}");

    // A registry whose root is not signed by the pinned key is not trusted at all.
    std::fs::write(
        sb.root().join("osler.toml"),
        format!(
            "[[registries]]\nname = \"elsewhere\"\nurl = \"{}\"\nroot_key = \"{}\"\n",
            s(&reg.dir),
            SecretKey::load(&reg.mallory).unwrap().public()
        ),
    )
    .unwrap();
    let out = sb.osler(&["plugin", "search", "board"], &env);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not signed by the key pinned in osler.toml"),
        "{err}"
    );

    // A local package file needs the development flag.
    let out = sb.osler(&["plugin", "install", s(&pk.notices)], &env);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dev"));
}

/// One attack on the registry: how the files are altered, and the error the clinic must give.
struct Attack {
    name: &'static str,
    /// The error code; some attacks may surface as either of two.
    code: &'static [&'static str],
    says: &'static str,
    spec: &'static str,
}

#[tokio::test]
async fn tampered_registries_are_refused_and_the_installed_plugin_keeps_serving() {
    let pk = packages();
    let sb = Sandbox::new();
    let reg = Reg::new(&sb);
    reg.publish(&sb, &variant(&sb, &pk.notices, "1.0.0", &[]));
    reg.publish(&sb, &variant(&sb, &pk.notices, "1.1.0", &[]));
    reg.publish(
        &sb,
        &variant(&sb, &pk.notices, "1.2.0", &["events.publish"]),
    );
    // The clinic reads the registry from `live`, which each attack replaces.
    let live = sb.root().join("live");
    copy_dir(&reg.dir, &live);
    configure(&sb, s(&live), &reg.root_key);
    let server = clinic(&sb);
    let api = server.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    install(&api, &admin, "notices@=1.1.0", false)
        .await
        .expect(200);
    api.enable(&admin, "notices", "main", &["kv"]).await;
    // A copy of the registry as it is now, replayed later.
    let old = sb.root().join("old");
    copy_dir(&reg.dir, &old);
    // The index changes after that copy (a version yanked and restored).
    let repo = Repo::open(&reg.dir).unwrap();
    let v12 = semver::Version::new(1, 2, 0);
    repo.yank(&reg.key_dir(), "notices", &v12, true).unwrap();
    repo.yank(&reg.key_dir(), "notices", &v12, false).unwrap();

    let attacks = [
        Attack {
            name: "a package altered after the publisher signed it, listed with its new hash",
            code: &["bad-package-signature"],
            says: "does not match its contents",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "a package signed by a key not delegated for the plugin id",
            code: &["publisher-not-delegated"],
            says: "does not delegate for 'notices'",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "a package swapped on the mirror (hash mismatch)",
            code: &["hash-mismatch"],
            says: "does not match the hash",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "a package longer than its metadata says",
            code: &["length-mismatch"],
            says: "larger than",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "timestamp signed by a key that is not the registry's",
            code: &["bad-metadata-signature"],
            says: "timestamp.json is not signed by the registry's timestamp key",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "a new root raising the snapshot threshold to 2, snapshot signed once",
            code: &["bad-metadata-signature"],
            says: "1 valid signature(s), 2 required",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "a new root signed only by the new key",
            code: &["bad-metadata-signature"],
            says: "2.root.json is not signed by the registry's root key",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "a whole registry replaced by one with other keys",
            code: &["bad-metadata-signature"],
            says: "timestamp.json is not signed by the registry's timestamp key",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "old metadata replayed (rollback)",
            code: &["metadata-rollback"],
            says: "older than version",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "a frozen view: the timestamp has expired",
            code: &["metadata-expired"],
            says: "timestamp.json expired",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "an old index mixed into the current snapshot",
            code: &["hash-mismatch", "length-mismatch"],
            says: "index/notices.json",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "a version lower than the installed one",
            code: &["conflict"],
            says: "force a downgrade",
            spec: "notices@=1.0.0",
        },
        Attack {
            name: "a yanked version asked for by range",
            code: &["yanked"],
            says: "is yanked",
            spec: "notices@~1.1",
        },
        Attack {
            name: "a version for a host API this host does not have",
            code: &["incompatible-api"],
            says: "needs host API ^0.3",
            spec: "notices@~1.1",
        },
    ];

    for (n, attack) in attacks.iter().enumerate() {
        // Each attack starts from the current registry with fresh timestamp and snapshot.
        Repo::open(&reg.dir)
            .unwrap()
            .refresh(&reg.key_dir())
            .unwrap();
        copy_dir(&reg.dir, &live);
        tamper(n, &reg, &live, &old);
        let r = install(&api, &admin, attack.spec, false).await;
        assert!(
            r.status.is_client_error() || r.status.is_server_error(),
            "{}: was accepted: {}",
            attack.name,
            r.text
        );
        assert!(
            attack.code.contains(&r.error_code()),
            "{}: {}",
            attack.name,
            r.text
        );
        let message = r.json["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(attack.says), "{}: {message}", attack.name);
        // Nothing changed: the installed version still serves.
        let v = version_of(&api, &admin, "notices").await;
        assert_eq!(v["version"], "1.1.0", "{}", attack.name);
        api.get_at("/plugins/notices/", &admin, "main")
            .await
            .expect(200);
    }

    // Capabilities: the new version asking for more is staged until approved.
    Repo::open(&reg.dir)
        .unwrap()
        .refresh(&reg.key_dir())
        .unwrap();
    copy_dir(&reg.dir, &live);
    let r = install(&api, &admin, "notices@=1.2.0", false)
        .await
        .expect(200);
    assert_eq!(r.json["results"][0]["outcome"], "staged");
    assert_eq!(r.json["results"][0]["added"], json!(["events.publish"]));
    assert_eq!(
        version_of(&api, &admin, "notices").await["version"],
        "1.1.0"
    );
    let r = api
        .post("/api/v1/admin/plugins/notices/approve", &admin, &json!({}))
        .await
        .expect(200);
    assert_eq!(r.json["plugin"]["version"], "1.2.0");
    assert_eq!(r.json["added"], json!(["events.publish"]));
    // The downgrade an administrator forces.
    let r = install(&api, &admin, "notices@=1.0.0", true)
        .await
        .expect(200);
    assert_eq!(r.json["results"][0]["plugin"]["version"], "1.0.0");
}

fn read_doc<D: meta::Document>(path: &Path) -> D {
    meta::parse_unverified(&std::fs::read(path).unwrap(), "test").unwrap()
}

/// Re-sign the snapshot and timestamp of `dir` over its current files, as a registry
/// operator (or an attacker holding those online keys) would.
fn reseal(reg: &Reg, dir: &Path) {
    Repo::open(dir).unwrap().refresh(&reg.key_dir()).unwrap();
}

fn resign_index(reg: &Reg, dir: &Path, change: impl FnOnce(&mut Index)) {
    let path = dir.join("index/notices.json");
    let mut index: Index = read_doc(&path);
    change(&mut index);
    // Same version: the clinic must refuse it for what it is, not for its number (a higher
    // number here would make later attacks, built from the clean registry, look like replays).
    std::fs::write(&path, meta::sign(&index, &[&reg.key(Role::Targets)])).unwrap();
    reseal(reg, dir);
}

/// The package file of notices 1.0.0 in `dir`, and its index entry's position.
fn package_of(dir: &Path) -> PathBuf {
    dir.join("packages/notices/notices-1.0.0.osp")
}

fn rehash(index: &mut Index, bytes: &[u8]) {
    let r = index
        .releases
        .iter_mut()
        .find(|r| r.version.to_string() == "1.0.0")
        .unwrap();
    r.sha256 = meta::sha256_hex(bytes);
    r.length = bytes.len() as u64;
}

fn tamper(n: usize, reg: &Reg, live: &Path, old: &Path) {
    let now = time::OffsetDateTime::now_utc();
    match n {
        0 => {
            // The component changed after signing; the registry re-lists its hash.
            let path = package_of(live);
            let mut pkg = Package::read(&std::fs::read(&path).unwrap()).unwrap();
            pkg.component.extend_from_slice(b"\0");
            let bytes = pkg.write().unwrap();
            std::fs::write(&path, &bytes).unwrap();
            resign_index(reg, live, |i| rehash(i, &bytes));
        }
        1 => {
            // Mallory signs a notices package; the registry lists it under Acme.
            let path = package_of(live);
            let mut pkg = Package::read(&std::fs::read(&path).unwrap()).unwrap();
            pkg.sign("Acme", &SecretKey::load(&reg.mallory).unwrap());
            let bytes = pkg.write().unwrap();
            std::fs::write(&path, &bytes).unwrap();
            resign_index(reg, live, |i| rehash(i, &bytes));
        }
        2 => {
            let path = package_of(live);
            let mut bytes = std::fs::read(&path).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&path, &bytes).unwrap();
        }
        3 => {
            let path = package_of(live);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend_from_slice(&[0; 4096]);
            std::fs::write(&path, &bytes).unwrap();
        }
        4 => {
            let path = live.join("timestamp.json");
            let ts: Timestamp = read_doc(&path);
            let stranger = SecretKey::generate().unwrap();
            std::fs::write(&path, meta::sign(&ts, &[&stranger])).unwrap();
        }
        5 => {
            // Root v2 (properly signed by the root key) wants two snapshot signatures.
            let mut root: Root = read_doc(&live.join("root.json"));
            let extra = SecretKey::generate().unwrap();
            root.version = 2;
            root.keys
                .insert(extra.public().id(), extra.public().to_string());
            let snap = root.roles.get_mut(&Role::Snapshot).unwrap();
            snap.keyids.push(extra.public().id());
            snap.threshold = 2;
            let bytes = meta::sign(&root, &[&reg.key(Role::Root)]);
            std::fs::write(live.join("2.root.json"), &bytes).unwrap();
            std::fs::write(live.join("root.json"), &bytes).unwrap();
        }
        6 => {
            // A new root key that the old root never approved.
            let mut root: Root = read_doc(&live.join("root.json"));
            let new = SecretKey::generate().unwrap();
            root.version = 2;
            root.keys
                .insert(new.public().id(), new.public().to_string());
            root.roles.insert(
                Role::Root,
                RoleKeys {
                    keyids: vec![new.public().id()],
                    threshold: 1,
                },
            );
            std::fs::write(live.join("2.root.json"), meta::sign(&root, &[&new])).unwrap();
        }
        7 => {
            // An attacker's registry from scratch at the same address.
            let _ = std::fs::remove_dir_all(live);
            let keys = live.with_extension("attacker-keys");
            let _ = std::fs::remove_dir_all(&keys);
            Repo::init(live, &KeyDir(keys), Default::default()).unwrap();
        }
        8 => {
            copy_dir(old, live);
        }
        9 => {
            let path = live.join("timestamp.json");
            let mut ts: Timestamp = read_doc(&path);
            ts.version += 1;
            ts.expires = now - time::Duration::hours(1);
            std::fs::write(&path, meta::sign(&ts, &[&reg.key(Role::Timestamp)])).unwrap();
        }
        10 => {
            // The index of the old copy, with the current snapshot (left as it is).
            std::fs::copy(
                old.join("index/notices.json"),
                live.join("index/notices.json"),
            )
            .unwrap();
        }
        11 | 12 => {}
        13 => {
            // Every 1.1.x release re-listed for a future host API.
            resign_index(reg, live, |i| {
                for r in &mut i.releases {
                    if r.version.minor == 1 {
                        r.api = "^0.3".into();
                    }
                }
            });
        }
        _ => unreachable!(),
    }
    if n == 12 {
        let mut index: Index = read_doc(&live.join("index/notices.json"));
        for r in &mut index.releases {
            if r.version.minor == 1 {
                r.yanked = true;
            }
        }
        std::fs::write(
            live.join("index/notices.json"),
            meta::sign(&index, &[&reg.key(Role::Targets)]),
        )
        .unwrap();
        reseal(reg, live);
    }
}

/// Interfaces have owners (issue 11, item 1): a third party's package exporting
/// `osler:drugref/lookup` is refused by `osler registry publish`; forced into the registry by
/// its operator, it is refused by the clinic, whether the index lists the export or hides it,
/// and never chosen to provide prescribing's import; the publisher that owns `osler:drugref`
/// installs drugref and prescribing as before.
#[tokio::test]
async fn only_the_publisher_owning_an_interface_package_can_provide_it() {
    let sb = Sandbox::new();
    let reg = Reg::new(&sb);
    let drugref = package("plugins/drugref");
    let prescribing = package("plugins/prescribing");
    // Prescribing also imports `osler:resources/lookup` (whose provider imports encounter's
    // `problems`), but optionally: published here, and never brought in by installing it.
    let resources = package("plugins/resources");
    let encounter = package("plugins/encounter");

    // The first-party publisher owns its plugin ids and the interface packages they export.
    let osler_key = sb.root().join("osler-project.pem");
    let osler_pub = sb.osler_ok(&["keys", "generate", "--out", s(&osler_key)], &[]);
    let add = |name: &str, key: &str, plugins: &str, interfaces: &str| {
        let mut args = vec![
            "registry",
            "add-publisher",
            s(&reg.dir),
            "--keys",
            s(&reg.keys),
            "--name",
            name,
            "--key",
            key,
        ];
        if !plugins.is_empty() {
            args.extend(["--plugins", plugins]);
        }
        if !interfaces.is_empty() {
            args.extend(["--interfaces", interfaces]);
        }
        sb.osler(&args, &[])
    };
    let out = add(
        "Osler project",
        osler_pub.trim(),
        "drugref,prescribing,resources,encounter",
        "osler:drugref,osler:prescribing,osler:resources,osler:encounter",
    );
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("Osler project may export interfaces of: osler:drugref"),
        "{said}"
    );
    // The host's own API is nobody's.
    let mallory_pub = SecretKey::load(&reg.mallory).unwrap().public().to_string();
    for reserved in ["osler:plugin", "osler:*", "wasi:io"] {
        let out = add("Mallory", &mallory_pub, "", reserved);
        assert!(!out.status.success(), "{reserved} was delegated");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no publisher can own"), "{reserved}: {err}");
    }
    // Mallory may publish `bad-drugref` (an id that sorts before `drugref`), and nothing
    // lets it export `osler:drugref`.
    let out = add("Mallory", &mallory_pub, "bad-drugref", "");
    assert!(out.status.success(), "{out:?}");
    for p in [&drugref, &prescribing, &resources, &encounter] {
        let out = reg.publish_as(&sb, p, &osler_key, "Osler project");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The hijacker: the drug reference's own component under Mallory's id and signature.
    let mut hijack = Package::read(&std::fs::read(&drugref).unwrap()).unwrap();
    hijack.manifest = hijack
        .manifest
        .replacen("id = \"drugref\"", "id = \"bad-drugref\"", 1);
    assert!(hijack.manifest.contains("\"osler:drugref/lookup\""));
    hijack.signature = None;
    let hijack_path = sb.root().join("bad-drugref-0.1.0.osp");
    std::fs::write(&hijack_path, hijack.write().unwrap()).unwrap();
    let out = reg.publish_as(&sb, &hijack_path, &reg.mallory, "Mallory");
    assert!(!out.status.success(), "the registry published a hijacker");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'bad-drugref' exports osler:drugref/lookup")
            && err.contains("does not delegate that interface package to its publisher 'Mallory'")
            && err.contains("--interfaces"),
        "{err}"
    );
    assert!(!reg.dir.join("index/bad-drugref.json").exists());

    // The operator forces it in anyway, first with an index entry that hides the export.
    let signed = std::fs::read(hijack_path.with_extension("signed.osp")).unwrap();
    force(&reg, "bad-drugref", &signed, 1, &[]);
    configure(&sb, s(&reg.dir), &reg.root_key);
    let server = clinic(&sb);
    let api = server.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    let lee = api.login("drlee", "osler-demo-physician").await;
    let r = install(&api, &admin, "bad-drugref", false)
        .await
        .expect(422);
    assert_eq!(r.error_code(), "interface-not-delegated", "{}", r.text);
    assert!(
        r.text.contains("exports osler:drugref/lookup"),
        "{}",
        r.text
    );
    // Then listing it honestly: refused before it is even downloaded.
    force(
        &reg,
        "bad-drugref",
        &signed,
        2,
        &[("osler:drugref/lookup", "0.1.0")],
    );
    let r = install(&api, &admin, "bad-drugref", false)
        .await
        .expect(422);
    assert_eq!(r.error_code(), "interface-not-delegated", "{}", r.text);
    api.get("/api/v1/admin/plugins/bad-drugref", &admin)
        .await
        .expect(404);

    // Prescribing imports `osler:drugref/lookup`: the provider brought in with it is the
    // owner's drugref, not the hijacker listed first. Its optional imports
    // (`osler:resources/lookup`, `osler:caisi/remote`) bring in nothing, though the registry
    // publishes a provider of the first.
    let r = install(&api, &admin, "prescribing", false)
        .await
        .expect(200);
    let ids: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["plugin"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["drugref", "prescribing"], "{}", r.text);
    assert_eq!(
        r.json["results"][0]["plugin"]["origin"]["publisher"],
        "Osler project"
    );
    api.enable(&admin, "drugref", "main", &["kv"]).await;
    api.get_at("/plugins/drugref/api/drugs?q=warf", &lee, "main")
        .await
        .expect(200);
    let listed = api.get("/api/v1/admin/plugins", &admin).await.expect(200);
    assert!(!listed.text.contains("bad-drugref"), "{}", listed.text);
}

/// As a registry operator holding the targets key can: put `bytes` into the registry as
/// `id` 0.1.0, listed by Mallory with `exports`, without `osler registry publish`.
fn force(reg: &Reg, id: &str, bytes: &[u8], index_version: u64, exports: &[(&str, &str)]) {
    let path = format!("packages/{id}/{id}-0.1.0.osp");
    std::fs::create_dir_all(reg.dir.join(format!("packages/{id}"))).unwrap();
    std::fs::write(reg.dir.join(&path), bytes).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mallory = SecretKey::load(&reg.mallory).unwrap().public();
    let index = Index {
        kind: "index".into(),
        id: id.into(),
        version: index_version,
        expires: now + time::Duration::days(1),
        releases: vec![Release {
            version: semver::Version::new(0, 1, 0),
            name: "Drug reference".into(),
            description: String::new(),
            publisher: "Mallory".into(),
            keyid: mallory.id(),
            path,
            sha256: meta::sha256_hex(bytes),
            length: bytes.len() as u64,
            api: "^0.1".into(),
            capabilities: ["kv".to_string()].into(),
            exports: exports
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            imports: Default::default(),
            yanked: false,
            published: now,
        }],
    };
    std::fs::write(
        reg.dir.join(format!("index/{id}.json")),
        meta::sign(&index, &[&reg.key(Role::Targets)]),
    )
    .unwrap();
    reseal(reg, &reg.dir);
}

/// The administrator's page: search a registry, install, enable at a site, all as form posts
/// carrying the session's CSRF token; a forged post and a physician are refused.
#[tokio::test]
async fn an_administrator_installs_and_enables_from_the_plugins_page() {
    let pk = packages();
    let sb = Sandbox::new();
    let reg = Reg::new(&sb);
    reg.publish(&sb, &variant(&sb, &pk.notices, "1.0.0", &[]));
    configure(&sb, s(&reg.dir), &reg.root_key);
    let server = clinic(&sb);
    let api = server.api();
    let login = api.try_login(ADMIN.0, ADMIN.1).await.expect(200);
    let token = login.json["token"].as_str().unwrap().to_string();
    let cookie = format!("osler_session={token}");
    let get = |path: &str| {
        api.client
            .get(server.url(path))
            .header("cookie", cookie.clone())
            .send()
    };
    let page = get("/admin/plugins?q=board")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Clinic notices") && page.contains(">Install<"),
        "{page}"
    );
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page[at..at + page[at..].find('"').unwrap()].to_string();
    let post = |body: String| {
        api.client
            .post(server.url("/admin/plugins/action"))
            .header("cookie", cookie.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };

    let forged = post("action=install&plugin=notices".into()).await.unwrap();
    assert_eq!(forged.status(), 403);
    let r = post(format!("action=install&plugin=notices&csrf={csrf}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.contains("Installed+notices+1.0.0"), "{to}");
    let r = post(format!("action=enable&id=notices&site=main&csrf={csrf}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = post(format!(
        "action=grants&id=notices&site=main&capability=kv&csrf={csrf}"
    ))
    .await
    .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("msg="));
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    api.get_at("/plugins/notices/", &admin, "main")
        .await
        .expect(200);
    let page = get("/admin/plugins").await.unwrap().text().await.unwrap();
    assert!(page.contains("from registry <b>acme</b>"), "{page}");

    // A physician may not manage plugins, on the page either.
    let lee = api
        .try_login("drlee", "osler-demo-physician")
        .await
        .expect(200);
    let lee_token = lee.json["token"].as_str().unwrap().to_string();
    let r = api
        .client
        .get(server.url("/admin/plugins"))
        .header("cookie", format!("osler_session={lee_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
