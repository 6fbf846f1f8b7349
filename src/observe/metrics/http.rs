//! The HTTP side of the metrics endpoint: binding, one request per connection (`GET` and
//! `HEAD` of the metrics path only), read and answered under timeouts.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{
    Exposition, MAX_CLIENTS, MAX_HEADERS, MAX_REQUEST_BYTES, MetricsError, PATH, REPLY_TIMEOUT,
    REQUEST_TIMEOUT, Scrape, render,
};
use crate::clock::Clock;
use crate::observe::server::{Listener, accept_loop};
use crate::observe::stats::Stats;

/// The metrics endpoint of a running recorder: a bound TCP listener, not yet accepting.
///
/// Binding is separate from [`MetricsServer::run`] so that a recorder can refuse to start (port
/// taken) before it opens any connection or file.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Listens on `addr` (port 0 picks a free port; see [`MetricsServer::local_addr`]).
    ///
    /// # Errors
    /// [`MetricsError::InUse`] or [`MetricsError::Bind`], naming the address and the fix.
    pub async fn bind(addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| match source.kind() {
                io::ErrorKind::AddrInUse => MetricsError::InUse { addr },
                _ => MetricsError::Bind { addr, source },
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(MetricsServer { listener, addr })
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves scrapes until `shutdown` is cancelled, then returns once every client task has
    /// ended. `clock` is the recorder's, so ages agree with the receive times in `stats`.
    /// Publishes the bound address in [`Stats::metrics_addr`].
    pub async fn run(self, stats: Arc<Stats>, clock: Clock, shutdown: CancellationToken) {
        let addr = self.addr;
        let _ = stats.metrics_addr.set(addr);
        let uptime = u64::try_from(stats.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let start_ns = clock.now_ns().saturating_sub(uptime);
        tracing::info!(%addr, path = PATH, "Metrics endpoint listening.");
        accept_loop(self, MAX_CLIENTS, &shutdown, |stream| {
            let stats = Arc::clone(&stats);
            async move {
                serve_client(stream, &stats, clock, start_ns).await;
            }
        })
        .await;
        tracing::info!("Metrics endpoint closed.");
    }
}

impl Listener for MetricsServer {
    type Stream = TcpStream;

    async fn accept(&self) -> io::Result<TcpStream> {
        self.listener.accept().await.map(|(stream, _peer)| stream)
    }

    fn accept_failed(&self, error: &io::Error) {
        tracing::warn!(addr = %self.addr, %error, "Metrics endpoint accept failed.");
    }

    fn turn_away(&self, _stream: TcpStream) {
        tracing::debug!("Metrics client dropped: too many clients.");
    }
}

/// The parts of a request the server looks at.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    accept: Option<String>,
}

/// What came of reading a request head.
#[derive(Debug)]
enum Read {
    Request(Request),
    /// Closed (or failed) before a complete head.
    Closed,
    /// Not HTTP.
    Bad,
    /// Longer than [`MAX_REQUEST_BYTES`], or too many headers.
    TooLarge,
}

async fn serve_client(mut stream: TcpStream, stats: &Stats, clock: Clock, start_ns: u64) {
    let read = tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream))
        .await
        .unwrap_or(Read::Closed);
    let reply = match read {
        Read::Closed => return,
        Read::Bad => reply(400, "Bad Request", &[], "bad request\n", true),
        Read::TooLarge => reply(
            431,
            "Request Header Fields Too Large",
            &[],
            "request head too large\n",
            true,
        ),
        Read::Request(req) => {
            let head_only = req.method == "HEAD";
            if req.method != "GET" && !head_only {
                reply(
                    405,
                    "Method Not Allowed",
                    &[("Allow", "GET, HEAD")],
                    "only GET and HEAD\n",
                    true,
                )
            } else if req.path.split('?').next() != Some(PATH) {
                reply(
                    404,
                    "Not Found",
                    &[],
                    "not found; metrics are at /metrics\n",
                    !head_only,
                )
            } else {
                let format = Exposition::negotiate(req.accept.as_deref());
                let scrape = Scrape {
                    now_ns: clock.now_ns(),
                    start_ns,
                };
                let body = render(stats, &scrape, format);
                reply(
                    200,
                    "OK",
                    &[("Content-Type", format.content_type()), ("Vary", "Accept")],
                    &body,
                    !head_only,
                )
            }
        }
    };
    let _ = tokio::time::timeout(REPLY_TIMEOUT, async {
        stream.write_all(&reply).await?;
        stream.shutdown().await
    })
    .await;
}

/// Reads up to the end of the request head.
async fn read_request(stream: &mut TcpStream) -> Read {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Read::Closed,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let accept = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("accept"))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned());
                return Read::Request(Request {
                    method: req.method.unwrap_or("").to_owned(),
                    path: req.path.unwrap_or("").to_owned(),
                    accept,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_BYTES => {}
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Read::TooLarge;
            }
            Err(_) => return Read::Bad,
        }
    }
}

/// A whole HTTP/1.1 response; the body is left out (its length kept) when `with_body` is false.
pub(super) fn reply(
    code: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &str,
    with_body: bool,
) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {code} {reason}\r\n");
    if !headers.iter().any(|(k, _)| *k == "Content-Type") {
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    let _ = write!(
        head,
        "Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut out = head.into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}
