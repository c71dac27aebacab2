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

/// Longest name, in bytes, that [`sanitize_file_name`] returns (a file name may hold 255
/// bytes on common file systems; this leaves room for the time stamp and a run number).
pub const MAX_FILE_NAME_BYTES: usize = 120;

/// A name made safe for a file or folder name: letters and digits of any script, `-`, `_`
/// and `.` are kept, anything else (separators, spaces, controls, punctuation) becomes `_`;
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
        let c = if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize() {
        assert_eq!(sanitize_file_name("line 3/cam:A"), "line_3_cam_A");
        assert_eq!(sanitize_file_name(".."), "session");
        assert_eq!(sanitize_file_name(""), "session");
        assert_eq!(sanitize_file_name("a\u{1b}[2Jb\u{202e}c\td"), "a__2Jb_c_d");
        let long = sanitize_file_name(&"日本".repeat(100));
        assert!(long.len() <= MAX_FILE_NAME_BYTES && long.starts_with("日本日本"));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
