//! Writes the sample and large fixture reports as HTML, to look at in a browser:
//! `cargo run -p heimdall-perf-report-html --example render_fixtures -- OUT_DIR`.
use heimdall_perf_core::ReportSink;
use heimdall_perf_report_html::HtmlSink;
use heimdall_perf_testkit as fixtures;

fn main() -> Result<(), heimdall_perf_core::RenderError> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".to_string());
    let sink = HtmlSink::new();
    std::fs::write(
        format!("{dir}/sample.html"),
        sink.render_to_string(&fixtures::sample_report())?,
    )?;
    std::fs::write(
        format!("{dir}/large.html"),
        sink.render_to_string(&fixtures::large_report(1000, 24, 100))?,
    )?;
    Ok(())
}
