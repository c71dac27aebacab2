//! Human-readable numbers: durations, byte sizes, values with their unit.
//!
//! Every function here accepts any `f64`, NaN and infinities included, and never panics.

/// Text for a value that is not a finite number.
fn non_finite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "+∞"
    } else {
        "−∞"
    }
}

/// Three significant digits (or more for large values), trailing zeros kept so that columns
/// line up: `1.23`, `12.3`, `123`.
fn sig3(x: f64) -> String {
    let a = x.abs();
    if a < 9.995 {
        format!("{x:.2}")
    } else if a < 99.95 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// Digits of a non-negative integer grouped by thousands with a narrow no-break space.
fn group_thousands(digits: &str) -> String {
    let n = digits.len();
    let mut out = String::with_capacity(n + n / 3 * 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// An integer count, grouped by thousands: `12 345`.
pub(crate) fn count(n: u64) -> String {
    group_thousands(&n.to_string())
}

/// A duration given in nanoseconds: `850 ns`, `12.3 µs`, `4.56 ms`, `1.20 s`, `2 min 05 s`,
/// `3 h 07 min`, `2 d 04 h`.
pub(crate) fn duration(ns: f64) -> String {
    if !ns.is_finite() {
        return non_finite(ns).to_string();
    }
    if ns < 0.0 {
        return format!("−{}", duration(-ns));
    }
    if ns < 999.5 {
        format!("{ns:.0} ns")
    } else if ns < 999.5e3 {
        format!("{} µs", sig3(ns / 1e3))
    } else if ns < 999.5e6 {
        format!("{} ms", sig3(ns / 1e6))
    } else if ns < 59.95e9 {
        format!("{} s", sig3(ns / 1e9))
    } else {
        // Whole seconds from here on; u64 holds any duration a f64 this size can mean.
        let s = (ns / 1e9).round().min(u64::MAX as f64) as u64;
        if s < 3600 {
            format!("{} min {:02} s", s / 60, s % 60)
        } else if s < 86_400 {
            format!("{} h {:02} min", s / 3600, s % 3600 / 60)
        } else {
            format!("{} d {:02} h", s / 86_400, s % 86_400 / 3600)
        }
    }
}

/// A plain number with three significant digits (`0.0123`, `1.50`, `59.1`, `123`), large
/// values as integers grouped by thousands (`12 345`), tiny or huge ones in `e` notation.
pub(crate) fn number(v: f64) -> String {
    if !v.is_finite() {
        return non_finite(v).to_string();
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".to_string();
    }
    if !(1e-3..1e15).contains(&a) {
        return format!("{v:.2e}");
    }
    if a >= 9_999.5 {
        let digits = format!("{a:.0}");
        let sign = if v < 0.0 { "−" } else { "" };
        return format!("{sign}{}", group_thousands(&digits));
    }
    if a >= 0.9995 {
        return sig3(v);
    }
    // Below one: three significant digits, e.g. 0.500, 0.0123.
    let decimals = (2.0 - a.log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{v:.decimals$}")
}

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

/// Byte-size units, powers of 1024.
const BYTE_UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// The power of 1024 and unit name that suit `v` bytes.
pub(crate) fn byte_scale(v: f64) -> (f64, &'static str) {
    let mut k = 0;
    let mut div = 1.0;
    let a = if v.is_finite() { v.abs() } else { 0.0 };
    while k + 1 < BYTE_UNITS.len() && a >= div * 1023.5 {
        div *= 1024.0;
        k += 1;
    }
    (div, BYTE_UNITS[k])
}

/// A size in bytes: `512 B`, `1.50 KiB`, `3.73 GiB`.
pub(crate) fn bytes(v: f64) -> String {
    if !v.is_finite() {
        return non_finite(v).to_string();
    }
    let (div, unit) = byte_scale(v);
    if div == 1.0 {
        format!("{v:.0} B")
    } else {
        format!("{} {unit}", sig3(v / div))
    }
}

/// How values of a unit are best shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitKind {
    /// Bytes (`bytes`, `B`).
    Bytes,
    /// Bytes per second.
    BytesPerSecond,
    /// A duration; the factor turns the unit into nanoseconds.
    Duration(u64),
    /// Anything else, shown as a number followed by the unit.
    Plain,
}

/// What kind of unit `unit` is.
pub(crate) fn unit_kind(unit: &str) -> UnitKind {
    match unit.trim() {
        "bytes" | "byte" | "B" => UnitKind::Bytes,
        "bytes/s" | "B/s" => UnitKind::BytesPerSecond,
        "ns" => UnitKind::Duration(1),
        "us" | "µs" | "μs" => UnitKind::Duration(1_000),
        "ms" => UnitKind::Duration(1_000_000),
        "s" => UnitKind::Duration(1_000_000_000),
        _ => UnitKind::Plain,
    }
}

/// `v` followed by `unit`, in the unit's most readable form: bytes become KiB/MiB/GiB,
/// durations pick ns…h, a percentage is `12.5 %`.
pub(crate) fn value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return non_finite(v).to_string();
    }
    match unit_kind(unit) {
        UnitKind::Bytes => bytes(v),
        UnitKind::BytesPerSecond => format!("{}/s", bytes(v)),
        UnitKind::Duration(factor) => duration(v * factor as f64),
        UnitKind::Plain => {
            let unit = unit.trim();
            if unit.is_empty() {
                number(v)
            } else {
                format!("{} {unit}", number(v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration(0.0), "0 ns");
        assert_eq!(duration(850.0), "850 ns");
        assert_eq!(duration(999.7), "1.00 µs");
        assert_eq!(duration(12_345.0), "12.3 µs");
        assert_eq!(duration(4_560_000.0), "4.56 ms");
        assert_eq!(duration(1.2e9), "1.20 s");
        assert_eq!(duration(125e9), "2 min 05 s");
        assert_eq!(duration(3.0 * 3600e9 + 7.0 * 60e9), "3 h 07 min");
        assert_eq!(duration(86_400e9 * 2.0 + 4.0 * 3600e9), "2 d 04 h");
        assert_eq!(duration(-1500.0), "−1.50 µs");
        assert_eq!(duration(f64::NAN), "NaN");
        assert_eq!(duration(f64::INFINITY), "+∞");
        assert_eq!(duration(f64::MAX), duration(f64::MAX)); // no panic, some text
    }

    #[test]
    fn numbers_and_bytes() {
        assert_eq!(number(58.0), "58.0");
        assert_eq!(number(59.13), "59.1");
        assert_eq!(number(1234.4), "1234");
        assert_eq!(number(1.5), "1.50");
        assert_eq!(number(0.5), "0.500");
        assert_eq!(number(0.0123), "0.0123");
        assert_eq!(number(123_456.7), "123\u{202f}457");
        assert_eq!(number(-12_345.0), "−12\u{202f}345");
        assert_eq!(number(1e-9), "1.00e-9");
        assert_eq!(number(f64::NEG_INFINITY), "−∞");
        assert_eq!(count(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(count(12), "12");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.50 KiB");
        assert_eq!(bytes(4.0e9), "3.73 GiB");
        assert_eq!(bytes(f64::NAN), "NaN");
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(utc_time("2025-11-24T16:00:00Z"), "2025-11-24 16:00:00 UTC");
        assert_eq!(utc_time("yesterday"), "yesterday");
        assert_eq!(utc_time("T"), "T");
    }

    #[test]
    fn values_follow_their_unit() {
        assert_eq!(value(12.0, "ms"), "12.0 ms");
        assert_eq!(value(1500.0, "ms"), "1.50 s");
        assert_eq!(value(3.0e8, "bytes"), "286 MiB");
        assert_eq!(value(2048.0, "bytes/s"), "2.00 KiB/s");
        assert_eq!(value(42.0, "°C"), "42.0 °C");
        assert_eq!(value(12.5, "%"), "12.5 %");
        assert_eq!(value(3.0, ""), "3.00");
        assert_eq!(value(f64::NAN, "ms"), "NaN");
    }
}
