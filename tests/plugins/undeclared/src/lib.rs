//! Test fixture: the code calls `kv`, so the component imports `osler:plugin/kv`, but the
//! manifest declares no capabilities. The host must refuse to install or load it.

use osler_sdk::{Plugin, Request, Response, Router, kv};

struct Undeclared;

impl Plugin for Undeclared {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/", |_, _| {
                let value = kv::get_bytes("greeting")?.unwrap_or_default();
                Ok(Response::new(200, "application/octet-stream", value))
            })
            .handle(&req)
    }
}

osler_sdk::export_plugin!(Undeclared);
