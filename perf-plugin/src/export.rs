//! The plugin side: what [`export_report_sink!`](crate::export_report_sink) expands to.
//!
//! Plugin authors normally use only the macro; these functions are public because the
//! generated code calls them (through `$crate::export::…`), and so that a hand-written plugin
//! can reuse them.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use heimdall_perf_core::Report;
use heimdall_perf_core::SCHEMA_VERSION;
use serde::Deserialize;

use crate::abi::{RenderOutput, STATUS_ERROR, STATUS_OK, STATUS_PANICKED};

/// `s` followed by a NUL byte, as an array of `N = s.len() + 1` bytes, at compile time.
///
/// Fails to compile (const panic) when `N` is wrong or `s` contains a NUL byte.
///
/// ```
/// const NUL: [u8; 4] = heimdall_perf_plugin::export::nul_terminated("abc");
/// assert_eq!(&NUL, b"abc\0");
/// ```
pub const fn nul_terminated<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    assert!(
        bytes.len() + 1 == N,
        "the array must be one byte longer than the string"
    );
    let mut out = [0u8; N];
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i] != 0, "plugin strings must not contain a NUL byte");
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Whether `id` is a valid format id: non-empty, lower-case ASCII letters, digits, `-`, `_`,
/// `.`, starting with a letter or digit.
pub const fn is_valid_format_id(id: &str) -> bool {
    is_valid_token(id, false)
}

/// Whether `ext` is a valid file extension: non-empty ASCII letters, digits, `-`, `_`, `.`,
/// not starting with `.`.
pub const fn is_valid_extension(ext: &str) -> bool {
    is_valid_token(ext, true)
}

const fn is_valid_token(s: &str, upper_ok: bool) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let ok = c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c == b'-'
            || c == b'_'
            || c == b'.'
            || (upper_ok && c.is_ascii_uppercase());
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

/// Compile-time check of the descriptor strings the macro is given; fails to compile with a
/// message when one is invalid.
pub const fn check_descriptor_strings(name: &str, format_id: &str, file_extension: &str) {
    assert!(!name.is_empty(), "the plugin name must not be empty");
    assert!(
        is_valid_format_id(format_id),
        "the format id must be non-empty lower-case ASCII: a-z, 0-9, `-`, `_`, `.`"
    );
    assert!(
        is_valid_extension(file_extension),
        "the file extension must be non-empty ASCII letters, digits, `-`, `_`, `.`, without a leading dot"
    );
}

#[derive(Deserialize)]
struct SchemaProbe {
    schema_version: u32,
}

/// Reads a report from the JSON the host sends, refusing a schema newer than this build of
/// heimdall-perf-core understands.
pub fn parse_report(json: &[u8]) -> Result<Report, String> {
    let probe: SchemaProbe = serde_json::from_slice(json)
        .map_err(|e| format!("the host sent a report this plugin cannot read: {e}"))?;
    if probe.schema_version > SCHEMA_VERSION {
        return Err(format!(
            "the report has schema version {}, newer than this plugin understands ({SCHEMA_VERSION}); rebuild the plugin against a newer heimdall-perf-core",
            probe.schema_version
        ));
    }
    serde_json::from_slice(json).map_err(|e| {
        format!(
            "the host sent a report of schema version {} that this plugin cannot read: {e}",
            probe.schema_version
        )
    })
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

/// Hands `bytes` to the host with `status`: the allocation becomes the host's to return
/// through [`free_output`].
pub fn output(status: u32, bytes: Vec<u8>) -> RenderOutput {
    let boxed = bytes.into_boxed_slice();
    let len = boxed.len();
    let data = Box::into_raw(boxed).cast::<u8>();
    RenderOutput { status, data, len }
}

/// The body of a plugin's `render`: reads the report from JSON, calls `render`, catches any
/// panic, and packs the result (or the error or panic message) as a [`RenderOutput`].
///
/// # Safety
///
/// `report_json` must point at `report_len` readable bytes (or be null), valid for the call.
pub unsafe fn render_json<F, O, E>(
    report_json: *const u8,
    report_len: usize,
    render: F,
) -> RenderOutput
where
    F: FnOnce(&Report) -> Result<O, E>,
    O: Into<Vec<u8>>,
    E: fmt::Display,
{
    let json: &[u8] = if report_json.is_null() || report_len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees `report_len` readable bytes at `report_json`, valid for
        // the whole call; we checked the pointer is not null.
        unsafe { std::slice::from_raw_parts(report_json, report_len) }
    };
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<u8>, String> {
        let report = parse_report(json)?;
        render(&report).map(Into::into).map_err(|e| e.to_string())
    }));
    match result {
        Ok(Ok(bytes)) => output(STATUS_OK, bytes),
        Ok(Err(message)) => output(STATUS_ERROR, message.into_bytes()),
        Err(payload) => {
            let message = panic_message(&*payload);
            // Dropping a payload can itself panic; that must not unwind into the host either.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            output(STATUS_PANICKED, message.into_bytes())
        }
    }
}

/// The body of a plugin's `free`: releases bytes made by [`output`].
///
/// # Safety
///
/// `data` and `len` must be exactly what a [`RenderOutput`] built by [`output`] in this same
/// library carried, and must not be used or freed again. A null `data` is ignored.
pub unsafe fn free_output(data: *mut u8, len: usize) {
    if data.is_null() {
        return;
    }
    // SAFETY: per the contract, `data`/`len` come from `Box::<[u8]>::into_raw` in `output`
    // (this library's allocator) and are returned exactly once.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, len)) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_perf_testkit::sample_report;

    /// Calls `render_json` the way a host would, and returns status and bytes (freed).
    fn call<F, O, E>(json: &[u8], f: F) -> (u32, Vec<u8>)
    where
        F: FnOnce(&Report) -> Result<O, E>,
        O: Into<Vec<u8>>,
        E: fmt::Display,
    {
        // SAFETY: `json` is a live slice for the whole call.
        let out = unsafe { render_json(json.as_ptr(), json.len(), f) };
        // SAFETY: `out` was built by `output`; the bytes are copied before being freed once.
        let bytes = unsafe { std::slice::from_raw_parts(out.data, out.len) }.to_vec();
        // SAFETY: as above, returned exactly once.
        unsafe { free_output(out.data, out.len) };
        (out.status, bytes)
    }

    #[test]
    fn renders_errors_and_panics_become_statuses() {
        let json = serde_json::to_vec(&sample_report()).unwrap();
        let (status, bytes) = call(&json, |r| Ok::<_, String>(r.session.name.clone()));
        assert_eq!(
            (status, bytes.as_slice()),
            (STATUS_OK, &b"line-3 inspection"[..])
        );

        let (status, bytes) = call(&json, |_| Err::<String, _>("no disk"));
        assert_eq!((status, bytes.as_slice()), (STATUS_ERROR, &b"no disk"[..]));

        let (status, bytes) = call(&json, |_| -> Result<String, String> {
            panic!("render exploded at {}", 42)
        });
        assert_eq!(status, STATUS_PANICKED);
        assert_eq!(bytes, b"render exploded at 42");
    }

    #[test]
    fn non_finite_values_survive_the_json_crossing() {
        let json = serde_json::to_vec(&sample_report()).unwrap();
        let (status, bytes) = call(&json, |r| {
            r.metric("sensor | temp")
                .map(|m| format!("{} {}", m.last, m.non_finite))
                .ok_or("missing metric")
        });
        assert_eq!(status, STATUS_OK, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(bytes, b"NaN 2");
    }

    #[test]
    fn newer_schema_and_garbage_are_refused_with_a_message() {
        let mut value = serde_json::to_value(sample_report()).unwrap();
        value["schema_version"] = serde_json::json!(SCHEMA_VERSION + 1);
        let json = serde_json::to_vec(&value).unwrap();
        let (status, bytes) = call(&json, |_| Ok::<_, String>("x"));
        assert_eq!(status, STATUS_ERROR);
        let msg = String::from_utf8(bytes).unwrap();
        assert!(msg.contains("newer than this plugin understands"), "{msg}");

        let (status, bytes) = call(b"not json", |_| Ok::<_, String>("x"));
        assert_eq!(status, STATUS_ERROR);
        let msg = String::from_utf8(bytes).unwrap();
        assert!(msg.contains("cannot read"), "{msg}");

        // A null pointer is an empty document, not a crash.
        // SAFETY: null is allowed by the contract.
        let out = unsafe { render_json(std::ptr::null(), 0, |_| Ok::<_, String>("x")) };
        assert_eq!(out.status, STATUS_ERROR);
        // SAFETY: built by `output`, freed once.
        unsafe { free_output(out.data, out.len) };
    }

    #[test]
    fn string_checks() {
        const S: [u8; 3] = nul_terminated("ok");
        assert_eq!(&S, b"ok\0");
        assert!(is_valid_format_id("openmetrics"));
        assert!(is_valid_format_id("my-format_2.v1"));
        assert!(!is_valid_format_id(""));
        assert!(!is_valid_format_id("OpenMetrics"));
        assert!(!is_valid_format_id("-x"));
        assert!(!is_valid_format_id("a b"));
        assert!(is_valid_extension("prom"));
        assert!(is_valid_extension("tar.gz"));
        assert!(!is_valid_extension(".prom"));
        assert!(!is_valid_extension("a/b"));
    }
}
