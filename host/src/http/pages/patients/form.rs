//! The patient form: its fields, how they map onto the FHIR record (and back, and onto the
//! validation errors' JSON paths), how it is drawn, and the three-way merge of a stale save.
//! Registration and editing share it.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use crate::access::Role;
use crate::app::App;
use crate::http::banner::{main_name, sex_label};
use crate::http::pages::esc;
use crate::http::shell::Page;
use crate::patients::FieldError;
use crate::patients::fhir::{
    Address, CodeableConcept, Coding, ContactPoint, IDENTIFIER_VERSION_EXT, Identifier,
    ON_HCN_SYSTEM, Patient, Reference,
};

use super::clean_number;

/// The form's fields and their labels, in the order they appear.
pub(super) const FIELDS: &[(&str, &str)] = &[
    ("prefix", "Title"),
    ("given", "Given names"),
    ("family", "Family name"),
    ("suffix", "Suffix"),
    ("preferred", "Preferred name"),
    ("previous_family", "Previous family name"),
    ("gender", "Sex"),
    ("birthDate", "Birth date"),
    ("deceased", "Deceased"),
    ("deceased_date", "Date of death"),
    ("hcn", "Health card number"),
    ("hcn_version", "Version code"),
    ("phone_home", "Home phone"),
    ("phone_mobile", "Mobile phone"),
    ("phone_work", "Work phone"),
    ("email", "Email"),
    ("line1", "Street address"),
    ("line2", "Address line 2"),
    ("city", "City"),
    ("province", "Province"),
    ("postal_code", "Postal code"),
    ("country", "Country"),
    ("language", "Preferred language"),
    ("physician", "Family physician"),
    ("active", "Chart active"),
];

pub(super) fn label_of(field: &str) -> &'static str {
    FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, l)| *l)
        .unwrap_or("This field")
}

/// The values of the form, by field name (a checkbox is `on` or empty).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, Deserialize)]
pub(super) struct Fields(BTreeMap<String, String>);

impl Fields {
    pub(super) fn get(&self, k: &str) -> &str {
        self.0.get(k).map(|s| s.trim()).unwrap_or("")
    }

    pub(super) fn set(&mut self, k: &str, v: impl Into<String>) {
        self.0.insert(k.to_string(), v.into());
    }

    pub(super) fn on(&self, k: &str) -> bool {
        !self.get(k).is_empty()
    }

    /// The form's fields from a posted body, plus its control fields.
    pub(super) fn from_body(body: &[u8]) -> (Fields, BTreeMap<String, String>) {
        let mut fields = Fields::default();
        let mut control = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if FIELDS.iter().any(|(f, _)| *f == k) {
                fields.set(&k, v.into_owned());
            } else if matches!(&*k, "csrf" | "version" | "original" | "confirm_duplicate") {
                control.insert(k.into_owned(), v.into_owned());
            }
        }
        (fields, control)
    }

    /// A hidden field's value: the fields as they were read, to merge with on a stale save.
    pub(super) fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&self.0).expect("a map of strings serialises"))
    }

    pub(super) fn decode(s: &str) -> Option<Fields> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        serde_json::from_slice(&bytes).ok().map(Fields)
    }

    /// The form's view of a record.
    pub(super) fn of(p: &Patient) -> Fields {
        let mut f = Fields::default();
        if let Some(n) = main_name(p) {
            f.set("prefix", n.prefix.join(" "));
            f.set("given", n.given.join(" "));
            f.set("family", n.family.clone().unwrap_or_default());
            f.set("suffix", n.suffix.join(" "));
        }
        if let Some(i) = nickname(p) {
            f.set("preferred", p.name[i].given.join(" "));
        }
        if let Some(i) = former_name(p) {
            f.set(
                "previous_family",
                p.name[i].family.clone().unwrap_or_default(),
            );
        }
        f.set("gender", p.gender.clone().unwrap_or_default());
        f.set("birthDate", p.birth_date.clone().unwrap_or_default());
        let deceased = p.deceased_boolean == Some(true) || p.deceased_date_time.is_some();
        f.set("deceased", if deceased { "on" } else { "" });
        f.set(
            "deceased_date",
            p.deceased_date_time
                .as_deref()
                .map(|d| d.get(..10).unwrap_or(d))
                .unwrap_or(""),
        );
        if let Some(i) = hcn_index(p) {
            let id = &p.identifier[i];
            f.set("hcn", id.value.clone().unwrap_or_default());
            f.set(
                "hcn_version",
                id.extension
                    .iter()
                    .find(|e| e.url == IDENTIFIER_VERSION_EXT)
                    .and_then(|e| e.value_string.clone())
                    .unwrap_or_default(),
            );
        }
        for (field, slot) in PHONE_SLOTS {
            if let Some(i) = slot_index(p, *slot) {
                f.set(field, p.telecom[i].value.clone().unwrap_or_default());
            }
        }
        if let Some(i) = address_index(p) {
            let a = &p.address[i];
            f.set("line1", a.line.first().cloned().unwrap_or_default());
            f.set("line2", a.line.get(1).cloned().unwrap_or_default());
            f.set("city", a.city.clone().unwrap_or_default());
            f.set("province", a.state.clone().unwrap_or_default());
            f.set("postal_code", a.postal_code.clone().unwrap_or_default());
            f.set("country", a.country.clone().unwrap_or_default());
        }
        if let Some(i) = language_index(p) {
            let l = &p.communication[i].language;
            f.set(
                "language",
                l.coding
                    .iter()
                    .find_map(|c| c.code.clone())
                    .or_else(|| l.text.clone())
                    .unwrap_or_default(),
            );
        }
        if let Some(r) = p
            .general_practitioner
            .first()
            .and_then(|g| g.reference.clone())
        {
            f.set("physician", r);
        }
        f.set("active", if p.active == Some(false) { "" } else { "on" });
        f
    }
}

/// Telephone slots of the form: (field, matching contact point).
#[derive(Clone, Copy)]
pub(super) enum Slot {
    Home,
    Mobile,
    Work,
    Email,
}

pub(super) const PHONE_SLOTS: &[(&str, Slot)] = &[
    ("phone_home", Slot::Home),
    ("phone_mobile", Slot::Mobile),
    ("phone_work", Slot::Work),
    ("email", Slot::Email),
];

pub(super) fn slot_matches(t: &ContactPoint, slot: Slot) -> bool {
    let (sys, usage) = (t.system.as_deref(), t.r#use.as_deref());
    match slot {
        Slot::Home => sys == Some("phone") && matches!(usage, None | Some("home")),
        Slot::Mobile => sys == Some("phone") && usage == Some("mobile"),
        Slot::Work => sys == Some("phone") && usage == Some("work"),
        Slot::Email => sys == Some("email"),
    }
}

pub(super) fn slot_index(p: &Patient, slot: Slot) -> Option<usize> {
    p.telecom.iter().position(|t| slot_matches(t, slot))
}

pub(super) fn nickname(p: &Patient) -> Option<usize> {
    p.name
        .iter()
        .position(|n| n.r#use.as_deref() == Some("nickname"))
}

pub(super) fn former_name(p: &Patient) -> Option<usize> {
    p.name
        .iter()
        .position(|n| matches!(n.r#use.as_deref(), Some("old" | "maiden")))
}

pub(super) fn main_name_index(p: &Patient) -> Option<usize> {
    p.name
        .iter()
        .position(|n| !matches!(n.r#use.as_deref(), Some("nickname" | "old" | "maiden")))
}

pub(super) fn hcn_index(p: &Patient) -> Option<usize> {
    p.identifier
        .iter()
        .position(|i| i.system.as_deref() == Some(ON_HCN_SYSTEM))
}

pub(super) fn address_index(p: &Patient) -> Option<usize> {
    p.address
        .iter()
        .position(|a| matches!(a.r#use.as_deref(), None | Some("home")))
        .or_else(|| (!p.address.is_empty()).then_some(0))
}

pub(super) fn language_index(p: &Patient) -> Option<usize> {
    p.communication
        .iter()
        .position(|c| c.preferred == Some(true))
        .or_else(|| (!p.communication.is_empty()).then_some(0))
}

pub(super) fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

pub(super) fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A Canadian postal code written the usual way ("k1p5j9" → "K1P 5J9"); anything else as typed.
pub(super) fn postal(s: &str) -> String {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    let b = compact.as_bytes();
    let canadian = b.len() == 6
        && b.iter().enumerate().all(|(i, c)| {
            if i % 2 == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_digit()
            }
        });
    if canadian {
        format!("{} {}", &compact[..3], &compact[3..])
    } else {
        s.trim().to_string()
    }
}

/// Where a record's parts came from in the form: (JSON path prefix, field).
pub(super) type FieldMap = Vec<(String, &'static str)>;

/// Replace, remove or add element `i` of `v`.
pub(super) fn put<T>(v: &mut Vec<T>, i: Option<usize>, value: Option<T>) {
    match (i, value) {
        (Some(i), Some(x)) => v[i] = x,
        (Some(i), None) => {
            v.remove(i);
        }
        (None, Some(x)) => v.push(x),
        (None, None) => {}
    }
}

/// Write the form's fields into `p` (the parts the form does not show are left alone) and say
/// where each field landed, to name the field of a validation error.
pub(super) fn apply(
    f: &Fields,
    p: &mut Patient,
    editing: bool,
    physicians: &[(String, String)],
) -> FieldMap {
    p.resource_type = "Patient".into();
    // The main name.
    let i = main_name_index(p);
    let mut n = i.map(|i| p.name[i].clone()).unwrap_or_default();
    let parts = (
        words(f.get("prefix")),
        words(f.get("given")),
        opt(f.get("family")),
        words(f.get("suffix")),
    );
    if (
        n.prefix.clone(),
        n.given.clone(),
        n.family.clone(),
        n.suffix.clone(),
    ) != parts
    {
        (n.prefix, n.given, n.family, n.suffix) = parts;
        n.text = None;
    }
    if n.r#use.is_none() && i.is_none() {
        n.r#use = Some("official".into());
    }
    let keep = n.family.is_some() || !n.given.is_empty() || !n.prefix.is_empty();
    put(&mut p.name, i, keep.then_some(n));
    // The preferred name (a nickname) and a former family name.
    let i = nickname(p);
    let nick = opt(f.get("preferred")).map(|g| {
        let mut n = i.map(|i| p.name[i].clone()).unwrap_or_default();
        n.r#use = Some("nickname".into());
        n.given = words(&g);
        n.text = None;
        n
    });
    put(&mut p.name, i, nick);
    let i = former_name(p);
    let former = opt(f.get("previous_family")).map(|fam| {
        let mut n = i.map(|i| p.name[i].clone()).unwrap_or_default();
        if n.r#use.is_none() {
            n.r#use = Some("old".into());
        }
        n.family = Some(fam);
        n.text = None;
        n
    });
    put(&mut p.name, i, former);

    p.gender = opt(f.get("gender"));
    p.birth_date = opt(f.get("birthDate"));
    if editing {
        if f.on("deceased") {
            match opt(f.get("deceased_date")) {
                Some(d) => {
                    p.deceased_date_time = Some(d);
                    p.deceased_boolean = None;
                }
                None => {
                    p.deceased_boolean = Some(true);
                    p.deceased_date_time = None;
                }
            }
        } else {
            p.deceased_boolean = None;
            p.deceased_date_time = None;
        }
        p.active = Some(f.on("active"));
    } else {
        p.active = Some(true);
    }

    // The Ontario health card.
    let i = hcn_index(p);
    let card = opt(&clean_number(f.get("hcn"))).map(|number| {
        let mut id = i.map(|i| p.identifier[i].clone()).unwrap_or(Identifier {
            r#use: Some("official".into()),
            system: Some(ON_HCN_SYSTEM.into()),
            ..Default::default()
        });
        id.value = Some(number);
        id.extension.retain(|e| e.url != IDENTIFIER_VERSION_EXT);
        if let Some(v) = opt(f.get("hcn_version")) {
            id.extension.push(crate::patients::fhir::Extension {
                url: IDENTIFIER_VERSION_EXT.into(),
                value_string: Some(v.to_uppercase()),
            });
        }
        id
    });
    put(&mut p.identifier, i, card);

    // Phones and email.
    for (field, slot) in PHONE_SLOTS {
        let i = slot_index(p, *slot);
        let value = opt(f.get(field)).map(|v| {
            let mut t = i.map(|i| p.telecom[i].clone()).unwrap_or_default();
            let (system, usage) = match slot {
                Slot::Home => ("phone", Some("home")),
                Slot::Mobile => ("phone", Some("mobile")),
                Slot::Work => ("phone", Some("work")),
                Slot::Email => ("email", t.r#use.as_deref().or(Some("home"))),
            };
            t.system = Some(system.into());
            t.r#use = usage.map(str::to_string);
            t.value = Some(v);
            t
        });
        put(&mut p.telecom, i, value);
    }

    // The address.
    let i = address_index(p);
    let typed = [
        "line1",
        "line2",
        "city",
        "province",
        "postal_code",
        "country",
    ]
    .iter()
    .any(|k| !f.get(k).is_empty());
    let address = typed.then(|| {
        let mut a: Address = i.map(|i| p.address[i].clone()).unwrap_or(Address {
            r#use: Some("home".into()),
            ..Default::default()
        });
        let extra: Vec<String> = a.line.iter().skip(2).cloned().collect();
        a.line = [f.get("line1"), f.get("line2")]
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| l.to_string())
            .chain(extra)
            .collect();
        a.city = opt(f.get("city"));
        a.state = opt(f.get("province"));
        a.postal_code = opt(&postal(f.get("postal_code")));
        a.country = opt(f.get("country"));
        a.text = None;
        a
    });
    put(&mut p.address, i, address);

    // The preferred language.
    let i = language_index(p);
    let language = opt(f.get("language")).map(|code| {
        let display = LANGUAGES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, l)| l.to_string());
        let mut c = i.map(|i| p.communication[i].clone()).unwrap_or_default();
        let same = c
            .language
            .coding
            .iter()
            .any(|x| x.code.as_deref() == Some(&code));
        if !same {
            c.language = CodeableConcept {
                coding: vec![Coding {
                    system: Some("urn:ietf:bcp:47".into()),
                    code: Some(code.clone()),
                    display: display.clone(),
                }],
                text: display,
            };
        }
        c.preferred = Some(true);
        c
    });
    put(&mut p.communication, i, language);
    // Only one language may be preferred: the form's.
    let preferred = language_index(p);
    for (j, c) in p.communication.iter_mut().enumerate() {
        if Some(j) != preferred && c.preferred == Some(true) {
            c.preferred = None;
        }
    }

    // The family physician.
    let gp = opt(f.get("physician")).map(|r| {
        let current = p.general_practitioner.first().cloned().unwrap_or_default();
        if current.reference.as_deref() == Some(&r) {
            current
        } else {
            Reference {
                display: physicians
                    .iter()
                    .find(|(reference, _)| *reference == r)
                    .map(|(_, name)| name.clone()),
                reference: Some(r),
            }
        }
    });
    let i = (!p.general_practitioner.is_empty()).then_some(0);
    put(&mut p.general_practitioner, i, gp);

    // Where each field landed, for errors.
    let mut map: FieldMap = vec![
        ("name".into(), "family"),
        ("gender".into(), "gender"),
        ("birthDate".into(), "birthDate"),
        ("deceasedDateTime".into(), "deceased_date"),
        ("deceasedBoolean".into(), "deceased"),
        ("communication".into(), "language"),
    ];
    if let Some(i) = main_name_index(p) {
        map.push((format!("name[{i}]"), "family"));
    }
    if let Some(i) = nickname(p) {
        map.push((format!("name[{i}]"), "preferred"));
    }
    if let Some(i) = former_name(p) {
        map.push((format!("name[{i}]"), "previous_family"));
    }
    if let Some(i) = hcn_index(p) {
        map.push((format!("identifier[{i}]"), "hcn"));
        map.push((format!("identifier[{i}].extension"), "hcn_version"));
    }
    for (field, slot) in PHONE_SLOTS {
        if let Some(i) = slot_index(p, *slot) {
            map.push((format!("telecom[{i}]"), field));
        }
    }
    if let Some(i) = address_index(p) {
        map.push((format!("address[{i}]"), "line1"));
    }
    if let Some(i) = language_index(p) {
        map.push((format!("communication[{i}]"), "language"));
    }
    if !p.general_practitioner.is_empty() {
        map.push(("generalPractitioner[0]".into(), "physician"));
    }
    map
}

/// The form field a validation error's JSON path belongs to (the longest matching prefix).
pub(super) fn field_of(map: &FieldMap, path: &str) -> Option<&'static str> {
    map.iter()
        .filter(|(prefix, _)| {
            path == prefix
                || path
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, f)| *f)
}

/// Preferred languages offered in the form: BCP 47 code and name. Canada's official languages
/// first, then the languages most spoken at home in Canada.
pub(super) const LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("fr", "French"),
    ("ar", "Arabic"),
    ("bn", "Bengali"),
    ("yue", "Cantonese"),
    ("zh", "Chinese"),
    ("fa", "Persian (Farsi)"),
    ("de", "German"),
    ("el", "Greek"),
    ("gu", "Gujarati"),
    ("hi", "Hindi"),
    ("it", "Italian"),
    ("ko", "Korean"),
    ("cmn", "Mandarin"),
    ("pl", "Polish"),
    ("pt", "Portuguese"),
    ("pa", "Punjabi"),
    ("ru", "Russian"),
    ("so", "Somali"),
    ("es", "Spanish"),
    ("tl", "Tagalog (Filipino)"),
    ("ta", "Tamil"),
    ("uk", "Ukrainian"),
    ("ur", "Urdu"),
    ("vi", "Vietnamese"),
    ("ase", "American Sign Language"),
    ("fcs", "Quebec Sign Language (LSQ)"),
    ("oj", "Ojibwe"),
    ("cr", "Cree"),
    ("iu", "Inuktitut"),
];

pub(super) const PROVINCES: &[(&str, &str)] = &[
    ("AB", "Alberta"),
    ("BC", "British Columbia"),
    ("MB", "Manitoba"),
    ("NB", "New Brunswick"),
    ("NL", "Newfoundland and Labrador"),
    ("NS", "Nova Scotia"),
    ("NT", "Northwest Territories"),
    ("NU", "Nunavut"),
    ("ON", "Ontario"),
    ("PE", "Prince Edward Island"),
    ("QC", "Quebec"),
    ("SK", "Saskatchewan"),
    ("YT", "Yukon"),
];

/// The clinic's physicians, as family-physician references: (`Practitioner/<user>`, name).
pub(super) fn physicians(app: &App) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = app
        .accounts
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter(|u| u.roles.contains(&Role::Physician) && !u.disabled)
        // A reference id is letters, digits, '-' and '.'.
        .filter(|u| {
            u.username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .map(|u| {
            let name = u.display_name.clone().unwrap_or_else(|| u.username.clone());
            (format!("Practitioner/{}", u.username), name)
        })
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// Errors by field, and the ones that belong to no field.
#[derive(Default)]
pub(super) struct Problems {
    pub(super) by_field: BTreeMap<&'static str, Vec<String>>,
    pub(super) general: Vec<String>,
}

impl Problems {
    pub(super) fn from_fields(errors: &[FieldError], map: &FieldMap) -> Problems {
        let mut p = Problems::default();
        for e in errors {
            match field_of(map, &e.field) {
                Some(f) => p.by_field.entry(f).or_default().push(e.message.clone()),
                None => p.general.push(format!("{}: {}", e.field, e.message)),
            }
        }
        p
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_field.is_empty() && self.general.is_empty()
    }

    pub(super) fn summary(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut items: String = self
            .by_field
            .iter()
            .flat_map(|(f, ms)| {
                ms.iter().map(move |m| {
                    format!(
                        "<li><a href=\"#{f}\">{}</a>: {}</li>",
                        esc(label_of(f)),
                        esc(m)
                    )
                })
            })
            .collect();
        for g in &self.general {
            items.push_str(&format!("<li>{}</li>", esc(g)));
        }
        format!(
            "<div class=\"error\" role=\"alert\"><p><strong>Nothing was saved.</strong> Please \
             correct:</p><ul>{items}</ul></div>"
        )
    }
}

/// What the form shows besides the values.
#[derive(Default)]
pub(super) struct FormView<'a> {
    /// The patient's id, when editing.
    pub(super) id: Option<&'a str>,
    pub(super) version: Option<u64>,
    /// The fields as read (editing), for a merge if the record changes meanwhile.
    pub(super) original: Option<&'a Fields>,
    pub(super) problems: Problems,
    /// Messages above the form (HTML).
    pub(super) notes: Vec<String>,
    /// For fields the record on file has differently: the value on file.
    pub(super) on_file: BTreeMap<&'static str, String>,
    /// The "register anyway" button, after a possible duplicate.
    pub(super) confirm_duplicate: bool,
}

pub(super) fn input(
    f: &Fields,
    v: &FormView,
    name: &'static str,
    attrs: &str,
    wide: bool,
) -> String {
    let errors = v.by_field(name);
    let described = {
        let mut ids = Vec::new();
        if !errors.is_empty() {
            ids.push(format!("{name}-error"));
        }
        if name == "hcn" {
            ids.push("hcn-hint".into());
        }
        if ids.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"{}\"", ids.join(" "))
        }
    };
    format!(
        "<div class=\"field{}{}\"><label for=\"{name}\">{}</label>\
         <input id=\"{name}\" name=\"{name}\" value=\"{}\"{attrs}{described}{}>{}{}</div>",
        if wide { " wide" } else { "" },
        if errors.is_empty() { "" } else { " has-error" },
        esc(label_of(name)),
        esc(f.get(name)),
        if errors.is_empty() {
            ""
        } else {
            " aria-invalid=\"true\""
        },
        v.after(name, &errors),
        if name == "hcn" {
            "<p id=\"hcn-hint\" class=\"hint\" aria-live=\"polite\"></p>"
        } else {
            ""
        }
    )
}

pub(super) fn select(
    f: &Fields,
    v: &FormView,
    name: &'static str,
    options: &[(String, String)],
    empty: &str,
) -> String {
    let current = f.get(name);
    let mut opts = format!("<option value=\"\">{}</option>", esc(empty));
    let mut found = current.is_empty();
    for (value, label) in options {
        let sel = value == current;
        found |= sel;
        opts.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>",
            esc(value),
            if sel { " selected" } else { "" },
            esc(label)
        ));
    }
    if !found {
        // A value the list does not have (set through the API): keep it selectable.
        opts.push_str(&format!(
            "<option value=\"{0}\" selected>{0}</option>",
            esc(current)
        ));
    }
    let errors = v.by_field(name);
    format!(
        "<div class=\"field{}\"><label for=\"{name}\">{}</label>\
         <select id=\"{name}\" name=\"{name}\"{}>{opts}</select>{}</div>",
        if errors.is_empty() { "" } else { " has-error" },
        esc(label_of(name)),
        if errors.is_empty() {
            String::new()
        } else {
            format!(" aria-invalid=\"true\" aria-describedby=\"{name}-error\"")
        },
        v.after(name, &errors)
    )
}

pub(super) fn checkbox(f: &Fields, v: &FormView, name: &'static str) -> String {
    let errors = v.by_field(name);
    format!(
        "<div class=\"field\"><label><input type=\"checkbox\" id=\"{name}\" name=\"{name}\"{}> {}</label>{}</div>",
        if f.on(name) { " checked" } else { "" },
        esc(label_of(name)),
        v.after(name, &errors)
    )
}

impl FormView<'_> {
    pub(super) fn by_field(&self, name: &str) -> Vec<String> {
        self.problems
            .by_field
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Under a field: its errors, and the value on file when it differs.
    pub(super) fn after(&self, name: &str, errors: &[String]) -> String {
        let mut out = String::new();
        if !errors.is_empty() {
            out.push_str(&format!(
                "<p class=\"field-error\" id=\"{name}-error\">{}</p>",
                esc(&errors.join("; "))
            ));
        }
        if let Some(v) = self.on_file.get(name) {
            out.push_str(&format!(
                "<p class=\"diff\">On file now: <strong>{}</strong></p>",
                if v.is_empty() {
                    "(empty)".to_string()
                } else {
                    esc(v)
                }
            ));
        }
        out
    }
}

pub(super) fn patient_form(page: &Page, f: &Fields, v: &FormView) -> String {
    let action = match v.id {
        Some(id) => format!("/patients/{}/edit", esc(id)),
        None => "/patients/new".into(),
    };
    let physicians = physicians(&page.app);
    let genders: Vec<(String, String)> = ["female", "male", "other", "unknown"]
        .iter()
        .map(|g| (g.to_string(), sex_label(g).to_string()))
        .collect();
    let provinces: Vec<(String, String)> = PROVINCES
        .iter()
        .map(|(c, n)| (c.to_string(), n.to_string()))
        .collect();
    let languages: Vec<(String, String)> = LANGUAGES
        .iter()
        .map(|(c, n)| (c.to_string(), n.to_string()))
        .collect();
    let mut hidden = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        page.csrf()
    );
    if let Some(version) = v.version {
        hidden.push_str(&format!(
            "<input type=\"hidden\" name=\"version\" value=\"{version}\">"
        ));
    }
    if let Some(o) = v.original {
        hidden.push_str(&format!(
            "<input type=\"hidden\" name=\"original\" value=\"{}\">",
            esc(&o.encode())
        ));
    }
    let status = if v.id.is_some() {
        format!(
            "<fieldset><legend>Status</legend><div class=\"grid\">{}{}{}</div></fieldset>",
            checkbox(f, v, "active"),
            checkbox(f, v, "deceased"),
            input(f, v, "deceased_date", " type=\"date\"", false)
        )
    } else {
        String::new()
    };
    let buttons = if v.confirm_duplicate {
        "<button type=\"submit\" name=\"confirm_duplicate\" value=\"1\">Register anyway</button>\
         <a class=\"button secondary\" href=\"/patients\">Cancel</a>"
            .to_string()
    } else if let Some(id) = v.id {
        format!(
            "<button type=\"submit\">Save changes</button>\
             <a class=\"button secondary\" href=\"/patients/{}\">Cancel</a>",
            esc(id)
        )
    } else {
        "<button type=\"submit\">Register patient</button>\
         <a class=\"button secondary\" href=\"/patients\">Cancel</a>"
            .to_string()
    };
    format!(
        "{notes}{summary}<form method=\"post\" action=\"{action}\" data-patient-form{self_id}>{hidden}\
         <fieldset><legend>Name</legend><div class=\"grid\">{prefix}{given}{family}{suffix}{preferred}{previous}</div></fieldset>\
         <fieldset><legend>Birth, sex and health card</legend><div class=\"grid\">{born}{sex}{hcn}{version}</div>\
         <div id=\"dup-card\" class=\"warning\" role=\"status\" hidden></div>\
         <div id=\"dup-name\" class=\"warning\" role=\"status\" hidden></div></fieldset>\
         <fieldset><legend>Contact</legend><div class=\"grid\">{home}{mobile}{work}{email}</div></fieldset>\
         <fieldset><legend>Address</legend><div class=\"grid\">{line1}{line2}{city}{province}{postal}{country}</div></fieldset>\
         <fieldset><legend>Care</legend><div class=\"grid two\">{language}{physician}</div></fieldset>\
         {status}<div>{buttons}</div></form>",
        // A note (a refusal with its reason) says it already; the fields are still marked.
        summary = if v.notes.is_empty() {
            v.problems.summary()
        } else {
            String::new()
        },
        notes = v.notes.concat(),
        self_id =
            v.id.map(|id| format!(" data-patient-id=\"{}\"", esc(id)))
                .unwrap_or_default(),
        prefix = input(f, v, "prefix", " autocomplete=\"honorific-prefix\"", false),
        given = input(f, v, "given", " autocomplete=\"off\"", false),
        family = input(f, v, "family", " autocomplete=\"off\"", false),
        suffix = input(f, v, "suffix", " autocomplete=\"off\"", false),
        preferred = input(f, v, "preferred", " autocomplete=\"off\"", false),
        previous = input(f, v, "previous_family", " autocomplete=\"off\"", false),
        born = input(f, v, "birthDate", " type=\"date\"", false),
        sex = select(f, v, "gender", &genders, "—"),
        hcn = input(
            f,
            v,
            "hcn",
            " inputmode=\"numeric\" autocomplete=\"off\" maxlength=\"14\" placeholder=\"10 digits\"",
            false
        ),
        version = input(
            f,
            v,
            "hcn_version",
            " autocomplete=\"off\" maxlength=\"2\" pattern=\"[A-Za-z]{0,2}\" placeholder=\"e.g. AB\"",
            false
        ),
        home = input(
            f,
            v,
            "phone_home",
            " type=\"tel\" autocomplete=\"off\"",
            false
        ),
        mobile = input(
            f,
            v,
            "phone_mobile",
            " type=\"tel\" autocomplete=\"off\"",
            false
        ),
        work = input(
            f,
            v,
            "phone_work",
            " type=\"tel\" autocomplete=\"off\"",
            false
        ),
        email = input(f, v, "email", " type=\"email\" autocomplete=\"off\"", false),
        line1 = input(f, v, "line1", " autocomplete=\"off\"", true),
        line2 = input(f, v, "line2", " autocomplete=\"off\"", true),
        city = input(f, v, "city", " autocomplete=\"off\"", false),
        province = select(f, v, "province", &provinces, "—"),
        postal = input(
            f,
            v,
            "postal_code",
            " autocomplete=\"off\" maxlength=\"10\"",
            false
        ),
        country = input(f, v, "country", " autocomplete=\"off\"", false),
        language = select(f, v, "language", &languages, "—"),
        physician = select(f, v, "physician", &physicians, "None at this clinic"),
    )
}

/// Three-way merge of a stale save: `mine` (what was posted) onto `theirs` (on file now),
/// from `base` (what the form was read at). A field only one side changed takes that side's
/// value; a field both changed differently keeps `mine` and is reported with `theirs`.
pub(super) fn merge(
    base: &Fields,
    mine: &Fields,
    theirs: &Fields,
) -> (Fields, BTreeMap<&'static str, String>) {
    let mut out = Fields::default();
    let mut conflicts = BTreeMap::new();
    for (k, _) in FIELDS {
        let (b, m, t) = (base.get(k), mine.get(k), theirs.get(k));
        let v = if m == b {
            t
        } else {
            if t != b && t != m {
                conflicts.insert(*k, t.to_string());
            }
            m
        };
        out.set(k, v);
    }
    (out, conflicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patients::validate::validate;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        let mut f = Fields::default();
        for (k, v) in pairs {
            f.set(k, *v);
        }
        f
    }

    fn today() -> time::Date {
        time::macros::date!(2026 - 11 - 29)
    }

    #[test]
    fn a_full_form_makes_a_valid_record_and_reads_back_the_same() {
        let f = fields(&[
            ("prefix", "Mme"),
            ("given", "Hélène Marie"),
            ("family", "Lévesque"),
            ("preferred", "Lena"),
            ("previous_family", "Côté"),
            ("gender", "female"),
            ("birthDate", "1961-03-14"),
            ("hcn", "9287 170 261"),
            ("hcn_version", "ab"),
            ("phone_home", "416-555-0100"),
            ("phone_mobile", "416-555-0199"),
            ("email", "helene@example.org"),
            ("line1", "12 Rue Principale"),
            ("line2", "App. 3"),
            ("city", "Ottawa"),
            ("province", "ON"),
            ("postal_code", "k1p5j9"),
            ("country", "CA"),
            ("language", "fr"),
            ("physician", "Practitioner/drlee"),
            ("active", "on"),
        ]);
        let mut p = Patient::default();
        apply(
            &f,
            &mut p,
            false,
            &[("Practitioner/drlee".into(), "Dr. Amelia Lee".into())],
        );
        assert!(
            validate(&p, today()).is_empty(),
            "{:?}",
            validate(&p, today())
        );
        assert_eq!(p.ontario_hcn(), Some(("9287170261", Some("AB"))));
        assert_eq!(p.address[0].postal_code.as_deref(), Some("K1P 5J9"));
        assert_eq!(
            p.general_practitioner[0].display.as_deref(),
            Some("Dr. Amelia Lee")
        );
        let back = Fields::of(&p);
        for (k, _) in FIELDS {
            let want = match *k {
                "hcn" => "9287170261",
                "hcn_version" => "AB",
                "postal_code" => "K1P 5J9",
                k => f.get(k),
            };
            assert_eq!(back.get(k), want, "{k}");
        }
    }

    #[test]
    fn editing_keeps_what_the_form_does_not_show() {
        let mut p: Patient = serde_json::from_value(serde_json::json!({
            "resourceType": "Patient",
            "identifier": [
                {"system": "urn:oid:2.16.840.1.113883.4.1", "value": "X-1"},
                {"system": ON_HCN_SYSTEM, "value": "9287170261"}
            ],
            "name": [{"use": "official", "family": "Lee", "given": ["Min"]}],
            "telecom": [{"system": "fax", "value": "416-555-0000"},
                        {"system": "phone", "value": "416-555-0101"}],
            "address": [{"use": "work", "city": "Toronto"}],
        }))
        .unwrap();
        let mut f = Fields::of(&p);
        assert_eq!(f.get("phone_home"), "416-555-0101");
        f.set("hcn", "");
        f.set("phone_mobile", "416-555-0199");
        f.set("family", "Li");
        let map = apply(&f, &mut p, true, &[]);
        assert_eq!(p.identifier.len(), 1, "the card is removed, the other kept");
        assert_eq!(p.identifier[0].value.as_deref(), Some("X-1"));
        assert!(p.telecom.iter().any(|t| t.system.as_deref() == Some("fax")));
        assert_eq!(p.name[0].family.as_deref(), Some("Li"));
        assert_eq!(p.address[0].r#use.as_deref(), Some("work"));
        assert_eq!(field_of(&map, "telecom[2].value"), Some("phone_mobile"));
        assert_eq!(field_of(&map, "name"), Some("family"));
        assert_eq!(field_of(&map, "name[0]"), Some("family"));
        assert_eq!(field_of(&map, "identifier[0].value"), None);
    }

    #[test]
    fn errors_land_on_their_fields() {
        let f = fields(&[
            ("family", "Lee"),
            ("hcn", "1286844022"),
            ("hcn_version", "A1"),
            ("birthDate", "2999-01-01"),
        ]);
        let mut p = Patient::default();
        let map = apply(&f, &mut p, false, &[]);
        let problems = Problems::from_fields(&validate(&p, today()), &map);
        assert!(
            problems.by_field.contains_key("hcn"),
            "{:?}",
            problems.by_field
        );
        assert!(problems.by_field.contains_key("hcn_version"));
        assert!(problems.by_field.contains_key("birthDate"));
        assert!(problems.general.is_empty(), "{:?}", problems.general);
        let mut p = Patient::default();
        let map = apply(&Fields::default(), &mut p, false, &[]);
        let problems = Problems::from_fields(&validate(&p, today()), &map);
        assert!(problems.by_field.contains_key("family"));
    }

    #[test]
    fn a_stale_save_merges_three_ways() {
        let base = fields(&[("family", "Lee"), ("city", "Ottawa"), ("email", "a@x")]);
        let mine = fields(&[("family", "Li"), ("city", "Ottawa"), ("email", "b@x")]);
        let theirs = fields(&[("family", "Lee"), ("city", "Toronto"), ("email", "c@x")]);
        let (merged, conflicts) = merge(&base, &mine, &theirs);
        assert_eq!(merged.get("family"), "Li", "only mine changed");
        assert_eq!(merged.get("city"), "Toronto", "only theirs changed");
        assert_eq!(merged.get("email"), "b@x", "both changed: mine is kept");
        assert_eq!(conflicts.get("email").map(String::as_str), Some("c@x"));
        assert_eq!(conflicts.len(), 1);
    }

    #[test]
    fn postal_codes_are_written_the_canadian_way() {
        assert_eq!(postal("k1p5j9"), "K1P 5J9");
        assert_eq!(postal("K1P 5J9"), "K1P 5J9");
        assert_eq!(postal("90210"), "90210");
    }
}
