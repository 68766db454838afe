//! The harness: a temporary data directory, the real `osler` binary started on a free port,
//! and a small HTTP client for its API.
//!
//! Every server is a child process that is killed when its [`Server`] is dropped, so a failing
//! test never leaves a process behind. The server's log (stderr) goes to a file in the
//! sandbox and is printed when a test panics while the server is up.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The `osler` binary Cargo built for this test run.
pub const OSLER: &str = env!("CARGO_BIN_EXE_osler");

/// Generous: a debug build on a busy two-core machine can be slow to start.
const START_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

pub use osler_host::patients::fhir::{IDENTIFIER_VERSION_EXT, ON_HCN_SYSTEM};

/// Demo accounts created by `osler demo` (see host/src/demo.rs).
pub mod demo {
    pub const ADMIN: (&str, &str) = ("admin", "osler-demo-admin");
    pub const PHYSICIAN: (&str, &str) = ("drlee", "osler-demo-physician");
    pub const PHYSICIAN_DISPLAY_NAME: &str = "Dr. Amelia Lee";
    pub const NURSE: (&str, &str) = ("nurse.kim", "osler-demo-nurse");
    pub const RECEPTION: (&str, &str) = ("reception", "osler-demo-reception");
    pub const KIOSK: (&str, &str) = ("kiosk.main", "osler-demo-kiosk");
    pub const RESEARCHER: (&str, &str) = ("researcher", "osler-demo-research");
    pub const PATIENT: (&str, &str) = ("patient", "osler-demo-patient");
    pub const MAIN_SITE_NAME: &str = "Main Street Clinic";

    /// The health card number of the `i`-th demo patient; the demo `patient` account is
    /// linked to patient 0.
    pub use osler_host::demo::health_card;
}

// ---------------------------------------------------------------------------------------------
// Test data

/// A 9-digit stem completed with its Luhn check digit: a valid Ontario health card number.
pub fn with_check_digit(stem9: &str) -> String {
    assert_eq!(stem9.len(), 9, "a health card stem has 9 digits");
    format!(
        "{stem9}{}",
        osler_host::patients::validate::hcn_check_digit(stem9)
    )
}

/// The `i`-th valid health card number of a test, far from the demo's numbers.
pub fn hcn(i: u64) -> String {
    with_check_digit(&format!("{:09}", 987_000_000 + i))
}

/// A minimal valid FHIR Patient with an Ontario health card number.
pub fn patient(family: &str, given: &str, birth_date: &str, card: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": ON_HCN_SYSTEM, "value": card}],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": "female",
        "birthDate": birth_date,
    })
}

/// A patient using every part of the record Osler supports.
pub fn rich_patient(card: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{
            "use": "official",
            "system": ON_HCN_SYSTEM,
            "value": card,
            "extension": [{"url": IDENTIFIER_VERSION_EXT, "valueString": "AB"}]
        }],
        "active": true,
        "name": [
            {"use": "official", "family": "Lévesque", "given": ["Hélène", "Marie"],
             "prefix": ["Mme"], "text": "Hélène Marie Lévesque"},
            {"use": "maiden", "family": "Côté"}
        ],
        "telecom": [
            {"system": "phone", "value": "416-555-0199", "use": "mobile", "rank": 1},
            {"system": "email", "value": "helene@example.org", "use": "home"}
        ],
        "gender": "female",
        "birthDate": "1961-03-14",
        "address": [{
            "use": "home", "type": "both", "line": ["12 Rue Principale", "App. 3"],
            "city": "Ottawa", "district": "Carleton", "state": "ON", "postalCode": "K1P 5J9",
            "country": "CA"
        }],
        "communication": [{
            "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr-CA",
                                     "display": "French (Canada)"}], "text": "French"},
            "preferred": true
        }],
        "generalPractitioner": [{"reference": "Practitioner/drlee", "display": "Dr. Amelia Lee"}]
    })
}

/// The health card number of a patient resource.
pub fn card_of(p: &Value) -> Option<String> {
    p["identifier"].as_array()?.iter().find_map(|i| {
        (i["system"] == ON_HCN_SYSTEM)
            .then(|| i["value"].as_str().map(str::to_string))
            .flatten()
    })
}

pub fn id_of(p: &Value) -> String {
    p["id"]
        .as_str()
        .unwrap_or_else(|| panic!("resource without id: {p}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Sandbox and server

/// A temporary directory holding a data directory (`data/`) and server logs.
pub struct Sandbox {
    tmp: tempfile::TempDir,
    starts: std::sync::atomic::AtomicU32,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            tmp: tempfile::Builder::new()
                .prefix("osler-e2e-")
                .tempdir()
                .expect("temporary directory"),
            starts: std::sync::atomic::AtomicU32::new(0),
        }
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn audit_log(&self) -> PathBuf {
        self.data_dir().join("audit").join("audit.log")
    }

    /// A command for the binary with a clean environment: no `OSLER_*` variable of the
    /// developer's shell leaks in, and no stray `osler.toml` is picked up.
    fn command(&self) -> Command {
        let mut c = Command::new(OSLER);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OSLER_") {
                c.env_remove(&k);
            }
        }
        c.current_dir(self.root()).env("OSLER_LOG", "info");
        c
    }

    /// Run a command-line subcommand against the data directory (it must finish).
    pub fn osler(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        self.command()
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir())
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run osler")
    }

    /// Like [`Sandbox::osler`], but the command must succeed.
    pub fn osler_ok(&self, args: &[&str], envs: &[(&str, &str)]) -> String {
        let out = self.osler(args, envs);
        assert!(
            out.status.success(),
            "osler {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `osler init` with the administrator `admin` and the given password.
    pub fn init(&self, admin_password: &str) {
        self.osler_ok(&["init"], &[("OSLER_ADMIN_PASSWORD", admin_password)]);
    }

    /// `osler user add` with a password file.
    pub fn add_user(
        &self,
        username: &str,
        role: &str,
        sites: &[&str],
        password: &str,
        extra: &[&str],
    ) {
        let pw_file = self.root().join(format!("{username}.password"));
        std::fs::write(&pw_file, format!("{password}\n")).expect("write password file");
        let mut args = vec!["user", "add", username, "--role", role];
        for s in sites {
            args.extend(["--site", s]);
        }
        let pw = pw_file.to_string_lossy().into_owned();
        args.extend(["--password-file", pw.as_str()]);
        args.extend(extra);
        self.osler_ok(&args, &[]);
    }

    /// `osler serve` on a free port.
    pub fn serve(&self) -> Server {
        self.start(&["serve"], &[])
    }

    pub fn serve_with_env(&self, envs: &[(&str, &str)]) -> Server {
        self.start(&["serve"], envs)
    }

    /// `osler demo` with `patients` synthetic patients, on a free port, keeping its data in
    /// this sandbox (so it can be restarted with [`Sandbox::serve`]).
    pub fn demo(&self, patients: usize) -> Server {
        self.demo_with_env(patients, &[])
    }

    pub fn demo_with_env(&self, patients: usize, envs: &[(&str, &str)]) -> Server {
        // The tests install the plugins they need themselves.
        self.start(
            &["demo", "--no-plugins", "--patients", &patients.to_string()],
            envs,
        )
    }

    /// `osler serve` listening on `listen` (e.g. the address of an earlier start, so that
    /// other servers configured with it reach this one again after a restart).
    pub fn serve_at(&self, listen: &str, envs: &[(&str, &str)]) -> Server {
        self.start_on(&["serve"], envs, listen)
    }

    fn start(&self, args: &[&str], envs: &[(&str, &str)]) -> Server {
        self.start_on(args, envs, "127.0.0.1:0")
    }

    fn start_on(&self, args: &[&str], envs: &[(&str, &str)], listen: &str) -> Server {
        let n = 1 + self
            .starts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_path = self.root().join(format!("server-{n}.log"));
        let log = std::fs::File::create(&log_path).expect("create server log");
        let mut child = self
            .command()
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen", listen])
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start osler");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Read the announcement, then keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("Osler is listening on http://").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            base: String::new(),
            log: log_path,
            client: client(),
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => {
                server.base = format!("http://{addr}");
                server
            }
            Err(_) => {
                let status = server
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                panic!(
                    "osler {args:?} did not announce its address (exit status: {status:?}); log:\n{}",
                    server.log_text()
                );
            }
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client")
}

/// A running `osler` process. Dropping it kills the process.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    log: PathBuf,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if std::thread::panicking() {
                eprintln!(
                    "--- log of the osler server at {} ---\n{}",
                    self.base,
                    self.log_text()
                );
            }
        }
    }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the server has written to stdout and stderr so far.
    pub fn full_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_text(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// SIGKILL: the process dies at once, without flushing anything.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL osler");
            c.wait().expect("reap osler");
        }
    }

    /// SIGTERM, then wait for the process to finish what it was doing and exit.
    pub fn terminate(mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = libc::pid_t::try_from(c.id()).expect("pid fits");
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM osler");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = c.try_wait().expect("wait for osler") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("osler did not stop within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client bound to this server.
    pub fn api(&self) -> Api {
        Api {
            base: self.base.clone(),
            client: self.client.clone(),
        }
    }

    pub async fn login(&self, (user, password): (&str, &str)) -> String {
        self.api().login(user, password).await
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// An answer: status, headers and the body (parsed as JSON when it is JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Panic with the body unless the status is `want`.
    #[track_caller]
    pub fn expect(self, want: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            want,
            "expected {want}, got {}: {}",
            self.status,
            self.text
        );
        self
    }

    /// `error.code` of an error answer.
    pub fn error_code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// `Set-Cookie` header values.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }
}

/// Authentication of a request.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    /// A session cookie, with the CSRF token if any.
    Cookie(&'a str, Option<&'a str>),
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut rb = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        match auth {
            Auth::None => {}
            Auth::Bearer(t) => rb = rb.bearer_auth(t),
            Auth::Cookie(c, csrf) => {
                rb = rb.header("cookie", format!("osler_session={c}"));
                if let Some(csrf) = csrf {
                    rb = rb.header("x-csrf-token", csrf);
                }
            }
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let res = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Resp::read(res).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Auth::Bearer(token), None, &[])
            .await
    }

    /// `path` as a signed-in browser gets it (session cookie).
    pub async fn page(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Auth::Cookie(token, None), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(Method::POST, path, Auth::Bearer(token), Some(body), &[])
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value, if_match: Option<&str>) -> Resp {
        let h = if_match.map(|v| [("if-match", v)]);
        self.send(
            Method::PUT,
            path,
            Auth::Bearer(token),
            Some(body),
            h.as_ref().map(|h| &h[..]).unwrap_or(&[]),
        )
        .await
    }

    /// Sign in; panics unless it succeeds.
    pub async fn login(&self, user: &str, password: &str) -> String {
        let r = self.try_login(user, password).await.expect(200);
        r.json["token"].as_str().expect("token").to_string()
    }

    pub async fn try_login(&self, user: &str, password: &str) -> Resp {
        self.send(
            Method::POST,
            "/api/v1/auth/login",
            Auth::None,
            Some(&json!({"username": user, "password": password})),
            &[],
        )
        .await
    }

    /// Create a patient; panics unless 201. Returns the stored resource.
    pub async fn create(&self, token: &str, p: &Value) -> Value {
        self.post("/api/v1/patients", token, p)
            .await
            .expect(201)
            .json
    }

    /// Every patient a search finds, following `next` links.
    pub async fn search_all(&self, token: &str, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = format!("/api/v1/patients?{query}");
        for _ in 0..100_000 {
            let r = self.get(&path, token).await.expect(200);
            let b = &r.json;
            assert_eq!(b["resourceType"], "Bundle");
            assert_eq!(b["type"], "searchset");
            for e in b["entry"].as_array().expect("entry array") {
                assert_eq!(
                    e["fullUrl"],
                    format!("/api/v1/patients/{}", id_of(&e["resource"]))
                );
                out.push(e["resource"].clone());
            }
            let next = b["link"]
                .as_array()
                .expect("link array")
                .iter()
                .find(|l| l["relation"] == "next")
                .and_then(|l| l["url"].as_str());
            match next {
                Some(n) => path = n.to_string(),
                None => return out,
            }
        }
        panic!("search {query} did not end");
    }

    /// Every audit entry matching `query`, following `next` cursors (as an auditor).
    pub async fn audit_all(&self, token: &str, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/audit?{query}&_count=1000");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let r = self.get(&path, token).await.expect(200);
            out.extend(
                r.json["entries"]
                    .as_array()
                    .expect("entries")
                    .iter()
                    .cloned(),
            );
            match r.json["next"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

impl Resp {
    /// Status, headers and body of a response (the body parsed as JSON when it is JSON).
    pub async fn read(res: reqwest::Response) -> Resp {
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }
}

/// Percent-encode a query value.
pub fn enc(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Names, as a person searching would compare them

/// Fold a name the way a person expects a search to: accents and case ignored, punctuation
/// dropped ("Nguyễn" → "nguyen", "O'Brien" → "obrien").
pub fn fold(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// The folded words of all of a patient's family and given names.
pub fn name_words(p: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for n in p["name"].as_array().into_iter().flatten() {
        let parts = n["family"].as_str().into_iter().chain(
            n["given"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str),
        );
        for part in parts {
            for w in part.split(|c: char| c.is_whitespace() || c == '-' || c == ',') {
                let w = fold(w);
                if !w.is_empty() {
                    out.push(w);
                }
            }
        }
    }
    out
}

/// Whether a name search for `query` should find `p`: every word of the query starts one of
/// the patient's names.
pub fn name_matches(p: &Value, query: &str) -> bool {
    let words = name_words(p);
    query
        .split(|c: char| c.is_whitespace() || c == '-' || c == ',')
        .map(fold)
        .filter(|w| !w.is_empty())
        .all(|q| words.iter().any(|w| w.starts_with(&q)))
}

/// The raw (unfolded) family and given names of a patient, joined.
pub fn raw_names(p: &Value) -> String {
    let mut s = String::new();
    for n in p["name"].as_array().into_iter().flatten() {
        if let Some(f) = n["family"].as_str() {
            s.push_str(f);
            s.push(' ');
        }
        for g in n["given"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            s.push_str(g);
            s.push(' ');
        }
    }
    s
}

/// The plugin packages the tests install, built once per test run with the real
/// `osler plugin build` (into their own target directory, so they never wait for the lock of
/// the one `cargo test` is using).
///
/// `hostile`, `undeclared`, `echo-provider` and `echo-consumer` are built against the frozen
/// `osler:plugin@0.1.0` (with the 0.1 SDK in `sdk/v0.1`): their tests are the proof that 0.1
/// plugins keep installing and running on a 0.2 host. `evil` and `ledger` use API 0.2.
pub struct Packages {
    pub notices: PathBuf,
    pub hostile: PathBuf,
    pub undeclared: PathBuf,
    pub provider: PathBuf,
    pub consumer: PathBuf,
    pub evil: PathBuf,
    pub ledger: PathBuf,
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host crate is in the workspace")
        .to_path_buf()
}

/// Build the plugin crate at `dir` (relative to the workspace) with the real `osler plugin
/// build`, once per test run, and return the package's path. Tests of different plugins share
/// one target directory so the SDK is compiled for wasm32-wasip2 once.
pub fn package(dir: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    // Held across the build: cargo would serialise concurrent builds on its lock anyway.
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(d, _)| d == dir) {
        return path.clone();
    }
    let root = workspace();
    let target = root.join("target").join("e2e-plugins");
    let out = Command::new(OSLER)
        .args(["plugin", "build"])
        .arg(root.join(dir))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run osler plugin build");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "osler plugin build {dir} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = stdout
        .lines()
        .find_map(|l| l.rsplit_once(": ").filter(|_| l.starts_with("Built ")))
        .map(|(_, p)| PathBuf::from(p.trim()))
        .unwrap_or_else(|| panic!("no package path in: {stdout}"));
    assert!(path.exists(), "{} was not written", path.display());
    built.push((dir.to_string(), path.clone()));
    path
}

pub fn packages() -> &'static Packages {
    static PACKAGES: std::sync::OnceLock<Packages> = std::sync::OnceLock::new();
    PACKAGES.get_or_init(|| Packages {
        notices: package("plugins/notices"),
        hostile: package("tests/plugins/hostile"),
        undeclared: package("tests/plugins/undeclared"),
        provider: package("tests/plugins/echo-provider"),
        consumer: package("tests/plugins/echo-consumer"),
        evil: package("tests/plugins/evil"),
        ledger: package("tests/plugins/ledger"),
    })
}

/// A development package of the component in `package` under another manifest: `edit` turns
/// the package's manifest into the new one. Written next to the sandbox's data.
pub fn repackage(
    root: &Path,
    package: &Path,
    name: &str,
    edit: impl FnOnce(&str) -> String,
) -> PathBuf {
    let mut pkg = osler_registry::Package::read(&std::fs::read(package).expect("read package"))
        .expect("a package");
    pkg.manifest = edit(&pkg.manifest);
    pkg.signature = None;
    let out = root.join(format!("{name}.osp"));
    std::fs::write(&out, pkg.write().expect("write package")).expect("write package");
    out
}

/// `manifest` with the top-level `key = …` line replaced by `key = value`.
pub fn set_key(manifest: &str, key: &str, value: &str) -> String {
    manifest
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{key} = ")) {
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Environment for servers that run plugins: a compiled-code cache shared by the tests (so
/// each component is compiled once per run, as a clinic's host does once per version).
pub fn plugin_env() -> Vec<(&'static str, String)> {
    vec![(
        "OSLER_PLUGINS__CACHE_DIR",
        workspace()
            .join("target")
            .join("e2e-plugin-cache")
            .display()
            .to_string(),
    )]
}

impl Api {
    /// Install a development package over the admin API.
    pub async fn install(&self, token: &str, package: &Path) -> Resp {
        let bytes = std::fs::read(package).expect("read package");
        let res = self
            .client
            .post(format!("{}/api/v1/admin/plugins?dev=true", self.base))
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .expect("install request");
        Resp::read(res).await
    }

    /// Install, enable at `site` and grant `caps` there; panics on failure.
    pub async fn install_enabled(
        &self,
        token: &str,
        package: &Path,
        site: &str,
        caps: &[&str],
    ) -> String {
        let r = self.install(token, package).await.expect(201);
        let id = r.json["id"].as_str().expect("the plugin's id").to_string();
        self.enable(token, &id, site, caps).await;
        id
    }

    pub async fn enable(&self, token: &str, id: &str, site: &str, caps: &[&str]) {
        self.post(
            &format!("/api/v1/admin/plugins/{id}/sites/{site}/enable"),
            token,
            &json!({}),
        )
        .await
        .expect(200);
        self.put(
            &format!("/api/v1/admin/plugins/{id}/sites/{site}/grants"),
            token,
            &json!({ "capabilities": caps }),
            None,
        )
        .await
        .expect(200);
    }

    pub async fn disable(&self, token: &str, id: &str, site: &str) {
        self.post(
            &format!("/api/v1/admin/plugins/{id}/sites/{site}/disable"),
            token,
            &json!({}),
        )
        .await
        .expect(200);
    }

    /// GET at a given site (the `X-Osler-Site` header).
    pub async fn get_at(&self, path: &str, token: &str, site: &str) -> Resp {
        self.send(
            Method::GET,
            path,
            Auth::Bearer(token),
            None,
            &[("x-osler-site", site)],
        )
        .await
    }
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// A loopback HTTP server that answers every request with 200 and `body` after `delay`: the
/// far end of a plugin's outbound requests. Returns its port.
pub async fn peer(delay: Duration, body: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}
