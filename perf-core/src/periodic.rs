//! Periodic sources: figures read at a fixed interval on a background thread owned by the
//! session (system metrics, a camera queue depth…), kept in bounded, downsampled series.
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
                    let t_ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    {
                        let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
                        let mut samples = Samples {
                            store: &mut store,
                            source: &src_name,
                            t_ns,
                        };
                        let outcome =
                            catch_unwind(AssertUnwindSafe(|| source.sample(&mut samples)));
                        if outcome.is_err() {
                            samples.failed("panicked");
                        }
                    }
                    next += interval;
                    let now = Instant::now();
                    if next < now {
                        // Fell behind (a slow read, a suspended machine): skip missed rounds.
                        next = now + interval;
                    }
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
