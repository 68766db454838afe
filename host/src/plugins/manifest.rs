//! `plugin.toml`: what a plugin is, what it asks for, what it provides.
//!
//! Parsing is strict: an unknown key, a bad value or an inconsistent pair of keys is an error
//! that names the key and its line, so a plugin author can fix it without guessing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::access::Role;

/// The versions of the `osler:plugin` API this host links, oldest first.
pub const HOST_API_VERSIONS: &[semver::Version] =
    &[semver::Version::new(0, 1, 0), semver::Version::new(0, 2, 0)];

pub use crate::access::Capability;

/// The `osler:plugin` interface a capability unlocks.
pub fn interface_of(c: Capability) -> &'static str {
    match c {
        Capability::PatientsRead => "patients-read",
        Capability::PatientsWrite => "patients-write",
        Capability::PatientsDeidentified => "patients-deidentified",
        Capability::PatientsMatch => "patients-match",
        Capability::PatientData => "patient-data",
        Capability::Kv => "kv",
        Capability::EventsPublish => "events",
        Capability::Directory => "directory",
        Capability::Outbound => "outbound-http",
        // Not a host interface: the requests reach the `handler` every plugin exports.
        Capability::Inbound => "handler",
    }
}

/// The capability an `osler:plugin` interface a plugin imports needs; `None` for the free
/// ones.
pub fn capability_for(interface: &str) -> Option<Capability> {
    Capability::ALL
        .into_iter()
        .filter(|c| *c != Capability::Inbound)
        .find(|c| interface_of(*c) == interface)
}

/// `osler:plugin` interfaces any plugin may import without a capability.
pub const FREE_INTERFACES: &[&str] = &["types", "log", "clock", "config", "audit", "context"];

/// Whether `osler:plugin@version` has the interface `name` (imports and exports).
pub fn api_has(version: &semver::Version, name: &str) -> bool {
    let since_0_2 = matches!(name, "context" | "patient-data" | "chart");
    !since_0_2 || *version >= semver::Version::new(0, 2, 0)
}

/// The type of a per-site configuration key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigType {
    Text,
    Integer,
    Boolean,
    Number,
}

/// A configuration value, typed by its key's [`ConfigType`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    Boolean(bool),
    Integer(i64),
    Number(f64),
    Text(String),
}

impl ConfigValue {
    /// `v` as a value of type `ty`, or a message saying what was expected.
    pub fn typed(ty: ConfigType, v: &serde_json::Value) -> Result<ConfigValue, String> {
        match (ty, v) {
            (ConfigType::Text, serde_json::Value::String(s)) => Ok(ConfigValue::Text(s.clone())),
            (ConfigType::Boolean, serde_json::Value::Bool(b)) => Ok(ConfigValue::Boolean(*b)),
            (ConfigType::Integer, serde_json::Value::Number(n)) if n.as_i64().is_some() => {
                Ok(ConfigValue::Integer(n.as_i64().unwrap_or_default()))
            }
            (ConfigType::Number, serde_json::Value::Number(n)) if n.as_f64().is_some() => {
                Ok(ConfigValue::Number(n.as_f64().unwrap_or_default()))
            }
            _ => Err(format!("expected {}", ty.describe())),
        }
    }

    /// Parses the text an administrator typed on the command line.
    pub fn parse(ty: ConfigType, s: &str) -> Result<ConfigValue, String> {
        match ty {
            ConfigType::Text => Ok(ConfigValue::Text(s.into())),
            ConfigType::Boolean => match s {
                "true" => Ok(ConfigValue::Boolean(true)),
                "false" => Ok(ConfigValue::Boolean(false)),
                _ => Err("expected true or false".into()),
            },
            ConfigType::Integer => s
                .parse()
                .map(ConfigValue::Integer)
                .map_err(|_| "expected a whole number".into()),
            ConfigType::Number => s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(ConfigValue::Number)
                .ok_or_else(|| "expected a number".into()),
        }
    }
}

impl ConfigType {
    fn describe(self) -> &'static str {
        match self {
            ConfigType::Text => "text",
            ConfigType::Integer => "a whole number",
            ConfigType::Boolean => "true or false",
            ConfigType::Number => "a number",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ConfigSpec {
    #[serde(rename = "type")]
    pub ty: ConfigType,
    pub default: Option<ConfigValue>,
    pub description: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NavEntry {
    pub title: String,
    /// Inside the plugin, starting with `/`.
    pub path: String,
    /// Roles that see the entry; every signed-in user when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Role>>,
}

/// A parsed, checked manifest.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    pub version: semver::Version,
    pub description: String,
    pub publisher: String,
    pub api: semver::VersionReq,
    pub capabilities: BTreeSet<Capability>,
    /// The literal origins `outbound` lists, normalised (`scheme://host:port`).
    pub outbound: Vec<String>,
    /// The configuration keys whose value's origin `outbound` allows (`"config:<key>"`
    /// entries): each site's administrator sets where the plugin may reach.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outbound_config: Vec<String>,
    pub exports: BTreeMap<String, semver::Version>,
    /// Every interface the plugin imports, required or optional.
    pub imports: BTreeMap<String, semver::VersionReq>,
    /// The imports declared `optional = true`: installing the plugin never requires or pulls
    /// in a provider for them; without one, their calls answer `unavailable`.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub optional_imports: BTreeSet<String>,
    pub subscribe: Vec<String>,
    pub config: BTreeMap<String, ConfigSpec>,
    pub nav: Vec<NavEntry>,
    pub panels: Vec<Panel>,
}

/// Where a panel goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// A section of the chart page (`/patients/{id}`), HTML.
    #[default]
    Chart,
    /// A flag on the patient banner, shown on every page about the patient: one line of text,
    /// `alert: …`, `warning: …` or `info: …` (the level, then what the banner shows after
    /// the panel's title), or nothing for no flag. The host escapes it. When the plugin fails
    /// or is late, the banner says "<title>: unavailable", never nothing, so that a missing
    /// allergies flag cannot read as "no known allergies".
    Banner,
    /// A section a patient can put in a share of their own record (`/me/shares`): HTML, like
    /// a chart panel, rendered for the patient when they create the share and kept as it was
    /// then. Never shown on the chart.
    Share,
}

impl Slot {
    fn is_chart(&self) -> bool {
        *self == Slot::Chart
    }
}

/// A panel the plugin contributes to a patient's chart (`[[panels]]`; API 0.2).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// 1 to 40 lowercase letters, digits or `-`; passed to `chart.render-panel`.
    pub id: String,
    /// 1 to 60 characters, shown above the panel.
    pub title: String,
    /// Roles that see the panel; everyone who may read the chart when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Role>>,
    /// `chart` (the default), `banner` (a flag on the patient banner) or `share` (a section
    /// of a patient's share of their record); see [`Slot`].
    #[serde(default, skip_serializing_if = "Slot::is_chart")]
    pub slot: Slot,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    id: Spanned<String>,
    name: Spanned<String>,
    version: semver::Version,
    #[serde(default)]
    description: String,
    publisher: Spanned<String>,
    api: Spanned<semver::VersionReq>,
    #[serde(default)]
    capabilities: Option<Spanned<BTreeSet<Capability>>>,
    #[serde(default)]
    outbound: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    exports: BTreeMap<Spanned<String>, semver::Version>,
    #[serde(default)]
    imports: BTreeMap<Spanned<String>, RawImport>,
    #[serde(default)]
    events: RawEvents,
    #[serde(default)]
    config: BTreeMap<Spanned<String>, Spanned<RawConfig>>,
    #[serde(default)]
    nav: Vec<Spanned<NavEntry>>,
    #[serde(default)]
    panels: Vec<Spanned<Panel>>,
}

/// An `[imports]` entry: `"iface" = "^0.1"` (required), or
/// `"iface" = { version = "^0.1", optional = true }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawImport {
    Required(semver::VersionReq),
    Detailed(RawImportTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImportTable {
    version: semver::VersionReq,
    #[serde(default)]
    optional: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    #[serde(default)]
    subscribe: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(rename = "type")]
    ty: ConfigType,
    default: Option<toml::Value>,
    #[serde(default)]
    description: String,
}

/// A manifest error: what is wrong, and where.
#[derive(Debug, thiserror::Error)]
#[error("plugin.toml: {0}")]
pub struct ManifestError(pub String);

fn at<T>(text: &str, span: &Spanned<T>, key: &str, msg: impl fmt::Display) -> ManifestError {
    let line = text[..span.span().start.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1;
    ManifestError(format!("line {line}, key `{key}`: {msg}"))
}

/// A plugin id: 2 to 40 lowercase letters, digits or `-`, starting with a letter.
pub fn valid_id(id: &str) -> bool {
    (2..=40).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `namespace:package/interface`, each part lowercase kebab-case, outside `osler:plugin` and
/// `wasi:` (those belong to the host).
fn valid_interface(name: &str) -> Result<(), String> {
    let kebab = |s: &str| {
        !s.is_empty()
            && s.split('-').all(|w| {
                !w.is_empty()
                    && w.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            })
    };
    let Some((pkg, iface)) = name.split_once('/') else {
        return Err("expected `namespace:package/interface`, without a version".into());
    };
    let Some((ns, p)) = pkg.split_once(':') else {
        return Err("expected `namespace:package/interface`, without a version".into());
    };
    if !(kebab(ns) && kebab(p) && kebab(iface)) {
        return Err("each part is lowercase words joined by '-'".into());
    }
    if ns == "wasi" || pkg == "osler:plugin" {
        return Err(format!(
            "`{pkg}` belongs to the host; plugins cannot provide it"
        ));
    }
    Ok(())
}

fn valid_topic(t: &str) -> bool {
    match t.split_once('.') {
        Some((who, what)) => {
            valid_id(who)
                && !what.is_empty()
                && what.len() <= 100
                && what
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        }
        None => false,
    }
}

/// A normalised origin `scheme://host:port`, or why not.
pub fn origin(url: &str) -> Result<String, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("`{url}`: only http and https are allowed"));
    }
    let host = u.host_str().ok_or_else(|| format!("`{url}` has no host"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("`{url}`: credentials do not belong in a manifest"));
    }
    let port = u.port_or_known_default().unwrap_or(443);
    Ok(format!("{}://{}:{}", u.scheme(), host, port))
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())]
                        .bytes()
                        .filter(|b| *b == b'\n')
                        .count()
                        + 1;
                    ManifestError(format!("line {line}: {msg}"))
                }
                None => ManifestError(msg),
            }
        })?;

        if !valid_id(raw.id.get_ref()) {
            return Err(at(
                text,
                &raw.id,
                "id",
                "an id is 2 to 40 lowercase letters, digits or '-', starting with a letter",
            ));
        }
        for (span, key) in [(&raw.name, "name"), (&raw.publisher, "publisher")] {
            if span.get_ref().trim().is_empty() || span.get_ref().len() > 200 {
                return Err(at(text, span, key, "must be 1 to 200 characters"));
            }
        }
        if !HOST_API_VERSIONS
            .iter()
            .any(|v| raw.api.get_ref().matches(v))
        {
            let have: Vec<String> = HOST_API_VERSIONS.iter().map(|v| v.to_string()).collect();
            return Err(at(
                text,
                &raw.api,
                "api",
                format!(
                    "this host provides osler:plugin {}; `{}` matches none of them",
                    have.join(", "),
                    raw.api.get_ref()
                ),
            ));
        }
        let capabilities = raw
            .capabilities
            .as_ref()
            .map(|c| c.get_ref().clone())
            .unwrap_or_default();
        if let Some(caps) = raw.capabilities.as_ref().filter(|_| {
            capabilities.contains(&Capability::Inbound)
                && !raw.api.get_ref().matches(&semver::Version::new(0, 2, 0))
        }) {
            return Err(at(
                text,
                caps,
                "capabilities",
                "\"inbound\" needs api 0.2 (the handler learns from osler:plugin/context that \
                 a request is inbound)",
            ));
        }
        let mut outbound = Vec::new();
        // `"config:<key>"` entries, with where they are, checked once `config` is parsed.
        let mut outbound_config: Vec<(String, &Spanned<String>)> = Vec::new();
        if let Some(list) = &raw.outbound {
            if !capabilities.contains(&Capability::Outbound) {
                return Err(at(
                    text,
                    list,
                    "outbound",
                    "lists origins but `capabilities` does not ask for \"outbound\"",
                ));
            }
            for o in list.get_ref() {
                match o.get_ref().strip_prefix("config:") {
                    Some(key) => {
                        if outbound_config.iter().any(|(k, _)| k == key) {
                            return Err(at(
                                text,
                                o,
                                "outbound",
                                format!("\"config:{key}\" is listed twice"),
                            ));
                        }
                        outbound_config.push((key.to_string(), o));
                    }
                    None => {
                        outbound.push(origin(o.get_ref()).map_err(|m| at(text, o, "outbound", m))?)
                    }
                }
            }
        }
        if let Some(caps) = raw.capabilities.as_ref().filter(|_| {
            capabilities.contains(&Capability::Outbound)
                && outbound.is_empty()
                && outbound_config.is_empty()
        }) {
            return Err(at(
                text,
                caps,
                "capabilities",
                "\"outbound\" needs the origins it may reach in `outbound = [...]`",
            ));
        }
        let mut exports = BTreeMap::new();
        for (k, v) in raw.exports {
            valid_interface(k.get_ref()).map_err(|m| at(text, &k, "exports", m))?;
            exports.insert(k.into_inner(), v);
        }
        let mut imports = BTreeMap::new();
        let mut optional_imports = BTreeSet::new();
        for (k, v) in raw.imports {
            valid_interface(k.get_ref()).map_err(|m| at(text, &k, "imports", m))?;
            if exports.contains_key(k.get_ref()) {
                return Err(at(
                    text,
                    &k,
                    "imports",
                    "a plugin cannot import what it exports",
                ));
            }
            let v = match v {
                RawImport::Required(v) => v,
                RawImport::Detailed(t) => {
                    if t.optional {
                        optional_imports.insert(k.get_ref().clone());
                    }
                    t.version
                }
            };
            imports.insert(k.into_inner(), v);
        }
        let mut subscribe = Vec::new();
        for t in raw.events.subscribe {
            if !valid_topic(t.get_ref()) {
                return Err(at(
                    text,
                    &t,
                    "events.subscribe",
                    "a topic is `<plugin id>.<name>`, e.g. `scheduling.appointment-booked`",
                ));
            }
            subscribe.push(t.into_inner());
        }
        let mut config = BTreeMap::new();
        for (k, spec) in raw.config {
            let key = k.get_ref();
            let ok = (1..=64).contains(&key.len())
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(at(
                    text,
                    &k,
                    "config",
                    "a configuration key is 1 to 64 lowercase letters, digits or '-'",
                ));
            }
            let s = spec.get_ref();
            let default = match &s.default {
                None => None,
                Some(v) => {
                    let json = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
                    Some(
                        ConfigValue::typed(s.ty, &json)
                            .map_err(|m| at(text, &spec, &format!("config.{key}.default"), m))?,
                    )
                }
            };
            config.insert(
                key.clone(),
                ConfigSpec {
                    ty: s.ty,
                    default,
                    description: s.description.clone(),
                },
            );
        }
        for (key, o) in &outbound_config {
            match config.get(key) {
                Some(spec) if spec.ty == ConfigType::Text => {}
                Some(_) => {
                    return Err(at(
                        text,
                        *o,
                        "outbound",
                        format!(
                            "\"config:{key}\": `[config.{key}]` must have type = \"text\" (its \
                             value is the URL whose origin the plugin may reach)"
                        ),
                    ));
                }
                None => {
                    return Err(at(
                        text,
                        *o,
                        "outbound",
                        format!(
                            "\"config:{key}\" names no configuration key; declare \
                             `[config.{key}]` with type = \"text\""
                        ),
                    ));
                }
            }
        }
        let outbound_config = outbound_config.into_iter().map(|(k, _)| k).collect();
        let mut nav = Vec::new();
        for n in raw.nav {
            let e = n.get_ref();
            if !e.path.starts_with('/') || e.title.trim().is_empty() || e.title.len() > 60 {
                return Err(at(
                    text,
                    &n,
                    "nav",
                    "an entry needs a title (1 to 60 characters) and a path starting with '/'",
                ));
            }
            nav.push(n.into_inner());
        }
        let mut panels: Vec<Panel> = Vec::new();
        for sp in raw.panels {
            let p = sp.get_ref();
            let id_ok = (1..=40).contains(&p.id.len())
                && p.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !id_ok || p.title.trim().is_empty() || p.title.len() > 60 {
                return Err(at(
                    text,
                    &sp,
                    "panels",
                    "a panel needs an id (1 to 40 lowercase letters, digits or '-') and a \
                     title (1 to 60 characters)",
                ));
            }
            if panels.iter().any(|q| q.id == p.id) {
                return Err(at(
                    text,
                    &sp,
                    "panels",
                    format!("two panels are called '{}'", p.id),
                ));
            }
            panels.push(sp.into_inner());
        }
        Ok(Manifest {
            id: raw.id.into_inner(),
            name: raw.name.into_inner().trim().into(),
            version: raw.version,
            description: raw.description,
            publisher: raw.publisher.into_inner(),
            api: raw.api.into_inner(),
            capabilities,
            outbound,
            outbound_config,
            exports,
            imports,
            optional_imports,
            subscribe,
            config,
            nav,
            panels,
        })
    }

    /// The imports installing this plugin requires a provider for (not those declared
    /// optional).
    pub fn required_imports(&self) -> impl Iterator<Item = (&String, &semver::VersionReq)> {
        self.imports
            .iter()
            .filter(|(k, _)| !self.optional_imports.contains(*k))
    }

    /// The origins `outbound` allows at a site whose configuration is `config`: the literal
    /// ones, then one per `"config:<key>"` entry — the origin of the key's value, or why
    /// there is none (the administrator has not set it, or it is not an http(s) URL).
    pub fn outbound_at(
        &self,
        config: &BTreeMap<String, ConfigValue>,
    ) -> Vec<(Option<&str>, Result<String, String>)> {
        let mut out: Vec<(Option<&str>, Result<String, String>)> = self
            .outbound
            .iter()
            .map(|o| (None, Ok(o.clone())))
            .collect();
        for key in &self.outbound_config {
            let origin = match config.get(key) {
                Some(ConfigValue::Text(v)) if !v.trim().is_empty() => {
                    origin(v.trim()).map_err(|e| {
                        format!("the value of `{key}` at this site is not an http(s) origin ({e})")
                    })
                }
                _ => Err(format!(
                    "the administrator has not set `{key}` at this site"
                )),
            };
            out.push((Some(key.as_str()), origin));
        }
        out
    }

    /// The API version this plugin will be linked against: the newest the host has that the
    /// manifest accepts.
    pub fn api_version(&self) -> Option<&'static semver::Version> {
        HOST_API_VERSIONS.iter().rev().find(|v| self.api.matches(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "notices"
name = "Clinic notices"
version = "0.1.0"
publisher = "Osler project"
api = "^0.1"
capabilities = ["kv", "outbound"]
outbound = ["https://integrator.example:8443/path"]

[exports]
"osler:notices/board" = "0.1.0"

[imports]
"osler:scheduling/appointments" = "^0.1"

[events]
subscribe = ["scheduling.appointment-booked"]

[config.banner]
type = "text"
default = "Welcome"

[[nav]]
title = "Notices"
path = "/"
roles = ["nurse"]
"#;

    #[test]
    fn a_complete_manifest_parses() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.id, "notices");
        assert_eq!(m.outbound, vec!["https://integrator.example:8443"]);
        assert!(m.capabilities.contains(&Capability::Kv));
        assert_eq!(
            m.config["banner"].default,
            Some(ConfigValue::Text("Welcome".into()))
        );
        assert_eq!(m.api_version(), Some(&semver::Version::new(0, 1, 0)));
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let bad = GOOD.replace("\"kv\", \"outbound\"", "\"kv\", \"outbound\", \"root\"");
        let e = Manifest::parse(&bad).unwrap_err().to_string();
        assert!(e.contains("line 7"), "{e}");
        assert!(e.contains("root"), "{e}");

        let bad = GOOD.replace("default = \"Welcome\"", "default = 3");
        let e = Manifest::parse(&bad).unwrap_err().to_string();
        assert!(
            e.contains("config.banner.default") && e.contains("expected text"),
            "{e}"
        );

        let bad = GOOD.replace("id = \"notices\"", "id = \"Notices!\"");
        let e = Manifest::parse(&bad).unwrap_err().to_string();
        assert!(e.contains("line 2, key `id`"), "{e}");

        let bad = GOOD.replace("api = \"^0.1\"", "api = \"^2\"");
        let e = Manifest::parse(&bad).unwrap_err().to_string();
        assert!(e.contains("key `api`"), "{e}");

        let bad = format!("{GOOD}\nsurprise = 1\n");
        let e = Manifest::parse(&bad).unwrap_err().to_string();
        assert!(e.contains("surprise"), "{e}");

        let bad = GOOD.replace("\"osler:notices/board\"", "\"osler:plugin/kv\"");
        let e = Manifest::parse(&bad).unwrap_err().to_string();
        assert!(e.contains("belongs to the host"), "{e}");
    }

    #[test]
    fn an_outbound_origin_can_be_the_one_an_administrator_sets() {
        let with = |entries: &str, config: &str| {
            GOOD.replace(
                "outbound = [\"https://integrator.example:8443/path\"]",
                &format!("outbound = [{entries}]"),
            )
            .replace(
                "[config.banner]\ntype = \"text\"\ndefault = \"Welcome\"",
                config,
            )
        };
        let text = with(
            "\"https://a.example\", \"config:integrator-url\"",
            "[config.integrator-url]\ntype = \"text\"",
        );
        let m = Manifest::parse(&text).unwrap();
        assert_eq!(m.outbound, vec!["https://a.example:443"]);
        assert_eq!(m.outbound_config, vec!["integrator-url"]);

        // At call time: the literal origin, then the configured key's, or why not.
        let mut config = BTreeMap::new();
        let at = m.outbound_at(&config);
        assert_eq!(at[0], (None, Ok("https://a.example:443".into())));
        let (key, why) = &at[1];
        assert_eq!(*key, Some("integrator-url"));
        assert!(
            why.as_ref()
                .unwrap_err()
                .contains("has not set `integrator-url`"),
            "{why:?}"
        );
        config.insert("integrator-url".into(), ConfigValue::Text("  ".into()));
        assert!(m.outbound_at(&config)[1].1.is_err());
        config.insert(
            "integrator-url".into(),
            ConfigValue::Text("ftp://files.example/".into()),
        );
        let why = m.outbound_at(&config)[1].1.clone().unwrap_err();
        assert!(why.contains("not an http(s) origin"), "{why}");
        config.insert(
            "integrator-url".into(),
            ConfigValue::Text("http://127.0.0.1:7001/caisi/".into()),
        );
        assert_eq!(
            m.outbound_at(&config)[1].1,
            Ok("http://127.0.0.1:7001".into())
        );

        // The key must be declared, and be text.
        let e = Manifest::parse(&with("\"config:nowhere\"", ""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key `outbound`")
                && e.contains("\"config:nowhere\" names no configuration key"),
            "{e}"
        );
        let e = Manifest::parse(&with(
            "\"config:port\"",
            "[config.port]\ntype = \"integer\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("\"config:port\"") && e.contains("type = \"text\""),
            "{e}"
        );
        let e = Manifest::parse(&with(
            "\"config:u\", \"config:u\"",
            "[config.u]\ntype = \"text\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn inbound_needs_api_0_2() {
        let e = Manifest::parse(
            &GOOD.replace("\"kv\", \"outbound\"", "\"kv\", \"outbound\", \"inbound\""),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"inbound\" needs api 0.2"), "{e}");
        let m = Manifest::parse(
            &GOOD
                .replace("\"kv\", \"outbound\"", "\"kv\", \"outbound\", \"inbound\"")
                .replace("api = \"^0.1\"", "api = \"^0.2\""),
        )
        .unwrap();
        assert!(m.capabilities.contains(&Capability::Inbound));
    }

    #[test]
    fn an_import_may_be_optional() {
        let text = GOOD.replace(
            "\"osler:scheduling/appointments\" = \"^0.1\"",
            "\"osler:scheduling/appointments\" = \"^0.1\"\n\
             \"osler:caisi/remote\" = { version = \"^0.1\", optional = true }\n\
             \"osler:drugref/lookup\" = { version = \"^0.3\" }",
        );
        let m = Manifest::parse(&text).unwrap();
        assert_eq!(m.imports.len(), 3);
        assert_eq!(
            m.optional_imports.iter().collect::<Vec<_>>(),
            vec!["osler:caisi/remote"]
        );
        let required: Vec<&String> = m.required_imports().map(|(k, _)| k).collect();
        assert_eq!(
            required,
            vec!["osler:drugref/lookup", "osler:scheduling/appointments"]
        );
        assert!(m.imports["osler:caisi/remote"].matches(&semver::Version::new(0, 1, 2)));

        let bad = GOOD.replace(
            "\"osler:scheduling/appointments\" = \"^0.1\"",
            "\"osler:scheduling/appointments\" = { version = \"^0.1\", optinal = true }",
        );
        assert!(Manifest::parse(&bad).is_err());
    }

    #[test]
    fn outbound_needs_the_capability_and_the_reverse() {
        let bad = GOOD.replace("\"kv\", \"outbound\"", "\"kv\"");
        let e = Manifest::parse(&bad).unwrap_err().to_string();
        assert!(e.contains("outbound"), "{e}");
        let bad = GOOD.replace("outbound = [\"https://integrator.example:8443/path\"]", "");
        assert!(Manifest::parse(&bad).is_err());
    }
}
