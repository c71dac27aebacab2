//! `ValueStats` percentiles when one sign's magnitudes span far more than the dense bucket
//! window (2³²): single huge or tiny outliers, values spread over 1e-300..1e300 with few
//! distinct buckets, mixed signs. While the number of distinct non-empty buckets of a sign
//! stays within `VALUE_STATS_MAX_SPARSE_BUCKETS`, every percentile is within 1/128 of the
//! exact sorted-vector quantile; past it, the lowest values fold and only the percentiles
//! above them keep the precision.

use heimdall_perf_core::stats::{PERCENTILE_RELATIVE_PRECISION, VALUE_STATS_RELATIVE_ERROR};
use proptest::prelude::*;

mod common;
use common::{exact_quantile, stats_of, QUANTILES};

/// Every quantile of `values` within `VALUE_STATS_RELATIVE_ERROR` of the exact one (zero
/// exactly), and non-decreasing in q.
fn check(values: &[f64]) -> Result<(), String> {
    let s = stats_of(values);
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let mut last = f64::NEG_INFINITY;
    for q in QUANTILES {
        let want = exact_quantile(&sorted, q);
        let got = s.quantile(q);
        let ok = if want == 0.0 {
            got == 0.0
        } else {
            (got - want).abs() / want.abs() <= VALUE_STATS_RELATIVE_ERROR
        };
        if !ok || got < last {
            return Err(format!("q{q}: got {got:e}, want {want:e}"));
        }
        last = got;
    }
    Ok(())
}

#[test]
fn one_huge_value_leaves_the_median_alone() {
    let s = stats_of(&[1.0, 1.0, 1.0, 1e308]);
    assert_eq!(s.quantile(0.5), 1.0);
    check(&[1.0, 1.0, 1.0, 1e308]).unwrap();
    check(&[1.0, 1.0, 1.0, f64::MAX]).unwrap();
    check(&[1.0, 1.0, 1.0, 1e-308]).unwrap();
}

#[test]
fn extremes_of_both_signs_keep_the_median() {
    let values = [1e300, 1e-300, -1e300, 1.0];
    let s = stats_of(&values);
    let p50 = s.quantile(0.5);
    assert!(
        (p50 - 1e-300).abs() <= 1e-300 * VALUE_STATS_RELATIVE_ERROR,
        "{p50:e}"
    );
    check(&values).unwrap();
}

#[test]
fn a_thousand_powers_spanning_the_range() {
    let values: Vec<f64> = (0..1000).map(|i| 10f64.powf(0.3 * i as f64)).collect();
    check(&values).unwrap();
    let p50 = stats_of(&values).quantile(0.5);
    let want = 10f64.powf(0.3 * 499.0);
    assert!(
        (p50 - want).abs() <= want * PERCENTILE_RELATIVE_PRECISION,
        "{p50:e}"
    );
    // The same, negative.
    let negatives: Vec<f64> = values.iter().map(|v| -v).collect();
    check(&negatives).unwrap();
    // Both signs at once, and zeros.
    let mut mixed: Vec<f64> = values
        .iter()
        .zip(&negatives)
        .flat_map(|(&a, &b)| [a, b])
        .collect();
    mixed.extend([0.0; 7]);
    check(&mixed).unwrap();
}

#[test]
fn negative_values_over_300_decades() {
    // p1 … p90 used to read -3.2e9 for these.
    let values: Vec<f64> = (0..=300).map(|i| -(10f64.powi(i))).collect();
    let s = stats_of(&values);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    for q in [0.01, 0.5, 0.9] {
        let (got, want) = (s.quantile(q), exact_quantile(&sorted, q));
        assert!(
            (got - want).abs() <= -want * VALUE_STATS_RELATIVE_ERROR,
            "q{q}: got {got:e}, want {want:e}"
        );
    }
    check(&values).unwrap();
}

#[test]
fn a_value_drifting_over_sixty_powers_of_two() {
    // A slowly rising counter: 7 000 distinct buckets in all, within the caps.
    let mut values = Vec::new();
    let mut v = 1.0;
    while v < 2f64.powi(60) {
        values.push(v);
        v *= 1.006;
    }
    check(&values).unwrap();
}

#[test]
fn past_the_bucket_cap_the_top_keeps_its_precision() {
    // 20 000 distinct buckets of positive values: the lowest fold into the lowest kept
    // bucket (read above their true value), the top 3 584 buckets keep 1/128.
    let values: Vec<f64> = (0..20_000)
        .map(|i| 2f64.powf(i as f64 / 100.0 - 100.0))
        .collect();
    let s = stats_of(&values);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mut last = f64::NEG_INFINITY;
    for i in 0..=1000 {
        let q = i as f64 / 1000.0;
        let (got, want) = (s.quantile(q), exact_quantile(&sorted, q));
        assert!(got >= last, "q{q}: not monotonic");
        last = got;
        if q * n > n - 3000.0 || q == 0.0 {
            assert!(
                (got - want).abs() <= want * VALUE_STATS_RELATIVE_ERROR,
                "q{q}: got {got:e}, want {want:e}"
            );
        } else {
            assert!(got >= want, "q{q}: got {got:e} below {want:e}");
        }
    }
    // The same for negatives: the most negative values fold, the ones nearest zero are kept.
    let negatives: Vec<f64> = values.iter().map(|v| -v).collect();
    let s = stats_of(&negatives);
    sorted = negatives.clone();
    sorted.sort_by(f64::total_cmp);
    for i in 0..=1000 {
        let q = i as f64 / 1000.0;
        let (got, want) = (s.quantile(q), exact_quantile(&sorted, q));
        if q * n > n - 3000.0 || q == 0.0 {
            assert!(
                (got - want).abs() <= -want * VALUE_STATS_RELATIVE_ERROR,
                "q{q}: got {got:e}, want {want:e}"
            );
        } else {
            // Folded (read above the true value) or kept (within 1/128, below for negatives).
            assert!(
                got >= want + want * VALUE_STATS_RELATIVE_ERROR,
                "q{q}: got {got:e} below {want:e}"
            );
        }
    }
}

#[test]
fn negative_zero_is_zero() {
    let s = stats_of(&[-0.0, 0.0, -0.0]);
    let sum = s.summary();
    for (what, v) in [
        ("min", sum.min),
        ("max", sum.max),
        ("p50", sum.p50),
        ("p99", sum.p99),
        ("mean", sum.mean),
    ] {
        assert!(v == 0.0 && v.is_sign_positive(), "{what} = {v}");
    }
    let s = stats_of(&[-0.0]).summary();
    assert!(s.max.is_sign_positive() && s.p50.is_sign_positive());
}

/// A positive magnitude `m · 10^e` with `m` in [1, 10).
fn magnitude(exp: std::ops::Range<i32>) -> impl Strategy<Value = f64> {
    (1.0f64..10.0, exp).prop_map(|(m, e)| m * 10f64.powi(e))
}

fn signed(exp: std::ops::Range<i32>) -> impl Strategy<Value = f64> {
    (any::<bool>(), magnitude(exp)).prop_map(|(neg, v)| if neg { -v } else { v })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A few distinct magnitudes anywhere in 1e-300..1e300, repeated many times.
    #[test]
    fn few_magnitudes_across_the_range(
        magnitudes in prop::collection::vec(signed(-300..300), 1..12),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..800),
    ) {
        let values: Vec<f64> = picks.iter().map(|i| magnitudes[i.index(magnitudes.len())]).collect();
        check(&values).map_err(TestCaseError::fail)?;
    }

    /// Values within a factor 1e3 of a base, plus one to three outliers of any magnitude
    /// and sign.
    #[test]
    fn single_huge_or_tiny_outliers(
        base in -300i32..297,
        body in prop::collection::vec(1.0f64..1000.0, 1..500),
        outliers in prop::collection::vec(
            prop_oneof![
                signed(-308..308),
                Just(f64::MAX), Just(f64::MIN), Just(f64::MIN_POSITIVE), Just(-f64::MIN_POSITIVE),
            ],
            1..4,
        ),
        first in any::<bool>(),
    ) {
        let scale = 10f64.powi(base);
        let mut values: Vec<f64> = body.iter().map(|v| v * scale).collect();
        if first {
            // The outliers first, where they used to place the bucket window.
            values.splice(0..0, outliers);
        } else {
            values.extend(outliers);
        }
        check(&values).map_err(TestCaseError::fail)?;
    }

    /// Both signs, zeros, any magnitude from 1e-300 to 1e300 (at most 1 200 distinct buckets).
    #[test]
    fn mixed_signs_over_the_whole_range(
        values in prop::collection::vec(
            prop_oneof![12 => signed(-300..300), 1 => Just(0.0), 1 => Just(-0.0)],
            1..1200,
        )
    ) {
        check(&values).map_err(TestCaseError::fail)?;
    }
}
