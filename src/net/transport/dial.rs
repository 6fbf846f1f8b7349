//! The connect sequence, all within the handshake timeout: TCP, the HTTP CONNECT proxy if the
//! stream has one, TLS for `wss://` and `https://`, the upgrade request and its answer, and
//! the WebSocket over the stream. [`open`] (up to TLS) is shared with the REST
//! requests of `http.rs`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use base64::Engine as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use url::Host;

use super::error::{Phase, TransportError};
use super::handshake::{authority, check_upgrade, upgrade_request};
use super::head::{MAX_QUOTED_BODY, Reply, printable, read_head};
use super::socket::Socket;
use super::spec::ConnectSpec;
use super::stamp::{Stamp, Tcp};
use super::wire::Io;
use super::{proxy, tls};
use crate::config::mask_url;

/// Dials, goes through the proxy, negotiates TLS and upgrades, all within the handshake
/// timeout.
///
/// # Errors
/// [`TransportError::Timeout`] naming the phase, [`TransportError::Refused`] with the HTTP
/// status (and `Retry-After`), [`TransportError::Redirected`] with the status and `Location`,
/// or [`TransportError::Failed`] with the cause and the fix.
pub async fn connect(spec: &ConnectSpec) -> Result<Socket, TransportError> {
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
pub(super) struct Opened {
    /// The byte stream (TLS over it for `wss://` and `https://`).
    pub(super) io: Io,
    /// The host dialled (for `Host` and TLS names).
    pub(super) host: Host<String>,
    /// The port dialled.
    pub(super) port: u16,
    /// Kernel receive times of the TCP data, when asked for and available.
    pub(super) stamp: Option<Stamp>,
}

/// The byte stream to `url`'s host: TCP, through the stream's proxy if it has one, then TLS
/// for `wss://` and `https://` (with the stream's TLS settings). Returns it with the host and
/// port (and with `stamped`, its kernel receive times); `phase` follows along for the timeout
/// message.
pub(super) async fn open(
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
    let mut tcp = Tcp::new(tcp);
    let stamping = if stamped { tcp.stamp_on() } else { Ok(()) };
    if let Err(e) = stamping {
        // Logged once per process: a kernel that refuses stamps refuses them on every socket,
        // and a warning per reconnect would bury the log. Each `connected` event still says
        // `ts_source = "read"` for its connection.
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(url = %mask_url(url.as_str()), error = %e, "Kernel receive timestamps are not available on this socket: using read times (ts_source = \"read\") here and on every later socket that refuses them (logged once).");
        }
    }
    let stamp = tcp.stamp();
    let io = if matches!(url.scheme(), "wss" | "https") {
        phase.store(Phase::Tls as u8, Relaxed);
        Io::Tls(Box::new(
            tls::connect(spec.tls.as_ref(), &host, &authority, tcp).await?,
        ))
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

/// [`open`], then the upgrade request, its answer checked, and the WebSocket over the stream.
async fn handshake(spec: &ConnectSpec, phase: &AtomicU8) -> Result<Socket, TransportError> {
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
    let Reply { head, leftover } = read_head(&mut io, "the server").await?;
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
    Ok(Socket::new(
        io,
        &leftover,
        spec.max_message_size,
        extensions,
        stamp,
    ))
}

/// A TCP connection to `host:port`.
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
