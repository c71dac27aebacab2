//! The trace of reports made by hand: the sample report (no capture), hostile names, NaN
//! values, a failing writer.

mod common;

use heimdall_perf_core::{
    CapturedFrame, CapturedPath, IncidentStage, Report, ReportSink, SeriesPoint, TimelineSpan,
    TraceCapture,
};
use heimdall_perf_report_trace::TraceSink;
use heimdall_perf_testkit as fixtures;

use common::{events, ns, render_checked};

#[test]
fn the_sample_report_gives_the_ring_and_says_it_is_partial() {
    let report = fixtures::sample_report();
    assert!(report.capture.is_none());
    let trace = render_checked(&report);
    let other = &trace["otherData"];
    assert_eq!(other["partial"], true);
    assert_eq!(other["spans_from"], "recent spans");
    assert!(other["partial_reason"]
        .as_str()
        .unwrap()
        .contains("No trace capture"));
    assert_eq!(other["session"], "line-3 inspection");
    assert_eq!(other["labels"]["line"], "3");
    assert_eq!(other["start_unix_ns"], report.session.start_unix_ns);

    let spans: Vec<_> = events(&trace).iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(spans.len(), report.timeline.len());
    // Each timeline span is there once, with its thread, name, path, start and duration.
    let mut expected: Vec<_> = report
        .timeline
        .iter()
        .map(|t| {
            let s = &report.spans[t.span];
            (
                s.thread_id.unwrap(),
                s.name().to_string(),
                t.start_ns,
                t.duration_ns,
            )
        })
        .collect();
    let mut got: Vec<_> = spans
        .iter()
        .map(|e| {
            let path = e["args"]["path"].as_array().unwrap();
            assert_eq!(path.last().unwrap(), &e["name"]);
            (
                e["tid"].as_u64().unwrap(),
                e["name"].as_str().unwrap().to_string(),
                ns(&e["ts"]),
                ns(&e["dur"]),
            )
        })
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);

    // Every thread is named, the process after the session.
    for t in &report.threads {
        assert!(events(&trace).iter().any(|e| e["name"] == "thread_name"
            && e["tid"] == t.id
            && e["args"]["name"] == t.name.as_str()));
    }
    assert!(events(&trace).iter().any(|e| e["name"] == "process_name"
        && e["pid"] == 1
        && e["args"]["name"] == "line-3 inspection"));
    // Series and metrics are counters; notes are global instants; incidents are marked.
    let counters = events(&trace).iter().filter(|e| e["ph"] == "C").count();
    let finite = |p: &[SeriesPoint]| p.iter().filter(|p| p.last.is_finite()).count();
    let expected_counters: usize = report
        .series
        .iter()
        .map(|s| finite(&s.points))
        .sum::<usize>()
        + report
            .metrics
            .iter()
            .map(|m| finite(&m.points))
            .sum::<usize>();
    assert_eq!(counters, expected_counters);
    let notes = events(&trace)
        .iter()
        .filter(|e| e["ph"] == "i" && e["s"] == "g")
        .count();
    assert_eq!(notes, report.notes.len());
    let incidents: usize = report.frames.iter().map(|f| f.incidents.len()).sum();
    let marked = events(&trace)
        .iter()
        .filter(|e| e["name"] == "incident")
        .count();
    assert_eq!(marked, incidents);
}

#[test]
fn sub_microsecond_times_keep_their_fractions() {
    let mut report = fixtures::sample_report();
    report.timeline = vec![TimelineSpan {
        span: 0,
        start_ns: 12_345,
        duration_ns: 7,
    }];
    let json = TraceSink::new().render_to_string(&report).unwrap();
    assert!(json.contains(r#""ph":"X","ts":12.345,"#), "{json}");
    assert!(json.contains(r#""dur":0.007,"#), "{json}");
}

#[test]
fn hostile_names_give_valid_json() {
    let mut report = fixtures::sample_report();
    let hostile = format!("{}\u{0}\u{1b}]}}\"\\\u{2028}", fixtures::HOSTILE_NAME);
    report.session.name = hostile.clone();
    report.threads[0].name = hostile.clone();
    for s in &mut report.spans {
        s.thread = Some(hostile.clone());
        s.path.push(hostile.clone());
    }
    report.series[0].name = hostile.clone();
    report.notes[0].text = hostile.clone();
    report
        .session
        .labels
        .insert(hostile.clone(), hostile.clone());
    let trace = render_checked(&report);
    assert_eq!(trace["otherData"]["session"], hostile.as_str());
    assert!(events(&trace)
        .iter()
        .any(|e| e["ph"] == "X" && e["name"] == hostile.as_str()));
}

#[test]
fn nan_and_infinite_values_are_left_out() {
    let mut report = Report::empty("nan");
    let mut s = fixtures::sample_report().series.remove(0);
    s.points = vec![
        SeriesPoint::sample(0, f64::NAN),
        SeriesPoint::sample(1, f64::INFINITY),
        SeriesPoint::sample(2, 1.5),
    ];
    report.series.push(s);
    let trace = render_checked(&report);
    let counters: Vec<_> = events(&trace).iter().filter(|e| e["ph"] == "C").collect();
    assert_eq!(counters.len(), 1);
    assert_eq!(counters[0]["args"]["value"], 1.5);
}

fn frame(source: &str, id: u64, capture_ns: u64, end_ns: u64) -> CapturedFrame {
    CapturedFrame {
        source: source.into(),
        frame_id: id,
        capture_ns,
        end_ns,
        dropped: None,
        missed: false,
        stages: vec![IncidentStage {
            name: "detect".into(),
            thread_id: 2,
            thread: "processing".into(),
            start_ns: 100,
            duration_ns: 500,
            queue_ns: 100,
        }],
    }
}

#[test]
fn a_capture_with_drops_says_so_and_stages_nest_in_their_frames() {
    let mut report = fixtures::sample_report();
    let mut late = frame("cam-1", 7, 1_000, 1_300); // the stage outlives the frame: clamped
    late.missed = true;
    let mut dropped = frame("cam-0", 8, 2_000, 2_050);
    dropped.dropped = Some("queue full".into());
    report.capture = Some(TraceCapture {
        start_ns: 0,
        end_ns: 10_000,
        open: false,
        spans: report.timeline[..3].to_vec(),
        // The same paths as the report's spans, so the timeline's indices hold.
        paths: report
            .spans
            .iter()
            .map(|s| CapturedPath {
                thread_id: s.thread_id.unwrap_or(0),
                thread: s.thread.clone().unwrap_or_default(),
                path: s.path.clone(),
            })
            .collect(),
        frames: vec![frame("cam-0", 1, 0, 1_000), late, dropped],
        max_events: 6,
        dropped: 4,
        streamed: None,
    });
    let trace = render_checked(&report);
    let other = &trace["otherData"];
    assert_eq!(other["spans_from"], "capture");
    assert_eq!(other["partial"], true);
    assert_eq!(other["dropped"], 4);
    assert!(other["dropped_reason"]
        .as_str()
        .unwrap()
        .contains("limit of 6 events"));
    assert_eq!(other["capture"]["end_us"], 10.0);
    let ev = events(&trace);
    assert_eq!(ev.iter().filter(|e| e["ph"] == "X").count(), 3);
    let begins: Vec<_> = ev
        .iter()
        .filter(|e| e["ph"] == "b" && e["cat"] == "frame")
        .collect();
    assert_eq!(begins.len(), 6, "3 frames and their stages");
    let late = begins
        .iter()
        .find(|e| e["id"] == "cam-1:7" && e["name"] == "cam-1")
        .unwrap();
    assert_eq!(late["args"]["missed"], true);
    let dropped = begins
        .iter()
        .find(|e| e["id"] == "cam-0:8" && e["name"] == "cam-0")
        .unwrap();
    assert_eq!(dropped["args"]["dropped"], "queue full");
    // Each source is a process of its own, named after it.
    for source in ["cam-0", "cam-1"] {
        let pid = ev
            .iter()
            .find(|e| e["ph"] == "b" && e["name"] == source)
            .unwrap()["pid"]
            .clone();
        assert!(ev.iter().any(|e| e["name"] == "process_name"
            && e["pid"] == pid
            && e["args"]["name"] == source));
    }
}

#[test]
fn a_full_disk_is_an_error_naming_the_session() {
    let err = TraceSink::new()
        .render(&fixtures::sample_report(), &mut fixtures::FullDisk)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot write the trace of session `line-3 inspection`"),
        "{msg}"
    );
    assert!(
        std::error::Error::source(&*err).is_some(),
        "the I/O error is kept as the source"
    );
}

#[test]
fn the_sink_names_its_file() {
    let sink = TraceSink::default();
    assert_eq!(sink.format_id(), "trace");
    assert_eq!(sink.file_extension(), "json");
    assert_eq!(sink.file_stem(), "trace");
    assert!(sink.writes_counters());
}
