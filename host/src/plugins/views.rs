//! What administrators and the pages see of the plugins: listings with their state at every
//! site, the navigation entries of the plugins enabled at a site, and each plugin's own log
//! lines (kept in memory for administrators, never in the server's log).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

use super::bindings::Binding;
use super::events::{EventStats, Parked};
use super::manifest::{Manifest, Panel, Slot};
use super::quota::StorageView;
use super::{Origin, Plugins, SiteState, Status, now};
use crate::access::Role;

/// Log lines kept per plugin.
const LOG_LINES: usize = 500;

/// One line a plugin logged.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LogLine {
    pub time: String,
    pub site: String,
    pub level: String,
    pub message: String,
}

/// What the admin API and `osler plugin list` show of a plugin.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginView {
    pub id: String,
    pub name: String,
    pub version: String,
    pub publisher: String,
    pub description: String,
    /// `ready` or `failed`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Installed from an unsigned development package.
    pub development: bool,
    pub sha256: String,
    pub installed_at: String,
    pub installed_by: String,
    /// The registry and publisher of a signed package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The version `rollback` returns to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// A newer version waiting for approval, and what it adds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staged: Option<StagedView>,
    pub capabilities: Vec<String>,
    /// The origins the manifest lists for `outbound`.
    pub outbound: Vec<String>,
    /// The origins each site's administrator sets (`"config:<key>"` in the manifest).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outbound_config: Vec<ConfiguredOrigin>,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    /// At each site where it is enabled: the provider each of its imports is bound to
    /// (`null`: unbound, the calls answer `unavailable`).
    pub bindings: BTreeMap<String, BTreeMap<String, Option<String>>>,
    /// The sites and interfaces it is bound to provide.
    pub provides: Vec<Binding>,
    /// The chart panels it contributes.
    #[schema(value_type = Vec<Object>)]
    pub panels: Vec<Panel>,
    pub sites: BTreeMap<String, SiteState>,
    /// Its storage (`kv` and `patient-data`) against its quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageView>,
    /// Its events since the server started, those waiting for it, and those parked.
    pub events: EventsView,
}

/// An outbound origin set by configuration: "the origin set in `key`", and what that is at
/// each site where the plugin has a state.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConfiguredOrigin {
    pub key: String,
    /// Per site: the origin of the key's value there, or why there is none.
    pub sites: BTreeMap<String, OriginAt>,
}

/// The origin a configuration key allows at one site.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OriginAt {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Why calls to it are refused: the key is not set, or its value is not an http(s) URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl PluginView {
    /// Everything `outbound` would let it reach: the listed origins, then "the origin set in
    /// `<key>`" for each one an administrator sets.
    pub fn reach(&self) -> Vec<String> {
        self.outbound
            .iter()
            .cloned()
            .chain(self.outbound_config.iter().map(|c| c.describe()))
            .collect()
    }
}

impl ConfiguredOrigin {
    /// "the origin set in `key`", for people.
    pub fn describe(&self) -> String {
        format!("the origin set in `{}`", self.key)
    }

    /// What it is at `site`, for people: the origin, or why there is none.
    pub fn at(&self, site: &str) -> String {
        match self.sites.get(site) {
            Some(OriginAt {
                origin: Some(o), ..
            }) => o.clone(),
            Some(OriginAt {
                problem: Some(p), ..
            }) => p.clone(),
            _ => format!("the administrator has not set `{}` at this site", self.key),
        }
    }
}

/// A plugin's events, for administrators.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventsView {
    #[serde(flatten)]
    pub stats: EventStats,
    /// Deliveries to it waiting (or being retried).
    pub waiting: usize,
    /// Deliveries to it that failed every attempt.
    pub parked: Vec<Parked>,
}

/// A chart panel a plugin offers at a site.
#[derive(Clone, Debug, Serialize)]
pub struct PanelRef {
    pub plugin: String,
    pub panel: String,
    pub title: String,
    /// Where the site's administrator placed it (lower first); `None`: after those placed.
    pub position: Option<u32>,
}

/// A version waiting for an administrator's approval.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StagedView {
    pub version: String,
    /// Capabilities and outbound origins it asks for that the installed version does not.
    pub adds: Vec<String>,
}

/// A navigation entry for the home page.
#[derive(Clone, Debug, Serialize)]
pub struct Nav {
    pub plugin: String,
    pub title: String,
    pub href: String,
}

/// The plugins' log lines, the last [`LOG_LINES`] of each.
#[derive(Default)]
pub struct Logs {
    lines: Mutex<HashMap<String, VecDeque<LogLine>>>,
}

impl Logs {
    pub fn push(&self, id: &str, site: &str, level: &str, message: &str) {
        let mut message: String = message.chars().take(2000).collect();
        message.retain(|c| !c.is_control() || c == '\t');
        let mut logs = self.lines.lock().expect("lock");
        let q = logs.entry(id.to_string()).or_default();
        if q.len() == LOG_LINES {
            q.pop_front();
        }
        q.push_back(LogLine {
            time: now(),
            site: site.into(),
            level: level.into(),
            message,
        });
    }

    /// The last lines a plugin logged (kept in memory).
    pub fn of(&self, id: &str) -> Vec<LogLine> {
        self.lines
            .lock()
            .expect("lock")
            .get(id)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Plugins {
    /// The last lines a plugin logged (kept in memory).
    pub fn logs(&self, id: &str) -> Vec<LogLine> {
        self.inner.logs.of(id)
    }

    /// Note a line in plugin `id`'s log (the host's own notes about it, e.g. a dropped
    /// response header or a parked event).
    pub(crate) fn log_line(&self, id: &str, site: &str, level: &str, message: &str) {
        self.inner.logs.push(id, site, level, message);
    }

    /// Where plugins' log lines are kept (for the `log` capability).
    pub(crate) fn logs_store(&self) -> &Logs {
        &self.inner.logs
    }

    pub fn view(&self, id: &str) -> Option<PluginView> {
        let p = self.get(id)?;
        let sites: BTreeMap<String, SiteState> = self
            .inner
            .state
            .read()
            .expect("lock")
            .iter()
            .filter(|((pid, _), _)| pid == id)
            .map(|((_, site), s)| (site.clone(), s.clone()))
            .collect();
        let bindings = sites
            .iter()
            .filter(|(_, s)| s.enabled)
            .map(|(site, _)| {
                let bound = p
                    .manifest
                    .imports
                    .keys()
                    .map(|i| (i.clone(), self.binding(site, i).map(|b| b.provider)))
                    .collect();
                (site.clone(), bound)
            })
            .collect();
        let provides = self
            .bindings(None)
            .into_iter()
            .filter(|b| b.provider == id)
            .collect();
        let (waiting, parked) = self.event_queue(id).unwrap_or_default();
        let (state, failure) = match &p.status {
            Status::Ready { .. } => ("ready", None),
            Status::Failed(r) => ("failed", Some(r.clone())),
        };
        let m = &p.manifest;
        let outbound_config = m
            .outbound_config
            .iter()
            .map(|key| ConfiguredOrigin {
                key: key.clone(),
                sites: sites
                    .iter()
                    .map(|(site, st)| {
                        let config = super::dispatch::config_at(m, st);
                        let at = m
                            .outbound_at(&config)
                            .into_iter()
                            .find(|(k, _)| *k == Some(key.as_str()))
                            .map(|(_, o)| o);
                        let at = match at {
                            Some(Ok(o)) => OriginAt {
                                origin: Some(o),
                                problem: None,
                            },
                            Some(Err(e)) => OriginAt {
                                origin: None,
                                problem: Some(e),
                            },
                            None => OriginAt {
                                origin: None,
                                problem: None,
                            },
                        };
                        (site.clone(), at)
                    })
                    .collect(),
            })
            .collect();
        Some(PluginView {
            id: m.id.clone(),
            name: m.name.clone(),
            version: p.record.version.clone(),
            publisher: m.publisher.clone(),
            description: m.description.clone(),
            state: state.into(),
            failure,
            development: p.record.dev,
            sha256: p.record.sha256.clone(),
            installed_at: p.record.installed_at.clone(),
            installed_by: p.record.installed_by.clone(),
            origin: p.record.origin.clone(),
            previous_version: p.record.previous.as_ref().map(|r| r.version.clone()),
            staged: p.record.staged.as_ref().map(|r| StagedView {
                version: r.version.clone(),
                adds: Manifest::parse(&r.manifest)
                    .map(|n| Self::added_access(m, &n))
                    .unwrap_or_default(),
            }),
            capabilities: m.capabilities.iter().map(|c| c.to_string()).collect(),
            outbound: m.outbound.clone(),
            outbound_config,
            exports: m.exports.iter().map(|(k, v)| format!("{k}@{v}")).collect(),
            imports: m.imports.iter().map(|(k, v)| format!("{k} {v}")).collect(),
            bindings,
            provides,
            panels: m.panels.clone(),
            sites,
            storage: self.storage_use(id).ok(),
            events: EventsView {
                stats: self.event_stats(id),
                waiting,
                parked,
            },
        })
    }

    /// The chart panels of the plugins enabled and ready at `site` that `roles` may see (all
    /// of them when `roles` is `None`), in the site's order: the positions an administrator
    /// set first (lower first), then the others in plugin and manifest order.
    pub fn panels(&self, site: &str, roles: Option<&[Role]>) -> Vec<PanelRef> {
        self.slot(site, roles, Slot::Chart)
    }

    /// The banner flags (panels in the `banner` slot) of the plugins enabled and ready at
    /// `site` that `roles` may see, in the site's order.
    pub fn banner_flags(&self, site: &str, roles: &[Role]) -> Vec<PanelRef> {
        self.slot(site, Some(roles), Slot::Banner)
    }

    /// The sections a patient may put in a share of their record (panels in the `share`
    /// slot) of the plugins enabled and ready at `site` that `roles` may see, in order.
    pub fn share_sections(&self, site: &str, roles: &[Role]) -> Vec<PanelRef> {
        self.slot(site, Some(roles), Slot::Share)
    }

    fn slot(&self, site: &str, roles: Option<&[Role]>, slot: Slot) -> Vec<PanelRef> {
        let installed = self.inner.installed.read().expect("lock");
        let state = self.inner.state.read().expect("lock");
        let mut out = Vec::new();
        for (id, p) in installed.iter() {
            let Some(st) = state
                .get(&(id.clone(), site.to_string()))
                .filter(|s| s.enabled)
            else {
                continue;
            };
            if !matches!(p.status, Status::Ready { .. }) {
                continue;
            }
            for panel in p.manifest.panels.iter().filter(|x| x.slot == slot) {
                let visible = match (&panel.roles, roles) {
                    (_, None) | (None, _) => true,
                    (Some(rs), Some(roles)) => rs.iter().any(|r| roles.contains(r)),
                };
                if visible {
                    out.push(PanelRef {
                        plugin: id.clone(),
                        panel: panel.id.clone(),
                        title: panel.title.clone(),
                        position: st.panels.get(&panel.id).copied(),
                    });
                }
            }
        }
        // Stable: plugins and their panels keep their order among equals.
        out.sort_by_key(|p| p.position.unwrap_or(u32::MAX));
        out
    }

    pub fn list(&self) -> Vec<PluginView> {
        let ids: Vec<String> = self
            .inner
            .installed
            .read()
            .expect("lock")
            .keys()
            .cloned()
            .collect();
        ids.iter().filter_map(|id| self.view(id)).collect()
    }

    /// The navigation entries of the plugins enabled and ready at `site` that `roles` may see.
    pub fn nav(&self, site: &str, roles: &[Role]) -> Vec<Nav> {
        let installed = self.inner.installed.read().expect("lock");
        let mut out = Vec::new();
        for (id, p) in installed.iter() {
            if !matches!(p.status, Status::Ready { .. }) || !self.is_enabled(id, site) {
                continue;
            }
            for n in &p.manifest.nav {
                let visible = match &n.roles {
                    None => true,
                    Some(rs) => rs.iter().any(|r| roles.contains(r)),
                };
                if visible {
                    out.push(Nav {
                        plugin: id.clone(),
                        title: n.title.clone(),
                        href: format!("/plugins/{id}{}", n.path),
                    });
                }
            }
        }
        out
    }
}
