//! Merging the reports of several stations: exact against one report of every value
//! recorded together, commutative and associative, per-station figures kept apart, and a
//! clear error for everything that cannot merge exactly.
//!
//! Reports are built from the statistics types with known durations (the session records
//! real clock times, which a test cannot choose); one test merges two real sessions.

use std::collections::BTreeMap;
use std::sync::Mutex;

use heimdall_perf_core::stats::{
    histogram_ladder, DurationStats, Summary, HISTOGRAM_FIRST_BUCKET_NS,
};
use heimdall_perf_core::{
    merge_reports, scope, Attribution, Distribution, FrameReport, FrameWindow, Incident,
    IncidentStage, MergeError, MetricReport, MetricType, Note, ProfilingSession, Report,
    SeriesPoint, SpanStats, StageReport, ThreadInfo, TimeSeries, TimelineSpan, SCHEMA_VERSION,
};
use proptest::prelude::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn stats(values: &[u64]) -> DurationStats {
    let mut s = DurationStats::new();
    values.iter().for_each(|&v| s.record(v));
    s
}

fn dist(values: &[u64]) -> Distribution {
    let s = stats(values);
    Distribution {
        summary: s.summary(),
        histogram: s.buckets(HISTOGRAM_FIRST_BUCKET_NS),
    }
}

fn span(thread: Option<&ThreadInfo>, path: &[&str], values: &[u64]) -> SpanStats {
    let s = stats(values);
    SpanStats {
        thread_id: thread.map(|t| t.id),
        thread: thread.map(|t| t.name.clone()),
        path: path.iter().map(|p| p.to_string()).collect(),
        count: s.count(),
        total_ns: s.total(),
        self_ns: s.total() / 2,
        duration: s.summary(),
        histogram: s.buckets(HISTOGRAM_FIRST_BUCKET_NS),
    }
}

fn frames(source: &str, budget: u64, latencies: &[u64], stage: &[u64]) -> FrameReport {
    let missed = latencies.iter().filter(|&&l| l > budget).count() as u64;
    let finished = latencies.len() as u64;
    FrameReport {
        source: source.into(),
        count: finished + 1,
        finished,
        dropped: BTreeMap::from([("queue full".to_string(), 1)]),
        in_flight: 0,
        budget_ns: Some(budget),
        missed,
        miss_rate: if finished == 0 {
            0.0
        } else {
            missed as f64 / finished as f64
        },
        longest_miss_streak: missed.min(2),
        latency: dist(latencies),
        jitter: dist(&latencies.iter().map(|l| l / 2 + 1).collect::<Vec<_>>()),
        stages: vec![StageReport {
            name: "detect".into(),
            budget_ns: Some(budget / 2),
            service: dist(stage),
            queue: dist(&stage.iter().map(|s| s / 3 + 1).collect::<Vec<_>>()),
            over_budget: stage.iter().filter(|&&s| s > budget / 2).count() as u64,
        }],
        attribution: vec![Attribution {
            cause: "detect".into(),
            missed,
        }],
        incidents: vec![Incident {
            frame_id: 7,
            capture_ns: 1_000,
            latency_ns: budget + 5,
            budget_ns: budget,
            overrun_ns: 5,
            cause: "detect".into(),
            stages: vec![IncidentStage {
                name: "detect".into(),
                thread_id: 2,
                thread: "processing".into(),
                start_ns: 10,
                duration_ns: budget,
                queue_ns: 3,
            }],
            previous: Vec::new(),
            system: Vec::new(),
        }],
        windows: vec![FrameWindow {
            t_ns: 0,
            duration_ns: 1_000_000_000,
            finished,
            missed,
        }],
    }
}

/// A station's report: spans on two threads, totals, a frame source, a metric, a series,
/// a note, a timeline.
fn station(name: &str, start: u64, frame: &[u64], detect: &[u64], label: &str) -> Report {
    let mut r = Report::empty(name);
    r.session.host = format!("{name}-host");
    r.session.start_unix_ns = start;
    r.session.duration_ns = 10_000_000_000;
    r.session.labels = BTreeMap::from([
        ("line".to_string(), "3".to_string()),
        ("station".to_string(), label.to_string()),
    ]);
    r.threads = vec![
        ThreadInfo {
            id: 1,
            name: "camera".into(),
        },
        ThreadInfo {
            id: 2,
            name: "processing".into(),
        },
    ];
    r.spans = vec![
        span(Some(&r.threads[0]), &["frame"], frame),
        span(Some(&r.threads[1]), &["frame", "detect"], detect),
    ];
    r.span_totals = vec![
        span(None, &["frame"], frame),
        span(None, &["frame", "detect"], detect),
    ];
    r.frames = vec![frames("cam-0", 5_000_000, frame, detect)];
    r.metrics = vec![MetricReport {
        name: "fps".into(),
        metric_type: MetricType::Throughput,
        unit: "fps".into(),
        labels: BTreeMap::new(),
        last: 60.0,
        non_finite: 0,
        summary: Summary {
            count: 1,
            sum: 60.0,
            min: 60.0,
            max: 60.0,
            mean: 60.0,
            ..Summary::default()
        },
        points: vec![SeriesPoint::sample(5, 60.0)],
    }];
    r.series = vec![TimeSeries {
        name: "system.cpu.total".into(),
        unit: "%".into(),
        source: "system".into(),
        points: vec![SeriesPoint::sample(100, 42.0)],
    }];
    r.notes = vec![Note {
        t_ns: 50,
        text: format!("note of {name}"),
    }];
    r.timeline = vec![TimelineSpan {
        span: 1,
        start_ns: 20,
        duration_ns: 30,
    }];
    r.diagnostics.timeline_capacity = 4096;
    r.diagnostics.dropped_notes = 2;
    r
}

/// The merged distribution is the distribution of every value recorded together: counts,
/// sums, extremes and buckets equal; mean and deviation to rounding; each percentile in
/// the ladder bucket of the true one (at HDR precision, 1 %).
fn assert_same_distribution(what: &str, merged: &Distribution, all: &[u64]) {
    let together = dist(all);
    let (m, t) = (&merged.summary, &together.summary);
    assert_eq!(merged.histogram, together.histogram, "{what}: buckets");
    assert_eq!(
        (m.count, m.sum, m.min, m.max),
        (t.count, t.sum, t.min, t.max),
        "{what}"
    );
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(
        close(m.mean, t.mean),
        "{what}: mean {} vs {}",
        m.mean,
        t.mean
    );
    assert!(
        close(m.stddev, t.stddev),
        "{what}: sd {} vs {}",
        m.stddev,
        t.stddev
    );
    let ladder = histogram_ladder();
    for (name, merged_q, true_q) in [
        ("p50", m.p50, t.p50),
        ("p90", m.p90, t.p90),
        ("p95", m.p95, t.p95),
        ("p99", m.p99, t.p99),
        ("p999", m.p999, t.p999),
    ] {
        assert!(merged_q >= m.min && merged_q <= m.max, "{what} {name}");
        let b = ladder.partition_point(|&le| (le as f64) < merged_q);
        let upper = ladder[b] as f64;
        let lower = if b == 0 { 0.0 } else { ladder[b - 1] as f64 };
        assert!(
            true_q >= lower * 0.99 && true_q <= upper * 1.01,
            "{what} {name}: merged {merged_q} (bucket {lower}..{upper}) vs true {true_q}"
        );
    }
}

const FRAME_A: [u64; 6] = [
    4_000_000, 4_100_000, 4_200_000, 9_000_000, 4_000_500, 3_999_000,
];
const FRAME_B: [u64; 4] = [4_500_000, 12_000_000, 3_000_000, 4_400_000];
const DETECT_A: [u64; 6] = [1_000, 1_500, 2_000_000, 300, 2_600_000, 1_000_000];
const DETECT_B: [u64; 4] = [900, 3_000_000, 257, 1_000_001];

fn concat(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().chain(b).copied().collect()
}

fn two_stations() -> Report {
    merge_reports([
        (
            "east",
            station("line-3", 1_000, &FRAME_A, &DETECT_A, "east"),
        ),
        (
            "west",
            station("line-3", 4_000, &FRAME_B, &DETECT_B, "west"),
        ),
    ])
    .unwrap()
}

#[test]
fn span_totals_and_frames_merge_exactly() {
    let fleet = two_stations();
    assert_eq!(fleet.schema_version, SCHEMA_VERSION);
    let frame = fleet.span_total(&["frame"]).unwrap();
    let all_frames = concat(&FRAME_A, &FRAME_B);
    assert_eq!(frame.count, 10);
    assert_eq!(frame.total_ns, all_frames.iter().sum::<u64>());
    assert_eq!(
        frame.self_ns,
        FRAME_A.iter().sum::<u64>() / 2 + FRAME_B.iter().sum::<u64>() / 2
    );
    let d = Distribution {
        summary: frame.duration.clone(),
        histogram: frame.histogram.clone(),
    };
    assert_same_distribution("span frame", &d, &all_frames);
    let detect = fleet.span_total(&["frame", "detect"]).unwrap();
    let d = Distribution {
        summary: detect.duration.clone(),
        histogram: detect.histogram.clone(),
    };
    assert_same_distribution("span detect", &d, &concat(&DETECT_A, &DETECT_B));
    // Sorted as a session sorts them: total time, largest first.
    assert_eq!(fleet.span_totals[0].path, ["frame"]);

    let cam = fleet.frame_source("cam-0").unwrap();
    assert_eq!((cam.count, cam.finished, cam.missed), (12, 10, 2));
    assert_eq!(cam.miss_rate, 0.2);
    assert_eq!(cam.budget_ns, Some(5_000_000));
    assert_eq!(cam.dropped["queue full"], 2);
    assert_eq!(cam.blamed("detect"), 2);
    assert_same_distribution("latency", &cam.latency, &all_frames);
    let jitter: Vec<u64> = all_frames.iter().map(|l| l / 2 + 1).collect();
    assert_same_distribution("jitter", &cam.jitter, &jitter);
    let stage = cam.stage("detect").unwrap();
    assert_same_distribution(
        "detect service",
        &stage.service,
        &concat(&DETECT_A, &DETECT_B),
    );
    let queue: Vec<u64> = concat(&DETECT_A, &DETECT_B)
        .iter()
        .map(|s| s / 3 + 1)
        .collect();
    assert_same_distribution("detect queue", &stage.queue, &queue);
    assert_eq!(stage.budget_ns, Some(2_500_000));
    assert_eq!(stage.over_budget, 2);
    assert_eq!(cam.incidents.len(), 2);
    // The windows of both stations, on the fleet's clock (west started 3 µs later).
    assert_eq!(
        cam.windows
            .iter()
            .map(|w| (w.t_ns, w.finished))
            .collect::<Vec<_>>(),
        [(0, 6), (3_000, 4)]
    );
}

#[test]
fn a_distribution_of_one_station_keeps_its_own_figures() {
    let mut b = station("b", 0, &FRAME_B, &DETECT_B, "west");
    b.span_totals.retain(|s| s.path == ["frame"]);
    let a = station("a", 0, &FRAME_A, &DETECT_A, "east");
    let fleet = merge_reports([("east", a.clone()), ("west", b)]).unwrap();
    let detect = fleet.span_total(&["frame", "detect"]).unwrap();
    let own = a.span_total(&["frame", "detect"]).unwrap();
    assert_eq!(detect, own);
}

#[test]
fn per_station_figures_stay_per_station() {
    let fleet = two_stations();
    assert_eq!(fleet.session.name, "fleet of 2 stations");
    assert_eq!(fleet.session.start_unix_ns, 1_000);
    assert_eq!(fleet.session.duration_ns, 10_000_003_000);
    assert_eq!(fleet.session.host, "line-3-host");
    // Only the label both stations share.
    assert_eq!(
        fleet.session.labels,
        BTreeMap::from([("line".to_string(), "3".to_string())])
    );
    let threads: Vec<(u64, &str)> = fleet
        .threads
        .iter()
        .map(|t| (t.id, t.name.as_str()))
        .collect();
    assert_eq!(
        threads,
        [
            (1, "east/camera"),
            (2, "east/processing"),
            (3, "west/camera"),
            (4, "west/processing")
        ]
    );
    assert_eq!(fleet.spans.len(), 4);
    assert_eq!(fleet.spans[3].thread_id, Some(4));
    assert_eq!(fleet.spans[3].thread.as_deref(), Some("west/processing"));
    assert_eq!(fleet.spans[3].count, DETECT_B.len() as u64);
    // Each timeline entry still points at its own station's row, on the fleet's clock.
    let tl: Vec<(usize, u64)> = fleet
        .timeline
        .iter()
        .map(|t| (t.span, t.start_ns))
        .collect();
    assert_eq!(tl, [(1, 20), (3, 3_020)]);
    let series: Vec<&str> = fleet.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(series, ["east/system.cpu.total", "west/system.cpu.total"]);
    assert_eq!(fleet.series[1].points[0].t_ns, 3_100);
    let stations: Vec<&str> = fleet
        .metrics
        .iter()
        .map(|m| m.labels["station"].as_str())
        .collect();
    assert_eq!(stations, ["east", "west"]);
    assert_eq!(fleet.notes[1].text, "**Station west:** note of line-3");
    assert_eq!(fleet.notes[1].t_ns, 3_050);
    assert_eq!(fleet.diagnostics.dropped_notes, 4);
    assert_eq!(fleet.diagnostics.timeline_capacity, 8192);
    let inc = &fleet.frames[0].incidents;
    assert!(inc.iter().any(|i| i.capture_ns == 4_000
        && i.stages[0].thread == "west/processing"
        && i.stages[0].thread_id == 4));

    assert_eq!(fleet.stations.len(), 2);
    let west = &fleet.stations[1];
    assert_eq!(
        (west.name.as_str(), west.session.as_str()),
        ("west", "line-3")
    );
    assert_eq!(west.labels["station"], "west");
    assert_eq!(west.start_unix_ns, 4_000);
    let b = station("b", 0, &FRAME_B, &DETECT_B, "west");
    let own = b.span_total(&["frame"]).unwrap();
    assert_eq!(west.spans[0].path, ["frame"]);
    assert_eq!(
        (
            west.spans[0].count,
            west.spans[0].p50_ns,
            west.spans[0].p99_ns
        ),
        (own.count, own.duration.p50, own.duration.p99)
    );
    assert_eq!(west.frames[0].source, "cam-0");
    assert_eq!((west.frames[0].finished, west.frames[0].missed), (4, 1));
    assert_eq!(west.frames[0].miss_rate, 0.25);
}

#[test]
fn a_metric_with_its_own_station_label_keeps_it() {
    let mut a = station("a", 0, &FRAME_A, &DETECT_A, "east");
    a.metrics[0]
        .labels
        .insert("station".into(), "cell-9".into());
    let b = station("b", 0, &FRAME_B, &DETECT_B, "west");
    let fleet = merge_reports([("east", a), ("west", b)]).unwrap();
    assert_eq!(fleet.metrics[0].labels["station"], "cell-9");
    assert_eq!(fleet.metrics[0].labels["fleet_station"], "east");
}

#[test]
fn different_budgets_leave_the_fleet_without_one() {
    let a = station("a", 0, &FRAME_A, &DETECT_A, "east");
    let mut b = station("b", 0, &FRAME_B, &DETECT_B, "west");
    b.frames[0].budget_ns = Some(1);
    let fleet = merge_reports([("east", a), ("west", b)]).unwrap();
    assert_eq!(fleet.frames[0].budget_ns, None);
    assert_eq!(fleet.frames[0].missed, 2);
    assert_eq!(fleet.stations[1].frames[0].budget_ns, Some(1));
}

#[test]
fn reports_of_different_schema_versions_are_refused_naming_both() {
    let mut old = station("a", 0, &FRAME_A, &DETECT_A, "east");
    old.schema_version = 2;
    let new = station("b", 0, &FRAME_B, &DETECT_B, "west");
    let e = merge_reports([("east", old), ("west", new)]).unwrap_err();
    assert_eq!(
        e,
        MergeError::SchemaMismatch {
            station: "west".into(),
            found: SCHEMA_VERSION,
            first: "east".into(),
            expected: 2
        }
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "station `west` has report schema {SCHEMA_VERSION}"
        )) && msg.contains("station `east` has schema 2"),
        "{msg}"
    );

    let mut future = station("a", 0, &FRAME_A, &DETECT_A, "east");
    future.schema_version = SCHEMA_VERSION + 1;
    let e = merge_reports([("future", future)]).unwrap_err().to_string();
    assert!(
        e.contains("station `future`")
            && e.contains(&format!(
                "schema {}, this build reads up to {SCHEMA_VERSION}",
                SCHEMA_VERSION + 1
            )),
        "{e}"
    );
}

#[test]
fn a_bound_off_the_ladder_is_refused_naming_the_span_or_stage_and_the_bound() {
    let a = station("a", 0, &FRAME_A, &DETECT_A, "east");
    // A ladder growing by 2 instead of √2: its second bound is not on ours.
    let mut b = station("b", 0, &FRAME_B, &DETECT_B, "west");
    b.span_totals[1].histogram[1].le = 511 * 2;
    let e = merge_reports([("east", a.clone()), ("west", b)]).unwrap_err();
    assert_eq!(
        e,
        MergeError::Ladder {
            station: "west".into(),
            what: "span `frame;detect`".into(),
            le: 1022
        }
    );
    let msg = e.to_string();
    assert!(
        msg.contains("station `west`")
            && msg.contains("span `frame;detect`")
            && msg.contains("1022 ns")
            && msg.contains("different bucket ladders"),
        "{msg}"
    );

    let mut c = station("c", 0, &FRAME_B, &DETECT_B, "west");
    c.frames[0].stages[0].queue.histogram[0].le = 256;
    let msg = merge_reports([("east", a.clone()), ("west", c)])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("frame source `cam-0` stage `detect` queue time")
            && msg.contains("bound 256 ns"),
        "{msg}"
    );

    // On the ladder, but out of order.
    let mut d = station("d", 0, &FRAME_B, &DETECT_B, "west");
    d.spans[0].histogram.swap(0, 1);
    let msg = merge_reports([("east", a), ("west", d)])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("span `frame` of thread `camera` (bounds not in increasing order)"),
        "{msg}"
    );
}

#[test]
fn odd_inputs_are_refused_with_what_is_at_fault() {
    let a = || station("a", 0, &FRAME_A, &DETECT_A, "east");
    assert_eq!(
        merge_reports(Vec::<(String, Report)>::new()),
        Err(MergeError::Empty)
    );
    assert_eq!(
        merge_reports([("east", a()), ("east", a())]),
        Err(MergeError::DuplicateStation {
            station: "east".into()
        })
    );
    assert_eq!(
        merge_reports([("east", a()), ("", a())]),
        Err(MergeError::EmptyName { index: 2 })
    );
    let fleet = two_stations();
    let e = merge_reports([("fleet", fleet), ("east", a())])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("station `fleet` is already a merged report (of 2 stations)"),
        "{e}"
    );

    let mut lying = a();
    lying.span_totals[0].duration.count += 1;
    let e = merge_reports([("east", lying)]).unwrap_err().to_string();
    assert!(
        e.contains("station `east`: span `frame`: its histogram holds 6 values but its count is 7"),
        "{e}"
    );

    let b = || station("b", 1, &FRAME_A, &DETECT_A, "west");
    // Figures no session writes: NaN or infinity is refused naming the station, the span
    // and the figure (a merge of it would be NaN too, or an infinite deviation 0)…
    let mut odd = b();
    odd.span_totals[0].duration.min = f64::NAN;
    let e = merge_reports([("east", a()), ("west", odd)]).unwrap_err();
    assert_eq!(e.station(), Some("west"));
    assert!(
        e.to_string()
            .contains("station `west`: span `frame`: its minimum is NaN, not a finite number"),
        "{e}"
    );
    let mut odd = b();
    odd.frames[0].latency.summary.stddev = f64::INFINITY;
    let e = merge_reports([("east", a()), ("west", odd)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("frame source `cam-0` latency: its standard deviation is inf"),
        "{e}"
    );
    // …while a minimum above the maximum (a hand-edited file) merges without a panic.
    let mut odd = b();
    odd.span_totals[0].duration.min = 1e12;
    odd.span_totals[0].duration.max = 1.0;
    let fleet = merge_reports([("east", a()), ("west", odd)]).unwrap();
    let frame = fleet.span_total(&["frame"]).unwrap();
    assert_eq!(frame.count, 12);

    let mut lost = a();
    lost.timeline[0].span = 9;
    let e = merge_reports([("east", lost)]).unwrap_err().to_string();
    assert!(
        e.contains("station `east`: the timeline: a span refers to row 9 of 2 span rows"),
        "{e}"
    );
}

#[test]
fn two_real_sessions_merge() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let record = |name: &str, n: usize| {
        let mut s = ProfilingSession::new(name);
        s.set_label("station", name);
        s.set_frame_budget("cam-0", std::time::Duration::from_secs(60));
        for _ in 0..n {
            let f = heimdall_perf_core::frame!("cam-0");
            let _frame = scope!("frame");
            {
                let _d = f.stage("detect");
            }
            f.finish();
        }
        s.stop();
        s.report()
    };
    let a = record("east", 30);
    let b = record("west", 50);
    // The sessions' histograms are on the ladder merge checks against.
    let ladder = histogram_ladder();
    for s in a.span_totals.iter().chain(&b.span_totals) {
        assert!(
            s.histogram
                .iter()
                .all(|h| ladder.binary_search(&h.le).is_ok()),
            "{s:?}"
        );
    }
    let fleet = merge_reports([("east", a.clone()), ("west", b.clone())]).unwrap();
    let (fa, fb, ff) = (
        a.span_total(&["frame"]).unwrap(),
        b.span_total(&["frame"]).unwrap(),
        fleet.span_total(&["frame"]).unwrap(),
    );
    assert_eq!(ff.count, 80);
    assert_eq!(ff.total_ns, fa.total_ns + fb.total_ns);
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for h in fa.histogram.iter().chain(&fb.histogram) {
        *counts.entry(h.le).or_default() += h.count;
    }
    for h in &ff.histogram {
        assert_eq!(
            h.count,
            counts.get(&h.le).copied().unwrap_or(0),
            "bucket {}",
            h.le
        );
    }
    let cam = fleet.frame_source("cam-0").unwrap();
    assert_eq!(cam.finished, 80);
    assert_eq!(cam.stage("detect").unwrap().service.summary.count, 80);
    assert_eq!(fleet.stations[0].labels["station"], "east");
}

/// Per span path: path, count, total, buckets, min, max.
type Totals = Vec<(Vec<String>, u64, u64, Vec<(u64, u64)>, f64, f64)>;

fn totals(r: &Report) -> Totals {
    r.span_totals
        .iter()
        .map(|s| {
            (
                s.path.clone(),
                s.count,
                s.total_ns,
                s.histogram.iter().map(|h| (h.le, h.count)).collect(),
                s.duration.min,
                s.duration.max,
            )
        })
        .collect()
}

fn durations() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(
        prop_oneof![
            1u64..2_000,
            2_000u64..10_000_000,
            10_000_000u64..100_000_000_000
        ],
        0..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Counts, totals and buckets do not depend on the order or grouping of the stations.
    #[test]
    fn merging_is_commutative_and_associative(
        a in durations(), b in durations(), c in durations(), d in durations()
    ) {
        let r = |name: &str, f: &[u64], det: &[u64]| station(name, 0, f, det, name);
        let (ra, rb, rc) = (r("a", &a, &b), r("b", &c, &d), r("c", &b, &a));
        let abc = merge_reports([("a", ra.clone()), ("b", rb.clone()), ("c", rc.clone())]).unwrap();
        let cab = merge_reports([("c", rc.clone()), ("a", ra.clone()), ("b", rb.clone())]).unwrap();
        prop_assert_eq!(totals(&abc), totals(&cab));
        prop_assert_eq!(&abc.frames[0].latency.histogram, &cab.frames[0].latency.histogram);
        // (a + b) + c, the inner merge taken as a plain report.
        let mut ab = merge_reports([("a", ra), ("b", rb)]).unwrap();
        ab.stations.clear();
        let ab_c = merge_reports([("ab", ab), ("c", rc)]).unwrap();
        prop_assert_eq!(totals(&abc), totals(&ab_c));
        prop_assert_eq!(&abc.frames[0].latency.histogram, &ab_c.frames[0].latency.histogram);
        prop_assert_eq!(abc.frames[0].latency.summary.count, ab_c.frames[0].latency.summary.count);
        // And equal to everything recorded together.
        let all: Vec<u64> = a.iter().chain(&c).chain(&b).copied().collect();
        if !all.is_empty() {
            let t = stats(&all);
            let frame = abc.span_total(&["frame"]).unwrap();
            prop_assert_eq!(frame.count, t.count());
            prop_assert_eq!(&frame.histogram, &t.buckets(HISTOGRAM_FIRST_BUCKET_NS));
            // Sums, extremes, mean, deviation and percentiles (each in the true one's bucket).
            let d = Distribution { summary: frame.duration.clone(), histogram: frame.histogram.clone() };
            assert_same_distribution("frame", &d, &all);
        }
    }
}

#[test]
fn counts_that_overflow_are_refused_naming_the_span_or_source() {
    let a = || station("a", 0, &FRAME_A, &DETECT_A, "east");
    let b = || station("b", 1, &FRAME_A, &DETECT_A, "west");
    // A span's total time: never pinned at u64::MAX.
    let (mut x, mut y) = (a(), b());
    x.span_totals[0].total_ns = u64::MAX - 1;
    y.span_totals[0].total_ns = 2;
    let e = merge_reports([("east", x), ("west", y)]).unwrap_err();
    assert_eq!(e.station(), Some("west"));
    assert!(
        e.to_string().contains(
            "station `west`: span `frame`: its total time (ns) (2) added to the other stations' (18446744073709551614) does not fit in 64 bits"
        ),
        "{e}"
    );
    // A frame source's finished frames, and a stage's frames over budget.
    let (mut x, mut y) = (a(), b());
    x.frames[0].finished = u64::MAX;
    y.frames[0].finished = 1;
    let e = merge_reports([("east", x), ("west", y)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("frame source `cam-0`: its finished frames (1)"),
        "{e}"
    );
    let (mut x, mut y) = (a(), b());
    x.frames[0].stages[0].over_budget = u64::MAX;
    y.frames[0].stages[0].over_budget = 1;
    let stage = x.frames[0].stages[0].name.clone();
    let e = merge_reports([("east", x), ("west", y)])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "frame source `cam-0` stage `{stage}`: its frames over budget"
        )),
        "{e}"
    );
}

#[test]
fn the_same_run_twice_is_refused_naming_both_stations() {
    let a = || station("a", 0, &FRAME_A, &DETECT_A, "east");
    let e = merge_reports([("east", a()), ("east (copy)", a())]).unwrap_err();
    assert_eq!(e.stations(), ["east", "east (copy)"]);
    assert!(
        e.to_string()
            .starts_with("stations `east` and `east (copy)` are the same run (session `a`"),
        "{e}"
    );
    // Another start, session or labels: another run.
    let mut later = a();
    later.session.start_unix_ns += 1;
    merge_reports([("east", a()), ("later", later)]).unwrap();
}

#[test]
fn spreads_beyond_the_f64_square_range_stay_right() {
    // Standard deviations whose squares overflow f64: the merged one is still finite and
    // right (never an infinite m2 turned into 0).
    let a = || station("a", 0, &FRAME_A, &DETECT_A, "east");
    let (mut x, mut y) = (a(), station("b", 1, &FRAME_A, &DETECT_A, "west"));
    for (r, mean) in [(&mut x, 1e200), (&mut y, 3e200)] {
        let d = &mut r.span_totals[0].duration;
        d.mean = mean;
        d.stddev = 1e200;
        d.sum = mean * d.count as f64;
        d.max = 1e201;
    }
    let fleet = merge_reports([("east", x), ("west", y)]).unwrap();
    let d = &fleet.span_total(&["frame"]).unwrap().duration;
    assert!((d.mean / 2e200 - 1.0).abs() < 1e-12, "{}", d.mean);
    // Two equal halves, means 1e200 apart, each of deviation 1e200: sqrt(1 + 1)·1e200.
    assert!(
        (d.stddev / (2f64.sqrt() * 1e200) - 1.0).abs() < 1e-12,
        "{}",
        d.stddev
    );
}
