//! Plugins written in other languages: the JavaScript and Python examples of the SDK guide
//! (`sdk/examples/js-hello`, `sdk/examples/py-hello`) built with their pinned toolchains,
//! packed with `osler plugin pack --component`, installed into a running server and used; and
//! `pack --component` refusing what an install would refuse, with the same words.
//!
//! The toolchains come from `npm ci --prefix sdk/examples/js-hello` and a virtual environment
//! at `sdk/examples/py-hello/.venv` (`.ci/run` makes both). Without them the example test says
//! so and skips, except under CI (`CI` set), where a missing toolchain is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::support::{Api, OSLER, Sandbox, packages, plugin_env, workspace};

const ADMIN: (&str, &str) = ("admin", "osler-demo-admin");
const DRLEE: (&str, &str) = ("drlee", "osler-demo-physician");
const DRLEE_NAME: &str = crate::support::demo::PHYSICIAN_DISPLAY_NAME;

/// An example plugin in another language and the command that builds its component.
struct Example {
    id: &'static str,
    dir: PathBuf,
    build: Command,
    component: PathBuf,
}

/// The examples whose toolchain is installed, or why one is missing.
fn examples() -> Result<Vec<Example>, String> {
    let root = workspace().join("sdk").join("examples");
    let js = root.join("js-hello");
    let py = root.join("py-hello");
    let componentize_js = js.join("node_modules/.bin/componentize-js");
    if !componentize_js.exists() {
        return Err(format!(
            "{} is missing; run: npm ci --prefix sdk/examples/js-hello",
            componentize_js.display()
        ));
    }
    let componentize_py = py.join(".venv/bin/componentize-py");
    if !componentize_py.exists() {
        return Err(format!(
            "{} is missing; run: python3 -m venv sdk/examples/py-hello/.venv && \
             sdk/examples/py-hello/.venv/bin/pip install -r sdk/examples/py-hello/requirements.txt",
            componentize_py.display()
        ));
    }
    // The commands of the SDK guide and the examples' READMEs.
    let mut build_js = Command::new("npm");
    build_js.args(["run", "build"]).current_dir(&js);
    let mut build_py = Command::new(&componentize_py);
    build_py
        .args(["-d", "wit", "-w", "plugin", "componentize", "app"])
        .args(["-o", "dist/py-hello.wasm"])
        .current_dir(&py);
    std::fs::create_dir_all(py.join("dist")).expect("create dist/");
    Ok(vec![
        Example {
            id: "js-hello",
            component: js.join("dist/js-hello.wasm"),
            dir: js,
            build: build_js,
        },
        Example {
            id: "py-hello",
            component: py.join("dist/py-hello.wasm"),
            dir: py,
            build: build_py,
        },
    ])
}

/// `osler plugin pack` with `args`; returns (success, stdout, stderr).
fn pack(args: &[&Path]) -> (bool, String, String) {
    let mut c = Command::new(OSLER);
    c.args(["plugin", "pack"]);
    for (flag, value) in ["--component", "--manifest", "--out"].iter().zip(args) {
        c.arg(flag).arg(value);
    }
    let out = c.output().expect("run osler plugin pack");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Build an example with its toolchain, then pack it with `osler plugin pack --component`
/// into `dir`; its id and package.
fn build_and_pack(mut ex: Example, dir: &Path) -> (&'static str, PathBuf) {
    let t = Instant::now();
    let out = ex.build.output().expect("run the example's build");
    assert!(
        out.status.success(),
        "building {} failed:\n{}\n{}",
        ex.id,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let built = t.elapsed();
    let t = Instant::now();
    let osp = dir.join(format!("{}.osp", ex.id));
    let (ok, stdout, stderr) = pack(&[&ex.component, &ex.dir.join("plugin.toml"), &osp]);
    assert!(ok, "pack {}: {stdout}\n{stderr}", ex.id);
    assert!(
        stdout.starts_with(&format!("Packed {} 0.1.0 (", ex.id)) && osp.exists(),
        "{stdout}"
    );
    eprintln!(
        "{}: component {} KiB, built in {:.1} s, packed (checked) in {:.1} s",
        ex.id,
        std::fs::metadata(&ex.component).expect("component").len() / 1024,
        built.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    (ex.id, osp)
}

#[tokio::test]
async fn javascript_and_python_plugins_build_pack_install_and_answer() {
    let examples = match examples() {
        Ok(e) => e,
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("CI must run the JavaScript and Python examples: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED javascript_and_python_plugins…: {why}");
            return;
        }
    };
    let sb = Sandbox::new();
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(3, &env);
    // The two toolchains build and pack side by side: each is mostly one thread.
    let root = sb.root();
    let packages: Vec<(&str, PathBuf)> = std::thread::scope(|s| {
        let jobs: Vec<_> = examples
            .into_iter()
            .map(|ex| s.spawn(move || build_and_pack(ex, root)))
            .collect();
        jobs.into_iter()
            .map(|j| j.join().expect("build and pack"))
            .collect()
    });
    let api = server.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    let lee = api.login(DRLEE.0, DRLEE.1).await;
    for (id, osp) in &packages {
        let t = Instant::now();
        let r = api.install(&admin, osp).await.expect(201);
        assert_eq!(r.json["capabilities"], json!(["kv"]), "{}", r.text);
        eprintln!(
            "{id}: installed (compiled) in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        api.enable(&admin, id, "main", &["kv"]).await;
        uses_kv_and_config(&api, &admin, &lee, id).await;
    }
    let home = api.get("/", &lee).await.expect(200);
    assert!(
        home.text.contains("Hello (JavaScript)") && home.text.contains("Hello (Python)"),
        "their nav entries are on the home page: {}",
        home.text
    );
}

/// What a clinician sees of an example plugin: the page counts visits per site in kv, the JSON
/// route reads the count, the administrator's greeting reaches both, and errors are JSON.
async fn uses_kv_and_config(api: &Api, admin: &str, lee: &str, id: &str) {
    let visits = |r: &crate::support::Resp| r.json["visits"].clone();
    let r = api
        .get(&format!("/plugins/{id}/api/visits"), lee)
        .await
        .expect(200);
    assert_eq!(
        r.json,
        json!({"site": "main", "visits": 0, "greeting": "Hello"}),
        "{id}"
    );

    let page = api.get(&format!("/plugins/{id}/"), lee).await.expect(200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.text.contains(&format!("Hello, {DRLEE_NAME}!"))
            && page
                .text
                .contains("opened <strong>1</strong> time at Main Street Clinic"),
        "{id}: {}",
        page.text
    );
    let page = api.get(&format!("/plugins/{id}/"), lee).await.expect(200);
    assert!(
        page.text.contains("opened <strong>2</strong> times"),
        "{id}: {}",
        page.text
    );
    let r = api
        .get(&format!("/plugins/{id}/api/visits"), lee)
        .await
        .expect(200);
    assert_eq!(
        visits(&r),
        json!(2),
        "{id}: the count lasts across requests (kv)"
    );

    let greeting = json!({"greeting": "Bonjour <b>"});
    let path = format!("/api/v1/admin/plugins/{id}/sites/main/config");
    api.put(&path, admin, &greeting, None).await.expect(200);
    let page = api.get(&format!("/plugins/{id}/"), lee).await.expect(200);
    assert!(
        page.text
            .contains(&format!("Bonjour &#60;b&#62;, {DRLEE_NAME}!"))
            || page
                .text
                .contains(&format!("Bonjour &lt;b&gt;, {DRLEE_NAME}!")),
        "{id}: the site's setting, escaped: {}",
        page.text
    );
    let r = api
        .get(&format!("/plugins/{id}/api/visits"), lee)
        .await
        .expect(200);
    assert_eq!(r.json["greeting"], "Bonjour <b>", "{id}");
    assert_eq!(visits(&r), json!(3), "{id}");

    let r = api
        .get(&format!("/plugins/{id}/nowhere"), lee)
        .await
        .expect(404);
    assert_eq!(r.error_code(), "not-found", "{id}: {}", r.text);
    let r = api
        .post(&format!("/plugins/{id}/api/visits"), lee, &json!({}))
        .await
        .expect(405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"), "{id}");

    // Without the kv grant at the site, the host refuses the plugin's storage calls and the
    // plugin passes the refusal on as a JSON error.
    api.put(
        &format!("/api/v1/admin/plugins/{id}/sites/main/grants"),
        admin,
        &json!({"capabilities": []}),
        None,
    )
    .await
    .expect(200);
    let r = api
        .get(&format!("/plugins/{id}/api/visits"), lee)
        .await
        .expect(403);
    assert_eq!(r.error_code(), "denied", "{id}: {}", r.text);
    assert!(r.text.contains("kv"), "{id}: the host's reason: {}", r.text);
}

/// `pack --component` checks a component against its manifest before writing anything, and
/// refuses in the words an install uses.
#[tokio::test]
async fn pack_refuses_a_component_its_manifest_does_not_match_in_the_hosts_words() {
    let pk = packages();
    let sb = Sandbox::new();
    // The notices component (it imports osler:plugin/kv), with a manifest that asks for nothing.
    let mut wasm = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&pk.notices).expect("package"));
    for e in archive.entries().expect("tar") {
        let mut e = e.expect("entry");
        if e.path().expect("path").to_string_lossy() == "plugin.wasm" {
            std::io::Read::read_to_end(&mut e, &mut wasm).expect("read");
        }
    }
    let component = sb.root().join("notices.wasm");
    std::fs::write(&component, &wasm).expect("write");
    let manifest = sb.root().join("plugin.toml");
    std::fs::write(
        &manifest,
        "id = \"notices\"\nname = \"N\"\nversion = \"0.1.0\"\npublisher = \"p\"\napi = \"^0.2\"\n",
    )
    .expect("write");
    let out = sb.root().join("notices.osp");
    let (ok, _, stderr) = pack(&[&component, &manifest, &out]);
    assert!(!ok && !out.exists(), "refused, nothing written: {stderr}");
    let refusal = "the component imports `osler:plugin/kv@0.2.0` but its manifest does not \
                   declare the capability \"kv\"";
    assert!(stderr.contains(refusal), "{stderr}");

    // An install of the same pair (packed by hand) is refused with the same words.
    let mut b = tar::Builder::new(Vec::new());
    let text = std::fs::read(&manifest).expect("manifest");
    for (name, data) in [("plugin.toml", &text[..]), ("plugin.wasm", &wasm[..])] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).expect("tar");
    }
    std::fs::write(&out, b.into_inner().expect("tar")).expect("write");
    let env = plugin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = sb.demo_with_env(1, &env);
    let api = server.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await;
    let r = api.install(&admin, &out).await.expect(400);
    assert!(r.text.contains(&refusal.replace('"', "\\\"")), "{}", r.text);

    // A file that is not a component says so; a manifest that does not parse is refused
    // before the component is looked at, naming the file and the missing key.
    let not_wasm = sb.root().join("hello.wasm");
    std::fs::write(&not_wasm, "hello").expect("write");
    std::fs::remove_file(&out).expect("remove");
    let (ok, _, stderr) = pack(&[&not_wasm, &manifest, &out]);
    assert!(!ok && !out.exists(), "{stderr}");
    assert!(
        stderr.contains("not a valid WebAssembly component"),
        "{stderr}"
    );
    std::fs::write(&manifest, "id = \"notices\"\n").expect("write");
    let (ok, _, stderr) = pack(&[&component, &manifest, &out]);
    assert!(!ok && !out.exists(), "{stderr}");
    assert!(
        stderr.contains("plugin.toml") && stderr.contains("name"),
        "{stderr}"
    );
    let list: Value = api
        .get("/api/v1/admin/plugins", &admin)
        .await
        .expect(200)
        .json;
    assert_eq!(list["plugins"], json!([]));
}
