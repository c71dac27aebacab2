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

/// A name made safe for a file or folder name: letters, digits, `-`, `_` and `.` are kept,
/// anything else becomes `_`; never empty, never `.` or `..`.
pub fn sanitize_file_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
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
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
