//! The error type of heimdall-perf-report-openmetrics.

/// What can go wrong while writing OpenMetrics text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenMetricsError {
    /// Writing the text to its destination failed.
    #[error("cannot write the OpenMetrics text of session `{session}`: {source}")]
    Write {
        /// The session being written.
        session: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
