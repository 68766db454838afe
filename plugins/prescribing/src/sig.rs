//! The sig ("signa", the directions) parser: `1 tab PO BID x 10 days` into dose, unit, route,
//! frequency, as-needed (with its reason and maximum daily dose) and duration, and back into
//! the same short sig in canonical spelling or a sentence a patient reads.
//!
//! Grammar, case-insensitive, words separated by spaces: a dose and a unit first
//! (`1 tab`, `500 mg`, `1-2 puffs`, `500mg`), then in any order a route, a frequency, `PRN`
//! (or `as needed`) with its reason, `max <n> [<unit>]/day`, and a duration (`x 10 days`,
//! `for 2 weeks`, `x7d`).
//!
//! Refused, with a message saying how to write it (ISMP's "do not use" list, which exists
//! because these forms have caused tenfold errors): a number without its leading zero
//! (`.5`), a trailing zero (`1.0`), an exponent (`1e3`), a comma in a number, a reversed or
//! empty range (`2-1`, `1-1`), and teaspoons. Abbreviations that a computer reads without
//! doubt but a person may not are accepted and always written back safely: `OD` (once a day)
//! becomes `daily`, `QOD` `Q48H`, `SC` `subcut`, `U`/`IU` `units`, `cc` `mL`.
//!
//! `OD`, `OS` and `OU` are the right, left and both eyes, and `AD`, `AS`, `AU` the ears, only
//! when the dose is drops (or an ophthalmic application); with any other dose `OD` is "once a
//! day" and the others are refused. So `1 gtt OD` asks how often, and `1 tab PO OD` is daily.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sig {
    /// `1`, `0.5`, `1-2`.
    pub dose: String,
    /// Canonical: `tab`, `cap`, `puff`, `mL`, `mg`, `drop`, `unit`, …
    pub unit: String,
    /// Canonical: `PO`, `SL`, `INH`, `TOP`, `subcut`, `OD` (right eye), …
    pub route: Option<String>,
    /// Canonical: `daily`, `BID`, `Q4H`, `Q4-6H`, `weekly`, …; kept with PRN as well.
    pub frequency: Option<String>,
    pub prn: bool,
    pub prn_reason: Option<String>,
    /// The most to take in a day, in `unit` unless it says otherwise: `8` (tabs), `4 g`.
    #[serde(default)]
    pub max_daily: Option<MaxDaily>,
    /// `(10, "days")`.
    pub duration: Option<(u32, String)>,
}

/// A maximum daily dose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaxDaily {
    pub amount: String,
    /// Canonical unit (as [`Sig::unit`]).
    pub unit: String,
}

/// A unit: canonical form, the words for the sentence, and the spellings accepted.
struct Unit {
    short: &'static str,
    one: &'static str,
    many: &'static str,
    spellings: &'static [&'static str],
}

const UNITS: &[Unit] = &[
    Unit {
        short: "tab",
        one: "tablet",
        many: "tablets",
        spellings: &["tab", "tabs", "tablet", "tablets"],
    },
    Unit {
        short: "cap",
        one: "capsule",
        many: "capsules",
        spellings: &["cap", "caps", "capsule", "capsules"],
    },
    Unit {
        short: "puff",
        one: "puff",
        many: "puffs",
        spellings: &[
            "puff",
            "puffs",
            "inhalation",
            "inhalations",
            "actuation",
            "actuations",
        ],
    },
    Unit {
        short: "spray",
        one: "spray",
        many: "sprays",
        spellings: &["spray", "sprays"],
    },
    Unit {
        short: "drop",
        one: "drop",
        many: "drops",
        spellings: &["drop", "drops", "gtt", "gtts"],
    },
    Unit {
        short: "mL",
        one: "mL",
        many: "mL",
        spellings: &["ml", "cc"],
    },
    Unit {
        short: "mg",
        one: "mg",
        many: "mg",
        spellings: &["mg"],
    },
    Unit {
        short: "mcg",
        one: "mcg",
        many: "mcg",
        spellings: &["mcg", "ug", "µg"],
    },
    Unit {
        short: "g",
        one: "g",
        many: "g",
        spellings: &["g", "gram", "grams"],
    },
    Unit {
        short: "mmol",
        one: "mmol",
        many: "mmol",
        spellings: &["mmol"],
    },
    Unit {
        short: "unit",
        one: "unit",
        many: "units",
        spellings: &["unit", "units", "u", "iu"],
    },
    Unit {
        short: "patch",
        one: "patch",
        many: "patches",
        spellings: &["patch", "patches"],
    },
    Unit {
        short: "supp",
        one: "suppository",
        many: "suppositories",
        spellings: &["supp", "supps", "suppository", "suppositories"],
    },
    Unit {
        short: "lozenge",
        one: "lozenge",
        many: "lozenges",
        spellings: &["lozenge", "lozenges", "loz"],
    },
    Unit {
        short: "application",
        one: "application",
        many: "applications",
        spellings: &["application", "applications", "app", "apps"],
    },
];

/// Units that measure an amount (never pluralised in a sig).
const MEASURES: [&str; 6] = ["mL", "mg", "mcg", "g", "mmol", "unit"];

/// Routes: canonical form, accepted spellings, and the words for the sentence.
const ROUTES: &[(&str, &[&str], &str)] = &[
    ("PO", &["po", "oral", "orally"], "by mouth"),
    (
        "SL",
        &["sl", "sublingual", "sublingually"],
        "under the tongue",
    ),
    ("BUCC", &["bucc", "buccal"], "between the cheek and the gum"),
    ("INH", &["inh", "inhaled"], ""),
    ("NAS", &["nas", "nasal", "intranasal"], "in the nose"),
    ("TOP", &["top", "topical", "topically"], "to the skin"),
    ("TD", &["td", "transdermal"], "to the skin"),
    ("PR", &["pr", "rectal", "rectally"], "rectally"),
    ("PV", &["pv", "vaginal", "vaginally"], "vaginally"),
    (
        "subcut",
        &[
            "subcut",
            "sc",
            "sq",
            "subq",
            "subcutaneous",
            "subcutaneously",
        ],
        "under the skin",
    ),
    ("IM", &["im", "intramuscular"], "into the muscle"),
    ("IV", &["iv", "intravenous"], "into a vein"),
    ("OPH", &["oph", "ophth", "ophthalmic"], "in the eye"),
    ("OTIC", &["otic"], "in the ear"),
];

/// Eye and ear routes, only with drops: canonical form and the words.
const EYES_EARS: &[(&str, &str)] = &[
    ("OD", "in the right eye"),
    ("OS", "in the left eye"),
    ("OU", "in both eyes"),
    ("AD", "in the right ear"),
    ("AS", "in the left ear"),
    ("AU", "in both ears"),
];

/// Fixed frequencies: canonical form, accepted spellings (a spelling may be several words),
/// the sentence, and administrations a day (0 for a single dose).
const FREQUENCIES: &[(&str, &[&str], &str, f64)] = &[
    (
        "daily",
        &["daily", "od", "qd", "once daily", "once a day", "q24h"],
        "once a day",
        1.0,
    ),
    (
        "BID",
        &["bid", "twice daily", "twice a day", "q12h"],
        "twice a day",
        2.0,
    ),
    (
        "TID",
        &["tid", "three times a day"],
        "three times a day",
        3.0,
    ),
    ("QID", &["qid", "four times a day"], "four times a day", 4.0),
    ("QAM", &["qam", "every morning"], "every morning", 1.0),
    ("QPM", &["qpm", "every evening"], "every evening", 1.0),
    ("QHS", &["qhs", "hs", "at bedtime"], "at bedtime", 1.0),
    (
        "Q48H",
        &["q48h", "qod", "eod", "every other day"],
        "every other day",
        0.5,
    ),
    (
        "weekly",
        &[
            "weekly",
            "qweek",
            "qwk",
            "q1w",
            "once weekly",
            "once a week",
        ],
        "once a week",
        1.0 / 7.0,
    ),
    (
        "monthly",
        &["monthly", "qmonth", "once a month"],
        "once a month",
        1.0 / 30.0,
    ),
    ("STAT", &["stat"], "now", 0.0),
    ("once", &["once"], "once", 0.0),
];

fn unit_of(word: &str) -> Option<&'static Unit> {
    let w = word.to_lowercase();
    UNITS.iter().find(|u| u.spellings.contains(&w.as_str()))
}

fn unit_named(short: &str) -> Option<&'static Unit> {
    UNITS.iter().find(|u| u.short == short)
}

fn route_of(word: &str) -> Option<&'static str> {
    let w = word.to_ascii_lowercase();
    ROUTES
        .iter()
        .find(|r| r.1.contains(&w.as_str()))
        .map(|r| r.0)
}

/// An eye or ear route: `OD`, `OS`, `OU` in any case; `AD`, `AS`, `AU` only in capitals
/// (`as` and `ad` are English words).
fn eye_ear_of(word: &str) -> Option<&'static str> {
    let w = word.to_ascii_uppercase();
    let found = EYES_EARS.iter().find(|r| r.0 == w).map(|r| r.0)?;
    (found.starts_with('O') || word == w).then_some(found)
}

/// `Q5MIN` → the canonical form and the minutes.
fn every_minutes(word: &str) -> Option<(String, u32)> {
    let w = word.to_ascii_uppercase();
    let inner = w.strip_prefix('Q')?.strip_suffix("MIN")?;
    let n: u32 = inner.parse().ok().filter(|n| (1..=60).contains(n))?;
    (!inner.starts_with('0')).then_some((w, n))
}

/// `Q4H` / `Q4-6H` → the canonical form and the hours.
fn every_hours(word: &str) -> Option<(String, u32, u32)> {
    let w = word.to_ascii_uppercase();
    let inner = w.strip_prefix('Q')?.strip_suffix('H')?;
    let whole = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0'))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (lo, hi) = match inner.split_once('-') {
        Some((a, b)) => (whole(a)?, whole(b)?),
        None => {
            let n = whole(inner)?;
            (n, n)
        }
    };
    if hi < lo || hi > 72 {
        return None;
    }
    Some((w, lo, hi))
}

/// A frequency starting at `words[i]`: its canonical form and how many words it took.
fn frequency_at(words: &[&str], i: usize) -> Option<(String, usize)> {
    for n in (1..=4).rev() {
        let Some(phrase) = words.get(i..i + n) else {
            continue;
        };
        let phrase = phrase.join(" ").to_lowercase();
        if let Some(f) = FREQUENCIES.iter().find(|f| f.1.contains(&phrase.as_str())) {
            return Some((f.0.to_string(), n));
        }
    }
    if let Some((c, _)) = every_minutes(words.get(i)?) {
        return Some((c, 1));
    }
    every_hours(words.get(i)?).map(|(c, _, _)| {
        // Every 24, 12 and 48 hours have names.
        match c.as_str() {
            "Q24H" => ("daily".to_string(), 1),
            "Q12H" => ("BID".to_string(), 1),
            _ => (c, 1),
        }
    })
}

/// A number as a prescriber may write it, or why not (ISMP's do-not-use forms).
pub fn number(s: &str) -> Result<f64, String> {
    let bad = |why: String| Err(format!("\"{s}\" {why}"));
    if s.contains(',') {
        return bad("has a comma: write numbers without one (1000, or 1.5 for a decimal)".into());
    }
    if s.bytes().any(|b| b == b'e' || b == b'E') && s.parse::<f64>().is_ok() {
        return bad(format!(
            "is an exponent: write the number in full ({})",
            plain(s.parse::<f64>().unwrap_or(0.0))
        ));
    }
    if let Some(rest) = s.strip_prefix('.')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit())
    {
        return bad(format!(
            "has no leading zero and can be read as {rest}: write 0.{rest}"
        ));
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || (s.contains('.') && !digits(frac)) {
        return bad("is not a number like 1, 0.5 or 250".into());
    }
    if s.contains('.') && frac.ends_with('0') {
        let fixed = plain(s.parse::<f64>().unwrap_or(0.0));
        return bad(format!(
            "has a trailing zero and can be read as {}: write {fixed}",
            s.replace('.', "")
        ));
    }
    if int.len() > 1 && int.starts_with('0') {
        return bad(format!(
            "has a leading zero: write {}",
            plain(s.parse::<f64>().unwrap_or(0.0))
        ));
    }
    let n: f64 = s.parse().map_err(|_| format!("\"{s}\" is not a number"))?;
    if n <= 0.0 {
        return bad("must be more than 0".into());
    }
    if n >= 100_000.0 {
        return bad("is too large".into());
    }
    Ok(n)
}

/// A number written the safe way: no trailing zeros, a leading zero (`0.5`, `1`, `2.25`).
pub fn plain(n: f64) -> String {
    let s = format!("{:.4}", n);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A dose: a number, or a range `lo-hi` (smaller first); `1/2` is read as 0.5.
fn dose_of(s: &str) -> Result<(String, f64, f64), String> {
    if let Some((a, b)) = s.split_once('/')
        && a == "1"
        && b == "2"
    {
        return Ok(("0.5".into(), 0.5, 0.5));
    }
    match s.split_once('-') {
        Some((a, b)) => {
            let (lo, hi) = (number(a)?, number(b)?);
            if hi < lo {
                return Err(format!(
                    "the range \"{s}\" is reversed: write the smaller dose first ({b}-{a})"
                ));
            }
            if hi == lo {
                return Err(format!("\"{s}\" is not a range: write {a}"));
            }
            Ok((s.to_string(), lo, hi))
        }
        None => number(s).map(|n| (s.to_string(), n, n)),
    }
}

/// Splits a dose glued to its unit: `500mg` → `500`, `mg`.
fn split_glued(word: &str) -> Option<(&str, &str)> {
    let at = word.find(|c: char| c.is_alphabetic() && c != 'e' && c != 'E')?;
    (at > 0 && unit_of(&word[at..]).is_some()).then(|| (&word[..at], &word[at..]))
}

fn err(message: impl Into<String>) -> String {
    format!("sig: {}", message.into())
}

/// Parses a sig; the error says what was wrong and how to write it.
pub fn parse(text: &str) -> Result<Sig, String> {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Err(err("empty; write e.g. \"1 tab PO BID x 10 days\""));
    }
    if let Some((d, u)) = split_glued(words[0]) {
        words.splice(0..1, [d, u]);
    }
    let (dose, _, _) = dose_of(words[0]).map_err(|e| err(format!("the dose {e}")))?;
    let unit_word = words.get(1).copied().unwrap_or("nothing");
    if [
        "tsp",
        "tsps",
        "teaspoon",
        "teaspoons",
        "tbsp",
        "tablespoon",
        "tablespoons",
    ]
    .contains(&unit_word.to_ascii_lowercase().as_str())
    {
        return Err(err(format!(
            "\"{unit_word}\": measure liquids in mL (a teaspoon is 5 mL), so that the dose is measured, not guessed"
        )));
    }
    let unit = unit_of(unit_word)
        .ok_or_else(|| {
            err(format!(
                "after the dose, a unit (tab, cap, puff, mL, mg, drop, unit, …); got {unit_word:?}"
            ))
        })?
        .short;
    let drops = unit == "drop" || unit == "application";
    let mut sig = Sig {
        dose,
        unit: unit.to_string(),
        route: None,
        frequency: None,
        prn: false,
        prn_reason: None,
        max_daily: None,
        duration: None,
    };
    let mut reason: Vec<&str> = Vec::new();
    let mut in_reason = false;
    let mut i = 2;
    while i < words.len() {
        let w = words[i];
        let lower = w.to_lowercase();
        // A duration: `x 10 days`, `for 2 weeks`, `x7d`, `x 7`.
        if let Some(n) = duration_at(&words, i)? {
            if sig.duration.is_some() {
                return Err(err("two durations"));
            }
            sig.duration = Some((n.0, n.1));
            i += n.2;
            in_reason = false;
            continue;
        }
        if lower == "max" || lower == "maximum" {
            let (max, used) = max_at(&words, i, unit)?;
            if sig.max_daily.is_some() {
                return Err(err("two maximum daily doses"));
            }
            sig.max_daily = Some(max);
            i += used;
            in_reason = false;
            continue;
        }
        if lower == "prn"
            || (lower == "as"
                && words
                    .get(i + 1)
                    .is_some_and(|n| n.eq_ignore_ascii_case("needed")))
        {
            if sig.prn {
                return Err(err("PRN twice"));
            }
            sig.prn = true;
            in_reason = true;
            i += if lower == "prn" { 1 } else { 2 };
            // `PRN for pain`: the `for` belongs to the reason.
            if words.get(i).is_some_and(|w| w.eq_ignore_ascii_case("for"))
                && duration_at(&words, i)?.is_none()
            {
                i += 1;
            }
            continue;
        }
        // With drops, OD/OS/OU and AD/AS/AU are eyes and ears.
        if drops
            && !in_reason
            && let Some(r) = eye_ear_of(w)
        {
            if let Some(had) = &sig.route {
                return Err(err(format!(
                    "two routes ({had} and {r}): with drops, {r} means {}; write \"daily\" for once a day",
                    EYES_EARS.iter().find(|x| x.0 == r).map_or("", |x| x.1)
                )));
            }
            sig.route = Some(r.to_string());
            i += 1;
            continue;
        }
        if !drops && !in_reason && eye_ear_of(w).is_some_and(|r| r != "OD") {
            let r = w.to_ascii_uppercase();
            let means = EYES_EARS.iter().find(|x| x.0 == r).map_or("", |x| x.1);
            return Err(err(format!(
                "{r} means {means}: only with drops (e.g. \"1 drop {r} BID\")"
            )));
        }
        if sig.frequency.is_none()
            && let Some((f, used)) = frequency_at(&words, i)
        {
            sig.frequency = Some(f);
            i += used;
            in_reason = false;
            continue;
        }
        if !in_reason && let Some(r) = route_of(w) {
            if let Some(had) = &sig.route {
                return Err(err(format!("two routes ({had} and {r})")));
            }
            sig.route = Some(r.to_string());
            i += 1;
            continue;
        }
        if in_reason {
            reason.push(w);
            i += 1;
            continue;
        }
        return Err(err(format!(
            "did not understand {w:?} (expected a route, a frequency, PRN, \"max 8 tabs/day\" or \"x 10 days\")"
        )));
    }
    if !reason.is_empty() {
        sig.prn_reason = Some(reason.join(" "));
    }
    if sig.frequency.is_none() && !sig.prn {
        if let Some(r) = sig.route.as_deref().filter(|r| eye_ear_of(r).is_some()) {
            let means = EYES_EARS.iter().find(|x| x.0 == r).map_or("", |x| x.1);
            return Err(err(format!(
                "with drops, {r} means {means}: how often? (e.g. \"{} drop {r} QID\"; for once a day write \"daily\")",
                sig.dose
            )));
        }
        return Err(err(
            "how often? add a frequency (daily, BID, TID, QID, QHS, Q4H, weekly…) or PRN",
        ));
    }
    if sig.max_daily.is_some() && !sig.prn && sig.frequency.is_some() {
        // A maximum with a fixed schedule is allowed (e.g. titration), nothing to check.
    }
    Ok(sig)
}

/// A duration at `words[i]`: `(n, unit, words used)`.
fn duration_at(words: &[&str], i: usize) -> Result<Option<(u32, String, usize)>, String> {
    let w = words[i].to_lowercase();
    let (n_text, unit_text, used) = if w == "x" || w == "for" {
        let Some(n) = words.get(i + 1) else {
            return if w == "x" {
                Err(err("after \"x\", a number of days, weeks or months"))
            } else {
                Ok(None)
            };
        };
        if w == "for" && !n.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        // `x 7d`
        match split_days(n) {
            Some((num, unit)) => (num.to_string(), Some(unit.to_string()), 2),
            None => (n.to_string(), words.get(i + 2).map(|u| u.to_lowercase()), 3),
        }
    } else if let Some(rest) = w.strip_prefix('x')
        && rest.starts_with(|c: char| c.is_ascii_digit())
    {
        // `x7d`, `x7 days`
        match split_days(rest) {
            Some((num, unit)) => (num.to_string(), Some(unit.to_string()), 1),
            None => (
                rest.to_string(),
                words.get(i + 1).map(|u| u.to_lowercase()),
                2,
            ),
        }
    } else {
        return Ok(None);
    };
    let n: u32 = n_text
        .parse()
        .ok()
        .filter(|n| (1..=3650).contains(n))
        .ok_or_else(|| err("after \"x\", a number of days, weeks or months"))?;
    let unit = match unit_text.as_deref() {
        Some("day" | "days" | "d") => "days",
        Some("week" | "weeks" | "wk" | "wks" | "w") => "weeks",
        Some("month" | "months" | "mo" | "mos") => "months",
        other => {
            return Err(err(format!(
                "after \"x {n}\", days, weeks or months; got {:?}",
                other.unwrap_or("nothing")
            )));
        }
    };
    Ok(Some((n, unit.to_string(), used)))
}

/// `7d` → `7`, `d`.
fn split_days(s: &str) -> Option<(&str, &str)> {
    let at = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, u) = s.split_at(at);
    (!n.is_empty() && ["d", "day", "days", "w", "wk", "wks", "mo"].contains(&u)).then_some((n, u))
}

/// `max 8 tabs/day`, `max 8/day`, `max 4 g per day`, `max 6 in 24 hours`: the maximum and
/// the words used.
fn max_at(words: &[&str], i: usize, dose_unit: &str) -> Result<(MaxDaily, usize), String> {
    let example = "write e.g. \"max 8 tabs/day\"";
    // Split `8/day` and `tabs/day` into their parts.
    let mut parts: Vec<String> = Vec::new();
    let mut used = 1;
    for w in words.iter().skip(i + 1).take(5) {
        used += 1;
        for (k, p) in w.split('/').enumerate() {
            if k > 0 {
                parts.push("/".into());
            }
            if !p.is_empty() {
                parts.push(p.to_lowercase());
            }
        }
        let joined = parts.join(" ");
        if joined.ends_with("/ day")
            || joined.ends_with("per day")
            || joined.ends_with("a day")
            || joined.ends_with("daily")
            || joined.ends_with("/ 24h")
            || joined.ends_with("in 24 hours")
            || joined.ends_with("per 24 hours")
        {
            break;
        }
    }
    let amount = parts
        .first()
        .ok_or_else(|| err(format!("after \"max\", the most in a day: {example}")))?;
    let n = number(amount).map_err(|e| err(format!("the maximum {e}")))?;
    let mut k = 1;
    let unit = match parts.get(k).and_then(|u| unit_of(u)) {
        Some(u) => {
            k += 1;
            u.short
        }
        None => dose_unit,
    };
    let rest = parts[k.min(parts.len())..].join(" ");
    if ![
        "/ day",
        "per day",
        "a day",
        "daily",
        "/ 24h",
        "in 24 hours",
        "per 24 hours",
    ]
    .contains(&rest.as_str())
    {
        return Err(err(format!("after \"max {amount}\", a day: {example}")));
    }
    // The same unit, or a mass (`max 4 g/day` with a dose in tablets: the product's strength
    // converts it).
    if unit != dose_unit && mg_per(unit).is_none() {
        return Err(err(format!(
            "the maximum is in {unit} but the dose is in {dose_unit}: give both in the same unit"
        )));
    }
    Ok((
        MaxDaily {
            amount: plain(n),
            unit: unit.to_string(),
        },
        used,
    ))
}

/// Milligrams in one `unit` of mass, if it is a mass.
pub fn mg_per(unit: &str) -> Option<f64> {
    match unit {
        "mg" => Some(1.0),
        "mcg" => Some(0.001),
        "g" => Some(1000.0),
        _ => None,
    }
}

impl Sig {
    /// The short sig, in canonical spelling.
    pub fn format(&self) -> String {
        let mut parts = vec![self.dose.clone(), self.short_unit(&self.dose, &self.unit)];
        parts.extend(self.route.clone());
        parts.extend(self.frequency.clone());
        if self.prn {
            parts.push("PRN".into());
            parts.extend(self.prn_reason.clone());
        }
        if let Some(m) = &self.max_daily {
            parts.push(format!(
                "max {} {}/day",
                m.amount,
                self.short_unit(&m.amount, &m.unit)
            ));
        }
        if let Some((n, unit)) = &self.duration {
            parts.push(format!("x {n} {}", duration_unit(*n, unit)));
        }
        parts.join(" ")
    }

    /// The unit as written in a sig: `tab`, `2 tabs`; measures (`mL`, `mg`) never change.
    fn short_unit(&self, amount: &str, unit: &str) -> String {
        let plural = plural(amount);
        match unit {
            u if MEASURES.contains(&u) && u != "unit" => u.to_string(),
            "patch" if plural => "patches".into(),
            u if plural => format!("{u}s"),
            u => u.into(),
        }
    }

    /// The directions as a sentence: `Take 1 tablet by mouth twice a day for 10 days.`
    pub fn readable(&self) -> String {
        let unit = words_of(&self.dose, &self.unit);
        let route = self.route.as_deref();
        let (verb, object) = match (route, self.unit.as_str()) {
            (Some("INH"), "cap") => ("Inhale the contents of", format!("{} {unit}", self.dose)),
            (Some("INH"), _) => ("Inhale", format!("{} {unit}", self.dose)),
            (Some("subcut" | "IM" | "IV"), _) => ("Inject", format!("{} {unit}", self.dose)),
            (Some("TOP" | "TD"), _) => ("Apply", format!("{} {unit}", self.dose)),
            (Some("PR" | "PV"), _) => ("Insert", format!("{} {unit}", self.dose)),
            (Some("OD" | "OS" | "OU" | "AD" | "AS" | "AU" | "OPH" | "OTIC"), "drop") => {
                ("Instil", format!("{} {unit}", self.dose))
            }
            (Some("OD" | "OS" | "OU" | "OPH"), "application") => {
                ("Apply", format!("{} {unit} of ointment", self.dose))
            }
            (Some("NAS" | "SL"), "spray") => ("Spray", format!("{} {unit}", self.dose)),
            (Some("SL" | "BUCC"), _) => ("Place", format!("{} {unit}", self.dose)),
            (_, "puff") => ("Inhale", format!("{} {unit}", self.dose)),
            (_, "drop") => ("Instil", format!("{} {unit}", self.dose)),
            (_, "patch" | "application") => ("Apply", format!("{} {unit}", self.dose)),
            (_, "supp") => ("Insert", format!("{} {unit}", self.dose)),
            (_, "spray") => ("Spray", format!("{} {unit}", self.dose)),
            (_, "lozenge") => ("Dissolve", format!("{} {unit} in the mouth", self.dose)),
            _ => ("Take", format!("{} {unit}", self.dose)),
        };
        let mut s = format!("{verb} {object}");
        if let Some(r) = route.filter(|_| self.unit != "lozenge") {
            let words = ROUTES
                .iter()
                .find(|x| x.0 == r)
                .map(|x| x.2)
                .or_else(|| EYES_EARS.iter().find(|x| x.0 == r).map(|x| x.1))
                .unwrap_or("");
            if !words.is_empty() {
                s += &format!(" {words}");
            }
        }
        if let Some(f) = &self.frequency {
            match FREQUENCIES.iter().find(|x| x.0 == f) {
                Some((_, _, words, _)) => s += &format!(" {words}"),
                None => {
                    if let Some((_, lo, hi)) = every_hours(f) {
                        if lo == hi {
                            s += &format!(" every {lo} hours");
                        } else {
                            s += &format!(" every {lo} to {hi} hours");
                        }
                    } else if let Some((_, n)) = every_minutes(f) {
                        s += &format!(" every {n} minutes");
                    }
                }
            }
        }
        if self.prn {
            s += " as needed";
            if let Some(r) = &self.prn_reason {
                s += &format!(" for {r}");
            }
        }
        if let Some((n, unit)) = &self.duration {
            s += &format!(" for {n} {}", duration_unit(*n, unit));
        }
        if let Some(m) = &self.max_daily {
            s += &format!(
                ". Do not take more than {} {} a day",
                m.amount,
                words_of(&m.amount, &m.unit)
            );
        }
        s + "."
    }

    /// The larger end of the dose.
    pub fn dose_max(&self) -> f64 {
        dose_of(&self.dose).map_or(0.0, |(_, _, hi)| hi)
    }

    /// The dose's two ends.
    pub fn dose_range(&self) -> (f64, f64) {
        dose_of(&self.dose).map_or((0.0, 0.0), |(_, lo, hi)| (lo, hi))
    }

    /// Administrations a day (the most the frequency allows); `None` for a single dose
    /// (STAT, once) or no frequency.
    pub fn per_day(&self) -> Option<f64> {
        let f = self.frequency.as_deref()?;
        match FREQUENCIES.iter().find(|x| x.0 == f) {
            Some((_, _, _, n)) if *n > 0.0 => Some(*n),
            Some(_) => None,
            None => every_hours(f).map(|(_, lo, _)| 24.0 / f64::from(lo)),
        }
    }

    /// A single dose (STAT, once).
    pub fn single(&self) -> bool {
        matches!(self.frequency.as_deref(), Some("STAT" | "once"))
    }

    /// Days the prescription lasts, when it says.
    pub fn days(&self) -> Option<f64> {
        let (n, unit) = self.duration.as_ref()?;
        Some(match unit.as_str() {
            "days" => f64::from(*n),
            "weeks" => f64::from(*n) * 7.0,
            _ => f64::from(*n) * 30.0,
        })
    }

    /// The total the directions use, in the sig's own unit (10500 mg, 56 puffs): the
    /// largest dose at the most frequent schedule for the whole duration; for PRN, the
    /// maximum daily dose for the duration. It is not the quantity to dispense, which is in
    /// the product's dispensable unit (see `dispense`). `Err` says what is missing.
    pub fn total(&self) -> Result<(f64, String), String> {
        if self.single() && !self.prn {
            return Ok((self.dose_max(), self.unit.clone()));
        }
        if self.prn {
            let (Some(max), Some(days)) = (&self.max_daily, self.days()) else {
                return Err(
                    "a PRN sig sets no total: give the quantity, or a maximum daily dose and a duration (\"max 6 tabs/day x 5 days\")".into(),
                );
            };
            let amount = number(&max.amount).unwrap_or(0.0);
            // In the dose's unit when both are masses; else in the maximum's own.
            return Ok(match (mg_per(&max.unit), mg_per(&self.unit)) {
                (Some(a), Some(b)) => (amount * a / b * days, self.unit.clone()),
                _ => (amount * days, max.unit.clone()),
            });
        }
        let per_day = self
            .per_day()
            .ok_or("the frequency sets no daily amount: give the quantity")?;
        let days = self
            .days()
            .ok_or("the sig has no duration: add one (\"x 10 days\") or give the quantity")?;
        Ok((self.dose_max() * per_day * days, self.unit.clone()))
    }
}

/// More than one: `2`, `1-2` (not `1`, `0.5`).
fn plural(amount: &str) -> bool {
    amount.contains('-') || amount.parse::<f64>().is_ok_and(|d| d > 1.0)
}

/// The unit's words for an amount: `tablet`, `tablets`, `mL`.
pub fn words_of(amount: &str, unit: &str) -> String {
    match unit_named(unit) {
        Some(u) if plural(amount) => u.many.into(),
        Some(u) => u.one.into(),
        None => unit.into(),
    }
}

fn duration_unit(n: u32, unit: &str) -> &str {
    if n == 1 {
        unit.trim_end_matches('s')
    } else {
        unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sigs as prescribers write them, each in its canonical spelling, with the sentence a
    /// patient reads: every form the parser knows.
    const REAL_SIGS: &[(&str, &str)] = &[
        (
            "1 tab PO BID x 10 days",
            "Take 1 tablet by mouth twice a day for 10 days.",
        ),
        ("1 tab PO daily", "Take 1 tablet by mouth once a day."),
        (
            "2 tabs PO daily x 5 days",
            "Take 2 tablets by mouth once a day for 5 days.",
        ),
        (
            "1 tab PO TID x 7 days",
            "Take 1 tablet by mouth three times a day for 7 days.",
        ),
        (
            "1 tab PO QID x 10 days",
            "Take 1 tablet by mouth four times a day for 10 days.",
        ),
        ("0.5 tab PO QAM", "Take 0.5 tablet by mouth every morning."),
        ("1 tab PO QPM", "Take 1 tablet by mouth every evening."),
        ("1 cap PO QHS", "Take 1 capsule by mouth at bedtime."),
        (
            "1 cap PO daily x 3 months",
            "Take 1 capsule by mouth once a day for 3 months.",
        ),
        ("1 tab PO weekly", "Take 1 tablet by mouth once a week."),
        ("1 tab PO Q48H", "Take 1 tablet by mouth every other day."),
        ("1 tab PO monthly", "Take 1 tablet by mouth once a month."),
        (
            "500 mg PO TID x 7 days",
            "Take 500 mg by mouth three times a day for 7 days.",
        ),
        (
            "875 mg PO BID x 10 days",
            "Take 875 mg by mouth twice a day for 10 days.",
        ),
        (
            "250 mg PO Q6H x 5 days",
            "Take 250 mg by mouth every 6 hours for 5 days.",
        ),
        ("0.125 mg PO daily", "Take 0.125 mg by mouth once a day."),
        ("2.5 mg PO daily", "Take 2.5 mg by mouth once a day."),
        ("100 mcg PO daily", "Take 100 mcg by mouth once a day."),
        ("1 g PO daily", "Take 1 g by mouth once a day."),
        (
            "10 mL PO TID x 7 days",
            "Take 10 mL by mouth three times a day for 7 days.",
        ),
        (
            "5 mL PO QHS PRN cough",
            "Take 5 mL by mouth at bedtime as needed for cough.",
        ),
        ("20 mmol PO daily", "Take 20 mmol by mouth once a day."),
        (
            "1 tab PO Q4H PRN pain",
            "Take 1 tablet by mouth every 4 hours as needed for pain.",
        ),
        (
            "1-2 tabs PO Q4-6H PRN pain max 8 tabs/day",
            "Take 1-2 tablets by mouth every 4 to 6 hours as needed for pain. Do not take more than 8 tablets a day.",
        ),
        (
            "1 tab PO Q6H PRN nausea x 3 days",
            "Take 1 tablet by mouth every 6 hours as needed for nausea for 3 days.",
        ),
        (
            "1 tab PO PRN anxiety",
            "Take 1 tablet by mouth as needed for anxiety.",
        ),
        (
            "1 tab PO QHS PRN sleep max 1 tab/day",
            "Take 1 tablet by mouth at bedtime as needed for sleep. Do not take more than 1 tablet a day.",
        ),
        (
            "1000 mg PO Q6H PRN pain max 4 g/day",
            "Take 1000 mg by mouth every 6 hours as needed for pain. Do not take more than 4 g a day.",
        ),
        (
            "1 tab PO PRN pain max 6 tabs/day x 5 days",
            "Take 1 tablet by mouth as needed for pain for 5 days. Do not take more than 6 tablets a day.",
        ),
        ("1 tab SL STAT", "Place 1 tablet under the tongue now."),
        (
            "1 spray SL Q5MIN PRN chest pain",
            "Spray 1 spray under the tongue every 5 minutes as needed for chest pain.",
        ),
        ("1 tab PO once", "Take 1 tablet by mouth once."),
        (
            "2 puffs INH QID PRN",
            "Inhale 2 puffs four times a day as needed.",
        ),
        (
            "2 puffs INH Q4H PRN shortness of breath",
            "Inhale 2 puffs every 4 hours as needed for shortness of breath.",
        ),
        ("1 puff INH BID", "Inhale 1 puff twice a day."),
        (
            "1 cap INH daily",
            "Inhale the contents of 1 capsule once a day.",
        ),
        (
            "2 sprays NAS daily",
            "Spray 2 sprays in the nose once a day.",
        ),
        (
            "1 spray NAS BID PRN congestion",
            "Spray 1 spray in the nose twice a day as needed for congestion.",
        ),
        ("1 patch TD daily", "Apply 1 patch to the skin once a day."),
        (
            "1 patch TD Q72H x 30 days",
            "Apply 1 patch to the skin every 72 hours for 30 days.",
        ),
        (
            "1 application TOP BID x 2 weeks",
            "Apply 1 application to the skin twice a day for 2 weeks.",
        ),
        (
            "1 application TOP daily PRN itch",
            "Apply 1 application to the skin once a day as needed for itch.",
        ),
        (
            "1 drop OD QID x 1 week",
            "Instil 1 drop in the right eye four times a day for 1 week.",
        ),
        (
            "1 drop OS BID",
            "Instil 1 drop in the left eye twice a day.",
        ),
        ("1 drop OU QHS", "Instil 1 drop in both eyes at bedtime."),
        (
            "2 drops OU daily",
            "Instil 2 drops in both eyes once a day.",
        ),
        (
            "2 drops OPH QID x 1 week",
            "Instil 2 drops in the eye four times a day for 1 week.",
        ),
        (
            "1 application OU QHS",
            "Apply 1 application of ointment in both eyes at bedtime.",
        ),
        (
            "3 drops AD TID x 7 days",
            "Instil 3 drops in the right ear three times a day for 7 days.",
        ),
        (
            "4 drops AS BID x 5 days",
            "Instil 4 drops in the left ear twice a day for 5 days.",
        ),
        ("2 drops AU BID", "Instil 2 drops in both ears twice a day."),
        (
            "2 drops OTIC TID",
            "Instil 2 drops in the ear three times a day.",
        ),
        (
            "10 units subcut QHS",
            "Inject 10 units under the skin at bedtime.",
        ),
        (
            "6 units subcut TID",
            "Inject 6 units under the skin three times a day.",
        ),
        (
            "40 mg subcut daily x 10 days",
            "Inject 40 mg under the skin once a day for 10 days.",
        ),
        (
            "1 mL IM monthly",
            "Inject 1 mL into the muscle once a month.",
        ),
        (
            "1000 mcg IM monthly",
            "Inject 1000 mcg into the muscle once a month.",
        ),
        (
            "1 supp PR QHS PRN constipation",
            "Insert 1 suppository rectally at bedtime as needed for constipation.",
        ),
        (
            "1 supp PV QHS x 3 days",
            "Insert 1 suppository vaginally at bedtime for 3 days.",
        ),
        (
            "1 tab BUCC daily",
            "Place 1 tablet between the cheek and the gum once a day.",
        ),
        (
            "1 lozenge PO Q2H PRN sore throat",
            "Dissolve 1 lozenge in the mouth every 2 hours as needed for sore throat.",
        ),
        (
            "1 tab PO BID x 1 day",
            "Take 1 tablet by mouth twice a day for 1 day.",
        ),
    ];

    #[test]
    fn real_sigs_round_trip() {
        assert!(REAL_SIGS.len() >= 60, "{}", REAL_SIGS.len());
        for (s, sentence) in REAL_SIGS {
            let sig = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(&sig.format(), s);
            assert_eq!(parse(&sig.format()).unwrap(), sig, "{s}");
            if !sentence.is_empty() {
                assert_eq!(&sig.readable(), sentence, "{s}");
            }
        }
    }

    #[test]
    fn other_spellings_become_canonical() {
        for (typed, canonical) in [
            ("2 puff inh qid prn", "2 puffs INH QID PRN"),
            ("1 tablet po daily", "1 tab PO daily"),
            ("1 tab po od", "1 tab PO daily"),
            ("1 tab PO QD", "1 tab PO daily"),
            ("1 tab PO q24h", "1 tab PO daily"),
            ("1 tab PO q12h x 7 days", "1 tab PO BID x 7 days"),
            ("1 TAB PO BID X 10 D", "1 tab PO BID x 10 days"),
            ("1 tab PO BID x10d", "1 tab PO BID x 10 days"),
            ("1 tab po bid for 10 days", "1 tab PO BID x 10 days"),
            ("1 tab po prn q4h", "1 tab PO Q4H PRN"),
            ("1 tab po prn pain q4h", "1 tab PO Q4H PRN pain"),
            ("1 tab po q4h prn for pain", "1 tab PO Q4H PRN pain"),
            ("1 tab po q4h as needed for pain", "1 tab PO Q4H PRN pain"),
            (
                "1-2 tab po q4-6h prn pain max 8/day",
                "1-2 tabs PO Q4-6H PRN pain max 8 tabs/day",
            ),
            (
                "1 tab po prn max 6 tabs per day",
                "1 tab PO PRN max 6 tabs/day",
            ),
            ("500mg po tid x 7 days", "500 mg PO TID x 7 days"),
            ("10 u sc qhs", "10 units subcut QHS"),
            ("10 iu sc qhs", "10 units subcut QHS"),
            ("5 cc po tid", "5 mL PO TID"),
            ("100 ug po daily", "100 mcg PO daily"),
            ("1 gtt od qid", "1 drop OD QID"),
            ("1 gtt ou daily", "1 drop OU daily"),
            ("1 tab po qod", "1 tab PO Q48H"),
            ("1 tab po every other day", "1 tab PO Q48H"),
            ("1/2 tab po daily", "0.5 tab PO daily"),
            ("1 tab po twice daily", "1 tab PO BID"),
            ("1 cap po at bedtime", "1 cap PO QHS"),
            ("1 tab po once weekly", "1 tab PO weekly"),
        ] {
            assert_eq!(
                parse(typed)
                    .unwrap_or_else(|e| panic!("{typed}: {e}"))
                    .format(),
                canonical,
                "{typed}"
            );
        }
    }

    #[test]
    fn prn_keeps_its_frequency_and_maximum() {
        let s = parse("1 tab po prn q4h").unwrap();
        assert!(s.prn);
        assert_eq!(s.frequency.as_deref(), Some("Q4H"));
        let s = parse("1-2 tabs PO Q4-6H PRN pain max 8 tabs/day").unwrap();
        assert_eq!(s.prn_reason.as_deref(), Some("pain"));
        assert_eq!(
            s.max_daily,
            Some(MaxDaily {
                amount: "8".into(),
                unit: "tab".into()
            })
        );
    }

    #[test]
    fn od_is_an_eye_only_with_drops() {
        assert_eq!(
            parse("1 tab PO OD").unwrap().frequency.as_deref(),
            Some("daily")
        );
        let s = parse("1 drop OD QID").unwrap();
        assert_eq!(s.route.as_deref(), Some("OD"));
        assert_eq!(s.frequency.as_deref(), Some("QID"));
        for (bad, says) in [
            ("1 gtt od", "OD means in the right eye: how often?"),
            ("1 drop OU OD", "two routes (OU and OD)"),
            ("1 tab PO OS", "OS means in the left eye: only with drops"),
            ("2 tabs AU daily", "only with drops"),
            ("1 tab PO daily as directed", "did not understand \"as\""),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn ismp_do_not_use_forms_are_refused_with_how_to_write_them() {
        for (bad, says) in [
            (
                ".5 tab PO daily",
                "no leading zero and can be read as 5: write 0.5",
            ),
            (
                "1.0 mg PO daily",
                "trailing zero and can be read as 10: write 1",
            ),
            (
                "2.50 mg PO daily",
                "trailing zero and can be read as 250: write 2.5",
            ),
            (
                "1e3 mg PO daily",
                "exponent: write the number in full (1000)",
            ),
            (
                "2-1 tabs PO Q4H PRN",
                "reversed: write the smaller dose first (1-2)",
            ),
            ("1-1 tab PO daily", "not a range: write 1"),
            ("1,000 mg PO daily", "comma"),
            ("01 tab PO daily", "leading zero: write 1"),
            ("0 tab PO daily", "more than 0"),
            ("1 tsp PO TID", "measure liquids in mL"),
            ("1 tab PO PRN max .5 tab/day", "write 0.5"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.starts_with("sig:") && e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn errors_say_what_was_expected() {
        for (bad, says) in [
            ("", "empty"),
            ("one tab PO BID", "dose"),
            ("1 bottle PO BID", "unit"),
            ("1 tab PO", "how often"),
            ("1 tab PO BID x ten days", "after \"x\""),
            ("1 tab PO BID x 10 years", "days, weeks or months"),
            ("1 tab PO BID with food", "did not understand"),
            ("1 tab PO IM BID", "two routes"),
            ("1 tab PO PRN max 8 mL/day", "same unit"),
            ("1 tab PO PRN max 8 tabs", "a day"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.starts_with("sig:") && e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn totals_are_in_the_sigs_own_unit() {
        let t = |s: &str| parse(s).unwrap().total();
        assert_eq!(t("1 tab PO BID x 10 days"), Ok((20.0, "tab".into())));
        assert_eq!(t("500 mg PO TID x 7 days"), Ok((10500.0, "mg".into())));
        assert_eq!(t("2 puffs INH QID x 7 days"), Ok((56.0, "puff".into())));
        assert_eq!(t("1 tab PO Q6H x 2 days"), Ok((8.0, "tab".into())));
        assert_eq!(t("1-2 tabs PO BID x 5 days"), Ok((20.0, "tab".into())));
        assert_eq!(t("1 tab SL STAT"), Ok((1.0, "tab".into())));
        assert_eq!(
            t("1 tab PO PRN pain max 6 tabs/day x 5 days"),
            Ok((30.0, "tab".into()))
        );
        assert_eq!(
            t("500 mg PO Q6H PRN max 2 g/day x 2 days"),
            Ok((4000.0, "mg".into()))
        );
        assert_eq!(
            t("1-2 tabs PO Q6H PRN max 3 g/day x 2 days"),
            Ok((6.0, "g".into()))
        );
        assert!(t("1 tab PO Q4H PRN pain").unwrap_err().contains("PRN"));
        assert!(t("1 cap PO QHS").unwrap_err().contains("duration"));
    }
}
