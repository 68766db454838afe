//! HTML for plugin pages, without scripts.
//!
//! Plugin pages are served with a Content Security Policy that forbids every script (inline
//! `<style>` is allowed), so a page is plain HTML and forms: a form posts back to the plugin,
//! which answers with [`Response::redirect_see_other`](crate::Response::redirect_see_other).
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

/// The little stylesheet [`page`] inlines. Besides plain elements it styles `.card` (a white
/// box), `.banner` (a notice), `.muted` (secondary text), `.error` (an error message) and
/// `button.link` (a button that looks like a link).
pub const STYLE: &str = "\
:root{color-scheme:light}\
body{font-family:system-ui,sans-serif;line-height:1.5;margin:0;background:#f4f6f8;color:#1d2630}\
header{background:#1f4e79;color:#fff;padding:.8rem 1.5rem}\
header a{color:#fff;font-weight:600;text-decoration:none}\
main{max-width:48rem;margin:1.5rem auto;padding:0 1rem}\
h1{font-size:1.6rem;margin:0 0 1rem}h2{font-size:1.2rem}\
a{color:#1f4e79}\
.card{background:#fff;border-radius:8px;padding:1rem 1.5rem;box-shadow:0 1px 3px rgba(0,0,0,.12);margin-bottom:1rem}\
.banner{background:#fff8e1;border-left:4px solid #b7791f;padding:.7rem 1rem;margin-bottom:1rem}\
.error{background:#fde8e8;color:#8a1c1c;padding:.7rem 1rem;border-radius:4px}\
.muted{color:#5b6875;font-size:.9rem}\
label{display:block;margin:.8rem 0 .3rem;font-weight:600}\
input,textarea,select{font:inherit;padding:.5rem;width:100%;box-sizing:border-box;border:1px solid #8a96a3;border-radius:4px}\
button{font:inherit;padding:.5rem 1.2rem;margin-top:1rem;background:#1f4e79;color:#fff;border:0;border-radius:4px;cursor:pointer}\
button.link{background:none;color:#8a1c1c;padding:0;margin:0;text-decoration:underline}\
:focus-visible{outline:3px solid #f0b429;outline-offset:2px}\
table{border-collapse:collapse}td,th{padding:.3rem .8rem .3rem 0;text-align:left}";

/// A complete HTML5 page: `title` (escaped) as the document title and as the `<h1>`, then
/// `body_html` (your markup, not escaped) inside `<main>`, under a header linking to Osler's
/// home page. The page has [`STYLE`] inline and no scripts.
pub fn page(title: &str, body_html: &str) -> String {
    let title = escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · Osler</title><style>{STYLE}</style></head>\n\
         <body><header><a href=\"/\">Osler</a></header>\n\
         <main><h1>{title}</h1>\n{body_html}\n</main></body></html>\n"
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
        assert!(p.contains("<title>A &amp; B · Osler</title>"));
        assert!(p.contains("<h1>A &amp; B</h1>"));
        assert!(p.contains("<p>hi</p>"));
        assert!(!p.to_ascii_lowercase().contains("<script"));
    }
}
