//! The timeline of recent spans: one lane per thread and nesting level, spans laid out
//! along time.

use super::axis::TimeAxis;
use super::{color, px, Frame, Tick};

/// One lane of the timeline (a thread at one nesting depth).
#[derive(Debug, Clone)]
pub(crate) struct Lane {
    /// Top of the lane.
    pub y: String,
    /// Where the label's baseline sits.
    pub text_y: String,
    /// Label, e.g. `processing · depth 2`.
    pub label: String,
}

/// One span on the timeline.
#[derive(Debug, Clone)]
pub(crate) struct SpanRect {
    /// Left edge.
    pub x: String,
    /// Top edge.
    pub y: String,
    /// Width (at least a hairline).
    pub w: String,
    /// Colour.
    pub color: &'static str,
    /// Tooltip.
    pub tip: String,
}

/// Timeline of recent spans.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    /// Geometry.
    pub frame: Frame,
    /// Lanes, top to bottom.
    pub lanes: Vec<Lane>,
    /// Spans.
    pub rects: Vec<SpanRect>,
    /// Height of one span bar.
    pub bar_height: f64,
    /// X-axis ticks.
    pub x_ticks: Vec<Tick>,
    /// X-axis title.
    pub x_title: String,
}

/// Input for the timeline: lane index, start, duration (ns), colour index, tooltip.
pub(crate) struct TimelineInput {
    /// Lane index into the lane labels.
    pub lane: usize,
    /// Start, ns since session start.
    pub start_ns: u64,
    /// Duration, ns.
    pub duration_ns: u64,
    /// Colour index.
    pub color: usize,
    /// Tooltip.
    pub tip: String,
}

/// Lays out spans in lanes along time.
pub(crate) fn timeline(
    lane_labels: Vec<String>,
    spans: Vec<TimelineInput>,
    width: f64,
) -> Timeline {
    const LANE: f64 = 18.0;
    let mut frame = Frame::new(width, 0.0);
    frame.left = 190.0;
    frame.top = 6.0;
    frame.bottom = frame.top + LANE * lane_labels.len().max(1) as f64;
    frame.height = frame.bottom + 44.0;
    let t0 = spans.iter().map(|s| s.start_ns).min().unwrap_or(0) as f64;
    let t1 = spans
        .iter()
        .map(|s| s.start_ns.saturating_add(s.duration_ns))
        .max()
        .unwrap_or(0) as f64;
    let time = TimeAxis::new(t0, t1, 8);
    let lanes = lane_labels
        .into_iter()
        .enumerate()
        .map(|(i, label)| Lane {
            y: px(frame.top + LANE * i as f64),
            text_y: px(frame.top + LANE * i as f64 + LANE / 2.0),
            label,
        })
        .collect();
    let rects = spans
        .into_iter()
        .map(|s| {
            let x0 = time.x(&frame, s.start_ns as f64);
            let x1 = time.x(&frame, s.start_ns.saturating_add(s.duration_ns) as f64);
            SpanRect {
                x: px(x0),
                y: px(frame.top + LANE * s.lane as f64 + 2.0),
                w: px((x1 - x0).max(0.6)),
                color: color(s.color),
                tip: s.tip,
            }
        })
        .collect();
    Timeline {
        frame,
        lanes,
        rects,
        bar_height: LANE - 4.0,
        x_ticks: time.ticks(&frame),
        x_title: time.title.clone(),
    }
}
