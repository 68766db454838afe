//! WHO ATC codes, and the text folding that search keys use.
//!
//! An ATC code has five levels: anatomical group (`C`), therapeutic subgroup (`C07`),
//! pharmacological subgroup (`C07A`), chemical subgroup (`C07AB`) and substance (`C07AB02`,
//! metoprolol). A class matches every code it is a prefix of, so the interaction check looks a
//! drug up under each of its prefixes.

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
