//! Hostile uses of quick periodic sources (`PeriodicSource::is_quick`), sampled on the
//! session's aggregator thread: intervals the clock cannot add, sources that panic when
//! dropped, that change their name, that call back into the session from `sample`, and
//! rounds that take seconds while the program starts other sources and takes reports.
//!
//! The tests run one at a time (`serial`): they find the aggregator through
//! `/proc/self/task`.

mod common;
use common::pacing::*;
use common::quick::*;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

use heimdall_perf_core::{scope, PeriodicSource, ProfilingSession, Samples};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A quick source at `Duration::MAX` (or a year) gets its first round at once and no
/// other; the aggregator thread lives on (its next round is not an `Instant` overflow
/// panic): another quick source keeps its rounds and spans still reach the aggregate.
#[test]
fn an_interval_the_clock_cannot_add_leaves_the_aggregator_running() {
    let _serial = serial();
    let (mut session, tid) = session_with_aggregator("quick-max", None);
    let (never, never_rounds) = Probe::new("never", true);
    let (year, year_rounds) = Probe::new("year", true);
    session
        .start_periodic(Box::new(never), Duration::MAX)
        .unwrap();
    session
        .start_periodic(Box::new(year), Duration::from_secs(365 * 86_400))
        .unwrap();
    wait_for(30, "the first rounds", || {
        rounds(&never_rounds) == 1 && rounds(&year_rounds) == 1
    });
    let (ticker, ticks) = Probe::new("ticker", true);
    session
        .start_periodic(Box::new(ticker), Duration::from_millis(10))
        .unwrap();
    wait_for(30, "the ticker's rounds", || rounds(&ticks) >= 10);
    assert!(schedstat(tid).is_some(), "the aggregator thread lives");
    assert_eq!(rounds(&never_rounds), 1, "one round only");
    assert_eq!(rounds(&year_rounds), 1, "one round only");
    assert!(session.stop_periodic("never"));
    session.stop();
}

/// A quick source whose `Drop` panics: `stop_periodic`, `stop` and the session's drop go
/// on and return normally, as they do for a source on a thread of its own (whose panic
/// ends that thread). The panic is counted as the source's `panicked` figure.
#[test]
fn a_quick_source_that_panics_when_dropped_does_not_break_the_stop() {
    let _serial = serial();
    let _quiet = quiet_on_purpose_panics();

    let (mut session, tid) = session_with_aggregator("quick-drop-panics", None);
    let (mut a, _) = Probe::new("a", true);
    a.panic_on_drop = true;
    let (mut b, _) = Probe::new("b", true);
    b.panic_on_drop = true;
    let (c, c_rounds) = Probe::new("c", true);
    session
        .start_periodic(Box::new(a), Duration::from_millis(10))
        .unwrap();
    session
        .start_periodic(Box::new(b), Duration::from_millis(10))
        .unwrap();
    session
        .start_periodic(Box::new(c), Duration::from_millis(10))
        .unwrap();
    wait_for(30, "rounds", || rounds(&c_rounds) >= 3);

    let stopped =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.stop_periodic("a")));
    assert!(matches!(stopped, Ok(true)), "stop_periodic panicked");
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.stop()));
    assert!(stopped.is_ok(), "stop panicked");
    assert!(!session.is_active(), "the stop went to its end");
    wait_for(30, "the aggregator to exit", || schedstat(tid).is_none());
    let failures = session.report().diagnostics.sampler_failures;
    assert_eq!(failures.get("a/panicked"), Some(&1), "{failures:?}");
    assert_eq!(failures.get("b/panicked"), Some(&1), "{failures:?}");

    // Dropped without a stop.
    let (session, _) = session_with_aggregator("quick-drop-panics-2", None);
    let mut session = session;
    let (mut d, d_rounds) = Probe::new("d", true);
    d.panic_on_drop = true;
    session
        .start_periodic(Box::new(d), Duration::from_millis(10))
        .unwrap();
    wait_for(30, "a round", || rounds(&d_rounds) >= 1);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(session)));
    assert!(dropped.is_ok(), "dropping the session panicked");
}

/// A source whose name changes from call to call (`a`, then `b`, …) is registered under
/// the name that was checked: it cannot join a running source of the same name, and
/// `stop_periodic` finds each source once.
#[test]
fn a_source_whose_name_changes_is_registered_under_the_name_checked() {
    struct Fickle(AtomicUsize);
    impl PeriodicSource for Fickle {
        fn name(&self) -> &str {
            ["a", "b"][self.0.fetch_add(1, Ordering::SeqCst) % 2]
        }
        fn sample(&mut self, out: &mut Samples<'_>) {
            out.record("fickle", "rounds", 1.0);
        }
        fn is_quick(&self) -> bool {
            true
        }
    }
    let _serial = serial();
    for quick_b in [true, false] {
        let (mut session, _) = session_with_aggregator("quick-fickle", None);
        let (b, _) = Probe::new("b", true);
        struct QuickOrNot(Probe, bool);
        impl PeriodicSource for QuickOrNot {
            fn name(&self) -> &str {
                self.0.name()
            }
            fn sample(&mut self, out: &mut Samples<'_>) {
                self.0.sample(out)
            }
            fn is_quick(&self) -> bool {
                self.1
            }
        }
        session
            .start_periodic(Box::new(QuickOrNot(b, quick_b)), Duration::from_millis(10))
            .unwrap();
        // Checked as `a` (free), so it runs as `a`; or refused: never a second `b`.
        let started = session.start_periodic(
            Box::new(Fickle(AtomicUsize::new(0))),
            Duration::from_millis(10),
        );
        assert!(session.stop_periodic("b"), "the first `b`");
        assert!(
            !session.stop_periodic("b"),
            "a second source ran under the name `b` (quick b: {quick_b})"
        );
        if started.is_ok() {
            assert!(session.stop_periodic("a"));
        }
        session.stop();
    }
}

/// A quick source that takes a report of its own session from `sample` (through a weak
/// handle and `try_lock`, as a careful program does): neither the round nor the session's
/// stop hangs.
#[test]
fn a_quick_source_that_takes_a_report_from_sample_does_not_hang() {
    struct Watchdog {
        session: Arc<Mutex<Weak<Mutex<ProfilingSession>>>>,
        reports: Arc<AtomicU64>,
    }
    impl PeriodicSource for Watchdog {
        fn name(&self) -> &str {
            "watchdog"
        }
        fn sample(&mut self, out: &mut Samples<'_>) {
            let weak = self.session.lock().unwrap().clone();
            let Some(session) = weak.upgrade() else {
                return;
            };
            let Ok(session) = session.try_lock() else {
                return;
            };
            let report = session.report();
            self.reports.fetch_add(1, Ordering::SeqCst);
            out.record("watchdog.series", "series", report.series.len() as f64);
        }
        fn is_quick(&self) -> bool {
            true
        }
    }
    let _serial = serial();
    let (session, _) = session_with_aggregator("quick-callback", None);
    let session = Arc::new(Mutex::new(session));
    let handle = Arc::new(Mutex::new(Weak::new()));
    *handle.lock().unwrap() = Arc::downgrade(&session);
    let reports = Arc::new(AtomicU64::new(0));
    let source = Watchdog {
        session: handle,
        reports: Arc::clone(&reports),
    };
    session
        .lock()
        .unwrap()
        .start_periodic(Box::new(source), Duration::from_millis(10))
        .unwrap();
    let r = Arc::clone(&reports);
    within(
        60,
        "reports taken from a quick source's rounds",
        move || {
            while r.load(Ordering::SeqCst) < 5 {
                thread::sleep(Duration::from_millis(2));
            }
        },
    );
    let s = Arc::clone(&session);
    within(60, "the session's stop", move || s.lock().unwrap().stop());
    let report = session.lock().unwrap().report();
    assert!(report.series("watchdog.series").unwrap().points.len() >= 5);
}

/// A quick source that takes seconds a round (it lies about being quick): the program
/// that starts another source, stops another one, or takes a report meanwhile is not held
/// up for the round — it holds the session's lock, which every timing call waits for.
#[test]
fn a_slow_quick_round_does_not_hold_up_other_sources_or_reports() {
    let _serial = serial();
    let (mut session, _) = session_with_aggregator("quick-slow-round", None);
    let (other, other_rounds) = Probe::new("other", true);
    session
        .start_periodic(Box::new(other), Duration::from_millis(10))
        .unwrap();
    wait_for(30, "the other source's round", || {
        rounds(&other_rounds) >= 1
    });
    let (mut slow, slow_rounds) = Probe::new("slow", true);
    slow.takes = Duration::from_millis(1500);
    session
        .start_periodic(Box::new(slow), Duration::from_millis(10))
        .unwrap();
    wait_for(30, "a slow round under way", || rounds(&slow_rounds) >= 1);
    thread::sleep(Duration::from_millis(20));

    let t = Instant::now();
    let (late, late_rounds) = Probe::new("late", true);
    session
        .start_periodic(Box::new(late), Duration::from_millis(10))
        .unwrap();
    let started = t.elapsed();
    let t = Instant::now();
    assert!(session.stop_periodic("other"));
    let stopped = t.elapsed();
    let t = Instant::now();
    for _ in 0..10 {
        let _s = scope!("while-slow");
    }
    let report = session.report();
    let reported = t.elapsed();
    assert_eq!(report.span_total(&["while-slow"]).unwrap().count, 10);
    // Each call, held up by the round, would wait for the rest of it (over 1.4 s); the
    // bounds leave a loaded machine room to keep the caller from the CPU for a while.
    assert!(
        started < Duration::from_millis(700),
        "start_periodic waited {started:?} for another source's round"
    );
    assert!(
        stopped < Duration::from_millis(700),
        "stop_periodic waited {stopped:?} for another source's round"
    );
    assert!(
        reported < Duration::from_millis(700),
        "report waited {reported:?} for a source's round"
    );
    // The slow round holds up the aggregator's rounds, not its sources' registration.
    wait_for(30, "the late source's round", || rounds(&late_rounds) >= 1);
    let t = Instant::now();
    session.stop();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}
