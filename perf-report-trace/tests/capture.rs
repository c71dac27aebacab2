//! A real capture: nested spans on two threads and frames across them, recorded by a
//! session with `capture_trace`, written by the sink and parsed back. Every span of the
//! window appears exactly once, with its thread, name, start and duration.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use heimdall_perf_core::{frame, scope, ProfilingSession};

use common::{events, ns, render_checked};

#[test]
fn every_span_and_frame_of_the_window_is_in_the_trace() {
    let mut session = ProfilingSession::new("capture");
    session.set_frame_budget("cam-0", Duration::from_nanos(1)); // every frame misses
    session.capture_trace(Duration::from_secs(10)).unwrap();

    let worker = std::thread::Builder::new()
        .name("worker-b".into())
        .spawn(|| {
            for i in 0..30u64 {
                let f = frame!("cam-0");
                {
                    let _outer = scope!("b-outer");
                    let _inner = scope!("b-inner");
                    let _stage = f.stage("detect");
                    let _nms = scope!("nms");
                }
                if i == 3 {
                    f.drop_frame("queue full");
                } else {
                    f.finish();
                }
            }
        })
        .unwrap();
    for _ in 0..50 {
        let _outer = scope!("outer");
        {
            let _inner = scope!("inner");
            let _leaf = scope!("leaf");
        }
        let _sibling = scope!("sibling");
    }
    worker.join().unwrap();
    session.stop();
    let report = session.report();
    let capture = report.capture.as_ref().expect("a capture");
    assert_eq!(capture.dropped, 0);
    assert_eq!(capture.frames.len(), 30);

    let trace = render_checked(&report);
    assert_eq!(trace["otherData"]["partial"], false);
    assert_eq!(trace["otherData"]["spans_from"], "capture");
    let ev = events(&trace);

    // The count per thread and path matches the session's own statistics…
    let mut counts: BTreeMap<(u64, Vec<String>), u64> = BTreeMap::new();
    for e in ev.iter().filter(|e| e["ph"] == "X") {
        let path = e["args"]["path"].as_array().unwrap();
        let path: Vec<String> = path
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        *counts
            .entry((e["tid"].as_u64().unwrap(), path))
            .or_default() += 1;
    }
    let expected: BTreeMap<_, _> = report
        .spans
        .iter()
        .map(|s| ((s.thread_id.unwrap(), s.path.clone()), s.count))
        .collect();
    assert_eq!(counts, expected);
    assert_eq!(report.span_count(), 50 * 4 + 30 * 4);
    // … and each captured span is there once, with its thread, name, start and duration.
    let mut want: Vec<_> = capture
        .spans
        .iter()
        .map(|t| {
            let p = &capture.paths[t.span];
            (
                p.thread_id,
                p.path.last().unwrap().to_string(),
                t.start_ns,
                t.duration_ns,
            )
        })
        .collect();
    let mut got: Vec<_> = ev
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            (
                e["tid"].as_u64().unwrap(),
                e["name"].as_str().unwrap().to_string(),
                ns(&e["ts"]),
                // A span shortened to end with its parent keeps its recorded duration.
                match &e["args"]["recorded_dur_us"] {
                    serde_json::Value::Null => ns(&e["dur"]),
                    recorded => {
                        assert!(ns(recorded) - ns(&e["dur"]) <= 2, "{e}");
                        ns(recorded)
                    }
                },
            )
        })
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);

    // Both threads are named (every thread with spans is: `check`), the worker by its name.
    assert!(ev
        .iter()
        .any(|e| e["name"] == "thread_name" && e["args"]["name"] == "worker-b"));
    let names = ev.iter().filter(|e| e["name"] == "thread_name").count();
    assert!(names >= 2);

    // Frames: a slice per frame with its stage nested; the misses and the drop marked.
    let frames: Vec<_> = ev
        .iter()
        .filter(|e| e["ph"] == "b" && e["name"] == "cam-0")
        .collect();
    assert_eq!(frames.len(), 30);
    let stages = ev
        .iter()
        .filter(|e| e["ph"] == "b" && e["name"] == "detect")
        .count();
    assert_eq!(stages, 30);
    assert_eq!(
        frames
            .iter()
            .filter(|f| f["args"]["missed"] == true)
            .count(),
        29
    );
    assert_eq!(
        frames
            .iter()
            .filter(|f| f["args"]["dropped"] == "queue full")
            .count(),
        1
    );
    let incidents = report.frame_source("cam-0").unwrap().incidents.len();
    assert!(incidents > 0);
    assert_eq!(
        ev.iter().filter(|e| e["name"] == "incident").count(),
        incidents
    );
    assert_eq!(
        frames
            .iter()
            .filter(|f| f["args"]["incident"] == true)
            .count(),
        incidents
    );
}
