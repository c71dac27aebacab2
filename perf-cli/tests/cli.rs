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
        .find(|s| s["path"] == serde_json::json!(["frame", "detect"]))
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

fn read_report(path: &Path) -> heimdall_perf::Report {
    heimdall_perf_report_json::read_report(path).unwrap()
}

fn write_report(report: &heimdall_perf::Report, path: &Path) {
    std::fs::write(path, heimdall_perf_report_json::to_string(report).unwrap()).unwrap();
}

/// `report` with its span totals replaced by copies of the `frame;detect` span under `paths`.
fn with_detect_as(report: &heimdall_perf::Report, paths: &[&[&str]]) -> heimdall_perf::Report {
    let mut r = report.clone();
    let detect = r
        .span_totals
        .iter()
        .find(|s| s.path == ["frame", "detect"])
        .unwrap()
        .clone();
    r.span_totals = paths
        .iter()
        .map(|p| {
            let mut s = detect.clone();
            s.path = p.iter().map(|n| n.to_string()).collect();
            s
        })
        .collect();
    r
}

#[test]
fn diff_tells_a_name_with_a_semicolon_from_a_path() {
    let r = runs();
    // Base: one span *named* `frame;detect` (5 ms). New: the path frame › detect (15 ms).
    let base = with_detect_as(&read_report(&r.base), &[&["frame;detect"]]);
    let slow = with_detect_as(&read_report(&r.slow), &[&["frame", "detect"]]);
    let (base_path, slow_path) = (r.dir.join("named.json"), r.dir.join("nested.json"));
    write_report(&base, &base_path);
    write_report(&slow, &slow_path);
    let out = cmd()
        .arg("diff")
        .arg(&base_path)
        .arg(&slow_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a phantom regression:\n{stdout}"
    );
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert!(
        rows[0].starts_with("added") && rows[0].contains(" frame;detect "),
        "{stdout}"
    );
    assert!(
        rows[1].starts_with("removed") && rows[1].contains(" frame\\;detect "),
        "{stdout}"
    );
    assert_eq!(rows.len(), 3, "{stdout}");

    // Both spans in both runs: two rows, none missing; the JSON keeps the paths as lists.
    let both =
        |r: &heimdall_perf::Report| with_detect_as(r, &[&["frame;detect"], &["frame", "detect"]]);
    write_report(&both(&read_report(&r.base)), &base_path);
    write_report(&both(&read_report(&r.base)), &slow_path);
    let out = cmd()
        .args(["diff", "--format", "json"])
        .arg(&base_path)
        .arg(&slow_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&serde_json::Value> = v["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["path"])
        .collect();
    assert_eq!(
        paths,
        [
            &serde_json::json!(["frame", "detect"]),
            &serde_json::json!(["frame;detect"])
        ]
    );

    // Markdown keeps the backslash visible; summary shows the name escaped too.
    let out = cmd()
        .args(["diff", "--format", "md"])
        .arg(&base_path)
        .arg(&slow_path)
        .output()
        .unwrap();
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains("| unchanged | frame\\\\;detect |"), "{md}");
    assert!(md.contains("| unchanged | frame;detect |"), "{md}");
    let out = cmd().arg("summary").arg(&base_path).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("frame\\;detect ")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("frame;detect ")),
        "{text}"
    );
}

/// What no terminal output may contain: control characters other than the line ends the
/// command writes itself, and bidirectional overrides.
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for c in text.chars() {
        let bad = (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(!bad, "{what} has a raw {c:?}:\n{text}");
    }
}

#[test]
fn control_characters_never_reach_the_terminal_raw() {
    let r = runs();
    let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mred\ttab\nline\u{202e}evil\u{2066}";
    let mut report = read_report(&r.slow);
    report.session.name = format!("session {hostile}");
    report.session.host = format!("host {hostile}");
    report.session.started_at = format!("at {hostile}");
    for s in &mut report.span_totals {
        if s.path == ["frame", "detect"] {
            s.path[1] = format!("detect {hostile}");
        }
    }
    let mut metric = heimdall_perf::core::fixtures::sample_report().metrics[0].clone();
    metric.name = format!("metric {hostile}");
    metric.unit = format!("unit {hostile}");
    report.metrics = vec![metric];
    let path = r.dir.join("hostile.json");
    write_report(&report, &path);

    let out = cmd().arg("summary").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_terminal_safe("summary", &out.stdout);
    let text = String::from_utf8(out.stdout).unwrap();
    let shown = r"\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mred\ttab\nline\u{202e}evil\u{2066}";
    assert!(text.contains(&format!("session {shown}")), "{text}");
    assert!(text.contains(&format!("host {shown}")), "{text}");
    assert!(text.contains("unit \\u{1b}]0;pwned"), "{text}");
    assert!(text.contains("metric \\u{1b}]0;pwned"), "{text}");
    // A `;` inside the span name is escaped like the rest.
    assert!(text.contains("frame;detect \\u{1b}]0\\;pwned"), "{text}");

    for format in ["text", "md", "html", "json"] {
        let out = cmd()
            .args(["diff", "--format", format])
            .arg(&r.base)
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}");
        assert_terminal_safe(format, &out.stdout);
        assert_terminal_safe(format, &out.stderr);
        if format == "json" {
            // The same JSON value: the escapes are JSON's own.
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["new_session"], report.session.name.as_str());
        } else {
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(text.contains("evil"), "{format}: {text}");
        }
    }

    // Errors: a file name, a format id and a plugin path with escapes in them.
    let bad_file = r.dir.join(format!("missing {hostile}.json"));
    let out = cmd().arg("summary").arg(&bad_file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_terminal_safe("summary error", &out.stderr);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing \\u{1b}]0;pwned"));
    let out = cmd()
        .args(["render", "--format", hostile])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_terminal_safe("render error", &out.stderr);
    let out = cmd()
        .args(["formats", "--plugin"])
        .arg(r.dir.join(format!("lib{hostile}.so")))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_terminal_safe("formats error", &out.stderr);
    assert!(String::from_utf8_lossy(&out.stderr).contains("\\u{202e}evil"));
}

#[test]
fn render_dash_o_writes_to_standard_output() {
    let r = runs();
    let plain = cmd()
        .args(["render", "--format", "folded"])
        .arg(&r.slow)
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(0));
    assert!(!plain.stdout.is_empty());
    let out = cmd()
        .current_dir(&r.dir)
        .args(["render", "--format", "folded", "-o", "-"])
        .arg(&r.slow)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, plain.stdout);
    assert!(!r.dir.join("-").exists(), "wrote a file named `-`");

    // A link to standard output (here a pipe) is written through and stays a link.
    let link = r.dir.join("to-stdout");
    std::os::unix::fs::symlink("/dev/stdout", &link).unwrap();
    let out = cmd()
        .args(["render", "--format", "folded", "-o"])
        .arg(&link)
        .arg(&r.slow)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, plain.stdout);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());

    // The diff flamegraph cannot share standard output with the diff.
    let out = cmd()
        .current_dir(&r.dir)
        .args(["diff", "--flamegraph", "-"])
        .arg(&r.base)
        .arg(&r.slow)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--flamegraph"));
    assert!(!r.dir.join("-").exists());
}

#[test]
fn summary_lists_recording_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diag.json");
    let mut r = heimdall_perf::Report::empty("diag");
    r.diagnostics.leaked_spans = 3;
    r.diagnostics
        .sampler_failures
        .insert("system/\u{1b}[2Jcpu".into(), 1);
    std::fs::write(&path, heimdall_perf_report_json::to_string(&r).unwrap()).unwrap();
    let out = cmd().arg("summary").arg(&path).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("recording diagnostics"), "{text}");
    assert!(
        text.contains(
            "- 3 scope! guards were leaked (mem::forget) and ended with the span enclosing them."
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "- 1 read of the periodic-source figure system/\\u{1b}[2Jcpu failed and was skipped."
        ),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "a raw escape reached the terminal"
    );
}
