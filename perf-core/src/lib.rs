//! # heimdall-perf-core
//!
//! The model and the recording engine of heimdall-perf, the performance-analysis module of
//! Heimdall Vision. No exporter lives here: sinks (JSON, HTML, flamegraphs, plugins) and the
//! system sampler are separate crates, wired together by the `heimdall-perf` facade.
//!
//! * [`ProfilingSession`] records timings (`start_timing` / `stop_timing`), `scope!` spans,
//!   measurements, notes and periodic samples, in bounded memory.
//! * [`ProfilingManager`] starts and stops sessions and saves each report in a fresh folder.
//! * [`scope!`] is the lock-free fast path: about two clock reads per span.
//! * [`metrics`] has counters, timers and throughput meters.
//! * [`Report`] is the snapshot every [`ReportSink`] renders; [`units`] is how every sink
//!   writes durations, sizes and values.
//!
//! ```
//! use heimdall_perf_core::{ProfilingSession, scope};
//!
//! let mut session = ProfilingSession::new("inspection");
//! for _ in 0..3 {
//!     let _frame = scope!("frame");
//!     {
//!         let _detect = scope!("detect");
//!     }
//! }
//! session.start_timing("decide");
//! session.stop_timing("decide").unwrap();
//! session.stop();
//!
//! let report = session.report();
//! assert_eq!(report.span_total(&["frame", "detect"]).unwrap().count, 3);
//! assert_eq!(report.span_total(&["decide"]).unwrap().count, 1);
//! ```

#![warn(missing_docs)]

mod error;
mod live;
mod manager;
mod measurement;
mod merge;
pub mod metrics;
mod periodic;
mod recorder;
mod report;
#[cfg(feature = "serve")]
mod serve;
mod session;
mod sink;
pub mod stats;
mod textfile;
pub mod units;
mod util;

pub use error::{PerfError, Result};
pub use live::{exposition_ladder, Exposition, ScrapeRequest, Scraped, HISTOGRAM_LADDER_TOP_NS};
pub use manager::{ProfilingManager, SavedSession};
pub use measurement::{unix_now_ns, Measurement, MetricType};
pub use merge::{
    merge_reports, MergeError, StationFrames, StationInfo, StationSpan, STATION_TABLE_SPANS,
};
pub use periodic::{BoundedSeries, PeriodicSource, Samples, SourceFactory};
pub use recorder::{is_recording, Callsite, Frame, FrameSite, FrameSource, ScopeGuard};
pub use report::{
    serde_f64, series_names, Attribution, CapturedFrame, CapturedPath, DiagnosticCounter,
    Diagnostics, Distribution, FrameReport, FrameWindow, Incident, IncidentFrame, IncidentStage,
    MetricReport, Note, Report, SeriesOverview, SeriesPoint, SessionInfo, SpanStats, StageReport,
    StreamedTrace, SystemFigure, ThreadInfo, TimeSeries, TimelineSpan, TraceCapture,
    ATTRIBUTION_RULE, PATH_SEPARATOR, SCHEMA_VERSION,
};
#[cfg(feature = "serve")]
pub use serve::{ServeHandle, ServeOptions};
pub use session::ProfilingSession;
pub use sink::{
    write_atomic, AtomicWriteError, Hints, Missing, PluginLoader, Registry, RenderError,
    ReportSink, StreamEnd, StreamHeader, TraceBatch, TraceStream, TraceStreamFactory,
};
pub use util::{control_picture, sanitize_file_name};

/// The bounds that keep a session's memory fixed however long it runs, and the names of the
/// rows that count what a bound folded away. Every fold is counted in the report's
/// [`Diagnostics`].
pub mod limits {
    pub use crate::periodic::{MIN_INTERVAL, SERIES_CAPACITY};
    pub use crate::recorder::{
        BACKLOG_SELF_DRAIN, BACKLOG_WAKE, CHUNK_EVENTS, DEFAULT_MAX_INCIDENTS,
        DEFAULT_STREAM_EVENTS, DEFAULT_TRACE_EVENTS, DRAIN_INTERVAL, EXITED_THREADS_ID,
        EXITED_THREADS_NAME, FRAME_WINDOWS, IDLE_DRAIN_INTERVAL, INCIDENT_PREVIOUS_FRAMES,
        MAX_DEPTH, MAX_DROP_REASONS, MAX_DROP_REASON_NAMES, MAX_FRAMES_IN_FLIGHT,
        MAX_FRAME_SOURCES, MAX_NAMES, MAX_PATHS, MAX_STAGES_PER_SOURCE, OVERFLOW_NAME,
        RETAINED_EXITED_THREADS, TIMELINE_CAPACITY,
    };
    pub use crate::session::{
        DEFAULT_SAMPLING_INTERVAL, MAX_LABELS, MAX_LABEL_BYTES, MAX_METRICS, MAX_NOTES,
    };
    pub use crate::util::MAX_FILE_NAME_BYTES;
}

/// Records a span named by a string literal until the returned guard is dropped, nested under
/// the calling thread's open spans, into the current session (the one most recently started
/// and still active). With no active session it costs one atomic load.
///
/// The name is interned once per call site; a span costs two clock reads and two stores into
/// the thread's own buffer — no lock, no allocation.
///
/// ```
/// # let _session = heimdall_perf_core::ProfilingSession::new("doc");
/// fn detect() {
///     let _span = heimdall_perf_core::scope!("detect");
///     // … work …
/// } // the span ends here
/// detect();
/// ```
#[macro_export]
macro_rules! scope {
    ($name:expr) => {{
        static __HEIMDALL_PERF_CALLSITE: $crate::Callsite = $crate::Callsite::new($name);
        $crate::ScopeGuard::enter(&__HEIMDALL_PERF_CALLSITE)
    }};
}

/// Begins a frame of the source named by a string literal (a camera, a stream): its capture
/// time is now, its id the next of the source's counter (`f.id()`). The returned
/// [`Frame`] is `Copy + Send` and travels with the image; its stages are timed where they
/// run (`f.stage("detect")`) and it ends with `f.finish()` or `f.drop_frame(reason)`.
///
/// The source is made once per call site; a frame costs a clock read and a few stores, like
/// a `scope!` span. For source names known only at run time, use [`FrameSource`].
///
/// ```
/// use heimdall_perf_core::{frame, ProfilingSession};
///
/// let session = ProfilingSession::new("line-3");
/// let f = frame!("cam-0");
/// std::thread::spawn(move || {
///     {
///         let _s = f.stage("detect");
///     }
///     f.finish();
/// })
/// .join()
/// .unwrap();
/// let report = session.report();
/// let cam = report.frame_source("cam-0").unwrap();
/// assert_eq!(cam.finished, 1);
/// assert_eq!(cam.stage("detect").unwrap().service.summary.count, 1);
/// ```
#[macro_export]
macro_rules! frame {
    ($source:expr) => {{
        static __HEIMDALL_PERF_FRAME_SITE: $crate::FrameSite = $crate::FrameSite::new($source);
        __HEIMDALL_PERF_FRAME_SITE.begin()
    }};
}
