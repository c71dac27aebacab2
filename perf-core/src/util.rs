//! Small helpers shared by the crate.

use std::time::{Duration, UNIX_EPOCH};

/// RFC 3339 text (UTC, seconds) for a time in nanoseconds since the Unix epoch.
pub(crate) fn rfc3339(unix_ns: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_nanos(unix_ns)).to_string()
}

/// The machine's host name, or `unknown`.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The visible stand-in that a report shows for `c`, or `None` when `c` can be shown as it
/// is. One mapping for every format, so that every report shows the same character for the
/// same control: C0 controls (but tab, line feed and carriage return, which each format
/// handles in its own way) become their Control Pictures (`\0` is `␀`, U+2400; `\x1b` is
/// `␛`), DEL becomes `␡` (U+2421), and C1 controls and noncharacters become U+FFFD.
///
/// ```
/// use heimdall_perf_core::control_picture;
/// assert_eq!(control_picture('\0'), Some('␀'));
/// assert_eq!(control_picture('\u{85}'), Some('\u{FFFD}'));
/// assert_eq!(control_picture('\n'), None);
/// assert_eq!(control_picture('é'), None);
/// ```
pub fn control_picture(c: char) -> Option<char> {
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

/// Longest name, in bytes, that [`sanitize_file_name`] returns (a file name may hold 255
/// bytes on common file systems; this leaves room for the time stamp and a run number).
pub const MAX_FILE_NAME_BYTES: usize = 120;

/// A name made safe for a file or folder name: ASCII letters and digits, `-`, `_` and `.`,
/// and any other Unicode character that is not a space, a control or a formatting mark
/// (accents, other scripts, emoji) are kept; anything else (separators, spaces, controls,
/// ASCII punctuation) becomes `_`;
/// at most [`MAX_FILE_NAME_BYTES`] bytes, cut on a character boundary; never empty, never
/// `.` or `..`.
///
/// ```
/// use heimdall_perf_core::sanitize_file_name;
/// assert_eq!(sanitize_file_name("ligne 3/caméra:A"), "ligne_3_caméra_A");
/// assert_eq!(sanitize_file_name(&"é".repeat(300)), "é".repeat(60));
/// assert_eq!(sanitize_file_name(".."), "session");
/// ```
pub fn sanitize_file_name(name: &str) -> String {
    let mut s = String::with_capacity(name.len().min(MAX_FILE_NAME_BYTES));
    for c in name.chars() {
        let c = if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' || is_plain_unicode(c) {
            c
        } else {
            '_'
        };
        if s.len() + c.len_utf8() > MAX_FILE_NAME_BYTES {
            break;
        }
        s.push(c);
    }
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "session".to_string()
    } else {
        s
    }
}

/// A character past ASCII that a file name can keep as it is: not a control, not a space,
/// not a bidirectional or invisible formatting mark (which would make the name read other
/// than it is). Keeps combining accents (`e` + U+0301) and symbols such as emoji.
fn is_plain_unicode(c: char) -> bool {
    !c.is_ascii()
        && !c.is_control()
        && !c.is_whitespace()
        && !matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize() {
        assert_eq!(sanitize_file_name("line 3/cam:A"), "line_3_cam_A");
        assert_eq!(sanitize_file_name(".."), "session");
        assert_eq!(sanitize_file_name(""), "session");
        assert_eq!(sanitize_file_name("a\u{1b}[2Jb\u{202e}c\td"), "a__2Jb_c_d");
        assert_eq!(sanitize_file_name("cafe\u{301} 🎥"), "cafe\u{301}_🎥");
        assert_eq!(sanitize_file_name("a\u{200b}b\u{2066}c"), "a_b_c");
        let long = sanitize_file_name(&"日本".repeat(100));
        assert!(long.len() <= MAX_FILE_NAME_BYTES && long.starts_with("日本日本"));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
