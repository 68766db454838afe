//! Prescribing's panels of the patient's chart (`[[panels]]` in the manifest): the allergies
//! and the active medications, for the person viewing the chart (the host has checked they may
//! read it; every read here is on the patient's trail, as `patient-data.read`). Each panel is
//! an HTML fragment the host places in the chart, with no scripts.

use osler_sdk::{Error, html};

use crate::checks::UNCHECKED;
use crate::model::{self, Allergy, Prescription};

/// Renders panel `panel` of `patient`.
pub fn render(panel: &str, patient: &str) -> Result<String, Error> {
    model::check_patient_id(patient)?;
    model::migrate(patient)?;
    match panel {
        "allergies" => Ok(allergies(patient, &model::allergies(patient)?)),
        "medications" => Ok(medications(patient, &model::prescriptions(patient)?)),
        "allergy-flag" => Ok(allergy_flag(&model::allergies(patient)?)),
        other => Err(Error::not_found(format!(
            "prescribing has no panel '{other}'"
        ))),
    }
}

fn link(patient: &str, text: &str) -> String {
    format!(
        r#"<p class="noprint"><a href="/plugins/prescribing/patients/{}">{}</a></p>"#,
        html::escape(patient),
        html::escape(text)
    )
}

/// The patient banner's allergies flag (a panel in the `banner` slot: one line the host shows
/// after the title "Allergies"): the active allergies, most severe first, as an alert; when
/// none is recorded, a warning that says so — prescribing records allergies, not their
/// absence, so it never claims "none known".
pub fn allergy_flag(all: &[Allergy]) -> String {
    let mut active: Vec<&Allergy> = all.iter().filter(|a| a.status == "active").collect();
    if active.is_empty() {
        return "warning: none recorded".to_string();
    }
    let rank = |s: &str| match s {
        "severe" => 0,
        "moderate" => 1,
        "mild" => 2,
        _ => 3,
    };
    active.sort_by_key(|a| rank(&a.severity));
    let names: Vec<String> = active
        .iter()
        .map(|a| match a.severity.as_str() {
            "" | "no-reaction" => a.allergen.clone(),
            sev => format!("{} ({sev})", a.allergen),
        })
        .collect();
    format!("alert: {}", names.join(", "))
}

/// The active allergies. "None recorded" is not "no known allergies": it says only that none
/// were recorded here.
pub fn allergies(patient: &str, all: &[Allergy]) -> String {
    let active: Vec<&Allergy> = all.iter().filter(|a| a.status == "active").collect();
    let mut out = String::new();
    if active.is_empty() {
        out.push_str(r#"<p class="muted">No allergies recorded.</p>"#);
    } else {
        out.push_str("<ul>");
        for a in active {
            out.push_str(&format!(
                r#"<li><strong>{}</strong> — {}{}</li>"#,
                html::escape(&a.allergen),
                html::escape(&a.severity),
                if a.reaction.is_empty() {
                    String::new()
                } else {
                    format!(": {}", html::escape(&a.reaction))
                }
            ));
        }
        out.push_str("</ul>");
    }
    out + &link(patient, "Allergies and prescriptions")
}

/// The active medication list (on hold included, and said so), each with its directions; a
/// prescription written while the drug reference was unavailable says it was NOT checked.
pub fn medications(patient: &str, all: &[Prescription]) -> String {
    let active: Vec<&Prescription> = all.iter().filter(|p| p.is_active()).collect();
    let mut out = String::new();
    if active.is_empty() {
        out.push_str(r#"<p class="muted">No active medications.</p>"#);
    } else {
        out.push_str("<ul>");
        for rx in active {
            let mut flags = String::new();
            if rx.status == "on-hold" {
                flags.push_str(r#" <span class="badge">on hold</span>"#);
            }
            if rx.external {
                flags.push_str(r#" <span class="muted">(prescribed elsewhere)</span>"#);
            }
            if rx.checks.status == "unchecked" {
                flags.push_str(&format!(
                    r#" <span class="warning">{}</span>"#,
                    html::escape(UNCHECKED)
                ));
            }
            out.push_str(&format!(
                "<li><strong>{}</strong> {} — {}{flags}</li>",
                html::escape(&rx.drug.name),
                html::escape(&rx.strength),
                html::escape(&rx.sig_text),
            ));
        }
        out.push_str("</ul>");
    }
    out + &link(patient, "Medication list and prescribing")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allergy(allergen: &str, status: &str) -> Allergy {
        Allergy {
            id: "1767607100000-000".into(),
            kind: "free-text".into(),
            allergen: allergen.into(),
            reaction: "<hives>".into(),
            severity: "moderate".into(),
            onset: String::new(),
            status: status.into(),
            recorded_by: "Nurse Kim".into(),
            recorded_at: "2026-01-05T09:58:00".into(),
        }
    }

    #[test]
    fn the_allergy_panel_lists_active_allergies_escaped() {
        let html = allergies(
            "p1",
            &[
                allergy("penicillin", "active"),
                allergy("latex", "resolved"),
            ],
        );
        assert!(html.contains("<strong>penicillin</strong> — moderate: &lt;hives&gt;"));
        assert!(!html.contains("latex"));
        assert!(html.contains(r#"href="/plugins/prescribing/patients/p1""#));
        let none = allergies("p1", &[allergy("latex", "resolved")]);
        assert!(none.contains("No allergies recorded."), "{none}");
        assert!(!none.contains("<script"));
    }
}

#[cfg(test)]
mod flag_tests {
    use super::*;

    fn allergy(allergen: &str, severity: &str, status: &str) -> Allergy {
        Allergy {
            id: String::new(),
            kind: "free-text".into(),
            allergen: allergen.into(),
            reaction: String::new(),
            severity: severity.into(),
            onset: String::new(),
            status: status.into(),
            recorded_by: String::new(),
            recorded_at: String::new(),
        }
    }

    #[test]
    fn the_banner_flag_names_active_allergies_most_severe_first_and_never_claims_none_known() {
        assert_eq!(allergy_flag(&[]), "warning: none recorded");
        assert_eq!(
            allergy_flag(&[
                allergy("sulfa", "moderate", "active"),
                allergy("penicillin", "severe", "active"),
                allergy("latex", "mild", "resolved")
            ]),
            "alert: penicillin (severe), sulfa (moderate)"
        );
    }
}
