//! Memory stays flat however many frames are recorded: 10 million frames (birth, a stage,
//! finish; one in ten missing its budget), with the resident set size measured after the
//! first million and after the last. Alone in its binary so that no other test allocates
//! meanwhile.

mod common;
use common::rss_bytes;

use std::time::Duration;

use heimdall_perf_core::{frame, ProfilingSession};

fn record(n: u64) {
    for i in 0..n {
        let f = frame!("cam-0");
        {
            let _s = f.stage(if i % 10 == 0 { "detect" } else { "decide" });
        }
        f.finish();
    }
}

#[test]
fn memory_stays_flat_over_ten_million_frames() {
    let mut session = ProfilingSession::new("frames-memory");
    // A budget no frame meets: every frame misses, so attribution and the flight recorder
    // work on every one.
    session.set_frame_budget("cam-0", Duration::from_nanos(1));
    record(1_000_000);
    let _ = session.report();
    let after_1m = rss_bytes();
    record(9_000_000);
    let _ = session.report();
    let after_10m = rss_bytes();
    session.stop();
    let r = session.report();
    let cam = r.frame_source("cam-0").unwrap();
    assert_eq!(cam.finished, 10_000_000);
    assert_eq!(cam.missed, 10_000_000);
    assert_eq!(
        cam.incidents.len(),
        heimdall_perf_core::limits::DEFAULT_MAX_INCIDENTS
    );
    let growth = after_10m.saturating_sub(after_1m);
    eprintln!(
        "RSS after 1M frames: {} KiB, after 10M: {} KiB, growth {} KiB",
        after_1m / 1024,
        after_10m / 1024,
        growth / 1024
    );
    // A per-frame allocation kept would be ≥ 9M × 16 bytes = 144 MB. The bound allows the
    // lane backlog (64 chunks × 64 KiB) and histogram growth for new maxima.
    assert!(growth < 8 * 1024 * 1024, "RSS grew by {growth} bytes");
}
