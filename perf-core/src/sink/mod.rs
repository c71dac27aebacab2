//! Report sinks: the [`ReportSink`] trait (this file), the [`Registry`] of sinks and
//! samplers (`registry.rs`), and [`write_atomic`], through which every report file is
//! written (`atomic.rs`).
//!
//! perf-core knows no format: each sink crate owns its format id and file extension (its
//! `FORMAT_ID` and `FILE_EXTENSION` constants), and the facade, which knows which crates its
//! Cargo features compile in, tells the registry what to say about a format that is missing
//! ([`Registry::set_hints`]).

mod atomic;
mod registry;
mod stream;

pub(crate) use atomic::replace_entry;
pub use atomic::{write_atomic, AtomicWriteError};
pub use registry::{Hints, Missing, PluginLoader, Registry};
pub use stream::{StreamEnd, StreamHeader, TraceBatch, TraceStream, TraceStreamFactory};

use std::io::Write;

use crate::report::Report;

/// The error a sink returns when it cannot render.
pub type RenderError = Box<dyn std::error::Error + Send + Sync>;

/// Something that turns a [`Report`] into bytes: JSON, HTML, a flamegraph, a plugin…
///
/// A sink implements [`render`](ReportSink::render) into any writer; every sink, built in
/// or loaded from a plugin, also renders to a `String` with
/// [`render_to_string`](ReportSink::render_to_string).
///
/// ```
/// use heimdall_perf_core::{RenderError, Report, ReportSink};
/// struct Names;
/// impl ReportSink for Names {
///     fn format_id(&self) -> &str { "names" }
///     fn file_extension(&self) -> &str { "txt" }
///     fn render(&self, report: &Report, out: &mut dyn std::io::Write) -> Result<(), RenderError> {
///         for s in &report.span_totals { writeln!(out, "{}", s.path_string())?; }
///         Ok(())
///     }
/// }
/// assert_eq!(Names.render_to_string(&Report::empty("s")).unwrap(), "");
/// ```
pub trait ReportSink: Send + Sync {
    /// Format id, lower case, e.g. `json`.
    fn format_id(&self) -> &str;
    /// File extension without the dot, e.g. `json`.
    fn file_extension(&self) -> &str;
    /// Writes `report` to `out`.
    fn render(&self, report: &Report, out: &mut dyn Write) -> std::result::Result<(), RenderError>;
    /// Renders `report` into a `String`. Bytes that are not UTF-8 (a sink for a binary
    /// format) are an error naming the format.
    fn render_to_string(&self, report: &Report) -> std::result::Result<String, RenderError> {
        let mut out = Vec::new();
        self.render(report, &mut out)?;
        String::from_utf8(out).map_err(|e| {
            format!(
                "the `{}` sink wrote bytes that are not UTF-8 ({e}); render it into a file or a byte buffer instead",
                self.format_id()
            )
            .into()
        })
    }
    /// File name (without extension) `stop_session` gives this format's file in a run
    /// folder, e.g. `flamegraph` for `flamegraph.svg`.
    fn file_stem(&self) -> &str {
        "report"
    }
    /// Where the sink comes from, for messages and listings: `built-in` or a plugin path.
    fn origin(&self) -> String {
        "built-in".to_string()
    }
}
