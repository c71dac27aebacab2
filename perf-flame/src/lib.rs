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
//! * [`render_svg`] / [`render_svg_string`] and [`FlamegraphSink`] draw the flamegraph;
//!   its tooltips give durations as the report writes them (`detect (6.00 ms, 63.16%)`).
//! * [`diff_flamegraph`] compares two reports: red where the new one spends more time,
//!   blue where it spends less ([`diff_fold`] gives its `stack before after` lines, in ns
//!   too).
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
//! use heimdall_perf_core::{ReportSink};
//! use heimdall_perf_testkit as fixtures;
//! use heimdall_perf_flame::{fold, FlameOptions, FlamegraphSink};
//!
//! let report = fixtures::sample_report();
//! let lines = fold(&report, &FlameOptions::default());
//! // Threads are the root frames.
//! assert!(lines.iter().any(|l| l.stack() == "camera;capture"));
//!
//! let mut svg = Vec::new();
//! FlamegraphSink::new().render(&report, &mut svg).unwrap();
//! let svg = String::from_utf8(svg).unwrap();
//! assert!(svg.contains("line-3 inspection — 10.000 s"));
//! assert!(svg.contains("<title>detect ("));
//! ```

#![warn(missing_docs)]

mod error;
mod fold;
mod sink;
mod svg;

pub use error::FlameError;
pub use fold::{
    diff_fold, fold, frame_name, write_folded, DiffLine, FoldedLine, EMPTY_NAME,
    SEMICOLON_REPLACEMENT,
};
pub use sink::{
    FlamegraphSink, FoldedSink, FLAMEGRAPH_EXTENSION, FLAMEGRAPH_FORMAT_ID, FOLDED_EXTENSION,
    FOLDED_FORMAT_ID,
};
pub use svg::{diff_flamegraph, format_duration, render_svg, render_svg_string, MAX_TOTAL_US};

/// How to fold and draw a flamegraph. `FlameOptions::default()` is one root per thread,
/// flames growing up, frames under 0.01 % of the width left out, a fluid width.
#[derive(Debug, Clone, PartialEq)]
pub struct FlameOptions {
    /// One tree for all threads (no thread root frame) instead of one root per thread.
    pub merge_threads: bool,
    /// Icicle graph: roots at the top, stacks growing down.
    pub inverted: bool,
    /// Frames narrower than this percentage of the whole width are left out (0 keeps all;
    /// 0 to 100).
    pub min_width_percent: f64,
    /// Title; `None` for the session name and duration (`line-3 inspection — 10.000 s`).
    pub title: Option<String>,
    /// Width in pixels (at least 100); `None` to fill the container.
    pub image_width: Option<usize>,
    /// Differential graphs only: scale the "before" report to the "after" total, to compare
    /// where time goes rather than how much there was.
    pub normalize_differential: bool,
}

impl Default for FlameOptions {
    fn default() -> Self {
        FlameOptions {
            merge_threads: false,
            inverted: false,
            min_width_percent: 0.01,
            title: None,
            image_width: None,
            normalize_differential: false,
        }
    }
}
