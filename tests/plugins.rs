//! OpenMetrics through the facade, both ways a user gets it: compiled in (feature
//! `openmetrics`), and as the drop-in `.so` loaded at run time (feature `plugins`) — the same
//! bytes, and clean for `promtool check metrics`.

use heimdall_perf_testkit::{plugins as common, promtool};

use std::sync::Arc;

use heimdall_perf::reports::ReportFormat;
use heimdall_perf::{init, scope, Measurement, MetricType, PerfError, ProfilingManager, Registry};

const PLUGIN: &str = "heimdall-perf-plugin-openmetrics";

#[test]
fn openmetrics_compiled_in_and_as_a_plugin_agree_and_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let so = common::build_cdylibs(&[PLUGIN])
        .and_then(|mut m| {
            m.remove(PLUGIN)
                .ok_or_else(|| format!("no library for {PLUGIN}"))
        })
        .unwrap_or_else(|e| panic!("building the OpenMetrics plugin failed: {e}"));

    // 1. As a user of the default build: compiled in, and the same plugin named in
    //    HEIMDALL_PERF_PLUGINS is refused (its format is taken) without stopping `init`.
    std::env::set_var(heimdall_perf::PLUGINS_ENV, &so);
    let manager = init(dir.path().join("builtin")).unwrap();
    std::env::remove_var(heimdall_perf::PLUGINS_ENV);
    let e = manager
        .lock()
        .unwrap()
        .load_plugin(&so)
        .err()
        .expect("duplicate refused");
    assert!(matches!(e, PerfError::DuplicateFormat { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("built-in") && msg.contains(&so.display().to_string()),
        "{msg}"
    );

    let session = manager.lock().unwrap().start_session("om").unwrap();
    for _ in 0..50 {
        let _f = scope!("frame");
        let _d = scope!("detect");
    }
    session.lock().unwrap().add_measurement(Measurement::new(
        "fps",
        MetricType::Throughput,
        59.9,
        "fps",
    ));
    let report = session.lock().unwrap().report();
    let builtin_path = dir.path().join("builtin.prom");
    session
        .lock()
        .unwrap()
        .save_report(&builtin_path, ReportFormat::from("openmetrics"))
        .unwrap();
    let builtin = std::fs::read_to_string(&builtin_path).unwrap();
    promtool::promtool_check(&builtin).unwrap();
    assert!(
        builtin.contains("frame;detect") && builtin.ends_with("# EOF\n"),
        "{builtin}"
    );

    // 2. As a user of a build without the format: only the plugin loader, then the `.so`.
    let registry = Arc::new(Registry::new());
    registry.set_plugin_loader(heimdall_perf::plugins::loader());
    let bare = ProfilingManager::new(dir.path().join("plugin"), Arc::clone(&registry)).unwrap();
    let sink = bare.load_plugin(&so).unwrap();
    assert_eq!(sink.format_id(), "openmetrics");
    assert!(sink.origin().contains(&so.display().to_string()));
    let plugin_path = dir.path().join("plugin.prom");
    registry
        .render_to_file(&report, &plugin_path, "openmetrics")
        .unwrap();
    let from_plugin = std::fs::read_to_string(&plugin_path).unwrap();
    promtool::promtool_check(&from_plugin).unwrap();
    let again = dir.path().join("builtin-again.prom");
    manager
        .lock()
        .unwrap()
        .registry()
        .render_to_file(&report, &again, "openmetrics")
        .unwrap();
    assert_eq!(from_plugin, std::fs::read_to_string(&again).unwrap());
    manager.lock().unwrap().stop_session().unwrap();
}

#[test]
fn a_bad_plugin_is_refused_and_the_host_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let manager = init(dir.path()).unwrap();
    let m = manager.lock().unwrap();
    let e = m
        .load_plugin("/nonexistent/libnothing.so")
        .err()
        .expect("refused");
    assert!(e.to_string().contains("/nonexistent/libnothing.so"), "{e}");
    let before = m.registry().format_ids();
    let libm = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    if let Some(libm) = libm {
        let e = m.load_plugin(libm).err().expect("refused");
        assert!(e.to_string().contains("libm.so.6"), "{e}");
    }
    assert_eq!(
        m.registry().format_ids(),
        before,
        "nothing registered by a refused plugin"
    );
}
