//! # heimdall-perf-report-md
//!
//! A heimdall-perf [`Report`] as GitHub-flavoured Markdown, to paste into an issue, a pull
//! request or a wiki page: a title with the session's name, start, duration, host and labels;
//! a "Stations" table when the report merges several runs (`heimdall-perf merge`): each
//! station's labels, host, duration, p50/p99 of the main span paths and frame miss rate,
//! side by side; a "Frames" section when the session followed frames (per source: counts, drops by reason,
//! misses against the budget, latency and jitter; per stage service and queue time; which
//! cause the missed frames are blamed on; the worst incidents with their stages thread by
//! thread, the frames before them and the system figures at the time); a table of span paths
//! sorted by total time; a table of metrics with their statistics; a summary of CPU and
//! memory (when the session sampled them); the session's notes, each in its own section.
//!
//! * Figures are written by [`heimdall_perf_core::units`] in its plain-text style
//!   ([`Style::Text`]): three significant digits in a readable unit (`850 ns`, `12.3 µs`,
//!   `5.67 ms`, `1.50 KiB`, `59.1 fps`), NaN and infinities as `NaN`, `inf`, `-inf`; numeric
//!   columns are right-aligned.
//! * Names cannot break the document: `|`, backticks and other Markdown punctuation are
//!   backslash-escaped, `<`, `>` and `&` become entities (no raw HTML), line breaks become
//!   `↵`.
//! * Notes are Markdown and are kept as such, but raw HTML in them is shown as text, their
//!   headings are demoted under the note's own heading, and a code fence left open is closed.
//! * No control character reaches the file raw but the line feeds (and a note's tabs): C0
//!   controls and DEL show as their Control Pictures (`␀`, `␛`, `␡`; in a name a tab is `␉`),
//!   C1 controls and noncharacters as U+FFFD — as in the HTML report.
//!
//! ```
//! use heimdall_perf_core::ReportSink;
//! use heimdall_perf_report_md::MarkdownSink;
//!
//! # let report = heimdall_perf_testkit::sample_report();
//! let md = MarkdownSink::new().render_to_string(&report).unwrap();
//! assert!(md.starts_with("# Performance report: line-3 inspection\n"));
//! assert!(md.contains("| Path | Count | Total | Self | Mean | p50 | p95 | p99 | Max |"));
//! // The hostile span name is escaped: one table cell, no raw HTML.
//! assert!(md.contains(r"odd \| name \`with\` ticks↵and &lt;script&gt;"));
//! ```

#![warn(missing_docs)]

use std::fmt::Write as _;
use std::io::Write;

use heimdall_perf_core::units::{Style, Unit};
use heimdall_perf_core::{series_names as sn, SpanStats, TimeSeries};
use heimdall_perf_core::{stats::Summary, RenderError, Report, ReportSink};

mod escape;
mod frames;
mod notes;
mod stations;
mod table;

use escape::{escape, escape_into};
use table::{header, row};

/// The format id [`MarkdownSink`] registers under.
pub const FORMAT_ID: &str = "markdown";
/// The file extension of Markdown reports, without the dot.
pub const FILE_EXTENSION: &str = "md";

/// Separator between the names of a span path in the span table.
const PATH_JOIN: &str = " › ";
/// What an empty statistic (no values) shows.
const NONE: &str = "–";
/// How figures are written: plain text (`-`, `inf`), as Markdown wants.
const STYLE: Style = Style::Text;
/// How many incidents per frame source the Frames section shows by default.
pub const DEFAULT_INCIDENTS_SHOWN: usize = 5;

/// What can go wrong rendering Markdown: only writing it out (the text itself is built in
/// memory and cannot fail).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MarkdownError {
    /// Writing the Markdown of a report failed.
    #[error("cannot write the Markdown report of session `{session}`: {source}")]
    Write {
        /// Name of the session whose report was being written.
        session: String,
        /// The writer's error.
        #[source]
        source: std::io::Error,
    },
}

/// The Markdown [`ReportSink`]: format id [`FORMAT_ID`], extension [`FILE_EXTENSION`].
///
/// Rendering into a `String` ([`render_to_string`](ReportSink::render_to_string)) cannot
/// fail: the text is built in memory.
///
/// ```
/// use heimdall_perf_core::{Report, ReportSink};
/// use heimdall_perf_report_md::MarkdownSink;
///
/// let sink = MarkdownSink::new();
/// assert_eq!((sink.format_id(), sink.file_extension()), ("markdown", "md"));
/// let md = sink.render_to_string(&Report::empty("empty <session>")).unwrap();
/// assert!(md.starts_with("# Performance report: empty &lt;session&gt;\n"));
/// assert!(md.contains("No spans were recorded."));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarkdownSink {
    max_spans: Option<usize>,
    max_incidents: Option<usize>,
}

impl MarkdownSink {
    /// A sink that lists every span path.
    #[must_use]
    pub fn new() -> Self {
        MarkdownSink {
            max_spans: None,
            max_incidents: None,
        }
    }

    /// This sink, listing only the `limit` span paths with the largest total time and saying
    /// how many it left out (the JSON report keeps them all). Every `limit` is valid: with
    /// `0` the table has its header and no row.
    ///
    /// ```
    /// use heimdall_perf_core::ReportSink;
    /// use heimdall_perf_report_md::MarkdownSink;
    /// # let report = heimdall_perf_testkit::sample_report();
    /// let md = MarkdownSink::new().with_max_spans(2).render_to_string(&report).unwrap();
    /// assert!(md.contains("5 more span paths are not shown"), "{md}");
    /// ```
    #[must_use]
    pub fn with_max_spans(mut self, limit: usize) -> Self {
        self.max_spans = Some(limit);
        self
    }

    /// How many span paths the span table lists at most (`None`: all of them).
    pub fn max_spans(&self) -> Option<usize> {
        self.max_spans
    }

    /// This sink, showing at most `limit` incidents per frame source (the worst ones) and
    /// saying how many it left out; [`DEFAULT_INCIDENTS_SHOWN`] when not set. Every `limit` is
    /// valid: with `0` no incident is shown.
    ///
    /// ```
    /// use heimdall_perf_core::ReportSink;
    /// use heimdall_perf_report_md::MarkdownSink;
    /// # let report = heimdall_perf_testkit::sample_report();
    /// let md = MarkdownSink::new().with_max_incidents(1).render_to_string(&report).unwrap();
    /// assert!(md.contains("1 more incident is not shown"), "{md}");
    /// ```
    #[must_use]
    pub fn with_max_incidents(mut self, limit: usize) -> Self {
        self.max_incidents = Some(limit);
        self
    }

    /// How many incidents per frame source the Frames section shows at most.
    pub fn max_incidents(&self) -> usize {
        self.max_incidents.unwrap_or(DEFAULT_INCIDENTS_SHOWN)
    }

    /// The report as Markdown text.
    fn markdown(&self, report: &Report) -> String {
        let mut out = String::with_capacity(
            4096 + 256 * report.span_totals.len()
                + 256 * report.metrics.len()
                + 4096 * report.frames.len(),
        );
        title(&mut out, report);
        stations::stations(&mut out, report);
        frames::frames(&mut out, report, self.max_incidents());
        spans(&mut out, report, self.max_spans);
        metrics(&mut out, report);
        system(&mut out, report);
        notes(&mut out, report);
        out
    }
}

impl ReportSink for MarkdownSink {
    fn format_id(&self) -> &str {
        FORMAT_ID
    }

    fn file_extension(&self) -> &str {
        FILE_EXTENSION
    }

    fn render(&self, report: &Report, out: &mut dyn Write) -> Result<(), RenderError> {
        let text = self.markdown(report);
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|source| {
                RenderError::from(MarkdownError::Write {
                    session: report.session.name.clone(),
                    source,
                })
            })
    }

    /// The text is built in memory: this cannot fail (and skips a copy).
    fn render_to_string(&self, report: &Report) -> Result<String, RenderError> {
        Ok(self.markdown(report))
    }
}

/// Writes `args` into `out`; writing into a `String` cannot fail.
fn push_fmt(out: &mut String, args: std::fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
}

/// `v` in `unit`, as a reader sees it; an unknown unit's text is escaped.
fn value(v: f64, unit: &Unit) -> String {
    escape(&STYLE.value(v, unit))
}

fn title(out: &mut String, r: &Report) {
    let s = &r.session;
    out.push_str("# Performance report: ");
    escape_into(out, &s.name);
    out.push_str("\n\n- **Started:** ");
    escape_into(out, &s.started_at);
    out.push_str("\n- **Duration:** ");
    out.push_str(&STYLE.duration(s.duration_ns as f64));
    if s.active {
        out.push_str(" (still running when this report was taken)");
    }
    out.push_str("\n- **Host:** ");
    if s.host.is_empty() {
        out.push_str("unknown");
    } else {
        escape_into(out, &s.host);
    }
    push_fmt(out, format_args!(" (pid {})\n", s.pid));
    if !s.labels.is_empty() {
        out.push_str("- **Labels:** ");
        for (i, (k, v)) in s.labels.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            escape_into(out, k);
            out.push_str(" = ");
            escape_into(out, v);
        }
        out.push('\n');
    }
    if !r.threads.is_empty() {
        out.push_str("- **Threads:** ");
        for (i, t) in r.threads.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            escape_into(out, &t.name);
        }
        out.push('\n');
    }
    push_fmt(
        out,
        format_args!(
            "- **Spans:** {} completed, {} paths\n",
            STYLE.count(r.span_count()),
            STYLE.count(r.span_totals.len() as u64)
        ),
    );
    if !r.frames.is_empty() {
        let (finished, missed) = r.frames.iter().fold((0u64, 0u64), |(f, m), s| {
            (f.saturating_add(s.finished), m.saturating_add(s.missed))
        });
        push_fmt(
            out,
            format_args!(
                "- **Frames:** {} {}, {} finished, {} missed their budget\n",
                STYLE.count(r.frames.len() as u64),
                if r.frames.len() == 1 {
                    "source"
                } else {
                    "sources"
                },
                STYLE.count(finished),
                STYLE.count(missed)
            ),
        );
    }
    out.push_str("- **Report:** schema ");
    push_fmt(out, format_args!("{}, heimdall-perf ", r.schema_version));
    escape_into(out, &r.crate_version);
    out.push('\n');

    let warnings = r.diagnostics.warnings();
    if !warnings.is_empty() {
        out.push_str("\n**Recording diagnostics:**\n\n");
        for w in warnings {
            out.push_str("- ");
            escape_into(out, &w);
            out.push('\n');
        }
    }
}

fn summary_cell(s: &Summary, v: f64, fmt: impl Fn(f64) -> String) -> String {
    if s.count == 0 {
        NONE.to_string()
    } else {
        fmt(v)
    }
}

fn path_cell(s: &SpanStats) -> String {
    let mut cell = String::with_capacity(16 * s.path.len());
    for (i, name) in s.path.iter().enumerate() {
        if i > 0 {
            cell.push_str(PATH_JOIN);
        }
        escape_into(&mut cell, name);
    }
    cell
}

fn spans(out: &mut String, r: &Report, limit: Option<usize>) {
    out.push_str("\n## Spans\n\n");
    if r.span_totals.is_empty() {
        out.push_str("No spans were recorded.\n");
        return;
    }
    // `span_totals` is sorted already when a session made the report; a report read back from
    // a file may not be.
    let mut sorted: Vec<&SpanStats> = r.span_totals.iter().collect();
    sorted.sort_by(|a, b| {
        b.total_ns
            .cmp(&a.total_ns)
            .then_with(|| a.path.cmp(&b.path))
    });
    let shown = limit.unwrap_or(usize::MAX).min(sorted.len());
    out.push_str(
        "All threads merged, sorted by total time. *Self* excludes time spent in child spans.\n\n",
    );
    header(
        out,
        &[
            ("Path", false),
            ("Count", true),
            ("Total", true),
            ("Self", true),
            ("Mean", true),
            ("p50", true),
            ("p95", true),
            ("p99", true),
            ("Max", true),
        ],
    );
    for s in &sorted[..shown] {
        let d = &s.duration;
        row(
            out,
            [
                path_cell(s),
                STYLE.count(s.count),
                STYLE.duration(s.total_ns as f64),
                STYLE.duration(s.self_ns as f64),
                summary_cell(d, d.mean, |v| STYLE.duration(v)),
                summary_cell(d, d.p50, |v| STYLE.duration(v)),
                summary_cell(d, d.p95, |v| STYLE.duration(v)),
                summary_cell(d, d.p99, |v| STYLE.duration(v)),
                summary_cell(d, d.max, |v| STYLE.duration(v)),
            ],
        );
    }
    if shown < sorted.len() {
        push_fmt(
            out,
            format_args!(
                "\n{} more span paths are not shown (the JSON report has them all).\n",
                STYLE.count((sorted.len() - shown) as u64)
            ),
        );
    }
}

fn metrics(out: &mut String, r: &Report) {
    if r.metrics.is_empty() {
        return;
    }
    out.push_str("\n## Metrics\n\n");
    out.push_str(
        "Statistics of the finite values; *Non-finite* counts NaN and infinite values.\n\n",
    );
    header(
        out,
        &[
            ("Metric", false),
            ("Type", false),
            ("Count", true),
            ("Last", true),
            ("Mean", true),
            ("Std dev", true),
            ("Min", true),
            ("p50", true),
            ("p95", true),
            ("p99", true),
            ("Max", true),
            ("Non-finite", true),
        ],
    );
    for m in &r.metrics {
        let mut name = escape(&m.name);
        if !m.labels.is_empty() {
            name.push_str(" {");
            for (i, (k, v)) in m.labels.iter().enumerate() {
                if i > 0 {
                    name.push_str(", ");
                }
                escape_into(&mut name, k);
                name.push('=');
                escape_into(&mut name, v);
            }
            name.push('}');
        }
        let s = &m.summary;
        let unit = Unit::parse(&m.unit);
        let u = |v: f64| value(v, &unit);
        row(
            out,
            [
                name,
                escape(&m.metric_type.to_string()),
                STYLE.count(s.count),
                u(m.last),
                summary_cell(s, s.mean, u),
                summary_cell(s, s.stddev, u),
                summary_cell(s, s.min, u),
                summary_cell(s, s.p50, u),
                summary_cell(s, s.p95, u),
                summary_cell(s, s.p99, u),
                summary_cell(s, s.max, u),
                STYLE.count(m.non_finite),
            ],
        );
    }
}

/// The system figures summarised, in order, with their labels.
const SYSTEM_FIGURES: [(&str, &str); 8] = [
    (sn::SYSTEM_CPU_TOTAL, "CPU, whole machine"),
    (sn::PROCESS_CPU, "CPU, this process"),
    (sn::SYSTEM_MEMORY_USED, "Memory used, whole machine"),
    (
        sn::SYSTEM_MEMORY_AVAILABLE,
        "Memory available, whole machine",
    ),
    (sn::SYSTEM_MEMORY_TOTAL, "Memory total, whole machine"),
    (sn::SYSTEM_SWAP_USED, "Swap used, whole machine"),
    (sn::PROCESS_MEMORY_RESIDENT, "Resident memory, this process"),
    (sn::PROCESS_MEMORY_VIRTUAL, "Virtual memory, this process"),
];

/// The label of the system figure named `name` (`system.cpu.total`: "CPU, whole machine").
fn system_label(name: &str) -> Option<&'static str> {
    SYSTEM_FIGURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, label)| *label)
}

fn series_row(out: &mut String, label: String, s: &TimeSeries) {
    let (mean, peak, samples) = match s.overview() {
        Some(o) => {
            let unit = Unit::parse(&s.unit);
            (
                value(o.mean, &unit),
                value(o.peak, &unit),
                STYLE.count(o.samples),
            )
        }
        None => (NONE.to_string(), NONE.to_string(), "0".to_string()),
    };
    row(out, [label, mean, peak, samples]);
}

fn system(out: &mut String, r: &Report) {
    let figures: Vec<(&str, &TimeSeries)> = SYSTEM_FIGURES
        .iter()
        .filter_map(|(name, label)| r.series(name).map(|s| (*label, s)))
        .collect();
    if !figures.is_empty() {
        out.push_str("\n## System\n\n");
        out.push_str("Sampled during the session: mean over the samples, and the peak.\n\n");
        header(
            out,
            &[
                ("Figure", false),
                ("Mean", true),
                ("Peak", true),
                ("Samples", true),
            ],
        );
        for (label, s) in figures {
            series_row(out, label.to_string(), s);
        }
    }
    let others: Vec<&TimeSeries> = r
        .series
        .iter()
        .filter(|s| !SYSTEM_FIGURES.iter().any(|(name, _)| *name == s.name))
        .collect();
    if !others.is_empty() {
        out.push_str("\n## Other time series\n\n");
        header(
            out,
            &[
                ("Series", false),
                ("Mean", true),
                ("Peak", true),
                ("Samples", true),
            ],
        );
        for s in others {
            let mut label = escape(&s.name);
            if !s.source.is_empty() {
                label.push_str(" (");
                escape_into(&mut label, &s.source);
                label.push(')');
            }
            series_row(out, label, s);
        }
    }
}

fn notes(out: &mut String, r: &Report) {
    if r.notes.is_empty() {
        return;
    }
    out.push_str("\n## Notes\n");
    for (i, n) in r.notes.iter().enumerate() {
        push_fmt(
            out,
            format_args!(
                "\n### Note {} (at {})\n\n",
                i + 1,
                STYLE.duration(n.t_ns as f64)
            ),
        );
        out.push_str(&notes::sanitize(&n.text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_their_unit_and_unknown_units_are_escaped() {
        assert_eq!(value(3.0, &Unit::parse("<b>")), "3.00 &lt;b&gt;");
        assert_eq!(value(2.0, &Unit::parse("px|s")), "2.00 px\\|s");
        assert_eq!(value(f64::INFINITY, &Unit::parse("°C")), "inf");
        assert_eq!(value(14.95, &Unit::parse("ms")), "14.9 ms");
        assert_eq!(value(2048.0, &Unit::parse("bytes/s")), "2.00 KiB/s");
        assert_eq!(value(-1.5, &Unit::parse("")), "-1.50");
    }

    #[test]
    fn render_to_string_is_the_rendered_text() {
        let report = Report::empty("s");
        let sink = MarkdownSink::new().with_max_spans(3);
        assert_eq!(sink.max_spans(), Some(3));
        let mut out = Vec::new();
        sink.render(&report, &mut out).unwrap();
        assert_eq!(sink.render_to_string(&report).unwrap().into_bytes(), out);
    }
}
