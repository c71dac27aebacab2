//! The [`ReportSink`]s: [`FlamegraphSink`] (SVG, and the differential graph of two
//! reports) and [`FoldedSink`] (folded stacks text).

use std::io::Write;

use heimdall_perf_core::RenderError;
use heimdall_perf_core::{Report, ReportSink};

use crate::fold::write_folded;
use crate::svg::{render_diff, render_svg};
use crate::{
    FlameError, FlameOptions, FILE_EXTENSION, FOLDED_FILE_EXTENSION, FOLDED_FORMAT_ID, FORMAT_ID,
};

/// Renders a report as a flamegraph SVG (format [`FORMAT_ID`], extension
/// [`FILE_EXTENSION`]), and two reports as a differential flamegraph
/// ([`render_diff`](FlamegraphSink::render_diff)).
///
/// Title: session name and duration; subtitle: the session's labels (`line=3 ·
/// station=cell-7`, in key order, a key or value past 64 characters cut with `…`), its start,
/// host and span count; frames: spans (per thread unless
/// [`merge_threads`](FlameOptions::merge_threads)), as wide as their total time, counted in
/// ns (`fg:w`, `total_samples`; µs past [`MAX_TOTAL_US`](crate::MAX_TOTAL_US) ns, about 104
/// days of span time), so that even a 300 ns span is drawn; tooltips give durations as the
/// report writes them (`detect (6.00 ms, 63.16%)`); search (Ctrl-F or the "Search" button)
/// and click-to-zoom come from inferno's embedded script. Only a report whose spans all
/// took 0 ns (or that has none) gives a small SVG that says there is nothing to draw.
///
/// ```
/// use heimdall_perf_core::{Report, ReportSink};
/// use heimdall_perf_flame::{FlameOptions, FlamegraphSink};
///
/// let sink = FlamegraphSink::new().with_options(FlameOptions::default().with_inverted(true));
/// let svg = sink.render_to_string(&Report::empty("idle"))?;
/// assert!(svg.contains("Nothing to draw"));
/// # Ok::<(), heimdall_perf_core::RenderError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct FlamegraphSink {
    options: FlameOptions,
}

impl FlamegraphSink {
    /// A sink with the default options.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// This sink drawing with `options` (checked when drawing).
    #[must_use]
    pub fn with_options(mut self, options: FlameOptions) -> Self {
        self.options = options;
        self
    }

    /// The options it draws with.
    pub fn options(&self) -> &FlameOptions {
        &self.options
    }

    /// Writes the differential flamegraph from `before` to `after` as SVG into `out`.
    ///
    /// Frames have the shape of `after` (widths are its times); a frame is red where
    /// `after` spends more self time than `before`, blue where it spends less, the deeper
    /// the colour the larger the change (relative to the largest change). Spans that only
    /// `before` has have no width and do not show (draw the diff the other way round to see
    /// them). Threads are matched by name; set
    /// [`merge_threads`](FlameOptions::merge_threads) to compare runs whose thread names
    /// differ, and [`normalize_differential`](FlameOptions::normalize_differential) to
    /// compare shapes rather than load.
    ///
    /// ```
    /// use heimdall_perf_flame::FlamegraphSink;
    /// let (before, after) = (heimdall_perf_testkit::sample_report(), heimdall_perf_testkit::sample_report());
    /// let mut svg = Vec::new();
    /// FlamegraphSink::new().render_diff(&before, &after, &mut svg)?;
    /// assert!(String::from_utf8_lossy(&svg).contains("<title>detect ("));
    /// # Ok::<(), heimdall_perf_flame::FlameError>(())
    /// ```
    pub fn render_diff(
        &self,
        before: &Report,
        after: &Report,
        out: &mut dyn Write,
    ) -> Result<(), FlameError> {
        render_diff(before, after, &self.options, out)
    }
}

impl ReportSink for FlamegraphSink {
    fn format_id(&self) -> &str {
        FORMAT_ID
    }

    fn file_extension(&self) -> &str {
        FILE_EXTENSION
    }

    /// `flamegraph`, the format's name: `flamegraph.svg` in a run folder.
    fn file_stem(&self) -> &str {
        FORMAT_ID
    }

    fn render(&self, report: &Report, out: &mut dyn Write) -> Result<(), RenderError> {
        Ok(render_svg(report, &self.options, out)?)
    }
}

/// Writes a report's folded stacks as text (format [`FOLDED_FORMAT_ID`], extension
/// [`FOLDED_FILE_EXTENSION`]), one line per span path, for `inferno-flamegraph`,
/// `flamegraph.pl`, speedscope or any other flamegraph tool.
///
/// ```
/// use heimdall_perf_core::ReportSink;
/// use heimdall_perf_flame::{FlameOptions, FoldedSink};
/// # let report = heimdall_perf_testkit::sample_report();
/// let sink = FoldedSink::new().with_options(FlameOptions::default().with_merge_threads(true));
/// let text = sink.render_to_string(&report)?;
/// assert!(text.lines().any(|l| l.starts_with("frame;detect")));
/// # Ok::<(), heimdall_perf_core::RenderError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct FoldedSink {
    options: FlameOptions,
}

impl FoldedSink {
    /// A sink with the default options (one root frame per thread).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// This sink folding with `options` (only
    /// [`merge_threads`](FlameOptions::merge_threads) matters here).
    #[must_use]
    pub fn with_options(mut self, options: FlameOptions) -> Self {
        self.options = options;
        self
    }

    /// The options it folds with.
    pub fn options(&self) -> &FlameOptions {
        &self.options
    }
}

impl ReportSink for FoldedSink {
    fn format_id(&self) -> &str {
        FOLDED_FORMAT_ID
    }

    fn file_extension(&self) -> &str {
        FOLDED_FILE_EXTENSION
    }

    fn file_stem(&self) -> &str {
        "stacks"
    }

    fn render(&self, report: &Report, out: &mut dyn Write) -> Result<(), RenderError> {
        Ok(write_folded(report, &self.options, out)?)
    }
}
