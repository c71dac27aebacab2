//! Notes: Markdown to HTML with pulldown-cmark, with nothing raw let through.
//!
//! Raw HTML blocks and inline HTML become escaped text; links keep only harmless
//! destinations (`http`, `https`, `mailto`, in-page anchors and relative paths); images
//! become links (a report opens offline and loads nothing from the network).

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

/// Whether a link destination is safe to keep as is.
fn safe_url(url: &str) -> bool {
    let u = url.trim_start();
    // A scheme is what comes before the first ':' when no '/', '?' or '#' comes earlier.
    let scheme_end = u.find(':');
    let path_start = u.find(['/', '?', '#']);
    match (scheme_end, path_start) {
        (None, _) => true,
        (Some(c), Some(p)) if p < c => true,
        (Some(c), _) => {
            let scheme = u[..c].to_ascii_lowercase();
            matches!(scheme.as_str(), "http" | "https" | "mailto")
        }
    }
}

fn clean_url(url: CowStr<'_>) -> CowStr<'_> {
    if safe_url(&url) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

/// Renders a note's Markdown to HTML. Raw HTML is shown as text, never passed through.
pub(crate) fn to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: clean_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            dest_url, title, ..
        }) => Event::Start(Tag::Link {
            link_type: LinkType::Inline,
            dest_url: clean_url(dest_url),
            title,
            id: CowStr::Borrowed(""),
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut html = String::with_capacity(markdown.len() * 3 / 2 + 16);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered() {
        let h = to_html(
            "## Title\n\nDetection is **slow** on `cam-2`.\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        );
        assert!(h.contains("<h2>Title</h2>"), "{h}");
        assert!(h.contains("<strong>slow</strong>"), "{h}");
        assert!(h.contains("<code>cam-2</code>"), "{h}");
        assert!(h.contains("<table>"), "{h}");
    }

    #[test]
    fn raw_html_is_escaped_text() {
        let h = to_html(
            "<script>alert('note')</script> raw <b>html</b>\n\n<div onclick=x>block</div>\n",
        );
        assert!(!h.contains("<script"), "{h}");
        assert!(!h.contains("<b>"), "{h}");
        assert!(!h.contains("<div"), "{h}");
        assert!(h.contains("&lt;script&gt;alert("), "{h}");
        assert!(h.contains("&lt;div onclick=x&gt;"), "{h}");
    }

    #[test]
    fn dangerous_links_are_neutralised_and_images_not_loaded() {
        let h = to_html("[a](javascript:alert(1)) [b](JaVaScRiPt:x) [c](https://example.com/x?y=1) [d](#spans) [e](data:text/html,x) ![img](http://host/x.png)");
        assert!(!h.to_ascii_lowercase().contains("javascript:"), "{h}");
        assert!(!h.contains("data:text"), "{h}");
        assert!(h.contains(r#"href="https://example.com/x?y=1""#), "{h}");
        assert!(h.contains(r##"href="#spans""##), "{h}");
        assert!(!h.contains("<img"), "{h}");
        assert!(h.contains(r#"<a href="http://host/x.png">img</a>"#), "{h}");
    }

    #[test]
    fn url_safety() {
        assert!(safe_url("page.html"));
        assert!(safe_url("./a:b"));
        assert!(safe_url("mailto:x@y"));
        assert!(!safe_url(" javascript:x"));
        assert!(!safe_url("vbscript:x"));
        assert!(!safe_url("file:///etc/passwd"));
    }

    // Notes that try to get raw HTML or a script link into the page (the list the Markdown
    // sink is tested with too).
    use heimdall_perf_testkit::HOSTILE_NOTES;

    #[test]
    fn hostile_notes_give_only_markdown_elements_and_safe_links() {
        let allowed = [
            "html",
            "head",
            "body",
            "p",
            "a",
            "em",
            "strong",
            "code",
            "pre",
            "ul",
            "ol",
            "li",
            "blockquote",
            "table",
            "thead",
            "tbody",
            "tr",
            "th",
            "td",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "del",
            "input",
            "sup",
            "div",
            "hr",
            "br",
        ];
        let mut failures = Vec::new();
        for note in HOSTILE_NOTES {
            for text in [note.to_string(), format!("para\n{note}")] {
                let h = to_html(&text);
                let doc = scraper::Html::parse_fragment(&h);
                for e in doc
                    .root_element()
                    .descendants()
                    .filter_map(scraper::ElementRef::wrap)
                {
                    let el = e.value();
                    if !allowed.contains(&el.name()) {
                        failures.push(format!("{text:?}: <{}> in {h}", el.name()));
                    }
                    for (name, value) in el.attrs() {
                        let v = value.trim().to_ascii_lowercase();
                        if name.starts_with("on")
                            || ((name == "href" || name == "src") && !safe_url(&v))
                        {
                            failures.push(format!("{text:?}: {name}={value:?} in {h}"));
                        }
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
