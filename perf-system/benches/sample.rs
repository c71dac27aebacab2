//! The sampler's own cost: CPU time of the sampling thread for one round of figures,
//! measured with the thread CPU-time clock (`CLOCK_THREAD_CPUTIME_ID`).
//!
//! Rounds are spaced by sysinfo's `MINIMUM_CPU_UPDATE_INTERVAL` (+5 ms), outside the
//! measurement: sysinfo refreshes CPU times at most that often, so back-to-back rounds would
//! skip the `/proc/stat` read that every round at 1 Hz pays. Peers measured in the same run:
//!
//! * `heimdall/all`: [`SystemSource::read_with`], every figure (what `sample` does, minus
//!   pushing the points into perf-core's series);
//! * `heimdall/no_network`: the same without the network group;
//! * `naive/refresh_all`: one `System::new_all()`, then per round `refresh_all()` and
//!   `Networks::refresh`, reading the same figures;
//! * `naive/new_all`: per round `System::new_all()` + `refresh_all()` + `Networks::new_with_refreshed_list()`.
//!
//! After criterion, `end_to_end` runs the source in a real session and reads the sampler
//! thread's CPU time from `/proc/self/task/<tid>/schedstat`: the whole round, including
//! perf-core's bookkeeping and the thread's wake-ups, expressed as % of one core at 1 Hz.
//!
//! `cargo bench -p heimdall-perf-system --bench sample`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, Criterion, SamplingMode, Throughput};
use heimdall_perf_core::{ProfilingSession, Registry};
use heimdall_perf_system::{factory, thread_cpu_time, Figures, Reading, SystemSource};
use sysinfo::{
    MemoryRefreshKind, Networks, Pid, ProcessRefreshKind, ProcessesToUpdate, RefreshKind, System,
};

/// Thread CPU time, in nanoseconds.
struct ThreadCpu;

fn now_ns() -> u64 {
    thread_cpu_time()
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        now_ns()
    }
    fn end(&self, i: u64) -> u64 {
        now_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e-3, "µs cpu")
        } else {
            (1e-6, "ms cpu")
        };
        for v in values {
            *v *= factor;
        }
        unit
    }
    fn scale_throughputs(&self, _: f64, _: &Throughput, values: &mut [f64]) -> &'static str {
        self.scale_values(1.0, values)
    }
    fn scale_for_machines(&self, _: &mut [f64]) -> &'static str {
        "ns"
    }
}

const SPACING: Duration = Duration::from_millis(205);

fn spacing() -> Duration {
    sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(SPACING)
}

/// Runs `round` `iters` times, spaced by [`spacing`], and sums the thread CPU time of the
/// rounds alone.
fn rounds(iters: u64, mut round: impl FnMut()) -> u64 {
    let mut total = 0;
    for _ in 0..iters {
        std::thread::sleep(spacing());
        let t0 = now_ns();
        round();
        total += now_ns().saturating_sub(t0);
    }
    total
}

/// The figures a naive sampler reads from a refreshed `System`.
fn read_naive(sys: &System, networks: &Networks, pid: Pid) -> f64 {
    let mut acc = f64::from(sys.global_cpu_usage());
    for c in sys.cpus() {
        acc += f64::from(c.cpu_usage());
    }
    acc +=
        (sys.used_memory() + sys.available_memory() + sys.total_memory() + sys.used_swap()) as f64;
    let l = System::load_average();
    acc += l.one + l.five + l.fifteen;
    if let Some(p) = sys.process(pid) {
        let d = p.disk_usage();
        acc += f64::from(p.cpu_usage()) + p.memory() as f64 + p.virtual_memory() as f64;
        acc += (d.read_bytes + d.written_bytes) as f64;
        acc += p.tasks().map_or(0, |t| t.len()) as f64;
    }
    for n in networks.list().values() {
        acc += (n.received() + n.transmitted()) as f64;
    }
    acc
}

fn bench_round(c: &mut Criterion<ThreadCpu>) {
    let mut group = c.benchmark_group("sample_round");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(25));

    let mut source = SystemSource::new();
    group.bench_function("heimdall/all", |b| {
        b.iter_custom(|iters| {
            rounds(iters, || {
                source.read_with(|r| {
                    black_box(r);
                })
            })
        })
    });

    let mut source = SystemSource::with_figures(Figures::all().with_network(false));
    group.bench_function("heimdall/no_network", |b| {
        b.iter_custom(|iters| {
            rounds(iters, || {
                source.read_with(|r: Reading<'_>| {
                    black_box(r);
                })
            })
        })
    });

    let pid = Pid::from_u32(std::process::id());
    let mut sys = System::new_all();
    let mut networks = Networks::new_with_refreshed_list();
    group.bench_function("naive/refresh_all", |b| {
        b.iter_custom(|iters| {
            rounds(iters, || {
                sys.refresh_all();
                networks.refresh(true);
                black_box(read_naive(&sys, &networks, pid));
            })
        })
    });

    group.bench_function("naive/new_all", |b| {
        b.iter_custom(|iters| {
            rounds(iters, || {
                let mut sys = System::new_all();
                sys.refresh_all();
                let networks = Networks::new_with_refreshed_list();
                black_box(read_naive(&sys, &networks, pid));
            })
        })
    });
    group.finish();

    // For reference: what refreshing only this process and memory costs through sysinfo
    // (no CPU-time spacing needed).
    let mut group = c.benchmark_group("sysinfo_parts");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3));
    let mut sys = System::new();
    group.bench_function("memory", |b| {
        b.iter(|| {
            sys.refresh_specifics(
                RefreshKind::nothing()
                    .with_memory(MemoryRefreshKind::nothing().with_ram().with_swap()),
            )
        })
    });
    let kind = ProcessRefreshKind::nothing()
        .with_memory()
        .with_tasks()
        .with_disk_usage();
    group.bench_function("this_process", |b| {
        b.iter(|| sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, kind))
    });
    let mut networks = Networks::new_with_refreshed_list();
    group.bench_function("networks", |b| b.iter(|| networks.refresh(true)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench_round
}

/// CPU time (ns) from `schedstat` of the session's aggregator thread, which samples the
/// system source (it is quick), found by its name.
fn sampler_thread_cpu_ns() -> Option<u64> {
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        if comm.trim_end() == "heimdall-perf-a" {
            let stat = std::fs::read_to_string(entry.path().join("schedstat")).ok()?;
            return stat.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

/// The source in a real session that records nothing else: CPU time of the thread that
/// samples it (the aggregator's, its passes included) per round, and as % of one core at
/// 1 Hz.
fn end_to_end() {
    let interval = Duration::from_millis(250);
    let registry = std::sync::Arc::new(Registry::new());
    registry.set_system_source(factory());
    let mut session = ProfilingSession::with_registry("bench", registry);
    if session.set_sampling_interval(interval).is_err() || session.start_system_metrics().is_err() {
        eprintln!("end_to_end: cannot start the system sampler");
        return;
    }
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    let c0 = sampler_thread_cpu_ns();
    let r0 = session
        .report()
        .series("process.threads")
        .map_or(0, |s| s.points.len());
    std::thread::sleep(Duration::from_secs(10));
    let c1 = sampler_thread_cpu_ns();
    let r1 = session
        .report()
        .series("process.threads")
        .map_or(0, |s| s.points.len());
    let wall = t0.elapsed();
    session.stop();
    match (c0, c1) {
        (Some(c0), Some(c1)) if r1 > r0 => {
            let per_round = (c1 - c0) as f64 / (r1 - r0) as f64;
            println!(
                "end_to_end: {} rounds at {interval:?} in {wall:.2?}: aggregator thread {:.1} µs CPU per round \
                 = {:.4} % of one core at 1 Hz ({:.3} % at {interval:?})",
                r1 - r0,
                per_round / 1e3,
                per_round / 1e9 * 100.0,
                (c1 - c0) as f64 / wall.as_nanos() as f64 * 100.0,
            );
        }
        _ => eprintln!("end_to_end: aggregator thread or its schedstat not found"),
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only under `cargo bench` (which passes `--bench`); `cargo test --benches` runs this
    // binary without it, in criterion's test mode: skip the 10 s run there.
    let args: Vec<String> = std::env::args().collect();
    let test_mode = args.iter().any(|a| a == "--test" || a == "--list");
    if args.iter().any(|a| a == "--bench") && !test_mode {
        end_to_end();
    }
}
