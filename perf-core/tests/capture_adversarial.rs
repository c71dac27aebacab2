//! Adversarial tests of the trace capture (`capture_trace`, `capture_trace_with_limit`).
//! `scope!` records into the process-wide current session: tests run one at a time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use heimdall_perf_core::{frame, scope, PerfError, ProfilingSession};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            if new >= l.size() {
                let now = LIVE.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}
#[global_allocator]
static A: Counting = Counting;

static SERIAL: Mutex<()> = Mutex::new(());
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn spans(n: usize) {
    for _ in 0..n {
        let _a = scope!("outer");
        let _b = scope!("inner");
    }
}

#[test]
fn tiny_window_one_ns() {
    let _g = serial();
    let mut s = ProfilingSession::new("tiny");
    s.capture_trace(Duration::from_nanos(1)).unwrap();
    spans(100);
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    assert!(
        c.spans.len() <= 1,
        "1 ns window kept {} spans",
        c.spans.len()
    );
    assert!(!c.open);
    assert_eq!(c.end_ns, c.start_ns + 1);
}

#[test]
fn huge_window_duration_max() {
    let _g = serial();
    let mut s = ProfilingSession::new("huge");
    s.capture_trace(Duration::MAX).unwrap();
    spans(100);
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    assert_eq!(c.spans.len(), 200);
    assert!(c.open);
    assert!(c.end_ns <= r.session.duration_ns + 1_000_000);
    s.stop();
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    assert!(!c.open);
    assert!(
        c.end_ns <= r.session.duration_ns,
        "{} > {}",
        c.end_ns,
        r.session.duration_ns
    );
    assert_eq!(c.spans.len(), 200);
}

#[test]
fn started_twice_replaces() {
    let _g = serial();
    let mut s = ProfilingSession::new("twice");
    s.capture_trace(Duration::from_secs(60)).unwrap();
    spans(10);
    s.capture_trace(Duration::from_secs(60)).unwrap();
    spans(3);
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    assert_eq!(c.spans.len(), 6);
    assert!(c.spans.iter().all(|t| t.start_ns >= c.start_ns));
}

#[test]
fn stopped_session_and_refusals() {
    let _g = serial();
    let mut s = ProfilingSession::new("stopped");
    s.capture_trace(Duration::from_secs(60)).unwrap();
    spans(5);
    s.stop();
    spans(5);
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    assert_eq!(c.spans.len(), 10);
    assert!(!c.open);
    assert!(c.end_ns <= r.session.duration_ns);
    assert!(matches!(
        s.capture_trace(Duration::from_secs(1)),
        Err(PerfError::SessionStopped { .. })
    ));
    assert!(s.capture_trace_with_limit(Duration::ZERO, 1).is_err());
}

#[test]
fn span_begun_before_window_parent_missing_children_kept() {
    let _g = serial();
    let mut s = ProfilingSession::new("straddle");
    {
        let _outer = scope!("straddling");
        s.capture_trace(Duration::from_secs(60)).unwrap();
        let _c = scope!("child");
    }
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    let names: Vec<_> = c
        .spans
        .iter()
        .map(|t| c.paths[t.span].path.join("/"))
        .collect();
    eprintln!("captured: {names:?}");
    assert_eq!(names, ["straddling/child"]);
}

#[test]
fn not_the_current_session() {
    let _g = serial();
    let mut a = ProfilingSession::new("a");
    a.capture_trace(Duration::from_secs(60)).unwrap();
    let mut b = ProfilingSession::new("b");
    spans(10);
    let ra = a.report();
    let rb = b.report();
    assert_eq!(ra.capture.as_ref().unwrap().spans.len(), 0);
    assert!(rb.capture.is_none());
    b.stop();
    spans(10);
    assert_eq!(a.report().capture.as_ref().unwrap().spans.len(), 20);
    a.stop();
}

#[test]
fn limit_zero_and_max() {
    let _g = serial();
    let mut s = ProfilingSession::new("limits");
    s.capture_trace_with_limit(Duration::from_secs(60), 0)
        .unwrap();
    spans(50);
    let f = frame!("cam-lim");
    f.finish();
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    assert_eq!((c.spans.len(), c.frames.len(), c.dropped), (0, 0, 101));
    s.capture_trace_with_limit(Duration::from_secs(60), usize::MAX)
        .unwrap();
    spans(50);
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    assert_eq!((c.spans.len(), c.dropped), (100, 0));
    assert_eq!(c.max_events, u64::MAX);
}

/// More than 32 threads, overlapping in time, exit during a capture: the folded threads'
/// captured spans must keep a thread of their own (or at least still nest per track).
#[test]
fn folded_threads_keep_their_identity_in_the_capture() {
    let _g = serial();
    let mut s = ProfilingSession::new("fold");
    s.capture_trace(Duration::from_secs(60)).unwrap();
    let n = 48;
    let bar = Arc::new(Barrier::new(n));
    let hs: Vec<_> = (0..n)
        .map(|k| {
            let bar = bar.clone();
            thread::Builder::new()
                .name(format!("w{k}"))
                .spawn(move || {
                    bar.wait();
                    let _a = scope!("work");
                    thread::sleep(Duration::from_millis(5 + (k % 7) as u64));
                })
                .unwrap()
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    thread::sleep(Duration::from_millis(200));
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    assert_eq!(c.spans.len(), n);
    assert!(r.diagnostics.folded_threads > 0 || r.diagnostics.exited_threads >= n as u64);
    // Spans per thread track: overlapping spans on one track that do not nest = broken.
    let mut per: BTreeMap<Option<u64>, Vec<(u64, u64)>> = BTreeMap::new();
    for t in &c.spans {
        per.entry(Some(c.paths[t.span].thread_id))
            .or_default()
            .push((t.start_ns, t.start_ns + t.duration_ns));
    }
    let mut bad = 0;
    for (tid, mut v) in per {
        v.sort_by_key(|&(s, e)| (s, std::cmp::Reverse(e)));
        let mut stack: Vec<u64> = vec![];
        for (st, en) in v {
            while stack.last().is_some_and(|&e| e <= st) {
                stack.pop();
            }
            if stack.last().is_some_and(|&e| en > e) {
                bad += 1;
                eprintln!("track {tid:?}: [{st},{en}] overlaps a sibling of another thread");
            }
            stack.push(en);
        }
    }
    let distinct: std::collections::BTreeSet<_> = c
        .spans
        .iter()
        .map(|t| Some(c.paths[t.span].thread_id))
        .collect();
    eprintln!("{} threads → {} tracks; {bad} crossings", n, distinct.len());
    assert_eq!(
        distinct.len(),
        n,
        "captured spans of folded threads lost their thread"
    );
}

/// Every captured span against the statistics: counts per path equal, durations within
/// one nanosecond of rounding per span.
#[test]
fn capture_matches_statistics() {
    let _g = serial();
    let mut s = ProfilingSession::new("match");
    s.capture_trace(Duration::from_secs(60)).unwrap();
    let hs: Vec<_> = (0..4).map(|_| thread::spawn(|| spans(20_000))).collect();
    for h in hs {
        h.join().unwrap();
    }
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    let mut count: BTreeMap<(u64, Vec<String>), (u64, u64)> = BTreeMap::new();
    for t in &c.spans {
        let p = &c.paths[t.span];
        let e = count.entry((p.thread_id, p.path.clone())).or_default();
        e.0 += 1;
        e.1 += t.duration_ns;
    }
    assert_eq!(c.dropped, 0);
    for st in &r.spans {
        let key = (st.thread_id.unwrap(), st.path.clone());
        let (n, tot) = count.get(&key).copied().unwrap_or_default();
        assert_eq!(n, st.count, "{:?} {:?}", st.thread, st.path);
        let diff = tot.abs_diff(st.total_ns);
        assert!(
            diff <= n,
            "{:?}: capture {tot} vs stats {} ns",
            st.path,
            st.total_ns
        );
    }
}

#[test]
fn report_in_a_loop_while_spans_flow() {
    let _g = serial();
    let mut s = ProfilingSession::new("loop");
    s.capture_trace_with_limit(Duration::from_secs(60), 300_000)
        .unwrap();
    let stop = AtomicBool::new(false);
    let s = &s;
    let (mut reports, mut worst) = (0, Duration::ZERO);
    let (reports_ref, worst_ref) = (&mut reports, &mut worst);
    thread::scope(|sc| {
        let stop = &stop;
        sc.spawn(move || {
            let (reports, worst) = (reports_ref, worst_ref);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = s.report();
                *worst = (*worst).max(t.elapsed());
                let c = r.capture.as_ref().unwrap();
                for t in &c.spans {
                    assert!(t.span < r.spans.len());
                }
                *reports += 1;
            }
        });
        let hs: Vec<_> = (0..2).map(|_| sc.spawn(|| spans(200_000))).collect();
        for h in hs {
            h.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    eprintln!(
        "{reports} reports, worst {worst:?}, leaked {}",
        r.diagnostics.leaked_spans
    );
    assert_eq!(c.spans.len() as u64 + c.dropped, 800_000);
    assert_eq!(c.spans.len(), 300_000);
}

/// A capture limited to N events must use about N × 24 bytes, not the next power of two.
#[test]
fn memory_of_a_capture_stays_under_its_limit() {
    let _g = serial();
    let limit = 1_100_000usize;
    let mut s = ProfilingSession::new("mem");
    spans(10); // paths exist before
    let _ = s.report();
    let before = LIVE.load(Ordering::Relaxed);
    s.capture_trace_with_limit(Duration::from_secs(600), limit)
        .unwrap();
    spans(1_500_000);
    let r = s.report();
    let c = r.capture.as_ref().unwrap();
    assert_eq!(c.spans.len(), limit);
    drop(r);
    let after = LIVE.load(Ordering::Relaxed);
    let used = after.saturating_sub(before);
    let budget = limit * 24;
    eprintln!(
        "capture of {limit} spans holds {} MiB (limit × 24 B = {} MiB)",
        used >> 20,
        budget >> 20
    );
    // One report() more: the whole capture is copied under the aggregator lock.
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let base = LIVE.load(Ordering::Relaxed);
    let r = s.report();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    eprintln!("report() peak extra {} MiB", peak >> 20);
    drop(r);
    assert!(
        used <= budget * 5 / 4,
        "capture holds {used} B for a limit of {budget} B"
    );
}

/// The default limit (2M): peak heap of the capture while it fills and while report() copies it.
#[test]
fn default_limit_peak_memory() {
    let _g = serial();
    let mut s = ProfilingSession::new("mem-default");
    spans(10);
    let _ = s.report();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    s.capture_trace(Duration::from_secs(600)).unwrap();
    spans(1_100_000);
    let fill_peak = PEAK.load(Ordering::Relaxed) - base;
    let held = LIVE.load(Ordering::Relaxed) - base;
    let t = Instant::now();
    let r = s.report();
    eprintln!(
        "report() with a full default capture took {:?}",
        t.elapsed()
    );
    let report_peak = PEAK.load(Ordering::Relaxed) - base;
    assert_eq!(
        r.capture.as_ref().unwrap().spans.len(),
        heimdall_perf_core::limits::DEFAULT_TRACE_EVENTS
    );
    eprintln!(
        "default capture: held {} MiB, peak while filling {} MiB, peak with report() {} MiB",
        held >> 20,
        fill_peak >> 20,
        report_peak >> 20
    );
    assert!(report_peak < 64 << 20);
}
