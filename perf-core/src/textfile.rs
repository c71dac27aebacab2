//! The textfile exporter ([`ProfilingSession::export_textfile`]): a thread that writes the
//! session's live exposition into a node_exporter textfile-collector folder at an interval,
//! atomically, and once more when the session stops.
//!
//! [`ProfilingSession::export_textfile`]: crate::ProfilingSession::export_textfile

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{PerfError, Result};
use crate::live::ScrapeRequest;
use crate::session::Shared;
use crate::sink::{replace_entry, AtomicWriteError, Registry};
use crate::util::sanitize_file_name;

/// What the exporter asks the exposition for: node_exporter's textfile collector reads the
/// classic Prometheus text format (no timestamps; the OpenMetrics exposition writes none).
const TEXTFILE_ACCEPT: &str = "text/plain; version=0.0.4";

/// The extension the textfile collector reads.
const TEXTFILE_EXTENSION: &str = "prom";

/// A running exporter: dropping the sender stops it after one last write.
pub(crate) type Exporter = (mpsc::Sender<()>, JoinHandle<()>);

/// The textfiles the running exporters of this process write (the folder canonicalised,
/// joined with the file name), each with the session writing it: two sessions whose names
/// sanitise alike (`line/3`, `line:3`) would otherwise replace each other's file.
fn files_in_use() -> &'static Mutex<HashMap<PathBuf, String>> {
    static IN_USE: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    IN_USE.get_or_init(Default::default)
}

/// A textfile claimed by one exporter, released when dropped (when the exporter's thread
/// ends, after its last write, or when it could not be started).
struct Claim(PathBuf);

impl Claim {
    /// Claims `file` for `session`, or says which session already writes it.
    fn take(file: PathBuf, session: &str) -> Result<Claim> {
        let mut in_use = files_in_use()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(other) = in_use.get(&file) {
            return Err(PerfError::TextfileInUse {
                session: session.to_string(),
                other: other.clone(),
                path: file,
            });
        }
        in_use.insert(file.clone(), session.to_string());
        Ok(Claim(file))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        files_in_use()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.0);
    }
}

/// The file the exporter of `session` writes in `dir`: `<session>.prom`, the name
/// sanitised.
pub(crate) fn file_in(dir: &Path, session: &str) -> PathBuf {
    dir.join(format!(
        "{}.{TEXTFILE_EXTENSION}",
        sanitize_file_name(session)
    ))
}

/// Checks `dir`, writes the file once (so that a folder that cannot be written is an
/// error now), then starts the thread.
pub(crate) fn start(
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    dir: &Path,
    interval: Duration,
) -> Result<Exporter> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(PerfError::io(
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "it is not a folder (give the textfile collector's folder)",
                ),
            ))
        }
        Err(e) => return Err(PerfError::io(dir, e)),
    }
    let path = file_in(dir, shared.name());
    // The folder as the file system names it (`out/../out`, a link to it): one key per file.
    let key = std::fs::canonicalize(dir)
        .map_err(|e| PerfError::io(dir, e))?
        .join(path.file_name().unwrap_or_default());
    let claim = Claim::take(key, shared.name())?;
    write(&shared, &registry, &path)?;
    let (tx, rx) = mpsc::channel::<()>();
    let name = format!(
        "heimdall-perf-textfile-{}",
        sanitize_file_name(shared.name())
    );
    let thread = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let _claim = claim;
            loop {
                let stop = !matches!(rx.recv_timeout(interval), Err(RecvTimeoutError::Timeout));
                if write(&shared, &registry, &path).is_err() {
                    shared.count_failure(&format!(
                        "textfile/{}",
                        path.file_name().unwrap_or_default().to_string_lossy()
                    ));
                }
                if stop {
                    break;
                }
            }
        })
        .map_err(|source| PerfError::Thread { name, source })?;
    Ok((tx, thread))
}

/// Writes the exposition of the session's snapshot to `path`, atomically (a temporary file
/// beside it, whose name does not end with `.prom`, then a rename). The rename replaces
/// whatever entry is at `path`: a symbolic link planted there by another user of the folder
/// is replaced, never followed (its target is not written).
fn write(shared: &Shared, registry: &Registry, path: &Path) -> Result<()> {
    let exposition = registry.exposition()?;
    let report = shared.snapshot(0);
    let scraped = exposition(
        std::slice::from_ref(&report),
        &ScrapeRequest::accepting(TEXTFILE_ACCEPT),
    )
    .map_err(|source| PerfError::Render {
        format: "textfile".into(),
        session: report.session.name.clone(),
        path: Some(path.to_path_buf()),
        source,
    })?;
    replace_entry(path, |out| Ok(out.write_all(scraped.body.as_bytes())?)).map_err(|e| match e {
        AtomicWriteError::Io(e) => e,
        AtomicWriteError::Render(source) => PerfError::Render {
            format: "textfile".into(),
            session: report.session.name.clone(),
            path: Some(path.to_path_buf()),
            source,
        },
    })
}
