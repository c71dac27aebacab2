//! The background aggregator woken by the line: a thread recording frames wakes it for its
//! due round and pass (a wake-up by a running thread costs a VM a fraction of a timer's),
//! and its own timer, a sixteenth of the wait later (at most 50 ms), wakes it when no frame
//! comes.
//!
//! Rounds are due an interval apart from the first. A line recording a frame every 2 ms
//! wakes the aggregator a few milliseconds after the due time at most; the timer would be
//! up to 50 ms after it (a 1 s wait). Which of them woke it is checked in the crate's own
//! tests (`session::tests`).
//!
//! `FrameSource::begin` records into the process-wide current session, and the timings
//! must not share the machine with each other: the tests run one at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use heimdall_perf_core::{FrameSource, PeriodicSource, ProfilingSession, Samples};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The interval of the rounds: the timer then wakes the aggregator 50 ms late (the
/// longest grace).
const INTERVAL: Duration = Duration::from_millis(1000);
/// Rounds after the first whose lateness is looked at.
const ROUNDS: usize = 4;

/// A quick source that keeps the time of each of its rounds.
struct Clocked(Arc<Mutex<Vec<Instant>>>);

impl PeriodicSource for Clocked {
    fn name(&self) -> &str {
        "clocked"
    }
    fn sample(&mut self, out: &mut Samples<'_>) {
        self.0.lock().unwrap().push(Instant::now());
        out.record("clocked.round", "rounds", 1.0);
    }
    fn is_quick(&self) -> bool {
        true
    }
}

/// How late each round after the first ran, in ms, sorted, with frames recorded every 2 ms
/// on another thread meanwhile or not.
fn lateness_ms(name: &str, frames: bool) -> Vec<f64> {
    let session = Arc::new(Mutex::new(ProfilingSession::new(name)));
    let times = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let line = frames.then(|| {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let source = FrameSource::new("line-wake");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                source.begin().finish();
                n += 1;
                thread::sleep(Duration::from_millis(2));
            }
            n
        })
    });
    session
        .lock()
        .unwrap()
        .start_periodic(Box::new(Clocked(Arc::clone(&times))), INTERVAL)
        .unwrap();
    let deadline = Instant::now() + INTERVAL * (ROUNDS as u32 + 30);
    while times.lock().unwrap().len() < ROUNDS + 1 {
        assert!(Instant::now() < deadline, "{name}: the rounds did not come");
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(line) = line {
        assert!(
            line.join().unwrap() > 0,
            "{name}: the line recorded no frame"
        );
    }
    session.lock().unwrap().stop();
    let times = times.lock().unwrap();
    let mut late: Vec<f64> = (1..=ROUNDS)
        .map(|k| {
            let due = times[0] + INTERVAL * k as u32;
            times[k].saturating_duration_since(due).as_secs_f64() * 1e3
        })
        .collect();
    late.sort_by(f64::total_cmp);
    late
}

#[test]
fn a_line_recording_frames_wakes_the_aggregator_for_its_round() {
    let _g = serial();
    let late = lateness_ms("line-wake-frames", true);
    // A frame every 2 ms: the first one past the due time wakes the aggregator.
    assert!(
        late[ROUNDS / 2] < 25.0,
        "rounds late by {late:?} ms with a frame every 2 ms: not woken by the line"
    );
}

#[test]
fn without_frames_the_timer_wakes_the_aggregator_at_most_50_ms_late() {
    let _g = serial();
    let late = lateness_ms("line-wake-quiet", false);
    // The timer: at most a sixteenth of the wait (50 ms) after the due time, give or take
    // a loaded machine's delays; never skipped nor doubled (the next round is due an
    // interval after the one before, not after it ran).
    assert!(
        late[ROUNDS / 2] <= 75.0,
        "rounds late by {late:?} ms with no frame: the timer's grace is at most 50 ms"
    );
    assert!(
        late[ROUNDS - 1] < INTERVAL.as_secs_f64() * 1e3 / 2.0,
        "a round came half an interval late or more: {late:?} ms"
    );
}
