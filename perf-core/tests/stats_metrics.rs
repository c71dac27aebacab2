//! `MetricCounter` statistics over magnitudes and signs (issue 10 item 6), and the exact
//! percentiles of its window.

use heimdall_perf_core::metrics::MetricCounter;
use heimdall_perf_core::stats::VALUE_STATS_RELATIVE_ERROR;
use heimdall_perf_core::MetricType;

fn counter() -> MetricCounter {
    MetricCounter::new("m", MetricType::Custom("test".into()), "u", 8)
}

#[test]
fn counter_statistics_keep_precision_for_tiny_huge_and_negative_values() {
    for scale in [1e-300, 1e-4, 1.0, 1e18, 1e300] {
        let mut c = counter();
        // -50 … 50 times the scale, zero included.
        for i in -50..=50 {
            c.set(i as f64 * scale * 1.01);
        }
        let s = c.statistics();
        assert_eq!(s.count, 101);
        assert_eq!(s.p50, 0.0, "scale {scale:e}");
        for (got, want) in [(s.p90, 40.0), (s.p99, 49.0)] {
            let want = want * scale * 1.01;
            assert!(
                (got - want).abs() <= want * VALUE_STATS_RELATIVE_ERROR,
                "scale {scale:e}: got {got:e}, want {want:e}"
            );
        }
        assert!(
            s.mean.abs() <= 1e-12 * scale,
            "scale {scale:e}: mean {:e}",
            s.mean
        );
    }
}

#[test]
fn window_statistics_have_exact_percentiles() {
    let mut c = counter();
    for v in [
        5.0,
        1.001,
        3.3,
        f64::NAN,
        2.2,
        4.4,
        0.123_456_7,
        7.77,
        6.06,
        8.5,
    ] {
        c.set(v);
    }
    // The window holds the last 8 values, NaN among them.
    let w = c.window_statistics();
    assert_eq!(w.count, 7);
    let mut sorted = [3.3, 2.2, 4.4, 0.123_456_7, 7.77, 6.06, 8.5];
    sorted.sort_by(f64::total_cmp);
    assert_eq!(w.p50, sorted[3]);
    assert_eq!(w.p90, sorted[6]);
    assert_eq!(w.min, sorted[0]);
    assert_eq!(w.max, sorted[6]);
    let all = c.statistics();
    assert_eq!(all.count, 9);
}
