//! The [`ReportSink`]s: [`FlamegraphSink`] (SVG) and [`FoldedSink`] (folded stacks text).

use std::io::Write;

use heimdall_perf_core::RenderError;
use heimdall_perf_core::{Report, ReportSink};

use crate::{render_svg, write_folded, FlameOptions};

/// Format id of [`FlamegraphSink`] (`ReportFormat::Flamegraph`).
pub const FLAMEGRAPH_FORMAT_ID: &str = "flamegraph";
/// File extension of [`FlamegraphSink`].
pub const FLAMEGRAPH_EXTENSION: &str = "svg";
/// Format id of [`FoldedSink`] (`ReportFormat::Other("folded")`).
pub const FOLDED_FORMAT_ID: &str = "folded";
/// File extension of [`FoldedSink`].
pub const FOLDED_EXTENSION: &str = "folded";

/// Renders a report as a flamegraph SVG (format `flamegraph`, extension `svg`).
#[derive(Debug, Clone, Default)]
pub struct FlamegraphSink {
    options: FlameOptions,
}

impl FlamegraphSink {
    /// A sink with the default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink with `options`.
    pub fn with_options(options: FlameOptions) -> Self {
        FlamegraphSink { options }
    }

    /// The options it renders with.
    pub fn options(&self) -> &FlameOptions {
        &self.options
    }
}

impl ReportSink for FlamegraphSink {
    fn format_id(&self) -> &str {
        FLAMEGRAPH_FORMAT_ID
    }

    fn file_extension(&self) -> &str {
        FLAMEGRAPH_EXTENSION
    }

    fn file_stem(&self) -> &str {
        "flamegraph"
    }

    fn render(&self, report: &Report, out: &mut dyn Write) -> Result<(), RenderError> {
        Ok(render_svg(report, &self.options, out)?)
    }
}

/// Writes a report's folded stacks as text (format `folded`, extension `folded`), for
/// `inferno-flamegraph`, `flamegraph.pl`, speedscope or any other flamegraph tool.
#[derive(Debug, Clone, Default)]
pub struct FoldedSink {
    options: FlameOptions,
}

impl FoldedSink {
    /// A sink with the default options (one root frame per thread).
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink with `options` (only `merge_threads` matters here).
    pub fn with_options(options: FlameOptions) -> Self {
        FoldedSink { options }
    }

    /// The options it renders with.
    pub fn options(&self) -> &FlameOptions {
        &self.options
    }
}

impl ReportSink for FoldedSink {
    fn format_id(&self) -> &str {
        FOLDED_FORMAT_ID
    }

    fn file_extension(&self) -> &str {
        FOLDED_EXTENSION
    }

    fn file_stem(&self) -> &str {
        "stacks"
    }

    fn render(&self, report: &Report, out: &mut dyn Write) -> Result<(), RenderError> {
        Ok(write_folded(report, &self.options, out)?)
    }
}
