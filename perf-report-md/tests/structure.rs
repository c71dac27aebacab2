//! The Markdown sink's output parsed back with pulldown-cmark (GitHub-flavoured options):
//! tables have the right rows, columns and alignment, hostile names come back as text in one
//! cell, no raw HTML gets through, notes stay in their own sections.

use heimdall_perf_core::units::Style;
use heimdall_perf_core::{series_names, Note, SeriesPoint, SpanStats, TimeSeries};
use heimdall_perf_core::{stats::Summary, Report, ReportSink};
use heimdall_perf_report_md::MarkdownSink;
use heimdall_perf_testkit::{self as fixtures, HOSTILE_NAME, HOSTILE_NOTES};
use pulldown_cmark::{Alignment, Event, Options, Parser, Tag, TagEnd};

/// What the tests look at in a parsed document.
#[derive(Debug, Default)]
struct Doc {
    /// (level, text) of every heading, in order.
    headings: Vec<(usize, String)>,
    tables: Vec<Table>,
    /// Raw HTML events (blocks and inline): must stay zero.
    html: Vec<String>,
    /// Text of fenced or indented code blocks.
    code_blocks: Vec<String>,
}

#[derive(Debug, Default)]
struct Table {
    alignments: Vec<Alignment>,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn parse(md: &str) -> Doc {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_MATH
        | Options::ENABLE_GFM;
    parse_with(md, options)
}

/// [`parse`] with the parser options `options`.
fn parse_with(md: &str, options: Options) -> Doc {
    let mut doc = Doc::default();
    let mut text: Option<String> = None; // inside a heading, cell or code block
    let mut in_head = false;
    for ev in Parser::new_ext(md, options) {
        match ev {
            Event::Start(Tag::Table(al)) => doc.tables.push(Table {
                alignments: al,
                ..Table::default()
            }),
            Event::Start(Tag::TableHead) => in_head = true,
            Event::End(TagEnd::TableHead) => in_head = false,
            Event::Start(Tag::TableRow) => {
                if let Some(t) = doc.tables.last_mut() {
                    t.rows.push(Vec::new())
                }
            }
            Event::Start(Tag::TableCell | Tag::Heading { .. } | Tag::CodeBlock(_)) => {
                text = Some(String::new())
            }
            Event::End(TagEnd::TableCell) => {
                let cell = text.take().unwrap_or_default();
                let t = doc.tables.last_mut().expect("cell inside a table");
                if in_head {
                    t.header.push(cell)
                } else {
                    t.rows.last_mut().expect("cell inside a row").push(cell)
                }
            }
            Event::End(TagEnd::Heading(level)) => doc
                .headings
                .push((level as usize, text.take().unwrap_or_default())),
            Event::End(TagEnd::CodeBlock) => doc.code_blocks.push(text.take().unwrap_or_default()),
            Event::Text(s) | Event::Code(s) | Event::InlineMath(s) | Event::DisplayMath(s) => {
                if let Some(t) = text.as_mut() {
                    t.push_str(&s)
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(t) = text.as_mut() {
                    t.push(' ')
                }
            }
            Event::Html(s) | Event::InlineHtml(s) => doc.html.push(s.to_string()),
            _ => {}
        }
    }
    doc
}

fn render(r: &Report) -> String {
    let mut out = Vec::new();
    MarkdownSink::new().render(r, &mut out).expect("render");
    String::from_utf8(out).expect("UTF-8")
}

fn table<'a>(doc: &'a Doc, first_column: &str) -> &'a Table {
    let found: Vec<&Table> = doc
        .tables
        .iter()
        .filter(|t| t.header.first().map(String::as_str) == Some(first_column))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one table whose first column is {first_column}: {doc:#?}"
    );
    found[0]
}

/// What a name looks like once rendered: line breaks are `↵`, other C0 controls and DEL
/// their Control Pictures (a tab `␉`), C1 controls U+FFFD.
fn shown(name: &str) -> String {
    name.replace("\r\n", "↵")
        .replace(['\r', '\n', '\u{85}'], "↵")
        .chars()
        .map(|c| match c {
            '\0'..='\x1f' => char::from_u32(0x2400 + c as u32).unwrap(),
            '\x7f' => '\u{2421}',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

fn shown_path(path: &[String]) -> String {
    path.iter()
        .map(|n| shown(n))
        .collect::<Vec<_>>()
        .join(" › ")
}

/// The leading number of a cell such as `59.135 fps`, `3 612` or `33.5 %`.
fn leading_number(cell: &str) -> f64 {
    let digits: String = cell
        .replace('\u{202F}', "")
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    digits.parse().unwrap_or_else(|e| panic!("{cell:?}: {e}"))
}

const SPAN_COLUMNS: [&str; 9] = [
    "Path", "Count", "Total", "Self", "Mean", "p50", "p95", "p99", "Max",
];

#[test]
fn span_table_has_one_row_per_path_sorted_by_total() {
    let r = fixtures::sample_report();
    let doc = parse(&render(&r));
    let t = table(&doc, "Path");
    assert_eq!(t.header, SPAN_COLUMNS);
    let mut al = vec![Alignment::Left];
    al.extend([Alignment::Right; 8]);
    assert_eq!(t.alignments, al);
    assert_eq!(t.rows.len(), r.span_totals.len());
    let mut by_total: Vec<&SpanStats> = r.span_totals.iter().collect();
    by_total.sort_by_key(|s| std::cmp::Reverse(s.total_ns));
    for (row, s) in t.rows.iter().zip(by_total) {
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!(row[0], shown_path(&s.path));
        assert_eq!(leading_number(&row[1]), s.count as f64);
        for cell in &row[2..] {
            assert!(
                ["ns", "µs", "ms", " s"].iter().any(|u| cell.ends_with(u)),
                "a duration with its unit: {cell:?}"
            );
        }
    }
    // The largest total comes first, in milliseconds or seconds as it fits.
    let frame = r.span_total(&["frame"]).expect("frame");
    assert_eq!(t.rows[0][0], "frame");
    assert_eq!(t.rows[0][2], Style::Text.duration(frame.total_ns as f64));
    assert!(t.rows[0][2].ends_with(" s"), "{:?}", t.rows[0]);
    assert_eq!(t.rows[0][4], Style::Text.duration(frame.duration.mean));
    assert!(t.rows[0][4].ends_with(" ms"), "{:?}", t.rows[0]);
}

#[test]
fn hostile_name_is_text_in_one_cell_and_no_html_gets_through() {
    let mut r = fixtures::sample_report();
    r.session.name = HOSTILE_NAME.to_string();
    let md = render(&r);
    let doc = parse(&md);
    assert!(
        doc.html.is_empty(),
        "raw HTML in the output: {:?}",
        doc.html
    );
    assert!(!md.contains("<script") && !md.contains("<b>"), "{md}");
    let want = format!("frame › {}", shown(HOSTILE_NAME));
    let t = table(&doc, "Path");
    let hits: Vec<&Vec<String>> = t.rows.iter().filter(|row| row[0] == want).collect();
    assert_eq!(hits.len(), 1, "{want:?} in {t:#?}");
    assert_eq!(hits[0].len(), 9);
    assert_eq!(hits[0][1], "12");
    // The title carries the hostile session name as plain text.
    assert_eq!(
        doc.headings[0],
        (1, format!("Performance report: {}", shown(HOSTILE_NAME)))
    );
}

#[test]
fn metrics_table_has_statistics_and_non_finite_values() {
    let r = fixtures::sample_report();
    let doc = parse(&render(&r));
    let t = table(&doc, "Metric");
    assert_eq!(
        t.header,
        [
            "Metric",
            "Type",
            "Count",
            "Last",
            "Mean",
            "Std dev",
            "Min",
            "p50",
            "p95",
            "p99",
            "Max",
            "Non-finite"
        ]
    );
    assert_eq!(&t.alignments[..2], [Alignment::Left, Alignment::Left]);
    assert!(t.alignments[2..].iter().all(|a| *a == Alignment::Right));
    assert_eq!(t.rows.len(), r.metrics.len());
    assert!(t.rows.iter().all(|row| row.len() == 12));

    let fps = r.metric("fps").expect("fps");
    let row = &t.rows[0];
    assert_eq!(row[0], "fps");
    assert_eq!(row[1], "throughput");
    assert_eq!(leading_number(&row[2]), fps.summary.count as f64);
    assert!(row[4].ends_with(" fps"));
    assert!(
        (leading_number(&row[4]) - fps.summary.mean).abs() < 1e-3,
        "{row:?}"
    );
    assert!(
        (leading_number(&row[8]) - fps.summary.p95).abs() < 1e-3,
        "{row:?}"
    );

    // Latencies in ms are shown as durations.
    let lat = r.metric("frame_latency").expect("latency");
    assert_eq!(t.rows[1][0], "frame_latency");
    assert_eq!(t.rows[1][4], Style::Text.duration(lat.summary.mean * 1e6));
    assert!(t.rows[1][4].ends_with(" ms"), "{:?}", t.rows[1]);

    let odd = &t.rows[2];
    assert_eq!(odd[0], "sensor | temp {camera=cam-2 `left`}");
    assert_eq!(odd[1], "custom:temperature");
    assert_eq!(odd[3], "NaN", "last value");
    assert_eq!(odd[11], "2", "non-finite count");
    assert_eq!(odd[10], "42.0 °C");
}

#[test]
fn non_finite_statistics_print_as_text() {
    let mut r = Report::empty("nan");
    let summary = Summary {
        count: 1,
        mean: f64::NAN,
        p50: f64::INFINITY,
        p95: f64::NEG_INFINITY,
        p99: f64::NAN,
        max: f64::INFINITY,
        ..Summary::default()
    };
    r.span_totals.push(SpanStats {
        thread_id: None,
        thread: None,
        path: vec!["x".into()],
        count: 1,
        total_ns: 5,
        self_ns: 5,
        duration: summary.clone(),
        histogram: Vec::new(),
    });
    let mut m = fixtures::sample_report().metrics.remove(0);
    m.last = f64::NEG_INFINITY;
    m.summary = summary;
    r.metrics.push(m);
    let doc = parse(&render(&r));
    assert_eq!(
        table(&doc, "Path").rows[0],
        ["x", "1", "5 ns", "5 ns", "NaN", "inf", "-inf", "NaN", "inf"]
    );
    let row = &table(&doc, "Metric").rows[0];
    assert_eq!(
        (&row[3], &row[4], &row[7], &row[8], &row[10]),
        (
            &"-inf".to_string(),
            &"NaN".to_string(),
            &"inf".to_string(),
            &"-inf".to_string(),
            &"inf".to_string()
        )
    );
}

fn weighted_mean_and_peak(s: &TimeSeries) -> (f64, f64) {
    let n: u64 = s.points.iter().map(|p| p.count).sum();
    let mean = s
        .points
        .iter()
        .map(|p| p.mean * p.count as f64)
        .sum::<f64>()
        / n as f64;
    let peak = s.points.iter().map(|p| p.max).fold(f64::MIN, f64::max);
    (mean, peak)
}

#[test]
fn system_summary_has_cpu_and_memory_mean_and_peak() {
    let r = fixtures::sample_report();
    let doc = parse(&render(&r));
    assert!(doc.headings.contains(&(2, "System".into())));
    let t = table(&doc, "Figure");
    assert_eq!(t.header, ["Figure", "Mean", "Peak", "Samples"]);
    let labels: Vec<&str> = t.rows.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(
        labels,
        [
            "CPU, whole machine",
            "CPU, this process",
            "Memory used, whole machine",
            "Memory total, whole machine",
            "Resident memory, this process"
        ]
    );
    let cpu = r.series(series_names::SYSTEM_CPU_TOTAL).expect("cpu");
    let (mean, peak) = weighted_mean_and_peak(cpu);
    assert_eq!(t.rows[0][1], format!("{} %", Style::Text.number(mean)));
    assert_eq!(t.rows[0][2], format!("{} %", Style::Text.number(peak)));
    assert_eq!(t.rows[0][3], cpu.points.len().to_string());
    let mem = r.series(series_names::SYSTEM_MEMORY_USED).expect("memory");
    let (mean, peak) = weighted_mean_and_peak(mem);
    assert_eq!(t.rows[2][1], Style::Text.bytes(mean));
    assert!(t.rows[2][1].ends_with(" GiB"), "{:?}", t.rows[2]);
    assert_eq!(t.rows[2][2], Style::Text.bytes(peak));
    // Every series is a known system figure: no "other series" section.
    assert!(!doc.headings.iter().any(|(_, h)| h == "Other time series"));
}

#[test]
fn no_system_series_no_system_section() {
    let mut r = fixtures::sample_report();
    r.series.clear();
    let doc = parse(&render(&r));
    assert!(!doc
        .headings
        .iter()
        .any(|(_, h)| h == "System" || h == "Other time series"));
    assert!(!doc.tables.iter().any(|t| t.header[0] == "Figure"));

    // A user's gauge only: listed with the other series, still no system section.
    r.series.push(TimeSeries {
        name: "camera.queue | depth".into(),
        unit: "frames".into(),
        source: "cam-2".into(),
        points: vec![SeriesPoint {
            t_ns: 0,
            count: 4,
            min: 1.0,
            max: 7.0,
            mean: 3.5,
            last: 2.0,
        }],
    });
    let doc = parse(&render(&r));
    assert!(!doc.headings.iter().any(|(_, h)| h == "System"));
    let t = table(&doc, "Series");
    assert_eq!(
        t.rows,
        [[
            "camera.queue | depth (cam-2)",
            "3.50 frames",
            "7.00 frames",
            "4"
        ]]
    );
}

#[test]
fn large_report_lists_other_series_apart_from_system_figures() {
    let r = fixtures::large_report(40, 1, 3);
    let doc = parse(&render(&r));
    let system = table(&doc, "Figure");
    let other = table(&doc, "Series");
    assert_eq!(system.rows.len() + other.rows.len(), r.series.len());
    assert!(other
        .rows
        .iter()
        .any(|row| row[0] == format!("{} (system)", series_names::SYSTEM_LOAD_1)));
    assert_eq!(table(&doc, "Path").rows.len(), 40);
    assert_eq!(table(&doc, "Metric").rows.len(), 3);
}

#[test]
fn notes_are_sections_that_cannot_break_the_document() {
    let mut r = fixtures::sample_report();
    r.notes.push(Note {
        t_ns: 9_500_000_000,
        text: "# Big claim\n\n```rust\nlet unclosed = 1;".into(),
    });
    r.notes.push(Note {
        t_ns: 9_600_000_000,
        text: "<div>\n*inside html*\n\n- a list\n  continued".into(),
    });
    r.notes.push(Note {
        t_ns: 9_700_000_000,
        text: "Last note".into(),
    });
    let doc = parse(&render(&r));
    assert!(doc.html.is_empty(), "{:?}", doc.html);
    let notes_at = doc
        .headings
        .iter()
        .position(|h| *h == (2, "Notes".to_string()))
        .expect("a Notes section");
    assert_eq!(
        &doc.headings[notes_at..],
        [
            (2, "Notes".to_string()),
            (3, "Note 1 (at 2.00 s)".to_string()),
            (5, "Observations".to_string()),
            (3, "Note 2 (at 9.00 s)".to_string()),
            (3, "Note 3 (at 9.50 s)".to_string()),
            (4, "Big claim".to_string()),
            (3, "Note 4 (at 9.60 s)".to_string()),
            (3, "Note 5 (at 9.70 s)".to_string()),
        ]
    );
    // The unclosed code block ends with its note.
    assert_eq!(doc.code_blocks, ["let unclosed = 1;\n"]);
    // The note's own Markdown table is kept as a table.
    let t = table(&doc, "a");
    assert_eq!(t.rows, [["1", "2"]]);
}

#[test]
fn empty_report_renders_a_title_and_says_no_spans() {
    let md = render(&Report::empty("nothing"));
    let doc = parse(&md);
    assert_eq!(
        doc.headings,
        [
            (1, "Performance report: nothing".to_string()),
            (2, "Spans".to_string())
        ]
    );
    assert!(doc.tables.is_empty());
    assert!(md.contains("No spans were recorded."));
    assert!(md.contains("- **Host:** unknown (pid 0)"));
}

#[test]
fn with_max_spans_keeps_the_largest() {
    let r = fixtures::sample_report();
    let md = MarkdownSink::new()
        .with_max_spans(2)
        .render_to_string(&r)
        .expect("render");
    let doc = parse(&md);
    let rows: Vec<&str> = table(&doc, "Path")
        .rows
        .iter()
        .map(|row| row[0].as_str())
        .collect();
    assert_eq!(rows, ["frame", "frame › detect"]);
    assert!(md.contains("5 more span paths are not shown"));
}

#[test]
fn random_hostile_names_keep_every_table_intact() {
    let alphabet: Vec<char> = "ab |`\\*_[]<>&#$~!\n\r\t-:=+()^\"'.x1 é💥\u{7}"
        .chars()
        .collect();
    let mut rng = fixtures::SplitMix::new(99);
    let mut r = Report::empty("fuzz");
    for i in 0..300 {
        let depth = 1 + rng.range(0, 3) as usize;
        let path: Vec<String> = (0..depth)
            .map(|_| {
                let len = rng.range(1, 12) as usize;
                (0..len)
                    .map(|_| alphabet[rng.range(0, alphabet.len() as u64) as usize])
                    .collect()
            })
            .collect();
        r.span_totals.push(SpanStats {
            thread_id: None,
            thread: None,
            path,
            count: 1,
            total_ns: 10_000 - i,
            self_ns: 1,
            duration: Summary::default(),
            histogram: Vec::new(),
        });
    }
    let doc = parse(&render(&r));
    assert!(doc.html.is_empty(), "{:?}", doc.html);
    assert_eq!(doc.headings.len(), 2, "{:?}", doc.headings);
    assert_eq!(doc.tables.len(), 1);
    let t = &doc.tables[0];
    assert_eq!(t.rows.len(), r.span_totals.len());
    for (row, s) in t.rows.iter().zip(&r.span_totals) {
        assert_eq!(row.len(), 9, "{:?} -> {row:?}", s.path);
        // The parser trims a cell's outer spaces.
        assert_eq!(
            row[0],
            shown_path(&s.path).trim_matches(' '),
            "{:?}",
            s.path
        );
        assert_eq!(row[4], "–", "no values, no statistics");
    }
}

#[test]
fn write_failure_names_the_session() {
    let e = MarkdownSink::new()
        .render(&fixtures::sample_report(), &mut fixtures::FullDisk)
        .expect_err("the writer fails");
    let msg = e.to_string();
    assert!(
        msg.contains("line-3 inspection") && msg.contains("disk full"),
        "{msg}"
    );
}

#[test]
fn sink_metadata() {
    let s = MarkdownSink::default();
    assert_eq!(s.format_id(), "markdown");
    assert_eq!(s.file_extension(), "md");
}

/// Links and images of `md` whose destination has a scheme other than http, https, mailto.
fn unsafe_links(md: &str, options: Options) -> Vec<String> {
    Parser::new_ext(md, options)
        .filter_map(|ev| match ev {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some(dest_url.to_string())
            }
            _ => None,
        })
        .filter(|url| {
            let u = url.trim_start();
            match (u.find(':'), u.find(['/', '?', '#'])) {
                (None, _) => false,
                (Some(c), Some(p)) if p < c => false,
                (Some(c), _) => !matches!(
                    u[..c].to_ascii_lowercase().as_str(),
                    "http" | "https" | "mailto"
                ),
            }
        })
        .collect()
}

#[test]
fn hostile_notes_pass_no_raw_html_and_no_script_links() {
    let gfm = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_MATH
        | Options::ENABLE_GFM;
    let mut failures = Vec::new();
    for (i, note) in HOSTILE_NOTES.iter().enumerate() {
        let mut report = Report::empty("hostile");
        report.notes.push(Note {
            t_ns: 0,
            text: (*note).to_string(),
        });
        // Each note alone, and after another note (its context changes how it parses).
        report.notes.push(Note {
            t_ns: 1,
            text: format!("para\n{note}"),
        });
        let mut out = Vec::new();
        MarkdownSink::new().render(&report, &mut out).unwrap();
        let md = String::from_utf8(out).unwrap();
        for options in [gfm, Options::empty(), Options::ENABLE_TABLES] {
            let doc = parse_with(&md, options);
            if !doc.html.is_empty() {
                failures.push(format!("#{i} {note:?}: raw HTML {:?}", doc.html));
            }
            let links = unsafe_links(&md, options);
            if !links.is_empty() {
                failures.push(format!("#{i} {note:?}: links {links:?}"));
            }
        }
        // Neutralised, not deleted: the text is still there for the reader.
        let lower = md.to_lowercase();
        for word in ["onerror", "javascript", "onload", "cdata", "php"] {
            if note.to_lowercase().contains(word) && !lower.contains(word) {
                failures.push(format!("#{i} {note:?}: `{word}` was dropped: {md}"));
            }
        }
        // The report's own structure survives: one heading per note.
        let notes_headings = parse(&md)
            .headings
            .iter()
            .filter(|(l, t)| *l == 3 && t.starts_with("Note "))
            .count();
        if notes_headings != 2 {
            failures.push(format!("#{i} {note:?}: {notes_headings} note headings"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn recording_diagnostics_are_listed_as_text() {
    let mut r = Report::empty("diag");
    r.diagnostics.leaked_spans = 2;
    r.diagnostics.dropped_notes = 1;
    r.diagnostics.folded_threads = 500;
    r.diagnostics
        .sampler_failures
        .insert("system/<cpu> *x*".into(), 3);
    let md = render(&r);
    // The text of every list item, as a Markdown reader shows it.
    let mut items = Vec::new();
    let mut item: Option<String> = None;
    for ev in Parser::new_ext(&md, Options::all()) {
        match ev {
            Event::Start(Tag::Item) => item = Some(String::new()),
            Event::End(TagEnd::Item) => items.extend(item.take()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(i) = item.as_mut() {
                    i.push_str(&t)
                }
            }
            Event::Html(h) | Event::InlineHtml(h) => panic!("raw HTML {h:?} in {md}"),
            _ => {}
        }
    }
    for w in r.diagnostics.warnings() {
        assert!(items.contains(&w), "{w:?} missing from {items:#?}");
    }
    assert_eq!(
        r.diagnostics.warnings().len(),
        3,
        "folding threads is not a warning"
    );
}

/// Every C0 control, DEL and every C1 control.
fn all_controls() -> String {
    (0u32..0x20)
        .chain(0x7f..0xa0)
        .filter_map(char::from_u32)
        .collect()
}

#[test]
fn no_raw_control_byte_from_any_string_field() {
    let c = all_controls();
    let hostile = |s: &mut String| s.push_str(&format!(" <{c}> "));
    let mut r = fixtures::sample_report();
    hostile(&mut r.crate_version);
    hostile(&mut r.session.name);
    hostile(&mut r.session.host);
    hostile(&mut r.session.started_at);
    for t in &mut r.threads {
        hostile(&mut t.name);
    }
    for s in r.span_totals.iter_mut().chain(r.spans.iter_mut()) {
        s.path.iter_mut().for_each(hostile);
        s.thread.iter_mut().for_each(hostile);
    }
    for m in &mut r.metrics {
        hostile(&mut m.name);
        hostile(&mut m.unit);
        m.labels = std::mem::take(&mut m.labels)
            .into_iter()
            .map(|(mut k, mut v)| {
                hostile(&mut k);
                hostile(&mut v);
                (k, v)
            })
            .collect();
        m.labels.insert(format!("k{c}"), format!("v{c}"));
    }
    // The system series keep their names (they have their own section), with hostile
    // units; one more series is hostile throughout.
    for s in &mut r.series {
        hostile(&mut s.unit);
        hostile(&mut s.source);
    }
    let mut other = r.series[0].clone();
    hostile(&mut other.name);
    r.series.push(other);
    for n in &mut r.notes {
        hostile(&mut n.text);
    }
    r.notes.push(Note {
        t_ns: 1,
        text: format!("<script>x</script> {c} NUL\n\n`code {c}`\n\n```\n{c}\n```\n"),
    });
    r.diagnostics
        .sampler_failures
        .insert(format!("sampler {c}"), 1);

    let md = render(&r);
    let notes_at = md.find("\n## Notes\n").expect("a Notes section");
    for (i, b) in md.bytes().enumerate() {
        // Line feeds are the document's own; a tab is legitimate in a note (it indents).
        let allowed = b == b'\n' || (b == b'\t' && i > notes_at);
        assert!(
            allowed || !(b < 0x20 || b == 0x7f),
            "raw byte {b:#04x} at {i}: {:?}",
            String::from_utf8_lossy(&md.as_bytes()[i.saturating_sub(40)..i])
        );
    }
    assert!(
        !md.chars()
            .any(|ch| ch.is_control() && ch != '\n' && ch != '\t'),
        "a C1 control got through"
    );
    assert!(
        md.contains("␀") && md.contains("␛") && md.contains("␡"),
        "{md}"
    );
    // The tables still have their shape: one cell per column in every row.
    let doc = parse(&md);
    assert!(doc.html.is_empty(), "{:?}", doc.html);
    for t in &doc.tables {
        for row in &t.rows {
            assert_eq!(row.len(), t.header.len(), "{row:?} in {:?}", t.header);
        }
    }
    let spans = table(&doc, "Path");
    assert_eq!(spans.rows.len(), r.span_totals.len());
    assert!(spans.rows.iter().any(|row| row[0].contains(&shown(&c))));
}

// ---------------------------------------------------------------------------------------
// Frames and labels.

/// The tables of `doc` whose header is exactly `columns`, in document order.
fn tables_with<'a>(doc: &'a Doc, columns: &[&str]) -> Vec<&'a Table> {
    doc.tables
        .iter()
        .filter(|t| {
            t.header
                .iter()
                .map(String::as_str)
                .eq(columns.iter().copied())
        })
        .collect()
}

const SUMMARY_COLUMNS: [&str; 3] = ["Measure", "Value", "Of the budget"];
const STAGE_COLUMNS: [&str; 7] = [
    "Stage",
    "Budget",
    "Service p50",
    "Service p99",
    "Queue p50",
    "Queue p99",
    "Over budget",
];
const ATTRIBUTION_COLUMNS: [&str; 3] = ["Cause", "Missed", "Share"];
const INCIDENT_COLUMNS: [&str; 6] = [
    "Frame",
    "Captured at",
    "Latency",
    "Budget",
    "Overrun",
    "Cause",
];
const INCIDENT_STAGE_COLUMNS: [&str; 5] = ["Stage", "Thread", "Start", "Queue", "Duration"];

/// The value and "of the budget" cells of the summary row labelled `label`.
fn summary_row<'a>(t: &'a Table, label: &str) -> (&'a str, &'a str) {
    let hits: Vec<&Vec<String>> = t.rows.iter().filter(|r| r[0] == label).collect();
    assert_eq!(hits.len(), 1, "one row {label:?} in {t:#?}");
    (&hits[0][1], &hits[0][2])
}

fn pct(v: f64) -> String {
    Style::Text.value(v, &heimdall_perf_core::units::Unit::parse("%"))
}

fn dur(ns: f64) -> String {
    Style::Text.duration(ns)
}

/// The text of every list item of `md`, as a reader sees it.
fn list_items(md: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut item: Option<String> = None;
    // GitHub's options: no smart punctuation, quotes stay as written.
    for ev in Parser::new_ext(md, Options::all() - Options::ENABLE_SMART_PUNCTUATION) {
        match ev {
            Event::Start(Tag::Item) => item = Some(String::new()),
            Event::End(TagEnd::Item) => items.extend(item.take()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(i) = item.as_mut() {
                    i.push_str(&t)
                }
            }
            _ => {}
        }
    }
    items
}

#[test]
fn session_labels_are_in_the_header_as_text() {
    let r = fixtures::sample_report();
    let md = render(&r);
    let want = format!(
        "Labels: {}",
        r.session
            .labels
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        want.contains("<b>\"east\"</b>"),
        "the sample's hostile label: {want}"
    );
    assert!(
        list_items(&md).contains(&want),
        "{want:?} in {:?}",
        list_items(&md)
    );
    assert!(parse(&md).html.is_empty());
    // No labels (a schema 1 report): no line.
    let mut old = r.clone();
    old.session.labels.clear();
    assert!(!render(&old).contains("**Labels:**"));
}

#[test]
fn frames_section_has_a_summary_stages_attribution_and_incidents_per_source() {
    let r = fixtures::sample_report();
    let md = render(&r);
    let doc = parse(&md);
    assert!(doc.html.is_empty(), "{:?}", doc.html);
    // The section comes before the spans, one sub-section per source.
    let at = |h: (usize, String)| {
        doc.headings
            .iter()
            .position(|x| *x == h)
            .unwrap_or_else(|| panic!("no heading {h:?} in {:?}", doc.headings))
    };
    let frames_at = at((2, "Frames".into()));
    assert!(frames_at < at((2, "Spans".into())));
    let sources: Vec<String> = doc
        .headings
        .iter()
        .filter(|(l, _)| *l == 3)
        .filter_map(|(_, h)| h.strip_prefix("Source: ").map(str::to_string))
        .collect();
    let want: Vec<String> = r.frames.iter().map(|f| shown(&f.source)).collect();
    assert_eq!(sources, want);
    assert!(list_items(&md)
        .contains(&"Frames: 2 sources, 607 finished, 30 missed their budget".to_string()));

    let summaries = tables_with(&doc, &SUMMARY_COLUMNS);
    assert_eq!(summaries.len(), r.frames.len());
    let cam = r.frame_source("cam-0").expect("cam-0");
    let t = summaries[0];
    assert_eq!(
        t.alignments,
        [Alignment::Left, Alignment::Right, Alignment::Right]
    );
    let budget = cam.budget_ns.expect("cam-0 has a budget") as f64;
    assert_eq!(summary_row(t, "Frames begun").0, cam.count.to_string());
    assert_eq!(summary_row(t, "Finished").0, cam.finished.to_string());
    assert_eq!(
        summary_row(t, "Dropped: queue full").0,
        cam.dropped["queue full"].to_string()
    );
    assert_eq!(summary_row(t, "In flight").0, cam.in_flight.to_string());
    assert_eq!(summary_row(t, "Frame budget").0, dur(budget));
    assert_eq!(summary_row(t, "Missed").0, cam.missed.to_string());
    assert_eq!(
        summary_row(t, "Miss rate").0,
        pct(cam.missed as f64 / cam.finished as f64 * 100.0)
    );
    assert_eq!(summary_row(t, "Miss rate").0, "5.02 %");
    assert_eq!(
        summary_row(t, "Longest miss streak").0,
        cam.longest_miss_streak.to_string()
    );
    let l = &cam.latency.summary;
    let j = &cam.jitter.summary;
    for (label, v) in [
        ("Latency p50", l.p50),
        ("Latency p95", l.p95),
        ("Latency p99", l.p99),
        ("Latency max", l.max),
        ("Frame interval p50", j.p50),
        ("Frame interval p99", j.p99),
        ("Frame interval std dev", j.stddev),
    ] {
        assert_eq!(
            summary_row(t, label),
            (dur(v).as_str(), pct(v / budget * 100.0).as_str()),
            "{label}"
        );
    }
    // The sample's p99 latency is over the budget: more than 100 % of it.
    assert!(leading_number(summary_row(t, "Latency p99").1) > 100.0);

    // Stages: one row each, in order, with service and queue percentiles.
    let stages = tables_with(&doc, &STAGE_COLUMNS);
    assert_eq!(stages.len(), r.frames.len());
    let rows = &stages[0].rows;
    assert_eq!(rows.len(), cam.stages.len());
    for (row, s) in rows.iter().zip(&cam.stages) {
        assert_eq!(
            row,
            &[
                shown(&s.name),
                s.budget_ns.map_or("–".into(), |b| dur(b as f64)),
                dur(s.service.summary.p50),
                dur(s.service.summary.p99),
                dur(s.queue.summary.p50),
                dur(s.queue.summary.p99),
                s.budget_ns
                    .map_or("–".into(), |_| s.over_budget.to_string()),
            ]
        );
    }

    // Attribution: cause, missed, share of the missed frames (adding up to 100 %).
    let attribution = tables_with(&doc, &ATTRIBUTION_COLUMNS);
    assert_eq!(attribution.len(), 1, "only cam-0 has a budget");
    let rows = &attribution[0].rows;
    assert_eq!(rows.len(), cam.attribution.len());
    let mut share = 0.0;
    for (row, a) in rows.iter().zip(&cam.attribution) {
        assert_eq!(row[0], a.cause);
        assert_eq!(row[1], a.missed.to_string());
        assert_eq!(row[2], pct(a.missed as f64 / cam.missed as f64 * 100.0));
        share += leading_number(&row[2]);
    }
    assert!((share - 100.0).abs() < 0.2, "{share}");
    assert_eq!(cam.blamed("detect"), 20);
    assert_eq!(rows[0], ["detect", "20", "66.7 %"]);

    // Incidents: a heading, the frame's figures, its stages thread by thread, the frames
    // before it and the system figures.
    let headings: Vec<&String> = doc
        .headings
        .iter()
        .filter(|(l, h)| *l == 5 && h.starts_with("Incident "))
        .map(|(_, h)| h)
        .collect();
    assert_eq!(headings.len(), cam.incidents.len());
    let frames_tables = tables_with(&doc, &INCIDENT_COLUMNS);
    let stage_tables = tables_with(&doc, &INCIDENT_STAGE_COLUMNS);
    assert_eq!(frames_tables.len(), cam.incidents.len());
    assert_eq!(stage_tables.len(), cam.incidents.len());
    for (i, inc) in cam.incidents.iter().enumerate() {
        assert_eq!(
            *headings[i],
            format!("Incident {}: frame {}", i + 1, inc.frame_id)
        );
        assert_eq!(
            frames_tables[i].rows,
            [[
                inc.frame_id.to_string(),
                dur(inc.capture_ns as f64),
                dur(inc.latency_ns as f64),
                dur(inc.budget_ns as f64),
                dur(inc.overrun_ns as f64),
                inc.cause.clone(),
            ]]
        );
        let rows = &stage_tables[i].rows;
        assert_eq!(rows.len(), inc.stages.len());
        for (row, s) in rows.iter().zip(&inc.stages) {
            assert_eq!(
                row,
                &[
                    s.name.clone(),
                    s.thread.clone(),
                    dur(s.start_ns as f64),
                    dur(s.queue_ns as f64),
                    dur(s.duration_ns as f64),
                ]
            );
        }
        let before: Vec<String> = inc
            .previous
            .iter()
            .map(|p| {
                format!(
                    "frame {}: {}",
                    p.frame_id,
                    dur(p.latency_ns.unwrap() as f64)
                )
            })
            .collect();
        assert!(
            md.contains(&format!("**Frames before it:** {}\n", before.join(", "))),
            "{before:?}"
        );
        let cpu = &inc.system[0];
        assert!(md.contains(&format!(
            "CPU, whole machine {} (sampled at {})",
            pct(cpu.value),
            dur(cpu.t_ns as f64)
        )));
    }
    // The worst incident is blamed on detect, the other on the queue before it.
    assert_eq!(frames_tables[0].rows[0][5], "detect");
    assert_eq!(frames_tables[1].rows[0][5], "queue before detect");
}

#[test]
fn a_hostile_source_and_drop_reason_stay_text_in_their_places() {
    let r = fixtures::sample_report();
    let md = render(&r);
    let doc = parse(&md);
    assert!(doc.html.is_empty(), "{:?}", doc.html);
    assert!(doc
        .headings
        .contains(&(3, format!("Source: {}", shown(HOSTILE_NAME)))));
    let odd = r.frame_source(HOSTILE_NAME).expect("the hostile source");
    let t = tables_with(&doc, &SUMMARY_COLUMNS)[1];
    assert_eq!(
        summary_row(t, &format!("Dropped: {}", shown(HOSTILE_NAME))).0,
        odd.dropped[HOSTILE_NAME].to_string()
    );
    for row in &t.rows {
        assert_eq!(row.len(), 3, "{row:?}");
    }
    let stages = tables_with(&doc, &STAGE_COLUMNS)[1];
    assert_eq!(stages.rows.len(), 1);
    assert_eq!(stages.rows[0][0], shown(HOSTILE_NAME));
    assert_eq!(stages.rows[0].len(), 7);
}

#[test]
fn a_source_without_budget_or_finished_frames_says_so() {
    let mut r = fixtures::sample_report();
    // The hostile source has no budget: no miss figures, nothing against a budget.
    let doc = parse(&render(&r));
    let t = tables_with(&doc, &SUMMARY_COLUMNS)[1];
    assert_eq!(summary_row(t, "Frame budget"), ("none set", "–"));
    for label in ["Missed", "Miss rate", "Longest miss streak"] {
        assert_eq!(summary_row(t, label), ("–", "–"), "{label}");
    }
    assert!(t.rows.iter().all(|row| row[2] == "–"), "{t:#?}");
    assert!(render(&r).contains("No frame budget is set for this source: no frame can miss."));

    // A source whose frames were all dropped: no latency, no stage, no miss, no rate.
    let mut empty = r.frames[0].clone();
    empty.source = "cam-9".into();
    empty.finished = 0;
    empty.missed = 0;
    empty.miss_rate = f64::NAN;
    empty.latency = Default::default();
    empty.jitter = Default::default();
    empty.stages.clear();
    empty.attribution.clear();
    empty.incidents.clear();
    empty.windows.clear();
    r.frames = vec![empty];
    let md = render(&r);
    let doc = parse(&md);
    assert!(doc.html.is_empty());
    let t = tables_with(&doc, &SUMMARY_COLUMNS)[0];
    assert_eq!(summary_row(t, "Finished").0, "0");
    assert_eq!(summary_row(t, "Miss rate"), ("–", "–"));
    assert_eq!(summary_row(t, "Missed").0, "0");
    for label in ["Latency p50", "Latency p99", "Frame interval std dev"] {
        assert_eq!(summary_row(t, label), ("–", "–"), "{label}");
    }
    assert!(md.contains("No stage was recorded for this source's frames."));
    assert!(md.contains("No missed frame to blame."));
    assert!(!doc.headings.iter().any(|(_, h)| h == "Incidents"));
    assert!(tables_with(&doc, &STAGE_COLUMNS).is_empty());

    // NaN figures (a hand-edited report) print as text, the table keeps its shape.
    r.frames[0].finished = 3;
    r.frames[0].miss_rate = f64::NAN;
    r.frames[0].latency.summary = Summary {
        count: 3,
        p99: f64::NAN,
        max: f64::INFINITY,
        ..Summary::default()
    };
    let doc = parse(&render(&r));
    let t = tables_with(&doc, &SUMMARY_COLUMNS)[0];
    assert_eq!(summary_row(t, "Miss rate").0, "NaN");
    assert_eq!(summary_row(t, "Latency p99"), ("NaN", "NaN"));
    assert_eq!(summary_row(t, "Latency max"), ("inf", "inf"));
}

#[test]
fn reports_without_frames_have_no_frames_section() {
    let mut r = fixtures::sample_report();
    r.frames.clear();
    r.schema_version = 1;
    r.session.labels.clear();
    let md = render(&r);
    let doc = parse(&md);
    assert!(!doc.headings.iter().any(|(_, h)| h == "Frames"));
    assert!(tables_with(&doc, &SUMMARY_COLUMNS).is_empty());
    assert!(!md.contains("**Frames:**") && !md.contains("**Labels:**"));
    assert!(md.contains("- **Report:** schema 1,"));
    // The rest is as before: spans, metrics, system, notes.
    for h in ["Spans", "Metrics", "System", "Notes"] {
        assert!(doc.headings.contains(&(2, h.to_string())), "{h}");
    }
}

#[test]
fn incidents_are_shown_worst_first_up_to_the_limit() {
    let mut r = fixtures::sample_report();
    r.frames[0].incidents.reverse(); // as a report edited by hand may be
    let sink = MarkdownSink::new();
    assert_eq!(
        sink.max_incidents(),
        heimdall_perf_report_md::DEFAULT_INCIDENTS_SHOWN
    );
    let doc = parse(&sink.render_to_string(&r).unwrap());
    let ids: Vec<String> = tables_with(&doc, &INCIDENT_COLUMNS)
        .iter()
        .map(|t| t.rows[0][0].clone())
        .collect();
    assert_eq!(ids, ["120", "421"], "largest overrun first");

    let md = sink.with_max_incidents(1).render_to_string(&r).unwrap();
    let doc = parse(&md);
    assert_eq!(tables_with(&doc, &INCIDENT_COLUMNS).len(), 1);
    assert!(md.contains("worst missed frames, kept whole (largest overrun first): 1 of 2."));
    assert!(md.contains("1 more incident is not shown"));
    let md = sink.with_max_incidents(0).render_to_string(&r).unwrap();
    assert!(tables_with(&parse(&md), &INCIDENT_COLUMNS).is_empty());
    assert!(md.contains("2 more incidents are not shown"));
}

#[test]
fn no_raw_control_byte_from_any_frame_field() {
    let c = all_controls();
    let h = |s: &str| format!("{s} <{c}> |`*");
    let mut r = fixtures::sample_report();
    r.session.labels.insert(h("key"), h("value"));
    for f in &mut r.frames {
        f.source = h(&f.source);
        f.dropped = f.dropped.iter().map(|(k, v)| (h(k), *v)).collect();
        for s in &mut f.stages {
            s.name = h(&s.name);
        }
        for a in &mut f.attribution {
            a.cause = h(&a.cause);
        }
        for i in &mut f.incidents {
            i.cause = h(&i.cause);
            for s in i
                .stages
                .iter_mut()
                .chain(i.previous.iter_mut().flat_map(|p| p.stages.iter_mut()))
            {
                s.name = h(&s.name);
                s.thread = h(&s.thread);
            }
            for s in &mut i.system {
                s.name = h(&s.name);
                s.unit = h(&s.unit);
            }
        }
    }
    let md = render(&r);
    let notes_at = md.find("\n## Notes\n").expect("a Notes section");
    for (i, b) in md.bytes().enumerate() {
        assert!(
            b == b'\n' || (b == b'\t' && i > notes_at) || !(b < 0x20 || b == 0x7f),
            "raw byte {b:#04x} at {i}"
        );
    }
    let doc = parse(&md);
    assert!(doc.html.is_empty(), "{:?}", doc.html);
    for t in &doc.tables {
        for row in &t.rows {
            assert_eq!(row.len(), t.header.len(), "{row:?} in {:?}", t.header);
        }
    }
    assert_eq!(tables_with(&doc, &SUMMARY_COLUMNS).len(), 2);
    assert_eq!(tables_with(&doc, &INCIDENT_STAGE_COLUMNS).len(), 2);
    let attribution = tables_with(&doc, &ATTRIBUTION_COLUMNS)[0];
    assert_eq!(attribution.rows[0][0], shown(&h("detect")).trim_end());
}
