//! The seed set that ships with the plugin (`seed/resources.csv`): links to public, free
//! clinical references and patient information — Canadian guideline bodies, government health
//! sites, MedlinePlus — with titles and summaries written for this project. Each site's
//! library starts with a copy (see [`crate::store`]) that the site may edit, retire and
//! re-order.
//!
//! Columns: `id,title,url,audience,language,reviewed,conditions,atc,specialties,summary`; tags
//! are separated by `|`. Every row passes the same checks as a resource a site adds.

use osler_sdk::Error;
use serde::Deserialize;

use crate::model::{Resource, ResourceInput};

const CSV: &str = include_str!("../seed/resources.csv");

/// The seed set's version. Raise it when adding entries: a site's library takes in the seed
/// entries it lacks when its version is older.
pub const VERSION: u32 = 1;

#[derive(Deserialize)]
struct Row {
    id: String,
    title: String,
    url: String,
    audience: String,
    language: String,
    reviewed: String,
    conditions: String,
    atc: String,
    specialties: String,
    summary: String,
}

fn tags(s: &str) -> Vec<String> {
    s.split('|')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The seed entries, checked, in the file's order.
pub fn entries() -> Result<Vec<Resource>, Error> {
    let mut out = Vec::new();
    for (n, row) in csv::Reader::from_reader(CSV.as_bytes())
        .deserialize::<Row>()
        .enumerate()
    {
        let row = row.map_err(|e| Error::internal(format!("seed row {}: {e}", n + 1)))?;
        let checked = ResourceInput {
            title: row.title,
            url: row.url,
            summary: row.summary,
            conditions: tags(&row.conditions),
            atc: tags(&row.atc),
            specialties: tags(&row.specialties),
            audience: row.audience,
            language: row.language,
            reviewed: row.reviewed,
        }
        .check()
        .map_err(|e| Error::internal(format!("seed row {} ({}): {}", n + 1, row.id, e.0)))?;
        let mut r = Resource {
            id: row.id,
            seed: true,
            ..Default::default()
        };
        checked.apply(&mut r);
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_set_is_valid_with_unique_ids_and_covers_common_classes() {
        let all = entries().expect("every seed row passes the checks");
        assert!((30..=60).contains(&all.len()), "{} entries", all.len());
        let mut ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "seed ids are unique");
        assert!(all.iter().all(|r| r.id.starts_with("seed-")));
        let patient = all.iter().filter(|r| r.audience == "patient").count();
        assert!(patient >= 10, "{patient} patient-audience entries");
        // Every common class a clinic prescribes has something.
        for atc in [
            "C09AA05", "C10AA05", "A10BA02", "B01AA03", "R03AC02", "N06AB06",
        ] {
            assert!(
                all.iter().any(|r| r
                    .atc
                    .iter()
                    .any(|a| crate::model::atc_match(a, atc).is_some_and(|n| n >= 3))),
                "nothing specific for {atc}"
            );
        }
    }
}
