//! Helpers shared by the tests of the CLI.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};

use heimdall_perf::reports::{Report, ReportSink};

/// Saves `report` as JSON at `path` (making its folder), as a run would; returns the path.
pub fn write_report(report: &Report, path: &Path) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let json = heimdall_perf_report_json::JsonSink::new()
        .render_to_string(report)
        .unwrap();
    std::fs::write(path, json).unwrap();
    path.to_path_buf()
}

/// The report saved at `path`.
pub fn read_report(path: &Path) -> Report {
    heimdall_perf_report_json::read_report(path).unwrap()
}
