//! Session notes: Markdown written by users, included as-is except for what could break the
//! report around them or pass raw HTML.
//!
//! * Raw HTML (blocks and inline tags) is turned into text: its `<` become `&lt;`, so
//!   `<script>` shows as `<script>` instead of reaching the page. Code spans and code blocks
//!   are untouched.
//! * Headings are demoted by [`HEADING_SHIFT`] levels (at most to `######`), so that a note's
//!   `# Title` nests under the note's own `###` heading instead of competing with the report's.
//! * A fenced code block left open at the end of a note is closed, so that it cannot swallow
//!   the rest of the report.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// Levels added to the headings of a note (the note itself sits under a level-3 heading).
pub(crate) const HEADING_SHIFT: usize = 3;

/// The GitHub-flavoured extensions the notes are parsed with.
fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
}

/// The note `text`, made safe to embed in the report (see the module docs). Ends with a
/// line break.
pub(crate) fn sanitize(text: &str) -> String {
    let mut s = text.to_string();
    // Escaping one HTML block can only turn it into text, but let a few rounds settle any
    // construct that re-parses differently; past that, escape every `<`.
    for _ in 0..4 {
        let ranges = html_ranges(&s);
        if ranges.is_empty() {
            break;
        }
        s = escape_lt(&s, &ranges);
    }
    if !html_ranges(&s).is_empty() {
        s = s.replace('<', "&lt;");
    }
    let mut s = restructure(&s);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Byte ranges of raw HTML in `s`, sorted.
fn html_ranges(s: &str) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = Parser::new_ext(s, options())
        .into_offset_iter()
        .filter(|(ev, _)| {
            matches!(
                ev,
                Event::Html(_) | Event::InlineHtml(_) | Event::Start(Tag::HtmlBlock)
            )
        })
        .map(|(_, r)| r)
        .collect();
    ranges.sort_by_key(|r| r.start);
    ranges
}

/// `s` with every `<` inside `ranges` (sorted by start) written `&lt;`.
fn escape_lt(s: &str, ranges: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut next = 0;
    for (i, c) in s.char_indices() {
        while next < ranges.len() && ranges[next].end <= i {
            next += 1;
        }
        let inside = ranges[next..]
            .iter()
            .take_while(|r| r.start <= i)
            .any(|r| r.contains(&i));
        if c == '<' && inside {
            out.push_str("&lt;");
        } else {
            out.push(c);
        }
    }
    out
}

/// Demotes headings and closes a fence left open at the end.
fn restructure(s: &str) -> String {
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut depth = 0usize;
    let mut open_fence: Option<String> = None;
    for (ev, r) in Parser::new_ext(s, options()).into_offset_iter() {
        match ev {
            Event::Start(Tag::BlockQuote(_) | Tag::List(_) | Tag::FootnoteDefinition(_)) => {
                depth += 1
            }
            Event::End(TagEnd::BlockQuote(_) | TagEnd::List(_) | TagEnd::FootnoteDefinition) => {
                depth = depth.saturating_sub(1)
            }
            Event::Start(Tag::Heading { level, .. }) => {
                if let Some(edit) = demote(s, r, level as usize, depth) {
                    edits.push(edit);
                }
            }
            // A fence inside a list or quote ends with its container, which the report's
            // next heading closes; only a top-level fence can run to the end of the page.
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) if depth == 0 => {
                open_fence = s.get(r).and_then(unclosed_fence);
            }
            _ => {}
        }
    }
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(s.len() + 16 * edits.len() + 8);
    let mut at = 0;
    for (r, text) in edits {
        if r.start < at || r.end > s.len() {
            continue; // overlapping or out of range: never expected, keep the text as it is
        }
        out.push_str(&s[at..r.start]);
        out.push_str(&text);
        at = r.end;
    }
    out.push_str(&s[at..]);
    if let Some(fence) = open_fence {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&fence);
        out.push('\n');
    }
    out
}

/// The edit that moves the heading starting at `r` down by [`HEADING_SHIFT`] levels.
fn demote(s: &str, r: Range<usize>, level: usize, depth: usize) -> Option<(Range<usize>, String)> {
    let new_level = (level + HEADING_SHIFT).min(6);
    if new_level <= level {
        return None;
    }
    let text = s.get(r.clone())?;
    let lead = text.len() - text.trim_start_matches([' ', '\t']).len();
    if text[lead..].starts_with('#') {
        // ATX: add `#`s in front of the existing ones.
        let at = r.start + lead;
        return Some((at..at, "#".repeat(new_level - level)));
    }
    if depth > 0 {
        // A setext heading inside a container: its lines carry the container's markers,
        // which a one-line rewrite would lose. Left as it is.
        return None;
    }
    // Setext: the content lines, then the `===` / `---` underline. Rewrite as one ATX line.
    let body = text.trim_end_matches(['\n', '\r']);
    let (content, _underline) = body.rsplit_once('\n')?;
    let mut joined = content
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if joined.ends_with('#') {
        // A trailing `#` would read as an ATX closing sequence.
        joined.insert(joined.len() - 1, '\\');
    }
    let end = r.start + body.len();
    Some((r.start..end, format!("{} {joined}", "#".repeat(new_level))))
}

/// The fence that closes `block` (a fenced code block's source), if it is not closed.
fn unclosed_fence(block: &str) -> Option<String> {
    let first = block.lines().next()?.trim_start_matches(' ');
    let fence_char = first.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = first.chars().take_while(|c| *c == fence_char).count();
    let mut lines = block.lines();
    lines.next();
    let closed = lines.rfind(|l| !l.trim().is_empty()).is_some_and(|last| {
        let last = last.trim_start_matches(' ');
        let run = last.chars().take_while(|c| *c == fence_char).count();
        run >= n && last[run * fence_char.len_utf8()..].trim().is_empty()
    });
    if closed {
        None
    } else {
        Some(fence_char.to_string().repeat(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (level, text) of every heading.
    fn headings(md: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut current: Option<(usize, String)> = None;
        for ev in Parser::new_ext(md, options()) {
            match ev {
                Event::Start(Tag::Heading { level, .. }) => {
                    current = Some((level as usize, String::new()))
                }
                Event::Text(t) | Event::Code(t) => {
                    if let Some((_, s)) = current.as_mut() {
                        s.push_str(&t)
                    }
                }
                Event::End(TagEnd::Heading(_)) => out.extend(current.take()),
                _ => {}
            }
        }
        out
    }

    fn has_html(md: &str) -> bool {
        !html_ranges(md).is_empty()
    }

    #[test]
    fn raw_html_becomes_text_but_code_is_untouched() {
        let note = "<script>alert('x')</script> raw <b>html</b>\n\nuse `<T>` here\n\n```\n<div>\n```\n\ninline <i>x</i> and <!-- c -->\n\n<div>\n# not a heading\n</div>\n";
        let out = sanitize(note);
        assert!(!has_html(&out), "{out}");
        assert!(
            out.starts_with("&lt;script>alert('x')&lt;/script> raw &lt;b>html&lt;/b>"),
            "{out}"
        );
        assert!(out.contains("use `<T>` here"), "{out}");
        assert!(out.contains("```\n<div>\n```"), "{out}");
        assert!(
            out.contains("inline &lt;i>x&lt;/i> and &lt;!-- c -->"),
            "{out}"
        );
        // The heading that the HTML block hid becomes a demoted heading, not an h1.
        assert_eq!(
            headings(&out),
            vec![(4, "not a heading".to_string())],
            "{out}"
        );
    }

    #[test]
    fn headings_are_demoted() {
        let note = "# One\n\n## Two ##\n\n##### Five\n\nSetext\n===\n\nSub *x*\n---\n\n> # quoted\n\n    # indented code\n\n- ## listed\n";
        let out = sanitize(note);
        assert_eq!(
            headings(&out),
            vec![
                (4, "One".into()),
                (5, "Two".into()),
                (6, "Five".into()),
                (4, "Setext".into()),
                (5, "Sub x".into()),
                (4, "quoted".into()),
                (5, "listed".into()),
            ],
            "{out}"
        );
        assert!(out.contains("    # indented code"), "{out}");
        // Already at the deepest level: unchanged.
        assert_eq!(sanitize("###### Six"), "###### Six\n");
    }

    #[test]
    fn setext_heading_ending_with_hash_keeps_it() {
        let out = sanitize("C #\n===\n");
        assert_eq!(headings(&out), vec![(4, "C #".into())], "{out}");
    }

    #[test]
    fn an_open_fence_is_closed() {
        let report_after = "\n## Next section\n";
        for (note, fence) in [
            ("```rust\nlet x = 1;", "```"),
            ("text\n\n~~~~\ncode\n~~~\n", "~~~~"),
            ("````\n```\n", "````"),
        ] {
            let out = sanitize(note);
            assert!(out.ends_with(&format!("\n{fence}\n")), "{out:?}");
            let doc = format!("{out}{report_after}");
            assert_eq!(headings(&doc), vec![(2, "Next section".into())], "{doc}");
        }
        // Closed fences are left alone.
        assert_eq!(sanitize("```\nx\n```"), "```\nx\n```\n");
        assert_eq!(sanitize("  ~~~\nx\n  ~~~~  \n"), "  ~~~\nx\n  ~~~~  \n");
    }

    #[test]
    fn odd_input_does_not_panic() {
        for note in [
            "",
            "\n",
            "#",
            "===",
            "a\r\n===\r\n",
            "<",
            "<<<<>>>>",
            "```",
            "> ```\n> x",
            "- a\n  ```\n  b",
            "\u{0}\u{feff}é<é>",
            "[^1]\n\n[^1]: <b>x</b>",
        ] {
            let out = sanitize(note);
            assert!(out.ends_with('\n'));
            assert!(!has_html(&out), "{note:?} -> {out:?}");
        }
    }
}
