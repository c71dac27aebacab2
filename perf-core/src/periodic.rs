//! Periodic sources: figures read at a fixed interval on a background thread owned by the
//! session (system metrics, a camera queue depth…), kept in bounded, downsampled series.
//!
//! A source gets a thread of its own, unless it says it is quick
//! ([`PeriodicSource::is_quick`]): quick sources are sampled on the session's aggregator
//! thread, which then wakes once for its drain pass and their rounds. A wake-up of an idle
//! thread alone costs tens of microseconds of CPU on a virtual machine (48 µs measured on
//! the benchmark VM), so on a 60 fps line that is most of what a source costs.
//!
//! ```
//! use heimdall_perf_core::{PeriodicSource, ProfilingSession, Samples};
//! use std::time::Duration;
//!
//! struct QueueDepth;
//! impl PeriodicSource for QueueDepth {
//!     fn name(&self) -> &str { "camera" }
//!     fn sample(&mut self, out: &mut Samples<'_>) { out.record("camera.queue_depth", "frames", 3.0); }
//! }
//!
//! let mut session = ProfilingSession::new("doc");
//! session.start_periodic(Box::new(QueueDepth), Duration::from_millis(10)).unwrap();
//! std::thread::sleep(Duration::from_millis(50));
//! session.stop();
//! let report = session.report();
//! assert!(report.series("camera.queue_depth").unwrap().points.len() >= 2);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{PerfError, Result};
use crate::report::{SeriesPoint, TimeSeries};

/// The shortest sampling interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// How many points a series keeps before it halves its resolution.
pub const SERIES_CAPACITY: usize = 2048;

/// Something read at a fixed interval.
pub trait PeriodicSource: Send {
    /// Name of the source (e.g. `system`); one source of a name runs at a time per session.
    fn name(&self) -> &str;
    /// Reads the figures now and records them in `out`. A figure that cannot be read is
    /// reported with [`Samples::failed`] and skipped.
    fn sample(&mut self, out: &mut Samples<'_>);

    /// Whether [`sample`](Self::sample) always returns within about a millisecond: it reads
    /// memory, an atomic or a few `/proc` files, and never waits on a device, the network or
    /// a lock held for long. A quick source is sampled on the session's aggregator thread
    /// (one wake-up for both, and no thread of its own); a slow one there would delay the
    /// aggregator's passes (nothing is lost: the recording threads then drain their own
    /// lanes, at their cost). Default `false`: a thread of its own.
    ///
    /// ```
    /// use heimdall_perf_core::{PeriodicSource, Samples};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// /// Reads an atomic the camera thread keeps up to date: quick.
    /// struct QueueDepth(Arc<AtomicUsize>);
    /// impl PeriodicSource for QueueDepth {
    ///     fn name(&self) -> &str { "camera" }
    ///     fn sample(&mut self, out: &mut Samples<'_>) {
    ///         out.record("camera.queue_depth", "frames", self.0.load(Ordering::Relaxed) as f64);
    ///     }
    ///     fn is_quick(&self) -> bool { true }
    /// }
    /// assert!(QueueDepth(Arc::default()).is_quick());
    /// ```
    fn is_quick(&self) -> bool {
        false
    }
}

/// Makes a new periodic source (how a sampler crate registers itself).
pub type SourceFactory = Arc<dyn Fn() -> Result<Box<dyn PeriodicSource>> + Send + Sync>;

/// Where a [`PeriodicSource`] records one round of readings.
pub struct Samples<'a> {
    store: &'a mut SeriesStore,
    source: &'a str,
    t_ns: u64,
}

impl Samples<'_> {
    /// Records `value` (in `unit`) for the series `series` at this round's time.
    pub fn record(&mut self, series: &str, unit: &str, value: f64) {
        self.store.push(self.source, series, unit, self.t_ns, value);
    }

    /// Counts a figure that could not be read this round.
    pub fn failed(&mut self, series: &str) {
        *self
            .store
            .failures
            .entry(format!("{}/{}", self.source, series))
            .or_insert(0) += 1;
    }

    /// This round's time, nanoseconds from the session start.
    pub fn t_ns(&self) -> u64 {
        self.t_ns
    }
}

/// A time series in bounded memory. Points are raw samples until the series holds
/// [`SERIES_CAPACITY`] points; then neighbouring points are merged into buckets twice as
/// wide (keeping count, min, max, mean and last), and so on: older data is downsampled,
/// never dropped.
#[derive(Debug, Clone)]
pub struct BoundedSeries {
    capacity: usize,
    width_ns: u64,
    points: Vec<SeriesPoint>,
}

impl BoundedSeries {
    /// An empty series keeping at most `capacity` points (at least 4).
    pub fn new(capacity: usize) -> Self {
        BoundedSeries {
            capacity: capacity.max(4),
            width_ns: 0,
            points: Vec::new(),
        }
    }

    /// Adds a sample taken at `t_ns`. Non-finite values are kept as `last` only.
    pub fn push(&mut self, t_ns: u64, value: f64) {
        if let Some(bucket) = t_ns.checked_div(self.width_ns) {
            if let Some(last) = self.points.last_mut() {
                if bucket == last.t_ns / self.width_ns {
                    merge_point(last, &SeriesPoint::sample(t_ns, value));
                    return;
                }
            }
        }
        let t = t_ns
            .checked_div(self.width_ns)
            .map_or(t_ns, |b| b * self.width_ns);
        self.points.push(SeriesPoint::sample(t, value));
        if self.points.len() > self.capacity {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let (first, last) = match (self.points.first(), self.points.last()) {
            (Some(a), Some(b)) => (a.t_ns, b.t_ns),
            _ => return,
        };
        self.width_ns = if self.width_ns == 0 {
            ((last - first) / (self.capacity as u64 / 2)).max(1)
        } else {
            self.width_ns.saturating_mul(2)
        };
        let w = self.width_ns;
        let mut out: Vec<SeriesPoint> = Vec::with_capacity(self.capacity / 2 + 2);
        for p in self.points.drain(..) {
            match out.last_mut() {
                Some(o) if o.t_ns / w == p.t_ns / w => merge_point(o, &p),
                _ => out.push(SeriesPoint {
                    t_ns: p.t_ns / w * w,
                    ..p
                }),
            }
        }
        self.points = out;
    }

    /// The points, oldest first.
    pub fn points(&self) -> &[SeriesPoint] {
        &self.points
    }

    /// Width of the buckets now, in nanoseconds (0 while points are raw samples).
    pub fn bucket_width_ns(&self) -> u64 {
        self.width_ns
    }
}

fn merge_point(into: &mut SeriesPoint, p: &SeriesPoint) {
    let finite_into = into.mean.is_finite();
    let finite_p = p.mean.is_finite();
    if finite_into && finite_p {
        let n = (into.count + p.count) as f64;
        into.mean = (into.mean * into.count as f64 + p.mean * p.count as f64) / n;
        into.min = into.min.min(p.min);
        into.max = into.max.max(p.max);
    } else if !finite_into && finite_p {
        into.mean = p.mean;
        into.min = p.min;
        into.max = p.max;
    }
    into.count += p.count;
    into.last = p.last;
}

/// The series of one session's periodic sources.
#[derive(Debug, Default)]
pub(crate) struct SeriesStore {
    series: Vec<(String, String, String, BoundedSeries)>,
    /// source → series name → index, looked up with borrowed strings (no allocation per
    /// point once a series exists).
    index: HashMap<String, HashMap<String, usize>>,
    pub(crate) failures: BTreeMap<String, u64>,
}

impl SeriesStore {
    fn push(&mut self, source: &str, series: &str, unit: &str, t_ns: u64, value: f64) {
        let found = self.index.get(source).and_then(|m| m.get(series)).copied();
        let i = match found {
            Some(i) => i,
            None => {
                self.series.push((
                    source.to_string(),
                    series.to_string(),
                    unit.to_string(),
                    BoundedSeries::new(SERIES_CAPACITY),
                ));
                let i = self.series.len() - 1;
                self.index
                    .entry(source.to_string())
                    .or_default()
                    .insert(series.to_string(), i);
                i
            }
        };
        self.series[i].3.push(t_ns, value);
    }

    pub(crate) fn to_report(&self) -> Vec<TimeSeries> {
        self.series
            .iter()
            .map(|(source, name, unit, s)| TimeSeries {
                name: name.clone(),
                unit: unit.clone(),
                source: source.clone(),
                points: s.points().to_vec(),
            })
            .collect()
    }
}

/// A running sampler thread; stopping it (or dropping it) joins the thread.
pub(crate) struct Sampler {
    pub(crate) name: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    pub(crate) fn spawn(
        mut source: Box<dyn PeriodicSource>,
        interval: Duration,
        store: Arc<Mutex<SeriesStore>>,
        t0: Instant,
    ) -> Result<Sampler> {
        let name = source.name().to_string();
        let (tx, rx) = mpsc::channel::<()>();
        let thread_name = format!("heimdall-perf-sampler-{name}");
        let src_name = name.clone();
        let thread = std::thread::Builder::new()
            .name(thread_name.clone())
            .spawn(move || {
                let mut next = Instant::now();
                loop {
                    sample_once(source.as_mut(), &src_name, &store, t0);
                    let now = Instant::now();
                    next = next_round(next, interval, now);
                    match rx.recv_timeout(next - now) {
                        Err(RecvTimeoutError::Timeout) => continue,
                        _ => break,
                    }
                }
            })
            .map_err(|source| PerfError::Thread {
                name: thread_name,
                source,
            })?;
        Ok(Sampler {
            name,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (it wakes at once, not at the next interval).
    pub(crate) fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One round of `source` into `store`, timed from `t0`; a panic is counted as the failed
/// figure `panicked`.
fn sample_once(
    source: &mut dyn PeriodicSource,
    name: &str,
    store: &Mutex<SeriesStore>,
    t0: Instant,
) {
    let t_ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
    let mut samples = Samples {
        store: &mut store,
        source: name,
        t_ns,
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| source.sample(&mut samples)));
    if outcome.is_err() {
        samples.failed("panicked");
    }
}

/// The round after the one due at `due`, read at `now`: one interval later, or one interval
/// from now if that is past (a slow read, a suspended machine: missed rounds are skipped).
fn next_round(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next < now {
        now + interval
    } else {
        next
    }
}

/// How early a quick source may be sampled: a wake-up for a pass due this close to a round
/// takes the round too.
const QUICK_SLACK: Duration = Duration::from_millis(1);

/// A quick source and its rounds.
struct Scheduled {
    name: String,
    source: Box<dyn PeriodicSource>,
    interval: Duration,
    next: Instant,
}

/// The quick sources of a session ([`PeriodicSource::is_quick`]), sampled by its aggregator
/// thread ([`sample_due`](Self::sample_due)) between its drain passes.
pub(crate) struct QuickSources {
    store: Arc<Mutex<SeriesStore>>,
    t0: Instant,
    list: Mutex<Vec<Scheduled>>,
}

impl QuickSources {
    pub(crate) fn new(store: Arc<Mutex<SeriesStore>>, t0: Instant) -> Self {
        QuickSources {
            store,
            t0,
            list: Mutex::new(Vec::new()),
        }
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Scheduled>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `source`, due at once (the aggregator is to be woken for its first round).
    pub(crate) fn add(&self, source: Box<dyn PeriodicSource>, interval: Duration) {
        let name = source.name().to_string();
        self.list().push(Scheduled {
            name,
            source,
            interval,
            next: Instant::now(),
        });
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.list().iter().any(|s| s.name == name)
    }

    /// Takes the source `name` out (after its round, if one is under way).
    pub(crate) fn remove(&self, name: &str) -> Option<Box<dyn PeriodicSource>> {
        let mut list = self.list();
        let i = list.iter().position(|s| s.name == name)?;
        Some(list.remove(i).source)
    }

    /// Takes every source out (after the round under way, if any).
    pub(crate) fn clear(&self) -> Vec<Box<dyn PeriodicSource>> {
        self.list().drain(..).map(|s| s.source).collect()
    }

    /// Samples every source whose round is due by `now` (or within [`QUICK_SLACK`] of it),
    /// one after the other, and returns when the next round is due.
    pub(crate) fn sample_due(&self, now: Instant) -> Option<Instant> {
        let mut list = self.list();
        for s in list.iter_mut() {
            if s.next <= now + QUICK_SLACK {
                sample_once(s.source.as_mut(), &s.name, &self.store, self.t0);
                s.next = next_round(s.next, s.interval, Instant::now());
            }
        }
        list.iter().map(|s| s.next).min()
    }
}

/// Checks a sampling interval.
pub(crate) fn check_interval(interval: Duration) -> Result<()> {
    if interval < MIN_INTERVAL {
        return Err(PerfError::InvalidArgument {
            what: "sampling interval".into(),
            detail: format!(
                "{interval:?} is below the minimum of {MIN_INTERVAL:?} (sampling that often would cost more than it tells)"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_stays_bounded_and_keeps_extremes() {
        let mut s = BoundedSeries::new(64);
        for i in 0..100_000u64 {
            let v = if i == 77_777 { 1e9 } else { (i % 100) as f64 };
            s.push(i * 1_000_000_000, v);
        }
        assert!(s.points().len() <= 64);
        let total: u64 = s.points().iter().map(|p| p.count).sum();
        assert_eq!(total, 100_000);
        let max = s.points().iter().map(|p| p.max).fold(f64::MIN, f64::max);
        assert_eq!(max, 1e9);
        assert!(s.points().windows(2).all(|w| w[0].t_ns < w[1].t_ns));
    }

    #[test]
    fn interval_below_minimum_is_refused() {
        let e = check_interval(Duration::from_millis(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sampling interval"), "{e}");
        assert!(check_interval(Duration::from_millis(10)).is_ok());
    }
}
