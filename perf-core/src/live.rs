//! Live views of running sessions: the list of sessions a manager shares with its live
//! endpoint, the hook that renders snapshots for a scraper ([`Exposition`], set by the
//! facade: perf-core knows no format), and the fixed bucket ladder every live histogram is
//! written on.
//!
//! A live snapshot is taken from a session's shared state, never through the
//! `Mutex<ProfilingSession>` the program locks on every timing call, so a scrape neither
//! waits for the recording threads nor makes them wait.

use std::sync::{Arc, Mutex, Weak};

use crate::report::Report;
use crate::session::Shared;
use crate::sink::RenderError;
use crate::stats::histogram_ladder;
#[cfg(test)]
use crate::stats::{DurationStats, HISTOGRAM_FIRST_BUCKET_NS};

/// The largest finite bound of the live bucket ladder is the first step of the ladder at or
/// past this (one minute, in nanoseconds); longer durations count in `+Inf` only.
pub const HISTOGRAM_LADDER_TOP_NS: u64 = 60_000_000_000;

/// The bucket ladder of the live exposition, in nanoseconds: the report histograms' own
/// ladder ([`histogram_ladder`](crate::stats::histogram_ladder): from 255 ns, growing by √2)
/// up to the first bound at or past [`HISTOGRAM_LADDER_TOP_NS`]; longer durations count in
/// `+Inf` only.
///
/// A live exposition written on this whole ladder has the same `le` set in every scrape, on
/// every station and in every run: series never come and go, and summing buckets across a
/// fleet is exact. 57 bounds, from 255 ns to 68.7 s.
///
/// ```
/// let ladder = heimdall_perf_core::exposition_ladder();
/// assert_eq!(ladder[0], 255);
/// assert_eq!(ladder.len(), 57);
/// assert_eq!(*ladder.last().unwrap(), 68_719_476_735);
/// assert_eq!(ladder, &heimdall_perf_core::stats::histogram_ladder()[..57]);
/// ```
pub fn exposition_ladder() -> &'static [u64] {
    let full = histogram_ladder();
    let top = full.partition_point(|&le| le < HISTOGRAM_LADDER_TOP_NS);
    &full[..(top + 1).min(full.len())]
}

/// What a scraper asked for: the request a live endpoint (or the textfile exporter) hands
/// the [`Exposition`] hook.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ScrapeRequest<'a> {
    /// The scraper's `Accept` header, if it sent one (content negotiation).
    pub accept: Option<&'a str>,
    /// The `format` query parameter (`/metrics?format=…`), for scrapers that cannot send
    /// an `Accept` header.
    pub format: Option<&'a str>,
    /// Spans per thread (label `thread`) rather than merged across threads.
    pub per_thread: bool,
}

impl<'a> ScrapeRequest<'a> {
    /// A request with this `Accept` header, spans merged across threads.
    pub fn accepting(accept: &'a str) -> Self {
        ScrapeRequest {
            accept: Some(accept),
            ..Self::default()
        }
    }

    /// The request with a `format` query parameter.
    #[must_use]
    pub fn with_format(mut self, format: &'a str) -> Self {
        self.format = Some(format);
        self
    }

    /// The request for spans per thread (or merged across threads).
    #[must_use]
    pub fn with_per_thread(mut self, per_thread: bool) -> Self {
        self.per_thread = per_thread;
        self
    }
}

/// What an [`Exposition`] answers: an HTTP status, a content type and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Scraped {
    /// The HTTP status: 200, or 400 for a request the hook refuses (an unknown `format`).
    pub status: u16,
    /// The `Content-Type` of the body.
    pub content_type: String,
    /// The body.
    pub body: String,
}

impl Scraped {
    /// A 200 answer.
    pub fn ok(content_type: impl Into<String>, body: impl Into<String>) -> Self {
        Scraped {
            status: 200,
            content_type: content_type.into(),
            body: body.into(),
        }
    }

    /// A 400 answer whose plain-text body says what is wrong with the request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Scraped {
            status: 400,
            content_type: "text/plain; charset=utf-8".into(),
            body: message.into(),
        }
    }
}

/// Renders the live snapshots of sessions for a scraper (`GET /metrics` of
/// [`ProfilingManager::serve`](crate::ProfilingManager::serve), and
/// [`ProfilingSession::export_textfile`](crate::ProfilingSession::export_textfile)). The
/// facade sets the OpenMetrics one with its `openmetrics` feature
/// ([`Registry::set_exposition`](crate::Registry::set_exposition)).
pub type Exposition =
    Arc<dyn Fn(&[Report], &ScrapeRequest<'_>) -> Result<Scraped, RenderError> + Send + Sync>;

/// The sessions a manager shares with its live endpoints: sessions started after the
/// endpoint appear in it, stopped ones leave it.
#[derive(Default)]
pub(crate) struct LiveSessions {
    list: Mutex<Vec<Weak<Shared>>>,
}

// Without the `serve` feature only `add` is used (the manager keeps the list all the same).
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
impl LiveSessions {
    /// Adds a session (and forgets the ones that stopped or are gone).
    pub(crate) fn add(&self, session: &Arc<Shared>) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| w.upgrade().is_some_and(|s| s.is_active()));
        list.push(Arc::downgrade(session));
    }

    /// The active sessions, oldest first.
    fn active(&self) -> Vec<Arc<Shared>> {
        let list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.iter()
            .filter_map(Weak::upgrade)
            .filter(|s| s.is_active())
            .collect()
    }

    /// A snapshot of every active session, oldest first (the list's lock is not held while
    /// they are taken).
    pub(crate) fn snapshots(&self) -> Vec<Report> {
        self.active().iter().map(|s| s.snapshot(0)).collect()
    }

    /// A snapshot of the active session named `name`, or of the most recently started one.
    pub(crate) fn snapshot_of(&self, name: Option<&str>) -> Option<Report> {
        let active = self.active();
        let session = match name {
            Some(name) => active.iter().find(|s| s.name() == name),
            None => active.last(),
        }?;
        Some(session.snapshot(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_buckets_are_a_prefix_of_the_ladder() {
        let ladder = exposition_ladder();
        for values in [
            vec![1u64],
            vec![300, 5_000, 1_000_000],
            vec![17_000_000, 16_666_667, 8_000_000, 33_000_000_000],
            (1..2000).map(|i| i * i * 997).collect(),
        ] {
            let mut stats = DurationStats::new();
            for v in values {
                stats.record(v);
            }
            let bounds: Vec<u64> = stats
                .buckets(HISTOGRAM_FIRST_BUCKET_NS)
                .iter()
                .map(|b| b.le)
                .collect();
            assert_eq!(bounds, ladder[..bounds.len()], "{bounds:?}");
        }
        assert!(ladder.len() > 50 && ladder.len() < 70, "{}", ladder.len());
    }
}
