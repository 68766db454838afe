//! Signed Osler plugin packages and registries.
//!
//! A registry is a folder of static files (served by any web server, or `osler registry
//! serve`) whose metadata follows The Update Framework, reduced to what Osler needs: a pinned
//! root, delegation of plugin ids and interface packages to publishers, per-plugin indexes with hashes and
//! lengths, and short-lived snapshot and timestamp documents that expose frozen or replayed
//! views. See `meta` for the documents, `repo` for the operator's side and `client` for the
//! clinic's.

pub mod client;
pub mod keys;
pub mod meta;
pub mod package;
pub mod repo;
pub mod resolve;

pub use client::{Client, Source, Trust, View};
pub use keys::{Domain, PublicKey, SecretKey};
pub use meta::{Index, Release};
pub use package::{Package, PackageSignature};
pub use repo::{KeyDir, Lifetimes, ReleaseInfo, Repo};

/// Everything that can be refused, each with a message an administrator can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Key(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Invalid(String),
    #[error("malformed registry metadata: {0}")]
    Malformed(String),
    #[error("{0}")]
    Package(String),
    #[error("cannot fetch from the registry: {0}")]
    Fetch(String),
    #[error(
        "{what} is not signed by the registry's {role} key(s): {valid} valid signature(s), {threshold} required"
    )]
    Signature {
        what: String,
        role: String,
        valid: u32,
        threshold: u32,
    },
    #[error(
        "{what} is version {got}, older than version {seen} already seen: the registry (or a mirror) is replaying old metadata"
    )]
    Rollback { what: String, seen: u64, got: u64 },
    #[error(
        "{what} expired at {expired}: the registry's view is stale (frozen); its operator must run `osler registry refresh`"
    )]
    Expired { what: String, expired: String },
    #[error("{what} does not match the hash the registry's signed metadata gives for it")]
    Hash { what: String },
    #[error("{what} is {got} bytes, the registry's signed metadata says {expected}")]
    Length {
        what: String,
        expected: u64,
        got: u64,
    },
    #[error("{what} is larger than the {limit} bytes the registry's metadata allows")]
    TooLarge { what: String, limit: u64 },
    #[error(
        "the package of '{id}' is signed by key {key} (publisher '{publisher}'), which the registry does not delegate for '{id}'"
    )]
    NotDelegated {
        id: String,
        key: String,
        publisher: String,
    },
    #[error(
        "'{id}' exports {interface}, but the registry does not delegate that interface package \
         to its publisher '{publisher}': only the package's owner may provide its interfaces \
         (the registry's operator delegates it with `osler registry add-publisher … \
         --interfaces <namespace:package>`)"
    )]
    InterfaceNotDelegated {
        id: String,
        interface: String,
        publisher: String,
    },
    #[error("{0}")]
    UntrustedRoot(String),
    #[error("{0}")]
    Resolve(String),
    #[error("{0}")]
    Yanked(String),
    #[error("{0}")]
    Api(String),
}

impl Error {
    /// A stable machine-readable code for each kind of refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Key(_) => "key",
            Error::Io(_) => "io",
            Error::Invalid(_) => "invalid",
            Error::Malformed(_) => "malformed-metadata",
            Error::Package(_) => "bad-package-signature",
            Error::Fetch(_) => "registry-unreachable",
            Error::Signature { .. } => "bad-metadata-signature",
            Error::Rollback { .. } => "metadata-rollback",
            Error::Expired { .. } => "metadata-expired",
            Error::Hash { .. } => "hash-mismatch",
            Error::Length { .. } | Error::TooLarge { .. } => "length-mismatch",
            Error::NotDelegated { .. } => "publisher-not-delegated",
            Error::InterfaceNotDelegated { .. } => "interface-not-delegated",
            Error::UntrustedRoot(_) => "untrusted-root",
            Error::Resolve(_) => "no-matching-version",
            Error::Yanked(_) => "yanked",
            Error::Api(_) => "incompatible-api",
        }
    }
}
