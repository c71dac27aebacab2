//! # heimdall-perf-flame
//!
//! Flamegraphs of heimdall-perf span trees: where a profiling session spent its time, span
//! by span, thread by thread, drawn as an interactive SVG by
//! [inferno](https://github.com/jonhoo/inferno) (search and click-to-zoom included).
//!
//! * [`fold`] turns a [`Report`](heimdall_perf_core::Report)'s span tree into folded
//!   stacks (`thread;frame;detect 1234000`, one line per span path, weighted by self time
//!   in **nanoseconds**, so a frame's width is its total time and no span is too short to
//!   show); [`FoldedSink`] writes them (`stacks.folded`) for any other flamegraph tool.
//! * [`FlamegraphSink`] draws the flamegraph (built with [`FlameOptions`], rendered with
//!   [`ReportSink::render`](heimdall_perf_core::ReportSink::render) or
//!   [`render_to_string`](heimdall_perf_core::ReportSink::render_to_string)); its tooltips
//!   give durations as every report writes them (`detect (6.00 ms, 63.16%)`, through
//!   [`heimdall_perf_core::units`]).
//! * [`FlamegraphSink::render_diff`] compares two reports: red where the new one spends more
//!   time, blue where it spends less ([`diff_fold`] gives its `stack before after` lines, in
//!   ns too).
//!
//! ## Weights are nanoseconds
//!
//! Folded and differential weights count nanoseconds. Before this they counted
//! microseconds, rounded, and a span shorter than 1 µs (a 300 ns timing) weighed 0 and
//! vanished from the graph. A tool that reads `stacks.folded` and took the weights for µs
//! must now divide them by 1000; tools that only compare weights (`inferno-flamegraph`,
//! `flamegraph.pl`, speedscope) need nothing, though their tooltips now count ns. The SVG
//! counts ns too (`fg:w`, `total_samples`), falling back to µs only for a graph whose total
//! passes [`MAX_TOTAL_US`] ns (about 104 days of span time), which its tooltips do not show.
//!
//! The facade registers both sinks under its `flame` feature, so that
//! `session.generate_flamegraph("run.svg")` works.
//!
//! ```
//! use heimdall_perf_core::ReportSink;
//! use heimdall_perf_flame::{fold, FlameOptions, FlamegraphSink};
//! # let report = heimdall_perf_testkit::sample_report();
//!
//! let lines = fold(&report, &FlameOptions::default());
//! // Threads are the root frames.
//! assert!(lines.iter().any(|l| l.stack() == "camera;capture"));
//!
//! let sink = FlamegraphSink::new().with_options(FlameOptions::default().with_min_width_percent(0.0));
//! let svg = sink.render_to_string(&report)?;
//! assert!(svg.contains("line-3 inspection — 10.0 s"));
//! // The session's labels lead the subtitle, escaped.
//! assert!(svg.contains("line=3 · station=cell-7 &lt;b&gt;"));
//! assert!(svg.contains("<title>detect ("));
//! # Ok::<(), heimdall_perf_core::RenderError>(())
//! ```

#![warn(missing_docs)]

mod error;
mod fold;
mod options;
mod sink;
mod svg;

pub use error::FlameError;
pub use fold::{
    diff_fold, fold, frame_name, DiffLine, FoldedLine, EMPTY_NAME, SEMICOLON_REPLACEMENT,
};
pub use options::FlameOptions;
pub use sink::{FlamegraphSink, FoldedSink};
pub use svg::MAX_TOTAL_US;

/// Format id of [`FlamegraphSink`] (the facade's `ReportFormat::Flamegraph`).
pub const FORMAT_ID: &str = "flamegraph";
/// File extension of [`FlamegraphSink`].
pub const FILE_EXTENSION: &str = "svg";
/// Format id of [`FoldedSink`].
pub const FOLDED_FORMAT_ID: &str = "folded";
/// File extension of [`FoldedSink`].
pub const FOLDED_FILE_EXTENSION: &str = "folded";
