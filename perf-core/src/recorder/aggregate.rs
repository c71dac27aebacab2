//! Session core: span paths and the aggregate of a session — the events of its lanes turned
//! into per-path span statistics and the timeline, and the rows of exited threads retired and
//! folded.

use std::collections::VecDeque;

use quanta::Clock;
use rustc_hash::FxHashMap;

use super::lane::Event;
use super::{
    EXIT, EXITED_LANE, LEAKED, MAX_DEPTH, MAX_PATHS, OVERFLOW_ID, RETAINED_EXITED_THREADS,
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
    pub(super) fn new() -> Self {
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

    pub(super) fn apply(
        &mut self,
        lane: u32,
        stack: &mut Vec<OpenFrame>,
        ev: Event,
        clock: &Clock,
        t0: u64,
    ) {
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
    pub(super) fn retire(&mut self, lane: u32, open: usize) -> Vec<u32> {
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
