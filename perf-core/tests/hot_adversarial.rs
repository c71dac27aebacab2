//! Hostile use of the hot paths: the `stop_timing` fast path, the batched
//! `MetricCounter`, the idle aggregator backoff and the coarse-clock meter.

mod common;
use common::{in_child, summary_bits};

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use heimdall_perf_core::metrics::{MetricCounter, ThroughputMeter};
use heimdall_perf_core::stats::ValueStats;
use heimdall_perf_core::{scope, MetricType, PerfError, ProfilingSession};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------- timings

#[test]
fn same_name_nested_closes_innermost_first() {
    let _g = serial();
    let mut s = ProfilingSession::new("adv-rec");
    s.start_timing("a");
    std::thread::sleep(Duration::from_millis(2));
    s.start_timing("a");
    let inner = s.stop_timing("a").unwrap();
    let outer = s.stop_timing("a").unwrap();
    assert!(
        outer >= inner + Duration::from_millis(1),
        "{outer:?} {inner:?}"
    );
    let e = s.stop_timing("a").unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }), "{e}");
    let r = s.report();
    assert_eq!(r.span_total(&["a"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["a", "a"]).unwrap().count, 1);
}

#[test]
fn never_started_and_odd_names() {
    let _g = serial();
    let mut s = ProfilingSession::new("adv-names");
    let e = s.stop_timing("never-seen-adv").unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }), "{e}");
    assert!(e.to_string().contains("never-seen-adv"), "{e}");
    let long_a = format!("{}A", "x".repeat(300));
    let long_b = format!("{}B", "x".repeat(300));
    let names = [
        "",
        "é",
        "e\u{301}",
        "日本語の名前",
        long_a.as_str(),
        long_b.as_str(),
    ];
    for outer in &names {
        for inner in &names {
            if outer == inner {
                continue;
            }
            s.start_timing(outer);
            s.start_timing(inner);
            let e = s.stop_timing(outer).unwrap_err();
            assert!(
                matches!(e, PerfError::TimingOutOfOrder { .. }),
                "{outer} {inner}: {e}"
            );
            s.stop_timing(inner).unwrap();
            s.stop_timing(outer).unwrap();
        }
    }
    let r = s.report();
    assert_eq!(
        r.span_total(&[long_a.as_str(), long_b.as_str()])
            .unwrap()
            .count,
        1
    );
    assert_eq!(r.span_total(&["", "é"]).unwrap().count, 1);
}

#[test]
fn overflow_names_in_child() {
    // Exhausts the process-wide name table: run in a child process of its own.
    if std::env::var("ADV_OVERFLOW_CHILD").is_err() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args(["overflow_names_in_child", "--exact", "--nocapture"])
            .env("ADV_OVERFLOW_CHILD", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let mut s = ProfilingSession::new("adv-overflow");
    for i in 0..100_001 {
        s.start_timing(&format!("fill-{i}"));
        s.stop_timing(&format!("fill-{i}")).unwrap();
    }
    s.start_timing("past-1");
    s.start_timing("past-2");
    let e = s.stop_timing("past-1").unwrap_err();
    assert!(matches!(e, PerfError::TimingOutOfOrder { .. }), "{e}");
    assert!(e.to_string().contains("past-2"), "{e}");
    s.stop_timing("past-2").unwrap();
    s.stop_timing("past-1").unwrap();
    let e = s.stop_timing("past-1").unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }), "{e}");
}

#[test]
fn leaked_and_open_scopes_inside_timings() {
    let _g = serial();
    let mut s = ProfilingSession::new("adv-leak");
    s.start_timing("t");
    std::mem::forget(scope!("leaked"));
    s.stop_timing("t").unwrap();
    s.start_timing("t");
    let g = scope!("open");
    s.stop_timing("t").unwrap();
    drop(g);
    // Timing inside a scope that is left open, then the scope closes first.
    let g = scope!("outer");
    s.start_timing("u");
    drop(g);
    // the timing is ended by its enclosing scope: stopping now is an error
    let r1 = s.stop_timing("u");
    assert!(r1.is_err(), "{r1:?}");
    s.start_timing("v");
    s.stop_timing("v").unwrap();
    let r = s.report();
    assert_eq!(r.span_total(&["t"]).unwrap().count, 2);
    assert_eq!(r.span_total(&["v"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["outer", "u"]).unwrap().count, 1);
}

#[test]
fn two_sessions_one_thread() {
    let _g = serial();
    let mut a = ProfilingSession::new("adv-two-a");
    a.start_timing("x");
    let mut b = ProfilingSession::new("adv-two-b");
    b.start_timing("x");
    {
        let _s = scope!("in-b");
    }
    // stop in the other session than started: b's x is open, so ok; a's still open.
    assert!(b.stop_timing("x").is_ok());
    let e = b.stop_timing("x").unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }), "{e}");
    a.stop_timing("x").unwrap();
    let e = a.stop_timing("x").unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }), "{e}");
    assert_eq!(a.report().span_total(&["x"]).unwrap().count, 1);
    let rb = b.report();
    assert_eq!(rb.span_total(&["x"]).unwrap().count, 1);
    assert!(rb.span_total(&["x", "in-b"]).is_some() || rb.span_total(&["in-b"]).is_some());
}

#[test]
fn stop_after_session_stopped() {
    let _g = serial();
    let mut s = ProfilingSession::new("adv-stopped");
    s.start_timing("t");
    s.stop();
    let e = s.stop_timing("t").unwrap_err();
    assert!(matches!(e, PerfError::SessionStopped { .. }), "{e}");
    assert!(e.to_string().contains("t"), "{e}");
}

#[test]
fn session_dropped_with_open_timing_then_new_session_same_thread() {
    let _g = serial();
    {
        let mut s = ProfilingSession::new("adv-gone");
        s.start_timing("t");
    }
    let mut s2 = ProfilingSession::new("adv-new");
    let e = s2.stop_timing("t").unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }), "{e}");
    s2.start_timing("t");
    s2.stop_timing("t").unwrap();
    assert_eq!(s2.report().span_total(&["t"]).unwrap().count, 1);
}

#[test]
fn timings_on_many_threads_all_counted() {
    let _g = serial();
    let s = std::sync::Arc::new(Mutex::new(ProfilingSession::new("adv-threads")));
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    s.lock().unwrap().start_timing("job");
                    let _g = scope!("inner");
                    drop(_g);
                    s.lock().unwrap().stop_timing("job").unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let r = s.lock().unwrap().report();
    assert_eq!(r.span_total(&["job"]).unwrap().count, 16_000);
}

// ---------------------------------------------------------------- aggregator

#[test]
fn idle_then_burst_then_report() {
    let _g = serial();
    let s = ProfilingSession::new("adv-idle");
    std::thread::sleep(Duration::from_millis(400));
    std::thread::spawn(|| {
        for _ in 0..200_000 {
            let _g = scope!("burst");
        }
    })
    .join()
    .unwrap();
    let r = s.report();
    assert_eq!(r.span_total(&["burst"]).unwrap().count, 200_000);
    assert_eq!(r.diagnostics.open_spans, 0);
}

// ---------------------------------------------------------------- metrics

fn counter(window: usize) -> MetricCounter {
    MetricCounter::new("m", MetricType::Custom("x".into()), "u", window)
}

#[test]
fn metric_counter_windows_and_specials() {
    let specials = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        5e-324,
        -5e-324,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        1.0,
        -1.0,
        1e300,
        1e-300,
    ];
    for window in [0usize, 1, 2, 3, 7, 1 << 20, usize::MAX] {
        let mut c = counter(window);
        let mut reference = ValueStats::new();
        let mut x: u64 = 0x1234_5678;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = if i % 17 == 0 {
                specials[(x % specials.len() as u64) as usize]
            } else {
                f64::from_bits(x)
            };
            c.set(v);
            reference.record(v);
            if i % 997 == 0 {
                let cl = c.clone();
                assert_eq!(
                    summary_bits(&cl.statistics()),
                    summary_bits(&reference.summary()),
                    "w {window} i {i}"
                );
            }
        }
        assert_eq!(
            summary_bits(&c.statistics()),
            summary_bits(&reference.summary()),
            "window {window}"
        );
        assert_eq!(c.to_measurement().value.to_bits(), c.value().to_bits());
        let keep = c.window_len().min(20_000);
        assert_eq!(c.window_values().count(), keep);
    }
}

#[test]
fn metric_counter_millions_against_reference() {
    let mut c = counter(4096);
    let mut reference = ValueStats::new();
    let mut x: u64 = 42;
    for i in 0..3_000_000u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v = ((x >> 11) as f64 / (1u64 << 53) as f64) * 1000.0 - 10.0 + (i % 1000) as f64;
        c.set(v);
        reference.record(v);
    }
    assert_eq!(
        summary_bits(&c.statistics()),
        summary_bits(&reference.summary())
    );
}

// ---------------------------------------------------------------- meter

fn meter_rate(window: Duration) -> (f64, f64) {
    let mut m = ThroughputMeter::new("t", window);
    let start = std::time::Instant::now();
    // 100 events every 5 ms, for 300 ms: 20 000 events/s. The rate is read right after the
    // last events (not after a sleep that a loaded machine may stretch past the window).
    loop {
        m.add(100);
        if start.elapsed() >= Duration::from_millis(300) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let rate = m.rate();
    let real = m.total() as f64 / start.elapsed().as_secs_f64();
    (rate, real)
}

#[test]
fn meter_rate_short_boundary_and_long_windows() {
    for window in [
        Duration::from_millis(200),
        Duration::from_millis(999),
        Duration::from_secs(1),
        Duration::from_secs(5),
    ] {
        let (rate, real) = meter_rate(window);
        assert!(
            rate > real / 3.0 && rate < real * 3.0,
            "window {window:?}: rate {rate}, real {real}"
        );
    }
}

#[test]
fn meter_rate_right_after_first_events() {
    for window in [
        Duration::from_millis(100),
        Duration::from_secs(1),
        Duration::from_secs(10),
    ] {
        let mut m = ThroughputMeter::new("t", window);
        m.add(1000);
        std::thread::sleep(Duration::from_millis(1));
        m.add(1000);
        let r = m.rate();
        assert!(
            r > 0.0 && r.is_finite(),
            "window {window:?}: rate {r} after 2000 events"
        );
    }
}

#[test]
fn guard_outliving_its_timing_dropped_at_a_coincident_depth() {
    let _g = serial();
    let mut s = ProfilingSession::new("adv-aba");
    s.start_timing("t");
    let g = scope!("s"); // depth 2
    s.stop_timing("t").unwrap(); // ends `s` with it
    s.start_timing("u"); // depth 1
    s.start_timing("w"); // depth 2: the depth `g` was made at
    drop(g); // a stale guard: must count as misnested, not end `w`
    s.stop_timing("w").unwrap();
    s.stop_timing("u").unwrap();
    s.start_timing("z");
    s.stop_timing("z").unwrap();
    let r = s.report();
    assert_eq!(r.diagnostics.misnested_exits, 1, "{:?}", r.diagnostics);
    assert_eq!(r.span_total(&["t"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["u"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["u", "w"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["z"]).unwrap().count, 1);
    assert_eq!(r.diagnostics.open_spans, 0);
}

#[test]
fn guard_outliving_its_timing_dropped_later() {
    let _g = serial();
    let mut s = ProfilingSession::new("adv-late-guard");
    s.start_timing("t");
    let g = scope!("s");
    s.stop_timing("t").unwrap();
    drop(g);
    s.start_timing("t");
    s.stop_timing("t").unwrap();
    let r = s.report();
    assert_eq!(r.diagnostics.misnested_exits, 1, "{:?}", r.diagnostics);
    assert_eq!(r.span_total(&["t"]).unwrap().count, 2);
    assert_eq!(r.span_total(&["t", "s"]).unwrap().count, 1);
}

#[test]
fn stop_on_another_thread_is_not_started() {
    let _g = serial();
    let s = std::sync::Arc::new(Mutex::new(ProfilingSession::new("adv-xthread")));
    s.lock().unwrap().start_timing("t");
    let s2 = s.clone();
    let e = std::thread::spawn(move || s2.lock().unwrap().stop_timing("t"))
        .join()
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }), "{e}");
    assert!(
        e.to_string().contains("`t`") || e.to_string().contains("t"),
        "{e}"
    );
    s.lock().unwrap().stop_timing("t").unwrap();
    assert_eq!(
        s.lock().unwrap().report().span_total(&["t"]).unwrap().count,
        1
    );
}

#[test]
fn frames_burst_after_idle_settled_at_report() {
    let _g = serial();
    let s = ProfilingSession::new("adv-frames-idle");
    std::thread::sleep(Duration::from_millis(400));
    std::thread::spawn(|| {
        for _ in 0..5000 {
            let f = heimdall_perf_core::frame!("adv-cam");
            {
                let _st = f.stage("st");
            }
            f.finish();
        }
    })
    .join()
    .unwrap();
    let r = s.report();
    let cam = r.frame_source("adv-cam").unwrap();
    assert_eq!(
        (cam.count, cam.finished, cam.in_flight),
        (5000, 5000, 0),
        "{cam:#?}"
    );
    assert_eq!(r.span_total(&["st"]).unwrap().count, 5000);
}

#[test]
fn start_in_one_session_stop_in_the_other() {
    let _g = serial();
    let mut a = ProfilingSession::new("adv-cross-a");
    let mut b = ProfilingSession::new("adv-cross-b");
    b.start_timing("y");
    b.stop_timing("y").unwrap();
    a.start_timing("y");
    let e = b.stop_timing("y").unwrap_err();
    assert!(matches!(e, PerfError::TimingNotStarted { .. }), "{e}");
    a.stop_timing("y").unwrap();
    assert_eq!(a.report().span_total(&["y"]).unwrap().count, 1);
    assert_eq!(b.report().span_total(&["y"]).unwrap().count, 1);
}

#[test]
fn guard_outliving_its_timing_dropped_deeper_ends_other_timings() {
    let _g = serial();
    let mut s = ProfilingSession::new("adv-stale-deep");
    s.start_timing("t");
    let g = scope!("s"); // depth 2
    s.stop_timing("t").unwrap(); // ends `s` with it
    s.start_timing("a");
    s.start_timing("b");
    s.start_timing("c"); // depth 3
    drop(g); // stale guard: counted as misnested, nothing else
    let rc = s.stop_timing("c");
    let rb = s.stop_timing("b");
    let ra = s.stop_timing("a");
    let r = s.report();
    assert!(
        rc.is_ok() && rb.is_ok() && ra.is_ok(),
        "c {rc:?} b {rb:?} a {ra:?}"
    );
    assert_eq!(r.span_total(&["a", "b", "c"]).unwrap().count, 1);
    assert_eq!(r.diagnostics.misnested_exits, 1, "{:?}", r.diagnostics);
}

#[test]
fn guard_outliving_its_timing_then_scope_at_same_depth() {
    let _g = serial();
    let mut s = ProfilingSession::new("adv-stale-scope");
    s.start_timing("t");
    let g = scope!("s"); // depth 2
    s.stop_timing("t").unwrap();
    s.start_timing("u"); // depth 1
    let g2 = scope!("x"); // depth 2
    drop(g); // stale: must not end `x`
    s.stop_timing("u").unwrap(); // ends `x` (still open) with it
    drop(g2); // dropped after its timing ended: misnested
    let r = s.report();
    assert_eq!(r.span_total(&["u"]).unwrap().count, 1);
    assert_eq!(r.span_total(&["u", "x"]).unwrap().count, 1);
    assert_eq!(r.diagnostics.misnested_exits, 2, "{:?}", r.diagnostics);
    assert_eq!(r.diagnostics.open_spans, 0);
}

#[test]
fn meter_with_another_components_slow_upkeep() {
    if !in_child("meter_with_another_components_slow_upkeep") {
        return;
    }
    // Another library of the process keeps quanta's coarse clock with a 2 s interval.
    let _other = quanta::Upkeep::new(Duration::from_secs(2)).start().unwrap();
    let mut m = ThroughputMeter::new("t", Duration::from_secs(1));
    let start = std::time::Instant::now();
    // 1 000 events every 5 ms for 1.5 s: about 200 000 events/s, busy enough for the meter
    // to want the coarse clock (`THROUGHPUT_COARSE_RATE`), which it must then not trust.
    // The rate is read right after the last events.
    loop {
        m.add(1000);
        if start.elapsed() >= Duration::from_millis(1500) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let rate = m.rate();
    let real = m.total() as f64 / start.elapsed().as_secs_f64();
    assert!(
        rate > real / 3.0 && rate < real * 3.0,
        "1 s window: rate {rate}, real {real}"
    );
}

#[test]
fn report_right_after_a_live_thread_records() {
    let _g = serial();
    let s = ProfilingSession::new("adv-live-report");
    std::thread::sleep(Duration::from_millis(300));
    for round in 1..=5u64 {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let h = std::thread::spawn(move || {
            for _ in 0..(round * 7919) {
                let _g = scope!("live-burst");
            }
            done_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        });
        done_rx.recv().unwrap();
        let r = s.report();
        let got = r.span_total(&["live-burst"]).map_or(0, |t| t.count);
        let want: u64 = (1..=round).map(|k| k * 7919).sum();
        go_tx.send(()).unwrap();
        h.join().unwrap();
        assert_eq!(got, want, "round {round}");
    }
}
