//! The report in a real browser: headless Chromium loads the rendered file from disk,
//! runs its scripts, and we read back the DOM it built and a screenshot.
//!
//! Chromium is required: set `HEIMDALL_CHROMIUM` to its path, or have `chromium`,
//! `chromium-browser` or `google-chrome` on the PATH (`apt-get install -y chromium`).
//! Screenshots are kept in `<target>/heimdall-perf-html/` for anyone to look at.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use heimdall_perf_core::{RenderError, Report, ReportSink};
use heimdall_perf_report_html::HtmlSink;
use heimdall_perf_testkit::{sample_report, HOSTILE_NAME};
use scraper::{Html, Selector};

const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// The Chromium binary, or a failure telling how to install one.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("HEIMDALL_CHROMIUM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "HEIMDALL_CHROMIUM is set to {}, which is not a file",
            p.display()
        );
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no Chromium found for the browser tests: install it (`apt-get install -y chromium` on \
         Debian) or set HEIMDALL_CHROMIUM to a Chromium or Chrome binary"
    );
}

/// Runs headless Chromium on `page` with `extra` arguments; returns its standard output.
/// Fails the test if it does not finish within [`BROWSER_TIMEOUT`] or exits with an error.
fn run_chromium(page: &Path, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let stdout_path = work.path().join("stdout");
    let stderr_path = work.path().join("stderr");
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(File::create(&stdout_path).unwrap())
    .stderr(File::create(&stderr_path).unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().expect("starting chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            // Chromium starts helper processes: end the whole group we started.
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BROWSER_TIMEOUT:?} on {}",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}): {stderr}");
    std::fs::read_to_string(&stdout_path).unwrap()
}

/// Where screenshots are kept: `<target>/heimdall-perf-html/`.
fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("heimdall-perf-html");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_page(dir: &Path, name: &str, html: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, html).unwrap();
    path
}

/// Catches script errors, console errors and security-policy refusals from the start of
/// the page, and writes them (one a line) into `<pre id="errors">` once it has loaded.
fn with_error_catcher(html: &str) -> String {
    let catch = r#"<script>window.__errors = []; window.addEventListener("error", function (e) { __errors.push("error: " + e.message); }); document.addEventListener("securitypolicyviolation", function (e) { __errors.push("refused: " + e.violatedDirective + " " + e.blockedURI); }); (function () { var ce = console.error; console.error = function () { __errors.push("console: " + Array.prototype.join.call(arguments, " ")); return ce.apply(console, arguments); }; })();</script>"#;
    let report = r#"<script>var e = document.createElement("pre"); e.id = "errors"; e.textContent = __errors.join("\n"); document.body.appendChild(e);</script>"#;
    html.replacen("<head>", &format!("<head>{catch}"), 1)
        .replacen("</body>", &format!("{report}</body>"), 1)
}

/// Adds a listener that writes messages posted to the page into `<pre id="probe">`.
fn with_probe_listener(html: &str) -> String {
    let listener = r#"<script>window.addEventListener("message", function (e) { var p = document.createElement("pre"); p.id = "probe"; p.textContent = String(e.data); document.body.appendChild(p); });</script>"#;
    html.replacen("</body>", &format!("{listener}</body>"), 1)
}

fn text_of(doc: &Html, selector: &str) -> Vec<String> {
    let sel = Selector::parse(selector).unwrap();
    doc.select(&sel)
        .map(|e| e.text().collect::<String>())
        .collect()
}

fn count(doc: &Html, selector: &str) -> usize {
    doc.select(&Selector::parse(selector).unwrap()).count()
}

#[test]
fn sample_report_in_chromium_dom_and_screenshot() {
    let report = sample_report();
    let html = HtmlSink::new().render_to_string(&report).unwrap();
    // Sort by span name (A→Z) once the page has loaded: our own script at work.
    let click = r##"<script>document.querySelector("#span-table th:first-child button").click(); var p = document.createElement("pre"); p.id = "sorted"; p.textContent = Array.prototype.map.call(document.querySelectorAll("#span-table tbody tr"), function (r) { return r.getAttribute("data-path"); }).join("\n--\n"); document.body.appendChild(p);</script>"##;
    let probed = with_error_catcher(&html.replacen("</body>", &format!("{click}</body>"), 1));
    let dir = tempfile::tempdir().unwrap();
    let page = write_page(dir.path(), "sample.html", &probed);
    let dom = run_chromium(&page, &["--dump-dom".to_string()]);
    let doc = Html::parse_document(&dom);

    // Every span name is in the table, the hostile one as plain text.
    let leaves = text_of(&doc, "#span-table td.name .leaf");
    for s in &report.span_totals {
        assert!(
            leaves.contains(&s.name().to_string()),
            "{} missing from {leaves:?}",
            s.name()
        );
    }
    assert!(leaves.contains(&HOSTILE_NAME.to_string()));
    assert!(
        !dom.contains("<script>alert"),
        "a name's script became markup"
    );
    // No script error, no console error, nothing refused by the page's security policy.
    let errors = text_of(&doc, "#errors").concat();
    assert_eq!(errors, "", "errors in the page");
    assert_eq!(
        count(&doc, "#errors"),
        1,
        "the error catcher did not report"
    );
    // Nothing the report holds became an element: the only scripts are the page's own,
    // the probe and the error catcher; the note's raw <b> is text.
    assert_eq!(count(&doc, "script"), 4);
    assert_eq!(count(&doc, ".note b"), 0);
    assert!(text_of(&doc, ".note")
        .concat()
        .contains("<script>alert('note')</script>"));

    // Charts: 7 latency histograms, the system series, the metrics over time.
    assert_eq!(count(&doc, "#latency svg.plot"), report.span_totals.len());
    assert!(count(&doc, "#latency rect.bar") >= report.span_totals.len());
    assert!(
        count(&doc, "#system svg.plot") >= 3,
        "cpu, memory and process memory charts"
    );
    assert_eq!(count(&doc, "#metrics svg.plot"), 3);
    // 2 CPU, 2 memory, 1 process memory, fps and latency lines; the temperature has two
    // finite values with no finite neighbour: two dots.
    assert_eq!(count(&doc, "svg path.line"), 7);
    assert_eq!(count(&doc, "#metrics circle.dot"), 2);
    assert_eq!(count(&doc, "#timeline rect"), report.timeline.len());
    let cards = text_of(&doc, ".card-label");
    for label in [
        "Duration",
        "Spans recorded",
        "Mean FPS",
        "Peak CPU",
        "Peak memory",
    ] {
        assert!(
            cards.contains(&label.to_string()),
            "{label} card missing: {cards:?}"
        );
    }

    // Frames, near the top: a block per source, its charts and each incident's timeline
    // with the budget line.
    assert_eq!(
        count(&doc, "#frames article.frame-source"),
        report.frames.len()
    );
    let charts: usize = report
        .frames
        .iter()
        .map(|f| {
            usize::from(f.latency.summary.count > 0)
                + usize::from(f.budget_ns.is_some() && f.windows.iter().any(|w| w.finished > 0))
                + usize::from(f.jitter.summary.count > 0)
                + usize::from(!f.stages.is_empty())
                + f.incidents.len()
        })
        .sum();
    assert_eq!(count(&doc, "#frames svg.plot"), charts);
    let incidents: usize = report.frames.iter().map(|f| f.incidents.len()).sum();
    assert_eq!(
        count(&doc, "#frames figure.incident svg g.limit line"),
        incidents
    );
    assert_eq!(count(&doc, "#frames figure.incident"), incidents);
    let budgets = report
        .frames
        .iter()
        .filter(|f| f.budget_ns.is_some())
        .count();
    assert_eq!(count(&doc, "#frames .frame-latency g.limit"), budgets);
    let sources = text_of(&doc, "#frames h3 .leaf");
    assert!(sources.contains(&HOSTILE_NAME.to_string()), "{sources:?}");
    assert_eq!(
        text_of(&doc, "header .session-labels dd"),
        report.session.labels.values().cloned().collect::<Vec<_>>()
    );

    // The sort script ran: the rows are now in name order (capture, frame, decide, …).
    let sorted = text_of(&doc, "#sorted").concat();
    let names: Vec<&str> = sorted.split("\n--\n").collect();
    assert_eq!(names.len(), report.span_totals.len());
    let mut expected: Vec<String> = report
        .span_totals
        .iter()
        .map(|s| s.path.join(" › ").to_lowercase())
        .collect();
    expected.sort();
    let got: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    assert_eq!(got, expected);

    // A screenshot anyone can look at.
    let png = screenshot_dir().join("sample.png");
    let _ = std::fs::remove_file(&png);
    let clean = write_page(dir.path(), "sample-clean.html", &html);
    run_chromium(
        &clean,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,3200".to_string(),
        ],
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {}",
        png.display()
    );
    assert!(
        bytes.len() > 50_000,
        "suspiciously small screenshot ({} bytes)",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
}

/// Folded stacks of the report (thread;path… self-time), as the flame crate would write.
fn folded(report: &Report) -> Vec<String> {
    let clean = |s: &str| s.replace([';', '\n', '\r'], " ");
    report
        .spans
        .iter()
        .filter(|s| s.self_ns > 0)
        .map(|s| {
            let mut frames = vec![clean(s.thread.as_deref().unwrap_or("all"))];
            frames.extend(s.path.iter().map(|p| clean(p)));
            format!("{} {}", frames.join(";"), s.self_ns)
        })
        .collect()
}

/// An inferno flamegraph of the report.
fn inferno_svg(report: &Report) -> Result<String, RenderError> {
    let lines = folded(report);
    let mut svg = Vec::new();
    let mut options = inferno::flamegraph::Options::default();
    options.title = "line-3 inspection".to_string();
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)?;
    Ok(String::from_utf8(svg)?)
}

/// An inferno flamegraph, plus a probe script that zooms into `detect`, searches for `nms`
/// and posts what happened to the page.
fn inferno_with_probe(report: &Report) -> Result<String, RenderError> {
    let svg = inferno_svg(report)?;
    let probe = r#"<script type="text/ecmascript"><![CDATA[
window.addEventListener("load", function () {
  setTimeout(function () {
    var out = [];
    try {
      var groups = document.getElementById("frames").getElementsByTagName("g"), target = null;
      for (var i = 0; i < groups.length; i++) {
        var t = groups[i].getElementsByTagName("title")[0];
        if (t && t.textContent.indexOf("detect (") === 0) { target = groups[i]; break; }
      }
      var rect = target.getElementsByTagName("rect")[0];
      var before = rect.getAttribute("width");
      target.dispatchEvent(new MouseEvent("click", { bubbles: true }));
      out.push("zoom " + before + " -> " + rect.getAttribute("width"));
      search("nms");
      out.push("search " + document.getElementById("matched").textContent);
    } catch (e) { out.push("error " + e); }
    parent.postMessage("flame: " + out.join("; "), "*");
  }, 300);
});
]]></script>"#;
    // Before the root's end tag (the graph's frames are an inner <svg>).
    let end = svg.rfind("</svg>").ok_or("inferno wrote no </svg>")?;
    Ok(format!("{}{probe}{}", &svg[..end], &svg[end..]))
}

#[test]
fn flamegraph_script_zooms_and_searches_inside_the_report() {
    let report = sample_report();
    let sink = HtmlSink::new().with_flamegraph(Arc::new(inferno_with_probe));
    let html = sink.render_to_string(&report).unwrap();
    assert!(html.contains(r#"<iframe class="flame""#));
    let dir = tempfile::tempdir().unwrap();
    let page = write_page(dir.path(), "flame.html", &with_probe_listener(&html));
    // Virtual time lets the graph's timers run before the DOM is dumped; it only governs
    // frames in the page's own renderer process, so the sandboxed frame is kept in it.
    let dom = run_chromium(
        &page,
        &[
            "--virtual-time-budget=8000".to_string(),
            "--disable-site-isolation-trials".to_string(),
            "--dump-dom".to_string(),
        ],
    );
    let doc = Html::parse_document(&dom);
    let probe = text_of(&doc, "#probe").concat();
    assert!(
        probe.starts_with("flame: zoom "),
        "the flamegraph's script did not report: {probe:?}"
    );
    assert!(!probe.contains("error"), "{probe}");
    assert!(
        probe.contains("-> 100.0000%"),
        "clicking `detect` did not zoom to it: {probe}"
    );
    assert!(
        probe.contains("search Matched: "),
        "search did not report a match: {probe}"
    );

    // A screenshot of the page with its flamegraph (no probe: as a user sees it).
    let html = HtmlSink::new()
        .with_flamegraph(Arc::new(inferno_svg))
        .render_to_string(&report)
        .unwrap();
    let png = screenshot_dir().join("sample-flamegraph.png");
    let _ = std::fs::remove_file(&png);
    let clean = write_page(dir.path(), "flame-clean.html", &html);
    run_chromium(
        &clean,
        &[
            "--virtual-time-budget=4000".to_string(),
            "--disable-site-isolation-trials".to_string(),
            format!("--screenshot={}", png.display()),
            "--window-size=1280,5200".to_string(),
        ],
    );
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn merged_report_stations_table_in_chromium() {
    let report = heimdall_perf_testkit::fleet_report();
    let html = HtmlSink::new().render_to_string(&report).unwrap();
    // Sort by station name twice (Z→A): the table's rows are ours to sort.
    let click = r##"<script>var b = document.querySelector("#station-table th:first-child button"); b.click(); b.click(); var p = document.createElement("pre"); p.id = "sorted"; p.textContent = Array.prototype.map.call(document.querySelectorAll("#station-table tbody tr td.name"), function (c) { return c.textContent; }).join("\n--\n"); document.body.appendChild(p);</script>"##;
    let probed = with_error_catcher(&html.replacen("</body>", &format!("{click}</body>"), 1));
    let dir = tempfile::tempdir().unwrap();
    let page = write_page(dir.path(), "fleet.html", &probed);
    let dom = run_chromium(&page, &["--dump-dom".to_string()]);
    let doc = Html::parse_document(&dom);

    assert_eq!(text_of(&doc, "#errors").concat(), "", "errors in the page");
    assert_eq!(
        count(&doc, "#errors"),
        1,
        "the error catcher did not report"
    );
    assert_eq!(count(&doc, "#stations #station-table tbody tr"), 2);
    // The page's own script, the probe and the error catcher: no name became a script.
    assert_eq!(count(&doc, "script"), 4);
    let sorted = text_of(&doc, "#sorted").concat();
    let names: Vec<&str> = sorted.split("\n--\n").collect();
    assert_eq!(names, [HOSTILE_NAME, "east"]);
}
