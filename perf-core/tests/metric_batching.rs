//! `MetricCounter::set` stores into its window and folds the window into the running
//! statistics in batches (when the window wraps, and into a copy when read). These tests
//! feed the same value sequences to a counter and to a `ValueStats` that records each value
//! as it comes (the per-value path `set` used before), and compare every statistic bit for
//! bit, after every read: NaN, ±infinity, ±0, subnormal, huge and tiny magnitudes, more
//! values than the window, reads interleaved with sets, windows of 1 and of odd sizes.

mod common;
use common::summary_bits;

use heimdall_perf_core::metrics::MetricCounter;
use heimdall_perf_core::stats::ValueStats;
use heimdall_perf_core::MetricType;
use proptest::prelude::*;

/// One step of a sequence: a value to set, or a read of the statistics.
#[derive(Debug, Clone, Copy)]
enum Step {
    Set(f64),
    Read,
}

/// Runs `steps` through a counter with window `window` and through the per-value
/// reference; fails at the first read (and at the end) where any statistic differs.
fn check(window: usize, steps: &[Step]) -> Result<(), String> {
    let mut counter = MetricCounter::new("m", MetricType::Custom("x".into()), "u", window);
    let mut reference = ValueStats::new();
    let mut seen = Vec::new();
    let compare = |counter: &MetricCounter, reference: &ValueStats, at: usize| {
        let (got, want) = (counter.statistics(), reference.summary());
        if summary_bits(&got) == summary_bits(&want) {
            Ok(())
        } else {
            Err(format!(
                "window {window}, after step {at}: got {got:?}, want {want:?}"
            ))
        }
    };
    for (at, step) in steps.iter().enumerate() {
        match *step {
            Step::Set(v) => {
                counter.set(v);
                reference.record(v);
                seen.push(v);
                if counter.value().to_bits() != v.to_bits() {
                    return Err(format!("value() after set({v:e})"));
                }
            }
            Step::Read => compare(&counter, &reference, at)?,
        }
    }
    compare(&counter, &reference, steps.len())?;
    // The window still holds the last `window` values, oldest first.
    let tail: Vec<u64> = seen[seen.len().saturating_sub(counter.window_len())..]
        .iter()
        .map(|v| v.to_bits())
        .collect();
    let window_now: Vec<u64> = counter.window_values().map(f64::to_bits).collect();
    if window_now != tail {
        return Err(format!("window {window}: window values differ"));
    }
    Ok(())
}

/// Values hard on the statistics: non-finite, signed zeros, subnormal, extreme magnitudes,
/// and ordinary ones.
fn nasty(i: usize) -> f64 {
    const SPECIAL: [f64; 14] = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        f64::MIN,
        1e300,
        -1e-300,
        1.0,
        -3.5,
    ];
    if i.is_multiple_of(3) {
        SPECIAL[(i / 3) % SPECIAL.len()]
    } else {
        // Ordinary values around 60 (a frame rate), some of them negative.
        (i as f64 * 0.37).sin() * 60.0 + 30.0
    }
}

#[test]
fn batched_statistics_equal_per_value_ones_for_nasty_values() {
    for window in [1, 2, 3, 7, 100, 128, 1000] {
        let mut steps = Vec::new();
        for i in 0..5 * window + 13 {
            steps.push(Step::Set(nasty(i)));
            // Reads at irregular places: before, at and after wraps.
            if i.is_multiple_of(5) || i.is_multiple_of(window) || i % window == window - 1 {
                steps.push(Step::Read);
            }
        }
        check(window, &steps).unwrap();
    }
}

#[test]
fn statistics_before_any_value_and_of_only_non_finite_ones() {
    check(4, &[Step::Read]).unwrap();
    let steps: Vec<Step> = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY]
        .iter()
        .cycle()
        .take(11)
        .flat_map(|&v| [Step::Set(v), Step::Read])
        .collect();
    check(4, &steps).unwrap();
}

#[test]
fn a_read_does_not_change_what_is_folded_later() {
    // Reading fold-free (a copy) must leave the counter as if it had not been read.
    let mut read = MetricCounter::new("m", MetricType::Custom("x".into()), "u", 10);
    let mut unread = read.clone();
    for i in 0..95 {
        read.set(nasty(i));
        unread.set(nasty(i));
        if i % 4 == 0 {
            let _ = read.statistics();
        }
    }
    assert_eq!(
        summary_bits(&read.statistics()),
        summary_bits(&unread.statistics())
    );
    let finite = (0..95).filter(|&i| nasty(i).is_finite()).count() as u64;
    assert_eq!(read.statistics().count, finite);
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        2 => -1e6f64..1e6,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0f64),
        1 => (-1074i32..1024).prop_map(|e| 2f64.powi(e)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![8 => value().prop_map(Step::Set), 1 => Just(Step::Read)]
}

proptest! {
    #[test]
    fn batched_statistics_equal_per_value_ones(
        window in 1usize..70,
        steps in proptest::collection::vec(step(), 0..400),
    ) {
        prop_assert!(check(window, &steps).is_ok(), "{:?}", check(window, &steps));
    }
}

proptest! {
    #[test]
    fn record_all_equals_record_on_each(
        before in proptest::collection::vec(value(), 0..50),
        batch in proptest::collection::vec(value(), 0..300),
    ) {
        let mut one_by_one = ValueStats::new();
        let mut batched = ValueStats::new();
        for &v in &before {
            one_by_one.record(v);
            batched.record(v);
        }
        for &v in &batch {
            one_by_one.record(v);
        }
        batched.record_all(&batch);
        prop_assert_eq!(summary_bits(&batched.summary()), summary_bits(&one_by_one.summary()));
        prop_assert_eq!(batched.non_finite(), one_by_one.non_finite());
        prop_assert_eq!(batched.count(), one_by_one.count());
    }
}

#[test]
fn batches_that_collapse_and_move_the_buckets_match_the_per_value_path() {
    // 40 000 values spread over the whole f64 range (far more distinct buckets than the
    // sparse cap, so buckets collapse), then a bulk elsewhere (the window moves), in a
    // scrambled but fixed order; the window of 4 096 wraps many times.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut steps = Vec::new();
    for i in 0..40_000u32 {
        let v = f64::from_bits(next() >> 1) * if i % 2 == 0 { 1.0 } else { -1.0 };
        steps.push(Step::Set(v));
    }
    for i in 0..30_000u32 {
        steps.push(Step::Set(1e-3 * f64::from(i % 977)));
        if i % 7919 == 0 {
            steps.push(Step::Read);
        }
    }
    check(4096, &steps).unwrap();
}

proptest! {
    /// Ordinary metric values (one sign, no zero, a bounded range), after a first batch that
    /// lays out the buckets: the lean path of `record_all` (blocks of finite values of one
    /// sign inside the known buckets), interleaved with blocks that leave it (a zero, the
    /// other sign, a value past the buckets, NaN), gives what `record` gives, bit for bit.
    #[test]
    fn the_lean_path_of_record_all_equals_record_on_each(
        negative in any::<bool>(),
        scale in prop_oneof![Just(1.0f64), Just(1e-300), Just(1e300), 1e-3f64..1e3],
        batches in proptest::collection::vec(
            (
                proptest::collection::vec(1.0f64..120.0, 0..600),
                prop_oneof![
                    6 => Just(None),
                    1 => Just(Some(0.0f64)),
                    1 => Just(Some(-1.0f64)),
                    1 => Just(Some(1e9f64)),
                    1 => Just(Some(f64::NAN)),
                ],
            ),
            1..8,
        ),
    ) {
        let sign = if negative { -1.0 } else { 1.0 };
        let mut one_by_one = ValueStats::new();
        let mut batched = ValueStats::new();
        for (values, odd) in &batches {
            let mut values: Vec<f64> = values.iter().map(|v| sign * scale * v).collect();
            if let Some(odd) = odd {
                let at = values.len() / 2;
                values.insert(at, sign * scale * odd);
            }
            for &v in &values {
                one_by_one.record(v);
            }
            batched.record_all(&values);
            prop_assert_eq!(summary_bits(&batched.summary()), summary_bits(&one_by_one.summary()));
            prop_assert_eq!(batched.non_finite(), one_by_one.non_finite());
        }
        // Every percentile, not only the summary's.
        for q in 0..=100 {
            let q = f64::from(q) / 100.0;
            prop_assert_eq!(
                batched.quantile(q).to_bits(),
                one_by_one.quantile(q).to_bits(),
                "q = {}", q
            );
        }
    }
}
