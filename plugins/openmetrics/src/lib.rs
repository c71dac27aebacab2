//! # heimdall-perf-plugin-openmetrics
//!
//! The OpenMetrics sink of [`heimdall_perf_report_openmetrics`], shipped as a drop-in plugin:
//! build this crate and a program that was compiled without the `openmetrics` feature can
//! still write OpenMetrics reports, by loading the `.so`. The output is byte for byte what the
//! compiled-in sink writes (format id `openmetrics`, extension `prom`).
//!
//! ```sh
//! cargo build --release -p heimdall-perf-plugin-openmetrics
//! # → target/release/libheimdall_perf_plugin_openmetrics.so
//! ```
//!
//! Loading it (with the facade's `plugins` feature, or by hand as below) registers the format
//! like a built-in one. This crate is a `cdylib` only, so the example is not compiled here;
//! `tests/plugin.rs` builds the `.so` and runs exactly this.
//!
//! ```ignore
//! use heimdall_perf_core::Registry;
//! # let report = heimdall_perf_testkit::sample_report();
//!
//! let registry = Registry::new();
//! registry.set_plugin_loader(heimdall_perf_plugin::loader());
//! let sink = registry.load_plugin("target/release/libheimdall_perf_plugin_openmetrics.so".as_ref())?;
//! assert_eq!(sink.format_id(), "openmetrics");
//! registry.render_to_file(&report, "report.prom".as_ref(), "openmetrics")?;
//! ```

#![warn(missing_docs)]

use heimdall_perf_core::ReportSink;
use heimdall_perf_plugin::{export_report_sink, Report};
use heimdall_perf_report_openmetrics::{OpenMetricsSink, FILE_EXTENSION, FORMAT_ID};

export_report_sink! {
    name: "heimdall-perf OpenMetrics",
    format_id: FORMAT_ID,
    file_extension: FILE_EXTENSION,
    render: |report: &Report| OpenMetricsSink::new().render_to_string(report),
}
