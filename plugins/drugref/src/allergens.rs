//! Allergy checks that know what clinicians type: a maintained table of allergen names and
//! groups (penicillins, cephalosporins, sulfonamide antibiotics, NSAIDs, opioids, …) with the
//! ATC classes and ingredients each covers, and cross-sensitivity rules between groups graded
//! by risk.
//!
//! An allergy is *resolved* first ([`resolve`]): `penicillin` or `PCN` names the group
//! Penicillins; `amoxicillin` is a substance (its ATC code comes from the product table) that
//! belongs to that group; `J01C` is an ATC class; a brand resolves to its ingredients. What
//! cannot be resolved is never "clear": it comes back *unchecked*, with the reason. A drug is
//! then *matched* ([`check`]) against the resolved allergen:
//!
//! - **match**: the drug is, contains, or belongs to what the allergy names (amoxicillin with
//!   a penicillin allergy);
//! - **caution**: a cross-sensitivity, with its risk: another member of the allergen's own group
//!   (the group's `within` rule: amoxicillin allergy, penicillin V), or a member of a group the
//!   allergen's group has a `cross` rule with (penicillins → first-generation cephalosporins,
//!   moderate). The importer (prescribing) decides what a caution needs, from the risk and the
//!   severity of the recorded reaction.
//!
//! The table is a CSV file in "long" form, one fact a line, so that a pharmacist can maintain
//! it in a spreadsheet: `"group","field","value","risk","note"`, where `field` is
//! `title` (the group's name), `name` (what a clinician may type for the group), `atc` (a
//! member class or code), `except` (a class or code left out), `ingredient` (a member by
//! ingredient name), `within` (the risk between two members), `cross` (`value` another group,
//! with its risk) or `non-drug` (the group is not a drug: `note` says why it is not checked).
//! The seed table is `seed/allergens.csv`; an administrator imports a replacement like the
//! other tables.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::atc;
use crate::data::LineError;

/// How likely a cross-sensitivity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Moderate,
    High,
}

impl Risk {
    fn parse(s: &str) -> Option<Risk> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Some(Risk::Low),
            "moderate" => Some(Risk::Moderate),
            "high" => Some(Risk::High),
            _ => None,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Moderate => "moderate",
            Risk::High => "high",
        }
    }
}

/// A risk and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub risk: Risk,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cross {
    /// Another group's id.
    pub to: String,
    pub risk: Risk,
    pub note: String,
}

/// A group of drugs an allergy can name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub title: String,
    /// Folded names a clinician may type.
    pub names: Vec<String>,
    /// Member ATC classes or codes (human codes).
    pub atc: Vec<String>,
    /// Classes or codes left out of `atc`.
    pub except: Vec<String>,
    /// Member ingredients, as base names.
    pub ingredients: Vec<String>,
    pub within: Option<Rule>,
    pub cross: Vec<Cross>,
    /// Set for a group that is not a drug (latex, foods): why it is not checked.
    pub non_drug: Option<String>,
}

/// The whole allergen table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub groups: Vec<Group>,
}

/// The columns of an allergen file (the header line is optional).
pub const COLUMNS: [&str; 5] = ["group", "field", "value", "risk", "note"];

/// Parses an allergen table; every line is checked, and the groups as a whole (a title and a
/// member each, names used once, `cross` to groups that exist).
pub fn parse(text: &str) -> Result<Table, Vec<LineError>> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut names: HashMap<String, (String, u64)> = HashMap::new();
    let mut crosses: Vec<(u64, String, String)> = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut errors = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut record = csv::StringRecord::new();
    let mut first = true;
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                errors.push(LineError {
                    line,
                    message: format!("not valid CSV: {e}"),
                });
                break;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        let is_header = first
            && record.len() == COLUMNS.len()
            && record
                .iter()
                .zip(COLUMNS)
                .all(|(a, b)| a.trim().eq_ignore_ascii_case(b));
        first = false;
        if is_header || record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != COLUMNS.len() {
            errors.push(LineError {
                line,
                message: format!(
                    "expected 5 fields ({}), found {}",
                    COLUMNS.join(","),
                    record.len()
                ),
            });
            continue;
        }
        let id = record[0].trim().to_ascii_lowercase();
        let field = record[1].trim().to_ascii_lowercase();
        let value = record[2].trim();
        let note = record[4].trim().to_string();
        let ok_id = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok_id {
            errors.push(LineError {
                line,
                message: format!("group: {id:?} is not an id (letters, digits, - and _)"),
            });
            continue;
        }
        first_line.entry(id.clone()).or_insert(line);
        let g = groups.entry(id.clone()).or_insert_with(|| Group {
            id: id.clone(),
            ..Group::default()
        });
        let risk = || {
            Risk::parse(&record[3]).ok_or_else(|| {
                format!("risk: expected low, moderate or high, got {:?}", &record[3])
            })
        };
        let result: Result<(), String> = (|| {
            match field.as_str() {
                "title" if value.is_empty() => return Err("title: empty".into()),
                "title" => g.title = value.to_string(),
                "name" => {
                    let n = atc::fold(value);
                    if n.is_empty() {
                        return Err("name: empty".into());
                    }
                    if let Some((other, at)) = names.get(&n)
                        && *other != id
                    {
                        return Err(format!(
                            "name: {n:?} is already group {other}'s (line {at})"
                        ));
                    }
                    names.insert(n.clone(), (id.clone(), line));
                    if !g.names.contains(&n) {
                        g.names.push(n);
                    }
                }
                "atc" | "except" => {
                    let c = atc::normalize(value)
                        .ok_or_else(|| format!("{field}: {value:?} is not an ATC code or class"))?;
                    if field == "atc" {
                        g.atc.push(c);
                    } else {
                        g.except.push(c);
                    }
                }
                "ingredient" => {
                    let n = atc::base_name(value);
                    if n.is_empty() {
                        return Err("ingredient: empty".into());
                    }
                    g.ingredients.push(n);
                }
                "within" => {
                    g.within = Some(Rule {
                        risk: risk()?,
                        note,
                    })
                }
                "cross" => {
                    let to = value.to_ascii_lowercase();
                    crosses.push((line, id.clone(), to.clone()));
                    g.cross.push(Cross {
                        to,
                        risk: risk()?,
                        note,
                    });
                }
                "non-drug" => {
                    g.non_drug = Some(if note.is_empty() {
                        "not a drug".into()
                    } else {
                        note
                    })
                }
                f => {
                    return Err(format!(
                        "field: {f:?} is not title, name, atc, except, ingredient, within, cross or non-drug"
                    ));
                }
            }
            Ok(())
        })();
        if let Err(message) = result {
            errors.push(LineError { line, message });
        }
        if errors.len() >= crate::data::MAX_REPORTED {
            break;
        }
    }
    for (line, from, to) in crosses {
        if !groups.contains_key(&to) {
            errors.push(LineError {
                line,
                message: format!("cross: group {from} refers to {to:?}, which has no lines"),
            });
        }
    }
    for g in groups.values() {
        let line = first_line.get(&g.id).copied().unwrap_or(0);
        if g.title.is_empty() {
            errors.push(LineError {
                line,
                message: format!("group {}: no title line", g.id),
            });
        }
        if g.non_drug.is_none() && g.atc.is_empty() && g.ingredients.is_empty() {
            errors.push(LineError {
                line,
                message: format!(
                    "group {}: no atc or ingredient line: it has no members",
                    g.id
                ),
            });
        }
    }
    if groups.is_empty() && errors.is_empty() {
        errors.push(LineError {
            line: 1,
            message: "the file has no rows".into(),
        });
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(errors);
    }
    Ok(Table {
        groups: groups.into_values().collect(),
    })
}

/// What the allergy check needs from the product table.
pub trait Products {
    /// The substance-level ATC codes of single-ingredient products of this ingredient (a base
    /// name, see [`atc::base_name`]).
    fn codes_of_ingredient(&mut self, base: &str) -> Vec<String>;
    /// The ingredients (base names) and ATC code of the products with exactly this brand
    /// name (folded).
    fn brand(&mut self, folded: &str) -> Vec<(Vec<String>, String)>;
}

/// What is known of the drug being checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drug {
    pub name: String,
    /// Every substance-level code it is checked under: its own, and its ingredients' for a
    /// combination product.
    pub codes: Vec<String>,
    /// Its ingredients, as base names.
    pub ingredients: Vec<String>,
}

/// An allergy, resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Allergen {
    /// How it was recognised, for messages: `the group Penicillins`, `amoxicillin (J01CA04)`.
    pub described: String,
    /// ATC codes or classes it is (an `atc` allergy, or a substance's codes).
    pub classes: Vec<String>,
    /// Substances (base names) it is.
    pub ingredients: Vec<String>,
    /// The group it names (`penicillin`), as an index into the table.
    pub names_group: Option<usize>,
    /// The groups its substance belongs to.
    pub member_of: Vec<usize>,
}

/// Words that say how an allergy was written rather than to what.
const FILLER: &[&str] = &[
    "allergy",
    "allergies",
    "allergic",
    "to",
    "drug",
    "drugs",
    "antibiotic",
    "antibiotics",
    "class",
    "intolerance",
    "hypersensitivity",
    "reaction",
];

/// The spellings of `text` to look up among the names: as typed, without filler words, and
/// each without a plural `s`.
fn name_keys(text: &str) -> Vec<String> {
    let folded = atc::fold(text);
    let bare: Vec<&str> = folded.split(' ').filter(|w| !FILLER.contains(w)).collect();
    let bare = bare.join(" ");
    let mut out = vec![folded.clone()];
    for k in [folded, bare] {
        if !k.is_empty() {
            if let Some(s) = k.strip_suffix('s') {
                out.push(s.to_string());
            }
            out.push(k);
        }
    }
    out.dedup();
    out
}

/// How an allergy is recorded (prescribing's `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Atc,
    Ingredient,
    Brand,
    FreeText,
}

impl Table {
    fn group_named(&self, text: &str) -> Option<usize> {
        let keys = name_keys(text);
        self.groups
            .iter()
            .position(|g| keys.iter().any(|k| g.names.contains(k)))
    }

    /// Whether a drug with these codes and ingredients belongs to group `g`, and why.
    fn member(&self, g: usize, codes: &[String], ingredients: &[String]) -> Option<String> {
        let g = &self.groups[g];
        for code in codes {
            let human = atc::human(code);
            if g.except.iter().any(|e| human.starts_with(e.as_str())) {
                continue;
            }
            if let Some(class) = g.atc.iter().find(|c| human.starts_with(c.as_str())) {
                return Some(if class == human {
                    human.to_string()
                } else {
                    format!("{human}, in {class}")
                });
            }
        }
        ingredients
            .iter()
            .find(|i| g.ingredients.contains(i))
            .map(|i| format!("contains {i}"))
    }

    /// The groups a substance with these codes and ingredients belongs to.
    fn groups_of(&self, codes: &[String], ingredients: &[String]) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.groups[g].non_drug.is_none())
            .filter(|&g| self.member(g, codes, ingredients).is_some())
            .collect()
    }

    fn substance(
        &self,
        described: String,
        codes: Vec<String>,
        ingredients: Vec<String>,
    ) -> Allergen {
        let member_of = self.groups_of(&codes, &ingredients);
        Allergen {
            described,
            classes: codes,
            ingredients,
            names_group: None,
            member_of,
        }
    }
}

/// Resolves an allergy to what it covers, or says why it cannot be checked.
pub fn resolve(
    table: &Table,
    products: &mut impl Products,
    kind: Kind,
    text: &str,
) -> Result<Allergen, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the allergy names no substance".into());
    }
    if kind == Kind::Atc {
        let Some(class) = atc::normalize(text) else {
            return Err(format!("\"{text}\" is not an ATC code"));
        };
        // The class of a group (J01C) is that group; a code inside one is a member.
        let names_group = table.groups.iter().position(|g| g.atc.contains(&class));
        let member_of: Vec<usize> = table
            .groups_of(std::slice::from_ref(&class), &[])
            .into_iter()
            .filter(|g| Some(*g) != names_group)
            .collect();
        let described = match names_group {
            Some(g) => format!("{class} ({})", table.groups[g].title),
            None => class.clone(),
        };
        return Ok(Allergen {
            described,
            classes: vec![class],
            ingredients: Vec::new(),
            names_group,
            member_of,
        });
    }
    // A group's name: "penicillin", "sulfa drugs", "PCN".
    if let Some(g) = table.group_named(text) {
        let group = &table.groups[g];
        if let Some(why) = &group.non_drug {
            return Err(format!("\"{text}\" is {}: {why}", group.title));
        }
        return Ok(Allergen {
            described: format!("the group {}", group.title),
            names_group: Some(g),
            ..Allergen::default()
        });
    }
    // A substance: from single-ingredient products, or named in a group.
    let base = atc::base_name(text);
    if kind != Kind::Brand && !base.is_empty() {
        let codes = products.codes_of_ingredient(&base);
        let listed = table.groups.iter().any(|g| g.ingredients.contains(&base));
        if !codes.is_empty() || listed {
            let described = if codes.is_empty() {
                base.clone()
            } else {
                format!("{base} ({})", codes.join(", "))
            };
            return Ok(table.substance(described, codes, vec![base]));
        }
    }
    // A brand: its products' ingredients.
    if kind != Kind::Ingredient {
        let found = products.brand(&atc::fold(text));
        if !found.is_empty() {
            let mut codes = Vec::new();
            let mut ingredients = Vec::new();
            for (ingr, code) in found {
                for i in ingr {
                    if !ingredients.contains(&i) {
                        codes.extend(products.codes_of_ingredient(&i));
                        ingredients.push(i);
                    }
                }
                if !code.is_empty() {
                    codes.push(code);
                }
            }
            codes.sort();
            codes.dedup();
            let described = format!("{text} ({})", ingredients.join(", "));
            return Ok(table.substance(described, codes, ingredients));
        }
    }
    Err(match kind {
        Kind::Ingredient => format!(
            "\"{text}\" is not an ingredient or an allergy group the drug reference knows (is it spelt right?): check it yourself"
        ),
        Kind::Brand => format!(
            "\"{text}\" is not a brand the drug reference knows (is it spelt right?): check it yourself"
        ),
        _ => format!(
            "\"{text}\" matches no drug, ingredient or allergy group the drug reference knows: check it yourself"
        ),
    })
}

/// The outcome of one allergy against one drug.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The drug is, contains or belongs to what the allergy names.
    Matches(String),
    /// A cross-sensitivity: the group it comes through, its risk and why.
    Caution {
        group: String,
        risk: Risk,
        reason: String,
    },
    Clear,
    /// It could not be compared, and why.
    Unchecked(String),
}

/// Whether `allergen` applies to `drug`: a match, the strongest caution, or clear.
pub fn check(table: &Table, drug: &Drug, allergen: &Allergen) -> Outcome {
    if drug.codes.is_empty() && drug.ingredients.is_empty() {
        return Outcome::Unchecked(format!(
            "{} has no ATC code and no known ingredients: nothing to compare",
            drug.name
        ));
    }
    // Direct matches.
    for class in &allergen.classes {
        if let Some(code) = drug
            .codes
            .iter()
            .find(|c| atc::human(c).starts_with(class.as_str()))
        {
            return Outcome::Matches(if code == class {
                format!("{} is {}", drug.name, allergen.described)
            } else {
                format!("{} ({code}) is in {}", drug.name, allergen.described)
            });
        }
    }
    if let Some(i) = drug
        .ingredients
        .iter()
        .find(|i| allergen.ingredients.contains(i))
    {
        return Outcome::Matches(format!("{} contains {i}", drug.name));
    }
    if let Some(g) = allergen.names_group
        && let Some(why) = table.member(g, &drug.codes, &drug.ingredients)
    {
        return Outcome::Matches(format!(
            "{} is one of the {} ({why})",
            drug.name, table.groups[g].title
        ));
    }
    // Cross-sensitivities: the strongest.
    let mut best: Option<(Risk, String, String)> = None;
    let mut consider = |risk: Risk, group: &str, reason: String| {
        if best.as_ref().is_none_or(|(r, _, _)| risk > *r) {
            best = Some((risk, group.to_string(), reason));
        }
    };
    for &g in &allergen.member_of {
        let group = &table.groups[g];
        if let Some(rule) = &group.within
            && let Some(why) = table.member(g, &drug.codes, &drug.ingredients)
        {
            consider(
                rule.risk,
                &group.title,
                format!(
                    "{} ({why}) and {} are both {}: {} cross-sensitivity risk. {}",
                    drug.name,
                    allergen.described,
                    group.title,
                    rule.risk.word(),
                    rule.note
                ),
            );
        }
    }
    for &g in allergen.names_group.iter().chain(&allergen.member_of) {
        let from = &table.groups[g];
        for cross in &from.cross {
            let Some(to) = table.groups.iter().position(|x| x.id == cross.to) else {
                continue;
            };
            if let Some(why) = table.member(to, &drug.codes, &drug.ingredients) {
                // "the group penicillins", or "amoxicillin (J01CA04), one of the penicillins".
                let allergy = if allergen.names_group == Some(g) {
                    allergen.described.clone()
                } else {
                    format!("{}, one of the {}", allergen.described, from.title)
                };
                consider(
                    cross.risk,
                    &table.groups[to].title,
                    format!(
                        "{} ({why}) is one of the {}; allergy to {allergy}: {} cross-sensitivity risk. {}",
                        drug.name,
                        table.groups[to].title,
                        cross.risk.word(),
                        cross.note
                    ),
                );
            }
        }
    }
    match best {
        Some((risk, group, reason)) => Outcome::Caution {
            group,
            risk,
            reason: reason.trim().to_string(),
        },
        None => Outcome::Clear,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#""group","field","value","risk","note"
"penicillins","title","penicillins","",""
"penicillins","name","penicillin","",""
"penicillins","name","PCN","",""
"penicillins","atc","J01C","",""
"penicillins","within","","high","same class"
"penicillins","cross","cephalosporins-1","moderate","side chains"
"penicillins","cross","carbapenems","low","rare"
"cephalosporins-1","title","first-generation cephalosporins","",""
"cephalosporins-1","atc","J01DB","",""
"carbapenems","title","carbapenems","",""
"carbapenems","atc","J01DH","",""
"sulfonamides","title","sulfonamide antibiotics","",""
"sulfonamides","name","sulfa","",""
"sulfonamides","atc","J01E","",""
"sulfonamides","except","J01EA","",""
"sulfonamides","ingredient","sulfasalazine","",""
"latex","title","latex","",""
"latex","name","latex","",""
"latex","non-drug","","","not a drug: check equipment and gloves"
"#;

    #[derive(Default)]
    struct Known;
    impl Products for Known {
        fn codes_of_ingredient(&mut self, base: &str) -> Vec<String> {
            match base {
                "amoxicillin" => vec!["J01CA04".into()],
                "phenoxymethylpenicillin" => vec!["J01CE02".into()],
                "trimethoprim" => vec!["J01EA01".into()],
                _ => vec![],
            }
        }
        fn brand(&mut self, folded: &str) -> Vec<(Vec<String>, String)> {
            match folded {
                "amoxil" => vec![(vec!["amoxicillin".into()], "J01CA04".into())],
                _ => vec![],
            }
        }
    }

    fn drug(name: &str, codes: &[&str], ingredients: &[&str]) -> Drug {
        Drug {
            name: name.into(),
            codes: codes.iter().map(|c| c.to_string()).collect(),
            ingredients: ingredients.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn outcome(kind: Kind, allergen: &str, d: &Drug) -> Outcome {
        let t = parse(TABLE).unwrap();
        match resolve(&t, &mut Known, kind, allergen) {
            Ok(a) => check(&t, d, &a),
            Err(why) => Outcome::Unchecked(why),
        }
    }

    #[test]
    fn common_names_match_their_group() {
        let amox = drug("Amoxicillin", &["J01CA04"], &["amoxicillin"]);
        let septra = drug(
            "Septra DS",
            &["J01EE01"],
            &["sulfamethoxazole", "trimethoprim"],
        );
        for (kind, text) in [
            (Kind::Ingredient, "penicillin"),
            (Kind::FreeText, "Penicillins"),
            (Kind::FreeText, "PCN allergy"),
            (Kind::Atc, "J01C"),
        ] {
            assert!(
                matches!(outcome(kind, text, &amox), Outcome::Matches(r) if r.contains("penicillins")),
                "{text}"
            );
        }
        assert!(matches!(
            outcome(Kind::FreeText, "sulfa drugs", &septra),
            Outcome::Matches(_)
        ));
        // Trimethoprim alone is not a sulfonamide.
        let tmp = drug("Trimethoprim", &["J01EA01"], &["trimethoprim"]);
        assert_eq!(outcome(Kind::Ingredient, "sulfa", &tmp), Outcome::Clear);
        let salaz = drug("Salazopyrin", &["A07EC01"], &["sulfasalazine"]);
        assert!(matches!(
            outcome(Kind::FreeText, "sulfa", &salaz),
            Outcome::Matches(_)
        ));
    }

    #[test]
    fn cross_sensitivities_are_graded() {
        let cephalexin = drug("Cephalexin", &["J01DB01"], &["cephalexin"]);
        let meropenem = drug("Meropenem", &["J01DH02"], &["meropenem"]);
        let pen_v = drug("Penicillin V", &["J01CE02"], &["phenoxymethylpenicillin"]);
        match outcome(Kind::Atc, "J01C", &cephalexin) {
            Outcome::Caution { risk, group, .. } => {
                assert_eq!(risk, Risk::Moderate);
                assert_eq!(group, "first-generation cephalosporins");
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            outcome(Kind::Ingredient, "penicillin", &meropenem),
            Outcome::Caution {
                risk: Risk::Low,
                ..
            }
        ));
        // A substance allergy: other members of its group, and its group's cross rules.
        match outcome(Kind::Ingredient, "amoxicillin", &pen_v) {
            Outcome::Caution { risk, reason, .. } => {
                assert_eq!(risk, Risk::High);
                assert!(reason.contains("both penicillins"), "{reason}");
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            outcome(Kind::Brand, "Amoxil", &cephalexin),
            Outcome::Caution {
                risk: Risk::Moderate,
                ..
            }
        ));
    }

    #[test]
    fn what_cannot_be_matched_is_unchecked_with_the_reason() {
        let amox = drug("Amoxicillin", &["J01CA04"], &["amoxicillin"]);
        for (kind, text, says) in [
            (Kind::FreeText, "shellfish", "matches no drug"),
            (Kind::Ingredient, "amoxicilin", "spelt right"),
            (Kind::Brand, "Zorblax", "not a brand"),
            (Kind::FreeText, "latex", "not a drug"),
            (Kind::Atc, "penicillins", "not an ATC code"),
        ] {
            match outcome(kind, text, &amox) {
                Outcome::Unchecked(why) => assert!(why.contains(says), "{text}: {why}"),
                o => panic!("{text}: {o:?}"),
            }
        }
        let custom = drug("compounded cream", &[], &[]);
        assert!(matches!(
            outcome(Kind::Atc, "J01C", &custom),
            Outcome::Unchecked(_)
        ));
    }

    #[test]
    fn bad_tables_are_refused_by_line() {
        let bad = "\"a\",\"title\",\"A\",\"\",\"\"\n\"a\",\"atc\",\"nope\",\"\",\"\"\n\"a\",\"cross\",\"b\",\"big\",\"\"\n\"c\",\"title\",\"C\",\"\",\"\"\n";
        let e = parse(bad).unwrap_err();
        let lines: Vec<u64> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 3, 4], "{e:?}");
        assert!(e[0].message.contains("group a") && e[0].message.contains("no members"));
        assert!(e[1].message.starts_with("atc:"));
        assert!(e[2].message.starts_with("risk:"));
        assert!(e[3].message.contains("refers to \"b\""));
    }
}
