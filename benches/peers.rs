//! A timed span, ours beside the ways people time spans in Rust, in one run:
//!
//! * ours: `scope!` into a live session (in a tight loop, and drained between chunks of
//!   50 000, untimed), and the spec's pair (`lock(); start_timing` … `lock(); stop_timing`);
//! * puffin 0.20 `profile_scope!` (a frame flushed every 50 000 scopes, untimed);
//! * tracing: `info_span!` entered and closed, under `tracing_subscriber::registry()` with
//!   a layer that stamps a span when it opens and records its duration into an HDR
//!   histogram when it closes (the way spans are timed with tracing; `#[instrument]` does
//!   the same);
//! * metrics 0.24: two clock reads, `Counter::increment` and `Histogram::record` on handles
//!   taken once, with the Prometheus recorder installed (`metrics-exporter-prometheus`,
//!   without its HTTP listener; its upkeep runs every 50 000 spans, untimed);
//! * a naive `Mutex<HashMap<String, Instant>>`: insert at the start, remove at the end.
//!
//! Measured in **CPU time of the benchmark thread** (`CLOCK_THREAD_CPUTIME_ID`, a criterion
//! `Measurement`), not wall time: on a shared, loaded machine the time the thread spends
//! preempted is not counted. What other threads do for a peer (our aggregator, puffin's and
//! metrics' flushing) is not in these figures: `benches/whole_cost.rs` measures ours whole.
//!
//! `cargo bench --bench peers`

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod common;
use common::thread_cpu_ns;
use hdrhistogram::Histogram;
use heimdall_perf::{scope, ProfilingSession};
use tracing::span;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Calls per chunk; `between` runs after each chunk, untimed (puffin's frame, the metrics
/// recorder's upkeep).
const CHUNK: u64 = 50_000;

/// Criterion's measurement: CPU time of the benchmark thread, in nanoseconds.
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Writes CPU times in nanoseconds (what every figure here is).
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "ns (CPU)"
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        _t: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        for v in values {
            *v = 1e9 / *v;
        }
        "/s (CPU)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

/// Times `iters` calls of `f` in chunks of [`CHUNK`], running `between` (untimed) after each;
/// the thread's CPU time in nanoseconds.
fn chunked(iters: u64, f: impl FnMut(), between: impl FnMut()) -> u64 {
    common::chunked_on(thread_cpu_ns, CHUNK, iters, f, between)
}

/// When a span opened, kept in the span's extensions.
struct Opened(Instant);

/// A tracing layer that times spans: open to close, into an HDR histogram (ns).
struct TimingLayer {
    durations: Arc<Mutex<Histogram<u64>>>,
}

impl<S> Layer<S> for TimingLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Opened(Instant::now()));
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            if let Some(Opened(at)) = span.extensions().get::<Opened>() {
                let ns = at.elapsed().as_nanos() as u64;
                self.durations.lock().unwrap().saturating_record(ns);
            }
        }
    }
}

fn peers(c: &mut Criterion<ThreadCpu>) {
    let mut g = c.benchmark_group("peers");

    g.bench_function("baseline: 2 Instant::now", |b| {
        b.iter(|| {
            let a = Instant::now();
            black_box(a.elapsed())
        })
    });

    // Ours: `scope!` into a live session (the aggregator thread drains it).
    let session = ProfilingSession::new("peers");
    g.bench_function("ours: scope!", |b| {
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
    // The same, the session drained between chunks, untimed (as puffin's frame and the
    // metrics upkeep below are): in the loop above the lane runs 64 chunks ahead of the
    // aggregator within a few milliseconds and the thread drains it itself, inside the time.
    g.bench_function("ours: scope! (drained between chunks)", |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                || {
                    let _s = scope!("bench");
                    black_box(());
                },
                || {
                    black_box(session.report().span_count());
                },
            )
        })
    });
    drop(session);

    // Ours: the spec's API, a lock around each of start and stop.
    let session = Arc::new(Mutex::new(ProfilingSession::new("peers-pair")));
    g.bench_function(
        "ours: spec pair (lock+start_timing, lock+stop_timing)",
        |b| {
            b.iter(|| {
                session.lock().unwrap().start_timing("bench");
                black_box(session.lock().unwrap().stop_timing("bench").unwrap())
            })
        },
    );
    drop(session);

    // puffin, a frame every 50 000 scopes, untimed.
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

    // tracing: registry + a timing layer, as this thread's default subscriber.
    let durations = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 2).expect("histogram bounds"),
    ));
    {
        let subscriber = tracing_subscriber::registry().with(TimingLayer {
            durations: Arc::clone(&durations),
        });
        let _default = tracing::subscriber::set_default(subscriber);
        g.bench_function("peer: tracing span, registry + timing layer", |b| {
            b.iter(|| {
                let span = tracing::info_span!("bench");
                let _entered = span.enter();
                black_box(());
            })
        });
    }
    assert!(
        !durations.lock().unwrap().is_empty(),
        "the timing layer recorded spans"
    );

    // metrics: the Prometheus recorder installed, handles taken once.
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the metrics recorder installs");
    let counter = metrics::counter!("bench_spans_total");
    let histogram = metrics::histogram!("bench_span_seconds");
    g.bench_function(
        "peer: metrics Counter::increment + Histogram::record (Prometheus recorder)",
        |b| {
            b.iter_custom(|iters| {
                chunked(
                    iters,
                    || {
                        let t = Instant::now();
                        black_box(());
                        counter.increment(1);
                        histogram.record(t.elapsed().as_secs_f64());
                    },
                    || handle.run_upkeep(),
                )
            })
        },
    );
    assert!(
        handle.render().contains("bench_spans_total"),
        "the recorder saw the counter"
    );

    // The naive way: a shared map of start times.
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

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = peers
}
criterion_main!(benches);
