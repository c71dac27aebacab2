//! # heimdall-perf-report-openmetrics
//!
//! A report sink that writes a heimdall-perf [`Report`] as the text exposition format that
//! Prometheus reads (OpenMetrics text, in the subset the classic Prometheus parser also
//! accepts): drop the file in the node_exporter textfile collector directory (the extension
//! is `.prom`, as that collector requires), or push it to a Pushgateway.
//!
//! * Span durations are **histograms** (`heimdall_span_duration_seconds_bucket{le=…}`,
//!   `_sum`, `_count`, in seconds), not precomputed quantiles, so that a fleet of lines can be
//!   aggregated and `histogram_quantile` works across them.
//! * Cumulative figures are **counters** with a `_total` suffix (span self time, recording
//!   diagnostics, metrics of type `counter`).
//! * The last value of each metric and of each periodic series (system figures) is a
//!   **gauge**, converted to base units (seconds, bytes, ratios instead of percent, bytes per
//!   second for `MB/s` or `Mbit/s`: `17 ms` is written `0.017` in a family named
//!   `…_seconds`); NaN and infinities are written `NaN`, `+Inf`, `-Inf`. A unit the sink does
//!   not know (`fps`, `px`, `kb` — bits or bytes?) stays out of the metric name, its value as
//!   it is, and is told in `# HELP`. Unit abbreviations, type names and non-base unit words
//!   (`ms`, `gauge`, `kilobytes`) are dropped from user-chosen names, so that `promtool check
//!   metrics` finds nothing to lint whatever the names and units.
//! * Labels: `session`, and for spans `thread`, `thread_id` and `path` (names joined by `;`,
//!   a `;` or `\` inside a name escaped with `\`, so that the name `a;b` is not the path
//!   a › b).
//! * Every family has `# TYPE` and `# HELP` (and `# UNIT` where it has one); the text ends
//!   with `# EOF`. Names are sanitised to `[a-zA-Z_:][a-zA-Z0-9_:]*` and label values escaped,
//!   whatever the span and metric names contain.
//!
//! Counter families are declared under their sample name (`# TYPE x_total counter`), as the
//! Prometheus text format, `promtool check metrics`, the textfile collector and the
//! Pushgateway require; a strict OpenMetrics 1.0 parser would want `# TYPE x counter`.
//!
//! ```
//! use heimdall_perf_core::{ReportSink};
//! use heimdall_perf_testkit as fixtures;
//! use heimdall_perf_report_openmetrics::OpenMetricsSink;
//!
//! let report = fixtures::sample_report();
//! let mut out = Vec::new();
//! OpenMetricsSink::new().render(&report, &mut out)?;
//! let text = String::from_utf8(out)?;
//! assert!(text.contains("# TYPE heimdall_span_duration_seconds histogram\n"));
//! assert!(text.contains(
//!     r#"heimdall_span_duration_seconds_count{session="line-3 inspection",thread="processing",thread_id="2",path="frame;detect;nms"} 600"#
//! ));
//! assert!(text.ends_with("# EOF\n"));
//! # Ok::<(), heimdall_perf_core::RenderError>(())
//! ```

#![warn(missing_docs)]

mod error;
mod units;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write;

use heimdall_perf_core::RenderError;
use heimdall_perf_core::{MetricReport, SpanStats, TimeSeries};
use heimdall_perf_core::{MetricType, Report, ReportSink};

pub use error::OpenMetricsError;
use units::{base_unit, is_reserved_word, Conversion};

/// The format id the sink registers under.
pub const FORMAT_ID: &str = "openmetrics";
/// The file extension: `prom`, the one the node_exporter textfile collector reads.
pub const FILE_EXTENSION: &str = "prom";
/// Prefix of every metric name written.
pub const METRIC_PREFIX: &str = "heimdall_";

/// The OpenMetrics report sink (format id [`FORMAT_ID`], extension [`FILE_EXTENSION`]).
#[derive(Debug, Clone, Default)]
pub struct OpenMetricsSink {
    _private: (),
}

impl OpenMetricsSink {
    /// The sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `report` as OpenMetrics text to `out`.
    pub fn write(&self, report: &Report, out: &mut dyn Write) -> Result<(), OpenMetricsError> {
        out.write_all(render_string(report).as_bytes())
            .map_err(|source| OpenMetricsError::Write {
                session: report.session.name.clone(),
                source,
            })
    }
}

impl ReportSink for OpenMetricsSink {
    fn format_id(&self) -> &str {
        FORMAT_ID
    }

    fn file_extension(&self) -> &str {
        FILE_EXTENSION
    }

    fn render(&self, report: &Report, out: &mut dyn Write) -> Result<(), RenderError> {
        Ok(self.write(report, out)?)
    }
}

/// The OpenMetrics text of `report`.
///
/// ```
/// let text = heimdall_perf_report_openmetrics::render_string(
///     &heimdall_perf_core::Report::empty("idle"),
/// );
/// assert!(text.starts_with("# TYPE heimdall_session_info gauge\n"));
/// assert!(text.ends_with("\n# EOF\n"));
/// ```
pub fn render_string(report: &Report) -> String {
    let mut families = Families::default();
    let session = report.session.name.as_str();
    session_families(&mut families, report);
    span_families(&mut families, session, &report.spans);
    for m in &report.metrics {
        metric_family(&mut families, session, m);
    }
    for s in &report.series {
        series_family(&mut families, session, s);
    }
    diagnostics_families(&mut families, report);
    families.finish()
}

// ---------------------------------------------------------------------------------------------
// Names, labels, values
// ---------------------------------------------------------------------------------------------

/// `name` as a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), in snake_case: camelCase
/// humps and every run of other characters become one `_`; a leading digit gets a `_` before
/// it; an empty result is `_`. (No `:` is produced: it is reserved for recording rules.)
///
/// ```
/// use heimdall_perf_report_openmetrics::sanitize_metric_name;
/// assert_eq!(sanitize_metric_name("system.cpu.total"), "system_cpu_total");
/// assert_eq!(sanitize_metric_name("frameLatency p99"), "frame_latency_p99");
/// assert_eq!(sanitize_metric_name("3d | depth"), "_3d_depth");
/// ```
pub fn sanitize_metric_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut prev: Option<char> = None;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase()
                && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
            {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
        prev = Some(c);
    }
    let trimmed = out.trim_matches('_');
    let mut name = String::with_capacity(trimmed.len() + 1);
    if trimmed.is_empty() || trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        name.push('_');
    }
    name.push_str(trimmed);
    name
}

/// `name` as a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`, which is
/// reserved).
///
/// ```
/// assert_eq!(heimdall_perf_report_openmetrics::sanitize_label_name("Camera Id"), "camera_id");
/// assert_eq!(heimdall_perf_report_openmetrics::sanitize_label_name("__x"), "x");
/// ```
pub fn sanitize_label_name(name: &str) -> String {
    sanitize_metric_name(name)
}

/// `value` escaped for a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
///
/// ```
/// use heimdall_perf_report_openmetrics::escape_label_value;
/// assert_eq!(escape_label_value("a \"b\"\\\nc"), r#"a \"b\"\\\nc"#);
/// ```
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a `# HELP` line: backslashes and newlines escaped, double quotes (which the
/// Prometheus and OpenMetrics parsers escape differently) replaced by single quotes.
fn escape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push('\''),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: `NaN`, `+Inf`, `-Inf`, or the shortest decimal that reads back exactly
/// (exponent notation for very small and very large magnitudes).
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v != 0.0 && (v.abs() < 1e-6 || v.abs() >= 1e16) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Nanoseconds as seconds.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The name stem for a user-chosen `name` with `unit`, for a family of `kind`: sanitised,
/// without a trailing copy of a known unit (`latency_ms` in `ms` becomes `latency`, written
/// later as `latency_seconds`), without the words Prometheus naming rules reserve (type names,
/// unit abbreviations, non-base and prefixed unit words such as `minutes` or `kilobytes`, a
/// counter's own `total`). The original name stays in a label.
fn stem(name: &str, unit: &str, suffix: Option<&str>, kind: Kind) -> String {
    let mut s = sanitize_metric_name(name);
    if let Some(suffix) = suffix {
        let given = sanitize_metric_name(unit);
        for end in [given.trim_start_matches('_'), suffix] {
            if end.is_empty() {
                continue;
            }
            if let Some(rest) = s.strip_suffix(&format!("_{end}")) {
                s = rest.to_string();
            }
        }
    }
    let mut tokens: Vec<&str> = s
        .split('_')
        .filter(|t| !t.is_empty() && !is_reserved_word(t))
        .collect();
    if kind == Kind::Counter {
        while tokens.last() == Some(&"total") {
            tokens.pop();
        }
    }
    if tokens.is_empty() {
        "value".to_string()
    } else {
        tokens.join("_")
    }
}

/// How a unit is told in `# HELP` text: ` (ms)`, and for converted values ` (ms, written in
/// seconds)`; nothing for no unit.
fn unit_help(unit: &str, conversion: &Conversion) -> String {
    match &conversion.suffix {
        _ if unit.trim().is_empty() => String::new(),
        Some(base) if conversion.scales() => {
            format!(" ({unit}, written in {})", base.replace('_', " "))
        }
        _ => format!(" ({unit})"),
    }
}

// ---------------------------------------------------------------------------------------------
// Families
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }

    /// The name a family of this kind takes from a stem and a unit suffix.
    fn family_name(self, stem: &str, unit: Option<&str>) -> String {
        let mut name = stem.to_string();
        if let Some(u) = unit {
            if !name.ends_with(&format!("_{u}")) {
                name.push('_');
                name.push_str(u);
            }
        }
        match self {
            Kind::Counter => name.push_str("_total"),
            // Suffixes that belong to counters, histograms and summaries.
            Kind::Gauge => {
                if ["_total", "_count", "_sum", "_bucket"]
                    .iter()
                    .any(|end| name.ends_with(end))
                {
                    name.push_str("_value");
                }
            }
            Kind::Histogram => {}
        }
        name
    }

    /// Every name the family's samples use.
    fn sample_names(self, family: &str) -> Vec<String> {
        match self {
            Kind::Gauge | Kind::Counter => vec![family.to_string()],
            Kind::Histogram => ["", "_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{family}{s}"))
                .collect(),
        }
    }
}

struct Family {
    name: String,
    kind: Kind,
    unit: Option<String>,
    help: String,
    /// Rendered label sets already written, to drop exact duplicates.
    seen: HashSet<String>,
    lines: String,
}

/// The families of one rendering, in order, with the names they hold.
#[derive(Default)]
struct Families {
    list: Vec<Family>,
    by_key: HashMap<String, usize>,
    taken: HashSet<String>,
}

/// What a new family is: a key that identifies its source (the same key gives the same
/// family), a name stem, a unit suffix, a kind and help text.
struct Spec<'a> {
    key: String,
    stem: &'a str,
    unit: Option<&'a str>,
    kind: Kind,
    help: String,
}

impl Families {
    /// The family for `spec`: the existing one for its key, or a new one under the first
    /// name (stem, stem_2, stem_3…) that clashes with no name already written.
    fn family(&mut self, spec: Spec<'_>) -> usize {
        if let Some(&i) = self.by_key.get(&spec.key) {
            return i;
        }
        let mut n = 1;
        let name = loop {
            let stem = if n == 1 {
                format!("{METRIC_PREFIX}{}", spec.stem)
            } else {
                format!("{METRIC_PREFIX}{}_{n}", spec.stem)
            };
            let name = spec.kind.family_name(&stem, spec.unit);
            if spec
                .kind
                .sample_names(&name)
                .iter()
                .all(|s| !self.taken.contains(s))
            {
                break name;
            }
            n += 1;
        };
        self.taken.extend(spec.kind.sample_names(&name));
        // A histogram `x` reserves `x_bucket` & co; a gauge `x_bucket` must also keep a later
        // histogram `x` away, which the check above does through its own sample names.
        self.list.push(Family {
            name,
            kind: spec.kind,
            unit: spec.unit.map(str::to_string),
            help: spec.help,
            seen: HashSet::new(),
            lines: String::new(),
        });
        let i = self.list.len() - 1;
        self.by_key.insert(spec.key, i);
        i
    }

    /// Adds a sample `family` + `suffix` with `labels` and `value` (already formatted).
    fn sample(&mut self, family: usize, suffix: &str, labels: &Labels, value: &str) {
        let f = &mut self.list[family];
        let rendered = labels.render();
        if suffix.is_empty() || suffix == "_count" {
            // One sample per label set (for histograms, the `_count` marks the set).
            if !f.seen.insert(rendered.clone()) {
                return;
            }
        }
        let _ = writeln!(f.lines, "{}{suffix}{rendered} {value}", f.name);
    }

    fn finish(self) -> String {
        let mut out = String::new();
        for f in self.list.iter().filter(|f| !f.lines.is_empty()) {
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            if let Some(unit) = &f.unit {
                // OpenMetrics: a unit only on a family whose name ends with `_<unit>` (so not
                // on a gauge renamed `…_value`), and counters are declared under `…_total`.
                if f.kind != Kind::Counter && f.name.ends_with(&format!("_{unit}")) {
                    let _ = writeln!(out, "# UNIT {} {unit}", f.name);
                }
            }
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            out.push_str(&f.lines);
        }
        out.push_str("# EOF\n");
        out
    }
}

/// An ordered label set.
#[derive(Debug, Clone, Default)]
struct Labels(Vec<(String, String)>);

impl Labels {
    fn session(session: &str) -> Self {
        Labels(vec![("session".into(), session.into())])
    }

    fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.push((name.into(), value.into()));
        self
    }

    /// Adds user labels, renamed when their name is taken or reserved.
    fn with_user(mut self, user: &BTreeMap<String, String>) -> Self {
        const RESERVED: &[&str] = &["le", "quantile", "job", "instance"];
        for (k, v) in user {
            let mut name = sanitize_label_name(k);
            if RESERVED.contains(&name.as_str()) || name.starts_with('_') {
                name = format!("label_{}", name.trim_start_matches('_'));
            }
            let mut candidate = name.clone();
            let mut n = 2;
            while self.0.iter().any(|(existing, _)| *existing == candidate) {
                candidate = format!("{name}_{n}");
                n += 1;
            }
            self.0.push((candidate, v.clone()));
        }
        self
    }

    fn render(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let mut out = String::from("{");
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label_value(v));
        }
        out.push('}');
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The report, family by family
// ---------------------------------------------------------------------------------------------

fn fixed(
    key: &str,
    stem: &'static str,
    unit: Option<&'static str>,
    kind: Kind,
    help: &str,
) -> Spec<'static> {
    Spec {
        key: format!("fixed:{key}"),
        stem,
        unit,
        kind,
        help: help.to_string(),
    }
}

fn session_families(families: &mut Families, report: &Report) {
    let s = &report.session;
    let info = families.family(fixed(
        "session_info",
        "session_info",
        None,
        Kind::Gauge,
        "The heimdall-perf session this report describes (always 1).",
    ));
    let labels = Labels::session(&s.name)
        .with("host", s.host.clone())
        .with("pid", s.pid.to_string())
        .with("started_at", s.started_at.clone())
        .with("crate_version", report.crate_version.clone())
        .with("schema_version", report.schema_version.to_string());
    families.sample(info, "", &labels, "1");

    let start = families.family(fixed(
        "session_start",
        "session_start_time",
        Some("seconds"),
        Kind::Gauge,
        "Start of the session, seconds since the Unix epoch.",
    ));
    families.sample(
        start,
        "",
        &Labels::session(&s.name),
        &format_value(seconds(s.start_unix_ns)),
    );

    let duration = families.family(fixed(
        "session_duration",
        "session_duration",
        Some("seconds"),
        Kind::Gauge,
        "Time from the session start to its stop (or to the snapshot while running).",
    ));
    families.sample(
        duration,
        "",
        &Labels::session(&s.name),
        &format_value(seconds(s.duration_ns)),
    );

    let active = families.family(fixed(
        "session_active",
        "session_active",
        None,
        Kind::Gauge,
        "1 if the session was still running when the report was taken, else 0.",
    ));
    families.sample(
        active,
        "",
        &Labels::session(&s.name),
        if s.active { "1" } else { "0" },
    );
}

fn span_labels(session: &str, span: &SpanStats) -> Labels {
    Labels::session(session)
        .with("thread", span.thread.clone().unwrap_or_default())
        .with(
            "thread_id",
            span.thread_id.map(|id| id.to_string()).unwrap_or_default(),
        )
        .with("path", path_label(&span.path))
}

/// The `path` label of a span: names joined by `;`, a `\` or `;` inside a name written `\\`
/// or `\;` (a span named `a;b` is `a\;b`, the path a › b is `a;b`).
fn path_label(path: &[String]) -> String {
    path.iter()
        .map(|name| name.replace('\\', "\\\\").replace(';', "\\;"))
        .collect::<Vec<_>>()
        .join(";")
}

fn span_families(families: &mut Families, session: &str, spans: &[SpanStats]) {
    if spans.is_empty() {
        return;
    }
    let duration = families.family(fixed(
        "span_duration",
        "span_duration",
        Some("seconds"),
        Kind::Histogram,
        "Duration of spans (children included) per span path and thread.",
    ));
    let self_time = families.family(fixed(
        "span_self",
        "span_self",
        Some("seconds"),
        Kind::Counter,
        "Time spent in spans themselves, children excluded, per span path and thread.",
    ));
    for span in spans {
        let labels = span_labels(session, span);
        if families.list[duration].seen.contains(&labels.render()) {
            continue;
        }
        let mut cumulative = 0u64;
        let mut last_le: Option<u64> = None;
        let mut pending: Option<(u64, u64)> = None;
        let mut buckets: Vec<(u64, u64)> = Vec::with_capacity(span.histogram.len());
        for b in &span.histogram {
            cumulative = cumulative.saturating_add(b.count);
            match last_le {
                // Equal bounds would be one bucket twice: keep the later (larger) count.
                Some(le) if le >= b.le => {
                    if let Some(p) = pending.as_mut() {
                        p.1 = cumulative;
                    }
                }
                _ => {
                    if let Some(p) = pending.take() {
                        buckets.push(p);
                    }
                    pending = Some((b.le, cumulative));
                    last_le = Some(b.le);
                }
            }
        }
        buckets.extend(pending);
        // `+Inf` and `_count` are the same figure, and never below a finite bucket.
        let count = span.count.max(cumulative);
        for (le, c) in buckets {
            let l = labels.clone().with("le", format_value(seconds(le)));
            families.sample(duration, "_bucket", &l, &c.to_string());
        }
        families.sample(
            duration,
            "_bucket",
            &labels.clone().with("le", "+Inf"),
            &count.to_string(),
        );
        families.sample(
            duration,
            "_sum",
            &labels,
            &format_value(seconds(span.total_ns)),
        );
        families.sample(duration, "_count", &labels, &count.to_string());
        families.sample(self_time, "", &labels, &format_value(seconds(span.self_ns)));
    }
}

fn metric_family(families: &mut Families, session: &str, m: &MetricReport) {
    let conversion = base_unit(&m.unit);
    let suffix = conversion.suffix.as_deref();
    let counter = m.metric_type == MetricType::Counter;
    let kind = if counter { Kind::Counter } else { Kind::Gauge };
    let stem_name = format!("metric_{}", stem(&m.name, &m.unit, suffix, kind));
    let unit_text = unit_help(&m.unit, &conversion);
    let help = if counter {
        format!(
            "Last value of the heimdall-perf counter {}{unit_text}.",
            m.name
        )
    } else {
        format!(
            "Last value of the heimdall-perf metric {}{unit_text}, of type {}.",
            m.name, m.metric_type
        )
    };
    let family = families.family(Spec {
        key: format!("metric:{}:{}:{}", m.name, m.unit, m.metric_type),
        stem: &stem_name,
        unit: suffix,
        kind,
        help,
    });
    let value = conversion.apply(m.last);
    if counter && !(value.is_finite() && value >= 0.0) {
        // A counter is a finite, non-negative total: there is nothing to say about this one.
        return;
    }
    let labels = Labels::session(session)
        .with("metric", m.name.clone())
        .with_user(&m.labels);
    families.sample(family, "", &labels, &format_value(value));
}

fn series_family(families: &mut Families, session: &str, s: &TimeSeries) {
    let Some(last) = s.points.last() else {
        return;
    };
    let conversion = base_unit(&s.unit);
    let suffix = conversion.suffix.as_deref();
    let stem_name = stem(&s.name, &s.unit, suffix, Kind::Gauge);
    let unit_text = unit_help(&s.unit, &conversion);
    let family = families.family(Spec {
        key: format!("series:{}:{}", s.name, s.unit),
        stem: &stem_name,
        unit: suffix,
        kind: Kind::Gauge,
        help: format!(
            "Last sample of the series {}{unit_text} from the {} source.",
            s.name, s.source
        ),
    });
    let labels = Labels::session(session)
        .with("series", s.name.clone())
        .with("source", s.source.clone());
    families.sample(
        family,
        "",
        &labels,
        &format_value(conversion.apply(last.last)),
    );
}

fn diagnostics_families(families: &mut Families, report: &Report) {
    let d = &report.diagnostics;
    let session = Labels::session(&report.session.name);
    for c in d.counters() {
        let kind = if c.monotonic {
            Kind::Counter
        } else {
            Kind::Gauge
        };
        let family = families.family(fixed(c.name, c.name, None, kind, c.help));
        families.sample(family, "", &session, &c.value.to_string());
    }
    if !d.sampler_failures.is_empty() {
        let failures = families.family(fixed(
            "sampler_failures",
            "sampler_failures",
            None,
            Kind::Counter,
            "Failed reads of a periodic-source figure (source/series), skipped.",
        ));
        for (figure, n) in &d.sampler_failures {
            let labels = session.clone().with("figure", figure.clone());
            families.sample(failures, "", &labels, &n.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_perf_testkit::{sample_report, HOSTILE_NAME};

    fn valid_metric_name(n: &str) -> bool {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    #[test]
    fn names_are_sanitised() {
        for (input, expected) in [
            ("fps", "fps"),
            ("system.cpu.total", "system_cpu_total"),
            ("sensor | temp", "sensor_temp"),
            ("frameLatencyP99", "frame_latency_p99"),
            ("HTTPServer", "httpserver"),
            ("9lives", "_9lives"),
            ("", "_"),
            ("||", "_"),
            ("é-cam", "cam"),
        ] {
            assert_eq!(sanitize_metric_name(input), expected, "{input:?}");
            assert!(valid_metric_name(&sanitize_metric_name(input)));
        }
        let hostile = sanitize_metric_name(HOSTILE_NAME);
        assert!(valid_metric_name(&hostile), "{hostile}");
        assert_eq!(
            hostile,
            "odd_name_with_ticks_and_script_alert_1_script_quotes"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            escape_label_value(HOSTILE_NAME),
            "odd | name `with` ticks\\nand <script>alert(1)</script> & \\\"quotes\\\""
        );
        assert_eq!(escape_help("a \"b\" \\ \n"), "a 'b' \\\\ \\n");
    }

    #[test]
    fn values_are_spelled_as_openmetrics_wants() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(1.5), "1.5");
        assert_eq!(format_value(16e9), "16000000000");
        assert_eq!(format_value(2.56e-7), "2.56e-7");
        assert_eq!(format_value(1e300), "1e300");
        assert_eq!(format_value(-0.25), "-0.25");
    }

    #[test]
    fn names_keep_known_units_once_and_unknown_units_out() {
        let g = Kind::Gauge;
        assert_eq!(stem("latency_ms", "ms", Some("seconds"), g), "latency");
        assert_eq!(stem("memory_bytes", "bytes", Some("bytes"), g), "memory");
        assert_eq!(stem("camera_fps", "fps", None, g), "camera_fps");
        assert_eq!(
            stem("latency_milliseconds", "ms", Some("seconds"), g),
            "latency"
        );
        assert_eq!(stem("size in kilobytes", "", None, g), "size_in");
        assert_eq!(stem("uptime_minutes_gauge", "", None, g), "uptime");
        assert_eq!(stem("frameCounter_ms_p99", "", None, g), "frame_p99");
        assert_eq!(stem("frames_total", "", None, Kind::Counter), "frames");
        assert_eq!(stem("frames_total", "", None, g), "frames_total");
        assert_eq!(stem("ms", "", None, g), "value");
        assert_eq!(Kind::Gauge.family_name("x_total", None), "x_total_value");
        assert_eq!(
            Kind::Gauge.family_name("x_frame", Some("count")),
            "x_frame_count_value"
        );
        assert_eq!(
            Kind::Counter.family_name("x", Some("bytes")),
            "x_bytes_total"
        );
    }

    #[test]
    fn histogram_buckets_become_cumulative_seconds() {
        let r = sample_report();
        let text = render_string(&r);
        let span = r
            .spans
            .iter()
            .find(|s| s.path == ["frame", "detect"])
            .unwrap();
        let labels = span_labels(&r.session.name, span).render();
        let prefix = format!(
            "heimdall_span_duration_seconds_bucket{}",
            &labels[..labels.len() - 1]
        );
        let buckets: Vec<(f64, u64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|rest| {
                let (le, value) = rest
                    .strip_prefix(",le=\"")
                    .and_then(|r| r.split_once("\"} "))
                    .unwrap();
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (le, value.parse().unwrap())
            })
            .collect();
        assert_eq!(buckets.len(), span.histogram.len() + 1);
        let mut running = 0;
        for (b, (le, value)) in span.histogram.iter().zip(&buckets) {
            running += b.count;
            assert_eq!(*value, running);
            assert_eq!(*le, b.le as f64 / 1e9);
        }
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, span.count)));
        assert!(buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert!(text.contains(&format!(
            "heimdall_span_duration_seconds_sum{labels} {}\n",
            format_value(span.total_ns as f64 / 1e9)
        )));
        assert!(text.contains(&format!(
            "heimdall_span_duration_seconds_count{labels} 600\n"
        )));
        assert!(text.contains(&format!(
            "heimdall_span_self_seconds_total{labels} {}\n",
            format_value(span.self_ns as f64 / 1e9)
        )));
    }

    #[test]
    fn gauges_carry_last_values_in_base_units() {
        let r = sample_report();
        let text = render_string(&r);
        let cpu = r
            .series("system.cpu.total")
            .unwrap()
            .points
            .last()
            .unwrap()
            .last;
        assert!(text.contains(&format!(
            "heimdall_system_cpu_total_ratio{{session=\"line-3 inspection\",series=\"system.cpu.total\",source=\"system\"}} {}\n",
            format_value(cpu / 100.0)
        )), "{text}");
        assert!(text.contains("# UNIT heimdall_system_memory_used_bytes bytes\n"));
        let latency = r.metric("frame_latency").unwrap().last;
        assert!(text.contains(&format!(
            "heimdall_metric_frame_latency_seconds{{session=\"line-3 inspection\",metric=\"frame_latency\"}} {}\n",
            format_value(latency / 1000.0)
        )));
        // The NaN of the hostile metric, with its label escaped-free but renamed-safe.
        assert!(text.contains(
            "heimdall_metric_sensor_temp_celsius{session=\"line-3 inspection\",metric=\"sensor | temp\",camera=\"cam-2 `left`\"} NaN\n"
        ), "{text}");
    }

    #[test]
    fn hostile_names_come_out_escaped() {
        let text = render_string(&sample_report());
        assert!(text.contains(
            "path=\"frame;odd | name `with` ticks\\nand <script>alert(1)</script> & \\\"quotes\\\"\""
        ));
        // One sample per line: no raw newline inside a label value.
        for line in text.lines() {
            assert!(
                line.starts_with('#') || line.starts_with("heimdall_"),
                "{line}"
            );
        }
    }

    #[test]
    fn every_family_is_declared_once_and_before_its_samples() {
        let text = render_string(&sample_report());
        let mut declared: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(valid_metric_name(name), "{name}");
                assert!(
                    declared.iter().all(|(n, _)| n != name),
                    "{name} declared twice"
                );
                declared.push((name.into(), kind.into()));
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let (family, kind) = declared.last().unwrap();
                let ok = match kind.as_str() {
                    "histogram" => [
                        format!("{family}_bucket"),
                        format!("{family}_sum"),
                        format!("{family}_count"),
                    ]
                    .contains(&name.to_string()),
                    "counter" => name == family && name.ends_with("_total"),
                    _ => name == family,
                };
                assert!(ok, "sample {name} under family {family} ({kind})");
            }
        }
        assert_eq!(text.lines().last(), Some("# EOF"));
    }

    #[test]
    fn colliding_names_get_distinct_families() {
        let mut r = sample_report();
        let base = r.metrics[0].clone();
        r.metrics.clear();
        r.series.truncate(1);
        for name in ["x.y", "x_y"] {
            let mut m = base.clone();
            m.name = name.into();
            m.unit = String::new();
            r.metrics.push(m);
        }
        let mut labelled = base.clone();
        labelled.name = "x.y".into();
        labelled.unit = String::new();
        labelled.labels.insert("le".into(), "x".into());
        labelled.labels.insert("metric".into(), "y".into());
        labelled.labels.insert("session".into(), "z".into());
        r.metrics.push(labelled);
        // A series whose name is the histogram's.
        let mut clash = r.series[0].clone();
        clash.name = "span.duration.seconds".into();
        clash.unit = String::new();
        r.series.push(clash);

        let text = render_string(&r);
        assert!(
            text.contains("# TYPE heimdall_metric_x_y gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE heimdall_metric_x_y_2 gauge\n"),
            "{text}"
        );
        assert!(text.contains(
            "heimdall_metric_x_y{session=\"line-3 inspection\",metric=\"x.y\",label_le=\"x\",metric_2=\"y\",session_2=\"z\"}"
        ), "{text}");
        assert!(
            text.contains("# TYPE heimdall_span_duration_seconds_2 gauge\n"),
            "{text}"
        );
        assert!(
            !text.contains("# TYPE heimdall_span_duration_seconds gauge"),
            "{text}"
        );
    }

    #[test]
    fn counters_skip_values_a_counter_cannot_have() {
        let mut r = Report::empty("s");
        let mut m = sample_report().metrics[0].clone();
        m.name = "frames_total".into();
        m.unit = String::new();
        m.metric_type = MetricType::Counter;
        m.last = 1234.0;
        r.metrics.push(m.clone());
        let text = render_string(&r);
        assert!(text.contains("# TYPE heimdall_metric_frames_total counter\n"));
        assert!(text.contains(
            "heimdall_metric_frames_total{session=\"s\",metric=\"frames_total\"} 1234\n"
        ));
        m.last = f64::NAN;
        let mut r = Report::empty("s");
        r.metrics.push(m);
        assert!(!render_string(&r).contains("heimdall_metric_frames"));
    }

    #[test]
    fn a_name_with_a_semicolon_is_not_a_path() {
        let mut r = sample_report();
        let template = r.spans[0].clone();
        r.spans = [vec!["a;b"], vec!["a", "b"], vec!["a\\;b"]]
            .into_iter()
            .map(|path| {
                let mut s = template.clone();
                s.path = path.into_iter().map(String::from).collect();
                s
            })
            .collect();
        let text = render_string(&r);
        let paths: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("heimdall_span_duration_seconds_count{"))
            .filter_map(|l| l.split("path=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(paths, [r"a\\;b", "a;b", r"a\\\\\\;b"], "{text}");
    }

    #[test]
    fn the_sink_writes_what_render_string_returns() {
        let r = sample_report();
        let mut out = Vec::new();
        OpenMetricsSink::new().render(&r, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), render_string(&r));
        assert_eq!(OpenMetricsSink::new().format_id(), "openmetrics");
        assert_eq!(OpenMetricsSink::new().file_extension(), "prom");
    }

    #[test]
    fn a_failed_write_names_the_session() {
        let e = OpenMetricsSink::new()
            .write(&sample_report(), &mut heimdall_perf_testkit::FullDisk)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot write the OpenMetrics text of session `line-3 inspection`: disk full"
        );
    }
}
