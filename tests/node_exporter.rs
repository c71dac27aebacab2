//! The textfile exporter's file, read by a real node_exporter (Debian's
//! `prometheus-node-exporter`, which `.ci/run` installs; a missing binary fails the test,
//! never skips it): started on a free loopback port with only its textfile collector, on the
//! folder the session writes into, it must serve our families and report no scrape error.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use heimdall_perf::{init, scope};
use heimdall_perf_testkit::http::get;

/// Kills node_exporter on drop, even when the test panics.
struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn node_exporter_serves_what_the_textfile_exporter_writes() -> Result<(), Box<dyn std::error::Error>>
{
    let dir = tempfile::tempdir()?;
    let collector = tempfile::tempdir()?;
    let manager = init(dir.path())?;
    let session = manager.lock().unwrap().start_session("station-2")?;
    session.lock().unwrap().set_label("line", "4");
    for _ in 0..9 {
        let _s = scope!("inspect");
    }
    session
        .lock()
        .unwrap()
        .export_textfile(collector.path(), Duration::from_millis(100))?;

    let addr: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let child = Command::new("prometheus-node-exporter")
        .arg(format!(
            "--collector.textfile.directory={}",
            collector.path().display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .args(["--collector.disable-defaults", "--collector.textfile"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start `prometheus-node-exporter` ({e}): install it (Debian/Ubuntu: \
                 `apt-get install -y prometheus-node-exporter`; .ci/run does) — this test does not skip"
            )
        });
    let mut exporter = Exporter(child);

    // Wait (boundedly) until it answers and has read the file.
    let start = Instant::now();
    let body = loop {
        if let Ok(Some(status)) = exporter.0.try_wait() {
            panic!("node_exporter exited: {status}");
        }
        if let Ok(r) = get(addr, "/metrics") {
            if r.status == 200 && r.body.contains("heimdall_span_duration_seconds_count") {
                break r.body;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "node_exporter did not serve our metrics within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // node_exporter sorts labels by name.
    let count = body
        .lines()
        .find(|l| {
            l.starts_with("heimdall_span_duration_seconds_count{")
                && l.contains("path=\"inspect\"")
                && l.contains("session=\"station-2\"")
                && l.contains("line=\"4\"")
        })
        .unwrap_or_else(|| panic!("no count of `inspect` in\n{body}"));
    assert!(count.ends_with(" 9"), "{count}");
    assert!(
        body.lines()
            .any(|l| l.starts_with("heimdall_span_duration_seconds_bucket{")
                && l.contains("le=\"+Inf\"")),
        "{body}"
    );
    assert!(
        body.contains("# TYPE heimdall_span_self_seconds_total counter"),
        "{body}"
    );
    assert!(body.contains("node_textfile_scrape_error 0"), "{body}");
    drop(exporter);
    manager.lock().unwrap().stop_session()?;
    Ok(())
}
