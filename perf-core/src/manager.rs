//! [`ProfilingManager`]: starts and stops sessions, and saves each stopped session's report
//! in a fresh folder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{PerfError, Result};
use crate::session::ProfilingSession;
use crate::sink::{Registry, ReportSink};
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
    sessions: Vec<Managed>,
    formats: Option<Vec<String>>,
    /// The sessions live endpoints see (`serve`).
    pub(crate) live: Arc<crate::live::LiveSessions>,
    /// The live endpoints this manager started, stopped when it is dropped.
    #[cfg(feature = "serve")]
    pub(crate) servers: Mutex<Vec<std::sync::Weak<crate::serve::Control>>>,
}

/// A session of the manager, with its name (kept here so that the manager never locks a
/// session the caller may be holding) and the run folder of a save that failed part-way (a
/// retry writes into it again rather than leave a half folder behind).
struct Managed {
    name: String,
    session: Arc<Mutex<ProfilingSession>>,
    dir: Option<PathBuf>,
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
        create_output_dir(&output_dir)?;
        Ok(ProfilingManager {
            output_dir,
            registry,
            sessions: Vec::new(),
            formats: None,
            live: Arc::default(),
            #[cfg(feature = "serve")]
            servers: Mutex::default(),
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

    /// Chooses which formats `stop_session` writes, by format id or anything that gives one
    /// (the facade's `ReportFormat`); by default every registered format.
    pub fn set_report_formats<F: AsRef<str>>(&mut self, formats: impl IntoIterator<Item = F>) {
        self.formats = Some(
            formats
                .into_iter()
                .map(|f| f.as_ref().to_string())
                .collect(),
        );
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
        if self.position(name).is_some() {
            return Err(PerfError::SessionExists(name.to_string()));
        }
        let session = ProfilingSession::with_registry(name, Arc::clone(&self.registry));
        self.live.add(session.shared());
        let session = Arc::new(Mutex::new(session));
        self.sessions.push(Managed {
            name: name.to_string(),
            session: Arc::clone(&session),
            dir: None,
        });
        Ok(session)
    }

    /// The session named `name` (active, or stopped and waiting for a retried save).
    pub fn session(&self, name: &str) -> Option<Arc<Mutex<ProfilingSession>>> {
        self.position(name)
            .map(|i| Arc::clone(&self.sessions[i].session))
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.sessions.iter().position(|m| m.name == name)
    }

    /// Names of the sessions this manager holds, oldest first: the active ones, and any whose
    /// save failed (see [`stop_session`](Self::stop_session)).
    pub fn active_sessions(&self) -> Vec<String> {
        self.sessions.iter().map(|m| m.name.clone()).collect()
    }

    /// Stops the most recently started session and saves its reports.
    ///
    /// Lock order: the manager locks the session it stops, so do not hold that session's
    /// lock while calling this (every other method of the manager leaves sessions alone).
    ///
    /// If a report cannot be written, the error says which ones failed and why
    /// ([`PerfError::PartialSave`], or [`PerfError::Io`] for the folder itself), and the
    /// session stays in the manager, stopped and whole: fix the cause and call `stop_session`
    /// again to retry, into the same folder.
    pub fn stop_session(&mut self) -> Result<SavedSession> {
        let i = self
            .sessions
            .len()
            .checked_sub(1)
            .ok_or(PerfError::NoActiveSession)?;
        self.finish(i)
    }

    /// Stops the session named `name` and saves its reports (on failure, as
    /// [`stop_session`](Self::stop_session): the session is kept for a retry).
    pub fn stop_session_named(&mut self, name: &str) -> Result<SavedSession> {
        let i = self
            .position(name)
            .ok_or_else(|| PerfError::SessionNotFound(name.to_string()))?;
        self.finish(i)
    }

    /// Stops session `i`, then writes one report per format into a fresh folder
    /// `<output_dir>/<name>-<UTC time>[-n]`, so no earlier run is overwritten; files are
    /// named `<sink file stem>.<extension>` (`report.json`, `flamegraph.svg`, …). Every format
    /// is attempted and every failure reported; the session leaves the manager only once all
    /// its reports are written.
    fn finish(&mut self, i: usize) -> Result<SavedSession> {
        let session = Arc::clone(&self.sessions[i].session);
        let mut s = lock(&session);
        s.stop();
        let report = s.report();
        drop(s);
        let dir = match self.sessions[i].dir.clone().filter(|d| d.is_dir()) {
            Some(dir) => dir,
            None => self.fresh_dir(&report.session.name, report.session.start_unix_ns)?,
        };
        let formats = match &self.formats {
            Some(f) => f.clone(),
            None => self.registry.format_ids(),
        };
        let mut files = Vec::new();
        let mut failures = Vec::new();
        let mut used: Vec<String> = Vec::new();
        for format in formats {
            let sink = match self.registry.sink(&format) {
                Ok(s) => s,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            let stem = sanitize_file_name(sink.file_stem());
            let ext = sanitize_file_name(sink.file_extension());
            let mut file = format!("{stem}.{ext}");
            if used.contains(&file) {
                file = format!("{stem}-{}.{ext}", sanitize_file_name(&format));
            }
            used.push(file.clone());
            let path = dir.join(file);
            match self.registry.render_to_file(&report, &path, &format) {
                Ok(()) => files.push(path),
                Err(e) => failures.push(e),
            }
        }
        if !failures.is_empty() {
            self.sessions[i].dir = Some(dir.clone());
            return Err(PerfError::PartialSave {
                session: report.session.name,
                dir,
                written: files,
                failures,
            });
        }
        self.sessions.remove(i);
        Ok(SavedSession {
            name: report.session.name,
            dir,
            files,
        })
    }

    fn fresh_dir(&self, name: &str, start_unix_ns: u64) -> Result<PathBuf> {
        create_output_dir(&self.output_dir)?;
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
        // Live endpoints stop first (and their ports are free when this returns).
        #[cfg(feature = "serve")]
        crate::serve::stop_all(&self.servers);
        // Sessions still active stop with the manager (their threads are joined); their
        // reports are not written: stop them explicitly to save them. A session whose lock
        // is held right now (by this thread, maybe) is not waited for: it stops when its
        // last handle is dropped.
        for m in self.sessions.drain(..) {
            match m.session.try_lock() {
                Ok(mut s) => s.stop(),
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().stop(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
    }
}

/// Creates the reports folder `dir` if needed; a file in its place is named as such (the
/// system's own word for it, "File exists", misleads).
fn create_output_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        let e = match std::fs::metadata(dir) {
            Ok(m) if !m.is_dir() => std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "it exists and is not a folder",
            ),
            _ => e,
        };
        PerfError::io(dir, e)
    })
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

    /// A sink that fails while `failing` is set.
    struct Flaky {
        id: &'static str,
        failing: Arc<std::sync::atomic::AtomicBool>,
    }

    impl ReportSink for Flaky {
        fn format_id(&self) -> &str {
            self.id
        }
        fn file_extension(&self) -> &str {
            "txt"
        }
        fn file_stem(&self) -> &str {
            self.id
        }
        fn render(
            &self,
            report: &crate::Report,
            out: &mut dyn std::io::Write,
        ) -> std::result::Result<(), crate::sink::RenderError> {
            if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(std::io::Error::other(format!("{} disk full", self.id)).into());
            }
            Ok(write!(out, "{}", report.span_count())?)
        }
    }

    #[test]
    fn a_failed_save_keeps_the_session_and_reports_every_failure() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let failing = Arc::new(AtomicBool::new(true));
        // `ok` always works; one switch makes `bad1` and `bad2` fail.
        let registry = Arc::new(Registry::new());
        for (id, failing) in [
            ("ok", Arc::new(AtomicBool::new(false))),
            ("bad1", Arc::clone(&failing)),
            ("bad2", Arc::clone(&failing)),
        ] {
            registry
                .register_sink(Arc::new(Flaky { id, failing }))
                .unwrap();
        }
        let mut m = ProfilingManager::new(dir.path(), registry).unwrap();
        let s = m.start_session("line").unwrap();
        s.lock().unwrap().start_timing("frame");
        s.lock().unwrap().stop_timing("frame").unwrap();

        let e = m.stop_session().unwrap_err();
        let PerfError::PartialSave {
            dir: ref run_dir,
            ref written,
            ref failures,
            ..
        } = e
        else {
            panic!("{e}");
        };
        assert_eq!(written.len(), 1);
        assert_eq!(failures.len(), 2);
        let text = e.to_string();
        assert!(
            text.starts_with("session `line`: 2 of 3 reports could not be written in"),
            "{text}"
        );
        assert!(
            text.contains("bad1 disk full") && text.contains("bad2 disk full"),
            "{text}"
        );
        let first_dir = run_dir.clone();
        // The session is still there, stopped, with its data: fix the cause and retry.
        assert_eq!(m.active_sessions(), vec!["line"]);
        failing.store(false, Ordering::Relaxed);
        let saved = m.stop_session().unwrap();
        assert_eq!(
            saved.dir, first_dir,
            "the retry writes into the same folder"
        );
        assert_eq!(saved.files.len(), 3);
        for f in &saved.files {
            assert_eq!(std::fs::read_to_string(f).unwrap(), "1", "{}", f.display());
        }
        assert!(m.active_sessions().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_unwritable_output_folder_keeps_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("reports");
        let mut m = ProfilingManager::new(&out, Arc::new(Registry::new())).unwrap();
        m.start_session("kept").unwrap();
        // A file where the folder should be: creating the run folder fails, even as root.
        std::fs::remove_dir(&out).unwrap();
        std::fs::write(&out, "not a folder").unwrap();
        let e = m.stop_session().unwrap_err().to_string();
        assert!(
            e.ends_with("reports`: it exists and is not a folder"),
            "{e}"
        );
        let e = ProfilingManager::new(&out, Arc::new(Registry::new())).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("reports`: it exists and is not a folder"),
            "{e}"
        );
        assert_eq!(m.active_sessions(), vec!["kept"]);
        std::fs::remove_file(&out).unwrap();
        let saved = m.stop_session().unwrap();
        assert!(saved.dir.starts_with(&out) && saved.dir.is_dir());
    }

    #[test]
    fn the_manager_never_waits_for_a_session_lock_it_does_not_need() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProfilingManager::new(dir.path(), Arc::new(Registry::new())).unwrap();
        let held = m.start_session("held").unwrap();
        let _guard = held.lock().unwrap();
        // Each of these used to lock every session, so it hung while `_guard` was held.
        assert!(m.session("held").is_some());
        assert_eq!(m.active_sessions(), vec!["held"]);
        let other = m.start_session("other").unwrap();
        drop(other);
        assert_eq!(m.stop_session_named("other").unwrap().name, "other");
        assert!(format!("{m:?}").contains("held"));
        let e = m.start_session("held").unwrap_err().to_string();
        assert!(e.contains("already in the manager"), "{e}");
    }

    #[test]
    fn dropping_the_manager_while_a_session_is_locked_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let m = ProfilingManager::new(dir.path(), Arc::new(Registry::new())).unwrap();
        let mut m = m;
        let s = m.start_session("held").unwrap();
        let held = s.lock().unwrap();
        drop(m);
        assert!(held.is_active(), "not waited for, not stopped");
        drop(held);
        // Its last handle stops it.
        let s = Arc::try_unwrap(s).ok().unwrap().into_inner().unwrap();
        assert!(s.is_active());
        drop(s);
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
