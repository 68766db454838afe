//! The seed data shipped with the plugin, loaded the first time a table is used, so that a
//! clinic (and the demo) works offline before an administrator imports real data.
//!
//! Written for this project: common primary-care drugs with their WHO ATC codes
//! (`seed/products.csv`), a supplement of well-known interactions (`seed/supplement.csv`),
//! rated from clinical knowledge and kept beside any imported table, and the allergen
//! table (`seed/allergens.csv`). The DINs are NOT real: every seed product is marked `sample`
//! and uses a DIN in the 99xxxxxx range, far above those Health Canada has assigned, and the
//! pages say so.

use osler_sdk::Error;

use crate::allergens;
use crate::data::{self, Interaction, LineError, Product, Vet};

const PRODUCTS: &str = include_str!("../seed/products.csv");
const SUPPLEMENT: &str = include_str!("../seed/supplement.csv");
const ALLERGENS: &str = include_str!("../seed/allergens.csv");

/// How warnings from the seed supplement name their source.
pub const SUPPLEMENT_SOURCE: &str = "Osler seed supplement";

fn broken(file: &str, errors: Vec<LineError>) -> Error {
    let first = errors.first().map(ToString::to_string).unwrap_or_default();
    Error::internal(format!("the seed file {file} is broken: {first}"))
}

pub fn products() -> Result<Vec<Product>, Error> {
    data::parse_products(PRODUCTS).map_err(|e| broken("products.csv", e))
}

pub fn supplement() -> Result<Vec<Interaction>, Error> {
    data::parse_interactions(SUPPLEMENT, Vet::Accept)
        .map(|p| p.rows)
        .map_err(|e| broken("supplement.csv", e))
}

pub fn allergens() -> Result<allergens::Table, Error> {
    allergens::parse(ALLERGENS).map_err(|e| broken("allergens.csv", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allergens::{self, Kind, Outcome, Risk};
    use crate::atc;
    use crate::check::{self, Code, Memory};
    use crate::store;

    #[test]
    fn the_seed_files_parse_and_every_product_is_marked_sample() {
        let p = products().unwrap();
        assert!(p.len() > 50);
        assert!(p.iter().all(|p| p.sample && p.din.starts_with("99")));
        assert!(supplement().unwrap().len() > 40);
        assert!(allergens().unwrap().groups.len() > 20);
    }

    fn table() -> Memory {
        Memory::new(store::interaction_entries(&supplement().unwrap()).unwrap())
    }

    fn one(a: &str, b: &str) -> Vec<check::Alert> {
        let drugs = [a, b].map(|c| {
            vec![Code {
                code: c.into(),
                via: None,
            }]
        });
        check::interactions(&drugs, &mut [&mut table()]).unwrap()
    }

    #[test]
    fn warfarin_and_ibuprofen_give_one_major_alert_in_the_right_direction() {
        let found = one("B01AA03", "M01AE01");
        assert_eq!(found.len(), 1);
        let hit = &found[0].hit;
        assert_eq!(hit.row.significance, Some(3));
        assert_eq!(
            (hit.affecting, hit.affected),
            (1, 0),
            "ibuprofen acts on warfarin"
        );
        assert_eq!(
            check::summary("Ibuprofen", "Warfarin", hit.row.effect),
            "Warfarin's effect is increased by Ibuprofen."
        );
    }

    #[test]
    fn corrected_ratings_and_contraindicated_pairs() {
        for (a, b, what) in [
            ("B01AA03", "J01FA09", "warfarin + clarithromycin"),
            ("B01AC04", "A02BC01", "clopidogrel + omeprazole"),
            ("C10AA01", "C08DB01", "simvastatin + diltiazem"),
            ("C10AA01", "C01BD01", "simvastatin + amiodarone"),
            ("G04BE03", "C01DA02", "sildenafil + nitroglycerin"),
            ("N06AB06", "N06AF03", "sertraline + phenelzine"),
            ("N06AB06", "J01XX08", "sertraline + linezolid"),
            ("C01AA05", "C01BD01", "digoxin + amiodarone"),
            ("B01AA03", "P01AB01", "warfarin + metronidazole"),
        ] {
            let found = one(a, b);
            assert_eq!(found.len(), 1, "{what}");
            assert_eq!(found[0].hit.row.significance, Some(3), "{what} is major");
        }
        assert!(
            one("N02BE01", "B01AA03").is_empty(),
            "acetaminophen + warfarin"
        );
    }

    /// The seed products as the allergy check reads them.
    struct Seed(Vec<crate::data::Product>);

    impl allergens::Products for Seed {
        fn codes_of_ingredient(&mut self, base: &str) -> Vec<String> {
            let mut out: Vec<String> = self
                .0
                .iter()
                .filter(|p| {
                    p.ingredients.len() == 1 && atc::base_name(&p.ingredients[0].name) == base
                })
                .map(|p| p.atc.clone())
                .collect();
            out.dedup();
            out
        }
        fn brand(&mut self, folded: &str) -> Vec<(Vec<String>, String)> {
            self.0
                .iter()
                .filter(|p| atc::fold(&p.brand_name) == folded)
                .map(|p| {
                    (
                        p.ingredients
                            .iter()
                            .map(|i| atc::base_name(&i.name))
                            .collect(),
                        p.atc.clone(),
                    )
                })
                .collect()
        }
    }

    fn allergy(kind: Kind, text: &str, din: &str) -> Outcome {
        let products = products().unwrap();
        let p = products.iter().find(|p| p.din == din).unwrap().clone();
        let mut seed = Seed(products);
        let mut codes = vec![p.atc.clone()];
        if p.ingredients.len() > 1 {
            for i in &p.ingredients {
                codes.extend(allergens::Products::codes_of_ingredient(
                    &mut seed,
                    &atc::base_name(&i.name),
                ));
            }
        }
        let drug = allergens::Drug {
            name: p.brand_name.clone(),
            codes,
            ingredients: p
                .ingredients
                .iter()
                .map(|i| atc::base_name(&i.name))
                .collect(),
        };
        let t = allergens().unwrap();
        match allergens::resolve(&t, &mut seed, kind, text) {
            Ok(a) => allergens::check(&t, &drug, &a),
            Err(why) => Outcome::Unchecked(why),
        }
    }

    const AMOXICILLIN: &str = "99000151";
    const CLAVULIN: &str = "99000152";
    const CEPHALEXIN: &str = "99000154";
    const CEFUROXIME: &str = "99000166";
    const SEPTRA: &str = "99000158";
    const TRIMETHOPRIM: &str = "99000165";
    const HCTZ: &str = "99000073";
    const CELECOXIB: &str = "99000034";
    const NAPROXEN: &str = "99000032";
    const ASA: &str = "99000021";
    const MORPHINE: &str = "99000142";

    #[test]
    fn allergies_by_common_name() {
        for (kind, text, din) in [
            (Kind::Ingredient, "penicillin", AMOXICILLIN),
            (Kind::FreeText, "PCN", CLAVULIN),
            (Kind::Ingredient, "sulfa", SEPTRA),
            (Kind::FreeText, "Sulfa drugs", SEPTRA),
            (Kind::FreeText, "NSAIDs", NAPROXEN),
            (Kind::FreeText, "aspirin", ASA),
            (Kind::FreeText, "opiates", MORPHINE),
            (Kind::Ingredient, "amoxicillin", CLAVULIN),
        ] {
            assert!(
                matches!(allergy(kind, text, din), Outcome::Matches(_)),
                "{text} on {din}: {:?}",
                allergy(kind, text, din)
            );
        }
        assert_eq!(
            allergy(Kind::Ingredient, "sulfa", TRIMETHOPRIM),
            Outcome::Clear
        );
    }

    #[test]
    fn cross_sensitivities_by_risk() {
        for (kind, text, din, want) in [
            (Kind::Atc, "J01C", CEPHALEXIN, Risk::Moderate),
            (Kind::Ingredient, "penicillin", CEFUROXIME, Risk::Low),
            (Kind::Ingredient, "amoxicillin", CEPHALEXIN, Risk::High),
            (Kind::FreeText, "sulfa", HCTZ, Risk::Low),
            (Kind::FreeText, "sulfa", CELECOXIB, Risk::Moderate),
            (Kind::FreeText, "NSAID", ASA, Risk::High),
            (Kind::FreeText, "NSAID", CELECOXIB, Risk::Low),
        ] {
            match allergy(kind, text, din) {
                Outcome::Caution { risk, .. } => assert_eq!(risk, want, "{text} on {din}"),
                o => panic!("{text} on {din}: {o:?}"),
            }
        }
    }

    #[test]
    fn unknown_and_non_drug_allergens_are_not_checked() {
        for (text, says) in [
            ("shellfish", "a food"),
            ("latex", "not a drug"),
            ("iodine", "contrast"),
            ("Zorblax", "matches no drug"),
        ] {
            match allergy(Kind::FreeText, text, AMOXICILLIN) {
                Outcome::Unchecked(why) => assert!(why.contains(says), "{text}: {why}"),
                o => panic!("{text}: {o:?}"),
            }
        }
    }
}
