//! [`write_atomic`]: how every report file is written, so that a failed write leaves the
//! previous file whole.

use std::fmt;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::RenderError;
use crate::error::PerfError;

/// Why [`write_atomic`] failed.
#[derive(Debug)]
pub enum AtomicWriteError {
    /// Creating, writing or renaming the file failed ([`PerfError::Io`] names the path).
    Io(PerfError),
    /// The content callback failed; nothing was written.
    Render(RenderError),
}

impl fmt::Display for AtomicWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AtomicWriteError::Io(e) => e.fmt(f),
            AtomicWriteError::Render(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AtomicWriteError {
    // Transparent: the message is the inner error's, and so is the cause.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AtomicWriteError::Io(e) => e.source(),
            AtomicWriteError::Render(e) => e.source(),
        }
    }
}

/// Writes a report to `path`, atomically where that makes sense.
///
/// * **A regular file, or nothing yet:** the content goes to a temporary file in the same
///   folder, is flushed to disk, then renamed over `path`. If anything fails — the folder is
///   missing, the disk is full, permission is denied, or `content` returns an error — `path`
///   is left as it was (whole, or absent) and no temporary file remains. The mode of a
///   replaced file is kept.
/// * **A symbolic link** (to a regular file, or dangling): the link is kept and its target is
///   written atomically as above, the temporary file next to the target. So
///   `latest.html -> runs/x/report.html` keeps pointing to the run, whose report is replaced;
///   a dangling link gets its target created.
/// * **Anything else that is not a directory** — a character device such as `/dev/null` or a
///   terminal, a FIFO, a socket, a link to one (`/dev/stdout`): the content is rendered in
///   memory first, then written straight through to it, with no temporary file and no
///   rename, so the device stays a device. Write errors are errors naming `path` (ENOSPC on
///   `/dev/full`); a failed `content` writes nothing. Opening a FIFO waits for a reader, as
///   any writer to a FIFO does.
/// * **A directory** is refused with an error naming it.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("r.txt");
/// heimdall_perf_core::write_atomic(&path, |w| { w.write_all(b"one")?; Ok(()) }).unwrap();
/// let failed = heimdall_perf_core::write_atomic(&path, |w| {
///     w.write_all(b"half")?;
///     Err("render failed".into())
/// });
/// assert!(failed.is_err());
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
/// ```
pub fn write_atomic(
    path: &Path,
    content: impl FnOnce(&mut dyn Write) -> std::result::Result<(), RenderError>,
) -> std::result::Result<(), AtomicWriteError> {
    let io = |e: std::io::Error| AtomicWriteError::Io(PerfError::io(path, e));
    match write_target(path).map_err(io)? {
        Target::Replace(file) => replace_file(path, &file, content),
        Target::Through => {
            let mut buf = Vec::new();
            content(&mut buf).map_err(AtomicWriteError::Render)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io)?;
            f.write_all(&buf).map_err(io)?;
            f.flush().map_err(io)
        }
    }
}

/// Where [`write_atomic`] writes.
enum Target {
    /// A regular file (existing or not) to replace by a rename: `path` itself, or the file a
    /// symbolic link at `path` leads to.
    Replace(std::path::PathBuf),
    /// Something that is not a regular file: open and write through.
    Through,
}

/// Writes `path` by a temporary file in its folder and a rename, like [`write_atomic`] for
/// a regular file, but never following what is at `path`: the rename replaces the entry
/// itself, so a symbolic link planted there (by another user of a shared folder) is replaced
/// by the file, its target left untouched, and a FIFO or device there is replaced too. For
/// files in folders others can write, such as the textfile collector's.
pub(crate) fn replace_entry(
    path: &Path,
    content: impl FnOnce(&mut dyn Write) -> std::result::Result<(), RenderError>,
) -> std::result::Result<(), AtomicWriteError> {
    replace_file(path, path, content)
}

/// Decides how `path` is written: see [`write_atomic`].
fn write_target(path: &Path) -> std::io::Result<Target> {
    use std::io::{Error, ErrorKind};
    let link = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Target::Replace(path.into())),
        Err(e) => return Err(e),
    };
    let is_dir = || Error::new(ErrorKind::IsADirectory, "it is a directory, not a file");
    if link.is_file() {
        return Ok(Target::Replace(path.into()));
    }
    if link.is_dir() {
        return Err(is_dir());
    }
    if !link.file_type().is_symlink() {
        return Ok(Target::Through);
    }
    // A symbolic link: what it leads to decides (the kernel follows `/proc` links too).
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(Target::Replace(std::fs::canonicalize(path)?)),
        Ok(m) if m.is_dir() => Err(is_dir()),
        Ok(_) => Ok(Target::Through),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // Dangling: create the file it names, keeping the link.
            let mut at = path.to_path_buf();
            for _ in 0..40 {
                let next = std::fs::read_link(&at)?;
                at = match at.parent() {
                    Some(dir) if next.is_relative() => dir.join(next),
                    _ => next,
                };
                match std::fs::symlink_metadata(&at) {
                    Ok(m) if m.file_type().is_symlink() => continue,
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        return Ok(Target::Replace(at));
                    }
                    Ok(_) => break,
                    Err(e) => return Err(e),
                }
            }
            Err(Error::other(format!(
                "cannot resolve the symbolic link (stopped at `{}`)",
                at.display()
            )))
        }
        Err(e) => Err(e),
    }
}

/// Replaces the regular file `file` (or creates it) by a temporary file and a rename; errors
/// name `path`, and also `file` when the two differ (a symbolic link was followed).
fn replace_file(
    path: &Path,
    file: &Path,
    content: impl FnOnce(&mut dyn Write) -> std::result::Result<(), RenderError>,
) -> std::result::Result<(), AtomicWriteError> {
    let io = |e: std::io::Error| {
        let e = if file == path {
            e
        } else {
            std::io::Error::new(
                e.kind(),
                format!("{e} (writing `{}`, the link's target)", file.display()),
            )
        };
        AtomicWriteError::Io(PerfError::io(path, e))
    };
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = file
        .file_name()
        .ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path has no file name",
            ))
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| {
            // tempfile names its random file in the message: the error names `path` instead.
            let text = e.to_string();
            let text = text.split(" at path ").next().unwrap_or(&text).to_string();
            io(std::io::Error::new(e.kind(), text))
        })?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        content(&mut w).map_err(AtomicWriteError::Render)?;
        w.flush().map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Temporary files are private (0600); a report is an ordinary file. Keep the mode of
        // the file being replaced, if any.
        // (`symlink_metadata`: when `file` is a link that `replace_entry` replaces, the
        // mode is not taken from its target.)
        let mode = std::fs::symlink_metadata(file)
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map_or(0o644, |m| m.permissions().mode() & 0o7777);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io)?;
    }
    tmp.persist(file).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_folder_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("out.txt");
        let e = write_atomic(&path, |w| Ok(w.write_all(b"x")?)).unwrap_err();
        assert!(e.to_string().contains("nope/out.txt"), "{e}");
        assert!(
            !e.to_string().contains("out.txt."),
            "names a temporary file: {e}"
        );
    }

    fn write(path: &Path, text: &'static str) -> std::result::Result<(), AtomicWriteError> {
        write_atomic(path, |w| Ok(w.write_all(text.as_bytes())?))
    }

    /// The entries of `dir`, sorted: to see that no temporary file was left behind.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[cfg(unix)]
    fn is_char_device(path: &str) -> bool {
        use std::os::unix::fs::FileTypeExt;
        std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device())
    }

    #[cfg(unix)]
    #[test]
    fn dev_null_is_written_through_and_stays_a_device() {
        write(Path::new("/dev/null"), "into the void").unwrap();
        assert!(is_char_device("/dev/null"));
        let e = write_atomic(Path::new("/dev/null"), |w| {
            w.write_all(b"half")?;
            Err("render failed".into())
        })
        .unwrap_err();
        assert!(matches!(e, AtomicWriteError::Render(_)), "{e}");
        assert!(is_char_device("/dev/null"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn dev_full_is_an_error_naming_it() {
        let e = write(Path::new("/dev/full"), "no room").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("/dev/full"), "{text}");
        match e {
            AtomicWriteError::Io(PerfError::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{source}")
            }
            other => panic!("not an I/O error: {other}"),
        }
        assert!(is_char_device("/dev/full"));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_a_device_is_written_through_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("out");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        write(&link, "hello").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/dev/null"));
        assert_eq!(entries(dir.path()), ["out"]);
        assert!(is_char_device("/dev/null"));

        // A link to /dev/full: the error names the path written.
        let full = dir.path().join("full");
        std::os::unix::fs::symlink("/dev/full", &full).unwrap();
        let e = write(&full, "no room").unwrap_err().to_string();
        assert!(
            e.contains("full") && e.contains(dir.path().to_str().unwrap()),
            "{e}"
        );
        assert!(is_char_device("/dev/full"));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_written_through_to_its_reader() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo failed");
        let (tx, rx) = std::sync::mpsc::channel();
        let reader_path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(std::fs::read_to_string(&reader_path).map_err(|e| e.to_string()));
        });
        write(&fifo, "through the pipe").unwrap();
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo(),
            "the FIFO was replaced"
        );
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the reader got nothing: the FIFO was never opened for writing");
        assert_eq!(got.unwrap(), "through the pipe");
        assert_eq!(entries(dir.path()), ["pipe"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_a_file_keeps_the_link_and_replaces_the_target() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs").join("x");
        std::fs::create_dir_all(&run).unwrap();
        let target = run.join("report.html");
        std::fs::write(&target, "old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("latest.html");
        std::os::unix::fs::symlink("runs/x/report.html", &link).unwrap();

        write(&link, "new").unwrap();
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new("runs/x/report.html")
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(entries(dir.path()), ["latest.html", "runs"]);
        assert_eq!(entries(&run), ["report.html"]);

        // A failed render through the link leaves both whole.
        let e = write_atomic(&link, |w| {
            w.write_all(b"half")?;
            Err("render failed".into())
        });
        assert!(matches!(e, Err(AtomicWriteError::Render(_))));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(entries(&run), ["report.html"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_dangling_link_gets_its_target_created() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("latest.txt");
        std::os::unix::fs::symlink("made.txt", &link).unwrap();
        write(&link, "made").unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("made.txt"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made.txt")).unwrap(),
            "made"
        );
        assert_eq!(entries(dir.path()), ["latest.txt", "made.txt"]);

        // A link into a missing folder: an error naming the link and its target.
        let lost = dir.path().join("lost.txt");
        std::os::unix::fs::symlink("nope/x.txt", &lost).unwrap();
        let e = write(&lost, "x").unwrap_err().to_string();
        assert!(e.contains("lost.txt") && e.contains("nope/x.txt"), "{e}");
        assert!(std::fs::symlink_metadata(&lost)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_directory_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let e = write(&sub, "x").unwrap_err().to_string();
        assert!(e.contains("sub") && e.contains("directory"), "{e}");
        assert!(sub.is_dir());
        assert_eq!(entries(dir.path()), ["sub"]);
    }
}
