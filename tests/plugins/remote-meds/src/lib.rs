//! Test fixture (API 0.2): an exporter of `osler:caisi/remote@0.1.0` that answers from what a
//! test put in its storage — not the CAISI plugin, which learns them from its integrator.
//!
//! | route | does |
//! |---|---|
//! | `PUT /patients/{id}` | the JSON list of `{facility, drug, din?, atc?, strength, sig, start, asOf}` shared for patient `id` |
//! | `PUT /failure` | `{"internal": "<message>"}`: every call answers `internal` with it (as CAISI does when its integrator cannot be reached); `{}`: answer again |

use osler_sdk::{Error, Params, Plugin, Request, Response, Router, kv};
use serde::{Deserialize, Serialize};

use crate::bindings::exports::osler::caisi::remote as wit;

mod bindings {
    osler_sdk::generate!({
        path: ["../../../wit/v0.2.0", "wit"],
        world: "osler:remote-meds/remote-meds@0.1.0",
    });
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shared {
    facility: String,
    drug: String,
    #[serde(default)]
    din: Option<String>,
    #[serde(default)]
    atc: Option<String>,
    #[serde(default)]
    strength: String,
    #[serde(default)]
    sig: String,
    start: String,
    as_of: i64,
}

#[derive(Serialize, Deserialize, Default)]
struct Failure {
    #[serde(default)]
    internal: Option<String>,
}

struct RemoteMeds;

impl Plugin for RemoteMeds {
    fn handle(req: Request) -> Response {
        Router::new()
            .put("/patients/{id}", put_patient)
            .put("/failure", put_failure)
            .handle(&req)
    }
}

fn put_patient(req: &Request, p: &Params) -> Result<Response, Error> {
    let list: Vec<Shared> = req.json()?;
    kv::put(&format!("patient/{}", &p["id"]), &list)?;
    Ok(Response::empty(204))
}

fn put_failure(req: &Request, _: &Params) -> Result<Response, Error> {
    let f: Failure = req.json()?;
    kv::put("failure", &f)?;
    Ok(Response::empty(204))
}

impl wit::Guest for RemoteMeds {
    fn active_medications(patient: String) -> Result<Vec<wit::RemoteMedication>, Error> {
        if let Some(Failure { internal: Some(m) }) = kv::get::<Failure>("failure")? {
            return Err(Error::internal(m));
        }
        let list: Vec<Shared> = kv::get(&format!("patient/{patient}"))?.unwrap_or_default();
        Ok(list
            .into_iter()
            .map(|s| wit::RemoteMedication {
                facility: s.facility,
                drug: s.drug,
                din: s.din,
                atc: s.atc,
                strength: s.strength,
                sig: s.sig,
                start: s.start,
                as_of: s.as_of,
            })
            .collect())
    }
}

osler_sdk::export_plugin!(RemoteMeds with_bindings bindings);
