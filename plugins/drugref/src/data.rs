//! The drug reference's records, and their import from CSV.
//!
//! Parsing is pure and checks the whole file before anything is written: a file with a bad
//! row is refused with every bad line's number (up to [`MAX_REPORTED`]) and imports nothing.
//! Files are UTF-8 unless the request names another character set ([`decode`]).

use serde::{Deserialize, Serialize};

use crate::atc;

/// How many bad lines an import reports before it stops listing them.
pub const MAX_REPORTED: usize = 50;
/// Rows in one file, at most.
pub const MAX_ROWS: usize = 200_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ingredient {
    pub name: String,
    pub strength: String,
    pub unit: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub din: String,
    pub brand_name: String,
    pub ingredients: Vec<Ingredient>,
    pub dosage_form: String,
    pub route: String,
    /// Empty when the source gives none.
    pub atc: String,
    /// As the source writes it: `prescription`, `OTC`, `Narcotic (CDSA I)`, …
    pub schedule: String,
    /// `marketed` or `cancelled`.
    pub status: String,
    /// Example data whose DIN is not verified.
    pub sample: bool,
    /// What one package holds when the source says, e.g. `200 doses` (an inhaler), `100 mL`.
    #[serde(default)]
    pub package: String,
}

/// Canada's controlled-substance classes, which change what a prescription must say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Controlled {
    /// Not a controlled substance.
    No,
    /// Narcotic Control Regulations (CDSA schedules I and II): no repeats.
    Narcotic,
    /// Controlled drugs (Food and Drug Regulations Part G, CDSA schedule III).
    ControlledDrug,
    /// Benzodiazepines and other targeted substances (CDSA schedule IV).
    TargetedSubstance,
}

impl Controlled {
    /// The class a product's schedule text names: `narcotic`, `Narcotic (CDSA I)`,
    /// `controlled`, `Schedule G (CDSA III)`, `targeted substance`, `Targeted (CDSA IV)`; a
    /// schedule naming several (`Prescription; Narcotic (CDSA II)`) takes the strictest.
    pub fn of_schedule(schedule: &str) -> Controlled {
        let s = schedule.to_ascii_lowercase();
        if s.contains("narcotic") {
            Controlled::Narcotic
        } else if s.contains("controlled") || s.contains("schedule g") || s.contains("cdsa iii") {
            Controlled::ControlledDrug
        } else if s.contains("targeted") || s.contains("cdsa iv") {
            Controlled::TargetedSubstance
        } else {
            Controlled::No
        }
    }
}

impl Product {
    pub fn controlled(&self) -> Controlled {
        Controlled::of_schedule(&self.schedule)
    }
}

/// One row of an interaction table (OSCAR drugref's "Holbrook" columns).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interaction {
    pub id: String,
    pub atc_a: String,
    pub atc_b: String,
    /// `A` augments, `I` inhibits, `N` no effect, `U` unknown (empty in the file → `U`).
    pub effect: char,
    /// 1 minor, 2 moderate, 3 major; `None` when the file leaves it empty.
    pub significance: Option<u8>,
    /// `P` poor, `F` fair, `G` good.
    pub evidence: Option<char>,
    pub comment: String,
    pub name_a: String,
    pub name_b: String,
}

/// A bad line of an import.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The columns of a product file, in order (the header line is required). The last,
/// `package`, may be left out of the header (and then of every line).
pub const PRODUCT_COLUMNS: [&str; 10] = [
    "din",
    "brand_name",
    "ingredients",
    "dosage_form",
    "route",
    "atc",
    "schedule",
    "status",
    "sample",
    "package",
];

/// The Holbrook columns, in order (a header line is optional).
pub const INTERACTION_COLUMNS: [&str; 9] = [
    "id",
    "atc_a",
    "atc_b",
    "effect",
    "significance",
    "evidence",
    "comment",
    "name_a",
    "name_b",
];

/// Reads CSV records with their line numbers, calling `row` for each data record. A header
/// line equal to `columns` is skipped (required when `header_required`); when `optional_last`,
/// the header may leave out the last column, and every line then has one field fewer (the
/// record passed to `row` always has `columns.len()` fields, the missing one empty).
fn read_rows<T>(
    text: &str,
    columns: &[&str],
    header_required: bool,
    optional_last: bool,
    mut row: impl FnMut(u64, &csv::StringRecord) -> Result<Option<T>, String>,
) -> Result<Vec<T>, Vec<LineError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut first = true;
    let mut width = columns.len();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                errors.push(LineError {
                    line,
                    message: format!("not valid CSV: {e}"),
                });
                if errors.len() >= MAX_REPORTED {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        let header_of = |n: usize| {
            record.len() == n
                && record
                    .iter()
                    .zip(columns)
                    .all(|(a, b)| a.trim().eq_ignore_ascii_case(b))
        };
        let is_header =
            first && (header_of(columns.len()) || (optional_last && header_of(columns.len() - 1)));
        if is_header {
            width = record.len();
        }
        if first && header_required && !is_header {
            errors.push(LineError {
                line,
                message: format!(
                    "the first line must be the header {}",
                    columns[..width - usize::from(optional_last)].join(",")
                ),
            });
            break;
        }
        first = false;
        if is_header || record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != width {
            errors.push(LineError {
                line,
                message: format!(
                    "expected {} fields ({}), found {}",
                    width,
                    columns[..width].join(","),
                    record.len()
                ),
            });
        } else {
            while record.len() < columns.len() {
                record.push_field("");
            }
            match row(line, &record) {
                Ok(Some(t)) => out.push(t),
                Ok(None) => {}
                Err(message) => errors.push(LineError { line, message }),
            }
            record.truncate(width);
        }
        if errors.len() >= MAX_REPORTED {
            break;
        }
        if out.len() > MAX_ROWS {
            errors.push(LineError {
                line,
                message: format!("a file holds at most {MAX_ROWS} rows"),
            });
            break;
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(out)
}

/// The characters of bytes 0x80 to 0x9F in windows-1252, which is what the WHATWG Encoding
/// Standard (and every browser) reads for the labels `iso-8859-1`, `latin1` and `us-ascii`;
/// the five bytes windows-1252 leaves undefined map to the C1 controls, as there.
const WINDOWS_1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}', '\u{178}',
];

/// The character sets an import reads: UTF-8, and Latin-1 under its usual labels.
const LATIN1_LABELS: [&str; 12] = [
    "iso-8859-1",
    "iso8859-1",
    "iso_8859-1",
    "iso88591",
    "latin1",
    "latin-1",
    "l1",
    "windows-1252",
    "cp1252",
    "x-cp1252",
    "us-ascii",
    "ascii",
];

/// The file's text: UTF-8, or Latin-1 when `charset` names it (`iso-8859-1`, `latin1`,
/// `windows-1252`…; read as windows-1252, as browsers do). A file that is not UTF-8 and says
/// nothing is refused with the line of the first bad byte and what to send.
pub fn decode(bytes: &[u8], charset: Option<&str>) -> Result<String, LineError> {
    let label = charset
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty());
    match label.as_deref() {
        None | Some("utf-8" | "utf8" | "unicode-1-1-utf-8") => {}
        Some(l) if LATIN1_LABELS.contains(&l) => {
            return Ok(bytes
                .iter()
                .map(|&b| match b {
                    0x80..=0x9F => WINDOWS_1252_HIGH[usize::from(b - 0x80)],
                    b => char::from(b),
                })
                .collect());
        }
        Some(l) => {
            return Err(LineError {
                line: 0,
                message: format!(
                    "charset: {l:?} is not one I read: send UTF-8, or Latin-1 as charset=iso-8859-1"
                ),
            });
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(e) => {
            let valid = e.valid_up_to();
            let line = 1 + bytes[..valid].iter().filter(|&&b| b == b'\n').count() as u64;
            Err(LineError {
                line,
                message: format!(
                    "the file is not UTF-8 (byte 0x{:02X}): if it is Latin-1, send it with \
                     content-type: text/csv; charset=iso-8859-1 (or ?charset=iso-8859-1)",
                    bytes.get(valid).copied().unwrap_or(0)
                ),
            })
        }
    }
}

/// What to do with rows whose codes are ATCvet (`Q…`) codes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Vet {
    /// Import them; they match the human code they stand for (`QA14AA02` → `A14AA02`).
    #[default]
    Accept,
    /// Leave them out, and list their lines in the answer.
    Skip,
}

/// An interaction table parsed: the rows to import, and the lines left out on purpose.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub rows: Vec<Interaction>,
    pub skipped: Vec<LineError>,
}

fn atc_field(name: &str, value: &str, allow_empty: bool) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() && allow_empty {
        return Ok(String::new());
    }
    atc::normalize(v)
        .ok_or_else(|| format!("{name}: {v:?} is not an ATC code or class (like C07A or C07AB02)"))
}

/// Parses an interaction table in OSCAR drugref's quoted-CSV ("Holbrook") format. The columns
/// are the row's id, the *affecting* code, the *affected* code, the effect (`A` augments, `I`
/// inhibits, `N` no effect; lower case `a`, `i`, `n` for "no clinical effect"; `U` or empty
/// unknown), the significance, the evidence, a comment and the two codes' names.
pub fn parse_interactions(text: &str, vet: Vet) -> Result<Parsed, Vec<LineError>> {
    let mut ids = std::collections::HashSet::new();
    let mut skipped = Vec::new();
    let rows = read_rows(text, &INTERACTION_COLUMNS, false, false, |line, r| {
        let id = r[0].trim().to_string();
        if id.is_empty() || id.len() > 64 {
            return Err("id: 1 to 64 characters".into());
        }
        if !ids.insert(id.clone()) {
            return Err(format!("id: {id:?} appears twice"));
        }
        let effect = match r[3].trim() {
            "" => 'U',
            e @ ("A" | "I" | "N" | "U" | "a" | "i" | "n") => e.chars().next().unwrap_or('U'),
            e => {
                return Err(format!(
                    "effect: expected A, I, N, U (or a, i, n) or empty, got {e:?}"
                ));
            }
        };
        let significance = match r[4].trim() {
            "" => None,
            "1" => Some(1),
            "2" => Some(2),
            "3" => Some(3),
            s => {
                return Err(format!(
                    "significance: expected 1, 2, 3 or empty, got {s:?}"
                ));
            }
        };
        let evidence = match r[5].trim() {
            "" => None,
            e @ ("P" | "F" | "G") => e.chars().next(),
            e => return Err(format!("evidence: expected P, F, G or empty, got {e:?}")),
        };
        let atc_a = vet_field("atc_a", &r[1])?;
        let atc_b = vet_field("atc_b", &r[2])?;
        if vet == Vet::Skip && (atc::is_vet(&atc_a) || atc::is_vet(&atc_b)) {
            skipped.push(LineError {
                line,
                message: format!(
                    "row {id}: {} is an ATCvet (veterinary) code; skipped as asked",
                    if atc::is_vet(&atc_a) { &atc_a } else { &atc_b }
                ),
            });
            return Ok(None);
        }
        Ok(Some(Interaction {
            id,
            atc_a,
            atc_b,
            effect,
            significance,
            evidence,
            comment: r[6].trim().to_string(),
            name_a: r[7].trim().to_string(),
            name_b: r[8].trim().to_string(),
        }))
    })?;
    if rows.is_empty() {
        return Err(vec![LineError {
            line: 1,
            message: if skipped.is_empty() {
                "the file has no rows".into()
            } else {
                "every row was skipped: nothing to import".into()
            },
        }]);
    }
    Ok(Parsed { rows, skipped })
}

fn vet_field(name: &str, value: &str) -> Result<String, String> {
    let v = value.trim();
    atc::normalize_vet(v).ok_or_else(|| {
        format!("{name}: {v:?} is not an ATC code or class (like C07A or C07AB02) or an ATCvet code (QA14AA02)")
    })
}

/// Parses a product file: the header line [`PRODUCT_COLUMNS`], then one product a line.
/// `ingredients` is `name|strength|unit`, several separated by `;`.
pub fn parse_products(text: &str) -> Result<Vec<Product>, Vec<LineError>> {
    let mut dins = std::collections::HashSet::new();
    let products = read_rows(text, &PRODUCT_COLUMNS, true, true, |_, r| {
        let din = r[0].trim().to_string();
        if din.len() != 8 || !din.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("din: {din:?} is not 8 digits"));
        }
        if !dins.insert(din.clone()) {
            return Err(format!("din: {din} appears twice"));
        }
        let brand_name = r[1].trim().to_string();
        if atc::fold(&brand_name).is_empty() || brand_name.len() > 200 {
            return Err("brand_name: 1 to 200 characters, with a letter or digit".into());
        }
        let mut ingredients = Vec::new();
        for part in r[2].split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let fields: Vec<&str> = part.split('|').map(str::trim).collect();
            let [name, strength, unit] = fields[..] else {
                return Err(format!("ingredients: {part:?} is not name|strength|unit"));
            };
            if atc::fold(name).is_empty() {
                return Err(format!("ingredients: {part:?} has no name"));
            }
            if !strength.is_empty() && strength.parse::<f64>().is_err() {
                return Err(format!(
                    "ingredients: strength {strength:?} is not a number"
                ));
            }
            ingredients.push(Ingredient {
                name: name.to_string(),
                strength: strength.to_string(),
                unit: unit.to_string(),
            });
        }
        if ingredients.is_empty() {
            return Err("ingredients: at least one name|strength|unit".into());
        }
        let status = match r[7].trim().to_ascii_lowercase().as_str() {
            "marketed" | "" => "marketed",
            "cancelled" | "canceled" => "cancelled",
            s => return Err(format!("status: expected marketed or cancelled, got {s:?}")),
        };
        let sample = match r[8].trim().to_ascii_lowercase().as_str() {
            "" | "no" | "false" => false,
            "yes" | "true" => true,
            s => return Err(format!("sample: expected yes or no, got {s:?}")),
        };
        let package = r[9].trim().to_string();
        if package.chars().count() > 100 {
            return Err("package: at most 100 characters".into());
        }
        Ok(Some(Product {
            din,
            brand_name,
            ingredients,
            dosage_form: r[3].trim().to_string(),
            route: r[4].trim().to_string(),
            atc: atc_field("atc", &r[5], true)?,
            schedule: r[6].trim().to_string(),
            status: status.into(),
            sample,
            package,
        }))
    })?;
    if products.is_empty() {
        return Err(vec![LineError {
            line: 1,
            message: "the file has no rows".into(),
        }]);
    }
    Ok(products)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holbrook_rows_parse_with_and_without_header() {
        let text = "\"id\",\"atc_a\",\"atc_b\",\"effect\",\"significance\",\"evidence\",\"comment\",\"name_a\",\"name_b\"\n\
                    \"1\",\"B01AA03\",\"M01A\",\"A\",\"3\",\"G\",\"Bleeding, \"\"major\"\"\",\"warfarin\",\"NSAIDs\"\n\
                    \"2\",\"c09a\",\"C03DA\",\"\",\"\",\"\",\"\",\"ACE inhibitors\",\"\"\n";
        let rows = parse_interactions(text, Vet::Accept).unwrap().rows;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].comment, "Bleeding, \"major\"");
        assert_eq!(rows[0].significance, Some(3));
        assert_eq!(rows[0].evidence, Some('G'));
        assert_eq!(rows[1].atc_a, "C09A");
        assert_eq!(rows[1].effect, 'U');
        assert_eq!(rows[1].significance, None);
        let no_header = text.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert_eq!(
            parse_interactions(&no_header, Vet::Accept).unwrap().rows,
            rows
        );
    }

    #[test]
    fn bad_rows_are_reported_by_line() {
        let text = "\"1\",\"B01AA03\",\"M01A\",\"A\",\"3\",\"G\",\"ok\",\"a\",\"b\"\n\
                    \"2\",\"B01AA03\",\"M01A\",\"A\",\"7\",\"G\",\"bad\",\"a\",\"b\"\n\
                    \"3\",\"nope\",\"M01A\",\"A\",\"3\",\"G\",\"bad\",\"a\",\"b\"\n\
                    \"4\",\"B01AA03\"\n\
                    \"1\",\"B01AA03\",\"M01A\",\"X\",\"3\",\"G\",\"bad\",\"a\",\"b\"\n";
        let errors = parse_interactions(text, Vet::Accept).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
        assert!(errors[0].message.starts_with("significance:"), "{errors:?}");
        assert!(errors[1].message.starts_with("atc_a:"));
        assert!(errors[2].message.contains("expected 9 fields"));
        assert!(errors[3].message.contains("appears twice"), "{errors:?}");
        assert_eq!(
            errors[0].to_string(),
            format!("line 2: {}", errors[0].message)
        );
    }

    #[test]
    fn a_quoted_newline_keeps_line_numbers_right() {
        let text = "\"1\",\"B01AA03\",\"M01A\",\"A\",\"3\",\"G\",\"two\nlines\",\"a\",\"b\"\n\
                    \"2\",\"B01AA03\",\"M01A\",\"A\",\"9\",\"G\",\"x\",\"a\",\"b\"\n";
        assert_eq!(
            parse_interactions(text, Vet::Accept).unwrap_err()[0].line,
            3
        );
    }

    #[test]
    fn empty_files_are_refused() {
        assert!(parse_interactions("", Vet::Accept).is_err());
        assert!(
            parse_products(
                "din,brand_name,ingredients,dosage_form,route,atc,schedule,status,sample\n"
            )
            .is_err()
        );
    }

    /// Two rows as OSCAR's real table has them: an ATCvet code, and a comment that is a tab.
    const VET: &str = "\"21602\",\"L04AK01\",\"QA14AA02\",\"\",\"3\",\"\",\"\",\"LEFLUNOMIDE\",\"STANOZOLOL\"\n\
                       \"1\",\"N02BE01\",\"N05BA01\",\"I\",\"1\",\"\",\"\t\",\"ACETAMINOPHEN\",\"BENZODIAZEPINE\"\n\
                       \"9\",\"N02BE01\",\"G03A\",\"a\",\"1\",\"P\",\"\",\"ACETAMINOPHEN\",\"CONTRACEPTIVES\"\n";

    #[test]
    fn atcvet_rows_are_accepted_or_skipped_with_their_line() {
        let p = parse_interactions(VET, Vet::Accept).unwrap();
        assert_eq!(p.rows.len(), 3);
        assert_eq!(p.rows[0].atc_b, "QA14AA02");
        assert_eq!(p.rows[1].comment, "");
        assert_eq!(p.rows[2].effect, 'a');
        assert!(p.skipped.is_empty());
        let p = parse_interactions(VET, Vet::Skip).unwrap();
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].line, 1);
        assert!(p.skipped[0].message.contains("QA14AA02"), "{:?}", p.skipped);
        let only_vet = VET.lines().next().unwrap();
        let e = parse_interactions(only_vet, Vet::Skip).unwrap_err();
        assert!(e[0].message.contains("every row was skipped"));
    }

    #[test]
    fn latin1_is_decoded_when_named_and_refused_plainly_when_not() {
        let bytes = b"\"1\",\"N02BE01\",\"N05BA01\",\"I\",\"1\",\"\",\"caf\xe9ine\",\"a\",\"b\"\n";
        let e = decode(bytes, None).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("charset=iso-8859-1"), "{}", e.message);
        let text = decode(bytes, Some("ISO-8859-1")).unwrap();
        assert_eq!(
            parse_interactions(&text, Vet::Accept).unwrap().rows[0].comment,
            "caféine"
        );
        assert_eq!(decode("é".as_bytes(), Some("utf-8")).unwrap(), "é");
        assert!(
            decode(b"x", Some("klingon"))
                .unwrap_err()
                .message
                .contains("klingon")
        );
    }

    #[test]
    fn schedules_name_the_controlled_class() {
        for (s, c) in [
            ("narcotic", Controlled::Narcotic),
            ("Prescription; Narcotic (CDSA II)", Controlled::Narcotic),
            ("Schedule G (CDSA III)", Controlled::ControlledDrug),
            ("controlled drug", Controlled::ControlledDrug),
            ("Targeted (CDSA IV)", Controlled::TargetedSubstance),
            ("targeted substance", Controlled::TargetedSubstance),
            ("prescription", Controlled::No),
            ("OTC", Controlled::No),
        ] {
            assert_eq!(Controlled::of_schedule(s), c, "{s}");
        }
    }

    #[test]
    fn products_parse_and_validate() {
        let text = "din,brand_name,ingredients,dosage_form,route,atc,schedule,status,sample\n\
                    99000001,Sample Warfarin,warfarin sodium|5|mg,tablet,oral,B01AA03,prescription,marketed,yes\n\
                    99000002,\"Sample Amox-Clav\",amoxicillin|500|mg;clavulanic acid|125|mg,tablet,oral,J01CR02,prescription,cancelled,no\n";
        let p = parse_products(text).unwrap();
        assert_eq!(p[0].ingredients[0].name, "warfarin sodium");
        assert!(p[0].sample);
        assert_eq!(p[1].ingredients.len(), 2);
        assert_eq!(p[1].status, "cancelled");
        assert_eq!(p[1].package, "");
        let with_package = "din,brand_name,ingredients,dosage_form,route,atc,schedule,status,sample,package\n\
                    99000171,Sample Salbutamol,salbutamol|100|mcg,metered-dose inhaler,inhalation,R03AC02,prescription,marketed,yes,200 doses\n";
        assert_eq!(
            parse_products(with_package).unwrap()[0].package,
            "200 doses"
        );
        // Nine fields under a ten-column header is a bad line.
        let short = with_package.replace(",200 doses", "");
        assert!(
            parse_products(&short).unwrap_err()[0]
                .message
                .contains("expected 10 fields")
        );
        let bad = "din,brand_name,ingredients,dosage_form,route,atc,schedule,status,sample\n\
                   1234,X,a|1|mg,tablet,oral,B01AA03,,,\n\
                   99000003,X,a-1-mg,tablet,oral,B01AA03,,,\n";
        let e = parse_products(bad).unwrap_err();
        assert_eq!((e[0].line, e[1].line), (2, 3));
        assert!(parse_products("99000001,X,a|1|mg,t,o,B01AA03,,,\n").is_err());
    }
}
