//! The recording engine: per-thread event lanes, the `scope!` fast path, and aggregation.
//!
//! # How a span is recorded
//!
//! Every thread that records into a session owns a *lane*: a singly linked list of fixed-size
//! chunks of 16-byte events, written only by that thread and read only by the session's
//! aggregator (a single-producer, single-consumer queue). Entering a span appends
//! `(name id, TSC ticks)`, leaving it appends `(name id | EXIT, TSC ticks)`: a clock read and
//! a store each, no lock, no allocation (a new chunk is taken once per 4096 events, reusing the
//! chunk the aggregator handed back).
//!
//! The aggregator — a background thread per session, every 10 ms, and every snapshot — drains
//! the lanes, rebuilds each thread's stack of open spans, and keeps per span path (the stack
//! of names on a thread) count, total, self time, min/max and an HDR histogram, plus the most
//! recent spans in a ring. Memory is bounded: a lane that runs more than
//! [`BACKLOG_SELF_DRAIN`] chunks ahead of the aggregator drains itself, a session keeps
//! at most [`MAX_PATHS`] distinct paths (further ones are counted under `<overflow>`), and
//! threads that exit are retired: their lane is freed, the most recent
//! [`RETAINED_EXITED_THREADS`] keep rows of their own, and older ones are folded into one
//! [`EXITED_THREADS_NAME`] row, so that pools which respawn threads neither grow memory nor
//! lose a span. Every cap counts what it folds (`Diagnostics`).

use std::cell::{RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::{self, addr_of_mut};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use quanta::Clock;
use rustc_hash::FxHashMap;

use crate::report::{Diagnostics, TimelineSpan};
use crate::stats::DurationStats;

/// Events per chunk of a lane.
pub const CHUNK_EVENTS: usize = 4096;
/// Chunks a lane may run ahead of the aggregator before the recording thread drains it
/// itself (bounds memory at about 4 MiB per thread however slow the aggregator is).
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
/// How often the background aggregator drains the lanes.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(10);

const EXIT: u32 = 1 << 31;
const NO_PARENT: u32 = u32::MAX;
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
/// Id of [`OVERFLOW_NAME`], interned first.
pub(crate) const OVERFLOW_ID: u32 = 1;

// ---------------------------------------------------------------------------------------
// Clock and names
// ---------------------------------------------------------------------------------------

/// The process-wide calibrated clock (the TSC through quanta where the CPU has an invariant
/// TSC, the monotonic clock otherwise).
pub(crate) fn clock() -> &'static Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    CLOCK.get_or_init(Clock::new)
}

struct Names {
    ids: FxHashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

fn names() -> MutexGuard<'static, Names> {
    static NAMES: OnceLock<Mutex<Names>> = OnceLock::new();
    NAMES
        .get_or_init(|| {
            Mutex::new(Names {
                // Id 0 means "not interned yet" in a callsite; the overflow name is interned
                // from the start, as the id every name past the limit shares.
                ids: [(Arc::from(OVERFLOW_NAME), OVERFLOW_ID)]
                    .into_iter()
                    .collect(),
                names: vec![Arc::from(""), Arc::from(OVERFLOW_NAME)],
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The id of `name`, interning it on first use. Ids are process-wide: the same name from
/// `scope!` and from `start_timing` is the same span. Past [`MAX_NAMES`] distinct names
/// (names made at run time, such as one per frame), further names share the id of
/// [`OVERFLOW_NAME`], so that the table stays bounded.
pub(crate) fn intern(name: &str) -> u32 {
    let mut n = names();
    if let Some(&id) = n.ids.get(name) {
        return id;
    }
    let id = n.names.len() as u32;
    if id as usize >= MAX_NAMES {
        return OVERFLOW_ID;
    }
    let name: Arc<str> = Arc::from(name);
    n.names.push(Arc::clone(&name));
    n.ids.insert(name, id);
    id
}

/// The id of `name` if it was interned, or the shared overflow id once the table is full
/// (`name` may then be one of the names past the limit); `None` for a name never seen.
pub(crate) fn lookup(name: &str) -> Option<u32> {
    let n = names();
    n.ids
        .get(name)
        .copied()
        .or((n.names.len() >= MAX_NAMES).then_some(OVERFLOW_ID))
}

/// The name of an interned id.
pub(crate) fn name_of(id: u32) -> Arc<str> {
    names()
        .names
        .get(id as usize)
        .cloned()
        .unwrap_or_else(|| Arc::from("?"))
}

/// A `scope!` call site: its name, interned once on first use.
#[derive(Debug)]
pub struct Callsite {
    name: &'static str,
    id: AtomicU32,
}

impl Callsite {
    /// A call site named `name` (the `scope!` macro makes one `static` per call).
    pub const fn new(name: &'static str) -> Self {
        Callsite {
            name,
            id: AtomicU32::new(0),
        }
    }

    /// The call site's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    #[inline(always)]
    fn id(&self) -> u32 {
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 {
            id
        } else {
            self.register()
        }
    }

    #[cold]
    fn register(&self) -> u32 {
        let id = intern(self.name);
        self.id.store(id, Ordering::Relaxed);
        id
    }
}

// ---------------------------------------------------------------------------------------
// Chunks and lanes
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Event {
    id: u32,
    ts: u64,
}

struct Chunk {
    /// Events written so far; stored by the producer with Release after each write.
    len: AtomicUsize,
    /// The next chunk, set by the producer once this one is full.
    next: AtomicPtr<Chunk>,
    events: [UnsafeCell<MaybeUninit<Event>>; CHUNK_EVENTS],
}

fn alloc_chunk() -> *mut Chunk {
    let mut b: Box<MaybeUninit<Chunk>> = Box::new_uninit();
    let p = b.as_mut_ptr();
    // SAFETY: `p` points to writable memory for a Chunk; the two atomics are initialised
    // here and the events are `MaybeUninit`, valid uninitialised.
    unsafe {
        addr_of_mut!((*p).len).write(AtomicUsize::new(0));
        addr_of_mut!((*p).next).write(AtomicPtr::new(ptr::null_mut()));
        Box::into_raw(b.assume_init())
    }
}

/// # Safety
/// `c` must come from [`alloc_chunk`] and be referenced by nobody else.
unsafe fn free_chunk(c: *mut Chunk) {
    drop(Box::from_raw(c));
}

/// Frees the chunk list starting at `head` and the lane's spare chunk.
///
/// # Safety
/// Neither the producer nor any other consumer may use these chunks any more (the lane is
/// being dropped, or its producer is gone and everything was read).
unsafe fn free_chunks(head: *mut Chunk, lane: &Lane) {
    let mut p = head;
    while !p.is_null() {
        let next = (*p).next.load(Ordering::Acquire);
        free_chunk(p);
        p = next;
    }
    if let Some(s) = lane.take_spare() {
        free_chunk(s);
    }
}

/// One span open on a thread, as the aggregator sees it.
struct OpenFrame {
    path: u32,
    name: u32,
    start: u64,
    child_ns: u64,
}

struct Consumer {
    head: *mut Chunk,
    read: usize,
    stack: Vec<OpenFrame>,
}

/// The events of one thread for one session.
pub(crate) struct Lane {
    index: u32,
    closed: AtomicBool,
    producer_gone: AtomicBool,
    spare: AtomicPtr<Chunk>,
    backlog: AtomicUsize,
    consumer: Mutex<Consumer>,
}

// SAFETY: the raw chunk pointers are owned by the lane: the producer writes only past the
// consumer's position (published with Release/Acquire), the consumer frees a chunk only after
// the producer has linked its successor (and so will never touch it again), and `consumer`
// is behind a mutex.
unsafe impl Send for Lane {}
unsafe impl Sync for Lane {}

impl Lane {
    fn new(index: u32) -> (Arc<Lane>, *mut Chunk) {
        let first = alloc_chunk();
        let lane = Lane {
            index,
            closed: AtomicBool::new(false),
            producer_gone: AtomicBool::new(false),
            spare: AtomicPtr::new(ptr::null_mut()),
            backlog: AtomicUsize::new(0),
            consumer: Mutex::new(Consumer {
                head: first,
                read: 0,
                stack: Vec::new(),
            }),
        };
        (Arc::new(lane), first)
    }

    fn take_spare(&self) -> Option<*mut Chunk> {
        let p = self.spare.swap(ptr::null_mut(), Ordering::Acquire);
        (!p.is_null()).then_some(p)
    }

    /// Hands a fully read chunk back to the producer (or frees it if one is waiting already).
    fn recycle(&self, c: *mut Chunk) {
        // SAFETY: the consumer is done with `c` and the producer has moved past it.
        unsafe {
            (*c).len.store(0, Ordering::Relaxed);
            (*c).next.store(ptr::null_mut(), Ordering::Relaxed);
        }
        let prev = self.spare.swap(c, Ordering::Release);
        if !prev.is_null() {
            // SAFETY: `prev` was a spare nobody had taken; we own it again.
            unsafe { free_chunk(prev) };
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        let c = self.consumer.get_mut().unwrap_or_else(|e| e.into_inner());
        let head = std::mem::replace(&mut c.head, ptr::null_mut());
        // SAFETY: the lane is being dropped, so neither producer nor consumer exists.
        unsafe { free_chunks(head, self) };
    }
}

// ---------------------------------------------------------------------------------------
// Session core: lanes and aggregate
// ---------------------------------------------------------------------------------------

struct PathNode {
    parent: u32,
    name: u32,
    lane: u32,
    stats: DurationStats,
    self_ns: u64,
}

/// Aggregated spans of a session.
///
/// Paths live in slots; the slots of a folded exited thread are freed and reused, so memory
/// follows the paths in use, not every thread that ever ran.
pub(crate) struct Aggregate {
    paths: Vec<Option<PathNode>>,
    free: Vec<u32>,
    /// Slots holding a path.
    live: usize,
    index: FxHashMap<(u32, u32, u32), u32>,
    /// The slots of each lane's paths (to retire a lane without scanning every path).
    lane_paths: FxHashMap<u32, Vec<u32>>,
    overflow: FxHashMap<u32, u32>,
    timeline: VecDeque<TimelineSpan>,
    /// Exited threads that still have rows of their own, oldest first.
    retained_exited: VecDeque<u32>,
    /// What the recording counted (the session adds what it knows).
    pub(crate) counts: Diagnostics,
}

impl Aggregate {
    fn new() -> Self {
        Aggregate {
            paths: Vec::new(),
            free: Vec::new(),
            live: 0,
            index: FxHashMap::default(),
            lane_paths: FxHashMap::default(),
            overflow: FxHashMap::default(),
            timeline: VecDeque::with_capacity(TIMELINE_CAPACITY),
            retained_exited: VecDeque::new(),
            counts: Diagnostics {
                timeline_capacity: TIMELINE_CAPACITY as u64,
                ..Diagnostics::default()
            },
        }
    }

    fn node(&self, p: u32) -> &PathNode {
        self.paths[p as usize]
            .as_ref()
            .expect("a path in use is never freed")
    }

    fn node_mut(&mut self, p: u32) -> &mut PathNode {
        self.paths[p as usize]
            .as_mut()
            .expect("a path in use is never freed")
    }

    /// The path `name` under `parent` on `lane`, made if new; past [`MAX_PATHS`], the lane's
    /// `<overflow>` path.
    #[inline]
    fn path(&mut self, lane: u32, parent: u32, name: u32) -> u32 {
        match self.index.get(&(lane, parent, name)) {
            Some(&p) => p,
            None => self.new_path(lane, parent, name),
        }
    }

    /// [`path`](Self::path) for a path not seen yet on this lane.
    #[cold]
    #[inline(never)]
    fn new_path(&mut self, lane: u32, parent: u32, name: u32) -> u32 {
        if self.live >= MAX_PATHS {
            return self.overflow_path(lane);
        }
        let p = self.push_path(lane, parent, name);
        self.index.insert((lane, parent, name), p);
        p
    }

    /// The `<overflow>` path of `lane`, made if needed.
    fn overflow_path(&mut self, lane: u32) -> u32 {
        if let Some(&p) = self.overflow.get(&lane) {
            return p;
        }
        let p = self.push_path(lane, NO_PARENT, OVERFLOW_ID);
        self.overflow.insert(lane, p);
        p
    }

    fn push_path(&mut self, lane: u32, parent: u32, name: u32) -> u32 {
        let node = PathNode {
            parent,
            name,
            lane,
            stats: DurationStats::new(),
            self_ns: 0,
        };
        let p = match self.free.pop() {
            Some(p) => {
                self.paths[p as usize] = Some(node);
                p
            }
            None => {
                self.paths.push(Some(node));
                (self.paths.len() - 1) as u32
            }
        };
        self.lane_paths.entry(lane).or_default().push(p);
        self.live += 1;
        p
    }

    #[inline]
    fn is_overflow(&self, lane: u32, path: u32) -> bool {
        !self.overflow.is_empty() && self.overflow.get(&lane) == Some(&path)
    }

    fn apply(&mut self, lane: u32, stack: &mut Vec<OpenFrame>, ev: Event, clock: &Clock, t0: u64) {
        if ev.id == LEAKED {
            // A guard counted as leaked was dropped after all, out of order: its span was
            // closed when an enclosing one ended.
            self.counts.leaked_spans = self.counts.leaked_spans.saturating_sub(1);
            self.counts.misnested_exits += 1;
            return;
        }
        if ev.id & EXIT == 0 {
            let path = match stack.last() {
                // Deeper than any real span tree: guards leaked in a loop with nothing
                // enclosing them. One path for all of them, so that they cannot use up the
                // session's paths (other threads' included) nor make the snapshot quadratic.
                Some(_) if stack.len() >= MAX_DEPTH => self.overflow_path(lane),
                parent => self.path(lane, parent.map_or(NO_PARENT, |f| f.path), ev.id),
            };
            if ev.id == OVERFLOW_ID || self.is_overflow(lane, path) {
                self.counts.overflowed_spans += 1;
            }
            stack.push(OpenFrame {
                path,
                name: ev.id,
                start: ev.ts,
                child_ns: 0,
            });
            return;
        }
        let Some(f) = stack.pop() else {
            self.counts.misnested_exits += 1;
            return;
        };
        if ev.id & LEAKED != 0 {
            // The guard of this span was leaked: it is timed up to the end of the span that
            // closed it (so that its children keep a parent), and counted.
            self.counts.leaked_spans += 1;
        } else if f.name != ev.id & !EXIT {
            self.counts.misnested_exits += 1;
        }
        let dur = clock.delta_as_nanos(f.start, ev.ts);
        if let Some(parent) = stack.last_mut() {
            parent.child_ns = parent.child_ns.saturating_add(dur);
        }
        let node = self.node_mut(f.path);
        node.stats.record(dur);
        node.self_ns = node.self_ns.saturating_add(dur.saturating_sub(f.child_ns));
        if self.timeline.len() == TIMELINE_CAPACITY {
            self.timeline.pop_front();
            self.counts.timeline_dropped += 1;
        }
        self.timeline.push_back(TimelineSpan {
            span: f.path as usize,
            start_ns: clock.delta_as_nanos(t0, f.start),
            duration_ns: dur,
        });
    }

    /// Takes the lane of an exited thread out of the live ones: its spans still open are
    /// counted as abandoned, its rows are kept while it is one of the
    /// [`RETAINED_EXITED_THREADS`] most recent exited threads. Returns the lanes whose rows
    /// were folded into the exited-threads row (their thread identity can be forgotten).
    fn retire(&mut self, lane: u32, open: usize) -> Vec<u32> {
        self.counts.exited_threads += 1;
        self.counts.abandoned_spans += open as u64;
        self.retained_exited.push_back(lane);
        let mut folded = Vec::new();
        while self.retained_exited.len() > RETAINED_EXITED_THREADS {
            let Some(old) = self.retained_exited.pop_front() else {
                break;
            };
            self.fold(old, EXITED_LANE);
            folded.push(old);
        }
        folded
    }

    /// Merges every path of lane `from` into the same path of lane `into` and frees them.
    /// Totals stay exact; spans that land on `into`'s `<overflow>` path are counted.
    fn fold(&mut self, from: u32, into: u32) {
        self.counts.folded_threads += 1;
        let Some(mut slots) = self.lane_paths.remove(&from) else {
            return;
        };
        self.overflow.remove(&from);
        // Parents before children (slots are reused, so their order says nothing).
        let depth = |a: &Aggregate, mut p: u32| {
            let mut d = 0u32;
            while p != NO_PARENT {
                d += 1;
                p = a.node(p).parent;
            }
            d
        };
        slots.sort_by_cached_key(|&p| depth(self, p));
        let mut moved: FxHashMap<u32, u32> = FxHashMap::default();
        for &old in &slots {
            let Some(node) = self.paths[old as usize].take() else {
                continue;
            };
            // Counted free at once, so that a session at its path limit can still fold.
            self.live -= 1;
            if self.index.get(&(from, node.parent, node.name)) == Some(&old) {
                self.index.remove(&(from, node.parent, node.name));
            }
            let parent = match node.parent {
                NO_PARENT => NO_PARENT,
                p => moved.get(&p).copied().unwrap_or(NO_PARENT),
            };
            let new = self.path(into, parent, node.name);
            if self.is_overflow(into, new) && node.name != OVERFLOW_ID {
                self.counts.overflowed_spans += node.stats.count();
            }
            let target = self.node_mut(new);
            target.stats.merge(&node.stats);
            target.self_ns = target.self_ns.saturating_add(node.self_ns);
            moved.insert(old, new);
        }
        // The timeline's spans of `from` are exactly those whose slot is now empty (slots
        // freed earlier were remapped then, and these are not free until below).
        for t in self.timeline.iter_mut() {
            if self.paths[t.span].is_none() {
                if let Some(&new) = moved.get(&(t.span as u32)) {
                    t.span = new as usize;
                }
            }
        }
        // Freed only now, so that no slot of `from` is reused while it is being moved.
        self.free.extend(slots);
    }

    /// Every path in use with its slot and its names from the root.
    pub(crate) fn paths(&self) -> Vec<PathSnapshot<'_>> {
        self.paths
            .iter()
            .enumerate()
            .filter_map(|(slot, node)| {
                let node = node.as_ref()?;
                let mut names = vec![node.name];
                let mut p = node.parent;
                while p != NO_PARENT {
                    let n = self.node(p);
                    names.push(n.name);
                    p = n.parent;
                }
                names.reverse();
                Some(PathSnapshot {
                    slot,
                    lane: node.lane,
                    names,
                    stats: &node.stats,
                    self_ns: node.self_ns,
                })
            })
            .collect()
    }

    /// Number of path slots (path indices in the timeline are below it).
    pub(crate) fn slots(&self) -> usize {
        self.paths.len()
    }

    /// The timeline ring, oldest first (span = path slot).
    pub(crate) fn timeline(&self) -> impl Iterator<Item = &TimelineSpan> {
        self.timeline.iter()
    }
}

/// A span path's aggregated figures, as handed to the report builder.
pub(crate) struct PathSnapshot<'a> {
    pub(crate) slot: usize,
    pub(crate) lane: u32,
    pub(crate) names: Vec<u32>,
    pub(crate) stats: &'a DurationStats,
    pub(crate) self_ns: u64,
}

/// Thread identity of a lane.
#[derive(Clone)]
pub(crate) struct LaneThread {
    pub(crate) thread_id: u64,
    pub(crate) thread_name: String,
}

/// The lanes of a session: the live ones, and the identity of every thread that still has
/// rows in the aggregate (live, retained exited, and the exited-threads row).
struct Lanes {
    live: Vec<Arc<Lane>>,
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
}

impl SessionCore {
    pub(crate) fn new(name: &str) -> Arc<SessionCore> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let clock = clock().clone();
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
        })
    }

    fn lanes(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_lane(&self, thread: LaneThread) -> (Arc<Lane>, *mut Chunk) {
        let mut lanes = self.lanes();
        // Lane indices are never reused within a session (4 billion threads would be needed
        // to run out; past that, new threads share the last index).
        let index = lanes.next.min(EXITED_LANE - 1);
        lanes.next = lanes.next.saturating_add(1);
        let (lane, first) = Lane::new(index);
        lanes.live.push(Arc::clone(&lane));
        lanes.threads.insert(index, thread);
        (lane, first)
    }

    /// Drains what `lane` holds into `agg`. Returns the number of spans still open when the
    /// lane's thread has exited and everything it wrote was read (the lane can be retired),
    /// `None` while its thread runs.
    fn drain_lane(&self, lane: &Lane, agg: &mut Aggregate) -> Option<usize> {
        if self.frozen.load(Ordering::Acquire) {
            // Only the ends of spans begun before the stop can still arrive (new spans go
            // to another session): they stay unread, and those spans count as open.
            return None;
        }
        let gone = lane.producer_gone.load(Ordering::Acquire);
        let mut guard = lane.consumer.lock().unwrap_or_else(|e| e.into_inner());
        let c = &mut *guard;
        if c.head.is_null() {
            return gone.then_some(c.stack.len());
        }
        loop {
            // SAFETY: `head` is a live chunk of this lane (see `Lane`'s Send/Sync note).
            let chunk = unsafe { &*c.head };
            let n = chunk.len.load(Ordering::Acquire);
            while c.read < n {
                // SAFETY: events below `len` were written before `len` was published.
                let ev = unsafe { (*chunk.events[c.read].get()).assume_init() };
                agg.apply(lane.index, &mut c.stack, ev, &self.clock, self.start_raw);
                c.read += 1;
            }
            if n < CHUNK_EVENTS {
                break;
            }
            let next = chunk.next.load(Ordering::Acquire);
            if next.is_null() {
                break;
            }
            let done = c.head;
            c.head = next;
            c.read = 0;
            lane.recycle(done);
            lane.backlog.fetch_sub(1, Ordering::Relaxed);
        }
        if !gone {
            return None;
        }
        // The thread has exited and everything it wrote has been read: give the memory
        // back, keep the statistics.
        let head = std::mem::replace(&mut c.head, ptr::null_mut());
        // SAFETY: the producer is gone and everything was read: the consumer owns every
        // chunk.
        unsafe { free_chunks(head, lane) };
        Some(c.stack.len())
    }

    /// Drains every lane into the aggregate, retires the lanes of exited threads, and
    /// returns the aggregate locked.
    pub(crate) fn drain(&self) -> MutexGuard<'_, Aggregate> {
        let mut agg = self.agg.lock().unwrap_or_else(|e| e.into_inner());
        let live: Vec<Arc<Lane>> = self.lanes().live.clone();
        let mut exited = Vec::new();
        for lane in &live {
            if let Some(open) = self.drain_lane(lane, &mut agg) {
                exited.push((lane.index, open));
            }
        }
        if !exited.is_empty() {
            let mut lanes = self.lanes();
            lanes
                .live
                .retain(|l| !exited.iter().any(|&(i, _)| i == l.index));
            for (index, open) in exited {
                for folded in agg.retire(index, open) {
                    lanes.threads.remove(&folded);
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
    pub(crate) fn freeze(&self) {
        let agg = self.drain();
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
            .map(|l| l.consumer.lock().map(|c| c.stack.len() as u64).unwrap_or(0))
            .sum()
    }
}

impl Drop for SessionCore {
    fn drop(&mut self) {
        let lanes = self.lanes.get_mut().unwrap_or_else(|e| e.into_inner());
        for lane in lanes.live.iter() {
            lane.closed.store(true, Ordering::Release);
        }
        deactivate(self.id);
    }
}

// ---------------------------------------------------------------------------------------
// Active sessions
// ---------------------------------------------------------------------------------------

/// Id of the session `scope!` records into; 0 when none is active.
static CURRENT: AtomicU64 = AtomicU64::new(0);
static ACTIVE: Mutex<Vec<(u64, Weak<SessionCore>)>> = Mutex::new(Vec::new());

fn active() -> MutexGuard<'static, Vec<(u64, Weak<SessionCore>)>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes `core` the current session (the target of `scope!`).
pub(crate) fn activate(core: &Arc<SessionCore>) {
    let mut a = active();
    a.retain(|(id, _)| *id != core.id);
    a.push((core.id, Arc::downgrade(core)));
    CURRENT.store(core.id, Ordering::Release);
}

/// Removes a session from the active ones; the most recent remaining one becomes current.
pub(crate) fn deactivate(id: u64) {
    let mut a = active();
    a.retain(|(i, w)| *i != id && w.strong_count() > 0);
    CURRENT.store(a.last().map_or(0, |(i, _)| *i), Ordering::Release);
}

fn find_active(id: u64) -> Option<Arc<SessionCore>> {
    active()
        .iter()
        .find(|(i, _)| *i == id)
        .and_then(|(_, w)| w.upgrade())
}

/// Whether a session is active, so that `scope!` records.
pub fn is_recording() -> bool {
    CURRENT.load(Ordering::Relaxed) != 0
}

// ---------------------------------------------------------------------------------------
// The thread-local producer side
// ---------------------------------------------------------------------------------------

struct NamedTiming {
    name: u32,
    depth: u32,
    start: u64,
    /// The name itself when it is past the name limit (`name` is then the shared overflow
    /// id), so that a stop still finds the timing of that name and no other.
    overflowed: Option<Box<str>>,
}

impl NamedTiming {
    fn is(&self, id: u32, name: &str) -> bool {
        self.name == id && (id != OVERFLOW_ID || self.overflowed.as_deref() == Some(name))
    }

    fn name(&self) -> String {
        match &self.overflowed {
            Some(name) => name.to_string(),
            None => name_of(self.name).to_string(),
        }
    }
}

struct Producer {
    session: u64,
    core: Weak<SessionCore>,
    lane: Arc<Lane>,
    tail: *mut Chunk,
    len: usize,
    clock: Clock,
    depth: u32,
    timings: Vec<NamedTiming>,
}

impl Producer {
    #[inline(always)]
    fn push(&mut self, id: u32, ts: u64) {
        if self.len == CHUNK_EVENTS {
            self.roll();
        }
        // SAFETY: `tail` is this producer's chunk, `len < CHUNK_EVENTS`, and the slot is not
        // visible to the consumer until `len` is published below.
        unsafe {
            let chunk = &*self.tail;
            (*chunk.events.get_unchecked(self.len).get()).write(Event { id, ts });
            self.len += 1;
            chunk.len.store(self.len, Ordering::Release);
        }
    }

    #[cold]
    #[inline(never)]
    fn roll(&mut self) {
        let fresh = self.lane.take_spare().unwrap_or_else(alloc_chunk);
        // SAFETY: `tail` is live until the consumer sees `next`, after which we never touch it.
        unsafe { (*self.tail).next.store(fresh, Ordering::Release) };
        self.tail = fresh;
        self.len = 0;
        let backlog = self.lane.backlog.fetch_add(1, Ordering::Relaxed) + 1;
        if backlog >= BACKLOG_SELF_DRAIN {
            // The aggregator is behind (busy machine): catch up here rather than grow.
            if let Some(core) = self.core.upgrade() {
                let mut agg = core.agg.lock().unwrap_or_else(|e| e.into_inner());
                core.drain_lane(&self.lane, &mut agg);
            }
        }
    }

    /// Ends the span of a guard at `depth` when the thread's depth is not that: deeper, the
    /// spans above it were leaked and end with it; shallower, an enclosing guard ended first
    /// and closed it already (it was only dropped out of order).
    #[cold]
    #[inline(never)]
    fn exit_off_depth(&mut self, name: u32, depth: u32, ts: u64) {
        if self.depth < depth {
            self.push(LEAKED, ts);
            return;
        }
        self.close_above(depth, ts);
        self.depth -= 1;
        self.push(name | EXIT, ts);
    }

    /// Closes everything open above `depth` when the span at `depth` ends: named timings
    /// started inside it end with it; `scope!` guards still open there were leaked
    /// (`mem::forget`), so their spans end here too and are counted, and the spans after
    /// them nest where they belong again.
    #[cold]
    #[inline(never)]
    fn close_above(&mut self, depth: u32, ts: u64) {
        while self.depth > depth {
            match self.timings.last() {
                Some(t) if t.depth == self.depth => {
                    let name = t.name;
                    self.timings.pop();
                    self.push(name | EXIT, ts);
                }
                _ => self.push(LEAKED | EXIT, ts),
            }
            self.depth -= 1;
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.lane.producer_gone.store(true, Ordering::Release);
    }
}

struct Local {
    thread_id: u64,
    cur_session: u64,
    cur: usize,
    producers: Vec<Producer>,
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local { thread_id: 0, cur_session: 0, cur: 0, producers: Vec::new() })
    };
}

impl Local {
    fn thread(&mut self) -> LaneThread {
        static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);
        if self.thread_id == 0 {
            self.thread_id = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
        }
        let name = std::thread::current()
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("thread-{}", self.thread_id));
        LaneThread {
            thread_id: self.thread_id,
            thread_name: name,
        }
    }

    /// Index of this thread's producer for `core`, creating it if needed.
    fn producer_for(&mut self, core: &Arc<SessionCore>) -> usize {
        if let Some(i) = self.producers.iter().position(|p| p.session == core.id) {
            return i;
        }
        // Forget lanes of sessions that are gone, so long-lived threads do not accumulate.
        let before = self.producers.len();
        self.producers
            .retain(|p| !p.lane.closed.load(Ordering::Acquire));
        if self.producers.len() != before {
            self.cur_session = 0;
        }
        let thread = self.thread();
        let (lane, first) = core.new_lane(thread);
        self.producers.push(Producer {
            session: core.id,
            core: Arc::downgrade(core),
            lane,
            tail: first,
            len: 0,
            clock: core.clock.clone(),
            depth: 0,
            timings: Vec::new(),
        });
        self.producers.len() - 1
    }

    #[cold]
    #[inline(never)]
    fn make_current(&mut self, sid: u64) -> bool {
        let Some(core) = find_active(sid) else {
            return false;
        };
        let i = self.producer_for(&core);
        self.cur_session = sid;
        self.cur = i;
        true
    }

    #[inline]
    fn find(&self, sid: u64) -> Option<usize> {
        if self.cur_session == sid {
            Some(self.cur)
        } else {
            self.find_other(sid)
        }
    }

    /// [`find`](Self::find) for a session other than the current one (kept out of the
    /// inlined span end).
    #[cold]
    #[inline(never)]
    fn find_other(&self, sid: u64) -> Option<usize> {
        self.producers.iter().position(|p| p.session == sid)
    }
}

/// The guard `scope!` returns: the span ends when it is dropped.
///
/// Guards must be dropped in the reverse order of their creation (which ordinary scoping
/// does); a guard dropped out of order is counted in `Diagnostics::misnested_exits`.
#[must_use = "the span ends when the guard is dropped: bind it with `let _span = scope!(..);`"]
pub struct ScopeGuard {
    session: u64,
    name: u32,
    /// Depth of this guard's span on its thread (1 = outermost).
    depth: u32,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for ScopeGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopeGuard")
            .field("recording", &(self.session != 0))
            .finish()
    }
}

impl ScopeGuard {
    const DISARMED: ScopeGuard = ScopeGuard {
        session: 0,
        name: 0,
        depth: 0,
        _not_send: PhantomData,
    };

    /// Opens a span for `callsite` in the current session, if any. Used by `scope!`.
    #[inline(always)]
    pub fn enter(callsite: &'static Callsite) -> ScopeGuard {
        let sid = CURRENT.load(Ordering::Relaxed);
        if sid == 0 {
            return ScopeGuard::DISARMED;
        }
        Self::enter_active(sid, callsite)
    }

    #[inline]
    fn enter_active(sid: u64, callsite: &'static Callsite) -> ScopeGuard {
        let name = callsite.id();
        LOCAL
            .try_with(|l| {
                let Ok(mut l) = l.try_borrow_mut() else {
                    return ScopeGuard::DISARMED;
                };
                if l.cur_session != sid && !l.make_current(sid) {
                    return ScopeGuard::DISARMED;
                }
                let cur = l.cur;
                let p = &mut l.producers[cur];
                let ts = p.clock.raw();
                p.depth += 1;
                p.push(name, ts);
                ScopeGuard {
                    session: sid,
                    name,
                    depth: p.depth,
                    _not_send: PhantomData,
                }
            })
            .unwrap_or(ScopeGuard::DISARMED)
    }

    /// Whether this guard is recording a span (a session was active when it was made).
    pub fn is_recording(&self) -> bool {
        self.session != 0
    }
}

impl Drop for ScopeGuard {
    #[inline(always)]
    fn drop(&mut self) {
        // Only a check when no session was active: the rest is out of line.
        if self.session != 0 {
            exit_span(self.session, self.name, self.depth);
        }
    }
}

/// Ends the span of a guard: a clock read and a store into the thread's lane. Out of line,
/// so that dropping a guard made with no session active stays one inlined check.
#[inline(never)]
fn exit_span(sid: u64, name: u32, depth: u32) {
    let _ = LOCAL.try_with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            return;
        };
        let Some(i) = l.find(sid) else { return };
        let p = &mut l.producers[i];
        let ts = p.clock.raw();
        if p.depth != depth {
            p.exit_off_depth(name, depth, ts);
            return;
        }
        p.depth -= 1;
        p.push(name | EXIT, ts);
    });
}

/// Why `stop_named` refused.
pub(crate) enum StopError {
    /// No timing of that name is open on this thread.
    NotStarted { thread: String },
    /// Something opened later is still open (its name).
    OutOfOrder { open: String },
}

/// Opens the timing `name` (interned as `id`) on the calling thread in `core`.
pub(crate) fn start_named(core: &Arc<SessionCore>, id: u32, name: &str) {
    let _ = LOCAL.try_with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            return;
        };
        let i = match l.find(core.id) {
            Some(i) => i,
            None => l.producer_for(core),
        };
        let p = &mut l.producers[i];
        let ts = p.clock.raw();
        p.depth += 1;
        let depth = p.depth;
        p.timings.push(NamedTiming {
            name: id,
            depth,
            start: ts,
            overflowed: (id == OVERFLOW_ID).then(|| name.into()),
        });
        p.push(id, ts);
    });
}

/// Closes the timing `name` (interned as `id`) on the calling thread and returns its
/// duration. `scope!` spans still open inside it end with it (a guard dropped afterwards is
/// counted as misnested; a leaked one as leaked); a timing still open inside it is an error.
pub(crate) fn stop_named(
    core: &Arc<SessionCore>,
    id: u32,
    name: &str,
) -> Result<Duration, StopError> {
    let thread_name = || {
        std::thread::current()
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:?}", std::thread::current().id()))
    };
    LOCAL
        .try_with(|l| {
            let Ok(mut l) = l.try_borrow_mut() else {
                return Err(StopError::NotStarted {
                    thread: thread_name(),
                });
            };
            let Some(i) = l.find(core.id) else {
                return Err(StopError::NotStarted {
                    thread: thread_name(),
                });
            };
            let p = &mut l.producers[i];
            let ts = p.clock.raw();
            let Some(top) = p.timings.last() else {
                return Err(StopError::NotStarted {
                    thread: thread_name(),
                });
            };
            if !top.is(id, name) {
                return Err(if p.timings.iter().any(|t| t.is(id, name)) {
                    StopError::OutOfOrder { open: top.name() }
                } else {
                    StopError::NotStarted {
                        thread: thread_name(),
                    }
                });
            }
            let (start, depth) = (top.start, top.depth);
            if p.depth > depth {
                p.close_above(depth, ts);
            }
            p.timings.pop();
            p.depth -= 1;
            p.push(id | EXIT, ts);
            Ok(p.clock.delta(start, ts))
        })
        .unwrap_or_else(|_| {
            Err(StopError::NotStarted {
                thread: thread_name(),
            })
        })
}
