//! The site's ed25519 key pair and message signatures.
//!
//! Keys and signatures travel as lower-case hex (a public key is 64 characters, a signature
//! 128). Verification is `verify_strict`: it refuses the malleable and small-order encodings a
//! plain `verify` lets through. The key's 32-byte seed comes from the CSPRNG the host gives the
//! component (WASI random, through `getrandom`).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// A new secret seed from the CSPRNG.
pub fn new_seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no random numbers: {e}"))?;
    Ok(seed)
}

/// A seed as stored (hex) back to bytes.
pub fn seed_from_hex(s: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s).map_err(|_| "the stored key is damaged".to_string())?;
    bytes
        .try_into()
        .map_err(|_| "the stored key is damaged".to_string())
}

/// The public key of a seed, as hex.
pub fn public_hex(seed: &[u8; 32]) -> String {
    hex::encode(SigningKey::from_bytes(seed).verifying_key().as_bytes())
}

/// The signature of `message` by the key of `seed`, as hex.
pub fn sign(seed: &[u8; 32], message: &[u8]) -> String {
    hex::encode(SigningKey::from_bytes(seed).sign(message).to_bytes())
}

/// A public key as an administrator typed it: 64 hex digits (spaces and case ignored), a
/// valid curve point. Returns it in its canonical form (lower-case hex).
pub fn parse_public(input: &str) -> Result<String, String> {
    let cleaned: String = input
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    let bytes =
        hex::decode(&cleaned).map_err(|_| "a public key is 64 hexadecimal digits".to_string())?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "a public key is 64 hexadecimal digits".to_string())?;
    let key = VerifyingKey::from_bytes(&arr).map_err(|_| "not a valid ed25519 public key")?;
    if key.is_weak() {
        return Err("not a usable ed25519 public key (small order)".into());
    }
    Ok(cleaned)
}

/// Whether `signature_hex` is `key_hex`'s signature of exactly `message`.
pub fn verify(key_hex: &str, message: &[u8], signature_hex: &str) -> bool {
    let Ok(key) = parse_public(key_hex) else {
        return false;
    };
    let Ok(key_bytes) = hex::decode(key) else {
        return false;
    };
    let Ok(key_arr) = <[u8; 32]>::try_from(key_bytes) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key_arr) else {
        return false;
    };
    let Ok(sig) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(&sig))
        .is_ok()
}

/// A short, stable name for a public key in storage keys and URLs: its first 16 hex digits.
pub fn fingerprint(key_hex: &str) -> String {
    key_hex.chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_key_and_exact_bytes() {
        let a = new_seed().unwrap();
        let b = new_seed().unwrap();
        assert_ne!(a, b, "two seeds from the CSPRNG differ");
        let sig = sign(&a, b"{\"x\":1}");
        assert!(verify(&public_hex(&a), b"{\"x\":1}", &sig));
        assert!(!verify(&public_hex(&a), b"{\"x\":2}", &sig));
        assert!(!verify(&public_hex(&a), b"{\"x\":1} ", &sig));
        assert!(!verify(&public_hex(&b), b"{\"x\":1}", &sig));
        assert!(!verify(&public_hex(&a), b"{\"x\":1}", "00"));
        assert!(!verify("zz", b"{\"x\":1}", &sig));
    }

    #[test]
    fn public_keys_are_checked_and_canonical() {
        let seed = new_seed().unwrap();
        let key = public_hex(&seed);
        assert_eq!(
            parse_public(&format!(" {} ", key.to_uppercase())).unwrap(),
            key
        );
        assert!(parse_public("abc").is_err());
        // The identity point has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(parse_public(&hex::encode(identity)).is_err());
        assert_eq!(fingerprint(&key).len(), 16);
        assert_eq!(seed_from_hex(&hex::encode(seed)).unwrap(), seed);
    }
}
