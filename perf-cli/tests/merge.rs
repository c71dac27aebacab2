//! `heimdall-perf merge`: the real binary merges saved runs into a fleet report that every
//! other command reads (`summary`, `diff`, `render` in every format), names the stations,
//! and refuses what cannot merge exactly, naming the file at fault.

use std::path::{Path, PathBuf};

mod common;
use common::{read_report, write_report};

use assert_cmd::Command;
use heimdall_perf::reports::{merge_reports, Report, SCHEMA_VERSION};
use heimdall_perf_testkit as fixtures;

fn cmd() -> Command {
    Command::cargo_bin("heimdall-perf").unwrap()
}

/// The sample run as recorded at station `station` (a label), `hours` later.
fn run(station: Option<&str>, hours: u64) -> Report {
    let mut r = fixtures::sample_report();
    r.session.labels.remove("station");
    if let Some(s) = station {
        r.session.labels.insert("station".into(), s.into());
    }
    r.session.start_unix_ns += hours * 3_600_000_000_000;
    r
}

/// (exit code, stdout, stderr)
fn run_cmd(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = cmd().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn os(p: &Path) -> &std::ffi::OsStr {
    p.as_os_str()
}

#[test]
fn merge_writes_the_fleet_report_the_library_gives() {
    let dir = tempfile::tempdir().unwrap();
    let east = write_report(&run(Some("east"), 0), &dir.path().join("a.json"));
    let west = write_report(&run(Some("west"), 1), &dir.path().join("b.json"));
    let fleet_path = dir.path().join("fleet.json");
    let (code, _, err) = run_cmd(&[
        "merge".as_ref(),
        os(&east),
        os(&west),
        "-o".as_ref(),
        os(&fleet_path),
    ]);
    assert_eq!(code, 0, "{err}");
    let fleet = read_report(&fleet_path);
    let want = merge_reports([("east", read_report(&east)), ("west", read_report(&west))]).unwrap();
    // NaN != NaN (a metric of the sample holds one): compare the text forms.
    assert_eq!(format!("{fleet:?}"), format!("{want:?}"));
    assert_eq!(fleet.schema_version, SCHEMA_VERSION);
    let names: Vec<&str> = fleet.stations.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["east", "west"]);
    let detect = fleet.span_total(&["frame", "detect"]).unwrap();
    let one = read_report(&east);
    assert_eq!(
        detect.count,
        2 * one.span_total(&["frame", "detect"]).unwrap().count
    );

    // To standard output without -o (or with -o -).
    let (code, stdout, _) = run_cmd(&["merge".as_ref(), os(&east), os(&west)]);
    assert_eq!(code, 0);
    assert_eq!(stdout, std::fs::read_to_string(&fleet_path).unwrap());
}

#[test]
fn summary_diff_and_render_read_a_merged_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let merge_to = |out: &str, runs: &[Report]| {
        let mut args: Vec<PathBuf> = vec!["merge".into()];
        for (i, r) in runs.iter().enumerate() {
            args.push(write_report(r, &d.join(format!("{out}-{i}.json"))));
        }
        let out = d.join(out);
        args.extend(["-o".into(), out.clone()]);
        cmd().args(&args).assert().success();
        out
    };
    let base = merge_to("base.json", &[run(Some("east"), 0), run(Some("west"), 0)]);
    // The same fleet, where west's detection got 60 % slower.
    let mut slow = run(Some("west"), 0);
    for s in slow
        .span_totals
        .iter_mut()
        .filter(|s| s.path == ["frame", "detect"])
    {
        s.total_ns = s.total_ns * 8 / 5;
        for v in [
            &mut s.duration.sum,
            &mut s.duration.mean,
            &mut s.duration.min,
            &mut s.duration.max,
        ] {
            *v *= 1.6;
        }
        s.duration.stddev *= 1.6;
        // Same values one ladder bucket or so up: keep the histogram's counts on the ladder.
        s.histogram.insert(
            0,
            heimdall_perf::metrics::HistogramBucket { le: 255, count: 0 },
        );
        let ladder = heimdall_perf::metrics::histogram_ladder();
        for (i, b) in s.histogram.iter_mut().enumerate() {
            b.le = ladder[i];
        }
    }
    let new = merge_to("new.json", &[run(Some("east"), 0), slow]);

    let (code, text, err) = run_cmd(&["summary".as_ref(), os(&base)]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("fleet of 2 stations"), "{text}");
    let station_lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("station "))
        .take(3)
        .collect();
    assert!(
        station_lines.len() == 3
            && station_lines[1].starts_with("east ")
            && station_lines[2].starts_with("west ")
            && station_lines[1].contains("inspection-01"),
        "{text}"
    );
    // The station's frames are those of its source with a budget (`cam-0`: 598 finished,
    // 30 missed), as in the frames block, not diluted by the source without one.
    assert!(
        station_lines[1].contains(" 598 ") && station_lines[1].contains("5.0"),
        "{text}"
    );

    // A fleet against itself: nothing regressed; against the slower fleet: exit 1, naming
    // the span.
    let (code, _, err) = run_cmd(&["diff".as_ref(), os(&base), os(&base)]);
    assert_eq!(code, 0, "{err}");
    let (code, text, err) = run_cmd(&["diff".as_ref(), os(&base), os(&new)]);
    assert_eq!(code, 1, "{text}{err}");
    assert!(
        text.lines()
            .any(|l| l.contains("frame;detect") && l.contains("REGRESSED")),
        "{text}"
    );
    // A single run against a fleet is a diff like any other.
    let single = write_report(&run(Some("east"), 0), &d.join("single.json"));
    let (code, _, err) = run_cmd(&["diff".as_ref(), os(&single), os(&base)]);
    assert!(code == 0 || code == 1, "{err}");

    for format in [
        "json",
        "markdown",
        "html",
        "flamegraph",
        "folded",
        "openmetrics",
        "trace",
    ] {
        let out = d.join(format!("fleet.{format}"));
        let (code, _, err) = run_cmd(&[
            "render".as_ref(),
            os(&base),
            "--format".as_ref(),
            format.as_ref(),
            "-o".as_ref(),
            os(&out),
        ]);
        assert_eq!(code, 0, "{format}: {err}");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("east/"),
            "{format}: the stations' threads are in it"
        );
    }
}

#[test]
fn stations_are_named_after_their_label_labels_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut labelled = run(None, 0);
    labelled.session.labels.insert("cell".into(), "9".into());
    let mut unlabelled = run(None, 0);
    unlabelled.session.labels.clear();
    // Another run without labels (the same run twice is refused).
    let mut unlabelled_2 = run(None, 2);
    unlabelled_2.session.labels.clear();
    let files = [
        write_report(&run(Some("cell-7"), 0), &d.join("x.json")),
        write_report(&labelled, &d.join("y.json")),
        write_report(&unlabelled, &d.join("camera-line.json")),
        write_report(&unlabelled_2, &d.join("run-2026-11-30/report.json")),
        // The same station recorded twice: told apart by file name.
        write_report(&run(Some("dup"), 0), &d.join("monday.json")),
        write_report(&run(Some("dup"), 1), &d.join("tuesday.json")),
    ];
    let out = d.join("fleet.json");
    cmd()
        .arg("merge")
        .args(&files)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let names: Vec<String> = read_report(&out)
        .stations
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        [
            "cell-7",
            "cell=9, line=3",
            "camera-line",
            "run-2026-11-30",
            "dup (monday)",
            "dup (tuesday)"
        ]
    );

    // The same file twice cannot be told apart: an error naming it, and no output.
    let out2 = d.join("fleet2.json");
    let (code, _, err) = run_cmd(&[
        "merge".as_ref(),
        os(&files[0]),
        os(&files[0]),
        "-o".as_ref(),
        os(&out2),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("x.json") && err.contains("are the same file"),
        "{err}"
    );
    assert!(!out2.exists());

    // Two files that give one name even with their file names: each file's name is said.
    let sub = d.join("other");
    let twin = write_report(&run(Some("cell-7"), 3), &sub.join("x.json"));
    let (code, _, err) = run_cmd(&[
        "merge".as_ref(),
        os(&files[0]),
        os(&twin),
        "-o".as_ref(),
        os(&out2),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("give the same station name `cell-7 (x)`")
            && err.contains("(station `cell-7 (x)`, told apart by its file name)"),
        "{err}"
    );

    // A copy of a run under another name is the same run: refused naming both files.
    let copy = d.join("copy-of-x.json");
    std::fs::copy(&files[0], &copy).unwrap();
    let (code, _, err) = run_cmd(&[
        "merge".as_ref(),
        os(&files[0]),
        os(&copy),
        "-o".as_ref(),
        os(&out2),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("are the same run")
            && err.contains("x.json`")
            && err.contains("copy-of-x.json`"),
        "{err}"
    );

    // `-o` naming an input through `..`: refused.
    let (code, _, err) = run_cmd(&[
        "merge".as_ref(),
        os(&files[1]),
        os(&twin),
        "-o".as_ref(),
        os(&sub.join("..").join("other").join("x.json")),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("is the input"), "{err}");
}

#[test]
fn what_cannot_merge_is_an_error_naming_the_file_and_the_previous_output_stays() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("fleet.json");
    std::fs::write(&out, "the previous fleet").unwrap();
    let east = write_report(&run(Some("east"), 0), &d.join("east.json"));
    let merge = |other: &Path| {
        run_cmd(&[
            "merge".as_ref(),
            os(&east),
            os(other),
            "-o".as_ref(),
            os(&out),
        ])
    };

    // Another schema version.
    let mut old = run(Some("west"), 0);
    old.schema_version = 2;
    let old = write_report(&old, &d.join("old.json"));
    let (code, _, err) = merge(&old);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!(
            "station `west` has report schema 2 but station `east` has schema {SCHEMA_VERSION}"
        )) && err.contains("old.json"),
        "{err}"
    );

    // Another bucket ladder.
    let mut other = run(Some("west"), 0);
    other.span_totals[0].histogram[1].le = 1000;
    let other = write_report(&other, &d.join("ladder.json"));
    let (code, _, err) = merge(&other);
    assert_eq!(code, 2);
    assert!(
        err.contains("station `west`")
            && err.contains("bucket bound 1000 ns")
            && err.contains("ladder.json"),
        "{err}"
    );

    // Not a report, and no file at all.
    let junk = d.join("junk.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    let (code, _, err) = merge(&junk);
    assert_eq!(code, 2);
    assert!(
        err.contains("junk.json") && err.contains("not a heimdall-perf report"),
        "{err}"
    );
    let (code, _, err) = merge(&d.join("missing.json"));
    assert_eq!(code, 2);
    assert!(err.contains("missing.json"), "{err}");

    assert_eq!(std::fs::read_to_string(&out).unwrap(), "the previous fleet");

    // No report at all is a usage error.
    let (code, _, err) = run_cmd(&["merge".as_ref(), "-o".as_ref(), os(&out)]);
    assert_eq!(code, 2);
    assert!(err.contains("REPORT"), "{err}");

    // A folder that does not exist: the error names the output.
    let nowhere = d.join("no/such/dir/fleet.json");
    let (code, _, err) = run_cmd(&["merge".as_ref(), os(&east), "-o".as_ref(), os(&nowhere)]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/dir"), "{err}");
}

/// `diff` of two fleets names the stations that left and joined, in every format.
#[test]
fn diff_of_fleets_names_stations_that_left_or_joined() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let merge_to = |out: &str, stations: &[(&str, u64)]| {
        let mut args: Vec<PathBuf> = vec!["merge".into()];
        for (s, hours) in stations {
            args.push(write_report(
                &run(Some(s), *hours),
                &d.join(format!("{out}-{s}.json")),
            ));
        }
        let out = d.join(out);
        args.extend(["-o".into(), out.clone()]);
        cmd().args(&args).assert().success();
        out
    };
    let base = merge_to("base.json", &[("east", 0), ("west", 1)]);
    let new = merge_to("new.json", &[("east", 2), ("north", 3)]);
    let (_, json, err) = run_cmd(&[
        "diff".as_ref(),
        os(&base),
        os(&new),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(v["stations_left"], serde_json::json!(["west"]));
    assert_eq!(v["stations_joined"], serde_json::json!(["north"]));
    for format in ["text", "md", "html"] {
        let (_, text, _) = run_cmd(&[
            "diff".as_ref(),
            os(&base),
            os(&new),
            "--format".as_ref(),
            format.as_ref(),
        ]);
        assert!(
            text.contains("left (in the base only)")
                && text.contains("west")
                && text.contains("north"),
            "{format}: {text}"
        );
    }
    // Single runs have no stations: nothing is said, and the JSON has no such keys.
    let single = write_report(&run(Some("east"), 0), &d.join("single.json"));
    let (_, json, _) = run_cmd(&[
        "diff".as_ref(),
        os(&single),
        os(&single),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert!(!json.contains("stations_left"), "{json}");
}
