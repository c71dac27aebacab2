//! # heimdall-perf-testkit
//!
//! Test scaffolding shared by the heimdall-perf crates, kept out of the published libraries:
//! a dev-dependency of the others, never published.
//!
//! * the fixed reports every sink is tested on ([`sample_report`], [`large_report`], the merged
//!   [`fleet_report`]) and the
//!   hostile strings it must survive ([`HOSTILE_NAME`], [`HOSTILE_NOTES`]);
//! * golden files ([`check_golden`]), a writer that always fails ([`FullDisk`]), a small
//!   deterministic generator ([`SplitMix`]);
//! * [`plugins`]: builds the workspace's plugin crates so tests load the real `.so`, and finds
//!   a real shared library that is not a plugin;
//! * [`promtool`]: runs `promtool check metrics` on OpenMetrics text;
//! * [`http`]: a minimal HTTP client for the live endpoint and Prometheus's API;
//! * [`child`]: runs one test of the running binary alone in a child process.
//!
//! ```
//! let report = heimdall_perf_testkit::sample_report();
//! assert!(report.span_total(&["frame", "detect"]).is_some());
//! ```

#![warn(missing_docs)]

pub mod child;
mod fixtures;
pub mod http;
pub mod plugins;
pub mod promtool;

pub use fixtures::*;
