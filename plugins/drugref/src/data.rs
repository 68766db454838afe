//! The drug reference's records, and their import from CSV.
//!
//! Parsing is pure and checks the whole file before anything is written: a file with a bad
//! row is refused with every bad line's number (up to [`MAX_REPORTED`]) and imports nothing.

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
    pub schedule: String,
    /// `marketed` or `cancelled`.
    pub status: String,
    /// Example data whose DIN is not verified.
    pub sample: bool,
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

/// The columns of a product file, in order (the header line is required).
pub const PRODUCT_COLUMNS: [&str; 9] = [
    "din",
    "brand_name",
    "ingredients",
    "dosage_form",
    "route",
    "atc",
    "schedule",
    "status",
    "sample",
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
/// line equal to `columns` is skipped (required when `header_required`).
fn read_rows<T>(
    text: &str,
    columns: &[&str],
    header_required: bool,
    mut row: impl FnMut(&csv::StringRecord) -> Result<T, String>,
) -> Result<Vec<T>, Vec<LineError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut first = true;
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
        let is_header = first
            && record.len() == columns.len()
            && record
                .iter()
                .zip(columns)
                .all(|(a, b)| a.trim().eq_ignore_ascii_case(b));
        if first && header_required && !is_header {
            errors.push(LineError {
                line,
                message: format!("the first line must be the header {}", columns.join(",")),
            });
            break;
        }
        first = false;
        if is_header || record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != columns.len() {
            errors.push(LineError {
                line,
                message: format!(
                    "expected {} fields ({}), found {}",
                    columns.len(),
                    columns.join(","),
                    record.len()
                ),
            });
        } else {
            match row(&record) {
                Ok(t) => out.push(t),
                Err(message) => errors.push(LineError { line, message }),
            }
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
    if out.is_empty() {
        return Err(vec![LineError {
            line: 1,
            message: "the file has no rows".into(),
        }]);
    }
    Ok(out)
}

fn atc_field(name: &str, value: &str, allow_empty: bool) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() && allow_empty {
        return Ok(String::new());
    }
    atc::normalize(v)
        .ok_or_else(|| format!("{name}: {v:?} is not an ATC code or class (like C07A or C07AB02)"))
}

/// Parses an interaction table in OSCAR drugref's quoted-CSV ("Holbrook") format.
pub fn parse_interactions(text: &str) -> Result<Vec<Interaction>, Vec<LineError>> {
    let mut ids = std::collections::HashSet::new();
    read_rows(text, &INTERACTION_COLUMNS, false, |r| {
        let id = r[0].trim().to_string();
        if id.is_empty() || id.len() > 64 {
            return Err("id: 1 to 64 characters".into());
        }
        if !ids.insert(id.clone()) {
            return Err(format!("id: {id:?} appears twice"));
        }
        let effect = match r[3].trim() {
            "" => 'U',
            e @ ("A" | "I" | "N" | "U") => e.chars().next().unwrap_or('U'),
            e => return Err(format!("effect: expected A, I, N, U or empty, got {e:?}")),
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
        Ok(Interaction {
            id,
            atc_a: atc_field("atc_a", &r[1], false)?,
            atc_b: atc_field("atc_b", &r[2], false)?,
            effect,
            significance,
            evidence,
            comment: r[6].trim().to_string(),
            name_a: r[7].trim().to_string(),
            name_b: r[8].trim().to_string(),
        })
    })
}

/// Parses a product file: the header line [`PRODUCT_COLUMNS`], then one product a line.
/// `ingredients` is `name|strength|unit`, several separated by `;`.
pub fn parse_products(text: &str) -> Result<Vec<Product>, Vec<LineError>> {
    let mut dins = std::collections::HashSet::new();
    read_rows(text, &PRODUCT_COLUMNS, true, |r| {
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
        Ok(Product {
            din,
            brand_name,
            ingredients,
            dosage_form: r[3].trim().to_string(),
            route: r[4].trim().to_string(),
            atc: atc_field("atc", &r[5], true)?,
            schedule: r[6].trim().to_string(),
            status: status.into(),
            sample,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holbrook_rows_parse_with_and_without_header() {
        let text = "\"id\",\"atc_a\",\"atc_b\",\"effect\",\"significance\",\"evidence\",\"comment\",\"name_a\",\"name_b\"\n\
                    \"1\",\"B01AA03\",\"M01A\",\"A\",\"3\",\"G\",\"Bleeding, \"\"major\"\"\",\"warfarin\",\"NSAIDs\"\n\
                    \"2\",\"c09a\",\"C03DA\",\"\",\"\",\"\",\"\",\"ACE inhibitors\",\"\"\n";
        let rows = parse_interactions(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].comment, "Bleeding, \"major\"");
        assert_eq!(rows[0].significance, Some(3));
        assert_eq!(rows[0].evidence, Some('G'));
        assert_eq!(rows[1].atc_a, "C09A");
        assert_eq!(rows[1].effect, 'U');
        assert_eq!(rows[1].significance, None);
        let no_header = text.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert_eq!(parse_interactions(&no_header).unwrap(), rows);
    }

    #[test]
    fn bad_rows_are_reported_by_line() {
        let text = "\"1\",\"B01AA03\",\"M01A\",\"A\",\"3\",\"G\",\"ok\",\"a\",\"b\"\n\
                    \"2\",\"B01AA03\",\"M01A\",\"A\",\"7\",\"G\",\"bad\",\"a\",\"b\"\n\
                    \"3\",\"nope\",\"M01A\",\"A\",\"3\",\"G\",\"bad\",\"a\",\"b\"\n\
                    \"4\",\"B01AA03\"\n\
                    \"1\",\"B01AA03\",\"M01A\",\"X\",\"3\",\"G\",\"bad\",\"a\",\"b\"\n";
        let errors = parse_interactions(text).unwrap_err();
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
        assert_eq!(parse_interactions(text).unwrap_err()[0].line, 3);
    }

    #[test]
    fn empty_files_are_refused() {
        assert!(parse_interactions("").is_err());
        assert!(
            parse_products(
                "din,brand_name,ingredients,dosage_form,route,atc,schedule,status,sample\n"
            )
            .is_err()
        );
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
        let bad = "din,brand_name,ingredients,dosage_form,route,atc,schedule,status,sample\n\
                   1234,X,a|1|mg,tablet,oral,B01AA03,,,\n\
                   99000003,X,a-1-mg,tablet,oral,B01AA03,,,\n";
        let e = parse_products(bad).unwrap_err();
        assert_eq!((e[0].line, e[1].line), (2, 3));
        assert!(parse_products("99000001,X,a|1|mg,t,o,B01AA03,,,\n").is_err());
    }
}
