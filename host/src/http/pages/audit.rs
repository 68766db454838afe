//! `/admin/audit`: the audit trail for administrators — entries filtered by patient (record
//! id or chart number), by user and by time, oldest first, and on request (a button, since it
//! reads the whole log: seconds for millions of entries) the result of re-hashing the whole
//! chain. Reads go through the same functions as `/api/v1/audit` and `/api/v1/audit/verify`,
//! so looking at the trail is on the trail too.
//!
//! Times are the clinic's local time (`timezone` in `osler.toml`); the entries themselves
//! are kept in UTC.

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::access::Permission;
use crate::app::App;
use crate::audit::{AuditEntry, AuditQuery};
use crate::http::ApiError;
use crate::http::api::{check_audit, read_audit};
use crate::http::pages::esc;
use crate::http::shell::Page;
use crate::patients::fhir::CHART_SYSTEM;

pub fn router() -> Router<App> {
    Router::new().route("/admin/audit", get(show))
}

#[derive(Deserialize, Default, Clone)]
struct Filter {
    /// A patient record id or a chart number.
    #[serde(default)]
    patient: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    /// `YYYY-MM-DDTHH:MM` in the clinic's time zone (a `datetime-local` input).
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    /// Re-hash the whole chain.
    #[serde(default)]
    verify: Option<String>,
}

fn some(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Filter {
    fn query_string(&self, cursor: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("patient", some(&self.patient)),
            ("actor", some(&self.actor)),
            ("since", some(&self.since)),
            ("until", some(&self.until)),
            ("cursor", cursor),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

fn zone(app: &App) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(&app.config.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// A `datetime-local` value (clinic time) as unix milliseconds.
fn local_ms(app: &App, field: &str, v: &str) -> Result<i64, ApiError> {
    v.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(zone(app)).ok())
        .map(|z| z.timestamp().as_millisecond())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{field} must be a date and time, e.g. 2026-11-29T09:00"
            ))
            .field(field)
        })
}

/// An entry's time in clinic time, "2026-11-29 09:00:05".
fn local_time(app: &App, utc: &str) -> String {
    utc.parse::<jiff::Timestamp>()
        .map(|t| {
            t.to_zoned(zone(app))
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| utc.to_string())
}

fn outcome_badge(o: &str) -> String {
    let class = match o {
        "success" => "badge green",
        "denied" | "failure" | "locked" => "badge red",
        "invalid" | "conflict" => "badge amber",
        _ => "badge",
    };
    format!("<span class=\"{class}\">{}</span>", esc(o))
}

fn patient_cell(e: &AuditEntry) -> String {
    let link = |id: &str| {
        let short: String = id.chars().take(8).collect();
        format!(
            "<a class=\"mono\" href=\"/admin/audit?patient={}\" title=\"{}\">{}</a>",
            esc(&form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()),
            esc(id),
            esc(&short)
        )
    };
    match (&e.patient, e.patients.len()) {
        (Some(p), _) => link(p),
        (None, 0) => String::new(),
        (None, 1) => link(&e.patients[0]),
        (None, n) => format!("<span class=\"muted\">{n} patients</span>"),
    }
}

fn entries_table(app: &App, entries: &[AuditEntry]) -> String {
    let rows: String = entries
        .iter()
        .map(|e| {
            let via = e.via.as_deref().unwrap_or("");
            let detail = e.detail.as_deref().unwrap_or("");
            format!(
                "<tr><td class=\"num\">{}</td><td>{} <span class=\"muted small\">{}</span></td>\
                 <td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"muted small\">{}</td></tr>",
                esc(&local_time(app, &e.time)),
                esc(&e.actor),
                esc(&e.role),
                esc(e.site.as_deref().unwrap_or("")),
                esc(&e.action),
                outcome_badge(&e.outcome),
                patient_cell(e),
                // `Patient/<id>` says again what the patient column says.
                esc(e
                    .resource
                    .as_deref()
                    .filter(|r| e
                        .patient
                        .as_ref()
                        .is_none_or(|p| *r != format!("Patient/{p}")))
                    .unwrap_or("")),
                esc(via),
                esc(&[e.source.as_deref().unwrap_or(""), detail]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" · ")),
            )
        })
        .collect();
    format!(
        "<table class=\"audit\"><thead><tr><th>Time</th><th>User</th><th>Site</th><th>Action</th>\
         <th>Outcome</th><th>Patient</th><th>Resource</th><th>Through</th><th>From · detail</th>\
         </tr></thead><tbody>{rows}</tbody></table>"
    )
}

async fn show(page: Page, Query(mut f): Query<Filter>) -> Response {
    if let Err(r) = page.require("audit.read", Permission::AuditRead).await {
        return r;
    }
    let app = &page.app;
    // A first visit shows today's entries.
    if page.parts.uri.query().is_none_or(str::is_empty) {
        f.since = Some(format!("{}T00:00", crate::http::shell::clinic_today(app)));
    }
    let verification = if some(&f.verify).is_none() {
        let hidden: String = [
            ("patient", some(&f.patient)),
            ("actor", some(&f.actor)),
            ("since", some(&f.since)),
            ("until", some(&f.until)),
        ]
        .iter()
        .filter_map(|(k, v)| {
            v.map(|v| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v)))
        })
        .collect();
        format!(
            "<form method=\"get\" action=\"/admin/audit\" class=\"card verify\">{hidden}\
             <p>Re-hash every entry of the trail and check that each follows the one before: \
             an edited, inserted, reordered or removed entry shows up.</p>\
             <button type=\"submit\" name=\"verify\" value=\"1\" class=\"secondary\">Verify the whole chain</button></form>"
        )
    } else {
        match check_audit(app, page.caller()).await {
            Ok(v) => {
                if v.ok {
                    format!(
                        "<p class=\"notice\" role=\"status\"><strong>The trail is intact:</strong> all \
                     {} entries re-hashed and chained.</p>",
                        v.entries
                    )
                } else {
                    format!(
                        "<p class=\"error\" role=\"alert\"><strong>The trail is broken</strong>{}: {}. \
                     Run <code>osler audit verify</code> on the server and restore the log from a \
                     backup.</p>",
                        v.broken_at
                            .map(|s| format!(" at entry {s}"))
                            .unwrap_or_default(),
                        esc(v.problem.as_deref().unwrap_or("the chain does not hold"))
                    )
                }
            }
            Err(e) => format!(
                "<p class=\"error\" role=\"alert\">The trail could not be verified: {}</p>",
                esc(&e.body.message)
            ),
        }
    };
    let form = format!(
        "<form method=\"get\" action=\"/admin/audit\" class=\"card\"><div class=\"grid\">\
         <div><label for=\"a-patient\">Patient (record id or chart number)</label>\
         <input id=\"a-patient\" name=\"patient\" value=\"{}\" autocomplete=\"off\"></div>\
         <div><label for=\"a-actor\">User name</label>\
         <input id=\"a-actor\" name=\"actor\" value=\"{}\" autocomplete=\"off\"></div>\
         <div><label for=\"a-since\">From</label>\
         <input id=\"a-since\" name=\"since\" type=\"datetime-local\" value=\"{}\"></div>\
         <div><label for=\"a-until\">Until</label>\
         <input id=\"a-until\" name=\"until\" type=\"datetime-local\" value=\"{}\"></div></div>\
         <button type=\"submit\">Show entries</button>\
         <a class=\"button secondary\" href=\"/admin/audit?since=\">Everything</a></form>",
        esc(some(&f.patient).unwrap_or("")),
        esc(some(&f.actor).unwrap_or("")),
        esc(some(&f.since).unwrap_or("")),
        esc(some(&f.until).unwrap_or("")),
    );
    let result = async {
        let patient = match some(&f.patient) {
            None => None,
            // A chart number is looked up in the identifier index (no chart is read).
            Some(p) if p.len() < 16 && p.bytes().all(|b| b.is_ascii_digit()) => Some(
                app.patients
                    .id_by_identifier(CHART_SYSTEM, p)
                    .map_err(ApiError::from)?
                    .ok_or_else(|| {
                        ApiError::invalid(format!("no chart has the number {p}")).field("patient")
                    })?,
            ),
            Some(p) => Some(p.to_string()),
        };
        let q = AuditQuery {
            patient,
            actor: some(&f.actor).map(str::to_string),
            since_ms: some(&f.since)
                .map(|s| local_ms(app, "since", s))
                .transpose()?,
            until_ms: some(&f.until)
                .map(|s| local_ms(app, "until", s))
                .transpose()?,
            count: 100,
            cursor: some(&f.cursor).map(str::to_string),
        };
        read_audit(app, page.caller(), q).await
    }
    .await;
    let (status, results) = match result {
        Ok(found) if found.entries.is_empty() => (
            StatusCode::OK,
            "<p class=\"muted\">No entries match.</p>".to_string(),
        ),
        Ok(found) => {
            let mut out = format!(
                "<p class=\"muted\">{} entr{}, oldest first.</p>{}",
                found.entries.len(),
                if found.entries.len() == 1 { "y" } else { "ies" },
                entries_table(app, &found.entries)
            );
            if let Some(next) = &found.next {
                out.push_str(&format!(
                    "<div class=\"pager\"><a href=\"/admin/audit?{}\">Next page</a></div>",
                    esc(&f.query_string(Some(next)))
                ));
            }
            (StatusCode::OK, out)
        }
        Err(e) if e.status == StatusCode::FORBIDDEN => return page.refuse(&e.body.message),
        Err(e) => (
            e.status,
            format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                esc(&e.body.message)
            ),
        ),
    };
    let body = format!(
        "<p><a href=\"/admin\">Administration</a></p><h1>Audit trail</h1>{verification}{form}\
         <section class=\"card scroll\">{results}</section>"
    );
    page.render(status, "Audit trail", None, &body)
}
