//! Public behaviour of heimdall-perf-flame on hand-built reports with known times.

mod common;

use common::*;
use heimdall_perf_core::{Report, ReportSink};
use heimdall_perf_flame::*;
use heimdall_perf_testkit::{self as fixtures, HOSTILE_NAME};

fn sink(opts: &FlameOptions) -> FlamegraphSink {
    FlamegraphSink::new().with_options(opts.clone())
}

fn svg(report: &Report, opts: &FlameOptions) -> String {
    sink(opts).render_to_string(report).unwrap()
}

/// The error drawing `report` with `opts` gives, as the flamegraph's own error.
fn svg_error(report: &Report, opts: &FlameOptions) -> FlameError {
    let e = sink(opts).render_to_string(report).unwrap_err();
    match e.downcast::<FlameError>() {
        Ok(e) => *e,
        Err(e) => panic!("not a FlameError: {e}"),
    }
}

/// The differential flamegraph from `before` to `after`.
fn diff_svg(before: &Report, after: &Report, opts: &FlameOptions) -> String {
    let mut out = Vec::new();
    sink(opts).render_diff(before, after, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn all_frames() -> FlameOptions {
    FlameOptions::default().with_min_width_percent(0.0)
}

fn stacks(lines: &[FoldedLine]) -> Vec<String> {
    lines.iter().map(|l| l.as_str().to_string()).collect()
}

#[test]
fn known_times_give_exact_folded_lines() {
    let lines = fold(&known_report(), &FlameOptions::default());
    assert_eq!(
        stacks(&lines),
        [
            "camera;capture 2000000",
            "processing;frame 1000000",
            "processing;frame;decide 500000",
            "processing;frame;detect 5000000",
            "processing;frame;detect;nms 1000000",
        ]
    );
    // The folded sink writes exactly these lines.
    let mut out = Vec::new();
    FoldedSink::new().render(&known_report(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text, stacks(&lines).join("\n") + "\n");
    assert_eq!(FoldedSink::new().format_id(), "folded");
    assert_eq!(FoldedSink::new().file_extension(), "folded");
    assert_eq!(FlamegraphSink::new().format_id(), "flamegraph");
    assert_eq!(FlamegraphSink::new().file_extension(), "svg");
    assert_eq!(
        (
            FORMAT_ID,
            FILE_EXTENSION,
            FOLDED_FORMAT_ID,
            FOLDED_FILE_EXTENSION
        ),
        ("flamegraph", "svg", "folded", "folded")
    );
}

#[test]
fn sub_microsecond_times_add_up_exactly() {
    // 1000 leaves of 400 ns each: in µs each would have weighed 0 and vanished (or, rounded
    // as a running sum, 400 of them 1 µs and the rest 0). In ns each weighs exactly its
    // time, so every leaf is drawn and the parent is exactly their sum.
    let mut spans = vec![span(PROC, &["frame"], 0, 400)];
    let names: Vec<String> = (0..1000).map(|i| format!("leaf_{i:04}")).collect();
    for n in &names {
        let mut s = span(PROC, &["frame", n], 0, 0);
        s.self_ns = 400;
        s.total_ns = 400;
        spans.push(s);
    }
    let r = report("tiny", spans);
    let lines = fold(&r, &FlameOptions::default());
    assert_eq!(
        lines.len(),
        1000,
        "one line per leaf, none for the timeless parent"
    );
    for (line, name) in lines.iter().zip(&names) {
        assert_eq!(line.as_str(), format!("processing;frame;{name} 400"));
        assert_eq!(line.weight_ns(), 400);
    }
    let doc_text = svg(&r, &all_frames());
    let doc = parse(&doc_text);
    let f = frames(&doc);
    assert_eq!(one(&f, "frame").w, 400_000);
    assert_eq!(one(&f, "frame").title, "frame (400 µs, 100.00%)");
    for name in &names {
        let leaf = one(&f, name);
        assert_eq!(leaf.w, 400, "{name}");
        assert_eq!(leaf.title, format!("{name} (400 ns, 0.10%)"));
    }
}

#[test]
fn frame_widths_are_total_times() {
    let text = svg(&known_report(), &all_frames());
    let doc = parse(&text);
    let f = frames(&doc);
    assert_eq!(one(&f, "processing").w, 7_500_000);
    assert_eq!(one(&f, "frame").w, 7_500_000);
    assert_eq!(one(&f, "detect").w, 6_000_000);
    assert_eq!(one(&f, "nms").w, 1_000_000);
    assert_eq!(one(&f, "decide").w, 500_000);
    assert_eq!(one(&f, "capture").w, 2_000_000);
    // Widths count ns; tooltips read as durations, as everywhere else in the report.
    assert_eq!(one(&f, "detect").title, "detect (6.00 ms, 63.16%)");
    assert_eq!(one(&f, "decide").title, "decide (500 µs, 5.26%)");
    assert_eq!(one(&f, "all").title, "all (9.50 ms, 100%)");
    assert!(
        text_by_id(&doc, "subtitle").ends_with(" · 5 spans · width: total time"),
        "{}",
        text_by_id(&doc, "subtitle")
    );
    let total = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("frames"))
        .and_then(|n| n.attribute("total_samples"))
        .unwrap();
    assert_eq!(total, "9500000");
}

#[test]
fn two_threads_give_two_roots_and_merging_gives_one_tree() {
    let r = report(
        "two",
        vec![
            span(Some((1, "cam-left")), &["frame"], 1000, 4000),
            span(Some((1, "cam-left")), &["frame", "detect"], 3000, 3000),
            span(Some((2, "cam-right")), &["frame"], 500, 2500),
            span(Some((2, "cam-right")), &["frame", "detect"], 2000, 2000),
        ],
    );
    let per_thread = fold(&r, &FlameOptions::default());
    assert_eq!(
        stacks(&per_thread),
        [
            "cam-left;frame 1000000",
            "cam-left;frame;detect 3000000",
            "cam-right;frame 500000",
            "cam-right;frame;detect 2000000",
        ]
    );
    let doc_text = svg(&r, &all_frames());
    let doc = parse(&doc_text);
    let f = frames(&doc);
    let all = f.iter().find(|f| f.name == "all").unwrap();
    // Roots sit one row above "all".
    let mut roots: Vec<&str> = f
        .iter()
        .filter(|x| x.y + 16 == all.y)
        .map(|x| x.name.as_str())
        .collect();
    roots.sort();
    assert_eq!(roots, ["cam-left", "cam-right"]);
    assert_eq!(f.iter().filter(|x| x.name == "detect").count(), 2);

    let merged_opts = all_frames().with_merge_threads(true);
    assert_eq!(
        stacks(&fold(&r, &merged_opts)),
        ["frame 1500000", "frame;detect 5000000"]
    );
    let doc_text = svg(&r, &merged_opts);
    let doc = parse(&doc_text);
    let f = frames(&doc);
    assert_eq!(one(&f, "frame").w, 6_500_000);
    assert_eq!(one(&f, "detect").w, 5_000_000);
    assert!(f.iter().all(|x| !x.name.starts_with("cam-")));
}

#[test]
fn svg_names_every_span_and_has_title_search_and_zoom() {
    let r = fixtures::sample_report();
    let text = svg(&r, &all_frames());
    let doc = parse(&text);
    let f = frames(&doc);
    let names: std::collections::BTreeSet<&str> = f.iter().map(|x| x.name.as_str()).collect();
    for s in &r.spans {
        for n in &s.path {
            assert!(names.contains(frame_name(n).as_ref()), "no frame for {n:?}");
        }
        assert!(names.contains(s.thread.as_deref().unwrap()));
    }
    assert_eq!(text_by_id(&doc, "title"), "line-3 inspection — 10.0 s");
    assert!(text_by_id(&doc, "subtitle").contains("2025-11-24"));
    assert_eq!(text_by_id(&doc, "search"), "Search");
    // inferno's script, once: the hostile span's `<script>` is text, not an element.
    let scripts: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("script"))
        .collect();
    assert_eq!(scripts.len(), 1);
    let js: String = scripts[0].children().filter_map(|c| c.text()).collect();
    for needle in [
        "function search(",
        "function zoom(",
        "var nametype = 'Span:'",
        "var inverted = false",
    ] {
        assert!(js.contains(needle), "script lacks {needle}");
    }
}

#[test]
fn rendering_is_deterministic_and_colours_follow_names() {
    let r = fixtures::sample_report();
    let a = svg(&r, &FlameOptions::default());
    assert_eq!(a, svg(&r, &FlameOptions::default()));
    let doc = parse(&a);
    let in_sample = one(&frames(&doc), "detect").fill.clone();
    // Another graph, another report: `detect` keeps its colour.
    let b = svg(&known_report(), &FlameOptions::default());
    let doc_b = parse(&b);
    assert_eq!(one(&frames(&doc_b), "detect").fill, in_sample);
    let (r_, g, bl) = rgb(&in_sample);
    assert!(
        r_ >= 200 && bl <= 55 && g <= 230,
        "hot palette colour: {in_sample}"
    );
}

#[test]
fn icicle_and_minimum_width_options() {
    let r = known_report();
    let inverted = svg(&r, &all_frames().with_inverted(true));
    assert!(inverted.contains("var inverted = true"));
    let doc = parse(&inverted);
    let f = frames(&doc);
    let all_y = one(&f, "all").y;
    assert!(f.iter().all(|x| x.y >= all_y), "all is the top row");
    assert!(one(&f, "nms").y > one(&f, "detect").y);

    let straight = svg(&r, &all_frames());
    let doc = parse(&straight);
    let f = frames(&doc);
    assert!(one(&f, "nms").y < one(&f, "detect").y);

    // decide is 500 / 9500 = 5.3 % wide.
    let wide = svg(&r, &FlameOptions::default().with_min_width_percent(6.0));
    let doc = parse(&wide);
    let f = frames(&doc);
    assert!(f.iter().all(|x| x.name != "decide"));
    assert_eq!(one(&f, "detect").w, 6_000_000);

    let fixed = svg(
        &r,
        &FlameOptions::default()
            .with_image_width(800)
            .with_title("custom <title>"),
    );
    let doc = parse(&fixed);
    assert_eq!(doc.root_element().attribute("width"), Some("800"));
    assert_eq!(text_by_id(&doc, "title"), "custom <title>");
}

#[test]
fn hostile_names_keep_lines_and_svg_intact() {
    let r = report(
        "hostile \u{1} session",
        vec![
            span(Some((7, "cam;0\nleft")), &["frame"], 1000, 5000),
            span(
                Some((7, "cam;0\nleft")),
                &["frame", HOSTILE_NAME],
                1000,
                1000,
            ),
            span(Some((7, "cam;0\nleft")), &["frame", "a;b"], 1000, 1000),
            span(Some((7, "cam;0\nleft")), &["frame", "retry 2"], 1000, 1000),
            span(
                Some((7, "cam;0\nleft")),
                &["frame", "# not a comment"],
                1000,
                1000,
            ),
            span(Some((7, "cam;0\nleft")), &["frame", ""], 0, 0),
        ],
    );
    let lines = fold(&r, &FlameOptions::default());
    let hostile = frame_name(HOSTILE_NAME);
    assert_eq!(
        hostile,
        "odd | name `with` ticks and <script>alert(1)</script> & \"quotes\""
    );
    let expected = [
        "cam:0 left;frame 1000000".to_string(),
        "cam:0 left;frame;#_not a comment 1000000".to_string(),
        "cam:0 left;frame;(unnamed) 0".to_string(),
        "cam:0 left;frame;a:b 1000000".to_string(),
        format!("cam:0 left;frame;{hostile} 1000000"),
        "cam:0 left;frame;retry_2 1000000".to_string(),
    ];
    assert_eq!(stacks(&lines), expected);
    let mut out = Vec::new();
    FoldedSink::new().render(&r, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for line in text.lines() {
        let (stack, weight) = line.rsplit_once(' ').unwrap();
        assert!(weight.parse::<u64>().is_ok(), "{line}");
        let frames: Vec<&str> = stack.split(';').collect();
        assert_eq!(frames[..2], ["cam:0 left", "frame"], "{line}");
        assert!(frames.len() <= 3, "{line}");
    }
    assert_eq!(text, expected.join("\n") + "\n");

    let svg_text = svg(&r, &all_frames());
    let doc = parse(&svg_text);
    let f = frames(&doc);
    assert_eq!(one(&f, &hostile).w, 1_000_000);
    assert_eq!(one(&f, "retry_2").w, 1_000_000);
    assert_eq!(one(&f, "a:b").w, 1_000_000);
    assert_eq!(one(&f, "#_not a comment").w, 1_000_000);
    assert_eq!(one(&f, "cam:0 left").w, 5_000_000);
    // The tooltip of an escaped name keeps its escapes; only the count becomes a duration.
    assert_eq!(
        one(&f, &hostile).title,
        format!("{hostile} (1.00 ms, 20.00%)")
    );
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("script"))
            .count(),
        1
    );
    assert_eq!(text_by_id(&doc, "title"), "hostile   session — 2.50 s");
}

#[test]
fn names_sorting_below_the_separator_do_not_split_frames() {
    // Byte order puts `stage_10` between `stage_1` and `stage_1;x`: sorting the lines (as
    // flamegraph tools do) would draw `stage_1` twice.
    let r = report(
        "order",
        vec![
            span(PROC, &["stage_1"], 1000, 3000),
            span(PROC, &["stage_1", "x"], 2000, 2000),
            span(PROC, &["stage_10"], 1000, 1000),
            span(PROC, &["a::b"], 1000, 1500),
            span(PROC, &["a::b", "c"], 500, 500),
            span(PROC, &["a"], 700, 700),
        ],
    );
    let doc_text = svg(&r, &all_frames());
    let doc = parse(&doc_text);
    let f = frames(&doc);
    assert_eq!(one(&f, "stage_1").w, 3_000_000);
    assert_eq!(one(&f, "stage_10").w, 1_000_000);
    assert_eq!(one(&f, "a::b").w, 1_500_000);
    assert_eq!(one(&f, "a").w, 700_000);
}

#[test]
fn empty_and_zero_weight_reports_say_there_is_nothing_to_draw() {
    let empty = Report::empty("idle line");
    assert!(fold(&empty, &FlameOptions::default()).is_empty());
    let mut out = Vec::new();
    FoldedSink::new().render(&empty, &mut out).unwrap();
    assert!(out.is_empty());
    let text = svg(&empty, &FlameOptions::default());
    let doc = parse(&text);
    assert_eq!(text_by_id(&doc, "title"), "idle line — 0 ns");
    assert_eq!(
        text_by_id(&doc, "nothing"),
        "Nothing to draw: no span was recorded in this session."
    );

    let zero = report(
        "zero",
        vec![span(PROC, &["a"], 0, 0), span(PROC, &["a", "b"], 0, 0)],
    );
    assert_eq!(
        stacks(&fold(&zero, &FlameOptions::default())),
        ["processing;a;b 0"]
    );
    let doc_text = svg(&zero, &FlameOptions::default());
    let doc = parse(&doc_text);
    assert_eq!(
        text_by_id(&doc, "nothing"),
        "Nothing to draw: the 2 recorded spans took no measurable time (0 ns)."
    );
    assert!(frames(&doc).is_empty());

    // A single nanosecond is something to draw.
    let mut one_ns = zero.clone();
    one_ns.spans[1].self_ns = 1;
    one_ns.spans[1].total_ns = 1;
    one_ns.spans[0].total_ns = 1;
    let doc_text = svg(&one_ns, &FlameOptions::default());
    let doc = parse(&doc_text);
    assert_eq!(text_by_id(&doc, "nothing"), "");
    assert_eq!(one(&frames(&doc), "b").w, 1);
    assert_eq!(one(&frames(&doc), "b").title, "b (1 ns, 100.00%)");

    // A zero-length span beside real ones is named and drawn without error.
    let mixed = report(
        "mixed",
        vec![span(PROC, &["a"], 100, 100), span(PROC, &["z"], 0, 0)],
    );
    assert_eq!(
        stacks(&fold(&mixed, &FlameOptions::default())),
        ["processing;a 100000", "processing;z 0"]
    );
    let doc_text = svg(&mixed, &all_frames());
    let doc = parse(&doc_text);
    assert_eq!(one(&frames(&doc), "a").w, 100_000);
}

#[test]
fn bad_options_and_absurd_times_are_errors_not_panics() {
    let r = known_report();
    for bad in [f64::NAN, -1.0, 101.0, f64::INFINITY] {
        let e = svg_error(&r, &FlameOptions::default().with_min_width_percent(bad));
        assert!(e.to_string().contains("min_width_percent"), "{e}");
    }
    for bad in [0, 10, 99] {
        let e = svg_error(&r, &FlameOptions::default().with_image_width(bad));
        assert!(
            e.to_string().contains(&format!("`image_width` = {bad}")),
            "{e}"
        );
    }

    let mut huge = report(
        "corrupt",
        vec![span(PROC, &["a"], 0, 0), span(PROC, &["b"], 0, 0)],
    );
    for s in &mut huge.spans {
        s.self_ns = u64::MAX;
        s.total_ns = u64::MAX;
    }
    let lines = fold(&huge, &FlameOptions::default());
    assert_eq!(lines.len(), 2);
    let e = svg_error(&huge, &FlameOptions::default());
    assert!(matches!(e, FlameError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("corrupt"), "{e}");
    // The totals read as durations: 2 × u64::MAX ns is about 1 170 years.
    assert!(e.to_string().contains(" d "), "{e}");
}

#[test]
fn a_failing_writer_is_a_write_error_naming_the_session() {
    let r = known_report();
    let e = FlamegraphSink::new()
        .render(&r, &mut heimdall_perf_testkit::FullDisk)
        .unwrap_err();
    let e = e.downcast_ref::<FlameError>().unwrap();
    assert!(matches!(e, FlameError::Write { .. }), "{e:?}");
    assert!(
        e.to_string().contains("`known`") && e.to_string().contains("disk full"),
        "{e}"
    );
    // The cause is kept, not only quoted.
    let cause = std::error::Error::source(e).unwrap();
    assert!(cause.to_string().contains("disk full"), "{cause}");
    let e = FoldedSink::new()
        .render(&r, &mut heimdall_perf_testkit::FullDisk)
        .unwrap_err();
    assert!(e.to_string().contains("folded stacks"), "{e}");
    assert!(std::error::Error::source(&*e).is_some(), "{e}");
    let e = FlamegraphSink::new()
        .render_diff(&r, &r, &mut heimdall_perf_testkit::FullDisk)
        .unwrap_err();
    assert!(matches!(e, FlameError::Write { .. }), "{e:?}");
}

fn before_after() -> (Report, Report) {
    let before = report(
        "monday",
        vec![
            span(PROC, &["frame"], 1000, 3500),
            span(PROC, &["frame", "decide"], 500, 500),
            span(PROC, &["frame", "detect"], 2000, 2000),
        ],
    );
    let after = report(
        "tuesday",
        vec![
            span(PROC, &["frame"], 1000, 5550),
            span(PROC, &["frame", "decide"], 250, 250),
            span(PROC, &["frame", "detect"], 4000, 4000),
            span(PROC, &["frame", "new_filter"], 300, 300),
        ],
    );
    (before, after)
}

#[test]
fn differential_lines_pair_before_and_after() {
    let (before, after) = before_after();
    let lines: Vec<String> = diff_fold(&before, &after, &FlameOptions::default())
        .iter()
        .map(|l| l.as_str().to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "processing;frame 1000000 1000000",
            "processing;frame;decide 500000 250000",
            "processing;frame;detect 2000000 4000000",
            "processing;frame;new_filter 0 300000",
        ]
    );
    let normalized = diff_fold(
        &before,
        &after,
        &FlameOptions::default().with_normalize_differential(true),
    );
    let tb: u64 = normalized.iter().map(|l| l.before_ns()).sum();
    let ta: u64 = normalized.iter().map(|l| l.after_ns()).sum();
    assert_eq!((tb, ta), (5_550_000, 5_550_000));
    // 1 000 000 × 5550 / 3500, rounded.
    assert_eq!(normalized[0].before_ns(), 1_585_714);
    // Scaled as a running sum, the normalised total stays exact: 1 ns scaled by 5/3 rounds
    // to 2 ns, and three of them line by line would make 6 ns for a total of 5.
    let ns_report = |name: &str, times: [u64; 3]| {
        let spans = ["a", "b", "c"]
            .iter()
            .zip(times)
            .map(|(n, t)| {
                let mut s = span(PROC, &[*n], 0, 0);
                (s.self_ns, s.total_ns) = (t, t);
                s
            })
            .collect();
        report(name, spans)
    };
    let n = diff_fold(
        &ns_report("ones", [1, 1, 1]),
        &ns_report("five", [3, 1, 1]),
        &FlameOptions::default().with_normalize_differential(true),
    );
    let before: Vec<u64> = n.iter().map(|l| l.before_ns()).collect();
    assert_eq!(before, [2, 1, 2]);
    assert_eq!(
        n.iter().map(|l| l.after_ns()).collect::<Vec<_>>(),
        [3, 1, 1]
    );
}

#[test]
fn differential_graph_is_red_where_slower_and_blue_where_faster() {
    let (before, after) = before_after();
    let text = diff_svg(&before, &after, &all_frames());
    let doc = parse(&text);
    let f = frames(&doc);
    let (r, g, b) = rgb(&one(&f, "detect").fill);
    assert!(
        r == 255 && g < 200 && g == b,
        "detect slowed down: {r},{g},{b}"
    );
    let (r, g, b) = rgb(&one(&f, "new_filter").fill);
    assert!(r == 255 && g < 250 && g == b, "new span: {r},{g},{b}");
    let (r, g, b) = rgb(&one(&f, "decide").fill);
    assert!(b == 255 && r < 250 && r == g, "decide sped up: {r},{g},{b}");
    assert_eq!(one(&f, "frame").fill, "rgb(250,250,250)");
    // Widths are the "after" times.
    assert_eq!(one(&f, "detect").w, 4_000_000);
    assert_eq!(one(&f, "frame").w, 5_550_000);
    assert_eq!(one(&f, "new_filter").w, 300_000);
    // Tooltips: the "after" time, its share, and the change of share.
    assert_eq!(one(&f, "detect").title, "detect (4.00 ms, 72.07%; +36.04%)");
    assert_eq!(one(&f, "decide").title, "decide (250 µs, 4.50%; -4.50%)");
    assert_eq!(
        text_by_id(&doc, "title"),
        "Differential: monday (2.50 s) → tuesday (2.50 s)"
    );

    // A report against itself: no change anywhere.
    let text = diff_svg(&after, &after, &all_frames());
    let doc = parse(&text);
    assert!(frames(&doc).iter().all(|x| x.fill == "rgb(250,250,250)"));

    // Nothing after: a valid SVG that says so.
    let text = diff_svg(&before, &Report::empty("off"), &all_frames());
    let doc = parse(&text);
    assert!(text_by_id(&doc, "nothing").contains("`off` has no span time"));
}

#[test]
fn totals_only_reports_fold_without_thread_roots_and_running_sessions_say_so() {
    let mut r = report("totals", Vec::new());
    r.span_totals = vec![
        span(None, &["frame"], 300, 1000),
        span(None, &["frame", "detect"], 700, 700),
    ];
    r.session.active = true;
    assert_eq!(
        stacks(&fold(&r, &FlameOptions::default())),
        ["frame 300000", "frame;detect 700000"]
    );
    let text = svg(&r, &all_frames());
    let doc = parse(&text);
    assert_eq!(one(&frames(&doc), "frame").w, 1_000_000);
    assert_eq!(text_by_id(&doc, "title"), "totals — 2.50 s (running)");
}

/// A span path on the processing thread with self and total times in ns.
fn span_ns(path: &[&str], self_ns: u64, total_ns: u64) -> heimdall_perf_core::SpanStats {
    let mut s = span(PROC, path, 0, 0);
    (s.self_ns, s.total_ns) = (self_ns, total_ns);
    s
}

#[test]
fn a_300_ns_timing_is_a_frame_300_ns_wide() {
    // Issue 10, item 9: in µs a 300 ns timing weighed 0 and vanished from the graph.
    let r = report(
        "fast",
        vec![
            span_ns(&["frame"], 10_000, 10_300),
            span_ns(&["frame", "threshold"], 300, 300),
        ],
    );
    let lines = fold(&r, &FlameOptions::default());
    assert_eq!(
        stacks(&lines),
        ["processing;frame 10000", "processing;frame;threshold 300"]
    );
    let mut out = Vec::new();
    FoldedSink::new().render(&r, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "processing;frame 10000\nprocessing;frame;threshold 300\n"
    );
    // Drawn with the default options too (2.9 % of the width is far above 0.01 %).
    for opts in [all_frames(), FlameOptions::default()] {
        let doc_text = svg(&r, &opts);
        let doc = parse(&doc_text);
        let f = frames(&doc);
        assert_eq!(one(&f, "threshold").w, 300);
        assert_eq!(one(&f, "threshold").title, "threshold (300 ns, 2.91%)");
        assert_eq!(one(&f, "frame").w, 10_300);
        assert_eq!(one(&f, "frame").title, "frame (10.3 µs, 100.00%)");
    }
}

#[test]
fn a_report_of_only_sub_microsecond_spans_is_drawn_not_nothing() {
    let fast = report(
        "only fast",
        vec![
            span_ns(&["a"], 300, 300),
            span_ns(&["b"], 500, 700),
            span_ns(&["b", "c"], 200, 200),
        ],
    );
    assert_eq!(
        stacks(&fold(&fast, &FlameOptions::default())),
        ["processing;a 300", "processing;b 500", "processing;b;c 200"]
    );
    let doc_text = svg(&fast, &all_frames());
    let doc = parse(&doc_text);
    assert_eq!(text_by_id(&doc, "nothing"), "", "something to draw");
    let f = frames(&doc);
    assert_eq!(one(&f, "processing").w, 1000);
    assert_eq!(one(&f, "a").w, 300);
    assert_eq!(one(&f, "b").w, 700);
    assert_eq!(one(&f, "c").w, 200);
    assert_eq!(one(&f, "a").title, "a (300 ns, 30.00%)");
    assert_eq!(one(&f, "all").title, "all (1.00 µs, 100%)");
    // `a` starts where the thread does and `b` right after it.
    assert_eq!(one(&f, "a").x + 300, one(&f, "b").x);

    // Differential: `a` got slower by 150 ns, `c` faster by 100 ns, all below 1 µs.
    let mut faster = fast.clone();
    faster.session.name = "later".into();
    faster.spans[0] = span_ns(&["a"], 450, 450);
    faster.spans[1] = span_ns(&["b"], 500, 600);
    faster.spans[2] = span_ns(&["b", "c"], 100, 100);
    let lines: Vec<String> = diff_fold(&fast, &faster, &FlameOptions::default())
        .iter()
        .map(|l| l.as_str().to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "processing;a 300 450",
            "processing;b 500 500",
            "processing;b;c 200 100"
        ]
    );
    let text = diff_svg(&fast, &faster, &all_frames());
    let doc = parse(&text);
    assert_eq!(text_by_id(&doc, "nothing"), "");
    let f = frames(&doc);
    assert_eq!(one(&f, "a").w, 450);
    assert_eq!(one(&f, "b").w, 600);
    assert_eq!(one(&f, "c").w, 100);
    let (r, g, b) = rgb(&one(&f, "a").fill);
    assert!(r == 255 && g < 250 && g == b, "a slowed down: {r},{g},{b}");
    let (r, g, b) = rgb(&one(&f, "c").fill);
    assert!(b == 255 && r < 250 && r == g, "c sped up: {r},{g},{b}");
    assert_eq!(one(&f, "b").fill, "rgb(250,250,250)");
    assert_eq!(one(&f, "a").title, "a (450 ns, 42.86%; +14.29%)");
}

#[test]
fn graphs_past_2_pow_53_ns_count_microseconds_and_still_read_as_durations() {
    // 2 × 100 days of span time: more ns than a graph can count (2^53 ns ≈ 104 days).
    const DAYS_100: u64 = 100 * 86_400 * 1_000_000_000;
    let long = report(
        "long",
        vec![
            span_ns(&["a"], DAYS_100, DAYS_100),
            span_ns(&["b"], DAYS_100 + 300, DAYS_100 + 300),
        ],
    );
    // The folded stacks stay exact, in ns.
    assert_eq!(
        stacks(&fold(&long, &FlameOptions::default())),
        [
            "processing;a 8640000000000000",
            "processing;b 8640000000000300"
        ]
    );
    let doc_text = svg(&long, &all_frames());
    let doc = parse(&doc_text);
    let f = frames(&doc);
    assert_eq!(one(&f, "a").w, DAYS_100 / 1000);
    assert_eq!(one(&f, "b").w, DAYS_100 / 1000);
    assert_eq!(one(&f, "a").title, "a (100 d 00 h, 50.00%)");
    assert_eq!(
        one(&f, "processing").title,
        "processing (200 d 00 h, 100.00%)"
    );
    // A differential graph of the same size draws too.
    let text = diff_svg(&long, &long, &all_frames());
    let doc = parse(&text);
    assert_eq!(one(&frames(&doc), "a").w, DAYS_100 / 1000);
    assert_eq!(
        one(&frames(&doc), "a").title,
        "a (100 d 00 h, 50.00%; 0.00%)"
    );
}

#[test]
fn session_labels_lead_the_subtitle() {
    // The sample's labels: `line=3`, and a station whose value holds HTML and quotes.
    let r = fixtures::sample_report();
    let text = svg(&r, &all_frames());
    let doc = parse(&text);
    let subtitle = text_by_id(&doc, "subtitle");
    assert_eq!(
        subtitle,
        format!(
            "line=3 · station={} · started {} on {} · {} spans · width: total time",
            r.session.labels["station"],
            r.session.started_at,
            r.session.host,
            heimdall_perf_core::units::Style::Typographic.count(r.span_count())
        )
    );
    // The value's markup is text: escaped in the file, no element made of it.
    assert!(text.contains("station=cell-7 &lt;b&gt;"), "{text}");
    assert!(!doc.descendants().any(|n| n.has_tag_name("b")));

    // No labels (a schema-1 report): the subtitle starts with the start time.
    let mut bare = r.clone();
    bare.session.labels.clear();
    let doc_text = svg(&bare, &all_frames());
    let subtitle = text_by_id(&parse(&doc_text), "subtitle");
    assert!(subtitle.starts_with("started 2025-11-24"), "{subtitle}");
}

#[test]
fn hostile_and_long_labels_keep_the_svg_intact() {
    let mut r = known_report();
    r.session
        .labels
        .insert(HOSTILE_NAME.into(), HOSTILE_NAME.into());
    r.session
        .labels
        .insert("cdata".into(), "]]><!-- -->\u{1}\u{FFFF}'".into());
    r.session.labels.insert("long".into(), "x".repeat(500));
    for report in [r.clone(), {
        // The "nothing to draw" page carries them too.
        let mut empty = Report::empty("idle");
        empty.session.labels = r.session.labels.clone();
        empty
    }] {
        let text = svg(&report, &all_frames());
        let doc = parse(&text);
        let subtitle = text_by_id(&doc, "subtitle");
        let parts: Vec<&str> = subtitle.split(" · ").collect();
        // In key order; control characters and newlines are spaces, U+FFFF is U+FFFD, a
        // value past 64 characters is cut.
        assert_eq!(parts[0], "cdata=]]><!-- --> \u{FFFD}'", "{subtitle}");
        assert_eq!(parts[1], format!("long={}…", "x".repeat(63)), "{subtitle}");
        let hostile = HOSTILE_NAME.replace('\n', " ");
        assert_eq!(parts[2], format!("{hostile}={hostile}"), "{subtitle}");
        assert!(parts[3].starts_with("started "), "{subtitle}");
        assert!(!doc.descendants().any(|n| n.has_tag_name("b")));
        assert!(
            doc.descendants()
                .filter(|n| n.has_tag_name("script"))
                .count()
                <= 1,
            "{text}"
        );
    }
}
