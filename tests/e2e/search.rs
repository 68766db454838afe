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
