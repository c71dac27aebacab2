//! Hostile uses of the event-paced aggregator (a pass per chunk's worth of events, 10 ms
//! to 1 s; woken by a lane 8 chunks ahead, by every 32nd exited thread, and at stop) and of
//! the lean path of `ValueStats::record_all`.
//!
//! The tests run one at a time (`serial`): `scope!` and `frame!` record into the
//! process-wide current session, the memory checks read a process-wide counter, and the
//! aggregator's wake-ups are read from its thread's `/proc/self/task/*/schedstat`.

mod common;
use common::pacing::*;
use common::summary_bits;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use heimdall_perf_core::metrics::MetricCounter;
use heimdall_perf_core::stats::ValueStats;
use heimdall_perf_core::{scope, FrameSource, MetricType, ProfilingSession};

// The harness (`common::pacing`): one test at a time, a counting allocator, the
// aggregator's thread.

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------------------
// Frames.

/// A burst of frames after an idle spell, the three records of each frame on three threads:
/// its birth on a camera thread, its stage on a worker, its end on a third thread whose lane
/// was made first (so a drain pass reads the ends before the births and the stages). No lane
/// runs 8 chunks ahead, so nothing wakes the aggregator: one pass (or the report's drain)
/// reads the whole burst. Every frame must be counted whole: begun, finished, its stage
/// timed, nothing unmatched.
///
/// Found here: past `MAX_ENDED_WAITING` (8192) ended frames, `FrameAgg::end` settled the
/// oldest half at once, in the middle of the pass, before the lanes holding their births
/// and stages were read: 4096 frames a round were counted unmatched, their stages lost, and
/// their births then opened frames that never ended. Now only frames whose birth is in are
/// settled early.
#[test]
fn a_burst_of_frames_split_over_three_threads_is_settled_whole() {
    let _g = serial();
    const N: usize = 10_000;
    let mut session = ProfilingSession::new("pacing-burst-frames");
    let cam = FrameSource::new("cam-pacing-burst");
    // The finishing thread records first: its lane comes first in every pass.
    let (to_finisher, finisher_rx) = mpsc::channel::<Vec<heimdall_perf_core::Frame>>();
    let (finished_tx, finished_rx) = mpsc::channel::<()>();
    let ready = Arc::new(Barrier::new(2));
    let r2 = Arc::clone(&ready);
    let finisher = thread::spawn(move || {
        {
            let _warm = scope!("finisher-warmup");
        }
        r2.wait();
        for batch in finisher_rx {
            for f in batch {
                f.finish();
            }
            finished_tx.send(()).unwrap();
        }
    });
    ready.wait();
    let (to_worker, worker_rx) = mpsc::channel::<Vec<heimdall_perf_core::Frame>>();
    let to_finisher2 = to_finisher.clone();
    let ready = Arc::new(Barrier::new(2));
    let r2 = Arc::clone(&ready);
    let worker = thread::spawn(move || {
        {
            let _warm = scope!("worker-warmup");
        }
        r2.wait();
        for batch in worker_rx {
            for f in &batch {
                let _s = f.stage("burst-stage");
            }
            to_finisher2.send(batch).unwrap();
        }
    });
    ready.wait();
    let mut rounds = 0;
    for _ in 0..3 {
        idle();
        // Births on this thread (its lane is the third).
        let batch: Vec<_> = (0..N).map(|_| cam.begin()).collect();
        to_worker.send(batch).unwrap();
        finished_rx.recv().unwrap();
        rounds += 1;
        // Let the aggregator read the burst on its own (if it does not, the report does).
        idle();
    }
    drop(to_worker);
    worker.join().unwrap();
    drop(to_finisher);
    finisher.join().unwrap();
    let r = session.report();
    session.stop();
    let c = r.frame_source("cam-pacing-burst").expect("the source");
    let total = (rounds * N) as u64;
    let stage_runs = c
        .stages
        .iter()
        .find(|s| s.name == "burst-stage")
        .map_or(0, |s| s.service.summary.count);
    eprintln!(
        "burst: count {} finished {} in flight {} stage runs {} unmatched {} abandoned {}",
        c.count,
        c.finished,
        c.in_flight,
        stage_runs,
        r.diagnostics.unmatched_frame_events,
        r.diagnostics.abandoned_frames
    );
    assert_eq!(c.count, total);
    assert_eq!(c.finished, total, "frames finished but not counted");
    assert_eq!(stage_runs, total, "stages lost");
    assert_eq!(c.in_flight, 0);
    assert_eq!(r.diagnostics.unmatched_frame_events, 0);
    assert_eq!(r.span_total(&["burst-stage"]).unwrap().count, total);
}

/// The simplest case of the above: a frame born on a thread whose lane was made after the
/// lane of the thread that finishes it, and read in the same drain pass as its end (the
/// report's). The end is read first.
#[test]
fn a_frame_whose_end_is_read_before_its_birth_is_counted() {
    let _g = serial();
    let session = ProfilingSession::new("pacing-end-first");
    {
        // This thread's lane comes first.
        let _warm = scope!("end-first-warmup");
    }
    let cam = FrameSource::new("cam-end-first");
    let frames: Vec<_> = thread::spawn(move || (0..3).map(|_| cam.begin()).collect::<Vec<_>>())
        .join()
        .unwrap();
    for f in frames {
        let _s = f.stage("end-first-stage");
        drop(_s);
        f.finish();
    }
    let r = session.report();
    let c = r.frame_source("cam-end-first").expect("the source");
    eprintln!(
        "end first: count {} finished {} in flight {} unmatched {}",
        c.count, c.finished, c.in_flight, r.diagnostics.unmatched_frame_events
    );
    assert_eq!((c.count, c.finished, c.in_flight), (3, 3, 0));
    assert_eq!(r.diagnostics.unmatched_frame_events, 0);
    assert_eq!(c.latency.summary.count, 3);
}

/// Runs a line at a steady, modest pace: a frame born every 2 ms on this thread (with the id
/// `id(i)` for the `i`th, or the source's own ids), its stage `work` of `stage` and
/// its finish on a second thread, whose lane was made first (a span before the first frame),
/// so that a drain pass reads each end before its birth. Returns the session's report and,
/// for each frame, the time from just before its birth to just after its finish as the two
/// threads measured it (an upper bound of its latency, however the threads were scheduled).
///
/// With ring-slot ids (`id`), a slot is used again only once its previous frame has finished
/// (as a camera's ring of buffers does): on a loaded machine the finishing thread may fall
/// behind by more than the ring, and an id reused while in flight is not what is tested here.
fn steady_line(
    tag: &str,
    work: &'static str,
    frames: u64,
    stage: Duration,
    id: Option<fn(u64) -> u64>,
) -> (heimdall_perf_core::Report, Vec<Duration>) {
    const RING: u64 = 4;
    let session = ProfilingSession::new(format!("pacing-{tag}-line"));
    let (tx, rx) = mpsc::channel::<(heimdall_perf_core::Frame, Instant)>();
    let (released_tx, released) = mpsc::channel::<Duration>();
    let ready = Arc::new(Barrier::new(2));
    let r2 = Arc::clone(&ready);
    let finisher = thread::spawn(move || {
        {
            let _warm = scope!("pacing-warmup");
        }
        r2.wait();
        for (f, born) in rx {
            {
                let _s = f.stage(work);
                thread::sleep(stage);
            }
            f.finish();
            let _ = released_tx.send(born.elapsed());
        }
    });
    ready.wait();
    let cam = FrameSource::new(&format!("cam-{tag}-line"));
    let mut measured = Vec::new();
    for i in 0..frames {
        if id.is_some() && i >= RING {
            // The slot's previous frame (the oldest in flight: one finisher, in order).
            measured.push(released.recv().unwrap());
        }
        let born = Instant::now();
        let f = match id {
            Some(id) => cam.begin_with_id(id(i)),
            None => cam.begin(),
        };
        tx.send((f, born)).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    drop(tx);
    finisher.join().unwrap();
    measured.extend(released.try_iter());
    assert_eq!(measured.len() as u64, frames);
    (session.report(), measured)
}

/// A line at a steady, modest pace (a frame every 2 ms, 0.5 ms of stage): the aggregator,
/// paced by the events, waits the longest (1 s), so birth and end of almost every frame are
/// read in the same pass. The finishing thread's lane comes first.
#[test]
fn a_steady_line_whose_finisher_recorded_first_loses_no_frame() {
    let _g = serial();
    const FRAMES: u64 = 400;
    let (r, _) = steady_line(
        "steady",
        "steady-work",
        FRAMES,
        Duration::from_micros(500),
        None,
    );
    let c = r.frame_source("cam-steady-line").expect("the source");
    eprintln!(
        "steady line: count {} finished {} in flight {} unmatched {}",
        c.count, c.finished, c.in_flight, r.diagnostics.unmatched_frame_events
    );
    assert_eq!((c.count, c.finished, c.in_flight), (FRAMES, FRAMES, 0));
    assert_eq!(r.diagnostics.unmatched_frame_events, 0);
}

/// The same line with ring-slot ids (a camera's ring of 4 buffers): each slot comes back
/// every 8 ms, many times within one pass, and every end is read before its birth.
///
/// Found here: a stage read before its frame's birth, once the previous frame of the same
/// slot was settled, was taken for a stage after that frame's end (a recently-settled check)
/// and counted as unmatched. Now a frame a stage made waits one pass for its birth, as an
/// end does.
#[test]
fn a_steady_ring_slot_line_whose_finisher_recorded_first_loses_no_frame() {
    let _g = serial();
    const FRAMES: u64 = 300;
    let (r, measured) = steady_line(
        "ring",
        "ring-work",
        FRAMES,
        Duration::from_micros(300),
        Some(|i| i % 4),
    );
    let c = r.frame_source("cam-ring-line").expect("the source");
    let stage_runs = c
        .stages
        .iter()
        .find(|s| s.name == "ring-work")
        .map_or(0, |s| s.service.summary.count);
    eprintln!(
        "ring line: count {} finished {} in flight {} stage runs {stage_runs} unmatched {}",
        c.count, c.finished, c.in_flight, r.diagnostics.unmatched_frame_events
    );
    assert_eq!((c.count, c.finished, c.in_flight), (FRAMES, FRAMES, 0));
    // Each frame's latency is its own (about 0.3 ms, more when the machine is loaded), not
    // that of a slot's older birth (at least 8 ms earlier): none is longer than the longest
    // the threads measured, and together they are no longer than the measured ones.
    let longest = measured.iter().max().unwrap().as_nanos() as f64;
    let sum: f64 = measured.iter().map(|d| d.as_nanos() as f64).sum();
    assert!(
        c.latency.summary.max <= longest * 1.001 + 1e3,
        "a latency of {} ns, the longest measured {longest} ns: a birth given to the wrong frame",
        c.latency.summary.max
    );
    assert!(
        c.latency.summary.sum <= sum * 1.001 + 1e6,
        "latencies sum to {} ns, the measured ones to {sum} ns: a birth given to the wrong frame",
        c.latency.summary.sum
    );
    assert_eq!(stage_runs, FRAMES, "stages counted as unmatched");
    assert_eq!(r.diagnostics.unmatched_frame_events, 0);
}

// ---------------------------------------------------------------------------------------
// Wake-ups and memory.

/// An idle session costs about one wake-up a second (its wait doubles to 1 s), not a
/// hundred, and no busy loop.
#[test]
fn an_idle_session_wakes_its_aggregator_about_once_a_second() {
    let _g = serial();
    let (session, tid) = session_with_aggregator("pacing-idle", None);
    idle();
    let (cpu0, _) = schedstat(tid).expect("aggregator running");
    let runs = wake_ups_over(tid, 3);
    let cpu = schedstat(tid).expect("aggregator running").0 - cpu0;
    eprintln!("idle: {runs} wake-ups, {} us CPU in 3 s", cpu / 1000);
    assert!(runs <= 6, "{runs} wake-ups in 3 idle seconds");
    assert!(cpu < 50_000_000, "{cpu} ns of CPU in 3 idle seconds");
    drop(session);
}

/// A quiet line (a 60 fps line's few thousand events a second, a chunk every second or two)
/// costs about one pass a second.
#[test]
fn a_quiet_line_costs_about_one_pass_a_second() {
    let _g = serial();
    let (session, tid) = session_with_aggregator("pacing-quiet", None);
    idle();
    let (_, runs0) = schedstat(tid).unwrap();
    let start = Instant::now();
    let mut spans = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..20 {
            let _s = scope!("quiet");
            spans += 1;
        }
        thread::sleep(Duration::from_millis(16));
    }
    let (_, runs1) = schedstat(tid).unwrap();
    let runs = runs1 - runs0;
    eprintln!("quiet: {spans} spans, {runs} aggregator wake-ups in 3 s");
    assert!(runs <= 8, "{runs} wake-ups for {spans} spans in 3 seconds");
    let r = session.report();
    assert_eq!(r.span_total(&["quiet"]).unwrap().count, spans);
}

/// A thread recording as fast as it can: the aggregator is woken once per chunk from 8
/// chunks ahead, so its wake-ups stay in proportion to the chunks (a pass per several
/// chunks), not to the events, and the lane never holds more than the self-drain bound.
#[test]
fn a_flood_of_spans_wakes_the_aggregator_per_chunks_not_per_event() {
    let _g = serial();
    let (session, tid) = session_with_aggregator("pacing-flood", None);
    idle();
    let base = reset_peak();
    let (_, runs0) = schedstat(tid).unwrap();
    let start = Instant::now();
    let mut spans = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..10_000 {
            let _s = scope!("flood");
        }
        spans += 10_000;
    }
    let (_, runs1) = schedstat(tid).unwrap();
    let grown = peak() - base;
    let runs = runs1 - runs0;
    let chunks = 2 * spans / heimdall_perf_core::limits::CHUNK_EVENTS as u64;
    eprintln!(
        "flood: {spans} spans ({chunks} chunks), {runs} aggregator wake-ups, peak +{} KiB",
        grown / 1024
    );
    assert!(
        runs <= chunks / 2 + 200,
        "{runs} wake-ups for {chunks} chunks"
    );
    // 64 chunks of 64 KiB before the thread drains itself, and the aggregate's rows.
    assert!(grown < 16 * MIB, "peak grew by {} KiB", grown / 1024);
    // Once the flood is over, the aggregator goes back to its idle pace (no wake-up left
    // pending, no short wait stuck).
    idle();
    let runs = wake_ups_over(tid, 3);
    eprintln!("after the flood: {runs} wake-ups in 3 idle seconds");
    assert!(runs <= 6, "{runs} wake-ups in 3 idle seconds");
    let r = session.report();
    assert_eq!(r.span_total(&["flood"]).unwrap().count, spans);
}

/// After a long idle spell (the aggregator waits 1 s), a burst: the lane's writer wakes
/// the aggregator once it runs 8 chunks ahead, so the burst does not pile up to the
/// self-drain bound, and nothing is lost.
#[test]
fn a_burst_after_a_long_idle_spell_wakes_the_aggregator() {
    let _g = serial();
    let (session, tid) = session_with_aggregator("pacing-burst-spans", None);
    let mut total = 0u64;
    let mut worst = 0i64;
    for _ in 0..3 {
        idle();
        let (cpu0, _) = schedstat(tid).unwrap();
        let base = reset_peak();
        // 40 chunks' worth, in a few milliseconds.
        for _ in 0..40 * heimdall_perf_core::limits::CHUNK_EVENTS / 2 {
            let _s = scope!("burst");
        }
        total += 40 * heimdall_perf_core::limits::CHUNK_EVENTS as u64 / 2;
        worst = worst.max(peak() - base);
        // The aggregator read the burst on its own (no report): its CPU time moved.
        wait_for(30, "the aggregator to read the burst", || {
            schedstat(tid).unwrap().0 > cpu0
        });
    }
    eprintln!("burst: worst peak +{} KiB", worst / 1024);
    // 40 chunks are 2.5 MiB; a lane never holds more than 65 chunks (4.2 MiB).
    assert!(
        worst < 8 * MIB,
        "a burst grew the heap by {} KiB",
        worst / 1024
    );
    let r = session.report();
    assert_eq!(r.span_total(&["burst"]).unwrap().count, total);
}

/// Threads that come and go, one after the other, with nobody taking a report: each exited
/// thread's lane holds a chunk until a pass retires it; every 32nd exit wakes the
/// aggregator, so the lanes waiting stay few however fast the threads churn, and every
/// span is counted.
#[test]
fn thread_churn_without_reports_keeps_few_lanes_waiting() {
    let _g = serial();
    const THREADS: u64 = 3000;
    let session = ProfilingSession::new("pacing-churn");
    idle();
    let base = reset_peak();
    for i in 0..THREADS {
        thread::spawn(|| {
            let _s = scope!("churn-task");
        })
        .join()
        .unwrap();
        if i.is_multiple_of(500) {
            eprintln!("churn: {i} threads, heap +{} KiB", (live() - base) / 1024);
        }
    }
    let grown = peak() - base;
    // And once they have all gone, the last lanes are retired by the regular passes.
    wait_for(30, "the exited threads' lanes to be retired", || {
        live() - base < 4 * MIB
    });
    eprintln!("churn: peak +{} KiB", grown / 1024);
    let r = session.report();
    assert_eq!(r.span_total(&["churn-task"]).unwrap().count, THREADS);
    assert_eq!(r.diagnostics.exited_threads, THREADS);
    // A chunk is 64 KiB: 3000 lanes waiting would be 190 MiB.
    assert!(grown < 24 * MIB, "peak grew by {} KiB", grown / 1024);
}

/// The same, sixteen threads at a time.
#[test]
fn parallel_thread_churn_without_reports_keeps_few_lanes_waiting() {
    let _g = serial();
    const ROUNDS: u64 = 200;
    const AT_ONCE: u64 = 16;
    let session = ProfilingSession::new("pacing-churn-parallel");
    idle();
    let base = reset_peak();
    for _ in 0..ROUNDS {
        thread::scope(|s| {
            for _ in 0..AT_ONCE {
                s.spawn(|| {
                    let _s = scope!("churn-par");
                    let _t = scope!("inner");
                });
            }
        });
    }
    let grown = peak() - base;
    eprintln!("parallel churn: peak +{} KiB", grown / 1024);
    let threads = ROUNDS * AT_ONCE;
    let deadline = Instant::now() + Duration::from_secs(60);
    let r = loop {
        let r = session.report();
        if r.diagnostics.exited_threads == threads || Instant::now() > deadline {
            break r;
        }
        thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(
        r.span_total(&["churn-par", "inner"]).unwrap().count,
        threads
    );
    assert_eq!(r.diagnostics.exited_threads, threads);
    assert!(grown < 32 * MIB, "peak grew by {} KiB", grown / 1024);
}

// ---------------------------------------------------------------------------------------
// Stop and drop.

/// Sessions stopped and dropped while threads record spans, frames and timings into them
/// as fast as they can: no hang, no aggregator thread left behind, no busy loop, and the
/// spans recorded before the stop are in the report.
#[test]
fn sessions_stopped_and_dropped_while_threads_record_do_not_hang() {
    let _g = serial();
    let baseline = tasks_named(AGGREGATOR_COMM).len();
    let stop = Arc::new(AtomicBool::new(false));
    // The workers stop even when an assertion below fails (they would record into the
    // sessions of the tests that run next).
    let _stop_workers = StopOnDrop(Arc::clone(&stop));
    // Rounds of the workers' loop, counted once a round's spans have ended.
    let rounds = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let stop = Arc::clone(&stop);
            let rounds = Arc::clone(&rounds);
            thread::spawn(move || {
                let cam = FrameSource::new("cam-pacing-stop");
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    {
                        let _outer = scope!("stop-outer");
                        for _ in 0..64 {
                            let _s = scope!("stop-inner");
                        }
                        if w == 0 {
                            let f = cam.begin();
                            let _st = f.stage("stop-stage");
                            drop(_st);
                            f.finish();
                        }
                    }
                    rounds.fetch_add(1, Ordering::SeqCst);
                    n += 1;
                    if n.is_multiple_of(1024) && w == 2 {
                        // A thread that comes and goes too.
                        thread::spawn(|| {
                            let _s = scope!("stop-short");
                        })
                        .join()
                        .unwrap();
                    }
                }
            })
        })
        .collect();
    for i in 0..20 {
        let rounds = Arc::clone(&rounds);
        let r = within(120, "stop while threads record", move || {
            let mut session = ProfilingSession::new(format!("pacing-stop-{i}"));
            let at_start = rounds.load(Ordering::SeqCst);
            thread::sleep(Duration::from_millis(5 + 7 * (i % 4)));
            // The workers recorded into this session: a round begun after it started has
            // ended (three may have been under way at its start). On a loaded machine they
            // may not have run at all during the sleep.
            wait_for(60, "the workers to record into the session", || {
                rounds.load(Ordering::SeqCst) >= at_start + 4
            });
            if i % 2 == 0 {
                session.stop();
                let r = session.report();
                drop(session);
                Some(r)
            } else {
                drop(session);
                None
            }
        });
        if let Some(r) = r {
            // Frozen at the stop: a second report is the same.
            assert!(r.span_total(&["stop-outer"]).is_some_and(|s| s.count > 0));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    wait_for_aggregators(baseline);
}

/// Sets the flag when dropped (the end of a test, or its failure).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A thread that holds a span open and keeps recording while its session is dropped, then
/// records into a new session: nothing hangs or panics, the old session's lane is let go,
/// and the new session counts what it got.
#[test]
fn a_lane_writer_outliving_its_session() {
    let _g = serial();
    let session = ProfilingSession::new("pacing-outlive-1");
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        let outer = scope!("outlive-outer");
        let cam = FrameSource::new("cam-outlive");
        let f = cam.begin();
        done_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        // The session is gone: spans and frame calls record nothing, and cost no memory.
        let base = live();
        for _ in 0..2_000_000 {
            let _s = scope!("outlive-after");
            let _st = f.stage("outlive-stage");
        }
        f.finish();
        drop(outer);
        let grown = live() - base;
        done_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        // A new session: the thread records into it.
        for _ in 0..1000 {
            let _s = scope!("outlive-new");
        }
        done_tx.send(()).unwrap();
        grown
    });
    done_rx.recv().unwrap();
    within(60, "drop while a thread records", move || drop(session));
    go_tx.send(()).unwrap();
    done_rx.recv().unwrap();
    let session = ProfilingSession::new("pacing-outlive-2");
    go_tx.send(()).unwrap();
    done_rx.recv().unwrap();
    let grown = t.join().unwrap();
    assert!(
        grown < 4 * MIB,
        "recording after the drop grew the heap by {grown} bytes"
    );
    let r = session.report();
    assert_eq!(r.span_total(&["outlive-new"]).unwrap().count, 1000);
    assert!(r.span_total(&["outlive-after"]).is_none());
}

/// Many sessions, one after the other, each recorded into by a pool of long-lived threads:
/// memory does not grow with the number of sessions, and every aggregator thread exits.
#[test]
fn many_sessions_in_turn_leave_nothing_behind() {
    let _g = serial();
    let baseline = tasks_named(AGGREGATOR_COMM).len();
    let (txs, pool): (Vec<_>, Vec<_>) = (0..4)
        .map(|_| {
            let (tx, rx) = mpsc::channel::<mpsc::Sender<()>>();
            let h = thread::spawn(move || {
                for done in rx {
                    for _ in 0..20_000 {
                        let _s = scope!("pool-work");
                    }
                    done.send(()).unwrap();
                }
            });
            (tx, h)
        })
        .unzip();
    let mut base = 0;
    for i in 0..60 {
        if i == 10 {
            base = live();
        }
        let session = ProfilingSession::new(format!("pacing-many-{i}"));
        let (done_tx, done_rx) = mpsc::channel();
        for tx in &txs {
            tx.send(done_tx.clone()).unwrap();
        }
        for _ in 0..txs.len() {
            done_rx.recv().unwrap();
        }
        let r = session.report();
        assert_eq!(r.span_total(&["pool-work"]).unwrap().count, 4 * 20_000);
        within(60, "dropping a session", move || drop(session));
    }
    let grown = live() - base;
    eprintln!("many sessions: heap +{} KiB over 50 sessions", grown / 1024);
    drop(txs);
    for h in pool {
        h.join().unwrap();
    }
    assert!(
        grown < 8 * MIB,
        "50 sessions grew the heap by {} KiB",
        grown / 1024
    );
    wait_for_aggregators(baseline);
}

/// A lane that runs 8 chunks ahead wakes the aggregator at once, whatever its wait: a
/// burst of 12 chunks right after a pass (the next one up to 1 s away) is read within a few
/// milliseconds, not at the end of the wait. (Checked against the wait, not against a few
/// milliseconds: a loaded machine may leave the woken thread waiting for a CPU for tens of
/// milliseconds.)
#[test]
fn a_lane_running_ahead_wakes_the_aggregator_at_once() {
    let _g = serial();
    let (session, tid) = session_with_aggregator("pacing-wake", None);
    let mut latencies = Vec::new();
    for _ in 0..5 {
        idle();
        // Right after a pass: the aggregator just ran, its next wait is the longest.
        right_after_a_pass(tid);
        let (_, runs) = schedstat(tid).unwrap();
        let t0 = Instant::now();
        for _ in 0..12 * heimdall_perf_core::limits::CHUNK_EVENTS / 2 {
            let _s = scope!("wake");
        }
        wait_for(30, "the woken pass", || schedstat(tid).unwrap().1 != runs);
        latencies.push(t0.elapsed());
    }
    latencies.sort();
    eprintln!("wake: latencies {latencies:?}");
    // Not woken, the pass comes at the end of the wait, about 1 s after the last one.
    assert!(
        latencies[2] < Duration::from_millis(250),
        "a lane 12 chunks ahead did not wake the aggregator: {latencies:?}"
    );
    drop(session);
}

// ---------------------------------------------------------------------------------------
// Streamed trace windows.

/// A streamed window on a line that keeps going past its end: the window closes on its
/// own (no report, no stop) soon after its end, and every frame that began and ended well
/// inside it is in the stream, once — the last ones too.
#[test]
fn a_streamed_window_closes_on_its_own_and_keeps_its_last_frames() {
    let _g = serial();
    for round in 0..3 {
        let received = Arc::new(Mutex::new(Received::default()));
        let (mut session, _tid) =
            session_with_aggregator("pacing-stream", Some(memory_registry(&received)));
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        // The line: a frame every ~1 ms, timed on the wall clock before its birth and after
        // its finish (the session's start is on the same clock).
        let line = thread::spawn(move || {
            let cam = FrameSource::new("cam-pacing-stream");
            let mut timed = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let before = heimdall_perf_core::unix_now_ns();
                let f = cam.begin();
                {
                    let _s = f.stage("stream-stage");
                    thread::sleep(Duration::from_micros(300));
                }
                f.finish();
                timed.push((f.id(), before, heimdall_perf_core::unix_now_ns()));
                thread::sleep(Duration::from_micros(700));
            }
            timed
        });
        thread::sleep(Duration::from_millis(50 + 20 * round));
        session
            .stream_trace("pacing-stream.json", Duration::from_millis(300))
            .unwrap();
        let opened = Instant::now();
        wait_for(60, "the window to close on its own", || closed(&received));
        let closed_after = opened.elapsed();
        // Keep the line going a little past the close, then stop it.
        thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        let timed = line.join().unwrap();
        let r = session.report();
        session.stop();
        let got = received.lock().unwrap();
        let end = got.end.clone().unwrap();
        let header = got.header.clone().unwrap();
        let (w0, w1) = (header.start_ns, header.start_ns + header.window_ns);
        let ids: Vec<u64> = got.frames.iter().map(|f| f.frame_id).collect();
        let unique = frames_written(&got);
        // Well inside: 5 ms from either edge (the two clocks agree far better than that).
        let expected = frames_inside_window(&got, &timed, r.session.start_unix_ns, 5_000_000);
        let missing: Vec<u64> = expected.difference(&unique).copied().collect();
        eprintln!(
            "stream round {round}: closed after {closed_after:?} ({}), {} frames, {} expected, missing {missing:?}, end {end:?}",
            end.reason,
            ids.len(),
            expected.len(),
        );
        assert_eq!(end.reason, "window");
        assert_eq!(ids.len(), unique.len(), "a frame written twice");
        assert!(
            missing.is_empty(),
            "frames of the window missing: {missing:?}"
        );
        assert_eq!(end.frames, ids.len() as u64);
        assert!(!expected.is_empty());
        // Every frame written lies in the window.
        for f in &got.frames {
            assert!(
                f.capture_ns >= w0 && f.end_ns <= w1,
                "{f:?} outside [{w0}, {w1}]"
            );
        }
        assert!(
            closed_after < Duration::from_secs(5),
            "closed {closed_after:?} after the start of a 300 ms window"
        );
    }
}

/// A window over a session where nothing is recorded at all (the aggregator's passes find
/// nothing and wait the longest): it still closes on its own.
#[test]
fn a_streamed_window_over_an_idle_session_closes() {
    let _g = serial();
    let received = Arc::new(Mutex::new(Received::default()));
    let (mut session, _tid) =
        session_with_aggregator("pacing-stream-idle", Some(memory_registry(&received)));
    idle();
    session
        .stream_trace("pacing-stream-idle.json", Duration::from_millis(50))
        .unwrap();
    wait_for(60, "the idle window to close", || closed(&received));
    let end = received.lock().unwrap().end.clone().unwrap();
    assert_eq!(end.reason, "window");
    assert_eq!((end.spans, end.frames, end.dropped), (0, 0, 0));
    assert!(end.end_ns >= end.start_ns);
    session.stop();
}

/// A window whose last frames end on a thread that records nothing more afterwards, and
/// whose births are on another thread (both lanes idle once the window is over): the
/// window closes, and its frames are all there.
///
/// The line stops well inside the window (100 frames, 1 ms apart, within its first 250 ms)
/// unless the machine is loaded enough to stretch it: then the frames that the two threads
/// measured inside the window must all be there, and none from outside it.
#[test]
fn a_streamed_window_whose_line_stops_at_its_end_keeps_every_frame() {
    let _g = serial();
    let received = Arc::new(Mutex::new(Received::default()));
    let (mut session, _tid) =
        session_with_aggregator("pacing-stream-stop", Some(memory_registry(&received)));
    {
        // The finishing thread (this one) has the first lane.
        let _warm = scope!("stream-stop-warmup");
    }
    session
        .stream_trace("pacing-stream-stop.json", Duration::from_millis(400))
        .unwrap();
    let opened = Instant::now();
    let cam = FrameSource::new("cam-pacing-stream-stop");
    let (tx, rx) = mpsc::channel();
    let camera = thread::spawn(move || {
        for _ in 0..100 {
            if opened.elapsed() > Duration::from_millis(250) {
                break;
            }
            let before = heimdall_perf_core::unix_now_ns();
            tx.send((cam.begin(), before)).unwrap();
            thread::sleep(Duration::from_millis(1));
        }
    });
    let mut timed = Vec::new();
    for (f, before) in rx {
        let _s = f.stage("stream-stop-stage");
        drop(_s);
        f.finish();
        timed.push((f.id(), before, heimdall_perf_core::unix_now_ns()));
    }
    camera.join().unwrap();
    let n = timed.len() as u64;
    wait_for(60, "the window to close", || closed(&received));
    let start_unix = session.report().session.start_unix_ns;
    let got = received.lock().unwrap();
    let end = got.end.clone().unwrap();
    let header = got.header.clone().unwrap();
    let (w0, w1) = (header.start_ns, header.start_ns + header.window_ns);
    let written = frames_written(&got);
    let inside = frames_inside_window(&got, &timed, start_unix, 5_000_000);
    let missing: Vec<u64> = inside.difference(&written).copied().collect();
    eprintln!(
        "stream stop: {n} frames, {} inside the window, {} written, missing {missing:?}, end {end:?}",
        inside.len(),
        got.frames.len()
    );
    assert_eq!(end.reason, "window");
    assert_eq!(written.len(), got.frames.len(), "a frame written twice");
    assert!(!inside.is_empty());
    assert!(missing.is_empty(), "frames of the window lost: {missing:?}");
    // Every frame began after the window opened; when the last one finished well before its
    // end too (as it does unless the machine is loaded), every one is written.
    if timed
        .iter()
        .all(|&(_, _, finished)| finished.saturating_sub(start_unix) + 5_000_000 < w1)
    {
        assert_eq!(got.frames.len() as u64, n, "frames of the window lost");
    }
    for f in &got.frames {
        assert!(
            f.capture_ns >= w0 && f.end_ns <= w1,
            "{f:?} outside [{w0}, {w1}]"
        );
    }
    assert!(got.frames.iter().all(|f| f.stages.len() == 1));
    drop(got);
    session.stop();
}

// ---------------------------------------------------------------------------------------
// `ValueStats::record_all` and `MetricCounter`, bit for bit.

/// xorshift64*: a fixed, reproducible stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// Whether two statistics are the same, bit for bit: the summary, every permille, the
/// counts.
fn same_stats(a: &ValueStats, b: &ValueStats) -> Result<(), String> {
    if summary_bits(&a.summary()) != summary_bits(&b.summary()) {
        return Err(format!("summary {:?} vs {:?}", a.summary(), b.summary()));
    }
    if (a.count(), a.non_finite()) != (b.count(), b.non_finite()) {
        return Err("counts differ".into());
    }
    for q in 0..=1000 {
        let q = f64::from(q) / 1000.0;
        if a.quantile(q).to_bits() != b.quantile(q).to_bits() {
            return Err(format!(
                "quantile {q}: {:e} vs {:e}",
                a.quantile(q),
                b.quantile(q)
            ));
        }
    }
    Ok(())
}

/// Bit patterns at and around bucket edges (a bucket is 2^45 in the bits) near `v`.
fn bucket_edge(rng: &mut Rng, v: f64) -> f64 {
    let bits = v.to_bits() & !(1 << 63);
    let key = (bits + (1 << 45) - 1) >> 45;
    // GROW_PAD is 64 buckets: edges of the padded window too.
    let k = key as i64 + rng.pick(&[0i64, 1, -1, 63, 64, 65, -63, -64, -65, 128, -128]);
    let edge = (k.max(1) as u64) << 45;
    let b = match rng.below(3) {
        0 => edge,
        1 => edge - 1,
        _ => edge + 1,
    };
    let m = f64::from_bits(b.min(f64::MAX.to_bits()));
    if v.is_sign_negative() {
        -m
    } else {
        m
    }
}

/// A block of `n` values of one kind, hard on the lean path's checks.
fn hostile_block(rng: &mut Rng, kind: u64, n: usize, around: f64) -> Vec<f64> {
    let sign = if around.is_sign_negative() { -1.0 } else { 1.0 };
    (0..n)
        .map(|i| match kind {
            // Ordinary values around `around`.
            0 => around * (1.0 + (rng.below(1000) as f64) / 1000.0),
            // Zeros of both signs among them.
            1 => match rng.below(4) {
                0 => 0.0,
                1 => -0.0,
                _ => around * (1.0 + (rng.below(100) as f64) / 100.0),
            },
            // Negative zeros only.
            2 => -0.0,
            // Positive zeros only.
            3 => 0.0,
            // Subnormals of the sign, and zeros.
            4 => {
                if rng.below(8) == 0 {
                    -0.0
                } else {
                    sign * f64::from_bits(1 + rng.below(1 << 52))
                }
            }
            // Bucket edges near `around`.
            5 => bucket_edge(rng, around),
            // The extremes of the sign.
            6 => sign * rng.pick(&[f64::MAX, 1e308, f64::MIN_POSITIVE, 5e-324, 1.0]),
            // Any exponent of the sign (spreads the buckets, collapses them).
            7 => sign * f64::from_bits(rng.below(0x7fe0_0000_0000_0000) + 1),
            // Far from the moments' shift: at and around 2^400 away.
            8 => {
                let far = around.abs().max(1.0) * 2f64.powi(400);
                sign * far * rng.pick(&[0.5, 0.999_999, 1.0, 1.000_001, 2.0])
            }
            // A sign change, NaN or infinity now and then.
            9 => match i % 97 {
                13 => f64::NAN,
                29 => f64::INFINITY,
                41 => f64::NEG_INFINITY,
                53 => -around,
                _ => around,
            },
            // A far cluster of the sign, many values (moves the window).
            10 => sign * 1e200 * (1.0 + (rng.below(10) as f64) / 10.0),
            // Any magnitude up to `around`'s: once the moments are scaled (a value far from
            // the shift came), these are within their range and take the lean path over
            // thousands of buckets (collapses).
            11 => sign * f64::from_bits(1 + rng.below(around.abs().to_bits())),
            _ => around * 1.5,
        })
        .collect()
}

/// A sequence of hostile blocks, most of them 256 values long and aligned on 256 so that
/// `record_all` sees them as whole blocks.
fn hostile_sequence(rng: &mut Rng) -> Vec<f64> {
    let around = rng.pick(&[
        1.0,
        -1.0,
        60.0,
        -60.0,
        1e-300,
        -1e-300,
        1e300,
        -1e300,
        3e-310,
        -3e-310,
        f64::MAX / 4.0,
        -f64::MAX / 4.0,
    ]);
    let mut values = Vec::new();
    // Sometimes a first value that sets an odd shift: a zero, a subnormal, the other sign.
    match rng.below(4) {
        0 => values.push(rng.pick(&[0.0, -0.0, 5e-324, -5e-324, -around])),
        1 => values.extend(hostile_block(rng, 0, 255, around)),
        _ => {}
    }
    for _ in 0..1 + rng.below(12) {
        let kind = rng.below(13);
        let n = if rng.below(4) == 0 {
            1 + rng.below(600) as usize
        } else {
            256 * (1 + rng.below(3) as usize)
        };
        values.extend(hostile_block(rng, kind, n, around));
    }
    values
}

#[test]
fn record_all_equals_record_on_each_value_bit_for_bit() {
    let _g = serial();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..400 {
        let values = hostile_sequence(&mut rng);
        let mut one_by_one = ValueStats::new();
        let mut batched = ValueStats::new();
        let mut at = 0;
        while at < values.len() {
            // Calls of 256 (whole blocks) or of any length.
            let n = if rng.below(2) == 0 {
                256
            } else {
                1 + rng.below(700) as usize
            }
            .min(values.len() - at);
            let call = &values[at..at + n];
            for &v in call {
                one_by_one.record(v);
            }
            batched.record_all(call);
            if let Err(e) = same_stats(&batched, &one_by_one) {
                panic!(
                    "case {case}, values {at}..{}: {e}\nthe call: {:?}",
                    at + n,
                    call.iter().take(16).collect::<Vec<_>>()
                );
            }
            at += n;
        }
    }
}

/// Blocks of negative zeros only, positive zeros only, and zeros among negative values,
/// after statistics of each sign and after a zero first value: the lean path counts every
/// zero as `record` does (as +0, apart from the buckets).
#[test]
fn record_all_of_signed_zero_blocks_equals_record() {
    let _g = serial();
    let firsts = [0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 1e300, -1e300];
    let blocks: [&[f64]; 6] = [
        &[-0.0; 256],
        &[0.0; 256],
        &[-0.0, 0.0, -0.0, -0.0],
        &[-1.0, -0.0, -2.0, 0.0],
        &[1.0, -0.0, 2.0, 0.0],
        &[-0.0, -5e-324, -0.0, -1e-310],
    ];
    for first in firsts {
        for a in blocks {
            for b in blocks {
                let mut one = ValueStats::new();
                let mut all = ValueStats::new();
                one.record(first);
                all.record_all(&[first]);
                for block in [a, b] {
                    let block: Vec<f64> = block.iter().copied().cycle().take(256).collect();
                    for &v in &block {
                        one.record(v);
                    }
                    all.record_all(&block);
                    same_stats(&all, &one)
                        .unwrap_or_else(|e| panic!("first {first:e}, {:?}..: {e}", &block[..4]));
                }
                assert_eq!(all.summary().min.to_bits(), one.summary().min.to_bits());
            }
        }
    }
}

/// `MetricCounter` with every window from 1 to 300, fed hostile values with reads between
/// sets: `value()` is the last value set (bit for bit, NaN and -0.0 included), `add` starts
/// from it, the window holds the last values, and the statistics are those of recording
/// each value in turn.
#[test]
fn metric_counter_value_and_statistics_for_windows_1_to_300() {
    let _g = serial();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for window in 1..=300usize {
        let values = hostile_sequence(&mut rng);
        let values = &values[..values.len().min(3 * window + 40 + rng.below(300) as usize)];
        let mut counter = MetricCounter::new("m", MetricType::Custom("x".into()), "u", window);
        let mut reference = ValueStats::new();
        let mut seen: Vec<f64> = Vec::new();
        assert!(counter.value().is_nan());
        for (i, &v) in values.iter().enumerate() {
            if rng.below(7) == 0 {
                // `add`: the last value plus a delta (0 before the first).
                let last = counter.value();
                let base = if last.is_nan() { 0.0 } else { last };
                let delta = rng.pick(&[1.0, -0.0, 0.5, -3.0]);
                counter.add(delta);
                let set = base + delta;
                reference.record(set);
                seen.push(set);
            } else {
                counter.set(v);
                reference.record(v);
                seen.push(v);
            }
            let last = *seen.last().unwrap();
            assert_eq!(
                counter.value().to_bits(),
                last.to_bits(),
                "window {window}, value {i}: value() is {:e}, the last set {last:e}",
                counter.value()
            );
            assert_eq!(
                counter.to_measurement().value.to_bits(),
                last.to_bits(),
                "window {window}: to_measurement"
            );
            if rng.below(5) == 0 || i % window == window - 1 || i % window == 0 {
                let got = counter.statistics();
                let want = reference.summary();
                assert_eq!(
                    summary_bits(&got),
                    summary_bits(&want),
                    "window {window}, after value {i}: {got:?} vs {want:?}"
                );
                let tail: Vec<u64> = seen[seen.len().saturating_sub(window)..]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                let now: Vec<u64> = counter.window_values().map(f64::to_bits).collect();
                assert_eq!(now, tail, "window {window}, after value {i}: window values");
            }
        }
        // A clone reads the same.
        let clone = counter.clone();
        assert_eq!(clone.value().to_bits(), counter.value().to_bits());
        assert_eq!(
            summary_bits(&clone.statistics()),
            summary_bits(&reference.summary())
        );
    }
}

/// A streamed window while another thread takes reports in a loop (each report is two
/// drain passes, so the passes the window counts to close come fast): every frame well
/// inside the window is still written.
#[test]
fn a_streamed_window_with_reports_in_a_loop_keeps_its_frames() {
    let _g = serial();
    let received = Arc::new(Mutex::new(Received::default()));
    let (session, _tid) =
        session_with_aggregator("pacing-stream-reports", Some(memory_registry(&received)));
    let session = Arc::new(Mutex::new(session));
    let stop = Arc::new(AtomicBool::new(false));
    let reporter = {
        let (session, stop) = (Arc::clone(&session), Arc::clone(&stop));
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                drop(session.lock().unwrap().report());
                n += 1;
            }
            n
        })
    };
    let line = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let cam = FrameSource::new("cam-pacing-stream-reports");
            let mut timed = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let before = heimdall_perf_core::unix_now_ns();
                let f = cam.begin();
                {
                    let _s = f.stage("stream-reports-stage");
                }
                f.finish();
                timed.push((f.id(), before, heimdall_perf_core::unix_now_ns()));
                thread::sleep(Duration::from_micros(200));
            }
            timed
        })
    };
    thread::sleep(Duration::from_millis(30));
    session
        .lock()
        .unwrap()
        .stream_trace("pacing-stream-reports.json", Duration::from_millis(200))
        .unwrap();
    wait_for(60, "the window to close", || closed(&received));
    thread::sleep(Duration::from_millis(30));
    stop.store(true, Ordering::Relaxed);
    let reports = reporter.join().unwrap();
    let timed = line.join().unwrap();
    let mut session = Arc::try_unwrap(session).ok().unwrap().into_inner().unwrap();
    let start_unix = session.report().session.start_unix_ns;
    session.stop();
    let got = received.lock().unwrap();
    let end = got.end.clone().unwrap();
    let written = frames_written(&got);
    let missing: Vec<u64> = frames_inside_window(&got, &timed, start_unix, 5_000_000)
        .difference(&written)
        .copied()
        .collect();
    eprintln!(
        "stream with reports: {reports} reports, {} frames written, missing {missing:?}, {end:?}",
        written.len()
    );
    assert_eq!(end.reason, "window");
    assert_eq!(written.len(), got.frames.len(), "a frame written twice");
    assert!(
        missing.is_empty(),
        "frames of the window missing: {missing:?}"
    );
}
