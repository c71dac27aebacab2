//! [`FlameOptions`]: how a flamegraph is folded and drawn, its builder methods and the
//! checks on its values ([`FlameOptions::validate`]).

use crate::FlameError;

/// Smallest fixed image width accepted, in pixels.
const MIN_IMAGE_WIDTH: usize = 100;

/// How to fold and draw a flamegraph, modelled on inferno's `flamegraph::Options`.
///
/// `FlameOptions::default()` is one root per thread, flames growing up, frames under
/// 0.01 % of the width left out, a fluid width, the session's name and duration as title.
/// Set options with the `with_…` methods; the sinks check them with
/// [`validate`](FlameOptions::validate) before drawing.
///
/// ```
/// use heimdall_perf_flame::FlameOptions;
/// let icicle = FlameOptions::default()
///     .with_inverted(true)
///     .with_min_width_percent(0.5)
///     .with_image_width(800);
/// assert!(icicle.validate().is_ok());
/// let e = FlameOptions::default().with_image_width(10).validate().unwrap_err();
/// assert!(e.to_string().contains("`image_width` = 10"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FlameOptions {
    /// One tree for all threads (no thread root frame) instead of one root per thread.
    pub merge_threads: bool,
    /// Icicle graph: roots at the top, stacks growing down.
    pub inverted: bool,
    /// Frames narrower than this percentage of the whole width are left out (0 keeps all;
    /// 0 to 100).
    pub min_width_percent: f64,
    /// Title; `None` for the session name and duration (`line-3 inspection — 10.0 s`).
    pub title: Option<String>,
    /// Width in pixels (at least 100); `None` to fill the container.
    pub image_width: Option<usize>,
    /// Differential graphs only: scale the "before" report to the "after" total, to compare
    /// where time goes rather than how much there was.
    pub normalize_differential: bool,
}

impl Default for FlameOptions {
    fn default() -> Self {
        FlameOptions {
            merge_threads: false,
            inverted: false,
            min_width_percent: 0.01,
            title: None,
            image_width: None,
            normalize_differential: false,
        }
    }
}

impl FlameOptions {
    /// One tree for all threads (`true`) or one root frame per thread (`false`, the
    /// default).
    #[must_use]
    pub fn with_merge_threads(mut self, merge: bool) -> Self {
        self.merge_threads = merge;
        self
    }

    /// An icicle graph (`true`: roots at the top) or flames growing up (`false`, the
    /// default).
    #[must_use]
    pub fn with_inverted(mut self, inverted: bool) -> Self {
        self.inverted = inverted;
        self
    }

    /// Leaves out frames narrower than `percent` of the width (0 keeps all; 0 to 100).
    #[must_use]
    pub fn with_min_width_percent(mut self, percent: f64) -> Self {
        self.min_width_percent = percent;
        self
    }

    /// A title instead of the session's name and duration.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// A fixed width in pixels (at least 100), or `None` to fill the container (the
    /// default).
    #[must_use]
    pub fn with_image_width(mut self, pixels: impl Into<Option<usize>>) -> Self {
        self.image_width = pixels.into();
        self
    }

    /// Differential graphs only: scale the "before" report to the "after" total.
    #[must_use]
    pub fn with_normalize_differential(mut self, normalize: bool) -> Self {
        self.normalize_differential = normalize;
        self
    }

    /// Checks the options, naming the first bad one and its value: `min_width_percent`
    /// must be a percentage from 0 to 100, `image_width` at least 100 pixels.
    pub fn validate(&self) -> Result<(), FlameError> {
        if !(self.min_width_percent.is_finite() && (0.0..=100.0).contains(&self.min_width_percent))
        {
            return Err(FlameError::InvalidOption {
                option: "min_width_percent",
                value: self.min_width_percent.to_string(),
                reason: "must be a percentage from 0 to 100",
            });
        }
        if let Some(w) = self.image_width {
            if w < MIN_IMAGE_WIDTH {
                return Err(FlameError::InvalidOption {
                    option: "image_width",
                    value: w.to_string(),
                    reason: "must be at least 100 pixels (or None for a fluid width)",
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_their_field_and_validation_names_the_option() {
        let o = FlameOptions::default()
            .with_merge_threads(true)
            .with_inverted(true)
            .with_min_width_percent(0.0)
            .with_title("t")
            .with_image_width(MIN_IMAGE_WIDTH)
            .with_normalize_differential(true);
        assert!(o.merge_threads && o.inverted && o.normalize_differential);
        assert_eq!((o.min_width_percent, o.title.as_deref()), (0.0, Some("t")));
        assert_eq!(o.image_width, Some(MIN_IMAGE_WIDTH));
        assert!(o.validate().is_ok());
        assert_eq!(o.with_image_width(None).image_width, None);
        for (bad, option) in [
            (
                FlameOptions::default().with_min_width_percent(f64::NAN),
                "min_width_percent",
            ),
            (
                FlameOptions::default().with_min_width_percent(100.5),
                "min_width_percent",
            ),
            (FlameOptions::default().with_image_width(99), "image_width"),
        ] {
            let e = bad.validate().unwrap_err();
            assert!(
                matches!(e, FlameError::InvalidOption { option: o, .. } if o == option),
                "{e}"
            );
        }
    }
}
