//! The complete example the spec promises: a simulated inspection line, instrumented with
//! every tool heimdall-perf offers, writing its reports into `./performance_reports`.
//!
//! * a camera thread produces frames (a synthetic 320×240 grey image with a moving defect) at
//!   a target rate and hands them to processing through a bounded queue;
//! * a processing thread runs preprocess (normalize, blur) → detect (threshold, components) →
//!   decide, recorded with `scope!` (lock-free) and with the spec's `start_timing` /
//!   `stop_timing` on the shared session;
//! * an FPS counter (`MetricCounter`), a throughput meter (`ThroughputMeter`), a processing
//!   timer (`Timer`) and the capture-to-decision latency of every frame;
//! * system metrics (feature `system`) and the camera queue depth as periodic sources.
//!
//! ```text
//! cargo run --release --example performance_analysis                 # 3 seconds at 60 fps
//! cargo run --release --example performance_analysis -- --seconds 60 --fps 120
//! ```
//!
//! Arguments out of range are refused by clap with a message (exit 2); an error while
//! running is printed as a sentence with its causes (`error: cannot write …: …`, exit 1).

use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use heimdall_perf::limits::MIN_INTERVAL;
use heimdall_perf::metrics::{MetricCounter, ThroughputMeter, Timer};
use heimdall_perf::units::Style;
use heimdall_perf::{init, scope, MetricType, PeriodicSource, ProfilingSession, Samples};

/// Simulated inspection line instrumented with heimdall-perf.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// How long the line runs, in seconds (0.1 to 86400).
    #[arg(long, default_value_t = 3.0, value_parser = seconds)]
    seconds: f64,
    /// Camera frame rate, frames per second (0.1 to 10000).
    #[arg(long, default_value_t = 60.0, value_parser = fps)]
    fps: f64,
    /// Folder the reports are written to.
    #[arg(long, default_value = "./performance_reports")]
    out: String,
    /// System sampling interval, in milliseconds (10, the library's minimum, to 3600000).
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(MIN_SAMPLE_MS..=MAX_SAMPLE_MS))]
    sample_ms: u64,
}

/// The shortest sampling interval the library accepts, in milliseconds.
const MIN_SAMPLE_MS: u64 = MIN_INTERVAL.as_millis() as u64;
/// The longest sampling interval offered: an hour.
const MAX_SAMPLE_MS: u64 = 3_600_000;

/// `text` as a number within `min..=max` (NaN and infinities are outside), or a message
/// saying what is accepted.
fn number_in(text: &str, min: f64, max: f64, unit: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be from {min} to {max} {unit}"))
    }
}

/// `--seconds`: a finite run length, at most a day.
fn seconds(text: &str) -> Result<f64, String> {
    number_in(text, 0.1, 86_400.0, "seconds")
}

/// `--fps`: a finite, positive frame rate.
fn fps(text: &str) -> Result<f64, String> {
    number_in(text, 0.1, 10_000.0, "frames per second")
}

/// `e` as one line: its message, then each cause the message does not already include.
fn error_text(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

const WIDTH: usize = 320;
const HEIGHT: usize = 240;

struct Frame {
    captured_at: Instant,
    pixels: Vec<u8>,
}

/// The camera queue depth, sampled as a user gauge through the periodic-source mechanism.
struct QueueDepth(Arc<AtomicUsize>);

impl PeriodicSource for QueueDepth {
    fn name(&self) -> &str {
        "camera"
    }
    fn sample(&mut self, out: &mut Samples<'_>) {
        out.record(
            "camera.queue_depth",
            "frames",
            self.0.load(Ordering::Relaxed) as f64,
        );
    }
}

fn camera(
    tx: SyncSender<Frame>,
    fps: f64,
    run_for: Duration,
    depth: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
) {
    let period = Duration::from_secs_f64(1.0 / fps);
    let start = Instant::now();
    let mut next = start;
    let mut id = 0u64;
    while start.elapsed() < run_for {
        let frame = {
            let _capture = scope!("capture");
            synthesize(id)
        };
        match tx.try_send(frame) {
            Ok(()) => {
                depth.fetch_add(1, Ordering::Relaxed);
            }
            // A real camera drops frames when processing cannot keep up: count them.
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return,
        }
        id += 1;
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

fn synthesize(id: u64) -> Frame {
    let mut pixels = vec![0u8; WIDTH * HEIGHT];
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for (i, p) in pixels.iter_mut().enumerate() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // A gradient, some noise, and a bright defect that moves along the belt.
        *p = ((i % WIDTH) / 3) as u8 / 2 + (x & 0x1f) as u8;
    }
    // One frame in seven carries a defect (a bright blob) that moves along the belt.
    if id.is_multiple_of(7) {
        let cx = (id as usize * 4) % (WIDTH - 20) + 10;
        for y in 100..116 {
            for xx in cx - 8..cx + 8 {
                pixels[y * WIDTH + xx] = 250;
            }
        }
    }
    Frame {
        captured_at: Instant::now(),
        pixels,
    }
}

fn preprocess(pixels: &mut [u8]) {
    let _s = scope!("preprocess");
    {
        let _n = scope!("normalize");
        // Dark-level correction: subtract the darkest pixel (no contrast stretch, so that a
        // frame without a defect keeps its dim background below the detection threshold).
        let lo = pixels.iter().copied().min().unwrap_or(0);
        for p in pixels.iter_mut() {
            *p -= lo;
        }
    }
    {
        let _b = scope!("blur");
        let src = pixels.to_vec();
        for y in 1..HEIGHT - 1 {
            for x in 1..WIDTH - 1 {
                let i = y * WIDTH + x;
                let s = src[i - WIDTH] as u32
                    + src[i + WIDTH] as u32
                    + src[i - 1] as u32
                    + src[i + 1] as u32
                    + 4 * src[i] as u32;
                pixels[i] = (s / 8) as u8;
            }
        }
    }
}

/// Returns the size of the largest bright blob.
fn detect(pixels: &[u8]) -> usize {
    let _s = scope!("detect");
    let mask: Vec<bool> = {
        let _t = scope!("threshold");
        pixels.iter().map(|&p| p > 200).collect()
    };
    let _c = scope!("components");
    let mut seen = vec![false; mask.len()];
    let mut largest = 0;
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        let mut size = 0;
        stack.push(start);
        seen[start] = true;
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % WIDTH, i / WIDTH);
            let mut visit = |j: usize| {
                if mask[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < WIDTH {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - WIDTH);
            }
            if y + 1 < HEIGHT {
                visit(i + WIDTH);
            }
        }
        largest = largest.max(size);
    }
    largest
}

struct LineStats {
    frames: u64,
    rejected: u64,
}

fn processing(
    rx: Receiver<Frame>,
    session: Arc<Mutex<ProfilingSession>>,
    depth: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> LineStats {
    let mut fps = MetricCounter::new("fps", MetricType::Throughput, "fps", 120);
    let mut latency = MetricCounter::new("frame_latency", MetricType::Latency, "ms", 600);
    let mut meter = ThroughputMeter::new("frames", Duration::from_secs(1));
    let mut timer = Timer::new("frame_processing");
    let mut stats = LineStats {
        frames: 0,
        rejected: 0,
    };
    let mut last_report = Instant::now();
    while let Ok(mut frame) = rx.recv_timeout(Duration::from_millis(200)) {
        depth.fetch_sub(1, Ordering::Relaxed);
        timer.start();
        {
            let _f = scope!("frame");
            preprocess(&mut frame.pixels);
            let blob = detect(&frame.pixels);
            // The spec's API: an explicit timing on the shared session.
            session.lock().unwrap().start_timing("decide");
            let reject = blob > 100;
            if reject {
                stats.rejected += 1;
            }
            let _ = session.lock().unwrap().stop_timing("decide");
        }
        let _ = timer.stop();
        meter.tick();
        latency.set(frame.captured_at.elapsed().as_secs_f64() * 1e3);
        stats.frames += 1;
        // Every frame's latency goes into the session (its statistics and time series);
        // the slower-moving meters are published once a second below.
        session
            .lock()
            .unwrap()
            .add_measurement(latency.to_measurement().with_label("camera", "cam-0"));

        // Once a second, publish the meters into the session.
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            fps.set(meter.rate());
            let mut s = session.lock().unwrap();
            s.add_measurement(fps.to_measurement());
            s.add_measurement(timer.to_measurement());
            s.add_measurement(meter.to_measurement());
        }
        if stop.load(Ordering::Relaxed) && rx.try_recv().is_err() {
            break;
        }
    }
    let mut s = session.lock().unwrap();
    fps.set(meter.rate());
    s.add_measurement(fps.to_measurement());
    let lat = latency.statistics();
    s.add_note(format!(
        "## Run summary\n\n- frames processed: **{}**\n- frames rejected: {}\n- frame latency p50 / p99: {:.2} ms / {:.2} ms\n",
        stats.frames, stats.rejected, lat.p50, lat.p99
    ));
    stats
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let run_for = Duration::from_secs_f64(args.seconds);

    let manager = init(&args.out)?;
    let session = manager.lock().unwrap().start_session("inspection_line")?;
    {
        let mut s = session.lock().unwrap();
        s.set_sampling_interval(Duration::from_millis(args.sample_ms))?;
        if let Err(e) = s.start_system_metrics() {
            eprintln!("note: no system metrics: {e}");
        }
    }

    let depth = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    session.lock().unwrap().start_periodic(
        Box::new(QueueDepth(Arc::clone(&depth))),
        Duration::from_millis(50),
    )?;

    println!(
        "Running the simulated inspection line for {:.1} s at {} fps…",
        run_for.as_secs_f64(),
        args.fps
    );
    let (tx, rx) = sync_channel::<Frame>(8);
    let stop = Arc::new(AtomicBool::new(false));
    let cam = {
        let (depth, dropped) = (Arc::clone(&depth), Arc::clone(&dropped));
        let fps = args.fps;
        std::thread::Builder::new()
            .name("camera".into())
            .spawn(move || camera(tx, fps, run_for, depth, dropped))?
    };
    let proc_thread = {
        let (session, depth, stop) = (Arc::clone(&session), Arc::clone(&depth), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("processing".into())
            .spawn(move || processing(rx, session, depth, stop))?
    };
    cam.join().map_err(|_| "the camera thread panicked")?;
    stop.store(true, Ordering::Relaxed);
    let line = proc_thread
        .join()
        .map_err(|_| "the processing thread panicked")?;

    let report = session.lock().unwrap().report();
    let saved = manager.lock().unwrap().stop_session()?;

    println!();
    println!(
        "{} frames processed, {} rejected, {} dropped by the camera",
        line.frames,
        line.rejected,
        dropped.load(Ordering::Relaxed)
    );
    if let Some(fps) = report.metric("fps") {
        println!("mean fps {:.1}", fps.summary.mean);
    }
    if let Some(lat) = report.metric("frame_latency") {
        println!(
            "frame latency (capture → decision): p50 {:.2} ms, p99 {:.2} ms",
            lat.summary.p50, lat.summary.p99
        );
    }
    println!();
    println!(
        "{:<36} {:>7} {:>11} {:>11} {:>11}",
        "span", "count", "mean", "p99", "self total"
    );
    for s in report.span_totals.iter().take(12) {
        println!(
            "{:<36} {:>7} {:>11} {:>11} {:>11}",
            s.path_string(),
            s.count,
            Style::Text.duration(s.duration.mean),
            Style::Text.duration(s.duration.p99),
            Style::Text.duration(s.self_ns as f64)
        );
    }
    println!();
    println!("Reports written to {}:", saved.dir.display());
    for f in &saved.files {
        println!("  {}", f.display());
    }
    if saved.files.is_empty() {
        println!(
            "  (no report format compiled in: enable the features json, markdown, html, flame)"
        );
    }
    Ok(())
}

/// The argument checks and the error printing. They run with `cargo test --workspace`
/// through `tests/example_args.rs`, which compiles this file as a module.
#[cfg(test)]
mod tests {
    use super::{error_text, Args};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("performance_analysis").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_and_the_ci_arguments_parse() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.seconds, a.fps, a.sample_ms), (3.0, 60.0, 250));
        assert_eq!(a.out, "./performance_reports");
        let a = parse(&["--seconds", "1", "--out", "target/ci-performance_reports"]).unwrap();
        assert_eq!(a.seconds, 1.0);
        let a = parse(&["--seconds", "0.1", "--fps", "0.5", "--sample-ms", "10"]).unwrap();
        assert_eq!((a.seconds, a.fps, a.sample_ms), (0.1, 0.5, 10));
    }

    #[test]
    fn odd_numbers_are_refused_with_a_message() {
        for (args, says) in [
            (
                &["--seconds", "inf"][..],
                "must be from 0.1 to 86400 seconds",
            ),
            (
                &["--seconds", "1e30"][..],
                "must be from 0.1 to 86400 seconds",
            ),
            (
                &["--seconds", "nan"][..],
                "must be from 0.1 to 86400 seconds",
            ),
            (&["--seconds", "0"][..], "must be from 0.1 to 86400 seconds"),
            (&["--seconds=-3"][..], "must be from 0.1 to 86400 seconds"),
            (&["--seconds", "soon"][..], "`soon` is not a number"),
            (
                &["--fps", "0"][..],
                "must be from 0.1 to 10000 frames per second",
            ),
            (
                &["--fps=-inf"][..],
                "must be from 0.1 to 10000 frames per second",
            ),
            (
                &["--fps", "NaN"][..],
                "must be from 0.1 to 10000 frames per second",
            ),
            (
                &["--fps", "1e-300"][..],
                "must be from 0.1 to 10000 frames per second",
            ),
            (&["--sample-ms", "0"][..], "0 is not in 10..=3600000"),
            (&["--sample-ms", "9"][..], "9 is not in 10..=3600000"),
            (
                &["--sample-ms", "99999999999"][..],
                "is not in 10..=3600000",
            ),
        ] {
            let e = parse(args).expect_err(&format!("{args:?} accepted"));
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
            assert_eq!(e.exit_code(), 2);
            let text = e.render().to_string();
            assert!(text.contains(says), "{args:?}: {text}");
        }
    }

    #[test]
    fn a_run_error_reads_as_a_sentence_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        // The reports folder cannot be created where a file is.
        let e = heimdall_perf::init(file.join("reports")).unwrap_err();
        let text = error_text(&e);
        assert!(text.starts_with("cannot write `"), "{text}");
        assert!(!text.contains("Io {"), "{text}");
        assert_eq!(text.matches("(os error").count(), 1, "{text}");

        /// An error whose message leaves its cause out.
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("cannot start the camera")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("device busy"));
        assert_eq!(error_text(&e), "cannot start the camera: device busy");
    }
}
