//! Client matching at the integrator: a score between two facilities' clients.
//!
//! OSCAR's weights: health card number 22, Social Insurance Number 20 (when both have one),
//! birth date 15, gender 5, city 3, province 2. Names (Osler's choice, documented in the
//! README): family name 10 when equal, 6 when only their Double Metaphone codes match (primary
//! or alternate: "Smith" and "Smyth"); first given name 8 when equal, 5 when only phonetically
//! equal. Names are compared without case, accents, spaces, hyphens or apostrophes. An item
//! missing on either side scores 0; a difference scores 0 (no penalty). The most is 85; a link
//! is proposed at [`PROPOSE_AT`] or more, for staff to confirm or reject.

use rphonetic::DoubleMetaphone;
use serde::{Deserialize, Serialize};

use crate::model::Demographics;

pub const HEALTH_CARD: u32 = 22;
pub const SIN: u32 = 20;
pub const BIRTH_DATE: u32 = 15;
pub const GENDER: u32 = 5;
pub const CITY: u32 = 3;
pub const PROVINCE: u32 = 2;
pub const FAMILY_EXACT: u32 = 10;
pub const FAMILY_PHONETIC: u32 = 6;
pub const GIVEN_EXACT: u32 = 8;
pub const GIVEN_PHONETIC: u32 = 5;
/// The lowest score proposed: e.g. birth date, phonetically equal names and gender (31), or a
/// health card and a birth date (37); a shared name and city alone never are.
pub const PROPOSE_AT: u32 = 30;

/// A score and what it is made of.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Breakdown {
    pub health_card: u32,
    pub sin: u32,
    pub birth_date: u32,
    pub gender: u32,
    pub city: u32,
    pub province: u32,
    pub family_name: u32,
    pub given_name: u32,
}

impl Breakdown {
    pub fn total(&self) -> u32 {
        self.health_card
            + self.sin
            + self.birth_date
            + self.gender
            + self.city
            + self.province
            + self.family_name
            + self.given_name
    }

    /// `(label, points)` for a page.
    pub fn items(&self) -> [(&'static str, u32); 8] {
        [
            ("health card", self.health_card),
            ("SIN", self.sin),
            ("birth date", self.birth_date),
            ("gender", self.gender),
            ("city", self.city),
            ("province", self.province),
            ("family name", self.family_name),
            ("given name", self.given_name),
        ]
    }
}

/// Lower case, without accents and without anything but letters and digits.
pub fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => {
                'a'
            }
            'ç' | 'Ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'i',
            'ñ' | 'Ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'u',
            'ý' | 'ÿ' | 'Ý' => 'y',
            c => c.to_ascii_lowercase(),
        })
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// A health card or SIN without spaces and dashes.
fn digits(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_uppercase()
}

/// The Double Metaphone codes of a folded name (primary, alternate).
pub fn phonetic(name: &str) -> (String, String) {
    let r = DoubleMetaphone::default().double_metaphone(&fold(name));
    (r.primary(), r.alternate())
}

fn sounds_alike(a: &str, b: &str) -> bool {
    let (pa, aa) = phonetic(a);
    let (pb, ab) = phonetic(b);
    !pa.is_empty() && (pa == pb || pa == ab || aa == pb || (!aa.is_empty() && aa == ab))
}

fn same(a: &Option<String>, b: &Option<String>, f: fn(&str) -> String) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (a, b) = (f(a), f(b));
            !a.is_empty() && a == b
        }
        _ => false,
    }
}

fn name_points(a: &str, b: &str, exact: u32, phon: u32) -> u32 {
    let (fa, fb) = (fold(a), fold(b));
    if fa.is_empty() || fb.is_empty() {
        0
    } else if fa == fb {
        exact
    } else if sounds_alike(a, b) {
        phon
    } else {
        0
    }
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or_default()
}

/// The score between two clients.
pub fn score(a: &Demographics, b: &Demographics) -> Breakdown {
    let when = |cond: bool, pts: u32| if cond { pts } else { 0 };
    Breakdown {
        health_card: when(same(&a.health_card, &b.health_card, digits), HEALTH_CARD),
        sin: when(same(&a.sin, &b.sin, digits), SIN),
        birth_date: when(
            same(&a.birth_date, &b.birth_date, |s| s.trim().to_string()),
            BIRTH_DATE,
        ),
        gender: when(same(&a.gender, &b.gender, fold), GENDER),
        city: when(same(&a.city, &b.city, fold), CITY),
        province: when(same(&a.province, &b.province, fold), PROVINCE),
        family_name: name_points(&a.family, &b.family, FAMILY_EXACT, FAMILY_PHONETIC),
        given_name: name_points(
            first_word(&a.given),
            first_word(&b.given),
            GIVEN_EXACT,
            GIVEN_PHONETIC,
        ),
    }
}

/// The blocking keys a client is indexed under at the integrator (candidates for matching are
/// the clients sharing one): the health card, the birth date and the family name's primary
/// Double Metaphone code.
pub fn blocking_keys(d: &Demographics) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(hc) = d
        .health_card
        .as_deref()
        .map(digits)
        .filter(|s| !s.is_empty())
    {
        keys.push(format!("hc:{hc}"));
    }
    if let Some(b) = d
        .birth_date
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        keys.push(format!("dob:{b}"));
    }
    let (p, _) = phonetic(&d.family);
    if !p.is_empty() {
        keys.push(format!("dm:{p}"));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(family: &str, given: &str) -> Demographics {
        Demographics {
            family: family.into(),
            given: given.into(),
            birth_date: Some("1970-01-02".into()),
            gender: Some("male".into()),
            health_card: Some("9876543217".into()),
            sin: None,
            city: Some("Toronto".into()),
            province: Some("ON".into()),
        }
    }

    #[test]
    fn the_same_person_spelled_differently_scores_high_with_its_breakdown() {
        let b = score(&person("Smith", "John"), &person("Smyth", "Jon"));
        assert_eq!(b.health_card, 22);
        assert_eq!(b.birth_date, 15);
        assert_eq!(b.family_name, FAMILY_PHONETIC);
        assert_eq!(b.given_name, GIVEN_PHONETIC);
        assert_eq!(b.sin, 0, "no SIN on either side");
        assert_eq!(b.total(), 22 + 15 + 5 + 3 + 2 + 6 + 5);
        assert!(b.total() >= PROPOSE_AT);
        let exact = score(&person("Lévesque", "Hélène"), &person("LEVESQUE", "helene"));
        assert_eq!((exact.family_name, exact.given_name), (10, 8));
    }

    #[test]
    fn different_people_score_low() {
        let mut other = person("Nguyen", "Mai");
        other.health_card = Some("1234567897".into());
        other.birth_date = Some("1985-05-05".into());
        other.gender = Some("female".into());
        let b = score(&person("Smith", "John"), &other);
        assert_eq!(b.total(), 5, "city and province only");
        assert!(b.total() < PROPOSE_AT);
        assert!(blocking_keys(&person("Smith", "John")).contains(&"hc:9876543217".to_string()));
        assert_eq!(phonetic("Smith").0, phonetic("Smyth").0);
    }
}
