//! The thread-local producer side: each thread's writers into the lanes of the sessions it
//! records into, the `scope!` guard, the end of a span, and the named timings of
//! `start_timing` / `stop_timing`.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use quanta::Clock;

use super::active::{find_active, CURRENT};
use super::frame_agg::{KIND_SHIFT, K_ID, K_REASON, K_STAGE};
use super::lane::Event;
use super::names::{name_of, Callsite};
use super::session_core::{DueTick, LaneThread, SessionCore, SessionLane, SessionLaneWriter};
use super::{EXIT, FRAME, LEAKED, OVERFLOW_ID};

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

/// A thread's recording into one session: the writer of its lane, and its spans' depth and
/// open named timings.
///
/// Written at every span; aligned to two cache lines (the unit the prefetcher pairs) so
/// that the producers of two threads, allocated side by side, never share a line.
#[repr(align(128))]
struct Producer {
    session: u64,
    core: Weak<SessionCore>,
    /// The only writer of the thread's lane in the session; it never leaves this thread (it
    /// is not `Send`), so only this thread pushes into the lane.
    writer: SessionLaneWriter,
    clock: Clock,
    /// When the session's aggregator asks to be woken (checked by frame records).
    due: Arc<DueTick>,
    depth: u32,
    timings: Vec<NamedTiming>,
}

impl Drop for Producer {
    /// The thread exits (or its session is gone): the session's aggregator hears of it, so
    /// that exited threads' lanes (a chunk each) are retired soon however slowly events come.
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade() {
            core.lane_left();
        }
    }
}

impl Producer {
    #[inline(always)]
    fn push(&mut self, id: u32, ts: u64) {
        let core = &self.core;
        self.writer
            .push(Event { id, ts }, |lane, chunks| behind(core, lane, chunks));
    }

    /// Wakes the session's aggregator if its pass is due by `ts` (a frame record's stamp):
    /// the line, running anyway, spares it a timer's wake-up ([`DueTick`]).
    #[inline]
    fn wake_if_due(&self, ts: u64) {
        if self.due.is_past(ts) {
            self.wake_due(ts);
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_due(&self, ts: u64) {
        if self.due.take(ts) {
            if let Some(core) = self.core.upgrade() {
                core.wake_aggregator();
            }
        }
    }

    /// Ends the span of a guard at `depth` when the thread's depth is not that: deeper, the
    /// spans above it were leaked and end with it; shallower, an enclosing guard ended first
    /// and closed it already (it was only dropped out of order).
    #[cold]
    #[inline(never)]
    fn exit_off_depth(&mut self, name: u32, depth: u32, ts: u64) {
        if self.depth < depth || self.timing_at(depth) {
            // Its span was ended already: by an enclosing guard, or by `stop_timing` of the
            // timing it was opened in (the depth it had is a timing's now). Counted as
            // misnested; nothing open is touched.
            self.push(LEAKED, ts);
            return;
        }
        self.close_above(depth, ts);
        self.depth -= 1;
        self.push(name | EXIT, ts);
    }

    /// Whether the span open at `depth` is a named timing (then no guard's span is open
    /// there).
    fn timing_at(&self, depth: u32) -> bool {
        self.timings
            .iter()
            .rev()
            .find(|t| t.depth <= depth)
            .is_some_and(|t| t.depth == depth)
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

/// The lane runs `chunks` chunks ahead of the aggregator (called from the writer's
/// out-of-line chunk change, from [`BACKLOG_WAKE`](super::BACKLOG_WAKE) chunks).
fn behind(core: &Weak<SessionCore>, lane: &SessionLane, chunks: usize) {
    if let Some(core) = core.upgrade() {
        core.behind(lane, chunks);
    }
}

struct Local {
    thread_id: u64,
    cur_session: u64,
    cur: usize,
    producers: Vec<Producer>,
    /// Name ids of the stage names (`&'static str`) this thread used lately, by address:
    /// `(address, length, id)`, two ways of a table indexed by a hash of the address.
    stage_names: [(usize, usize, u32); STAGE_NAME_SLOTS],
}

/// Slots of [`Local::stage_names`] (a power of two, at most 64).
const STAGE_NAME_SLOTS: usize = 64;

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            thread_id: 0,
            cur_session: 0,
            cur: 0,
            producers: Vec::new(),
            stage_names: [(0, 0, 0); STAGE_NAME_SLOTS],
        })
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
        // Forget lanes of sessions that are gone, so long-lived threads do not accumulate
        // them, nor the chunks their writers hold (up to 9, 576 KiB): at every switch, not
        // only when a lane is made (a thread going back to a session it knows kept an ended
        // session's lane for good).
        if self.producers.iter().any(|p| p.writer.lane().is_closed()) {
            self.producers.retain(|p| !p.writer.lane().is_closed());
            self.cur_session = 0;
        }
        if let Some(i) = self.producers.iter().position(|p| p.session == core.id) {
            return i;
        }
        let thread = self.thread();
        let writer = core.new_lane(thread);
        self.producers.push(Producer {
            session: core.id,
            core: Arc::downgrade(core),
            writer,
            clock: core.clock.clone(),
            due: Arc::clone(&core.due),
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

    /// Makes session `sid` the one this thread writes into, for a frame token: at once when
    /// it is the current session and this thread's, through the list of active sessions
    /// otherwise (a token of another active session), and `false` when `sid` no longer
    /// records — a token that outlived its session writes nothing (no lane of a stopped
    /// session fills up).
    #[inline]
    fn records_into(&mut self, sid: u64) -> bool {
        (self.cur_session == sid && CURRENT.load(Ordering::Relaxed) == sid)
            || self.make_current(sid)
    }

    #[inline]
    fn find(&self, sid: u64) -> Option<usize> {
        if self.cur_session == sid {
            Some(self.cur)
        } else {
            self.find_other(sid)
        }
    }

    /// Index of this thread's producer for `core`, made the one [`find`](Self::find) finds
    /// first (the named timings of a session that is not `scope!`'s target then need no
    /// search either).
    #[inline]
    fn producer_of(&mut self, core: &Arc<SessionCore>) -> usize {
        if self.cur_session == core.id {
            return self.cur;
        }
        self.switch_to(core)
    }

    #[cold]
    #[inline(never)]
    fn switch_to(&mut self, core: &Arc<SessionCore>) -> usize {
        let i = self.producer_for(core);
        self.cur_session = core.id;
        self.cur = i;
        i
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

    /// A guard that records nothing.
    pub(super) fn disarmed() -> ScopeGuard {
        ScopeGuard::DISARMED
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
        // A guard outliving the timing it was opened in may find its depth again, held by a
        // timing: one load of the timings' length when the thread has none.
        if p.depth != depth || p.timings.last().is_some_and(|t| t.depth == depth) {
            p.exit_off_depth(name, depth, ts);
            return;
        }
        p.depth -= 1;
        p.push(name | EXIT, ts);
    });
}

/// Why `stop_named` refused.
/// Pushes a frame record into the calling thread's lane of session `sid`: `head` stamped
/// now, then the frame id, then `reason` (a name id) when it is not 0. Nothing when `sid` is
/// no longer recording.
#[inline]
pub(super) fn frame_record(sid: u64, head: u32, id: u64, reason: u32) {
    let _ = LOCAL.try_with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            return;
        };
        if !l.records_into(sid) {
            return;
        }
        let cur = l.cur;
        let p = &mut l.producers[cur];
        let ts = p.clock.raw();
        p.push(head, ts);
        p.push(FRAME | (K_ID << KIND_SHIFT), id);
        if reason != 0 {
            p.push(FRAME | (K_REASON << KIND_SHIFT) | reason, 0);
        }
        p.wake_if_due(ts);
    });
}

/// Opens the span of stage `name` of frame `frame` of `source`, in session `sid`, on the
/// calling thread: a stage tag, then the span's entry, as `scope!` writes it.
#[inline]
pub(super) fn enter_stage(sid: u64, source: u32, frame: u64, name: &'static str) -> ScopeGuard {
    LOCAL
        .try_with(|l| {
            let Ok(mut l) = l.try_borrow_mut() else {
                return ScopeGuard::DISARMED;
            };
            let key = (name.as_ptr() as usize, name.len());
            // Two ways of a table indexed by a hash of the address: a handful of stage
            // literals never take the name lock after their first use.
            let slot = ((key.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
                % STAGE_NAME_SLOTS;
            let found = [slot, slot ^ 1]
                .into_iter()
                .find_map(|i| match l.stage_names[i] {
                    (a, n, id) if (a, n) == key && id != 0 => Some(id),
                    _ => None,
                });
            let id = match found {
                Some(id) => id,
                None => {
                    let id = super::names::intern(name);
                    let at = if l.stage_names[slot].2 == 0 {
                        slot
                    } else {
                        slot ^ 1
                    };
                    l.stage_names[at] = (key.0, key.1, id);
                    id
                }
            };
            if !l.records_into(sid) {
                return ScopeGuard::DISARMED;
            }
            let cur = l.cur;
            let p = &mut l.producers[cur];
            p.push(FRAME | (K_STAGE << KIND_SHIFT) | source, frame);
            let ts = p.clock.raw();
            p.depth += 1;
            p.push(id, ts);
            ScopeGuard {
                session: sid,
                name: id,
                depth: p.depth,
                _not_send: PhantomData,
            }
        })
        .unwrap_or(ScopeGuard::DISARMED)
}

pub(crate) enum StopError {
    /// No timing of that name is open on this thread.
    NotStarted { thread: String },
    /// Something opened later is still open (its name).
    OutOfOrder { open: String },
}

/// Opens the timing `name` (interned as `id`) on the calling thread in `core`.
#[inline]
pub(crate) fn start_named(core: &Arc<SessionCore>, id: u32, name: &str) {
    let _ = LOCAL.try_with(|l| {
        let Ok(mut l) = l.try_borrow_mut() else {
            return;
        };
        let i = l.producer_of(core);
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

/// `ns` nanoseconds as a `Duration`, without the division by 10⁹ of `from_nanos` for the
/// common case of a timing under a second.
#[inline(always)]
fn duration_of(ns: u64) -> Duration {
    if ns < 1_000_000_000 {
        Duration::new(0, ns as u32)
    } else {
        Duration::from_nanos(ns)
    }
}

/// Closes the innermost timing of the calling thread in `core` if it is `id` (a name
/// below the name limit) and returns its duration; `None`, with nothing changed, in every
/// other case, which [`stop_named`] then handles (and reports). The fast path of
/// `stop_timing`.
#[inline]
pub(crate) fn stop_innermost(core: &Arc<SessionCore>, id: u32) -> Option<Duration> {
    LOCAL
        .try_with(|l| {
            let mut l = l.try_borrow_mut().ok()?;
            if l.cur_session != core.id {
                return None;
            }
            let cur = l.cur;
            let p = &mut l.producers[cur];
            let ts = p.clock.raw();
            let top = p.timings.last()?;
            if top.name != id || id == OVERFLOW_ID || p.depth != top.depth {
                return None;
            }
            let start = top.start;
            p.timings.pop();
            p.depth -= 1;
            p.push(id | EXIT, ts);
            Some(duration_of(p.clock.delta_as_nanos(start, ts)))
        })
        .ok()
        .flatten()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::intern;

    /// Runs `f` on a thread of its own (a fresh thread-local producer side), with a session
    /// that is not made current (so that no other test's `scope!` records into it).
    fn on_new_thread(f: impl FnOnce(&Arc<SessionCore>) + Send + 'static) -> Arc<SessionCore> {
        let core = SessionCore::new("producer-test");
        let c = Arc::clone(&core);
        std::thread::spawn(move || f(&c)).join().unwrap();
        core
    }

    fn names(core: &SessionCore) -> Vec<(Vec<String>, u64)> {
        let agg = core.drain();
        let mut rows: Vec<_> = agg
            .paths()
            .iter()
            .map(|p| {
                let names = p.names.iter().map(|&n| name_of(n).to_string()).collect();
                (names, p.stats.count())
            })
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn named_timings_stop_in_order() {
        let core = on_new_thread(|core| {
            let (a, b) = (intern("producer-test a"), intern("producer-test b"));
            start_named(core, a, "producer-test a");
            start_named(core, b, "producer-test b");
            match stop_named(core, a, "producer-test a") {
                Err(StopError::OutOfOrder { open }) => assert_eq!(open, "producer-test b"),
                _ => panic!("stopping a before b is out of order"),
            }
            assert!(stop_named(core, b, "producer-test b").is_ok());
            assert!(stop_named(core, a, "producer-test a").is_ok());
            assert!(matches!(
                stop_named(core, a, "producer-test a"),
                Err(StopError::NotStarted { .. })
            ));
        });
        let a = || "producer-test a".to_string();
        assert_eq!(
            names(&core),
            [
                (vec![a()], 1),
                (vec![a(), "producer-test b".to_string()], 1)
            ]
        );
    }

    #[test]
    fn names_past_the_limit_are_told_apart_by_their_text() {
        let core = on_new_thread(|core| {
            start_named(core, OVERFLOW_ID, "producer-test x");
            assert!(matches!(
                stop_named(core, OVERFLOW_ID, "producer-test y"),
                Err(StopError::NotStarted { .. })
            ));
            start_named(core, OVERFLOW_ID, "producer-test y");
            match stop_named(core, OVERFLOW_ID, "producer-test x") {
                Err(StopError::OutOfOrder { open }) => assert_eq!(open, "producer-test y"),
                _ => panic!("stopping x before y is out of order"),
            }
            assert!(stop_named(core, OVERFLOW_ID, "producer-test y").is_ok());
            assert!(stop_named(core, OVERFLOW_ID, "producer-test x").is_ok());
        });
        assert_eq!(names(&core).iter().map(|r| r.1).sum::<u64>(), 2);
    }

    #[test]
    fn a_timing_stopped_closes_the_spans_left_open_inside_it() {
        let core = on_new_thread(|core| {
            let (a, b) = (intern("producer-test a"), intern("producer-test b"));
            start_named(core, a, "producer-test a");
            // What a `scope!` guard leaked inside the timing leaves behind.
            LOCAL.with_borrow_mut(|l| {
                let i = l.find(core.id).unwrap();
                let p = &mut l.producers[i];
                p.depth += 1;
                let ts = p.clock.raw();
                p.push(b, ts);
            });
            assert!(stop_named(core, a, "producer-test a").is_ok());
        });
        assert_eq!(core.drain().counts.leaked_spans, 1);
        assert_eq!(names(&core).len(), 2);
    }

    #[test]
    fn a_thread_that_exits_gives_its_lane_up() {
        let core = on_new_thread(|core| {
            let a = intern("producer-test a");
            start_named(core, a, "producer-test a");
        });
        let agg = core.drain();
        assert_eq!(agg.counts.exited_threads, 1);
        assert_eq!(agg.counts.abandoned_spans, 1);
    }

    #[test]
    fn duration_of_equals_from_nanos() {
        for ns in [
            0,
            1,
            999,
            999_999_999,
            1_000_000_000,
            1_000_000_001,
            u64::MAX,
        ] {
            assert_eq!(duration_of(ns), Duration::from_nanos(ns), "{ns}");
        }
    }
}
