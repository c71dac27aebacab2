//! Golden test: `fixtures::sample_report()` rendered by the trace sink must match the
//! checked-in `tests/golden/sample.json` byte for byte. Run with `UPDATE_GOLDEN=1` to
//! regenerate it after an intended change (then review the diff).

use std::path::PathBuf;

use heimdall_perf_core::ReportSink;
use heimdall_perf_report_trace::TraceSink;
use heimdall_perf_testkit as fixtures;

#[test]
fn sample_report_matches_golden_trace() {
    let actual = TraceSink::new()
        .render_to_string(&fixtures::sample_report())
        .expect("rendering the sample report");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sample.json");
    if let Err(e) = fixtures::check_golden(
        &path,
        &actual,
        "cargo test -p heimdall-perf-report-trace --test golden",
    ) {
        panic!("{e}");
    }
}
