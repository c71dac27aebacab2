//! The OpenMetrics report sink shipped as a drop-in heimdall-perf plugin (.so).
