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
///
/// The readings are gathered apart from the session's series and added to them after the
/// round: the series are not locked while the source runs, so a report taken meanwhile
/// (even by the source itself) does not wait for the round.
pub struct Samples<'a> {
    out: &'a mut Pending,
    t_ns: u64,
}

impl Samples<'_> {
    /// Records `value` (in `unit`) for the series `series` at this round's time.
    pub fn record(&mut self, series: &str, unit: &str, value: f64) {
        self.out.record(series, unit, value);
    }

    /// Counts a figure that could not be read this round.
    pub fn failed(&mut self, series: &str) {
        self.out.failed(series);
    }

    /// This round's time, nanoseconds from the session start.
    pub fn t_ns(&self) -> u64 {
        self.t_ns
    }
}

/// The readings of one round, before they are added to the series. Its strings are kept
/// from round to round (no allocation per reading once a source's names have been seen).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    values: Vec<Reading>,
    len: usize,
    failed: Vec<String>,
    failed_len: usize,
}

/// A reading of a round, in its place in the round.
#[derive(Debug)]
struct Reading {
    series: String,
    unit: String,
    value: f64,
    /// Where the last flush of this place put its reading in the store: a source records
    /// the same series in the same order each round, so the next reading here most often
    /// goes to the same series, which is then checked rather than looked up (a look-up is
    /// several cache misses after a second asleep).
    at: Option<usize>,
}

impl Pending {
    fn record(&mut self, series: &str, unit: &str, value: f64) {
        match self.values.get_mut(self.len) {
            Some(r) => {
                if r.series != series {
                    r.series.clear();
                    r.series.push_str(series);
                    r.at = None;
                }
                if r.unit != unit {
                    r.unit.clear();
                    r.unit.push_str(unit);
                }
                r.value = value;
            }
            None => self.values.push(Reading {
                series: series.to_string(),
                unit: unit.to_string(),
                value,
                at: None,
            }),
        }
        self.len += 1;
    }

    fn failed(&mut self, series: &str) {
        match self.failed.get_mut(self.failed_len) {
            Some(s) => {
                s.clear();
                s.push_str(series);
            }
            None => self.failed.push(series.to_string()),
        }
        self.failed_len += 1;
    }

    /// Adds the readings to `store` as `source`'s at `t_ns`, and empties itself.
    fn flush(&mut self, source: &str, t_ns: u64, store: &mut SeriesStore) {
        for r in &mut self.values[..self.len] {
            r.at = Some(store.push(r.at, source, &r.series, &r.unit, t_ns, r.value));
        }
        for series in &self.failed[..self.failed_len] {
            store.count_failure(source, series);
        }
        self.len = 0;
        self.failed_len = 0;
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
    /// Adds a point to the series `series` of `source` (made if new, in `unit`); returns
    /// its index, for `hint` at the next point of the same place of a round.
    fn push(
        &mut self,
        hint: Option<usize>,
        source: &str,
        series: &str,
        unit: &str,
        t_ns: u64,
        value: f64,
    ) -> usize {
        let hinted = hint.filter(|&i| {
            self.series
                .get(i)
                .is_some_and(|(s, n, _, _)| s == source && n == series)
        });
        let found = hinted.or_else(|| self.index.get(source).and_then(|m| m.get(series)).copied());
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
        i
    }

    fn count_failure(&mut self, source: &str, series: &str) {
        *self
            .failures
            .entry(format!("{source}/{series}"))
            .or_insert(0) += 1;
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
    /// Starts the thread of `source`, which runs as `name` (its name, read once by the
    /// caller).
    pub(crate) fn spawn(
        mut source: Box<dyn PeriodicSource>,
        name: String,
        interval: Duration,
        store: Arc<Mutex<SeriesStore>>,
        t0: Instant,
    ) -> Result<Sampler> {
        let (tx, rx) = mpsc::channel::<()>();
        let thread_name = format!("heimdall-perf-sampler-{name}");
        let src_name = name.clone();
        let thread = std::thread::Builder::new()
            .name(thread_name.clone())
            .spawn(move || {
                let mut pending = Pending::default();
                let mut next = Instant::now();
                loop {
                    sample_once(source.as_mut(), &src_name, &store, t0, &mut pending);
                    let now = Instant::now();
                    next = next_round(next, interval, now);
                    match rx.recv_timeout(next.saturating_duration_since(now)) {
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
/// figure `panicked`. The source runs without `store` locked (its readings gather in
/// `pending`): it may take a report of its own session, and a report taken meanwhile does
/// not wait for it.
fn sample_once(
    source: &mut dyn PeriodicSource,
    name: &str,
    store: &Mutex<SeriesStore>,
    t0: Instant,
    pending: &mut Pending,
) {
    let t_ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut samples = Samples { out: pending, t_ns };
    let outcome = catch_unwind(AssertUnwindSafe(|| source.sample(&mut samples)));
    if outcome.is_err() {
        samples.failed("panicked");
    }
    let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
    pending.flush(name, t_ns, &mut store);
}

/// Drops `source` (of the name `name`), counting a panic of its `Drop` as the failed figure
/// `panicked`, as a source on a thread of its own ends its thread and nothing else.
fn drop_source(source: Box<dyn PeriodicSource>, name: &str, store: &Mutex<SeriesStore>) {
    if catch_unwind(AssertUnwindSafe(move || drop(source))).is_err() {
        store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .count_failure(name, "panicked");
    }
}

/// The round after the one due at `due`, read at `now`: one interval later, or one interval
/// from now if that is past (a slow read, a suspended machine: missed rounds are skipped).
/// An interval too long for the clock (`Duration::MAX`) is a round in the far future.
fn next_round(due: Instant, interval: Duration, now: Instant) -> Instant {
    match due.checked_add(interval) {
        Some(next) if next >= now => next,
        _ => now.checked_add(interval).unwrap_or_else(|| far_future(now)),
    }
}

/// About a century after `now`, or as far as the clock goes.
fn far_future(now: Instant) -> Instant {
    let mut ahead = Duration::from_secs(100 * 365 * 86_400);
    loop {
        if let Some(t) = now.checked_add(ahead) {
            return t;
        }
        ahead /= 2;
    }
}

/// How early a quick source may be sampled: a wake-up for a pass due this close to a round
/// takes the round too.
const QUICK_SLACK: Duration = Duration::from_millis(1);

/// A quick source in its slot: locked for each round, and by the removal of the source,
/// which so waits for its round under way; `None` once removed.
type Slot = Arc<Mutex<Option<Box<dyn PeriodicSource>>>>;

fn lock_slot(slot: &Slot) -> std::sync::MutexGuard<'_, Option<Box<dyn PeriodicSource>>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// A quick source and its rounds.
struct Scheduled {
    name: Arc<str>,
    slot: Slot,
    interval: Duration,
    next: Instant,
}

/// A round to take, found under the list's lock and taken without it.
struct Due {
    index: usize,
    slot: Slot,
    name: Arc<str>,
    interval: Duration,
    next: Instant,
}

/// The aggregator's own working space (only it locks it).
#[derive(Default)]
struct Rounds {
    due: Vec<Due>,
    pending: Pending,
}

/// The quick sources of a session ([`PeriodicSource::is_quick`]), sampled by its aggregator
/// thread ([`sample_due`](Self::sample_due)) between its drain passes.
///
/// The list is locked only to look up and update the schedule, never while a source runs:
/// adding a source, or removing another, does not wait for a slow round.
pub(crate) struct QuickSources {
    store: Arc<Mutex<SeriesStore>>,
    t0: Instant,
    list: Mutex<Vec<Scheduled>>,
    rounds: Mutex<Rounds>,
}

impl QuickSources {
    pub(crate) fn new(store: Arc<Mutex<SeriesStore>>, t0: Instant) -> Self {
        QuickSources {
            store,
            t0,
            list: Mutex::new(Vec::new()),
            rounds: Mutex::new(Rounds::default()),
        }
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Scheduled>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `source` as `name` (its name, read once by the caller), due at once (the
    /// aggregator is to be woken for its first round).
    pub(crate) fn add(&self, source: Box<dyn PeriodicSource>, name: &str, interval: Duration) {
        self.list().push(Scheduled {
            name: Arc::from(name),
            slot: Arc::new(Mutex::new(Some(source))),
            interval,
            next: Instant::now(),
        });
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.list().iter().any(|s| &*s.name == name)
    }

    /// Takes the source `name` out and drops it (after its round, if one is under way);
    /// whether it ran.
    pub(crate) fn remove(&self, name: &str) -> bool {
        let removed = {
            let mut list = self.list();
            let Some(i) = list.iter().position(|s| &*s.name == name) else {
                return false;
            };
            list.remove(i)
        };
        self.retire(removed);
        true
    }

    /// Takes every source out and drops them (after the round under way, if any).
    pub(crate) fn clear(&self) {
        let removed: Vec<Scheduled> = self.list().drain(..).collect();
        for s in removed {
            self.retire(s);
        }
    }

    /// Waits for the round under way of a source taken out of the list, and drops it.
    fn retire(&self, s: Scheduled) {
        let source = lock_slot(&s.slot).take();
        if let Some(source) = source {
            drop_source(source, &s.name, &self.store);
        }
    }

    /// Samples every source whose round is due by `now` (or within [`QUICK_SLACK`] of it),
    /// one after the other, and returns when the next round is due.
    pub(crate) fn sample_due(&self, now: Instant) -> Option<Instant> {
        let mut rounds = self.rounds.lock().unwrap_or_else(|e| e.into_inner());
        let Rounds { due, pending } = &mut *rounds;
        due.clear();
        {
            let list = self.list();
            let soon = now + QUICK_SLACK;
            for (index, s) in list.iter().enumerate() {
                if s.next <= soon {
                    due.push(Due {
                        index,
                        slot: Arc::clone(&s.slot),
                        name: Arc::clone(&s.name),
                        interval: s.interval,
                        next: s.next,
                    });
                }
            }
        }
        for d in due.iter_mut() {
            let mut slot = lock_slot(&d.slot);
            // `None`: removed since it was found due.
            if let Some(source) = slot.as_mut() {
                sample_once(source.as_mut(), &d.name, &self.store, self.t0, pending);
            }
            drop(slot);
            d.next = next_round(d.next, d.interval, Instant::now());
        }
        let mut list = self.list();
        for d in due.drain(..) {
            // Sources added or removed meanwhile move the others.
            let at = match list.get(d.index) {
                Some(s) if Arc::ptr_eq(&s.slot, &d.slot) => Some(d.index),
                _ => list.iter().position(|s| Arc::ptr_eq(&s.slot, &d.slot)),
            };
            if let Some(i) = at {
                list[i].next = d.next;
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
    fn readings_reach_their_series_whichever_source_used_the_place_before() {
        // Two sources share one round's places in turn, with other series, in other orders,
        // one of them changing its series from round to round: every point reaches the
        // series of its source and name, as a look-up of each would put it.
        let mut store = SeriesStore::default();
        let mut pending = Pending::default();
        let mut want: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        for round in 0..6u64 {
            let a: Vec<String> = if round % 2 == 0 {
                vec!["x".into(), "y".into(), "z".into()]
            } else {
                vec!["z".into(), format!("r{round}"), "x".into()]
            };
            for (source, names) in [("a", a), ("b", vec!["x".to_string(), "w".to_string()])] {
                for (k, n) in names.iter().enumerate() {
                    let v = (round * 10 + k as u64) as f64;
                    pending.record(n, "u", v);
                    want.entry((source.into(), n.clone())).or_default().push(v);
                }
                pending.flush(source, round, &mut store);
            }
        }
        let got: BTreeMap<(String, String), Vec<f64>> = store
            .to_report()
            .into_iter()
            .map(|t| {
                (
                    (t.source, t.name),
                    t.points.iter().map(|p| p.last).collect(),
                )
            })
            .collect();
        assert_eq!(got, want);
    }

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
