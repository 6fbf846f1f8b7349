//! The WebSocket client behind a small interface: dial (TCP, an optional HTTP CONNECT proxy,
//! TLS), upgrade, next frame, send text or ping, close.
//!
//! Everything wsrec knows about the WebSocket library (yawc) lives in this module (yawc itself
//! is named only in this file), so swapping it (tokio-tungstenite is the fallback) touches one
//! place. yawc does the framing, fragment
//! reassembly, UTF-8 checks, auto-pong and permessage-deflate. wsrec does the rest itself, each
//! for a reason found in yawc 0.5:
//!
//! - **The HTTP upgrade** ([`connect`]). yawc's handshake turns a refusal into a bare status
//!   code, so the `Retry-After` of a 429 or 503 would be lost, and it has no HTTP CONNECT proxy
//!   (only SOCKS5). wsrec writes the upgrade request, reads the response head (bounded in size,
//!   under the handshake timeout), checks it as RFC 6455 4.1 says a client must, and hands the
//!   stream to [`WebSocket::from_stream_with_extensions`].
//! - **The extension answer.** Only what was offered is accepted (RFC 6455 9.1, RFC 7692 7.1),
//!   and yawc gets the answer rewritten into the form its parser reads, because yawc silently
//!   treats an answer it cannot parse as "no compression" and would then fail on the first
//!   compressed frame.
//! - **A frame-header check on the raw bytes** ([`Wire`]). yawc drops the mask bit of incoming
//!   frames, so a masked frame's scrambled payload would be recorded as the message; RFC 6455 5.1
//!   says the client must fail the connection instead. The same check rejects a 64-bit length
//!   with its top bit set (5.2).
//! - **A ping-flood limit.** yawc queues one pong per ping and sends the queue only when reading
//!   would wait, so a server that pings nonstop grows that queue.
//! - **No compressed sends.** With deflate negotiated, wsrec still sends its few small messages
//!   (subscribe, app pings) uncompressed, which RFC 7692 allows: nothing to gain, and it stays
//!   clear of the compressed-send bug once reported against yawc (yawc#7).
//!
//! TLS is rustls with the aws-lc-rs provider, trusting Mozilla's roots (compiled in) plus the
//! system's store plus an optional per-stream CA file; `insecure` turns verification off.
//!
//! Layout: this file holds the interface and the connect sequence; `handshake.rs` the HTTP
//! upgrade, `proxy.rs` HTTP CONNECT, `wire.rs` the checked byte stream under yawc, `tls.rs` the
//! rustls setup, `http.rs` the one plain HTTP request a venue may need before a connect (a
//! connect token), over the same TCP, proxy and TLS path.

mod handshake;
pub mod http;
mod proxy;
mod stamp;
mod tls;
mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures::SinkExt;
use rustls::ClientConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Host;
use yawc::{Frame, OpCode, Options, Role, WebSocket};

use crate::config::{Compression, ProxySetting, StreamConfig, TsSource, mask_url};
use crate::error::ConfigError;

pub use handshake::{
    MAX_RESPONSE_HEAD, ResponseHead, check_upgrade, negotiate_extensions, parse_head,
    parse_retry_after,
};
pub use proxy::{HttpProxy, no_proxy_matches, proxy_from_env};
pub use tls::tls_config;
pub use wire::{FrameScan, ScanError, Wire};

use handshake::{MAX_QUOTED_BODY, printable, read_head, upgrade_request};
use stamp::{Stamp, Tcp};
use wire::Io;

/// Size of the socket read buffer: one read takes up to ~160 small frames at flood rate, yet
/// 1,000 quiet streams hold 32 MiB, not 64 MiB (the buffer is a moving window, so over time
/// every page of it becomes resident). A larger frame grows it for that frame only.
const READ_BUFFER: usize = 32 * 1024;
/// Window over which server pings are counted.
const PING_WINDOW: Duration = Duration::from_secs(1);
/// More pings than this within `PING_WINDOW` (1 s) is a ping flood. Real servers ping every few
/// seconds at most; each ping costs a queued pong.
pub const MAX_PINGS_PER_WINDOW: u32 = 100;

/// What a connection needs to dial.
#[derive(Clone)]
pub struct ConnectSpec {
    /// The feed URL.
    pub url: url::Url,
    /// Extra handshake headers (values are secrets: never logged).
    pub headers: Vec<(String, String)>,
    /// TLS settings for `wss://` and an `https://` token endpoint (`None` for a plain `ws://`
    /// stream: no root store is loaded for it).
    pub tls: Option<Arc<ClientConfig>>,
    /// Deadline for TCP connect, proxy, TLS and upgrade together.
    pub handshake_timeout: Duration,
    /// Largest accepted message.
    pub max_message_size: usize,
    /// The permessage-deflate offer, if compression is on.
    pub deflate: Option<DeflateOffer>,
    /// The HTTP CONNECT proxy to dial through, if any.
    pub proxy: Option<HttpProxy>,
    /// Longest `Retry-After` honoured.
    pub retry_after_max: Duration,
    /// Take receive times from the kernel (`ts_source = "kernel"`, see [`Connection::received_ns`]).
    pub kernel_ts: bool,
}

impl fmt::Debug for ConnectSpec {
    /// Header values and proxy credentials never show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectSpec")
            .field("url", &mask_url(self.url.as_str()))
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("deflate", &self.deflate)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl ConnectSpec {
    /// The dialling part of a stream's config: URL, headers, TLS, compression offer and proxy
    /// (`proxy = "env"` reads the environment here, once).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the stream and field: a bad URL, CA file or proxy.
    pub fn from_config(s: &StreamConfig) -> Result<ConnectSpec, ConfigError> {
        let field = |f: &str, message: String| ConfigError::Invalid {
            field: format!("stream `{}`: {f}", s.name),
            message,
        };
        let url = crate::config::validate_url(&s.url, &crate::config::NoVenues)
            .map_err(|m| field("url", m))?;
        // An https:// connect token endpoint (KuCoin) takes the stream's TLS settings too.
        let https_token = s
            .token_url
            .as_deref()
            .is_some_and(|t| t.starts_with("https://"));
        let tls = if url.scheme() == "wss" || https_token {
            Some(tls_config(s.ca_file.as_deref(), s.insecure).map_err(|m| field("ca_file", m))?)
        } else {
            // Still say at startup that a configured CA file is unusable.
            if let Some(path) = &s.ca_file {
                tls::read_ca_file(path).map_err(|m| field("ca_file", m))?;
            }
            None
        };
        let proxy = match &s.proxy {
            None => None,
            Some(ProxySetting::Url(u)) => Some(HttpProxy::parse(u).map_err(|m| field("proxy", m))?),
            Some(ProxySetting::Env) => {
                proxy_from_env(&url, |k| std::env::var(k).ok()).map_err(|m| field("proxy", m))?
            }
        };
        let deflate = (s.compression == Compression::Deflate).then_some(DeflateOffer {
            server_max_window_bits: s.deflate_server_max_window_bits,
            server_no_context_takeover: s.deflate_server_no_context_takeover,
        });
        Ok(ConnectSpec {
            url,
            headers: s
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect(),
            tls,
            handshake_timeout: s.handshake_timeout,
            max_message_size: usize::try_from(s.max_message_size).unwrap_or(usize::MAX),
            deflate,
            proxy,
            retry_after_max: s.retry_after_max,
            kernel_ts: s.ts_source == TsSource::Kernel,
        })
    }
}

/// What wsrec asks for in its permessage-deflate offer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateOffer {
    /// `server_max_window_bits=N`, if set.
    pub server_max_window_bits: Option<u8>,
    /// `server_no_context_takeover`.
    pub server_no_context_takeover: bool,
}

impl DeflateOffer {
    /// The `Sec-WebSocket-Extensions` request value. `client_max_window_bits` (no value) tells
    /// the server it may limit our window; we never compress, so any limit is fine.
    pub(crate) fn header_value(&self) -> String {
        let mut v = String::from("permessage-deflate; client_max_window_bits");
        if let Some(bits) = self.server_max_window_bits {
            v.push_str(&format!("; server_max_window_bits={bits}"));
        }
        if self.server_no_context_takeover {
            v.push_str("; server_no_context_takeover");
        }
        v
    }
}

/// Why a connection attempt or an open connection failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The handshake did not finish in time.
    #[error(
        "handshake timed out after {after:?} {phase}; raise handshake_timeout if the server is just slow"
    )]
    Timeout {
        /// The deadline.
        after: Duration,
        /// What was being waited for.
        phase: &'static str,
    },
    /// The server answered the upgrade with an HTTP status other than 101 or a redirect (3xx).
    #[error("{}", refusal_message(*.code, .reason, *.retry_after, .body))]
    Refused {
        /// HTTP status code.
        code: u16,
        /// Reason phrase from the status line.
        reason: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// The start of the response body, printable characters only.
        body: String,
    },
    /// The server answered the upgrade with a redirect (3xx). wsrec does not follow it: the
    /// config names the endpoint to record.
    #[error("{}", redirect_message(*.code, .location.as_deref()))]
    Redirected {
        /// HTTP status code.
        code: u16,
        /// The `Location` header, secrets masked, if there was one.
        location: Option<String>,
    },
    /// A message was larger than `max_message_size`.
    #[error(
        "message larger than max_message_size ({0} bytes); raise max_message_size to accept it"
    )]
    TooLarge(usize),
    /// Any other failure: DNS, TCP, proxy, TLS, HTTP upgrade, protocol or I/O.
    #[error("{0}")]
    Failed(String),
}

impl TransportError {
    /// The wait the server asked for with `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TransportError::Refused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status of an upgrade answered with anything but 101 (a refusal or a redirect).
    pub fn http_status(&self) -> Option<u16> {
        match self {
            TransportError::Refused { code, .. } | TransportError::Redirected { code, .. } => {
                Some(*code)
            }
            _ => None,
        }
    }

    /// Where a redirect pointed (secrets masked).
    pub fn location(&self) -> Option<&str> {
        match self {
            TransportError::Redirected { location, .. } => location.as_deref(),
            _ => None,
        }
    }
}

fn redirect_message(code: u16, location: Option<&str>) -> String {
    match location {
        Some(to) => format!("server redirected (HTTP {code}) to {to}; put that URL in the config"),
        None => format!(
            "server answered HTTP {code} (a redirect) without a Location header; check the URL"
        ),
    }
}

fn refusal_message(code: u16, reason: &str, retry_after: Option<Duration>, body: &str) -> String {
    let mut m = format!("server answered HTTP {code}");
    if !reason.is_empty() {
        m.push(' ');
        m.push_str(reason);
    }
    m.push_str(" instead of 101 Switching Protocols");
    if let Some(wait) = retry_after {
        m.push_str(&format!(" (Retry-After: {}s)", wait.as_secs()));
    }
    let hint = match code {
        200 => "; the URL is served by a plain web server, not a WebSocket endpoint",
        400 => "; the server rejected the request: check the URL and headers",
        401 | 403 => "; check the URL's credentials and the headers (API key, token)",
        404 => "; check the URL path",
        426 => "; the server wants another protocol version",
        429 => "; rate limited: wsrec waits as asked before reconnecting",
        502..=504 => "; the server or a gateway in front of it is unavailable",
        _ => "",
    };
    m.push_str(hint);
    if !body.is_empty() {
        m.push_str(&format!("; body: {body:?}"));
    }
    m
}

/// A frame as the recorder sees it.
#[derive(Debug)]
pub enum Incoming {
    /// A complete text message (UTF-8 checked).
    Text(Bytes),
    /// A complete binary message.
    Binary(Bytes),
    /// A ping from the server (already answered).
    Ping,
    /// A pong from the server.
    Pong,
    /// The server closed the connection.
    Close {
        /// Close code, if the frame had one.
        code: Option<u16>,
        /// Close reason text.
        reason: String,
    },
}

/// An open WebSocket connection.
pub struct Connection {
    /// The yawc socket over the checked byte stream.
    ws: WebSocket<Wire>,
    /// For the too-large error message.
    max_message_size: usize,
    /// The permessage-deflate parameters in force, if negotiated.
    extensions: Option<String>,
    /// Start of the current ping-counting window.
    ping_window: Instant,
    /// Pings seen in the current window.
    pings: u32,
    /// Kernel receive times, when they are on.
    stamp: Option<Stamp>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

/// What [`connect`] is doing, for the timeout message.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Phase {
    Tcp,
    Proxy,
    Tls,
    Upgrade,
}

impl Phase {
    const ALL: [Phase; 4] = [Phase::Tcp, Phase::Proxy, Phase::Tls, Phase::Upgrade];

    fn describe(self) -> &'static str {
        match self {
            Phase::Tcp => "while connecting over TCP",
            Phase::Proxy => "waiting for the proxy's answer to CONNECT",
            Phase::Tls => "in the TLS handshake",
            Phase::Upgrade => "waiting for the server's answer to the WebSocket upgrade request",
        }
    }
}

/// Dials, goes through the proxy, negotiates TLS and upgrades, all within the handshake
/// timeout.
///
/// # Errors
/// [`TransportError::Timeout`] naming the phase, [`TransportError::Refused`] with the HTTP
/// status (and `Retry-After`), [`TransportError::Redirected`] with the status and `Location`,
/// or [`TransportError::Failed`] with the cause and the fix.
pub async fn connect(spec: &ConnectSpec) -> Result<Connection, TransportError> {
    let phase = AtomicU8::new(Phase::Tcp as u8);
    match tokio::time::timeout(spec.handshake_timeout, handshake(spec, &phase)).await {
        Ok(result) => result,
        Err(_) => Err(TransportError::Timeout {
            after: spec.handshake_timeout,
            phase: Phase::ALL[usize::from(phase.load(Relaxed)).min(3)].describe(),
        }),
    }
}

/// An open byte stream to a host ([`open`]).
struct Opened {
    io: Io,
    host: Host<String>,
    port: u16,
    /// Kernel receive times of the TCP data, when asked for and available.
    stamp: Option<Stamp>,
}

/// The byte stream to `url`'s host: TCP, through the stream's proxy if it has one, then TLS
/// for `wss://` and `https://` (with the stream's TLS settings). Returns it with the host and
/// port (and with `stamped`, its kernel receive times); `phase` follows along for the timeout
/// message.
async fn open(
    spec: &ConnectSpec,
    url: &url::Url,
    phase: &AtomicU8,
    stamped: bool,
) -> Result<Opened, TransportError> {
    let host = url
        .host()
        .map(|h| h.to_owned())
        .ok_or_else(|| TransportError::Failed("the URL has no host".to_owned()))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| TransportError::Failed("the URL has no port".to_owned()))?;
    let authority = authority(&host, port);
    let tcp = match &spec.proxy {
        None => dial(&host, port).await?,
        Some(proxy) => {
            let tcp = dial(&proxy.host, proxy.port)
                .await
                .map_err(|e| TransportError::Failed(format!("proxy {}: {e}", proxy.masked)))?;
            phase.store(Phase::Proxy as u8, Relaxed);
            proxy::tunnel(tcp, proxy, &authority).await?
        }
    };
    let _ = tcp.set_nodelay(true);
    let (tcp, stamping) = Tcp::new(tcp, stamped);
    if let Err(e) = stamping {
        // Logged once per process: a kernel that refuses stamps refuses them on every socket,
        // and a warning per reconnect would bury the log. Each `connected` event still says
        // `ts_source = "read"` for its connection.
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !WARNED.swap(true, Relaxed) {
            tracing::warn!(url = %mask_url(url.as_str()), error = %e, "Kernel receive timestamps are not available on this socket: using read times (ts_source = \"read\") here and on every later socket that refuses them (logged once).");
        }
    }
    let stamp = tcp.stamp();
    let io = if matches!(url.scheme(), "wss" | "https") {
        phase.store(Phase::Tls as u8, Relaxed);
        Io::Tls(Box::new(tls::connect(spec, &host, &authority, tcp).await?))
    } else {
        Io::Plain(tcp)
    };
    Ok(Opened {
        io,
        host,
        port,
        stamp,
    })
}

async fn handshake(spec: &ConnectSpec, phase: &AtomicU8) -> Result<Connection, TransportError> {
    let Opened {
        mut io,
        host,
        port,
        stamp,
    } = open(spec, &spec.url, phase, spec.kernel_ts).await?;
    phase.store(Phase::Upgrade as u8, Relaxed);
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    let request = upgrade_request(spec, &host, port, &key);
    io.write_all(request.as_bytes())
        .await
        .map_err(|e| TransportError::Failed(format!("sending the upgrade request failed: {e}")))?;
    io.flush()
        .await
        .map_err(|e| TransportError::Failed(format!("sending the upgrade request failed: {e}")))?;
    let (head, leftover) = read_head(&mut io, "the server").await?;
    let protocols = spec
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
        .map(|(_, v)| v.as_str());
    let extensions = match check_upgrade(&head, &key, spec.deflate.as_ref(), protocols) {
        // The body's start, if it came with the head, often says why.
        Err(TransportError::Refused {
            code,
            reason,
            retry_after,
            ..
        }) => {
            return Err(TransportError::Refused {
                code,
                reason,
                retry_after,
                body: printable(&leftover, MAX_QUOTED_BODY),
            });
        }
        other => other?,
    };
    let mut options = Options::default()
        .with_utf8()
        .with_max_payload_read(spec.max_message_size.saturating_add(1))
        .with_max_read_buffer(spec.max_message_size.saturating_add(1))
        .with_read_buffer_capacity(READ_BUFFER);
    if extensions.is_some() {
        // Decompress what the server sends; never compress what we send (module doc).
        options = options.with_compression_threshold(usize::MAX);
    }
    let ws = WebSocket::from_stream_with_extensions(
        Wire::new(io, leftover),
        Role::Client,
        extensions.as_deref(),
        options,
    )
    .map_err(|e| TransportError::Failed(describe(&e)))?;
    Ok(Connection {
        ws,
        max_message_size: spec.max_message_size,
        extensions,
        ping_window: Instant::now(),
        pings: 0,
        stamp,
    })
}

/// `host:port` as written in `CONNECT` and `Host` (IPv6 in brackets).
fn authority(host: &Host<String>, port: u16) -> String {
    match host {
        Host::Ipv6(ip) => format!("[{ip}]:{port}"),
        other => format!("{other}:{port}"),
    }
}

async fn dial(host: &Host<String>, port: u16) -> Result<TcpStream, TransportError> {
    let result = match host {
        Host::Domain(d) => TcpStream::connect((d.as_str(), port)).await,
        Host::Ipv4(ip) => TcpStream::connect(SocketAddr::from((*ip, port))).await,
        Host::Ipv6(ip) => TcpStream::connect(SocketAddr::from((*ip, port))).await,
    };
    result.map_err(|e| {
        TransportError::Failed(format!(
            "TCP connect to {} failed: {e}",
            authority(host, port)
        ))
    })
}

impl Connection {
    /// Whether receive times come from the kernel on this connection.
    pub fn kernel_stamps(&self) -> bool {
        self.stamp.is_some()
    }

    /// With kernel receive times: when the kernel received the data of the latest socket read,
    /// in ns since the Unix epoch, i.e. the arrival of the TCP data that completed the frames
    /// returned since (`None`: stamps are off, or no read has brought one yet, as for bytes that
    /// came with the handshake answer).
    #[inline]
    pub fn received_ns(&self) -> Option<u64> {
        let ns = self
            .stamp
            .as_ref()?
            .load(std::sync::atomic::Ordering::Relaxed);
        (ns > 0).then_some(ns)
    }

    /// The permessage-deflate parameters in force, if compression was negotiated.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// Polls for the next frame.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, TransportError>> {
        match self.ws.poll_next_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(frame)) => {
                if frame.opcode() == OpCode::Ping
                    && let Err(e) = self.count_ping()
                {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(convert(frame)))
            }
            Poll::Ready(Err(yawc::WebSocketError::FrameTooLarge)) => {
                Poll::Ready(Err(TransportError::TooLarge(self.max_message_size)))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(TransportError::Failed(describe(&e)))),
        }
    }

    /// Counts a server ping; too many in a window is a flood that ends the connection.
    fn count_ping(&mut self) -> Result<(), TransportError> {
        let now = Instant::now();
        if now.duration_since(self.ping_window) >= PING_WINDOW {
            self.ping_window = now;
            self.pings = 0;
        }
        self.pings += 1;
        if self.pings > MAX_PINGS_PER_WINDOW {
            return Err(TransportError::Failed(format!(
                "server sent more than {MAX_PINGS_PER_WINDOW} pings within {PING_WINDOW:?} (ping \
                 flood); each ping costs a pong, so the connection was dropped"
            )));
        }
        Ok(())
    }

    /// The next frame.
    pub async fn next(&mut self) -> Result<Incoming, TransportError> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// A frame if one can be had without waiting (already buffered or readable now).
    pub fn try_next(&mut self) -> Option<Result<Incoming, TransportError>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_next(&mut cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), TransportError> {
        let frame = Frame::text(Bytes::copy_from_slice(text.as_bytes()));
        self.ws
            .send(frame)
            .await
            .map_err(|e| TransportError::Failed(describe(&e)))
    }

    /// Sends a protocol ping.
    pub async fn send_ping(&mut self) -> Result<(), TransportError> {
        self.ws
            .send(Frame::ping(Bytes::from_static(b"wsrec")))
            .await
            .map_err(|e| TransportError::Failed(describe(&e)))
    }

    /// After the server's close frame: lets the library send the close reply it queued, and
    /// waits (up to `wait`) for the server to end the connection.
    pub async fn finish_close(&mut self, wait: Duration) {
        let _ = tokio::time::timeout(wait, async { while self.next().await.is_ok() {} }).await;
    }

    /// Sends a close frame (code 1000 or 1001) and gives the peer up to `wait` to take it.
    pub async fn close(&mut self, going_away: bool, reason: &str, wait: Duration) {
        let code = if going_away {
            yawc::close::CloseCode::Away
        } else {
            yawc::close::CloseCode::Normal
        };
        let _ = tokio::time::timeout(wait, self.ws.send(Frame::close(code, reason))).await;
    }
}

fn convert(frame: Frame) -> Incoming {
    match frame.opcode() {
        OpCode::Text => Incoming::Text(frame.into_payload()),
        OpCode::Binary => Incoming::Binary(frame.into_payload()),
        OpCode::Ping => Incoming::Ping,
        OpCode::Pong => Incoming::Pong,
        OpCode::Close => Incoming::Close {
            code: frame.close_code().map(u16::from),
            reason: frame
                .close_reason()
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_owned(),
        },
        // `WebSocket` reassembles fragments, so a bare continuation never reaches us.
        OpCode::Continuation => Incoming::Binary(frame.into_payload()),
    }
}

fn describe(e: &yawc::WebSocketError) -> String {
    use yawc::WebSocketError as E;
    match e {
        E::ConnectionClosed => {
            "the server closed the TCP connection without a WebSocket close frame".to_owned()
        }
        E::InvalidUTF8 => "server sent a text message that is not valid UTF-8 (RFC 6455 8.1); \
                           closed with code 1007"
            .to_owned(),
        E::CompressionNotSupported => {
            "server sent a compressed frame (RSV1) although permessage-deflate was not negotiated"
                .to_owned()
        }
        E::ReservedBitsNotZero => {
            "server set reserved frame bits (RSV2/RSV3) that no negotiated extension uses"
                .to_owned()
        }
        E::InvalidOpCode(op) => format!("server sent a frame with the unknown opcode {op}"),
        E::ControlFrameFragmented
        | E::PingFrameTooLarge
        | E::InvalidFragment
        | E::InvalidContinuationFrame
        | E::InvalidCloseFrame
        | E::InvalidCloseCode => format!("protocol error by the server: {e} (RFC 6455 5)"),
        E::IoError(io) => match io.get_ref() {
            // rustls errors and the frame check's own errors arrive wrapped in io::Error; show
            // the reason itself.
            Some(inner) => format!("{inner}"),
            None => format!("{io}"),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_request_has_the_rfc_headers_and_config_headers() {
        let s = StreamConfig {
            headers: [("X-Key".to_owned(), crate::config::Secret("v".to_owned()))].into(),
            compression: Compression::Deflate,
            ..StreamConfig::new("a", "ws://[::1]:9000/feed?x=1#frag")
        };
        let spec = ConnectSpec::from_config(&s).unwrap();
        let host = spec.url.host().unwrap().to_owned();
        let r = upgrade_request(&spec, &host, 9000, "KEY");
        assert!(
            r.starts_with("GET /feed?x=1 HTTP/1.1\r\nHost: [::1]:9000\r\n"),
            "{r}"
        );
        for line in [
            "Upgrade: websocket\r\n",
            "Connection: Upgrade\r\n",
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Key: KEY\r\n",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
            "X-Key: v\r\n",
        ] {
            assert!(r.contains(line), "{line:?} missing from {r}");
        }
        assert!(r.ends_with("\r\n\r\n"));
        assert!(!format!("{spec:?}").contains("\"v\""), "{spec:?}");
    }
}
