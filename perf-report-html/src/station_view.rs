//! The Stations section of a merged report (`heimdall-perf merge`): the stations side by
//! side, one row each — labels, host, duration, the p50 and p99 of the fleet's main span
//! paths as each station measured them, and its frames finished, missed and miss rate. A
//! single run has no stations and the page no such section.
//!
//! ```
//! use heimdall_perf_core::{merge_reports, ReportSink};
//! use heimdall_perf_report_html::HtmlSink;
//!
//! let run = heimdall_perf_testkit::sample_report;
//! // Another run (the same run twice is refused): started a second later.
//! let mut west = run();
//! west.session.start_unix_ns += 1_000_000_000;
//! let fleet = merge_reports([("east", run()), ("west", west)]).unwrap();
//! let html = HtmlSink::new().render_to_string(&fleet).unwrap();
//! assert!(html.contains(r##"<a href="#stations">Stations</a>"##));
//! assert!(html.contains(r#"<table class="sortable" id="station-table">"#));
//!
//! let single = HtmlSink::new().render_to_string(&run()).unwrap();
//! assert!(!single.contains("station-table"));
//! ```

use heimdall_perf_core::units::Unit;
use heimdall_perf_core::{Report, STATION_TABLE_SPANS};

use crate::view::Cell;
use crate::STYLE;

/// A span path shown as two columns (p50, p99).
#[derive(Debug, Clone)]
pub(crate) struct SpanColumn {
    /// The span's own name.
    pub name: String,
    /// Its full path, joined by ` › `.
    pub path: String,
}

/// One station's row.
#[derive(Debug, Clone)]
pub(crate) struct StationRow {
    /// Station name.
    pub name: String,
    /// Its labels as `k = v` pairs.
    pub labels: String,
    /// Host.
    pub host: String,
    /// Numbers: duration, p50 and p99 per span column, frames, missed, miss rate.
    pub cells: Vec<Cell>,
}

/// The Stations section.
#[derive(Debug, Clone)]
pub(crate) struct StationsView {
    /// What the table shows.
    pub note: String,
    /// The main span paths of the fleet.
    pub span_columns: Vec<SpanColumn>,
    /// One row per station, in the report's order.
    pub rows: Vec<StationRow>,
}

fn missing() -> Cell {
    Cell::new("–".into(), f64::NAN)
}

/// The section for `report`, `None` for a single run.
pub(crate) fn stations(report: &Report) -> Option<StationsView> {
    if report.stations.is_empty() {
        return None;
    }
    let paths = report.main_span_paths(STATION_TABLE_SPANS);
    let rows = report
        .stations
        .iter()
        .map(|s| {
            let mut cells = vec![Cell::duration(s.duration_ns as f64)];
            for p in &paths {
                match s.span(p) {
                    Some(sp) if sp.count > 0 => {
                        cells.push(Cell::duration(sp.p50_ns));
                        cells.push(Cell::duration(sp.p99_ns));
                    }
                    _ => cells.extend([missing(), missing()]),
                }
            }
            let (finished, missed) = s.frame_totals();
            cells.push(Cell::new(STYLE.count(finished), finished as f64));
            cells.push(Cell::new(STYLE.count(missed), missed as f64));
            cells.push(match s.miss_rate() {
                Some(m) => Cell::new(STYLE.value(m * 100.0, &Unit::parse("%")), m),
                None => missing(),
            });
            StationRow {
                name: s.name.clone(),
                labels: s
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                host: s.host.clone(),
                cells,
            }
        })
        .collect();
    Some(StationsView {
        note: format!(
            "This report merges {} runs: the figures elsewhere add every station's up exactly (percentiles within one histogram bucket). Here, each station's own p50 and p99 of the {} span paths with the largest total time, and its frames: finished, missed and miss rate over its sources with a frame budget, as the Frames section counts them (a source without a budget cannot miss). Click a column to sort.",
            STYLE.count(report.stations.len() as u64),
            STYLE.count(paths.len() as u64)
        ),
        span_columns: paths
            .iter()
            .map(|p| SpanColumn {
                name: p.last().cloned().unwrap_or_default(),
                path: p.join(" › "),
            })
            .collect(),
        rows,
    })
}
