//! The system source through a real session: its series and units, starting twice,
//! stopping, sampling at 10 ms, disk rates. The tests of this file look at the whole
//! process (its threads, its disk writes), so they run one at a time.

mod common;

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{points, proc_status, session, thread_names, wait_points, SAMPLER_COMM};
use heimdall_perf_core::series_names as sn;
use heimdall_perf_core::PerfError;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn starting_twice_is_a_clear_error_and_the_first_keeps_running() {
    let _g = serial();
    let mut s = session("twice", Duration::from_millis(20));
    s.start_system_metrics().unwrap();
    let err = s.start_system_metrics().unwrap_err();
    assert!(
        matches!(&err, PerfError::SourceAlreadyRunning { source_name, .. } if source_name == "system"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`system`") && msg.contains("already running") && msg.contains("twice"),
        "{msg}"
    );
    let n = points(&s, sn::PROCESS_THREADS).len();
    let after = wait_points(&s, sn::PROCESS_THREADS, n + 2, TIMEOUT);
    assert!(after.len() >= n + 2, "the first sampler stopped");
    s.stop();
    // One source ran: one point per round, no duplicates in time.
    let p = points(&s, sn::PROCESS_THREADS);
    assert!(p.windows(2).all(|w| w[0].t_ns < w[1].t_ns));
}

/// The system source is quick: the session's aggregator thread samples it, and it starts
/// no thread of its own. Stopping is prompt, and no round comes after.
#[test]
fn the_source_has_no_thread_of_its_own_and_stops_at_once() {
    let _g = serial();
    let interval = Duration::from_millis(500);
    let mut s = session("stop", interval);
    let before = threads();
    assert!(!before.values().any(|n| n == SAMPLER_COMM));
    s.start_system_metrics().unwrap();
    wait_points(&s, sn::PROCESS_THREADS, 1, TIMEOUT);
    let names = thread_names();
    assert!(!names.iter().any(|n| n == SAMPLER_COMM), "{names:?}");
    // No new thread of the library's (their names start with `heimdall-perf`) nor one
    // spawned from this test's thread (which would have its name). The test harness may
    // start or end a thread of another test meanwhile (they wait for `serial`), all the
    // more when a loaded machine lets it run late, so threads are compared by id and name.
    let this = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
    let after = threads();
    let new: Vec<&String> = after
        .iter()
        .filter(|(id, _)| !before.contains_key(id))
        .map(|(_, name)| name)
        .collect();
    assert!(
        new.iter()
            .all(|n| !n.starts_with("heimdall-perf") && **n != this.trim_end()),
        "new threads: {new:?} ({before:?} → {after:?})"
    );

    let t0 = Instant::now();
    s.stop();
    let took = t0.elapsed();
    assert!(
        took < interval,
        "stop took {took:?} (interval {interval:?})"
    );
    let names = thread_names();
    assert!(!names.iter().any(|n| n == SAMPLER_COMM), "{names:?}");

    let n = points(&s, sn::PROCESS_THREADS).len();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        points(&s, sn::PROCESS_THREADS).len(),
        n,
        "sampled after stop"
    );
}

#[test]
fn every_series_has_its_unit_and_agrees_with_proc() {
    let _g = serial();
    let mut s = session("series", Duration::from_millis(50));
    s.start_system_metrics().unwrap();
    // Long enough for two system CPU refreshes (at most one per 200 ms).
    wait_points(&s, sn::SYSTEM_CPU_TOTAL, 2, TIMEOUT);
    wait_points(&s, sn::PROCESS_CPU, 4, TIMEOUT);
    let threads_now = proc_status("Threads").unwrap() as f64;
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap();
    s.stop();
    let report = s.report();

    let ncores = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    let mut expected: Vec<(String, &str)> = vec![
        (sn::SYSTEM_CPU_TOTAL.into(), "%"),
        (sn::SYSTEM_MEMORY_USED.into(), "bytes"),
        (sn::SYSTEM_MEMORY_AVAILABLE.into(), "bytes"),
        (sn::SYSTEM_MEMORY_TOTAL.into(), "bytes"),
        (sn::SYSTEM_SWAP_USED.into(), "bytes"),
        (sn::SYSTEM_LOAD_1.into(), "tasks"),
        (sn::SYSTEM_LOAD_5.into(), "tasks"),
        (sn::SYSTEM_LOAD_15.into(), "tasks"),
        (sn::PROCESS_CPU.into(), "%"),
        (sn::PROCESS_MEMORY_RESIDENT.into(), "bytes"),
        (sn::PROCESS_MEMORY_VIRTUAL.into(), "bytes"),
        (sn::PROCESS_THREADS.into(), "threads"),
        (sn::PROCESS_DISK_READ.into(), "bytes/s"),
        (sn::PROCESS_DISK_WRITE.into(), "bytes/s"),
    ];
    for i in 0..ncores {
        expected.push((format!("{}{i}", sn::SYSTEM_CPU_CORE_PREFIX), "%"));
    }
    for iface in std::fs::read_dir("/sys/class/net").unwrap().flatten() {
        let iface = iface.file_name().into_string().unwrap();
        expected.push((format!("network.{iface}.rx"), "bytes/s"));
        expected.push((format!("network.{iface}.tx"), "bytes/s"));
    }
    for (name, unit) in &expected {
        let series = report
            .series(name)
            .unwrap_or_else(|| panic!("no series {name}"));
        assert_eq!(series.unit, *unit, "{name}");
        assert_eq!(series.source, "system", "{name}");
        assert!(!series.points.is_empty(), "{name}");
        for p in &series.points {
            assert!(p.last.is_finite() && p.last >= 0.0, "{name}: {p:?}");
        }
    }
    assert_eq!(
        report.series.len(),
        expected.len(),
        "unexpected series: {:?}",
        report.series.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    assert!(
        report.diagnostics.sampler_failures.is_empty(),
        "{:?}",
        report.diagnostics.sampler_failures
    );

    let last = |name: &str| report.series(name).unwrap().points.last().unwrap().last;
    for name in report
        .series
        .iter()
        .filter(|s| s.unit == "%" && s.name.starts_with("system.cpu"))
    {
        assert!(name.points.iter().all(|p| p.last <= 100.0), "{name:?}");
    }
    let mem_total = proc_status_meminfo("MemTotal");
    assert_eq!(last(sn::SYSTEM_MEMORY_TOTAL), mem_total);
    assert_eq!(
        last(sn::SYSTEM_MEMORY_USED) + last(sn::SYSTEM_MEMORY_AVAILABLE),
        mem_total
    );
    assert_eq!(last(sn::PROCESS_THREADS), threads_now);
    let load1: f64 = loadavg.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        (last(sn::SYSTEM_LOAD_1) - load1).abs() < 1.0,
        "{} vs /proc/loadavg {load1}",
        last(sn::SYSTEM_LOAD_1)
    );
}

/// This process's threads: id and name (`comm`).
fn threads() -> std::collections::BTreeMap<u64, String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            Some((id, comm.trim_end().to_string()))
        })
        .collect()
}

fn proc_status_meminfo(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text
        .lines()
        .find(|l| l.split(':').next() == Some(field))
        .unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024.0
}

#[test]
fn at_10_ms_every_round_is_kept_and_system_cpu_waits_for_its_minimum() {
    let _g = serial();
    let mut s = session("fast", Duration::from_millis(10));
    s.start_system_metrics().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    s.stop();
    let report = s.report();
    let duration_ms = report.session.duration_ns as f64 / 1e6;

    let rss = &report.series(sn::PROCESS_MEMORY_RESIDENT).unwrap().points;
    // One point per round, raw (bucket merging starts at 2048 points).
    assert!(rss.iter().all(|p| p.count == 1));
    assert!(rss.windows(2).all(|w| w[0].t_ns < w[1].t_ns));
    let rounds = rss.len() as f64;
    assert!(
        rounds >= duration_ms / 10.0 * 0.5 && rounds <= duration_ms / 10.0 + 2.0,
        "{rounds} rounds in {duration_ms:.0} ms"
    );
    let mut gaps: Vec<u64> = rss.windows(2).map(|w| w[1].t_ns - w[0].t_ns).collect();
    gaps.sort_unstable();
    let median_ms = gaps[gaps.len() / 2] as f64 / 1e6;
    assert!(
        (9.0..=15.0).contains(&median_ms),
        "median gap {median_ms} ms"
    );

    // System CPU is refreshed at most every 200 ms: fewer points, none repeated stale.
    let cpu = &report.series(sn::SYSTEM_CPU_TOTAL).unwrap().points;
    assert!(
        !cpu.is_empty() && cpu.len() as f64 <= duration_ms / 200.0 + 1.0,
        "{} system CPU points in {duration_ms:.0} ms",
        cpu.len()
    );
    assert!(cpu.windows(2).all(|w| w[1].t_ns - w[0].t_ns >= 190_000_000));
}

#[test]
fn disk_write_rate_integrates_to_the_bytes_written() {
    let _g = serial();
    let io_write_bytes = || -> f64 {
        let text = std::fs::read_to_string("/proc/self/io").unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("write_bytes:"))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    // Each point is stamped with its round's start, while its rate covers the time between
    // two readings: a round that a loaded machine holds up between its start and its reading
    // shifts the two apart. The interval is long beside such delays.
    let mut s = session("disk", Duration::from_millis(200));
    s.start_system_metrics().unwrap();
    wait_points(&s, sn::PROCESS_DISK_WRITE, 2, TIMEOUT);
    let n0 = points(&s, sn::PROCESS_DISK_WRITE).len();
    let w0 = io_write_bytes();

    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("perf-system-disk-test");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0x5au8; 1 << 20];
    for _ in 0..16 {
        f.write_all(&block).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let written = io_write_bytes() - w0;
    let n1 = points(&s, sn::PROCESS_DISK_WRITE).len();
    wait_points(&s, sn::PROCESS_DISK_WRITE, n1 + 2, TIMEOUT);
    s.stop();
    let _ = std::fs::remove_file(&path);
    assert!(
        written >= 16.0 * 1048576.0,
        "kernel counted {written} bytes"
    );

    // Each rate covers the time since the previous round: rate × gap sums to the bytes.
    let p = points(&s, sn::PROCESS_DISK_WRITE);
    let total: f64 = p[n0..]
        .iter()
        .zip(&p[n0 - 1..])
        .map(|(b, a)| b.last * (b.t_ns - a.t_ns) as f64 / 1e9)
        .sum();
    assert!(
        (total - written).abs() < written * 0.15,
        "series integrates to {total:.0} bytes, the kernel counted {written:.0}"
    );
}
