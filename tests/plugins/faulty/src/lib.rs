//! A test fixture for the composed chart (API 0.2): chart panels that fail in the ways a
//! plugin can — `broken` traps (a panic), `slow` never answers (a loop the host's panel
//! deadline ends) — one that works (`fine`), and a banner flag (`flag`, slot `banner`).
//! It asks for no capability.

use osler_sdk::{Error, Plugin, Request, Response};

struct Faulty;

impl Plugin for Faulty {
    fn handle(_: Request) -> Response {
        Response::not_found()
    }

    fn render_panel(panel: &str, patient: &str) -> Result<String, Error> {
        match panel {
            "broken" => panic!("this panel always traps"),
            "slow" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "fine" => Ok(format!(
                "<p class=\"fine\">Fine for {}</p>",
                osler_sdk::html::escape(patient)
            )),
            "flag" => Ok("alert: Test allergy (severe)".into()),
            other => Err(Error::not_found(format!("no panel '{other}'"))),
        }
    }
}

osler_sdk::export_plugin!(Faulty);
