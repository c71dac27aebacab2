//! Session notes: Markdown written by users, included as-is except for what could break the
//! report around them or pass raw HTML.
//!
//! * Raw HTML (blocks, inline tags, comments, CDATA, processing instructions) is turned
//!   into text: every `<` outside code becomes `&lt;`, so `<script>` or `<img onerror=…>`
//!   shows as such instead of reaching the page, whatever parser reads the report. Code
//!   spans, code blocks and autolinks to `http`, `https` and `mailto` are untouched.
//! * Links and images to other destinations (`javascript:`, `data:`…) are shown as their
//!   source text: their `[` is backslash-escaped.
//! * Headings are demoted by [`HEADING_SHIFT`] levels (at most to `######`), so that a note's
//!   `# Title` nests under the note's own `###` heading instead of competing with the report's.
//! * A fenced code block left open at the end of a note is closed, so that it cannot swallow
//!   the rest of the report.
//! * Control characters never reach the file raw: line ends (CR LF, CR) become LF, tabs stay
//!   (they indent code), every other C0 control and DEL becomes its Control Picture (`␀`,
//!   `␛`, `␡`), C1 controls and noncharacters U+FFFD — the mapping of the HTML sink.

use std::ops::Range;

use heimdall_perf_core::control_picture;
use pulldown_cmark::{CodeBlockKind, Event, LinkType, Options, Parser, Tag, TagEnd};

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
    let mut s = visible(text);
    // Escaping can only turn markup into text, but let a few rounds settle any construct
    // that re-parses differently once its neighbour is text (a `[` escaped may expose an
    // autolink inside it); past that, escape every `<` and `[`.
    let mut settled = false;
    for _ in 0..4 {
        match neutralise(&s) {
            Some(next) => s = next,
            None => {
                settled = true;
                break;
            }
        }
    }
    if !settled && neutralise(&s).is_some() {
        s = s.replace('<', "&lt;").replace('[', "\\[");
    }
    let mut s = restructure(&s);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// `text` with CR LF and CR turned into LF and every other control character but tab, and
/// every noncharacter, replaced by its [`control_picture`] (before parsing: the stand-ins are plain
/// text, so they change no structure but a NUL's, which Markdown reads as U+FFFD anyway).
fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            c => out.push(control_picture(c).unwrap_or(c)),
        }
    }
    out
}

/// Whether a link destination is harmless: no scheme (a relative path or an in-page
/// anchor), or `http`, `https` or `mailto`. `javascript:`, `data:`, `vbscript:`, `file:`…
/// are not.
fn safe_url(url: &str) -> bool {
    let u = url.trim_start();
    // A scheme is what comes before the first ':' when no '/', '?' or '#' comes earlier.
    match (u.find(':'), u.find(['/', '?', '#'])) {
        (None, _) => true,
        (Some(c), Some(p)) if p < c => true,
        (Some(c), _) => matches!(
            u[..c].to_ascii_lowercase().as_str(),
            "http" | "https" | "mailto"
        ),
    }
}

/// `s` with its markup neutralised, or `None` when it has none left:
///
/// * every `<` outside code spans, code blocks and safe autolinks becomes `&lt;`, so that no
///   Markdown parser, whatever its rules for HTML blocks, comments, CDATA or processing
///   instructions, can read a tag there (`&lt;` always reads as the text `<`);
/// * a link or image to an unsafe destination ([`safe_url`]) gets a `\` before its `[`, so
///   that it reads as its own source text.
fn neutralise(s: &str) -> Option<String> {
    // Byte ranges whose `<` stay: code, and autolinks to safe destinations.
    let mut keep: Vec<Range<usize>> = Vec::new();
    // Byte offsets of the `[` that open unsafe links and images.
    let mut brackets: Vec<usize> = Vec::new();
    for (ev, r) in Parser::new_ext(s, options()).into_offset_iter() {
        match ev {
            Event::Code(_) | Event::Start(Tag::CodeBlock(_)) => keep.push(r),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                ..
            }) => {
                let autolink = matches!(link_type, LinkType::Autolink | LinkType::Email);
                if safe_url(&dest_url) {
                    if autolink {
                        keep.push(r);
                    }
                } else if !autolink && s.as_bytes().get(r.start) == Some(&b'[') {
                    brackets.push(r.start);
                }
                // An unsafe autolink starts with `<`, which is escaped below.
            }
            Event::Start(Tag::Image { dest_url, .. })
                if !safe_url(&dest_url) && s.as_bytes().get(r.start + 1) == Some(&b'[') =>
            {
                brackets.push(r.start + 1);
            }
            _ => {}
        }
    }
    keep.sort_by_key(|r| r.start);
    let kept = |i: usize| {
        // Ranges are few; code blocks nest nothing that matters here.
        keep.iter()
            .take_while(|r| r.start <= i)
            .any(|r| r.contains(&i))
    };
    let mut out = String::with_capacity(s.len() + 16);
    let mut changed = false;
    for (i, c) in s.char_indices() {
        if c == '<' && !kept(i) {
            out.push_str("&lt;");
            changed = true;
        } else if c == '[' && brackets.contains(&i) {
            out.push_str("\\[");
            changed = true;
        } else {
            out.push(c);
        }
    }
    changed.then_some(out)
}

/// Byte ranges of raw HTML in `s`, sorted (what the tests check is gone).
#[cfg(test)]
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
    fn control_characters_become_visible_stand_ins() {
        let note =
            "<script>x</script> \u{0} NUL\r\n\ttab\rcr \x1b[2J \x7f \u{85} \u{9b} \u{FFFE}\n";
        let out = sanitize(note);
        assert_eq!(
            out,
            "&lt;script>x&lt;/script> ␀ NUL\n\ttab\ncr ␛[2J ␡ \u{FFFD} \u{FFFD} \u{FFFD}\n"
        );
        // Inside code too: the stand-in shows what was there.
        assert_eq!(sanitize("`a\u{7}b`\n"), "`a␇b`\n");
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            let out = sanitize(&format!("x{c}y"));
            assert!(
                !out.chars()
                    .any(|o| o.is_control() && o != '\n' && o != '\t'),
                "{c:?} -> {out:?}"
            );
        }
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
