//! Prescribing a clinic can trust (issue 13), end to end: the real binary, both plugins built
//! with `osler plugin build`, prescribing calling the drug reference through
//! `osler:drugref/lookup@0.3.1`. Allergies by the names clinicians type, graded
//! cross-sensitivities, one interaction warning per pair in its direction, combination
//! products, quantities in dispensable units, controlled drugs, the ISMP do-not-use sigs, the
//! complete printed prescription and its settings, and layered interaction data.

use serde_json::{Value, json};

use crate::prescribing::{Clinic, clinic, import, new_patient, prescribe, warnings};
use crate::support::{hcn, rich_patient};

// Seed products (sample data, not real DINs).
const AMOXICILLIN: &str = "99000151";
const AMOXICILLIN_SUSPENSION: &str = "99000164";
const COTRIMOXAZOLE: &str = "99000158";
const TRIMETHOPRIM: &str = "99000165";
const CEPHALEXIN: &str = "99000154";
const WARFARIN: &str = "99000011";
const IBUPROFEN: &str = "99000031";
const LITHIUM: &str = "99000144";
const LISINOPRIL_HCTZ: &str = "99000065";
const METRONIDAZOLE: &str = "99000161";
const SALBUTAMOL: &str = "99000171";
const ACETAMINOPHEN: &str = "99000041";
const MORPHINE: &str = "99000142";
const LORAZEPAM: &str = "99000143";
const SERTRALINE: &str = "99000131";
const MOCLOBEMIDE: &str = "99000136";

async fn allergy(c: &Clinic, pid: &str, body: Value) -> Value {
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/allergies"),
            &c.nurse,
            &body,
        )
        .await
        .expect(201)
        .json
}

/// The checks a prescribe would run, as the physician.
pub async fn check(c: &Clinic, pid: &str, din: &str) -> Value {
    c.api
        .post(
            &format!("/plugins/prescribing/api/patients/{pid}/check"),
            &c.lee,
            &json!({ "din": din }),
        )
        .await
        .expect(200)
        .json["checks"]
        .clone()
}

fn of_kind(checks: &Value, kind: &str) -> Vec<Value> {
    checks["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == kind)
        .cloned()
        .collect()
}

async fn active_count(c: &Clinic, pid: &str) -> usize {
    c.api
        .get(&format!("/plugins/prescribing/api/patients/{pid}"), &c.lee)
        .await
        .expect(200)
        .json["active"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn allergies_by_common_name_one_warning_per_pair_and_quantities_in_dispensable_units() {
    let c = clinic().await;

    // Allergies as clinicians type them. The answer says how each will be checked.
    let pid = new_patient(&c, "Okonkwo", 31).await;
    let pen = allergy(
        &c,
        &pid,
        json!({"kind": "ingredient", "allergen": "penicillin", "reaction": "hives", "severity": "moderate"}),
    )
    .await;
    assert_eq!(pen["check"]["checked"], true, "{pen}");
    assert!(
        pen["check"]["description"]
            .as_str()
            .unwrap()
            .contains("penicillins"),
        "{pen}"
    );
    allergy(
        &c,
        &pid,
        json!({"kind": "free-text", "allergen": "sulfa", "reaction": "rash", "severity": "mild"}),
    )
    .await;
    let unknown = allergy(
        &c,
        &pid,
        json!({"kind": "free-text", "allergen": "Zorblax", "severity": "moderate"}),
    )
    .await;
    assert_eq!(unknown["check"]["checked"], false);

    // "penicillin" warns on amoxicillin, "sulfa" on co-trimoxazole, and the unknown allergen
    // is reported as not checked, never as "no allergies found".
    let amox = check(&c, &pid, AMOXICILLIN).await;
    let matched = of_kind(&amox, "allergy");
    assert_eq!(matched.len(), 1, "{amox}");
    assert!(
        matched[0]["message"]
            .as_str()
            .unwrap()
            .contains("one of the penicillins"),
        "{amox}"
    );
    assert_eq!(matched[0]["blocking"], true);
    let septra = check(&c, &pid, COTRIMOXAZOLE).await;
    let matched = of_kind(&septra, "allergy");
    assert_eq!(matched.len(), 1, "{septra}");
    assert!(matched[0]["message"].as_str().unwrap().contains("sulfa"));
    let tmp = check(&c, &pid, TRIMETHOPRIM).await;
    assert!(
        of_kind(&tmp, "allergy").is_empty(),
        "trimethoprim is no sulfonamide: {tmp}"
    );
    let not_checked = tmp["notChecked"].as_array().unwrap();
    assert!(
        not_checked
            .iter()
            .any(|n| n.as_str().unwrap().contains("Zorblax")),
        "{tmp}"
    );
    let message = tmp["message"].as_str().unwrap();
    assert!(message.contains("could NOT be checked"), "{message}");
    assert!(!message.contains("no interactions or allergies found"));
    // The chart says it too.
    let chart = c
        .api
        .get(&format!("/plugins/prescribing/patients/{pid}"), &c.lee)
        .await
        .expect(200);
    assert!(
        chart.text.contains("checked as the group penicillins"),
        "{}",
        chart.text
    );
    assert!(
        chart
            .text
            // The shell re-serialises the plugin's page: quotes in text need no escaping.
            .contains("NOT checked</strong>: \"Zorblax\"")
    );

    // A penicillin anaphylaxis cautions on cephalexin (first-generation cephalosporin): a
    // moderate cross-sensitivity, which after anaphylaxis needs an override reason.
    let pid = new_patient(&c, "Ferrante", 32).await;
    allergy(
        &c,
        &pid,
        json!({"kind": "atc", "allergen": "J01C", "reaction": "anaphylaxis", "severity": "severe"}),
    )
    .await;
    let keflex = check(&c, &pid, CEPHALEXIN).await;
    let caution = of_kind(&keflex, "cross-sensitivity");
    assert_eq!(caution.len(), 1, "{keflex}");
    assert_eq!(caution[0]["risk"], "moderate");
    assert_eq!(caution[0]["blocking"], true);
    assert!(
        caution[0]["message"]
            .as_str()
            .unwrap()
            .contains("first-generation cephalosporins")
    );
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": CEPHALEXIN, "sig": "500 mg PO QID x 7 days"}),
    )
    .await
    .expect(409);
    assert_eq!(r.error_code(), "override-required");

    // Warfarin on ibuprofen: exactly one warning, in the table's direction, with its source.
    let pid = new_patient(&c, "Bergstrom", 33).await;
    prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": IBUPROFEN, "sig": "1 tab PO TID x 7 days"}),
    )
    .await
    .expect(201);
    let w = check(&c, &pid, WARFARIN).await;
    let found = of_kind(&w, "interaction");
    assert_eq!(found.len(), 1, "{w}");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Warfarin's effect is increased by Ibuprofen."),
        "{w}"
    );
    assert_eq!(found[0]["severity"], "major");
    assert_eq!(found[0]["source"], "supplement: Osler seed supplement");
    assert_eq!(found[0]["sourceId"], "sup-1");

    // A combination product is checked through its ingredients: lisinopril/HCTZ + lithium.
    prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": LITHIUM, "sig": "1 cap PO TID", "quantity": "90", "longTerm": true,
               "overrideReason": "lithium level checked weekly"}),
    )
    .await
    .expect(201);
    let zestoretic = check(&c, &pid, LISINOPRIL_HCTZ).await;
    let with_lithium: Vec<Value> = of_kind(&zestoretic, "interaction")
        .into_iter()
        .filter(|w| w["with"] == "Lithium Carbonate")
        .collect();
    assert_eq!(with_lithium.len(), 1, "{zestoretic}");
    let m = with_lithium[0]["message"].as_str().unwrap();
    assert!(
        m.starts_with("Lithium Carbonate's effect is increased by Lisinopril-Hydrochlorothiazide (hydrochlorothiazide)."),
        "{m}"
    );
    assert_eq!(with_lithium[0]["severity"], "major");

    // Quantities in dispensable units, from the product's form and strength.
    let pid = new_patient(&c, "Nakamura", 34).await;
    for (din, sig, amount, unit) in [
        (METRONIDAZOLE, "500 mg po tid x 7 days", "21", "tablet"),
        (
            AMOXICILLIN_SUSPENSION,
            "250 mg PO TID x 10 days",
            "150",
            "mL",
        ),
        (SALBUTAMOL, "2 puffs INH QID x 30 days", "2", "inhaler"),
    ] {
        let r = prescribe(&c, &c.lee, &pid, json!({"din": din, "sig": sig}))
            .await
            .expect(201);
        let rx = &r.json["prescription"];
        assert_eq!(
            rx["quantity"],
            json!({"amount": amount, "unit": unit}),
            "{sig}: {rx}"
        );
        assert_eq!(rx["quantityComputed"], true);
    }
    // A quantity in a unit the product is not dispensed in is refused.
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": METRONIDAZOLE, "sig": "500 mg PO TID x 7 days", "quantity": "100 mL"}),
    )
    .await
    .expect(400);
    assert!(
        r.text
            .contains("Metronidazole is dispensed in tablets, not in mL"),
        "{}",
        r.text
    );
    // A PRN sig sets no quantity: refused until one is given.
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": ACETAMINOPHEN, "sig": "1 tab PO Q4H PRN pain"}),
    )
    .await
    .expect(400);
    assert!(r.text.contains("PRN"), "{}", r.text);
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": ACETAMINOPHEN, "sig": "1 tab PO Q4H PRN pain", "quantity": "30"}),
    )
    .await
    .expect(201);
    assert_eq!(r.json["prescription"]["sig"]["frequency"], "Q4H");
    assert_eq!(
        r.json["prescription"]["quantity"],
        json!({"amount": "30", "unit": "tablet"})
    );

    // A narcotic: its quantity must be written, and it is never repeated; part-fills are how
    // it is dispensed over time. A targeted substance's repeats need an interval.
    let before = active_count(&c, &pid).await;
    let morphine = |extra: Value| {
        let mut body = json!({"din": MORPHINE, "sig": "1 tab PO Q4H PRN pain"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let r = prescribe(&c, &c.lee, &pid, morphine(json!({})))
        .await
        .expect(400);
    assert!(
        r.text.contains("is a narcotic: write the total quantity"),
        "{}",
        r.text
    );
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        morphine(json!({"quantity": "20", "repeats": 2})),
    )
    .await
    .expect(400);
    assert!(r.text.contains("cannot be repeated"), "{}", r.text);
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": LORAZEPAM, "sig": "1 tab PO QHS PRN sleep", "quantity": "15", "repeats": 1}),
    )
    .await
    .expect(400);
    assert!(r.text.contains("repeatIntervalDays"), "{}", r.text);
    assert_eq!(active_count(&c, &pid).await, before, "nothing was written");
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        morphine(json!({"quantity": "20", "partFill": {"quantity": "10", "intervalDays": 7}})),
    )
    .await
    .expect(201);
    let rx = &r.json["prescription"];
    assert_eq!(rx["quantity"], json!({"amount": "20", "unit": "tablet"}));
    assert_eq!(rx["drug"]["controlled"], "narcotic");
    assert_eq!(rx["partFill"]["intervalDays"], 7);

    // The ISMP do-not-use forms are refused with how to write them, and nothing is written.
    let before = active_count(&c, &pid).await;
    for (sig, says) in [
        (".5 tab PO daily x 10 days", "write 0.5"),
        ("1.0 tab PO daily x 10 days", "write 1"),
        ("1e3 mg PO daily x 10 days", "exponent"),
        (
            "2-1 tabs PO Q4H PRN pain",
            "write the smaller dose first (1-2)",
        ),
        ("1 gtt od", "OD means in the right eye"),
    ] {
        let r = prescribe(
            &c,
            &c.lee,
            &pid,
            json!({"din": ACETAMINOPHEN, "sig": sig, "quantity": "30"}),
        )
        .await
        .expect(400);
        assert!(r.text.contains(says), "{sig}: {}", r.text);
    }
    assert_eq!(active_count(&c, &pid).await, before);
}

/// The text of every element marked `data-field="<name>"` on a page.
fn fields(html: &str, name: &str) -> Vec<String> {
    let mark = format!("data-field=\"{name}\">");
    html.match_indices(&mark)
        .map(|(at, _)| {
            let rest = &html[at + mark.len()..];
            rest[..rest.find("</").unwrap_or(rest.len())].to_string()
        })
        .collect()
}

#[tokio::test]
async fn the_printed_prescription_has_every_element_a_pharmacist_needs() {
    let c = clinic().await;
    let settings = |who: &str| format!("/plugins/prescribing/api/settings/prescribers/{who}");

    // The clinic's details are the administrator's; a prescriber's are their own (or the
    // administrator's to set).
    let clinic_details = json!({"name": "Main Street Family Clinic", "address": "100 Main Street\nToronto ON M5V 2T6",
                                "phone": "416-555-0100", "fax": "416-555-0101"});
    c.api
        .put(
            "/plugins/prescribing/api/settings/site",
            &c.lee,
            &clinic_details,
            None,
        )
        .await
        .expect(403);
    c.api
        .put(
            "/plugins/prescribing/api/settings/site",
            &c.admin,
            &clinic_details,
            None,
        )
        .await
        .expect(200);
    let lee = json!({"licence": "012345", "address": "100 Main Street, Suite 2\nToronto ON M5V 2T6", "phone": "416-555-0102"});
    c.api
        .put(&settings("drlee"), &c.nurse, &lee, None)
        .await
        .expect(403);
    let r = c
        .api
        .put(
            &settings("drlee"),
            &c.lee,
            &json!({"licence": "012345", "address": "x", "phone": "call me"}),
            None,
        )
        .await
        .expect(400);
    assert!(r.text.contains("phone"), "{}", r.text);
    c.api
        .put(&settings("drlee"), &c.lee, &lee, None)
        .await
        .expect(200);
    let saved = c.api.get(&settings("drlee"), &c.admin).await.expect(200);
    assert_eq!(saved.json["licenceBody"], "CPSO");
    let trail = c.api.audit_all(&c.admin, "actor=drlee").await;
    assert!(
        trail
            .iter()
            .any(|e| e["action"] == "prescribing.settings.prescriber"),
        "{trail:?}"
    );
    let page = c
        .api
        .get("/plugins/prescribing/settings", &c.lee)
        .await
        .expect(200);
    assert!(page.text.contains("value=\"012345\""), "{}", page.text);
    assert!(!page.text.contains("Save clinic details"));
    let page = c
        .api
        .get("/plugins/prescribing/settings?user=drlee", &c.admin)
        .await
        .expect(200);
    assert!(page.text.contains("Save clinic details"), "{}", page.text);
    assert!(page.text.contains("value=\"Main Street Family Clinic\""));
    assert!(page.text.contains("Prescriber: drlee"));

    // A patient with an address and a versioned health card, and two prescriptions: an
    // ordinary one and a narcotic.
    let card = hcn(740);
    let p = c.api.create(&c.lee, &rich_patient(&card)).await;
    let pid = p["id"].as_str().unwrap().to_string();
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": METRONIDAZOLE, "sig": "500 mg PO TID x 7 days", "instructions": "No alcohol during the course."}),
    )
    .await
    .expect(201);
    let written = r.json["prescription"]["written"].as_str().unwrap()[..10].to_string();
    prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": MORPHINE, "sig": "1 tab PO Q4H PRN pain", "quantity": "20",
               "partFill": {"quantity": "10", "intervalDays": 7}}),
    )
    .await
    .expect(201);

    let page = c
        .api
        .get(
            &format!("/plugins/prescribing/patients/{pid}/print"),
            &c.lee,
        )
        .await
        .expect(200)
        .text;
    let one = |name: &str| {
        let f = fields(&page, name);
        assert_eq!(f.len(), 1, "{name}: {f:?}\n{page}");
        f[0].clone()
    };
    // The patient.
    assert_eq!(one("patient-name"), "Hélène Marie Lévesque");
    assert_eq!(one("patient-birth-date"), "1961-03-14");
    assert_eq!(one("patient-health-card"), format!("{card} AB"));
    assert_eq!(
        one("patient-address"),
        "12 Rue Principale, App. 3, Ottawa ON K1P 5J9"
    );
    // The prescriber and the clinic.
    assert_eq!(one("prescriber-name"), "Dr. Amelia Lee");
    assert_eq!(one("prescriber-licence"), "012345");
    assert_eq!(
        one("prescriber-address"),
        "100 Main Street, Suite 2<br>Toronto ON M5V 2T6"
    );
    assert_eq!(one("prescriber-phone"), "416-555-0102");
    assert_eq!(one("clinic-name"), "Main Street Family Clinic");
    assert_eq!(
        one("clinic-address"),
        "100 Main Street<br>Toronto ON M5V 2T6"
    );
    assert_eq!(one("clinic-phone"), "416-555-0100");
    assert!(page.contains("licence no."));
    // Each drug: name, strength, form, DIN status, directions, quantity with its unit,
    // repeats, total.
    assert_eq!(fields(&page, "drug"), vec!["Metronidazole", "Morphine"]);
    assert_eq!(fields(&page, "strength"), vec!["500 mg", "5 mg"]);
    assert_eq!(fields(&page, "form"), vec!["tablet", "tablet"]);
    assert_eq!(
        fields(&page, "din"),
        vec!["sample data — DIN not verified"; 2]
    );
    assert_eq!(
        fields(&page, "directions")[0],
        "500 mg PO TID x 7 days — Take 500 mg by mouth three times a day for 7 days."
    );
    assert_eq!(
        fields(&page, "quantity"),
        vec!["21 tablets", "20 (twenty) tablets"]
    );
    assert_eq!(fields(&page, "repeats"), vec!["none", "none"]);
    assert_eq!(
        fields(&page, "total"),
        vec!["21 tablets", "20 (twenty) tablets"]
    );
    assert_eq!(one("controlled"), "NARCOTIC");
    assert_eq!(
        one("part-fill"),
        "dispense 10 tablets every 7 days, up to 20 tablets"
    );
    assert!(page.contains("No alcohol during the course."));
    // The date and the signature line.
    assert_eq!(one("date"), written);
    assert!(page.contains("Signature: ____"));
    assert_eq!(one("signature"), "Dr. Amelia Lee");
    assert!(!page.contains("NOT SET"), "{page}");
}

/// A Holbrook file as OSCAR's real table has it: an ATCvet row (stanozolol, `QA14AA02`), a
/// comment that is a tab, and a Latin-1 byte (é in "é-cigarette", 0xE9).
fn holbrook_latin1() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(
        b"\"1\",\"B01AA03\",\"M01AE01\",\"\",\"3\",\"\",\"\",\"WARFARIN\",\"IBUPROFEN\"\n",
    );
    out.extend_from_slice(
        b"\"2\",\"M01AE01\",\"B01AA03\",\"A\",\"2\",\"F\",\"\t\",\"IBUPROFEN\",\"WARFARIN\"\n",
    );
    out.extend_from_slice(
        b"\"3\",\"B01AA03\",\"QA14AA02\",\"\",\"3\",\"\",\"\",\"WARFARIN\",\"STANOZOLOL\"\n",
    );
    out.extend_from_slice(b"\"4\",\"N06AB06\",\"N07BA01\",\"I\",\"1\",\"P\",\"Nicotine (\xe9-cigarette) \",\"SERTRALINE\",\"NICOTINE\"\n");
    out
}

#[tokio::test]
async fn a_real_format_table_imports_and_the_supplement_still_warns_beside_it() {
    let c = clinic().await;
    let post = |query: &'static str, content_type: &'static str, body: Vec<u8>| {
        let api = c.api.clone();
        let admin = c.admin.clone();
        async move {
            let res = api
                .client
                .post(format!(
                    "{}/plugins/drugref/api/import/interactions?source=holbrook-e2e{query}",
                    api.base
                ))
                .bearer_auth(&admin)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("import");
            crate::support::Resp::read(res).await
        }
    };
    // Latin-1 without saying so: refused plainly, naming the line and what to send.
    let r = post("", "text/csv", holbrook_latin1()).await.expect(400);
    assert_eq!(r.json["error"]["lines"][0]["line"], 4, "{}", r.text);
    assert!(r.text.contains("charset=iso-8859-1"), "{}", r.text);
    // With its charset, and the ATCvet row skipped on request: imported, the line listed.
    let r = post(
        "&atcvet=skip",
        "text/csv; charset=iso-8859-1",
        holbrook_latin1(),
    )
    .await
    .expect(200);
    assert_eq!(r.json["rows"], 3);
    assert_eq!(r.json["skipped"], 1);
    assert_eq!(r.json["skippedLines"][0]["line"], 3, "{}", r.text);
    // By default the ATCvet row is accepted: all four rows.
    let r = post("", "text/csv; charset=iso-8859-1", holbrook_latin1())
        .await
        .expect(200);
    assert_eq!(r.json["rows"], 4, "{}", r.text);
    let tables = c
        .api
        .get("/plugins/drugref/api/tables", &c.lee)
        .await
        .expect(200);
    assert_eq!(tables.json["interactions"]["source"], "holbrook-e2e");
    assert_eq!(tables.json["supplement"]["source"], "Osler seed supplement");

    // The table's three rows for warfarin and ibuprofen plus the supplement's class row: one
    // warning, the major substance row (which gives no direction), the others listed.
    let r = c
        .api
        .post(
            "/plugins/drugref/api/interactions",
            &c.lee,
            &json!({"drugs": [{"key": "w", "din": WARFARIN}, {"key": "i", "din": IBUPROFEN}]}),
        )
        .await
        .expect(200);
    let found = r.json["interactions"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{}", r.text);
    assert_eq!(found[0]["id"], "1");
    assert_eq!(found[0]["source"], "interaction table: holbrook-e2e");
    // Row 1 gives no effect, so no direction: it says so, and quotes the row that does.
    assert_eq!(
        found[0]["summary"],
        "Warfarin and Ibuprofen interact; the row does not say how. (supplement: Osler seed supplement, row sup-1: Warfarin's effect is increased by Ibuprofen.)"
    );
    let also: Vec<&str> = found[0]["also"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(also, vec!["sup-1", "2"], "{}", r.text);
    assert_eq!(
        found[0]["also"][1]["summary"],
        "Warfarin's effect is increased by Ibuprofen."
    );
    // The comment decoded from Latin-1.
    let r = c
        .api
        .post(
            "/plugins/drugref/api/interactions",
            &c.lee,
            &json!({"drugs": [{"key": "s", "din": SERTRALINE}, {"key": "n", "name": "Nicotine patch", "atc": "N07BA01"}]}),
        )
        .await
        .expect(200);
    assert_eq!(
        r.json["interactions"][0]["comment"], "Nicotine (é-cigarette)",
        "{}",
        r.text
    );

    // A new drug against a list (`against`): its pairs with the list, never the list's own
    // (sertraline and nicotine interact, as above, but both are already taken).
    let r = c
        .api
        .post(
            "/plugins/drugref/api/interactions",
            &c.lee,
            &json!({"drugs": [{"key": "i", "din": IBUPROFEN}], "against": [
                {"key": "w", "din": WARFARIN},
                {"key": "s", "din": SERTRALINE},
                {"key": "n", "name": "Nicotine patch", "atc": "N07BA01"},
            ]}),
        )
        .await
        .expect(200);
    let pairs: Vec<(&str, &str)> = r.json["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["affecting"].as_str().unwrap(),
                f["affected"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        pairs
            .iter()
            .any(|&(a, b)| (a, b) == ("w", "i") || (a, b) == ("i", "w")),
        "{}",
        r.text
    );
    assert!(
        pairs.iter().all(|&(a, b)| a == "i" || b == "i"),
        "a pair within the list was reported: {}",
        r.text
    );

    // A pair the imported table lacks still warns, from the supplement, which it names.
    let pid = new_patient(&c, "Lindgren", 35).await;
    prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": MOCLOBEMIDE, "sig": "1 tab PO BID", "quantity": "60"}),
    )
    .await
    .expect(201);
    let r = prescribe(
        &c,
        &c.lee,
        &pid,
        json!({"din": SERTRALINE, "sig": "1 cap PO daily x 30 days"}),
    )
    .await
    .expect(409);
    let w = warnings(&r.json);
    assert_eq!(w.len(), 1, "{}", r.text);
    assert_eq!(w[0]["source"], "supplement: Osler seed supplement");
    assert_eq!(w[0]["sourceId"], "sup-19");
    assert!(
        w[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Sertraline's effect is increased by Moclobemide."),
        "{}",
        r.text
    );

    // The clinic replaces its supplement; the imported table stays.
    let r = import(
        &c,
        "supplement",
        "\"clinic-1\",\"N06AG02\",\"N06AB\",\"A\",\"3\",\"G\",\"Our pharmacist's note\",\"moclobemide\",\"SSRIs\"\n",
    )
    .await
    .expect(200);
    assert_eq!(r.json["rows"], 1);
    let tables = c
        .api
        .get("/plugins/drugref/api/tables", &c.lee)
        .await
        .expect(200);
    assert_eq!(tables.json["interactions"]["rows"], 4);
    assert_eq!(tables.json["supplement"]["source"], "e2e");
}
