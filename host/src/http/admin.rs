//! `/admin/plugins`: the administrator's page for plugins — what is installed and where it came
//! from, enabling and granting per site, installing and updating from the registries,
//! approving a staged version, rolling back.
//!
//! Every action is a form post with the session's CSRF token that calls the same service
//! functions as the CLI and the admin API (so the same checks and audit entries apply), then
//! redirects back with a one-line message.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::ApiError;
use super::pages::{PartsOf, esc, form_caller};
use super::shell::Page;
use crate::access::{Check, Need, Permission, Refusal};
use crate::app::App;
use crate::plugins::manifest::Capability;
use crate::plugins::{Outcome, PluginError, PluginView, Plugins, registry};

pub fn router() -> Router<App> {
    Router::new()
        .route("/admin/plugins", get(show))
        .route("/admin/plugins/action", post(act))
}

#[derive(Deserialize, Default)]
struct ShowQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn hidden(csrf: &str, fields: &[(&str, &str)]) -> String {
    let mut s = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    );
    for (k, v) in fields {
        s.push_str(&format!(
            "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
            esc(v)
        ));
    }
    s
}

/// A one-button form.
fn button(csrf: &str, fields: &[(&str, &str)], label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/admin/plugins/action\" class=\"inline\">{}\
         <button type=\"submit\">{}</button></form>",
        hidden(csrf, fields),
        esc(label)
    )
}

/// Checkboxes for `capabilities`, those in `on` ticked, in a form posting `action`.
fn grant_form(
    csrf: &str,
    v: &PluginView,
    site: &str,
    action: &str,
    on: &std::collections::BTreeSet<Capability>,
    label: &str,
) -> String {
    let boxes: String = v
        .capabilities
        .iter()
        .map(|c| {
            let ticked = on.iter().any(|g| g.as_str() == c);
            // What a grant means, where it is not plain from its name.
            let warning = Capability::parse(c)
                .and_then(Capability::warning)
                .map(|w| format!(" <span class=\"error\">({})</span>", esc(w)))
                .unwrap_or_default();
            format!(
                "<label><input type=\"checkbox\" name=\"capability\" value=\"{c}\"{}> {c}{warning}</label>",
                if ticked { " checked" } else { "" },
                c = esc(c)
            )
        })
        .collect();
    format!(
        "<form method=\"post\" action=\"/admin/plugins/action\">{}<div class=\"checks\">{boxes}</div>\
         <button type=\"submit\" class=\"secondary\">{}</button></form>",
        hidden(csrf, &[("action", action), ("id", &v.id), ("site", site)]),
        esc(label)
    )
}

/// The provider of each of `v`'s imports at `site`, with a form to choose another.
fn binding_forms(csrf: &str, v: &PluginView, site: &str, plugins: &Plugins) -> String {
    let Some(bound) = v.bindings.get(site) else {
        return String::new();
    };
    bound
        .iter()
        .map(|(interface, provider)| {
            let options: String = std::iter::once(("".to_string(), "(none: unavailable)"))
                .chain(
                    plugins
                        .providers(site, interface)
                        .into_iter()
                        .map(|p| (p, "")),
                )
                .map(|(p, none)| {
                    let chosen = provider.as_deref() == Some(p.as_str())
                        || (p.is_empty() && provider.is_none());
                    format!(
                        "<option value=\"{}\"{}>{}</option>",
                        esc(&p),
                        if chosen { " selected" } else { "" },
                        if p.is_empty() { none.to_string() } else { esc(&p) }
                    )
                })
                .collect();
            format!(
                "<form method=\"post\" action=\"/admin/plugins/action\">{}\
                 <label>{} from <select name=\"provider\">{options}</select>\
                 </label> <button type=\"submit\">Bind</button> <span class=\"muted\">now: {}</span>\
                 </form>",
                hidden(
                    csrf,
                    &[("action", "bind"), ("site", site), ("interface", interface)]
                ),
                esc(interface),
                esc(provider.as_deref().unwrap_or("unbound"))
            )
        })
        .collect()
}

fn plugin_card(
    v: &PluginView,
    sites: &[crate::sites::Site],
    csrf: &str,
    plugins: &Plugins,
) -> String {
    let origin = match &v.origin {
        Some(o) => format!(
            "from registry <b>{}</b>, publisher <b>{}</b>",
            esc(&o.registry),
            esc(&o.publisher)
        ),
        None => "<span class=\"error\">development package (unsigned)</span>".into(),
    };
    let state = match &v.failure {
        Some(f) => format!("<p class=\"error\">Failed to load: {}</p>", esc(f)),
        None => String::new(),
    };
    let mut actions = String::new();
    if v.origin.is_some() {
        actions.push_str(&button(
            csrf,
            &[("action", "update"), ("id", &v.id)],
            "Update",
        ));
    }
    if let Some(p) = &v.previous_version {
        actions.push_str(&button(
            csrf,
            &[("action", "rollback"), ("id", &v.id)],
            &format!("Roll back to {p}"),
        ));
    }
    let staged = match &v.staged {
        Some(s) => format!(
            "<p class=\"error\">Version {} is staged: it asks for more — {}.</p>{}",
            esc(&s.version),
            esc(&s.adds.join(", ")),
            button(
                csrf,
                &[("action", "approve"), ("id", &v.id)],
                &format!("Approve {}", s.version)
            )
        ),
        None => String::new(),
    };
    let rows: String = sites
        .iter()
        .map(|site| {
            let st = v.sites.get(&site.id).cloned().unwrap_or_default();
            let toggle = if st.enabled {
                button(
                    csrf,
                    &[("action", "disable"), ("id", &v.id), ("site", &site.id)],
                    "Disable",
                )
            } else {
                button(
                    csrf,
                    &[("action", "enable"), ("id", &v.id), ("site", &site.id)],
                    "Enable",
                )
            };
            let grants = if v.capabilities.is_empty() {
                "<span class=\"muted\">asks for nothing</span>".to_string()
            } else {
                format!(
                    "{}<p class=\"muted\">For unattended work (no person behind it):</p>{}",
                    grant_form(csrf, v, &site.id, "grants", &st.grants, "Save grants"),
                    grant_form(
                        csrf,
                        v,
                        &site.id,
                        "unattended-grants",
                        &st.unattended,
                        "Save unattended grants"
                    )
                )
            };
            let reach: String = v
                .outbound_config
                .iter()
                .map(|c| {
                    format!(
                        "<p class=\"muted\">Outbound: {}: <b>{}</b> (set it under configuration)</p>",
                        esc(&c.describe()),
                        esc(&c.at(&site.id))
                    )
                })
                .collect();
            let grants = format!(
                "{grants}{reach}{}",
                binding_forms(csrf, v, &site.id, plugins)
            );
            format!(
                "<tr><th>{}</th><td>{}</td><td>{toggle}</td><td>{grants}</td></tr>",
                esc(&site.name),
                if st.enabled { "enabled" } else { "disabled" }
            )
        })
        .collect();
    let list = |items: &[String]| {
        if items.is_empty() {
            "nothing".to_string()
        } else {
            esc(&items.join(", "))
        }
    };
    let mut facts = format!(
        "<p class=\"muted\">Provides: {} · Uses: {}</p>",
        list(&v.exports),
        list(&v.imports)
    );
    if !v.outbound.is_empty() || !v.outbound_config.is_empty() {
        let reach = v.reach();
        facts.push_str(&format!(
            "<p class=\"muted\">May reach (when \"outbound\" is granted): {}</p>",
            esc(&reach.join(", "))
        ));
    }
    if let Some(st) = &v.storage {
        facts.push_str(&format!(
            "<p class=\"muted\">Storage: {:.1} of {} MiB, {} of {} keys</p>",
            st.bytes as f64 / (1 << 20) as f64,
            st.max_bytes >> 20,
            st.keys,
            st.max_keys
        ));
    }
    let e = &v.events;
    facts.push_str(&format!(
        "<p class=\"muted\">Events since start: {} published, {} delivered, {} retried, {} \
         waiting, {} parked; refused: {} too deep, {} too many in one call, {} over the \
         per-minute allowance</p>",
        e.stats.published,
        e.stats.delivered,
        e.stats.retried,
        e.waiting,
        e.parked.len(),
        e.stats.dropped_depth,
        e.stats.dropped_fan_out,
        e.stats.dropped_rate
    ));
    if !e.parked.is_empty() {
        let rows: String = e
            .parked
            .iter()
            .map(|p| {
                format!(
                    "<li>{} at {} ({} attempts): {}</li>",
                    esc(&p.topic),
                    esc(&p.site),
                    p.attempts,
                    esc(p.last_error.as_deref().unwrap_or(""))
                )
            })
            .collect();
        facts.push_str(&format!(
            "<p class=\"error\">Parked events:</p><ul>{rows}</ul>{}",
            button(
                csrf,
                &[("action", "retry-events"), ("id", &v.id)],
                "Deliver parked events again"
            )
        ));
    }
    format!(
        "<div class=\"card\"><h3>{} <span class=\"muted\">{} {}</span></h3>\
         <p>{}</p><p class=\"muted\">{origin} · {}</p>{facts}{state}{staged}<p>{actions}</p>\
         <table><tr><th>Site</th><th></th><th></th><th>Granted capabilities and bindings</th></tr>{rows}</table></div>",
        esc(&v.name),
        esc(&v.id),
        esc(&v.version),
        esc(&v.description),
        esc(&v.state)
    )
}

/// Per site, the chart panels of the plugins enabled there, in the site's order, with a form
/// to set their positions.
fn chart_layout(sites: &[crate::sites::Site], csrf: &str, plugins: &Plugins) -> String {
    let mut out = String::from(
        "<div class=\"card\" id=\"chart-layout\"><h3>Chart layout</h3><p class=\"muted\">The panels plugins \
         add to a patient's chart, per site, in the order they appear (lower positions first; \
         panels without a position follow). Each person sees the panels their roles allow.</p>",
    );
    for site in sites {
        let panels = plugins.panels(&site.id, None);
        if panels.is_empty() {
            out.push_str(&format!(
                "<h4>{}</h4><p class=\"muted\">No plugin enabled here adds a chart panel.</p>",
                esc(&site.name)
            ));
            continue;
        }
        let rows: String = panels
            .iter()
            .map(|p| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td><input type=\"number\" min=\"0\" max=\"10000\" \
                     name=\"pos:{}/{}\" value=\"{}\" aria-label=\"Position of {}\"></td></tr>",
                    esc(&p.title),
                    esc(&p.plugin),
                    esc(&p.plugin),
                    esc(&p.panel),
                    p.position.map(|n| n.to_string()).unwrap_or_default(),
                    esc(&p.title)
                )
            })
            .collect();
        out.push_str(&format!(
            "<h4>{}</h4><form method=\"post\" action=\"/admin/plugins/action\">{}\
             <table><tr><th>Panel</th><th>Plugin</th><th>Position</th></tr>{rows}</table>\
             <button type=\"submit\" class=\"secondary\">Save the order</button></form>",
            esc(&site.name),
            hidden(csrf, &[("action", "panels"), ("site", &site.id)])
        ));
    }
    out.push_str("</div>");
    out
}

async fn show(page: Page, Query(q): Query<ShowQuery>) -> Result<Response, ApiError> {
    let c = page.caller();
    let check =
        Check::new("plugin.list", Need::Permission(Permission::PluginsManage)).resource("Plugin");
    match page.app.gate.check(&c.ctx(), check).await {
        Ok(()) => {}
        Err(Refusal::Denied(m)) => return Ok(page.refuse(&m)),
        Err(e) => return Err(e.into()),
    }
    let app = &page.app;
    let csrf = c.session.csrf.clone();
    let sites = app.sites.list()?;
    let mut body = String::from("<p><a href=\"/admin\">Administration</a></p><h1>Plugins</h1>");
    if let Some(m) = &q.msg {
        body.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>",
            esc(m)
        ));
    }
    if let Some(e) = &q.error {
        body.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)));
    }
    let installed = app.plugins.list();
    if installed.is_empty() {
        body.push_str("<div class=\"card\"><p class=\"muted\">No plugins are installed.</p></div>");
    }
    for v in &installed {
        body.push_str(&plugin_card(v, &sites, &csrf, &app.plugins));
    }
    body.push_str(&chart_layout(&sites, &csrf, &app.plugins));
    // The registries: search, then install.
    let text = q.q.clone().unwrap_or_default();
    body.push_str(&format!(
        "<div class=\"card\"><h3>Install from a registry</h3>\
         <form method=\"get\" action=\"/admin/plugins\"><label for=\"q\">Search</label>\
         <input id=\"q\" name=\"q\" value=\"{}\"><button type=\"submit\">Search</button></form>",
        esc(&text)
    ));
    if q.q.is_some() {
        match registry::search(&app.plugins, &c.ctx(), &text).await {
            Ok(found) if found.is_empty() => {
                body.push_str("<p class=\"muted\">Nothing matches.</p>");
            }
            Ok(found) => {
                body.push_str("<table>");
                for f in found {
                    let action = match &f.installed {
                        Some(v) => format!("installed ({})", esc(v)),
                        None => button(
                            &csrf,
                            &[("action", "install"), ("plugin", &f.id)],
                            "Install",
                        ),
                    };
                    body.push_str(&format!(
                        "<tr><td><b>{}</b> {}<br><span class=\"muted\">{} · {} · asks for: {}</span></td>\
                         <td>{action}</td></tr>",
                        esc(&f.name),
                        esc(&f.version),
                        esc(&f.publisher),
                        esc(&f.registry),
                        esc(&if f.capabilities.is_empty() {
                            "nothing".to_string()
                        } else {
                            f.capabilities.join(", ")
                        })
                    ));
                }
                body.push_str("</table>");
            }
            Err(e) => body.push_str(&format!("<p class=\"error\">{}</p>", esc(&e.to_string()))),
        }
    }
    body.push_str("</div>");
    Ok(page.render(axum::http::StatusCode::OK, "Plugins", None, &body))
}

/// What one registry install or update did, in a sentence.
fn describe(done: &[registry::Installed]) -> String {
    if done.is_empty() {
        return "Everything is up to date.".into();
    }
    done.iter()
        .map(|d| match &d.outcome {
            Outcome::Installed { replaced: None } => {
                format!("Installed {} {}.", d.plugin.id, d.plugin.version)
            }
            Outcome::Installed {
                replaced: Some(old),
            } => {
                format!("Updated {} {old} → {}.", d.plugin.id, d.plugin.version)
            }
            Outcome::Unchanged => {
                format!("{} {} is already installed.", d.plugin.id, d.plugin.version)
            }
            Outcome::Staged { version, added } => format!(
                "{} {version} is staged, not installed: it adds {}. Approve it to install it.",
                d.plugin.id,
                added.join(", ")
            ),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn act(
    State(app): State<App>,
    PartsOf(parts): PartsOf,
    body: Bytes,
) -> Result<Response, ApiError> {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let one = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let Some(c) = form_caller(&app, &parts, &one("csrf"))? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let ctx = c.ctx();
    let (id, site) = (one("id"), one("site"));
    let p = &app.plugins;
    let result: Result<String, PluginError> = async {
        Ok(match one("action").as_str() {
            "install" => describe(
                &registry::install(p, &ctx, &one("plugin"), false, &registry::no_progress).await?,
            ),
            "update" => {
                describe(&registry::update(p, &ctx, Some(&id), &registry::no_progress).await?)
            }
            "rollback" => {
                let v = p.rollback(&ctx, &id).await?;
                format!("{id} is back at {}.", v.version)
            }
            "approve" => {
                let (v, added) = p.approve(&ctx, &id).await?;
                format!(
                    "{id} {} is installed. It adds {}: grant them per site below.",
                    v.version,
                    added.join(", ")
                )
            }
            "enable" => {
                p.set_enabled(&ctx, &id, &site, true).await?;
                format!("Enabled {id} at {site}.")
            }
            "disable" => {
                p.set_enabled(&ctx, &id, &site, false).await?;
                format!("Disabled {id} at {site}.")
            }
            action @ ("grants" | "unattended-grants") => {
                let mut grants = std::collections::BTreeSet::new();
                for (k, v) in &fields {
                    if k == "capability" {
                        grants.insert(Capability::parse(v).ok_or_else(|| {
                            PluginError::Invalid(format!("unknown capability '{v}'"))
                        })?);
                    }
                }
                if action == "grants" {
                    p.set_grants(&ctx, &id, &site, grants).await?;
                    format!("Grants of {id} at {site} saved.")
                } else {
                    p.set_unattended_grants(&ctx, &id, &site, grants).await?;
                    format!("Unattended grants of {id} at {site} saved.")
                }
            }
            "bind" => {
                let (interface, provider) = (one("interface"), one("provider"));
                let provider = Some(provider.as_str()).filter(|p| !p.is_empty());
                p.bind(&ctx, &site, &interface, provider).await?;
                match provider {
                    Some(pr) => format!("{interface} at {site} is provided by {pr}."),
                    None => format!("{interface} at {site} has no provider."),
                }
            }
            "panels" => {
                // `pos:<plugin>/<panel>` = position (empty: the default place), per plugin.
                let mut by_plugin: std::collections::BTreeMap<
                    String,
                    std::collections::BTreeMap<String, Option<u32>>,
                > = Default::default();
                for (k, v) in &fields {
                    let Some((plugin, panel)) =
                        k.strip_prefix("pos:").and_then(|r| r.split_once('/'))
                    else {
                        continue;
                    };
                    let position = match v.trim() {
                        "" => None,
                        n => Some(n.parse::<u32>().ok().filter(|n| *n <= 10_000).ok_or_else(
                            || {
                                PluginError::Invalid(format!(
                                    "the position of '{panel}' is a whole number from 0 to 10000"
                                ))
                            },
                        )?),
                    };
                    by_plugin
                        .entry(plugin.to_string())
                        .or_default()
                        .insert(panel.to_string(), position);
                }
                for (plugin, positions) in by_plugin {
                    p.set_panel_positions(&ctx, &plugin, &site, positions)
                        .await?;
                }
                format!("The chart layout at {site} is saved.")
            }
            "retry-events" => {
                let n = p.retry_parked(&ctx, &id, None).await?;
                format!("{n} parked event(s) of {id} will be delivered again.")
            }
            other => {
                return Err(PluginError::Invalid(format!("unknown action '{other}'")));
            }
        })
    }
    .await;
    let query = match result {
        Ok(msg) => format!("msg={}", encode(&msg)),
        Err(e) => format!("error={}", encode(&e.to_string())),
    };
    Ok(Redirect::to(&format!("/admin/plugins?{query}")).into_response())
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
