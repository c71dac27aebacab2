//! Which metric families a report gives, and their samples: the session (info, start,
//! duration, active), spans (a duration histogram and a self-time counter per path and
//! thread), measurements (a gauge of the last value, or a counter), periodic series (a gauge
//! of the last sample) and the recording diagnostics. Values are converted to base units
//! through [`heimdall_perf_core::units::Unit`].

use heimdall_perf_core::units::Unit;
use heimdall_perf_core::{MetricReport, MetricType, Report, SpanStats, TimeSeries};

use crate::encoding::{format_value, Families, Kind, Labels, Spec};
use crate::names::{path_label, stem};

/// The OpenMetrics text of `report`.
pub(crate) fn exposition(report: &Report) -> String {
    let mut families = Families::default();
    let session = report.session.name.as_str();
    session_families(&mut families, report);
    span_families(&mut families, session, &report.spans);
    for m in &report.metrics {
        metric_family(&mut families, session, m);
    }
    for s in &report.series {
        series_family(&mut families, session, s);
    }
    diagnostics_families(&mut families, report);
    families.finish()
}

/// Nanoseconds as seconds.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// How a unit is told in `# HELP` text: ` (ms)`, and for converted values ` (ms, written in
/// seconds)`; nothing for no unit.
fn unit_help(text: &str, unit: &Unit) -> String {
    match unit.base_name() {
        _ if text.trim().is_empty() => String::new(),
        Some(base) if unit.scales() => {
            format!(" ({text}, written in {})", base.replace('_', " "))
        }
        _ => format!(" ({text})"),
    }
}

/// A family of the sink's own, with a fixed name.
fn fixed(
    key: &str,
    stem: &'static str,
    unit: Option<&'static str>,
    kind: Kind,
    help: &str,
) -> Spec<'static> {
    Spec {
        key: format!("fixed:{key}"),
        stem,
        unit,
        kind,
        help: help.to_string(),
    }
}

/// The session's own families: its info, start, duration and whether it is active.
fn session_families(families: &mut Families, report: &Report) {
    let s = &report.session;
    let info = families.family(fixed(
        "session_info",
        "session_info",
        None,
        Kind::Gauge,
        "The heimdall-perf session this report describes (always 1).",
    ));
    let labels = Labels::session(&s.name)
        .with("host", s.host.clone())
        .with("pid", s.pid.to_string())
        .with("started_at", s.started_at.clone())
        .with("crate_version", report.crate_version.clone())
        .with("schema_version", report.schema_version.to_string());
    families.sample(info, "", &labels, "1");

    let start = families.family(fixed(
        "session_start",
        "session_start_time",
        Some("seconds"),
        Kind::Gauge,
        "Start of the session, seconds since the Unix epoch.",
    ));
    families.sample(
        start,
        "",
        &Labels::session(&s.name),
        &format_value(seconds(s.start_unix_ns)),
    );

    let duration = families.family(fixed(
        "session_duration",
        "session_duration",
        Some("seconds"),
        Kind::Gauge,
        "Time from the session start to its stop (or to the snapshot while running).",
    ));
    families.sample(
        duration,
        "",
        &Labels::session(&s.name),
        &format_value(seconds(s.duration_ns)),
    );

    let active = families.family(fixed(
        "session_active",
        "session_active",
        None,
        Kind::Gauge,
        "1 if the session was still running when the report was taken, else 0.",
    ));
    families.sample(
        active,
        "",
        &Labels::session(&s.name),
        if s.active { "1" } else { "0" },
    );
}

/// The labels of a span's samples: session, thread, thread id and path.
pub(crate) fn span_labels(session: &str, span: &SpanStats) -> Labels {
    Labels::session(session)
        .with("thread", span.thread.clone().unwrap_or_default())
        .with(
            "thread_id",
            span.thread_id.map(|id| id.to_string()).unwrap_or_default(),
        )
        .with("path", path_label(&span.path))
}

/// The span families: a duration histogram and a self-time counter, per span path and
/// thread.
fn span_families(families: &mut Families, session: &str, spans: &[SpanStats]) {
    if spans.is_empty() {
        return;
    }
    let duration = families.family(fixed(
        "span_duration",
        "span_duration",
        Some("seconds"),
        Kind::Histogram,
        "Duration of spans (children included) per span path and thread.",
    ));
    let self_time = families.family(fixed(
        "span_self",
        "span_self",
        Some("seconds"),
        Kind::Counter,
        "Time spent in spans themselves, children excluded, per span path and thread.",
    ));
    for span in spans {
        let labels = span_labels(session, span);
        if families.has(duration, &labels) {
            continue;
        }
        let mut cumulative = 0u64;
        let mut last_le: Option<u64> = None;
        let mut pending: Option<(u64, u64)> = None;
        let mut buckets: Vec<(u64, u64)> = Vec::with_capacity(span.histogram.len());
        for b in &span.histogram {
            cumulative = cumulative.saturating_add(b.count);
            match last_le {
                // Equal bounds would be one bucket twice: keep the later (larger) count.
                Some(le) if le >= b.le => {
                    if let Some(p) = pending.as_mut() {
                        p.1 = cumulative;
                    }
                }
                _ => {
                    if let Some(p) = pending.take() {
                        buckets.push(p);
                    }
                    pending = Some((b.le, cumulative));
                    last_le = Some(b.le);
                }
            }
        }
        buckets.extend(pending);
        // `+Inf` and `_count` are the same figure, and never below a finite bucket.
        let count = span.count.max(cumulative);
        for (le, c) in buckets {
            let l = labels.clone().with("le", format_value(seconds(le)));
            families.sample(duration, "_bucket", &l, &c.to_string());
        }
        families.sample(
            duration,
            "_bucket",
            &labels.clone().with("le", "+Inf"),
            &count.to_string(),
        );
        families.sample(
            duration,
            "_sum",
            &labels,
            &format_value(seconds(span.total_ns)),
        );
        families.sample(duration, "_count", &labels, &count.to_string());
        families.sample(self_time, "", &labels, &format_value(seconds(span.self_ns)));
    }
}

/// The family of a measurement: a gauge of its last value in the base unit, or a counter
/// for a metric of type `counter`.
fn metric_family(families: &mut Families, session: &str, m: &MetricReport) {
    let unit = Unit::parse(&m.unit);
    let base = unit.base_name();
    let suffix = base.as_deref();
    let counter = m.metric_type == MetricType::Counter;
    let kind = if counter { Kind::Counter } else { Kind::Gauge };
    let stem_name = format!("metric_{}", stem(&m.name, &m.unit, suffix, kind));
    let unit_text = unit_help(&m.unit, &unit);
    let help = if counter {
        format!(
            "Last value of the heimdall-perf counter {}{unit_text}.",
            m.name
        )
    } else {
        format!(
            "Last value of the heimdall-perf metric {}{unit_text}, of type {}.",
            m.name, m.metric_type
        )
    };
    let family = families.family(Spec {
        key: format!("metric:{}:{}:{}", m.name, m.unit, m.metric_type),
        stem: &stem_name,
        unit: suffix,
        kind,
        help,
    });
    let value = unit.to_base(m.last);
    if counter && !(value.is_finite() && value >= 0.0) {
        // A counter is a finite, non-negative total: there is nothing to say about this one.
        return;
    }
    let labels = Labels::session(session)
        .with("metric", m.name.clone())
        .with_user(&m.labels);
    families.sample(family, "", &labels, &format_value(value));
}

/// The family of a periodic series: a gauge of its last sample in the base unit.
fn series_family(families: &mut Families, session: &str, s: &TimeSeries) {
    let Some(last) = s.points.last() else {
        return;
    };
    let unit = Unit::parse(&s.unit);
    let base = unit.base_name();
    let suffix = base.as_deref();
    let stem_name = stem(&s.name, &s.unit, suffix, Kind::Gauge);
    let unit_text = unit_help(&s.unit, &unit);
    let family = families.family(Spec {
        key: format!("series:{}:{}", s.name, s.unit),
        stem: &stem_name,
        unit: suffix,
        kind: Kind::Gauge,
        help: format!(
            "Last sample of the series {}{unit_text} from the {} source.",
            s.name, s.source
        ),
    });
    let labels = Labels::session(session)
        .with("series", s.name.clone())
        .with("source", s.source.clone());
    families.sample(family, "", &labels, &format_value(unit.to_base(last.last)));
}

/// The recording diagnostics: a counter (or gauge) per diagnostic, and the sampler failures
/// per figure.
fn diagnostics_families(families: &mut Families, report: &Report) {
    let d = &report.diagnostics;
    let session = Labels::session(&report.session.name);
    for c in d.counters() {
        let kind = if c.monotonic {
            Kind::Counter
        } else {
            Kind::Gauge
        };
        let family = families.family(fixed(c.name, c.name, None, kind, c.help));
        families.sample(family, "", &session, &c.value.to_string());
    }
    if !d.sampler_failures.is_empty() {
        let failures = families.family(fixed(
            "sampler_failures",
            "sampler_failures",
            None,
            Kind::Counter,
            "Failed reads of a periodic-source figure (source/series), skipped.",
        ));
        for (figure, n) in &d.sampler_failures {
            let labels = session.clone().with("figure", figure.clone());
            families.sample(failures, "", &labels, &n.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::tests::valid_metric_name;
    use heimdall_perf_testkit::sample_report;

    #[test]
    fn histogram_buckets_become_cumulative_seconds() {
        let r = sample_report();
        let text = exposition(&r);
        let span = r
            .spans
            .iter()
            .find(|s| s.path == ["frame", "detect"])
            .unwrap();
        let labels = span_labels(&r.session.name, span).render();
        let prefix = format!(
            "heimdall_span_duration_seconds_bucket{}",
            &labels[..labels.len() - 1]
        );
        let buckets: Vec<(f64, u64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|rest| {
                let (le, value) = rest
                    .strip_prefix(",le=\"")
                    .and_then(|r| r.split_once("\"} "))
                    .unwrap();
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (le, value.parse().unwrap())
            })
            .collect();
        assert_eq!(buckets.len(), span.histogram.len() + 1);
        let mut running = 0;
        for (b, (le, value)) in span.histogram.iter().zip(&buckets) {
            running += b.count;
            assert_eq!(*value, running);
            assert_eq!(*le, b.le as f64 / 1e9);
        }
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, span.count)));
        assert!(buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert!(text.contains(&format!(
            "heimdall_span_duration_seconds_sum{labels} {}\n",
            format_value(span.total_ns as f64 / 1e9)
        )));
        assert!(text.contains(&format!(
            "heimdall_span_duration_seconds_count{labels} 600\n"
        )));
        assert!(text.contains(&format!(
            "heimdall_span_self_seconds_total{labels} {}\n",
            format_value(span.self_ns as f64 / 1e9)
        )));
    }

    #[test]
    fn gauges_carry_last_values_in_base_units() {
        let r = sample_report();
        let text = exposition(&r);
        let cpu = r
            .series("system.cpu.total")
            .unwrap()
            .points
            .last()
            .unwrap()
            .last;
        assert!(text.contains(&format!(
            "heimdall_system_cpu_total_ratio{{session=\"line-3 inspection\",series=\"system.cpu.total\",source=\"system\"}} {}\n",
            format_value(cpu / 100.0)
        )), "{text}");
        assert!(text.contains("# UNIT heimdall_system_memory_used_bytes bytes\n"));
        let latency = r.metric("frame_latency").unwrap().last;
        assert!(text.contains(&format!(
            "heimdall_metric_frame_latency_seconds{{session=\"line-3 inspection\",metric=\"frame_latency\"}} {}\n",
            format_value(latency / 1000.0)
        )));
        // The NaN of the hostile metric, with its label escaped-free but renamed-safe.
        assert!(text.contains(
            "heimdall_metric_sensor_temp_celsius{session=\"line-3 inspection\",metric=\"sensor | temp\",camera=\"cam-2 `left`\"} NaN\n"
        ), "{text}");
    }

    #[test]
    fn hostile_names_come_out_escaped() {
        let text = exposition(&sample_report());
        assert!(text.contains(
            "path=\"frame;odd | name `with` ticks\\nand <script>alert(1)</script> & \\\"quotes\\\"\""
        ));
        // One sample per line: no raw newline inside a label value.
        for line in text.lines() {
            assert!(
                line.starts_with('#') || line.starts_with("heimdall_"),
                "{line}"
            );
        }
    }

    #[test]
    fn every_family_is_declared_once_and_before_its_samples() {
        let text = exposition(&sample_report());
        let mut declared: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(valid_metric_name(name), "{name}");
                assert!(
                    declared.iter().all(|(n, _)| n != name),
                    "{name} declared twice"
                );
                declared.push((name.into(), kind.into()));
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let (family, kind) = declared.last().unwrap();
                let ok = match kind.as_str() {
                    "histogram" => [
                        format!("{family}_bucket"),
                        format!("{family}_sum"),
                        format!("{family}_count"),
                    ]
                    .contains(&name.to_string()),
                    "counter" => name == family && name.ends_with("_total"),
                    _ => name == family,
                };
                assert!(ok, "sample {name} under family {family} ({kind})");
            }
        }
        assert_eq!(text.lines().last(), Some("# EOF"));
    }

    #[test]
    fn colliding_names_get_distinct_families() {
        let mut r = sample_report();
        let base = r.metrics[0].clone();
        r.metrics.clear();
        r.series.truncate(1);
        for name in ["x.y", "x_y"] {
            let mut m = base.clone();
            m.name = name.into();
            m.unit = String::new();
            r.metrics.push(m);
        }
        let mut labelled = base.clone();
        labelled.name = "x.y".into();
        labelled.unit = String::new();
        labelled.labels.insert("le".into(), "x".into());
        labelled.labels.insert("metric".into(), "y".into());
        labelled.labels.insert("session".into(), "z".into());
        r.metrics.push(labelled);
        // A series whose name is the histogram's.
        let mut clash = r.series[0].clone();
        clash.name = "span.duration.seconds".into();
        clash.unit = String::new();
        r.series.push(clash);

        let text = exposition(&r);
        assert!(
            text.contains("# TYPE heimdall_metric_x_y gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE heimdall_metric_x_y_2 gauge\n"),
            "{text}"
        );
        assert!(text.contains(
            "heimdall_metric_x_y{session=\"line-3 inspection\",metric=\"x.y\",label_le=\"x\",metric_2=\"y\",session_2=\"z\"}"
        ), "{text}");
        assert!(
            text.contains("# TYPE heimdall_span_duration_seconds_2 gauge\n"),
            "{text}"
        );
        assert!(
            !text.contains("# TYPE heimdall_span_duration_seconds gauge"),
            "{text}"
        );
    }

    #[test]
    fn counters_skip_values_a_counter_cannot_have() {
        let mut r = Report::empty("s");
        let mut m = sample_report().metrics[0].clone();
        m.name = "frames_total".into();
        m.unit = String::new();
        m.metric_type = MetricType::Counter;
        m.last = 1234.0;
        r.metrics.push(m.clone());
        let text = exposition(&r);
        assert!(text.contains("# TYPE heimdall_metric_frames_total counter\n"));
        assert!(text.contains(
            "heimdall_metric_frames_total{session=\"s\",metric=\"frames_total\"} 1234\n"
        ));
        m.last = f64::NAN;
        let mut r = Report::empty("s");
        r.metrics.push(m);
        assert!(!exposition(&r).contains("heimdall_metric_frames"));
    }

    #[test]
    fn a_name_with_a_semicolon_is_not_a_path() {
        let mut r = sample_report();
        let template = r.spans[0].clone();
        r.spans = [vec!["a;b"], vec!["a", "b"], vec!["a\\;b"]]
            .into_iter()
            .map(|path| {
                let mut s = template.clone();
                s.path = path.into_iter().map(String::from).collect();
                s
            })
            .collect();
        let text = exposition(&r);
        let paths: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("heimdall_span_duration_seconds_count{"))
            .filter_map(|l| l.split("path=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(paths, [r"a\\;b", "a;b", r"a\\\\\\;b"], "{text}");
    }
}
