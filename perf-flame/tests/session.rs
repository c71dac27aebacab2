//! Real recordings: spans timed by a ProfilingSession, rendered through the sink registry.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heimdall_perf_core::{ProfilingSession, Registry};
use heimdall_perf_flame::{fold, FlameOptions, FlamegraphSink, FoldedSink};

fn timed(
    session: &mut ProfilingSession,
    name: &str,
    sleep_ms: u64,
    inner: impl FnOnce(&mut ProfilingSession),
) {
    session.start_timing(name);
    std::thread::sleep(Duration::from_millis(sleep_ms));
    inner(session);
    session.stop_timing(name).unwrap();
}

/// `timed`, and how long it took as the caller saw it (around the whole timing).
fn timed_and_measured(
    session: &mut ProfilingSession,
    name: &str,
    sleep_ms: u64,
    inner: impl FnOnce(&mut ProfilingSession),
) -> Duration {
    let t0 = Instant::now();
    timed(session, name, sleep_ms, inner);
    t0.elapsed()
}

#[test]
fn measured_sleeps_fold_to_their_durations_with_a_root_per_thread() {
    let mut session = ProfilingSession::new("measured");
    // Each timing's time as measured around it: grab, decode, infer.
    let around = Mutex::new([Duration::ZERO; 3]);
    for (thread, work) in [("grabber", 0), ("inference", 1)] {
        std::thread::scope(|s| {
            let session = &mut session;
            let around = &around;
            std::thread::Builder::new()
                .name(thread.to_string())
                .spawn_scoped(s, move || {
                    if work == 0 {
                        let grab = timed_and_measured(session, "grab", 20, |s| {
                            let decode = timed_and_measured(s, "decode", 30, |_| {});
                            around.lock().unwrap()[1] = decode;
                        });
                        around.lock().unwrap()[0] = grab;
                    } else {
                        around.lock().unwrap()[2] =
                            timed_and_measured(session, "infer", 10, |_| {});
                    }
                })
                .unwrap();
        });
    }
    let around = around.into_inner().unwrap();
    session.stop();
    let report = session.report();
    let lines = fold(&report, &FlameOptions::default());
    let got: Vec<&str> = lines.iter().map(|l| l.stack()).collect();
    assert_eq!(
        got,
        ["grabber;grab", "grabber;grab;decode", "inference;infer"]
    );
    // Each weight is the measured self time in ns: at least the sleep, and no more than the
    // time around the timing less its children's sleeps (a loaded machine stretches sleeps).
    let children_ns = [30_000_000u64, 0, 0];
    for (i, (line, slept_ms)) in lines.iter().zip([20u64, 30, 10]).enumerate() {
        let w = line.weight_ns();
        let slept_ns = slept_ms * 1_000_000;
        let most = around[i].as_nanos() as u64 - children_ns[i] + 1_000_000;
        assert!(
            (slept_ns..most).contains(&w),
            "{}: {w} ns for a {slept_ms} ms sleep (measured {:?} around it)",
            line.stack(),
            around[i]
        );
        let path: Vec<&str> = line.frames().skip(1).collect();
        assert_eq!(w, report.span_total(&path).unwrap().self_ns);
    }
    let grab = report.span_total(&["grab"]).unwrap().total_ns;
    let width: u64 = lines[..2].iter().map(|l| l.weight_ns()).sum();
    assert_eq!(width, grab, "grab frame width = its total");
}

#[test]
fn generate_flamegraph_and_folded_reports_through_the_registry() {
    let registry = Arc::new(Registry::new());
    registry
        .register_sink(Arc::new(FlamegraphSink::new()))
        .unwrap();
    registry.register_sink(Arc::new(FoldedSink::new())).unwrap();
    let mut session = ProfilingSession::with_registry("line 7", Arc::clone(&registry));
    timed(&mut session, "frame", 2, |s| timed(s, "detect", 3, |_| {}));
    session.stop();

    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("run.svg");
    session.generate_flamegraph(&svg_path).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = common::parse(&svg);
    let frames = common::frames(&doc);
    assert!(common::one(&frames, "detect").w >= 3_000_000);
    assert!(common::one(&frames, "frame").w >= 5_000_000);
    assert!(common::text_by_id(&doc, "title").starts_with("line 7 — "));

    let folded_path = dir.path().join("run.folded");
    session.save_report(&folded_path, "folded").unwrap();
    let text = std::fs::read_to_string(&folded_path).unwrap();
    let stacks: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().0)
        .collect();
    assert_eq!(stacks.len(), 2);
    assert!(
        stacks[0].ends_with(";frame") && stacks[1].ends_with(";frame;detect"),
        "{text}"
    );
}
