//! Units: which unit strings are known, how their values convert to Prometheus base units,
//! and which words must stay out of a metric name. All unit logic of the crate is here.
//!
//! * Known units become base units, values scaled: time → `seconds` (`ns`, `µs`/`μs`/`us`,
//!   `ms`, `s`, `min`, `h`, `d` and their long names), data → `bytes` (`B`, SI `kB`/`KB`, `MB`,
//!   `GB`, `TB`, IEC `KiB`, `MiB`, `GiB`, `TiB`; `bit`, `kbit`, `Mbit`, `Gbit` divided by 8),
//!   `%` → `ratio`, `Hz`/`kHz`/`MHz`/`GHz` → `hertz`, `°C` → `celsius`, `kelvin`.
//! * `X/T` with a known `X` and a time `T` is a rate, `X_per_second` (`MB/s`, `Mbit/s`,
//!   `KiB/min`, `%/s`; also `bps`, `kbps`, `Mbps`, `Gbps`, `Bps`, `kBps`, `MBps`, `GBps`).
//!   `X/other` (`ms/frame`, `s/op`) is written in the base unit of `X`: the value *is* that
//!   many seconds (bytes…) per frame.
//! * Everything else — `fps`, `frames`, `px`, `count`, a lone `b`/`kb`/`Mb` (bits or bytes?
//!   we do not guess a factor of 8), free text — is unknown: the value is written as it is and
//!   the unit stays out of the metric name (it is kept in the `# HELP` text).
//!
//! So a metric name only ever ends with a base unit, which `promtool check metrics` accepts.

/// Unit abbreviations `promtool check metrics` objects to as words of a metric name.
const ABBREVIATIONS: &[&str] = &[
    "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
];

/// Metric type names, which `promtool check metrics` objects to inside metric names.
const TYPE_NAMES: &[&str] = &["counter", "gauge", "histogram", "summary", "untyped"];

/// Unit words `promtool check metrics` accepts in a name as they are: base units.
const BASE_UNIT_WORDS: &[&str] = &[
    "amperes", "bytes", "celsius", "grams", "joules", "kelvin", "meters", "metres", "seconds",
    "volts",
];

/// Unit words promtool wants replaced by a base unit (`use base unit "seconds" instead of
/// "minutes"`).
const NON_BASE_UNIT_WORDS: &[&str] = &[
    "minutes",
    "hours",
    "days",
    "weeks",
    "kelvins",
    "fahrenheit",
    "rankine",
    "inches",
    "yards",
    "miles",
    "bits",
    "calories",
    "pounds",
    "ounces",
];

/// SI and IEC prefixes promtool recognises in front of a unit word (`milliseconds`).
const UNIT_PREFIXES: &[&str] = &[
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi", "mebi",
];

/// Whether `word` (one `_`-separated word of a sanitised name) must not appear in a metric
/// name: a unit abbreviation, a metric type name, a non-base unit word or a prefixed unit
/// word (`kilobytes`, `milliseconds`).
pub(crate) fn is_reserved_word(word: &str) -> bool {
    if ABBREVIATIONS.contains(&word)
        || TYPE_NAMES.contains(&word)
        || NON_BASE_UNIT_WORDS.contains(&word)
    {
        return true;
    }
    UNIT_PREFIXES.iter().any(|p| {
        word.strip_prefix(p).is_some_and(|rest| {
            BASE_UNIT_WORDS.contains(&rest) || NON_BASE_UNIT_WORDS.contains(&rest)
        })
    })
}

/// The base units values are converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Seconds,
    Bytes,
    Ratio,
    Hertz,
    Celsius,
    Kelvin,
}

impl Base {
    fn word(self) -> &'static str {
        match self {
            Base::Seconds => "seconds",
            Base::Bytes => "bytes",
            Base::Ratio => "ratio",
            Base::Hertz => "hertz",
            Base::Celsius => "celsius",
            Base::Kelvin => "kelvin",
        }
    }
}

/// A known simple unit: its base and the factor `mul / div` to it (kept as a fraction so that
/// `17 ms` is exactly `17 / 1000` s).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Known {
    base: Base,
    mul: f64,
    div: f64,
}

const fn k(base: Base, mul: f64, div: f64) -> Option<Known> {
    Some(Known { base, mul, div })
}

/// A simple (not compound) unit string, if known.
fn simple(u: &str) -> Option<Known> {
    use Base::*;
    const KI: f64 = 1024.0;
    match u {
        "ns" | "nsec" | "nanosecond" | "nanoseconds" => k(Seconds, 1.0, 1e9),
        "us" | "µs" | "μs" | "usec" | "microsecond" | "microseconds" => k(Seconds, 1.0, 1e6),
        "ms" | "msec" | "millisecond" | "milliseconds" => k(Seconds, 1.0, 1e3),
        "s" | "sec" | "secs" | "second" | "seconds" => k(Seconds, 1.0, 1.0),
        "min" | "mins" | "minute" | "minutes" => k(Seconds, 60.0, 1.0),
        "h" | "hr" | "hrs" | "hour" | "hours" => k(Seconds, 3600.0, 1.0),
        "d" | "day" | "days" => k(Seconds, 86_400.0, 1.0),
        "%" | "percent" | "pct" => k(Ratio, 1.0, 100.0),
        "ratio" => k(Ratio, 1.0, 1.0),
        "B" | "byte" | "bytes" => k(Bytes, 1.0, 1.0),
        "kB" | "KB" | "kilobyte" | "kilobytes" => k(Bytes, 1e3, 1.0),
        "MB" | "megabyte" | "megabytes" => k(Bytes, 1e6, 1.0),
        "GB" | "gigabyte" | "gigabytes" => k(Bytes, 1e9, 1.0),
        "TB" | "terabyte" | "terabytes" => k(Bytes, 1e12, 1.0),
        "KiB" | "kibibyte" | "kibibytes" => k(Bytes, KI, 1.0),
        "MiB" | "mebibyte" | "mebibytes" => k(Bytes, KI * KI, 1.0),
        "GiB" | "gibibyte" | "gibibytes" => k(Bytes, KI * KI * KI, 1.0),
        "TiB" | "tebibyte" | "tebibytes" => k(Bytes, KI * KI * KI * KI, 1.0),
        "bit" | "bits" => k(Bytes, 1.0, 8.0),
        "kbit" | "Kbit" | "kilobit" | "kilobits" => k(Bytes, 1e3, 8.0),
        "Mbit" | "megabit" | "megabits" => k(Bytes, 1e6, 8.0),
        "Gbit" | "gigabit" | "gigabits" => k(Bytes, 1e9, 8.0),
        "Hz" | "hz" | "hertz" => k(Hertz, 1.0, 1.0),
        "kHz" | "kilohertz" => k(Hertz, 1e3, 1.0),
        "MHz" | "megahertz" => k(Hertz, 1e6, 1.0),
        "GHz" | "gigahertz" => k(Hertz, 1e9, 1.0),
        "°C" | "℃" | "degC" | "celsius" => k(Celsius, 1.0, 1.0),
        "kelvin" => k(Kelvin, 1.0, 1.0),
        _ => None,
    }
}

/// How a value in some unit is written: `value * mul / div`, under a name ending with
/// `suffix` when there is one (Prometheus style: seconds, bytes, ratios, rates per second).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conversion {
    /// The base unit that ends the metric name; `None` for unknown units.
    pub(crate) suffix: Option<String>,
    mul: f64,
    div: f64,
}

impl Conversion {
    /// `v` in the base unit.
    pub(crate) fn apply(&self, v: f64) -> f64 {
        if self.mul == 1.0 && self.div == 1.0 {
            v
        } else {
            v * self.mul / self.div
        }
    }

    /// Whether the value changes (the unit is not already the base unit).
    pub(crate) fn scales(&self) -> bool {
        self.mul != self.div
    }

    fn unknown() -> Self {
        Conversion {
            suffix: None,
            mul: 1.0,
            div: 1.0,
        }
    }

    fn to(suffix: String, mul: f64, div: f64) -> Self {
        Conversion {
            suffix: Some(suffix),
            mul,
            div,
        }
    }
}

/// The base unit of `unit` and how to convert to it (see the module documentation).
pub(crate) fn base_unit(unit: &str) -> Conversion {
    let u = unit.trim();
    if let Some(known) = simple(u) {
        return Conversion::to(known.base.word().to_string(), known.mul, known.div);
    }
    // Rates written in one word.
    let per_second = match u {
        "bps" => k(Base::Bytes, 1.0, 8.0),
        "kbps" | "Kbps" => k(Base::Bytes, 1e3, 8.0),
        "Mbps" => k(Base::Bytes, 1e6, 8.0),
        "Gbps" => k(Base::Bytes, 1e9, 8.0),
        "Bps" => k(Base::Bytes, 1.0, 1.0),
        "kBps" | "KBps" => k(Base::Bytes, 1e3, 1.0),
        "MBps" => k(Base::Bytes, 1e6, 1.0),
        "GBps" => k(Base::Bytes, 1e9, 1.0),
        _ => None,
    };
    if let Some(n) = per_second {
        return Conversion::to(format!("{}_per_second", n.base.word()), n.mul, n.div);
    }
    let Some((num, den)) = u.split_once('/') else {
        return Conversion::unknown();
    };
    let (Some(n), den) = (simple(num.trim()), den.trim()) else {
        return Conversion::unknown();
    };
    if den.is_empty() || den.contains('/') {
        return Conversion::unknown();
    }
    match simple(den) {
        // X per unit of time: a rate per second.
        Some(d) if d.base == Base::Seconds => Conversion::to(
            format!("{}_per_second", n.base.word()),
            n.mul * d.div,
            n.div * d.mul,
        ),
        // X per frame, per operation…: the value is in X's base unit.
        _ => Conversion::to(n.base.word().to_string(), n.mul, n.div),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(unit: &str, suffix: Option<&str>, v: f64, expected: f64) {
        let c = base_unit(unit);
        assert_eq!(c.suffix.as_deref(), suffix, "{unit}");
        assert_eq!(c.apply(v), expected, "{unit}");
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
        assert!(base_unit("ms").apply(f64::NAN).is_nan());
        assert!(base_unit("ms").scales() && !base_unit("bytes").scales());
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
    fn reserved_words_are_what_promtool_flags() {
        for w in [
            "ms",
            "kb",
            "gauge",
            "counter",
            "minutes",
            "bits",
            "milliseconds",
            "kilobytes",
            "megabits",
            "nanoseconds",
            "kilometers",
        ] {
            assert!(is_reserved_word(w), "{w}");
        }
        for w in [
            "seconds", "bytes", "ratio", "celsius", "frame", "latency", "total", "fps", "hertz",
        ] {
            assert!(!is_reserved_word(w), "{w}");
        }
    }
}
