//! The real `heimdall-perf` binary, driven as a CI pipeline would.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
use common::{read_report, write_report};

use assert_cmd::Command;
use heimdall_perf::reports::ReportSink;
use heimdall_perf::ProfilingSession;

/// A small "program": ten frames of preprocess → detect, where detect sleeps `detect_ms`.
///
/// The diffs compare a run of 5 ms detects with one of 15 ms. A loaded machine can stretch
/// a sleep by tens of milliseconds, and one 5 ms detect taking 30 ms makes the two runs
/// differ by no more than their noise: a run whose detects did not take what was asked (to
/// 4 ms) is recorded again, a few times at most.
fn record_run(name: &str, detect_ms: u64, path: &Path) {
    let asked = Duration::from_millis(detect_ms);
    let mut attempts = 0;
    let report = loop {
        attempts += 1;
        let mut s = ProfilingSession::new(name);
        let mut slowest = Duration::ZERO;
        for _ in 0..10 {
            s.start_timing("frame");
            s.start_timing("preprocess");
            std::thread::sleep(Duration::from_millis(4));
            s.stop_timing("preprocess").unwrap();
            s.start_timing("detect");
            std::thread::sleep(asked);
            slowest = slowest.max(s.stop_timing("detect").unwrap());
            s.stop_timing("frame").unwrap();
        }
        s.stop();
        if slowest < asked + Duration::from_millis(4) || attempts == 20 {
            break s.report();
        }
    };
    let json = heimdall_perf_report_json::JsonSink::new()
        .render_to_string(&report)
        .unwrap();
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

/// `report` with its span totals replaced by copies of the `frame;detect` span under `paths`.
fn with_detect_as(
    report: &heimdall_perf::reports::Report,
    paths: &[&[&str]],
) -> heimdall_perf::reports::Report {
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
    let both = |r: &heimdall_perf::reports::Report| {
        with_detect_as(r, &[&["frame;detect"], &["frame", "detect"]])
    };
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
    let mut metric = heimdall_perf_testkit::sample_report().metrics[0].clone();
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
    let mut r = heimdall_perf::reports::Report::empty("diag");
    r.diagnostics.leaked_spans = 3;
    r.diagnostics
        .sampler_failures
        .insert("system/\u{1b}[2Jcpu".into(), 1);
    std::fs::write(
        &path,
        heimdall_perf_report_json::JsonSink::new()
            .render_to_string(&r)
            .unwrap(),
    )
    .unwrap();
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

#[test]
fn clap_errors_show_the_arguments_escaped() {
    let r = runs();
    let diff = |threshold: &str| {
        let mut c = cmd();
        c.arg("diff")
            .arg(&r.base)
            .arg(&r.slow)
            .args(["--threshold", threshold]);
        c
    };
    // As on a terminal: clap styles its message, and would send the value's escapes along.
    let out = diff("\u{1b}[31mX\u{1b}]0;pwned\u{7}")
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_terminal_safe("threshold error", &out.stderr);
    let text = String::from_utf8(out.stderr).unwrap();
    assert!(
        text.contains(r"invalid value '\u{1b}[31mX\u{1b}]0;pwned\u{7}' for '--threshold"),
        "{text}"
    );
    // clap's own line breaks stay.
    assert!(
        text.ends_with("\n\nFor more information, try '--help'.\n"),
        "{text:?}"
    );

    // Piped: clap strips ANSI itself, but not a bidirectional override or a line separator.
    let out = diff("X\u{202e}\u{2028}").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_terminal_safe("threshold error", &out.stderr);
    let text = String::from_utf8(out.stderr).unwrap();
    assert!(text.contains(r"'X\u{202e}\u{2028}'"), "{text}");

    // A line break in a value cannot pass for a line of clap's.
    let out = diff("X\nerror: all good").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stderr).unwrap();
    assert!(text.contains(r"'X\nerror: all good'"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("error: all")), "{text}");

    // An unknown argument and an unknown subcommand are quoted too.
    for args in [
        &["summary", "--\u{1b}[2J\u{202e}"][..],
        &["\u{1b}]0;pwned\u{7}\u{202e}"][..],
    ] {
        let out = cmd()
            .args(args)
            .env("CLICOLOR_FORCE", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_terminal_safe("usage error", &out.stderr);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(r"\u{202e}"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // --help and --version print as usual, on standard output, exit 0.
    let out = cmd().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Usage: heimdall-perf"), "{help}");
    assert!(out.stderr.is_empty());
    let out = cmd().args(["diff", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--threshold <THRESHOLD>"));
    let out = cmd().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("heimdall-perf {}\n", env!("CARGO_PKG_VERSION"))
    );
    // No subcommand: help on standard error, a usage error.
    let out = cmd().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: heimdall-perf"));
}

/// Names that a terminal would act on: an escape sequence, a bidirectional override, a line
/// separator, NEL.
const TERMINAL_HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[31mred \u{202e}evil \u{2028}ls \u{85}nel";

/// A report with [`TERMINAL_HOSTILE`] in its session, span and metric names, and a note.
fn terminal_hostile_report(r: &Runs) -> PathBuf {
    let mut report = read_report(&r.slow);
    report.session.name = format!("session {TERMINAL_HOSTILE}");
    for s in report.span_totals.iter_mut().chain(report.spans.iter_mut()) {
        if s.path.last().is_some_and(|n| n == "detect") {
            *s.path.last_mut().unwrap() = format!("detect {TERMINAL_HOSTILE}");
        }
    }
    let mut metric = heimdall_perf_testkit::sample_report().metrics[0].clone();
    metric.name = format!("metric {TERMINAL_HOSTILE}");
    report.metrics = vec![metric];
    report.notes.push(heimdall_perf::reports::Note {
        t_ns: 1,
        text: format!("note {TERMINAL_HOSTILE}"),
    });
    let path = r.dir.join("terminal-hostile.json");
    write_report(&report, &path);
    path
}

const RENDER_FORMATS: [&str; 6] = ["json", "md", "openmetrics", "folded", "html", "flamegraph"];

#[test]
fn render_piped_or_redirected_keeps_the_exact_bytes() {
    let r = runs();
    let path = terminal_hostile_report(&r);
    for format in RENDER_FORMATS {
        let file = r.dir.join(format!("out.{format}"));
        cmd()
            .args(["render", "--format", format, "-o"])
            .arg(&file)
            .arg(&path)
            .assert()
            .success();
        let bytes = std::fs::read(&file).unwrap();
        for dash_o in [&["-o", "-"][..], &[][..]] {
            let out = cmd()
                .args(["render", "--format", format])
                .args(dash_o)
                .arg(&path)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{format}");
            assert!(
                out.stdout == bytes,
                "{format} {dash_o:?}: not the file's bytes"
            );
            assert!(out.stderr.is_empty(), "{format}: {:?}", out.stderr);
        }
    }
    // The formats do carry the characters raw (so the terminal case matters).
    let md = std::fs::read_to_string(r.dir.join("out.openmetrics")).unwrap();
    assert!(md.contains('\u{202e}'), "{md}");
}

/// A pseudo-terminal: (the controlling side, the terminal side).
fn pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let (mut controller, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two new file descriptors, which the `File`s then own.
    let rc = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    for fd in [controller, terminal] {
        // SAFETY: fcntl on descriptors just opened. Close-on-exec, so that the commands other
        // tests start meanwhile do not keep the terminal open.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: both descriptors are open and owned by nobody else.
    unsafe {
        (
            std::fs::File::from_raw_fd(controller),
            std::fs::File::from_raw_fd(terminal),
        )
    }
}

/// Runs the command with `args`, standard output on a pseudo-terminal when `stdout_on_pty`,
/// (else a pipe), `{tty}` in `args` replaced by the terminal's path; returns what the
/// terminal received, standard output and standard error.
fn on_pty(args: &[&std::ffi::OsStr], stdout_on_pty: bool) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use std::io::Read;
    let (mut controller, terminal) = pty();
    let tty_path = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&terminal)
    ))
    .unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_heimdall-perf"));
    for a in args {
        if *a == "{tty}" {
            c.arg(&tty_path);
        } else {
            c.arg(a);
        }
    }
    c.stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if stdout_on_pty {
        c.stdout(terminal.try_clone().unwrap());
    } else {
        c.stdout(std::process::Stdio::piped());
    }
    let child = c.spawn().unwrap();
    drop(c); // it holds a copy of the terminal side
             // Read the terminal while the command writes (its buffer is small); the read ends
             // (EIO) once no one holds the terminal side open.
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = controller.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    let out = child.wait_with_output().unwrap();
    drop(terminal);
    let shown = reader.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (shown, out.stdout, out.stderr)
}

#[test]
fn render_to_a_terminal_shows_the_report_escaped() {
    let r = runs();
    let path = terminal_hostile_report(&r);
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    for format in RENDER_FORMATS {
        for (args, stdout_on_pty) in [
            (vec![os("render"), os("--format"), os(format)], true),
            (
                vec![os("render"), os("--format"), os(format), os("-o"), os("-")],
                true,
            ),
            // `-o` naming a terminal, standard output a pipe.
            (
                vec![
                    os("render"),
                    os("--format"),
                    os(format),
                    os("-o"),
                    os("{tty}"),
                ],
                false,
            ),
        ] {
            let mut args = args;
            args.push(path.as_os_str());
            let (shown, stdout, stderr) = on_pty(&args, stdout_on_pty);
            assert!(stdout.is_empty(), "{format}");
            // The terminal turns `\n` into `\r\n`; nothing else may be a control.
            let text = String::from_utf8(shown).unwrap().replace("\r\n", "\n");
            assert_terminal_safe(format, text.as_bytes());
            assert!(
                !text.contains(['\u{2028}', '\u{85}']),
                "{format}: a line separator or NEL got through"
            );
            // (JSON escapes ESC itself, as `\u001b`; none escapes U+202E.)
            assert!(text.contains(r"\u{202e}evil"), "{format}: {text}");
            let stderr = String::from_utf8(stderr).unwrap();
            assert_eq!(
                stderr.matches("shown escaped on this terminal").count(),
                1,
                "{format}: {stderr}"
            );
            assert_terminal_safe("note", stderr.as_bytes());
        }
    }
    // A clean report is shown as it is, without a note.
    let (shown, _, stderr) = on_pty(
        &[
            os("render"),
            os("--format"),
            os("folded"),
            r.slow.as_os_str(),
        ],
        true,
    );
    assert!(stderr.is_empty(), "{}", String::from_utf8_lossy(&stderr));
    let plain = cmd()
        .args(["render", "--format", "folded"])
        .arg(&r.slow)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(shown)
            .unwrap()
            .replace("\r\n", "\n")
            .into_bytes(),
        plain.stdout
    );
}

#[test]
fn figures_are_written_as_every_report_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (base, faster) = (dir.path().join("base.json"), dir.path().join("faster.json"));
    let report = heimdall_perf_testkit::sample_report();
    write_report(&report, &base);
    let mut f = report.clone();
    for s in &mut f.span_totals {
        s.duration.mean /= 2.0;
        s.duration.stddev = 0.0;
    }
    write_report(&f, &faster);

    let out = cmd().arg("summary").arg(&base).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let spans = heimdall_perf::units::Style::Text.count(report.span_count());
    assert!(
        text.starts_with(&format!("line-3 inspection — 10.0 s on inspection-01, started 2025-11-24T16:00:00Z, {spans} spans\n")),
        "{text}"
    );
    let line = |start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?}:\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Spans: counts, then durations with three significant digits.
    assert_eq!(
        line("frame;detect "),
        "frame;detect 600 4.70 s 4.10 s 7.84 ms 11.6 ms 12.0 ms"
    );
    // Metrics: each value in its unit (the unit column is gone); system figures likewise.
    assert_eq!(line("fps "), "fps 60.0 fps 59.0 fps 58.0 fps 60.0 fps");
    assert_eq!(
        line("frame_latency "),
        "frame_latency 13.0 ms 14.9 ms 12.0 ms 18.0 ms"
    );
    assert_eq!(
        line("process memory "),
        "process memory mean 290 MiB, peak 295 MiB"
    );
    assert_eq!(line("process CPU "), "process CPU mean 89.0 %, peak 100 %");

    // diff: the threshold and the change are percentages; HTML has the true minus sign.
    let diff = |format: &str| {
        let out = cmd()
            .args(["diff", "--format", format])
            .arg(&base)
            .arg(&faster)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}: nothing regressed");
        String::from_utf8(out.stdout).unwrap()
    };
    let text = diff("text");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("(threshold 5.00 %, noise 3σ"),
        "{text}"
    );
    let detect = text.lines().find(|l| l.contains(" frame;detect ")).unwrap();
    assert!(detect.starts_with("improved"), "{detect}");
    assert!(
        detect.contains("mean 7.84 ms → 3.92 ms") && detect.contains(" -50.0 % "),
        "{detect}"
    );
    assert!(detect.contains("count 600 → 600"), "{detect}");
    let md = diff("md");
    assert!(
        md.contains("| improved | frame;detect | 7.84 ms → 3.92 ms | -50.0 % |"),
        "{md}"
    );
    let html = diff("html");
    assert!(html.contains("<p>Threshold 5.00 %,"), "{html}");
    assert!(
        html.contains("<td>frame;detect</td><td>7.84 ms → 3.92 ms</td><td>\u{2212}50.0 %</td>"),
        "{html}"
    );
}

// ---------------------------------------------------------------------------------------
// Frames: `summary`'s frames block, `diff`'s frame comparison.

use heimdall_perf::reports::FrameReport;
use heimdall_perf_testkit::HOSTILE_NAME;

/// The sample report written to `dir/name.json`, its `cam-0` source changed by `change`.
fn sample_with(dir: &Path, name: &str, change: impl FnOnce(&mut FrameReport)) -> PathBuf {
    let mut r = heimdall_perf_testkit::sample_report();
    let cam = r.frames.iter_mut().find(|f| f.source == "cam-0").unwrap();
    change(cam);
    let path = dir.join(format!("{name}.json"));
    write_report(&r, &path);
    path
}

/// `cam-0` with `missed` of `finished` frames missing the budget.
fn misses(missed: u64, finished: u64) -> impl FnOnce(&mut FrameReport) {
    move |f| {
        f.missed = missed;
        f.finished = finished;
        f.miss_rate = missed as f64 / finished as f64;
    }
}

/// The two-proportion z score, computed directly.
fn z_score(x1: u64, n1: u64, x2: u64, n2: u64) -> f64 {
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let p = (x1 + x2) as f64 / (n1 + n2) as f64;
    (p2 - p1) / (p * (1.0 - p) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt()
}

/// `diff --format FORMAT base new [extra…]`: exit code and standard output.
fn diff_out(format: &str, base: &Path, new: &Path, extra: &[&str]) -> (i32, String) {
    let out = cmd()
        .args(["diff", "--format", format])
        .args(extra)
        .arg(base)
        .arg(new)
        .output()
        .unwrap();
    assert_terminal_safe(format, &out.stdout);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// The text line of the frame source `source`.
fn frame_line<'a>(text: &'a str, source: &str) -> &'a str {
    text.lines()
        .find(|l| {
            l.get(11..)
                .is_some_and(|rest| rest.starts_with(&format!("{source} ")))
        })
        .unwrap_or_else(|| panic!("no line for {source}:\n{text}"))
}

/// The JSON entry of the frame source `source`.
fn frame_json<'a>(v: &'a serde_json::Value, source: &str) -> &'a serde_json::Value {
    v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == source)
        .unwrap_or_else(|| panic!("no {source} in {v:#}"))
}

#[test]
fn diff_frames_miss_rate_up_beyond_noise_is_a_regression_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let base = sample_with(dir.path(), "base", |_| {});
    let worse = sample_with(dir.path(), "worse", misses(70, 598));
    let z = z_score(30, 598, 70, 598);
    assert!(z > 3.0, "{z}");
    let zs = heimdall_perf::units::Style::Text.fixed(z, 2);

    let (code, text) = diff_out("text", &base, &worse, &[]);
    assert_eq!(code, 1, "{text}");
    let line = frame_line(&text, "cam-0");
    assert!(line.starts_with("REGRESSED "), "{line}");
    assert!(
        line.contains(&format!(
            "miss rate 5.02 % → 11.7 % (+6.69 pp, missed 30/598 → 70/598, z {zs})"
        )),
        "{line}"
    );
    assert!(line.ends_with("regressed on miss rate"), "{line}");
    assert!(
        text.contains(
            "frames: a frame source regresses when its miss rate rises beyond noise (z > 3, "
        ),
        "{text}"
    );
    assert!(
        text.contains("by at least 0.100 percentage points"),
        "{text}"
    );
    assert!(
        text.contains("frame sources: 1 regressed, 0 improved, 1 unchanged, 0 added, 0 removed")
    );
    // The spans are the same: they did not regress.
    assert!(
        text.contains("\n0 regressed, 0 improved, 7 unchanged, 0 added, 0 removed\n"),
        "{text}"
    );

    let (code, md) = diff_out("md", &base, &worse, &[]);
    assert_eq!(code, 1);
    assert!(md.contains("\n### Frames\n"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| REGRESSED (miss rate) | cam-0 |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert_eq!(row.matches(" | ").count(), 9, "{row}");
    assert!(
        row.contains(&format!(
            "| 5.02 % → 11.7 % | +6.69 pp | 30/598 → 70/598 | {zs} |"
        )),
        "{row}"
    );

    let (code, html) = diff_out("html", &base, &worse, &[]);
    assert_eq!(code, 1);
    // The frames table's row: one line, its cells between <td> and </td>.
    let row = html
        .lines()
        .find(|l| {
            l.starts_with("<tr class=\"regressed\"><td>REGRESSED (miss rate)</td><td>cam-0</td>")
        })
        .unwrap_or_else(|| panic!("{html}"));
    let cells: Vec<&str> = row
        .split("<td>")
        .skip(1)
        .map(|c| c.split("</td>").next().unwrap())
        .collect();
    assert_eq!(cells.len(), 10, "{row}");
    assert_eq!(
        &cells[..6],
        [
            "REGRESSED (miss rate)",
            "cam-0",
            "5.02 % → 11.7 %",
            "+6.69 pp",
            "30/598 → 70/598",
            zs.as_str()
        ]
    );

    let (code, json) = diff_out("json", &base, &worse, &[]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["miss_rate_z"], 3.0);
    assert_eq!(v["min_miss_rise_pct"], 0.1);
    let cam = frame_json(&v, "cam-0");
    assert_eq!(cam["verdict"], "regressed");
    assert_eq!(cam["miss_rate"]["verdict"], "regressed");
    assert_eq!(cam["latency"]["verdict"], "unchanged");
    assert!((cam["miss_rate"]["z"].as_f64().unwrap() - z).abs() < 1e-9);
    assert!((cam["miss_rate"]["new_rate"].as_f64().unwrap() - 70.0 / 598.0).abs() < 1e-12);
    assert_eq!(cam["new"]["missed"], 70);

    // The other way round: an improvement, exit 0.
    let (code, text) = diff_out("text", &worse, &base, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        frame_line(&text, "cam-0").starts_with("improved "),
        "{text}"
    );
}

#[test]
fn diff_frames_same_rates_are_not_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let base = sample_with(dir.path(), "base", |_| {});
    // Twice the frames, twice the misses: the same rate.
    let longer = sample_with(dir.path(), "longer", misses(60, 1196));
    for format in ["text", "md", "html", "json"] {
        let (code, out) = diff_out(format, &base, &longer, &[]);
        assert_eq!(code, 0, "{format}: {out}");
    }
    let (_, text) = diff_out("text", &base, &longer, &[]);
    let line = frame_line(&text, "cam-0");
    assert!(line.starts_with("unchanged "), "{line}");
    assert!(
        line.contains("miss rate 5.02 % → 5.02 % (0 pp, missed 30/598 → 60/1\u{202f}196, z 0.00)"),
        "{line}"
    );
    // The same report twice.
    let (code, text) = diff_out("text", &base, &base, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("frame sources: 0 regressed, 0 improved, 2 unchanged, 0 added, 0 removed")
    );
}

#[test]
fn diff_frames_a_tiny_count_change_is_not_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let base = sample_with(dir.path(), "base", |_| {});
    let one_more = sample_with(dir.path(), "one-more", misses(31, 598));
    let (code, text) = diff_out("text", &base, &one_more, &[]);
    assert_eq!(code, 0, "{text}");
    let z = heimdall_perf::units::Style::Text.fixed(z_score(30, 598, 31, 598), 2);
    assert!(
        frame_line(&text, "cam-0").contains(&format!("z {z})")),
        "{text}"
    );

    // 0 → 1 missed frame of 10 000: z = 1, not beyond noise.
    let none = sample_with(dir.path(), "none", misses(0, 10_000));
    let one = sample_with(dir.path(), "one", misses(1, 10_000));
    let (code, json) = diff_out("json", &none, &one, &[]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let z = frame_json(&v, "cam-0")["miss_rate"]["z"].as_f64().unwrap();
    assert!(
        (z - z_score(0, 10_000, 1, 10_000)).abs() < 1e-9 && z < 3.0,
        "{z}"
    );

    // 0 → 20 of a million: beyond noise (z ≈ 4.5) but a rise of 0.002 points, under the
    // minimum rise; with no minimum it is a regression.
    let none = sample_with(dir.path(), "none-m", misses(0, 1_000_000));
    let twenty = sample_with(dir.path(), "twenty-m", misses(20, 1_000_000));
    assert!(z_score(0, 1_000_000, 20, 1_000_000) > 4.0);
    let (code, text) = diff_out("text", &none, &twenty, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        frame_line(&text, "cam-0").starts_with("unchanged "),
        "{text}"
    );
    let (code, text) = diff_out("text", &none, &twenty, &["--min-miss-rise", "0"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        frame_line(&text, "cam-0").ends_with("regressed on miss rate"),
        "{text}"
    );
    // The rule is stated in the help.
    let out = cmd().args(["diff", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for words in [
        "one-sided two-proportion z-test",
        "gives z > 3",
        "--min-miss-rise <POINTS>",
        "0 → 1 missed frame of 10 000 is not a regression",
        "latency p99 rises by more than the threshold",
    ] {
        assert!(help.contains(words), "{words:?} in {help}");
    }
    // A bad minimum is a usage error.
    let out = cmd()
        .args(["diff", "--min-miss-rise", "-1"])
        .arg(&none)
        .arg(&twenty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn diff_frames_p99_up_50_percent_with_a_tight_distribution_is_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let tight = |f: &mut FrameReport| f.latency.summary.stddev = 200_000.0;
    let base = sample_with(dir.path(), "base", tight);
    let p99 = heimdall_perf_testkit::sample_report().frames[0]
        .latency
        .summary
        .p99;
    let slower = sample_with(dir.path(), "slower", |f| {
        tight(f);
        f.latency.summary.p99 = p99 * 1.5;
    });
    let t = heimdall_perf::units::Style::Text;
    let (code, text) = diff_out("text", &base, &slower, &[]);
    assert_eq!(code, 1, "{text}");
    let line = frame_line(&text, "cam-0");
    assert!(line.starts_with("REGRESSED "), "{line}");
    assert!(
        line.contains(&format!(
            "latency p99 {} → {} (+50.0 %, noise {})",
            t.duration(p99),
            t.duration(p99 * 1.5),
            t.duration(3.0 * (2.0 * 200_000f64.powi(2) / 598.0).sqrt())
        )),
        "{line}"
    );
    assert!(line.ends_with("regressed on latency p99"), "{line}");
    for format in ["md", "html", "json"] {
        assert_eq!(diff_out(format, &base, &slower, &[]).0, 1, "{format}");
    }
    let (_, md) = diff_out("md", &base, &slower, &[]);
    assert!(md.contains("| REGRESSED (latency p99) | cam-0 |"), "{md}");
    // Under a threshold above 50 %: not a regression.
    assert_eq!(
        diff_out("text", &base, &slower, &["--threshold", "60"]).0,
        0
    );

    // The same rise with a spread so wide that it is noise.
    let wide = |f: &mut FrameReport| f.latency.summary.stddev = 1e9;
    let base = sample_with(dir.path(), "base-wide", wide);
    let slower = sample_with(dir.path(), "slower-wide", |f| {
        wide(f);
        f.latency.summary.p99 = p99 * 1.5;
    });
    let (code, text) = diff_out("text", &base, &slower, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        frame_line(&text, "cam-0").starts_with("unchanged "),
        "{text}"
    );
}

#[test]
fn diff_frames_lists_sources_in_one_report_only_and_escapes_names() {
    let dir = tempfile::tempdir().unwrap();
    let base = sample_with(dir.path(), "base", |_| {});
    let renamed = sample_with(dir.path(), "renamed", |f| f.source = "cam-1".into());
    let shown = heimdall_perf_cli::escape_for_terminal(HOSTILE_NAME);
    let (code, text) = diff_out("text", &base, &renamed, &[]);
    assert_eq!(code, 0, "{text}");
    let added = frame_line(&text, "cam-1");
    assert!(added.starts_with("added "), "{added}");
    assert!(added.contains("missed — → 30/598"), "{added}");
    assert!(frame_line(&text, "cam-0").starts_with("removed "), "{text}");
    // The hostile source: shown escaped, on one line; no budget, so no miss test.
    let odd = text
        .lines()
        .find(|l| {
            l.get(11..)
                .is_some_and(|l| l.starts_with("odd | name `with` ticks\\n"))
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert!(odd.starts_with("unchanged "), "{odd}");
    assert!(odd.contains("z no budget"), "{odd}");
    assert!(
        text.contains("frame sources: 0 regressed, 0 improved, 1 unchanged, 1 added, 1 removed")
    );
    let (_, md) = diff_out("md", &base, &renamed, &[]);
    assert!(
        md.contains("| added | cam-1 |") && md.contains("| removed | cam-0 |"),
        "{md}"
    );
    assert!(
        md.contains("| unchanged | odd \\| name \\`with\\` ticks\\\\nand &lt;script&gt;"),
        "{md}"
    );
    let (_, html) = diff_out("html", &base, &renamed, &[]);
    assert!(!html.contains("<script>"));
    assert!(
        html.contains(&format!(
            "<td>{}</td>",
            shown
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        )),
        "{html}"
    );
    let (_, json) = diff_out("json", &base, &renamed, &[]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(frame_json(&v, HOSTILE_NAME)["verdict"], "unchanged");
    assert_eq!(frame_json(&v, "cam-1")["verdict"], "added");
    assert!(frame_json(&v, "cam-1")["base"].is_null());
}

#[test]
fn summary_has_a_frames_block_after_the_spans() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample_with(dir.path(), "sample", |_| {});
    let out = cmd().arg("summary").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_terminal_safe("summary", &out.stdout);
    let text = String::from_utf8(out.stdout).unwrap();
    let r = heimdall_perf_testkit::sample_report();
    let cam = r.frame_source("cam-0").unwrap();
    let t = heimdall_perf::units::Style::Text;
    let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let header = text
        .lines()
        .position(|l| l.starts_with("frames "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(header > text.lines().position(|l| l.starts_with("span ")).unwrap());
    assert!(header < text.lines().position(|l| l.starts_with("metric ")).unwrap());
    let cam_line = text.lines().find(|l| l.starts_with("cam-0 ")).unwrap();
    assert_eq!(
        words(cam_line),
        format!(
            "cam-0 598 16.7 ms 30 5.02 % {} {} detect (20 of 30)",
            t.duration(cam.latency.summary.p50),
            t.duration(cam.latency.summary.p99)
        )
    );
    let odd = r.frame_source(HOSTILE_NAME).unwrap();
    let odd_line = text
        .lines()
        .find(|l| l.starts_with("odd | name `with` ticks\\n"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        words(odd_line).ends_with(&format!(
            "9 none – – {} {} –",
            t.duration(odd.latency.summary.p50),
            t.duration(odd.latency.summary.p99)
        )),
        "{odd_line}"
    );

    // A report without frames has no frames block.
    let mut r = heimdall_perf_testkit::sample_report();
    r.frames.clear();
    write_report(&r, &path);
    let out = cmd().arg("summary").arg(&path).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.lines().any(|l| l.starts_with("frames ")), "{text}");
}
