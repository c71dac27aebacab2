//! Schema versions: a report of schema 1 (written before frames and session labels, kept
//! as `tests/fixtures/schema-1.json`, the golden file of that time) still reads back, with
//! empty `labels` and `frames`; a report of a schema newer than this build's is refused
//! with a message naming both versions; frames and labels round-trip exactly. A report of
//! schema 2 (before merged reports; `tests/fixtures/schema-2.json`) reads with no stations,
//! and a merged report (schema 3) round-trips with its stations.

use std::path::PathBuf;

use heimdall_perf_core::{Report, ReportSink, SCHEMA_VERSION};
use heimdall_perf_report_json::{from_slice, read_report, JsonError, JsonSink};
use heimdall_perf_testkit as fixtures;

fn schema_1_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-1.json")
}

#[test]
fn a_schema_1_report_reads_with_empty_labels_and_frames() {
    let text = std::fs::read_to_string(schema_1_path()).unwrap();
    // The fixture really is a schema-1 file: no field of schema 2 anywhere in it.
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(raw["schema_version"], 1);
    assert!(raw.get("frames").is_none());
    assert!(raw["session"].get("labels").is_none());

    let report = read_report(schema_1_path()).expect("a schema-1 report reads");
    assert_eq!(report.schema_version, 1);
    assert!(report.session.labels.is_empty());
    assert!(report.frames.is_empty());
    // Everything else is there: it is the sample report of that time.
    let sample = fixtures::sample_report();
    assert_eq!(report.session.name, sample.session.name);
    assert_eq!(report.threads, sample.threads);
    assert_eq!(report.spans, sample.spans);
    assert_eq!(report.span_totals, sample.span_totals);
    assert_eq!(report.notes, sample.notes);
    assert_eq!(report.timeline, sample.timeline);
    assert_eq!(report.series, sample.series);
    assert_eq!(report.metrics.len(), sample.metrics.len());
    assert_eq!(report.diagnostics, sample.diagnostics);

    // Written again it is a schema-2 layout holding the same data (the version field is
    // the report's own: it says what the data was recorded with).
    let again = JsonSink::new().render_to_string(&report).unwrap();
    let back = from_slice(again.as_bytes()).unwrap();
    assert_eq!(format!("{back:?}"), format!("{report:?}"));
}

#[test]
fn a_schema_4_report_is_refused_naming_both_versions() {
    assert_eq!(SCHEMA_VERSION, 3, "update this test with the schema");
    // The sample report, as a future heimdall-perf might write it: same layout, version 4,
    // and a field this build does not know.
    let mut r = fixtures::sample_report();
    r.schema_version = 4;
    let json = JsonSink::new().render_to_string(&r).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["frames"][0]["stages"][0]["gpu_ns"] = serde_json::json!({"unknown": true});
    v["frames"][0]["latency"] = serde_json::json!("a shape this build cannot read");
    for bytes in [json.into_bytes(), serde_json::to_vec(&v).unwrap()] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("from-the-future.json");
        std::fs::write(&path, &bytes).unwrap();
        let e = read_report(&path).unwrap_err();
        assert!(
            matches!(
                e,
                JsonError::NewerSchema {
                    found: 4,
                    supported: 3,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("from-the-future.json")
                && msg.contains("schema 4, this build reads up to 3"),
            "{msg}"
        );
    }
}

#[test]
fn a_schema_2_report_reads_with_no_stations() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-2.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(raw["schema_version"], 2);
    assert!(raw.get("stations").is_none());
    let report = read_report(&path).expect("a schema-2 report reads");
    assert_eq!(report.schema_version, 2);
    assert!(report.stations.is_empty());
    // It is the sample report of that time: everything but the version is today's sample.
    let mut sample = fixtures::sample_report();
    sample.schema_version = 2;
    assert_eq!(format!("{report:?}"), format!("{sample:?}"));
}

#[test]
fn a_merged_report_round_trips_with_its_stations() {
    let mut west = fixtures::sample_report();
    west.session.start_unix_ns += 5_000_000_000;
    let fleet =
        heimdall_perf_core::merge_reports([("east", fixtures::sample_report()), ("west", west)])
            .unwrap();
    assert_eq!(fleet.stations.len(), 2);
    for sink in [JsonSink::new(), JsonSink::new().with_pretty(false)] {
        let json = sink.render_to_string(&fleet).unwrap();
        let back = from_slice(json.as_bytes()).unwrap();
        // NaN != NaN (a metric of the sample holds one): compare the text forms.
        assert_eq!(format!("{back:?}"), format!("{fleet:?}"));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["stations"][1]["name"], "west");
        assert_eq!(v["stations"][0]["spans"][0]["path"][0], "frame");
    }
    // A single run writes no `stations` at all.
    let json = JsonSink::new()
        .render_to_string(&fixtures::sample_report())
        .unwrap();
    assert!(!json.contains("\"stations\""));
}

#[test]
fn frames_and_labels_round_trip_exactly() {
    let original = fixtures::sample_report();
    assert!(!original.frames.is_empty() && !original.session.labels.is_empty());
    for sink in [JsonSink::new(), JsonSink::new().with_pretty(false)] {
        let json = sink.render_to_string(&original).unwrap();
        let back = from_slice(json.as_bytes()).unwrap();
        assert_eq!(back.session.labels, original.session.labels);
        assert_eq!(back.frames, original.frames);
        assert_eq!(back.schema_version, SCHEMA_VERSION);

        // What the file holds, read as plain JSON.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["schema_version"], SCHEMA_VERSION);
        assert_eq!(v["session"]["labels"]["line"], "3");
        assert_eq!(
            v["session"]["labels"]["station"],
            original.session.labels["station"].as_str()
        );
        let cam = &v["frames"][0];
        let want = original.frame_source("cam-0").unwrap();
        assert_eq!(cam["source"], "cam-0");
        assert_eq!(cam["budget_ns"], want.budget_ns.unwrap());
        assert_eq!(cam["missed"], want.missed);
        assert_eq!(
            cam["attribution"][0]["cause"],
            want.attribution[0].cause.as_str()
        );
        assert_eq!(
            cam["incidents"].as_array().unwrap().len(),
            want.incidents.len()
        );
        // The source without a budget writes `null`, the hostile drop reason is a key.
        let odd = &v["frames"][1];
        assert_eq!(odd["source"], fixtures::HOSTILE_NAME);
        assert!(odd["budget_ns"].is_null());
        assert_eq!(odd["dropped"][fixtures::HOSTILE_NAME], 1);
    }
}

#[test]
fn a_non_finite_miss_rate_and_empty_frames_round_trip() {
    let mut r = Report::empty("odd frames");
    let mut f = fixtures::sample_report().frames.remove(0);
    for miss_rate in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
        f.miss_rate = miss_rate;
        f.incidents[0].system[0].value = miss_rate;
        r.frames = vec![f.clone()];
        let json = JsonSink::new().render_to_string(&r).unwrap();
        let back = from_slice(json.as_bytes()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{r:?}"));
        assert_eq!(back.frames[0].miss_rate.to_bits(), miss_rate.to_bits());
    }
    // An empty `frames` array and no labels are written as such and read back.
    let r = Report::empty("no frames");
    let json = JsonSink::new().render_to_string(&r).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["frames"], serde_json::json!([]));
    assert!(v["session"].get("labels").is_none());
    assert_eq!(from_slice(json.as_bytes()).unwrap(), r);
}
