//! Property: any report — NaN and infinities, empty and huge names, any Unicode including
//! control characters, counts up to `u64::MAX`, empty vectors, many threads, session labels,
//! frame sources with stages, attribution, incidents and windows, the stations of a merged
//! report — reads back from its JSON
//! (pretty and compact) exactly as it was.

use std::collections::BTreeMap;

use heimdall_perf_core::stats::HistogramBucket;
use heimdall_perf_core::MetricType;
use heimdall_perf_core::{stats::Summary, Report, ReportSink};
use heimdall_perf_core::{
    Attribution, Diagnostics, Distribution, FrameReport, FrameWindow, Incident, IncidentFrame,
    IncidentStage, MetricReport, Note, SeriesPoint, SessionInfo, SpanStats, StageReport,
    StationFrames, StationInfo, StationSpan, SystemFigure, ThreadInfo, TimeSeries, TimelineSpan,
    SCHEMA_VERSION,
};
use heimdall_perf_report_json::{from_slice, JsonSink};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => vec(any::<char>(), 0..12).prop_map(String::from_iter),
        2 => "[a-z]{0,8}",
        1 => Just(String::new()),
        1 => Just("\0\u{1}\u{1f}\u{7f}\u{85}\u{2028}\u{FEFF}\u{FFFF}\u{10FFFF}\"\\/".to_string()),
        1 => (1usize..20_000).prop_map(|n| "名".repeat(n)),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        1 => prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(f64::MAX),
            Just(f64::MIN),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            Just(u64::MAX as f64),
        ],
    ]
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![3 => any::<u64>(), 1 => Just(u64::MAX), 1 => Just(0u64)]
}

fn summary() -> impl Strategy<Value = Summary> {
    (count(), vec(float(), 10)).prop_map(|(count, f)| Summary {
        count,
        sum: f[0],
        min: f[1],
        max: f[2],
        mean: f[3],
        stddev: f[4],
        p50: f[5],
        p90: f[6],
        p95: f[7],
        p99: f[8],
        p999: f[9],
    })
}

fn point() -> impl Strategy<Value = SeriesPoint> {
    (count(), count(), float(), float(), float(), float()).prop_map(
        |(t_ns, count, min, max, mean, last)| SeriesPoint {
            t_ns,
            count,
            min,
            max,
            mean,
            last,
        },
    )
}

fn span() -> impl Strategy<Value = SpanStats> {
    (
        proptest::option::of(count()),
        proptest::option::of(text()),
        vec(text(), 0..4),
        (count(), count(), count()),
        summary(),
        vec(
            (count(), count()).prop_map(|(le, count)| HistogramBucket { le, count }),
            0..4,
        ),
    )
        .prop_map(
            |(thread_id, thread, path, (c, total_ns, self_ns), duration, histogram)| SpanStats {
                thread_id,
                thread,
                path,
                count: c,
                total_ns,
                self_ns,
                duration,
                histogram,
            },
        )
}

fn metric_type() -> impl Strategy<Value = MetricType> {
    prop_oneof![
        Just(MetricType::ExecutionTime),
        Just(MetricType::Latency),
        Just(MetricType::Throughput),
        Just(MetricType::CpuUsage),
        Just(MetricType::MemoryUsage),
        Just(MetricType::Counter),
        Just(MetricType::Gauge),
        text().prop_map(MetricType::Custom),
    ]
}

fn metric() -> impl Strategy<Value = MetricReport> {
    (
        text(),
        metric_type(),
        text(),
        btree_map(text(), text(), 0..3),
        float(),
        count(),
        summary(),
        vec(point(), 0..3),
    )
        .prop_map(
            |(name, metric_type, unit, labels, last, non_finite, summary, points)| MetricReport {
                name,
                metric_type,
                unit,
                labels,
                last,
                non_finite,
                summary,
                points,
            },
        )
}

fn histogram() -> impl Strategy<Value = Vec<HistogramBucket>> {
    vec(
        (count(), count()).prop_map(|(le, count)| HistogramBucket { le, count }),
        0..4,
    )
}

fn distribution() -> impl Strategy<Value = Distribution> {
    (summary(), histogram()).prop_map(|(summary, histogram)| Distribution { summary, histogram })
}

fn stage_report() -> impl Strategy<Value = StageReport> {
    (
        text(),
        proptest::option::of(count()),
        distribution(),
        distribution(),
        count(),
    )
        .prop_map(
            |(name, budget_ns, service, queue, over_budget)| StageReport {
                name,
                budget_ns,
                service,
                queue,
                over_budget,
            },
        )
}

fn incident_stage() -> impl Strategy<Value = IncidentStage> {
    (text(), count(), text(), count(), count(), count()).prop_map(
        |(name, thread_id, thread, start_ns, duration_ns, queue_ns)| IncidentStage {
            name,
            thread_id,
            thread,
            start_ns,
            duration_ns,
            queue_ns,
        },
    )
}

fn incident() -> impl Strategy<Value = Incident> {
    let previous = vec(
        (
            count(),
            count(),
            proptest::option::of(count()),
            vec(incident_stage(), 0..3),
        )
            .prop_map(|(frame_id, capture_ns, latency_ns, stages)| IncidentFrame {
                frame_id,
                capture_ns,
                latency_ns,
                stages,
            }),
        0..3,
    );
    let system = vec(
        (text(), text(), float(), count()).prop_map(|(name, unit, value, t_ns)| SystemFigure {
            name,
            unit,
            value,
            t_ns,
        }),
        0..3,
    );
    (
        (count(), count(), count(), count(), count()),
        text(),
        vec(incident_stage(), 0..4),
        previous,
        system,
    )
        .prop_map(
            |(
                (frame_id, capture_ns, latency_ns, budget_ns, overrun_ns),
                cause,
                stages,
                previous,
                system,
            )| {
                Incident {
                    frame_id,
                    capture_ns,
                    latency_ns,
                    budget_ns,
                    overrun_ns,
                    cause,
                    stages,
                    previous,
                    system,
                }
            },
        )
}

fn frame_report() -> impl Strategy<Value = FrameReport> {
    let window =
        (count(), count(), count(), count()).prop_map(|(t_ns, duration_ns, finished, missed)| {
            FrameWindow {
                t_ns,
                duration_ns,
                finished,
                missed,
            }
        });
    let attribution = vec(
        (text(), count()).prop_map(|(cause, missed)| Attribution { cause, missed }),
        0..3,
    );
    (
        (text(), count(), count(), btree_map(text(), count(), 0..3)),
        (
            count(),
            proptest::option::of(count()),
            count(),
            float(),
            count(),
        ),
        (distribution(), distribution()),
        vec(stage_report(), 0..4),
        attribution,
        vec(incident(), 0..3),
        vec(window, 0..4),
    )
        .prop_map(
            |(
                (source, count, finished, dropped),
                (in_flight, budget_ns, missed, miss_rate, longest_miss_streak),
                (latency, jitter),
                stages,
                attribution,
                incidents,
                windows,
            )| FrameReport {
                source,
                count,
                finished,
                dropped,
                in_flight,
                budget_ns,
                missed,
                miss_rate,
                longest_miss_streak,
                latency,
                jitter,
                stages,
                attribution,
                incidents,
                windows,
            },
        )
}

fn station() -> impl Strategy<Value = StationInfo> {
    let span = (vec(text(), 0..3), count(), count(), float(), float()).prop_map(
        |(path, count, total_ns, p50_ns, p99_ns)| StationSpan {
            path,
            count,
            total_ns,
            p50_ns,
            p99_ns,
        },
    );
    let frames = (
        text(),
        (count(), count(), float()),
        proptest::option::of(count()),
        (float(), float()),
    )
        .prop_map(
            |(
                source,
                (finished, missed, miss_rate),
                budget_ns,
                (latency_p50_ns, latency_p99_ns),
            )| {
                StationFrames {
                    source,
                    finished,
                    missed,
                    miss_rate,
                    budget_ns,
                    latency_p50_ns,
                    latency_p99_ns,
                }
            },
        );
    (
        (text(), text(), text()),
        btree_map(text(), text(), 0..3),
        (count(), text(), count()),
        vec(span, 0..3),
        vec(frames, 0..2),
    )
        .prop_map(
            |(
                (name, session, host),
                labels,
                (start_unix_ns, started_at, duration_ns),
                spans,
                frames,
            )| {
                StationInfo {
                    name,
                    session,
                    host,
                    labels,
                    start_unix_ns,
                    started_at,
                    duration_ns,
                    spans,
                    frames,
                }
            },
        )
}

/// Any report, with stations (a merged report's) or without.
fn report() -> impl Strategy<Value = Report> {
    (run(), vec(station(), 0..3)).prop_map(|(mut r, stations)| {
        r.stations = stations;
        r
    })
}

fn run() -> impl Strategy<Value = Report> {
    let session = (
        text(),
        text(),
        any::<u32>(),
        count(),
        text(),
        count(),
        any::<bool>(),
        btree_map(text(), text(), 0..4),
    )
        .prop_map(
            |(name, host, pid, start_unix_ns, started_at, duration_ns, active, labels)| {
                SessionInfo {
                    name,
                    host,
                    pid,
                    start_unix_ns,
                    started_at,
                    duration_ns,
                    active,
                    labels,
                }
            },
        );
    let threads = prop_oneof![
        3 => vec((count(), text()).prop_map(|(id, name)| ThreadInfo { id, name }), 0..4),
        1 => (1usize..300).prop_map(|n| (0..n)
            .map(|i| ThreadInfo { id: i as u64, name: format!("worker-{i}") })
            .collect()),
    ];
    let series = vec(
        (text(), text(), text(), vec(point(), 0..4)).prop_map(|(name, unit, source, points)| {
            TimeSeries {
                name,
                unit,
                source,
                points,
            }
        }),
        0..3,
    );
    let notes = vec(
        (count(), text()).prop_map(|(t_ns, text)| Note { t_ns, text }),
        0..3,
    );
    let timeline = vec(
        (any::<usize>(), count(), count()).prop_map(|(span, start_ns, duration_ns)| TimelineSpan {
            span,
            start_ns,
            duration_ns,
        }),
        0..3,
    );
    let diagnostics = (
        (count(), count(), count(), count(), count(), count()),
        (count(), count(), count(), count(), count(), count()),
        (count(), count(), count(), count()),
        btree_map(text(), count(), 0..3),
    )
        .prop_map(
            |((a, b, c, d, e, f), (g, h, i, j, k, l), (m, n, o, q), sampler_failures)| {
                Diagnostics {
                    misnested_exits: a,
                    open_spans: b,
                    overflowed_spans: c,
                    timeline_capacity: d,
                    timeline_dropped: e,
                    exited_threads: f,
                    folded_threads: g,
                    abandoned_spans: h,
                    leaked_spans: i,
                    refused_after_stop: j,
                    dropped_measurements: k,
                    dropped_notes: l,
                    refused_labels: m,
                    unmatched_frame_events: n,
                    abandoned_frames: o,
                    unrecorded_frame_events: q,
                    sampler_failures,
                }
            },
        );
    (
        (0..=SCHEMA_VERSION, text()),
        session,
        threads,
        vec(span(), 0..4),
        vec(span(), 0..3),
        vec(metric(), 0..3),
        series,
        notes,
        timeline,
        vec(frame_report(), 0..3),
        diagnostics,
    )
        .prop_map(
            |(
                (schema_version, crate_version),
                session,
                threads,
                spans,
                span_totals,
                metrics,
                series,
                notes,
                timeline,
                frames,
                diagnostics,
            )| Report {
                schema_version,
                crate_version,
                session,
                threads,
                spans,
                span_totals,
                metrics,
                series,
                notes,
                timeline,
                frames,
                // Not in the JSON report.
                capture: None,
                diagnostics,
                // Added by `report`.
                stations: Vec::new(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_report_round_trips_through_json(report in report()) {
        for sink in [JsonSink::new(), JsonSink::new().with_pretty(false)] {
            let mut bytes = Vec::new();
            sink.render(&report, &mut bytes).unwrap();
            let back = from_slice(&bytes).unwrap();
            // Debug text: every field, floats to the last bit (shortest round-trip form,
            // `-0.0` kept), NaN equal to NaN.
            prop_assert_eq!(format!("{:?}", back), format!("{:?}", report));
            // And the value itself wherever NaN does not make `==` false.
            if !format!("{report:?}").contains("NaN") {
                prop_assert_eq!(&back, &report);
            }
        }
    }
}

#[test]
fn labels_and_failures_maps_survive_empty_and_full() {
    // `labels` and `sampler_failures` are left out of the JSON when empty: reading fills
    // them in again.
    let mut r = Report::empty("maps");
    r.diagnostics.sampler_failures = BTreeMap::new();
    let bytes = JsonSink::new().render_to_string(&r).unwrap();
    assert!(!bytes.contains("sampler_failures"));
    assert!(!bytes.contains("labels"));
    assert_eq!(from_slice(bytes.as_bytes()).unwrap(), r);

    r.session.labels = BTreeMap::from([
        (String::new(), "empty key".to_string()),
        ("line".to_string(), "3".to_string()),
        ("station".to_string(), "\"cell\"\n<7>".to_string()),
    ]);
    r.diagnostics.sampler_failures = BTreeMap::from([("system/cpu".to_string(), 2)]);
    let bytes = JsonSink::new().render_to_string(&r).unwrap();
    assert!(bytes.contains("\"labels\"") && bytes.contains("sampler_failures"));
    assert_eq!(from_slice(bytes.as_bytes()).unwrap(), r);
}
