//! Running statistics in bounded memory: count, min, max, mean, standard deviation and
//! percentiles from an HDR histogram.
//!
//! Percentiles come from [`hdrhistogram`] with two significant digits: a reported percentile
//! is within **1 %** of the true value (and is clamped to the exact minimum and maximum).
//! Memory does not grow with the number of values, only (logarithmically) with their range.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant digits kept by every histogram in this crate (1 % relative precision).
pub const HISTOGRAM_SIGNIFICANT_DIGITS: u8 = 2;
/// Relative precision of every percentile this crate reports.
pub const PERCENTILE_RELATIVE_PRECISION: f64 = 0.01;

/// Growth factor between the upper bounds of consecutive histogram buckets in reports
/// (√2: two buckets per doubling, fine enough to draw a latency distribution).
pub const HISTOGRAM_BUCKET_GROWTH: f64 = std::f64::consts::SQRT_2;

/// Scale applied to `f64` values before they go into an integer histogram: values are kept
/// to a thousandth of their unit.
const VALUE_SCALE: f64 = 1000.0;

/// A statistical summary of a set of values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of finite values summarised.
    pub count: u64,
    /// Sum of the values.
    #[serde(with = "crate::report::serde_f64")]
    pub sum: f64,
    /// Smallest value.
    #[serde(with = "crate::report::serde_f64")]
    pub min: f64,
    /// Largest value.
    #[serde(with = "crate::report::serde_f64")]
    pub max: f64,
    /// Arithmetic mean.
    #[serde(with = "crate::report::serde_f64")]
    pub mean: f64,
    /// Population standard deviation.
    #[serde(with = "crate::report::serde_f64")]
    pub stddev: f64,
    /// Median.
    #[serde(with = "crate::report::serde_f64")]
    pub p50: f64,
    /// 90th percentile.
    #[serde(with = "crate::report::serde_f64")]
    pub p90: f64,
    /// 95th percentile.
    #[serde(with = "crate::report::serde_f64")]
    pub p95: f64,
    /// 99th percentile.
    #[serde(with = "crate::report::serde_f64")]
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(with = "crate::report::serde_f64")]
    pub p999: f64,
}

/// One bucket of a latency histogram: `count` values were `<= le` (and above the previous
/// bucket's bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramBucket {
    /// Upper bound of the bucket, inclusive, in the histogram's unit.
    pub le: u64,
    /// Number of values in the bucket (not cumulative).
    pub count: u64,
}

fn new_histogram() -> Histogram<u64> {
    // Auto-resizing: memory follows the largest value seen, not the number of values.
    Histogram::new(HISTOGRAM_SIGNIFICANT_DIGITS).expect("2 significant digits is a valid setting")
}

/// Shifted sums for mean and variance without a division per value: values are taken
/// relative to the first one, which keeps the sums small and the variance accurate.
#[derive(Debug, Clone, Default)]
struct Moments {
    n: u64,
    shift: f64,
    s1: f64,
    s2: f64,
}

impl Moments {
    #[inline]
    fn add(&mut self, v: f64) {
        if self.n == 0 {
            self.shift = v;
        }
        self.n += 1;
        let d = v - self.shift;
        self.s1 += d;
        self.s2 += d * d;
    }

    fn mean(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        self.shift + self.s1 / self.n as f64
    }

    fn stddev(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let n = self.n as f64;
        let var = (self.s2 - self.s1 * self.s1 / n) / n;
        var.max(0.0).sqrt()
    }

    fn sum(&self) -> f64 {
        self.shift * self.n as f64 + self.s1
    }
}

/// Statistics of durations (or any non-negative integers), in nanoseconds.
#[derive(Debug, Clone)]
pub struct DurationStats {
    count: u64,
    total: u64,
    min: u64,
    max: u64,
    moments: Moments,
    hist: Histogram<u64>,
}

impl Default for DurationStats {
    fn default() -> Self {
        Self::new()
    }
}

impl DurationStats {
    /// Empty statistics.
    pub fn new() -> Self {
        DurationStats {
            count: 0,
            total: 0,
            min: u64::MAX,
            max: 0,
            moments: Moments::default(),
            hist: new_histogram(),
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.count += 1;
        self.total = self.total.saturating_add(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.moments.add(v as f64);
        // Auto-resize only fails past u64 range limits, which a u64 cannot exceed.
        let _ = self.hist.record(v);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values (saturating).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The value at `quantile` (0.0 to 1.0), within 1 %, clamped to the exact min and max.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        self.hist
            .value_at_quantile(quantile)
            .clamp(self.min, self.max)
    }

    /// The summary of everything recorded.
    pub fn summary(&self) -> Summary {
        if self.count == 0 {
            return Summary::default();
        }
        let q = |p: f64| self.quantile(p) as f64;
        Summary {
            count: self.count,
            sum: self.total as f64,
            min: self.min as f64,
            max: self.max as f64,
            mean: self.moments.mean(),
            stddev: self.moments.stddev(),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
        }
    }

    /// Non-cumulative buckets with upper bounds `first`, then each
    /// [`HISTOGRAM_BUCKET_GROWTH`] times the previous, up to the largest value; empty when
    /// nothing was recorded.
    pub fn buckets(&self, first: u64) -> Vec<HistogramBucket> {
        if self.count == 0 {
            return Vec::new();
        }
        self.hist
            .iter_log(first.max(1), HISTOGRAM_BUCKET_GROWTH)
            .map(|it| HistogramBucket {
                le: it.value_iterated_to(),
                count: it.count_since_last_iteration(),
            })
            .collect()
    }

    /// Adds everything `other` recorded.
    pub fn merge(&mut self, other: &DurationStats) {
        if other.count == 0 {
            return;
        }
        self.count += other.count;
        self.total = self.total.saturating_add(other.total);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        merge_moments(&mut self.moments, &other.moments);
        let _ = self.hist.add(&other.hist);
    }
}

fn merge_moments(a: &mut Moments, b: &Moments) {
    if b.n == 0 {
        return;
    }
    if a.n == 0 {
        *a = b.clone();
        return;
    }
    // Re-express b's sums relative to a's shift.
    let delta = b.shift - a.shift;
    let n = b.n as f64;
    a.s2 += b.s2 + 2.0 * delta * b.s1 + n * delta * delta;
    a.s1 += b.s1 + n * delta;
    a.n += b.n;
}

/// Statistics of `f64` values of any sign. Non-finite values are counted apart and left out
/// of the statistics. Percentiles keep a thousandth of the unit, and 1 % relative precision.
#[derive(Debug, Clone)]
pub struct ValueStats {
    moments: Moments,
    non_finite: u64,
    min: f64,
    max: f64,
    pos: Histogram<u64>,
    neg: Histogram<u64>,
}

impl Default for ValueStats {
    fn default() -> Self {
        Self::new()
    }
}

impl ValueStats {
    /// Empty statistics.
    pub fn new() -> Self {
        ValueStats {
            moments: Moments::default(),
            non_finite: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            pos: new_histogram(),
            neg: new_histogram(),
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: f64) {
        if !v.is_finite() {
            self.non_finite += 1;
            return;
        }
        self.moments.add(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        // Rounded to the nearest thousandth (`+ 0.5` then truncation: `f64::round` is a
        // library call on baseline x86-64). `as` saturates: huge magnitudes land in the top
        // bucket instead of failing.
        let scaled = (v.abs() * VALUE_SCALE + 0.5) as u64;
        if v < 0.0 {
            let _ = self.neg.record(scaled);
        } else {
            let _ = self.pos.record(scaled);
        }
    }

    /// Number of finite values recorded.
    pub fn count(&self) -> u64 {
        self.moments.n
    }

    /// Number of NaN or infinite values seen (not in the statistics).
    pub fn non_finite(&self) -> u64 {
        self.non_finite
    }

    /// The value at `quantile` (0.0 to 1.0), clamped to the exact min and max.
    pub fn quantile(&self, quantile: f64) -> f64 {
        let n = self.moments.n;
        if n == 0 {
            return 0.0;
        }
        let neg_n = self.neg.len();
        // Rank of the wanted value among all values, 1-based, as hdrhistogram counts it.
        let rank = ((quantile.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let v = if rank <= neg_n {
            // Among the negatives, sorted ascending, the rank-th smallest is the
            // (neg_n - rank + 1)-th largest magnitude.
            let q = (neg_n - rank + 1) as f64 / neg_n as f64;
            -(self.neg.value_at_quantile(q) as f64) / VALUE_SCALE
        } else {
            let pos_n = self.pos.len();
            let q = (rank - neg_n) as f64 / pos_n as f64;
            self.pos.value_at_quantile(q) as f64 / VALUE_SCALE
        };
        v.clamp(self.min, self.max)
    }

    /// The summary of every finite value recorded.
    pub fn summary(&self) -> Summary {
        if self.moments.n == 0 {
            return Summary::default();
        }
        Summary {
            count: self.moments.n,
            sum: self.moments.sum(),
            min: self.min,
            max: self.max,
            mean: self.moments.mean(),
            stddev: self.moments.stddev(),
            p50: self.quantile(0.50),
            p90: self.quantile(0.90),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    #[test]
    fn duration_stats_match_direct_computation() {
        // 1..=10_000 µs in ns, shuffled deterministically.
        let mut values: Vec<u64> = (1..=10_000u64).map(|i| i * 1_000).collect();
        let mut x = 12345u64;
        for i in (1..values.len()).rev() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            values.swap(i, (x >> 33) as usize % (i + 1));
        }
        let mut s = DurationStats::new();
        for &v in &values {
            s.record(v);
        }
        let sum = s.summary();
        let mut sorted: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let sd = (sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert_eq!(sum.count, 10_000);
        assert_eq!(sum.min, 1_000.0);
        assert_eq!(sum.max, 10_000_000.0);
        assert!((sum.mean - mean).abs() < 1e-6 * mean);
        assert!((sum.stddev - sd).abs() < 1e-6 * sd);
        for (got, q) in [
            (sum.p50, 0.5),
            (sum.p90, 0.9),
            (sum.p95, 0.95),
            (sum.p99, 0.99),
            (sum.p999, 0.999),
        ] {
            let want = exact_quantile(&sorted, q);
            let err = (got - want).abs() / want;
            assert!(
                err <= PERCENTILE_RELATIVE_PRECISION,
                "p{q}: got {got}, want {want}"
            );
        }
    }

    #[test]
    fn value_stats_handle_negatives_and_non_finite() {
        let mut s = ValueStats::new();
        let values: Vec<f64> = (-500..500).map(|i| i as f64 * 0.5).collect();
        for &v in &values {
            s.record(v);
        }
        s.record(f64::NAN);
        s.record(f64::INFINITY);
        assert_eq!(s.count(), 1000);
        assert_eq!(s.non_finite(), 2);
        let sum = s.summary();
        assert_eq!(sum.min, -250.0);
        assert_eq!(sum.max, 249.5);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.01, 0.1, 0.25, 0.5, 0.9, 0.99] {
            let want = exact_quantile(&sorted, q);
            let got = s.quantile(q);
            let tol = want.abs() * PERCENTILE_RELATIVE_PRECISION + 1.0 / VALUE_SCALE;
            assert!((got - want).abs() <= tol, "q{q}: got {got}, want {want}");
        }
        assert!((sum.mean - (-0.25)).abs() < 1e-9);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = DurationStats::new();
        let mut b = DurationStats::new();
        let mut all = DurationStats::new();
        for v in 0..1000u64 {
            let v = v * 37 % 1013 + 5;
            if v % 3 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
            all.record(v);
        }
        a.merge(&b);
        let (x, y) = (a.summary(), all.summary());
        assert_eq!(x.count, y.count);
        assert_eq!(x.p99, y.p99);
        assert!((x.mean - y.mean).abs() < 1e-9);
        assert!((x.stddev - y.stddev).abs() < 1e-6);
    }

    #[test]
    fn memory_does_not_grow_with_count() {
        let mut s = DurationStats::new();
        s.record(4_999_999);
        for v in 0..10_000u64 {
            s.record(v % 5_000_000);
        }
        let before = s.hist.distinct_values();
        for v in 0..1_000_000u64 {
            s.record(v % 5_000_000);
        }
        assert_eq!(s.hist.distinct_values(), before);
    }
}
