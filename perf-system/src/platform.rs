//! The few readings taken from the operating system directly, where sysinfo has no precise
//! or failure-aware equivalent: CPU-time clocks (nanosecond resolution, one system call,
//! instead of 10 ms scheduler ticks), the load average (sysinfo reports a failed read as
//! `0.0`, which is indistinguishable from an idle machine), and the forks that tell a
//! forked child from its parent where both have the same pid number.

use std::time::Duration;

use crate::SystemError;

/// Whether this platform has the CPU-time clocks used by [`process_cpu_time`] and
/// [`thread_cpu_time`].
pub(crate) const HAS_CPU_CLOCKS: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
));

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd"
))]
fn read_clock(id: libc::clockid_t, clock: &'static str) -> Result<Duration, SystemError> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return Err(SystemError::Clock {
            clock,
            source: std::io::Error::last_os_error(),
        });
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// CPU time (user + system) consumed so far by the calling thread.
///
/// This is how the sampler's own cost is measured: read it before and after a
/// [`sample`](heimdall_perf_core::PeriodicSource::sample) call.
///
/// ```
/// let before = heimdall_perf_system::thread_cpu_time()?;
/// let mut x = 0u64;
/// for i in 0..1_000_000u64 { x = std::hint::black_box(x.wrapping_add(i)); }
/// assert!(heimdall_perf_system::thread_cpu_time()? >= before);
/// # Ok::<(), heimdall_perf_system::SystemError>(())
/// ```
pub fn thread_cpu_time() -> Result<Duration, SystemError> {
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "freebsd"
    ))]
    {
        read_clock(libc::CLOCK_THREAD_CPUTIME_ID, "CLOCK_THREAD_CPUTIME_ID")
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "freebsd"
    )))]
    {
        Err(SystemError::Unsupported {
            what: "thread CPU time",
            platform: std::env::consts::OS,
        })
    }
}

/// CPU time (user + system) consumed so far by all threads of this process.
pub fn process_cpu_time() -> Result<Duration, SystemError> {
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "freebsd"
    ))]
    {
        read_clock(libc::CLOCK_PROCESS_CPUTIME_ID, "CLOCK_PROCESS_CPUTIME_ID")
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "freebsd"
    )))]
    {
        Err(SystemError::Unsupported {
            what: "process CPU time",
            platform: std::env::consts::OS,
        })
    }
}

/// The 1, 5 and 15 minute load averages, or `None` where the platform does not give them.
pub(crate) fn load_average() -> Option<[f64; 3]> {
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
    {
        let mut loads = [0f64; 3];
        // SAFETY: `loads` has room for the 3 values asked for.
        let n = unsafe { libc::getloadavg(loads.as_mut_ptr(), 3) };
        (n == 3).then_some(loads)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "freebsd")))]
    {
        None
    }
}

/// How many forks lie between the process that first asked and this one: 0 there, one
/// more in each child forked since (a `pthread_atfork` child handler, installed the first
/// time this is asked, adds it in the child). With the pid, it tells a forked child from
/// its parent even where both have the same pid number (pid 1 of a new pid namespace,
/// forked by pid 1 of its own). Always 0 outside Unix.
pub(crate) fn fork_generation() -> u64 {
    #[cfg(unix)]
    {
        use std::sync::atomic::{AtomicU64, Ordering};
        static FORKS: AtomicU64 = AtomicU64::new(0);
        static INSTALL: std::sync::Once = std::sync::Once::new();
        extern "C" fn forked() {
            FORKS.fetch_add(1, Ordering::Relaxed);
        }
        INSTALL.call_once(|| {
            // SAFETY: registers a handler that only bumps an atomic (async-signal-safe).
            unsafe { libc::pthread_atfork(None, None, Some(forked)) };
        });
        FORKS.load(Ordering::Relaxed)
    }
    #[cfg(not(unix))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn thread_cpu_time_counts_only_this_threads_work() {
        let start = std::time::Instant::now();
        let t0 = thread_cpu_time().unwrap();
        let p0 = process_cpu_time().unwrap();
        let mut x = 0u64;
        // Spinning counts: until this thread has had 10 ms of CPU (a loaded machine gives it
        // only a share of the wall time), and no more than the wall time it took.
        while thread_cpu_time().unwrap() - t0 < Duration::from_millis(10) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "60 s of spinning and no 10 ms of CPU counted"
            );
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        let spun = thread_cpu_time().unwrap() - t0;
        let wall = start.elapsed();
        assert!(spun <= wall, "{spun:?} of CPU in {wall:?}");
        // Idle sleeping costs no CPU time of this thread.
        let t1 = thread_cpu_time().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time().unwrap() - t1;
        assert!(spun >= Duration::from_millis(10), "{spun:?}");
        assert!(slept < Duration::from_millis(5), "{slept:?}");
        assert!(process_cpu_time().unwrap() - p0 >= spun);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn load_average_matches_proc_loadavg() {
        let loads = load_average().unwrap();
        let text = std::fs::read_to_string("/proc/loadavg").unwrap();
        let proc: Vec<f64> = text
            .split_whitespace()
            .take(3)
            .map(|v| v.parse().unwrap())
            .collect();
        for (a, b) in loads.iter().zip(&proc) {
            assert!((a - b).abs() < 0.5, "{loads:?} vs {proc:?}");
        }
    }
}
