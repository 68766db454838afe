//! What the plugin keeps about a patient, and the rules every write follows: the shapes stored
//! in patient-data, and the validation of what a person sends (pure functions, unit-tested
//! natively).

use osler_sdk::Error;
use serde::{Deserialize, Deserializer, Serialize};

pub const MAX_TEXT: usize = 20_000;
pub const MAX_LINE: usize = 500;

/// Kinds of encounter, as OSCAR's eChart offers them.
pub const ENCOUNTER_TYPES: [(&str, &str); 7] = [
    ("office", "Office visit"),
    ("phone", "Telephone"),
    ("video", "Video visit"),
    ("home", "Home visit"),
    ("hospital", "Hospital"),
    ("email", "Email"),
    ("other", "Other"),
];

pub fn encounter_label(code: &str) -> &str {
    ENCOUNTER_TYPES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, l)| *l)
        .unwrap_or(code)
}

/// Who did something, and when (the site's local time, `YYYY-MM-DDTHH:MM:SS`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stamp {
    pub user: String,
    pub name: String,
    pub at: String,
}

/// What a note says: free text, or SOAP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum Content {
    Text {
        text: String,
    },
    Soap {
        subjective: String,
        objective: String,
        assessment: String,
        plan: String,
    },
}

impl Content {
    /// The text of the note, SOAP headings included, for a summary.
    pub fn plain(&self) -> String {
        match self {
            Content::Text { text } => text.clone(),
            Content::Soap {
                subjective,
                objective,
                assessment,
                plan,
            } => [
                ("S", subjective),
                ("O", objective),
                ("A", assessment),
                ("P", plan),
            ]
            .iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(h, t)| format!("{h}: {t}"))
            .collect::<Vec<_>>()
            .join(" "),
        }
    }
}

/// One version of a note. Version 1 is what the author wrote (and changed while it was a
/// draft); each later version is an amendment, with its reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    pub n: u32,
    pub content: Content,
    pub written: Stamp,
    /// Why this version replaced the one before (amendments only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was signed: version 1 when the author signs the note, an amendment when it is
    /// saved (a note stays locked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<Stamp>,
}

/// An encounter note.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub id: String,
    pub patient: String,
    /// One of [`ENCOUNTER_TYPES`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The encounter's date, `YYYY-MM-DD`.
    pub date: String,
    /// Who wrote it: the only person who may change the draft, sign it and amend it.
    pub author: String,
    pub author_name: String,
    /// Every version, oldest first; the last is the note as it stands.
    pub versions: Vec<Version>,
}

impl Note {
    pub fn current(&self) -> &Version {
        self.versions.last().expect("a note has a version")
    }

    /// Signed notes are locked: changed only by amendment.
    pub fn locked(&self) -> bool {
        self.versions.first().is_some_and(|v| v.signed.is_some())
    }

    pub fn status(&self) -> &'static str {
        match (self.locked(), self.versions.len()) {
            (false, _) => "draft",
            (true, 1) => "signed",
            (true, _) => "amended",
        }
    }
}

/// A note as a person sends it (JSON or form). `format` is `text` (with `text`) or `soap`
/// (with the four SOAP fields). Absent fields are empty so that validation can name them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NoteInput {
    #[serde(rename = "type")]
    pub kind: String,
    pub date: String,
    pub format: String,
    pub text: String,
    pub subjective: String,
    pub objective: String,
    pub assessment: String,
    pub plan: String,
    /// For an amendment.
    pub reason: String,
}

impl NoteInput {
    /// The encounter type and date, checked.
    pub fn header(&self) -> Result<(String, String), Error> {
        let kind = self.kind.trim();
        if !ENCOUNTER_TYPES.iter().any(|(c, _)| *c == kind) {
            return Err(Error::invalid(format!(
                "type: one of {}",
                ENCOUNTER_TYPES
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let date = self.date.trim();
        check_date("date", date)?;
        Ok((kind.to_string(), date.to_string()))
    }

    /// What the note says, checked: not empty, not too long.
    pub fn content(&self) -> Result<Content, Error> {
        let t = |name: &str, s: &str| -> Result<String, Error> {
            let s = s.trim();
            if s.chars().count() > MAX_TEXT {
                return Err(Error::invalid(format!(
                    "{name}: at most {MAX_TEXT} characters"
                )));
            }
            Ok(s.to_string())
        };
        match self.format.trim() {
            "" | "text" => {
                let text = t("text", &self.text)?;
                if text.is_empty() {
                    return Err(Error::invalid("text: must not be empty"));
                }
                Ok(Content::Text { text })
            }
            "soap" => {
                let c = Content::Soap {
                    subjective: t("subjective", &self.subjective)?,
                    objective: t("objective", &self.objective)?,
                    assessment: t("assessment", &self.assessment)?,
                    plan: t("plan", &self.plan)?,
                };
                if c.plain().is_empty() {
                    return Err(Error::invalid(
                        "subjective: a SOAP note needs at least one of its four parts",
                    ));
                }
                Ok(c)
            }
            other => Err(Error::invalid(format!(
                "format: 'text' or 'soap', not '{other}'"
            ))),
        }
    }

    pub fn reason(&self) -> Result<String, Error> {
        let r = self.reason.trim();
        if r.is_empty() {
            return Err(Error::invalid(
                "reason: an amendment says why the note is corrected",
            ));
        }
        line("reason", r)
    }
}

/// A line of text: trimmed, not too long.
pub fn line(name: &str, s: &str) -> Result<String, Error> {
    let s = s.trim();
    if s.chars().count() > MAX_LINE {
        return Err(Error::invalid(format!(
            "{name}: at most {MAX_LINE} characters"
        )));
    }
    Ok(s.to_string())
}

/// `YYYY-MM-DD`, a real calendar date between 1900 and 2199.
pub fn check_date(name: &str, s: &str) -> Result<(), Error> {
    let bad = || Error::invalid(format!("{name}: a date, YYYY-MM-DD (got '{s}')"));
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32, Error> {
        let part = &s[r];
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(1900..=2199).contains(&y) || d == 0 || d > days {
        return Err(bad());
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM` (seconds allowed), as a `datetime-local` input sends it.
pub fn check_datetime(name: &str, s: &str) -> Result<String, Error> {
    let bad = || {
        Error::invalid(format!(
            "{name}: a date and time, YYYY-MM-DDTHH:MM (got '{s}')"
        ))
    };
    let (d, t) = s.split_once(['T', ' ']).ok_or_else(bad)?;
    check_date(name, d).map_err(|_| bad())?;
    let parts: Vec<&str> = t.split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(bad());
    }
    let h: u32 = parts[0].parse().map_err(|_| bad())?;
    let m: u32 = parts[1].parse().map_err(|_| bad())?;
    let sec: u32 = parts
        .get(2)
        .map_or(Ok(0), |p| p.parse())
        .map_err(|_| bad())?;
    if h > 23 || m > 59 || sec > 59 {
        return Err(bad());
    }
    Ok(format!("{d}T{}:{}", parts[0], parts[1]))
}

// The cumulative patient profile.

/// The CPP's sections: key, title, and whether its items take an ICD-10-CA code.
pub const SECTIONS: [(&str, &str, bool); 6] = [
    ("concerns", "Ongoing concerns", true),
    ("medical", "Medical history", true),
    ("family", "Family history", true),
    ("social", "Social history", false),
    ("risks", "Risk factors", false),
    ("reminders", "Reminders", false),
];

pub fn section(key: &str) -> Result<(&'static str, &'static str, bool), Error> {
    SECTIONS
        .iter()
        .find(|(k, _, _)| *k == key)
        .copied()
        .ok_or_else(|| {
            Error::not_found(format!(
                "no CPP section '{key}' (the sections are {})",
                SECTIONS
                    .iter()
                    .map(|(k, _, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// One entry of a CPP section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub id: String,
    pub section: String,
    pub text: String,
    /// ICD-10-CA, e.g. `E11.9`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Since when, as the clinician writes it ("2019", "childhood").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    pub added: Stamp,
    /// When it stopped being current (a resolved problem, a reminder done); kept, never
    /// deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Stamp>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ItemInput {
    pub text: String,
    pub code: String,
    pub since: String,
}

impl ItemInput {
    /// Text, code (upper-cased) and since, checked for `section`.
    pub fn check(&self, section: &str) -> Result<(String, Option<String>, Option<String>), Error> {
        let (_, title, coded) = self::section(section)?;
        let text = line("text", &self.text)?;
        if text.is_empty() {
            return Err(Error::invalid("text: must not be empty"));
        }
        let code = self.code.trim().to_ascii_uppercase();
        let code = if code.is_empty() {
            None
        } else if !coded {
            return Err(Error::invalid(format!(
                "code: {title} entries take no diagnosis code"
            )));
        } else {
            check_icd10(&code)?;
            Some(code)
        };
        let since = line("since", &self.since)?;
        Ok((text, code, Some(since).filter(|s| !s.is_empty())))
    }
}

/// The shape of an ICD-10-CA code: a letter, two digits (the third may be a letter), then
/// optionally a point and one to four more characters (`E11.9`, `I10`, `J45.90`, `O09.001`).
/// The shape only: the plugin carries no code table.
pub fn check_icd10(code: &str) -> Result<(), Error> {
    let bad = || {
        Error::invalid(format!(
            "code: '{code}' is not an ICD-10-CA code (a letter, two digits, then e.g. '.9': E11.9)"
        ))
    };
    let (head, tail) = match code.split_once('.') {
        Some((h, t)) => (h, Some(t)),
        None => (code, None),
    };
    let h = head.as_bytes();
    if h.len() != 3
        || !h[0].is_ascii_uppercase()
        || !h[1].is_ascii_digit()
        || !(h[2].is_ascii_digit() || h[2].is_ascii_uppercase())
    {
        return Err(bad());
    }
    if let Some(t) = tail
        && (t.is_empty()
            || t.len() > 4
            || !t
                .bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()))
    {
        return Err(bad());
    }
    Ok(())
}

// Measurements.

/// What can be measured: key, label, unit, lowest and highest possible value, decimals shown.
/// The bounds are what a living person can have (the extremes ever recorded, rounded out), so
/// that a typo (a weight of 700, a diastolic above the systolic) is refused, not charted.
pub const KINDS: [(&str, &str, &str, f64, f64, usize); 10] = [
    ("systolic", "Systolic BP", "mmHg", 40.0, 300.0, 0),
    ("diastolic", "Diastolic BP", "mmHg", 20.0, 200.0, 0),
    ("pulse", "Pulse", "/min", 20.0, 300.0, 0),
    ("weight", "Weight", "kg", 0.3, 500.0, 1),
    ("height", "Height", "cm", 20.0, 275.0, 1),
    ("waist", "Waist", "cm", 20.0, 300.0, 1),
    ("temperature", "Temperature", "°C", 25.0, 45.0, 1),
    ("spo2", "SpO₂", "%", 50.0, 100.0, 0),
    ("glucose", "Glucose", "mmol/L", 0.5, 60.0, 1),
    ("hba1c", "HbA1c", "%", 3.0, 20.0, 1),
];

/// A set of measurements taken together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    pub id: String,
    /// When they were taken, the site's local time `YYYY-MM-DDTHH:MM`.
    pub taken: String,
    /// Values by [`KINDS`] key.
    pub values: std::collections::BTreeMap<String, f64>,
    /// Body-mass index, computed from the weight and the height (this set's, or the last
    /// height on file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bmi: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub recorded: Stamp,
}

/// A number from JSON, or from a form field (empty = absent).
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        S(String),
        F(f64),
    }
    Ok(match Option::<N>::deserialize(d)? {
        None => None,
        Some(N::S(s)) => Some(s),
        Some(N::F(f)) => Some(f.to_string()),
    })
}

/// Measurements as a person sends them: any of [`KINDS`] (numbers, or form text), when they
/// were taken (default: now) and a comment.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct MeasurementInput {
    pub taken: String,
    pub comment: String,
    #[serde(deserialize_with = "number")]
    pub systolic: Option<String>,
    #[serde(deserialize_with = "number")]
    pub diastolic: Option<String>,
    #[serde(deserialize_with = "number")]
    pub pulse: Option<String>,
    #[serde(deserialize_with = "number")]
    pub weight: Option<String>,
    #[serde(deserialize_with = "number")]
    pub height: Option<String>,
    #[serde(deserialize_with = "number")]
    pub waist: Option<String>,
    #[serde(deserialize_with = "number")]
    pub temperature: Option<String>,
    #[serde(deserialize_with = "number")]
    pub spo2: Option<String>,
    #[serde(deserialize_with = "number")]
    pub glucose: Option<String>,
    #[serde(deserialize_with = "number")]
    pub hba1c: Option<String>,
}

impl MeasurementInput {
    fn raw(&self, key: &str) -> Option<&str> {
        let v = match key {
            "systolic" => &self.systolic,
            "diastolic" => &self.diastolic,
            "pulse" => &self.pulse,
            "weight" => &self.weight,
            "height" => &self.height,
            "waist" => &self.waist,
            "temperature" => &self.temperature,
            "spo2" => &self.spo2,
            "glucose" => &self.glucose,
            "hba1c" => &self.hba1c,
            _ => &None,
        };
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    /// The values, each within what is possible, and the BMI they give with `last_height`
    /// (the latest height on file) when this set has a weight but no height.
    pub fn check(
        &self,
        last_height: Option<f64>,
    ) -> Result<(std::collections::BTreeMap<String, f64>, Option<f64>), Error> {
        let mut values = std::collections::BTreeMap::new();
        for (key, label, unit, lo, hi, _) in KINDS {
            let Some(raw) = self.raw(key) else { continue };
            let v: f64 = raw
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| Error::invalid(format!("{key}: '{raw}' is not a number")))?;
            if v < lo || v > hi {
                return Err(Error::invalid(format!(
                    "{key}: {label} of {raw} {unit} is impossible (possible: {lo} to {hi} {unit})"
                )));
            }
            values.insert(key.to_string(), v);
        }
        match (values.get("systolic"), values.get("diastolic")) {
            (Some(s), Some(d)) if d >= s => {
                return Err(Error::invalid(format!(
                    "diastolic: {d} is not below the systolic {s}: check the blood pressure"
                )));
            }
            (Some(_), None) => {
                return Err(Error::invalid(
                    "diastolic: a blood pressure needs both numbers",
                ));
            }
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "systolic: a blood pressure needs both numbers",
                ));
            }
            _ => {}
        }
        if values.is_empty() {
            return Err(Error::invalid("systolic: enter at least one measurement"));
        }
        let height = values.get("height").copied().or(last_height);
        let bmi = match (values.get("weight"), height) {
            (Some(w), Some(h)) => {
                let bmi = (w / (h / 100.0).powi(2) * 10.0).round() / 10.0;
                if !(7.0..=150.0).contains(&bmi) {
                    return Err(Error::invalid(format!(
                        "weight: {w} kg at {h} cm gives a BMI of {bmi}, which is impossible: \
                         check the weight and the height"
                    )));
                }
                Some(bmi)
            }
            _ => None,
        };
        Ok((values, bmi))
    }
}

/// `v` with the decimals of its kind.
pub fn show(key: &str, v: f64) -> String {
    let decimals = KINDS.iter().find(|k| k.0 == key).map_or(1, |k| k.5);
    format!("{v:.decimals$}")
}

// Ticklers.

/// A reminder about a patient for a staff member, due on a date.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tickler {
    pub id: String,
    pub patient: String,
    pub message: String,
    /// `YYYY-MM-DD`.
    pub due: String,
    pub assignee: String,
    pub assignee_name: String,
    pub created: Stamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<Stamp>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TicklerInput {
    pub message: String,
    pub due: String,
    pub assignee: String,
}

impl TicklerInput {
    pub fn check(&self) -> Result<(String, String, String), Error> {
        let message = line("message", &self.message)?;
        if message.is_empty() {
            return Err(Error::invalid("message: must not be empty"));
        }
        let due = self.due.trim();
        check_date("due", due)?;
        let assignee = self.assignee.trim();
        if assignee.is_empty() {
            return Err(Error::invalid("assignee: whom is the tickler for?"));
        }
        Ok((message, due.to_string(), assignee.to_string()))
    }
}

/// The entry of the `kv` index `assigned/<user>/<patient>/<id>`: enough to list a person's
/// ticklers by due date without reading every patient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assigned {
    pub due: String,
    pub open: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> MeasurementInput {
        let q: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        serde_urlencoded::from_str(&q).unwrap()
    }

    #[test]
    fn dates_are_real_calendar_dates() {
        assert!(check_date("d", "2024-02-29").is_ok());
        assert!(check_date("d", "2023-02-29").is_err());
        assert!(check_date("d", "2026-13-01").is_err());
        assert!(check_date("d", "2026-1-01").is_err());
        assert!(check_date("d", "1850-01-01").is_err());
        assert_eq!(
            check_datetime("t", "2026-11-30T09:05").unwrap(),
            "2026-11-30T09:05"
        );
        assert_eq!(
            check_datetime("t", "2026-11-30 09:05:10").unwrap(),
            "2026-11-30T09:05"
        );
        assert!(check_datetime("t", "2026-11-30T24:00").is_err());
    }

    #[test]
    fn icd10_ca_codes_have_their_shape() {
        for ok in ["E11.9", "I10", "J45.90", "O09.001", "Z3A.1"] {
            assert!(check_icd10(ok).is_ok(), "{ok}");
        }
        for bad in ["E1", "11.9", "E11.", "E11.12345", "e11.9", "DIABETES"] {
            assert!(check_icd10(bad).is_err(), "{bad}");
        }
        let i = ItemInput {
            text: "Type 2 diabetes".into(),
            code: "e11.9".into(),
            since: "2019".into(),
        };
        assert_eq!(
            i.check("concerns").unwrap(),
            (
                "Type 2 diabetes".into(),
                Some("E11.9".into()),
                Some("2019".into())
            )
        );
        assert!(i.check("social").is_err(), "social history takes no code");
        assert!(i.check("nonsense").is_err());
    }

    #[test]
    fn impossible_measurements_are_refused_naming_the_field() {
        let e = m(&[("systolic", "120"), ("diastolic", "130")])
            .check(None)
            .unwrap_err();
        assert!(e.message().starts_with("diastolic:"), "{e:?}");
        let e = m(&[("weight", "700")]).check(None).unwrap_err();
        assert!(e.message().starts_with("weight:"), "{e:?}");
        let e = m(&[("hba1c", "abc")]).check(None).unwrap_err();
        assert!(e.message().contains("not a number"), "{e:?}");
        let e = m(&[("systolic", "120")]).check(None).unwrap_err();
        assert!(e.message().starts_with("diastolic:"), "{e:?}");
        assert!(m(&[]).check(None).is_err());
        // 80 kg at 20 cm: each possible alone, impossible together.
        assert!(
            m(&[("weight", "80"), ("height", "20")])
                .check(None)
                .is_err()
        );
    }

    #[test]
    fn bmi_is_computed_from_this_or_the_last_height() {
        let (v, bmi) = m(&[
            ("weight", "80"),
            ("height", "180"),
            ("systolic", "128"),
            ("diastolic", "82"),
        ])
        .check(None)
        .unwrap();
        assert_eq!(v["systolic"], 128.0);
        assert_eq!(bmi, Some(24.7));
        let (_, bmi) = m(&[("weight", "90")]).check(Some(180.0)).unwrap();
        assert_eq!(bmi, Some(27.8));
        let (_, bmi) = m(&[("weight", "90")]).check(None).unwrap();
        assert_eq!(bmi, None);
        let j: MeasurementInput =
            serde_json::from_str(r#"{"systolic": 140, "diastolic": 90.0}"#).unwrap();
        assert!(j.check(None).is_ok());
    }

    #[test]
    fn notes_need_content_and_amendments_a_reason() {
        let n = NoteInput {
            kind: "office".into(),
            date: "2026-11-30".into(),
            format: "soap".into(),
            subjective: "Cough for 3 days".into(),
            plan: "Fluids".into(),
            ..Default::default()
        };
        assert_eq!(n.header().unwrap(), ("office".into(), "2026-11-30".into()));
        assert_eq!(
            n.content().unwrap().plain(),
            "S: Cough for 3 days P: Fluids"
        );
        assert!(n.reason().is_err());
        let empty = NoteInput {
            format: "soap".into(),
            ..Default::default()
        };
        assert!(empty.content().is_err());
        let bad = NoteInput {
            kind: "party".into(),
            date: "2026-11-30".into(),
            ..Default::default()
        };
        assert!(bad.header().unwrap_err().message().starts_with("type:"));
    }
}
