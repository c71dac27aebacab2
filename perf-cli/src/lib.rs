//! # heimdall-perf-cli
//!
//! The `heimdall-perf` command, for the engineer who has saved sessions and wants answers:
//!
//! * `heimdall-perf render REPORT.json --format html [--output PATH] [--plugin LIB.so]…`
//!   renders a saved JSON report into any compiled-in or plugin format (stdout without
//!   `--output` or with `--output -`);
//! * `heimdall-perf summary REPORT.json` prints the top spans, the frame sources (finished,
//!   misses against the budget, latency, the most blamed cause), metrics and system peaks;
//! * `heimdall-perf diff BASE.json NEW.json [--threshold PCT] [--min-miss-rise POINTS]
//!   [--format text|md|json|html] [--flamegraph DIFF.svg]` compares two runs span by span
//!   and frame source by frame source (miss rate, latency p99) and exits 1 when something
//!   regressed (see [`diff`] for how a regression is told from noise);
//! * `heimdall-perf merge A.json B.json … --output FLEET.json` merges the saved reports of
//!   several stations into one report (see [`station_names`] for how each station is named,
//!   and `heimdall_perf::reports::merge_reports` for what is merged and how);
//! * `heimdall-perf formats [--plugin LIB.so]…` lists the available formats.
//!
//! Exit codes: 0 success (and no regression), 1 regression found by `diff`, 2 usage or input
//! error. Errors name the file and what is wrong with it; no backtrace for user errors.
//!
//! Text from a report (session, host, span, metric and unit names) and error messages
//! (clap's usage errors included) reach the terminal through [`escape_for_terminal`]: control
//! characters and bidirectional overrides are shown escaped (`\u{1b}`, `\n`, `\u{202e}`),
//! never sent raw. `render` writes the exact bytes of the format to a file or a pipe, and
//! shows them escaped line by line only on a terminal (saying so on standard error). Span paths are
//! shown by [`path_text`]: names joined by `;`, a `;` inside a name shown `\;`.
//!
//! ```
//! use heimdall_perf::reports::ReportSink;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("r.json");
//! let report = heimdall_perf_testkit::sample_report();
//! let json = heimdall_perf_report_json::JsonSink::new().render_to_string(&report).unwrap();
//! std::fs::write(&path, json).unwrap();
//! let code = heimdall_perf_cli::run_to(
//!     ["heimdall-perf", "diff", path.to_str().unwrap(), path.to_str().unwrap()],
//!     &mut Vec::new(),
//! );
//! assert_eq!(code, 0); // the same report twice: nothing regressed
//! ```

#![warn(missing_docs)]

pub mod diff;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::builder::Styles;
use clap::error::ContextValue;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use heimdall_perf::reports::{series_names, Report, ReportFormat};
use heimdall_perf::units::{Style, Unit};
use heimdall_perf::{PerfError, Registry};

use crate::diff::{Diff, Verdict};

/// Exit code when `diff` finds a regression.
pub const EXIT_REGRESSION: u8 = 1;
/// Exit code for usage and input errors.
pub const EXIT_ERROR: u8 = 2;

/// Render, summarise and compare saved heimdall-perf reports.
#[derive(Parser, Debug)]
#[command(name = "heimdall-perf", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Render a saved JSON report into another format.
    Render {
        /// The saved report (JSON).
        report: PathBuf,
        /// Format id: json, markdown (md), html, flamegraph (svg), folded, or a plugin's.
        #[arg(long, short)]
        format: String,
        /// Output file (written atomically; devices, FIFOs and links to them are written
        /// through); standard output when absent or `-`.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Load a report plugin (.so) first; repeatable.
        #[arg(long = "plugin", value_name = "LIB")]
        plugins: Vec<PathBuf>,
    },
    /// Print the top spans, frame sources, metrics and system peaks of a saved report.
    Summary {
        /// The saved report (JSON).
        report: PathBuf,
        /// How many spans to list.
        #[arg(long, default_value_t = 15)]
        top: usize,
    },
    /// Compare two runs span by span and frame source by frame source; exit 1 when
    /// something regressed.
    ///
    /// A span regresses when its mean grows by more than the threshold AND by more than
    /// three standard errors of the difference of the means,
    /// 3·sqrt(sd_base²/n_base + sd_new²/n_new), from each report's own standard deviation
    /// and count: a change must be both large and more than the runs' noise.
    ///
    /// A frame source regresses when its miss rate (missed/finished) rises beyond noise: a
    /// one-sided two-proportion z-test, z = (p_new − p_base) / sqrt(p̂(1−p̂)(1/n_base +
    /// 1/n_new)) with p̂ the pooled rate, gives z > 3, AND the rate rises by at least
    /// --min-miss-rise percentage points (so 0 → 1 missed frame of 10 000 is not a
    /// regression); or when its latency p99 rises by more than the threshold AND by more
    /// than 3·sqrt(sd_base²/n_base + sd_new²/n_new) of the latency distributions. A source
    /// in one report only is listed as added or removed.
    Diff {
        /// The reference run (JSON).
        base: PathBuf,
        /// The run to check (JSON).
        new: PathBuf,
        /// Smallest change that counts, in percent: of a span's mean, of a frame source's
        /// latency p99.
        #[arg(long, default_value_t = 5.0)]
        threshold: f64,
        /// Smallest rise of a frame source's miss rate that counts, in percentage points.
        #[arg(long, value_name = "POINTS", default_value_t = diff::DEFAULT_MIN_MISS_RISE_PCT)]
        min_miss_rise: f64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
        format: DiffFormat,
        /// Also write a differential flamegraph (red: slower, blue: faster).
        #[arg(long, value_name = "SVG")]
        flamegraph: Option<PathBuf>,
    },
    /// Merge the saved reports of several stations into one fleet report (JSON).
    ///
    /// Span and frame histograms and counts add up exactly; percentiles are read again from
    /// the merged histograms (within one bucket), never averaged. Per-station figures stay
    /// per station (threads and series are renamed `station/…`, metrics get a `station`
    /// label) and the report lists the stations side by side. A station is named after its
    /// run's `station` label, else its labels, else its file name (the folder's name for a
    /// `report.json`); two runs with the same name are told apart by their file names.
    /// Reports of different schema versions or bucket ladders are refused.
    Merge {
        /// The saved reports (JSON), one per station.
        #[arg(required = true, value_name = "REPORT")]
        reports: Vec<PathBuf>,
        /// Output file (written atomically: a failed write leaves the previous file whole);
        /// standard output when absent or `-`.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// List every available report format and where it comes from.
    Formats {
        /// Load a report plugin (.so) first; repeatable.
        #[arg(long = "plugin", value_name = "LIB")]
        plugins: Vec<PathBuf>,
    },
}

/// Output formats of `diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DiffFormat {
    Text,
    Md,
    Json,
    Html,
}

/// What can go wrong in the command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A saved report could not be read.
    #[error(transparent)]
    Report(#[from] heimdall_perf_report_json::JsonError),
    /// The library refused (unknown format, bad plugin, failed write…).
    #[error(transparent)]
    Perf(#[from] PerfError),
    /// Writing to standard output failed.
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] std::io::Error),
    /// Writing to the terminal given as `--output` failed.
    #[error("cannot write to `{}`: {source}", path.display())]
    Output {
        /// The terminal's path, as given.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A command-line value is out of range.
    #[error("{0}")]
    Usage(String),
    /// The reports could not be merged.
    #[error("cannot merge the reports: {source}{}", station_files(files))]
    Merge {
        /// The stations the error names and the files they were read from (two for the
        /// same run given twice).
        files: Vec<(String, PathBuf)>,
        /// What is wrong.
        #[source]
        source: Box<heimdall_perf::reports::MergeError>,
    },
}

/// ` (station `a` is `a.json`, station `b` is `b.json`)`, or nothing.
fn station_files(files: &[(String, PathBuf)]) -> String {
    if files.is_empty() {
        return String::new();
    }
    let each: Vec<String> = files
        .iter()
        .map(|(name, path)| format!("station `{name}` is `{}`", path.display()))
        .collect();
    format!(" ({})", each.join(", "))
}

/// The path a file is known by once links, `.` and `..` are resolved: for a file that does
/// not exist yet, its folder resolved joined with its name; the path as given if even its
/// folder cannot be resolved (reading or writing it then fails with its own error).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => path.to_path_buf(),
    }
}

/// `merge`'s files checked before anything is read: no input given twice (under another
/// path, or through a symbolic link), and the output not one of the inputs (which the fleet
/// report would replace for good).
fn check_merge_files(reports: &[PathBuf], output: Option<&Path>) -> Result<(), CliError> {
    let inputs: Vec<PathBuf> = reports.iter().map(|p| resolved(p)).collect();
    for (j, r) in inputs.iter().enumerate() {
        if let Some(i) = inputs[..j].iter().position(|q| q == r) {
            return Err(CliError::Usage(format!(
                "`{}` and `{}` are the same file (`{}`): merge each run once",
                reports[i].display(),
                reports[j].display(),
                r.display()
            )));
        }
    }
    if let Some(out) = output.filter(|o| o.as_os_str() != "-") {
        let o = resolved(out);
        if let Some(i) = inputs.iter().position(|q| *q == o) {
            return Err(CliError::Usage(format!(
                "the output `{}` is the input `{}` (`{}`): the fleet report would replace that station's run; give another output file",
                out.display(),
                reports[i].display(),
                o.display()
            )));
        }
    }
    Ok(())
}

/// Runs the command with `args` (the first is the program name) and returns its exit code.
///
/// Writes to the process's standard output; when that is a terminal, `render` shows the
/// report escaped there (see [`run_to`]) and `summary` and `diff` use colour.
pub fn main_with_args(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = stdout.lock();
    ExitCode::from(run_with(args, &mut out, terminal))
}

/// Runs the command, writing its output to `out`, and returns the exit code.
///
/// `out` is taken for a file or a pipe: `render` writes the report's exact bytes there, and
/// nothing is coloured. (Only [`main_with_args`], on a terminal, escapes what `render`
/// prints: a report can hold any character, and a file format must keep its bytes.)
pub fn run_to(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    out: &mut dyn Write,
) -> u8 {
    run_with(args, out, false)
}

/// [`run_to`], with `out` a terminal when `terminal` is true.
fn run_with(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    out: &mut dyn Write,
    terminal: bool,
) -> u8 {
    let cli = match parse(args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli, out, terminal) {
        Ok(code) => code,
        Err(CliError::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("heimdall-perf: {}", escape_for_terminal(&e.to_string()));
            EXIT_ERROR
        }
    }
}

/// The command line parsed, or the exit code once clap's message is printed: `--help` and
/// `--version` as clap prints them (exit 0); a usage error on standard error as plain text
/// escaped by [`clap_error_text`] (exit 2), since it quotes what was typed.
fn parse(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> Result<Cli, u8> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let parsed = |cmd: clap::Command| {
        cmd.try_get_matches_from(&args)
            .and_then(|m| Cli::from_arg_matches(&m))
    };
    let e = match parsed(Cli::command()) {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    if !e.use_stderr() {
        let _ = e.print();
        return Err(0);
    }
    // The message again without styling, so that it holds the values exactly as typed (clap
    // would strip escape sequences from a styled message, and only those).
    let plain = parsed(Cli::command().styles(Styles::plain()))
        .err()
        .unwrap_or(e);
    eprint!("{}", clap_error_text(&plain));
    Err(EXIT_ERROR)
}

/// A clap error (rendered without styling) made safe for a terminal: each of its lines
/// through [`escape_for_terminal`], clap's own line breaks kept; a value quoted in it (an
/// argument as typed) escaped whole, so that a line break it holds shows as `\n` and cannot
/// pass for a line of clap's.
fn clap_error_text(e: &clap::Error) -> String {
    let text = e.render().ansi().to_string();
    let mut values: Vec<String> = e
        .context()
        .flat_map(|(_, v)| match v {
            ContextValue::String(s) => vec![s.clone()],
            ContextValue::Strings(v) => v.clone(),
            _ => Vec::new(),
        })
        .filter(|v| v.contains('\n'))
        .collect();
    // At one place, the longest value first (one may contain another).
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text.as_str();
    while let Some((at, value)) = values
        .iter()
        .filter_map(|v| rest.find(v.as_str()).map(|at| (at, v)))
        .min_by_key(|(at, _)| *at)
    {
        out.push_str(&escape_lines(&rest[..at]));
        out.push_str(&escape_for_terminal(value));
        rest = &rest[at + value.len()..];
    }
    out.push_str(&escape_lines(rest));
    out
}

fn registry_with(plugins: &[PathBuf]) -> Result<std::sync::Arc<Registry>, CliError> {
    let registry = heimdall_perf::default_registry()?;
    for p in plugins {
        registry.load_plugin(p)?;
    }
    Ok(registry)
}

fn read(path: &Path) -> Result<Report, CliError> {
    Ok(heimdall_perf_report_json::read_report(path)?)
}

fn run(cli: Cli, out: &mut dyn Write, terminal: bool) -> Result<u8, CliError> {
    let color = Paint::for_terminal(terminal);
    match cli.command {
        Command::Render {
            report,
            format,
            output,
            plugins,
        } => {
            let registry = registry_with(&plugins)?;
            let report = read(&report)?;
            let format = ReportFormat::from(format.as_str());
            let render = || -> Result<Vec<u8>, CliError> {
                let sink = registry.sink(format.id())?;
                let mut buf = Vec::new();
                sink.render(&report, &mut buf)
                    .map_err(|source| PerfError::Render {
                        format: format.id().to_string(),
                        session: report.session.name.clone(),
                        path: None,
                        source,
                    })?;
                Ok(buf)
            };
            match output {
                Some(path) if path.as_os_str() != "-" => match terminal_at(&path) {
                    // `-o /dev/tty`, `-o /dev/stdout` on a terminal: shown as on standard
                    // output.
                    Some(mut tty) => {
                        let shown = for_terminal(render()?, format.id());
                        tty.write_all(&shown)
                            .and_then(|()| tty.flush())
                            .map_err(|source| CliError::Output { path, source })?;
                    }
                    None => registry.render_to_file(&report, &path, format.id())?,
                },
                _ => {
                    let mut buf = render()?;
                    if terminal {
                        buf = for_terminal(buf, format.id());
                    }
                    out.write_all(&buf).map_err(CliError::Stdout)?;
                }
            }
            Ok(0)
        }
        Command::Summary { report, top } => {
            let report = read(&report)?;
            summary(&report, top, color, out).map_err(CliError::Stdout)?;
            Ok(0)
        }
        Command::Diff {
            base,
            new,
            threshold,
            min_miss_rise,
            format,
            flamegraph,
        } => {
            if !(threshold.is_finite() && threshold >= 0.0) {
                return Err(CliError::Usage(format!(
                    "--threshold must be a non-negative percentage, not {threshold}"
                )));
            }
            if !(min_miss_rise.is_finite() && min_miss_rise >= 0.0) {
                return Err(CliError::Usage(format!(
                    "--min-miss-rise must be a non-negative number of percentage points, not {min_miss_rise}"
                )));
            }
            if flamegraph.as_ref().is_some_and(|p| p.as_os_str() == "-") {
                return Err(CliError::Usage(
                    "--flamegraph -: standard output carries the diff itself; give a file for the flamegraph".into(),
                ));
            }
            let base_report = read(&base)?;
            let new_report = read(&new)?;
            let d = diff::compare_with(
                &base_report,
                &new_report,
                diff::Rules {
                    threshold_pct: threshold,
                    min_miss_rise_pct: min_miss_rise,
                },
            );
            match format {
                DiffFormat::Text => diff_text(&d, color, out),
                DiffFormat::Md => diff_md(&d, out),
                DiffFormat::Json => serde_json::to_string_pretty(&d)
                    .map_err(std::io::Error::other)
                    .and_then(|json| writeln!(out, "{}", json_ascii_safe(&json))),
                DiffFormat::Html => diff_html(&d, out),
            }
            .map_err(CliError::Stdout)?;
            if let Some(path) = flamegraph {
                write_diff_flamegraph(&base_report, &new_report, &path)?;
            }
            Ok(if d.has_regressions() {
                EXIT_REGRESSION
            } else {
                0
            })
        }
        Command::Merge { reports, output } => {
            check_merge_files(&reports, output.as_deref())?;
            let mut runs = Vec::with_capacity(reports.len());
            for path in &reports {
                runs.push(read(path)?);
            }
            let names = station_names(&reports, &runs)?;
            let stations: Vec<(String, PathBuf)> =
                names.iter().cloned().zip(reports.iter().cloned()).collect();
            let fleet = heimdall_perf::reports::merge_reports(names.into_iter().zip(runs))
                .map_err(|source| CliError::Merge {
                    files: source
                        .stations()
                        .into_iter()
                        .filter_map(|name| stations.iter().find(|(n, _)| n == name).cloned())
                        .collect(),
                    source: Box::new(source),
                })?;
            write_json(&fleet, output.as_deref(), out)?;
            Ok(0)
        }
        Command::Formats { plugins } => {
            let registry = registry_with(&plugins)?;
            writeln!(out, "{:<14} {:<10} origin", "format", "extension")
                .map_err(CliError::Stdout)?;
            for s in registry.sinks() {
                writeln!(
                    out,
                    "{:<14} {:<10} {}",
                    escape_for_terminal(s.format_id()),
                    escape_for_terminal(s.file_extension()),
                    escape_for_terminal(&s.origin())
                )
                .map_err(CliError::Stdout)?;
            }
            Ok(0)
        }
    }
}

/// Writes `report` as pretty JSON to `path` (atomically), or to `out` when there is no path
/// or it is `-`.
fn write_json(report: &Report, path: Option<&Path>, out: &mut dyn Write) -> Result<(), CliError> {
    use heimdall_perf::reports::{AtomicWriteError, ReportSink};
    use heimdall_perf_report_json::{JsonSink, FORMAT_ID};
    let sink = JsonSink::new();
    match path {
        Some(path) if path.as_os_str() != "-" => heimdall_perf::reports::write_atomic(path, |w| {
            sink.render(report, w)
        })
        .map_err(|e| match e {
            AtomicWriteError::Io(e) => CliError::Perf(e),
            AtomicWriteError::Render(source) => CliError::Perf(PerfError::Render {
                format: FORMAT_ID.into(),
                session: report.session.name.clone(),
                path: Some(path.to_path_buf()),
                source,
            }),
        }),
        _ => {
            let json = sink.render_to_string(report).map_err(|source| {
                CliError::Perf(PerfError::Render {
                    format: FORMAT_ID.into(),
                    session: report.session.name.clone(),
                    path: None,
                    source,
                })
            })?;
            out.write_all(json.as_bytes()).map_err(CliError::Stdout)
        }
    }
}

/// The station name of each run given to `merge`, in order:
///
/// 1. its session's `station` label, if it has one;
/// 2. else its labels, `key=value` joined by `, ` (in order of key);
/// 3. else its file name without the extension — the name of the folder holding it when
///    that is `report` (a run folder's `report.json`).
///
/// When two runs get the same name, each of them is named `name (file)` instead, `file`
/// being rule 3's name; if two names are still the same (the same file given twice), it is
/// an error naming both files.
///
/// ```
/// use heimdall_perf::reports::Report;
/// use std::path::PathBuf;
/// let mut labelled = Report::empty("s");
/// labelled.session.labels.insert("line".into(), "3".into());
/// let files = [PathBuf::from("runs/east.json"), PathBuf::from("x/run-7/report.json"),
///              PathBuf::from("cell.json")];
/// let names = heimdall_perf_cli::station_names(
///     &files,
///     &[Report::empty("a"), Report::empty("b"), labelled],
/// )
/// .unwrap();
/// assert_eq!(names, ["east", "run-7", "line=3"]);
/// ```
///
/// # Errors
///
/// [`CliError::Usage`] when two files give the same name even with their file names.
pub fn station_names(files: &[PathBuf], reports: &[Report]) -> Result<Vec<String>, CliError> {
    let file_name = |path: &Path| {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        match stem.as_deref() {
            Some("report") | None => path
                .parent()
                .and_then(Path::file_name)
                .map(|d| d.to_string_lossy().into_owned())
                .or(stem)
                .unwrap_or_else(|| path.display().to_string()),
            Some(_) => stem.unwrap_or_default(),
        }
    };
    let mut names: Vec<String> = files
        .iter()
        .zip(reports)
        .map(|(path, r)| {
            let labels = &r.session.labels;
            if let Some(station) = labels.get("station").filter(|s| !s.is_empty()) {
                station.clone()
            } else if !labels.is_empty() {
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                file_name(path)
            }
        })
        .collect();
    let first: Vec<String> = names.clone();
    for (i, path) in files.iter().enumerate() {
        if first.iter().filter(|n| **n == first[i]).count() > 1 {
            let file = file_name(path);
            if file != first[i] {
                names[i] = format!("{} ({file})", first[i]);
            }
        }
    }
    for i in 0..names.len() {
        if let Some(j) = (i + 1..names.len()).find(|&j| names[j] == names[i]) {
            // Each file's name as this merge gave it (`cell-7 (b)` from its file, or from its
            // label), and where it came from.
            let how = |k: usize| {
                if names[k] == first[k] {
                    format!("station `{}`", names[k])
                } else {
                    format!("station `{}`, told apart by its file name", names[k])
                }
            };
            return Err(CliError::Usage(format!(
                "`{}` ({}) and `{}` ({}) give the same station name `{}`: merge each run once, or rename one of the files or give it a `station` label",
                files[i].display(),
                how(i),
                files[j].display(),
                how(j),
                names[i]
            )));
        }
    }
    Ok(names)
}

#[cfg(feature = "flame")]
fn write_diff_flamegraph(base: &Report, new: &Report, path: &Path) -> Result<(), CliError> {
    use heimdall_perf::flame::{FlamegraphSink, FORMAT_ID};
    let sink = FlamegraphSink::new();
    heimdall_perf::reports::write_atomic(path, |w| {
        sink.render_diff(base, new, w).map_err(Into::into)
    })
    .map_err(|e| match e {
        heimdall_perf::reports::AtomicWriteError::Io(e) => CliError::Perf(e),
        heimdall_perf::reports::AtomicWriteError::Render(source) => {
            CliError::Perf(PerfError::Render {
                format: FORMAT_ID.into(),
                session: new.session.name.clone(),
                path: Some(path.to_path_buf()),
                source,
            })
        }
    })
}

#[cfg(not(feature = "flame"))]
fn write_diff_flamegraph(_: &Report, _: &Report, path: &Path) -> Result<(), CliError> {
    Err(CliError::Perf(PerfError::Unavailable {
        what: format!("writing the differential flamegraph `{}`", path.display()),
        hint: "enable the Cargo feature `flame` of heimdall-perf-cli".into(),
    }))
}

/// The terminal `path` leads to (`/dev/tty`, `/dev/pts/3`, `/dev/stdout` when that is one),
/// opened for writing; `None` for anything else (files, pipes, other devices), which
/// [`Registry::render_to_file`] writes.
fn terminal_at(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.file_type().is_char_device() {
        return None;
    }
    let file = std::fs::OpenOptions::new().write(true).open(path).ok()?;
    file.is_terminal().then_some(file)
}

/// Rendered output about to be shown on a terminal: as it is when it is UTF-8 with no
/// character [`escape_for_terminal`] would escape but line feeds; otherwise escaped line by
/// line by [`terminal_view`], and a note on standard error says so (once) and how to get
/// the exact bytes.
fn for_terminal(buf: Vec<u8>, format: &str) -> Vec<u8> {
    match terminal_view(&buf) {
        None => buf,
        Some(shown) => {
            eprintln!(
                "heimdall-perf: note: control characters, bidirectional overrides and invalid \
                 UTF-8 in the {} output are shown escaped on this terminal (ESC as \\u{{1b}}); \
                 pipe or redirect it, or use --output FILE, for the exact bytes",
                escape_for_terminal(format)
            );
            shown.into_bytes()
        }
    }
}

/// `bytes` (a rendered report) as a terminal may show it, or `None` when they are safe as
/// they are: line feeds kept, every other unsafe character (see [`escape_for_terminal`])
/// written `\u{…}` (`\t` and `\r` for tab and carriage return), invalid UTF-8 as U+FFFD.
/// Backslashes are left single: this is a file format on view, whose own escapes
/// (`\"`, `\n` in JSON) would be unreadable doubled.
fn terminal_view(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let safe = matches!(text, std::borrow::Cow::Borrowed(_))
        && !text.chars().any(|c| c != '\n' && is_unsafe_char(c));
    if safe {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '\n' => out.push('\n'),
            c => escape_char_into(&mut out, c, false),
        }
    }
    Some(out)
}

/// ANSI styling, on only when the output is a terminal and `NO_COLOR` is unset.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn for_terminal(terminal: bool) -> Paint {
        Paint(terminal && std::env::var_os("NO_COLOR").is_none())
    }
    fn paint(self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }
}

/// How figures are written on the terminal and in Markdown: plain `-` and `inf`
/// (the HTML layout of `diff` uses [`Style::Typographic`]).
const TEXT: Style = Style::Text;

/// `v` in the unit named `unit` (`12.0 ms`, `286 MiB`, `59.9 fps`), escaped for a terminal
/// (an unknown unit is shown as its text).
fn value(v: f64, unit: &str) -> String {
    escape_for_terminal(&TEXT.value(v, &Unit::parse(unit)))
}

fn summary(r: &Report, top: usize, st: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} — {} on {}, started {}, {} spans",
        st.bold(&escape_for_terminal(&r.session.name)),
        TEXT.duration(r.session.duration_ns as f64),
        escape_for_terminal(&r.session.host),
        escape_for_terminal(&r.session.started_at),
        TEXT.count(r.span_count())
    )?;
    summary_stations(r, st, out)?;
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        st.bold(&format!(
            "{:<44} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "span", "count", "total", "self", "mean", "p95", "p99"
        ))
    )?;
    for s in r.span_totals.iter().take(top) {
        writeln!(
            out,
            "{:<44} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
            clip(&path_text(&s.path), 44),
            TEXT.count(s.count),
            TEXT.duration(s.total_ns as f64),
            TEXT.duration(s.self_ns as f64),
            TEXT.duration(s.duration.mean),
            TEXT.duration(s.duration.p95),
            TEXT.duration(s.duration.p99)
        )?;
    }
    if r.span_totals.len() > top {
        writeln!(
            out,
            "… {} more span paths",
            TEXT.count((r.span_totals.len() - top) as u64)
        )?;
    }
    summary_frames(r, st, out)?;
    if !r.metrics.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            st.bold(&format!(
                "{:<32} {:>12} {:>12} {:>12} {:>12}",
                "metric", "last", "mean", "min", "max"
            ))
        )?;
        for m in &r.metrics {
            writeln!(
                out,
                "{:<32} {:>12} {:>12} {:>12} {:>12}",
                clip(&escape_for_terminal(&m.name), 32),
                value(m.last, &m.unit),
                value(m.summary.mean, &m.unit),
                value(m.summary.min, &m.unit),
                value(m.summary.max, &m.unit),
            )?;
        }
    }
    let peaks: Vec<(&str, String)> = [
        (series_names::SYSTEM_CPU_TOTAL, "system CPU"),
        (series_names::PROCESS_CPU, "process CPU"),
        (series_names::SYSTEM_MEMORY_USED, "system memory"),
        (series_names::PROCESS_MEMORY_RESIDENT, "process memory"),
    ]
    .into_iter()
    .filter_map(|(name, label)| {
        let s = r.series(name)?;
        let overview = s.overview()?;
        Some((
            label,
            format!(
                "mean {}, peak {}",
                value(overview.mean, &s.unit),
                value(overview.peak, &s.unit)
            ),
        ))
    })
    .collect();
    if !peaks.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", st.bold("system"))?;
        for (label, text) in peaks {
            writeln!(out, "{label:<16} {text}")?;
        }
    }
    let warnings = r.diagnostics.warnings();
    if !warnings.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", st.bold("recording diagnostics"))?;
        for w in warnings {
            writeln!(out, "- {}", escape_for_terminal(&w))?;
        }
    }
    Ok(())
}

/// The stations block of `summary`, for a merged report: per station, its host, duration,
/// spans, and its frames finished and missed with the miss rate, over its sources with a
/// budget ([`StationInfo::frame_totals`](heimdall_perf::reports::StationInfo::frame_totals)),
/// as the frames block counts a source's.
fn summary_stations(r: &Report, st: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    if r.stations.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        st.bold(&format!(
            "{:<28} {:<20} {:>10} {:>9} {:>9} {:>8} {:>9}",
            "station", "host", "duration", "spans", "finished", "missed", "miss rate"
        ))
    )?;
    for s in &r.stations {
        let spans = s.spans.iter().fold(0u64, |n, p| n.saturating_add(p.count));
        let (finished, missed) = s.frame_totals();
        let rate = s
            .miss_rate()
            .map_or_else(|| "–".to_string(), |m| percent(m * 100.0, TEXT));
        writeln!(
            out,
            "{:<28} {:<20} {:>10} {:>9} {:>9} {:>8} {:>9}",
            clip(&escape_for_terminal(&s.name), 28),
            clip(&escape_for_terminal(&s.host), 20),
            TEXT.duration(s.duration_ns as f64),
            TEXT.count(spans),
            TEXT.count(finished),
            TEXT.count(missed),
            rate
        )?;
    }
    writeln!(
        out,
        "(finished, missed, miss rate: the frames of each station's sources with a budget, as the frames block counts a source's)"
    )?;
    Ok(())
}

/// The frames block of `summary`: per source, finished frames, the budget, misses and the
/// miss rate against it, latency p50 and p99, and the cause most missed frames are blamed
/// on.
fn summary_frames(r: &Report, st: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    if r.frames.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        st.bold(&format!(
            "{:<28} {:>9} {:>9} {:>8} {:>9} {:>11} {:>11}  {}",
            "frames",
            "finished",
            "budget",
            "missed",
            "miss rate",
            "latency p50",
            "latency p99",
            "most blamed"
        ))
    )?;
    for f in &r.frames {
        let none = || "–".to_string();
        let (budget, missed, rate) = match f.budget_ns {
            None => ("none".to_string(), none(), none()),
            Some(b) => (
                TEXT.duration(b as f64),
                TEXT.count(f.missed),
                if f.finished == 0 {
                    none()
                } else {
                    percent(
                        f.missed.min(f.finished) as f64 / f.finished as f64 * 100.0,
                        TEXT,
                    )
                },
            ),
        };
        let l = &f.latency.summary;
        let latency = |v: f64| {
            if l.count == 0 {
                none()
            } else {
                TEXT.duration(v)
            }
        };
        // The most blamed cause; the first of equals, as the report lists them.
        let top = f.attribution.iter().fold(
            None,
            |best: Option<&heimdall_perf::reports::Attribution>, a| match best {
                Some(b) if b.missed >= a.missed => Some(b),
                _ => Some(a),
            },
        );
        let blamed = match top {
            Some(a) if a.missed > 0 => format!(
                "{} ({} of {})",
                escape_for_terminal(&a.cause),
                TEXT.count(a.missed),
                TEXT.count(f.missed.max(a.missed))
            ),
            _ => none(),
        };
        writeln!(
            out,
            "{:<28} {:>9} {:>9} {:>8} {:>9} {:>11} {:>11}  {}",
            clip(&escape_for_terminal(&f.source), 28),
            TEXT.count(f.finished),
            budget,
            missed,
            rate,
            latency(l.p50),
            latency(l.p99),
            blamed
        )?;
    }
    Ok(())
}

/// Whether `c` must not reach a terminal as it is: control characters (C0, DEL, C1: escape
/// sequences, newlines, tabs…), the bidirectional formatting characters (U+061C, U+200E,
/// U+200F, U+202A–U+202E, U+2066–U+2069) and the line and paragraph separators.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `s` made safe to print on a terminal: `\n`, `\r` and `\t` are written as such, every other
/// unsafe character (controls such as ESC, bidirectional overrides) as `\u{…}`, and a
/// backslash as `\\`, so the output is unambiguous. The one escaping helper of the command:
/// every text from a report or an error reaches standard output or error through it.
/// (Report files show controls as the stand-ins of `heimdall_perf_core::control_picture`,
/// `␛` for ESC; a terminal gets these escapes instead, which tell `\u{1b}` typed in a name
/// from a real ESC and also cover the bidirectional overrides.)
///
/// ```
/// use heimdall_perf_cli::escape_for_terminal;
/// assert_eq!(escape_for_terminal("a\u{1b}[2Jb\n\u{202e}c\\"), "a\\u{1b}[2Jb\\n\\u{202e}c\\\\");
/// assert_eq!(escape_for_terminal("frame · détection"), "frame · détection");
/// ```
pub fn escape_for_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        escape_char_into(&mut out, c, true);
    }
    out
}

/// Appends `c` as [`escape_for_terminal`] shows it; a backslash doubled only when
/// `backslash` is true.
fn escape_char_into(out: &mut String, c: char, backslash: bool) {
    match c {
        '\\' if backslash => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_unsafe_char(c) => {
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// `s` through [`escape_for_terminal`] line by line: its line feeds kept, everything else
/// escaped.
fn escape_lines(s: &str) -> String {
    s.split('\n')
        .map(escape_for_terminal)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A span path for display: the names, each escaped by [`escape_for_terminal`], joined by
/// `;`, with a `;` inside a name shown as `\;` — so the name `a;b` (`a\;b`) is told from the
/// path a › b (`a;b`).
///
/// ```
/// use heimdall_perf_cli::path_text;
/// assert_eq!(path_text(&["frame".into(), "detect".into()]), "frame;detect");
/// assert_eq!(path_text(&["frame;detect".into()]), "frame\\;detect");
/// ```
pub fn path_text(path: &[String]) -> String {
    path.iter()
        .map(|name| escape_for_terminal(name).replace(';', "\\;"))
        .collect::<Vec<_>>()
        .join(";")
}

/// JSON text with the characters [`escape_for_terminal`] would escape that JSON leaves raw
/// (bidirectional formatting, line separators) written as `\uXXXX` escapes: the same JSON
/// value, safe on a terminal. (Such characters only occur inside JSON strings, where the
/// escape means the same character.)
fn json_ascii_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_unsafe_char(c) && !c.is_ascii() {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{:04x}", u));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` (already escaped for display) cut to `width` characters, with `…` when cut.
fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

/// A percentage: `5.00 %`.
fn percent(p: f64, style: Style) -> String {
    style.value(p, &Unit::parse("%"))
}

/// A change in percent, with its sign: `+12.5 %`, `-4.50 %` (`−4.50 %` typographic); `—`
/// when there is none.
fn change(p: Option<f64>, style: Style) -> String {
    match p {
        Some(p) if p > 0.0 && p.is_finite() => format!("+{}", percent(p, style)),
        Some(p) => percent(p, style),
        None => "—".into(),
    }
}

/// Two durations (ns), before and after: `5.10 ms → 15.1 ms`; `—` for a missing side.
fn arrow(b: Option<f64>, n: Option<f64>, style: Style) -> String {
    let f = |v: Option<f64>| v.map_or("—".to_string(), |v| style.duration(v));
    format!("{} → {}", f(b), f(n))
}

/// The figures of one compared span as text, shared by the text, Markdown and HTML layouts
/// (written in `style`: [`Style::Text`] for the terminal and Markdown,
/// [`Style::Typographic`] for HTML).
struct Cells {
    mean: String,
    change: String,
    p50: String,
    p95: String,
    p99: String,
    count: String,
}

impl Cells {
    fn of(s: &diff::SpanDiff, style: Style) -> Cells {
        let (b, n) = (s.base.as_ref(), s.new.as_ref());
        let count = |x: Option<&diff::Side>| x.map_or("—".into(), |x| style.count(x.count));
        let arrow = |f: fn(&diff::Side) -> f64| arrow(b.map(f), n.map(f), style);
        Cells {
            mean: arrow(|x| x.mean),
            change: change(s.mean_change_pct, style),
            p50: arrow(|x| x.p50),
            p95: arrow(|x| x.p95),
            p99: arrow(|x| x.p99),
            count: format!("{} → {}", count(b), count(n)),
        }
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "REGRESSED",
        Verdict::Improved => "improved",
        Verdict::Unchanged => "unchanged",
        Verdict::Added => "added",
        Verdict::Removed => "removed",
    }
}

fn counts(d: &Diff) -> String {
    let n = |v| TEXT.count(d.spans.iter().filter(|s| s.verdict == v).count() as u64);
    format!(
        "{} regressed, {} improved, {} unchanged, {} added, {} removed",
        n(Verdict::Regressed),
        n(Verdict::Improved),
        n(Verdict::Unchanged),
        n(Verdict::Added),
        n(Verdict::Removed)
    )
}

/// The figures of one compared frame source as text, shared by the text, Markdown and HTML
/// layouts.
struct FrameCells {
    /// The verdict with what made it: `REGRESSED (miss rate)`.
    verdict: String,
    /// What made the verdict: `miss rate`, `latency p99`, both, or nothing.
    why: String,
    budget: String,
    /// Miss rates before and after: `5.02 % → 11.7 %`.
    miss_rate: String,
    /// The rise of the rate in percentage points: `+6.69 pp`.
    rise: String,
    /// Missed of finished, before and after: `30/598 → 70/598`.
    missed: String,
    /// The z score, or why there is none.
    z: String,
    p99: String,
    p99_change: String,
    noise: String,
}

impl FrameCells {
    fn of(f: &diff::FrameDiff, style: Style) -> FrameCells {
        let (b, n) = (f.base.as_ref(), f.new.as_ref());
        let both = |g: &dyn Fn(&diff::FrameSide) -> String| {
            let side = |x: Option<&diff::FrameSide>| x.map_or("—".to_string(), g);
            format!("{} → {}", side(b), side(n))
        };
        let mut why = Vec::new();
        if matches!(f.verdict, Verdict::Regressed | Verdict::Improved) {
            if f.miss_rate.is_some_and(|t| t.verdict == f.verdict) {
                why.push("miss rate");
            }
            if f.latency.is_some_and(|t| t.verdict == f.verdict) {
                why.push("latency p99");
            }
        }
        let why = why.join(", ");
        let word = verdict_word(f.verdict);
        let verdict = match f.verdict {
            Verdict::Regressed | Verdict::Improved if !why.is_empty() => format!("{word} ({why})"),
            _ => word.to_string(),
        };
        let pct = |p: f64| percent(p, style);
        let (rise, z) = match (&f.miss_rate, b, n) {
            (Some(t), _, _) => (
                format!("{} pp", signed(t.rise_pct, style)),
                style.fixed(t.z, 2),
            ),
            (None, Some(b), Some(n)) if b.budget_ns.is_none() || n.budget_ns.is_none() => {
                ("—".into(), "no budget".into())
            }
            (None, Some(_), Some(_)) => ("—".into(), "no finished frame".into()),
            _ => ("—".into(), "—".into()),
        };
        FrameCells {
            verdict,
            why,
            budget: both(&|x| {
                x.budget_ns
                    .map_or("none".into(), |b| style.duration(b as f64))
            }),
            miss_rate: both(&|x| x.miss_rate.map_or("—".into(), |r| pct(r * 100.0))),
            rise,
            missed: both(&|x| format!("{}/{}", style.count(x.missed), style.count(x.finished))),
            z,
            p99: both(&|x| {
                if x.latency_count == 0 {
                    "—".into()
                } else {
                    style.duration(x.latency_p99)
                }
            }),
            p99_change: change(f.latency.and_then(|t| t.p99_change_pct), style),
            noise: f.latency.map_or("—".into(), |t| style.duration(t.noise_ns)),
        }
    }
}

/// `v` with its sign, `+` included: `+6.69`, `-1.20` (`−1.20` typographic).
fn signed(v: f64, style: Style) -> String {
    if v > 0.0 && v.is_finite() {
        format!("+{}", style.number(v))
    } else {
        style.number(v)
    }
}

/// The frames rule in one sentence, with the figures in force.
fn frames_rule(d: &Diff, style: Style) -> String {
    format!(
        "a frame source regresses when its miss rate rises beyond noise (z > {}, one-sided \
         two-proportion test) and by at least {} percentage points (pp), or its latency p99 \
         rises by more than {} and by more than {}σ of noise",
        d.miss_rate_z,
        style.number(d.min_miss_rise_pct),
        percent(d.threshold_pct, style),
        diff::NOISE_SIGMAS
    )
}

fn frame_counts(d: &Diff) -> String {
    let n = |v| TEXT.count(d.frames.iter().filter(|f| f.verdict == v).count() as u64);
    format!(
        "frame sources: {} regressed, {} improved, {} unchanged, {} added, {} removed",
        n(Verdict::Regressed),
        n(Verdict::Improved),
        n(Verdict::Unchanged),
        n(Verdict::Added),
        n(Verdict::Removed)
    )
}

fn diff_frames_text(d: &Diff, st: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    if d.frames.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "frames: {}", frames_rule(d, TEXT))?;
    for f in &d.frames {
        let c = FrameCells::of(f, TEXT);
        let word = format!("{:<10}", verdict_word(f.verdict));
        let word = match f.verdict {
            Verdict::Regressed => st.paint("1;31", &word),
            Verdict::Improved => st.paint("32", &word),
            _ => word,
        };
        writeln!(
            out,
            "{word} {:<32} miss rate {} ({}, missed {}, z {})  latency p99 {} ({}, noise {})  budget {}{}",
            clip(&escape_for_terminal(&f.source), 32),
            c.miss_rate,
            c.rise,
            c.missed,
            c.z,
            c.p99,
            c.p99_change,
            c.noise,
            c.budget,
            if c.why.is_empty() {
                String::new()
            } else {
                format!("  {} on {}", verdict_word(f.verdict).to_lowercase(), c.why)
            },
        )?;
    }
    writeln!(out, "{}", frame_counts(d))
}

/// Which stations left or joined between two merged reports, as a sentence (names escaped
/// for a terminal, in backticks), or `None` when the stations are the same.
fn stations_changed(d: &Diff) -> Option<String> {
    let list = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("`{}`", escape_for_terminal(n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !d.stations_left.is_empty() {
        parts.push(format!(
            "left (in the base only): {}",
            list(&d.stations_left)
        ));
    }
    if !d.stations_joined.is_empty() {
        parts.push(format!(
            "joined (in the new report only): {}",
            list(&d.stations_joined)
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "Stations {} — the fleets differ, so their figures compare different sets of stations",
            parts.join("; ")
        )
    })
}

fn diff_text(d: &Diff, st: Paint, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} → {} (threshold {}, noise {}σ of the mean difference)",
        escape_for_terminal(&d.base_session),
        escape_for_terminal(&d.new_session),
        percent(d.threshold_pct, TEXT),
        diff::NOISE_SIGMAS
    )?;
    if let Some(line) = stations_changed(d) {
        writeln!(out, "{}", st.bold(&line))?;
    }
    for s in &d.spans {
        let word = verdict_word(s.verdict);
        let word = match s.verdict {
            Verdict::Regressed => st.paint("1;31", &format!("{word:<10}")),
            Verdict::Improved => st.paint("32", &format!("{word:<10}")),
            _ => format!("{word:<10}"),
        };
        let c = Cells::of(s, TEXT);
        writeln!(
            out,
            "{word} {:<40} mean {:<22} {:>9}  p50 {:<22} p95 {:<22} p99 {:<22} count {}",
            clip(&path_text(&s.path), 40),
            c.mean,
            c.change,
            c.p50,
            c.p95,
            c.p99,
            c.count,
        )?;
    }
    writeln!(out, "{}", counts(d))?;
    diff_frames_text(d, st, out)
}

/// Text for a Markdown table cell: `shown` is text already escaped for display
/// ([`escape_for_terminal`], [`path_text`]), whose backslashes Markdown must keep.
fn md_cell(shown: &str) -> String {
    shown
        .chars()
        .map(|c| match c {
            '\\' => "\\\\".to_string(),
            '|' => "\\|".to_string(),
            '`' => "\\`".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            c if c.is_control() => " ".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn diff_md(d: &Diff, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "## {} → {}\n\nThreshold {}, noise {}σ of the mean difference. {}.\n",
        md_cell(&escape_for_terminal(&d.base_session)),
        md_cell(&escape_for_terminal(&d.new_session)),
        percent(d.threshold_pct, TEXT),
        diff::NOISE_SIGMAS,
        counts(d)
    )?;
    if let Some(line) = stations_changed(d) {
        writeln!(out, "**{}.**\n", md_cell(&line))?;
    }
    writeln!(
        out,
        "| verdict | span | mean | change | p50 | p95 | p99 | count |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|")?;
    for s in &d.spans {
        let c = Cells::of(s, TEXT);
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            verdict_word(s.verdict),
            md_cell(&path_text(&s.path)),
            c.mean,
            c.change,
            c.p50,
            c.p95,
            c.p99,
            c.count,
        )?;
    }
    if d.frames.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n### Frames\n\nA {}. {}.\n",
        frames_rule(d, TEXT).trim_start_matches("a "),
        frame_counts(d).replacen('f', "F", 1)
    )?;
    writeln!(
        out,
        "| verdict | source | miss rate | rise | missed / finished | z | latency p99 | change | noise | budget |"
    )?;
    writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for f in &d.frames {
        let c = FrameCells::of(f, TEXT);
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.verdict,
            md_cell(&escape_for_terminal(&f.source)),
            c.miss_rate,
            c.rise,
            c.missed,
            c.z,
            c.p99,
            c.p99_change,
            c.noise,
            c.budget,
        )?;
    }
    Ok(())
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn diff_html(d: &Diff, out: &mut dyn Write) -> std::io::Result<()> {
    let title = format!(
        "{} → {}",
        escape_for_terminal(&d.base_session),
        escape_for_terminal(&d.new_session)
    );
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>\
body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}\
td,th{{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:right}}td:nth-child(2),th:nth-child(2),td:first-child{{text-align:left}}\
.regressed{{color:#b00;font-weight:bold}}.improved{{color:#070}}</style></head><body>",
        html_escape(&title)
    )?;
    writeln!(
        out,
        "<h1>{}</h1><p>Threshold {}, noise {}σ of the mean difference. {}.</p>",
        html_escape(&title),
        html_escape(&percent(d.threshold_pct, Style::Typographic)),
        diff::NOISE_SIGMAS,
        html_escape(&counts(d))
    )?;
    if let Some(line) = stations_changed(d) {
        writeln!(out, "<p class=\"regressed\">{}.</p>", html_escape(&line))?;
    }
    writeln!(out, "<table><tr><th>verdict</th><th>span</th><th>mean</th><th>change</th><th>p50</th><th>p95</th><th>p99</th><th>count</th></tr>")?;
    for s in &d.spans {
        let c = Cells::of(s, Style::Typographic);
        let word = verdict_word(s.verdict);
        writeln!(
            out,
            "<tr class=\"{}\"><td>{word}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            word.to_lowercase(),
            html_escape(&path_text(&s.path)),
            html_escape(&c.mean),
            html_escape(&c.change),
            html_escape(&c.p50),
            html_escape(&c.p95),
            html_escape(&c.p99),
            html_escape(&c.count),
        )?;
    }
    writeln!(out, "</table>")?;
    if !d.frames.is_empty() {
        writeln!(
            out,
            "<h2>Frames</h2><p>A {}. {}.</p>",
            html_escape(frames_rule(d, Style::Typographic).trim_start_matches("a ")),
            html_escape(&frame_counts(d).replacen('f', "F", 1))
        )?;
        writeln!(out, "<table class=\"frames\"><tr><th>verdict</th><th>source</th><th>miss rate</th><th>rise</th><th>missed / finished</th><th>z</th><th>latency p99</th><th>change</th><th>noise</th><th>budget</th></tr>")?;
        for f in &d.frames {
            let c = FrameCells::of(f, Style::Typographic);
            writeln!(
                out,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                verdict_word(f.verdict).to_lowercase(),
                html_escape(&c.verdict),
                html_escape(&escape_for_terminal(&f.source)),
                html_escape(&c.miss_rate),
                html_escape(&c.rise),
                html_escape(&c.missed),
                html_escape(&c.z),
                html_escape(&c.p99),
                html_escape(&c.p99_change),
                html_escape(&c.noise),
                html_escape(&c.budget),
            )?;
        }
        writeln!(out, "</table>")?;
    }
    writeln!(out, "</body></html>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_view_escapes_all_but_line_feeds_and_keeps_backslashes() {
        assert_eq!(terminal_view(b"plain\n\"a\\nb\" \xc2\xb5s\n"), None);
        let shown =
            terminal_view("a\u{1b}[2J\tb\r\nc\u{202e}d\u{2028}e\u{85}f\u{7}\\u{1b}\n".as_bytes())
                .unwrap();
        assert_eq!(
            shown,
            "a\\u{1b}[2J\\tb\\r\nc\\u{202e}d\\u{2028}e\\u{85}f\\u{7}\\u{1b}\n"
        );
        // Invalid UTF-8 shows as U+FFFD.
        assert_eq!(terminal_view(b"x\xffy").unwrap(), "x\u{FFFD}y");
    }

    #[test]
    fn clap_errors_keep_their_lines_and_escape_the_values() {
        let e = Cli::command()
            .styles(Styles::plain())
            .try_get_matches_from(["heimdall-perf", "summary", "--top", "x\n\u{1b}[2Jy\u{202e}"])
            .unwrap_err();
        let text = clap_error_text(&e);
        assert!(
            text.starts_with("error: invalid value 'x\\n\\u{1b}[2Jy\\u{202e}' for '--top <TOP>': "),
            "{text}"
        );
        assert!(
            text.ends_with("\n\nFor more information, try '--help'.\n"),
            "{text}"
        );
        assert!(
            !text.chars().any(|c| c != '\n' && is_unsafe_char(c)),
            "{text}"
        );
    }
}
