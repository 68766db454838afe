//! Registration, `/patients/new`: the empty form, the possible-duplicate check (the same name
//! and birth date asks to confirm; the same health card is refused by the patient service), and
//! the create.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::access::Permission;
use crate::http::assets::PATIENTS_JS;
use crate::http::banner::display_name;
use crate::http::pages::esc;
use crate::http::shell::Page;
use crate::patients::fhir::Patient;
use crate::patients::{PatientError, SearchQuery};

use super::form::{Fields, FormView, Problems, apply, patient_form, physicians};
use super::{form_page, without_record_id};

pub(super) async fn new_form(page: Page) -> Response {
    if let Some(r) = page.refusal("patient.create", Permission::PatientsWrite) {
        return r;
    }
    let mut f = Fields::default();
    f.set("province", "ON");
    f.set("country", "CA");
    f.set("active", "on");
    let body = format!(
        "<h1>Register a new patient</h1>{}",
        patient_form(&page, &f, &FormView::default())
    );
    page.render_with(
        StatusCode::OK,
        "Register a patient",
        None,
        &body,
        &[&PATIENTS_JS],
    )
}

/// Charts with this form's name and birth date (an audited search, as the API's).
async fn same_name_and_birth(page: &Page, f: &Fields) -> Result<Vec<Patient>, PatientError> {
    let (family, given, born) = (
        f.get("family"),
        f.get("given").split_whitespace().next().unwrap_or(""),
        f.get("birthDate"),
    );
    if family.is_empty()
        || given.is_empty()
        || crate::patients::validate::parse_date(born).is_none()
    {
        return Ok(Vec::new());
    }
    let q = SearchQuery {
        name: Some(format!("{family} {given}")),
        birthdate: Some(born.to_string()),
        count: 10,
        ..Default::default()
    };
    Ok(page
        .app
        .patients
        .search(&page.caller().ctx(), &q)
        .await?
        .patients)
}

fn chart_links(patients: &[Patient]) -> String {
    patients
        .iter()
        .map(|p| {
            format!(
                "<li><a href=\"/patients/{}\">{}</a> · born {} · chart {}</li>",
                esc(p.id.as_deref().unwrap_or("")),
                esc(&display_name(p)),
                esc(p.birth_date.as_deref().unwrap_or("—")),
                esc(p.chart_number().unwrap_or("—"))
            )
        })
        .collect()
}

pub(super) async fn create(page: Page, body: Bytes) -> Response {
    let (f, control) = Fields::from_body(&body);
    if let Err(e) = page.check_csrf(control.get("csrf").map(String::as_str).unwrap_or("")) {
        return e.into_response();
    }
    let ctx = page.caller().ctx();
    if !ctx.can(Permission::PatientsWrite) {
        // The service refuses and audits it.
        if let Err(PatientError::Denied(m)) =
            page.app.patients.create(&ctx, Patient::default()).await
        {
            return page.refuse(&m);
        }
        return page.refuse("Your role may not register patients.");
    }
    let title = "Register a patient";
    let confirmed = control.get("confirm_duplicate").is_some_and(|v| v == "1");
    if !confirmed {
        match same_name_and_birth(&page, &f).await {
            Ok(found) if !found.is_empty() => {
                let v = FormView {
                    notes: vec![format!(
                        "<div class=\"warning\" role=\"alert\"><p><strong>Possible duplicate.</strong> \
                         {} with this name and birth date:</p><ul>{}</ul><p>Open the chart if it is \
                         this patient. If it is someone else, register them anyway.</p></div>",
                        if found.len() == 1 {
                            "A chart exists"
                        } else {
                            "Charts exist"
                        },
                        chart_links(&found)
                    )],
                    confirm_duplicate: true,
                    ..Default::default()
                };
                return form_page(&page, title, None, StatusCode::OK, &f, &v);
            }
            Ok(_) => {}
            // A name or date the search cannot use: registration explains it below.
            Err(PatientError::BadQuery(_)) => {}
            Err(e) => return crate::http::ApiError::from(e).into_response(),
        }
    }
    let mut p = Patient::default();
    let map = apply(&f, &mut p, false, &physicians(&page.app));
    match page.app.patients.create(&ctx, p).await {
        Ok(p) => Redirect::to(&format!(
            "/patients/{}?done=registered",
            p.id.as_deref().unwrap_or("")
        ))
        .into_response(),
        Err(PatientError::Invalid(errors)) => {
            let v = FormView {
                problems: Problems::from_fields(&errors, &map),
                ..Default::default()
            };
            form_page(&page, title, None, StatusCode::BAD_REQUEST, &f, &v)
        }
        Err(PatientError::Conflict { message, existing }) => {
            let link = existing
                .map(|id| format!(" <a href=\"/patients/{}\">Open that chart</a>.", esc(&id)))
                .unwrap_or_default();
            let mut problems = Problems::default();
            problems
                .by_field
                .insert("hcn", vec!["this health card is already registered".into()]);
            let v = FormView {
                problems,
                notes: vec![format!(
                    "<div class=\"error\" role=\"alert\"><p><strong>Not registered:</strong> {}.{link}</p></div>",
                    esc(&without_record_id(&message))
                )],
                ..Default::default()
            };
            form_page(&page, title, None, StatusCode::CONFLICT, &f, &v)
        }
        Err(PatientError::Denied(m)) => page.refuse(&m),
        Err(e) => crate::http::ApiError::from(e).into_response(),
    }
}
