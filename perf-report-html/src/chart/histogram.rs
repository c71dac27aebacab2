//! Latency histograms: log-spaced duration buckets as bars, with percentile markers and,
//! for frames, a limit (the budget, the target period) drawn as a solid line.

use heimdall_perf_core::stats::HistogramBucket;
use heimdall_perf_core::units::Unit;

use super::axis::ValueAxis;
use super::{px, Frame, Tick};
use crate::STYLE;

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
    /// The label ends at the line (it would run past the plot's right edge otherwise).
    pub end: bool,
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
    /// A limit drawn across the bars (a budget), kept inside the x range.
    pub limit: Option<Marker>,
    /// Y-axis title (what is counted).
    pub y_title: String,
    /// X-axis title.
    pub x_title: String,
    /// Why nothing is drawn, when nothing can be.
    pub empty: Option<String>,
}

/// What a histogram counts and how it is labelled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistogramOptions<'a> {
    /// Percentile markers: `(label, value in ns)`; non-finite ones are not drawn.
    pub markers: &'a [(&'a str, f64)],
    /// A limit drawn as a solid line, `(label, value in ns)`; the x range is widened to
    /// show it.
    pub limit: Option<(&'a str, f64)>,
    /// What is counted, plural (`spans`, `frames`): the y-axis title and tooltips.
    pub noun: &'a str,
    /// X-axis title.
    pub x_title: &'a str,
    /// Shown instead of the chart when no bucket holds a value.
    pub empty: &'a str,
    /// Width and height of the chart.
    pub size: (f64, f64),
}

/// Builds a histogram of span durations: `buckets` (upper bounds in ns, growing
/// geometrically) with markers at the given `(label, value in ns)` percentiles.
pub(crate) fn histogram(
    buckets: &[HistogramBucket],
    markers: &[(&str, f64)],
    size: (f64, f64),
) -> Histogram {
    histogram_with(
        buckets,
        &HistogramOptions {
            markers,
            limit: None,
            noun: "spans",
            x_title: "span duration (log scale)",
            empty: "No completed spans.",
            size,
        },
    )
}

/// Builds a histogram of durations in `buckets` (upper bounds in ns, growing
/// geometrically) as `options` say.
pub(crate) fn histogram_with(
    buckets: &[HistogramBucket],
    options: &HistogramOptions<'_>,
) -> Histogram {
    let (size, markers) = (options.size, options.markers);
    let mut frame = Frame::new(size.0, size.1);
    frame.top = 44.0;
    let mut h = Histogram {
        frame,
        bars: Vec::new(),
        markers: Vec::new(),
        x_ticks: Vec::new(),
        y_ticks: Vec::new(),
        limit: None,
        y_title: options.noun.to_string(),
        x_title: options.x_title.to_string(),
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
        h.empty = Some(options.empty.to_string());
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
    // A limit outside the buckets shown widens the range, so that its line is where it
    // belongs rather than at an edge.
    let limit = options
        .limit
        .filter(|(_, v)| v.is_finite() && *v > 0.0)
        .map(|(label, v)| (label, v.max(1.0)));
    let (lx0, lx1) = match limit {
        Some((_, v)) => (lx0.min(v.log2() - 0.25), lx1.max(v.log2() + 0.25)),
        None => (lx0, lx1),
    };
    let lx1 = if lx1 > lx0 { lx1 } else { lx0 + 1.0 };
    let x = |v: f64| frame.x(v.max(1.0).log2().clamp(lx0, lx1), lx0, lx1);
    let max_count = shown.iter().map(|b| b.2).max().unwrap_or(1).max(1);
    let axis = ValueAxis::new(0.0, max_count as f64, &Unit::parse(""));
    let percent = Unit::parse("%");
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
                "{} – {}: {} {} ({})",
                STYLE.duration(lo),
                STYLE.duration(hi),
                STYLE.count(count),
                options.noun,
                STYLE.value(share, &percent)
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
            label: STYLE.duration(v),
        })
        .collect();
    h.markers = markers
        .iter()
        .enumerate()
        .filter(|(_, (_, v))| v.is_finite())
        .map(|(i, (label, v))| Marker {
            x: px(x(*v)),
            // The limit's label, when there is one, takes the top row.
            label_y: px(4.0 + 12.0 * (i + usize::from(limit.is_some())) as f64),
            label: (*label).to_string(),
            tip: format!("{label} = {}", STYLE.duration(*v)),
            end: false,
        })
        .collect();
    h.limit = limit.map(|(label, v)| {
        let text = format!("{label} {}", STYLE.duration(v));
        Marker {
            x: px(x(v)),
            label_y: px(4.0),
            end: x(v) > frame.right - 7.0 * text.chars().count() as f64,
            tip: text.clone(),
            label: text,
        }
    });
    h
}

#[cfg(test)]
mod tests {
    use super::*;

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
