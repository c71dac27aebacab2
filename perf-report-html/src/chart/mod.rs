//! Geometry of the inline SVG charts, one file per kind of chart: value and time axes with
//! readable ticks (`axis.rs`), line charts of time series, downsampled (`line.rs`), latency
//! histograms (`histogram.rs`), the timeline of recent spans (`timeline.rs`) and the
//! drawings of the Frames section (`frames.rs`: miss rate over time, stage breakdown,
//! incidents). This file holds what they share: the plot [`Frame`] and its margins, axis
//! [`Tick`]s, the line colours and the writing of SVG coordinates.
//!
//! Everything here produces plain data (coordinates already formatted, labels as text);
//! the askama templates turn it into SVG and escape every label.

use std::fmt::Write as _;

mod axis;
mod frames;
mod histogram;
mod line;
mod timeline;

pub(crate) use frames::{
    incident_chart, miss_chart, stage_chart, stage_color, IncidentChart, MissChart, StageChart,
    StageInput,
};
pub(crate) use histogram::{histogram, histogram_with, Histogram, HistogramOptions};
pub(crate) use line::{line_chart, LineChart, LineInput};
pub(crate) use timeline::{timeline, Timeline, TimelineInput};

/// Line colours (Tableau 10: distinct, print well, readable by most colour-blind readers).
pub(crate) const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
    "#9c755f", "#8c8c8c",
];

/// The colour of the `i`-th line.
pub(crate) fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A coordinate, one decimal, no trailing `.0`.
fn px(v: f64) -> String {
    let mut s = String::new();
    push_px(&mut s, v);
    s
}

/// Appends a coordinate with one decimal (trailing `.0` dropped) to `out`.
fn push_px(out: &mut String, v: f64) {
    let v = if v.is_finite() { v } else { 0.0 };
    let tenths = (v * 10.0).round() as i64;
    let (sign, abs) = if tenths < 0 {
        ("-", -tenths)
    } else {
        ("", tenths)
    };
    let _ = if abs % 10 == 0 {
        write!(out, "{sign}{}", abs / 10)
    } else {
        write!(out, "{sign}{}.{}", abs / 10, abs % 10)
    };
}

/// Appends a whole-unit coordinate to `out` (line charts: a unit is about a pixel, and
/// whole numbers keep large reports small).
fn push_int(out: &mut String, v: f64) {
    let v = if v.is_finite() { v.round() } else { 0.0 };
    let _ = write!(out, "{}", v as i64);
}

/// One tick of an axis: where it is (SVG units) and its label.
#[derive(Debug, Clone)]
pub(crate) struct Tick {
    /// Coordinate along the axis.
    pub pos: String,
    /// Text shown.
    pub label: String,
}

/// The plot area inside a chart.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    /// Width of the whole chart (viewBox).
    pub width: f64,
    /// Height of the whole chart (viewBox).
    pub height: f64,
    /// Left edge of the plot area.
    pub left: f64,
    /// Right edge of the plot area.
    pub right: f64,
    /// Top edge of the plot area.
    pub top: f64,
    /// Bottom edge of the plot area.
    pub bottom: f64,
}

impl Frame {
    /// A chart `width` × `height` with room for axis labels.
    pub(crate) fn new(width: f64, height: f64) -> Self {
        Frame {
            width,
            height,
            left: 72.0,
            right: width - 16.0,
            top: 14.0,
            bottom: height - 44.0,
        }
    }

    /// Vertical middle of the plot area (for the rotated y-axis title).
    pub(crate) fn mid_y(&self) -> f64 {
        (self.top + self.bottom) / 2.0
    }

    /// Horizontal middle of the plot area (for the x-axis title).
    pub(crate) fn mid_x(&self) -> f64 {
        (self.left + self.right) / 2.0
    }

    /// Where tick labels of the x axis sit.
    pub(crate) fn x_label_y(&self) -> f64 {
        self.bottom + 17.0
    }

    /// Where the x-axis title sits.
    pub(crate) fn x_title_y(&self) -> f64 {
        self.bottom + 36.0
    }

    /// Where tick labels of the y axis end.
    pub(crate) fn y_label_x(&self) -> f64 {
        self.left - 8.0
    }

    fn x(&self, v: f64, lo: f64, hi: f64) -> f64 {
        let span = if hi > lo { hi - lo } else { 1.0 };
        self.left + (v - lo) / span * (self.right - self.left)
    }

    fn y(&self, v: f64, lo: f64, hi: f64) -> f64 {
        let span = if hi > lo { hi - lo } else { 1.0 };
        self.bottom - (v - lo) / span * (self.bottom - self.top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_short() {
        assert_eq!(px(12.0), "12");
        assert_eq!(px(12.34), "12.3");
        assert_eq!(px(-0.26), "-0.3");
        assert_eq!(px(f64::NAN), "0");
    }
}
