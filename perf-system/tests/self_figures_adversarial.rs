//! This process's figures (sizes from a kept `/proc/self/statm`, threads from the link
//! count of a kept `/proc/self/task`, storage bytes from `getrusage`) and `/proc/net/dev`
//! read in one `pread` a round, against a hostile process: hundreds of threads, threads
//! that come and go while the source is made and read, forked children (one of them pid 1
//! of a new pid namespace, as its parent is), descriptors closed behind the source's back
//! and their numbers reused for the same file by other code, a `/proc/net/dev` of several
//! pages.
//!
//! Through the public API only (`SystemSource::read_with`). Tests that need a namespace of
//! their own run this binary again on one test, under `unshare` (`-n`: a network
//! namespace, `-p -f`: a pid namespace), with `SELF_FIG_ADV_CHILD` set: as root, or
//! without root inside a user namespace of their own (`--user --map-root-user`); where
//! neither is allowed they fail, not skip. The tests change this process's
//! threads and descriptors, so they run one at a time (`serial`).
#![cfg(target_os = "linux")]

mod common;

use common::{fds, is_open, new_fd_naming, reuse, round, serial};

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use heimdall_perf_core::series_names as sn;
use heimdall_perf_system::{Figures, SystemSource};

const CHILD_ENV: &str = "SELF_FIG_ADV_CHILD";

fn process_source() -> SystemSource {
    SystemSource::with_figures(Figures::none().with_process(true))
}

/// A field of `/proc/self/status` (`Threads`, `VmSize`, `VmRSS`), in bytes for `kB`.
fn status(field: &str) -> f64 {
    common::proc_status(field).unwrap_or_else(|| panic!("no {field} in /proc/self/status")) as f64
}

/// A round, and the least and most of the `/proc/self/status` field `field` just before
/// and just after it.
fn round_between(
    source: &mut SystemSource,
    field: &str,
) -> (BTreeMap<String, f64>, Vec<String>, (f64, f64)) {
    let before = status(field);
    let (values, failed) = round(source);
    let after = status(field);
    (values, failed, (before.min(after), before.max(after)))
}

/// `n` threads parked until the returned flag is set and they are unparked.
struct Parked {
    stop: Arc<AtomicBool>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Parked {
    fn new(n: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..n)
            .map(|_| {
                let stop = Arc::clone(&stop);
                thread::Builder::new()
                    .stack_size(64 << 10)
                    .spawn(move || {
                        while !stop.load(Ordering::Acquire) {
                            thread::park();
                        }
                    })
                    .unwrap()
            })
            .collect();
        Parked { stop, handles }
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for h in self.handles.drain(..) {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

/// Runs this binary's test `name` alone under `wrapper` (a command that runs the rest of
/// its arguments, `unshare -n` say) with `CHILD_ENV=mode`; returns its output, failing if
/// the child failed or did not run the test.
fn run_alone_under(wrapper: &[&str], name: &str, mode: &str) -> String {
    // Without root, `unshare` makes the namespaces inside a user namespace of its own,
    // where this user is root (the kernel allows it unless unprivileged user namespaces
    // are turned off; the test then fails with `unshare`'s message, it is not skipped).
    // SAFETY: geteuid only reads this process's effective user.
    let root = unsafe { libc::geteuid() } == 0;
    let mut wrapper = wrapper.to_vec();
    if !root && wrapper.first() == Some(&"unshare") {
        wrapper.splice(1..1, ["--user", "--map-root-user"]);
    }
    heimdall_perf_testkit::child::run_test_alone_under(&wrapper, name, CHILD_ENV, mode)
}

// ---------------------------------------------------------------------------------------
// Threads.

/// A process of hundreds of threads, some ended between rounds: the link count of the
/// kept `/proc/self/task` gives exactly the count of `/proc/self/status` each round (the
/// kernel's count, not a capped or stale one), and the source really counts through that
/// directory here (its descriptor is kept), not through the `/proc/self/stat` fallback.
#[test]
fn hundreds_of_threads_are_counted_exactly() {
    let _serial = serial();
    let _many = Parked::new(300);
    let before = fds();
    let mut source = process_source();
    let pid = std::process::id();
    new_fd_naming(&before, &format!("/proc/{pid}/task"));
    assert!(
        !fds().values().any(|t| *t == format!("/proc/{pid}/stat")),
        "the source kept /proc/self/stat: it did not take the task directory's links"
    );
    let mut more = None;
    for (stage, least) in [(300, 301.0), (500, 501.0), (300, 301.0)] {
        let (values, failed, (lo, hi)) = round_between(&mut source, "Threads");
        assert!(
            lo >= least,
            "{stage} extra: {lo} threads by /proc/self/status"
        );
        let n = values.get(sn::PROCESS_THREADS).copied();
        assert!(
            n.is_some_and(|n| lo <= n && n <= hi),
            "{stage} extra: {n:?} threads, /proc/self/status says {lo}..={hi}; \
             failed {failed:?}"
        );
        // 200 more for the next round, then ended again for the last.
        more = match more {
            None => Some(Parked::new(200)),
            Some(_) => None,
        };
    }
}

/// Threads starting and ending all the time (a pool that grows and shrinks, a library
/// spawning short-lived workers) while sources are made (the link count is checked
/// against `/proc/self/stat` then) and read: every count is the process's count at some
/// instant of the round, within one churning thread of the `/proc/self/status` counts
/// just before and after, never off by the directory's own two links, never 0.
#[test]
fn threads_churning_while_sources_are_made_and_read_are_counted() {
    let _serial = serial();
    let _base = Parked::new(8);
    let stop = Arc::new(AtomicBool::new(false));
    // One churning thread that starts and joins one short-lived thread after another: at
    // any instant, this process has one more thread or not.
    let churn = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                thread::spawn(|| std::hint::black_box(0)).join().unwrap();
                n += 1;
            }
            n
        })
    };
    let deadline = Instant::now() + Duration::from_millis(1500);
    let (mut sources, mut rounds) = (0, 0);
    while Instant::now() < deadline || sources < 20 {
        let before = status("Threads");
        let mut source = process_source();
        sources += 1;
        for _ in 0..10 {
            let (values, failed, (lo, hi)) = round_between(&mut source, "Threads");
            let (lo, hi) = (lo.min(before) - 1.0, hi + 1.0);
            rounds += 1;
            let n = values.get(sn::PROCESS_THREADS).copied();
            assert!(
                n.is_some_and(|n| lo <= n && n <= hi),
                "source {sources}, round {rounds}: {n:?} threads, /proc/self/status said \
                 {lo}..={hi} (one churning thread either way); failed {failed:?}"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let spawned = churn.join().unwrap();
    assert!(spawned > 50, "only {spawned} short-lived threads: no churn");
}

/// A child forked from a process of many threads and a large mapping, which unmaps the
/// mapping: its first round reports its own one thread and its own sizes (a virtual size
/// 1 GiB below its parent's), not the parent's through the inherited descriptors.
#[test]
fn a_forked_child_reports_its_own_threads_and_sizes() {
    let _serial = serial();
    let _threads = Parked::new(40);
    let mut source = process_source();
    let big = Mapping::new(1 << 30);
    let (parent, _, (lo, hi)) = round_between(&mut source, "Threads");
    assert!(parent[sn::PROCESS_THREADS] >= lo && parent[sn::PROCESS_THREADS] <= hi);
    let report = in_forked_child(|| {
        big.unmap();
        child_report(&mut source)
    });
    check_child_report(&report);
    // The parent's source still reads the parent.
    let (values, failed, (lo, hi)) = round_between(&mut source, "Threads");
    let n = values[sn::PROCESS_THREADS];
    assert!(lo <= n && n <= hi, "{n} vs {lo}..={hi}; failed {failed:?}");
}

/// The same, where the process is pid 1 of its pid namespace (the main process of a
/// container) and forks its child into a new pid namespace (a sandboxed worker), where the
/// child is pid 1 too: `getpid()` is 1 in both, so a pid comparison does not tell them
/// apart, and the inherited descriptors still name the parent's `statm` and `task`.
#[test]
fn a_child_that_is_pid_1_like_its_parent_reports_its_own_figures() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("pid1") {
        // This binary again, as pid 1 of a new pid namespace (`unshare -p -f`).
        assert_eq!(std::process::id(), 1, "not pid 1 of a new pid namespace");
        let _threads = Parked::new(40);
        let mut source = process_source();
        let big = Mapping::new(1 << 30);
        let (parent, _, (lo, hi)) = round_between(&mut source, "Threads");
        assert!(parent[sn::PROCESS_THREADS] >= lo && parent[sn::PROCESS_THREADS] <= hi);
        // The next child of this thread is pid 1 of a new namespace.
        // SAFETY: unshare changes only where this thread's next children go.
        let r = unsafe { libc::unshare(libc::CLONE_NEWPID) };
        assert_eq!(
            r,
            0,
            "unshare(CLONE_NEWPID): {}",
            std::io::Error::last_os_error()
        );
        let report = in_forked_child(|| {
            if std::process::id() != 1 {
                return format!("child pid {}, not 1", std::process::id());
            }
            big.unmap();
            child_report(&mut source)
        });
        println!("child of pid 1, pid 1 itself: {report}");
        check_child_report(&report);
        return;
    }
    let _serial = serial();
    run_alone_under(
        &["unshare", "--pid", "--fork", "--"],
        "a_child_that_is_pid_1_like_its_parent_reports_its_own_figures",
        "pid1",
    );
}

/// An anonymous `PROT_NONE` mapping (virtual size only).
struct Mapping {
    addr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> Self {
        // SAFETY: a fresh anonymous mapping, used only through `unmap`.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED);
        Mapping { addr, len }
    }

    fn unmap(&self) {
        // SAFETY: the mapping made by `new`, never used otherwise (unmapped in a child).
        assert_eq!(unsafe { libc::munmap(self.addr, self.len) }, 0);
    }
}

/// A round of a forked child, as `threads=<reported>/<own> virtual=<reported>/<own>`, or
/// what went wrong.
fn child_report(source: &mut SystemSource) -> String {
    let (values, failed) = round(source);
    let own_threads = status("Threads");
    let own_virtual = status("VmSize");
    match (
        values.get(sn::PROCESS_THREADS),
        values.get(sn::PROCESS_MEMORY_VIRTUAL),
    ) {
        (Some(t), Some(v)) => format!("threads={t}/{own_threads} virtual={v}/{own_virtual}"),
        _ => format!("no figures: {values:?}, failed {failed:?}"),
    }
}

fn check_child_report(report: &str) {
    let parse = |key: &str| -> (f64, f64) {
        let field = report
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("child: {report}"));
        let (a, b) = field.split_once('/').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    let (threads, own_threads) = parse("threads=");
    assert_eq!(own_threads, 1.0, "child: {report}");
    assert_eq!(
        threads, 1.0,
        "the child reported its parent's thread count: {report}"
    );
    let (size, own_size) = parse("virtual=");
    assert!(
        (size - own_size).abs() < 64.0 * 1048576.0,
        "the child reported its parent's virtual size (1 GiB more than its own): {report}"
    );
}

/// Runs `f` in a forked child and returns the text it gave (through a pipe).
fn in_forked_child(f: impl FnOnce() -> String) -> String {
    let mut pipe = [0i32; 2];
    // SAFETY: pipe writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: the child reads files, allocates (glibc's malloc is fork-safe), writes to the
    // pipe and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let text = f();
        // SAFETY: writes the child's own buffer to its end of the pipe, then ends the
        // child without the parent's atexit handlers.
        unsafe {
            libc::write(pipe[1], text.as_ptr().cast(), text.len());
            libc::_exit(0);
        }
    }
    // SAFETY: the parent's copy of the write end.
    unsafe { libc::close(pipe[1]) };
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );
    let mut buf = vec![0u8; 4096];
    // SAFETY: reads into the buffer, at most its length.
    let n = unsafe { libc::read(pipe[0], buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: the parent's read end.
    unsafe { libc::close(pipe[0]) };
    assert!(n > 0, "the child said nothing");
    String::from_utf8_lossy(&buf[..n as usize]).into_owned()
}

// ---------------------------------------------------------------------------------------
// Descriptors.

/// The kept `/proc/self/task` and `/proc/self/statm` closed behind the source's back
/// (numbers not reused): the next round opens them again and gives this process's figures.
#[test]
fn closed_kept_descriptors_are_opened_again() {
    let _serial = serial();
    let _threads = Parked::new(5);
    let before = fds();
    let mut source = process_source();
    let pid = std::process::id();
    let task = new_fd_naming(&before, &format!("/proc/{pid}/task"));
    let statm = new_fd_naming(&before, &format!("/proc/{pid}/statm"));
    round(&mut source);
    for fd in [task, statm] {
        // SAFETY: closes the source's descriptors behind its back, which is the point.
        unsafe { libc::close(fd) };
    }
    let before = fds();
    let (values, failed, (lo, hi)) = round_between(&mut source, "Threads");
    let n = values.get(sn::PROCESS_THREADS).copied();
    assert!(
        n.is_some_and(|n| lo <= n && n <= hi),
        "{n:?} vs {lo}..={hi}; failed {failed:?}"
    );
    let size = values[sn::PROCESS_MEMORY_VIRTUAL];
    assert!((size - status("VmSize")).abs() < 16.0 * 1048576.0);
    new_fd_naming(&before, &format!("/proc/{pid}/task"));
    new_fd_naming(&before, &format!("/proc/{pid}/statm"));
}

/// A daemonizing library closes every descriptor it does not know (the source's kept ones
/// among them), and other code of the program then opens the very same file for its own
/// use and gets the same number (the lowest free). The source may read through it (same
/// file, same text), but the number is that code's now: the source must not close it —
/// neither when it is dropped, nor ever after. Else that code's next read fails with
/// `EBADF`, or, once the number is reused again, reads another file, and its own `close`
/// closes someone else's descriptor.
#[test]
fn a_number_reused_by_other_code_for_the_same_file_is_never_closed_by_the_source() {
    let _serial = serial();
    let pid = std::process::id();
    let cases: [(Figures, String); 3] = [
        (Figures::none().with_memory(true), "/proc/meminfo".into()),
        (
            Figures::none().with_process(true),
            format!("/proc/{pid}/statm"),
        ),
        (
            Figures::none().with_process(true),
            format!("/proc/{pid}/task"),
        ),
    ];
    let mut closed = Vec::new();
    for (figures, path) in cases {
        let before = fds();
        let mut source = SystemSource::with_figures(figures);
        let fd = new_fd_naming(&before, &path);
        round(&mut source);
        // The library's close, then the other code's open of the same file at that number.
        // SAFETY: closes the source's descriptor behind its back, which is the point.
        unsafe { libc::close(fd) };
        reuse(fd, std::fs::File::open(&path).unwrap());
        let (_, failed) = round(&mut source);
        assert!(failed.is_empty(), "{path}: failed {failed:?}");
        drop(source);
        if is_open(fd) && fds().get(&fd) == Some(&path) {
            // SAFETY: the other code's descriptor, closed by its owner.
            unsafe { libc::close(fd) };
        } else {
            closed.push(format!("{path} (descriptor {fd})"));
        }
    }
    assert!(
        closed.is_empty(),
        "dropping the source closed descriptors that other code had opened for the same \
         file at the numbers it had kept: {closed:?}"
    );
}

/// The same, where the other code's descriptor of the same file cannot be read (opened
/// `O_PATH`, to `fstat` it or as a directory handle): the source's `pread` fails, and the
/// source must open its own descriptor, not close that code's.
#[test]
fn a_number_reused_for_an_unreadable_open_of_the_same_file_is_not_closed() {
    let _serial = serial();
    let pid = std::process::id();
    let path = format!("/proc/{pid}/statm");
    let before = fds();
    let mut source = process_source();
    let fd = new_fd_naming(&before, &path);
    round(&mut source);
    let cpath = std::ffi::CString::new(path.as_bytes()).unwrap();
    // SAFETY: opens a path handle of a NUL-terminated path.
    let other = unsafe { libc::open(cpath.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    assert!(other >= 0);
    // SAFETY: the source's number now names the other code's path handle.
    assert_eq!(unsafe { libc::dup2(other, fd) }, fd);
    // SAFETY: the duplicate's original.
    unsafe { libc::close(other) };
    let (values, failed) = round(&mut source);
    assert!(failed.is_empty(), "failed {failed:?}");
    assert!((values[sn::PROCESS_MEMORY_VIRTUAL] - status("VmSize")).abs() < 16.0 * 1048576.0);
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    let still_other = flags != -1 && flags & libc::O_PATH != 0;
    drop(source);
    // SAFETY: as above.
    let flags_after = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    let still_other_after = flags_after != -1 && flags_after & libc::O_PATH != 0;
    if still_other_after {
        // SAFETY: the other code's descriptor, closed by its owner.
        unsafe { libc::close(fd) };
    }
    assert!(
        still_other,
        "the round closed the other code's O_PATH descriptor {fd} of {path} (flags now \
         {flags:#x}, names {:?})",
        fds().get(&fd)
    );
    assert!(
        still_other_after,
        "dropping the source closed the other code's O_PATH descriptor {fd}"
    );
}

// ---------------------------------------------------------------------------------------
// Sizes and storage.

/// A 64 GiB reservation (no memory behind it) and 48 MiB touched: the virtual size and the
/// resident set follow, within what `/proc/self/status` says just before and after.
#[test]
fn sizes_follow_a_huge_reservation_and_touched_pages() {
    let _serial = serial();
    let mut source = process_source();
    let (v0, ..) = round(&mut source);
    let big = Mapping::new(64 << 30);
    let (values, _, (lo, hi)) = round_between(&mut source, "VmSize");
    let size = values[sn::PROCESS_MEMORY_VIRTUAL];
    assert!(
        lo <= size && size <= hi,
        "virtual {size} vs VmSize {lo}..={hi}"
    );
    assert!(size - v0[sn::PROCESS_MEMORY_VIRTUAL] >= (64u64 << 30) as f64 - 64e6);
    big.unmap();
    let touched: Vec<u8> = vec![1; 48 << 20];
    std::hint::black_box(&touched);
    let (values, _, (lo, hi)) = round_between(&mut source, "VmRSS");
    let rss = values[sn::PROCESS_MEMORY_RESIDENT];
    assert!(
        lo <= rss && rss <= hi,
        "resident {rss} vs VmRSS {lo}..={hi}"
    );
    assert!(rss >= 48.0 * 1048576.0);
}

/// `read_bytes` and `write_bytes` of `/proc/self/io`.
fn proc_io() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/self/io").unwrap();
    let get = |key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (get("read_bytes:"), get("write_bytes:"))
}

/// 8 MiB written and synced by a thread that then ends (its counters go to the process's
/// dead-thread totals), and 4 MiB read back past the page cache (`O_DIRECT`) by this one:
/// the disk rates of the next round, times the time between the two rounds (bracketed by
/// the clock read around them), are the bytes `/proc/self/io` counted meanwhile.
#[test]
fn disk_bytes_are_those_of_proc_self_io_across_a_synced_write_and_a_direct_read() {
    let _serial = serial();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("data");
    let mut source = process_source();
    round(&mut source);
    let t0 = Instant::now();
    round(&mut source);
    let t1 = Instant::now();
    let (r0, w0) = proc_io();

    let writer_path = path.clone();
    thread::spawn(move || {
        let mut f = std::fs::File::create(&writer_path).unwrap();
        let block = vec![0xa5u8; 1 << 20];
        for _ in 0..8 {
            f.write_all(&block).unwrap();
        }
        f.sync_all().unwrap();
    })
    .join()
    .unwrap();
    {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .unwrap();
        let layout = std::alloc::Layout::from_size_align(1 << 20, 4096).unwrap();
        // SAFETY: a non-zero layout; freed below with the same layout.
        let buf = unsafe { std::alloc::alloc(layout) };
        assert!(!buf.is_null());
        for i in 0..4u64 {
            // SAFETY: reads into the aligned 1 MiB buffer allocated above.
            let n = unsafe {
                libc::pread(f.as_raw_fd(), buf.cast(), 1 << 20, (i << 20) as libc::off_t)
            };
            assert_eq!(n, 1 << 20, "{}", std::io::Error::last_os_error());
        }
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(buf, layout) };
    }
    let (r1, w1) = proc_io();
    let t2 = Instant::now();
    let (values, failed) = round(&mut source);
    let t3 = Instant::now();
    let (read, written) = (r1 - r0, w1 - w0);
    assert!(
        written >= 8.0 * 1048576.0,
        "kernel counted {written} written"
    );
    assert!(read >= 4.0 * 1048576.0, "kernel counted {read} read");
    // The rates' time lies between the end of the one round and the start of the other,
    // and the start of the one and the end of the other.
    let (short, long) = (
        (t2 - t1).as_secs_f64() * (1.0 - 1e-9),
        (t3 - t0).as_secs_f64() * (1.0 + 1e-9),
    );
    for (name, kernel) in [
        (sn::PROCESS_DISK_READ, read),
        (sn::PROCESS_DISK_WRITE, written),
    ] {
        let rate = values
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("no {name}; failed {failed:?}"));
        assert!(
            rate * short <= kernel + 1.0 && kernel <= rate * long + 1.0,
            "{name}: {rate} B/s over {short}..{long} s is {}..{} bytes; /proc/self/io \
             counted {kernel}",
            rate * short,
            rate * long
        );
    }
}

// ---------------------------------------------------------------------------------------
// /proc/net/dev of several pages.

/// Interfaces of `/proc/net/dev`, read to its end with ordinary reads, and its length.
fn proc_net_dev() -> (BTreeSet<String>, usize) {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap();
    let names = text
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split_once(':')?.0.trim().to_string()))
        .collect();
    (names, text.len())
}

/// Two rounds of a network source: the interfaces the second gave both series of; no
/// other network series, no failure.
fn reported_interfaces(source: &mut SystemSource) -> BTreeSet<String> {
    round(source);
    let (values, failed) = round(source);
    assert!(failed.is_empty(), "failed {failed:?}");
    let mut rx = BTreeSet::new();
    let mut tx = BTreeSet::new();
    for name in values.keys() {
        let iface = name.strip_prefix(sn::NETWORK_PREFIX).unwrap();
        if let Some(i) = iface.strip_suffix(".rx") {
            rx.insert(i.to_string());
        } else if let Some(i) = iface.strip_suffix(".tx") {
            tx.insert(i.to_string());
        } else {
            panic!("odd series {name}");
        }
    }
    assert_eq!(rx, tx);
    rx
}

/// Runs `ip -batch -` on `commands`.
fn ip_batch(commands: &str) {
    let mut child = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("ip");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(commands.as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "ip -batch failed on:\n{commands}");
}

/// In a network namespace of its own, interfaces are added a few at a time until
/// `/proc/net/dev` spans four pages (names of 2 to 15 bytes, so that the pages end at
/// every place of a line), then every other one is removed: after each change, one source
/// kept all along and one made anew report every interface that a read to the end of the
/// file lists, each once (a series twice in a round fails `round`), and no other.
#[test]
fn a_proc_net_dev_of_several_pages_gives_every_interface_once() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("netns") {
        let (names, _) = proc_net_dev();
        assert_eq!(
            names,
            BTreeSet::from(["lo".to_string()]),
            "not a new network namespace"
        );
        let figures = Figures::none().with_network(true);
        let mut kept = SystemSource::with_figures(figures);
        let mut created = Vec::new();
        let mut checks = 0;
        let check = |kept: &mut SystemSource, what: &str| {
            let (expected, _) = proc_net_dev();
            assert_eq!(reported_interfaces(kept), expected, "kept source, {what}");
            let mut fresh = SystemSource::with_figures(figures);
            assert_eq!(
                reported_interfaces(&mut fresh),
                expected,
                "new source, {what}"
            );
        };
        let mut k = 0usize;
        while proc_net_dev().1 <= 4 * 4096 + 600 {
            let mut batch = String::new();
            for _ in 0..5 {
                // 2..=15 bytes: "n<k>" padded with 'x'.
                let mut name = format!("n{k}");
                let len = 2 + (k * 5) % 14;
                while name.len() < len {
                    name.push('x');
                }
                batch.push_str(&format!("link add {name} type bridge\n"));
                created.push(name);
                k += 1;
            }
            ip_batch(&batch);
            check(&mut kept, &format!("{} interfaces", created.len() + 1));
            checks += 1;
        }
        let (names, len) = proc_net_dev();
        assert!(len > 4 * 4096, "only {len} bytes");
        println!("{} interfaces, {len} bytes, {checks} checks", names.len());
        let mut batch = String::new();
        for name in created.iter().step_by(2) {
            batch.push_str(&format!("link delete {name}\n"));
        }
        ip_batch(&batch);
        check(&mut kept, "every other one removed");
        return;
    }
    let _serial = serial();
    let out = run_alone_under(
        &["unshare", "--net", "--"],
        "a_proc_net_dev_of_several_pages_gives_every_interface_once",
        "netns",
    );
    let summary = out.lines().find(|l| l.contains(" interfaces, "));
    println!("child: {summary:?}");
    assert!(summary.is_some(), "{out}");
}
