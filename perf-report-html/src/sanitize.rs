//! Characters an HTML page cannot carry.
//!
//! The HTML standard makes U+0000, the other control characters (C0 but tab, line feed,
//! form feed and carriage return; DEL; C1) and the noncharacters parse errors; browsers
//! turn U+0000 into U+FFFD or drop it, and tools that read the page as XML or as C strings
//! stop at it. A report can hold any of them in a span, thread, metric or session name, a
//! unit or a note, so the finished page is passed through [`visible`]: each such character
//! becomes a visible stand-in, so nothing is silently lost.

use std::borrow::Cow;

use heimdall_perf_core::control_picture;

/// `text` with every character an HTML page cannot carry replaced by its [`control_picture`];
/// borrowed when there is none (the usual case).
pub(crate) fn visible(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(|c| control_picture(c).is_some()) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        out.push(control_picture(c).unwrap_or(c));
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
            assert_eq!(control_picture(c), None, "{c:?}");
        }
    }
}
