//! A single measured value and its kind.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What a [`Measurement`] measures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    /// Time a piece of code took to run.
    ExecutionTime,
    /// Delay between an event and its handling (e.g. frame capture to decision).
    Latency,
    /// Items per unit of time (e.g. frames per second).
    Throughput,
    /// Processor usage, usually in percent.
    CpuUsage,
    /// Memory usage, usually in bytes.
    MemoryUsage,
    /// A count of events.
    Counter,
    /// A value that goes up and down (e.g. a queue depth).
    Gauge,
    /// Any other kind, named by the user.
    Custom(String),
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            MetricType::ExecutionTime => "execution_time",
            MetricType::Latency => "latency",
            MetricType::Throughput => "throughput",
            MetricType::CpuUsage => "cpu_usage",
            MetricType::MemoryUsage => "memory_usage",
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Custom(name) => return write!(f, "custom:{name}"),
        };
        f.write_str(s)
    }
}

/// One measured value: what it is, how much, in which unit, when, with optional labels.
///
/// ```
/// use heimdall_perf_core::{Measurement, MetricType};
/// let m = Measurement::new("fps", MetricType::Throughput, 59.8, "fps").with_label("camera", "left");
/// assert_eq!(m.labels["camera"], "left");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Name of the metric, e.g. `fps`.
    pub name: String,
    /// Kind of metric.
    pub metric_type: MetricType,
    /// The value; NaN and infinities are kept as they are.
    #[serde(with = "crate::report::serde_f64")]
    pub value: f64,
    /// Unit of `value`, e.g. `ms`, `fps`, `%`, `bytes`.
    pub unit: String,
    /// When the value was measured, in nanoseconds since the Unix epoch.
    pub timestamp_unix_ns: u64,
    /// Optional labels (e.g. `camera=left`); measurements with other labels are other series.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Measurement {
    /// A measurement taken now.
    pub fn new(
        name: impl Into<String>,
        metric_type: MetricType,
        value: f64,
        unit: impl Into<String>,
    ) -> Self {
        Measurement {
            name: name.into(),
            metric_type,
            value,
            unit: unit.into(),
            timestamp_unix_ns: unix_now_ns(),
            labels: BTreeMap::new(),
        }
    }

    /// Adds a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the timestamp (nanoseconds since the Unix epoch).
    pub fn with_timestamp_unix_ns(mut self, timestamp_unix_ns: u64) -> Self {
        self.timestamp_unix_ns = timestamp_unix_ns;
        self
    }
}

/// Nanoseconds since the Unix epoch, now (0 if the system clock is before 1970).
pub fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
