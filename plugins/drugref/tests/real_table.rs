//! The real OSCAR interaction table, checked natively: set `OSLER_HOLBROOK` to the path of
//! `interactions-holbrook.txt` (open-osp/Open-Drugref, `src/main/resources/`; it is not part of
//! this repository) and run `cargo test -p drugref --test real_table -- --nocapture`. Without
//! the variable the test says so and passes.
//!
//! It parses the file as an administrator's import does (ATCvet rows accepted, then skipped),
//! stores it in the entries the plugin writes, and checks every row's two codes in both orders
//! (a class row with a substance code inside the class): each row must be found, as the alert
//! or among the rows listed with it, in its own direction.

use drugref::check::{self, Code, Memory};
use drugref::data::{self, Vet};
use drugref::{atc, store};

/// A substance-level code inside a code or class (`M01A` → `M01AA01`).
fn substance(code: &str) -> String {
    let human = atc::human(code);
    let filler = "A00AA01";
    match human.len() {
        1 => format!("{human}{}", &filler[1..]),
        3 => format!("{human}{}", &filler[3..]),
        4 => format!("{human}{}", &filler[4..]),
        5 => format!("{human}{}", &filler[5..]),
        _ => human.to_string(),
    }
}

#[test]
fn every_row_of_the_real_table_is_found_in_both_orders() {
    let Ok(path) = std::env::var("OSLER_HOLBROOK") else {
        eprintln!("OSLER_HOLBROOK is not set: the real table was not checked");
        return;
    };
    let bytes = std::fs::read(&path).expect("read the table");
    let text = match data::decode(&bytes, None) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("not UTF-8 ({e}); decoding as iso-8859-1");
            data::decode(&bytes, Some("iso-8859-1")).expect("Latin-1")
        }
    };
    let skipped = data::parse_interactions(&text, Vet::Skip).expect("parses with atcvet=skip");
    let parsed = data::parse_interactions(&text, Vet::Accept).expect("parses");
    let rows = parsed.rows;
    println!(
        "parsed: {} rows imported ({} with atcvet=skip, {} lines skipped: {})",
        rows.len(),
        skipped.rows.len(),
        skipped.skipped.len(),
        skipped
            .skipped
            .iter()
            .map(|l| l.line.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let entries = store::interaction_entries(&rows).expect("storable");
    println!("stored as {} entries", entries.len());
    let mut table = Memory::new(entries);
    let (mut found, mut missed, mut wrong_way, mut no_effect) = (0, 0, 0, 0);
    let started = std::time::Instant::now();
    for row in &rows {
        if check::no_effect(row) {
            no_effect += 1;
            continue;
        }
        let (a, b) = (substance(&row.atc_a), substance(&row.atc_b));
        for order in [[&a, &b], [&b, &a]] {
            let drugs = order.map(|c| {
                vec![Code {
                    code: c.to_string(),
                    via: None,
                }]
            });
            let alerts = check::interactions(&drugs, &mut [&mut table]).expect("check");
            let hit = alerts
                .iter()
                .flat_map(|al| std::iter::once(&al.hit).chain(&al.also))
                .find(|h| h.row.id == row.id);
            match hit {
                None => {
                    missed += 1;
                    if missed <= 10 {
                        eprintln!("missed row {} ({} {})", row.id, row.atc_a, row.atc_b);
                    }
                }
                Some(h) => {
                    let affecting = &drugs[h.affecting][0].code;
                    if *affecting == a || a == b {
                        found += 1;
                    } else {
                        wrong_way += 1;
                    }
                }
            }
        }
    }
    println!(
        "checked in {:.1} s: {found} found (each row in both orders), {missed} missed, {wrong_way} in the wrong direction; {no_effect} rows say no effect and are never alerts",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(missed, 0);
    assert_eq!(wrong_way, 0);
    assert_eq!(found, 2 * (rows.len() - no_effect));
}
