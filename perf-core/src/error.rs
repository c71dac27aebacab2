//! The error type of perf-core.

use std::path::PathBuf;

/// Everything that can go wrong in perf-core. Every message names the session, timing,
/// format, path or value at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PerfError {
    /// `stop_timing` for a name that has no open timing on the calling thread.
    #[error("session `{session}`: timing `{timing}` was not started on thread `{thread}`")]
    TimingNotStarted {
        /// Session name.
        session: String,
        /// Timing name.
        timing: String,
        /// Name of the calling thread.
        thread: String,
    },
    /// `stop_timing` for a timing that is open but not the innermost one.
    #[error(
        "session `{session}`: cannot stop timing `{timing}` while `{open}` (started inside it) is still running; stop `{open}` first"
    )]
    TimingOutOfOrder {
        /// Session name.
        session: String,
        /// The timing asked to stop.
        timing: String,
        /// The innermost timing or scope still open.
        open: String,
    },
    /// A report format that is neither compiled in nor loaded from a plugin.
    #[error("report format `{format}` is not available: {hint}")]
    UnknownFormat {
        /// The format id that was asked for.
        format: String,
        /// What to do about it (the Cargo feature or plugin to add).
        hint: String,
    },
    /// Two sinks claim the same format id.
    #[error("report format `{format}` is registered twice: by {first} and by {second}")]
    DuplicateFormat {
        /// The format id.
        format: String,
        /// Origin of the sink registered first.
        first: String,
        /// Origin of the sink that was refused.
        second: String,
    },
    /// `start_system_metrics` with no system sampler registered.
    #[error("session `{session}`: no system sampler is registered; {hint}")]
    NoSystemSampler {
        /// Session name.
        session: String,
        /// What to do about it (from the registry's hints: the facade names its Cargo
        /// feature).
        hint: String,
    },
    /// A periodic source with this name is already running in the session.
    #[error("session `{session}`: the periodic source `{source_name}` is already running")]
    SourceAlreadyRunning {
        /// Session name.
        session: String,
        /// Name of the source.
        source_name: String,
    },
    /// The manager already holds a session with this name (active, or stopped with a save
    /// that failed and waits for a retry).
    #[error(
        "a session named `{0}` is already in the manager (active, or stopped and waiting for `stop_session` to be retried)"
    )]
    SessionExists(String),
    /// No session is active.
    #[error("no profiling session is active")]
    NoActiveSession,
    /// No active session has this name.
    #[error("no active session is named `{0}`")]
    SessionNotFound(String),
    /// An argument is out of its accepted range.
    #[error("invalid {what}: {detail}")]
    InvalidArgument {
        /// What the argument is (e.g. `sampling interval`).
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A timer was stopped or lapped while not running.
    #[error("timer `{0}` is not running")]
    TimerNotRunning(String),
    /// A file or directory could not be written or created.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The path at fault.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A sink failed to render a report.
    #[error("the `{format}` sink failed to render session `{session}`{}: {source}", while_writing(.path))]
    Render {
        /// Format id of the sink.
        format: String,
        /// Session name.
        session: String,
        /// The file being written, if any.
        path: Option<PathBuf>,
        /// What the sink reported.
        #[source]
        source: crate::sink::RenderError,
    },
    /// A report plugin could not be loaded or refused to work.
    #[error("plugin `{path}`: {message}")]
    Plugin {
        /// The plugin's path.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
        /// The loader's own error, when there is one (with the dynamic loader's or the ELF
        /// reader's error as its cause).
        #[source]
        source: Option<crate::sink::RenderError>,
    },
    /// Something this call needs is not registered (not compiled in, or not set up).
    #[error("{what} is not available: {hint}")]
    Unavailable {
        /// What was asked for.
        what: String,
        /// What to do about it (the facade names the Cargo feature to enable).
        hint: String,
    },
    /// A call that needs a running session was made after the session was stopped.
    #[error("session `{session}` is stopped: {what} is refused (start a new session)")]
    SessionStopped {
        /// Session name.
        session: String,
        /// The refused call.
        what: String,
    },
    /// Stopping a session wrote some of its reports and failed on others. The session stays
    /// in the manager, stopped and whole: fix the cause and stop it again to retry (into
    /// the same folder).
    #[error(
        "session `{session}`: {} of {} reports could not be written in `{}`: {}",
        .failures.len(),
        .failures.len() + .written.len(),
        .dir.display(),
        list_errors(.failures)
    )]
    PartialSave {
        /// Session name.
        session: String,
        /// The run folder.
        dir: PathBuf,
        /// The report files that were written.
        written: Vec<PathBuf>,
        /// Every failure, one per report that was not written.
        failures: Vec<PerfError>,
    },
    /// A mutex was poisoned by a panic in another thread.
    #[error("{0} is unusable: a thread panicked while holding its lock")]
    Poisoned(String),
    /// The live endpoint could not listen on an address (in use, not local, not an
    /// address).
    #[error("cannot serve the live endpoint on `{addr}`: {source}{}", addr_hint(.source))]
    Serve {
        /// The address asked for, as given.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another session of this process already exports its textfile to the same file
    /// (their names sanitise alike, e.g. `line/3` and `line:3`).
    #[error(
        "session `{session}`: cannot export its textfile `{}`: session `{other}` already writes that file (their names give the same file name); give one of them another name or another folder",
        path.display()
    )]
    TextfileInUse {
        /// The session whose exporter was refused.
        session: String,
        /// The session whose exporter writes the file.
        other: String,
        /// The file (its folder canonicalised).
        path: PathBuf,
    },
    /// A background thread could not be started.
    #[error("cannot start thread `{name}`: {source}")]
    Thread {
        /// Name of the thread.
        name: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Result type of perf-core.
pub type Result<T, E = PerfError> = std::result::Result<T, E>;

impl PerfError {
    /// Builds an [`PerfError::Io`] naming `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PerfError::Io {
            path: path.into(),
            source,
        }
    }
}

/// What to do about an address the live endpoint cannot listen on.
fn addr_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another program, or another endpoint of this one, listens there: stop it or choose another port; port 0 takes a free one)"
        }
        std::io::ErrorKind::AddrNotAvailable => " (the address is not one of this machine's)",
        _ => "",
    }
}

fn list_errors(errors: &[PerfError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// ` (while writing `path`)`, or nothing.
fn while_writing(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" (while writing `{}`)", p.display()),
        None => String::new(),
    }
}
