//! Checks shared by the trace tests: the output parsed back and held to the Trace Event
//! Format's rules.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use std::path::Path;
use std::sync::Arc;

use heimdall_perf_core::{ProfilingSession, Registry, Report, ReportSink};
use heimdall_perf_report_trace::TraceSink;
use serde_json::Value;

/// Nanoseconds of a `ts`/`dur` in microseconds (exact for the sink's output).
pub fn ns(v: &Value) -> u64 {
    (v.as_f64().expect("a number") * 1000.0).round() as u64
}

/// The report's trace, parsed, with every general rule checked.
pub fn render_checked(report: &Report) -> Value {
    let json = TraceSink::new()
        .render_to_string(report)
        .expect("rendering");
    let trace: Value = serde_json::from_str(&json).expect("the trace is valid JSON");
    check(&trace);
    trace
}

pub fn events(trace: &Value) -> &Vec<Value> {
    trace["traceEvents"]
        .as_array()
        .expect("traceEvents is an array")
}

/// The Trace Event Format's required fields, thread metadata, order per thread, nesting,
/// async pairs.
pub fn check(trace: &Value) {
    assert_eq!(trace["displayTimeUnit"], "ns");
    assert!(trace["otherData"].is_object());
    let events = events(trace);
    let mut named_threads = BTreeSet::new();
    let mut named_processes = BTreeSet::new();
    for e in events {
        let ph = e["ph"].as_str().unwrap_or_else(|| panic!("no ph: {e}"));
        assert!(e["ts"].as_f64().is_some_and(|t| t >= 0.0), "ts: {e}");
        assert!(e["pid"].is_u64(), "pid: {e}");
        assert!(e["tid"].is_u64(), "tid: {e}");
        assert!(e["name"].is_string(), "name: {e}");
        match ph {
            "X" => assert!(e["dur"].as_f64().is_some_and(|d| d >= 0.0), "dur: {e}"),
            "M" => {
                assert!(e["args"]["name"].is_string() || e["args"]["sort_index"].is_u64());
                match e["name"].as_str().unwrap() {
                    "thread_name" => {
                        named_threads
                            .insert((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()));
                    }
                    "process_name" => {
                        named_processes.insert(e["pid"].as_u64().unwrap());
                    }
                    "process_sort_index" => {}
                    other => panic!("unknown metadata {other}"),
                }
            }
            "C" => assert!(
                e["args"]["value"].as_f64().is_some_and(f64::is_finite),
                "{e}"
            ),
            "i" => assert!(matches!(e["s"].as_str(), Some("g" | "p" | "t")), "{e}"),
            "b" | "e" => {
                assert_eq!(e["cat"], "frame", "{e}");
                assert!(e["id"].is_string(), "{e}");
            }
            other => panic!("unexpected phase {other}: {e}"),
        }
    }
    // Every process and every thread with spans is named.
    for e in events {
        let pid = e["pid"].as_u64().unwrap();
        assert!(named_processes.contains(&pid), "process {pid} has no name");
        if e["ph"] == "X" {
            let tid = e["tid"].as_u64().unwrap();
            assert!(
                named_threads.contains(&(pid, tid)),
                "thread {tid} has no name"
            );
        }
    }
    // X events: monotonic start per thread in output order, and properly nested.
    let mut stacks: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let (start, dur) = (ns(&e["ts"]), ns(&e["dur"]));
        let end = start + dur;
        let stack = stacks.entry(e["tid"].as_u64().unwrap()).or_default();
        if let Some(&(prev_start, _)) = stack.last() {
            assert!(start >= prev_start, "not monotonic: {e}");
        }
        while stack.last().is_some_and(|&(_, top_end)| top_end <= start) {
            stack.pop();
        }
        if let Some(&(_, top_end)) = stack.last() {
            assert!(
                end <= top_end,
                "overlaps its parent without lying inside it: {e} (stack {stack:?})"
            );
        }
        stack.push((start, end));
    }
    // Async slices: b/e pair up per (pid, id), properly nested, in time order.
    let mut open: BTreeMap<(u64, String), Vec<(String, u64)>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["ph"] == "b" || e["ph"] == "e") {
        let key = (
            e["pid"].as_u64().unwrap(),
            e["id"].as_str().unwrap().to_string(),
        );
        let name = e["name"].as_str().unwrap().to_string();
        let ts = ns(&e["ts"]);
        let stack = open.entry(key).or_default();
        if e["ph"] == "b" {
            if let Some((_, parent_start)) = stack.last() {
                assert!(ts >= *parent_start, "a child begins before its parent: {e}");
            }
            stack.push((name, ts));
        } else {
            let (begun, start) = stack.pop().unwrap_or_else(|| panic!("e without b: {e}"));
            assert_eq!(begun, name, "e closes another slice: {e}");
            assert!(ts >= start, "ends before it begins: {e}");
        }
    }
    for (key, stack) in open {
        assert!(stack.is_empty(), "unclosed async slices {key:?}: {stack:?}");
    }
}

/// `scope!` records into the session started last: the tests of a file that record take
/// turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This test's turn to record (see [`TURN`]).
pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A session whose registry has the trace crate's stream writer.
pub fn streaming_session(name: &str) -> ProfilingSession {
    let registry = Arc::new(Registry::new());
    registry.set_trace_stream(heimdall_perf_report_trace::stream_factory());
    ProfilingSession::with_registry(name, registry)
}

/// The trace file at `path`, parsed; an error says why it is not whole JSON (with its size
/// and NUL bytes, the marks of a file overwritten under a writer).
pub fn try_read(path: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let nul = bytes.iter().filter(|&&b| b == 0).count();
        format!(
            "the trace is not whole JSON: {e} ({} bytes, {nul} NUL bytes)",
            bytes.len()
        )
    })
}

/// [`try_read`], panicking with its reason.
pub fn read(path: &Path) -> Value {
    try_read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The trace with its events in timestamp order (a parent before its children at equal
/// starts), as a viewer orders them: a stream writes each batch as the aggregator settled
/// it, so a parent ending in a later batch comes after its children.
pub fn sorted(trace: &Value) -> Value {
    let mut t = trace.clone();
    let list = t["traceEvents"].as_array_mut().unwrap();
    list.sort_by_key(|e| {
        let dur = if e["ph"] == "X" { ns(&e["dur"]) } else { 0 };
        (ns(&e["ts"]), std::cmp::Reverse(dur))
    });
    t
}
