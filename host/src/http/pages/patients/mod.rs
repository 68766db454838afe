//! Patients in the browser: search, registration, the chart, and editing demographics.
//!
//! - `GET /patients`: search by name, birth date, health card or chart number; a table.
//! - `GET|POST /patients/new`: the registration form. Every part of the record the API has
//!   (names, sex, birth date, Ontario health card and version code, phones, email, address,
//!   preferred language, family physician). Before registering a name and birth date that a
//!   chart already has, the form asks to confirm; a health card already on a chart is refused
//!   by the patient service, with a link to that chart.
//! - `GET /patients/{id}`: the chart — demographics, then the panels plugins contribute.
//! - `GET|POST /patients/{id}/edit`: the same form for a registered patient, carrying the
//!   version it was read at. If someone saved the record in between, nothing is lost: the form
//!   comes back with the person's changes merged onto the record as it now is, each field both
//!   of them changed marked with the value now on file, to review and save again.
//!
//! Every read, search, create and update goes through [`crate::patients::Patients`], the
//! service behind the JSON API: the same validation, the same refusals, the same audit trail.

mod chart;
mod edit;
mod form;
mod register;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::access::Permission;
use crate::app::App;
use crate::http::assets::PATIENTS_JS;
use crate::http::banner::{Banner, age, card_text, display_name, sex_label};
use crate::http::pages::esc;
use crate::http::shell::{Page, clinic_today};
use crate::patients::fhir::Patient;
use crate::patients::{PatientError, SearchQuery};

use form::{Fields, FormView, patient_form};

pub fn router() -> Router<App> {
    Router::new()
        .route("/patients", get(search))
        .route(
            "/patients/new",
            get(register::new_form).post(register::create),
        )
        .route("/patients/{id}", get(chart::chart))
        .route("/patients/{id}/edit", get(edit::edit_form).post(edit::save))
}

// ---------------------------------------------------------------------------------------------
// Search

/// The search form's fields (also the query of `/patients`).
#[derive(Deserialize, Default, Clone)]
pub struct SearchForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub birthdate: String,
    /// A health card or chart number.
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub cursor: Option<String>,
}

impl SearchForm {
    fn is_empty(&self) -> bool {
        self.name.trim().is_empty()
            && self.birthdate.trim().is_empty()
            && self.number.trim().is_empty()
    }

    fn query_string(&self, cursor: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("name", self.name.trim()),
            ("birthdate", self.birthdate.trim()),
            ("number", self.number.trim()),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if let Some(c) = cursor {
            q.append_pair("cursor", c);
        }
        q.finish()
    }
}

/// The patient search form (on `/patients` and the home page).
pub fn search_form(f: &SearchForm) -> String {
    format!(
        "<form method=\"get\" action=\"/patients\" class=\"searchbar\" role=\"search\">\
         <div><label for=\"q-name\">Name</label><input id=\"q-name\" name=\"name\" value=\"{}\" \
         placeholder=\"Family name, given name, or both\" autocomplete=\"off\"></div>\
         <div><label for=\"q-born\">Birth date</label><input id=\"q-born\" name=\"birthdate\" \
         type=\"date\" value=\"{}\"></div>\
         <div><label for=\"q-number\">Health card or chart no.</label><input id=\"q-number\" \
         name=\"number\" inputmode=\"numeric\" autocomplete=\"off\" value=\"{}\"></div>\
         <div><button type=\"submit\">Search</button></div></form>",
        esc(&f.name),
        esc(&f.birthdate),
        esc(&f.number)
    )
}

/// Digits of a typed number, without the spaces and dashes people put in card numbers.
fn clean_number(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

fn telecom_value<'a>(p: &'a Patient, system: &str) -> Option<&'a str> {
    p.telecom
        .iter()
        .find(|t| t.system.as_deref() == Some(system))
        .and_then(|t| t.value.as_deref())
}

fn results_table(patients: &[Patient], today: jiff::civil::Date, can_write: bool) -> String {
    let rows: String = patients
        .iter()
        .map(|p| {
            let id = esc(p.id.as_deref().unwrap_or(""));
            let inactive = p.active == Some(false);
            let born = match (&p.birth_date, p.birth_date.as_deref().and_then(|b| age(b, today))) {
                (Some(b), Some(a)) => format!("{} <span class=\"muted\">({})</span>", esc(b), esc(&a)),
                (Some(b), None) => esc(b),
                _ => "—".into(),
            };
            format!(
                "<tr{}><td><a href=\"/patients/{id}\">{}</a>{}</td><td>{}</td><td class=\"num\">{born}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                if inactive { " class=\"inactive\"" } else { "" },
                esc(&display_name(p)),
                if inactive {
                    " <span class=\"badge red\">Inactive</span>"
                } else {
                    ""
                },
                esc(p.gender.as_deref().map(sex_label).unwrap_or("—")),
                esc(&p.ontario_hcn().map(|(n, v)| card_text(n, v)).unwrap_or_default()),
                esc(p.chart_number().unwrap_or("")),
                esc(telecom_value(p, "phone").unwrap_or("")),
                if can_write {
                    format!("<a href=\"/patients/{id}/edit\">Edit</a>")
                } else {
                    String::new()
                }
            )
        })
        .collect();
    format!(
        "<table><thead><tr><th>Name</th><th>Sex</th><th>Born</th><th>Health card</th>\
         <th>Chart</th><th>Phone</th><th><span class=\"visually-hidden\">Actions</span></th></tr>\
         </thead><tbody>{rows}</tbody></table>"
    )
}

async fn search(page: Page, Query(f): Query<SearchForm>) -> Response {
    // Not even the empty form for those who may not search (a patient, an administrator);
    // the search itself goes through the gate, audited.
    if let Some(refused) = page.refusal("patient.search", Permission::PatientsRead) {
        return refused;
    }
    let ctx = page.caller().ctx();
    let can_write = ctx.can(Permission::PatientsWrite);
    let mut body = format!(
        "<div class=\"page-head\"><h1>Patients</h1>{}</div><div class=\"card\">{}</div>",
        if can_write {
            "<a class=\"button\" href=\"/patients/new\">Register a new patient</a>"
        } else {
            ""
        },
        search_form(&f)
    );
    if f.is_empty() {
        body.push_str(
            "<p class=\"muted\">Search by name (the start of a family or given name is \
             enough), birth date, health card number or chart number.</p>",
        );
        return page.render(StatusCode::OK, "Patients", None, &body);
    }
    let number = clean_number(&f.number);
    let q = SearchQuery {
        name: Some(f.name.trim().to_string()).filter(|s| !s.is_empty()),
        birthdate: Some(f.birthdate.trim().to_string()).filter(|s| !s.is_empty()),
        identifier: Some(number).filter(|s| !s.is_empty()),
        count: 25,
        cursor: f.cursor.clone(),
    };
    let status = match page.app.patients.search(&ctx, &q).await {
        Ok(found) => {
            if found.patients.is_empty() {
                body.push_str(&format!(
                    "<div class=\"card\"><p>No patient matches.</p>{}</div>",
                    if can_write {
                        "<p><a href=\"/patients/new\">Register a new patient</a></p>"
                    } else {
                        ""
                    }
                ));
            } else {
                body.push_str(&format!(
                    "<div class=\"card\">{}",
                    results_table(&found.patients, clinic_today(&page.app), can_write)
                ));
                body.push_str("<div class=\"pager\">");
                if f.cursor.is_some() {
                    body.push_str(&format!(
                        "<a href=\"/patients?{}\">First page</a>",
                        esc(&f.query_string(None))
                    ));
                }
                if let Some(next) = &found.next {
                    body.push_str(&format!(
                        "<a href=\"/patients?{}\">Next page</a>",
                        esc(&f.query_string(Some(next)))
                    ));
                }
                body.push_str("</div></div>");
            }
            StatusCode::OK
        }
        Err(PatientError::Denied(m)) => return page.refuse(&m),
        Err(PatientError::BadQuery(m)) => {
            body.push_str(&format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                esc(&m)
            ));
            StatusCode::BAD_REQUEST
        }
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    page.render(status, "Patients", None, &body)
}

// ---------------------------------------------------------------------------------------------
// Shared by the pages

/// The patient service's duplicate message without the record id it ends with (the page
/// links to the chart instead).
fn without_record_id(message: &str) -> String {
    match (message.find(" (Patient/"), message.ends_with(')')) {
        (Some(at), true) => message[..at].to_string(),
        _ => message.to_string(),
    }
}

/// Read a patient for a page, or the page that says why not.
async fn read(page: &Page, id: &str) -> Result<Patient, Response> {
    match page.app.patients.get(&page.caller().ctx(), id).await {
        Ok(p) => Ok(p),
        Err(PatientError::Denied(m)) => Err(page.refuse(&m)),
        Err(PatientError::NotFound(_)) => Err(page.render(
            StatusCode::NOT_FOUND,
            "Not found",
            None,
            &format!(
                "<div class=\"card error-page\"><h1>No such patient</h1><p>There is no chart with id \
                 {}.</p><p><a href=\"/patients\">Find a patient</a></p></div>",
                esc(id)
            ),
        )),
        Err(e) => Err(crate::http::ApiError::from(e).into_response()),
    }
}

/// The patient form in a page (registration and editing).
fn form_page(
    page: &Page,
    title: &str,
    banner: Option<&Banner>,
    status: StatusCode,
    f: &Fields,
    v: &FormView,
) -> Response {
    let heading = if v.id.is_some() {
        "Edit demographics"
    } else {
        "Register a new patient"
    };
    let body = format!("<h1>{heading}</h1>{}", patient_form(page, f, v));
    page.render_with(status, title, banner, &body, &[&PATIENTS_JS])
}
