//! [`ProfilingSession`]: one recording — timings, spans, measurements, notes, samplers.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::error::{PerfError, Result};
use crate::measurement::{Measurement, MetricType};
use crate::periodic::{
    check_interval, BoundedSeries, PeriodicSource, QuickSources, Sampler, SeriesStore,
};
use crate::recorder::{self, same_text, SessionCore, StopError};
use crate::report::{
    Diagnostics, MetricReport, Note, Report, SessionInfo, SpanStats, ThreadInfo, SCHEMA_VERSION,
};
use crate::sink::{Missing, Registry, StreamHeader};
use crate::stats::{DurationStats, ValueStats, HISTOGRAM_FIRST_BUCKET_NS};

/// Default interval of `start_system_metrics`.
pub const DEFAULT_SAMPLING_INTERVAL: Duration = Duration::from_secs(1);
/// Points kept per metric time series before downsampling.
/// The format id `generate_flamegraph` writes (see there).
const FLAMEGRAPH_FORMAT_ID: &str = "flamegraph";
const METRIC_SERIES_CAPACITY: usize = 1024;
/// Distinct metrics (name and label set) a session keeps; measurements of further ones are
/// counted in `diagnostics.dropped_measurements` (a label that takes a new value per frame
/// would otherwise grow memory without bound).
pub const MAX_METRICS: usize = 10_000;
/// Notes a session keeps; further notes are counted in `diagnostics.dropped_notes`.
pub const MAX_NOTES: usize = 10_000;
/// Labels per session (`set_label`).
pub const MAX_LABELS: usize = 64;
/// Longest label key or value, in bytes (`set_label`).
pub const MAX_LABEL_BYTES: usize = 256;

/// `s` cut to at most [`MAX_LABEL_BYTES`] bytes (on a character boundary, ending with `…`).
fn cut(mut s: String) -> String {
    if s.len() > MAX_LABEL_BYTES {
        let mut end = MAX_LABEL_BYTES - '…'.len_utf8();
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

struct MetricAgg {
    name: String,
    metric_type: MetricType,
    unit: String,
    labels: BTreeMap<String, String>,
    last: f64,
    stats: ValueStats,
    series: BoundedSeries,
}

/// A profiling session: everything recorded between its start and its stop.
///
/// Timings (`start_timing` / `stop_timing`) and `scope!` spans nest per thread and form one
/// span tree; measurements are aggregated per name and label set; periodic sources (system
/// metrics) run on their own threads until the session stops. [`report`](Self::report) takes
/// a snapshot at any time.
///
/// ```
/// use heimdall_perf_core::ProfilingSession;
/// let mut s = ProfilingSession::new("doc");
/// s.start_timing("frame");
/// s.start_timing("detect");
/// s.stop_timing("detect").unwrap();
/// assert!(s.stop_timing("nope").is_err());
/// s.stop_timing("frame").unwrap();
/// let r = s.report();
/// assert_eq!(r.span_total(&["frame", "detect"]).unwrap().count, 1);
/// ```
pub struct ProfilingSession {
    core: Arc<SessionCore>,
    registry: Arc<Registry>,
    /// Timing name → index into `names`.
    name_index: FxHashMap<Box<str>, usize>,
    /// Timing names seen by this session, with their process-wide ids.
    names: Vec<(Box<str>, u32)>,
    /// Index in `names` of the last name looked up: `start_timing(x)` followed by
    /// `stop_timing(x)`, the common pattern, then hashes the name once instead of twice.
    last_name: usize,
    /// Measurements, notes, labels and series: what a snapshot reads besides the core.
    shared: Arc<Shared>,
    /// Sources on threads of their own.
    samplers: Vec<Sampler>,
    /// Quick sources, sampled by the aggregator thread.
    quick: Arc<QuickSources>,
    sampling_interval: Duration,
    drain: Option<Aggregator>,
    stopped_at: Option<Instant>,
    /// Calls refused because the session was stopped.
    refused_after_stop: u64,
    /// The textfile exporter, if started (`export_textfile`).
    textfile: Option<crate::textfile::Exporter>,
}

/// What a session shares with readers that do not take its lock: the live endpoint and the
/// textfile exporter take their snapshots from here while the recording threads go on (a
/// scrape never waits for, nor holds, the `Mutex<ProfilingSession>` the program locks on
/// every timing call).
pub(crate) struct Shared {
    core: Arc<SessionCore>,
    series: Arc<Mutex<SeriesStore>>,
    state: Mutex<State>,
    /// Set once, by `stop`.
    stopped_at: std::sync::OnceLock<Instant>,
}

/// The measurements, notes and labels of a session.
#[derive(Default)]
struct State {
    metrics: Vec<MetricAgg>,
    /// Hash of (name, labels) → indices into `metrics` with that hash.
    metric_index: FxHashMap<u64, Vec<usize>>,
    notes: Vec<Note>,
    /// Measurements of metrics past [`MAX_METRICS`].
    dropped_measurements: u64,
    /// Notes past [`MAX_NOTES`].
    dropped_notes: u64,
    /// Session labels (`set_label`).
    labels: BTreeMap<String, String>,
    /// Labels not kept: empty keys, or past [`MAX_LABELS`].
    refused_labels: u64,
}

impl std::fmt::Debug for ProfilingSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfilingSession")
            .field("name", &self.core.name)
            .field("active", &self.is_active())
            .finish_non_exhaustive()
    }
}

impl ProfilingSession {
    /// Starts a session with no sinks or samplers registered; it becomes the current session
    /// (the one `scope!` records into).
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_registry(name, Arc::new(Registry::new()))
    }

    /// Starts a session that renders with the sinks and samplers of `registry`.
    pub fn with_registry(name: impl Into<String>, registry: Arc<Registry>) -> Self {
        let name = name.into();
        let core = SessionCore::new(&name);
        recorder::activate(&core);
        let series = Arc::new(Mutex::new(SeriesStore::default()));
        let quick = Arc::new(QuickSources::new(Arc::clone(&series), core.start_instant));
        let drain = spawn_drain(&core, &quick);
        let shared = Arc::new(Shared {
            core: Arc::clone(&core),
            series,
            state: Mutex::new(State::default()),
            stopped_at: std::sync::OnceLock::new(),
        });
        ProfilingSession {
            core,
            registry,
            name_index: FxHashMap::default(),
            names: Vec::new(),
            last_name: 0,
            shared,
            samplers: Vec::new(),
            quick,
            sampling_interval: DEFAULT_SAMPLING_INTERVAL,
            drain,
            stopped_at: None,
            refused_after_stop: 0,
            textfile: None,
        }
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// Whether the session has not been stopped.
    pub fn is_active(&self) -> bool {
        self.stopped_at.is_none()
    }

    /// The registry of sinks and samplers this session uses.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The id of `name`: from the one-entry cache inline, else out of line.
    #[inline]
    fn name_id(&mut self, name: &str) -> u32 {
        match self.cached_name_id(name) {
            Some(id) => id,
            None => self.name_id_slow(name),
        }
    }

    /// [`name_id`](Self::name_id) past the one-entry cache: the session's table, then the
    /// process-wide names.
    #[inline(never)]
    fn name_id_slow(&mut self, name: &str) -> u32 {
        if let Some(id) = self.known_name_id(name) {
            return id;
        }
        let id = recorder::intern(name);
        if id == recorder::OVERFLOW_ID {
            // Past the name limit: not cached, so that the cache stays bounded too.
            return id;
        }
        self.last_name = self.names.len();
        self.names.push((name.into(), id));
        self.name_index.insert(name.into(), self.last_name);
        id
    }

    /// The id of `name` if it is the last name looked up (`start_timing(x)` followed by
    /// `stop_timing(x)`, the common pattern): one comparison of the text, no hashing.
    #[inline]
    fn cached_name_id(&self, name: &str) -> Option<u32> {
        match self.names.get(self.last_name) {
            Some((last, id)) if same_text(last.as_bytes(), name.as_bytes()) => Some(*id),
            _ => None,
        }
    }

    /// The process-wide id of a name this session has seen, if any.
    fn known_name_id(&mut self, name: &str) -> Option<u32> {
        if let Some(id) = self.cached_name_id(name) {
            return Some(id);
        }
        let &i = self.name_index.get(name)?;
        self.last_name = i;
        Some(self.names[i].1)
    }

    /// Whether the session was stopped; if so, counts the refused call.
    #[inline]
    fn refuse_if_stopped(&mut self) -> bool {
        if self.stopped_at.is_some() {
            self.refused_after_stop += 1;
            return true;
        }
        false
    }

    fn stopped_error(&self, what: String) -> PerfError {
        PerfError::SessionStopped {
            session: self.core.name.clone(),
            what,
        }
    }

    /// Starts timing `name` on the calling thread. Timings started while another is running
    /// on the same thread nest inside it (and inside any open `scope!`). The same name may
    /// be open several times (recursion); `stop_timing` closes the innermost.
    ///
    /// A stopped session records nothing more: the call is ignored and counted in
    /// `diagnostics.refused_after_stop`.
    #[inline]
    pub fn start_timing(&mut self, name: &str) {
        if self.refuse_if_stopped() {
            return;
        }
        let id = self.name_id(name);
        recorder::start_named(&self.core, id, name);
    }

    /// Stops the innermost timing `name` on the calling thread and returns its duration.
    ///
    /// Stopping a timing that is not running on this thread, or one with another timing
    /// still open inside it, is an error naming them; nothing recorded is lost and the open
    /// timings stay open. A `scope!` span still open inside it ends with it (as a timing
    /// still open ends with an enclosing `scope!`): a guard leaked with `mem::forget` cannot
    /// block the timing, and a guard dropped later is counted in
    /// `diagnostics.misnested_exits`. After the session was stopped, stopping is
    /// [`PerfError::SessionStopped`].
    #[inline]
    pub fn stop_timing(&mut self, name: &str) -> Result<Duration> {
        if self.stopped_at.is_none() {
            if let Some(id) = self.cached_name_id(name) {
                if let Some(d) = recorder::stop_innermost(&self.core, id) {
                    return Ok(d);
                }
            }
        }
        self.stop_timing_slow(name)
    }

    /// [`stop_timing`](Self::stop_timing) when the fast path did not apply: the session
    /// was stopped, the name is not the last one looked up, or it is not the innermost
    /// timing of the thread (an error, or a name past the name limit).
    #[inline(never)]
    fn stop_timing_slow(&mut self, name: &str) -> Result<Duration> {
        if self.refuse_if_stopped() {
            return Err(self.stopped_error(format!("stop_timing(`{name}`)")));
        }
        let Some(id) = self.known_name_id(name).or_else(|| recorder::lookup(name)) else {
            return Err(PerfError::TimingNotStarted {
                session: self.core.name.clone(),
                timing: name.to_string(),
                thread: current_thread_name(),
            });
        };
        recorder::stop_named(&self.core, id, name).map_err(|e| match e {
            StopError::NotStarted { thread } => PerfError::TimingNotStarted {
                session: self.core.name.clone(),
                timing: name.to_string(),
                thread,
            },
            StopError::OutOfOrder { open } => PerfError::TimingOutOfOrder {
                session: self.core.name.clone(),
                timing: name.to_string(),
                open,
            },
        })
    }

    /// Adds a measurement. Measurements are aggregated per name and label set: last value,
    /// running statistics, and a bounded time series. After the session was stopped the
    /// measurement is ignored and counted in `diagnostics.refused_after_stop`.
    pub fn add_measurement(&mut self, measurement: Measurement) {
        if self.refuse_if_stopped() {
            return;
        }
        let t_ns = measurement
            .timestamp_unix_ns
            .saturating_sub(self.core.start_unix_ns);
        let key = metric_key(&measurement.name, &measurement.labels);
        let mut state = self.shared.state();
        let st = &mut *state;
        let slot = st.metric_index.get(&key).and_then(|ids| {
            ids.iter().copied().find(|&i| {
                let m = &st.metrics[i];
                m.name == measurement.name && m.labels == measurement.labels
            })
        });
        let i = match slot {
            Some(i) => i,
            None if st.metrics.len() >= MAX_METRICS => {
                st.dropped_measurements += 1;
                return;
            }
            None => {
                st.metrics.push(MetricAgg {
                    name: measurement.name.clone(),
                    metric_type: measurement.metric_type.clone(),
                    unit: measurement.unit.clone(),
                    labels: measurement.labels.clone(),
                    last: f64::NAN,
                    stats: ValueStats::new(),
                    series: BoundedSeries::new(METRIC_SERIES_CAPACITY),
                });
                let i = st.metrics.len() - 1;
                st.metric_index.entry(key).or_default().push(i);
                i
            }
        };
        let m = &mut st.metrics[i];
        m.last = measurement.value;
        m.stats.record(measurement.value);
        m.series.push(t_ns, measurement.value);
    }

    /// Attaches a Markdown note to the session (rendered by the HTML and Markdown reports).
    /// After the session was stopped the note is ignored and counted in
    /// `diagnostics.refused_after_stop`.
    pub fn add_note(&mut self, markdown: impl Into<String>) {
        if self.refuse_if_stopped() {
            return;
        }
        let t_ns = self.elapsed_ns();
        let mut st = self.shared.state();
        if st.notes.len() >= MAX_NOTES {
            st.dropped_notes += 1;
            return;
        }
        st.notes.push(Note {
            t_ns,
            text: markdown.into(),
        });
    }

    /// Labels the session (`line = 3`, `station = cell-7`): every report shows them, and
    /// OpenMetrics writes them as labels of every sample. Setting a key again replaces its
    /// value. At most [`MAX_LABELS`](crate::limits::MAX_LABELS) labels; an empty key, or a
    /// label past the limit, is not kept and is counted (`refused_labels`). A key or value
    /// longer than [`MAX_LABEL_BYTES`](crate::limits::MAX_LABEL_BYTES) is cut there and
    /// ends with `…` (OpenMetrics repeats labels on every sample).
    pub fn set_label(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = cut(key.into());
        let value = cut(value.into());
        let mut st = self.shared.state();
        if key.is_empty() || (st.labels.len() >= MAX_LABELS && !st.labels.contains_key(&key)) {
            st.refused_labels += 1;
            return;
        }
        st.labels.insert(key, value);
    }

    /// Sets the frame budget of the source `source` (a camera, a stream): a frame whose
    /// latency (capture → finish) exceeds it is *missed*, counted, blamed on a stage, and
    /// kept whole if it is among the worst (see `Report::frames`). `Duration::ZERO` removes
    /// the budget. For a camera at 60 fps, the frame period: 16.667 ms.
    pub fn set_frame_budget(&mut self, source: &str, budget: Duration) {
        let id = recorder::intern(source);
        let ns = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
        self.core.drain().frames.set_frame_budget(id, ns);
    }

    /// Sets the budget of the stage `stage` (any source): a run longer than it counts as
    /// over budget, and a missed frame is blamed on the stage that overran its budget the
    /// most. `Duration::ZERO` removes the budget.
    pub fn set_stage_budget(&mut self, stage: &str, budget: Duration) {
        let id = recorder::intern(stage);
        let ns = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
        self.core.drain().frames.set_stage_budget(id, ns);
    }

    /// Starts a trace capture: every span and frame from now on, for `window` (or until the
    /// session stops), is kept for timeline viewers — the `trace` sink writes it as
    /// `trace.json`, which Perfetto and `chrome://tracing` open. The recording threads do
    /// nothing more while it runs (the aggregator keeps the capture) and the statistics are
    /// untouched. At most [`DEFAULT_TRACE_EVENTS`](crate::limits::DEFAULT_TRACE_EVENTS)
    /// spans and frames are kept (see [`capture_trace_with_limit`](Self::capture_trace_with_limit));
    /// past it they are counted as dropped and the trace says so. A new capture replaces the
    /// previous one.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut session = heimdall_perf_core::ProfilingSession::new("line-3");
    /// session.capture_trace(Duration::from_secs(10))?;
    /// {
    ///     let _s = heimdall_perf_core::scope!("detect");
    /// }
    /// let capture = session.report().capture.unwrap();
    /// assert_eq!(capture.spans.len(), 1);
    /// # Ok::<(), heimdall_perf_core::PerfError>(())
    /// ```
    pub fn capture_trace(&mut self, window: Duration) -> Result<()> {
        self.capture_trace_with_limit(window, recorder::DEFAULT_TRACE_EVENTS)
    }

    /// [`capture_trace`](Self::capture_trace) keeping at most `max_events` spans and frames.
    pub fn capture_trace_with_limit(&mut self, window: Duration, max_events: usize) -> Result<()> {
        if !self.is_active() {
            self.refused_after_stop += 1;
            return Err(PerfError::SessionStopped {
                session: self.core.name.clone(),
                what: "capture_trace".into(),
            });
        }
        if window.is_zero() {
            return Err(PerfError::InvalidArgument {
                what: "trace capture window".into(),
                detail: "it is zero; give the length of time to capture, e.g. 10 s".into(),
            });
        }
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let start = self.core.clock.raw();
        self.core
            .start_capture(recorder::Capture::new(start, window_ns, max_events), None);
        Ok(())
    }

    /// Starts a trace capture streamed to the file `path`: every span and frame from now
    /// on, for `window` (or until the session stops), appended to the file in batches by the
    /// aggregator thread, so that a window longer than memory allows can be captured. The
    /// file is a Chrome Trace Event file for Perfetto and `chrome://tracing`, complete after
    /// every batch: a process that dies mid-capture leaves a trace of everything up to its
    /// last batch (see the trace crate). At most
    /// [`DEFAULT_STREAM_EVENTS`](crate::limits::DEFAULT_STREAM_EVENTS) spans and frames are
    /// written (see [`stream_trace_with_limit`](Self::stream_trace_with_limit)); past it,
    /// and whenever the aggregator falls more than a batch behind, they are counted as
    /// dropped, and the file's closing record says how many. The report's
    /// [`capture`](crate::Report::capture) tells where the stream went and how far it got
    /// ([`StreamedTrace`](crate::StreamedTrace)). A new capture closes this one.
    ///
    /// Needs the trace writer in the registry (the facade's `trace` feature). A file that
    /// cannot be created is an error naming it.
    pub fn stream_trace(&mut self, path: impl AsRef<Path>, window: Duration) -> Result<()> {
        self.stream_trace_with_limit(path, window, recorder::DEFAULT_STREAM_EVENTS)
    }

    /// [`stream_trace`](Self::stream_trace) writing at most `max_events` spans and frames.
    pub fn stream_trace_with_limit(
        &mut self,
        path: impl AsRef<Path>,
        window: Duration,
        max_events: u64,
    ) -> Result<()> {
        let path = path.as_ref();
        if !self.is_active() {
            self.refused_after_stop += 1;
            return Err(PerfError::SessionStopped {
                session: self.core.name.clone(),
                what: "stream_trace".into(),
            });
        }
        if window.is_zero() {
            return Err(PerfError::InvalidArgument {
                what: "trace capture window".into(),
                detail: "it is zero; give the length of time to capture, e.g. 10 min".into(),
            });
        }
        let factory = self
            .registry
            .trace_stream()
            .ok_or_else(|| PerfError::Unavailable {
                what: "streaming a trace capture".into(),
                hint: self.registry.hint(Missing::TraceStream).unwrap_or_else(|| {
                    "register a writer with `Registry::set_trace_stream`".into()
                }),
            })?;
        // Streaming again into the file of the stream that runs: that one is closed first,
        // or both would write the same file.
        if let Some(old) = self.core.open_stream_path() {
            if same_file(&old, path) {
                self.core.close_stream("replaced");
            }
        }
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let start = self.core.clock.raw();
        let header = StreamHeader {
            session: self.core.name.clone(),
            host: crate::util::hostname(),
            pid: std::process::id(),
            started_at: crate::util::rfc3339(self.core.start_unix_ns),
            start_unix_ns: self.core.start_unix_ns,
            labels: self.shared.state().labels.clone(),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            start_ns: self.core.clock.delta_as_nanos(self.core.start_raw, start),
            window_ns,
            max_events,
        };
        let out = factory(path, &header).map_err(|source| PerfError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.core.start_capture(
            recorder::Capture::streamed(
                start,
                window_ns,
                recorder::DEFAULT_TRACE_EVENTS,
                max_events,
            ),
            Some(recorder::StreamState::new(out, path.to_path_buf())),
        );
        // The aggregator may be in a wait of up to a second: it plans its next passes
        // around the window's end from a pass now.
        self.core.wake_aggregator();
        Ok(())
    }

    /// Sets how many incidents (the worst missed frames, kept whole) the session keeps:
    /// [`DEFAULT_MAX_INCIDENTS`](crate::limits::DEFAULT_MAX_INCIDENTS) unless told
    /// otherwise; 0 keeps none.
    pub fn set_max_incidents(&mut self, n: usize) {
        self.core.drain().frames.set_max_incidents(n);
    }

    /// Sets the interval of `start_system_metrics` (default 1 s; at least 10 ms).
    pub fn set_sampling_interval(&mut self, interval: Duration) -> Result<()> {
        check_interval(interval)?;
        self.sampling_interval = interval;
        Ok(())
    }

    /// Starts sampling system and process metrics in the background, at the sampling
    /// interval. Needs a system sampler in the registry (the facade's `system` feature).
    pub fn start_system_metrics(&mut self) -> Result<()> {
        let factory = self
            .registry
            .system_source()
            .ok_or_else(|| PerfError::NoSystemSampler {
                session: self.core.name.clone(),
                hint: self
                    .registry
                    .hint(Missing::SystemSampler)
                    .unwrap_or_else(|| "register one with `Registry::set_system_source`".into()),
            })?;
        let source = factory()?;
        self.start_periodic(source, self.sampling_interval)
    }

    /// Starts a periodic source, sampled every `interval` (at least 10 ms) until the session
    /// stops, at once first. One source of a given name at a time. A source gets a thread
    /// of its own, unless it is [quick](PeriodicSource::is_quick): then the session's
    /// aggregator thread samples it between its passes (one wake-up for both).
    pub fn start_periodic(
        &mut self,
        source: Box<dyn PeriodicSource>,
        interval: Duration,
    ) -> Result<()> {
        check_interval(interval)?;
        // Read once: a name that changes from call to call is checked and registered the
        // same.
        let name = source.name().to_string();
        if self.stopped_at.is_some() {
            // Its thread would never be stopped.
            return Err(self.stopped_error(format!("starting the source `{name}`")));
        }
        if self.samplers.iter().any(|s| s.name == name) || self.quick.contains(&name) {
            return Err(PerfError::SourceAlreadyRunning {
                session: self.core.name.clone(),
                source_name: name,
            });
        }
        // Without an aggregator thread (it could not be started), a thread of its own.
        if source.is_quick() && self.drain.is_some() {
            self.quick.add(source, &name, interval);
            self.core.wake_aggregator();
            return Ok(());
        }
        let sampler = Sampler::spawn(
            source,
            name,
            interval,
            Arc::clone(&self.shared.series),
            self.core.start_instant,
        )?;
        self.samplers.push(sampler);
        Ok(())
    }

    /// Stops the periodic source `name` and waits for its thread (or, for a quick source,
    /// for its round under way). Returns whether it ran.
    pub fn stop_periodic(&mut self, name: &str) -> bool {
        if self.quick.remove(name) {
            return true;
        }
        let before = self.samplers.len();
        self.samplers.retain_mut(|s| {
            if s.name == name {
                s.stop();
                false
            } else {
                true
            }
        });
        before != self.samplers.len()
    }

    /// Stops the session: samplers are stopped and joined, `scope!` moves to the previous
    /// active session, and the duration is fixed. Idempotent. What was recorded can still be
    /// read through [`report`](Self::report) afterwards; nothing more is recorded (later
    /// calls are refused and counted in `diagnostics.refused_after_stop`).
    pub fn stop(&mut self) {
        if self.stopped_at.is_some() {
            return;
        }
        for s in &mut self.samplers {
            s.stop();
        }
        self.samplers.clear();
        self.quick.clear();
        recorder::deactivate(self.core.id);
        if let Some(aggregator) = self.drain.take() {
            aggregator.stop();
        }
        self.core.freeze();
        self.core.flush_stream(Some("stopped"));
        let now = Instant::now();
        self.stopped_at = Some(now);
        let _ = self.shared.stopped_at.set(now);
        if let Some((tx, handle)) = self.textfile.take() {
            // It writes once more, the stopped session, and ends.
            drop(tx);
            let _ = handle.join();
        }
    }

    fn elapsed_ns(&self) -> u64 {
        self.shared.elapsed_ns()
    }

    /// A snapshot of everything recorded so far. Spans still open are not included (they
    /// are counted in `diagnostics.open_spans`).
    pub fn report(&self) -> Report {
        self.shared.snapshot(self.refused_after_stop)
    }

    /// Writes the session's live metrics into `dir`, a node_exporter textfile-collector
    /// folder (`--collector.textfile.directory`), every `interval` (at least 10 ms) on a
    /// thread of its own, and once more when the session stops: the file
    /// `<session>.prom` (the name sanitised), in the Prometheus text format without
    /// timestamps, spans merged across threads, replaced atomically (a temporary file in
    /// the same folder, not ending with `.prom`, then a rename).
    ///
    /// It needs an exposition in the registry (the facade's `openmetrics` feature). A
    /// folder that is missing or not a folder, or a first write that fails, is an error
    /// naming the path; a later write that fails is counted in
    /// `diagnostics.sampler_failures` (`textfile/<file>`) and tried again at the next
    /// interval. One exporter per session, and one session per file: another session of
    /// the process whose name gives the same file in the same folder (`line/3`, `line:3`)
    /// is [`PerfError::TextfileInUse`] until this session's exporter stops. The rename
    /// replaces whatever is at the file's path: a symbolic link planted there is replaced,
    /// never followed.
    pub fn export_textfile(&mut self, dir: impl AsRef<Path>, interval: Duration) -> Result<()> {
        check_interval(interval)?;
        if self.stopped_at.is_some() {
            return Err(self.stopped_error("export_textfile".into()));
        }
        if self.textfile.is_some() {
            return Err(PerfError::SourceAlreadyRunning {
                session: self.core.name.clone(),
                source_name: "textfile".into(),
            });
        }
        self.textfile = Some(crate::textfile::start(
            Arc::clone(&self.shared),
            Arc::clone(&self.registry),
            dir.as_ref(),
            interval,
        )?);
        Ok(())
    }

    /// What this session shares with lock-free readers (the live endpoint, the textfile
    /// exporter).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Renders a snapshot into `path` with the sink registered for `format`: a format id
    /// (`"json"`, a plugin's id) or anything that gives one, such as the facade's
    /// `ReportFormat::Html`. The file is written atomically: on any error the previous file
    /// at `path` is left whole.
    pub fn save_report(&self, path: impl AsRef<Path>, format: impl AsRef<str>) -> Result<()> {
        let format = format.as_ref();
        // Look the sink up first so that a missing format costs no snapshot.
        self.registry.sink(format)?;
        self.registry
            .render_to_file(&self.report(), path.as_ref(), format)
    }

    /// Writes the flamegraph of the span tree to `path`: the report in the format
    /// `flamegraph` (the facade's `flame` feature registers it).
    ///
    /// The spec calls this on the session itself, so it has to be a method here; it is the
    /// one place perf-core names a format id. perf-flame's `FORMAT_ID` is the same string,
    /// and a test of the facade holds the two equal.
    pub fn generate_flamegraph(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_report(path, FLAMEGRAPH_FORMAT_ID)
    }
}

impl Shared {
    /// The session's name.
    pub(crate) fn name(&self) -> &str {
        &self.core.name
    }

    /// Whether the session has not been stopped.
    pub(crate) fn is_active(&self) -> bool {
        self.stopped_at.get().is_none()
    }

    fn elapsed_ns(&self) -> u64 {
        let end = self.stopped_at.get().copied().unwrap_or_else(Instant::now);
        u64::try_from(end.duration_since(self.core.start_instant).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts a failed read or write of a background figure (`diagnostics.sampler_failures`).
    pub(crate) fn count_failure(&self, figure: &str) {
        let mut store = self.series.lock().unwrap_or_else(|e| e.into_inner());
        *store.failures.entry(figure.to_string()).or_insert(0) += 1;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot of everything recorded so far (see [`ProfilingSession::report`]), taken
    /// without the session's lock: the live endpoint and the textfile exporter call it while
    /// the recording threads go on.
    pub(crate) fn snapshot(&self, refused_after_stop: u64) -> Report {
        // Before the aggregate: the stream's lock comes first.
        let streamed = self.core.stream_status();
        let agg = self.core.drain_settled();
        let threads = self.core.lane_threads();
        let name_cache: FxHashMap<u32, String> = FxHashMap::default();
        let mut name_cache = name_cache;
        let mut name = |id: u32| -> String {
            name_cache
                .entry(id)
                .or_insert_with(|| recorder::name_of(id).to_string())
                .clone()
        };

        let paths = agg.paths();
        let mut spans: Vec<(usize, SpanStats)> = Vec::with_capacity(paths.len());
        let mut totals: BTreeMap<Vec<u32>, (DurationStats, u64)> = BTreeMap::new();
        for p in &paths {
            if p.stats.count() == 0 {
                // Entered but never completed yet (still open): nothing to report.
                continue;
            }
            let thread = threads.get(&p.lane);
            spans.push((
                p.slot,
                SpanStats {
                    thread_id: thread.map(|t| t.thread_id),
                    thread: thread.map(|t| t.thread_name.clone()),
                    path: p.names.iter().map(|&n| name(n)).collect(),
                    count: p.stats.count(),
                    total_ns: p.stats.total(),
                    self_ns: p.self_ns,
                    duration: p.stats.summary(),
                    histogram: p.stats.buckets(HISTOGRAM_FIRST_BUCKET_NS),
                },
            ));
            let e = totals
                .entry(p.names.clone())
                .or_insert_with(|| (DurationStats::new(), 0));
            e.0.merge(p.stats);
            e.1 = e.1.saturating_add(p.self_ns);
        }
        spans.sort_by(|(_, a), (_, b)| (a.thread_id, &a.path).cmp(&(b.thread_id, &b.path)));
        let mut remap = vec![0usize; agg.slots()];
        for (new, (old, _)) in spans.iter().enumerate() {
            remap[*old] = new;
        }
        let timeline = agg
            .timeline(&self.core.clock, self.core.start_raw)
            .map(|t| crate::report::TimelineSpan {
                span: remap[t.span],
                ..t
            })
            .collect();
        let capture = agg.frames.capture.as_ref().map(|c| {
            let start_ns = if c.start > self.core.start_raw {
                self.core.clock.delta_as_nanos(self.core.start_raw, c.start)
            } else {
                0
            };
            let planned_end = start_ns.saturating_add(c.window_ns);
            let now = self.elapsed_ns();
            if c.streamed.is_some() {
                // The spans and frames are in the file (those of the current batch are on
                // their way there).
                let streamed = streamed.clone().unwrap_or_default();
                let limit = c.streamed.as_ref().map_or(0, |s| s.limit);
                return crate::report::TraceCapture {
                    start_ns,
                    end_ns: planned_end.min(now),
                    open: streamed.closed.is_none() && self.is_active() && now < planned_end,
                    max_events: limit,
                    dropped: c.dropped.saturating_add(streamed.lost),
                    streamed: Some(streamed),
                    ..Default::default()
                };
            }
            crate::report::TraceCapture {
                start_ns,
                end_ns: planned_end.min(now),
                open: self.is_active() && now < planned_end,
                spans: c.spans.clone(),
                paths: c
                    .paths
                    .iter()
                    .map(|p| {
                        let thread = threads.get(&p.lane).or_else(|| c.gone.get(&p.lane));
                        crate::report::CapturedPath {
                            thread_id: thread.map_or(recorder::EXITED_THREADS_ID, |t| t.thread_id),
                            thread: thread.map_or_else(
                                || recorder::EXITED_THREADS_NAME.to_string(),
                                |t| t.thread_name.clone(),
                            ),
                            path: p.names.iter().map(|&n| name(n)).collect(),
                        }
                    })
                    .collect(),
                frames: agg
                    .frames
                    .captured_frames(&threads, &self.core.clock, self.core.start_raw),
                max_events: c.max_events as u64,
                dropped: c.dropped,
                streamed: None,
            }
        });
        let mut span_totals: Vec<SpanStats> = totals
            .into_iter()
            .map(|(names, (stats, self_ns))| SpanStats {
                thread_id: None,
                thread: None,
                path: names.iter().map(|&n| name(n)).collect(),
                count: stats.count(),
                total_ns: stats.total(),
                self_ns,
                duration: stats.summary(),
                histogram: stats.buckets(HISTOGRAM_FIRST_BUCKET_NS),
            })
            .collect();
        span_totals.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.path.cmp(&b.path)));
        let recording = Diagnostics {
            unmatched_frame_events: agg.frames.unmatched,
            unrecorded_frame_events: agg.frames.unrecorded,
            abandoned_frames: agg.frames.abandoned,
            ..agg.counts.clone()
        };
        let mut frames = agg.frames.report(
            &threads,
            &self.core.clock,
            self.core.start_raw,
            HISTOGRAM_FIRST_BUCKET_NS,
        );
        drop(paths);
        drop(agg);

        let (series, sampler_failures) = {
            let store = self.series.lock().unwrap_or_else(|e| e.into_inner());
            (store.to_report(), store.failures.clone())
        };
        attach_system_figures(&mut frames, &series);
        let mut used_threads: Vec<ThreadInfo> = threads
            .values()
            .map(|t| ThreadInfo {
                id: t.thread_id,
                name: t.thread_name.clone(),
            })
            .collect();
        used_threads.sort_by_key(|t| t.id);
        used_threads.dedup_by_key(|t| t.id);

        let st = self.state();
        Report {
            schema_version: SCHEMA_VERSION,
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            session: SessionInfo {
                name: self.core.name.clone(),
                host: crate::util::hostname(),
                pid: std::process::id(),
                start_unix_ns: self.core.start_unix_ns,
                started_at: crate::util::rfc3339(self.core.start_unix_ns),
                duration_ns: self.elapsed_ns(),
                active: self.is_active(),
                labels: st.labels.clone(),
            },
            threads: used_threads,
            spans: spans.into_iter().map(|(_, s)| s).collect(),
            span_totals,
            metrics: st
                .metrics
                .iter()
                .map(|m| MetricReport {
                    name: m.name.clone(),
                    metric_type: m.metric_type.clone(),
                    unit: m.unit.clone(),
                    labels: m.labels.clone(),
                    last: m.last,
                    non_finite: m.stats.non_finite(),
                    summary: m.stats.summary(),
                    points: m.series.points().to_vec(),
                })
                .collect(),
            series,
            notes: st.notes.clone(),
            timeline,
            frames,
            capture,
            diagnostics: Diagnostics {
                open_spans: self.core.open_spans(),
                refused_after_stop,
                dropped_measurements: st.dropped_measurements,
                dropped_notes: st.dropped_notes,
                refused_labels: st.refused_labels,
                sampler_failures,
                ..recording
            },
            stations: Vec::new(),
        }
    }
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return (a.dev(), a.ino()) == (b.dev(), b.ino());
        }
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Gives each incident the latest system figures at its capture time: the last point of
/// each system series at or before it (none when the series no longer reaches back).
fn attach_system_figures(
    frames: &mut [crate::report::FrameReport],
    series: &[crate::report::TimeSeries],
) {
    let system: Vec<&crate::report::TimeSeries> =
        series.iter().filter(|s| s.source == "system").collect();
    if system.is_empty() {
        return;
    }
    for incident in frames.iter_mut().flat_map(|f| f.incidents.iter_mut()) {
        for s in &system {
            let at = s.points.partition_point(|p| p.t_ns <= incident.capture_ns);
            if let Some(p) = at.checked_sub(1).and_then(|i| s.points.get(i)) {
                incident.system.push(crate::report::SystemFigure {
                    name: s.name.clone(),
                    unit: s.unit.clone(),
                    value: p.last,
                    t_ns: p.t_ns,
                });
            }
        }
    }
}

impl Drop for ProfilingSession {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The index key of a metric: its name and label set, hashed without allocating.
fn metric_key(name: &str, labels: &BTreeMap<String, String>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    name.hash(&mut h);
    labels.hash(&mut h);
    h.finish()
}

fn current_thread_name() -> String {
    std::thread::current()
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:?}", std::thread::current().id()))
}

/// The session's background aggregator thread, and how to stop it.
struct Aggregator {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Aggregator {
    /// Stops the thread after its current pass, and waits for it.
    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.handle.thread().unpark();
        let _ = self.handle.join();
    }
}

/// The background aggregator: drains the session's lanes at the pace they bring events
/// ([`next_drain_wait`]), and at once when a lane runs
/// [`BACKLOG_WAKE`](recorder::BACKLOG_WAKE) chunks ahead (the lane's writer unparks it).
/// A frame settles on the pass after the one that read its end. An open streamed window
/// gets a pass at its end and two more 10 ms apart, which close it.
///
/// It also samples the session's [quick](PeriodicSource::is_quick) sources when their
/// rounds are due, before the pass. A wake-up for a round takes a pass too if half the
/// pace has gone by since the last one: a 60 fps line with a source at 1 s (both a second
/// apart) wakes the thread once a second for both, not twice.
fn spawn_drain(core: &Arc<SessionCore>, quick: &Arc<QuickSources>) -> Option<Aggregator> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let weak = Arc::downgrade(core);
    let quick = Arc::clone(quick);
    let due_tick = Arc::clone(&core.due);
    let handle = std::thread::Builder::new()
        .name(format!("heimdall-perf-aggregator-{}", core.id))
        .spawn(move || {
            // The wait the events call for and when the next pass is due, and when the
            // next round of a quick source is.
            let mut pacing = Pacing::new(Instant::now());
            let mut round_at: Option<Instant> = None;
            loop {
                let due = round_at.map_or(pacing.pass_at, |r| r.min(pacing.pass_at));
                let now = Instant::now();
                if due > now {
                    let wait = due - now;
                    // Woken on time most often by the line: by its first frame record
                    // past the due tick (`DueTick`); by the timer, a little later, when
                    // the line is quiet. Woken early by a lane running ahead, a new
                    // streamed window, a new source (or spuriously): a pass either way.
                    if let Some(core) = weak.upgrade() {
                        core.due.arm(core.tick_in(wait));
                    }
                    std::thread::park_timeout(wait + line_grace(wait));
                    due_tick.disarm();
                }
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                let Some(core) = weak.upgrade() else { break };
                let now = Instant::now();
                let early = now < due;
                round_at = quick.sample_due(now);
                if !pacing.takes_pass(now, early) {
                    // A round alone, with the pass still far.
                    continue;
                }
                let before = core.events_read();
                drop(core.drain());
                // A streamed capture is written here, off the recording threads.
                core.flush_stream(None);
                let read = core.events_read().wrapping_sub(before);
                pacing.passed(Instant::now(), read, core.stream_due());
            }
        })
        // Without the thread, lanes still drain themselves when they fill up, and on every
        // snapshot: recording stays correct, only a little less smooth.
        .ok()?;
    core.set_aggregator(handle.thread().clone());
    Some(Aggregator { stop, handle })
}

/// How much later than its due time the background aggregator's own timer wakes it, for a
/// wait of `wait`: time for a running line's frame record to wake it first (a 60 fps line
/// records one every 17 ms), which costs less CPU than the timer's wake-up. A sixteenth of
/// the wait, at most 50 ms: rounds stay on their schedule (each is due an interval after
/// the one before, not after it was taken), a quiet line's at most 50 ms late.
fn line_grace(wait: Duration) -> Duration {
    (wait / 16).min(Duration::from_millis(50))
}

/// When the background aggregator passes: the wait the events call for
/// ([`next_drain_wait`]), and when the next pass is due.
#[derive(Debug, Clone, Copy)]
struct Pacing {
    /// The wait between passes the events call for.
    pace: Duration,
    /// The end of the last pass.
    last_pass: Instant,
    /// When the next pass is due (sooner when a streamed window ends sooner).
    pass_at: Instant,
}

impl Pacing {
    fn new(now: Instant) -> Self {
        let pace = recorder::DRAIN_INTERVAL;
        Pacing {
            pace,
            last_pass: now,
            pass_at: now + pace,
        }
    }

    /// Whether a wake-up at `now` takes a pass: woken before its time (`early`: a lane
    /// running ahead, a new streamed window or source), at the pass's time, or for a round
    /// of a quick source with half the pace gone by since the last pass.
    fn takes_pass(&self, now: Instant, early: bool) -> bool {
        early || now >= self.pass_at || now.duration_since(self.last_pass) >= self.pace / 2
    }

    /// After a pass that ended at `now` and read `read` events; `stream_due` is how soon an
    /// open streamed window needs the next.
    fn passed(&mut self, now: Instant, read: u64, stream_due: Option<Duration>) {
        let since = now.duration_since(self.last_pass);
        // A pass well before its time that read nothing (woken by a new streamed window
        // or source) says nothing of the pace. One taken with a quick source's round, at
        // half the pace or later, does: nothing came for that long. (Waiting for a whole
        // pace, the rounds of a source every 10 ms would keep the pace from ever growing:
        // a pass every round or two on an idle line.)
        if read > 0 || since >= self.pace / 2 {
            self.pace = next_drain_wait(self.pace, read, since);
        }
        // An open streamed window gets its passes at its end, not a second later.
        self.pass_at = now + stream_due.map_or(self.pace, |due| self.pace.min(due));
        self.last_pass = now;
    }
}

/// The background aggregator's wait before its next pass, after a pass that read `read`
/// events `since` the pass before (whose wait was `wait`):
///
/// * nothing read: twice the wait, up to [`IDLE_DRAIN_INTERVAL`](recorder::IDLE_DRAIN_INTERVAL);
/// * otherwise the time the lanes take to bring about a chunk
///   ([`CHUNK_EVENTS`](recorder::CHUNK_EVENTS) events) at the rate just seen, within
///   [`DRAIN_INTERVAL`](recorder::DRAIN_INTERVAL) and `IDLE_DRAIN_INTERVAL`. Each pass costs
///   a wake-up and a walk over the lanes whatever it reads: a 60 fps line (a few thousand
///   events a second) gets one pass a second, a line recording millions of spans a
///   second a pass every 10 ms.
fn next_drain_wait(wait: Duration, read: u64, since: Duration) -> Duration {
    let (shortest, longest) = (recorder::DRAIN_INTERVAL, recorder::IDLE_DRAIN_INTERVAL);
    if read == 0 {
        return (wait.saturating_mul(2)).clamp(shortest, longest);
    }
    let per_chunk = since.as_nanos() * recorder::CHUNK_EVENTS as u128 / u128::from(read);
    Duration::from_nanos(u64::try_from(per_chunk).unwrap_or(u64::MAX)).clamp(shortest, longest)
}

#[cfg(test)]
mod tests {
    use super::{next_drain_wait, Pacing, ProfilingSession};
    use crate::periodic::{PeriodicSource, Samples};
    use crate::recorder::{FrameSource, CHUNK_EVENTS, DRAIN_INTERVAL, IDLE_DRAIN_INTERVAL};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A quick source counting its rounds.
    struct Rounds(Arc<AtomicU64>);

    impl PeriodicSource for Rounds {
        fn name(&self) -> &str {
            "rounds"
        }
        fn sample(&mut self, out: &mut Samples<'_>) {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            out.record("rounds", "rounds", n as f64);
        }
        fn is_quick(&self) -> bool {
            true
        }
    }

    /// Wake-ups of the aggregator taken by the line over four rounds 200 ms apart, with a
    /// thread recording a frame every 2 ms into the session meanwhile, or not. (Frames
    /// go to the session by its id, not the process's current one: other tests' sessions
    /// come and go.)
    fn line_wakes(name: &str, frames: bool) -> u64 {
        let mut session = ProfilingSession::new(name);
        let sid = session.core.id;
        let rounds = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let line = frames.then(|| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let source = FrameSource::new("line-wake-unit");
                let mut id = 0;
                while !stop.load(Ordering::Relaxed) {
                    source.begin_in(sid, id).finish();
                    id += 1;
                    std::thread::sleep(2 * MS);
                }
            })
        });
        session
            .start_periodic(Box::new(Rounds(Arc::clone(&rounds))), 200 * MS)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while rounds.load(Ordering::SeqCst) < 5 {
            assert!(Instant::now() < deadline, "{name}: the rounds did not come");
            std::thread::sleep(10 * MS);
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(line) = line {
            line.join().unwrap();
        }
        let taken = session.core.due.taken();
        session.stop();
        taken
    }

    #[test]
    fn a_line_recording_frames_wakes_the_aggregator_and_a_quiet_one_does_not() {
        // Four rounds due after the first, and the passes between: a loaded machine may
        // let the timer win some, not all.
        let by_line = line_wakes("line-wake-frames", true);
        assert!(by_line >= 2, "the line woke the aggregator {by_line} times");
        assert_eq!(
            line_wakes("line-wake-quiet", false),
            0,
            "no frame, no line wake-up"
        );
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_aggregator_waits_for_about_a_chunk_of_events() {
        let chunk = CHUNK_EVENTS as u64;
        // A 60 fps line: a few thousand events a second, the longest wait (1 s).
        assert_eq!(next_drain_wait(10 * MS, 30, 10 * MS), IDLE_DRAIN_INTERVAL);
        assert_eq!(IDLE_DRAIN_INTERVAL, 1000 * MS);
        // A chunk in 700 ms: 700 ms.
        assert_eq!(next_drain_wait(10 * MS, chunk, 700 * MS), 700 * MS);
        // A chunk in 40 ms: 40 ms.
        assert_eq!(next_drain_wait(10 * MS, chunk, 40 * MS), 40 * MS);
        // Half a chunk in 30 ms: 60 ms.
        assert_eq!(next_drain_wait(10 * MS, chunk / 2, 30 * MS), 60 * MS);
        // Millions a second: the shortest wait, even right after the longest one.
        assert_eq!(
            next_drain_wait(IDLE_DRAIN_INTERVAL, 2_000_000, IDLE_DRAIN_INTERVAL),
            DRAIN_INTERVAL
        );
        // Nothing: twice the wait, within the bounds.
        assert_eq!(next_drain_wait(10 * MS, 0, 10 * MS), 20 * MS);
        assert_eq!(next_drain_wait(640 * MS, 0, 640 * MS), IDLE_DRAIN_INTERVAL);
        assert_eq!(next_drain_wait(Duration::ZERO, 0, MS), DRAIN_INTERVAL);
        // Odd inputs stay in bounds.
        assert_eq!(
            next_drain_wait(Duration::MAX, 0, Duration::MAX),
            IDLE_DRAIN_INTERVAL
        );
        assert_eq!(
            next_drain_wait(10 * MS, 1, Duration::MAX),
            IDLE_DRAIN_INTERVAL
        );
        assert_eq!(
            next_drain_wait(10 * MS, u64::MAX, Duration::ZERO),
            DRAIN_INTERVAL
        );
    }

    /// An idle line and a quick source every 10 ms: the rounds wake the aggregator every
    /// 10 ms, but its passes find nothing and their pace grows to the longest, a pass about
    /// every half of it, not a pass a round. Each wake-up comes a little after its round
    /// and each pass takes a little time, as on a real machine.
    #[test]
    fn a_quick_source_every_10_ms_does_not_pace_the_passes_of_an_idle_line() {
        let t0 = std::time::Instant::now();
        let mut pacing = Pacing::new(t0);
        let mut passes = Vec::new();
        for round in 1..=1000u32 {
            // Late by 40 to 80 µs, a pass of 20 µs.
            let wake = t0 + round * 10 * MS + Duration::from_micros(40 + u64::from(round % 5) * 10);
            if pacing.takes_pass(wake, false) {
                pacing.passed(wake + Duration::from_micros(20), 0, None);
                passes.push(wake);
            }
        }
        // 10 s: a ramp of a few passes, then one every 500 ms.
        let last_5s = passes.iter().filter(|&&t| t >= t0 + 5000 * MS).count();
        assert!(
            passes.len() <= 40 && last_5s <= 11,
            "{} passes in 10 s, {last_5s} in the last 5 s",
            passes.len()
        );
        assert!(pacing.pace >= 500 * MS, "{:?}", pacing.pace);

        // Without quick sources, the passes alone: about one a second once idle.
        let mut pacing = Pacing::new(t0);
        let mut passes = 0;
        let mut now = t0;
        while now < t0 + 10_000 * MS {
            now = pacing.pass_at + Duration::from_micros(60);
            assert!(pacing.takes_pass(now, false));
            pacing.passed(now + Duration::from_micros(20), 0, None);
            passes += 1;
        }
        assert!((10..=17).contains(&passes), "{passes} passes in 10 s");
    }
}
