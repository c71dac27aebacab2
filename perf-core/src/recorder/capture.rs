//! The trace capture: every span (and, in `frame_agg`, every frame) of a bounded window of
//! time, kept by the aggregator as it reads the lanes — the recording threads do nothing
//! more while a capture runs, and the statistics are untouched.
//!
//! A captured span names its own path and lane (`CapPath`), made when the capture first
//! meets that path: spans keep their thread when the thread exits and its rows are folded
//! into `<exited threads>`, and a fold costs nothing per captured span.

use quanta::Clock;
use rustc_hash::FxHashMap;

use super::session_core::LaneThread;
use crate::report::TimelineSpan;

/// Spans and frames a capture keeps unless told otherwise: 1.3 million, about 30 MiB of
/// spans (24 bytes each), so that with the copy a report takes the peak stays under 64 MiB —
/// ten seconds of a line at 60 fps with two thousand spans a frame.
pub const DEFAULT_TRACE_EVENTS: usize = 1_300_000;

/// Spans and frames a streamed capture writes unless told otherwise: 10 million — a span is
/// 100 bytes of JSON or more (its whole path is in each event, so deep paths with long names
/// take 500), so a file of 1 to 5 GiB: minutes of a busy line, hours of a quiet one.
pub const DEFAULT_STREAM_EVENTS: u64 = 10_000_000;

/// What a capture streamed to a file has handed out so far (the writer itself is beside
/// the aggregate, in `SessionCore`, so that file writes never hold the aggregate's lock).
pub(crate) struct Streamed {
    /// The most spans and frames the stream takes.
    pub(crate) limit: u64,
    /// Spans and frames handed out in batches.
    pub(crate) taken: u64,
    /// Paths handed out (the next batch's `first_path`): the capture's `paths` then holds
    /// only the paths not handed out yet, the first of them numbered `paths_sent`.
    pub(crate) paths_sent: usize,
}

/// A path of the capture: the lane that ran it and its names from the root.
pub(crate) struct CapPath {
    pub(crate) lane: u32,
    pub(crate) names: Vec<u32>,
}

/// A capture window as the aggregator fills it.
pub(crate) struct Capture {
    /// Raw tick of the window's start.
    pub(crate) start: u64,
    /// Length of the window.
    pub(crate) window_ns: u64,
    /// Spans that began and ended in the window (`span` indexes `paths`; start and duration
    /// from the session start).
    pub(crate) spans: Vec<TimelineSpan>,
    /// The paths of the spans.
    pub(crate) paths: Vec<CapPath>,
    /// Path slot of the aggregate → index in `paths`, for the slots in use.
    slots: FxHashMap<u32, u32>,
    /// The limit of spans and frames together.
    pub(crate) max_events: usize,
    /// Frames kept so far (counted against `max_events`).
    pub(crate) frames: usize,
    /// Spans and frames past the limit.
    pub(crate) dropped: u64,
    /// Threads that exited and were folded during the capture: their spans keep their name.
    pub(crate) gone: FxHashMap<u32, LaneThread>,
    /// Set for a capture streamed to a file: the spans and frames above are then only those
    /// of the current batch (`max_events` bounds a batch), handed out each drain pass.
    pub(crate) streamed: Option<Streamed>,
}

impl Capture {
    pub(crate) fn new(start: u64, window_ns: u64, max_events: usize) -> Self {
        Capture {
            start,
            window_ns,
            spans: Vec::new(),
            paths: Vec::new(),
            slots: FxHashMap::default(),
            max_events,
            frames: 0,
            dropped: 0,
            gone: FxHashMap::default(),
            streamed: None,
        }
    }

    /// A capture streamed to a file: at most `limit` spans and frames in all, and at most
    /// `batch` of them waiting in memory for the next drain pass.
    pub(crate) fn streamed(start: u64, window_ns: u64, batch: usize, limit: u64) -> Self {
        Capture {
            streamed: Some(Streamed {
                limit,
                taken: 0,
                paths_sent: 0,
            }),
            ..Capture::new(start, window_ns, batch)
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
        let pending = self.spans.len() + self.frames;
        let streamable = self
            .streamed
            .as_ref()
            .is_none_or(|s| s.taken.saturating_add(pending as u64) < s.limit);
        if pending < self.max_events && streamable {
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// A span of path slot `slot` (on `lane`, with names given by `names` when the capture
    /// meets the slot first) from `begin` to `end` (raw ticks), if it lies in the window
    /// and fits.
    #[inline]
    pub(crate) fn span(
        &mut self,
        slot: u32,
        lane: u32,
        names: impl FnOnce() -> Vec<u32>,
        (begin, end): (u64, u64),
        clock: &Clock,
        t0: u64,
    ) {
        if !(self.holds(begin, end, clock) && self.room()) {
            return;
        }
        let path = match self.slots.get(&slot) {
            Some(&p) => p,
            None => {
                self.paths.push(CapPath {
                    lane,
                    names: names(),
                });
                // A streamed capture keeps only the paths of its current batch: the number
                // of those handed out before goes first.
                let sent = self.streamed.as_ref().map_or(0, |s| s.paths_sent);
                let p = (sent + self.paths.len() - 1) as u32;
                self.slots.insert(slot, p);
                p
            }
        };
        if self.spans.len() == self.spans.capacity() {
            // Grow towards the limit, never past it.
            let room = self.max_events.saturating_sub(self.spans.len()).max(1);
            self.spans
                .reserve_exact(self.spans.len().max(1024).min(room));
        }
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

    /// The path slots `slots` are freed (their lane was folded): later spans in them are
    /// other paths.
    pub(crate) fn forget_slots(&mut self, slots: &[u32]) {
        if !self.slots.is_empty() {
            for s in slots {
                self.slots.remove(s);
            }
        }
    }
}
