//! The drug reference's storage in `kv`, and atomic imports.
//!
//! Layout (all keys global: the reference is the same at every site):
//!
//! - `meta/<table>`: the live generation of `products`, `interactions`, `supplement` or
//!   `allergens` ([`Meta`]).
//! - `meta/<table>/next`: the last generation number handed out.
//! - `gc/<table>/<generation>`: a generation to delete (replaced, or abandoned mid-import).
//! - `pr/<generation>/din/<din>`: a product; `pr/<g>/brand/<folded words>/<din>`,
//!   `pr/<g>/ingr/<folded ingredient>/<din>` and `pr/<g>/atc/<code>/<din>` are its indexes
//!   (empty values), so every search is a prefix scan. A brand is indexed from each word on,
//!   so `warfarin` finds `Apo-Warfarin`. `pr/<g>/code/<base name>`: the ATC codes of the
//!   single-ingredient products of an ingredient (its salt left out), which is how a
//!   combination product's ingredients, and an allergy to an ingredient, find their codes.
//! - `ix/<generation>/pair/<a>/<b>` (a ≤ b): the interaction rows between two codes or
//!   classes; `ix/<g>/code/<code>`: the codes that code has rows with. Codes are human ATC
//!   codes: a row's ATCvet code (`QA14AA02`) is indexed under the human one (`A14AA02`).
//!   `sx/<generation>/…`: the same for the clinic's supplement.
//! - `al/<generation>/table`: the allergen table, whole (it is small).
//!
//! An import writes a whole new generation in as many batches as it takes, then switches
//! `meta/<table>` to it with one compare-and-swap batch: readers see the old table or the new
//! one, never a mix, and a failed or interrupted import changes nothing they can see. The old
//! generation is deleted afterwards (and by the next import, if this one is cut short).

use std::collections::{BTreeMap, BTreeSet};

use osler_sdk::{Error, clock, kv};
use serde::{Deserialize, Serialize};

use crate::allergens;
use crate::atc;
use crate::check::{Table, pair_key};
use crate::data::{Interaction, LineError, Product};

/// One of the tables an administrator imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Products,
    /// The interaction table imported from a source (OSCAR's Holbrook table).
    Interactions,
    /// The clinic's own interactions, for pairs the imported table lacks; checked beside it.
    Supplement,
    Allergens,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Products,
        Kind::Interactions,
        Kind::Supplement,
        Kind::Allergens,
    ];

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Products => "products",
            Kind::Interactions => "interactions",
            Kind::Supplement => "supplement",
            Kind::Allergens => "allergens",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Kind::Products => "pr",
            Kind::Interactions => "ix",
            Kind::Supplement => "sx",
            Kind::Allergens => "al",
        }
    }

    fn data(self, generation: u64) -> String {
        format!("{}/{generation:010}/", self.short())
    }
}

/// The live generation of a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub generation: u64,
    pub rows: usize,
    /// Site-local time of the import.
    pub imported_at: String,
    /// The administrator's user name, or `osler` for the seed data.
    pub imported_by: String,
    /// `seed data` or the file's description.
    pub source: String,
    /// Lines of the file left out on purpose (ATCvet rows with `atcvet=skip`).
    #[serde(default)]
    pub skipped: usize,
}

#[derive(Serialize, Deserialize)]
struct Gc {
    /// When the generation was reserved or replaced (ms since the epoch).
    since: i64,
    /// Replaced by a newer generation: delete at once. Otherwise an import in progress, to be
    /// deleted only once it has clearly been abandoned.
    replaced: bool,
}

/// An unswitched generation older than this was abandoned (a request lasts seconds).
const ABANDONED_MS: i64 = 10 * 60 * 1000;
/// Bytes of values and keys in one batch, below the host's 1 MiB payload limit.
const BATCH_BYTES: usize = 768 * 1024;
/// The longest folded text in an index key.
const MAX_INDEX_TEXT: usize = 200;

fn meta_key(kind: Kind) -> String {
    format!("meta/{}", kind.name())
}

fn gc_key(kind: Kind, generation: u64) -> String {
    format!("gc/{}/{generation:010}", kind.name())
}

/// The live generation's description, if the table was ever loaded.
pub fn meta(kind: Kind) -> Result<Option<Meta>, Error> {
    kv::get(&meta_key(kind))
}

thread_local! {
    /// Each table's live generation as this instance first read it. A plugin's instance
    /// serves one request (or one interface call) and is then thrown away, so this lives
    /// exactly that long: a check reads `meta/products` once instead of once per drug, and
    /// sees one generation of each table throughout, even while an import switches it.
    static LIVE: std::cell::RefCell<[Option<Meta>; 4]> = const { std::cell::RefCell::new([None, None, None, None]) };
}

fn remembered(kind: Kind) -> Option<Meta> {
    LIVE.with(|l| l.borrow()[kind as usize].clone())
}

fn remember(kind: Kind, m: Option<Meta>) {
    LIVE.with(|l| l.borrow_mut()[kind as usize] = m);
}

/// The live generation, loading the seed data the first time the table is used.
pub fn live(kind: Kind) -> Result<Meta, Error> {
    if let Some(m) = remembered(kind) {
        return Ok(m);
    }
    let m = load_live(kind)?;
    remember(kind, Some(m.clone()));
    Ok(m)
}

fn load_live(kind: Kind) -> Result<Meta, Error> {
    if let Some(m) = meta(kind)? {
        return Ok(m);
    }
    let result = match kind {
        Kind::Products => {
            crate::seed::products().and_then(|p| import_products(&p, "osler", "seed data"))
        }
        // Nothing is imported until an administrator imports a table.
        Kind::Interactions => import(kind, Vec::new(), 0, "osler", "none imported", 0),
        Kind::Supplement => crate::seed::supplement().and_then(|r| {
            import_interactions(kind, &r, "osler", crate::seed::SUPPLEMENT_SOURCE, 0)
        }),
        Kind::Allergens => {
            crate::seed::allergens().and_then(|t| import_allergens(&t, "osler", "seed data"))
        }
    };
    match result {
        Ok(m) => Ok(m),
        // Another request loaded it at the same moment.
        Err(Error::Conflict(_)) => meta(kind)?
            .ok_or_else(|| Error::internal(format!("the {} table did not load", kind.name()))),
        Err(e) => Err(e),
    }
}

/// Writes `entries` (keys relative to a generation) as a new generation of `kind` and makes
/// it live: all or nothing.
fn import(
    kind: Kind,
    entries: Vec<(String, Vec<u8>)>,
    rows: usize,
    by: &str,
    source: &str,
    skipped: usize,
) -> Result<Meta, Error> {
    // What this import switches (or fails to switch, when another finishes first) is read
    // again afterwards.
    remember(kind, None);
    collect_garbage(kind)?;
    let current = kv::get_bytes(&meta_key(kind))?;
    let generation = reserve(kind)?;
    let prefix = kind.data(generation);
    let mut batch = Writer::default();
    for (key, value) in entries {
        batch.put(format!("{prefix}{key}"), value)?;
    }
    batch.flush()?;
    let now = clock::now();
    let meta = Meta {
        generation,
        rows,
        imported_at: now.local,
        imported_by: by.to_string(),
        source: source.to_string(),
        skipped,
    };
    let mut switch = kv::Batch::new();
    switch = match &current {
        Some(bytes) => switch.expect_bytes(&meta_key(kind), bytes.clone()),
        None => switch.expect_absent(&meta_key(kind)),
    };
    switch = switch
        .put(&meta_key(kind), &meta)
        .delete(&gc_key(kind, generation));
    let old: Option<Meta> = current
        .as_deref()
        .map(serde_json::from_slice)
        .transpose()
        .map_err(|e| Error::internal(format!("meta/{}: {e}", kind.name())))?;
    if let Some(old) = &old {
        switch = switch.put(
            &gc_key(kind, old.generation),
            &Gc {
                since: now.epoch_millis,
                replaced: true,
            },
        );
    }
    if let Err(e) = switch.commit() {
        // Someone else's import finished first: ours never became visible; drop it.
        delete_prefix(&prefix)?;
        kv::delete(&gc_key(kind, generation))?;
        return Err(match e {
            Error::Conflict(_) => Error::conflict(format!(
                "another {} import finished while this one ran; nothing of this file was imported",
                kind.name()
            )),
            e => e,
        });
    }
    collect_garbage(kind)?;
    Ok(meta)
}

/// A fresh generation number, marked for collection until the import switches to it.
fn reserve(kind: Kind) -> Result<u64, Error> {
    let key = format!("meta/{}/next", kind.name());
    for _ in 0..20 {
        let last: Option<u64> = kv::get(&key)?;
        let next = last.unwrap_or(0) + 1;
        let r = kv::Batch::new()
            .expect_unchanged(&key, last.as_ref())
            .put(&key, &next)
            .put(
                &gc_key(kind, next),
                &Gc {
                    since: clock::now().epoch_millis,
                    replaced: false,
                },
            )
            .commit();
        match r {
            Ok(()) => return Ok(next),
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict("too many imports at once: try again"))
}

/// Deletes replaced and abandoned generations.
fn collect_garbage(kind: Kind) -> Result<(), Error> {
    let now = clock::now().epoch_millis;
    for (key, gc) in kv::scan_all::<Gc>(&format!("gc/{}/", kind.name()))? {
        if !gc.replaced && now - gc.since < ABANDONED_MS {
            continue;
        }
        let Some(generation) = key.rsplit('/').next().and_then(|g| g.parse().ok()) else {
            continue;
        };
        delete_prefix(&kind.data(generation))?;
        kv::delete(&key)?;
    }
    Ok(())
}

fn delete_prefix(prefix: &str) -> Result<(), Error> {
    loop {
        let page = kv::scan_bytes(prefix, None, kv::MAX_PAGE)?;
        if page.entries.is_empty() {
            return Ok(());
        }
        let mut b = kv::Batch::new();
        for (key, _) in &page.entries {
            b = b.delete(key);
        }
        b.commit()?;
    }
}

/// Puts, committed in batches that stay within the host's limits.
#[derive(Default)]
struct Writer {
    batch: Option<kv::Batch>,
    bytes: usize,
}

impl Writer {
    fn put(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        let size = key.len() + value.len();
        let full = self
            .batch
            .as_ref()
            .is_some_and(|b| b.len() >= kv::MAX_PAGE as usize || self.bytes + size > BATCH_BYTES);
        if full {
            self.flush()?;
        }
        let b = self.batch.take().unwrap_or_default();
        self.batch = Some(b.put_bytes(&key, value));
        self.bytes += size;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.bytes = 0;
        match self.batch.take() {
            Some(b) if !b.is_empty() => b.commit(),
            _ => Ok(()),
        }
    }
}

/// `text` cut to at most `MAX_INDEX_TEXT` bytes on a character boundary.
fn index_text(text: &str) -> &str {
    let mut end = text.len().min(MAX_INDEX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim_end()
}

/// The entries of a product table.
pub fn product_entries(products: &[Product]) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    let mut codes: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for p in products {
        if let [only] = &p.ingredients[..]
            && p.atc.len() == 7
        {
            let base = atc::base_name(&only.name);
            if !base.is_empty() {
                codes
                    .entry(index_text(&base).to_string())
                    .or_default()
                    .insert(&p.atc);
            }
        }
        out.push((
            format!("din/{}", p.din),
            serde_json::to_vec(p).map_err(internal)?,
        ));
        let brand = atc::fold(&p.brand_name);
        // From each word on: `apo warfarin` and `warfarin`.
        let starts = std::iter::once(0).chain(brand.match_indices(' ').map(|(i, _)| i + 1));
        let words: BTreeSet<&str> = starts.map(|i| index_text(&brand[i..])).collect();
        for w in words {
            out.push((format!("brand/{w}/{}", p.din), Vec::new()));
        }
        let names: BTreeSet<String> = p
            .ingredients
            .iter()
            .map(|i| index_text(&atc::fold(&i.name)).to_string())
            .collect();
        for n in names {
            out.push((format!("ingr/{n}/{}", p.din), Vec::new()));
        }
        if !p.atc.is_empty() {
            out.push((format!("atc/{}/{}", p.atc, p.din), Vec::new()));
        }
    }
    for (base, codes) in codes {
        out.push((
            format!("code/{base}"),
            serde_json::to_vec(&codes).map_err(internal)?,
        ));
    }
    Ok(out)
}

/// The entries of an interaction table, or the rows that cannot be stored.
pub fn interaction_entries(rows: &[Interaction]) -> Result<Vec<(String, Vec<u8>)>, Vec<LineError>> {
    let mut pairs: BTreeMap<(String, String), Vec<&Interaction>> = BTreeMap::new();
    let mut partners: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in rows {
        let (a, b) = (atc::human(&r.atc_a), atc::human(&r.atc_b));
        pairs.entry(pair_key(a, b)).or_default().push(r);
        partners.entry(a).or_default().insert(b);
        partners.entry(b).or_default().insert(a);
    }
    let mut out = Vec::new();
    for ((a, b), rows) in pairs {
        let value = serde_json::to_vec(&rows).unwrap_or_default();
        if value.len() > BATCH_BYTES {
            return Err(vec![LineError {
                line: 0,
                message: format!("the rows between {a} and {b} are too many to store together"),
            }]);
        }
        out.push((format!("pair/{a}/{b}"), value));
    }
    for (code, with) in partners {
        out.push((
            format!("code/{code}"),
            serde_json::to_vec(&with).unwrap_or_default(),
        ));
    }
    Ok(out)
}

fn internal(e: serde_json::Error) -> Error {
    Error::internal(e.to_string())
}

pub fn import_products(products: &[Product], by: &str, source: &str) -> Result<Meta, Error> {
    let entries = product_entries(products)?;
    import(Kind::Products, entries, products.len(), by, source, 0)
}

/// Imports rows as the interaction table or the supplement (`kind`).
pub fn import_interactions(
    kind: Kind,
    rows: &[Interaction],
    by: &str,
    source: &str,
    skipped: usize,
) -> Result<Meta, Error> {
    let entries = interaction_entries(rows).map_err(|e| {
        Error::invalid(
            e.iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    import(kind, entries, rows.len(), by, source, skipped)
}

pub fn import_allergens(table: &allergens::Table, by: &str, source: &str) -> Result<Meta, Error> {
    let value = serde_json::to_vec(table).map_err(internal)?;
    if value.len() > BATCH_BYTES {
        return Err(Error::too_large(
            "the allergen table is larger than 768 KiB",
        ));
    }
    import(
        Kind::Allergens,
        vec![("table".into(), value)],
        table.groups.len(),
        by,
        source,
        0,
    )
}

/// The live allergen table.
pub fn allergen_table() -> Result<allergens::Table, Error> {
    let g = live(Kind::Allergens)?.generation;
    Ok(kv::get(&format!("{}table", Kind::Allergens.data(g)))?.unwrap_or_default())
}

// Lookups.

/// The product with `din`, if any.
pub fn product(din: &str) -> Result<Option<Product>, Error> {
    kv::get(&product_key(din)?)
}

/// Where the live table keeps the product with `din`.
fn product_key(din: &str) -> Result<String, Error> {
    if din.len() != 8 || !din.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(format!("din: {din:?} is not 8 digits")));
    }
    let g = live(Kind::Products)?.generation;
    Ok(format!("{}din/{din}", Kind::Products.data(g)))
}

/// What a check needs of a product: its name, code and ingredients' names. The rest of the
/// stored record is skipped, not built.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Codes {
    pub brand_name: String,
    pub atc: String,
    pub ingredients: Vec<IngredientName>,
}

/// An ingredient as [`Codes`] reads it.
#[derive(Debug, Deserialize)]
pub struct IngredientName {
    pub name: String,
}

/// [`product`], as a check reads it.
pub fn product_codes(din: &str) -> Result<Option<Codes>, Error> {
    kv::get(&product_key(din)?)
}

/// The DINs at the end of the first `max` keys under `prefix`.
fn dins_under(prefix: &str, max: usize) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    while out.len() < max {
        let want = (max - out.len()).min(kv::MAX_PAGE as usize) as u32;
        let page = kv::scan_bytes(prefix, after.as_deref(), want)?;
        out.extend(
            page.entries
                .iter()
                .filter_map(|(k, _)| k.rsplit('/').next().map(str::to_string)),
        );
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(out)
}

/// Products matching every given criterion, by brand name then DIN.
pub fn search(
    text: Option<&str>,
    atc_prefix: Option<&str>,
    include_cancelled: bool,
    limit: usize,
) -> Result<Vec<Product>, Error> {
    let limit = limit.clamp(1, 100);
    let text = text.map(atc::fold).filter(|t| !t.is_empty());
    let class = match atc_prefix.map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) => Some(
            atc::normalize(a)
                .ok_or_else(|| Error::invalid(format!("atc: {a:?} is not an ATC code or class")))?,
        ),
        None => None,
    };
    if text.is_none() && class.is_none() {
        return Err(Error::invalid("give a name to search for, or an ATC code"));
    }
    let g = Kind::Products.data(live(Kind::Products)?.generation);
    // Read more index entries than asked for: some are filtered out below.
    let want = (limit * 4).min(1000);
    let mut dins: BTreeSet<String> = BTreeSet::new();
    match (&text, &class) {
        // Eight digits: an exact DIN.
        (Some(t), _) if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) => {
            dins.insert(t.clone());
        }
        (Some(t), _) => {
            let t = index_text(t);
            dins.extend(dins_under(&format!("{g}brand/{t}"), want)?);
            dins.extend(dins_under(&format!("{g}ingr/{t}"), want)?);
        }
        (None, Some(c)) => dins.extend(dins_under(&format!("{g}atc/{c}"), want)?),
        (None, None) => {}
    }
    let mut out = Vec::new();
    for din in dins {
        let Some(p) = kv::get::<Product>(&format!("{g}din/{din}"))? else {
            continue;
        };
        if !include_cancelled && p.status == "cancelled" {
            continue;
        }
        if let Some(c) = &class
            && !p.atc.starts_with(c.as_str())
        {
            continue;
        }
        out.push(p);
    }
    out.sort_by(|a, b| {
        atc::fold(&a.brand_name)
            .cmp(&atc::fold(&b.brand_name))
            .then(a.din.cmp(&b.din))
    });
    out.truncate(limit);
    Ok(out)
}

/// One live interaction source, as the check reads it.
pub struct KvTable {
    prefix: String,
    /// What warnings name as their source: the table and its description.
    pub source: String,
}

impl KvTable {
    /// The interaction sources in the order the check prefers them on a tie: the imported
    /// table, then the supplement. A table with no rows is left out.
    pub fn sources() -> Result<Vec<KvTable>, Error> {
        let mut out = Vec::new();
        for kind in [Kind::Interactions, Kind::Supplement] {
            let m = live(kind)?;
            // Before sources were layered, the seed rows were the interaction table itself;
            // they are the supplement now.
            let old_seed = kind == Kind::Interactions && m.imported_by == "osler" && m.rows > 0;
            if m.rows == 0 || old_seed {
                continue;
            }
            out.push(KvTable {
                prefix: kind.data(m.generation),
                source: match kind {
                    Kind::Supplement => format!("supplement: {}", m.source),
                    _ => format!("interaction table: {}", m.source),
                },
            });
        }
        Ok(out)
    }
}

/// The ATC codes of single-ingredient products of an ingredient (a base name).
pub fn ingredient_codes(base: &str) -> Result<Vec<String>, Error> {
    if base.is_empty() {
        return Ok(Vec::new());
    }
    let g = live(Kind::Products)?.generation;
    Ok(kv::get(&format!(
        "{}code/{}",
        Kind::Products.data(g),
        index_text(base)
    ))?
    .unwrap_or_default())
}

/// The products whose brand name (folded) is `folded`, or ends with it after a word (`Apo-`).
pub fn brand_products(folded: &str) -> Result<Vec<Product>, Error> {
    if folded.is_empty() {
        return Ok(Vec::new());
    }
    let g = Kind::Products.data(live(Kind::Products)?.generation);
    let mut out = Vec::new();
    for din in dins_under(&format!("{g}brand/{}/", index_text(folded)), 20)? {
        if let Some(p) = kv::get::<Product>(&format!("{g}din/{din}"))? {
            out.push(p);
        }
    }
    Ok(out)
}

impl Table for KvTable {
    fn partners(&mut self, code: &str) -> Result<Vec<String>, Error> {
        Ok(kv::get(&format!("{}code/{code}", self.prefix))?.unwrap_or_default())
    }

    fn pair(&mut self, a: &str, b: &str) -> Result<Vec<Interaction>, Error> {
        Ok(kv::get(&format!("{}pair/{a}/{b}", self.prefix))?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Ingredient;

    #[test]
    fn products_are_indexed_by_every_brand_word_ingredient_and_atc() {
        let p = Product {
            din: "99000001".into(),
            brand_name: "Apo-Warfarin".into(),
            ingredients: vec![Ingredient {
                name: "Warfarin Sodium".into(),
                strength: "5".into(),
                unit: "mg".into(),
            }],
            dosage_form: "tablet".into(),
            route: "oral".into(),
            atc: "B01AA03".into(),
            schedule: "prescription".into(),
            status: "marketed".into(),
            sample: true,
            package: String::new(),
        };
        let keys: Vec<String> = product_entries(&[p])
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            vec![
                "din/99000001",
                "brand/apo warfarin/99000001",
                "brand/warfarin/99000001",
                "ingr/warfarin sodium/99000001",
                "atc/B01AA03/99000001",
                "code/warfarin",
            ]
        );
    }

    #[test]
    fn interaction_entries_index_pairs_and_partners() {
        let rows = crate::data::parse_interactions(
            "\"1\",\"M01A\",\"B01AA\",\"A\",\"3\",\"G\",\"x\",\"a\",\"b\"\n\"2\",\"B01AA\",\"M01A\",\"A\",\"2\",\"G\",\"y\",\"a\",\"b\"\n",
            crate::data::Vet::Accept,
        )
        .unwrap()
        .rows;
        let e = interaction_entries(&rows).unwrap();
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["pair/B01AA/M01A", "code/B01AA", "code/M01A"]);
        let pair: Vec<Interaction> = serde_json::from_slice(&e[0].1).unwrap();
        assert_eq!(pair.len(), 2);
    }

    #[test]
    fn index_text_cuts_on_a_char_boundary() {
        let long = "é".repeat(150);
        assert!(index_text(&long).len() <= MAX_INDEX_TEXT);
    }
}
