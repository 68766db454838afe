//! The HTML of the patient's pages and share sections, from plain data: no host calls here, so
//! it is tested natively.

use osler_sdk::html::escape as e;
use serde_json::Value;

/// What a section shows when its provider is not there (disabled, not bound, failed).
pub fn unavailable(what: &str) -> String {
    format!(
        "<p class=\"muted unavailable\" role=\"status\">{} unavailable right now.</p>",
        e(what)
    )
}

/// A patient's name as the record has it: the official name's given and family names.
pub fn name(p: &Value) -> String {
    let names = p["name"].as_array().cloned().unwrap_or_default();
    let n = names
        .iter()
        .find(|n| n["use"].as_str() == Some("official"))
        .or_else(|| names.first());
    let Some(n) = n else {
        return String::new();
    };
    if let Some(t) = n["text"].as_str() {
        return t.to_string();
    }
    let mut parts: Vec<&str> = n["given"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(f) = n["family"].as_str() {
        parts.push(f);
    }
    parts.join(" ")
}

fn sex(p: &Value) -> &'static str {
    match p["gender"].as_str() {
        Some("female") => "Female",
        Some("male") => "Male",
        Some("other") => "Other",
        Some("unknown") => "Unknown",
        _ => "",
    }
}

fn telecom(p: &Value) -> Vec<(String, String)> {
    p["telecom"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| {
                    let v = t["value"].as_str()?;
                    let label = match (t["system"].as_str(), t["use"].as_str()) {
                        (Some("phone"), Some("mobile")) => "Mobile phone",
                        (Some("phone"), Some("work")) => "Work phone",
                        (Some("phone"), _) => "Phone",
                        (Some("email"), _) => "Email",
                        _ => "Contact",
                    };
                    Some((label.to_string(), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn address(p: &Value) -> Option<String> {
    let a = p["address"].as_array()?.first()?;
    if let Some(t) = a["text"].as_str() {
        return Some(t.to_string());
    }
    let mut parts: Vec<String> = a["line"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let place: Vec<&str> = ["city", "state", "postalCode"]
        .iter()
        .filter_map(|k| a[*k].as_str())
        .collect();
    if !place.is_empty() {
        parts.push(place.join(" "));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn health_card(p: &Value) -> Option<String> {
    p["identifier"].as_array()?.iter().find_map(|i| {
        (i["system"].as_str()
            == Some("https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn"))
        .then(|| i["value"].as_str().map(String::from))
        .flatten()
    })
}

fn fact(label: &str, value: &str) -> String {
    format!(
        "<dt>{}</dt><dd>{}</dd>",
        e(label),
        if value.is_empty() {
            "<span class=\"muted\">—</span>".to_string()
        } else {
            e(value)
        }
    )
}

/// The patient's demographics: name, birth date, sex, health card, phones, email, address.
pub fn demographics(p: &Value) -> String {
    let mut out = String::from("<dl class=\"facts\" id=\"demographics\">");
    out += &fact("Name", &name(p));
    out += &fact("Birth date", p["birthDate"].as_str().unwrap_or(""));
    out += &fact("Sex", sex(p));
    if let Some(card) = health_card(p) {
        out += &fact("Health card", &card);
    }
    for (label, v) in telecom(p) {
        out += &fact(&label, &v);
    }
    out += &fact("Address", &address(p).unwrap_or_default());
    out += "</dl>";
    out
}

/// One upcoming appointment, as the scheduling interface gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visit {
    pub date: String,
    pub start: String,
    pub provider_name: String,
    pub status: String,
}

pub fn appointments(visits: &[Visit]) -> String {
    if visits.is_empty() {
        return "<p class=\"muted\">No upcoming appointments.</p>".into();
    }
    let rows: String = visits
        .iter()
        .map(|v| {
            format!(
                "<li class=\"appointment\">{} at {} with {}{}</li>",
                e(&v.date),
                e(&v.start),
                e(&v.provider_name),
                if v.status == "arrived" {
                    " <span class=\"badge\">checked in</span>"
                } else {
                    ""
                }
            )
        })
        .collect();
    format!("<ul id=\"appointments\">{rows}</ul>")
}

/// One medication on the active list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Med {
    pub drug: String,
    pub strength: String,
    pub sig: String,
    pub start: String,
    pub prescriber: String,
    pub on_hold: bool,
}

/// One active allergy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allergy {
    pub substance: String,
    pub reaction: Option<String>,
    pub severity: Option<String>,
}

pub fn medications(meds: &[Med]) -> String {
    if meds.is_empty() {
        return "<p class=\"muted\">No active medications recorded.</p>".into();
    }
    let rows: String = meds
        .iter()
        .map(|m| {
            let mut what = m.drug.clone();
            if !m.strength.is_empty() {
                what = format!("{what} {}", m.strength);
            }
            let by = if m.prescriber.is_empty() {
                String::new()
            } else {
                format!(", {}", m.prescriber)
            };
            format!(
                "<li class=\"medication\"><strong>{}</strong>{} — {} <span class=\"muted\">(since {}{})</span></li>",
                e(&what),
                if m.on_hold { " <span class=\"badge\">on hold</span>" } else { "" },
                e(&m.sig),
                e(&m.start),
                e(&by)
            )
        })
        .collect();
    format!("<ul id=\"medications\">{rows}</ul>")
}

/// The allergy list; an empty one reads "none recorded", never "no known allergies".
pub fn allergies(list: &[Allergy]) -> String {
    if list.is_empty() {
        return "<p class=\"muted\" id=\"allergies\">No allergies recorded.</p>".into();
    }
    let rows: String = list
        .iter()
        .map(|a| {
            let more: Vec<String> = [a.reaction.clone(), a.severity.clone()]
                .into_iter()
                .flatten()
                .collect();
            format!(
                "<li class=\"allergy\"><strong>{}</strong>{}</li>",
                e(&a.substance),
                if more.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", e(&more.join(", ")))
                }
            )
        })
        .collect();
    format!("<ul id=\"allergies\">{rows}</ul>")
}

/// One resource, as the resources interface gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub title: String,
    pub url: String,
    pub summary: String,
}

/// The clinic's patient-audience resources: plain links, opened without a referrer.
pub fn resources(links: &[Link]) -> String {
    if links.is_empty() {
        return "<p class=\"muted\">The clinic has no reading suggested for your medications.</p>"
            .into();
    }
    let rows: String = links
        .iter()
        .filter(|l| l.url.starts_with("https://") || l.url.starts_with("http://"))
        .map(|l| {
            format!(
                "<li class=\"resource\"><a href=\"{}\" rel=\"noopener noreferrer\">{}</a> \
                 <span class=\"muted\">{}</span></li>",
                e(&l.url),
                e(&l.title),
                e(&l.summary)
            )
        })
        .collect();
    format!("<ul id=\"resources\">{rows}</ul>")
}

/// A request to the clinic, as the patient wrote it.
pub fn requests(list: &[(String, String)]) -> String {
    if list.is_empty() {
        return String::new();
    }
    let rows: String = list
        .iter()
        .map(|(added, note)| {
            format!(
                "<li class=\"request\">{} <span class=\"muted\">(asked {})</span></li>",
                e(note),
                e(added)
            )
        })
        .collect();
    format!("<p>Waiting for the clinic to book:</p><ul id=\"requests\">{rows}</ul>")
}

/// The note a request carries to the waiting list.
pub fn request_note(dates: &str, times: &str, reason: &str) -> Result<String, String> {
    let (dates, times, reason) = (dates.trim(), times.trim(), reason.trim());
    if reason.is_empty() {
        return Err("Please say what the appointment is for.".into());
    }
    let times = match times {
        "" | "any" => "any time",
        "morning" => "mornings",
        "afternoon" => "afternoons",
        "evening" => "evenings",
        _ => return Err("Choose a time of day from the list.".into()),
    };
    let when = if dates.is_empty() {
        format!("Preferred: {times}.")
    } else {
        format!("Preferred: {dates}, {times}.")
    };
    let note = format!("{when} Reason: {reason}");
    if note.chars().count() > 500 {
        return Err("Please keep the dates and reason shorter (500 characters in all).".into());
    }
    Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demographics_show_the_record_escaped() {
        let p = serde_json::json!({
            "name": [{"use": "official", "family": "O'Neil", "given": ["Sam"]}],
            "birthDate": "1980-02-03", "gender": "female",
            "telecom": [{"system": "phone", "value": "613-555-0100", "use": "mobile"}],
            "address": [{"line": ["1 Main St"], "city": "Ottawa", "state": "ON", "postalCode": "K1A 0A1"}]
        });
        let h = demographics(&p);
        assert!(h.contains("Sam O&#39;Neil"), "{h}");
        assert!(h.contains("1980-02-03"));
        assert!(h.contains("Mobile phone"));
        assert!(h.contains("1 Main St, Ottawa ON K1A 0A1"));
    }

    #[test]
    fn an_empty_allergy_list_is_not_no_known_allergies() {
        assert!(allergies(&[]).contains("No allergies recorded"));
        let a = allergies(&[Allergy {
            substance: "Penicillin".into(),
            reaction: Some("hives".into()),
            severity: None,
        }]);
        assert!(a.contains("Penicillin") && a.contains("hives"));
    }

    #[test]
    fn a_request_needs_a_reason_and_a_known_time_of_day() {
        assert!(request_note("", "any", " ").is_err());
        assert!(request_note("", "midnight", "cough").is_err());
        assert_eq!(
            request_note("next week", "morning", "cough").unwrap(),
            "Preferred: next week, mornings. Reason: cough"
        );
        assert!(request_note(&"x".repeat(600), "any", "cough").is_err());
    }
}
