//! Names, metrics and notes made at run time (one per frame, say) stay bounded, and every
//! cap counts what it turns away. Alone in its binary: span names are process-wide.

use heimdall_perf_core::limits::{MAX_METRICS, MAX_NOTES};
use heimdall_perf_core::limits::{MAX_NAMES, MAX_PATHS};
use heimdall_perf_core::{Measurement, MetricType, ProfilingSession};

#[test]
fn span_names_past_the_process_limit_share_the_overflow_name() {
    let mut s = ProfilingSession::new("names");
    let n = MAX_NAMES + 50;
    for i in 0..n {
        let name = format!("frame-{i}");
        s.start_timing(&name);
        // Past the limit, stopping still finds the timing.
        s.stop_timing(&name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Interleaved: a name past the limit cannot close another one's timing.
    s.start_timing("frame-late-a");
    s.start_timing("frame-late-b");
    let e = s.stop_timing("frame-late-a").unwrap_err().to_string();
    assert!(
        e.contains("`frame-late-b`"),
        "names the timing still open: {e}"
    );
    // A name never started, past the limit, stops nothing.
    let e = s.stop_timing("never-started").unwrap_err().to_string();
    assert!(e.contains("was not started"), "{e}");
    s.stop_timing("frame-late-b").unwrap();
    s.stop_timing("frame-late-a").unwrap();
    let r = s.report();
    assert_eq!(r.span_count(), n as u64 + 2);
    assert_eq!(r.spans.len(), MAX_PATHS + 1);
    assert_eq!(r.diagnostics.overflowed_spans, (n - MAX_PATHS) as u64 + 2);
}

#[test]
fn metrics_and_notes_are_bounded_and_counted() {
    let mut s = ProfilingSession::new("metrics");
    for i in 0..MAX_METRICS + 30 {
        s.add_measurement(
            Measurement::new("latency", MetricType::Latency, 1.0, "ms")
                .with_label("frame", i.to_string()),
        );
    }
    // Known metrics still take values.
    s.add_measurement(
        Measurement::new("latency", MetricType::Latency, 3.0, "ms").with_label("frame", "0"),
    );
    for i in 0..MAX_NOTES + 7 {
        s.add_note(format!("note {i}"));
    }
    let r = s.report();
    assert_eq!(r.metrics.len(), MAX_METRICS);
    assert_eq!(r.diagnostics.dropped_measurements, 30);
    assert_eq!(r.metrics[0].summary.count, 2);
    assert_eq!(r.notes.len(), MAX_NOTES);
    assert_eq!(r.diagnostics.dropped_notes, 7);
}
