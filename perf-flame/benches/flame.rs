//! Folding and drawing a span tree of 10,000 distinct paths, against inferno's own
//! `from_lines` on the same pre-folded lines (what the `inferno-flamegraph` binary does).
//!
//! `CARGO_TARGET_DIR=/work/target-flame cargo bench -p heimdall-perf-flame --bench flame`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use heimdall_perf_core::ReportSink;
use heimdall_perf_flame::{fold, FlameOptions, FlamegraphSink};
use heimdall_perf_testkit::large_report;

fn flame(c: &mut Criterion) {
    let report = large_report(10_000, 1, 0);
    let opts = FlameOptions::default();
    let folded = fold(&report, &opts);
    assert_eq!(folded.len(), 10_000);
    let lines: Vec<String> = folded.iter().map(|l| l.as_str().to_string()).collect();
    let mut buf: Vec<u8> = Vec::with_capacity(16 << 20);

    let mut g = c.benchmark_group("flame_10k_paths");
    g.sample_size(30);
    g.bench_function("fold", |b| {
        b.iter(|| black_box(fold(black_box(&report), &opts)))
    });
    let sink = FlamegraphSink::new();
    // Named `render_svg` when BENCH.md was measured; the same work.
    g.bench_function("render_svg (fold + draw)", |b| {
        b.iter(|| {
            buf.clear();
            sink.render(black_box(&report), &mut buf).unwrap();
            black_box(buf.len())
        })
    });
    g.bench_function("inferno from_lines (pre-folded, default options)", |b| {
        b.iter(|| {
            buf.clear();
            let mut o = inferno::flamegraph::Options::default();
            inferno::flamegraph::from_lines(
                &mut o,
                black_box(&lines).iter().map(String::as_str),
                &mut buf,
            )
            .unwrap();
            black_box(buf.len())
        })
    });
    g.finish();
}

criterion_group!(benches, flame);
criterion_main!(benches);
