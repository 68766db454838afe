//! Configuration: `osler.toml` (every key optional), then `OSLER_*` environment variables,
//! then command-line flags, each overriding the one before.
//!
//! Nested keys in the environment use a double underscore: `OSLER_AUTH__LOCK_SECONDS=60`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::auth::ThrottleConfig;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database and the audit log live.
    pub data_dir: PathBuf,
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// The URL users reach Osler at; `https://…` makes session cookies `Secure`.
    pub public_url: Option<String>,
    pub auth: AuthConfig,
    pub http: HttpConfig,
    /// The database.
    pub storage: StorageConfig,
    /// The server's memory budget, which sizes the database cache and the warm sandboxes.
    pub memory: MemoryConfig,
    /// Patient search limits.
    pub patients: PatientsConfig,
    /// Patients' own accounts: activation codes and shares of their record.
    pub portal: PortalConfig,
    /// Signed checkpoints of the audit trail, and where else they go.
    pub audit: crate::audit::AuditConfig,
    /// The clinic's IANA time zone, e.g. `America/Toronto`; plugins see local time in it.
    pub timezone: String,
    /// Plugin sandbox limits, the compiled-code cache, development packages.
    pub plugins: crate::plugins::engine::Limits,
    /// Plugin registries to install from, in order of preference (`[[registries]]`).
    pub registries: Vec<RegistryConfig>,
}

/// One plugin registry a clinic trusts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// A short name, shown in listings and the audit trail.
    pub name: String,
    /// `https://…` (or `http://…`) URL, or a folder.
    pub url: String,
    /// The registry's root key, `ed25519:<hex>`, as `osler registry init` printed it. The first
    /// root metadata must be signed by it; later roots must be signed by the one before.
    pub root_key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a session lasts, in seconds.
    pub session_seconds: u64,
    #[serde(flatten)]
    pub throttle: ThrottleConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Reverse proxies (addresses or networks, e.g. `10.0.0.5` or `10.0.0.0/24`) whose
    /// `X-Forwarded-For` is believed: for a request from one of them, the client's address is
    /// the nearest one in that header that is not itself a trusted proxy. From anyone else the
    /// header is ignored. The client's address is what sign-in throttling counts and the audit
    /// trail records.
    pub trusted_proxies: Vec<Network>,
}

/// An address or a network, written `10.0.0.5` or `10.0.0.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network(pub ipnet::IpNet);

impl Network {
    pub fn contains(&self, ip: &std::net::IpAddr) -> bool {
        self.0.contains(ip)
    }
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(n) = s.parse::<ipnet::IpNet>() {
            return Ok(Network(n.trunc()));
        }
        s.parse::<std::net::IpAddr>()
            .map(|ip| Network(ipnet::IpNet::from(ip)))
            .map_err(|_| {
                format!("'{s}' is not an address or a network (e.g. 10.0.0.5 or 10.0.0.0/24)")
            })
    }
}

impl Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The engine a new data directory's database is created with: `fjall` (the default) or
    /// `sled`. An existing directory keeps the engine it has.
    pub engine: crate::storage::Engine,
    /// The database's cache, MiB; unset, an eighth of `[memory] budget_mib`. (sled counts it
    /// by the size of its pages on disk; in memory they take two to three times that.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_mib: Option<u64>,
}

/// `[memory]`: what the server's resident memory should stay within. See
/// [`crate::memory::Budget`] for how it is shared out.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// MiB.
    pub budget_mib: u64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            budget_mib: crate::memory::DEFAULT_BUDGET_MIB,
        }
    }
}

impl Config {
    /// The memory budget (`[memory] budget_mib`), which sizes the shares not set explicitly.
    pub fn budget(&self) -> crate::memory::Budget {
        crate::memory::Budget::new(self.memory.budget_mib)
    }

    /// What the database may hold in memory: the budget's share, with `[storage] cache_mib`
    /// as the cache where it is set.
    pub fn storage_memory(&self) -> crate::storage::StorageMemory {
        let mut memory = self.budget().storage();
        if let Some(mib) = self.storage.cache_mib {
            memory.cache_bytes = mib.max(1) << 20;
        }
        memory
    }

    /// `[plugins]` with the warm sandboxes the budget allows where none is set.
    pub fn plugin_limits(&self) -> crate::plugins::engine::Limits {
        let mut limits = self.plugins.clone();
        if limits.warm_slots == 0 {
            limits.warm_slots = self.budget().warm_slots();
        }
        limits
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatientsConfig {
    /// How long one search may scan, in milliseconds, before it answers the matches found so
    /// far with a `next` link to continue.
    pub search_budget_ms: u64,
}

impl Default for PatientsConfig {
    fn default() -> Self {
        Self {
            search_budget_ms: crate::patients::SEARCH_BUDGET.as_millis() as u64,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// How long a patient's activation code stays valid, in seconds (14 days).
    pub activation_seconds: u64,
    /// The longest a patient's share of their record may last, in seconds (90 days). A share
    /// asked for longer is cut to this; a clinic may set it lower.
    pub share_max_seconds: u64,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            activation_seconds: 14 * 24 * 3600,
            share_max_seconds: 90 * 24 * 3600,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./osler-data"),
            listen: "127.0.0.1:8080".parse().expect("valid"),
            public_url: None,
            auth: AuthConfig::default(),
            http: HttpConfig::default(),
            storage: StorageConfig::default(),
            memory: MemoryConfig::default(),
            patients: PatientsConfig::default(),
            portal: PortalConfig::default(),
            audit: Default::default(),
            timezone: "America/Toronto".into(),
            plugins: Default::default(),
            registries: Vec::new(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_seconds: 12 * 3600,
            throttle: ThrottleConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Config {
    /// Load from an optional file (a missing default `osler.toml` is fine; a missing file
    /// named explicitly is an error) and the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                if !f.exists() {
                    anyhow::bail!("config file {} does not exist", f.display());
                }
                fig = fig.merge(Toml::file_exact(f));
            }
            None => {
                if Path::new("osler.toml").exists() {
                    fig = fig.merge(Toml::file_exact("osler.toml"));
                }
            }
        }
        fig = fig.merge(
            Env::prefixed("OSLER_")
                .ignore(&["CONFIG", "ADMIN_PASSWORD", "LOG"])
                .split("__"),
        );
        fig.extract()
            .map_err(|e| anyhow::anyhow!("configuration error: {e}"))
    }
}
