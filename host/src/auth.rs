//! Identity: users, password hashing (argon2id), sessions and sign-in throttling.
//!
//! A session token is 32 random bytes shown to the client once; only its sha256 is stored, so
//! a copy of the database does not hold usable tokens. Sessions expire, end at sign-out, and
//! stop working the moment their user is disabled (the user is re-read on every request).
//! Failed sign-ins are counted per user name, per known device and per client address (see
//! [`Throttle`]): after a few, answers are slowed; after more, the name is locked for devices
//! it does not know, and an address for itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::access::Role;
use crate::storage::{Batch, Storage, StorageError, Tree};

/// A stored user account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub sites: Vec<String>,
    /// For `patient` users: the patient record they may read.
    #[serde(default)]
    pub patient: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    pub created: String,
    /// Shown in pages ("Dr. Lee").
    #[serde(default)]
    pub display_name: Option<String>,
}

/// What the API shows of a user (never the hash).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub username: String,
    pub roles: Vec<Role>,
    pub sites: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            username: u.username.clone(),
            roles: u.roles.clone(),
            sites: u.sites.clone(),
            patient: u.patient.clone(),
            disabled: u.disabled,
            display_name: u.display_name.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub username: String,
    /// The site the session currently acts at.
    pub site: Option<String>,
    /// Unix seconds.
    pub expires: i64,
    /// Random token for CSRF protection of cookie-authenticated forms.
    pub csrf: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("user name or password is wrong")]
    BadCredentials,
    #[error("too many failed sign-ins; try again in {0} seconds")]
    Locked(u64),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id hashing")
        .to_string()
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so that the answer takes as long
/// either way (user names cannot be discovered by timing).
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("not a real password"))
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Compare two secrets in constant time.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The CSRF token a plugin's pages carry for a session: HMAC-SHA256 of the plugin's id under
/// the session's own token. Each plugin gets a different one and none can work out the
/// session's (which the host's forms require) or another plugin's.
pub fn plugin_csrf(session_csrf: &str, plugin: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(session_csrf.as_bytes()).expect("any key length");
    mac.update(b"osler plugin csrf\0");
    mac.update(plugin.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

pub fn validate_username(name: &str) -> Result<(), AuthError> {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && name != "system"
        && name != "anonymous";
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(
            "a user name is 2 to 64 characters: lowercase letters, digits, '.', '_' or '-' \
             (and not 'system' or 'anonymous')"
                .into(),
        ))
    }
}

pub fn validate_password(pw: &str) -> Result<(), AuthError> {
    if pw.chars().count() < 10 {
        return Err(AuthError::Invalid(
            "a password needs at least 10 characters".into(),
        ));
    }
    if pw.len() > 1024 {
        return Err(AuthError::Invalid(
            "a password is at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// Sign-in throttling settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottleConfig {
    /// Failures after which each further answer is delayed.
    pub slow_after: u32,
    /// Failures after which the name (from unknown devices), the device or the address is
    /// locked; an address gets four times this allowance.
    pub lock_after: u32,
    /// How long a lock lasts, and how long a failure is remembered.
    pub lock_seconds: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            slow_after: 3,
            lock_after: 8,
            lock_seconds: 900,
        }
    }
}

/// Failures remembered for one account, device or address.
#[derive(Clone, Copy)]
struct Counter {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// What a counter is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Subject {
    /// A user name, for sign-ins from devices it does not know.
    Account(String),
    /// A device that signed in to this user name before (its device token's id).
    Device(String),
    Address(IpAddr),
}

/// How many counters the throttle keeps at most; beyond it, the oldest unlocked ones go.
const MAX_TRACKED: usize = 100_000;

/// Counters of failed sign-ins, in memory.
///
/// - A user name is locked after `lock_after` failures — for devices it does not know. A
///   device that signed in to that name before (it holds a device token from that sign-in)
///   keeps its own count instead: an attacker can slow the account down for everyone, but
///   cannot lock its owner out of their usual devices.
/// - An address is locked after four times `lock_after` failures, for every name; a lock on an
///   address locks out that address only. With `trusted_proxies`, the address is the client's
///   (from `X-Forwarded-For`), not the proxy's.
/// - Answers are delayed after `slow_after` failures of the name (whichever device), growing
///   to 4 s.
///
/// Each attempt is counted as a failure *before* its password is checked, under one lock, and
/// taken back if the password was right: however many attempts arrive at once, no more than the
/// allowance are checked.
pub struct Throttle {
    cfg: ThrottleConfig,
    counters: Mutex<HashMap<Subject, Counter>>,
}

/// A sign-in attempt the throttle let through, counted as failed until
/// [`Throttle::succeeded`] says otherwise.
#[must_use]
pub struct Attempt {
    subjects: Vec<Subject>,
    /// How long to wait before checking the password.
    pub delay: Duration,
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        Self {
            cfg,
            counters: Mutex::new(HashMap::new()),
        }
    }

    fn allowance(&self, s: &Subject) -> u32 {
        match s {
            Subject::Address(_) => self.cfg.lock_after.saturating_mul(4),
            _ => self.cfg.lock_after,
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.cfg.lock_seconds)
    }

    /// The live counter of `s` (a lock that ran out, or failures older than the window, are
    /// forgotten).
    fn live(
        &self,
        map: &mut HashMap<Subject, Counter>,
        s: &Subject,
        now: Instant,
    ) -> Option<Counter> {
        let c = *map.get(s)?;
        let expired = match c.locked_until {
            Some(until) => until <= now,
            None => now.duration_since(c.last) >= self.window(),
        };
        if expired {
            map.remove(s);
            return None;
        }
        Some(c)
    }

    /// Before checking a password: refuse if a lock applies, otherwise count the attempt (as a
    /// failure, until it succeeds) and say how long to wait first. `device`: the id of a valid
    /// device token for this user name, if the request carried one.
    pub fn begin(
        &self,
        user: &str,
        ip: Option<IpAddr>,
        device: Option<&str>,
    ) -> Result<Attempt, AuthError> {
        let now = Instant::now();
        let mut map = self.counters.lock().expect("throttle lock");
        let locked = |c: Option<Counter>| {
            c.and_then(|c| c.locked_until)
                .map(|until| (until - now).as_secs().max(1))
        };
        if let Some(ip) = ip
            && let Some(s) = locked(self.live(&mut map, &Subject::Address(ip), now))
        {
            return Err(AuthError::Locked(s));
        }
        let account = Subject::Account(user.to_string());
        let account_count = self.live(&mut map, &account, now);
        // A known device that is not itself locked counts on its own; anything else counts
        // against the name.
        let device = device
            .map(|d| Subject::Device(format!("{user}\0{d}")))
            .filter(|d| locked(self.live(&mut map, d, now)).is_none());
        let personal = match device {
            Some(d) => d,
            None => {
                if let Some(s) = locked(account_count) {
                    return Err(AuthError::Locked(s));
                }
                account.clone()
            }
        };
        let slow = |failures: u32, factor: u32| {
            let slow_after = self.cfg.slow_after.saturating_mul(factor);
            if failures >= slow_after {
                Duration::from_millis(250u64 << (failures - slow_after).min(4))
            } else {
                Duration::ZERO
            }
        };
        // The name's failures slow every attempt down, a known device's too.
        let mut delay = slow(account_count.map_or(0, |c| c.failures), 1);
        let mut counted = vec![personal];
        if let Some(ip) = ip {
            counted.push(Subject::Address(ip));
        }
        for s in &counted {
            let c = map.entry(s.clone()).or_insert(Counter {
                failures: 0,
                last: now,
                locked_until: None,
            });
            let factor = if matches!(s, Subject::Address(_)) {
                4
            } else {
                1
            };
            delay = delay.max(slow(c.failures, factor));
            c.failures += 1;
            c.last = now;
            if c.failures >= self.allowance(s) {
                c.locked_until = Some(now + self.window());
            }
        }
        if map.len() > MAX_TRACKED {
            self.prune(&mut map, now);
        }
        Ok(Attempt {
            subjects: counted,
            delay,
        })
    }

    /// The password was right: take the attempt back, and forget the failures of the device
    /// (or, from an unknown device, the name) it came from. The address keeps its count.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut map = self.counters.lock().expect("throttle lock");
        for s in attempt.subjects {
            match s {
                Subject::Address(_) => {
                    if let Some(c) = map.get_mut(&s)
                        && c.locked_until.is_none()
                    {
                        c.failures = c.failures.saturating_sub(1);
                    }
                }
                _ => {
                    map.remove(&s);
                }
            }
        }
    }

    /// The password was wrong: the attempt stays counted.
    pub fn failed(&self, attempt: Attempt) {
        drop(attempt);
    }

    /// Drop forgotten counters, then the oldest unlocked ones, down to three quarters of
    /// [`MAX_TRACKED`].
    fn prune(&self, map: &mut HashMap<Subject, Counter>, now: Instant) {
        let window = self.window();
        map.retain(|_, c| match c.locked_until {
            Some(until) => until > now,
            None => now.duration_since(c.last) < window,
        });
        if map.len() > MAX_TRACKED * 3 / 4 {
            let mut unlocked: Vec<(Instant, Subject)> = map
                .iter()
                .filter(|(_, c)| c.locked_until.is_none())
                .map(|(s, c)| (c.last, s.clone()))
                .collect();
            unlocked.sort_by_key(|(t, _)| *t);
            let excess = map.len() - MAX_TRACKED * 3 / 4;
            for (_, s) in unlocked.into_iter().take(excess) {
                map.remove(&s);
            }
        }
    }

    /// How many counters are kept (for tests and the memory benchmark).
    pub fn tracked(&self) -> usize {
        self.counters.lock().expect("throttle lock").len()
    }
}

/// Users and sessions.
#[derive(Clone)]
pub struct Accounts {
    storage: Storage,
    pub session_ttl: Duration,
    /// The key that signs device tokens ([`Accounts::device_token`]), once loaded.
    device_key: std::sync::Arc<std::sync::OnceLock<Vec<u8>>>,
}

const DEVICE_KEY: &[u8] = b"device_token_key";
/// How long a device is remembered after its last sign-in.
pub const DEVICE_SECONDS: u64 = 180 * 24 * 3600;

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Accounts {
    pub fn new(storage: Storage, session_ttl: Duration) -> Self {
        Self {
            storage,
            session_ttl,
            device_key: Default::default(),
        }
    }

    /// Load the key that signs device tokens, creating it (durably) the first time.
    pub fn load_device_key(&self) -> Result<(), AuthError> {
        let key = match self.storage.get(Tree::Meta, DEVICE_KEY)? {
            Some(k) => k,
            None => {
                let mut k = vec![0u8; 32];
                rand::rng().fill_bytes(&mut k);
                let mut b = Batch::new();
                b.expect(Tree::Meta, DEVICE_KEY, None);
                b.put(Tree::Meta, DEVICE_KEY, k.clone());
                self.storage.apply(&b)?;
                self.storage.durable_blocking()?;
                k
            }
        };
        let _ = self.device_key.set(key);
        Ok(())
    }

    fn device_mac(&self, username: &str, nonce: &str) -> Option<hmac::Hmac<Sha256>> {
        use hmac::Mac;
        let key = self.device_key.get()?;
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(b"osler-device\0");
        mac.update(username.as_bytes());
        mac.update(b"\0");
        mac.update(nonce.as_bytes());
        Some(mac)
    }

    /// A token a browser keeps after a successful sign-in (the device cookie), so that its
    /// next sign-ins to this user name count as from a known device: slowed down, not locked
    /// out, while someone else is failing to guess the password.
    pub fn device_token(&self, username: &str) -> Option<String> {
        use hmac::Mac;
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce);
        let tag = self.device_mac(username, &nonce)?.finalize().into_bytes();
        Some(format!(
            "{nonce}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..16])
        ))
    }

    /// The device a token names, if it is a genuine token for this user name.
    pub fn device_id(&self, username: &str, token: &str) -> Option<String> {
        use hmac::Mac;
        let (nonce, tag) = token.split_once('.')?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .ok()?;
        self.device_mac(username, nonce)?
            .verify_truncated_left(&tag)
            .ok()
            .filter(|_| tag.len() == 16)
            .map(|_| nonce.to_string())
    }

    pub fn get(&self, username: &str) -> Result<Option<User>, AuthError> {
        Ok(self
            .storage
            .get(Tree::Users, username.as_bytes())?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    pub fn list(&self) -> Result<Vec<User>, AuthError> {
        Ok(self
            .storage
            .scan(Tree::Users, b"", None, usize::MAX)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect())
    }

    /// A new user, unwritten: the caller commits the returned batch (with its audit entry).
    pub fn new_user(
        &self,
        username: &str,
        password: &str,
        roles: Vec<Role>,
        sites: Vec<String>,
        patient: Option<String>,
        display_name: Option<String>,
    ) -> Result<(User, Batch), AuthError> {
        validate_username(username)?;
        validate_password(password)?;
        if roles.is_empty() {
            return Err(AuthError::Invalid("give the user at least one role".into()));
        }
        if roles.contains(&Role::Patient) != patient.is_some() {
            return Err(AuthError::Invalid(
                "a patient user must be linked to exactly one patient record (and only a \
                 patient user may be)"
                    .into(),
            ));
        }
        if sites.is_empty() {
            return Err(AuthError::Invalid("give the user at least one site".into()));
        }
        for s in &sites {
            if self.storage.get(Tree::Sites, s.as_bytes())?.is_none() {
                return Err(AuthError::Invalid(format!(
                    "no site '{s}'; add it first (osler site add)"
                )));
            }
        }
        if self.get(username)?.is_some() {
            return Err(AuthError::Exists(format!(
                "user '{username}' already exists"
            )));
        }
        let user = User {
            username: username.into(),
            password_hash: hash_password(password),
            roles,
            sites,
            patient,
            disabled: false,
            created: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .expect("format"),
            display_name,
        };
        let mut b = Batch::new();
        b.expect(Tree::Users, username.as_bytes(), None);
        b.put(
            Tree::Users,
            username.as_bytes(),
            serde_json::to_vec(&user).expect("ser"),
        );
        Ok((user, b))
    }

    /// A batch that replaces a user record, guarded against concurrent change.
    pub fn change_user(
        &self,
        username: &str,
        f: impl FnOnce(&mut User) -> Result<(), AuthError>,
    ) -> Result<(User, Batch), AuthError> {
        let old = self
            .storage
            .get(Tree::Users, username.as_bytes())?
            .ok_or_else(|| AuthError::NotFound(format!("no user '{username}'")))?;
        let mut user: User = serde_json::from_slice(&old)
            .map_err(|e| StorageError::Io(format!("unreadable user record: {e}")))?;
        f(&mut user)?;
        let mut b = Batch::new();
        b.expect(Tree::Users, username.as_bytes(), Some(old));
        b.put(
            Tree::Users,
            username.as_bytes(),
            serde_json::to_vec(&user).expect("ser"),
        );
        Ok((user, b))
    }

    /// Check a password. Always spends the time of one argon2 verification.
    pub fn authenticate(&self, username: &str, password: &str) -> Result<User, AuthError> {
        match self.get(username)? {
            Some(u) if !u.disabled => {
                if verify_password(password, &u.password_hash) {
                    Ok(u)
                } else {
                    Err(AuthError::BadCredentials)
                }
            }
            _ => {
                let _ = verify_password(password, dummy_hash());
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// A new session; returns the token (shown once) and the batch to commit.
    pub fn new_session(&self, user: &User, site: Option<String>) -> (String, Session, Batch) {
        let token = random_token();
        let session = Session {
            username: user.username.clone(),
            site: site.or_else(|| user.sites.first().cloned()),
            expires: now_unix() + self.session_ttl.as_secs() as i64,
            csrf: random_token(),
        };
        let mut b = Batch::new();
        b.put(
            Tree::Sessions,
            token_hash(&token),
            serde_json::to_vec(&session).expect("ser"),
        );
        (token, session, b)
    }

    /// The live session and user for a token, if any.
    pub fn resolve(&self, token: &str) -> Result<Option<(Session, User)>, AuthError> {
        let Some(bytes) = self.storage.get(Tree::Sessions, &token_hash(token))? else {
            return Ok(None);
        };
        let Ok(s) = serde_json::from_slice::<Session>(&bytes) else {
            return Ok(None);
        };
        if s.expires <= now_unix() {
            return Ok(None);
        }
        match self.get(&s.username)? {
            Some(u) if !u.disabled => Ok(Some((s, u))),
            _ => Ok(None),
        }
    }

    pub fn end_session(&self, token: &str) -> Batch {
        let mut b = Batch::new();
        b.delete(Tree::Sessions, token_hash(token));
        b
    }

    pub fn set_session_site(&self, token: &str, s: &Session, site: &str) -> Batch {
        let mut s = s.clone();
        s.site = Some(site.into());
        let mut b = Batch::new();
        b.put(
            Tree::Sessions,
            token_hash(token),
            serde_json::to_vec(&s).expect("ser"),
        );
        b
    }

    /// Remove expired sessions (called at start-up).
    pub fn purge_expired(&self) -> Result<usize, AuthError> {
        let now = now_unix();
        let mut b = Batch::new();
        for (k, v) in self.storage.scan(Tree::Sessions, b"", None, usize::MAX)? {
            let expired = serde_json::from_slice::<Session>(&v)
                .map(|s| s.expires <= now)
                .unwrap_or(true);
            if expired {
                b.delete(Tree::Sessions, k);
            }
        }
        let n = b.ops.len();
        self.storage.apply(&b)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_argon2id_and_verify() {
        let h = hash_password("correct horse battery");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
    }

    #[test]
    fn throttle_slows_then_locks() {
        let t = Throttle::new(ThrottleConfig {
            slow_after: 2,
            lock_after: 4,
            lock_seconds: 60,
        });
        let a = t.begin("a", None, None).unwrap();
        assert_eq!(a.delay, Duration::ZERO);
        t.failed(a);
        t.failed(t.begin("a", None, None).unwrap());
        let a = t.begin("a", None, None).unwrap();
        assert!(a.delay > Duration::ZERO);
        t.failed(a);
        t.failed(t.begin("a", None, None).unwrap());
        assert!(matches!(
            t.begin("a", None, None),
            Err(AuthError::Locked(_))
        ));
        assert!(t.begin("b", None, None).is_ok());
    }

    #[test]
    fn attempts_are_counted_before_they_are_checked() {
        let t = std::sync::Arc::new(Throttle::new(ThrottleConfig::default()));
        let through = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..64 {
                s.spawn(|| {
                    if let Ok(a) = t.begin("victim", None, None) {
                        through.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        t.failed(a);
                    }
                });
            }
        });
        assert_eq!(through.into_inner(), ThrottleConfig::default().lock_after);
    }

    #[test]
    fn a_known_device_is_slowed_not_locked_and_an_address_lock_is_its_own() {
        let t = Throttle::new(ThrottleConfig::default());
        let attacker: IpAddr = "203.0.113.5".parse().unwrap();
        let owner: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..8 {
            t.failed(t.begin("lee", Some(attacker), None).unwrap());
        }
        assert!(matches!(
            t.begin("lee", Some(owner), None),
            Err(AuthError::Locked(_))
        ));
        let a = t.begin("lee", Some(owner), Some("laptop")).unwrap();
        assert!(a.delay > Duration::ZERO, "slowed down");
        t.succeeded(a);
        // Another name from the attacker's address: the address has its own, larger allowance.
        for i in 0..24 {
            let name = format!("someone{i}");
            t.failed(t.begin(&name, Some(attacker), None).unwrap_or_else(|_| {
                panic!("an address is locked only after four times the allowance")
            }));
        }
        assert!(matches!(
            t.begin("kim", Some(attacker), None),
            Err(AuthError::Locked(_))
        ));
        assert!(t.begin("kim", Some(owner), None).is_ok());
    }
}
