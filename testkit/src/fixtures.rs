//! Deterministic reports for the tests, golden files and benchmarks of sinks.
//!
//! [`sample_report`] is small and fixed (same bytes every time: fixed times, fixed values),
//! and holds the awkward cases every sink must survive: names with `|`, backticks, newlines
//! and `<script>`, a NaN and an infinite value, labels, notes with raw HTML.
//! [`large_report`] is the size a long production session reaches.
//!
//! ```
//! let r = heimdall_perf_testkit::sample_report();
//! assert_eq!(r.session.name, "line-3 inspection");
//! assert!(r.span_total(&["frame", "detect", "nms"]).is_some());
//! ```

use std::collections::BTreeMap;

use heimdall_perf_core::stats::{DurationStats, ValueStats};
use heimdall_perf_core::BoundedSeries;
use heimdall_perf_core::MetricType;
use heimdall_perf_core::{
    series_names as sn, Attribution, Diagnostics, Distribution, FrameReport, FrameWindow, Incident,
    IncidentFrame, IncidentStage, MetricReport, Note, Report, SessionInfo, SpanStats, StageReport,
    SystemFigure, ThreadInfo, TimeSeries, TimelineSpan, SCHEMA_VERSION,
};

/// Start of the fixture sessions: 2025-11-24T16:00:00Z.
pub const FIXTURE_START_UNIX_NS: u64 = 1_764_000_000_000_000_000;
/// Notes that try to get raw HTML or a script link into a report, in every place a
/// Markdown parser reads HTML: blocks, inline, comments, CDATA, processing instructions,
/// declarations, containers (lists, quotes, tables, footnotes), links and autolinks.
pub const HOSTILE_NOTES: &[&str] = &[
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>\n<img src=x onerror=alert(1)>",
    "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "text <img src=x onerror=alert(1)> inline",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<a href=\"javascript:alert(1)\">click</a>",
    "<!-- c --><img src=x onerror=alert(1)>",
    "<!-- multi\nline\n-->\n<img src=x onerror=alert(1)>",
    "a <!-- inline --> b",
    "<![CDATA[<img src=x onerror=alert(1)>]]>",
    "<?php echo 1; ?><img src=x onerror=alert(1)>",
    "<!DOCTYPE html><img src=x onerror=alert(1)>",
    "<details open ontoggle=alert(1)>x</details>",
    "<style>body{display:none}</style>",
    "<textarea><img src=x onerror=alert(1)></textarea>",
    "<pre><img src=x onerror=alert(1)></pre>",
    "  <img src=x onerror=alert(1)>",
    "<img\nsrc=x\nonerror=alert(1)>",
    "<img src=x onerror=alert(1)\n",
    "- item <img src=x onerror=alert(1)>\n- <svg onload=alert(1)>\n  <img src=x onerror=alert(2)>",
    "1. a\n\n   <img src=x onerror=alert(1)>",
    "> <img src=x onerror=alert(1)>\n> <iframe src=x>",
    "> - > <img src=x onerror=alert(1)>",
    "| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | <svg onload=alert(1)> |",
    "[^1]\n\n[^1]: <img src=x onerror=alert(1)>",
    "# <img src=x onerror=alert(1)>",
    "<img src=x onerror=alert(1)>\n===",
    "$<img src=x onerror=alert(1)>$ and $$<svg onload=alert(1)>$$",
    "> [!NOTE]\n> <img src=x onerror=alert(1)>",
    "`code` <img src=x onerror=alert(1)> `more`",
    "<javascript:alert(1)>",
    "<JaVaScRiPt:alert(1)>",
    "<vbscript:msgbox(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    "[x](javascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x](jav&#x61;script:alert(1))",
    "![x](javascript:alert(1))",
    "[x][r]\n\n[r]: javascript:alert(1)",
    "[x]\n\n[x]: JAVASCRIPT:alert(1) \"t\"",
    "[*a* `b`](javascript:alert(1)) after",
    "- [x](javascript:alert(1))",
    "| [x](javascript:alert(1)) |\n|---|",
];

/// A span name that tries to break every format.
pub const HOSTILE_NAME: &str =
    "odd | name `with` ticks\nand <script>alert(1)</script> & \"quotes\"";

/// A small deterministic pseudo-random generator (SplitMix64), so fixtures need no crate.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

struct PathSpec {
    thread: usize,
    path: Vec<String>,
    count: u64,
    /// Typical duration, ns.
    typical: u64,
}

fn build_spans(
    threads: &[ThreadInfo],
    specs: &[PathSpec],
    rng: &mut SplitMix,
) -> (Vec<SpanStats>, Vec<SpanStats>) {
    let stats: Vec<DurationStats> = specs
        .iter()
        .map(|p| {
            let mut s = DurationStats::new();
            for _ in 0..p.count {
                s.record(p.typical / 2 + rng.range(0, p.typical));
            }
            s
        })
        .collect();
    let child_total = |i: usize| -> u64 {
        let p = &specs[i];
        specs
            .iter()
            .zip(&stats)
            .filter(|(c, _)| {
                c.thread == p.thread
                    && c.path.len() == p.path.len() + 1
                    && c.path.starts_with(&p.path)
            })
            .map(|(_, s)| s.total())
            .sum()
    };
    let span = |i: usize, thread: Option<&ThreadInfo>| {
        let s = &stats[i];
        SpanStats {
            thread_id: thread.map(|t| t.id),
            thread: thread.map(|t| t.name.clone()),
            path: specs[i].path.clone(),
            count: s.count(),
            total_ns: s.total(),
            self_ns: s.total().saturating_sub(child_total(i)),
            duration: s.summary(),
            histogram: s.buckets(256),
        }
    };
    let spans: Vec<SpanStats> = (0..specs.len())
        .map(|i| span(i, Some(&threads[specs[i].thread])))
        .collect();
    // Paths are distinct across threads in the fixtures, so totals are the same figures.
    let mut totals: Vec<SpanStats> = (0..specs.len()).map(|i| span(i, None)).collect();
    totals.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.path.cmp(&b.path)));
    (spans, totals)
}

fn series(
    name: &str,
    unit: &str,
    source: &str,
    samples: u64,
    period_ns: u64,
    f: impl Fn(u64) -> f64,
) -> TimeSeries {
    let mut s = BoundedSeries::new(heimdall_perf_core::limits::SERIES_CAPACITY);
    for i in 0..samples {
        s.push(i * period_ns, f(i));
    }
    TimeSeries {
        name: name.to_string(),
        unit: unit.to_string(),
        source: source.to_string(),
        points: s.points().to_vec(),
    }
}

fn metric(
    name: &str,
    metric_type: MetricType,
    unit: &str,
    values: &[f64],
    period_ns: u64,
) -> MetricReport {
    let mut stats = ValueStats::new();
    let mut s = BoundedSeries::new(1024);
    for (i, &v) in values.iter().enumerate() {
        stats.record(v);
        s.push(i as u64 * period_ns, v);
    }
    MetricReport {
        name: name.to_string(),
        metric_type,
        unit: unit.to_string(),
        labels: BTreeMap::new(),
        last: values.last().copied().unwrap_or(f64::NAN),
        non_finite: stats.non_finite(),
        summary: stats.summary(),
        points: s.points().to_vec(),
    }
}

fn session(name: &str, duration_ns: u64) -> SessionInfo {
    SessionInfo {
        name: name.to_string(),
        host: "inspection-01".to_string(),
        pid: 4242,
        start_unix_ns: FIXTURE_START_UNIX_NS,
        started_at: rfc3339(FIXTURE_START_UNIX_NS),
        duration_ns,
        active: false,
        labels: BTreeMap::new(),
    }
}

/// A small, fixed report of a 10-second session: a camera thread and a processing thread
/// (frame → preprocess / detect → nms / decide), metrics, system series, notes.
pub fn sample_report() -> Report {
    let mut rng = SplitMix::new(7);
    let threads = vec![
        ThreadInfo {
            id: 1,
            name: "camera".into(),
        },
        ThreadInfo {
            id: 2,
            name: "processing".into(),
        },
    ];
    let p = |thread: usize, path: &[&str], count: u64, typical: u64| PathSpec {
        thread,
        path: path.iter().map(|s| s.to_string()).collect(),
        count,
        typical,
    };
    let specs = vec![
        p(0, &["capture"], 600, 2_000_000),
        p(1, &["frame"], 600, 14_000_000),
        p(1, &["frame", "preprocess"], 600, 2_000_000),
        p(1, &["frame", "detect"], 600, 8_000_000),
        p(1, &["frame", "detect", "nms"], 600, 1_000_000),
        p(1, &["frame", "decide"], 600, 500_000),
        p(1, &["frame", HOSTILE_NAME], 12, 300_000),
    ];
    let (spans, span_totals) = build_spans(&threads, &specs, &mut rng);
    let second = 1_000_000_000u64;
    let fps: Vec<f64> = (0..100).map(|i| 58.0 + (i % 5) as f64 * 0.5).collect();
    let latency: Vec<f64> = (0..100).map(|i| 12.0 + (i % 7) as f64).collect();
    let mut odd = metric(
        "sensor | temp",
        MetricType::Custom("temperature".into()),
        "°C",
        &[41.5, f64::INFINITY, 42.0, f64::NAN],
        second,
    );
    odd.labels.insert("camera".into(), "cam-2 `left`".into());
    let timeline = (0..8u64)
        .map(|i| TimelineSpan {
            span: 1 + (i as usize % 3),
            start_ns: i * 16_666_667,
            duration_ns: 1_000_000 + i * 100_000,
        })
        .collect();
    let mut info = session("line-3 inspection", 10 * second);
    info.labels.insert("line".into(), "3".into());
    info.labels
        .insert("station".into(), "cell-7 <b>\"east\"</b>".into());
    Report {
        schema_version: SCHEMA_VERSION,
        crate_version: "0.1.0".to_string(),
        session: info,
        threads,
        spans,
        span_totals,
        metrics: vec![
            metric("fps", MetricType::Throughput, "fps", &fps, second / 10),
            metric("frame_latency", MetricType::Latency, "ms", &latency, second / 10),
            odd,
        ],
        series: vec![
            series(sn::SYSTEM_CPU_TOTAL, "%", "system", 10, second, |i| 20.0 + (i * 7 % 30) as f64),
            series(sn::SYSTEM_MEMORY_USED, "bytes", "system", 10, second, |i| 4.0e9 + i as f64 * 1.0e7),
            series(sn::SYSTEM_MEMORY_TOTAL, "bytes", "system", 10, second, |_| 16.0e9),
            series(sn::PROCESS_CPU, "%", "system", 10, second, |i| 80.0 + (i % 3) as f64 * 10.0),
            series(sn::PROCESS_MEMORY_RESIDENT, "bytes", "system", 10, second, |i| 3.0e8 + i as f64 * 1.0e6),
        ],
        notes: vec![
            Note {
                t_ns: 2 * second,
                text: "## Observations\n\nDetection is **slow** on `cam-2` (see *detect*).\n\n| a | b |\n|---|---|\n| 1 | 2 |".into(),
            },
            Note {
                t_ns: 9 * second,
                text: "<script>alert('note')</script> raw <b>html</b> must not pass".into(),
            },
        ],
        timeline,
        frames: sample_frames(&mut rng),
        capture: None,
        diagnostics: Diagnostics {
            timeline_capacity: heimdall_perf_core::limits::TIMELINE_CAPACITY as u64,
            ..Diagnostics::default()
        },
        stations: Vec::new(),
    }
}

/// A distribution of `n` durations around `typical` ns, with every `slow_every`-th one
/// `slow` times longer (0: none).
fn distribution(
    rng: &mut SplitMix,
    n: u64,
    typical: u64,
    slow_every: u64,
    slow: u64,
) -> Distribution {
    let mut d = DurationStats::new();
    for i in 0..n {
        let jitter = rng.range(0, typical / 5 + 1);
        let mut v = typical - typical / 10 + jitter;
        if slow_every > 0 && i % slow_every == slow_every - 1 {
            v *= slow;
        }
        d.record(v);
    }
    Distribution {
        summary: d.summary(),
        histogram: d.buckets(256),
    }
}

/// Two sources: `cam-0` at 60 fps with a 16.667 ms budget, 600 frames, misses blamed on
/// `detect` and on the queue before it, incidents kept whole; and a hostile-named source
/// with no budget and a dropped frame.
fn sample_frames(rng: &mut SplitMix) -> Vec<FrameReport> {
    let period = 16_666_667u64;
    let stage = |name: &str,
                 budget_ns: Option<u64>,
                 service: Distribution,
                 queue: Distribution,
                 over_budget: u64| StageReport {
        name: name.to_string(),
        budget_ns,
        service,
        queue,
        over_budget,
    };
    let at = |name: &str, thread_id: u64, start_ns: u64, duration_ns: u64, queue_ns: u64| {
        IncidentStage {
            name: name.to_string(),
            thread_id,
            thread: if thread_id == 1 {
                "camera"
            } else {
                "processing"
            }
            .to_string(),
            start_ns,
            duration_ns,
            queue_ns,
        }
    };
    let normal = |frame_id: u64| IncidentFrame {
        frame_id,
        capture_ns: frame_id * period,
        latency_ns: Some(12_400_000),
        stages: vec![
            at("preprocess", 2, 300_000, 2_000_000, 300_000),
            at("detect", 2, 2_400_000, 8_000_000, 100_000),
            at("decide", 2, 10_500_000, 500_000, 100_000),
        ],
    };
    let incident =
        |frame_id: u64, latency_ns: u64, cause: &str, stages: Vec<IncidentStage>| Incident {
            frame_id,
            capture_ns: frame_id * period,
            latency_ns,
            budget_ns: period,
            overrun_ns: latency_ns - period,
            cause: cause.to_string(),
            stages,
            previous: (frame_id - 3..frame_id).map(normal).collect(),
            system: vec![
                SystemFigure {
                    name: sn::SYSTEM_CPU_TOTAL.to_string(),
                    unit: "%".to_string(),
                    value: 47.0,
                    t_ns: frame_id * period / 1_000_000_000 * 1_000_000_000,
                },
                SystemFigure {
                    name: sn::PROCESS_MEMORY_RESIDENT.to_string(),
                    unit: "bytes".to_string(),
                    value: 3.05e8,
                    t_ns: frame_id * period / 1_000_000_000 * 1_000_000_000,
                },
            ],
        };
    let cam = FrameReport {
        source: "cam-0".to_string(),
        count: 601,
        finished: 598,
        dropped: BTreeMap::from([("queue full".to_string(), 2)]),
        in_flight: 1,
        budget_ns: Some(period),
        missed: 30,
        miss_rate: 30.0 / 598.0,
        longest_miss_streak: 2,
        latency: distribution(rng, 598, 12_400_000, 20, 2),
        jitter: distribution(rng, 600, period, 0, 1),
        stages: vec![
            stage(
                "preprocess",
                None,
                distribution(rng, 598, 2_000_000, 0, 1),
                distribution(rng, 598, 300_000, 0, 1),
                0,
            ),
            stage(
                "detect",
                Some(8_000_000),
                distribution(rng, 598, 7_500_000, 30, 3),
                distribution(rng, 598, 100_000, 60, 80),
                22,
            ),
            stage(
                "decide",
                None,
                distribution(rng, 598, 500_000, 0, 1),
                distribution(rng, 598, 100_000, 0, 1),
                0,
            ),
        ],
        attribution: vec![
            Attribution {
                cause: "detect".to_string(),
                missed: 20,
            },
            Attribution {
                cause: "queue before detect".to_string(),
                missed: 10,
            },
        ],
        incidents: vec![
            incident(
                120,
                31_000_000,
                "detect",
                vec![
                    at("preprocess", 2, 300_000, 2_000_000, 300_000),
                    at("detect", 2, 2_400_000, 28_000_000, 100_000),
                    at("decide", 2, 30_500_000, 500_000, 100_000),
                ],
            ),
            incident(
                421,
                24_100_000,
                "queue before detect",
                vec![
                    at("preprocess", 2, 300_000, 2_000_000, 300_000),
                    at("detect", 2, 15_300_000, 8_200_000, 13_000_000),
                    at("decide", 2, 23_600_000, 500_000, 100_000),
                ],
            ),
        ],
        windows: (0..10u64)
            .map(|i| FrameWindow {
                t_ns: i * 1_000_000_000,
                duration_ns: 1_000_000_000,
                finished: 60 - u64::from(i == 9) * 2,
                missed: [1, 3, 2, 0, 5, 4, 2, 6, 3, 4][i as usize],
            })
            .collect(),
    };
    let odd = FrameReport {
        source: HOSTILE_NAME.to_string(),
        count: 10,
        finished: 9,
        dropped: BTreeMap::from([(HOSTILE_NAME.to_string(), 1)]),
        in_flight: 0,
        budget_ns: None,
        missed: 0,
        miss_rate: 0.0,
        longest_miss_streak: 0,
        latency: distribution(rng, 9, 3_000_000, 0, 1),
        jitter: distribution(rng, 9, 100_000_000, 3, 2),
        stages: vec![stage(
            HOSTILE_NAME,
            None,
            distribution(rng, 9, 2_500_000, 0, 1),
            distribution(rng, 9, 50_000, 0, 1),
            0,
        )],
        attribution: Vec::new(),
        incidents: Vec::new(),
        windows: vec![FrameWindow {
            t_ns: 0,
            duration_ns: 10_000_000_000,
            finished: 9,
            missed: 0,
        }],
    };
    vec![cam, odd]
}

/// A large report: `paths` span paths over 4 threads (up to 4 levels deep), `hours` of 1 Hz
/// samples in 10 system series (downsampled as a session would), and `metrics` metrics.
/// `large_report(1000, 24, 100)` is the size the benchmarks use.
pub fn large_report(paths: usize, hours: u64, metrics: usize) -> Report {
    let mut rng = SplitMix::new(42);
    let threads: Vec<ThreadInfo> = (0..4)
        .map(|i| ThreadInfo {
            id: i + 1,
            name: format!("worker-{i}"),
        })
        .collect();
    let mut specs: Vec<PathSpec> = Vec::with_capacity(paths);
    for i in 0..paths {
        let thread = i % 4;
        let mut path = vec![format!("stage_{}", i / 4 % 10)];
        let mut k = i / 40;
        while k > 0 && path.len() < 4 {
            path.push(format!("step_{}", k % 10));
            k /= 10;
        }
        path.push(format!("op_{i}"));
        specs.push(PathSpec {
            thread,
            path,
            count: 20 + (i as u64 % 50),
            typical: 10_000 + i as u64 * 1_000,
        });
    }
    let (spans, span_totals) = build_spans(&threads, &specs, &mut rng);
    let second = 1_000_000_000u64;
    let samples = hours * 3600;
    let names = [
        (sn::SYSTEM_CPU_TOTAL, "%"),
        ("system.cpu.core.0", "%"),
        ("system.cpu.core.1", "%"),
        (sn::SYSTEM_MEMORY_USED, "bytes"),
        (sn::SYSTEM_MEMORY_AVAILABLE, "bytes"),
        (sn::SYSTEM_LOAD_1, "tasks"),
        (sn::PROCESS_CPU, "%"),
        (sn::PROCESS_MEMORY_RESIDENT, "bytes"),
        (sn::PROCESS_THREADS, "threads"),
        (sn::PROCESS_DISK_WRITE, "bytes/s"),
    ];
    let series_list = names
        .iter()
        .enumerate()
        .map(|(k, (n, u))| {
            series(n, u, "system", samples, second, |i| {
                ((i * (k as u64 + 3)) % 100) as f64
            })
        })
        .collect();
    let metric_list = (0..metrics)
        .map(|m| {
            let values: Vec<f64> = (0..2000)
                .map(|i| ((i * (m + 1)) % 997) as f64 / 10.0)
                .collect();
            metric(
                &format!("metric_{m}"),
                MetricType::Gauge,
                "units",
                &values,
                second,
            )
        })
        .collect();
    let span_count = spans.len();
    Report {
        schema_version: SCHEMA_VERSION,
        crate_version: "0.1.0".to_string(),
        session: session("large", samples * second),
        threads,
        spans,
        span_totals,
        metrics: metric_list,
        series: series_list,
        notes: vec![Note {
            t_ns: 0,
            text: "Large fixture.".into(),
        }],
        timeline: (0..heimdall_perf_core::limits::TIMELINE_CAPACITY as u64)
            .map(|i| TimelineSpan {
                span: i as usize % span_count.max(1),
                start_ns: i * 1_000_000,
                duration_ns: 500_000,
            })
            .collect(),
        frames: Vec::new(),
        capture: None,
        diagnostics: Diagnostics {
            timeline_capacity: heimdall_perf_core::limits::TIMELINE_CAPACITY as u64,
            ..Diagnostics::default()
        },
        stations: Vec::new(),
    }
}

/// A writer whose every write and flush fails with `disk full`
/// ([`std::io::ErrorKind::StorageFull`]), for testing that sinks report write errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct FullDisk;

impl std::io::Write for FullDisk {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "disk full",
        ))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "disk full",
        ))
    }
}

/// Compares `actual` with the golden file at `path`, for the golden tests of sinks: `Ok`
/// when they are equal byte for byte. With the environment variable `UPDATE_GOLDEN=1` the
/// file is (re)written instead. The error tells where the first difference is and how to
/// regenerate the file (`regenerate` is the command to give).
pub fn check_golden(path: &std::path::Path, actual: &str, regenerate: &str) -> Result<(), String> {
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        return std::fs::write(path, actual)
            .map_err(|e| format!("cannot write {}: {e}", path.display()));
    }
    let expected = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e}; create it with UPDATE_GOLDEN=1 {regenerate}",
            path.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    Err(format!(
        "the output differs from {}\n{}\nIf the change is intended, regenerate with UPDATE_GOLDEN=1 {regenerate} and review the diff.",
        path.display(),
        diff_hint(&expected, actual)
    ))
}

/// The first differing line of `expected` and `actual`, with a little context.
pub fn diff_hint(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let show = |lines: &[&str]| -> String {
        lines
            .iter()
            .enumerate()
            .skip(first.saturating_sub(2))
            .take(5)
            .map(|(i, l)| format!("{:>6} | {l}\n", i + 1))
            .collect()
    };
    format!(
        "first difference at line {} (golden has {} lines, output has {}):\n--- golden\n{}+++ output\n{}",
        first + 1,
        e.len(),
        a.len(),
        show(&e),
        show(&a)
    )
}

/// `unix_ns` as RFC 3339 UTC with whole seconds, as perf-core writes session start times.
fn rfc3339(unix_ns: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(unix_ns);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A merged report of two stations (`heimdall-perf merge`): the sample run as station
/// `east`, and as a station named [`HOSTILE_NAME`] an hour later, with a hostile label and
/// without the `frame › detect` spans (so tables show a station lacking a path).
pub fn fleet_report() -> Report {
    let east = sample_report();
    let mut odd = sample_report();
    odd.session.start_unix_ns += 3_600_000_000_000;
    odd.session.started_at = rfc3339(odd.session.start_unix_ns);
    odd.session
        .labels
        .insert("station".into(), HOSTILE_NAME.into());
    odd.spans
        .retain(|s| !s.path.starts_with(&["frame".into(), "detect".into()]));
    odd.span_totals
        .retain(|s| !s.path.starts_with(&["frame".into(), "detect".into()]));
    odd.timeline.clear();
    heimdall_perf_core::merge_reports([("east", east), (HOSTILE_NAME, odd)])
        .expect("the sample runs merge")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_hint_points_at_the_first_changed_line() {
        let hint = diff_hint("a\nb\nc\n", "a\nB\nc\n");
        assert!(
            hint.starts_with("first difference at line 2 (golden has 3 lines, output has 3)"),
            "{hint}"
        );
        assert!(
            hint.contains("     2 | b") && hint.contains("     2 | B"),
            "{hint}"
        );
        let hint = diff_hint("a\n", "a\nextra\n");
        assert!(
            hint.starts_with("first difference at line 2 (golden has 1 lines, output has 2)"),
            "{hint}"
        );
    }

    #[test]
    fn check_golden_accepts_equal_and_names_the_file_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.txt");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        assert!(check_golden(&path, "one\ntwo\n", "cargo test").is_ok());
        let e = check_golden(&path, "one\nTWO\n", "cargo test").unwrap_err();
        assert!(e.contains("g.txt") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn fixtures_are_deterministic_and_consistent() {
        // Debug text, since NaN != NaN.
        assert_eq!(
            format!("{:?}", sample_report()),
            format!("{:?}", sample_report())
        );
        let r = sample_report();
        let frame = r.span_total(&["frame"]).unwrap();
        let children: u64 = r
            .span_totals
            .iter()
            .filter(|s| s.path.len() == 2 && s.path[0] == "frame")
            .map(|s| s.total_ns)
            .sum();
        assert_eq!(frame.self_ns, frame.total_ns.saturating_sub(children));
        let big = large_report(1000, 24, 100);
        assert_eq!(big.spans.len(), 1000);
        assert_eq!(big.metrics.len(), 100);
        assert!(big
            .series
            .iter()
            .all(|s| s.points.len() <= heimdall_perf_core::limits::SERIES_CAPACITY));
    }
}
