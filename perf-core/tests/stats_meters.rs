//! Meters and counters with extreme arguments: no panic, no abort, saturating counts,
//! clamped windows.

use std::time::Duration;

use heimdall_perf_core::metrics::{
    MetricCounter, ThroughputMeter, Timer, METRIC_COUNTER_MAX_WINDOW, THROUGHPUT_MAX_WINDOW,
};
use heimdall_perf_core::MetricType;

#[test]
fn throughput_meter_takes_any_window() {
    for window in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_secs(86_400),
        Duration::from_secs(100_000_000_000),
        Duration::from_secs(u64::MAX / 4),
        Duration::MAX,
    ] {
        let mut m = ThroughputMeter::new("m", window);
        assert!(m.window() <= THROUGHPUT_MAX_WINDOW);
        assert!(m.window() >= Duration::from_millis(10));
        m.add(5);
        m.tick();
        let r = m.rate();
        assert!(r.is_finite() && r >= 0.0, "{window:?}: {r}");
        assert_eq!(m.total(), 6);
        let _ = m.to_measurement();
    }
    assert_eq!(
        ThroughputMeter::new("m", Duration::MAX).window(),
        THROUGHPUT_MAX_WINDOW
    );
}

#[test]
fn throughput_meter_counts_saturate() {
    let mut m = ThroughputMeter::new("m", Duration::from_secs(1));
    m.add(u64::MAX);
    m.tick();
    m.add(u64::MAX);
    assert_eq!(m.total(), u64::MAX);
    let r = m.rate();
    assert!(r.is_finite() && r > 0.0, "{r}");
    // Saturated across buckets too.
    let mut m = ThroughputMeter::new("m", Duration::from_millis(10));
    for _ in 0..4 {
        m.add(u64::MAX / 2);
        std::thread::sleep(Duration::from_millis(3));
    }
    assert_eq!(m.total(), u64::MAX);
    assert!(m.rate().is_finite());
}

#[test]
fn metric_counter_window_grows_as_values_arrive() {
    // Used to abort the process: the window was allocated up front.
    for window in [usize::MAX, usize::MAX / 16, 1 << 40] {
        let mut c = MetricCounter::new("m", MetricType::Custom("t".into()), "u", window);
        assert_eq!(c.window_len(), METRIC_COUNTER_MAX_WINDOW);
        for i in 0..100 {
            c.set(i as f64);
        }
        assert!(c.window_values().eq((0..100).map(|i| i as f64)));
        assert_eq!(c.window_statistics().count, 100);
    }
}

#[test]
fn metric_counter_ring_overwrites_the_oldest() {
    for window in [1, 2, 3, 7, 100] {
        let mut c = MetricCounter::new("m", MetricType::Custom("t".into()), "u", window);
        for i in 0..250 {
            c.set(i as f64);
            let n = (i + 1).min(window);
            let want: Vec<f64> = (i + 1 - n..=i).map(|v| v as f64).collect();
            assert_eq!(
                c.window_values().collect::<Vec<_>>(),
                want,
                "window {window}"
            );
        }
    }
    let c = MetricCounter::new("m", MetricType::Custom("t".into()), "u", 0);
    assert_eq!(c.window_len(), 1);
}

#[test]
fn negative_zero_in_the_window_is_zero() {
    let mut c = MetricCounter::new("m", MetricType::Custom("t".into()), "u", 8);
    for v in [-0.0, 0.0, -0.0] {
        c.set(v);
    }
    for s in [c.statistics(), c.window_statistics()] {
        for v in [s.min, s.max, s.p50, s.p99] {
            assert!(v.is_sign_positive(), "{s:?}");
        }
    }
}

#[test]
fn timer_statistics_never_panic() {
    let mut t = Timer::new("t");
    assert!(t.stop().is_err());
    t.start();
    t.lap().unwrap();
    t.stop().unwrap();
    assert_eq!(t.statistics().count, 2);
}
