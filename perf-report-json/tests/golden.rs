//! Golden test: `fixtures::sample_report()` rendered by the JSON sink must match the
//! checked-in `tests/golden/sample.json` byte for byte. Run with `UPDATE_GOLDEN=1` to
//! regenerate it after an intended change (then review the diff).

use std::path::PathBuf;

use heimdall_perf_core::{fixtures, ReportSink};
use heimdall_perf_report_json::JsonSink;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sample.json")
}

/// The first differing line of `expected` and `actual`, with a little context, for the
/// failure message.
fn diff_hint(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let show = |lines: &[&str]| -> String {
        lines
            .iter()
            .enumerate()
            .skip(first.saturating_sub(2))
            .take(5)
            .map(|(i, l)| format!("{:>6} | {l}\n", i + 1))
            .collect()
    };
    format!(
        "first difference at line {} (golden has {} lines, output has {}):\n--- golden\n{}+++ output\n{}",
        first + 1,
        e.len(),
        a.len(),
        show(&e),
        show(&a)
    )
}

#[test]
fn sample_report_matches_golden_json() {
    let mut out = Vec::new();
    JsonSink::new()
        .render(&fixtures::sample_report(), &mut out)
        .expect("rendering the sample report");
    let actual = String::from_utf8(out).expect("JSON is UTF-8");
    let path = golden_path();
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &actual).expect("writing the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; create it with UPDATE_GOLDEN=1 cargo test -p heimdall-perf-report-json --test golden",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "the JSON of fixtures::sample_report() differs from {}\n{}\nIf the change is intended, regenerate with UPDATE_GOLDEN=1 cargo test -p heimdall-perf-report-json --test golden and review the diff.",
        path.display(),
        diff_hint(&expected, &actual)
    );
}

#[test]
fn golden_file_reads_back_to_the_sample_report() {
    // The checked-in file is itself a report that this build must read.
    let report = heimdall_perf_report_json::read_report(golden_path()).expect("golden file reads");
    assert_eq!(
        format!("{report:?}"),
        format!("{:?}", fixtures::sample_report())
    );
}

#[test]
fn diff_hint_points_at_the_first_changed_line() {
    let hint = diff_hint("a\nb\nc\n", "a\nB\nc\n");
    assert!(hint.starts_with("first difference at line 2"), "{hint}");
    assert!(
        hint.contains("     2 | b") && hint.contains("     2 | B"),
        "{hint}"
    );
    let hint = diff_hint("a\n", "a\nextra\n");
    assert!(
        hint.starts_with("first difference at line 2 (golden has 1 lines, output has 2)"),
        "{hint}"
    );
}
