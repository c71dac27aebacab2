//! # heimdall-perf-report-openmetrics
//!
//! A report sink that writes a heimdall-perf [`Report`] as the text exposition format that
//! Prometheus reads (OpenMetrics text, in the subset the classic Prometheus parser also
//! accepts): drop the file in the node_exporter textfile collector directory (the extension
//! is `.prom`, as that collector requires), or push it to a Pushgateway.
//!
//! * Span durations are **histograms** (`heimdall_span_duration_seconds_bucket{le=…}`,
//!   `_sum`, `_count`, in seconds), not precomputed quantiles, so that a fleet of lines can be
//!   aggregated and `histogram_quantile` works across them.
//! * Cumulative figures are **counters** with a `_total` suffix (span self time, recording
//!   diagnostics, metrics of type `counter`).
//! * The last value of each metric and of each periodic series (system figures) is a
//!   **gauge**, converted to base units (seconds, bytes, ratios instead of percent, bytes per
//!   second for `MB/s` or `Mbit/s`: `17 ms` is written `0.017` in a family named
//!   `…_seconds`); NaN and infinities are written `NaN`, `+Inf`, `-Inf`. A unit the sink does
//!   not know (`fps`, `px`, `kb` — bits or bytes?) stays out of the metric name, its value as
//!   it is, and is told in `# HELP`. Unit abbreviations, type names and non-base unit words
//!   (`ms`, `gauge`, `kilobytes`) are dropped from user-chosen names, so that `promtool check
//!   metrics` finds nothing to lint whatever the names and units.
//! * Frames, per source (label `source`): counters of frames begun, finished, dropped (by
//!   `reason`) and — for a source with a frame budget — missed, and of missed frames blamed
//!   on each `cause` (a stage, `queue before <stage>` or `unstaged`; the rule is the one
//!   documented on [`heimdall_perf_core::Attribution`]); gauges of frames in flight and,
//!   with a budget, of the budget, the miss ratio and the longest miss streak; histograms of
//!   frame latency (`heimdall_frame_latency_seconds`) and of the intervals between frame
//!   births (jitter), and per stage (label `stage`) of service and queue time, on the span
//!   histograms' bucket ladder; the stage budget and its overruns where a stage has one.
//!   Incidents are not written (their frame ids and threads are unbounded detail, the JSON
//!   report has them): every label takes values from a set the program names (sources,
//!   stages, drop reasons, causes).
//! * Labels: `session` and the session's own labels (`set_label`) on every sample, then for
//!   spans `thread`, `thread_id` and `path` (names joined by `;`, a `;` or `\` inside a name
//!   escaped with `\`, so that the name `a;b` is not the path a › b). Label names are
//!   sanitised ([`sanitize_label_name`]); a session label whose name the sink uses itself
//!   (`path`, `thread`, `source`, `stage`…), that Prometheus reserves (`le`, `quantile`,
//!   `job`, `instance`) or that starts with `_` is written `label_<name>`, and a name taken
//!   twice gets `_2`, `_3`…, so that no sample has a label twice.
//! * Every family has `# TYPE` and `# HELP` (and `# UNIT` where it has one); the text ends
//!   with `# EOF`. Names are sanitised to `[a-zA-Z_:][a-zA-Z0-9_:]*` and label values escaped,
//!   whatever the span and metric names contain.
//!
//! * The **live exposition** ([`OpenMetricsOptions::live`], [`scrape`]), which the facade's
//!   live endpoint serves and its textfile exporter writes: several sessions in one text,
//!   spans merged across threads (or per thread *name*), every histogram on the full fixed
//!   bucket ladder, no thread ids, pids or start times as labels; strict OpenMetrics 1.0 or
//!   the classic text format ([`Flavor`]) by content negotiation ([`negotiate`]).
//!
//! Counter families are declared under their sample name (`# TYPE x_total counter`), as the
//! Prometheus text format, `promtool check metrics`, the textfile collector and the
//! Pushgateway require; a strict OpenMetrics 1.0 parser would want `# TYPE x counter`.
//!
//! ```
//! use heimdall_perf_core::ReportSink;
//! use heimdall_perf_report_openmetrics::OpenMetricsSink;
//!
//! # let report = heimdall_perf_testkit::sample_report();
//! let text = OpenMetricsSink::new().render_to_string(&report)?;
//! assert!(text.contains("# TYPE heimdall_span_duration_seconds histogram\n"));
//! assert!(text.contains(
//!     r#"heimdall_span_duration_seconds_count{session="line-3 inspection",line="3",station="cell-7 <b>\"east\"</b>",thread="processing",thread_id="2",path="frame;detect;nms"} 600"#
//! ));
//! assert!(text.contains(
//!     r#"heimdall_frames_missed_total{session="line-3 inspection",line="3",station="cell-7 <b>\"east\"</b>",source="cam-0"} 30"#
//! ));
//! assert!(text.ends_with("# EOF\n"));
//! # Ok::<(), heimdall_perf_core::RenderError>(())
//! ```

#![warn(missing_docs)]

mod encoding;
mod error;
mod families;
mod live;
mod names;
mod units;

use std::io::Write;

use heimdall_perf_core::{RenderError, Report, ReportSink};

pub use error::OpenMetricsError;
pub use live::{negotiate, scrape, Flavor, OpenMetricsOptions};
pub use names::{escape_label_value, sanitize_label_name, sanitize_metric_name, METRIC_PREFIX};

/// The format id the sink registers under.
pub const FORMAT_ID: &str = "openmetrics";
/// The file extension: `prom`, the one the node_exporter textfile collector reads.
pub const FILE_EXTENSION: &str = "prom";

/// The OpenMetrics report sink (format id [`FORMAT_ID`], extension [`FILE_EXTENSION`]).
///
/// It renders through [`ReportSink`]: [`render`](ReportSink::render) into any writer, or
/// [`render_to_string`](ReportSink::render_to_string). A failed write is an error whose
/// source is an [`OpenMetricsError`] naming the session.
#[derive(Debug, Clone, Default)]
pub struct OpenMetricsSink {
    options: OpenMetricsOptions,
}

impl OpenMetricsSink {
    /// The sink, writing report files (see [`OpenMetricsOptions`] for what that means).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The sink with `options`: e.g. the live exposition, in OpenMetrics 1.0.
    ///
    /// ```
    /// use heimdall_perf_core::ReportSink;
    /// use heimdall_perf_report_openmetrics::{Flavor, OpenMetricsOptions, OpenMetricsSink};
    ///
    /// # let report = heimdall_perf_testkit::sample_report();
    /// let live = OpenMetricsSink::with_options(
    ///     OpenMetricsOptions::default().live(true).flavor(Flavor::OpenMetrics),
    /// );
    /// let text = live.render_to_string(&report)?;
    /// // Spans merged across threads: no thread ids.
    /// assert!(!text.contains("thread_id="));
    /// // Counters declared without `_total`, as OpenMetrics wants.
    /// assert!(text.contains("# TYPE heimdall_span_self_seconds counter\n"));
    /// # Ok::<(), heimdall_perf_core::RenderError>(())
    /// ```
    #[must_use]
    pub fn with_options(options: OpenMetricsOptions) -> Self {
        OpenMetricsSink { options }
    }
}

impl ReportSink for OpenMetricsSink {
    fn format_id(&self) -> &str {
        FORMAT_ID
    }

    fn file_extension(&self) -> &str {
        FILE_EXTENSION
    }

    fn render(&self, report: &Report, out: &mut dyn Write) -> Result<(), RenderError> {
        let text = families::exposition_of(std::slice::from_ref(report), &self.options);
        out.write_all(text.as_bytes())
            .map_err(|source| OpenMetricsError::Write {
                session: report.session.name.clone(),
                source,
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_perf_testkit::sample_report;

    #[test]
    fn the_sink_writes_the_exposition_text() {
        let r = sample_report();
        let mut out = Vec::new();
        OpenMetricsSink::new().render(&r, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), families::exposition(&r));
        assert_eq!(
            OpenMetricsSink::new().render_to_string(&r).unwrap(),
            families::exposition(&r)
        );
        assert_eq!(OpenMetricsSink::new().format_id(), FORMAT_ID);
        assert_eq!(OpenMetricsSink::new().file_extension(), FILE_EXTENSION);
    }

    #[test]
    fn a_failed_write_names_the_session() {
        let e = OpenMetricsSink::new()
            .render(&sample_report(), &mut heimdall_perf_testkit::FullDisk)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot write the OpenMetrics text of session `line-3 inspection`: disk full"
        );
        let e = e
            .downcast_ref::<OpenMetricsError>()
            .expect("the sink's own error");
        let source = std::error::Error::source(e).expect("the I/O error is kept");
        assert_eq!(source.to_string(), "disk full");
    }
}
