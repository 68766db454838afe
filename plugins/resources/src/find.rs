//! Finding resources in a site's library: the text search and tag filter of the pages and
//! the API, and the lookups by drug class and by condition that other plugins and the chart
//! panel use. Pure functions of the library (see [`crate::model`] for matching and scoring).

use crate::model::{self, Resource};

/// Most results a lookup by drug class or condition returns.
pub const LOOKUP_LIMIT: usize = 50;

/// What to look for.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Words to find (empty: browse everything in the site's order).
    pub text: String,
    /// A tag filter (`atc:C09A`, `condition:E11`, `specialty:cardiology` or a bare tag).
    pub tag: String,
    /// `clinician` or `patient`; none for both.
    pub audience: Option<String>,
    /// Include retired resources (the manage page).
    pub retired: bool,
}

fn audience_ok(r: &Resource, audience: Option<&str>) -> bool {
    audience.is_none_or(|a| r.audience == a)
}

/// Pinned first, then the best match, then the site's order (a stable sort of the library's
/// order).
fn ranked(mut found: Vec<(usize, &Resource, u32)>) -> Vec<(&Resource, u32)> {
    found.sort_by(|a, b| {
        b.1.pinned
            .cmp(&a.1.pinned)
            .then(b.2.cmp(&a.2))
            .then(a.0.cmp(&b.0))
    });
    found.into_iter().map(|(_, r, s)| (r, s)).collect()
}

/// The text search and browse: every resource whose tags pass the filter and whose text
/// matches every word (with its score; 0 when browsing), ranked.
pub fn search<'a>(items: &'a [Resource], q: &Query) -> Vec<(&'a Resource, u32)> {
    let browse = model::words(&q.text).is_empty();
    let found = items
        .iter()
        .enumerate()
        .filter(|(_, r)| q.retired || !r.retired)
        .filter(|(_, r)| audience_ok(r, q.audience.as_deref()))
        .filter(|(_, r)| q.tag.trim().is_empty() || model::tag_matches(r, &q.tag))
        .filter_map(|(i, r)| {
            if browse {
                Some((i, r, 0))
            } else {
                model::score(r, &q.text).map(|s| (i, r, s))
            }
        })
        .collect();
    ranked(found)
}

/// Resources about the drug class of `atc` (an ATC code or class, already checked), ranked
/// by pinned, then the most specific tag; at most [`LOOKUP_LIMIT`]. Never retired ones.
pub fn for_atc<'a>(items: &'a [Resource], atc: &str, audience: Option<&str>) -> Vec<&'a Resource> {
    let found = items
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.retired && audience_ok(r, audience))
        .filter_map(|(i, r)| {
            r.atc
                .iter()
                .filter_map(|t| model::atc_match(t, atc))
                .max()
                .map(|s| (i, r, s as u32))
        })
        .collect();
    ranked(found)
        .into_iter()
        .take(LOOKUP_LIMIT)
        .map(|(r, _)| r)
        .collect()
}

/// Resources about a condition (an ICD-10-CA code or a description), ranked as [`for_atc`].
pub fn for_condition<'a>(
    items: &'a [Resource],
    condition: &str,
    audience: Option<&str>,
) -> Vec<&'a Resource> {
    let found = items
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.retired && audience_ok(r, audience))
        .filter_map(|(i, r)| {
            model::condition_match(&r.conditions, condition).map(|s| (i, r, s as u32))
        })
        .collect();
    ranked(found)
        .into_iter()
        .take(LOOKUP_LIMIT)
        .map(|(r, _)| r)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, title: &str, atc: &[&str], conditions: &[&str], audience: &str) -> Resource {
        Resource {
            id: id.into(),
            title: title.into(),
            url: "https://example.org/".into(),
            atc: atc.iter().map(|s| s.to_string()).collect(),
            conditions: conditions.iter().map(|s| s.to_string()).collect(),
            audience: audience.into(),
            language: "en".into(),
            reviewed: "2026-01-01".into(),
            ..Default::default()
        }
    }

    fn ids(found: &[&Resource]) -> Vec<String> {
        found.iter().map(|r| r.id.clone()).collect()
    }

    #[test]
    fn drug_class_lookup_prefers_pinned_then_specific_then_order_and_skips_retired() {
        let mut items = vec![
            item("broad", "All drugs", &["C"], &[], "clinician"),
            item("acei", "ACE inhibitors", &["C09A"], &[], "clinician"),
            item("raas", "RAAS agents", &["C09"], &[], "clinician"),
            item("statin", "Statins", &["C10AA"], &[], "clinician"),
            item("handout", "Blood pressure pills", &["C09"], &[], "patient"),
            item("old", "Old ACE page", &["C09AA"], &[], "clinician"),
        ];
        items[5].retired = true;
        assert_eq!(
            ids(&for_atc(&items, "C09AA05", None)),
            ["acei", "raas", "handout", "broad"]
        );
        assert_eq!(
            ids(&for_atc(&items, "C09AA05", Some("patient"))),
            ["handout"]
        );
        // A class finds what is tagged inside it, and the groups it lies in.
        assert_eq!(
            ids(&for_atc(&items, "C09", Some("clinician"))),
            ["acei", "raas", "broad"]
        );
        assert_eq!(ids(&for_atc(&items, "C", None)), ["broad"]);
        items[2].pinned = true;
        assert_eq!(
            ids(&for_atc(&items, "C09AA05", Some("clinician"))),
            ["raas", "acei", "broad"]
        );
    }

    #[test]
    fn condition_lookup_by_code_or_words() {
        let items = vec![
            item(
                "dm",
                "Diabetes guideline",
                &[],
                &["E11", "diabetes"],
                "clinician",
            ),
            item(
                "htn",
                "Hypertension",
                &[],
                &["I10", "hypertension"],
                "clinician",
            ),
            item("t2", "Type 2 handout", &[], &["type 2 diabetes"], "patient"),
        ];
        assert_eq!(ids(&for_condition(&items, "E11.9", None)), ["dm"]);
        assert_eq!(
            ids(&for_condition(&items, "Type 2 diabetes mellitus", None)),
            ["t2", "dm"]
        );
        assert!(for_condition(&items, "asthma", None).is_empty());
    }

    #[test]
    fn search_ranks_pinned_then_score_then_order() {
        let mut items = vec![
            item("a", "Guide to heart disease", &[], &[], "clinician"),
            item("b", "Heart failure", &[], &[], "clinician"),
            item("c", "Lipids", &[], &["heart disease"], "clinician"),
        ];
        items[2].summary = "About the heart.".into();
        let q = |text: &str| Query {
            text: text.into(),
            ..Default::default()
        };
        let order = |found: Vec<(&Resource, u32)>| -> Vec<String> {
            found.iter().map(|(r, _)| r.id.clone()).collect()
        };
        assert_eq!(order(search(&items, &q("heart"))), ["a", "b", "c"]);
        assert_eq!(order(search(&items, &q("heart disease"))), ["a", "c"]);
        items[2].pinned = true;
        assert_eq!(order(search(&items, &q("heart"))), ["c", "a", "b"]);
        // Browsing lists everything: pinned first, then the site's order.
        assert_eq!(order(search(&items, &q(""))), ["c", "a", "b"]);
        items[0].retired = true;
        assert_eq!(order(search(&items, &q(""))), ["c", "b"]);
        let with_retired = Query {
            retired: true,
            ..Default::default()
        };
        assert_eq!(order(search(&items, &with_retired)), ["c", "a", "b"]);
    }
}
