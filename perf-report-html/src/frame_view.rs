//! The Frames section of the page: per frame source, its headline figures, the latency and
//! jitter histograms against the budget, the miss rate over time, the stages' queue and
//! service times, the attribution of misses and the incidents kept by the flight recorder.
//!
//! Like the rest of the page model ([`crate::view`]), everything here is plain text that the
//! template escapes.

use heimdall_perf_core::stats::Summary;
use heimdall_perf_core::units::Unit;
use heimdall_perf_core::{FrameReport, Incident};

use crate::chart::{
    self, Histogram, HistogramOptions, IncidentChart, MissChart, StageChart, StageInput,
};
use crate::view::Card;
use crate::STYLE;

/// Incidents drawn open per source; the others are behind a "more" disclosure.
pub(crate) const OPEN_INCIDENTS: usize = 3;
/// Most drop reasons named in the "Dropped" card.
const MAX_REASONS: usize = 4;

/// A row of a source's stage table.
#[derive(Debug, Clone)]
pub(crate) struct StageRow {
    /// Stage name.
    pub name: String,
    /// Its colour (as in the charts).
    pub color: &'static str,
    /// Figures: runs, budget, service p50, service p99, queue p50, queue p99, over budget.
    pub cells: Vec<String>,
}

/// A row of the attribution table.
#[derive(Debug, Clone)]
pub(crate) struct AttributionRow {
    /// A stage, `queue before <stage>`, `after <stage>`, or `unstaged`.
    pub cause: String,
    /// Missed frames blamed on it.
    pub missed: String,
    /// Share of the source's misses, as text.
    pub share: String,
    /// The same share as a fraction (`0.667`) for the bar behind it.
    pub width: String,
}

/// An incident: what happened, and its timeline.
#[derive(Debug, Clone)]
pub(crate) struct IncidentView {
    /// `Frame 120`.
    pub title: String,
    /// Latency, overrun, budget.
    pub figures: String,
    /// What it is blamed on.
    pub cause: String,
    /// When it was captured, and the frames shown before it.
    pub when: String,
    /// The system figures at the time, as `name value` texts.
    pub system: Vec<String>,
    /// The timeline.
    pub chart: IncidentChart,
}

/// A legend entry: name and colour.
#[derive(Debug, Clone)]
pub(crate) struct Swatch {
    /// Name.
    pub name: String,
    /// Colour.
    pub color: &'static str,
}

/// One frame source.
#[derive(Debug, Clone)]
pub(crate) struct FrameSourceView {
    /// Anchor id (`frames-0`: names can hold anything, so they are not used).
    pub anchor: String,
    /// The source's name.
    pub source: String,
    /// Frames and budget in a line.
    pub subtitle: String,
    /// Headline figures.
    pub cards: Vec<Card>,
    /// Latency histogram, with the budget line.
    pub latency: Histogram,
    /// Latency figures under its title.
    pub latency_stats: String,
    /// Miss rate per window; `None` without a budget.
    pub misses: Option<MissChart>,
    /// Under the miss chart's title, or why there is none.
    pub miss_stats: String,
    /// Histogram of the intervals between frame births, with the target period.
    pub jitter: Histogram,
    /// Jitter figures beside the period.
    pub jitter_stats: String,
    /// Median queue and service per stage.
    pub stage_chart: Option<StageChart>,
    /// Stage table.
    pub stage_rows: Vec<StageRow>,
    /// Stage colours.
    pub legend: Vec<Swatch>,
    /// Attribution table.
    pub attribution: Vec<AttributionRow>,
    /// Shown instead of the attribution table when it is empty.
    pub attribution_note: String,
    /// Incidents drawn open.
    pub incidents: Vec<IncidentView>,
    /// Incidents behind the disclosure.
    pub more_incidents: Vec<IncidentView>,
    /// About the incidents (how many kept, or why none).
    pub incidents_note: String,
}

/// A duration figure of `s`, or a dash when it summarises nothing.
fn figure(s: &Summary, v: f64) -> String {
    if s.count == 0 || !v.is_finite() {
        "—".to_string()
    } else {
        STYLE.duration(v)
    }
}

/// `n` out of `of` as a percentage, or `None` when `of` is 0.
fn share(n: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| n as f64 * 100.0 / of as f64)
}

/// A frame rate for a period in ns: `60.0 fps`.
fn fps(period_ns: f64) -> String {
    STYLE.value(1e9 / period_ns, &Unit::parse("fps"))
}

fn cards(f: &FrameReport) -> Vec<Card> {
    let percent = Unit::parse("%");
    let lat = &f.latency.summary;
    let missed = format!(
        "{} missed of {} finished · longest streak {}",
        STYLE.count(f.missed),
        STYLE.count(f.finished),
        STYLE.count(f.longest_miss_streak)
    );
    let mut cards = vec![Card {
        label: "Miss rate".into(),
        value: if f.budget_ns.is_some() && f.finished > 0 {
            STYLE.value(f.miss_rate * 100.0, &percent)
        } else {
            "—".into()
        },
        detail: match f.budget_ns {
            Some(_) if f.finished == 0 => "no frame finished".into(),
            Some(_) => missed,
            None => "no budget set: no frame can miss".into(),
        },
    }];
    cards.push(Card {
        label: "Latency p99".into(),
        value: figure(lat, lat.p99),
        detail: format!(
            "p50 {} · max {} · capture → finish",
            figure(lat, lat.p50),
            figure(lat, lat.max)
        ),
    });
    cards.push(Card {
        label: "Budget".into(),
        value: f
            .budget_ns
            .map_or_else(|| "none".into(), |b| STYLE.duration(b as f64)),
        detail: match f.budget_ns {
            Some(b) if b > 0 => format!("per frame, capture → finish ({})", fps(b as f64)),
            Some(_) => "per frame, capture → finish".into(),
            None => "no frame budget set for this source".into(),
        },
    });
    cards.push(Card {
        label: "Frames begun".into(),
        value: STYLE.count(f.count),
        detail: format!(
            "{} finished · {} in flight",
            STYLE.count(f.finished),
            STYLE.count(f.in_flight)
        ),
    });
    let mut reasons: Vec<(&String, &u64)> = f.dropped.iter().collect();
    reasons.sort_by_key(|(_, n)| std::cmp::Reverse(**n));
    let mut detail = reasons
        .iter()
        .take(MAX_REASONS)
        .map(|(r, n)| format!("{r}: {}", STYLE.count(**n)))
        .collect::<Vec<_>>()
        .join(" · ");
    if reasons.len() > MAX_REASONS {
        detail.push_str(&format!(
            " · {} other reasons",
            STYLE.count((reasons.len() - MAX_REASONS) as u64)
        ));
    }
    cards.push(Card {
        label: "Dropped".into(),
        value: STYLE.count(f.dropped_total()),
        detail: if detail.is_empty() {
            "no frame dropped".into()
        } else {
            detail
        },
    });
    cards
}

fn stage_rows(f: &FrameReport) -> Vec<StageRow> {
    let percent = Unit::parse("%");
    f.stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (sv, q) = (&s.service.summary, &s.queue.summary);
            let over = match (s.budget_ns, share(s.over_budget, sv.count)) {
                (None, _) => "—".to_string(),
                (Some(_), Some(p)) => format!(
                    "{} ({})",
                    STYLE.count(s.over_budget),
                    STYLE.value(p, &percent)
                ),
                (Some(_), None) => STYLE.count(s.over_budget),
            };
            StageRow {
                name: s.name.clone(),
                color: chart::stage_color(i),
                cells: vec![
                    STYLE.count(sv.count),
                    s.budget_ns
                        .map_or_else(|| "—".into(), |b| STYLE.duration(b as f64)),
                    figure(sv, sv.p50),
                    figure(sv, sv.p99),
                    figure(q, q.p50),
                    figure(q, q.p99),
                    over,
                ],
            }
        })
        .collect()
}

fn attribution(f: &FrameReport) -> Vec<AttributionRow> {
    let percent = Unit::parse("%");
    // Shares of the source's misses; a hand-built report may blame more than it missed.
    let blamed = f
        .attribution
        .iter()
        .fold(0u64, |n, a| n.saturating_add(a.missed));
    let total = f.missed.max(blamed);
    f.attribution
        .iter()
        .map(|a| {
            let p = share(a.missed, total);
            AttributionRow {
                cause: a.cause.clone(),
                missed: STYLE.count(a.missed),
                share: p.map_or_else(|| "—".into(), |p| STYLE.value(p, &percent)),
                width: format!("{:.3}", p.unwrap_or(0.0).clamp(0.0, 100.0) / 100.0),
            }
        })
        .collect()
}

fn incident(f: &FrameReport, i: &Incident) -> IncidentView {
    let color = |name: &str| {
        let k = f
            .stages
            .iter()
            .position(|s| s.name == name)
            .unwrap_or(f.stages.len());
        chart::stage_color(k)
    };
    let before = match i.previous.len() {
        0 => "no frame before it was kept".to_string(),
        1 => "the frame before it is drawn faint above, from its own capture".to_string(),
        n => format!(
            "the {} frames before it are drawn faint above, each from its own capture",
            STYLE.count(n as u64)
        ),
    };
    IncidentView {
        title: format!("Frame {}", i.frame_id),
        figures: format!(
            "latency {}, {} over the {} budget",
            STYLE.duration(i.latency_ns as f64),
            STYLE.duration(i.overrun_ns as f64),
            STYLE.duration(i.budget_ns as f64)
        ),
        cause: i.cause.clone(),
        when: format!(
            "Captured {} into the session; {before}.",
            STYLE.duration(i.capture_ns as f64)
        ),
        // The headline figures; per-core CPU, load and interfaces stay in the JSON report.
        system: heimdall_perf_core::series_names::HEADLINE
            .iter()
            .filter_map(|name| i.system.iter().find(|s| s.name == *name))
            .map(|s| {
                format!(
                    "{} {} (at {})",
                    s.name,
                    STYLE.value(s.value, &Unit::parse(&s.unit)),
                    STYLE.duration(s.t_ns as f64)
                )
            })
            .collect(),
        chart: chart::incident_chart(i, &color, 1100.0),
    }
}

fn source(index: usize, f: &FrameReport) -> FrameSourceView {
    let lat = &f.latency.summary;
    let jit = &f.jitter.summary;
    let budget = f.budget_ns.filter(|b| *b > 0).map(|b| b as f64);
    let latency = chart::histogram_with(
        &f.latency.histogram,
        &HistogramOptions {
            markers: &[("p50", lat.p50), ("p99", lat.p99)],
            limit: budget.map(|b| ("budget", b)),
            noun: "frames",
            x_title: "latency, capture → finish (log scale)",
            empty: "No frame finished.",
            size: (540.0, 230.0),
        },
    );
    let jitter = chart::histogram_with(
        &f.jitter.histogram,
        &HistogramOptions {
            markers: &[("p50", jit.p50), ("p99", jit.p99)],
            limit: budget.map(|b| ("period", b)),
            noun: "intervals",
            x_title: "interval between frame captures (log scale)",
            empty: "Fewer than two frames: no interval.",
            size: (540.0, 230.0),
        },
    );
    let jitter_stats = if jit.count == 0 {
        "The time between consecutive frame captures.".to_string()
    } else {
        let period = match budget {
            Some(b) => format!(" · target period {} ({})", STYLE.duration(b), fps(b)),
            None => " · no target period (no budget set)".to_string(),
        };
        format!(
            "{} intervals · p50 {} · p99 {} · σ {}{period}",
            STYLE.count(jit.count),
            figure(jit, jit.p50),
            figure(jit, jit.p99),
            figure(jit, jit.stddev),
        )
    };
    let (misses, miss_stats) = if budget.is_some() {
        let c = chart::miss_chart(&f.windows, f.miss_rate, (540.0, 230.0));
        let stats = format!(
            "{} windows of the session; dashed: the whole session ({})",
            STYLE.count(f.windows.len() as u64),
            STYLE.value(f.miss_rate * 100.0, &Unit::parse("%"))
        );
        (Some(c), stats)
    } else {
        (
            None,
            "No budget set for this source: no frame can miss.".to_string(),
        )
    };
    let inputs: Vec<StageInput<'_>> = f
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| StageInput {
            name: &s.name,
            queue: if s.queue.summary.count > 0 {
                s.queue.summary.p50
            } else {
                f64::NAN
            },
            service: if s.service.summary.count > 0 {
                s.service.summary.p50
            } else {
                f64::NAN
            },
            budget_ns: s.budget_ns,
            color: chart::stage_color(i),
        })
        .collect();
    let mut incidents: Vec<IncidentView> = f.incidents.iter().map(|i| incident(f, i)).collect();
    let more_incidents = if incidents.len() > OPEN_INCIDENTS {
        incidents.split_off(OPEN_INCIDENTS)
    } else {
        Vec::new()
    };
    let kept = f.incidents.len() as u64;
    let incidents_note = if kept > 0 {
        format!(
            "The flight recorder kept the {} worst missed frames (largest overrun first) of {} missed. Each is drawn from its capture: one lane per thread, light bars for waits before a stage, the budget as a red line, the stretch past it shaded.",
            STYLE.count(kept),
            STYLE.count(f.missed)
        )
    } else if f.missed > 0 {
        "No incident was kept for these misses.".to_string()
    } else {
        "No frame missed its budget: no incident.".to_string()
    };
    FrameSourceView {
        anchor: format!("frames-{index}"),
        source: f.source.clone(),
        subtitle: match budget {
            Some(b) => format!(
                "{} frames · budget {}",
                STYLE.count(f.count),
                STYLE.duration(b)
            ),
            None => format!("{} frames · no budget", STYLE.count(f.count)),
        },
        cards: cards(f),
        latency,
        latency_stats: format!(
            "{} finished · p50 {} · p99 {} · max {}{}",
            STYLE.count(lat.count),
            figure(lat, lat.p50),
            figure(lat, lat.p99),
            figure(lat, lat.max),
            budget.map_or_else(String::new, |b| format!(" · budget {}", STYLE.duration(b))),
        ),
        misses,
        miss_stats,
        jitter,
        jitter_stats,
        stage_chart: chart::stage_chart(&inputs, 540.0),
        stage_rows: stage_rows(f),
        legend: f
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| Swatch {
                name: s.name.clone(),
                color: chart::stage_color(i),
            })
            .collect(),
        attribution: attribution(f),
        attribution_note: if f.missed > 0 {
            "No cause was recorded for these misses.".to_string()
        } else if budget.is_some() {
            "No frame missed its budget.".to_string()
        } else {
            "No budget set: no frame can miss, nothing to attribute.".to_string()
        },
        incidents,
        more_incidents,
        incidents_note,
    }
}

/// The Frames section: one view per source of `frames`, in report order.
pub(crate) fn frames(frames: &[FrameReport]) -> Vec<FrameSourceView> {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| source(i, f))
        .collect()
}
