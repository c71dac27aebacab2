//! Names and escapes: metric and label names sanitised to what Prometheus accepts, the name
//! stem a user-chosen metric or series name gives, and the escaping of label values, span
//! paths and `# HELP` text.

use crate::encoding::Kind;
use crate::units::is_reserved_word;

/// Prefix of every metric name written.
pub const METRIC_PREFIX: &str = "heimdall_";

/// `name` as a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), in snake_case: camelCase
/// humps and every run of other characters become one `_`; a leading digit gets a `_` before
/// it; an empty result is `_`. (No `:` is produced: it is reserved for recording rules.)
///
/// ```
/// use heimdall_perf_report_openmetrics::sanitize_metric_name;
/// assert_eq!(sanitize_metric_name("system.cpu.total"), "system_cpu_total");
/// assert_eq!(sanitize_metric_name("frameLatency p99"), "frame_latency_p99");
/// assert_eq!(sanitize_metric_name("3d | depth"), "_3d_depth");
/// ```
pub fn sanitize_metric_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut prev: Option<char> = None;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase()
                && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
            {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
        prev = Some(c);
    }
    let trimmed = out.trim_matches('_');
    let mut name = String::with_capacity(trimmed.len() + 1);
    if trimmed.is_empty() || trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        name.push('_');
    }
    name.push_str(trimmed);
    name
}

/// `name` as a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`, which is
/// reserved).
///
/// ```
/// assert_eq!(heimdall_perf_report_openmetrics::sanitize_label_name("Camera Id"), "camera_id");
/// assert_eq!(heimdall_perf_report_openmetrics::sanitize_label_name("__x"), "x");
/// ```
pub fn sanitize_label_name(name: &str) -> String {
    sanitize_metric_name(name)
}

/// `value` escaped for a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
///
/// ```
/// use heimdall_perf_report_openmetrics::escape_label_value;
/// assert_eq!(escape_label_value("a \"b\"\\\nc"), r#"a \"b\"\\\nc"#);
/// ```
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a `# HELP` line: backslashes and newlines escaped, double quotes (which the
/// Prometheus and OpenMetrics parsers escape differently) replaced by single quotes.
pub(crate) fn escape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push('\''),
            c => out.push(c),
        }
    }
    out
}

/// The `path` label of a span: names joined by `;`, a `\` or `;` inside a name written `\\`
/// or `\;` (a span named `a;b` is `a\;b`, the path a › b is `a;b`).
pub(crate) fn path_label(path: &[String]) -> String {
    path.iter()
        .map(|name| name.replace('\\', "\\\\").replace(';', "\\;"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The name stem for a user-chosen `name` with `unit`, for a family of `kind`: sanitised,
/// without a trailing copy of a known unit (`latency_ms` in `ms` becomes `latency`, written
/// later as `latency_seconds`), without the words Prometheus naming rules reserve (type names,
/// unit abbreviations, non-base and prefixed unit words such as `minutes` or `kilobytes`, a
/// counter's own `total`). The original name stays in a label.
pub(crate) fn stem(name: &str, unit: &str, suffix: Option<&str>, kind: Kind) -> String {
    let mut s = sanitize_metric_name(name);
    if let Some(suffix) = suffix {
        let given = sanitize_metric_name(unit);
        for end in [given.trim_start_matches('_'), suffix] {
            if end.is_empty() {
                continue;
            }
            if let Some(rest) = s.strip_suffix(&format!("_{end}")) {
                s = rest.to_string();
            }
        }
    }
    let mut tokens: Vec<&str> = s
        .split('_')
        .filter(|t| !t.is_empty() && !is_reserved_word(t))
        .collect();
    if kind == Kind::Counter {
        while tokens.last() == Some(&"total") {
            tokens.pop();
        }
    }
    if tokens.is_empty() {
        "value".to_string()
    } else {
        tokens.join("_")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use heimdall_perf_testkit::HOSTILE_NAME;

    pub(crate) fn valid_metric_name(n: &str) -> bool {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    #[test]
    fn names_are_sanitised() {
        for (input, expected) in [
            ("fps", "fps"),
            ("system.cpu.total", "system_cpu_total"),
            ("sensor | temp", "sensor_temp"),
            ("frameLatencyP99", "frame_latency_p99"),
            ("HTTPServer", "httpserver"),
            ("9lives", "_9lives"),
            ("", "_"),
            ("||", "_"),
            ("é-cam", "cam"),
        ] {
            assert_eq!(sanitize_metric_name(input), expected, "{input:?}");
            assert!(valid_metric_name(&sanitize_metric_name(input)));
        }
        let hostile = sanitize_metric_name(HOSTILE_NAME);
        assert!(valid_metric_name(&hostile), "{hostile}");
        assert_eq!(
            hostile,
            "odd_name_with_ticks_and_script_alert_1_script_quotes"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            escape_label_value(HOSTILE_NAME),
            "odd | name `with` ticks\\nand <script>alert(1)</script> & \\\"quotes\\\""
        );
        assert_eq!(escape_help("a \"b\" \\ \n"), "a 'b' \\\\ \\n");
    }

    #[test]
    fn names_keep_known_units_once_and_unknown_units_out() {
        let g = Kind::Gauge;
        assert_eq!(stem("latency_ms", "ms", Some("seconds"), g), "latency");
        assert_eq!(stem("memory_bytes", "bytes", Some("bytes"), g), "memory");
        assert_eq!(stem("camera_fps", "fps", None, g), "camera_fps");
        assert_eq!(
            stem("latency_milliseconds", "ms", Some("seconds"), g),
            "latency"
        );
        assert_eq!(stem("size in kilobytes", "", None, g), "size_in");
        assert_eq!(stem("uptime_minutes_gauge", "", None, g), "uptime");
        assert_eq!(stem("frameCounter_ms_p99", "", None, g), "frame_p99");
        assert_eq!(stem("frames_total", "", None, Kind::Counter), "frames");
        assert_eq!(stem("frames_total", "", None, g), "frames_total");
        assert_eq!(stem("ms", "", None, g), "value");
    }
}
