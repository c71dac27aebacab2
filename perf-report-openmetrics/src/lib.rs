//! OpenMetrics (Prometheus) text report sink of heimdall-perf.
