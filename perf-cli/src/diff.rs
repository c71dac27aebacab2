//! Comparing two reports span by span and frame source by frame source, and deciding what
//! regressed.
//!
//! A span **regressed** when its mean duration grew by more than the threshold (default 5 %)
//! *and* the growth is larger than the noise the two runs show: three standard errors of the
//! difference of the means, `3 × sqrt(sd_base² / n_base + sd_new² / n_new)`, from each
//! report's recorded standard deviation and count (a Welch-style test; three standard errors
//! leave a chance of about 0.3 % that pure noise is called a change). An **improvement** is
//! the same in the other direction. p50, p95 and p99 are shown for context; they come from
//! the reports' histograms (1 % precision).
//!
//! A frame source (same name in both reports) **regressed** when either
//!
//! * its **miss rate** (missed / finished frames) rose beyond noise: a one-sided
//!   two-proportion z-test, `z = (p_new − p_base) / sqrt(p̂ (1 − p̂) (1/n_base + 1/n_new))`
//!   with the pooled rate `p̂ = (missed_base + missed_new) / (finished_base + finished_new)`,
//!   gives `z >` [`MISS_RATE_Z`] (3, as for spans), *and* the rate rose by at least the
//!   minimum absolute rise (default [`DEFAULT_MIN_MISS_RISE_PCT`] = 0.1 percentage point,
//!   so that 0 → 1 missed frame of 10 000 is not a regression however many frames both runs
//!   have). The test needs a budget and a finished frame on both sides; it compares the
//!   rates against each side's own budget (a changed budget is shown);
//! * or its **latency p99** rose by more than the threshold (the spans' `--threshold`) *and*
//!   by more than the spans' noise rule applied to the latency distributions:
//!   `3 × sqrt(sd_base² / n_base + sd_new² / n_new)` from each report's latency standard
//!   deviation and count.
//!
//! An improvement is either of these the other way round (and nothing regressed). A source
//! in one report only is listed as added or removed, never a regression.

use std::collections::BTreeMap;

use heimdall_perf::reports::Report;
use serde::Serialize;

/// How many standard errors a change must exceed to be more than noise.
pub const NOISE_SIGMAS: f64 = 3.0;

/// The z score a rise in a frame source's miss rate must exceed to be more than noise
/// (one-sided two-proportion test; see the [module](self) docs).
pub const MISS_RATE_Z: f64 = 3.0;

/// The default minimum rise of a miss rate that can be a regression, in percentage points
/// (0.1: from 1.0 % to 1.1 %).
pub const DEFAULT_MIN_MISS_RISE_PCT: f64 = 0.1;

/// The rules of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rules {
    /// Smallest relative change of a span's mean, or of a frame source's latency p99, that
    /// counts, in percent.
    pub threshold_pct: f64,
    /// Smallest rise of a frame source's miss rate that counts, in percentage points.
    pub min_miss_rise_pct: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            threshold_pct: 5.0,
            min_miss_rise_pct: DEFAULT_MIN_MISS_RISE_PCT,
        }
    }
}

/// The verdict on one span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Slower beyond the threshold and the noise.
    Regressed,
    /// Faster beyond the threshold and the noise.
    Improved,
    /// Within the threshold or the noise.
    Unchanged,
    /// Only in the base report.
    Removed,
    /// Only in the new report.
    Added,
}

/// Figures of one side of a comparison (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Side {
    /// Completed spans.
    pub count: u64,
    /// Mean duration.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Standard deviation.
    pub stddev: f64,
}

/// One span compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanDiff {
    /// Names from the root span to this one (as in the report: a name may contain `;`, so
    /// paths are compared as lists, never as joined text).
    pub path: Vec<String>,
    /// Base figures, if the span is in the base report.
    pub base: Option<Side>,
    /// New figures, if the span is in the new report.
    pub new: Option<Side>,
    /// Change of the mean, in percent of the base mean.
    pub mean_change_pct: Option<f64>,
    /// The noise bound on the mean difference (`NOISE_SIGMAS` standard errors), ns.
    pub noise_ns: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Figures of one side of a frame source's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FrameSide {
    /// Frames finished.
    pub finished: u64,
    /// Finished frames that missed the budget (at most `finished`).
    pub missed: u64,
    /// The frame budget, ns, if one was set.
    pub budget_ns: Option<u64>,
    /// `missed / finished`, `None` without a budget or a finished frame.
    pub miss_rate: Option<f64>,
    /// Latency: number of values behind the statistics.
    pub latency_count: u64,
    /// Latency p50, ns.
    pub latency_p50: f64,
    /// Latency p99, ns.
    pub latency_p99: f64,
    /// Latency standard deviation, ns.
    pub latency_stddev: f64,
}

/// The miss-rate test of a frame source (see the [module](self) docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MissRateTest {
    /// Base miss rate (0–1).
    pub base_rate: f64,
    /// New miss rate (0–1).
    pub new_rate: f64,
    /// `new_rate − base_rate`, in percentage points.
    pub rise_pct: f64,
    /// The two-proportion z score (0 when both rates are equal).
    pub z: f64,
    /// The verdict of this test alone.
    pub verdict: Verdict,
}

/// The latency p99 test of a frame source (see the [module](self) docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyTest {
    /// Change of p99, in percent of the base p99 (`None` when the base p99 is 0).
    pub p99_change_pct: Option<f64>,
    /// The noise bound on the change (`NOISE_SIGMAS` standard errors), ns.
    pub noise_ns: f64,
    /// The verdict of this test alone.
    pub verdict: Verdict,
}

/// One frame source compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameDiff {
    /// The source's name.
    pub source: String,
    /// Base figures, if the source is in the base report.
    pub base: Option<FrameSide>,
    /// New figures, if the source is in the new report.
    pub new: Option<FrameSide>,
    /// The miss-rate test, when both sides have a budget and a finished frame.
    pub miss_rate: Option<MissRateTest>,
    /// The latency p99 test, when both sides have latencies.
    pub latency: Option<LatencyTest>,
    /// The verdict: regressed when either test regressed, improved when either improved and
    /// none regressed.
    pub verdict: Verdict,
}

/// The comparison of two reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    /// Base session name.
    pub base_session: String,
    /// New session name.
    pub new_session: String,
    /// Threshold used, percent.
    pub threshold_pct: f64,
    /// The z score a miss-rate rise must exceed ([`MISS_RATE_Z`]).
    pub miss_rate_z: f64,
    /// The smallest miss-rate rise that counts, percentage points.
    pub min_miss_rise_pct: f64,
    /// Every span of either report, regressions first, then by path.
    pub spans: Vec<SpanDiff>,
    /// Every frame source of either report, regressions first, then by name.
    pub frames: Vec<FrameDiff>,
    /// When both reports are merged ones: the base's stations that the new report lacks,
    /// by name, in the base's order (the fleet's figures no longer include them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stations_left: Vec<String>,
    /// When both reports are merged ones: the new report's stations that the base lacks,
    /// by name, in the new report's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stations_joined: Vec<String>,
}

impl Diff {
    /// Spans that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &SpanDiff> {
        self.spans
            .iter()
            .filter(|s| s.verdict == Verdict::Regressed)
    }

    /// Frame sources that regressed.
    pub fn frame_regressions(&self) -> impl Iterator<Item = &FrameDiff> {
        self.frames
            .iter()
            .filter(|f| f.verdict == Verdict::Regressed)
    }

    /// Whether anything regressed: a span or a frame source.
    pub fn has_regressions(&self) -> bool {
        self.regressions().next().is_some() || self.frame_regressions().next().is_some()
    }
}

fn side(s: &heimdall_perf::reports::SpanStats) -> Side {
    Side {
        count: s.count,
        mean: s.duration.mean,
        p50: s.duration.p50,
        p95: s.duration.p95,
        p99: s.duration.p99,
        stddev: s.duration.stddev,
    }
}

/// Compares `new` against `base` with a threshold in percent (and the default minimum
/// miss-rate rise).
pub fn compare(base: &Report, new: &Report, threshold_pct: f64) -> Diff {
    compare_with(
        base,
        new,
        Rules {
            threshold_pct,
            ..Rules::default()
        },
    )
}

/// The items of two reports matched by `key`: each key with its base and new side (`None`
/// where only one report has it).
fn pair<'r, T, K: Ord, S>(
    base: &'r [T],
    new: &'r [T],
    key: impl Fn(&'r T) -> K,
    side: impl Fn(&'r T) -> S,
) -> BTreeMap<K, (Option<S>, Option<S>)> {
    let mut out: BTreeMap<K, (Option<S>, Option<S>)> = BTreeMap::new();
    for t in base {
        out.entry(key(t)).or_insert((None, None)).0 = Some(side(t));
    }
    for t in new {
        out.entry(key(t)).or_insert((None, None)).1 = Some(side(t));
    }
    out
}

/// Compares `new` against `base` with `rules`.
pub fn compare_with(base: &Report, new: &Report, rules: Rules) -> Diff {
    let threshold_pct = rules.threshold_pct;
    let paths = pair(
        &base.span_totals,
        &new.span_totals,
        |s| s.path.as_slice(),
        side,
    );
    let mut spans: Vec<SpanDiff> = paths
        .into_iter()
        .map(|(path, (b, n))| judge(path.to_vec(), b, n, threshold_pct))
        .collect();
    spans.sort_by(|a, b| {
        rank(a.verdict)
            .cmp(&rank(b.verdict))
            .then_with(|| a.path.cmp(&b.path))
    });
    let sources = pair(&base.frames, &new.frames, |f| f.source.as_str(), frame_side);
    let mut frames: Vec<FrameDiff> = sources
        .into_iter()
        .map(|(source, (b, n))| judge_frames(source.to_string(), b, n, rules))
        .collect();
    frames.sort_by(|a, b| {
        rank(a.verdict)
            .cmp(&rank(b.verdict))
            .then_with(|| a.source.cmp(&b.source))
    });
    // Only between two merged reports: a single run has no stations to compare.
    let both_merged = !base.stations.is_empty() && !new.stations.is_empty();
    let missing_from = |a: &Report, b: &Report| -> Vec<String> {
        if !both_merged {
            return Vec::new();
        }
        a.stations
            .iter()
            .filter(|s| !b.stations.iter().any(|t| t.name == s.name))
            .map(|s| s.name.clone())
            .collect()
    };
    Diff {
        base_session: base.session.name.clone(),
        new_session: new.session.name.clone(),
        threshold_pct,
        miss_rate_z: MISS_RATE_Z,
        min_miss_rise_pct: rules.min_miss_rise_pct,
        spans,
        frames,
        stations_left: missing_from(base, new),
        stations_joined: missing_from(new, base),
    }
}

/// Order of verdicts in a comparison: regressions first.
fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Regressed => 0,
        Verdict::Improved => 1,
        Verdict::Added => 2,
        Verdict::Removed => 3,
        Verdict::Unchanged => 4,
    }
}

fn frame_side(f: &heimdall_perf::reports::FrameReport) -> FrameSide {
    // A report read from a file may hold any counts: never more missed than finished.
    let missed = f.missed.min(f.finished);
    let l = &f.latency.summary;
    FrameSide {
        finished: f.finished,
        missed,
        budget_ns: f.budget_ns,
        miss_rate: (f.budget_ns.is_some() && f.finished > 0)
            .then(|| missed as f64 / f.finished as f64),
        latency_count: l.count,
        latency_p50: l.p50,
        latency_p99: l.p99,
        latency_stddev: l.stddev,
    }
}

/// The one-sided two-proportion test of a rise from `base` to `new` (see the module docs).
fn miss_rate_test(base: &FrameSide, new: &FrameSide, min_rise_pct: f64) -> Option<MissRateTest> {
    let (p1, p2) = (base.miss_rate?, new.miss_rate?);
    let (n1, n2) = (base.finished as f64, new.finished as f64);
    let pooled = (base.missed as f64 + new.missed as f64) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let diff = p2 - p1;
    // se is 0 only when the pooled rate is 0 or 1, that is when both rates are equal.
    let z = if se > 0.0 { diff / se } else { 0.0 };
    let rise_pct = diff * 100.0;
    let verdict = if z > MISS_RATE_Z && rise_pct >= min_rise_pct {
        Verdict::Regressed
    } else if z < -MISS_RATE_Z && -rise_pct >= min_rise_pct {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    Some(MissRateTest {
        base_rate: p1,
        new_rate: p2,
        rise_pct,
        z,
        verdict,
    })
}

/// The latency p99 test: beyond the threshold and beyond the spans' noise rule.
fn latency_test(base: &FrameSide, new: &FrameSide, threshold_pct: f64) -> Option<LatencyTest> {
    if base.latency_count == 0 || new.latency_count == 0 {
        return None;
    }
    let delta = new.latency_p99 - base.latency_p99;
    let se = (base.latency_stddev.powi(2) / base.latency_count as f64
        + new.latency_stddev.powi(2) / new.latency_count as f64)
        .sqrt();
    let noise = NOISE_SIGMAS * se;
    let pct = (base.latency_p99 > 0.0).then(|| delta / base.latency_p99 * 100.0);
    let beyond_threshold = match pct {
        Some(p) => p.abs() > threshold_pct,
        None => delta != 0.0,
    };
    let verdict = if !(beyond_threshold && delta.abs() > noise && delta.is_finite()) {
        Verdict::Unchanged
    } else if delta > 0.0 {
        Verdict::Regressed
    } else {
        Verdict::Improved
    };
    Some(LatencyTest {
        p99_change_pct: pct,
        noise_ns: noise,
        verdict,
    })
}

fn judge_frames(
    source: String,
    base: Option<FrameSide>,
    new: Option<FrameSide>,
    rules: Rules,
) -> FrameDiff {
    let (b, n) = match (base, new) {
        (Some(b), Some(n)) => (b, n),
        (b, n) => {
            return FrameDiff {
                source,
                verdict: if b.is_some() {
                    Verdict::Removed
                } else {
                    Verdict::Added
                },
                base: b,
                new: n,
                miss_rate: None,
                latency: None,
            }
        }
    };
    let miss_rate = miss_rate_test(&b, &n, rules.min_miss_rise_pct);
    let latency = latency_test(&b, &n, rules.threshold_pct);
    let verdicts = [miss_rate.map(|t| t.verdict), latency.map(|t| t.verdict)];
    let verdict = if verdicts.contains(&Some(Verdict::Regressed)) {
        Verdict::Regressed
    } else if verdicts.contains(&Some(Verdict::Improved)) {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    FrameDiff {
        source,
        base: Some(b),
        new: Some(n),
        miss_rate,
        latency,
        verdict,
    }
}

fn judge(path: Vec<String>, base: Option<Side>, new: Option<Side>, threshold_pct: f64) -> SpanDiff {
    let (b, n) = match (base, new) {
        (Some(b), Some(n)) => (b, n),
        (b, n) => {
            return SpanDiff {
                path,
                verdict: if b.is_some() {
                    Verdict::Removed
                } else {
                    Verdict::Added
                },
                base: b,
                new: n,
                mean_change_pct: None,
                noise_ns: None,
            }
        }
    };
    let delta = n.mean - b.mean;
    let se = (b.stddev.powi(2) / b.count.max(1) as f64 + n.stddev.powi(2) / n.count.max(1) as f64)
        .sqrt();
    let noise = NOISE_SIGMAS * se;
    let pct = if b.mean > 0.0 {
        Some(delta / b.mean * 100.0)
    } else {
        None
    };
    let beyond_threshold = match pct {
        Some(p) => p.abs() > threshold_pct,
        // A base mean of zero: any growth is beyond a relative threshold.
        None => delta != 0.0,
    };
    let beyond_noise = delta.abs() > noise;
    let verdict = if !(beyond_threshold && beyond_noise && delta.is_finite()) {
        Verdict::Unchanged
    } else if delta > 0.0 {
        Verdict::Regressed
    } else {
        Verdict::Improved
    };
    SpanDiff {
        path,
        base: Some(b),
        new: Some(n),
        mean_change_pct: pct,
        noise_ns: Some(noise),
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(count: u64, mean: f64, stddev: f64) -> Side {
        Side {
            count,
            mean,
            p50: mean,
            p95: mean,
            p99: mean,
            stddev,
        }
    }

    #[test]
    fn threshold_and_noise_both_matter() {
        // +10 % with tight spread over many samples: a regression.
        let d = judge(
            vec!["a".into()],
            Some(s(1000, 100.0, 5.0)),
            Some(s(1000, 110.0, 5.0)),
            5.0,
        );
        assert_eq!(d.verdict, Verdict::Regressed);
        // +10 % but the spread is huge for the sample size: noise.
        let d = judge(
            vec!["a".into()],
            Some(s(10, 100.0, 80.0)),
            Some(s(10, 110.0, 80.0)),
            5.0,
        );
        assert_eq!(d.verdict, Verdict::Unchanged);
        // Clearly significant but under the threshold.
        let d = judge(
            vec!["a".into()],
            Some(s(100_000, 100.0, 1.0)),
            Some(s(100_000, 103.0, 1.0)),
            5.0,
        );
        assert_eq!(d.verdict, Verdict::Unchanged);
        // Faster: an improvement.
        let d = judge(
            vec!["a".into()],
            Some(s(1000, 100.0, 5.0)),
            Some(s(1000, 80.0, 5.0)),
            5.0,
        );
        assert_eq!(d.verdict, Verdict::Improved);
        // One side only.
        assert_eq!(
            judge(vec!["a".into()], None, Some(s(1, 1.0, 0.0)), 5.0).verdict,
            Verdict::Added
        );
        assert_eq!(
            judge(vec!["a".into()], Some(s(1, 1.0, 0.0)), None, 5.0).verdict,
            Verdict::Removed
        );
        // NaN figures never count as a regression.
        let d = judge(
            vec!["a".into()],
            Some(s(10, 100.0, 1.0)),
            Some(s(10, f64::NAN, 1.0)),
            5.0,
        );
        assert_eq!(d.verdict, Verdict::Unchanged);
    }

    fn frames(finished: u64, missed: u64, budget_ns: Option<u64>, p99: f64, sd: f64) -> FrameSide {
        FrameSide {
            finished,
            missed,
            budget_ns,
            miss_rate: (budget_ns.is_some() && finished > 0)
                .then(|| missed as f64 / finished as f64),
            latency_count: finished,
            latency_p50: p99 / 2.0,
            latency_p99: p99,
            latency_stddev: sd,
        }
    }

    fn judge_f(b: FrameSide, n: FrameSide) -> FrameDiff {
        judge_frames("cam".into(), Some(b), Some(n), Rules::default())
    }

    #[test]
    fn miss_rate_rises_need_z_and_a_minimum_rise() {
        let budget = Some(16_666_667);
        // 1 % → 3 % over 5 000 frames each: z ≈ 7.1.
        let d = judge_f(
            frames(5000, 50, budget, 1e7, 1e5),
            frames(5000, 150, budget, 1e7, 1e5),
        );
        let t = d.miss_rate.unwrap();
        assert!((t.z - 7.1).abs() < 0.1, "{t:?}");
        assert!((t.rise_pct - 2.0).abs() < 1e-9);
        assert_eq!(
            (t.verdict, d.verdict),
            (Verdict::Regressed, Verdict::Regressed)
        );
        // The other way: an improvement.
        let d = judge_f(
            frames(5000, 150, budget, 1e7, 1e5),
            frames(5000, 50, budget, 1e7, 1e5),
        );
        assert_eq!(d.verdict, Verdict::Improved);
        // Both rates 0 or both 100 %: z is 0, not NaN.
        for m in [0, 100] {
            let t = judge_f(
                frames(100, m, budget, 1e7, 1e5),
                frames(100, m, budget, 1e7, 1e5),
            )
            .miss_rate
            .unwrap();
            assert_eq!((t.z, t.verdict), (0.0, Verdict::Unchanged));
        }
        // No budget on one side, or no finished frame: no test.
        assert!(judge_f(
            frames(100, 0, None, 1e7, 1e5),
            frames(100, 50, budget, 1e7, 1e5)
        )
        .miss_rate
        .is_none());
        let d = judge_f(
            frames(0, 0, budget, 0.0, 0.0),
            frames(100, 50, budget, 1e7, 1e5),
        );
        assert!(d.miss_rate.is_none() && d.latency.is_none());
        assert_eq!(d.verdict, Verdict::Unchanged);
    }

    #[test]
    fn frame_sides_of_odd_reports_are_safe() {
        let mut f = heimdall_perf_testkit::sample_report().frames[0].clone();
        f.missed = f.finished + 10; // a hand-edited report
        let s = frame_side(&f);
        assert_eq!(s.missed, s.finished);
        assert_eq!(s.miss_rate, Some(1.0));
        f.finished = 0;
        assert_eq!(frame_side(&f).miss_rate, None);
        // NaN latency figures never make a regression.
        let d = judge_f(
            frames(100, 0, None, 1e7, 1e5),
            frames(100, 0, None, f64::NAN, 1e5),
        );
        assert_eq!(d.verdict, Verdict::Unchanged);
        assert_eq!(d.latency.unwrap().verdict, Verdict::Unchanged);
    }

    #[test]
    fn latency_p99_needs_the_threshold_and_the_noise() {
        // +50 %, tight: a regression of the latency, not of the miss rate.
        let d = judge_f(
            frames(600, 0, None, 1e7, 1e5),
            frames(600, 0, None, 1.5e7, 1e5),
        );
        assert_eq!(d.latency.unwrap().verdict, Verdict::Regressed);
        assert_eq!(d.verdict, Verdict::Regressed);
        assert_eq!(d.latency.unwrap().p99_change_pct, Some(50.0));
        // +50 %, spread wide for 10 frames: noise.
        let d = judge_f(
            frames(10, 0, None, 1e7, 1e8),
            frames(10, 0, None, 1.5e7, 1e8),
        );
        assert_eq!(d.verdict, Verdict::Unchanged);
        // +3 %, tight: under the threshold.
        let d = judge_f(
            frames(600, 0, None, 1e7, 1.0),
            frames(600, 0, None, 1.03e7, 1.0),
        );
        assert_eq!(d.verdict, Verdict::Unchanged);
        // Sources in one report only.
        let only = |b: bool| {
            let s = Some(frames(1, 0, None, 1.0, 0.0));
            judge_frames(
                "x".into(),
                s.filter(|_| b),
                s.filter(|_| !b),
                Rules::default(),
            )
            .verdict
        };
        assert_eq!(
            (only(true), only(false)),
            (Verdict::Removed, Verdict::Added)
        );
    }

    #[test]
    fn a_name_with_a_semicolon_is_not_a_path() {
        let mut base = heimdall_perf_testkit::sample_report();
        let template = base.span_totals[0].clone();
        let span = |path: &[&str], mean: f64| {
            let mut s = template.clone();
            s.path = path.iter().map(|n| n.to_string()).collect();
            s.duration.mean = mean;
            s.duration.stddev = 1.0;
            s.count = 1000;
            s
        };
        let mut new = base.clone();
        base.span_totals = vec![span(&["a;b"], 100.0)];
        new.span_totals = vec![span(&["a", "b"], 1000.0)];
        let d = compare(&base, &new, 5.0);
        let got: Vec<(Vec<String>, Verdict)> = d
            .spans
            .iter()
            .map(|s| (s.path.clone(), s.verdict))
            .collect();
        assert_eq!(
            got,
            [
                (vec!["a".to_string(), "b".to_string()], Verdict::Added),
                (vec!["a;b".to_string()], Verdict::Removed),
            ]
        );
        assert!(!d.has_regressions());

        // Both in both reports: two rows, nothing merged.
        base.span_totals = vec![span(&["a;b"], 100.0), span(&["a", "b"], 1000.0)];
        let d = compare(&base, &base, 5.0);
        assert_eq!(d.spans.len(), 2);
        assert!(d.spans.iter().all(|s| s.verdict == Verdict::Unchanged));
    }
}
