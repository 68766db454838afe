//! The site's key pair, generated on first use and kept in kv (`site/<site>/seed`).

use osler_sdk::{Error, kv};

use crate::crypto;

/// This site's secret seed, made from the CSPRNG the first time it is needed. Two requests
/// racing to make it agree on the first one written (compare-and-swap).
pub fn own_seed() -> Result<[u8; 32], Error> {
    let key = format!("site/{}/seed", osler_sdk::context::site());
    for _ in 0..3 {
        if let Some(hex) = kv::get::<String>(&key)? {
            return crypto::seed_from_hex(&hex).map_err(Error::internal);
        }
        let seed = crypto::new_seed().map_err(Error::internal)?;
        match kv::Batch::new()
            .expect_absent(&key)
            .put(&key, &hex::encode(seed))
            .commit()
        {
            Ok(()) => return Ok(seed),
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::internal("could not store this site's key"))
}

/// This site's public key (hex).
pub fn own_public() -> Result<String, Error> {
    Ok(crypto::public_hex(&own_seed()?))
}
