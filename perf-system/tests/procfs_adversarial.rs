//! Hostile uses of the `/proc` readers of the system source (Linux): `/proc/net/dev` for
//! the network totals, `/proc/self/stat` and `/proc/self/io` for this process.
//!
//! `procfs.rs`'s parsers are `pub(crate)`, so these tests go through the public API only
//! (`SystemSource::read_with` and a real `ProfilingSession`). Tests that rename the process
//! (its main thread's `comm`, what `/proc/self/stat` shows) do it in a child process: this
//! test binary run again, on one test, with `PROCFS_ADV_CHILD` set.
//!
//! The tests look at the whole process (threads, network traffic on `lo`), so they run one
//! at a time (`serial`).
#![cfg(target_os = "linux")]

mod common;

use common::{round, serial};

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use heimdall_perf_core::series_names as sn;
use heimdall_perf_system::{Figures, SystemSource};

const CHILD_ENV: &str = "PROCFS_ADV_CHILD";

/// `Threads`, `VmSize` and `VmRSS` (bytes) of `/proc/self/status`.
fn status() -> (f64, f64, f64) {
    // Bytes: `Name:` holds the process name as it is, maybe not UTF-8.
    let s = String::from_utf8_lossy(&std::fs::read("/proc/self/status").unwrap()).into_owned();
    let field = |name: &str| -> f64 {
        let line = s.lines().find(|l| l.starts_with(name)).unwrap();
        let v: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        if line.ends_with("kB") {
            v * 1024.0
        } else {
            v
        }
    };
    (field("Threads:"), field("VmSize:"), field("VmRSS:"))
}

/// Interfaces of `/proc/net/dev` with their (rx, tx) bytes, parsed here independently.
fn proc_net_dev() -> BTreeMap<String, (u64, u64)> {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap();
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let cols: Vec<u64> = rest
                .split_whitespace()
                .map(|c| c.parse().unwrap())
                .collect();
            Some((name.trim().to_string(), (cols[0], cols[8])))
        })
        .collect()
}

/// Runs this binary's test `name` alone in a child process with `CHILD_ENV=mode`;
/// returns its combined output, failing if the child failed.
fn run_child(name: &str, mode: &str) -> String {
    heimdall_perf_testkit::child::run_test_alone(name, CHILD_ENV, mode)
}

/// Renames this process (its main thread, the task whose `comm` `/proc/self/stat` shows)
/// to the raw bytes `name` (the kernel keeps 15 of them). From any thread of the process:
/// `/proc/self/comm` is the thread group leader's.
fn rename_process(name: &[u8]) {
    std::fs::write("/proc/self/comm", name).expect("write /proc/self/comm");
}

fn stat_comm_bytes() -> Vec<u8> {
    let stat = std::fs::read("/proc/self/stat").unwrap();
    let open = stat.iter().position(|&b| b == b'(').unwrap();
    let close = stat.iter().rposition(|&b| b == b')').unwrap();
    stat[open + 1..close].to_vec()
}

/// Asserts that a round of process figures has every series, no failure, and agrees with
/// `/proc/self/status`.
fn assert_process_round_agrees(source: &mut SystemSource, what: &str) {
    // Twice: the second round has the rates.
    round(source);
    std::thread::sleep(Duration::from_millis(20));
    let (values, failed) = round(source);
    let (threads, vm_size, vm_rss) = status();
    assert!(
        failed.is_empty(),
        "{what}: failed {failed:?}, values {values:?}"
    );
    let got = |name: &str| -> f64 {
        *values
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name} in {values:?}"))
    };
    assert!(
        (got(sn::PROCESS_THREADS) - threads).abs() <= 2.0,
        "{what}: threads {values:?} vs {threads}"
    );
    assert!(
        (got(sn::PROCESS_MEMORY_VIRTUAL) - vm_size).abs() < 64e6,
        "{what}: virtual {values:?} vs {vm_size}"
    );
    assert!(
        (got(sn::PROCESS_MEMORY_RESIDENT) - vm_rss).abs() < 8e6,
        "{what}: resident {values:?} vs {vm_rss}"
    );
    assert!(got(sn::PROCESS_CPU) >= 0.0);
}

// ---------------------------------------------------------------------------------------
// This process's name in /proc/self/stat.

/// A process whose name holds spaces and parentheses, arranged to look like the fields that
/// follow (`x) R 1 (y z`): the figures are still those of `/proc/self/status`.
#[test]
fn a_process_named_like_stat_fields_reads_the_right_fields() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("parens") {
        let mut source = SystemSource::with_figures(Figures::none().with_process(true));
        for name in [
            &b"x) R 1 (y z"[..],
            b") ) ) 9 9 9 9",
            b"(((",
            b"a b c d e f g h",
            b")",
        ] {
            rename_process(name);
            assert_eq!(stat_comm_bytes(), name);
            assert_process_round_agrees(&mut source, &String::from_utf8_lossy(name));
        }
        return;
    }
    let _g = serial();
    run_child(
        "a_process_named_like_stat_fields_reads_the_right_fields",
        "parens",
    );
}

/// A process named, before its sampler starts, with bytes that are not UTF-8 (what the
/// kernel's 15-byte cut leaves of a longer UTF-8 name: `Prüfstand-Kameraü` cut inside
/// the `ü`): the figures are still read, and agree with `/proc/self/status`.
#[test]
fn a_process_named_in_bytes_that_are_not_utf8_before_the_sampler_starts() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("latin-before") {
        rename_process("Prüfstand-Kamü".as_bytes());
        let comm = stat_comm_bytes();
        assert_eq!(comm.len(), 15);
        assert!(std::str::from_utf8(&comm).is_err(), "{comm:?}");
        let mut source = SystemSource::with_figures(Figures::none().with_process(true));
        assert_process_round_agrees(&mut source, "non-UTF-8 name before the start");
        return;
    }
    let _g = serial();
    run_child(
        "a_process_named_in_bytes_that_are_not_utf8_before_the_sampler_starts",
        "latin-before",
    );
}

/// A process that renames its main thread after the sampler started, with a name the
/// kernel cuts inside a UTF-8 character (a German or Japanese name longer than 15 bytes):
/// `/proc/self/stat` is then not UTF-8, and the figures must still be read.
///
/// Found here: `/proc/self/stat` was read as a `String`, which failed, and every
/// `process.*` series was counted as failed for the rest of the run (`process.cpu` too).
/// Now the file is read as bytes and only what follows the name is parsed; a round that
/// still cannot read it falls back to sysinfo.
#[test]
fn a_process_renamed_to_non_utf8_bytes_while_sampling_keeps_its_figures() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("latin-after") {
        let mut source = SystemSource::with_figures(Figures::none().with_process(true));
        assert_process_round_agrees(&mut source, "ASCII name");
        // `Bildverarbeitung-ü` cut at 15 bytes: ends with the first byte of `ü`.
        rename_process("Prüfstand-Kamü".as_bytes());
        assert!(std::str::from_utf8(&stat_comm_bytes()).is_err());
        assert_process_round_agrees(&mut source, "non-UTF-8 name after the start");
        return;
    }
    let _g = serial();
    run_child(
        "a_process_renamed_to_non_utf8_bytes_while_sampling_keeps_its_figures",
        "latin-after",
    );
}

/// A name with a newline and a tab (the kernel keeps them as they are).
#[test]
fn a_process_named_with_a_newline_reads_its_figures() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("newline") {
        let mut source = SystemSource::with_figures(Figures::none().with_process(true));
        rename_process(b"cam\n0) 1\t2");
        assert_process_round_agrees(&mut source, "newline name");
        return;
    }
    let _g = serial();
    run_child(
        "a_process_named_with_a_newline_reads_its_figures",
        "newline",
    );
}

// ---------------------------------------------------------------------------------------
// Network totals.

/// Traffic of a known size on `lo` between two rounds: the `lo` rates times the time between
/// the rounds are the bytes `/proc/net/dev` counted (received and sent: the same on `lo`),
/// not packets or another column.
#[test]
fn lo_rates_match_the_bytes_sent_over_loopback() {
    let _g = serial();
    let mut source = SystemSource::with_figures(Figures::none().with_network(true));
    // The rate covers the time between the two rounds' readings, which lie somewhere in
    // each round: timed from before the first to after the second, and from after the first
    // to before the second (a loaded machine may hold a round up for a while).
    let t0 = Instant::now();
    let (values, failed) = round(&mut source);
    let t1 = Instant::now();
    assert!(
        values.is_empty() && failed.is_empty(),
        "{values:?} {failed:?}"
    );
    let before = proc_net_dev()["lo"];
    // 20 MB of UDP over loopback.
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_nonblocking(true).unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    let payload = vec![0x5a_u8; 60_000];
    let mut buf = vec![0u8; 65_536];
    let mut sent = 0u64;
    while sent < 20_000_000 {
        tx.send(&payload).unwrap();
        sent += payload.len() as u64;
        while rx.recv(&mut buf).is_ok() {}
    }
    std::thread::sleep(Duration::from_millis(50));
    let after = proc_net_dev()["lo"];
    let t2 = Instant::now();
    let (values, failed) = round(&mut source);
    let (longest, shortest) = (t0.elapsed().as_secs_f64(), (t2 - t1).as_secs_f64());
    assert!(failed.is_empty(), "{failed:?}");
    let rx_rate = values["network.lo.rx"];
    let tx_rate = values["network.lo.tx"];
    let counted = (after.0 - before.0) as f64;
    eprintln!(
        "lo: sent {sent}, counted {counted}, rx {rx_rate} B/s tx {tx_rate} B/s over {shortest} to {longest} s"
    );
    assert!(counted >= sent as f64, "{counted} < {sent}");
    // The rate covers a little more than [before, after]; the traffic is all inside it
    // (and little else goes over loopback meanwhile).
    for rate in [rx_rate, tx_rate] {
        let (least, most) = (rate * shortest, rate * longest);
        assert!(
            most > 0.99 * counted && least < 1.25 * counted,
            "rate {rate} B/s x {shortest} to {longest} s = {least} to {most} B, /proc/net/dev counted {counted} B"
        );
    }
}

/// Every interface of `/proc/net/dev` gets an rx and a tx series from the second round,
/// and no other network series appears; rates are finite and not negative.
#[test]
fn every_interface_has_its_two_series_and_nothing_else() {
    let _g = serial();
    let mut source = SystemSource::with_figures(Figures::none().with_network(true));
    round(&mut source);
    std::thread::sleep(Duration::from_millis(10));
    let (values, failed) = round(&mut source);
    assert!(failed.is_empty(), "{failed:?}");
    let want: BTreeSet<String> = proc_net_dev()
        .keys()
        .flat_map(|i| [format!("network.{i}.rx"), format!("network.{i}.tx")])
        .collect();
    let got: BTreeSet<String> = values.keys().cloned().collect();
    assert_eq!(got, want);
    assert!(
        values.values().all(|v| v.is_finite() && *v >= 0.0),
        "{values:?}"
    );
}

/// Rounds in quick succession (the sampler's shortest interval and faster): no round
/// divides by a zero or negative time, no value is NaN or infinite.
#[test]
fn back_to_back_rounds_give_finite_rates() {
    let _g = serial();
    let mut source =
        SystemSource::with_figures(Figures::none().with_network(true).with_process(true));
    for _ in 0..2000 {
        let (values, failed) = round(&mut source);
        assert!(failed.is_empty(), "{failed:?}");
        for (k, v) in &values {
            assert!(v.is_finite() && *v >= 0.0, "{k} = {v}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Through a real session.

/// The sampler in a real session at 20 ms: its process figures agree with
/// `/proc/self/status`, every interface has its series, and no read failed.
#[test]
fn a_session_s_series_agree_with_proc() {
    let _g = serial();
    let mut s = common::session("procfs-agree", Duration::from_millis(20));
    s.start_system_metrics().unwrap();
    let p = common::wait_points(&s, "network.lo.rx", 5, Duration::from_secs(60));
    assert!(p.len() >= 5, "{p:?}");
    let (threads, vm_size, vm_rss) = status();
    let r = s.report();
    s.stop();
    assert!(
        r.diagnostics.sampler_failures.is_empty(),
        "{:?}",
        r.diagnostics.sampler_failures
    );
    let last = |name: &str| r.series(name).unwrap().points.last().unwrap().last;
    // Threads move by a few while the test runs (the series is read after the stop).
    assert!((last(sn::PROCESS_THREADS) - threads).abs() <= 3.0);
    assert!((last(sn::PROCESS_MEMORY_VIRTUAL) - vm_size).abs() < 64e6);
    assert!((last(sn::PROCESS_MEMORY_RESIDENT) - vm_rss).abs() < 16e6);
    for iface in proc_net_dev().keys() {
        for dir in ["rx", "tx"] {
            let name = format!("network.{iface}.{dir}");
            let series = r.series(&name).unwrap_or_else(|| panic!("no {name}"));
            assert_eq!(series.unit, "bytes/s");
            assert!(series
                .points
                .iter()
                .all(|p| p.min >= 0.0 && p.max.is_finite()));
        }
    }
    let disk_io = std::fs::read("/proc/self/io").is_ok();
    assert_eq!(r.series(sn::PROCESS_DISK_READ).is_some(), disk_io);
}
