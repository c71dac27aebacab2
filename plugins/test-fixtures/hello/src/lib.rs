//! The plugin of the README: span totals as a tab-separated table.

use heimdall_perf_plugin::{export_report_sink, Report};

fn render(report: &Report) -> Result<String, String> {
    if report.span_totals.is_empty() {
        return Err(format!("session `{}` has no spans", report.session.name));
    }
    let mut out = String::from("path\tcount\ttotal_ns\n");
    for span in &report.span_totals {
        let path = span.path_string().replace(['\t', '\n'], " ");
        out.push_str(&format!("{path}\t{}\t{}\n", span.count, span.total_ns));
    }
    Ok(out)
}

export_report_sink! {
    name: "span table",
    format_id: "spantable",
    file_extension: "tsv",
    render: render,
}
