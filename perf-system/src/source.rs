//! [`SystemSource`]: the system and process figures, read on the thread that samples the
//! session's periodic sources (its aggregator thread: the source is quick).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use heimdall_perf_core::series_names as sn;
use heimdall_perf_core::{PeriodicSource, Samples, SourceFactory};
use sysinfo::{
    CpuRefreshKind, MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System,
};

use crate::platform;
#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::procfs::KeptFile;
use crate::procfs::{NetTotals, SelfReading};

/// Name of the source (a failed read is counted as `system/<series>`). The source is quick:
/// it has no thread of its own, the session's aggregator thread samples it.
pub const SOURCE_NAME: &str = "system";

/// Unit of CPU usage series.
pub const UNIT_PERCENT: &str = "%";
/// Unit of memory series.
pub const UNIT_BYTES: &str = "bytes";
/// Unit of disk and network rates.
pub const UNIT_BYTES_PER_SECOND: &str = "bytes/s";
/// Unit of load averages: runnable (and, on Linux, uninterruptible) tasks.
pub const UNIT_TASKS: &str = "tasks";
/// Unit of the thread count.
pub const UNIT_THREADS: &str = "threads";

/// Which groups of figures a [`SystemSource`] reads. Each group costs its own reads, so a
/// group left out costs nothing. [`Figures::all`] (the default) reads everything.
///
/// ```
/// use heimdall_perf_system::Figures;
/// let figures = Figures::all().with_network(false);
/// assert!(figures.process && !figures.network);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Figures {
    /// Whole-machine CPU usage (`system.cpu.total`).
    pub system_cpu: bool,
    /// Per-core CPU usage (`system.cpu.core.<n>`).
    pub per_core_cpu: bool,
    /// Memory used, available and total, and swap used.
    pub memory: bool,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: bool,
    /// This process: CPU, resident and virtual memory, threads, disk read/write rates.
    pub process: bool,
    /// Bytes per second received and sent, per network interface.
    pub network: bool,
}

impl Figures {
    /// These figures with whole-machine CPU usage read or not.
    #[must_use]
    pub const fn with_system_cpu(mut self, on: bool) -> Self {
        self.system_cpu = on;
        self
    }

    /// These figures with per-core CPU usage read or not.
    #[must_use]
    pub const fn with_per_core_cpu(mut self, on: bool) -> Self {
        self.per_core_cpu = on;
        self
    }

    /// These figures with memory and swap read or not.
    #[must_use]
    pub const fn with_memory(mut self, on: bool) -> Self {
        self.memory = on;
        self
    }

    /// These figures with load averages read or not.
    #[must_use]
    pub const fn with_load(mut self, on: bool) -> Self {
        self.load = on;
        self
    }

    /// These figures with this process's figures read or not.
    #[must_use]
    pub const fn with_process(mut self, on: bool) -> Self {
        self.process = on;
        self
    }

    /// These figures with per-interface network rates read or not.
    #[must_use]
    pub const fn with_network(mut self, on: bool) -> Self {
        self.network = on;
        self
    }

    /// Every figure.
    pub const fn all() -> Self {
        Figures {
            system_cpu: true,
            per_core_cpu: true,
            memory: true,
            load: true,
            process: true,
            network: true,
        }
    }

    /// No figure (turn on the ones wanted with struct update syntax).
    pub const fn none() -> Self {
        Figures {
            system_cpu: false,
            per_core_cpu: false,
            memory: false,
            load: false,
            process: false,
            network: false,
        }
    }
}

impl Default for Figures {
    fn default() -> Self {
        Figures::all()
    }
}

/// The last reading of this process's cumulative counters, to turn them into rates.
#[derive(Debug, Clone, Copy)]
struct ProcessMark {
    at: Instant,
    cpu: Option<Duration>,
    read_bytes: Option<u64>,
    written_bytes: Option<u64>,
}

/// A network interface seen in the last round: its series names and its byte totals then.
#[derive(Debug)]
struct Interface {
    rx_name: String,
    tx_name: String,
    rx: u64,
    tx: u64,
    /// The round that last saw it; interfaces gone from a round are forgotten.
    round: u64,
}

impl Interface {
    fn new(iface: &str, rx: u64, tx: u64, round: u64) -> Self {
        Interface {
            rx_name: format!("{}{iface}.rx", sn::NETWORK_PREFIX),
            tx_name: format!("{}{iface}.tx", sn::NETWORK_PREFIX),
            rx,
            tx,
            round,
        }
    }
}

/// The series counted as failed in a round whose interface totals could not be read.
const NETWORK_FAILED: &str = "network.*";

/// Reads the system and process figures when asked (a [`PeriodicSource`] named `system`).
///
/// On Linux it reads `/proc` itself, one file per group of figures, each opened once and
/// kept open, re-read from offset 0 every round (`pread`; no open and close a round):
///
/// | figures | file |
/// |---|---|
/// | system CPU, whole and per core | `/proc/stat` (the `cpu` lines), usage computed as sysinfo does |
/// | memory and swap | `/proc/meminfo`, with sysinfo's definitions |
/// | this process | `/proc/self/statm` (sizes), the link count of `/proc/self/task` (threads) |
/// | network | `/proc/net/dev` |
///
/// The load averages come from libc's `getloadavg` (glibc: one `sysinfo(2)` call), this
/// process's storage bytes from `getrusage`.
///
/// A kept file that cannot be read is opened again once; if that fails too, the round
/// reads the figures as elsewhere: through one `sysinfo::System` refreshing only what it
/// reports (CPU times, memory, this one process — never the process list) and
/// `sysinfo::Networks`. (System CPU, whose usage needs a previous reading of the same
/// kind, then stays on sysinfo, and its series miss that one round.)
///
/// Rates (`process.cpu`, `process.disk.*`, `network.*`) are differences between two
/// readings, and the first [`sample`](PeriodicSource::sample) is their baseline: it
/// reports no rate, so that every rate point is measured over one whole sampling interval
/// on the sampling thread (measured from the construction instead, the first point covered
/// the sampler's start-up — thread creation, first reads of `/proc` — over a fraction of a
/// millisecond, and read e.g. 107 % of a core in an idle process).
///
/// System CPU usage is refreshed at most every [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`]
/// (200 ms on Linux): at shorter sampling intervals `system.cpu.*` gets a point only on
/// the rounds where it was refreshed, rather than repeated stale values (at an interval of
/// about 200 ms, a round that comes a little early skips them too).
pub struct SystemSource {
    figures: Figures,
    sys: System,
    networks: Option<NetTotals>,
    pid: Pid,
    /// Forks counted when `pid` was read (a child may have its parent's pid number).
    forks: u64,
    process_kind: ProcessRefreshKind,
    /// This process's figures from `/proc/self` (Linux), instead of sysinfo's refresh.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    self_files: Option<crate::procfs::SelfFiles>,
    /// System CPU from `/proc/stat` (Linux); `None`: sysinfo.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    proc_stat: Option<crate::procfs::ProcStat>,
    /// `/proc/meminfo` (Linux); `None`, or a round it cannot be read: sysinfo.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    meminfo: Option<KeptFile>,
    /// Linux without task I/O accounting reports no `/proc/self/io`; sysinfo would then
    /// report 0 bytes/s, which is not the same as "not available".
    disk_io_available: bool,
    /// (core number, series name), by ascending core number.
    core_names: Vec<(usize, String)>,
    interfaces: HashMap<String, Interface>,
    network_round: u64,
    last_cpu_refresh: Option<Instant>,
    last_process: Option<ProcessMark>,
    last_network: Option<Instant>,
}

impl std::fmt::Debug for SystemSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemSource")
            .field("figures", &self.figures)
            .field("pid", &self.pid)
            .field("cores", &self.core_names.len())
            .field("interfaces", &self.interfaces.len())
            .finish_non_exhaustive()
    }
}

impl Default for SystemSource {
    fn default() -> Self {
        SystemSource::new()
    }
}

impl SystemSource {
    /// A source reading every figure.
    pub fn new() -> Self {
        SystemSource::with_figures(Figures::all())
    }

    /// A source reading only `figures`. Takes the first reading of CPU times, this
    /// process's counters and the network interfaces.
    pub fn with_figures(figures: Figures) -> Self {
        let mut process_kind = ProcessRefreshKind::nothing().with_memory().with_tasks();
        if figures.process {
            process_kind = process_kind.with_disk_usage();
            if !platform::HAS_CPU_CLOCKS {
                process_kind = process_kind.with_cpu();
            }
        }
        let disk_io_available = if cfg!(any(target_os = "linux", target_os = "android")) {
            std::fs::read("/proc/self/io").is_ok()
        } else {
            true
        };
        let mut source = SystemSource {
            figures,
            sys: System::new(),
            networks: None,
            pid: Pid::from_u32(std::process::id()),
            forks: platform::fork_generation(),
            process_kind,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            self_files: figures
                .process
                .then(|| crate::procfs::SelfFiles::new(disk_io_available))
                .flatten(),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            proc_stat: (figures.system_cpu || figures.per_core_cpu)
                .then(crate::procfs::ProcStat::new)
                .flatten(),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            meminfo: figures.memory.then(|| KeptFile::new("/proc/meminfo", true)),
            disk_io_available,
            core_names: Vec::new(),
            interfaces: HashMap::new(),
            network_round: 0,
            last_cpu_refresh: None,
            last_process: None,
            last_network: None,
        };
        if figures.system_cpu || figures.per_core_cpu {
            // The first counters, the baseline of the first usage (read from `/proc/stat`
            // by `ProcStat::new` where it is used).
            if !source.cpu_from_proc() {
                source
                    .sys
                    .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
            }
            source.last_cpu_refresh = Some(Instant::now());
        }
        // No process mark and no network totals yet: the first round is the rates' baseline.
        if figures.network {
            source.networks = Some(NetTotals::new());
        }
        source
    }

    /// The figures this source reads.
    pub fn figures(&self) -> Figures {
        self.figures
    }

    /// This process's figures now, and the CPU time sysinfo read with them (none from
    /// `/proc/self`, where the process CPU-time clock is read instead).
    fn read_process(&mut self) -> Option<(SelfReading, Option<Duration>)> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(reading) = self.self_files.as_mut().and_then(|f| f.read()) {
            return Some((reading, None));
        }
        // Not Linux, or `/proc/self` unreadable this round: sysinfo.
        let pids = [self.pid];
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            self.process_kind,
        );
        let p = self.sys.process(self.pid)?;
        let disk = p.disk_usage();
        let reading = SelfReading {
            // sysinfo lists the tasks other than the main thread (Linux only).
            threads: p.tasks().map(|tasks| tasks.len() as u64 + 1),
            virtual_bytes: p.virtual_memory(),
            resident_bytes: p.memory(),
            disk: self
                .disk_io_available
                .then_some((disk.total_read_bytes, disk.total_written_bytes)),
        };
        Some((
            reading,
            Some(Duration::from_millis(p.accumulated_cpu_time())),
        ))
    }

    /// Whether system CPU comes from `/proc/stat`.
    fn cpu_from_proc(&self) -> bool {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            self.proc_stat.is_some()
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            false
        }
    }

    fn sample_cpu(&mut self, out: &mut impl Out) {
        if !(self.figures.system_cpu || self.figures.per_core_cpu) {
            return;
        }
        let due = self
            .last_cpu_refresh
            .is_none_or(|t| t.elapsed() >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        if !due {
            return;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(stat) = self.proc_stat.as_mut() {
            let read = stat.read();
            self.last_cpu_refresh = Some(Instant::now());
            match read {
                Ok(()) => {
                    let state = &stat.state;
                    if self.figures.system_cpu {
                        match state.total_usage {
                            Some(usage) => out.record(sn::SYSTEM_CPU_TOTAL, UNIT_PERCENT, usage),
                            None => out.failed(sn::SYSTEM_CPU_TOTAL),
                        }
                    }
                    if self.figures.per_core_cpu {
                        for &(n, usage) in &state.core_usage {
                            let name = core_name(&mut self.core_names, n);
                            match usage {
                                Some(usage) => out.record(name, UNIT_PERCENT, usage),
                                None => out.failed(name),
                            }
                        }
                    }
                }
                Err(_) => {
                    // Not even after opening it again: sysinfo from now on. Its first
                    // refresh is its baseline (its usage would cover the time since boot),
                    // so this round has no figure.
                    self.proc_stat = None;
                    self.sys
                        .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
                    self.cpu_failed(out);
                }
            }
            return;
        }
        self.sys
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        self.last_cpu_refresh = Some(Instant::now());
        let cpus = self.sys.cpus();
        if cpus.is_empty() {
            self.cpu_failed(out);
            return;
        }
        if self.figures.system_cpu {
            out.record(
                sn::SYSTEM_CPU_TOTAL,
                UNIT_PERCENT,
                f64::from(self.sys.global_cpu_usage()),
            );
        }
        if self.figures.per_core_cpu {
            for (i, cpu) in cpus.iter().enumerate() {
                let name = core_name(&mut self.core_names, i);
                out.record(name, UNIT_PERCENT, f64::from(cpu.cpu_usage()));
            }
        }
    }

    /// Counts the system CPU series of this source as failed this round.
    fn cpu_failed(&self, out: &mut impl Out) {
        if self.figures.system_cpu {
            out.failed(sn::SYSTEM_CPU_TOTAL);
        }
        if self.figures.per_core_cpu {
            out.failed("system.cpu.core.*");
        }
    }

    fn sample_memory(&mut self, out: &mut impl Out) {
        if !self.figures.memory {
            return;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(Ok(text)) = self.meminfo.as_mut().map(KeptFile::read) {
            let reading = std::str::from_utf8(text)
                .ok()
                .and_then(crate::procfs::parse_meminfo);
            match reading {
                Some(m) => {
                    record_memory(out, m.used, m.available, m.total);
                    match m.swap_used {
                        Some(swap) => out.record(sn::SYSTEM_SWAP_USED, UNIT_BYTES, swap as f64),
                        None => out.failed(sn::SYSTEM_SWAP_USED),
                    }
                }
                None => memory_failed(out),
            }
            return;
        }
        // Not Linux, or `/proc/meminfo` unreadable this round: sysinfo.
        self.sys
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        let total = self.sys.total_memory();
        if total == 0 {
            // Nothing was read (sysinfo leaves zeros when it cannot read the figures).
            memory_failed(out);
            return;
        }
        record_memory(
            out,
            self.sys.used_memory(),
            self.sys.available_memory(),
            total,
        );
        out.record(
            sn::SYSTEM_SWAP_USED,
            UNIT_BYTES,
            self.sys.used_swap() as f64,
        );
    }

    fn sample_load(&mut self, out: &mut impl Out) {
        if !self.figures.load {
            return;
        }
        let names = [sn::SYSTEM_LOAD_1, sn::SYSTEM_LOAD_5, sn::SYSTEM_LOAD_15];
        // glibc's `getloadavg` is one `sysinfo(2)` call, no file: cheaper than a kept-open
        // `/proc/loadavg` and its parsing (BENCH.md).
        match platform::load_average() {
            Some(loads) => {
                for (name, value) in names.into_iter().zip(loads) {
                    out.record(name, UNIT_TASKS, value);
                }
            }
            None => {
                for name in names {
                    out.failed(name);
                }
            }
        }
    }

    fn sample_process(&mut self, out: &mut impl Out) {
        if !self.figures.process {
            return;
        }
        // A forked child reads itself, not the parent it was copied from (`/proc/self`
        // files opened again, sysinfo asked about its pid), and its first round is the
        // baseline of its rates: the parent's counters are not its own.
        let pid = std::process::id();
        let forks = platform::fork_generation();
        if self.pid.as_u32() != pid || self.forks != forks {
            self.pid = Pid::from_u32(pid);
            self.forks = forks;
            self.last_process = None;
        }
        let prev = self.last_process;
        let Some((p, sysinfo_cpu)) = self.read_process() else {
            for name in [
                sn::PROCESS_CPU,
                sn::PROCESS_MEMORY_RESIDENT,
                sn::PROCESS_MEMORY_VIRTUAL,
                sn::PROCESS_THREADS,
                sn::PROCESS_DISK_READ,
                sn::PROCESS_DISK_WRITE,
            ] {
                out.failed(name);
            }
            return;
        };
        out.record(
            sn::PROCESS_MEMORY_RESIDENT,
            UNIT_BYTES,
            p.resident_bytes as f64,
        );
        out.record(
            sn::PROCESS_MEMORY_VIRTUAL,
            UNIT_BYTES,
            p.virtual_bytes as f64,
        );
        match p.threads {
            Some(threads) => out.record(sn::PROCESS_THREADS, UNIT_THREADS, threads as f64),
            None => out.failed(sn::PROCESS_THREADS),
        }
        let cpu = process_cpu_now(sysinfo_cpu);
        // The instant of the CPU reading, not of the round's start: the refresh above costs
        // CPU time, which must not be divided by a wall time that leaves it out.
        let now = Instant::now();
        let mark = ProcessMark {
            at: now,
            cpu,
            read_bytes: p.disk.map(|d| d.0),
            written_bytes: p.disk.map(|d| d.1),
        };
        self.last_process = Some(mark);

        let prev = match prev {
            Some(prev) if now > prev.at => prev,
            _ => return,
        };
        let dt = now.duration_since(prev.at).as_secs_f64();
        match (prev.cpu, mark.cpu) {
            (Some(a), Some(b)) => {
                let busy = b.saturating_sub(a).as_secs_f64();
                out.record(sn::PROCESS_CPU, UNIT_PERCENT, busy / dt * 100.0);
            }
            _ => out.failed(sn::PROCESS_CPU),
        }
        for (name, a, b) in [
            (sn::PROCESS_DISK_READ, prev.read_bytes, mark.read_bytes),
            (
                sn::PROCESS_DISK_WRITE,
                prev.written_bytes,
                mark.written_bytes,
            ),
        ] {
            match (a, b) {
                (Some(a), Some(b)) => {
                    out.record(name, UNIT_BYTES_PER_SECOND, b.saturating_sub(a) as f64 / dt);
                }
                _ => out.failed(name),
            }
        }
    }

    fn sample_network(&mut self, out: &mut impl Out) {
        let Some(totals) = self.networks.as_mut() else {
            return;
        };
        let now = Instant::now();
        let dt = self
            .last_network
            .map(|t| now.saturating_duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        self.network_round = self.network_round.wrapping_add(1);
        let round = self.network_round;
        let interfaces = &mut self.interfaces;
        let read = totals.read(|iface, rx, tx| match interfaces.get_mut(iface) {
            Some(i) => {
                // A counter that went back: the interface was re-created (a camera's link
                // reset, say) and counts from 0 again. Its traffic since then is not known
                // (it may have wrapped past the old total): no point this round, rather
                // than a made-up figure, and a rate again from the next.
                let counted_on = rx >= i.rx && tx >= i.tx;
                if dt > 0.0 && counted_on {
                    let rate = |now: u64, before: u64| (now - before) as f64 / dt;
                    out.record(&i.rx_name, UNIT_BYTES_PER_SECOND, rate(rx, i.rx));
                    out.record(&i.tx_name, UNIT_BYTES_PER_SECOND, rate(tx, i.tx));
                }
                (i.rx, i.tx, i.round) = (rx, tx, round);
            }
            // An interface seen for the first time has no previous reading: no rate yet.
            None => {
                interfaces.insert(iface.to_string(), Interface::new(iface, rx, tx, round));
            }
        });
        if !read {
            // The totals stay those of the last reading, which the next rate covers from.
            out.failed(NETWORK_FAILED);
            return;
        }
        self.last_network = Some(now);
        interfaces.retain(|_, i| i.round == round);
    }
}

/// The series name of CPU core `n`, made the first time it is asked for.
fn core_name(names: &mut Vec<(usize, String)>, n: usize) -> &str {
    let i = match names.binary_search_by_key(&n, |e| e.0) {
        Ok(i) => i,
        Err(i) => {
            names.insert(i, (n, format!("{}{n}", sn::SYSTEM_CPU_CORE_PREFIX)));
            i
        }
    };
    &names[i].1
}

/// Records the three memory series.
fn record_memory(out: &mut impl Out, used: u64, available: u64, total: u64) {
    out.record(sn::SYSTEM_MEMORY_USED, UNIT_BYTES, used as f64);
    out.record(sn::SYSTEM_MEMORY_AVAILABLE, UNIT_BYTES, available as f64);
    out.record(sn::SYSTEM_MEMORY_TOTAL, UNIT_BYTES, total as f64);
}

/// Counts the memory series as failed this round.
fn memory_failed(out: &mut impl Out) {
    for name in [
        sn::SYSTEM_MEMORY_USED,
        sn::SYSTEM_MEMORY_AVAILABLE,
        sn::SYSTEM_MEMORY_TOTAL,
        sn::SYSTEM_SWAP_USED,
    ] {
        out.failed(name);
    }
}

/// This process's CPU time now: the process CPU-time clock where there is one, else the
/// figure sysinfo read (10 ms resolution).
fn process_cpu_now(sysinfo_cpu: Option<Duration>) -> Option<Duration> {
    if platform::HAS_CPU_CLOCKS {
        crate::process_cpu_time().ok()
    } else {
        sysinfo_cpu
    }
}

/// Where a round's figures go: perf-core's [`Samples`], or a caller's closure.
trait Out {
    fn record(&mut self, series: &str, unit: &'static str, value: f64);
    fn failed(&mut self, series: &str);
}

impl Out for Samples<'_> {
    fn record(&mut self, series: &str, unit: &'static str, value: f64) {
        Samples::record(self, series, unit, value);
    }
    fn failed(&mut self, series: &str) {
        Samples::failed(self, series);
    }
}

struct FnOut<F>(F);

impl<F: FnMut(Reading<'_>)> Out for FnOut<F> {
    fn record(&mut self, series: &str, unit: &'static str, value: f64) {
        (self.0)(Reading::Value {
            series,
            unit,
            value,
        });
    }
    fn failed(&mut self, series: &str) {
        (self.0)(Reading::Failed { series });
    }
}

/// One figure of a round, as handed to [`SystemSource::read_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading<'a> {
    /// A value of the series `series`, in `unit`.
    Value {
        /// Series name (see `heimdall_perf_core::series_names`).
        series: &'a str,
        /// Unit of the value.
        unit: &'static str,
        /// The value.
        value: f64,
    },
    /// The series `series` could not be read this round.
    Failed {
        /// Series name.
        series: &'a str,
    },
}

impl SystemSource {
    /// Reads one round of figures and hands each to `f`, without a session: what
    /// [`sample`](PeriodicSource::sample) does, for a caller of its own (a health check, a
    /// benchmark of the reading cost).
    ///
    /// ```
    /// use heimdall_perf_system::{Figures, Reading, SystemSource};
    ///
    /// let mut source = SystemSource::with_figures(Figures::none().with_process(true));
    /// let mut rss = None;
    /// source.read_with(|r| {
    ///     if let Reading::Value { series: "process.memory.resident", value, .. } = r {
    ///         rss = Some(value);
    ///     }
    /// });
    /// assert!(rss.unwrap() > 0.0);
    /// ```
    pub fn read_with(&mut self, f: impl FnMut(Reading<'_>)) {
        self.read(&mut FnOut(f));
    }

    fn read(&mut self, out: &mut impl Out) {
        self.sample_cpu(out);
        self.sample_memory(out);
        self.sample_load(out);
        self.sample_process(out);
        self.sample_network(out);
    }
}

impl PeriodicSource for SystemSource {
    fn name(&self) -> &str {
        SOURCE_NAME
    }

    fn sample(&mut self, out: &mut Samples<'_>) {
        self.read(out);
    }

    /// Quick: a round reads a few kept-open `/proc` files (about 125 µs of CPU on the
    /// benchmark VM; sysinfo's refresh of this one process elsewhere), so the session's
    /// aggregator thread samples it, in the wake-up of one of its passes.
    fn is_quick(&self) -> bool {
        true
    }
}

/// The factory to register with `Registry::set_system_source`: every figure.
///
/// ```
/// use heimdall_perf_core::{ProfilingSession, Registry};
/// use std::sync::Arc;
///
/// let registry = Arc::new(Registry::new());
/// registry.set_system_source(heimdall_perf_system::factory());
/// let mut session = ProfilingSession::with_registry("doc", registry);
/// session.start_system_metrics()?;
/// session.stop();
/// # Ok::<(), heimdall_perf_core::PerfError>(())
/// ```
pub fn factory() -> SourceFactory {
    factory_with(Figures::all())
}

/// A factory of sources reading only `figures`.
pub fn factory_with(figures: Figures) -> SourceFactory {
    Arc::new(move || Ok(Box::new(SystemSource::with_figures(figures)) as Box<dyn PeriodicSource>))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(source: &mut SystemSource) -> (Vec<(String, &'static str, f64)>, Vec<String>) {
        let (mut values, mut failed) = (Vec::new(), Vec::new());
        source.read_with(|r| match r {
            Reading::Value {
                series,
                unit,
                value,
            } => values.push((series.to_string(), unit, value)),
            Reading::Failed { series } => failed.push(series.to_string()),
        });
        (values, failed)
    }

    #[test]
    fn no_figures_read_nothing() {
        let (values, failed) = round(&mut SystemSource::with_figures(Figures::none()));
        assert!(
            values.is_empty() && failed.is_empty(),
            "{values:?} {failed:?}"
        );
    }

    #[test]
    fn each_group_writes_only_its_series() {
        let memory = Figures {
            memory: true,
            ..Figures::none()
        };
        let (values, failed) = round(&mut SystemSource::with_figures(memory));
        let names: Vec<&str> = values.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(
            names,
            [
                sn::SYSTEM_MEMORY_USED,
                sn::SYSTEM_MEMORY_AVAILABLE,
                sn::SYSTEM_MEMORY_TOTAL,
                sn::SYSTEM_SWAP_USED
            ]
        );
        assert!(values.iter().all(|v| v.1 == UNIT_BYTES));
        assert!(failed.is_empty(), "{failed:?}");

        let load = Figures {
            load: true,
            ..Figures::none()
        };
        let (values, _) = round(&mut SystemSource::with_figures(load));
        let names: Vec<&str> = values.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(
            names,
            [sn::SYSTEM_LOAD_1, sn::SYSTEM_LOAD_5, sn::SYSTEM_LOAD_15]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn thread_count_matches_proc_status() {
        let status_threads = || -> f64 {
            let text = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = text.lines().find(|l| l.starts_with("Threads:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        let process = Figures {
            process: true,
            ..Figures::none()
        };
        let mut source = SystemSource::with_figures(process);
        // Hold a few extra threads so the count is not trivially 1 or 2.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let held: Vec<_> = (0..3)
            .map(|_| {
                let rx = std::sync::Arc::clone(&rx);
                std::thread::spawn(move || {
                    let _ = rx.lock().map(|r| r.recv());
                })
            })
            .collect();
        // Other tests of this binary start and end threads: retry until a stable reading.
        let mut last = (0.0, 0.0);
        for _ in 0..20 {
            let before = status_threads();
            let (values, _) = round(&mut source);
            let after = status_threads();
            let threads = values
                .iter()
                .find(|v| v.0 == sn::PROCESS_THREADS)
                .unwrap()
                .2;
            last = (threads, before);
            if before == after {
                break;
            }
        }
        drop(tx);
        for h in held {
            h.join().unwrap();
        }
        assert_eq!(last.0, last.1);
        assert!(last.0 >= 4.0);
    }

    #[test]
    fn network_interfaces_have_a_rate_from_the_second_round() {
        let network = Figures {
            network: true,
            ..Figures::none()
        };
        let mut source = SystemSource::with_figures(network);
        let (values, failed) = round(&mut source);
        assert!(
            values.is_empty() && failed.is_empty(),
            "{values:?} {failed:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
        let (values, failed) = round(&mut source);
        assert!(failed.is_empty());
        let ifaces: Vec<String> = match std::fs::read_dir("/sys/class/net") {
            Ok(dir) => dir
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect(),
            Err(_) => return, // not Linux: nothing to compare with
        };
        assert_eq!(values.len(), ifaces.len() * 2, "{values:?}");
        for iface in &ifaces {
            for dir in ["rx", "tx"] {
                let name = format!("network.{iface}.{dir}");
                let v = values.iter().find(|v| v.0 == name);
                assert!(
                    matches!(v, Some((_, UNIT_BYTES_PER_SECOND, x)) if *x >= 0.0),
                    "{name}: {v:?}"
                );
            }
        }
    }

    #[test]
    fn the_first_round_is_the_baseline_of_the_process_rates() {
        let process = Figures {
            process: true,
            ..Figures::none()
        };
        // Work between construction and the first round (as a session's start-up does)
        // must not show up as a rate over the first round.
        let mut source = SystemSource::with_figures(process);
        let t0 = Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let (values, failed) = round(&mut source);
        let rates = [
            sn::PROCESS_CPU,
            sn::PROCESS_DISK_READ,
            sn::PROCESS_DISK_WRITE,
        ];
        let first: Vec<_> = values
            .iter()
            .filter(|v| rates.contains(&v.0.as_str()))
            .collect();
        assert!(first.is_empty(), "rates in the baseline round: {first:?}");
        assert!(failed.is_empty(), "{failed:?}");
        // The next round measures over the interval between the two.
        std::thread::sleep(Duration::from_millis(100));
        let (values, _) = round(&mut source);
        let cpu = values
            .iter()
            .find(|v| v.0 == sn::PROCESS_CPU)
            .expect("process.cpu")
            .2;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!((0.0..=cores * 100.0 + 5.0).contains(&cpu), "{cpu} %");
        assert!(values
            .iter()
            .any(|v| v.0 == sn::PROCESS_CPU && v.1 == UNIT_PERCENT));
    }

    #[test]
    fn interfaces_that_go_and_come_back_wait_one_round_for_a_rate() {
        let mut source = SystemSource::with_figures(Figures::none().with_network(true));
        round(&mut source);
        let seen = source.interfaces.len();
        assert!(seen > 0);
        // An interface gone from the system (here: forgotten) is new again when it comes
        // back: no rate from totals read before it went.
        let gone = source.interfaces.keys().next().unwrap().clone();
        source.interfaces.remove(&gone);
        std::thread::sleep(Duration::from_millis(5));
        let (values, failed) = round(&mut source);
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(values.len(), (seen - 1) * 2, "{values:?}");
        assert!(values
            .iter()
            .all(|v| !v.0.starts_with(&format!("network.{gone}."))));
        let (values, _) = round(&mut source);
        assert_eq!(values.len(), seen * 2, "{values:?}");
        // Only interfaces of the last round are kept.
        source
            .interfaces
            .insert("eth9".into(), Interface::new("eth9", 0, 0, 0));
        round(&mut source);
        assert!(!source.interfaces.contains_key("eth9"));
        assert_eq!(source.interfaces["lo"].rx_name, "network.lo.rx");
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn sysinfo_reads_the_same_process_figures_as_proc_self() {
        let figure = |values: &[(String, &'static str, f64)], name: &str| {
            values.iter().find(|v| v.0 == name).map(|v| v.2).unwrap()
        };
        let process = Figures::none().with_process(true);
        let mut fast = SystemSource::with_figures(process);
        let mut slow = SystemSource::with_figures(process);
        assert!(fast.self_files.is_some());
        slow.self_files = None;
        for _ in 0..2 {
            let (a, fa) = round(&mut fast);
            let (b, fb) = round(&mut slow);
            assert!(fa.is_empty() && fb.is_empty(), "{fa:?} {fb:?}");
            let names: Vec<&str> = a.iter().map(|v| v.0.as_str()).collect();
            assert_eq!(names, b.iter().map(|v| v.0.as_str()).collect::<Vec<_>>());
            let (va, vb) = (
                figure(&a, sn::PROCESS_MEMORY_VIRTUAL),
                figure(&b, sn::PROCESS_MEMORY_VIRTUAL),
            );
            assert!((va - vb).abs() < 64e6, "{va} {vb}");
            let (ra, rb) = (
                figure(&a, sn::PROCESS_MEMORY_RESIDENT),
                figure(&b, sn::PROCESS_MEMORY_RESIDENT),
            );
            assert!((ra - rb).abs() < 8e6, "{ra} {rb}");
            let (ta, tb) = (
                figure(&a, sn::PROCESS_THREADS),
                figure(&b, sn::PROCESS_THREADS),
            );
            assert!(ta >= 1.0 && (ta - tb).abs() <= 8.0, "{ta} {tb}");
        }
    }

    /// A network source whose totals come from a file in `/proc/net/dev`'s format, in a
    /// temporary folder (kept while the first item lives), and that file's path.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn net_from_file() -> (tempfile::TempDir, std::path::PathBuf, SystemSource) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev");
        let mut source = SystemSource::with_figures(Figures::none().with_network(true));
        source.networks = Some(NetTotals::ProcNetDev(KeptFile::new(&path, false)));
        (dir, path, source)
    }

    /// `/proc/net/dev` lines: `(name bytes, rx, tx)`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn net_dev(lines: &[(&[u8], u64, u64)]) -> Vec<u8> {
        let mut text = b"Inter-| Receive | Transmit\n face |bytes packets|bytes packets\n".to_vec();
        for (name, rx, tx) in lines {
            text.extend_from_slice(name);
            text.extend_from_slice(format!(": {rx} 0 0 0 0 0 0 0 {tx} 0 0 0 0 0 0 0\n").as_bytes());
        }
        text
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_recreated_interface_skips_a_round_instead_of_a_made_up_zero() {
        let (_dir, path, mut source) = net_from_file();
        std::fs::write(&path, net_dev(&[(b"gige0", 5_000, 9_000), (b"lo", 10, 10)])).unwrap();
        round(&mut source);
        // The camera link was re-created: its counters start again below the last reading.
        std::fs::write(&path, net_dev(&[(b"gige0", 300, 700), (b"lo", 20, 20)])).unwrap();
        let (values, failed) = round(&mut source);
        assert!(failed.is_empty(), "{failed:?}");
        let names: Vec<&str> = values.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(names, ["network.lo.rx", "network.lo.tx"]);
        // The next round has its rate again, from the new counters.
        std::fs::write(&path, net_dev(&[(b"gige0", 1_300, 700), (b"lo", 20, 20)])).unwrap();
        let (values, _) = round(&mut source);
        let rx = values.iter().find(|v| v.0 == "network.gige0.rx").unwrap().2;
        assert!(rx > 0.0, "{values:?}");
        let tx = values.iter().find(|v| v.0 == "network.gige0.tx").unwrap().2;
        assert_eq!(tx, 0.0);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn interface_names_that_are_not_utf8_or_hold_a_pipe_have_their_series() {
        let (_dir, path, mut source) = net_from_file();
        let ifaces = |n: u64| net_dev(&[(b"\xff\xfe", n, n), (b"cam|1", n, n), (b"lo", n, n)]);
        std::fs::write(&path, ifaces(100)).unwrap();
        round(&mut source);
        std::fs::write(&path, ifaces(200)).unwrap();
        let (values, failed) = round(&mut source);
        assert!(failed.is_empty(), "{failed:?}");
        let names: Vec<&str> = values.iter().map(|v| v.0.as_str()).collect();
        for name in [
            "network.\u{fffd}\u{fffd}.rx",
            "network.cam|1.tx",
            "network.lo.rx",
        ] {
            assert!(names.contains(&name), "{name} not in {names:?}");
        }
        assert_eq!(names.len(), 6);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_round_that_cannot_read_the_totals_fails_and_the_next_covers_both() {
        let (dir, path, mut source) = net_from_file();
        let text = |rx: u64| format!("Inter-| x\n face |y\n  eth7: {rx} 0 0 0 0 0 0 0 500 0\n");
        std::fs::write(&path, text(1000)).unwrap();
        assert_eq!(round(&mut source), (vec![], vec![]));
        let t0 = source.last_network.unwrap();
        // The kept descriptor fails (a directory's), and the file is gone when opened again.
        std::fs::remove_file(&path).unwrap();
        let Some(NetTotals::ProcNetDev(file)) = source.networks.as_mut() else {
            unreachable!()
        };
        file.spoil(std::fs::File::open(dir.path()).unwrap());
        let (values, failed) = round(&mut source);
        assert!(values.is_empty(), "{values:?}");
        assert_eq!(failed, ["network.*"]);
        // The next rate is measured from the last good reading, over both intervals.
        std::fs::write(&path, text(3000)).unwrap();
        let (values, failed) = round(&mut source);
        let dt = source
            .last_network
            .unwrap()
            .duration_since(t0)
            .as_secs_f64();
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(values[0].0, "network.eth7.rx");
        assert!(
            (values[0].2 - 2000.0 / dt).abs() < 1e-6 * values[0].2,
            "{values:?}"
        );
        assert_eq!(values[1].0, "network.eth7.tx");
        assert_eq!(values[1].2, 0.0);
    }

    /// A CPU source whose counters come from a file in `/proc/stat`'s format holding
    /// `text`, in a temporary folder (kept while the first item lives), and that path.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn cpu_from_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf, SystemSource) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        std::fs::write(&path, text).unwrap();
        let figures = Figures::none()
            .with_system_cpu(true)
            .with_per_core_cpu(true);
        let mut source = SystemSource::with_figures(figures);
        assert!(source.proc_stat.is_some());
        source.proc_stat = Some(crate::procfs::ProcStat::at(&path).unwrap());
        (dir, path, source)
    }

    /// One round with the system CPU due (as if 200 ms had passed).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn cpu_round(source: &mut SystemSource) -> (Vec<(String, &'static str, f64)>, Vec<String>) {
        source.last_cpu_refresh = None;
        round(source)
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn cpu_series_come_from_proc_stat_and_odd_counters_give_no_point() {
        // (user, idle) of the machine and of two cores.
        let stat = |lines: &[(&str, u64, u64)]| {
            let mut text = String::new();
            for (name, user, idle) in lines {
                text += &format!("{name} {user} 0 0 {idle} 0 0 0 0 0 0\n");
            }
            text + "intr 1 2\nctxt 3\n"
        };
        let (_dir, path, mut source) = cpu_from_file(&stat(&[
            ("cpu ", 100, 1900),
            ("cpu0", 50, 950),
            ("cpu1", 50, 950),
        ]));
        std::fs::write(
            &path,
            stat(&[
                ("cpu ", 400, 2000),
                ("cpu0", 300, 1000),
                ("cpu1", 100, 1100),
            ]),
        )
        .unwrap();
        let (values, failed) = cpu_round(&mut source);
        assert!(failed.is_empty(), "{failed:?}");
        let got: Vec<(&str, &str, f64)> = values.iter().map(|v| (v.0.as_str(), v.1, v.2)).collect();
        // busy / (busy + idle), of the differences.
        assert_eq!(
            got,
            [
                (sn::SYSTEM_CPU_TOTAL, UNIT_PERCENT, 300.0 / 400.0 * 100.0),
                ("system.cpu.core.0", UNIT_PERCENT, 250.0 / 300.0 * 100.0),
                ("system.cpu.core.1", UNIT_PERCENT, 50.0 / 200.0 * 100.0),
            ]
        );
        // Counters gone back and a core gone: failures, not a figure.
        std::fs::write(&path, stat(&[("cpu ", 10, 20), ("cpu0", 5, 10)])).unwrap();
        let (values, failed) = cpu_round(&mut source);
        assert!(values.is_empty(), "{values:?}");
        assert_eq!(
            failed,
            [
                sn::SYSTEM_CPU_TOTAL,
                "system.cpu.core.0",
                "system.cpu.core.1"
            ]
        );
        // Not due yet: nothing at all (the 200 ms rule).
        assert_eq!(round(&mut source), (vec![], vec![]));
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn an_unreadable_proc_stat_hands_over_to_sysinfo_after_one_failed_round() {
        let text = "cpu  1 0 0 9 0 0 0 0 0 0\ncpu0 1 0 0 9 0 0 0 0 0 0\n";
        let (dir, path, mut source) = cpu_from_file(text);
        // The kept descriptor fails and the file cannot be opened again.
        std::fs::remove_file(&path).unwrap();
        let Some(stat) = source.proc_stat.as_mut() else {
            unreachable!()
        };
        stat.spoil(std::fs::File::open(dir.path()).unwrap());
        let (values, failed) = cpu_round(&mut source);
        assert!(values.is_empty(), "{values:?}");
        assert_eq!(failed, [sn::SYSTEM_CPU_TOTAL, "system.cpu.core.*"]);
        assert!(source.proc_stat.is_none());
        // sysinfo took its baseline in that round: figures from the next due round.
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL + Duration::from_millis(10));
        let (values, failed) = cpu_round(&mut source);
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(values[0].0, sn::SYSTEM_CPU_TOTAL);
        assert_eq!(values.len(), 1 + source.sys.cpus().len());
        assert!(
            values.iter().all(|v| (0.0..=100.0).contains(&v.2)),
            "{values:?}"
        );
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn memory_comes_from_meminfo_and_falls_back_to_sysinfo() {
        let mut source = SystemSource::with_figures(Figures::none().with_memory(true));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meminfo");
        let names = [
            sn::SYSTEM_MEMORY_USED,
            sn::SYSTEM_MEMORY_AVAILABLE,
            sn::SYSTEM_MEMORY_TOTAL,
            sn::SYSTEM_SWAP_USED,
        ];
        // A text of /proc/meminfo's format, without swap lines.
        std::fs::write(&path, "MemTotal: 1000 kB\nMemAvailable: 600 kB\n").unwrap();
        source.meminfo = Some(KeptFile::new(&path, true));
        let (values, failed) = round(&mut source);
        let got: Vec<(&str, f64)> = values.iter().map(|v| (v.0.as_str(), v.2)).collect();
        assert_eq!(
            got,
            [
                (names[0], 409_600.0),
                (names[1], 614_400.0),
                (names[2], 1_024_000.0)
            ]
        );
        assert_eq!(failed, [sn::SYSTEM_SWAP_USED]);
        // Odd text: every series failed, no made-up zero.
        std::fs::write(&path, "MemTotal: lots\n").unwrap();
        let (values, failed) = round(&mut source);
        assert!(values.is_empty(), "{values:?}");
        assert_eq!(failed, names);
        // Unreadable: sysinfo, this round and the next.
        std::fs::remove_file(&path).unwrap();
        if let Some(file) = source.meminfo.as_mut() {
            file.spoil(std::fs::File::open(dir.path()).unwrap());
        }
        for _ in 0..2 {
            let (values, failed) = round(&mut source);
            assert!(failed.is_empty(), "{failed:?}");
            let got: Vec<&str> = values.iter().map(|v| v.0.as_str()).collect();
            assert_eq!(got, names);
            assert_eq!(values[2].2, source.sys.total_memory() as f64);
        }
    }
}
