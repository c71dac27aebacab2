//! Memory stays flat however many spans are recorded: 10 million spans on one thread, with
//! the resident set size (VmRSS in /proc/self/status) measured after the first million and
//! after the last. Alone in its binary so that no other test allocates meanwhile.

mod common;
use common::rss_bytes;

use heimdall_perf_core::{scope, ProfilingSession};

fn record(n: u64) {
    for i in 0..n {
        let _frame = scope!("frame");
        let _stage = if i % 2 == 0 {
            scope!("detect")
        } else {
            scope!("decide")
        };
    }
}

#[test]
fn memory_stays_flat_over_ten_million_spans() {
    let mut session = ProfilingSession::new("memory");
    // Warm up: the first million spans create the paths, histograms and chunks.
    record(500_000);
    let _ = session.report();
    let after_1m = rss_bytes();
    record(4_500_000);
    let _ = session.report();
    let after_10m = rss_bytes();
    session.stop();
    let r = session.report();
    assert_eq!(r.span_count(), 10_000_000);
    let growth = after_10m.saturating_sub(after_1m);
    eprintln!(
        "RSS after 1M spans: {} KiB, after 10M: {} KiB, growth {} KiB",
        after_1m / 1024,
        after_10m / 1024,
        growth / 1024
    );
    // A per-span allocation kept would be ≥ 9M × 16 bytes = 144 MB. The bound allows the
    // lane backlog (64 chunks × 64 KiB) and histogram growth for new maxima.
    assert!(growth < 8 * 1024 * 1024, "RSS grew by {growth} bytes");
}
