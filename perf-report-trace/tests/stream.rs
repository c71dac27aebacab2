//! A streamed capture (`stream_trace`): written by the aggregator in batches, parsed back.
//! Every span and frame of the window is in the file exactly once, the file is whole JSON
//! after every batch (a process killed between batches leaves a trace a loader reads), and
//! a file that cannot be written is an error naming it.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use heimdall_perf_core::{frame, scope, ProfilingSession};
use serde_json::Value;

use common::{check, events, ns, read, sorted, streaming_session, turn};

fn spans_by_thread_and_path(ev: &[Value]) -> BTreeMap<(u64, Vec<String>), u64> {
    let mut counts = BTreeMap::new();
    for e in ev.iter().filter(|e| e["ph"] == "X") {
        let path: Vec<String> = e["args"]["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        *counts
            .entry((e["tid"].as_u64().unwrap(), path))
            .or_default() += 1;
    }
    counts
}

#[test]
fn every_span_and_frame_of_a_streamed_window_is_in_the_file_once() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.trace.json");
    let mut session = streaming_session("stream");
    session.set_frame_budget("cam-0", Duration::from_nanos(1)); // every frame misses
    session
        .stream_trace(&path, Duration::from_secs(3600))
        .unwrap();

    let worker = std::thread::Builder::new()
        .name("worker-b".into())
        .spawn(|| {
            for i in 0..40u64 {
                let f = frame!("cam-0");
                {
                    let _outer = scope!("b-outer");
                    let _stage = f.stage("detect");
                    let _nms = scope!("nms");
                }
                if i == 3 {
                    f.drop_frame("queue full");
                } else {
                    f.finish();
                }
                if i % 10 == 0 {
                    // Several drain passes, so several batches.
                    std::thread::sleep(Duration::from_millis(25));
                }
            }
        })
        .unwrap();
    for i in 0..60 {
        let _outer = scope!("outer");
        {
            let _inner = scope!("inner");
        }
        if i % 20 == 0 {
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    worker.join().unwrap();
    session.stop();
    let report = session.report();

    let trace = read(&path);
    let ev = events(&trace);
    check(&sorted(&trace));
    // The counts per thread and path are the session's own statistics.
    let expected: BTreeMap<_, _> = report
        .spans
        .iter()
        .map(|s| ((s.thread_id.unwrap(), s.path.clone()), s.count))
        .collect();
    assert_eq!(spans_by_thread_and_path(ev), expected);
    let spans = ev.iter().filter(|e| e["ph"] == "X").count() as u64;
    assert_eq!(spans, 60 * 2 + 40 * 3);
    // Frames: a slice per frame, its stage nested, the drop marked.
    let frames: Vec<_> = ev
        .iter()
        .filter(|e| e["ph"] == "b" && e["name"] == "cam-0")
        .collect();
    assert_eq!(frames.len(), 40);
    assert_eq!(
        frames
            .iter()
            .filter(|f| f["args"]["dropped"] == "queue full")
            .count(),
        1
    );
    assert!(ev
        .iter()
        .any(|e| e["name"] == "thread_name" && e["args"]["name"] == "worker-b"));
    // The closing record and the report agree with the file.
    let end = &trace["streamEnd"];
    assert_eq!(end["closed_by"], "stopped");
    assert_eq!(end["spans"], spans);
    assert_eq!(end["frames"], 40);
    assert_eq!(end["dropped"], 0);
    let capture = report.capture.as_ref().expect("a capture");
    let streamed = capture.streamed.as_ref().expect("streamed");
    assert_eq!((streamed.spans, streamed.frames), (spans, 40));
    assert_eq!(streamed.closed.as_deref(), Some("stopped"));
    assert_eq!(streamed.path, path);
    assert!(capture.spans.is_empty() && capture.frames.is_empty());
    assert_eq!(trace["otherData"]["spans_from"], "stream");

    // The run folder's own trace (the sink) holds the recent spans and says where the
    // capture went.
    let sink_trace = common::render_checked(&report);
    assert_eq!(sink_trace["otherData"]["spans_from"], "recent spans");
    let why = sink_trace["otherData"]["partial_reason"].as_str().unwrap();
    assert!(why.contains("stream.trace.json"), "{why}");
}

#[test]
fn the_window_closes_the_stream_and_keeps_only_its_spans() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("window.json");
    let mut session = streaming_session("window");
    session
        .stream_trace(&path, Duration::from_millis(30))
        .unwrap();
    let mut recorded = 0u64;
    // When each span began and ended, on the wall clock (the session's start is on it too).
    let mut timed = Vec::new();
    // Record until the aggregator has closed the window (a wait, bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let began = heimdall_perf_core::unix_now_ns();
        {
            let _s = scope!("tick");
        }
        timed.push((began, heimdall_perf_core::unix_now_ns()));
        recorded += 1;
        std::thread::sleep(Duration::from_millis(1));
        let closed = session
            .report()
            .capture
            .and_then(|c| c.streamed)
            .and_then(|s| s.closed);
        if closed.is_some() {
            assert_eq!(closed.as_deref(), Some("window"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the window never closed"
        );
    }
    let trace = read(&path);
    let end = &trace["streamEnd"];
    assert_eq!(end["closed_by"], "window");
    let window_end = ns(&end["end_us"]);
    let spans: Vec<&Value> = events(&trace).iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(end["spans"], spans.len() as u64);
    // Every span recorded well inside the window is written, none recorded after it. (The
    // window closes a few drain passes after its end, so spans after it are recorded,
    // usually; a loaded machine can leave this thread asleep until it has closed.)
    let start_unix = session.report().session.start_unix_ns;
    let since_start = |t: u64| t.saturating_sub(start_unix);
    let (margin, window_start) = (5_000_000, ns(&end["start_us"]));
    let inside = timed
        .iter()
        .filter(|&&(b, e)| {
            since_start(b) > window_start + margin && since_start(e) + margin < window_end
        })
        .count() as u64;
    let after = timed
        .iter()
        .filter(|&&(b, _)| since_start(b) > window_end + margin)
        .count() as u64;
    eprintln!(
        "window: {recorded} spans recorded, {inside} inside, {after} after, {} written",
        spans.len()
    );
    assert!(spans.len() as u64 >= inside, "spans of the window missing");
    assert!(
        spans.len() as u64 <= recorded - after,
        "spans after the window were written"
    );
    for s in spans {
        assert!(ns(&s["ts"]) + ns(&s["dur"]) <= window_end + 1, "{s}");
    }
    check(&sorted(&trace));
    session.stop();
    // Stopping after the window closed changes nothing.
    assert_eq!(read(&path), trace);
}

#[test]
fn the_limit_counts_what_it_leaves_out() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limited.json");
    let mut session = streaming_session("limited");
    session
        .stream_trace_with_limit(&path, Duration::from_secs(3600), 25)
        .unwrap();
    for _ in 0..100 {
        let _s = scope!("s");
    }
    session.stop();
    let trace = read(&path);
    let spans = events(&trace).iter().filter(|e| e["ph"] == "X").count();
    assert_eq!(spans, 25);
    assert_eq!(trace["streamEnd"]["spans"], 25);
    assert_eq!(trace["streamEnd"]["dropped"], 75);
    assert_eq!(session.report().capture.unwrap().dropped, 75);
}

#[test]
fn a_file_that_cannot_be_written_is_an_error_naming_it() {
    let _turn = turn();
    let dir = tempfile::tempdir().unwrap();
    let mut session = streaming_session("bad");
    let missing = dir.path().join("no-such-folder").join("t.json");
    let e = session
        .stream_trace(&missing, Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no-such-folder"), "{e}");
    // A device that takes no bytes: the opening cannot be written.
    let e = session
        .stream_trace("/dev/full", Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/dev/full"), "{e}");
    // Nothing streams: the session goes on and reports no capture.
    {
        let _s = scope!("after");
    }
    assert!(session.report().capture.is_none());
    // Without a writer in the registry, the error says what to register.
    let mut plain = ProfilingSession::new("plain");
    let e = plain
        .stream_trace(dir.path().join("x.json"), Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("set_trace_stream"), "{e}");
}

/// Run by `a_process_killed_mid_capture_leaves_a_whole_trace` in a child process: streams
/// spans, says so on stdout once they are written, and waits to be killed.
#[test]
fn child_streams_until_killed() {
    let Some(path) = std::env::var_os("HEIMDALL_STREAM_CHILD") else {
        return; // only as the child
    };
    let mut session = streaming_session("killed");
    session
        .stream_trace(&path, Duration::from_secs(3600))
        .unwrap();
    for _ in 0..500 {
        let _outer = scope!("outer");
        let _inner = scope!("inner");
    }
    // Wait until the aggregator has written them (it writes every pass, 10 ms to 1 s).
    while std::fs::read_to_string(&path)
        .map(|t| t.matches(r#""ph":"X""#).count())
        .unwrap_or(0)
        < 1000
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("written");
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_process_killed_mid_capture_leaves_a_whole_trace() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.json");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_streams_until_killed", "--nocapture"])
        .env("HEIMDALL_STREAM_CHILD", &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let said = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("written"));
    child.kill().unwrap(); // SIGKILL: no destructor, no closing record
    child.wait().unwrap();
    assert!(said, "the child did not stream");

    let trace = read(&path);
    assert!(
        trace.get("streamEnd").is_none(),
        "the stream was not closed"
    );
    let ev = events(&trace);
    assert_eq!(ev.iter().filter(|e| e["ph"] == "X").count(), 1000);
    check(&sorted(&trace));
}
