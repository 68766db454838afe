//! HTML for plugin pages, without scripts.
//!
//! A plugin returns its page's content and Osler frames it in the shell every page shares
//! (header, navigation, user, site switch, patient banner); see [`page`]. Plugin pages are
//! served with a Content Security Policy that forbids every script (inline `<style>` is
//! allowed), so a page is plain HTML and forms: a form posts back to the plugin, which answers
//! with [`Response::redirect_see_other`](crate::Response::redirect_see_other).
//! Every form that posts must carry the session's CSRF token — put [`csrf_field`] in it —
//! or the host refuses the post with 403.
//!
//! Escape everything that is not your own markup with [`escape`]:
//!
//! ```
//! use osler_sdk::html;
//!
//! let name = "<b>Lee & Co</b>";
//! let body = format!("<p>Hello, {}</p>", html::escape(name));
//! assert_eq!(body, "<p>Hello, &lt;b&gt;Lee &amp; Co&lt;/b&gt;</p>");
//! let page: String = html::page("Hello", &body);
//! ```

use crate::Caller;

/// `s` with `&`, `<`, `>`, `"` and `'` escaped: safe in text and in quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The hidden `_csrf` input every posting form needs:
/// `<input type="hidden" name="_csrf" value="…">`.
pub fn csrf_field(caller: &Caller) -> String {
    format!(
        r#"<input type="hidden" name="_csrf" value="{}">"#,
        escape(&caller.csrf_token)
    )
}

/// The host's stylesheet for plugin content, which [`page`] links. Framed pages get it
/// anyway (first, inside the page's shadow root); a [bare](crate::Response::bare) page gets
/// it through this link. Besides plain elements it styles `.card` (a white box), `.banner` and
/// `.warning` (a notice), `.notice` (a success), `.error` (an error message), `.muted`
/// (secondary text), `.badge` (with `.red`, `.amber`, `.green`), `.button` (a link that looks
/// like a button), `button.secondary`, `button.danger`, `button.link` and `.noprint`.
pub const STYLESHEET: &str = "/static/plugin.css";

/// A complete HTML5 page: `title` (escaped) as the document title and as the `<h1>`, then
/// `body_html` (your markup, not escaped) inside `<main>`.
///
/// Osler frames it: the host keeps the title, your `<style>` elements and what is inside
/// `<main>`, and shows them inside its shell — the clinic's header and navigation, the user,
/// and the patient banner when the response names a patient
/// ([`Response::about_patient`](crate::Response::about_patient)). Your styles apply to your
/// content only. The page has no scripts and needs none.
pub fn page(title: &str, body_html: &str) -> String {
    let title = escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"{STYLESHEET}\"></head>\n\
         <body><main><h1>{title}</h1>\n{body_html}\n</main></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain é"), "plain é");
    }

    #[test]
    fn csrf_field_escapes_the_token() {
        let c = crate::request::tests::caller();
        assert_eq!(
            csrf_field(&c),
            r#"<input type="hidden" name="_csrf" value="tok&quot;en">"#
        );
    }

    #[test]
    fn page_is_html5_without_scripts() {
        let p = page("A & B", "<p>hi</p>");
        assert!(p.starts_with("<!doctype html>"));
        assert!(p.contains("<html lang=\"en\">"));
        assert!(p.contains("<title>A &amp; B</title>"));
        assert!(p.contains("<link rel=\"stylesheet\" href=\"/static/plugin.css\">"));
        assert!(p.contains("<h1>A &amp; B</h1>"));
        assert!(p.contains("<p>hi</p>"));
        assert!(!p.to_ascii_lowercase().contains("<script"));
    }
}
