//! Public behaviour of the recording engine: span paths, self times, exact counts under
//! concurrency, error cases, current-session switching.
//!
//! `scope!` records into the process-wide current session, so the tests of this binary take
//! a lock to run one at a time.

use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use heimdall_perf_core::{scope, PerfError, ProfilingSession, Report};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn thread_span<'a>(
    r: &'a Report,
    thread: &str,
    path: &[&str],
) -> &'a heimdall_perf_core::SpanStats {
    r.spans
        .iter()
        .find(|s| {
            s.thread.as_deref() == Some(thread)
                && s.path.iter().map(String::as_str).eq(path.iter().copied())
        })
        .unwrap_or_else(|| panic!("no span {path:?} on thread {thread}: {:#?}", r.spans))
}

const MS: u64 = 1_000_000;

#[test]
fn nested_timings_on_two_threads_give_paths_and_self_times() {
    let _g = serial();
    let session = Arc::new(Mutex::new(ProfilingSession::new("nested")));
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = ["cam-a", "cam-b"]
        .into_iter()
        .map(|name| {
            let session = Arc::clone(&session);
            let barrier = Arc::clone(&barrier);
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || {
                    barrier.wait();
                    // The time each frame took as this thread saw it (around its timing),
                    // and its detect timings: the frame's self time is at most the one
                    // minus the other, however long the sleeps overshot.
                    let (mut outside, mut detects) = (Duration::ZERO, Duration::ZERO);
                    for _ in 0..3 {
                        let t0 = Instant::now();
                        session.lock().unwrap().start_timing("frame");
                        std::thread::sleep(Duration::from_millis(4));
                        session.lock().unwrap().start_timing("detect");
                        std::thread::sleep(Duration::from_millis(8));
                        let d = session.lock().unwrap().stop_timing("detect").unwrap();
                        assert!(d >= Duration::from_millis(8));
                        std::thread::sleep(Duration::from_millis(2));
                        session.lock().unwrap().stop_timing("frame").unwrap();
                        outside += t0.elapsed();
                        detects += d;
                    }
                    (name, outside.saturating_sub(detects))
                })
                .unwrap()
        })
        .collect();
    let mut measured = std::collections::BTreeMap::new();
    for h in handles {
        let (name, self_time) = h.join().unwrap();
        measured.insert(name, self_time);
    }
    let r = session.lock().unwrap().report();
    assert_eq!(r.threads.len(), 2, "{:?}", r.threads);
    for t in ["cam-a", "cam-b"] {
        let frame = thread_span(&r, t, &["frame"]);
        let detect = thread_span(&r, t, &["frame", "detect"]);
        assert_eq!(frame.count, 3);
        assert_eq!(detect.count, 3);
        // Self time is exactly total minus the children's total.
        assert_eq!(frame.self_ns, frame.total_ns - detect.total_ns);
        assert_eq!(detect.self_ns, detect.total_ns);
        // 3 × (4 + 2) ms outside detect, 3 × 8 ms inside; sleeps only overshoot (by as much
        // as a loaded machine makes them: at most what the thread measured around them).
        let most = measured[t].as_nanos() as u64 + MS;
        assert!(frame.self_ns >= 18 * MS, "{}", frame.self_ns);
        assert!(frame.self_ns < most, "{} (measured {most})", frame.self_ns);
        assert!(detect.total_ns >= 24 * MS, "{}", detect.total_ns);
        assert!(detect.duration.min >= 8.0 * MS as f64);
    }
    let totals = r.span_total(&["frame", "detect"]).unwrap();
    assert_eq!(totals.count, 6);
    assert_eq!(totals.thread, None);
}

#[test]
fn scope_from_four_threads_loses_no_span() {
    let _g = serial();
    let mut session = ProfilingSession::new("concurrent");
    const N: u64 = 100_000;
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    barrier.wait();
                    for k in 0..N {
                        let _outer = scope!("outer");
                        if k % 2 == 0 {
                            let _inner = scope!("inner");
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    session.stop();
    let r = session.report();
    assert_eq!(r.span_total(&["outer"]).unwrap().count, 4 * N);
    assert_eq!(r.span_total(&["outer", "inner"]).unwrap().count, 2 * N);
    for i in 0..4 {
        let t = format!("worker-{i}");
        assert_eq!(thread_span(&r, &t, &["outer"]).count, N);
        assert_eq!(thread_span(&r, &t, &["outer", "inner"]).count, N / 2);
    }
    assert_eq!(r.span_count(), 6 * N);
    assert_eq!(r.diagnostics.misnested_exits, 0);
    assert_eq!(r.diagnostics.open_spans, 0);
    assert!(r.timeline.len() as u64 <= r.diagnostics.timeline_capacity);
}

#[test]
fn scope_and_timings_share_one_tree() {
    let _g = serial();
    let mut session = ProfilingSession::new("mixed");
    session.start_timing("frame");
    {
        let _d = scope!("detect");
        session.start_timing("nms");
        session.stop_timing("nms").unwrap();
    }
    session.stop_timing("frame").unwrap();
    let r = session.report();
    assert_eq!(r.span_total(&["frame", "detect", "nms"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["frame", "detect"]).unwrap().count, 1);
}

#[test]
fn stopping_wrong_timings_is_an_error_and_loses_nothing() {
    let _g = serial();
    let mut s = ProfilingSession::new("errors");
    let e = s.stop_timing("never").unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }));
    assert!(
        e.to_string().contains("`never`") && e.to_string().contains("`errors`"),
        "{e}"
    );

    s.start_timing("outer");
    s.start_timing("inner");
    let e = s.stop_timing("outer").unwrap_err();
    assert!(matches!(e, PerfError::TimingOutOfOrder { .. }), "{e}");
    assert!(e.to_string().contains("`inner`"), "{e}");
    // Still open and still nested: stop them in order.
    s.stop_timing("inner").unwrap();
    s.stop_timing("outer").unwrap();

    // A scope still open inside a timing ends with it; its guard, dropped later, is
    // counted as out of order.
    s.start_timing("t");
    let guard = scope!("inside");
    s.stop_timing("t").unwrap();
    drop(guard);

    // Stopping on another thread than the one that started is refused.
    s.start_timing("cross");
    let s = Arc::new(Mutex::new(s));
    let s2 = Arc::clone(&s);
    let e = std::thread::spawn(move || s2.lock().unwrap().stop_timing("cross"))
        .join()
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }), "{e}");
    s.lock().unwrap().stop_timing("cross").unwrap();

    let r = s.lock().unwrap().report();
    assert_eq!(r.span_total(&["outer", "inner"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["outer"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["t", "inside"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["cross"]).unwrap().count, 1);
    assert_eq!(r.diagnostics.misnested_exits, 1);
    assert_eq!(r.diagnostics.leaked_spans, 0);
    assert_eq!(r.diagnostics.open_spans, 0);
}

#[test]
fn a_guard_leaked_inside_a_timing_cannot_block_it() {
    let _g = serial();
    let mut s = ProfilingSession::new("leak in timing");
    s.start_timing("frame");
    std::mem::forget(scope!("leaked"));
    s.stop_timing("frame").unwrap();
    s.start_timing("next");
    s.stop_timing("next").unwrap();
    let r = s.report();
    assert_eq!(r.span_total(&["frame"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["frame", "leaked"]).unwrap().count, 1);
    assert_eq!(
        r.span_total(&["next"]).unwrap().count,
        1,
        "{:#?}",
        r.span_totals
    );
    assert_eq!(r.diagnostics.leaked_spans, 1);
    assert_eq!(r.diagnostics.open_spans, 0);
}

#[test]
fn recursion_closes_the_innermost() {
    let _g = serial();
    let mut s = ProfilingSession::new("recursion");
    s.start_timing("f");
    s.start_timing("f");
    s.stop_timing("f").unwrap();
    s.stop_timing("f").unwrap();
    assert!(s.stop_timing("f").is_err());
    let r = s.report();
    assert_eq!(r.span_total(&["f", "f"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["f"]).unwrap().count, 1);
}

#[test]
fn scope_goes_to_the_most_recent_active_session() {
    let _g = serial();
    let mut a = ProfilingSession::new("a");
    {
        let _s = scope!("in_a");
    }
    let mut b = ProfilingSession::new("b");
    {
        let _s = scope!("in_b");
    }
    b.stop();
    {
        let _s = scope!("in_a_again");
    }
    a.stop();
    assert!(!heimdall_perf_core::is_recording());
    {
        let s = scope!("nowhere");
        assert!(!s.is_recording());
    }
    let ra = a.report();
    let rb = b.report();
    assert!(ra.span_total(&["in_a"]).is_some());
    assert!(ra.span_total(&["in_a_again"]).is_some());
    assert!(ra.span_total(&["in_b"]).is_none());
    assert!(rb.span_total(&["in_b"]).is_some());
    assert_eq!(rb.span_count(), 1);
}

#[test]
fn a_scope_that_ends_closes_timings_opened_inside_it() {
    let _g = serial();
    let mut s = ProfilingSession::new("orphans");
    {
        let _g = scope!("stage");
        s.start_timing("forgotten");
    }
    let e = s.stop_timing("forgotten").unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }), "{e}");
    let r = s.report();
    assert_eq!(r.span_total(&["stage", "forgotten"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["stage"]).unwrap().count, 1);
    assert_eq!(r.diagnostics.open_spans, 0);
}

#[test]
fn spans_of_exited_threads_are_kept() {
    let _g = serial();
    let s = ProfilingSession::new("exited");
    for i in 0..8 {
        std::thread::spawn(move || {
            for _ in 0..1000 + i {
                let _x = scope!("short_lived");
            }
        })
        .join()
        .unwrap();
    }
    let r = s.report();
    assert_eq!(
        r.span_total(&["short_lived"]).unwrap().count,
        (0..8).map(|i| 1000 + i).sum::<u64>()
    );
    assert_eq!(r.threads.len(), 8);
}

#[test]
fn distinct_paths_are_bounded() {
    let _g = serial();
    let mut s = ProfilingSession::new("many names");
    let limit = heimdall_perf_core::limits::MAX_PATHS;
    for i in 0..limit + 50 {
        let name = format!("dynamic_{i}");
        s.start_timing(&name);
        s.stop_timing(&name).unwrap();
    }
    let r = s.report();
    assert_eq!(r.spans.len(), limit + 1);
    assert_eq!(r.diagnostics.overflowed_spans, 50);
    assert_eq!(r.span_total(&["<overflow>"]).unwrap().count, 50);
    assert_eq!(r.span_count(), (limit + 50) as u64);
}

#[test]
fn open_spans_are_counted_not_reported() {
    let _g = serial();
    let mut s = ProfilingSession::new("open");
    s.start_timing("running");
    let r = s.report();
    assert_eq!(r.diagnostics.open_spans, 1);
    assert!(r.span_total(&["running"]).is_none());
    s.stop_timing("running").unwrap();
    assert_eq!(s.report().span_total(&["running"]).unwrap().count, 1);
}

#[test]
fn a_leaked_guard_is_closed_when_its_enclosing_span_ends() {
    let _g = serial();
    let s = ProfilingSession::new("leak");
    for _ in 0..3 {
        let _frame = scope!("frame");
        std::mem::forget(scope!("leaked"));
        let _after = scope!("after");
    }
    let _next = scope!("next");
    drop(_next);
    let r = s.report();
    // Each frame ended, closing its leaked guard: later spans nest where they belong.
    assert_eq!(r.span_total(&["frame"]).unwrap().count, 3);
    assert_eq!(r.span_total(&["next"]).unwrap().count, 1);
    assert!(r.span_total(&["frame", "leaked", "frame"]).is_none());
    // `after` was opened inside the leaked span, so it nests there; the leaked span ended
    // with its frame, and is counted.
    assert_eq!(
        r.span_total(&["frame", "leaked", "after"]).unwrap().count,
        3
    );
    assert_eq!(r.span_total(&["frame", "leaked"]).unwrap().count, 3);
    assert_eq!(r.diagnostics.leaked_spans, 3);
    assert_eq!(r.diagnostics.open_spans, 0);
    assert_eq!(r.diagnostics.misnested_exits, 0);
}

#[test]
fn guards_dropped_out_of_order_are_misnested_not_leaked() {
    let _g = serial();
    let s = ProfilingSession::new("out of order");
    let a = scope!("a");
    let b = scope!("b");
    drop(a);
    drop(b);
    let _c = scope!("c");
    drop(_c);
    let r = s.report();
    assert_eq!(r.span_total(&["a"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["c"]).unwrap().count, 1);
    assert_eq!(r.diagnostics.leaked_spans, 0);
    assert_eq!(r.diagnostics.misnested_exits, 1);
    assert_eq!(r.diagnostics.open_spans, 0);
}

#[test]
fn spans_open_when_a_thread_exits_are_counted_as_abandoned() {
    let _g = serial();
    let mut s = ProfilingSession::new("abandoned");
    std::thread::scope(|sc| {
        sc.spawn(|| std::mem::forget(scope!("never_ends")));
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let r = loop {
        let r = s.report();
        if r.diagnostics.exited_threads == 1 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(r.diagnostics.abandoned_spans, 1);
    assert_eq!(r.diagnostics.open_spans, 0);
    assert!(r.span_total(&["never_ends"]).is_none());
    s.stop();
}

#[test]
fn a_stopped_session_refuses_more_data() {
    let _g = serial();
    let mut s = ProfilingSession::new("stopped");
    s.start_timing("before");
    s.stop_timing("before").unwrap();
    s.start_timing("open at stop");
    s.stop();
    s.start_timing("late");
    let e = s.stop_timing("late").unwrap_err();
    assert!(matches!(e, PerfError::SessionStopped { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "session `stopped` is stopped: stop_timing(`late`) is refused (start a new session)"
    );
    assert!(s.stop_timing("open at stop").is_err());
    s.add_measurement(heimdall_perf_core::Measurement::new(
        "fps",
        heimdall_perf_core::MetricType::Throughput,
        30.0,
        "fps",
    ));
    s.add_note("too late");
    let r = s.report();
    assert!(r.span_total(&["late"]).is_none());
    assert!(r.metrics.is_empty() && r.notes.is_empty());
    assert_eq!(r.span_total(&["before"]).unwrap().count, 1);
    assert_eq!(r.diagnostics.refused_after_stop, 5);
    assert_eq!(r.diagnostics.open_spans, 1);
}

#[test]
fn a_stopped_session_takes_no_more_spans() {
    let _g = serial();
    let mut s = ProfilingSession::new("frozen");
    let across = scope!("across the stop");
    {
        let _done = scope!("done");
    }
    s.stop();
    let at_stop = s.report();
    drop(across);
    // A thread that keeps recording after the stop goes to no session.
    std::thread::spawn(|| {
        for _ in 0..10_000 {
            let _x = scope!("after");
        }
    })
    .join()
    .unwrap();
    let later = s.report();
    assert_eq!(format!("{at_stop:?}"), format!("{later:?}"));
    assert_eq!(
        later
            .span_total(&["across the stop", "done"])
            .unwrap()
            .count,
        1
    );
    assert!(later.span_total(&["across the stop"]).is_none());
    assert_eq!(later.diagnostics.open_spans, 1);
}

#[test]
fn guards_leaked_in_a_loop_cannot_use_up_the_session() {
    let _g = serial();
    let s = ProfilingSession::new("leak loop");
    std::thread::spawn(|| {
        for _ in 0..20_000 {
            std::mem::forget(scope!("leak"));
        }
    })
    .join()
    .unwrap();
    std::thread::spawn(|| {
        for _ in 0..10 {
            let _a = scope!("healthy_work");
            let _b = scope!("healthy_inner");
        }
    })
    .join()
    .unwrap();
    let r = s.report();
    // The other thread keeps its own paths; the leaking one has MAX_DEPTH paths, not 20 000
    // (whose snapshot walked 200 million names).
    assert_eq!(
        r.span_total(&["healthy_work", "healthy_inner"])
            .unwrap()
            .count,
        10
    );
    assert_eq!(
        r.diagnostics.overflowed_spans,
        20_000 - heimdall_perf_core::limits::MAX_DEPTH as u64
    );
    assert_eq!(r.diagnostics.abandoned_spans, 20_000);
    assert!(
        r.spans.len() <= heimdall_perf_core::limits::MAX_DEPTH + 3,
        "{}",
        r.spans.len()
    );
}
