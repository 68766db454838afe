//! Prescribing (OSCAR's Rx): allergies, the medication list, prescriptions checked against
//! the drug reference, renewals, discontinuation and a printable prescription.
//!
//! It imports `osler:drugref/lookup` (the drug reference plugin's interface). Every prescribe
//! checks interactions and allergies through it; when it is not enabled or fails, the
//! prescription is still written, marked `unchecked` in the answer, the record and the printed
//! page, and the fact is audited. See README.md for routes, settings and storage.
//!
//! It exports `osler:prescribing/record@0.1.0` ([`record`]): a patient's active medications
//! and allergies, for other plugins, read as the person they serve.

mod checks;
pub mod dispense;
pub mod events;
pub mod model;
mod pages;
pub mod panels;
pub mod record;
pub mod remote;
pub mod settings;
pub mod sig;

use osler_sdk::{
    Caller, Error, Params, Plugin, Request, Response, Router, audit, clock, config, patient_data,
    patients,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::dispense::{Form, Quantity};
use crate::model::{Allergy, Change, Checks, Component, Drug, PartFill, Prescription};

mod bindings {
    osler_sdk::generate!({
        path: ["../../wit/v0.2.0", "wit"],
        world: "osler:prescribing/prescribing@0.1.0",
    });
}

use bindings::osler::drugref::lookup;

struct Prescribing;

impl Plugin for Prescribing {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/", pages::home)
            .get("/patients/{pid}", pages::chart)
            .post("/patients/{pid}/prescribe", pages::prescribe_form)
            .post("/patients/{pid}/medications", pages::external_form)
            .post("/patients/{pid}/allergies", pages::allergy_form)
            .post(
                "/patients/{pid}/allergies/{id}/status",
                pages::allergy_status_form,
            )
            .post("/patients/{pid}/rx/{id}/renew", pages::renew_one_form)
            .post("/patients/{pid}/renew", pages::renew_all_form)
            .post(
                "/patients/{pid}/rx/{id}/discontinue",
                pages::discontinue_form,
            )
            .get("/patients/{pid}/print", pages::print)
            .get("/settings", pages::settings_page)
            .post("/settings/prescriber", pages::prescriber_form)
            .post("/settings/site", pages::site_form)
            .get("/api/sig", sig_api)
            .get("/api/settings/prescribers/{user}", |_, p| {
                let found = settings::prescriber(&p["user"])?.ok_or_else(|| {
                    Error::not_found(format!("no details saved for {}", &p["user"]))
                })?;
                Ok(Response::json(200, &found))
            })
            .put("/api/settings/prescribers/{user}", |req, p| {
                let saved = settings::save_prescriber(req.caller(), &p["user"], &req.json()?)?;
                Ok(Response::json(200, &saved))
            })
            .get("/api/settings/site", |req, _| {
                let found = settings::clinic(&req.caller().site)?.ok_or_else(|| {
                    Error::not_found(format!("no details saved for site {}", req.caller().site))
                })?;
                Ok(Response::json(200, &found))
            })
            .put("/api/settings/site", |req, _| {
                let saved = settings::save_clinic(req.caller(), &req.json()?)?;
                Ok(Response::json(200, &saved))
            })
            .get("/api/patients/{pid}", summary_api)
            .post("/api/patients/{pid}/allergies", |req, p| {
                let a = add_allergy(req.caller(), &p["pid"], &req.json()?)?;
                let mut out = serde_json::to_value(&a).unwrap_or_default();
                out["check"] = json!(checks::describe(std::slice::from_ref(&a)).remove(0));
                Ok(Response::json(201, &out))
            })
            .post("/api/patients/{pid}/allergies/{id}/status", |req, p| {
                let body: StatusInput = req.json()?;
                let a = allergy_status(req.caller(), &p["pid"], &p["id"], &body.status)?;
                Ok(Response::json(200, &a))
            })
            .post("/api/patients/{pid}/prescriptions", |req, p| {
                written(prescribe(req.caller(), &p["pid"], &req.json()?)?)
            })
            .post("/api/patients/{pid}/check", |req, p| {
                let (drug, checks) = check_only(req.caller(), &p["pid"], &req.json()?)?;
                // Serialised straight from the two (no JSON tree in between).
                #[derive(serde::Serialize)]
                struct Checked {
                    drug: Drug,
                    checks: Checks,
                }
                Ok(Response::json(200, &Checked { drug, checks }))
            })
            .post("/api/patients/{pid}/medications", |req, p| {
                let rx = record_external(req.caller(), &p["pid"], &req.json()?)?;
                Ok(Response::json(201, &rx))
            })
            .post("/api/patients/{pid}/prescriptions/{id}/renew", |req, p| {
                let body: OverrideInput = optional_json(req)?;
                let ids = vec![p["id"].to_string()];
                written(renew(
                    req.caller(),
                    &p["pid"],
                    Some(&ids),
                    &body.override_reason,
                )?)
            })
            .post("/api/patients/{pid}/renew", |req, p| {
                let body: OverrideInput = optional_json(req)?;
                written(renew(req.caller(), &p["pid"], None, &body.override_reason)?)
            })
            .post("/api/patients/{pid}/prescriptions/{id}/status", |req, p| {
                let body: StatusInput = req.json()?;
                let rx = change_status(
                    req.caller(),
                    &p["pid"],
                    &p["id"],
                    &body.status,
                    &body.reason,
                )?;
                Ok(Response::json(200, &rx))
            })
            .post(
                "/api/patients/{pid}/prescriptions/{id}/discontinue",
                |req, p| {
                    let body: StatusInput = req.json()?;
                    let rx =
                        change_status(req.caller(), &p["pid"], &p["id"], "stopped", &body.reason)?;
                    Ok(Response::json(200, &rx))
                },
            )
            .handle(&req)
    }

    fn render_panel(panel: &str, patient: &str) -> Result<String, Error> {
        panels::render(panel, patient)
    }
}

osler_sdk::export_plugin!(Prescribing with_bindings bindings);

// Inputs.

/// A prescription (or a medication prescribed elsewhere) as the API takes it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RxInput {
    /// A product of the drug reference.
    pub din: String,
    /// A custom drug's name (or the name to use when the drug reference is unavailable).
    pub drug_name: String,
    pub atc: String,
    pub ingredients: Vec<String>,
    /// A custom drug's dosage form (`tablet`, `oral solution`…) and controlled class
    /// (`narcotic`, `controlled-drug`, `targeted-substance`); a product's come from the
    /// drug reference.
    pub form: String,
    pub controlled: String,
    pub strength: String,
    pub sig: String,
    /// With its unit (`21 tablets`, `1 inhaler`); a bare number is in the product's
    /// dispensable unit. Computed from the sig and the product when empty (never for a
    /// controlled drug, whose quantity the prescriber writes).
    #[serde(deserialize_with = "text_or_number")]
    pub quantity: String,
    pub repeats: u32,
    /// The least number of days between fills.
    pub repeat_interval_days: Option<u32>,
    /// Dispense in parts.
    pub part_fill: Option<PartFillInput>,
    pub long_term: bool,
    pub instructions: String,
    /// Required when a check finds a major interaction or an allergy.
    pub override_reason: String,
    /// For a medication prescribed elsewhere: by whom.
    pub prescriber: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PartFillInput {
    #[serde(deserialize_with = "text_or_number")]
    pub quantity: String,
    pub interval_days: u32,
}

/// A JSON string or number, as text (`"quantity": 30` and `"quantity": "30 tablets"`).
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Either::deserialize(d)? {
        Either::Text(t) => t,
        Either::Number(n) => n.to_string(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OverrideInput {
    pub override_reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StatusInput {
    pub status: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AllergyInput {
    pub kind: String,
    pub allergen: String,
    pub reaction: String,
    pub severity: String,
    pub onset: String,
}

fn optional_json<T: for<'de> Deserialize<'de> + Default>(req: &Request) -> Result<T, Error> {
    if req.body.is_empty() {
        Ok(T::default())
    } else {
        req.json()
    }
}

// Who may do what.

fn physician(caller: &Caller) -> Result<(), Error> {
    if caller.has_role("physician") {
        Ok(())
    } else {
        Err(Error::denied(
            "only a physician may prescribe or change a prescription",
        ))
    }
}

fn clinician(caller: &Caller) -> Result<(), Error> {
    if caller.has_role("physician") || caller.has_role("nurse") {
        Ok(())
    } else {
        Err(Error::denied(
            "only a physician or a nurse may record allergies and medications",
        ))
    }
}

/// The patient, read with `patients.read` (which also proves they exist); their records,
/// if still where prescribing kept them before plugin API 0.2, are moved to patient-scoped
/// storage first ([`model::migrate`]).
pub fn patient(pid: &str) -> Result<Value, Error> {
    opened(pid, patients::get)
}

/// The patient as `read` reads them (see [`patient`]).
fn opened<T>(pid: &str, read: impl FnOnce(&str) -> Result<T, Error>) -> Result<T, Error> {
    model::check_patient_id(pid)?;
    let p = read(pid)?;
    model::migrate(pid)?;
    Ok(p)
}

/// `Given Family`.
pub fn patient_name(p: &Value) -> String {
    let n = &p["name"][0];
    let mut parts: Vec<String> = n["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().map(str::to_string))
        .collect();
    parts.extend(n["family"].as_str().map(str::to_string));
    if parts.is_empty() {
        "(no name)".into()
    } else {
        parts.join(" ")
    }
}

fn now_local() -> String {
    clock::now().local
}

pub(crate) fn valid_atc(code: &str) -> Option<String> {
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

// Allergies.

pub fn add_allergy(caller: &Caller, pid: &str, input: &AllergyInput) -> Result<Allergy, Error> {
    clinician(caller)?;
    patient(pid)?;
    let kind = input.kind.trim();
    if !model::ALLERGEN_KINDS.contains(&kind) {
        return Err(Error::invalid("kind: atc, ingredient, brand or free-text"));
    }
    let mut allergen = input.allergen.trim().to_string();
    if allergen.is_empty() || allergen.chars().count() > 200 {
        return Err(Error::invalid("allergen: 1 to 200 characters"));
    }
    if kind == "atc" {
        allergen = valid_atc(&allergen)
            .ok_or_else(|| Error::invalid("allergen: an ATC code or class, like J01C"))?;
    }
    let severity = input.severity.trim();
    if !model::SEVERITIES.contains(&severity) {
        return Err(Error::invalid(
            "severity: mild, moderate, severe or no-reaction",
        ));
    }
    if input.reaction.chars().count() > 500 || input.onset.chars().count() > 100 {
        return Err(Error::invalid(
            "reaction: at most 500 characters; onset: at most 100",
        ));
    }
    let id = model::new_ids(pid, "allergy/", 1)?.remove(0);
    let a = Allergy {
        id: id.clone(),
        kind: kind.into(),
        allergen,
        reaction: input.reaction.trim().into(),
        severity: severity.into(),
        onset: input.onset.trim().into(),
        status: "active".into(),
        recorded_by: caller.display_name.clone(),
        recorded_at: now_local(),
    };
    let key = model::allergy_key(&id);
    patient_data::Batch::new(pid)
        .expect_absent(&key)
        .put(&key, &a)
        .commit()?;
    audit::record(
        "allergy.create",
        Some(pid),
        Some(&format!("{} ({})", a.allergen, a.kind)),
    )?;
    Ok(a)
}

pub fn allergy_status(
    caller: &Caller,
    pid: &str,
    id: &str,
    status: &str,
) -> Result<Allergy, Error> {
    clinician(caller)?;
    patient(pid)?;
    if !model::ALLERGY_STATUSES.contains(&status) {
        return Err(Error::invalid("status: active, inactive or resolved"));
    }
    let old = model::allergy(pid, id)?;
    let a = Allergy {
        status: status.into(),
        ..old.clone()
    };
    let key = model::allergy_key(id);
    patient_data::Batch::new(pid)
        .expect(&key, &old)
        .put(&key, &a)
        .commit()?;
    audit::record(
        "allergy.update",
        Some(pid),
        Some(&format!("{}: {status}", a.allergen)),
    )?;
    Ok(a)
}

// Prescribing.

/// The drug of a prescription, from the drug reference when a DIN is given (when the reference
/// is down, a name given with the DIN is used and the checks will say they did not run), and
/// the strength: as given, or the product's.
fn resolve_drug(input: &RxInput) -> Result<(Drug, String), Error> {
    let (drug, strength) = resolve(input)?;
    let given = input.strength.trim();
    Ok((
        drug,
        if given.is_empty() {
            strength
        } else {
            given.to_string()
        },
    ))
}

/// A drug from a product of the drug reference: confirmed, with its form and strengths.
fn from_product(p: lookup::Product) -> (Drug, String) {
    let strength = p
        .ingredients
        .iter()
        .map(|i| format!("{} {}", i.strength, i.unit).trim().to_string())
        .collect::<Vec<_>>()
        .join(" / ");
    let drug = Drug {
        din: Some(p.din),
        name: p.brand_name,
        atc: Some(p.atc).filter(|a| !a.is_empty()),
        ingredients: p.ingredients.iter().map(|i| i.name.clone()).collect(),
        custom: false,
        sample: p.sample,
        verified: true,
        form: p.dosage_form,
        route: p.route,
        composition: p
            .ingredients
            .into_iter()
            .map(|i| Component {
                name: i.name,
                strength: i.strength,
                unit: i.unit,
            })
            .collect(),
        package: p.package_size,
        controlled: match p.controlled {
            lookup::Controlled::No => "",
            lookup::Controlled::Narcotic => "narcotic",
            lookup::Controlled::ControlledDrug => "controlled-drug",
            lookup::Controlled::TargetedSubstance => "targeted-substance",
        }
        .into(),
    };
    (drug, strength)
}

fn resolve(input: &RxInput) -> Result<(Drug, String), Error> {
    let din = input.din.trim();
    let name = input.drug_name.trim();
    if name.chars().count() > 200 || input.strength.chars().count() > 100 {
        return Err(Error::invalid(
            "drugName: at most 200 characters; strength: at most 100",
        ));
    }
    let atc = match input.atc.trim() {
        "" => None,
        a => Some(valid_atc(a).ok_or_else(|| Error::invalid("atc: an ATC code like B01AA03"))?),
    };
    let form = input.form.trim();
    if form.chars().count() > 100 {
        return Err(Error::invalid("form: at most 100 characters"));
    }
    let controlled = input.controlled.trim();
    if !controlled.is_empty() && !model::CONTROLLED.contains(&controlled) {
        return Err(Error::invalid(
            "controlled: narcotic, controlled-drug, targeted-substance, or empty",
        ));
    }
    let described = |din: Option<String>| Drug {
        din,
        name: name.into(),
        atc: atc.clone(),
        ingredients: input
            .ingredients
            .iter()
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty())
            .collect(),
        custom: false,
        sample: false,
        verified: false,
        form: form.into(),
        route: String::new(),
        composition: Vec::new(),
        package: String::new(),
        controlled: controlled.into(),
    };
    if !din.is_empty() {
        if din.len() != 8 || !din.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid(format!("din: {din:?} is not 8 digits")));
        }
        return match lookup::get(din) {
            Ok(Some(p)) if p.status == lookup::ProductStatus::Cancelled => {
                Err(Error::invalid(format!(
                    "din: {} (DIN {din}) is cancelled: it is no longer marketed",
                    p.brand_name
                )))
            }
            Ok(Some(p)) => Ok(from_product(p)),
            Ok(None) => Err(Error::invalid(format!(
                "din: no product with DIN {din} in the drug reference"
            ))),
            // Typed by hand while the reference is away: kept, never printed as verified.
            Err(_) if !name.is_empty() => Ok((described(Some(din.into())), String::new())),
            Err(e) => Err(Error::unavailable(format!(
                "the drug reference is not available to look up DIN {din} ({}): give the drug's name (drugName) to prescribe without it",
                e.message()
            ))),
        };
    }
    if name.is_empty() {
        return Err(Error::invalid(
            "drug: choose a product (din) or write the drug's name (drugName)",
        ));
    }
    Ok((
        Drug {
            custom: true,
            ..described(None)
        },
        String::new(),
    ))
}

/// The result of writing prescriptions: written, or stopped for an override reason.
pub enum Outcome {
    Written(Vec<Prescription>),
    NeedsOverride(Vec<(String, Checks)>),
}

fn written(o: Outcome) -> Result<Response, Error> {
    match o {
        Outcome::Written(list) if list.len() == 1 => {
            Ok(Response::json(201, &json!({ "prescription": list[0] })))
        }
        Outcome::Written(list) => Ok(Response::json(201, &json!({ "prescriptions": list }))),
        Outcome::NeedsOverride(checks) => Ok(Response::json(409, &override_body(&checks))),
    }
}

pub fn override_body(checks: &[(String, Checks)]) -> Value {
    json!({
        "error": {
            "code": "override-required",
            "message": "a major interaction or an allergy was found: give an override reason (overrideReason) to prescribe anyway",
        },
        "checks": checks.iter().map(|(drug, c)| json!({"drug": drug, "checks": c})).collect::<Vec<_>>(),
    })
}

fn threshold() -> i64 {
    config::get_integer("interaction-threshold")
        .unwrap_or(1)
        .clamp(1, 3)
}

/// The dispensable unit a bare quantity is in: the product's, else the sig's countable unit.
fn default_unit(form: Form, sig: &sig::Sig) -> Option<&'static str> {
    form.unit().or(match sig.unit.as_str() {
        "tab" => Some("tablet"),
        "cap" => Some("capsule"),
        "patch" => Some("patch"),
        "supp" => Some("suppository"),
        "mL" => Some("mL"),
        _ => None,
    })
}

/// The quantity to dispense (given, or computed from the sig and the product), whether it was
/// computed, and the rules of controlled drugs on quantity, repeats and part-fills.
fn quantities(
    drug: &Drug,
    sig: &sig::Sig,
    input: &RxInput,
) -> Result<(Quantity, bool, Option<PartFill>), Error> {
    let form = Form::of(&drug.form, &drug.route);
    let product = dispense::Product {
        name: &drug.name,
        form: &drug.form,
        route: &drug.route,
        strengths: drug
            .composition
            .iter()
            .map(|c| (c.strength.as_str(), c.unit.as_str()))
            .collect(),
        package: &drug.package,
    };
    let computed = dispense::compute(sig, &product);
    let (quantity, was_computed) = match input.quantity.trim() {
        "" => {
            if let Some(words) = drug.controlled_words() {
                let example = computed
                    .as_ref()
                    .map_or("20 tablets".to_string(), Quantity::text);
                return Err(Error::invalid(format!(
                    "quantity: {} is {words}: write the total quantity to dispense (e.g. {example}); it is printed in words and figures",
                    drug.name
                )));
            }
            match computed {
                Ok(q) => (q, true),
                Err(why) => return Err(Error::invalid(format!("quantity: {why}"))),
            }
        }
        typed => {
            let q =
                dispense::parse_quantity(typed, default_unit(form, sig)).map_err(Error::invalid)?;
            if let Some(wanted) = form.unit()
                && !dispense::compatible(&q.unit, wanted)
            {
                return Err(Error::invalid(format!(
                    "quantity: {} is dispensed in {}, not in {}",
                    drug.name,
                    dispense::plural(wanted),
                    dispense::plural(&q.unit)
                )));
            }
            (q, false)
        }
    };
    if input.repeats > 20 {
        return Err(Error::invalid("repeats: at most 20"));
    }
    match input.repeat_interval_days {
        Some(_) if input.repeats == 0 => {
            return Err(Error::invalid(
                "repeatIntervalDays: there are no repeats to space out",
            ));
        }
        Some(d) if !(1..=365).contains(&d) => {
            return Err(Error::invalid("repeatIntervalDays: 1 to 365 days"));
        }
        _ => {}
    }
    match drug.controlled.as_str() {
        "narcotic" if input.repeats > 0 => {
            return Err(Error::invalid(format!(
                "repeats: {} is a narcotic: a narcotic prescription cannot be repeated. To dispense it in parts, give a part-fill (partFill: quantity and intervalDays)",
                drug.name
            )));
        }
        "controlled-drug" | "targeted-substance"
            if input.repeats > 0 && input.repeat_interval_days.is_none() =>
        {
            return Err(Error::invalid(format!(
                "repeatIntervalDays: {} is {}: say how many days apart its repeats may be filled",
                drug.name,
                drug.controlled_words().unwrap_or("controlled")
            )));
        }
        _ => {}
    }
    let part_fill = match &input.part_fill {
        None => None,
        Some(p) if p.quantity.trim().is_empty() && p.interval_days == 0 => None,
        Some(p) => {
            let part = dispense::parse_quantity(&p.quantity, Some(&quantity.unit))
                .map_err(|e| Error::invalid(format!("partFill.{e}")))?;
            if part.unit != quantity.unit {
                return Err(Error::invalid(format!(
                    "partFill.quantity: in {} like the quantity",
                    quantity.unit
                )));
            }
            if part.value() >= quantity.value() {
                return Err(Error::invalid(format!(
                    "partFill.quantity: less than the whole quantity ({})",
                    quantity.text()
                )));
            }
            if !(1..=365).contains(&p.interval_days) {
                return Err(Error::invalid("partFill.intervalDays: 1 to 365 days"));
            }
            Some(PartFill {
                quantity: part,
                interval_days: p.interval_days,
            })
        }
    };
    Ok((quantity, was_computed, part_fill))
}

/// Builds a prescription from `input`, without checks or storage.
fn build(
    caller: &Caller,
    pid: &str,
    id: String,
    drug: Drug,
    input: &RxInput,
) -> Result<Prescription, Error> {
    let sig = sig::parse(&input.sig).map_err(Error::invalid)?;
    let (quantity, quantity_computed, part_fill) = quantities(&drug, &sig, input)?;
    Ok(prescription(
        caller,
        pid,
        id,
        drug,
        input,
        sig,
        quantity,
        quantity_computed,
        part_fill,
    ))
}

/// A medication prescribed elsewhere: its quantity is whatever is known (given, or computed
/// when the sig allows), never required.
fn build_external(
    caller: &Caller,
    pid: &str,
    id: String,
    drug: Drug,
    input: &RxInput,
) -> Result<Prescription, Error> {
    let sig = sig::parse(&input.sig).map_err(Error::invalid)?;
    let form = Form::of(&drug.form, &drug.route);
    let quantity = match input.quantity.trim() {
        "" => Quantity::default(),
        typed => {
            dispense::parse_quantity(typed, default_unit(form, &sig)).map_err(Error::invalid)?
        }
    };
    let input = RxInput {
        repeats: input.repeats.min(20),
        ..input.clone()
    };
    Ok(prescription(
        caller, pid, id, drug, &input, sig, quantity, false, None,
    ))
}

#[allow(clippy::too_many_arguments)]
fn prescription(
    caller: &Caller,
    pid: &str,
    id: String,
    drug: Drug,
    input: &RxInput,
    sig: sig::Sig,
    quantity: Quantity,
    quantity_computed: bool,
    part_fill: Option<PartFill>,
) -> Prescription {
    let now = now_local();
    Prescription {
        id,
        patient: pid.into(),
        site: caller.site.clone(),
        strength: input.strength.trim().into(),
        sig_text: sig.format(),
        directions: sig.readable(),
        sig,
        quantity,
        quantity_computed,
        repeats: input.repeats,
        repeat_interval_days: input.repeat_interval_days,
        part_fill,
        long_term: input.long_term,
        instructions: input.instructions.trim().into(),
        status: "active".into(),
        external: false,
        prescriber: caller.user.clone(),
        prescriber_name: caller.display_name.clone(),
        written: now.clone(),
        checks: Checks::default(),
        override_reason: None,
        renewed_from: None,
        reason_stopped: None,
        history: vec![Change {
            at: now,
            by: caller.display_name.clone(),
            what: "prescribed".into(),
        }],
        drug,
    }
}

/// Runs the checks on each new prescription against the active list (without itself), then
/// writes them all with `changed`, or asks for an override reason. Audits what happened.
fn check_and_save(
    pid: &str,
    mut new: Vec<Prescription>,
    changed: Vec<(Prescription, Prescription)>,
    skip: &[String],
    override_reason: &str,
) -> Result<Outcome, Error> {
    let list = model::prescriptions(pid)?;
    let allergies = model::allergies(pid)?;
    let active_allergies: Vec<&Allergy> =
        allergies.iter().filter(|a| a.status == "active").collect();
    let threshold = threshold();
    let shared = remote::fetch(pid);
    for rx in &mut new {
        let others: Vec<(&str, &Drug)> = list
            .iter()
            .filter(|p| {
                p.is_active() && !skip.contains(&p.id) && rx.renewed_from.as_ref() != Some(&p.id)
            })
            .map(|p| (p.id.as_str(), &p.drug))
            .collect();
        rx.checks = checks::run(&rx.drug, &others, &shared, &active_allergies, threshold);
    }
    let reason = override_reason.trim();
    if reason.chars().count() > 1000 {
        return Err(Error::invalid("overrideReason: at most 1000 characters"));
    }
    let blocked: Vec<(String, Checks)> = new
        .iter()
        .filter(|rx| rx.checks.requires_override())
        .map(|rx| (rx.drug.name.clone(), rx.checks.clone()))
        .collect();
    if !blocked.is_empty() && reason.is_empty() {
        return Ok(Outcome::NeedsOverride(blocked));
    }
    for rx in &mut new {
        if rx.checks.requires_override() {
            rx.override_reason = Some(reason.to_string());
        }
    }
    let announce = events::prescribed(pid, &new);
    model::save(pid, &new, &changed, &[announce])?;
    for rx in &new {
        let what = format!("{} {} — {}", rx.drug.name, rx.strength, rx.sig_text);
        audit::record("prescription.create", Some(pid), Some(&what))?;
        if rx.checks.status != "checked" {
            audit::record(
                "prescription.unchecked",
                Some(pid),
                Some(&format!("{what}: {}", rx.checks.message)),
            )?;
        }
        if let Some(reason) = &rx.override_reason {
            let warnings: Vec<String> = rx
                .checks
                .warnings
                .iter()
                .filter(|w| w.blocking)
                .map(|w| {
                    if w.source.is_empty() {
                        w.message.clone()
                    } else {
                        format!("{} [{}, row {}]", w.message, w.source, w.source_id)
                    }
                })
                .collect();
            audit::record(
                "prescription.override",
                Some(pid),
                Some(&format!(
                    "{what}; reason: {reason}; warnings: {}",
                    warnings.join(" | ")
                )),
            )?;
        }
    }
    Ok(Outcome::Written(new))
}

/// Lengths of the free texts.
fn check_texts(input: &RxInput) -> Result<(), Error> {
    if input.instructions.chars().count() > 1000 {
        return Err(Error::invalid("instructions: at most 1000 characters"));
    }
    Ok(())
}

pub fn prescribe(caller: &Caller, pid: &str, input: &RxInput) -> Result<Outcome, Error> {
    physician(caller)?;
    model::check_patient_id(pid)?;
    check_texts(input)?;
    // The drug before the chart, as in `check_only`.
    let (drug, strength) = resolve_drug(input)?;
    patient(pid)?;
    let input = RxInput {
        strength,
        ..input.clone()
    };
    let rx = build(
        caller,
        pid,
        model::new_ids(pid, "rx/", 1)?.remove(0),
        drug,
        &input,
    )?;
    check_and_save(pid, vec![rx], vec![], &[], &input.override_reason)
}

/// The checks a prescribe would run, without writing anything: interactions with every
/// active medication, allergies and posts.
pub fn check_only(caller: &Caller, pid: &str, input: &RxInput) -> Result<(Drug, Checks), Error> {
    clinician(caller)?;
    model::check_patient_id(pid)?;
    // The drug first: a drug that cannot be prescribed is refused before the chart is read,
    // and every read of the chart comes before the first check the drug reference makes, so
    // the host puts them on disk while the reference works (one sync, not one per call).
    let (drug, _) = resolve_drug(input)?;
    // Read (and so audited) like any chart opened, but only its existence matters here.
    opened(pid, patients::get_as::<serde::de::IgnoredAny>)?;
    // Only the id, status and drug of each medication: a check reads nothing else of them.
    let list = model::listed(pid)?;
    let allergies = model::allergies(pid)?;
    let others: Vec<(&str, &Drug)> = list
        .iter()
        .filter(|p| p.is_active())
        .map(|p| (p.id.as_str(), &p.drug))
        .collect();
    let active: Vec<&Allergy> = allergies.iter().filter(|a| a.status == "active").collect();
    let shared = remote::fetch(pid);
    let checks = checks::run(&drug, &others, &shared, &active, threshold());
    Ok((drug, checks))
}

/// Records a medication prescribed elsewhere, for the list (not checked: it is already taken).
pub fn record_external(caller: &Caller, pid: &str, input: &RxInput) -> Result<Prescription, Error> {
    clinician(caller)?;
    patient(pid)?;
    let (drug, strength) = resolve_drug(input)?;
    let input = RxInput {
        strength,
        ..input.clone()
    };
    check_texts(&input)?;
    let id = model::new_ids(pid, "rx/", 1)?.remove(0);
    let mut rx = build_external(caller, pid, id, drug, &input)?;
    rx.external = true;
    rx.prescriber = String::new();
    rx.prescriber_name = match input.prescriber.trim() {
        "" => "elsewhere".into(),
        p => p.chars().take(200).collect(),
    };
    rx.checks = Checks {
        status: "not-applicable".into(),
        message: format!("Prescribed elsewhere; recorded by {}.", caller.display_name),
        ..Checks::default()
    };
    rx.history[0].what = "recorded (prescribed elsewhere)".into();
    model::save(pid, std::slice::from_ref(&rx), &[], &[])?;
    audit::record("medication.record", Some(pid), Some(&rx.drug.name))?;
    Ok(rx)
}

/// Re-prescribes `ids` (all active long-term medications when `None`): new prescriptions,
/// checked again; the old ones are completed, pointing at their renewal.
pub fn renew(
    caller: &Caller,
    pid: &str,
    ids: Option<&[String]>,
    override_reason: &str,
) -> Result<Outcome, Error> {
    physician(caller)?;
    patient(pid)?;
    let list = model::prescriptions(pid)?;
    let old: Vec<&Prescription> = match ids {
        Some(ids) => {
            let mut out = Vec::new();
            for id in ids {
                let rx = list
                    .iter()
                    .find(|p| &p.id == id)
                    .ok_or_else(|| Error::not_found(format!("no prescription {id}")))?;
                if !rx.is_active() {
                    return Err(Error::conflict(format!(
                        "prescription {id} is {}: only an active one is renewed",
                        rx.status
                    )));
                }
                out.push(rx);
            }
            out
        }
        None => list
            .iter()
            .filter(|p| p.is_active() && p.long_term)
            .collect(),
    };
    if old.is_empty() {
        return Err(Error::conflict(
            "there are no active long-term medications to renew",
        ));
    }
    let new_ids = model::new_ids(pid, "rx/", old.len())?;
    let now = now_local();
    let mut new = Vec::new();
    let mut changed = Vec::new();
    for (rx, id) in old.iter().zip(new_ids) {
        let input = RxInput {
            strength: rx.strength.clone(),
            sig: rx.sig_text.clone(),
            quantity: if rx.quantity_computed {
                String::new()
            } else {
                rx.quantity.text()
            },
            repeats: rx.repeats,
            repeat_interval_days: rx.repeat_interval_days,
            part_fill: rx.part_fill.as_ref().map(|p| PartFillInput {
                quantity: p.quantity.text(),
                interval_days: p.interval_days,
            }),
            long_term: rx.long_term,
            instructions: rx.instructions.clone(),
            ..RxInput::default()
        };
        let mut n =
            build(caller, pid, id.clone(), reverify(&rx.drug)?, &input).map_err(|e| match e {
                Error::Invalid(m) => {
                    Error::invalid(format!("{} cannot be renewed as it was: {m}", rx.drug.name))
                }
                e => e,
            })?;
        n.renewed_from = Some(rx.id.clone());
        n.history[0].what = format!("renewed from {}", rx.id);
        let mut done = (*rx).clone();
        done.status = "completed".into();
        done.history.push(Change {
            at: now.clone(),
            by: caller.display_name.clone(),
            what: format!("renewed as {id}"),
        });
        changed.push(((*rx).clone(), done));
        new.push(n);
    }
    check_and_save(pid, new, changed, &[], override_reason)
}

/// A renewal's drug, confirmed again by the drug reference: a DIN is verified for the new
/// prescription only if the reference confirms it now; when the reference is away the drug is
/// kept as it was, unverified.
fn reverify(drug: &Drug) -> Result<Drug, Error> {
    let Some(din) = drug.din.as_deref().filter(|_| !drug.custom) else {
        return Ok(drug.clone());
    };
    match lookup::get(din) {
        Ok(Some(p)) if p.status == lookup::ProductStatus::Cancelled => {
            Err(Error::conflict(format!(
                "{} (DIN {din}) has been cancelled: prescribe another product",
                p.brand_name
            )))
        }
        Ok(Some(p)) => Ok(from_product(p).0),
        Ok(None) => Err(Error::conflict(format!(
            "{} (DIN {din}) is no longer in the drug reference: prescribe another product",
            drug.name
        ))),
        Err(_) => Ok(Drug {
            verified: false,
            ..drug.clone()
        }),
    }
}

/// FHIR status changes a prescriber may make.
fn allowed(from: &str, to: &str) -> bool {
    match (from, to) {
        (_, "entered-in-error") => from != "entered-in-error",
        ("active", "on-hold" | "stopped" | "completed" | "cancelled") => true,
        ("on-hold", "active" | "stopped" | "cancelled") => true,
        ("draft", "cancelled") => true,
        _ => false,
    }
}

pub fn change_status(
    caller: &Caller,
    pid: &str,
    id: &str,
    status: &str,
    reason: &str,
) -> Result<Prescription, Error> {
    physician(caller)?;
    patient(pid)?;
    if !model::STATUSES.contains(&status) {
        return Err(Error::invalid(format!(
            "status: one of {}",
            model::STATUSES.join(", ")
        )));
    }
    let reason = reason.trim();
    if matches!(status, "stopped" | "cancelled" | "entered-in-error") && reason.is_empty() {
        return Err(Error::invalid("reason: say why"));
    }
    if reason.chars().count() > 500 {
        return Err(Error::invalid("reason: at most 500 characters"));
    }
    let old = model::prescription(pid, id)?;
    if !allowed(&old.status, status) {
        return Err(Error::conflict(format!(
            "a prescription that is {} cannot become {status}",
            old.status
        )));
    }
    let mut rx = old.clone();
    rx.status = status.into();
    if status == "stopped" {
        rx.reason_stopped = Some(reason.into());
    }
    rx.history.push(Change {
        at: now_local(),
        by: caller.display_name.clone(),
        what: if reason.is_empty() {
            status.to_string()
        } else {
            format!("{status}: {reason}")
        },
    });
    let announce: Vec<model::Announce> = events::discontinued(pid, &rx).into_iter().collect();
    model::save(pid, &[], &[(old, rx.clone())], &announce)?;
    audit::record(
        "prescription.status",
        Some(pid),
        Some(&format!(
            "{} → {status}{}",
            rx.drug.name,
            if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            }
        )),
    )?;
    Ok(rx)
}

// The rest of the JSON API.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SigOut {
    sig: sig::Sig,
    text: String,
    readable: String,
    /// What the directions use in all, in the sig's own unit (`10500 mg`), or why not.
    total: Option<Value>,
    total_why: Option<String>,
    /// With `din`: the quantity to dispense in the product's unit (`21 tablets`), or why not.
    quantity: Option<Quantity>,
    quantity_text: Option<String>,
    quantity_why: Option<String>,
}

fn sig_api(req: &Request, _: &Params) -> Result<Response, Error> {
    let text = req.query_param("text").unwrap_or_default();
    let sig = sig::parse(&text).map_err(Error::invalid)?;
    let (total, total_why) = match sig.total() {
        Ok((amount, unit)) => (
            Some(json!({"amount": crate::sig::plain(amount), "unit": unit})),
            None,
        ),
        Err(why) => (None, Some(why)),
    };
    let (mut quantity, mut quantity_why) = (None, None);
    if let Some(din) = req.query_param("din").filter(|d| !d.is_empty()) {
        let (drug, _) = resolve(&RxInput {
            din,
            ..RxInput::default()
        })?;
        match quantities(&drug, &sig, &RxInput::default()) {
            Ok((q, _, _)) => quantity = Some(q),
            Err(e) => quantity_why = Some(e.message().to_string()),
        }
    }
    Ok(Response::json(
        200,
        &SigOut {
            text: sig.format(),
            readable: sig.readable(),
            total,
            total_why,
            quantity_text: quantity.as_ref().map(Quantity::text),
            quantity,
            quantity_why,
            sig,
        },
    ))
}

fn summary_api(_req: &Request, params: &Params) -> Result<Response, Error> {
    let pid = &params["pid"];
    let p = patient(pid)?;
    let list = model::prescriptions(pid)?;
    Ok(Response::json(
        200,
        &json!({
            "patient": {"id": pid, "name": patient_name(&p), "birthDate": p["birthDate"]},
            "allergies": model::allergies(pid)?,
            "active": list.iter().filter(|r| r.is_active()).collect::<Vec<_>>(),
            "longTerm": list.iter().filter(|r| r.is_active() && r.long_term).collect::<Vec<_>>(),
            "past": list.iter().filter(|r| !r.is_active()).collect::<Vec<_>>(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_changes_follow_fhir() {
        assert!(allowed("active", "stopped"));
        assert!(allowed("active", "on-hold"));
        assert!(allowed("on-hold", "active"));
        assert!(allowed("completed", "entered-in-error"));
        assert!(!allowed("stopped", "active"));
        assert!(!allowed("entered-in-error", "entered-in-error"));
        assert!(!allowed("completed", "active"));
    }

    #[test]
    fn atc_codes_are_checked() {
        assert_eq!(valid_atc("j01c").as_deref(), Some("J01C"));
        assert!(valid_atc("penicillin").is_none());
    }

    #[test]
    fn names_read_from_fhir() {
        let p = json!({"name": [{"family": "Nguyen", "given": ["Anh", "Thi"]}]});
        assert_eq!(patient_name(&p), "Anh Thi Nguyen");
        assert_eq!(patient_name(&json!({})), "(no name)");
    }
}
