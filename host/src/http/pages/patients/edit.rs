//! Editing demographics, `/patients/{id}/edit`: the form carries the version and the values it
//! was read at; a save of a record someone changed meanwhile comes back merged, never lost.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::access::Permission;
use crate::http::banner::{Banner, banner_flags, display_name};
use crate::http::pages::esc;
use crate::http::shell::{Page, clinic_today};
use crate::patients::{PatientError, version_of};

use super::form::{FIELDS, Fields, FormView, Problems, apply, merge, physicians};
use super::{form_page, read, without_record_id};

pub(super) async fn edit_form(page: Page, Path(id): Path<String>) -> Response {
    if let Some(r) = page.refusal("patient.update", Permission::PatientsWrite) {
        return r;
    }
    let p = match read(&page, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let banner = Banner::of(
        &p,
        clinic_today(&page.app),
        banner_flags(&page.app, page.caller(), &p).await,
    );
    let f = Fields::of(&p);
    let v = FormView {
        id: Some(&id),
        version: Some(version_of(&p)),
        original: Some(&f),
        ..Default::default()
    };
    form_page(
        &page,
        &format!("Edit · {}", display_name(&p)),
        Some(&banner),
        StatusCode::OK,
        &f,
        &v,
    )
}

pub(super) async fn save(page: Page, Path(id): Path<String>, body: Bytes) -> Response {
    let (f, control) = Fields::from_body(&body);
    if let Err(e) = page.check_csrf(control.get("csrf").map(String::as_str).unwrap_or("")) {
        return e.into_response();
    }
    let ctx = page.caller().ctx();
    let Some(expected) = control.get("version").and_then(|v| v.parse::<u64>().ok()) else {
        return page.refuse("This form has no record version; open the patient's record again.");
    };
    let original = control.get("original").and_then(|o| Fields::decode(o));
    let physicians = physicians(&page.app);
    let (result, map) = page
        .app
        .patients
        .modify(&ctx, &id, expected, |p| apply(&f, p, true, &physicians))
        .await;
    let title = "Edit demographics";
    match result {
        Ok(p) => Redirect::to(&format!(
            "/patients/{}?done=saved",
            esc(p.id.as_deref().unwrap_or(&id))
        ))
        .into_response(),
        Err(PatientError::Stale { .. }) => {
            // Someone saved in between: show the record as it is now, with these changes on top.
            let now = match read(&page, &id).await {
                Ok(p) => p,
                Err(r) => return r,
            };
            let theirs = Fields::of(&now);
            let base = original.unwrap_or_else(|| theirs.clone());
            let (merged, conflicts) = merge(&base, &f, &theirs);
            let banner = Banner::of(
                &now,
                clinic_today(&page.app),
                banner_flags(&page.app, page.caller(), &now).await,
            );
            let changed_by_them = FIELDS
                .iter()
                .filter(|(k, _)| base.get(k) != theirs.get(k))
                .map(|(_, l)| *l)
                .collect::<Vec<_>>();
            let mut note = format!(
                "<div class=\"warning\" role=\"alert\"><p><strong>Not saved yet: this record was \
                 changed by someone else</strong> after you opened it (it is now version {}).</p>\
                 <p>Your changes are still in the form below, on top of the record as it is now.",
                version_of(&now)
            );
            if !changed_by_them.is_empty() {
                note.push_str(&format!(
                    " They changed: {}.",
                    esc(&changed_by_them.join(", "))
                ));
            }
            if conflicts.is_empty() {
                note.push_str(
                    " None of their changes touch yours. Check, then save again.</p></div>",
                );
            } else {
                note.push_str(
                    " Where you both changed a field, yours is in the form and theirs is shown \
                     under it. Check, then save again.</p></div>",
                );
            }
            let v = FormView {
                id: Some(&id),
                version: Some(version_of(&now)),
                original: Some(&theirs),
                notes: vec![note],
                on_file: conflicts,
                ..Default::default()
            };
            form_page(
                &page,
                title,
                Some(&banner),
                StatusCode::CONFLICT,
                &merged,
                &v,
            )
        }
        Err(PatientError::Invalid(errors)) => {
            let v = FormView {
                id: Some(&id),
                version: Some(expected),
                original: original.as_ref(),
                problems: Problems::from_fields(&errors, &map),
                ..Default::default()
            };
            form_page(
                &page,
                title,
                banner(&page, &id).await.as_ref(),
                StatusCode::BAD_REQUEST,
                &f,
                &v,
            )
        }
        Err(PatientError::Conflict { message, existing }) => {
            let link = existing
                .map(|x| format!(" <a href=\"/patients/{}\">Open that chart</a>.", esc(&x)))
                .unwrap_or_default();
            let mut problems = Problems::default();
            problems.by_field.insert(
                "hcn",
                vec!["this health card belongs to another chart".into()],
            );
            let v = FormView {
                id: Some(&id),
                version: Some(expected),
                original: original.as_ref(),
                problems,
                notes: vec![format!(
                    "<div class=\"error\" role=\"alert\"><p><strong>Not saved:</strong> {}.{link}</p></div>",
                    esc(&without_record_id(&message))
                )],
                ..Default::default()
            };
            form_page(
                &page,
                title,
                banner(&page, &id).await.as_ref(),
                StatusCode::CONFLICT,
                &f,
                &v,
            )
        }
        Err(PatientError::Denied(m)) => page.refuse(&m),
        Err(PatientError::NotFound(_)) => match read(&page, &id).await {
            Err(r) => r,
            Ok(_) => page.refuse("This record could not be found."),
        },
        Err(e) => crate::http::ApiError::from(e).into_response(),
    }
}

/// The banner of the patient being edited, as on file now (an audited read).
async fn banner(page: &Page, id: &str) -> Option<Banner> {
    let p = read(page, id).await.ok()?;
    let flags = banner_flags(&page.app, page.caller(), &p).await;
    Some(Banner::of(&p, clinic_today(&page.app), flags))
}
