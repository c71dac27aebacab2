//! Rendering cost of the HTML sink, with serde_json on the same report as the baseline
//! measured in the same run.
//!
//! `cargo bench -p heimdall-perf-report-html --bench render`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use heimdall_perf_core::ReportSink;
use heimdall_perf_report_html::HtmlSink;
use heimdall_perf_testkit::{large_report, sample_report};

fn render(c: &mut Criterion) {
    let large = large_report(1000, 24, 100);
    let sample = sample_report();
    let sink = HtmlSink::new();
    let size = |r| {
        let mut out = Vec::new();
        sink.render(r, &mut out).map(|()| out.len()).unwrap_or(0)
    };
    eprintln!(
        "HTML size: large_report(1000, 24, 100) = {} bytes, sample_report() = {} bytes",
        size(&large),
        size(&sample)
    );

    let mut group = c.benchmark_group("large_report(1000,24,100)");
    group.sample_size(20);
    group.bench_function("html", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(2 << 20);
            sink.render(black_box(&large), &mut out).unwrap();
            out
        })
    });
    group.bench_function("serde_json (baseline)", |b| {
        b.iter(|| serde_json::to_vec(black_box(&large)).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("sample_report");
    group.bench_function("html", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            sink.render(black_box(&sample), &mut out).unwrap();
            out
        })
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
