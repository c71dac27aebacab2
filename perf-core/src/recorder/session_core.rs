//! Session core: the shared recording state of one session — its lanes, its aggregate, and
//! the drain that moves the events of the one into the other.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use quanta::Clock;
use rustc_hash::FxHashMap;

use super::active::deactivate;
use super::aggregate::{Aggregate, OpenFrame};
use super::capture::Capture;
use super::frame_agg::StreamBatch;
use super::lane::{Lane, LaneWriter};
use super::names::clock;
use super::{EXITED_LANE, EXITED_THREADS_ID, EXITED_THREADS_NAME};
use crate::sink::{StreamEnd, TraceBatch, TraceStream};

/// Thread identity of a lane.
#[derive(Clone)]
pub(crate) struct LaneThread {
    pub(crate) thread_id: u64,
    pub(crate) thread_name: String,
}

/// A lane of a session: its consumer state is the stack of spans open on its thread.
pub(super) type SessionLane = Lane<Vec<OpenFrame>>;
/// The writer of a [`SessionLane`], kept by its thread.
pub(super) type SessionLaneWriter = LaneWriter<Vec<OpenFrame>>;

/// The lanes of a session: the live ones, and the identity of every thread that still has
/// rows in the aggregate (live, retained exited, and the exited-threads row).
struct Lanes {
    live: Vec<Arc<SessionLane>>,
    threads: FxHashMap<u32, LaneThread>,
    next: u32,
}

/// The shared recording state of one session.
pub(crate) struct SessionCore {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) clock: Clock,
    pub(crate) start_raw: u64,
    pub(crate) start_instant: Instant,
    pub(crate) start_unix_ns: u64,
    lanes: Mutex<Lanes>,
    agg: Mutex<Aggregate>,
    /// Set when the session stops: the aggregate takes no more events, so that every
    /// snapshot after the stop (the saved reports included) is the same.
    frozen: AtomicBool,
    /// The writer of a streamed trace capture, beside the aggregate so that file writes
    /// never hold the aggregate's lock (which a recording thread whose lane backs up
    /// takes). Lock order: this one first, then the aggregate.
    stream: Mutex<Option<StreamState>>,
    /// Events read from the lanes so far.
    events_read: AtomicU64,
    /// The background aggregator's thread, woken when a lane runs
    /// [`BACKLOG_WAKE`](super::BACKLOG_WAKE) chunks ahead.
    aggregator: OnceLock<Thread>,
    /// Lanes whose thread exited since the last drain pass (approximately: a pass resets it).
    exits: AtomicUsize,
    /// When the background aggregator is next due, for the recording threads to wake it.
    pub(crate) due: Arc<DueTick>,
    /// Nanoseconds in 2^32 ticks of `clock` (to turn a wait into ticks).
    ns_per_2_32_ticks: u64,
}

/// When the background aggregator's next pass or round is due, in raw ticks of the session's
/// clock (`u64::MAX`: no wake-up asked), for the recording threads to wake it.
///
/// On a VM a timer that wakes a sleeping thread costs several times what a wake-up by a
/// running thread costs: 45 µs of the woken thread's CPU, against 11 µs, and 10 µs of the
/// waker's (BENCHMARKS.md, "A wake-up by the line"). A line that records frames is running
/// anyway: the first frame record past this tick wakes the aggregator
/// ([`take`](Self::take)), and the aggregator's own timer, set a little later, only wakes
/// it when the line has gone quiet.
///
/// Read by every frame record, written twice a pass: on a line of its own.
#[repr(align(128))]
pub(crate) struct DueTick {
    at: AtomicU64,
    /// Wake-ups taken by recording threads.
    taken: AtomicU64,
}

impl DueTick {
    const NONE: u64 = u64::MAX;

    fn new() -> Self {
        DueTick {
            at: AtomicU64::new(Self::NONE),
            taken: AtomicU64::new(0),
        }
    }

    /// How many times a recording thread woke the aggregator.
    #[cfg(test)]
    pub(crate) fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Asks to be woken from raw tick `tick` on.
    pub(crate) fn arm(&self, tick: u64) {
        self.at.store(tick, Ordering::Relaxed);
    }

    /// Withdraws the wake-up asked for; whether it was still asked (no recording thread took
    /// it).
    pub(crate) fn disarm(&self) -> bool {
        self.at.swap(Self::NONE, Ordering::Relaxed) != Self::NONE
    }

    /// Whether a record stamped `ts` is past the tick asked for (one load: the check every
    /// frame record makes).
    #[inline]
    pub(super) fn is_past(&self, ts: u64) -> bool {
        ts >= self.at.load(Ordering::Relaxed)
    }

    /// Takes the wake-up asked for, past at `ts`: true for the one caller that is to wake
    /// the aggregator.
    pub(super) fn take(&self, ts: u64) -> bool {
        let at = self.at.load(Ordering::Relaxed);
        let took = at != Self::NONE
            && ts >= at
            && self
                .at
                .compare_exchange(at, Self::NONE, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if took {
            self.taken.fetch_add(1, Ordering::Relaxed);
        }
        took
    }
}

/// Threads exiting (since the last drain pass) that wake the background aggregator: their
/// lanes are retired without waiting for its next pass (up to
/// [`IDLE_DRAIN_INTERVAL`](super::IDLE_DRAIN_INTERVAL) away), so that a pool churning threads
/// keeps few lanes, and their chunks, waiting.
const EXITS_WAKE: usize = 32;

/// A streamed trace capture's writer and what it wrote.
pub(crate) struct StreamState {
    /// `None` once finished, or after a write failed.
    out: Option<Box<dyn TraceStream>>,
    path: PathBuf,
    spans: u64,
    frames: u64,
    /// Spans and frames lost to a failed write.
    lost: u64,
    error: Option<String>,
    end: Option<StreamEnd>,
    /// The drain pass after which the window's end was first seen past: the window closes
    /// two passes later, once every frame that ended in it is settled.
    over_at_pass: Option<u64>,
}

impl StreamState {
    pub(crate) fn new(out: Box<dyn TraceStream>, path: PathBuf) -> Self {
        StreamState {
            out: Some(out),
            path,
            spans: 0,
            frames: 0,
            lost: 0,
            error: None,
            end: None,
            over_at_pass: None,
        }
    }
}

impl SessionCore {
    pub(crate) fn new(name: &str) -> Arc<SessionCore> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let clock = clock().clone();
        let ns_per_2_32_ticks = clock.delta_as_nanos(0, 1 << 32);
        Arc::new(SessionCore {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: name.to_string(),
            start_raw: clock.raw(),
            clock,
            start_instant: Instant::now(),
            start_unix_ns: crate::measurement::unix_now_ns(),
            lanes: Mutex::new(Lanes {
                live: Vec::new(),
                threads: FxHashMap::default(),
                next: 0,
            }),
            agg: Mutex::new(Aggregate::new()),
            frozen: AtomicBool::new(false),
            stream: Mutex::new(None),
            events_read: AtomicU64::new(0),
            aggregator: OnceLock::new(),
            exits: AtomicUsize::new(0),
            due: Arc::new(DueTick::new()),
            ns_per_2_32_ticks,
        })
    }

    /// The raw tick of the session's clock `wait` from now (`u64::MAX` past the clock's
    /// range).
    pub(crate) fn tick_in(&self, wait: Duration) -> u64 {
        if self.ns_per_2_32_ticks == 0 {
            return u64::MAX;
        }
        let ticks = (wait.as_nanos() << 32) / u128::from(self.ns_per_2_32_ticks);
        u64::try_from(ticks).map_or(u64::MAX, |t| self.clock.raw().saturating_add(t))
    }

    /// Names the background aggregator's thread, for [`wake_aggregator`](Self::wake_aggregator).
    pub(crate) fn set_aggregator(&self, thread: Thread) {
        let _ = self.aggregator.set(thread);
    }

    /// A thread that recorded into this session exits: every [`EXITS_WAKE`] of them wake the
    /// aggregator, which retires their lanes (each holds a chunk until then).
    pub(crate) fn lane_left(&self) {
        if self.exits.fetch_add(1, Ordering::Relaxed) + 1 == EXITS_WAKE {
            self.wake_aggregator();
        }
    }

    /// Wakes the background aggregator for a pass now (a lane runs ahead of it).
    pub(crate) fn wake_aggregator(&self) {
        if let Some(t) = self.aggregator.get() {
            t.unpark();
        }
    }

    fn stream(&self) -> MutexGuard<'_, Option<StreamState>> {
        self.stream.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a trace capture, replacing the one before (a streamed one is closed first,
    /// with the reason `replaced`); `stream` is the writer of a streamed capture.
    pub(crate) fn start_capture(&self, capture: Capture, stream: Option<StreamState>) {
        let mut st = self.stream();
        // Everything recorded up to now goes to the capture it belongs to: the old one hands
        // out its last batch in the same hold of the aggregate that starts the new one.
        let last = {
            let mut agg = self.drain_settled();
            let threads = self.lane_threads();
            let batch = agg.frames.take_batch(&threads, &self.clock, self.start_raw);
            agg.frames.start_capture(capture);
            (batch, agg.frames.passes())
        };
        self.write_batch(&mut st, last.0, last.1, Some("replaced"));
        *st = stream;
    }

    /// Closes a streamed capture still running (`reason` says why), after handing out its
    /// last batch.
    pub(crate) fn close_stream(&self, reason: &'static str) {
        let mut st = self.stream();
        self.flush_stream_locked(&mut st, Some(reason));
    }

    /// The file of the streamed capture still running, if one is.
    pub(crate) fn open_stream_path(&self) -> Option<PathBuf> {
        let st = self.stream();
        st.as_ref()
            .filter(|s| s.end.is_none())
            .map(|s| s.path.clone())
    }

    /// Hands what a streamed capture gathered to its writer (from the aggregator thread,
    /// after a drain), and closes the stream when its window is over, or with `close`.
    pub(crate) fn flush_stream(&self, close: Option<&'static str>) {
        let mut st = self.stream();
        self.flush_stream_locked(&mut st, close);
    }

    fn flush_stream_locked(&self, st: &mut Option<StreamState>, close: Option<&'static str>) {
        if st.as_ref().is_none_or(|s| s.end.is_some()) {
            return;
        }
        let (batch, pass) = {
            let mut agg = self.agg.lock().unwrap_or_else(|e| e.into_inner());
            // The threads as they are once the aggregate is held (the order `drain` takes
            // the two locks in): a `report()` that held the aggregate before may have read the
            // spans of a thread born since an earlier look, and they must keep its name.
            let threads = self.lane_threads();
            let batch = agg.frames.take_batch(&threads, &self.clock, self.start_raw);
            (batch, agg.frames.passes())
        };
        self.write_batch(st, batch, pass, close);
    }

    /// How soon the background aggregator must pass again for an open streamed window: at
    /// the window's end, and every [`DRAIN_INTERVAL`](super::DRAIN_INTERVAL) while it
    /// closes (the two passes after the one that saw its end), so that its file is closed
    /// within tens of milliseconds of its end, not seconds later on a quiet line. `None`
    /// without an open streamed window.
    pub(crate) fn stream_due(&self) -> Option<std::time::Duration> {
        let st = self.stream();
        let s = st.as_ref().filter(|s| s.end.is_none())?;
        if s.over_at_pass.is_some() {
            return Some(super::DRAIN_INTERVAL);
        }
        let agg = self.agg.lock().unwrap_or_else(|e| e.into_inner());
        // Only a streamed capture gets its window closed by the passes.
        let c = agg
            .frames
            .capture
            .as_ref()
            .filter(|c| c.streamed.is_some())?;
        let now = self.clock.raw();
        let elapsed = if now > c.start {
            self.clock.delta_as_nanos(c.start, now)
        } else {
            0
        };
        // A millisecond past the end: the pass must see the end behind it.
        let left = c
            .window_ns
            .saturating_sub(elapsed)
            .saturating_add(1_000_000);
        Some(std::time::Duration::from_nanos(left))
    }

    /// Writes a batch of the streamed capture `st` (outside the aggregate's lock), taken
    /// after drain pass `pass`, and closes the stream when its window is over, or with
    /// `close`.
    fn write_batch(
        &self,
        st: &mut Option<StreamState>,
        batch: Option<StreamBatch>,
        pass: u64,
        close: Option<&'static str>,
    ) {
        let Some(st) = st.as_mut() else { return };
        if st.end.is_some() {
            return;
        }
        let Some(batch) = batch else { return };
        let now = self.clock.raw();
        let offset = |tick: u64| {
            if tick > self.start_raw {
                self.clock.delta_as_nanos(self.start_raw, tick)
            } else {
                0
            }
        };
        let start_ns = offset(batch.start);
        let planned_end = start_ns.saturating_add(batch.window_ns);
        let now_ns = offset(now);
        let count = (batch.spans.len() + batch.frames.len()) as u64;
        if count > 0 || !batch.new_paths.is_empty() {
            match st.out.as_mut() {
                Some(out) => {
                    let view = TraceBatch {
                        new_paths: &batch.new_paths,
                        first_path: batch.first_path,
                        spans: &batch.spans,
                        frames: &batch.frames,
                    };
                    match out.append(&view) {
                        Ok(()) => {
                            st.spans += batch.spans.len() as u64;
                            st.frames += batch.frames.len() as u64;
                        }
                        Err(e) => {
                            st.error = Some(format!("writing `{}` failed: {e}", st.path.display()));
                            st.out = None;
                            st.lost += count;
                        }
                    }
                }
                None => st.lost += count,
            }
        }
        // The window is over two drain passes after the one first seen past its end: the
        // next pass reads every event up to the end (a lane may have been read, in the first
        // one, before its thread's last event of the window), the one after settles the
        // frames whose end it read (a frame settles one pass after its end).
        if now_ns > planned_end && st.over_at_pass.is_none() {
            st.over_at_pass = Some(pass);
        }
        let over = st.over_at_pass.is_some_and(|p| pass >= p.saturating_add(2));
        let reason = close.or(over.then_some("window"));
        if let Some(reason) = reason {
            let end = StreamEnd {
                start_ns,
                end_ns: planned_end.min(now_ns),
                spans: st.spans,
                frames: st.frames,
                dropped: batch.dropped.saturating_add(st.lost),
                reason,
            };
            if let Some(mut out) = st.out.take() {
                if let Err(e) = out.finish(&end) {
                    st.error = Some(format!("closing `{}` failed: {e}", st.path.display()));
                }
            }
            st.end = Some(end);
        }
    }

    /// What a streamed capture wrote so far, for a report; `None` without one.
    pub(crate) fn stream_status(&self) -> Option<crate::report::StreamedTrace> {
        let st = self.stream();
        let st = st.as_ref()?;
        Some(crate::report::StreamedTrace {
            path: st.path.clone(),
            spans: st.spans,
            frames: st.frames,
            lost: st.lost,
            closed: st.end.as_ref().map(|e| e.reason.to_string()),
            error: st.error.clone(),
        })
    }

    fn lanes(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new lane of this session for the thread `thread`, and its writer (to be kept by
    /// that thread).
    pub(super) fn new_lane(&self, thread: LaneThread) -> SessionLaneWriter {
        let mut lanes = self.lanes();
        // Lane indices are never reused within a session (4 billion threads would be needed
        // to run out; past that, new threads share the last index).
        let index = lanes.next.min(EXITED_LANE - 1);
        lanes.next = lanes.next.saturating_add(1);
        let (lane, writer) = Lane::new(index, Vec::new());
        lanes.live.push(lane);
        lanes.threads.insert(index, thread);
        writer
    }

    /// Drains what `lane` holds into `agg`. Returns the number of spans still open when the
    /// lane's thread has exited and everything it wrote was read (the lane can be retired),
    /// `None` while its thread runs.
    fn drain_lane(&self, lane: &SessionLane, agg: &mut Aggregate) -> Option<usize> {
        if self.frozen.load(Ordering::Acquire) {
            // Only the ends of spans begun before the stop can still arrive (new spans go
            // to another session): they stay unread, and those spans count as open.
            return None;
        }
        let index = lane.index();
        let mut read = 0u64;
        let retired = lane.drain(
            |stack, ev| {
                read += 1;
                agg.apply(index, stack, ev, &self.clock, self.start_raw)
            },
            |stack| stack.len(),
        );
        agg.record_histograms();
        if read > 0 {
            self.events_read.fetch_add(read, Ordering::Relaxed);
        }
        retired
    }

    /// Events read from the lanes so far (the aggregator backs off while it stays put).
    pub(crate) fn events_read(&self) -> u64 {
        self.events_read.load(Ordering::Relaxed)
    }

    /// A lane runs `chunks` chunks ahead of the aggregator (its writer's chunk change says
    /// so, from [`BACKLOG_WAKE`](super::BACKLOG_WAKE) chunks): the aggregator is woken (a
    /// burst came while it waited long); from
    /// [`BACKLOG_SELF_DRAIN`](super::BACKLOG_SELF_DRAIN) chunks it is behind (busy machine),
    /// and the recording thread drains the lane itself rather than grow.
    pub(super) fn behind(&self, lane: &SessionLane, chunks: usize) {
        if chunks >= super::BACKLOG_SELF_DRAIN {
            self.drain_backlog(lane);
        } else {
            self.wake_aggregator();
        }
    }

    /// Drains from a recording thread whose `lane` runs
    /// [`BACKLOG_SELF_DRAIN`](super::BACKLOG_SELF_DRAIN) chunks ahead of the aggregator: a
    /// whole pass over every lane when frames wait to be settled (a frame settles one pass
    /// after its end, so frames in flight stay bounded by the backlog however fast they
    /// come), that lane alone otherwise.
    fn drain_backlog(&self, lane: &SessionLane) {
        let mut agg = self.agg.lock().unwrap_or_else(|e| e.into_inner());
        if agg.frames.waiting() {
            drop(agg);
            drop(self.drain());
            return;
        }
        self.drain_lane(lane, &mut agg);
    }

    /// Drains every lane into the aggregate, retires the lanes of exited threads, and
    /// returns the aggregate locked.
    pub(crate) fn drain(&self) -> MutexGuard<'_, Aggregate> {
        let mut agg = self.agg.lock().unwrap_or_else(|e| e.into_inner());
        self.exits.store(0, Ordering::Relaxed);
        let live: Vec<Arc<SessionLane>> = self.lanes().live.clone();
        let mut exited = Vec::new();
        for lane in &live {
            if let Some(open) = self.drain_lane(lane, &mut agg) {
                exited.push((lane.index(), open));
            }
        }
        agg.frames.settle(&self.clock, self.start_raw);
        agg.record_histograms();
        if !exited.is_empty() {
            let mut lanes = self.lanes();
            lanes
                .live
                .retain(|l| !exited.iter().any(|&(i, _)| i == l.index()));
            for (index, open) in exited {
                for folded in agg.retire(index, open) {
                    if let Some(thread) = lanes.threads.remove(&folded) {
                        if let Some(c) = agg.frames.capture.as_mut() {
                            c.gone.insert(folded, thread);
                        }
                    }
                    lanes
                        .threads
                        .entry(EXITED_LANE)
                        .or_insert_with(|| LaneThread {
                            thread_id: EXITED_THREADS_ID,
                            thread_name: EXITED_THREADS_NAME.to_string(),
                        });
                }
            }
        }
        agg
    }

    /// Drains what was recorded up to now, then takes no more events (the session stopped).
    /// Drains twice: every frame that ended before the call is settled (a frame settles one
    /// drain pass after its end came in).
    pub(crate) fn drain_settled(&self) -> MutexGuard<'_, Aggregate> {
        drop(self.drain());
        self.drain()
    }

    pub(crate) fn freeze(&self) {
        let agg = self.drain_settled();
        self.frozen.store(true, Ordering::Release);
        drop(agg);
    }

    /// Thread identity of every lane that has rows, by lane index.
    pub(crate) fn lane_threads(&self) -> FxHashMap<u32, LaneThread> {
        self.lanes().threads.clone()
    }

    /// Spans still open in the live lanes (after a drain).
    pub(crate) fn open_spans(&self) -> u64 {
        self.lanes()
            .live
            .iter()
            .map(|l| l.with_state(|stack| stack.len() as u64).unwrap_or(0))
            .sum()
    }
}

impl Drop for SessionCore {
    fn drop(&mut self) {
        let lanes = self.lanes.get_mut().unwrap_or_else(|e| e.into_inner());
        for lane in lanes.live.iter() {
            lane.close();
        }
        deactivate(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::lane::Event;
    use crate::recorder::{
        BACKLOG_SELF_DRAIN, BACKLOG_WAKE, CHUNK_EVENTS, EXIT, RETAINED_EXITED_THREADS,
    };
    use std::time::Duration;

    const A: u32 = 10;

    fn thread(id: u64) -> LaneThread {
        LaneThread {
            thread_id: id,
            thread_name: format!("t{id}"),
        }
    }

    /// Pushes `n` spans named `A` (nothing asks for a self-drain).
    fn spans(w: &mut SessionLaneWriter, n: u64) {
        for i in 0..n {
            w.push(Event { id: A, ts: 2 * i }, |_, _| panic!("no backlog"));
            w.push(
                Event {
                    id: A | EXIT,
                    ts: 2 * i + 1,
                },
                |_, _| panic!("no backlog"),
            );
        }
    }

    /// Pushes `n` spans named `A`, telling `core` when the lane runs ahead (as a recording
    /// thread does).
    fn spans_telling(core: &SessionCore, w: &mut SessionLaneWriter, n: u64) {
        for i in 0..n {
            w.push(Event { id: A, ts: 2 * i }, |l, c| core.behind(l, c));
            w.push(
                Event {
                    id: A | EXIT,
                    ts: 2 * i + 1,
                },
                |l, c| core.behind(l, c),
            );
        }
    }

    fn count(agg: &Aggregate) -> u64 {
        agg.paths().iter().map(|p| p.stats.count()).sum()
    }

    #[test]
    fn a_drain_moves_lanes_into_the_aggregate_and_retires_exited_ones() {
        let core = SessionCore::new("test");
        let mut w = core.new_lane(thread(7));
        spans(&mut w, 3);
        w.push(Event { id: A, ts: 100 }, |_, _| ());
        assert_eq!(count(&core.drain()), 3);
        assert_eq!(core.open_spans(), 1);
        assert_eq!(core.lanes().live.len(), 1);
        // The thread exits with a span open: the lane is retired, its rows kept.
        drop(w);
        let agg = core.drain();
        assert_eq!(count(&agg), 3);
        assert_eq!(agg.counts.exited_threads, 1);
        assert_eq!(agg.counts.abandoned_spans, 1);
        drop(agg);
        assert_eq!(core.open_spans(), 0);
        assert!(core.lanes().live.is_empty());
        assert_eq!(core.lane_threads()[&0].thread_name, "t7");
    }

    #[test]
    fn exited_threads_past_the_retained_ones_share_a_row() {
        let core = SessionCore::new("test");
        for id in 0..RETAINED_EXITED_THREADS as u64 + 1 {
            let mut w = core.new_lane(thread(id));
            spans(&mut w, 1);
            drop(w);
            drop(core.drain());
        }
        let threads = core.lane_threads();
        assert_eq!(threads.len(), RETAINED_EXITED_THREADS + 1);
        assert!(!threads.contains_key(&0));
        assert_eq!(threads[&EXITED_LANE].thread_id, EXITED_THREADS_ID);
        assert_eq!(threads[&EXITED_LANE].thread_name, EXITED_THREADS_NAME);
        assert_eq!(count(&core.drain()), RETAINED_EXITED_THREADS as u64 + 1);
    }

    #[test]
    fn a_frozen_session_takes_no_more_events() {
        let core = SessionCore::new("test");
        let mut w = core.new_lane(thread(1));
        spans(&mut w, 2);
        core.freeze();
        spans(&mut w, 5);
        drop(w);
        let agg = core.drain();
        assert_eq!(count(&agg), 2);
        // Not even retired: a stopped session's figures stay as they were.
        assert_eq!(agg.counts.exited_threads, 0);
    }

    #[test]
    fn a_lane_running_ahead_wakes_the_aggregator() {
        let core = SessionCore::new("test");
        // This thread stands for the aggregator: the writer unparks it.
        core.set_aggregator(std::thread::current());
        let mut w = core.new_lane(thread(1));
        let spans_per_chunk = CHUNK_EVENTS as u64 / 2;
        spans_telling(&core, &mut w, spans_per_chunk * BACKLOG_WAKE as u64);
        // Not yet: the backlog is counted when the next chunk is taken.
        w.push(
            Event {
                id: A,
                ts: u64::MAX / 2,
            },
            |l, n| core.behind(l, n),
        );
        let start = Instant::now();
        std::thread::park_timeout(Duration::from_secs(30));
        assert!(start.elapsed() < Duration::from_secs(20), "not woken");
        // Woken, not drained: that is the aggregator's work at this backlog.
        assert_eq!(count(&core.agg.lock().unwrap()), 0);
        assert_eq!(count(&core.drain()), spans_per_chunk * BACKLOG_WAKE as u64);
    }

    #[test]
    fn a_lane_far_behind_is_drained_by_its_thread() {
        let core = SessionCore::new("test");
        let mut w = core.new_lane(thread(1));
        let n = (BACKLOG_SELF_DRAIN + 1) * CHUNK_EVENTS / 2;
        spans_telling(&core, &mut w, n as u64);
        // Drained without the aggregator: up to the chunk being written.
        let drained = count(&core.agg.lock().unwrap());
        assert_eq!(drained, (BACKLOG_SELF_DRAIN * CHUNK_EVENTS / 2) as u64);
        assert_eq!(count(&core.drain()), n as u64);
    }

    #[test]
    fn one_recording_thread_takes_a_wake_up_and_only_past_its_tick() {
        let core = SessionCore::new("test");
        let due = &core.due;
        assert!(!due.is_past(u64::MAX - 1), "nothing asked");
        assert!(!due.take(u64::MAX - 1));
        due.arm(1_000);
        assert!(!due.is_past(999) && !due.take(999), "not before its tick");
        let takers: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| due.take(1_000))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(takers.iter().filter(|&&t| t).count(), 1, "one waker");
        assert_eq!(due.taken(), 1);
        assert!(!due.disarm(), "taken: the timer did not wake it");
        due.arm(5);
        assert!(due.disarm(), "not taken: the timer woke it");
        assert!(!due.take(10), "withdrawn");
    }

    #[test]
    fn a_wait_becomes_the_clock_s_ticks() {
        let core = SessionCore::new("test");
        for ms in [0u64, 1, 10, 1_000, 3_600_000] {
            let before = core.clock.raw();
            let tick = core.tick_in(Duration::from_millis(ms));
            let after = core.clock.raw();
            let lo = core.clock.delta_as_nanos(after, tick);
            let hi = core.clock.delta_as_nanos(before, tick);
            let want = ms * 1_000_000;
            // Within the rounding of the scale (a microsecond, and a millionth), give or
            // take the calls.
            let slack = 1_000 + want / 1_000_000;
            assert!(
                lo <= want + slack && hi + slack >= want,
                "{ms} ms: {lo}..{hi} ns"
            );
        }
        assert_eq!(
            core.tick_in(Duration::MAX),
            u64::MAX,
            "past the clock's range"
        );
    }

    #[test]
    fn dropping_the_session_closes_its_lanes() {
        let core = SessionCore::new("test");
        let w = core.new_lane(thread(1));
        assert!(!w.lane().is_closed());
        drop(core);
        assert!(w.lane().is_closed());
    }
}
