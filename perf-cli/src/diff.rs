//! Comparing two reports span by span, and deciding what regressed.
//!
//! A span **regressed** when its mean duration grew by more than the threshold (default 5 %)
//! *and* the growth is larger than the noise the two runs show: three standard errors of the
//! difference of the means, `3 × sqrt(sd_base² / n_base + sd_new² / n_new)`, from each
//! report's recorded standard deviation and count (a Welch-style test; three standard errors
//! leave a chance of about 0.3 % that pure noise is called a change). An **improvement** is
//! the same in the other direction. p50, p95 and p99 are shown for context; they come from
//! the reports' histograms (1 % precision).

use std::collections::BTreeMap;

use heimdall_perf::reports::Report;
use serde::Serialize;

/// How many standard errors a change must exceed to be more than noise.
pub const NOISE_SIGMAS: f64 = 3.0;

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

/// The comparison of two reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    /// Base session name.
    pub base_session: String,
    /// New session name.
    pub new_session: String,
    /// Threshold used, percent.
    pub threshold_pct: f64,
    /// Every span of either report, regressions first, then by path.
    pub spans: Vec<SpanDiff>,
}

impl Diff {
    /// Spans that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &SpanDiff> {
        self.spans
            .iter()
            .filter(|s| s.verdict == Verdict::Regressed)
    }

    /// Whether anything regressed.
    pub fn has_regressions(&self) -> bool {
        self.regressions().next().is_some()
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

/// Compares `new` against `base` with a threshold in percent.
pub fn compare(base: &Report, new: &Report, threshold_pct: f64) -> Diff {
    let mut paths: BTreeMap<&[String], (Option<Side>, Option<Side>)> = BTreeMap::new();
    for s in &base.span_totals {
        paths.entry(&s.path).or_default().0 = Some(side(s));
    }
    for s in &new.span_totals {
        paths.entry(&s.path).or_default().1 = Some(side(s));
    }
    let mut spans: Vec<SpanDiff> = paths
        .into_iter()
        .map(|(path, (b, n))| judge(path.to_vec(), b, n, threshold_pct))
        .collect();
    let rank = |v: Verdict| match v {
        Verdict::Regressed => 0,
        Verdict::Improved => 1,
        Verdict::Added => 2,
        Verdict::Removed => 3,
        Verdict::Unchanged => 4,
    };
    spans.sort_by(|a, b| {
        rank(a.verdict)
            .cmp(&rank(b.verdict))
            .then_with(|| a.path.cmp(&b.path))
    });
    Diff {
        base_session: base.session.name.clone(),
        new_session: new.session.name.clone(),
        threshold_pct,
        spans,
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
