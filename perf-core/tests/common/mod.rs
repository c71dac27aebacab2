//! Helpers shared by the tests of perf-core.
#![allow(dead_code)] // each test binary uses its own subset

pub mod pacing;
pub mod quick;

use heimdall_perf_core::stats::{Summary, ValueStats};

/// Every field of a summary as bits, to compare statistics bit for bit.
pub fn summary_bits(s: &Summary) -> [u64; 11] {
    [
        s.count,
        s.sum.to_bits(),
        s.min.to_bits(),
        s.max.to_bits(),
        s.mean.to_bits(),
        s.stddev.to_bits(),
        s.p50.to_bits(),
        s.p90.to_bits(),
        s.p95.to_bits(),
        s.p99.to_bits(),
        s.p999.to_bits(),
    ]
}

/// The quantiles every statistics test checks.
pub const QUANTILES: [f64; 14] = [
    0.0, 0.001, 0.01, 0.1, 0.25, 0.333, 0.5, 0.667, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0,
];

/// The rank-`ceil(q·n)` value of sorted values (at least the first).
pub fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

/// `ValueStats` of `values`, recorded in order.
pub fn stats_of(values: &[f64]) -> ValueStats {
    let mut s = ValueStats::new();
    for &v in values {
        s.record(v);
    }
    s
}

/// This process's resident set size in bytes (`VmRSS` of `/proc/self/status`).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .expect("VmRSS value")
        * 1024
}

/// Runs this binary's test `name` again, alone, in a child process of its own (for tests of
/// process-wide state: a thread started once per process, say), and returns `true` in the
/// child, `false` in the parent once the child passed. The parent fails if the child failed
/// or did not run the test.
pub fn in_child(name: &str) -> bool {
    const CHILD_ENV: &str = "HEIMDALL_TEST_CHILD";
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        return true;
    }
    heimdall_perf_testkit::child::run_test_alone(name, CHILD_ENV, name);
    false
}
