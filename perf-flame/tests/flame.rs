//! Public behaviour of heimdall-perf-flame on hand-built reports with known times.

mod common;

use common::*;
use heimdall_perf_core::fixtures::{self, HOSTILE_NAME};
use heimdall_perf_core::{Report, ReportSink};
use heimdall_perf_flame::*;

fn svg(report: &Report, opts: &FlameOptions) -> String {
    render_svg_string(report, opts).unwrap()
}

fn all_frames() -> FlameOptions {
    FlameOptions {
        min_width_percent: 0.0,
        ..FlameOptions::default()
    }
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
            "camera;capture 2000",
            "processing;frame 1000",
            "processing;frame;decide 500",
            "processing;frame;detect 5000",
            "processing;frame;detect;nms 1000",
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
}

#[test]
fn sub_microsecond_times_are_rounded_without_drift() {
    // 1000 leaves of 400 ns each: rounding each would give 0 µs; the running sum keeps
    // the parent's width at 400 µs.
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
    assert_eq!(lines.len(), 1000, "every leaf is named, even at weight 0");
    assert_eq!(lines.iter().map(|l| l.weight_us()).sum::<u64>(), 400);
    let doc_text = svg(&r, &all_frames());
    let doc = parse(&doc_text);
    assert_eq!(one(&frames(&doc), "frame").w, 400);
}

#[test]
fn frame_widths_are_total_times() {
    let text = svg(&known_report(), &all_frames());
    let doc = parse(&text);
    let f = frames(&doc);
    assert_eq!(one(&f, "processing").w, 7500);
    assert_eq!(one(&f, "frame").w, 7500);
    assert_eq!(one(&f, "detect").w, 6000);
    assert_eq!(one(&f, "nms").w, 1000);
    assert_eq!(one(&f, "decide").w, 500);
    assert_eq!(one(&f, "capture").w, 2000);
    // The count is named µs.
    assert_eq!(one(&f, "detect").title, "detect (6,000 µs, 63.16%)");
    let total = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("frames"))
        .and_then(|n| n.attribute("total_samples"))
        .unwrap();
    assert_eq!(total, "9500");
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
            "cam-left;frame 1000",
            "cam-left;frame;detect 3000",
            "cam-right;frame 500",
            "cam-right;frame;detect 2000",
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

    let merged_opts = FlameOptions {
        merge_threads: true,
        ..all_frames()
    };
    assert_eq!(
        stacks(&fold(&r, &merged_opts)),
        ["frame 1500", "frame;detect 5000"]
    );
    let doc_text = svg(&r, &merged_opts);
    let doc = parse(&doc_text);
    let f = frames(&doc);
    assert_eq!(one(&f, "frame").w, 6500);
    assert_eq!(one(&f, "detect").w, 5000);
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
    assert_eq!(text_by_id(&doc, "title"), "line-3 inspection — 10.000 s");
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
    let inverted = svg(
        &r,
        &FlameOptions {
            inverted: true,
            ..all_frames()
        },
    );
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
    let wide = svg(
        &r,
        &FlameOptions {
            min_width_percent: 6.0,
            ..FlameOptions::default()
        },
    );
    let doc = parse(&wide);
    let f = frames(&doc);
    assert!(f.iter().all(|x| x.name != "decide"));
    assert_eq!(one(&f, "detect").w, 6000);

    let fixed = svg(
        &r,
        &FlameOptions {
            image_width: Some(800),
            title: Some("custom <title>".into()),
            ..FlameOptions::default()
        },
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
        "cam:0 left;frame 1000".to_string(),
        "cam:0 left;frame;#_not a comment 1000".to_string(),
        "cam:0 left;frame;(unnamed) 0".to_string(),
        "cam:0 left;frame;a:b 1000".to_string(),
        format!("cam:0 left;frame;{hostile} 1000"),
        "cam:0 left;frame;retry_2 1000".to_string(),
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
    assert_eq!(one(&f, &hostile).w, 1000);
    assert_eq!(one(&f, "retry_2").w, 1000);
    assert_eq!(one(&f, "a:b").w, 1000);
    assert_eq!(one(&f, "#_not a comment").w, 1000);
    assert_eq!(one(&f, "cam:0 left").w, 5000);
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("script"))
            .count(),
        1
    );
    assert_eq!(text_by_id(&doc, "title"), "hostile   session — 2.500 s");
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
    assert_eq!(one(&f, "stage_1").w, 3000);
    assert_eq!(one(&f, "stage_10").w, 1000);
    assert_eq!(one(&f, "a::b").w, 1500);
    assert_eq!(one(&f, "a").w, 700);
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
    assert!(text_by_id(&doc, "nothing").contains("less than 1 µs"));

    // A zero-length span beside real ones is named and drawn without error.
    let mixed = report(
        "mixed",
        vec![span(PROC, &["a"], 100, 100), span(PROC, &["z"], 0, 0)],
    );
    assert_eq!(
        stacks(&fold(&mixed, &FlameOptions::default())),
        ["processing;a 100", "processing;z 0"]
    );
    let doc_text = svg(&mixed, &all_frames());
    let doc = parse(&doc_text);
    assert_eq!(one(&frames(&doc), "a").w, 100);
}

#[test]
fn bad_options_and_absurd_times_are_errors_not_panics() {
    let r = known_report();
    for bad in [f64::NAN, -1.0, 101.0, f64::INFINITY] {
        let e = render_svg_string(
            &r,
            &FlameOptions {
                min_width_percent: bad,
                ..FlameOptions::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("min_width_percent"), "{e}");
    }
    let e = render_svg_string(
        &r,
        &FlameOptions {
            image_width: Some(10),
            ..FlameOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("image_width"), "{e}");

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
    let e = render_svg_string(&huge, &FlameOptions::default()).unwrap_err();
    assert!(matches!(e, FlameError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("corrupt"), "{e}");
}

#[test]
fn a_failing_writer_is_a_write_error_naming_the_session() {
    let r = known_report();
    let e = render_svg(
        &r,
        &FlameOptions::default(),
        &mut heimdall_perf_core::fixtures::FullDisk,
    )
    .unwrap_err();
    assert!(matches!(e, FlameError::Write { .. }), "{e:?}");
    assert!(
        e.to_string().contains("`known`") && e.to_string().contains("disk full"),
        "{e}"
    );
    let e = write_folded(
        &r,
        &FlameOptions::default(),
        &mut heimdall_perf_core::fixtures::FullDisk,
    )
    .unwrap_err();
    assert!(e.to_string().contains("folded stacks"), "{e}");
    let e = diff_flamegraph(
        &r,
        &r,
        &FlameOptions::default(),
        &mut heimdall_perf_core::fixtures::FullDisk,
    )
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
            "processing;frame 1000 1000",
            "processing;frame;decide 500 250",
            "processing;frame;detect 2000 4000",
            "processing;frame;new_filter 0 300",
        ]
    );
    let normalized = diff_fold(
        &before,
        &after,
        &FlameOptions {
            normalize_differential: true,
            ..FlameOptions::default()
        },
    );
    let tb: u64 = normalized.iter().map(|l| l.before_us()).sum();
    let ta: u64 = normalized.iter().map(|l| l.after_us()).sum();
    assert_eq!(tb, ta);
    assert_eq!(normalized[0].before_us(), 1586); // 1000 × 5550 / 3500
}

#[test]
fn differential_graph_is_red_where_slower_and_blue_where_faster() {
    let (before, after) = before_after();
    let mut out = Vec::new();
    diff_flamegraph(&before, &after, &all_frames(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
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
    assert_eq!(one(&f, "detect").w, 4000);
    assert_eq!(one(&f, "frame").w, 5550);
    assert!(one(&f, "detect").title.contains("+"));
    assert_eq!(
        text_by_id(&doc, "title"),
        "Differential: monday (2.500 s) → tuesday (2.500 s)"
    );

    // A report against itself: no change anywhere.
    let mut out = Vec::new();
    diff_flamegraph(&after, &after, &all_frames(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let doc = parse(&text);
    assert!(frames(&doc).iter().all(|x| x.fill == "rgb(250,250,250)"));

    // Nothing after: a valid SVG that says so.
    let mut out = Vec::new();
    diff_flamegraph(&before, &Report::empty("off"), &all_frames(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
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
        ["frame 300", "frame;detect 700"]
    );
    let text = svg(&r, &all_frames());
    let doc = parse(&text);
    assert_eq!(one(&frames(&doc), "frame").w, 1000);
    assert_eq!(text_by_id(&doc, "title"), "totals — 2.500 s (running)");
}
