//! What the pharmacist dispenses: the quantity in the product's dispensable unit (tablets,
//! capsules, mL, inhalers, pens, patches…), derived from the sig and the product's dosage form,
//! strength and package, and always carried with its unit.
//!
//! `500 mg PO TID x 7 days` of 500 mg tablets is 21 tablets (not "10500"); `2 puffs INH QID x
//! 30 days` of a 200-dose inhaler is 2 inhalers; `10 units subcut QHS x 30 days` of 100
//! units/mL in 3 mL pens is 1 pen. When the quantity cannot be derived (drops, creams, a PRN
//! sig without a maximum, an unknown form) [`compute`] says why, and the prescriber gives it.

use serde::{Deserialize, Deserializer, Serialize};

use crate::sig::{self, Sig};

/// A quantity to dispense: an amount (written the safe way, `21`, `2.5`) and a dispensable
/// unit in the singular (`tablet`, `mL`, `inhaler`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Quantity {
    pub amount: String,
    pub unit: String,
}

/// Records written before quantities had units hold a plain string (`"30"`).
impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Quantity, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Old(String),
            New { amount: String, unit: String },
        }
        Ok(match Either::deserialize(d)? {
            Either::Old(amount) => Quantity {
                amount,
                unit: String::new(),
            },
            Either::New { amount, unit } => Quantity { amount, unit },
        })
    }
}

/// A dispensable unit: singular, plural, and the spellings a prescriber may type.
struct Unit {
    one: &'static str,
    many: &'static str,
    /// Counted in whole units.
    whole: bool,
    /// A container or device (bottle, inhaler, pen…): fits any form.
    package: bool,
    spellings: &'static [&'static str],
}

const UNITS: &[Unit] = &[
    Unit {
        one: "tablet",
        many: "tablets",
        whole: true,
        package: false,
        spellings: &["tab", "tabs", "tablet", "tablets"],
    },
    Unit {
        one: "capsule",
        many: "capsules",
        whole: true,
        package: false,
        spellings: &["cap", "caps", "capsule", "capsules"],
    },
    Unit {
        one: "mL",
        many: "mL",
        whole: false,
        package: false,
        spellings: &["ml"],
    },
    Unit {
        one: "g",
        many: "g",
        whole: false,
        package: false,
        spellings: &["g", "gram", "grams"],
    },
    Unit {
        one: "patch",
        many: "patches",
        whole: true,
        package: false,
        spellings: &["patch", "patches"],
    },
    Unit {
        one: "suppository",
        many: "suppositories",
        whole: true,
        package: false,
        spellings: &["supp", "supps", "suppository", "suppositories"],
    },
    Unit {
        one: "lozenge",
        many: "lozenges",
        whole: true,
        package: false,
        spellings: &["lozenge", "lozenges"],
    },
    Unit {
        one: "inhaler",
        many: "inhalers",
        whole: true,
        package: true,
        spellings: &["inhaler", "inhalers"],
    },
    Unit {
        one: "pen",
        many: "pens",
        whole: true,
        package: true,
        spellings: &["pen", "pens"],
    },
    Unit {
        one: "vial",
        many: "vials",
        whole: true,
        package: true,
        spellings: &["vial", "vials"],
    },
    Unit {
        one: "cartridge",
        many: "cartridges",
        whole: true,
        package: true,
        spellings: &["cartridge", "cartridges"],
    },
    Unit {
        one: "bottle",
        many: "bottles",
        whole: true,
        package: true,
        spellings: &["bottle", "bottles"],
    },
    Unit {
        one: "tube",
        many: "tubes",
        whole: true,
        package: true,
        spellings: &["tube", "tubes"],
    },
    Unit {
        one: "device",
        many: "devices",
        whole: true,
        package: true,
        spellings: &["device", "devices"],
    },
    Unit {
        one: "box",
        many: "boxes",
        whole: true,
        package: true,
        spellings: &["box", "boxes"],
    },
    Unit {
        one: "package",
        many: "packages",
        whole: true,
        package: true,
        spellings: &["package", "packages", "pkg"],
    },
    Unit {
        one: "kit",
        many: "kits",
        whole: true,
        package: true,
        spellings: &["kit", "kits"],
    },
];

fn unit_of(word: &str) -> Option<&'static Unit> {
    let w = word.to_lowercase();
    UNITS.iter().find(|u| u.spellings.contains(&w.as_str()))
}

fn unit_named(one: &str) -> Option<&'static Unit> {
    UNITS.iter().find(|u| u.one == one)
}

/// A dispensable unit's plural: `tablet` → `tablets`, `mL` → `mL`.
pub fn plural(one: &str) -> &str {
    unit_named(one).map_or(one, |u| u.many)
}

impl Quantity {
    /// `21 tablets`, `1 inhaler`, `100 mL`; the amount alone when the unit is not known (a
    /// record written before units).
    pub fn text(&self) -> String {
        let unit = match unit_named(&self.unit) {
            Some(u) if self.amount == "1" => u.one,
            Some(u) => u.many,
            None => self.unit.as_str(),
        };
        format!("{} {unit}", self.amount).trim().to_string()
    }

    /// `60 (sixty) tablets`: in figures and words, as controlled drugs are written.
    pub fn figures_and_words(&self) -> String {
        let t = self.text();
        match self.amount.parse::<f64>() {
            Ok(n) => t.replacen(
                &self.amount,
                &format!("{} ({})", self.amount, number_words(n)),
                1,
            ),
            Err(_) => t,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.amount.is_empty()
    }

    pub fn value(&self) -> f64 {
        self.amount.parse().unwrap_or(0.0)
    }

    /// This quantity times `n`, in the same unit.
    pub fn times(&self, n: u32) -> Quantity {
        Quantity {
            amount: sig::plain(self.value() * f64::from(n)),
            unit: self.unit.clone(),
        }
    }
}

/// A quantity as a prescriber types it: `21`, `21 tabs`, `1 inhaler`, `100 mL`. Without a
/// unit, `default_unit` is used (the product's dispensable unit); with neither, it is refused.
pub fn parse_quantity(text: &str, default_unit: Option<&str>) -> Result<Quantity, String> {
    let text = text.trim();
    let (number, rest) = match text.find(|c: char| c.is_whitespace() || c.is_alphabetic()) {
        Some(at) => (&text[..at], text[at..].trim()),
        None => (text, ""),
    };
    let n = sig::number(number).map_err(|e| format!("quantity: {e}"))?;
    let unit = if rest.is_empty() {
        match default_unit {
            Some(u) => unit_named(u)
                .ok_or_else(|| format!("quantity: say in what (e.g. {number} tablets)"))?,
            None => {
                return Err(format!(
                    "quantity: say in what (e.g. {number} tablets, {number} mL, {number} inhaler)"
                ));
            }
        }
    } else {
        unit_of(rest).ok_or_else(|| {
            format!(
                "quantity: {rest:?} is not a unit to dispense (tablets, capsules, mL, g, inhalers, pens, vials, patches, suppositories, bottles, tubes…)"
            )
        })?
    };
    if unit.whole && n.fract() != 0.0 {
        return Err(format!(
            "quantity: {} are dispensed whole: write a whole number",
            unit.many
        ));
    }
    if n > 10_000.0 {
        return Err("quantity: at most 10000".into());
    }
    Ok(Quantity {
        amount: sig::plain(n),
        unit: unit.one.to_string(),
    })
}

/// Whether a quantity in `given` can be dispensed for a product dispensed in `wanted`: the
/// same unit, or a container (bottle, inhaler, pen…).
pub fn compatible(given: &str, wanted: &str) -> bool {
    given == wanted || unit_named(given).is_some_and(|u| u.package)
}

/// The kinds of dosage form, by how they are dispensed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `whole_only`: must not be split (extended-release, enteric-coated, …).
    Tablet {
        whole_only: bool,
    },
    Capsule,
    Liquid,
    Inhaler,
    Spray,
    Patch,
    Suppository,
    Topical,
    Drops,
    Pen,
    Vial,
    Lozenge,
    Unknown,
}

impl Form {
    /// The form of a product from its dosage form and route, as Health Canada writes them.
    pub fn of(dosage_form: &str, route: &str) -> Form {
        let f = dosage_form.to_lowercase();
        let r = route.to_lowercase();
        let has = |w: &str| f.contains(w);
        // Short words as whole words: "pen" is in "suspension".
        let word = |w: &str| f.split(|c: char| !c.is_alphanumeric()).any(|x| x == w);
        if has("inhalation capsule") || (has("capsule") && r.contains("inhal")) {
            Form::Capsule
        } else if has("inhaler") || has("aerosol") || (has("powder") && r.contains("inhal")) {
            Form::Inhaler
        } else if word("pen") || has("cartridge") {
            Form::Pen
        } else if has("injection") || has("vial") {
            Form::Vial
        } else if has("spray") {
            Form::Spray
        } else if has("drop")
            || has("ophthalmic")
            || word("otic")
            || r.contains("ophthalmic")
            || r.contains("otic")
        {
            Form::Drops
        } else if has("patch") || has("transdermal") {
            Form::Patch
        } else if has("suppositor") {
            Form::Suppository
        } else if has("cream") || has("ointment") || word("gel") || has("lotion") || word("paste") {
            Form::Topical
        } else if has("lozenge") {
            Form::Lozenge
        } else if has("tablet") {
            let whole_only = [
                "extended",
                "controlled",
                "sustained",
                "modified",
                "delayed",
                "enteric",
                "prolonged",
                "orally disintegrating",
            ]
            .iter()
            .any(|w| has(w));
            Form::Tablet { whole_only }
        } else if has("capsule") {
            Form::Capsule
        } else if has("solution")
            || has("suspension")
            || has("syrup")
            || has("elixir")
            || has("liquid")
        {
            Form::Liquid
        } else {
            Form::Unknown
        }
    }

    /// The unit it is dispensed in.
    pub fn unit(self) -> Option<&'static str> {
        Some(match self {
            Form::Tablet { .. } => "tablet",
            Form::Capsule => "capsule",
            Form::Liquid => "mL",
            Form::Inhaler => "inhaler",
            Form::Spray | Form::Drops => "bottle",
            Form::Patch => "patch",
            Form::Suppository => "suppository",
            Form::Topical => "g",
            Form::Pen => "pen",
            Form::Vial => "vial",
            Form::Lozenge => "lozenge",
            Form::Unknown => return None,
        })
    }

    /// The sig unit that counts one of it (`tab` for tablets).
    fn sig_unit(self) -> Option<&'static str> {
        Some(match self {
            Form::Tablet { .. } => "tab",
            Form::Capsule => "cap",
            Form::Patch => "patch",
            Form::Suppository => "supp",
            Form::Lozenge => "lozenge",
            _ => return None,
        })
    }
}

/// A strength: `amount` of `unit` (a sig unit: `mg`, `mcg`, `g`, `unit`, `mmol`) in one
/// dosage unit, or in `per_ml` mL of a liquid.
#[derive(Clone, Debug, PartialEq)]
pub struct Strength {
    pub amount: f64,
    pub unit: String,
    pub per_ml: Option<f64>,
}

/// Reads an ingredient's strength: `500` `mg`, `250` `mg/5 mL`, `100` `units/mL`, `100`
/// `mcg/dose`. `None` for what is not an amount (`%`).
pub fn strength(amount: &str, unit: &str) -> Option<Strength> {
    let amount: f64 = amount.trim().parse().ok().filter(|a: &f64| *a > 0.0)?;
    let unit = unit.trim().to_lowercase();
    let (num, den) = match unit.split_once('/') {
        Some((n, d)) => (n.trim().to_string(), Some(d.trim().to_string())),
        None => (unit.clone(), None),
    };
    let num = match num.as_str() {
        "mg" => "mg",
        "mcg" | "ug" | "µg" => "mcg",
        "g" => "g",
        "unit" | "units" | "iu" | "u" => "unit",
        "mmol" => "mmol",
        _ => return None,
    };
    let per_ml = match den.as_deref() {
        None
        | Some("dose" | "actuation" | "puff" | "spray" | "tab" | "tablet" | "cap" | "capsule") => {
            None
        }
        Some(d) => {
            let d = d.trim_end_matches("ml").trim();
            if !den.as_deref().is_some_and(|x| x.ends_with("ml")) {
                return None;
            }
            Some(if d.is_empty() { 1.0 } else { d.parse().ok()? })
        }
    };
    Some(Strength {
        amount,
        unit: num.to_string(),
        per_ml,
    })
}

/// `amount` of `unit` in `target` (masses convert; other units must be the same).
fn convert(amount: f64, unit: &str, target: &str) -> Option<f64> {
    if unit == target {
        return Some(amount);
    }
    Some(amount * sig::mg_per(unit)? / sig::mg_per(target)?)
}

/// A package's size: `200 doses` → (200, `doses`), `3 mL` → (3, `ml`).
fn package(text: &str) -> Option<(f64, String)> {
    let mut it = text.split_whitespace();
    let n: f64 = it.next()?.parse().ok().filter(|n: &f64| *n > 0.0)?;
    Some((n, it.next()?.to_lowercase()))
}

/// What the quantity is computed from: the product's form, ingredients' strengths, package.
pub struct Product<'a> {
    pub name: &'a str,
    pub form: &'a str,
    pub route: &'a str,
    /// `(strength, unit)` of each ingredient.
    pub strengths: Vec<(&'a str, &'a str)>,
    pub package: &'a str,
}

fn whole(x: f64) -> bool {
    (x - x.round()).abs() < 1e-9
}

/// The quantity to dispense for `sig` of `product`, or why it cannot be derived.
pub fn compute(sig: &Sig, product: &Product) -> Result<Quantity, String> {
    let form = Form::of(product.form, product.route);
    let (total, tunit) = sig.total()?;
    let name = product.name;
    let single = match &product.strengths[..] {
        [(a, u)] => strength(a, u),
        _ => None,
    };
    let many = product.strengths.len() > 1;
    let out = |amount: f64, unit: &str| Quantity {
        amount: sig::plain(amount.ceil().max(1.0)),
        unit: unit.to_string(),
    };
    // A dose given as a mass: how many dosage units each dose and the total are.
    let in_units = |per_unit: &Strength, what: &str, halves: bool| -> Result<f64, String> {
        let (lo, hi) = sig.dose_range();
        for d in [lo, hi] {
            let Some(n) = convert(d, &sig.unit, &per_unit.unit).map(|d| d / per_unit.amount) else {
                continue;
            };
            let ok = whole(n) || (halves && whole(n * 2.0));
            if !ok {
                return Err(format!(
                    "{} {} is not a whole number of {} {} {what}: change the dose or the product, or give the quantity",
                    sig::plain(d),
                    sig.unit,
                    sig::plain(per_unit.amount),
                    per_unit.unit
                ));
            }
        }
        convert(total, &tunit, &per_unit.unit)
            .map(|t| t / per_unit.amount)
            .ok_or_else(|| {
                format!(
                    "the sig is in {tunit} but {name}'s strength is in {}",
                    per_unit.unit
                )
            })
    };
    match form {
        Form::Tablet { .. } | Form::Capsule | Form::Patch | Form::Suppository | Form::Lozenge => {
            let unit = form.unit().unwrap_or("tablet");
            let count = form.sig_unit().unwrap_or("tab");
            if tunit == count {
                return Ok(out(total, unit));
            }
            if sig::mg_per(&tunit).is_some() || tunit == "unit" || tunit == "mmol" {
                if many {
                    return Err(format!(
                        "{name} has several ingredients: write the dose in {}s",
                        sig::words_of("1", count)
                    ));
                }
                let s = single
                    .filter(|s| s.per_ml.is_none())
                    .ok_or_else(|| format!("{name}'s strength is not known: write the dose in {}s, or give the quantity", sig::words_of("1", count)))?;
                let halves = form == Form::Tablet { whole_only: false };
                let what = if halves {
                    format!("{unit}s (or halves)")
                } else {
                    format!("{unit}s")
                };
                return Ok(out(in_units(&s, &what, halves)?, unit));
            }
            Err(format!(
                "the sig is in {} but {name} is a {}: write the dose in {}s or in its strength's unit",
                sig::words_of("2", &tunit),
                product.form,
                sig::words_of("1", count)
            ))
        }
        Form::Liquid => {
            if tunit == "mL" {
                return Ok(out(total, "mL"));
            }
            let s = single
                .filter(|s| s.per_ml.is_some())
                .ok_or_else(|| format!("{name}'s concentration is not known: write the dose in mL, or give the quantity"))?;
            let per_ml = s.amount / s.per_ml.unwrap_or(1.0);
            let ml = convert(total, &tunit, &s.unit)
                .ok_or_else(|| format!("the sig is in {tunit} but {name} is {} per mL", s.unit))?
                / per_ml;
            Ok(out(ml, "mL"))
        }
        Form::Inhaler | Form::Spray => {
            let per_device = package(product.package).filter(|(_, u)| {
                [
                    "dose",
                    "doses",
                    "actuation",
                    "actuations",
                    "puff",
                    "puffs",
                    "spray",
                    "sprays",
                    "metered",
                ]
                .contains(&u.as_str())
            });
            let doses = match tunit.as_str() {
                "puff" | "spray" => total,
                _ => {
                    let s = single.filter(|s| s.per_ml.is_none()).ok_or_else(|| {
                        format!(
                            "{name}'s dose per puff is not known: write the dose in puffs or sprays"
                        )
                    })?;
                    in_units(&s, "puffs", false)?
                }
            };
            let unit = form.unit().unwrap_or("inhaler");
            let (n, _) = per_device.ok_or_else(|| {
                format!(
                    "the number of doses in one {name} {unit} is not known: give the quantity (e.g. 1 {unit})"
                )
            })?;
            Ok(out(doses / n, unit))
        }
        Form::Pen | Form::Vial => {
            let ml = if tunit == "mL" {
                total
            } else {
                let s = single.filter(|s| s.per_ml.is_some()).ok_or_else(|| {
                    format!("{name}'s concentration is not known: give the quantity")
                })?;
                convert(total, &tunit, &s.unit).ok_or_else(|| {
                    format!("the sig is in {tunit} but {name} is {} per mL", s.unit)
                })? / (s.amount / s.per_ml.unwrap_or(1.0))
            };
            let unit = form.unit().unwrap_or("pen");
            let (n, _) = package(product.package)
                .filter(|(_, u)| u == "ml")
                .ok_or_else(|| {
                    format!("the volume of one {name} {unit} is not known: give the quantity (e.g. 1 {unit})")
                })?;
            Ok(out(ml / n, unit))
        }
        Form::Drops => Err(format!(
            "drops are not counted into bottles: give the quantity (e.g. 1 bottle{})",
            if product.package.is_empty() {
                String::new()
            } else {
                format!(" of {}", product.package)
            }
        )),
        Form::Topical => Err(format!(
            "{name} is applied by area: give the quantity in g or tubes"
        )),
        Form::Unknown => match tunit.as_str() {
            "tab" | "cap" | "patch" | "supp" | "lozenge" => {
                let unit = match tunit.as_str() {
                    "tab" => "tablet",
                    "cap" => "capsule",
                    "supp" => "suppository",
                    u => u,
                };
                Ok(out(total, unit))
            }
            "mL" => Ok(out(total, "mL")),
            _ => Err(format!(
                "{name}'s form and strength are not known: give the quantity with its unit (e.g. 30 tablets)"
            )),
        },
    }
}

/// A number in words, as a controlled-drug prescription writes its quantity: `60` → `sixty`,
/// `7.5` → `seven point five`.
pub fn number_words(n: f64) -> String {
    let whole = n.trunc() as u64;
    let mut s = integer_words(whole);
    let text = sig::plain(n);
    if let Some((_, frac)) = text.split_once('.') {
        s += " point";
        for d in frac.chars() {
            s += " ";
            s += ONES[d.to_digit(10).unwrap_or(0) as usize];
        }
    }
    s
}

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

fn integer_words(n: u64) -> String {
    match n {
        0..=19 => ONES[n as usize].to_string(),
        20..=99 => {
            let t = TENS[(n / 10) as usize];
            if n.is_multiple_of(10) {
                t.to_string()
            } else {
                format!("{t}-{}", ONES[(n % 10) as usize])
            }
        }
        100..=999 => {
            let rest = n % 100;
            let h = format!("{} hundred", ONES[(n / 100) as usize]);
            if rest == 0 {
                h
            } else {
                format!("{h} {}", integer_words(rest))
            }
        }
        _ => {
            let rest = n % 1000;
            let t = format!("{} thousand", integer_words(n / 1000));
            if rest == 0 {
                t
            } else {
                format!("{t} {}", integer_words(rest))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product<'a>(
        form: &'a str,
        strengths: Vec<(&'a str, &'a str)>,
        package: &'a str,
    ) -> Product<'a> {
        Product {
            name: "Sample",
            form,
            route: "",
            strengths,
            package,
        }
    }

    fn q(sig_text: &str, p: &Product) -> Result<String, String> {
        compute(&sig::parse(sig_text).unwrap(), p).map(|q| q.text())
    }

    #[test]
    fn quantities_are_in_dispensable_units() {
        let tab500 = product("tablet", vec![("500", "mg")], "");
        assert_eq!(
            q("500 mg po tid x 7 days", &tab500).as_deref(),
            Ok("21 tablets")
        );
        assert_eq!(
            q("1 tab PO BID x 10 days", &tab500).as_deref(),
            Ok("20 tablets")
        );
        assert_eq!(
            q("250 mg PO BID x 7 days", &tab500).as_deref(),
            Ok("7 tablets")
        );
        assert_eq!(
            q("1 g PO BID x 5 days", &tab500).as_deref(),
            Ok("20 tablets")
        );
        assert_eq!(
            q("0.5 tab PO daily x 7 days", &tab500).as_deref(),
            Ok("4 tablets")
        );
        let er = product("extended-release tablet", vec![("500", "mg")], "");
        assert!(
            q("250 mg PO BID x 7 days", &er)
                .unwrap_err()
                .contains("not a whole number")
        );
        let cap = product("capsule", vec![("500", "mg")], "");
        assert_eq!(
            q("500 mg PO TID x 7 days", &cap).as_deref(),
            Ok("21 capsules")
        );
        assert!(
            q("1 tab PO TID x 7 days", &cap)
                .unwrap_err()
                .contains("capsule")
        );
        let susp = product("oral suspension", vec![("250", "mg/5 mL")], "100 mL");
        assert_eq!(q("250 mg PO TID x 10 days", &susp).as_deref(), Ok("150 mL"));
        assert_eq!(q("5 mL PO TID x 10 days", &susp).as_deref(), Ok("150 mL"));
        let inhaler = product("metered-dose inhaler", vec![("100", "mcg")], "200 doses");
        assert_eq!(
            q("2 puffs INH QID x 30 days", &inhaler).as_deref(),
            Ok("2 inhalers")
        );
        assert_eq!(
            q("200 mcg INH BID x 30 days", &inhaler).as_deref(),
            Ok("1 inhaler")
        );
        let no_pack = product("metered-dose inhaler", vec![("100", "mcg")], "");
        assert!(
            q("2 puffs INH QID x 30 days", &no_pack)
                .unwrap_err()
                .contains("give the quantity")
        );
        let pen = product(
            "solution for injection (pen)",
            vec![("100", "units/mL")],
            "3 mL",
        );
        assert_eq!(
            q("10 units subcut QHS x 30 days", &pen).as_deref(),
            Ok("1 pen")
        );
        assert_eq!(
            q("20 units subcut QHS x 30 days", &pen).as_deref(),
            Ok("2 pens")
        );
        let drops = product("ophthalmic solution", vec![("0.005", "%")], "2.5 mL");
        assert!(
            q("1 drop OU QHS x 30 days", &drops)
                .unwrap_err()
                .contains("bottle of 2.5 mL")
        );
        let combo = product("tablet", vec![("875", "mg"), ("125", "mg")], "");
        assert!(
            q("875 mg PO BID x 7 days", &combo)
                .unwrap_err()
                .contains("several ingredients")
        );
        assert_eq!(
            q("1 tab PO BID x 7 days", &combo).as_deref(),
            Ok("14 tablets")
        );
        let custom = product("", vec![], "");
        assert_eq!(
            q("1 tab PO BID x 7 days", &custom).as_deref(),
            Ok("14 tablets")
        );
        assert!(
            q("500 mg PO BID x 7 days", &custom)
                .unwrap_err()
                .contains("not known")
        );
        // PRN: from the maximum daily dose, else refused.
        assert_eq!(
            q(
                "1-2 tabs PO Q4-6H PRN pain max 8 tabs/day x 5 days",
                &tab500
            )
            .as_deref(),
            Ok("40 tablets")
        );
        assert_eq!(
            q("1-2 tabs PO Q6H PRN pain max 3 g/day x 2 days", &tab500).as_deref(),
            Ok("12 tablets")
        );
        assert!(
            q("1 tab PO Q4H PRN pain", &tab500)
                .unwrap_err()
                .contains("PRN")
        );
    }

    #[test]
    fn quantities_typed_carry_their_unit() {
        let p = |t: &str, d: Option<&str>| parse_quantity(t, d).map(|q| q.text());
        assert_eq!(p("21", Some("tablet")).as_deref(), Ok("21 tablets"));
        assert_eq!(p("21 tabs", None).as_deref(), Ok("21 tablets"));
        assert_eq!(p("1 inhaler", Some("inhaler")).as_deref(), Ok("1 inhaler"));
        assert_eq!(p("100 mL", None).as_deref(), Ok("100 mL"));
        assert_eq!(p("2.5 mL", None).as_deref(), Ok("2.5 mL"));
        assert!(p("30", None).unwrap_err().contains("say in what"));
        assert!(p("10.5 tablets", None).unwrap_err().contains("whole"));
        assert!(p(".5 mL", None).unwrap_err().contains("write 0.5"));
        assert!(p("30 widgets", None).unwrap_err().contains("not a unit"));
        assert!(compatible("bottle", "mL"));
        assert!(!compatible("mL", "tablet"));
    }

    #[test]
    fn numbers_in_words() {
        for (n, w) in [
            (0.0, "zero"),
            (7.0, "seven"),
            (21.0, "twenty-one"),
            (60.0, "sixty"),
            (100.0, "one hundred"),
            (120.0, "one hundred twenty"),
            (1500.0, "one thousand five hundred"),
            (7.5, "seven point five"),
        ] {
            assert_eq!(number_words(n), w);
        }
        let q = Quantity {
            amount: "60".into(),
            unit: "tablet".into(),
        };
        assert_eq!(q.figures_and_words(), "60 (sixty) tablets");
        let old: Quantity = serde_json::from_str("\"30\"").unwrap();
        assert_eq!(old.text(), "30");
    }
}
