//! `stop_timing`'s fast path (the name is the last one looked up and the innermost timing
//! of the thread) against every case it must hand to the full path: out-of-order stops
//! with the name cached, spans left open inside the timing, timings of two sessions on one
//! thread while `scope!` records into another, recursion, names differing only late in the
//! text. Each case checks the error or the span tree the report gives.

use std::sync::{Mutex, MutexGuard};

use heimdall_perf_core::{scope, PerfError, ProfilingSession};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn an_out_of_order_stop_of_the_cached_name_is_still_an_error() {
    let _g = serial();
    let mut s = ProfilingSession::new("fast-ooo");
    s.start_timing("n");
    s.start_timing("m");
    // The first refusal looks "n" up, so the second finds it in the one-entry cache.
    for _ in 0..2 {
        let e = s.stop_timing("n").unwrap_err();
        assert!(matches!(e, PerfError::TimingOutOfOrder { .. }), "{e}");
        assert!(e.to_string().contains("`m`"), "{e}");
    }
    assert!(s.stop_timing("m").unwrap() > std::time::Duration::ZERO);
    s.stop_timing("n").unwrap();
    let e = s.stop_timing("n").unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }), "{e}");
    let r = s.report();
    assert_eq!(r.span_total(&["n"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["n", "m"]).unwrap().count, 1);
}

#[test]
fn names_that_differ_late_or_only_in_length_are_told_apart() {
    let _g = serial();
    let mut s = ProfilingSession::new("fast-names");
    let names = [
        "",
        "a",
        "ab",
        "abc",
        "abd",
        "abcd",
        "abce",
        "abcdefg",
        "abcdefh",
        "abcdefgh",
        "abcdefgi",
        "abcdefghijklmnop",
        "abcdefghijklmnoq",
        "abcdefghijklmnopq",
        "abcdefghijklmnopr",
    ];
    for (i, outer) in names.iter().enumerate() {
        for inner in &names[i + 1..] {
            s.start_timing(outer);
            s.start_timing(inner);
            // `inner` is cached; `outer` differs from it and is not innermost.
            let e = s.stop_timing(outer).unwrap_err();
            assert!(
                matches!(e, PerfError::TimingOutOfOrder { .. }),
                "{outer:?} {inner:?}"
            );
            s.stop_timing(inner).unwrap();
            s.stop_timing(outer).unwrap();
        }
    }
    let r = s.report();
    for (i, outer) in names.iter().enumerate().take(names.len() - 1) {
        assert_eq!(
            r.span_total(&[outer]).unwrap().count,
            (names.len() - 1 - i) as u64,
            "{outer:?}"
        );
        for inner in &names[i + 1..] {
            assert_eq!(r.span_total(&[outer, inner]).unwrap().count, 1);
        }
    }
}

#[test]
fn a_scope_open_inside_the_timing_ends_with_it_through_the_full_path() {
    let _g = serial();
    let mut s = ProfilingSession::new("fast-scope");
    s.start_timing("t");
    let guard = scope!("inside");
    s.stop_timing("t").unwrap();
    drop(guard);
    s.start_timing("t");
    s.stop_timing("t").unwrap();
    let r = s.report();
    assert_eq!(r.span_total(&["t"]).unwrap().count, 2);
    assert_eq!(r.span_total(&["t", "inside"]).unwrap().count, 1);
    assert_eq!(r.diagnostics.misnested_exits, 1);
}

#[test]
fn timings_of_two_sessions_on_one_thread_stay_apart() {
    let _g = serial();
    let mut b = ProfilingSession::new("fast-b");
    // `a` is started last: `scope!` records into it.
    let mut a = ProfilingSession::new("fast-a");
    b.start_timing("in-b");
    {
        let _s = scope!("scope-in-a");
        a.start_timing("in-a");
        // The thread last wrote into `a`: the stop in `b` finds its lane the long way.
        b.stop_timing("in-b").unwrap();
        a.stop_timing("in-a").unwrap();
    }
    b.start_timing("in-b");
    b.start_timing("in-b");
    b.stop_timing("in-b").unwrap();
    b.stop_timing("in-b").unwrap();
    let (ra, rb) = (a.report(), b.report());
    assert_eq!(ra.span_total(&["scope-in-a", "in-a"]).unwrap().count, 1);
    assert!(ra.span_total(&["in-b"]).is_none());
    assert_eq!(rb.span_total(&["in-b"]).unwrap().count, 2);
    assert_eq!(rb.span_total(&["in-b", "in-b"]).unwrap().count, 1);
    assert!(rb.span_total(&["scope-in-a"]).is_none());
}

#[test]
fn a_stopped_session_refuses_the_cached_name() {
    let _g = serial();
    let mut s = ProfilingSession::new("fast-stopped");
    s.start_timing("x");
    s.stop_timing("x").unwrap();
    s.start_timing("x");
    s.stop();
    let e = s.stop_timing("x").unwrap_err();
    assert!(matches!(e, PerfError::SessionStopped { .. }), "{e}");
    assert_eq!(s.report().diagnostics.refused_after_stop, 1);
}
