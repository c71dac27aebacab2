//! Chunks and lanes: the single-producer, single-consumer queue of the events of one thread
//! in one session. All of the recorder's `unsafe` code is in this file.
//!
//! A lane is a singly linked list of fixed-size chunks of [`Event`]s. Its two ends are two
//! types, and the safe API of the two is all the rest of the recorder uses:
//!
//! * [`LaneWriter`] is the producer end. [`Lane::new`] makes exactly one with each lane; it
//!   is neither `Clone` nor `Send` nor `Sync` (it holds the raw pointer to the chunk being
//!   written), and [`push`](LaneWriter::push) takes `&mut self`. So only the thread that made
//!   the writer ever pushes into a lane, and never two calls at once: the single-producer
//!   invariant is upheld by the types, and `push` is safe. (The recorder makes each writer on
//!   the recording thread itself and keeps it in that thread's thread-local `Producer`.)
//! * [`Lane`] is the shared part (`Arc<Lane>`, `Send + Sync`), and the consumer side:
//!   [`drain`](Lane::drain) reads what was published, hands fully read chunks back to the
//!   writer, and frees every chunk once the writer is gone and everything was read (the lane
//!   is retired). Consumers (the aggregator, snapshots, the recording thread draining its own
//!   backlog) take turns on the lane's consumer mutex, which also guards `S`, the state the
//!   consumer keeps per lane (the aggregator's stack of open spans).
//!
//! The writer publishes each event with a Release store of its chunk's length, and the
//! consumer reads only below the length it loaded with Acquire. The writer links the next
//! chunk (Release) before it writes there, and never touches a chunk again once it has linked
//! its successor; the consumer lets go of a chunk only after it has seen that link (Acquire)
//! and read the chunk to its end. The chunks a drain lets go of are reset, linked into a
//! list (up to [`SPARE_MAX`]) and left in the lane's spare slot (Release), replacing a list
//! the writer did not take; the writer takes the whole list (Acquire) when it needs a chunk
//! and it has none of its own left, and allocates only when both are empty. A lane whose
//! consumer keeps up runs on two chunks; a busy one on what it writes between two drains,
//! without going back to the allocator for each chunk. (At tens of millions of events a
//! second, a chunk freed and allocated again each time was the allocator trimming its heap
//! and the recording thread faulting the pages back in.) A drain that finds the lane idle
//! (nothing to read, as in the drain before) trims the list waiting in the slot to one
//! chunk, so a lane idle after a burst keeps at most
//! the chunk being written, one spare, and the `SPARE_MAX - 1` its writer took and did not
//! use (freed when the writer goes).

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr::{self, addr_of_mut};
#[cfg(test)]
use std::sync::atomic::AtomicIsize;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{BACKLOG_WAKE, CHUNK_EVENTS};

/// The most chunks a drain hands back to the writer; the others it frees. A lane backed up
/// this far wakes the aggregator ([`BACKLOG_WAKE`]), so a lane that keeps its consumer busy
/// finds a chunk for each it writes until the next drain.
const SPARE_MAX: usize = BACKLOG_WAKE;

/// One event of a lane (16 bytes): a name id, with `EXIT` set for the end of a span, and the
/// clock's raw ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Event {
    pub(super) id: u32,
    pub(super) ts: u64,
}

/// Aligned to two cache lines, so that no other allocation (another thread's chunk or
/// producer) shares a line with the length written at every event, or with the events.
#[repr(align(128))]
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
    // SAFETY: `c` was made by `Box::into_raw` in `alloc_chunk`, and the caller guarantees
    // that nobody else refers to it (so it is freed once).
    drop(unsafe { Box::from_raw(c) });
}

/// The consumer's position in a lane, and the consumer's own state for the lane.
struct Consumer<S> {
    /// The oldest chunk not fully read; null once the lane is retired.
    head: *mut Chunk,
    /// Events of `head` read so far.
    read: usize,
    /// Whether the last drain read no event.
    quiet: bool,
    state: S,
}

// SAFETY: the raw `head` is all that keeps `Consumer` from being `Send` on its own. The chunk
// it points to belongs to the lane, not to a thread: the writer writes only past the length it
// published, and chunks are freed only by a consumer holding the consumer mutex (or by the
// lane's `Drop`), so the consumer may use it from any thread that holds the mutex. `S` goes
// along, hence `S: Send`.
unsafe impl<S: Send> Send for Consumer<S> {}

/// The events of one thread for one session: the shared part of a lane and its consumer
/// side. `S` is the state the consumer keeps for the lane, behind the consumer mutex.
///
/// Aligned to two cache lines, so that the lanes of two threads (what each writer updates
/// when it changes chunks, and what the consumer writes) never share a line.
#[repr(align(128))]
pub(super) struct Lane<S> {
    index: u32,
    /// Set when the session is gone, so that the thread forgets its writer.
    closed: AtomicBool,
    /// Set by the writer's `Drop`, after its last event.
    producer_gone: AtomicBool,
    /// Fully read chunks handed back to the writer, linked by `next`, or null.
    spare: AtomicPtr<Chunk>,
    /// Chunks the writer has started since the consumer last caught up.
    backlog: AtomicUsize,
    consumer: Mutex<Consumer<S>>,
    /// Chunks allocated and not freed yet (kept in tests only, to check that chunks are
    /// reused and that every one is freed); shared so that a test sees it after the drop.
    #[cfg(test)]
    live_chunks: Arc<AtomicIsize>,
}

/// The producer end of a lane: the only way to push into it. See the module documentation
/// for why the types make this the single producer. (The raw `tail` makes it neither `Send`
/// nor `Sync`, which keeps it on the thread that made it.)
pub(super) struct LaneWriter<S> {
    lane: Arc<Lane<S>>,
    /// The chunk being written: allocated by this writer's lane, and never freed while the
    /// writer exists (the consumer frees only chunks whose successor is linked, and the
    /// whole list once the writer is gone).
    tail: *mut Chunk,
    /// Events written into `tail` (the chunk's `len`, without loading it).
    len: usize,
    /// Spare chunks this writer took from the lane and has not used yet, linked by `next`.
    own_spares: *mut Chunk,
}

impl<S> Lane<S> {
    /// A lane numbered `index` with the consumer state `state`, and its one writer, to be
    /// kept by the thread that will record into it.
    pub(super) fn new(index: u32, state: S) -> (Arc<Lane<S>>, LaneWriter<S>) {
        let first = alloc_chunk();
        let lane = Arc::new(Lane {
            index,
            closed: AtomicBool::new(false),
            producer_gone: AtomicBool::new(false),
            spare: AtomicPtr::new(ptr::null_mut()),
            backlog: AtomicUsize::new(0),
            consumer: Mutex::new(Consumer {
                head: first,
                read: 0,
                quiet: false,
                state,
            }),
            #[cfg(test)]
            live_chunks: Arc::new(AtomicIsize::new(1)),
        });
        let writer = LaneWriter {
            lane: Arc::clone(&lane),
            tail: first,
            len: 0,
            own_spares: ptr::null_mut(),
        };
        (lane, writer)
    }

    /// The lane's index in its session.
    pub(super) fn index(&self) -> u32 {
        self.index
    }

    /// Marks the lane's session as gone: the recording thread drops its writer when it next
    /// looks for a lane.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Whether [`close`](Self::close) was called.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Reads the consumer state; `None` if a consumer panicked holding it.
    pub(super) fn with_state<R>(&self, f: impl FnOnce(&S) -> R) -> Option<R> {
        self.consumer.lock().ok().map(|c| f(&c.state))
    }

    /// The consumer side: passes every event published so far, oldest first, to `each` with
    /// the consumer state, and hands the chunks read to their end back to the writer. Once
    /// the writer is gone and everything it wrote has been read, the lane is retired: its
    /// chunks are freed and `retired` is called with the state (its result is returned, on
    /// this drain and every later one); `None` while the writer exists.
    pub(super) fn drain<R>(
        &self,
        mut each: impl FnMut(&mut S, Event),
        retired: impl FnOnce(&S) -> R,
    ) -> Option<R> {
        let gone = self.producer_gone.load(Ordering::Acquire);
        let mut guard = self.consumer.lock().unwrap_or_else(|e| e.into_inner());
        let c = &mut *guard;
        if c.head.is_null() {
            return gone.then(|| retired(&c.state));
        }
        // The chunks read to their end in this drain, reset and linked, for the writer.
        let mut spares = Spares::default();
        let (head_before, read_before) = (c.head, c.read);
        loop {
            // SAFETY: `head` is a live chunk of this lane: it is freed only by a consumer,
            // under this mutex, after the writer linked its successor or is gone.
            let chunk = unsafe { &*c.head };
            let n = chunk.len.load(Ordering::Acquire);
            while c.read < n {
                // SAFETY: events below `len` were written before `len` was published (the
                // Acquire load above pairs with the writer's Release store), and the writer
                // never writes them again.
                let ev = unsafe { (*chunk.events[c.read].get()).assume_init() };
                each(&mut c.state, ev);
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
            // SAFETY: `done` was read to its end and the writer has linked its successor, so
            // it will never touch it again; `head` moved past it, so no consumer will either.
            unsafe { self.recycle(done, &mut spares) };
            self.backlog.fetch_sub(1, Ordering::Relaxed);
        }
        if !gone {
            // Idle: this drain and the one before read nothing (a report's second drain, or a
            // writer descheduled for one pass, is not idleness).
            let quiet = c.head == head_before && c.read == read_before;
            let idle = quiet && c.quiet;
            c.quiet = quiet;
            // SAFETY: the chunks of `spares` are this drain's alone (see `recycle`).
            unsafe { self.hand_back(spares, idle) };
            return None;
        }
        // SAFETY: as above; the writer is gone, so nobody will take them.
        unsafe { self.free_list(spares.head) };
        // The thread has exited and everything it wrote has been read: give the memory
        // back, keep the statistics.
        let head = std::mem::replace(&mut c.head, ptr::null_mut());
        // SAFETY: the writer is gone (`producer_gone` was loaded with Acquire after its last
        // Release store) and everything was read: the consumer owns every chunk, and `head`
        // is null now so that no later drain reads them.
        unsafe { self.free_chunks(head) };
        Some(retired(&c.state))
    }

    fn take_spare(&self) -> Option<*mut Chunk> {
        let p = self.spare.swap(ptr::null_mut(), Ordering::Acquire);
        (!p.is_null()).then_some(p)
    }

    /// A fresh chunk for the writer.
    fn alloc_chunk(&self) -> *mut Chunk {
        #[cfg(test)]
        self.live_chunks.fetch_add(1, Ordering::Relaxed);
        alloc_chunk()
    }

    /// # Safety
    /// As [`free_chunk`].
    unsafe fn free_chunk(&self, c: *mut Chunk) {
        #[cfg(test)]
        self.live_chunks.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: forwarded from the caller.
        unsafe { free_chunk(c) };
    }

    /// Keeps a fully read chunk in `spares` for the writer, or frees it when `spares` holds
    /// [`SPARE_MAX`] already.
    ///
    /// # Safety
    /// Neither the writer nor any consumer may use `c` any more: the consumer read it to its
    /// end and moved past it, and the writer has linked its successor.
    unsafe fn recycle(&self, c: *mut Chunk, spares: &mut Spares) {
        if spares.len == SPARE_MAX {
            // SAFETY: forwarded from the caller.
            unsafe { self.free_chunk(c) };
            return;
        }
        // SAFETY: the consumer is done with `c` and the producer has moved past it.
        unsafe {
            (*c).len.store(0, Ordering::Relaxed);
            (*c).next.store(spares.head, Ordering::Relaxed);
        }
        spares.head = c;
        spares.len += 1;
    }

    /// Leaves a drain's `spares` in the lane's spare slot, and frees the list they replace
    /// (the writer did not need it). With no spares and the lane `idle`, trims the list
    /// waiting to one chunk.
    ///
    /// # Safety
    /// The chunks of `spares` are used by nobody else.
    unsafe fn hand_back(&self, spares: Spares, idle: bool) {
        if !spares.head.is_null() {
            // Release: the writer that takes the list sees the resets and links above.
            let prev = self.spare.swap(spares.head, Ordering::AcqRel);
            // SAFETY: `prev` was swapped out of the slot, so the writer cannot take it any
            // more and nobody else holds it.
            unsafe { self.free_list(prev) };
            return;
        }
        if !idle || self.spare.load(Ordering::Relaxed).is_null() {
            return;
        }
        let first = self.spare.swap(ptr::null_mut(), Ordering::Acquire);
        if first.is_null() {
            return;
        }
        // SAFETY: the list was swapped out of the slot: ours alone.
        unsafe {
            let rest = (*first).next.swap(ptr::null_mut(), Ordering::Relaxed);
            self.free_list(rest);
        }
        if self
            .spare
            .compare_exchange(ptr::null_mut(), first, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // Only a consumer fills the slot, and consumers take turns: unreachable, but a
            // chunk is never lost or leaked.
            // SAFETY: `first` is still ours.
            unsafe { self.free_chunk(first) };
        }
    }

    /// Frees the chunks linked from `p` by `next`.
    ///
    /// # Safety
    /// Nobody else may use these chunks.
    unsafe fn free_list(&self, mut p: *mut Chunk) {
        while !p.is_null() {
            // SAFETY: `p` is a chunk of the list, which the caller guarantees nobody else
            // uses; its `next` is read before it is freed.
            unsafe {
                let next = (*p).next.load(Ordering::Relaxed);
                self.free_chunk(p);
                p = next;
            }
        }
    }

    /// Frees the chunk list starting at `head` and the lane's spare chunks.
    ///
    /// # Safety
    /// Neither the producer nor any other consumer may use these chunks any more (the lane is
    /// being dropped, or its producer is gone and everything was read).
    unsafe fn free_chunks(&self, head: *mut Chunk) {
        let mut p = head;
        while !p.is_null() {
            // SAFETY: `p` is a chunk of the list, which the caller guarantees nobody else
            // uses; its `next` is read before it is freed.
            unsafe {
                let next = (*p).next.load(Ordering::Acquire);
                self.free_chunk(p);
                p = next;
            }
        }
        if let Some(s) = self.take_spare() {
            // SAFETY: the spares were swapped out of the lane, so nobody else holds them, and
            // the writer (gone, as the caller guarantees) cannot take them any more.
            unsafe { self.free_list(s) };
        }
    }
}

/// The chunks one drain read to their end, linked by `next`, for the writer.
struct Spares {
    head: *mut Chunk,
    len: usize,
}

impl Default for Spares {
    fn default() -> Self {
        Spares {
            head: ptr::null_mut(),
            len: 0,
        }
    }
}

impl<S> Drop for Lane<S> {
    fn drop(&mut self) {
        let c = self.consumer.get_mut().unwrap_or_else(|e| e.into_inner());
        let head = std::mem::replace(&mut c.head, ptr::null_mut());
        // SAFETY: the lane is being dropped, so neither producer (whose writer holds an `Arc`
        // of the lane) nor consumer exists.
        unsafe { self.free_chunks(head) };
    }
}

impl<S> LaneWriter<S> {
    /// The writer's lane.
    pub(super) fn lane(&self) -> &Arc<Lane<S>> {
        &self.lane
    }

    /// Appends `ev`: a store and the Release store of the length that publishes it. Once per
    /// [`CHUNK_EVENTS`] events it first moves to a new chunk, and if the lane then runs
    /// [`BACKLOG_WAKE`] chunks or more ahead of its consumer, calls `on_backlog` with the
    /// lane and that number of chunks: from [`BACKLOG_WAKE`] the caller wakes the consumer,
    /// from [`BACKLOG_SELF_DRAIN`](super::BACKLOG_SELF_DRAIN) this thread drains the lane itself rather than grow.
    #[inline(always)]
    pub(super) fn push(&mut self, ev: Event, on_backlog: impl FnOnce(&Lane<S>, usize)) {
        if self.len == CHUNK_EVENTS {
            self.roll(on_backlog);
        }
        // SAFETY: `tail` is this writer's chunk, live while the writer exists (see `tail`),
        // and `len < CHUNK_EVENTS`; this writer is the lane's only one and `&mut self`
        // excludes a concurrent push, so nobody else writes the slot; and the consumer does
        // not read it until `len` is published below.
        unsafe {
            let chunk = &*self.tail;
            (*chunk.events.get_unchecked(self.len).get()).write(ev);
            self.len += 1;
            chunk.len.store(self.len, Ordering::Release);
        }
    }

    #[cold]
    #[inline(never)]
    fn roll<F: FnOnce(&Lane<S>, usize)>(&mut self, on_backlog: F) {
        if self.own_spares.is_null() {
            self.own_spares = self.lane.take_spare().unwrap_or(ptr::null_mut());
        }
        let fresh = if self.own_spares.is_null() {
            self.lane.alloc_chunk()
        } else {
            let c = self.own_spares;
            // SAFETY: the chunks of `own_spares` are this writer's alone (it swapped their
            // list out of the lane, with Acquire: their resets and links are visible), and
            // unlinked before the chunk is published below, so the consumer never sees a
            // spare's link.
            unsafe {
                self.own_spares = (*c).next.load(Ordering::Relaxed);
                (*c).next.store(ptr::null_mut(), Ordering::Relaxed);
            }
            c
        };
        // Counted before the chunk is published: the consumer counts it down only after it
        // sees `next` (which this Release store orders after the count), so the count never
        // dips below zero. (Counted after, a consumer quick enough took it down first and
        // the count wrapped: an overflow panic in debug builds, found by the concurrent
        // drain test.)
        let backlog = self.lane.backlog.fetch_add(1, Ordering::Relaxed) + 1;
        // SAFETY: `tail` is live until the consumer sees `next`, after which we never touch it.
        unsafe { (*self.tail).next.store(fresh, Ordering::Release) };
        self.tail = fresh;
        self.len = 0;
        if backlog >= BACKLOG_WAKE {
            // The aggregator is behind (a burst, or a busy machine): wake it, and past
            // BACKLOG_SELF_DRAIN catch up here rather than grow.
            on_backlog(&self.lane, backlog);
        }
    }
}

impl<S> Drop for LaneWriter<S> {
    fn drop(&mut self) {
        // SAFETY: the writer's own spares are linked from nowhere else and nobody else uses
        // them.
        unsafe { self.lane.free_list(self.own_spares) };
        self.own_spares = ptr::null_mut();
        self.lane.producer_gone.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::BACKLOG_SELF_DRAIN;
    use std::sync::mpsc;

    fn ev(i: u64) -> Event {
        Event {
            id: i as u32,
            ts: i.wrapping_mul(7),
        }
    }

    fn live(lane: &Lane<impl Sized>) -> isize {
        lane.live_chunks.load(Ordering::Relaxed)
    }

    /// Drains `lane` into `out`; whether it was retired.
    fn drain_into(lane: &Lane<()>, out: &mut Vec<Event>) -> bool {
        lane.drain(|_, e| out.push(e), |_| ()).is_some()
    }

    /// A consumer state that checks each event is the next one expected.
    fn check_next(next: &mut u64, e: Event) {
        assert_eq!(e, ev(*next), "event {next} out of order or lost");
        *next += 1;
    }

    #[test]
    fn events_come_out_in_order_across_chunks() {
        let (lane, mut w) = Lane::new(3, ());
        assert_eq!(lane.index(), 3);
        let n = 3 * CHUNK_EVENTS as u64 + 17;
        let mut out = Vec::new();
        // A drain in the middle of a chunk, one at a chunk's end, then the rest.
        for i in 0..100 {
            w.push(ev(i), |_, _| panic!("no backlog yet"));
        }
        assert!(!drain_into(&lane, &mut out));
        assert_eq!(out.len(), 100);
        for i in 100..CHUNK_EVENTS as u64 {
            w.push(ev(i), |_, _| panic!("no backlog yet"));
        }
        assert!(!drain_into(&lane, &mut out));
        for i in CHUNK_EVENTS as u64..n {
            w.push(ev(i), |_, _| panic!("no backlog yet"));
        }
        assert!(!drain_into(&lane, &mut out));
        assert_eq!(out, (0..n).map(ev).collect::<Vec<_>>());
        // Nothing is read twice.
        assert!(!drain_into(&lane, &mut out));
        assert_eq!(out.len() as u64, n);
        assert_eq!(lane.backlog.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_drain_concurrent_with_the_writer_misses_nothing() {
        const N: u64 = 4_000_000;
        let (tx, rx) = mpsc::channel();
        let producer = std::thread::spawn(move || {
            // The writer is made and used on this thread; only the lane is sent.
            let (lane, mut w) = Lane::new(0, 0u64);
            tx.send(lane).unwrap();
            let mut self_drains = 0u64;
            for i in 0..N {
                w.push(ev(i), |lane, n| {
                    // A consumer far behind: this thread catches up itself.
                    if n >= BACKLOG_SELF_DRAIN {
                        self_drains += 1;
                        assert!(lane.drain(check_next, |_| ()).is_none());
                    }
                });
            }
            self_drains
        });
        let lane = rx.recv().unwrap();
        let mut drains = 0u64;
        let read = loop {
            drains += 1;
            if let Some(read) = lane.drain(check_next, |&next| next) {
                break read;
            }
            if drains.is_multiple_of(64) {
                std::thread::yield_now();
            }
        };
        let self_drains = producer.join().unwrap();
        assert_eq!(
            read, N,
            "every event read once ({drains} drains, {self_drains} by the writer)"
        );
        assert_eq!(live(&lane), 0, "a retired lane keeps no chunk");
        assert_eq!(
            lane.drain(|_, e| panic!("{e:?} read twice"), |&n| n),
            Some(N)
        );
    }

    #[test]
    fn read_chunks_are_reused() {
        let (lane, mut w) = Lane::new(0, ());
        let mut out = Vec::new();
        let mut i = 0;
        // A consumer that keeps up: the lane runs on two chunks, the one being written and
        // the spare.
        for _ in 0..100 {
            for _ in 0..CHUNK_EVENTS {
                w.push(ev(i), |_, _| panic!("no backlog"));
                i += 1;
            }
            drain_into(&lane, &mut out);
            assert!(live(&lane) <= 2, "{} chunks live", live(&lane));
        }
        // Behind by ten chunks: eleven live. The writer is told of the backlog from
        // BACKLOG_WAKE chunks.
        let mut told = Vec::new();
        for _ in 0..10 * CHUNK_EVENTS {
            w.push(ev(i), |_, n| told.push(n));
            i += 1;
        }
        assert_eq!(told, (BACKLOG_WAKE..=10).collect::<Vec<_>>());
        assert_eq!(live(&lane), 11);
        assert_eq!(lane.backlog.load(Ordering::Relaxed), 10);
        // Caught up: the chunk being written and SPARE_MAX spares (the others are freed).
        drain_into(&lane, &mut out);
        assert_eq!(live(&lane), 1 + SPARE_MAX as isize);
        assert_eq!(lane.backlog.load(Ordering::Relaxed), 0);
        assert!(
            out == (0..i).map(ev).collect::<Vec<_>>(),
            "every event once"
        );
        // The writer writes that many chunks again on the spares, allocating none.
        for _ in 0..SPARE_MAX * CHUNK_EVENTS {
            w.push(ev(i), |_, _| {});
            i += 1;
        }
        assert_eq!(live(&lane), 1 + SPARE_MAX as isize, "no chunk allocated");
        // A drain hands the chunks read back. One that reads nothing keeps them (a report's
        // second drain, a writer descheduled for a pass); the next that reads nothing finds
        // the lane idle and leaves one spare: two chunks again.
        drain_into(&lane, &mut out);
        assert_eq!(live(&lane), 1 + SPARE_MAX as isize);
        drain_into(&lane, &mut out);
        assert_eq!(live(&lane), 1 + SPARE_MAX as isize);
        drain_into(&lane, &mut out);
        assert_eq!(live(&lane), 2);
        // And a writer that leaves with spares of its own frees them.
        for _ in 0..4 * CHUNK_EVENTS + 1 {
            w.push(ev(i), |_, _| {});
            i += 1;
        }
        drain_into(&lane, &mut out);
        for _ in 0..CHUNK_EVENTS {
            w.push(ev(i), |_, _| {});
            i += 1;
        }
        assert!(!w.own_spares.is_null());
        drop(w);
        assert!(drain_into(&lane, &mut out));
        assert!(
            out == (0..i).map(ev).collect::<Vec<_>>(),
            "every event once"
        );
        assert_eq!(live(&lane), 0);
    }

    #[test]
    fn a_lane_whose_writer_is_gone_is_retired_once_read() {
        let (lane, mut w) = Lane::new(0, 0u64);
        let n = 2 * CHUNK_EVENTS as u64 + CHUNK_EVENTS as u64 / 2;
        for i in 0..n {
            w.push(ev(i), |_, _| panic!("no backlog"));
        }
        // A spare waiting too.
        assert!(lane.drain(check_next, |_| ()).is_none());
        assert!(!lane.spare.load(Ordering::Relaxed).is_null());
        for i in n..2 * n {
            w.push(ev(i), |_, _| panic!("no backlog"));
        }
        drop(w);
        assert_eq!(lane.drain(check_next, |&next| next), Some(2 * n));
        assert_eq!(live(&lane), 0);
        assert!(lane.consumer.lock().unwrap().head.is_null());
        assert_eq!(lane.with_state(|&next| next), Some(2 * n));
    }

    #[test]
    fn dropping_a_lane_frees_its_undrained_chunks() {
        let (lane, mut w) = Lane::new(0, ());
        let live_chunks = Arc::clone(&lane.live_chunks);
        for i in 0..5 * CHUNK_EVENTS as u64 / 2 {
            w.push(ev(i), |_, _| panic!("no backlog"));
        }
        assert_eq!(live_chunks.load(Ordering::Relaxed), 3);
        drop(w);
        assert_eq!(
            live_chunks.load(Ordering::Relaxed),
            3,
            "the writer frees nothing"
        );
        drop(lane);
        assert_eq!(live_chunks.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_writer_drains_its_backlog() {
        let (lane, mut w) = Lane::new(0, 0u64);
        let mut calls = Vec::new();
        let mut i = 0u64;
        // Nobody drains: the writer is told once a chunk from BACKLOG_WAKE chunks behind
        // (on the first event of chunk BACKLOG_WAKE + 1), up to BACKLOG_SELF_DRAIN.
        while calls.last().is_none_or(|&(_, n)| n < BACKLOG_SELF_DRAIN) {
            w.push(ev(i), |lane, n| {
                calls.push((i, n));
                assert_eq!(lane.backlog.load(Ordering::Relaxed), n);
            });
            i += 1;
        }
        let expected: Vec<(u64, usize)> = (BACKLOG_WAKE..=BACKLOG_SELF_DRAIN)
            .map(|n| ((n * CHUNK_EVENTS) as u64, n))
            .collect();
        assert_eq!(calls, expected);
        assert_eq!(live(&lane), BACKLOG_SELF_DRAIN as isize + 1);
        // A writer that drains when asked to keeps the lane bounded, and loses nothing.
        let mut drained = 0;
        for _ in 0..300 * CHUNK_EVENTS {
            w.push(ev(i), |lane, n| {
                if n >= BACKLOG_SELF_DRAIN {
                    drained += 1;
                    assert!(lane.drain(check_next, |_| ()).is_none());
                }
            });
            i += 1;
            assert!(live(&lane) <= BACKLOG_SELF_DRAIN as isize + 2);
        }
        assert!(drained >= 300 / BACKLOG_SELF_DRAIN, "{drained} self-drains");
        drop(w);
        assert_eq!(lane.drain(check_next, |&next| next), Some(i));
        assert_eq!(live(&lane), 0);
    }

    #[test]
    fn closing_a_lane_is_seen() {
        let (lane, w) = Lane::new(0, ());
        assert!(!w.lane().is_closed());
        lane.close();
        assert!(w.lane().is_closed());
        assert_eq!(lane.with_state(|_| 1), Some(1));
    }
}
