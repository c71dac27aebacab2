//! Does a scrape stall the recording threads? `scope!` into a session served live, with no
//! scraper, with a scraper fetching `/metrics` ten times a second (a 100 ms scrape interval:
//! far more often than Prometheus's usual 15 s), and with one fetching it back to back, in
//! the same session and run. The session holds a few span paths and a frame source so that
//! each scrape renders a realistic exposition.
//!
//! `cargo bench --bench serve`

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use heimdall_perf::{frame, init, scope};
use heimdall_perf_testkit::http::request;

/// A thread fetching `/metrics` every `period` (back to back for zero) until stopped.
struct Scraper {
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Scraper {
    fn start(addr: SocketAddr, period: Duration) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let (s, n) = (Arc::clone(&stop), Arc::clone(&scrapes));
        let thread = std::thread::spawn(move || {
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let r = request(
                    addr,
                    "GET",
                    "/metrics",
                    &[("Accept", "application/openmetrics-text;version=1.0.0")],
                )
                .expect("a scrape");
                assert_eq!(r.status, 200, "{}", r.body);
                n.fetch_add(1, Ordering::Relaxed);
                next += period;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                } else {
                    next = Instant::now();
                }
            }
        });
        Scraper {
            stop,
            scrapes,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("the scraper thread");
        }
        self.scrapes.load(Ordering::Relaxed)
    }
}

/// Times `iters` spans in chunks of 50 000 (as `recording`'s `heimdall scope!`).
fn spans(iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(50_000);
        let t = Instant::now();
        for _ in 0..n {
            let _s = scope!("bench");
            black_box(());
        }
        total += t.elapsed();
        left -= n;
    }
    total
}

fn scraped(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let manager = init(dir.path()).expect("init");
    let server = manager
        .lock()
        .unwrap()
        .serve("127.0.0.1:0")
        .expect("the live endpoint");
    let addr = server.local_addr();
    let session = manager
        .lock()
        .unwrap()
        .start_session("bench")
        .expect("a session");
    session.lock().unwrap().set_label("line", "3");
    // Content for the exposition: a few paths, a frame source with stages.
    for _ in 0..1000 {
        let f = frame!("cam-0");
        {
            let _p = f.stage("preprocess");
        }
        {
            let _d = f.stage("detect");
            let _n = scope!("nms");
        }
        f.finish();
    }

    let mut g = c.benchmark_group("scraped");
    g.bench_function("scope! (no scraper)", |b| b.iter_custom(spans));
    let scraper = Scraper::start(addr, Duration::from_millis(100));
    g.bench_function("scope! (scraper 10/s)", |b| b.iter_custom(spans));
    let at_10 = scraper.stop();
    let scraper = Scraper::start(addr, Duration::ZERO);
    g.bench_function("scope! (scraper back to back)", |b| b.iter_custom(spans));
    let flat_out = scraper.stop();
    g.finish();

    // What one scrape costs the scraper (end to end over loopback), for the record.
    let mut times: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let r = request(addr, "GET", "/metrics", &[]).expect("a scrape");
            black_box(r.body.len());
            t.elapsed()
        })
        .collect();
    times.sort();
    let size = request(addr, "GET", "/metrics", &[])
        .expect("a scrape")
        .body
        .len();
    println!(
        "scrapes during the runs: {at_10} at 10/s, {flat_out} back to back; one scrape of {size} bytes: median {:?}",
        times[times.len() / 2]
    );
    server.stop();
}

criterion_group!(benches, scraped);
criterion_main!(benches);
