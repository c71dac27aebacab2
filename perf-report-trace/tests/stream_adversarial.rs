//! Hostile and careless uses of the streamed trace capture (`stream_trace`): odd
//! destinations, restarts, churn, hostile names, bursts, a full disk. Each test asserts on
//! the file written (parsed back) and on the session's own report.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use heimdall_perf_core::{frame, scope, FrameSource, Registry};
use serde_json::Value;

use common::{check, events, read, sorted, streaming_session, try_read, turn};

/// Counts the heap in use and its peak, to hold the stream to its memory bounds.
struct Counting;
static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        let p = std::alloc::System.alloc(l);
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size(), std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        let q = std::alloc::System.realloc(p, l, new);
        if !q.is_null() {
            if new >= l.size() {
                let now = LIVE.fetch_add(new - l.size(), Relaxed) + new - l.size();
                PEAK.fetch_max(now, Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}
#[global_allocator]
static ALLOC: Counting = Counting;

fn x_count(trace: &Value) -> u64 {
    events(trace).iter().filter(|e| e["ph"] == "X").count() as u64
}

/// Thread id → name, from the `thread_name` metadata of the spans' process.
fn thread_names(trace: &Value) -> BTreeMap<u64, String> {
    let mut names = BTreeMap::new();
    for e in events(trace) {
        if e["ph"] == "M" && e["name"] == "thread_name" && e["pid"] == 1 {
            let prev = names.insert(
                e["tid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap().to_string(),
            );
            assert!(prev.is_none(), "thread {} named twice", e["tid"]);
        }
    }
    names
}

/// Counts of spans by path, summed over threads.
fn by_path(trace: &Value) -> BTreeMap<Vec<String>, u64> {
    let mut counts = BTreeMap::new();
    for e in events(trace).iter().filter(|e| e["ph"] == "X") {
        let path: Vec<String> = e["args"]["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        *counts.entry(path).or_default() += 1;
    }
    counts
}

/// Waits (bounded) until `cond` holds.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the file holds `n` spans (the aggregator wrote them).
fn wait_for_spans(path: &Path, n: u64) {
    wait_for(&format!("{n} spans in {}", path.display()), || {
        std::fs::read_to_string(path)
            .map(|t| t.matches(r#""ph":"X""#).count() as u64 >= n)
            .unwrap_or(false)
    });
}

/// Runs `f` on a thread and fails if it does not return within `secs` seconds (a hang).
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not return within {secs} s (hang)"),
    }
}

// ---------------------------------------------------------------------------------------
// Restarting a stream.

/// Restarting the stream on the same file (re-arming a capture, the example run twice in a
/// loop) must leave one whole trace. The new file is created (truncated) before the old
/// writer is closed, and the old writer then writes its closing at its old offset.
#[test]
fn restreaming_to_the_same_file_leaves_a_whole_trace() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("same.json");
    let mut session = streaming_session("same");
    session
        .stream_trace(&path, Duration::from_secs(3600))
        .unwrap();
    for _ in 0..2000 {
        let _s = scope!("first");
    }
    wait_for_spans(&path, 2000);
    session
        .stream_trace(&path, Duration::from_secs(3600))
        .unwrap();
    for _ in 0..10 {
        let _s = scope!("second");
    }
    // While the second stream runs, the file must be whole after each batch (a process
    // killed now leaves it as it is).
    wait_for_spans(&path, 10);
    let running = try_read(&path);
    session.stop();
    let trace = read(&path);
    running.expect("the file while the second stream runs");
    assert_eq!(trace["streamEnd"]["closed_by"], "stopped");
    assert_eq!(x_count(&trace), 10);
    assert_eq!(trace["streamEnd"]["spans"], 10);
}

/// A second stream closes the first with `replaced`; both files are whole and between them
/// hold every span once.
#[test]
fn a_second_stream_closes_the_first_and_both_are_whole() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let mut session = streaming_session("two");
    session.stream_trace(&a, Duration::from_secs(3600)).unwrap();
    for _ in 0..300 {
        let _s = scope!("in-a");
    }
    wait_for_spans(&a, 300);
    session.stream_trace(&b, Duration::from_secs(3600)).unwrap();
    for _ in 0..200 {
        let _s = scope!("in-b");
    }
    session.stop();
    let (ta, tb) = (read(&a), read(&b));
    check(&sorted(&ta));
    check(&sorted(&tb));
    assert_eq!(ta["streamEnd"]["closed_by"], "replaced");
    assert_eq!(tb["streamEnd"]["closed_by"], "stopped");
    assert_eq!(x_count(&ta), 300);
    assert_eq!(x_count(&tb), 200);
    assert_eq!(ta["streamEnd"]["spans"], 300);
    assert_eq!(tb["streamEnd"]["spans"], 200);
    let streamed = session.report().capture.unwrap().streamed.unwrap();
    assert_eq!(streamed.path, b);
    assert_eq!(streamed.spans, 200);
}

/// `capture_trace` after `stream_trace` closes the stream (`replaced`) and captures in
/// memory; `stream_trace` after `capture_trace` streams.
#[test]
fn capture_and_stream_replace_each_other() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let mut session = streaming_session("mix");
    session.stream_trace(&a, Duration::from_secs(3600)).unwrap();
    for _ in 0..50 {
        let _s = scope!("streamed");
    }
    wait_for_spans(&a, 50);
    session.capture_trace(Duration::from_secs(3600)).unwrap();
    for _ in 0..7 {
        let _s = scope!("captured");
    }
    let ta = read(&a);
    assert_eq!(ta["streamEnd"]["closed_by"], "replaced");
    assert_eq!(x_count(&ta), 50);
    let c = session.report().capture.unwrap();
    assert!(c.streamed.is_none());
    assert_eq!(c.spans.len(), 7);

    let b = dir.path().join("b.json");
    session.stream_trace(&b, Duration::from_secs(3600)).unwrap();
    for _ in 0..3 {
        let _s = scope!("streamed-again");
    }
    drop(session); // without stop: the drop closes the stream
    let tb = read(&b);
    assert_eq!(tb["streamEnd"]["closed_by"], "stopped");
    assert_eq!(x_count(&tb), 3);
}

/// Replacing a stream (by another stream or by `capture_trace`) right after recording: the
/// spans the aggregator had not drained yet must be in the old file or counted as dropped
/// in its `streamEnd`. `start_capture` hands the old writer its last batch without draining
/// the lanes first, then drains them into the old capture and throws it away.
#[test]
fn replacing_a_stream_writes_or_counts_its_last_spans() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let mut session = streaming_session("replace-fast");
    session.stream_trace(&a, Duration::from_secs(3600)).unwrap();
    for _ in 0..50 {
        let _s = scope!("before-replace");
    }
    session.stream_trace(&b, Duration::from_secs(3600)).unwrap();
    for _ in 0..40 {
        let _s = scope!("before-capture");
    }
    session.capture_trace(Duration::from_secs(3600)).unwrap();
    session.stop();
    let (ta, tb) = (read(&a), read(&b));
    let accounted = |t: &Value| {
        t["streamEnd"]["spans"].as_u64().unwrap() + t["streamEnd"]["dropped"].as_u64().unwrap()
    };
    assert_eq!(
        (accounted(&ta), accounted(&tb)),
        (50, 40),
        "spans written + dropped: {} / {}",
        ta["streamEnd"],
        tb["streamEnd"]
    );
}

#[test]
fn stopping_twice_and_streaming_after_stop() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let mut session = streaming_session("twice");
    session.stream_trace(&a, Duration::from_secs(3600)).unwrap();
    {
        let _s = scope!("one");
    }
    session.stop();
    let first = std::fs::read(&a).unwrap();
    session.stop();
    drop(session.report());
    assert_eq!(std::fs::read(&a).unwrap(), first);
    let b = dir.path().join("b.json");
    assert!(session.stream_trace(&b, Duration::from_secs(1)).is_err());
    assert!(!b.exists(), "a refused stream created its file");
    assert_eq!(read(&a)["streamEnd"]["spans"], 1);
}

// ---------------------------------------------------------------------------------------
// Windows and limits.

#[test]
fn a_window_of_one_nanosecond_closes_empty() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ns.json");
    let mut session = streaming_session("ns");
    session.stream_trace(&p, Duration::from_nanos(1)).unwrap();
    std::thread::sleep(Duration::from_millis(2));
    {
        let _s = scope!("late");
    }
    wait_for("the window to close", || {
        session
            .report()
            .capture
            .and_then(|c| c.streamed)
            .and_then(|s| s.closed)
            .is_some()
    });
    let t = read(&p);
    assert_eq!(t["streamEnd"]["closed_by"], "window");
    assert_eq!(x_count(&t), 0);
    session.stop();
    assert_eq!(read(&p), t);
}

#[test]
fn a_window_of_duration_max_runs_until_stop() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("max.json");
    let mut session = streaming_session("max");
    session.stream_trace(&p, Duration::MAX).unwrap();
    for _ in 0..5 {
        let _s = scope!("s");
    }
    let c = session.report().capture.unwrap();
    assert!(c.open);
    session.stop();
    let t = read(&p);
    assert_eq!(t["streamEnd"]["closed_by"], "stopped");
    assert_eq!(x_count(&t), 5);
    assert!(t["otherData"]["stream"]["window_us"].as_f64().unwrap() > 1e15);
    let end = t["streamEnd"]["end_us"].as_f64().unwrap();
    assert!(end.is_finite() && end < 3.6e9, "end_us {end}");
}

#[test]
fn limits_of_zero_and_one() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    for limit in [0u64, 1] {
        let p = dir.path().join(format!("l{limit}.json"));
        let mut session = streaming_session("lim");
        session
            .stream_trace_with_limit(&p, Duration::from_secs(3600), limit)
            .unwrap();
        for _ in 0..10 {
            let _s = scope!("s");
        }
        let f = frame!("cam-lim");
        f.finish();
        session.stop();
        let t = read(&p);
        assert_eq!(x_count(&t), limit);
        assert_eq!(t["streamEnd"]["spans"], limit);
        assert_eq!(t["streamEnd"]["frames"], 0);
        assert_eq!(t["streamEnd"]["dropped"], 11 - limit);
        assert_eq!(session.report().capture.unwrap().dropped, 11 - limit);
    }
}

// ---------------------------------------------------------------------------------------
// Destinations.

#[test]
fn a_directory_a_dangling_symlink_and_a_symlink_to_a_file() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let mut session = streaming_session("dest");
    // A failed stream_trace leaves the stream running before it alone.
    let good = dir.path().join("good.json");
    session
        .stream_trace(&good, Duration::from_secs(3600))
        .unwrap();
    {
        let _s = scope!("kept");
    }
    wait_for_spans(&good, 1);
    let e = session
        .stream_trace(dir.path(), Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&dir.path().display().to_string()), "{e}");
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nope/x.json"), &dangling).unwrap();
    assert!(session
        .stream_trace(&dangling, Duration::from_secs(1))
        .is_err());
    let st = session.report().capture.unwrap().streamed.unwrap();
    assert_eq!(
        (st.path.clone(), st.closed.clone(), st.error.clone()),
        (good.clone(), None, None)
    );
    // Through a symlink: the target is written (replacing the good stream).
    let target = dir.path().join("target.json");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    session
        .stream_trace(&link, Duration::from_secs(3600))
        .unwrap();
    {
        let _s = scope!("s");
    }
    session.stop();
    assert_eq!(x_count(&read(&target)), 1);
    let g = read(&good);
    assert_eq!(
        (x_count(&g), g["streamEnd"]["closed_by"].as_str()),
        (1, Some("replaced"))
    );
}

/// Streaming to `/dev/null` (measuring the cost of streaming without the disk) is a normal
/// thing to do; the writer's closing truncates the file (`set_len`) and syncs it, which a
/// character device refuses, and the report then says the stream failed.
#[test]
fn streaming_to_dev_null_reports_no_error() {
    let _turn = turn();
    let mut session = streaming_session("null");
    session
        .stream_trace("/dev/null", Duration::from_secs(3600))
        .unwrap();
    for _ in 0..100 {
        let _s = scope!("s");
    }
    session.stop();
    let streamed = session.report().capture.unwrap().streamed.unwrap();
    assert_eq!(streamed.spans, 100);
    assert_eq!(streamed.closed.as_deref(), Some("stopped"));
    assert_eq!(streamed.error, None);
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo");
}

/// A FIFO (a named pipe to a viewer or a compressor: `mkfifo t.json; gzip < t.json`) is a
/// destination that takes no positioned writes. Either it is refused when the stream
/// starts, with an error naming it, or it works: accepting it and failing at the first
/// batch (ESPIPE) loses the whole capture while `stream_trace` said Ok.
#[test]
fn a_fifo_is_refused_up_front_or_streamed_whole() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.json");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    let mut session = streaming_session("fifo");
    match session.stream_trace(&fifo, Duration::from_secs(3600)) {
        Err(e) => {
            assert!(e.to_string().contains("pipe.json"), "{e}");
            // Release the reader.
            drop(std::fs::OpenOptions::new().write(true).open(&fifo));
        }
        Ok(()) => {
            for _ in 0..100 {
                let _s = scope!("s");
            }
            std::thread::sleep(Duration::from_millis(100));
            session.stop();
            let streamed = session.report().capture.unwrap().streamed.unwrap();
            let got = reader.join().unwrap();
            assert_eq!(
                streamed.error, None,
                "stream_trace accepted the FIFO, then the stream failed"
            );
            let t: Value = serde_json::from_slice(&got).expect("whole JSON from the pipe");
            assert_eq!(x_count(&t), 100);
        }
    }
}

/// Opening a FIFO for writing blocks until a reader opens it: `stream_trace` to a FIFO
/// nobody reads must not hang the caller (who holds the session's lock in the facade).
#[test]
fn a_fifo_without_a_reader_does_not_hang_stream_trace() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("nobody.json");
    mkfifo(&fifo);
    let f2 = fifo.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut session = streaming_session("fifo-noreader");
        let r = session
            .stream_trace(&f2, Duration::from_secs(3600))
            .map_err(|e| e.to_string());
        let _ = tx.send(r);
        session.stop();
    });
    let r = rx.recv_timeout(Duration::from_secs(60));
    if r.is_err() {
        // Unblock the stuck open before failing.
        let _ = std::fs::File::open(&fifo);
    }
    let r = r.expect("stream_trace to a FIFO without a reader hung");
    assert!(r.is_err(), "a FIFO without a reader was accepted");
}

// ---------------------------------------------------------------------------------------
// Threads.

/// 160 short-lived threads (far past the 32 exited threads kept), each with its own name:
/// every span in the file keeps its thread's name, every thread is named once, the counts
/// are the session's own.
#[test]
fn thread_churn_keeps_every_name_and_count() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("churn.json");
    let mut session = streaming_session("churn");
    session.stream_trace(&p, Duration::from_secs(3600)).unwrap();
    for wave in 0..20 {
        let hs: Vec<_> = (0..8)
            .map(|k| {
                std::thread::Builder::new()
                    .name(format!("churn-{wave}-{k}"))
                    .spawn(move || {
                        for _ in 0..3 {
                            let _o = scope!("c-outer");
                            let _i = scope!("c-inner");
                        }
                    })
                    .unwrap()
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        if wave % 4 == 0 {
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    session.stop();
    let report = session.report();
    let t = read(&p);
    check(&sorted(&t));
    let names = thread_names(&t);
    let mut per_thread: BTreeMap<String, u64> = BTreeMap::new();
    for e in events(&t).iter().filter(|e| e["ph"] == "X") {
        let name = names[&e["tid"].as_u64().unwrap()].clone();
        *per_thread.entry(name).or_default() += 1;
    }
    assert_eq!(per_thread.len(), 160, "{per_thread:?}");
    assert!(per_thread.values().all(|&n| n == 6), "{per_thread:?}");
    assert!(per_thread.keys().all(|n| n.starts_with("churn-")));
    let expected: BTreeMap<Vec<String>, u64> = report
        .span_totals
        .iter()
        .map(|s| (s.path.clone(), s.count))
        .collect();
    assert_eq!(by_path(&t), expected);
    assert_eq!(t["streamEnd"]["spans"], 960);
}

/// A frame whose first stage ran on a thread that has since exited and been folded into
/// `<exited threads>` (a grabber thread per camera restart): the stage keeps its thread in
/// the stream, as spans do.
#[test]
fn a_stage_on_a_folded_thread_keeps_its_thread_name() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("stage.json");
    let mut session = streaming_session("stage");
    session.stream_trace(&p, Duration::from_secs(3600)).unwrap();
    let f = std::thread::Builder::new()
        .name("grabber".into())
        .spawn(|| {
            let f = frame!("cam-fold");
            {
                let _g = f.stage("grab");
            }
            f
        })
        .unwrap()
        .join()
        .unwrap();
    // 40 more threads exit: the grabber's rows are folded.
    for k in 0..40 {
        std::thread::Builder::new()
            .name(format!("filler-{k}"))
            .spawn(|| {
                let _s = scope!("filler");
            })
            .unwrap()
            .join()
            .unwrap();
    }
    wait_for("the grabber to be folded", || {
        let r = session.report();
        r.diagnostics.folded_threads > 0 && r.threads.iter().all(|t| t.name != "grabber")
    });
    {
        let _d = f.stage("detect");
    }
    f.finish();
    session.stop();
    let t = read(&p);
    check(&sorted(&t));
    let grab: Vec<&Value> = events(&t)
        .iter()
        .filter(|e| e["ph"] == "b" && e["name"] == "grab")
        .collect();
    assert_eq!(grab.len(), 1);
    assert_eq!(grab[0]["args"]["thread"], "grabber", "{}", grab[0]);
    // And the grabber's span itself kept its name.
    let names = thread_names(&t);
    assert!(names.values().any(|n| n == "grabber"), "{names:?}");
}

// ---------------------------------------------------------------------------------------
// Names.

#[test]
fn hostile_names_round_trip() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("names.json");
    let nasty = "q\"uote\\back\u{0}\u{1}\u{1f}\n\r\t\u{7f}\u{2028}\u{2029}\u{feff}\u{fffd}\u{ffff}\u{10ffff}]}{\"ph\":\"X\"}".to_string();
    let huge: String = format!("{nasty}{}", "\u{1F600}x\"".repeat(3000)); // > 10 KB
    let thread_name = nasty.replace('\u{0}', ""); // a thread name cannot hold NUL
    let mut session = streaming_session(&nasty);
    session.set_label(nasty.clone(), huge.clone());
    session.stream_trace(&p, Duration::from_secs(3600)).unwrap();
    let src = FrameSource::new(&huge);
    session.start_timing(&nasty);
    session.start_timing(&huge);
    session.stop_timing(&huge).unwrap();
    session.stop_timing(&nasty).unwrap();
    let h = std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || {
            let f = src.begin();
            {
                let _s = f.stage("st\"age");
            }
            f.drop_frame("re\"ason\\\u{1}");
            let _s = scope!("in-thread");
        })
        .unwrap();
    h.join().unwrap();
    session.stop();
    let t = read(&p);
    check(&sorted(&t));
    assert_eq!(t["otherData"]["session"], nasty.as_str());
    let labels = &session.report().session.labels;
    assert_eq!(
        t["otherData"]["labels"][&labels.keys().next().unwrap()[..]],
        labels.values().next().unwrap().as_str()
    );
    let x: Vec<&Value> = events(&t).iter().filter(|e| e["ph"] == "X").collect();
    assert!(x.iter().any(
        |e| e["name"] == huge.as_str() && e["args"]["path"] == serde_json::json!([nasty, huge])
    ));
    assert!(thread_names(&t).values().any(|n| *n == thread_name));
    let frames: Vec<&Value> = events(&t)
        .iter()
        .filter(|e| e["ph"] == "b" && e["name"] == huge.as_str())
        .collect();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["args"]["dropped"], "re\"ason\\\u{1}");
    assert!(events(&t)
        .iter()
        .any(|e| e["name"] == "process_name" && e["args"]["name"] == huge.as_str()));
    assert_eq!(t["streamEnd"]["frames"], 1);
}

// ---------------------------------------------------------------------------------------
// Load.

/// `report()` from several threads in a loop while two threads record as fast as they can
/// and the aggregator streams: nothing deadlocks, every span is counted once (written or
/// dropped), the file is whole.
#[test]
fn reports_in_a_loop_while_streaming_a_burst() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("busy.json");
    let p2 = p.clone();
    let (trace, total, report_spans) =
        within(300, "streaming with concurrent reports", move || {
            let session = Arc::new(std::sync::Mutex::new(streaming_session("busy")));
            session
                .lock()
                .unwrap()
                .stream_trace(&p2, Duration::from_secs(3600))
                .unwrap();
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            // Reports hold the session lock only to clone a handle? No: report takes &self;
            // take it under the mutex, as the facade does.
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let s = Arc::clone(&session);
                    let stop = Arc::clone(&stop);
                    std::thread::spawn(move || {
                        let mut n = 0;
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            let r = s.lock().unwrap().report();
                            let c = r.capture.unwrap();
                            assert!(c.streamed.unwrap().error.is_none());
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            let writers: Vec<_> = (0..2)
                .map(|_| {
                    std::thread::spawn(|| {
                        for _ in 0..400_000 {
                            let _a = scope!("burst-a");
                            let _b = scope!("burst-b");
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for r in readers {
                r.join().unwrap();
            }
            let mut s = session.lock().unwrap();
            s.stop();
            let report = s.report();
            let c = report.capture.clone().unwrap();
            let st = c.streamed.clone().unwrap();
            let total: u64 = report.span_totals.iter().map(|s| s.count).sum();
            (read(&p2), (st.spans, c.dropped), total)
        });
    let _ = p;
    let (written, dropped) = total;
    assert_eq!(report_spans, 1_600_000);
    assert_eq!(x_count(&trace), written);
    assert_eq!(trace["streamEnd"]["spans"], written);
    assert_eq!(trace["streamEnd"]["dropped"], dropped);
    assert_eq!(written + dropped, report_spans);
}

// ---------------------------------------------------------------------------------------
// A full disk, in a child process under RLIMIT_FSIZE (SIGXFSZ ignored: writes fail EFBIG).

/// The child: streams until a write fails, then prints what the report says.
#[test]
fn child_streams_into_a_file_size_limit() {
    let Some(path) = std::env::var_os("HEIMDALL_FSIZE_CHILD") else {
        return;
    };
    let path = PathBuf::from(path);
    let mut session = streaming_session("fsize");
    session
        .stream_trace(&path, Duration::from_secs(3600))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Mid-stream: first one small batch is written. Its spans are recorded once and the
    // test waits for the report to count them written: recording more while waiting would
    // let a late first pass (a loaded machine) gather a batch over the limit by itself.
    for _ in 0..20 {
        let _o = scope!("full-outer");
        let _i = scope!("full-inner");
    }
    loop {
        std::thread::sleep(Duration::from_millis(15));
        let st = session.report().capture.unwrap().streamed.unwrap();
        assert!(
            st.error.is_none(),
            "a batch of 40 spans failed: {:?}",
            st.error
        );
        if st.spans > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no batch was ever written");
    }
    loop {
        for _ in 0..200 {
            let _o = scope!("full-outer");
            let _i = scope!("full-inner");
        }
        std::thread::sleep(Duration::from_millis(15));
        let st = session.report().capture.unwrap().streamed.unwrap();
        if st.error.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the limit was never hit");
    }
    // A few more after the failure: they are lost, counted.
    for _ in 0..50 {
        let _o = scope!("full-outer");
    }
    session.stop();
    let c = session.report().capture.unwrap();
    let st = c.streamed.clone().unwrap();
    println!("SPANS {}", st.spans);
    println!("LOST {}", st.lost);
    println!("DROPPED {}", c.dropped);
    println!("CLOSED {}", st.closed.unwrap_or_default());
    println!("ERROR {}", st.error.unwrap_or_default().replace('\n', " "));
}

#[test]
fn a_full_disk_mid_stream_leaves_the_file_whole_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.json");
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 64; exec "$0" --exact child_streams_into_a_file_size_limit --nocapture --test-threads 1"#)
        .arg(std::env::current_exe().unwrap())
        .env("HEIMDALL_FSIZE_CHILD", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.split_once(&format!("{k} ")).map(|(_, v)| v))
            .unwrap_or_else(|| panic!("no {k} in {stdout}"))
            .to_string()
    };
    let spans: u64 = field("SPANS").parse().unwrap();
    let lost: u64 = field("LOST").parse().unwrap();
    let error = field("ERROR");
    assert!(error.contains("full.json"), "{error}");
    assert!(error.to_lowercase().contains("file too large"), "{error}");
    assert!(lost >= 50, "lost {lost}");
    assert_eq!(field("CLOSED"), "stopped");
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size <= 64 * 1024, "{size}");
    let t = read(&path);
    check(&sorted(&t));
    assert_eq!(
        x_count(&t),
        spans,
        "the file holds the batches the report counts"
    );
    assert!(spans > 0);
    assert!(t.get("streamEnd").is_none());
}

// ---------------------------------------------------------------------------------------
// Memory.

/// Twelve nested spans with 60-byte names (a pipeline's stage names, qualified): each
/// span's event repeats its whole path in `args.path`.
fn deep_spans(n: usize) {
    macro_rules! nest {
        ($($name:literal),*) => {
            for _ in 0..n {
                $( let _g = scope!($name); )*
            }
        };
    }
    nest!(
        "inspection_line::station_07::acquisition::grab_and_debayer_00",
        "inspection_line::station_07::acquisition::grab_and_debayer_01",
        "inspection_line::station_07::acquisition::grab_and_debayer_02",
        "inspection_line::station_07::acquisition::grab_and_debayer_03",
        "inspection_line::station_07::acquisition::grab_and_debayer_04",
        "inspection_line::station_07::acquisition::grab_and_debayer_05",
        "inspection_line::station_07::acquisition::grab_and_debayer_06",
        "inspection_line::station_07::acquisition::grab_and_debayer_07",
        "inspection_line::station_07::acquisition::grab_and_debayer_08",
        "inspection_line::station_07::acquisition::grab_and_debayer_09",
        "inspection_line::station_07::acquisition::grab_and_debayer_10",
        "inspection_line::station_07::acquisition::grab_and_debayer_11"
    );
}

/// A burst of deep spans while streaming: the stream keeps "only the current batch in
/// memory" (README), a batch being at most 1.3 million spans of 24 bytes (~30 MiB, the
/// capture's own bound of 64 MiB with its copy). The writer renders a whole batch into one
/// buffer before its single positioned write, and keeps that buffer's capacity for the rest
/// of the stream: with long paths the rendered batch is ~40× the batch itself.
#[test]
fn a_burst_of_deep_spans_keeps_the_stream_memory_bounded() {
    use std::sync::atomic::Ordering::Relaxed;
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("deep.json");
    let mut session = streaming_session("deep");
    deep_spans(1);
    drop(session.report());
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    session.stream_trace(&p, Duration::from_secs(3600)).unwrap();
    let hs: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(|| deep_spans(20_000)))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    // Every span handed out (written or dropped) before measuring what the stream holds.
    let recorded = 2 * 20_000 * 12;
    wait_for("the burst to be written", || {
        let c = session.report().capture.unwrap();
        let st = c.streamed.unwrap();
        st.spans + c.dropped >= recorded
    });
    let held = LIVE.load(Relaxed).saturating_sub(base);
    let peak = PEAK.load(Relaxed).saturating_sub(base);
    session.stop();
    let t = read(&p);
    let written = x_count(&t);
    let dropped = t["streamEnd"]["dropped"].as_u64().unwrap();
    eprintln!(
        "deep burst: {written} written, {dropped} dropped; peak heap +{} MiB, held while streaming +{} MiB, file {} MiB",
        peak >> 20,
        held >> 20,
        std::fs::metadata(&p).unwrap().len() >> 20
    );
    assert_eq!(written + dropped, recorded);
    assert!(
        peak < 64 << 20,
        "peak heap while streaming +{} MiB",
        peak >> 20
    );
    assert!(
        held < 16 << 20,
        "heap held by a running stream after the burst +{} MiB",
        held >> 20
    );
}

/// New threads start while `report()` runs in a loop: the aggregator takes its snapshot of
/// the threads before it locks the aggregate, and a `report()` holding the aggregate drains
/// the spans of threads born after that snapshot into the batch. No span may lose its
/// thread (tid 0, `<exited threads>`, a thread that never exited).
#[test]
fn threads_born_while_reports_run_keep_their_names() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("born.json");
    let session = Arc::new(std::sync::Mutex::new(streaming_session("born")));
    session
        .lock()
        .unwrap()
        .stream_trace(&p, Duration::from_secs(3600))
        .unwrap();
    {
        // A large aggregate: each report() holds it longer.
        let mut s = session.lock().unwrap();
        for k in 0..3000 {
            let name = format!("filler-{k}");
            s.start_timing(&name);
            s.stop_timing(&name).unwrap();
        }
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reporter = {
        let (s, stop) = (Arc::clone(&session), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                drop(s.lock().unwrap().report());
            }
        })
    };
    for k in 0..400 {
        std::thread::Builder::new()
            .name(format!("born-{k}"))
            .spawn(|| {
                let _s = scope!("born");
            })
            .unwrap()
            .join()
            .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reporter.join().unwrap();
    session.lock().unwrap().stop();
    let t = read(&p);
    let names = thread_names(&t);
    let mut wrong = BTreeMap::new();
    for e in events(&t).iter().filter(|e| e["ph"] == "X") {
        let name = names
            .get(&e["tid"].as_u64().unwrap())
            .cloned()
            .unwrap_or_default();
        if e["name"] == "born" && !name.starts_with("born-") {
            *wrong.entry(name).or_insert(0u64) += 1;
        }
    }
    assert_eq!(by_path(&t)[&vec!["born".to_string()]], 400);
    assert!(wrong.is_empty(), "spans under the wrong thread: {wrong:?}");
}

// ---------------------------------------------------------------------------------------
// The manager and the run folder.

fn manager(dir: &Path) -> heimdall_perf_core::ProfilingManager {
    let registry = Arc::new(Registry::new());
    registry
        .register_sink(Arc::new(heimdall_perf_report_trace::TraceSink::new()))
        .unwrap();
    registry.set_trace_stream(heimdall_perf_report_trace::stream_factory());
    heimdall_perf_core::ProfilingManager::new(dir.join("reports"), registry).unwrap()
}

/// The run folder's `trace.json` names the streamed file, and the streamed file is closed
/// by the manager's stop; dropping the manager closes a stream too.
#[test]
fn the_run_folder_and_a_dropped_manager() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("line.trace.json");
    let mut m = manager(dir.path());
    let s = m.start_session("line").unwrap();
    s.lock()
        .unwrap()
        .stream_trace(&stream, Duration::from_secs(3600))
        .unwrap();
    for _ in 0..30 {
        let _s = scope!("run");
    }
    let saved = m.stop_session().unwrap();
    let t = read(&stream);
    assert_eq!(t["streamEnd"]["closed_by"], "stopped");
    assert_eq!(x_count(&t), 30);
    let folder_trace = read(&saved.dir.join("trace.json"));
    check(&folder_trace);
    assert_eq!(folder_trace["otherData"]["spans_from"], "recent spans");
    let why = folder_trace["otherData"]["partial_reason"]
        .as_str()
        .unwrap();
    assert!(
        why.contains("line.trace.json") && why.contains("30 spans"),
        "{why}"
    );

    // A manager dropped with a session streaming: the stream is closed, the file whole.
    let stream2 = dir.path().join("dropped.trace.json");
    let s = m.start_session("dropped").unwrap();
    s.lock()
        .unwrap()
        .stream_trace(&stream2, Duration::from_secs(3600))
        .unwrap();
    for _ in 0..5 {
        let _s = scope!("run");
    }
    drop(s);
    drop(m);
    let t = read(&stream2);
    assert_eq!(t["streamEnd"]["closed_by"], "stopped");
    assert_eq!(x_count(&t), 5);
}

/// A stream that failed (disk full, a pipe) leaves the run folder's `trace.json` saying
/// "the capture window was streamed to `…` (N spans written)" without a word of the failure:
/// the trace should say the stream failed, why, and how many spans and frames were lost.
#[test]
fn the_run_folder_trace_says_when_the_stream_failed() {
    let mut report = heimdall_perf_core::Report::empty("failed-stream");
    report.capture = Some(heimdall_perf_core::TraceCapture {
        dropped: 450,
        streamed: Some(heimdall_perf_core::StreamedTrace {
            path: PathBuf::from("/mnt/small/line.trace.json"),
            spans: 400,
            lost: 450,
            closed: Some("stopped".into()),
            error: Some(
                "writing `/mnt/small/line.trace.json` failed: No space left on device (os error 28)"
                    .into(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    });
    let t = common::render_checked(&report);
    let why = t["otherData"]["partial_reason"].as_str().unwrap();
    assert!(why.contains("line.trace.json"), "{why}");
    assert!(
        why.contains("No space left on device") && why.contains("450"),
        "the failure is not mentioned: {why}"
    );
}

// ---------------------------------------------------------------------------------------
// Frames across threads.

/// Frames whose stages run on other threads, two of them at once: every frame is in the
/// file once, its async slices pair up and nest, the stages carry their threads.
#[test]
fn frames_with_parallel_stages_on_other_threads() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("par.json");
    let mut session = streaming_session("par");
    session.stream_trace(&p, Duration::from_secs(3600)).unwrap();
    // Two long-lived stage threads (the folded-thread case is its own test), each frame's
    // two halves run on both at once.
    let b = Arc::new(std::sync::Barrier::new(3));
    let workers: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|side| {
            let (tx, rx) = mpsc::channel::<heimdall_perf_core::Frame>();
            let b = Arc::clone(&b);
            let h = std::thread::Builder::new()
                .name(format!("stage-{side}"))
                .spawn(move || {
                    for f in rx {
                        {
                            let _g = f.stage(if side == "left" {
                                "left-half"
                            } else {
                                "right-half"
                            });
                            std::thread::sleep(Duration::from_micros(200));
                        }
                        b.wait();
                    }
                })
                .unwrap();
            (tx, h)
        })
        .collect();
    for i in 0..60u64 {
        let f = frame!("cam-par");
        for (tx, _) in &workers {
            tx.send(f).unwrap();
        }
        b.wait();
        if i % 7 == 0 {
            f.drop_frame("late");
        } else {
            f.finish();
        }
    }
    for (tx, h) in workers {
        drop(tx);
        h.join().unwrap();
    }
    session.stop();
    let t = read(&p);
    check(&sorted(&t));
    let ev = events(&t);
    let frames = ev
        .iter()
        .filter(|e| e["ph"] == "b" && e["name"] == "cam-par")
        .count();
    assert_eq!(frames, 60);
    for stage in ["left-half", "right-half"] {
        let n: Vec<&Value> = ev
            .iter()
            .filter(|e| e["ph"] == "b" && e["name"] == stage)
            .collect();
        assert_eq!(n.len(), 60, "{stage}");
        assert!(n
            .iter()
            .all(|e| e["args"]["thread"].as_str().unwrap().starts_with("stage-")));
    }
    assert_eq!(t["streamEnd"]["frames"], 60);
    let report = session.report();
    let src = report.frame_source("cam-par").unwrap();
    assert_eq!(src.count, 60);
}

/// A stream during thread churn (a pool respawning its workers, 4 000 threads over a
/// night): a streamed window keeps, for every thread that ran in it, its name and its paths'
/// slots — the README's bound of 512 bytes a thread: each distinct path is kept once for
/// every thread that runs it, and the capture keeps only the paths of its current batch.
/// (It kept every path's names twice at first: 700 bytes a thread and more with longer
/// names.)
#[test]
fn thread_churn_under_a_stream_does_not_grow_the_heap() {
    use std::sync::atomic::Ordering::Relaxed;
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("churn-mem.json");
    let churn = |n: usize| {
        for _ in 0..n {
            std::thread::spawn(|| {
                let _a = scope!("pool_worker::process_item::outer_stage_with_a_long_name");
                let _b = scope!("pool_worker::process_item::inner_stage_with_a_long_name");
            })
            .join()
            .unwrap();
        }
    };
    // The same churn without a stream: what the recorder itself grows by.
    let control = {
        let session = streaming_session("churn-control");
        churn(200);
        drop(session.report());
        let base = LIVE.load(Relaxed);
        churn(4000);
        drop(session.report());
        LIVE.load(Relaxed).saturating_sub(base)
    };
    let mut session = streaming_session("churn-mem");
    session.stream_trace(&p, Duration::from_secs(3600)).unwrap();
    churn(200);
    wait_for_spans(&p, 400);
    let base = LIVE.load(Relaxed);
    churn(4000);
    wait_for_spans(&p, 8400);
    let grown = LIVE.load(Relaxed).saturating_sub(base);
    eprintln!(
        "4000 threads under a stream: heap +{} KiB (without a stream +{} KiB)",
        grown >> 10,
        control >> 10
    );
    session.stop();
    assert_eq!(x_count(&read(&p)), 8400);
    assert!(
        grown < 4000 * 512,
        "heap +{} KiB over 4000 threads",
        grown >> 10
    );
}

/// The same stage-thread loss in the in-memory capture (`capture_trace`): stages are named
/// from the live thread table when the report is taken, not from the capture's table of
/// folded threads that spans use.
#[test]
fn a_stage_on_a_folded_thread_keeps_its_thread_name_in_capture_trace() {
    let _turn = turn();
    let mut session = streaming_session("stage-mem");
    session.capture_trace(Duration::from_secs(3600)).unwrap();
    let f = std::thread::Builder::new()
        .name("grabber-mem".into())
        .spawn(|| {
            let f = frame!("cam-fold-mem");
            {
                let _g = f.stage("grab");
            }
            f.finish();
        })
        .unwrap()
        .join();
    f.unwrap();
    for k in 0..40 {
        std::thread::Builder::new()
            .name(format!("filler-mem-{k}"))
            .spawn(|| {
                let _s = scope!("filler");
            })
            .unwrap()
            .join()
            .unwrap();
    }
    session.stop();
    let report = session.report();
    let c = report.capture.as_ref().unwrap();
    assert!(c.paths.iter().any(|p| p.thread == "grabber-mem"));
    let frame = c
        .frames
        .iter()
        .find(|f| f.source == "cam-fold-mem")
        .unwrap();
    assert_eq!(frame.stages[0].thread, "grabber-mem");
}
