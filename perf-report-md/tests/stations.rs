//! The Stations table of a merged report: one row per station, side by side, with the
//! station's own p50/p99 of the fleet's main span paths and its frame miss rate; names and
//! labels escaped; nothing of the kind for a single run.

use heimdall_perf_core::{ReportSink, STATION_TABLE_SPANS};
use heimdall_perf_report_md::MarkdownSink;
use heimdall_perf_testkit as fixtures;

fn section(md: &str) -> &str {
    let start = md.find("\n## Stations\n").expect("a Stations section");
    let rest = &md[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

#[test]
fn a_merged_report_has_one_row_per_station_with_its_own_figures() {
    let fleet = fixtures::fleet_report();
    let md = MarkdownSink::new().render_to_string(&fleet).unwrap();
    let table = section(&md);
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| :---"))
        .collect();
    // The header and one row per station.
    assert_eq!(rows.len(), 3, "{table}");
    let main = fleet.main_span_paths(STATION_TABLE_SPANS);
    assert_eq!(main.len(), 3);
    for p in &main {
        assert!(
            rows[0].contains(&format!("{} p99", p.join(" › "))),
            "{table}"
        );
    }
    // East's own p99 of the first main path, as the run measured it.
    let east = &fleet.stations[0];
    let first = east.span(main[0]).unwrap();
    let p99 = heimdall_perf_core::units::Style::Text.duration(first.p99_ns);
    assert!(
        rows[1].starts_with(
            r#"| east | line = 3, station = cell-7 &lt;b&gt;"east"&lt;/b&gt; | inspection-01 | "#
        ),
        "{}",
        rows[1]
    );
    assert!(rows[1].contains(&format!(" {p99} |")), "{}", rows[1]);
    // Frames: the sample's sources, finished and missed, and the miss rate.
    let (finished, missed) = east.frame_totals();
    assert!(
        rows[1].ends_with(&format!(
            "| {} | {} | {} |",
            heimdall_perf_core::units::Style::Text.count(finished),
            missed,
            heimdall_perf_core::units::Style::Text.value(
                east.miss_rate().unwrap() * 100.0,
                &heimdall_perf_core::units::Unit::parse("%")
            )
        )),
        "{}",
        rows[1]
    );
    // The hostile station: one cell for its name, no raw HTML, and `–` for the path it
    // lacks (frame › detect).
    let odd = rows[2];
    assert!(
        odd.starts_with(r"| odd \| name \`with\` ticks↵and &lt;script&gt;"),
        "{odd}"
    );
    assert!(!table.contains("<script>"), "{table}");
    let detect = main.iter().position(|p| *p == ["frame", "detect"]).unwrap();
    let cells: Vec<&str> = odd.split(" | ").collect();
    assert_eq!(cells.len(), rows[0].split(" | ").count(), "{odd}");
    // Cells: station, labels, host, duration, then two per main path.
    assert_eq!(
        (cells[4 + 2 * detect], cells[5 + 2 * detect]),
        ("–", "–"),
        "{odd}"
    );
    assert_ne!(cells[4], "–", "{odd}");
}

#[test]
fn a_single_run_has_no_stations_section() {
    let md = MarkdownSink::new()
        .render_to_string(&fixtures::sample_report())
        .unwrap();
    assert!(!md.contains("## Stations"));
}
