//! The figures read from `/proc` directly on Linux, instead of through sysinfo.
//!
//! Every file is opened once, when the source is built, and **kept open**: each round
//! re-reads it with a positioned read from offset 0 (`FileExt::read_at`, `pread`), which
//! makes the kernel generate the text afresh (a procfs seq file starts over on a read at
//! offset 0), and reads on until the end. An open and a close cost tens of µs of CPU in
//! rounds a second apart, when the kernel's and the sampler's caches are cold, and a
//! round reads five files (`cargo bench -p heimdall-perf-system --bench sample`,
//! `BENCH.md`). If a kept file cannot be read, it is opened again once; if that fails
//! too, the round falls back to sysinfo, as where these files do not exist. (The load
//! average is not read here: glibc's `getloadavg` is one `sysinfo(2)` call, cheaper than
//! even a kept-open `/proc/loadavg`.)
//!
//! * **system CPU** ([`ProcStat`], [`CpuState`]): the `cpu` lines of `/proc/stat`, usage
//!   computed from their jiffies the way sysinfo 0.38 computes `global_cpu_usage` and
//!   `cpu_usage` ([`CpuTimes::usage_since`]).
//! * **memory** ([`parse_meminfo`]): `/proc/meminfo`, with sysinfo's definitions of total,
//!   available, used and used swap.
//! * **network totals** ([`NetTotals`]): `/proc/net/dev` for every interface. sysinfo's
//!   `Networks::refresh` opens seven `/sys/class/net/<iface>/…` files per interface and
//!   asks the kernel for every address over netlink: about 0.4 ms of CPU a round on a host
//!   with four interfaces.
//! * **this process** ([`SelfFiles`]): virtual and resident size from `/proc/self/statm`,
//!   threads from the link count of `/proc/self/task`, storage bytes from `getrusage`,
//!   where sysinfo reads `stat`, `statm`, `status`, `io`, the task list and
//!   `/proc/uptime`.
//!
//! The parsers take text and give `None` (no figure, counted as failed) for a missing
//! line, a short line or a field that is not a number, never a made-up value.

#![cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]

use sysinfo::Networks;

/// A file kept open between rounds and read whole from offset 0 each time.
///
/// The descriptor is checked before each read, for it may no longer be the file opened:
///
/// * **closed behind the sampler's back, its number reused.** A daemonizing library closes
///   every descriptor from 3 up, and the next `open` of the program gets the lowest free
///   number: a `pread` would then read that other file — another process's
///   `/proc/<pid>/stat`, a container's copy of `meminfo` — whose text parses as well as
///   ours and would be reported as this process's or this machine's figures. The file's
///   identity (device and inode, one `fstat`) is compared with the one opened; a
///   descriptor that names something else (or nothing: closed) is let go **without being
///   closed** (the number is someone else's now) and the path opened again. Only a
///   descriptor reused for the very same file (another open of `/proc/meminfo`) passes
///   the check, and gives the same text; it is read, but never closed by the source,
///   which marks its own opens ([`mark`]). A reuse between the check and the read (another
///   thread's `close` and `open` in those few hundred nanoseconds) is not caught.
/// * **inherited by a forked child.** `/proc/self` names the process that opened it: in a
///   child, the kept `/proc/self/statm` still names the parent. A read in another process
///   than the one that opened the file opens it again; the process is told by its pid and
///   by the forks counted since ([`fork_generation`](crate::platform::fork_generation)), for a child forked into a pid
///   namespace of its own may have its parent's pid number (both pid 1).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Debug)]
pub(crate) struct KeptFile {
    path: std::path::PathBuf,
    /// `None` until opened, and after a failed read (opened again at the next).
    file: Option<std::fs::File>,
    /// The device and inode of `file` when it was opened, and the process that opened it.
    opened: Opened,
    /// Read into; its length is its capacity, grown when a file does not fit.
    buf: Vec<u8>,
    /// The file is one record (procfs `single_open`), so a short read is its end.
    single_record: bool,
}

/// Who a kept descriptor was opened as.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Opened {
    dev: u64,
    ino: u64,
    pid: u32,
    /// [`fork_generation`](crate::platform::fork_generation) when opened: a forked child is another process even where its
    /// pid is its parent's number (pid 1 of a new pid namespace forked by pid 1).
    forks: u64,
}

/// Marks `file` as this source's own open (not another open of the same file that got
/// the number later): its owner (`F_SETOWN`, unused without `O_ASYNC`) is this process.
/// Where the kernel refuses the mark, [`UNMARKED`] says so, and a descriptor of the same
/// file is then taken for ours when it is let go, as before marks.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn mark(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let pid = libc::c_int::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: F_SETOWN on an open descriptor, to this process's own pid.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETOWN, pid) };
    if r != 0 || pid == 0 {
        UNMARKED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether a descriptor of this process could not be marked (see [`mark`]).
#[cfg(any(target_os = "linux", target_os = "android"))]
static UNMARKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Opened {
    /// The identity of `file` now, for this process; `None` if it cannot be read (a
    /// descriptor closed behind our back).
    fn of(file: &std::fs::File) -> Option<Opened> {
        Some(Opened::from_metadata(&file.metadata().ok()?))
    }

    /// The identity that `m`, the metadata of a descriptor, gives, for this process.
    fn from_metadata(m: &std::fs::Metadata) -> Opened {
        use std::os::unix::fs::MetadataExt;
        Opened {
            dev: m.dev(),
            ino: m.ino(),
            pid: std::process::id(),
            forks: crate::platform::fork_generation(),
        }
    }
}

/// The first buffer: `/proc/stat` of a 2-core machine is 1.2 kB, `/proc/meminfo` 1.5 kB.
#[cfg(any(target_os = "linux", target_os = "android"))]
const FIRST_BUF: usize = 4096;

/// The page a seq file fills for each read (the kernel's `PAGE_SIZE`, at least 4 KiB).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEQ_PAGE: usize = 4096;

/// More than the longest record of a multi-record file read here: a `/proc/net/dev` line
/// is at most about 360 bytes (a 15-byte name and 16 counters of up to 20 digits).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEQ_RECORD_MAX: usize = 1024;

/// The largest file read (a runaway file fails rather than eating memory).
#[cfg(any(target_os = "linux", target_os = "android"))]
const MAX_FILE: usize = 16 << 20;

#[cfg(any(target_os = "linux", target_os = "android"))]
impl KeptFile {
    /// `path`, opened now if it can be (else at the first read).
    ///
    /// `single_record`: the kernel generates the file as one record (procfs
    /// `single_open`: `/proc/stat`, `/proc/meminfo`, `/proc/loadavg`, `/proc/<pid>/stat`,
    /// `/proc/<pid>/statm`), so it hands the whole text to a read with room for it and a
    /// read shorter than asked is the end. Other seq files (`/proc/net/dev`, one record per
    /// interface, each under 1 KiB) may stop a read at a page before their end: they are
    /// read until a read returns nothing, or returns so little that the next record would
    /// have fitted in its page.
    pub(crate) fn new(path: impl Into<std::path::PathBuf>, single_record: bool) -> Self {
        let path = path.into();
        let mut kept = KeptFile {
            file: None,
            opened: Opened::default(),
            path,
            buf: Vec::new(),
            single_record,
        };
        if let Ok((file, opened)) = kept.open() {
            kept.file = Some(file);
            kept.opened = opened;
        }
        kept
    }

    fn open(&self) -> std::io::Result<(std::fs::File, Opened)> {
        let file = std::fs::File::open(&self.path)?;
        mark(&file);
        let opened = Opened::of(&file)
            .ok_or_else(|| std::io::Error::other(format!("cannot stat {}", self.path.display())))?;
        Ok((file, opened))
    }

    /// The file's whole text now. If the kept descriptor cannot be read, the file is opened
    /// again once; if that fails too, the error (and the next call opens it again). A kept
    /// descriptor that is no longer the file opened by this process is let go first (see
    /// [`KeptFile`]).
    pub(crate) fn read(&mut self) -> std::io::Result<&[u8]> {
        if let Some((file, _)) = self.take_checked() {
            match read_whole(&file, &mut self.buf, self.single_record) {
                Ok(len) => {
                    self.file = Some(file);
                    return Ok(&self.buf[..len]);
                }
                Err(_) => {
                    let now = Opened::of(&file);
                    self.let_go(file, now);
                }
            }
        }
        let (file, opened) = self.open()?;
        let len = read_whole(&file, &mut self.buf, self.single_record)?;
        self.file = Some(file);
        self.opened = opened;
        Ok(&self.buf[..len])
    }

    /// The link count of the kept file now (of a directory: 2 and one per subdirectory),
    /// from the same one `fstat` that checks the descriptor is still the file opened. A
    /// descriptor that is not is let go and the path opened again, as by
    /// [`read`](Self::read).
    pub(crate) fn links(&mut self) -> std::io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        if let Some((file, m)) = self.take_checked() {
            self.file = Some(file);
            return Ok(m.nlink());
        }
        let file = std::fs::File::open(&self.path)?;
        mark(&file);
        let m = file.metadata()?;
        self.opened = Opened::from_metadata(&m);
        self.file = Some(file);
        Ok(m.nlink())
    }

    /// The kept descriptor and its metadata, taken out, if it is still the file opened by
    /// this process; else it is let go (see [`KeptFile`]) and `None`.
    fn take_checked(&mut self) -> Option<(std::fs::File, std::fs::Metadata)> {
        let file = self.file.take()?;
        match file.metadata() {
            Ok(m) if Opened::from_metadata(&m) == self.opened => Some((file, m)),
            m => {
                let now = m.ok().map(|m| Opened::from_metadata(&m));
                self.let_go(file, now);
                None
            }
        }
    }

    /// Lets go of a kept descriptor whose identity is now `now`: closed if it is still the
    /// open this source made (in a forked child, its own copy of the parent's), left open
    /// otherwise: its number is another open's now (of another file, or of the same file
    /// by other code, which [`mark`] tells apart), which is not ours to close.
    fn let_go(&self, file: std::fs::File, now: Option<Opened>) {
        use std::os::fd::{AsRawFd, IntoRawFd};
        let same_file = now.is_some_and(|o| o.dev == self.opened.dev && o.ino == self.opened.ino);
        // SAFETY: F_GETOWN only reads the descriptor's owner.
        let owner = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETOWN) };
        let ours = u32::try_from(owner) == Ok(self.opened.pid)
            || UNMARKED.load(std::sync::atomic::Ordering::Relaxed);
        if same_file && ours {
            drop(file);
        } else {
            let _ = file.into_raw_fd();
        }
    }

    /// Replaces the kept descriptor (with a directory's, say, whose reads fail) as if it
    /// were the file opened.
    #[cfg(test)]
    pub(crate) fn spoil(&mut self, file: std::fs::File) {
        mark(&file);
        if let Some(o) = Opened::of(&file) {
            self.opened = o;
        }
        self.file = Some(file);
    }

    /// Whether a descriptor is kept now.
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.file.is_some()
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Drop for KeptFile {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let now = Opened::of(&file);
            self.let_go(file, now);
        }
    }
}

/// Reads `file` from offset 0 into `buf` (grown as needed); returns the length read.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_whole(
    file: &std::fs::File,
    buf: &mut Vec<u8>,
    single_record: bool,
) -> std::io::Result<usize> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::FileExt;
    if buf.is_empty() {
        buf.resize(FIRST_BUF, 0);
    }
    let mut len = 0;
    loop {
        if len == buf.len() {
            if len >= MAX_FILE {
                return Err(Error::new(
                    ErrorKind::InvalidData,
                    "file larger than 16 MiB",
                ));
            }
            buf.resize((len * 2).min(MAX_FILE), 0);
        }
        let asked = buf.len() - len;
        let n = match file.read_at(&mut buf[len..], len as u64) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        len += n;
        if n == 0 || (single_record && len < buf.len()) {
            return Ok(len);
        }
        // A seq file of many records stops a read short of what was asked only at its end
        // or when its next record does not fit in the page the read fills (the kernel's
        // `seq_read_iter`): a short read that left room in that page for one more record
        // is the end, and the read that would return nothing is saved.
        if n < asked && n + SEQ_RECORD_MAX <= SEQ_PAGE {
            return Ok(len);
        }
    }
}

/// Where the totals come from.
pub(crate) enum NetTotals {
    /// `/proc/net/dev` (or a file of its format), kept open.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    ProcNetDev(KeptFile),
    /// sysinfo's interface list.
    Sysinfo(Networks),
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const PROC_NET_DEV: &str = "/proc/net/dev";

impl NetTotals {
    /// `/proc/net/dev` where it can be read, else sysinfo.
    pub(crate) fn new() -> Self {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let mut file = KeptFile::new(PROC_NET_DEV, false);
            if file.read().is_ok() {
                return NetTotals::ProcNetDev(file);
            }
        }
        NetTotals::Sysinfo(Networks::new_with_refreshed_list())
    }

    /// Reads the totals now and hands each interface's (name, received, sent) bytes to `f`.
    /// Returns `false` if nothing could be read this round.
    pub(crate) fn read(&mut self, mut f: impl FnMut(&str, u64, u64)) -> bool {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            NetTotals::ProcNetDev(file) => {
                let Ok(text) = file.read() else {
                    return false;
                };
                // A name that is not UTF-8 (Linux allows any byte but `/`, `:` and white
                // space) gets U+FFFD for its odd bytes, and the other interfaces their own.
                for (name, rx, tx) in parse_proc_net_dev(&String::from_utf8_lossy(text)) {
                    f(name, rx, tx);
                }
                true
            }
            NetTotals::Sysinfo(networks) => {
                networks.refresh(true);
                for (name, data) in networks.list() {
                    f(name, data.total_received(), data.total_transmitted());
                }
                true
            }
        }
    }
}

/// This process's figures of one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SelfReading {
    /// Threads of the process, where the platform lists them.
    pub(crate) threads: Option<u64>,
    /// Virtual size, in bytes.
    pub(crate) virtual_bytes: u64,
    /// Resident set, in bytes.
    pub(crate) resident_bytes: u64,
    /// Bytes fetched from and sent to storage, where the kernel counts them.
    pub(crate) disk: Option<(u64, u64)>,
}

/// Reads [`SelfReading`]s with as little as the kernel allows, every file kept open (the
/// same process for as long as the reader lives):
///
/// * **virtual and resident size** from `/proc/self/statm` (the same counters as fields 23
///   and 24 of `/proc/self/stat`, in pages);
/// * **threads** from the link count of `/proc/self/task` (2 and one per thread: the
///   kernel adds the thread count when the directory is `stat`ed), which the one `fstat`
///   that checks the kept descriptor gives. That this kernel counts them so is checked
///   against `/proc/self/stat` when the reader is made; where it does not, the threads
///   come from `/proc/self/stat` every round;
/// * **bytes fetched from and sent to storage** from `getrusage` (`ru_inblock`,
///   `ru_oublock`: `read_bytes` and `write_bytes` of `/proc/self/io`, which the kernel
///   counts by 512-byte sectors, divided by 512), where `/proc/self/io` exists: without
///   task I/O accounting `getrusage` says 0, which is not "not available".
///
/// `/proc/self/stat` and `/proc/self/io` cost about 22 µs of CPU in cold rounds on the
/// benchmark VM, these about 12 µs (`BENCH.md`): `stat` formats 52 fields and sums the CPU
/// time of every thread, and both ask the security hooks whether this process may read
/// its own task.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Debug)]
pub(crate) struct SelfFiles {
    statm: KeptFile,
    threads: ThreadCount,
    disk: bool,
    page_size: u64,
}

/// Where [`SelfFiles`] counts threads.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Debug)]
enum ThreadCount {
    /// The link count of the kept `/proc/self/task`.
    TaskLinks(KeptFile),
    /// Field 20 of the kept `/proc/self/stat`.
    Stat(KeptFile),
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl SelfFiles {
    /// The reader, if `/proc/self/statm` and a thread count can be read here; `read_io`
    /// says whether to read the storage counters too (where `/proc/self/io` exists).
    pub(crate) fn new(read_io: bool) -> Option<Self> {
        // SAFETY: sysconf only reads a configuration value.
        let page_size = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
        let mut stat = KeptFile::new("/proc/self/stat", true);
        let mut task = KeptFile::new("/proc/self/task", false);
        let threads = if task_links_count_threads(&mut task, &mut stat) {
            ThreadCount::TaskLinks(task)
        } else {
            ThreadCount::Stat(stat)
        };
        let mut files = SelfFiles {
            statm: KeptFile::new("/proc/self/statm", true),
            threads,
            disk: read_io,
            page_size,
        };
        files.read()?;
        Some(files)
    }

    /// One reading; `None` if `/proc/self/statm` could not be read or parsed. A thread
    /// count or storage counters that cannot be read leave only those out.
    pub(crate) fn read(&mut self) -> Option<SelfReading> {
        let statm = self.statm.read().ok()?;
        let (virtual_pages, resident_pages) = parse_statm(std::str::from_utf8(statm).ok()?)?;
        let threads = match &mut self.threads {
            ThreadCount::TaskLinks(task) => task.links().ok().and_then(|n| n.checked_sub(2)),
            ThreadCount::Stat(stat) => stat.read().ok().and_then(stat_threads),
        };
        Some(SelfReading {
            threads: threads.filter(|&n| n > 0),
            virtual_bytes: virtual_pages.saturating_mul(self.page_size),
            resident_bytes: resident_pages.saturating_mul(self.page_size),
            disk: if self.disk { storage_bytes() } else { None },
        })
    }

    /// Where the threads are counted: `true` from `/proc/self/task`'s links.
    #[cfg(test)]
    pub(crate) fn threads_from_task_links(&self) -> bool {
        matches!(self.threads, ThreadCount::TaskLinks(_))
    }
}

/// Whether `task`'s link count is 2 and one per thread here: it must agree with the
/// thread count of `stat` read between two looks at it that agree with each other (a
/// thread started or ended meanwhile spoils an attempt; three are made).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn task_links_count_threads(task: &mut KeptFile, stat: &mut KeptFile) -> bool {
    (0..3).any(|_| {
        let Ok(before) = task.links() else {
            return false;
        };
        let threads = stat.read().ok().and_then(stat_threads);
        let after = task.links().ok();
        after == Some(before) && threads.is_some_and(|t| t > 0 && before.checked_sub(2) == Some(t))
    })
}

/// The thread count of a `/proc/<pid>/stat` text (the command name may hold any byte: only
/// what follows its last closing parenthesis is read, and that is ASCII).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn stat_threads(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    parse_stat(std::str::from_utf8(&stat[close..]).ok()?).map(|(threads, _, _)| threads)
}

/// Bytes this process fetched from and sent to storage, from `getrusage`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn storage_bytes() -> Option<(u64, u64)> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes the struct it is given, which is valid for writes.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: getrusage succeeded, so it filled the struct (which was zeroed anyway).
    let usage = unsafe { usage.assume_init() };
    let bytes = |blocks: libc::c_long| u64::try_from(blocks).ok().map(|b| b.saturating_mul(512));
    Some((bytes(usage.ru_inblock)?, bytes(usage.ru_oublock)?))
}

/// The ten jiffy counters of a `/proc/stat` `cpu` line, in their order there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    user: u64,
    nice: u64,
    system: u64,
    idle: u64,
    iowait: u64,
    irq: u64,
    softirq: u64,
    steal: u64,
    guest: u64,
    guest_nice: u64,
}

impl CpuTimes {
    /// The counters of a `cpu` line after its name. Linux ≥ 2.6.11 gives at least eight
    /// (to `steal`); `guest` and `guest_nice` (2.6.24, 2.6.33) count as 0 if absent. Fewer
    /// than eight, or a field that is not a number: `None`. Fields after the tenth are
    /// ignored.
    pub(crate) fn parse(fields: &str) -> Option<Self> {
        let mut v = [0u64; 10];
        let mut count = 0;
        for (slot, field) in v.iter_mut().zip(fields.split_ascii_whitespace()) {
            *slot = field.parse().ok()?;
            count += 1;
        }
        if count < 8 {
            return None;
        }
        let [user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice] = v;
        Some(CpuTimes {
            user,
            nice,
            system,
            idle,
            iowait,
            irq,
            softirq,
            steal,
            guest,
            guest_nice,
        })
    }

    /// `user` and `nice` without `guest` and `guest_nice`, which the kernel counts in both.
    fn own_user_nice(&self) -> (u64, u64) {
        (
            self.user.saturating_sub(self.guest),
            self.nice.saturating_sub(self.guest_nice),
        )
    }

    fn system_all(&self) -> u64 {
        self.system
            .saturating_add(self.irq)
            .saturating_add(self.softirq)
    }

    fn virtual_all(&self) -> u64 {
        self.guest.saturating_add(self.guest_nice)
    }

    /// Every jiffy, each counted once.
    fn total(&self) -> u64 {
        let (user, nice) = self.own_user_nice();
        user.saturating_add(nice)
            .saturating_add(self.system_all())
            .saturating_add(self.idle)
            .saturating_add(self.iowait)
            .saturating_add(self.virtual_all())
            .saturating_add(self.steal)
    }

    /// Usage (%, 0–100) from `before` to these counters, as sysinfo 0.38 computes it
    /// (`CpuUsage::set` in `unix/linux/cpu.rs`): busy = `user` + `nice` (each without
    /// its guest part) + `system` + `irq` + `softirq` + `steal` + `guest` + `guest_nice`,
    /// total = busy + `idle` + `iowait`, both as differences between the two readings
    /// (a busy counter that went back counts 0, as in sysinfo), capped at 100.
    ///
    /// Where sysinfo divides by 1 when the total did not grow (a counter reset, a reading
    /// of the same instant): `None`.
    pub(crate) fn usage_since(&self, before: &CpuTimes) -> Option<f64> {
        let (now, then) = (self.total(), before.total());
        if now <= then {
            return None;
        }
        let ((user, nice), (user0, nice0)) = (self.own_user_nice(), before.own_user_nice());
        let busy = user
            .saturating_sub(user0)
            .saturating_add(nice.saturating_sub(nice0))
            .saturating_add(self.system_all().saturating_sub(before.system_all()))
            .saturating_add(self.steal.saturating_sub(before.steal))
            .saturating_add(self.virtual_all().saturating_sub(before.virtual_all()));
        Some((busy as f64 / (now - then) as f64 * 100.0).min(100.0))
    }
}

/// System CPU usage between consecutive `/proc/stat` texts (whole machine and per core).
#[derive(Debug, Default)]
pub(crate) struct CpuState {
    total: Option<CpuTimes>,
    /// (core number, counters) of the last text, by ascending core number.
    cores: Vec<(usize, CpuTimes)>,
    /// This text's cores, `None` for a malformed line.
    next: Vec<(usize, Option<CpuTimes>)>,
    /// Whole-machine usage between the last two texts; `None`: no figure this round.
    pub(crate) total_usage: Option<f64>,
    /// (core number, usage) of every core with counters in the last text but one, by
    /// ascending core number; `None` where its line is now missing or malformed, or its
    /// counters went back. A core seen for the first time has none yet.
    pub(crate) core_usage: Vec<(usize, Option<f64>)>,
}

impl CpuState {
    /// Takes the counters of a `/proc/stat` text and computes the usage since the last.
    ///
    /// Reads the `cpu` lines at the top of the text (`cpu ` for the machine, `cpu<n>` for
    /// core `n`, ascending) and stops at the first other line. A line whose core number
    /// is not a number, or not above the line before's, is skipped.
    pub(crate) fn update(&mut self, text: &str) {
        self.next.clear();
        let mut total = None;
        let mut seen_total = false;
        for line in text.lines().take_while(|l| l.starts_with("cpu")) {
            let (name, fields) = line.split_once(' ').unwrap_or((line, ""));
            if name == "cpu" {
                if !seen_total {
                    seen_total = true;
                    total = CpuTimes::parse(fields);
                }
                continue;
            }
            let Ok(n) = name["cpu".len()..].parse::<usize>() else {
                continue;
            };
            if self.next.last().is_some_and(|&(last, _)| n <= last) {
                continue;
            }
            self.next.push((n, CpuTimes::parse(fields)));
        }

        self.total_usage = match (total, self.total) {
            (Some(now), Some(then)) => now.usage_since(&then),
            _ => None,
        };
        self.total = total;

        // Merge this text's cores with the last text's, both by ascending number.
        self.core_usage.clear();
        let mut before = self.cores.iter().peekable();
        for &(n, now) in &self.next {
            while let Some(&&(m, _)) = before.peek() {
                if m >= n {
                    break;
                }
                self.core_usage.push((m, None)); // gone from this text
                before.next();
            }
            if let Some(&&(m, then)) = before.peek() {
                if m == n {
                    self.core_usage
                        .push((n, now.and_then(|now| now.usage_since(&then))));
                    before.next();
                }
            }
        }
        self.core_usage.extend(before.map(|&(m, _)| (m, None)));
        self.cores.clear();
        self.cores
            .extend(self.next.iter().filter_map(|&(n, t)| Some((n, t?))));
    }
}

/// System CPU usage from `/proc/stat`, kept open.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Debug)]
pub(crate) struct ProcStat {
    file: KeptFile,
    /// The counters and the usage of the last read.
    pub(crate) state: CpuState,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl ProcStat {
    /// The reader, with its first counters (the baseline of the first usage), if
    /// `/proc/stat` can be read here and has a whole-machine `cpu` line.
    pub(crate) fn new() -> Option<Self> {
        Self::at("/proc/stat")
    }

    /// The same from a file of `/proc/stat`'s format.
    pub(crate) fn at(path: impl Into<std::path::PathBuf>) -> Option<Self> {
        let mut stat = ProcStat {
            file: KeptFile::new(path, true),
            state: CpuState::default(),
        };
        stat.read().ok()?;
        stat.state.total?;
        Some(stat)
    }

    /// Replaces the kept descriptor of the file (see [`KeptFile::spoil`]).
    #[cfg(test)]
    pub(crate) fn spoil(&mut self, file: std::fs::File) {
        self.file.spoil(file);
    }

    /// Reads the counters now and computes [`state`](Self::state)'s usage since the last
    /// read. An error if the file could not be read (the usage is then left as it was).
    pub(crate) fn read(&mut self) -> std::io::Result<()> {
        let text = self.file.read()?;
        // Only the `cpu` lines at the top are read, and they are ASCII: a stray byte that
        // is not UTF-8 further down (there is none in practice) must not hide them.
        let text = match std::str::from_utf8(text) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&text[..e.valid_up_to()]).unwrap_or_default(),
        };
        self.state.update(text);
        Ok(())
    }
}

/// Memory figures of one reading, in bytes, as sysinfo defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemoryReading {
    /// `MemTotal`.
    pub(crate) total: u64,
    /// `MemAvailable`; without it (Linux < 3.14), `MemFree` + `Buffers` + `Cached` +
    /// `SReclaimable` − `Shmem`, as sysinfo estimates it.
    pub(crate) available: u64,
    /// `total` − `available`.
    pub(crate) used: u64,
    /// `SwapTotal` − `SwapFree`; `None` if either is missing or `SwapFree` is the larger.
    pub(crate) swap_used: Option<u64>,
}

/// The [`MemoryReading`] of a `/proc/meminfo` text (values in KiB, which it writes `kB`).
/// `None` without a `MemTotal` above 0, without the fields to estimate the available
/// memory when `MemAvailable` is missing, or with more available than total.
pub(crate) fn parse_meminfo(text: &str) -> Option<MemoryReading> {
    let mut total = None;
    let mut free = None;
    let mut available = None;
    let mut buffers = None;
    let mut cached = None;
    let mut shmem = None;
    let mut reclaimable = None;
    let mut swap_total = None;
    let mut swap_free = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let field = match key {
            "MemTotal" => &mut total,
            "MemFree" => &mut free,
            "MemAvailable" => &mut available,
            "Buffers" => &mut buffers,
            "Cached" => &mut cached,
            "Shmem" => &mut shmem,
            "SReclaimable" => &mut reclaimable,
            "SwapTotal" => &mut swap_total,
            "SwapFree" => &mut swap_free,
            _ => continue,
        };
        *field = value
            .split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kib| kib.saturating_mul(1024));
    }
    let total = total.filter(|&t| t > 0)?;
    let available = match available {
        Some(available) => available,
        None => free?
            .saturating_add(buffers?)
            .saturating_add(cached?)
            .saturating_add(reclaimable.unwrap_or(0))
            .saturating_sub(shmem.unwrap_or(0)),
    };
    let used = total.checked_sub(available)?;
    let swap_used = match (swap_total, swap_free) {
        (Some(t), Some(f)) => t.checked_sub(f),
        _ => None,
    };
    Some(MemoryReading {
        total,
        available,
        used,
        swap_used,
    })
}

/// Threads, virtual size (bytes) and resident set (pages) of a `/proc/<pid>/stat` line:
/// fields 20, 23 and 24, counted after the command name, which is in parentheses and may
/// itself hold spaces and parentheses.
pub(crate) fn parse_stat(text: &str) -> Option<(u64, u64, u64)> {
    let (_, after_name) = text.rsplit_once(')')?;
    // The first field after the name is the state, field 3.
    let mut fields = after_name.split_whitespace();
    let threads = fields.nth(20 - 3)?.parse().ok()?;
    let virtual_bytes = fields.nth(23 - 20 - 1)?.parse().ok()?;
    let resident_pages = fields.next()?.parse().ok()?;
    Some((threads, virtual_bytes, resident_pages))
}

/// Virtual size and resident set, in pages, of a `/proc/<pid>/statm` text (its first two
/// numbers).
pub(crate) fn parse_statm(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_ascii_whitespace().map(str::parse::<u64>);
    let virtual_pages = fields.next()?.ok()?;
    let resident_pages = fields.next()?.ok()?;
    // Five more follow (shared, text, lib, data, dirty): a shorter text is not statm's.
    (fields.count() == 5).then_some((virtual_pages, resident_pages))
}

/// `read_bytes` and `write_bytes` of a `/proc/<pid>/io` text.
#[cfg(test)]
pub(crate) fn parse_io(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("read_bytes")?, field("write_bytes")?))
}

/// The interfaces of a `/proc/net/dev` text: name, received bytes (the first column after
/// the name), sent bytes (the ninth). The two header lines (which have no colon), and any
/// line that does not have a name, a colon and at least nine numbers, are skipped.
pub(crate) fn parse_proc_net_dev(text: &str) -> impl Iterator<Item = (&str, u64, u64)> {
    text.lines().filter_map(|line| {
        // Interface names cannot hold a colon; counters can follow it without a space.
        let (name, counters) = line.split_once(':')?;
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        let mut counters = counters.split_whitespace().map(str::parse::<u64>);
        let rx = counters.next()?.ok()?;
        let tx = counters.nth(7)?.ok()?;
        Some((name, rx, tx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1234567      89    0    0    0     0          0         0  1234567      89    0    0    0     0       0          0
  eth0:18446744073709551615 5 0 0 0 0 0 0 42 7 0 0 0 0 0 0
 cam|1: 7 1 0 0 0 0 0 0 8 1 0 0 0 0 0 0
 wlan0: 10 1 0
 broken: x 1 0 0 0 0 0 0 9 1 0 0 0 0 0 0
";

    #[test]
    fn parses_names_and_the_two_byte_columns() {
        let got: Vec<_> = parse_proc_net_dev(SAMPLE).collect();
        // wlan0 has too few columns and `broken` a non-number: both skipped, not zeros.
        assert_eq!(
            got,
            [
                ("lo", 1_234_567, 1_234_567),
                ("eth0", u64::MAX, 42),
                ("cam|1", 7, 8)
            ]
        );
    }

    #[test]
    fn parses_stat_past_a_name_with_spaces_and_parentheses() {
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194304 100 0 0 0 5 6 0 0 20 0 \
                    7 0 3219814 3133440 412 18446744073709551615 1 2 3\n";
        assert_eq!(parse_stat(line), Some((7, 3_133_440, 412)));
        assert_eq!(parse_stat("4242 (x) S 1 2 3"), None);
        assert_eq!(parse_stat("no name at all"), None);
        let bad = line.replace(" 412 ", " -4 ");
        assert_eq!(parse_stat(&bad), None);
    }

    #[test]
    fn parses_the_two_storage_counters_of_io() {
        let io = "rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 0\nread_bytes: 4096\n\
                  write_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(parse_io(io), Some((4096, 8192)));
        assert_eq!(parse_io("rchar: 1\nread_bytes: 4096\n"), None);
        // `cancelled_write_bytes` is not `write_bytes`.
        assert_eq!(parse_io("read_bytes: 1\ncancelled_write_bytes: 2\n"), None);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn self_files_agree_with_stat_status_and_io() {
        let mut files = SelfFiles::new(true).unwrap();
        // This kernel counts threads in the task directory's links (Linux since 2.6).
        assert!(files.threads_from_task_links());
        let reading = files.read().unwrap();
        let stat = std::fs::read("/proc/self/stat").unwrap();
        let close = stat.iter().rposition(|&b| b == b')').unwrap();
        let (stat_threads, vsize, rss_pages) =
            parse_stat(std::str::from_utf8(&stat[close..]).unwrap()).unwrap();
        let page = files.page_size;
        // The virtual size moves only when a mapping is made: other tests' threads (their
        // stacks) may, between the two reads.
        assert!(reading.virtual_bytes.abs_diff(vsize) < 64 << 20);
        // Resident pages move as the test runs: within 1 MiB.
        assert!(reading.resident_bytes.abs_diff(rss_pages * page) < 1 << 20);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let threads: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Other tests of this binary start and end threads meanwhile.
        let read = reading.threads.unwrap();
        assert!(read >= 1 && read.abs_diff(threads) <= 8 && read.abs_diff(stat_threads) <= 8);
        match std::fs::read_to_string("/proc/self/io") {
            Ok(io) => {
                let (r, w) = reading.disk.unwrap();
                let (io_r, io_w) = parse_io(&io).unwrap();
                // Read after the reading: never fewer; the kernel counts by sectors.
                assert!(r <= io_r && w <= io_w && r % 512 == 0 && w % 512 == 0);
            }
            Err(_) => assert_eq!(reading.disk, None),
        }
        assert_eq!(SelfFiles::new(false).unwrap().read().unwrap().disk, None);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn storage_bytes_are_those_of_proc_self_io() {
        use std::io::Write;
        if std::fs::read("/proc/self/io").is_err() {
            return; // No task I/O accounting in this kernel: `SelfFiles` does not ask.
        }
        let io = || parse_io(&std::fs::read_to_string("/proc/self/io").unwrap()).unwrap();
        // Other tests of this binary may read or write storage meanwhile: each counter of
        // `/proc/self/io` lies between the two `getrusage` readings around it, in bytes.
        let sandwich = || {
            let a = storage_bytes().unwrap();
            let m = io();
            let b = storage_bytes().unwrap();
            assert!(a.0 <= m.0 && m.0 <= b.0, "read: {a:?} {m:?} {b:?}");
            assert!(a.1 <= m.1 && m.1 <= b.1, "written: {a:?} {m:?} {b:?}");
            m
        };
        sandwich();
        // 1 MiB written and synced, beside the test binary (on storage, where `/tmp` may
        // be memory), and the counters compared again.
        let exe = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir_in(exe.parent().unwrap()).unwrap();
        let mut f = std::fs::File::create(dir.path().join("x")).unwrap();
        f.write_all(&vec![7u8; 1 << 20]).unwrap();
        f.sync_all().unwrap();
        sandwich();
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn task_links_are_two_and_one_per_thread() {
        let mut task = KeptFile::new("/proc/self/task", false);
        let mut stat = KeptFile::new("/proc/self/stat", true);
        assert!(task_links_count_threads(&mut task, &mut stat));
        // Threads of this binary's other tests come and go: look for a rise of 3 while
        // three more threads of this test wait.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let started = std::sync::Arc::new(std::sync::Barrier::new(4));
        let before = task.links().unwrap();
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let rx = std::sync::Arc::clone(&rx);
                let started = std::sync::Arc::clone(&started);
                std::thread::spawn(move || {
                    started.wait();
                    let _ = rx.lock().unwrap().recv();
                })
            })
            .collect();
        started.wait();
        let during = task.links().unwrap();
        drop(tx);
        for h in handles {
            h.join().unwrap();
        }
        assert!(
            during >= 5 && during.abs_diff(before + 3) <= 8,
            "{before} {during}"
        );
        // A directory that is not a task list: its links do not count this process's
        // threads, and the check says so.
        let dir = tempfile::tempdir().unwrap();
        let mut other = KeptFile::new(dir.path(), false);
        assert!(!task_links_count_threads(&mut other, &mut stat));
    }

    #[test]
    fn statm_gives_the_first_two_of_seven_numbers() {
        assert_eq!(
            parse_statm("7391 1301 873 47 0 614 0\n"),
            Some((7391, 1301))
        );
        assert_eq!(parse_statm("7391 1301 873 47 0 614\n"), None);
        assert_eq!(parse_statm("7391 1301 873 47 0 614 0 9\n"), None);
        assert_eq!(parse_statm("7391 x 873 47 0 614 0\n"), None);
        assert_eq!(parse_statm(""), None);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn totals_match_sysfs_for_every_interface() {
        let sysfs = |iface: &str, file: &str| -> u64 {
            let path = format!("/sys/class/net/{iface}/statistics/{file}");
            std::fs::read_to_string(path)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        assert!(!names.is_empty());
        let mut totals = NetTotals::new();
        assert!(matches!(totals, NetTotals::ProcNetDev { .. }));
        let before: Vec<_> = names
            .iter()
            .map(|n| (sysfs(n, "rx_bytes"), sysfs(n, "tx_bytes")))
            .collect();
        let mut read = Vec::new();
        assert!(totals.read(|name, rx, tx| read.push((name.to_string(), rx, tx))));
        let after: Vec<_> = names
            .iter()
            .map(|n| (sysfs(n, "rx_bytes"), sysfs(n, "tx_bytes")))
            .collect();
        read.sort();
        let read_names: Vec<&str> = read.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(read_names, names);
        for (i, (name, rx, tx)) in read.iter().enumerate() {
            assert!((before[i].0..=after[i].0).contains(rx), "{name} rx {rx}");
            assert!((before[i].1..=after[i].1).contains(tx), "{name} tx {tx}");
        }
    }

    /// `/proc/stat`'s top: `cpu` lines of (user, nice, system, idle, iowait) and zeros.
    fn stat_text(lines: &[(&str, [u64; 5])]) -> String {
        let mut text = String::new();
        for (name, [u, n, s, i, w]) in lines {
            text += &format!("{name} {u} {n} {s} {i} {w} 0 0 0 0 0\n");
        }
        text + "intr 12345 0 0 1\nctxt 99\nbtime 1700000000\n"
    }

    #[test]
    fn cpu_times_need_eight_numbers_and_take_ten() {
        let t = CpuTimes::parse(" 1 2 3 4 5 6 7 8 9 10 11").unwrap();
        assert_eq!((t.user, t.steal, t.guest, t.guest_nice), (1, 8, 9, 10));
        let t = CpuTimes::parse("1 2 3 4 5 6 7 8").unwrap();
        assert_eq!((t.steal, t.guest, t.guest_nice), (8, 0, 0));
        assert_eq!(CpuTimes::parse("1 2 3 4 5 6 7"), None);
        assert_eq!(CpuTimes::parse(""), None);
        assert_eq!(CpuTimes::parse("1 2 3 x 5 6 7 8 9 10"), None);
        assert_eq!(CpuTimes::parse("1 2 3 -4 5 6 7 8 9 10"), None);
        assert_eq!(CpuTimes::parse("1 2 3 4 5 6 7 8 9 1.5"), None);
    }

    /// sysinfo 0.38's `CpuUsage::set`, transcribed (f32, as it computes), for comparison.
    fn sysinfo_usage(now: &CpuTimes, then: &CpuTimes) -> f32 {
        let (u1, n1) = now.own_user_nice();
        let (u0, n0) = then.own_user_nice();
        let (t1, t0) = (now.total(), then.total());
        let total = if t1 > t0 { (t1 - t0) as f32 } else { 1.0 };
        let p = (n1.saturating_sub(n0) as f32 / total
            + u1.saturating_sub(u0) as f32 / total
            + now.system_all().saturating_sub(then.system_all()) as f32 / total
            + (now.steal.saturating_sub(then.steal)
                + now.virtual_all().saturating_sub(then.virtual_all())) as f32
                / total)
            * 100.0;
        p.min(100.0)
    }

    #[test]
    fn usage_is_busy_jiffies_over_all_jiffies_as_sysinfo_computes_it() {
        let t = |v: [u64; 10]| CpuTimes::parse(&v.map(|x| x.to_string()).join(" ")).unwrap();
        let before = t([100, 10, 50, 800, 40, 0, 0, 0, 0, 0]);
        // +60 user, +20 system, +100 idle, +20 iowait: 80 busy of 200.
        let after = t([160, 10, 70, 900, 60, 0, 0, 0, 0, 0]);
        assert_eq!(after.usage_since(&before), Some(40.0));
        // Guest time is in `user` and `guest` both: counted once. irq, softirq and steal
        // are busy; iowait is not.
        let before = t([1000, 200, 300, 5000, 100, 10, 20, 30, 400, 50]);
        let after = t([1150, 230, 340, 5100, 160, 15, 25, 45, 450, 60]);
        // busy: user 100 + nice 20 + system 40+5+5 + steal 15 + guest 60 = 245;
        // total: 245 + idle 100 + iowait 60 = 405.
        let got = after.usage_since(&before).unwrap();
        assert!((got - 245.0 / 405.0 * 100.0).abs() < 1e-9, "{got}");
        assert!((got - f64::from(sysinfo_usage(&after, &before))).abs() < 1e-3);
        // iowait may go back (proc(5)): sysinfo counts the busy part as usual.
        let after2 = t([1150, 230, 340, 5200, 90, 15, 25, 45, 450, 60]);
        let got = after2.usage_since(&before).unwrap();
        assert!((got - f64::from(sysinfo_usage(&after2, &before))).abs() < 1e-3);
        // No time passed, or counters reset: no figure (sysinfo divides by 1).
        assert_eq!(before.usage_since(&before), None);
        assert_eq!(before.usage_since(&after), None);
        // Idle went back by more than the busy time grew: capped at 100, as sysinfo.
        let odd = t([2000, 200, 300, 4950, 100, 10, 20, 30, 400, 50]);
        assert_eq!(odd.usage_since(&before), Some(100.0));
    }

    #[test]
    fn cpu_state_gives_whole_and_per_core_usage_from_the_second_text() {
        let mut state = CpuState::default();
        state.update(&stat_text(&[
            ("cpu", [200, 0, 100, 1600, 100]),
            ("cpu0", [100, 0, 50, 800, 50]),
            ("cpu1", [100, 0, 50, 800, 50]),
        ]));
        assert_eq!(state.total_usage, None);
        assert!(state.core_usage.is_empty());
        state.update(&stat_text(&[
            ("cpu", [300, 0, 100, 1700, 100]),
            ("cpu0", [200, 0, 50, 800, 50]),
            ("cpu1", [100, 0, 50, 900, 50]),
        ]));
        assert_eq!(state.total_usage, Some(50.0));
        assert_eq!(state.core_usage, [(0, Some(100.0)), (1, Some(0.0))]);
    }

    #[test]
    fn cpu_state_gives_no_figure_for_odd_lines() {
        let mut state = CpuState::default();
        state.update(&stat_text(&[
            ("cpu", [200, 0, 100, 1600, 100]),
            ("cpu0", [100, 0, 50, 800, 50]),
            ("cpu1", [100, 0, 50, 800, 50]),
            ("cpu3", [100, 0, 50, 800, 50]),
        ]));
        // cpu0 malformed, cpu1 gone (offline), cpu2 new, cpu3 went back; a line
        // `cpuX` and a core listed twice or out of order are skipped.
        let text = "cpu  300 0 100 1700 100 0 0 0 0 0\n\
                    cpu0 200 0 x 800 50 0 0 0 0 0\n\
                    cpuX 1 1 1 1 1 1 1 1 1 1\n\
                    cpu2 100 0 50 800 50 0 0 0 0 0\n\
                    cpu2 900 0 50 800 50 0 0 0 0 0\n\
                    cpu3 10 0 5 80 5 0 0 0 0 0\n\
                    cpu1 999 0 50 800 50 0 0 0 0 0\n\
                    intr 1 2 3\n";
        state.update(text);
        assert_eq!(state.total_usage, Some(50.0));
        assert_eq!(state.core_usage, [(0, None), (1, None), (3, None)]);
        // The next text: cpu0 and cpu3 start again from their new counters, cpu2 has its
        // first figure, cpu1 is forgotten.
        state.update(
            "cpu  400 0 100 1800 100 0 0 0 0 0\n\
             cpu0 200 0 50 900 50 0 0 0 0 0\n\
             cpu2 150 0 50 850 50 0 0 0 0 0\n\
             cpu3 20 0 5 80 5 0 0 0 0 0\n",
        );
        assert_eq!(state.core_usage, [(2, Some(50.0)), (3, Some(100.0))]);

        // A short or missing whole-machine line: no total, and none the round after.
        state.update("cpu  400 0 100\ncpu0 200 0 50 900 50 0 0 0 0 0\n");
        assert_eq!(state.total_usage, None);
        state.update("cpu  500 0 100 1900 100 0 0 0 0 0\n");
        assert_eq!(state.total_usage, None);
        state.update("cpu  600 0 100 1900 100 0 0 0 0 0\n");
        assert_eq!(state.total_usage, Some(100.0));
        // Counters that went back (a restored snapshot): no figure, not a huge one.
        state.update("cpu  60 0 10 190 10 0 0 0 0 0\n");
        assert_eq!(state.total_usage, None);
        // Not /proc/stat at all, or empty.
        for text in [
            "",
            "intr 1 2\ncpu  1 2 3 4 5 6 7 8 9 10\n",
            "\u{fffd}\n",
            "cpu",
        ] {
            state.update(text);
            assert_eq!(state.total_usage, None, "{text:?}");
            assert!(state.core_usage.is_empty(), "{text:?}");
        }
    }

    const MEMINFO: &str = "\
MemTotal:       24576000 kB
MemFree:         1000000 kB
MemAvailable:   20000000 kB
Buffers:          200000 kB
Cached:          3000000 kB
SwapCached:            0 kB
Shmem:            100000 kB
SReclaimable:     400000 kB
SwapTotal:       2097152 kB
SwapFree:        2000000 kB
HugePages_Total:       0
";

    #[test]
    fn meminfo_figures_are_sysinfo_s() {
        let m = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(m.total, 24_576_000 * 1024);
        assert_eq!(m.available, 20_000_000 * 1024);
        assert_eq!(m.used, 4_576_000 * 1024);
        assert_eq!(m.swap_used, Some(97_152 * 1024));
        // Linux < 3.14: free + buffers + cached + reclaimable slab - shmem.
        let old = MEMINFO.replace("MemAvailable:   20000000 kB\n", "");
        let m = parse_meminfo(&old).unwrap();
        assert_eq!(
            m.available,
            (1_000_000 + 200_000 + 3_000_000 + 400_000 - 100_000) * 1024
        );
        assert_eq!(m.used, m.total - m.available);
        // An odd MemAvailable value counts as missing, as in sysinfo.
        let odd = MEMINFO.replace("MemAvailable:   20000000", "MemAvailable: lots");
        assert_eq!(parse_meminfo(&odd).unwrap().available, m.available);
    }

    #[test]
    fn odd_meminfo_gives_no_figure() {
        let without = |line: &str| MEMINFO.replace(line, "");
        assert_eq!(
            parse_meminfo(&without("MemTotal:       24576000 kB\n")),
            None
        );
        assert_eq!(parse_meminfo(&MEMINFO.replace("24576000", "0")), None);
        assert_eq!(parse_meminfo(&MEMINFO.replace("24576000", "-1")), None);
        assert_eq!(parse_meminfo(&MEMINFO.replace("24576000 kB", "")), None);
        // More available than total.
        assert_eq!(parse_meminfo(&MEMINFO.replace("24576000", "1000")), None);
        // No MemAvailable and no MemFree to estimate it from.
        let text = without("MemAvailable:   20000000 kB\n").replace("MemFree:", "MemFrei:");
        assert_eq!(parse_meminfo(&text), None);
        // Swap: missing or inconsistent leaves only swap out.
        let m = parse_meminfo(&without("SwapFree:        2000000 kB\n")).unwrap();
        assert_eq!((m.total, m.swap_used), (24_576_000 * 1024, None));
        let m = parse_meminfo(&MEMINFO.replace("2000000 kB\nHuge", "3000000 kB\nHuge")).unwrap();
        assert_eq!(m.swap_used, None);
        assert_eq!(parse_meminfo(""), None);
        assert_eq!(parse_meminfo("MemTotal"), None);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_kept_file_reads_its_text_now_whole_and_opens_again_once() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = KeptFile::new(&path, true);
        assert!(!file.is_open() && file.read().is_err());
        // Larger than the first buffer, in both reading modes; then shorter again.
        let long: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(&path, &long).unwrap();
        let mut multi = KeptFile::new(&path, false);
        assert_eq!(file.read().unwrap(), &long[..]);
        assert_eq!(multi.read().unwrap(), &long[..]);
        std::fs::write(&path, b"short\n").unwrap(); // the same file, truncated
        assert_eq!(file.read().unwrap(), b"short\n");
        assert_eq!(multi.read().unwrap(), b"short\n");
        // Exactly the buffer's size: one more read finds the end.
        let exact = vec![b'x'; file.buf.len()];
        std::fs::write(&path, &exact).unwrap();
        assert_eq!(file.read().unwrap(), &exact[..]);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"y")
            .unwrap();
        assert_eq!(file.read().unwrap().len(), exact.len() + 1);
        // The kept descriptor fails: the file is opened again (a new one at that path).
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"new\n").unwrap();
        file.spoil(std::fs::File::open(dir.path()).unwrap());
        assert_eq!(file.read().unwrap(), b"new\n");
        // ...and if that fails too, an error, and the next read opens it again.
        file.spoil(std::fs::File::open(dir.path()).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(file.read().is_err());
        assert!(!file.is_open());
        std::fs::write(&path, b"back\n").unwrap();
        assert_eq!(file.read().unwrap(), b"back\n");
        assert!(file.is_open());
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_kept_proc_file_is_generated_afresh_on_each_read() {
        let mut file = KeptFile::new("/proc/self/stat", true);
        let utime = |text: &[u8]| -> u64 {
            let text = std::str::from_utf8(text).unwrap();
            let after = text.rsplit_once(')').unwrap().1;
            let f: Vec<&str> = after.split_whitespace().collect();
            f[14 - 3].parse::<u64>().unwrap() + f[15 - 3].parse::<u64>().unwrap()
        };
        let t0 = utime(file.read().unwrap());
        let start = std::time::Instant::now();
        let mut x = 0u64;
        // Spin until the file read afresh says this process has had two more ticks of CPU
        // (20 ms at USER_HZ = 100; a loaded machine gives it only a share of the wall time).
        while utime(&std::fs::read("/proc/self/stat").unwrap()) < t0 + 2 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "60 s of spinning and no two ticks of CPU counted"
            );
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        // The kept file, read again, says so too.
        assert!(utime(file.read().unwrap()) >= t0 + 2);
        // A multi-record seq file, read whole: every interface line.
        let mut dev = KeptFile::new("/proc/net/dev", false);
        let text = String::from_utf8(dev.read().unwrap().to_vec()).unwrap();
        let again = std::fs::read_to_string("/proc/net/dev").unwrap();
        assert_eq!(text.lines().count(), again.lines().count());
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn cpu_usage_agrees_with_sysinfo() {
        use sysinfo::{CpuRefreshKind, System};
        let kind = CpuRefreshKind::nothing().with_cpu_usage();
        let mut closest = (f64::MAX, String::new());
        // Both read within microseconds of each other, over the same 250 ms; a tick
        // (10 ms) falling between the two reads moves a core's figure by a few %.
        for _ in 0..5 {
            let mut sys = System::new();
            let mut stat = ProcStat::new().unwrap();
            sys.refresh_cpu_specifics(kind);
            std::thread::sleep(
                sysinfo::MINIMUM_CPU_UPDATE_INTERVAL + std::time::Duration::from_millis(50),
            );
            stat.read().unwrap();
            sys.refresh_cpu_specifics(kind);
            let ours = &stat.state;
            assert_eq!(ours.core_usage.len(), sys.cpus().len());
            let mut worst = (ours.total_usage.unwrap() - f64::from(sys.global_cpu_usage())).abs();
            for ((n, usage), cpu) in ours.core_usage.iter().zip(sys.cpus()) {
                assert_eq!(format!("cpu{n}"), cpu.name());
                worst = worst.max((usage.unwrap() - f64::from(cpu.cpu_usage())).abs() / 2.0);
            }
            if worst < closest.0 {
                closest = (
                    worst,
                    format!(
                        "{:?} vs {} {:?}",
                        ours.total_usage,
                        sys.global_cpu_usage(),
                        sys.cpus().iter().map(|c| c.cpu_usage()).collect::<Vec<_>>()
                    ),
                );
            }
            if worst < 3.0 {
                return;
            }
        }
        panic!("never within 3 % of sysinfo: {closest:?}");
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn memory_agrees_with_sysinfo() {
        use sysinfo::{MemoryRefreshKind, System};
        let mut sys = System::new();
        let mut file = KeptFile::new("/proc/meminfo", true);
        let ours = parse_meminfo(std::str::from_utf8(file.read().unwrap()).unwrap()).unwrap();
        sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        assert_eq!(ours.total, sys.total_memory());
        // Other tests allocate meanwhile: within 256 MiB.
        let near = |a: u64, b: u64| a.abs_diff(b) < 256 << 20;
        assert!(near(ours.available, sys.available_memory()), "{ours:?}");
        assert!(near(ours.used, sys.used_memory()), "{ours:?}");
        assert!(near(ours.swap_used.unwrap(), sys.used_swap()), "{ours:?}");
        assert_eq!(ours.used, ours.total - ours.available);
    }
}
