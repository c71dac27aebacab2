//! `heimdall-perf merge` used carelessly or with hostile files: each test states what
//! should happen; a failing one is a defect for the lead to fix.

use std::path::{Path, PathBuf};

mod common;
use common::{read_report, write_report};

use assert_cmd::Command;
use heimdall_perf::reports::Report;
use heimdall_perf_testkit as fixtures;

fn run(station: &str) -> Report {
    let mut r = fixtures::sample_report();
    r.session.labels.insert("station".into(), station.into());
    r
}

/// (exit code, stdout, stderr)
fn merge(args: &[&Path], out: Option<&Path>) -> (i32, String, String) {
    let mut c = Command::cargo_bin("heimdall-perf").unwrap();
    c.arg("merge").args(args);
    if let Some(o) = out {
        c.arg("-o").arg(o);
    }
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// "The same file twice is an error" — also when the second path is a symbolic link to
/// the first: otherwise one run counts double in the fleet.
#[test]
fn the_same_file_through_a_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let east = write_report(&run("east"), &d.join("east.json"));
    let link = d.join("alias.json");
    std::os::unix::fs::symlink(&east, &link).unwrap();
    let out = d.join("fleet.json");
    let (code, _, err) = merge(&[&east, &link], Some(&out));
    let counted = if code == 0 {
        read_report(&out).span_totals[0].count
    } else {
        0
    };
    assert_ne!(
        code, 0,
        "east.json and a symlink to it merged as two stations (span count doubled to {counted}); stderr: {err}"
    );
}

/// `-o` naming one of the inputs: the station's own run must not be replaced by the
/// fleet report (a typo `-o east.json` loses a station's run for good).
#[test]
fn output_over_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let east = write_report(&run("east"), &d.join("east.json"));
    let west = write_report(&run("west"), &d.join("west.json"));
    let before = std::fs::read(&east).unwrap();
    let (code, _, err) = merge(&[&east, &west], Some(&east));
    let after = std::fs::read(&east).unwrap();
    assert!(
        code != 0 && before == after,
        "merge east.json west.json -o east.json: exit {code}, east.json {} ({err})",
        if before == after {
            "kept"
        } else {
            "replaced by the fleet report"
        }
    );
}

/// Counts that do not fit u64 once added: "exact, not averaged … refused, not
/// approximated" — an error naming the span, not a total silently pinned at u64::MAX.
#[test]
fn counts_that_overflow_are_refused_not_saturated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let huge = |station: &str| {
        let mut r = run(station);
        for s in r.spans.iter_mut().chain(r.span_totals.iter_mut()) {
            let c = (1u64 << 63) + 5;
            let ns = s.histogram.iter().position(|b| b.count > 0).unwrap();
            for b in s.histogram.iter_mut() {
                b.count = 0;
            }
            s.histogram[ns].count = c;
            s.count = c;
            s.duration.count = c;
        }
        r
    };
    let a = write_report(&huge("a"), &d.join("a.json"));
    let b = write_report(&huge("b"), &d.join("b.json"));
    let out = d.join("fleet.json");
    let (code, _, err) = merge(&[&a, &b], Some(&out));
    if code == 0 {
        let fleet = read_report(&out);
        let c = fleet.span_totals[0].count;
        assert_ne!(
            c,
            u64::MAX,
            "two stations of 2^63+5 spans each merged into a count of u64::MAX, silently"
        );
    } else {
        assert!(err.contains("a.json") || err.contains("b.json"), "{err}");
    }
}

/// Garbage inputs: every one is an error naming the file, exit 2, never a panic.
#[test]
fn garbage_inputs_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let east = write_report(&run("east"), &d.join("east.json"));
    let full = std::fs::read_to_string(&east).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.json", Vec::new()),
        ("array.json", b"[]".to_vec()),
        ("null.json", b"null".to_vec()),
        ("truncated.json", full.as_bytes()[..full.len() / 2].to_vec()),
        ("binary.json", vec![0xff, 0xfe, 0, 1, 2]),
        (
            "nan.json",
            full.replacen("\"mean\": ", "\"mean\": NaN, \"x\": ", 1)
                .into_bytes(),
        ),
        ("deep.json", "[".repeat(100_000).into_bytes()),
    ];
    for (name, bytes) in cases {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        let (code, _, err) = merge(&[&east, &p], Some(&d.join("out.json")));
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(name), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

/// 200 stations merge, and the fleet renders in every built-in format; the merged report
/// on standard output is the same as in a file.
#[test]
fn two_hundred_stations_merge_and_render_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let paths: Vec<PathBuf> = (0..200)
        .map(|i| write_report(&run(&format!("st-{i:03}")), &d.join(format!("{i:03}.json"))))
        .collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let out = d.join("fleet.json");
    let (code, _, err) = merge(&refs, Some(&out));
    assert_eq!(code, 0, "{err}");
    let fleet = read_report(&out);
    assert_eq!(fleet.stations.len(), 200);
    let one = read_report(&paths[0]);
    assert_eq!(fleet.span_totals[0].count, 200 * one.span_totals[0].count);
    let (code, stdout, _) = merge(&refs[..3], None);
    assert_eq!(code, 0);
    let (_, _, _) = merge(&refs[..3], Some(&d.join("three.json")));
    assert_eq!(
        stdout,
        std::fs::read_to_string(d.join("three.json")).unwrap()
    );
    for format in [
        "json",
        "markdown",
        "html",
        "flamegraph",
        "folded",
        "trace",
        "openmetrics",
    ] {
        let o = Command::cargo_bin("heimdall-perf")
            .unwrap()
            .args(["render", "--format", format])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!o.stdout.is_empty(), "{format}");
    }
}

/// A station's label that equals another pair's disambiguated name: the error, if any,
/// names the names the stations really have.
#[test]
fn a_station_name_colliding_with_a_disambiguated_one_is_named_right() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = write_report(&run("cell-7"), &d.join("a.json"));
    let b = write_report(&run("cell-7"), &d.join("b.json"));
    let c = write_report(&run("cell-7 (b)"), &d.join("c.json"));
    let out = d.join("fleet.json");
    let (code, _, err) = merge(&[&a, &b, &c], Some(&out));
    if code == 0 {
        let names: Vec<String> = read_report(&out)
            .stations
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let mut u = names.clone();
        u.sort();
        u.dedup();
        assert_eq!(u.len(), 3, "{names:?}");
    } else {
        assert!(
            err.contains("`cell-7 (b)`"),
            "c.json's station is `cell-7 (b)`, the error says otherwise: {err}"
        );
    }
}

/// `diff` of last week's fleet (3 stations) against this week's (2): a station that
/// vanished is the first thing a line manager must see; the diff must name it.
#[test]
fn diff_of_fleets_names_a_station_that_left() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p: Vec<PathBuf> = ["east", "west", "north"]
        .iter()
        .map(|s| write_report(&run(s), &d.join(format!("{s}.json"))))
        .collect();
    let three = d.join("three.json");
    let two = d.join("two.json");
    assert_eq!(merge(&[&p[0], &p[1], &p[2]], Some(&three)).0, 0);
    assert_eq!(merge(&[&p[0], &p[1]], Some(&two)).0, 0);
    let o = Command::cargo_bin("heimdall-perf")
        .unwrap()
        .arg("diff")
        .arg(&three)
        .arg(&two)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("north"),
        "diff of a 3-station fleet against a 2-station one never names the station `north` that left:\n{}",
        text.lines().take(3).collect::<Vec<_>>().join("\n")
    );
}

/// A station file whose span summaries say `"mean": "NaN"`, `"stddev": "inf"` (the JSON
/// report's spelling of non-finite numbers): the merge must refuse it naming the file,
/// not hand a fleet whose means are NaN to `diff`, which then calls them "unchanged".
#[test]
fn a_station_with_nan_summaries_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let east = write_report(&run("east"), &d.join("east.json"));
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(write_report(&run("west"), &d.join("w.json"))).unwrap(),
    )
    .unwrap();
    for key in ["spans", "span_totals"] {
        for s in v[key].as_array_mut().unwrap() {
            s["duration"]["mean"] = "NaN".into();
            s["duration"]["stddev"] = "inf".into();
        }
    }
    let west = d.join("west.json");
    std::fs::write(&west, serde_json::to_string(&v).unwrap()).unwrap();
    let out = d.join("fleet.json");
    let (code, _, err) = merge(&[&east, &west], Some(&out));
    let mean = if code == 0 {
        read_report(&out).span_totals[0].duration.mean
    } else {
        0.0
    };
    assert!(
        code == 2 && err.contains("west.json"),
        "exit {code}, fleet mean {mean}: {err}"
    );
}
