//! What the benchmarks share: the thread CPU clock and timing a call in chunks.

#![allow(dead_code)] // each benchmark uses its part

use std::sync::OnceLock;
use std::time::Instant;

/// CPU time of the calling thread, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`): time the
/// thread was descheduled on the loaded machine is not counted.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Minor page faults of the calling thread so far (`getrusage(RUSAGE_THREAD)`): memory the
/// thread touched for the first time since the kernel mapped it, or again after it was given
/// back.
pub fn thread_minor_faults() -> u64 {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`; `RUSAGE_THREAD` is a constant Linux knows.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_THREAD) failed");
    usage.ru_minflt as u64
}

/// Wall-clock nanoseconds since the first call.
pub fn wall_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Times `iters` calls of `f` on `clock` (nanoseconds), in chunks of `chunk` calls, running
/// `between` (untimed) after each chunk, so that profilers that buffer per frame can flush
/// as they would in a real loop, and a session can be drained outside the time.
pub fn chunked_on(
    clock: impl Fn() -> u64,
    chunk: u64,
    iters: u64,
    mut f: impl FnMut(),
    mut between: impl FnMut(),
) -> u64 {
    let mut total = 0;
    let mut left = iters;
    while left > 0 {
        let n = left.min(chunk);
        let t = clock();
        for _ in 0..n {
            f();
        }
        total += clock() - t;
        between();
        left -= n;
    }
    total
}
