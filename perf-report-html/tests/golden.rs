//! `fixtures::sample_report()` rendered without a flamegraph must match the checked-in
//! `tests/golden/sample.html` byte for byte. After an intended change, regenerate it with
//! `UPDATE_GOLDEN=1 cargo test -p heimdall-perf-report-html --test golden` and review the diff.

use std::path::Path;

use heimdall_perf_core::fixtures::sample_report;
use heimdall_perf_report_html::HtmlSink;

#[test]
fn sample_report_matches_the_golden_file() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sample.html");
    let html = HtmlSink::new().render_to_string(&sample_report()).unwrap();
    // Rendering is deterministic: the same report gives the same bytes.
    assert_eq!(
        html,
        HtmlSink::new().render_to_string(&sample_report()).unwrap()
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v != "0") {
        std::fs::write(&golden, &html).unwrap();
        eprintln!("wrote {}", golden.display());
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; create it with UPDATE_GOLDEN=1",
            golden.display()
        )
    });
    if html != expected {
        let line = html
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| html.lines().count().min(expected.lines().count()));
        panic!(
            "the HTML of the sample report differs from {} from line {}:\n  got:      {:?}\n  expected: {:?}\n\
             (if the change is intended, regenerate with UPDATE_GOLDEN=1 and review the diff)",
            golden.display(),
            line + 1,
            html.lines().nth(line).unwrap_or("<end of output>"),
            expected.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}
