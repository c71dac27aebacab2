//! A hand-written plugin (no macro) whose render misbehaves according to the session name,
//! and which counts its live allocations so that tests can check the host frees them all.

use std::sync::atomic::{AtomicIsize, Ordering};

use heimdall_perf_plugin::abi::{
    RenderOutput, SinkDescriptor, ABI_VERSION, DESCRIPTOR_SIZE, STATUS_ERROR, STATUS_OK,
};
use heimdall_perf_plugin::export::{free_output, output, parse_report};

static OUTSTANDING: AtomicIsize = AtomicIsize::new(0);

fn counted(status: u32, bytes: Vec<u8>) -> RenderOutput {
    OUTSTANDING.fetch_add(1, Ordering::SeqCst);
    output(status, bytes)
}

fn raw(status: u32, data: *mut u8, len: usize) -> RenderOutput {
    RenderOutput { status, data, len }
}

unsafe extern "C" fn render(report_json: *const u8, report_len: usize) -> RenderOutput {
    let json: &[u8] = if report_json.is_null() {
        &[]
    } else {
        // SAFETY: the host passes `report_len` readable bytes at `report_json` for the call.
        unsafe { std::slice::from_raw_parts(report_json, report_len) }
    };
    let name = match parse_report(json) {
        Ok(r) => r.session.name,
        Err(e) => return counted(STATUS_ERROR, e.into_bytes()),
    };
    match name.as_str() {
        "invalid-utf8" => counted(STATUS_OK, vec![b'o', b'k', 0xff, 0xfe]),
        "null" => raw(STATUS_OK, std::ptr::null_mut(), 0),
        "null-with-length" => raw(STATUS_OK, std::ptr::null_mut(), 5),
        "empty" => counted(STATUS_OK, Vec::new()),
        "error" => counted(STATUS_ERROR, b"disk quota exceeded".to_vec()),
        "error-not-utf8" => counted(STATUS_ERROR, vec![b'b', b'a', b'd', 0xc3]),
        "error-silent" => raw(STATUS_ERROR, std::ptr::null_mut(), 0),
        "unknown-status" => counted(42, b"what".to_vec()),
        other => counted(STATUS_OK, format!("fine: {other}").into_bytes()),
    }
}

unsafe extern "C" fn free(data: *mut u8, len: usize) {
    if !data.is_null() {
        OUTSTANDING.fetch_sub(1, Ordering::SeqCst);
    }
    // SAFETY: the host returns exactly what `render` built with `output`, once.
    unsafe { free_output(data, len) }
}

static DESCRIPTOR: SinkDescriptor = SinkDescriptor {
    abi_version: ABI_VERSION,
    descriptor_size: DESCRIPTOR_SIZE,
    name: c"bad output fixture".as_ptr(),
    format_id: c"badoutput".as_ptr(),
    file_extension: c"txt".as_ptr(),
    render: Some(render),
    free: Some(free),
};

/// The entry point.
#[unsafe(no_mangle)]
pub extern "C" fn heimdall_perf_report_sink() -> *const SinkDescriptor {
    &DESCRIPTOR
}

/// Allocations handed to the host and not yet freed (for the tests).
#[unsafe(no_mangle)]
pub extern "C" fn heimdall_fixture_outstanding() -> isize {
    OUTSTANDING.load(Ordering::SeqCst)
}
