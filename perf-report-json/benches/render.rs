//! Rendering `fixtures::large_report(1000, 24, 100)` to JSON (pretty and compact) and reading
//! it back, with plain serde_json on the same report as the baseline in the same run.
//!
//! `CARGO_TARGET_DIR=/work/target-jsonmd cargo bench -p heimdall-perf-report-json --bench render`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use heimdall_perf_core::{Report, ReportSink};
use heimdall_perf_report_json::{from_slice, JsonSink};
use heimdall_perf_testkit as fixtures;

fn bench(c: &mut Criterion) {
    let report = fixtures::large_report(1000, 24, 100);
    let pretty = {
        let mut v = Vec::new();
        JsonSink::new()
            .render(&report, &mut v)
            .expect("render pretty");
        v
    };
    let compact = {
        let mut v = Vec::new();
        JsonSink::new()
            .with_pretty(false)
            .render(&report, &mut v)
            .expect("render compact");
        v
    };
    eprintln!(
        "large_report(1000, 24, 100): pretty {} bytes, compact {} bytes",
        pretty.len(),
        compact.len()
    );

    let mut g = c.benchmark_group("json_large");
    g.sample_size(20);

    g.throughput(Throughput::Bytes(compact.len() as u64));
    g.bench_function("baseline_serde_json_to_vec", |b| {
        b.iter(|| serde_json::to_vec(black_box(&report)).expect("serialise"))
    });
    g.bench_function("render_compact", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            JsonSink::new()
                .with_pretty(false)
                .render(black_box(&report), &mut out)
                .expect("render");
            out
        })
    });
    g.bench_function("baseline_serde_json_from_slice_compact", |b| {
        b.iter(|| serde_json::from_slice::<Report>(black_box(&compact)).expect("parse"))
    });
    g.bench_function("read_compact", |b| {
        b.iter(|| from_slice(black_box(&compact)).expect("read"))
    });

    g.throughput(Throughput::Bytes(pretty.len() as u64));
    g.bench_function("baseline_serde_json_to_vec_pretty", |b| {
        b.iter(|| serde_json::to_vec_pretty(black_box(&report)).expect("serialise"))
    });
    g.bench_function("render_pretty", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            JsonSink::new()
                .render(black_box(&report), &mut out)
                .expect("render");
            out
        })
    });
    g.bench_function("read_pretty", |b| {
        b.iter(|| from_slice(black_box(&pretty)).expect("read"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
