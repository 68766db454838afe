//! WHO ATC codes, and the text folding that search keys use.
//!
//! An ATC code has five levels: anatomical group (`C`), therapeutic subgroup (`C07`),
//! pharmacological subgroup (`C07A`), chemical subgroup (`C07AB`) and substance (`C07AB02`,
//! metoprolol). A class matches every code it is a prefix of, so the interaction check looks a
//! drug up under each of its prefixes.
//!
//! ATCvet codes (the veterinary classification) are the human code with a `Q` in front
//! (`QA14AA02`, stanozolol); real interaction tables carry a few. [`normalize_vet`] accepts
//! them and [`human`] gives the human code they stand for, which is what a check compares.

/// The lengths of the five levels.
pub const LEVELS: [usize; 5] = [1, 3, 4, 5, 7];

/// Anatomical main groups.
const GROUPS: &str = "ABCDGHJLMNPRSV";

/// `code` in upper case if it is a valid ATC code or class (any level), else `None`.
pub fn normalize(code: &str) -> Option<String> {
    let c = code.trim().to_ascii_uppercase();
    let b = c.as_bytes();
    if !LEVELS.contains(&b.len()) || !b.is_ascii() {
        return None;
    }
    let ok = b.iter().enumerate().all(|(i, ch)| match i {
        0 => GROUPS.as_bytes().contains(ch),
        1 | 2 | 5 | 6 => ch.is_ascii_digit(),
        _ => ch.is_ascii_uppercase(),
    });
    ok.then_some(c)
}

/// `code` in upper case if it is a valid ATC code or class, or an ATCvet one (`Q` followed by
/// a human code or class, e.g. `QA14AA02`).
pub fn normalize_vet(code: &str) -> Option<String> {
    let c = code.trim().to_ascii_uppercase();
    match c.strip_prefix('Q') {
        // QI (immunologicals for animals) has no human counterpart; the rest is as in ATC.
        Some(rest) if rest.len() > 1 => {
            let shape = rest
                .strip_prefix('I')
                .map_or(rest.to_string(), |r| format!("A{r}"));
            normalize(&shape).map(|_| c)
        }
        _ => normalize(&c),
    }
}

/// Whether `code` (normalized) is an ATCvet code.
pub fn is_vet(code: &str) -> bool {
    code.len() > 1 && code.starts_with('Q')
}

/// The human code an ATC or ATCvet code stands for: `QA14AA02` → `A14AA02`.
pub fn human(code: &str) -> &str {
    if is_vet(code) { &code[1..] } else { code }
}

/// The code and its classes, broadest first: `C07AB02` → `C`, `C07`, `C07A`, `C07AB`,
/// `C07AB02`. `code` must be normalized.
pub fn prefixes(code: &str) -> Vec<&str> {
    LEVELS
        .iter()
        .filter(|&&n| n <= code.len())
        .map(|&n| &code[..n])
        .collect()
}

/// Text as search keys hold it: lower case, each run of anything that is not a letter or a
/// digit one space, trimmed. `Apo-Warfarin 5mg` → `apo warfarin 5mg`. Key separators (`/`)
/// never survive it.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        } else {
            space = true;
        }
    }
    out
}

/// Words that name the salt or hydrate of an ingredient rather than the substance.
const SALT_WORDS: &[&str] = &[
    "acetate",
    "anhydrous",
    "besilate",
    "besylate",
    "bisulfate",
    "bitartrate",
    "bromide",
    "calcium",
    "carbonate",
    "chloride",
    "citrate",
    "dihydrate",
    "dipropionate",
    "disodium",
    "erbumine",
    "fumarate",
    "furoate",
    "hcl",
    "hemihydrate",
    "hyclate",
    "hydrobromide",
    "hydrochloride",
    "hydrate",
    "magnesium",
    "maleate",
    "mesilate",
    "mesylate",
    "monohydrate",
    "nitrate",
    "oxalate",
    "phosphate",
    "potassium",
    "propionate",
    "sesquihydrate",
    "sodium",
    "succinate",
    "sulfate",
    "sulphate",
    "tartrate",
    "trihydrate",
    "valerate",
    "xinafoate",
];

/// An ingredient's name without its salt, folded: `Metoprolol Tartrate` → `metoprolol`,
/// `amoxicillin (amoxicillin trihydrate)` → `amoxicillin`. A name that is nothing but salt
/// words (`potassium chloride`) is kept whole.
pub fn base_name(name: &str) -> String {
    // Health Canada writes the salt in parentheses: `AMLODIPINE (AMLODIPINE BESYLATE)`.
    let name = name.split('(').next().unwrap_or(name);
    let folded = fold(name);
    let kept: Vec<&str> = folded
        .split(' ')
        .filter(|w| !SALT_WORDS.contains(w))
        .collect();
    if kept.is_empty() {
        folded
    } else {
        kept.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_every_level() {
        for ok in ["C", "C07", "C07A", "C07AB", "C07AB02", " b01aa03 "] {
            assert!(normalize(ok).is_some(), "{ok}");
        }
        assert_eq!(normalize("b01aa03").as_deref(), Some("B01AA03"));
        for bad in [
            "", "X", "C7", "C07AB0", "C07AB021", "C0AAB02", "C07A102", "É07",
        ] {
            assert!(normalize(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn atcvet_codes_stand_for_human_ones() {
        assert_eq!(normalize_vet("qa14aa02").as_deref(), Some("QA14AA02"));
        assert_eq!(normalize_vet("QA14").as_deref(), Some("QA14"));
        assert_eq!(normalize_vet("B01AA03").as_deref(), Some("B01AA03"));
        assert!(normalize_vet("Q").is_none());
        assert!(normalize_vet("QX14AA02").is_none());
        assert_eq!(normalize_vet("QI07AA01").as_deref(), Some("QI07AA01"));
        assert!(normalize("QA14AA02").is_none(), "not a human code");
        assert_eq!(human("QA14AA02"), "A14AA02");
        assert_eq!(human("B01AA03"), "B01AA03");
    }

    #[test]
    fn base_names_drop_the_salt() {
        assert_eq!(base_name("Metoprolol Tartrate"), "metoprolol");
        assert_eq!(base_name("AMLODIPINE (AMLODIPINE BESYLATE)"), "amlodipine");
        assert_eq!(base_name("potassium chloride"), "potassium chloride");
        assert_eq!(base_name("acetylsalicylic acid"), "acetylsalicylic acid");
        assert_eq!(base_name("lisinopril"), "lisinopril");
    }

    #[test]
    fn prefixes_are_the_classes() {
        assert_eq!(
            prefixes("C07AB02"),
            vec!["C", "C07", "C07A", "C07AB", "C07AB02"]
        );
        assert_eq!(prefixes("M01A"), vec!["M", "M01", "M01A"]);
    }

    #[test]
    fn folding() {
        assert_eq!(fold("  Apo-Warfarin 5mg/mL "), "apo warfarin 5mg ml");
        assert_eq!(fold("ÉPIPEN"), "épipen");
        assert_eq!(fold("--"), "");
    }
}
