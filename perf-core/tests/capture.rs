//! The trace capture: every span and frame of the window, once; nothing outside it; the
//! limit counted; the statistics untouched. `scope!` records into the process-wide current
//! session, so the tests of this binary take a lock to run one at a time.

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use heimdall_perf_core::{frame, scope, PerfError, ProfilingSession};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn every_span_of_the_window_is_captured_once_on_its_thread() {
    let _g = serial();
    let mut session = ProfilingSession::new("capture");
    // Before the window: in the statistics, not in the capture.
    for _ in 0..5 {
        let _s = scope!("before");
    }
    session.capture_trace(Duration::from_secs(60)).unwrap();
    let workers: Vec<_> = (0..2)
        .map(|k| {
            thread::Builder::new()
                .name(format!("worker-{k}"))
                .spawn(move || {
                    for _ in 0..100 {
                        let _f = scope!("frame");
                        let _d = scope!("detect");
                    }
                })
                .unwrap()
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let f = frame!("cam-cap");
    {
        let _s = f.stage("stage");
    }
    f.finish();
    let r = session.report();
    let c = r.capture.as_ref().expect("a capture");
    assert!(c.open);
    assert_eq!(c.dropped, 0);
    // 2 threads × 100 × (frame + detect), plus the stage on this thread.
    assert_eq!(c.spans.len(), 401);
    let in_capture = |path: &[&str], thread: &str| {
        c.spans
            .iter()
            .filter(|t| {
                let p = &c.paths[t.span];
                p.thread == thread && p.path.iter().map(String::as_str).eq(path.iter().copied())
            })
            .count()
    };
    for k in 0..2 {
        let t = format!("worker-{k}");
        assert_eq!(in_capture(&["frame"], &t), 100);
        assert_eq!(in_capture(&["frame", "detect"], &t), 100);
    }
    assert!(c.spans.iter().all(|t| c.paths[t.span].path != ["before"]));
    // The statistics are untouched: the spans before the window are counted.
    assert_eq!(r.span_total(&["before"]).unwrap().count, 5);
    // Every captured span lies in the window, and its children inside it.
    assert!(c.spans.iter().all(|t| t.start_ns >= c.start_ns));
    // The frame, with its stage.
    assert_eq!(c.frames.len(), 1);
    let fr = &c.frames[0];
    assert_eq!((fr.source.as_str(), fr.frame_id), ("cam-cap", f.id()));
    assert_eq!(fr.stages.len(), 1);
    assert!(fr.end_ns >= fr.capture_ns);
}

#[test]
fn the_window_ends_and_the_limit_is_counted() {
    let _g = serial();
    let mut session = ProfilingSession::new("window");
    // The window is long beside the microseconds the spans inside it take, so that a loaded
    // machine taking the CPU from this thread for a while does not push them past its end.
    session
        .capture_trace_with_limit(Duration::from_millis(250), 10)
        .unwrap();
    for _ in 0..25 {
        let _s = scope!("inside");
    }
    thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        let _s = scope!("after");
    }
    let r = session.report();
    let c = r.capture.as_ref().unwrap();
    assert!(!c.open);
    assert_eq!(c.spans.len(), 10);
    assert_eq!(c.dropped, 15, "the spans past the limit are counted");
    assert!(c.spans.iter().all(|t| c.paths[t.span].path == ["inside"]));
    assert_eq!(c.end_ns - c.start_ns, 250_000_000);
    assert_eq!(r.span_total(&["inside"]).unwrap().count, 25);

    // A stopped session refuses a capture; a zero window is refused.
    assert!(matches!(
        session.capture_trace(Duration::ZERO),
        Err(PerfError::InvalidArgument { .. })
    ));
    session.stop();
    assert!(matches!(
        session.capture_trace(Duration::from_secs(1)),
        Err(PerfError::SessionStopped { .. })
    ));
}

#[test]
fn a_thread_folded_during_the_capture_keeps_its_spans() {
    let _g = serial();
    let mut session = ProfilingSession::new("fold");
    session.capture_trace(Duration::from_secs(60)).unwrap();
    // More exited threads than are kept apart: the oldest fold into one row.
    let n = heimdall_perf_core::limits::RETAINED_EXITED_THREADS + 8;
    for k in 0..n {
        thread::Builder::new()
            .name(format!("short-{k}"))
            .spawn(|| {
                let _s = scope!("short");
            })
            .unwrap()
            .join()
            .unwrap();
        // Let the aggregator retire each thread before the next.
        let _ = session.report();
    }
    let r = session.report();
    let c = r.capture.as_ref().unwrap();
    assert_eq!(c.spans.len(), n);
    assert!(c.spans.iter().all(|t| c.paths[t.span].path == ["short"]));
    // Each span keeps its own thread, folded or not.
    let mut threads: Vec<&str> = c
        .spans
        .iter()
        .map(|t| c.paths[t.span].thread.as_str())
        .collect();
    threads.sort_unstable();
    threads.dedup();
    assert_eq!(threads.len(), n, "{threads:?}");
    assert!(threads.iter().all(|t| t.starts_with("short-")));
    assert_eq!(r.span_total(&["short"]).unwrap().count, n as u64);
}
