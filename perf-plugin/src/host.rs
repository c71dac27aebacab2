//! The host side: loading a plugin `.so` and using it as a [`ReportSink`] (feature `host`).

use std::collections::HashMap;
use std::ffi::{c_char, CStr};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use heimdall_perf_core::{PerfError, Report, ReportSink};
use heimdall_perf_core::{PluginLoader, RenderError};

use crate::abi::{
    DescriptorHeader, EntryFn, FreeFn, RenderFn, RenderStatus, SinkDescriptor, ABI_VERSION,
    ENTRY_SYMBOL, ENTRY_SYMBOL_NUL, MIN_DESCRIPTOR_SIZE,
};
use crate::error::PluginError;
use crate::export::{is_valid_extension, is_valid_format_id};

/// A report sink that lives in a plugin `.so`, used exactly like a compiled-in one.
///
/// The library is never unloaded: a `dlclose` while the plugin still has thread-local
/// destructors registered or function pointers handed out crashes later, far from the cause.
pub struct PluginSink {
    path: PathBuf,
    name: String,
    format_id: String,
    file_extension: String,
    descriptor_size: u32,
    render: RenderFn,
    free: FreeFn,
    /// The loaded private copy (`None` only for descriptors checked in unit tests).
    library: Option<&'static libloading::Library>,
}

impl fmt::Debug for PluginSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginSink")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("format_id", &self.format_id)
            .field("file_extension", &self.file_extension)
            .field("descriptor_size", &self.descriptor_size)
            .finish_non_exhaustive()
    }
}

/// Loads the plugin at `path` and returns its sink, ready to register.
///
/// Every way a file can fail to be a good plugin is a [`PluginError`] naming the path; the
/// host keeps running. Before anything is mapped:
///
/// * the path must be a regular file (a directory, FIFO or device is refused without being
///   read) of at most 256 MiB;
/// * the file is read once, into memory, and those bytes are checked: an ELF shared library
///   for this host (class, byte order, machine), with its program headers, every loadable
///   segment, the dynamic segment and the section headers inside the file, and the
///   dynamic section's addresses inside the loaded segments. A truncated or half-copied
///   file is an [`PluginError::InvalidElf`] saying so, never a `SIGBUS`;
/// * the same bytes are written to a private copy (a fresh `0700` directory under the system
///   temporary directory, `TMPDIR`), and that copy is what `dlopen` maps. The copy is
///   deleted as soon as `dlopen` returns: the mapping stays valid, and nothing piles up.
///
/// So the file at `path` may be overwritten, truncated or renamed over while the plugin is
/// loaded without affecting the running host. Loading the same path again with the same
/// bytes returns the same sink; once the bytes differ, the new library is loaded.
///
/// ```
/// let Err(e) = heimdall_perf_plugin::load_sink("/no/such/plugin.so".as_ref()) else {
///     panic!("a missing file cannot load");
/// };
/// assert_eq!(e.to_string(), "plugin `/no/such/plugin.so`: no such file");
/// ```
pub fn load_sink(path: &Path) -> Result<Arc<dyn ReportSink>, PluginError> {
    let image = read_image(path)?;
    let key = (path.to_path_buf(), image.key);
    if let Some(sink) = lock(&SINKS).get(&key) {
        return Ok(Arc::clone(sink) as Arc<dyn ReportSink>);
    }
    let library = library_for(path, &image)?;
    let sink = Arc::new(PluginSink::from_library(path, library)?);
    let sink = Arc::clone(lock(&SINKS).entry(key).or_insert(sink));
    Ok(sink)
}

/// The loader to give [`Registry::set_plugin_loader`](heimdall_perf_core::Registry::set_plugin_loader):
/// [`load_sink`], with errors as [`PerfError::Plugin`].
///
/// ```
/// use heimdall_perf_core::{PerfError, Registry};
/// let registry = Registry::new();
/// registry.set_plugin_loader(heimdall_perf_plugin::loader());
/// let Err(e) = registry.load_plugin("/no/such/plugin.so".as_ref()) else {
///     panic!("a missing file cannot load");
/// };
/// assert!(matches!(e, PerfError::Plugin { ref message, .. } if message == "no such file"));
/// ```
pub fn loader() -> PluginLoader {
    Arc::new(
        |path: &Path| -> heimdall_perf_core::Result<Arc<dyn ReportSink>> {
            load_sink(path).map_err(|e| PerfError::Plugin {
                path: path.to_path_buf(),
                message: e.detail(),
                source: Some(Box::new(e)),
            })
        },
    )
}

/// The largest plugin file the host reads (256 MiB); a plugin is a few MiB.
const MAX_PLUGIN_BYTES: u64 = 256 * 1024 * 1024;

/// What identifies a plugin's bytes: their length and a 128-bit keyed hash (random keys per
/// process, so no file can be made to collide on purpose).
type ContentKey = (u64, u64, u64);

/// The bytes of a plugin file, read once.
struct Image {
    bytes: Vec<u8>,
    key: ContentKey,
}

/// Every library loaded so far, by content: the same bytes are mapped once per process.
static LIBRARIES: Mutex<Option<HashMap<ContentKey, &'static libloading::Library>>> =
    Mutex::new(None);

/// Every sink [`load_sink`] returned, by path and content: loading the same file again
/// returns the same sink, which is how the registry tells a repeated load from a new one.
static SINKS: LazyLock<Mutex<HashMap<SinkKey, Arc<PluginSink>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A plugin path as given, and the content key of the bytes read from it.
type SinkKey = (PathBuf, ContentKey);

/// Numbers the private copies, so that no two copies in this process ever have the same
/// path (the dynamic loader recognises an already loaded library by its path).
static COPIES: AtomicU64 = AtomicU64::new(0);

/// Locks a cache; a panic while it was held cannot leave it inconsistent (each update is
/// one insert), so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The content key of `bytes`.
fn content_key(bytes: &[u8]) -> ContentKey {
    static KEYS: LazyLock<(RandomState, RandomState)> =
        LazyLock::new(|| (RandomState::new(), RandomState::new()));
    (
        bytes.len() as u64,
        KEYS.0.hash_one(bytes),
        KEYS.1.hash_one(bytes),
    )
}

/// Reads the whole plugin file through one file descriptor, refusing anything but a regular
/// file of at most [`MAX_PLUGIN_BYTES`].
fn read_image(path: &Path) -> Result<Image, PluginError> {
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            PluginError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            PluginError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let check = |meta: &std::fs::Metadata| {
        if !meta.is_file() {
            Err(PluginError::NotAFile {
                path: path.to_path_buf(),
            })
        } else if meta.len() > MAX_PLUGIN_BYTES {
            Err(PluginError::TooLarge {
                path: path.to_path_buf(),
                size: meta.len(),
                limit: MAX_PLUGIN_BYTES,
            })
        } else {
            Ok(())
        }
    };
    // Checked before opening, so that a FIFO or a device is never opened at all…
    check(&std::fs::metadata(path).map_err(io)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // …and opened without blocking, then checked again on the descriptor, in case the path
    // was replaced in between (opening a FIFO for reading would wait for a writer forever).
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check(&meta)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow while it is read: read at most one byte past the limit.
    file.take(MAX_PLUGIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_PLUGIN_BYTES {
        return Err(PluginError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: MAX_PLUGIN_BYTES,
        });
    }
    let key = content_key(&bytes);
    Ok(Image { bytes, key })
}

/// The library for `image`: the one already loaded from the same bytes, or a private copy of
/// them, checked and loaded now.
fn library_for(path: &Path, image: &Image) -> Result<&'static libloading::Library, PluginError> {
    // Held across the load, so that two threads loading the same bytes map them once.
    let mut libraries = lock(&LIBRARIES);
    let libraries = libraries.get_or_insert_with(HashMap::new);
    if let Some(library) = libraries.get(&image.key) {
        return Ok(library);
    }
    with_aligned(&image.bytes, crate::elf_check::check).map_err(|refusal| {
        PluginError::InvalidElf {
            path: path.to_path_buf(),
            detail: refusal.detail,
            source: refusal.source.map(|e| Box::new(e) as _),
        }
    })?;
    let library = load_private_copy(path, &image.bytes)?;
    // Never unloaded (see the type's docs): from here on the library lives as long as the
    // process, so the function pointers and strings it hands out stay valid.
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    libraries.insert(image.key, library);
    Ok(library)
}

/// Calls `f` with `bytes` at an 8-byte aligned address (the ELF reader reads its structures
/// in place and needs their alignment), copying them only if the allocation is not aligned.
fn with_aligned<R>(bytes: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    if bytes.as_ptr().align_offset(std::mem::align_of::<u64>()) == 0 {
        return f(bytes);
    }
    let words: Vec<u64> = bytes
        .chunks(8)
        .map(|chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            u64::from_ne_bytes(word)
        })
        .collect();
    // SAFETY: `words` holds at least `bytes.len()` initialised bytes (u64 has no padding),
    // and lives until the end of this function.
    let aligned = unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), bytes.len()) };
    f(aligned)
}

/// Writes `bytes` to a new private file, loads it, and deletes it again.
///
/// Deleting the copy right after `dlopen` is safe on Linux and the other Unixes: the mapping
/// holds its own reference to the file, whose blocks are freed only when the library is
/// unmapped, which never happens (libraries are never unloaded). As the inode stays
/// allocated, its number cannot be given to a later copy, so the dynamic loader (which also
/// recognises a loaded library by device and inode) can never mistake a later copy for this
/// one; and the path is unique within the process (`COPIES`). The price: tools that reopen
/// a library by its path (a debugger, or symbolising a backtrace through the plugin) find
/// the copy deleted.
fn load_private_copy(path: &Path, bytes: &[u8]) -> Result<libloading::Library, PluginError> {
    let copy_error = |dir: &Path, source: std::io::Error| PluginError::PrivateCopy {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        source,
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix("heimdall-perf-plugin-");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
    let temp = std::env::temp_dir();
    let dir = builder.tempdir().map_err(|e| copy_error(&temp, e))?;
    let dir_path = std::path::absolute(dir.path()).map_err(|e| copy_error(&temp, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin.so".into());
    let number = COPIES.fetch_add(1, Ordering::Relaxed);
    let copy = dir_path.join(format!("{number}-{name}"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o700);
    let written = options.open(&copy).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        return Err(copy_error(&dir_path, e));
    }
    // SAFETY: loading runs the library's initialisers, which is the trust a user gives a
    // plugin by asking for it to be loaded; its headers were checked above.
    let library = unsafe { open_library(&copy) };
    // Deleted whether or not it loaded (see above). A failure to delete leaves a file in a
    // private temporary directory, which is not worth failing the load for.
    let _ = std::fs::remove_file(&copy);
    let _ = dir.close();
    library.map_err(|e| {
        let mut message = error_chain(&e).replace(
            &copy.display().to_string(),
            &path.display().to_string(),
        );
        if message.contains("failed to map segment") || message.contains("Operation not permitted")
        {
            message.push_str(&format!(
                " (the private copy was in `{}`: if that file system is mounted noexec, point TMPDIR at one that is not)",
                dir_path.display()
            ));
        }
        PluginError::Load {
            path: path.to_path_buf(),
            message,
            source: Box::new(e),
        }
    })
}

impl PluginSink {
    /// Loads and checks the plugin at `path`.
    ///
    /// The file is read once, checked (see [`load_sink`]), and a private copy of those bytes
    /// is what the dynamic loader maps, so the file at `path` may change afterwards.
    pub fn load(path: &Path) -> Result<PluginSink, PluginError> {
        let image = read_image(path)?;
        let library = library_for(path, &image)?;
        PluginSink::from_library(path, library)
    }

    /// Finds the entry point of a loaded library and checks its descriptor.
    fn from_library(
        path: &Path,
        library: &'static libloading::Library,
    ) -> Result<PluginSink, PluginError> {
        // SAFETY: `EntryFn` is the type the ABI gives the entry symbol; a library exporting a
        // symbol of that name with another type is not following the ABI.
        let entry = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL_NUL) }.map_err(|e| {
            PluginError::MissingEntry {
                path: path.to_path_buf(),
                symbol: ENTRY_SYMBOL,
                message: error_chain(&e),
                source: Box::new(e),
            }
        })?;
        // SAFETY: the entry point takes no arguments and returns a pointer (ABI rule); the
        // library stays loaded for the rest of the process.
        let descriptor = unsafe { entry() };
        // SAFETY: the pointer comes straight from the plugin's entry point, which the ABI
        // requires to return null or a static descriptor; `from_descriptor` checks what can be
        // checked (null, alignment, version, size, every field).
        let mut sink = unsafe { PluginSink::from_descriptor(path, descriptor) }?;
        sink.library = Some(library);
        Ok(sink)
    }

    /// Checks a descriptor and builds the sink from it.
    ///
    /// # Safety
    ///
    /// `descriptor` must be null or point at a descriptor that stays valid and unchanged for
    /// the rest of the process, at least `descriptor_size` bytes long, whose functions and
    /// strings stay valid as long.
    unsafe fn from_descriptor(
        path: &Path,
        descriptor: *const SinkDescriptor,
    ) -> Result<PluginSink, PluginError> {
        let invalid = |detail: String| PluginError::InvalidDescriptor {
            path: path.to_path_buf(),
            detail,
        };
        if descriptor.is_null() {
            return Err(invalid(format!(
                "`{ENTRY_SYMBOL}` returned a null descriptor"
            )));
        }
        if !descriptor.is_aligned() {
            return Err(invalid(format!(
                "`{ENTRY_SYMBOL}` returned a misaligned descriptor pointer ({descriptor:p})"
            )));
        }
        // SAFETY: non-null and aligned; every ABI version starts with this 8-byte header.
        let header = unsafe { descriptor.cast::<DescriptorHeader>().read() };
        if header.abi_version != ABI_VERSION {
            return Err(PluginError::AbiVersion {
                path: path.to_path_buf(),
                found: header.abi_version,
                expected: ABI_VERSION,
                host_crate_version: env!("CARGO_PKG_VERSION"),
            });
        }
        if header.descriptor_size < MIN_DESCRIPTOR_SIZE {
            return Err(invalid(format!(
                "the descriptor is {} bytes, ABI version {ABI_VERSION} needs at least {MIN_DESCRIPTOR_SIZE}",
                header.descriptor_size
            )));
        }
        // SAFETY: same ABI version and the plugin declares at least as many bytes as we read;
        // fields beyond ours (appended by a newer plugin) are left unread.
        let d = unsafe { descriptor.read() };
        // SAFETY: descriptor strings are null or NUL-terminated and static (ABI rule).
        let name = unsafe { c_str_field(d.name, "name") }.map_err(&invalid)?;
        // SAFETY: as for `name`.
        let format_id = unsafe { c_str_field(d.format_id, "format_id") }.map_err(&invalid)?;
        // SAFETY: as for `name`.
        let file_extension =
            unsafe { c_str_field(d.file_extension, "file_extension") }.map_err(&invalid)?;
        if name.trim().is_empty() {
            return Err(invalid("`name` is empty".into()));
        }
        if !is_valid_format_id(&format_id) {
            return Err(invalid(format!(
                "`format_id` {format_id:?} is not a format id (non-empty lower-case ASCII: a-z, 0-9, `-`, `_`, `.`)"
            )));
        }
        if !is_valid_extension(&file_extension) {
            return Err(invalid(format!(
                "`file_extension` {file_extension:?} is not a file extension (non-empty ASCII letters, digits, `-`, `_`, `.`, no leading dot)"
            )));
        }
        let render = d
            .render
            .ok_or_else(|| invalid("`render` is a null function pointer".into()))?;
        let free = d
            .free
            .ok_or_else(|| invalid("`free` is a null function pointer".into()))?;
        Ok(PluginSink {
            path: path.to_path_buf(),
            name,
            format_id,
            file_extension,
            descriptor_size: header.descriptor_size,
            render,
            free,
            library: None,
        })
    }

    /// The path the plugin was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The address of another symbol the plugin exports (for plugin-specific extensions and
    /// tests), `None` when it exports no such symbol. This looks in the library this sink
    /// uses, the private copy the host loaded: opening the original path again with another
    /// loader would give a separate instance with its own statics.
    ///
    /// Using the address (as a function or a static of the right type) is `unsafe`: nothing
    /// here knows its type.
    pub fn symbol_address(&self, name: &str) -> Option<*const std::ffi::c_void> {
        let library = self.library?;
        let mut name = name.as_bytes().to_vec();
        if name.contains(&0) {
            return None;
        }
        name.push(0);
        // SAFETY: the symbol is read as an untyped address, not called or dereferenced; the
        // library is never unloaded, so the address stays valid.
        let symbol = unsafe { library.get::<*const std::ffi::c_void>(&name[..]) }.ok()?;
        Some(*symbol)
    }

    /// The plugin's name, from its descriptor.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The size of the plugin's descriptor (larger than this host's when the plugin was built
    /// against a newer heimdall-perf-plugin with appended fields).
    pub fn descriptor_size(&self) -> u32 {
        self.descriptor_size
    }

    /// Renders `report` through the plugin and returns the plugin's output, copied.
    pub fn render_bytes(&self, report: &Report) -> Result<Vec<u8>, PluginError> {
        let session = &report.session.name;
        let json = serde_json::to_vec(report).map_err(|source| PluginError::Serialize {
            path: self.path.clone(),
            session: session.clone(),
            source,
        })?;
        // SAFETY: `render` comes from a checked descriptor of a library that is never unloaded;
        // `json` is valid for the whole call. The returned bytes are owned by `Returned`,
        // which hands them back to the plugin's `free`, once.
        let raw = unsafe { (self.render)(json.as_ptr(), json.len()) };
        let returned = Returned {
            data: raw.data,
            len: raw.len,
            free: self.free,
        };
        let bad = |detail: String| PluginError::BadOutput {
            path: self.path.clone(),
            format: self.format_id.clone(),
            session: session.clone(),
            detail,
        };
        if raw.len > isize::MAX as usize {
            return Err(bad(format!("an impossible length of {} bytes", raw.len)));
        }
        let status = RenderStatus::from_raw(raw.status)
            .ok_or_else(|| bad(format!("unknown status code {}", raw.status)))?;
        let bytes = returned.bytes();
        let message = || match bytes {
            None | Some([]) => "(no message)".to_string(),
            Some(b) => String::from_utf8_lossy(b).into_owned(),
        };
        match status {
            RenderStatus::Ok => {
                let bytes = match bytes {
                    None => {
                        return Err(bad(format!(
                            "status ok with a null pointer ({} bytes)",
                            raw.len
                        )))
                    }
                    Some([]) => return Err(bad("status ok but no output (0 bytes)".into())),
                    Some(b) => b,
                };
                if let Err(e) = std::str::from_utf8(bytes) {
                    return Err(bad(format!(
                        "the output is not valid UTF-8 (at byte {} of {})",
                        e.valid_up_to(),
                        bytes.len()
                    )));
                }
                Ok(bytes.to_vec())
            }
            RenderStatus::Error => Err(PluginError::Render {
                path: self.path.clone(),
                format: self.format_id.clone(),
                session: session.clone(),
                message: message(),
            }),
            RenderStatus::Panicked => Err(PluginError::Panicked {
                path: self.path.clone(),
                format: self.format_id.clone(),
                session: session.clone(),
                message: message(),
            }),
        }
    }
}

impl ReportSink for PluginSink {
    fn format_id(&self) -> &str {
        &self.format_id
    }

    fn file_extension(&self) -> &str {
        &self.file_extension
    }

    fn render(&self, report: &Report, out: &mut dyn Write) -> Result<(), RenderError> {
        let bytes = self.render_bytes(report)?;
        out.write_all(&bytes)?;
        Ok(())
    }

    fn origin(&self) -> String {
        format!("plugin {}", self.path.display())
    }
}

/// Bytes returned by a plugin's render, handed back to the plugin's `free` when dropped.
struct Returned {
    data: *mut u8,
    len: usize,
    free: FreeFn,
}

impl Returned {
    /// The bytes, `None` when the pointer is null. Only called once the length is known to be
    /// at most `isize::MAX`.
    fn bytes(&self) -> Option<&[u8]> {
        if self.data.is_null() {
            return None;
        }
        // SAFETY: the plugin returned `len` initialised bytes at `data` (ABI rule), which stay
        // valid until we call its `free` in `drop`; the length fits a slice (checked by the
        // caller).
        Some(unsafe { std::slice::from_raw_parts(self.data, self.len) })
    }
}

impl Drop for Returned {
    fn drop(&mut self) {
        if !self.data.is_null() {
            // SAFETY: the pointer and length are exactly what the plugin's render returned,
            // and this is the only place they are freed.
            unsafe { (self.free)(self.data, self.len) };
        }
    }
}

/// Opens a shared library. On Unix every symbol is resolved now (`RTLD_NOW`), so that a plugin
/// with a missing dependency symbol is refused at load time instead of aborting mid-render.
///
/// # Safety
///
/// Runs the library's initialisers (see `libloading::Library::new`).
unsafe fn open_library(path: &Path) -> Result<libloading::Library, libloading::Error> {
    #[cfg(unix)]
    {
        use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
        // SAFETY: forwarded to the caller.
        unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(Into::into)
    }
    #[cfg(not(unix))]
    {
        // SAFETY: forwarded to the caller.
        unsafe { libloading::Library::new(path) }
    }
}

/// Reads a NUL-terminated UTF-8 descriptor field into an owned string.
///
/// # Safety
///
/// `ptr` must be null or point at a NUL-terminated string.
unsafe fn c_str_field(ptr: *const c_char, field: &str) -> Result<String, String> {
    if ptr.is_null() {
        return Err(format!("`{field}` is a null pointer"));
    }
    // SAFETY: non-null and NUL-terminated per the caller's contract.
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str().map(str::to_owned).map_err(|e| {
        format!(
            "`{field}` is not valid UTF-8 (at byte {}): {:?}",
            e.valid_up_to(),
            String::from_utf8_lossy(s.to_bytes())
        )
    })
}

/// An error and its sources, one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{RenderOutput, DESCRIPTOR_SIZE};

    unsafe extern "C" fn render_nothing(_: *const u8, _: usize) -> RenderOutput {
        RenderOutput {
            status: crate::abi::STATUS_OK,
            data: std::ptr::null_mut(),
            len: 0,
        }
    }
    unsafe extern "C" fn free_nothing(_: *mut u8, _: usize) {}

    fn good() -> SinkDescriptor {
        SinkDescriptor {
            abi_version: ABI_VERSION,
            descriptor_size: DESCRIPTOR_SIZE,
            name: c"test plugin".as_ptr(),
            format_id: c"test".as_ptr(),
            file_extension: c"txt".as_ptr(),
            render: Some(render_nothing),
            free: Some(free_nothing),
        }
    }

    fn check(d: &SinkDescriptor) -> Result<PluginSink, PluginError> {
        // SAFETY: `d` and its strings outlive the call, and the fields are only read.
        unsafe { PluginSink::from_descriptor(Path::new("/p/test.so"), d) }
    }

    fn detail(d: SinkDescriptor) -> String {
        match check(&d) {
            Err(PluginError::InvalidDescriptor { detail, .. }) => detail,
            other => panic!("expected an invalid descriptor, got {other:?}"),
        }
    }

    #[test]
    fn a_good_descriptor_is_accepted() {
        let sink = check(&good()).unwrap();
        assert_eq!(
            (sink.name(), sink.format_id(), sink.file_extension()),
            ("test plugin", "test", "txt")
        );
        assert_eq!(sink.origin(), "plugin /p/test.so");
    }

    #[test]
    fn every_field_is_checked() {
        let null = std::ptr::null();
        assert!(detail(SinkDescriptor {
            name: null,
            ..good()
        })
        .contains("`name` is a null"));
        assert!(detail(SinkDescriptor {
            format_id: null,
            ..good()
        })
        .contains("`format_id` is a null"));
        assert!(detail(SinkDescriptor {
            file_extension: null,
            ..good()
        })
        .contains("`file_extension` is a null"));
        let bad_utf8 = b"op\xffen\0";
        let d = detail(SinkDescriptor {
            format_id: bad_utf8.as_ptr().cast(),
            ..good()
        });
        assert!(
            d.contains("`format_id` is not valid UTF-8 (at byte 2)"),
            "{d}"
        );
        let d = detail(SinkDescriptor {
            format_id: c"".as_ptr(),
            ..good()
        });
        assert!(d.contains("`format_id` \"\" is not a format id"), "{d}");
        let d = detail(SinkDescriptor {
            format_id: c"Open Metrics".as_ptr(),
            ..good()
        });
        assert!(d.contains("\"Open Metrics\""), "{d}");
        let d = detail(SinkDescriptor {
            name: c"  ".as_ptr(),
            ..good()
        });
        assert!(d.contains("`name` is empty"), "{d}");
        let d = detail(SinkDescriptor {
            file_extension: c".prom".as_ptr(),
            ..good()
        });
        assert!(d.contains("`file_extension` \".prom\""), "{d}");
        assert!(detail(SinkDescriptor {
            render: None,
            ..good()
        })
        .contains("`render` is a null"));
        assert!(detail(SinkDescriptor {
            free: None,
            ..good()
        })
        .contains("`free` is a null"));
    }

    #[test]
    fn version_and_size_are_checked_first() {
        match check(&SinkDescriptor {
            abi_version: 2,
            name: std::ptr::null(),
            ..good()
        }) {
            Err(PluginError::AbiVersion {
                found: 2,
                expected: ABI_VERSION,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let d = detail(SinkDescriptor {
            descriptor_size: 8,
            ..good()
        });
        assert!(d.contains("the descriptor is 8 bytes"), "{d}");
        // A newer plugin with appended fields is fine: we read only what we know.
        let sink = check(&SinkDescriptor {
            descriptor_size: DESCRIPTOR_SIZE + 16,
            ..good()
        })
        .unwrap();
        assert_eq!(sink.descriptor_size(), DESCRIPTOR_SIZE + 16);
        // SAFETY: null is allowed by the contract.
        let e = unsafe { PluginSink::from_descriptor(Path::new("/p"), std::ptr::null()) };
        assert!(
            matches!(e, Err(PluginError::InvalidDescriptor { ref detail, .. }) if detail.contains("null descriptor"))
        );
    }

    #[test]
    fn null_output_with_status_ok_is_refused() {
        let sink = check(&good()).unwrap();
        let e = sink.render_bytes(&Report::empty("s")).unwrap_err();
        assert!(matches!(e, PluginError::BadOutput { .. }), "{e}");
        assert!(
            e.to_string().contains("status ok with a null pointer"),
            "{e}"
        );
    }

    #[test]
    fn loading_odd_paths_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let e = PluginSink::load(dir.path()).unwrap_err();
        assert!(matches!(e, PluginError::NotAFile { .. }), "{e}");
        let e = PluginSink::load(&dir.path().join("nope.so")).unwrap_err();
        assert!(matches!(e, PluginError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("nope.so"), "{e}");
    }
}
