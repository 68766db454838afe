//! Resources, their validation, tag matching and the search ranking. Pure logic: no host
//! calls, so all of it is unit-tested natively.
//!
//! **Tags.** A resource has three kinds of tag:
//!
//! - *conditions*: ICD-10-CA code prefixes (`E11`, `I10`, `J45`; stored upper case without the
//!   dot, so `E11.9` and `E119` are one code) and/or words or short phrases (`diabetes`,
//!   `heart failure`);
//! - *drug classes*: WHO ATC codes or classes (`C09A`, `A10BA`, `C10AA05`);
//! - *specialties*: words (`cardiology`, `family medicine`).
//!
//! **Matching an ATC code** ([`atc_match`]): a resource tagged `C09A` is about every drug whose
//! code starts with `C09A` (`C09AA05`, ramipril); a search for a class of three characters or
//! more (`C09`) also finds the resources tagged with something inside it (`C09A`, `C09CA01`).
//! The more of the code the tag covers, the more specific the match.
//!
//! **Matching a condition** ([`condition_match`]): an ICD-10-CA code (`E11.9`) matches tags
//! that are a prefix of it (`E11`, `E1`), and a code of three characters or more (`E11`) also
//! matches tags inside it (`E11.9`); a description (`Type 2 diabetes mellitus`) matches the
//! word tags it contains as whole words (`diabetes`, `type 2 diabetes`).
//!
//! **Ranking a text search** ([`score`]): the query is split into words (letters and digits;
//! case and accents as written, compared in lower case). Every word must be found somewhere,
//! or the resource is not a result. Each word scores the best of: 10 when it is a word of the
//! title (8 when it only begins one), 5 when it is a tag or a word of a tag (or an ATC or
//! ICD-10-CA tag matches it as above), 2 when it is a word of the summary (1 when it only
//! begins one). Results come pinned first, then by total score, then in the site's order.

use serde::{Deserialize, Serialize};

/// Most resources a site's library holds (the library is one stored value; see `store`).
pub const MAX_RESOURCES: usize = 500;
pub const MAX_TITLE: usize = 200;
pub const MAX_URL: usize = 500;
pub const MAX_SUMMARY: usize = 600;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG: usize = 60;

pub const AUDIENCES: [&str; 2] = ["clinician", "patient"];

/// Who changed a resource, and when (the site's local time).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    pub by: String,
    pub at: String,
}

/// One resource of a site's library.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    pub title: String,
    pub url: String,
    pub summary: String,
    /// ICD-10-CA code prefixes (upper case, no dot) and condition words (lower case).
    pub conditions: Vec<String>,
    /// ATC codes or classes (upper case).
    pub atc: Vec<String>,
    /// Specialties (lower case).
    pub specialties: Vec<String>,
    /// `clinician` or `patient`.
    pub audience: String,
    /// BCP 47 primary language tag, lower case.
    pub language: String,
    /// `YYYY-MM-DD`.
    pub reviewed: String,
    /// From the seed set that ships with the plugin (a site may still edit or retire it).
    pub seed: bool,
    pub pinned: bool,
    pub retired: bool,
    /// The last change made at the site (none for a seed entry as shipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<Stamp>,
}

/// A resource as a form or the JSON API gives it: tags as comma-separated text or lists.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceInput {
    pub title: String,
    pub url: String,
    pub summary: String,
    #[serde(deserialize_with = "list_or_text")]
    pub conditions: Vec<String>,
    #[serde(deserialize_with = "list_or_text")]
    pub atc: Vec<String>,
    #[serde(deserialize_with = "list_or_text")]
    pub specialties: Vec<String>,
    pub audience: String,
    pub language: String,
    pub reviewed: String,
}

/// `["a", "b"]` or `"a, b"` (a form's text field).
fn list_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(l) => l,
        Either::Text(t) => split_list(&t),
    })
}

/// `"a, b,,c "` → `["a", "b", "c"]`.
pub fn split_list(text: &str) -> Vec<String> {
    text.split([',', ';'])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The checked fields of a resource (everything but its id and site state).
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub title: String,
    pub url: String,
    pub summary: String,
    pub conditions: Vec<String>,
    pub atc: Vec<String>,
    pub specialties: Vec<String>,
    pub audience: String,
    pub language: String,
    pub reviewed: String,
}

impl Checked {
    pub fn apply(self, r: &mut Resource) {
        r.title = self.title;
        r.url = self.url;
        r.summary = self.summary;
        r.conditions = self.conditions;
        r.atc = self.atc;
        r.specialties = self.specialties;
        r.audience = self.audience;
        r.language = self.language;
        r.reviewed = self.reviewed;
    }
}

/// A field's problem, named (`url: …`), as the page shows it beside the form.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid(pub String);

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// One line of text: trimmed, 1 to `max` characters when `required`, no control characters.
fn line(field: &str, s: &str, max: usize, required: bool) -> Result<String, Invalid> {
    let s = s.trim();
    if required && s.is_empty() {
        return Err(Invalid(format!("{field}: must not be empty")));
    }
    if s.chars().count() > max {
        return Err(Invalid(format!("{field}: at most {max} characters")));
    }
    if has_control(s) {
        return Err(Invalid(format!(
            "{field}: one line, without control characters"
        )));
    }
    Ok(s.to_string())
}

impl ResourceInput {
    /// Every field checked and normalised, or the first problem, named.
    pub fn check(&self) -> Result<Checked, Invalid> {
        let title = line("title", &self.title, MAX_TITLE, true)?;
        let url = check_url(&self.url)?;
        // A summary may run over lines (a form's textarea); other control characters are out.
        let summary = self.summary.trim().replace("\r\n", "\n");
        if summary.chars().count() > MAX_SUMMARY {
            return Err(Invalid(format!(
                "summary: at most {MAX_SUMMARY} characters"
            )));
        }
        if summary.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Invalid("summary: without control characters".into()));
        }
        let conditions = tags("conditions", &self.conditions, condition_tag)?;
        let atc = tags("atc", &self.atc, |t| {
            atc_code(t).ok_or_else(|| format!("'{t}' is not an ATC code or class, like C09A"))
        })?;
        let specialties = tags("specialties", &self.specialties, word_tag)?;
        let audience = self.audience.trim().to_ascii_lowercase();
        if !AUDIENCES.contains(&audience.as_str()) {
            return Err(Invalid("audience: clinician or patient".into()));
        }
        let language = self.language.trim().to_ascii_lowercase();
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(Invalid(
                "language: a two- or three-letter language code, like en or fr".into(),
            ));
        }
        let reviewed = self.reviewed.trim().to_string();
        if !valid_date(&reviewed) {
            return Err(Invalid("reviewed: a date, YYYY-MM-DD".into()));
        }
        Ok(Checked {
            title,
            url,
            summary,
            conditions,
            atc,
            specialties,
            audience,
            language,
            reviewed,
        })
    }
}

fn tags(
    field: &str,
    list: &[String],
    each: impl Fn(&str) -> Result<String, String>,
) -> Result<Vec<String>, Invalid> {
    if list.len() > MAX_TAGS {
        return Err(Invalid(format!("{field}: at most {MAX_TAGS}")));
    }
    let mut out: Vec<String> = Vec::new();
    for t in list {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        if t.chars().count() > MAX_TAG {
            return Err(Invalid(format!(
                "{field}: '{t}' is longer than {MAX_TAG} characters"
            )));
        }
        let v = each(t).map_err(|m| Invalid(format!("{field}: {m}")))?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// A condition tag: an ICD-10-CA code prefix (upper case, without its dot) or words.
fn condition_tag(t: &str) -> Result<String, String> {
    if let Some(code) = icd_code(t) {
        return Ok(code);
    }
    word_tag(t)
        .map_err(|_| format!("'{t}' is neither an ICD-10-CA code like E11 nor words like diabetes"))
}

/// Words: letters (any script), digits, spaces, `-` and `'`; stored in lower case with single
/// spaces; at least one letter.
fn word_tag(t: &str) -> Result<String, String> {
    let ok = t
        .chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '\'');
    if !ok || !t.chars().any(char::is_alphabetic) {
        return Err(format!(
            "'{t}' may hold letters, digits, spaces, '-' and an apostrophe"
        ));
    }
    Ok(t.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase())
}

/// An ICD-10-CA code or code prefix (`E11.9`, `e119`, `E11`, `E`): a letter, then up to two
/// digits, then (after an optional dot, only once there are two digits) up to four letters or
/// digits. Upper case, without the dot. Plain words are not codes (`asthma` has no digit
/// after its first letter; a single letter on its own is a chapter prefix only when written
/// upper case).
pub fn icd_code(t: &str) -> Option<String> {
    let t = t.trim();
    let b = t.as_bytes();
    if b.is_empty() || b.len() > 8 || !b[0].is_ascii_alphabetic() {
        return None;
    }
    if b.len() == 1 {
        return b[0].is_ascii_uppercase().then(|| t.to_string());
    }
    let mut out = String::new();
    out.push(b[0].to_ascii_uppercase() as char);
    let digits = b[1..]
        .iter()
        .take(2)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    out.push_str(&t[1..1 + digits]);
    let mut rest = &t[1 + digits..];
    if digits == 2 {
        rest = rest.strip_prefix('.').unwrap_or(rest);
        if rest.len() > 4 || !rest.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        out.push_str(&rest.to_ascii_uppercase());
    } else if !rest.is_empty() {
        return None;
    }
    Some(out)
}

/// A WHO ATC code or class (1, 3, 4, 5 or 7 characters: `C`, `C09`, `C09A`, `C09AA`,
/// `C09AA05`), upper case; `None` when it is not one.
pub fn atc_code(code: &str) -> Option<String> {
    let c = code.trim().to_ascii_uppercase();
    let b = c.as_bytes();
    let ok = [1, 3, 4, 5, 7].contains(&b.len())
        && b.iter().enumerate().all(|(i, ch)| match i {
            0 => b"ABCDGHJLMNPRSV".contains(ch),
            1 | 2 | 5 | 6 => ch.is_ascii_digit(),
            _ => ch.is_ascii_uppercase(),
        });
    ok.then_some(c)
}

/// `YYYY-MM-DD`, a real date.
pub fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    if !s[0..4].bytes().all(|c| c.is_ascii_digit()) || !(1900..=9999).contains(&y) {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// A link a clinic may publish: `http` or `https`, a host, no credentials, no spaces or
/// control characters, at most 500 characters. The scheme and host are returned in lower case.
pub fn check_url(url: &str) -> Result<String, Invalid> {
    let bad = |why: &str| Err(Invalid(format!("url: {why}")));
    let url = url.trim();
    if url.is_empty() {
        return bad("must not be empty");
    }
    if url.len() > MAX_URL {
        return bad(&format!("at most {MAX_URL} characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("no spaces or control characters");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("a web address starting with https:// or http://");
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return bad("only http and https links");
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return bad("no user name or password in the link");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return bad("the port must be a number");
    }
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        });
    if !host_ok {
        return bad("the address needs a host name, like www.canada.ca");
    }
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    if let Some(p) = port {
        out.push(':');
        out.push_str(p);
    }
    out.push_str(tail);
    Ok(out)
}

/// How well an ATC tag matches a drug's code or class: the tag's length when the code falls
/// in the tag's class, or the query's length when the query is a class of three characters or
/// more and the tag lies inside it; `None` otherwise.
pub fn atc_match(tag: &str, code: &str) -> Option<usize> {
    if code.starts_with(tag) {
        Some(tag.len())
    } else if code.len() >= 3 && tag.starts_with(code) {
        Some(code.len())
    } else {
        None
    }
}

/// Lower case words (letters and digits) of `s`.
pub fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether the words of `phrase` appear, in order and next to each other, in `text`.
fn contains_phrase(text: &[String], phrase: &[String]) -> bool {
    !phrase.is_empty() && text.windows(phrase.len()).any(|w| w == phrase)
}

/// How a condition (an ICD-10-CA code or a description) matches a resource's condition tags:
/// the strength of the best match (a code's tag length, a phrase's word count), or `None`.
pub fn condition_match(tags: &[String], condition: &str) -> Option<usize> {
    if let Some(code) = icd_code(condition).filter(|c| c.len() >= 3) {
        return tags
            .iter()
            .filter(|t| icd_code(t).as_deref() == Some(t.as_str()))
            .filter_map(|t| {
                if code.starts_with(t.as_str()) {
                    Some(t.len())
                } else if t.starts_with(&code) {
                    Some(code.len())
                } else {
                    None
                }
            })
            .max();
    }
    let text = words(condition);
    tags.iter()
        .filter(|t| icd_code(t).as_deref() != Some(t.as_str()))
        .filter_map(|t| {
            let phrase = words(t);
            contains_phrase(&text, &phrase).then_some(phrase.len())
        })
        .max()
}

/// Points for a query word found in the title, a tag or the summary.
pub const TITLE_WORD: u32 = 10;
pub const TITLE_PREFIX: u32 = 8;
pub const TAG: u32 = 5;
pub const SUMMARY_WORD: u32 = 2;
pub const SUMMARY_PREFIX: u32 = 1;

/// The score of `r` for the query `q` (see the module's docs), or `None` when some word of
/// the query is found nowhere.
pub fn score(r: &Resource, q: &str) -> Option<u32> {
    let terms = words(q);
    if terms.is_empty() {
        return None;
    }
    let title = words(&r.title);
    let summary = words(&r.summary);
    let tag_words: Vec<String> = r
        .conditions
        .iter()
        .chain(&r.specialties)
        .flat_map(|t| words(t))
        .chain(r.atc.iter().map(|t| t.to_lowercase()))
        .collect();
    let mut total = 0;
    for t in &terms {
        let upper = t.to_uppercase();
        let in_title = if title.contains(t) {
            TITLE_WORD
        } else if title.iter().any(|w| w.starts_with(t.as_str())) {
            TITLE_PREFIX
        } else {
            0
        };
        let coded = atc_code(&upper)
            .is_some_and(|c| r.atc.iter().any(|a| atc_match(a, &c).is_some()))
            || icd_code(&upper)
                .is_some_and(|c| c.len() >= 3 && condition_match(&r.conditions, &c).is_some());
        let in_tags = if tag_words.contains(t) || coded {
            TAG
        } else {
            0
        };
        let in_summary = if summary.contains(t) {
            SUMMARY_WORD
        } else if summary.iter().any(|w| w.starts_with(t.as_str())) {
            SUMMARY_PREFIX
        } else {
            0
        };
        let best = in_title.max(in_tags).max(in_summary);
        if best == 0 {
            return None;
        }
        total += best;
    }
    Some(total)
}

/// A tag filter, as the search page and API take it: `atc:C09A`, `condition:E11` or
/// `condition:diabetes`, `specialty:cardiology`, or a bare tag (any kind).
pub fn tag_matches(r: &Resource, filter: &str) -> bool {
    let filter = filter.trim();
    let (kind, value) = match filter.split_once(':') {
        Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim()),
        None => (String::new(), filter),
    };
    if value.is_empty() {
        return true;
    }
    let by_atc =
        || atc_code(value).is_some_and(|c| r.atc.iter().any(|a| atc_match(a, &c).is_some()));
    let by_condition = || condition_match(&r.conditions, value).is_some();
    let by_specialty = || {
        let v = words(value).join(" ");
        r.specialties.contains(&v)
    };
    match kind.as_str() {
        "atc" => by_atc(),
        "condition" => by_condition(),
        "specialty" => by_specialty(),
        _ => by_atc() || by_condition() || by_specialty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(title: &str, summary: &str, conditions: &[&str], atc: &[&str]) -> Resource {
        Resource {
            id: title.to_lowercase().replace(' ', "-"),
            title: title.into(),
            summary: summary.into(),
            conditions: conditions.iter().map(|s| s.to_string()).collect(),
            atc: atc.iter().map(|s| s.to_string()).collect(),
            specialties: vec!["cardiology".into()],
            audience: "clinician".into(),
            language: "en".into(),
            reviewed: "2026-01-15".into(),
            url: "https://example.org/".into(),
            ..Default::default()
        }
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host_and_no_credentials() {
        assert_eq!(
            check_url(" HTTPS://Guidelines.Diabetes.ca/cpg?x=1#top ").unwrap(),
            "https://guidelines.diabetes.ca/cpg?x=1#top"
        );
        assert_eq!(
            check_url("http://localhost:8080/a").unwrap(),
            "http://localhost:8080/a"
        );
        for bad in [
            "",
            "javascript:alert(1)",
            "javascript://example.org/%0aalert(1)",
            "data:text/html,hi",
            "ftp://example.org/file",
            "//example.org/path",
            "example.org",
            "https://",
            "https:///path",
            "https://user:pw@example.org/",
            "https://example.org/a b",
            "https://exa mple.org/",
            "https://example..org/",
            "https://-bad.org/",
            "https://example.org:port/",
            "https://example.org\n.evil/",
            "https://<script>/",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("https://example.org/{}", "a".repeat(MAX_URL));
        assert!(check_url(&long).is_err());
    }

    #[test]
    fn atc_tags_match_by_class_prefix_either_way() {
        // A class tag covers every drug in it.
        assert_eq!(atc_match("C09A", "C09AA05"), Some(4));
        assert_eq!(atc_match("C09", "C09AA05"), Some(3));
        assert_eq!(atc_match("C09AA05", "C09AA05"), Some(7));
        // A search for a class finds what is tagged inside it.
        assert_eq!(atc_match("C09AA05", "C09A"), Some(4));
        assert_eq!(atc_match("C09CA01", "C09"), Some(3));
        // But a bare anatomical group is too broad to pull in narrower tags.
        assert_eq!(atc_match("C09A", "C"), None);
        assert_eq!(atc_match("C", "C09AA05"), Some(1));
        // Another class never matches.
        assert_eq!(atc_match("C09C", "C09AA05"), None);
        assert_eq!(atc_match("C10AA", "C09AA05"), None);
        assert_eq!(atc_code(" c09a "), Some("C09A".into()));
        for bad in ["C0", "C09AA0", "X09", "09A", "C09a1", ""] {
            assert_eq!(atc_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn condition_codes_and_words_match() {
        let tags: Vec<String> = ["E11", "diabetes", "type 2 diabetes", "I10"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(condition_match(&tags, "E11.9"), Some(3));
        assert_eq!(condition_match(&tags, "e119"), Some(3));
        assert_eq!(condition_match(&tags, "E10.9"), None);
        assert_eq!(condition_match(&tags, "Type 2 diabetes mellitus"), Some(3));
        assert_eq!(condition_match(&tags, "Diabetes, gestational"), Some(1));
        assert_eq!(condition_match(&tags, "prediabetes"), None);
        assert_eq!(condition_match(&tags, "asthma"), None);
        assert_eq!(icd_code("E11.9"), Some("E119".into()));
        assert_eq!(icd_code("J45"), Some("J45".into()));
        assert_eq!(icd_code("asthma"), None);
        assert_eq!(icd_code("a"), None);
        assert_eq!(icd_code("E1.1"), None);
    }

    #[test]
    fn title_beats_tags_beats_summary_and_every_word_must_match() {
        let in_title = r(
            "Heart failure guideline",
            "Management in adults.",
            &["I50"],
            &[],
        );
        let in_tags = r(
            "Cardiology guideline",
            "Management in adults.",
            &["heart failure"],
            &[],
        );
        let in_summary = r(
            "Cardiology guideline",
            "Covers heart failure.",
            &["I50"],
            &[],
        );
        assert_eq!(score(&in_title, "heart"), Some(TITLE_WORD));
        assert_eq!(score(&in_tags, "heart"), Some(TAG));
        assert_eq!(score(&in_summary, "heart"), Some(SUMMARY_WORD));
        assert_eq!(score(&in_title, "hea"), Some(TITLE_PREFIX));
        assert_eq!(score(&in_summary, "hea"), Some(SUMMARY_PREFIX));
        assert_eq!(score(&in_title, "Heart FAILURE"), Some(2 * TITLE_WORD));
        // A word found nowhere: not a result.
        assert_eq!(score(&in_title, "heart asthma"), None);
        assert_eq!(score(&in_title, "  "), None);
        // Codes in the query match coded tags.
        let acei = r("Hypertension", "", &["I10"], &["C09A"]);
        assert_eq!(score(&acei, "C09AA05"), Some(TAG));
        assert_eq!(score(&acei, "I10"), Some(TAG));
        assert_eq!(score(&acei, "C10AA"), None);
    }

    #[test]
    fn tag_filters_by_kind() {
        let acei = r("ACE inhibitors", "", &["I10", "hypertension"], &["C09A"]);
        assert!(tag_matches(&acei, "atc:C09"));
        assert!(tag_matches(&acei, "atc:c09aa05"));
        assert!(!tag_matches(&acei, "atc:C09C"));
        assert!(tag_matches(&acei, "condition:I10"));
        assert!(tag_matches(&acei, "condition:Essential hypertension"));
        assert!(tag_matches(&acei, "specialty:Cardiology"));
        assert!(!tag_matches(&acei, "specialty:nephrology"));
        assert!(tag_matches(&acei, "C09A"));
        assert!(tag_matches(&acei, "hypertension"));
        assert!(!tag_matches(&acei, "asthma"));
    }

    #[test]
    fn input_is_checked_and_normalised() {
        let ok = ResourceInput {
            title: "  Thrombosis Canada tools ".into(),
            url: "https://thrombosiscanada.ca/".into(),
            summary: "Line one\r\nline two".into(),
            conditions: split_list("I48, atrial fibrillation ,, I26.9"),
            atc: split_list("b01a"),
            specialties: split_list("Hematology"),
            audience: "Clinician".into(),
            language: "EN".into(),
            reviewed: "2026-02-28".into(),
        };
        let c = ok.check().unwrap();
        assert_eq!(c.title, "Thrombosis Canada tools");
        assert_eq!(c.summary, "Line one\nline two");
        assert_eq!(c.conditions, ["I48", "atrial fibrillation", "I269"]);
        assert_eq!(c.atc, ["B01A"]);
        assert_eq!(c.specialties, ["hematology"]);
        assert_eq!(
            (c.audience.as_str(), c.language.as_str()),
            ("clinician", "en")
        );
        let bad = |f: &dyn Fn(&mut ResourceInput), field: &str| {
            let mut i = ok.clone();
            f(&mut i);
            let e = i.check().unwrap_err();
            assert!(e.0.starts_with(field), "{field}: {}", e.0);
        };
        bad(&|i| i.title = " ".into(), "title:");
        bad(&|i| i.title = "a\u{7}b".into(), "title:");
        bad(&|i| i.url = "javascript:alert(1)".into(), "url:");
        bad(&|i| i.atc = vec!["C9".into()], "atc:");
        bad(&|i| i.conditions = vec!["<b>".into()], "conditions:");
        bad(&|i| i.audience = "everyone".into(), "audience:");
        bad(&|i| i.language = "english".into(), "language:");
        bad(&|i| i.reviewed = "2026-02-30".into(), "reviewed:");
        bad(&|i| i.summary = "x".repeat(MAX_SUMMARY + 1), "summary:");
        assert!(valid_date("2024-02-29"));
        assert!(!valid_date("2023-02-29"));
    }
}
