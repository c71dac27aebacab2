//! A plugin that claims an ABI version the host does not speak.

use heimdall_perf_plugin::abi::{SinkDescriptor, DESCRIPTOR_SIZE};

/// The ABI version this fixture claims.
pub const FIXTURE_ABI_VERSION: u32 = 999;

static DESCRIPTOR: SinkDescriptor = SinkDescriptor {
    abi_version: FIXTURE_ABI_VERSION,
    descriptor_size: DESCRIPTOR_SIZE,
    name: c"plugin from the future".as_ptr(),
    format_id: c"future".as_ptr(),
    file_extension: c"txt".as_ptr(),
    render: None,
    free: None,
};

/// The entry point, returning a descriptor of ABI version 999.
#[unsafe(no_mangle)]
pub extern "C" fn heimdall_perf_report_sink() -> *const SinkDescriptor {
    &DESCRIPTOR
}
