//! Units and how figures are written: the one home of both for every sink and the CLI.
//!
//! * [`Unit`] is a measurement's unit string, parsed: a known [`Quantity`] (time, data,
//!   ratio, frequency, temperature) with the factor to its base unit, a rate per second
//!   (`MB/s`, `Mbps`), or an unknown unit kept as text (`fps`, `px`, `frames`).
//! * [`Style`] writes figures: durations (`850 ns`, `123 µs`, `4.56 ms`, `1 min 00 s`),
//!   sizes (`1.50 KiB`), plain numbers and counts, and a value in its unit. Three significant
//!   digits everywhere, so columns line up; [`Style::Text`] is plain text (`-`, `inf`) for
//!   Markdown and terminals, [`Style::Typographic`] uses the true minus sign and `∞` for
//!   HTML and SVG.
//!
//! ```
//! use heimdall_perf_core::units::{Quantity, Style, Unit};
//!
//! assert_eq!(Style::Text.duration(123_400.0), "123 µs");
//! assert_eq!(Style::Text.duration(60e9), "1 min 00 s");
//! assert_eq!(Style::Typographic.duration(-1_500.0), "−1.50 µs");
//!
//! let ms = Unit::parse("ms");
//! assert_eq!(ms.quantity(), Some(Quantity::Time));
//! assert_eq!(ms.to_base(17.0), 0.017);
//! assert_eq!(Style::Text.value(1_500.0, &ms), "1.50 s");
//! assert_eq!(Style::Text.value(3.0e8, &Unit::parse("bytes")), "286 MiB");
//! assert_eq!(Style::Text.value(59.9, &Unit::parse("fps")), "59.9 fps");
//! ```

use std::fmt;

/// What a known unit measures, and so its base unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Quantity {
    /// Time; base unit: seconds.
    Time,
    /// An amount of data; base unit: bytes.
    Data,
    /// A ratio (`%` is a hundredth); base unit: ratio.
    Ratio,
    /// A frequency; base unit: hertz.
    Frequency,
    /// A temperature in degrees Celsius.
    Celsius,
    /// A temperature in kelvin.
    Kelvin,
}

impl Quantity {
    /// The base unit's name as Prometheus spells it: `seconds`, `bytes`, `ratio`, `hertz`,
    /// `celsius`, `kelvin`.
    pub fn base_name(self) -> &'static str {
        match self {
            Quantity::Time => "seconds",
            Quantity::Data => "bytes",
            Quantity::Ratio => "ratio",
            Quantity::Frequency => "hertz",
            Quantity::Celsius => "celsius",
            Quantity::Kelvin => "kelvin",
        }
    }
}

/// A measurement's unit, parsed from its unit string.
///
/// Known units (compared exactly, after trimming spaces):
/// * time: `ns`, `µs`/`μs`/`us`, `ms`, `s`, `min`, `h`, `d` and their long names;
/// * data: `B`/`byte`/`bytes`, SI `kB`/`KB`, `MB`, `GB`, `TB`, IEC `KiB`, `MiB`, `GiB`,
///   `TiB`; `bit`, `kbit`, `Mbit`, `Gbit` (an eighth of a byte each);
/// * `%`/`percent` and `ratio`; `Hz`, `kHz`, `MHz`, `GHz`; `°C`/`celsius`, `kelvin`;
/// * `X/T` with a known `X` and a time `T` is a rate per second (`MB/s`, `Mbit/s`,
///   `KiB/min`), as are `bps`, `kbps`, `Mbps`, `Gbps`, `Bps`, `kBps`, `MBps`, `GBps`;
/// * `X/other` (`ms/frame`, `s/op`) is a value of `X` (so many milliseconds per frame).
///
/// Anything else — `fps`, `frames`, `px`, a lone `b` or `Mb` (bits or bytes? no guess) — is
/// unknown: shown as a number followed by the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    text: String,
    known: Option<Known>,
}

/// A known unit: its quantity, whether it is per second, and the factor `mul / div` to the
/// base unit (a fraction, so that `17 ms` is exactly `17 / 1000` s).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Known {
    quantity: Quantity,
    per_second: bool,
    mul: f64,
    div: f64,
}

const fn known(quantity: Quantity, mul: f64, div: f64) -> Option<Known> {
    Some(Known {
        quantity,
        per_second: false,
        mul,
        div,
    })
}

/// A simple (not compound) unit string, if known.
fn simple(u: &str) -> Option<Known> {
    use Quantity::*;
    const KI: f64 = 1024.0;
    match u {
        "ns" | "nsec" | "nanosecond" | "nanoseconds" => known(Time, 1.0, 1e9),
        "us" | "µs" | "μs" | "usec" | "microsecond" | "microseconds" => known(Time, 1.0, 1e6),
        "ms" | "msec" | "millisecond" | "milliseconds" => known(Time, 1.0, 1e3),
        "s" | "sec" | "secs" | "second" | "seconds" => known(Time, 1.0, 1.0),
        "min" | "mins" | "minute" | "minutes" => known(Time, 60.0, 1.0),
        "h" | "hr" | "hrs" | "hour" | "hours" => known(Time, 3600.0, 1.0),
        "d" | "day" | "days" => known(Time, 86_400.0, 1.0),
        "%" | "percent" | "pct" => known(Ratio, 1.0, 100.0),
        "ratio" => known(Ratio, 1.0, 1.0),
        "B" | "byte" | "bytes" => known(Data, 1.0, 1.0),
        "kB" | "KB" | "kilobyte" | "kilobytes" => known(Data, 1e3, 1.0),
        "MB" | "megabyte" | "megabytes" => known(Data, 1e6, 1.0),
        "GB" | "gigabyte" | "gigabytes" => known(Data, 1e9, 1.0),
        "TB" | "terabyte" | "terabytes" => known(Data, 1e12, 1.0),
        "KiB" | "kibibyte" | "kibibytes" => known(Data, KI, 1.0),
        "MiB" | "mebibyte" | "mebibytes" => known(Data, KI * KI, 1.0),
        "GiB" | "gibibyte" | "gibibytes" => known(Data, KI * KI * KI, 1.0),
        "TiB" | "tebibyte" | "tebibytes" => known(Data, KI * KI * KI * KI, 1.0),
        "bit" | "bits" => known(Data, 1.0, 8.0),
        "kbit" | "Kbit" | "kilobit" | "kilobits" => known(Data, 1e3, 8.0),
        "Mbit" | "megabit" | "megabits" => known(Data, 1e6, 8.0),
        "Gbit" | "gigabit" | "gigabits" => known(Data, 1e9, 8.0),
        "Hz" | "hz" | "hertz" => known(Frequency, 1.0, 1.0),
        "kHz" | "kilohertz" => known(Frequency, 1e3, 1.0),
        "MHz" | "megahertz" => known(Frequency, 1e6, 1.0),
        "GHz" | "gigahertz" => known(Frequency, 1e9, 1.0),
        "°C" | "℃" | "degC" | "celsius" => known(Celsius, 1.0, 1.0),
        "kelvin" => known(Kelvin, 1.0, 1.0),
        _ => None,
    }
}

/// Data rates written as one word.
fn one_word_rate(u: &str) -> Option<Known> {
    let (mul, div) = match u {
        "bps" => (1.0, 8.0),
        "kbps" | "Kbps" => (1e3, 8.0),
        "Mbps" => (1e6, 8.0),
        "Gbps" => (1e9, 8.0),
        "Bps" => (1.0, 1.0),
        "kBps" | "KBps" => (1e3, 1.0),
        "MBps" => (1e6, 1.0),
        "GBps" => (1e9, 1.0),
        _ => return None,
    };
    Some(Known {
        quantity: Quantity::Data,
        per_second: true,
        mul,
        div,
    })
}

impl Unit {
    /// Parses a unit string (see the type's documentation); never fails: an unknown unit is
    /// kept as text.
    pub fn parse(unit: &str) -> Unit {
        let text = unit.trim();
        Unit {
            text: text.to_string(),
            known: Self::parse_known(text),
        }
    }

    fn parse_known(u: &str) -> Option<Known> {
        if let Some(k) = simple(u).or_else(|| one_word_rate(u)) {
            return Some(k);
        }
        let (num, den) = u.split_once('/')?;
        let (n, den) = (simple(num.trim())?, den.trim());
        if den.is_empty() || den.contains('/') {
            return None;
        }
        match simple(den) {
            // X per unit of time: a rate per second.
            Some(d) if d.quantity == Quantity::Time => Some(Known {
                quantity: n.quantity,
                per_second: true,
                mul: n.mul * d.div,
                div: n.div * d.mul,
            }),
            // X per frame, per operation…: the value is in X's base unit.
            _ => Some(n),
        }
    }

    /// The unit string as given (trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What the unit measures, if it is known.
    pub fn quantity(&self) -> Option<Quantity> {
        self.known.map(|k| k.quantity)
    }

    /// Whether the unit is a known quantity per second (`MB/s`, `Mbps`).
    pub fn is_rate(&self) -> bool {
        self.known.is_some_and(|k| k.per_second)
    }

    /// The base unit's name (`seconds`, `bytes`, `bytes_per_second`, `ratio`…), if known.
    pub fn base_name(&self) -> Option<String> {
        self.known.map(|k| {
            let base = k.quantity.base_name();
            if k.per_second {
                format!("{base}_per_second")
            } else {
                base.to_string()
            }
        })
    }

    /// `v` converted to the base unit (as it is for an unknown unit).
    pub fn to_base(&self, v: f64) -> f64 {
        match self.known {
            Some(k) if k.mul != 1.0 || k.div != 1.0 => v * k.mul / k.div,
            _ => v,
        }
    }

    /// Whether [`to_base`](Unit::to_base) changes values (the unit is not its base unit).
    pub fn scales(&self) -> bool {
        self.known.is_some_and(|k| k.mul != k.div)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How figures are written. Both styles give three significant digits (`1.23`, `12.3`,
/// `123`, trailing zeros kept so columns line up) and group thousands with a narrow
/// no-break space (U+202F); they differ in signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// Plain text, for Markdown, terminals and logs: `-1.50 µs`, `inf`, `-inf`, `NaN`.
    #[default]
    Text,
    /// Typography, for HTML and SVG: `−1.50 µs` (U+2212), `+∞`, `−∞`, `NaN`.
    Typographic,
}

/// Byte-size units, powers of 1024.
const BYTE_UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/// The narrow no-break space that groups thousands.
const GROUP: char = '\u{202f}';

impl Style {
    fn minus(self) -> &'static str {
        match self {
            Style::Text => "-",
            Style::Typographic => "\u{2212}",
        }
    }

    /// Text for a value that is not a finite number.
    fn non_finite(self, v: f64) -> &'static str {
        match (self, v.is_nan(), v > 0.0) {
            (_, true, _) => "NaN",
            (Style::Text, _, true) => "inf",
            (Style::Text, _, false) => "-inf",
            (Style::Typographic, _, true) => "+∞",
            (Style::Typographic, _, false) => "−∞",
        }
    }

    /// `body(|v|)` with this style's minus sign in front for a negative `v`.
    fn signed(self, v: f64, body: impl FnOnce(f64) -> String) -> String {
        if v < 0.0 {
            format!("{}{}", self.minus(), body(-v))
        } else {
            body(v)
        }
    }

    /// A duration given in nanoseconds, in the unit that reads best: `850 ns`, `123 µs`,
    /// `4.56 ms`, `1.20 s`, `2 min 05 s`, `3 h 07 min`, `2 d 04 h`.
    pub fn duration(self, ns: f64) -> String {
        if !ns.is_finite() {
            return self.non_finite(ns).to_string();
        }
        self.signed(ns, |ns| {
            if ns < 999.5 {
                format!("{ns:.0} ns")
            } else if ns < 999.5e3 {
                format!("{} µs", sig3(ns / 1e3))
            } else if ns < 999.5e6 {
                format!("{} ms", sig3(ns / 1e6))
            } else if ns < 59.95e9 {
                format!("{} s", sig3(ns / 1e9))
            } else {
                // Whole seconds from here on; u64 holds any duration a f64 this size means.
                let s = (ns / 1e9).round().min(u64::MAX as f64) as u64;
                if s < 3600 {
                    format!("{} min {:02} s", s / 60, s % 60)
                } else if s < 86_400 {
                    format!("{} h {:02} min", s / 3600, s % 3600 / 60)
                } else {
                    format!("{} d {:02} h", s / 86_400, s % 86_400 / 3600)
                }
            }
        })
    }

    /// A size in bytes, in powers of 1024: `512 B`, `1.50 KiB`, `3.73 GiB`.
    pub fn bytes(self, v: f64) -> String {
        if !v.is_finite() {
            return self.non_finite(v).to_string();
        }
        let (div, unit) = byte_scale(v);
        if div == 1.0 {
            self.signed(v, |v| format!("{v:.0} B"))
        } else {
            self.signed(v, |v| format!("{} {unit}", sig3(v / div)))
        }
    }

    /// A data rate in bytes per second: `2.00 KiB/s`.
    pub fn rate(self, bytes_per_second: f64) -> String {
        let mut s = self.bytes(bytes_per_second);
        if bytes_per_second.is_finite() {
            s.push_str("/s");
        }
        s
    }

    /// A plain number with three significant digits (`0.0123`, `1.50`, `59.1`, `123`), from
    /// 10 000 up as an integer grouped by thousands (`12 345`), tiny or huge ones in `e`
    /// notation (`1.00e-9`).
    pub fn number(self, v: f64) -> String {
        if !v.is_finite() {
            return self.non_finite(v).to_string();
        }
        if v == 0.0 {
            return "0".to_string();
        }
        let a = v.abs();
        if !(1e-3..1e15).contains(&a) {
            return self.signed(v, |a| format!("{a:.2e}"));
        }
        self.signed(v, |a| {
            if a >= 9_999.5 {
                group_thousands(&format!("{a:.0}"))
            } else if a >= 0.9995 {
                sig3(a)
            } else {
                // Below one: three significant digits, e.g. 0.500, 0.0123.
                let decimals = (2.0 - a.log10().floor()).clamp(0.0, 6.0) as usize;
                format!("{a:.decimals$}")
            }
        })
    }

    /// A number with a fixed count of decimals, for figures that must line up on a scale
    /// (chart ticks `0.0`, `0.5`, `1.0`): `Style::Typographic.fixed(-0.5, 1)` is `−0.5`.
    /// Negative zero is written `0`.
    pub fn fixed(self, v: f64, decimals: usize) -> String {
        if !v.is_finite() {
            return self.non_finite(v).to_string();
        }
        let text = format!("{:.*}", decimals, v.abs());
        if v < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
            format!("{}{text}", self.minus())
        } else {
            text
        }
    }

    /// A count, grouped by thousands: `1 234 567`.
    pub fn count(self, n: u64) -> String {
        group_thousands(&n.to_string())
    }

    /// `v` in `unit`, written the way that unit reads best: a time as a duration, data as
    /// a size, a data rate as a size per second, a percentage as `12.5 %`, anything else as
    /// a number followed by the unit's text.
    pub fn value(self, v: f64, unit: &Unit) -> String {
        if !v.is_finite() {
            return self.non_finite(v).to_string();
        }
        match unit.known {
            Some(k) if k.quantity == Quantity::Time && !k.per_second => {
                self.duration(unit.to_base(v) * 1e9)
            }
            Some(k) if k.quantity == Quantity::Data && k.per_second => self.rate(unit.to_base(v)),
            Some(k) if k.quantity == Quantity::Data => self.bytes(unit.to_base(v)),
            _ if unit.text.is_empty() => self.number(v),
            _ => format!("{} {}", self.number(v), unit.text),
        }
    }
}

/// Three significant digits of a non-negative `x` (or more for large values), trailing
/// zeros kept: `1.23`, `12.3`, `123`.
fn sig3(x: f64) -> String {
    if x < 9.995 {
        format!("{x:.2}")
    } else if x < 99.95 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// Digits of a non-negative integer grouped by thousands.
fn group_thousands(digits: &str) -> String {
    let n = digits.len();
    let mut out = String::with_capacity(n + n / 3 * 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push(GROUP);
        }
        out.push(c);
    }
    out
}

/// The power of 1024 and the unit name that suit `v` bytes, for a scale shared by several
/// values (a chart axis): `(1024.0, "KiB")` for 1 500.
pub fn byte_scale(v: f64) -> (f64, &'static str) {
    let mut k = 0;
    let mut div = 1.0;
    let a = if v.is_finite() { v.abs() } else { 0.0 };
    while k + 1 < BYTE_UNITS.len() && a >= div * 1023.5 {
        div *= 1024.0;
        k += 1;
    }
    (div, BYTE_UNITS[k])
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Style = Style::Text;
    const TY: Style = Style::Typographic;

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(T.duration(0.0), "0 ns");
        assert_eq!(T.duration(850.0), "850 ns");
        assert_eq!(T.duration(999.7), "1.00 µs");
        assert_eq!(T.duration(12_345.0), "12.3 µs");
        assert_eq!(T.duration(123_400.0), "123 µs");
        assert_eq!(T.duration(999_600.0), "1.00 ms");
        assert_eq!(T.duration(4_560_000.0), "4.56 ms");
        assert_eq!(T.duration(1.2e9), "1.20 s");
        assert_eq!(T.duration(59.96e9), "1 min 00 s");
        assert_eq!(T.duration(60e9), "1 min 00 s");
        assert_eq!(T.duration(125e9), "2 min 05 s");
        assert_eq!(T.duration(3.0 * 3600e9 + 7.0 * 60e9), "3 h 07 min");
        assert_eq!(T.duration(86_400e9 * 2.0 + 4.0 * 3600e9), "2 d 04 h");
        assert_eq!(T.duration(-1500.0), "-1.50 µs");
        assert_eq!(TY.duration(-1500.0), "−1.50 µs");
        assert_eq!(T.duration(f64::NAN), "NaN");
        assert_eq!(T.duration(f64::INFINITY), "inf");
        assert_eq!(TY.duration(f64::INFINITY), "+∞");
        assert_eq!(TY.duration(f64::NEG_INFINITY), "−∞");
        assert!(T.duration(f64::MAX).ends_with(" h")); // no panic, some text
    }

    #[test]
    fn numbers_counts_and_bytes() {
        assert_eq!(T.number(58.0), "58.0");
        assert_eq!(T.number(59.13), "59.1");
        assert_eq!(T.number(1234.4), "1234");
        assert_eq!(T.number(1.5), "1.50");
        assert_eq!(T.number(0.5), "0.500");
        assert_eq!(T.number(0.0123), "0.0123");
        assert_eq!(T.number(-0.0), "0");
        assert_eq!(T.number(123_456.7), "123\u{202f}457");
        assert_eq!(TY.number(-12_345.0), "−12\u{202f}345");
        assert_eq!(T.number(-12_345.0), "-12\u{202f}345");
        assert_eq!(T.number(1e-9), "1.00e-9");
        assert_eq!(T.number(-1e20), "-1.00e20");
        assert_eq!(TY.number(f64::NEG_INFINITY), "−∞");
        assert_eq!(T.count(1_234_567), "1\u{202f}234\u{202f}567");
        assert_eq!(T.count(12), "12");
        assert_eq!(TY.fixed(-0.5, 1), "−0.5");
        assert_eq!(T.fixed(-0.5, 1), "-0.5");
        assert_eq!(T.fixed(-0.04, 1), "0.0");
        assert_eq!(T.fixed(2.0, 0), "2");
        assert_eq!(TY.fixed(f64::NAN, 2), "NaN");
        assert_eq!(T.count(u64::MAX).chars().filter(|c| *c == GROUP).count(), 6);
        assert_eq!(T.bytes(512.0), "512 B");
        assert_eq!(T.bytes(1536.0), "1.50 KiB");
        assert_eq!(T.bytes(4.0e9), "3.73 GiB");
        assert_eq!(T.bytes(-2048.0), "-2.00 KiB");
        assert_eq!(T.bytes(f64::NAN), "NaN");
        assert_eq!(T.bytes(f64::MAX), T.bytes(f64::MAX)); // no panic
        assert_eq!(T.rate(2048.0), "2.00 KiB/s");
        assert_eq!(T.rate(f64::INFINITY), "inf");
        assert_eq!(byte_scale(1500.0), (1024.0, "KiB"));
        assert_eq!(byte_scale(f64::NAN), (1.0, "B"));
    }

    #[test]
    fn values_follow_their_unit() {
        let v = |x: f64, u: &str| T.value(x, &Unit::parse(u));
        assert_eq!(v(12.0, "ms"), "12.0 ms");
        assert_eq!(v(1500.0, "ms"), "1.50 s");
        assert_eq!(v(123.4, "us"), "123 µs");
        assert_eq!(v(3.0e8, "bytes"), "286 MiB");
        assert_eq!(v(3.0e8, "byte"), "286 MiB");
        assert_eq!(v(3.0e8, "B"), "286 MiB");
        assert_eq!(v(1.5, "MB"), "1.43 MiB");
        assert_eq!(v(2048.0, "bytes/s"), "2.00 KiB/s");
        assert_eq!(v(8.0, "Mbps"), "977 KiB/s");
        assert_eq!(v(42.0, "°C"), "42.0 °C");
        assert_eq!(v(12.5, "%"), "12.5 %");
        assert_eq!(v(3.0, ""), "3.00");
        assert_eq!(v(59.9, " fps "), "59.9 fps");
        assert_eq!(v(4.0, "ms/frame"), "4.00 ms");
        assert_eq!(v(f64::NAN, "ms"), "NaN");
    }

    // The OpenMetrics sink names families after `base_name` and writes `to_base`.
    fn check(unit: &str, suffix: Option<&str>, v: f64, expected: f64) {
        let u = Unit::parse(unit);
        assert_eq!(u.base_name().as_deref(), suffix, "{unit}");
        assert_eq!(u.to_base(v), expected, "{unit}");
    }

    #[test]
    fn known_units_become_base_units_with_their_values_scaled() {
        check("ms", Some("seconds"), 17.0, 0.017);
        check("ns", Some("seconds"), 2_500.0, 2.5e-6);
        check("µs", Some("seconds"), 250.0, 0.00025);
        check("μs", Some("seconds"), 250.0, 0.00025);
        check(" us ", Some("seconds"), 250.0, 0.00025);
        check("%", Some("ratio"), 37.0, 0.37);
        check("min", Some("seconds"), 2.0, 120.0);
        check("d", Some("seconds"), 1.0, 86_400.0);
        check("MB", Some("bytes"), 1.5, 1_500_000.0);
        check("MiB", Some("bytes"), 2.0, 2_097_152.0);
        check("KB", Some("bytes"), 2.0, 2_000.0);
        check("Mbit", Some("bytes"), 8.0, 1e6);
        check("Hz", Some("hertz"), 50.0, 50.0);
        check("MHz", Some("hertz"), 2.0, 2e6);
        check("°C", Some("celsius"), 41.5, 41.5);
        check("bytes/s", Some("bytes_per_second"), 5.0, 5.0);
        check("MB/s", Some("bytes_per_second"), 2.5, 2_500_000.0);
        check("Mbit/s", Some("bytes_per_second"), 100.0, 12_500_000.0);
        check("Mbps", Some("bytes_per_second"), 100.0, 12_500_000.0);
        check("KiB/min", Some("bytes_per_second"), 60.0, 1024.0);
        check("MB/ms", Some("bytes_per_second"), 1.0, 1e9);
        check("ms/frame", Some("seconds"), 40.0, 0.04);
        check("s/op", Some("seconds"), 3.0, 3.0);
        check("%/s", Some("ratio_per_second"), 50.0, 0.5);
        assert!(Unit::parse("ms").to_base(f64::NAN).is_nan());
        assert!(Unit::parse("ms").scales() && !Unit::parse("bytes").scales());
    }

    #[test]
    fn unknown_units_stay_out_of_the_name_and_keep_their_values() {
        for unit in [
            "",
            "fps",
            "frames",
            "frames/s",
            "px",
            "count",
            "b",
            "kb",
            "kb/s",
            "Mb",
            "m",
            "/s",
            "ms/",
            "/",
            "_",
            "weird unit!",
            "total",
            "counter",
            "ms/s/s",
            "\\",
            "\n",
        ] {
            check(unit, None, 1.25, 1.25);
        }
    }

    #[test]
    fn units_convert_to_their_base() {
        check("ms", Some("seconds"), 17.0, 0.017);
        check("µs", Some("seconds"), 250.0, 0.00025);
        check("ns", Some("seconds"), 1.0, 1e-9);
        check("min", Some("seconds"), 2.0, 120.0);
        check("%", Some("ratio"), 50.0, 0.5);
        check("MB", Some("bytes"), 1.5, 1_500_000.0);
        check("MiB", Some("bytes"), 2.0, 2_097_152.0);
        check("KB", Some("bytes"), 2.0, 2_000.0);
        check("Mbit", Some("bytes"), 8.0, 1e6);
        check("MB/s", Some("bytes_per_second"), 2.0, 2e6);
        check("KiB/min", Some("bytes_per_second"), 60.0, 1024.0);
        check("Mbps", Some("bytes_per_second"), 8.0, 1e6);
        check("ms/frame", Some("seconds"), 4.0, 0.004);
        check("kHz", Some("hertz"), 2.0, 2000.0);
        check("°C", Some("celsius"), 21.5, 21.5);
        check("fps", None, 59.9, 59.9);
        check("Mb", None, 3.0, 3.0);
        check("MB/s/s", None, 1.0, 1.0);
        check("ms/", None, 1.0, 1.0);
        check("", None, 1.0, 1.0);
        assert!(Unit::parse("ms").scales() && !Unit::parse("bytes").scales());
        assert!(Unit::parse("MB/s").is_rate() && !Unit::parse("MB").is_rate());
        assert_eq!(Unit::parse(" MB ").text(), "MB");
        assert_eq!(Unit::parse("fps").quantity(), None);
        assert_eq!(Unit::parse("h").quantity(), Some(Quantity::Time));
    }
}
