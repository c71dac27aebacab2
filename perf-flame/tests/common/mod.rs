//! Helpers shared by the integration tests: hand-built reports and an SVG reader.
#![allow(dead_code)]

use heimdall_perf_core::{stats::Summary, Report};
use heimdall_perf_core::{SpanStats, ThreadInfo};

/// A span path with known self and total times (µs; weighed in ns, ×1000), on `thread`
/// (`None`: merged).
pub fn span(thread: Option<(u64, &str)>, path: &[&str], self_us: u64, total_us: u64) -> SpanStats {
    SpanStats {
        thread_id: thread.map(|t| t.0),
        thread: thread.map(|t| t.1.to_string()),
        path: path.iter().map(|s| s.to_string()).collect(),
        count: 1,
        total_ns: total_us * 1000,
        self_ns: self_us * 1000,
        duration: Summary::default(),
        histogram: Vec::new(),
    }
}

/// A report named `name` holding `spans` (threads listed from them).
pub fn report(name: &str, spans: Vec<SpanStats>) -> Report {
    let mut r = Report::empty(name);
    r.session.duration_ns = 2_500_000_000;
    for s in &spans {
        if let (Some(id), Some(n)) = (s.thread_id, &s.thread) {
            if !r.threads.iter().any(|t| t.id == id) {
                r.threads.push(ThreadInfo {
                    id,
                    name: n.clone(),
                });
            }
        }
    }
    r.spans = spans;
    r
}

pub const PROC: Option<(u64, &str)> = Some((2, "processing"));
pub const CAM: Option<(u64, &str)> = Some((1, "camera"));

/// A camera thread and a processing thread with whole-microsecond times.
pub fn known_report() -> Report {
    report(
        "known",
        vec![
            span(CAM, &["capture"], 2000, 2000),
            span(PROC, &["frame"], 1000, 7500),
            span(PROC, &["frame", "detect"], 5000, 6000),
            span(PROC, &["frame", "detect", "nms"], 1000, 1000),
            span(PROC, &["frame", "decide"], 500, 500),
        ],
    )
}

/// One drawn frame of an inferno SVG.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Frame name (the `<title>` without its `(6.00 ms, …%)` suffix).
    pub name: String,
    /// The whole `<title>` text.
    pub title: String,
    /// `fill` of the rectangle.
    pub fill: String,
    /// Width in samples (`fg:w`): ns.
    pub w: u64,
    /// Start in samples (`fg:x`): ns.
    pub x: u64,
    /// `y` of the rectangle, pixels.
    pub y: u64,
}

const FG: &str = "http://github.com/jonhoo/inferno";

/// Parses `svg` as XML (inferno writes a DOCTYPE), panicking with the parser's message.
pub fn parse(svg: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    match roxmltree::Document::parse_with_options(svg, opts) {
        Ok(d) => d,
        Err(e) => panic!("the SVG is not well-formed XML: {e}\n{svg}"),
    }
}

/// Every frame (`<g><title/><rect/>…</g>`) of a parsed inferno SVG.
pub fn frames(doc: &roxmltree::Document<'_>) -> Vec<Frame> {
    doc.descendants()
        .filter(|n| n.has_tag_name("g"))
        .filter_map(|g| {
            let title = g
                .children()
                .find(|c| c.has_tag_name("title"))?
                .text()?
                .to_string();
            let rect = g.children().find(|c| c.has_tag_name("rect"))?;
            let name = match title.rfind(" (") {
                Some(i) => title[..i].to_string(),
                None => title.clone(),
            };
            let num = |a: Option<&str>| a.and_then(|v| v.parse::<f64>().ok()).unwrap_or(-1.0);
            Some(Frame {
                name,
                fill: rect.attribute("fill").unwrap_or_default().to_string(),
                w: num(rect.attribute((FG, "w"))) as u64,
                x: num(rect.attribute((FG, "x"))) as u64,
                y: num(rect.attribute("y")) as u64,
                title,
            })
        })
        .collect()
}

/// The frame named `name`; panics if there is not exactly one.
pub fn one<'a>(frames: &'a [Frame], name: &str) -> &'a Frame {
    let found: Vec<&Frame> = frames.iter().filter(|f| f.name == name).collect();
    assert_eq!(found.len(), 1, "frames named {name:?}: {found:#?}");
    found[0]
}

/// `rgb(r,g,b)` → (r, g, b).
pub fn rgb(fill: &str) -> (u8, u8, u8) {
    let inner = fill
        .strip_prefix("rgb(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not an rgb() fill: {fill}"));
    let v: Vec<u8> = inner
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect();
    (v[0], v[1], v[2])
}

/// Text of the element with `id`.
pub fn text_by_id(doc: &roxmltree::Document<'_>, id: &str) -> String {
    doc.descendants()
        .find(|n| n.attribute("id") == Some(id))
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_string()
}
