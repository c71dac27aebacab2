//! A real Prometheus scrapes the live endpoint.
//!
//! The test starts Debian's `prometheus` server (`.ci/run` installs it; a missing binary
//! fails the test, never skips it) on a free loopback port with a generated configuration
//! (1 s scrape interval, a temporary storage folder) and two jobs on our endpoint: one that
//! negotiates as Prometheus does (OpenMetrics 1.0) and one forced to the classic text format
//! (`?format=prometheus`; the installed Prometheus, 2.42, has no `scrape_protocols` to choose
//! it). A session records known frames and spans while it scrapes; the test then asks
//! Prometheus's HTTP API for the span count and `histogram_quantile(0.99, …)`, checks them
//! against what was recorded (the quantile within one bucket of the ladder), and runs every
//! PromQL query of README.md's "From one station to a fleet", as written there. Prometheus
//! is killed and its folder removed when the test ends, failed or not.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use heimdall_perf::{frame, init};
use heimdall_perf_testkit::http::{encode, get};
use serde_json::Value;

/// How long the test waits for Prometheus to start and to have scraped what it needs.
const DEADLINE: Duration = Duration::from_secs(90);

/// A running Prometheus, killed (and its storage removed) on drop, even when the test
/// panics.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second, and waits until it is ready.
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n\
                 \x20 - job_name: openmetrics\n\
                 \x20   static_configs:\n\
                 \x20     - targets: [\"{target}\"]\n\
                 \x20       labels: {{ station: \"cell-7\" }}\n\
                 \x20 - job_name: classic\n\
                 \x20   params: {{ format: [prometheus] }}\n\
                 \x20   static_configs:\n\
                 \x20     - targets: [\"{target}\"]\n\
                 \x20       labels: {{ station: \"cell-7\" }}\n"
            ),
        )
        .expect("writing prometheus.yml");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `prometheus` ({e}): install it (Debian/Ubuntu: `apt-get install -y prometheus`; \
                     .ci/run does) — this test does not skip"
                )
            });
        let mut p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        p.wait_for("Prometheus to be ready", |p| {
            Ok(get(p.addr, "/-/ready")?.status == 200)
        });
        p
    }

    /// Polls `done` until it is true, failing with a message naming `what` and
    /// Prometheus's log past [`DEADLINE`] or if Prometheus exited.
    fn wait_for(&mut self, what: &str, mut done: impl FnMut(&Self) -> Result<bool, String>) {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "prometheus exited ({status}) while waiting for {what}:\n{}",
                    self.log()
                );
            }
            match done(self) {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => last = e,
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "waited {DEADLINE:?} for {what} (last error: {last}); prometheus said:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Runs `promql` through `/api/v1/query`; the vector result as (labels, value) pairs.
    /// An error status (a query Prometheus refuses) is an error naming the query.
    fn query(&self, promql: &str) -> Result<Vec<(Value, f64)>, String> {
        let r = get(
            self.addr,
            &format!("/api/v1/query?query={}", encode(promql)),
        )?;
        let v: Value = serde_json::from_str(&r.body)
            .map_err(|e| format!("{promql}: not JSON ({e}): {}", r.body))?;
        if v["status"] != "success" {
            return Err(format!("{promql}: Prometheus answered {}", r.body));
        }
        let result = v["data"]["result"]
            .as_array()
            .ok_or_else(|| format!("{promql}: not a vector: {}", r.body))?;
        Ok(result
            .iter()
            .map(|s| {
                let value = s["value"][1]
                    .as_str()
                    .unwrap_or("NaN")
                    .parse()
                    .unwrap_or(f64::NAN);
                (s["metric"].clone(), value)
            })
            .collect())
    }

    /// What Prometheus answers to a range selector (`metric[1h]`): the raw samples it took,
    /// for a failure message.
    fn samples(&self, selector: &str) -> String {
        match get(
            self.addr,
            &format!("/api/v1/query?query={}", encode(selector)),
        ) {
            Ok(r) => r.body,
            Err(e) => format!("({selector}: {e})"),
        }
    }

    /// The value of a query whose result must be one sample.
    fn one(&self, promql: &str) -> Result<Option<f64>, String> {
        let r = self.query(promql)?;
        match r.as_slice() {
            [] => Ok(None),
            [(_, v)] => Ok(Some(*v)),
            more => Err(format!(
                "{promql}: {} samples, one expected: {more:?}",
                more.len()
            )),
        }
    }
}

/// The PromQL queries of README.md's fenced `promql` block, each under its `#` comment.
fn readme_queries() -> Vec<(String, String)> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("```promql\n")
        .expect("README.md has a ```promql block");
    let block = &readme[start + "```promql\n".len()..];
    let block = &block[..block.find("```").expect("the promql block ends")];
    let mut queries: Vec<(String, String)> = Vec::new();
    let mut title = String::new();
    for line in block.lines().map(str::trim) {
        if let Some(t) = line.strip_prefix('#') {
            title = t.trim().to_string();
        } else if !line.is_empty() {
            queries.push((title.clone(), line.to_string()));
        }
    }
    queries
}

/// The index of the ladder bucket `seconds` falls in (the first bound at or above it).
fn bucket_of(seconds: f64) -> usize {
    let ns = seconds * 1e9;
    heimdall_perf::reports::exposition_ladder()
        .iter()
        .position(|&le| ns <= le as f64)
        .unwrap_or(heimdall_perf::reports::exposition_ladder().len())
}

/// One frame of camera `cam-0`: a `detect` stage of `ms` milliseconds.
fn one_frame(ms: u64) {
    let f = frame!("cam-0");
    {
        let _detect = f.stage("detect");
        std::thread::sleep(Duration::from_millis(ms));
    }
    f.finish();
}

#[test]
fn a_real_prometheus_scrapes_the_live_endpoint_and_answers_the_readme_queries() {
    let dir = tempfile::tempdir().unwrap();
    let manager = init(dir.path()).unwrap();
    let server = manager.lock().unwrap().serve("127.0.0.1:0").unwrap();
    let session = manager.lock().unwrap().start_session("station-1").unwrap();
    session.lock().unwrap().set_label("line", "3");
    // A 3 ms budget: the 6 ms frames miss it.
    session
        .lock()
        .unwrap()
        .set_frame_budget("cam-0", Duration::from_millis(3));

    let mut prometheus = Prometheus::start(server.local_addr());
    prometheus.wait_for("both jobs to scrape the endpoint", |p| {
        Ok(p.query("up == 1")?.len() == 2)
    });

    // One frame first, and Prometheus must have scraped it before the others: `rate` counts
    // only what a series gained after its first sample, and the series appear with the first
    // frame. (A Prometheus starved on a loaded machine once took its first sample of them
    // near the end of the run, so the README's rate saw a handful of 1 ms frames.)
    one_frame(1);
    let mut recorded = 1u64;
    for job in ["openmetrics", "classic"] {
        let count = format!(
            "heimdall_span_duration_seconds_count{{job=\"{job}\",session=\"station-1\",path=\"detect\"}}"
        );
        prometheus.wait_for(&format!("{job}'s first sample of {count}"), |p| {
            Ok(p.one(&count)? == Some(1.0))
        });
    }
    // Then frames while Prometheus scrapes: one in 20 has a 6 ms `detect`, the others 1 ms.
    // About 3 s.
    while recorded < 2001 {
        one_frame(if recorded.is_multiple_of(20) { 6 } else { 1 });
        recorded += 1;
    }
    let report = session.lock().unwrap().report();
    let detect = report.span_total(&["detect"]).expect("the detect spans");
    assert_eq!(detect.count, recorded);
    let p99 = detect.duration.p99 / 1e9;
    // One frame in 20 misses, and more when a loaded machine stretched a 1 ms `detect` past
    // the 3 ms budget: the miss rate the session measured.
    let cam = report.frame_source("cam-0").expect("the frames");
    let miss_rate = cam.missed as f64 / cam.finished as f64;

    // Both formats end up as the same series, with the count recorded.
    for job in ["openmetrics", "classic"] {
        let count = format!(
            "heimdall_span_duration_seconds_count{{job=\"{job}\",session=\"station-1\",path=\"detect\"}}"
        );
        prometheus.wait_for(&format!("{count} to reach {recorded}"), |p| {
            Ok(p.one(&count)? == Some(recorded as f64))
        });
        // The p99 over our buckets, within one bucket of the ladder of the one recorded.
        let q = format!(
            "histogram_quantile(0.99, heimdall_span_duration_seconds_bucket{{job=\"{job}\",path=\"detect\"}})"
        );
        let estimate = prometheus.one(&q).unwrap().expect("a p99");
        assert!(
            bucket_of(estimate).abs_diff(bucket_of(p99)) <= 1,
            "{job}: Prometheus's p99 {estimate} s, recorded {p99} s"
        );
        // The frame counters too.
        let missed = prometheus
            .one(&format!(
                "heimdall_frames_missed_total{{job=\"{job}\",source=\"cam-0\"}}"
            ))
            .unwrap();
        let frames = report.frame_source("cam-0").unwrap();
        assert_eq!(missed, Some(frames.missed as f64), "{job}");
    }
    // Metadata: each job took its format's declarations — OpenMetrics declares the counter
    // family without `_total` and with its unit, the classic format under `…_total`.
    let meta = |metric: &str| {
        get(
            prometheus.addr,
            &format!("/api/v1/targets/metadata?metric={metric}"),
        )
        .unwrap()
        .body
    };
    let om = meta("heimdall_span_self_seconds");
    assert!(
        om.contains("\"job\":\"openmetrics\"")
            && om.contains("\"type\":\"counter\"")
            && om.contains("\"unit\":\"seconds\""),
        "{om}"
    );
    let classic = meta("heimdall_span_self_seconds_total");
    assert!(
        classic.contains("\"job\":\"classic\"") && classic.contains("\"type\":\"counter\""),
        "{classic}"
    );

    // Every README query, as written there: accepted, evaluated, and right.
    let queries = readme_queries();
    assert_eq!(queries.len(), 3, "{queries:?}");
    for (title, q) in &queries {
        let result = prometheus
            .query(q)
            .unwrap_or_else(|e| panic!("README query `{title}`: {e}"));
        if title.contains("p99 of `detect`") {
            let [(_, fleet_p99)] = result.as_slice() else {
                panic!("`{title}`: {result:?}");
            };
            assert!(
                bucket_of(*fleet_p99).abs_diff(bucket_of(p99)) <= 1,
                "`{title}`: {fleet_p99} s, recorded p99 {p99} s; the samples Prometheus took: {}",
                prometheus.samples("heimdall_span_duration_seconds_count{path=\"detect\"}[1h]")
            );
        } else if title.contains("deadline-miss rate per line") {
            let [(labels, rate)] = result.as_slice() else {
                panic!("`{title}`: {result:?}");
            };
            assert_eq!(labels["line"], "3", "`{title}`: {result:?}");
            // One frame in 20 misses (more on a loaded machine): the rate is about the one the
            // session measured (the window starts at a scrape).
            assert!(
                *rate > 0.4 * miss_rate && *rate < 2.0 * miss_rate && *rate > 0.02,
                "`{title}`: {rate}, the session measured {miss_rate}; the samples Prometheus took: {}",
                prometheus.samples("heimdall_frames_finished_total[1h]")
            );
        } else if title.contains("since yesterday") {
            // Prometheus has no data from a day ago here: the query is accepted and
            // evaluated (status success above), and its result is empty.
            assert!(result.is_empty(), "`{title}`: {result:?}");
        } else {
            panic!("README query `{title}` has no check here: add one");
        }
    }
    drop(prometheus);
    server.stop();
}
