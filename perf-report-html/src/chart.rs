//! Geometry of the inline SVG charts: axes with readable ticks, line charts of time
//! series (downsampled), latency histograms and the timeline of recent spans.
//!
//! Everything here produces plain data (coordinates already formatted, labels as text);
//! the askama templates turn it into SVG and escape every label.

use std::fmt::Write as _;

use heimdall_perf_core::stats::HistogramBucket;
use heimdall_perf_core::{SeriesOverview, SeriesPoint};

use crate::format::{self, UnitKind};

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

/// A "nice" step (1, 2, 2.5 or 5 times a power of ten) close to `raw`.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let k = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    k * mag
}

/// Decimals needed to print multiples of `step` exactly.
fn decimals(step: f64) -> usize {
    let mut d = 0;
    let mut s = step;
    while d < 9 && (s - s.round()).abs() > 1e-6 * s.abs().max(1e-12) {
        s *= 10.0;
        d += 1;
    }
    d
}

/// A value axis: range, ticks and title, values shown in a unit that suits their size.
#[derive(Debug, Clone)]
pub(crate) struct ValueAxis {
    lo: f64,
    hi: f64,
    /// Values are divided by this before being labelled (bytes → GiB, ns → ms).
    div: f64,
    step: f64,
    /// Axis title: the unit shown.
    pub title: String,
}

impl ValueAxis {
    /// An axis for values from `min` to `max` (finite) in `unit`.
    pub(crate) fn new(min: f64, max: f64, unit: &str) -> Self {
        let (min, max) = if min <= max { (min, max) } else { (max, min) };
        let big = max.abs().max(min.abs());
        let (div, title) = match format::unit_kind(unit) {
            UnitKind::Bytes => {
                let (d, u) = format::byte_scale(big);
                (d, u.to_string())
            }
            UnitKind::BytesPerSecond => {
                let (d, u) = format::byte_scale(big);
                (d, format!("{u}/s"))
            }
            UnitKind::Duration(f) => {
                let ns = big * f as f64;
                let (unit_ns, name) = if ns < 1e3 {
                    (1.0, "ns")
                } else if ns < 1e6 {
                    (1e3, "µs")
                } else if ns < 1e9 {
                    (1e6, "ms")
                } else {
                    (1e9, "s")
                };
                (unit_ns / f as f64, name.to_string())
            }
            UnitKind::Plain => (
                1.0,
                if unit.trim().is_empty() {
                    "value".to_string()
                } else {
                    unit.trim().to_string()
                },
            ),
        };
        let (smin, smax) = (min / div, max / div);
        let lo0 = if smin >= 0.0 { 0.0 } else { smin };
        let mut range = smax - lo0;
        if range <= 0.0 || !range.is_finite() {
            range = smax.abs().max(1.0);
        }
        let step = nice_step(range / 5.0);
        let lo = (lo0 / step).floor() * step;
        let mut hi = (smax / step).ceil() * step;
        if hi <= lo {
            hi = lo + step;
        }
        ValueAxis {
            lo,
            hi,
            div,
            step,
            title,
        }
    }

    /// Ticks laid out along `frame`'s vertical extent.
    pub(crate) fn ticks(&self, frame: &Frame) -> Vec<Tick> {
        let d = decimals(self.step);
        let n = ((self.hi - self.lo) / self.step).round() as i64;
        (0..=n.clamp(0, 50))
            .map(|i| {
                let v = self.lo + i as f64 * self.step;
                Tick {
                    pos: px(frame.y(v, self.lo, self.hi)),
                    label: format!("{:.*}", d, if v.abs() < self.step / 1e6 { 0.0 } else { v }),
                }
            })
            .collect()
    }

    /// The y coordinate of `v` (unscaled value).
    fn y(&self, frame: &Frame, v: f64) -> f64 {
        frame.y(v / self.div, self.lo, self.hi)
    }
}

const SECOND: f64 = 1e9;
const MINUTE: f64 = 60.0 * SECOND;
const HOUR: f64 = 60.0 * MINUTE;
const DAY: f64 = 24.0 * HOUR;

/// A time axis from `t0` to `t1` (ns since session start).
#[derive(Debug, Clone)]
pub(crate) struct TimeAxis {
    /// Start, ns.
    pub t0: f64,
    /// End, ns.
    pub t1: f64,
    step: f64,
    /// Axis title, with the label format when labels are clock-like.
    pub title: String,
}

impl TimeAxis {
    /// A time axis over `[t0, t1]` with about `target` ticks.
    pub(crate) fn new(t0: f64, t1: f64, target: usize) -> Self {
        let t1 = if t1 > t0 { t1 } else { t0 + SECOND };
        let range = t1 - t0;
        let raw = range / target.max(1) as f64;
        let step = if raw < SECOND {
            // 1-2-5 steps down to a nanosecond.
            let s = nice_step(raw);
            if s == 2.5 * 10f64.powf(s.log10().floor()) {
                5.0 * 10f64.powf(s.log10().floor())
            } else {
                s.max(1.0)
            }
        } else {
            const STEPS: [f64; 22] = [
                SECOND,
                2.0 * SECOND,
                5.0 * SECOND,
                10.0 * SECOND,
                15.0 * SECOND,
                30.0 * SECOND,
                MINUTE,
                2.0 * MINUTE,
                5.0 * MINUTE,
                10.0 * MINUTE,
                15.0 * MINUTE,
                30.0 * MINUTE,
                HOUR,
                2.0 * HOUR,
                3.0 * HOUR,
                6.0 * HOUR,
                12.0 * HOUR,
                DAY,
                2.0 * DAY,
                7.0 * DAY,
                14.0 * DAY,
                30.0 * DAY,
            ];
            STEPS
                .iter()
                .copied()
                .find(|s| *s >= raw)
                .unwrap_or_else(|| nice_step(raw / DAY) * DAY)
        };
        let title = if step >= SECOND && t1 >= HOUR {
            if step < MINUTE {
                "time since session start (h:mm:ss)"
            } else {
                "time since session start (h:mm)"
            }
        } else if step >= SECOND && t1 >= MINUTE {
            "time since session start (m:ss)"
        } else {
            "time since session start"
        };
        TimeAxis {
            t0,
            t1,
            step,
            title: title.to_string(),
        }
    }

    fn label(&self, t: f64) -> String {
        let step = self.step;
        if step < SECOND {
            let (unit, name) = if step >= 1e8 || (self.t1 >= SECOND && step >= 1e7) {
                (SECOND, "s")
            } else if step >= 1e6 {
                (1e6, "ms")
            } else if step >= 1e3 {
                (1e3, "µs")
            } else {
                (1.0, "ns")
            };
            let d = decimals(step / unit);
            return format!("{:.*} {name}", d, t / unit);
        }
        let s = (t / SECOND).round().max(0.0) as u64;
        if self.t1 < MINUTE {
            format!("{s} s")
        } else if self.t1 < HOUR {
            format!("{}:{:02}", s / 60, s % 60)
        } else if step < MINUTE {
            format!("{}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
        } else {
            format!("{}:{:02}", s / 3600, s % 3600 / 60)
        }
    }

    /// Ticks laid out along `frame`'s horizontal extent.
    pub(crate) fn ticks(&self, frame: &Frame) -> Vec<Tick> {
        let first = (self.t0 / self.step).ceil();
        let last = (self.t1 / self.step).floor();
        let n = (last - first).clamp(0.0, 60.0) as i64;
        (0..=n)
            .map(|i| {
                let t = (first + i as f64) * self.step;
                Tick {
                    pos: px(frame.x(t, self.t0, self.t1)),
                    label: self.label(t),
                }
            })
            .collect()
    }

    fn x(&self, frame: &Frame, t: f64) -> f64 {
        frame.x(t, self.t0, self.t1)
    }
}

/// Points of a series reduced to at most `budget` by merging neighbours (count-weighted
/// mean, overall min and max, non-finite values left out; a bucket with no finite value
/// stays as a gap).
pub(crate) fn downsample(points: &[SeriesPoint], budget: usize) -> Vec<SeriesPoint> {
    let budget = budget.max(2);
    if points.len() <= budget {
        return points.to_vec();
    }
    let chunk = points.len().div_ceil(budget);
    points
        .chunks(chunk)
        .map(|c| {
            let mut weight = 0.0;
            let mut sum = 0.0;
            let mut min = f64::INFINITY;
            let mut max = f64::NEG_INFINITY;
            let mut count = 0;
            for p in c {
                count += p.count;
                if p.mean.is_finite() {
                    let w = p.count.max(1) as f64;
                    weight += w;
                    sum += p.mean * w;
                }
                if p.min.is_finite() {
                    min = min.min(p.min);
                }
                if p.max.is_finite() {
                    max = max.max(p.max);
                }
            }
            let mean = if weight > 0.0 { sum / weight } else { f64::NAN };
            SeriesPoint {
                t_ns: c.first().map(|p| p.t_ns).unwrap_or(0),
                count,
                min: if min.is_finite() { min } else { f64::NAN },
                max: if max.is_finite() { max } else { f64::NAN },
                mean,
                last: c.last().map(|p| p.last).unwrap_or(f64::NAN),
            }
        })
        .collect()
}

/// Input for one line of a chart.
#[derive(Debug, Clone)]
pub(crate) struct LineInput<'a> {
    /// Legend text.
    pub label: String,
    /// The series' points.
    pub points: &'a [SeriesPoint],
    /// Drawn dashed (a limit, such as total memory).
    pub dashed: bool,
}

/// One drawn line.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// Legend text.
    pub label: String,
    /// Stroke colour.
    pub color: &'static str,
    /// SVG path of the means; segments break where a value is missing.
    pub path: String,
    /// Values with no neighbour to join (drawn as dots): x, y.
    pub dots: Vec<(String, String)>,
    /// SVG path of the min–max band, empty when every bucket holds one sample.
    pub band: String,
    /// Drawn dashed.
    pub dashed: bool,
    /// Peak and mean, for the legend.
    pub summary: String,
}

/// A line chart of time series sharing one unit.
#[derive(Debug, Clone)]
pub(crate) struct LineChart {
    /// Anchor id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Short text under the title.
    pub subtitle: String,
    /// Plot geometry.
    pub frame: Frame,
    /// X-axis ticks.
    pub x_ticks: Vec<Tick>,
    /// Y-axis ticks.
    pub y_ticks: Vec<Tick>,
    /// X-axis title.
    pub x_title: String,
    /// Y-axis title (the unit).
    pub y_title: String,
    /// The lines, first drawn first.
    pub lines: Vec<Line>,
    /// Why nothing is drawn, when nothing can be.
    pub empty: Option<String>,
}

/// Builds a line chart over the time its points cover (labelled from the session start);
/// `budget` is the most points drawn per line.
pub(crate) fn line_chart(
    id: String,
    title: String,
    unit: &str,
    inputs: &[LineInput<'_>],
    size: (f64, f64),
    budget: usize,
) -> LineChart {
    let frame = Frame::new(size.0, size.1);
    let reduced: Vec<Vec<SeriesPoint>> = inputs
        .iter()
        .map(|l| downsample(l.points, budget))
        .collect();
    let mut vmin = f64::INFINITY;
    let mut vmax = f64::NEG_INFINITY;
    let mut tmin = u64::MAX;
    let mut tmax = 0u64;
    for p in reduced.iter().flatten() {
        for v in [p.mean, p.min, p.max] {
            if v.is_finite() {
                vmin = vmin.min(v);
                vmax = vmax.max(v);
            }
        }
        tmin = tmin.min(p.t_ns);
        tmax = tmax.max(p.t_ns);
    }
    let total: usize = inputs.iter().map(|l| l.points.len()).sum();
    let samples = inputs
        .iter()
        .flat_map(|l| l.points)
        .fold(0u64, |n, p| n.saturating_add(p.count.max(1)));
    let mut chart = LineChart {
        id,
        title,
        subtitle: String::new(),
        frame,
        x_ticks: Vec::new(),
        y_ticks: Vec::new(),
        x_title: String::new(),
        y_title: String::new(),
        lines: Vec::new(),
        empty: None,
    };
    if !vmin.is_finite() || !vmax.is_finite() {
        chart.empty = Some(if total == 0 {
            "No samples.".to_string()
        } else {
            format!("{total} samples, none of them a finite number.")
        });
        return chart;
    }
    let drawn: usize = reduced.iter().map(Vec::len).sum();
    chart.subtitle = if drawn < total {
        format!(
            "{} samples, drawn as {} points (mean line, min–max band)",
            format::count(samples),
            format::count(drawn as u64)
        )
    } else {
        format!("{} samples", format::count(samples))
    };
    let time = TimeAxis::new(tmin.min(tmax) as f64, tmax as f64, 8);
    let value = ValueAxis::new(vmin, vmax, unit);
    chart.x_ticks = time.ticks(&frame);
    chart.y_ticks = value.ticks(&frame);
    chart.x_title = time.title.clone();
    chart.y_title = value.title.clone();
    chart.lines = inputs
        .iter()
        .zip(&reduced)
        .enumerate()
        .map(|(i, (input, pts))| {
            let mut path = String::with_capacity(pts.len() * 10);
            let mut dots = Vec::new();
            // Runs of finite means become path segments; a lone value becomes a dot.
            for run in pts.split(|p| !p.mean.is_finite()).filter(|r| !r.is_empty()) {
                let xy = |p: &SeriesPoint| (time.x(&frame, p.t_ns as f64), value.y(&frame, p.mean));
                if let [single] = run {
                    let (x, y) = xy(single);
                    dots.push((px(x), px(y)));
                    continue;
                }
                for (k, p) in run.iter().enumerate() {
                    let (x, y) = xy(p);
                    path.push(if k == 0 { 'M' } else { 'L' });
                    push_int(&mut path, x);
                    path.push(' ');
                    push_int(&mut path, y);
                }
            }
            let band = band_path(pts, &time, &value, &frame);
            let summary = match SeriesOverview::of(input.points) {
                Some(o) => format!(
                    "peak {}, mean {}",
                    format::value(o.peak, unit),
                    format::value(o.mean, unit)
                ),
                None => String::new(),
            };
            Line {
                label: input.label.clone(),
                color: color(i),
                path,
                dots,
                band,
                dashed: input.dashed,
                summary,
            }
        })
        .collect();
    chart
}

/// The min–max band of `pts`, one closed polygon per run of finite buckets; empty when the
/// band would be a line (one sample per bucket).
fn band_path(pts: &[SeriesPoint], time: &TimeAxis, value: &ValueAxis, frame: &Frame) -> String {
    if !pts
        .iter()
        .any(|p| p.min.is_finite() && p.max.is_finite() && p.max > p.min)
    {
        return String::new();
    }
    let mut out = String::new();
    let mut run: Vec<&SeriesPoint> = Vec::new();
    let flush = |run: &mut Vec<&SeriesPoint>, out: &mut String| {
        if run.len() >= 2 {
            for (k, p) in run.iter().enumerate() {
                out.push(if k == 0 { 'M' } else { 'L' });
                push_int(out, time.x(frame, p.t_ns as f64));
                out.push(' ');
                push_int(out, value.y(frame, p.max));
            }
            for p in run.iter().rev() {
                out.push('L');
                push_int(out, time.x(frame, p.t_ns as f64));
                out.push(' ');
                push_int(out, value.y(frame, p.min));
            }
            out.push('Z');
        }
        run.clear();
    };
    for p in pts {
        if p.min.is_finite() && p.max.is_finite() {
            run.push(p);
        } else {
            flush(&mut run, &mut out);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// One bar of a histogram.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
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

/// A vertical marker (a percentile) on a histogram.
#[derive(Debug, Clone)]
pub(crate) struct Marker {
    /// Position.
    pub x: String,
    /// Where the label sits vertically.
    pub label_y: String,
    /// Label, e.g. `p99`.
    pub label: String,
    /// Tooltip: the value.
    pub tip: String,
}

/// A latency histogram.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    /// Plot geometry.
    pub frame: Frame,
    /// Bars.
    pub bars: Vec<Bar>,
    /// Percentile markers.
    pub markers: Vec<Marker>,
    /// X-axis ticks (bucket bounds).
    pub x_ticks: Vec<Tick>,
    /// Y-axis ticks.
    pub y_ticks: Vec<Tick>,
    /// Why nothing is drawn, when nothing can be.
    pub empty: Option<String>,
}

/// Builds a histogram of `buckets` (upper bounds in ns, growing geometrically) with markers at the given
/// `(label, value in ns)` percentiles.
pub(crate) fn histogram(
    buckets: &[HistogramBucket],
    markers: &[(&str, f64)],
    size: (f64, f64),
) -> Histogram {
    let mut frame = Frame::new(size.0, size.1);
    frame.top = 44.0;
    let mut h = Histogram {
        frame,
        bars: Vec::new(),
        markers: Vec::new(),
        x_ticks: Vec::new(),
        y_ticks: Vec::new(),
        empty: None,
    };
    // Lower bound of each bucket: the previous bucket's bound; for the first one, its bound
    // divided by the ladder's growth (read off the first two buckets; 2 if there is one).
    let growth = match buckets {
        [a, b, ..] if a.le > 0 && b.le > a.le => b.le as f64 / a.le as f64,
        _ => 2.0,
    };
    let bounds: Vec<(f64, f64, u64)> = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let hi = b.le.max(1) as f64;
            let lo = if i == 0 {
                hi / growth
            } else {
                buckets[i - 1].le.max(1) as f64
            };
            (lo.min(hi), hi, b.count)
        })
        .collect();
    let first = bounds.iter().position(|b| b.2 > 0);
    let last = bounds.iter().rposition(|b| b.2 > 0);
    let (Some(first), Some(last)) = (first, last) else {
        h.empty = Some("No completed spans.".to_string());
        return h;
    };
    // One empty bucket of context on each side, when there is one.
    let first = first.saturating_sub(1);
    let last = (last + 1).min(bounds.len() - 1);
    let shown = &bounds[first..=last];
    let total = shown.iter().fold(0u64, |t, b| t.saturating_add(b.2));
    // The ladder grows, except in a report edited by hand: take the widest extent.
    let lx0 = shown
        .iter()
        .map(|b| b.0)
        .fold(f64::INFINITY, f64::min)
        .max(1.0)
        .log2();
    let lx1 = shown.iter().map(|b| b.1).fold(1.0, f64::max).log2();
    let lx1 = if lx1 > lx0 { lx1 } else { lx0 + 1.0 };
    let x = |v: f64| frame.x(v.max(1.0).log2().clamp(lx0, lx1), lx0, lx1);
    let max_count = shown.iter().map(|b| b.2).max().unwrap_or(1).max(1);
    let axis = ValueAxis::new(0.0, max_count as f64, "");
    h.y_ticks = axis.ticks(&frame);
    for &(lo, hi, count) in shown {
        let x0 = x(lo);
        let x1 = x(hi);
        let y = axis.y(&frame, count as f64);
        let share = if total > 0 {
            count as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        h.bars.push(Bar {
            x: px(x0 + 1.0),
            y: px(y),
            w: px((x1 - x0 - 2.0).max(0.5)),
            h: px((frame.bottom - y).max(0.0)),
            tip: format!(
                "{} – {}: {} spans ({:.1} %)",
                format::duration(lo),
                format::duration(hi),
                format::count(count),
                share
            ),
        });
    }
    // Label every bound when few, else every other one.
    let every = if shown.len() > 7 { 2 } else { 1 };
    let mut edges: Vec<f64> = vec![shown[0].0];
    edges.extend(shown.iter().map(|b| b.1));
    h.x_ticks = edges
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(_, &v)| Tick {
            pos: px(x(v)),
            label: format::duration(v),
        })
        .collect();
    h.markers = markers
        .iter()
        .enumerate()
        .filter(|(_, (_, v))| v.is_finite())
        .map(|(i, (label, v))| Marker {
            x: px(x(*v)),
            label_y: px(4.0 + 12.0 * i as f64),
            label: (*label).to_string(),
            tip: format!("{label} = {}", format::duration(*v)),
        })
        .collect();
    h
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(t_ns: u64, v: f64) -> SeriesPoint {
        SeriesPoint::sample(t_ns, v)
    }

    #[test]
    fn coordinates_are_short() {
        assert_eq!(px(12.0), "12");
        assert_eq!(px(12.34), "12.3");
        assert_eq!(px(-0.26), "-0.3");
        assert_eq!(px(f64::NAN), "0");
    }

    #[test]
    fn value_axis_ticks_are_round_and_cover_the_data() {
        let f = Frame::new(500.0, 200.0);
        let a = ValueAxis::new(20.0, 47.0, "%");
        let labels: Vec<String> = a.ticks(&f).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0", "10", "20", "30", "40", "50"]);
        assert_eq!(a.title, "%");
        let b = ValueAxis::new(4.0e9, 4.09e9, "bytes");
        assert_eq!(b.title, "GiB");
        let labels: Vec<String> = b.ticks(&f).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0", "1", "2", "3", "4"]);
        let d = ValueAxis::new(0.0, 0.7, "");
        let labels: Vec<String> = d.ticks(&f).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0.0", "0.2", "0.4", "0.6", "0.8"]);
        let c = ValueAxis::new(0.0, 0.0, "");
        assert_eq!(c.ticks(&f).len(), 2, "a flat series still gets an axis");
    }

    #[test]
    fn time_axis_labels_follow_the_range() {
        let f = Frame::new(1000.0, 200.0);
        let short = TimeAxis::new(0.0, 10e9, 8);
        let l: Vec<String> = short.ticks(&f).into_iter().map(|t| t.label).collect();
        assert_eq!(l.first().map(String::as_str), Some("0 s"));
        assert!(l.contains(&"10 s".to_string()), "{l:?}");
        let day = TimeAxis::new(0.0, 24.0 * HOUR, 8);
        let l: Vec<String> = day.ticks(&f).into_iter().map(|t| t.label).collect();
        assert_eq!(
            l,
            ["0:00", "3:00", "6:00", "9:00", "12:00", "15:00", "18:00", "21:00", "24:00"]
        );
        assert!(day.title.contains("h:mm"));
        let ms = TimeAxis::new(0.0, 120e6, 8);
        let l: Vec<String> = ms.ticks(&f).into_iter().map(|t| t.label).collect();
        assert_eq!(l.get(1).map(String::as_str), Some("20 ms"), "{l:?}");
    }

    #[test]
    fn downsampling_bounds_points_and_keeps_extremes() {
        let pts: Vec<SeriesPoint> = (0..2048).map(|i| pt(i, (i % 100) as f64)).collect();
        let d = downsample(&pts, 1000);
        assert!(d.len() <= 1000, "{}", d.len());
        assert_eq!(d.iter().map(|p| p.count).sum::<u64>(), 2048);
        let max = d.iter().map(|p| p.max).fold(f64::MIN, f64::max);
        assert_eq!(max, 99.0);
        let nan = vec![pt(0, f64::NAN), pt(1, f64::NAN), pt(2, 1.0)];
        let d = downsample(&nan, 2);
        assert!(d[0].mean.is_nan() && d[1].mean == 1.0);
    }

    #[test]
    fn line_chart_breaks_at_missing_values_and_reports_empty() {
        let pts = vec![
            pt(0, 1.0),
            pt(1_000_000_000, f64::NAN),
            pt(2_000_000_000, 3.0),
        ];
        let input = LineInput {
            label: "x".into(),
            points: &pts,
            dashed: false,
        };
        let c = line_chart("c".into(), "t".into(), "ms", &[input], (500.0, 200.0), 1000);
        assert!(c.empty.is_none());
        // 1.0 and 3.0 have no finite neighbour: two dots, no segment.
        assert_eq!(c.lines[0].path, "");
        assert_eq!(c.lines[0].dots.len(), 2);
        let pts = vec![
            pt(0, 1.0),
            pt(1, 2.0),
            pt(2, f64::NAN),
            pt(3, 3.0),
            pt(4, 4.0),
        ];
        let input = LineInput {
            label: "x".into(),
            points: &pts,
            dashed: false,
        };
        let c = line_chart("c".into(), "t".into(), "ms", &[input], (500.0, 200.0), 1000);
        assert_eq!(
            c.lines[0].path.matches('M').count(),
            2,
            "{}",
            c.lines[0].path
        );
        assert_eq!(
            c.lines[0].path.matches('L').count(),
            2,
            "{}",
            c.lines[0].path
        );
        assert!(c.lines[0].dots.is_empty());
        assert!(c.lines[0].band.is_empty());
        let only_nan = vec![pt(0, f64::NAN)];
        let input = LineInput {
            label: "x".into(),
            points: &only_nan,
            dashed: false,
        };
        let c = line_chart("c".into(), "t".into(), "", &[input], (500.0, 200.0), 1000);
        assert_eq!(
            c.empty.as_deref(),
            Some("1 samples, none of them a finite number.")
        );
    }

    #[test]
    fn histogram_trims_empty_buckets_and_places_markers() {
        let b = |le, count| HistogramBucket { le, count };
        let buckets = [
            b(256, 0),
            b(512, 0),
            b(1024, 0),
            b(2048, 5),
            b(4096, 10),
            b(8192, 0),
        ];
        let h = histogram(
            &buckets,
            &[("p50", 3000.0), ("p99", f64::NAN)],
            (400.0, 200.0),
        );
        assert!(h.empty.is_none());
        // 1024 (context), 2048, 4096, 8192 (context).
        assert_eq!(h.bars.len(), 4);
        assert!(
            h.bars[2].tip.contains("10 spans (66.7 %)"),
            "{}",
            h.bars[2].tip
        );
        assert_eq!(h.markers.len(), 1, "a NaN percentile is not drawn");
        let empty = histogram(&[b(256, 0)], &[], (400.0, 200.0));
        assert!(empty.empty.is_some());
        assert!(histogram(&[], &[], (400.0, 200.0)).empty.is_some());
    }
}
