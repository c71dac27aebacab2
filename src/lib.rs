//! # heimdall_perf
//!
//! Performance analysis for Heimdall Vision: profiling sessions, timings and lock-free spans,
//! counters, timers and throughput meters, system metrics, and reports in several formats
//! (JSON, Markdown, HTML, flamegraphs, and drop-in plugins).
//!
//! This facade is the API of the spec: [`init`] gives a [`ProfilingManager`] with every
//! compiled-in report format and sampler registered; sessions are `Arc<Mutex<…>>` so any
//! thread can record into them; [`scope!`] records a span without taking any lock.
//!
//! ```
//! use heimdall_perf::{init, scope, MetricType};
//! use heimdall_perf::metrics::MetricCounter;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let manager = init(dir.path())?;
//! let session = manager.lock().unwrap().start_session("line-3")?;
//!
//! // The spec's API: explicit timings on the shared session.
//! session.lock().unwrap().start_timing("frame");
//! {
//!     // The fast path: no lock, about two clock reads.
//!     let _detect = scope!("detect");
//! }
//! let frame = session.lock().unwrap().stop_timing("frame")?;
//!
//! let mut fps = MetricCounter::new("fps", MetricType::Throughput, "fps", 100);
//! fps.set(59.9);
//! session.lock().unwrap().add_measurement(fps.to_measurement());
//!
//! let report = session.lock().unwrap().report();
//! assert_eq!(report.span_total(&["frame", "detect"]).unwrap().count, 1);
//! assert!(frame >= std::time::Duration::ZERO);
//! manager.lock().unwrap().stop_session()?;
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! Every exporter, the plugin loader and the system sampler is a Cargo feature, all on by
//! default; `default-features = false, features = ["json"]` builds the recorder with JSON
//! reports only. A format that is not compiled in is refused at run time with an error that
//! names the feature to enable.
//!
//! | feature | what it adds | crate |
//! |---|---|---|
//! | `json` | lossless JSON reports and reading them back ([`json`]) | `heimdall-perf-report-json` |
//! | `markdown` | GitHub-flavoured Markdown reports ([`markdown`]) | `heimdall-perf-report-md` |
//! | `html` | self-contained HTML reports with charts ([`html`]) | `heimdall-perf-report-html` |
//! | `flame` | flamegraph SVG and folded stacks ([`flame`]); embedded in the HTML report when `html` is on too | `heimdall-perf-flame` |
//! | `openmetrics` | OpenMetrics text for Prometheus ([`openmetrics`]) | `heimdall-perf-report-openmetrics` |
//! | `trace` | timelines for Perfetto and `chrome://tracing` (`trace.json`, [`trace`]) | `heimdall-perf-report-trace` |
//! | `plugins` | drop-in `.so` report plugins ([`plugins`], [`PLUGINS_ENV`]) | `heimdall-perf-plugin` |
//! | `system` | system and process metrics (`start_system_metrics`, [`system`]) | `heimdall-perf-system` |
//! | `serve` | the live endpoint `manager.serve(addr)` ([`ServeHandle`]): `/metrics` for Prometheus (needs `openmetrics`, else it answers 503 naming it), `/report.json` (needs `json`), `/healthz`; a small `std::net` server (an accept thread, 4 workers), no async runtime | `heimdall-perf-core` (`httparse`) |

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

pub use heimdall_perf_core::{
    frame, is_recording, limits, scope, units, Callsite, Frame, FrameSite, FrameSource,
    Measurement, MetricType, PerfError, PeriodicSource, ProfilingManager, ProfilingSession,
    Registry, Result, Samples, SavedSession, ScopeGuard,
};
#[cfg(feature = "serve")]
#[cfg_attr(docsrs, doc(cfg(feature = "serve")))]
pub use heimdall_perf_core::{ServeHandle, ServeOptions};

/// Counters, timers and throughput meters, and the statistics they and spans report.
pub mod metrics {
    pub use heimdall_perf_core::metrics::*;
    pub use heimdall_perf_core::stats::*;
}

/// Lossless JSON reports, and reading saved reports back (feature `json`).
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub mod json {
    pub use heimdall_perf_report_json::*;
}

/// GitHub-flavoured Markdown reports (feature `markdown`).
#[cfg(feature = "markdown")]
#[cfg_attr(docsrs, doc(cfg(feature = "markdown")))]
pub mod markdown {
    pub use heimdall_perf_report_md::*;
}

/// Self-contained HTML reports (feature `html`).
#[cfg(feature = "html")]
#[cfg_attr(docsrs, doc(cfg(feature = "html")))]
pub mod html {
    pub use heimdall_perf_report_html::*;
}

/// Flamegraphs and folded stacks (feature `flame`).
#[cfg(feature = "flame")]
#[cfg_attr(docsrs, doc(cfg(feature = "flame")))]
pub mod flame {
    pub use heimdall_perf_flame::*;
}

/// Drop-in report plugins: the C ABI and the export macro for plugin authors, the loader
/// for hosts (feature `plugins`).
#[cfg(feature = "plugins")]
#[cfg_attr(docsrs, doc(cfg(feature = "plugins")))]
pub mod plugins {
    // Not `*`: the plugin crate also re-exports `Report` for plugin authors, which this crate
    // has in `reports` already.
    pub use heimdall_perf_plugin::{
        abi, export, export_report_sink, load_sink, loader, PluginError, PluginSink,
    };
}

/// OpenMetrics text for Prometheus (feature `openmetrics`).
#[cfg(feature = "openmetrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "openmetrics")))]
pub mod openmetrics {
    pub use heimdall_perf_report_openmetrics::*;
}

/// Timelines for Perfetto and `chrome://tracing`: the Chrome Trace Event format (feature
/// `trace`).
#[cfg(feature = "trace")]
#[cfg_attr(docsrs, doc(cfg(feature = "trace")))]
pub mod trace {
    pub use heimdall_perf_report_trace::*;
}

/// System and process metrics (feature `system`).
#[cfg(feature = "system")]
#[cfg_attr(docsrs, doc(cfg(feature = "system")))]
pub mod system {
    pub use heimdall_perf_system::*;
}

/// The report model, report formats and sinks, and the atomic writer every report file goes
/// through.
pub mod reports {
    pub use heimdall_perf_core::{exposition_ladder, Exposition, ScrapeRequest, Scraped};
    pub use heimdall_perf_core::{
        serde_f64, series_names, write_atomic, AtomicWriteError, Attribution, BoundedSeries,
        CapturedFrame, CapturedPath, DiagnosticCounter, Diagnostics, Distribution, FrameReport,
        FrameWindow, Hints, Incident, IncidentFrame, IncidentStage, MetricReport, Missing, Note,
        PluginLoader, RenderError, Report, ReportSink, SeriesOverview, SeriesPoint, SessionInfo,
        SourceFactory, SpanStats, StageReport, StreamEnd, StreamHeader, StreamedTrace,
        SystemFigure, ThreadInfo, TimeSeries, TimelineSpan, TraceBatch, TraceCapture, TraceStream,
        TraceStreamFactory, ATTRIBUTION_RULE, PATH_SEPARATOR, SCHEMA_VERSION,
    };
    // Merging the saved reports of several stations into one.
    pub use heimdall_perf_core::{
        merge_reports, MergeError, StationFrames, StationInfo, StationSpan, STATION_TABLE_SPANS,
    };

    pub use crate::ReportFormat;
}

/// A report format: the built-in ones by name, any registered one (a plugin's) by id.
///
/// Anything that takes a format takes a `ReportFormat` or a plain id:
/// `session.save_report(path, ReportFormat::Html)` and `session.save_report(path, "html")`
/// do the same. Parsing accepts the short names `md`, `htm`, `svg` and `flame`.
///
/// ```
/// use heimdall_perf::reports::ReportFormat;
/// assert_eq!(ReportFormat::Html.id(), "html");
/// assert_eq!("md".parse::<ReportFormat>().unwrap(), ReportFormat::Markdown);
/// assert_eq!(ReportFormat::from("openmetrics").feature(), Some("openmetrics"));
/// assert_eq!(ReportFormat::from("my-plugin").feature(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportFormat {
    /// Lossless JSON (feature `json`).
    Json,
    /// Self-contained HTML page (feature `html`).
    Html,
    /// GitHub-flavoured Markdown (feature `markdown`).
    Markdown,
    /// Flamegraph SVG (feature `flame`).
    Flamegraph,
    /// Any other format, by id (e.g. `openmetrics`, `folded`, or a plugin's).
    Other(String),
}

/// Every format id that a feature of this crate compiles in, with that feature.
///
/// Each sink crate owns its id (its `FORMAT_ID`); they are written here too because the
/// facade must name formats whose crate is not compiled in (to say which feature to
/// enable). The test `builtin_formats_match_the_sinks` holds the two equal.
const BUILTIN_FORMATS: &[(&str, &str)] = &[
    ("json", "json"),
    ("markdown", "markdown"),
    ("html", "html"),
    ("flamegraph", "flame"),
    ("folded", "flame"),
    ("openmetrics", "openmetrics"),
    ("trace", "trace"),
];

/// The features of this crate that are compiled in.
const ENABLED_FEATURES: &[&str] = &[
    #[cfg(feature = "json")]
    "json",
    #[cfg(feature = "markdown")]
    "markdown",
    #[cfg(feature = "html")]
    "html",
    #[cfg(feature = "flame")]
    "flame",
    #[cfg(feature = "openmetrics")]
    "openmetrics",
    #[cfg(feature = "trace")]
    "trace",
    #[cfg(feature = "plugins")]
    "plugins",
    #[cfg(feature = "system")]
    "system",
    #[cfg(feature = "serve")]
    "serve",
];

impl ReportFormat {
    /// The format id a sink registers under.
    pub fn id(&self) -> &str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Html => "html",
            ReportFormat::Markdown => "markdown",
            ReportFormat::Flamegraph => "flamegraph",
            ReportFormat::Other(id) => id,
        }
    }

    /// The Cargo feature of this crate that compiles this format in, for built-in formats.
    pub fn feature(&self) -> Option<&'static str> {
        let id = self.id();
        BUILTIN_FORMATS
            .iter()
            .find(|(f, _)| *f == id)
            .map(|(_, feature)| *feature)
    }
}

impl AsRef<str> for ReportFormat {
    fn as_ref(&self) -> &str {
        self.id()
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for ReportFormat {
    type Err = std::convert::Infallible;
    /// Parses a format id, in any case; `md`, `htm`, `svg` and `flame` are accepted for
    /// Markdown, HTML and flamegraphs. Any other id is [`ReportFormat::Other`].
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "json" => ReportFormat::Json,
            "html" | "htm" => ReportFormat::Html,
            "markdown" | "md" => ReportFormat::Markdown,
            "flamegraph" | "flame" | "svg" => ReportFormat::Flamegraph,
            other => ReportFormat::Other(other.to_string()),
        })
    }
}

impl From<&str> for ReportFormat {
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(f) => f,
            Err(never) => match never {},
        }
    }
}

/// What the registry says about something missing: the Cargo feature of this crate that
/// would compile it in, when it is one of ours and that feature is off.
fn hints() -> heimdall_perf_core::Hints {
    fn feature_hint(feature: &str) -> Option<String> {
        (!ENABLED_FEATURES.contains(&feature))
            .then(|| format!("enable the Cargo feature `{feature}` of heimdall-perf"))
    }
    Arc::new(|missing| match missing {
        heimdall_perf_core::Missing::Format(id) => {
            ReportFormat::from(id).feature().and_then(feature_hint)
        }
        heimdall_perf_core::Missing::PluginLoader => feature_hint("plugins"),
        heimdall_perf_core::Missing::SystemSampler => feature_hint("system"),
        heimdall_perf_core::Missing::TraceStream => feature_hint("trace"),
        heimdall_perf_core::Missing::Exposition => feature_hint("openmetrics"),
        _ => None,
    })
}

/// A registry holding every report sink and sampler compiled in through Cargo features.
pub fn default_registry() -> Result<Arc<Registry>> {
    let registry = Arc::new(Registry::new());
    register_builtin(&registry)?;
    Ok(registry)
}

#[allow(unused_variables)]
fn register_builtin(registry: &Registry) -> Result<()> {
    registry.set_hints(hints());
    #[cfg(feature = "json")]
    registry.register_sink(Arc::new(heimdall_perf_report_json::JsonSink::new()))?;
    #[cfg(feature = "markdown")]
    registry.register_sink(Arc::new(heimdall_perf_report_md::MarkdownSink::new()))?;
    #[cfg(feature = "flame")]
    {
        registry.register_sink(Arc::new(heimdall_perf_flame::FlamegraphSink::new()))?;
        registry.register_sink(Arc::new(heimdall_perf_flame::FoldedSink::new()))?;
    }
    #[cfg(feature = "html")]
    {
        let html = heimdall_perf_report_html::HtmlSink::new();
        // The facade, not the HTML crate, knows both: the flamegraph is embedded when the
        // `flame` feature is on.
        #[cfg(feature = "flame")]
        let html = {
            use heimdall_perf_core::ReportSink;
            let flame = heimdall_perf_flame::FlamegraphSink::new();
            html.with_flamegraph(Arc::new(move |r: &reports::Report| {
                flame.render_to_string(r)
            }))
        };
        registry.register_sink(Arc::new(html))?;
    }
    #[cfg(feature = "openmetrics")]
    {
        registry.register_sink(Arc::new(
            heimdall_perf_report_openmetrics::OpenMetricsSink::new(),
        ))?;
        // What the live endpoint's /metrics and the textfile exporter write.
        registry.set_exposition(Arc::new(|reports, request| {
            Ok(heimdall_perf_report_openmetrics::scrape(reports, request))
        }));
    }
    #[cfg(feature = "trace")]
    {
        registry.register_sink(Arc::new(heimdall_perf_report_trace::TraceSink::new()))?;
        registry.set_trace_stream(heimdall_perf_report_trace::stream_factory());
    }
    #[cfg(feature = "plugins")]
    registry.set_plugin_loader(heimdall_perf_plugin::loader());
    #[cfg(feature = "system")]
    registry.set_system_source(heimdall_perf_system::factory());
    Ok(())
}

/// The environment variable `init` reads: a `:`-separated list of report plugins (`.so`
/// paths) to load. No directory is scanned implicitly.
pub const PLUGINS_ENV: &str = "HEIMDALL_PERF_PLUGINS";

/// Loads every plugin listed in [`PLUGINS_ENV`] into `registry`, and returns the errors of
/// those that were refused (each names its path); the others stay loaded.
pub fn load_plugins_from_env(registry: &Registry) -> Vec<PerfError> {
    let Some(list) = std::env::var_os(PLUGINS_ENV) else {
        return Vec::new();
    };
    std::env::split_paths(&list)
        .filter(|p| !p.as_os_str().is_empty())
        .filter_map(|p| registry.load_plugin(&p).err())
        .collect()
}

/// Creates the report directory `dir` (if missing) and a [`ProfilingManager`] that writes
/// there, with every compiled-in report format and sampler registered, and the plugins
/// listed in `HEIMDALL_PERF_PLUGINS` loaded. A plugin that is refused does not stop the
/// profiler: its error (naming the plugin) is printed on standard error and the others
/// load; call [`load_plugins_from_env`] yourself to handle the errors otherwise.
pub fn init(dir: impl AsRef<Path>) -> Result<Arc<Mutex<ProfilingManager>>> {
    let registry = default_registry()?;
    for e in load_plugins_from_env(&registry) {
        eprintln!("heimdall-perf: {e}; continuing without it");
    }
    let manager = ProfilingManager::new(dir.as_ref(), registry)?;
    Ok(Arc::new(Mutex::new(manager)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_formats_match_the_sinks() {
        let registry = default_registry().unwrap();
        for (id, feature) in BUILTIN_FORMATS {
            let registered = registry.sink(id).is_ok();
            assert_eq!(
                registered,
                ENABLED_FEATURES.contains(feature),
                "format `{id}` (feature `{feature}`)"
            );
        }
        // Every compiled-in sink is in the table, under its own id.
        for id in registry.format_ids() {
            assert!(
                BUILTIN_FORMATS.iter().any(|(f, _)| *f == id),
                "`{id}` is missing from BUILTIN_FORMATS"
            );
        }
    }

    #[test]
    fn format_parsing() {
        assert_eq!(
            "md".parse::<ReportFormat>().unwrap(),
            ReportFormat::Markdown
        );
        assert_eq!(ReportFormat::from("SVG"), ReportFormat::Flamegraph);
        assert_eq!(ReportFormat::from("folded").feature(), Some("flame"));
        assert_eq!(ReportFormat::Html.as_ref(), "html");
    }

    #[test]
    fn a_missing_format_names_its_feature_only_when_it_is_off() {
        let registry = Registry::new();
        registry.set_hints(hints());
        for (id, feature) in BUILTIN_FORMATS {
            let e = registry.sink(id).err().unwrap().to_string();
            let says = e.contains(&format!("enable the Cargo feature `{feature}`"));
            assert_eq!(says, !ENABLED_FEATURES.contains(feature), "{e}");
        }
        let e = registry.sink("mine").err().unwrap().to_string();
        assert!(e.contains("`mine`") && e.contains("plugin"), "{e}");
        // Streaming a trace needs the trace writer.
        let hint = registry.hint(heimdall_perf_core::Missing::TraceStream);
        assert_eq!(
            hint.is_some(),
            !ENABLED_FEATURES.contains(&"trace"),
            "{hint:?}"
        );
        assert_eq!(
            default_registry().unwrap().trace_stream().is_some(),
            ENABLED_FEATURES.contains(&"trace")
        );
    }

    #[test]
    fn the_live_exposition_comes_with_openmetrics() {
        let on = ENABLED_FEATURES.contains(&"openmetrics");
        assert_eq!(default_registry().unwrap().exposition().is_ok(), on);
        let registry = Registry::new();
        registry.set_hints(hints());
        let e = registry.exposition().err().unwrap().to_string();
        assert!(
            e.starts_with("the live metrics exposition is not available: "),
            "{e}"
        );
        assert_eq!(
            e.contains("enable the Cargo feature `openmetrics` of heimdall-perf"),
            !on,
            "{e}"
        );
    }
}

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
