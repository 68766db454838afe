//! Identity: users, password hashing (argon2id), sessions and sign-in throttling.
//!
//! A session token is 32 random bytes shown to the client once; only its sha256 is stored, so
//! a copy of the database does not hold usable tokens. Sessions expire, end at sign-out, and
//! stop working the moment their user is disabled (the user is re-read on every request).
//! Failed sign-ins are counted per user name and per source address: after a few, answers are
//! slowed; after more, that name or address is locked out for a while.

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

#[derive(Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// Sign-in throttling settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottleConfig {
    /// Failures after which each further answer is delayed.
    pub slow_after: u32,
    /// Failures after which the name or address is locked.
    pub lock_after: u32,
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

/// In-memory counters of failed sign-ins by user name and by address.
pub struct Throttle {
    cfg: ThrottleConfig,
    map: Mutex<HashMap<String, Failures>>,
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        Self {
            cfg,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The counters a sign-in attempt touches, with the factor applied to the thresholds: an
    /// address gets four times a user name's allowance, since a clinic's staff often share
    /// one address behind NAT and one person's typos must not lock out the front desk.
    fn keys(user: &str, ip: Option<IpAddr>) -> Vec<(String, u32)> {
        let mut k = vec![(format!("user:{user}"), 1)];
        if let Some(ip) = ip {
            k.push((format!("ip:{ip}"), 4));
        }
        k
    }

    /// Before checking a password: refuse if locked; otherwise how long to wait first.
    pub fn check(&self, user: &str, ip: Option<IpAddr>) -> Result<Duration, AuthError> {
        let mut map = self.map.lock().expect("throttle lock");
        let now = Instant::now();
        let mut delay = Duration::ZERO;
        for (k, factor) in Self::keys(user, ip) {
            if let Some(f) = map.get_mut(&k) {
                if let Some(until) = f.locked_until {
                    if until > now {
                        return Err(AuthError::Locked((until - now).as_secs().max(1)));
                    }
                    *f = Failures::default();
                }
                let slow_after = self.cfg.slow_after.saturating_mul(factor);
                if f.count >= slow_after {
                    let extra = f.count - slow_after;
                    delay = delay.max(Duration::from_millis(250u64 << extra.min(4)));
                }
            }
        }
        Ok(delay)
    }

    pub fn failed(&self, user: &str, ip: Option<IpAddr>) {
        let mut map = self.map.lock().expect("throttle lock");
        for (k, factor) in Self::keys(user, ip) {
            let f = map.entry(k).or_default();
            f.count += 1;
            if f.count >= self.cfg.lock_after.saturating_mul(factor) {
                f.locked_until = Some(Instant::now() + Duration::from_secs(self.cfg.lock_seconds));
            }
        }
    }

    pub fn succeeded(&self, user: &str) {
        self.map
            .lock()
            .expect("throttle lock")
            .remove(&format!("user:{user}"));
    }
}

/// Users and sessions.
#[derive(Clone)]
pub struct Accounts {
    storage: Storage,
    pub session_ttl: Duration,
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Accounts {
    pub fn new(storage: Storage, session_ttl: Duration) -> Self {
        Self {
            storage,
            session_ttl,
        }
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
        assert_eq!(t.check("a", None).unwrap(), Duration::ZERO);
        t.failed("a", None);
        t.failed("a", None);
        assert!(t.check("a", None).unwrap() > Duration::ZERO);
        t.failed("a", None);
        t.failed("a", None);
        assert!(matches!(t.check("a", None), Err(AuthError::Locked(_))));
        assert!(t.check("b", None).is_ok());
    }
}
