//! Which metric families a report gives, and their samples: the session (info, start,
//! duration, active), spans (a duration histogram and a self-time counter per path and
//! thread), frames (counters, gauges and histograms per source and stage), measurements (a
//! gauge of the last value, or a counter), periodic series (a gauge of the last sample) and
//! the recording diagnostics. Every sample carries the session's labels. Values are
//! converted to base units through [`heimdall_perf_core::units::Unit`].

use heimdall_perf_core::stats::HistogramBucket;
use heimdall_perf_core::units::Unit;
use heimdall_perf_core::{
    Distribution, FrameReport, MetricReport, MetricType, Report, SpanStats, TimeSeries,
};

use crate::encoding::{format_value, Families, Kind, Labels, Spec};
use crate::live::OpenMetricsOptions;
use crate::names::{path_label, stem};

/// The OpenMetrics text of `report` (the report file).
#[cfg(test)]
pub(crate) fn exposition(report: &Report) -> String {
    exposition_of(std::slice::from_ref(report), &OpenMetricsOptions::default())
}

/// The exposition text of `reports` (one per session, each family declared once for all
/// of them) with `options`.
pub(crate) fn exposition_of(reports: &[Report], options: &OpenMetricsOptions) -> String {
    let mut families = Families::new(options.flavor, options.live);
    for report in reports {
        // The labels every sample starts with: the session's name and its labels.
        let base = Labels::of_session(&report.session.name, &report.session.labels);
        session_families(&mut families, &base, report, options.live);
        if !options.live {
            span_families(&mut families, &base, report.spans.iter().map(|s| (s, true)));
        } else if options.per_thread {
            let merged = per_thread_name(&report.spans);
            span_families(&mut families, &base, merged.iter().map(|s| (s, false)));
        } else {
            span_families(
                &mut families,
                &base,
                report.span_totals.iter().map(|s| (s, false)),
            );
        }
        frame_families(&mut families, &base, &report.frames);
        for m in &report.metrics {
            metric_family(&mut families, &base, m);
        }
        for s in &report.series {
            series_family(&mut families, &base, s);
        }
        diagnostics_families(&mut families, &base, report);
    }
    families.finish()
}

/// The spans of `spans` merged per thread name and path (thread ids dropped): threads that
/// share a name (a pool) are one series, however many come and go.
fn per_thread_name(spans: &[SpanStats]) -> Vec<SpanStats> {
    use std::collections::BTreeMap;
    /// A merged span and its bucket counts by bound, per (thread name, path).
    type Merged = BTreeMap<(String, Vec<String>), (SpanStats, BTreeMap<u64, u64>)>;
    let mut merged = Merged::new();
    for s in spans {
        let key = (s.thread.clone().unwrap_or_default(), s.path.clone());
        let (m, buckets) = merged.entry(key).or_insert_with(|| {
            let mut m = s.clone();
            m.thread_id = None;
            m.count = 0;
            m.total_ns = 0;
            m.self_ns = 0;
            (m, BTreeMap::new())
        });
        m.count = m.count.saturating_add(s.count);
        m.total_ns = m.total_ns.saturating_add(s.total_ns);
        m.self_ns = m.self_ns.saturating_add(s.self_ns);
        for b in &s.histogram {
            let c = buckets.entry(b.le).or_insert(0);
            *c = c.saturating_add(b.count);
        }
    }
    merged
        .into_values()
        .map(|(mut m, buckets)| {
            m.histogram = buckets
                .into_iter()
                .map(|(le, count)| HistogramBucket { le, count })
                .collect();
            m
        })
        .collect()
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
fn session_families(families: &mut Families, base: &Labels, report: &Report, live: bool) {
    let s = &report.session;
    let info = families.family(fixed(
        "session_info",
        "session_info",
        None,
        Kind::Gauge,
        "The heimdall-perf session this report describes (always 1).",
    ));
    let labels = if live {
        // A new pid and start time at every restart would be a new series each time.
        base.clone().with("host", s.host.clone())
    } else {
        base.clone()
            .with("host", s.host.clone())
            .with("pid", s.pid.to_string())
            .with("started_at", s.started_at.clone())
    };
    let labels = labels
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
    families.sample(start, "", base, &format_value(seconds(s.start_unix_ns)));

    let duration = families.family(fixed(
        "session_duration",
        "session_duration",
        Some("seconds"),
        Kind::Gauge,
        "Time from the session start to its stop (or to the snapshot while running).",
    ));
    families.sample(duration, "", base, &format_value(seconds(s.duration_ns)));

    let active = families.family(fixed(
        "session_active",
        "session_active",
        None,
        Kind::Gauge,
        "1 if the session was still running when the report was taken, else 0.",
    ));
    families.sample(active, "", base, if s.active { "1" } else { "0" });
}

/// The labels of a span's samples: the session's (`base`), thread, thread id and path.
pub(crate) fn span_labels(base: &Labels, span: &SpanStats) -> Labels {
    base.clone()
        .with("thread", span.thread.clone().unwrap_or_default())
        .with(
            "thread_id",
            span.thread_id.map(|id| id.to_string()).unwrap_or_default(),
        )
        .with("path", path_label(&span.path))
}

/// The labels of a span of the live exposition: the session's, the thread's name if the
/// span has one (per thread), and the path.
fn live_span_labels(base: &Labels, span: &SpanStats) -> Labels {
    let labels = match &span.thread {
        Some(thread) => base.clone().with("thread", thread.clone()),
        None => base.clone(),
    };
    labels.with("path", path_label(&span.path))
}

/// The span families: a duration histogram and a self-time counter, per span path and
/// thread.
/// Each span comes with whether to write its thread and thread id (the report file) or
/// the live labels.
fn span_families<'a>(
    families: &mut Families,
    base: &Labels,
    spans: impl Iterator<Item = (&'a SpanStats, bool)>,
) {
    let mut spans = spans.peekable();
    if spans.peek().is_none() {
        return;
    }
    // The live exposition merges threads (or keeps their names only).
    let per = if families.ladder().is_some() {
        "per span path"
    } else {
        "per span path and thread"
    };
    let duration = families.family(fixed(
        "span_duration",
        "span_duration",
        Some("seconds"),
        Kind::Histogram,
        &format!("Duration of spans (children included) {per}."),
    ));
    let self_time = families.family(fixed(
        "span_self",
        "span_self",
        Some("seconds"),
        Kind::Counter,
        &format!("Time spent in spans themselves, children excluded, {per}."),
    ));
    for (span, with_thread_id) in spans {
        let labels = if with_thread_id {
            span_labels(base, span)
        } else {
            live_span_labels(base, span)
        };
        if histogram(
            families,
            duration,
            &labels,
            &span.histogram,
            span.count,
            seconds(span.total_ns),
        ) {
            families.sample(self_time, "", &labels, &format_value(seconds(span.self_ns)));
        }
    }
}

/// Writes the histogram samples of `family` for `labels`: a cumulative `_bucket` per bound
/// of `buckets` (nanoseconds, written in seconds) and `+Inf`, `_sum` (`sum_seconds`) and
/// `_count` (`count`, or the buckets' total if larger). `false`, writing nothing, when the
/// family already has this label set.
fn histogram(
    families: &mut Families,
    family: usize,
    labels: &Labels,
    buckets: &[HistogramBucket],
    count: u64,
    sum_seconds: f64,
) -> bool {
    if families.has(family, labels) {
        return false;
    }
    if let Some(ladder) = families.ladder() {
        return ladder_histogram(
            families,
            family,
            labels,
            ladder,
            buckets,
            count,
            sum_seconds,
        );
    }
    let mut cumulative = 0u64;
    let mut last_le: Option<u64> = None;
    let mut pending: Option<(u64, u64)> = None;
    let mut written: Vec<(u64, u64)> = Vec::with_capacity(buckets.len());
    for b in buckets {
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
                    written.push(p);
                }
                pending = Some((b.le, cumulative));
                last_le = Some(b.le);
            }
        }
    }
    written.extend(pending);
    // `+Inf` and `_count` are the same figure, and never below a finite bucket.
    let count = count.max(cumulative);
    for (le, c) in written {
        let l = labels.clone().with("le", format_value(seconds(le)));
        families.sample(family, "_bucket", &l, &c.to_string());
    }
    families.sample(
        family,
        "_bucket",
        &labels.clone().with("le", "+Inf"),
        &count.to_string(),
    );
    families.sample(family, "_sum", labels, &format_value(sum_seconds));
    families.sample(family, "_count", labels, &count.to_string());
    true
}

/// [`histogram`] on the fixed `ladder` (nanoseconds): a `_bucket` for every bound of the
/// ladder, whatever was recorded, counting the values of `buckets` at or below it (a bound
/// of `buckets` off the ladder counts in the next bound above it); values past the ladder
/// count in `+Inf` only.
fn ladder_histogram(
    families: &mut Families,
    family: usize,
    labels: &Labels,
    ladder: &[u64],
    buckets: &[HistogramBucket],
    count: u64,
    sum_seconds: f64,
) -> bool {
    let mut cumulative = 0u64;
    let mut next = buckets.iter().peekable();
    for &le in ladder {
        while let Some(b) = next.next_if(|b| b.le <= le) {
            cumulative = cumulative.saturating_add(b.count);
        }
        let l = labels.clone().with("le", format_value(seconds(le)));
        families.sample(family, "_bucket", &l, &cumulative.to_string());
    }
    let count = count.max(cumulative);
    families.sample(
        family,
        "_bucket",
        &labels.clone().with("le", "+Inf"),
        &count.to_string(),
    );
    families.sample(family, "_sum", labels, &format_value(sum_seconds));
    families.sample(family, "_count", labels, &count.to_string());
    true
}

/// [`histogram`] for a [`Distribution`] of nanoseconds.
fn distribution(families: &mut Families, family: usize, labels: &Labels, d: &Distribution) {
    histogram(
        families,
        family,
        labels,
        &d.histogram,
        d.summary.count,
        d.summary.sum / 1e9,
    );
}

/// The frame families, per source (label `source`): frames begun, finished, dropped (by
/// `reason`) and in flight; for a source with a frame budget, the budget, frames missed, the
/// miss ratio and the longest miss streak; latency and birth-interval (jitter) histograms;
/// per stage (label `stage`) service and queue time histograms, the stage budget and its
/// overruns; and the missed frames blamed on each `cause`. Incidents are not written: their
/// detail (frame ids, threads) has no bounded label set.
fn frame_families(families: &mut Families, base: &Labels, frames: &[FrameReport]) {
    if frames.is_empty() {
        return;
    }
    let counter = |key, help| fixed(key, key, None, Kind::Counter, help);
    let begun = families.family(counter(
        "frames_begun",
        "Frames begun (frame!, FrameSource::begin) per source.",
    ));
    let finished = families.family(counter("frames_finished", "Frames finished per source."));
    let dropped = families.family(counter(
        "frames_dropped",
        "Frames dropped per source, by the reason given to drop_frame.",
    ));
    let in_flight = families.family(fixed(
        "frames_in_flight",
        "frames_in_flight",
        None,
        Kind::Gauge,
        "Frames begun and neither finished nor dropped when the report was taken.",
    ));
    let budget = families.family(fixed(
        "frame_budget",
        "frame_budget",
        Some("seconds"),
        Kind::Gauge,
        "The frame budget of the source, capture to finish (sources with a budget only).",
    ));
    let missed = families.family(counter(
        "frames_missed",
        "Finished frames whose latency exceeded the source's budget (sources with a budget only).",
    ));
    let miss_ratio = families.family(fixed(
        "frame_miss",
        "frame_miss",
        Some("ratio"),
        Kind::Gauge,
        "Missed frames / finished frames of the source (sources with a budget only).",
    ));
    let streak = families.family(fixed(
        "frame_longest_miss_streak",
        "frame_longest_miss_streak",
        None,
        Kind::Gauge,
        "The longest run of consecutive missed frames of the source (sources with a budget only).",
    ));
    let blamed = families.family(counter(
        "frames_missed_by_cause",
        "Missed frames of the source blamed on each cause: a stage, the wait before one \
         (queue before <stage>), or unstaged (the rule: heimdall_perf_core::Attribution).",
    ));
    let latency = families.family(fixed(
        "frame_latency",
        "frame_latency",
        Some("seconds"),
        Kind::Histogram,
        "Latency of finished frames, capture to finish, per source.",
    ));
    let interval = families.family(fixed(
        "frame_interval",
        "frame_interval",
        Some("seconds"),
        Kind::Histogram,
        "Intervals between consecutive frame births of the source (jitter).",
    ));
    let service = families.family(fixed(
        "frame_stage_service",
        "frame_stage_service",
        Some("seconds"),
        Kind::Histogram,
        "Service time of each stage of the source's frames: how long the stage ran.",
    ));
    let queue = families.family(fixed(
        "frame_stage_queue",
        "frame_stage_queue",
        Some("seconds"),
        Kind::Histogram,
        "Queue time before each stage of the source's frames: from the end of the frame's \
         previous stage (or its capture) to the stage's start.",
    ));
    let stage_budget = families.family(fixed(
        "frame_stage_budget",
        "frame_stage_budget",
        Some("seconds"),
        Kind::Gauge,
        "The budget of each stage that has one.",
    ));
    let over_budget = families.family(counter(
        "frame_stage_over_budget",
        "Runs of each stage longer than its budget (stages with a budget only).",
    ));

    for f in frames {
        let src = base.clone().with("source", f.source.clone());
        if families.has(begun, &src) {
            // A second entry of the same source (a report edited by hand): the first counts.
            continue;
        }
        families.sample(begun, "", &src, &f.count.to_string());
        families.sample(finished, "", &src, &f.finished.to_string());
        for (reason, n) in &f.dropped {
            let l = src.clone().with("reason", reason.clone());
            families.sample(dropped, "", &l, &n.to_string());
        }
        families.sample(in_flight, "", &src, &f.in_flight.to_string());
        if let Some(b) = f.budget_ns {
            families.sample(budget, "", &src, &format_value(seconds(b)));
            families.sample(missed, "", &src, &f.missed.to_string());
            families.sample(miss_ratio, "", &src, &format_value(f.miss_rate));
            families.sample(streak, "", &src, &f.longest_miss_streak.to_string());
        }
        for a in &f.attribution {
            let l = src.clone().with("cause", a.cause.clone());
            families.sample(blamed, "", &l, &a.missed.to_string());
        }
        distribution(families, latency, &src, &f.latency);
        distribution(families, interval, &src, &f.jitter);
        for stage in &f.stages {
            let l = src.clone().with("stage", stage.name.clone());
            if families.has(service, &l) {
                continue;
            }
            distribution(families, service, &l, &stage.service);
            distribution(families, queue, &l, &stage.queue);
            if let Some(b) = stage.budget_ns {
                families.sample(stage_budget, "", &l, &format_value(seconds(b)));
                families.sample(over_budget, "", &l, &stage.over_budget.to_string());
            }
        }
    }
}

/// The family of a measurement: a gauge of its last value in the base unit, or a counter
/// for a metric of type `counter`.
fn metric_family(families: &mut Families, session: &Labels, m: &MetricReport) {
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
    let labels = session
        .clone()
        .with("metric", m.name.clone())
        .with_user(&m.labels);
    families.sample(family, "", &labels, &format_value(value));
}

/// The family of a periodic series: a gauge of its last sample in the base unit.
fn series_family(families: &mut Families, session: &Labels, s: &TimeSeries) {
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
    let labels = session
        .clone()
        .with("series", s.name.clone())
        .with("source", s.source.clone());
    families.sample(family, "", &labels, &format_value(unit.to_base(last.last)));
}

/// The recording diagnostics: a counter (or gauge) per diagnostic, and the sampler failures
/// per figure.
fn diagnostics_families(families: &mut Families, session: &Labels, report: &Report) {
    let d = &report.diagnostics;
    for c in d.counters() {
        let kind = if c.monotonic {
            Kind::Counter
        } else {
            Kind::Gauge
        };
        let family = families.family(fixed(c.name, c.name, None, kind, c.help));
        families.sample(family, "", session, &c.value.to_string());
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
        let base = Labels::of_session(&r.session.name, &r.session.labels);
        let labels = span_labels(&base, span).render();
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

    /// The labels every sample of the sample report starts with: its session and its
    /// labels, the hostile one escaped.
    const SAMPLE_LABELS: &str =
        r#"session="line-3 inspection",line="3",station="cell-7 <b>\"east\"</b>""#;

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
            "heimdall_system_cpu_total_ratio{{{SAMPLE_LABELS},series=\"system.cpu.total\",source=\"system\"}} {}\n",
            format_value(cpu / 100.0)
        )), "{text}");
        assert!(text.contains("# UNIT heimdall_system_memory_used_bytes bytes\n"));
        let latency = r.metric("frame_latency").unwrap().last;
        assert!(text.contains(&format!(
            "heimdall_metric_frame_latency_seconds{{{SAMPLE_LABELS},metric=\"frame_latency\"}} {}\n",
            format_value(latency / 1000.0)
        )));
        // The NaN of the hostile metric, with its label escaped-free but renamed-safe.
        assert!(text.contains(&format!(
            "heimdall_metric_sensor_temp_celsius{{{SAMPLE_LABELS},metric=\"sensor | temp\",camera=\"cam-2 `left`\"}} NaN\n"
        )), "{text}");
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
        // A metric label named as a session label: renamed too.
        labelled.labels.insert("line".into(), "w".into());
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
        assert!(text.contains(&format!(
            "heimdall_metric_x_y{{{SAMPLE_LABELS},metric=\"x.y\",label_le=\"x\",line_2=\"w\",metric_2=\"y\",session_2=\"z\"}}"
        )), "{text}");
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
