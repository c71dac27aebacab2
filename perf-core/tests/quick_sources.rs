//! Quick periodic sources (`PeriodicSource::is_quick`): sampled on the session's aggregator
//! thread, one wake-up for a round and a pass, no thread of their own — and what a source
//! that lies about being quick, panics, or is stopped mid-round does to them.
//!
//! The tests run one at a time (`serial`): they count this process's threads by name and
//! the aggregator's wake-ups through `/proc/self/task`.

mod common;
use common::pacing::*;
use common::quick::*;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use heimdall_perf_core::scope;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `heimdall-perf-sampler-…` as Linux shows it in `comm` (15 bytes).
const SAMPLER_COMM: &str = "heimdall-perf-s";

/// A quick source is sampled by the aggregator thread, first at once, then at its interval,
/// and starts no thread; a source that is not quick gets its own, as before.
///
/// "At once" is checked with a source whose interval is long (10 s) beside the delays of a
/// loaded machine, and the rounds at 50 ms are counted over a measured two seconds: none
/// doubled, and a round skipped only when the thread was kept from the CPU for a whole
/// interval (three in four are asked for).
#[test]
fn a_quick_source_runs_on_the_aggregator_thread_and_starts_none() {
    let _serial = serial();
    let (mut session, _) = session_with_aggregator("quick-thread", None);
    let samplers = tasks_named(SAMPLER_COMM).len();

    let (first, first_seen) = Probe::new("first", true);
    let started = Instant::now();
    session
        .start_periodic(Box::new(first), Duration::from_secs(10))
        .unwrap();
    wait_for(30, "the first round", || rounds(&first_seen) >= 1);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the first round comes at once, not an interval (10 s) later: {:?}",
        started.elapsed()
    );

    let interval = Duration::from_millis(50);
    let (quick, seen) = Probe::new("quick", true);
    session.start_periodic(Box::new(quick), interval).unwrap();
    wait_for(30, "the first round", || rounds(&seen) >= 1);
    assert_eq!(
        tasks_named(SAMPLER_COMM).len(),
        samplers,
        "no thread of its own"
    );
    let (t0, n0) = (Instant::now(), rounds(&seen));
    thread::sleep(Duration::from_secs(2));
    let (elapsed, n) = (t0.elapsed(), rounds(&seen));
    let during = n - n0;
    // About 40 rounds in 2 s at 50 ms: none doubled (rounds are due on a fixed schedule, at
    // most one more may have been late from before), none skipped in a quiet process.
    let due = elapsed.as_secs_f64() / interval.as_secs_f64();
    assert!(
        during as f64 <= due + 2.0 && during as f64 >= due * 0.75,
        "{during} rounds in {elapsed:?} at {interval:?}"
    );
    assert_eq!(
        rounds(&first_seen),
        1,
        "the 10 s source's next round is not due"
    );
    let threads = seen.threads.lock().unwrap().clone();
    assert_eq!(threads.len(), 1, "{threads:?}");
    assert!(
        threads
            .iter()
            .all(|t| t.starts_with("heimdall-perf-aggregator-")),
        "{threads:?}"
    );
    assert_eq!(*first_seen.threads.lock().unwrap(), threads);

    let (slow, slow_seen) = Probe::new("slow", false);
    session
        .start_periodic(Box::new(slow), Duration::from_millis(50))
        .unwrap();
    wait_for(30, "the slow source's first round", || {
        rounds(&slow_seen) >= 1
    });
    assert_eq!(tasks_named(SAMPLER_COMM).len(), samplers + 1);
    assert_eq!(
        *slow_seen.threads.lock().unwrap(),
        BTreeSet::from(["heimdall-perf-sampler-slow".to_string()])
    );
    session.stop();
    let report = session.report();
    let points = report.series("quick.round").expect("the quick series");
    assert_eq!(points.source, "quick");
    assert!(points.points.len() as u64 >= n);
}

/// A line quiet enough for the longest pace, and a quick source at 500 ms: the aggregator
/// wakes about once a round (a round takes the pass with it), not once for each.
#[test]
fn a_round_and_a_pass_share_one_wake_up() {
    let _serial = serial();
    let (mut session, tid) = session_with_aggregator("quick-wakes", None);
    let (quick, seen) = Probe::new("quick", true);
    session
        .start_periodic(Box::new(quick), Duration::from_millis(500))
        .unwrap();
    idle();
    let before = rounds(&seen);
    let wakes = wake_ups_over(tid, 3);
    let during = rounds(&seen) - before;
    assert!(
        (5..=7).contains(&during),
        "{during} rounds in 3 s at 500 ms"
    );
    // Alone, the pass would wake it 3 times and the rounds 6: 9. Shared: 6, and a spare
    // one or two for a busy machine's preemptions.
    assert!(wakes <= during + 2, "{wakes} wake-ups for {during} rounds");
    session.stop();
}

/// Stopping a quick source waits for its round under way, drops it, and no round comes
/// after; its name is free again. One name at a time, quick or not.
#[test]
fn stopping_a_quick_source_mid_round_waits_for_the_round_and_frees_the_name() {
    let _serial = serial();
    let (mut session, _) = session_with_aggregator("quick-stop", None);
    let (mut quick, seen) = Probe::new("cam", true);
    quick.takes = Duration::from_millis(100);
    session
        .start_periodic(Box::new(quick), Duration::from_millis(10))
        .unwrap();
    let (other, _) = Probe::new("cam", false);
    let e = session
        .start_periodic(Box::new(other), Duration::from_millis(10))
        .unwrap_err();
    assert!(e.to_string().contains("cam"), "{e}");
    // Mid-round: the round started and sleeps.
    wait_for(30, "a round under way", || rounds(&seen) >= 1);
    assert!(session.stop_periodic("cam"));
    assert!(
        seen.dropped.load(Ordering::SeqCst),
        "dropped by stop_periodic"
    );
    let after = rounds(&seen);
    thread::sleep(Duration::from_millis(150));
    assert_eq!(rounds(&seen), after, "no round after the stop");
    assert!(!session.stop_periodic("cam"), "stopped already");

    // The name is free: a source that is not quick takes it, then a quick one again.
    let (slow, slow_seen) = Probe::new("cam", false);
    session
        .start_periodic(Box::new(slow), Duration::from_millis(10))
        .unwrap();
    wait_for(30, "the new source's round", || rounds(&slow_seen) >= 1);
    let (quick, _) = Probe::new("cam", true);
    assert!(session
        .start_periodic(Box::new(quick), Duration::from_millis(10))
        .is_err());
    assert!(session.stop_periodic("cam"));
    let (quick, again) = Probe::new("cam", true);
    session
        .start_periodic(Box::new(quick), Duration::from_millis(10))
        .unwrap();
    wait_for(30, "the quick source back", || rounds(&again) >= 1);

    // Stopping the session drops it too, and the session's stop returns promptly.
    let start = Instant::now();
    session.stop();
    assert!(again.dropped.load(Ordering::SeqCst));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // A stopped session starts no source.
    let (late, _) = Probe::new("late", true);
    assert!(session
        .start_periodic(Box::new(late), Duration::from_millis(10))
        .is_err());
}

/// A quick source that panics every round: each panic is counted as its failed figure
/// `panicked`, the rounds go on, and so do the aggregator's passes.
#[test]
fn a_panicking_quick_source_is_counted_and_the_aggregator_goes_on() {
    let _serial = serial();
    let (mut session, tid) = session_with_aggregator("quick-panics", None);
    let (mut bad, seen) = Probe::new("bad", true);
    bad.panics = true;
    let (good, good_seen) = Probe::new("good", true);
    let quiet = quiet_on_purpose_panics();
    session
        .start_periodic(Box::new(bad), Duration::from_millis(20))
        .unwrap();
    session
        .start_periodic(Box::new(good), Duration::from_millis(20))
        .unwrap();
    wait_for(30, "rounds of both after panics", || {
        rounds(&seen) >= 5 && rounds(&good_seen) >= 5
    });
    assert!(schedstat(tid).is_some(), "the aggregator thread lives");
    // Spans still reach the aggregate without a report's own drain: wait for a pass.
    for _ in 0..100 {
        let _s = scope!("after-panics");
    }
    right_after_a_pass(tid);
    session.stop();
    drop(quiet);
    let report = session.report();
    let failed = report.diagnostics.sampler_failures["bad/panicked"];
    assert!(failed >= 5, "{failed}");
    assert!(
        report.series("bad.round").is_none(),
        "nothing recorded by a panicking round"
    );
    assert!(report.series("good.round").unwrap().points.len() >= 5);
    let t = report
        .span_total(&["after-panics"])
        .expect("spans recorded");
    assert_eq!(t.count, 100);
}

/// A source that says it is quick and takes 200 ms a round, every 10 ms: the aggregator's
/// passes wait behind it, and nothing is lost — a thread recording a burst of spans drains
/// its own lane when it runs far ahead, and every span is in the report.
#[test]
fn a_source_slower_than_it_says_delays_passes_and_loses_nothing() {
    let _serial = serial();
    let (mut session, _) = session_with_aggregator("quick-liar", None);
    let (mut liar, seen) = Probe::new("liar", true);
    liar.takes = Duration::from_millis(200);
    session
        .start_periodic(Box::new(liar), Duration::from_millis(10))
        .unwrap();
    wait_for(30, "a round under way", || rounds(&seen) >= 1);
    const SPANS: u64 = 2_000_000;
    let recorder = thread::spawn(|| {
        for _ in 0..SPANS {
            let _s = scope!("burst");
        }
    });
    recorder.join().unwrap();
    let start = Instant::now();
    session.stop();
    // The stop waits for the round under way, at most.
    assert!(
        start.elapsed() < Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
    let report = session.report();
    assert_eq!(
        report.span_total(&["burst"]).expect("the burst").count,
        SPANS
    );
    assert_eq!(report.diagnostics.abandoned_spans, 0);
}
