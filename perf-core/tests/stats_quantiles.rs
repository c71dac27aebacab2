//! Property tests of `ValueStats`: percentiles against the exact sorted-vector quantile for
//! values across magnitudes and signs, and mean/stddev/sum against a direct computation.

use heimdall_perf_core::stats::{PERCENTILE_RELATIVE_PRECISION, VALUE_STATS_RELATIVE_ERROR};
use proptest::prelude::*;

mod common;
use common::{exact_quantile, stats_of, QUANTILES};

// The sketch's bound keeps the README's promise.
const _: () = assert!(VALUE_STATS_RELATIVE_ERROR <= PERCENTILE_RELATIVE_PRECISION);

/// Every quantile within the sketch's relative error (zero exactly), for values whose
/// magnitudes of each sign span less than the bucket window.
fn check_all_quantiles(values: &[f64]) -> Result<(), TestCaseError> {
    let s = stats_of(values);
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    for q in QUANTILES {
        let want = exact_quantile(&sorted, q);
        let got = s.quantile(q);
        if want == 0.0 {
            prop_assert_eq!(got, 0.0, "q{}", q);
        } else {
            let err = (got - want).abs() / want.abs();
            prop_assert!(
                err <= VALUE_STATS_RELATIVE_ERROR,
                "q{}: got {:e}, want {:e}, error {:e}",
                q,
                got,
                want,
                err
            );
        }
    }
    Ok(())
}

/// A positive magnitude `m · 10^e` with `m` in [1, 10).
fn magnitude(exp: std::ops::Range<i32>) -> impl Strategy<Value = f64> {
    (1.0f64..10.0, exp).prop_map(|(m, e)| m * 10f64.powi(e))
}

/// Values of both signs (and some zeros) within a factor 1e9 of a random base in
/// 1e-300..1e290, so that each sign fits the bucket window.
fn mixed_within_window() -> impl Strategy<Value = Vec<f64>> {
    (-300i32..290).prop_flat_map(|base| {
        prop::collection::vec(
            prop_oneof![
                8 => magnitude(base..base + 9),
                8 => magnitude(base..base + 9).prop_map(|v| -v),
                1 => Just(0.0),
                1 => Just(-0.0),
            ],
            1..400,
        )
    })
}

proptest! {
    /// Latencies of 0.1–10 ms in seconds.
    #[test]
    fn latencies_in_seconds(values in prop::collection::vec(1e-4f64..1e-2, 1..1000)) {
        check_all_quantiles(&values)?;
    }

    /// Values from 1e17 to 1e19.
    #[test]
    fn huge_values(values in prop::collection::vec(magnitude(17..19), 1..1000)) {
        check_all_quantiles(&values)?;
    }

    /// Both signs and zeros, at any magnitude from 1e-300 to 1e300.
    #[test]
    fn mixed_signs_and_zeros_at_any_magnitude(values in mixed_within_window()) {
        check_all_quantiles(&values)?;
    }

    /// Near the ends of the f64 range: ±1e308 and f64::MAX, and the smallest normal values.
    #[test]
    fn extremes_of_the_range(
        values in prop::collection::vec(
            prop_oneof![
                Just(1e308), Just(-1e308), Just(f64::MAX), Just(f64::MIN),
                magnitude(300..308), magnitude(300..308).prop_map(|v| -v),
                Just(0.0),
            ],
            1..300,
        )
    ) {
        check_all_quantiles(&values)?;
        let s = stats_of(&values).summary();
        prop_assert!(s.mean.is_finite() && s.stddev.is_finite(), "{:?}", s);
        prop_assert!(s.min <= s.mean && s.mean <= s.max, "{:?}", s);
    }

    /// Values spanning 1e-300 to 1e300 at once, far wider than the dense bucket window: with
    /// fewer distinct buckets than the sparse cap every quantile keeps its precision, zero
    /// stays exact, and every quantile stays within the exact min and max, non-decreasing in
    /// q.
    #[test]
    fn upper_quantiles_when_the_range_is_too_wide(
        values in prop::collection::vec(
            prop_oneof![8 => magnitude(-300..300), 1 => Just(0.0)],
            1..600,
        )
    ) {
        let s = stats_of(&values);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let max = sorted[sorted.len() - 1];
        let mut last = f64::NEG_INFINITY;
        for q in QUANTILES {
            let want = exact_quantile(&sorted, q);
            let got = s.quantile(q);
            prop_assert!(got >= sorted[0] && got <= max && got >= last, "q{}: {:e}", q, got);
            last = got;
            if want == 0.0 {
                prop_assert_eq!(got, 0.0);
            } else {
                let err = (got - want).abs() / want;
                prop_assert!(
                    err <= VALUE_STATS_RELATIVE_ERROR,
                    "q{}: got {:e}, want {:e}", q, got, want
                );
            }
        }
    }

    /// Mean, standard deviation and sum against a direct two-pass computation, for values of
    /// both signs and any magnitude from 1e-300 to 1e300 (the direct computation is done on
    /// values scaled by a power of two to the largest magnitude, so that it cannot overflow).
    #[test]
    fn moments_match_direct_computation(
        values in prop::collection::vec(
            (any::<bool>(), magnitude(-300..300)).prop_map(|(neg, v)| if neg { -v } else { v }),
            1..300,
        )
    ) {
        let s = stats_of(&values).summary();
        let spread = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let scale = 2f64.powi(-(spread.log2().floor() as i32));
        let n = values.len() as f64;
        let mean_s = values.iter().map(|v| v * scale).sum::<f64>() / n;
        let var_s = values.iter().map(|v| (v * scale - mean_s).powi(2)).sum::<f64>() / n;
        let (mean, sd) = (mean_s / scale, var_s.sqrt() / scale);
        // Right relative to the largest magnitude (the precision of any f64 sum).
        prop_assert!((s.mean - mean).abs() <= 1e-12 * spread, "mean {:e} vs {:e}", s.mean, mean);
        prop_assert!((s.stddev - sd).abs() <= 1e-9 * spread, "sd {:e} vs {:e}", s.stddev, sd);
        prop_assert!((s.sum - mean * n).abs() <= 1e-12 * spread * n, "sum {:e}", s.sum);
    }
}

#[test]
fn subnormals_are_kept_to_an_absolute_two_to_the_minus_1029() {
    let tiny = f64::MIN_POSITIVE; // 2.2e-308, the smallest normal value
    let values: Vec<f64> = (1..=100).map(|i| tiny * i as f64 / 101.0).collect();
    let s = stats_of(&values);
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let width = f64::from_bits(1 << 45); // 2^-1029, 45 mantissa bits of a subnormal
    assert_eq!(width, 2f64.powi(-29) * 2f64.powi(-1000));
    for q in QUANTILES {
        let (got, want) = (s.quantile(q), exact_quantile(&sorted, q));
        assert!(
            got >= want && got - want <= width,
            "q{q}: {got:e} vs {want:e}"
        );
    }
}
