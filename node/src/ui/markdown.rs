//! Contribution text is Markdown written by peers: it is rendered as a safe subset.
//!
//! * Raw HTML, block or inline, is shown as text (escaped), never passed through.
//! * Links keep only `http:`, `https:` and `mailto:` destinations; any other link (such as
//!   `javascript:` or `data:`) shows its text alone.
//! * Images become links to the image, so that reading a contribution fetches nothing from
//!   elsewhere.
//!
//! Everything else (emphasis, lists, code, quotes, tables) is what pulldown-cmark renders,
//! with text and attributes escaped.

use pulldown_cmark::{html, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

/// Whether a link destination may be shown as a link.
pub fn allowed_url(url: &str) -> bool {
    let url = url.trim().to_ascii_lowercase();
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

/// Renders peer-written Markdown as safe HTML.
pub fn render(text: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    // For each open link or image: whether it is kept.
    let mut open: Vec<bool> = Vec::new();
    let events = Parser::new_ext(text, options).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let keep = allowed_url(&dest_url);
            open.push(keep);
            keep.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::Start(Tag::Image {
            dest_url, title, ..
        }) => {
            let keep = allowed_url(&dest_url);
            open.push(keep);
            keep.then_some(Event::Start(Tag::Link {
                link_type: LinkType::Inline,
                dest_url,
                title,
                id: CowStr::Borrowed(""),
            }))
        }
        Event::End(TagEnd::Link) | Event::End(TagEnd::Image) => {
            let keep = open.pop().unwrap_or(false);
            keep.then_some(Event::End(TagEnd::Link))
        }
        other => Some(other),
    });
    let mut out = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_tags_are_shown_as_text() {
        let out = render("Hello <script>alert(1)</script> there\n\n<script>\nalert(2)\n</script>");
        assert!(!out.contains("<script"), "{out}");
        assert!(
            out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{out}"
        );
        assert!(out.contains("&lt;script&gt;"), "{out}");
    }

    #[test]
    fn event_handlers_do_not_become_attributes() {
        let out = render("<img src=x onerror=\"alert(1)\">\n\nand <b onclick=alert(1)>bold</b>");
        assert!(!out.contains("<img"), "{out}");
        assert!(!out.contains("<b "), "{out}");
        assert!(out.contains("&lt;img src=x onerror="), "{out}");
    }

    #[test]
    fn only_web_and_mail_links_stay_links() {
        let out = render(
            "[ok](https://example.org/a?b=1&c=2) [mail](mailto:a@example.org) \
             [bad](javascript:alert(1)) [data](data:text/html,hi) [rel](/etc/passwd)",
        );
        assert!(
            out.contains("<a href=\"https://example.org/a?b=1&amp;c=2\">ok</a>"),
            "{out}"
        );
        assert!(
            out.contains("<a href=\"mailto:a@example.org\">mail</a>"),
            "{out}"
        );
        assert!(!out.contains("javascript"), "{out}");
        assert!(!out.contains("data:"), "{out}");
        assert!(!out.contains("/etc/passwd"), "{out}");
        assert!(out.contains("bad") && out.contains("data") && out.contains("rel"));
    }

    #[test]
    fn images_become_links_and_bad_ones_vanish() {
        let out = render("![a chart](https://example.org/c.png) ![x](javascript:alert(1))");
        assert!(!out.contains("<img"), "{out}");
        assert!(
            out.contains("<a href=\"https://example.org/c.png\">a chart</a>"),
            "{out}"
        );
        assert!(!out.contains("javascript"), "{out}");
    }

    #[test]
    fn quotes_in_urls_cannot_break_out_of_the_attribute() {
        let out = render("[x](https://example.org/\"onmouseover=\"alert(1))");
        assert!(!out.contains("\"onmouseover"), "{out}");
    }

    #[test]
    fn ordinary_markdown_renders() {
        let out = render("# Title\n\n*em* **strong** `code`\n\n- one\n- two\n\n> quoted");
        for part in [
            "<h1>Title</h1>",
            "<em>em</em>",
            "<strong>strong</strong>",
            "<code>code</code>",
            "<li>one</li>",
            "<blockquote>",
        ] {
            assert!(out.contains(part), "{part} missing in {out}");
        }
    }
}
