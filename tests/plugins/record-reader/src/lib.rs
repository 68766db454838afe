//! Test fixture (API 0.2): another plugin's view of a patient's record, through the
//! interfaces prescribing and encounter export. It asks for nothing itself (no capability):
//! whatever it gets, the providers read for the person signed in.
//!
//! `GET /medications/{patient}`, `/allergies/{patient}`, `/problems/{patient}`: the lists as
//! JSON, or the provider's error as the JSON error (`denied` 403, `not-found` 404,
//! `unavailable` 503).

use osler_sdk::{Plugin, Request, Response, Router};
use serde_json::json;

mod bindings {
    osler_sdk::generate!({
        path: ["../../../wit/v0.2.0", "wit"],
        world: "osler-fixtures:record-reader/record-reader@0.1.0",
    });
}

use bindings::osler::encounter::problems;
use bindings::osler::prescribing::record;

struct Reader;

impl Plugin for Reader {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/medications/{patient}", |_, p| {
                let list: Vec<_> = record::active_medications(&p["patient"])?
                    .into_iter()
                    .map(|m| {
                        json!({
                            "id": m.id, "drug": m.drug, "din": m.din, "atc": m.atc,
                            "strength": m.strength, "sig": m.sig,
                            "instructions": m.instructions, "start": m.start,
                            "prescriberName": m.prescriber_name, "status": m.status,
                            "external": m.external, "longTerm": m.long_term,
                        })
                    })
                    .collect();
                Ok(Response::json(200, &list))
            })
            .get("/allergies/{patient}", |_, p| {
                let list: Vec<_> = record::allergies(&p["patient"])?
                    .into_iter()
                    .map(|a| {
                        json!({
                            "id": a.id, "substance": a.substance, "kind": a.kind,
                            "reaction": a.reaction, "severity": a.severity,
                            "recorded": a.recorded,
                        })
                    })
                    .collect();
                Ok(Response::json(200, &list))
            })
            .get("/problems/{patient}", |_, p| {
                let list: Vec<_> = problems::active_problems(&p["patient"])?
                    .into_iter()
                    .map(|x| {
                        json!({
                            "id": x.id, "description": x.description, "icd10ca": x.icd10ca,
                            "since": x.since, "added": x.added,
                        })
                    })
                    .collect();
                Ok(Response::json(200, &list))
            })
            .handle(&req)
    }
}

osler_sdk::export_plugin!(Reader with_bindings bindings);
