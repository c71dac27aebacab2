//! The live exposition: options of the sink ([`OpenMetricsOptions`]), the two text formats
//! a scraper can ask for ([`Flavor`]) and content negotiation on `Accept` ([`negotiate`]),
//! and [`scrape`], the exposition a live endpoint serves for the sessions it sees.

use heimdall_perf_core::{Report, ScrapeRequest, Scraped};

use crate::families;

/// The text format written: the classic Prometheus text format (version 0.0.4, which
/// `promtool check metrics`, the node_exporter textfile collector and the Pushgateway
/// read), or strict OpenMetrics 1.0.
///
/// The two differ only in how a counter family is declared (`# TYPE x_total counter` in
/// the classic format, `# TYPE x counter` with samples `x_total` in OpenMetrics) and in
/// `# UNIT` lines; series names and values are the same, so a scraper gets the same series
/// whichever it negotiates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flavor {
    /// The Prometheus text format 0.0.4 (with `# UNIT` and `# EOF` lines, which its
    /// parsers read as comments). The default, and what report files are written in.
    #[default]
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Flavor {
    /// The `Content-Type` of a body in this format.
    ///
    /// ```
    /// use heimdall_perf_report_openmetrics::Flavor;
    /// assert_eq!(Flavor::Prometheus.content_type(), "text/plain; version=0.0.4; charset=utf-8");
    /// ```
    pub fn content_type(self) -> &'static str {
        match self {
            Flavor::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Flavor::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The flavor a `format` query parameter names: `prometheus` (or `text`) and
    /// `openmetrics`, in any case.
    pub fn from_query(format: &str) -> Option<Flavor> {
        match format.to_ascii_lowercase().as_str() {
            "prometheus" | "text" => Some(Flavor::Prometheus),
            "openmetrics" => Some(Flavor::OpenMetrics),
            _ => None,
        }
    }
}

/// The flavor to answer a scraper that sent `accept`, as Prometheus client libraries
/// negotiate: the acceptable media range with the highest `q` (the first of equals) among
/// `application/openmetrics-text` (OpenMetrics) and `text/plain`, `text/*`, `*/*` (the
/// classic format); no header, or none of these, gives the classic format.
///
/// Only OpenMetrics 1.0.0 is written: an `application/openmetrics-text` range with another
/// `version` (such as the draft `0.0.1`) is not acceptable, so a scraper that accepts only
/// that gets the classic text, labelled as such (every Prometheus reads it; a `406` would
/// leave it with nothing). A `q` that is not a valid quality value (`0` to `1`, at most
/// three decimals: not `inf`, `NaN`, `-1` or `2`) makes its range not acceptable, as does
/// `q=0`.
///
/// ```
/// use heimdall_perf_report_openmetrics::{negotiate, Flavor};
/// // What Prometheus sends.
/// let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// assert_eq!(negotiate(Some(prometheus)), Flavor::OpenMetrics);
/// assert_eq!(negotiate(Some("text/plain;version=0.0.4")), Flavor::Prometheus);
/// assert_eq!(negotiate(Some("application/openmetrics-text;version=0.0.1")), Flavor::Prometheus);
/// assert_eq!(negotiate(Some("application/openmetrics-text;q=inf,text/plain;q=0.5")), Flavor::Prometheus);
/// assert_eq!(negotiate(None), Flavor::Prometheus);
/// ```
pub fn negotiate(accept: Option<&str>) -> Flavor {
    let Some(accept) = accept else {
        return Flavor::Prometheus;
    };
    let mut best: Option<(u16, Flavor)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut q = Some(1000);
        let mut version = None;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k.eq_ignore_ascii_case("q") {
                    q = quality(v);
                } else if k.eq_ignore_ascii_case("version") {
                    version = Some(v);
                }
            }
        }
        let Some(q) = q.filter(|&q| q > 0) else {
            continue;
        };
        let flavor = match media.as_str() {
            "application/openmetrics-text" if version.is_none_or(|v| v == "1.0.0") => {
                Flavor::OpenMetrics
            }
            "text/plain" | "text/*" | "*/*" => Flavor::Prometheus,
            _ => continue,
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, flavor));
        }
    }
    best.map_or(Flavor::Prometheus, |(_, f)| f)
}

/// A quality value (RFC 9110 §12.4.2: `0`, `0.5`, `1.000`…) in thousandths; `None` if it
/// is not one.
fn quality(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Options of the OpenMetrics sink ([`OpenMetricsSink::with_options`]).
///
/// The default is the report file: every span per thread (labels `thread`, `thread_id`),
/// the histogram buckets the report has, the session's `pid` and start time on
/// `heimdall_session_info`. [`live`](Self::live) is the exposition a scraper polls for
/// weeks: label values from bounded sets only.
///
/// [`OpenMetricsSink::with_options`]: crate::OpenMetricsSink::with_options
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenMetricsOptions {
    pub(crate) live: bool,
    pub(crate) per_thread: bool,
    pub(crate) flavor: Flavor,
}

impl OpenMetricsOptions {
    /// The live exposition: spans merged across threads (`path` label only; see
    /// [`per_thread`](Self::per_thread)), every span and frame histogram on the full fixed
    /// bucket ladder ([`heimdall_perf_core::exposition_ladder`]) so that the `le` set is the
    /// same in every scrape, station and run, and no label whose values grow without bound
    /// (no thread ids, no pid or start time: those are in `heimdall_session_start_time_seconds`).
    #[must_use]
    pub fn live(mut self, live: bool) -> Self {
        self.live = live;
        self
    }

    /// With [`live`](Self::live): spans per thread name (label `thread`; threads of one
    /// name merged, thread ids never written).
    #[must_use]
    pub fn per_thread(mut self, per_thread: bool) -> Self {
        self.per_thread = per_thread;
        self
    }

    /// The text format ([`Flavor::Prometheus`] by default).
    #[must_use]
    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }
}

/// The live exposition of `reports` (one per session) for a scraper's `request`: the
/// flavor its `format` parameter names, else the one its `Accept` header negotiates, with
/// its content type; an unknown `format` is a 400 answer saying which are known. This is
/// the [`Exposition`](heimdall_perf_core::Exposition) the facade gives its registry.
///
/// ```
/// use heimdall_perf_core::{Report, ScrapeRequest};
/// let reports = [Report::empty("line-3")];
/// let scraped = heimdall_perf_report_openmetrics::scrape(
///     &reports,
///     &ScrapeRequest::accepting("application/openmetrics-text;version=1.0.0"),
/// );
/// assert_eq!(scraped.status, 200);
/// assert!(scraped.content_type.starts_with("application/openmetrics-text"));
/// assert!(scraped.body.contains("heimdall_session_active{session=\"line-3\"} "));
/// assert!(scraped.body.ends_with("# EOF\n"));
/// ```
pub fn scrape(reports: &[Report], request: &ScrapeRequest<'_>) -> Scraped {
    let flavor = match request.format {
        Some(f) => match Flavor::from_query(f) {
            Some(flavor) => flavor,
            None => {
                return Scraped::bad_request(format!(
                    "unknown format `{}`: use format=openmetrics or format=prometheus, or leave it out to negotiate by the Accept header\n",
                    f.escape_debug()
                ))
            }
        },
        None => negotiate(request.accept),
    };
    let options = OpenMetricsOptions::default()
        .live(true)
        .per_thread(request.per_thread)
        .flavor(flavor);
    Scraped::ok(
        flavor.content_type(),
        families::exposition_of(reports, &options),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_q_values() {
        assert_eq!(
            negotiate(Some("text/plain;q=0.9,application/openmetrics-text;q=0.5")),
            Flavor::Prometheus
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text; version=0.0.1")),
            Flavor::Prometheus
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text; version=\"1.0.0\"")),
            Flavor::OpenMetrics
        );
        for bad_q in ["inf", "NaN", "-1", "2", "1.5", "0.1234", "x", ""] {
            assert_eq!(
                negotiate(Some(&format!(
                    "application/openmetrics-text;q={bad_q},text/plain;q=0.001"
                ))),
                Flavor::Prometheus,
                "q={bad_q}"
            );
        }
        assert_eq!(
            negotiate(Some(
                "text/plain;q=0.999,application/openmetrics-text;q=1.000"
            )),
            Flavor::OpenMetrics
        );
        assert_eq!(negotiate(Some("application/json")), Flavor::Prometheus);
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0,*/*")),
            Flavor::Prometheus
        );
        assert_eq!(negotiate(Some(";;,=,q=x")), Flavor::Prometheus);
        assert_eq!(Flavor::from_query("OpenMetrics"), Some(Flavor::OpenMetrics));
        assert_eq!(Flavor::from_query("json"), None);
    }

    #[test]
    fn an_unknown_format_is_a_bad_request() {
        let r = ScrapeRequest::default().with_format("json");
        let s = scrape(&[], &r);
        assert_eq!(s.status, 400);
        assert!(s.body.contains("unknown format `json`"), "{}", s.body);
    }
}
