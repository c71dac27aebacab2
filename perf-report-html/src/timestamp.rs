//! The session's start time as a reader sees it. Not a figure (the one formatter of those
//! is `heimdall_perf_core::units`): a time stamp, shown in UTC.

/// An RFC 3339 UTC time (`2025-11-24T16:00:00Z`) as `2025-11-24 16:00:00 UTC`; any other
/// text is returned as is.
pub(crate) fn utc_time(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z').and_then(|t| t.split_once('T')) {
        Some((date, time)) if date.len() == 10 && !time.is_empty() => {
            format!("{date} {time} UTC")
        }
        _ => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(utc_time("2025-11-24T16:00:00Z"), "2025-11-24 16:00:00 UTC");
        assert_eq!(utc_time("yesterday"), "yesterday");
        assert_eq!(utc_time("T"), "T");
    }
}
