//! Public behaviour of the HTML sink, checked on the parsed output (html5ever via scraper).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use heimdall_perf_core::stats::HistogramBucket;
use heimdall_perf_core::{Note, SeriesPoint, TimeSeries, TimelineSpan};
use heimdall_perf_core::{Registry, Report, ReportSink};
use heimdall_perf_report_html::{HtmlError, HtmlSink};
use heimdall_perf_testkit::{large_report, sample_report, HOSTILE_NAME};
use scraper::{ElementRef, Html, Selector};

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn texts(doc: &Html, selector: &str) -> Vec<String> {
    doc.select(&sel(selector))
        .map(|e| e.text().collect::<String>())
        .collect()
}

fn render(report: &Report) -> (String, Html) {
    let html = HtmlSink::new().render_to_string(report).unwrap();
    let doc = Html::parse_document(&html);
    (html, doc)
}

#[test]
fn sink_identity() {
    let sink = HtmlSink::new();
    assert_eq!(sink.format_id(), "html");
    assert_eq!(sink.file_extension(), "html");
    assert_eq!(
        (
            heimdall_perf_report_html::FORMAT_ID,
            heimdall_perf_report_html::FILE_EXTENSION
        ),
        ("html", "html")
    );
    assert_eq!(sink.origin(), "built-in");
    assert!(!sink.has_flamegraph());
    assert_eq!(format!("{sink:?}"), "HtmlSink { flamegraph: false }");
}

#[test]
fn hostile_names_and_notes_are_text_not_markup() {
    let report = sample_report();
    let (html, doc) = render(&report);
    assert!(!html.contains("<script>alert"), "raw script in the output");
    assert!(
        !html.contains("<b>html</b>"),
        "raw HTML from a note passed through"
    );
    // The only script element is the page's own.
    assert_eq!(doc.select(&sel("script")).count(), 1);
    // No element carries an event handler attribute.
    for e in doc
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
    {
        for (name, _) in e.value().attrs() {
            assert!(!name.starts_with("on"), "<{}> has {name}", e.value().name());
        }
    }
    // The hostile span name is shown, as text, in the table, the histogram and the timeline
    // tooltips.
    let leaves = texts(&doc, "#span-table .leaf");
    assert!(leaves.iter().any(|l| l == HOSTILE_NAME), "{leaves:?}");
    assert!(texts(&doc, "#latency figcaption .leaf").contains(&HOSTILE_NAME.to_string()));
    let row = doc
        .select(&sel("#span-table tbody tr"))
        .find(|r| {
            r.value()
                .attr("data-path")
                .is_some_and(|p| p.ends_with(HOSTILE_NAME))
        })
        .expect("row of the hostile span");
    assert_eq!(
        row.value().attr("data-path"),
        Some(format!("frame › {HOSTILE_NAME}").as_str())
    );
    // The note with raw HTML is shown as that text; the Markdown note is rendered.
    let notes = texts(&doc, "#notes .note");
    assert!(notes[1].contains("<script>alert('note')</script> raw <b>html</b> must not pass"));
    assert_eq!(texts(&doc, "#notes .note h2"), ["Observations"]);
    assert_eq!(texts(&doc, "#notes .note strong"), ["slow"]);
    assert_eq!(doc.select(&sel("#notes .note table td")).count(), 2);
    // Labels with backticks and pipes are intact.
    assert!(texts(&doc, "#metric-table .labels").contains(&"camera=cam-2 `left`".to_string()));
}

#[test]
fn page_is_self_contained() {
    let (html, doc) = render(&sample_report());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(doc.select(&sel("link, img, object, embed")).count(), 0);
    for e in doc
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
    {
        for attr in ["src", "href"] {
            if let Some(v) = e.value().attr(attr) {
                assert!(
                    v.starts_with('#') || v.starts_with("data:"),
                    "{attr}={v} loads something"
                );
            }
        }
    }
    assert!(!html.contains("@import") && !html.contains("url(http"));
    let csp = doc
        .select(&sel(r#"meta[http-equiv="Content-Security-Policy"]"#))
        .next()
        .and_then(|m| m.value().attr("content"))
        .unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(html.contains("@media print"));
}

#[test]
fn summary_cards_and_tables_hold_the_figures() {
    let report = sample_report();
    let (_, doc) = render(&report);
    let labels = texts(&doc, ".card-label");
    let values = texts(&doc, ".card-value");
    let card = |l: &str| {
        labels
            .iter()
            .position(|x| x == l)
            .map(|i| values[i].clone())
            .unwrap_or_else(|| panic!("no {l} card in {labels:?}"))
    };
    assert_eq!(card("Duration"), "10.0 s");
    assert_eq!(report.span_count(), 3612);
    assert_eq!(card("Spans recorded"), "3\u{202f}612");
    let fps = report.metric("fps").unwrap().summary.mean;
    assert_eq!(card("Mean FPS"), format!("{fps:.1} fps"));
    assert_eq!(card("Peak CPU"), "48.0 %");
    assert_eq!(card("Peak memory"), "3.81 GiB");

    // One row per span path, largest total first, with its count.
    let rows: Vec<ElementRef> = doc.select(&sel("#span-table tbody tr")).collect();
    assert_eq!(rows.len(), report.span_totals.len());
    for (row, s) in rows.iter().zip(&report.span_totals) {
        assert_eq!(
            row.value().attr("data-path"),
            Some(s.path.join(" › ").as_str())
        );
        let cells: Vec<ElementRef> = row.select(&sel("td")).collect();
        assert_eq!(
            cells[2].value().attr("data-v"),
            Some(s.count.to_string().as_str())
        );
        assert_eq!(
            cells[4].value().attr("data-v"),
            Some(s.total_ns.to_string().as_str())
        );
    }
    let frame = &texts(&doc, "#span-table tbody tr")[0];
    assert!(
        frame.contains("frame") && frame.contains("600") && frame.contains("60.0 /s"),
        "{frame}"
    );

    // Metrics: NaN and infinity survive as text; non-finite values are counted.
    let sensor = doc
        .select(&sel("#metric-table tbody tr"))
        .find(|r| r.text().any(|t| t == "sensor | temp"))
        .unwrap();
    let cells: Vec<String> = sensor
        .select(&sel("td"))
        .map(|c| c.text().collect())
        .collect();
    assert_eq!(cells[2], "NaN", "last value");
    assert_eq!(cells[10], "2", "non-finite count");
    assert_eq!(cells[4], "41.8 °C", "mean of the finite values");
}

#[test]
fn charts_are_drawn_with_units_on_their_axes() {
    let report = sample_report();
    let (_, doc) = render(&report);
    assert_eq!(
        doc.select(&sel("#latency svg")).count(),
        report.span_totals.len()
    );
    let titles = texts(&doc, "#system figcaption strong");
    assert_eq!(
        titles,
        ["CPU usage", "Machine memory", "Process memory (resident)"]
    );
    let axis_titles = texts(&doc, "#system .axis-title");
    assert!(axis_titles.contains(&"%".to_string()), "{axis_titles:?}");
    assert!(axis_titles.contains(&"GiB".to_string()), "{axis_titles:?}");
    assert!(axis_titles.contains(&"MiB".to_string()), "{axis_titles:?}");
    assert!(axis_titles.contains(&"time since session start".to_string()));
    let metric_axes = texts(&doc, "#metrics .axis-title");
    assert!(metric_axes.contains(&"fps".to_string()) && metric_axes.contains(&"ms".to_string()));
    // Histogram: the percentile markers and bucket tooltips in readable durations.
    let markers = texts(&doc, "#latency .marker text");
    assert_eq!(markers.len(), 3 * report.span_totals.len());
    let tips = texts(&doc, "#latency rect.bar title");
    assert!(
        tips.iter()
            .any(|t| t.contains(" ms – ") && t.contains("spans (")),
        "{tips:?}"
    );
    // Timeline: one bar per recent span.
    assert_eq!(
        doc.select(&sel("#timeline rect")).count(),
        report.timeline.len()
    );
}

#[test]
fn large_report_charts_are_downsampled() {
    let report = large_report(1000, 24, 100);
    let (html, doc) = render(&report);
    for path in doc.select(&sel("svg path.line")) {
        let d = path.value().attr("d").unwrap_or("");
        let points = d.matches(['M', 'L']).count();
        assert!(points <= 1000, "{points} points in one line");
    }
    for chart in doc.select(&sel("figure.chart")) {
        let points: usize = chart
            .select(&sel("path.line"))
            .map(|p| {
                p.value()
                    .attr("d")
                    .unwrap_or("")
                    .matches(['M', 'L'])
                    .count()
            })
            .sum();
        assert!(points <= 1000, "{points} points in one chart");
    }
    assert_eq!(doc.select(&sel("#span-table tbody tr")).count(), 1000);
    assert_eq!(doc.select(&sel("#latency svg")).count(), 12);
    assert!(html.len() < 2_500_000, "{} bytes", html.len());
}

fn odd_report() -> Report {
    let mut r = Report::empty("odd <session> & \"co\"");
    r.session.duration_ns = u64::MAX;
    let mut span = sample_report().span_totals[0].clone();
    span.path = vec!["<img src=x onerror=alert(1)>".into()];
    span.duration.mean = f64::NAN;
    span.duration.p99 = f64::INFINITY;
    span.histogram = vec![
        HistogramBucket { le: 0, count: 0 },
        HistogramBucket {
            le: u64::MAX,
            count: 3,
        },
    ];
    span.total_ns = u64::MAX;
    r.spans = vec![span.clone()];
    r.span_totals = vec![span];
    r.timeline = vec![
        TimelineSpan {
            span: 7,
            start_ns: 0,
            duration_ns: 1,
        },
        TimelineSpan {
            span: 0,
            start_ns: u64::MAX,
            duration_ns: u64::MAX,
        },
    ];
    let p = SeriesPoint::sample;
    r.series = vec![
        TimeSeries {
            name: "system.cpu.total".into(),
            unit: "%".into(),
            source: "system".into(),
            points: vec![],
        },
        TimeSeries {
            name: "queue <depth>".into(),
            unit: "bytes".into(),
            source: "user".into(),
            points: vec![p(0, f64::MAX), p(5, -f64::MAX), p(u64::MAX, f64::NAN)],
        },
    ];
    let mut m = sample_report().metrics[2].clone();
    m.points = vec![p(0, f64::NAN), p(1, f64::INFINITY)];
    m.summary = Default::default();
    m.last = f64::NEG_INFINITY;
    r.metrics = vec![m];
    r.notes = vec![Note {
        t_ns: u64::MAX,
        text: "[x](javascript:alert(1)) <iframe src=http://x></iframe> ![i](http://x/i.png)".into(),
    }];
    r.diagnostics.misnested_exits = 2;
    r.diagnostics
        .sampler_failures
        .insert("system/<cpu>".into(), 3);
    r
}

#[test]
fn odd_and_empty_reports_render_without_panicking() {
    let (html, doc) = render(&Report::empty(""));
    assert!(html.contains("No spans were recorded."));
    assert!(html.contains("No metrics were recorded."));
    assert_eq!(doc.select(&sel("svg")).count(), 0);

    let (html, doc) = render(&odd_report());
    assert!(!html.contains("<img src=x"), "span name became markup");
    assert!(
        !html.contains("<iframe src=http"),
        "note HTML became markup"
    );
    assert!(!html.to_ascii_lowercase().contains("javascript:"));
    assert_eq!(doc.select(&sel("img, iframe")).count(), 0);
    assert_eq!(texts(&doc, "h1"), ["odd <session> & \"co\""]);
    assert!(texts(&doc, "#system .empty").contains(&"No samples.".to_string()));
    assert!(texts(&doc, "#metrics .empty")
        .iter()
        .any(|t| t.contains("none of them a finite number")));
    let warnings = texts(&doc, ".warnings li");
    assert!(
        warnings.iter().any(|w| w.contains("system/<cpu>")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.starts_with("2 span ends")),
        "{warnings:?}"
    );
    // The out-of-range timeline entry is left out, the other drawn.
    assert_eq!(doc.select(&sel("#timeline rect")).count(), 1);
}

#[test]
fn flamegraph_is_embedded_in_a_sandboxed_frame() {
    let svg = r#"<?xml version="1.0"?><svg version="1.1" height="342" onload="init(evt)" xmlns="http://www.w3.org/2000/svg"><script><![CDATA[function init(evt){}]]></script><g id="frames"/></svg>"#;
    let sink = HtmlSink::new().with_flamegraph(Arc::new(move |_: &Report| Ok(svg.to_string())));
    assert!(sink.has_flamegraph());
    let html = sink.render_to_string(&sample_report()).unwrap();
    let doc = Html::parse_document(&html);
    let frames: Vec<ElementRef> = doc.select(&sel("#flamegraph iframe")).collect();
    assert_eq!(frames.len(), 1);
    let f = frames[0].value();
    assert_eq!(f.attr("sandbox"), Some("allow-scripts allow-modals"));
    assert_eq!(f.attr("height"), Some("346"));
    let src = f.attr("src").unwrap();
    let b64 = src.strip_prefix("data:image/svg+xml;base64,").unwrap();
    let decoded = decode_base64(b64);
    // The SVG is intact (its own script included), with the history shim before it.
    assert!(decoded.starts_with(r#"<?xml version="1.0"?><svg version="1.1" height="342""#));
    assert!(decoded
        .ends_with(r#"<script><![CDATA[function init(evt){}]]></script><g id="frames"/></svg>"#));
    assert!(decoded.contains("replaceState"));
    // Still one script in the page itself.
    assert_eq!(doc.select(&sel("script")).count(), 1);
    assert_eq!(
        texts(&doc, "nav a")
            .iter()
            .filter(|t| *t == "Flamegraph")
            .count(),
        1
    );
}

#[test]
fn flamegraph_failures_are_shown_and_the_page_still_written() {
    let report = sample_report();
    let failing = HtmlSink::new().with_flamegraph(Arc::new(|_: &Report| {
        Err("inferno said <script>alert(2)</script>".into())
    }));
    let html = failing.render_to_string(&report).unwrap();
    let doc = Html::parse_document(&html);
    let msg = texts(&doc, "#flamegraph .empty").concat();
    assert_eq!(
        msg,
        "The flamegraph could not be drawn: inferno said <script>alert(2)</script>"
    );
    assert!(!html.contains("<script>alert(2)"));

    // Any error type will do: the renderer hands over its error, not a string.
    let typed = HtmlSink::new().with_flamegraph(Arc::new(|_: &Report| {
        Err(std::io::Error::other("no space left for the SVG").into())
    }));
    let doc = Html::parse_document(&typed.render_to_string(&report).unwrap());
    assert_eq!(
        texts(&doc, "#flamegraph .empty").concat(),
        "The flamegraph could not be drawn: no space left for the SVG"
    );

    let not_svg =
        HtmlSink::new().with_flamegraph(Arc::new(|_: &Report| Ok("<html></html>".into())));
    let doc = Html::parse_document(&not_svg.render_to_string(&report).unwrap());
    assert!(texts(&doc, "#flamegraph .empty")
        .concat()
        .contains("no SVG document"));

    // With no spans the renderer is not even asked.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let counting = HtmlSink::new().with_flamegraph(Arc::new(move |_: &Report| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok("<svg/>".into())
    }));
    let doc = Html::parse_document(&counting.render_to_string(&Report::empty("e")).unwrap());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        texts(&doc, "#flamegraph .empty"),
        ["No spans were recorded: no flamegraph."]
    );
    counting.render_to_string(&report).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn write_errors_name_the_session() {
    let err = HtmlSink::new()
        .render(&sample_report(), &mut heimdall_perf_testkit::FullDisk)
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("line-3 inspection") && text.contains("disk full"),
        "{text}"
    );
    let typed = err.downcast_ref::<HtmlError>().unwrap();
    assert!(matches!(typed, HtmlError::Write { session, .. } if session == "line-3 inspection"));
    let cause = std::error::Error::source(typed).expect("the I/O error is kept as the source");
    assert!(
        cause.downcast_ref::<std::io::Error>().is_some(),
        "{cause:?}"
    );
}

#[test]
fn registered_sink_writes_a_file() {
    let registry = Registry::new();
    registry.register_sink(Arc::new(HtmlSink::new())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    registry
        .render_to_file(
            &sample_report(),
            &path,
            heimdall_perf_report_html::FORMAT_ID,
        )
        .unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        written,
        HtmlSink::new().render_to_string(&sample_report()).unwrap()
    );
}

fn decode_base64(s: &str) -> String {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let vals: Vec<u8> = chunk
            .iter()
            .filter(|&&c| c != b'=')
            .map(|&c| value(c))
            .collect();
        let n =
            vals.iter().fold(0u32, |acc, &v| (acc << 6) | u32::from(v)) << (6 * (4 - vals.len()));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..vals.len() - 1]);
    }
    String::from_utf8(out).unwrap()
}

/// Characters the HTML standard does not let a page carry: controls other than tab, line
/// feed, form feed and carriage return (C0, DEL, C1), and noncharacters.
fn forbidden_in_html(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\x0c' | '\r'))
        || ('\u{FDD0}'..='\u{FDEF}').contains(&c)
        || (c as u32) & 0xFFFE == 0xFFFE
}

/// Standard base64 decoding (the flamegraph's `data:` URL).
fn unbase64(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let vals: Vec<u32> = s
        .bytes()
        .filter(|b| *b != b'=')
        .map(|b| A.iter().position(|a| *a == b).expect("base64 digit") as u32)
        .collect();
    let mut out = Vec::new();
    for chunk in vals.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, v)| n | (v << (18 - 6 * i)));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn control_characters_and_noncharacters_never_reach_the_page() {
    let odd = |what: &str| format!("{what}\0nul\x01\x1b[0m\x7f\u{85}\u{FFFE}\u{FDD0}end");
    let mut report = sample_report();
    report.session.name = odd("session");
    report.session.host = odd("host");
    report.threads[0].name = odd("thread");
    for s in report.spans.iter_mut().chain(report.span_totals.iter_mut()) {
        if let Some(last) = s.path.last_mut() {
            *last = odd(last);
        }
        if let Some(t) = s.thread.as_mut() {
            *t = odd(t);
        }
    }
    for m in &mut report.metrics {
        m.name = odd(&m.name);
        m.unit = odd(&m.unit);
        m.labels.insert(odd("label"), odd("value"));
    }
    for s in &mut report.series {
        s.name = odd(&s.name);
        s.unit = odd(&s.unit);
        s.source = odd(&s.source);
    }
    report.notes.push(Note {
        t_ns: 1,
        text: odd("note `code\0` **bold\0**\n\n<b>\0</b>\n\n```\nblock\0\n```\n"),
    });
    report.session.labels.insert(odd("key"), odd("labelled"));
    for f in &mut report.frames {
        f.source = odd("source");
        f.dropped = [(odd("reason"), 1)].into();
        for st in &mut f.stages {
            st.name = odd("stage");
        }
        for a in &mut f.attribution {
            a.cause = odd("cause");
        }
        for i in &mut f.incidents {
            i.cause = odd("blamed");
            for st in &mut i.stages {
                st.thread = odd("lane");
            }
        }
    }
    let title = odd("flame title");
    let sink = HtmlSink::new().with_flamegraph(Arc::new(move |_r: &Report| {
        Ok(format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" height="200"><title>{title}</title><text>{title}</text></svg>"#
        ))
    }));
    let html = sink.render_to_string(&report).unwrap();

    // Byte level: no C0 control but tab, LF, CR (no NUL above all), no DEL.
    let bad: Vec<(usize, u8)> = html
        .bytes()
        .enumerate()
        .filter(|(_, b)| (*b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || *b == 0x7f)
        .collect();
    assert!(
        bad.is_empty(),
        "raw control bytes at {:?}",
        &bad[..bad.len().min(10)]
    );
    let bad: Vec<char> = html.chars().filter(|c| forbidden_in_html(*c)).collect();
    assert!(bad.is_empty(), "{bad:?}");

    // What a reader sees: the names with visible stand-ins, nothing dropped.
    let doc = Html::parse_document(&html);
    let shown = "\u{2400}nul\u{2401}\u{241b}[0m\u{2421}\u{FFFD}\u{FFFD}\u{FFFD}end";
    let h1 = texts(&doc, "h1").join("");
    assert_eq!(h1, format!("session{shown}"));
    let body = doc.root_element().text().collect::<String>();
    for what in [
        "host", "thread", "label", "value", "key", "labelled", "source", "reason", "stage",
        "cause", "blamed", "lane",
    ] {
        assert!(body.contains(&format!("{what}{shown}")), "{what} not shown");
    }
    assert!(texts(&doc, ".note code")
        .iter()
        .any(|t| t == "code\u{2400}"));
    assert!(texts(&doc, ".note pre")
        .iter()
        .any(|t| t.contains("block\u{2400}")));
    let leaves = texts(&doc, "#spans .leaf");
    assert!(leaves.iter().any(|t| t.ends_with(shown)), "{leaves:?}");
    let units = texts(&doc, ".unit");
    assert!(units.iter().any(|t| t.ends_with(shown)), "{units:?}");

    // The flamegraph document is clean XML too (a frame would not show it otherwise).
    let src = doc
        .select(&sel("iframe.flame"))
        .next()
        .expect("flamegraph frame")
        .value()
        .attr("src")
        .unwrap()
        .to_string();
    let svg = String::from_utf8(unbase64(
        src.strip_prefix("data:image/svg+xml;base64,").unwrap(),
    ))
    .unwrap();
    assert!(!svg.chars().any(forbidden_in_html), "{svg}");
    assert!(
        svg.contains(&format!("<title>flame title{shown}</title>")),
        "{svg}"
    );
}

#[test]
fn recording_diagnostics_are_listed() {
    let mut r = sample_report();
    r.diagnostics.abandoned_spans = 1;
    r.diagnostics.dropped_measurements = 40;
    r.diagnostics
        .sampler_failures
        .insert("system/<cpu>".into(), 3);
    let (html, doc) = render(&r);
    let page_text: String = doc.root_element().text().collect();
    let warnings = r.diagnostics.warnings();
    assert_eq!(warnings.len(), 3);
    for w in warnings {
        assert!(page_text.contains(&w), "{w:?} not on the page");
    }
    assert!(!html.contains("<cpu>"), "a figure name became markup");
}

// ---------------------------------------------------------------------------------------
// Frames

use heimdall_perf_core::units::{Style, Unit};
use heimdall_perf_core::{Distribution, FrameReport, FrameWindow, Incident, StageReport};

const FIG: Style = Style::Typographic;

/// The article of the `i`-th frame source.
fn source_block(doc: &Html, i: usize) -> ElementRef<'_> {
    doc.select(&sel(&format!("#frames article#frames-{i}")))
        .next()
        .unwrap_or_else(|| panic!("no block for frame source {i}"))
}

fn texts_in(e: ElementRef<'_>, selector: &str) -> Vec<String> {
    e.select(&sel(selector))
        .map(|e| e.text().collect::<String>())
        .collect()
}

/// `label` → value of the cards in `block`.
fn card_in(block: ElementRef<'_>, label: &str) -> (String, String) {
    block
        .select(&sel(".card"))
        .find(|c| texts_in(*c, ".card-label") == [label])
        .map(|c| {
            (
                texts_in(c, ".card-value").concat(),
                texts_in(c, ".card-detail").concat(),
            )
        })
        .unwrap_or_else(|| panic!("no {label} card"))
}

fn num(v: Option<&str>) -> f64 {
    v.and_then(|v| v.parse().ok()).expect("a number attribute")
}

#[test]
fn session_labels_are_in_the_header_as_text() {
    let report = sample_report();
    let (html, doc) = render(&report);
    let keys = texts(&doc, "header .session-labels dt");
    let values = texts(&doc, "header .session-labels dd");
    let expected: Vec<(String, String)> = report.session.labels.clone().into_iter().collect();
    assert_eq!(
        keys.into_iter().zip(values).collect::<Vec<_>>(),
        expected,
        "labels in key order, values as text"
    );
    // The hostile value (`<b>"east"</b>`) stayed text.
    assert!(expected.iter().any(|(_, v)| v.contains("<b>")));
    assert_eq!(doc.select(&sel("header b")).count(), 0);
    assert!(!html.contains("<b>\"east\""));
}

#[test]
fn frames_section_shows_the_sample_figures() {
    let report = sample_report();
    let (_, doc) = render(&report);
    // Near the top: right after the summary, before the spans; linked from the navigation.
    let sections: Vec<&str> = doc
        .select(&sel("main > section"))
        .filter_map(|s| s.value().attr("id"))
        .collect();
    assert_eq!(
        &sections[..3],
        ["summary", "frames", "spans"],
        "{sections:?}"
    );
    assert!(texts(&doc, "nav a").contains(&"Frames".to_string()));
    assert_eq!(
        doc.select(&sel("#frames article.frame-source")).count(),
        report.frames.len()
    );

    let cam = report.frame_source("cam-0").unwrap();
    let i = report
        .frames
        .iter()
        .position(|f| f.source == "cam-0")
        .unwrap();
    let block = source_block(&doc, i);
    assert_eq!(texts_in(block, "h3 .leaf"), ["cam-0"]);
    let percent = Unit::parse("%");

    // Headline figures.
    let (rate, detail) = card_in(block, "Miss rate");
    assert_eq!(rate, FIG.value(cam.miss_rate * 100.0, &percent));
    assert_eq!(rate, "5.02 %");
    assert!(detail.contains(&format!(
        "{} missed of {} finished",
        cam.missed, cam.finished
    )));
    assert!(detail.contains(&format!("longest streak {}", cam.longest_miss_streak)));
    let (p99, detail) = card_in(block, "Latency p99");
    assert_eq!(p99, FIG.duration(cam.latency.summary.p99));
    assert!(detail.contains(&format!("p50 {}", FIG.duration(cam.latency.summary.p50))));
    let budget = cam.budget_ns.unwrap() as f64;
    assert_eq!(card_in(block, "Budget").0, FIG.duration(budget));
    let (begun, detail) = card_in(block, "Frames begun");
    assert_eq!(begun, FIG.count(cam.count));
    assert!(detail.contains(&format!("{} in flight", cam.in_flight)));
    let (dropped, detail) = card_in(block, "Dropped");
    assert_eq!(dropped, FIG.count(cam.dropped_total()));
    for (reason, n) in &cam.dropped {
        assert!(detail.contains(&format!("{reason}: {n}")), "{detail}");
    }

    // Latency and jitter histograms, each with its limit line where the budget is.
    let limits = texts_in(block, "svg.hist g.limit text");
    assert_eq!(
        limits,
        [
            format!("budget {}", FIG.duration(budget)),
            format!("period {}", FIG.duration(budget))
        ]
    );
    assert!(texts_in(block, ".frame-jitter figcaption")
        .concat()
        .contains(&format!("σ {}", FIG.duration(cam.jitter.summary.stddev))));
    let bars = block.select(&sel(".frame-latency rect.bar")).count();
    assert!(bars >= 2, "{bars} latency bars");

    // Miss rate over time: a bar per window with finished frames.
    let miss_tips = texts_in(block, ".frame-misses rect.miss title");
    let windows: Vec<&FrameWindow> = cam.windows.iter().filter(|w| w.finished > 0).collect();
    assert_eq!(miss_tips.len(), windows.len());
    for (tip, w) in miss_tips.iter().zip(&windows) {
        assert!(
            tip.contains(&format!("{} of {} frames missed", w.missed, w.finished)),
            "{tip}"
        );
    }
    // Taller bars for higher rates.
    let heights: Vec<f64> = block
        .select(&sel(".frame-misses rect.miss"))
        .map(|r| num(r.value().attr("height")))
        .collect();
    let worst = windows
        .iter()
        .enumerate()
        .max_by(|a, b| {
            let r = |w: &FrameWindow| w.missed as f64 / w.finished as f64;
            r(a.1).total_cmp(&r(b.1))
        })
        .unwrap()
        .0;
    assert_eq!(
        heights.iter().cloned().fold(0.0, f64::max),
        heights[worst],
        "{heights:?}"
    );

    // Stages: a stacked bar pair per stage and a table row with its figures.
    let rows: Vec<ElementRef> = block.select(&sel(".stage-table tbody tr")).collect();
    assert_eq!(rows.len(), cam.stages.len());
    assert_eq!(
        block.select(&sel(".stage-breakdown rect.service")).count(),
        cam.stages.len()
    );
    assert_eq!(
        block.select(&sel(".stage-breakdown rect.queue")).count(),
        cam.stages.len()
    );
    for (row, s) in rows.iter().zip(&cam.stages) {
        let cells = texts_in(*row, "td");
        assert_eq!(cells[0], s.name);
        assert_eq!(cells[3], FIG.duration(s.service.summary.p50));
        assert_eq!(cells[6], FIG.duration(s.queue.summary.p99));
        if s.budget_ns.is_some() {
            assert!(cells[7].starts_with(&FIG.count(s.over_budget)), "{cells:?}");
        } else {
            assert_eq!(cells[7], "—");
        }
    }
    let with_budget = cam.stages.iter().filter(|s| s.budget_ns.is_some()).count();
    assert_eq!(
        block.select(&sel(".stage-breakdown .stage-budget")).count(),
        with_budget
    );

    // Attribution: cause, missed frames, share of the misses.
    let rows: Vec<Vec<String>> = block
        .select(&sel(".attribution-table tbody tr"))
        .map(|r| texts_in(r, "td"))
        .collect();
    let expected: Vec<Vec<String>> = cam
        .attribution
        .iter()
        .map(|a| {
            vec![
                a.cause.clone(),
                FIG.count(a.missed),
                FIG.value(a.missed as f64 * 100.0 / cam.missed as f64, &percent),
            ]
        })
        .collect();
    assert_eq!(rows, expected);
    assert!(rows.iter().any(|r| r[0] == "queue before detect"));

    // Incidents: one timeline each, with the budget line, the finish, the frames before.
    let incidents: Vec<ElementRef> = block.select(&sel("figure.incident")).collect();
    assert_eq!(incidents.len(), cam.incidents.len());
    for (fig, inc) in incidents.iter().zip(&cam.incidents) {
        let caption = texts_in(*fig, "figcaption").concat();
        assert!(
            caption.contains(&format!("Frame {}", inc.frame_id)),
            "{caption}"
        );
        assert_eq!(texts_in(*fig, "figcaption .cause"), [inc.cause.as_str()]);
        for s in &inc.system {
            assert!(caption.contains(&s.name), "{caption}");
        }
        assert!(caption.contains("system.cpu.total 47.0 %"), "{caption}");
        let svg = fig.select(&sel("svg.incident-timeline")).next().unwrap();
        let budget_line = svg
            .select(&sel("g.limit line"))
            .next()
            .expect("budget line");
        let finish_line = svg.select(&sel("g.finish line")).next().expect("finish");
        assert_eq!(
            texts_in(svg, "g.limit text"),
            [format!("budget {}", FIG.duration(inc.budget_ns as f64))]
        );
        // Both on the same scale from the capture: budget / latency.
        let left = num(svg
            .select(&sel(".lane-line"))
            .next()
            .unwrap()
            .value()
            .attr("x1"));
        let bx = num(budget_line.value().attr("x1")) - left;
        let fx = num(finish_line.value().attr("x1")) - left;
        let want = inc.budget_ns as f64 / inc.latency_ns as f64;
        assert!((bx / fx - want).abs() < 0.01, "{} vs {want}", bx / fx);
        // Lanes: one faint row per frame before, one per thread of the missed frame.
        let threads: std::collections::BTreeSet<u64> =
            inc.stages.iter().map(|s| s.thread_id).collect();
        assert_eq!(
            svg.select(&sel("text.lane.faint-label")).count(),
            inc.previous.len()
        );
        assert_eq!(
            svg.select(&sel("text.lane:not(.faint-label)")).count(),
            threads.len()
        );
        let stage_bars =
            inc.stages.len() + inc.previous.iter().map(|p| p.stages.len()).sum::<usize>();
        assert_eq!(svg.select(&sel("g.spans rect")).count(), stage_bars);
        assert_eq!(
            svg.select(&sel("g.spans rect.faint")).count(),
            stage_bars - inc.stages.len()
        );
        // The waits are drawn, the long one before `detect` of a queue incident too.
        let waits = inc.stages.iter().filter(|s| s.queue_ns > 0).count();
        assert!(svg.select(&sel("g.waits rect")).count() >= waits);
        assert!(svg.select(&sel("rect.overrun")).next().is_some());
    }
    let queue_incident = cam
        .incidents
        .iter()
        .position(|i| i.cause == "queue before detect")
        .unwrap();
    let tips = texts_in(incidents[queue_incident], "g.waits rect title");
    assert!(
        tips.iter()
            .any(|t| t.contains("waited 13.0 ms before detect")),
        "{tips:?}"
    );
}

#[test]
fn hostile_frame_names_stay_text() {
    let mut report = sample_report();
    // Hostile names everywhere the frames carry text, besides the sample's own.
    let cam = &mut report.frames[0];
    cam.stages[1].name = HOSTILE_NAME.to_string();
    cam.attribution[0].cause = HOSTILE_NAME.to_string();
    cam.incidents[0].cause = HOSTILE_NAME.to_string();
    for s in &mut cam.incidents[0].stages {
        s.thread = HOSTILE_NAME.to_string();
    }
    cam.incidents[0].stages[1].name = HOSTILE_NAME.to_string();
    // A headline figure (the ones an incident shows) with a hostile unit.
    cam.incidents[0].system[0].unit = "<i>u</i>".to_string();
    report
        .session
        .labels
        .insert(HOSTILE_NAME.to_string(), HOSTILE_NAME.to_string());
    let (html, doc) = render(&report);
    assert!(!html.contains("<script>alert"), "raw script in the output");
    assert_eq!(doc.select(&sel("script")).count(), 1);
    assert_eq!(
        doc.select(&sel("#frames i, #frames b, header b")).count(),
        0
    );

    // The hostile source (the sample's second) and its drop reason, as text.
    let odd = report
        .frames
        .iter()
        .position(|f| f.source == HOSTILE_NAME)
        .unwrap();
    let block = source_block(&doc, odd);
    assert_eq!(texts_in(block, "h3 .leaf"), [HOSTILE_NAME]);
    let (dropped, detail) = card_in(block, "Dropped");
    assert_eq!(dropped, "1");
    assert_eq!(detail, format!("{HOSTILE_NAME}: 1"));
    assert_eq!(texts_in(block, ".stage-table .leaf"), [HOSTILE_NAME]);
    // The aria labels carry it intact too.
    let aria: Vec<&str> = block
        .select(&sel("svg"))
        .filter_map(|s| s.value().attr("aria-label"))
        .collect();
    assert!(aria.iter().any(|a| a.ends_with(HOSTILE_NAME)), "{aria:?}");

    // And in the first source: table cells, captions, lanes, tooltips.
    let block = source_block(&doc, 0);
    assert!(texts_in(block, ".stage-table .leaf").contains(&HOSTILE_NAME.to_string()));
    assert!(texts_in(block, ".attribution-table .cause").contains(&HOSTILE_NAME.to_string()));
    let incident = block.select(&sel("figure.incident")).next().unwrap();
    assert_eq!(texts_in(incident, "figcaption .cause"), [HOSTILE_NAME]);
    assert!(texts_in(incident, "figcaption")
        .concat()
        .contains("<i>u</i>"));
    let lanes = texts_in(incident, "text.lane");
    assert!(
        lanes
            .iter()
            .any(|l| HOSTILE_NAME.starts_with(l.trim_end_matches('…'))),
        "{lanes:?}"
    );
    assert!(texts_in(incident, "g.spans rect title")
        .iter()
        .any(|t| t.contains(HOSTILE_NAME)));
    let labels = texts(&doc, "header .session-labels dt");
    assert!(labels.contains(&HOSTILE_NAME.to_string()));
    for e in doc
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
    {
        for (name, _) in e.value().attrs() {
            assert!(!name.starts_with("on"), "<{}> has {name}", e.value().name());
        }
    }
}

#[test]
fn reports_without_frames_have_no_frames_section() {
    // No sources.
    let mut report = sample_report();
    report.frames.clear();
    report.session.labels.clear();
    let (_, doc) = render(&report);
    assert_eq!(doc.select(&sel("#frames")).count(), 0);
    assert!(!texts(&doc, "nav a").contains(&"Frames".to_string()));
    assert_eq!(doc.select(&sel(".session-labels")).count(), 0);
    assert_eq!(texts(&doc, "main > section").len(), {
        let (_, full) = render(&sample_report());
        full.select(&sel("main > section")).count() - 1
    });

    // A report of schema 1 (no `frames`, no `labels`) read back.
    let mut json = serde_json::to_value(sample_report()).unwrap();
    let obj = json.as_object_mut().unwrap();
    obj.remove("frames");
    obj.insert("schema_version".into(), 1.into());
    obj["session"].as_object_mut().unwrap().remove("labels");
    let old: Report = serde_json::from_value(json).unwrap();
    assert!(old.frames.is_empty() && old.session.labels.is_empty());
    let (html, doc) = render(&old);
    assert_eq!(doc.select(&sel("#frames")).count(), 0);
    assert!(texts(&doc, ".facts dd")
        .contains(&"heimdall-perf-core 0.1.0 (report schema 1)".to_string()));
    assert!(html.contains("</html>"));
    assert_eq!(
        doc.select(&sel("#span-table tbody tr")).count(),
        old.span_totals.len()
    );
}

fn empty_distribution() -> Distribution {
    Distribution::default()
}

/// A source with no budget, no stage, no finished frame, no window.
fn bare_source(name: &str) -> FrameReport {
    FrameReport {
        source: name.to_string(),
        count: 3,
        finished: 0,
        dropped: Default::default(),
        in_flight: 3,
        budget_ns: None,
        missed: 0,
        miss_rate: f64::NAN,
        longest_miss_streak: 0,
        latency: empty_distribution(),
        jitter: empty_distribution(),
        stages: Vec::new(),
        attribution: Vec::new(),
        incidents: Vec::new(),
        windows: Vec::new(),
    }
}

#[test]
fn odd_frame_sources_render_without_panicking() {
    let mut report = Report::empty("frames only");
    let sample = sample_report();
    let cam = sample.frame_source("cam-0").unwrap();

    // No budget, no stage, nothing finished.
    let bare = bare_source("bare");
    // A budget, but zero finished frames and windows with none.
    let mut starved = bare_source("starved");
    starved.budget_ns = Some(16_666_667);
    starved.windows = vec![FrameWindow {
        t_ns: 0,
        duration_ns: 1_000_000_000,
        finished: 0,
        missed: 0,
    }];
    // Misses but nothing to show for them: no attribution, an incident with no stage and
    // no frame before it, a zero budget, a stage whose figures are NaN, huge values.
    let mut broken = cam.clone();
    broken.source = "broken".into();
    broken.attribution.clear();
    broken.miss_rate = f64::INFINITY;
    broken.budget_ns = Some(0);
    broken.windows.push(FrameWindow {
        t_ns: u64::MAX,
        duration_ns: u64::MAX,
        finished: u64::MAX,
        missed: u64::MAX,
    });
    broken.stages.push(StageReport {
        name: "nan".into(),
        budget_ns: Some(u64::MAX),
        service: Distribution {
            summary: heimdall_perf_core::stats::Summary {
                count: 1,
                p50: f64::NAN,
                p99: f64::INFINITY,
                ..Default::default()
            },
            histogram: Vec::new(),
        },
        queue: empty_distribution(),
        over_budget: 1,
    });
    broken.incidents = vec![Incident {
        stages: Vec::new(),
        previous: Vec::new(),
        system: Vec::new(),
        budget_ns: 0,
        latency_ns: u64::MAX,
        ..cam.incidents[0].clone()
    }];
    // A stage with no run at all.
    let mut idle = cam.clone();
    idle.source = "idle".into();
    idle.stages.truncate(1);
    idle.stages[0].service = empty_distribution();
    idle.stages[0].queue = empty_distribution();
    report.frames = vec![bare, starved, broken, idle];
    let (html, doc) = render(&report);
    assert!(html.contains("</html>"));
    assert_eq!(doc.select(&sel("#frames article")).count(), 4);

    let bare = source_block(&doc, 0);
    assert_eq!(card_in(bare, "Miss rate").0, "—");
    assert_eq!(card_in(bare, "Latency p99").0, "—");
    assert_eq!(card_in(bare, "Budget").0, "none");
    assert!(texts_in(bare, ".frame-latency .empty")
        .concat()
        .contains("No frame finished"));
    assert!(texts_in(bare, ".frame-misses .empty")
        .concat()
        .contains("No budget set"));
    assert!(texts_in(bare, ".frame-jitter .empty")
        .concat()
        .contains("no interval"));
    assert!(texts_in(bare, ".frame-stages .empty")
        .concat()
        .contains("No stage"));
    assert_eq!(bare.select(&sel("svg")).count(), 0);
    assert_eq!(bare.select(&sel("table")).count(), 0);
    assert_eq!(
        bare.select(&sel("g.limit")).count(),
        0,
        "no budget, no line"
    );

    let starved = source_block(&doc, 1);
    assert!(texts_in(starved, ".frame-misses .empty")
        .concat()
        .contains("No frame finished"));
    assert_eq!(
        card_in(starved, "Miss rate"),
        ("—".to_string(), "no frame finished".to_string())
    );

    let broken = source_block(&doc, 2);
    assert!(texts_in(broken, "h4 + .empty")
        .concat()
        .contains("No cause was recorded"));
    let incident = broken.select(&sel("figure.incident")).next().unwrap();
    assert_eq!(texts_in(incident, "text.lane"), ["(no stage recorded)"]);
    assert_eq!(
        incident.select(&sel("g.limit")).count(),
        0,
        "a zero budget draws no line"
    );
    assert!(!html.contains("NaN\""), "a NaN coordinate");
    for e in doc.select(&sel("#frames svg [x], #frames svg [width]")) {
        for a in ["x", "width", "x1", "y"] {
            if let Some(v) = e.value().attr(a) {
                assert!(v.parse::<f64>().is_ok_and(f64::is_finite), "{a}={v}");
            }
        }
    }
    let idle = source_block(&doc, 3);
    let cells = texts_in(idle, ".stage-table tbody td");
    assert_eq!(cells[1], "0", "no run");
    assert_eq!(cells[3], "—", "no median");
}
