//! Span paths and the aggregate of a session: the events of its lanes turned
//! into per-path span statistics and the timeline, and the rows of exited threads retired and
//! folded.

use std::collections::VecDeque;

use quanta::Clock;
use rustc_hash::FxHashMap;

use super::frame_agg::FrameAgg;
use super::lane::Event;
use super::{
    EXIT, EXITED_LANE, FRAME, LEAKED, MAX_DEPTH, MAX_PATHS, OVERFLOW_ID, RETAINED_EXITED_THREADS,
    TIMELINE_CAPACITY,
};
use crate::report::{Diagnostics, TimelineSpan};
use crate::stats::DurationStats;

/// Parent of a root path.
const NO_PARENT: u32 = u32::MAX;

/// One span open on a thread, as the aggregator sees it.
pub(super) struct OpenFrame {
    path: u32,
    name: u32,
    start: u64,
    child_ns: u64,
    /// The frame this span is a stage of: `(source, frame id)`.
    stage_of: Option<(u32, u64)>,
}

/// A span of the timeline ring as recorded: its path slot and its start and end ticks (turned
/// into nanoseconds when the timeline is read, not for every span).
#[derive(Debug, Clone, Copy)]
struct RingSpan {
    slot: u32,
    start: u64,
    end: u64,
}

/// The timeline: the last [`TIMELINE_CAPACITY`] spans, a fixed ring written in place (one
/// store and an index bump a span).
struct Ring {
    spans: Vec<RingSpan>,
    /// Where the next span goes, once the ring is full (the oldest span is there).
    next: usize,
}

const _: () = assert!(TIMELINE_CAPACITY.is_power_of_two());

impl Ring {
    fn new() -> Self {
        Ring {
            spans: Vec::with_capacity(TIMELINE_CAPACITY),
            next: 0,
        }
    }

    /// Keeps `span`; returns whether it pushed the oldest one out.
    #[inline]
    fn push(&mut self, span: RingSpan) -> bool {
        if self.spans.len() < TIMELINE_CAPACITY {
            self.spans.push(span);
            return false;
        }
        self.spans[self.next] = span;
        self.next = (self.next + 1) & (TIMELINE_CAPACITY - 1);
        true
    }

    /// Oldest first.
    fn iter(&self) -> impl Iterator<Item = &RingSpan> {
        let (newer, older) = self.spans.split_at(self.next);
        older.iter().chain(newer)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut RingSpan> {
        self.spans.iter_mut()
    }
}

/// Histogram counts [`Aggregate::apply`] puts off, at most, before it makes them together
/// ([`DurationStats::record_but_histogram`]).
const HISTOGRAM_BATCH: usize = 64;

/// Entries of [`PathCache`] (a power of two).
const PATH_CACHE: usize = 64;

/// A direct-mapped cache of `(lane, parent, name) → path` in front of the path index: a
/// thread entering the same few spans over and over finds each with one comparison instead of
/// a hash-table probe. Emptied whenever a path slot is freed.
struct PathCache {
    entries: [(u32, u32, u32, u32); PATH_CACHE],
}

impl PathCache {
    /// No lane is `u32::MAX` in `apply`, and no name id is 0: nothing matches.
    const EMPTY: (u32, u32, u32, u32) = (u32::MAX, u32::MAX, 0, 0);

    fn new() -> Self {
        PathCache {
            entries: [Self::EMPTY; PATH_CACHE],
        }
    }

    #[inline]
    fn slot(lane: u32, parent: u32, name: u32) -> usize {
        let h = name
            .wrapping_mul(0x9E37_79B1)
            .wrapping_add(parent.wrapping_mul(0x85EB_CA77))
            .wrapping_add(lane.wrapping_mul(0xC2B2_AE3D));
        (h >> (32 - PATH_CACHE.trailing_zeros())) as usize
    }

    #[inline]
    fn get(&self, lane: u32, parent: u32, name: u32) -> Option<u32> {
        let (l, p, n, path) = self.entries[Self::slot(lane, parent, name)];
        (l == lane && p == parent && n == name).then_some(path)
    }

    #[inline]
    fn put(&mut self, lane: u32, parent: u32, name: u32, path: u32) {
        self.entries[Self::slot(lane, parent, name)] = (lane, parent, name, path);
    }

    fn clear(&mut self) {
        self.entries = [Self::EMPTY; PATH_CACHE];
    }
}

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
    cache: PathCache,
    /// The slots of each lane's paths (to retire a lane without scanning every path).
    lane_paths: FxHashMap<u32, Vec<u32>>,
    overflow: FxHashMap<u32, u32>,
    timeline: Ring,
    /// The span durations whose histogram counts are put off, by path slot: made together
    /// by [`record_histograms`](Self::record_histograms), before the aggregate is read.
    histogram_later: Vec<(u32, u64)>,
    /// Exited threads that still have rows of their own, oldest first.
    retained_exited: VecDeque<u32>,
    /// What the recording counted (the session adds what it knows).
    pub(crate) counts: Diagnostics,
    /// Frames, their stages, misses and incidents.
    pub(crate) frames: FrameAgg,
}

impl Aggregate {
    pub(super) fn new() -> Self {
        Aggregate {
            paths: Vec::new(),
            free: Vec::new(),
            live: 0,
            index: FxHashMap::default(),
            cache: PathCache::new(),
            lane_paths: FxHashMap::default(),
            overflow: FxHashMap::default(),
            timeline: Ring::new(),
            histogram_later: Vec::with_capacity(HISTOGRAM_BATCH),
            retained_exited: VecDeque::new(),
            counts: Diagnostics {
                timeline_capacity: TIMELINE_CAPACITY as u64,
                ..Diagnostics::default()
            },
            frames: FrameAgg::new(),
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
        if let Some(p) = self.cache.get(lane, parent, name) {
            return p;
        }
        match self.index.get(&(lane, parent, name)) {
            Some(&p) => {
                self.cache.put(lane, parent, name, p);
                p
            }
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

    /// Applies one event of `lane` (whose open spans are `stack`) to the aggregate.
    // Inlined into the drain loop, as it was when both lived in one module (that is, one
    // codegen unit): called once per event.
    #[inline]
    pub(super) fn apply(
        &mut self,
        lane: u32,
        stack: &mut Vec<OpenFrame>,
        ev: Event,
        clock: &Clock,
        t0: u64,
    ) {
        if ev.id & (EXIT | LEAKED | FRAME) == FRAME {
            self.frames.event(lane, ev, clock, t0);
            return;
        }
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
                stage_of: self.frames.take_stage_tag(lane),
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
        if let Some((source, frame)) = f.stage_of {
            self.frames
                .stage(source, frame, f.name, lane, f.start, ev.ts);
        }
        if let Some(parent) = stack.last_mut() {
            parent.child_ns = parent.child_ns.saturating_add(dur);
        }
        if let Some(c) = self.frames.capture.as_mut() {
            let paths = &self.paths;
            c.span(
                f.path,
                lane,
                || path_names(paths, f.path),
                (f.start, ev.ts),
                clock,
                t0,
            );
        }
        let node = self.node_mut(f.path);
        node.stats.record_but_histogram(dur);
        node.self_ns = node.self_ns.saturating_add(dur.saturating_sub(f.child_ns));
        self.histogram_later.push((f.path, dur));
        if self.histogram_later.len() >= HISTOGRAM_BATCH {
            self.record_histograms();
        }
        let pushed_out = self.timeline.push(RingSpan {
            slot: f.path,
            start: f.start,
            end: ev.ts,
        });
        self.counts.timeline_dropped += u64::from(pushed_out);
    }

    /// Makes the histogram counts [`apply`](Self::apply) put off. Called after every run
    /// of `apply` (a lane's drain), before the aggregate's lock is let go: nothing reads a
    /// path, nor frees one, with counts still to make.
    ///
    /// A loop of these counts alone lets the processor overlap their cache misses, which
    /// the rest of a span's work in `apply` keeps it from doing.
    #[inline(never)]
    pub(super) fn record_histograms(&mut self) {
        let paths = &mut self.paths;
        for &(p, v) in &self.histogram_later {
            if let Some(node) = paths[p as usize].as_mut() {
                node.stats.record_histogram(v);
            }
        }
        self.histogram_later.clear();
        self.frames.record_histograms();
    }

    /// Takes the lane of an exited thread out of the live ones: its spans still open are
    /// counted as abandoned, its rows are kept while it is one of the
    /// [`RETAINED_EXITED_THREADS`] most recent exited threads. Returns the lanes whose rows
    /// were folded into the exited-threads row (their thread identity can be forgotten).
    pub(super) fn retire(&mut self, lane: u32, open: usize) -> Vec<u32> {
        debug_assert!(
            self.histogram_later.is_empty(),
            "counts put off at a retire"
        );
        self.frames.forget_lane(lane);
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
        // Slots of `from` are freed below: no cached path may point to them.
        self.cache.clear();
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
            if self.paths[t.slot as usize].is_none() {
                if let Some(&new) = moved.get(&t.slot) {
                    t.slot = new;
                }
            }
        }
        // Freed only now, so that no slot of `from` is reused while it is being moved. The
        // capture keeps its own copy of these paths: it forgets the slots.
        if let Some(c) = self.frames.capture.as_mut() {
            c.forget_slots(&slots);
        }
        self.free.extend(slots);
    }

    /// Every path in use with its slot and its names from the root.
    pub(crate) fn paths(&self) -> Vec<PathSnapshot<'_>> {
        debug_assert!(self.histogram_later.is_empty(), "counts put off at a read");
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

    /// The timeline ring, oldest first (span = path slot), in nanoseconds from `t0` on
    /// `clock` (the session's start and clock). Start and end are rounded each (as the
    /// capture does), so that children lie inside their parents.
    pub(crate) fn timeline<'a>(
        &'a self,
        clock: &'a Clock,
        t0: u64,
    ) -> impl Iterator<Item = TimelineSpan> + 'a {
        self.timeline.iter().map(move |t| {
            let start_ns = clock.delta_as_nanos(t0, t.start);
            TimelineSpan {
                span: t.slot as usize,
                start_ns,
                duration_ns: clock.delta_as_nanos(t0, t.end).saturating_sub(start_ns),
            }
        })
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

/// The names of path slot `slot`, from the root.
fn path_names(paths: &[Option<PathNode>], slot: u32) -> Vec<u32> {
    let mut names = Vec::new();
    let mut p = slot;
    while p != NO_PARENT {
        let Some(node) = paths.get(p as usize).and_then(Option::as_ref) else {
            break;
        };
        names.push(node.name);
        p = node.parent;
    }
    names.reverse();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::clock;

    const A: u32 = 10;
    const B: u32 = 11;

    /// One thread's events fed to an aggregate, as a drain would.
    struct Thread {
        lane: u32,
        stack: Vec<OpenFrame>,
    }

    impl Thread {
        fn new(lane: u32) -> Self {
            Thread {
                lane,
                stack: Vec::new(),
            }
        }

        fn feed(&mut self, agg: &mut Aggregate, events: &[(u32, u64)]) {
            for &(id, ts) in events {
                agg.apply(self.lane, &mut self.stack, Event { id, ts }, clock(), 0);
            }
            agg.record_histograms();
        }
    }

    fn ns(start: u64, end: u64) -> u64 {
        clock().delta_as_nanos(start, end)
    }

    /// (lane, names, count, total, self) of every path, sorted.
    fn rows(agg: &Aggregate) -> Vec<(u32, Vec<u32>, u64, u64, u64)> {
        let mut rows: Vec<_> = agg
            .paths()
            .iter()
            .map(|p| {
                let (count, total) = (p.stats.count(), p.stats.total());
                (p.lane, p.names.clone(), count, total, p.self_ns)
            })
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn nested_spans_make_paths_with_self_time() {
        let mut agg = Aggregate::new();
        let mut t = Thread::new(0);
        t.feed(
            &mut agg,
            &[
                (A, 100),
                (B, 200),
                (B | EXIT, 500),
                (B, 600),
                (B | EXIT, 700),
                (A | EXIT, 1000),
            ],
        );
        let b = ns(200, 500) + ns(600, 700);
        assert_eq!(
            rows(&agg),
            [
                (0, vec![A], 1, ns(100, 1000), ns(100, 1000) - b),
                (0, vec![A, B], 2, b, b),
            ]
        );
        assert!(t.stack.is_empty());
        assert_eq!(agg.counts.misnested_exits, 0);
        // The timeline has the spans in the order they ended.
        let timeline: Vec<_> = agg
            .timeline(clock(), 0)
            .map(|s| (s.start_ns, s.duration_ns))
            .collect();
        assert_eq!(
            timeline,
            [
                // Start and end rounded each: the duration is their difference.
                (ns(0, 200), ns(0, 500) - ns(0, 200)),
                (ns(0, 600), ns(0, 700) - ns(0, 600)),
                (ns(0, 100), ns(0, 1000) - ns(0, 100)),
            ]
        );
        // The same names on another lane are other paths.
        Thread::new(1).feed(&mut agg, &[(A, 0), (A | EXIT, 10)]);
        assert_eq!(agg.paths().len(), 3);
    }

    #[test]
    fn histogram_counts_put_off_give_the_statistics_of_counts_made_at_once() {
        // Three paths, nested, over several batches of put-off counts, with durations
        // spread over many buckets: each path's statistics are those of its durations
        // recorded one by one, in order.
        let mut agg = Aggregate::new();
        let mut t = Thread::new(0);
        let mut events = Vec::new();
        let mut ts = 0u64;
        for i in 0..(3 * HISTOGRAM_BATCH as u64 + 7) {
            let spread = 1 + (i * 7919) % 5_000_000;
            events.push((A, ts));
            events.push((B, ts + 10));
            events.push((B | EXIT, ts + 10 + spread));
            events.push((B, ts + 20 + spread));
            events.push((B | EXIT, ts + 20 + spread + i));
            events.push((A | EXIT, ts + 30 + spread + 2 * i));
            ts += 40 + spread + 2 * i;
        }
        // Fed in uneven runs, as lanes are drained.
        for run in events.chunks(37) {
            t.feed(&mut agg, run);
        }
        let mut want: std::collections::BTreeMap<Vec<u32>, DurationStats> = Default::default();
        let mut open = Vec::new();
        for &(id, ts) in &events {
            if id & EXIT == 0 {
                open.push((id, ts));
            } else {
                let (_, start) = open.pop().unwrap();
                let mut path: Vec<u32> = open.iter().map(|&(n, _)| n).collect();
                path.push(id & !EXIT);
                want.entry(path).or_default().record(ns(start, ts));
            }
        }
        let paths = agg.paths();
        assert_eq!(paths.len(), 2);
        for p in &paths {
            let w = &want[&p.names];
            assert_eq!(p.stats.summary(), w.summary(), "{:?}", p.names);
            assert_eq!(p.stats.buckets(256), w.buckets(256), "{:?}", p.names);
        }
    }

    #[test]
    fn misnested_and_leaked_ends_are_counted() {
        let mut agg = Aggregate::new();
        let mut t = Thread::new(0);
        // An end with nothing open, and an end of another name.
        t.feed(&mut agg, &[(A | EXIT, 5), (A, 10), (B | EXIT, 20)]);
        assert_eq!(agg.counts.misnested_exits, 2);
        assert_eq!(rows(&agg), [(0, vec![A], 1, ns(10, 20), ns(10, 20))]);
        // B's guard leaked: its span ended with A's, as the producer closes it.
        t.feed(
            &mut agg,
            &[(A, 30), (B, 40), (LEAKED | EXIT, 50), (A | EXIT, 50)],
        );
        assert_eq!(agg.counts.leaked_spans, 1);
        assert_eq!(agg.counts.misnested_exits, 2);
        assert!(t.stack.is_empty());
        assert_eq!(rows(&agg)[1], (0, vec![A, B], 1, ns(40, 50), ns(40, 50)));
        // ... and its guard was dropped after all: out of order, not leaked.
        t.feed(&mut agg, &[(LEAKED, 60)]);
        assert_eq!(agg.counts.leaked_spans, 0);
        assert_eq!(agg.counts.misnested_exits, 3);
    }

    #[test]
    fn spans_deeper_than_the_limit_share_one_path() {
        let mut agg = Aggregate::new();
        let mut t = Thread::new(0);
        let depth = MAX_DEPTH as u64 + 10;
        let enters: Vec<_> = (0..depth).map(|i| (A, i)).collect();
        let exits: Vec<_> = (0..depth).map(|i| (A | EXIT, depth + i)).collect();
        t.feed(&mut agg, &enters);
        t.feed(&mut agg, &exits);
        assert_eq!(agg.paths().len(), MAX_DEPTH + 1);
        assert_eq!(agg.counts.overflowed_spans, 10);
        let overflow = agg
            .paths()
            .iter()
            .filter(|p| p.names == [OVERFLOW_ID])
            .map(|p| p.stats.count())
            .collect::<Vec<_>>();
        assert_eq!(overflow, [10]);
    }

    #[test]
    fn paths_past_the_limit_are_counted_under_overflow() {
        let mut agg = Aggregate::new();
        let mut t = Thread::new(0);
        for name in 100..100 + MAX_PATHS as u32 + 5 {
            t.feed(&mut agg, &[(name, 0), (name | EXIT, 1)]);
        }
        assert_eq!(agg.paths().len(), MAX_PATHS + 1);
        assert_eq!(agg.counts.overflowed_spans, 5);
        // Known paths still get their own spans.
        t.feed(&mut agg, &[(100, 0), (100 | EXIT, 1)]);
        assert_eq!(agg.counts.overflowed_spans, 5);
        // A span of the overflow name is counted too.
        t.feed(&mut agg, &[(OVERFLOW_ID, 0), (OVERFLOW_ID | EXIT, 1)]);
        assert_eq!(agg.counts.overflowed_spans, 6);
    }

    #[test]
    fn the_timeline_keeps_the_most_recent_spans() {
        let mut agg = Aggregate::new();
        let mut t = Thread::new(0);
        for i in 0..TIMELINE_CAPACITY as u64 + 5 {
            t.feed(&mut agg, &[(A, 10 * i), (A | EXIT, 10 * i + 1)]);
        }
        assert_eq!(agg.timeline(clock(), 0).count(), TIMELINE_CAPACITY);
        assert_eq!(agg.counts.timeline_dropped, 5);
        assert_eq!(agg.timeline(clock(), 0).next().unwrap().start_ns, ns(0, 50));
    }

    #[test]
    fn exited_threads_past_the_retained_ones_are_folded() {
        let mut agg = Aggregate::new();
        let lanes = RETAINED_EXITED_THREADS as u32 + 2;
        let mut folded = Vec::new();
        for lane in 0..lanes {
            let mut t = Thread::new(lane);
            t.feed(&mut agg, &[(A, 0), (B, 1), (B | EXIT, 2), (A | EXIT, 3)]);
            t.feed(&mut agg, &[(A, 4)]);
            folded.extend(agg.retire(lane, t.stack.len()));
        }
        assert_eq!(folded, [0, 1]);
        assert_eq!(agg.counts.exited_threads, lanes as u64);
        assert_eq!(agg.counts.abandoned_spans, lanes as u64);
        assert_eq!(agg.counts.folded_threads, 2);
        let rows = rows(&agg);
        assert!(rows.iter().all(|r| r.0 >= 2));
        // The folded lanes' spans are all kept, on the exited-threads row.
        let exited: Vec<_> = rows.iter().filter(|r| r.0 == EXITED_LANE).collect();
        assert_eq!(exited.len(), 2);
        assert_eq!((&exited[0].1, exited[0].2), (&vec![A], 2));
        assert_eq!((&exited[1].1, exited[1].2), (&vec![A, B], 2));
        let total: u64 = rows.iter().filter(|r| r.1 == [A, B]).map(|r| r.2).sum();
        assert_eq!(total, lanes as u64);
        // The timeline follows the moved paths.
        let slots: Vec<_> = agg.paths().iter().map(|p| p.slot).collect();
        assert!(agg.timeline(clock(), 0).all(|t| slots.contains(&t.span)));
        // The folded lanes' slots are reused.
        let before = agg.slots();
        Thread::new(99).feed(&mut agg, &[(A, 0), (B, 1), (B | EXIT, 2), (A | EXIT, 3)]);
        assert_eq!(agg.slots(), before);
    }

    #[test]
    fn a_session_at_its_path_limit_can_still_fold() {
        let mut agg = Aggregate::new();
        Thread::new(0).feed(&mut agg, &[(A, 0), (A | EXIT, 1)]);
        let mut t = Thread::new(1);
        for name in 100..100 + MAX_PATHS as u32 - 1 {
            t.feed(&mut agg, &[(name, 0), (name | EXIT, 1)]);
        }
        assert_eq!(agg.paths().len(), MAX_PATHS);
        for lane in [0].into_iter().chain(2..RETAINED_EXITED_THREADS as u32 + 2) {
            agg.retire(lane, 0);
        }
        assert_eq!(agg.counts.folded_threads, 1);
        assert_eq!(agg.counts.overflowed_spans, 0);
        assert_eq!(
            rows(&agg)[rows(&agg).len() - 1],
            (EXITED_LANE, vec![A], 1, ns(0, 1), ns(0, 1))
        );
    }
}
