//! The text exposition format: family kinds and the names their samples take, the set of
//! families of one rendering (each declared once, names kept distinct), label sets, sample
//! values, and the text itself (`# TYPE`, `# UNIT`, `# HELP`, samples, `# EOF`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use crate::live::Flavor;
use crate::names::{escape_help, escape_label_value, sanitize_label_name, METRIC_PREFIX};

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
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

    /// Every name the family's samples use (for a counter, also the name OpenMetrics
    /// declares it under, without `_total`).
    fn sample_names(self, family: &str) -> Vec<String> {
        match self {
            Kind::Gauge => vec![family.to_string()],
            Kind::Counter => {
                let mut names = vec![family.to_string()];
                if let Some(base) = family.strip_suffix("_total") {
                    names.push(base.to_string());
                }
                names
            }
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
pub(crate) struct Families {
    list: Vec<Family>,
    by_key: HashMap<String, usize>,
    taken: HashSet<String>,
    flavor: Flavor,
    /// Histograms on the fixed bucket ladder (the live exposition).
    ladder: Option<&'static [u64]>,
}

/// What a new family is: a key that identifies its source (the same key gives the same
/// family), a name stem, a unit suffix, a kind and help text.
pub(crate) struct Spec<'a> {
    pub(crate) key: String,
    pub(crate) stem: &'a str,
    pub(crate) unit: Option<&'a str>,
    pub(crate) kind: Kind,
    pub(crate) help: String,
}

impl Families {
    /// The families of a rendering in `flavor`; histograms on the fixed bucket ladder when
    /// `on_ladder`.
    pub(crate) fn new(flavor: Flavor, on_ladder: bool) -> Self {
        Families {
            flavor,
            ladder: on_ladder.then(heimdall_perf_core::exposition_ladder),
            ..Self::default()
        }
    }

    /// The fixed bucket ladder every histogram is written on, if any.
    pub(crate) fn ladder(&self) -> Option<&'static [u64]> {
        self.ladder
    }

    /// The family for `spec`: the existing one for its key, or a new one under the first
    /// name (stem, stem_2, stem_3…) that clashes with no name already written.
    pub(crate) fn family(&mut self, spec: Spec<'_>) -> usize {
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

    /// Whether `family` already has a sample (or, for a histogram, a `_count`) with `labels`.
    pub(crate) fn has(&self, family: usize, labels: &Labels) -> bool {
        self.list[family].seen.contains(&labels.render())
    }

    /// Adds a sample `family` + `suffix` with `labels` and `value` (already formatted).
    pub(crate) fn sample(&mut self, family: usize, suffix: &str, labels: &Labels, value: &str) {
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

    /// The exposition text: every family that has samples, in order, then `# EOF`.
    pub(crate) fn finish(self) -> String {
        let mut out = String::new();
        for f in self.list.iter().filter(|f| !f.lines.is_empty()) {
            // The classic format declares a counter under its sample name (`x_total`),
            // OpenMetrics under the family name (`x`).
            let name = match (self.flavor, f.kind) {
                (Flavor::OpenMetrics, Kind::Counter) => {
                    f.name.strip_suffix("_total").unwrap_or(&f.name)
                }
                _ => f.name.as_str(),
            };
            let _ = writeln!(out, "# TYPE {name} {}", f.kind.as_str());
            if let Some(unit) = &f.unit {
                // A unit only on a family whose name ends with `_<unit>` (so not on a gauge
                // renamed `…_value`); in the classic format not on counters, which are
                // declared under `…_total`.
                let counter_ok = f.kind != Kind::Counter || self.flavor == Flavor::OpenMetrics;
                if counter_ok && name.ends_with(&format!("_{unit}")) {
                    let _ = writeln!(out, "# UNIT {name} {unit}");
                }
            }
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&f.help));
            out.push_str(&f.lines);
        }
        out.push_str("# EOF\n");
        out
    }
}

/// Label names Prometheus itself gives a meaning to (`le` of histogram buckets, `quantile`
/// of summaries, `job` and `instance` of the scrape target): user labels never take them.
const PROMETHEUS_LABELS: &[&str] = &["le", "quantile", "job", "instance"];

/// Every label name the sink writes itself, beside `session`. The session's labels go on
/// every sample, so one of these names (`path`, `thread`, `source`…) would give a sample
/// the same label twice: such a session label is written `label_<name>` instead.
pub(crate) const SINK_LABELS: &[&str] = &[
    "session",
    "host",
    "pid",
    "started_at",
    "crate_version",
    "schema_version",
    "thread",
    "thread_id",
    "path",
    "metric",
    "series",
    "source",
    "figure",
    "stage",
    "reason",
    "cause",
];

/// An ordered label set.
#[derive(Debug, Clone, Default)]
pub(crate) struct Labels(Vec<(String, String)>);

impl Labels {
    /// The label set `session="<session>"`.
    pub(crate) fn session(session: &str) -> Self {
        Labels(vec![("session".into(), session.into())])
    }

    /// The labels every sample of `report` starts with: `session`, then the session's own
    /// labels (`set_label`), renamed where they would clash (see [`SINK_LABELS`]).
    pub(crate) fn of_session(session: &str, labels: &BTreeMap<String, String>) -> Self {
        Labels::session(session).with_renamed(labels, SINK_LABELS)
    }

    /// The set with one more label.
    pub(crate) fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.push((name.into(), value.into()));
        self
    }

    /// Adds user labels (a metric's), renamed when their name is taken or reserved.
    pub(crate) fn with_user(self, user: &BTreeMap<String, String>) -> Self {
        self.with_renamed(user, &[])
    }

    /// Adds user labels under sanitised names. A name Prometheus gives a meaning to
    /// ([`PROMETHEUS_LABELS`]), one in `reserved`, or one starting with `_` (`__` is
    /// Prometheus's own) becomes `label_<name>`; a name already in the set gets `_2`, `_3`…
    fn with_renamed(mut self, user: &BTreeMap<String, String>, reserved: &[&str]) -> Self {
        for (k, v) in user {
            let mut name = sanitize_label_name(k);
            if PROMETHEUS_LABELS.contains(&name.as_str())
                || reserved.contains(&name.as_str())
                || name.starts_with('_')
            {
                name = format!("label_{}", name.trim_start_matches('_'));
            }
            let mut candidate = name.clone();
            let mut n = 2;
            while self.0.iter().any(|(existing, _)| *existing == candidate)
                || reserved.contains(&candidate.as_str())
            {
                candidate = format!("{name}_{n}");
                n += 1;
            }
            self.0.push((candidate, v.clone()));
        }
        self
    }

    /// The label names of the set, in order.
    #[cfg(test)]
    pub(crate) fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// The label set as written after a sample name: `{a="x",b="y"}`, values escaped;
    /// nothing for no labels.
    pub(crate) fn render(&self) -> String {
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

/// A sample value: `NaN`, `+Inf`, `-Inf`, or the shortest decimal that reads back exactly
/// (exponent notation for very small and very large magnitudes).
pub(crate) fn format_value(v: f64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn session_labels_never_take_a_name_the_sink_writes() {
        let user: BTreeMap<String, String> = SINK_LABELS
            .iter()
            .chain(PROMETHEUS_LABELS)
            .map(|k| (k.to_string(), format!("user {k}")))
            .chain([("label_le".to_string(), "taken".to_string())])
            .collect();
        let labels = Labels::of_session("s", &user);
        let names = labels.names();
        assert_eq!(names[0], "session");
        assert_eq!(names.len(), 1 + user.len());
        for (i, name) in names.iter().enumerate().skip(1) {
            assert!(!SINK_LABELS.contains(name), "{name}");
            assert!(!PROMETHEUS_LABELS.contains(name), "{name}");
            assert!(!names[..i].contains(name), "{name} twice");
        }
        // BTreeMap order: `label_le` comes first and keeps its name.
        assert!(names.contains(&"label_le") && names.contains(&"label_le_2"));
        assert!(names.contains(&"label_thread") && names.contains(&"label_session"));
        // Metric labels keep the older rule: only Prometheus's names are prefixed, a name
        // taken in the set is numbered.
        let m = Labels::session("s")
            .with("metric", "m")
            .with_user(&BTreeMap::from([
                ("le".to_string(), "x".to_string()),
                ("metric".to_string(), "y".to_string()),
            ]));
        assert_eq!(m.names(), ["session", "metric", "label_le", "metric_2"]);
    }

    #[test]
    fn family_names_take_their_kind_suffix() {
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
}
