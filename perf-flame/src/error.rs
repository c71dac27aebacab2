//! [`FlameError`]: everything that can go wrong while folding or rendering.

use heimdall_perf_core::units::Style;

/// A duration given in µs, as error messages (plain text) write it.
fn us(v: f64) -> String {
    Style::Text.duration(v * 1e3)
}

/// Why a flamegraph or a folded-stack file could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlameError {
    /// A [`FlameOptions`](crate::FlameOptions) field has a value the renderer cannot use.
    #[error("invalid flamegraph option `{option}` = {value}: {reason}")]
    InvalidOption {
        /// Name of the field.
        option: &'static str,
        /// The value given, as text.
        value: String,
        /// What is accepted.
        reason: &'static str,
    },

    /// The span times add up to more than a flamegraph can count.
    #[error(
        "the spans of session `{session}` add up to {}, more than the {} a flamegraph can draw",
        us(*total_us as f64),
        us(*max_us as f64)
    )]
    TooLarge {
        /// Session name.
        session: String,
        /// Sum of the weights, in microseconds.
        total_us: u128,
        /// The largest sum accepted.
        max_us: u64,
    },

    /// Writing the output failed.
    #[error("writing the {what} of session `{session}` failed: {source}")]
    Write {
        /// What was being written (`flamegraph SVG`, `folded stacks`…).
        what: &'static str,
        /// Session name.
        session: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// inferno refused the folded stacks or failed while drawing them.
    #[error("inferno could not draw the flamegraph of session `{session}`: {source}")]
    Inferno {
        /// Session name.
        session: String,
        /// inferno's error.
        #[source]
        source: std::io::Error,
    },

    /// The SVG written was not UTF-8 (never expected from inferno; reported, not unwrapped).
    #[error("the flamegraph SVG of session `{session}` is not valid UTF-8: {source}")]
    NotUtf8 {
        /// Session name.
        session: String,
        /// The decoding error.
        #[source]
        source: std::string::FromUtf8Error,
    },
}
