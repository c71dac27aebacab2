//! The kept-open `/proc` descriptors of the system source against a hostile process: one
//! that forks workers (the child inherits the source, whose `/proc/self/…` descriptors
//! name the parent), and one whose code closes descriptors it does not know about (a
//! daemonizing library closing fds 3..1024) and opens others that get the same numbers.
//!
//! Through the public API only (`SystemSource::read_with`); the kept descriptors are found
//! through `/proc/self/fd`. The tests change this process's descriptor table, so they run
//! one at a time (`serial`).
#![cfg(target_os = "linux")]

mod common;

use common::{fds, is_open, new_fd_naming, reuse, round, serial};

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::AsRawFd;
use std::process::{Child, Command};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use heimdall_perf_core::series_names as sn;
use heimdall_perf_system::{Figures, SystemSource};

/// `Threads` of `/proc/self/status`.
fn threads_now() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A round of `source`, and the fewest and most threads this process had just before and
/// just after it (the test harness may start or end a thread meanwhile: the threads of the
/// other tests, waiting for `serial`).
fn round_and_threads(
    source: &mut SystemSource,
) -> (BTreeMap<String, f64>, Vec<String>, (f64, f64)) {
    let before = threads_now();
    let (values, failed) = round(source);
    let after = threads_now();
    (values, failed, (before.min(after), before.max(after)))
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total() -> f64 {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    kib * 1024.0
}

/// Threads that wait until the returned sender is dropped.
fn extra_threads(n: usize) -> (mpsc::Sender<()>, Vec<thread::JoinHandle<()>>) {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = std::sync::Arc::new(Mutex::new(rx));
    let handles = (0..n)
        .map(|_| {
            let rx = std::sync::Arc::clone(&rx);
            thread::spawn(move || {
                let _ = rx.lock().unwrap().recv();
            })
        })
        .collect();
    (tx, handles)
}

/// A process of one thread, sleeping.
fn sleeper() -> Child {
    Command::new("sleep").arg("30").spawn().unwrap()
}

/// A worker forked from a process whose system source has run: the child's rounds report
/// the child (one thread, its own size), not the parent, and its first round is the
/// baseline of its rates (none measured across the fork from the parent's counters).
#[test]
fn a_forked_child_reports_its_own_figures() {
    let _serial = serial();
    let (stop, handles) = extra_threads(6);
    let mut source = SystemSource::with_figures(Figures::none().with_process(true));
    round(&mut source);
    thread::sleep(Duration::from_millis(20));
    let (parent, _) = round(&mut source);
    assert!(parent[sn::PROCESS_THREADS] >= 7.0, "{parent:?}");
    assert!(parent.contains_key(sn::PROCESS_CPU));

    // SAFETY: the child only reads files, allocates (glibc's malloc is fork-safe) and
    // leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let (child, _) = round(&mut source);
        let code = if child.get(sn::PROCESS_THREADS) != Some(&1.0) {
            2
        } else if child.contains_key(sn::PROCESS_CPU) || child.contains_key(sn::PROCESS_DISK_READ) {
            3
        } else {
            thread::sleep(Duration::from_millis(20));
            let (child, _) = round(&mut source);
            if child.get(sn::PROCESS_THREADS) == Some(&1.0) && child.contains_key(sn::PROCESS_CPU) {
                0
            } else {
                4
            }
        };
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child status {status}");
    match libc::WEXITSTATUS(status) {
        0 => {}
        2 => panic!("the child reported another process's thread count (its parent's)"),
        3 => panic!("the child's first round measured rates from its parent's counters"),
        4 => panic!("the child's second round did not report its own figures with a rate"),
        c => panic!("child exit code {c}"),
    }
    drop(stop);
    for h in handles {
        h.join().unwrap();
    }
    // The parent's source goes on reading the parent.
    let (values, _) = round(&mut source);
    assert!(values[sn::PROCESS_THREADS] >= 1.0);
}

/// `VmSize` of `/proc/self/status`, in bytes.
fn virtual_now() -> f64 {
    common::proc_status("VmSize").unwrap() as f64
}

/// The numbers of the kept descriptors that name this process (`/proc/self/task`, whose
/// links count the threads, and `/proc/self/statm`, the sizes) are closed and reused for
/// another process's (a supervisor's look at its worker): the source notices each
/// descriptor is no longer its file and reads this process again, not the other's figures
/// (same format, plausible numbers). It never closes a descriptor that is not its own, not
/// even when dropped.
#[test]
fn kept_descriptors_reused_for_another_process_s_files_are_not_read() {
    let _serial = serial();
    let (stop, handles) = extra_threads(4);
    let before = fds();
    let mut source = SystemSource::with_figures(Figures::none().with_process(true));
    let pid = std::process::id();
    let task_fd = new_fd_naming(&before, &format!("/proc/{pid}/task"));
    let statm_fd = new_fd_naming(&before, &format!("/proc/{pid}/statm"));
    round(&mut source);

    let mut other = sleeper();
    let other_task = format!("/proc/{}/task", other.id());
    let other_statm = format!("/proc/{}/statm", other.id());
    reuse(task_fd, std::fs::File::open(&other_task).unwrap());
    reuse(statm_fd, std::fs::File::open(&other_statm).unwrap());
    assert_eq!(fds()[&task_fd], other_task);
    assert_eq!(fds()[&statm_fd], other_statm);

    for _ in 0..2 {
        let (values, failed, threads) = round_and_threads(&mut source);
        assert!(threads.0 >= 5.0);
        assert!(
            values
                .get(sn::PROCESS_THREADS)
                .is_some_and(|&n| threads.0 <= n && n <= threads.1),
            "read the other process's thread count: {values:?}, {threads:?} threads here; \
             failed {failed:?}"
        );
        // `sleep` maps a few MiB; this test binary, with its threads' stacks, far more.
        let size = values[sn::PROCESS_MEMORY_VIRTUAL];
        assert!(
            (size - virtual_now()).abs() < 16.0 * 1024.0 * 1024.0,
            "read the other process's size: {size} bytes, {} here",
            virtual_now()
        );
    }
    for (fd, path) in [(task_fd, &other_task), (statm_fd, &other_statm)] {
        assert!(
            is_open(fd) && &fds()[&fd] == path,
            "the reused descriptor {fd} was closed or replaced by the source"
        );
    }

    drop(source);
    for (fd, path) in [(task_fd, &other_task), (statm_fd, &other_statm)] {
        assert!(
            is_open(fd) && &fds()[&fd] == path,
            "dropping the source closed a descriptor that was no longer its own"
        );
        // SAFETY: the test's own descriptor.
        unsafe { libc::close(fd) };
    }
    other.kill().unwrap();
    other.wait().unwrap();
    drop(stop);
    for h in handles {
        h.join().unwrap();
    }
}

/// A library closes every descriptor it does not know about, and the program then opens a
/// file that gets the number of the kept `/proc/meminfo` (the lowest free): a file of the
/// same format (a container's meminfo view, a test fixture) is not read as the machine's
/// memory; the source reads `/proc/meminfo` again and leaves the other file open.
#[test]
fn a_kept_descriptor_closed_and_reused_for_a_file_of_the_same_format_is_not_read() {
    let _serial = serial();
    let before = fds();
    let mut source = SystemSource::with_figures(Figures::none().with_memory(true));
    let mem_fd = new_fd_naming(&before, "/proc/meminfo");
    let (values, _) = round(&mut source);
    assert_eq!(values[sn::SYSTEM_MEMORY_TOTAL], mem_total());

    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("meminfo");
    std::fs::write(
        &fake,
        "MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     500 kB\n\
         SwapTotal:          0 kB\nSwapFree:           0 kB\n",
    )
    .unwrap();
    // The close-everything library, then an open that may well get the same number.
    // SAFETY: closes the source's descriptor behind its back, which is the point.
    unsafe { libc::close(mem_fd) };
    let file = std::fs::File::open(&fake).unwrap();
    if file.as_raw_fd() == mem_fd {
        std::mem::forget(file);
    } else {
        reuse(mem_fd, file);
    }
    let fake_name = fake.to_string_lossy().into_owned();
    assert_eq!(fds()[&mem_fd], fake_name);

    let (values, failed) = round(&mut source);
    assert_eq!(
        values.get(sn::SYSTEM_MEMORY_TOTAL),
        Some(&mem_total()),
        "read the other file as /proc/meminfo; failed {failed:?}"
    );
    assert!(is_open(mem_fd) && fds()[&mem_fd] == fake_name);
    drop(source);
    assert!(
        is_open(mem_fd) && fds()[&mem_fd] == fake_name,
        "dropping the source closed a descriptor that was no longer its own"
    );
    // SAFETY: the test's own descriptor.
    unsafe { libc::close(mem_fd) };

    // Closed and not reused: the next round opens the file again.
    let before = fds();
    let mut source = SystemSource::with_figures(Figures::none().with_memory(true));
    let mem_fd = new_fd_naming(&before, "/proc/meminfo");
    // SAFETY: as above.
    unsafe { libc::close(mem_fd) };
    let (values, _) = round(&mut source);
    assert_eq!(values.get(sn::SYSTEM_MEMORY_TOTAL), Some(&mem_total()));
    let after: BTreeSet<String> = fds().into_values().collect();
    assert!(after.contains("/proc/meminfo"));
}
