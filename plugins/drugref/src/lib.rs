//! The drug reference (OSCAR's drugref and MyDrugRef): drug products, an interaction table
//! keyed by WHO ATC codes and classes, allergy checks, and clinicians' posts. It exports
//! `osler:drugref/lookup@0.3.1` (`wit/lookup.wit`), which prescribing imports.
//!
//! See README.md for the routes, the storage layout and the import formats.

pub mod allergens;
pub mod atc;
pub mod check;
pub mod data;
mod pages;
pub mod posts;
pub mod seed;
pub mod store;

use osler_sdk::{Caller, Error, Params, Plugin, Request, Response, Router, audit};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::data::{Controlled, Interaction, LineError, Product, Vet};

mod bindings {
    osler_sdk::generate!({
        path: ["../../wit/v0.2.0", "wit"],
        world: "osler:drugref/drugref",
    });
}

use bindings::exports::osler::drugref::lookup as wit;

struct Drugref;

impl Plugin for Drugref {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/", pages::home)
            .get("/drugs/{din}", pages::product)
            .get("/import", pages::import_page)
            .post("/import/{table}", pages::import_form)
            .get("/posts", pages::posts_page)
            .post("/posts", pages::post_form)
            .post("/posts/{id}/edit", pages::edit_form)
            .post("/posts/{id}/hide", pages::hide_form)
            .post("/trust", pages::trust_form)
            .get("/api/drugs", search_api)
            .get("/api/drugs/{din}", product_api)
            .post("/api/interactions", interactions_api)
            .post("/api/allergies", allergies_api)
            .post("/api/allergies/describe", describe_api)
            .get("/api/tables", tables_api)
            .post("/api/import/{table}", import_api)
            .get("/api/posts", posts_api)
            .post("/api/posts", |req, _| {
                Ok(Response::json(
                    201,
                    &posts::create(req.caller(), &req.json()?)?,
                ))
            })
            .put("/api/posts/{id}", |req, p| {
                Ok(Response::json(
                    200,
                    &posts::edit(req.caller(), &p["id"], &req.json()?)?,
                ))
            })
            .post("/api/posts/{id}/hide", |req, p| {
                posts::hide(&req.caller().user, &p["id"])?;
                Ok(Response::empty(204))
            })
            .put("/api/trust/{author}", |req, p| {
                posts::trust(&req.caller().user, &p["author"], true)?;
                Ok(Response::empty(204))
            })
            .delete("/api/trust/{author}", |req, p| {
                posts::trust(&req.caller().user, &p["author"], false)?;
                Ok(Response::empty(204))
            })
            .handle(&req)
    }
}

osler_sdk::export_plugin!(Drugref with_bindings bindings);

// What the interface and the JSON API share.

/// A drug to check, as the JSON API takes it (the interface's `drug`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DrugIn {
    pub key: String,
    pub name: String,
    pub din: Option<String>,
    pub atc: Option<String>,
    pub ingredients: Vec<String>,
}

/// Another row that applied to the same pair, as the JSON API returns it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlsoOut {
    pub source: String,
    pub id: String,
    pub significance: Option<u8>,
    pub summary: String,
}

/// The interaction of one pair of drugs, as the JSON API returns it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundOut {
    /// The `key`s of the drug acting and of the drug acted on (the row's direction).
    pub affecting: String,
    pub affected: String,
    /// `Warfarin's effect is increased by Ibuprofen.`
    pub summary: String,
    /// The table the row comes from.
    pub source: String,
    /// The row: `id`, `atcA` (the affecting code), `atcB`, `effect`, `significance`, …
    #[serde(flatten)]
    pub row: Interaction,
    pub also: Vec<AlsoOut>,
}

/// A drug or an allergy that could not be checked, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Unchecked {
    pub key: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub interactions: Vec<FoundOut>,
    pub unchecked: Vec<Unchecked>,
}

/// What is known of a drug to check.
struct Known {
    name: String,
    /// Its own substance-level code, if any.
    atc: Option<String>,
    /// Every code it is checked under (its own, and each ingredient's for a combination).
    codes: Vec<check::Code>,
    /// Ingredients, as base names.
    ingredients: Vec<String>,
    /// Why (part of) it could not be checked for interactions.
    unchecked: Vec<String>,
}

/// What is known of a drug: from the reference when it has the DIN, else as described; a
/// combination's ingredients (or a drug described only by its ingredient) get their codes
/// from the single-ingredient products.
fn known(d: &DrugIn) -> Result<Known, Error> {
    let (name, atc, ingredients) = match d.din.as_deref().filter(|d| !d.is_empty()) {
        Some(din) => match store::product_codes(din)? {
            Some(p) => (
                if d.name.is_empty() {
                    p.brand_name.clone()
                } else {
                    d.name.clone()
                },
                Some(p.atc).filter(|a| !a.is_empty()),
                p.ingredients.into_iter().map(|i| i.name).collect(),
            ),
            None => described(d),
        },
        None => described(d),
    };
    let mut bases: Vec<String> = Vec::new();
    for i in &ingredients {
        let b = atc::base_name(i);
        if !b.is_empty() && !bases.contains(&b) {
            bases.push(b);
        }
    }
    let mut codes = Vec::new();
    let mut unchecked = Vec::new();
    let own = atc.as_deref().filter(|a| a.len() == 7);
    if let Some(code) = own {
        codes.push(check::Code {
            code: code.to_string(),
            via: None,
        });
    }
    let combination = bases.len() > 1;
    if combination || own.is_none() {
        for b in &bases {
            let found = store::ingredient_codes(b)?;
            if found.is_empty() && combination {
                unchecked.push(match own {
                    Some(code) => format!(
                        "{b} (in {name}) has no ATC code of its own in the drug reference: it was checked only as part of {code}"
                    ),
                    None => format!(
                        "{b} (in {name}) has no ATC code in the drug reference: its interactions were not checked"
                    ),
                });
            }
            for code in found {
                if !codes.iter().any(|c| c.code == code) {
                    codes.push(check::Code {
                        code,
                        via: combination.then(|| b.clone()),
                    });
                }
            }
        }
    }
    if codes.is_empty() {
        unchecked.push(match &atc {
            Some(class) => format!("{name} has only the ATC class {class}, not a substance code"),
            None => format!("{name} has no ATC code: its interactions cannot be checked"),
        });
    }
    Ok(Known {
        name,
        atc,
        codes,
        ingredients: bases,
        unchecked,
    })
}

fn described(d: &DrugIn) -> (String, Option<String>, Vec<String>) {
    (
        if d.name.is_empty() {
            d.key.clone()
        } else {
            d.name.clone()
        },
        d.atc.as_deref().and_then(atc::normalize),
        d.ingredients.clone(),
    )
}

/// The name of a drug as it acts through a code: `Zestoretic (hydrochlorothiazide)`.
fn acting_name(k: &Known, code: &check::Code) -> String {
    match &code.via {
        Some(i) => format!("{} ({i})", k.name),
        None => k.name.clone(),
    }
}

/// The interactions between any two of `drugs`.
pub fn interactions(drugs: &[DrugIn]) -> Result<Report, Error> {
    interactions_with(drugs, &[])
}

/// The interactions between each of `drugs` and each of `against`, and between any two of
/// `drugs`; never between two of `against` (a new drug against the medication list). Each pair
/// is reported as [`interactions`] reports it for `drugs` followed by `against`, and so is what
/// could not be checked, of both lists.
pub fn interactions_with(drugs: &[DrugIn], against: &[DrugIn]) -> Result<Report, Error> {
    if drugs.len() + against.len() > 200 {
        return Err(Error::too_large("at most 200 drugs in one check"));
    }
    let given: Vec<&DrugIn> = drugs.iter().chain(against).collect();
    let new: Vec<bool> = (0..given.len()).map(|i| i < drugs.len()).collect();
    let mut all = Vec::new();
    let mut unchecked = Vec::new();
    for &d in &given {
        let k = known(d)?;
        unchecked.extend(k.unchecked.iter().map(|reason| Unchecked {
            key: d.key.clone(),
            reason: reason.clone(),
        }));
        all.push(k);
    }
    let codes: Vec<Vec<check::Code>> = all
        .iter_mut()
        .map(|k| std::mem::take(&mut k.codes))
        .collect();
    let mut tables = store::KvTable::sources()?;
    let names: Vec<String> = tables.iter().map(|t| t.source.clone()).collect();
    let mut sources: Vec<&mut dyn check::Table> = tables
        .iter_mut()
        .map(|t| t as &mut dyn check::Table)
        .collect();
    let alerts = check::interactions_with(&codes, &new, &mut sources)?;
    let words = |h: &check::Hit| {
        check::summary(
            &acting_name(&all[h.affecting], &h.affecting_code),
            &acting_name(&all[h.affected], &h.affected_code),
            h.row.effect,
        )
    };
    // A chosen row that gives no direction quotes the pair's most significant row that does.
    let summary = |a: &check::Alert| {
        let mut s = words(&a.hit);
        if !check::directed(&a.hit.row)
            && let Some(h) = a.also.iter().find(|h| check::directed(&h.row))
        {
            s += &format!(" ({}, row {}: {})", names[h.source], h.row.id, words(h));
        }
        s
    };
    Ok(Report {
        interactions: alerts
            .into_iter()
            .map(|a| FoundOut {
                affecting: given[a.hit.affecting].key.clone(),
                affected: given[a.hit.affected].key.clone(),
                summary: summary(&a),
                source: names[a.hit.source].clone(),
                also: a
                    .also
                    .iter()
                    .map(|h| AlsoOut {
                        source: names[h.source].clone(),
                        id: h.row.id.clone(),
                        significance: h.row.significance,
                        summary: words(h),
                    })
                    .collect(),
                row: a.hit.row,
            })
            .collect(),
        unchecked,
    })
}

#[derive(Clone, Debug, Deserialize)]
pub struct AllergyIn {
    pub key: String,
    /// `atc`, `ingredient`, `brand` or `free-text`.
    pub kind: String,
    pub allergen: String,
}

impl AllergyIn {
    fn kind(&self) -> Result<allergens::Kind, Error> {
        Ok(match self.kind.as_str() {
            "atc" => allergens::Kind::Atc,
            "ingredient" => allergens::Kind::Ingredient,
            "brand" => allergens::Kind::Brand,
            "free-text" => allergens::Kind::FreeText,
            k => {
                return Err(Error::invalid(format!(
                    "kind: {k:?} is not atc, ingredient, brand or free-text"
                )));
            }
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AllergyWarning {
    pub allergy: String,
    /// `match` or `cross-sensitivity`.
    pub kind: &'static str,
    /// For a cross-sensitivity: `low`, `moderate` or `high`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<allergens::Risk>,
    /// The allergen group it came through, when one.
    pub group: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AllergyReport {
    pub warnings: Vec<AllergyWarning>,
    pub unchecked: Vec<Unchecked>,
}

/// The product table, as the allergy check reads it.
struct KvProducts;

impl allergens::Products for KvProducts {
    fn codes_of_ingredient(&mut self, base: &str) -> Vec<String> {
        store::ingredient_codes(base).unwrap_or_default()
    }

    fn brand(&mut self, folded: &str) -> Vec<(Vec<String>, String)> {
        store::brand_products(folded)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| atc::fold(&p.brand_name) == folded)
            .map(|p| {
                (
                    p.ingredients
                        .iter()
                        .map(|i| atc::base_name(&i.name))
                        .collect(),
                    p.atc,
                )
            })
            .collect()
    }
}

pub fn allergies(drug: &DrugIn, list: &[AllergyIn]) -> Result<AllergyReport, Error> {
    if list.len() > 200 {
        return Err(Error::too_large("at most 200 allergies in one check"));
    }
    let k = known(drug)?;
    if list.is_empty() {
        // Nothing to check the drug against: the allergen table is not read.
        return Ok(AllergyReport {
            warnings: Vec::new(),
            unchecked: Vec::new(),
        });
    }
    let table = store::allergen_table()?;
    let drug = allergens::Drug {
        name: k.name.clone(),
        codes: k
            .codes
            .iter()
            .map(|c| c.code.clone())
            .chain(k.atc.clone())
            .collect(),
        ingredients: k.ingredients.clone(),
    };
    let mut report = AllergyReport {
        warnings: Vec::new(),
        unchecked: Vec::new(),
    };
    for a in list {
        let outcome = match allergens::resolve(&table, &mut KvProducts, a.kind()?, &a.allergen) {
            Ok(resolved) => allergens::check(&table, &drug, &resolved),
            Err(why) => allergens::Outcome::Unchecked(why),
        };
        match outcome {
            allergens::Outcome::Matches(reason) => report.warnings.push(AllergyWarning {
                allergy: a.key.clone(),
                kind: "match",
                risk: None,
                group: String::new(),
                reason,
            }),
            allergens::Outcome::Caution {
                group,
                risk,
                reason,
            } => report.warnings.push(AllergyWarning {
                allergy: a.key.clone(),
                kind: "cross-sensitivity",
                risk: Some(risk),
                group,
                reason,
            }),
            allergens::Outcome::Unchecked(reason) => report.unchecked.push(Unchecked {
                key: a.key.clone(),
                reason,
            }),
            allergens::Outcome::Clear => {}
        }
    }
    Ok(report)
}

/// How the reference understands an allergy.
#[derive(Clone, Debug, Serialize)]
pub struct AllergenInfo {
    pub key: String,
    pub checked: bool,
    pub description: String,
}

pub fn describe_allergies(list: &[AllergyIn]) -> Result<Vec<AllergenInfo>, Error> {
    if list.len() > 200 {
        return Err(Error::too_large("at most 200 allergies at once"));
    }
    let table = store::allergen_table()?;
    list.iter()
        .map(|a| {
            Ok(
                match allergens::resolve(&table, &mut KvProducts, a.kind()?, &a.allergen) {
                    Ok(r) => AllergenInfo {
                        key: a.key.clone(),
                        checked: true,
                        description: format!("checked as {}", r.described),
                    },
                    Err(why) => AllergenInfo {
                        key: a.key.clone(),
                        checked: false,
                        description: why,
                    },
                },
            )
        })
        .collect()
}

// The exported interface.

impl From<wit::Drug> for DrugIn {
    fn from(d: wit::Drug) -> DrugIn {
        DrugIn {
            key: d.key,
            name: d.name,
            din: d.din,
            atc: d.atc,
            ingredients: d.ingredients,
        }
    }
}

fn product_out(p: Product) -> wit::Product {
    let controlled = match p.controlled() {
        Controlled::No => wit::Controlled::No,
        Controlled::Narcotic => wit::Controlled::Narcotic,
        Controlled::ControlledDrug => wit::Controlled::ControlledDrug,
        Controlled::TargetedSubstance => wit::Controlled::TargetedSubstance,
    };
    wit::Product {
        din: p.din,
        brand_name: p.brand_name,
        ingredients: p
            .ingredients
            .into_iter()
            .map(|i| wit::Ingredient {
                name: i.name,
                strength: i.strength,
                unit: i.unit,
            })
            .collect(),
        dosage_form: p.dosage_form,
        route: p.route,
        atc: p.atc,
        schedule: p.schedule,
        controlled,
        package_size: p.package,
        status: if p.status == "cancelled" {
            wit::ProductStatus::Cancelled
        } else {
            wit::ProductStatus::Marketed
        },
        sample: p.sample,
    }
}

fn not_checked(list: Vec<Unchecked>) -> Vec<wit::NotChecked> {
    list.into_iter()
        .map(|u| wit::NotChecked {
            key: u.key,
            reason: u.reason,
        })
        .collect()
}

fn significance_out(s: Option<u8>) -> Option<wit::Significance> {
    match s {
        Some(1) => Some(wit::Significance::Minor),
        Some(2) => Some(wit::Significance::Moderate),
        Some(3) => Some(wit::Significance::Major),
        _ => None,
    }
}

fn interaction_out(f: FoundOut) -> wit::Interaction {
    let r = f.row;
    wit::Interaction {
        affecting: f.affecting,
        affected: f.affected,
        affecting_code: r.atc_a,
        affected_code: r.atc_b,
        affecting_name: r.name_a,
        affected_name: r.name_b,
        effect: match r.effect {
            'A' => wit::Effect::Augments,
            'I' => wit::Effect::Inhibits,
            'N' | 'n' | 'a' | 'i' => wit::Effect::NoEffect,
            _ => wit::Effect::Unknown,
        },
        significance: significance_out(r.significance),
        evidence: match r.evidence {
            Some('P') => Some(wit::Evidence::Poor),
            Some('F') => Some(wit::Evidence::Fair),
            Some('G') => Some(wit::Evidence::Good),
            _ => None,
        },
        comment: r.comment,
        summary: f.summary,
        source: f.source,
        source_id: r.id,
        also: f
            .also
            .into_iter()
            .map(|a| wit::RowRef {
                source: a.source,
                source_id: a.id,
                significance: significance_out(a.significance),
                summary: a.summary,
            })
            .collect(),
    }
}

fn drugs_in(list: Vec<wit::Drug>) -> Vec<DrugIn> {
    list.into_iter().map(DrugIn::from).collect()
}

fn report_out(r: Report) -> wit::InteractionReport {
    wit::InteractionReport {
        interactions: r.interactions.into_iter().map(interaction_out).collect(),
        unchecked: not_checked(r.unchecked),
    }
}

fn allergies_in(list: Vec<wit::Allergy>) -> Vec<AllergyIn> {
    list.into_iter()
        .map(|a| AllergyIn {
            key: a.key,
            kind: match a.kind {
                wit::AllergenKind::Atc => "atc",
                wit::AllergenKind::Ingredient => "ingredient",
                wit::AllergenKind::Brand => "brand",
                wit::AllergenKind::FreeText => "free-text",
            }
            .into(),
            allergen: a.allergen,
        })
        .collect()
}

impl wit::Guest for Drugref {
    fn search(q: wit::SearchQuery) -> Result<Vec<wit::Product>, Error> {
        let found = store::search(
            q.text.as_deref(),
            q.atc.as_deref(),
            q.include_cancelled,
            q.limit as usize,
        )?;
        Ok(found.into_iter().map(product_out).collect())
    }

    fn get(din: String) -> Result<Option<wit::Product>, Error> {
        Ok(store::product(&din)?.map(product_out))
    }

    fn interactions(drugs: Vec<wit::Drug>) -> Result<wit::InteractionReport, Error> {
        Ok(report_out(interactions(&drugs_in(drugs))?))
    }

    /// A new drug against the medication list: partners are looked up for `drugs`' codes
    /// only, and pairs within `against` are never checked.
    fn interactions_with(
        drugs: Vec<wit::Drug>,
        against: Vec<wit::Drug>,
    ) -> Result<wit::InteractionReport, Error> {
        Ok(report_out(interactions_with(
            &drugs_in(drugs),
            &drugs_in(against),
        )?))
    }

    fn allergy_warnings(
        drug: wit::Drug,
        list: Vec<wit::Allergy>,
    ) -> Result<wit::AllergyReport, Error> {
        let r = allergies(&drug.into(), &allergies_in(list))?;
        Ok(wit::AllergyReport {
            warnings: r
                .warnings
                .into_iter()
                .map(|w| wit::AllergyWarning {
                    allergy: w.allergy,
                    match_: match w.risk {
                        None => wit::AllergyMatch::Direct,
                        Some(allergens::Risk::Low) => {
                            wit::AllergyMatch::CrossSensitivity(wit::Risk::Low)
                        }
                        Some(allergens::Risk::Moderate) => {
                            wit::AllergyMatch::CrossSensitivity(wit::Risk::Moderate)
                        }
                        Some(allergens::Risk::High) => {
                            wit::AllergyMatch::CrossSensitivity(wit::Risk::High)
                        }
                    },
                    group: w.group,
                    reason: w.reason,
                })
                .collect(),
            unchecked: not_checked(r.unchecked),
        })
    }

    fn describe_allergies(list: Vec<wit::Allergy>) -> Result<Vec<wit::AllergenInfo>, Error> {
        Ok(describe_allergies(&allergies_in(list))?
            .into_iter()
            .map(|i| wit::AllergenInfo {
                key: i.key,
                checked: i.checked,
                description: i.description,
            })
            .collect())
    }

    /// As the person the call serves sees them (their trust list and hidden posts); the host
    /// says who that is, so an importer cannot choose someone else's view.
    fn posts(codes: Vec<String>) -> Result<Vec<wit::Post>, Error> {
        let viewer = osler_sdk::context::person()
            .map(|c| c.user)
            .unwrap_or_default();
        let shown = posts::for_codes(&codes, &viewer)?;
        Ok(shown
            .into_iter()
            .map(|s| wit::Post {
                id: s.post.id,
                atc: s.post.atc,
                kind: match s.post.kind.as_str() {
                    "warning" => wit::PostKind::Warning,
                    "bulletin" => wit::PostKind::Bulletin,
                    _ => wit::PostKind::Comment,
                },
                title: s.post.title,
                body: s.post.body,
                author: s.post.author,
                author_name: s.post.author_name,
                updated: s.post.updated,
                trusted: s.trusted,
            })
            .collect())
    }
}

// The JSON API.

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct SearchParams {
    q: Option<String>,
    atc: Option<String>,
    #[serde(default)]
    cancelled: bool,
    limit: Option<usize>,
}

fn search_api(req: &Request, _: &Params) -> Result<Response, Error> {
    let p: SearchParams = req.query()?;
    let found = store::search(
        p.q.as_deref(),
        p.atc.as_deref(),
        p.cancelled,
        p.limit.unwrap_or(25),
    )?;
    Ok(Response::json(200, &found))
}

fn product_api(_: &Request, params: &Params) -> Result<Response, Error> {
    let din = &params["din"];
    let p = store::product(din)?
        .ok_or_else(|| Error::not_found(format!("no product with DIN {din}")))?;
    Ok(Response::json(200, &p))
}

#[derive(Deserialize)]
struct InteractionsBody {
    drugs: Vec<DrugIn>,
    /// A list to check `drugs` against (a patient's medications): pairs within it are not
    /// reported, as with `interactions-with`.
    #[serde(default)]
    against: Vec<DrugIn>,
}

fn interactions_api(req: &Request, _: &Params) -> Result<Response, Error> {
    let body: InteractionsBody = req.json()?;
    Ok(Response::json(
        200,
        &interactions_with(&body.drugs, &body.against)?,
    ))
}

#[derive(Deserialize)]
struct AllergiesBody {
    drug: DrugIn,
    allergies: Vec<AllergyIn>,
}

fn allergies_api(req: &Request, _: &Params) -> Result<Response, Error> {
    let body: AllergiesBody = req.json()?;
    Ok(Response::json(
        200,
        &allergies(&body.drug, &body.allergies)?,
    ))
}

fn tables_api(_: &Request, _: &Params) -> Result<Response, Error> {
    let mut out = serde_json::Map::new();
    for kind in store::Kind::ALL {
        out.insert(
            kind.name().into(),
            serde_json::to_value(store::live(kind)?).unwrap_or_default(),
        );
    }
    Ok(Response::json(200, &out))
}

#[derive(Deserialize)]
struct DescribeBody {
    allergies: Vec<AllergyIn>,
}

fn describe_api(req: &Request, _: &Params) -> Result<Response, Error> {
    let body: DescribeBody = req.json()?;
    Ok(Response::json(200, &describe_allergies(&body.allergies)?))
}

/// What an import did, or why it was refused.
pub enum Imported {
    Done {
        meta: store::Meta,
        /// Lines left out on purpose (ATCvet rows with `atcvet=skip`).
        skipped: Vec<LineError>,
    },
    Refused(Vec<LineError>),
}

/// Parses the whole file, then imports it atomically. Administrators only. `vet` says what
/// to do with interaction rows that use ATCvet codes.
pub fn import(
    caller: &Caller,
    table: &str,
    text: &str,
    source: &str,
    vet: Vet,
) -> Result<Imported, Error> {
    if !caller.has_role("admin") {
        return Err(Error::denied("only an administrator imports drug data"));
    }
    let kind = store::Kind::parse(table).ok_or_else(|| {
        Error::not_found(format!(
            "no table {table:?}: products, interactions, supplement or allergens"
        ))
    })?;
    let source = if source.trim().is_empty() {
        "upload"
    } else {
        source.trim()
    };
    let mut skipped = Vec::new();
    let meta = match kind {
        store::Kind::Products => match data::parse_products(text) {
            Ok(rows) => store::import_products(&rows, &caller.user, source)?,
            Err(lines) => return Ok(Imported::Refused(lines)),
        },
        store::Kind::Interactions | store::Kind::Supplement => {
            match data::parse_interactions(text, vet) {
                Ok(parsed) => {
                    skipped = parsed.skipped;
                    store::import_interactions(
                        kind,
                        &parsed.rows,
                        &caller.user,
                        source,
                        skipped.len(),
                    )?
                }
                Err(lines) => return Ok(Imported::Refused(lines)),
            }
        }
        store::Kind::Allergens => match allergens::parse(text) {
            Ok(table) => store::import_allergens(&table, &caller.user, source)?,
            Err(lines) => return Ok(Imported::Refused(lines)),
        },
    };
    audit::record(
        "drugref.import",
        None,
        Some(&format!(
            "{}: {} rows from {source}{}, generation {}",
            kind.name(),
            meta.rows,
            if skipped.is_empty() {
                String::new()
            } else {
                format!(" ({} lines skipped)", skipped.len())
            },
            meta.generation
        )),
    )?;
    Ok(Imported::Done { meta, skipped })
}

/// The message for a refused file.
pub fn refusal(lines: &[LineError]) -> String {
    let first: Vec<String> = lines.iter().take(3).map(ToString::to_string).collect();
    format!(
        "{} bad line{}; nothing was imported. {}",
        lines.len(),
        if lines.len() == 1 { "" } else { "s" },
        first.join("; ")
    )
}

/// The `charset` of a `content-type` header: `text/csv; charset=iso-8859-1`.
fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn import_api(req: &Request, params: &Params) -> Result<Response, Error> {
    let source = req.query_param("source").unwrap_or_default();
    let vet = match req.query_param("atcvet").as_deref() {
        None | Some("accept") => Vet::Accept,
        Some("skip") => Vet::Skip,
        Some(v) => {
            return Err(Error::invalid(format!(
                "atcvet: {v:?}: accept (the default: ATCvet codes match the human code they stand for) or skip"
            )));
        }
    };
    let charset = req
        .query_param("charset")
        .or_else(|| req.header("content-type").and_then(charset_of));
    let text = match data::decode(&req.body, charset.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            return Ok(Response::json(
                400,
                &json!({"error": {"code": "invalid", "message": refusal(std::slice::from_ref(&e)), "lines": [e]}}),
            ));
        }
    };
    match import(req.caller(), &params["table"], &text, &source, vet)? {
        Imported::Done { meta, skipped } => {
            let mut out = serde_json::to_value(&meta).unwrap_or_default();
            out["skippedLines"] = json!(skipped);
            Ok(Response::json(200, &out))
        }
        Imported::Refused(lines) => Ok(Response::json(
            400,
            &json!({"error": {"code": "invalid", "message": refusal(&lines), "lines": lines}}),
        )),
    }
}

fn posts_api(req: &Request, _: &Params) -> Result<Response, Error> {
    let codes: Vec<String> = req
        .query_param("atc")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    if codes.is_empty() {
        return Err(Error::invalid(
            "atc: one or more ATC codes, separated by commas",
        ));
    }
    Ok(Response::json(
        200,
        &posts::for_codes(&codes, &req.caller().user)?,
    ))
}
