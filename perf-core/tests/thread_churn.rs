//! Threads that come and go — worker pools that respawn, `std::thread::scope`,
//! `spawn_blocking` — leave neither memory nor rows behind, and lose no span: each exited
//! thread's lane is retired into the session's aggregate. Alone in its binary, with a
//! counting allocator, so that the live heap measures this test only.

mod common;
use common::rss_bytes;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

use heimdall_perf_core::limits::{EXITED_THREADS_NAME, RETAINED_EXITED_THREADS};
use heimdall_perf_core::{scope, ProfilingSession};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const AT_ONCE: usize = 64;
const ROUNDS: usize = 200;

/// `rounds` times, 64 threads at once, each recording two nested spans, then exiting.
fn churn(rounds: usize) {
    for _ in 0..rounds {
        std::thread::scope(|s| {
            for _ in 0..AT_ONCE {
                s.spawn(|| {
                    let _outer = scope!("task");
                    let _inner = scope!("short");
                });
            }
        });
    }
}

#[test]
fn exited_threads_are_folded_exactly_in_bounded_memory() {
    let mut session = ProfilingSession::new("churn");
    churn(20);
    drop(session.report());
    let (heap_before, rss_before) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    churn(ROUNDS - 20);
    // `thread::scope` returns once the closures have ended; a thread's locals (its lane's
    // producer) may be dropped a moment later.
    let threads = (ROUNDS * AT_ONCE) as u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let r = loop {
        let r = session.report();
        if r.diagnostics.exited_threads == threads || std::time::Instant::now() > deadline {
            break r;
        }
        drop(r);
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let rss_after = rss_bytes();
    session.stop();

    assert_eq!(r.span_total(&["task", "short"]).unwrap().count, threads);
    assert_eq!(r.span_total(&["task"]).unwrap().count, threads);
    assert_eq!(r.diagnostics.overflowed_spans, 0);
    assert_eq!(r.diagnostics.exited_threads, threads);
    assert_eq!(
        r.diagnostics.folded_threads,
        threads - RETAINED_EXITED_THREADS as u64
    );
    assert_eq!(r.diagnostics.abandoned_spans, 0);

    // Rows: the retained exited threads and one `<exited threads>` row holding the rest.
    assert_eq!(
        r.threads.len(),
        RETAINED_EXITED_THREADS + 1,
        "{:?}",
        r.threads
    );
    let exited: Vec<_> = r
        .spans
        .iter()
        .filter(|s| s.thread.as_deref() == Some(EXITED_THREADS_NAME))
        .collect();
    assert_eq!(exited.len(), 2, "one row per path: {exited:#?}");
    assert!(exited
        .iter()
        .all(|s| s.count == threads - RETAINED_EXITED_THREADS as u64));
    assert_eq!(r.spans.len(), 2 * (RETAINED_EXITED_THREADS + 1));

    drop(r);
    let heap_after = LIVE.load(Ordering::Relaxed);
    let growth = heap_after - heap_before;
    eprintln!(
        "after {} threads → after {threads}: live heap {} KiB → {} KiB, RSS {} KiB → {} KiB",
        20 * AT_ONCE,
        heap_before / 1024,
        heap_after / 1024,
        rss_before / 1024,
        rss_after / 1024,
    );
    // Keeping every exited thread cost ~3.6 kB each: 11 520 more threads would be ~41 MB.
    assert!(growth < 1024 * 1024, "the live heap grew by {growth} bytes");
}
