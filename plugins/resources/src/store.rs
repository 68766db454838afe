//! Each site's library, in the plugin's `kv`.
//!
//! A site's library is one value, `site/<site>/library` → [`Library`]: its resources in the
//! site's order (the seed set that ships with the plugin, copied in on the site's first use,
//! and the site's own), the version of the seed set it holds, and the next number for a
//! resource of its own. One value keeps a change (an edit, a re-order, a pin) atomic with
//! compare-and-swap on the bytes read, and a search reads it once; [`MAX_RESOURCES`] keeps it
//! well under the host's 1 MiB value limit.
//!
//! **Seeding** is idempotent: the first request at a site that finds no library writes one
//! from the seed set, expecting the key still absent; a request that loses that race reads the
//! winner's. A plugin version with a newer seed set adds, on first use, the seed entries a
//! site's library lacks (by id), leaving the site's edits, retirements, pins and order alone.
//! Resources are never deleted: a site retires one (and can restore it).

use osler_sdk::{Error, kv};
use serde::{Deserialize, Serialize};

use crate::model::{MAX_RESOURCES, Resource};
use crate::seed;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Library {
    /// The seed set's version this library has taken in (see [`seed::VERSION`]).
    pub seed_version: u32,
    /// The number of the site's next own resource (`s000001`, …).
    pub next: u64,
    pub items: Vec<Resource>,
}

impl Library {
    pub fn get(&self, id: &str) -> Option<&Resource> {
        self.items.iter().find(|r| r.id == id)
    }

    /// Takes in the seed entries it lacks (by id), after its own.
    pub fn merge_seed(&mut self, seed: Vec<Resource>, version: u32) {
        for s in seed {
            if self.get(&s.id).is_none() {
                self.items.push(s);
            }
        }
        self.seed_version = self.seed_version.max(version);
    }
}

pub fn key(site: &str) -> String {
    format!("site/{site}/library")
}

/// The site's library, seeded on first use.
pub fn load(site: &str) -> Result<Library, Error> {
    Ok(read(site)?.1)
}

/// The library and the bytes it was read from (to compare-and-swap against).
fn read(site: &str) -> Result<(Vec<u8>, Library), Error> {
    let k = key(site);
    for _ in 0..3 {
        let bytes = kv::get_bytes(&k)?;
        let current: Option<Library> = match &bytes {
            Some(b) => Some(serde_json::from_slice(b).map_err(|e| {
                Error::internal(format!("the library of site {site} is unreadable: {e}"))
            })?),
            None => None,
        };
        if let (Some(b), Some(lib)) = (&bytes, &current)
            && lib.seed_version >= seed::VERSION
        {
            return Ok((b.clone(), lib.clone()));
        }
        let mut lib = current.unwrap_or_default();
        lib.merge_seed(seed::entries()?, seed::VERSION);
        let new = serde_json::to_vec(&lib).map_err(|e| Error::internal(e.to_string()))?;
        let batch = match bytes {
            Some(b) => kv::Batch::new().expect_bytes(&k, b),
            None => kv::Batch::new().expect_absent(&k),
        };
        match batch.put_bytes(&k, new.clone()).commit() {
            Ok(()) => return Ok((new, lib)),
            // Another request seeded it first: read theirs.
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(
        "the library is being changed by others at this moment: try again",
    ))
}

/// Applies `change` to the site's library and stores it, unless it changed in between; then
/// reads it again and applies `change` to that (a few times). `change` refuses with an error,
/// and then nothing is stored.
pub fn update<T>(
    site: &str,
    change: impl Fn(&mut Library) -> Result<T, Error>,
) -> Result<T, Error> {
    let k = key(site);
    for _ in 0..5 {
        let (bytes, mut lib) = read(site)?;
        let out = change(&mut lib)?;
        if lib.items.len() > MAX_RESOURCES {
            return Err(Error::too_large(format!(
                "a site's library holds at most {MAX_RESOURCES} resources; retire or edit one instead"
            )));
        }
        let new = serde_json::to_vec(&lib).map_err(|e| Error::internal(e.to_string()))?;
        match kv::Batch::new()
            .expect_bytes(&k, bytes)
            .put_bytes(&k, new)
            .commit()
        {
            Ok(()) => return Ok(out),
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(
        "the library is being changed by others at this moment: try again",
    ))
}
