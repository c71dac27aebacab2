//! The streamed trace: a capture window appended to its file batch by batch
//! (`ProfilingSession::stream_trace`), a file that is complete JSON after every batch.
//!
//! The Trace Event Format document lets a writer that ends abruptly leave out the closing
//! `]` of the *array* form, and `chrome://tracing` repairs that. Perfetto, which is what
//! people open traces in today, does not: its JSON importer refuses a file that ends inside
//! `traceEvents` ("JSON trace file is incomplete", `json_trace_tokenizer.cc`). So a streamed
//! trace never relies on that tolerance: each batch is written together with the closing
//! `]}` over the previous closing, in one positioned write, so that between two writes the
//! file is always a whole JSON document — a process that dies mid-capture leaves a trace of
//! everything up to its last batch, which every loader (and `serde_json`) reads. The stream's
//! closing record, `streamEnd` after `traceEvents`, is written when the window closes; a
//! trace without it was cut short.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use heimdall_perf_core::{StreamEnd, StreamHeader, TraceBatch, TraceStream, TraceStreamFactory};
use serde::Serialize;

use crate::{us, write_frame, write_span, Event, Events, NameArgs, SortArgs, SPANS_PID};

/// A span name shared by every path that has it.
struct Name(Arc<str>);

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// What closes the file while the stream runs.
const TAIL: &[u8] = b"\n]}\n";

/// Events are written (with the closing) whenever this many bytes of them are waiting: a
/// large batch is several writes, each leaving the file whole, and the writer's memory
/// stays this size whatever the batch.
const COMMIT_BYTES: usize = 1 << 20;

/// The most buffer kept between batches.
const KEPT_BUFFER: usize = 64 << 10;

/// Refuses what takes no positioned writes: a pipe or a socket (a stream rewrites its
/// closing after every batch).
fn refuse_unseekable(meta: &std::fs::Metadata) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        let what = if t.is_fifo() {
            Some("a pipe (FIFO)")
        } else if t.is_socket() {
            Some("a socket")
        } else if meta.is_dir() {
            Some("a directory")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("it is {what}: a trace stream rewrites its closing after every batch, so it needs a regular file (or a device such as /dev/null)"),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

/// The factory the registry uses to open streamed captures (the facade sets it):
/// [`StreamWriter::create`].
pub fn stream_factory() -> TraceStreamFactory {
    Arc::new(|path: &Path, header: &StreamHeader| {
        StreamWriter::create(path, header).map(|w| Box::new(w) as Box<dyn TraceStream>)
    })
}

#[derive(Serialize)]
struct StreamInfo {
    start_us: f64,
    window_us: f64,
    max_events: u64,
    closing: &'static str,
}

#[derive(Serialize)]
struct StreamOtherData<'a> {
    session: &'a str,
    host: &'a str,
    pid: u32,
    started_at: &'a str,
    start_unix_ns: u64,
    labels: &'a std::collections::BTreeMap<String, String>,
    crate_version: &'a str,
    spans_from: &'static str,
    partial: bool,
    stream: StreamInfo,
}

#[derive(Serialize)]
struct StreamEndRecord {
    start_us: f64,
    end_us: f64,
    spans: u64,
    frames: u64,
    dropped: u64,
    closed_by: &'static str,
}

/// A streamed capture's file: the Chrome Trace Event object form, its events appended in
/// batches (spans as `X` events per thread, frames as async slices on a process per
/// source, as [`TraceSink`](crate::TraceSink) writes them), always ending in a closing
/// that makes the file whole.
///
/// Within a batch, events are in the order the aggregator settled them (a span at its end,
/// so a parent follows its children, and a parent that ends in the next batch comes after
/// them): viewers order events by their timestamps. Spans are written as recorded (a span
/// ended after its parent, which [`TraceSink`](crate::TraceSink) shortens, is left as is).
/// Incidents are not marked (the flight recorder picks the worst frames only at the end);
/// missed frames carry `args.missed`.
///
/// ```
/// use heimdall_perf_core::{ProfilingSession, Registry, scope};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let registry = Arc::new(Registry::new());
/// registry.set_trace_stream(heimdall_perf_report_trace::stream_factory());
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("line.trace.json");
///
/// let mut session = ProfilingSession::with_registry("doc", registry);
/// session.stream_trace(&path, Duration::from_secs(3600)).unwrap();
/// for _ in 0..3 {
///     let _s = scope!("grab");
/// }
/// session.stop(); // closes the stream
///
/// let trace: serde_json::Value =
///     serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
/// let spans = trace["traceEvents"].as_array().unwrap().iter().filter(|e| e["ph"] == "X");
/// assert_eq!(spans.count(), 3);
/// assert_eq!(trace["streamEnd"]["spans"], 3);
/// assert_eq!(trace["streamEnd"]["closed_by"], "stopped");
/// ```
pub struct StreamWriter {
    file: File,
    /// Where the closing starts: every event so far lies before it.
    end: u64,
    events: Events<Vec<u8>>,
    /// Path index → (thread id, path): every path of earlier batches.
    paths: Vec<(u64, Arc<[Name]>)>,
    /// Every distinct path, kept once for all the threads that run it.
    distinct: HashMap<Vec<String>, Arc<[Name]>>,
    /// Threads named so far.
    threads: HashMap<u64, ()>,
    /// Frame source → its process id.
    sources: HashMap<String, u64>,
    /// Span names, each kept once for every path that has it.
    names: HashSet<Arc<str>>,
    finished: bool,
    /// Whether the file is a regular file (a device such as `/dev/null` takes the writes
    /// but cannot be truncated or synced).
    regular: bool,
}

impl std::fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("end", &self.end)
            .field("paths", &self.paths.len())
            .field("finished", &self.finished)
            .finish()
    }
}

impl StreamWriter {
    /// Creates (or replaces) the file at `path` and writes the trace's opening — its
    /// metadata and the name of the session's process — and its closing.
    pub fn create(path: &Path, header: &StreamHeader) -> io::Result<Self> {
        // Checked before opening: opening a pipe with no reader would block.
        let regular = match std::fs::metadata(path) {
            Ok(m) => {
                refuse_unseekable(&m)?;
                m.is_file()
            }
            Err(_) => true,
        };
        let mut file = File::create(path)?;
        let mut head = Vec::new();
        head.extend_from_slice(br#"{"displayTimeUnit":"ns","otherData":"#);
        let other = StreamOtherData {
            session: &header.session,
            host: &header.host,
            pid: header.pid,
            started_at: &header.started_at,
            start_unix_ns: header.start_unix_ns,
            labels: &header.labels,
            crate_version: &header.crate_version,
            spans_from: "stream",
            partial: false,
            stream: StreamInfo {
                start_us: us(header.start_ns),
                window_us: us(header.window_ns),
                max_events: header.max_events,
                closing: "streamEnd, after traceEvents, gives the spans and frames written and dropped when the window closed; a trace without it was cut short (the process ended mid-capture) and holds every batch written before.",
            },
        };
        serde_json::to_writer(&mut head, &other)?;
        head.extend_from_slice(br#","traceEvents":["#);
        let mut events = Events::new(head);
        events.event(&Event::new(
            "M",
            0,
            SPANS_PID,
            0,
            "process_name",
            NameArgs {
                name: &header.session,
            },
        ))?;
        events.event(&Event::new(
            "M",
            0,
            SPANS_PID,
            0,
            "process_sort_index",
            SortArgs { sort_index: 0 },
        ))?;
        let end = events.out.len() as u64;
        events.out.extend_from_slice(TAIL);
        file.write_all(&events.out)?;
        events.out.clear();
        Ok(StreamWriter {
            file,
            end,
            events,
            paths: Vec::new(),
            distinct: HashMap::new(),
            threads: HashMap::new(),
            sources: HashMap::new(),
            names: HashSet::new(),
            finished: false,
            regular,
        })
    }

    /// Writes the buffered events and `closing` at the end of the events, in one write.
    fn commit(&mut self, closing: &[u8]) -> io::Result<()> {
        let events = self.events.out.len() as u64;
        self.events.out.extend_from_slice(closing);
        let written = write_at(&self.file, &self.events.out, self.end);
        self.events.out.clear();
        // A large batch grew the buffer: let it go (the next quiet batches need little).
        if self.events.out.capacity() > KEPT_BUFFER {
            self.events.out = Vec::new();
        }
        if let Err(e) = written {
            // Put back the closing of the batches before (over bytes the file had, so it
            // needs no new space): the file stays whole, without this batch.
            if self.regular {
                let _ = write_at(&self.file, TAIL, self.end)
                    .and_then(|()| self.file.set_len(self.end + TAIL.len() as u64));
            }
            return Err(e);
        }
        self.end += events;
        Ok(())
    }
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(bytes, at)
}

#[cfg(not(unix))]
fn write_at(mut file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(at))?;
    file.write_all(bytes)
}

impl TraceStream for StreamWriter {
    fn append(&mut self, batch: &TraceBatch<'_>) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other("the trace stream is closed"));
        }
        if batch.first_path != self.paths.len() {
            return Err(io::Error::other(format!(
                "batch paths start at {}, {} were written",
                batch.first_path,
                self.paths.len()
            )));
        }
        for p in batch.new_paths {
            if self.threads.insert(p.thread_id, ()).is_none() {
                self.events.event(&Event::new(
                    "M",
                    0,
                    SPANS_PID,
                    p.thread_id,
                    "thread_name",
                    NameArgs { name: &p.thread },
                ))?;
            }
            let path = match self.distinct.get(&p.path) {
                Some(kept) => Arc::clone(kept),
                None => {
                    let names = &mut self.names;
                    let path: Arc<[Name]> = p
                        .path
                        .iter()
                        .map(|n| match names.get(n.as_str()) {
                            Some(kept) => Name(Arc::clone(kept)),
                            None => {
                                let kept: Arc<str> = Arc::from(n.as_str());
                                names.insert(Arc::clone(&kept));
                                Name(kept)
                            }
                        })
                        .collect();
                    self.distinct.insert(p.path.clone(), Arc::clone(&path));
                    path
                }
            };
            self.paths.push((p.thread_id, path));
        }
        for t in batch.spans {
            let Some((tid, path)) = self.paths.get(t.span) else {
                continue;
            };
            write_span(&mut self.events, *tid, path, t, t.duration_ns)?;
            if self.events.out.len() >= COMMIT_BYTES {
                self.commit(TAIL)?;
            }
        }
        for f in batch.frames {
            let next = SPANS_PID + 1 + self.sources.len() as u64;
            let pid = match self.sources.get(&f.source) {
                Some(&pid) => pid,
                None => {
                    self.sources.insert(f.source.clone(), next);
                    self.events.event(&Event::new(
                        "M",
                        0,
                        next,
                        0,
                        "process_name",
                        NameArgs { name: &f.source },
                    ))?;
                    self.events.event(&Event::new(
                        "M",
                        0,
                        next,
                        0,
                        "process_sort_index",
                        SortArgs {
                            sort_index: next - SPANS_PID,
                        },
                    ))?;
                    next
                }
            };
            write_frame(&mut self.events, pid, f, false)?;
            if self.events.out.len() >= COMMIT_BYTES {
                self.commit(TAIL)?;
            }
        }
        self.commit(TAIL)
    }

    fn finish(&mut self, end: &StreamEnd) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        let mut closing = b"\n],\"streamEnd\":".to_vec();
        serde_json::to_writer(
            &mut closing,
            &StreamEndRecord {
                start_us: us(end.start_ns),
                end_us: us(end.end_ns),
                spans: end.spans,
                frames: end.frames,
                dropped: end.dropped,
                closed_by: end.reason,
            },
        )?;
        closing.extend_from_slice(b"}\n");
        self.commit(&closing)?;
        self.finished = true;
        if self.regular {
            self.file.set_len(self.end + closing.len() as u64)?;
            self.file.sync_all()?;
        }
        Ok(())
    }
}
