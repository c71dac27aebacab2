//! `fixtures::sample_report()` rendered without a flamegraph must match the checked-in
//! `tests/golden/sample.html` byte for byte. After an intended change, regenerate it with
//! `UPDATE_GOLDEN=1 cargo test -p heimdall-perf-report-html --test golden` and review the diff.

use std::path::Path;

use heimdall_perf_core::ReportSink;
use heimdall_perf_report_html::HtmlSink;
use heimdall_perf_testkit::sample_report;

#[test]
fn sample_report_matches_the_golden_file() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sample.html");
    let html = HtmlSink::new().render_to_string(&sample_report()).unwrap();
    // Rendering is deterministic: the same report gives the same bytes.
    assert_eq!(
        html,
        HtmlSink::new().render_to_string(&sample_report()).unwrap()
    );
    if let Err(e) = heimdall_perf_testkit::check_golden(
        &golden,
        &html,
        "cargo test -p heimdall-perf-report-html --test golden",
    ) {
        panic!("{e}");
    }
}
