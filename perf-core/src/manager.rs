//! [`ProfilingManager`]: starts and stops sessions, and saves each stopped session's report
//! in a fresh folder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{PerfError, Result};
use crate::session::ProfilingSession;
use crate::sink::{Registry, ReportFormat, ReportSink};
use crate::util::sanitize_file_name;

/// What [`ProfilingManager::stop_session`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSession {
    /// Name of the stopped session.
    pub name: String,
    /// The fresh folder the reports were written to.
    pub dir: PathBuf,
    /// Every report file written, one per format.
    pub files: Vec<PathBuf>,
}

/// Manages the profiling sessions of a process.
///
/// ```
/// use std::sync::Arc;
/// use heimdall_perf_core::{ProfilingManager, Registry};
/// let dir = tempfile::tempdir().unwrap();
/// let mut manager = ProfilingManager::new(dir.path(), Arc::new(Registry::new())).unwrap();
/// let session = manager.start_session("line-3").unwrap();
/// session.lock().unwrap().start_timing("frame");
/// session.lock().unwrap().stop_timing("frame").unwrap();
/// let saved = manager.stop_session().unwrap();
/// assert!(saved.dir.starts_with(dir.path()));
/// assert!(manager.active_sessions().is_empty());
/// ```
pub struct ProfilingManager {
    output_dir: PathBuf,
    registry: Arc<Registry>,
    sessions: Vec<Arc<Mutex<ProfilingSession>>>,
    formats: Option<Vec<ReportFormat>>,
}

impl std::fmt::Debug for ProfilingManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfilingManager")
            .field("output_dir", &self.output_dir)
            .field("registry", &self.registry)
            .field("active_sessions", &self.active_sessions())
            .finish()
    }
}

impl ProfilingManager {
    /// A manager writing reports under `output_dir` (created if missing) with the sinks and
    /// samplers of `registry`.
    pub fn new(output_dir: impl Into<PathBuf>, registry: Arc<Registry>) -> Result<Self> {
        let output_dir = output_dir.into();
        std::fs::create_dir_all(&output_dir).map_err(|e| PerfError::io(&output_dir, e))?;
        Ok(ProfilingManager {
            output_dir,
            registry,
            sessions: Vec::new(),
            formats: None,
        })
    }

    /// The folder reports are written under.
    pub fn output_dir(&self) -> &Path {
        &self.output_dir
    }

    /// The registry of sinks and samplers shared with every session.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Registers one more report sink (for every session of this manager).
    pub fn register_sink(&self, sink: Arc<dyn ReportSink>) -> Result<()> {
        self.registry.register_sink(sink)
    }

    /// Loads the report plugin (a shared library) at `path` and registers its format for
    /// every session of this manager. Needs the facade's `plugins` feature; a bad plugin is
    /// refused with an error naming it, and the manager goes on.
    pub fn load_plugin(&self, path: impl AsRef<Path>) -> Result<Arc<dyn ReportSink>> {
        self.registry.load_plugin(path.as_ref())
    }

    /// Chooses which formats `stop_session` writes (default: every registered format).
    pub fn set_report_formats(&mut self, formats: Vec<ReportFormat>) {
        self.formats = Some(formats);
    }

    /// Starts a session named `name`; it becomes the current session (the one `scope!`
    /// records into). Two active sessions cannot share a name.
    pub fn start_session(&mut self, name: &str) -> Result<Arc<Mutex<ProfilingSession>>> {
        if name.trim().is_empty() {
            return Err(PerfError::InvalidArgument {
                what: "session name".into(),
                detail: "it is empty".into(),
            });
        }
        if self.session(name).is_some() {
            return Err(PerfError::SessionExists(name.to_string()));
        }
        let session = Arc::new(Mutex::new(ProfilingSession::with_registry(
            name,
            Arc::clone(&self.registry),
        )));
        self.sessions.push(Arc::clone(&session));
        Ok(session)
    }

    /// The active session named `name`.
    pub fn session(&self, name: &str) -> Option<Arc<Mutex<ProfilingSession>>> {
        self.sessions
            .iter()
            .find(|s| lock(s).name() == name)
            .cloned()
    }

    /// Names of the active sessions, oldest first.
    pub fn active_sessions(&self) -> Vec<String> {
        self.sessions
            .iter()
            .map(|s| lock(s).name().to_string())
            .collect()
    }

    /// Stops the most recently started active session and saves its report.
    pub fn stop_session(&mut self) -> Result<SavedSession> {
        let session = self.sessions.pop().ok_or(PerfError::NoActiveSession)?;
        self.finish(session)
    }

    /// Stops the active session named `name` and saves its report.
    pub fn stop_session_named(&mut self, name: &str) -> Result<SavedSession> {
        let i = self
            .sessions
            .iter()
            .position(|s| lock(s).name() == name)
            .ok_or_else(|| PerfError::SessionNotFound(name.to_string()))?;
        let session = self.sessions.remove(i);
        self.finish(session)
    }

    /// Stops a session, then writes one report per format into a fresh folder
    /// `<output_dir>/<name>-<UTC time>[-n]`, so no earlier run is overwritten; files are
    /// named `<sink file stem>.<extension>` (`report.json`, `flamegraph.svg`, …). Every format
    /// is attempted; the first failure is returned after the others were written.
    fn finish(&mut self, session: Arc<Mutex<ProfilingSession>>) -> Result<SavedSession> {
        let mut s = lock(&session);
        s.stop();
        let report = s.report();
        drop(s);
        let dir = self.fresh_dir(&report.session.name, report.session.start_unix_ns)?;
        let formats = match &self.formats {
            Some(f) => f.clone(),
            None => self
                .registry
                .format_ids()
                .iter()
                .map(|id| ReportFormat::from(id.as_str()))
                .collect(),
        };
        let mut files = Vec::new();
        let mut first_error = None;
        let mut used: Vec<String> = Vec::new();
        for format in formats {
            let sink = match self.registry.sink(&format) {
                Ok(s) => s,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let stem = sanitize_file_name(sink.file_stem());
            let ext = sanitize_file_name(sink.file_extension());
            let mut file = format!("{stem}.{ext}");
            if used.contains(&file) {
                file = format!("{stem}-{}.{ext}", sanitize_file_name(format.id()));
            }
            used.push(file.clone());
            let path = dir.join(file);
            match self.registry.render_to_file(&report, &path, &format) {
                Ok(()) => files.push(path),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(SavedSession {
                name: report.session.name,
                dir,
                files,
            }),
        }
    }

    fn fresh_dir(&self, name: &str, start_unix_ns: u64) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.output_dir)
            .map_err(|e| PerfError::io(&self.output_dir, e))?;
        let stamp: String = crate::util::rfc3339(start_unix_ns)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let base = format!("{}-{stamp}", sanitize_file_name(name));
        for n in 1u32.. {
            let candidate = if n == 1 {
                self.output_dir.join(&base)
            } else {
                self.output_dir.join(format!("{base}-{n}"))
            };
            match std::fs::create_dir(&candidate) {
                Ok(()) => return Ok(candidate),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(PerfError::io(candidate, e)),
            }
        }
        unreachable!("u32 run numbers exhausted")
    }
}

impl Drop for ProfilingManager {
    fn drop(&mut self) {
        // Sessions still active stop with the manager (their threads are joined); their
        // reports are not written: stop them explicitly to save them.
        for s in self.sessions.drain(..) {
            lock(&s).stop();
        }
    }
}

fn lock(s: &Mutex<ProfilingSession>) -> std::sync::MutexGuard<'_, ProfilingSession> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stop_gets_a_fresh_folder_and_errors_name_things() {
        let dir = tempfile::tempdir().unwrap();
        let mut m =
            ProfilingManager::new(dir.path().join("reports"), Arc::new(Registry::new())).unwrap();
        assert!(matches!(m.stop_session(), Err(PerfError::NoActiveSession)));
        m.start_session("a").unwrap();
        let e = m.start_session("a").unwrap_err().to_string();
        assert!(e.contains("`a`"), "{e}");
        let first = m.stop_session().unwrap();
        m.start_session("a").unwrap();
        let second = m.stop_session().unwrap();
        assert_ne!(first.dir, second.dir);
        assert!(first.dir.is_dir() && second.dir.is_dir());
        let e = m.stop_session_named("zz").unwrap_err().to_string();
        assert!(e.contains("`zz`"), "{e}");
    }

    #[test]
    fn sessions_by_name_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProfilingManager::new(dir.path(), Arc::new(Registry::new())).unwrap();
        m.start_session("one").unwrap();
        m.start_session("two").unwrap();
        assert_eq!(m.active_sessions(), vec!["one", "two"]);
        assert!(m.session("one").is_some());
        assert_eq!(m.stop_session().unwrap().name, "two");
        assert_eq!(m.active_sessions(), vec!["one"]);
    }
}
