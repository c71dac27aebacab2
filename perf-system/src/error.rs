//! The error type of perf-system.

/// What can go wrong in perf-system. Sampling itself never fails as a whole: a figure that
/// cannot be read is counted with `Samples::failed` and skipped; this type is for the direct
/// readings this crate offers ([`thread_cpu_time`](crate::thread_cpu_time),
/// [`process_cpu_time`](crate::process_cpu_time)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SystemError {
    /// A CPU-time clock could not be read.
    #[error("cannot read the clock `{clock}`: {source}")]
    Clock {
        /// Name of the clock (e.g. `CLOCK_THREAD_CPUTIME_ID`).
        clock: &'static str,
        /// What the operating system answered.
        #[source]
        source: std::io::Error,
    },
    /// The platform does not provide this reading.
    #[error("{what} is not available on `{platform}`")]
    Unsupported {
        /// The reading asked for.
        what: &'static str,
        /// The operating system (`std::env::consts::OS`).
        platform: &'static str,
    },
}
