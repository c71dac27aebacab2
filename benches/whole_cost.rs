//! The whole CPU cost of a span and of a frame: the recording threads **plus** the session's
//! aggregator thread, from thread CPU clocks, at paced rates.
//!
//! `cargo bench --bench whole_cost` (add `-- span` or `-- frame` for one group only).
//!
//! Two recording threads each emit `scope!` spans (or frames: `frame!`-style birth, three
//! stages, `finish`) at half the target rate, paced in batches of 1 to 10 ms of work against
//! a clock (a thread sleeps when it is ahead; one more than 20 ms behind gives up the lost
//! time, so the achieved rate shows where the machine saturates). For each rate:
//!
//! * the recording threads' CPU from `CLOCK_THREAD_CPUTIME_ID`, less the CPU of the same
//!   paced loop with no span in it (a baseline run at the same rate, in the same run);
//! * the aggregator thread's CPU from `/proc/self/task/<tid>/schedstat` (the thread is
//!   found by its name, `heimdall-perf-aggregator-<n>`, which Linux cuts to
//!   `heimdall-perf-a`);
//! * the recording threads' minor page faults (`getrusage(RUSAGE_THREAD)`), per million
//!   operations: memory the allocator gave back to the kernel and a thread faults in again
//!   (a lane's chunks, when they are freed and allocated again, are most of it);
//! * the hot path: one thread recording in chunks that never back its lane up, the session
//!   drained between chunks (untimed) — what the recording thread pays while the
//!   aggregator keeps up.
//!
//! A lane 64 chunks ahead of the aggregator drains itself on its recording thread; the
//! session counts no such drains, so they show as recording-thread CPU per span above the
//! hot path (the `rec ÷ hot` column).
//!
//! Three repetitions; every figure printed is the median of the three. Without `--bench`
//! (as `cargo test --benches` runs it) each point runs for a few milliseconds, as a smoke
//! test.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use heimdall_perf::{scope, FrameSource, ProfilingSession};

mod common;
use common::{thread_cpu_ns, thread_minor_faults};

/// The task ids of this process whose name starts with `prefix`.
fn tasks_named(prefix: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let entry = entry.expect("a task");
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end().starts_with(prefix) {
            if let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                out.push(tid);
            }
        }
    }
    out
}

/// CPU time of task `tid` of this process, in nanoseconds (the first field of `schedstat`).
fn task_cpu_ns(tid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .expect("the aggregator's schedstat");
    text.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .expect("schedstat's first field")
}

/// What the recording threads do, once per operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Work {
    /// One `scope!` span.
    Span,
    /// A frame: birth, stages `preprocess`, `detect`, `decide`, `finish`.
    Frame,
    /// The same loop with nothing recorded.
    Nothing,
}

impl Work {
    #[inline(always)]
    fn run(self, source: &FrameSource, i: u64) {
        match self {
            Work::Span => {
                let _s = scope!("span");
                black_box(i);
            }
            Work::Frame => {
                let f = source.begin();
                {
                    let _s = f.stage("preprocess");
                    black_box(i);
                }
                {
                    let _s = f.stage("detect");
                    black_box(i);
                }
                {
                    let _s = f.stage("decide");
                    black_box(i);
                }
                f.finish();
            }
            Work::Nothing => {
                black_box(i);
            }
        }
    }
}

/// One paced run of two recording threads.
#[derive(Clone, Copy, Debug)]
struct Run {
    /// Operations recorded, both threads.
    ops: u64,
    /// Wall time of the run.
    wall: Duration,
    /// CPU of the recording threads, both together, ns.
    rec_cpu: u64,
    /// CPU of the aggregator thread, ns.
    agg_cpu: u64,
    /// Minor page faults of the recording threads, both together.
    rec_faults: u64,
}

const THREADS: usize = 2;

/// Runs `work` on [`THREADS`] threads at `rate` operations a second in all (`None`: as fast
/// as they go) for `run_for`, in a fresh session, and returns what it cost.
fn paced(work: Work, rate: Option<f64>, run_for: Duration) -> Run {
    let before = tasks_named("heimdall-perf-a");
    let session = ProfilingSession::new("whole-cost");
    // The new thread names itself once it runs: look until it has.
    let mut aggregator = Vec::new();
    for _ in 0..1000 {
        aggregator = tasks_named("heimdall-perf-a");
        aggregator.retain(|t| !before.contains(t));
        if !aggregator.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(aggregator.len(), 1, "the session's aggregator thread");
    let aggregator = aggregator[0];

    let per_thread = rate.map(|r| r / THREADS as f64);
    // A batch is a millisecond of work at the target rate, or up to 10 ms of it, at most
    // 1 000 operations, when a millisecond holds fewer (so that the sleeps between batches
    // cost little per operation); 10 000 operations unpaced.
    let batch = per_thread.map_or(10_000, |r| {
        let ms = (r * 1e-3).ceil() as u64;
        let ten_ms = (r * 1e-2).ceil() as u64;
        ms.max(ten_ms.min(1_000)).max(1)
    });
    let ready = Arc::new(Barrier::new(THREADS + 1));
    let go = Arc::new(Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (ready, go) = (Arc::clone(&ready), Arc::clone(&go));
            std::thread::Builder::new()
                .name(format!("recording-{t}"))
                .spawn(move || {
                    let source = FrameSource::new(&format!("cam-{t}"));
                    // Warm up (names interned, lane made), untimed.
                    pace(work, &source, per_thread, batch, run_for / 10);
                    ready.wait();
                    go.wait();
                    let (cpu, faults) = (thread_cpu_ns(), thread_minor_faults());
                    let ops = pace(work, &source, per_thread, batch, run_for);
                    (ops, thread_cpu_ns() - cpu, thread_minor_faults() - faults)
                })
                .expect("a recording thread")
        })
        .collect();
    ready.wait();
    // The warm-up's events are drained (at these rates the aggregator's pass comes every
    // 10 ms).
    std::thread::sleep(Duration::from_millis(40));
    let agg_start = task_cpu_ns(aggregator);
    let start = Instant::now();
    go.wait();
    let mut run = Run {
        ops: 0,
        wall: Duration::ZERO,
        rec_cpu: 0,
        agg_cpu: 0,
        rec_faults: 0,
    };
    for t in threads {
        let (ops, cpu, faults) = t.join().expect("a recording thread panicked");
        run.ops += ops;
        run.rec_cpu += cpu;
        run.rec_faults += faults;
    }
    run.wall = start.elapsed();
    // What the recording threads left in their lanes is drained by the aggregator's next
    // passes (frames settle one pass after their end).
    std::thread::sleep(Duration::from_millis(40));
    run.agg_cpu = task_cpu_ns(aggregator) - agg_start;
    drop(session);
    run
}

/// Runs `work` in batches of `batch` for `run_for`, `per_thread` operations a second
/// (`None`: unpaced). Returns the operations done.
fn pace(
    work: Work,
    source: &FrameSource,
    per_thread: Option<f64>,
    batch: u64,
    run_for: Duration,
) -> u64 {
    let start = Instant::now();
    let mut origin = start;
    let mut since = 0u64;
    let mut done = 0u64;
    loop {
        for i in 0..batch {
            work.run(source, i);
        }
        done += batch;
        let now = Instant::now();
        if now - start >= run_for {
            return done;
        }
        if let Some(rate) = per_thread {
            let due = origin + Duration::from_secs_f64((done - since) as f64 / rate);
            if due > now {
                std::thread::sleep(due - now);
            } else if now - due > Duration::from_millis(20) {
                // Far behind: the lost time is lost (no burst to catch up).
                origin = now;
                since = done;
            }
        }
    }
}

/// CPU per operation of one thread recording `work` in chunks of `chunk` operations (the
/// lane never backs up), the session drained between chunks, untimed.
fn hot_path(work: Work, chunk: u64, total: u64) -> f64 {
    let session = ProfilingSession::new("hot-path");
    let source = FrameSource::new("cam-hot");
    let mut cpu = 0u64;
    let mut done = 0u64;
    // One chunk of warm-up.
    for i in 0..chunk {
        work.run(&source, i);
    }
    black_box(session.report().span_count());
    while done < total {
        let t = thread_cpu_ns();
        for i in 0..chunk {
            work.run(&source, i);
        }
        cpu += thread_cpu_ns() - t;
        done += chunk;
        black_box(session.report().span_count());
    }
    cpu as f64 / done as f64
}

/// The first three fields of `/proc/loadavg`.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One row of the table: the medians of the repetitions.
struct Row {
    target: Option<f64>,
    achieved: f64,
    rec_ns: f64,
    agg_ns: f64,
    agg_core: f64,
    /// Minor page faults of the recording threads per million operations.
    faults: f64,
}

fn rate_text(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else {
        format!("{:.0} k/s", r / 1e3)
    }
}

/// One repetition at one rate: achieved rate, recording-thread CPU per operation (ns, less
/// the baseline's), aggregator CPU per operation (ns), the aggregator's share of a core, and
/// the recording threads' minor page faults per million operations.
type Sample = (f64, f64, f64, f64, f64);

fn group(work: Work, what: &str, rates: &[Option<f64>], run_for: Duration, reps: usize) {
    let chunk = if work == Work::Span { 50_000 } else { 4_096 };
    let hot_total = if run_for >= Duration::from_secs(1) {
        chunk * 100
    } else {
        chunk
    };
    println!("\n## {what}: the whole cost, {THREADS} recording threads");
    println!("load average at the start: {}", loadavg());
    println!(
        "({} s a point, {reps} repetitions, medians; CPU per {what})\n",
        run_for.as_secs_f64()
    );
    let mut hot = Vec::new();
    // The aggregator of the baseline runs' sessions, where nothing is recorded.
    let mut idle = Vec::new();
    let mut rows: Vec<Vec<Sample>> = vec![Vec::new(); rates.len()];
    for _ in 0..reps {
        hot.push(hot_path(work, chunk, hot_total) - hot_path(Work::Nothing, chunk, hot_total));
        for (k, &rate) in rates.iter().enumerate() {
            let base = paced(Work::Nothing, rate, run_for);
            let r = paced(work, rate, run_for);
            let base_per_op = base.rec_cpu as f64 / base.ops as f64;
            idle.push(base.agg_cpu as f64 / base.wall.as_secs_f64());
            let wall = r.wall.as_secs_f64();
            rows[k].push((
                r.ops as f64 / wall,
                r.rec_cpu as f64 / r.ops as f64 - base_per_op,
                r.agg_cpu as f64 / r.ops as f64,
                r.agg_cpu as f64 / 1e9 / wall,
                r.rec_faults as f64 * 1e6 / r.ops as f64,
            ));
        }
    }
    let hot = median(hot);
    println!("load average at the end: {}", loadavg());
    println!("hot path (one thread, lane never backed up): **{hot:.1} ns**");
    println!(
        "aggregator of a session with nothing recorded: {:.0} µs of CPU a second\n",
        median(idle) / 1e3
    );
    println!("| target rate | achieved | recording threads | aggregator | **total** | total ÷ hot path | recording ÷ hot path | aggregator, % of a core | recording threads' page faults per M {what}s |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (k, &target) in rates.iter().enumerate() {
        let col = |f: fn(&Sample) -> f64| median(rows[k].iter().map(f).collect());
        let row = Row {
            target,
            achieved: col(|r| r.0),
            rec_ns: col(|r| r.1),
            agg_ns: col(|r| r.2),
            agg_core: col(|r| r.3),
            faults: col(|r| r.4),
        };
        let total = row.rec_ns + row.agg_ns;
        println!(
            "| {} | {} | {:.1} ns | {:.1} ns | **{:.1} ns** | {:.2} | {:.2} | {:.1} % | {:.0} |",
            row.target.map_or("unpaced".to_string(), rate_text),
            rate_text(row.achieved),
            row.rec_ns,
            row.agg_ns,
            total,
            total / hot,
            row.rec_ns / hot,
            row.agg_core * 100.0,
            row.faults
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Criterion's convention: `--bench` measures, anything else is a quick smoke run.
    let bench = args.iter().any(|a| a == "--bench");
    let filter: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f));
    let (run_for, reps) = if bench {
        (Duration::from_millis(2_000), 3)
    } else {
        (Duration::from_millis(20), 1)
    };
    if wanted("span") {
        group(
            Work::Span,
            "span",
            &[
                Some(1e5),
                Some(1e6),
                Some(5e6),
                Some(10e6),
                Some(20e6),
                Some(30e6),
                Some(40e6),
                None,
            ],
            run_for,
            reps,
        );
    }
    if wanted("frame") {
        group(
            Work::Frame,
            "frame",
            &[Some(1e3), Some(1e4), Some(1e5), Some(5e5), Some(1e6), None],
            run_for,
            reps,
        );
    }
}
