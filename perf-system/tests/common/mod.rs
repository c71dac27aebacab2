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

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held by the tests of one binary that change process-wide state (threads, descriptors,
/// the process's name), so that they run one at a time.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// One round of `source`: its values by series (a series twice in a round fails the
/// test), and the series that failed.
pub fn round(
    source: &mut heimdall_perf_system::SystemSource,
) -> (std::collections::BTreeMap<String, f64>, Vec<String>) {
    use heimdall_perf_system::Reading;
    let mut values = std::collections::BTreeMap::new();
    let mut failed = Vec::new();
    source.read_with(|r| match r {
        Reading::Value { series, value, .. } => {
            assert!(
                values.insert(series.to_string(), value).is_none(),
                "{series} twice in one round"
            );
        }
        Reading::Failed { series } => failed.push(series.to_string()),
    });
    (values, failed)
}

/// This process's descriptors and what they name.
pub fn fds() -> std::collections::BTreeMap<i32, String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect()
}

/// The one descriptor opened between `before` and now that names `path` (its number may
/// have named something else then: the directory listing `before`, say).
pub fn new_fd_naming(before: &std::collections::BTreeMap<i32, String>, path: &str) -> i32 {
    let found: Vec<i32> = fds()
        .into_iter()
        .filter(|(fd, target)| target == path && before.get(fd) != Some(target))
        .map(|(fd, _)| fd)
        .collect();
    assert_eq!(found.len(), 1, "descriptors of {path}: {found:?}");
    found[0]
}

/// Whether the descriptor `fd` is open.
pub fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Makes the number `fd` name what `file` names, as if `fd` had been closed and the number
/// reused for `file` (which may already have that number, the lowest free one); `file`
/// itself is let go.
pub fn reuse(fd: i32, file: std::fs::File) {
    use std::os::fd::{AsRawFd, IntoRawFd};
    if file.as_raw_fd() == fd {
        let _ = file.into_raw_fd();
        return;
    }
    // SAFETY: both are open descriptors; `fd` now names `file`'s open file.
    assert_eq!(unsafe { libc::dup2(file.as_raw_fd(), fd) }, fd);
    drop(file);
}
