//! # heimdall-perf-system
//!
//! System and process metrics for heimdall-perf, the performance-analysis module of Heimdall
//! Vision: "what are the system and this process's figures now", read from `/proc` on Linux
//! and with `sysinfo` elsewhere. The source is quick
//! ([`PeriodicSource::is_quick`](heimdall_perf_core::PeriodicSource::is_quick)): the
//! session's aggregator thread samples it between its passes, and perf-core owns that
//! thread (interval, stop, bounded series, failure counting); this crate offers the [`PeriodicSource`](heimdall_perf_core::PeriodicSource) named `system` and
//! the [`factory`] the facade registers with `Registry::set_system_source`.
//!
//! ```
//! use heimdall_perf_core::series_names;
//! use heimdall_perf_core::{ProfilingSession, Registry};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let registry = Arc::new(Registry::new());
//! registry.set_system_source(heimdall_perf_system::factory());
//! let mut session = ProfilingSession::with_registry("line-3", registry);
//! session.set_sampling_interval(Duration::from_millis(50))?;
//! session.start_system_metrics()?;
//! std::thread::sleep(Duration::from_millis(300));
//! session.stop();
//!
//! let report = session.report();
//! let rss = report.series(series_names::PROCESS_MEMORY_RESIDENT).unwrap();
//! assert_eq!(rss.unit, "bytes");
//! assert!(rss.points.len() >= 2);
//! assert!(rss.points.iter().all(|p| p.last > 1e6)); // a running test binary holds > 1 MB
//! # Ok::<(), heimdall_perf_core::PerfError>(())
//! ```
//!
//! ## Series
//!
//! Names are those of [`heimdall_perf_core::series_names`]; all series have the
//! source `system`.
//!
//! | series | unit | what |
//! |---|---|---|
//! | `system.cpu.total` | `%` | whole machine, 0–100 |
//! | `system.cpu.core.<n>` | `%` | core `n`, 0–100 |
//! | `system.memory.used` | `bytes` | total − available |
//! | `system.memory.available` | `bytes` | `MemAvailable` on Linux |
//! | `system.memory.total` | `bytes` | physical memory (the host's, even in a container) |
//! | `system.swap.used` | `bytes` | |
//! | `system.load.1` / `.5` / `.15` | `tasks` | load averages |
//! | `process.cpu` | `%` | of one core; above 100 with several busy threads |
//! | `process.memory.resident` | `bytes` | resident set (`VmRSS`) |
//! | `process.memory.virtual` | `bytes` | virtual size (`VmSize`) |
//! | `process.threads` | `threads` | |
//! | `process.disk.read` / `.write` | `bytes/s` | bytes fetched from / sent to storage (`read_bytes` / `write_bytes` of `/proc/self/io`, read through `getrusage`; page-cache hits are not counted) |
//! | `network.<iface>.rx` / `.tx` | `bytes/s` | per interface, received / sent |
//!
//! Rates (`bytes/s`, `process.cpu`) are differences between two readings divided by the
//! wall time between them; the sampler's first round is their baseline and has none, so
//! that every rate covers one whole sampling interval (not the sampler's own start-up). A
//! newly seen network interface gets its first point one round later. System CPU usage is refreshed at most every
//! [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] (200 ms on Linux), so at shorter sampling
//! intervals `system.cpu.*` has fewer points than the other series.
//!
//! A figure the platform does not give (no load average on Windows, no thread list outside
//! Linux, no `/proc/self/io` on a kernel without task I/O accounting…) is counted with
//! [`Samples::failed`](heimdall_perf_core::Samples::failed) — it shows in the report's
//! `sampler_failures` — and skipped, every round: never a panic, never a made-up zero.
//!
//! ## Cost
//!
//! One round reads only what it reports, never the process list. On Linux: `/proc/stat`,
//! `/proc/meminfo`, `/proc/self/statm` and `/proc/net/dev`, each opened once and kept
//! open (re-read from offset 0 each round); the thread count from the link count of the
//! kept `/proc/self/task` (one `fstat`); `getrusage` for the storage bytes and
//! `getloadavg` for the load; elsewhere sysinfo (and `/sys/class/net` for the network).
//! See `BENCH.md` for the measured CPU time of one round against a naive
//! `System::refresh_all()`; use [`Figures`] with [`factory_with`] to leave out a group
//! (network, say, on a host with many virtual interfaces).
//!
//! ## Memory over long runs
//!
//! Series live in perf-core's bounded series (at most 2048 points each, older points merged
//! into wider buckets, never dropped), so a line that runs for days keeps at most about
//! `series × 2048 × 48 bytes`: with 2 cores and 3 network interfaces, 25 series, about
//! 2.4 MiB, whatever the duration.

#![warn(missing_docs)]

mod error;
mod platform;
mod procfs;
mod source;

pub use error::SystemError;
pub use platform::{process_cpu_time, thread_cpu_time};
pub use source::{
    factory, factory_with, Figures, Reading, SystemSource, SOURCE_NAME, UNIT_BYTES,
    UNIT_BYTES_PER_SECOND, UNIT_PERCENT, UNIT_TASKS, UNIT_THREADS,
};
