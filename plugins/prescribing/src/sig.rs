//! The sig ("signa", the directions) parser: `1 tab PO BID x 10 days` into dose, unit, route,
//! frequency, as-needed and duration, and back into the same short sig or a sentence a
//! patient reads.
//!
//! Grammar, case-insensitive, words separated by spaces:
//! `<dose> <unit> [<route>] [<frequency>] [PRN [<reason>…]] [x <n> <days|weeks|months>]`,
//! where a dose is a number or a range (`1-2`), and a frequency is `OD` (also `daily`), `BID`,
//! `TID`, `QID`, `QAM`, `QPM`, `QHS`, `Q<n>H`, `Q<n>-<m>H`, `weekly`, `STAT` or `once`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sig {
    /// `1`, `0.5`, `1-2`.
    pub dose: String,
    /// Canonical: `tab`, `cap`, `puff`, `mL`, `mg`, `drop`, …
    pub unit: String,
    /// Canonical: `PO`, `SL`, `INH`, `TOP`, …
    pub route: Option<String>,
    /// Canonical: `OD`, `BID`, `Q4H`, `weekly`, …
    pub frequency: Option<String>,
    pub prn: bool,
    pub prn_reason: Option<String>,
    /// `(10, "days")`.
    pub duration: Option<(u32, String)>,
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
        spellings: &["puff", "puffs", "inhalation", "inhalations"],
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
        spellings: &["ml"],
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
        spellings: &["mcg", "ug"],
    },
    Unit {
        short: "g",
        one: "g",
        many: "g",
        spellings: &["g"],
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
        short: "application",
        one: "application",
        many: "applications",
        spellings: &["application", "applications", "app"],
    },
];

/// Routes: canonical form and the words for the sentence.
const ROUTES: &[(&str, &str)] = &[
    ("PO", "by mouth"),
    ("SL", "under the tongue"),
    ("INH", "by inhalation"),
    ("TOP", "on the skin"),
    ("TD", "on the skin (patch)"),
    ("PR", "rectally"),
    ("PV", "vaginally"),
    ("SC", "under the skin"),
    ("IM", "into the muscle"),
    ("IV", "into a vein"),
    ("NAS", "in the nose"),
    ("OPH", "in the eye"),
    ("OTIC", "in the ear"),
];

/// Fixed frequencies: canonical form, accepted spellings, the sentence, and times a day.
const FREQUENCIES: &[(&str, &[&str], &str, f64)] = &[
    (
        "OD",
        &["od", "daily", "qd", "once-daily"],
        "once a day",
        1.0,
    ),
    ("BID", &["bid"], "twice a day", 2.0),
    ("TID", &["tid"], "three times a day", 3.0),
    ("QID", &["qid"], "four times a day", 4.0),
    ("QAM", &["qam"], "every morning", 1.0),
    ("QPM", &["qpm"], "every evening", 1.0),
    ("QHS", &["qhs", "hs"], "at bedtime", 1.0),
    (
        "weekly",
        &["weekly", "qweek", "qwk"],
        "once a week",
        1.0 / 7.0,
    ),
    ("STAT", &["stat"], "now", 0.0),
    ("once", &["once"], "once", 0.0),
];

fn unit_of(word: &str) -> Option<&'static Unit> {
    let w = word.to_ascii_lowercase();
    UNITS.iter().find(|u| u.spellings.contains(&w.as_str()))
}

fn route_of(word: &str) -> Option<&'static str> {
    let w = word.to_ascii_uppercase();
    ROUTES.iter().find(|r| r.0 == w).map(|r| r.0)
}

/// `Q4H` / `Q4-6H` → the canonical form and the hours.
fn every_hours(word: &str) -> Option<(String, u32, u32)> {
    let w = word.to_ascii_uppercase();
    let inner = w.strip_prefix('Q')?.strip_suffix('H')?;
    let (lo, hi) = match inner.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let n: u32 = inner.parse().ok()?;
            (n, n)
        }
    };
    if lo == 0 || hi < lo || hi > 72 {
        return None;
    }
    Some((w, lo, hi))
}

fn frequency_of(word: &str) -> Option<String> {
    let w = word.to_ascii_lowercase();
    if let Some(f) = FREQUENCIES.iter().find(|f| f.1.contains(&w.as_str())) {
        return Some(f.0.to_string());
    }
    every_hours(word).map(|(c, _, _)| c)
}

fn valid_dose(d: &str) -> bool {
    let num = |s: &str| !s.is_empty() && s.parse::<f64>().is_ok_and(|n| n > 0.0 && n < 10_000.0);
    match d.split_once('-') {
        Some((a, b)) => num(a) && num(b),
        None => num(d),
    }
}

/// Parses a sig; the error says what was expected where.
pub fn parse(text: &str) -> Result<Sig, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut i = 0;
    let dose = *words
        .first()
        .ok_or("sig: empty; write e.g. \"1 tab PO BID x 10 days\"")?;
    if !valid_dose(dose) {
        return Err(format!(
            "sig: the dose {dose:?} is not a number like 1, 0.5 or 1-2"
        ));
    }
    i += 1;
    let unit = words
        .get(i)
        .and_then(|w| unit_of(w))
        .ok_or_else(|| {
            format!(
                "sig: after the dose, a unit (tab, cap, puff, mL, mg, drop, …); got {:?}",
                words.get(i).copied().unwrap_or("nothing")
            )
        })?
        .short;
    i += 1;
    let route = words.get(i).and_then(|w| route_of(w)).map(str::to_string);
    if route.is_some() {
        i += 1;
    }
    let frequency = words.get(i).and_then(|w| frequency_of(w));
    if frequency.is_some() {
        i += 1;
    }
    let mut prn = false;
    let mut prn_reason = None;
    if words.get(i).is_some_and(|w| w.eq_ignore_ascii_case("prn")) {
        prn = true;
        i += 1;
        let start = i;
        while i < words.len() && !words[i].eq_ignore_ascii_case("x") {
            i += 1;
        }
        if i > start {
            prn_reason = Some(words[start..i].join(" "));
        }
    }
    let mut duration = None;
    if words.get(i).is_some_and(|w| w.eq_ignore_ascii_case("x")) {
        let n: u32 = words
            .get(i + 1)
            .and_then(|w| w.parse().ok())
            .filter(|n| (1..=3650).contains(n))
            .ok_or("sig: after \"x\", a number of days, weeks or months")?;
        let unit = match words.get(i + 2).map(|w| w.to_ascii_lowercase()).as_deref() {
            Some("day" | "days" | "d") => "days",
            Some("week" | "weeks" | "wk" | "wks") => "weeks",
            Some("month" | "months" | "mo") => "months",
            other => {
                return Err(format!(
                    "sig: after \"x {n}\", days, weeks or months; got {:?}",
                    other.unwrap_or("nothing")
                ));
            }
        };
        duration = Some((n, unit.to_string()));
        i += 3;
    }
    if let Some(w) = words.get(i) {
        return Err(format!(
            "sig: did not understand {w:?} (expected route, frequency, PRN or \"x <n> days\")"
        ));
    }
    if frequency.is_none() && !prn {
        return Err(
            "sig: how often? add a frequency (OD, BID, TID, QID, QHS, Q4H, weekly…) or PRN".into(),
        );
    }
    Ok(Sig {
        dose: dose.to_string(),
        unit: unit.to_string(),
        route,
        frequency,
        prn,
        prn_reason,
        duration,
    })
}

impl Sig {
    /// The short sig, in canonical spelling.
    pub fn format(&self) -> String {
        let mut parts = vec![self.dose.clone(), self.short_unit()];
        parts.extend(self.route.clone());
        parts.extend(self.frequency.clone());
        if self.prn {
            parts.push("PRN".into());
            parts.extend(self.prn_reason.clone());
        }
        if let Some((n, unit)) = &self.duration {
            let unit = if *n == 1 {
                unit.trim_end_matches('s')
            } else {
                unit.as_str()
            };
            parts.push(format!("x {n} {unit}"));
        }
        parts.join(" ")
    }

    /// More than one: `2`, `1-2` (not `1`, `0.5`).
    fn plural(&self) -> bool {
        self.dose.contains('-') || self.dose.parse::<f64>().is_ok_and(|d| d > 1.0)
    }

    /// The unit as written in a sig: `tab`, `2 tabs`; measures (`mL`, `mg`) never change.
    fn short_unit(&self) -> String {
        match self.unit.as_str() {
            "mL" | "mg" | "mcg" | "g" => self.unit.clone(),
            "patch" if self.plural() => "patches".into(),
            u if self.plural() => format!("{u}s"),
            u => u.into(),
        }
    }

    /// The directions as a sentence: `Take 1 tablet by mouth twice a day for 10 days.`
    pub fn readable(&self) -> String {
        let unit = match unit_of(&self.unit) {
            Some(u) if self.plural() => u.many,
            Some(u) => u.one,
            None => self.unit.as_str(),
        };
        let verb = match self.unit.as_str() {
            "puff" => "Inhale",
            "drop" => "Instil",
            "patch" | "application" => "Apply",
            "supp" => "Insert",
            "spray" => "Use",
            _ => "Take",
        };
        let mut s = format!("{verb} {} {unit}", self.dose);
        if let Some(r) = &self.route
            && let Some((_, words)) = ROUTES.iter().find(|x| x.0 == r)
        {
            s += &format!(" {words}");
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
            let unit = if *n == 1 {
                unit.trim_end_matches('s')
            } else {
                unit.as_str()
            };
            s += &format!(" for {n} {unit}");
        }
        s + "."
    }

    /// Units to dispense for the whole duration, when the sig fixes it: a fixed dose at a
    /// fixed frequency for a set time. `None` for PRN, ranges, or no duration.
    pub fn quantity(&self) -> Option<u32> {
        if self.prn {
            return None;
        }
        let dose: f64 = self.dose.parse().ok()?;
        let per_day = match FREQUENCIES
            .iter()
            .find(|f| Some(f.0) == self.frequency.as_deref())
        {
            Some((_, _, _, n)) if *n > 0.0 => *n,
            Some(_) => return None,
            None => {
                let (_, lo, hi) = every_hours(self.frequency.as_deref()?)?;
                if lo != hi {
                    return None;
                }
                24.0 / lo as f64
            }
        };
        let (n, unit) = self.duration.as_ref()?;
        let days = match unit.as_str() {
            "days" => *n as f64,
            "weeks" => *n as f64 * 7.0,
            _ => *n as f64 * 30.0,
        };
        Some((dose * per_day * days).ceil() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sigs as prescribers write them, each in its canonical spelling.
    const REAL_SIGS: &[&str] = &[
        "1 tab PO BID x 10 days",
        "2 puffs INH QID PRN",
        "1 cap PO QHS",
        "10 mL PO TID x 7 days",
        "1 tab PO Q4H PRN pain",
        "1 tab PO weekly",
        "1 tab PO OD",
        "0.5 tab PO QAM",
        "1-2 tabs PO Q4-6H PRN pain",
        "1 patch TD OD",
        "2 drops OPH QID x 1 week",
        "1 spray NAS BID",
        "500 mg PO TID x 7 days",
        "10 units SC QHS",
        "1 tab SL STAT",
        "1 application TOP BID x 2 weeks",
        "1 cap PO OD x 3 months",
        "2 puffs INH Q4H PRN shortness of breath",
    ];

    #[test]
    fn real_sigs_round_trip() {
        for s in REAL_SIGS {
            let sig = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(&sig.format(), s);
            assert_eq!(parse(&sig.format()).unwrap(), sig, "{s}");
        }
    }

    #[test]
    fn other_spellings_become_canonical() {
        assert_eq!(
            parse("2 puff inh qid prn").unwrap().format(),
            "2 puffs INH QID PRN"
        );
        assert_eq!(parse("1 tablet po daily").unwrap().format(), "1 tab PO OD");
        assert_eq!(
            parse("1 TAB PO BID X 10 D").unwrap().format(),
            "1 tab PO BID x 10 days"
        );
        assert_eq!(
            parse("1 cap PO q8h").unwrap().frequency.as_deref(),
            Some("Q8H")
        );
    }

    #[test]
    fn fields_are_what_the_sig_says() {
        let s = parse("1 tab PO Q4H PRN pain").unwrap();
        assert_eq!(s.dose, "1");
        assert_eq!(s.unit, "tab");
        assert_eq!(s.route.as_deref(), Some("PO"));
        assert_eq!(s.frequency.as_deref(), Some("Q4H"));
        assert!(s.prn);
        assert_eq!(s.prn_reason.as_deref(), Some("pain"));
        assert_eq!(s.duration, None);
        let s = parse("10 mL PO TID x 7 days").unwrap();
        assert_eq!(s.duration, Some((7, "days".into())));
    }

    #[test]
    fn readable_sentences() {
        let r = |s: &str| parse(s).unwrap().readable();
        assert_eq!(
            r("1 tab PO BID x 10 days"),
            "Take 1 tablet by mouth twice a day for 10 days."
        );
        assert_eq!(
            r("2 puffs INH QID PRN"),
            "Inhale 2 puffs by inhalation four times a day as needed."
        );
        assert_eq!(r("1 cap PO QHS"), "Take 1 capsule by mouth at bedtime.");
        assert_eq!(
            r("1 tab PO Q4H PRN pain"),
            "Take 1 tablet by mouth every 4 hours as needed for pain."
        );
        assert_eq!(r("1 tab PO weekly"), "Take 1 tablet by mouth once a week.");
        assert_eq!(
            r("1-2 tab PO Q4-6H PRN"),
            "Take 1-2 tablets by mouth every 4 to 6 hours as needed."
        );
    }

    #[test]
    fn quantities() {
        let q = |s: &str| parse(s).unwrap().quantity();
        assert_eq!(q("1 tab PO BID x 10 days"), Some(20));
        assert_eq!(q("10 mL PO TID x 7 days"), Some(210));
        assert_eq!(q("1 tab PO Q6H x 2 days"), Some(8));
        assert_eq!(q("1 tab PO Q4H PRN pain"), None);
        assert_eq!(q("1 cap PO QHS"), None);
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
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.starts_with("sig:") && e.contains(says), "{bad}: {e}");
        }
    }
}
