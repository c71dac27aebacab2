//! # heimdall-perf-report-json
//!
//! The lossless form of a heimdall-perf [`Report`]: everything a session recorded, with its
//! `schema_version` and the version of the crate that wrote it. Every other format (HTML,
//! Markdown, flamegraphs, plugins) is a view of a report, so a report saved as JSON can be
//! read back with [`read_report`] / [`from_slice`] / [`from_reader`] and rendered again later
//! into any format.
//!
//! * [`JsonSink`] is the [`ReportSink`] (format id [`FORMAT_ID`], extension
//!   [`FILE_EXTENSION`]): pretty by default ([`JsonSink::new`]), compact on request
//!   ([`JsonSink::with_pretty`]). It writes with [`render`](ReportSink::render) and
//!   [`render_to_string`](ReportSink::render_to_string), like every sink.
//! * NaN and infinite values survive the round trip: they are written as the strings `"NaN"`,
//!   `"inf"` and `"-inf"` (see [`heimdall_perf_core::serde_f64`]), and finite values
//!   read back bit for bit.
//! * Reading refuses a report written by a newer heimdall-perf (a `schema_version` above
//!   [`SCHEMA_VERSION`]) before it looks at any other field, and reports truncated files,
//!   invalid JSON and wrong types with the file, line and column at fault — never a panic;
//!   the parser's error stays attached as the [source](std::error::Error::source).
//! * Reports of an older schema read back, the fields added since left empty: a schema-1
//!   report (written before frames) reads with no session `labels` and no `frames`, a
//!   schema-2 report (before merged reports) with no `stations`.
//!
//! ```
//! use heimdall_perf_core::ReportSink;
//! use heimdall_perf_report_json::{from_slice, JsonSink};
//!
//! # let report = heimdall_perf_testkit::sample_report();
//! let json = JsonSink::new().with_pretty(false).render_to_string(&report).unwrap();
//!
//! let back = from_slice(json.as_bytes()).unwrap();
//! assert_eq!(back.session.name, "line-3 inspection");
//! // NaN != NaN, so compare the text forms: nothing was lost.
//! assert_eq!(format!("{back:?}"), format!("{report:?}"));
//!
//! // A newer schema is refused with a message that says so.
//! let newer = br#"{"schema_version": 99, "whatever": []}"#;
//! let err = from_slice(newer).unwrap_err().to_string();
//! assert!(err.contains("newer heimdall-perf (schema 99"), "{err}");
//! ```

#![warn(missing_docs)]

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use heimdall_perf_core::RenderError;
use heimdall_perf_core::SCHEMA_VERSION;
use heimdall_perf_core::{Report, ReportSink};
use serde::Deserialize;

/// The format id [`JsonSink`] registers under.
pub const FORMAT_ID: &str = "json";
/// The file extension of JSON reports, without the dot.
pub const FILE_EXTENSION: &str = "json";
/// Version of this crate, for messages and listings.
pub const CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How [`from_slice`] and [`from_reader`] name their input in error messages.
const BYTES_SOURCE: &str = "<JSON bytes>";
const READER_SOURCE: &str = "<JSON reader>";

/// Everything that can go wrong writing or reading a JSON report. Every message names the
/// session or the file (or `<JSON bytes>` / `<JSON reader>` for in-memory input) at fault,
/// and, for parse errors, the line and column.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Writing the JSON of a report failed (usually the writer's I/O error).
    #[error("cannot write the JSON report of session `{session}`: {source}")]
    Write {
        /// Name of the session whose report was being written.
        session: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The report file could not be opened or read.
    #[error("cannot read the JSON report `{path}`: {source}")]
    Io {
        /// The file, or `<JSON reader>`.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The report was written by a newer heimdall-perf whose layout this build cannot know.
    #[error(
        "`{source_name}` was written by a newer heimdall-perf (schema {found}, this build reads up to {supported}); read it with a newer heimdall-perf"
    )]
    NewerSchema {
        /// The file, or `<JSON bytes>` / `<JSON reader>`.
        source_name: String,
        /// The file's `schema_version`.
        found: u64,
        /// The newest schema this build reads ([`SCHEMA_VERSION`]).
        supported: u32,
    },
    /// The input ends before the JSON document does (e.g. a file cut short by a crash).
    #[error(
        "`{source_name}` is truncated: the JSON ends early at line {line}, column {column} ({message})"
    )]
    Truncated {
        /// The file, or `<JSON bytes>` / `<JSON reader>`.
        source_name: String,
        /// Line (1-based) where the input ends.
        line: usize,
        /// Column (1-based) where the input ends.
        column: usize,
        /// What the parser expected.
        message: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The input is not valid JSON.
    #[error("`{source_name}` is not valid JSON: {message} at line {line}, column {column}")]
    Syntax {
        /// The file, or `<JSON bytes>` / `<JSON reader>`.
        source_name: String,
        /// Line (1-based) of the error.
        line: usize,
        /// Column (1-based) of the error.
        column: usize,
        /// What is wrong.
        message: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The input is valid JSON but not a heimdall-perf report of a schema this build reads:
    /// a missing field, a value of the wrong type…
    #[error(
        "`{source_name}` is not a heimdall-perf report (schema {supported}): {message} at line {line}, column {column}"
    )]
    Layout {
        /// The file, or `<JSON bytes>` / `<JSON reader>`.
        source_name: String,
        /// Line (1-based) of the error.
        line: usize,
        /// Column (1-based) of the error.
        column: usize,
        /// What is wrong (the field, the type found and the type expected).
        message: String,
        /// The schema this build reads ([`SCHEMA_VERSION`]).
        supported: u32,
        /// The parser's error (without the field path, which `message` names).
        #[source]
        source: serde_json::Error,
    },
}

/// The JSON [`ReportSink`]: format id [`FORMAT_ID`], extension [`FILE_EXTENSION`]; pretty
/// JSON unless built [`with_pretty(false)`](JsonSink::with_pretty).
///
/// ```
/// use heimdall_perf_core::{Report, ReportSink};
/// use heimdall_perf_report_json::JsonSink;
///
/// let sink = JsonSink::new();
/// assert_eq!((sink.format_id(), sink.file_extension()), ("json", "json"));
/// let json = sink.render_to_string(&Report::empty("s")).unwrap();
/// assert!(json.starts_with("{\n  \"schema_version\": 3,"));
///
/// let compact = sink.with_pretty(false).render_to_string(&Report::empty("s")).unwrap();
/// assert!(compact.starts_with("{\"schema_version\":3,") && !compact.contains('\n'));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonSink {
    pretty: bool,
}

impl Default for JsonSink {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonSink {
    /// A sink writing pretty JSON (two-space indent, one field per line, a line break at
    /// the end).
    #[must_use]
    pub fn new() -> Self {
        JsonSink { pretty: true }
    }

    /// This sink, writing pretty JSON (`true`, the default) or compact JSON (`false`: no
    /// whitespace, smaller and faster to write). Both read back the same.
    #[must_use]
    pub fn with_pretty(mut self, pretty: bool) -> Self {
        self.pretty = pretty;
        self
    }

    /// Whether the sink writes pretty JSON.
    pub fn is_pretty(&self) -> bool {
        self.pretty
    }

    /// Writes `report` as JSON into `writer`, pretty or compact as this sink was made.
    fn write_json(&self, report: &Report, writer: &mut dyn Write) -> Result<(), JsonError> {
        // serde_json issues many small writes: buffer them (the writer may be a file or a
        // `dyn Write`).
        let mut w = BufWriter::with_capacity(64 * 1024, writer);
        let written = if self.pretty {
            serde_json::to_writer_pretty(&mut w, report)
        } else {
            serde_json::to_writer(&mut w, report)
        };
        let flushed = written.and_then(|()| {
            if self.pretty {
                w.write_all(b"\n").map_err(serde_json::Error::io)?;
            }
            w.flush().map_err(serde_json::Error::io)
        });
        flushed.map_err(|source| JsonError::Write {
            session: report.session.name.clone(),
            source,
        })
    }
}

impl ReportSink for JsonSink {
    fn format_id(&self) -> &str {
        FORMAT_ID
    }

    fn file_extension(&self) -> &str {
        FILE_EXTENSION
    }

    fn render(&self, report: &Report, out: &mut dyn Write) -> Result<(), RenderError> {
        self.write_json(report, out).map_err(RenderError::from)
    }
}

/// Reads the JSON report saved at `path`.
///
/// Errors name the file: it cannot be read, it is truncated or not JSON (with line and
/// column), it was written by a newer heimdall-perf, or a field has the wrong type.
///
/// ```
/// use heimdall_perf_core::ReportSink;
/// use heimdall_perf_report_json::{read_report, JsonSink};
/// # let report = heimdall_perf_testkit::sample_report();
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("report.json");
/// std::fs::write(&path, JsonSink::new().render_to_string(&report).unwrap()).unwrap();
/// let report = read_report(&path).unwrap();
/// assert_eq!(report.session.host, "inspection-01");
///
/// std::fs::write(&path, "{\"schema_version\": 1, \"crate_version\": ").unwrap();
/// let err = read_report(&path).unwrap_err().to_string();
/// assert!(err.contains("report.json") && err.contains("truncated") && err.contains("line 1"), "{err}");
/// ```
pub fn read_report(path: impl AsRef<Path>) -> Result<Report, JsonError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| JsonError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes, &path.display().to_string())
}

/// Reads a JSON report from bytes; errors call the input `<JSON bytes>`.
pub fn from_slice(bytes: &[u8]) -> Result<Report, JsonError> {
    parse(bytes, BYTES_SOURCE)
}

/// Reads a JSON report from bytes; errors call the input `source_name` (a file name, a URL,
/// `stdin`…).
pub fn from_slice_named(bytes: &[u8], source_name: &str) -> Result<Report, JsonError> {
    parse(bytes, source_name)
}

/// Reads a JSON report from `reader` (read to the end first, which is faster than parsing
/// from a stream); errors call the input `<JSON reader>`.
pub fn from_reader<R: Read>(mut reader: R) -> Result<Report, JsonError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|source| JsonError::Io {
            path: PathBuf::from(READER_SOURCE),
            source,
        })?;
    parse(&bytes, READER_SOURCE)
}

/// Just the version field, to decide how to read the rest.
#[derive(Deserialize)]
struct Probe {
    schema_version: u64,
}

/// The UTF-8 byte order mark some editors (Notepad, PowerShell's `Out-File`) put at the
/// start of a text file. JSON forbids it (RFC 8259 §8.1) but allows readers to skip it.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn parse(bytes: &[u8], source_name: &str) -> Result<Report, JsonError> {
    // A BOM is invisible in an editor, so columns counted after it are the ones people see.
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let newer = |found: u64| JsonError::NewerSchema {
        source_name: source_name.to_string(),
        found,
        supported: SCHEMA_VERSION,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // The error and the field path where it was met (empty for the document itself).
    let read = match serde_path_to_error::deserialize::<_, Report>(&mut de) {
        // Only whitespace may follow the report.
        Ok(report) => de.end().map(|()| report).map_err(|e| (e, String::new())),
        Err(e) => {
            let path = e.path().to_string();
            Err((e.into_inner(), path))
        }
    };
    match read {
        Ok(report) if u64::from(report.schema_version) > u64::from(SCHEMA_VERSION) => {
            Err(newer(u64::from(report.schema_version)))
        }
        Ok(report) => Ok(report),
        Err((e, path)) => {
            // Before complaining about the layout, look at the version: a newer report may
            // simply have a layout this build does not know.
            if let Ok(probe) = serde_json::from_slice::<Probe>(bytes) {
                if probe.schema_version > u64::from(SCHEMA_VERSION) {
                    return Err(newer(probe.schema_version));
                }
            }
            Err(parse_error(e, &path, bytes, source_name))
        }
    }
}

/// The error for `e`, met at the field `path` (`.` for the document itself) of `bytes`.
fn parse_error(e: serde_json::Error, path: &str, bytes: &[u8], source_name: &str) -> JsonError {
    let (line, column) = (e.line(), e.column());
    let text = e.to_string();
    let message = text
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&text)
        .to_string();
    let source_name = source_name.to_string();
    let at_path = |message: String| {
        if path.is_empty() || path == "." {
            message
        } else {
            format!("`{path}`: {message}")
        }
    };
    match e.classify() {
        serde_json::error::Category::Eof => JsonError::Truncated {
            source_name,
            line,
            column,
            message,
            source: e,
        },
        // serde_json also reports some shape errors of valid JSON as syntax errors: an array
        // given where a struct is expected is read element by element as the struct's fields,
        // and an element left over is "trailing characters". If the whole input is valid
        // JSON, the fault is the layout, at `path`.
        serde_json::error::Category::Syntax
            if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() =>
        {
            let message = if message == "trailing characters" {
                "an array with more elements than the fields expected here (a JSON object was expected)".to_string()
            } else {
                message
            };
            JsonError::Layout {
                source_name,
                line,
                column,
                message: at_path(message),
                supported: SCHEMA_VERSION,
                source: e,
            }
        }
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
            let message = if line == 1 && column == 1 && bytes.first().is_some_and(|b| *b >= 0x80) {
                format!("{message} (the file does not start with JSON: it begins with the byte 0x{:02X}; is it UTF-16 or another encoding?)", bytes[0])
            } else {
                message
            };
            JsonError::Syntax {
                source_name,
                line,
                column,
                message,
                source: e,
            }
        }
        serde_json::error::Category::Data => JsonError::Layout {
            source_name,
            line,
            column,
            message: at_path(message),
            supported: SCHEMA_VERSION,
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_perf_testkit as fixtures;

    #[test]
    fn message_drops_the_duplicate_position() {
        let e = from_slice(b"{\"schema_version\": 1,\n  \"crate_version\": 7}").unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(
                e,
                JsonError::Layout {
                    line: 2,
                    column: 20,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(text.matches("line").count(), 1, "{text}");
        assert!(text.contains("expected a string"), "{text}");
    }

    #[test]
    fn parse_errors_keep_the_parser_error_as_their_source() {
        use std::error::Error as _;
        for input in [
            &b"{\"schema_version\": 1, \"crate_version\": "[..],
            b"{]",
            b"{\"schema_version\": 1,\n  \"crate_version\": 7}",
        ] {
            let e = from_slice(input).unwrap_err();
            let source = e.source().expect("a source");
            let inner = source
                .downcast_ref::<serde_json::Error>()
                .unwrap_or_else(|| panic!("{e:?}"));
            assert!(matches!(
                (&e, inner.classify()),
                (
                    JsonError::Truncated { .. },
                    serde_json::error::Category::Eof
                ) | (
                    JsonError::Syntax { .. },
                    serde_json::error::Category::Syntax
                ) | (JsonError::Layout { .. }, serde_json::error::Category::Data)
            ));
        }
        let e = read_report("/nonexistent/heimdall/report.json").unwrap_err();
        assert!(e.source().unwrap().downcast_ref::<io::Error>().is_some());
    }

    #[test]
    fn compact_has_no_newlines_and_pretty_ends_with_one() {
        let r = fixtures::sample_report();
        let compact = JsonSink::new()
            .with_pretty(false)
            .render_to_string(&r)
            .unwrap();
        let pretty = JsonSink::new().render_to_string(&r).unwrap();
        assert!(!compact.contains('\n'));
        assert!(pretty.ends_with("}\n"));
        assert!(pretty.len() > compact.len());
        // Same content either way.
        let a: serde_json::Value = serde_json::from_str(&compact).unwrap();
        let b: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn sink_metadata() {
        let s = JsonSink::default();
        assert!(s.is_pretty());
        assert!(!s.with_pretty(false).is_pretty());
        assert!(s.with_pretty(false).with_pretty(true).is_pretty());
        assert_eq!(s.format_id(), "json");
        assert_eq!(s.file_extension(), "json");
        assert_eq!(s.origin(), "built-in");
    }

    #[test]
    fn write_failure_names_the_session() {
        let e = JsonSink::new()
            .render(&fixtures::sample_report(), &mut fixtures::FullDisk)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line-3 inspection") && e.contains("disk full"),
            "{e}"
        );
    }
}
