//! Patients' own access to their record, the host's part: patient accounts with one-time
//! activation codes, and shares of a patient's record that someone without an account can
//! open. The pages are in [`super::pages::portal`].
//!
//! - **Activation codes.** Staff with `patients.accounts` (reception, administrators) create a
//!   `patient` account linked to a chart; the host issues a code of 16 characters (80 bits
//!   from the operating system's CSPRNG, Crockford base-32, printed in groups of four), shown
//!   to staff once. Only its sha256 is kept, with the account it opens and its expiry
//!   (`[portal] activation_seconds`, 14 days). A newer code for the same account replaces the
//!   older. The patient redeems it at `/activate` with the chart's birth date as a second
//!   factor and chooses a password (the host's rules, argon2id); the code is then gone. Five
//!   wrong birth dates void a code; attempts are throttled per address like sign-ins. Every
//!   step is audited: `patient.account.create`, `patient.account.code`, `patient.activate`
//!   (success, or the failure and why).
//! - **Shares.** A patient chooses sections of their record (the `share` panels of the plugins
//!   enabled at their site), an expiry (at most `[portal] share_max_seconds`, 90 days) and
//!   optionally whom it is for. The host renders those sections *for the patient, at that
//!   moment* (each in its plugin's sandbox, through the same checks and audit as a chart
//!   panel) and keeps the result under the sha256 of a 256-bit token; the link carries the
//!   token, shown once. Opening the link needs no session and no standing access to patient
//!   data: the host shows the kept sections, read-only, "as of" their date, until the share
//!   expires or the patient revokes it. Every view is recorded on the share (time, address,
//!   browser summary) and in the audit trail (`share.view`, actor `anonymous`).

use std::net::IpAddr;

use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::access::{Check, Ctx, Need, Permission, Role};
use crate::app::App;
use crate::auth::{AuthError, User, hash_password, random_token, token_hash, validate_password};
use crate::http::ApiError;
use crate::patients::fhir::Patient;
use crate::storage::{Batch, Tree};

/// Crockford's base-32 alphabet: no I, L, O or U, so a printed code cannot be misread.
const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in an activation code (80 bits).
const CODE_LEN: usize = 16;
/// Wrong birth dates after which a code is void.
const MAX_BIRTH_DATE_FAILURES: u32 = 5;
/// Views kept on a share (the oldest go first); every view is in the audit trail anyway.
const MAX_VIEWS: usize = 500;

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// An activation code waiting to be redeemed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Activation {
    pub username: String,
    pub patient: String,
    /// Unix seconds.
    pub expires: i64,
    pub issued_by: String,
    #[serde(default)]
    pub failures: u32,
}

/// A new code: 16 characters from the CSPRNG.
fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A code as printed: groups of four.
pub fn printable(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// A code as typed, in its stored form: without spaces and dashes, upper case, with the
/// letters people confuse read as the digits they look like.
pub fn normalise_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

/// A key of the portal tree: one tag byte saying what the record is, then its name.
fn portal_key(tag: u8, name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(tag);
    k.extend_from_slice(name);
    k
}

fn activation_key(code: &str) -> Vec<u8> {
    portal_key(b'a', &token_hash(code))
}

/// The key naming an account's current code.
fn current_code_key(username: &str) -> Vec<u8> {
    portal_key(b'u', username.as_bytes())
}

/// The account linked to `patient`, if any.
pub fn account_of(app: &App, patient: &str) -> Result<Option<User>, ApiError> {
    Ok(app
        .accounts
        .list()?
        .into_iter()
        .find(|u| u.patient.as_deref() == Some(patient)))
}

/// The stored chart, read by the host itself (no audit entry: callers have been through the
/// gate, or read only the birth date to compare).
fn chart(app: &App, patient: &str) -> Result<Option<Patient>, ApiError> {
    Ok(app
        .storage
        .get(Tree::Patients, patient.as_bytes())?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// A fresh code for `username`, replacing any earlier one: the batch's operations, and the
/// code (to show once).
fn code_ops(app: &App, b: &mut Batch, username: &str, patient: &str, by: &str) -> String {
    let code = new_code();
    let activation = Activation {
        username: username.into(),
        patient: patient.into(),
        expires: now_unix() + app.config.portal.activation_seconds as i64,
        issued_by: by.into(),
        failures: 0,
    };
    if let Ok(Some(old)) = app.storage.get(Tree::Portal, &current_code_key(username)) {
        b.delete(Tree::Portal, old);
    }
    let key = activation_key(&code);
    b.put(
        Tree::Portal,
        key.clone(),
        serde_json::to_vec(&activation).expect("ser"),
    );
    b.put(Tree::Portal, current_code_key(username), key);
    code
}

/// Create the patient account of chart `patient` (user name `username`) at the caller's
/// site, and its first activation code.
pub async fn create_account(
    app: &App,
    ctx: &Ctx,
    patient: &str,
    username: &str,
    display_name: Option<String>,
) -> Result<(User, String), ApiError> {
    let check = Check::new(
        "patient.account.create",
        Need::Permission(Permission::PatientAccounts),
    )
    .patient(patient);
    app.gate.check(ctx, check).await.map_err(ApiError::from)?;
    let site = ctx
        .site
        .clone()
        .ok_or_else(|| ApiError::invalid("choose a site first"))?;
    if chart(app, patient)?.is_none() {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not-found",
            format!("no patient with id {patient}"),
        ));
    }
    if let Some(u) = account_of(app, patient)? {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "conflict",
            format!(
                "this patient already has an account ('{}'); issue a new code instead",
                u.username
            ),
        ));
    }
    // The password is a random one nobody knows: the account opens only with the code.
    let (user, mut b) = app
        .accounts
        .new_user(
            username,
            &random_token(),
            vec![Role::Patient],
            vec![site],
            Some(patient.to_string()),
            display_name,
        )
        .map_err(ApiError::from)?;
    let code = code_ops(app, &mut b, username, patient, &ctx.user);
    let mut ev = ctx.event("patient.account.create", "success");
    ev.patient = Some(patient.into());
    ev.resource = Some(format!("User/{username}"));
    app.commit_audited(&b, ev).await?;
    let mut ev = ctx.event("patient.account.code", "success");
    ev.patient = Some(patient.into());
    ev.resource = Some(format!("User/{username}"));
    app.audit.record_durable(ev).await?;
    Ok((user, code))
}

/// A new activation code for the account of chart `patient` (the old one stops working).
pub async fn issue_code(app: &App, ctx: &Ctx, patient: &str) -> Result<(User, String), ApiError> {
    let check = Check::new(
        "patient.account.code",
        Need::Permission(Permission::PatientAccounts),
    )
    .patient(patient);
    app.gate.check(ctx, check).await.map_err(ApiError::from)?;
    let user = account_of(app, patient)?.ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not-found",
            "this patient has no account yet",
        )
    })?;
    let mut b = Batch::new();
    let code = code_ops(app, &mut b, &user.username, patient, &ctx.user);
    let mut ev = ctx.event("patient.account.code", "success");
    ev.patient = Some(patient.into());
    ev.resource = Some(format!("User/{}", user.username));
    app.commit_audited(&b, ev).await?;
    Ok((user, code))
}

/// Why a code was not accepted, in words for the patient.
#[derive(Debug)]
pub enum Redeem {
    /// Unknown, used, replaced or voided: nothing to tell apart for someone guessing.
    NotValid,
    Expired,
    WrongBirthDate,
    Password(String),
    Locked(u64),
}

impl Redeem {
    pub fn message(&self) -> String {
        match self {
            Redeem::NotValid => "This activation code is not valid. It may have been used \
                                 already or replaced by a newer one; ask the clinic for a new \
                                 code."
                .into(),
            Redeem::Expired => {
                "This activation code has expired. Ask the clinic for a new code.".into()
            }
            Redeem::WrongBirthDate => {
                "The birth date does not match the clinic's record. Please check it.".into()
            }
            Redeem::Password(m) => crate::http::shell::sentence(m),
            Redeem::Locked(s) => {
                format!("Too many attempts. Please try again in {s} seconds.")
            }
        }
    }
}

/// Redeem an activation code: check it, the birth date and the new password, then set the
/// password and retire the code. Returns the user name to sign in with.
pub async fn redeem(
    app: &App,
    source: Option<IpAddr>,
    code: &str,
    birth_date: &str,
    password: &str,
) -> Result<Result<String, Redeem>, ApiError> {
    let src = source.map(|s| s.to_string());
    let event = |outcome: &str, patient: Option<&str>, detail: &str| crate::audit::Event {
        actor: "anonymous".into(),
        role: String::new(),
        action: "patient.activate".into(),
        outcome: outcome.into(),
        source: src.clone(),
        patient: patient.map(str::to_string),
        detail: (!detail.is_empty()).then(|| detail.to_string()),
        ..Default::default()
    };
    // Counted against the address (as a failure until it succeeds), like a sign-in.
    // Per address: a name shared by everyone would let one guesser lock all patients out.
    let subject = match source {
        Some(ip) => format!("activation\0{ip}"),
        None => "activation".into(),
    };
    let attempt = match app.throttle.begin(&subject, source, None) {
        Ok(a) => a,
        Err(AuthError::Locked(s)) => {
            app.audit
                .record_durable(event("locked", None, "too many attempts"))
                .await?;
            return Ok(Err(Redeem::Locked(s)));
        }
        Err(e) => return Err(e.into()),
    };
    if !attempt.delay.is_zero() {
        tokio::time::sleep(attempt.delay).await;
    }
    let code = normalise_code(code);
    let key = activation_key(&code);
    let stored = app.storage.get(Tree::Portal, &key)?;
    let Some((bytes, mut a)) = stored.and_then(|b| {
        serde_json::from_slice::<Activation>(&b)
            .ok()
            .map(|a| (b, a))
    }) else {
        app.throttle.failed(attempt);
        app.audit
            .record_durable(event("failure", None, "unknown or used code"))
            .await?;
        return Ok(Err(Redeem::NotValid));
    };
    let patient = a.patient.clone();
    if a.expires <= now_unix() {
        app.throttle.failed(attempt);
        app.audit
            .record_durable(event("failure", Some(&patient), "expired code"))
            .await?;
        return Ok(Err(Redeem::Expired));
    }
    let on_file = chart(app, &patient)?
        .and_then(|p| p.birth_date)
        .unwrap_or_default();
    let given = birth_date.trim();
    let matches = !on_file.is_empty()
        && on_file.len() == given.len()
        && bool::from(on_file.as_bytes().ct_eq(given.as_bytes()));
    if !matches {
        app.throttle.failed(attempt);
        a.failures += 1;
        let mut b = Batch::new();
        b.expect(Tree::Portal, key.clone(), Some(bytes));
        let detail = if a.failures >= MAX_BIRTH_DATE_FAILURES {
            b.delete(Tree::Portal, key.clone());
            b.delete(Tree::Portal, current_code_key(&a.username));
            "wrong birth date; the code is now void"
        } else {
            b.put(
                Tree::Portal,
                key.clone(),
                serde_json::to_vec(&a).expect("ser"),
            );
            "wrong birth date"
        };
        // A concurrent attempt changed the record: that one counted; this one is refused.
        let _ = app
            .commit_audited(&b, event("failure", Some(&patient), detail))
            .await;
        return Ok(Err(Redeem::WrongBirthDate));
    }
    if let Err(e) = validate_password(password) {
        // Not a guess: the code and birth date were right. Not counted against the address.
        app.throttle.succeeded(attempt);
        return Ok(Err(Redeem::Password(e.to_string())));
    }
    let hash = {
        let p = password.to_string();
        tokio::task::spawn_blocking(move || hash_password(&p))
            .await
            .map_err(ApiError::internal)?
    };
    let username = a.username.clone();
    let (_, mut b) = match app.accounts.change_user(&username, |u| {
        if u.patient.as_deref() != Some(patient.as_str()) {
            return Err(AuthError::Invalid(
                "the account is not this patient's".into(),
            ));
        }
        u.password_hash = hash;
        Ok(())
    }) {
        Ok(x) => x,
        Err(_) => {
            app.throttle.failed(attempt);
            app.audit
                .record_durable(event("failure", Some(&patient), "the account is gone"))
                .await?;
            return Ok(Err(Redeem::NotValid));
        }
    };
    // Single use: the code must still be there, unchanged, as it goes.
    b.expect(Tree::Portal, key.clone(), Some(bytes));
    b.delete(Tree::Portal, key);
    b.delete(Tree::Portal, current_code_key(&username));
    let mut ev = event("success", Some(&patient), "");
    ev.actor = username.clone();
    ev.role = "patient".into();
    ev.resource = Some(format!("User/{username}"));
    match app.commit_audited(&b, ev).await {
        Ok(()) => {}
        Err(e) if lost_race(&e) => {
            app.throttle.failed(attempt);
            return Ok(Err(Redeem::NotValid));
        }
        Err(e) => return Err(e.into()),
    }
    app.throttle.succeeded(attempt);
    Ok(Ok(username))
}

// ---------------------------------------------------------------------------------------------
// Shares

/// One section of a share, as it was rendered when the share was made.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SharedSection {
    pub plugin: String,
    pub panel: String,
    pub title: String,
    pub html: String,
}

/// One opening of a share's link.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShareView {
    /// Unix seconds.
    pub time: i64,
    pub source: Option<String>,
    /// The browser, in a few words ("Firefox on Windows").
    pub agent: String,
}

/// A patient's share of part of their record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Share {
    /// Time-ordered, for listing: `<unix ms, 13 digits>-<4 random hex>`.
    pub id: String,
    pub patient: String,
    pub created_by: String,
    /// Unix seconds.
    pub created: i64,
    pub expires: i64,
    pub recipient: Option<String>,
    pub sections: Vec<SharedSection>,
    pub revoked: Option<i64>,
    #[serde(default)]
    pub views: Vec<ShareView>,
    /// Views in all (the list keeps the latest [`MAX_VIEWS`]).
    #[serde(default)]
    pub view_count: u64,
}

impl Share {
    pub fn live(&self, now: i64) -> bool {
        self.revoked.is_none() && self.expires > now
    }

    /// The titles of the shared sections, e.g. "Medications & allergies, Appointments".
    pub fn section_titles(&self) -> String {
        self.sections
            .iter()
            .map(|x| x.title.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn share_key(token: &str) -> Vec<u8> {
    portal_key(b's', &token_hash(token))
}

fn patient_prefix(patient: &str) -> Vec<u8> {
    let mut k = portal_key(b'p', patient.as_bytes());
    k.push(0);
    k
}

/// The patient a person's shares are about: their own record, from their account.
fn own_patient(ctx: &Ctx) -> Result<String, ApiError> {
    match (ctx.can(Permission::PatientsReadOwn), &ctx.patient) {
        (true, Some(p)) => Ok(p.clone()),
        _ => Err(ApiError::forbidden(
            "shares are made by a patient, of their own record",
        )),
    }
}

/// Make a share of `sections` (already rendered for the patient) lasting `seconds` (cut to
/// the clinic's maximum). Returns the share and its token (shown once).
pub async fn create_share(
    app: &App,
    ctx: &Ctx,
    sections: Vec<SharedSection>,
    seconds: u64,
    recipient: Option<String>,
) -> Result<(Share, String), ApiError> {
    let patient = own_patient(ctx)?;
    if sections.is_empty() {
        return Err(ApiError::invalid("choose at least one part of your record"));
    }
    let now = now_unix();
    let seconds = seconds.clamp(1, app.config.portal.share_max_seconds.max(1));
    let token = random_token();
    let id = format!(
        "{:013}-{:04x}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
        rand::rng().random::<u16>()
    );
    let share = Share {
        id: id.clone(),
        patient: patient.clone(),
        created_by: ctx.user.clone(),
        created: now,
        expires: now + seconds as i64,
        recipient,
        sections,
        revoked: None,
        views: Vec::new(),
        view_count: 0,
    };
    let key = share_key(&token);
    let mut b = Batch::new();
    b.expect(Tree::Portal, key.clone(), None);
    b.put(
        Tree::Portal,
        key.clone(),
        serde_json::to_vec(&share).expect("ser"),
    );
    let mut idx = patient_prefix(&patient);
    idx.extend(id.as_bytes());
    b.put(Tree::Portal, idx, key);
    let mut ev = ctx.event("share.create", "success");
    ev.patient = Some(patient);
    ev.resource = Some(format!("Share/{id}"));
    ev.detail = Some(share.section_titles());
    app.commit_audited(&b, ev).await?;
    Ok((share, token))
}

/// The shares of the caller's own record, newest first, with their storage keys.
pub fn my_shares(app: &App, ctx: &Ctx) -> Result<Vec<(Vec<u8>, Share)>, ApiError> {
    let patient = own_patient(ctx)?;
    let rows = app
        .storage
        .scan(Tree::Portal, &patient_prefix(&patient), None, 10_000)?;
    let mut out = Vec::new();
    for (_, key) in rows.into_iter().rev() {
        if let Some(s) = app
            .storage
            .get(Tree::Portal, &key)?
            .and_then(|b| serde_json::from_slice::<Share>(&b).ok())
        {
            out.push((key, s));
        }
    }
    Ok(out)
}

/// A batch writing `share` at `key` only if the key still holds `old`, the bytes it was read
/// from (compare-and-swap: a concurrent change makes the commit fail with a conflict).
fn replace_share(key: &[u8], old: Vec<u8>, share: &Share) -> Batch {
    let mut b = Batch::new();
    b.expect(Tree::Portal, key.to_vec(), Some(old));
    b.put(
        Tree::Portal,
        key.to_vec(),
        serde_json::to_vec(share).expect("ser"),
    );
    b
}

/// Whether a commit lost a compare-and-swap race (someone changed the key since it was read).
fn lost_race(e: &crate::audit::AuditError) -> bool {
    matches!(
        e,
        crate::audit::AuditError::Storage(crate::storage::StorageError::Conflict { .. })
    )
}

/// Revoke the caller's own share `id`: its link stops working at once.
pub async fn revoke_share(app: &App, ctx: &Ctx, id: &str) -> Result<Share, ApiError> {
    let patient = own_patient(ctx)?;
    let mut idx = patient_prefix(&patient);
    idx.extend(id.as_bytes());
    let not_found = || {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not-found",
            "you have no share with this id",
        )
    };
    let key = app.storage.get(Tree::Portal, &idx)?.ok_or_else(not_found)?;
    for _ in 0..5 {
        let Some(bytes) = app.storage.get(Tree::Portal, &key)? else {
            return Err(not_found());
        };
        let mut share: Share = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
        if share.revoked.is_some() {
            return Ok(share);
        }
        share.revoked = Some(now_unix());
        let b = replace_share(&key, bytes, &share);
        let mut ev = ctx.event("share.revoke", "success");
        ev.patient = Some(patient.clone());
        ev.resource = Some(format!("Share/{id}"));
        match app.commit_audited(&b, ev).await {
            Ok(()) => return Ok(share),
            Err(e) if lost_race(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "conflict",
        "the share is changing; try again",
    ))
}

/// A browser's `User-Agent` in a few words, e.g. "Firefox on Windows".
pub fn agent_summary(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Chrome (headless)"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| v);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| v);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_string(),
        (None, Some(s)) => format!("a browser on {s}"),
        (None, None) => "an unknown program".to_string(),
    }
}

/// Open a share by its token: the share as it is now (live or not), with this view recorded
/// when it is live. `None` when no share has this token.
pub async fn open_share(
    app: &App,
    token: &str,
    source: Option<IpAddr>,
    user_agent: &str,
) -> Result<Option<Share>, ApiError> {
    if token.len() > 100 {
        return Ok(None);
    }
    let key = share_key(token);
    for _ in 0..5 {
        let Some(bytes) = app.storage.get(Tree::Portal, &key)? else {
            return Ok(None);
        };
        let mut share: Share = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
        let now = now_unix();
        let mut ev = crate::audit::Event {
            actor: "anonymous".into(),
            role: String::new(),
            action: "share.view".into(),
            patient: Some(share.patient.clone()),
            resource: Some(format!("Share/{}", share.id)),
            source: source.map(|s| s.to_string()),
            detail: Some(agent_summary(user_agent)),
            ..Default::default()
        };
        if !share.live(now) {
            ev.outcome = "denied".into();
            ev.detail = Some(if share.revoked.is_some() {
                "revoked".into()
            } else {
                "expired".into()
            });
            app.audit.record_durable(ev).await?;
            return Ok(Some(share));
        }
        share.views.push(ShareView {
            time: now,
            source: source.map(|s| s.to_string()),
            agent: agent_summary(user_agent),
        });
        if share.views.len() > MAX_VIEWS {
            let extra = share.views.len() - MAX_VIEWS;
            share.views.drain(..extra);
        }
        share.view_count += 1;
        let b = replace_share(&key, bytes, &share);
        ev.outcome = "success".into();
        match app.commit_audited(&b, ev).await {
            Ok(()) => return Ok(Some(share)),
            Err(e) if lost_race(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "conflict",
        "this share is busy; try again",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_long_unambiguous_and_read_back_as_typed() {
        let c = new_code();
        assert_eq!(c.len(), CODE_LEN);
        assert!(c.bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(new_code(), c);
        let printed = printable(&c);
        assert_eq!(printed.len(), CODE_LEN + 3);
        assert_eq!(normalise_code(&printed.to_lowercase()), c);
        assert_eq!(normalise_code("o1l0-i"), "01101");
    }

    #[test]
    fn user_agents_are_summarised() {
        let ff = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0";
        assert_eq!(agent_summary(ff), "Firefox on Windows");
        assert_eq!(agent_summary("curl/8.0"), "curl");
        assert_eq!(agent_summary(""), "an unknown program");
    }
}
