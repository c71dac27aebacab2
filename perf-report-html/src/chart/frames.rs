//! Drawings of the Frames section: the miss rate over time (a bar per window of the
//! session), the queue-and-service breakdown of a source's stages (stacked horizontal bars)
//! and an incident as a small timeline (a lane per thread, the frames before it above, the
//! budget line). Latency and jitter are histograms ([`super::histogram_with`]).

use heimdall_perf_core::units::Unit;
use heimdall_perf_core::{FrameWindow, Incident, IncidentStage};

use super::axis::{TimeAxis, ValueAxis};
use super::{color, px, Frame, Tick};
use crate::STYLE;

/// Palette indices for stages: every colour but red, which marks budgets and misses.
const STAGE_COLORS: [usize; 9] = [0, 1, 3, 4, 5, 6, 8, 7, 9];

/// Most windows drawn in a miss-rate chart (neighbours are merged beyond).
pub(crate) const MAX_WINDOWS: usize = 500;

/// The colour of the `i`-th stage of a source.
pub(crate) fn stage_color(i: usize) -> &'static str {
    color(STAGE_COLORS[i % STAGE_COLORS.len()])
}

/// Roughly how wide `text` is at the charts' 11 px font (for deciding whether a label fits).
fn text_width(text: &str) -> f64 {
    6.2 * text.chars().count() as f64
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// A rectangle with a tooltip.
#[derive(Debug, Clone)]
pub(crate) struct Rect {
    /// Left edge.
    pub x: String,
    /// Top edge.
    pub y: String,
    /// Width.
    pub w: String,
    /// Height.
    pub h: String,
    /// Tooltip.
    pub tip: String,
}

impl Rect {
    /// From `x0` to `x1` (at least a hairline wide), `y` to `y + h`.
    fn new(x0: f64, x1: f64, y: f64, h: f64, tip: String) -> Rect {
        Rect {
            x: px(x0),
            y: px(y),
            w: px((x1 - x0).max(0.6)),
            h: px(h.max(0.0)),
            tip,
        }
    }
}

/// A vertical line with a label at its top (a budget, a finish).
#[derive(Debug, Clone)]
pub(crate) struct VLine {
    /// Position.
    pub x: String,
    /// Top.
    pub y1: String,
    /// Bottom.
    pub y2: String,
    /// Where the label's baseline sits.
    pub label_y: String,
    /// Label, e.g. `budget 16.7 ms`.
    pub label: String,
    /// The label ends at the line (it would run past the right edge otherwise).
    pub end: bool,
}

impl VLine {
    fn new(frame: &Frame, x: f64, (y1, y2): (f64, f64), label_y: f64, label: String) -> VLine {
        VLine {
            x: px(x),
            y1: px(y1),
            y2: px(y2),
            label_y: px(label_y),
            end: x + 4.0 + text_width(&label) > frame.width,
            label,
        }
    }
}

/// The share of missed frames in each window of the session.
#[derive(Debug, Clone)]
pub(crate) struct MissChart {
    /// Plot geometry.
    pub frame: Frame,
    /// One bar per window with finished frames.
    pub bars: Vec<Rect>,
    /// X-axis ticks.
    pub x_ticks: Vec<Tick>,
    /// Y-axis ticks.
    pub y_ticks: Vec<Tick>,
    /// X-axis title.
    pub x_title: String,
    /// Y-axis title.
    pub y_title: String,
    /// The session's miss rate as a dashed line: its y and tooltip.
    pub overall: Option<(String, String)>,
    /// Why nothing is drawn, when nothing can be.
    pub empty: Option<String>,
}

/// `windows` merged down to at most `budget` (neighbours summed).
fn merge_windows(windows: &[FrameWindow], budget: usize) -> Vec<FrameWindow> {
    if windows.len() <= budget {
        return windows.to_vec();
    }
    windows
        .chunks(windows.len().div_ceil(budget.max(1)))
        .map(|c| {
            let first = c[0];
            let end = c
                .iter()
                .map(|w| w.t_ns.saturating_add(w.duration_ns))
                .max()
                .unwrap_or(first.t_ns);
            FrameWindow {
                t_ns: first.t_ns,
                duration_ns: end.saturating_sub(first.t_ns),
                finished: c.iter().fold(0u64, |n, w| n.saturating_add(w.finished)),
                missed: c.iter().fold(0u64, |n, w| n.saturating_add(w.missed)),
            }
        })
        .collect()
}

/// Bars of the miss rate (missed ÷ finished, in %) of each window, over the session's
/// time; `overall` (a ratio) is drawn as a dashed line when finite.
pub(crate) fn miss_chart(windows: &[FrameWindow], overall: f64, size: (f64, f64)) -> MissChart {
    let frame = Frame::new(size.0, size.1);
    let mut chart = MissChart {
        frame,
        bars: Vec::new(),
        x_ticks: Vec::new(),
        y_ticks: Vec::new(),
        x_title: String::new(),
        y_title: String::new(),
        overall: None,
        empty: None,
    };
    let windows = merge_windows(windows, MAX_WINDOWS);
    let rate = |w: &FrameWindow| w.missed as f64 * 100.0 / w.finished as f64;
    let shown: Vec<&FrameWindow> = windows.iter().filter(|w| w.finished > 0).collect();
    if shown.is_empty() {
        chart.empty = Some("No frame finished.".to_string());
        return chart;
    }
    let t0 = windows.iter().map(|w| w.t_ns).min().unwrap_or(0) as f64;
    let t1 = windows
        .iter()
        .map(|w| w.t_ns.saturating_add(w.duration_ns))
        .max()
        .unwrap_or(0) as f64;
    let overall = Some(overall * 100.0).filter(|v| v.is_finite() && *v >= 0.0);
    let vmax = shown
        .iter()
        .map(|w| rate(w))
        .chain(overall)
        .fold(0.0, f64::max);
    let time = TimeAxis::new(t0, t1, 8);
    let value = ValueAxis::new(0.0, vmax, &Unit::parse("%"));
    let percent = Unit::parse("%");
    chart.x_ticks = time.ticks(&frame);
    chart.y_ticks = value.ticks(&frame);
    chart.x_title = time.title.clone();
    chart.y_title = "% of finished frames missed".to_string();
    chart.bars = shown
        .iter()
        .map(|w| {
            let end = w.t_ns.saturating_add(w.duration_ns);
            let x0 = time.x(&frame, w.t_ns as f64);
            let x1 = time.x(&frame, end as f64);
            let r = rate(w);
            // A window with no miss keeps a sliver, so that it can be pointed at.
            let y = value.y(&frame, r).min(frame.bottom - 1.5);
            let gap = if x1 - x0 > 4.0 { 1.0 } else { 0.0 };
            Rect::new(
                x0 + gap,
                x1 - gap,
                y,
                frame.bottom - y,
                format!(
                    "{} – {}: {} of {} frames missed ({})",
                    STYLE.duration(w.t_ns as f64),
                    STYLE.duration(end as f64),
                    STYLE.count(w.missed),
                    STYLE.count(w.finished),
                    STYLE.value(r, &percent)
                ),
            )
        })
        .collect();
    chart.overall = overall.map(|v| {
        (
            px(value.y(&frame, v)),
            format!("whole session: {}", STYLE.value(v, &percent)),
        )
    });
    chart
}

/// One stage for [`stage_chart`].
#[derive(Debug, Clone)]
pub(crate) struct StageInput<'a> {
    /// Stage name.
    pub name: &'a str,
    /// Median queue time before it, ns (NaN when unknown).
    pub queue: f64,
    /// Median service time, ns (NaN when unknown).
    pub service: f64,
    /// Its budget, ns.
    pub budget_ns: Option<u64>,
    /// Its colour.
    pub color: &'static str,
}

/// One row of the stage breakdown.
#[derive(Debug, Clone)]
pub(crate) struct StageBar {
    /// Stage name (shortened to fit).
    pub label: String,
    /// Where the label's baseline sits.
    pub text_y: String,
    /// The median wait before the stage, from 0.
    pub queue: Rect,
    /// The median service time, after the wait.
    pub service: Rect,
    /// The stage's colour.
    pub color: &'static str,
    /// Where the service would end at the stage's budget: x, top, bottom, tooltip.
    pub budget: Option<(String, String, String, String)>,
}

/// Median queue and service time per stage, stacked.
#[derive(Debug, Clone)]
pub(crate) struct StageChart {
    /// Geometry.
    pub frame: Frame,
    /// Rows, in pipeline order.
    pub rows: Vec<StageBar>,
    /// X-axis ticks.
    pub x_ticks: Vec<Tick>,
    /// X-axis title.
    pub x_title: String,
}

/// Stacked bars of the median wait and median service of each stage; `None` with no
/// stage.
pub(crate) fn stage_chart(stages: &[StageInput<'_>], width: f64) -> Option<StageChart> {
    const ROW: f64 = 32.0;
    const BAR: f64 = 18.0;
    if stages.is_empty() {
        return None;
    }
    let mut frame = Frame::new(width, 0.0);
    frame.left = 150.0;
    frame.top = 8.0;
    frame.bottom = frame.top + ROW * stages.len() as f64;
    frame.height = frame.bottom + 44.0;
    let finite = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
    let max = stages
        .iter()
        .map(|s| {
            let q = finite(s.queue);
            (q + finite(s.service)).max(q + s.budget_ns.unwrap_or(0) as f64)
        })
        .fold(0.0, f64::max);
    let axis = ValueAxis::new(0.0, max, &Unit::parse("ns"));
    let rows = stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let top = frame.top + ROW * i as f64 + (ROW - BAR) / 2.0;
            let (q, sv) = (finite(s.queue), finite(s.service));
            let x0 = axis.x(&frame, 0.0);
            let xq = axis.x(&frame, q);
            let xs = axis.x(&frame, q + sv);
            StageBar {
                label: shorten(s.name, 22),
                text_y: px(top + BAR / 2.0),
                queue: Rect::new(
                    x0,
                    xq,
                    top,
                    BAR,
                    format!(
                        "{}: median wait before it {}",
                        s.name,
                        STYLE.duration(s.queue)
                    ),
                ),
                service: Rect::new(
                    xq,
                    xs,
                    top,
                    BAR,
                    format!("{}: median service {}", s.name, STYLE.duration(s.service)),
                ),
                color: s.color,
                budget: s.budget_ns.map(|b| {
                    (
                        px(axis.x(&frame, q + b as f64)),
                        px(top - 3.0),
                        px(top + BAR + 3.0),
                        format!(
                            "{}: budget {} (after the median wait)",
                            s.name,
                            STYLE.duration(b as f64)
                        ),
                    )
                }),
            }
        })
        .collect();
    Some(StageChart {
        frame,
        rows,
        x_ticks: axis.ticks_across(&frame),
        x_title: format!("median wait + median service ({})", axis.title),
    })
}

/// A row of an incident's timeline: a thread of the missed frame, or a frame before it.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Top.
    pub y: String,
    /// Where the label's baseline sits.
    pub text_y: String,
    /// Label.
    pub label: String,
    /// A frame before the incident (drawn faint).
    pub faint: bool,
}

/// A stage bar of an incident's timeline.
#[derive(Debug, Clone)]
pub(crate) struct StageRect {
    /// The bar.
    pub rect: Rect,
    /// Its colour.
    pub color: &'static str,
    /// Part of a frame before the incident (drawn faint).
    pub faint: bool,
    /// The stage's name written in the bar, when it fits: x, y, text.
    pub text: Option<(String, String, String)>,
}

/// An incident drawn as a timeline from its frame's capture.
#[derive(Debug, Clone)]
pub(crate) struct IncidentChart {
    /// Geometry.
    pub frame: Frame,
    /// Rows: the frames before (faint), then one lane per thread of the missed frame.
    pub rows: Vec<Row>,
    /// Where the frames before end and the missed frame's lanes begin.
    pub divider: Option<String>,
    /// Waits before stages.
    pub queues: Vec<Rect>,
    /// Stage bars.
    pub stages: Vec<StageRect>,
    /// The stretch past the budget, on the missed frame's lanes.
    pub overrun: Option<Rect>,
    /// The budget.
    pub budget: Option<VLine>,
    /// The missed frame's finish.
    pub finish: VLine,
    /// X-axis ticks.
    pub x_ticks: Vec<Tick>,
    /// X-axis title.
    pub x_title: String,
}

/// Draws `incident`: the frames before it (one faint row each, from their own capture)
/// above one lane per thread of the missed frame, waits as light bars before the stages,
/// the budget line and the finish. `stage_color` gives each stage name its colour.
pub(crate) fn incident_chart(
    incident: &Incident,
    stage_color: &dyn Fn(&str) -> &'static str,
    width: f64,
) -> IncidentChart {
    const PREV: f64 = 15.0;
    const LANE: f64 = 24.0;
    const GAP: f64 = 8.0;
    let mut frame = Frame::new(width, 0.0);
    frame.left = 170.0;
    frame.top = 36.0;
    let end = |s: &IncidentStage| s.start_ns.saturating_add(s.duration_ns);
    // Lanes of the missed frame: its threads in order of first use.
    let mut threads: Vec<(u64, &str)> = Vec::new();
    for s in &incident.stages {
        if !threads.iter().any(|(id, _)| *id == s.thread_id) {
            threads.push((s.thread_id, &s.thread));
        }
    }
    let prev_h = PREV * incident.previous.len() as f64;
    let lanes_top = frame.top
        + if incident.previous.is_empty() {
            0.0
        } else {
            prev_h + GAP
        };
    frame.bottom = lanes_top + LANE * threads.len().max(1) as f64;
    frame.height = frame.bottom + 44.0;
    let t1 = incident
        .stages
        .iter()
        .chain(incident.previous.iter().flat_map(|p| &p.stages))
        .map(end)
        .chain(incident.previous.iter().filter_map(|p| p.latency_ns))
        .chain([incident.latency_ns, incident.budget_ns])
        .max()
        .unwrap_or(0) as f64;
    let time = TimeAxis::new(0.0, t1 * 1.02, 8);
    let x = |t: u64| time.x(&frame, t as f64);
    let mut rows = Vec::new();
    let mut stages = Vec::new();
    let mut queues = Vec::new();
    let mut bar = |s: &IncidentStage, top: f64, h: f64, faint: bool, whose: &str| {
        let (x0, x1) = (x(s.start_ns), x(end(s)));
        if s.queue_ns > 0 {
            queues.push(Rect::new(
                x(s.start_ns.saturating_sub(s.queue_ns)),
                x0,
                top,
                h,
                format!(
                    "{whose}: waited {} before {} (until {} after capture)",
                    STYLE.duration(s.queue_ns as f64),
                    s.name,
                    STYLE.duration(s.start_ns as f64)
                ),
            ));
        }
        let label = shorten(&s.name, 40);
        stages.push(StageRect {
            text: (!faint && x1 - x0 >= text_width(&label) + 8.0)
                .then(|| (px(x0 + 4.0), px(top + h / 2.0), label)),
            rect: Rect::new(
                x0,
                x1,
                top,
                h,
                format!(
                    "{whose}: {} on {}, {} from {} after capture",
                    s.name,
                    s.thread,
                    STYLE.duration(s.duration_ns as f64),
                    STYLE.duration(s.start_ns as f64)
                ),
            ),
            color: stage_color(&s.name),
            faint,
        });
    };
    for (i, p) in incident.previous.iter().enumerate() {
        let top = frame.top + PREV * i as f64;
        let latency = match p.latency_ns {
            Some(l) => STYLE.duration(l as f64),
            None => "not finished".to_string(),
        };
        rows.push(Row {
            y: px(top),
            text_y: px(top + PREV / 2.0),
            label: shorten(&format!("#{} · {latency}", p.frame_id), 26),
            faint: true,
        });
        let whose = format!("frame {}", p.frame_id);
        for s in &p.stages {
            bar(s, top + 2.0, PREV - 4.0, true, &whose);
        }
    }
    let whose = format!("frame {}", incident.frame_id);
    for (i, (id, name)) in threads.iter().enumerate() {
        let top = lanes_top + LANE * i as f64;
        rows.push(Row {
            y: px(top),
            text_y: px(top + LANE / 2.0),
            label: if name.is_empty() {
                format!("thread {id}")
            } else {
                shorten(name, 24)
            },
            faint: false,
        });
        for s in incident.stages.iter().filter(|s| s.thread_id == *id) {
            bar(s, top + 3.0, LANE - 6.0, false, &whose);
        }
    }
    if threads.is_empty() {
        rows.push(Row {
            y: px(lanes_top),
            text_y: px(lanes_top + LANE / 2.0),
            label: "(no stage recorded)".to_string(),
            faint: false,
        });
    }
    let budget_x = x(incident.budget_ns);
    let finish_x = x(incident.latency_ns);
    IncidentChart {
        divider: (!incident.previous.is_empty()).then(|| px(lanes_top - GAP / 2.0)),
        overrun: (incident.budget_ns > 0 && finish_x > budget_x).then(|| {
            Rect::new(
                budget_x,
                finish_x,
                lanes_top,
                frame.bottom - lanes_top,
                format!(
                    "{} over the budget",
                    STYLE.duration(incident.overrun_ns as f64)
                ),
            )
        }),
        budget: (incident.budget_ns > 0).then(|| {
            VLine::new(
                &frame,
                budget_x,
                (frame.top - 30.0, frame.bottom),
                frame.top - 32.0,
                format!("budget {}", STYLE.duration(incident.budget_ns as f64)),
            )
        }),
        finish: VLine::new(
            &frame,
            finish_x,
            (frame.top - 16.0, frame.bottom),
            frame.top - 18.0,
            format!("finish {}", STYLE.duration(incident.latency_ns as f64)),
        ),
        rows,
        queues,
        stages,
        x_ticks: time.ticks(&frame),
        x_title: "time from the frame's capture".to_string(),
        frame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_perf_core::IncidentFrame;

    fn window(t: u64, finished: u64, missed: u64) -> FrameWindow {
        FrameWindow {
            t_ns: t * 1_000_000_000,
            duration_ns: 1_000_000_000,
            finished,
            missed,
        }
    }

    #[test]
    fn miss_chart_has_a_bar_per_window_with_frames() {
        let w = [window(0, 60, 3), window(1, 0, 0), window(2, 60, 0)];
        let c = miss_chart(&w, 3.0 / 120.0, (500.0, 200.0));
        assert!(c.empty.is_none());
        assert_eq!(c.bars.len(), 2, "the empty window has no bar");
        assert!(
            c.bars[0].tip.ends_with("3 of 60 frames missed (5.00 %)"),
            "{}",
            c.bars[0].tip
        );
        assert!(c.overall.is_some());
        assert!(miss_chart(&[window(0, 0, 0)], 0.0, (500.0, 200.0))
            .empty
            .is_some());
        assert!(miss_chart(&[], f64::NAN, (500.0, 200.0)).empty.is_some());
        let many: Vec<FrameWindow> = (0..2000).map(|i| window(i, 60, i % 3)).collect();
        let c = miss_chart(&many, 0.01, (500.0, 200.0));
        assert!(c.bars.len() <= MAX_WINDOWS, "{}", c.bars.len());
    }

    #[test]
    fn stage_chart_stacks_wait_and_service() {
        let s = [
            StageInput {
                name: "detect",
                queue: 1e6,
                service: 8e6,
                budget_ns: Some(8_000_000),
                color: stage_color(0),
            },
            StageInput {
                name: "decide",
                queue: f64::NAN,
                service: f64::NAN,
                budget_ns: None,
                color: stage_color(1),
            },
        ];
        let c = stage_chart(&s, 600.0).unwrap();
        assert_eq!(c.rows.len(), 2);
        assert_eq!(c.rows[0].queue.x, px(c.frame.left));
        let at = |v: &str| v.parse::<f64>().unwrap();
        assert!(at(&c.rows[0].service.x) > at(&c.rows[0].queue.x));
        // 1 ms of wait then 8 ms of service: the service bar is 8 times as wide.
        let ratio = at(&c.rows[0].service.w) / at(&c.rows[0].queue.w);
        assert!((ratio - 8.0).abs() < 0.2, "{ratio}");
        assert!(c.rows[0].budget.is_some() && c.rows[1].budget.is_none());
        assert!(c.x_title.ends_with("(ms)"), "{}", c.x_title);
        assert!(stage_chart(&[], 600.0).is_none());
    }

    #[test]
    fn incident_chart_has_lanes_per_thread_and_the_budget() {
        let st = |name: &str, thread_id: u64, start_ns: u64, duration_ns: u64, queue_ns: u64| {
            IncidentStage {
                name: name.into(),
                thread_id,
                thread: format!("t{thread_id}"),
                start_ns,
                duration_ns,
                queue_ns,
            }
        };
        let inc = Incident {
            frame_id: 7,
            capture_ns: 0,
            latency_ns: 30_000_000,
            budget_ns: 16_000_000,
            overrun_ns: 14_000_000,
            cause: "detect".into(),
            stages: vec![
                st("grab", 1, 0, 1_000_000, 0),
                st("detect", 2, 5_000_000, 25_000_000, 4_000_000),
            ],
            previous: vec![IncidentFrame {
                frame_id: 6,
                capture_ns: 0,
                latency_ns: None,
                stages: vec![st("grab", 1, 0, 1_000_000, 0)],
            }],
            system: Vec::new(),
        };
        let c = incident_chart(&inc, &|_| stage_color(0), 1000.0);
        assert_eq!(c.rows.len(), 3, "one faint row and two thread lanes");
        assert!(c.rows[0].faint && !c.rows[1].faint);
        assert_eq!(c.stages.len(), 3);
        assert_eq!(c.queues.len(), 1, "the wait before detect");
        assert_eq!(c.budget.as_ref().unwrap().label, "budget 16.0 ms");
        assert!(c.overrun.is_some());
        assert!(c.divider.is_some());
        // No stage at all still draws a lane, and no budget draws no line.
        let bare = Incident {
            stages: Vec::new(),
            previous: Vec::new(),
            budget_ns: 0,
            ..inc
        };
        let c = incident_chart(&bare, &|_| stage_color(0), 1000.0);
        assert_eq!(c.rows.len(), 1);
        assert!(c.budget.is_none() && c.overrun.is_none() && c.divider.is_none());
    }
}
