//! A merged report (`heimdall_perf::reports::merge_reports`) renders in every built-in
//! format, each showing the stations apart: JSON round-trips with its stations, Markdown and
//! HTML have the Stations table, the flamegraph, folded stacks and trace name each thread
//! `station/thread`, OpenMetrics labels each station's metrics with its `station`.

#![cfg(all(
    feature = "json",
    feature = "markdown",
    feature = "html",
    feature = "flame",
    feature = "openmetrics",
    feature = "trace"
))]

use heimdall_perf::reports::{merge_reports, MergeError, Report};
use heimdall_perf_testkit::fleet_report;

#[test]
fn a_merged_report_renders_in_every_format() {
    let fleet = fleet_report();
    let registry = heimdall_perf::default_registry().unwrap();
    let mut seen = Vec::new();
    for sink in registry.sinks() {
        let id = sink.format_id().to_string();
        let text = sink
            .render_to_string(&fleet)
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let expect = match id.as_str() {
            "json" => "\"stations\"",
            "markdown" => "\n## Stations\n",
            "html" => "id=\"station-table\"",
            "flamegraph" => "east/processing",
            "folded" => "east/processing;frame;detect ",
            "trace" => "\"east/processing\"",
            "openmetrics" => "station=\"east\"",
            other => panic!("a format this test does not know: {other}"),
        };
        assert!(text.contains(expect), "{id}: no {expect:?} in\n{text}");
        seen.push(id);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "flamegraph",
            "folded",
            "html",
            "json",
            "markdown",
            "openmetrics",
            "trace"
        ]
    );
    let json = registry
        .sink("json")
        .unwrap()
        .render_to_string(&fleet)
        .unwrap();
    let back: Report = heimdall_perf::json::from_slice(json.as_bytes()).unwrap();
    assert_eq!(back.stations, fleet.stations);
}

#[test]
fn the_facade_refuses_what_cannot_merge() {
    let e = merge_reports(Vec::<(String, Report)>::new()).unwrap_err();
    assert_eq!(e, MergeError::Empty);
}
