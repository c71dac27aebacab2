//! Units in metric names: which words `promtool check metrics` objects to in a name (unit
//! abbreviations, type names, non-base and prefixed unit words), the one piece of unit logic
//! that is OpenMetrics' own.
//!
//! Parsing unit strings and converting values to base units is the work of
//! [`heimdall_perf_core::units::Unit`]: a known unit gives its Prometheus base unit
//! (`base_name`: `seconds`, `bytes`, `ratio`, `hertz`, `celsius`, `kelvin`, or
//! `…_per_second` for a rate such as `MB/s`), which ends the metric name, and the value in
//! it (`to_base`: `17 ms` is written `0.017`). An unknown unit (`fps`, `px`, a lone
//! `kb`: bits or bytes?) stays out of the name, its value as it is, and is told in `# HELP`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_perf_core::units::Unit;

    // The sink names families after `Unit::base_name` and writes `Unit::to_base`: the
    // conversions its output relies on.
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
