//! The Stations section of a merged report (`heimdall-perf merge`): one row per station,
//! side by side — its labels, host and duration, the p50 and p99 of the fleet's main span
//! paths as that station measured them, and its frames finished, missed and miss rate.
//! A single run has no stations and no such section.
//!
//! ```
//! use heimdall_perf_core::{merge_reports, ReportSink};
//! use heimdall_perf_report_md::MarkdownSink;
//!
//! let run = heimdall_perf_testkit::sample_report;
//! // Another run (the same run twice is refused): started a second later.
//! let mut west = run();
//! west.session.start_unix_ns += 1_000_000_000;
//! let fleet = merge_reports([("east", run()), ("west", west)]).unwrap();
//! let md = MarkdownSink::new().render_to_string(&fleet).unwrap();
//! assert!(md.contains("\n## Stations\n"));
//! assert!(md.contains("| Station | Labels | Host | Duration | frame p50 | frame p99 |"), "{md}");
//! assert!(md.contains("\n| east | "));
//! ```

use heimdall_perf_core::units::Unit;
use heimdall_perf_core::{Report, STATION_TABLE_SPANS};

use crate::escape::{escape, escape_into};
use crate::table::{header, row};
use crate::{NONE, PATH_JOIN, STYLE};

/// Appends the Stations section when the report has stations.
pub(crate) fn stations(out: &mut String, r: &Report) {
    if r.stations.is_empty() {
        return;
    }
    let paths = r.main_span_paths(STATION_TABLE_SPANS);
    out.push_str("\n## Stations\n\n");
    crate::push_fmt(
        out,
        format_args!(
            "This report merges {} runs. Fleet-wide figures add every station's up exactly; \
             below, each station's own figures for the main span paths, and its frames: finished, \
             missed and miss rate over its sources with a frame budget, as the Frames section \
             counts them (a source without a budget cannot miss).\n\n",
            STYLE.count(r.stations.len() as u64)
        ),
    );
    // Names as they are: `header` escapes them.
    let mut columns: Vec<String> = ["Station", "Labels", "Host", "Duration"]
        .map(String::from)
        .to_vec();
    for p in &paths {
        let name = p.join(PATH_JOIN);
        columns.push(format!("{name} p50"));
        columns.push(format!("{name} p99"));
    }
    columns.extend(["Frames", "Missed", "Miss rate"].map(String::from));
    let spec: Vec<(&str, bool)> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i >= 3))
        .collect();
    header(out, &spec);
    for s in &r.stations {
        let mut cells = vec![escape(&s.name), labels(s), escape(&s.host)];
        cells.push(STYLE.duration(s.duration_ns as f64));
        for p in &paths {
            match s.span(p) {
                Some(sp) if sp.count > 0 => {
                    cells.push(STYLE.duration(sp.p50_ns));
                    cells.push(STYLE.duration(sp.p99_ns));
                }
                _ => cells.extend([NONE.to_string(), NONE.to_string()]),
            }
        }
        let (finished, missed) = s.frame_totals();
        cells.push(STYLE.count(finished));
        cells.push(STYLE.count(missed));
        cells.push(
            s.miss_rate()
                .map_or(NONE.to_string(), |m| percent(m * 100.0)),
        );
        row(out, cells);
    }
}

fn labels(s: &heimdall_perf_core::StationInfo) -> String {
    let mut cell = String::new();
    for (i, (k, v)) in s.labels.iter().enumerate() {
        if i > 0 {
            cell.push_str(", ");
        }
        escape_into(&mut cell, k);
        cell.push_str(" = ");
        escape_into(&mut cell, v);
    }
    if cell.is_empty() {
        cell.push_str(NONE);
    }
    cell
}

fn percent(v: f64) -> String {
    STYLE.value(v, &Unit::parse("%"))
}
