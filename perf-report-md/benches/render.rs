//! Rendering `fixtures::large_report(1000, 24, 100)` to Markdown, with two baselines in the
//! same run: copying the same bytes into a fresh `Vec` (the output floor), and a naive span
//! table built with `format!` (no escaping, raw nanoseconds, no other section).
//!
//! `CARGO_TARGET_DIR=/work/target-jsonmd cargo bench -p heimdall-perf-report-md --bench render`

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use heimdall_perf_core::{Report, ReportSink};
use heimdall_perf_report_md::MarkdownSink;
use heimdall_perf_testkit as fixtures;

fn naive_span_table(r: &Report) -> String {
    let mut s = String::from("| Path | Count | Total | Self | Mean | p50 | p95 | p99 | Max |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for t in &r.span_totals {
        let d = &t.duration;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            t.path.join(";"),
            t.count,
            t.total_ns,
            t.self_ns,
            d.mean,
            d.p50,
            d.p95,
            d.p99,
            d.max
        );
    }
    s
}

fn bench(c: &mut Criterion) {
    let report = fixtures::large_report(1000, 24, 100);
    let rendered = MarkdownSink::new()
        .render_to_string(&report)
        .expect("render")
        .into_bytes();
    eprintln!(
        "large_report(1000, 24, 100): Markdown {} bytes, naive span table {} bytes",
        rendered.len(),
        naive_span_table(&report).len()
    );
    let mut g = c.benchmark_group("markdown_large");
    g.sample_size(50);
    g.throughput(Throughput::Bytes(rendered.len() as u64));
    g.bench_function("render", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            MarkdownSink::new()
                .render(black_box(&report), &mut out)
                .expect("render");
            out
        })
    });
    g.bench_function("baseline_naive_span_table_format", |b| {
        b.iter(|| naive_span_table(black_box(&report)))
    });
    g.bench_function("baseline_copy_same_bytes_to_vec", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            out.write_all(black_box(&rendered)).expect("write to Vec");
            out
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
