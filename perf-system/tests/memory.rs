//! Resident memory follows what the process allocates and touches. Alone in its test
//! binary (its own process), so no other test moves the RSS meanwhile.

mod common;

use std::time::Duration;

use common::{proc_status, session, wait_points};
use heimdall_perf_core::series_names as sn;

const MIB: f64 = 1024.0 * 1024.0;
const SIZE: usize = 256 << 20;

#[test]
fn resident_memory_rises_by_a_touched_allocation_and_agrees_with_vmrss() {
    let mut s = session("rss", Duration::from_millis(20));
    s.start_system_metrics().unwrap();
    let timeout = Duration::from_secs(60);

    let before = wait_points(&s, sn::PROCESS_MEMORY_RESIDENT, 3, timeout);
    assert!(before.len() >= 3, "no resident memory points: {before:?}");
    let base = before.last().unwrap().last;

    // Zeroed pages from the kernel are not resident until written: touch every page.
    let mut buf = vec![0u8; SIZE];
    for i in (0..SIZE).step_by(4096) {
        buf[i] = 1;
    }
    std::hint::black_box(&mut buf);
    // Two full rounds after the last page was touched.
    let n = common::points(&s, sn::PROCESS_MEMORY_RESIDENT).len();
    let grown = wait_points(&s, sn::PROCESS_MEMORY_RESIDENT, n + 2, timeout);
    let after = grown.last().unwrap().last;
    let vmrss = proc_status("VmRSS").expect("VmRSS in /proc/self/status") as f64;
    let vmsize = proc_status("VmSize").expect("VmSize in /proc/self/status") as f64;
    let virt = wait_points(&s, sn::PROCESS_MEMORY_VIRTUAL, 1, timeout);

    let rise = after - base;
    assert!(
        (rise - SIZE as f64).abs() < 24.0 * MIB,
        "resident rose by {:.1} MiB, expected about 256 MiB",
        rise / MIB
    );
    assert!(
        (after - vmrss).abs() < 8.0 * MIB,
        "series says {:.1} MiB, VmRSS says {:.1} MiB",
        after / MIB,
        vmrss / MIB
    );
    let virt = virt.last().unwrap().last;
    assert!(virt >= after, "virtual {virt} < resident {after}");
    assert!(
        (virt - vmsize).abs() < 64.0 * MIB,
        "series virtual {:.1} MiB, VmSize {:.1} MiB",
        virt / MIB,
        vmsize / MIB
    );

    // And it falls again once the memory is given back.
    drop(buf);
    // Points counted after the memory is given back: rounds taken while it was (or
    // before) would pass for rounds after it.
    let n = common::points(&s, sn::PROCESS_MEMORY_RESIDENT).len();
    let freed = wait_points(&s, sn::PROCESS_MEMORY_RESIDENT, n + 3, timeout);
    let last = freed.last().unwrap().last;
    assert!(
        after - last > 200.0 * MIB,
        "resident {:.1} MiB after free, {:.1} MiB before",
        last / MIB,
        after / MIB
    );
    s.stop();
    assert!(s.report().diagnostics.sampler_failures.is_empty());
}
