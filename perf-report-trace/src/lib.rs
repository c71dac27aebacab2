//! # heimdall-perf-report-trace
//!
//! A heimdall-perf [`Report`] as a timeline for [Perfetto](https://ui.perfetto.dev) and
//! `chrome://tracing`: the Chrome Trace Event format, in its JSON object form
//! (`{"displayTimeUnit": "ns", "otherData": {…}, "traceEvents": […]}`).
//!
//! * **Spans** are complete events (`"ph": "X"`) on process 1, one track per thread (`tid` is
//!   heimdall-perf's thread id, named by a `thread_name` metadata event), named after the
//!   span, with the full path in `args.path`. They come from the report's
//!   [capture](heimdall_perf_core::TraceCapture) (`ProfilingSession::capture_trace`: every
//!   span of a window) when it has one, else from the ring of recent spans
//!   ([`Report::timeline`]) — then `otherData.partial` is `true` and `otherData.partial_reason`
//!   says why.
//! * **Times** are microseconds from the session start with fractions (`"ts": 12.345` is
//!   12 345 ns), so sub-microsecond spans keep their length; `displayTimeUnit` is `ns`.
//! * **Series** (system figures, gauges) and sampled **metrics** are counter events
//!   (`"ph": "C"`, the point's latest value; NaN and infinite values are left out); **notes**
//!   are global instant events (`"ph": "i"`, `"s": "g"`).
//! * **Frames** of the capture are async slices (`"ph": "b"` / `"e"`, `cat` `frame`, `id`
//!   `"<source>:<frame id>"`) spanning capture → finish (or drop), on a process of their own
//!   per frame source; their stages are async slices nested in them (same `id`). Missed
//!   frames carry `args.missed: true`; the flight recorder's incidents are also instant
//!   events named `incident` on their source's process.
//! * Every event has `ph`, `ts`, `pid`, `tid` and `name` (and `dur` for `X`), written first
//!   and in that order (Perfetto's JSON reader looks them up before the other keys). Any name
//!   gives valid JSON (serde_json escapes it). Events are written one by one to the writer,
//!   one per line: a capture of millions of spans is never held as one string.
//!
//! ```
//! use heimdall_perf_core::ReportSink;
//! use heimdall_perf_report_trace::TraceSink;
//!
//! # let report = heimdall_perf_testkit::sample_report();
//! let sink = TraceSink::new();
//! assert_eq!((sink.format_id(), sink.file_stem(), sink.file_extension()), ("trace", "trace", "json"));
//!
//! let json = sink.render_to_string(&report).unwrap();
//! let trace: serde_json::Value = serde_json::from_str(&json).unwrap();
//! // The sample report has no capture: the trace holds the recent spans, and says so.
//! assert_eq!(trace["otherData"]["partial"], true);
//! let spans = trace["traceEvents"].as_array().unwrap().iter().filter(|e| e["ph"] == "X");
//! assert_eq!(spans.count(), report.timeline.len());
//! ```

#![warn(missing_docs)]

mod stream;

pub use stream::{stream_factory, StreamWriter};

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufWriter, Write};

use heimdall_perf_core::{
    CapturedFrame, RenderError, Report, ReportSink, SeriesPoint, StreamedTrace, TimelineSpan,
};
use serde::Serialize;

/// The format id [`TraceSink`] registers under.
pub const FORMAT_ID: &str = "trace";
/// The file extension of traces, without the dot.
pub const FILE_EXTENSION: &str = "json";
/// The file name (without extension) of traces in a run folder: `trace.json`.
pub const FILE_STEM: &str = "trace";
/// The `pid` of spans, counters and notes. Frame sources follow, one `pid` each, from 2 on.
pub const SPANS_PID: u64 = 1;
/// The category (`cat`) of frame and stage slices.
pub const FRAME_CATEGORY: &str = "frame";

/// What can go wrong writing a trace: only writing it out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// Writing the trace of a report failed.
    #[error("cannot write the trace of session `{session}`: {source}")]
    Write {
        /// Name of the session whose trace was being written.
        session: String,
        /// The writer's error.
        #[source]
        source: io::Error,
    },
}

/// The trace [`ReportSink`]: format id [`FORMAT_ID`], extension [`FILE_EXTENSION`], file
/// `trace.json` in run folders ([`FILE_STEM`]).
///
/// ```
/// use heimdall_perf_core::{Report, ReportSink};
/// use heimdall_perf_report_trace::TraceSink;
///
/// let json = TraceSink::new().render_to_string(&Report::empty("s")).unwrap();
/// assert!(json.starts_with(r#"{"displayTimeUnit":"ns","otherData":{"#));
/// assert!(json.ends_with("]}\n"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceSink {
    counters: bool,
}

impl Default for TraceSink {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceSink {
    /// A sink writing spans, frames, notes, and the series and metrics as counters.
    #[must_use]
    pub fn new() -> Self {
        TraceSink { counters: true }
    }

    /// This sink, writing the time series and metrics as counter events (`true`, the
    /// default) or leaving them out (`false`: spans, frames and notes only).
    ///
    /// ```
    /// use heimdall_perf_core::ReportSink;
    /// use heimdall_perf_report_trace::TraceSink;
    /// # let report = heimdall_perf_testkit::sample_report();
    /// let json = TraceSink::new().with_counters(false).render_to_string(&report).unwrap();
    /// assert!(!json.contains(r#""ph":"C""#));
    /// ```
    #[must_use]
    pub fn with_counters(mut self, counters: bool) -> Self {
        self.counters = counters;
        self
    }

    /// Whether the sink writes counter events.
    pub fn writes_counters(&self) -> bool {
        self.counters
    }

    fn write_trace(&self, report: &Report, out: &mut dyn Write) -> Result<(), TraceError> {
        let mut w = BufWriter::with_capacity(64 * 1024, out);
        // A capture streamed to its own file is not in the report: this trace holds the
        // recent spans, and says where the capture went.
        let streamed = report.capture.as_ref().and_then(|c| c.streamed.clone());
        let without_capture;
        let report = if streamed.is_some() {
            without_capture = Report {
                capture: None,
                ..report.clone()
            };
            &without_capture
        } else {
            report
        };
        let mut writer = Writer::new(report, &mut w, self.counters);
        writer.streamed = streamed;
        let written = writer.write().and_then(|()| w.flush());
        written.map_err(|source| TraceError::Write {
            session: report.session.name.clone(),
            source,
        })
    }
}

impl ReportSink for TraceSink {
    fn format_id(&self) -> &str {
        FORMAT_ID
    }

    fn file_extension(&self) -> &str {
        FILE_EXTENSION
    }

    fn file_stem(&self) -> &str {
        FILE_STEM
    }

    fn render(&self, report: &Report, out: &mut dyn Write) -> Result<(), RenderError> {
        self.write_trace(report, out).map_err(RenderError::from)
    }
}

/// Nanoseconds as the format's microseconds, with fractions (exact: `12345` → `12.345`).
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// One event. The field order is the output order: `ph`, `ts`, `pid`, `tid`, `name` first
/// (Perfetto's tokenizer reads `ts` and `dur` by scanning keys in order), `args` last.
#[derive(Serialize)]
struct Event<'a, A: Serialize> {
    ph: &'static str,
    ts: f64,
    pid: u64,
    tid: u64,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    args: A,
}

impl<'a, A: Serialize> Event<'a, A> {
    fn new(ph: &'static str, ts_ns: u64, pid: u64, tid: u64, name: &'a str, args: A) -> Self {
        Event {
            ph,
            ts: us(ts_ns),
            pid,
            tid,
            name,
            dur: None,
            cat: None,
            id: None,
            s: None,
            args,
        }
    }
}

#[derive(Serialize)]
struct NameArgs<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct SortArgs {
    sort_index: u64,
}

#[derive(Serialize)]
struct SpanArgs<'a, S: Serialize> {
    path: &'a [S],
    /// The recorded duration, for a span shortened to end with its parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_dur_us: Option<f64>,
}

#[derive(Serialize)]
struct CounterArgs {
    value: f64,
}

#[derive(Serialize)]
struct NoteArgs<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct FrameArgs<'a> {
    frame_id: u64,
    latency_us: f64,
    missed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    incident: bool,
}

#[derive(Serialize)]
struct StageArgs<'a> {
    frame_id: u64,
    thread: &'a str,
    thread_id: u64,
    duration_us: f64,
    queue_us: f64,
}

#[derive(Serialize)]
struct IncidentArgs<'a> {
    source: &'a str,
    frame_id: u64,
    latency_us: f64,
    budget_us: f64,
    overrun_us: f64,
    cause: &'a str,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct CaptureInfo {
    start_us: f64,
    end_us: f64,
    open: bool,
    spans: usize,
    frames: usize,
    max_events: u64,
    dropped: u64,
}

#[derive(Serialize)]
struct OtherData<'a> {
    session: &'a str,
    host: &'a str,
    pid: u32,
    started_at: &'a str,
    start_unix_ns: u64,
    duration_us: f64,
    labels: &'a BTreeMap<String, String>,
    crate_version: &'a str,
    /// `capture` or `recent spans`.
    spans_from: &'static str,
    partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    partial_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capture: Option<CaptureInfo>,
    dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped_reason: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    unresolved_spans: u64,
    #[serde(skip_serializing_if = "is_zero")]
    shortened_spans: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    shortened_reason: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The thread id and path of a span of the list written: the capture's own paths, or the
/// report's spans for the timeline ring; `None` for an index out of range.
fn row<'r>(report: &'r Report, t: &TimelineSpan) -> Option<(u64, &'r [String])> {
    match &report.capture {
        Some(c) => c
            .paths
            .get(t.span)
            .map(|p| (p.thread_id, p.path.as_slice())),
        None => report
            .spans
            .get(t.span)
            .map(|s| (s.thread_id.unwrap_or(0), s.path.as_slice())),
    }
}

/// Calls `f` with each span of `order` (indexes into `list`, sorted by thread, start, longer
/// first) and the duration to write: its own, or shorter so that it ends with the span
/// enclosing it when it ends after it (spans ended out of order; the recorder rounds start
/// and end alike, so rounding alone never does it); viewers drop spans that do not nest.
fn nest(
    report: &Report,
    list: &[TimelineSpan],
    order: &[usize],
    mut f: impl FnMut(&TimelineSpan, u64),
) {
    // Ends of the spans enclosing the current one, on the current thread.
    let mut open: Vec<u64> = Vec::new();
    let mut thread = None;
    for &i in order {
        let t = &list[i];
        let tid = row(report, t).map(|(tid, _)| tid);
        if thread != Some(tid) {
            open.clear();
            thread = Some(tid);
        }
        while open.last().is_some_and(|&end| end <= t.start_ns) {
            open.pop();
        }
        let mut end = t.start_ns.saturating_add(t.duration_ns);
        if let Some(&parent_end) = open.last() {
            end = end.min(parent_end);
        }
        f(t, end - t.start_ns);
        open.push(end);
    }
}

/// The events of a `traceEvents` array, one per line, comma-separated.
struct Events<W: Write> {
    out: W,
    /// Whether no event was written yet (every later one is preceded by a comma).
    first: bool,
}

impl<W: Write> Events<W> {
    fn new(out: W) -> Self {
        Events { out, first: true }
    }

    fn event<A: Serialize>(&mut self, event: &Event<'_, A>) -> io::Result<()> {
        let sep: &[u8] = if self.first { b"\n" } else { b",\n" };
        self.out.write_all(sep)?;
        self.first = false;
        serde_json::to_writer(&mut self.out, event).map_err(io::Error::from)
    }
}

/// Writes a captured frame as an async slice (`b`/`e`, id `"<source>:<frame id>"`) on the
/// process `pid`, with its stages nested in it.
fn write_frame<W: Write>(
    events: &mut Events<W>,
    pid: u64,
    f: &CapturedFrame,
    incident: bool,
) -> io::Result<()> {
    let end = f.end_ns.max(f.capture_ns);
    let id = format!("{}:{}", f.source, f.frame_id);
    let args = FrameArgs {
        frame_id: f.frame_id,
        latency_us: us(end - f.capture_ns),
        missed: f.missed,
        dropped: f.dropped.as_deref(),
        incident,
    };
    let mut b = Event::new("b", f.capture_ns, pid, 0, &f.source, args);
    b.cat = Some(FRAME_CATEGORY);
    b.id = Some(&id);
    events.event(&b)?;
    let mut stages: Vec<_> = f.stages.iter().collect();
    stages.sort_by_key(|s| s.start_ns);
    // A stage that overlaps the one before it (stages of one frame run in parallel on two
    // threads) gets an id of its own: slices of one id pair up in time order, so
    // overlapping ones would close each other.
    let mut prev_stop = 0u64;
    let mut own = String::new();
    for (n, s) in stages.into_iter().enumerate() {
        // Clamped into the frame, so that the slices nest.
        let start = f.capture_ns.saturating_add(s.start_ns).min(end);
        let stop = start.saturating_add(s.duration_ns).min(end);
        let overlaps = n > 0 && start < prev_stop;
        prev_stop = prev_stop.max(stop);
        own.clear();
        own.push_str(&id);
        if overlaps {
            own.push(':');
            own.push_str(&n.to_string());
        }
        for (ph, ts) in [("b", start), ("e", stop)] {
            let args = StageArgs {
                frame_id: f.frame_id,
                thread: &s.thread,
                thread_id: s.thread_id,
                duration_us: us(s.duration_ns),
                queue_us: us(s.queue_ns),
            };
            let mut e = Event::new(ph, ts, pid, s.thread_id, &s.name, args);
            e.cat = Some(FRAME_CATEGORY);
            e.id = Some(&own);
            events.event(&e)?;
        }
    }
    let mut e = Event::new("e", end, pid, 0, &f.source, Empty {});
    e.cat = Some(FRAME_CATEGORY);
    e.id = Some(&id);
    events.event(&e)
}

/// Writes a span as a complete event (`X`) on the thread `tid`; `duration_ns` is the one to
/// write (shorter than the recorded one when it is cut to end with its parent).
fn write_span<W: Write, S: AsRef<str> + Serialize>(
    events: &mut Events<W>,
    tid: u64,
    path: &[S],
    t: &TimelineSpan,
    duration_ns: u64,
) -> io::Result<()> {
    let args = SpanArgs {
        path,
        recorded_dur_us: (duration_ns != t.duration_ns).then(|| us(t.duration_ns)),
    };
    let name = path.last().map_or("", AsRef::as_ref);
    let mut e = Event::new("X", t.start_ns, SPANS_PID, tid, name, args);
    e.dur = Some(us(duration_ns));
    events.event(&e)
}

/// Writes one report's trace, event by event.
struct Writer<'r, 'w> {
    report: &'r Report,
    events: Events<&'w mut dyn Write>,
    counters: bool,
    /// Where the report's capture was streamed, if it was.
    streamed: Option<StreamedTrace>,
}

impl<'r, 'w> Writer<'r, 'w> {
    fn new(report: &'r Report, out: &'w mut dyn Write, counters: bool) -> Self {
        Writer {
            report,
            events: Events::new(out),
            counters,
            streamed: None,
        }
    }

    fn event<A: Serialize>(&mut self, event: &Event<'_, A>) -> io::Result<()> {
        self.events.event(event)
    }

    fn write(mut self) -> io::Result<()> {
        let report = self.report;
        let spans = self.sorted_spans();
        let resolved = spans.len();
        let source_list: &[TimelineSpan] = match &report.capture {
            Some(c) => &c.spans,
            None => &report.timeline,
        };
        let unresolved = (source_list.len() - resolved) as u64;
        let mut shortened = 0u64;
        nest(report, source_list, &spans, |t, d| {
            shortened += u64::from(d != t.duration_ns);
        });

        // `displayTimeUnit` first (older Perfetto reads it from the first chunk only),
        // `traceEvents` last (a file cut short loses events, not its metadata).
        self.events
            .out
            .write_all(br#"{"displayTimeUnit":"ns","otherData":"#)?;
        let other = self.other_data(unresolved, shortened);
        serde_json::to_writer(&mut self.events.out, &other)?;
        self.events.out.write_all(br#","traceEvents":["#)?;

        self.metadata()?;
        let mut written = Ok(());
        nest(report, source_list, &spans, |t, duration_ns| {
            if written.is_err() {
                return;
            }
            let Some((tid, path)) = row(report, t) else {
                return;
            };
            written = write_span(&mut self.events, tid, path, t, duration_ns);
        });
        written?;
        if self.counters {
            self.counters()?;
        }
        self.notes()?;
        self.frames()?;
        self.events.out.write_all(b"\n]}\n")
    }

    /// Indexes of the spans to write (into the capture's spans or the timeline), by thread
    /// then start, the longer first at equal starts (a parent before its children); spans
    /// whose path is not in the report are left out.
    fn sorted_spans(&self) -> Vec<usize> {
        let report = self.report;
        let list: &[TimelineSpan] = match &report.capture {
            Some(c) => &c.spans,
            None => &report.timeline,
        };
        let mut idx: Vec<usize> = (0..list.len())
            .filter(|&i| row(report, &list[i]).is_some())
            .collect();
        let key = |i: usize| {
            let t = list[i];
            (
                row(report, &t).map_or(0, |(tid, _)| tid),
                t.start_ns,
                std::cmp::Reverse(t.duration_ns),
            )
        };
        idx.sort_by_key(|&i| key(i));
        idx
    }

    fn other_data(&self, unresolved: u64, shortened: u64) -> OtherData<'r> {
        let r = self.report;
        let s = &r.session;
        let (spans_from, partial_reason, capture, dropped, dropped_reason) = match &r.capture {
            None => {
                let mut why = format!(
                    "No trace capture: these are the {} most recent spans kept by the timeline ring (capacity {}), not every span of the session; call ProfilingSession::capture_trace for every span of a window.",
                    r.timeline.len(),
                    r.diagnostics.timeline_capacity
                );
                if let Some(st) = &self.streamed {
                    why.push_str(&format!(
                        " The capture window was streamed to `{}` ({} spans and {} frames written).",
                        st.path.display(),
                        st.spans,
                        st.frames
                    ));
                    if let Some(error) = &st.error {
                        why.push_str(&format!(
                            " The stream failed — {error} — and stopped there: {} spans and frames were lost.",
                            st.lost
                        ));
                    }
                }
                if r.diagnostics.timeline_dropped > 0 {
                    why.push_str(&format!(
                        " {} older spans left the ring.",
                        r.diagnostics.timeline_dropped
                    ));
                }
                ("recent spans", Some(why), None, 0, None)
            }
            Some(c) => {
                let dropped_reason = (c.dropped > 0).then(|| {
                    format!(
                        "{} spans and frames of the capture window were past its limit of {} events and are not in this trace (they are in the statistics).",
                        c.dropped, c.max_events
                    )
                });
                let info = CaptureInfo {
                    start_us: us(c.start_ns),
                    end_us: us(c.end_ns),
                    open: c.open,
                    spans: c.spans.len(),
                    frames: c.frames.len(),
                    max_events: c.max_events,
                    dropped: c.dropped,
                };
                let why = dropped_reason.clone();
                ("capture", why, Some(info), c.dropped, dropped_reason)
            }
        };
        OtherData {
            session: &s.name,
            host: &s.host,
            pid: s.pid,
            started_at: &s.started_at,
            start_unix_ns: s.start_unix_ns,
            duration_us: us(s.duration_ns),
            labels: &s.labels,
            crate_version: &r.crate_version,
            spans_from,
            partial: partial_reason.is_some(),
            partial_reason,
            capture,
            dropped,
            dropped_reason,
            unresolved_spans: unresolved,
            shortened_spans: shortened,
            shortened_reason: (shortened > 0).then(|| format!(
                "{shortened} spans ended after the span enclosing them (spans ended out of order, or a report read from a file that says so) and are shortened to end with it, so that every thread's spans nest; args.recorded_dur_us keeps their recorded duration."
            )),
        }
    }

    /// The frame sources, in order of name: from the frame statistics and the capture.
    fn sources(&self) -> Vec<&'r str> {
        let r = self.report;
        let mut set: BTreeSet<&str> = r.frames.iter().map(|f| f.source.as_str()).collect();
        if let Some(c) = &r.capture {
            set.extend(c.frames.iter().map(|f| f.source.as_str()));
        }
        set.into_iter().collect()
    }

    fn source_pid(sources: &[&str], source: &str) -> u64 {
        SPANS_PID + 1 + sources.binary_search(&source).unwrap_or(0) as u64
    }

    /// Names of the processes (the session, each frame source) and of every thread.
    fn metadata(&mut self) -> io::Result<()> {
        let r = self.report;
        let meta = |pid, tid, name: &'static str, value: &'r str| {
            Event::new("M", 0, pid, tid, name, NameArgs { name: value })
        };
        self.event(&meta(SPANS_PID, 0, "process_name", &r.session.name))?;
        self.event(&Event::new(
            "M",
            0,
            SPANS_PID,
            0,
            "process_sort_index",
            SortArgs { sort_index: 0 },
        ))?;
        let mut threads: BTreeMap<u64, &str> = BTreeMap::new();
        for t in &r.threads {
            threads.entry(t.id).or_insert(&t.name);
        }
        for s in &r.spans {
            if let (Some(id), Some(name)) = (s.thread_id, &s.thread) {
                threads.entry(id).or_insert(name);
            }
        }
        // Threads that exited during a capture keep their names there.
        for p in r.capture.iter().flat_map(|c| &c.paths) {
            threads.entry(p.thread_id).or_insert(&p.thread);
        }
        for (id, name) in threads {
            self.event(&meta(SPANS_PID, id, "thread_name", name))?;
        }
        let sources = self.sources();
        for (i, source) in sources.iter().enumerate() {
            let pid = Self::source_pid(&sources, source);
            self.event(&meta(pid, 0, "process_name", source))?;
            self.event(&Event::new(
                "M",
                0,
                pid,
                0,
                "process_sort_index",
                SortArgs {
                    sort_index: 1 + i as u64,
                },
            ))?;
        }
        Ok(())
    }

    fn counter_points(&mut self, name: &str, points: &[SeriesPoint]) -> io::Result<()> {
        for p in points.iter().filter(|p| p.last.is_finite()) {
            self.event(&Event::new(
                "C",
                p.t_ns,
                SPANS_PID,
                0,
                name,
                CounterArgs { value: p.last },
            ))?;
        }
        Ok(())
    }

    /// The time series and the metrics' points, as counters (a metric with labels is named
    /// `name{key=value,…}`).
    fn counters(&mut self) -> io::Result<()> {
        let r = self.report;
        for s in &r.series {
            self.counter_points(&s.name, &s.points)?;
        }
        for m in &r.metrics {
            let name = if m.labels.is_empty() {
                m.name.clone()
            } else {
                let labels: Vec<String> =
                    m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{}{{{}}}", m.name, labels.join(","))
            };
            self.counter_points(&name, &m.points)?;
        }
        Ok(())
    }

    /// Notes as global instant events named after their first line.
    fn notes(&mut self) -> io::Result<()> {
        let r = self.report;
        for n in &r.notes {
            let title = n
                .text
                .lines()
                .map(|l| l.trim_start_matches('#').trim())
                .find(|l| !l.is_empty())
                .unwrap_or("note");
            let title = match title.char_indices().nth(80) {
                Some((cut, _)) => &title[..cut],
                None => title,
            };
            let mut e = Event::new("i", n.t_ns, SPANS_PID, 0, title, NoteArgs { text: &n.text });
            e.s = Some("g");
            self.event(&e)?;
        }
        Ok(())
    }

    /// The captured frames as async slices with their stages nested, and the incidents as
    /// instant events on their source's process.
    fn frames(&mut self) -> io::Result<()> {
        let r = self.report;
        let sources = self.sources();
        let incidents: BTreeSet<(&str, u64)> = r
            .frames
            .iter()
            .flat_map(|f| f.incidents.iter().map(|i| (f.source.as_str(), i.frame_id)))
            .collect();
        if let Some(c) = &r.capture {
            let mut order: Vec<usize> = (0..c.frames.len()).collect();
            order.sort_by_key(|&i| (c.frames[i].capture_ns, i));
            for i in order {
                let f = &c.frames[i];
                let pid = Self::source_pid(&sources, &f.source);
                let incident = incidents.contains(&(f.source.as_str(), f.frame_id));
                write_frame(&mut self.events, pid, f, incident)?;
            }
        }
        for f in &r.frames {
            let pid = Self::source_pid(&sources, &f.source);
            for inc in &f.incidents {
                let args = IncidentArgs {
                    source: &f.source,
                    frame_id: inc.frame_id,
                    latency_us: us(inc.latency_ns),
                    budget_us: us(inc.budget_ns),
                    overrun_us: us(inc.overrun_ns),
                    cause: &inc.cause,
                };
                let ts = inc.capture_ns.saturating_add(inc.latency_ns);
                let mut e = Event::new("i", ts, pid, 0, "incident", args);
                e.s = Some("p");
                self.event(&e)?;
            }
        }
        Ok(())
    }
}
