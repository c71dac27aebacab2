//! Line charts of time series sharing one unit: points merged down to a budget, a mean line
//! broken where values are missing, and the min–max band.

use heimdall_perf_core::units::Unit;
use heimdall_perf_core::{SeriesOverview, SeriesPoint};

use super::axis::{TimeAxis, ValueAxis};
use super::{color, push_int, px, Frame, Tick};
use crate::STYLE;

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
    let unit = Unit::parse(unit);
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
            format!(
                "{} samples, none of them a finite number.",
                STYLE.count(total as u64)
            )
        });
        return chart;
    }
    let drawn: usize = reduced.iter().map(Vec::len).sum();
    chart.subtitle = if drawn < total {
        format!(
            "{} samples, drawn as {} points (mean line, min–max band)",
            STYLE.count(samples),
            STYLE.count(drawn as u64)
        )
    } else {
        format!("{} samples", STYLE.count(samples))
    };
    let time = TimeAxis::new(tmin.min(tmax) as f64, tmax as f64, 8);
    let value = ValueAxis::new(vmin, vmax, &unit);
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
                    STYLE.value(o.peak, &unit),
                    STYLE.value(o.mean, &unit)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(t_ns: u64, v: f64) -> SeriesPoint {
        SeriesPoint::sample(t_ns, v)
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
}
