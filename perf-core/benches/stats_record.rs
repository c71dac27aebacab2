//! `ValueStats::record` and `MetricCounter::set` against the implementation they replaced
//! (scaled integer HDR histograms and unscaled shifted sums, copied below), in the same run.
//!
//! `cargo bench -p heimdall-perf-core --bench stats_record`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use heimdall_perf_core::metrics::MetricCounter;
use heimdall_perf_core::stats::ValueStats;
use heimdall_perf_core::MetricType;

/// The `ValueStats` of commit d0bd686, for comparison: values scaled to thousandths into
/// two HDR histograms, shifted sums for the moments.
mod old {
    use hdrhistogram::Histogram;

    #[derive(Default)]
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
    }

    pub struct ValueStats {
        moments: Moments,
        non_finite: u64,
        min: f64,
        max: f64,
        pos: Histogram<u64>,
        neg: Histogram<u64>,
    }

    impl ValueStats {
        pub fn new() -> Self {
            ValueStats {
                moments: Moments::default(),
                non_finite: 0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                pos: Histogram::new(2).unwrap(),
                neg: Histogram::new(2).unwrap(),
            }
        }

        #[inline]
        pub fn record(&mut self, v: f64) {
            if !v.is_finite() {
                self.non_finite += 1;
                return;
            }
            self.moments.add(v);
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            let scaled = (v.abs() * 1000.0 + 0.5) as u64;
            if v < 0.0 {
                let _ = self.neg.record(scaled);
            } else {
                let _ = self.pos.record(scaled);
            }
        }
    }

    /// `MetricCounter` of the same commit: a window and the statistics.
    pub struct MetricCounter {
        window: Box<[f64]>,
        pos: usize,
        filled: usize,
        last: f64,
        stats: ValueStats,
    }

    impl MetricCounter {
        pub fn new(window: usize) -> Self {
            MetricCounter {
                window: vec![0.0; window.max(1)].into_boxed_slice(),
                pos: 0,
                filled: 0,
                last: f64::NAN,
                stats: ValueStats::new(),
            }
        }

        #[inline]
        pub fn set(&mut self, value: f64) {
            self.last = value;
            self.window[self.pos] = value;
            self.pos += 1;
            if self.pos == self.window.len() {
                self.pos = 0;
            }
            if self.filled < self.window.len() {
                self.filled += 1;
            }
            self.stats.record(value);
        }
    }
}

/// The frame-rate-like stream of the workspace bench: 0, 0.25, …, 120, 0, …
fn fps(v: &mut f64) -> f64 {
    *v += 0.25;
    if *v > 120.0 {
        *v = 0.0;
    }
    *v
}

/// Latencies in seconds, 0.1 to 10 ms.
fn latency(v: &mut f64) -> f64 {
    *v *= 1.013;
    if *v > 1e-2 {
        *v = 1e-4;
    }
    *v
}

fn record(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats");
    for (stream, next, start) in [
        ("fps 0-120", fps as fn(&mut f64) -> f64, 0.0),
        ("latency 1e-4-1e-2 s", latency, 1e-4),
    ] {
        let mut s = old::ValueStats::new();
        let mut v = start;
        g.bench_function(format!("old ValueStats::record, {stream}"), |b| {
            b.iter(|| s.record(black_box(next(&mut v))))
        });
        let mut s = ValueStats::new();
        let mut v = start;
        g.bench_function(format!("new ValueStats::record, {stream}"), |b| {
            b.iter(|| s.record(black_box(next(&mut v))))
        });
    }
    let mut c_old = old::MetricCounter::new(100);
    let mut v = 0.0;
    g.bench_function("old MetricCounter::set, fps 0-120", |b| {
        b.iter(|| c_old.set(black_box(fps(&mut v))))
    });
    let mut c_new = MetricCounter::new("fps", MetricType::Throughput, "fps", 100);
    let mut v = 0.0;
    g.bench_function("new MetricCounter::set, fps 0-120", |b| {
        b.iter(|| c_new.set(black_box(fps(&mut v))))
    });
    // Report time: the summary of 100 000 latencies.
    let mut s = ValueStats::new();
    let mut v = 1e-4;
    for _ in 0..100_000 {
        s.record(latency(&mut v));
    }
    g.bench_function("new ValueStats::summary, 100k latencies", |b| {
        b.iter(|| black_box(s.summary()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = record
}
criterion_main!(benches);
