//! The page model: everything the askama template shows, computed from a [`Report`].
//!
//! Labels here are plain text; the template escapes them. Only two fields hold markup that
//! the template inserts as is: the notes' HTML (from [`crate::markdown`], which lets no raw
//! HTML through) and the flamegraph's `data:` URL (base64, no markup at all).

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use heimdall_perf_core::{series_names as sn, MetricReport, SpanStats, TimeSeries};
use heimdall_perf_core::{MetricType, Report};

use heimdall_perf_core::units::Unit;

use crate::chart::{self, Histogram, LineChart, LineInput, Timeline, TimelineInput};
use crate::frame_view::{self, FrameSourceView};
use crate::station_view::{self, StationsView};
use crate::timestamp::utc_time;
use crate::STYLE;

/// Most latency histograms drawn (the spans with the largest total time).
pub(crate) const MAX_HISTOGRAMS: usize = 12;
/// Most points drawn in one chart, all its lines together.
pub(crate) const CHART_POINT_BUDGET: usize = 1000;
/// Most points drawn per metric chart (these charts are half as wide).
pub(crate) const METRIC_POINT_BUDGET: usize = 250;
/// Most recent spans drawn on the timeline.
pub(crate) const MAX_TIMELINE_SPANS: usize = 1000;

/// A summary card.
#[derive(Debug, Clone)]
pub(crate) struct Card {
    /// What it shows.
    pub label: String,
    /// The figure.
    pub value: String,
    /// Context under the figure.
    pub detail: String,
}

/// A number in a table: the text shown and the value it sorts by.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    /// Shown.
    pub text: String,
    /// Sort key (a number as text; `NaN` sorts last).
    pub sort: String,
}

impl Cell {
    pub(crate) fn new(text: String, sort: f64) -> Self {
        Cell {
            text,
            sort: if sort.is_finite() {
                format!("{sort}")
            } else {
                "NaN".to_string()
            },
        }
    }

    /// A duration; sorts by whole nanoseconds (shorter text, same order).
    pub(crate) fn duration(ns: f64) -> Self {
        Cell::new(STYLE.duration(ns), ns.round())
    }
}

/// A row of the span table.
#[derive(Debug, Clone)]
pub(crate) struct SpanRow {
    /// The span's own name.
    pub name: String,
    /// Its ancestors, joined by ` › ` (empty for a root span).
    pub parents: String,
    /// Full path, for the filter box.
    pub path: String,
    /// Threads that recorded it.
    pub threads: String,
    /// Numbers: count, rate, total, self, mean, p50, p95, p99, max.
    pub cells: Vec<Cell>,
}

/// A latency histogram with its title.
#[derive(Debug, Clone)]
pub(crate) struct SpanHistogram {
    /// The span's name.
    pub name: String,
    /// Its full path.
    pub path: String,
    /// Key figures.
    pub stats: String,
    /// The chart.
    pub chart: Histogram,
}

/// A row of the metrics table.
#[derive(Debug, Clone)]
pub(crate) struct MetricRow {
    /// Name.
    pub name: String,
    /// Labels as `k=v` pairs.
    pub labels: String,
    /// Kind.
    pub kind: String,
    /// Unit.
    pub unit: String,
    /// Numbers: last, count, mean, min, p50, p95, p99, max, non-finite.
    pub cells: Vec<Cell>,
}

/// A note.
#[derive(Debug, Clone)]
pub(crate) struct NoteView {
    /// When, from the session start.
    pub at: String,
    /// Rendered Markdown (raw HTML escaped).
    pub html: String,
}

/// The flamegraph section.
#[derive(Debug, Clone)]
pub(crate) enum Flame {
    /// Embedded: the SVG as a `data:` URL, and its height in pixels.
    Embedded {
        /// `data:image/svg+xml;base64,…`
        src: String,
        /// Frame height.
        height: u32,
    },
    /// Not drawn, and why.
    Missing(String),
}

/// One fact in the page header.
#[derive(Debug, Clone)]
pub(crate) struct Fact {
    /// Label.
    pub label: &'static str,
    /// Value.
    pub value: String,
}

/// The whole page.
#[derive(Template)]
#[template(path = "report.html")]
pub(crate) struct Page {
    /// Session name.
    pub title: String,
    /// Header facts.
    pub facts: Vec<Fact>,
    /// The session's labels, key and value.
    pub labels: Vec<(String, String)>,
    /// Summary cards.
    pub cards: Vec<Card>,
    /// Things the reader should know about the recording.
    pub warnings: Vec<String>,
    /// The Stations section of a merged report (none: a single run, no section).
    pub stations: Option<StationsView>,
    /// The Frames section, one entry per frame source (none: no section).
    pub frames: Vec<FrameSourceView>,
    /// How misses are attributed (shown under each attribution table).
    pub attribution_rule: &'static str,
    /// Span table rows.
    pub span_rows: Vec<SpanRow>,
    /// Latency histograms.
    pub histograms: Vec<SpanHistogram>,
    /// How many spans in the table have no histogram, when some have none.
    pub histograms_omitted: Option<String>,
    /// Charts of the periodic series.
    pub series_charts: Vec<LineChart>,
    /// Charts of the metrics' points.
    pub metric_charts: Vec<LineChart>,
    /// Metrics table rows.
    pub metric_rows: Vec<MetricRow>,
    /// Timeline of recent spans.
    pub timeline: Option<Timeline>,
    /// What the timeline shows.
    pub timeline_note: String,
    /// The flamegraph section, when a renderer is configured.
    pub flame: Option<Flame>,
    /// Notes.
    pub notes: Vec<NoteView>,
    /// `heimdall-perf-report-html <version>`.
    pub generator: String,
}

/// `v` in the unit named `unit`, as [`Style::value`](heimdall_perf_core::units::Style::value)
/// writes it.
fn in_unit(v: f64, unit: &str) -> String {
    STYLE.value(v, &Unit::parse(unit))
}

/// Largest finite value of a series (bucket maxima).
fn peak(series: &TimeSeries) -> Option<f64> {
    series
        .points
        .iter()
        .flat_map(|p| [p.max, p.mean, p.last])
        .filter(|v| v.is_finite())
        .reduce(f64::max)
}

fn throughput_card(report: &Report) -> Option<Card> {
    let candidates: Vec<&MetricReport> = report
        .metrics
        .iter()
        .filter(|m| m.metric_type == MetricType::Throughput && m.summary.count > 0)
        .collect();
    let is_fps = |m: &MetricReport| {
        m.unit.eq_ignore_ascii_case("fps") || m.name.to_ascii_lowercase().contains("fps")
    };
    let m = candidates
        .iter()
        .find(|m| is_fps(m))
        .or_else(|| candidates.first())?;
    let unit = Unit::parse(if m.unit.trim().is_empty() {
        "/s"
    } else {
        &m.unit
    });
    // Figures in a known unit are scaled (MB/s → MiB/s) and so carry it; others are plain.
    let figure = |v: f64| match unit.quantity() {
        Some(_) => STYLE.value(v, &unit),
        None => STYLE.number(v),
    };
    Some(Card {
        label: if is_fps(m) {
            "Mean FPS".to_string()
        } else {
            format!("Mean {}", m.name)
        },
        value: STYLE.value(m.summary.mean, &unit),
        detail: format!(
            "{} · min {} · max {} over {} samples",
            m.name,
            figure(m.summary.min),
            figure(m.summary.max),
            STYLE.count(m.summary.count)
        ),
    })
}

fn cpu_card(report: &Report) -> Option<Card> {
    let machine = report
        .series(sn::SYSTEM_CPU_TOTAL)
        .and_then(|s| Some((s, peak(s)?)));
    let process = report
        .series(sn::PROCESS_CPU)
        .and_then(|s| Some((s, peak(s)?)));
    match (machine, process) {
        (Some((s, p)), process) => {
            let mut detail = match s.overview().map(|o| o.mean) {
                Some(m) => format!("machine, mean {}", in_unit(m, &s.unit)),
                None => "machine".to_string(),
            };
            if let Some((ps, pp)) = process {
                detail.push_str(&format!(
                    " · process peak {} of one core",
                    in_unit(pp, &ps.unit)
                ));
            }
            Some(Card {
                label: "Peak CPU".into(),
                value: in_unit(p, &s.unit),
                detail,
            })
        }
        (None, Some((s, p))) => Some(Card {
            label: "Peak process CPU".into(),
            value: in_unit(p, &s.unit),
            detail: "% of one core".into(),
        }),
        (None, None) => None,
    }
}

fn memory_card(report: &Report) -> Option<Card> {
    let used = report
        .series(sn::SYSTEM_MEMORY_USED)
        .and_then(|s| Some((s, peak(s)?)));
    let resident = report
        .series(sn::PROCESS_MEMORY_RESIDENT)
        .and_then(|s| Some((s, peak(s)?)));
    match (used, resident) {
        (Some((s, p)), resident) => {
            let total = report
                .series(sn::SYSTEM_MEMORY_TOTAL)
                .and_then(|t| Some(in_unit(peak(t)?, &t.unit)));
            let mut detail = match total {
                Some(total) => format!("machine, of {total}"),
                None => "machine".to_string(),
            };
            if let Some((rs, rp)) = resident {
                detail.push_str(&format!(" · process peak {}", in_unit(rp, &rs.unit)));
            }
            Some(Card {
                label: "Peak memory".into(),
                value: in_unit(p, &s.unit),
                detail,
            })
        }
        (None, Some((s, p))) => Some(Card {
            label: "Peak process memory".into(),
            value: in_unit(p, &s.unit),
            detail: "resident".into(),
        }),
        (None, None) => None,
    }
}

fn cards(report: &Report, spans: &[SpanStats]) -> Vec<Card> {
    let s = &report.session;
    let mut cards = vec![
        Card {
            label: "Duration".into(),
            value: STYLE.duration(s.duration_ns as f64),
            detail: format!(
                "started {}{}",
                utc_time(&s.started_at),
                if s.active { " · still running" } else { "" }
            ),
        },
        Card {
            label: "Spans recorded".into(),
            value: STYLE.count(report.span_count()),
            detail: format!(
                "{} span paths · {} threads",
                STYLE.count(spans.len() as u64),
                STYLE.count(report.threads.len() as u64)
            ),
        },
    ];
    cards.extend(throughput_card(report));
    cards.extend(cpu_card(report));
    cards.extend(memory_card(report));
    cards
}

fn warnings(report: &Report) -> Vec<String> {
    let d = &report.diagnostics;
    let mut w = Vec::new();
    if report.session.active {
        w.push("The session was still running when this report was taken.".to_string());
    }
    w.extend(d.warnings());
    w
}

/// A rate given per second, per minute or per hour, whichever reads best.
fn rate_text(per_second: f64) -> String {
    if !per_second.is_finite() {
        "—".to_string()
    } else if per_second == 0.0 || per_second >= 1.0 {
        format!("{} /s", STYLE.number(per_second))
    } else if per_second * 60.0 >= 1.0 {
        format!("{} /min", STYLE.number(per_second * 60.0))
    } else {
        format!("{} /h", STYLE.number(per_second * 3600.0))
    }
}

fn span_rows(report: &Report, spans: &[SpanStats]) -> Vec<SpanRow> {
    let mut threads: HashMap<&[String], Vec<&str>> = HashMap::new();
    for s in &report.spans {
        if let Some(t) = &s.thread {
            let list = threads.entry(s.path.as_slice()).or_default();
            if !list.contains(&t.as_str()) {
                list.push(t);
            }
        }
    }
    let seconds = report.session.duration_ns as f64 / 1e9;
    spans
        .iter()
        .map(|s| {
            let d = &s.duration;
            let rate = if seconds > 0.0 {
                s.count as f64 / seconds
            } else {
                f64::NAN
            };
            let rate_text = rate_text(rate);
            let thread = match (&s.thread, threads.get(s.path.as_slice())) {
                (Some(t), _) => t.clone(),
                (None, Some(list)) => list.join(", "),
                (None, None) => String::new(),
            };
            let parents = s
                .path
                .split_last()
                .map(|(_, p)| p.join(" › "))
                .unwrap_or_default();
            SpanRow {
                name: s.name().to_string(),
                parents,
                path: s.path.join(" › "),
                threads: thread,
                cells: vec![
                    Cell::new(STYLE.count(s.count), s.count as f64),
                    Cell::new(rate_text, rate),
                    Cell::duration(s.total_ns as f64),
                    Cell::duration(s.self_ns as f64),
                    Cell::duration(d.mean),
                    Cell::duration(d.p50),
                    Cell::duration(d.p95),
                    Cell::duration(d.p99),
                    Cell::duration(d.max),
                ],
            }
        })
        .collect()
}

fn histograms(spans: &[SpanStats]) -> Vec<SpanHistogram> {
    let mut order: Vec<&SpanStats> = spans.iter().collect();
    order.sort_by_key(|s| std::cmp::Reverse(s.total_ns));
    order
        .into_iter()
        .take(MAX_HISTOGRAMS)
        .map(|s| {
            let d = &s.duration;
            SpanHistogram {
                name: s.name().to_string(),
                path: s.path.join(" › "),
                stats: format!(
                    "{} spans · mean {} · p50 {} · p99 {} · max {}",
                    STYLE.count(s.count),
                    STYLE.duration(d.mean),
                    STYLE.duration(d.p50),
                    STYLE.duration(d.p99),
                    STYLE.duration(d.max)
                ),
                chart: chart::histogram(
                    &s.histogram,
                    &[("p50", d.p50), ("p95", d.p95), ("p99", d.p99)],
                    (540.0, 230.0),
                ),
            }
        })
        .collect()
}

/// A chart grouping several series.
struct Group {
    id: &'static str,
    title: &'static str,
    /// Picks a series and gives its legend label and whether it is drawn dashed.
    pick: fn(&str) -> Option<(String, bool)>,
}

const GROUPS: &[Group] = &[
    Group {
        id: "cpu",
        title: "CPU usage",
        pick: |n| match n {
            sn::SYSTEM_CPU_TOTAL => Some(("machine (all cores)".into(), false)),
            sn::PROCESS_CPU => Some(("this process (% of one core)".into(), false)),
            _ => None,
        },
    },
    Group {
        id: "memory",
        title: "Machine memory",
        pick: |n| match n {
            sn::SYSTEM_MEMORY_USED => Some(("used".into(), false)),
            sn::SYSTEM_MEMORY_AVAILABLE => Some(("available".into(), false)),
            sn::SYSTEM_SWAP_USED => Some(("swap used".into(), false)),
            sn::SYSTEM_MEMORY_TOTAL => Some(("total".into(), true)),
            _ => None,
        },
    },
    Group {
        id: "process-memory",
        title: "Process memory (resident)",
        pick: |n| (n == sn::PROCESS_MEMORY_RESIDENT).then(|| ("resident".into(), false)),
    },
    Group {
        id: "cores",
        title: "CPU usage per core",
        pick: |n| {
            n.strip_prefix(sn::SYSTEM_CPU_CORE_PREFIX)
                .map(|c| (format!("core {c}"), false))
        },
    },
    Group {
        id: "load",
        title: "Load average",
        pick: |n| match n {
            sn::SYSTEM_LOAD_1 => Some(("1 min".into(), false)),
            sn::SYSTEM_LOAD_5 => Some(("5 min".into(), false)),
            sn::SYSTEM_LOAD_15 => Some(("15 min".into(), false)),
            _ => None,
        },
    },
    Group {
        id: "network",
        title: "Network",
        pick: |n| {
            n.strip_prefix(sn::NETWORK_PREFIX)
                .map(|rest| (rest.to_string(), false))
        },
    },
    Group {
        id: "disk",
        title: "Process disk I/O",
        pick: |n| match n {
            sn::PROCESS_DISK_READ => Some(("read".into(), false)),
            sn::PROCESS_DISK_WRITE => Some(("write".into(), false)),
            _ => None,
        },
    },
];

fn per_line_budget(lines: usize) -> usize {
    (CHART_POINT_BUDGET / lines.max(1)).max(50)
}

fn series_charts(report: &Report) -> Vec<LineChart> {
    let mut used = vec![false; report.series.len()];
    let mut charts = Vec::new();
    for g in GROUPS {
        let mut unit: Option<&str> = None;
        let mut inputs = Vec::new();
        for (i, s) in report.series.iter().enumerate() {
            if used[i] {
                continue;
            }
            let Some((label, dashed)) = (g.pick)(&s.name) else {
                continue;
            };
            // A group shares one axis: series in another unit get their own chart.
            if unit.is_some_and(|u| u != s.unit) {
                continue;
            }
            unit = Some(&s.unit);
            used[i] = true;
            inputs.push(LineInput {
                label,
                points: &s.points,
                dashed,
            });
        }
        if let Some(unit) = unit {
            charts.push(chart::line_chart(
                format!("series-{}", g.id),
                g.title.to_string(),
                unit,
                &inputs,
                (1100.0, 260.0),
                per_line_budget(inputs.len()),
            ));
        }
    }
    for (i, s) in report.series.iter().enumerate() {
        if used[i] {
            continue;
        }
        let title = if s.source.is_empty() || s.source == "system" {
            s.name.clone()
        } else {
            format!("{} ({})", s.name, s.source)
        };
        charts.push(chart::line_chart(
            format!("series-{i}"),
            title,
            &s.unit,
            &[LineInput {
                label: s.name.clone(),
                points: &s.points,
                dashed: false,
            }],
            (1100.0, 260.0),
            CHART_POINT_BUDGET,
        ));
    }
    charts
}

fn labels_text(m: &MetricReport) -> String {
    m.labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn metric_title(m: &MetricReport) -> String {
    let labels = labels_text(m);
    if labels.is_empty() {
        m.name.clone()
    } else {
        format!("{} {{{labels}}}", m.name)
    }
}

fn metric_charts(report: &Report) -> Vec<LineChart> {
    report
        .metrics
        .iter()
        .enumerate()
        .filter(|(_, m)| m.points.len() >= 2)
        .map(|(i, m)| {
            chart::line_chart(
                format!("metric-{i}"),
                metric_title(m),
                &m.unit,
                &[LineInput {
                    label: m.name.clone(),
                    points: &m.points,
                    dashed: false,
                }],
                (540.0, 230.0),
                METRIC_POINT_BUDGET,
            )
        })
        .collect()
}

fn metric_rows(report: &Report) -> Vec<MetricRow> {
    report
        .metrics
        .iter()
        .map(|m| {
            let s = &m.summary;
            let unit = Unit::parse(&m.unit);
            let v = |x: f64| {
                if s.count == 0 {
                    Cell::new("—".into(), f64::NAN)
                } else {
                    Cell::new(STYLE.value(x, &unit), x)
                }
            };
            MetricRow {
                name: m.name.clone(),
                labels: labels_text(m),
                kind: m.metric_type.to_string(),
                unit: m.unit.clone(),
                cells: vec![
                    Cell::new(STYLE.value(m.last, &unit), m.last),
                    Cell::new(STYLE.count(s.count), s.count as f64),
                    v(s.mean),
                    v(s.min),
                    v(s.p50),
                    v(s.p95),
                    v(s.p99),
                    v(s.max),
                    Cell::new(STYLE.count(m.non_finite), m.non_finite as f64),
                ],
            }
        })
        .collect()
}

fn timeline(report: &Report, spans: &[SpanStats]) -> (Option<Timeline>, String) {
    let valid: Vec<_> = report
        .timeline
        .iter()
        .filter(|t| t.span < report.spans.len())
        .collect();
    if valid.is_empty() {
        return (None, "No recent spans were kept.".to_string());
    }
    let skipped = valid.len().saturating_sub(MAX_TIMELINE_SPANS);
    let shown = &valid[skipped..];
    let thread_order: HashMap<u64, usize> = report
        .threads
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id, i))
        .collect();
    let roots: HashMap<&str, usize> = {
        let mut m = HashMap::new();
        for s in spans {
            if let Some(r) = s.path.first() {
                let n = m.len();
                m.entry(r.as_str()).or_insert(n);
            }
        }
        m
    };
    // Lanes: (thread order, thread name, depth), sorted.
    let mut lane_keys: BTreeMap<(usize, String, usize), usize> = BTreeMap::new();
    for t in shown {
        let s = &report.spans[t.span];
        let order = s
            .thread_id
            .and_then(|id| thread_order.get(&id).copied())
            .unwrap_or(usize::MAX);
        let name = s.thread.clone().unwrap_or_default();
        lane_keys.insert((order, name, s.path.len()), 0);
    }
    let mut labels = Vec::with_capacity(lane_keys.len());
    for (i, ((_, name, depth), idx)) in lane_keys.iter_mut().enumerate() {
        *idx = i;
        let mut label: String = name.chars().take(22).collect();
        if label.is_empty() {
            label.push_str("(all threads)");
        }
        labels.push(format!("{label} · level {depth}"));
    }
    let inputs = shown
        .iter()
        .map(|t| {
            let s = &report.spans[t.span];
            let order = s
                .thread_id
                .and_then(|id| thread_order.get(&id).copied())
                .unwrap_or(usize::MAX);
            let key = (order, s.thread.clone().unwrap_or_default(), s.path.len());
            TimelineInput {
                lane: lane_keys.get(&key).copied().unwrap_or(0),
                start_ns: t.start_ns,
                duration_ns: t.duration_ns,
                color: s
                    .path
                    .first()
                    .and_then(|r| roots.get(r.as_str()).copied())
                    .unwrap_or(0),
                tip: format!(
                    "{} — {} at {}",
                    s.path.join(" › "),
                    STYLE.duration(t.duration_ns as f64),
                    STYLE.duration(t.start_ns as f64)
                ),
            }
        })
        .collect();
    let note = if skipped > 0 {
        format!(
            "The {} most recent of {} kept spans.",
            STYLE.count(shown.len() as u64),
            STYLE.count(valid.len() as u64)
        )
    } else {
        format!(
            "The {} most recent spans (the report keeps at most {}).",
            STYLE.count(shown.len() as u64),
            STYLE.count(report.diagnostics.timeline_capacity)
        )
    };
    (Some(chart::timeline(labels, inputs, 1100.0)), note)
}

fn facts(report: &Report, spans: &[SpanStats]) -> Vec<Fact> {
    let s = &report.session;
    let mut f = vec![
        Fact {
            label: "Host",
            value: if s.host.is_empty() {
                "unknown".into()
            } else {
                s.host.clone()
            },
        },
        Fact {
            label: "PID",
            value: s.pid.to_string(),
        },
        Fact {
            label: "Started",
            value: utc_time(&s.started_at),
        },
        Fact {
            label: "Duration",
            value: STYLE.duration(s.duration_ns as f64),
        },
    ];
    if !report.threads.is_empty() {
        f.push(Fact {
            label: "Threads",
            value: report
                .threads
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    f.push(Fact {
        label: "Span paths",
        value: STYLE.count(spans.len() as u64),
    });
    f.push(Fact {
        label: "Recorded by",
        value: format!(
            "heimdall-perf-core {} (report schema {})",
            report.crate_version, report.schema_version
        ),
    });
    f
}

impl Page {
    /// The page for `report`, with the flamegraph section `flame` when a renderer is set.
    pub(crate) fn new(report: &Report, flame: Option<Flame>) -> Page {
        // Merged statistics; a hand-built report may only have the per-thread ones.
        let spans: &[SpanStats] = if report.span_totals.is_empty() {
            &report.spans
        } else {
            &report.span_totals
        };
        let histograms = histograms(spans);
        let (timeline, timeline_note) = timeline(report, spans);
        Page {
            title: report.session.name.clone(),
            facts: facts(report, spans),
            labels: report
                .session
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            cards: cards(report, spans),
            warnings: warnings(report),
            stations: station_view::stations(report),
            frames: frame_view::frames(&report.frames),
            attribution_rule: heimdall_perf_core::ATTRIBUTION_RULE,
            span_rows: span_rows(report, spans),
            histograms_omitted: match spans.len().saturating_sub(histograms.len()) {
                0 => None,
                n => Some(STYLE.count(n as u64)),
            },
            histograms,
            series_charts: series_charts(report),
            metric_charts: metric_charts(report),
            metric_rows: metric_rows(report),
            timeline,
            timeline_note,
            flame,
            notes: report
                .notes
                .iter()
                .map(|n| NoteView {
                    at: format!("at {}", STYLE.duration(n.t_ns as f64)),
                    html: crate::markdown::to_html(&n.text),
                })
                .collect(),
            generator: format!("heimdall-perf-report-html {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_pick_a_readable_period() {
        assert_eq!(rate_text(60.0), "60.0 /s");
        assert_eq!(rate_text(0.5), "30.0 /min");
        assert_eq!(rate_text(44_500.0 / 86_400.0), "30.9 /min");
        assert_eq!(rate_text(1.0 / 3600.0), "1.00 /h");
        assert_eq!(rate_text(0.0), "0 /s");
        assert_eq!(rate_text(f64::NAN), "—");
    }

    #[test]
    fn throughput_in_a_known_unit_is_scaled() {
        let mut r = heimdall_perf_testkit::sample_report();
        r.metrics
            .retain(|m| m.metric_type == MetricType::Throughput && m.summary.count > 0);
        assert!(!r.metrics.is_empty());
        for m in &mut r.metrics {
            m.name = "upload".into();
            m.unit = "MB/s".into();
            (m.summary.mean, m.summary.min, m.summary.max) = (1.5, 1.0, 2.0);
        }
        let card = throughput_card(&r).unwrap();
        assert_eq!(card.label, "Mean upload");
        assert_eq!(card.value, "1.43 MiB/s");
        assert!(
            card.detail
                .starts_with("upload · min 977 KiB/s · max 1.91 MiB/s over "),
            "{}",
            card.detail
        );
        // In an unknown unit the figures are plain numbers and the unit follows the mean.
        for m in &mut r.metrics {
            m.unit = "parts/s".into();
        }
        let card = throughput_card(&r).unwrap();
        assert_eq!(card.value, "1.50 parts/s");
        assert!(card.detail.starts_with("upload · min 1.00 · max 2.00"));
    }
}
