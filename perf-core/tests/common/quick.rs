//! A test periodic source for the quick-source tests, and a way to keep their deliberate
//! panics out of the output.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use heimdall_perf_core::{PeriodicSource, Samples};

/// What a test source saw: the threads that sampled it, its rounds, whether it was dropped.
#[derive(Default)]
pub struct Seen {
    pub threads: Mutex<BTreeSet<String>>,
    pub rounds: AtomicU64,
    pub dropped: AtomicBool,
}

pub struct Probe {
    pub name: &'static str,
    pub quick: bool,
    /// Each round takes this long (a source that is not as quick as it says).
    pub takes: Duration,
    pub panics: bool,
    /// Panics when dropped (unless already panicking).
    pub panic_on_drop: bool,
    pub seen: Arc<Seen>,
}

impl Probe {
    pub fn new(name: &'static str, quick: bool) -> (Self, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        let probe = Probe {
            name,
            quick,
            takes: Duration::ZERO,
            panics: false,
            panic_on_drop: false,
            seen: Arc::clone(&seen),
        };
        (probe, seen)
    }
}

impl PeriodicSource for Probe {
    fn name(&self) -> &str {
        self.name
    }

    fn sample(&mut self, out: &mut Samples<'_>) {
        let thread = thread::current().name().unwrap_or("?").to_string();
        self.seen.threads.lock().unwrap().insert(thread);
        let n = self.seen.rounds.fetch_add(1, Ordering::SeqCst) + 1;
        thread::sleep(self.takes);
        if self.panics {
            panic!("probe `{}` fails on purpose", self.name);
        }
        out.record(&format!("{}.round", self.name), "rounds", n as f64);
    }

    fn is_quick(&self) -> bool {
        self.quick
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.seen.dropped.store(true, Ordering::SeqCst);
        if self.panic_on_drop && !thread::panicking() {
            panic!("probe `{}` panics when dropped, on purpose", self.name);
        }
    }
}

pub fn rounds(seen: &Seen) -> u64 {
    seen.rounds.load(Ordering::SeqCst)
}

/// Keeps panics whose message says `on purpose` out of the output, until dropped.
pub fn quiet_on_purpose_panics() -> impl Drop {
    type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send>;
    struct Restore(Option<Hook>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(h) = self.0.take() {
                std::panic::set_hook(h);
            }
        }
    }
    let old = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        if !info.to_string().contains("on purpose") {
            eprintln!("{info}");
        }
    }));
    Restore(Some(old))
}
