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

#![warn(missing_docs)]

use std::path::Path;
use std::sync::{Arc, Mutex};

pub use heimdall_perf_core as core;
pub use heimdall_perf_core::{
    is_recording, scope, Measurement, MetricType, PerfError, PeriodicSource, ProfilingManager,
    ProfilingSession, Registry, Report, Result, Samples, SavedSession, ScopeGuard,
};

/// Counters, timers and throughput meters.
pub mod metrics {
    pub use heimdall_perf_core::metrics::*;
    pub use heimdall_perf_core::stats::{DurationStats, Summary, ValueStats};
}

/// Lossless JSON reports, and reading saved reports back (feature `json`).
#[cfg(feature = "json")]
pub mod json {
    pub use heimdall_perf_report_json::*;
}

/// GitHub-flavoured Markdown reports (feature `markdown`).
#[cfg(feature = "markdown")]
pub mod markdown {
    pub use heimdall_perf_report_md::*;
}

/// Self-contained HTML reports (feature `html`).
#[cfg(feature = "html")]
pub mod html {
    pub use heimdall_perf_report_html::*;
}

/// Flamegraphs and folded stacks (feature `flame`).
#[cfg(feature = "flame")]
pub mod flame {
    pub use heimdall_perf_flame::*;
}

/// Drop-in report plugins: the C ABI and the export macro for plugin authors, the loader
/// for hosts (feature `plugins`).
#[cfg(feature = "plugins")]
pub mod plugins {
    pub use heimdall_perf_plugin::*;
}

/// OpenMetrics text for Prometheus (feature `openmetrics`).
#[cfg(feature = "openmetrics")]
pub mod openmetrics {
    pub use heimdall_perf_report_openmetrics::*;
}

/// System and process metrics (feature `system`).
#[cfg(feature = "system")]
pub mod system {
    pub use heimdall_perf_system::*;
}

/// Report formats, the report model and sinks.
pub mod reports {
    pub use heimdall_perf_core::report::*;
    pub use heimdall_perf_core::sink::{
        write_atomic, AtomicWriteError, Registry, RenderError, ReportFormat, ReportSink,
    };
}

/// A registry holding every report sink and sampler compiled in through Cargo features.
pub fn default_registry() -> Result<Arc<Registry>> {
    let registry = Arc::new(Registry::new());
    register_builtin(&registry)?;
    Ok(registry)
}

#[allow(unused_variables)]
fn register_builtin(registry: &Registry) -> Result<()> {
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
        let html = html.with_flamegraph(Arc::new(|r: &Report| {
            heimdall_perf_flame::render_svg_string(r, &heimdall_perf_flame::FlameOptions::default())
                .map_err(|e| e.to_string())
        }));
        registry.register_sink(Arc::new(html))?;
    }
    #[cfg(feature = "openmetrics")]
    registry.register_sink(Arc::new(
        heimdall_perf_report_openmetrics::OpenMetricsSink::new(),
    ))?;
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

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
