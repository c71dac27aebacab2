//! Session labels and frames in the OpenMetrics text, asserted on the parsed samples: the
//! session's labels on every sample (renamed where they would clash with the sink's own),
//! the frame counters, gauges and histograms per source and stage matching the report, and
//! no unbounded label (incidents, frame ids) anywhere.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{parse_line, samples, types, valid_label_name, Sample};
use heimdall_perf_core::{Distribution, FrameReport, Incident, Report, ReportSink, SCHEMA_VERSION};
use heimdall_perf_report_openmetrics::OpenMetricsSink;
use heimdall_perf_testkit::{sample_report, HOSTILE_NAME};

fn render(r: &Report) -> String {
    OpenMetricsSink::new()
        .render_to_string(r)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The samples named `name` whose labels include every `(label, value)` of `with`.
fn find<'a>(all: &'a [Sample], name: &str, with: &[(&str, &str)]) -> Vec<&'a Sample> {
    all.iter()
        .filter(|s| s.name == name && with.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .collect()
}

/// The one sample named `name` with the labels `with`.
fn one<'a>(all: &'a [Sample], name: &str, with: &[(&str, &str)]) -> &'a Sample {
    match find(all, name, with).as_slice() {
        [s] => s,
        other => panic!("{} samples {name} {with:?}: {other:?}", other.len()),
    }
}

#[test]
fn the_parser_reads_escapes_and_bare_samples() {
    let s = samples("# HELP x y\nx{a=\"q\\\"\\\\\\n,}\",b=\"\"} 1.5\ny 2\n");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].label("a"), Some("q\"\\\n,}"));
    assert_eq!(s[0].label("b"), Some(""));
    assert_eq!(s[0].number(), 1.5);
    assert_eq!((s[1].name.as_str(), s[1].count()), ("y", 2));
    assert!(parse_line("x{a=\"open} 1").is_err());
    assert!(parse_line("x{a=\"\\t\"} 1").is_err());
}

#[test]
fn session_labels_are_on_every_sample() {
    let r = sample_report();
    assert_eq!(r.session.labels.len(), 2);
    let all = samples(&render(&r));
    assert!(all.len() > 100);
    for s in &all {
        // The values as the report holds them (the hostile one unescaped back), right after
        // the session's name.
        let first: Vec<(&str, &str)> = s
            .labels
            .iter()
            .take(3)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            first,
            [
                ("session", "line-3 inspection"),
                ("line", "3"),
                ("station", r.session.labels["station"].as_str()),
            ],
            "{s:?}"
        );
        let names: BTreeSet<&str> = s.labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names.len(), s.labels.len(), "a label twice: {s:?}");
        assert!(names.iter().all(|n| valid_label_name(n)), "{s:?}");
    }
}

#[test]
fn session_labels_named_like_the_sinks_own_are_renamed() {
    let mut r = sample_report();
    let user: BTreeMap<String, String> = [
        ("path", "user path"),
        ("thread", "user thread"),
        ("le", "user le"),
        ("source", "user source"),
        ("stage", "user stage"),
        ("reason", "user reason"),
        ("cause", "user cause"),
        ("session", "user session"),
        ("metric", "user metric"),
        ("label_path", "taken already"),
        ("Line", "upper"),
        ("line", "lower"),
        ("", "empty key"),
        ("__name__", "dunder"),
        ("9", "digit"),
        (HOSTILE_NAME, HOSTILE_NAME),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    r.session.labels = user.clone();
    let text = render(&r);
    let all = samples(&text);

    // The session's labels as every sample writes them: sanitised, the sink's own names and
    // Prometheus's prefixed with `label_`, and a name taken twice numbered.
    let expected: Vec<(&str, &str)> = vec![
        ("session", "line-3 inspection"),
        ("label_", "empty key"),
        ("_9", "digit"),
        ("line", "upper"),
        ("name", "dunder"),
        ("label_cause", "user cause"),
        ("label_path", "taken already"),
        ("label_le", "user le"),
        ("line_2", "lower"),
        ("label_metric", "user metric"),
        (
            "odd_name_with_ticks_and_script_alert_1_script_quotes",
            HOSTILE_NAME,
        ),
        ("label_path_2", "user path"),
        ("label_reason", "user reason"),
        ("label_session", "user session"),
        ("label_source", "user source"),
        ("label_stage", "user stage"),
        ("label_thread", "user thread"),
    ];
    // `9` sanitises to `_9`, which starts with `_`: renamed like the others.
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(k, v)| {
            let k = if k == "_9" { "label_9" } else { k };
            (k.to_string(), v.to_string())
        })
        .collect();
    for s in &all {
        assert_eq!(&s.labels[..expected.len()], &expected[..], "{s:?}");
        let names: BTreeSet<&str> = s.labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names.len(), s.labels.len(), "a label twice: {s:?}");
        assert!(names.iter().all(|n| valid_label_name(n)), "{s:?}");
    }
    // The sink's own labels keep their names and values beside the renamed ones.
    let bucket = all
        .iter()
        .find(|s| s.name == "heimdall_frame_latency_seconds_bucket")
        .unwrap();
    assert_eq!(bucket.label("source"), Some("cam-0"));
    assert_eq!(bucket.label("label_source"), Some("user source"));
    assert!(bucket.label("le").unwrap().parse::<f64>().is_ok());
    assert_eq!(bucket.label("label_le"), Some("user le"));
    let span = all
        .iter()
        .find(|s| s.name == "heimdall_span_self_seconds_total")
        .unwrap();
    assert_eq!(span.label("path"), Some(r.spans[0].path_string().as_str()));
    assert_eq!(span.label("thread"), r.spans[0].thread.as_deref());
    assert_eq!(span.label("label_thread"), Some("user thread"));
    let stage = one(
        &all,
        "heimdall_frame_stage_budget_seconds",
        &[("source", "cam-0")],
    );
    assert_eq!(stage.label("stage"), Some("detect"));
    assert_eq!(stage.label("label_stage"), Some("user stage"));
    let drop = one(
        &all,
        "heimdall_frames_dropped_total",
        &[("source", "cam-0")],
    );
    assert_eq!(drop.label("reason"), Some("queue full"));
    assert_eq!(drop.label("label_reason"), Some("user reason"));
    // And the text is still what Prometheus accepts.
    heimdall_perf_testkit::promtool::promtool_check(&text).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn frame_counters_and_gauges_match_the_report() {
    let r = sample_report();
    let all = samples(&render(&r));
    assert_eq!(r.frames.len(), 2);
    for f in &r.frames {
        let src = [("source", f.source.as_str())];
        assert_eq!(
            one(&all, "heimdall_frames_begun_total", &src).count(),
            f.count
        );
        assert_eq!(
            one(&all, "heimdall_frames_finished_total", &src).count(),
            f.finished
        );
        assert_eq!(
            one(&all, "heimdall_frames_in_flight", &src).count(),
            f.in_flight
        );
        let drops: BTreeMap<String, u64> = find(&all, "heimdall_frames_dropped_total", &src)
            .into_iter()
            .map(|s| (s.label("reason").unwrap().to_string(), s.count()))
            .collect();
        assert_eq!(drops, f.dropped, "{}", f.source);
        let blamed: BTreeMap<String, u64> =
            find(&all, "heimdall_frames_missed_by_cause_total", &src)
                .into_iter()
                .map(|s| (s.label("cause").unwrap().to_string(), s.count()))
                .collect();
        let want: BTreeMap<String, u64> = f
            .attribution
            .iter()
            .map(|a| (a.cause.clone(), a.missed))
            .collect();
        assert_eq!(blamed, want, "{}", f.source);

        let budgeted = [
            "heimdall_frame_budget_seconds",
            "heimdall_frames_missed_total",
            "heimdall_frame_miss_ratio",
            "heimdall_frame_longest_miss_streak",
        ];
        match f.budget_ns {
            Some(budget) => {
                let b = one(&all, "heimdall_frame_budget_seconds", &src).number();
                assert_eq!(b, budget as f64 / 1e9);
                let missed = one(&all, "heimdall_frames_missed_total", &src).count();
                assert_eq!(missed, f.missed);
                assert_eq!(
                    one(&all, "heimdall_frame_miss_ratio", &src).number(),
                    f.miss_rate
                );
                assert_eq!(
                    one(&all, "heimdall_frame_longest_miss_streak", &src).count(),
                    f.longest_miss_streak
                );
                // Every missed frame is blamed on one cause.
                assert_eq!(blamed.values().sum::<u64>(), missed);
            }
            None => {
                // Without a budget no frame can miss: nothing is said about misses.
                for name in budgeted {
                    assert!(find(&all, name, &src).is_empty(), "{name} for {}", f.source);
                }
            }
        }

        for stage in &f.stages {
            let l = [
                ("source", f.source.as_str()),
                ("stage", stage.name.as_str()),
            ];
            match stage.budget_ns {
                Some(b) => {
                    let g = one(&all, "heimdall_frame_stage_budget_seconds", &l);
                    assert_eq!(g.number(), b as f64 / 1e9);
                    let over = one(&all, "heimdall_frame_stage_over_budget_total", &l);
                    assert_eq!(over.count(), stage.over_budget);
                }
                None => {
                    assert!(find(&all, "heimdall_frame_stage_budget_seconds", &l).is_empty());
                    assert!(find(&all, "heimdall_frame_stage_over_budget_total", &l).is_empty());
                }
            }
        }
    }
    // The sample's figures, for the reader.
    let cam = [("source", "cam-0")];
    assert_eq!(one(&all, "heimdall_frames_missed_total", &cam).count(), 30);
    assert_eq!(
        one(
            &all,
            "heimdall_frames_missed_by_cause_total",
            &[("source", "cam-0"), ("cause", "queue before detect")]
        )
        .count(),
        r.frame_source("cam-0")
            .unwrap()
            .blamed("queue before detect")
    );
    assert_eq!(
        one(
            &all,
            "heimdall_frames_dropped_total",
            &[("source", HOSTILE_NAME), ("reason", HOSTILE_NAME)]
        )
        .count(),
        1
    );
}

/// The `(le, cumulative count)` buckets, `_sum` and `_count` of the histogram family
/// `family` for the samples with labels `with`.
fn histogram_of(
    all: &[Sample],
    family: &str,
    with: &[(&str, &str)],
) -> (Vec<(f64, u64)>, f64, u64) {
    let buckets = find(all, &format!("{family}_bucket"), with)
        .into_iter()
        .map(|s| {
            let le = s.label("le").unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, s.count())
        })
        .collect();
    let sum = one(all, &format!("{family}_sum"), with).number();
    let count = one(all, &format!("{family}_count"), with).count();
    (buckets, sum, count)
}

/// Checks that the histogram written for `with` is `d`: cumulative buckets at `le / 1e9`
/// seconds, `+Inf` and `_count` the count, `_sum` the sum in seconds. Returns its finite
/// bounds in nanoseconds.
fn assert_histogram(
    all: &[Sample],
    family: &str,
    with: &[(&str, &str)],
    d: &Distribution,
) -> Vec<u64> {
    let (buckets, sum, count) = histogram_of(all, family, with);
    assert_eq!(buckets.len(), d.histogram.len() + 1, "{family} {with:?}");
    let mut running = 0u64;
    for (b, (le, c)) in d.histogram.iter().zip(&buckets) {
        running += b.count;
        assert_eq!(*c, running, "{family} {with:?}");
        assert_eq!(*le, b.le as f64 / 1e9, "{family} {with:?}");
    }
    assert!(buckets
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, d.summary.count)));
    assert_eq!(count, d.summary.count);
    assert_eq!(sum, d.summary.sum / 1e9, "{family} {with:?}");
    d.histogram.iter().map(|b| b.le).collect()
}

#[test]
fn frame_histograms_are_seconds_on_the_span_ladder() {
    let r = sample_report();
    let text = render(&r);
    let all = samples(&text);
    let kinds: BTreeMap<String, String> = types(&text).into_iter().collect();
    for family in [
        "heimdall_frame_latency_seconds",
        "heimdall_frame_interval_seconds",
        "heimdall_frame_stage_service_seconds",
        "heimdall_frame_stage_queue_seconds",
    ] {
        assert_eq!(kinds[family], "histogram", "{family}");
        assert!(
            text.contains(&format!("# UNIT {family} seconds\n")),
            "{family}"
        );
    }
    let mut ladders: Vec<Vec<u64>> = Vec::new();
    for f in &r.frames {
        let src = [("source", f.source.as_str())];
        ladders.push(assert_histogram(
            &all,
            "heimdall_frame_latency_seconds",
            &src,
            &f.latency,
        ));
        ladders.push(assert_histogram(
            &all,
            "heimdall_frame_interval_seconds",
            &src,
            &f.jitter,
        ));
        for stage in &f.stages {
            let l = [
                ("source", f.source.as_str()),
                ("stage", stage.name.as_str()),
            ];
            ladders.push(assert_histogram(
                &all,
                "heimdall_frame_stage_service_seconds",
                &l,
                &stage.service,
            ));
            ladders.push(assert_histogram(
                &all,
                "heimdall_frame_stage_queue_seconds",
                &l,
                &stage.queue,
            ));
        }
    }
    // The bounds spans are written with, read from the text.
    for span in r.spans.iter().filter(|s| !s.histogram.is_empty()) {
        let path = span.path.join(";");
        let (buckets, _, _) = histogram_of(
            &all,
            "heimdall_span_duration_seconds",
            &[
                ("path", path.as_str()),
                ("thread", span.thread.as_deref().unwrap()),
            ],
        );
        ladders.push(
            buckets
                .iter()
                .filter(|(le, _)| le.is_finite())
                .map(|(le, _)| (le * 1e9).round() as u64)
                .collect(),
        );
    }
    // One ladder: every histogram's bounds are the start of the longest one's.
    let longest = ladders.iter().max_by_key(|l| l.len()).unwrap().clone();
    assert!(longest.len() > 10);
    for l in &ladders {
        assert_eq!(&longest[..l.len()], &l[..]);
    }
}

#[test]
fn incidents_are_not_exported_and_labels_stay_bounded() {
    let r = sample_report();
    let text = render(&r);
    assert!(r.frames.iter().any(|f| !f.incidents.is_empty()));
    // No frame id, capture time or incident anywhere.
    assert!(!text.contains("incident"));
    let all = samples(&text);
    let names: BTreeSet<&str> = all
        .iter()
        .flat_map(|s| s.labels.iter().map(|(k, _)| k.as_str()))
        .collect();
    let allowed: BTreeSet<&str> = [
        "session",
        "line",
        "station",
        "host",
        "pid",
        "started_at",
        "crate_version",
        "schema_version",
        "thread",
        "thread_id",
        "path",
        "le",
        "metric",
        "camera",
        "series",
        "source",
        "reason",
        "cause",
        "stage",
    ]
    .into_iter()
    .collect();
    assert!(
        names.is_subset(&allowed),
        "{:?}",
        names.difference(&allowed)
    );
    for s in all.iter().filter(|s| s.name.starts_with("heimdall_frame")) {
        for id in r
            .frames
            .iter()
            .flat_map(|f| &f.incidents)
            .map(|i| i.frame_id.to_string())
        {
            assert!(s.labels.iter().all(|(_, v)| *v != id), "{s:?}");
        }
    }

    // However many incidents and windows a source keeps, the text is the same.
    let mut more = r.clone();
    for f in &mut more.frames {
        let template = f.incidents.first().cloned().unwrap_or_else(|| Incident {
            frame_id: 0,
            capture_ns: 0,
            latency_ns: 0,
            budget_ns: 0,
            overrun_ns: 0,
            cause: "detect".into(),
            stages: Vec::new(),
            previous: Vec::new(),
            system: Vec::new(),
        });
        f.incidents = (0..500)
            .map(|i| Incident {
                frame_id: 1_000_000 + i,
                ..template.clone()
            })
            .collect();
        f.windows.extend(f.windows.clone());
    }
    assert_eq!(render(&more), text);
}

/// A frame source with nothing in it: no budget, no stages, no finished frame, empty
/// distributions.
fn bare_source(name: &str) -> FrameReport {
    FrameReport {
        source: name.into(),
        count: 3,
        finished: 0,
        dropped: BTreeMap::new(),
        in_flight: 3,
        budget_ns: None,
        missed: 0,
        miss_rate: 0.0,
        longest_miss_streak: 0,
        latency: Distribution::default(),
        jitter: Distribution::default(),
        stages: Vec::new(),
        attribution: Vec::new(),
        incidents: Vec::new(),
        windows: Vec::new(),
    }
}

#[test]
fn odd_sources_give_well_formed_families() {
    let mut r = Report::empty("odd");
    r.frames.push(bare_source("bare"));
    // A budget with no finished frame: the miss rate is NaN in a report built by hand.
    let mut nan = bare_source("nan");
    nan.budget_ns = Some(0);
    nan.miss_rate = f64::NAN;
    r.frames.push(nan);
    // The same source twice (an edited file): the first entry counts, nothing is doubled.
    let mut twice = bare_source("bare");
    twice.count = 99;
    r.frames.push(twice);
    let text = render(&r);
    let all = samples(&text);
    assert_eq!(
        one(&all, "heimdall_frames_begun_total", &[("source", "bare")]).count(),
        3
    );
    let (buckets, sum, count) = histogram_of(
        &all,
        "heimdall_frame_latency_seconds",
        &[("source", "bare")],
    );
    assert_eq!((buckets, sum, count), (vec![(f64::INFINITY, 0)], 0.0, 0));
    assert!(find(&all, "heimdall_frame_stage_service_seconds_count", &[]).is_empty());
    assert!(find(&all, "heimdall_frames_missed_total", &[("source", "bare")]).is_empty());
    assert!(one(&all, "heimdall_frame_miss_ratio", &[("source", "nan")])
        .number()
        .is_nan());
    assert_eq!(
        one(&all, "heimdall_frame_budget_seconds", &[("source", "nan")]).number(),
        0.0
    );
    // No sample twice.
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let distinct: BTreeSet<&str> = lines.iter().copied().collect();
    assert_eq!(lines.len(), distinct.len());
}

#[test]
fn a_report_without_frames_or_labels_has_no_frame_families() {
    // What a schema-1 report holds.
    let mut r = sample_report();
    r.schema_version = 1;
    r.frames.clear();
    r.session.labels.clear();
    let text = render(&r);
    let all = samples(&text);
    assert!(!text.contains("heimdall_frame"));
    assert!(all.iter().all(
        |s| s.labels[0] == ("session".into(), "line-3 inspection".into())
            && s.labels.get(1).is_none_or(|(k, _)| k != "line")
    ));
    let info = one(&all, "heimdall_session_info", &[]);
    assert_eq!(info.label("schema_version"), Some("1"));
    assert_ne!(SCHEMA_VERSION, 1);
}
