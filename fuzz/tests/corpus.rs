//! The report reader's fuzz harness, briefly, as CI runs it: every corpus file, then a few
//! thousand mutants, none panicking.

use std::time::Duration;

use heimdall_perf_core::ReportSink;
use heimdall_perf_fuzz::report_reader::{check_caught, corpus_dir, load_corpus, run, Outcome};
use heimdall_perf_testkit as fixtures;

#[test]
fn every_corpus_file_reads_or_is_refused_as_its_name_says() {
    let files = load_corpus(&corpus_dir()).unwrap();
    assert!(files.len() >= 8, "{} files", files.len());
    for (name, bytes) in &files {
        let outcome = check_caught(bytes);
        // Seeds named `bad-*` are refused, the others read (and round-trip).
        let expected = if name.starts_with("bad-") {
            Outcome::Rejected
        } else {
            Outcome::Parsed
        };
        assert_eq!(outcome, expected, "{name}");
    }
}

#[test]
fn a_few_thousand_mutants_do_not_panic() {
    let inputs: Vec<Vec<u8>> = load_corpus(&corpus_dir())
        .unwrap()
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let stats = run(&inputs, 7, Duration::from_secs(60), 3000, dir.path());
    assert_eq!(stats.panicked, 0, "{stats:?}");
    assert_eq!(stats.iterations, 3000);
    // The mutants reach both sides: some still read, most are refused.
    assert!(stats.parsed > inputs.len() as u64, "{stats:?}");
    assert!(stats.rejected > 1000, "{stats:?}");
}

#[test]
fn a_report_with_every_edge_round_trips_through_the_check() {
    assert_eq!(
        check_caught(fixtures::sample_report().session.name.as_bytes()),
        Outcome::Rejected
    );
    let json = heimdall_perf_report_json::JsonSink::new()
        .render_to_string(&fixtures::sample_report())
        .unwrap();
    assert_eq!(check_caught(json.as_bytes()), Outcome::Parsed);
}

/// A small report holding one of everything, with the edge values the reader must keep.
fn small_report() -> heimdall_perf_core::Report {
    let mut r = fixtures::sample_report();
    r.spans.truncate(3);
    r.span_totals.truncate(2);
    r.metrics.truncate(2);
    r.series.truncate(2);
    for s in &mut r.series {
        s.points.truncate(3);
    }
    for m in &mut r.metrics {
        m.points.truncate(3);
    }
    r.timeline.retain(|t| t.span < 3);
    r.timeline.truncate(3);
    r
}

/// Rewrites the generated seeds of `fuzz/corpus/report_reader/` (the hand-made ones are
/// kept): `cargo test -p heimdall-perf-fuzz --test corpus -- --ignored write_seeds`.
#[test]
#[ignore = "writes the corpus; run by hand"]
fn write_seeds() {
    use heimdall_perf_report_json::JsonSink;
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let json = |r: &heimdall_perf_core::Report, pretty: bool| {
        let mut out = Vec::new();
        let sink = JsonSink::new().with_pretty(pretty);
        sink.render(r, &mut out).unwrap();
        out
    };
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();

    let small = small_report();
    write(
        "empty-report.json",
        &json(&heimdall_perf_core::Report::empty("empty"), true),
    );
    write("small-report.json", &json(&small, true));
    write("small-report-compact.json", &json(&small, false));
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(json(&small, false));
    write("bom-small-report.json", &bom);

    let mut edge = small.clone();
    edge.session.name = "\0\u{1}\u{7f}\u{85}\u{FFFF}\u{10FFFF} é 名前 🚀 <script>".into();
    edge.session.host = String::new();
    edge.session.duration_ns = u64::MAX;
    edge.spans[0].count = u64::MAX;
    edge.spans[0].total_ns = u64::MAX;
    edge.spans[0].path = vec![String::new(), "x".repeat(300)];
    edge.spans[0].duration.mean = f64::NAN;
    edge.spans[0].duration.max = f64::INFINITY;
    edge.spans[0].duration.min = f64::NEG_INFINITY;
    edge.spans[1].duration.mean = -0.0;
    edge.spans[1].duration.p50 = f64::MIN_POSITIVE;
    edge.spans[1].duration.p99 = f64::MAX;
    edge.threads
        .extend((0..50).map(|i| heimdall_perf_core::ThreadInfo {
            id: u64::MAX - i,
            name: format!("worker-{i}"),
        }));
    edge.notes.clear();
    edge.metrics[0].labels.insert(String::new(), "\n".into());
    write("edge-values.json", &json(&edge, true));

    let text = String::from_utf8(json(&small, true)).unwrap();
    write("bad-empty.json", b"");
    write("bad-empty-object.json", b"{}");
    write(
        "bad-newer-schema.json",
        br#"{"schema_version": 99, "spans": "later"}"#,
    );
    write("bad-truncated.json", &text.as_bytes()[..text.len() / 2]);
    let mut deep = br#"{"schema_version":1,"crate_version":"#.to_vec();
    deep.extend(std::iter::repeat_n(b'[', 5000));
    deep.extend(std::iter::repeat_n(b']', 5000));
    deep.push(b'}');
    write("bad-deep-nesting.json", &deep);
    write(
        "bad-huge-count.json",
        text.replacen("\"count\": ", "\"count\": 99999999999999999999", 1)
            .as_bytes(),
    );
    write("bad-utf16.json", b"\xFF\xFE{\x00}\x00");
}
