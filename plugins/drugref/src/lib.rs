//! The drug reference (OSCAR's drugref and MyDrugRef): drug products, an interaction table
//! keyed by WHO ATC codes and classes, allergy checks, and clinicians' posts. It exports
//! `osler:drugref/lookup@0.1.0` (`wit/lookup.wit`), which prescribing imports.
//!
//! See README.md for the routes, the storage layout and the import formats.

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

use crate::data::{Interaction, LineError, Product};

mod bindings {
    osler_sdk::generate!({
        path: ["../../wit/v0.1.0", "wit"],
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

/// One interaction found, as the JSON API returns it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundOut {
    pub drug_a: String,
    pub drug_b: String,
    #[serde(flatten)]
    pub row: Interaction,
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

/// What is known of a drug: from the reference when it has the DIN, else as described.
fn facts(d: &DrugIn) -> Result<check::Facts, Error> {
    if let Some(din) = d.din.as_deref().filter(|d| !d.is_empty())
        && let Some(p) = store::product(din)?
    {
        return Ok(check::Facts {
            name: if d.name.is_empty() {
                p.brand_name.clone()
            } else {
                d.name.clone()
            },
            atc: Some(p.atc).filter(|a| !a.is_empty()),
            ingredients: p.ingredients.into_iter().map(|i| i.name).collect(),
            brand: Some(p.brand_name),
        });
    }
    Ok(check::Facts {
        name: if d.name.is_empty() {
            d.key.clone()
        } else {
            d.name.clone()
        },
        atc: d.atc.as_deref().and_then(atc::normalize),
        ingredients: d.ingredients.clone(),
        brand: None,
    })
}

pub fn interactions(drugs: &[DrugIn]) -> Result<Report, Error> {
    if drugs.len() > 200 {
        return Err(Error::too_large("at most 200 drugs in one check"));
    }
    let mut keys = Vec::new();
    let mut codes = Vec::new();
    let mut unchecked = Vec::new();
    for d in drugs {
        let f = facts(d)?;
        match f.atc {
            Some(code) if code.len() == 7 => {
                keys.push(d.key.clone());
                codes.push(code);
            }
            Some(code) => unchecked.push(Unchecked {
                key: d.key.clone(),
                reason: format!(
                    "{} has only the ATC class {code}, not a substance code",
                    f.name
                ),
            }),
            None => unchecked.push(Unchecked {
                key: d.key.clone(),
                reason: format!(
                    "{} has no ATC code: its interactions cannot be checked",
                    f.name
                ),
            }),
        }
    }
    let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let mut table = store::KvTable::open()?;
    let found = check::interactions(&refs, &mut table)?;
    Ok(Report {
        interactions: found
            .into_iter()
            .map(|f| FoundOut {
                drug_a: keys[f.a].clone(),
                drug_b: keys[f.b].clone(),
                row: f.row,
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

#[derive(Clone, Debug, Serialize)]
pub struct AllergyWarning {
    pub allergy: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AllergyReport {
    pub warnings: Vec<AllergyWarning>,
    pub unchecked: Vec<Unchecked>,
}

pub fn allergies(drug: &DrugIn, allergies: &[AllergyIn]) -> Result<AllergyReport, Error> {
    let f = facts(drug)?;
    let mut report = AllergyReport {
        warnings: Vec::new(),
        unchecked: Vec::new(),
    };
    for a in allergies {
        let kind = match a.kind.as_str() {
            "atc" => check::Kind::Atc,
            "ingredient" => check::Kind::Ingredient,
            "brand" => check::Kind::Brand,
            "free-text" => check::Kind::FreeText,
            k => {
                return Err(Error::invalid(format!(
                    "kind: {k:?} is not atc, ingredient, brand or free-text"
                )));
            }
        };
        match check::allergy(&f, kind, &a.allergen) {
            check::Outcome::Matches(reason) => report.warnings.push(AllergyWarning {
                allergy: a.key.clone(),
                reason,
            }),
            check::Outcome::Unchecked(reason) => report.unchecked.push(Unchecked {
                key: a.key.clone(),
                reason,
            }),
            check::Outcome::Clear => {}
        }
    }
    Ok(report)
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

fn interaction_out(f: FoundOut) -> wit::Interaction {
    let r = f.row;
    wit::Interaction {
        drug_a: f.drug_a,
        drug_b: f.drug_b,
        atc_a: r.atc_a,
        atc_b: r.atc_b,
        name_a: r.name_a,
        name_b: r.name_b,
        effect: match r.effect {
            'A' => wit::Effect::Augments,
            'I' => wit::Effect::Inhibits,
            'N' => wit::Effect::NoEffect,
            _ => wit::Effect::Unknown,
        },
        significance: match r.significance {
            Some(1) => Some(wit::Significance::Minor),
            Some(2) => Some(wit::Significance::Moderate),
            Some(3) => Some(wit::Significance::Major),
            _ => None,
        },
        evidence: match r.evidence {
            Some('P') => Some(wit::Evidence::Poor),
            Some('F') => Some(wit::Evidence::Fair),
            Some('G') => Some(wit::Evidence::Good),
            _ => None,
        },
        comment: r.comment,
        source_id: r.id,
    }
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
        let drugs: Vec<DrugIn> = drugs.into_iter().map(DrugIn::from).collect();
        let r = interactions(&drugs)?;
        Ok(wit::InteractionReport {
            interactions: r.interactions.into_iter().map(interaction_out).collect(),
            unchecked: not_checked(r.unchecked),
        })
    }

    fn allergy_warnings(
        drug: wit::Drug,
        list: Vec<wit::Allergy>,
    ) -> Result<wit::AllergyReport, Error> {
        let list: Vec<AllergyIn> = list
            .into_iter()
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
            .collect();
        let r = allergies(&drug.into(), &list)?;
        Ok(wit::AllergyReport {
            warnings: r
                .warnings
                .into_iter()
                .map(|w| wit::AllergyWarning {
                    allergy: w.allergy,
                    reason: w.reason,
                })
                .collect(),
            unchecked: not_checked(r.unchecked),
        })
    }

    fn posts(codes: Vec<String>, viewer: String) -> Result<Vec<wit::Post>, Error> {
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
}

fn interactions_api(req: &Request, _: &Params) -> Result<Response, Error> {
    let body: InteractionsBody = req.json()?;
    Ok(Response::json(200, &interactions(&body.drugs)?))
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
    Ok(Response::json(
        200,
        &json!({
            "products": store::live(store::Kind::Products)?,
            "interactions": store::live(store::Kind::Interactions)?,
        }),
    ))
}

/// Why an import was refused, or what it imported.
pub enum Imported {
    Done(store::Meta),
    Refused(Vec<LineError>),
}

/// Parses the whole file, then imports it atomically. Administrators only.
pub fn import(caller: &Caller, table: &str, text: &str, source: &str) -> Result<Imported, Error> {
    if !caller.has_role("admin") {
        return Err(Error::denied("only an administrator imports drug data"));
    }
    let kind = store::Kind::parse(table)
        .ok_or_else(|| Error::not_found(format!("no table {table:?}: products or interactions")))?;
    let source = if source.trim().is_empty() {
        "upload"
    } else {
        source.trim()
    };
    let meta = match kind {
        store::Kind::Products => match data::parse_products(text) {
            Ok(rows) => store::import_products(&rows, &caller.user, source)?,
            Err(lines) => return Ok(Imported::Refused(lines)),
        },
        store::Kind::Interactions => match data::parse_interactions(text) {
            Ok(rows) => store::import_interactions(&rows, &caller.user, source)?,
            Err(lines) => return Ok(Imported::Refused(lines)),
        },
    };
    audit::record(
        "drugref.import",
        None,
        Some(&format!(
            "{}: {} rows from {source}, generation {}",
            kind.name(),
            meta.rows,
            meta.generation
        )),
    )?;
    Ok(Imported::Done(meta))
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

fn import_api(req: &Request, params: &Params) -> Result<Response, Error> {
    let source = req.query_param("source").unwrap_or_default();
    match import(req.caller(), &params["table"], req.text()?, &source)? {
        Imported::Done(meta) => Ok(Response::json(200, &meta)),
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
