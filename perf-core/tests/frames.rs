//! Frames with controlled timing: misses and their attribution to a slow stage or to a
//! stalled queue, jitter against a direct computation, the flight recorder's bound, drops,
//! and tokens used wrongly. Stages that must miss sleep far past their budget (20 ms against
//! 10 ms), stages that must not are a few microseconds, so scheduling noise cannot swap them.
//!
//! `frame!` records into the process-wide current session, so the tests of this binary take
//! a lock to run one at a time.

use std::sync::{mpsc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use heimdall_perf_core::{frame, FrameSource, ProfilingSession};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const BUDGET: Duration = Duration::from_millis(10);
const SLOW: Duration = Duration::from_millis(20);

#[test]
fn a_stage_slow_every_kth_frame_misses_one_in_k_blamed_on_it() {
    let _g = serial();
    let mut session = ProfilingSession::new("slow-stage");
    session.set_frame_budget("cam-slow", BUDGET);
    let (tx, rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let worker = thread::Builder::new()
        .name("processing".into())
        .spawn(move || {
            for (i, f) in rx {
                let f: heimdall_perf_core::Frame = f;
                {
                    let _s = f.stage("preprocess");
                }
                {
                    let _s = f.stage("detect");
                    if i % 10 == 9 {
                        thread::sleep(SLOW);
                    }
                }
                {
                    let _s = f.stage("decide");
                }
                f.finish();
                done_tx.send(()).unwrap();
            }
        })
        .unwrap();
    // One frame at a time, so that no frame waits behind a slow one. Each frame's time as
    // this thread sees it (from before its birth to the worker's word that it finished) is
    // at least its latency.
    let mut took = Vec::new();
    for i in 0..100u64 {
        let t0 = Instant::now();
        let f = frame!("cam-slow");
        tx.send((i, f)).unwrap();
        done.recv().unwrap();
        took.push(t0.elapsed());
    }
    drop(tx);
    worker.join().unwrap();
    let r = session.report();
    let cam = r.frame_source("cam-slow").unwrap();
    assert_eq!((cam.count, cam.finished, cam.in_flight), (100, 100, 0));
    // The fast frames take microseconds, but a loaded machine may keep the worker from the
    // CPU past the budget: such a frame may miss too (`late`), none other. A slow frame is
    // blamed on its 20 ms detect unless the machine held it up for as long again elsewhere
    // (`unclear`).
    let late = frames_past(&took, 10, false, BUDGET);
    let unclear = frames_past(&took, 10, true, 2 * SLOW);
    assert!(
        (10..=10 + late).contains(&cam.missed),
        "{late} fast frames past the budget: {cam:#?}"
    );
    assert!(
        (10 - unclear..=10 + late).contains(&cam.blamed("detect")),
        "{late} fast frames past the budget, {unclear} slow ones unclear: {:?}",
        cam.attribution
    );
    assert!((cam.miss_rate - cam.missed as f64 / 100.0).abs() < 1e-12);
    if late == 0 {
        assert!((cam.miss_rate - 0.1).abs() < 1e-12);
        assert_eq!(cam.longest_miss_streak, 1);
    }
    assert!(cam.longest_miss_streak <= 1 + late);
    assert_eq!(
        cam.incidents.len() as u64,
        cam.missed
            .min(heimdall_perf_core::limits::DEFAULT_MAX_INCIDENTS as u64)
    );
    let worst = &cam.incidents[0];
    // The worst is a slow frame, blamed on its detect, unless a fast one took as long or a
    // slow one was held up elsewhere.
    if frames_past(&took, 10, false, SLOW) == 0 && unclear == 0 {
        assert_eq!(worst.cause, "detect");
        assert_eq!(worst.frame_id % 10, 9);
        assert_eq!(worst.previous.len(), 3, "frames before it are kept");
    }
    assert!(worst.latency_ns > BUDGET.as_nanos() as u64);
    assert_eq!(worst.overrun_ns, worst.latency_ns - worst.budget_ns);
    let names: Vec<&str> = worst.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["preprocess", "detect", "decide"]);
    assert!(worst.stages.iter().all(|s| s.thread == "processing"));
    assert!(worst.previous.iter().all(|p| p.frame_id < worst.frame_id));
    // The stages are spans too, on the thread that ran them.
    assert_eq!(r.span_total(&["detect"]).unwrap().count, 100);
    let detect = cam.stage("detect").unwrap();
    assert_eq!(detect.service.summary.count, 100);
    assert!(detect.service.summary.max >= SLOW.as_nanos() as f64);
}

#[test]
fn a_stall_between_stages_is_blamed_on_the_queue() {
    let _g = serial();
    let mut session = ProfilingSession::new("stall");
    session.set_frame_budget("cam-stall", BUDGET);
    let (to_detect, detect_rx) = mpsc::channel::<(u64, heimdall_perf_core::Frame)>();
    let (done_tx, done) = mpsc::channel();
    let detector = thread::Builder::new()
        .name("detector".into())
        .spawn(move || {
            for (_, f) in detect_rx {
                {
                    let _s = f.stage("detect");
                }
                f.finish();
                done_tx.send(()).unwrap();
            }
        })
        .unwrap();
    let mut took = Vec::new();
    for i in 0..60u64 {
        let t0 = Instant::now();
        let f = frame!("cam-stall");
        {
            let _s = f.stage("preprocess");
        }
        if i % 6 == 5 {
            // The hand-over stalls: the frame waits before detect.
            thread::sleep(SLOW);
        }
        to_detect.send((i, f)).unwrap();
        done.recv().unwrap();
        took.push(t0.elapsed());
    }
    drop(to_detect);
    detector.join().unwrap();
    let r = session.report();
    let cam = r.frame_source("cam-stall").unwrap();
    assert_eq!(cam.finished, 60);
    // As above: a fast frame the machine kept past the budget (waiting for the detector to
    // get a CPU, most likely) may miss too, and a stalled frame held up as long again
    // elsewhere may be blamed on that.
    let late = frames_past(&took, 6, false, BUDGET);
    let unclear = frames_past(&took, 6, true, 2 * SLOW);
    assert!(
        (10..=10 + late).contains(&cam.missed),
        "{late} fast frames past the budget: {:?}",
        cam.attribution
    );
    assert!(
        (10 - unclear..=10 + late).contains(&cam.blamed("queue before detect")),
        "{late} fast frames past the budget, {unclear} stalled ones unclear: {:?}",
        cam.attribution
    );
    let queue = &cam.stage("detect").unwrap().queue.summary;
    assert!(queue.max >= SLOW.as_nanos() as f64, "{queue:?}");
    let incident = &cam.incidents[0];
    let detect = incident.stages.iter().find(|s| s.name == "detect").unwrap();
    // The worst is a stalled frame unless a fast one took as long as a stall.
    if frames_past(&took, 6, false, SLOW) == 0 {
        assert!(detect.queue_ns >= SLOW.as_nanos() as u64);
    }
    assert_eq!(detect.thread, "detector");
}

/// How many of the frames whose times the caller measured (`took`) took `at_least` or more:
/// the slow ones (every `every`th) when `slow`, else the others. On a loaded machine a frame
/// can wait that long for a CPU.
fn frames_past(took: &[Duration], every: usize, slow: bool, at_least: Duration) -> u64 {
    took.iter()
        .enumerate()
        .filter(|&(i, t)| (i % every == every - 1) == slow && *t >= at_least)
        .count() as u64
}

/// Births at the given intervals; returns the intervals as measured by the caller.
fn births(source: &FrameSource, intervals: &[Duration]) -> Vec<f64> {
    let mut measured = Vec::new();
    let mut last = Instant::now();
    source.begin().finish();
    for d in intervals {
        let until = last + *d;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        let now = Instant::now();
        source.begin().finish();
        measured.push(now.duration_since(last).as_nanos() as f64);
        last = now;
    }
    measured
}

#[test]
fn jitter_is_near_zero_for_a_regular_source_and_matches_a_direct_computation() {
    let _g = serial();
    let session = ProfilingSession::new("jitter");
    let regular = FrameSource::new("regular");
    let irregular = FrameSource::new("irregular");
    let period = Duration::from_micros(500);
    let regular_measured = births(&regular, &vec![period; 200]);
    let pattern: Vec<Duration> = (0..200)
        .map(|i| Duration::from_micros([200, 900, 400, 1500][i % 4]))
        .collect();
    let measured = births(&irregular, &pattern);
    let r = session.report();

    let reg = &r.frame_source("regular").unwrap().jitter.summary;
    assert_eq!(reg.count, 200);
    // Spinning to each deadline: the median interval is the period to a few microseconds.
    assert!(
        (reg.p50 - period.as_nanos() as f64).abs() < 50_000.0,
        "{reg:?}"
    );

    let irr = &r.frame_source("irregular").unwrap().jitter.summary;
    assert_eq!(irr.count, 200);
    let mean = measured.iter().sum::<f64>() / measured.len() as f64;
    let sd =
        (measured.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / measured.len() as f64).sqrt();
    // Two clocks read a few nanoseconds apart: the same intervals within 1 %.
    assert!(
        (irr.mean - mean).abs() / mean < 0.01,
        "{} vs {mean}",
        irr.mean
    );
    assert!(
        (irr.stddev - sd).abs() / sd < 0.05,
        "{} vs {sd}",
        irr.stddev
    );
    // Near zero for the regular source: its p90 is within 20 % of the period when nine
    // intervals in ten were, as measured by the caller; a loaded machine preempts the
    // spinning thread now and then, and when it did for more than one interval in ten,
    // the report must show that too. (Between the two, histogram buckets decide.)
    let p = period.as_nanos() as f64;
    let within = |f: f64| regular_measured.iter().filter(|&&v| v < p * f).count();
    if within(1.15) >= 182 {
        assert!(reg.p90 < p * 1.2, "{reg:?}");
    } else if within(1.25) < 178 {
        assert!(reg.p90 > p * 1.2, "{reg:?}");
    }
    assert!(irr.p90 > p * 2.0, "{irr:?}");
}

#[test]
fn incidents_stay_at_the_limit_and_keep_the_worst() {
    let _g = serial();
    let mut session = ProfilingSession::new("incidents");
    session.set_frame_budget("cam-inc", Duration::from_nanos(1));
    session.set_max_incidents(5);
    let cam = FrameSource::new("cam-inc");
    // The fast frames take microseconds, unless the machine takes the CPU from this thread
    // in the middle of one for as long as a slow frame (a loaded machine can): such a frame
    // may be kept among the worst, with the ids of the slow ones.
    let mut as_slow = Vec::new();
    for _ in 0..10_000 {
        let t0 = Instant::now();
        let f = cam.begin();
        {
            let _s = f.stage("work");
        }
        f.finish();
        if t0.elapsed() >= SLOW {
            as_slow.push(f.id());
        }
    }
    // Five frames far slower than all the others: they are the incidents kept.
    let mut slow_ids = Vec::new();
    for _ in 0..5 {
        let f = cam.begin();
        {
            let _s = f.stage("work");
            thread::sleep(SLOW);
        }
        slow_ids.push(f.id());
        f.finish();
    }
    for _ in 0..1_000 {
        let t0 = Instant::now();
        let f = cam.begin();
        f.finish();
        if t0.elapsed() >= SLOW {
            as_slow.push(f.id());
        }
    }
    let r = session.report();
    let c = r.frame_source("cam-inc").unwrap();
    assert_eq!(c.finished, 11_005);
    // Nearly all miss a 1 ns budget (a frame with no stage can take under 1 ns).
    assert!(c.missed > 10_000, "{}", c.missed);
    assert_eq!(c.incidents.len(), 5);
    let mut kept: Vec<u64> = c.incidents.iter().map(|i| i.frame_id).collect();
    kept.sort_unstable();
    if as_slow.is_empty() {
        assert_eq!(kept, slow_ids);
    } else {
        assert!(
            kept.iter()
                .all(|id| slow_ids.contains(id) || as_slow.contains(id)),
            "kept {kept:?}, slow {slow_ids:?}, fast ones as slow {as_slow:?}"
        );
    }
    assert!(c
        .incidents
        .windows(2)
        .all(|w| w[0].overrun_ns >= w[1].overrun_ns));
    assert!(c.windows.len() <= heimdall_perf_core::limits::FRAME_WINDOWS);
}

#[test]
fn drops_are_counted_by_reason_and_misused_tokens_do_no_harm() {
    let _g = serial();
    let mut session = ProfilingSession::new("drops");
    let cam = FrameSource::new("cam-drop");
    for i in 0..10u64 {
        let f = cam.begin();
        match i % 5 {
            0 => f.drop_frame("queue full"),
            1 => f.drop_frame("blurred"),
            _ => f.finish(),
        }
    }
    // Finished twice: counted once, the second end is unmatched.
    let twice = cam.begin();
    twice.finish();
    twice.finish();
    // A stage after the end is not part of the frame.
    let late = cam.begin();
    late.finish();
    let r = session.report();
    {
        let _s = late.stage("after the end");
    }
    let c = r.frame_source("cam-drop").unwrap();
    assert_eq!(c.count, 12);
    assert_eq!(c.finished, 8);
    assert_eq!(c.dropped["queue full"], 2);
    assert_eq!(c.dropped["blurred"], 2);
    assert_eq!(c.dropped_total(), 4);
    assert_eq!(r.diagnostics.unmatched_frame_events, 1);
    let r = session.report();
    assert_eq!(r.diagnostics.unmatched_frame_events, 2);
    assert!(r
        .frame_source("cam-drop")
        .unwrap()
        .stage("after the end")
        .is_none());

    // A token whose session has stopped records nothing, in that session or the next.
    let stale = cam.begin();
    session.stop();
    let next = ProfilingSession::new("next");
    {
        let _s = stale.stage("stale");
    }
    stale.finish();
    stale.drop_frame("stale");
    let r = session.report();
    assert_eq!(r.frame_source("cam-drop").unwrap().in_flight, 1);
    assert_eq!(r.frame_source("cam-drop").unwrap().finished, 8);
    assert!(next.report().frames.is_empty());
    // With no session at all, a frame is an inert token.
    drop(next);
    let f = cam.begin();
    assert!(!f.is_recording());
    f.finish();
}

#[test]
fn a_frame_crosses_three_threads() {
    let _g = serial();
    let mut session = ProfilingSession::new("threads");
    session.set_frame_budget("cam-x", Duration::from_millis(1));
    let (a_tx, a_rx) = mpsc::channel::<heimdall_perf_core::Frame>();
    let (b_tx, b_rx) = mpsc::channel::<heimdall_perf_core::Frame>();
    let a = thread::Builder::new()
        .name("stage-a".into())
        .spawn(move || {
            for f in a_rx {
                {
                    let _s = f.stage("a");
                }
                b_tx.send(f).unwrap();
            }
        })
        .unwrap();
    let b = thread::Builder::new()
        .name("stage-b".into())
        .spawn(move || {
            for f in b_rx {
                {
                    let _s = f.stage("b");
                    thread::sleep(Duration::from_millis(5));
                }
                f.finish();
            }
        })
        .unwrap();
    for _ in 0..4 {
        a_tx.send(frame!("cam-x")).unwrap();
    }
    drop(a_tx);
    a.join().unwrap();
    b.join().unwrap();
    let r = session.report();
    let c = r.frame_source("cam-x").unwrap();
    assert_eq!((c.finished, c.missed), (4, 4));
    let i = &c.incidents[0];
    let threads: Vec<(&str, &str)> = i
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.thread.as_str()))
        .collect();
    assert_eq!(threads, [("a", "stage-a"), ("b", "stage-b")]);
    assert!(i.stages[1].start_ns >= i.stages[0].start_ns + i.stages[0].duration_ns);
}
