//! Field-level validation of a Patient before anything is stored.

use super::fhir::*;

/// One problem with one field, named by its JSON path (e.g. `identifier[0].value`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Ontario health card number: 10 digits whose last is a Luhn mod-10 check digit.
pub fn valid_ontario_hcn(n: &str) -> bool {
    n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()) && luhn_ok(n)
}

fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = (b - b'0') as u32;
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The check digit that makes a 9-digit stem a valid health card number.
pub fn hcn_check_digit(stem9: &str) -> char {
    for d in b'0'..=b'9' {
        let mut s = stem9.to_string();
        s.push(d as char);
        if luhn_ok(&s) {
            return d as char;
        }
    }
    unreachable!("one of ten digits always completes a Luhn sum")
}

pub fn parse_date(s: &str) -> Option<time::Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if s.len() != 10 {
        return None;
    }
    time::Date::parse(s, &fmt).ok()
}

fn one_of(field: String, v: &Option<String>, allowed: &[&str], errs: &mut Vec<FieldError>) {
    if let Some(v) = v
        && !allowed.contains(&v.as_str())
    {
        errs.push(err(field, format!("must be one of {}", allowed.join(", "))));
    }
}

// ---------------------------------------------------------------------------------------------
// Limits. A record is what people type at a front desk; these bound what one record can cost
// every search and index update that touches it (see `Patients::find`).

/// Names (`name[]`) per record.
pub const MAX_NAMES: usize = 10;
/// Given names, prefixes or suffixes per name.
pub const MAX_PARTS: usize = 10;
/// Characters in one family name, given name, prefix or suffix.
pub const MAX_NAME_CHARS: usize = 100;
/// Distinct searchable words in all of a record's family and given names together.
pub const MAX_NAME_WORDS: usize = 40;
/// Identifiers, contact points, addresses, languages or practitioners per record.
pub const MAX_ITEMS: usize = 10;
/// Lines of one address.
pub const MAX_ADDRESS_LINES: usize = 4;
/// Characters in any other text field (a name's `text`, an address line, a contact value…).
pub const MAX_TEXT: usize = 250;
/// Characters in a URI (an identifier's or a coding's `system`, an extension's `url`).
pub const MAX_URI: usize = 256;
/// Characters in an identifier's value.
pub const MAX_IDENTIFIER: usize = 64;

// ---------------------------------------------------------------------------------------------
// Text hygiene

/// Characters that render as nothing but are letters or marks by category, the classic way to
/// make two names look alike or a name look empty (Hangul fillers, the braille blank, the
/// combining grapheme joiner, Khmer inherent vowels).
const INVISIBLE: &[char] = &[
    '\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}', '\u{2800}', '\u{034F}', '\u{17B4}', '\u{17B5}',
];

/// Bidirectional embeddings, overrides and isolates: they reorder what is displayed, so a
/// name could show as something other than what is stored and searched.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Tidy text as a person meant it: Unicode NFC, surrounding whitespace trimmed, and every run
/// of whitespace inside (tabs, no-break spaces, …) made one ordinary space.
pub fn tidy(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::with_capacity(s.len());
    for word in s.split(char::is_whitespace).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.nfc().collect()
}

fn tidy_opt(s: &mut Option<String>) {
    if let Some(v) = s {
        *v = tidy(v);
    }
}

fn tidy_all(v: &mut [String]) {
    for s in v {
        *s = tidy(s);
    }
}

/// What is wrong with a piece of (tidied) free text, if anything: empty, too long, or holding
/// control characters, display-reordering controls, private-use or unassigned code points.
fn text_problem(s: &str, max: usize) -> Option<String> {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    if s.is_empty() {
        return Some("must not be empty (leave the field out instead)".into());
    }
    let n = s.chars().count();
    if n > max {
        return Some(format!(
            "is {n} characters long; at most {max} are accepted"
        ));
    }
    for c in s.chars() {
        if is_bidi_control(c) {
            return Some(format!(
                "must not contain the text-direction control U+{:04X}",
                c as u32
            ));
        }
        match c.general_category() {
            G::Control => {
                return Some(format!(
                    "must not contain the control character U+{:04X}",
                    c as u32
                ));
            }
            G::PrivateUse | G::Unassigned | G::Surrogate => {
                return Some(format!(
                    "must not contain U+{:04X}, which is not a character people write",
                    c as u32
                ));
            }
            _ => {}
        }
    }
    None
}

/// Whether `c` is a letter (of any script).
fn is_letter(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    c.general_category_group() == GeneralCategoryGroup::Letter && !INVISIBLE.contains(&c)
}

/// What is wrong with one part of a person's name: free-text problems, plus invisible
/// characters (format characters such as zero-width spaces; the zero-width joiner and
/// non-joiner are allowed between letters, where Persian and Indic names need them), no
/// letter at all, or a first character that is a combining mark.
fn name_problem(s: &str, max: usize) -> Option<String> {
    use unicode_properties::{GeneralCategory as G, GeneralCategoryGroup, UnicodeGeneralCategory};
    if let Some(p) = text_problem(s, max) {
        return Some(p);
    }
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let joiner = matches!(c, '\u{200C}' | '\u{200D}');
        let between_letters = i > 0
            && i + 1 < chars.len()
            && chars[i - 1].general_category_group() != GeneralCategoryGroup::Separator
            && is_letter_or_mark(chars[i - 1])
            && is_letter_or_mark(chars[i + 1]);
        if (c.general_category() == G::Format && !(joiner && between_letters))
            || INVISIBLE.contains(&c)
        {
            return Some(format!(
                "must not contain the invisible character U+{:04X}",
                c as u32
            ));
        }
    }
    if chars[0].general_category_group() == GeneralCategoryGroup::Mark {
        return Some("must not start with a combining mark".into());
    }
    if !chars.iter().any(|c| is_letter(*c)) {
        return Some("must contain at least one letter".into());
    }
    None
}

fn is_letter_or_mark(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    is_letter(c) || c.general_category_group() == GeneralCategoryGroup::Mark
}

/// What is wrong with an identifier's (tidied) value: free-text problems, any invisible or
/// format character, whitespace other than single spaces, or `|` (which separates system
/// and value in searches).
fn identifier_problem(s: &str) -> Option<String> {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    if let Some(p) = text_problem(s, MAX_IDENTIFIER) {
        return Some(p);
    }
    for c in s.chars() {
        if c.general_category() == G::Format || INVISIBLE.contains(&c) {
            return Some(format!(
                "must not contain the invisible character U+{:04X}",
                c as u32
            ));
        }
        if c == '|' {
            return Some("must not contain '|'".into());
        }
    }
    None
}

/// The form of an identifier's value that uniqueness and search compare: NFC, without any
/// whitespace, lowercased. Health card and chart numbers are digits, so case cannot matter
/// there; in every other system no clinic tells two people apart by the case or spacing of an
/// identifier, so `AB 123` and `ab123` are one identifier.
pub fn identifier_key_value(value: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    value
        .nfc()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Put a record into the form Osler stores and compares: every text field tidied ([`tidy`]:
/// NFC, trimmed, inner whitespace made single spaces). Done before [`validate`], so that the
/// limits and uniqueness see what will be stored.
pub fn normalise(p: &mut Patient) {
    for id in &mut p.identifier {
        tidy_opt(&mut id.system);
        tidy_opt(&mut id.value);
        for e in &mut id.extension {
            tidy_opt(&mut e.value_string);
        }
    }
    for n in &mut p.name {
        tidy_opt(&mut n.text);
        tidy_opt(&mut n.family);
        tidy_all(&mut n.given);
        tidy_all(&mut n.prefix);
        tidy_all(&mut n.suffix);
    }
    for t in &mut p.telecom {
        tidy_opt(&mut t.value);
    }
    for a in &mut p.address {
        tidy_opt(&mut a.text);
        tidy_all(&mut a.line);
        for f in [
            &mut a.city,
            &mut a.district,
            &mut a.state,
            &mut a.postal_code,
            &mut a.country,
        ] {
            tidy_opt(f);
        }
    }
    for c in &mut p.communication {
        tidy_opt(&mut c.language.text);
        for k in &mut c.language.coding {
            tidy_opt(&mut k.system);
            tidy_opt(&mut k.code);
            tidy_opt(&mut k.display);
        }
    }
    for r in &mut p.general_practitioner {
        tidy_opt(&mut r.reference);
        tidy_opt(&mut r.display);
    }
}

fn check_text(
    field: impl Into<String>,
    v: &Option<String>,
    max: usize,
    errs: &mut Vec<FieldError>,
) {
    if let Some(v) = v
        && let Some(p) = text_problem(v, max)
    {
        errs.push(err(field, p));
    }
}

fn check_count(field: &str, n: usize, max: usize, what: &str, errs: &mut Vec<FieldError>) {
    if n > max {
        errs.push(err(
            field,
            format!("has {n} {what}; at most {max} are accepted"),
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Dates

/// FHIR R4 `date`: a year, year-month or full date; year 0000 does not exist.
const FHIR_DATE: &str = r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$";
/// FHIR R4 `dateTime`: a date, or a full date-time with seconds and a time zone.
const FHIR_DATE_TIME: &str = r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$";

fn compiled(
    cell: &'static std::sync::OnceLock<regex::Regex>,
    pattern: &str,
) -> &'static regex::Regex {
    cell.get_or_init(|| regex::Regex::new(pattern).expect("the FHIR pattern compiles"))
}

fn fhir_date() -> &'static regex::Regex {
    static CELL: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    compiled(&CELL, FHIR_DATE)
}

fn fhir_date_time() -> &'static regex::Regex {
    static CELL: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    compiled(&CELL, FHIR_DATE_TIME)
}

/// The earliest year Osler accepts in a birth or death date.
const EARLIEST_YEAR: i32 = 1850;

/// A deceased date-time: the calendar date it names (as written) and, for a date-time, the
/// instant. `None` if it is not a full FHIR date or date-time with a time zone.
fn parse_deceased(s: &str) -> Option<(time::Date, Option<time::OffsetDateTime>)> {
    if !fhir_date_time().is_match(s) {
        return None;
    }
    if let Some(d) = parse_date(s) {
        return Some((d, None));
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.date(), Some(t)))
}

/// Check a patient; `today` is passed in so tests can pin it. Run [`normalise`] first.
pub fn validate(p: &Patient, today: time::Date) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if p.resource_type != "Patient" {
        errs.push(err("resourceType", "must be \"Patient\""));
    }

    // Names: at least one, with a family or given name.
    if !p.name.iter().any(|n| {
        n.family.as_deref().is_some_and(|f| !f.is_empty()) || n.given.iter().any(|g| !g.is_empty())
    }) {
        errs.push(err(
            "name",
            "a name is required: give at least a family or a given name",
        ));
    }
    check_count("name", p.name.len(), MAX_NAMES, "names", &mut errs);
    for (i, n) in p.name.iter().enumerate().take(MAX_NAMES) {
        one_of(
            format!("name[{i}].use"),
            &n.r#use,
            &[
                "usual",
                "official",
                "temp",
                "nickname",
                "anonymous",
                "old",
                "maiden",
            ],
            &mut errs,
        );
        if let Some(f) = &n.family
            && let Some(problem) = name_problem(f, MAX_NAME_CHARS)
        {
            errs.push(err(format!("name[{i}].family"), problem));
        }
        for (key, list) in [
            ("given", &n.given),
            ("prefix", &n.prefix),
            ("suffix", &n.suffix),
        ] {
            let field = format!("name[{i}].{key}");
            check_count(&field, list.len(), MAX_PARTS, "parts", &mut errs);
            for (j, part) in list.iter().enumerate().take(MAX_PARTS) {
                if let Some(problem) = name_problem(part, MAX_NAME_CHARS) {
                    errs.push(err(format!("{field}[{j}]"), problem));
                }
            }
        }
        if let Some(t) = &n.text
            && let Some(problem) = name_problem(t, MAX_TEXT)
        {
            errs.push(err(format!("name[{i}].text"), problem));
        }
    }
    if errs.iter().all(|e| !e.field.starts_with("name")) {
        let words = super::name_tokens(p).len();
        if words > MAX_NAME_WORDS {
            errs.push(err(
                "name",
                format!(
                    "the names hold {words} different words; at most {MAX_NAME_WORDS} are accepted"
                ),
            ));
        }
    }

    one_of(
        "gender".into(),
        &p.gender,
        &["male", "female", "other", "unknown"],
        &mut errs,
    );

    let birth = match p.birth_date.as_deref() {
        None => None,
        Some(d) => match parse_date(d).filter(|_| fhir_date().is_match(d)) {
            None => {
                errs.push(err("birthDate", "must be a date written YYYY-MM-DD"));
                None
            }
            Some(d) if d > today => {
                errs.push(err("birthDate", "must not be in the future"));
                None
            }
            Some(d) if d.year() < EARLIEST_YEAR => {
                errs.push(err("birthDate", "must be after 1850"));
                None
            }
            Some(d) => Some(d),
        },
    };

    if p.deceased_boolean.is_some() && p.deceased_date_time.is_some() {
        errs.push(err(
            "deceasedDateTime",
            "give either deceasedBoolean or deceasedDateTime, not both",
        ));
    }
    if let Some(d) = &p.deceased_date_time {
        match parse_deceased(d) {
            None => errs.push(err(
                "deceasedDateTime",
                "must be a date (YYYY-MM-DD) or a date-time with seconds and a time zone \
                 (e.g. 2024-03-01T14:30:00-05:00)",
            )),
            Some((date, instant)) => {
                // A date as written can be a day ahead of UTC's in the clinic's time zone.
                let future = match instant {
                    Some(t) => t > time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
                    None => date > today.next_day().unwrap_or(today),
                };
                if future {
                    errs.push(err("deceasedDateTime", "must not be in the future"));
                } else if birth.is_some_and(|b| date < b) {
                    errs.push(err("deceasedDateTime", "must not be before the birth date"));
                } else if date.year() < EARLIEST_YEAR {
                    errs.push(err("deceasedDateTime", "must be after 1850"));
                }
            }
        }
    }

    check_count(
        "identifier",
        p.identifier.len(),
        MAX_ITEMS,
        "identifiers",
        &mut errs,
    );
    let mut seen_systems = Vec::new();
    for (i, id) in p.identifier.iter().enumerate().take(MAX_ITEMS) {
        let f = |k: &str| format!("identifier[{i}].{k}");
        one_of(
            f("use"),
            &id.r#use,
            &["usual", "official", "temp", "secondary", "old"],
            &mut errs,
        );
        let Some(system) = id.system.as_deref().filter(|s| !s.is_empty()) else {
            errs.push(err(f("system"), "an identifier needs its system (a URI)"));
            continue;
        };
        if system.contains(char::is_whitespace)
            || !system.contains(':')
            || text_problem(system, MAX_URI).is_some()
        {
            errs.push(err(f("system"), "must be an absolute URI"));
        }
        if seen_systems.contains(&system) {
            errs.push(err(f("system"), "only one identifier per system"));
        }
        seen_systems.push(system);
        let value = id.value.as_deref().unwrap_or("");
        if value.is_empty() {
            errs.push(err(f("value"), "an identifier needs a value"));
            continue;
        }
        if let Some(problem) = identifier_problem(value) {
            errs.push(err(f("value"), problem));
        }
        if system == ON_HCN_SYSTEM && !valid_ontario_hcn(value) {
            errs.push(err(
                f("value"),
                "an Ontario health card number is 10 digits with a valid check digit",
            ));
        }
        check_count(
            &f("extension"),
            id.extension.len(),
            1,
            "extensions",
            &mut errs,
        );
        for (j, ext) in id.extension.iter().enumerate().take(1) {
            if ext.url == IDENTIFIER_VERSION_EXT {
                let v = ext.value_string.as_deref().unwrap_or("");
                let ok = v.len() <= 2 && v.bytes().all(|b| b.is_ascii_uppercase());
                if !ok {
                    errs.push(err(
                        format!("identifier[{i}].extension[{j}].valueString"),
                        "a health card version code is 0 to 2 uppercase letters",
                    ));
                }
            } else {
                errs.push(err(
                    format!("identifier[{i}].extension[{j}].url"),
                    format!("unsupported extension; Osler supports {IDENTIFIER_VERSION_EXT}"),
                ));
            }
        }
    }

    check_count(
        "telecom",
        p.telecom.len(),
        MAX_ITEMS,
        "contact points",
        &mut errs,
    );
    for (i, t) in p.telecom.iter().enumerate().take(MAX_ITEMS) {
        one_of(
            format!("telecom[{i}].system"),
            &t.system,
            &["phone", "fax", "email", "pager", "url", "sms", "other"],
            &mut errs,
        );
        one_of(
            format!("telecom[{i}].use"),
            &t.r#use,
            &["home", "work", "temp", "old", "mobile"],
            &mut errs,
        );
        if t.value.is_none() {
            errs.push(err(
                format!("telecom[{i}].value"),
                "a contact point needs a value",
            ));
        }
        check_text(format!("telecom[{i}].value"), &t.value, MAX_TEXT, &mut errs);
        if t.rank == Some(0) {
            errs.push(err(format!("telecom[{i}].rank"), "rank starts at 1"));
        }
    }

    check_count(
        "address",
        p.address.len(),
        MAX_ITEMS,
        "addresses",
        &mut errs,
    );
    for (i, a) in p.address.iter().enumerate().take(MAX_ITEMS) {
        one_of(
            format!("address[{i}].use"),
            &a.r#use,
            &["home", "work", "temp", "old", "billing"],
            &mut errs,
        );
        one_of(
            format!("address[{i}].type"),
            &a.r#type,
            &["postal", "physical", "both"],
            &mut errs,
        );
        let field = format!("address[{i}].line");
        check_count(&field, a.line.len(), MAX_ADDRESS_LINES, "lines", &mut errs);
        for (j, l) in a.line.iter().enumerate().take(MAX_ADDRESS_LINES) {
            if let Some(problem) = text_problem(l, MAX_TEXT) {
                errs.push(err(format!("{field}[{j}]"), problem));
            }
        }
        for (key, v) in [
            ("text", &a.text),
            ("city", &a.city),
            ("district", &a.district),
            ("state", &a.state),
            ("postalCode", &a.postal_code),
            ("country", &a.country),
        ] {
            check_text(format!("address[{i}].{key}"), v, MAX_TEXT, &mut errs);
        }
    }

    check_count(
        "communication",
        p.communication.len(),
        MAX_ITEMS,
        "languages",
        &mut errs,
    );
    for (i, c) in p.communication.iter().enumerate().take(MAX_ITEMS) {
        let field = format!("communication[{i}].language");
        if c.language.coding.is_empty() && c.language.text.is_none() {
            errs.push(err(
                field.clone(),
                "give a language code (BCP 47, e.g. fr-CA) or text",
            ));
        }
        check_text(
            format!("{field}.text"),
            &c.language.text,
            MAX_TEXT,
            &mut errs,
        );
        let codings = format!("{field}.coding");
        check_count(
            &codings,
            c.language.coding.len(),
            MAX_ITEMS,
            "codings",
            &mut errs,
        );
        for (j, k) in c.language.coding.iter().enumerate().take(MAX_ITEMS) {
            check_text(
                format!("{codings}[{j}].system"),
                &k.system,
                MAX_URI,
                &mut errs,
            );
            check_text(format!("{codings}[{j}].code"), &k.code, MAX_TEXT, &mut errs);
            check_text(
                format!("{codings}[{j}].display"),
                &k.display,
                MAX_TEXT,
                &mut errs,
            );
        }
    }
    if p.communication
        .iter()
        .filter(|c| c.preferred == Some(true))
        .count()
        > 1
    {
        errs.push(err("communication", "only one language can be preferred"));
    }

    check_count(
        "generalPractitioner",
        p.general_practitioner.len(),
        MAX_ITEMS,
        "practitioners",
        &mut errs,
    );
    for (i, r) in p.general_practitioner.iter().enumerate().take(MAX_ITEMS) {
        let ok = r.reference.as_deref().is_some_and(|s| {
            let mut it = s.splitn(2, '/');
            matches!(
                (it.next(), it.next()),
                (Some("Practitioner" | "PractitionerRole" | "Organization"), Some(id))
                    if !id.is_empty() && id.len() <= 64
                        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            )
        });
        if !ok {
            errs.push(err(
                format!("generalPractitioner[{i}].reference"),
                "must be Practitioner/<id>, PractitionerRole/<id> or Organization/<id>",
            ));
        }
        check_text(
            format!("generalPractitioner[{i}].display"),
            &r.display,
            MAX_TEXT,
            &mut errs,
        );
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ontario_health_card_numbers() {
        assert!(valid_ontario_hcn("9287170261"));
        assert!(!valid_ontario_hcn("1286844022"));
        assert!(!valid_ontario_hcn("928717026"));
        assert!(!valid_ontario_hcn("92871702a1"));
        assert_eq!(hcn_check_digit("928717026"), '1');
    }

    fn base() -> Patient {
        Patient {
            resource_type: "Patient".into(),
            name: vec![HumanName {
                family: Some("Lee".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn fields(p: &Patient) -> Vec<String> {
        let mut p = p.clone();
        normalise(&mut p);
        validate(&p, time::macros::date!(2026 - 11 - 29))
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn names_must_hold_letters_and_nothing_invisible() {
        for bad in [
            "\u{301}\u{301}\u{301}", // combining marks only
            "\u{200B}\u{200B}",      // zero-width spaces
            "Ann\u{202E}eL",         // right-to-left override
            "Jo\u{200B}hn",          // a zero-width space inside
            "\u{3164}",              // a Hangul filler
            "\u{301}Ann",            // starts with a combining mark
            "1234",                  // no letter
            "",
            "   ",
        ] {
            let mut p = base();
            p.name[0].given = vec![bad.into()];
            assert_eq!(fields(&p), ["name[0].given[0]"], "{bad:?}");
        }
        for good in [
            "José",
            "Nguyễn",
            "O'Brien",
            "Anne-Marie",
            "می\u{200C}خواهم", // a zero-width non-joiner between Persian letters
            "李",
            "J",
        ] {
            let mut p = base();
            p.name[0].given = vec![good.into()];
            assert!(fields(&p).is_empty(), "{good:?}: {:?}", fields(&p));
        }
        // Decomposed input is stored composed, spacing tidied.
        let mut p = base();
        p.name[0].given = vec![" Jose\u{301}\u{A0}\u{A0}Luis ".into()];
        normalise(&mut p);
        assert_eq!(p.name[0].given[0], "José Luis");
    }

    #[test]
    fn a_record_is_bounded_in_names_and_words() {
        let mut p = base();
        p.name[0].given = (0..4000).map(|i| format!("d{i}")).collect();
        assert_eq!(fields(&p), ["name[0].given"]);
        let mut p = base();
        p.name = (0..11).map(|_| p.name[0].clone()).collect();
        assert_eq!(fields(&p), ["name"]);
        let mut p = base();
        p.name[0].given = vec!["a".repeat(MAX_NAME_CHARS + 1)];
        assert_eq!(fields(&p), ["name[0].given[0]"]);
        // Ten names of five words each: within each limit, over the record's word count.
        let mut p = base();
        p.name = (0..10)
            .map(|i| HumanName {
                family: Some(format!("fa{i} fb{i} fc{i} fd{i} fe{i}")),
                ..Default::default()
            })
            .collect();
        assert_eq!(fields(&p), ["name"]);
    }

    #[test]
    fn a_death_is_a_real_date_after_birth_and_not_in_the_future() {
        let mut p = base();
        p.birth_date = Some("1950-05-01".into());
        for bad in [
            "0000-01-01",
            "9999-12-31",
            "1950-04-30",
            "2026-13-01",
            "2020-01-01t10:00:00z",
            "2020-01-01T10:00",
        ] {
            p.deceased_date_time = Some(bad.into());
            assert_eq!(fields(&p), ["deceasedDateTime"], "{bad}");
        }
        for good in ["1950-05-01", "2020-01-01", "2020-01-01T10:00:00-05:00"] {
            p.deceased_date_time = Some(good.into());
            assert!(fields(&p).is_empty(), "{good}");
        }
    }

    #[test]
    fn identifiers_compare_tidied_and_without_case() {
        let k = identifier_key_value;
        assert_eq!(k(" AB-123\u{A0}"), k("ab-123"));
        assert_eq!(k("AB 12\t3"), k("ab123"));
        let mut p = base();
        for bad in ["AB\u{200B}123", "AB|123", "\u{202E}123", "A\u{FEFF}"] {
            p.identifier = vec![Identifier {
                system: Some("urn:example:mrn".into()),
                value: Some(bad.into()),
                ..Default::default()
            }];
            assert_eq!(fields(&p), ["identifier[0].value"], "{bad:?}");
        }
    }

    #[test]
    fn errors_name_their_field() {
        let today = time::macros::date!(2026 - 11 - 29);
        assert!(validate(&base(), today).is_empty());

        let mut p = base();
        p.birth_date = Some("2027-01-01".into());
        assert_eq!(validate(&p, today)[0].field, "birthDate");

        let mut p = base();
        p.name.clear();
        assert_eq!(validate(&p, today)[0].field, "name");

        let mut p = base();
        p.identifier.push(Identifier {
            system: Some(ON_HCN_SYSTEM.into()),
            value: Some("1286844022".into()),
            ..Default::default()
        });
        assert_eq!(validate(&p, today)[0].field, "identifier[0].value");

        p.identifier[0].value = Some("9287170261".into());
        p.identifier[0].extension.push(Extension {
            url: IDENTIFIER_VERSION_EXT.into(),
            value_string: Some("abc".into()),
        });
        assert_eq!(
            validate(&p, today)[0].field,
            "identifier[0].extension[0].valueString"
        );
    }
}
