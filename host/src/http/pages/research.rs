//! `/research`: the researcher's pages — the research plugins placed for them at this site,
//! a form to run one (parameters as JSON, optionally the time to run it at), its results, and
//! the history of their runs. The same service functions as `/api/v1/research`, so the same
//! checks, records and audit entries apply; a research plugin not placed for the person is
//! "not found" here too.

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::app::App;
use crate::http::ApiError;
use crate::http::pages::esc;
use crate::http::shell::Page;
use crate::plugins::research::{Cell, ResearchError, ResearchView, RunRecord};

pub fn router() -> Router<App> {
    Router::new()
        .route("/research", get(index))
        .route("/research/{id}", get(plugin_page).post(run))
        .route("/research/{id}/runs/{run}", get(run_page))
}

async fn index(page: Page) -> Response {
    let mine = page.app.plugins.research_for(&page.caller().ctx());
    let body = if mine.is_empty() {
        "<h1>Research</h1><section class=\"card\"><p>No research plugin is placed for you at \
         this site. An administrator installs research plugins into the sandbox for named \
         researchers and sites.</p></section>"
            .to_string()
    } else {
        let items: String = mine
            .iter()
            .map(|p| {
                format!(
                    "<li><a href=\"/research/{id}\">{name}</a> <span class=\"mono\">{version}</span> — {desc}</li>",
                    id = esc(&p.id),
                    name = esc(&p.name),
                    version = esc(&p.version),
                    desc = esc(&p.description)
                )
            })
            .collect();
        format!(
            "<h1>Research</h1><section class=\"card\"><p>These plugins run in the research \
             sandbox on de-identified data only. Every run is recorded and audited.</p>\
             <ul>{items}</ul></section>"
        )
    };
    page.render(StatusCode::OK, "Research", None, &body)
}

fn not_found(page: &Page) -> Response {
    page.render(
        StatusCode::NOT_FOUND,
        "Not found",
        None,
        "<div class=\"error-page\"><h1>Not found</h1><p>There is no such research plugin here.</p>\
         <p><a href=\"/research\">Research</a></p></div>",
    )
}

fn placed(page: &Page, id: &str) -> Option<ResearchView> {
    page.app
        .plugins
        .research_for(&page.caller().ctx())
        .into_iter()
        .find(|p| p.id == id)
}

fn cell_html(c: &Cell) -> String {
    match c {
        Cell::Count(n) => format!("<td class=\"num\">{n}</td>"),
        Cell::Number(x) => format!("<td class=\"num\">{x}</td>"),
        Cell::Text(s) => format!("<td>{}</td>", esc(s)),
        Cell::Empty => "<td></td>".into(),
        Cell::Suppressed => {
            "<td class=\"num\" title=\"below the small-cell threshold\">suppressed</td>".into()
        }
    }
}

async fn plugin_page(page: Page, Path(id): Path<String>) -> Response {
    let Some(p) = placed(&page, &id) else {
        return not_found(&page);
    };
    let runs = page
        .app
        .plugins
        .research_runs(&page.caller().ctx(), &id, 20)
        .await
        .unwrap_or_default();
    let history: String = runs
        .iter()
        .map(|r| {
            format!(
                "<tr><td><a href=\"/research/{id}/runs/{run}\">{at}</a></td><td>{outcome}</td>\
                 <td class=\"num\">{fuel}</td><td class=\"num\">{patients}</td><td class=\"mono\">{params}</td></tr>",
                id = esc(&id),
                run = esc(&r.id),
                at = esc(&r.started_at),
                outcome = esc(&r.outcome),
                fuel = r.fuel_used,
                patients = r.patients_read,
                params = esc(&r.parameters.to_string()),
            )
        })
        .collect();
    let threshold = p
        .threshold
        .map(|t| format!("counts below {t} are suppressed"))
        .unwrap_or_else(|| "off".into());
    let body = format!(
        "<p><a href=\"/research\">Research</a></p><h1>{name}</h1>\
         <section class=\"card\"><p>{desc}</p><dl>\
         <dt>Version</dt><dd class=\"mono\">{version} (sha256 {sha})</dd>\
         <dt>Budget per run</dt><dd>{fuel} fuel, {mem} MiB</dd>\
         <dt>Small-cell protection</dt><dd>{threshold}</dd></dl></section>\
         <section class=\"card\" aria-labelledby=\"run-h\"><h2 id=\"run-h\">Run</h2>\
         <form method=\"post\" action=\"/research/{id}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"parameters\">Parameters (a JSON object)</label>\
         <textarea id=\"parameters\" name=\"parameters\" rows=\"4\">{{}}</textarea>\
         <label for=\"as-of\">Run as of (RFC 3339, to repeat an earlier run exactly; empty: now)</label>\
         <input id=\"as-of\" name=\"as_of\" autocomplete=\"off\" placeholder=\"2026-12-01T09:00:00Z\">\
         <button type=\"submit\">Run</button></form></section>\
         <section class=\"card\" aria-labelledby=\"hist-h\"><h2 id=\"hist-h\">Your runs</h2>\
         <table><thead><tr><th>Started</th><th>Outcome</th><th>Fuel used</th><th>Patients read</th>\
         <th>Parameters</th></tr></thead><tbody>{history}</tbody></table></section>",
        id = esc(&id),
        name = esc(&p.name),
        desc = esc(&p.description),
        version = esc(&p.version),
        sha = esc(&p.sha256),
        fuel = p.fuel,
        mem = p.memory_mib,
        csrf = page.csrf(),
    );
    page.render(StatusCode::OK, &p.name, None, &body)
}

async fn run(page: Page, Path(id): Path<String>, body: Bytes) -> Response {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let one = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    if let Err(e) = page.check_csrf(&one("csrf")) {
        return e.into_response();
    }
    let Some(site) = page.caller().site.clone() else {
        return not_found(&page);
    };
    let invalid = |m: &str| {
        page.render(
            StatusCode::BAD_REQUEST,
            "Not run",
            None,
            &format!(
                "<div class=\"error-page\"><h1>Not run</h1><p class=\"error\" role=\"alert\">{}</p>\
                 <p><a href=\"/research/{}\">Back</a></p></div>",
                esc(m),
                esc(&id)
            ),
        )
    };
    let text = one("parameters");
    let parameters: serde_json::Value = if text.is_empty() {
        serde_json::json!({})
    } else {
        match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => return invalid(&format!("The parameters are not JSON: {e}.")),
        }
    };
    let as_of = match one("as_of").as_str() {
        "" => None,
        t => match time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
            Ok(t) => Some(t),
            Err(_) => return invalid("The time to run as of must be like 2026-12-01T09:00:00Z."),
        },
    };
    let person = crate::http::plugins::person(&page.app, page.caller(), &site);
    let ctx = page.caller().ctx();
    match page
        .app
        .plugins
        .run_research(&ctx, person, &id, parameters, as_of)
        .await
    {
        Ok(r) => Redirect::to(&format!("/research/{id}/runs/{}", r.id)).into_response(),
        // A run that did not succeed has a record too: show it.
        Err(ResearchError::Failed { run, .. }) => {
            Redirect::to(&format!("/research/{id}/runs/{}", run.id)).into_response()
        }
        Err(ResearchError::NotFound(_)) => not_found(&page),
        Err(ResearchError::Invalid(m)) => invalid(&m),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn run_page(page: Page, Path((id, run)): Path<(String, String)>) -> Response {
    let r: RunRecord = match page
        .app
        .plugins
        .research_run(&page.caller().ctx(), &id, &run)
        .await
    {
        Ok(r) => r,
        Err(_) => return not_found(&page),
    };
    let result = match &r.result {
        Some(t) => {
            let head: String = t
                .columns
                .iter()
                .map(|c| format!("<th>{}</th>", esc(c)))
                .collect();
            let rows: String = t
                .rows
                .iter()
                .map(|row| format!("<tr>{}</tr>", row.iter().map(cell_html).collect::<String>()))
                .collect();
            format!("<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        }
        None => format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            esc(r.error.as_deref().unwrap_or("no result"))
        ),
    };
    let suppressed = match r.threshold {
        Some(t) if r.suppressed > 0 => format!(
            "<p class=\"notice\">{} count(s) below {t} were suppressed.</p>",
            r.suppressed
        ),
        _ => String::new(),
    };
    let body = format!(
        "<p><a href=\"/research/{id}\">Back</a></p><h1>Run {run}</h1>\
         <section class=\"card\"><dl>\
         <dt>Plugin</dt><dd class=\"mono\">{plugin} {version} (sha256 {sha})</dd>\
         <dt>By</dt><dd>{user} at {site}, {started}</dd>\
         <dt>As of</dt><dd>{as_of}</dd>\
         <dt>Parameters</dt><dd class=\"mono\">{params}</dd>\
         <dt>Outcome</dt><dd>{outcome}</dd>\
         <dt>Fuel</dt><dd>{fuel_used} of {fuel}</dd>\
         <dt>Peak memory</dt><dd>{peak} bytes (limit {mem} MiB)</dd>\
         <dt>Patients read</dt><dd>{patients}</dd>\
         <dt>Time</dt><dd>{ms} ms</dd></dl></section>\
         <section class=\"card\" aria-labelledby=\"res-h\"><h2 id=\"res-h\">Result</h2>{suppressed}{result}</section>",
        id = esc(&id),
        run = esc(&r.id),
        plugin = esc(&r.plugin),
        version = esc(&r.version),
        sha = esc(&r.sha256),
        user = esc(&r.user),
        site = esc(&r.site),
        started = esc(&r.started_at),
        as_of = esc(&r.as_of),
        params = esc(&r.parameters.to_string()),
        outcome = esc(&r.outcome),
        fuel_used = r.fuel_used,
        fuel = r.budget.fuel,
        peak = r.peak_memory_bytes,
        mem = r.budget.memory_mib,
        patients = r.patients_read,
        ms = r.duration_ms,
    );
    page.render(StatusCode::OK, "Research run", None, &body)
}
