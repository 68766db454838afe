//! Each plugin's state at each site: enabled or not, the capabilities the administrator
//! granted there (for people's requests, and separately for unattended work), and its
//! settings. Changes are audited and take effect for the next request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::manifest::{self, Capability, ConfigValue};
use super::{Loaded, PluginError, Plugins, Status};
use crate::access::Ctx;
use crate::storage::{Batch, Storage, StorageError, Tree, key};

/// A plugin's state at one site.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct SiteState {
    pub enabled: bool,
    /// What the plugin may do when serving a person (always also within that person's
    /// permissions).
    #[schema(value_type = Vec<String>)]
    pub grants: BTreeSet<Capability>,
    /// What the plugin may do with nobody behind it (events the host publishes, scheduled
    /// jobs): a separate decision, never implied by `grants`.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub unattended: BTreeSet<Capability>,
    /// Values the administrator set; the manifest's defaults fill the rest.
    #[schema(value_type = Object)]
    pub config: BTreeMap<String, ConfigValue>,
    /// Where the administrator placed this plugin's chart panels at this site: panel id →
    /// position (lower first). Panels without one follow, in plugin order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub panels: BTreeMap<String, u32>,
}

pub(super) fn site_key(id: &str, site: &str) -> Vec<u8> {
    key(&[id.as_bytes(), site.as_bytes()])
}

/// Every plugin's state at every site, as stored.
pub(super) fn load_states(
    storage: &Storage,
) -> Result<BTreeMap<(String, String), SiteState>, StorageError> {
    let mut state = BTreeMap::new();
    for (k, v) in storage.scan(Tree::PluginSites, b"", None, usize::MAX)? {
        let mut parts = k.splitn(2, |b| *b == 0);
        let (Some(id), Some(site)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let Ok(s) = serde_json::from_slice::<SiteState>(&v) {
            state.insert(
                (
                    String::from_utf8_lossy(id).into_owned(),
                    String::from_utf8_lossy(site).into_owned(),
                ),
                s,
            );
        }
    }
    Ok(state)
}

/// Why a plugin cannot serve at a site.
pub enum Unavailable {
    NotEnabled,
    Failed(String),
}

impl Plugins {
    pub fn site_state(&self, id: &str, site: &str) -> SiteState {
        self.inner
            .state
            .read()
            .expect("lock")
            .get(&(id.to_string(), site.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Whether plugin `id` is enabled at `site` (without copying its state).
    pub(super) fn is_enabled(&self, id: &str, site: &str) -> bool {
        self.inner
            .state
            .read()
            .expect("lock")
            .get(&(id.to_string(), site.to_string()))
            .is_some_and(|s| s.enabled)
    }

    /// The plugin `id` if it is installed, ready and enabled at `site`.
    pub fn enabled(&self, id: &str, site: &str) -> Result<Arc<Loaded>, Unavailable> {
        let Some(p) = self.get(id) else {
            return Err(Unavailable::NotEnabled);
        };
        if !self.is_enabled(id, site) {
            return Err(Unavailable::NotEnabled);
        }
        if let Status::Failed(reason) = &p.status {
            return Err(Unavailable::Failed(reason.clone()));
        }
        Ok(p)
    }

    /// What every change of a plugin's state at a site checks first: that the caller may
    /// manage plugins (a refusal is audited), that the plugin is installed and the site exists.
    async fn site_change(
        &self,
        ctx: &Ctx,
        action: &str,
        id: &str,
        site: &str,
    ) -> Result<Arc<Loaded>, PluginError> {
        self.authorize(ctx, action, id).await?;
        let p = self.require(id)?;
        if self.inner.services.sites.get(site)?.is_none() {
            return Err(PluginError::Invalid(format!("there is no site '{site}'")));
        }
        Ok(p)
    }

    async fn update_site(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
        action: &str,
        detail: String,
        change: impl FnOnce(&mut SiteState),
    ) -> Result<SiteState, PluginError> {
        let mut s = self.site_state(id, site);
        change(&mut s);
        let mut b = Batch::new();
        b.put(
            Tree::PluginSites,
            site_key(id, site),
            serde_json::to_vec(&s).expect("serialises"),
        );
        let mut ev = ctx.event(action, "success");
        ev.site = Some(site.into());
        ev.resource = Some(format!("Plugin/{id}"));
        ev.detail = Some(detail);
        self.inner.services.audit.commit_with(&b, ev).await?;
        self.inner
            .state
            .write()
            .expect("lock")
            .insert((id.into(), site.into()), s.clone());
        Ok(s)
    }

    /// Enable or disable a plugin at a site. Takes effect for the next request.
    pub async fn set_enabled(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
        enabled: bool,
    ) -> Result<SiteState, PluginError> {
        let action = if enabled {
            "plugin.enable"
        } else {
            "plugin.disable"
        };
        let p = self.site_change(ctx, action, id, site).await?;
        if enabled && let Status::Failed(reason) = &p.status {
            return Err(PluginError::Conflict(format!(
                "'{id}' failed to load and cannot be enabled: {reason}"
            )));
        }
        let state = self
            .update_site(ctx, id, site, action, String::new(), |s| {
                s.enabled = enabled
            })
            .await?;
        if enabled {
            self.bind_new_provider(ctx, id, site).await?;
        }
        Ok(state)
    }

    /// Set exactly the capabilities granted to a plugin at a site, for people's requests
    /// (`unattended: false`) or for unattended work. Each must be one its manifest asks for.
    pub async fn set_grants(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
        grants: BTreeSet<Capability>,
    ) -> Result<SiteState, PluginError> {
        self.grant(ctx, id, site, grants, false).await
    }

    /// [`Plugins::set_grants`] for unattended work.
    pub async fn set_unattended_grants(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
        grants: BTreeSet<Capability>,
    ) -> Result<SiteState, PluginError> {
        self.grant(ctx, id, site, grants, true).await
    }

    async fn grant(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
        grants: BTreeSet<Capability>,
        unattended: bool,
    ) -> Result<SiteState, PluginError> {
        let action = if unattended {
            "plugin.grant-unattended"
        } else {
            "plugin.grant"
        };
        let p = self.site_change(ctx, action, id, site).await?;
        if let Some(extra) = grants.iter().find(|g| !p.manifest.capabilities.contains(g)) {
            let asked: Vec<&str> = p.manifest.capabilities.iter().map(|c| c.as_str()).collect();
            return Err(PluginError::Invalid(format!(
                "'{id}' does not ask for {extra}; it asks for: {}",
                if asked.is_empty() {
                    "nothing".into()
                } else {
                    asked.join(", ")
                }
            )));
        }
        let detail = grants
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let detail = if unattended {
            format!("granted for unattended use: {detail}")
        } else {
            format!("granted: {detail}")
        };
        self.update_site(ctx, id, site, action, detail, |s| {
            if unattended {
                s.unattended = grants
            } else {
                s.grants = grants
            }
        })
        .await
    }

    /// Set one configuration value of a plugin at a site (`None` restores the default).
    pub async fn set_config(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
        key_name: &str,
        value: Option<ConfigValue>,
    ) -> Result<SiteState, PluginError> {
        let p = self.site_change(ctx, "plugin.config", id, site).await?;
        let spec = setting(&p, key_name)?;
        let value = match value {
            Some(v) => {
                let json = serde_json::to_value(&v).unwrap_or_default();
                Some(
                    ConfigValue::typed(spec.ty, &json)
                        .map_err(|m| PluginError::Invalid(format!("setting '{key_name}': {m}")))?,
                )
            }
            None => None,
        };
        let key_name = key_name.to_string();
        self.update_site(
            ctx,
            id,
            site,
            "plugin.config",
            format!("setting {key_name}"),
            move |s| match value {
                Some(v) => {
                    s.config.insert(key_name, v);
                }
                None => {
                    s.config.remove(&key_name);
                }
            },
        )
        .await
    }

    /// Place chart panels of plugin `id` at `site`: panel id → position (lower first), `None`
    /// back to the default place. Each must be a panel its manifest declares.
    pub async fn set_panel_positions(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
        positions: BTreeMap<String, Option<u32>>,
    ) -> Result<SiteState, PluginError> {
        let p = self.site_change(ctx, "plugin.panels", id, site).await?;
        if let Some(unknown) = positions
            .keys()
            .find(|k| !p.manifest.panels.iter().any(|x| &x.id == *k))
        {
            let declared: Vec<&str> = p.manifest.panels.iter().map(|x| x.id.as_str()).collect();
            return Err(PluginError::Invalid(format!(
                "'{id}' has no chart panel '{unknown}'; its panels are: {}",
                if declared.is_empty() {
                    "none".into()
                } else {
                    declared.join(", ")
                }
            )));
        }
        let detail = positions
            .iter()
            .map(|(k, v)| match v {
                Some(n) => format!("{k}={n}"),
                None => format!("{k}=default"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        self.update_site(ctx, id, site, "plugin.panels", detail, move |s| {
            for (k, v) in positions {
                match v {
                    Some(n) => {
                        s.panels.insert(k, n);
                    }
                    None => {
                        s.panels.remove(&k);
                    }
                }
            }
        })
        .await
    }

    /// The type of setting `key` of plugin `id`, or an error naming the settings it has.
    pub fn setting_type(&self, id: &str, key: &str) -> Result<manifest::ConfigType, PluginError> {
        let p = self.require(id)?;
        Ok(setting(&p, key)?.ty)
    }
}

/// The declaration of setting `key` in `p`'s manifest, or an error naming the settings there are.
fn setting<'a>(p: &'a Loaded, key: &str) -> Result<&'a manifest::ConfigSpec, PluginError> {
    p.manifest.config.get(key).ok_or_else(|| {
        let keys: Vec<&str> = p.manifest.config.keys().map(String::as_str).collect();
        PluginError::Invalid(format!(
            "'{}' has no setting '{key}'; its settings are: {}",
            p.manifest.id,
            if keys.is_empty() {
                "none".into()
            } else {
                keys.join(", ")
            }
        ))
    })
}
