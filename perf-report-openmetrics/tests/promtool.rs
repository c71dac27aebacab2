//! The sink's output, checked by Prometheus's own `promtool check metrics`.

use std::collections::BTreeMap;

use heimdall_perf_core::{MetricType, Report, ReportSink};
use heimdall_perf_report_openmetrics::OpenMetricsSink;
use heimdall_perf_testkit::{large_report, sample_report, HOSTILE_NAME};

use heimdall_perf_testkit::promtool::promtool_check;

fn check(report: &Report) -> String {
    let text = OpenMetricsSink::new()
        .render_to_string(report)
        .unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = promtool_check(&text) {
        panic!("{e}\n--- text ---\n{text}");
    }
    text
}

#[test]
fn the_sample_report_passes_promtool() {
    let text = check(&sample_report());
    // What promtool accepted is what we meant: histograms, counters, gauges, escapes.
    assert!(text.contains("# TYPE heimdall_span_duration_seconds histogram\n"));
    assert!(text.contains("# UNIT heimdall_span_duration_seconds seconds\n"));
    assert!(text.contains("# TYPE heimdall_span_self_seconds_total counter\n"));
    assert!(text.contains("le=\"+Inf\"} 600\n"));
    assert!(text.contains("\\\"quotes\\\""));
    assert!(text.contains("} NaN\n"));
    assert!(text.ends_with("# EOF\n"));
    // Frames and the session's labels too.
    assert!(text.contains("# TYPE heimdall_frame_latency_seconds histogram\n"));
    assert!(text.contains("# TYPE heimdall_frames_missed_total counter\n"));
    assert!(text.contains("# TYPE heimdall_frame_miss_ratio gauge\n"));
    assert!(text.contains(",station=\"cell-7 <b>\\\"east\\\"</b>\","));
}

#[test]
fn an_empty_report_passes_promtool() {
    let text = check(&Report::empty("idle"));
    assert!(!text.contains("heimdall_span_duration_seconds"));
}

#[test]
fn a_large_report_passes_promtool() {
    let report = large_report(200, 1, 20);
    let text = check(&report);
    let counts = text
        .lines()
        .filter(|l| l.starts_with("heimdall_span_duration_seconds_count{"))
        .count();
    assert_eq!(counts, report.spans.len());
}

#[test]
fn hostile_names_everywhere_pass_promtool() {
    let mut r = sample_report();
    r.session.name = HOSTILE_NAME.into();
    r.session.host = HOSTILE_NAME.into();
    for t in &mut r.threads {
        t.name = format!("{HOSTILE_NAME} {}", t.id);
    }
    for s in r.spans.iter_mut().chain(r.span_totals.iter_mut()) {
        if let Some(t) = &mut s.thread {
            *t = format!("{HOSTILE_NAME} {t}");
        }
    }
    let mut labels = BTreeMap::new();
    labels.insert(HOSTILE_NAME.to_string(), HOSTILE_NAME.to_string());
    labels.insert("le".to_string(), "1".to_string());
    labels.insert("__name__".to_string(), "x".to_string());
    labels.insert("session".to_string(), "other".to_string());
    labels.insert("9".to_string(), "digit".to_string());
    let mut m = r.metrics[0].clone();
    m.name = HOSTILE_NAME.into();
    m.unit = HOSTILE_NAME.into();
    m.metric_type = MetricType::Custom(HOSTILE_NAME.into());
    m.labels = labels.clone();
    r.metrics.push(m.clone());
    m.metric_type = MetricType::Counter;
    m.name = "camelCaseCounter".into();
    m.unit = "ms".into();
    m.last = 12.0;
    r.metrics.push(m.clone());
    m.metric_type = MetricType::Gauge;
    m.name = "depth_total".into();
    m.unit = String::new();
    m.last = f64::NEG_INFINITY;
    r.metrics.push(m);
    let mut s = r.series[0].clone();
    s.name = HOSTILE_NAME.into();
    s.unit = "\\".into();
    s.source = HOSTILE_NAME.into();
    r.series.push(s);
    r.diagnostics
        .sampler_failures
        .insert(format!("system/{HOSTILE_NAME}"), 3);
    // Session labels under hostile names and values, some named like the sink's own.
    r.session.labels = labels.clone();
    r.session.labels.insert("path".into(), HOSTILE_NAME.into());
    r.session.labels.insert("source".into(), "\\".into());
    r.session.labels.insert("stage".into(), String::new());
    r.session.labels.insert("Stage".into(), "\n".into());
    // Frames whose every name is hostile: the source, a stage with a budget, a drop
    // reason, a cause.
    let mut f = r.frames[0].clone();
    f.source = format!("{HOSTILE_NAME} 2");
    f.stages[0].name = HOSTILE_NAME.into();
    f.stages[0].budget_ns = Some(1);
    f.attribution[0].cause = format!("queue before {HOSTILE_NAME}");
    f.dropped.insert(HOSTILE_NAME.into(), 4);
    f.miss_rate = f64::INFINITY;
    r.frames.push(f);
    let text = check(&r);
    assert!(text.contains("heimdall_frame_stage_over_budget_total{"));
    assert!(text.contains("label_path=\"odd"));
    assert!(text.contains("heimdall_sampler_failures_total{"));
    assert!(text.contains("} -Inf\n"));
}

/// Unit strings users write, from the tidy to the odd.
const USER_UNITS: &[&str] = &[
    "ms",
    "µs",
    "μs",
    "us",
    "ns",
    "s",
    "%",
    "fps",
    "MB",
    "MiB",
    "kB",
    "KB",
    "GB",
    "MB/s",
    "kb/s",
    "Mbit/s",
    "ms/frame",
    "frames",
    "px",
    "°C",
    "",
    "weird unit!",
    "bytes",
    "B",
    "count",
    "Hz",
    "KiB/s",
    "bytes/s",
    "frames/s",
    "s/op",
    "ms/kb",
    "sec",
    "h",
    "d",
    "m",
    "b",
    "kbps",
    "Mbps",
    "MHz",
    "milliseconds",
    "kilobytes",
    "total",
    "counter",
    "_",
    "/",
    "/s",
    "ms/",
    "%/s",
    "bytes_total",
    "seconds_count",
    "\\",
    "\"",
    "\n",
];

/// A report with, for every unit above, a gauge, a counter and a periodic series in it, under
/// names users write (some with the unit repeated in the name).
fn report_with_units() -> Report {
    let mut r = sample_report();
    let template = r.metrics[0].clone();
    let series_template = r.series[0].clone();
    r.metrics.clear();
    r.series.clear();
    for (i, unit) in USER_UNITS.iter().enumerate() {
        let mut m = template.clone();
        m.unit = unit.to_string();
        m.labels.clear();
        m.metric_type = MetricType::Gauge;
        m.name = "frame latency".into();
        m.last = 1.5;
        r.metrics.push(m.clone());
        m.name = format!("throughput_{unit}");
        r.metrics.push(m.clone());
        m.metric_type = MetricType::Counter;
        m.name = format!("sent {i}");
        m.last = 3.0;
        r.metrics.push(m);
        let mut s = series_template.clone();
        s.name = format!("camera.{i}.rate");
        s.unit = unit.to_string();
        r.series.push(s);
    }
    r
}

/// The sample line of a gauge `probe` with `unit` and last value 1.5.
fn probe_line(unit: &str) -> String {
    let mut r = Report::empty("s");
    let mut m = sample_report().metrics[0].clone();
    m.name = "probe".into();
    m.unit = unit.into();
    m.labels.clear();
    m.metric_type = MetricType::Gauge;
    m.last = 1.5;
    r.metrics.push(m);
    let text = check(&r);
    text.lines()
        .find(|l| l.starts_with("heimdall_metric_probe"))
        .unwrap_or_else(|| panic!("no probe sample for {unit:?} in\n{text}"))
        .to_string()
}

#[test]
fn every_unit_users_write_passes_promtool_lint() {
    let text = check(&report_with_units());
    // A `# UNIT` only where OpenMetrics allows it: on a family named `…_<unit>`.
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# UNIT ") {
            let (name, unit) = rest.split_once(' ').unwrap();
            assert!(name.ends_with(&format!("_{unit}")), "{line}");
        }
    }
    // Known units became base units with the value scaled; unknown units stay out of the
    // name and the value is left as it is.
    for (unit, expected) in [
        (
            "ms",
            "heimdall_metric_probe_seconds{session=\"s\",metric=\"probe\"} 0.0015",
        ),
        (
            "µs",
            "heimdall_metric_probe_seconds{session=\"s\",metric=\"probe\"} 0.0000015",
        ),
        (
            "%",
            "heimdall_metric_probe_ratio{session=\"s\",metric=\"probe\"} 0.015",
        ),
        (
            "MiB",
            "heimdall_metric_probe_bytes{session=\"s\",metric=\"probe\"} 1572864",
        ),
        (
            "KB",
            "heimdall_metric_probe_bytes{session=\"s\",metric=\"probe\"} 1500",
        ),
        (
            "MB/s",
            "heimdall_metric_probe_bytes_per_second{session=\"s\",metric=\"probe\"} 1500000",
        ),
        (
            "Mbit/s",
            "heimdall_metric_probe_bytes_per_second{session=\"s\",metric=\"probe\"} 187500",
        ),
        (
            "ms/frame",
            "heimdall_metric_probe_seconds{session=\"s\",metric=\"probe\"} 0.0015",
        ),
        (
            "°C",
            "heimdall_metric_probe_celsius{session=\"s\",metric=\"probe\"} 1.5",
        ),
        (
            "Hz",
            "heimdall_metric_probe_hertz{session=\"s\",metric=\"probe\"} 1.5",
        ),
        (
            "kb/s",
            "heimdall_metric_probe{session=\"s\",metric=\"probe\"} 1.5",
        ),
        (
            "fps",
            "heimdall_metric_probe{session=\"s\",metric=\"probe\"} 1.5",
        ),
        (
            "weird unit!",
            "heimdall_metric_probe{session=\"s\",metric=\"probe\"} 1.5",
        ),
        (
            "",
            "heimdall_metric_probe{session=\"s\",metric=\"probe\"} 1.5",
        ),
    ] {
        assert_eq!(probe_line(unit), expected, "{unit:?}");
    }
}

#[test]
fn unit_words_in_metric_names_pass_promtool_lint() {
    let mut r = Report::empty("s");
    let template = sample_report().metrics[0].clone();
    for (name, unit) in [
        ("latency_milliseconds", "ms"),
        ("latency_milliseconds", ""),
        ("size in kilobytes", "kB"),
        ("uptime minutes", "min"),
        ("link bits", ""),
        ("frame_ms_per_kb", "px"),
        ("gauge histogram", "count"),
    ] {
        let mut m = template.clone();
        m.name = name.into();
        m.unit = unit.into();
        m.labels.clear();
        r.metrics.push(m);
    }
    let text = check(&r);
    assert!(
        text.contains("# TYPE heimdall_metric_latency_seconds gauge\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE heimdall_metric_size_in_bytes gauge\n"),
        "{text}"
    );
}

#[test]
fn every_recording_diagnostic_is_a_sample() {
    let mut r = sample_report();
    r.diagnostics.folded_threads = 7;
    r.diagnostics.open_spans = 2;
    let text = check(&r);
    for c in r.diagnostics.counters() {
        let (suffix, kind) = if c.monotonic {
            ("_total", "counter")
        } else {
            ("", "gauge")
        };
        let family = format!("heimdall_{}", c.name);
        assert!(
            text.contains(&format!("# TYPE {family}{suffix} {kind}")),
            "no {kind} family for {}:\n{text}",
            c.name
        );
        let sample = text
            .lines()
            .find(|l| l.starts_with(&format!("{family}{suffix}{{")))
            .unwrap_or_else(|| panic!("no sample of {family}{suffix}"));
        assert!(sample.ends_with(&format!(" {}", c.value)), "{sample}");
    }
}

#[test]
fn odd_frame_sources_pass_promtool() {
    let mut r = Report::empty("odd frames");
    let mut template = sample_report().frames.remove(0);
    // No budget, no stage, no finished frame, empty distributions.
    let mut bare = template.clone();
    bare.source = "bare".into();
    bare.budget_ns = None;
    bare.finished = 0;
    bare.missed = 0;
    bare.stages.clear();
    bare.attribution.clear();
    bare.latency = Default::default();
    bare.jitter = Default::default();
    r.frames.push(bare.clone());
    // The same source again, and one with extreme values: NaN miss rate, counts at
    // u64::MAX, histogram bounds out of order and repeated, a NaN sum.
    r.frames.push(bare);
    template.source = "extreme".into();
    template.count = u64::MAX;
    template.missed = u64::MAX;
    template.miss_rate = f64::NAN;
    template.budget_ns = Some(u64::MAX);
    template.latency.summary.sum = f64::NAN;
    template.latency.histogram.reverse();
    let repeated = template.jitter.histogram[3];
    template.jitter.histogram.insert(3, repeated);
    template.stages[0].queue.summary.count = u64::MAX;
    r.frames.push(template);
    let text = check(&r);
    assert!(text.contains("heimdall_frames_begun_total{session=\"odd frames\",source=\"extreme\"} 18446744073709551615\n"));
    assert!(
        text.contains("heimdall_frame_miss_ratio{session=\"odd frames\",source=\"extreme\"} NaN\n")
    );
}
