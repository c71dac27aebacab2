//! The C ABI between a heimdall-perf host and a report plugin.
//!
//! A plugin is a shared library (`.so`) that exports one symbol, [`ENTRY_SYMBOL`], an
//! `extern "C"` function of type [`EntryFn`] returning a pointer to a static
//! [`SinkDescriptor`]. Everything else goes through that descriptor:
//!
//! * the report crosses the boundary as JSON bytes (pointer + length), so the report can grow
//!   new fields without an ABI change (readers check `schema_version`);
//! * [`SinkDescriptor::render`] returns a [`RenderOutput`]: a status and bytes *owned by the
//!   plugin*, which the host copies and then hands back to [`SinkDescriptor::free`]. Neither
//!   side ever frees memory allocated by the other.
//!
//! Plugin authors do not write any of this by hand: [`export_report_sink!`](crate::export_report_sink)
//! generates it.
//!
//! # Rules of the ABI (version [`ABI_VERSION`])
//!
//! * The descriptor starts with `abi_version` then `descriptor_size`, at every version.
//!   The host refuses any ABI version other than its own.
//! * Fields are only ever appended. A plugin sets `descriptor_size` to the size of the
//!   descriptor it was built with; the host reads only the fields it knows, and refuses a
//!   descriptor smaller than [`MIN_DESCRIPTOR_SIZE`].
//! * Strings are NUL-terminated UTF-8, static for the life of the process; the format id is
//!   non-empty lower-case ASCII (`a-z`, `0-9`, `-`, `_`, `.`).
//! * `render` may be called from several threads at once, and any number of times.
//! * A render that reports [`STATUS_OK`] returns at least one byte of UTF-8 text. With
//!   [`STATUS_ERROR`] or [`STATUS_PANICKED`] the bytes (possibly none: null pointer, length 0)
//!   are a UTF-8 message.
//! * Every non-null pointer returned by `render` is passed exactly once to `free`, with the
//!   same length.
//! * A panic must never unwind across the boundary: the plugin catches it and reports
//!   [`STATUS_PANICKED`] (so plugins are built with `panic = "unwind"`, the default).
//! * The host never unloads a plugin.

use std::ffi::c_char;

/// The plugin ABI version this crate speaks. Bumped only for an incompatible change (a field
/// changing meaning or type, a changed calling convention); appended fields do not bump it.
pub const ABI_VERSION: u32 = 1;

/// Name of the symbol every plugin exports: an [`EntryFn`].
pub const ENTRY_SYMBOL: &str = "heimdall_perf_report_sink";

/// [`ENTRY_SYMBOL`], NUL-terminated, for `dlsym`.
pub const ENTRY_SYMBOL_NUL: &[u8] = b"heimdall_perf_report_sink\0";

/// Render succeeded: the bytes are the rendered report (UTF-8, not empty).
pub const STATUS_OK: u32 = 0;
/// Render failed: the bytes are a UTF-8 error message.
pub const STATUS_ERROR: u32 = 1;
/// The plugin's render function panicked (caught by the plugin): the bytes are the panic
/// message, UTF-8.
pub const STATUS_PANICKED: u32 = 2;

/// The entry point: returns the plugin's descriptor, which must stay valid (and unchanged)
/// for the life of the process. Called once per load, with no arguments.
pub type EntryFn = unsafe extern "C" fn() -> *const SinkDescriptor;

/// Renders a report given as JSON (`report_json`, `report_len` bytes, valid for the call
/// only). The returned bytes belong to the plugin and go back to its [`FreeFn`].
pub type RenderFn = unsafe extern "C" fn(report_json: *const u8, report_len: usize) -> RenderOutput;

/// Frees bytes returned by the same plugin's [`RenderFn`] (`data`, `len` exactly as returned).
pub type FreeFn = unsafe extern "C" fn(data: *mut u8, len: usize);

/// What a [`RenderFn`] returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RenderOutput {
    /// [`STATUS_OK`], [`STATUS_ERROR`] or [`STATUS_PANICKED`].
    pub status: u32,
    /// The bytes (the report, or a message), owned by the plugin; may be null when `len` is 0.
    pub data: *mut u8,
    /// Number of bytes at `data`.
    pub len: usize,
}

/// What a plugin exports, through [`ENTRY_SYMBOL`]. Append-only: new fields go at the end.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SinkDescriptor {
    /// The ABI version the plugin was built for, [`ABI_VERSION`]. Always the first field.
    pub abi_version: u32,
    /// `size_of::<SinkDescriptor>()` as the plugin was built. Always the second field.
    pub descriptor_size: u32,
    /// Human-readable plugin name, e.g. `heimdall-perf OpenMetrics`.
    pub name: *const c_char,
    /// Format id the sink registers under, e.g. `openmetrics`.
    pub format_id: *const c_char,
    /// File extension without the dot, e.g. `prom`.
    pub file_extension: *const c_char,
    /// Renders a report.
    pub render: Option<RenderFn>,
    /// Frees what `render` returned.
    pub free: Option<FreeFn>,
}

// SAFETY: a descriptor is immutable once built and every pointer in it points at data that is
// itself immutable and static (NUL-terminated strings, functions), as the ABI requires, so
// sharing it between threads is sound. This is what lets a plugin keep it in a `static`.
unsafe impl Sync for SinkDescriptor {}

/// The two leading fields every descriptor starts with, at every ABI version: what the host
/// reads before anything else.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorHeader {
    /// See [`SinkDescriptor::abi_version`].
    pub abi_version: u32,
    /// See [`SinkDescriptor::descriptor_size`].
    pub descriptor_size: u32,
}

/// Size of the descriptor this crate builds (and the plugin side writes in
/// `descriptor_size`).
pub const DESCRIPTOR_SIZE: u32 = std::mem::size_of::<SinkDescriptor>() as u32;

/// The smallest descriptor a host of this version accepts: every field of ABI version 1.
pub const MIN_DESCRIPTOR_SIZE: u32 = DESCRIPTOR_SIZE;

/// The status codes as an enum, for the host side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderStatus {
    /// [`STATUS_OK`].
    Ok,
    /// [`STATUS_ERROR`].
    Error,
    /// [`STATUS_PANICKED`].
    Panicked,
}

impl RenderStatus {
    /// The status for a raw code, `None` for a code this version does not know.
    pub fn from_raw(code: u32) -> Option<Self> {
        match code {
            STATUS_OK => Some(RenderStatus::Ok),
            STATUS_ERROR => Some(RenderStatus::Error),
            STATUS_PANICKED => Some(RenderStatus::Panicked),
            _ => None,
        }
    }

    /// The raw code.
    pub fn code(self) -> u32 {
        match self {
            RenderStatus::Ok => STATUS_OK,
            RenderStatus::Error => STATUS_ERROR,
            RenderStatus::Panicked => STATUS_PANICKED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_the_prefix_of_the_descriptor() {
        assert_eq!(std::mem::offset_of!(SinkDescriptor, abi_version), 0);
        assert_eq!(std::mem::offset_of!(SinkDescriptor, descriptor_size), 4);
        assert_eq!(std::mem::size_of::<DescriptorHeader>(), 8);
        assert_eq!(ENTRY_SYMBOL_NUL, format!("{ENTRY_SYMBOL}\0").as_bytes());
        // Option<fn> is a nullable pointer: the layout is C's.
        assert_eq!(
            std::mem::size_of::<Option<RenderFn>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn status_codes_round_trip() {
        for s in [
            RenderStatus::Ok,
            RenderStatus::Error,
            RenderStatus::Panicked,
        ] {
            assert_eq!(RenderStatus::from_raw(s.code()), Some(s));
        }
        assert_eq!(RenderStatus::from_raw(7), None);
    }
}
