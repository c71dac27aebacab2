//! Frames on the recording side: [`FrameSource`], the [`Frame`] token that travels with an
//! image through the threads of a pipeline, and its stages. Each call is a clock read and a
//! few stores into the calling thread's lane, like `scope!`: no lock, no allocation.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use rustc_hash::FxHashMap;

use super::active::CURRENT;
use super::frame_agg::{KIND_SHIFT, K_BEGIN, K_DROP, K_FINISH};
use super::names::{intern, lookup, name_of};
use super::producer::{enter_stage, frame_record};
use super::{ScopeGuard, FRAME, MAX_DROP_REASON_NAMES, OVERFLOW_ID};

/// A source of frames — a camera, a stream — named once. Frames it begins count up from 0
/// (`begin`), or carry the source's own counter (`begin_with_id`).
///
/// Make it once (for names known only at run time, e.g. cameras from a configuration) and
/// keep it: `FrameSource::new` takes a lock; `begin` does not. For a name written in the
/// code, [`frame!`](crate::frame) does this for you. Two sources made with the same name
/// are the same source and share their counter.
///
/// ```
/// use heimdall_perf_core::{FrameSource, ProfilingSession};
///
/// let session = ProfilingSession::new("line-3");
/// let cam = FrameSource::new(&format!("cam-{}", 1));
/// let f = cam.begin();
/// {
///     let _s = f.stage("detect");
/// }
/// f.finish();
/// let g = cam.begin_with_id(18_442); // the camera's own frame counter
/// g.drop_frame("queue full");
///
/// let report = session.report();
/// let frames = report.frame_source("cam-1").unwrap();
/// assert_eq!((frames.count, frames.finished, frames.dropped["queue full"]), (2, 1, 1));
/// ```
#[derive(Clone, Copy)]
pub struct FrameSource {
    name: u32,
    next: &'static AtomicU64,
}

impl std::fmt::Debug for FrameSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSource")
            .field("name", &self.name())
            .finish()
    }
}

/// A source's frame counter, alone on its two cache lines: the counters of two sources
/// (two cameras, each on its own thread) would otherwise be 8-byte allocations side by
/// side, and every `begin` of one would take the line from the other.
#[repr(align(128))]
struct PaddedCounter(AtomicU64);

/// The frame counter of each source name, shared by every `FrameSource` of that name.
/// Bounded by the process's limit of names.
fn counter(name: u32) -> &'static AtomicU64 {
    static COUNTERS: OnceLock<Mutex<FxHashMap<u32, &'static AtomicU64>>> = OnceLock::new();
    let mut map = COUNTERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(name)
        .or_insert_with(|| &Box::leak(Box::new(PaddedCounter(AtomicU64::new(0)))).0)
}

impl FrameSource {
    /// The source named `name` (a camera, a stream).
    pub fn new(name: &str) -> FrameSource {
        let name = intern(name);
        FrameSource {
            name,
            next: counter(name),
        }
    }

    /// The source's name.
    pub fn name(&self) -> std::sync::Arc<str> {
        name_of(self.name)
    }

    /// A frame is born now (its capture time): the next id of this source's counter. The
    /// frame is recorded into the current session; with none, the token records nothing.
    #[inline]
    pub fn begin(&self) -> Frame {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.begin_with_id(id)
    }

    /// A frame is born now, with the id the source gives it (a camera's own frame counter, or
    /// the slot of a ring of buffers). An id may come back once its frame has ended; a
    /// second frame begun with the id of one still in flight is not counted
    /// (`unmatched_frame_events`).
    #[inline]
    pub fn begin_with_id(&self, id: u64) -> Frame {
        self.begin_in(CURRENT.load(Ordering::Relaxed), id)
    }

    /// A frame born now into session `session` (0: none).
    #[inline]
    pub(crate) fn begin_in(&self, session: u64, id: u64) -> Frame {
        if session != 0 {
            frame_record(session, FRAME | (K_BEGIN << KIND_SHIFT) | self.name, id, 0);
        }
        Frame {
            session,
            source: self.name,
            id,
        }
    }
}

/// The source of a [`frame!`](crate::frame) call site, made on first use.
#[doc(hidden)]
pub struct FrameSite {
    name: &'static str,
    source: OnceLock<FrameSource>,
}

impl FrameSite {
    /// A call site for the source `name`.
    pub const fn new(name: &'static str) -> Self {
        FrameSite {
            name,
            source: OnceLock::new(),
        }
    }

    /// Begins a frame of the site's source.
    #[inline]
    pub fn begin(&'static self) -> Frame {
        self.source
            .get_or_init(|| FrameSource::new(self.name))
            .begin()
    }
}

/// A frame in flight: a small `Copy + Send` token that travels with the image from thread
/// to thread. Its stages are timed where they run; it ends with [`finish`](Frame::finish)
/// or [`drop_frame`](Frame::drop_frame).
///
/// A token whose session has stopped (or that was begun with no session recording) records
/// nothing: its calls are no-ops. Ending a frame twice, or a stage after its end, is not
/// counted in the frame: it is counted in the report's `unmatched_frame_events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    session: u64,
    source: u32,
    id: u64,
}

impl Frame {
    /// The frame's id: counted up per source by `frame!`/`begin`, or as given to
    /// `begin_with_id`.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The name of the frame's source.
    pub fn source(&self) -> std::sync::Arc<str> {
        name_of(self.source)
    }

    /// Whether the frame is being recorded (a session was recording when it was begun).
    pub fn is_recording(&self) -> bool {
        self.session != 0
    }

    /// Times the stage `name` of this frame until the guard is dropped, on the calling
    /// thread. The stage is also an ordinary span, nested in this thread's span tree as
    /// `scope!` nests (so frames and spans agree).
    ///
    /// The name is a string literal (a `&'static str`): each thread remembers the names it
    /// used lately by address, so a stage costs what a `scope!` span costs plus one store.
    #[inline]
    pub fn stage(&self, name: &'static str) -> ScopeGuard {
        if self.session == 0 {
            return ScopeGuard::disarmed();
        }
        enter_stage(self.session, self.source, self.id, name)
    }

    /// The frame is done: its latency is capture → now.
    #[inline]
    pub fn finish(self) {
        if self.session != 0 {
            frame_record(
                self.session,
                FRAME | (K_FINISH << KIND_SHIFT) | self.source,
                self.id,
                0,
            );
        }
    }

    /// The frame is dropped (not processed to the end) for `reason`, e.g. `queue full`.
    /// Dropped frames are counted by reason, not as missed. Reasons are meant to be a few
    /// fixed words: a process keeps [`MAX_DROP_REASON_NAMES`](crate::limits::MAX_DROP_REASON_NAMES)
    /// distinct ones (past them, a new reason is counted as `<overflow>`), so that reasons
    /// made at run time (`format!("timeout after {t} us")`) cannot use up the names spans
    /// and stages need.
    pub fn drop_frame(self, reason: &str) {
        if self.session != 0 {
            static REASONS: AtomicUsize = AtomicUsize::new(0);
            let reason = match lookup(reason) {
                Some(id) => id,
                None if REASONS.fetch_add(1, Ordering::Relaxed) < MAX_DROP_REASON_NAMES => {
                    intern(reason)
                }
                None => OVERFLOW_ID,
            };
            frame_record(
                self.session,
                FRAME | (K_DROP << KIND_SHIFT) | self.source,
                self.id,
                reason,
            );
        }
    }
}
