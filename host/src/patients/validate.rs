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

const MAX_TEXT: usize = 1000;

/// Check a patient; `today` is passed in so tests can pin it.
pub fn validate(p: &Patient, today: time::Date) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if p.resource_type != "Patient" {
        errs.push(err("resourceType", "must be \"Patient\""));
    }

    // Names: at least one, with a family or given name.
    if !p.name.iter().any(|n| {
        n.family.as_deref().is_some_and(|f| !f.trim().is_empty())
            || n.given.iter().any(|g| !g.trim().is_empty())
    }) {
        errs.push(err(
            "name",
            "a name is required: give at least a family or a given name",
        ));
    }
    for (i, n) in p.name.iter().enumerate() {
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
        let parts = n
            .family
            .iter()
            .chain(&n.given)
            .chain(&n.prefix)
            .chain(&n.suffix);
        for part in parts.chain(&n.text) {
            if part.chars().count() > MAX_TEXT || part.chars().any(char::is_control) {
                errs.push(err(format!("name[{i}]"), "name parts must be plain text"));
                break;
            }
        }
    }

    one_of(
        "gender".into(),
        &p.gender,
        &["male", "female", "other", "unknown"],
        &mut errs,
    );

    match p.birth_date.as_deref().map(|d| (d, parse_date(d))) {
        None => {}
        Some((_, None)) => errs.push(err("birthDate", "must be a date written YYYY-MM-DD")),
        Some((_, Some(d))) if d > today => errs.push(err("birthDate", "must not be in the future")),
        Some((_, Some(d))) if d.year() < 1850 => errs.push(err("birthDate", "must be after 1850")),
        _ => {}
    }

    if p.deceased_boolean.is_some() && p.deceased_date_time.is_some() {
        errs.push(err(
            "deceasedDateTime",
            "give either deceasedBoolean or deceasedDateTime, not both",
        ));
    }
    if let Some(d) = &p.deceased_date_time {
        let ok = parse_date(d).is_some()
            || time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339)
                .is_ok();
        if !ok {
            errs.push(err(
                "deceasedDateTime",
                "must be a date (YYYY-MM-DD) or a date-time with a time zone",
            ));
        }
    }

    let mut seen_systems = Vec::new();
    for (i, id) in p.identifier.iter().enumerate() {
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
        if system.contains(char::is_whitespace) || !system.contains(':') {
            errs.push(err(f("system"), "must be an absolute URI"));
        }
        if seen_systems.contains(&system) {
            errs.push(err(f("system"), "only one identifier per system"));
        }
        seen_systems.push(system);
        let value = id.value.as_deref().unwrap_or("");
        if value.trim().is_empty() {
            errs.push(err(f("value"), "an identifier needs a value"));
            continue;
        }
        if value.len() > 64 || value.chars().any(|c| c.is_control() || c == '|') {
            errs.push(err(f("value"), "must be at most 64 plain characters"));
        }
        if system == ON_HCN_SYSTEM && !valid_ontario_hcn(value) {
            errs.push(err(
                f("value"),
                "an Ontario health card number is 10 digits with a valid check digit",
            ));
        }
        for (j, ext) in id.extension.iter().enumerate() {
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

    for (i, t) in p.telecom.iter().enumerate() {
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
        if t.value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            errs.push(err(
                format!("telecom[{i}].value"),
                "a contact point needs a value",
            ));
        }
        if t.rank == Some(0) {
            errs.push(err(format!("telecom[{i}].rank"), "rank starts at 1"));
        }
    }

    for (i, a) in p.address.iter().enumerate() {
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
    }

    for (i, c) in p.communication.iter().enumerate() {
        if c.language.coding.is_empty() && c.language.text.is_none() {
            errs.push(err(
                format!("communication[{i}].language"),
                "give a language code (BCP 47, e.g. fr-CA) or text",
            ));
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

    for (i, r) in p.general_practitioner.iter().enumerate() {
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
