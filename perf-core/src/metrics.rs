//! Counters, timers and throughput meters: cheap, owned by the code that updates them, and
//! turned into [`Measurement`]s to add to a session.
//!
//! ```
//! use heimdall_perf_core::metrics::{MetricCounter, ThroughputMeter, Timer};
//! use heimdall_perf_core::MetricType;
//! use std::time::Duration;
//!
//! let mut fps = MetricCounter::new("fps", MetricType::Throughput, "fps", 100);
//! fps.set(30.0);
//! fps.set(32.0);
//! assert_eq!(fps.statistics().mean, 31.0);
//!
//! let mut latency = Timer::new("frame_latency");
//! latency.start();
//! let d = latency.stop().unwrap();
//! assert_eq!(latency.statistics().count, 1);
//! assert!(d < Duration::from_secs(1));
//!
//! let mut frames = ThroughputMeter::new("frames", Duration::from_secs(1));
//! frames.add(10);
//! assert_eq!(frames.total(), 10);
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use quanta::{Clock, Instant as QInstant};

use crate::error::{PerfError, Result};
use crate::measurement::{Measurement, MetricType};
use crate::recorder::clock;
use crate::stats::{DurationStats, Summary, ValueStats};

/// A named value updated over time: the last value, the last `window` values, and running
/// statistics of every value since creation (in bounded memory).
///
/// The running statistics are a [`ValueStats`]:
///
/// * percentiles within 1/128 (0.78 %) of the true value for any normal magnitude
///   (2.2e-308 to 1.8e308), clamped to the exact min and max; subnormal values within an
///   absolute 2⁻¹⁰²⁹;
/// * negative values with the same precision (a mirror set of buckets), zero counted
///   exactly;
/// * NaN and ±infinity counted apart (`non_finite` in reports), out of every statistic;
/// * percentiles keep that precision over any range (1e-300 and 1e300 together, single
///   outliers) while each sign's values fall in at most
///   [`VALUE_STATS_MAX_SPARSE_BUCKETS`](crate::stats::VALUE_STATS_MAX_SPARSE_BUCKETS)
///   distinct buckets outside a dense window; past that the lowest values are folded and
///   the upper percentiles keep the precision (see [`ValueStats`]);
/// * memory: the window, 8 bytes per value *received* (it grows as values arrive, up to
///   `window` values, at most [`METRIC_COUNTER_MAX_WINDOW`]), and the buckets: at most
///   [`VALUE_STATS_MAX_BUCKET_BYTES`](crate::stats::VALUE_STATS_MAX_BUCKET_BYTES) (about
///   192 KiB), a couple of kilobytes for values within a factor 2 of each other;
/// * mean and standard deviation right for any finite values (±1e308 included); the sum is
///   ±infinity if it overflows the `f64` range.
///
/// [`set`](Self::set) is a store into the window and an index bump: the window's values are
/// folded into the running statistics in one batch when the window wraps (every `window`
/// values), and the values not folded yet are added to a copy of them when the statistics
/// are read. Folded in the order they came, so the statistics are exactly those of
/// recording each value as it comes. `set` allocates only while the window fills up, and a
/// fold only when a value falls outside the range of buckets seen so far.
#[derive(Debug, Clone)]
pub struct MetricCounter {
    name: String,
    metric_type: MetricType,
    unit: String,
    /// The last `window` values: filled in order, then a ring whose oldest value is at
    /// `pos`.
    values: Vec<f64>,
    /// Capacity of the window, 1 to [`METRIC_COUNTER_MAX_WINDOW`].
    window: usize,
    /// Where the next value goes (`values.len()` while the window fills up). The values
    /// `values[..pos]` are the ones not folded into `stats` yet: the window is folded
    /// whole, and `pos` goes back to 0, each time `pos` reaches `window`.
    pos: usize,
    /// Statistics of every value up to the last fold.
    stats: ValueStats,
}

/// Largest window of a [`MetricCounter`]: 2²⁰ values (8 MiB once filled). A larger
/// `window` given to [`MetricCounter::new`] is clamped to it.
pub const METRIC_COUNTER_MAX_WINDOW: usize = 1 << 20;

impl MetricCounter {
    /// A counter keeping the last `window` values (at least 1, at most
    /// [`METRIC_COUNTER_MAX_WINDOW`]). Nothing is allocated for the window until values
    /// arrive; it grows with them up to `window` values.
    pub fn new(
        name: impl Into<String>,
        metric_type: MetricType,
        unit: impl Into<String>,
        window: usize,
    ) -> Self {
        MetricCounter {
            name: name.into(),
            metric_type,
            unit: unit.into(),
            values: Vec::new(),
            window: window.clamp(1, METRIC_COUNTER_MAX_WINDOW),
            pos: 0,
            stats: ValueStats::new(),
        }
    }

    /// Records a new value: a store into the window and an index bump (the window is
    /// folded into the running statistics each time it wraps).
    #[inline]
    pub fn set(&mut self, value: f64) {
        let pos = self.pos;
        // Once the window is full, `pos < values.len() == window` until the wrap: one
        // comparison each side of the store.
        if let Some(slot) = self.values.get_mut(pos) {
            *slot = value;
            self.pos = pos + 1;
            if self.pos == self.values.len() {
                self.wrap_or_grow();
            }
        } else {
            // The window is filling up: `pos == values.len()`.
            self.push(value);
            self.pos = pos + 1;
            self.wrap_or_grow();
        }
    }

    /// `pos` reached the end of the values kept: folds the window if it is full.
    #[cold]
    #[inline(never)]
    fn wrap_or_grow(&mut self) {
        if self.pos == self.window {
            self.fold();
        }
    }

    /// Folds the whole window (every value since the last fold, oldest first) into the
    /// running statistics, and starts the ring over.
    fn fold(&mut self) {
        self.stats.record_all(&self.values[..self.pos]);
        self.pos = 0;
    }

    /// Appends a value while the window fills up, growing it by doubling, never past
    /// `window` values.
    #[inline]
    fn push(&mut self, value: f64) {
        if self.values.len() == self.values.capacity() {
            self.grow();
        }
        self.values.push(value);
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let len = self.values.len();
        self.values.reserve_exact(len.max(4).min(self.window - len));
    }

    /// The number of values the window keeps (`window` as given to [`new`](Self::new),
    /// clamped to 1 … [`METRIC_COUNTER_MAX_WINDOW`]).
    pub fn window_len(&self) -> usize {
        self.window
    }

    /// Adds `delta` to the last value (starting from 0) and records the result.
    pub fn add(&mut self, delta: f64) {
        let last = self.value();
        let base = if last.is_nan() { 0.0 } else { last };
        self.set(base + delta);
    }

    /// The counter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last value (NaN before the first `set`).
    pub fn value(&self) -> f64 {
        // Before `pos` in the ring; `pos` is 0 only before the first value or right after a
        // fold, when the window is full and the last value is at its end.
        match self.pos.checked_sub(1) {
            Some(i) => self.values[i],
            None => self.values.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// The values in the window, oldest first.
    pub fn window_values(&self) -> impl Iterator<Item = f64> + '_ {
        // While the window fills up `pos` is its length, so `older` is empty.
        let (newer, older) = self.values.split_at(self.pos);
        older.iter().chain(newer).copied()
    }

    /// Mean of the finite values in the window (NaN if there are none).
    pub fn window_mean(&self) -> f64 {
        let (sum, n) = self
            .window_values()
            .filter(|v| v.is_finite())
            .fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
        if n == 0 {
            f64::NAN
        } else {
            sum / n as f64
        }
    }

    /// Statistics of the window's finite values, with exact percentiles (the rank-`⌈q·n⌉`
    /// value: this sorts a copy of the window).
    pub fn window_statistics(&self) -> Summary {
        let mut s = ValueStats::new();
        let mut sorted = Vec::with_capacity(self.values.len());
        for v in self.window_values() {
            s.record(v);
            if v.is_finite() {
                // As in `ValueStats::record`: -0.0 is reported as 0.
                sorted.push(v + 0.0);
            }
        }
        let mut summary = s.summary();
        if sorted.is_empty() {
            return summary;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let exact = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        summary.p50 = exact(0.50);
        summary.p90 = exact(0.90);
        summary.p95 = exact(0.95);
        summary.p99 = exact(0.99);
        summary.p999 = exact(0.999);
        summary
    }

    /// Statistics of every finite value since creation: percentiles within 1/128 (0.78 %);
    /// see the type's documentation for zero, negative and huge or tiny values.
    pub fn statistics(&self) -> Summary {
        if self.pos == 0 {
            return self.stats.summary();
        }
        // The values since the last fold, added to a copy in the order they came.
        let mut stats = self.stats.clone();
        stats.record_all(&self.values[..self.pos]);
        stats.summary()
    }

    /// The last value as a [`Measurement`].
    pub fn to_measurement(&self) -> Measurement {
        Measurement::new(
            self.name.clone(),
            self.metric_type.clone(),
            self.value(),
            self.unit.clone(),
        )
    }
}

/// A stopwatch with statistics: `start`, then `lap` (records and keeps running) or `stop`
/// (records and stops). Each recorded value is the time since the previous `start` or `lap`.
#[derive(Debug, Clone)]
pub struct Timer {
    name: String,
    clock: Clock,
    mark: Option<u64>,
    last: Option<Duration>,
    stats: DurationStats,
}

impl Timer {
    /// A stopped timer.
    pub fn new(name: impl Into<String>) -> Self {
        Timer {
            name: name.into(),
            clock: clock().clone(),
            mark: None,
            last: None,
            stats: DurationStats::new(),
        }
    }

    /// Starts (or restarts) the timer.
    #[inline]
    pub fn start(&mut self) {
        self.mark = Some(self.clock.raw());
    }

    /// Whether the timer is running.
    pub fn is_running(&self) -> bool {
        self.mark.is_some()
    }

    #[inline]
    fn record_since_mark(&mut self, keep_running: bool) -> Result<Duration> {
        let now = self.clock.raw();
        let mark = self
            .mark
            .ok_or_else(|| PerfError::TimerNotRunning(self.name.clone()))?;
        let ns = self.clock.delta_as_nanos(mark, now);
        self.stats.record(ns);
        self.mark = keep_running.then_some(now);
        let d = Duration::from_nanos(ns);
        self.last = Some(d);
        Ok(d)
    }

    /// Records the time since the last `start` or `lap` and keeps running.
    pub fn lap(&mut self) -> Result<Duration> {
        self.record_since_mark(true)
    }

    /// Records the time since the last `start` or `lap` and stops.
    pub fn stop(&mut self) -> Result<Duration> {
        self.record_since_mark(false)
    }

    /// Times `f`, recording its duration.
    pub fn time<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.start();
        let r = f();
        let _ = self.stop();
        r
    }

    /// The most recent recorded duration.
    pub fn last(&self) -> Option<Duration> {
        self.last
    }

    /// Statistics of every recorded duration, in milliseconds (percentiles within 1 %, from
    /// an HDR histogram of the nanoseconds; the sum saturates at `u64::MAX` ns).
    pub fn statistics(&self) -> Summary {
        let mut s = self.stats.summary();
        for v in [
            &mut s.sum,
            &mut s.min,
            &mut s.max,
            &mut s.mean,
            &mut s.stddev,
            &mut s.p50,
            &mut s.p90,
            &mut s.p95,
            &mut s.p99,
            &mut s.p999,
        ] {
            *v /= 1e6;
        }
        s
    }

    /// The last duration as a [`Measurement`] of [`MetricType::ExecutionTime`] in `ms`
    /// (NaN before the first recorded duration).
    pub fn to_measurement(&self) -> Measurement {
        let ms = self.last.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        Measurement::new(self.name.clone(), MetricType::ExecutionTime, ms, "ms")
    }
}

const METER_BUCKETS: usize = 10;
/// Shortest window of a [`ThroughputMeter`]; a shorter one is raised to it.
pub const THROUGHPUT_MIN_WINDOW: Duration = Duration::from_millis(10);
/// Longest window of a [`ThroughputMeter`]: one day (ten buckets of 2.4 hours). A longer one
/// (up to `Duration::MAX`) is clamped to it, so that no instant or product of the meter can
/// overflow.
pub const THROUGHPUT_MAX_WINDOW: Duration = Duration::from_secs(86_400);
/// Resolution of the coarse clock that `ThroughputMeter::tick` reads for busy meters whose
/// buckets are at least four times as long (windows of a second or more): the clock's thread
/// wakes 40 times a second (at 5 ms it cost 3–4 ms of CPU a second on the benchmark VM,
/// more than a 60 fps line's whole profiling). Meters with shorter windows read the precise
/// clock, and start no thread.
pub const THROUGHPUT_CLOCK_RESOLUTION: Duration = Duration::from_millis(25);
/// Events a second from which a meter moves to the coarse clock
/// ([`THROUGHPUT_CLOCK_RESOLUTION`]): below it, the precise clock's TSC read on every
/// `tick` (about 10 ns) costs less than the coarse clock's thread (1.4 ms of CPU a second
/// on the benchmark VM, the price of 140 000 TSC reads), so a meter counting a 60 fps
/// line's frames starts no thread.
pub const THROUGHPUT_COARSE_RATE: u64 = 100_000;

/// Starts quanta's upkeep thread once, so `Clock::recent` is a plain memory read.
/// Returns whether this crate runs the coarse clock (at [`THROUGHPUT_CLOCK_RESOLUTION`]); an
/// upkeep started elsewhere in the process is not trusted.
fn coarse_clock_running() -> bool {
    static UPKEEP: OnceLock<bool> = OnceLock::new();
    *UPKEEP.get_or_init(|| {
        match quanta::Upkeep::new_with_clock(THROUGHPUT_CLOCK_RESOLUTION, clock().clone()).start() {
            Ok(handle) => {
                // Keep the upkeep thread for the life of the process.
                std::mem::forget(handle);
                true
            }
            // Someone else in the process runs it, at an interval of their own (seconds,
            // or stopped later): not a clock a meter can rotate its buckets on.
            Err(_) => false,
        }
    })
}

/// Counts events and gives their rate over a sliding window (e.g. frames per second).
///
/// `tick` and `add` read the precise clock (a TSC read, about 10 ns) until the meter has
/// counted [`THROUGHPUT_COARSE_RATE`] events a second or more over a whole bucket (a tenth
/// of the window); a meter with a window of a second or more then reads a coarse clock
/// instead (updated every 25 ms by a background thread, [`THROUGHPUT_CLOCK_RESOLUTION`]), so
/// a tick costs a couple of nanoseconds. The thread is started once, by the first busy
/// meter of the process, and only then. `rate` reads the precise clock.
///
/// The window is clamped to [`THROUGHPUT_MIN_WINDOW`] … [`THROUGHPUT_MAX_WINDOW`]; counts
/// saturate at `u64::MAX` (the total, each bucket and their sum), and no argument makes any
/// method panic.
#[derive(Debug, Clone)]
pub struct ThroughputMeter {
    name: String,
    unit: String,
    clock: Clock,
    precise: bool,
    bucket_ns: u64,
    buckets: [u64; METER_BUCKETS],
    cur: usize,
    cur_end: QInstant,
    created: QInstant,
    total: u64,
}

impl ThroughputMeter {
    /// A meter whose rate covers the last `window` (clamped to [`THROUGHPUT_MIN_WINDOW`] …
    /// [`THROUGHPUT_MAX_WINDOW`], 10 ms to one day), in `<name>/s`.
    pub fn new(name: impl Into<String>, window: Duration) -> Self {
        let name = name.into();
        let clock = clock().clone();
        let window = window.clamp(THROUGHPUT_MIN_WINDOW, THROUGHPUT_MAX_WINDOW);
        let bucket_ns = (window.as_nanos() / METER_BUCKETS as u128).max(1) as u64;
        // The coarse clock only where its resolution is small beside a bucket.
        let now = clock.now();
        ThroughputMeter {
            unit: format!("{name}/s"),
            name,
            clock,
            precise: true,
            bucket_ns,
            buckets: [0; METER_BUCKETS],
            cur: 0,
            cur_end: now
                .checked_add(Duration::from_nanos(bucket_ns))
                .unwrap_or(now),
            created: now,
            total: 0,
        }
    }

    /// Sets the unit used by `to_measurement` (default `<name>/s`).
    pub fn with_unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = unit.into();
        self
    }

    /// Counts one event.
    #[inline]
    pub fn tick(&mut self) {
        self.add(1);
    }

    /// Counts `n` events.
    #[inline]
    pub fn add(&mut self, n: u64) {
        let now = if self.precise {
            self.clock.now()
        } else {
            self.clock.recent()
        };
        if now >= self.cur_end {
            self.rotate(now);
        }
        self.buckets[self.cur] = self.buckets[self.cur].saturating_add(n);
        self.total = self.total.saturating_add(n);
    }

    /// The window the rate covers (as given to [`new`](Self::new), clamped).
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.bucket_ns.saturating_mul(METER_BUCKETS as u64))
    }

    #[cold]
    fn rotate(&mut self, now: QInstant) {
        let behind = now.saturating_duration_since(self.cur_end).as_nanos() as u64 / self.bucket_ns;
        if self.precise && behind == 0 && self.busy(self.buckets[self.cur]) {
            self.precise = !coarse_clock_running();
        }
        let steps = (behind + 1).min(METER_BUCKETS as u64) as usize;
        for _ in 0..steps {
            self.cur = (self.cur + 1) % METER_BUCKETS;
            self.buckets[self.cur] = 0;
        }
        let advance = Duration::from_nanos(self.bucket_ns.saturating_mul(behind + 1));
        // Past the end of quanta's clock (584 years), stay there rather than panic.
        if let Some(end) = self.cur_end.checked_add(advance) {
            self.cur_end = end;
        }
    }

    /// Whether `events` in one whole bucket come at [`THROUGHPUT_COARSE_RATE`] or faster,
    /// in a meter whose buckets are long beside the coarse clock's resolution.
    fn busy(&self, events: u64) -> bool {
        let bucket = u128::from(self.bucket_ns);
        bucket >= 4 * THROUGHPUT_CLOCK_RESOLUTION.as_nanos()
            && u128::from(events) * 1_000_000_000 >= u128::from(THROUGHPUT_COARSE_RATE) * bucket
    }

    /// Events per second over the window (or since creation, if younger than the window).
    pub fn rate(&self) -> f64 {
        let now = self.clock.now();
        let b = self.bucket_ns;
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let past = nanos(now.saturating_duration_since(self.cur_end));
        let ahead = nanos(self.cur_end.saturating_duration_since(now));
        // With no event for a while the buckets have not rotated: the current bucket is
        // `stale` buckets older than its position says.
        let stale = if now >= self.cur_end { past / b + 1 } else { 0 };
        let keep = (METER_BUCKETS as u64).saturating_sub(stale);
        if keep == 0 {
            return 0.0;
        }
        let events = (0..keep as usize)
            .map(|k| self.buckets[(self.cur + METER_BUCKETS - k) % METER_BUCKETS])
            .fold(0u64, u64::saturating_add);
        let covered = keep
            .saturating_mul(b)
            .saturating_add(past)
            .saturating_sub(ahead)
            .min(nanos(now.saturating_duration_since(self.created)));
        if covered == 0 {
            return 0.0;
        }
        events as f64 / (covered as f64 / 1e9)
    }

    /// Events counted since creation.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The meter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current rate as a [`Measurement`] of [`MetricType::Throughput`].
    pub fn to_measurement(&self) -> Measurement {
        Measurement::new(
            self.name.clone(),
            MetricType::Throughput,
            self.rate(),
            self.unit.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks `per_bucket` times in each of `buckets` buckets of `m`.
    fn tick_buckets(m: &mut ThroughputMeter, buckets: u32, per_bucket: u64) {
        let bucket = Duration::from_nanos(m.bucket_ns);
        for _ in 0..buckets {
            let end = std::time::Instant::now() + bucket;
            m.add(per_bucket);
            std::thread::sleep(end.saturating_duration_since(std::time::Instant::now()));
        }
    }

    #[test]
    fn a_meter_moves_to_the_coarse_clock_only_when_busy() {
        // A 60 fps line's frames on a 1 s window: the precise clock, no thread.
        let mut frames = ThroughputMeter::new("frames", Duration::from_secs(1));
        tick_buckets(&mut frames, 4, 6);
        assert!(frames.precise);
        // Just under the rate, whole buckets: still precise.
        let under = THROUGHPUT_COARSE_RATE / 10 - 100;
        tick_buckets(&mut frames, 3, under);
        assert!(frames.precise);
        // Twice the rate, for three buckets: the coarse clock from the next rotation. The
        // events due since the start are added every millisecond or so (however long a
        // loaded machine stretches the sleeps, the rate holds).
        let start = std::time::Instant::now();
        let mut added = 0u64;
        while start.elapsed() < Duration::from_millis(350) {
            let due = (2 * THROUGHPUT_COARSE_RATE) as f64 * start.elapsed().as_secs_f64();
            frames.add(due as u64 - added);
            added = due as u64;
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!frames.precise);
        let rate = frames.rate();
        let expected = frames.total() as f64 / start.elapsed().as_secs_f64();
        assert!(
            rate > expected / 3.0 && rate < expected * 3.0,
            "{rate} {expected}"
        );
        // A short window never uses the coarse clock, however busy.
        let mut short = ThroughputMeter::new("short", Duration::from_millis(100));
        tick_buckets(&mut short, 3, 1_000_000);
        assert!(short.precise);
    }

    #[test]
    fn the_busy_rate_is_events_per_second_of_a_whole_bucket() {
        let m = ThroughputMeter::new("m", Duration::from_secs(10));
        // Buckets of 1 s: 100 000 events in one is the rate.
        assert!(m.busy(THROUGHPUT_COARSE_RATE));
        assert!(!m.busy(THROUGHPUT_COARSE_RATE - 1));
        assert!(m.busy(u64::MAX));
        let day = ThroughputMeter::new("day", Duration::MAX);
        assert!(!day.busy(THROUGHPUT_COARSE_RATE));
        assert!(day.busy(u64::MAX));
    }
}
