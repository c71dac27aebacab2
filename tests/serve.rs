//! The live endpoint (`manager.serve(addr)`): what each page answers, content negotiation,
//! sessions coming and going, a scrape while the program holds its locks, port errors, and
//! the port freed when the handle or the manager goes. The textfile exporter is tested
//! here too (its file read by `promtool check metrics`).

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use heimdall_perf::{init, scope, Measurement, MetricType, PerfError};
use heimdall_perf_testkit::http::{get, request};
use heimdall_perf_testkit::promtool::promtool_check;

const OPENMETRICS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn metrics(addr: SocketAddr, accept: &str) -> heimdall_perf_testkit::http::HttpResponse {
    let r = request(addr, "GET", "/metrics", &[("Accept", accept)]).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r
}

/// The count of the merged span `path` in a text exposition.
fn span_count(text: &str, session: &str, path: &str) -> Option<u64> {
    let prefix =
        format!("heimdall_span_duration_seconds_count{{session=\"{session}\",path=\"{path}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
}

#[test]
fn the_readme_snippet_serves_live_metrics() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let manager = init(dir.path())?;
    // As README shows it (port 0: a free one).
    let server = manager.lock().unwrap().serve("127.0.0.1:0")?;
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);

    // A session started after `serve` appears.
    let session = manager.lock().unwrap().start_session("line-3")?;
    session.lock().unwrap().set_label("line", "3");
    for _ in 0..7 {
        let _detect = scope!("detect");
    }
    session.lock().unwrap().add_measurement(Measurement::new(
        "fps",
        MetricType::Throughput,
        59.5,
        "fps",
    ));

    let om = metrics(addr, OPENMETRICS_ACCEPT);
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.body.ends_with("# EOF\n"));
    assert!(
        om.body
            .contains("heimdall_span_duration_seconds_count{session=\"line-3\",line=\"3\",path=\"detect\"} 7\n"),
        "{}",
        om.body
    );
    assert!(om
        .body
        .contains("# TYPE heimdall_span_self_seconds counter\n"));
    assert!(om.body.contains("metric=\"fps\"} 59.5\n"), "{}", om.body);
    assert!(!om.body.contains("thread_id="));

    let classic = metrics(addr, "text/plain;version=0.0.4");
    assert_eq!(
        classic.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(classic
        .body
        .contains("# TYPE heimdall_span_self_seconds_total counter\n"));
    promtool_check(&classic.body).unwrap_or_else(|e| panic!("{e}"));
    // No Accept header: the classic format, as client libraries do.
    let plain = get(addr, "/metrics")?;
    assert_eq!(plain.header("content-type"), classic.header("content-type"));
    // A forced format, for scrapers that cannot send Accept; an unknown one is refused.
    let forced = request(
        addr,
        "GET",
        "/metrics?format=openmetrics",
        &[("Accept", "text/plain")],
    )?;
    assert_eq!(forced.header("content-type"), om.header("content-type"));
    let bad = get(addr, "/metrics?format=xml")?;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("unknown format `xml`"), "{}", bad.body);

    // The live snapshot, as a JSON report the reader takes back.
    let json = get(addr, "/report.json")?;
    assert_eq!(json.status, 200);
    assert_eq!(json.header("content-type"), Some("application/json"));
    let report = heimdall_perf::json::from_slice(json.body.as_bytes())?;
    assert_eq!(report.session.name, "line-3");
    assert_eq!(report.span_total(&["detect"]).unwrap().count, 7);
    assert!(report.session.active);

    let health = get(addr, "/healthz")?;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    // A stopped session leaves the exposition; the endpoint goes on.
    manager.lock().unwrap().stop_session()?;
    let after = metrics(addr, OPENMETRICS_ACCEPT);
    assert!(!after.body.contains("session=\"line-3\""), "{}", after.body);
    assert_eq!(get(addr, "/report.json")?.status, 404);
    server.stop();
    Ok(())
}

#[test]
fn odd_requests_get_plain_answers() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let manager = init(dir.path())?;
    let server = manager.lock().unwrap().serve("127.0.0.1:0")?;
    let addr = server.local_addr();
    let _s = manager.lock().unwrap().start_session("odd")?;

    let missing = get(addr, "/nope")?;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("no page `/nope`"), "{}", missing.body);
    let post = request(addr, "POST", "/metrics", &[("Content-Length", "0")])?;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = request(addr, "HEAD", "/metrics", &[])?;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let unknown = get(addr, "/report.json?session=nobody%20here")?;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("`nobody here`"), "{}", unknown.body);
    // Garbage on the socket: the server answers or closes, and goes on.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"\x00\xff NOT HTTP\r\n\r\n")?;
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    assert_eq!(get(addr, "/healthz")?.status, 200);
    Ok(())
}

#[test]
fn a_scrape_needs_neither_the_session_nor_the_manager_lock(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let manager = init(dir.path())?;
    let server = manager.lock().unwrap().serve("127.0.0.1:0")?;
    let addr = server.local_addr();
    let session = manager.lock().unwrap().start_session("held")?;
    session.lock().unwrap().start_timing("frame");
    session.lock().unwrap().stop_timing("frame")?;
    // The program holds both locks (as a timing call does) while the scraper reads.
    let _manager_guard = manager.lock().unwrap();
    let _session_guard = session.lock().unwrap();
    let text = metrics(addr, "text/plain").body;
    assert_eq!(span_count(&text, "held", "frame"), Some(1), "{text}");
    let json = get(addr, "/report.json?session=held")?;
    assert_eq!(json.status, 200);
    Ok(())
}

#[test]
fn a_port_in_use_is_an_error_naming_it_and_the_port_is_freed_on_drop(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let manager = init(dir.path())?;
    let server = manager.lock().unwrap().serve("127.0.0.1:0")?;
    let addr = server.local_addr();
    let taken = addr.to_string();
    let e = manager.lock().unwrap().serve(taken.as_str()).unwrap_err();
    assert!(matches!(e, PerfError::Serve { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("cannot serve the live endpoint on `{taken}`: ")),
        "{text}"
    );
    assert!(text.contains("choose another port"), "{text}");
    let e = manager.lock().unwrap().serve("not an address").unwrap_err();
    assert!(e.to_string().contains("`not an address`"), "{e}");

    // Stopping frees the port: it can be bound again at once.
    server.stop();
    drop(TcpListener::bind(addr)?);

    // Dropping the manager stops a server whose handle is still held.
    let again = manager.lock().unwrap().serve(taken.as_str())?;
    assert_eq!(get(addr, "/healthz")?.status, 200);
    drop(manager);
    drop(TcpListener::bind(addr)?);
    assert!(get(addr, "/healthz").is_err(), "nothing answers any more");
    drop(again);
    Ok(())
}

/// Dropping the manager waits for the accept thread to say it exited; the port must be
/// free by then, every time (the listener once closed only after that signal, and the
/// port could still be taken for a moment).
#[test]
fn dropping_the_manager_frees_the_port_at_once_every_time() -> Result<(), Box<dyn std::error::Error>>
{
    let dir = tempfile::tempdir()?;
    for _ in 0..200 {
        let manager = init(dir.path())?;
        let server = manager.lock().unwrap().serve("127.0.0.1:0")?;
        let addr = server.local_addr();
        drop(manager);
        TcpListener::bind(addr).map_err(|e| format!("{addr} still taken after the drop: {e}"))?;
        drop(server);
    }
    Ok(())
}

/// A process spawned by another thread of the program holds a copy of every descriptor,
/// the listener's too, until it runs its program (which closes them): under load that can
/// take a while, and the copy kept the port listening after the server stopped (a CI
/// failure: another test here runs promtool at the same moment). Stopping shuts the
/// listening socket down itself, so no copy of its descriptor keeps the port.
#[cfg(unix)]
#[test]
fn a_copy_of_the_listener_in_a_spawned_process_does_not_keep_the_port(
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir()?;
    let manager = init(dir.path())?;
    for (stop_by_dropping, port_given) in [(false, false), (true, false), (false, true)] {
        let server = if port_given {
            // A port named (as users do), not chosen by the system.
            let free = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            manager.lock().unwrap().serve(free.to_string().as_str())?
        } else {
            manager.lock().unwrap().serve("127.0.0.1:0")?
        };
        let addr = server.local_addr();
        // Another thread spawns a child that waits 2 s between its fork and its exec,
        // holding the copies; it says when it has forked.
        let (mut forked, tell) = UnixStream::pair()?;
        let spawner = std::thread::spawn(move || {
            let tell = tell.as_raw_fd();
            let mut command = std::process::Command::new("true");
            // SAFETY: the closure calls `write` and `nanosleep` only, both
            // async-signal-safe, on a descriptor the child holds.
            unsafe {
                command.pre_exec(move || {
                    libc::write(tell, b"f".as_ptr().cast(), 1);
                    let ts = libc::timespec {
                        tv_sec: 2,
                        tv_nsec: 0,
                    };
                    libc::nanosleep(&ts, std::ptr::null_mut());
                    Ok(())
                });
            }
            command.status()
        });
        forked.read_exact(&mut [0u8])?;
        if stop_by_dropping {
            drop(server);
        } else {
            server.stop();
        }
        let bound = TcpListener::bind(addr);
        let still_spawning = !spawner.is_finished();
        spawner.join().unwrap()?;
        assert!(still_spawning, "the child ran its program before the check");
        bound.map_err(|e| format!("{addr} still taken after stopping: {e}"))?;
    }
    Ok(())
}

#[test]
fn the_textfile_exporter_writes_atomically_what_promtool_reads(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let collector = tempfile::tempdir()?;
    let manager = init(dir.path())?;
    let session = manager.lock().unwrap().start_session("line 3/east")?;
    for _ in 0..5 {
        let _s = scope!("detect");
    }
    session
        .lock()
        .unwrap()
        .export_textfile(collector.path(), Duration::from_millis(20))?;
    // The first write happens before export_textfile returns.
    let file = collector.path().join("line_3_east.prom");
    let first = std::fs::read_to_string(&file)?;
    promtool_check(&first).unwrap_or_else(|e| panic!("{e}\n{first}"));
    assert!(first.contains("path=\"detect\"} 5\n"), "{first}");
    assert!(first.contains("# TYPE heimdall_span_self_seconds_total counter\n"));
    // A second exporter is refused; a bad folder is an error naming it.
    let e = session
        .lock()
        .unwrap()
        .export_textfile(collector.path(), Duration::from_millis(20))
        .unwrap_err();
    assert!(
        e.to_string().contains("`textfile` is already running"),
        "{e}"
    );
    let other = manager.lock().unwrap().start_session("other")?;
    let missing = collector.path().join("missing");
    let e = other
        .lock()
        .unwrap()
        .export_textfile(&missing, Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
    let e = other
        .lock()
        .unwrap()
        .export_textfile(&file, Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("it is not a folder"), "{e}");
    manager.lock().unwrap().stop_session_named("other")?;

    // More spans; stopping the session writes the file a last time.
    for _ in 0..3 {
        let _s = scope!("detect");
    }
    manager.lock().unwrap().stop_session()?;
    let last = std::fs::read_to_string(&file)?;
    assert!(last.contains("path=\"detect\"} 8\n"), "{last}");
    assert!(
        last.contains("heimdall_session_active{session=\"line 3/east\"} 0\n"),
        "{last}"
    );
    promtool_check(&last).unwrap_or_else(|e| panic!("{e}"));
    // Only the file itself is left in the folder: no temporary file behind.
    let names: Vec<String> = std::fs::read_dir(collector.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(names, ["line_3_east.prom"]);
    Ok(())
}

#[test]
fn without_the_formats_the_pages_say_what_is_missing() -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::Arc;
    let dir = tempfile::tempdir()?;
    // A manager whose registry has no exposition and no JSON sink.
    let mut manager =
        heimdall_perf::ProfilingManager::new(dir.path(), Arc::new(heimdall_perf::Registry::new()))?;
    let server = manager.serve("127.0.0.1:0")?;
    let _s = manager.start_session("bare")?;
    let m = get(server.local_addr(), "/metrics")?;
    assert_eq!(m.status, 503);
    assert!(
        m.body
            .starts_with("the live metrics exposition is not available: no exposition is set"),
        "{}",
        m.body
    );
    let j = get(server.local_addr(), "/report.json")?;
    assert_eq!(j.status, 503);
    assert!(
        j.body.contains("report format `json` is not available"),
        "{}",
        j.body
    );
    assert_eq!(get(server.local_addr(), "/healthz")?.status, 200);
    Ok(())
}

#[test]
fn per_thread_on_request_names_threads_never_ids() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let manager = init(dir.path())?;
    let server = manager.lock().unwrap().serve_with(
        "127.0.0.1:0",
        heimdall_perf::ServeOptions::default().per_thread(true),
    )?;
    let _s = manager.lock().unwrap().start_session("pool")?;
    // Two short-lived threads of one name: one series.
    for _ in 0..2 {
        std::thread::Builder::new()
            .name("worker".into())
            .spawn(|| {
                let _s = scope!("work");
            })?
            .join()
            .unwrap();
    }
    let text = metrics(server.local_addr(), "text/plain").body;
    let counts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("heimdall_span_duration_seconds_count{"))
        .collect();
    assert_eq!(
        counts,
        ["heimdall_span_duration_seconds_count{session=\"pool\",thread=\"worker\",path=\"work\"} 2"],
        "{text}"
    );
    assert!(!text.contains("thread_id="));
    Ok(())
}
