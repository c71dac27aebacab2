//! The Stations section of a merged report, checked on the parsed page: one sortable row
//! per station with its own figures, names as text (never markup), and no such section for
//! a single run.

use heimdall_perf_core::units::{Style, Unit};
use heimdall_perf_core::{ReportSink, STATION_TABLE_SPANS};
use heimdall_perf_report_html::HtmlSink;
use heimdall_perf_testkit::{fleet_report, sample_report, HOSTILE_NAME};
use scraper::{ElementRef, Html, Selector};

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: ElementRef<'_>) -> String {
    e.text().collect()
}

#[test]
fn the_stations_are_side_by_side_with_their_own_figures() {
    let fleet = fleet_report();
    let html = HtmlSink::new().render_to_string(&fleet).unwrap();
    let doc = Html::parse_document(&html);
    assert_eq!(doc.select(&sel("nav a[href='#stations']")).count(), 1);
    let table = doc
        .select(&sel("section#stations table#station-table.sortable"))
        .next()
        .expect("the stations table");
    let heads: Vec<String> = table.select(&sel("thead th")).map(text).collect();
    let main = fleet.main_span_paths(STATION_TABLE_SPANS);
    assert_eq!(heads.len(), 4 + 2 * main.len() + 3, "{heads:?}");
    assert_eq!(heads[..4], ["Station", "Labels", "Host", "Duration"]);
    assert_eq!(heads[4], format!("{} p50", main[0].last().unwrap()));
    assert_eq!(heads[heads.len() - 1], "Miss rate");

    let rows: Vec<Vec<String>> = table
        .select(&sel("tbody tr"))
        .map(|r| r.select(&sel("td")).map(text).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    let style = Style::Typographic;
    for (row, station) in rows.iter().zip(&fleet.stations) {
        assert_eq!(row.len(), heads.len());
        assert_eq!(row[0], station.name);
        assert_eq!(row[2], station.host);
        assert_eq!(row[3], style.duration(station.duration_ns as f64));
        let (finished, missed) = station.frame_totals();
        assert_eq!(row[row.len() - 3], style.count(finished));
        assert_eq!(row[row.len() - 2], style.count(missed));
        assert_eq!(
            row[row.len() - 1],
            style.value(station.miss_rate().unwrap() * 100.0, &Unit::parse("%"))
        );
        for (i, p) in main.iter().enumerate() {
            let (p50, p99) = (&row[4 + 2 * i], &row[5 + 2 * i]);
            match station.span(p) {
                Some(s) => {
                    assert_eq!(*p50, style.duration(s.p50_ns));
                    assert_eq!(*p99, style.duration(s.p99_ns));
                }
                None => assert_eq!((p50.as_str(), p99.as_str()), ("–", "–")),
            }
        }
    }
    // The hostile station is its name as text: nothing of it became markup.
    assert_eq!(rows[1][0], HOSTILE_NAME);
    assert!(rows[1][1].contains(HOSTILE_NAME), "{}", rows[1][1]);
    assert!(!html.contains("<script>alert"));
    assert_eq!(doc.select(&sel("script")).count(), 1);
    // East lacks nothing; the hostile station lacks frame › detect.
    assert!(fleet.stations[1]
        .span(&["frame".into(), "detect".into()])
        .is_none());
    assert!(main.iter().any(|p| *p == ["frame", "detect"]));
}

#[test]
fn a_single_run_has_no_stations_section() {
    let html = HtmlSink::new().render_to_string(&sample_report()).unwrap();
    assert!(!html.contains("id=\"stations\"") && !html.contains("#stations"));
}
