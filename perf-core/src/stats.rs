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
//!   2.2e-308 to 1.8e308, of either sign, however wide the range, as long as each sign's
//!   values fall in at most [`VALUE_STATS_MAX_SPARSE_BUCKETS`] distinct buckets outside a
//!   dense window of [`VALUE_STATS_MAX_BUCKETS`]; at most
//!   [`VALUE_STATS_MAX_BUCKET_BYTES`] (about 192 KiB). Its documentation says what happens
//!   to zero, negative, subnormal and non-finite values and past the bucket caps.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant digits kept by every histogram in this crate (1 % relative precision).
pub const HISTOGRAM_SIGNIFICANT_DIGITS: u8 = 2;
/// Relative precision of every percentile this crate reports.
pub const PERCENTILE_RELATIVE_PRECISION: f64 = 0.01;

/// Growth factor between the upper bounds of consecutive histogram buckets in reports
/// (√2: two buckets per doubling, fine enough to draw a latency distribution).
pub const HISTOGRAM_BUCKET_GROWTH: f64 = std::f64::consts::SQRT_2;

/// The upper bound of the first bucket of every duration histogram in reports, in ns (the
/// `first` the sessions hand to [`DurationStats::buckets`]).
pub const HISTOGRAM_FIRST_BUCKET_NS: u64 = 256;

/// The bucket ladder every duration histogram of a report is on: the upper bounds
/// [`DurationStats::buckets`] gives from [`HISTOGRAM_FIRST_BUCKET_NS`], each
/// [`HISTOGRAM_BUCKET_GROWTH`] times the previous, computed by that same function (HDR's
/// highest value of each step: 255 ns, 511 ns…, up to about 2⁶² ns, 146 years). The bounds of
/// any report histogram are a prefix of it: merging adds counts bound by bound, and the live
/// exposition writes a fixed prefix of it (`exposition_ladder`).
///
/// ```
/// let ladder = heimdall_perf_core::stats::histogram_ladder();
/// assert_eq!(ladder[0], 255);
/// assert!(ladder.windows(2).all(|w| w[0] < w[1]));
/// ```
pub fn histogram_ladder() -> &'static [u64] {
    static LADDER: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    LADDER.get_or_init(|| {
        let mut stats = DurationStats::new();
        stats.record(1 << 62);
        stats
            .buckets(HISTOGRAM_FIRST_BUCKET_NS)
            .iter()
            .map(|b| b.le)
            .collect()
    })
}

/// Largest number of consecutive buckets in the dense window [`ValueStats`] keeps for each
/// sign (8 bytes each: 32 KiB per sign at most). At 128 buckets per power of two they span a
/// ratio of 2³² between the smallest and the largest magnitude; values there cost one
/// increment.
pub const VALUE_STATS_MAX_BUCKETS: usize = 4096;

/// Largest number of non-empty buckets [`ValueStats`] keeps outside the dense window, for
/// each sign (16 bytes each: 64 KiB per sign at most). While the values of a sign fall in
/// at most this many distinct buckets outside the window, every percentile keeps
/// [`VALUE_STATS_RELATIVE_ERROR`]; past it the lowest buckets are folded (see
/// [`ValueStats`]).
pub const VALUE_STATS_MAX_SPARSE_BUCKETS: usize = 4096;

/// Buckets of a sign that a collapse keeps: the highest 3584 (an eighth of the sparse cap
/// is left free for new buckets).
pub const VALUE_STATS_COLLAPSE_KEEP: usize =
    VALUE_STATS_MAX_SPARSE_BUCKETS - VALUE_STATS_MAX_SPARSE_BUCKETS / 8;

/// Largest memory of the buckets of one [`ValueStats`], both signs: two dense windows and
/// two sparse maps (`2 · (4096 · 8 + 4097 · 16)` bytes, about 192 KiB). Values within a
/// factor 2 of each other use a couple of kilobytes.
pub const VALUE_STATS_MAX_BUCKET_BYTES: usize =
    2 * (VALUE_STATS_MAX_BUCKETS * 8 + (VALUE_STATS_MAX_SPARSE_BUCKETS + 1) * 16);

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

/// `x · 2^e` for any `e`, in steps that `pow2` can represent (exact unless the result
/// overflows or underflows).
fn mul_pow2(mut x: f64, mut e: i32) -> f64 {
    while e != 0 {
        let step = e.clamp(-1000, 1000);
        x *= pow2(step);
        e -= step;
    }
    x
}

/// The binary exponent of a finite `v` (−1023 for zero and subnormals).
fn exponent(v: f64) -> i32 {
    ((v.to_bits() >> 52) & 0x7ff) as i32 - 1023
}

/// Shifted sums for mean and variance without a division per value: values are taken
/// relative to the first one, which keeps the sums small and the variance accurate.
///
/// When values spread by more than `2^400` (only `f64` values can), the deviations are
/// scaled by a power of two, `2^-scale_exp`, chosen so that neither they nor the sum of
/// their squares can overflow: the mean and standard deviation are then right to rounding
/// for any finite values (±1e308 included). Scaling by a power of two is exact, so values
/// with a smaller spread give bit-for-bit the figures they gave before scaling existed.
#[derive(Debug, Clone, Copy)]
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
            if v != 0.0 && v.abs() < pow2(-SPREAD_LIMIT_EXP) {
                // Tiny values: their squared deviations would underflow, so the sums are
                // kept scaled up (to about 1) instead.
                self.scale_exp = exponent(v).max(-1000);
                self.scale = pow2(-self.scale_exp);
            }
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
        let need = exponent(big) + 2 - SPREAD_LIMIT_EXP;
        if need > self.scale_exp {
            let e = self.scale_exp - need;
            self.s1 = mul_pow2(self.s1, e);
            self.s2 = mul_pow2(self.s2, 2 * e);
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
            mul_pow2(self.shift * self.scale + self.s1 / n, self.scale_exp)
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
            mul_pow2(sd, self.scale_exp)
        }
    }

    /// The sum: ±infinity if it exceeds the `f64` range.
    fn sum(&self) -> f64 {
        let n = self.n as f64;
        if self.scale_exp == 0 {
            self.shift * n + self.s1
        } else {
            mul_pow2(self.shift * self.scale * n + self.s1, self.scale_exp)
        }
    }
}

/// [`Moments::add`] out of line and by value, so that a caller's copy of the moments can
/// stay in registers (`ValueStats::record_all`).
#[cold]
#[inline(never)]
fn add_out_of_line(mut m: Moments, v: f64) -> Moments {
    m.add(v);
    m
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
        self.record_but_histogram(v);
        self.record_histogram(v);
    }

    /// What [`record`](Self::record) does for `v`, but the histogram's count: the caller
    /// makes it later with [`record_histogram`](Self::record_histogram), before anything
    /// reads these statistics. The count, the sums and the extremes take `v` now, in order.
    ///
    /// After a second asleep, the histogram's count is a cache miss (a span path's values
    /// spread over a few KiB of buckets). Counts made together, in a loop of nothing else,
    /// overlap their misses; made one per span, amid the rest of a span's work, they do
    /// not.
    #[inline]
    pub(crate) fn record_but_histogram(&mut self, v: u64) {
        self.count += 1;
        self.total = self.total.saturating_add(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.moments.add_small(v as f64);
    }

    /// The histogram's count of a value already given to
    /// [`record_but_histogram`](Self::record_but_histogram).
    #[inline]
    pub(crate) fn record_histogram(&mut self, v: u64) {
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
        *a = *b;
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
/// The negative store keeps `key ^ NEG_FLIP` (all ones above `MAX_KEY`'s bits): in both
/// stores a larger key is then a larger value, and the lowest keys are the ones to fold.
const NEG_FLIP: u32 = (MAX_KEY + 1).next_power_of_two() - 1;
const _: () = assert!(MAX_KEY < NEG_FLIP);
/// Buckets added beyond a new value's when the window grows (half a power of two), so that
/// a slowly drifting range does not reallocate at every new bucket.
const GROW_PAD: u32 = 64;
/// Keys in the dense window, at most.
const DENSE_CAP: u32 = VALUE_STATS_MAX_BUCKETS as u32;
/// Buckets kept by a collapse: an eighth of the sparse cap is left free, so that collapses
/// (which cost a pass over every bucket) come at most once every 512 new buckets.
const COLLAPSE_KEEP: usize = VALUE_STATS_COLLAPSE_KEEP;
/// Values counted outside the window before the first check whether to move it.
const MOVE_CHECK_MIN: u64 = 1024;
/// Values per block of [`ValueStats::record_all`] (each block is read twice on its fast path,
/// so it stays in the L1 cache: 2 KiB).
const RECORD_BLOCK: usize = 256;

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

/// Counts of the values of one sign, by bucket key (flipped for negative values, so that
/// larger keys are larger values in both stores):
///
/// * a dense window of at most [`VALUE_STATS_MAX_BUCKETS`] consecutive keys, grown as values
///   arrive (the fast path: one increment);
/// * the other non-empty buckets in a sorted vector of at most
///   [`VALUE_STATS_MAX_SPARSE_BUCKETS`] entries;
/// * when the sparse buckets overflow, a collapse keeps the `COLLAPSE_KEEP` highest buckets
///   and folds every lower one into the lowest kept (`floor`), DDSketch-style;
/// * when more values land outside the window than inside, the window moves to the keys
///   holding the most values (so that an early outlier cannot pin it away from the bulk).
#[derive(Debug, Clone)]
struct Store {
    /// `counts[i]` counts the key `offset + i`.
    counts: Vec<u64>,
    offset: u32,
    /// Non-empty buckets outside the window, by increasing key; never more than
    /// `VALUE_STATS_MAX_SPARSE_BUCKETS + 1` allocated.
    sparse: Vec<(u32, u64)>,
    /// Keys below it are counted in it (0 until the first collapse).
    floor: u32,
    /// Number of zeros (+0.0 in the positive store).
    zeros: u64,
    /// 0 for the positive store, `NEG_FLIP` for the negative one.
    flip: u32,
    /// Values counted in `sparse` since the window was placed.
    outside: u64,
    /// Value of `outside` at which to check whether the window should move.
    next_check: u64,
}

impl Store {
    fn new(negative: bool) -> Self {
        Store {
            counts: Vec::new(),
            offset: 0,
            sparse: Vec::new(),
            floor: 0,
            zeros: 0,
            flip: if negative { NEG_FLIP } else { 0 },
            outside: 0,
            next_check: MOVE_CHECK_MIN,
        }
    }

    /// Counts the bucket of `key` (unflipped; 0 for zero).
    #[inline]
    fn add(&mut self, key: u32) {
        let key = key ^ self.flip;
        match self.counts.get_mut(key.wrapping_sub(self.offset) as usize) {
            Some(c) => *c += 1,
            None => self.add_outside(key),
        }
    }

    /// The smallest and largest keys a window may cover (and at least the floor).
    fn key_range(&self) -> (u32, u32) {
        let (a, b) = (1 ^ self.flip, MAX_KEY ^ self.flip);
        (a.min(b).max(self.floor), a.max(b))
    }

    /// The value reported for (flipped) key `key`.
    fn value(&self, key: u32) -> f64 {
        let magnitude = bucket_value(key ^ self.flip);
        if self.flip == 0 {
            magnitude
        } else {
            -magnitude
        }
    }

    /// Counts a zero, or a (flipped) key outside the window: grows the window, or counts it
    /// in the sparse buckets.
    #[cold]
    #[inline(never)]
    fn add_outside(&mut self, key: u32) {
        if key == self.flip {
            self.zeros += 1;
            return;
        }
        let key = key.max(self.floor);
        if let Some(c) = self.counts.get_mut(key.wrapping_sub(self.offset) as usize) {
            *c += 1;
            return;
        }
        if self.grow_to(key) {
            return;
        }
        match self.sparse.binary_search_by_key(&key, |&(k, _)| k) {
            Ok(i) => self.sparse[i].1 += 1,
            Err(i) => {
                if self.sparse.len() == self.sparse.capacity() {
                    let want =
                        (self.sparse.len() * 2).clamp(16, VALUE_STATS_MAX_SPARSE_BUCKETS + 1);
                    self.sparse.reserve_exact(want - self.sparse.len());
                }
                self.sparse.insert(i, (key, 1));
                if self.sparse.len() > VALUE_STATS_MAX_SPARSE_BUCKETS {
                    self.rebuild(true);
                    return;
                }
            }
        }
        self.outside += 1;
        if self.outside >= self.next_check {
            let inside: u64 = self.counts.iter().sum();
            if self.outside > inside {
                self.rebuild(false);
            } else {
                self.next_check = self.outside.saturating_mul(2).max(inside + 1);
            }
        }
    }

    /// Grows the window to cover `key` and counts it, if the window stays within its cap.
    fn grow_to(&mut self, key: u32) -> bool {
        let (min_key, max_key) = self.key_range();
        let (lo, hi) = match self.counts.len() {
            0 => (key, key),
            len => (
                self.offset.min(key),
                (self.offset + len as u32 - 1).max(key),
            ),
        };
        if hi - lo >= DENSE_CAP {
            return false;
        }
        // Pad on the side that grew.
        let mut new_lo = if lo == key {
            key.saturating_sub(GROW_PAD).max(min_key)
        } else {
            lo
        };
        let mut new_hi = if hi == key {
            (key + GROW_PAD).min(max_key)
        } else {
            hi
        };
        if new_hi - new_lo >= DENSE_CAP {
            if lo == key {
                new_lo = new_hi + 1 - DENSE_CAP;
            } else {
                new_hi = new_lo + DENSE_CAP - 1;
            }
        }
        let mut counts = vec![0u64; (new_hi - new_lo + 1) as usize];
        let at = self.offset.wrapping_sub(new_lo) as usize;
        if !self.counts.is_empty() {
            counts[at..at + self.counts.len()].copy_from_slice(&self.counts);
        }
        counts[(key - new_lo) as usize] += 1;
        self.sparse.retain(|&(k, c)| {
            let inside = (new_lo..=new_hi).contains(&k);
            if inside {
                counts[(k - new_lo) as usize] += c;
            }
            !inside
        });
        self.counts = counts;
        self.offset = new_lo;
        true
    }

    /// Places the window again on the keys holding the most values and, if `collapse`,
    /// first folds the lowest buckets so that `COLLAPSE_KEEP` remain.
    #[cold]
    #[inline(never)]
    fn rebuild(&mut self, collapse: bool) {
        let mut entries: Vec<(u32, u64)> = self.buckets().collect();
        if collapse && entries.len() > COLLAPSE_KEEP {
            let cut = entries.len() - COLLAPSE_KEEP;
            let folded: u64 = entries.drain(..cut).map(|(_, c)| c).sum();
            entries[0].1 += folded;
            self.floor = entries[0].0;
        }
        // The run of entries within DENSE_CAP keys holding the most values.
        let (mut best, mut best_lo, mut best_hi) = (0u64, 0, 0);
        let (mut start, mut sum) = (0, 0u64);
        for end in 0..entries.len() {
            sum += entries[end].1;
            while entries[end].0 - entries[start].0 >= DENSE_CAP {
                sum -= entries[start].1;
                start += 1;
            }
            if sum > best {
                (best, best_lo, best_hi) = (sum, entries[start].0, entries[end].0);
            }
        }
        let (min_key, max_key) = self.key_range();
        let mut lo = best_lo.saturating_sub(GROW_PAD).max(min_key);
        let mut hi = (best_hi + GROW_PAD).min(max_key);
        if hi - lo >= DENSE_CAP {
            hi = hi.min(best_lo + DENSE_CAP - 1);
            lo = lo.max(hi + 1 - DENSE_CAP);
        }
        let mut counts = vec![0u64; (hi - lo + 1) as usize];
        self.sparse.clear();
        for (k, c) in entries {
            if (lo..=hi).contains(&k) {
                counts[(k - lo) as usize] += c;
            } else {
                self.sparse.push((k, c));
            }
        }
        self.counts = counts;
        self.offset = lo;
        self.outside = 0;
        self.next_check = MOVE_CHECK_MIN.max(best);
    }

    /// Non-empty buckets by increasing (flipped) key: increasing value.
    fn buckets(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        let split = self.sparse.partition_point(|&(k, _)| k < self.offset);
        let offset = self.offset;
        let dense = self
            .counts
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c > 0)
            .map(move |(i, &c)| (offset + i as u32, c));
        self.sparse[..split]
            .iter()
            .copied()
            .chain(dense)
            .chain(self.sparse[split..].iter().copied())
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
///   falls on a zero is exactly 0. A −0.0 is recorded as +0.0 (also for min and max).
/// * **Subnormal values** (magnitude under 2.2e-308) share buckets 2⁻¹⁰²⁹ ≈ 1.7e-310 wide:
///   their percentiles are within that absolute amount, not 1/128.
/// * **NaN and ±infinity** are counted apart ([`non_finite`](Self::non_finite)) and left out
///   of every statistic.
/// * **Any range**: each sign keeps a dense window of at most [`VALUE_STATS_MAX_BUCKETS`]
///   consecutive buckets (a ratio of 2³², 32 KiB), allocated as the range of values grows,
///   where recording is one increment; non-empty buckets outside it go to a sorted sparse
///   map of at most [`VALUE_STATS_MAX_SPARSE_BUCKETS`] entries (64 KiB). A single outlier
///   at 1e308 or 1e-308 thus costs one entry and changes no other percentile. When more
///   values land outside the window than inside, the window moves to the buckets holding
///   the most values. Memory: at most [`VALUE_STATS_MAX_BUCKET_BYTES`] (about 192 KiB) for
///   both signs; values within a factor 2 of each other use a couple of kilobytes.
/// * **Past the caps**: the 1/128 precision holds for *every* percentile as long as each
///   sign's values fall in at most [`VALUE_STATS_MAX_SPARSE_BUCKETS`] distinct buckets
///   outside the dense window (so at least 4096 distinct buckets, e.g. 4096 values spread
///   over 1e-300..1e300). Beyond that, a sign keeps its [`VALUE_STATS_COLLAPSE_KEEP`]
///   highest non-empty buckets and folds the lower ones into the lowest kept
///   (DDSketch-style): the largest positive values, and the negative values nearest zero,
///   keep the precision; a percentile whose true value is among the folded ones (the
///   lowest positive values, the most negative ones) reads above the true value, never
///   below it, and still within the exact min and max.
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
        // -0.0 + 0.0 is +0.0: a negative zero is reported as 0, like the positive one.
        let v = v + 0.0;
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

    /// Records `values` in order: the same statistics, bit for bit, as [`record`](Self::record)
    /// called on each, for less per value. `MetricCounter` folds its window with it.
    ///
    /// Blocks of values that are all finite, of one sign, in the buckets already laid out
    /// and within the moments' range (a metric's usual values) take a lean loop: one pass
    /// for their extremes, then per value only the sums and the bucket. Other blocks go
    /// value by value with the sums and min/max in registers.
    pub fn record_all(&mut self, values: &[f64]) {
        for block in values.chunks(RECORD_BLOCK) {
            if !self.record_plain_block(block) {
                self.record_each(block);
            }
        }
    }

    /// Records `block` if every value in it is finite, of one sign (zeros allowed), and
    /// close enough to the moments' shift to need no rescaling (checked on the block's
    /// extremes: the deviation from the shift is monotonic in the value); otherwise records
    /// nothing and returns false. The same operations as [`record`](Self::record), in the
    /// same order, for the sums (a zero's sign changes neither: the sums start at +0); min
    /// and max do not depend on the order; a value outside the laid-out buckets (or a zero)
    /// is counted as `record` counts it, in its turn.
    #[inline]
    fn record_plain_block(&mut self, block: &[f64]) -> bool {
        let m = self.moments;
        if m.n == 0 || block.is_empty() {
            return false;
        }
        // Extremes and finiteness, on four independent accumulators (no chain through the
        // block). `v * 0.0` is ±0 for a finite value, NaN for NaN and ±∞.
        let mut lo = [f64::INFINITY; 4];
        let mut hi = [f64::NEG_INFINITY; 4];
        let mut nan = [0.0f64; 4];
        let mut quads = block.chunks_exact(4);
        for q in &mut quads {
            for j in 0..4 {
                let v = q[j];
                lo[j] = if v < lo[j] { v } else { lo[j] };
                hi[j] = if v > hi[j] { v } else { hi[j] };
                nan[j] += v * 0.0;
            }
        }
        for &v in quads.remainder() {
            lo[0] = if v < lo[0] { v } else { lo[0] };
            hi[0] = if v > hi[0] { v } else { hi[0] };
            nan[0] += v * 0.0;
        }
        if (nan[0] + nan[1]) + (nan[2] + nan[3]) != 0.0 {
            return false;
        }
        // -0.0 is recorded as 0.
        let lo = lo[0].min(lo[1]).min(lo[2].min(lo[3])) + 0.0;
        let hi = hi[0].max(hi[1]).max(hi[2].max(hi[3])) + 0.0;
        let sign = if lo >= 0.0 {
            0
        } else if hi <= 0.0 {
            1
        } else {
            return false;
        };
        let in_spread = |v: f64| ((v - m.shift) * m.scale).abs() < SPREAD_LIMIT;
        if !(in_spread(lo) && in_spread(hi)) {
            return false;
        }
        let (shift, scale) = (m.shift, m.scale);
        let (mut s1, mut s2) = (m.s1, m.s2);
        let mut i = 0;
        while i < block.len() {
            // The store's window on locals: only a value outside it (handled after the
            // inner loop) needs the store itself, and may move the window.
            let store = &mut self.stores[sign];
            let (flip, offset) = (store.flip, store.offset);
            let counts = &mut store.counts[..];
            let mut outside = None;
            for &v in &block[i..] {
                i += 1;
                let d = (v - shift) * scale;
                s1 += d;
                s2 += d * d;
                let key = bucket_key(v.to_bits() & MAGNITUDE_BITS);
                match counts.get_mut((key ^ flip).wrapping_sub(offset) as usize) {
                    Some(c) => *c += 1,
                    None => {
                        outside = Some(key);
                        break;
                    }
                }
            }
            match outside {
                // Zeros (either sign) are counted with the positive values, as `record` does.
                Some(0) => self.stores[0].zeros += 1,
                Some(key) => self.stores[sign].add(key),
                None => {}
            }
        }
        self.moments.n += block.len() as u64;
        self.moments.s1 = s1;
        self.moments.s2 = s2;
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        true
    }

    /// [`record_all`](Self::record_all) for any values: each in turn, with the running sums
    /// and min/max in registers over the block.
    fn record_each(&mut self, values: &[f64]) {
        let (mut min, mut max) = (self.min, self.max);
        let mut non_finite = 0;
        // The moments' fast path, on scalar locals (kept in registers); anything else (the
        // first value, a value too far from the shift) goes through `Moments::add` on a
        // copy, whose fields are read back.
        let Moments {
            mut n,
            mut shift,
            mut s1,
            mut s2,
            mut scale_exp,
            mut scale,
        } = self.moments;
        let mut i = 0;
        while i < values.len() {
            // Each store's window on locals: the increments cannot move it, so only a value
            // outside a window (handled after the inner loop) needs the store itself.
            let [positive, negative] = &mut self.stores;
            let windows = [
                (positive.flip, positive.offset),
                (negative.flip, negative.offset),
            ];
            let counts: [&mut [u64]; 2] = [&mut positive.counts, &mut negative.counts];
            let mut outside = None;
            for &v in &values[i..] {
                i += 1;
                let v = v + 0.0;
                let bits = v.to_bits();
                let magnitude = bits & MAGNITUDE_BITS;
                if magnitude >= INFINITY_BITS {
                    non_finite += 1;
                    continue;
                }
                let d = (v - shift) * scale;
                if n != 0 && d.abs() < SPREAD_LIMIT {
                    n += 1;
                    s1 += d;
                    s2 += d * d;
                } else {
                    let m = add_out_of_line(
                        Moments {
                            n,
                            shift,
                            s1,
                            s2,
                            scale_exp,
                            scale,
                        },
                        v,
                    );
                    (n, shift, s1, s2, scale_exp, scale) =
                        (m.n, m.shift, m.s1, m.s2, m.scale_exp, m.scale);
                }
                // `v` is finite and zeros are +0.0 here, and `min`/`max` never NaN: plain
                // comparisons give what `f64::min`/`max` give, without their NaN handling
                // on the loop-carried chain.
                min = if v < min { v } else { min };
                max = if v > max { v } else { max };
                let sign = (bits >> 63) as usize;
                let key = bucket_key(magnitude);
                let (flip, offset) = windows[sign];
                match counts[sign].get_mut((key ^ flip).wrapping_sub(offset) as usize) {
                    Some(c) => *c += 1,
                    None => {
                        outside = Some((sign, key));
                        break;
                    }
                }
            }
            if let Some((sign, key)) = outside {
                self.stores[sign].add(key);
            }
        }
        self.moments = Moments {
            n,
            shift,
            s1,
            s2,
            scale_exp,
            scale,
        };
        self.min = min;
        self.max = max;
        self.non_finite += non_finite;
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
        // Both stores walk by increasing value: negatives (largest magnitude first), zeros,
        // positives.
        for (key, c) in neg.buckets() {
            seen += c;
            if seen >= rank {
                return neg.value(key);
            }
        }
        seen += neg.zeros + pos.zeros;
        if seen >= rank {
            return 0.0;
        }
        for (key, c) in pos.buckets() {
            seen += c;
            if seen >= rank {
                return pos.value(key);
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
        st.buckets().map(|(_, c)| c).sum::<u64>() + st.zeros
    }

    fn assert_bounded(st: &Store) {
        assert!(st.counts.len() <= VALUE_STATS_MAX_BUCKETS);
        assert!(st.counts.capacity() <= VALUE_STATS_MAX_BUCKETS);
        assert!(st.sparse.len() <= VALUE_STATS_MAX_SPARSE_BUCKETS);
        assert!(st.sparse.capacity() <= VALUE_STATS_MAX_SPARSE_BUCKETS + 1);
        assert!(st.sparse.windows(2).all(|w| w[0].0 < w[1].0));
        let (lo, hi) = (st.offset, st.offset + st.counts.len() as u32);
        assert!(st.sparse.iter().all(|&(k, c)| (k < lo || k >= hi) && c > 0));
        assert!(st.sparse.iter().all(|&(k, _)| k >= st.floor));
    }

    #[test]
    fn value_stats_memory_is_capped_and_counts_kept() {
        let mut s = ValueStats::new();
        let mut n = [0u64; 2];
        let mut nearest_zero = f64::NEG_INFINITY;
        // The largest value as recorded (`powi` may round differently in a constant).
        let mut largest = f64::NEG_INFINITY;
        for rep in 0..3 {
            for e in -300..=300 {
                for m in [1.0, 3.7, 9.9] {
                    let v = m * 10f64.powi(e) * if (e + rep) % 2 == 0 { 1.0 } else { -1.0 };
                    s.record(v);
                    n[usize::from(v < 0.0)] += 1;
                    largest = largest.max(v);
                    if v < 0.0 {
                        nearest_zero = nearest_zero.max(v);
                    }
                }
            }
        }
        for (sign, &n) in n.iter().enumerate() {
            assert_bounded(&s.stores[sign]);
            assert_eq!(stored(&s, sign), n);
            // 1 803 distinct buckets a sign: nothing folded.
            assert_eq!(s.stores[sign].floor, 0);
        }
        assert_eq!(s.quantile(1.0), largest);
        assert!((largest / (9.9 * 10f64.powi(300)) - 1.0).abs() < 1e-14);
        let negatives = n[1];
        let got = s.quantile(negatives as f64 / s.count() as f64);
        assert!((got - nearest_zero).abs() <= -nearest_zero * VALUE_STATS_RELATIVE_ERROR);
        // 100 000 distinct buckets of each sign: collapsed, still bounded, nothing lost.
        let mut s = ValueStats::new();
        for i in 0..100_000 {
            let v = 2f64.powf(i as f64 / 128.0 - 390.0);
            s.record(v);
            s.record(-v);
        }
        for sign in 0..2 {
            let st = &s.stores[sign];
            assert_bounded(st);
            assert_eq!(stored(&s, sign), 100_000);
            assert!(st.floor > 0);
            assert!(
                st.buckets().count() <= VALUE_STATS_MAX_SPARSE_BUCKETS + VALUE_STATS_MAX_BUCKETS
            );
        }
        let bytes = |st: &Store| st.counts.capacity() * 8 + st.sparse.capacity() * 16;
        assert!(bytes(&s.stores[0]) + bytes(&s.stores[1]) <= VALUE_STATS_MAX_BUCKET_BYTES);
        assert_eq!(s.quantile(1.0), 2f64.powf(99_999.0 / 128.0 - 390.0));
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
        // A slowly rising counter over 40 powers of two: the window fills up, the rest is
        // sparse, all counted.
        let mut s = ValueStats::new();
        let mut v = 1.0;
        while v < 2f64.powi(40) {
            s.record(v);
            v *= 1.001;
        }
        assert_eq!(s.stores[0].counts.len(), VALUE_STATS_MAX_BUCKETS);
        assert!(!s.stores[0].sparse.is_empty());
        assert_bounded(&s.stores[0]);
        assert_eq!(stored(&s, 0), s.count());
    }

    #[test]
    fn the_window_follows_the_bulk_of_the_values() {
        // An outlier first placed the window; the bulk, 2^60 away, moves it.
        let mut s = ValueStats::new();
        s.record(1e-12);
        for i in 0..10_000 {
            s.record(30.0 + (i % 7) as f64);
        }
        let st = &s.stores[0];
        assert_bounded(st);
        assert!(
            bucket_value(st.offset) < 30.0
                && bucket_value(st.offset + st.counts.len() as u32) > 36.0
        );
        assert_eq!(st.sparse.len(), 1);
        assert_eq!(s.quantile(0.0), 1e-12);
        assert_eq!(s.quantile(0.5), 33.0);
    }

    #[test]
    fn negatives_fold_their_largest_magnitudes() {
        let mut s = ValueStats::new();
        let values: Vec<f64> = (0..10_000)
            .map(|i| -(2f64.powf(i as f64 / 100.0)))
            .collect();
        for &v in &values {
            s.record(v);
        }
        let st = &s.stores[1];
        assert_bounded(st);
        assert!(st.floor > 0);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let kept_from = sorted.len() - VALUE_STATS_COLLAPSE_KEEP;
        for q in [0.0, 0.1, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99, 1.0] {
            let want = exact_quantile(&sorted, q);
            let got = s.quantile(q);
            let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
            if rank > kept_from || rank == 1 {
                assert!(
                    (got - want).abs() <= -want * VALUE_STATS_RELATIVE_ERROR,
                    "q{q}"
                );
            } else {
                assert!(got >= want, "q{q}: {got} < {want}");
            }
        }
        assert_eq!(s.quantile(0.0), -(2f64.powf(99.99)));
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
