//! Interaction and allergy checks, as pure functions over the table's lookups (so they are
//! unit-tested natively; `store` supplies the lookups from `kv`).
//!
//! The interaction table is indexed two ways: the rows of each pair of codes, and for each
//! code or class the codes it has rows with ("partners"). A check looks up each drug's five
//! ATC prefixes among the partners (at most 5 lookups a drug), then reads only the pairs that
//! exist: O(drugs × levels) lookups plus one per interacting pair, never a table scan.

use std::collections::{BTreeMap, HashMap, HashSet};

use osler_sdk::Error;

use crate::atc;
use crate::data::Interaction;

/// What the check needs from the table.
pub trait Table {
    /// The codes that `code` (a code or class) has rows with, or empty.
    fn partners(&mut self, code: &str) -> Result<Vec<String>, Error>;
    /// The rows between `a` and `b`, in either orientation.
    fn pair(&mut self, a: &str, b: &str) -> Result<Vec<Interaction>, Error>;
}

/// A row that applies to drugs `a` and `b` (indexes into the input), oriented so that
/// `row.atc_a` is a class of drug `a`.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub a: usize,
    pub b: usize,
    pub row: Interaction,
}

/// The key of a pair in the table: the two codes in order.
pub fn pair_key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// Every row that applies to two of `codes` (normalized ATC codes, one a drug), most
/// significant first.
pub fn interactions(codes: &[&str], table: &mut impl Table) -> Result<Vec<Found>, Error> {
    // The partners of every prefix of every drug, each looked up once.
    let mut partners: HashMap<&str, HashSet<String>> = HashMap::new();
    for code in codes {
        for p in atc::prefixes(code) {
            if !partners.contains_key(p) {
                let found = table.partners(p)?;
                partners.insert(p, found.into_iter().collect());
            }
        }
    }
    let mut pairs: BTreeMap<(String, String), Vec<Interaction>> = BTreeMap::new();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for i in 0..codes.len() {
        for j in i + 1..codes.len() {
            for p in atc::prefixes(codes[i]) {
                let Some(ps) = partners.get(p) else { continue };
                for q in atc::prefixes(codes[j]) {
                    if !ps.contains(q) {
                        continue;
                    }
                    let key = pair_key(p, q);
                    if !pairs.contains_key(&key) {
                        let rows = table.pair(&key.0, &key.1)?;
                        pairs.insert(key.clone(), rows);
                    }
                    for row in &pairs[&key] {
                        let (a, b) = if row.atc_a == p && row.atc_b == q {
                            (i, j)
                        } else if row.atc_a == q && row.atc_b == p {
                            (j, i)
                        } else {
                            continue;
                        };
                        if seen.insert((i, j, row.id.clone())) {
                            out.push(Found {
                                a,
                                b,
                                row: row.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    out.sort_by(|x, y| {
        y.row
            .significance
            .unwrap_or(0)
            .cmp(&x.row.significance.unwrap_or(0))
            .then(x.a.min(x.b).cmp(&y.a.min(y.b)))
            .then(x.a.max(x.b).cmp(&y.a.max(y.b)))
            .then(x.row.id.cmp(&y.row.id))
    });
    Ok(out)
}

/// How an allergy is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Atc,
    Ingredient,
    Brand,
    FreeText,
}

/// What is known of the drug being checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    pub name: String,
    pub atc: Option<String>,
    pub ingredients: Vec<String>,
    pub brand: Option<String>,
}

/// The outcome for one allergy.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It matches, and why.
    Matches(String),
    /// It does not match.
    Clear,
    /// It could not be compared, and why.
    Unchecked(String),
}

/// Whether an allergy to `allergen` (recorded as `kind`) applies to `drug`.
pub fn allergy(drug: &Facts, kind: Kind, allergen: &str) -> Outcome {
    let allergen = allergen.trim();
    if allergen.is_empty() {
        return Outcome::Unchecked("the allergy names no substance".into());
    }
    match kind {
        Kind::FreeText => Outcome::Unchecked(format!(
            "\"{allergen}\" is free text with no code: check it yourself"
        )),
        Kind::Atc => {
            let Some(class) = atc::normalize(allergen) else {
                return Outcome::Unchecked(format!("\"{allergen}\" is not an ATC code"));
            };
            match &drug.atc {
                None => Outcome::Unchecked(format!("{} has no ATC code", drug.name)),
                Some(code) if code.starts_with(&class) => Outcome::Matches(if *code == class {
                    format!("{} is {class}", drug.name)
                } else {
                    format!("{} ({code}) is in class {class}", drug.name)
                }),
                Some(_) => Outcome::Clear,
            }
        }
        Kind::Ingredient => {
            let a = atc::fold(allergen);
            if drug.ingredients.is_empty() {
                return Outcome::Unchecked(format!("{}'s ingredients are not known", drug.name));
            }
            // `amoxicillin` matches `amoxicillin trihydrate`, and the other way round.
            let hit = drug.ingredients.iter().find(|i| {
                let i = atc::fold(i);
                i == a || i.starts_with(&format!("{a} ")) || a.starts_with(&format!("{i} "))
            });
            match hit {
                Some(i) => Outcome::Matches(format!("{} contains {i}", drug.name)),
                None => Outcome::Clear,
            }
        }
        Kind::Brand => match &drug.brand {
            None => Outcome::Unchecked(format!("{} has no brand name to compare", drug.name)),
            Some(b) if atc::fold(b) == atc::fold(allergen) => {
                Outcome::Matches(format!("{} is {b}", drug.name))
            }
            Some(_) => Outcome::Clear,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, a: &str, b: &str, sig: Option<u8>) -> Interaction {
        Interaction {
            id: id.into(),
            atc_a: a.into(),
            atc_b: b.into(),
            effect: 'A',
            significance: sig,
            evidence: Some('G'),
            comment: String::new(),
            name_a: String::new(),
            name_b: String::new(),
        }
    }

    /// A table in memory that counts its lookups.
    #[derive(Default)]
    struct Mem {
        rows: Vec<Interaction>,
        lookups: usize,
    }

    impl Table for Mem {
        fn partners(&mut self, code: &str) -> Result<Vec<String>, Error> {
            self.lookups += 1;
            let mut out = Vec::new();
            for r in &self.rows {
                if r.atc_a == code {
                    out.push(r.atc_b.clone());
                }
                if r.atc_b == code {
                    out.push(r.atc_a.clone());
                }
            }
            Ok(out)
        }
        fn pair(&mut self, a: &str, b: &str) -> Result<Vec<Interaction>, Error> {
            self.lookups += 1;
            Ok(self
                .rows
                .iter()
                .filter(|r| pair_key(&r.atc_a, &r.atc_b) == pair_key(a, b))
                .cloned()
                .collect())
        }
    }

    #[test]
    fn classes_match_codes_and_results_are_ordered() {
        let mut t = Mem {
            rows: vec![
                row("1", "B01AA", "M01A", Some(3)),
                row("2", "C07A", "B01AA03", Some(1)),
                row("3", "M01AE01", "C09A", None),
                row("4", "N06AB", "N06AF", Some(3)),
            ],
            ..Default::default()
        };
        // metoprolol, ibuprofen, warfarin, ramipril
        let codes = ["C07AB02", "M01AE01", "B01AA03", "C09AA05"];
        let found = interactions(&codes, &mut t).unwrap();
        let ids: Vec<&str> = found.iter().map(|f| f.row.id.as_str()).collect();
        assert_eq!(ids, vec!["1", "2", "3"]);
        // Oriented: row 1's B01AA is warfarin (2), M01A ibuprofen (1).
        assert_eq!((found[0].a, found[0].b), (2, 1));
        assert_eq!((found[1].a, found[1].b), (0, 2));
        // 4 drugs × 5 levels of partner lookups, at most, plus the 3 pairs.
        assert!(t.lookups <= 20 + 3, "{}", t.lookups);
    }

    #[test]
    fn a_row_within_one_class_is_reported_once_per_pair() {
        let mut t = Mem {
            rows: vec![row("9", "M01A", "M01A", Some(2))],
            ..Default::default()
        };
        let found = interactions(&["M01AE01", "M01AB05"], &mut t).unwrap();
        assert_eq!(found.len(), 1);
        assert!(interactions(&["M01AE01"], &mut t).unwrap().is_empty());
    }

    #[test]
    fn allergies() {
        let amox = Facts {
            name: "Amoxil".into(),
            atc: Some("J01CA04".into()),
            ingredients: vec!["amoxicillin trihydrate".into()],
            brand: Some("Amoxil".into()),
        };
        assert!(
            matches!(allergy(&amox, Kind::Atc, "j01c"), Outcome::Matches(r) if r.contains("class J01C"))
        );
        assert_eq!(allergy(&amox, Kind::Atc, "J01D"), Outcome::Clear);
        assert!(matches!(
            allergy(&amox, Kind::Ingredient, "Amoxicillin"),
            Outcome::Matches(_)
        ));
        assert_eq!(
            allergy(&amox, Kind::Ingredient, "amoxapine"),
            Outcome::Clear
        );
        assert!(matches!(
            allergy(&amox, Kind::Brand, "AMOXIL"),
            Outcome::Matches(_)
        ));
        assert!(matches!(
            allergy(&amox, Kind::FreeText, "penicillin?"),
            Outcome::Unchecked(_)
        ));
        assert!(matches!(
            allergy(&amox, Kind::Atc, "penicillins"),
            Outcome::Unchecked(_)
        ));
        let custom = Facts {
            name: "compounded cream".into(),
            ..Default::default()
        };
        assert!(matches!(
            allergy(&custom, Kind::Atc, "J01C"),
            Outcome::Unchecked(_)
        ));
        assert!(matches!(
            allergy(&custom, Kind::Ingredient, "x"),
            Outcome::Unchecked(_)
        ));
    }
}
