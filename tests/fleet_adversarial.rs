//! Hostile and careless use of the live endpoint, the textfile exporter and merging: each
//! test states what should happen; a failing one is a defect for the lead to fix.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use heimdall_perf::{init, Measurement, MetricType, ProfilingManager, ServeHandle};
use heimdall_perf_testkit::http::{encode, get, request};
use heimdall_perf_testkit::promtool::promtool_check;

const OM: &str = "application/openmetrics-text;version=1.0.0";
const CLASSIC: &str = "text/plain;version=0.0.4";

/// A manager in a temporary folder serving on a free port: the folder (kept alive), the
/// manager, the endpoint and its address.
fn served() -> (
    tempfile::TempDir,
    Arc<Mutex<ProfilingManager>>,
    ServeHandle,
    SocketAddr,
) {
    let dir = tempfile::tempdir().unwrap();
    let manager = init(dir.path()).unwrap();
    let server = manager.lock().unwrap().serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    (dir, manager, server, addr)
}

/// Runs `f` on a thread; `Some(result)` if it ended within `deadline`.
fn within<T: Send + 'static>(
    deadline: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(deadline).ok()
}

/// promtool reads the classic format only; an OpenMetrics body is checked for its shape:
/// one `# EOF`, last, and every sample line `name{labels} value` on one line.
fn check_body(accept_or_ct: &str, body: &str) -> Result<(), String> {
    if accept_or_ct.starts_with("application/openmetrics-text") {
        if !body.ends_with("# EOF\n")
            || body.matches("\n# EOF\n").count() + usize::from(body.starts_with("# EOF\n")) != 1
        {
            return Err("an OpenMetrics body must end with exactly one `# EOF`".into());
        }
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            let name_end = line
                .find(['{', ' '])
                .ok_or(format!("no value: {line:.200}"))?;
            let name = &line[..name_end];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            {
                return Err(format!("bad metric name in {line:.200}"));
            }
        }
        Ok(())
    } else {
        promtool_check(body)
    }
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap()
}

fn threads_of_process() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A client that asks for a big /metrics and never reads the answer must not stop the
/// endpoint answering other scrapers (Prometheus, /healthz), nor make dropping the handle
/// hang: the answer is written on the one thread that answers every request.
#[test]
fn a_client_that_never_reads_does_not_stall_other_scrapes_or_the_drop() {
    let (_dir, manager, server, addr) = served();
    let session = manager.lock().unwrap().start_session("big").unwrap();
    {
        // 400 span paths with 2 KB names: ~60 lines each in the exposition, ~50 MB.
        let mut s = session.lock().unwrap();
        for i in 0..400 {
            let name = format!("{i:04}{}", "x".repeat(2000));
            s.start_timing(&name);
            s.stop_timing(&name).unwrap();
        }
    }
    let first = get(addr, "/metrics").unwrap();
    assert!(first.body.len() > 20_000_000, "{} bytes", first.body.len());

    // The slow client: sends the request, reads nothing.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));

    let healthy = within(Duration::from_secs(20), move || get(addr, "/healthz"));
    let drop_done = within(Duration::from_secs(20), move || drop(server));
    drop(slow);
    assert!(
        matches!(healthy, Some(Ok(ref r)) if r.status == 200),
        "/healthz got no answer within 20 s while one client did not read its /metrics: {healthy:?}; \
         dropping the handle meanwhile {}",
        if drop_done.is_some() { "returned" } else { "hung for 20 s too" }
    );
    assert!(
        drop_done.is_some(),
        "dropping the ServeHandle hung for 20 s behind a client that does not read"
    );
}

/// Idle connections (slowloris: connect, send nothing or half a header) must not stop
/// other scrapes, and must not each hold a thread forever.
#[test]
fn idle_connections_neither_block_scrapes_nor_hold_a_thread_each() {
    let (_dir, manager, server, addr) = served();
    let _s = manager.lock().unwrap().start_session("idle").unwrap();
    let before = threads_of_process();
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut c = TcpStream::connect(addr).unwrap();
        if i % 2 == 0 {
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
        }
        idle.push(c);
    }
    std::thread::sleep(Duration::from_secs(1));
    let r = within(Duration::from_secs(20), move || get(addr, "/metrics"));
    assert!(matches!(r, Some(Ok(ref r)) if r.status == 200), "{r:?}");
    let during = threads_of_process();
    assert!(
        during < before + 64,
        "300 idle connections hold {} threads (before: {before}): no cap, no timeout",
        during - before
    );
    drop(idle);
    drop(server);
}

/// A header line of 64 MiB (no newline) must be refused, not buffered whole.
#[test]
fn a_huge_header_is_refused_not_buffered() {
    let (_dir, _manager, server, addr) = served();
    let rss_before = vm_rss_kib();
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nX-Big: ").unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0usize;
    for _ in 0..64 {
        if c.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    // The server should have closed (or answered 431/400) long before 64 MiB.
    assert!(
        sent < 64 << 20,
        "the endpoint read a 64 MiB header line without closing the connection (RSS {} MiB -> {} MiB)",
        rss_before / 1024,
        vm_rss_kib() / 1024
    );
    drop(server);
}

/// Hostile names (quotes, newlines, backslashes, unicode, 10 KB) in spans, labels and
/// measurements: both formats must stay valid for promtool.
#[test]
fn hostile_names_keep_both_formats_valid() {
    let (_dir, manager, server, addr) = served();
    let nasty = [
        "quo\"te",
        "new\nline",
        "back\\slash",
        "tab\there",
        "ünïcødé 🚀",
        "# EOF",
        "a\r\nb",
        "\u{0}nul",
        "}{=,",
    ];
    let session = manager
        .lock()
        .unwrap()
        .start_session("line \"3\"\n\\")
        .unwrap();
    {
        let mut s = session.lock().unwrap();
        for (i, n) in nasty.iter().enumerate() {
            s.start_timing(n);
            s.stop_timing(n).unwrap();
            s.set_label(format!("k{i}{n}"), *n);
            s.add_measurement(Measurement::new(*n, MetricType::Throughput, 1.0, *n));
        }
        let long = "L".repeat(10_000);
        s.start_timing(&long);
        s.stop_timing(&long).unwrap();
        s.set_label("9bad key", "v");
        s.set_label("", "empty key");
        s.set_label("__reserved", "x");
        s.set_label("le", "clash");
        s.set_label("path", "clash");
        s.set_label("session", "clash");
    }
    for accept in [OM, CLASSIC] {
        let r = request(addr, "GET", "/metrics", &[("Accept", accept)]).unwrap();
        assert_eq!(r.status, 200);
        if let Err(e) = check_body(accept, &r.body) {
            let excerpt: String = r.body.chars().take(3000).collect();
            panic!("{accept}: promtool refuses the exposition: {e}\n{excerpt}");
        }
        // No duplicate label names on any sample line.
        for line in r.body.lines().filter(|l| !l.starts_with('#')) {
            if let Some((_, rest)) = line.split_once('{') {
                let mut names: Vec<&str> = Vec::new();
                let mut in_q = false;
                let mut esc = false;
                let mut start = 0;
                for (i, ch) in rest.char_indices() {
                    if in_q {
                        if esc {
                            esc = false
                        } else if ch == '\\' {
                            esc = true
                        } else if ch == '"' {
                            in_q = false
                        }
                    } else if ch == '"' {
                        in_q = true
                    } else if ch == '=' {
                        names.push(rest[start..i].trim_start_matches(','));
                    } else if ch == ',' {
                        start = i;
                    } else if ch == '}' {
                        break;
                    }
                }
                let mut sorted = names.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(
                    sorted.len(),
                    names.len(),
                    "{accept}: duplicate label in {line:.300}"
                );
            }
        }
    }
    drop(server);
}

/// `?session=` with hostile values answers 404 plainly (never a panic or a hang).
#[test]
fn hostile_session_queries_answer_plainly() {
    let (_dir, manager, server, addr) = served();
    let _s = manager.lock().unwrap().start_session("real").unwrap();
    for q in [
        "",
        "%",
        "%zz",
        "%00",
        "a&session=real",
        "\u{202e}evil",
        &"x".repeat(20_000),
    ] {
        let path = format!("/report.json?session={}", encode(q));
        let r = request(addr, "GET", &path, &[]).unwrap();
        assert!(
            r.status == 404 || r.status == 200 || r.status == 414,
            "{q:.40}: {}",
            r.status
        );
    }
    let r = get(addr, "/report.json?session=real&session=other").unwrap();
    assert_eq!(r.status, 200);
    let r = get(addr, "/metrics?format=").unwrap();
    assert_eq!(
        r.status, 400,
        "an empty format is an unknown one: {}",
        r.body
    );
    drop(server);
}

/// The scraper asks only for OpenMetrics 0.0.1: answering `version=1.0.0` content it did
/// not accept is a misnegotiation (client_golang answers 0.0.1 or falls back to text).
#[test]
fn openmetrics_version_0_0_1_only_is_not_answered_as_1_0_0() {
    let (_dir, _manager, server, addr) = served();
    let r = request(
        addr,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=0.0.1")],
    )
    .unwrap();
    let ct = r.header("content-type").unwrap().to_string();
    assert!(
        !ct.contains("version=1.0.0"),
        "accepted only OpenMetrics 0.0.1, answered {ct}"
    );
    drop(server);
}

/// Everything q=0: nothing is acceptable; the classic text (or 406) — never a panic.
#[test]
fn odd_accept_headers_answer_something_valid() {
    let (_dir, manager, server, addr) = served();
    let _s = manager.lock().unwrap().start_session("acc").unwrap();
    for accept in [
        "*/*",
        "*/*;q=0,application/openmetrics-text;q=0",
        ";;;,,,q=",
        "application/openmetrics-text;q=NaN",
        "application/openmetrics-text;q=inf,text/plain",
        "application/openmetrics-text;q=-1",
        "TEXT/PLAIN",
        &"a,".repeat(4000),
    ] {
        let r = request(addr, "GET", "/metrics", &[("Accept", accept)]).unwrap();
        assert!(
            r.status == 200 || r.status == 406,
            "{accept:.40}: {}",
            r.status
        );
        if r.status == 200 {
            let ct = r.header("content-type").unwrap().to_string();
            check_body(&ct, &r.body).unwrap_or_else(|e| panic!("{accept:.40}: {e}"));
        }
    }
    drop(server);
}

/// Sessions started and stopped while a scraper loops: every body valid, no panic or hang.
#[test]
fn sessions_coming_and_going_under_a_scraping_loop() {
    let (_dir, manager, server, addr) = served();
    let done = Arc::new(AtomicBool::new(false));
    let d2 = Arc::clone(&done);
    let scraper = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        while !d2.load(Ordering::Relaxed) {
            for accept in [OM, CLASSIC] {
                let r = request(addr, "GET", "/metrics", &[("Accept", accept)]).unwrap();
                assert_eq!(r.status, 200);
                if bodies.len() < 40 {
                    bodies.push((accept, r.body));
                }
            }
            let j = get(addr, "/report.json").unwrap();
            assert!(j.status == 200 || j.status == 404, "{}", j.status);
        }
        bodies
    });
    for i in 0..30 {
        let session = manager
            .lock()
            .unwrap()
            .start_session(&format!("s{}", i % 3))
            .unwrap();
        {
            let mut s = session.lock().unwrap();
            s.set_label("i", i.to_string());
            for _ in 0..50 {
                s.start_timing("work");
                s.stop_timing("work").unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
        manager.lock().unwrap().stop_session().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let bodies = scraper.join().unwrap();
    for (accept, b) in bodies {
        check_body(accept, &b).unwrap_or_else(|e| panic!("{e}"));
    }
    drop(server);
}

/// Dropping the manager while a scraper loops: the scraper gets answers or a refused
/// connection, and the drop does not hang.
#[test]
fn dropping_the_manager_while_scraping_does_not_hang() {
    let (_dir, manager, server, addr) = served();
    let _s = manager.lock().unwrap().start_session("m").unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let d2 = Arc::clone(&done);
    let scraper = std::thread::spawn(move || {
        while !d2.load(Ordering::Relaxed) {
            let _ = get(addr, "/metrics");
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let r = within(Duration::from_secs(30), move || {
        drop(_s);
        drop(manager);
        drop(server);
    });
    done.store(true, Ordering::Relaxed);
    scraper.join().unwrap();
    assert!(
        r.is_some(),
        "dropping the manager and handle while scraping hung"
    );
}

/// Bad addresses are errors naming them; IPv6 loopback and `localhost` work.
#[test]
fn addresses_good_and_bad() {
    let dir = tempfile::tempdir().unwrap();
    let manager = init(dir.path()).unwrap();
    let m = manager.lock().unwrap();
    for bad in [
        "not an address",
        "127.0.0.1:99999",
        "127.0.0.1",
        "256.0.0.1:80",
        ":9464",
        "",
    ] {
        let e = m.serve(bad).unwrap_err().to_string();
        assert!(
            e.contains(&format!("`{bad}`")) || (!bad.is_empty() && e.contains(bad)),
            "{bad:?}: {e}"
        );
    }
    let v6 = m.serve("[::1]:0").unwrap();
    assert!(v6.local_addr().is_ipv6());
    let r = get(v6.local_addr(), "/healthz").unwrap();
    assert_eq!(r.status, 200);
    let lh = m.serve("localhost:0").unwrap();
    assert_eq!(get(lh.local_addr(), "/healthz").unwrap().status, 200);
    // Twice on one manager (two free ports): both answer.
    let a = m.serve("127.0.0.1:0").unwrap();
    let b = m.serve("127.0.0.1:0").unwrap();
    assert_eq!(get(a.local_addr(), "/healthz").unwrap().status, 200);
    assert_eq!(get(b.local_addr(), "/healthz").unwrap().status, 200);
    drop((v6, lh, a, b));
}

/// Per-thread labels with 500 short-lived threads of distinct names: the README says
/// "threads of one name are merged" but nothing bounds how many names; the exposition
/// must not grow without bound (report folds exited threads past 32).
#[test]
fn per_thread_with_500_short_lived_threads_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let manager = init(dir.path()).unwrap();
    let server = manager
        .lock()
        .unwrap()
        .serve_with(
            "127.0.0.1:0",
            heimdall_perf::ServeOptions::default().per_thread(true),
        )
        .unwrap();
    let addr = server.local_addr();
    let _s = manager.lock().unwrap().start_session("churn").unwrap();
    for i in 0..500 {
        std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(|| {
                let _g = heimdall_perf::scope!("job");
            })
            .unwrap()
            .join()
            .unwrap();
    }
    let r = get(addr, "/metrics").unwrap();
    let mut threads: Vec<&str> = r
        .body
        .lines()
        .filter(|l| l.starts_with("heimdall_span_duration_seconds_count"))
        .filter_map(|l| l.split("thread=\"").nth(1))
        .filter_map(|l| l.split('"').next())
        .collect();
    threads.sort();
    threads.dedup();
    assert!(
        threads.len() <= 40,
        "{} distinct thread label values",
        threads.len()
    );
    promtool_check(&r.body).unwrap_or_else(|e| panic!("{e}"));
    drop(server);
}

/// Textfile: two sessions whose names sanitise to one file must not overwrite each
/// other's `.prom` silently.
#[test]
fn two_sessions_sanitised_to_one_textfile_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let manager = init(dir.path()).unwrap();
    let a = manager.lock().unwrap().start_session("line/3").unwrap();
    let b = manager.lock().unwrap().start_session("line:3").unwrap();
    a.lock()
        .unwrap()
        .export_textfile(out.path(), Duration::from_millis(50))
        .unwrap();
    let second = b
        .lock()
        .unwrap()
        .export_textfile(out.path(), Duration::from_millis(50));
    let files: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        second.is_err() || files.len() == 2,
        "sessions `line/3` and `line:3` both write {files:?}: each overwrites the other"
    );
}

/// Textfile: a reader looping while the exporter writes never sees half a file, and no
/// temporary file is left when the session stops.
#[test]
fn textfile_never_half_written_and_no_temporaries_left() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let manager = init(dir.path()).unwrap();
    let s = manager.lock().unwrap().start_session("tf").unwrap();
    {
        let mut g = s.lock().unwrap();
        for i in 0..200 {
            let n = format!("span-{i}");
            g.start_timing(&n);
            g.stop_timing(&n).unwrap();
        }
        g.export_textfile(out.path(), Duration::from_millis(10))
            .unwrap();
    }
    let file = out.path().join("tf.prom");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut reads = 0;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.ends_with("# EOF\n") || text.ends_with('\n'),
            "half a file"
        );
        assert!(text.contains("heimdall_session_active"), "half a file");
        reads += 1;
    }
    assert!(reads > 10);
    manager.lock().unwrap().stop_session().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("heimdall_session_active{session=\"tf\"} 0"),
        "{text:.500}"
    );
    promtool_check(&text).unwrap_or_else(|e| panic!("{e}"));
    let left: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["tf.prom".to_string()]);
}

/// Textfile: errors for a missing folder, a file, interval 0, a second exporter, a
/// stopped session.
#[test]
fn textfile_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let manager = init(dir.path()).unwrap();
    let s = manager.lock().unwrap().start_session("err").unwrap();
    let mut g = s.lock().unwrap();
    let missing = out.path().join("nope");
    let e = g
        .export_textfile(&missing, Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    let file = out.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let e = g
        .export_textfile(&file, Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("a-file"), "{e}");
    assert!(g.export_textfile(out.path(), Duration::ZERO).is_err());
    g.export_textfile(out.path(), Duration::MAX).unwrap();
    assert!(g
        .export_textfile(out.path(), Duration::from_secs(1))
        .is_err());
    drop(g);
    // Duration::MAX: the stop must still write once more and end promptly.
    let r = within(Duration::from_secs(20), move || {
        manager.lock().unwrap().stop_session().unwrap();
        manager
    });
    assert!(r.is_some(), "stop hung with a Duration::MAX exporter");
    let text = std::fs::read_to_string(out.path().join("err.prom")).unwrap();
    assert!(
        text.contains("heimdall_session_active{session=\"err\"} 0"),
        "{text:.300}"
    );
}

/// Merging reports with counts and totals near u64::MAX: an error or a saturated figure,
/// never a panic (overflow checks are on in tests).
#[test]
fn merging_counts_near_u64_max_does_not_panic() {
    use heimdall_perf::reports::merge_reports;
    let mut a = heimdall_perf_testkit::sample_report();
    for s in a.spans.iter_mut().chain(a.span_totals.iter_mut()) {
        s.count = u64::MAX - 10;
        s.total_ns = u64::MAX - 10;
        s.self_ns = u64::MAX - 10;
        for b in s.histogram.iter_mut() {
            b.count = u64::MAX - 10;
        }
    }
    let mut b = a.clone();
    a.session.labels.insert("station".into(), "a".into());
    b.session.labels.insert("station".into(), "b".into());
    let r = std::panic::catch_unwind(move || merge_reports([("a", a), ("b", b)]).map(|_| ()));
    assert!(r.is_ok(), "merge_reports panicked on counts near u64::MAX");
}

/// Names that sanitise to one metric or label name (`fps.cam` / `fps-cam`, label keys
/// `line-id` / `line_id`): the exposition must not repeat a series or a label name.
#[test]
fn names_that_sanitise_alike_do_not_make_duplicates() {
    let (_dir, manager, server, addr) = served();
    let session = manager.lock().unwrap().start_session("dup").unwrap();
    {
        let mut s = session.lock().unwrap();
        s.add_measurement(Measurement::new(
            "fps.cam",
            MetricType::Throughput,
            1.0,
            "fps",
        ));
        s.add_measurement(Measurement::new(
            "fps-cam",
            MetricType::Throughput,
            2.0,
            "fps",
        ));
        s.add_measurement(Measurement::new("fps_cam", MetricType::Counter, 3.0, "fps"));
        s.set_label("line-id", "a");
        s.set_label("line_id", "b");
    }
    for accept in [OM, CLASSIC] {
        let r = request(addr, "GET", "/metrics", &[("Accept", accept)]).unwrap();
        check_body(accept, &r.body).unwrap_or_else(|e| {
            let ex: String = r
                .body
                .lines()
                .filter(|l| l.contains("fps") || l.contains("session_info"))
                .collect::<Vec<_>>()
                .join("\n");
            panic!("{accept}: {e}\n{ex}")
        });
        let series: Vec<&str> = r
            .body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit_once(' ').unwrap().0)
            .collect();
        let mut uniq = series.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), series.len(), "{accept}: a series appears twice");
        let types: Vec<&str> = r
            .body
            .lines()
            .filter(|l| l.starts_with("# TYPE "))
            .collect();
        let mut ut = types.clone();
        ut.sort();
        ut.dedup();
        assert_eq!(
            ut.len(),
            types.len(),
            "{accept}: a family is declared twice"
        );
    }
    drop(server);
}

/// The manager dropped without `stop_session` (a program returning early): the textfile
/// must end with `heimdall_session_active 0`, as README promises for a program that ends.
#[test]
fn textfile_says_inactive_after_the_manager_is_dropped_without_stop() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let manager = init(dir.path()).unwrap();
    let s = manager.lock().unwrap().start_session("early").unwrap();
    s.lock()
        .unwrap()
        .export_textfile(out.path(), Duration::from_secs(3600))
        .unwrap();
    let r = within(Duration::from_secs(30), move || {
        drop(manager);
        drop(s);
    });
    assert!(r.is_some(), "dropping the manager and session hung");
    let text = std::fs::read_to_string(out.path().join("early.prom")).unwrap();
    assert!(
        text.contains("heimdall_session_active{session=\"early\"} 0"),
        "{}",
        text.lines()
            .find(|l| l.starts_with("heimdall_session_active"))
            .unwrap_or("")
    );
}

/// Two requests pipelined on one HTTP/1.1 connection both get answers, and a
/// session with a hostile name is reachable through `?session=`.
#[test]
fn pipelined_requests_and_hostile_session_lookup() {
    use std::io::Read;
    let (_dir, manager, server, addr) = served();
    let name = "line \"3\" & co/ü?#=%";
    let _s = manager.lock().unwrap().start_session(name).unwrap();
    let r = get(addr, &format!("/report.json?session={}", encode(name))).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = String::new();
    let _ = c.read_to_string(&mut all);
    assert_eq!(all.matches("HTTP/1.1 200").count(), 2, "{all}");
    drop(server);
}

/// Hostile thread names with per_thread on: the `thread` label stays valid.
#[test]
fn hostile_thread_names_per_thread_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let manager = init(dir.path()).unwrap();
    let server = manager
        .lock()
        .unwrap()
        .serve_with(
            "127.0.0.1:0",
            heimdall_perf::ServeOptions::default().per_thread(true),
        )
        .unwrap();
    let addr = server.local_addr();
    let _s = manager.lock().unwrap().start_session("thr").unwrap();
    for name in [
        "q\"uote",
        "new\nline",
        "back\\slash",
        "ü 🚀",
        &"t".repeat(5000),
    ] {
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(|| {
                let _g = heimdall_perf::scope!("job");
            })
            .unwrap()
            .join()
            .unwrap();
    }
    for accept in [OM, CLASSIC] {
        let r = request(addr, "GET", "/metrics", &[("Accept", accept)]).unwrap();
        check_body(accept, &r.body).unwrap_or_else(|e| panic!("{accept}: {e}"));
    }
    drop(server);
}

/// The absolute form of the request target (`GET http://host/metrics`), which HTTP/1.1
/// servers must accept (RFC 9112 §3.2.2; sent by forward proxies), reaches /metrics.
#[test]
fn absolute_form_request_target_is_understood() {
    let (_dir, _manager, server, addr) = served();
    let r = request(addr, "GET", &format!("http://{addr}/healthz"), &[]).unwrap();
    assert_eq!(
        r.status, 200,
        "GET http://{addr}/healthz: {} {}",
        r.status, r.body
    );
    drop(server);
}

/// Scrapes while two threads record as fast as they can: in every body, each histogram's
/// buckets are cumulative (never decreasing) and its `+Inf` bucket equals its `_count`
/// — a torn snapshot would make `histogram_quantile` lie.
#[test]
fn histograms_are_never_torn_while_recording() {
    let (_dir, manager, server, addr) = served();
    let _s = manager.lock().unwrap().start_session("torn").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _outer = heimdall_perf::scope!("outer");
                    for _ in 0..10 {
                        let _inner = heimdall_perf::scope!("inner");
                    }
                }
            })
        })
        .collect();
    let mut problems = Vec::new();
    for _ in 0..40 {
        let r = get(addr, "/metrics").unwrap();
        let mut last: Option<(String, f64)> = None;
        for line in r.body.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap();
            if let Some(i) = series.find("_bucket{") {
                let key = format!(
                    "{}{}",
                    &series[..i],
                    series[i..].split(",le=").next().unwrap()
                );
                if let Some((k, v)) = &last {
                    if *k == key && value < *v {
                        problems.push(format!("bucket decreases: {line}"));
                    }
                }
                if series.contains("le=\"+Inf\"") {
                    let count_line = format!(
                        "{}_count{}",
                        &series[..i],
                        &series[i + 7..].replace(",le=\"+Inf\"", "")
                    );
                    let count = r
                        .body
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{count_line} ")))
                        .map(|v| v.parse::<f64>().unwrap());
                    if count != Some(value) {
                        problems.push(format!("{line} but count {count:?}"));
                    }
                }
                last = Some((key, value));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    drop(server);
    assert!(
        problems.is_empty(),
        "{} torn histograms, e.g. {:?}",
        problems.len(),
        &problems[..problems.len().min(3)]
    );
}

/// Non-finite figures in a station's summaries (a report built in a program, or one whose
/// JSON spells them): the merge is an error naming the station, or its output stays
/// finite and renders to JSON that reads back.
#[test]
fn non_finite_summaries_do_not_poison_the_fleet() {
    use heimdall_perf::reports::{merge_reports, ReportSink};
    let mut a = heimdall_perf_testkit::sample_report();
    a.session.labels.insert("station".into(), "a".into());
    let mut b = heimdall_perf_testkit::sample_report();
    b.session.labels.insert("station".into(), "b".into());
    for s in b.spans.iter_mut().chain(b.span_totals.iter_mut()) {
        s.duration.mean = f64::NAN;
        s.duration.stddev = f64::INFINITY;
        s.duration.sum = f64::INFINITY;
    }
    match merge_reports([("a", a), ("b", b)]) {
        Err(e) => assert!(e.to_string().contains('b'), "{e}"),
        Ok(fleet) => {
            let json = heimdall_perf::json::JsonSink::new()
                .render_to_string(&fleet)
                .unwrap();
            let back = heimdall_perf::json::from_slice(json.as_bytes())
                .unwrap_or_else(|e| panic!("the merged report does not read back: {e}"));
            let d = &back.span_totals[0].duration;
            assert!(
                d.mean.is_finite() && d.stddev.is_finite(),
                "a station's NaN/inf made the fleet's {} mean {} stddev {}",
                back.span_totals[0].path_string(),
                d.mean,
                d.stddev
            );
        }
    }
}
