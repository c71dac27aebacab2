//! The figures read from `/proc` directly on Linux, where sysinfo reads many more files
//! than the sampler reports (each `/proc` or `/sys` file costs an open, a read and a close:
//! 5–15 µs of CPU back to back on the benchmark VM, several times that in rounds a second
//! apart, when the kernel's and the sampler's caches are cold;
//! `cargo bench -p heimdall-perf-system --bench sample`):
//!
//! * **network totals** ([`NetTotals`]): one read of `/proc/net/dev` for every interface.
//!   sysinfo's `Networks::refresh` opens seven `/sys/class/net/<iface>/…` files per
//!   interface and asks the kernel for every address over netlink: about 0.4 ms of CPU a
//!   round on a host with four interfaces, more than half of a whole round of the sampler.
//! * **this process** ([`SelfFiles`]): threads, virtual and resident size from one read of
//!   `/proc/self/stat`, disk bytes from `/proc/self/io`, where sysinfo reads `stat`,
//!   `statm`, `status`, `io`, the task list and `/proc/uptime`.
//!
//! Elsewhere, or where these files cannot be read, sysinfo gives the same figures.

use sysinfo::Networks;

/// Where the totals come from.
pub(crate) enum NetTotals {
    /// `/proc/net/dev` (or a file of its format), read into a buffer kept between rounds.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    ProcNetDev {
        /// The file read.
        path: std::path::PathBuf,
        /// The bytes of the last read (interface names need not be UTF-8).
        buf: Vec<u8>,
    },
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
            let mut buf = Vec::new();
            if read_into(PROC_NET_DEV.as_ref(), &mut buf).is_ok() {
                let path = PROC_NET_DEV.into();
                return NetTotals::ProcNetDev { path, buf };
            }
        }
        NetTotals::Sysinfo(Networks::new_with_refreshed_list())
    }

    /// Reads the totals now and hands each interface's (name, received, sent) bytes to `f`.
    /// Returns `false` if nothing could be read this round.
    pub(crate) fn read(&mut self, mut f: impl FnMut(&str, u64, u64)) -> bool {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            NetTotals::ProcNetDev { path, buf } => {
                if read_into(path, buf).is_err() {
                    return false;
                }
                // A name that is not UTF-8 (Linux allows any byte but `/`, `:` and white
                // space) gets U+FFFD for its odd bytes, and the other interfaces their own.
                for (name, rx, tx) in parse_proc_net_dev(&String::from_utf8_lossy(buf)) {
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
    /// Bytes fetched from and sent to storage, if `/proc/self/io` was read.
    pub(crate) disk: Option<(u64, u64)>,
}

/// Reads [`SelfReading`]s from `/proc/self/stat` and `/proc/self/io`, keeping the buffers.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Debug)]
pub(crate) struct SelfFiles {
    stat: Vec<u8>,
    io: Vec<u8>,
    page_size: u64,
    read_io: bool,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl SelfFiles {
    /// The reader, if `/proc/self/stat` can be read and parsed here; `read_io` says
    /// whether to read `/proc/self/io` too.
    pub(crate) fn new(read_io: bool) -> Option<Self> {
        // SAFETY: sysconf only reads a configuration value.
        let page_size = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
        let mut files = SelfFiles {
            stat: Vec::new(),
            io: Vec::new(),
            page_size,
            read_io,
        };
        files.read()?;
        Some(files)
    }

    /// One reading; `None` if `/proc/self/stat` could not be read or parsed. A failed
    /// `/proc/self/io` leaves only `disk` out.
    pub(crate) fn read(&mut self) -> Option<SelfReading> {
        read_into("/proc/self/stat".as_ref(), &mut self.stat).ok()?;
        // The command name may hold any byte (a name cut inside a UTF-8 character, say):
        // only what follows its closing parenthesis is read, and that is ASCII.
        let close = self.stat.iter().rposition(|&b| b == b')')?;
        let (threads, virtual_bytes, resident_pages) =
            parse_stat(std::str::from_utf8(&self.stat[close..]).ok()?)?;
        let disk = if self.read_io {
            read_into("/proc/self/io".as_ref(), &mut self.io)
                .ok()
                .and_then(|()| parse_io(std::str::from_utf8(&self.io).ok()?))
        } else {
            None
        };
        Some(SelfReading {
            threads: Some(threads),
            virtual_bytes,
            resident_bytes: resident_pages.saturating_mul(self.page_size),
            disk,
        })
    }
}

/// Threads, virtual size (bytes) and resident set (pages) of a `/proc/<pid>/stat` line:
/// fields 20, 23 and 24, counted after the command name, which is in parentheses and may
/// itself hold spaces and parentheses.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
pub(crate) fn parse_stat(text: &str) -> Option<(u64, u64, u64)> {
    let (_, after_name) = text.rsplit_once(')')?;
    // The first field after the name is the state, field 3.
    let mut fields = after_name.split_whitespace();
    let threads = fields.nth(20 - 3)?.parse().ok()?;
    let virtual_bytes = fields.nth(23 - 20 - 1)?.parse().ok()?;
    let resident_pages = fields.next()?.parse().ok()?;
    Some((threads, virtual_bytes, resident_pages))
}

/// `read_bytes` and `write_bytes` of a `/proc/<pid>/io` text.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
pub(crate) fn parse_io(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("read_bytes")?, field("write_bytes")?))
}

/// Reads the file at `path` into `buf` (cleared first), keeping `buf`'s allocation.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_into(path: &std::path::Path, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    buf.clear();
    std::fs::File::open(path)?.read_to_end(buf)?;
    Ok(())
}

/// The interfaces of a `/proc/net/dev` text: name, received bytes (the first column after
/// the name), sent bytes (the ninth). The two header lines (which have no colon), and any
/// line that does not have a name, a colon and at least nine numbers, are skipped.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
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
    fn self_files_agree_with_statm_and_status() {
        let mut files = SelfFiles::new(true).unwrap();
        let reading = files.read().unwrap();
        let statm: Vec<u64> = std::fs::read_to_string("/proc/self/statm")
            .unwrap()
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        let page = files.page_size;
        assert_eq!(reading.virtual_bytes, statm[0] * page);
        // Resident pages move as the test runs: within 1 MiB.
        assert!(reading.resident_bytes.abs_diff(statm[1] * page) < 1 << 20);
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
        assert!(read >= 1 && read.abs_diff(threads) <= 8);
        match std::fs::read_to_string("/proc/self/io") {
            Ok(io) => assert!(reading.disk.unwrap().0 <= parse_io(&io).unwrap().0),
            Err(_) => assert_eq!(reading.disk, None),
        }
        assert_eq!(SelfFiles::new(false).unwrap().read().unwrap().disk, None);
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
}
