//! A plugin whose render function panics: the host must get an error, not a crash.

use heimdall_perf_plugin::{export_report_sink, Report};

fn render(report: &Report) -> Result<String, String> {
    panic!("fixture panic while rendering `{}`", report.session.name)
}

export_report_sink! {
    name: "panicking fixture",
    format_id: "panicky",
    file_extension: "txt",
    render: render,
}
