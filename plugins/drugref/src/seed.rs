//! The seed data set shipped with the plugin, loaded the first time a table is used, so that a
//! clinic (and the demo) works offline before an administrator imports real data.
//!
//! Written for this project: common primary-care drugs with their WHO ATC codes, and
//! well-known interactions between classes. The DINs are NOT real: every seed product is
//! marked `sample` and uses a DIN in the 99xxxxxx range, far above those Health Canada has
//! assigned, and the pages say so.

use osler_sdk::Error;

use crate::data::{self, Interaction, LineError, Product};

const PRODUCTS: &str = include_str!("../seed/products.csv");
const INTERACTIONS: &str = include_str!("../seed/interactions.csv");

fn broken(file: &str, errors: Vec<LineError>) -> Error {
    let first = errors.first().map(ToString::to_string).unwrap_or_default();
    Error::internal(format!("the seed file {file} is broken: {first}"))
}

pub fn products() -> Result<Vec<Product>, Error> {
    data::parse_products(PRODUCTS).map_err(|e| broken("products.csv", e))
}

pub fn interactions() -> Result<Vec<Interaction>, Error> {
    data::parse_interactions(INTERACTIONS).map_err(|e| broken("interactions.csv", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Table, interactions as check, pair_key};

    #[test]
    fn the_seed_files_parse_and_every_product_is_marked_sample() {
        let p = products().unwrap();
        assert!(p.len() > 50);
        assert!(p.iter().all(|p| p.sample && p.din.starts_with("99")));
        assert!(interactions().unwrap().len() > 30);
    }

    struct Seed(Vec<Interaction>);
    impl Table for Seed {
        fn partners(&mut self, code: &str) -> Result<Vec<String>, Error> {
            Ok(self
                .0
                .iter()
                .filter_map(|r| {
                    if r.atc_a == code {
                        Some(r.atc_b.clone())
                    } else if r.atc_b == code {
                        Some(r.atc_a.clone())
                    } else {
                        None
                    }
                })
                .collect())
        }
        fn pair(&mut self, a: &str, b: &str) -> Result<Vec<Interaction>, Error> {
            Ok(self
                .0
                .iter()
                .filter(|r| pair_key(&r.atc_a, &r.atc_b) == pair_key(a, b))
                .cloned()
                .collect())
        }
    }

    #[test]
    fn warfarin_with_ibuprofen_is_major() {
        let mut t = Seed(interactions().unwrap());
        let found = check(&["B01AA03", "M01AE01"], &mut t).unwrap();
        assert_eq!(found[0].row.significance, Some(3));
        let found = check(&["N06AB06", "N06AF03"], &mut t).unwrap();
        assert_eq!(found[0].row.id, "seed-18");
        assert!(check(&["N02BE01", "B01AA03"], &mut t).unwrap().is_empty());
    }
}
