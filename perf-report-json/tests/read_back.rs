//! Reading saved reports back: lossless round trips (NaN and infinities included) and clear
//! errors — naming the file, line and column — for newer schemas, truncated files and wrong
//! types.

use std::io::Write;

use heimdall_perf_core::{stats::Summary, Report, ReportSink};
use heimdall_perf_core::{SeriesPoint, TimeSeries, SCHEMA_VERSION};
use heimdall_perf_report_json::{
    from_reader, from_slice, from_slice_named, read_report, JsonError, JsonSink,
};
use heimdall_perf_testkit as fixtures;

/// Debug text: equal for equal reports, NaN included (NaN != NaN as a value).
fn text(r: &Report) -> String {
    format!("{r:?}")
}

fn render(sink: JsonSink, r: &Report) -> Vec<u8> {
    let mut out = Vec::new();
    sink.render(r, &mut out).expect("render");
    out
}

/// `r` as pretty JSON text.
fn to_string(r: &Report) -> String {
    JsonSink::new().render_to_string(r).expect("render")
}

/// 1-based line and column of the first occurrence of `needle` in `text`.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).expect("needle present");
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[test]
fn sample_report_round_trips_pretty_and_compact() {
    let original = fixtures::sample_report();
    for sink in [JsonSink::new(), JsonSink::new().with_pretty(false)] {
        let bytes = render(sink, &original);
        let back = from_slice(&bytes).expect("reads back");
        assert_eq!(text(&back), text(&original), "pretty: {}", sink.is_pretty());
        // Rendering the re-read report gives the same bytes again.
        assert_eq!(render(sink, &back), bytes);
    }
}

#[test]
fn non_finite_values_survive_the_round_trip() {
    let original = fixtures::sample_report();
    let json = to_string(&original);
    // The sample's `sensor | temp` metric saw 41.5, inf, 42.0, NaN.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let odd = &value["metrics"][2];
    assert_eq!(odd["name"], "sensor | temp");
    assert_eq!(odd["last"], "NaN");
    assert_eq!(odd["non_finite"], 2);
    let point_maxes: Vec<&serde_json::Value> = odd["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["max"])
        .collect();
    assert!(
        point_maxes.contains(&&serde_json::Value::from("inf")),
        "{point_maxes:?}"
    );

    let back = from_slice(json.as_bytes()).unwrap();
    let m = back.metric("sensor | temp").unwrap();
    assert!(m.last.is_nan());
    assert!(m.points.iter().any(|p| p.max == f64::INFINITY));
    assert!(m.points.iter().any(|p| p.mean.is_nan()));

    // Non-finite statistics (a report built by hand, or by a future sampler).
    let mut r = Report::empty("non-finite");
    r.metrics = original.metrics.clone();
    r.metrics[0].summary = Summary {
        count: 3,
        sum: f64::INFINITY,
        min: f64::NEG_INFINITY,
        max: f64::INFINITY,
        mean: f64::NAN,
        stddev: f64::NAN,
        p50: -0.0,
        p90: f64::MIN_POSITIVE,
        p95: f64::MAX,
        p99: 0.1 + 0.2,
        p999: 1e-300,
    };
    r.series.push(TimeSeries {
        name: "user.queue".into(),
        unit: "frames".into(),
        source: "camera".into(),
        points: vec![SeriesPoint {
            t_ns: u64::MAX,
            count: 1,
            min: f64::NEG_INFINITY,
            max: f64::NAN,
            mean: 2.5,
            last: f64::INFINITY,
        }],
    });
    for sink in [JsonSink::new(), JsonSink::new().with_pretty(false)] {
        let back = from_slice(&render(sink, &r)).unwrap();
        assert_eq!(text(&back), text(&r));
        let s = &back.metrics[0].summary;
        assert_eq!(s.p50.to_bits(), (-0.0f64).to_bits());
        assert_eq!(s.p99, 0.1 + 0.2);
        assert_eq!(s.p95, f64::MAX);
    }
}

#[test]
fn a_larger_report_round_trips() {
    let original = fixtures::large_report(60, 1, 8);
    let back = from_slice(&render(JsonSink::new().with_pretty(false), &original)).unwrap();
    assert_eq!(text(&back), text(&original));
}

#[test]
fn read_report_from_file_and_from_reader() {
    let original = fixtures::sample_report();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("line-3.json");
    let mut file = std::fs::File::create(&path).unwrap();
    JsonSink::new().render(&original, &mut file).unwrap();
    file.flush().unwrap();
    drop(file);
    assert_eq!(text(&read_report(&path).unwrap()), text(&original));
    let file = std::fs::File::open(&path).unwrap();
    assert_eq!(text(&from_reader(file).unwrap()), text(&original));
}

#[test]
fn missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.json");
    let e = read_report(&path).unwrap_err();
    assert!(matches!(e, JsonError::Io { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("nowhere.json") && msg.contains("cannot read"),
        "{msg}"
    );
}

#[test]
fn newer_schema_is_refused_before_any_field_complaint() {
    let newer = SCHEMA_VERSION + 1;
    // A future layout that has nothing in common with this one.
    let future = format!(r#"{{"schema_version": {newer}, "sessions": [{{"id": 1}}]}}"#);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.json");
    std::fs::write(&path, &future).unwrap();
    let e = read_report(&path).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, JsonError::NewerSchema { found, .. } if found == u64::from(newer)),
        "{e:?}"
    );
    assert!(msg.contains("future.json"), "{msg}");
    assert!(
        msg.contains(&format!(
            "written by a newer heimdall-perf (schema {newer}, this build reads up to {SCHEMA_VERSION})"
        )),
        "{msg}"
    );

    // A newer report whose layout happens to parse is refused too.
    let mut r = fixtures::sample_report();
    r.schema_version = newer;
    let e = from_slice(&render(JsonSink::new().with_pretty(false), &r)).unwrap_err();
    assert!(matches!(e, JsonError::NewerSchema { .. }), "{e:?}");
    assert!(e.to_string().contains("<JSON bytes>"), "{e}");

    // A huge version number is not an overflow.
    let e = from_slice(br#"{"schema_version": 18446744073709551615}"#).unwrap_err();
    assert!(e.to_string().contains("schema 18446744073709551615"), "{e}");

    // Older and current versions read.
    let mut r = fixtures::sample_report();
    r.schema_version = 0;
    assert_eq!(
        from_slice(&render(JsonSink::new().with_pretty(false), &r))
            .unwrap()
            .schema_version,
        0
    );
}

#[test]
fn truncated_file_names_file_line_and_column() {
    let json = to_string(&fixtures::sample_report());
    let cut = json.len() / 2;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crashed.json");
    std::fs::write(&path, &json.as_bytes()[..cut]).unwrap();
    let e = read_report(&path).unwrap_err();
    let (line, column) = match &e {
        JsonError::Truncated { line, column, .. } => (*line, *column),
        other => panic!("expected Truncated, got {other:?}"),
    };
    let prefix = &json[..cut];
    assert_eq!(line, prefix.matches('\n').count() + 1);
    assert!(column >= 1);
    let msg = e.to_string();
    assert!(
        msg.contains("crashed.json")
            && msg.contains("truncated")
            && msg.contains(&format!("line {line}, column {column}")),
        "{msg}"
    );
}

#[test]
fn every_prefix_and_corruption_is_an_error_not_a_panic() {
    let json = render(
        JsonSink::new().with_pretty(false),
        &fixtures::sample_report(),
    );
    for cut in (0..json.len()).step_by(53) {
        let e = from_slice_named(&json[..cut], "cut.json").unwrap_err();
        assert!(e.to_string().contains("cut.json"), "{e}");
        assert!(
            matches!(
                e,
                JsonError::Truncated { .. } | JsonError::Syntax { .. } | JsonError::Layout { .. }
            ),
            "{e:?}"
        );
    }
    // Deterministic byte flips: anything may come back, but never a panic.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..300 {
        let mut bytes = json.clone();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % bytes.len() as u64) as usize;
            bytes[i] = (x >> 32) as u8;
        }
        let _ = from_slice(&bytes);
    }
}

#[test]
fn wrong_types_name_the_line_and_column() {
    let json = to_string(&fixtures::sample_report());
    // The first span's count becomes a string.
    let needle = "\"count\": 600,";
    let (line, _) = position_of(&json, needle);
    let bad = json.replacen(needle, "\"count\": \"600\",", 1);
    let e = from_slice_named(bad.as_bytes(), "typed.json").unwrap_err();
    match &e {
        JsonError::Layout {
            line: l, message, ..
        } => {
            assert_eq!(*l, line, "{e}");
            assert!(
                message.contains("invalid type: string \"600\""),
                "{message}"
            );
        }
        other => panic!("expected Layout, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("typed.json") && msg.contains(&format!("line {line}")),
        "{msg}"
    );

    // A missing field, a wrong top-level value, a wrong version type.
    let e = from_slice(br#"{"schema_version": 1}"#).unwrap_err();
    assert!(
        e.to_string().contains("missing field `crate_version`"),
        "{e}"
    );
    let e = from_slice(b"[1, 2, 3]").unwrap_err();
    assert!(matches!(e, JsonError::Layout { .. }), "{e:?}");
    let e = from_slice(br#"{"schema_version": "2"}"#).unwrap_err();
    assert!(matches!(e, JsonError::Layout { .. }), "{e:?}");
    // A bad non-finite spelling.
    let bad = json.replacen("\"NaN\"", "\"not a number\"", 1);
    let e = from_slice(bad.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("not a number"), "{e}");
}

#[test]
fn not_json_is_a_syntax_error() {
    for (input, want_truncated) in [
        (&b""[..], true),
        (b"   \n", true),
        (b"hello", false),
        (b"{\"a\" 1}", false),
    ] {
        let e = from_slice(input).unwrap_err();
        match e {
            JsonError::Truncated { .. } => assert!(want_truncated, "{input:?}: {e}"),
            JsonError::Syntax { line: 1, .. } => assert!(!want_truncated, "{input:?}: {e}"),
            other => panic!("{input:?}: unexpected {other:?}"),
        }
    }
    // A whole report followed by garbage.
    let mut bytes = render(
        JsonSink::new().with_pretty(false),
        &fixtures::sample_report(),
    );
    bytes.extend_from_slice(b"\n}garbage");
    let e = from_slice(&bytes).unwrap_err();
    assert!(
        matches!(
            e,
            JsonError::Syntax {
                line: 2,
                column: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("trailing characters"), "{e}");
    // Nesting deep enough to overflow a naive parser's stack.
    let deep = "[".repeat(100_000);
    assert!(from_slice(deep.as_bytes()).is_err());
}

/// The sample report as pretty JSON text with its `spans[index]` replaced by `element`.
fn with_span_element(index: usize, element: serde_json::Value) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&to_string(&fixtures::sample_report())).unwrap();
    v["spans"][index] = element;
    serde_json::to_string_pretty(&v).unwrap()
}

#[test]
fn valid_json_of_the_wrong_shape_names_the_field_path() {
    // An array where a span (a struct) is expected: serde_json reads arrays as structs field
    // by field and called the element left over "trailing characters" of invalid JSON.
    let s = &fixtures::sample_report().spans[3];
    let as_array = serde_json::json!([
        s.thread_id,
        s.thread,
        s.path,
        s.count,
        s.total_ns,
        s.self_ns,
        serde_json::to_value(&s.duration).unwrap(),
        serde_json::to_value(&s.histogram).unwrap(),
        "one too many"
    ]);
    let json = with_span_element(3, as_array);
    let e = from_slice_named(json.as_bytes(), "run.json").unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, JsonError::Layout { .. }), "{e:?}");
    assert!(!text.contains("not valid JSON"), "{text}");
    assert!(
        text.contains("run.json") && text.contains("`spans[3]"),
        "{text}"
    );
    assert!(text.contains("line ") && text.contains("column "), "{text}");

    // A field of the wrong type: the full path, the type found and the type expected.
    let mut span: serde_json::Value =
        serde_json::to_value(&fixtures::sample_report().spans[3]).unwrap();
    span["count"] = serde_json::json!("12");
    let json = with_span_element(3, span);
    let e = from_slice_named(json.as_bytes(), "run.json").unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("`spans[3].count`: invalid type: string \"12\", expected u64"),
        "{text}"
    );
    let JsonError::Layout { line, column, .. } = e else {
        panic!("{e:?}")
    };
    let (l, c) = position_of(&json, "\"count\": \"12\"");
    assert_eq!(line, l, "{text}");
    assert!(column > c, "{text}");

    // A number where an object is expected, deep down.
    let mut span: serde_json::Value =
        serde_json::to_value(&fixtures::sample_report().spans[0]).unwrap();
    span["duration"] = serde_json::json!(5);
    let text = from_slice(with_span_element(0, span).as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("`spans[0].duration`: invalid type: integer `5`"),
        "{text}"
    );
}

#[test]
fn a_utf8_bom_is_skipped() {
    let original = fixtures::sample_report();
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(render(JsonSink::new(), &original));
    let back = from_slice(&bytes).expect("a BOM is accepted");
    assert_eq!(text(&back), text(&original));
    // Errors after a BOM keep the columns an editor shows (the BOM is invisible).
    let e = from_slice(b"\xEF\xBB\xBF{\"schema_version\": \"1\"}").unwrap_err();
    assert!(
        matches!(
            e,
            JsonError::Layout {
                line: 1,
                column: 22,
                ..
            }
        ),
        "{e:?}"
    );
    // UTF-16 (which Windows tools also write) is named as what it is not.
    let text = from_slice(b"\xFF\xFE{\x00}\x00").unwrap_err().to_string();
    assert!(text.contains("0xFF") && text.contains("UTF-16"), "{text}");
}

#[test]
fn trailing_content_after_the_report_is_a_syntax_error() {
    let mut bytes = render(
        JsonSink::new().with_pretty(false),
        &fixtures::sample_report(),
    );
    bytes.extend(b" {}");
    let e = from_slice(&bytes).unwrap_err();
    assert!(matches!(e, JsonError::Syntax { .. }), "{e:?}");
    assert!(e.to_string().contains("trailing characters"), "{e}");
}
