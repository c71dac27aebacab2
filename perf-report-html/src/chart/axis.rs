//! Axes: a value axis scaled to the unit that suits its values (bytes → GiB, ns → ms) and a
//! time axis from the session start, each with round ticks.
//!
//! Tick labels are marks of a scale, not figures of the report: every tick of an axis has
//! the same decimals (`0.0`, `0.5`, `1.0`) and its unit is in the axis title
//! (`Style::fixed`).

use super::{px, Frame, Tick};
use crate::STYLE;
use heimdall_perf_core::units::{self, Quantity, Unit};

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
    pub(crate) fn new(min: f64, max: f64, unit: &Unit) -> Self {
        let (min, max) = if min <= max { (min, max) } else { (max, min) };
        let big = max.abs().max(min.abs());
        let (div, title) = match unit.quantity() {
            // Sizes and data rates in the power of 1024 that suits the largest value.
            Some(Quantity::Data) => {
                let bytes_per_unit = unit.to_base(1.0);
                let (d, name) = units::byte_scale(big * bytes_per_unit);
                let title = if unit.is_rate() {
                    format!("{name}/s")
                } else {
                    name.to_string()
                };
                (d / bytes_per_unit, title)
            }
            // Durations in ns, µs, ms or s.
            Some(Quantity::Time) if !unit.is_rate() => {
                let ns_per_unit = unit.to_base(1e9);
                let ns = big * ns_per_unit;
                let (unit_ns, name) = if ns < 1e3 {
                    (1.0, "ns")
                } else if ns < 1e6 {
                    (1e3, "µs")
                } else if ns < 1e9 {
                    (1e6, "ms")
                } else {
                    (1e9, "s")
                };
                (unit_ns / ns_per_unit, name.to_string())
            }
            _ if unit.text().is_empty() => (1.0, "value".to_string()),
            _ => (1.0, unit.text().to_string()),
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
        self.ticks_at(|v| frame.y(v, self.lo, self.hi))
    }

    /// The ticks, each at the coordinate `pos` gives its (scaled) value.
    fn ticks_at(&self, pos: impl Fn(f64) -> f64) -> Vec<Tick> {
        let d = decimals(self.step);
        let n = ((self.hi - self.lo) / self.step).round() as i64;
        (0..=n.clamp(0, 50))
            .map(|i| {
                let v = self.lo + i as f64 * self.step;
                Tick {
                    pos: px(pos(v)),
                    label: STYLE.fixed(if v.abs() < self.step / 1e6 { 0.0 } else { v }, d),
                }
            })
            .collect()
    }

    /// The y coordinate of `v` (unscaled value).
    pub(super) fn y(&self, frame: &Frame, v: f64) -> f64 {
        frame.y(v / self.div, self.lo, self.hi)
    }

    /// Ticks laid out along `frame`'s horizontal extent (the axis drawn across, as under
    /// a bar chart of durations).
    pub(crate) fn ticks_across(&self, frame: &Frame) -> Vec<Tick> {
        self.ticks_at(|v| frame.x(v, self.lo, self.hi))
    }

    /// The x coordinate of `v` (unscaled value), the axis drawn across.
    pub(super) fn x(&self, frame: &Frame, v: f64) -> f64 {
        frame.x(v / self.div, self.lo, self.hi)
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
            return format!("{} {name}", STYLE.fixed(t / unit, d));
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

    /// The x coordinate of `t` (ns).
    pub(super) fn x(&self, frame: &Frame, t: f64) -> f64 {
        frame.x(t, self.t0, self.t1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_axis_ticks_are_round_and_cover_the_data() {
        let f = Frame::new(500.0, 200.0);
        let a = ValueAxis::new(20.0, 47.0, &Unit::parse("%"));
        let labels: Vec<String> = a.ticks(&f).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0", "10", "20", "30", "40", "50"]);
        assert_eq!(a.title, "%");
        let b = ValueAxis::new(4.0e9, 4.09e9, &Unit::parse("bytes"));
        assert_eq!(b.title, "GiB");
        let labels: Vec<String> = b.ticks(&f).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0", "1", "2", "3", "4"]);
        let d = ValueAxis::new(0.0, 0.7, &Unit::parse(""));
        let labels: Vec<String> = d.ticks(&f).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0.0", "0.2", "0.4", "0.6", "0.8"]);
        let c = ValueAxis::new(0.0, 0.0, &Unit::parse(""));
        assert_eq!(c.ticks(&f).len(), 2, "a flat series still gets an axis");
    }

    #[test]
    fn value_axis_scales_known_units() {
        let f = Frame::new(500.0, 200.0);
        let ms = ValueAxis::new(0.0, 1500.0, &Unit::parse("ms"));
        assert_eq!(ms.title, "s");
        let labels: Vec<String> = ms.ticks(&f).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0.0", "0.5", "1.0", "1.5"]);
        assert_eq!(ms.y(&f, 1500.0), f.top);
        assert_eq!(ValueAxis::new(0.0, 3000.0, &Unit::parse("MB")).title, "GiB");
        assert_eq!(
            ValueAxis::new(0.0, 8.0, &Unit::parse("Mbps")).title,
            "KiB/s"
        );
        assert_eq!(ValueAxis::new(0.0, 8.0, &Unit::parse(" fps ")).title, "fps");
        assert_eq!(ValueAxis::new(0.0, 8.0, &Unit::parse("ms/s")).title, "ms/s");
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
}
