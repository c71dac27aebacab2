//! The aggregator's side of frames: frame records read from the lanes become, per source,
//! counts, latency and jitter distributions, per-stage service and queue times, misses
//! against the budget, their attribution, and the worst missed frames kept whole (the flight
//! recorder). Runs on the aggregator (never on a recording thread), in bounded memory.
//!
//! A frame's records may arrive in any order across lanes (its birth on the camera thread's
//! lane, its stages and end on a worker's): records meet in the frames in flight, and a
//! frame is settled at the end of a drain pass once both its birth and its end are in.

use std::collections::{BTreeMap, VecDeque};

use quanta::Clock;
use rustc_hash::FxHashMap;

use super::capture::Capture;
use super::lane::Event;
use super::names::name_of;
use super::session_core::LaneThread;
/// Emptied stage lists kept for reuse.
const SPARE_LISTS: usize = 64;
/// Ended frames that may wait for the next drain pass; past it (frames far faster than any
/// line, or an aggregator starved of CPU so that one pass read a great many), the oldest half
/// of those whose birth is in is settled at once.
const MAX_ENDED_WAITING: usize = 8192;

use super::{
    DEFAULT_MAX_INCIDENTS, EXITED_THREADS_ID, EXITED_THREADS_NAME, FRAME_WINDOWS,
    INCIDENT_PREVIOUS_FRAMES, MAX_DROP_REASONS, MAX_FRAMES_IN_FLIGHT, MAX_FRAME_SOURCES,
    MAX_STAGES_PER_SOURCE,
};
use crate::report::{
    Attribution, Distribution, FrameReport, FrameWindow, Incident, IncidentFrame, IncidentStage,
    StageReport,
};
use crate::stats::DurationStats;

/// Kinds of frame records, in bits 24..29 of a frame event's id (the low 24 bits hold the
/// source's name id).
pub(super) const KIND_SHIFT: u32 = 24;
/// `frame!`/`begin`: `ts` is the capture tick; an [`K_ID`] event follows.
pub(super) const K_BEGIN: u32 = 1;
/// `finish`: `ts` is the tick; an [`K_ID`] event follows.
pub(super) const K_FINISH: u32 = 2;
/// `drop_frame`: `ts` is the tick; an [`K_ID`] then a [`K_REASON`] event follow.
pub(super) const K_DROP: u32 = 3;
/// The frame id of the record before it, in `ts`.
pub(super) const K_ID: u32 = 4;
/// `stage`: `ts` is the frame id; the next event of the lane is the stage's span.
pub(super) const K_STAGE: u32 = 5;
/// The drop reason (a name id in the low 24 bits).
pub(super) const K_REASON: u32 = 6;
/// The low 24 bits of a frame event's id.
pub(super) const LOW: u32 = (1 << KIND_SHIFT) - 1;

/// A frame record of one lane whose events are not all read yet.
#[derive(Clone, Copy)]
enum Partial {
    Begin { source: u32, tick: u64 },
    Finish { source: u32, tick: u64 },
    Drop { source: u32, tick: u64 },
    DropId { source: u32, tick: u64, id: u64 },
}

/// Records of a lane half read, by lane: a frame record whose id (or reason) is its next
/// event, a stage tag whose span is. A lane has one only between two of its consecutive
/// events, so there are few at any time (most often none, or the one lane being read), and
/// a linear search beats hashing the lane on each of a frame's events.
struct LaneSlots<T>(Vec<(u32, T)>);

impl<T> Default for LaneSlots<T> {
    fn default() -> Self {
        LaneSlots(Vec::new())
    }
}

impl<T> LaneSlots<T> {
    #[inline]
    fn insert(&mut self, lane: u32, value: T) {
        match self.0.iter_mut().find(|(l, _)| *l == lane) {
            Some((_, v)) => *v = value,
            None => self.0.push((lane, value)),
        }
    }

    #[inline]
    fn remove(&mut self, lane: u32) -> Option<T> {
        let i = self.0.iter().position(|(l, _)| *l == lane)?;
        Some(self.0.swap_remove(i).1)
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Clone, Copy)]
struct StageRec {
    name: u32,
    lane: u32,
    start: u64,
    end: u64,
}

#[derive(Clone, Copy)]
enum End {
    Finish(u64),
    Drop(u64, u32),
}

struct InFlight {
    capture: Option<u64>,
    stages: Vec<StageRec>,
    end: Option<End>,
    /// Drain pass in which the frame's end arrived.
    ended_pass: u64,
    /// Drain pass in which its first record arrived.
    seen_pass: u64,
}

/// In [`FrameAgg::unborn`]: more than one frame of the id waits without a birth.
const SEVERAL: usize = usize::MAX;

/// Notes in `unborn` that the frame `key` at index `at` of `ended` has no birth yet.
fn note_unborn(unborn: &mut FxHashMap<(u32, u64), usize>, key: (u32, u64), at: usize) {
    unborn.entry(key).and_modify(|i| *i = SEVERAL).or_insert(at);
}

/// The tick of a frame's end (0 before it ended).
fn end_tick(f: &InFlight) -> u64 {
    match f.end {
        Some(End::Finish(t) | End::Drop(t, _)) => t,
        None => 0,
    }
}

/// What a missed frame is blamed on.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Cause {
    Stage(u32),
    Queue(u32),
    /// The time after the stage (the frame's last) until `finish`.
    After(u32),
    Unstaged,
}

impl Cause {
    fn text(self) -> String {
        match self {
            Cause::Stage(n) => name_of(n).to_string(),
            Cause::Queue(n) => format!("queue before {}", name_of(n)),
            Cause::After(n) => format!("after {}", name_of(n)),
            Cause::Unstaged => "unstaged".to_string(),
        }
    }
}

/// A stage of a settled frame, with its wait.
#[derive(Clone, Copy)]
struct Settled {
    rec: StageRec,
    queue: u64,
}

/// A frame kept for the flight recorder: an incident, or one of the frames before it.
#[derive(Clone)]
struct Kept {
    id: u64,
    capture: u64,
    latency: Option<u64>,
    stages: Vec<Settled>,
}

/// What a streamed capture hands out at a drain pass.
pub(crate) struct StreamBatch {
    pub(crate) new_paths: Vec<crate::report::CapturedPath>,
    pub(crate) first_path: usize,
    pub(crate) spans: Vec<crate::report::TimelineSpan>,
    pub(crate) frames: Vec<crate::report::CapturedFrame>,
    /// Raw tick of the window's start.
    pub(crate) start: u64,
    pub(crate) window_ns: u64,
    /// Spans and frames the capture refused so far.
    pub(crate) dropped: u64,
}

/// A frame of the trace capture.
struct CapturedRec {
    source: u32,
    frame: Kept,
    end: u64,
    reason: Option<u32>,
    missed: bool,
}

struct IncidentRec {
    source: u32,
    frame: Kept,
    budget: u64,
    overrun: u64,
    cause: Cause,
    previous: Vec<Kept>,
}

struct StageAgg {
    name: u32,
    service: DurationStats,
    queue: DurationStats,
    over_budget: u64,
    /// Median service and queue time, for the blame of a missed frame.
    service_median: Median,
    queue_median: Median,
}

/// Runs between two refreshes of a [`Median`] (under this many runs, it is exact).
const MEDIAN_REFRESH: u64 = 256;

/// The median of a [`DurationStats`], worked out only when a missed frame asks for it: a
/// quantile walks the histogram's buckets (microseconds cold), too dear for every frame of
/// a line that meets its deadline. Exact while the statistics hold up to
/// [`MEDIAN_REFRESH`] runs, then at most that many runs stale.
#[derive(Clone, Copy, Default)]
struct Median {
    value: u64,
    /// The count of the statistics when `value` was worked out.
    at: u64,
}

impl Median {
    fn of(&mut self, stats: &DurationStats) -> u64 {
        let n = stats.count();
        if n != self.at && (n <= MEDIAN_REFRESH || n - self.at >= MEDIAN_REFRESH) {
            self.value = stats.quantile(0.5);
            self.at = n;
        }
        self.value
    }
}

/// Windows of time from the session start, widened (two merged into one) whenever a new
/// frame would need more than [`FRAME_WINDOWS`].
struct Windows {
    width_ns: u64,
    counts: Vec<(u64, u64)>,
}

impl Windows {
    fn new() -> Self {
        Windows {
            width_ns: 1_000_000_000,
            counts: Vec::new(),
        }
    }

    fn add(&mut self, at_ns: u64, missed: bool) {
        let mut i = (at_ns / self.width_ns) as usize;
        while i >= FRAME_WINDOWS {
            let merged: Vec<(u64, u64)> = self
                .counts
                .chunks(2)
                .map(|c| c.iter().fold((0, 0), |(f, m), (a, b)| (f + a, m + b)))
                .collect();
            self.counts = merged;
            self.width_ns = self.width_ns.saturating_mul(2);
            i = (at_ns / self.width_ns) as usize;
        }
        if self.counts.len() <= i {
            self.counts.resize(i + 1, (0, 0));
        }
        self.counts[i].0 += 1;
        self.counts[i].1 += u64::from(missed);
    }
}

struct SourceAgg {
    name: u32,
    count: u64,
    finished: u64,
    dropped: Vec<(u32, u64)>,
    missed: u64,
    streak: u64,
    longest_streak: u64,
    latency: DurationStats,
    jitter: DurationStats,
    last_capture: Option<u64>,
    stages: Vec<StageAgg>,
    attribution: Vec<(Cause, u64)>,
    windows: Windows,
    /// Time from the end of a frame's last stage to its `finish`, and its median.
    tail: DurationStats,
    tail_median: Median,
    /// The latest settled frames, oldest first, for the incidents to come.
    recent: VecDeque<Kept>,
}

impl SourceAgg {
    fn new(name: u32) -> Self {
        SourceAgg {
            name,
            count: 0,
            finished: 0,
            dropped: Vec::new(),
            missed: 0,
            streak: 0,
            longest_streak: 0,
            latency: DurationStats::new(),
            jitter: DurationStats::new(),
            last_capture: None,
            stages: Vec::new(),
            attribution: Vec::new(),
            windows: Windows::new(),
            tail: DurationStats::new(),
            tail_median: Median::default(),
            recent: VecDeque::with_capacity(INCIDENT_PREVIOUS_FRAMES + 1),
        }
    }

    fn stage(&mut self, name: u32) -> Option<usize> {
        if let Some(i) = self.stages.iter().position(|s| s.name == name) {
            return Some(i);
        }
        if self.stages.len() >= MAX_STAGES_PER_SOURCE {
            return None;
        }
        self.stages.push(StageAgg {
            name,
            service: DurationStats::new(),
            queue: DurationStats::new(),
            over_budget: 0,
            service_median: Median::default(),
            queue_median: Median::default(),
        });
        Some(self.stages.len() - 1)
    }

    /// Keeps `kept` among the latest frames; returns the stage list of the one it pushes
    /// out, for reuse.
    fn remember(&mut self, kept: Kept) -> Option<Vec<Settled>> {
        let out = if self.recent.len() == INCIDENT_PREVIOUS_FRAMES {
            self.recent.pop_front().map(|k| k.stages)
        } else {
            None
        };
        self.recent.push_back(kept);
        out
    }
}

/// The frames of a session, as the aggregator keeps them.
pub(crate) struct FrameAgg {
    frame_budgets: FxHashMap<u32, u64>,
    stage_budgets: FxHashMap<u32, u64>,
    max_incidents: usize,
    sources: Vec<SourceAgg>,
    source_index: FxHashMap<u32, usize>,
    in_flight: FxHashMap<(u32, u64), InFlight>,
    /// Frames whose end arrived and that wait to be settled.
    ended: Vec<((u32, u64), InFlight)>,
    /// Frames of `ended` whose birth has not arrived (yet): their end was read first (its
    /// lane before the birth's in the pass), by id → their index in `ended`, or
    /// [`SEVERAL`] when the id has more than one (an id that came back).
    unborn: FxHashMap<(u32, u64), usize>,
    partial: LaneSlots<Partial>,
    /// Stage tags waiting for their span, by lane.
    stage_tags: LaneSlots<(u32, u64)>,
    incidents: Vec<IncidentRec>,
    /// Births of this drain pass: `(source index, capture tick)`.
    births: Vec<(u32, u64)>,
    /// Emptied stage lists, reused so that settling a frame allocates nothing.
    spare_stages: Vec<Vec<StageRec>>,
    spare_settled: Vec<Vec<Settled>>,
    /// Frames in flight that a stage made (its frame's birth not read yet): each either
    /// gets its birth by the end of the next pass, or is counted as unmatched then (a stage
    /// after its frame's `finish`, a stage of a frame begun while no session recorded).
    stage_made: Vec<(u32, u64)>,
    /// Waiting frames past which an end settles the oldest born ones
    /// ([`MAX_ENDED_WAITING`], raised after each such settling within a pass).
    settle_at: usize,
    pass: u64,
    pub(crate) unmatched: u64,
    pub(crate) abandoned: u64,
    /// The trace capture, while one is set (`capture_trace`); its spans are added by the
    /// span aggregate, its frames here.
    pub(crate) capture: Option<Capture>,
    captured: Vec<CapturedRec>,
    /// Frame records of sources past [`MAX_FRAME_SOURCES`].
    pub(crate) unrecorded: u64,
    /// Histogram counts put off ([`DurationStats::record_but_histogram`]): made together by
    /// [`record_histograms`](Self::record_histograms) before anything reads them.
    later: Vec<(Later, u64)>,
}

/// Which histogram a count put off goes to: of source `.0`, and of its stage `.2` for a
/// stage's service or queue time.
#[derive(Clone, Copy)]
struct Later(u32, LaterKind, u32);

#[derive(Clone, Copy)]
enum LaterKind {
    Latency,
    Jitter,
    Tail,
    Service,
    Queue,
}

impl FrameAgg {
    pub(super) fn new() -> Self {
        FrameAgg {
            frame_budgets: FxHashMap::default(),
            stage_budgets: FxHashMap::default(),
            max_incidents: DEFAULT_MAX_INCIDENTS,
            sources: Vec::new(),
            source_index: FxHashMap::default(),
            in_flight: FxHashMap::default(),
            ended: Vec::new(),
            unborn: FxHashMap::default(),
            partial: LaneSlots::default(),
            stage_tags: LaneSlots::default(),
            incidents: Vec::new(),
            births: Vec::new(),
            spare_stages: Vec::new(),
            spare_settled: Vec::new(),
            stage_made: Vec::new(),
            settle_at: MAX_ENDED_WAITING,
            pass: 0,
            unmatched: 0,
            abandoned: 0,
            capture: None,
            captured: Vec::new(),
            unrecorded: 0,
            later: Vec::new(),
        }
    }

    /// Makes the histogram counts put off by the frames settled (see
    /// [`Aggregate::record_histograms`](super::aggregate::Aggregate::record_histograms)).
    #[inline(never)]
    pub(super) fn record_histograms(&mut self) {
        let sources = &mut self.sources;
        for &(Later(s, kind, stage), v) in &self.later {
            let src = &mut sources[s as usize];
            let stats = match kind {
                LaterKind::Latency => &mut src.latency,
                LaterKind::Jitter => &mut src.jitter,
                LaterKind::Tail => &mut src.tail,
                LaterKind::Service => &mut src.stages[stage as usize].service,
                LaterKind::Queue => &mut src.stages[stage as usize].queue,
            };
            stats.record_histogram(v);
        }
        self.later.clear();
    }

    /// Drain passes so far (each ends with [`settle`](Self::settle)).
    pub(crate) fn passes(&self) -> u64 {
        self.pass
    }

    /// Whether frames have ended and wait to be settled.
    pub(crate) fn waiting(&self) -> bool {
        !self.ended.is_empty()
    }

    /// Sets (or, with 0, clears) the frame budget of the source `source`.
    pub(crate) fn set_frame_budget(&mut self, source: u32, ns: u64) {
        if ns == 0 {
            self.frame_budgets.remove(&source);
        } else {
            self.frame_budgets.insert(source, ns);
        }
    }

    /// Sets (or, with 0, clears) the budget of the stage `stage`, for every source.
    pub(crate) fn set_stage_budget(&mut self, stage: u32, ns: u64) {
        if ns == 0 {
            self.stage_budgets.remove(&stage);
        } else {
            self.stage_budgets.insert(stage, ns);
        }
    }

    /// Sets how many incidents the session keeps (the worst ones).
    pub(crate) fn set_max_incidents(&mut self, n: usize) {
        self.max_incidents = n;
        self.trim_incidents();
    }

    /// Whether a stage tag of `lane` waits for its span (cheap when none does).
    #[inline]
    pub(super) fn take_stage_tag(&mut self, lane: u32) -> Option<(u32, u64)> {
        if self.stage_tags.is_empty() {
            None
        } else {
            self.stage_tags.remove(lane)
        }
    }

    /// One frame event of `lane` (an event whose id has the frame bit).
    pub(super) fn event(&mut self, lane: u32, ev: Event, clock: &Clock, t0: u64) {
        let kind = (ev.id >> KIND_SHIFT) & 0x1f;
        let low = ev.id & LOW;
        match kind {
            K_BEGIN => {
                self.partial.insert(
                    lane,
                    Partial::Begin {
                        source: low,
                        tick: ev.ts,
                    },
                );
            }
            K_FINISH => {
                self.partial.insert(
                    lane,
                    Partial::Finish {
                        source: low,
                        tick: ev.ts,
                    },
                );
            }
            K_DROP => {
                self.partial.insert(
                    lane,
                    Partial::Drop {
                        source: low,
                        tick: ev.ts,
                    },
                );
            }
            K_ID => match self.partial.remove(lane) {
                Some(Partial::Begin { source, tick }) => self.begin(source, ev.ts, tick),
                Some(Partial::Finish { source, tick }) => {
                    self.end(source, ev.ts, End::Finish(tick), clock, t0)
                }
                Some(Partial::Drop { source, tick }) => {
                    self.partial.insert(
                        lane,
                        Partial::DropId {
                            source,
                            tick,
                            id: ev.ts,
                        },
                    );
                }
                _ => self.unmatched += 1,
            },
            K_REASON => match self.partial.remove(lane) {
                Some(Partial::DropId { source, tick, id }) => {
                    self.end(source, id, End::Drop(tick, low), clock, t0)
                }
                _ => self.unmatched += 1,
            },
            K_STAGE => {
                self.stage_tags.insert(lane, (low, ev.ts));
            }
            _ => self.unmatched += 1,
        }
    }

    /// A lane is gone: what it left half-written is dropped.
    pub(super) fn forget_lane(&mut self, lane: u32) {
        self.partial.remove(lane);
        self.stage_tags.remove(lane);
    }

    fn source(&mut self, name: u32) -> Option<usize> {
        // A line has a source or two: looking at their names beats hashing one.
        let found = if self.sources.len() <= 4 {
            self.sources.iter().position(|s| s.name == name)
        } else {
            self.source_index.get(&name).copied()
        };
        if found.is_some() {
            return found;
        }
        if self.sources.len() >= MAX_FRAME_SOURCES {
            self.unrecorded += 1;
            return None;
        }
        self.sources.push(SourceAgg::new(name));
        self.source_index.insert(name, self.sources.len() - 1);
        Some(self.sources.len() - 1)
    }

    /// The frame in flight `(source, id)`, made if new.
    fn entry(&mut self, source: u32, id: u64) -> &mut InFlight {
        // Frames that ended wait in `ended` (bounded by the drain passes); the limit is on
        // the others (begun and never ended, or stages of a frame never begun).
        if self.in_flight.len() >= MAX_FRAMES_IN_FLIGHT
            && !self.in_flight.contains_key(&(source, id))
        {
            self.let_go_oldest();
        }
        let spare = &mut self.spare_stages;
        let pass = self.pass;
        self.in_flight
            .entry((source, id))
            .or_insert_with(|| InFlight {
                capture: None,
                stages: spare.pop().unwrap_or_default(),
                end: None,
                ended_pass: 0,
                seen_pass: pass,
            })
    }

    /// At the end of a pass: the frames a stage made that still have no birth one whole pass
    /// later are counted as unmatched (a birth happens before its frame's stages, so it is
    /// read by the pass after the one that read a stage).
    fn let_go_stage_made(&mut self) {
        let pass = self.pass;
        let mut i = 0;
        while i < self.stage_made.len() {
            let key = self.stage_made[i];
            let waiting = match self.in_flight.get(&key) {
                Some(f) if f.capture.is_none() && f.end.is_none() => {
                    if f.seen_pass + 1 >= pass {
                        true
                    } else {
                        let f = self.in_flight.remove(&key).expect("just seen");
                        self.unmatched += f.stages.len() as u64;
                        if self.spare_stages.len() < SPARE_LISTS {
                            let mut stages = f.stages;
                            stages.clear();
                            self.spare_stages.push(stages);
                        }
                        false
                    }
                }
                // Born, ended, or let go: no longer this list's.
                _ => false,
            };
            if waiting {
                i += 1;
            } else {
                self.stage_made.swap_remove(i);
            }
        }
    }

    /// Past [`MAX_FRAMES_IN_FLIGHT`]: the oldest eighth of the frames that have not ended
    /// are let go (counted), so memory stays bounded when frames are begun and never ended.
    #[cold]
    fn let_go_oldest(&mut self) {
        let mut open: Vec<((u32, u64), u64)> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.end.is_none())
            .map(|(k, f)| (*k, f.capture.unwrap_or(0)))
            .collect();
        open.sort_unstable_by_key(|&(_, capture)| capture);
        for (key, _) in open.into_iter().take(MAX_FRAMES_IN_FLIGHT / 8) {
            if let Some(f) = self.in_flight.remove(&key) {
                if f.capture.is_some() {
                    self.abandoned += 1;
                } else {
                    self.unmatched += f.stages.len() as u64;
                }
            }
        }
    }

    fn begin(&mut self, source: u32, id: u64, tick: u64) {
        let Some(s) = self.source(source) else {
            return;
        };
        // A birth is always a new frame: an id may come back once its frame has ended (a
        // camera's ring of buffer slots).
        if !self.unborn.is_empty() && self.birth_of_ended(s, source, id, tick) {
            return;
        }
        let f = self.entry(source, id);
        if f.capture.is_some() {
            // The same id begun twice while the first is still in flight.
            self.unmatched += 1;
            return;
        }
        f.capture = Some(tick);
        self.sources[s].count += 1;
        // Intervals are taken in order of capture at the end of the pass: births of one
        // source on several threads arrive lane by lane.
        self.births.push((s as u32, tick));
    }

    /// A birth read after its frame's end (the end's lane was read first in the pass, or
    /// the birth's lane was read just before the birth was written): the frame waits in
    /// `ended` without a capture — of the frames of that id waiting so, the one that ended
    /// first at or after this birth (an id may come back once its frame ended). Returns
    /// whether it was found (and the birth given to it).
    #[cold]
    #[inline(never)]
    fn birth_of_ended(&mut self, s: usize, source: u32, id: u64, tick: u64) -> bool {
        let key = (source, id);
        let Some(&at) = self.unborn.get(&key) else {
            return false;
        };
        let fits = |f: &InFlight| f.capture.is_none() && end_tick(f) >= tick;
        let found = if at != SEVERAL {
            fits(&self.ended[at].1).then_some(at)
        } else {
            self.ended
                .iter()
                .enumerate()
                .filter(|(_, (k, f))| *k == key && fits(f))
                .min_by_key(|(_, (_, f))| end_tick(f))
                .map(|(i, _)| i)
        };
        let Some(i) = found else {
            return false;
        };
        self.ended[i].1.capture = Some(tick);
        if at == SEVERAL {
            self.index_unborn();
        } else {
            self.unborn.remove(&key);
        }
        self.sources[s].count += 1;
        self.births.push((s as u32, tick));
        true
    }

    /// Indexes the frames of `ended` without a birth again (after `ended` changed).
    fn index_unborn(&mut self) {
        self.unborn.clear();
        for (i, (key, f)) in self.ended.iter().enumerate() {
            if f.capture.is_none() {
                note_unborn(&mut self.unborn, *key, i);
            }
        }
    }

    /// The intervals between the births of this pass, in order of capture, per source.
    fn take_births(&mut self, clock: &Clock) {
        if self.births.is_empty() {
            return;
        }
        self.births.sort_unstable();
        for &(s, tick) in &self.births {
            let src = &mut self.sources[s as usize];
            match src.last_capture {
                Some(last) if tick >= last => {
                    let v = clock.delta_as_nanos(last, tick);
                    src.jitter.record_but_histogram(v);
                    self.later.push((Later(s, LaterKind::Jitter, 0), v));
                    src.last_capture = Some(tick);
                }
                // Older than a birth of an earlier pass (its lane was read late): no interval.
                Some(_) => {}
                None => src.last_capture = Some(tick),
            }
        }
        self.births.clear();
    }

    /// The span of a stage of frame `id` of `source` ended on `lane`.
    pub(super) fn stage(
        &mut self,
        source: u32,
        id: u64,
        name: u32,
        lane: u32,
        start: u64,
        end: u64,
    ) {
        if self.sources.len() >= MAX_FRAME_SOURCES && !self.source_index.contains_key(&source) {
            self.unrecorded += 1;
            return;
        }
        let rec = StageRec {
            name,
            lane,
            start,
            end,
        };
        let key = (source, id);
        // The usual case, in one look-up: the frame is in flight and was born before the
        // stage began (or its birth is not read yet).
        match self.in_flight.get_mut(&key) {
            Some(f) if f.capture.is_none_or(|c| c <= start) => {
                f.stages.push(rec);
                return;
            }
            _ => {}
        }
        // A stage read after its frame's end (its lane was read later in the pass): the
        // frame waits in `ended` (and the id may have begun a frame again since, whose
        // birth is later than this stage's start). It goes to the frame of that id waiting
        // that ended first at or after the stage's start (an id may come back once its frame
        // ended: a stage that starts after every waiting end is not theirs).
        let mut best: Option<(usize, u64)> = None;
        for (i, (k, f)) in self.ended.iter().enumerate() {
            let t = end_tick(f);
            if *k == key && t >= start && best.is_none_or(|(_, b)| t < b) {
                best = Some((i, t));
            }
        }
        if let Some((i, _)) = best {
            self.ended[i].1.stages.push(rec);
            return;
        }
        if !self.in_flight.contains_key(&key) {
            self.stage_made.push(key);
        }
        self.entry(source, id).stages.push(rec);
    }

    fn end(&mut self, source: u32, id: u64, end: End, clock: &Clock, t0: u64) {
        if self.sources.len() >= MAX_FRAME_SOURCES && !self.source_index.contains_key(&source) {
            self.unrecorded += 1;
            return;
        }
        let key = (source, id);
        // An end of an id that is not in flight but ended already (it waits in `ended`, or
        // was settled lately) is a second end of that frame, or the end of a new frame of
        // the id whose birth is not read yet (its lane comes later in the pass, or the
        // birth was written just after its lane was read). It waits like any end, without a
        // birth: a birth read by the time it settles goes to the frame it belongs to
        // (`birth_of_ended`); an end still without one then is counted as unmatched.
        let pass = self.pass;
        // Out of the table in one look-up (an end without a frame in flight makes one).
        let mut f = match self.in_flight.remove(&key) {
            Some(f) => f,
            None => InFlight {
                capture: None,
                stages: self.spare_stages.pop().unwrap_or_default(),
                end: None,
                ended_pass: 0,
                seen_pass: pass,
            },
        };
        f.end = Some(end);
        f.ended_pass = pass;
        // Out of the table: the id may begin a new frame before this one is settled.
        if f.capture.is_none() {
            note_unborn(&mut self.unborn, key, self.ended.len());
        }
        self.ended.push((key, f));
        if self.ended.len() > self.settle_at {
            // A great many frames in one pass (an aggregator starved of CPU, a recording
            // thread draining its own lane, frames far faster than any line): the oldest half
            // of those whose birth is in are settled now, so that memory stays bounded. Those
            // whose birth is not read yet (a lane read later in the pass) wait.
            self.settle_oldest_born(clock, t0);
        }
    }

    /// Settles the frame `key` now.
    fn settle_one(&mut self, key: (u32, u64), f: InFlight, clock: &Clock, t0: u64) {
        if f.capture.is_none() {
            self.unmatched += 1 + f.stages.len() as u64;
            return;
        }
        self.settle_frame(key.0, key.1, f, clock, t0);
    }

    /// The end of a drain pass. A frame is settled one whole pass after its end came in:
    /// everything that happened before its end (a stage on another thread, whose lane was
    /// read before that stage ended) is in by then. An end whose birth has not come in by
    /// then is unmatched (a frame begun while no session recorded).
    pub(super) fn settle(&mut self, clock: &Clock, t0: u64) {
        self.pass += 1;
        self.settle_at = MAX_ENDED_WAITING;
        self.take_births(clock);
        if !self.stage_made.is_empty() {
            self.let_go_stage_made();
        }
        if self.ended.is_empty() {
            return;
        }
        let ended = std::mem::take(&mut self.ended);
        self.unborn.clear();
        for (key, f) in ended {
            if f.ended_pass + 1 >= self.pass {
                if f.capture.is_none() {
                    note_unborn(&mut self.unborn, key, self.ended.len());
                }
                self.ended.push((key, f));
                continue;
            }
            self.settle_one(key, f, clock, t0);
        }
        if self.ended.len() > MAX_ENDED_WAITING {
            // Ends read before their births in this pass, and the births read since.
            self.settle_oldest_born(clock, t0);
        }
    }

    /// Settles the oldest [`MAX_ENDED_WAITING`]` / 2` of the waiting frames whose birth is in
    /// (those without one wait: memory stays bounded by what one pass reads).
    #[cold]
    #[inline(never)]
    fn settle_oldest_born(&mut self, clock: &Clock, t0: u64) {
        let mut budget = MAX_ENDED_WAITING / 2;
        let ended = std::mem::take(&mut self.ended);
        for (key, f) in ended {
            if budget > 0 && f.capture.is_some() {
                budget -= 1;
                self.settle_one(key, f, clock, t0);
            } else {
                self.ended.push((key, f));
            }
        }
        self.index_unborn();
        // Not again before another half of the bound has ended: the frames left may all be
        // waiting for their births, and each end would go over them again.
        self.settle_at = self.ended.len() + MAX_ENDED_WAITING / 2;
    }

    fn settle_frame(&mut self, source: u32, id: u64, mut f: InFlight, clock: &Clock, t0: u64) {
        let Some(s) = self.source(source) else {
            return;
        };
        let capture = f.capture.expect("settled frames have a capture");
        f.stages.sort_by_key(|r| r.start);
        let mut prev_end = capture;
        let mut settled = self.spare_settled.pop().unwrap_or_default();
        settled.clear();
        settled.extend(f.stages.iter().map(|&rec| {
            let queue = if rec.start > prev_end {
                clock.delta_as_nanos(prev_end, rec.start)
            } else {
                0
            };
            prev_end = prev_end.max(rec.end);
            Settled { rec, queue }
        }));
        if self.spare_stages.len() < SPARE_LISTS {
            let mut stages = std::mem::take(&mut f.stages);
            stages.clear();
            self.spare_stages.push(stages);
        }
        let end = f.end.expect("settled frames have an end");
        let (tick, drop_reason) = match end {
            End::Finish(t) => (t, None),
            End::Drop(t, r) => (t, Some(r)),
        };
        let latency = if tick > capture {
            clock.delta_as_nanos(capture, tick)
        } else {
            0
        };
        let kept = Kept {
            id,
            capture,
            latency: drop_reason.is_none().then_some(latency),
            stages: settled,
        };
        let src = &mut self.sources[s];
        if let Some(reason) = drop_reason {
            let reason = if src.dropped.len() < MAX_DROP_REASONS
                || src.dropped.iter().any(|(r, _)| *r == reason)
            {
                reason
            } else {
                super::OVERFLOW_ID
            };
            match src.dropped.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, n)) => *n += 1,
                None => src.dropped.push((reason, 1)),
            }
            self.capture_frame(source, &kept, tick, Some(reason), false, clock);
            let src = &mut self.sources[s];
            let old = src.remember(kept);
            self.recycle(old);
            return;
        }
        src.finished += 1;
        src.latency.record_but_histogram(latency);
        self.later
            .push((Later(s as u32, LaterKind::Latency, 0), latency));
        for st in &kept.stages {
            let service = clock.delta_as_nanos(st.rec.start, st.rec.end);
            let budget = self.stage_budgets.get(&st.rec.name).copied();
            let src = &mut self.sources[s];
            if let Some(i) = src.stage(st.rec.name) {
                let agg = &mut src.stages[i];
                agg.service.record_but_histogram(service);
                agg.queue.record_but_histogram(st.queue);
                let i = i as u32;
                self.later
                    .push((Later(s as u32, LaterKind::Service, i), service));
                self.later
                    .push((Later(s as u32, LaterKind::Queue, i), st.queue));
                if budget.is_some_and(|b| service > b) {
                    agg.over_budget += 1;
                }
            }
        }
        // The time after the last stage until `finish`.
        let last = kept
            .stages
            .iter()
            .max_by_key(|st| st.rec.end)
            .map(|st| st.rec);
        let tail = last.map(|rec| {
            let t = if tick > rec.end {
                clock.delta_as_nanos(rec.end, tick)
            } else {
                0
            };
            let src = &mut self.sources[s];
            src.tail.record_but_histogram(t);
            self.later.push((Later(s as u32, LaterKind::Tail, 0), t));
            (t, rec.name)
        });
        let budget = self.frame_budgets.get(&source).copied();
        let missed = budget.is_some_and(|b| latency > b);
        let at = if capture > t0 {
            clock.delta_as_nanos(t0, capture)
        } else {
            0
        };
        self.capture_frame(source, &kept, tick, None, missed, clock);
        let src = &mut self.sources[s];
        src.windows.add(at, missed);
        if !missed {
            src.streak = 0;
            let old = src.remember(kept);
            self.recycle(old);
            return;
        }
        src.missed += 1;
        src.streak += 1;
        src.longest_streak = src.longest_streak.max(src.streak);
        let cause = self.blame(s, &kept.stages, tail, clock);
        let src = &mut self.sources[s];
        match src.attribution.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, n)) => *n += 1,
            None => src.attribution.push((cause, 1)),
        }
        let budget = budget.expect("a missed frame has a budget");
        let overrun = latency - budget;
        if self.would_keep(overrun) {
            let src = &mut self.sources[s];
            let previous: Vec<Kept> = src.recent.iter().cloned().collect();
            let old = src.remember(kept.clone());
            self.recycle(old);
            self.keep_incident(IncidentRec {
                source,
                frame: kept,
                budget,
                overrun,
                cause,
                previous,
            });
        } else {
            let old = self.sources[s].remember(kept);
            self.recycle(old);
        }
    }

    /// Keeps a settled frame in the trace capture, if one runs and the frame lies in it.
    fn capture_frame(
        &mut self,
        source: u32,
        kept: &Kept,
        end: u64,
        reason: Option<u32>,
        missed: bool,
        clock: &Clock,
    ) {
        let Some(c) = self.capture.as_mut() else {
            return;
        };
        if c.holds(kept.capture, end, clock) && c.room() {
            c.frames += 1;
            self.captured.push(CapturedRec {
                source,
                frame: kept.clone(),
                end,
                reason,
                missed,
            });
        }
    }

    /// Starts a trace capture (replacing any earlier one).
    pub(crate) fn start_capture(&mut self, capture: Capture) {
        self.capture = Some(capture);
        self.captured.clear();
    }

    /// The frames of the trace capture, for a report.
    pub(crate) fn captured_frames(
        &self,
        threads: &FxHashMap<u32, LaneThread>,
        clock: &Clock,
        t0: u64,
    ) -> Vec<crate::report::CapturedFrame> {
        let offset = |tick: u64| {
            if tick > t0 {
                clock.delta_as_nanos(t0, tick)
            } else {
                0
            }
        };
        // Stages on threads that exited and were folded during the capture keep their
        // thread's name, as the capture's spans do.
        let with_gone;
        let threads = match self.capture.as_ref().map(|c| &c.gone) {
            Some(gone) if !gone.is_empty() => {
                let mut all = threads.clone();
                for (lane, t) in gone {
                    all.entry(*lane).or_insert_with(|| t.clone());
                }
                with_gone = all;
                &with_gone
            }
            _ => threads,
        };
        self.captured
            .iter()
            .map(|r| crate::report::CapturedFrame {
                source: name_of(r.source).to_string(),
                frame_id: r.frame.id,
                capture_ns: offset(r.frame.capture),
                end_ns: offset(r.end),
                dropped: r.reason.map(|n| name_of(n).to_string()),
                missed: r.missed,
                stages: r
                    .frame
                    .stages
                    .iter()
                    .map(|st| stage_view(threads, clock, r.frame.capture, st))
                    .collect(),
            })
            .collect()
    }

    /// Hands out what a streamed capture gathered since the last batch (and empties it):
    /// `None` when no capture streams. `dropped` is the capture's count of spans and frames
    /// refused so far.
    pub(crate) fn take_batch(
        &mut self,
        threads: &FxHashMap<u32, LaneThread>,
        clock: &Clock,
        t0: u64,
    ) -> Option<StreamBatch> {
        self.capture.as_ref()?.streamed.as_ref()?;
        let frames = self.captured_frames(threads, clock, t0);
        self.captured.clear();
        let c = self.capture.as_mut()?;
        let s = c.streamed.as_mut()?;
        let first_path = s.paths_sent;
        let new_paths: Vec<crate::report::CapturedPath> = c
            .paths
            .drain(..)
            .map(|p| {
                let thread = threads.get(&p.lane).or_else(|| c.gone.get(&p.lane));
                crate::report::CapturedPath {
                    thread_id: thread.map_or(EXITED_THREADS_ID, |t| t.thread_id),
                    thread: thread.map_or_else(
                        || EXITED_THREADS_NAME.to_string(),
                        |t| t.thread_name.clone(),
                    ),
                    path: p.names.iter().map(|&n| name_of(n).to_string()).collect(),
                }
            })
            .collect();
        // Handed out: the slots map still numbers them, the writer keeps them.
        s.paths_sent = first_path + new_paths.len();
        let spans = std::mem::take(&mut c.spans);
        s.taken = s.taken.saturating_add((spans.len() + frames.len()) as u64);
        c.frames = 0;
        Some(StreamBatch {
            new_paths,
            first_path,
            spans,
            frames,
            start: c.start,
            window_ns: c.window_ns,
            dropped: c.dropped,
        })
    }

    /// Keeps an emptied stage list for the next settled frame.
    fn recycle(&mut self, list: Option<Vec<Settled>>) {
        if let Some(list) = list {
            if self.spare_settled.len() < SPARE_LISTS {
                self.spare_settled.push(list);
            }
        }
    }

    /// Whether a missed frame with this overrun is among the worst kept.
    fn would_keep(&self, overrun: u64) -> bool {
        self.max_incidents > 0
            && (self.incidents.len() < self.max_incidents
                || self.incidents.iter().any(|r| r.overrun < overrun))
    }

    /// The rule of [`Attribution`](crate::report::Attribution): the largest overrun among
    /// the stages (over their budget, or their median) and the waits before them (over their
    /// median).
    fn blame(
        &mut self,
        s: usize,
        settled: &[Settled],
        tail: Option<(u64, u32)>,
        clock: &Clock,
    ) -> Cause {
        // The medians read the histograms: every count in first.
        self.record_histograms();
        let src = &mut self.sources[s];
        let mut best: Option<(i128, Cause)> = tail.map(|(t, last)| {
            let usual = src.tail_median.of(&src.tail);
            (t as i128 - usual as i128, Cause::After(last))
        });
        for st in settled {
            let name = st.rec.name;
            let mut agg = src.stages.iter_mut().find(|a| a.name == name);
            let service = clock.delta_as_nanos(st.rec.start, st.rec.end) as i128;
            let usual = self
                .stage_budgets
                .get(&name)
                .copied()
                .or_else(|| agg.as_mut().map(|a| a.service_median.of(&a.service)))
                .unwrap_or(0) as i128;
            let queue_usual = agg.map_or(0, |a| a.queue_median.of(&a.queue)) as i128;
            for (over, cause) in [
                (service - usual, Cause::Stage(name)),
                (st.queue as i128 - queue_usual, Cause::Queue(name)),
            ] {
                if best.is_none_or(|(b, _)| over > b) {
                    best = Some((over, cause));
                }
            }
        }
        best.map_or(Cause::Unstaged, |(_, c)| c)
    }

    fn keep_incident(&mut self, rec: IncidentRec) {
        if self.max_incidents == 0 {
            return;
        }
        if self.incidents.len() < self.max_incidents {
            self.incidents.push(rec);
            return;
        }
        let (i, least) = self
            .incidents
            .iter()
            .enumerate()
            .min_by_key(|(_, r)| r.overrun)
            .map(|(i, r)| (i, r.overrun))
            .expect("full, so not empty");
        if rec.overrun > least {
            self.incidents[i] = rec;
        }
    }

    fn trim_incidents(&mut self) {
        if self.incidents.len() > self.max_incidents {
            self.incidents.sort_by_key(|r| std::cmp::Reverse(r.overrun));
            self.incidents.truncate(self.max_incidents);
        }
    }

    /// The frames part of a report. `threads` names the lanes; stage names, sources and
    /// reasons are resolved through the process-wide name table.
    pub(crate) fn report(
        &self,
        threads: &FxHashMap<u32, LaneThread>,
        clock: &Clock,
        t0: u64,
        first_bucket: u64,
    ) -> Vec<FrameReport> {
        debug_assert!(self.later.is_empty(), "counts put off at a report");
        let dist = |d: &DurationStats| Distribution {
            summary: d.summary(),
            histogram: d.buckets(first_bucket),
        };
        let offset = |tick: u64| {
            if tick > t0 {
                clock.delta_as_nanos(t0, tick)
            } else {
                0
            }
        };
        let stage_of = |capture: u64, st: &Settled| stage_view(threads, clock, capture, st);
        let kept_frame = |k: &Kept| IncidentFrame {
            frame_id: k.id,
            capture_ns: offset(k.capture),
            latency_ns: k.latency,
            stages: k.stages.iter().map(|st| stage_of(k.capture, st)).collect(),
        };
        let mut in_flight: FxHashMap<u32, u64> = FxHashMap::default();
        // Begun and not settled yet: still going, or ended in the last drain pass.
        let waiting = self.ended.iter().map(|(k, f)| (k, f));
        for ((source, _), f) in self.in_flight.iter().chain(waiting) {
            if f.capture.is_some() {
                *in_flight.entry(*source).or_default() += 1;
            }
        }
        let mut out: Vec<FrameReport> = self
            .sources
            .iter()
            .map(|src| {
                let mut attribution: Vec<Attribution> = src
                    .attribution
                    .iter()
                    .map(|(c, n)| Attribution {
                        cause: c.text(),
                        missed: *n,
                    })
                    .collect();
                attribution.sort_by(|a, b| b.missed.cmp(&a.missed).then(a.cause.cmp(&b.cause)));
                let mut incidents: Vec<(u64, Incident)> = self
                    .incidents
                    .iter()
                    .filter(|r| r.source == src.name)
                    .map(|r| {
                        (
                            r.overrun,
                            Incident {
                                frame_id: r.frame.id,
                                capture_ns: offset(r.frame.capture),
                                latency_ns: r.frame.latency.unwrap_or(0),
                                budget_ns: r.budget,
                                overrun_ns: r.overrun,
                                cause: r.cause.text(),
                                stages: r
                                    .frame
                                    .stages
                                    .iter()
                                    .map(|st| stage_of(r.frame.capture, st))
                                    .collect(),
                                previous: r.previous.iter().map(kept_frame).collect(),
                                system: Vec::new(),
                            },
                        )
                    })
                    .collect();
                incidents.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.frame_id.cmp(&b.1.frame_id)));
                FrameReport {
                    source: name_of(src.name).to_string(),
                    count: src.count,
                    finished: src.finished,
                    dropped: src
                        .dropped
                        .iter()
                        .map(|(r, n)| (name_of(*r).to_string(), *n))
                        .collect::<BTreeMap<_, _>>(),
                    in_flight: in_flight.get(&src.name).copied().unwrap_or(0),
                    budget_ns: self.frame_budgets.get(&src.name).copied(),
                    missed: src.missed,
                    miss_rate: if src.finished == 0 {
                        0.0
                    } else {
                        src.missed as f64 / src.finished as f64
                    },
                    longest_miss_streak: src.longest_streak,
                    latency: dist(&src.latency),
                    jitter: dist(&src.jitter),
                    stages: src
                        .stages
                        .iter()
                        .map(|st| StageReport {
                            name: name_of(st.name).to_string(),
                            budget_ns: self.stage_budgets.get(&st.name).copied(),
                            service: dist(&st.service),
                            queue: dist(&st.queue),
                            over_budget: st.over_budget,
                        })
                        .collect(),
                    attribution,
                    incidents: incidents.into_iter().map(|(_, i)| i).collect(),
                    windows: src
                        .windows
                        .counts
                        .iter()
                        .enumerate()
                        .map(|(i, &(finished, missed))| FrameWindow {
                            t_ns: i as u64 * src.windows.width_ns,
                            duration_ns: src.windows.width_ns,
                            finished,
                            missed,
                        })
                        .collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.source.cmp(&b.source));
        out
    }
}

/// A stage of a frame captured at `capture` (raw tick), as reports show it.
fn stage_view(
    threads: &FxHashMap<u32, LaneThread>,
    clock: &Clock,
    capture: u64,
    st: &Settled,
) -> IncidentStage {
    let thread = threads.get(&st.rec.lane);
    IncidentStage {
        name: name_of(st.rec.name).to_string(),
        thread_id: thread.map_or(EXITED_THREADS_ID, |t| t.thread_id),
        thread: thread.map_or(EXITED_THREADS_NAME.to_string(), |t| t.thread_name.clone()),
        start_ns: if st.rec.start > capture {
            clock.delta_as_nanos(capture, st.rec.start)
        } else {
            0
        },
        duration_ns: clock.delta_as_nanos(st.rec.start, st.rec.end),
        queue_ns: st.queue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_median_is_exact_up_to_the_refresh_then_at_most_that_many_runs_stale() {
        let mut stats = DurationStats::new();
        let mut median = Median::default();
        assert_eq!(median.of(&stats), 0);
        // Exact while few runs: asked after each of the first MEDIAN_REFRESH runs.
        for v in 1..=MEDIAN_REFRESH {
            stats.record(v * 1_000);
            assert_eq!(median.of(&stats), stats.quantile(0.5), "after {v} runs");
        }
        // Past that, it moves only once MEDIAN_REFRESH more runs came.
        let held = median.of(&stats);
        for _ in 0..MEDIAN_REFRESH - 1 {
            stats.record(1_000_000);
        }
        assert_eq!(median.of(&stats), held, "not refreshed before its time");
        stats.record(1_000_000);
        assert_eq!(median.of(&stats), stats.quantile(0.5));
        assert!(median.of(&stats) > held);
    }
}
