//! Text escaping and number formatting for the Markdown report.

use std::fmt::Write as _;

/// What a line break inside a name becomes (a table row must stay on one line).
pub(crate) const NEWLINE_MARK: char = '↵';

pub(crate) use heimdall_perf_core::control_picture;

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

/// `Some(text)` for NaN and infinities, which print as `NaN`, `inf`, `-inf`.
fn non_finite(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("inf")
    } else if v == f64::NEG_INFINITY {
        Some("-inf")
    } else {
        None
    }
}

/// A duration given in nanoseconds, in a readable unit: `850 ns`, `12.34 µs`, `5.67 ms`,
/// `1.23 s`, `2 min 05 s`, `24 h 00 min`.
pub(crate) fn duration_ns(v: f64) -> String {
    if let Some(s) = non_finite(v) {
        return s.to_string();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    // Thresholds sit where rounding would carry into the next unit (999.996 µs is 1.00 ms).
    if a < 999.5 {
        format!("{sign}{a:.0} ns")
    } else if a < 999_995.0 {
        format!("{sign}{:.2} µs", a / 1e3)
    } else if a < 999_995_000.0 {
        format!("{sign}{:.2} ms", a / 1e6)
    } else if a < 59.995e9 {
        format!("{sign}{:.2} s", a / 1e9)
    } else if a < 3599.5e9 {
        let s = (a / 1e9).round() as u64;
        format!("{sign}{} min {:02} s", s / 60, s % 60)
    } else {
        let m = (a / 60e9).round() as u64;
        format!("{sign}{} h {:02} min", m / 60, m % 60)
    }
}

/// A plain value: at most three decimals, trailing zeros dropped; scientific notation for
/// very large or very small magnitudes.
pub(crate) fn number(v: f64) -> String {
    if let Some(s) = non_finite(v) {
        return s.to_string();
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".to_string();
    }
    if !(1e-3..1e12).contains(&a) {
        return format!("{v:.3e}");
    }
    let mut s = format!("{v:.3}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s.remove(0);
    }
    s
}

/// A byte count in binary units: `512 B`, `3.73 GiB`.
pub(crate) fn bytes(v: f64) -> String {
    if let Some(s) = non_finite(v) {
        return s.to_string();
    }
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let sign = if v < 0.0 { "-" } else { "" };
    let mut a = v.abs();
    if a < 1023.5 {
        return format!("{sign}{a:.0} B");
    }
    let mut unit = 0;
    while a >= 1023.995 && unit + 1 < UNITS.len() {
        a /= 1024.0;
        unit += 1;
    }
    format!("{sign}{a:.2} {}", UNITS[unit])
}

/// A value in the given unit: durations (`ns`, `µs`/`us`, `ms`, `s`), bytes and percentages
/// get their own formats; any other unit follows the number (escaped).
pub(crate) fn with_unit(v: f64, unit: &str) -> String {
    match unit {
        "ns" => duration_ns(v),
        "µs" | "us" => duration_ns(v * 1e3),
        "ms" => duration_ns(v * 1e6),
        "s" => duration_ns(v * 1e9),
        "bytes" | "B" => bytes(v),
        "bytes/s" | "B/s" => {
            let mut s = bytes(v);
            if v.is_finite() {
                s.push_str("/s");
            }
            s
        }
        "%" => {
            if let Some(s) = non_finite(v) {
                s.to_string()
            } else {
                format!("{v:.1} %")
            }
        }
        "" => number(v),
        other => {
            let mut s = number(v);
            if v.is_finite() {
                s.push(' ');
                escape_into(&mut s, other);
            }
            s
        }
    }
}

/// Appends `n` with thin grouping of thousands (`1 234 567`, using U+202F), readable in a
/// right-aligned column.
pub(crate) fn count_into(out: &mut String, n: u64) {
    let digits = n.to_string();
    let len = digits.len();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push('\u{202F}');
        }
        out.push(c);
    }
}

/// `n` grouped as by [`count_into`].
pub(crate) fn count(n: u64) -> String {
    let mut s = String::with_capacity(24);
    count_into(&mut s, n);
    s
}

/// Appends one table row: `| a | b | c |`.
pub(crate) fn row<I, S>(out: &mut String, cells: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    out.push('|');
    for c in cells {
        out.push(' ');
        out.push_str(c.as_ref());
        out.push_str(" |");
    }
    out.push('\n');
}

/// Appends a table header: the names (escaped) and the delimiter row, numeric columns
/// (`true`) right-aligned.
pub(crate) fn header(out: &mut String, columns: &[(&str, bool)]) {
    row(out, columns.iter().map(|(name, _)| escape(name)));
    out.push('|');
    for (_, numeric) in columns {
        out.push_str(if *numeric { " ---: |" } else { " :--- |" });
    }
    out.push('\n');
}

/// Writes `args` into `out`; writing into a `String` cannot fail.
pub(crate) fn push_fmt(out: &mut String, args: std::fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_readable_unit() {
        let cases = [
            (0.0, "0 ns"),
            (999.0, "999 ns"),
            (999.6, "1.00 µs"),
            (1_500.0, "1.50 µs"),
            (999_999.0, "1.00 ms"),
            (14_250_000.0, "14.25 ms"),
            (1.5e9, "1.50 s"),
            (59.999e9, "1 min 00 s"),
            (125e9, "2 min 05 s"),
            (86_400e9, "24 h 00 min"),
            (-2_000.0, "-2.00 µs"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (u64::MAX as f64, "5124095 h 35 min"),
        ];
        for (v, want) in cases {
            assert_eq!(duration_ns(v), want, "{v}");
        }
    }

    #[test]
    fn numbers_and_units() {
        assert_eq!(number(59.0), "59");
        assert_eq!(number(58.25), "58.25");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(-0.0001), "-1.000e-4");
        assert_eq!(number(1.0004), "1");
        assert_eq!(number(2.5e13), "2.500e13");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(4.0e9), "3.73 GiB");
        assert_eq!(bytes(1024.0 * 1024.0 - 1.0), "1.00 MiB");
        assert_eq!(
            bytes(f64::MAX),
            format!("{:.2} EiB", f64::MAX / 1024f64.powi(6))
        );
        assert_eq!(with_unit(42.25, "%"), "42.2 %");
        assert_eq!(with_unit(f64::INFINITY, "°C"), "inf");
        assert_eq!(with_unit(41.5, "°C"), "41.5 °C");
        assert_eq!(with_unit(3.0, "<b>"), "3 &lt;b&gt;");
        assert_eq!(with_unit(2048.0, "bytes/s"), "2.00 KiB/s");
        assert_eq!(with_unit(1500.0, "ns"), "1.50 µs");
        assert_eq!(with_unit(14.95, "ms"), "14.95 ms");
        assert_eq!(with_unit(0.5, "ms"), "500.00 µs");
        assert_eq!(with_unit(2.5, "us"), "2.50 µs");
        assert_eq!(with_unit(90.0, "s"), "1 min 30 s");
        assert_eq!(with_unit(f64::NAN, "ms"), "NaN");
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1\u{202F}234\u{202F}567");
    }

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

    #[test]
    fn header_aligns_numeric_columns_right() {
        let mut s = String::new();
        header(&mut s, &[("Path", false), ("Count", true)]);
        assert_eq!(s, "| Path | Count |\n| :--- | ---: |\n");
    }
}
