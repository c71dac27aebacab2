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
