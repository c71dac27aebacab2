//! The trace capture: every span (and, in `frame_agg`, every frame) of a bounded window of
//! time, kept by the aggregator as it reads the lanes — the recording threads do nothing
//! more while a capture runs, and the statistics are untouched.

use quanta::Clock;

use crate::report::TimelineSpan;

/// Spans and frames a capture keeps unless told otherwise: 2 million, about 48 MiB of spans
/// (24 bytes each) — ten seconds of a line at 60 fps with a few thousand spans a frame.
pub const DEFAULT_TRACE_EVENTS: usize = 2_000_000;

/// A capture window as the aggregator fills it.
pub(crate) struct Capture {
    /// Raw tick of the window's start.
    pub(crate) start: u64,
    /// Length of the window.
    pub(crate) window_ns: u64,
    /// Spans (path slot, start and duration from the session start) that began and ended in
    /// the window.
    pub(crate) spans: Vec<TimelineSpan>,
    /// The limit of spans and frames together.
    pub(crate) max_events: usize,
    /// Frames kept so far (counted against `max_events`).
    pub(crate) frames: usize,
    /// Spans and frames past the limit.
    pub(crate) dropped: u64,
}

impl Capture {
    pub(crate) fn new(start: u64, window_ns: u64, max_events: usize) -> Self {
        Capture {
            start,
            window_ns,
            spans: Vec::new(),
            max_events,
            frames: 0,
            dropped: 0,
        }
    }

    /// Whether the interval `[begin, end]` (raw ticks) lies in the window.
    #[inline]
    pub(crate) fn holds(&self, begin: u64, end: u64, clock: &Clock) -> bool {
        begin >= self.start
            && end >= begin
            && clock.delta_as_nanos(self.start, end) <= self.window_ns
    }

    /// Whether one more event fits; counts it as dropped when it does not.
    #[inline]
    pub(crate) fn room(&mut self) -> bool {
        if self.spans.len() + self.frames < self.max_events {
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// A span of path slot `path` from `begin` to `end` (raw ticks), if it lies in the
    /// window and fits.
    #[inline]
    pub(crate) fn span(&mut self, path: u32, begin: u64, end: u64, clock: &Clock, t0: u64) {
        if self.holds(begin, end, clock) && self.room() {
            // Start and end rounded to nanoseconds each, the duration their difference: a
            // child never ends past its parent by a rounding.
            let start_ns = clock.delta_as_nanos(t0, begin);
            let end_ns = clock.delta_as_nanos(t0, end);
            self.spans.push(TimelineSpan {
                span: path as usize,
                start_ns,
                duration_ns: end_ns.saturating_sub(start_ns),
            });
        }
    }
}
