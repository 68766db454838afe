//! Searching a few thousand generated patients: accent-insensitive name prefixes, exact birth
//! dates and identifiers, combinations, and paging that neither skips nor repeats.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{
    Api, ON_HCN_SYSTEM, Sandbox, card_of, demo, enc, hcn, id_of, name_matches, raw_names,
};

const PATIENTS: usize = 3000;

fn ids(ps: &[Value]) -> BTreeSet<String> {
    ps.iter().map(id_of).collect()
}

#[track_caller]
fn assert_no_duplicates(ps: &[Value], what: &str) {
    let set = ids(ps);
    assert_eq!(set.len(), ps.len(), "{what}: a patient was listed twice");
}

/// Page through a search with `_count=count`, checking every page's size.
async fn paged(api: &Api, token: &str, query: &str, count: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = format!("/api/v1/patients?{query}&_count={count}");
    loop {
        let r = api.get(&path, token).await.expect(200);
        let entries = r.json["entry"].as_array().expect("entries");
        assert!(
            entries.len() <= count,
            "{path}: page of {} > {count}",
            entries.len()
        );
        let next = r.json["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
        if next.is_some() {
            assert_eq!(
                entries.len(),
                count,
                "{path}: only the last page may be short"
            );
        }
        out.extend(entries.iter().map(|e| e["resource"].clone()));
        match next {
            Some(n) => path = n,
            None => return out,
        }
    }
}

/// The same search in big and small pages: both complete, equal, without repeats, and equal
/// to what the full list says should match.
async fn check(api: &Api, token: &str, query: &str, expected: &BTreeSet<String>) -> Vec<Value> {
    let big = paged(api, token, query, 100).await;
    let small = paged(api, token, query, 7).await;
    assert_no_duplicates(&big, query);
    assert_no_duplicates(&small, query);
    assert_eq!(
        ids(&big),
        ids(&small),
        "{query}: _count=100 and _count=7 disagree"
    );
    let got = ids(&big);
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{query}: {} missing, {} unexpected",
        missing.len(),
        extra.len()
    );
    big
}

#[tokio::test]
async fn searching_thousands_of_patients_finds_each_match_once() {
    let sb = Sandbox::new();
    let server = sb.demo(PATIENTS);
    let api = server.api();
    let t = server.login(demo::PHYSICIAN).await;

    // The whole register, page by page: every patient exactly once.
    let all = paged(&api, &t, "", 100).await;
    assert_eq!(all.len(), PATIENTS);
    assert_no_duplicates(&all, "full list");
    let expect = |f: &dyn Fn(&Value) -> bool| -> BTreeSet<String> {
        all.iter().filter(|p| f(p)).map(id_of).collect()
    };

    // Accent- and case-insensitive name prefixes.
    for (query, accented) in [
        ("jose", "José"),
        ("zoe", "Zoë"),
        ("NGUY", "Nguyễn"),
        ("lévy", "Lévy"),
        // Short prefixes that start several names of one patient ("Noah Noël Nowak").
        ("no", "Noël"),
        ("ma", "Mathis"),
        ("é", "Étienne"),
    ] {
        let expected = expect(&|p| name_matches(p, query));
        assert!(!expected.is_empty(), "the demo data has no {accented}");
        let found = check(&api, &t, &format!("name={}", enc(query)), &expected).await;
        for p in &found {
            assert!(name_matches(p, query), "{query} found {}", raw_names(p));
        }
        assert!(
            found.iter().any(|p| raw_names(p).contains(accented)),
            "{query} should find {accented}"
        );
    }

    // Several words must all match (in any order), e.g. a given name and a family prefix.
    let zoe = all
        .iter()
        .find(|p| raw_names(p).contains("Zoë"))
        .expect("a Zoë");
    let family = zoe["name"][0]["family"].as_str().unwrap();
    let prefix: String = family.chars().take(3).collect();
    for query in [format!("zoe {prefix}"), format!("{prefix} ZOË")] {
        let expected = expect(&|p| name_matches(p, &query));
        assert!(expected.contains(&id_of(zoe)));
        check(&api, &t, &format!("name={}", enc(&query)), &expected).await;
    }

    // Exact birth date.
    let someone = &all[PATIENTS / 3];
    let date = someone["birthDate"].as_str().unwrap();
    let expected = expect(&|p| p["birthDate"] == date);
    let found = check(&api, &t, &format!("birthdate={date}"), &expected).await;
    assert!(found.iter().all(|p| p["birthDate"] == date));
    check(&api, &t, &format!("birthdate=eq{date}"), &expected).await;

    // Name and birth date together.
    let family = someone["name"][0]["family"].as_str().unwrap();
    let expected = expect(&|p| p["birthDate"] == date && name_matches(p, family));
    assert!(expected.contains(&id_of(someone)));
    check(
        &api,
        &t,
        &format!("name={}&birthdate={date}", enc(family)),
        &expected,
    )
    .await;

    // Exact identifier, bare and with its system; the clinic chart number too.
    let card = card_of(someone).unwrap();
    let only = BTreeSet::from([id_of(someone)]);
    check(&api, &t, &format!("identifier={card}"), &only).await;
    check(
        &api,
        &t,
        &format!("identifier={}", enc(&format!("{ON_HCN_SYSTEM}|{card}"))),
        &only,
    )
    .await;
    let chart = someone["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["system"] == "urn:osler:chart-number")
        .expect("chart number");
    check(
        &api,
        &t,
        &format!(
            "identifier={}",
            enc(&format!(
                "urn:osler:chart-number|{}",
                chart["value"].as_str().unwrap()
            ))
        ),
        &only,
    )
    .await;
    // Nor is a prefix of the naming system the naming system.
    check(
        &api,
        &t,
        &format!(
            "identifier={}",
            enc(&format!("https://fhir.infoway-inforoute.ca|{card}"))
        ),
        &BTreeSet::new(),
    )
    .await;
    // A prefix of a card number is not the card number.
    check(
        &api,
        &t,
        &format!("identifier={}", &card[..9]),
        &BTreeSet::new(),
    )
    .await;
    check(
        &api,
        &t,
        &format!("identifier={}", hcn(77)),
        &BTreeSet::new(),
    )
    .await;
    // Identifier and birth date together must both hold.
    check(
        &api,
        &t,
        &format!("identifier={card}&birthdate=1850-01-01"),
        &BTreeSet::new(),
    )
    .await;

    // Nonsense is refused, not answered with everything.
    for q in [
        "birthdate=1980-13-45",
        "birthdate=yesterday",
        "name=%21%21%21",
        "name=jose&cursor=garbage",
        "cursor=%21%21",
    ] {
        let r = api
            .get(&format!("/api/v1/patients?{q}"), &t)
            .await
            .expect(400);
        assert_eq!(r.error_code(), "invalid", "{q}");
    }
}

/// The largest record the limits accept, every searchable word starting with `prefix`:
/// 10 names of a family name and 3 given names (40 words of 100 characters), each name with
/// 10 prefixes, 10 suffixes and a 250-character text, and every list at its limit.
fn worst_record(prefix: &str, card: &str) -> Value {
    let width = 100 - prefix.chars().count();
    let word = |i: usize| format!("{prefix}{i:0>width$}");
    let filler = |c: char, n: usize| c.to_string().repeat(n);
    let names: Vec<Value> = (0..10)
        .map(|n| {
            serde_json::json!({
                "family": word(n * 4),
                "given": [word(n * 4 + 1), word(n * 4 + 2), word(n * 4 + 3)],
                "prefix": (0..10).map(|_| filler('P', 100)).collect::<Vec<_>>(),
                "suffix": (0..10).map(|_| filler('S', 100)).collect::<Vec<_>>(),
                "text": filler('T', 250),
            })
        })
        .collect();
    let mut identifiers = vec![serde_json::json!({"system": ON_HCN_SYSTEM, "value": card})];
    for i in 1..10 {
        identifiers.push(serde_json::json!({
            "system": format!("urn:example:system-{i}"),
            "value": format!("{card}{}", filler('X', 50)),
        }));
    }
    serde_json::json!({
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": names,
        "telecom": (0..10).map(|i| serde_json::json!({"system": "other", "value": format!("{i}{}", filler('9', 249))})).collect::<Vec<_>>(),
        "address": (0..10).map(|_| serde_json::json!({
            "line": (0..4).map(|_| filler('L', 250)).collect::<Vec<_>>(),
            "city": filler('C', 250), "district": filler('D', 250), "state": filler('S', 250),
            "postalCode": filler('Z', 250), "country": filler('K', 250), "text": filler('A', 250)
        })).collect::<Vec<_>>(),
        "birthDate": "1950-01-01",
    })
}

/// Median time of `runs` searches, in milliseconds.
async fn median_ms(api: &Api, token: &str, query: &str, runs: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = std::time::Instant::now();
        api.get(&format!("/api/v1/patients?{query}"), token)
            .await
            .expect(200);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times[runs / 2]
}

#[tokio::test]
async fn no_record_the_limits_accept_makes_a_search_much_slower() {
    let sb = Sandbox::new();
    let server = sb.demo(300);
    let api = server.api();
    let t = server.login(demo::RECEPTION).await;

    // The record that stalled the server: 4,000 given names.
    let mut stall = crate::support::patient("Dzstall", "D0", "1950-01-01", &hcn(1));
    stall["name"][0]["given"] =
        serde_json::json!((0..4000).map(|i| format!("Dz{i}")).collect::<Vec<_>>());
    let r = api.post("/api/v1/patients", &t, &stall).await.expect(400);
    assert_eq!(r.json["error"]["field"], "name[0].given", "{}", r.text);

    // A page of ordinary records under one prefix, timed.
    for i in 0..40 {
        api.create(
            &t,
            &crate::support::patient("Dznormal", &format!("Ann{i}"), "1950-01-01", &hcn(10 + i)),
        )
        .await;
    }
    let query = "name=dz&_count=20";
    median_ms(&api, &t, query, 3).await; // warm up
    let normal = median_ms(&api, &t, query, 15).await;

    // The worst record the limits accept, all 40 of its words under the same prefix (and
    // sorting before the ordinary ones, so every search page meets it first).
    let worst = worst_record("Dz0", &hcn(5));
    let body = worst.to_string();
    let created = api.create(&t, &worst).await;
    let worst_ms = median_ms(&api, &t, query, 15).await;
    let page = api
        .get(&format!("/api/v1/patients?{query}"), &t)
        .await
        .expect(200);
    let entries = page.json["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 20);
    assert_eq!(
        entries[0]["resource"]["id"], created["id"],
        "listed once, first"
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["resource"]["id"] == created["id"])
            .count(),
        1
    );
    let ratio = worst_ms / normal;
    eprintln!(
        "search `{query}`: ordinary page {normal:.2} ms, with the worst accepted record \
         ({} KB, 40 index words under the prefix) {worst_ms:.2} ms: {ratio:.1}x",
        body.len() / 1024
    );
    assert!(
        ratio < 10.0,
        "a search meeting the worst record took {ratio:.1}x an ordinary one"
    );
}
