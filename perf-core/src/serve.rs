//! The live endpoint (feature `serve`): a small blocking HTTP/1.1 server on `std::net`
//! (requests parsed by [`httparse`]), started by [`ProfilingManager::serve`], serving
//! `GET /metrics` (the exposition of every active session, content-negotiated by the
//! registry's [`Exposition`](crate::Exposition)), `GET /report.json` (the live snapshot)
//! and `GET /healthz`. No async runtime.
//!
//! One accept thread owns the listener and reads request heads without blocking (so idle
//! or slow clients cost no thread); a complete head goes through a bounded queue to a
//! fixed pool of `WORKERS` (4) worker threads, which render and write the answer. The
//! limits, each with the answer a client gets past it:
//!
//! * a request head (request line and headers) longer than `HEAD_LIMIT` (16 KiB), or with
//!   more than `MAX_HEADERS` (64) header lines: `431`, and the connection is closed;
//! * a connection that has not sent a whole head within `READ_TIMEOUT` (5 s; or an idle
//!   keep-alive one): closed; past `MAX_PENDING` (256) such connections, a new one closes the
//!   oldest;
//! * `QUEUE` (32) requests waiting for a worker: the next is answered `503` and closed;
//! * a client that does not read its answer: the worker gives up after `WRITE_TIMEOUT`
//!   (10 s) without progress, or `ANSWER_DEADLINE` (60 s) in all.
//!
//! HTTP/1.1 connections are kept alive (pipelined requests are answered in order) for up
//! to `MAX_REQUESTS_PER_CONNECTION` (100) requests; HTTP/1.0 ones, and any request with
//! `Connection: close` or a body, are answered and closed.
//!
//! Snapshots are taken from each session's shared state, never through the
//! `Mutex<ProfilingSession>` or `Mutex<ProfilingManager>` the program locks, so a scrape
//! does not stall the recording threads. The server stops, and its port is free again,
//! when its [`ServeHandle`] is stopped or dropped, or when the manager is dropped; that
//! waits only for the accept thread (at most one `POLL`, 20 ms), never for a client.

use std::collections::VecDeque;
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{PerfError, Result};
use crate::live::{LiveSessions, ScrapeRequest};
use crate::manager::ProfilingManager;
use crate::sink::Registry;

/// Worker threads of one endpoint, rendering and writing answers.
const WORKERS: usize = 4;

/// Requests with a complete head waiting for a worker; one more is answered `503`.
const QUEUE: usize = 32;

/// Connections still sending their request head; one more closes the oldest of them.
const MAX_PENDING: usize = 256;

/// Longest request head (request line and header lines, in bytes); a longer one is
/// answered `431` and its connection closed.
const HEAD_LIMIT: usize = 16 * 1024;

/// Most header lines of a request; more is answered `431`.
const MAX_HEADERS: usize = 64;

/// How long a connection may take to send its request head (and how long a kept-alive
/// connection may stay idle) before it is closed.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long writing an answer may make no progress (a client that does not read) before
/// the worker gives up and closes the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest time a worker spends writing one answer, however slowly the client reads.
const ANSWER_DEADLINE: Duration = Duration::from_secs(60);

/// Requests answered on one kept-alive connection before it is closed.
const MAX_REQUESTS_PER_CONNECTION: usize = 100;

/// How often the accept thread looks for new connections, request bytes and whether it
/// was told to stop, when nothing happened.
const POLL: Duration = Duration::from_millis(20);

/// How long a connection closed by the server is still read (and what is read dropped),
/// so that the client gets the answer rather than a reset, and how much is read so.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// Bytes written to a socket at once (checking the deadline and the stop flag between).
const WRITE_CHUNK: usize = 64 * 1024;

/// The format id `/report.json` renders with: the lossless JSON report, which
/// `heimdall-perf render` reads back. perf-report-json's `FORMAT_ID` is the same string; a
/// test of the facade holds the two equal.
const REPORT_FORMAT_ID: &str = "json";

/// Options of a live endpoint ([`ProfilingManager::serve_with`]).
///
/// ```
/// let options = heimdall_perf_core::ServeOptions::default().per_thread(true);
/// assert!(options.is_per_thread());
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServeOptions {
    per_thread: bool,
}

impl ServeOptions {
    /// Spans per thread (label `thread`, the thread's name) instead of merged across
    /// threads (the default). Threads of one name are merged; thread ids are never
    /// labels. Use it on a station whose thread names are few and fixed.
    #[must_use]
    pub fn per_thread(mut self, per_thread: bool) -> Self {
        self.per_thread = per_thread;
        self
    }

    /// Whether spans are exposed per thread.
    pub fn is_per_thread(&self) -> bool {
        self.per_thread
    }
}

/// Stop flag and exit signal shared by a server thread, its handle and its manager.
#[derive(Default)]
pub(crate) struct Control {
    stop: AtomicBool,
    exited: Mutex<bool>,
    cv: Condvar,
}

impl Control {
    /// Tells the server to stop and waits until it has and its port is free.
    pub(crate) fn stop_and_wait(&self) {
        self.stop.store(true, Ordering::Release);
        let mut exited = self.exited.lock().unwrap_or_else(|e| e.into_inner());
        while !*exited {
            exited = self.cv.wait(exited).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Marks the server exited when the thread ends, however it ends.
struct ExitGuard(Arc<Control>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        *self.0.exited.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.cv.notify_all();
    }
}

/// A running live endpoint. Dropping it, or [`stop`](Self::stop), stops the server and
/// frees its port; so does dropping the manager that started it.
pub struct ServeHandle {
    addr: SocketAddr,
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for ServeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeHandle")
            .field("addr", &self.addr)
            .field("running", &!self.control.stop.load(Ordering::Acquire))
            .finish()
    }
}

impl ServeHandle {
    /// The address the server listens on (the port chosen, for `…:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the endpoint, e.g. `http://127.0.0.1:9464`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits until its port is free.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.control.stop_and_wait();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl ProfilingManager {
    /// Starts the live endpoint on `addr` (e.g. `"127.0.0.1:9464"`; port 0 takes a free
    /// one, see [`ServeHandle::local_addr`]): a small blocking HTTP/1.1 server (one accept
    /// thread and 4 worker threads, with limits on request heads, idle clients and clients
    /// that do not read; see the module documentation), running until the handle is
    /// dropped or stopped, or the manager is dropped.
    ///
    /// * `GET /metrics`: the exposition of every active session of this manager (sessions
    ///   started later appear, stopped ones leave), rendered by the registry's
    ///   [`Exposition`](crate::Exposition) — the facade's OpenMetrics one, which answers
    ///   OpenMetrics or the classic Prometheus text by the scraper's `Accept` header.
    ///   Without an exposition: `503` with a message naming what to enable.
    /// * `GET /report.json`: the live snapshot of the most recent session, or of
    ///   `?session=NAME`, as the JSON report.
    /// * `GET /healthz`: `ok`.
    ///
    /// Unknown paths are `404`, methods other than `GET` and `HEAD` are `405`; a request
    /// head over 16 KiB is `431`, a request while 32 wait for a worker `503`. Binding to
    /// loopback keeps it on this machine; `0.0.0.0:9464` exposes it to the network.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use heimdall_perf_core::{ProfilingManager, Registry};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let manager = ProfilingManager::new(dir.path(), Arc::new(Registry::new()))?;
    /// let server = manager.serve("127.0.0.1:0")?;
    /// assert!(server.local_addr().ip().is_loopback());
    /// // A second endpoint on the same port is refused, naming the address.
    /// let taken = server.local_addr().to_string();
    /// let e = manager.serve(taken.as_str()).unwrap_err().to_string();
    /// assert!(e.contains(&taken), "{e}");
    /// server.stop();
    /// # Ok::<(), heimdall_perf_core::PerfError>(())
    /// ```
    pub fn serve<A: ToSocketAddrs + fmt::Display>(&self, addr: A) -> Result<ServeHandle> {
        self.serve_with(addr, ServeOptions::default())
    }

    /// [`serve`](Self::serve) with options (spans per thread).
    pub fn serve_with<A: ToSocketAddrs + fmt::Display>(
        &self,
        addr: A,
        options: ServeOptions,
    ) -> Result<ServeHandle> {
        let error = |source| PerfError::Serve {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(&addr).map_err(error)?;
        let local = listener.local_addr().map_err(error)?;
        listener.set_nonblocking(true).map_err(error)?;
        let control = Arc::new(Control::default());
        let live = Arc::downgrade(&self.live);
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(QUEUE);
        let (back_tx, back_rx) = mpsc::channel::<Conn>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let worker = Worker {
            control: Arc::clone(&control),
            live: live.clone(),
            registry: Arc::clone(self.registry()),
            options,
        };
        let spawn_error = |name: String| move |source| PerfError::Thread { name, source };
        for i in 0..WORKERS {
            // Workers are not joined: each ends once the accept thread has ended and the
            // answer it is writing, if any, is written or given up (bounded by the write
            // timeouts), so stopping never waits for a client.
            let name = format!("heimdall-perf-serve-{}-w{i}", local.port());
            let (worker, jobs, back) = (worker.clone(), Arc::clone(&jobs_rx), back_tx.clone());
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || worker.run(&jobs, &back))
                .map_err(spawn_error(name))?;
        }
        drop(back_tx);
        let thread_control = Arc::clone(&control);
        let name = format!("heimdall-perf-serve-{}", local.port());
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let _exit = ExitGuard(Arc::clone(&thread_control));
                // Moved into the body, declared after the guard: the listener is closed
                // (its port free) before the guard says the server exited. Left as a
                // capture, it would close only after the body returned, and a manager
                // dropped (which waits for the guard, not for the thread) could leave
                // the port taken for a moment.
                let listener = Listening(listener);
                accept_loop(&listener.0, &thread_control, &live, &jobs_tx, &back_rx);
            })
            .map_err(spawn_error(name))?;
        let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        servers.retain(|c| c.strong_count() > 0);
        servers.push(Arc::downgrade(&control));
        Ok(ServeHandle {
            addr: local,
            control,
            thread: Some(thread),
        })
    }
}

/// The listener, taken out of the listening state before it is closed, however the
/// accept thread ends. Closing the descriptor alone is not enough: a process that another
/// thread of the program is spawning holds a copy of every descriptor between its fork and
/// its exec, and while it does the port stays taken (a CI failure: `promtool` spawned by
/// one test while another stopped its server and bound the port again). `shutdown(2)`
/// acts on the socket, not on the descriptor, so every copy stops listening at once.
struct Listening(TcpListener);

impl Drop for Listening {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: the descriptor is the listener's, open until after this call. An
            // error (a platform that refuses it on a listening socket) leaves the close.
            unsafe { libc::shutdown(self.0.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }
}

/// Stops every server a manager started (called when it is dropped).
pub(crate) fn stop_all(servers: &Mutex<Vec<Weak<Control>>>) {
    let servers = std::mem::take(&mut *servers.lock().unwrap_or_else(|e| e.into_inner()));
    for c in servers.iter().filter_map(Weak::upgrade) {
        c.stop_and_wait();
    }
}

/// A connection, with the bytes read from it and not yet answered.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// When it was accepted, or when its last answer was written.
    since: Instant,
    /// Requests answered on it so far.
    served: usize,
    /// Answered and to be closed (its writing side is shut down already).
    closing: bool,
}

/// What reading a pending connection came to.
enum Progress {
    /// No whole head yet, nothing more to read now.
    Waiting,
    /// The client closed, or the connection failed.
    Closed,
    /// A whole request head.
    Head(Head),
    /// A head that is refused (400, 431): answered, then the connection is closed.
    Refuse(Reply),
}

/// A parsed request head, owned.
#[derive(Debug)]
struct Head {
    method: String,
    target: String,
    /// The `Accept` headers, joined by `, `.
    accept: Option<String>,
    /// Whether the connection may carry another request after this one.
    keep_alive: bool,
    /// The length of the head in the connection's buffer.
    len: usize,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
            since: Instant::now(),
            served: 0,
            closing: false,
        }
    }

    /// Reads what the (non-blocking) socket has, up to a whole head or the limit.
    fn progress(&mut self) -> Progress {
        let mut chunk = [0u8; 4096];
        loop {
            match parse_head(&self.buf) {
                Ok(Some(head)) => return Progress::Head(head),
                Ok(None) if self.buf.len() < HEAD_LIMIT => {}
                Ok(None) => return Progress::Refuse(too_large(&self.buf)),
                Err(reply) => return Progress::Refuse(reply),
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Progress::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Progress::Waiting,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Progress::Closed,
            }
        }
    }
}

/// The answer to a head over the limits: `414` if the request line alone is, else `431`.
fn too_large(buf: &[u8]) -> Reply {
    if !buf[..buf.len().min(HEAD_LIMIT)].contains(&b'\n') {
        return Reply::text(
            414,
            format!(
                "the request target is too long: the request head is at most {HEAD_LIMIT} bytes\n"
            ),
        );
    }
    Reply::text(
        431,
        format!("the request head is too large: at most {HEAD_LIMIT} bytes and {MAX_HEADERS} header lines\n"),
    )
}

/// The head at the start of `buf`: `Ok(None)` while incomplete, `Err` with the answer for
/// a malformed or oversized one.
fn parse_head(buf: &[u8]) -> std::result::Result<Option<Head>, Reply> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(too_large(buf)),
        Err(e) => return Err(Reply::text(400, format!("bad request: {e}\n"))),
    };
    if len > HEAD_LIMIT {
        return Err(too_large(buf));
    }
    let mut accept: Option<String> = None;
    let mut close = request.version != Some(1);
    for h in request.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("accept") {
            match &mut accept {
                Some(a) => {
                    a.push_str(", ");
                    a.push_str(&value);
                }
                None => accept = Some(value.into_owned()),
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            || (h.name.eq_ignore_ascii_case("content-length") && value.trim() != "0")
        {
            // A body is never read: the connection cannot carry another request.
            close = true;
        }
    }
    Ok(Some(Head {
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or_default().to_string(),
        accept,
        keep_alive: !close,
        len,
    }))
}

/// A request for a worker.
struct Job {
    conn: Conn,
    head: Head,
}

/// The accept thread: accepts connections, reads their heads without blocking, hands
/// whole ones to the workers; until told to stop or the manager is gone. The listener is
/// closed (the port free) when it returns.
fn accept_loop(
    listener: &TcpListener,
    control: &Control,
    live: &Weak<LiveSessions>,
    jobs: &SyncSender<Job>,
    back: &Receiver<Conn>,
) {
    let mut pending: VecDeque<Conn> = VecDeque::new();
    let mut lingering: VecDeque<Linger> = VecDeque::new();
    while !control.stop.load(Ordering::Acquire) && live.strong_count() > 0 {
        let mut busy = false;
        for _ in 0..MAX_PENDING {
            match listener.accept() {
                Ok((stream, _)) => {
                    busy = true;
                    if stream.set_nonblocking(true).is_ok() {
                        let _ = stream.set_nodelay(true);
                        pending.push_back(Conn::new(stream));
                    }
                }
                // Nothing more to accept now; or an error of one connection, or out of
                // file descriptors: tried again at the next poll.
                Err(_) => break,
            }
        }
        // Connections whose answer is written: kept alive, to read their next request,
        // or to be closed.
        for conn in back.try_iter() {
            if conn.closing {
                lingering.push_back(Linger::new(conn.stream));
            } else {
                pending.push_back(conn);
            }
        }
        while pending.len() > MAX_PENDING {
            pending.pop_front();
        }
        while lingering.len() > MAX_PENDING {
            lingering.pop_front();
        }
        for _ in 0..lingering.len() {
            if let Some(mut l) = lingering.pop_front() {
                if let Some(read) = l.drain() {
                    busy |= read;
                    lingering.push_back(l);
                }
            }
        }
        for _ in 0..pending.len() {
            let Some(mut conn) = pending.pop_front() else {
                break;
            };
            match conn.progress() {
                Progress::Waiting if conn.since.elapsed() < READ_TIMEOUT => {
                    pending.push_back(conn);
                }
                Progress::Waiting | Progress::Closed => {}
                Progress::Head(head) => {
                    busy = true;
                    match jobs.try_send(Job { conn, head }) {
                        Ok(()) => {}
                        Err(TrySendError::Full(job)) => lingering.push_back(refuse(
                            job.conn.stream,
                            Reply::text(503, "the live endpoint is busy: try again shortly\n")
                                .with_header("Retry-After", "1"),
                        )),
                        Err(TrySendError::Disconnected(_)) => {}
                    }
                }
                Progress::Refuse(reply) => {
                    busy = true;
                    lingering.push_back(refuse(conn.stream, reply));
                }
            }
        }
        if !busy {
            std::thread::sleep(POLL);
        }
    }
}

/// Answers a refused request on the accept thread and closes: the stream is non-blocking,
/// so a client that does not read gets what fits in the socket's buffer, never a wait.
fn refuse(mut stream: TcpStream, reply: Reply) -> Linger {
    let _ = write_reply(&mut stream, &reply, false, true, None);
    let _ = stream.shutdown(Shutdown::Write);
    Linger::new(stream)
}

/// A connection the server has answered and shut down for writing, read until the client
/// closes it (or [`LINGER_TIME`], [`LINGER_BYTES`]): closing a socket with unread bytes
/// resets the connection, and the client may lose the answer.
struct Linger {
    stream: TcpStream,
    since: Instant,
    drained: usize,
}

impl Linger {
    fn new(stream: TcpStream) -> Self {
        Linger {
            stream,
            since: Instant::now(),
            drained: 0,
        }
    }

    /// Reads what is there: `None` when done (the connection is then closed), else whether
    /// anything was read.
    fn drain(&mut self) -> Option<bool> {
        let mut scratch = [0u8; 4096];
        let mut read = false;
        loop {
            if self.drained > LINGER_BYTES || self.since.elapsed() > LINGER_TIME {
                return None;
            }
            match self.stream.read(&mut scratch) {
                Ok(0) => return None,
                Ok(n) => {
                    self.drained += n;
                    read = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Some(read),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }
}

/// What a worker needs to answer requests.
#[derive(Clone)]
struct Worker {
    control: Arc<Control>,
    live: Weak<LiveSessions>,
    registry: Arc<Registry>,
    options: ServeOptions,
}

impl Worker {
    /// Answers requests until the accept thread has ended (the channel is closed).
    fn run(&self, jobs: &Mutex<Receiver<Job>>, back: &Sender<Conn>) {
        loop {
            let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok(Job { mut conn, head }) = job else {
                return;
            };
            if self.control.stop.load(Ordering::Acquire) {
                continue;
            }
            let Some(sessions) = self.live.upgrade() else {
                continue;
            };
            let reply = answer(&head, &sessions, &self.registry, &self.options);
            drop(sessions);
            conn.served += 1;
            let keep_alive = head.keep_alive && conn.served < MAX_REQUESTS_PER_CONNECTION;
            let ready = conn.stream.set_nonblocking(false).is_ok()
                && conn.stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_ok();
            let written = ready
                && write_reply(
                    &mut conn.stream,
                    &reply,
                    head.method == "HEAD",
                    !keep_alive,
                    Some(&self.control),
                );
            if written && conn.stream.set_nonblocking(true).is_ok() {
                if keep_alive {
                    conn.buf.drain(..head.len);
                    conn.since = Instant::now();
                } else {
                    let _ = conn.stream.shutdown(Shutdown::Write);
                    conn.closing = true;
                }
                // Back to the accept thread, to read the next request or until the client
                // closes; refused (and the connection closed) once that thread has ended.
                let _ = back.send(conn);
            }
        }
    }
}

/// Writes `reply` (only its head for `HEAD`); `false` if the client is gone, does not
/// read (the write timeout), the answer took longer than [`ANSWER_DEADLINE`], or the
/// server was told to stop meanwhile.
fn write_reply(
    stream: &mut TcpStream,
    reply: &Reply,
    head_only: bool,
    close: bool,
    control: Option<&Control>,
) -> bool {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
        reply.status,
        reason(reply.status),
        reply.body.len()
    );
    let headers = std::iter::once(("Content-Type", reply.content_type.as_str()))
        .chain(reply.extra.iter().copied());
    for (name, value) in headers {
        // A value that is not printable ASCII is left out (it cannot be a header value).
        if value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let body: &[u8] = if head_only { &[] } else { &reply.body };
    let deadline = Instant::now() + ANSWER_DEADLINE;
    for part in [head.as_bytes(), body] {
        for chunk in part.chunks(WRITE_CHUNK) {
            let stopped = control.is_some_and(|c| c.stop.load(Ordering::Acquire));
            if stopped || Instant::now() > deadline || stream.write_all(chunk).is_err() {
                return false;
            }
        }
    }
    stream.flush().is_ok()
}

/// The reason phrase of the statuses the endpoint answers.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The origin form (`/path?query`) of a request target, which may also be in the
/// absolute form (`http://host:port/path?query`, RFC 9112 §3.2.2).
fn origin_form(target: &str) -> String {
    for scheme in ["http://", "https://"] {
        let is_scheme = target
            .get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme));
        if is_scheme {
            let rest = &target[scheme.len()..];
            return match rest.find(['/', '?']) {
                Some(i) if rest[i..].starts_with('/') => rest[i..].to_string(),
                Some(i) => format!("/{}", &rest[i..]),
                None => "/".to_string(),
            };
        }
    }
    target.to_string()
}

/// Answers one request; never panics, whatever the request.
fn answer(
    head: &Head,
    sessions: &LiveSessions,
    registry: &Registry,
    options: &ServeOptions,
) -> Reply {
    let target = origin_form(&head.target);
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    if !matches!(head.method.as_str(), "GET" | "HEAD") {
        return Reply::text(
            405,
            format!("{} is not allowed here: use GET\n", head.method),
        )
        .with_header("Allow", "GET, HEAD");
    }
    match path {
        "/metrics" => metrics(head.accept.as_deref(), query, sessions, registry, options),
        "/report.json" => report_json(query, sessions, registry),
        "/healthz" => Reply::text(200, "ok\n"),
        "/" => Reply::text(
            200,
            "heimdall-perf live endpoint: /metrics, /report.json, /healthz\n",
        ),
        other => Reply::text(
            404,
            format!(
                "no page `{}` here: try /metrics, /report.json or /healthz\n",
                other.escape_debug()
            ),
        ),
    }
}

fn metrics(
    accept: Option<&str>,
    query: &str,
    sessions: &LiveSessions,
    registry: &Registry,
    options: &ServeOptions,
) -> Reply {
    let exposition = match registry.exposition() {
        Ok(e) => e,
        Err(e) => return Reply::text(503, format!("{e}\n")),
    };
    let format = query_param(query, "format");
    let reports = sessions.snapshots();
    let scrape = ScrapeRequest {
        accept,
        format: format.as_deref(),
        per_thread: options.per_thread,
    };
    match exposition(&reports, &scrape) {
        Ok(s) => Reply {
            status: s.status,
            content_type: s.content_type,
            body: s.body.into_bytes(),
            extra: Vec::new(),
        },
        Err(e) => Reply::text(500, format!("cannot render the live metrics: {e}\n")),
    }
}

fn report_json(query: &str, sessions: &LiveSessions, registry: &Registry) -> Reply {
    let name = query_param(query, "session");
    let Some(report) = sessions.snapshot_of(name.as_deref()) else {
        return Reply::text(
            404,
            match name {
                Some(n) => format!("no active session is named `{}`\n", n.escape_debug()),
                None => "no session is active\n".to_string(),
            },
        );
    };
    let sink = match registry.sink(REPORT_FORMAT_ID) {
        Ok(s) => s,
        Err(e) => return Reply::text(503, format!("{e}\n")),
    };
    match sink.render_to_string(&report) {
        Ok(body) => Reply {
            status: 200,
            content_type: "application/json".into(),
            body: body.into_bytes(),
            extra: Vec::new(),
        },
        Err(e) => Reply::text(500, format!("cannot render the live report: {e}\n")),
    }
}

/// An answer, before it is written.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    extra: Vec<(&'static str, &'static str)>,
}

impl Reply {
    fn text(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8".into(),
            body: body.into().into_bytes(),
            extra: Vec::new(),
        }
    }

    fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.extra.push((name, value));
        self
    }
}

/// The value of `key` in a query string (`a=1&b=x%20y`), percent- and `+`-decoded.
fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            query_param("a=1&session=line%203+x", "session").as_deref(),
            Some("line 3 x")
        );
        assert_eq!(
            query_param("format=prometheus", "format").as_deref(),
            Some("prometheus")
        );
        assert_eq!(query_param("", "format"), None);
        assert_eq!(query_param("x=%zz%4", "x").as_deref(), Some("%zz%4"));
        assert_eq!(query_param("x=%ff", "x").as_deref(), Some("\u{fffd}"));
    }

    #[test]
    fn absolute_form_targets_become_origin_form() {
        assert_eq!(origin_form("http://h:1/metrics?x=1"), "/metrics?x=1");
        assert_eq!(origin_form("HTTPS://h"), "/");
        assert_eq!(origin_form("http://h?format=text"), "/?format=text");
        assert_eq!(origin_form("/healthz"), "/healthz");
        assert_eq!(origin_form("httpx://h/a"), "httpx://h/a");
    }

    #[test]
    fn heads_are_parsed_within_limits() {
        let head = parse_head(b"GET /m HTTP/1.1\r\nAccept: a\r\naccept: b\r\n\r\nGET")
            .unwrap()
            .unwrap();
        assert_eq!(
            (head.method.as_str(), head.target.as_str(), head.len),
            ("GET", "/m", 41)
        );
        assert_eq!(head.accept.as_deref(), Some("a, b"));
        assert!(head.keep_alive);
        for closing in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
        ] {
            assert!(!parse_head(closing).unwrap().unwrap().keep_alive);
        }
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost:").unwrap().is_none());
        assert_eq!(parse_head(b"\x16\x03\x01\r\n\r\n").unwrap_err().status, 400);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: x\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse_head(many.as_bytes()).unwrap_err().status, 431);
        let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(HEAD_LIMIT));
        assert_eq!(parse_head(long_line.as_bytes()).unwrap_err().status, 414);
        let long_head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "x".repeat(HEAD_LIMIT));
        assert_eq!(parse_head(long_head.as_bytes()).unwrap_err().status, 431);
    }
}
