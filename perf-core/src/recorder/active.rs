//! Active sessions: the sessions started and not stopped, and the one `scope!` records into.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::session_core::SessionCore;

/// Id of the session `scope!` records into; 0 when none is active.
pub(super) static CURRENT: AtomicU64 = AtomicU64::new(0);
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

pub(super) fn find_active(id: u64) -> Option<Arc<SessionCore>> {
    active()
        .iter()
        .find(|(i, _)| *i == id)
        .and_then(|(_, w)| w.upgrade())
}

/// Whether a session is active, so that `scope!` records.
pub fn is_recording() -> bool {
    CURRENT.load(Ordering::Relaxed) != 0
}
