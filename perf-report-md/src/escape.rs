//! Escaping names and other text taken from a report so that they read as plain text in
//! Markdown, wherever they sit (table cell, heading, list item). Figures are written by
//! `heimdall_perf_core::units`, not here.

use heimdall_perf_core::control_picture;

/// What a line break inside a name becomes (a table row must stay on one line).
const NEWLINE_MARK: char = '↵';

/// Appends `s` to `out` so that it renders as exactly this text on GitHub, wherever it sits
/// (table cell, heading, list item): table pipes and Markdown punctuation are
/// backslash-escaped, `<`, `>` and `&` become entities (so no raw HTML and no entity
/// decoding), line breaks (CR, LF, CR LF, NEL, U+2028, U+2029) become [`NEWLINE_MARK`], a
/// tab `␉` (U+2409) and other control characters and noncharacters their [`control_picture`].
pub(crate) fn escape_into(out: &mut String, s: &str) {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // Characters that can start or end inline syntax anywhere on a line: code spans,
            // emphasis, links, strikethrough, table cells, heading closers, GitHub math.
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(NEWLINE_MARK);
            }
            '\n' | '\u{2028}' | '\u{2029}' | '\u{85}' => out.push(NEWLINE_MARK),
            '\t' => out.push('\u{2409}'),
            c => out.push(control_picture(c).unwrap_or(c)),
        }
    }
}

/// `s` escaped as by [`escape_into`].
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    escape_into(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_tables_code_html_and_lines() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("`x`"), "\\`x\\`");
        assert_eq!(escape("<b>&"), "&lt;b&gt;&amp;");
        assert_eq!(escape("a\r\nb\nc\rd"), "a↵b↵c↵d");
        assert_eq!(escape("t\tx\0"), "t␉x␀");
        assert_eq!(
            escape("\x1b[31m\x7f\u{80}\u{9f}\u{FDD0}\u{FFFF}\u{10FFFE}"),
            "␛\\[31m␡\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"
        );
        assert_eq!(escape("\\|"), "\\\\\\|");
        assert_eq!(escape("plain-text.1"), "plain-text.1");
    }
}
