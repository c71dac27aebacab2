//! Streamed trace captures: a capture window longer than memory allows is handed, batch by
//! batch, to a [`TraceStream`] that appends it to a file from the aggregator thread
//! (`ProfilingSession::stream_trace`). perf-core knows no format: the facade registers the
//! trace crate's writer as the registry's [`TraceStreamFactory`].

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::report::{CapturedFrame, CapturedPath, TimelineSpan};

/// What a streamed capture knows when it opens: the session and the window.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamHeader {
    /// Session name.
    pub session: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Session start, RFC 3339.
    pub started_at: String,
    /// Session start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Session labels.
    pub labels: BTreeMap<String, String>,
    /// Version of the crate that records.
    pub crate_version: String,
    /// Window start, from the session start.
    pub start_ns: u64,
    /// Window length.
    pub window_ns: u64,
    /// The most spans and frames the stream takes; past it they are counted as dropped.
    pub max_events: u64,
}

/// One batch of a streamed capture: what the aggregator settled since the batch before.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TraceBatch<'a> {
    /// Paths met for the first time in this batch; path `first_path + i` is `new_paths[i]`.
    pub new_paths: &'a [CapturedPath],
    /// Index of the first of `new_paths` (the number of paths of earlier batches).
    pub first_path: usize,
    /// Spans that began and ended in the window (`span` indexes every path sent so far).
    pub spans: &'a [TimelineSpan],
    /// Frames settled in the window, with their stages.
    pub frames: &'a [CapturedFrame],
}

/// How a streamed capture ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamEnd {
    /// Window start, from the session start.
    pub start_ns: u64,
    /// When the window closed (its planned end, or the session's stop), from the session
    /// start.
    pub end_ns: u64,
    /// Spans written.
    pub spans: u64,
    /// Frames written.
    pub frames: u64,
    /// Spans and frames of the window not written (past the limit, or while the aggregator
    /// could not keep up); they are in the statistics.
    pub dropped: u64,
    /// Why the window closed: `window` (its length passed), `stopped` (the session stopped)
    /// or `replaced` (a new capture started).
    pub reason: &'static str,
}

/// Appends a streamed capture to its destination. Called from the session's aggregator
/// thread (and from the thread that stops the session), never from a recording thread.
pub trait TraceStream: Send {
    /// Appends a batch. An error ends the stream: the capture stops writing and the
    /// session's report says why.
    fn append(&mut self, batch: &TraceBatch<'_>) -> io::Result<()>;

    /// Closes the stream: called once, after the last batch.
    fn finish(&mut self, end: &StreamEnd) -> io::Result<()>;
}

/// Opens a [`TraceStream`] writing to a file (set by the facade's `trace` feature with
/// [`Registry::set_trace_stream`](crate::Registry::set_trace_stream)).
pub type TraceStreamFactory =
    Arc<dyn Fn(&Path, &StreamHeader) -> io::Result<Box<dyn TraceStream>> + Send + Sync>;
