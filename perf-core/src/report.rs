//! [`Report`]: the plain-data snapshot of a session that every sink reads.
//!
//! A report is built by [`ProfilingSession::report`](crate::ProfilingSession::report) and is
//! independent of the recording engine: it can be serialised, read back and rendered again
//! later. All times are nanoseconds; offsets (`t_ns`, `start_ns`) count from the session start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::measurement::MetricType;
use crate::merge::StationInfo;
use crate::stats::{HistogramBucket, Summary};

/// Version of the [`Report`] layout. Bumped when a field is added, changes meaning or is
/// removed; readers refuse reports from a newer schema and read older ones (fields added
/// since are empty).
///
/// * 1: spans, metrics, series, notes, timeline, diagnostics.
/// * 2: session `labels`, and `frames` (frames across threads, budgets, misses,
///   attribution, incidents).
/// * 3: `stations`, the stations of a merged report ([`merge_reports`](crate::merge_reports));
///   written only when not empty, so a single run's JSON differs from schema 2 only in its
///   version.
pub const SCHEMA_VERSION: u32 = 3;

/// Separator used between frame names when a span path is written as one string
/// (the folded-stack convention).
pub const PATH_SEPARATOR: char = ';';

/// The snapshot of a profiling session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Layout version, [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// Version of heimdall-perf-core that wrote the report.
    pub crate_version: String,
    /// Who, where and when.
    pub session: SessionInfo,
    /// Threads that recorded spans.
    pub threads: Vec<ThreadInfo>,
    /// Statistics per span path and per thread (the span tree, thread by thread).
    pub spans: Vec<SpanStats>,
    /// Statistics per span path, all threads merged (`thread_id` is `None`), sorted by total
    /// time, largest first.
    pub span_totals: Vec<SpanStats>,
    /// Metrics added with `add_measurement`, one entry per name and label set.
    pub metrics: Vec<MetricReport>,
    /// Time series from periodic sources (system metrics, user gauges).
    pub series: Vec<TimeSeries>,
    /// Notes added with `add_note`, Markdown text.
    pub notes: Vec<Note>,
    /// The most recent spans, oldest first (bounded; see [`Diagnostics::timeline_capacity`]).
    pub timeline: Vec<TimelineSpan>,
    /// Frames, one entry per frame source (`frame!`, `FrameSource`), in order of source
    /// name. Empty in reports of schema 1.
    #[serde(default)]
    pub frames: Vec<FrameReport>,
    /// Every span and frame of the capture window (`capture_trace`), for timeline viewers:
    /// the `trace` sink writes it. Not part of the JSON report (it can hold millions of
    /// spans): a report read back from JSON has none, and its trace shows the recent spans.
    #[serde(skip)]
    pub capture: Option<TraceCapture>,
    /// Facts about the recording itself.
    pub diagnostics: Diagnostics,
    /// The stations of a report merged from several runs
    /// ([`merge_reports`](crate::merge_reports)), with each station's own figures; empty
    /// for a single run (and in reports of schema 1 and 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stations: Vec<StationInfo>,
}

/// Session metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Session name.
    pub name: String,
    /// Host name of the machine that recorded it.
    pub host: String,
    /// Process id of the recording process.
    pub pid: u32,
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Start as RFC 3339 text (UTC).
    pub started_at: String,
    /// Time from start to stop (or to the snapshot while still running).
    pub duration_ns: u64,
    /// Whether the session was still running when the snapshot was taken.
    pub active: bool,
    /// Labels of the session (`set_label`): the line, the station… Every exporter writes
    /// them (OpenMetrics as labels of every sample). Empty in reports of schema 1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A thread that recorded spans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    /// heimdall-perf's id for the thread (stable within a process, not the OS id).
    pub id: u64,
    /// Thread name, or `thread-<id>` for unnamed threads.
    pub name: String,
}

/// Statistics of one span path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanStats {
    /// Thread id, `None` in [`Report::span_totals`].
    pub thread_id: Option<u64>,
    /// Thread name, `None` in [`Report::span_totals`].
    pub thread: Option<String>,
    /// Names from the root span to this one.
    pub path: Vec<String>,
    /// Number of completed spans.
    pub count: u64,
    /// Total time spent in the span, children included.
    pub total_ns: u64,
    /// Time spent in the span itself, children excluded.
    pub self_ns: u64,
    /// Distribution of the span's durations, in nanoseconds.
    pub duration: Summary,
    /// Duration histogram in nanoseconds: bucket bounds growing by √2 from 256 ns up to the
    /// maximum (the same ladder for every span, so histograms add up across reports).
    pub histogram: Vec<HistogramBucket>,
}

impl SpanStats {
    /// The span's own name (the last element of its path).
    pub fn name(&self) -> &str {
        self.path.last().map(String::as_str).unwrap_or("")
    }

    /// The path as one string, names joined by [`PATH_SEPARATOR`].
    pub fn path_string(&self) -> String {
        self.path.join(&PATH_SEPARATOR.to_string())
    }
}

/// A metric fed by `add_measurement`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricReport {
    /// Metric name.
    pub name: String,
    /// Metric kind.
    pub metric_type: MetricType,
    /// Unit of the values.
    pub unit: String,
    /// Labels that tell this series apart from others of the same name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The most recent value (may be NaN or infinite).
    #[serde(with = "serde_f64")]
    pub last: f64,
    /// Number of NaN or infinite values (kept out of `summary`).
    pub non_finite: u64,
    /// Statistics of every finite value.
    pub summary: Summary,
    /// Values over time (bounded, downsampled).
    pub points: Vec<SeriesPoint>,
}

/// A named time series from a periodic source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    /// Series name, e.g. `system.cpu.total`.
    pub name: String,
    /// Unit, e.g. `%`, `bytes`.
    pub unit: String,
    /// Name of the source that produced it, e.g. `system`.
    pub source: String,
    /// Points, oldest first. Older points cover wider buckets once the series is full.
    pub points: Vec<SeriesPoint>,
}

/// The overall figures of a [`TimeSeries`] (see [`TimeSeries::overview`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesOverview {
    /// Mean of the samples (each point's mean weighted by its samples).
    pub mean: f64,
    /// Largest finite sample (NaN when no point has one).
    pub peak: f64,
    /// Number of samples behind `mean`.
    pub samples: u64,
}

impl TimeSeries {
    /// Mean, peak and sample count over the finite points, for summaries; `None` when no
    /// point holds a finite sample. Counts saturate, so any report read from a file is safe.
    ///
    /// ```
    /// use heimdall_perf_core::{SeriesPoint, TimeSeries};
    /// let p = |count, mean: f64, max| SeriesPoint { t_ns: 0, count, min: 0.0, max, mean, last: mean };
    /// let s = TimeSeries {
    ///     name: "cpu".into(),
    ///     unit: "%".into(),
    ///     source: "system".into(),
    ///     points: vec![p(1, 10.0, 10.0), p(3, 30.0, 50.0), p(2, f64::NAN, f64::INFINITY)],
    /// };
    /// let o = s.overview().unwrap();
    /// assert_eq!((o.mean, o.peak, o.samples), (25.0, 50.0, 4));
    /// let empty = TimeSeries { points: vec![p(0, 1.0, f64::NAN)], ..s };
    /// assert!(empty.overview().is_none());
    /// ```
    pub fn overview(&self) -> Option<SeriesOverview> {
        SeriesOverview::of(&self.points)
    }
}

impl SeriesOverview {
    /// The overview of `points` (see [`TimeSeries::overview`]).
    pub fn of(points: &[SeriesPoint]) -> Option<SeriesOverview> {
        let (mut weighted, mut samples, mut peak) = (0.0f64, 0u64, f64::NEG_INFINITY);
        for p in points {
            if p.mean.is_finite() && p.count > 0 {
                weighted += p.mean * p.count as f64;
                samples = samples.saturating_add(p.count);
            }
            let top = if p.max.is_finite() { p.max } else { p.mean };
            if top.is_finite() {
                peak = peak.max(top);
            }
        }
        (samples > 0).then(|| SeriesOverview {
            mean: weighted / samples as f64,
            peak: if peak == f64::NEG_INFINITY {
                f64::NAN
            } else {
                peak
            },
            samples,
        })
    }
}

/// One point (bucket) of a time series: the values seen from `t_ns` on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Start of the bucket, nanoseconds from the session start.
    pub t_ns: u64,
    /// Number of samples merged into this point.
    pub count: u64,
    /// Smallest sample.
    #[serde(with = "serde_f64")]
    pub min: f64,
    /// Largest sample.
    #[serde(with = "serde_f64")]
    pub max: f64,
    /// Mean of the samples.
    #[serde(with = "serde_f64")]
    pub mean: f64,
    /// The latest sample.
    #[serde(with = "serde_f64")]
    pub last: f64,
}

impl SeriesPoint {
    /// A point holding one sample `value` taken at `t_ns`.
    pub fn sample(t_ns: u64, value: f64) -> Self {
        SeriesPoint {
            t_ns,
            count: 1,
            min: value,
            max: value,
            mean: value,
            last: value,
        }
    }
}

/// A Markdown note attached to the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// When it was added, nanoseconds from the session start.
    pub t_ns: u64,
    /// Markdown text.
    pub text: String,
}

/// One recent span for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineSpan {
    /// Index into [`Report::spans`] of the span's path.
    pub span: usize,
    /// Start, nanoseconds from the session start.
    pub start_ns: u64,
    /// Duration in nanoseconds.
    pub duration_ns: u64,
}

/// Every span and frame of a window of time (`ProfilingSession::capture_trace`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceCapture {
    /// Window start, from the session start.
    pub start_ns: u64,
    /// Window end (its planned end, or the stop of the session or the snapshot while it
    /// runs), from the session start.
    pub end_ns: u64,
    /// Whether the window is still open (the report was taken during it).
    pub open: bool,
    /// Every span that began and ended in the window, in order of their end per thread
    /// (`span` indexes [`paths`](Self::paths), which gives its thread and path).
    pub spans: Vec<TimelineSpan>,
    /// The threads and paths of the captured spans (a thread that exited during the capture
    /// keeps its own, even when its rows of statistics were folded).
    pub paths: Vec<CapturedPath>,
    /// Every frame settled in the window, with its stages.
    pub frames: Vec<CapturedFrame>,
    /// The capture's limit of spans and frames together.
    pub max_events: u64,
    /// Spans and frames past that limit: not in the capture (still in the statistics).
    pub dropped: u64,
    /// Set for a capture streamed to a file (`ProfilingSession::stream_trace`): its spans
    /// and frames are in that file, not here (`spans`, `paths` and `frames` are empty).
    pub streamed: Option<StreamedTrace>,
}

/// Where a streamed trace capture went, and how far it got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamedTrace {
    /// The trace file.
    pub path: std::path::PathBuf,
    /// Spans written to it.
    pub spans: u64,
    /// Frames written to it.
    pub frames: u64,
    /// Spans and frames lost to a failed write (see `error`).
    pub lost: u64,
    /// Why the stream was closed (`window`, `stopped`, `replaced`), `None` while it runs.
    pub closed: Option<String>,
    /// The write that failed, if one did: the stream stopped there.
    pub error: Option<String>,
}

/// The thread and path of captured spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedPath {
    /// heimdall-perf's id of the thread.
    pub thread_id: u64,
    /// The thread's name.
    pub thread: String,
    /// Names from the root span to this one.
    pub path: Vec<String>,
}

/// A frame of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    /// Its source.
    pub source: String,
    /// Its id.
    pub frame_id: u64,
    /// Capture (birth), from the session start.
    pub capture_ns: u64,
    /// Finish or drop, from the session start.
    pub end_ns: u64,
    /// The drop reason, for a dropped frame.
    pub dropped: Option<String>,
    /// Whether it missed its budget.
    pub missed: bool,
    /// Its stages (start from the frame's capture).
    pub stages: Vec<IncidentStage>,
}

/// Facts about the recording itself, for whoever checks the report's completeness.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Span ends whose name did not match the innermost open span (guards dropped out of
    /// order); they were attributed to the innermost span.
    pub misnested_exits: u64,
    /// Spans still open when the snapshot was taken (not in the statistics yet).
    pub open_spans: u64,
    /// Spans counted under `<overflow>` because the session reached its limit of distinct
    /// span paths, or the process its limit of distinct span names.
    #[serde(default)]
    pub overflowed_spans: u64,
    /// How many recent spans the timeline keeps.
    pub timeline_capacity: u64,
    /// Spans that left the timeline ring to make room for newer ones (they stay in the
    /// statistics).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeline_dropped: u64,
    /// Threads that recorded into the session and have exited.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exited_threads: u64,
    /// Exited threads whose rows were merged into the `<exited threads>` row (only the most
    /// recent exited threads keep rows of their own; totals stay exact).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub folded_threads: u64,
    /// Spans still open when their thread exited: they never ended, so they are not timed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub abandoned_spans: u64,
    /// `scope!` guards that were leaked (`mem::forget`): their spans were ended with the
    /// enclosing span that was still open, so that later spans nest where they belong.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub leaked_spans: u64,
    /// Calls refused because the session had been stopped (`start_timing`,
    /// `add_measurement`, `add_note` after `stop`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused_after_stop: u64,
    /// Measurements of metrics past the session's limit of distinct metrics (name and label
    /// set), not kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_measurements: u64,
    /// Notes past the session's limit of notes, not kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_notes: u64,
    /// Labels not kept: an empty key, or past the limit of labels.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused_labels: u64,
    /// Frame events (a stage, `finish`, `drop_frame`) for a frame the session never saw
    /// begin, or saw end already (a frame finished twice): not counted in any frame.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unmatched_frame_events: u64,
    /// Frames begun and never ended that were let go to keep memory bounded (more than the
    /// limit of frames in flight).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub abandoned_frames: u64,
    /// Frame events of sources past the limit of frame sources: not recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unrecorded_frame_events: u64,
    /// Failed reads per periodic-source figure (`source/series`), skipped and counted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sampler_failures: BTreeMap<String, u64>,
}

/// One counter of [`Diagnostics`], for formats that list them by name (see
/// [`Diagnostics::counters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiagnosticCounter {
    /// Stable name, in `snake_case` (e.g. `folded_threads`).
    pub name: &'static str,
    /// Its value.
    pub value: u64,
    /// `true` for a count that only grows, `false` for a level (spans open now).
    pub monotonic: bool,
    /// What it counts, in one sentence.
    pub help: &'static str,
}

impl Diagnostics {
    /// Every counter with its stable name and meaning (machine formats list them all, zeros
    /// included; [`warnings`](Self::warnings) says the ones that matter in words).
    pub fn counters(&self) -> [DiagnosticCounter; 15] {
        let c = |name, value, monotonic, help| DiagnosticCounter {
            name,
            value,
            monotonic,
            help,
        };
        [
            c("misnested_span_exits", self.misnested_exits, true,
              "Span ends that did not match the innermost open span (attributed to it)."),
            c("overflowed_spans", self.overflowed_spans, true,
              "Spans counted under <overflow>: the limit of span paths or span names was reached."),
            c("open_spans", self.open_spans, false,
              "Spans still open when the report was taken."),
            c("timeline_dropped_spans", self.timeline_dropped, true,
              "Spans that left the timeline ring for newer ones (still in the statistics)."),
            c("exited_threads", self.exited_threads, true,
              "Threads that recorded into the session and exited."),
            c("folded_threads", self.folded_threads, true,
              "Exited threads merged into the <exited threads> row (totals stay exact)."),
            c("abandoned_spans", self.abandoned_spans, true,
              "Spans still open when their thread exited (not timed)."),
            c("leaked_spans", self.leaked_spans, true,
              "Leaked scope! guards, ended with their enclosing span."),
            c("refused_after_stop", self.refused_after_stop, true,
              "Calls refused because the session was stopped."),
            c("dropped_measurements", self.dropped_measurements, true,
              "Measurements of metrics past the limit of distinct metrics, not kept."),
            c("dropped_notes", self.dropped_notes, true,
              "Notes past the limit of notes, not kept."),
            c("refused_labels", self.refused_labels, true,
              "Session labels not kept: an empty key, or past the limit of labels."),
            c("unmatched_frame_events", self.unmatched_frame_events, true,
              "Frame events for a frame never begun or already ended (e.g. finished twice)."),
            c("abandoned_frames", self.abandoned_frames, true,
              "Frames begun, never ended, and let go past the limit of frames in flight."),
            c("unrecorded_frame_events", self.unrecorded_frame_events, true,
              "Frame events of sources past the limit of frame sources, not recorded."),
        ]
    }

    /// What a reader of the report should know about its completeness, in plain sentences
    /// (not escaped: each format escapes them), most serious first; empty when nothing is
    /// amiss. Folds that keep totals exact (exited threads, the timeline ring) are not
    /// warnings.
    ///
    /// ```
    /// use heimdall_perf_core::Diagnostics;
    /// let d = Diagnostics { open_spans: 2, dropped_notes: 1, ..Diagnostics::default() };
    /// assert_eq!(
    ///     d.warnings(),
    ///     [
    ///         "2 spans were still open when the report was taken and are not in the statistics.",
    ///         "1 note was not kept: the session reached its limit of notes.",
    ///     ]
    /// );
    /// ```
    pub fn warnings(&self) -> Vec<String> {
        let n = |count: u64, one: &str, many: &str| {
            if count == 1 {
                format!("1 {one}")
            } else {
                format!("{count} {many}")
            }
        };
        let mut w = Vec::new();
        if self.open_spans > 0 {
            w.push(format!(
                "{} still open when the report was taken and {} not in the statistics.",
                n(self.open_spans, "span was", "spans were"),
                if self.open_spans == 1 { "is" } else { "are" }
            ));
        }
        if self.misnested_exits > 0 {
            w.push(format!(
                "{} not match the innermost open span (guards dropped out of order) and {} attributed to it.",
                n(self.misnested_exits, "span end did", "span ends did"),
                if self.misnested_exits == 1 { "was" } else { "were" }
            ));
        }
        if self.overflowed_spans > 0 {
            w.push(format!(
                "{} counted under <overflow>: the session reached its limit of distinct span paths, or the process its limit of span names.",
                n(self.overflowed_spans, "span is", "spans are")
            ));
        }
        if self.abandoned_spans > 0 {
            w.push(format!(
                "{} still open when {} thread exited; {} not timed.",
                n(self.abandoned_spans, "span was", "spans were"),
                if self.abandoned_spans == 1 {
                    "its"
                } else {
                    "their"
                },
                if self.abandoned_spans == 1 {
                    "it is"
                } else {
                    "they are"
                }
            ));
        }
        if self.abandoned_frames > 0 {
            w.push(format!(
                "{} begun and never ended, let go to keep memory bounded; {} not in the frame statistics.",
                n(self.abandoned_frames, "frame was", "frames were"),
                if self.abandoned_frames == 1 { "it is" } else { "they are" }
            ));
        }
        if self.unmatched_frame_events > 0 {
            w.push(format!(
                "{} for a frame never begun or already ended (a frame finished twice?), and not counted.",
                n(self.unmatched_frame_events, "frame event was", "frame events were")
            ));
        }
        if self.unrecorded_frame_events > 0 {
            w.push(format!(
                "{} of sources past the limit of frame sources {} not recorded.",
                n(self.unrecorded_frame_events, "frame event", "frame events"),
                if self.unrecorded_frame_events == 1 {
                    "was"
                } else {
                    "were"
                }
            ));
        }
        if self.refused_labels > 0 {
            w.push(format!(
                "{} not kept (an empty key, or past the limit of labels).",
                n(
                    self.refused_labels,
                    "session label was",
                    "session labels were"
                )
            ));
        }
        if self.leaked_spans > 0 {
            w.push(format!(
                "{} leaked (mem::forget) and ended with the span enclosing {}.",
                n(self.leaked_spans, "scope! guard was", "scope! guards were"),
                if self.leaked_spans == 1 { "it" } else { "them" }
            ));
        }
        if self.dropped_measurements > 0 {
            w.push(format!(
                "{} not kept: the session reached its limit of distinct metrics (name and labels).",
                n(
                    self.dropped_measurements,
                    "measurement was",
                    "measurements were"
                )
            ));
        }
        if self.dropped_notes > 0 {
            w.push(format!(
                "{} not kept: the session reached its limit of notes.",
                n(self.dropped_notes, "note was", "notes were")
            ));
        }
        if self.refused_after_stop > 0 {
            w.push(format!(
                "{} refused because the session was stopped.",
                n(self.refused_after_stop, "call was", "calls were")
            ));
        }
        for (figure, failures) in &self.sampler_failures {
            w.push(format!(
                "{} of the periodic-source figure {figure} failed and {} skipped.",
                n(*failures, "read", "reads"),
                if *failures == 1 { "was" } else { "were" }
            ));
        }
        w
    }
}

impl Report {
    /// An empty report for a session named `name` (useful to build reports by hand).
    pub fn empty(name: impl Into<String>) -> Self {
        Report {
            schema_version: SCHEMA_VERSION,
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            session: SessionInfo {
                name: name.into(),
                host: String::new(),
                pid: 0,
                start_unix_ns: 0,
                started_at: crate::util::rfc3339(0),
                duration_ns: 0,
                active: false,
                labels: BTreeMap::new(),
            },
            threads: Vec::new(),
            spans: Vec::new(),
            span_totals: Vec::new(),
            metrics: Vec::new(),
            series: Vec::new(),
            notes: Vec::new(),
            timeline: Vec::new(),
            frames: Vec::new(),
            capture: None,
            diagnostics: Diagnostics::default(),
            stations: Vec::new(),
        }
    }

    /// Total number of completed spans recorded, all paths and threads.
    pub fn span_count(&self) -> u64 {
        // Saturating: a report read from a file may hold any counts.
        self.spans
            .iter()
            .fold(0u64, |n, s| n.saturating_add(s.count))
    }

    /// The merged statistics of the span path `path` (names from the root), if recorded.
    pub fn span_total(&self, path: &[&str]) -> Option<&SpanStats> {
        self.span_totals
            .iter()
            .find(|s| s.path.iter().map(String::as_str).eq(path.iter().copied()))
    }

    /// The frames of the source `source`, if it began any.
    pub fn frame_source(&self, source: &str) -> Option<&FrameReport> {
        self.frames.iter().find(|f| f.source == source)
    }

    /// The time series named `name`, if any.
    pub fn series(&self, name: &str) -> Option<&TimeSeries> {
        self.series.iter().find(|s| s.name == name)
    }

    /// The metric named `name` (first label set), if any.
    pub fn metric(&self, name: &str) -> Option<&MetricReport> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// Serde helpers that keep non-finite floats: finite values are numbers, NaN and the
/// infinities are the strings `"NaN"`, `"inf"` and `"-inf"`. Any serde format round-trips
/// them (plain serde_json would turn them into `null` and fail to read them back).
pub mod serde_f64 {
    use serde::{de, Deserializer, Serializer};
    use std::fmt;

    /// Serialises `v`, writing NaN and infinities as strings.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    /// Reads a number, or one of the strings `NaN`, `inf`, `+inf`, `-inf` (also
    /// `Infinity` spellings).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, or \"NaN\", \"inf\" or \"-inf\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
                match v {
                    "NaN" | "nan" => Ok(f64::NAN),
                    "inf" | "+inf" | "Infinity" | "+Infinity" => Ok(f64::INFINITY),
                    "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Names of the time series the system sampler writes, shared so that sinks can summarise
/// them without depending on the sampler crate. Per-core and per-interface series use the
/// prefixes with a suffix (`system.cpu.core.0`, `network.eth0.rx`).
pub mod series_names {
    /// Whole-machine CPU usage, `%` (0–100).
    pub const SYSTEM_CPU_TOTAL: &str = "system.cpu.total";
    /// Prefix of per-core CPU usage, `%`; the core index follows.
    pub const SYSTEM_CPU_CORE_PREFIX: &str = "system.cpu.core.";
    /// Memory in use, `bytes`.
    pub const SYSTEM_MEMORY_USED: &str = "system.memory.used";
    /// Memory available, `bytes`.
    pub const SYSTEM_MEMORY_AVAILABLE: &str = "system.memory.available";
    /// Total memory, `bytes`.
    pub const SYSTEM_MEMORY_TOTAL: &str = "system.memory.total";
    /// Swap in use, `bytes`.
    pub const SYSTEM_SWAP_USED: &str = "system.swap.used";
    /// Load average over 1 minute.
    pub const SYSTEM_LOAD_1: &str = "system.load.1";
    /// Load average over 5 minutes.
    pub const SYSTEM_LOAD_5: &str = "system.load.5";
    /// Load average over 15 minutes.
    pub const SYSTEM_LOAD_15: &str = "system.load.15";
    /// This process's CPU usage, `%` of one core (may exceed 100 with several threads).
    pub const PROCESS_CPU: &str = "process.cpu";
    /// This process's resident memory, `bytes`.
    pub const PROCESS_MEMORY_RESIDENT: &str = "process.memory.resident";
    /// This process's virtual memory, `bytes`.
    pub const PROCESS_MEMORY_VIRTUAL: &str = "process.memory.virtual";
    /// This process's thread count.
    pub const PROCESS_THREADS: &str = "process.threads";
    /// This process's disk reads, `bytes/s`.
    pub const PROCESS_DISK_READ: &str = "process.disk.read";
    /// This process's disk writes, `bytes/s`.
    pub const PROCESS_DISK_WRITE: &str = "process.disk.write";
    /// Prefix of per-interface network series: `network.<iface>.rx` / `.tx`, `bytes/s`.
    pub const NETWORK_PREFIX: &str = "network.";

    /// The system figures a short summary shows (an incident's context in HTML), in order:
    /// machine and process CPU, machine memory used, process resident memory.
    pub const HEADLINE: [&str; 4] = [
        SYSTEM_CPU_TOTAL,
        PROCESS_CPU,
        SYSTEM_MEMORY_USED,
        PROCESS_MEMORY_RESIDENT,
    ];
}

/// A distribution of durations in nanoseconds: the summary and histogram a span has as its
/// `duration` and `histogram`, on the same bucket ladder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Count, mean, percentiles… in nanoseconds.
    pub summary: Summary,
    /// Histogram in nanoseconds, bucket bounds growing by √2 from 256 ns (as spans).
    pub histogram: Vec<HistogramBucket>,
}

/// The frames of one source (a camera, a stream): how many, how late, which stage made them
/// late, and the worst of them kept whole.
///
/// A frame is born when `frame!` / `FrameSource::begin` is called (its capture time), goes
/// through stages on any threads, and ends with `finish` or `drop_frame`. Its *latency* is
/// capture → finish; it *misses* when the latency exceeds the source's frame budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameReport {
    /// The source's name, e.g. `cam-0`.
    pub source: String,
    /// Frames begun.
    pub count: u64,
    /// Frames finished.
    pub finished: u64,
    /// Frames dropped, by the reason given to `drop_frame`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dropped: BTreeMap<String, u64>,
    /// Frames begun and not yet counted as finished or dropped when the report was taken
    /// (a frame is counted one drain pass after its end; a report makes two, so every frame
    /// that ended before it is counted).
    #[serde(default)]
    pub in_flight: u64,
    /// The frame budget (capture → finish), if one is set.
    pub budget_ns: Option<u64>,
    /// Finished frames whose latency exceeded the budget.
    pub missed: u64,
    /// `missed / finished` (0 when no frame finished). A frame is judged against the budget
    /// in force when it is settled: frames finished before a budget was set count as met.
    #[serde(with = "crate::report::serde_f64")]
    pub miss_rate: f64,
    /// The longest run of consecutive missed frames.
    pub longest_miss_streak: u64,
    /// Latency of finished frames, capture → finish.
    pub latency: Distribution,
    /// Intervals between consecutive frame births of the source (shown against the budget,
    /// the target period, when one is set).
    pub jitter: Distribution,
    /// Per stage, in order of first use: service and queue time, budget overruns.
    pub stages: Vec<StageReport>,
    /// Which cause each missed frame is blamed on, most blamed first (see
    /// [`Attribution`] for the rule).
    pub attribution: Vec<Attribution>,
    /// The worst missed frames (largest overrun first), kept whole: the flight recorder.
    pub incidents: Vec<Incident>,
    /// Frames and misses over time, in consecutive windows from the session start (the
    /// windows widen as the session runs, so their number stays bounded).
    pub windows: Vec<FrameWindow>,
}

impl FrameReport {
    /// The statistics of the stage `name`, if the source's frames went through it.
    pub fn stage(&self, name: &str) -> Option<&StageReport> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// How many missed frames are blamed on `cause` (a stage name, or `queue before <stage>`).
    pub fn blamed(&self, cause: &str) -> u64 {
        self.attribution
            .iter()
            .find(|a| a.cause == cause)
            .map_or(0, |a| a.missed)
    }

    /// Frames dropped, all reasons.
    pub fn dropped_total(&self) -> u64 {
        self.dropped
            .values()
            .fold(0u64, |n, d| n.saturating_add(*d))
    }
}

/// One stage of a source's frames (`frame.stage("detect")`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// Stage name.
    pub name: String,
    /// The stage budget, if one is set (`set_stage_budget`).
    pub budget_ns: Option<u64>,
    /// Service time: how long the stage ran.
    pub service: Distribution,
    /// Queue time: the wait between the end of the frame's previous stage (or its capture,
    /// for its first stage) and this stage's start — usually a hand-over between threads.
    pub queue: Distribution,
    /// Runs of the stage longer than its budget.
    pub over_budget: u64,
}

/// How a missed frame is attributed, in plain text: the one statement of the rule, which
/// every report quotes.
pub const ATTRIBUTION_RULE: &str = "For a missed frame, each of its stages has an overrun: \
its service time minus its budget, or minus the stage's median service time when it has no \
budget. The wait before each stage has one too: its queue time minus the median wait before \
that stage; and so has the time from the end of its last stage to its finish: minus the \
median of that time. The frame is blamed on the largest overrun. A wait is named after the \
stage that waited (queue before detect), the time after the last stage after that stage \
(after decide). A frame with no stage is blamed on unstaged.";

/// How many missed frames one cause is blamed for.
///
/// **The rule** ([`ATTRIBUTION_RULE`]): for a missed frame, each of its stages has an
/// *overrun*: its service time minus its budget, or minus the stage's median service time
/// when it has no budget. The wait before each stage has one too: its queue time minus the
/// median wait before that stage; and so has the time from the end of its last stage to its
/// finish: minus the median of that time. The frame is blamed on the largest overrun. A wait
/// is named after the stage that waited (`queue before detect`), the time after the last
/// stage after that stage (`after decide`). A frame with no stage is blamed on `unstaged`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    /// A stage name, `queue before <stage>`, `after <stage>`, or `unstaged`.
    pub cause: String,
    /// Missed frames blamed on it.
    pub missed: u64,
}

/// A missed frame kept whole by the flight recorder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The frame's id.
    pub frame_id: u64,
    /// Capture time, from the session start.
    pub capture_ns: u64,
    /// Capture → finish.
    pub latency_ns: u64,
    /// The budget it missed.
    pub budget_ns: u64,
    /// `latency_ns - budget_ns`.
    pub overrun_ns: u64,
    /// What it is blamed on (see [`Attribution`]).
    pub cause: String,
    /// Its stages, on every thread, in order of start.
    pub stages: Vec<IncidentStage>,
    /// The frames of the same source begun just before it, oldest first.
    pub previous: Vec<IncidentFrame>,
    /// The latest system figures at the time of the frame (the last sample of each system
    /// series at or before its capture), when the session samples them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemFigure>,
}

/// A frame shown beside an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFrame {
    /// The frame's id.
    pub frame_id: u64,
    /// Capture time, from the session start.
    pub capture_ns: u64,
    /// Capture → finish, if it finished.
    pub latency_ns: Option<u64>,
    /// Its stages, in order of start.
    pub stages: Vec<IncidentStage>,
}

/// One stage of a frame in an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentStage {
    /// Stage name.
    pub name: String,
    /// heimdall-perf's id of the thread that ran it.
    pub thread_id: u64,
    /// That thread's name.
    pub thread: String,
    /// Start, from the frame's capture.
    pub start_ns: u64,
    /// Service time.
    pub duration_ns: u64,
    /// Wait before it (see [`StageReport::queue`]).
    pub queue_ns: u64,
}

/// A system figure at the time of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemFigure {
    /// Series name, e.g. `system.cpu.total`.
    pub name: String,
    /// Unit of the value.
    pub unit: String,
    /// The value.
    #[serde(with = "crate::report::serde_f64")]
    pub value: f64,
    /// When it was sampled, from the session start.
    pub t_ns: u64,
}

/// Frames and misses of a source in one window of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameWindow {
    /// Window start, from the session start.
    pub t_ns: u64,
    /// Window length.
    pub duration_ns: u64,
    /// Frames finished in the window (by capture time).
    pub finished: u64,
    /// Of those, frames that missed the budget.
    pub missed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
