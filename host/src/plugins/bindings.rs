//! Which plugin provides each plugin interface at each site.
//!
//! An import is *bound* per site and interface (`osler:drugref/lookup` at `main` → `drugref`).
//! The binding is made automatically when the first plugin providing an interface is enabled
//! at a site (or, for a data directory from before bindings, at the first call when exactly
//! one enabled plugin provides it); once made, it changes only when an administrator says
//! so. Enabling a second provider never changes what an importer calls: with several
//! providers and no binding, the interface stays unbound until an administrator chooses.
//! An unbound interface, or one bound to a plugin that is not enabled, answers `unavailable`.
//! Every binding change is audited.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dispatch::compatible;
use super::{Loaded, PluginError, Plugins, Status, latest, now};
use crate::access::Ctx;
use crate::storage::{Batch, Storage, StorageError, Tree, key};

/// The provider of one interface at one site.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Binding {
    pub site: String,
    /// The interface, without a version: `osler:drugref/lookup`.
    pub interface: String,
    /// The plugin that provides it there.
    pub provider: String,
    /// `automatic` (the only provider when it was enabled) or the administrator who chose.
    pub by: String,
    pub at: String,
}

pub(super) type Map = BTreeMap<(String, String), Binding>;

/// Every binding, as stored.
pub(super) fn load(storage: &Storage) -> Result<Map, StorageError> {
    let mut out = Map::new();
    for (_, v) in storage.scan(Tree::Bindings, b"", None, usize::MAX)? {
        if let Ok(b) = serde_json::from_slice::<Binding>(&v) {
            out.insert((b.site.clone(), b.interface.clone()), b);
        }
    }
    Ok(out)
}

fn binding_key(site: &str, interface: &str) -> Vec<u8> {
    key(&[site.as_bytes(), interface.as_bytes()])
}

impl Plugins {
    /// The bindings at `site` (every site when `None`).
    pub fn bindings(&self, site: Option<&str>) -> Vec<Binding> {
        self.inner
            .bindings
            .read()
            .expect("lock")
            .values()
            .filter(|b| site.is_none_or(|s| s == b.site))
            .cloned()
            .collect()
    }

    /// The plugins enabled and ready at `site` that export `interface` (any version).
    pub fn providers(&self, site: &str, interface: &str) -> Vec<String> {
        self.inner
            .installed
            .read()
            .expect("lock")
            .values()
            .filter(|p| {
                matches!(p.status, Status::Ready { .. })
                    && p.manifest.exports.contains_key(interface)
                    && self.is_enabled(&p.manifest.id, site)
            })
            .map(|p| p.manifest.id.clone())
            .collect()
    }

    /// Bind `interface` at `site` to `provider` (or unbind it with `None`). An administrator's
    /// choice; audited.
    pub async fn bind(
        &self,
        ctx: &Ctx,
        site: &str,
        interface: &str,
        provider: Option<&str>,
    ) -> Result<Option<Binding>, PluginError> {
        self.authorize(ctx, "plugin.bind", provider.unwrap_or("-"))
            .await?;
        if self.services().sites.get(site)?.is_none() {
            return Err(PluginError::Invalid(format!("there is no site '{site}'")));
        }
        let binding = match provider {
            Some(id) => {
                let p = self.require(id)?;
                if !p.manifest.exports.contains_key(interface) {
                    let exports: Vec<&str> =
                        p.manifest.exports.keys().map(String::as_str).collect();
                    return Err(PluginError::Invalid(format!(
                        "'{id}' does not provide {interface}; it provides: {}",
                        if exports.is_empty() {
                            "nothing".into()
                        } else {
                            exports.join(", ")
                        }
                    )));
                }
                Some(Binding {
                    site: site.into(),
                    interface: interface.into(),
                    provider: id.into(),
                    by: ctx.user.clone(),
                    at: now(),
                })
            }
            None => None,
        };
        let detail = match &binding {
            Some(b) => format!("{interface} at {site} → {}", b.provider),
            None => format!("{interface} at {site} unbound"),
        };
        self.store_binding(ctx, site, interface, binding.clone(), detail)
            .await?;
        Ok(binding)
    }

    async fn store_binding(
        &self,
        ctx: &Ctx,
        site: &str,
        interface: &str,
        binding: Option<Binding>,
        detail: String,
    ) -> Result<(), PluginError> {
        let mut b = Batch::new();
        let k = binding_key(site, interface);
        match &binding {
            Some(v) => b.put(
                Tree::Bindings,
                k,
                serde_json::to_vec(v).expect("serialises"),
            ),
            None => b.delete(Tree::Bindings, k),
        }
        let mut ev = ctx.event("plugin.bind", "success");
        ev.site = Some(site.into());
        ev.resource = Some(format!("Interface/{interface}"));
        ev.detail = Some(detail);
        self.services().audit.commit_with(&b, ev).await?;
        let mut map = self.inner.bindings.write().expect("lock");
        match binding {
            Some(v) => map.insert((site.into(), interface.into()), v),
            None => map.remove(&(site.to_string(), interface.to_string())),
        };
        Ok(())
    }

    /// After `id` was enabled at `site`: bind each interface it provides that has no binding
    /// there and no other enabled provider. Never changes an existing binding.
    pub(super) async fn bind_new_provider(
        &self,
        ctx: &Ctx,
        id: &str,
        site: &str,
    ) -> Result<(), PluginError> {
        let Some(p) = self.get(id) else {
            return Ok(());
        };
        for interface in p.manifest.exports.keys() {
            self.bind_if_alone(ctx, site, interface).await?;
        }
        Ok(())
    }

    /// Bind `interface` at `site` automatically when it is unbound and exactly one enabled
    /// plugin provides it. Returns the binding there is afterwards.
    async fn bind_if_alone(
        &self,
        ctx: &Ctx,
        site: &str,
        interface: &str,
    ) -> Result<Option<Binding>, PluginError> {
        if let Some(b) = self.binding(site, interface) {
            return Ok(Some(b));
        }
        let providers = self.providers(site, interface);
        let [only] = providers.as_slice() else {
            return Ok(None);
        };
        let binding = Binding {
            site: site.into(),
            interface: interface.into(),
            provider: only.clone(),
            by: "automatic".into(),
            at: now(),
        };
        let detail = format!("{interface} at {site} → {only} (the only provider enabled there)");
        self.store_binding(ctx, site, interface, Some(binding.clone()), detail)
            .await?;
        Ok(Some(binding))
    }

    pub fn binding(&self, site: &str, interface: &str) -> Option<Binding> {
        self.inner
            .bindings
            .read()
            .expect("lock")
            .get(&(site.to_string(), interface.to_string()))
            .cloned()
    }

    /// The provider an import of `base` at `version` calls at `site`, and the name of its
    /// export; `unavailable` when the interface is unbound or its provider cannot serve.
    pub(super) async fn provider(
        &self,
        site: &str,
        base: &str,
        version: &semver::Version,
    ) -> Result<(Arc<Loaded>, String), latest::Error> {
        let bound = match self.binding(site, base) {
            Some(b) => Some(b),
            // A data directory from before bindings: bind now if the choice is clear.
            None => self
                .bind_if_alone(&Ctx::system("binding"), site, base)
                .await
                .map_err(|e| latest::Error::Internal(e.to_string()))?,
        };
        let Some(bound) = bound else {
            let n = self.providers(site, base).len();
            return Err(latest::Error::Unavailable(if n == 0 {
                format!("no plugin providing {base} is enabled at site '{site}'")
            } else {
                format!(
                    "{n} plugins provide {base} at site '{site}' and none is chosen; an \
                     administrator binds one (osler plugin bind {base} <plugin> --site {site})"
                )
            }));
        };
        let p = self.enabled(&bound.provider, site).map_err(|_| {
            latest::Error::Unavailable(format!(
                "{base} at site '{site}' is bound to '{}', which is not enabled there",
                bound.provider
            ))
        })?;
        let Status::Ready { shape, .. } = &p.status else {
            unreachable!("enabled plugins are ready");
        };
        let export = shape
            .exports
            .iter()
            .find(|e| e.base == base && compatible(&e.version, version))
            .map(|e| e.name.clone())
            .ok_or_else(|| {
                latest::Error::Unavailable(format!(
                    "'{}' (bound to {base} at site '{site}') does not provide version {version}",
                    bound.provider
                ))
            })?;
        Ok((p, export))
    }
}
