//! The patient banner — name, sex, age and birth date, health card, chart number, inactive or
//! deceased, and the flags contributed for the patient — and how a patient is written in the
//! host's pages ("LAST, First", "64 y", "1234 567 890 AB").

use super::caller::Caller;
use super::pages::esc;
use super::shell::clinic_today;
use crate::app::App;
use crate::patients::Patient;

/// How loud a banner flag is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FlagLevel {
    Info,
    Warning,
    Alert,
}

/// A flag on the patient banner, e.g. "Allergies: penicillin (severe)".
#[derive(Clone, Debug)]
pub struct Flag {
    pub label: String,
    pub level: FlagLevel,
    /// Where the flag's details are.
    pub href: Option<String>,
}

/// The flags contributed for a patient's banner, read for `caller` at their site.
///
/// A plugin contributes one by declaring a panel in the `banner` slot (`[[panels]]` with
/// `slot = "banner"`; see `plugins::manifest::Slot`): the host renders it like a chart panel
/// — in its own sandbox, checked against the caller's right to the chart and audited, within
/// the panel deadline, all flags at once — and shows its one line of text after the panel's
/// title ("Allergies: penicillin (severe)"), red for `alert:`, amber for `warning:`. Prescribing
/// contributes the allergies flag this way. A flag whose plugin fails or is late says
/// "<title>: unavailable" rather than nothing: a missing allergies flag must never read as
/// "no known allergies".
pub async fn banner_flags(app: &App, caller: &Caller, patient: &Patient) -> Vec<Flag> {
    let (Some(site), Some(id)) = (caller.site.clone(), patient.id.clone()) else {
        return Vec::new();
    };
    let refs = app.plugins.banner_flags(&site, &caller.user.roles);
    if refs.is_empty() {
        return Vec::new();
    }
    let person = super::plugins::person(app, caller, &site);
    app.plugins
        .render_panels(refs, &id, &site, &caller.ctx(), &person)
        .await
        .into_iter()
        .filter_map(|r| {
            // The chart, where the plugin's panels are (a banner panel has no place of its own).
            let href = Some(format!("/patients/{id}"));
            match r.html {
                Ok(text) => parse_flag(&r.panel.title, &text).map(|(label, level)| Flag {
                    label,
                    level,
                    href,
                }),
                Err(_) => Some(Flag {
                    label: format!("{}: unavailable", r.panel.title),
                    level: FlagLevel::Warning,
                    href,
                }),
            }
        })
        .collect()
}

/// A banner panel's answer: `alert: …`, `warning: …`, `info: …` (or bare text, `info`), one
/// line, at most 200 characters shown; empty means no flag.
fn parse_flag(title: &str, text: &str) -> Option<(String, FlagLevel)> {
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return None;
    }
    let (level, rest) = match line.split_once(':') {
        Some((l, rest)) if l.trim().eq_ignore_ascii_case("alert") => (FlagLevel::Alert, rest),
        Some((l, rest)) if l.trim().eq_ignore_ascii_case("warning") => (FlagLevel::Warning, rest),
        Some((l, rest)) if l.trim().eq_ignore_ascii_case("info") => (FlagLevel::Info, rest),
        _ => (FlagLevel::Info, line),
    };
    let rest: String = rest.trim().chars().take(200).collect();
    if rest.is_empty() {
        return None;
    }
    Some((format!("{title}: {rest}"), level))
}

/// The patient banner.
pub struct Banner {
    pub id: String,
    /// "FAMILY, Given Middle".
    pub name: String,
    pub preferred: Option<String>,
    pub sex: Option<String>,
    /// e.g. "64 y", "18 mo", "12 d".
    pub age: Option<String>,
    pub birth_date: Option<String>,
    /// "1234 567 890 AB".
    pub health_card: Option<String>,
    pub chart: Option<String>,
    pub inactive: bool,
    pub deceased: bool,
    pub flags: Vec<Flag>,
    /// Shown instead of the patient, when the page's patient cannot be shown.
    pub unavailable: Option<String>,
}

/// A person's age on `today`, as a clinician writes it.
pub fn age(birth: &str, today: jiff::civil::Date) -> Option<String> {
    let b: jiff::civil::Date = birth.parse().ok()?;
    if b > today {
        return None;
    }
    let before_birthday = (today.month(), today.day()) < (b.month(), b.day());
    let years = i32::from(today.year() - b.year()) - i32::from(before_birthday);
    if years >= 2 {
        return Some(format!("{years} y"));
    }
    let months = (i32::from(today.year()) - i32::from(b.year())) * 12 + i32::from(today.month())
        - i32::from(b.month())
        - i32::from(today.day() < b.day());
    if months >= 1 {
        return Some(format!("{months} mo"));
    }
    let days = b.until(today).ok()?.get_days();
    Some(format!("{days} d"))
}

/// "LAST, First Middle" of the patient's main name.
pub fn display_name(p: &Patient) -> String {
    let n = main_name(p);
    let family = n.and_then(|n| n.family.clone()).unwrap_or_default();
    let given = n.map(|n| n.given.join(" ")).unwrap_or_default();
    match (family.trim(), given.trim()) {
        ("", "") => "(no name)".into(),
        (f, "") => f.to_uppercase(),
        ("", g) => g.to_string(),
        (f, g) => format!("{}, {g}", f.to_uppercase()),
    }
}

/// The patient's main name: the first that is not a nickname or a former name.
pub fn main_name(p: &Patient) -> Option<&crate::patients::fhir::HumanName> {
    p.name
        .iter()
        .find(|n| !matches!(n.r#use.as_deref(), Some("nickname" | "old" | "maiden")))
        .or(p.name.first())
}

/// A health card number written as on the card: "1234 567 890 AB".
pub fn card_text(number: &str, version: Option<&str>) -> String {
    let mut s = if number.len() == 10 && number.bytes().all(|b| b.is_ascii_digit()) {
        format!("{} {} {}", &number[..4], &number[4..7], &number[7..])
    } else {
        number.to_string()
    };
    if let Some(v) = version.filter(|v| !v.is_empty()) {
        s.push(' ');
        s.push_str(v);
    }
    s
}

pub fn sex_label(g: &str) -> &'static str {
    match g {
        "female" => "Female",
        "male" => "Male",
        "other" => "Other",
        _ => "Unknown",
    }
}

impl Banner {
    pub fn of(p: &Patient, today: jiff::civil::Date, flags: Vec<Flag>) -> Banner {
        Banner {
            id: p.id.clone().unwrap_or_default(),
            name: display_name(p),
            preferred: p
                .name
                .iter()
                .find(|n| n.r#use.as_deref() == Some("nickname"))
                .and_then(|n| n.given.first().cloned()),
            sex: p.gender.as_deref().map(|g| sex_label(g).to_string()),
            age: p.birth_date.as_deref().and_then(|b| age(b, today)),
            birth_date: p.birth_date.clone(),
            health_card: p.ontario_hcn().map(|(n, v)| card_text(n, v)),
            chart: p.chart_number().map(str::to_string),
            inactive: p.active == Some(false),
            deceased: p.deceased_boolean == Some(true) || p.deceased_date_time.is_some(),
            flags,
            unavailable: None,
        }
    }

    /// The banner of a patient read for `caller` (an audited read, like any other).
    pub async fn load(app: &App, caller: &Caller, id: &str) -> Banner {
        match app.patients.get(&caller.ctx(), id).await {
            Ok(p) => {
                let flags = banner_flags(app, caller, &p).await;
                Banner::of(&p, clinic_today(app), flags)
            }
            Err(e) => Banner::unavailable(id, &e.to_string()),
        }
    }

    pub fn unavailable(id: &str, why: &str) -> Banner {
        Banner {
            id: id.into(),
            name: String::new(),
            preferred: None,
            sex: None,
            age: None,
            birth_date: None,
            health_card: None,
            chart: None,
            inactive: false,
            deceased: false,
            flags: Vec::new(),
            unavailable: Some(why.into()),
        }
    }

    pub fn render(&self) -> String {
        if let Some(why) = &self.unavailable {
            return format!(
                "<section class=\"patient-banner unavailable\" aria-label=\"Patient\">\
                 <span>The patient of this page cannot be shown: {}</span></section>",
                esc(why)
            );
        }
        let mut facts = String::new();
        let mut fact = |label: &str, value: &str| {
            facts.push_str(&format!(
                "<div><dt>{}</dt><dd>{}</dd></div>",
                esc(label),
                esc(value)
            ));
        };
        if let Some(p) = &self.preferred {
            fact("Preferred", p);
        }
        fact("Sex", self.sex.as_deref().unwrap_or("—"));
        match (&self.age, &self.birth_date) {
            (Some(a), Some(b)) => fact("Age", &format!("{a} · born {b}")),
            (None, Some(b)) => fact("Born", b),
            _ => fact("Born", "—"),
        }
        fact(
            "Health card",
            self.health_card.as_deref().unwrap_or("none on file"),
        );
        if let Some(c) = &self.chart {
            fact("Chart", c);
        }
        let mut flags = String::new();
        if self.inactive {
            flags.push_str("<span class=\"badge red\">INACTIVE CHART</span>");
        }
        if self.deceased {
            flags.push_str("<span class=\"badge\">DECEASED</span>");
        }
        for f in &self.flags {
            let class = match f.level {
                FlagLevel::Info => "badge",
                FlagLevel::Warning => "badge amber",
                FlagLevel::Alert => "badge red",
            };
            let label = esc(&f.label);
            match &f.href {
                Some(h) => flags.push_str(&format!(
                    "<a class=\"{class}\" href=\"{}\">{label}</a>",
                    esc(h)
                )),
                None => flags.push_str(&format!("<span class=\"{class}\">{label}</span>")),
            }
        }
        format!(
            "<section class=\"patient-banner{}\" aria-label=\"Patient\">\
             <a class=\"pname\" href=\"/patients/{}\">{}</a><dl>{facts}</dl>\
             <span class=\"flags\">{flags}</span></section>",
            if self.inactive { " inactive" } else { "" },
            esc(&self.id),
            esc(&self.name),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_as_clinicians_write_them() {
        let today: jiff::civil::Date = "2026-11-29".parse().unwrap();
        assert_eq!(age("1961-03-14", today).as_deref(), Some("65 y"));
        assert_eq!(age("1961-12-14", today).as_deref(), Some("64 y"));
        assert_eq!(age("2024-11-29", today).as_deref(), Some("2 y"));
        assert_eq!(age("2025-05-30", today).as_deref(), Some("17 mo"));
        assert_eq!(age("2026-10-30", today).as_deref(), Some("30 d"));
        assert_eq!(age("2026-10-29", today).as_deref(), Some("1 mo"));
        assert_eq!(age("2026-11-29", today).as_deref(), Some("0 d"));
        assert_eq!(age("2027-01-01", today), None);
        assert_eq!(age("not a date", today), None);
    }

    #[test]
    fn cards_are_written_as_on_the_card() {
        assert_eq!(card_text("9287170261", Some("AB")), "9287 170 261 AB");
        assert_eq!(card_text("9287170261", None), "9287 170 261");
        assert_eq!(card_text("X-1", Some("")), "X-1");
    }

    #[test]
    fn a_banner_panel_answers_one_line_with_its_level() {
        let f = |t| parse_flag("Allergies", t);
        assert_eq!(
            f("alert: penicillin (anaphylaxis)"),
            Some((
                "Allergies: penicillin (anaphylaxis)".into(),
                FlagLevel::Alert
            ))
        );
        assert_eq!(
            f("Warning:not recorded\nsecond line ignored"),
            Some(("Allergies: not recorded".into(), FlagLevel::Warning))
        );
        assert_eq!(
            f("none known"),
            Some(("Allergies: none known".into(), FlagLevel::Info))
        );
        assert_eq!(f(""), None);
        assert_eq!(f("alert:   "), None);
        assert_eq!(
            f(&"x".repeat(500)).unwrap().0.len(),
            "Allergies: ".len() + 200
        );
    }
}
