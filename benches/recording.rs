//! The recording hot path, side by side with its peers in the same run:
//! `scope!` against puffin's `profile_scope!`, the spec's lock/start_timing … lock/stop_timing
//! pair against a naive `Mutex<HashMap<String, Instant>>`, a frame with three stages against
//! the four `scope!` spans of the same work, and the raw clock reads all of them rest on.
//!
//! `cargo bench --bench recording`

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

mod common;
use heimdall_perf::metrics::{MetricCounter, ThroughputMeter};
use heimdall_perf::{scope, MetricType, ProfilingSession};

/// Times `iters` calls of `f` in chunks, running `between` (untimed) after each chunk, so
/// that profilers that buffer per frame can flush as they would in a real loop.
fn chunked(iters: u64, f: impl FnMut(), between: impl FnMut()) -> Duration {
    chunked_by(50_000, iters, f, between)
}

/// [`chunked`] with chunks of `chunk` calls.
fn chunked_by(chunk: u64, iters: u64, f: impl FnMut(), between: impl FnMut()) -> Duration {
    Duration::from_nanos(common::chunked_on(
        common::wall_ns,
        chunk,
        iters,
        f,
        between,
    ))
}

/// The prototype of the spec pair (a baseline): names → ids in an Fx-hashed table,
/// a stack of open timings, and per-name count and total updated at each stop.
#[derive(Default)]
struct ProtoPair {
    ids: rustc_hash::FxHashMap<Box<str>, usize>,
    open: Vec<(usize, u64)>,
    totals: Vec<(u64, u64)>,
    clock: quanta::Clock,
}

impl ProtoPair {
    fn start(&mut self, name: &str) {
        let id = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                self.totals.push((0, 0));
                self.ids.insert(name.into(), self.totals.len() - 1);
                self.totals.len() - 1
            }
        };
        let t = self.clock.raw();
        self.open.push((id, t));
    }

    fn stop(&mut self, name: &str) -> Option<Duration> {
        let t = self.clock.raw();
        let &id = self.ids.get(name)?;
        let &(top, start) = self.open.last()?;
        if top != id {
            return None;
        }
        self.open.pop();
        let ns = self.clock.delta_as_nanos(start, t);
        let (count, total) = &mut self.totals[id];
        *count += 1;
        *total += ns;
        Some(Duration::from_nanos(ns))
    }
}

fn spans(c: &mut Criterion) {
    let mut g = c.benchmark_group("span");

    // Baselines: the clock reads a span needs.
    let clock = quanta::Clock::new();
    g.bench_function("baseline: 2 TSC reads (quanta raw)", |b| {
        b.iter(|| {
            let a = clock.raw();
            let z = clock.raw();
            black_box((a, z))
        })
    });
    g.bench_function("baseline: 2 Instant::now", |b| {
        b.iter(|| {
            let a = Instant::now();
            let z = Instant::now();
            black_box((a, z))
        })
    });

    // puffin's scope, flushed once per 50k scopes (a frame) outside the timing.
    puffin::set_scopes_on(true);
    g.bench_function("peer: puffin profile_scope!", |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                || {
                    puffin::profile_scope!("bench");
                    black_box(());
                },
                || puffin::GlobalProfiler::lock().new_frame(),
            )
        })
    });
    puffin::set_scopes_on(false);

    // Ours, recording into a live session.
    let session = ProfilingSession::new("bench");
    g.bench_function("heimdall scope!", |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                || {
                    let _s = scope!("bench");
                    black_box(());
                },
                || {},
            )
        })
    });
    drop(session);

    // `scope!` while a trace capture runs, beside the same without, in one session: the
    // capture is kept by the aggregator, so this is the whole cost. Chunks of 400 000 spans
    // back the lane up (the recording thread drains it itself, inside the timing); between
    // chunks, untimed, the same snapshot for both, and a fresh capture for the second, so
    // that every span is kept (the capture's limit is never what is measured).
    let mut session = ProfilingSession::new("bench-capture");
    for capture in [false, true] {
        let name = if capture {
            "heimdall scope! (whole, capture running)"
        } else {
            "heimdall scope! (whole, no capture)"
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                chunked_by(
                    400_000,
                    iters,
                    || {
                        let _s = scope!("bench");
                    },
                    || {
                        black_box(session.report().span_count());
                        if capture {
                            session
                                .capture_trace(Duration::from_secs(3600))
                                .expect("the session records");
                        }
                    },
                )
            })
        });
    }
    drop(session);

    // A frame (birth, three stages, finish) beside the four `scope!` spans that time the
    // same work, in one session (issue 12's bound: at most the four spans + 20 ns).
    //
    // Two ways each. "recording thread": chunks of 4096 calls, small enough that the lane
    // never backs up (64 chunks of 4096 events), with the session drained between chunks,
    // untimed — what the recording thread pays while the aggregator keeps up, as it does at
    // a line's rates. "whole": 50 000 calls a chunk, far faster than any line, so the lane
    // backs up and the recording thread drains it itself — the aggregation is in the time.
    let session = ProfilingSession::new("bench-frames");
    fn four_spans() {
        let _f = scope!("frame");
        {
            let _s = scope!("preprocess");
        }
        {
            let _s = scope!("detect");
        }
        {
            let _s = scope!("decide");
        }
    }
    fn one_frame() {
        let f = heimdall_perf::frame!("cam-0");
        {
            let _s = f.stage("preprocess");
        }
        {
            let _s = f.stage("detect");
        }
        {
            let _s = f.stage("decide");
        }
        f.finish();
    }
    for (label, chunk) in [("recording thread", 4096u64), ("whole", 50_000)] {
        g.bench_function(format!("heimdall 4 scope! spans ({label})"), |b| {
            b.iter_custom(|iters| {
                chunked_by(chunk, iters, four_spans, || {
                    black_box(session.report().span_count());
                })
            })
        });
        g.bench_function(
            format!("heimdall frame! + 3 stages + finish ({label})"),
            |b| {
                b.iter_custom(|iters| {
                    chunked_by(chunk, iters, one_frame, || {
                        black_box(session.report().frames.len());
                    })
                })
            },
        );
    }
    drop(session);
    assert!(!heimdall_perf::is_recording());
    g.bench_function("heimdall scope! (no active session)", |b| {
        b.iter(|| {
            let _s = scope!("bench");
            black_box(());
        })
    });

    // The spec's API: two locks of the shared session around start/stop.
    let session = Arc::new(Mutex::new(ProfilingSession::new("bench-pair")));
    g.bench_function(
        "heimdall spec pair (lock+start_timing, lock+stop_timing)",
        |b| {
            b.iter(|| {
                session.lock().unwrap().start_timing("bench");
                black_box(session.lock().unwrap().stop_timing("bench").unwrap())
            })
        },
    );
    {
        let mut s = session.lock().unwrap();
        g.bench_function("heimdall start_timing+stop_timing (no locks)", |b| {
            b.iter(|| {
                s.start_timing("bench");
                black_box(s.stop_timing("bench").unwrap())
            })
        });
    }
    // The same pair while the aggregator keeps up (as it does at a line's rates): chunks of
    // 2048 pairs (one chunk of the lane), the session drained between chunks, untimed. The
    // two above run far faster than any line, so their lane backs up and the recording
    // thread drains it itself: the aggregation of each span is in their time.
    g.bench_function("heimdall spec pair (recording thread)", |b| {
        b.iter_custom(|iters| {
            chunked_by(
                2048,
                iters,
                || {
                    session.lock().unwrap().start_timing("bench");
                    black_box(session.lock().unwrap().stop_timing("bench").unwrap());
                },
                || {
                    black_box(session.lock().unwrap().report().span_count());
                },
            )
        })
    });
    g.bench_function(
        "heimdall start_timing+stop_timing (no locks, recording thread)",
        |b| {
            b.iter_custom(|iters| {
                let mut s = session.lock().unwrap();
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(2048);
                    let t = Instant::now();
                    for _ in 0..n {
                        s.start_timing("bench");
                        black_box(s.stop_timing("bench").unwrap());
                    }
                    total += t.elapsed();
                    black_box(s.report().span_count());
                    left -= n;
                }
                total
            })
        },
    );
    // The prototype of the pair, as a baseline: two uncontended locks, an Fx-hashed
    // name → id table, a timing stack (out-of-order stops refused), TSC reads, per-name
    // count and total kept at once.
    let proto = Mutex::new(ProtoPair::default());
    g.bench_function(
        "baseline: prototype pair (2 Mutex, FxHashMap, TSC, count/total)",
        |b| {
            b.iter(|| {
                proto.lock().unwrap().start("bench");
                black_box(proto.lock().unwrap().stop("bench").unwrap())
            })
        },
    );
    black_box(proto.lock().unwrap().totals.len());
    let m = Mutex::new(0u64);
    g.bench_function("baseline: 2 std Mutex lock/unlock", |b| {
        b.iter(|| {
            *m.lock().unwrap() += 1;
            *m.lock().unwrap() += 1;
        })
    });
    drop(session);
    let naive: Mutex<HashMap<String, Instant>> = Mutex::new(HashMap::new());
    g.bench_function("peer: naive Mutex<HashMap<String, Instant>> pair", |b| {
        b.iter(|| {
            naive
                .lock()
                .unwrap()
                .insert("bench".to_string(), Instant::now());
            let start = naive.lock().unwrap().remove("bench").unwrap();
            black_box(start.elapsed())
        })
    });
    g.finish();
}

fn meters(c: &mut Criterion) {
    let mut g = c.benchmark_group("meter");
    let mut counter = MetricCounter::new("fps", MetricType::Throughput, "fps", 100);
    let mut v = 0.0f64;
    g.bench_function("MetricCounter::set", |b| {
        b.iter(|| {
            v += 0.25;
            if v > 120.0 {
                v = 0.0;
            }
            counter.set(black_box(v));
        })
    });
    // The same values, read from a table: the generator above chains a floating-point add
    // through every iteration (3 cycles), which the timing of `set` then includes.
    let table: Vec<f64> = (0..=480).map(|i| f64::from(i) * 0.25).collect();
    let mut fed = MetricCounter::new("fps", MetricType::Throughput, "fps", 100);
    let mut i = 0usize;
    g.bench_function("MetricCounter::set, values from a table", |b| {
        b.iter(|| {
            i = if i + 1 == table.len() { 0 } else { i + 1 };
            fed.set(black_box(table[i]));
        })
    });
    // The values alone, both ways, without `set`.
    let mut x = 0.0f64;
    g.bench_function("baseline: the values, generated", |b| {
        b.iter(|| {
            x += 0.25;
            if x > 120.0 {
                x = 0.0;
            }
            black_box(x)
        })
    });
    let mut j = 0usize;
    g.bench_function("baseline: the values, from a table", |b| {
        b.iter(|| {
            j = if j + 1 == table.len() { 0 } else { j + 1 };
            black_box(table[j])
        })
    });
    // The per-value path `set` took before: the running statistics of each value at once.
    let mut stats = heimdall_perf::metrics::ValueStats::new();
    let mut w = 0.0f64;
    g.bench_function("part of set: ValueStats::record", |b| {
        b.iter(|| {
            w += 0.25;
            if w > 120.0 {
                w = 0.0;
            }
            stats.record(black_box(w));
        })
    });
    // What `set` now costs per value once the window wraps: the batch fold, per value.
    let mut batched = heimdall_perf::metrics::ValueStats::new();
    let batch: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.25).collect();
    g.bench_function(
        "part of set: ValueStats::record_all, per value (batches of 100)",
        |b| {
            b.iter_custom(|iters| {
                let batches = iters.div_ceil(100);
                let t = Instant::now();
                for _ in 0..batches {
                    batched.record_all(black_box(&batch));
                }
                t.elapsed().mul_f64(iters as f64 / (batches * 100) as f64)
            })
        },
    );
    let mut hist = hdrhistogram::Histogram::<u64>::new(2).unwrap();
    let mut k = 0u64;
    g.bench_function("part of set: hdrhistogram record alone", |b| {
        b.iter(|| {
            k = (k + 250) % 120_000;
            let _ = hist.record(black_box(k));
        })
    });
    let mut meter = ThroughputMeter::new("frames", Duration::from_secs(1));
    g.bench_function("ThroughputMeter::tick", |b| b.iter(|| meter.tick()));
    let mut plain = 0u64;
    g.bench_function("baseline: u64 increment", |b| {
        b.iter(|| {
            plain = black_box(plain) + 1;
        })
    });
    g.finish();
}

/// Units of work per thread in one round of [`concurrently`]: 12 288 spans (6 chunks of a
/// lane) or 2 048 frames (about 6.5 chunks), below the backlog (`BACKLOG_WAKE`, 8 chunks)
/// at which a recording thread wakes the aggregator, so that a round times the recording
/// threads, not the aggregator's work. Their lanes are read between rounds (untimed, by
/// the report that drains them): the chunks a round writes were read on another core, so
/// what that costs the writers is in the round.
const ROUND_SPANS: u64 = 12_288;
const ROUND_FRAMES: u64 = 2_048;

/// What [`concurrently`] returns the time of.
#[derive(Clone, Copy)]
enum Clocked {
    /// The wall clock from the first thread's start to the last one's end.
    Wall,
    /// The CPU time of the recording threads, averaged over them: what each thread pays
    /// whether or not the machine had a free core for it (cache lines taken from one
    /// thread by another count; waiting for a core does not).
    Cpu,
}

/// Runs `work(n, thread)` on `threads` threads at once, in rounds of `round` units per
/// thread, until each thread has done at least `iters` units. A round's wall time runs
/// from the first thread's start to the last one's end (each thread reads the clock when
/// it is released and when it is done); between rounds, untimed, the session is drained.
/// Returns the time (wall, or CPU time per thread) of `iters` units per thread: the cost
/// of a unit per thread while the others record too.
///
/// The threads are new at each call (criterion's samples are a few rounds each): a first
/// round, untimed, lets each make its lane and first chunks, which a recording thread does
/// once in its life. The threads are released together: each waits (blocked) for the
/// round, then spins at a rendezvous until all have arrived, and starts when the last
/// arrives. While there are no more threads than cores they spin without yielding.
///
/// Why: released by the blocking barrier alone, or spinning with a `yield_now` now and
/// then, two threads were often woken onto the same core and ran one after the other
/// until the scheduler moved one: that doubled the wall time of those rounds, and read as
/// contention (1.3–2.0× from 1 to 2 threads, with CPU time per span flat). Spinning keeps
/// the first thread's core busy, so the second is placed on the other core.
fn concurrently(
    threads: usize,
    iters: u64,
    round: u64,
    session: &ProfilingSession,
    clocked: Clocked,
    work: Work,
) -> Duration {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;
    let rounds = iters.div_ceil(round).max(1);
    let go = Barrier::new(threads + 1);
    let done = Barrier::new(threads + 1);
    let arrived = AtomicUsize::new(0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let oversubscribed = threads > cores;
    let times: Vec<Mutex<(Instant, Instant, Duration)>> = (0..threads)
        .map(|_| Mutex::new((Instant::now(), Instant::now(), Duration::ZERO)))
        .collect();
    let total = std::thread::scope(|s| {
        for t in 0..threads {
            let (go, done, times, arrived) = (&go, &done, &times, &arrived);
            s.spawn(move || {
                // Round 0 warms up, untimed: the thread's lane, its first chunks.
                for r in 1..=rounds as usize + 1 {
                    go.wait();
                    arrived.fetch_add(1, Ordering::AcqRel);
                    let mut spins = 0u32;
                    while arrived.load(Ordering::Acquire) < r * threads {
                        spins += 1;
                        if oversubscribed && spins.is_multiple_of(64) {
                            // More threads than cores: let the others arrive.
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                    let cpu = Duration::from_nanos(common::thread_cpu_ns());
                    let a = Instant::now();
                    work(round, t);
                    let z = Instant::now();
                    let cpu = Duration::from_nanos(common::thread_cpu_ns()) - cpu;
                    *times[t].lock().unwrap() = (a, z, cpu);
                    done.wait();
                }
            });
        }
        let mut total = Duration::ZERO;
        for r in 0..=rounds {
            go.wait();
            done.wait();
            if r == 0 {
                black_box(session.report().span_count());
                continue;
            }
            let spans: Vec<(Instant, Instant, Duration)> =
                times.iter().map(|m| *m.lock().unwrap()).collect();
            total += match clocked {
                Clocked::Wall => {
                    let first = spans.iter().map(|t| t.0).min().unwrap();
                    let last = spans.iter().map(|t| t.1).max().unwrap();
                    last - first
                }
                Clocked::Cpu => spans.iter().map(|t| t.2).sum::<Duration>() / threads as u32,
            };
            black_box(session.report().span_count());
        }
        total
    });
    total.mul_f64(iters as f64 / (rounds * round) as f64)
}

/// The work of one thread in a round: `n` units, on thread number `thread`.
type Work = fn(u64, usize);

/// `n` `scope!` spans.
fn scope_spans(n: u64, _thread: usize) {
    for _ in 0..n {
        let _s = scope!("bench");
        black_box(());
    }
}

/// `n` frames of this thread's own source (one camera per thread), each with three stages.
fn frames_of_own_source(n: u64, thread: usize) {
    let source = heimdall_perf::FrameSource::new(&format!("cam-{thread}"));
    for _ in 0..n {
        let f = source.begin();
        {
            let _s = f.stage("preprocess");
        }
        {
            let _s = f.stage("detect");
        }
        {
            let _s = f.stage("decide");
        }
        f.finish();
    }
}

/// `scope!` and frames on 1, 2 and 4 threads at once (the machine has 2 cores): the cost
/// per span (per frame) per thread, which stays flat from 1 to 2 threads when nothing on
/// the hot path is shared between threads.
fn contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("contention");
    let session = ProfilingSession::new("bench-contention");
    let cases: [(&str, u64, Work); 2] = [
        ("scope!", ROUND_SPANS, scope_spans),
        (
            "frame + 3 stages + finish",
            ROUND_FRAMES,
            frames_of_own_source,
        ),
    ];
    for (what, round, work) in cases {
        for (clocked, label) in [(Clocked::Wall, "wall"), (Clocked::Cpu, "CPU")] {
            for threads in [1usize, 2, 4] {
                g.bench_function(format!("{what} on {threads} threads ({label})"), |b| {
                    b.iter_custom(|iters| {
                        concurrently(threads, iters, round, &session, clocked, work)
                    })
                });
            }
        }
    }
    drop(session);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = spans, meters, contention
}
criterion_main!(benches);
