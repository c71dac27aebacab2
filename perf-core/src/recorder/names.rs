//! Clock and names: the process-wide clock, the table of interned span names, and the
//! `scope!` call sites that intern their name once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use quanta::Clock;
use rustc_hash::FxHashMap;

use super::{MAX_NAMES, OVERFLOW_ID, OVERFLOW_NAME};

/// The process-wide calibrated clock (the TSC through quanta where the CPU has an invariant
/// TSC, the monotonic clock otherwise).
pub(crate) fn clock() -> &'static Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    CLOCK.get_or_init(Clock::new)
}

/// The interned names: id → name and name → id.
struct Names {
    ids: FxHashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Names {
    fn new() -> Self {
        Names {
            // Id 0 means "not interned yet" in a callsite; the overflow name is interned
            // from the start, as the id every name past the limit shares.
            ids: [(Arc::from(OVERFLOW_NAME), OVERFLOW_ID)]
                .into_iter()
                .collect(),
            names: vec![Arc::from(""), Arc::from(OVERFLOW_NAME)],
        }
    }

    /// See [`intern`].
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        if id as usize >= MAX_NAMES {
            return OVERFLOW_ID;
        }
        let name: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&name));
        self.ids.insert(name, id);
        id
    }

    /// See [`lookup`].
    fn lookup(&self, name: &str) -> Option<u32> {
        self.ids
            .get(name)
            .copied()
            .or((self.names.len() >= MAX_NAMES).then_some(OVERFLOW_ID))
    }

    /// See [`name_of`].
    fn name_of(&self, id: u32) -> Arc<str> {
        self.names
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from("?"))
    }
}

fn names() -> MutexGuard<'static, Names> {
    static NAMES: OnceLock<Mutex<Names>> = OnceLock::new();
    NAMES
        .get_or_init(|| Mutex::new(Names::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The id of `name`, interning it on first use. Ids are process-wide: the same name from
/// `scope!` and from `start_timing` is the same span. Past [`MAX_NAMES`] distinct names
/// (names made at run time, such as one per frame), further names share the id of
/// [`OVERFLOW_NAME`], so that the table stays bounded.
pub(crate) fn intern(name: &str) -> u32 {
    names().intern(name)
}

/// The id of `name` if it was interned, or the shared overflow id once the table is full
/// (`name` may then be one of the names past the limit); `None` for a name never seen.
pub(crate) fn lookup(name: &str) -> Option<u32> {
    names().lookup(name)
}

/// The name of an interned id.
pub(crate) fn name_of(id: u32) -> Arc<str> {
    names().name_of(id)
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
    pub(super) fn id(&self) -> u32 {
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

/// Whether two names are the same text: for names of up to 16 bytes, two overlapping
/// word loads each instead of a call to `memcmp` (`stop_timing` compares once per call).
#[inline(always)]
pub(crate) fn same_text(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().unwrap());
    let half = |s: &[u8], at: usize| u32::from_ne_bytes(s[at..at + 4].try_into().unwrap());
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_has_the_same_id() {
        let mut n = Names::new();
        let a = n.intern("detect");
        let b = n.intern("decide");
        assert_eq!(n.intern("detect"), a);
        assert_ne!(a, b);
        // Id 0 ("not interned yet") and the overflow id are never handed to a new name.
        assert!(a > OVERFLOW_ID && b > OVERFLOW_ID);
        assert_eq!(n.intern(OVERFLOW_NAME), OVERFLOW_ID);
        assert_eq!(n.lookup("detect"), Some(a));
        assert_eq!(n.lookup("never seen"), None);
        assert_eq!(&*n.name_of(a), "detect");
        assert_eq!(&*n.name_of(OVERFLOW_ID), OVERFLOW_NAME);
        assert_eq!(&*n.name_of(u32::MAX), "?");
    }

    #[test]
    fn names_past_the_limit_share_the_overflow_id() {
        let mut n = Names::new();
        let first = n.intern("name-0");
        let mut i = 1;
        while n.names.len() < MAX_NAMES {
            assert_ne!(n.intern(&format!("name-{i}")), OVERFLOW_ID);
            i += 1;
        }
        assert_eq!(n.names.len(), MAX_NAMES);
        assert_eq!(n.lookup("past the limit"), Some(OVERFLOW_ID));
        assert_eq!(n.intern("past the limit"), OVERFLOW_ID);
        assert_eq!(n.intern("past the limit, too"), OVERFLOW_ID);
        // The table stays bounded; names interned before keep their id.
        assert_eq!(n.names.len(), MAX_NAMES);
        assert_eq!(n.ids.len(), MAX_NAMES - 1);
        assert_eq!(n.intern("name-0"), first);
        assert_eq!(n.lookup("name-0"), Some(first));
    }

    #[test]
    fn a_callsite_interns_its_name_once() {
        static SITE: Callsite = Callsite::new("recorder::names::tests::callsite");
        assert_eq!(SITE.name(), "recorder::names::tests::callsite");
        assert_eq!(SITE.id.load(Ordering::Relaxed), 0);
        let id = SITE.id();
        assert_eq!(SITE.id.load(Ordering::Relaxed), id);
        assert_eq!(SITE.id(), id);
        assert_eq!(intern("recorder::names::tests::callsite"), id);
        assert_eq!(lookup("recorder::names::tests::callsite"), Some(id));
        assert_eq!(&*name_of(id), "recorder::names::tests::callsite");
    }

    #[test]
    fn same_text_is_byte_equality_for_every_length() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
            assert!(same_text(&a, &a.clone()));
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 1;
                assert!(!same_text(&a, &b), "length {n}, byte {at}");
            }
            let mut longer = a.clone();
            longer.push(b'z');
            assert!(!same_text(&a, &longer) && !same_text(&longer, &a));
        }
    }
}
