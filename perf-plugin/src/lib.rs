//! # heimdall-perf-plugin
//!
//! Drop-in report plugins for heimdall-perf: a report format shipped as a `.so` that a
//! running program loads and then uses exactly like a compiled-in [`ReportSink`]. This crate
//! is both sides of the contract:
//!
//! * for plugin authors, the [`export_report_sink!`] macro: write one safe
//!   `fn(&Report) -> Result<String, E>`, get the whole C ABI generated;
//! * for the host (feature `host`, on by default), [`load_sink`] and [`loader`], which load a
//!   plugin with `libloading`, check everything it declares, and wrap it in a
//!   [`ReportSink`] whose origin is `plugin <path>`;
//! * the ABI itself, in [`abi`].
//!
//! ```
//! use std::sync::Arc;
//! use heimdall_perf_core::{PerfError, Registry};
//!
//! let registry = Registry::new();
//! registry.set_plugin_loader(heimdall_perf_plugin::loader());
//! // A file that is not a plugin is refused with a message naming it; the host carries on.
//! let dir = tempfile::tempdir()?;
//! let fake = dir.path().join("fake.so");
//! std::fs::write(&fake, "not a shared library")?;
//! match registry.load_plugin(&fake) {
//!     Err(PerfError::Plugin { path, message, .. }) => {
//!         assert_eq!(path, fake);
//!         assert!(message.starts_with("cannot load it as a shared library"), "{message}");
//!     }
//!     Err(other) => panic!("unexpected error: {other}"),
//!     Ok(_) => panic!("a text file loaded as a plugin"),
//! }
//! assert!(registry.format_ids().is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Writing a plugin
//!
//! A plugin is a `cdylib` crate that depends on this crate *without* its default features
//! (so it does not pull in the loader) and calls [`export_report_sink!`] once:
//!
//! ```toml
//! [package]
//! name = "my-heimdall-plugin"
//! version = "0.1.0"
//! edition = "2021"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! heimdall-perf-plugin = { version = "0.1", default-features = false }
//! ```
//!
//! ```
//! use heimdall_perf_plugin::{export_report_sink, Report};
//!
//! fn render(report: &Report) -> Result<String, String> {
//!     if report.span_totals.is_empty() {
//!         return Err(format!("session `{}` has no spans", report.session.name));
//!     }
//!     let mut out = String::from("path\tcount\ttotal_ns\n");
//!     for span in &report.span_totals {
//!         let path = span.path_string().replace(['\t', '\n'], " ");
//!         out.push_str(&format!("{path}\t{}\t{}\n", span.count, span.total_ns));
//!     }
//!     Ok(out)
//! }
//!
//! export_report_sink! {
//!     name: "span table",
//!     format_id: "spantable",
//!     file_extension: "tsv",
//!     render: render,
//! }
//! ```
//!
//! (This is the test fixture `plugins/test-fixtures/hello`, which the tests build and load.)
//!
//! `cargo build --release` gives `target/release/libmy_heimdall_plugin.so`; the host loads it
//! with `Registry::load_plugin` (after `set_plugin_loader(heimdall_perf_plugin::loader())`,
//! which the facade's `plugins` feature does), and the format `spantable` is then available
//! like any other. The render function may return `String` or `Vec<u8>` (UTF-8) and any error
//! that implements `Display`; an existing sink ships as
//! `render: |r: &Report| MySink::new().render_to_string(r)` (`ReportSink::render_to_string`).
//!
//! # What the ABI guarantees, and what it does not
//!
//! * **No same-compiler requirement.** Only `#[repr(C)]` types and `extern "C"` functions
//!   cross the boundary; the report crosses as JSON bytes. A plugin built by another `rustc`
//!   (or in another language) works if it follows [`abi`].
//! * **Versioned, append-only.** The descriptor starts with the ABI version and its own size.
//!   The host refuses another ABI version with an error naming both versions; fields are only
//!   ever appended, so a plugin built against a newer crate with extra fields still loads.
//!   New report fields need no ABI change: the JSON carries `schema_version`, and a plugin
//!   refuses a report schema newer than it knows.
//! * **Strings** in the descriptor are NUL-terminated UTF-8 and static; the format id is
//!   non-empty lower-case ASCII. The host checks every field (null pointers, UTF-8, empty
//!   ids) before using any.
//! * **Memory**: the host copies the plugin's output and hands it back to the plugin's own
//!   `free`; neither side frees the other's allocations. Output must be non-empty UTF-8 text.
//! * **Panics**: the generated code catches a panic in the render function and reports it as
//!   an error with the panic message. This needs the plugin built with `panic = "unwind"`
//!   (Cargo's default); with `panic = "abort"` a panicking plugin takes the host down, and
//!   nothing on the host side can prevent it.
//! * **Threads**: `render` may be called from several threads at once.
//! * **Checked before it is mapped**: the file must be a regular file of at most 256 MiB; it
//!   is read once, and those bytes must be a whole ELF shared library for this host (class,
//!   byte order, machine; program headers, every loadable segment, the dynamic segment and
//!   the section headers inside the file; the dynamic section's addresses inside the loaded
//!   segments). A truncated, half-copied or zero-filled file is an error naming its path,
//!   never a `SIGBUS`. Code and data are not checked: a library with intact headers and
//!   corrupt code can still crash when it runs.
//! * **The file may change after loading**: `dlopen` maps a private copy of the checked bytes
//!   (in a fresh `0700` directory under `TMPDIR`, which must allow executable mappings),
//!   deleted as soon as it is mapped. Overwriting, truncating or renaming over the file
//!   does not affect the loaded plugin.
//! * **Never unloaded**: a loaded plugin stays mapped until the process exits (unloading with
//!   live thread-locals or function pointers crashes later). Loading the same path again with
//!   the same bytes gives the same sink, which a registry accepts as already registered; a
//!   file that changed since is loaded as a new library, and a registry refuses it with an
//!   error saying so if its format id is the one the old version registered.
//! * **Not a sandbox**: loading a plugin runs its code in the host process, with its rights;
//!   load only plugins you trust.
//!
//! [`ReportSink`]: heimdall_perf_core::ReportSink

#![warn(missing_docs)]

pub mod abi;
#[cfg(feature = "host")]
mod elf_check;
mod error;
pub mod export;
#[cfg(feature = "host")]
mod host;

pub use error::PluginError;
// The one type a plugin author needs from heimdall-perf-core, re-exported so that a plugin
// depends on this crate alone and its render function takes exactly the `Report` the
// generated code passes. Shown as a re-export: the item's home is heimdall-perf-core.
#[doc(no_inline)]
pub use heimdall_perf_core::Report;
#[cfg(feature = "host")]
pub use host::{load_sink, loader, PluginSink};

/// Exports a report sink from a `cdylib` crate: generates the [`abi::SinkDescriptor`], the
/// [`abi::ENTRY_SYMBOL`] entry point, a `render` that reads the report from JSON and catches
/// panics, and the matching `free`.
///
/// * `name`, `format_id`, `file_extension`: `&'static str` constants (literals or `const`
///   items), checked at compile time (no NUL byte; format id lower-case ASCII, extension
///   without a leading dot).
/// * `render`: a function or closure `Fn(&Report) -> Result<O, E>` where `O: Into<Vec<u8>>`
///   (`String`, `Vec<u8>`: UTF-8 text, not empty) and `E: Display`.
///
/// Invoke it once per crate, at any module level.
///
/// ```
/// heimdall_perf_plugin::export_report_sink! {
///     name: "session names",
///     format_id: "names",
///     file_extension: "txt",
///     render: |report: &heimdall_perf_plugin::Report| {
///         Ok::<_, std::convert::Infallible>(format!("{}\n", report.session.name))
///     },
/// }
/// ```
///
/// A format id that the host would refuse is a compile error:
///
/// ```compile_fail
/// heimdall_perf_plugin::export_report_sink! {
///     name: "bad",
///     format_id: "Not An Id",
///     file_extension: "txt",
///     render: |_: &heimdall_perf_plugin::Report| Ok::<_, String>(String::from("x")),
/// }
/// ```
#[macro_export]
macro_rules! export_report_sink {
    (
        name: $name:expr,
        format_id: $format_id:expr,
        file_extension: $file_extension:expr,
        render: $render:expr $(,)?
    ) => {
        const _: () = {
            const __HEIMDALL_NAME: &str = $name;
            const __HEIMDALL_FORMAT_ID: &str = $format_id;
            const __HEIMDALL_FILE_EXTENSION: &str = $file_extension;
            const _: () = $crate::export::check_descriptor_strings(
                __HEIMDALL_NAME,
                __HEIMDALL_FORMAT_ID,
                __HEIMDALL_FILE_EXTENSION,
            );
            static __HEIMDALL_NAME_NUL: [u8; __HEIMDALL_NAME.len() + 1] =
                $crate::export::nul_terminated(__HEIMDALL_NAME);
            static __HEIMDALL_FORMAT_ID_NUL: [u8; __HEIMDALL_FORMAT_ID.len() + 1] =
                $crate::export::nul_terminated(__HEIMDALL_FORMAT_ID);
            static __HEIMDALL_FILE_EXTENSION_NUL: [u8; __HEIMDALL_FILE_EXTENSION.len() + 1] =
                $crate::export::nul_terminated(__HEIMDALL_FILE_EXTENSION);

            unsafe extern "C" fn __heimdall_render(
                report_json: *const u8,
                report_len: usize,
            ) -> $crate::abi::RenderOutput {
                // SAFETY: the host passes `report_len` readable bytes at `report_json`, valid
                // for the whole call (ABI rule).
                unsafe { $crate::export::render_json(report_json, report_len, $render) }
            }

            unsafe extern "C" fn __heimdall_free(data: *mut u8, len: usize) {
                // SAFETY: the host hands back exactly what `__heimdall_render` returned, once
                // (ABI rule).
                unsafe { $crate::export::free_output(data, len) }
            }

            static __HEIMDALL_DESCRIPTOR: $crate::abi::SinkDescriptor =
                $crate::abi::SinkDescriptor {
                    abi_version: $crate::abi::ABI_VERSION,
                    descriptor_size: $crate::abi::DESCRIPTOR_SIZE,
                    name: __HEIMDALL_NAME_NUL.as_ptr().cast(),
                    format_id: __HEIMDALL_FORMAT_ID_NUL.as_ptr().cast(),
                    file_extension: __HEIMDALL_FILE_EXTENSION_NUL.as_ptr().cast(),
                    render: ::core::option::Option::Some(__heimdall_render),
                    free: ::core::option::Option::Some(__heimdall_free),
                };

            /// The plugin entry point (see `heimdall_perf_plugin::abi`).
            #[unsafe(no_mangle)]
            pub extern "C" fn heimdall_perf_report_sink() -> *const $crate::abi::SinkDescriptor {
                &__HEIMDALL_DESCRIPTOR
            }
        };
    };
}
