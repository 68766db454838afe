//! Calls into plugins: an HTTP request routed to a plugin, a call from one plugin into an
//! interface another exports, and the delivery of events. Each runs in a fresh sandbox
//! ([`instance::run`]) for a [`Call`]: the person behind it, the plugin's grants and settings
//! at the site, and the chain of plugins it came through.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::Val;

use super::instance::{self, Done, RunError, Work};
use super::latest;
use super::manifest::ConfigValue;
use super::sandbox::{self, Call};
use super::{Loaded, Plugins, Status};
use crate::access::{Acting, Ctx};

/// How deep plugin-to-plugin calls may nest.
const MAX_DEPTH: u8 = 4;

impl Plugins {
    /// The call context for plugin `p` at `site` on behalf of `ctx`.
    fn call_for(&self, p: Arc<Loaded>, site: &str, mut ctx: Ctx, depth: u8) -> Arc<Call> {
        let state = self.site_state(&p.manifest.id, site);
        let mut config: BTreeMap<String, ConfigValue> = p
            .manifest
            .config
            .iter()
            .filter_map(|(k, spec)| spec.default.clone().map(|d| (k.clone(), d)))
            .collect();
        for (k, v) in state.config {
            if p.manifest.config.contains_key(&k) {
                config.insert(k, v);
            }
        }
        ctx.via = Some(match ctx.via.take() {
            Some(chain) => format!("{chain}>{}", p.manifest.id),
            None => p.manifest.id.clone(),
        });
        ctx.site = Some(site.to_string());
        ctx.plugin = Some(Arc::new(Acting {
            id: p.manifest.id.clone(),
            site: site.to_string(),
            declared: p.manifest.capabilities.clone(),
            granted: state.grants,
        }));
        Arc::new(Call {
            plugin: p,
            site: site.into(),
            ctx,
            config,
            depth,
        })
    }

    /// Route an HTTP request to plugin `p` for `ctx` at `site`.
    pub async fn handle(
        &self,
        p: Arc<Loaded>,
        site: &str,
        ctx: Ctx,
        req: latest::Request,
    ) -> Result<latest::Response, RunError> {
        let Status::Ready { pre, .. } = &p.status else {
            return Err(RunError::Failed("the plugin failed to load".into()));
        };
        let call = self.call_for(p.clone(), site, ctx, 0);
        match instance::run(self, call, pre, Work::Handle(req)).await? {
            Done::Response(r) => Ok(r),
            _ => Err(RunError::Failed("unexpected answer".into())),
        }
    }

    /// A call from one plugin into the interface `base` (at a version compatible with
    /// `version`) that another plugin enabled at the same site exports. The callee runs with
    /// the same person, its own grants, and `via` naming both plugins.
    pub async fn call_provider(
        &self,
        call: &Call,
        base: &str,
        version: &semver::Version,
        func: &str,
        params: Vec<Val>,
    ) -> Result<Val, latest::Error> {
        if call.depth >= MAX_DEPTH {
            return Err(latest::Error::Internal(format!(
                "plugin-to-plugin calls are nested more than {MAX_DEPTH} deep"
            )));
        }
        let provider = {
            let installed = self.inner.installed.read().expect("lock");
            installed.values().find_map(|p| {
                let Status::Ready { shape, .. } = &p.status else {
                    return None;
                };
                if !self.is_enabled(&p.manifest.id, &call.site) {
                    return None;
                }
                shape
                    .exports
                    .iter()
                    .find(|e| e.base == base && compatible(&e.version, version))
                    .map(|e| (p.clone(), e.name.clone()))
            })
        };
        let Some((p, export)) = provider else {
            return Err(latest::Error::Unavailable(format!(
                "no plugin providing {base}@{version} is enabled at site '{}'",
                call.site
            )));
        };
        let Status::Ready { pre, .. } = &p.status else {
            unreachable!("filtered above");
        };
        let sub = self.call_for(p.clone(), &call.site, call.ctx.clone(), call.depth + 1);
        let work = Work::Export {
            export,
            func: func.into(),
            params,
        };
        match Box::pin(instance::run(self, sub, pre, work)).await {
            Ok(Done::Export(v)) => Ok(v),
            Ok(_) => Err(latest::Error::Internal("unexpected answer".into())),
            Err(e) => {
                tracing::warn!(plugin = %p.manifest.id, error = %e, "plugin-to-plugin call failed");
                Err(latest::Error::Internal(format!(
                    "plugin '{}' failed: {e}",
                    p.manifest.id
                )))
            }
        }
    }

    /// Deliver an event to the plugins enabled at `site` that subscribe to `topic`, after the
    /// publishing call returns. Each runs as itself: its own grants, a `system` actor.
    pub fn publish(&self, site: &str, source: &str, topic: String, payload: String) {
        let subscribers: Vec<Arc<Loaded>> = self
            .inner
            .installed
            .read()
            .expect("lock")
            .values()
            .filter(|p| {
                matches!(p.status, Status::Ready { .. })
                    && p.manifest.subscribe.contains(&topic)
                    && self.is_enabled(&p.manifest.id, site)
            })
            .cloned()
            .collect();
        for p in subscribers {
            let ctx = Ctx {
                user: "system".into(),
                roles: vec![],
                site: Some(site.into()),
                patient: None,
                source: Some(format!("event {topic}")),
                via: None,
                plugin: None,
            };
            let call = self.call_for(p.clone(), site, ctx, 0);
            let ev = latest::Event {
                topic: topic.clone(),
                payload: payload.clone(),
                site: site.into(),
                source: source.into(),
            };
            let this = self.clone();
            tokio::spawn(async move {
                let Status::Ready { pre, .. } = &p.status else {
                    return;
                };
                match instance::run(&this, call, pre, Work::Event(ev)).await {
                    Ok(Done::Event(Ok(()))) => {}
                    Ok(Done::Event(Err(e))) => {
                        tracing::warn!(plugin = %p.manifest.id, error = %e, "event handler refused an event")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(plugin = %p.manifest.id, error = %e, "event handler failed")
                    }
                }
            });
        }
    }

    /// For benchmarks and diagnostics: the mean time to create a sandbox (a fresh `Store` with
    /// its limits) and instantiate plugin `id` in it, over `n` rounds. Nothing is called.
    pub async fn time_instantiation(
        &self,
        id: &str,
        site: &str,
        n: u32,
    ) -> Result<std::time::Duration, String> {
        let p = self.get(id).ok_or("no such plugin")?;
        let Status::Ready { pre, .. } = &p.status else {
            return Err("the plugin failed to load".into());
        };
        let runtime = self.runtime()?;
        let call = self.call_for(p.clone(), site, Ctx::system("bench"), 0);
        let started = std::time::Instant::now();
        for _ in 0..n {
            let mut store = wasmtime::Store::new(
                &runtime.engine,
                sandbox::Sandbox::new(self.clone(), call.clone()),
            );
            store.limiter(|s| &mut s.limits);
            store.set_epoch_deadline(1);
            store.epoch_deadline_async_yield_and_update(1);
            pre.instantiate(&mut store)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(started.elapsed() / n.max(1))
    }
}

/// Whether an export at `have` satisfies an import of `want` (semver: same major, and for
/// 0.x the same minor, and not older).
fn compatible(have: &semver::Version, want: &semver::Version) -> bool {
    if have < want {
        return false;
    }
    if want.major == 0 {
        have.major == 0 && have.minor == want.minor
    } else {
        have.major == want.major
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_versions_match_by_semver() {
        let v = |s| semver::Version::parse(s).unwrap();
        assert!(compatible(&v("0.1.3"), &v("0.1.0")));
        assert!(!compatible(&v("0.2.0"), &v("0.1.0")));
        assert!(!compatible(&v("0.1.0"), &v("0.1.2")));
        assert!(compatible(&v("1.4.0"), &v("1.2.0")));
        assert!(!compatible(&v("2.0.0"), &v("1.2.0")));
    }
}
