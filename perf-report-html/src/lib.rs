//! # heimdall-perf-report-html
//!
//! The self-contained HTML report of heimdall-perf: one file that opens from disk in any
//! browser, with no network access (CSS, SVG charts and the small sorting script are
//! inline). It shows the session's labels in its header, summary cards (duration, spans
//! recorded, mean FPS, peak CPU and memory), the Frames section when the report has frame
//! sources, the sortable span table, latency histograms, charts of the system series and of
//! the metrics over time, the metrics table, the timeline of recent spans, the session's
//! notes (Markdown, raw HTML shown as text) and, when a renderer is given with
//! [`HtmlSink::with_flamegraph`], an interactive flamegraph (click to zoom, search).
//!
//! The Frames section has a block per source: its headline figures (frames begun,
//! finished, dropped by reason, in flight; budget, miss rate, longest miss streak, latency
//! p50 and p99), the latency histogram with the budget drawn as a line, the miss rate in
//! each window of the session, the jitter (the intervals between captures against the
//! target period, the budget), the median wait and service time of each stage with a
//! table of their p50 and p99, the attribution of misses to causes, and each incident of
//! the flight recorder as a small timeline from its capture: a lane per thread, waits
//! before stages as light bars, the budget line and the finish, the frames before it drawn
//! faint above, its cause and the system figures at the time. A report without frames
//! (schema 1, or no source) has no such section.
//!
//! A merged report (`heimdall-perf merge`) has a Stations section after the summary: one
//! sortable row per station with its labels, host, duration, its own p50 and p99 of the
//! fleet's main span paths, and its frames finished, missed and miss rate.
//!
//! Every name and value from the report is escaped: a span called
//! `<script>alert(1)</script>` is shown as that text and runs nothing. Characters a page
//! cannot carry (U+0000 and the other control characters but tab and line breaks, and the
//! noncharacters) are shown by a visible stand-in: `a\0b` shows as `a␀b` (Control
//! Pictures for C0 controls and DEL, U+FFFD for the others), in the page and in the
//! embedded flamegraph alike.
//!
//! The flamegraph SVG is embedded in a sandboxed `<iframe>` as a `data:` URL, so that its own
//! script (inferno's zoom and search) runs as in a standalone SVG file, isolated from the page.
//! Charts draw at most 1000 points each (neighbouring points merged, min–max band kept), so
//! a day-long session stays a page of a couple of megabytes at most.
//!
//! ```
//! use heimdall_perf_core::ReportSink;
//! use heimdall_perf_report_html::HtmlSink;
//!
//! # let report = heimdall_perf_testkit::sample_report();
//! let html = HtmlSink::new().render_to_string(&report)?;
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! assert!(html.contains("line-3 inspection"));
//! assert!(html.contains(r#"<section id="frames">"#));
//! assert!(!html.contains("<script>alert"));
//! # Ok::<(), heimdall_perf_core::RenderError>(())
//! ```

#![warn(missing_docs)]

use std::fmt;
use std::io::Write;
use std::sync::Arc;

use askama::Template;
use heimdall_perf_core::RenderError;
use heimdall_perf_core::{Report, ReportSink};

mod chart;
mod flame;
mod frame_view;
mod markdown;
mod sanitize;
mod station_view;
mod timestamp;
mod view;

/// How this crate writes figures: typographic signs (`−1.50 µs`, `+∞`), as HTML and SVG
/// can carry them.
const STYLE: heimdall_perf_core::units::Style = heimdall_perf_core::units::Style::Typographic;

/// The format id of [`HtmlSink`], by which a report in this format is asked for.
pub const FORMAT_ID: &str = "html";

/// The file extension (without the dot) of [`HtmlSink`]'s files.
pub const FILE_EXTENSION: &str = "html";

/// Draws a flamegraph of a report: returns an SVG document (such as inferno's, which carries
/// its own zoom and search script), or the error saying why it could not (shown on the
/// page in the flamegraph's place).
pub type FlamegraphRenderer = Arc<dyn Fn(&Report) -> Result<String, RenderError> + Send + Sync>;

/// What failed while producing an HTML report.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// The page template could not be rendered.
    #[error("rendering the HTML report of session `{session}` failed: {source}")]
    Template {
        /// Session name.
        session: String,
        /// What the template engine said.
        #[source]
        source: RenderError,
    },
    /// The finished page could not be written out.
    #[error("writing the HTML report of session `{session}` failed: {source}")]
    Write {
        /// Session name.
        session: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The `html` report sink: a self-contained HTML page. Render it with
/// [`ReportSink::render`] or [`ReportSink::render_to_string`].
///
/// ```
/// use std::sync::Arc;
/// use heimdall_perf_core::{Report, ReportSink};
/// use heimdall_perf_report_html::{HtmlSink, FORMAT_ID};
///
/// # let report = heimdall_perf_testkit::sample_report();
/// // Any function that turns a report into an SVG document can draw the flamegraph.
/// let sink = HtmlSink::new().with_flamegraph(Arc::new(|_report: &Report| {
///     Ok(r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="300"/>"#.to_string())
/// }));
/// assert_eq!(sink.format_id(), FORMAT_ID);
/// let html = sink.render_to_string(&report)?;
/// assert!(html.contains(r#"<iframe class="flame""#));
/// # Ok::<(), heimdall_perf_core::RenderError>(())
/// ```
#[derive(Clone, Default)]
pub struct HtmlSink {
    flamegraph: Option<FlamegraphRenderer>,
}

impl fmt::Debug for HtmlSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HtmlSink")
            .field("flamegraph", &self.flamegraph.is_some())
            .finish()
    }
}

impl HtmlSink {
    /// A sink without a flamegraph section.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an interactive flamegraph drawn by `renderer`. If the renderer fails (or returns
    /// something that is not SVG), the page is still written and says why the flamegraph is
    /// missing.
    #[must_use]
    pub fn with_flamegraph(mut self, renderer: FlamegraphRenderer) -> Self {
        self.flamegraph = Some(renderer);
        self
    }

    /// Whether a flamegraph renderer is set.
    pub fn has_flamegraph(&self) -> bool {
        self.flamegraph.is_some()
    }

    /// The flamegraph section: drawn and embedded, or the reason it is missing.
    fn flame(&self, report: &Report) -> Option<view::Flame> {
        let draw = self.flamegraph.as_ref()?;
        if report.spans.is_empty() && report.span_totals.is_empty() {
            return Some(view::Flame::Missing(
                "No spans were recorded: no flamegraph.".into(),
            ));
        }
        let embedded = draw(report).and_then(|svg| flame::embed(&svg).map_err(RenderError::from));
        Some(match embedded {
            Ok((src, height)) => view::Flame::Embedded { src, height },
            Err(why) => view::Flame::Missing(format!("The flamegraph could not be drawn: {why}")),
        })
    }

    /// The page for `report`.
    fn page(&self, report: &Report) -> Result<String, HtmlError> {
        let page = view::Page::new(report, self.flame(report))
            .render()
            .map_err(|e| HtmlError::Template {
                session: report.session.name.clone(),
                source: Box::new(e),
            })?;
        // One pass over the finished page reaches every string of the report, wherever the
        // template put it (text, attributes, titles of chart elements).
        Ok(match sanitize::visible(&page) {
            std::borrow::Cow::Borrowed(_) => page,
            std::borrow::Cow::Owned(clean) => clean,
        })
    }
}

impl ReportSink for HtmlSink {
    fn format_id(&self) -> &str {
        FORMAT_ID
    }

    fn file_extension(&self) -> &str {
        FILE_EXTENSION
    }

    fn render(&self, report: &Report, out: &mut dyn Write) -> Result<(), RenderError> {
        let page = self.page(report)?;
        out.write_all(page.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|source| HtmlError::Write {
                session: report.session.name.clone(),
                source,
            })?;
        Ok(())
    }

    /// The page as a string (built as one, so not copied out of a byte buffer).
    fn render_to_string(&self, report: &Report) -> Result<String, RenderError> {
        Ok(self.page(report)?)
    }
}
