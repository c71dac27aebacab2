//! Characters an HTML page cannot carry.
//!
//! The HTML standard makes U+0000, the other control characters (C0 but tab, line feed,
//! form feed and carriage return; DEL; C1) and the noncharacters parse errors; browsers
//! turn U+0000 into U+FFFD or drop it, and tools that read the page as XML or as C strings
//! stop at it. A report can hold any of them in a span, thread, metric or session name, a
//! unit or a note, so the finished page is passed through [`visible`]: each such character
//! becomes a visible stand-in, so nothing is silently lost.

use std::borrow::Cow;

/// The visible stand-in for `c`, or `None` when `c` may stand in a page as it is.
///
/// C0 controls and DEL become their Control Pictures (`\0` is `␀`, U+2400; `\x1b` is
/// `␛`); C1 controls and noncharacters become U+FFFD (the replacement character).
pub(crate) fn stand_in(c: char) -> Option<char> {
    match c {
        '\t' | '\n' | '\r' => None,
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32),
        '\u{7f}' => Some('\u{2421}'),
        '\u{80}'..='\u{9f}' => Some('\u{FFFD}'),
        '\u{FDD0}'..='\u{FDEF}' => Some('\u{FFFD}'),
        c if (c as u32) & 0xFFFE == 0xFFFE => Some('\u{FFFD}'),
        _ => None,
    }
}

/// `text` with every character an HTML page cannot carry replaced by its [`stand_in`];
/// borrowed when there is none (the usual case).
pub(crate) fn visible(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(|c| stand_in(c).is_some()) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        out.push(stand_in(c).unwrap_or(c));
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_noncharacters_get_visible_stand_ins() {
        assert!(matches!(visible("plain µs → ok\t\n\r"), Cow::Borrowed(_)));
        assert_eq!(
            visible("a\0b\x1b[31m\x7f\u{85}\u{FDD0}\u{FFFE}\u{FFFF}\u{1FFFF}\u{10FFFF}\x0c"),
            "a␀b␛[31m␡\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}␌"
        );
        // Characters next to the forbidden ranges stay.
        for c in [
            '\u{a0}',
            '\u{FDCF}',
            '\u{FDF0}',
            '\u{FFFD}',
            '\u{1FFFD}',
            '\u{E000}',
        ] {
            assert_eq!(stand_in(c), None, "{c:?}");
        }
    }
}
