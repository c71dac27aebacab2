//! The live endpoint (feature `serve`): a small blocking HTTP server ([`tiny_http`]) on its
//! own thread, started by [`ProfilingManager::serve`], serving `GET /metrics` (the
//! exposition of every active session, content-negotiated by the registry's
//! [`Exposition`](crate::Exposition)), `GET /report.json` (the live snapshot) and
//! `GET /healthz`. No async runtime.
//!
//! Snapshots are taken from each session's shared state, never through the
//! `Mutex<ProfilingSession>` or `Mutex<ProfilingManager>` the program locks, so a scrape
//! does not stall the recording threads. The server stops, and its port is free again,
//! when its [`ServeHandle`] is stopped or dropped, or when the manager is dropped.

use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response, Server};

use crate::error::{PerfError, Result};
use crate::live::{LiveSessions, ScrapeRequest};
use crate::manager::ProfilingManager;
use crate::sink::Registry;

/// The format id `/report.json` renders with: the lossless JSON report, which
/// `heimdall-perf render` reads back. perf-report-json's `FORMAT_ID` is the same string; a
/// test of the facade holds the two equal.
const REPORT_FORMAT_ID: &str = "json";

/// How often the server thread looks whether it was told to stop (between requests).
const POLL: Duration = Duration::from_millis(100);

/// How long a stopping server waits for its port to be released by the accept thread.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

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
    /// one, see [`ServeHandle::local_addr`]): a small blocking HTTP server on its own
    /// thread, running until the handle is dropped or stopped, or the manager is dropped.
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
    /// Unknown paths are `404`, methods other than `GET` and `HEAD` are `405`. Binding to
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
        let server = Server::from_listener(listener, None)
            .map_err(|e| error(std::io::Error::other(e.to_string())))?;
        let control = Arc::new(Control::default());
        let live = Arc::downgrade(&self.live);
        let registry = Arc::clone(self.registry());
        let thread_control = Arc::clone(&control);
        let thread = std::thread::Builder::new()
            .name(format!("heimdall-perf-serve-{}", local.port()))
            .spawn(move || {
                let _exit = ExitGuard(Arc::clone(&thread_control));
                run(server, local, &thread_control, &live, &registry, &options);
            })
            .map_err(|source| PerfError::Thread {
                name: format!("heimdall-perf-serve-{}", local.port()),
                source,
            })?;
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

/// Stops every server a manager started (called when it is dropped).
pub(crate) fn stop_all(servers: &Mutex<Vec<Weak<Control>>>) {
    let servers = std::mem::take(&mut *servers.lock().unwrap_or_else(|e| e.into_inner()));
    for c in servers.iter().filter_map(Weak::upgrade) {
        c.stop_and_wait();
    }
}

/// The server loop: answers requests until told to stop or the manager is gone, then
/// closes the listener and waits until the port is free.
fn run(
    server: Server,
    local: SocketAddr,
    control: &Control,
    live: &Weak<LiveSessions>,
    registry: &Registry,
    options: &ServeOptions,
) {
    while !control.stop.load(Ordering::Acquire) {
        let Some(sessions) = live.upgrade() else {
            break;
        };
        match server.recv_timeout(POLL) {
            Ok(Some(request)) => answer(request, &sessions, registry, options),
            Ok(None) => {}
            Err(e) => {
                // The accept thread has ended (e.g. out of file descriptors): nothing more
                // will come in.
                eprintln!("heimdall-perf: the live endpoint on {local} stopped: {e}");
                break;
            }
        }
    }
    drop(server);
    wait_until_released(local);
}

/// Waits (boundedly) until nothing listens on `addr` any more: tiny_http closes its
/// listener on its accept thread, just after the server is dropped.
fn wait_until_released(addr: SocketAddr) {
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let deadline = Instant::now() + RELEASE_WAIT;
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&target, Duration::from_millis(100)) {
            Ok(_) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => return,
        }
    }
}

/// Answers one request; never panics, whatever the request.
fn answer(request: Request, sessions: &LiveSessions, registry: &Registry, options: &ServeOptions) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let reply = if !matches!(request.method(), Method::Get | Method::Head) {
        Reply::text(
            405,
            format!("{} is not allowed here: use GET\n", request.method()),
        )
        .with_header("Allow", "GET, HEAD")
    } else {
        match path {
            "/metrics" => metrics(&request, query, sessions, registry, options),
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
    };
    // A client that went away is no concern of the server.
    let _ = request.respond(reply.into_response());
}

fn metrics(
    request: &Request,
    query: &str,
    sessions: &LiveSessions,
    registry: &Registry,
    options: &ServeOptions,
) -> Reply {
    let exposition = match registry.exposition() {
        Ok(e) => e,
        Err(e) => return Reply::text(503, format!("{e}\n")),
    };
    let accept = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Accept"))
        .map(|h| h.value.as_str().to_string());
    let format = query_param(query, "format");
    let reports = sessions.snapshots();
    let scrape = ScrapeRequest {
        accept: accept.as_deref(),
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

/// An answer, before it becomes a tiny_http response.
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

    fn into_response(self) -> Response<std::io::Cursor<Vec<u8>>> {
        let mut r = Response::from_data(self.body).with_status_code(self.status);
        let headers = std::iter::once(("Content-Type", self.content_type.as_str()))
            .chain(self.extra.iter().copied());
        for (name, value) in headers {
            // Only a header that is not valid ASCII is refused: then it is left out.
            if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                r.add_header(h);
            }
        }
        r
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
}
