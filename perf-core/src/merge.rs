//! Merging the saved reports of several stations (runs) into one fleet report:
//! [`merge_reports`].
//!
//! See [`merge_reports`] for what is merged and how.
//!
//! ```
//! use heimdall_perf_core::{merge_reports, Report};
//! let fleet = merge_reports([("east", Report::empty("a")), ("west", Report::empty("b"))]).unwrap();
//! assert_eq!(fleet.stations.len(), 2);
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::report::{
    Attribution, Diagnostics, Distribution, FrameReport, FrameWindow, Incident, IncidentStage,
    Note, Report, SessionInfo, SpanStats, StageReport, ThreadInfo, TimelineSpan, SCHEMA_VERSION,
};
use crate::stats::{histogram_ladder, HistogramBucket, Summary, HISTOGRAM_FIRST_BUCKET_NS};

/// One station of a merged report: who it was, and its own figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationInfo {
    /// The station's name (given to [`merge_reports`]; the command takes the run's
    /// `station` label, or its labels, or its file name).
    pub name: String,
    /// The name of the station's session.
    pub session: String,
    /// Host that recorded it.
    pub host: String,
    /// The station's session labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Start as RFC 3339 text (UTC).
    pub started_at: String,
    /// Its session's duration.
    pub duration_ns: u64,
    /// Per span path (all threads of the station), in the station's order (total time,
    /// largest first).
    pub spans: Vec<StationSpan>,
    /// Per frame source of the station.
    pub frames: Vec<StationFrames>,
}

/// How many span paths a table of stations shows by default: the fleet's largest by total
/// time ([`Report::main_span_paths`]).
pub const STATION_TABLE_SPANS: usize = 3;

impl StationInfo {
    /// The station's figures of the span path `path`, if it recorded it.
    pub fn span(&self, path: &[String]) -> Option<&StationSpan> {
        self.spans.iter().find(|s| s.path == path)
    }

    /// Frames finished and missed by the station, over its sources **with a frame budget**
    /// (saturating). A source without a budget cannot miss: counting its frames would
    /// dilute the station's miss rate below what the Frames section shows for its sources,
    /// which gives no miss rate for a source without a budget either.
    pub fn frame_totals(&self) -> (u64, u64) {
        self.frames
            .iter()
            .filter(|s| s.budget_ns.is_some())
            .fold((0u64, 0u64), |(f, m), s| {
                (f.saturating_add(s.finished), m.saturating_add(s.missed))
            })
    }

    /// Missed / finished frames over the sources with a budget ([`frame_totals`]); `None`
    /// when none of them finished a frame. For a station with one budgeted source, this is
    /// that source's miss rate in the station's own report.
    ///
    /// [`frame_totals`]: Self::frame_totals
    ///
    /// ```
    /// use heimdall_perf_core::{StationFrames, StationInfo};
    /// let f = |finished, missed, budget_ns| StationFrames {
    ///     source: "cam".into(), finished, missed, miss_rate: 0.0, budget_ns,
    ///     latency_p50_ns: 0.0, latency_p99_ns: 0.0,
    /// };
    /// let mut s = StationInfo {
    ///     name: "east".into(), session: "s".into(), host: "h".into(),
    ///     labels: Default::default(), start_unix_ns: 0, started_at: String::new(),
    ///     duration_ns: 0, spans: Vec::new(),
    ///     frames: vec![f(90, 1, Some(5)), f(10, 1, Some(5)), f(900, 0, None)],
    /// };
    /// // The 900 frames of the source without a budget are not counted.
    /// assert_eq!(s.frame_totals(), (100, 2));
    /// assert_eq!(s.miss_rate(), Some(0.02));
    /// s.frames.clear();
    /// assert_eq!(s.miss_rate(), None);
    /// ```
    pub fn miss_rate(&self) -> Option<f64> {
        let (finished, missed) = self.frame_totals();
        (finished > 0).then(|| missed.min(finished) as f64 / finished as f64)
    }
}

impl Report {
    /// The `n` span paths with the largest total time across the report (its
    /// `span_totals`, sorted again: a report read from a file may not be), for tables that
    /// put stations side by side.
    pub fn main_span_paths(&self, n: usize) -> Vec<&[String]> {
        let mut totals: Vec<&SpanStats> = self.span_totals.iter().collect();
        totals.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.path.cmp(&b.path)));
        totals.iter().take(n).map(|s| s.path.as_slice()).collect()
    }
}

/// A span path's figures in one station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationSpan {
    /// Names from the root span to this one.
    pub path: Vec<String>,
    /// Completed spans.
    pub count: u64,
    /// Total time, children included.
    pub total_ns: u64,
    /// Median duration, ns.
    #[serde(with = "crate::report::serde_f64")]
    pub p50_ns: f64,
    /// 99th percentile of the duration, ns.
    #[serde(with = "crate::report::serde_f64")]
    pub p99_ns: f64,
}

/// A frame source's figures in one station.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationFrames {
    /// Source name.
    pub source: String,
    /// Frames finished.
    pub finished: u64,
    /// Finished frames that missed the budget.
    pub missed: u64,
    /// `missed / finished` (0 when none finished).
    #[serde(with = "crate::report::serde_f64")]
    pub miss_rate: f64,
    /// The station's frame budget for the source, if set.
    pub budget_ns: Option<u64>,
    /// Median latency, ns.
    #[serde(with = "crate::report::serde_f64")]
    pub latency_p50_ns: f64,
    /// 99th percentile of the latency, ns.
    #[serde(with = "crate::report::serde_f64")]
    pub latency_p99_ns: f64,
}

/// Why reports could not be merged. Every message names the station at fault and, for a
/// histogram, the span or stage and the bucket bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// No report was given.
    #[error("nothing to merge: give at least one report")]
    Empty,
    /// A station with an empty name.
    #[error("station {index} (counting from 1) has an empty name")]
    EmptyName {
        /// Its position, from 1.
        index: usize,
    },
    /// Two stations with the same name.
    #[error("two stations are named `{station}`: give each station its own name")]
    DuplicateStation {
        /// The name.
        station: String,
    },
    /// A report of a schema newer than this build knows.
    #[error(
        "station `{station}`: the report has schema {found}, this build reads up to {supported}; merge it with a newer heimdall-perf"
    )]
    NewerSchema {
        /// The station.
        station: String,
        /// Its schema version.
        found: u32,
        /// The newest this build knows.
        supported: u32,
    },
    /// Reports of different schema versions.
    #[error(
        "station `{station}` has report schema {found} but station `{first}` has schema {expected}: reports of different schema versions are not merged"
    )]
    SchemaMismatch {
        /// The station whose schema differs from the first one's.
        station: String,
        /// Its schema version.
        found: u32,
        /// The first station.
        first: String,
        /// The first station's schema version.
        expected: u32,
    },
    /// A histogram bound that is not on the bucket ladder (another ladder, or a corrupt
    /// report).
    #[error(
        "station `{station}`: the histogram of {what} has the bucket bound {le} ns, which is not on the bucket ladder of this build ({HISTOGRAM_FIRST_BUCKET_NS} ns growing by √2): reports with different bucket ladders are not merged"
    )]
    Ladder {
        /// The station.
        station: String,
        /// The span (`span `frame;detect``) or stage whose histogram it is.
        what: String,
        /// The bound at fault.
        le: u64,
    },
    /// Figures of a report that contradict each other (a hand-edited or corrupt file).
    #[error("station `{station}`: {what}: {problem}")]
    Inconsistent {
        /// The station.
        station: String,
        /// The span, stage or entry at fault.
        what: String,
        /// What is wrong.
        problem: String,
    },
    /// A figure of a station's span or frame summaries that is not a finite number (NaN or
    /// ±infinity: a hand-edited or corrupt file, or a report built in a program). A merge of
    /// it could only be NaN or infinite too, which `diff` would then take for "unchanged".
    #[error("station `{station}`: {what}: its {figure} is {value}, not a finite number")]
    NonFinite {
        /// The station.
        station: String,
        /// The span or stage whose summary it is.
        what: String,
        /// The figure (`mean`, `standard deviation`…).
        figure: String,
        /// Its value as written (`NaN`, `inf`, `-inf`).
        value: String,
    },
    /// A count or total that does not fit in a `u64` once the stations' are added: the
    /// merged figure cannot be kept exactly, and is not pinned at `u64::MAX` either.
    #[error(
        "station `{station}`: {what}: its {figure} ({value}) added to the other stations' ({sum}) does not fit in 64 bits: the merged figure cannot be kept exactly"
    )]
    Overflow {
        /// The station whose figure made the sum overflow.
        station: String,
        /// The span, frame source or stage.
        what: String,
        /// The figure (`count`, `total time (ns)`, `finished frames`…).
        figure: String,
        /// The station's figure.
        value: u64,
        /// The sum of the stations before it.
        sum: u64,
    },
    /// Two stations that are the same run (the same host, process, session name, start
    /// time and labels): a file given twice, through a link, or copied.
    #[error("stations `{first}` and `{station}` are the same run ({run}): merge each run once")]
    SameRun {
        /// The second of the two.
        station: String,
        /// The first of the two.
        first: String,
        /// The run: `session `a` of process 12 on host `h`, started 2026-…Z`.
        run: String,
    },
    /// A report that is itself a merge.
    #[error(
        "station `{station}` is already a merged report (of {stations} stations): merge the stations' own reports instead"
    )]
    AlreadyMerged {
        /// The station.
        station: String,
        /// How many stations it holds.
        stations: usize,
    },
}

impl MergeError {
    /// The station at fault, when the error is about one station (a command can then name
    /// the file it came from).
    ///
    /// ```
    /// use heimdall_perf_core::{merge_reports, Report};
    /// let e = merge_reports([("a", Report::empty("x")), ("a", Report::empty("y"))]).unwrap_err();
    /// assert_eq!(e.station(), Some("a"));
    /// ```
    pub fn station(&self) -> Option<&str> {
        match self {
            MergeError::Empty | MergeError::EmptyName { .. } => None,
            MergeError::DuplicateStation { station }
            | MergeError::NewerSchema { station, .. }
            | MergeError::SchemaMismatch { station, .. }
            | MergeError::Ladder { station, .. }
            | MergeError::Inconsistent { station, .. }
            | MergeError::AlreadyMerged { station, .. }
            | MergeError::NonFinite { station, .. }
            | MergeError::Overflow { station, .. }
            | MergeError::SameRun { station, .. } => Some(station),
        }
    }

    /// Every station the error names: [`station`](Self::station), and for
    /// [`MergeError::SameRun`] the first of the two as well (first in the list).
    pub fn stations(&self) -> Vec<&str> {
        match self {
            MergeError::SameRun { station, first, .. } => vec![first, station],
            _ => self.station().into_iter().collect(),
        }
    }
}

/// Merges the reports of several stations, given as `(station name, report)` pairs, into
/// one report.
///
/// What is merged, and how:
///
/// * **Span totals and frames merge exactly.** Per span path (and per frame source, stage,
///   latency, jitter): counts, totals, self time, min and max add up or take their extreme;
///   mean and standard deviation are combined exactly (the standard deviation with the
///   parallel-variance formula of Chan et al.); histograms add their counts bucket by bucket,
///   since every report uses the same bucket ladder (256 ns growing by √2). Percentiles are
///   never averaged: they are read again from the merged histogram, as the upper bound of
///   the bucket holding the percentile's rank, clamped to the exact min and max — so a
///   merged percentile is **within one bucket** (a factor √2) of the true one. A
///   distribution found in one station only keeps its own figures unchanged.
/// * **Per-station figures stay per station.** Threads are renamed `station/thread` with
///   fresh ids, so per-thread span rows never collide; time series are renamed
///   `station/series`; metrics get a `station` label (`fleet_station` when they have a
///   `station` label of their own that differs); notes start with their station's name;
///   incidents keep their stages' threads (renamed). Times (timeline, notes, series,
///   incidents, frame windows) are moved onto the fleet's clock, which starts with the
///   earliest station.
/// * **The stations** ([`Report::stations`]) keep each station's name, labels, host, start,
///   duration, and its own span percentiles and frame miss rates, for a side-by-side table.
/// * The session is named `fleet of N stations`; its labels are the labels every station
///   shares with the same value; diagnostics add up.
///
/// Reports of different schema versions, or whose histograms are not on the bucket ladder
/// this build uses, are refused ([`MergeError`]): merging them could only approximate.
/// So are summaries holding NaN or ±infinity ([`MergeError::NonFinite`]), counts and totals
/// whose sum does not fit in a `u64` ([`MergeError::Overflow`]: never saturated), and the
/// same run given twice ([`MergeError::SameRun`]: the same host, process id, session name,
/// start time and labels). A merged report cannot be merged again (merge the stations'
/// own reports).
///
/// ```
/// use heimdall_perf_core::{merge_reports, stats::DurationStats, Report, SpanStats};
///
/// // A station's report with one span path, `detect`, of the given durations.
/// let station = |name: &str, durations: &[u64]| {
///     let mut stats = DurationStats::new();
///     durations.iter().for_each(|&d| stats.record(d));
///     let mut r = Report::empty(name);
///     r.span_totals.push(SpanStats {
///         thread_id: None,
///         thread: None,
///         path: vec!["detect".into()],
///         count: stats.count(),
///         total_ns: stats.total(),
///         self_ns: stats.total(),
///         duration: stats.summary(),
///         histogram: stats.buckets(256),
///     });
///     r
/// };
/// let fleet = merge_reports([
///     ("cell-1", station("a", &[1_000, 2_000])),
///     ("cell-2", station("b", &[3_000, 4_000, 5_000])),
/// ])
/// .unwrap();
/// let detect = fleet.span_total(&["detect"]).unwrap();
/// assert_eq!((detect.count, detect.total_ns), (5, 15_000));
/// assert_eq!((detect.duration.min, detect.duration.max), (1_000.0, 5_000.0));
/// assert_eq!(fleet.stations.len(), 2);
/// assert_eq!(fleet.session.name, "fleet of 2 stations");
///
/// // A report whose histogram is not on the ladder is refused, naming it.
/// let mut odd = station("c", &[1_000]);
/// odd.span_totals[0].histogram[0].le = 300;
/// let err = merge_reports([("cell-1", station("a", &[1])), ("cell-3", odd)]).unwrap_err();
/// assert!(err.to_string().contains("station `cell-3`"), "{err}");
/// ```
///
/// # Errors
///
/// [`MergeError`]: no report, an empty or repeated station name, the same run twice,
/// different or newer schema versions, a histogram bound off the bucket ladder, figures that
/// contradict each other or are not finite, counts that overflow once added, or a report
/// that is already a merge.
pub fn merge_reports<I, S>(stations: I) -> Result<Report, MergeError>
where
    I: IntoIterator<Item = (S, Report)>,
    S: Into<String>,
{
    let stations: Vec<(String, Report)> = stations
        .into_iter()
        .map(|(name, report)| (name.into(), report))
        .collect();
    check(&stations)?;
    let fleet_start = stations
        .iter()
        .map(|(_, r)| r.session.start_unix_ns)
        .min()
        .unwrap_or(0);
    let mut out = Report::empty(if stations.len() == 1 {
        "fleet of 1 station".to_string()
    } else {
        format!("fleet of {} stations", stations.len())
    });
    out.session = fleet_session(&out.session.name, &stations, fleet_start);

    let mut thread_ids = ThreadIds::default();
    for (index, (name, r)) in stations.iter().enumerate() {
        let shift = r.session.start_unix_ns - fleet_start;
        let at = |t: u64| t.saturating_add(shift);
        for t in &r.threads {
            thread_ids.get(index, t.id, name, &t.name);
        }
        let offset = out.spans.len();
        for s in &r.spans {
            let mut s = s.clone();
            if let Some(old) = s.thread_id {
                let thread = s.thread.clone().unwrap_or_else(|| format!("thread-{old}"));
                s.thread_id = Some(thread_ids.get(index, old, name, &thread));
            }
            s.thread = s.thread.map(|t| station_thread(name, &t));
            out.spans.push(s);
        }
        for t in &r.timeline {
            if t.span >= r.spans.len() {
                return Err(MergeError::Inconsistent {
                    station: name.clone(),
                    what: "the timeline".into(),
                    problem: format!(
                        "a span refers to row {} of {} span rows",
                        t.span,
                        r.spans.len()
                    ),
                });
            }
            out.timeline.push(TimelineSpan {
                span: t.span + offset,
                start_ns: at(t.start_ns),
                duration_ns: t.duration_ns,
            });
        }
        for m in &r.metrics {
            let mut m = m.clone();
            let key = match m.labels.get("station") {
                Some(v) if v != name => "fleet_station",
                _ => "station",
            };
            m.labels.insert(key.into(), name.clone());
            for p in &mut m.points {
                p.t_ns = at(p.t_ns);
            }
            out.metrics.push(m);
        }
        for s in &r.series {
            let mut s = s.clone();
            s.name = format!("{name}/{}", s.name);
            for p in &mut s.points {
                p.t_ns = at(p.t_ns);
            }
            out.series.push(s);
        }
        for n in &r.notes {
            out.notes.push(Note {
                t_ns: at(n.t_ns),
                text: format!("**Station {}:** {}", escape_markdown(name), n.text),
            });
        }
        add_diagnostics(&mut out.diagnostics, &r.diagnostics, name)?;
        out.stations.push(station_info(name, r));
    }
    out.timeline.sort_by_key(|t| t.start_ns);
    out.notes.sort_by_key(|n| n.t_ns);
    out.span_totals = merge_span_totals(&stations)?;
    out.frames = merge_frames(&stations, fleet_start, &mut thread_ids)?;
    out.threads = thread_ids.threads;
    Ok(out)
}

/// The checks made before anything is merged.
fn check(stations: &[(String, Report)]) -> Result<(), MergeError> {
    let Some((first, first_report)) = stations.first() else {
        return Err(MergeError::Empty);
    };
    let mut names = HashSet::new();
    // A run is its host, process, session name, start and labels.
    type RunKey<'a> = (&'a str, u32, &'a str, u64, &'a BTreeMap<String, String>);
    let mut runs: HashMap<RunKey<'_>, &str> = HashMap::new();
    for (index, (name, r)) in stations.iter().enumerate() {
        if name.is_empty() {
            return Err(MergeError::EmptyName { index: index + 1 });
        }
        if !names.insert(name.as_str()) {
            return Err(MergeError::DuplicateStation {
                station: name.clone(),
            });
        }
        if r.schema_version > SCHEMA_VERSION {
            return Err(MergeError::NewerSchema {
                station: name.clone(),
                found: r.schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        if r.schema_version != first_report.schema_version {
            return Err(MergeError::SchemaMismatch {
                station: name.clone(),
                found: r.schema_version,
                first: first.clone(),
                expected: first_report.schema_version,
            });
        }
        if !r.stations.is_empty() {
            return Err(MergeError::AlreadyMerged {
                station: name.clone(),
                stations: r.stations.len(),
            });
        }
        let session = &r.session;
        let key = (
            session.host.as_str(),
            session.pid,
            session.name.as_str(),
            session.start_unix_ns,
            &session.labels,
        );
        if let Some(first) = runs.insert(key, name) {
            return Err(MergeError::SameRun {
                station: name.clone(),
                first: first.to_string(),
                run: format!(
                    "session `{}` of process {} on host `{}`, started {}",
                    session.name,
                    session.pid,
                    session.host,
                    crate::util::rfc3339(session.start_unix_ns)
                ),
            });
        }
        for s in r.spans.iter().chain(&r.span_totals) {
            let what = span_what(s);
            check_histogram(name, &what, &s.histogram)?;
            check_counts(name, &what, s.duration.count, &s.histogram)?;
            check_finite(name, &what, &s.duration)?;
        }
        for f in &r.frames {
            for (what, d) in frame_distributions(f) {
                check_histogram(name, &what, &d.histogram)?;
                check_counts(name, &what, d.summary.count, &d.histogram)?;
                check_finite(name, &what, &d.summary)?;
            }
        }
    }
    Ok(())
}

/// Every figure of a summary that holds values is a finite number.
fn check_finite(station: &str, what: &str, s: &Summary) -> Result<(), MergeError> {
    if s.count == 0 {
        return Ok(());
    }
    let figures = [
        ("sum", s.sum),
        ("minimum", s.min),
        ("maximum", s.max),
        ("mean", s.mean),
        ("standard deviation", s.stddev),
        ("p50", s.p50),
        ("p90", s.p90),
        ("p95", s.p95),
        ("p99", s.p99),
        ("p99.9", s.p999),
    ];
    match figures.iter().find(|(_, v)| !v.is_finite()) {
        Some((figure, v)) => Err(MergeError::NonFinite {
            station: station.to_string(),
            what: what.to_string(),
            figure: (*figure).to_string(),
            value: v.to_string(),
        }),
        None => Ok(()),
    }
}

/// The sum of the stations' figures, or [`MergeError::Overflow`] naming the station whose
/// figure made it overflow.
fn checked_sum<'a>(
    what: &str,
    figure: &str,
    parts: impl IntoIterator<Item = (&'a str, u64)>,
) -> Result<u64, MergeError> {
    let mut sum = 0u64;
    for (station, n) in parts {
        sum = sum.checked_add(n).ok_or_else(|| MergeError::Overflow {
            station: station.to_string(),
            what: what.to_string(),
            figure: figure.to_string(),
            value: n,
            sum,
        })?;
    }
    Ok(sum)
}

fn span_what(s: &SpanStats) -> String {
    match &s.thread {
        Some(t) => format!("span `{}` of thread `{t}`", s.path_string()),
        None => format!("span `{}`", s.path_string()),
    }
}

fn frame_distributions(f: &FrameReport) -> Vec<(String, &Distribution)> {
    let mut v = vec![
        (format!("frame source `{}` latency", f.source), &f.latency),
        (format!("frame source `{}` jitter", f.source), &f.jitter),
    ];
    for s in &f.stages {
        v.push((
            format!(
                "frame source `{}` stage `{}` service time",
                f.source, s.name
            ),
            &s.service,
        ));
        v.push((
            format!("frame source `{}` stage `{}` queue time", f.source, s.name),
            &s.queue,
        ));
    }
    v
}

/// Every bound on the ladder, in increasing order.
fn check_histogram(station: &str, what: &str, h: &[HistogramBucket]) -> Result<(), MergeError> {
    let ladder = histogram_ladder();
    let mut previous: Option<u64> = None;
    for b in h {
        let on_ladder = ladder.binary_search(&b.le).is_ok();
        if !on_ladder || previous.is_some_and(|p| p >= b.le) {
            return Err(MergeError::Ladder {
                station: station.to_string(),
                what: if on_ladder {
                    format!("{what} (bounds not in increasing order)")
                } else {
                    what.to_string()
                },
                le: b.le,
            });
        }
        previous = Some(b.le);
    }
    Ok(())
}

/// The histogram holds as many values as the summary says.
fn check_counts(
    station: &str,
    what: &str,
    count: u64,
    h: &[HistogramBucket],
) -> Result<(), MergeError> {
    let in_buckets = h.iter().try_fold(0u64, |n, b| n.checked_add(b.count));
    match in_buckets {
        Some(n) if n == count => Ok(()),
        Some(n) => Err(MergeError::Inconsistent {
            station: station.to_string(),
            what: what.to_string(),
            problem: format!("its histogram holds {n} values but its count is {count}"),
        }),
        None => Err(MergeError::Inconsistent {
            station: station.to_string(),
            what: what.to_string(),
            problem: format!(
                "its histogram's buckets add up to more than 64 bits hold but its count is {count}"
            ),
        }),
    }
}

fn fleet_session(name: &str, stations: &[(String, Report)], start: u64) -> SessionInfo {
    let end = stations
        .iter()
        .map(|(_, r)| {
            r.session
                .start_unix_ns
                .saturating_add(r.session.duration_ns)
        })
        .max()
        .unwrap_or(start);
    let mut labels = stations[0].1.session.labels.clone();
    for (_, r) in &stations[1..] {
        labels.retain(|k, v| r.session.labels.get(k) == Some(v));
    }
    let mut hosts: Vec<&str> = Vec::new();
    for (_, r) in stations {
        if !hosts.contains(&r.session.host.as_str()) {
            hosts.push(&r.session.host);
        }
    }
    SessionInfo {
        name: name.to_string(),
        host: hosts.join(", "),
        pid: 0,
        start_unix_ns: start,
        started_at: crate::util::rfc3339(start),
        duration_ns: end - start,
        active: stations.iter().any(|(_, r)| r.session.active),
        labels,
    }
}

fn station_thread(station: &str, thread: &str) -> String {
    format!("{station}/{thread}")
}

/// Fresh thread ids: one per (station, thread id), counting from 1 in order of first use
/// (a station's thread list first, then threads met only in its span rows or incidents).
#[derive(Default)]
struct ThreadIds {
    ids: HashMap<(usize, u64), u64>,
    /// The merged report's threads, in order of their new ids.
    threads: Vec<ThreadInfo>,
}

impl ThreadIds {
    fn get(&mut self, station: usize, old: u64, station_name: &str, thread: &str) -> u64 {
        let next = self.ids.len() as u64 + 1;
        *self.ids.entry((station, old)).or_insert_with(|| {
            self.threads.push(ThreadInfo {
                id: next,
                name: station_thread(station_name, thread),
            });
            next
        })
    }
}

fn add_diagnostics(
    out: &mut Diagnostics,
    d: &Diagnostics,
    station: &str,
) -> Result<(), MergeError> {
    let add = |a: &mut u64, b: u64, figure: &str| -> Result<(), MergeError> {
        *a = checked_sum("the diagnostics", figure, [("", *a), (station, b)])?;
        Ok(())
    };
    add(
        &mut out.misnested_exits,
        d.misnested_exits,
        "misnested_exits",
    )?;
    add(&mut out.open_spans, d.open_spans, "open_spans")?;
    add(
        &mut out.overflowed_spans,
        d.overflowed_spans,
        "overflowed_spans",
    )?;
    add(
        &mut out.timeline_capacity,
        d.timeline_capacity,
        "timeline_capacity",
    )?;
    add(
        &mut out.timeline_dropped,
        d.timeline_dropped,
        "timeline_dropped",
    )?;
    add(&mut out.exited_threads, d.exited_threads, "exited_threads")?;
    add(&mut out.folded_threads, d.folded_threads, "folded_threads")?;
    add(
        &mut out.abandoned_spans,
        d.abandoned_spans,
        "abandoned_spans",
    )?;
    add(&mut out.leaked_spans, d.leaked_spans, "leaked_spans")?;
    add(
        &mut out.refused_after_stop,
        d.refused_after_stop,
        "refused_after_stop",
    )?;
    add(
        &mut out.dropped_measurements,
        d.dropped_measurements,
        "dropped_measurements",
    )?;
    add(&mut out.dropped_notes, d.dropped_notes, "dropped_notes")?;
    add(&mut out.refused_labels, d.refused_labels, "refused_labels")?;
    add(
        &mut out.unmatched_frame_events,
        d.unmatched_frame_events,
        "unmatched_frame_events",
    )?;
    add(
        &mut out.abandoned_frames,
        d.abandoned_frames,
        "abandoned_frames",
    )?;
    add(
        &mut out.unrecorded_frame_events,
        d.unrecorded_frame_events,
        "unrecorded_frame_events",
    )?;
    for (figure, n) in &d.sampler_failures {
        // Per station: a fresh entry, nothing to add to.
        out.sampler_failures
            .insert(format!("{station}/{figure}"), *n);
    }
    Ok(())
}

fn station_info(name: &str, r: &Report) -> StationInfo {
    StationInfo {
        name: name.to_string(),
        session: r.session.name.clone(),
        host: r.session.host.clone(),
        labels: r.session.labels.clone(),
        start_unix_ns: r.session.start_unix_ns,
        started_at: r.session.started_at.clone(),
        duration_ns: r.session.duration_ns,
        spans: r
            .span_totals
            .iter()
            .map(|s| StationSpan {
                path: s.path.clone(),
                count: s.count,
                total_ns: s.total_ns,
                p50_ns: s.duration.p50,
                p99_ns: s.duration.p99,
            })
            .collect(),
        frames: r
            .frames
            .iter()
            .map(|f| StationFrames {
                source: f.source.clone(),
                finished: f.finished,
                missed: f.missed,
                miss_rate: f.miss_rate,
                budget_ns: f.budget_ns,
                latency_p50_ns: f.latency.summary.p50,
                latency_p99_ns: f.latency.summary.p99,
            })
            .collect(),
    }
}

/// Backslash before every ASCII punctuation character and control characters as spaces, so
/// a station's name is plain text on one line in a note's Markdown.
fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        // A line break would end the note's first paragraph early.
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

fn merge_span_totals(stations: &[(String, Report)]) -> Result<Vec<SpanStats>, MergeError> {
    let mut by_path: BTreeMap<&[String], Vec<(&str, &SpanStats)>> = BTreeMap::new();
    for (name, r) in stations {
        for s in &r.span_totals {
            by_path.entry(&s.path).or_default().push((name, s));
        }
    }
    let mut out = Vec::with_capacity(by_path.len());
    for parts in by_path.into_values() {
        let what = span_what(parts[0].1);
        let sum = |figure: &str, g: fn(&SpanStats) -> u64| {
            checked_sum(&what, figure, parts.iter().map(|&(n, s)| (n, g(s))))
        };
        let count = sum("count", |s| s.count)?;
        let total_ns = sum("total time (ns)", |s| s.total_ns)?;
        let self_ns = sum("self time (ns)", |s| s.self_ns)?;
        let d = merge_distribution(
            &what,
            parts
                .iter()
                .map(|&(n, s)| (n, &s.duration, s.histogram.as_slice()))
                .collect(),
        )?;
        out.push(SpanStats {
            thread_id: None,
            thread: None,
            path: parts[0].1.path.clone(),
            count,
            total_ns,
            self_ns,
            duration: d.summary,
            histogram: d.histogram,
        });
    }
    out.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.path.cmp(&b.path)));
    Ok(out)
}

/// Merges distributions given as (station, summary, histogram) whose histograms are on the
/// ladder and hold `summary.count` values each, and whose figures are finite (all checked
/// before).
fn merge_distribution(
    what: &str,
    parts: Vec<(&str, &Summary, &[HistogramBucket])>,
) -> Result<Distribution, MergeError> {
    let parts: Vec<_> = parts.into_iter().filter(|(_, s, _)| s.count > 0).collect();
    Ok(match parts.as_slice() {
        [] => Distribution::default(),
        [(_, s, h)] => Distribution {
            summary: (*s).clone(),
            histogram: h.to_vec(),
        },
        _ => {
            // The count first: when it fits, so does every bucket's.
            let count = checked_sum(what, "count", parts.iter().map(|(n, s, _)| (*n, s.count)))?;
            let histogram = merge_histograms(parts.iter().map(|(_, _, h)| *h));
            let summary = merge_summaries(what, count, &parts, &histogram)?;
            Distribution { summary, histogram }
        }
    })
}

/// Adds histograms on the ladder bucket by bucket: every bound of the ladder from the first
/// up to the largest bound of any of them (empty buckets included, as
/// [`DurationStats::buckets`] gives them).
pub(crate) fn merge_histograms<'a>(
    parts: impl Iterator<Item = &'a [HistogramBucket]>,
) -> Vec<HistogramBucket> {
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for h in parts {
        for b in h {
            let c = counts.entry(b.le).or_default();
            *c = c.saturating_add(b.count);
        }
    }
    let Some(&top) = counts.keys().next_back() else {
        return Vec::new();
    };
    histogram_ladder()
        .iter()
        .take_while(|&&le| le <= top)
        .map(|&le| HistogramBucket {
            le,
            count: counts.get(&le).copied().unwrap_or(0),
        })
        .collect()
}

/// Count, sum, min, max, mean and standard deviation exactly (Chan et al.'s parallel
/// variance); percentiles from the merged histogram (within one bucket). `count` is the
/// parts' (checked) total; their figures are finite. A merged figure that would not be
/// finite (sums or spreads beyond the `f64` range) is an error naming the station that
/// took it there, never a figure silently set to 0.
fn merge_summaries(
    what: &str,
    count: u64,
    parts: &[(&str, &Summary, &[HistogramBucket])],
    histogram: &[HistogramBucket],
) -> Result<Summary, MergeError> {
    let n = count as f64;
    let not_finite = |station: &str, figure: &str, v: f64| MergeError::NonFinite {
        station: station.to_string(),
        what: format!("{what}, merged with the stations before it"),
        figure: figure.to_string(),
        value: v.to_string(),
    };
    let mut sum = 0.0f64;
    for (station, s, _) in parts {
        sum += s.sum;
        if !sum.is_finite() {
            return Err(not_finite(station, "sum", sum));
        }
    }
    // Weighted by each part's share, so that no product leaves the f64 range.
    let mean: f64 = parts
        .iter()
        .map(|(_, s, _)| s.mean * (s.count as f64 / n))
        .sum();
    // Chan et al.: m2 = Σ kᵢ·(sdᵢ² + (meanᵢ − mean)²), here divided by n and by scale²
    // (the largest deviation) so that squares of large deviations stay finite.
    let scale = parts
        .iter()
        .map(|(_, s, _)| s.stddev.abs().max((s.mean - mean).abs()))
        .fold(0.0f64, f64::max);
    let stddev = if scale == 0.0 {
        0.0
    } else {
        let var: f64 = parts
            .iter()
            .map(|(_, s, _)| {
                let (sd, dm) = (s.stddev / scale, (s.mean - mean) / scale);
                (s.count as f64 / n) * (sd * sd + dm * dm)
            })
            .sum();
        scale * var.sqrt()
    };
    let last = parts.last().map_or("", |p| p.0);
    if !mean.is_finite() {
        return Err(not_finite(last, "mean", mean));
    }
    if !stddev.is_finite() {
        return Err(not_finite(last, "standard deviation", stddev));
    }
    let min = parts
        .iter()
        .map(|(_, s, _)| s.min)
        .fold(f64::INFINITY, f64::min);
    let max = parts
        .iter()
        .map(|(_, s, _)| s.max)
        .fold(f64::NEG_INFINITY, f64::max);
    // Not `f64::clamp`, which panics on NaN or `min > max` (a report read from a file may
    // hold either).
    let q = |p: f64| {
        let v = quantile(histogram, count, p);
        if v > max {
            max
        } else if v < min {
            min
        } else {
            v
        }
    };
    Ok(Summary {
        count,
        sum,
        min,
        max,
        mean,
        stddev,
        p50: q(0.50),
        p90: q(0.90),
        p95: q(0.95),
        p99: q(0.99),
        p999: q(0.999),
    })
}

/// The upper bound of the bucket holding the value of rank `⌈p·count⌉` (at least 1), as
/// the HDR histograms rank.
fn quantile(histogram: &[HistogramBucket], count: u64, p: f64) -> f64 {
    let rank = ((p * count as f64).ceil() as u64).max(1);
    let mut seen = 0u64;
    for b in histogram {
        seen = seen.saturating_add(b.count);
        if seen >= rank {
            return b.le as f64;
        }
    }
    histogram.last().map_or(0.0, |b| b.le as f64)
}

/// The same budget everywhere, or none.
fn common_budget(budgets: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    let mut budgets = budgets;
    let first = budgets.next()?;
    budgets.all(|b| b == first).then_some(first).flatten()
}

fn merge_frames(
    stations: &[(String, Report)],
    fleet_start: u64,
    thread_ids: &mut ThreadIds,
) -> Result<Vec<FrameReport>, MergeError> {
    // Per source: (station index, its report of the source).
    let mut by_source: BTreeMap<&str, Vec<(usize, &FrameReport)>> = BTreeMap::new();
    for (i, (_, r)) in stations.iter().enumerate() {
        for f in &r.frames {
            by_source.entry(&f.source).or_default().push((i, f));
        }
    }
    let mut out = Vec::with_capacity(by_source.len());
    for (source, parts) in by_source {
        let what = format!("frame source `{source}`");
        let station = |i: usize| stations[i].0.as_str();
        let sum = |figure: &str, g: &dyn Fn(&FrameReport) -> u64| {
            checked_sum(
                &what,
                figure,
                parts.iter().map(|&(i, f)| (station(i), g(f))),
            )
        };
        let mut dropped: BTreeMap<String, u64> = BTreeMap::new();
        for &(i, f) in &parts {
            for (reason, n) in &f.dropped {
                let d = dropped.entry(reason.clone()).or_default();
                *d = checked_sum(
                    &what,
                    &format!("frames dropped ({reason})"),
                    [("", *d), (station(i), *n)],
                )?;
            }
        }
        let finished = sum("finished frames", &|f| f.finished)?;
        let missed = sum("missed frames", &|f| f.missed)?;
        let dist = |figure: &str, g: &dyn Fn(&FrameReport) -> &Distribution| {
            merge_distribution(
                &format!("{what} {figure}"),
                parts
                    .iter()
                    .map(|&(i, f)| {
                        let d = g(f);
                        (station(i), &d.summary, d.histogram.as_slice())
                    })
                    .collect(),
            )
        };
        // Stages in order of first use, station by station.
        let mut stage_names: Vec<&str> = Vec::new();
        for (_, f) in &parts {
            for s in &f.stages {
                if !stage_names.contains(&s.name.as_str()) {
                    stage_names.push(&s.name);
                }
            }
        }
        let mut stages = Vec::with_capacity(stage_names.len());
        for &name in &stage_names {
            let of: Vec<(&str, &StageReport)> = parts
                .iter()
                .filter_map(|&(i, f)| f.stage(name).map(|s| (station(i), s)))
                .collect();
            let stage_what = format!("{what} stage `{name}`");
            let d = |figure: &str, g: &dyn Fn(&StageReport) -> &Distribution| {
                merge_distribution(
                    &format!("{stage_what} {figure}"),
                    of.iter()
                        .map(|&(n, s)| {
                            let d = g(s);
                            (n, &d.summary, d.histogram.as_slice())
                        })
                        .collect(),
                )
            };
            stages.push(StageReport {
                name: name.to_string(),
                budget_ns: common_budget(of.iter().map(|(_, s)| s.budget_ns)),
                service: d("service time", &|s| &s.service)?,
                queue: d("queue time", &|s| &s.queue)?,
                over_budget: checked_sum(
                    &stage_what,
                    "frames over budget",
                    of.iter().map(|&(n, s)| (n, s.over_budget)),
                )?,
            });
        }
        let mut blamed: BTreeMap<&str, u64> = BTreeMap::new();
        for &(i, f) in &parts {
            for a in &f.attribution {
                let n = blamed.entry(&a.cause).or_default();
                *n = checked_sum(
                    &what,
                    &format!("missed frames blamed on `{}`", a.cause),
                    [("", *n), (station(i), a.missed)],
                )?;
            }
        }
        let mut attribution: Vec<Attribution> = blamed
            .into_iter()
            .map(|(cause, missed)| Attribution {
                cause: cause.to_string(),
                missed,
            })
            .collect();
        attribution.sort_by(|a, b| b.missed.cmp(&a.missed).then(a.cause.cmp(&b.cause)));

        let mut incidents = Vec::new();
        let mut windows: BTreeMap<(u64, u64), FrameWindow> = BTreeMap::new();
        for &(i, f) in &parts {
            let (name, r) = &stations[i];
            let shift = r.session.start_unix_ns - fleet_start;
            for inc in &f.incidents {
                incidents.push(shift_incident(inc, shift, i, name, thread_ids));
            }
            for w in &f.windows {
                let t_ns = w.t_ns.saturating_add(shift);
                let e = windows.entry((t_ns, w.duration_ns)).or_insert(FrameWindow {
                    t_ns,
                    duration_ns: w.duration_ns,
                    finished: 0,
                    missed: 0,
                });
                let window = format!("{what} window at {t_ns} ns");
                e.finished = checked_sum(
                    &window,
                    "finished frames",
                    [("", e.finished), (name.as_str(), w.finished)],
                )?;
                e.missed = checked_sum(
                    &window,
                    "missed frames",
                    [("", e.missed), (name.as_str(), w.missed)],
                )?;
            }
        }
        incidents.sort_by_key(|i: &Incident| std::cmp::Reverse(i.overrun_ns));
        out.push(FrameReport {
            source: source.to_string(),
            count: sum("frames", &|f| f.count)?,
            finished,
            dropped,
            in_flight: sum("frames in flight", &|f| f.in_flight)?,
            budget_ns: common_budget(parts.iter().map(|(_, f)| f.budget_ns)),
            missed,
            miss_rate: if finished == 0 {
                0.0
            } else {
                missed as f64 / finished as f64
            },
            longest_miss_streak: parts
                .iter()
                .map(|(_, f)| f.longest_miss_streak)
                .max()
                .unwrap_or(0),
            latency: dist("latency", &|f| &f.latency)?,
            jitter: dist("jitter", &|f| &f.jitter)?,
            stages,
            attribution,
            incidents,
            windows: windows.into_values().collect(),
        });
    }
    Ok(out)
}

fn shift_incident(
    inc: &Incident,
    shift: u64,
    station: usize,
    name: &str,
    thread_ids: &mut ThreadIds,
) -> Incident {
    let mut stage = |s: &IncidentStage| IncidentStage {
        thread_id: thread_ids.get(station, s.thread_id, name, &s.thread),
        thread: station_thread(name, &s.thread),
        ..s.clone()
    };
    let mut inc = inc.clone();
    inc.capture_ns = inc.capture_ns.saturating_add(shift);
    inc.stages = inc.stages.iter().map(&mut stage).collect();
    for p in &mut inc.previous {
        p.capture_ns = p.capture_ns.saturating_add(shift);
        p.stages = p.stages.iter().map(&mut stage).collect();
    }
    for f in &mut inc.system {
        f.t_ns = f.t_ns.saturating_add(shift);
    }
    inc
}
