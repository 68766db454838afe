//! The interaction check, as pure functions over the tables' lookups (so it is unit-tested
//! natively; `store` supplies the lookups from `kv`).
//!
//! Each interaction *source* (the imported table, the clinic's supplement) is indexed two
//! ways: the rows of each pair of codes, and for each code or class the codes it has rows with
//! ("partners"). A check looks up each of a drug's codes' five ATC prefixes among the partners
//! (at most 5 lookups a code), then reads only the pairs that exist: O(codes × levels × sources)
//! lookups plus one per interacting pair, never a table scan. Partners are indexed both ways,
//! so a check of new drugs against a list ([`interactions_with`]) looks up the new drugs' codes
//! only, however long the list.
//!
//! A drug may have several codes: a combination product (lisinopril/hydrochlorothiazide,
//! `C09BA03`) is checked under its own code and each ingredient's.
//!
//! A table states one direction per row (the first code *affects* the second: `M01AE01`,
//! `B01AA03`, `A` reads "ibuprofen augments warfarin"), often has the reverse row too, and has
//! class rows (`M01A`) beside substance rows. The check reports **one alert per pair of drugs**:
//! the most significant row (then the most specific: substance rows before class rows; then the
//! first source), in that row's own direction, with every other row that applied listed for
//! audit. Rows whose effect is "no effect" (`N`, or lower case `a`, `i`, `n`: no clinical
//! effect) are never alerts.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use osler_sdk::Error;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::atc;
use crate::data::Interaction;

/// What the check needs from one source's table.
pub trait Table {
    /// The codes that `code` (a code or class) has rows with, or empty.
    fn partners(&mut self, code: &str) -> Result<Vec<String>, Error>;
    /// The rows between `a` and `b`, in either orientation.
    fn pair(&mut self, a: &str, b: &str) -> Result<Vec<Interaction>, Error>;
}

/// The key of a pair in a table: the two (human) codes in order.
pub fn pair_key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// One code a drug is checked under: its own, or an ingredient's (named).
#[derive(Clone, Debug, PartialEq)]
pub struct Code {
    /// A substance-level human ATC code.
    pub code: String,
    /// The ingredient it stands for, when the drug is a combination.
    pub via: Option<String>,
}

/// One row that applied, oriented: drug `affecting` acts on drug `affected` (indexes into the
/// input), found in source `source`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub affecting: usize,
    pub affected: usize,
    /// The codes of each drug that the row matched through.
    pub affecting_code: Code,
    pub affected_code: Code,
    pub source: usize,
    pub row: Interaction,
}

impl Hit {
    /// Substance rows before class rows: the lengths of the row's two codes.
    fn specificity(&self) -> usize {
        atc::human(&self.row.atc_a).len() + atc::human(&self.row.atc_b).len()
    }
}

/// The alert for one pair of drugs: the row chosen, and the others that applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub hit: Hit,
    pub also: Vec<Hit>,
}

/// Whether a row says there is nothing to warn about.
pub fn no_effect(row: &Interaction) -> bool {
    matches!(row.effect, 'N' | 'n' | 'a' | 'i')
}

/// Numbers in ids compare as numbers (`803` before `5212`).
fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// Which of two rows for one pair of drugs is the alert: the most significant, then the most
/// specific, then the earlier source, then the lower id.
fn better(x: &Hit, y: &Hit) -> std::cmp::Ordering {
    y.row
        .significance
        .unwrap_or(0)
        .cmp(&x.row.significance.unwrap_or(0))
        .then(y.specificity().cmp(&x.specificity()))
        .then(x.source.cmp(&y.source))
        .then(id_order(&x.row.id, &y.row.id))
}

/// Every pair of `drugs` (each a list of codes) that some row of some source applies to: one
/// alert per pair, most significant first.
pub fn interactions(
    drugs: &[Vec<Code>],
    sources: &mut [&mut dyn Table],
) -> Result<Vec<Alert>, Error> {
    interactions_with(drugs, &vec![true; drugs.len()], sources)
}

/// The pairs of `drugs` that involve at least one drug marked `new` (`new[i]` for `drugs[i]`;
/// a drug without a mark is not new): for each such pair exactly the alert [`interactions`]
/// gives it (the same row, direction, `also` and codes), in the same order, and pairs of two
/// drugs that are not new are never looked at. That is a prescriber's check: the new drug
/// against the medication list.
///
/// Partners are looked up only for the prefixes of the new drugs' codes: a table indexes them
/// both ways ([`crate::store::interaction_entries`]: a row between `a` and `b` makes each the
/// other's partner), so a pair is found from its new drug's side whichever code comes first in
/// the row, and `pair` reads the rows of both orientations. Lookups: at most 5 for each code
/// of a new drug, plus one per pair of codes or classes that has rows, whatever the length of
/// the list they are checked against.
pub fn interactions_with(
    drugs: &[Vec<Code>],
    new: &[bool],
    sources: &mut [&mut dyn Table],
) -> Result<Vec<Alert>, Error> {
    let is_new = |i: usize| new.get(i).copied().unwrap_or(false);
    // Each code's five levels, computed once.
    let levels: Vec<Vec<Vec<&str>>> = drugs
        .iter()
        .map(|d| d.iter().map(|c| atc::prefixes(&c.code)).collect())
        .collect();
    let mut hits: BTreeMap<(usize, usize), Vec<Hit>> = BTreeMap::new();
    for (s, table) in sources.iter_mut().enumerate() {
        // The partners of every prefix of every new drug's codes, each looked up once.
        // Fx hashing: the keys are short ATC codes from the reference and the request (at most
        // 200 drugs), and SipHash was a tenth of a 105-pair check.
        let mut partners: FxHashMap<&str, FxHashSet<String>> = FxHashMap::default();
        for (i, codes) in levels.iter().enumerate() {
            if !is_new(i) {
                continue;
            }
            for &p in codes.iter().flatten() {
                if let Entry::Vacant(e) = partners.entry(p) {
                    e.insert(table.partners(p)?.into_iter().collect());
                }
            }
        }
        let linked = |p: &str, q: &str| partners.get(p).is_some_and(|ps| ps.contains(q));
        // The rows of each pair of codes or classes, keyed in order (as `pair_key`).
        let mut pairs: FxHashMap<(&str, &str), Vec<Interaction>> = FxHashMap::default();
        for i in 0..drugs.len() {
            for j in i + 1..drugs.len() {
                // From the side of a new drug: `i`'s when it is new, as every pair always was.
                let from_i = is_new(i);
                if !from_i && !is_new(j) {
                    continue;
                }
                for (ci, pi) in drugs[i].iter().zip(&levels[i]) {
                    for (cj, pj) in drugs[j].iter().zip(&levels[j]) {
                        for &p in pi {
                            for &q in pj {
                                if !(if from_i { linked(p, q) } else { linked(q, p) }) {
                                    continue;
                                }
                                let key = if p <= q { (p, q) } else { (q, p) };
                                let rows = match pairs.entry(key) {
                                    Entry::Occupied(e) => e.into_mut(),
                                    Entry::Vacant(e) => e.insert(table.pair(key.0, key.1)?),
                                };
                                for row in rows.iter() {
                                    if no_effect(row) {
                                        continue;
                                    }
                                    let (ra, rb) = (atc::human(&row.atc_a), atc::human(&row.atc_b));
                                    let hit = if ra == p && rb == q {
                                        (i, j, ci, cj)
                                    } else if ra == q && rb == p {
                                        (j, i, cj, ci)
                                    } else {
                                        continue;
                                    };
                                    // A row that applied through several codes once: the first.
                                    let found = hits.entry((i, j)).or_default();
                                    if found.iter().any(|h| h.source == s && h.row.id == row.id) {
                                        continue;
                                    }
                                    found.push(Hit {
                                        affecting: hit.0,
                                        affected: hit.1,
                                        affecting_code: hit.2.clone(),
                                        affected_code: hit.3.clone(),
                                        source: s,
                                        row: row.clone(),
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let mut out: Vec<Alert> = hits
        .into_values()
        .map(|mut list| {
            list.sort_by(better);
            let hit = list.remove(0);
            Alert { hit, also: list }
        })
        .collect();
    out.sort_by(|x, y| {
        better(&x.hit, &y.hit).then(
            x.hit
                .affecting
                .min(x.hit.affected)
                .cmp(&y.hit.affecting.min(y.hit.affected)),
        )
    });
    Ok(out)
}

/// A source held in memory, built from the very entries `store` writes
/// ([`crate::store::interaction_entries`]): for tests and tools that check a whole table
/// natively.
pub struct Memory(HashMap<String, Vec<u8>>);

impl Memory {
    pub fn new(entries: Vec<(String, Vec<u8>)>) -> Memory {
        Memory(entries.into_iter().collect())
    }

    fn get<T: serde::de::DeserializeOwned + Default>(&self, key: &str) -> Result<T, Error> {
        match self.0.get(key) {
            Some(v) => serde_json::from_slice(v).map_err(|e| Error::internal(e.to_string())),
            None => Ok(T::default()),
        }
    }
}

impl Table for Memory {
    fn partners(&mut self, code: &str) -> Result<Vec<String>, Error> {
        self.get(&format!("code/{code}"))
    }

    fn pair(&mut self, a: &str, b: &str) -> Result<Vec<Interaction>, Error> {
        self.get(&format!("pair/{a}/{b}"))
    }
}

/// A row in words, in its direction: `Warfarin's effect is increased by Ibuprofen.` A row
/// that gives no effect states no direction either (in OSCAR's table such rows list the pair
/// in alphabetical order), so it is worded without one.
pub fn summary(affecting: &str, affected: &str, effect: char) -> String {
    match effect {
        'A' => format!("{affected}'s effect is increased by {affecting}."),
        'I' => format!("{affected}'s effect is decreased by {affecting}."),
        _ => format!("{affecting} and {affected} interact; the row does not say how."),
    }
}

/// Whether a row states what one drug does to the other.
pub fn directed(row: &Interaction) -> bool {
    matches!(row.effect, 'A' | 'I')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn row(id: &str, a: &str, b: &str, effect: char, sig: Option<u8>) -> Interaction {
        Interaction {
            id: id.into(),
            atc_a: a.into(),
            atc_b: b.into(),
            effect,
            significance: sig,
            evidence: Some('G'),
            comment: String::new(),
            name_a: String::new(),
            name_b: String::new(),
        }
    }

    /// A table in memory, indexed like the stored ones (by human codes), counting lookups.
    #[derive(Default)]
    pub struct Mem {
        pub rows: Vec<Interaction>,
        pub lookups: usize,
    }

    impl Table for Mem {
        fn partners(&mut self, code: &str) -> Result<Vec<String>, Error> {
            self.lookups += 1;
            let mut out = Vec::new();
            for r in &self.rows {
                let (a, b) = (atc::human(&r.atc_a), atc::human(&r.atc_b));
                if a == code {
                    out.push(b.to_string());
                }
                if b == code {
                    out.push(a.to_string());
                }
            }
            Ok(out)
        }
        fn pair(&mut self, a: &str, b: &str) -> Result<Vec<Interaction>, Error> {
            self.lookups += 1;
            Ok(self
                .rows
                .iter()
                .filter(|r| pair_key(atc::human(&r.atc_a), atc::human(&r.atc_b)) == pair_key(a, b))
                .cloned()
                .collect())
        }
    }

    /// A combination product, under its own code and each ingredient's.
    fn lisinopril_hydrochlorothiazide() -> Vec<Code> {
        vec![
            Code {
                code: "C09BA03".into(),
                via: None,
            },
            Code {
                code: "C09AA03".into(),
                via: Some("lisinopril".into()),
            },
            Code {
                code: "C03AA03".into(),
                via: Some("hydrochlorothiazide".into()),
            },
        ]
    }

    fn drugs(codes: &[&str]) -> Vec<Vec<Code>> {
        codes
            .iter()
            .map(|c| {
                vec![Code {
                    code: c.to_string(),
                    via: None,
                }]
            })
            .collect()
    }

    #[test]
    fn one_alert_per_pair_the_most_significant_in_its_own_direction() {
        // Warfarin and ibuprofen as a real table has them: a class row, a substance row and
        // the reverse substance row.
        let mut t = Mem {
            rows: vec![
                row("3043", "M01A", "B01AA03", 'A', Some(2)),
                row("3240", "M01AE01", "B01AA03", 'A', Some(2)),
                row("28036", "B01AA03", "M01AE01", 'U', Some(3)),
                row("9", "C07A", "B01AA03", 'N', Some(3)),
            ],
            ..Default::default()
        };
        // metoprolol, ibuprofen, warfarin
        let found =
            interactions(&drugs(&["C07AB02", "M01AE01", "B01AA03"]), &mut [&mut t]).unwrap();
        assert_eq!(found.len(), 1, "the no-effect row is no alert: {found:?}");
        let a = &found[0];
        assert_eq!(a.hit.row.id, "28036");
        assert_eq!((a.hit.affecting, a.hit.affected), (2, 1));
        let also: Vec<&str> = a.also.iter().map(|h| h.row.id.as_str()).collect();
        assert_eq!(also, vec!["3240", "3043"], "substance row before class row");
        // Same significance: the substance row wins over the class row, in its direction.
        t.rows.remove(2);
        let found = interactions(&drugs(&["B01AA03", "M01AE01"]), &mut [&mut t]).unwrap();
        assert_eq!(found[0].hit.row.id, "3240");
        assert_eq!((found[0].hit.affecting, found[0].hit.affected), (1, 0));
        assert_eq!(
            summary("Ibuprofen", "Warfarin", found[0].hit.row.effect),
            "Warfarin's effect is increased by Ibuprofen."
        );
        assert_eq!(
            summary("Warfarin", "Ibuprofen", 'U'),
            "Warfarin and Ibuprofen interact; the row does not say how."
        );
    }

    #[test]
    fn sources_are_layered_and_the_most_significant_wins() {
        let mut imported = Mem {
            rows: vec![row("1", "J01FA09", "B01AA03", 'A', Some(2))],
            ..Default::default()
        };
        let mut supplement = Mem {
            rows: vec![
                row("s1", "J01FA09", "B01AA03", 'A', Some(3)),
                row("s2", "G04BE03", "C01DA", 'A', Some(3)),
            ],
            ..Default::default()
        };
        let found = interactions(
            &drugs(&["B01AA03", "J01FA09", "G04BE03", "C01DA02"]),
            &mut [&mut imported, &mut supplement],
        )
        .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].hit.source, found[0].hit.row.id.as_str()),
            (1, "s1")
        );
        assert_eq!(found[0].also[0].source, 0);
        assert_eq!(found[1].hit.row.id, "s2");
    }

    #[test]
    fn a_combination_is_checked_under_each_ingredient_and_lookups_stay_bounded() {
        let mut t = Mem {
            rows: vec![
                row("1", "C03AA", "N05AN01", 'A', Some(3)),
                row("2", "N06AB", "N06AF", 'A', Some(3)),
            ],
            ..Default::default()
        };
        let combo = lisinopril_hydrochlorothiazide();
        let lithium = drugs(&["N05AN01"]).remove(0);
        let found = interactions(&[combo, lithium], &mut [&mut t]).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].hit.affecting_code.via.as_deref(),
            Some("hydrochlorothiazide")
        );
        // 4 codes × 5 levels of partner lookups, at most, plus the pair.
        assert!(t.lookups <= 20 + 1, "{}", t.lookups);
    }

    #[test]
    fn a_row_within_one_class_is_reported_once_per_pair_and_vet_codes_match() {
        let mut t = Mem {
            rows: vec![
                row("9", "M01A", "M01A", 'A', Some(2)),
                row("10", "QA14AA02", "B01AA03", 'A', Some(3)),
            ],
            ..Default::default()
        };
        let found = interactions(&drugs(&["M01AE01", "M01AB05"]), &mut [&mut t]).unwrap();
        assert_eq!(found.len(), 1);
        assert!(
            interactions(&drugs(&["M01AE01"]), &mut [&mut t])
                .unwrap()
                .is_empty()
        );
        let found = interactions(&drugs(&["B01AA03", "A14AA02"]), &mut [&mut t]).unwrap();
        assert_eq!(found[0].hit.row.id, "10");
        assert_eq!(found[0].hit.affecting, 1);
    }

    /// Rows in both orientations, class and substance rows, a no-effect row and a combination's
    /// ingredient rows: warfarin and the NSAIDs, a beta blocker and diltiazem, SSRIs and MAO
    /// inhibitors, lithium and thiazides.
    fn both_ways() -> Vec<Interaction> {
        vec![
            row("3043", "M01A", "B01AA03", 'A', Some(2)),
            row("3240", "M01AE01", "B01AA03", 'A', Some(2)),
            row("28036", "B01AA03", "M01AE01", 'U', Some(3)),
            row("50", "B01AA", "M01A", 'I', Some(1)),
            row("9", "C07A", "B01AA03", 'N', Some(3)),
            row("60", "C07A", "C08DB01", 'A', Some(2)),
            row("61", "C08DB01", "C07AB02", 'A', Some(3)),
            row("70", "N06AB", "N06AF", 'A', Some(3)),
            row("71", "N06AF", "N06AB", 'A', Some(3)),
            row("80", "C03AA", "N05AN01", 'A', Some(3)),
            row("81", "N05AN01", "C03A", 'U', Some(1)),
            row("82", "C09", "N05AN", 'A', None),
            row("90", "M01A", "M01A", 'A', Some(1)),
        ]
    }

    /// Metoprolol, ibuprofen, warfarin, diltiazem, sertraline, phenelzine, lithium,
    /// lisinopril/hydrochlorothiazide, naproxen.
    fn medication_list() -> Vec<Vec<Code>> {
        let mut list = drugs(&[
            "C07AB02", "M01AE01", "B01AA03", "C08DB01", "N06AB06", "N06AF03", "N05AN01",
        ]);
        list.push(lisinopril_hydrochlorothiazide());
        list.extend(drugs(&["M01AE02"]));
        list
    }

    #[test]
    fn the_check_against_a_list_is_the_all_pairs_check_less_the_pairs_within_the_list() {
        let list = medication_list();
        let n = list.len();
        let rows = both_ways();
        // The supplement restates some pairs, so that sources are layered too.
        let supplement = vec![
            row("s1", "B01AA03", "M01AE01", 'A', Some(3)),
            row("s2", "N05AN01", "C03AA03", 'I', Some(2)),
        ];
        // The two sources, fresh for each check.
        let tables = || {
            let table = |rows: &Vec<Interaction>| Mem {
                rows: rows.clone(),
                ..Default::default()
            };
            (table(&rows), table(&supplement))
        };
        let check = |new: &[bool]| {
            let (mut a, mut b) = tables();
            interactions_with(&list, new, &mut [&mut a, &mut b]).unwrap()
        };
        let all = check(&vec![true; n]);
        let (mut a, mut b) = tables();
        assert_eq!(all, interactions(&list, &mut [&mut a, &mut b]).unwrap());
        assert_eq!(all.len(), 6, "{all:?}");
        let mut sets: Vec<Vec<bool>> = (0..n).map(|i| (0..n).map(|j| j == i).collect()).collect();
        sets.push((0..n).map(|j| j % 2 == 0).collect());
        sets.push((0..n).map(|j| j >= n - 3).collect());
        sets.push(vec![false; n]);
        for new in sets {
            let want: Vec<Alert> = all
                .iter()
                .filter(|a| new[a.hit.affecting] || new[a.hit.affected])
                .cloned()
                .collect();
            assert_eq!(check(&new), want, "new: {new:?}");
        }
        // Marks missing at the end are not new.
        assert_eq!(
            check(&[true]),
            check(&[&[true][..], &vec![false; n - 1]].concat())
        );
    }

    #[test]
    fn the_lookups_of_a_check_against_a_list_do_not_grow_with_the_list() {
        let list = medication_list();
        // Each table pair of codes or classes is read at most once.
        let pairs: HashSet<(String, String)> = both_ways()
            .iter()
            .map(|r| pair_key(atc::human(&r.atc_a), atc::human(&r.atc_b)))
            .collect();
        for new in [0, 2, 7] {
            let new_codes = list[new].len();
            let mut lookups = Vec::new();
            for copies in [1, 3] {
                // The new drug, then the list (`copies` times over, less the new drug).
                let mut drugs = vec![list[new].clone()];
                for _ in 0..copies {
                    drugs.extend(
                        list.iter()
                            .enumerate()
                            .filter(|&(i, _)| i != new)
                            .map(|(_, d)| d.clone()),
                    );
                }
                let marks: Vec<bool> = (0..drugs.len()).map(|i| i == 0).collect();
                let mut t = Mem {
                    rows: both_ways(),
                    ..Default::default()
                };
                interactions_with(&drugs, &marks, &mut [&mut t]).unwrap();
                assert!(
                    t.lookups <= new_codes * 5 + pairs.len(),
                    "drug {new}: {} lookups",
                    t.lookups
                );
                lookups.push(t.lookups);
                // All pairs: every drug's prefixes are looked up.
                let mut all = Mem {
                    rows: both_ways(),
                    ..Default::default()
                };
                interactions(&drugs, &mut [&mut all]).unwrap();
                assert!(all.lookups > t.lookups, "{} ≤ {}", all.lookups, t.lookups);
            }
            assert_eq!(lookups[0], lookups[1], "drug {new}: {lookups:?}");
        }
    }
}
