//! Adversarial tests of the trace sink on real sessions and hostile reports.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use heimdall_perf_core::{
    frame, scope, Callsite, FrameSource, ProfilingSession, Report, ReportSink, ScopeGuard,
};
use heimdall_perf_report_trace::TraceSink;
use heimdall_perf_testkit as fixtures;
use serde_json::Value;

use common::{check, events, ns, render_checked};

static SERIAL: Mutex<()> = Mutex::new(());
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Async b/e in time order (as Perfetto sorts them): per (pid, id) a stack, `e` closes top.
fn check_async_in_time_order(trace: &Value) {
    let mut evs: Vec<(u64, usize, &Value)> = events(trace)
        .iter()
        .enumerate()
        .filter(|(_, e)| e["ph"] == "b" || e["ph"] == "e")
        .map(|(i, e)| (ns(&e["ts"]), i, e))
        .collect();
    evs.sort_by_key(|&(ts, i, _)| (ts, i));
    let mut open: BTreeMap<(u64, String), Vec<String>> = BTreeMap::new();
    for (_, _, e) in evs {
        let key = (
            e["pid"].as_u64().unwrap(),
            e["id"].as_str().unwrap().to_string(),
        );
        let name = e["name"].as_str().unwrap().to_string();
        let st = open.entry(key).or_default();
        if e["ph"] == "b" {
            st.push(name);
        } else {
            let top = st.pop();
            assert_eq!(
                top.as_deref(),
                Some(name.as_str()),
                "time-ordered e closes another slice: {e}"
            );
        }
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn dyn_scope(name: &'static str) -> ScopeGuard {
    ScopeGuard::enter(Box::leak(Box::new(Callsite::new(name))))
}

#[test]
fn hostile_names_everywhere() {
    let _g = serial();
    let mut s = ProfilingSession::new("sess\"]}\u{2028}\u{0}\u{1b}");
    s.set_label("k\"]}", "v\u{2029}\n");
    s.capture_trace(Duration::from_secs(60)).unwrap();
    let big = "x\"]}\u{2028}".repeat(200_000);
    let names = [
        leak("q\"uote".into()),
        leak("ctl\u{1}\u{7f}\t\r\n".into()),
        leak("]}".into()),
        leak("\u{2028}\u{2029}".into()),
        leak(big.clone()),
        leak(String::new()),
    ];
    let tnames = ["t\"q", "t]}\u{2028}", "t\u{1}\u{1b}[31m", &*big];
    for (i, tn) in tnames.iter().enumerate() {
        thread::Builder::new()
            .name(tn.to_string())
            .spawn(move || {
                for n in names {
                    let _a = dyn_scope(n);
                    let _b = dyn_scope(names[i]);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }
    let src = FrameSource::new(&format!(
        "src\"]}}:\u{2028}{}",
        big.chars().take(300).collect::<String>()
    ));
    let f = src.begin();
    {
        let _st = f.stage(names[0]);
    }
    f.finish();
    let g = src.begin();
    g.drop_frame("reason\"]}\u{0}");
    s.add_note(format!("# title \"]}}\u{2028}\n{big}"));
    let r = s.report();
    let trace = render_checked(&r);
    let xs = events(&trace).iter().filter(|e| e["ph"] == "X").count();
    assert_eq!(xs, r.capture.as_ref().unwrap().spans.len());
    check_async_in_time_order(&trace);
    s.stop();
}

#[test]
fn nan_series_and_readback_and_empty() {
    let mut report = fixtures::sample_report();
    for s in &mut report.series {
        for p in &mut s.points {
            p.last = f64::NAN;
            p.min = f64::NEG_INFINITY;
        }
    }
    render_checked(&report);
    let back: Report = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert!(back.capture.is_none());
    let t = render_checked(&back);
    assert_eq!(t["otherData"]["partial"], true);
    let mut e = Report::empty("e");
    e.threads.clear();
    let t = render_checked(&e);
    assert_eq!(t["otherData"]["spans_from"], "recent spans");
}

/// Folded threads during a capture: their spans overlap on one track, and the sink
/// "shortens" them as if it were a rounding.
#[test]
fn folded_threads_in_the_trace() {
    let _g = serial();
    let mut s = ProfilingSession::new("fold");
    s.capture_trace(Duration::from_secs(60)).unwrap();
    let n = 48;
    let bar = Arc::new(Barrier::new(n));
    let hs: Vec<_> = (0..n)
        .map(|k| {
            let bar = bar.clone();
            thread::Builder::new()
                .name(format!("w{k}"))
                .spawn(move || {
                    bar.wait();
                    let _a = scope!("work");
                    thread::sleep(Duration::from_millis(2 + (k % 5) as u64));
                })
                .unwrap()
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    thread::sleep(Duration::from_millis(100));
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    let json = TraceSink::new().render_to_string(&r).unwrap();
    let trace: Value = serde_json::from_str(&json).unwrap();
    eprintln!(
        "shortened {:?} unresolved {:?}",
        trace["otherData"]["shortened_spans"], trace["otherData"]["unresolved_spans"]
    );
    let x: Vec<_> = events(&trace).iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(x.len(), c.spans.len());
    let mut got: Vec<u64> = x.iter().map(|e| ns(&e["dur"])).collect();
    let mut want: Vec<u64> = c.spans.iter().map(|t| t.duration_ns).collect();
    got.sort();
    want.sort();
    check(&trace);
    assert_eq!(
        got, want,
        "span durations in the trace differ from the capture's"
    );
    s.stop();
}

/// Two stages of one frame running at the same time on two threads.
#[test]
fn parallel_stages_pair_up_in_time_order() {
    let _g = serial();
    let mut s = ProfilingSession::new("par");
    s.capture_trace(Duration::from_secs(60)).unwrap();
    let f = frame!("cam-par");
    let t1 = thread::spawn(move || {
        let _s = f.stage("left");
        thread::sleep(Duration::from_millis(20));
    });
    thread::sleep(Duration::from_millis(5));
    let t2 = thread::spawn(move || {
        let _s = f.stage("right");
        thread::sleep(Duration::from_millis(30));
    });
    t1.join().unwrap();
    t2.join().unwrap();
    f.finish();
    // A frame with no stage and a dropped frame.
    frame!("cam-par").finish();
    frame!("cam-par").drop_frame("late");
    thread::sleep(Duration::from_millis(50));
    let r = s.report();
    assert_eq!(r.capture.as_ref().unwrap().frames.len(), 3);
    let trace = render_checked(&r);
    check_async_in_time_order(&trace);
    s.stop();
}

/// Two frames of one source with the same id (begin_with_id), overlapping.
#[test]
fn duplicate_frame_ids() {
    let _g = serial();
    let mut s = ProfilingSession::new("dup");
    s.capture_trace(Duration::from_secs(60)).unwrap();
    let src = FrameSource::new("cam-dup");
    let a = src.begin_with_id(7);
    thread::sleep(Duration::from_millis(2));
    let b = src.begin_with_id(7);
    {
        let _s = a.stage("sa");
        thread::sleep(Duration::from_millis(2));
    }
    a.finish();
    {
        let _s = b.stage("sb");
    }
    b.finish();
    thread::sleep(Duration::from_millis(50));
    let r = s.report();
    eprintln!(
        "captured frames {}",
        r.capture.as_ref().unwrap().frames.len()
    );
    let trace = render_checked(&r);
    check_async_in_time_order(&trace);
    s.stop();
}

/// Incidents from before the capture, a capture with frames after.
#[test]
fn incidents_not_in_the_capture() {
    let _g = serial();
    let mut s = ProfilingSession::new("inc");
    s.set_frame_budget("cam-inc", Duration::from_nanos(1));
    for _ in 0..5 {
        let f = frame!("cam-inc");
        {
            let _s = f.stage("st");
        }
        f.finish();
    }
    s.capture_trace(Duration::from_secs(60)).unwrap();
    spans_on_this_thread();
    thread::sleep(Duration::from_millis(50));
    let r = s.report();
    let trace = render_checked(&r);
    let inc = events(&trace)
        .iter()
        .filter(|e| e["name"] == "incident")
        .count();
    assert!(inc > 0);
    s.stop();
}

fn spans_on_this_thread() {
    for _ in 0..10 {
        let _a = scope!("a");
    }
}

/// The ring (no capture) of a session whose threads were folded: tid 0 must be named or
/// not used.
#[test]
fn ring_with_folded_threads() {
    let _g = serial();
    let mut s = ProfilingSession::new("ring-fold");
    for k in 0..40 {
        thread::Builder::new()
            .name(format!("r{k}"))
            .spawn(|| {
                let _a = scope!("r");
            })
            .unwrap()
            .join()
            .unwrap();
    }
    thread::sleep(Duration::from_millis(100));
    let r = s.report();
    render_checked(&r);
    s.stop();
}
