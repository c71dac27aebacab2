//! The real `heimdall-perf` binary, driven as a CI pipeline would.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use heimdall_perf::reports::ReportSink;
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
    let json = heimdall_perf_report_json::JsonSink::new()
        .render_to_string(&s.report())
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

fn read_report(path: &Path) -> heimdall_perf::reports::Report {
    heimdall_perf_report_json::read_report(path).unwrap()
}

fn write_report(report: &heimdall_perf::reports::Report, path: &Path) {
    std::fs::write(
        path,
        heimdall_perf_report_json::JsonSink::new()
            .render_to_string(report)
            .unwrap(),
    )
    .unwrap();
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
