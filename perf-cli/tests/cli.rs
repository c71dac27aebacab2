//! The real `heimdall-perf` binary, driven as a CI pipeline would.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use heimdall_perf::ProfilingSession;

/// A small "program": ten frames of preprocess → detect, where detect sleeps `detect_ms`.
fn record_run(name: &str, detect_ms: u64, path: &Path) {
    let mut s = ProfilingSession::new(name);
    for _ in 0..10 {
        s.start_timing("frame");
        s.start_timing("preprocess");
        std::thread::sleep(Duration::from_millis(4));
        s.stop_timing("preprocess").unwrap();
        s.start_timing("detect");
        std::thread::sleep(Duration::from_millis(detect_ms));
        s.stop_timing("detect").unwrap();
        s.stop_timing("frame").unwrap();
    }
    s.stop();
    let json = heimdall_perf_report_json::to_string(&s.report()).unwrap();
    std::fs::write(path, json).unwrap();
}

struct Runs {
    _dir: tempfile::TempDir,
    base: PathBuf,
    slow: PathBuf,
    dir: PathBuf,
}

fn runs() -> Runs {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let slow = dir.path().join("slow.json");
    record_run("base", 5, &base);
    record_run("slow", 15, &slow);
    Runs {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        base,
        slow,
    }
}

fn cmd() -> Command {
    Command::cargo_bin("heimdall-perf").unwrap()
}

#[test]
fn diff_exits_1_and_names_the_slowed_stage() {
    let r = runs();
    let out = cmd()
        .arg("diff")
        .arg(&r.base)
        .arg(&r.slow)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("frame;detect"))
        .unwrap_or_else(|| panic!("no line for frame;detect:\n{stdout}"));
    assert!(line.starts_with("REGRESSED"), "{line}");

    // Same report twice: nothing regressed.
    let out = cmd()
        .arg("diff")
        .arg(&r.base)
        .arg(&r.base)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Markdown and HTML layouts carry the same verdicts.
    let out = cmd()
        .args(["diff", "--format", "md"])
        .arg(&r.base)
        .arg(&r.slow)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let md = String::from_utf8(out.stdout).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| REGRESSED | frame;detect |"));
    let row = row.unwrap_or_else(|| panic!("no regressed row for frame;detect:\n{md}"));
    assert_eq!(row.matches('|').count(), 9, "{row}");
    let out = cmd()
        .args(["diff", "--format", "html"])
        .arg(&r.base)
        .arg(&r.slow)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(
        html.contains("<tr class=\"regressed\"><td>REGRESSED</td><td>frame;detect</td>"),
        "{html}"
    );

    // JSON output carries the verdicts; the differential flamegraph is written and parses.
    let svg = r.dir.join("diff.svg");
    let out = cmd()
        .args(["diff", "--format", "json", "--flamegraph"])
        .arg(&svg)
        .arg(&r.base)
        .arg(&r.slow)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let detect = v["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "frame;detect")
        .unwrap();
    assert_eq!(detect["verdict"], "regressed");
    let text = std::fs::read_to_string(&svg).unwrap();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&text, opts).unwrap();
    assert!(doc
        .descendants()
        .any(|n| n.has_tag_name("title") && n.text().is_some_and(|t| t.starts_with("detect"))));
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let r = runs();
    let truncated = r.dir.join("truncated.json");
    let full = std::fs::read(&r.base).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let out = cmd()
        .arg("diff")
        .arg(&r.base)
        .arg(&truncated)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("truncated.json"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );

    let out = cmd()
        .args(["summary", "/nonexistent/run.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/run.json"));

    let out = cmd()
        .args(["diff", "--threshold", "-3"])
        .arg(&r.base)
        .arg(&r.base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = cmd().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn render_summary_and_formats() {
    let r = runs();
    let out = cmd()
        .args(["render", "--format", "folded"])
        .arg(&r.slow)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let folded = String::from_utf8(out.stdout).unwrap();
    assert!(
        folded.lines().any(|l| l.contains(";frame;detect ")),
        "{folded}"
    );

    let svg = r.dir.join("flame.svg");
    cmd()
        .args(["render", "--format", "svg", "--output"])
        .arg(&svg)
        .arg(&r.slow)
        .assert()
        .success();
    assert!(std::fs::read_to_string(&svg).unwrap().contains("detect"));

    let out = cmd()
        .args(["render", "--format", "nope"])
        .arg(&r.slow)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nope`"));

    let out = cmd().arg("summary").arg(&r.slow).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("frame;detect") && text.contains("slow"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no colours when stdout is not a terminal"
    );

    let out = cmd().arg("formats").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for id in ["flamegraph", "folded"] {
        assert!(text.lines().any(|l| l.starts_with(id)), "{text}");
    }
}
