//! The WebSocket client behind a small interface: dial (TCP, an optional HTTP CONNECT proxy,
//! TLS), upgrade, next frame, send text or ping, close.
//!
//! Everything wsrec knows about the WebSocket library (yawc) lives in this module, so swapping
//! it (tokio-tungstenite is the fallback) touches one file. yawc does the framing, fragment
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

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use futures::SinkExt;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Host;
use yawc::{Frame, OpCode, Options, Role, WebSocket};

use crate::config::{Compression, ProxySetting, StreamConfig, mask_proxy_url, mask_url};
use crate::error::ConfigError;

/// Size of the socket read buffer: large enough to take a burst of frames per read.
const READ_BUFFER: usize = 64 * 1024;
/// Largest HTTP response head (status line and headers) taken from a server or proxy. Real ones
/// are a few hundred bytes; this bounds what a hostile peer can make wsrec buffer.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Most header lines in a response head.
const MAX_RESPONSE_HEADERS: usize = 64;
/// Most bytes of a refusal's body quoted in the error (the body often says why).
const MAX_QUOTED_BODY: usize = 200;
/// Window over which server pings are counted.
const PING_WINDOW: Duration = Duration::from_secs(1);
/// More pings than this within [`PING_WINDOW`] is a ping flood. Real servers ping every few
/// seconds at most; each ping costs a queued pong.
pub const MAX_PINGS_PER_WINDOW: u32 = 100;
/// The GUID of RFC 6455 1.3, hashed with the key into `Sec-WebSocket-Accept`.
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What a connection needs to dial.
#[derive(Clone)]
pub struct ConnectSpec {
    /// The feed URL.
    pub url: url::Url,
    /// Extra handshake headers (values are secrets: never logged).
    pub headers: Vec<(String, String)>,
    /// TLS settings for `wss://`.
    pub tls: Arc<ClientConfig>,
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
        let url = crate::config::validate_url(&s.url).map_err(|m| field("url", m))?;
        let tls = tls_config(s.ca_file.as_deref(), s.insecure).map_err(|m| field("ca_file", m))?;
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
    fn header_value(&self) -> String {
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

/// An HTTP proxy reached with `CONNECT host:port`.
#[derive(Clone)]
pub struct HttpProxy {
    /// Proxy host.
    host: Host<String>,
    /// Proxy port.
    port: u16,
    /// `Proxy-Authorization` value (Basic), from the URL's user info.
    authorization: Option<String>,
    /// The URL with its password masked, for logs and errors.
    masked: String,
}

impl fmt::Debug for HttpProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.masked, f)
    }
}

impl HttpProxy {
    /// Parses `http://[user:password@]host:port` (the `http://` may be left out, as in the
    /// usual proxy environment variables).
    ///
    /// # Errors
    /// A message naming what is wrong, with the password masked.
    pub fn parse(text: &str) -> Result<HttpProxy, String> {
        let masked = mask_proxy_url(text);
        let full = if text.contains("://") {
            text.trim().to_owned()
        } else {
            format!("http://{}", text.trim())
        };
        let url = url::Url::parse(&full).map_err(|e| {
            format!("`{masked}` is not a valid proxy URL ({e}); expected http://host:port")
        })?;
        if url.scheme() != "http" {
            return Err(format!(
                "proxy scheme `{}` is not supported; wsrec uses HTTP CONNECT through an http:// \
                 proxy, e.g. http://proxy.example:3128",
                url.scheme()
            ));
        }
        let host = url
            .host()
            .map(|h| h.to_owned())
            .ok_or_else(|| format!("proxy URL `{masked}` has no host"))?;
        let port = url.port().ok_or_else(|| {
            format!("proxy URL `{masked}` has no port; write it out, e.g. http://proxy:3128")
        })?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "proxy URL `{masked}` must be http://[user:password@]host:port with nothing after \
                 the port"
            ));
        }
        let authorization = (!url.username().is_empty()).then(|| {
            let user = percent_decode(url.username());
            let password = percent_decode(url.password().unwrap_or(""));
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        Ok(HttpProxy {
            host,
            port,
            authorization,
            masked,
        })
    }
}

/// The proxy the environment names for `url`, honouring `no_proxy`, like curl: `https_proxy`
/// or `HTTPS_PROXY` for `wss://`, `http_proxy` for `ws://` (lower case only: upper-case
/// `HTTP_PROXY` can be set by a CGI client, the "httpoxy" problem), then `all_proxy` or
/// `ALL_PROXY`. `lookup` reads a variable (injected for tests).
///
/// # Errors
/// The variable holds something that is not an http:// proxy URL.
pub fn proxy_from_env(
    url: &url::Url,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<HttpProxy>, String> {
    let names: &[&str] = if url.scheme() == "wss" {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "all_proxy", "ALL_PROXY"]
    };
    let Some((name, value)) = names
        .iter()
        .find_map(|n| lookup(n).filter(|v| !v.trim().is_empty()).map(|v| (*n, v)))
    else {
        return Ok(None);
    };
    let no_proxy = lookup("no_proxy")
        .or_else(|| lookup("NO_PROXY"))
        .unwrap_or_default();
    let host = url.host_str().unwrap_or("");
    let port = url.port_or_known_default().unwrap_or(0);
    if no_proxy_matches(&no_proxy, host, port) {
        return Ok(None);
    }
    HttpProxy::parse(&value)
        .map(Some)
        .map_err(|m| format!("{name} from the environment: {m}"))
}

/// Whether a `no_proxy` list (comma-separated host names, domain suffixes such as
/// `.example.com` or `example.com`, optional `:port`, or `*`) covers `host:port`. IP ranges
/// (CIDR) are not supported: list the addresses.
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" {
            return true;
        }
        let (pattern, entry_port) = split_host_port(entry);
        if entry_port.is_some_and(|p| p != port) {
            continue;
        }
        let pattern = pattern
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .to_ascii_lowercase();
        if pattern.is_empty() {
            continue;
        }
        if host == pattern
            || host
                .strip_suffix(&pattern)
                .is_some_and(|rest| rest.ends_with('.'))
        {
            return true;
        }
    }
    false
}

/// `host:port`, `[v6]:port`, `[v6]`, bare IPv6 or bare host.
fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (rest, None),
        };
    }
    match entry.rsplit_once(':') {
        // One colon: host:port. More: a bare IPv6 address.
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (entry, None),
    }
}

/// Decodes `%XX` escapes of a URL's user info; anything malformed is kept as is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    /// The server answered the upgrade with an HTTP status other than 101 or a redirect.
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

    /// The HTTP status of a refused upgrade.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            TransportError::Refused { code, .. } => Some(*code),
            _ => None,
        }
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
/// status (and `Retry-After`), or [`TransportError::Failed`] with the cause and the fix.
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

async fn handshake(spec: &ConnectSpec, phase: &AtomicU8) -> Result<Connection, TransportError> {
    let url = &spec.url;
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
            tunnel(tcp, proxy, &authority).await?
        }
    };
    let _ = tcp.set_nodelay(true);
    let mut io = if url.scheme() == "wss" {
        phase.store(Phase::Tls as u8, Relaxed);
        Io::Tls(Box::new(tls_connect(spec, &host, &authority, tcp).await?))
    } else {
        Io::Plain(tcp)
    };
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
    let extensions = match check_upgrade(&head, &key, spec.deflate.as_ref()) {
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

/// Asks the proxy for a tunnel to `authority` and checks its answer.
async fn tunnel(
    mut tcp: TcpStream,
    proxy: &HttpProxy,
    authority: &str,
) -> Result<TcpStream, TransportError> {
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = &proxy.authorization {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    let failed = |what: String| TransportError::Failed(format!("proxy {}: {what}", proxy.masked));
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| failed(format!("sending CONNECT failed: {e}")))?;
    let (head, leftover) = read_head(&mut tcp, "the proxy")
        .await
        .map_err(|e| match e {
            TransportError::Failed(m) => failed(m),
            other => other,
        })?;
    match head.code {
        200..=299 => {}
        407 => {
            return Err(failed(format!(
                "HTTP 407 {}: the proxy wants credentials; give them as \
                 http://user:password@host:port",
                head.reason
            )));
        }
        code => {
            return Err(failed(format!(
                "refused to CONNECT to {authority}: HTTP {code} {}; check that the proxy allows \
                 CONNECT to this host and port",
                head.reason
            )));
        }
    }
    if !leftover.is_empty() {
        return Err(failed(format!(
            "sent {} unexpected bytes after its 200 answer to CONNECT",
            leftover.len()
        )));
    }
    Ok(tcp)
}

async fn tls_connect(
    spec: &ConnectSpec,
    host: &Host<String>,
    authority: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TransportError> {
    let name = match host {
        Host::Domain(d) => ServerName::try_from(d.clone())
            .map_err(|_| TransportError::Failed(format!("`{d}` is not a valid TLS server name")))?,
        Host::Ipv4(ip) => ServerName::from(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => ServerName::from(IpAddr::V6(*ip)),
    };
    tokio_rustls::TlsConnector::from(spec.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| TransportError::Failed(tls_error(authority, &e)))
}

/// A TLS failure in words, with the likely fix.
fn tls_error(authority: &str, e: &io::Error) -> String {
    use rustls::{CertificateError as C, Error as R};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<R>()) else {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => format!(
                "TLS handshake with {authority} failed: the server closed the connection ({e}); \
                 is this port speaking TLS? For plain WebSocket use ws://"
            ),
            _ => format!("TLS handshake with {authority} failed: {e}"),
        };
    };
    match tls {
        R::InvalidCertificate(C::UnknownIssuer) => format!(
            "TLS: the certificate of {authority} is issued by a CA wsrec does not trust ({tls}); \
             if the server uses a private CA, set ca_file to its PEM certificate"
        ),
        R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => format!(
            "TLS: the certificate of {authority} is not valid for that host name ({tls}); connect \
             with a name the certificate lists"
        ),
        R::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => format!(
            "TLS: the certificate of {authority} has expired ({tls}); the server must renew it, \
             or this machine's clock is wrong"
        ),
        R::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => format!(
            "TLS: the certificate of {authority} is not valid yet ({tls}); check this machine's \
             clock"
        ),
        R::InvalidCertificate(_) => {
            format!("TLS: the certificate of {authority} was rejected: {tls}")
        }
        R::InvalidMessage(_) => format!(
            "TLS handshake with {authority} failed: {tls}; is this port speaking TLS? For plain \
             WebSocket use ws://"
        ),
        other => format!("TLS handshake with {authority} failed: {other}"),
    }
}

/// The HTTP/1.1 upgrade request. A `Host` header from the config replaces the default one.
fn upgrade_request(spec: &ConnectSpec, host: &Host<String>, port: u16, key: &str) -> String {
    let url = &spec.url;
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };
    let mut r = format!("GET {target} HTTP/1.1\r\n");
    if !spec
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("host"))
    {
        if url.port().is_some() {
            r.push_str(&format!("Host: {}\r\n", authority(host, port)));
        } else {
            let shown = match host {
                Host::Ipv6(ip) => format!("[{ip}]"),
                other => other.to_string(),
            };
            r.push_str(&format!("Host: {shown}\r\n"));
        }
    }
    r.push_str(
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
    );
    r.push_str(key);
    r.push_str("\r\n");
    if let Some(offer) = &spec.deflate {
        r.push_str(&format!(
            "Sec-WebSocket-Extensions: {}\r\n",
            offer.header_value()
        ));
    }
    for (k, v) in &spec.headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r
}

/// A parsed HTTP response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status code.
    pub code: u16,
    /// Reason phrase (printable part).
    pub reason: String,
    /// Header names (as sent) and values.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ResponseHead {
    /// Every value of header `name` (case-insensitive), in order.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of header `name`, as text (lossy).
    fn value(&self, name: &str) -> Option<String> {
        self.values(name)
            .next()
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
    }
}

/// Parses a complete response head at the start of `buf`: `Ok(None)` if more bytes are needed,
/// else the head and its length.
///
/// # Errors
/// The bytes are not an HTTP/1.x response head, or have too many headers.
pub fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) => {
            let code = response.code.unwrap_or(0);
            let reason = printable(response.reason.unwrap_or("").as_bytes(), 100);
            let headers = response
                .headers
                .iter()
                .map(|h| (h.name.to_owned(), h.value.to_vec()))
                .collect();
            Ok(Some((
                ResponseHead {
                    code,
                    reason,
                    headers,
                },
                len,
            )))
        }
        Err(httparse::Error::TooManyHeaders) => Err(format!(
            "answered with more than {MAX_RESPONSE_HEADERS} headers"
        )),
        Err(e) => Err(format!(
            "did not answer with HTTP ({e}): {:?}",
            printable(&buf[..buf.len().min(60)], 60)
        )),
    }
}

/// Reads a response head (bounded by [`MAX_RESPONSE_HEAD`]); returns it and the bytes read past
/// it. `who` names the peer in errors.
async fn read_head<S: AsyncRead + Unpin>(
    io: &mut S,
    who: &str,
) -> Result<(ResponseHead, Bytes), TransportError> {
    let mut buf = BytesMut::with_capacity(4096);
    // Only parse once the blank line has arrived: keeps a byte-by-byte trickle linear.
    let mut searched: usize = 0;
    loop {
        if buf.len() >= MAX_RESPONSE_HEAD {
            return Err(TransportError::Failed(format!(
                "{who} sent a response head larger than {MAX_RESPONSE_HEAD} bytes"
            )));
        }
        let n = io
            .read_buf(&mut buf)
            .await
            .map_err(|e| TransportError::Failed(format!("reading the answer of {who}: {e}")))?;
        if n == 0 {
            return Err(TransportError::Failed(if buf.is_empty() {
                format!("{who} closed the connection without answering the request")
            } else {
                format!(
                    "{who} closed the connection in the middle of its answer: {:?}",
                    printable(&buf[..buf.len().min(60)], 60)
                )
            }));
        }
        let from = searched.saturating_sub(3);
        if memchr::memmem::find(&buf[from..], b"\r\n\r\n").is_none() {
            searched = buf.len();
            continue;
        }
        searched = buf.len();
        match parse_head(&buf) {
            Ok(None) => continue,
            Ok(Some((head, len))) => {
                buf.advance(len);
                return Ok((head, buf.freeze()));
            }
            Err(m) => return Err(TransportError::Failed(format!("{who} {m}"))),
        }
    }
}

/// Printable ASCII of `bytes`, at most `max` characters; anything else becomes `.`.
fn printable(bytes: &[u8], max: usize) -> String {
    bytes
        .iter()
        .take(max)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Checks the server's answer to the upgrade (RFC 6455 4.1) and returns the permessage-deflate
/// parameters in force, if any.
///
/// # Errors
/// [`TransportError::Refused`] for a non-101 answer (with `Retry-After`), otherwise
/// [`TransportError::Failed`] naming the header at fault.
pub fn check_upgrade(
    head: &ResponseHead,
    key: &str,
    offer: Option<&DeflateOffer>,
) -> Result<Option<String>, TransportError> {
    let failed = |m: String| Err(TransportError::Failed(m));
    match head.code {
        101 => {}
        300..=399 => {
            let location = head.value("location").unwrap_or_default();
            return failed(format!(
                "server redirected (HTTP {}) to {}; put that URL in the config",
                head.code,
                mask_url(&location)
            ));
        }
        code => {
            return Err(TransportError::Refused {
                code,
                reason: head.reason.clone(),
                retry_after: head
                    .value("retry-after")
                    .and_then(|v| parse_retry_after(&v)),
                body: String::new(),
            });
        }
    }
    let upgrade = head.value("upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return failed(format!(
            "server answered 101 without `Upgrade: websocket` (got {upgrade:?}); RFC 6455 4.1"
        ));
    }
    let connection = head.value("connection").unwrap_or_default();
    if !connection
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    {
        return failed(format!(
            "server answered 101 without `Connection: Upgrade` (got {connection:?}); RFC 6455 4.1"
        ));
    }
    let expected = accept_key(key);
    if head.value("sec-websocket-accept").as_deref() != Some(expected.as_str()) {
        return failed(
            "server's Sec-WebSocket-Accept does not match the key sent (RFC 6455 4.1); a proxy \
             or server is mangling the handshake"
                .to_owned(),
        );
    }
    if let Some(protocol) = head.value("sec-websocket-protocol") {
        return failed(format!(
            "server chose subprotocol {protocol:?}, which wsrec did not ask for (RFC 6455 4.1)"
        ));
    }
    let answers: Vec<String> = head
        .values("sec-websocket-extensions")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    negotiate_extensions(offer, &answers.join(",")).map_err(TransportError::Failed)
}

/// `base64(sha1(key + GUID))`, the `Sec-WebSocket-Accept` the server must send.
fn accept_key(key: &str) -> String {
    use sha1::Digest;
    let mut sha = sha1::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WS_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 10.2.3). A date in the past means
/// now; anything else unreadable is ignored.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?.timestamp();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    Some(Duration::from_secs(
        u64::try_from(at.saturating_sub(now)).unwrap_or(0),
    ))
}

/// Checks the server's `Sec-WebSocket-Extensions` answer against the offer and returns the
/// permessage-deflate parameters in a canonical form (which yawc's parser reads), or `None`
/// when nothing was negotiated.
///
/// # Errors
/// The server enabled an extension or parameter that was not offered, or repeated one.
pub fn negotiate_extensions(
    offer: Option<&DeflateOffer>,
    answer: &str,
) -> Result<Option<String>, String> {
    let extensions: Vec<&str> = answer
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let Some(first) = extensions.first() else {
        return Ok(None);
    };
    let shown = printable(answer.as_bytes(), 120);
    if offer.is_none() {
        return Err(format!(
            "server enabled extension {shown:?} that wsrec did not offer (compression is off); \
             RFC 6455 9.1"
        ));
    }
    if extensions.len() > 1 {
        return Err(format!(
            "server answered with several extensions ({shown:?}); wsrec offered only \
             permessage-deflate"
        ));
    }
    let mut parts = first.split(';').map(str::trim);
    let name = parts.next().unwrap_or("");
    if !name.eq_ignore_ascii_case("permessage-deflate") {
        return Err(format!(
            "server enabled extension {name:?}, which wsrec did not offer (it offered \
             permessage-deflate)"
        ));
    }
    let mut server_bits: Option<u8> = None;
    let mut client_bits: Option<u8> = None;
    let mut server_nct = false;
    let mut client_nct = false;
    let mut seen = Vec::new();
    for param in parts.filter(|p| !p.is_empty()) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        let key = key.to_ascii_lowercase();
        if seen.contains(&key) {
            return Err(format!(
                "server repeated the permessage-deflate parameter `{key}` (RFC 7692 7.1)"
            ));
        }
        seen.push(key.clone());
        let bits = |v: Option<&str>| -> Result<u8, String> {
            v.and_then(|v| v.parse::<u8>().ok())
                .filter(|b| (8..=15).contains(b))
                .ok_or_else(|| {
                    format!(
                        "server gave `{key}` the value {v:?}; RFC 7692 7.1.2 wants 8 to 15",
                        v = v.unwrap_or("")
                    )
                })
        };
        match (key.as_str(), value) {
            ("server_no_context_takeover", None) => server_nct = true,
            ("client_no_context_takeover", None) => client_nct = true,
            ("server_max_window_bits", v) => server_bits = Some(bits(v)?),
            ("client_max_window_bits", v) => client_bits = Some(bits(v)?),
            _ => {
                return Err(format!(
                    "server answered permessage-deflate with the unknown or malformed parameter \
                     {param:?} (RFC 7692 7.1)"
                ));
            }
        }
    }
    // Canonical form: yawc reads exactly this shape. A server window of 8 bits is inflated with
    // 9 (yawc's smallest); a larger inflate window always reads a smaller deflate window.
    let mut out = String::from("permessage-deflate");
    if let Some(b) = server_bits {
        out.push_str(&format!("; server_max_window_bits={}", b.max(9)));
    }
    if let Some(b) = client_bits {
        out.push_str(&format!("; client_max_window_bits={}", b.max(9)));
    }
    if server_nct {
        out.push_str("; server_no_context_takeover");
    }
    if client_nct {
        out.push_str("; client_no_context_takeover");
    }
    Ok(Some(out))
}

impl Connection {
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

// ---------------------------------------------------------------------------------------------
// The byte stream under yawc: TCP or TLS, the bytes read past the handshake, and the frame check.

/// TCP or TLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The stream yawc reads: first the bytes that arrived with the handshake answer, then the
/// socket; every byte passes the [`FrameScan`] on the way.
pub struct Wire {
    io: Io,
    /// Bytes read past the end of the upgrade response, served first.
    prefix: Bytes,
    /// The frame-header check.
    scan: FrameScan,
}

impl Wire {
    fn new(io: Io, prefix: Bytes) -> Self {
        Self {
            io,
            prefix,
            scan: FrameScan::default(),
        }
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(reason) = this.scan.failed {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, reason)));
        }
        let start = buf.filled().len();
        if this.prefix.is_empty() {
            std::task::ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        } else {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
        }
        match this.scan.scan(&buf.filled()[start..]) {
            Ok(()) => Poll::Ready(Ok(())),
            // Hand over the frames before the bad one (they were received and are recorded);
            // the next read reports the error.
            Err(e) if e.valid > 0 => {
                buf.set_filled(start + e.valid);
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e.reason))),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Why [`FrameScan`] stopped a connection.
const MASKED_FRAME: &str = "server sent a masked frame; RFC 6455 5.1 forbids masking from server \
                            to client, so the connection was dropped rather than recording \
                            scrambled bytes";
/// Why [`FrameScan`] stopped a connection.
const LENGTH_TOP_BIT: &str = "server sent a frame header whose 64-bit length has the top bit set \
                              (2^63 bytes or more; RFC 6455 5.2 forbids it)";

/// Follows frame boundaries in the bytes a server sends and checks each frame header, without
/// copying payloads: a header is looked at, its payload length skipped.
#[derive(Debug, Default, Clone)]
pub struct FrameScan {
    /// Payload bytes of the current frame not seen yet.
    skip: u64,
    /// A header split across reads, collected here (a header is at most 14 bytes).
    head: [u8; 14],
    /// Bytes in `head`.
    have: usize,
    /// Set once a header failed the check; every later read fails the same way.
    failed: Option<&'static str>,
}

impl FrameScan {
    /// Checks the next bytes of the stream.
    ///
    /// # Errors
    /// A masked frame, or a 64-bit length with the top bit set, with how many of `data`'s
    /// bytes come before the bad frame (those are good: the frames in them are delivered).
    pub fn scan(&mut self, data: &[u8]) -> Result<(), ScanError> {
        if let Some(reason) = self.failed {
            return Err(ScanError { valid: 0, reason });
        }
        let mut pos = 0;
        // Where the header being collected began in `data` (0 if in an earlier read).
        let mut head_start = 0;
        loop {
            if self.skip > 0 {
                let left = (data.len() - pos) as u64;
                if left <= self.skip {
                    self.skip -= left;
                    return Ok(());
                }
                // `skip` is below the bytes left here, so it fits in usize.
                pos += self.skip as usize;
                self.skip = 0;
            }
            if pos == data.len() {
                return Ok(());
            }
            let fail = |this: &mut Self, at: usize, reason| {
                this.failed = Some(reason);
                Err(ScanError { valid: at, reason })
            };
            if self.have == 0 && data.len() - pos >= self.head.len() {
                // The whole header is in this read: no copy.
                match header(&data[pos..]) {
                    Ok((len, size)) => {
                        self.skip = len;
                        pos += size;
                        continue;
                    }
                    Err(reason) => return fail(self, pos, reason),
                }
            }
            if self.have == 0 {
                head_start = pos;
            }
            let need = if self.have < 2 {
                2
            } else {
                header_size(self.head[1])
            };
            let take = (need - self.have).min(data.len() - pos);
            self.head[self.have..self.have + take].copy_from_slice(&data[pos..pos + take]);
            self.have += take;
            pos += take;
            if self.have < need {
                return Ok(());
            }
            if self.have < header_size(self.head[1]) {
                if self.head[1] & 0x80 != 0 {
                    return fail(self, head_start, MASKED_FRAME);
                }
                continue;
            }
            match header(&self.head) {
                Ok((len, _)) => {
                    self.have = 0;
                    self.skip = len;
                }
                Err(reason) => return fail(self, head_start, reason),
            }
        }
    }
}

/// A frame header [`FrameScan`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError {
    /// Bytes of the scanned chunk before the bad frame.
    pub valid: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// Payload length and header size of the complete header at the start of `h`.
fn header(h: &[u8]) -> Result<(u64, usize), &'static str> {
    let b1 = h[1];
    if b1 & 0x80 != 0 {
        return Err(MASKED_FRAME);
    }
    Ok(match b1 & 0x7f {
        126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&h[2..10]);
            let len = u64::from_be_bytes(n);
            if len >> 63 != 0 {
                return Err(LENGTH_TOP_BIT);
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    })
}

/// Header size from the second header byte (length code and mask bit).
fn header_size(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

// ---------------------------------------------------------------------------------------------
// TLS.

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Mozilla's roots plus the system's store, loaded once.
fn base_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(
            system_roots = added,
            errors = native.errors.len(),
            "Loaded TLS roots."
        );
        roots
    })
}

/// The rustls config of a stream.
///
/// # Errors
/// The CA file cannot be read or holds no certificate.
pub fn tls_config(ca_file: Option<&Path>, insecure: bool) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = base_roots().clone();
        if let Some(path) = ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("ca_file {} is not valid PEM: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "ca_file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                    path.display()
                ));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    format!(
                        "ca_file {} has an unusable certificate: {e}",
                        path.display()
                    )
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts any certificate: the `insecure` opt-out. Signatures are still checked so the
/// handshake itself is sound; only the identity is not.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame header: `fin|opcode`, then the length in its shortest form, optional mask key.
    fn header(opcode: u8, len: u64, masked: bool) -> Vec<u8> {
        let mut h = vec![0x80 | opcode];
        let m = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => h.push(m | len as u8),
            126..=0xffff => {
                h.push(m | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(m | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        if masked {
            h.extend_from_slice(&[1, 2, 3, 4]);
        }
        h
    }

    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = header(opcode, payload.len() as u64, false);
        f.extend_from_slice(payload);
        f
    }

    /// Feeds `bytes` to a fresh scanner in pieces of `step` bytes; on error, the offset in
    /// `bytes` where the good part ends.
    fn scan_in_steps(bytes: &[u8], step: usize) -> Result<(), (usize, &'static str)> {
        let mut scan = FrameScan::default();
        for (i, chunk) in bytes.chunks(step).enumerate() {
            scan.scan(chunk)
                .map_err(|e| (i * step + e.valid, e.reason))?;
        }
        Ok(())
    }

    #[test]
    fn frame_scan_follows_valid_streams_split_anywhere() {
        let mut stream = Vec::new();
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            stream.extend(frame(2, &vec![0x81; len]));
            stream.extend(frame(9, b"ping"));
        }
        for step in [1, 2, 3, 7, 13, 14, 15, 1000, stream.len()] {
            assert_eq!(scan_in_steps(&stream, step), Ok(()), "step {step}");
        }
    }

    #[test]
    fn frame_scan_rejects_a_masked_frame_however_it_arrives() {
        let mut stream = frame(1, b"hello");
        let good = stream.len();
        stream.extend(header(1, 5, true));
        stream.extend_from_slice(b"xxxxx");
        for step in [1, 2, 5, 9, stream.len()] {
            // The good frame is always delivered; at most the bad header's start goes with it.
            let (valid, reason) = scan_in_steps(&stream, step).unwrap_err();
            assert_eq!(reason, MASKED_FRAME, "step {step}");
            assert!((good..good + 2).contains(&valid), "step {step}: {valid}");
        }
        assert_eq!(
            scan_in_steps(&stream, stream.len()),
            Err((good, MASKED_FRAME))
        );
        // Once failed, it stays failed.
        let mut scan = FrameScan::default();
        assert!(scan.scan(&header(1, 0, true)).is_err());
        assert!(scan.scan(&frame(1, b"ok")).is_err());
    }

    #[test]
    fn frame_scan_rejects_a_length_with_the_top_bit_set() {
        let h = header(2, 1 << 63, false);
        for step in [1, 4, h.len()] {
            assert_eq!(
                scan_in_steps(&h, step).unwrap_err().1,
                LENGTH_TOP_BIT,
                "step {step}"
            );
        }
        let mut stream = frame(1, b"before");
        let good = stream.len();
        stream.extend(header(2, 1 << 63, false));
        assert_eq!(
            scan_in_steps(&stream, stream.len()),
            Err((good, LENGTH_TOP_BIT))
        );
        // 2^63 - 1 is legal for the scanner (yawc's size limit rejects it).
        assert_eq!(scan_in_steps(&header(2, (1 << 63) - 1, false), 3), Ok(()));
    }

    #[test]
    fn deflate_answers_are_checked_and_canonicalised() {
        let offer = DeflateOffer::default();
        let ok: &[(&str, Option<&str>)] = &[
            ("", None),
            ("permessage-deflate", Some("permessage-deflate")),
            (
                "permessage-deflate;server_max_window_bits=12 ; client_max_window_bits=\"10\"",
                Some("permessage-deflate; server_max_window_bits=12; client_max_window_bits=10"),
            ),
            (
                "Permessage-Deflate; server_no_context_takeover; client_no_context_takeover",
                Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            ),
            (
                "permessage-deflate; server_max_window_bits=8",
                Some("permessage-deflate; server_max_window_bits=9"),
            ),
        ];
        for (answer, want) in ok {
            assert_eq!(
                negotiate_extensions(Some(&offer), answer)
                    .unwrap()
                    .as_deref(),
                *want,
                "{answer}"
            );
        }
        let bad: &[(&str, &str)] = &[
            ("x-webkit-deflate-frame", "did not offer"),
            ("permessage-deflate, permessage-deflate", "several"),
            ("permessage-deflate; server_max_window_bits=16", "8 to 15"),
            ("permessage-deflate; server_max_window_bits", "8 to 15"),
            ("permessage-deflate; foo=1", "unknown"),
            (
                "permessage-deflate; server_no_context_takeover=1",
                "unknown",
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                "repeated",
            ),
        ];
        for (answer, want) in bad {
            let err = negotiate_extensions(Some(&offer), answer).unwrap_err();
            assert!(err.contains(want), "{answer}: {err}");
        }
        let err = negotiate_extensions(None, "permessage-deflate").unwrap_err();
        assert!(err.contains("compression is off"), "{err}");
    }

    #[test]
    fn deflate_offer_names_what_was_asked() {
        assert_eq!(
            DeflateOffer::default().header_value(),
            "permessage-deflate; client_max_window_bits"
        );
        let offer = DeflateOffer {
            server_max_window_bits: Some(10),
            server_no_context_takeover: true,
        };
        assert_eq!(
            offer.header_value(),
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10; \
             server_no_context_takeover"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        let future = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT").unwrap();
        assert!(future > Duration::from_secs(365 * 86_400));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-5"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    fn head(text: &str) -> ResponseHead {
        parse_head(text.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn upgrade_answer_is_checked_per_rfc_6455() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        // The example of RFC 6455 1.3.
        assert_eq!(accept_key(key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let good = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n\
                    Connection: keep-alive, Upgrade\r\n\
                    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(check_upgrade(&head(good), key, None).unwrap(), None);

        let cases: &[(&str, &str)] = &[
            (
                "HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                "Upgrade: websocket",
            ),
            (
                "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                "Connection: Upgrade",
            ),
            (
                "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n",
                "does not match",
            ),
            (
                "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
                "subprotocol",
            ),
            (
                "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                "did not offer",
            ),
            (
                "HTTP/1.1 301 Moved\r\nLocation: wss://other.example/ws?token=abc\r\n\r\n",
                "token=***",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                "HTTP 200 OK instead of 101",
            ),
        ];
        for (text, want) in cases {
            let err = check_upgrade(&head(text), key, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn refusals_carry_status_and_retry_after() {
        let h = head("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n\r\n");
        let err = check_upgrade(&h, "k", None).unwrap_err();
        assert_eq!(err.http_status(), Some(429));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        let text = err.to_string();
        assert!(
            text.contains("HTTP 429 Too Many Requests") && text.contains("Retry-After: 7s"),
            "{text}"
        );
        let h = head("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert_eq!(
            check_upgrade(&h, "k", None).unwrap_err().retry_after(),
            None
        );
    }

    #[test]
    fn response_heads_are_bounded_and_named() {
        assert!(parse_head(b"HTTP/1.1 101 Switching").unwrap().is_none());
        let err = parse_head(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").unwrap_err();
        assert!(err.contains("did not answer with HTTP"), "{err}");
        let many: String = (0..100).map(|i| format!("X-{i}: y\r\n")).collect();
        let err = parse_head(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes()).unwrap_err();
        assert!(err.contains("more than 64 headers"), "{err}");
    }

    #[test]
    fn proxy_urls_parse_with_credentials_masked() {
        let p = HttpProxy::parse("http://user:p%40ss@127.0.0.1:3128").unwrap();
        assert_eq!(p.port, 3128);
        let expected = base64::engine::general_purpose::STANDARD.encode("user:p@ss");
        assert_eq!(
            p.authorization.as_deref(),
            Some(format!("Basic {expected}").as_str())
        );
        assert!(!format!("{p:?}").contains("p%40ss"), "{p:?}");
        let p = HttpProxy::parse("proxy.internal:8080").unwrap();
        assert_eq!(
            (p.host.to_string().as_str(), p.port),
            ("proxy.internal", 8080)
        );
        for (text, want) in [
            ("socks5://h:1080", "not supported"),
            ("https://h:443", "not supported"),
            ("http://h", "no port"),
            ("http://h:1/path", "nothing after the port"),
            ("http://user:secret@", "not a valid proxy URL"),
        ] {
            let err = HttpProxy::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn proxy_env_follows_scheme_and_no_proxy() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let wss = url::Url::parse("wss://stream.example.com/ws").unwrap();
        let ws = url::Url::parse("ws://127.0.0.1:9000/").unwrap();
        let vars: &[(&str, &str)] = &[
            ("HTTPS_PROXY", "http://p:3128"),
            ("HTTP_PROXY", "http://cgi-injected:1"),
        ];
        assert!(proxy_from_env(&wss, env(vars)).unwrap().is_some());
        // Upper-case HTTP_PROXY is never used (httpoxy).
        assert!(proxy_from_env(&ws, env(vars)).unwrap().is_none());
        let vars: &[(&str, &str)] = &[("all_proxy", "p:3128"), ("no_proxy", "localhost,127.0.0.1")];
        assert!(proxy_from_env(&wss, env(vars)).unwrap().is_some());
        assert!(proxy_from_env(&ws, env(vars)).unwrap().is_none());
        let vars: &[(&str, &str)] = &[("https_proxy", "ftp://p:1")];
        let err = proxy_from_env(&wss, env(vars)).unwrap_err();
        assert!(err.contains("https_proxy from the environment"), "{err}");
    }

    #[test]
    fn no_proxy_matching() {
        let cases: &[(&str, &str, u16, bool)] = &[
            ("*", "anything", 1, true),
            ("example.com", "example.com", 443, true),
            ("example.com", "stream.example.com", 443, true),
            (".example.com", "stream.example.com", 443, true),
            ("*.example.com", "stream.example.com", 443, true),
            ("example.com", "badexample.com", 443, false),
            ("example.com:8443", "example.com", 443, false),
            ("example.com:443", "example.com", 443, true),
            ("127.0.0.1", "127.0.0.1", 80, true),
            ("::1", "[::1]", 80, true),
            ("[::1]:80", "[::1]", 80, true),
            (" a.org , , b.org ", "b.org", 1, true),
            ("", "example.com", 443, false),
        ];
        for (list, host, port, want) in cases {
            assert_eq!(
                no_proxy_matches(list, host, *port),
                *want,
                "{list:?} {host}:{port}"
            );
        }
    }

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
