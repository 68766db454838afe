//! The narrow views of patient records that plugins and roles without chart access get:
//! a health-card match that answers with an id only, and de-identified records for research.

use subtle::ConstantTimeEq;

use super::fhir::{ON_HCN_SYSTEM, Patient};
use super::{PatientError, Patients};
use crate::access::{Check, Ctx, Need, Permission};
use crate::storage::{Tree, key};

/// A page for de-identification: (id, record) pairs and the cursor for the next page. The
/// caller turns each into [`deidentify`]'s output under its own pseudonym.
pub struct DeidentifiedPage {
    pub patients: Vec<(String, Patient)>,
    pub next: Option<String>,
}

impl Patients {
    /// The id of the one active patient whose Ontario health card number, version code and
    /// birth date all match; `None` otherwise, without saying which part failed. Needs
    /// `patients.match` (or `patients.read`). Audited either way.
    pub async fn match_health_card(
        &self,
        ctx: &Ctx,
        number: &str,
        version_code: &str,
        birth_date: &str,
    ) -> Result<Option<String>, PatientError> {
        const ACTION: &str = "patient.match";
        let need = Need::AnyOf(&[Permission::PatientsMatch, Permission::PatientsRead]);
        self.allow(ctx, Check::new(ACTION, need)).await?;
        let number: String = number.chars().filter(|c| c.is_ascii_digit()).collect();
        let version_code = version_code.trim().to_ascii_uppercase();
        let k = key(&[number.as_bytes(), ON_HCN_SYSTEM.as_bytes()]);
        let found = match self.storage.get(Tree::PatientIdentifiers, &k)? {
            Some(id) => {
                let id = String::from_utf8_lossy(&id).into_owned();
                match self.load(&id)? {
                    Some((p, _)) if matches(&p, &version_code, birth_date) => Some(id),
                    _ => None,
                }
            }
            None => None,
        };
        let outcome = if found.is_some() {
            "success"
        } else {
            "no-match"
        };
        self.audited(ctx, ACTION, outcome, found.as_deref()).await?;
        Ok(found)
    }

    /// A page of all patients, to be de-identified by the caller. Needs
    /// `patients.deidentified`. The audit entry lists the patients.
    pub async fn deidentified_page(
        &self,
        ctx: &Ctx,
        cursor: Option<&str>,
        count: usize,
    ) -> Result<DeidentifiedPage, PatientError> {
        const ACTION: &str = "patient.deidentified";
        let need = Need::Permission(Permission::PatientsDeidentified);
        self.allow(ctx, Check::new(ACTION, need)).await?;
        let count = count.clamp(1, super::MAX_COUNT);
        let after = cursor.map(|c| c.as_bytes().to_vec());
        let rows = self
            .storage
            .scan(Tree::Patients, b"", after.as_deref(), count + 1)?;
        let more = rows.len() > count;
        let mut ids = Vec::new();
        let mut out = Vec::new();
        for (k, v) in rows.into_iter().take(count) {
            let id = String::from_utf8_lossy(&k).into_owned();
            if let Ok(p) = serde_json::from_slice::<Patient>(&v) {
                out.push((id.clone(), p));
                ids.push(id);
            }
        }
        let next = if more { ids.last().cloned() } else { None };
        let mut ev = ctx.event(ACTION, "success");
        ev.patients = ids;
        self.audit.record(ev)?;
        self.storage.durable().await?;
        Ok(DeidentifiedPage {
            patients: out,
            next,
        })
    }

    /// One de-identified record by its pseudonym (`id` is the patient it stands for, as the
    /// caller resolved it), with ages computed on `as_of` (today when `None`).
    pub async fn deidentified_get(
        &self,
        ctx: &Ctx,
        pseudonym: &str,
        id: Option<&str>,
        as_of: Option<time::Date>,
    ) -> Result<serde_json::Value, PatientError> {
        const ACTION: &str = "patient.deidentified";
        let need = Need::Permission(Permission::PatientsDeidentified);
        self.allow(ctx, Check::new(ACTION, need)).await?;
        let found = match id {
            Some(id) => self.load(id)?.map(|(p, _)| (id, p)),
            None => None,
        };
        match found {
            Some((id, p)) => {
                self.audited(ctx, ACTION, "success", Some(id)).await?;
                Ok(deidentify(
                    &p,
                    pseudonym,
                    as_of.unwrap_or_else(|| time::OffsetDateTime::now_utc().date()),
                ))
            }
            None => Err(PatientError::NotFound(pseudonym.into())),
        }
    }
}

fn matches(p: &Patient, version_code: &str, birth_date: &str) -> bool {
    if p.active == Some(false) {
        return false;
    }
    let Some((_, version)) = p.ontario_hcn() else {
        return false;
    };
    let version = version.unwrap_or("").to_ascii_uppercase();
    let birth = p.birth_date.as_deref().unwrap_or("");
    // Compare both in full, whatever the first says, so timing tells nothing.
    let v = version.as_bytes().ct_eq(version_code.as_bytes());
    let b = birth.as_bytes().ct_eq(birth_date.trim().as_bytes());
    bool::from(v & b)
}

/// The extension that stands for the birth date of a patient who is (or may be) 90 or older.
pub const AGE_GROUP_EXTENSION: &str = "urn:osler:fhir:age-group";

/// A patient with nothing that identifies them, by the research sandbox's rules:
///
/// - no names, identifiers (health card, chart numbers), telecom, address lines, city or
///   practitioner; the id replaced by `pseudonym`;
/// - the birth date cut to its year, and dropped for anyone who is (or, from a partial date,
///   may be) 90 or older on `today`, who gets the age group `90+` instead;
/// - of the address, only the first three characters of the postal code (the forward sortation
///   area, e.g. `K1A`), upper case, spaces removed;
/// - free text dropped: languages keep their coded system and code only; the date of death is
///   dropped (that the patient died is kept).
///
/// Gender and whether the chart is active are kept.
pub fn deidentify(p: &Patient, pseudonym: &str, today: time::Date) -> serde_json::Value {
    let mut out = serde_json::json!({
        "resourceType": "Patient",
        "id": pseudonym,
        "meta": {"security": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "PSEUDED",
            "display": "pseudonymized"
        }]},
    });
    let o = out.as_object_mut().expect("object");
    if let Some(g) = &p.gender {
        o.insert("gender".into(), g.clone().into());
    }
    if let Some(b) = &p.birth_date {
        match oldest_age(b, today) {
            Some(age) if age < 90 => {
                o.insert(
                    "birthDate".into(),
                    b.chars().take(4).collect::<String>().into(),
                );
            }
            Some(_) => {
                o.insert(
                    "extension".into(),
                    serde_json::json!([{"url": AGE_GROUP_EXTENSION, "valueString": "90+"}]),
                );
            }
            // Not a date: nothing of it is passed on.
            None => {}
        }
    }
    if p.deceased_boolean == Some(true) || p.deceased_date_time.is_some() {
        o.insert("deceasedBoolean".into(), true.into());
    }
    if let Some(a) = p.active {
        o.insert("active".into(), a.into());
    }
    if let Some(fsa) = p
        .address
        .iter()
        .filter_map(|a| a.postal_code.as_deref())
        .map(|pc| {
            pc.chars()
                .filter(|c| !c.is_whitespace())
                .take(3)
                .collect::<String>()
                .to_uppercase()
        })
        .find(|fsa| fsa.len() == 3 && fsa.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        o.insert("address".into(), serde_json::json!([{ "postalCode": fsa }]));
    }
    let languages: Vec<serde_json::Value> = p
        .communication
        .iter()
        .filter_map(|c| {
            let coding: Vec<serde_json::Value> = c
                .language
                .coding
                .iter()
                .filter(|k| k.code.is_some())
                .map(|k| serde_json::json!({"system": k.system, "code": k.code}))
                .collect();
            (!coding.is_empty()).then(|| {
                let mut v = serde_json::json!({"language": {"coding": coding}});
                if let Some(pref) = c.preferred {
                    v["preferred"] = pref.into();
                }
                v
            })
        })
        .collect();
    if !languages.is_empty() {
        o.insert("communication".into(), languages.into());
    }
    out
}

/// The oldest the patient born on `birth` (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`) can be on
/// `today`; `None` when it is not a date.
fn oldest_age(birth: &str, today: time::Date) -> Option<i32> {
    let mut parts = birth.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: Option<u8> = parts.next().map(str::parse).transpose().ok()?;
    let day: Option<u8> = parts.next().map(str::parse).transpose().ok()?;
    let mut age = today.year() - year;
    // Not yet had this year's birthday (only when the date says so for certain).
    if let (Some(m), Some(d)) = (month, day)
        && (today.month() as u8, today.day()) < (m, d)
    {
        age -= 1;
    }
    Some(age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patients::fhir::{Address, CodeableConcept, Coding, Communication};

    fn today() -> time::Date {
        time::macros::date!(2026 - 12 - 02)
    }

    #[test]
    fn nothing_identifying_is_left() {
        let p: Patient = serde_json::from_value(serde_json::json!({
            "resourceType": "Patient",
            "id": "real-id",
            "identifier": [{"system": "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn", "value": "9876543217"}],
            "name": [{"family": "Tremblay", "given": ["Jeanne"]}],
            "telecom": [{"system": "phone", "value": "613-555-0100"}],
            "gender": "female",
            "birthDate": "1970-06-15",
            "address": [{"line": ["1 Main St"], "city": "Ottawa", "state": "ON", "postalCode": "k1a 0b1"}],
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr", "display": "French"}], "text": "French, Quebec"}, "preferred": true}],
            "deceasedDateTime": "2020-01-01"
        }))
        .expect("a patient");
        let d = deidentify(&p, "p-1", today());
        let text = d.to_string();
        for secret in [
            "real-id",
            "9876543217",
            "Tremblay",
            "Jeanne",
            "613-555",
            "Main",
            "Ottawa",
            "0B1",
            "Quebec",
            "06-15",
            "2020",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(d["id"], "p-1");
        assert_eq!(d["birthDate"], "1970");
        assert_eq!(d["address"], serde_json::json!([{"postalCode": "K1A"}]));
        assert_eq!(d["gender"], "female");
        assert_eq!(d["deceasedBoolean"], true);
        assert_eq!(d["communication"][0]["language"]["coding"][0]["code"], "fr");
    }

    #[test]
    fn ages_over_89_are_grouped() {
        let mut p = Patient {
            birth_date: Some("1936-12-03".into()),
            ..Default::default()
        };
        // 89 until tomorrow: the year stays.
        assert_eq!(deidentify(&p, "x", today())["birthDate"], "1936");
        p.birth_date = Some("1936-12-02".into());
        let d = deidentify(&p, "x", today());
        assert!(d.get("birthDate").is_none());
        assert_eq!(d["extension"][0]["valueString"], "90+");
        // A year alone that may make them 90 is grouped.
        p.birth_date = Some("1936".into());
        assert!(deidentify(&p, "x", today()).get("birthDate").is_none());
        p.address = vec![Address {
            postal_code: Some("K1".into()),
            ..Default::default()
        }];
        p.communication = vec![Communication {
            language: CodeableConcept {
                coding: vec![Coding {
                    display: Some("free text only".into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            preferred: None,
        }];
        let d = deidentify(&p, "x", today());
        assert!(d.get("address").is_none() && d.get("communication").is_none());
    }
}
