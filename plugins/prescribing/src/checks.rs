//! The checks run on every prescribe, through the drug reference's interface
//! (`osler:drugref/lookup`): interactions with the patient's active medications, the
//! patient's allergies, and clinicians' posts on the drug.
//!
//! When the drug reference is not enabled at the site, or fails, the checks say so plainly
//! (`status: unchecked`) and the prescription can still be written.

use osler_sdk::Error;

use crate::bindings::osler::drugref::lookup;
use crate::model::{Allergy, Checks, Drug, PostNote, Prescription, Warning};

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

fn effect_word(e: lookup::Effect) -> &'static str {
    match e {
        lookup::Effect::Augments => "augments",
        lookup::Effect::Inhibits => "inhibits",
        lookup::Effect::NoEffect => "no effect",
        lookup::Effect::Unknown => "effect unknown",
    }
}

/// Checks `drug` against the `others` (active medications) and `allergies` (the patient's
/// active ones). `threshold` (1 to 3) hides interactions less significant than it, except
/// that major ones are always shown.
pub fn run(
    drug: &Drug,
    others: &[&Prescription],
    allergies: &[&Allergy],
    threshold: i64,
    viewer: &str,
) -> Checks {
    match try_run(drug, others, allergies, threshold, viewer) {
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

fn try_run(
    drug: &Drug,
    others: &[&Prescription],
    allergies: &[&Allergy],
    threshold: i64,
    viewer: &str,
) -> Result<Checks, Error> {
    let mut checks = Checks {
        status: "checked".into(),
        ..Checks::default()
    };
    let mut drugs = vec![to_lookup("new", drug)];
    drugs.extend(others.iter().map(|p| to_lookup(&p.id, &p.drug)));
    let report = lookup::interactions(&drugs)?;
    for lookup::NotChecked { key, reason: why } in &report.unchecked {
        if key == "new" {
            checks
                .not_checked
                .push(format!("interactions of {}: {why}", drug.name));
        } else if let Some(p) = others.iter().find(|p| &p.id == key) {
            checks
                .not_checked
                .push(format!("interactions with {}: {why}", p.drug.name));
        }
    }
    for i in report.interactions {
        let other = if i.drug_a == "new" {
            &i.drug_b
        } else if i.drug_b == "new" {
            &i.drug_a
        } else {
            continue; // between two medications already on the list
        };
        let Some(other) = others.iter().find(|p| &p.id == other) else {
            continue;
        };
        let (word, level) = significance_word(i.significance);
        if level != 0 && level < 3 && i64::from(level) < threshold {
            checks.hidden += 1;
            continue;
        }
        checks.warnings.push(Warning {
            kind: "interaction".into(),
            severity: word.into(),
            with: other.drug.name.clone(),
            message: format!(
                "{} ({}) with {} ({}): {}. {}",
                drug.name,
                i.atc_a,
                other.drug.name,
                i.atc_b,
                effect_word(i.effect),
                i.comment
            )
            .trim()
            .to_string(),
            blocking: level == 3,
        });
    }
    let list: Vec<lookup::Allergy> = allergies
        .iter()
        .map(|a| lookup::Allergy {
            key: a.id.clone(),
            kind: match a.kind.as_str() {
                "atc" => lookup::AllergenKind::Atc,
                "ingredient" => lookup::AllergenKind::Ingredient,
                "brand" => lookup::AllergenKind::Brand,
                _ => lookup::AllergenKind::FreeText,
            },
            allergen: a.allergen.clone(),
        })
        .collect();
    let report = lookup::allergy_warnings(&to_lookup("new", drug), &list)?;
    for w in report.warnings {
        let Some(a) = allergies.iter().find(|a| a.id == w.allergy) else {
            continue;
        };
        checks.warnings.push(Warning {
            kind: "allergy".into(),
            severity: a.severity.clone(),
            with: a.allergen.clone(),
            message: format!(
                "Allergy to {} ({}{}): {}",
                a.allergen,
                a.severity,
                if a.reaction.is_empty() {
                    String::new()
                } else {
                    format!(", {}", a.reaction)
                },
                w.reason
            ),
            // A recorded "no reaction" is worth seeing but is no reason to stop.
            blocking: a.severity != "no-reaction",
        });
    }
    for lookup::NotChecked { key, reason: why } in report.unchecked {
        if let Some(a) = allergies.iter().find(|a| a.id == key) {
            checks
                .not_checked
                .push(format!("allergy to {}: {why}", a.allergen));
        }
    }
    // Blocking first, then by the order found (interactions most significant first).
    checks.warnings.sort_by_key(|w| !w.blocking);
    if let Some(code) = &drug.atc {
        for p in lookup::posts(std::slice::from_ref(code), viewer)? {
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
    checks.message = match (checks.warnings.len(), checks.not_checked.len()) {
        (0, 0) => "Checked: no interactions or allergies found.".into(),
        (0, n) => format!(
            "Checked: no interactions or allergies found; {n} item(s) could not be checked."
        ),
        (w, 0) => format!("Checked: {w} warning(s)."),
        (w, n) => format!("Checked: {w} warning(s); {n} item(s) could not be checked."),
    };
    Ok(checks)
}
