//! The chart, `/patients/{id}`: the patient banner, every part of the demographic record, and
//! below them the chart's panel area, where the panels plugins contribute are composed.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::access::Permission;
use crate::app::App;
use crate::http::banner::{Banner, age, banner_flags, card_text, display_name, sex_label};
use crate::http::pages::esc;
use crate::http::shell::{Page, clinic_today, clinic_zone};
use crate::patients::fhir::{CHART_SYSTEM, IDENTIFIER_VERSION_EXT, ON_HCN_SYSTEM, Patient};
use crate::patients::version_of;

use super::read;

#[derive(Deserialize, Default)]
pub(super) struct Done {
    #[serde(default)]
    done: Option<String>,
}

fn fact(label: &str, value: &str) -> String {
    format!(
        "<dt>{}</dt><dd>{}</dd>",
        esc(label),
        if value.is_empty() {
            "<span class=\"muted\">—</span>".to_string()
        } else {
            esc(value)
        }
    )
}

fn identifier_label(system: &str) -> String {
    match system {
        ON_HCN_SYSTEM => "Ontario health card".into(),
        CHART_SYSTEM => "Chart number".into(),
        s => s.to_string(),
    }
}

/// A FHIR instant in the clinic's time, "2026-11-29 09:00".
fn local_time(zone: &jiff::tz::TimeZone, t: &str) -> String {
    t.parse::<jiff::Timestamp>()
        .map(|ts| {
            ts.to_zoned(zone.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| t.to_string())
}

/// The demographics of a chart, every part of the record.
fn demographics(
    p: &Patient,
    today: jiff::civil::Date,
    zone: &jiff::tz::TimeZone,
    changed_by: Option<&str>,
) -> String {
    let mut identity = String::new();
    for n in &p.name {
        let label = match n.r#use.as_deref() {
            Some("nickname") => "Preferred name",
            Some("old") | Some("maiden") => "Previous name",
            Some("official") | None => "Name",
            Some(_) => "Other name",
        };
        let full = n.text.clone().unwrap_or_else(|| {
            n.prefix
                .iter()
                .chain(&n.given)
                .chain(n.family.iter())
                .chain(&n.suffix)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        });
        identity.push_str(&fact(label, &full));
    }
    identity.push_str(&fact(
        "Sex",
        p.gender.as_deref().map(sex_label).unwrap_or(""),
    ));
    let born = match (
        &p.birth_date,
        p.birth_date.as_deref().and_then(|b| age(b, today)),
    ) {
        (Some(b), Some(a)) => format!("{b} ({a})"),
        (Some(b), None) => b.clone(),
        _ => String::new(),
    };
    identity.push_str(&fact("Birth date", &born));
    if p.deceased_boolean == Some(true) || p.deceased_date_time.is_some() {
        identity.push_str(&fact(
            "Deceased",
            p.deceased_date_time.as_deref().unwrap_or("yes"),
        ));
    }

    let mut ids = String::new();
    for i in &p.identifier {
        let system = i.system.as_deref().unwrap_or("");
        let value = i.value.as_deref().unwrap_or("");
        let shown = if system == ON_HCN_SYSTEM {
            let version = i
                .extension
                .iter()
                .find(|e| e.url == IDENTIFIER_VERSION_EXT)
                .and_then(|e| e.value_string.as_deref());
            card_text(value, version)
        } else {
            value.to_string()
        };
        ids.push_str(&fact(&identifier_label(system), &shown));
    }

    let mut contact = String::new();
    for t in &p.telecom {
        let label = match (t.system.as_deref(), t.r#use.as_deref()) {
            (Some("phone"), Some("mobile")) => "Mobile phone".to_string(),
            (Some("phone"), Some("work")) => "Work phone".to_string(),
            (Some("phone"), _) => "Phone".to_string(),
            (Some("email"), _) => "Email".to_string(),
            (Some(s), _) => s.to_string(),
            (None, _) => "Contact".to_string(),
        };
        contact.push_str(&fact(&label, t.value.as_deref().unwrap_or("")));
    }
    for a in &p.address {
        let text = a.text.clone().unwrap_or_else(|| {
            let mut parts: Vec<String> = a.line.clone();
            let place = [
                a.city.as_deref(),
                a.state.as_deref(),
                a.postal_code.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            if !place.is_empty() {
                parts.push(place);
            }
            if let Some(c) = &a.country {
                parts.push(c.clone());
            }
            parts.join(", ")
        });
        let label = match a.r#use.as_deref() {
            Some("work") => "Work address",
            Some("temp") => "Temporary address",
            Some("old") => "Former address",
            Some("billing") => "Billing address",
            _ => "Address",
        };
        contact.push_str(&fact(label, &text));
    }
    if contact.is_empty() {
        contact = "<dt>Contact</dt><dd class=\"muted\">none on file</dd>".into();
    }

    let mut care = String::new();
    for c in &p.communication {
        let lang = c
            .language
            .text
            .clone()
            .or_else(|| {
                c.language
                    .coding
                    .iter()
                    .find_map(|x| x.display.clone().or(x.code.clone()))
            })
            .unwrap_or_default();
        let label = if c.preferred == Some(true) {
            "Preferred language"
        } else {
            "Language"
        };
        care.push_str(&fact(label, &lang));
    }
    for g in &p.general_practitioner {
        let who = g
            .display
            .clone()
            .or_else(|| g.reference.clone())
            .unwrap_or_default();
        care.push_str(&fact("Family physician", &who));
    }
    if care.is_empty() {
        care =
            "<dt>Care</dt><dd class=\"muted\">no language or family physician on file</dd>".into();
    }

    let record = format!(
        "{}{}{}{}",
        fact(
            "Status",
            if p.active == Some(false) {
                "Inactive"
            } else {
                "Active"
            }
        ),
        fact("Version", &version_of(p).to_string()),
        fact(
            "Last changed",
            &p.meta
                .as_ref()
                .and_then(|m| m.last_updated.as_deref())
                .map(|t| local_time(zone, t))
                .unwrap_or_default()
        ),
        changed_by
            .map(|who| fact("Changed by", who))
            .unwrap_or_default(),
    );
    format!(
        "<div class=\"grid two\">\
         <section class=\"card\"><h2>Identity</h2><dl class=\"facts\">{identity}</dl></section>\
         <section class=\"card\"><h2>Identifiers</h2><dl class=\"facts\">{ids}</dl></section>\
         <section class=\"card\"><h2>Contact</h2><dl class=\"facts\">{contact}</dl></section>\
         <section class=\"card\"><h2>Care</h2><dl class=\"facts\">{care}</dl></section>\
         <section class=\"card\"><h2>Record</h2><dl class=\"facts\">{record}</dl></section></div>"
    )
}

/// A panel a plugin contributes to the chart: its output framed like a plugin page, or why
/// it is unavailable.
pub struct Panel {
    pub plugin: String,
    pub id: String,
    pub title: String,
    pub content: Result<crate::http::frame::PluginHtml, String>,
}

/// The panels the plugins enabled at the caller's site contribute to `patient`'s chart, for
/// the caller's roles, in the site's order: each rendered in its own sandbox, all at once,
/// each within its own deadline (see [`Plugins::render_panels`]).
///
/// [`Plugins::render_panels`]: crate::plugins::Plugins::render_panels
async fn chart_panels(app: &App, page: &Page, patient: &str) -> Vec<Panel> {
    let caller = page.caller();
    let Some(site) = caller.site.clone() else {
        return Vec::new();
    };
    let refs = app.plugins.panels(&site, Some(&caller.user.roles));
    if refs.is_empty() {
        return Vec::new();
    }
    let person = crate::http::plugins::person(app, caller, &site);
    app.plugins
        .render_panels(refs, patient, &site, &caller.ctx(), &person)
        .await
        .into_iter()
        .map(|r| Panel {
            plugin: r.panel.plugin,
            id: r.panel.panel,
            title: r.panel.title,
            content: r
                .html
                .map(|h| crate::http::frame::parse(&h))
                .map_err(|e| e.for_people()),
        })
        .collect()
}

/// The chart's panel area: each panel in its own shadow root; a failed one says so and the
/// rest render.
fn render_panels(panels: &[Panel]) -> String {
    use crate::http::assets::PLUGIN_CSS;
    let mut out = String::from(
        "<section class=\"panels\" aria-labelledby=\"panels-h\"><h2 id=\"panels-h\">Clinical record</h2>",
    );
    if panels.is_empty() {
        out.push_str(
            "<p class=\"muted\">No plugin enabled at this site adds to the chart yet.</p>",
        );
    }
    for p in panels {
        out.push_str(&format!(
            "<section class=\"card panel\" id=\"panel-{plugin}-{id}\" data-plugin=\"{plugin}\" \
             data-panel=\"{id}\" aria-labelledby=\"panel-{plugin}-{id}-h\">\
             <h2 id=\"panel-{plugin}-{id}-h\">{title}</h2>",
            plugin = esc(&p.plugin),
            id = esc(&p.id),
            title = esc(&p.title)
        ));
        match &p.content {
            Ok(html) => out.push_str(&format!(
                "<div class=\"plugin-frame\">{}</div>",
                crate::http::frame::shadow_root(html, &PLUGIN_CSS.url(), &PLUGIN_CSS.path())
            )),
            Err(why) => out.push_str(&format!(
                "<p class=\"panel-unavailable\" role=\"status\">Unavailable: {}.</p>",
                esc(why)
            )),
        }
        out.push_str("</section>");
    }
    out.push_str("</section>");
    out
}

/// Who made the record's latest change, with their role: "Sam Patient (patient)".
fn last_changed_by(app: &App, patient: &str, p: &Patient) -> Option<String> {
    let c = app.patients.changed_by(patient).ok().flatten()?;
    if c.version != version_of(p) {
        return None;
    }
    let name = app
        .accounts
        .get(&c.user)
        .ok()
        .flatten()
        .and_then(|u| u.display_name)
        .unwrap_or_else(|| c.user.clone());
    Some(format!("{name} ({})", c.role.replace(',', ", ")))
}

pub(super) async fn chart(
    page: Page,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let p = match read(&page, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let today = clinic_today(&page.app);
    let banner = Banner::of(&p, today, banner_flags(&page.app, page.caller(), &p).await);
    let can_write = page.caller().ctx().can(Permission::PatientsWrite);
    let notice = match done.done.as_deref() {
        Some("registered") => format!(
            "<p class=\"notice\" role=\"status\">Registered{}.</p>",
            p.chart_number()
                .map(|c| format!(" with chart number {}", esc(c)))
                .unwrap_or_default()
        ),
        Some("saved") => "<p class=\"notice\" role=\"status\">Changes saved.</p>".to_string(),
        _ => String::new(),
    };
    let inactive = if p.active == Some(false) {
        "<p class=\"warning\">This chart is <strong>inactive</strong>.</p>"
    } else {
        ""
    };
    let body = format!(
        "{notice}{inactive}<div class=\"page-head\"><h1>Demographics</h1>{}</div>{}{}",
        if can_write {
            format!(
                "<a class=\"button secondary\" href=\"/patients/{}/edit\">Edit demographics</a>",
                esc(&id)
            )
        } else {
            String::new()
        },
        demographics(
            &p,
            today,
            &clinic_zone(&page.app),
            last_changed_by(&page.app, &id, &p).as_deref()
        ),
        render_panels(&chart_panels(&page.app, &page, &id).await)
    );
    let body = format!(
        "{body}{}",
        crate::http::pages::portal::account_card(&page.app, &page, &p, &id)
    );
    page.render(
        StatusCode::OK,
        &format!("Chart · {}", display_name(&p)),
        Some(&banner),
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_panel_has_its_own_shadow_root_and_a_failed_one_says_so() {
        let panels = [
            Panel {
                plugin: "prescribing".into(),
                id: "medications".into(),
                title: "Medications".into(),
                content: Ok(crate::http::frame::parse(
                    "<style>li{color:red}</style><ul><li>Warfarin 5 mg</li></ul>",
                )),
            },
            Panel {
                plugin: "encounter".into(),
                id: "notes".into(),
                title: "Notes".into(),
                content: Err("the plugin did not answer in time".into()),
            },
        ];
        let html = render_panels(&panels);
        assert_eq!(
            html.matches("<template shadowrootmode=\"open\">").count(),
            1
        );
        let ok = html.find("Warfarin 5 mg").unwrap();
        let closes = html.find("</template>").unwrap();
        assert!(ok < closes, "{html}");
        assert!(html.contains("Unavailable: the plugin did not answer in time."));
        assert!(html.contains("data-plugin=\"encounter\""));
        assert!(render_panels(&[]).contains("No plugin enabled at this site adds to the chart"));
    }
}
