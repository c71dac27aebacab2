//! The harness of the aggregator's adversarial tests (`pacing_adversarial`,
//! `slow_pacing_adversarial`): one test at a time, a counting allocator (each binary
//! installs it: `#[global_allocator] static GLOBAL: Counting = Counting;`), the aggregator's
//! thread found through `/proc/self/task`, and an in-memory trace stream.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use heimdall_perf_core::{
    CapturedFrame, ProfilingSession, Registry, StreamEnd, StreamHeader, TraceBatch, TraceStream,
};

static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The system allocator, counting the bytes in use and their peak.
pub struct Counting;

pub static LIVE: AtomicI64 = AtomicI64::new(0);
pub static PEAK: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now =
                LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed) + layout.size() as i64;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }
}

pub fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// Starts measuring the peak from the bytes in use now.
pub fn reset_peak() -> i64 {
    let now = live();
    PEAK.store(now, Ordering::Relaxed);
    now
}

pub fn peak() -> i64 {
    PEAK.load(Ordering::Relaxed)
}

pub const MIB: i64 = 1 << 20;

/// Ids of this process's threads whose name (`comm`, 15 bytes) starts with `prefix`.
pub fn tasks_named(prefix: &str) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir("/proc/self/task").expect("read /proc/self/task") {
        let e = e.unwrap();
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim_end().starts_with(prefix) {
            out.insert(e.file_name().to_string_lossy().parse().unwrap());
        }
    }
    out
}

/// `heimdall-perf-aggregator-N`, as the kernel keeps it (15 bytes).
pub const AGGREGATOR_COMM: &str = "heimdall-perf-a";

/// A session, and the id of its aggregator thread (the one that appeared with it).
pub fn session_with_aggregator(
    name: &str,
    registry: Option<Arc<Registry>>,
) -> (ProfilingSession, u64) {
    let before = tasks_named(AGGREGATOR_COMM);
    let session = match registry {
        Some(r) => ProfilingSession::with_registry(name, r),
        None => ProfilingSession::new(name),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let new: Vec<u64> = tasks_named(AGGREGATOR_COMM)
            .difference(&before)
            .copied()
            .collect();
        if let [tid] = new[..] {
            return (session, tid);
        }
        assert!(
            Instant::now() < deadline,
            "no aggregator thread appeared: {new:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// CPU time (ns) and number of times the thread `tid` ran (its wake-ups), `None` once it
/// has exited.
pub fn schedstat(tid: u64) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    let f: Vec<u64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
    Some((f[0], f[2]))
}

/// Runs `f` on a thread and fails if it does not return within `secs` seconds (a hang).
pub fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not return within {secs} s (hang)"),
    }
}

/// Waits, at most `secs` seconds, for `cond`.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// Lets the aggregator settle into its longest wait (its passes find nothing, and the wait
/// doubles from 10 ms: the pass at 1.27 s sets it to 1 s).
pub fn idle() {
    thread::sleep(Duration::from_millis(1400));
}

/// Waits until the aggregator `tid` has just run a pass (its next wait is then its
/// longest, up to 1 s, on an idle session).
pub fn right_after_a_pass(tid: u64) {
    let (_, runs) = schedstat(tid).expect("aggregator running");
    wait_for(30, "a pass", || {
        schedstat(tid).expect("aggregator running").1 != runs
    });
    thread::sleep(Duration::from_millis(2));
}

/// Waits until this process has `baseline` aggregator threads again (every session's
/// aggregator started since has exited).
pub fn wait_for_aggregators(baseline: usize) {
    wait_for(60, "every aggregator thread to exit", || {
        tasks_named(AGGREGATOR_COMM).len() == baseline
    });
}

/// Wake-ups of the aggregator `tid` over `secs` seconds.
pub fn wake_ups_over(tid: u64, secs: u64) -> u64 {
    let (_, runs0) = schedstat(tid).expect("aggregator running");
    thread::sleep(Duration::from_secs(secs));
    let (_, runs1) = schedstat(tid).expect("aggregator running");
    runs1 - runs0
}

// Streamed trace windows.

/// What an in-memory trace stream received.
#[derive(Default)]
pub struct Received {
    pub header: Option<StreamHeader>,
    pub batches: u64,
    pub spans: u64,
    pub frames: Vec<CapturedFrame>,
    pub end: Option<StreamEnd>,
    /// When the stream was finished.
    pub closed_at: Option<Instant>,
}

pub struct MemoryStream(Arc<Mutex<Received>>);

impl TraceStream for MemoryStream {
    fn append(&mut self, batch: &TraceBatch<'_>) -> io::Result<()> {
        let mut r = self.0.lock().unwrap();
        assert!(r.end.is_none(), "a batch after the end");
        r.batches += 1;
        r.spans += batch.spans.len() as u64;
        r.frames.extend_from_slice(batch.frames);
        Ok(())
    }

    fn finish(&mut self, end: &StreamEnd) -> io::Result<()> {
        let mut r = self.0.lock().unwrap();
        assert!(r.end.is_none(), "finished twice");
        r.end = Some(end.clone());
        r.closed_at = Some(Instant::now());
        Ok(())
    }
}

/// A registry whose trace streams write into `received`.
pub fn memory_registry(received: &Arc<Mutex<Received>>) -> Arc<Registry> {
    let registry = Arc::new(Registry::new());
    let received = Arc::clone(received);
    registry.set_trace_stream(Arc::new(move |_path: &Path, header: &StreamHeader| {
        received.lock().unwrap().header = Some(header.clone());
        Ok(Box::new(MemoryStream(Arc::clone(&received))) as Box<dyn TraceStream>)
    }));
    registry
}

pub fn closed(received: &Arc<Mutex<Received>>) -> bool {
    received.lock().unwrap().end.is_some()
}

/// The ids of the frames in `timed` (id, begun, finished, in Unix nanoseconds) that began
/// and finished inside the window of the stream that `received` got, at least `margin_ns`
/// from its edges; `start_unix_ns` is the session's start.
pub fn frames_inside_window(
    received: &Received,
    timed: &[(u64, u64, u64)],
    start_unix_ns: u64,
    margin_ns: u64,
) -> BTreeSet<u64> {
    let header = received.header.as_ref().expect("a stream was opened");
    let (w0, w1) = (header.start_ns, header.start_ns + header.window_ns);
    timed
        .iter()
        .filter(|(_, begun, finished)| {
            begun.saturating_sub(start_unix_ns) > w0 + margin_ns
                && finished.saturating_sub(start_unix_ns) + margin_ns < w1
        })
        .map(|&(id, _, _)| id)
        .collect()
}

/// The ids of the frames a stream wrote.
pub fn frames_written(received: &Received) -> BTreeSet<u64> {
    received.frames.iter().map(|f| f.frame_id).collect()
}
