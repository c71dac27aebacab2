//! Golden test: `fixtures::sample_report()` rendered by the Markdown sink must match the
//! checked-in `tests/golden/sample.md` byte for byte. Run with `UPDATE_GOLDEN=1` to
//! regenerate it after an intended change (then review the diff).

use std::path::PathBuf;

use heimdall_perf_core::ReportSink;

use heimdall_perf_report_md::MarkdownSink;
use heimdall_perf_testkit as fixtures;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sample.md")
}

#[test]
fn sample_report_matches_golden_markdown() {
    let mut out = Vec::new();
    MarkdownSink::new()
        .render(&fixtures::sample_report(), &mut out)
        .expect("rendering the sample report");
    let actual = String::from_utf8(out).expect("Markdown is UTF-8");
    if let Err(e) = fixtures::check_golden(
        &golden_path(),
        &actual,
        "cargo test -p heimdall-perf-report-md --test golden",
    ) {
        panic!("{e}");
    }
}
