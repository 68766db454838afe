//! The HL7 FHIR R4 Patient shape Osler stores and serves (the subset Osler supports; any
//! other field is refused by name rather than silently dropped).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Naming system of the Ontario health card number.
pub const ON_HCN_SYSTEM: &str = "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn";
/// Canadian baseline extension carrying a health card's version code.
pub const IDENTIFIER_VERSION_EXT: &str =
    "http://hl7.org/fhir/ca/baseline/StructureDefinition/ext-identifierversion";
/// Naming system of the clinic chart number Osler assigns.
pub const CHART_SYSTEM: &str = "urn:osler:chart-number";

/// A FHIR R4 Patient.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Patient {
    /// Always `Patient`.
    #[serde(default = "patient_type")]
    #[schema(pattern = "^Patient$")]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// `false` once the chart has been marked inactive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    /// `male`, `female`, `other` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deceased_boolean: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deceased_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    /// Languages; the one marked `preferred` is the preferred language.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communication: Vec<Communication>,
    /// The family physician.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub general_practitioner: Vec<Reference>,
}

fn patient_type() -> String {
    "Patient".into()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Extension {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HumanName {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suffix: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactPoint {
    /// `phone`, `fax`, `email`, `pager`, `url`, `sms` or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `home`, `work`, `temp`, `old` or `mobile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub line: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// Province or territory, e.g. `ON`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Communication {
    pub language: CodeableConcept,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred: Option<bool>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeableConcept {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Coding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reference {
    /// e.g. `Practitioner/dr-lee`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Patient {
    /// The Ontario health card number and version code, if the patient has one.
    pub fn ontario_hcn(&self) -> Option<(&str, Option<&str>)> {
        self.identifier
            .iter()
            .find(|i| i.system.as_deref() == Some(ON_HCN_SYSTEM))
            .and_then(|i| {
                let version = i
                    .extension
                    .iter()
                    .find(|e| e.url == IDENTIFIER_VERSION_EXT)
                    .and_then(|e| e.value_string.as_deref());
                i.value.as_deref().map(|v| (v, version))
            })
    }

    pub fn chart_number(&self) -> Option<&str> {
        self.identifier
            .iter()
            .find(|i| i.system.as_deref() == Some(CHART_SYSTEM))
            .and_then(|i| i.value.as_deref())
    }
}
