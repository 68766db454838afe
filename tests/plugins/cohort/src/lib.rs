//! A research (sandbox) plugin for the tests of the research sandbox. `parameters.mode`:
//!
//! - `count` (default): de-identified patients by gender, in the postal area
//!   `parameters.postalPrefix` when given (the first three characters of a postal code), as
//!   counts; plus the mean birth year (a number) and a random number (seeded from the run).
//! - `probe`: every de-identified record in the postal area as text, with its pseudonym; what
//!   `get` answers for `parameters.realId` (a real patient id); and what a kv batch that
//!   publishes an event answers.
//! - `burn`: loops until the host stops it (fuel).

use osler_sdk::research::{Cell, Research, RunInput, Table};
use osler_sdk::{Error, kv, log, patients};
use serde_json::Value;

struct Cohort;

fn all_patients(prefix: Option<&str>) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = patients::deidentified::list(cursor.as_deref(), 100)?;
        for p in page.patients {
            let area = p
                .pointer("/address/0/postalCode")
                .and_then(Value::as_str)
                .unwrap_or("");
            if prefix.is_none_or(|x| x == area) {
                out.push(p);
            }
        }
        match page.next {
            Some(n) => cursor = Some(n),
            None => return Ok(out),
        }
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn count(params: &Value) -> Result<Table, Error> {
    let prefix = params["postalPrefix"].as_str();
    let found = all_patients(prefix)?;
    let mut rows = Vec::new();
    for g in ["female", "male", "other", "unknown"] {
        let n = found.iter().filter(|p| p["gender"] == g).count() as u64;
        rows.push(vec![text(g), Cell::Count(n), Cell::Empty]);
    }
    let years: Vec<f64> = found
        .iter()
        .filter_map(|p| p["birthDate"].as_str()?.parse::<f64>().ok())
        .collect();
    let mean = if years.is_empty() {
        Cell::Empty
    } else {
        Cell::Number(years.iter().sum::<f64>() / years.len() as f64)
    };
    rows.push(vec![text("all"), Cell::Count(found.len() as u64), mean]);
    // Seeded from the run by the host: the same run gives the same number.
    let mut buf = [0u8; 8];
    let random = std::collections::hash_map::RandomState::new();
    use std::hash::BuildHasher;
    buf.copy_from_slice(&random.hash_one(42u64).to_be_bytes());
    rows.push(vec![
        text("random"),
        Cell::Empty,
        Cell::Number((u64::from_be_bytes(buf) % 1000) as f64),
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(-1.0);
    rows.push(vec![text("clock"), Cell::Empty, Cell::Number(now)]);
    log::info("counted a cohort");
    Ok(Table {
        columns: vec!["group".into(), "patients".into(), "value".into()],
        rows,
    })
}

fn probe(params: &Value) -> Result<Table, Error> {
    let mut rows = Vec::new();
    for p in all_patients(params["postalPrefix"].as_str())? {
        let id = p["id"].as_str().unwrap_or("").to_string();
        // What `get` answers for the pseudonym it was given.
        let again = match patients::deidentified::get(&id) {
            Ok(q) => q.to_string(),
            Err(e) => format!("error {}", e.code()),
        };
        rows.push(vec![
            text("record"),
            text(id),
            text(p.to_string()),
            text(again),
        ]);
    }
    if let Some(real) = params["realId"].as_str() {
        let answer = match patients::deidentified::get(real) {
            Ok(p) => format!("read {p}"),
            Err(e) => format!("error {}", e.code()),
        };
        rows.push(vec![text("real-id"), text(real), text(answer), Cell::Empty]);
    }
    let publish = match kv::Batch::new()
        .put("probe", &1)
        .publish("cohort.leak", &serde_json::json!({"n": 1}))
        .commit()
    {
        Ok(()) => "published".to_string(),
        Err(e) => format!("error {}", e.code()),
    };
    rows.push(vec![
        text("publish"),
        Cell::Empty,
        text(publish),
        Cell::Empty,
    ]);
    let before = match kv::get::<String>("own") {
        Ok(Some(v)) => format!("was {v}"),
        Ok(None) => "was empty".to_string(),
        Err(e) => format!("error {}", e.code()),
    };
    let put = match kv::put("own", &"kept") {
        Ok(()) => format!("stored ({before})"),
        Err(e) => format!("error {}", e.code()),
    };
    rows.push(vec![text("kv"), Cell::Empty, text(put), Cell::Empty]);
    Ok(Table {
        columns: vec!["what".into(), "id".into(), "seen".into(), "again".into()],
        rows,
    })
}

fn burn() -> Result<Table, Error> {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        if x == 0 {
            return Err(Error::internal("unreachable"));
        }
    }
}

impl Research for Cohort {
    fn run(input: RunInput) -> Result<Table, Error> {
        let params: Value = serde_json::from_str(&input.parameters)
            .map_err(|e| Error::invalid(format!("parameters: {e}")))?;
        match params["mode"].as_str().unwrap_or("count") {
            "count" => count(&params),
            "probe" => probe(&params),
            "burn" => burn(),
            other => Err(Error::invalid(format!("no mode '{other}'"))),
        }
    }
}

osler_sdk::export_research!(Cohort);
