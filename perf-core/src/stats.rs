//! Running statistics in bounded memory: count, min, max, mean, standard deviation and
//! percentiles.
//!
//! Every reported percentile is within **1 %** of the true value and clamped to the exact
//! minimum and maximum; memory does not grow with the number of values.
//!
//! * [`DurationStats`] (integer nanoseconds) keeps an HDR histogram ([`hdrhistogram`], two
//!   significant digits); its memory grows only logarithmically with the largest value.
//! * [`ValueStats`] (any `f64`) keeps a log-bucketed sketch over the bits of the `f64`: 128
//!   buckets per power of two, so within 1/128 (0.78 %) for any normal magnitude from
//!   2.2e-308 to 1.8e308, of either sign, at most [`VALUE_STATS_MAX_BUCKETS`] buckets per
//!   sign. Its documentation says what happens to zero, negative, subnormal and non-finite
//!   values and when a range is too wide for the buckets.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant digits kept by every histogram in this crate (1 % relative precision).
pub const HISTOGRAM_SIGNIFICANT_DIGITS: u8 = 2;
/// Relative precision of every percentile this crate reports.
pub const PERCENTILE_RELATIVE_PRECISION: f64 = 0.01;

/// Growth factor between the upper bounds of consecutive histogram buckets in reports
/// (√2: two buckets per doubling, fine enough to draw a latency distribution).
pub const HISTOGRAM_BUCKET_GROWTH: f64 = std::f64::consts::SQRT_2;

/// Largest number of buckets [`ValueStats`] keeps for each sign (8 bytes each: 32 KiB per
/// sign at most). At 128 buckets per power of two they span a ratio of 2³² between the
/// smallest and the largest magnitude.
pub const VALUE_STATS_MAX_BUCKETS: usize = 4096;

/// Largest relative error of a [`ValueStats`] percentile for normal values within the
/// bucket range: 1/128 = 0.78125 % (under [`PERCENTILE_RELATIVE_PRECISION`]).
pub const VALUE_STATS_RELATIVE_ERROR: f64 = 1.0 / 128.0;

/// A statistical summary of a set of values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of finite values summarised.
    pub count: u64,
    /// Sum of the values. For `f64` values whose sum exceeds the `f64` range this is
    /// honestly ±infinity (the mean and standard deviation stay finite and right); for
    /// durations it saturates at `u64::MAX` ns.
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

/// `2^e` for `-1022 <= e <= 1023`, exactly.
const fn pow2(e: i32) -> f64 {
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// Deviations from the shift are summed unscaled while they stay below `2^400`: then the
/// sum of their squares stays finite for any count (`2^64 · 2^800 < 2^1024`).
const SPREAD_LIMIT_EXP: i32 = 400;
const SPREAD_LIMIT: f64 = pow2(SPREAD_LIMIT_EXP);

/// Shifted sums for mean and variance without a division per value: values are taken
/// relative to the first one, which keeps the sums small and the variance accurate.
///
/// When values spread by more than `2^400` (only `f64` values can), the deviations are
/// scaled by a power of two, `2^-scale_exp`, chosen so that neither they nor the sum of
/// their squares can overflow: the mean and standard deviation are then right to rounding
/// for any finite values (±1e308 included). Scaling by a power of two is exact, so values
/// with a smaller spread give bit-for-bit the figures they gave before scaling existed.
#[derive(Debug, Clone)]
struct Moments {
    n: u64,
    shift: f64,
    s1: f64,
    s2: f64,
    /// The deviations summed are `(v - shift) · 2^-scale_exp`.
    scale_exp: i32,
    /// `2^-scale_exp`.
    scale: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            n: 0,
            shift: 0.0,
            s1: 0.0,
            s2: 0.0,
            scale_exp: 0,
            scale: 1.0,
        }
    }
}

impl Moments {
    /// Adds a value known to be below `2^64` in magnitude (a duration): no scaling needed.
    #[inline]
    fn add_small(&mut self, v: f64) {
        debug_assert!(self.scale_exp == 0 && v.abs() < pow2(64));
        if self.n == 0 {
            self.shift = v;
        }
        self.n += 1;
        let d = v - self.shift;
        self.s1 += d;
        self.s2 += d * d;
    }

    /// Adds any finite value.
    #[inline]
    fn add(&mut self, v: f64) {
        if self.n == 0 {
            self.shift = v;
        }
        let d = (v - self.shift) * self.scale;
        if d.abs() < SPREAD_LIMIT {
            self.n += 1;
            self.s1 += d;
            self.s2 += d * d;
        } else {
            self.add_wide(v);
        }
    }

    /// Adds a value too far from the shift for the current scale (or whose difference with
    /// it overflowed): scales down until it fits.
    #[cold]
    #[inline(never)]
    fn add_wide(&mut self, v: f64) {
        // |v - shift| ≤ 2·big < 2^(exp + 2); `big` is normal since |v - shift| ≥ 2^400.
        let big = v.abs().max(self.shift.abs());
        let exp = ((big.to_bits() >> 52) & 0x7ff) as i32 - 1023;
        let need = exp + 2 - SPREAD_LIMIT_EXP;
        if need > self.scale_exp {
            let f = pow2(self.scale_exp - need);
            self.s1 *= f;
            // Twice: `f²` could underflow where `s2 · f · f` does not.
            self.s2 *= f;
            self.s2 *= f;
            self.scale_exp = need;
            self.scale = pow2(-need);
        }
        let d = v * self.scale - self.shift * self.scale;
        self.n += 1;
        self.s1 += d;
        self.s2 += d * d;
    }

    fn mean(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let n = self.n as f64;
        if self.scale_exp == 0 {
            self.shift + self.s1 / n
        } else {
            (self.shift * self.scale + self.s1 / n) * pow2(self.scale_exp)
        }
    }

    fn stddev(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let n = self.n as f64;
        let var = (self.s2 - self.s1 * self.s1 / n) / n;
        let sd = var.max(0.0).sqrt();
        if self.scale_exp == 0 {
            sd
        } else {
            sd * pow2(self.scale_exp)
        }
    }

    /// The sum: ±infinity if it exceeds the `f64` range.
    fn sum(&self) -> f64 {
        let n = self.n as f64;
        if self.scale_exp == 0 {
            self.shift * n + self.s1
        } else {
            (self.shift * self.scale * n + self.s1) * pow2(self.scale_exp)
        }
    }
}

/// Statistics of durations (or any non-negative integers), in nanoseconds.
///
/// Percentiles come from an HDR histogram with two significant digits (within 1 %, reported
/// as the upper bound of their bucket, clamped to the exact min and max). The total
/// saturates at `u64::MAX` ns (584 years); the mean and standard deviation do not overflow.
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
        self.moments.add_small(v as f64);
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

/// Merges the moments of durations (never scaled: see [`Moments::add_small`]).
fn merge_moments(a: &mut Moments, b: &Moments) {
    debug_assert!(a.scale_exp == 0 && b.scale_exp == 0);
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

/// Bits of an `f64` other than the sign.
const MAGNITUDE_BITS: u64 = !(1 << 63);
/// Bits of `f64::INFINITY`: magnitudes at or above it are infinite or NaN.
const INFINITY_BITS: u64 = 0x7ff0_0000_0000_0000;
/// Mantissa bits below those a bucket key keeps (52 - 7: 128 buckets per power of two).
const KEY_SHIFT: u32 = 45;
/// Keys round the magnitude's bits up, so that key 0 is zero and nothing else.
const KEY_ROUND: u64 = (1 << KEY_SHIFT) - 1;
/// Key of the largest finite magnitudes (whose bucket's bound is infinity).
const MAX_KEY: u32 = (INFINITY_BITS >> KEY_SHIFT) as u32;
/// Buckets added beyond a new value's when a store grows (half a power of two), so that a
/// slowly drifting range does not reallocate at every new bucket.
const GROW_PAD: u32 = 64;

/// Bucket key of a magnitude's bits: bucket `k` holds the magnitudes whose bits are in
/// `((k - 1) · 2^45, k · 2^45]`.
#[inline]
fn bucket_key(magnitude_bits: u64) -> u32 {
    ((magnitude_bits + KEY_ROUND) >> KEY_SHIFT) as u32
}

/// The magnitude reported for bucket `key`: its upper bound, `k · 2^45` as bits (infinity
/// for the top bucket, which the clamp to the maximum brings back).
#[inline]
fn bucket_value(key: u32) -> f64 {
    f64::from_bits(u64::from(key) << KEY_SHIFT)
}

/// Counts of the magnitudes of one sign, by bucket key: a dense window of at most
/// [`VALUE_STATS_MAX_BUCKETS`] keys that grows as values arrive. When the keys seen span
/// more than that, the window keeps the buckets at the top of the distribution and folds
/// the others into its edge bucket: for positive values (`fold_high == false`) the smallest
/// magnitudes, for negative values the largest.
#[derive(Debug, Clone)]
struct Store {
    /// `counts[i]` counts the key `offset + i`; never key 0.
    counts: Vec<u64>,
    offset: u32,
    /// Number of zeros (key 0) of this sign.
    zeros: u64,
    fold_high: bool,
}

impl Store {
    fn new(fold_high: bool) -> Self {
        Store {
            counts: Vec::new(),
            offset: 0,
            zeros: 0,
            fold_high,
        }
    }

    #[inline]
    fn add(&mut self, key: u32) {
        match self.counts.get_mut(key.wrapping_sub(self.offset) as usize) {
            Some(c) => *c += 1,
            None => self.add_outside(key),
        }
    }

    /// Counts a zero, or a key outside the window: grows, slides or folds the window.
    #[cold]
    #[inline(never)]
    fn add_outside(&mut self, key: u32) {
        if key == 0 {
            self.zeros += 1;
            return;
        }
        let cap = VALUE_STATS_MAX_BUCKETS as u32;
        let (lo, hi, mut new_lo, mut new_hi) = if self.counts.is_empty() {
            let (lo, hi) = (
                key.saturating_sub(GROW_PAD).max(1),
                (key + GROW_PAD).min(MAX_KEY),
            );
            (lo, hi, lo, hi)
        } else {
            let (lo, hi) = (self.offset, self.offset + self.counts.len() as u32 - 1);
            let new_lo = if key < lo {
                key.saturating_sub(GROW_PAD).max(1)
            } else {
                lo
            };
            let new_hi = if key > hi {
                (key + GROW_PAD).min(MAX_KEY)
            } else {
                hi
            };
            (lo, hi, new_lo, new_hi)
        };
        if new_hi - new_lo >= cap {
            if self.fold_high {
                new_hi = new_lo + cap - 1;
            } else {
                new_lo = new_hi + 1 - cap;
            }
        }
        if !self.counts.is_empty() && (new_lo, new_hi) == (lo, hi) {
            // The window is at its cap and the key on the folded side: its edge bucket.
            self.counts[(key.clamp(lo, hi) - lo) as usize] += 1;
            return;
        }
        let mut counts = vec![0u64; (new_hi - new_lo + 1) as usize];
        for (k, &c) in (self.offset..).zip(&self.counts) {
            counts[(k.clamp(new_lo, new_hi) - new_lo) as usize] += c;
        }
        counts[(key.clamp(new_lo, new_hi) - new_lo) as usize] += 1;
        self.counts = counts;
        self.offset = new_lo;
    }

    /// Non-empty buckets, by increasing key (magnitude).
    fn buckets(&self) -> impl DoubleEndedIterator<Item = (u32, u64)> + '_ {
        let offset = self.offset;
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c > 0)
            .map(move |(i, &c)| (offset + i as u32, c))
    }
}

/// Statistics of `f64` values of any sign, in bounded memory: count, sum, min, max, mean,
/// standard deviation and percentiles.
///
/// * **Percentiles** come from a log-bucketed sketch over the bits of the `f64` (an HDR
///   histogram on the exponent and the top 7 mantissa bits, DDSketch-like): 128 buckets per
///   power of two. A percentile is the rank-`⌈q·n⌉` value rounded up to its bucket's upper
///   bound, clamped to the exact minimum and maximum: within 1/128 (0.78 %) of the true
///   value for any normal magnitude, 2.2e-308 to 1.8e308, and exact for values with at most
///   8 significant bits (small integers, halves, …).
/// * **Negative values** are kept by magnitude in a mirror sketch, with the same precision.
/// * **Zero** (+0.0 and −0.0) is counted exactly, apart from the buckets: a percentile that
///   falls on a zero is exactly 0.
/// * **Subnormal values** (magnitude under 2.2e-308) share buckets 2⁻¹⁰²⁹ ≈ 1.7e-310 wide:
///   their percentiles are within that absolute amount, not 1/128.
/// * **NaN and ±infinity** are counted apart ([`non_finite`](Self::non_finite)) and left out
///   of every statistic.
/// * **Memory**: each sign keeps a window of at most [`VALUE_STATS_MAX_BUCKETS`] buckets
///   (32 KiB), allocated as the range of values grows; values within a factor 2 of each
///   other use a couple of hundred. When the magnitudes of one sign span more than about
///   2³¹ (4096 buckets), the window keeps the top of the distribution — the largest positive
///   magnitudes, the smallest negative ones — and folds the rest into its edge bucket. The
///   precision then holds for every percentile whose value is above the folded range (the
///   upper percentiles: positive values within 2³¹ of the maximum); a percentile in the
///   folded range reads as the edge bucket's bound, above the true value.
/// * **Mean and standard deviation** are exact to rounding for any finite values (shifted
///   sums, scaled by a power of two when values spread beyond 2⁴⁰⁰): ±1e308 give the right
///   mean. The **sum** is the true sum rounded to `f64`: ±infinity when it overflows the
///   `f64` range. Min and max are exact.
#[derive(Debug, Clone)]
pub struct ValueStats {
    moments: Moments,
    non_finite: u64,
    min: f64,
    max: f64,
    /// Magnitudes of the positive values (`[0]`) and of the negative values (`[1]`):
    /// indexed by the sign bit.
    stores: [Store; 2],
}

impl Default for ValueStats {
    fn default() -> Self {
        Self::new()
    }
}

impl ValueStats {
    /// Empty statistics (nothing allocated until the first finite non-zero value).
    pub fn new() -> Self {
        ValueStats {
            moments: Moments::default(),
            non_finite: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            stores: [Store::new(false), Store::new(true)],
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: f64) {
        let bits = v.to_bits();
        let magnitude = bits & MAGNITUDE_BITS;
        if magnitude >= INFINITY_BITS {
            self.non_finite += 1;
            return;
        }
        self.moments.add(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.stores[(bits >> 63) as usize].add(bucket_key(magnitude));
    }

    /// Number of finite values recorded.
    pub fn count(&self) -> u64 {
        self.moments.n
    }

    /// Number of NaN or infinite values seen (not in the statistics).
    pub fn non_finite(&self) -> u64 {
        self.non_finite
    }

    /// The value at `quantile` (0.0 to 1.0): the rank-`⌈quantile·count⌉` value (at least the
    /// first), within 1/128 = 0.78 % (see the type's documentation) and clamped to the exact
    /// min and max; the first and last ranks are the exact min and max. 0 when nothing was
    /// recorded.
    pub fn quantile(&self, quantile: f64) -> f64 {
        let n = self.moments.n;
        if n == 0 {
            return 0.0;
        }
        let rank = ((quantile.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        // The first and last ranks are known exactly, even when folded.
        if rank == 1 {
            return self.min;
        }
        if rank >= n {
            return self.max;
        }
        self.value_at_rank(rank).clamp(self.min, self.max)
    }

    /// The bucket value of the `rank`-th smallest value (1-based).
    fn value_at_rank(&self, rank: u64) -> f64 {
        let [pos, neg] = &self.stores;
        let mut seen = 0;
        // Negatives first, largest magnitude first.
        for (key, c) in neg.buckets().rev() {
            seen += c;
            if seen >= rank {
                return -bucket_value(key);
            }
        }
        seen += neg.zeros + pos.zeros;
        if seen >= rank {
            return 0.0;
        }
        for (key, c) in pos.buckets() {
            seen += c;
            if seen >= rank {
                return bucket_value(key);
            }
        }
        self.max
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
            let tol = want.abs() * VALUE_STATS_RELATIVE_ERROR;
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

    fn stored(s: &ValueStats, sign: usize) -> u64 {
        let st = &s.stores[sign];
        st.counts.iter().sum::<u64>() + st.zeros
    }

    #[test]
    fn value_stats_memory_is_capped_and_counts_kept() {
        let mut s = ValueStats::new();
        let mut n = [0u64; 2];
        let mut nearest_zero = f64::NEG_INFINITY;
        for rep in 0..3 {
            for e in -300..=300 {
                for m in [1.0, 3.7, 9.9] {
                    let v = m * 10f64.powi(e) * if (e + rep) % 2 == 0 { 1.0 } else { -1.0 };
                    s.record(v);
                    n[usize::from(v < 0.0)] += 1;
                    if v < 0.0 {
                        nearest_zero = nearest_zero.max(v);
                    }
                }
            }
        }
        for (sign, &n) in n.iter().enumerate() {
            assert_eq!(s.stores[sign].counts.len(), VALUE_STATS_MAX_BUCKETS);
            assert_eq!(stored(&s, sign), n);
        }
        // The top of the distribution keeps its precision: the largest positive value and
        // the negative value nearest zero.
        assert_eq!(s.quantile(1.0), 9.9 * 10f64.powi(300));
        let negatives = n[1];
        let got = s.quantile(negatives as f64 / s.count() as f64);
        assert!((got - nearest_zero).abs() <= -nearest_zero * VALUE_STATS_RELATIVE_ERROR);
    }

    #[test]
    fn value_stats_memory_follows_the_range() {
        let mut s = ValueStats::new();
        assert_eq!(s.stores[0].counts.capacity(), 0);
        for i in 0..100_000 {
            s.record(59.0 + (i % 3) as f64);
        }
        // A couple of buckets, plus the padding on each side.
        assert!(s.stores[0].counts.len() <= 2 * GROW_PAD as usize + 8);
        assert!(s.stores[1].counts.is_empty());
        assert_eq!(s.quantile(0.5), 60.0);
        // A slowly rising counter over 40 powers of two: capped, and the last 2^31 exact.
        let mut s = ValueStats::new();
        let mut v = 1.0;
        while v < 2f64.powi(40) {
            s.record(v);
            v *= 1.001;
        }
        assert_eq!(s.stores[0].counts.len(), VALUE_STATS_MAX_BUCKETS);
        assert_eq!(stored(&s, 0), s.count());
    }

    #[test]
    fn negatives_fold_their_largest_magnitudes() {
        let mut s = ValueStats::new();
        let values: Vec<f64> = (0..=400).map(|i| -(10f64.powf(i as f64 / 10.0))).collect();
        for &v in &values {
            s.record(v);
        }
        assert_eq!(s.stores[1].counts.len(), VALUE_STATS_MAX_BUCKETS);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
            let want = exact_quantile(&sorted, q);
            let got = s.quantile(q);
            if want >= -1e9 {
                // Within 2^31 of the smallest magnitude, -1: kept.
                assert!(
                    (got - want).abs() <= -want * VALUE_STATS_RELATIVE_ERROR,
                    "q{q}"
                );
            } else {
                assert!(got >= want, "q{q}: {got} < {want}");
            }
        }
        assert_eq!(s.quantile(0.0), -1e40);
        // The second smallest is folded: read as the window's edge, above the true value.
        let second = s.quantile(1.5 / values.len() as f64);
        assert!(second > -1e11 && second < -1e9, "{second}");
    }

    #[test]
    fn zeros_are_exact_and_small_values_exact_at_bucket_bounds() {
        let mut s = ValueStats::new();
        for _ in 0..10 {
            s.record(0.0);
            s.record(-0.0);
        }
        s.record(1e-300);
        s.record(1e300);
        assert_eq!(s.quantile(0.5), 0.0);
        assert_eq!(s.quantile(0.9), 0.0);
        assert_eq!(s.stores[0].zeros + s.stores[1].zeros, 20);
        // Values with at most 8 significant bits are bucket bounds: reported exactly.
        let mut s = ValueStats::new();
        for v in [41.5, 42.0, 59.0, 60.0, 58.0, 0.75, -12.0, 255.0] {
            s.record(v);
        }
        let mut sorted = [41.5, 42.0, 59.0, 60.0, 58.0, 0.75, -12.0, 255.0];
        sorted.sort_by(f64::total_cmp);
        for q in [0.1, 0.25, 0.5, 0.6, 0.75, 0.9] {
            assert_eq!(s.quantile(q), exact_quantile(&sorted, q), "q{q}");
        }
    }

    #[test]
    fn moments_scale_only_past_two_to_the_400() {
        let mut m = Moments::default();
        for v in [1e100, -1e100, 3.0] {
            m.add(v);
        }
        assert_eq!(m.scale_exp, 0);
        m.add(1e150);
        assert!(m.scale_exp > 0);
        let mean = (1e100 - 1e100 + 3.0 + 1e150) / 4.0;
        assert!((m.mean() - mean).abs() <= 1e-15 * mean);
    }
}
