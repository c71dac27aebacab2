//! The recording engine: per-thread event lanes, the `scope!` fast path, and aggregation.
//!
//! # How a span is recorded
//!
//! Every thread that records into a session owns a *lane*: a singly linked list of fixed-size
//! chunks of 16-byte events, written only by that thread and read only by the session's
//! aggregator (a single-producer, single-consumer queue). Entering a span appends
//! `(name id, TSC ticks)`, leaving it appends `(name id | EXIT, TSC ticks)`: a clock read and
//! a store each, no lock, no allocation (a new chunk is taken once per 4096 events, reusing the
//! chunks the aggregator handed back: up to eight a drain, one for an idle lane).
//!
//! The aggregator — a background thread per session, every 10 ms to 1 s depending on how fast
//! events come ([`IDLE_DRAIN_INTERVAL`]), and every snapshot — drains
//! the lanes, rebuilds each thread's stack of open spans, and keeps per span path (the stack
//! of names on a thread) count, total, self time, min/max and an HDR histogram, plus the most
//! recent spans in a ring. Memory is bounded: a lane that runs more than
//! [`BACKLOG_SELF_DRAIN`] chunks ahead of the aggregator drains itself, a session keeps
//! at most [`MAX_PATHS`] distinct paths (further ones are counted under `<overflow>`), and
//! threads that exit are retired: their lane is freed, the most recent
//! [`RETAINED_EXITED_THREADS`] keep rows of their own, and older ones are folded into one
//! [`EXITED_THREADS_NAME`] row, so that pools which respawn threads neither grow memory nor
//! lose a span. Every cap counts what it folds (`Diagnostics`).
//!
//! # Where things live
//!
//! * `names`: the process-wide clock, span-name interning, and [`Callsite`].
//! * `lane`: chunks, events and the single-producer, single-consumer lane, with its
//!   producer end (`LaneWriter`) and its consumer side (`Lane::drain`). All of the
//!   recorder's raw-pointer code, and every `SAFETY` argument, is there, behind that safe
//!   API; the other files need none.
//! * `aggregate`: span paths and `Aggregate`, a session's figures per path: the events of
//!   the lanes turned into span statistics and the timeline, exited threads retired and
//!   folded.
//! * `session_core`: `SessionCore`, a session's shared recording state: its lanes, its
//!   aggregate, and the drain that moves the one into the other.
//! * `active`: the active sessions, the one `scope!` records into, and [`is_recording`].
//! * `producer`: the thread-local producer side: [`ScopeGuard`] (`scope!`), the end of a
//!   span, and the named timings of `start_timing` / `stop_timing`.

use std::time::Duration;

mod active;
mod aggregate;
mod capture;
mod frame_agg;
mod frames;
mod lane;
mod names;
mod producer;
mod session_core;

pub use active::is_recording;
pub(crate) use capture::Capture;
pub use capture::{DEFAULT_STREAM_EVENTS, DEFAULT_TRACE_EVENTS};
pub use frames::{Frame, FrameSite, FrameSource};
pub use names::Callsite;
pub use producer::ScopeGuard;
pub(crate) use session_core::StreamState;

pub(crate) use active::{activate, deactivate};
pub(crate) use names::{clock, intern, lookup, name_of, same_text};
pub(crate) use producer::{start_named, stop_innermost, stop_named, StopError};
pub(crate) use session_core::SessionCore;

/// Events per chunk of a lane.
pub const CHUNK_EVENTS: usize = 4096;
/// Chunks a lane may run ahead of the aggregator before the recording thread drains it
/// itself (bounds memory at about 4 MiB per thread however slow the aggregator is, 5 MiB
/// with the read chunks handed back to the writer).
pub const BACKLOG_SELF_DRAIN: usize = 64;
/// Distinct span paths a session keeps; spans on further paths are counted under
/// `<overflow>` so that memory stays bounded even with unbounded name sets.
pub const MAX_PATHS: usize = 10_000;
/// Span nesting depth a thread's span tree keeps; spans opened deeper (guards leaked in a
/// loop, say) are counted under `<overflow>`.
pub const MAX_DEPTH: usize = 256;
/// Distinct span names the process keeps (names live as long as the process, since
/// callsites of every session share them); further names are counted under `<overflow>`.
pub const MAX_NAMES: usize = 100_000;
/// Recent spans kept for the timeline.
pub const TIMELINE_CAPACITY: usize = 4096;
/// The shortest wait of the background aggregator between passes: lanes that bring events
/// fast (a chunk, [`CHUNK_EVENTS`] events, or more in that time) are drained this often.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest the background aggregator waits between passes. While events come, the
/// wait is the time the lanes took to bring about a chunk ([`CHUNK_EVENTS`] events), within
/// [`DRAIN_INTERVAL`] and this: a 60 fps line (a few thousand events a second) costs one
/// pass a second, not a hundred. After passes that found nothing the wait doubles up to
/// this. A lane that runs [`BACKLOG_WAKE`] chunks ahead wakes the aggregator at once,
/// whatever its wait, and so does every 32nd thread that exits. Frames settle on the pass
/// after the one that read their end; reports, snapshots and scrapes drain and settle
/// everything themselves, so they never wait for a pass. A streamed trace window's file is
/// written a pass at a time; the aggregator passes at the window's end and twice more,
/// 10 ms apart, to close it.
///
/// Each pass costs a wake-up (30–80 µs of CPU on a VM) whatever it reads: at 100 ms, the
/// passes alone cost a light 60 fps line about 3 % of its CPU.
pub const IDLE_DRAIN_INTERVAL: Duration = Duration::from_secs(1);
/// Chunks a lane may run ahead of the aggregator before its writer wakes the aggregator
/// (once per chunk from there, well before [`BACKLOG_SELF_DRAIN`]).
pub const BACKLOG_WAKE: usize = 8;

/// Set in the id of an event that ends a span (the id of one that begins it is the name id).
const EXIT: u32 = 1 << 31;
/// Name of the path that collects spans past [`MAX_PATHS`].
pub const OVERFLOW_NAME: &str = "<overflow>";
/// Exited threads whose spans keep rows of their own (the most recent ones); the spans of
/// earlier exited threads are merged into one [`EXITED_THREADS_NAME`] row.
pub const RETAINED_EXITED_THREADS: usize = 32;
/// Thread name of the row that holds the spans of exited threads past
/// [`RETAINED_EXITED_THREADS`]; its thread id is [`EXITED_THREADS_ID`].
pub const EXITED_THREADS_NAME: &str = "<exited threads>";
/// Thread id of the [`EXITED_THREADS_NAME`] row (real threads are numbered from 1).
pub const EXITED_THREADS_ID: u64 = 0;
/// Lane index of the exited-threads row.
const EXITED_LANE: u32 = u32::MAX;
/// Marks an exit event emitted for a span whose guard was never dropped (leaked with
/// `mem::forget`), closed when an enclosing span ended (and counted).
const LEAKED: u32 = 1 << 30;
/// Set in the id of a frame event (kind in bits 24..29, see `frame_agg`).
const FRAME: u32 = 1 << 29;
/// Frame sources per session; frames of further sources are not recorded.
pub const MAX_FRAME_SOURCES: usize = 256;
/// Stages per frame source; further stages are timed as spans but not as stages.
pub const MAX_STAGES_PER_SOURCE: usize = 64;
/// Frames begun and not yet ended that a session keeps; past it, the oldest are let go
/// (`abandoned_frames`).
pub const MAX_FRAMES_IN_FLIGHT: usize = 65_536;
/// Drop reasons per frame source; further ones are counted under `<overflow>`.
pub const MAX_DROP_REASONS: usize = 64;
/// Distinct drop reasons a process names; further new ones are `<overflow>` (reasons share
/// the process's names with spans, stages and sources).
pub const MAX_DROP_REASON_NAMES: usize = 1024;
/// Incidents (worst missed frames) a session keeps unless told otherwise.
pub const DEFAULT_MAX_INCIDENTS: usize = 32;
/// Frames shown before each incident.
pub const INCIDENT_PREVIOUS_FRAMES: usize = 3;
/// Windows of a source's frames over time (they widen as the session runs).
pub const FRAME_WINDOWS: usize = 256;
/// Id of [`OVERFLOW_NAME`], interned first.
pub(crate) const OVERFLOW_ID: u32 = 1;
