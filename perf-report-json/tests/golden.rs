//! Golden test: `fixtures::sample_report()` rendered by the JSON sink must match the
//! checked-in `tests/golden/sample.json` byte for byte. Run with `UPDATE_GOLDEN=1` to
//! regenerate it after an intended change (then review the diff).

use std::path::PathBuf;

use heimdall_perf_core::ReportSink;

use heimdall_perf_report_json::JsonSink;
use heimdall_perf_testkit as fixtures;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sample.json")
}

#[test]
fn sample_report_matches_golden_json() {
    let mut out = Vec::new();
    JsonSink::new()
        .render(&fixtures::sample_report(), &mut out)
        .expect("rendering the sample report");
    let actual = String::from_utf8(out).expect("JSON is UTF-8");
    if let Err(e) = fixtures::check_golden(
        &golden_path(),
        &actual,
        "cargo test -p heimdall-perf-report-json --test golden",
    ) {
        panic!("{e}");
    }
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
