//! The checks run on every prescribe, through the drug reference's interface
//! (`osler:drugref/lookup`): interactions with the patient's active medications — their own
//! and those other facilities share through CAISI ([`crate::remote`]) —, the patient's
//! allergies, and clinicians' posts on the drug.
//!
//! When the drug reference is not enabled at the site, or fails, the checks say so plainly
//! (`status: unchecked`) and the prescription can still be written.

use osler_sdk::Error;

use crate::bindings::osler::caisi::remote::RemoteMedication;
use crate::bindings::osler::drugref::lookup;
use crate::model::{Allergy, Checks, Drug, PostNote, Warning};
use crate::remote::{self, Shared};

pub const UNCHECKED: &str = "Interactions and allergies were NOT checked";

fn to_lookup(key: &str, d: &Drug) -> lookup::Drug {
    lookup::Drug {
        key: key.to_string(),
        name: d.name.clone(),
        din: d.din.clone(),
        atc: d.atc.clone(),
        ingredients: d.ingredients.clone(),
    }
}

fn significance_word(s: Option<lookup::Significance>) -> (&'static str, u8) {
    match s {
        Some(lookup::Significance::Major) => ("major", 3),
        Some(lookup::Significance::Moderate) => ("moderate", 2),
        Some(lookup::Significance::Minor) => ("minor", 1),
        None => ("unknown", 0),
    }
}

/// The severity a reaction really had: a reaction described as anaphylaxis, angioedema or a
/// severe skin reaction is severe, whatever severity was picked.
pub fn effective_severity(a: &Allergy) -> &str {
    let r = a.reaction.to_lowercase();
    let severe = [
        "anaphyla",
        "angioedema",
        "stevens",
        "sjs",
        "toxic epidermal",
        "dress",
        "airway",
    ];
    if a.severity != "no-reaction" && severe.iter().any(|w| r.contains(w)) {
        "severe"
    } else {
        a.severity.as_str()
    }
}

/// Whether a cross-sensitivity caution needs an override reason: a high risk after a moderate
/// or severe reaction, a moderate risk after a severe one.
pub fn caution_blocks(risk: lookup::Risk, severity: &str) -> bool {
    match risk {
        lookup::Risk::High => matches!(severity, "moderate" | "severe"),
        lookup::Risk::Moderate => severity == "severe",
        lookup::Risk::Low => false,
    }
}

fn risk_word(r: lookup::Risk) -> &'static str {
    match r {
        lookup::Risk::Low => "low",
        lookup::Risk::Moderate => "moderate",
        lookup::Risk::High => "high",
    }
}

fn kind_of(a: &Allergy) -> lookup::AllergenKind {
    match a.kind.as_str() {
        "atc" => lookup::AllergenKind::Atc,
        "ingredient" => lookup::AllergenKind::Ingredient,
        "brand" => lookup::AllergenKind::Brand,
        _ => lookup::AllergenKind::FreeText,
    }
}

/// How the drug reference understands each allergy (for the chart and when one is recorded);
/// when the reference is not available, each says so.
pub fn describe(allergies: &[Allergy]) -> Vec<serde_json::Value> {
    let list: Vec<lookup::Allergy> = allergies
        .iter()
        .map(|a| lookup::Allergy {
            key: a.id.clone(),
            kind: kind_of(a),
            allergen: a.allergen.clone(),
        })
        .collect();
    match lookup::describe_allergies(&list) {
        Ok(found) => found
            .into_iter()
            .map(|i| serde_json::json!({"checked": i.checked, "description": i.description}))
            .collect(),
        Err(e) => allergies
            .iter()
            .map(|_| {
                serde_json::json!({"checked": false, "description": format!("the drug reference is not available ({})", e.message())})
            })
            .collect(),
    }
}

/// Checks `drug` against the `others` (the id and drug of each active medication), the
/// medications other facilities share (`shared`) and `allergies` (the patient's active ones).
/// `threshold` (1 to 3) hides interactions less significant than it, except that major ones
/// are always shown.
pub fn run(
    drug: &Drug,
    others: &[(&str, &Drug)],
    shared: &Shared,
    allergies: &[&Allergy],
    threshold: i64,
) -> Checks {
    match try_run(drug, others, shared, allergies, threshold) {
        Ok(c) => c,
        Err(e) => Checks {
            status: "unchecked".into(),
            message: format!(
                "{UNCHECKED}: the drug reference is not available ({}: {}). Check them yourself.",
                e.code(),
                e.message()
            ),
            ..Checks::default()
        },
    }
}

/// The key a shared medication is checked under (never a local medication's id).
fn remote_key(i: usize) -> String {
    format!("shared:{i}")
}

fn remote_lookup(key: String, m: &RemoteMedication) -> lookup::Drug {
    lookup::Drug {
        key,
        name: m.drug.clone(),
        din: m.din.clone(),
        atc: m.atc.clone(),
        ingredients: vec![],
    }
}

fn try_run(
    drug: &Drug,
    others: &[(&str, &Drug)],
    shared: &Shared,
    allergies: &[&Allergy],
    threshold: i64,
) -> Result<Checks, Error> {
    let mut checks = Checks {
        status: "checked".into(),
        ..Checks::default()
    };
    let new = to_lookup("new", drug);
    // What the new drug is checked against: the patient's active medications, then those
    // other facilities share.
    let mut against: Vec<lookup::Drug> = others.iter().map(|(id, d)| to_lookup(id, d)).collect();
    // Shared medications with an ATC code are checked like the patient's own; the others
    // are said to be unchecked.
    let mut remote_named: Vec<(String, String)> = Vec::new();
    match shared {
        Shared::NotEnabled => {}
        Shared::Failed(m) => checks.notices.push(remote::failure_notice(m)),
        Shared::Medications(list) => {
            for (i, m) in list.iter().enumerate() {
                let label = remote::label(m);
                if m.atc.as_deref().is_some_and(|a| !a.trim().is_empty()) {
                    against.push(remote_lookup(remote_key(i), m));
                    remote_named.push((remote_key(i), label));
                } else {
                    checks
                        .not_checked
                        .push(format!("{label}: not checked (no ATC code)"));
                }
            }
        }
    }
    let shared_label = |key: &str| {
        remote_named
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, l)| l.clone())
    };
    // Only the pairs with the new drug: the reference looks up the new drug's codes alone.
    let report = lookup::interactions_with(std::slice::from_ref(&new), &against)?;
    for lookup::NotChecked { key, reason: why } in &report.unchecked {
        if key == "new" {
            checks
                .not_checked
                .push(format!("interactions of {}: {why}", drug.name));
        } else if let Some((_, d)) = others.iter().find(|(id, _)| id == key) {
            checks
                .not_checked
                .push(format!("interactions with {}: {why}", d.name));
        } else if let Some(label) = shared_label(key) {
            checks
                .not_checked
                .push(format!("interactions with {label}: {why}"));
        }
    }
    for i in report.interactions {
        let other = if i.affecting == "new" {
            &i.affected
        } else if i.affected == "new" {
            &i.affecting
        } else {
            continue; // two medications already on the list: `interactions-with` skips them
        };
        // A local medication, or one another facility shares (named with where it comes
        // from and how old the information is).
        let (with, message) = match others.iter().find(|(id, _)| id == other) {
            Some((_, d)) => (
                d.name.clone(),
                format!("{} {}", i.summary, i.comment).trim().to_string(),
            ),
            None => match shared_label(other) {
                Some(label) => (
                    label.clone(),
                    format!("{label}: {} {}", i.summary, i.comment)
                        .trim()
                        .to_string(),
                ),
                None => continue,
            },
        };
        let (word, level) = significance_word(i.significance);
        if level != 0 && level < 3 && i64::from(level) < threshold {
            checks.hidden += 1;
            continue;
        }
        checks.warnings.push(Warning {
            kind: "interaction".into(),
            severity: word.into(),
            with,
            message,
            blocking: level == 3,
            source: i.source.clone(),
            source_id: i.source_id.clone(),
            also: i
                .also
                .iter()
                .map(|a| {
                    format!(
                        "{}, row {} ({}): {}",
                        a.source,
                        a.source_id,
                        significance_word(a.significance).0,
                        a.summary
                    )
                })
                .collect(),
            risk: None,
        });
    }
    let list: Vec<lookup::Allergy> = allergies
        .iter()
        .map(|a| lookup::Allergy {
            key: a.id.clone(),
            kind: kind_of(a),
            allergen: a.allergen.clone(),
        })
        .collect();
    // No active allergy, nothing to ask: the drug reference's answer would be empty.
    let report = if list.is_empty() {
        lookup::AllergyReport {
            warnings: Vec::new(),
            unchecked: Vec::new(),
        }
    } else {
        lookup::allergy_warnings(&new, &list)?
    };
    for w in report.warnings {
        let Some(a) = allergies.iter().find(|a| a.id == w.allergy) else {
            continue;
        };
        let reaction = if a.reaction.is_empty() {
            String::new()
        } else {
            format!(", {}", a.reaction)
        };
        let severity = effective_severity(a);
        match w.match_ {
            lookup::AllergyMatch::Direct => checks.warnings.push(Warning {
                kind: "allergy".into(),
                severity: a.severity.clone(),
                with: a.allergen.clone(),
                message: format!(
                    "Allergy to {} ({}{reaction}): {}",
                    a.allergen, a.severity, w.reason
                ),
                // A recorded "no reaction" is worth seeing but is no reason to stop.
                blocking: a.severity != "no-reaction",
                risk: None,
                ..Warning::default()
            }),
            lookup::AllergyMatch::CrossSensitivity(risk) => checks.warnings.push(Warning {
                kind: "cross-sensitivity".into(),
                severity: "caution".into(),
                with: a.allergen.clone(),
                message: format!(
                    "Caution, allergy to {} ({}{reaction}): {}",
                    a.allergen, a.severity, w.reason
                ),
                blocking: caution_blocks(risk, severity),
                risk: Some(risk_word(risk).into()),
                ..Warning::default()
            }),
        }
    }
    for lookup::NotChecked { key, reason: why } in report.unchecked {
        if let Some(a) = allergies.iter().find(|a| a.id == key) {
            checks
                .not_checked
                .push(format!("allergy to {} NOT checked: {why}", a.allergen));
        }
    }
    // Blocking first, then by the order found (interactions most significant first).
    checks.warnings.sort_by_key(|w| !w.blocking);
    if let Some(code) = &drug.atc {
        for p in lookup::posts(std::slice::from_ref(code))? {
            checks.posts.push(PostNote {
                kind: match p.kind {
                    lookup::PostKind::Warning => "warning",
                    lookup::PostKind::Bulletin => "bulletin",
                    lookup::PostKind::Comment => "comment",
                }
                .into(),
                title: p.title,
                body: p.body,
                author_name: p.author_name,
                trusted: p.trusted,
            });
        }
    }
    // Never "no allergies found" while something could not be checked.
    checks.message = match (
        checks.warnings.len(),
        checks.not_checked.len() + checks.notices.len(),
    ) {
        (0, 0) => "Checked: no interactions or allergies found.".into(),
        (0, n) => format!(
            "Checked: no warnings, but {n} item(s) could NOT be checked: check them yourself."
        ),
        (w, 0) => format!("Checked: {w} warning(s)."),
        (w, n) => format!(
            "Checked: {w} warning(s); {n} item(s) could NOT be checked: check them yourself."
        ),
    };
    Ok(checks)
}
