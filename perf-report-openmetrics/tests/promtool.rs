//! The sink's output, checked by Prometheus's own `promtool check metrics`.

#[path = "common/promtool.rs"]
mod promtool;

use std::collections::BTreeMap;

use heimdall_perf_core::fixtures::{large_report, sample_report, HOSTILE_NAME};
use heimdall_perf_core::{MetricType, Report};
use heimdall_perf_report_openmetrics::render_string;

use promtool::promtool_check;

fn check(report: &Report) -> String {
    let text = render_string(report);
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
    let text = check(&r);
    assert!(text.contains("heimdall_sampler_failures_total{"));
    assert!(text.contains("} -Inf\n"));
}
