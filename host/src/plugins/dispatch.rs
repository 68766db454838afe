//! Calls into plugins: an HTTP request routed to a plugin, a call from one plugin into an
//! interface another exports, a chart panel, and (with [`events`](super::events)) the
//! delivery of events. Each runs in a fresh sandbox ([`instance::run`]) for a [`Call`]: the
//! person behind it (or unattended work), the plugin's grants and settings at the site, and
//! the chain of plugins it came through.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::Val;

use super::instance::{self, Done, RunError, Work};
use super::latest;
use super::manifest::ConfigValue;
use super::sandbox::{self, Call, Person};
use super::{Loaded, Plugins, Status};
use crate::access::{Acting, Check, Ctx, Need, Principal, Refusal};

/// What `context.current()` says an inbound request is.
pub const INBOUND: &str = "inbound request";

/// How deep plugin-to-plugin calls may nest.
const MAX_DEPTH: u8 = 4;

/// An HTTP request for a plugin, before the host adds the caller.
pub struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: latest::Headers,
    pub body: Vec<u8>,
}

/// Why a chart panel could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum PanelError {
    #[error("no plugin '{0}' is enabled at this site")]
    NotEnabled(String),
    #[error("plugin '{plugin}' has no panel '{panel}'")]
    NoSuchPanel { plugin: String, panel: String },
    #[error("{0}")]
    Denied(String),
    #[error("the panel failed: {0}")]
    Plugin(String),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("it did not answer within {0} ms")]
    Late(u128),
}

impl PanelError {
    /// What the page says instead of the panel: why, without the plugin's internals (a trap's
    /// backtrace stays in the server's log, which names the plugin, never the patient).
    pub fn for_people(&self) -> String {
        match self {
            PanelError::Run(RunError::Trap(_)) | PanelError::Run(RunError::Failed(_)) => {
                "the plugin stopped with an error".into()
            }
            PanelError::Run(RunError::Timeout(_)) => "it did not answer in time".into(),
            PanelError::Late(ms) => format!("it did not answer within {ms} ms"),
            e => e.to_string(),
        }
    }
}

/// A panel (or banner flag) to render, and what came of it.
pub struct Rendered {
    pub panel: super::views::PanelRef,
    pub html: Result<String, PanelError>,
}

impl Plugins {
    /// The call context for plugin `p` at `site` on behalf of `ctx`.
    pub(super) fn call_for(
        &self,
        p: Arc<Loaded>,
        site: &str,
        mut ctx: Ctx,
        person: Option<Arc<Person>>,
        depth: u8,
        event_depth: u8,
    ) -> Arc<Call> {
        let state = self.site_state(&p.manifest.id, site);
        let config = config_at(&p.manifest, &state);
        ctx.via = Some(match ctx.via.take() {
            Some(chain) => format!("{chain}>{}", p.manifest.id),
            None => p.manifest.id.clone(),
        });
        ctx.site = Some(site.to_string());
        // Unattended work has only the grants given for unattended use.
        let granted = match ctx.principal {
            Principal::Unattended => state.unattended,
            Principal::Person | Principal::Operator => state.grants,
        };
        ctx.plugin = Some(Arc::new(Acting {
            id: p.manifest.id.clone(),
            site: site.to_string(),
            declared: p.manifest.capabilities.clone(),
            granted,
        }));
        let site_name = person
            .as_ref()
            .map(|p| p.site_name.clone())
            .unwrap_or_else(|| self.site_name(site));
        Arc::new(Call {
            plugin: p,
            site: site.into(),
            site_name,
            ctx,
            person,
            config,
            depth,
            event_depth,
            as_of: None,
            callers_unsynced: false,
        })
    }

    /// The display name of `site` (its id when it has none).
    pub(super) fn site_name(&self, site: &str) -> String {
        self.services()
            .sites
            .get(site)
            .ok()
            .flatten()
            .map(|s| s.name)
            .unwrap_or_else(|| site.to_string())
    }

    /// Route an HTTP request to plugin `p` for `person` (whose context is `ctx`) at `site`.
    /// The plugin receives `person` with its own CSRF token.
    pub async fn handle(
        &self,
        p: Arc<Loaded>,
        site: &str,
        ctx: Ctx,
        person: Person,
        req: Incoming,
    ) -> Result<latest::Response, RunError> {
        let Status::Ready { pre, .. } = &p.status else {
            return Err(RunError::Failed("the plugin failed to load".into()));
        };
        let request = latest::Request {
            method: req.method,
            path: req.path,
            query: req.query,
            headers: req.headers,
            body: req.body,
            caller: person.caller_for(&p.manifest.id),
        };
        let call = self.call_for(p.clone(), site, ctx, Some(Arc::new(person)), 0, 0);
        match instance::run(self, call, pre, Work::Handle(request)).await? {
            Done::Response(r) => Ok(r),
            _ => Err(RunError::Failed("unexpected answer".into())),
        }
    }

    /// Route a request from a server elsewhere (`/inbound/{site}/{plugin}/…`) to plugin `p`
    /// at `site`, as unattended work (`what`: `inbound request`): nobody is signed in, so
    /// only the capabilities granted for unattended use apply. The caller is checked (the
    /// plugin is enabled at the site and `inbound` is granted there) by the HTTP layer.
    pub async fn handle_inbound(
        &self,
        p: Arc<Loaded>,
        site: &str,
        req: Incoming,
    ) -> Result<latest::Response, RunError> {
        let Status::Ready { pre, .. } = &p.status else {
            return Err(RunError::Failed("the plugin failed to load".into()));
        };
        let call = self.call_for(p.clone(), site, Ctx::unattended(site, INBOUND), None, 0, 0);
        // Nobody signed in: the caller record names only the site.
        let request = latest::Request {
            method: req.method,
            path: req.path,
            query: req.query,
            headers: req.headers,
            body: req.body,
            caller: latest::Caller {
                user: String::new(),
                display_name: String::new(),
                roles: vec![],
                permissions: vec![],
                site: call.site.clone(),
                site_name: call.site_name.clone(),
                csrf_token: String::new(),
            },
        };
        match instance::run(self, call, pre, Work::Handle(request)).await? {
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
        callers_unsynced: bool,
    ) -> Result<Val, latest::Error> {
        if call.depth >= MAX_DEPTH {
            return Err(latest::Error::Internal(format!(
                "plugin-to-plugin calls are nested more than {MAX_DEPTH} deep"
            )));
        }
        let (p, export) = self.provider(&call.site, base, version).await?;
        let Status::Ready { pre, .. } = &p.status else {
            unreachable!("a provider is ready");
        };
        let mut sub = self.call_for(
            p.clone(),
            &call.site,
            call.ctx.clone(),
            call.person.clone(),
            call.depth + 1,
            call.event_depth,
        );
        Arc::get_mut(&mut sub)
            .expect("a new call is not shared yet")
            .callers_unsynced = callers_unsynced;
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

    /// The chart panel `panel` of plugin `plugin` for `patient`, rendered for `person` (whose
    /// context is `ctx`) at `site`: an HTML fragment. The person must be allowed to read the
    /// patient's chart (a refusal is audited); the panel's own host calls are checked and
    /// audited like any other.
    pub async fn render_panel(
        &self,
        plugin: &str,
        panel: &str,
        patient: &str,
        site: &str,
        ctx: Ctx,
        person: Person,
    ) -> Result<String, PanelError> {
        let p = self
            .enabled(plugin, site)
            .map_err(|_| PanelError::NotEnabled(plugin.into()))?;
        let Some(spec) = p.manifest.panels.iter().find(|x| x.id == panel) else {
            return Err(PanelError::NoSuchPanel {
                plugin: plugin.into(),
                panel: panel.into(),
            });
        };
        if let Some(roles) = &spec.roles
            && !roles.iter().any(|r| ctx.roles.contains(r))
        {
            return Err(PanelError::Denied(format!(
                "the panel '{panel}' of '{plugin}' is not shown to your roles"
            )));
        }
        let check = Check::new("patient.read", Need::Chart(patient))
            .patient(patient)
            .resource(format!("Patient/{patient}"));
        match self.services().gate.check(&ctx, check).await {
            Ok(()) => {}
            Err(Refusal::Denied(m)) => return Err(PanelError::Denied(m)),
            Err(Refusal::Audit(e)) => return Err(PanelError::Plugin(e.to_string())),
        }
        let Status::Ready { pre, .. } = &p.status else {
            return Err(PanelError::NotEnabled(plugin.into()));
        };
        let call = self.call_for(p.clone(), site, ctx, Some(Arc::new(person)), 0, 0);
        let work = Work::Panel {
            panel: panel.into(),
            patient: patient.into(),
        };
        match instance::run(self, call, pre, work).await? {
            Done::Panel(Ok(html)) => Ok(html),
            Done::Panel(Err(latest::Error::Denied(m))) => Err(PanelError::Denied(m)),
            Done::Panel(Err(e)) => Err(PanelError::Plugin(e.to_string())),
            _ => Err(PanelError::Plugin("unexpected answer".into())),
        }
    }

    /// Render `panels` for `patient`, concurrently, each in its own sandbox and with its own
    /// deadline (`[plugins] panel_timeout_ms`): a failing or late panel is an error in its
    /// place, and never holds up the others. In the order given.
    pub async fn render_panels(
        &self,
        panels: Vec<super::views::PanelRef>,
        patient: &str,
        site: &str,
        ctx: &Ctx,
        person: &Person,
    ) -> Vec<Rendered> {
        let deadline = self.runtime_limits().panel_timeout();
        let tasks: Vec<_> = panels
            .into_iter()
            .map(|panel| {
                let (me, patient, site) = (self.clone(), patient.to_string(), site.to_string());
                let (ctx, person) = (ctx.clone(), person.clone());
                let placed = panel.clone();
                let task = tokio::spawn(async move {
                    let work = me.render_panel(&panel.plugin, &panel.panel, &patient, &site, ctx, person);
                    let html = match tokio::time::timeout(deadline, work).await {
                        Ok(r) => r,
                        Err(_) => Err(PanelError::Late(deadline.as_millis())),
                    };
                    if let Err(e) = &html {
                        tracing::warn!(plugin = %panel.plugin, panel = %panel.panel, error = %e, "a chart panel is unavailable");
                    }
                    Rendered { panel, html }
                });
                (placed, task)
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for (panel, task) in tasks {
            match task.await {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::error!(plugin = %panel.plugin, error = %e, "a chart panel's task failed");
                    out.push(Rendered {
                        panel,
                        html: Err(PanelError::Plugin("the host could not run it".into())),
                    });
                }
            }
        }
        out
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
        let call = self.call_for(p.clone(), site, Ctx::system("bench"), None, 0, 0);
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

/// A plugin's configuration at a site: the administrator's values for the keys its manifest
/// declares, the defaults for the others.
pub(super) fn config_at(
    m: &super::manifest::Manifest,
    state: &super::SiteState,
) -> BTreeMap<String, ConfigValue> {
    let mut config: BTreeMap<String, ConfigValue> = m
        .config
        .iter()
        .filter_map(|(k, spec)| spec.default.clone().map(|d| (k.clone(), d)))
        .collect();
    for (k, v) in &state.config {
        if m.config.contains_key(k) {
            config.insert(k.clone(), v.clone());
        }
    }
    config
}

/// Whether an export at `have` satisfies an import of `want` (semver: same major, and for
/// 0.x the same minor, and not older).
pub(super) fn compatible(have: &semver::Version, want: &semver::Version) -> bool {
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
