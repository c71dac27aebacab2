//! Issue 10 item 6: the three cases the issue names, as regression tests of `ValueStats`
//! (and of `MetricCounter`, which keeps one).

use heimdall_perf_core::metrics::MetricCounter;
use heimdall_perf_core::stats::{ValueStats, PERCENTILE_RELATIVE_PRECISION};
use heimdall_perf_core::MetricType;

mod common;
use common::exact_quantile;

fn assert_close(what: &str, got: f64, want: f64) {
    let err = (got - want).abs() / want.abs();
    assert!(
        err <= PERCENTILE_RELATIVE_PRECISION,
        "{what}: got {got:e}, want {want:e} (relative error {err:e})"
    );
}

fn check_percentiles(values: &[f64]) {
    let mut s = ValueStats::new();
    for &v in values {
        s.record(v);
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let sum = s.summary();
    for (name, got, q) in [
        ("p50", sum.p50, 0.5),
        ("p90", sum.p90, 0.9),
        ("p95", sum.p95, 0.95),
        ("p99", sum.p99, 0.99),
        ("p99.9", sum.p999, 0.999),
    ] {
        assert_close(name, got, exact_quantile(&sorted, q));
    }
}

/// "Latencies of 0.1–0.9 ms given in seconds get p50 wrong by 80 %": the old histogram kept
/// a thousandth of the unit.
#[test]
fn sub_millisecond_latencies_in_seconds_keep_one_percent() {
    let values: Vec<f64> = (0..1000).map(|i| 1e-4 + 8e-4 * i as f64 / 999.0).collect();
    check_percentiles(&values);
    // The same through a counter, as an application would record them.
    let mut c = MetricCounter::new("latency", MetricType::Latency, "s", 10);
    for &v in &values {
        c.set(v);
    }
    assert_close("counter p50", c.statistics().p50, 5e-4);
}

/// "Values 1e17–1e19 give p50 = p99 = min": the scaled value saturated the integer
/// histogram.
#[test]
fn huge_values_keep_one_percent() {
    // Log-spaced from 1e17 to 1e19.
    let values: Vec<f64> = (0..1000)
        .map(|i| 10f64.powf(17.0 + 2.0 * i as f64 / 999.0))
        .collect();
    check_percentiles(&values);
    let mut s = ValueStats::new();
    for &v in &values {
        s.record(v);
    }
    let sum = s.summary();
    assert!(sum.p50 > sum.min && sum.p99 > sum.p50, "{sum:?}");
}

/// "±1e308 gives a NaN sum and a −inf mean": the shifted sums overflowed.
#[test]
fn plus_minus_1e308_give_finite_sum_mean_and_stddev() {
    let mut s = ValueStats::new();
    for _ in 0..500 {
        s.record(1e308);
        s.record(-1e308);
    }
    let sum = s.summary();
    assert_eq!(sum.count, 1000);
    // Zero up to the rounding of a thousand additions of 2e308.
    assert!(sum.sum.abs() <= 1e-9 * 1e308, "sum {:e}", sum.sum);
    assert!(sum.mean.abs() <= 1e-12 * 1e308, "mean {:e}", sum.mean);
    assert_close("stddev", sum.stddev, 1e308);
    assert_eq!(sum.min, -1e308);
    assert_eq!(sum.max, 1e308);
    assert_close("p50", sum.p50, -1e308);
    assert_close("p99", sum.p99, 1e308);

    // The first value far from the rest: the mean and deviation are still right.
    let mut s = ValueStats::new();
    s.record(-1e308);
    for _ in 0..9 {
        s.record(1e308);
    }
    let sum = s.summary();
    assert_close("mean", sum.mean, 0.8e308);
    assert_close("stddev", sum.stddev, 0.6e308);
    // 8e308 does not fit in an f64: the sum overflows, honestly.
    assert_eq!(sum.sum, f64::INFINITY);

    // Two values whose sum overflows: the sum is +inf, the mean is still right.
    let mut s = ValueStats::new();
    s.record(1e308);
    s.record(1e308);
    let sum = s.summary();
    assert_eq!(sum.sum, f64::INFINITY);
    assert_eq!(sum.mean, 1e308);
    assert_eq!(sum.stddev, 0.0);
}

#[test]
fn tiny_values_keep_their_spread() {
    // Squared deviations of values near 1e-158 underflow unless the sums are scaled up.
    let mut s = ValueStats::new();
    for v in [1e-158, 1e-159] {
        s.record(v);
    }
    let sum = s.summary();
    let sd = (1e-158 - 1e-159) / 2.0;
    assert!(
        (sum.stddev - sd).abs() <= 1e-12 * sd,
        "{:e} vs {sd:e}",
        sum.stddev
    );
    assert!(
        (sum.mean - 5.5e-159).abs() <= 1e-12 * 5.5e-159,
        "{:e}",
        sum.mean
    );
    // Tiny first, huge later: both ends of the range in one set.
    let mut s = ValueStats::new();
    for v in [1e-300, 1e300, -1e300, 1e-300] {
        s.record(v);
    }
    let sum = s.summary();
    // The true mean is 5e-301: zero to the precision a sum over ±1e300 has.
    assert!(sum.mean.abs() <= 1e-12 * 1e300, "{:e}", sum.mean);
    let sd = 1e300 / 2f64.sqrt();
    assert!((sum.stddev - sd).abs() <= 1e-12 * sd, "{:e}", sum.stddev);
}
