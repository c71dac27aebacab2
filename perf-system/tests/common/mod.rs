//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use heimdall_perf_core::{ProfilingSession, Registry};
use heimdall_perf_core::{SeriesPoint, TimeSeries};

/// A session whose registry holds the system sampler, sampling every `interval`.
pub fn session(name: &str, interval: Duration) -> ProfilingSession {
    let registry = Arc::new(Registry::new());
    registry.set_system_source(heimdall_perf_system::factory());
    let mut session = ProfilingSession::with_registry(name, registry);
    session
        .set_sampling_interval(interval)
        .expect("test interval is valid");
    session
}

/// The series `name` of the session's current report.
pub fn series(session: &ProfilingSession, name: &str) -> Option<TimeSeries> {
    session.report().series(name).cloned()
}

/// The points of `name`, empty when the series does not exist yet.
pub fn points(session: &ProfilingSession, name: &str) -> Vec<SeriesPoint> {
    series(session, name).map(|s| s.points).unwrap_or_default()
}

/// Waits (at most `timeout`) until `name` has at least `n` points; returns them.
pub fn wait_points(
    session: &ProfilingSession,
    name: &str,
    n: usize,
    timeout: Duration,
) -> Vec<SeriesPoint> {
    let deadline = Instant::now() + timeout;
    loop {
        let p = points(session, name);
        if p.len() >= n || Instant::now() > deadline {
            return p;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A field of `/proc/self/status` (e.g. `VmRSS`), in bytes for `kB` fields.
pub fn proc_status(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.split(':').next() == Some(field))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    Some(match words.next() {
        Some("kB") => value * 1024,
        _ => value,
    })
}

/// Names (`comm`, truncated by Linux to 15 bytes) of this process's threads.
pub fn thread_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
                names.push(comm.trim_end().to_string());
            }
        }
    }
    names
}

/// A sampler thread of its own (`heimdall-perf-sampler-…`) as Linux shows it in `comm` (15
/// bytes): the system source has none (it is quick).
pub const SAMPLER_COMM: &str = "heimdall-perf-s";
