//! The messages between a facility and its integrator, and the checks a receiver makes.
//!
//! A request is one JSON object (an [`Envelope`]) sent as the HTTP body; the header
//! `caisi-signature` carries the sender's ed25519 signature of exactly those bytes. An answer is
//! `{"payload": "<an Envelope as a JSON string>", "signature": "<hex>"}`: the signature of the
//! payload string's bytes, inside the body because the host passes only an allow-list of
//! response headers. Both directions are checked the same way: the sender is the key the
//! receiver expects, the signature verifies (`verify_strict`), the recipient is the receiver,
//! the time is within [`MAX_SKEW_MS`] of the receiver's clock, and (at the integrator) the
//! message id was never seen before.

use serde::{Deserialize, Serialize};

use crate::crypto;

/// The header carrying a request's signature.
pub const SIGNATURE_HEADER: &str = "caisi-signature";
/// How far a message's time may be from the receiver's clock: five minutes either way.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;
/// The protocol's version, in every envelope.
pub const VERSION: u32 = 1;

/// One message.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Envelope {
    /// [`VERSION`].
    pub caisi: u32,
    /// `snapshot`, `query`, `facilities` (requests) or `answer`.
    pub kind: String,
    /// The sender's public key (hex).
    pub from: String,
    /// The recipient's public key (hex).
    pub to: String,
    /// A unique id: 32 hex digits from the CSPRNG.
    pub id: String,
    /// When it was sent, milliseconds since 1970 (UTC).
    pub ts: i64,
    /// For an answer: the id of the request it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub re: Option<String>,
    pub body: serde_json::Value,
}

/// Why a message was refused. The code goes into the audit entry and the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Malformed(String),
    UnknownSender,
    RemovedSender,
    BadSignature,
    WrongRecipient,
    Stale,
    Replayed,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::UnknownSender => "unknown-facility",
            Refusal::RemovedSender => "removed-facility",
            Refusal::BadSignature => "bad-signature",
            Refusal::WrongRecipient => "wrong-recipient",
            Refusal::Stale => "stale-timestamp",
            Refusal::Replayed => "replayed",
        }
    }

    /// The HTTP status the integrator answers with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) => 400,
            Refusal::BadSignature | Refusal::Stale => 401,
            Refusal::UnknownSender | Refusal::RemovedSender | Refusal::WrongRecipient => 403,
            Refusal::Replayed => 409,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Malformed(m) => format!("not a CAISI message: {m}"),
            Refusal::UnknownSender => "the sender's key is not a registered facility".into(),
            Refusal::RemovedSender => "the sender's facility was removed".into(),
            Refusal::BadSignature => "the signature does not verify".into(),
            Refusal::WrongRecipient => "the message is for another recipient".into(),
            Refusal::Stale => format!(
                "the message's time is more than {} minutes from this server's clock",
                MAX_SKEW_MS / 60_000
            ),
            Refusal::Replayed => "this message id was already received".into(),
        }
    }
}

/// What the receiver knows about a sender key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sender {
    Active,
    Removed,
    Unknown,
}

/// Parse `raw` and check everything but replay: the sender (`sender(from)`), the signature,
/// the recipient (`me`) and the time (against `now`).
pub fn check(
    raw: &[u8],
    signature: Option<&str>,
    me: &str,
    now: i64,
    sender: impl Fn(&str) -> Sender,
) -> Result<Envelope, (Refusal, Option<String>)> {
    let env: Envelope =
        serde_json::from_slice(raw).map_err(|e| (Refusal::Malformed(e.to_string()), None))?;
    let from = Some(env.from.clone());
    if env.caisi != VERSION {
        return Err((
            Refusal::Malformed(format!(
                "protocol version {} (this is {VERSION})",
                env.caisi
            )),
            from,
        ));
    }
    if env.id.len() != 32 || !env.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err((Refusal::Malformed("id: 32 hex digits".into()), from));
    }
    match sender(&env.from) {
        Sender::Unknown => return Err((Refusal::UnknownSender, from)),
        Sender::Removed => return Err((Refusal::RemovedSender, from)),
        Sender::Active => {}
    }
    let Some(signature) = signature else {
        return Err((Refusal::BadSignature, from));
    };
    if !crypto::verify(&env.from, raw, signature) {
        return Err((Refusal::BadSignature, from));
    }
    if env.to != me {
        return Err((Refusal::WrongRecipient, from));
    }
    if (env.ts - now).abs() > MAX_SKEW_MS {
        return Err((Refusal::Stale, from));
    }
    Ok(env)
}

/// A new message id: 32 hex digits from the CSPRNG.
pub fn new_id() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("no random numbers: {e}"))?;
    Ok(hex::encode(b))
}

/// A signed request: the body bytes and the signature header's value.
pub fn seal_request(
    seed: &[u8; 32],
    kind: &str,
    to: &str,
    now: i64,
    body: serde_json::Value,
) -> Result<(String, Vec<u8>, String), String> {
    let env = Envelope {
        caisi: VERSION,
        kind: kind.into(),
        from: crypto::public_hex(seed),
        to: to.into(),
        id: new_id()?,
        ts: now,
        re: None,
        body,
    };
    let bytes = serde_json::to_vec(&env).map_err(|e| e.to_string())?;
    let sig = crypto::sign(seed, &bytes);
    Ok((env.id, bytes, sig))
}

/// A signed answer to the request `re` from `to`.
#[derive(Serialize, Deserialize)]
pub struct SignedAnswer {
    pub payload: String,
    pub signature: String,
}

pub fn seal_answer(
    seed: &[u8; 32],
    to: &str,
    re: &str,
    now: i64,
    body: serde_json::Value,
) -> Result<SignedAnswer, String> {
    let env = Envelope {
        caisi: VERSION,
        kind: "answer".into(),
        from: crypto::public_hex(seed),
        to: to.into(),
        id: new_id()?,
        ts: now,
        re: Some(re.into()),
        body,
    };
    let payload = serde_json::to_string(&env).map_err(|e| e.to_string())?;
    let signature = crypto::sign(seed, payload.as_bytes());
    Ok(SignedAnswer { payload, signature })
}

/// Check an answer from the integrator `integrator` to our request `re`.
pub fn open_answer(
    raw: &[u8],
    integrator: &str,
    me: &str,
    re: &str,
    now: i64,
) -> Result<serde_json::Value, String> {
    let ans: SignedAnswer = serde_json::from_slice(raw)
        .map_err(|_| "the integrator's answer is not a signed CAISI answer".to_string())?;
    let env = check(ans.payload.as_bytes(), Some(&ans.signature), me, now, |k| {
        if k == integrator {
            Sender::Active
        } else {
            Sender::Unknown
        }
    })
    .map_err(|(r, _)| format!("the integrator's answer was refused: {}", r.message()))?;
    if env.kind != "answer" || env.re.as_deref() != Some(re) {
        return Err("the integrator's answer is not for this request".into());
    }
    Ok(env.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ([u8; 32], String, [u8; 32], String) {
        let a = crypto::new_seed().unwrap();
        let b = crypto::new_seed().unwrap();
        let (pa, pb) = (crypto::public_hex(&a), crypto::public_hex(&b));
        (a, pa, b, pb)
    }

    #[test]
    fn a_sealed_request_passes_and_each_tampering_is_refused_with_its_reason() {
        let (a, pa, _b, pb) = keys();
        let now = 1_800_000_000_000;
        let (_, bytes, sig) =
            seal_request(&a, "query", &pb, now, serde_json::json!({"client": "p1"})).unwrap();
        let known = |k: &str| {
            if k == pa {
                Sender::Active
            } else {
                Sender::Unknown
            }
        };
        let env = check(&bytes, Some(&sig), &pb, now + 1000, known).unwrap();
        assert_eq!(env.body["client"], "p1");
        let refusal = |r: Result<Envelope, (Refusal, Option<String>)>| r.unwrap_err().0;

        let mut altered = bytes.clone();
        let at = altered.iter().position(|&c| c == b'p').unwrap();
        altered[at] = b'q';
        assert_eq!(
            refusal(check(&altered, Some(&sig), &pb, now, known)),
            Refusal::BadSignature
        );
        assert_eq!(
            refusal(check(&bytes, None, &pb, now, known)),
            Refusal::BadSignature
        );
        assert_eq!(
            refusal(check(&bytes, Some(&sig), &pa, now, known)),
            Refusal::WrongRecipient
        );
        assert_eq!(
            refusal(check(&bytes, Some(&sig), &pb, now + MAX_SKEW_MS + 1, known)),
            Refusal::Stale
        );
        assert_eq!(
            refusal(check(&bytes, Some(&sig), &pb, now, |_| Sender::Unknown)),
            Refusal::UnknownSender
        );
        assert_eq!(
            refusal(check(&bytes, Some(&sig), &pb, now, |_| Sender::Removed)),
            Refusal::RemovedSender
        );
        assert!(matches!(
            refusal(check(b"{}", Some(&sig), &pb, now, known)),
            Refusal::Malformed(_)
        ));
    }

    #[test]
    fn answers_verify_against_the_integrator_key_and_the_request() {
        let (a, pa, b, pb) = keys();
        let now = 1_800_000_000_000;
        let ans = seal_answer(&b, &pa, "r1", now, serde_json::json!({"ok": true})).unwrap();
        let raw = serde_json::to_vec(&ans).unwrap();
        assert_eq!(open_answer(&raw, &pb, &pa, "r1", now).unwrap()["ok"], true);
        assert!(open_answer(&raw, &pb, &pa, "r2", now).is_err());
        // Signed by someone else (the facility itself) is refused.
        let forged = seal_answer(&a, &pa, "r1", now, serde_json::json!({"ok": true})).unwrap();
        let raw = serde_json::to_vec(&forged).unwrap();
        assert!(open_answer(&raw, &pb, &pa, "r1", now).is_err());
    }
}
