//! {{name}}: an Osler plugin.
//!
//! - `GET /` (at `/plugins/{{id}}/`): a page that says hello and shows the site's last greeting;
//! - `POST /`: its form, which stores a new greeting;
//! - `GET /api/greeting`: the last greeting as JSON.
//!
//! Build with `osler plugin build`; see the SDK's README for the rest.

use osler_sdk::{Error, Params, Plugin, Request, Response, Router, clock, html, kv};
use serde::{Deserialize, Serialize};

/// Where the plugin's pages are: `/plugins/<id>/`.
const HOME: &str = "/plugins/{{id}}/";

struct MyPlugin;

impl Plugin for MyPlugin {
    fn handle(req: Request) -> Response {
        Router::new()
            .get("/", page)
            .post("/", say_hello)
            .get("/api/greeting", api_greeting)
            .handle(&req)
    }
}

osler_sdk::export_plugin!(MyPlugin);

/// A greeting, stored as JSON in the plugin's key-value store.
#[derive(Serialize, Deserialize)]
struct Greeting {
    from: String,
    message: String,
    /// The site's local time, `YYYY-MM-DDTHH:MM:SS`.
    at: String,
}

/// Each site has its own greeting.
fn greeting_key(site: &str) -> String {
    format!("site/{site}/greeting")
}

fn page(req: &Request, _: &Params) -> Result<Response, Error> {
    let caller = req.caller();
    let last: Option<Greeting> = kv::get(&greeting_key(&caller.site))?;
    let last = match last {
        Some(g) => format!(
            "<p>{} said “{}” at {}.</p>",
            html::escape(&g.from),
            html::escape(&g.message),
            html::escape(&g.at.replace('T', " ")),
        ),
        None => r#"<p class="muted">Nobody has said hello here yet.</p>"#.to_string(),
    };
    let body = format!(
        r#"<p>Hello, {name}! You are at {site}.</p>
{last}
<form method="post" action="{HOME}">{csrf}
<label for="message">Your greeting</label>
<input id="message" name="message" required maxlength="200">
<button type="submit">Say hello</button>
</form>"#,
        name = html::escape(&caller.display_name),
        site = html::escape(&caller.site_name),
        csrf = html::csrf_field(caller),
    );
    Ok(Response::html(200, html::page("{{name}}", &body)))
}

fn say_hello(req: &Request, _: &Params) -> Result<Response, Error> {
    #[derive(Deserialize)]
    struct Form {
        message: String,
    }
    let form: Form = req.form()?;
    let message = form.message.trim();
    if message.is_empty() || message.chars().count() > 200 {
        return Err(Error::invalid("message: 1 to 200 characters"));
    }
    let caller = req.caller();
    let greeting = Greeting {
        from: caller.display_name.clone(),
        message: message.to_string(),
        at: clock::now().local,
    };
    kv::put(&greeting_key(&caller.site), &greeting)?;
    Ok(Response::redirect_see_other(HOME))
}

fn api_greeting(req: &Request, _: &Params) -> Result<Response, Error> {
    let last: Option<Greeting> = kv::get(&greeting_key(&req.caller().site))?;
    Ok(Response::json(
        200,
        &serde_json::json!({ "greeting": last }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_site() {
        assert_eq!(greeting_key("main"), "site/main/greeting");
    }
}
