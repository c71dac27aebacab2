//! The OpenMetrics plugin, built as a real `.so` and loaded: same bytes as the compiled-in
//! sink, and clean for `promtool check metrics`.

use heimdall_perf_testkit::{plugins as common, promtool};

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use heimdall_perf_core::{PerfError, Registry, Report, ReportSink};
use heimdall_perf_plugin::{loader, PluginSink};
use heimdall_perf_report_openmetrics::OpenMetricsSink;
use heimdall_perf_testkit::{sample_report, HOSTILE_NAME};

const PACKAGE: &str = "heimdall-perf-plugin-openmetrics";

/// The plugin's `.so`, built once for this test binary.
fn plugin_path() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        common::build_cdylibs(&[PACKAGE]).and_then(|mut m| {
            m.remove(PACKAGE)
                .ok_or_else(|| format!("no library built for {PACKAGE}"))
        })
    });
    match built {
        Ok(p) => p.clone(),
        Err(e) => panic!("building the OpenMetrics plugin failed: {e}"),
    }
}

fn through_plugin(report: &Report) -> String {
    let sink = PluginSink::load(&plugin_path()).unwrap_or_else(|e| panic!("{e}"));
    let bytes = sink.render_bytes(report).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// The compiled-in sink's text.
fn direct(report: &Report) -> String {
    OpenMetricsSink::new()
        .render_to_string(report)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn hostile_report() -> Report {
    let mut r = sample_report();
    r.session.name = HOSTILE_NAME.into();
    let mut m = r.metrics[0].clone();
    m.name = HOSTILE_NAME.into();
    m.labels.insert(HOSTILE_NAME.into(), HOSTILE_NAME.into());
    r.metrics.push(m);
    r
}

#[test]
fn the_plugin_and_the_crate_write_the_same_bytes() {
    for report in [sample_report(), hostile_report(), Report::empty("idle")] {
        let direct = direct(&report);
        let plugin = through_plugin(&report);
        assert_eq!(plugin, direct);
    }
    // And the text is the real thing, NaN included.
    let text = through_plugin(&sample_report());
    assert!(text.contains("# TYPE heimdall_span_duration_seconds histogram\n"));
    assert!(text.contains("heimdall_metric_sensor_temp_celsius{"));
    assert!(text.contains("} NaN\n"));
    // Frames and session labels cross the plugin boundary (the report travels as JSON).
    assert!(text.contains("heimdall_frames_missed_total{session=\"line-3 inspection\",line=\"3\","));
}

#[test]
fn promtool_accepts_the_crate_and_the_plugin_output() {
    for (how, text) in [
        ("crate", direct(&sample_report())),
        ("plugin", through_plugin(&sample_report())),
        ("plugin, hostile names", through_plugin(&hostile_report())),
    ] {
        if let Err(e) = promtool::promtool_check(&text) {
            panic!("{how}: {e}\n--- text ---\n{text}");
        }
    }
}

#[test]
fn the_plugin_registers_like_the_built_in_sink_and_clashes_with_it() {
    let path = plugin_path();
    let registry = Registry::new();
    registry.set_plugin_loader(loader());
    let sink = registry
        .load_plugin(&path)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sink.format_id(), "openmetrics");
    assert_eq!(sink.file_extension(), "prom");
    assert_eq!(sink.origin(), format!("plugin {}", path.display()));

    // Rendering through the registry writes the file the textfile collector reads.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("line3.prom");
    registry
        .render_to_file(&sample_report(), &out, "openmetrics")
        .unwrap_or_else(|e| panic!("{e}"));
    let written = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written, direct(&sample_report()));

    // The compiled-in sink cannot take the same id: the error names both.
    match registry.register_sink(Arc::new(OpenMetricsSink::new())) {
        Err(PerfError::DuplicateFormat {
            format,
            first,
            second,
        }) => {
            assert_eq!(format, "openmetrics");
            assert_eq!(first, format!("plugin {}", path.display()));
            assert_eq!(second, "built-in");
        }
        Err(e) => panic!("expected a duplicate, got {e}"),
        Ok(()) => panic!("the built-in sink was registered twice"),
    }
}
