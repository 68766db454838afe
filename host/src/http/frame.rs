//! Framing a plugin's HTML answer: what the host keeps of it, and the shadow root it goes in.
//!
//! A plugin answers `text/html` with a whole document (the SDK's `html::page`) or a fragment.
//! The host parses it with a real HTML parser (html5ever) and keeps three things: the
//! `<title>`, the stylesheets (`<style>` and `<link rel="stylesheet">`) and the `<main>`
//! element (or, when there is none, the body wrapped in one). Everything else — the plugin's
//! own header, scripts (which the page's CSP would block anyway), `<base>`, `<meta>`, frames,
//! embedded objects — is dropped. The kept parts are serialised again from the parsed tree and
//! placed in a *declarative shadow root* (`<template shadowrootmode="open">`) inside the shell:
//!
//! - the plugin's styles apply to its own content only, so a plugin cannot restyle the shell
//!   (hide the patient banner, or read the shell's form tokens through CSS selectors), and two
//!   plugins' panels on one chart cannot restyle each other;
//! - the host's components stylesheet is put first in every shadow root, so plugin pages look
//!   like the host's; a plugin's own styles come after and win.
//!
//! The serialised content can never close the template early: `template` elements are dropped,
//! and any remaining `</template` text (in an attribute value, say) is escaped, so the
//! shadow root ends where the host ends it.

use scraper::{ElementRef, Html, Node};

/// Elements a plugin page loses: they run code, load other documents, change how the rest of
/// the page is parsed or resolved, or swallow the markup after them.
const DROPPED: &[&str] = &[
    "script",
    "noscript",
    "template",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "base",
    "meta",
    "plaintext",
    "xmp",
    "noembed",
    "noframes",
    "portal",
    "fencedframe",
];

/// What the host keeps of a plugin's HTML answer.
#[derive(Debug, Default, PartialEq)]
pub struct PluginHtml {
    /// The document's title, without a trailing " · Osler" (which the SDK's `page` used to
    /// add and the shell adds again).
    pub title: Option<String>,
    /// The plugin's stylesheets, serialised, in document order.
    pub styles: Vec<String>,
    /// The `<main>` element, serialised.
    pub main: String,
}

fn is_stylesheet(e: &ElementRef) -> bool {
    match e.value().name() {
        "style" => true,
        "link" => e.value().attr("rel").is_some_and(|rel| {
            rel.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("stylesheet"))
        }),
        _ => false,
    }
}

/// Parse a plugin's HTML and keep its title, its stylesheets and its `<main>`.
pub fn parse(html: &str) -> PluginHtml {
    let mut doc = Html::parse_document(html);
    let doomed: Vec<_> = doc
        .tree
        .nodes()
        .filter(|n| match n.value() {
            Node::Element(e) => {
                DROPPED.contains(&e.name())
                    || (e.name() == "link"
                        && !ElementRef::wrap(*n).is_some_and(|e| is_stylesheet(&e)))
            }
            _ => false,
        })
        .map(|n| n.id())
        .collect();
    for id in doomed {
        if let Some(mut n) = doc.tree.get_mut(id) {
            n.detach();
        }
    }

    let root = doc.root_element();
    let elements = || root.descendent_elements();
    let title = elements()
        .find(|e| e.value().name() == "title")
        .map(|t| t.text().collect::<String>())
        .map(|t| {
            let t = t.trim();
            t.strip_suffix("· Osler")
                .map(str::trim_end)
                .unwrap_or(t)
                .to_string()
        })
        .filter(|t| !t.is_empty());
    let main = elements().find(|e| e.value().name() == "main");
    // Stylesheets anywhere outside `<main>` (those inside stay where they are).
    let styles = elements()
        .filter(is_stylesheet)
        .filter(|e| {
            !e.ancestors()
                .any(|a| a.value().as_element().is_some_and(|a| a.name() == "main"))
        })
        .map(|e| e.html())
        .collect();
    let main = match main {
        Some(m) => m.html(),
        None => {
            let body = elements()
                .find(|e| e.value().name() == "body")
                .map(|b| {
                    b.children()
                        .filter(|c| !ElementRef::wrap(*c).is_some_and(|e| is_stylesheet(&e)))
                        .map(|c| match ElementRef::wrap(c) {
                            Some(e) => e.html(),
                            None => match c.value() {
                                Node::Text(t) => crate::http::pages::esc(t),
                                _ => String::new(),
                            },
                        })
                        .collect::<String>()
                })
                .unwrap_or_default();
            format!("<main>{body}</main>")
        }
    };
    PluginHtml {
        title,
        styles: styles_dedup(styles),
        main: seal(&main),
    }
}

fn styles_dedup(styles: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in styles {
        let s = seal(&s);
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// `html` with every `</template` (any case) escaped, so it cannot end the shadow root.
fn seal(html: &str) -> String {
    const END: &[u8] = b"</template";
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len());
    let mut last = 0;
    let mut i = 0;
    while i + END.len() <= bytes.len() {
        if bytes[i..i + END.len()].eq_ignore_ascii_case(END) {
            out.push_str(&html[last..i]);
            out.push_str("&lt;");
            last = i + 1;
            i += END.len();
        } else {
            i += 1;
        }
    }
    out.push_str(&html[last..]);
    out
}

/// The plugin's kept parts in an open declarative shadow root, after the host's components
/// stylesheet (`base_css`). A stylesheet link to the same path as `base_css` is not repeated.
pub fn shadow_root(page: &PluginHtml, base_css: &str, base_path: &str) -> String {
    let mut out = format!(
        "<template shadowrootmode=\"open\"><link rel=\"stylesheet\" href=\"{}\">",
        crate::http::pages::esc(base_css)
    );
    for s in &page.styles {
        if s.starts_with("<link") && s.contains(&format!("href=\"{base_path}")) {
            continue;
        }
        out.push_str(s);
    }
    out.push_str(&page.main);
    out.push_str("</template>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_title_styles_and_main_of_an_sdk_page() {
        let page = parse(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Notices · Osler</title><style>h1{color:red}</style>\
             <link rel=\"stylesheet\" href=\"/static/plugin.css\"><link rel=\"icon\" href=\"x\">\
             </head><body><header><a href=\"/\">Osler</a></header>\
             <main class=\"x\"><h1>Notices</h1><p>A &amp; B</p><style>p{margin:0}</style></main>\
             <footer>gone</footer></body></html>",
        );
        assert_eq!(page.title.as_deref(), Some("Notices"));
        assert_eq!(
            page.styles,
            vec![
                "<style>h1{color:red}</style>".to_string(),
                "<link rel=\"stylesheet\" href=\"/static/plugin.css\">".to_string()
            ]
        );
        assert_eq!(
            page.main,
            "<main class=\"x\"><h1>Notices</h1><p>A &amp; B</p><style>p{margin:0}</style></main>"
        );
        let root = shadow_root(&page, "/static/plugin.css?v=1", "/static/plugin.css");
        assert_eq!(root.matches("plugin.css").count(), 1, "{root}");
        assert!(root.starts_with("<template shadowrootmode=\"open\">"));
        assert!(root.ends_with("</main></template>"));
    }

    #[test]
    fn a_fragment_becomes_the_main() {
        let page = parse("<h1>Hi</h1><p>text</p> tail");
        assert_eq!(page.title, None);
        assert_eq!(page.main, "<main><h1>Hi</h1><p>text</p> tail</main>");
    }

    #[test]
    fn scripts_frames_and_template_escapes_are_dropped() {
        let page = parse(
            "<main><script>alert(1)</script><noscript><p title=\"</noscript></template><b>x</b>\">\
             </p></noscript><iframe src=\"/x\"></iframe><template><p>t</p></template>\
             <p title=\"</TEMPLATE><div class=fake>\">ok</p><base href=\"https://evil\">\
             <plaintext>swallow</main>",
        );
        let m = &page.main;
        assert!(!m.contains("<script"), "{m}");
        assert!(!m.contains("<noscript"), "{m}");
        assert!(!m.contains("<iframe"), "{m}");
        assert!(!m.contains("<template"), "{m}");
        assert!(!m.contains("<base"), "{m}");
        assert!(!m.contains("<plaintext"), "{m}");
        assert!(!m.to_ascii_lowercase().contains("</template"), "{m}");
        assert!(m.contains("ok</p>"), "{m}");
    }

    #[test]
    fn seal_escapes_every_template_end() {
        assert_eq!(
            seal("a</template>b</TeMpLaTe"),
            "a&lt;/template>b&lt;/TeMpLaTe"
        );
        assert_eq!(seal("no end here"), "no end here");
    }
}
