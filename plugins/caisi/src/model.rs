//! What is shared, consent, and how the integrator applies a snapshot (pure logic).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The FHIR identifier systems read as a health card number (Ontario's, and any province's
/// `…-patient-hcn`) and as a Social Insurance Number.
pub const HCN_SYSTEM_SUFFIX: &str = "-patient-hcn";
pub const SIN_SYSTEMS: &[&str] = &[
    "http://hl7.org/fhir/sid/ca-sin",
    "https://fhir.infoway-inforoute.ca/NamingSystem/ca-social-insurance-number",
];

/// Demographics, as shared and as matched on.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Demographics {
    pub family: String,
    pub given: String,
    #[serde(default)]
    pub birth_date: Option<String>,
    #[serde(default)]
    pub gender: Option<String>,
    #[serde(default)]
    pub health_card: Option<String>,
    #[serde(default)]
    pub sin: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub province: Option<String>,
}

impl Demographics {
    /// From a FHIR R4 Patient.
    pub fn from_fhir(p: &serde_json::Value) -> Demographics {
        let name = p["name"]
            .as_array()
            .and_then(|names| {
                names
                    .iter()
                    .find(|n| n["use"] == "official")
                    .or_else(|| names.first())
            })
            .cloned()
            .unwrap_or_default();
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string).filter(|s| !s.is_empty());
        let ids = p["identifier"].as_array().cloned().unwrap_or_default();
        let id_of = |pred: &dyn Fn(&str) -> bool| {
            ids.iter()
                .find(|i| i["system"].as_str().is_some_and(pred))
                .and_then(|i| text(&i["value"]))
        };
        let address = &p["address"][0];
        Demographics {
            family: name["family"].as_str().unwrap_or_default().to_string(),
            given: name["given"]
                .as_array()
                .map(|g| {
                    g.iter()
                        .filter_map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
            birth_date: text(&p["birthDate"]),
            gender: text(&p["gender"]),
            health_card: id_of(&|s: &str| s.ends_with(HCN_SYSTEM_SUFFIX)),
            sin: id_of(&|s: &str| SIN_SYSTEMS.contains(&s)),
            city: text(&address["city"]),
            province: text(&address["state"]),
        }
    }

    pub fn display_name(&self) -> String {
        format!("{}, {}", self.family, self.given)
    }
}

/// An active medication, as shared.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Medication {
    pub drug: String,
    #[serde(default)]
    pub din: Option<String>,
    #[serde(default)]
    pub atc: Option<String>,
    #[serde(default)]
    pub strength: String,
    #[serde(default)]
    pub sig: String,
    #[serde(default)]
    pub start: String,
}

/// An active allergy, as shared.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Allergy {
    pub substance: String,
    #[serde(default)]
    pub reaction: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
}

/// An upcoming appointment, as shared.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    pub date: String,
    pub start: String,
    pub provider_name: String,
    pub status: String,
    /// Not sent: whether the appointment's type is a mental-health one (see
    /// [`is_mental_health_type`]), decided at the facility.
    #[serde(skip)]
    pub mental_health: bool,
}

/// What a facility shares with one recipient. A section that is `None` could not be read
/// this time (the person behind the change may not read it, e.g. reception and
/// medications): the integrator keeps what it had.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Shared {
    #[serde(default)]
    pub demographics: Option<Demographics>,
    #[serde(default)]
    pub medications: Option<Vec<Medication>>,
    #[serde(default)]
    pub allergies: Option<Vec<Allergy>>,
    #[serde(default)]
    pub appointments: Option<Vec<Appointment>>,
}

/// A client's consent to share with one remote facility.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    /// The remote facility's public key.
    pub facility: String,
    pub facility_name: String,
    /// Given (true) or revoked (false).
    pub given: bool,
    /// Leave mental-health information out.
    pub exclude_mental_health: bool,
    /// The last day it is in force (`YYYY-MM-DD`, the site's date), or none.
    #[serde(default)]
    pub expires: Option<String>,
    /// Who recorded it and when (milliseconds).
    pub set_by: String,
    pub set_at: i64,
}

impl Consent {
    /// In force on `today` (`YYYY-MM-DD`): given and not past its last day.
    pub fn in_force(&self, today: &str) -> bool {
        self.given && self.expires.as_deref().is_none_or(|e| today <= e)
    }
}

/// Mental-health medications: WHO ATC groups N05 (psycholeptics: antipsychotics, anxiolytics,
/// hypnotics) and N06 (psychoanaleptics: antidepressants, psychostimulants, anti-dementia).
pub fn is_mental_health_atc(atc: &str) -> bool {
    let a = atc.trim().to_ascii_uppercase();
    a.starts_with("N05") || a.starts_with("N06")
}

/// Whether an appointment type (as the scheduling plugin records it) is one the site's
/// `mental-health-types` setting lists (comma-separated, compared without case).
pub fn is_mental_health_type(kind: &str, listed: &str) -> bool {
    let k = kind.trim().to_lowercase();
    !k.is_empty()
        && listed
            .split(',')
            .map(|s| s.trim().to_lowercase())
            .any(|s| s == k)
}

/// `all` without mental-health information: medications in N05/N06 and appointments marked
/// mental health (an appointment whose type is unknown counts as one: when in doubt, it stays).
/// Allergies and demographics are not mental-health information.
pub fn without_mental_health(all: &Shared) -> Shared {
    Shared {
        demographics: all.demographics.clone(),
        medications: all.medications.as_ref().map(|m| {
            m.iter()
                .filter(|m| !m.atc.as_deref().is_some_and(is_mental_health_atc))
                .cloned()
                .collect()
        }),
        allergies: all.allergies.clone(),
        appointments: all
            .appointments
            .as_ref()
            .map(|a| a.iter().filter(|a| !a.mental_health).cloned().collect()),
    }
}

/// What goes to one recipient.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct View {
    pub recipient: String,
    #[serde(default)]
    pub expires: Option<String>,
    pub shared: Shared,
}

/// A facility's snapshot of one client: the views for the facilities the client's consent is
/// in force for (none: delete everything about the client) and the demographics to match on.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub client: String,
    pub version: u64,
    #[serde(default)]
    pub matching: Option<Demographics>,
    pub views: Vec<View>,
}

/// The views a facility sends for `all` under `consents` on `today`.
pub fn views_for(all: &Shared, consents: &[Consent], today: &str) -> Vec<View> {
    consents
        .iter()
        .filter(|c| c.in_force(today))
        .map(|c| View {
            recipient: c.facility.clone(),
            expires: c.expires.clone(),
            shared: if c.exclude_mental_health {
                without_mental_health(all)
            } else {
                all.clone()
            },
        })
        .collect()
}

/// One section as the integrator keeps it: the snapshot version it came with and when.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Section<T> {
    pub version: u64,
    pub received: i64,
    pub data: T,
}

/// The four sections one facility shares with another, each as the integrator keeps it: what
/// the integrator stores per recipient and what it answers the recipient.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Sections {
    #[serde(default)]
    pub demographics: Option<Section<Demographics>>,
    #[serde(default)]
    pub medications: Option<Section<Vec<Medication>>>,
    #[serde(default)]
    pub allergies: Option<Section<Vec<Allergy>>>,
    #[serde(default)]
    pub appointments: Option<Section<Vec<Appointment>>>,
}

/// One recipient's view as the integrator keeps it.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoredView {
    #[serde(default)]
    pub expires: Option<String>,
    #[serde(flatten)]
    pub sections: Sections,
}

/// One facility's shared information about a linked client, as the integrator answers it.
#[derive(Serialize, Deserialize, Debug)]
pub struct Remote {
    pub facility: String,
    #[serde(flatten)]
    pub sections: Sections,
}

/// A client as the integrator keeps it.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClientRecord {
    /// The facility's fingerprint and its own id for the client.
    pub facility: String,
    pub client: String,
    /// The highest snapshot version applied to the set of views.
    pub version: u64,
    #[serde(default)]
    pub matching: Option<Section<Demographics>>,
    /// By the recipient's public key.
    #[serde(default)]
    pub views: BTreeMap<String, StoredView>,
}

fn apply_section<T: Clone>(
    slot: &mut Option<Section<T>>,
    new: &Option<T>,
    v: u64,
    now: i64,
) -> bool {
    let Some(data) = new else {
        return false;
    };
    if slot.as_ref().is_some_and(|old| v <= old.version) {
        return false;
    }
    *slot = Some(Section {
        version: v,
        received: now,
        data: data.clone(),
    });
    true
}

/// Apply `snap` (received at `now`) to `rec`: the set of recipients follows the highest
/// version seen; each section is replaced only by a higher version. Applying a snapshot
/// again, or an older one after a newer, changes nothing. Returns whether anything changed.
pub fn apply(rec: &mut ClientRecord, snap: &Snapshot, now: i64) -> bool {
    let v = snap.version;
    let mut changed = false;
    if v > rec.version {
        let keep: Vec<&String> = snap.views.iter().map(|w| &w.recipient).collect();
        let before = rec.views.len();
        rec.views.retain(|k, _| keep.contains(&k));
        changed |= rec.views.len() != before;
        for w in &snap.views {
            let view = rec.views.entry(w.recipient.clone()).or_insert_with(|| {
                changed = true;
                StoredView::default()
            });
            if view.expires != w.expires {
                view.expires = w.expires.clone();
                changed = true;
            }
        }
        rec.version = v;
    }
    for w in &snap.views {
        if let Some(view) = rec.views.get_mut(&w.recipient) {
            changed |= apply_section(
                &mut view.sections.demographics,
                &w.shared.demographics,
                v,
                now,
            );
            changed |= apply_section(
                &mut view.sections.medications,
                &w.shared.medications,
                v,
                now,
            );
            changed |= apply_section(&mut view.sections.allergies, &w.shared.allergies, v, now);
            changed |= apply_section(
                &mut view.sections.appointments,
                &w.shared.appointments,
                v,
                now,
            );
        }
    }
    if !rec.views.is_empty() {
        changed |= apply_section(&mut rec.matching, &snap.matching, v, now);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn med(name: &str, atc: &str) -> Medication {
        Medication {
            drug: name.into(),
            din: None,
            atc: Some(atc.into()),
            strength: String::new(),
            sig: String::new(),
            start: "2026-11-01".into(),
        }
    }

    fn consent(to: &str, exclude: bool, expires: Option<&str>) -> Consent {
        Consent {
            facility: to.into(),
            facility_name: to.into(),
            given: true,
            exclude_mental_health: exclude,
            expires: expires.map(str::to_string),
            set_by: "drlee".into(),
            set_at: 0,
        }
    }

    fn all() -> Shared {
        Shared {
            demographics: Some(Demographics {
                family: "Smith".into(),
                ..Default::default()
            }),
            medications: Some(vec![
                med("Warfarin", "B01AA03"),
                med("Sertraline", "N06AB06"),
            ]),
            allergies: Some(vec![]),
            appointments: Some(vec![
                Appointment {
                    date: "2026-12-10".into(),
                    start: "09:00".into(),
                    provider_name: "Dr. Lee".into(),
                    status: "booked".into(),
                    mental_health: false,
                },
                Appointment {
                    date: "2026-12-11".into(),
                    start: "10:00".into(),
                    provider_name: "Dr. Roy".into(),
                    status: "booked".into(),
                    mental_health: true,
                },
            ]),
        }
    }

    #[test]
    fn views_only_for_consents_in_force_and_without_mental_health_when_asked() {
        let mut revoked = consent("c", false, None);
        revoked.given = false;
        let consents = vec![
            consent("a", true, None),
            consent("b", false, Some("2026-12-01")),
            revoked,
            consent("d", false, Some("2026-12-02")),
        ];
        let views = views_for(&all(), &consents, "2026-12-02");
        let names: Vec<&str> = views.iter().map(|v| v.recipient.as_str()).collect();
        assert_eq!(
            names,
            ["a", "d"],
            "expired (b) and revoked (c) consents share nothing"
        );
        let a = &views[0].shared;
        let meds: Vec<&str> = a
            .medications
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.drug.as_str())
            .collect();
        assert_eq!(meds, ["Warfarin"]);
        assert_eq!(a.appointments.as_ref().unwrap().len(), 1);
        assert_eq!(views[1].shared.medications.as_ref().unwrap().len(), 2);
        assert!(is_mental_health_type(
            " Counselling ",
            "mental health, counselling"
        ));
        assert!(!is_mental_health_type("", "mental health"));
    }

    #[test]
    fn a_snapshot_applies_once_and_an_older_one_changes_nothing() {
        let mut rec = ClientRecord::default();
        let snap = |v: u64, meds: Option<Vec<Medication>>, to: &[&str]| Snapshot {
            client: "p1".into(),
            version: v,
            matching: None,
            views: to
                .iter()
                .map(|r| View {
                    recipient: r.to_string(),
                    expires: None,
                    shared: Shared {
                        medications: meds.clone(),
                        ..Default::default()
                    },
                })
                .collect(),
        };
        assert!(apply(
            &mut rec,
            &snap(2, Some(vec![med("Warfarin", "B01AA03")]), &["b"]),
            10
        ));
        assert!(!apply(
            &mut rec,
            &snap(2, Some(vec![med("Warfarin", "B01AA03")]), &["b"]),
            20
        ));
        // A late, older snapshot (a retry that lost a race) is ignored.
        assert!(!apply(&mut rec, &snap(1, Some(vec![]), &["b", "c"]), 30));
        assert_eq!(rec.views.len(), 1);
        let meds = &rec.views["b"].sections.medications.as_ref().unwrap();
        assert_eq!((meds.data.len(), meds.received), (1, 10));
        // A partial snapshot (medications unreadable) keeps the medications.
        assert!(!apply(&mut rec, &snap(3, None, &["b"]), 40));
        assert_eq!(
            rec.views["b"]
                .sections
                .medications
                .as_ref()
                .unwrap()
                .data
                .len(),
            1
        );
        // No consent left: no view.
        assert!(apply(&mut rec, &snap(4, None, &[]), 50));
        assert!(rec.views.is_empty());
    }

    #[test]
    fn demographics_from_fhir() {
        let p = serde_json::json!({
            "identifier": [{"system": "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn", "value": "9876543217"}],
            "name": [{"use": "official", "family": "Smyth", "given": ["Jon", "A"]}],
            "gender": "male", "birthDate": "1970-01-02",
            "address": [{"city": "Toronto", "state": "ON"}]
        });
        let d = Demographics::from_fhir(&p);
        assert_eq!(d.family, "Smyth");
        assert_eq!(d.given, "Jon A");
        assert_eq!(d.health_card.as_deref(), Some("9876543217"));
        assert_eq!(d.city.as_deref(), Some("Toronto"));
        assert_eq!(d.sin, None);
    }
}
