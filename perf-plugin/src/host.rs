//! The host side: loading a plugin `.so` and using it as a [`ReportSink`] (feature `host`).

use std::ffi::{c_char, CStr};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use heimdall_perf_core::sink::{PluginLoader, RenderError};
use heimdall_perf_core::{PerfError, Report, ReportSink};

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
/// host keeps running.
///
/// ```
/// let Err(e) = heimdall_perf_plugin::load_sink("/no/such/plugin.so".as_ref()) else {
///     panic!("a missing file cannot load");
/// };
/// assert_eq!(e.to_string(), "plugin `/no/such/plugin.so`: no such file");
/// ```
pub fn load_sink(path: &Path) -> Result<Arc<dyn ReportSink>, PluginError> {
    Ok(Arc::new(PluginSink::load(path)?))
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
            })
        },
    )
}

impl PluginSink {
    /// Loads and checks the plugin at `path`.
    pub fn load(path: &Path) -> Result<PluginSink, PluginError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PluginError::NotFound {
                    path: path.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(PluginError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        if !meta.is_file() {
            return Err(PluginError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        // With no directory part, dlopen would search the system library path instead of
        // opening the file we just checked.
        let load_path = std::path::absolute(path).map_err(|source| PluginError::Io {
            path: path.to_path_buf(),
            source,
        })?;

        // SAFETY: loading runs the library's initialisers, which is the trust a user gives a
        // plugin by asking for it to be loaded; nothing else can be checked beforehand.
        let library = unsafe { open_library(&load_path) }.map_err(|e| PluginError::Load {
            path: path.to_path_buf(),
            message: error_chain(&e),
        })?;
        // Never unloaded (see the type's docs): from here on the library lives as long as the
        // process, so the function pointers and strings it hands out stay valid.
        let library: &'static libloading::Library = Box::leak(Box::new(library));

        // SAFETY: `EntryFn` is the type the ABI gives the entry symbol; a library exporting a
        // symbol of that name with another type is not following the ABI.
        let entry = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL_NUL) }.map_err(|e| {
            PluginError::MissingEntry {
                path: path.to_path_buf(),
                symbol: ENTRY_SYMBOL,
                message: error_chain(&e),
            }
        })?;
        // SAFETY: the entry point takes no arguments and returns a pointer (ABI rule); the
        // library stays loaded for the rest of the process.
        let descriptor = unsafe { entry() };
        // SAFETY: the pointer comes straight from the plugin's entry point, which the ABI
        // requires to return null or a static descriptor; `from_descriptor` checks what can be
        // checked (null, alignment, version, size, every field).
        unsafe { PluginSink::from_descriptor(path, descriptor) }
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
        })
    }

    /// The path the plugin was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
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
        let json = serde_json::to_vec(report).map_err(|e| PluginError::Serialize {
            path: self.path.clone(),
            session: session.clone(),
            message: e.to_string(),
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
